//! The mock partner's reference behaviour for each kind of operation, through the profile.

use super::error::ApiError;
use super::paging;
use super::store::StoreData;
use super::{Fault, Matched, PartnerState, Shared};
use crate::auth::AuthCheck;
use crate::model::{Field, Record, RecordKind};
use crate::profile::body;
use crate::profile::codec::json_kind;
use crate::profile::{
    AnswerShape, AuthScheme, BodyFormat, IdFrom, NoneAnswer, Operation, OperationKind,
    OperationRole, OwnerReference, Side, Slot, SourceReference,
};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::collections::BTreeMap;

/// The share of requests, in percent, the `flaky` fault answers with 503.
const FLAKY_PERCENT: u64 = 20;

/// Serves one request addressed to the partner's API.
pub(super) async fn handle(
    state: &PartnerState,
    request: Request,
    format: &mut BodyFormat,
) -> Result<Response, ApiError> {
    let shared = &state.shared;
    if shared.fault(Fault::Slow) {
        tokio::time::sleep(shared.options.slow_delay).await;
    }
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let header_text = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    // Only SOAP routes are told apart by an action: other partners skip both headers.
    let action = if shared.routes_by_action {
        body::request_action(header_text("soapaction"), header_text("content-type"))
    } else {
        None
    };
    // Inserted pair by pair (the last of a repeated name wins, as with `collect`): collecting
    // sorts through a buffer, several times the cost for the two or three pairs seen.
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
        query.insert(name.into_owned(), value.into_owned());
    }
    let matched = shared.match_route(&parts.method, &path, action.as_deref(), &query)?;
    if let Some(operation) = shared.profile.operation(matched.kind) {
        *format = shared.profile.format_of(operation);
    }
    let format = *format;
    let missing_route = match matched.kind {
        OperationKind::StaffList => shared.fault(Fault::NoStaffList),
        OperationKind::SourceList => shared.fault(Fault::NoSourceList),
        _ => false,
    };
    if missing_route {
        return Err(ApiError::no_route(format!(
            "no operation of this partner at {path}"
        )));
    }

    let auth = match &shared.issuer {
        Some(issuer) => issuer.check(header_text("authorization")),
        None => shared.expected.check(
            |name| parts.headers.get(name).and_then(|v| v.to_str().ok()),
            |name| query.get(name).map(String::as_str),
        ),
    };
    let refusal = match auth {
        _ if shared.fault(Fault::AuthNotEnforced) => None,
        AuthCheck::Accepted => None,
        AuthCheck::Missing => Some(ApiError::unauthenticated(&challenge(&shared.profile))),
        // An OAuth token not issued here, expired or revoked: 401, so the client fetches
        // another (RFC 6750 §3.1).
        AuthCheck::Wrong if shared.issuer.is_some() => Some(ApiError::invalid_token()),
        AuthCheck::Wrong => Some(ApiError::forbidden()),
    };
    let headers = &parts.headers;
    match refusal {
        // The fault carries the write out before it refuses it.
        Some(refusal)
            if shared.fault(Fault::SaveBeforeAuth)
                && matched.kind.role() == OperationRole::Write =>
        {
            let _ = serve(shared, &matched, format, &path, &query, headers, body).await;
            Err(refusal)
        }
        Some(refusal) => Err(refusal),
        None => serve(shared, &matched, format, &path, &query, headers, body).await,
    }
}

/// The `WWW-Authenticate` challenge of a 401, naming the profile's scheme and realm. An API key
/// has no registered scheme: `ApiKey` with the header or query parameter it goes in says where
/// it belongs, in the challenge syntax of RFC 9110 §11.2 that clients already parse.
pub(super) fn challenge(profile: &crate::profile::Profile) -> String {
    // A quoted-string of printable ASCII: the partner's name may hold anything.
    let realm: String = profile
        .partner
        .name
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
        .collect();
    let auth = &profile.auth;
    match auth.scheme {
        AuthScheme::Basic => format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
        AuthScheme::ApiKey => match (&auth.header, &auth.query) {
            (Some(name), _) => format!("ApiKey realm=\"{realm}\", header=\"{name}\""),
            (None, Some(name)) => format!("ApiKey realm=\"{realm}\", query=\"{name}\""),
            (None, None) => format!("ApiKey realm=\"{realm}\""),
        },
        AuthScheme::Bearer | AuthScheme::OAuth2ClientCredentials | AuthScheme::None => {
            format!("Bearer realm=\"{realm}\"")
        }
    }
}

/// Serves a request whose credentials were checked.
async fn serve(
    shared: &Shared,
    matched: &Matched,
    format: BodyFormat,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    if shared.fault(Fault::Flaky) && shared.flaky_strikes() {
        return Err(ApiError::unavailable());
    }
    if matched.kind == OperationKind::StaffList && shared.fault(Fault::StaffList500) {
        return Err(ApiError::internal("the staff list is unavailable"));
    }
    if matched.kind == OperationKind::StaffList {
        for fault in Fault::ALL
            .iter()
            .filter(|f| shared.fault(**f) && f.is_hostile())
        {
            if let Some(response) =
                super::hostile::answer(*fault, path, shared.options.slow_delay, format).await
            {
                return Ok(response);
            }
        }
    }
    let operation = shared
        .profile
        .operation(matched.kind)
        .ok_or_else(|| ApiError::not_found("no such operation"))?;
    check_fixed_headers(shared, operation, headers)?;
    let captured = check_query(shared, operation, query)?;
    let body = read_body(shared, body).await?;
    let twin = shared.twin_of(matched.kind);
    // The plain JSON write of a partner without faults skips the JSON tree (and a route
    // prospects and members share, which the tree tells apart).
    if shared.options.faults.is_empty() && twin.is_none() {
        let streamed = shared
            .stream_readers
            .get(&matched.kind)
            .and_then(|reader| reader.read(&shared.profile.codec(matched.kind.record()), &body));
        if let Some(record) = streamed {
            let id = matched.path_id.clone().or(captured.id);
            return save(shared, matched, operation, id, record, path);
        }
    }
    // SOAP requests all carry a document (their params); REST ones only when they write.
    let document = if format.is_soap() || matched.kind.role() == OperationRole::Write {
        Some(read_document(shared, format, &body)?)
    } else {
        None
    };
    let early_id = matched.path_id.clone().or(captured.id.clone());
    // Prospects and members on one route: the record's id finds its kind, else the body's
    // fixed values (a type the partner tells them apart by).
    let twinned;
    let (matched, operation) = match twin {
        Some(twin)
            if shared.is_twin_request(
                twin,
                matched.kind,
                early_id.as_deref(),
                document.as_ref(),
            ) =>
        {
            twinned = Matched {
                kind: twin,
                path_id: matched.path_id.clone(),
                path_email: matched.path_email.clone(),
            };
            let operation = shared
                .profile
                .operation(twin)
                .ok_or_else(|| ApiError::not_found("no such operation"))?;
            (&twinned, operation)
        }
        _ => (matched, operation),
    };
    let mut params = match &document {
        Some(document) => {
            body::read_params(operation, &shared.profile.tenancy, document).map_err(param_error)?
        }
        None => BTreeMap::new(),
    };
    let id = matched
        .path_id
        .clone()
        .or(captured.id)
        .or(params.remove(&Slot::Id));
    let email = matched
        .path_email
        .clone()
        .or(captured.email)
        .or(params.remove(&Slot::Email));
    if matched.kind == OperationKind::StaffList && shared.fault(Fault::SlowStaffList) {
        // Only the first page is slow: enough to break the budget, cheap to run.
        let first_page = paging::window(&operation.paging.clone().unwrap_or_default(), query)
            .is_ok_and(|window| window.offset == 0);
        if first_page {
            tokio::time::sleep(shared.options.sluggish_delay).await;
        }
    }
    match matched.kind.role() {
        OperationRole::List => list(shared, matched, operation, path, query),
        OperationRole::Lookup => lookup(shared, operation, email),
        OperationRole::Read => read(shared, matched, operation, id),
        OperationRole::Write => write(
            shared,
            matched,
            operation,
            id,
            document.as_ref().unwrap_or(&Value::Null),
            path,
        ),
    }
}

#[derive(Default)]
struct Captured {
    id: Option<String>,
    email: Option<String>,
}

/// Checks the headers the profile fixes (`[partner] headers` and the operation's): each must be
/// sent with its value; a declared `Accept` must be among those the request accepts.
fn check_fixed_headers(
    shared: &Shared,
    operation: &Operation,
    headers: &axum::http::HeaderMap,
) -> Result<(), ApiError> {
    for (name, template) in shared
        .profile
        .partner
        .headers
        .iter()
        .chain(&operation.headers)
    {
        let expected = template
            .render(&shared.profile.tenancy, str::to_owned)
            .unwrap_or_default();
        // As the bytes sent: a value rendered from a tenancy id may hold non-ASCII text.
        let given = headers
            .get(name.as_str())
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok());
        let fits = match given {
            Some(given) if name.eq_ignore_ascii_case("accept") => given.split(',').any(|media| {
                let asked = media.split(';').next().unwrap_or_default().trim();
                let served = expected.split(';').next().unwrap_or_default().trim();
                // `*/*` and `application/*` accept `application/json` too (RFC 9110 §12.5.1).
                asked.eq_ignore_ascii_case(served)
                    || asked == "*/*"
                    || asked.strip_suffix("/*").is_some_and(|kind| {
                        served
                            .split_once('/')
                            .is_some_and(|(served_kind, _)| served_kind.eq_ignore_ascii_case(kind))
                    })
            }),
            Some(given) => given == expected,
            None => false,
        };
        if !fits {
            let problem = match given {
                None => format!("the header `{name}` is required (`{expected}`)"),
                Some(given) => {
                    format!("the header `{name}` is `{given}`; this API expects `{expected}`")
                }
            };
            let status_error = if name.eq_ignore_ascii_case("accept") {
                ApiError::not_acceptable(problem)
            } else {
                ApiError::bad_request(problem)
            };
            return Err(status_error.with_field(name));
        }
    }
    Ok(())
}

/// Checks the operation's declared query parameters (and those every request carries):
/// constants must match, `{id}` and `{email}` are captured.
fn check_query(
    shared: &Shared,
    operation: &Operation,
    query: &BTreeMap<String, String>,
) -> Result<Captured, ApiError> {
    let mut captured = Captured::default();
    for (name, template) in shared.profile.partner.query.iter().chain(&operation.query) {
        let given = query.get(name);
        let slots = template.slots();
        if slots.contains(&Slot::Id) || slots.contains(&Slot::Email) {
            let Some(given) = given else {
                return Err(
                    ApiError::bad_request(format!("query parameter `{name}` is required"))
                        .with_field(name),
                );
            };
            let value = body::extract_slot(template, given).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "query parameter `{name}` must look like `{template}`"
                ))
                .with_field(name)
            })?;
            if slots.contains(&Slot::Id) {
                captured.id = Some(value);
            } else {
                captured.email = Some(value);
            }
            continue;
        }
        let expected = template
            .render(&shared.profile.tenancy, str::to_owned)
            .unwrap_or_default();
        match given {
            Some(given) if *given == expected => {}
            Some(given) => {
                return Err(ApiError::not_found(format!(
                    "query parameter `{name}` is `{given}`; this partner serves `{expected}`"
                ))
                .with_field(name))
            }
            None => {
                return Err(
                    ApiError::bad_request(format!("query parameter `{name}` is required"))
                        .with_field(name),
                )
            }
        }
    }
    Ok(captured)
}

/// The request's body, at most the body limit, read within the body timeout.
async fn read_body(shared: &Shared, body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = shared.options.body_limit;
    let timeout = shared.options.body_timeout;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::body_timeout(timeout)),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => {
            let over_limit = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            Err(match over_limit {
                true => ApiError::too_large(limit),
                false => ApiError::body_cut_short(),
            })
        }
    }
}

/// Reads a request body in `format` into its document; a SOAP fault or an unreadable body is a
/// bad request (a 500 under `malformed-500`).
fn read_document(shared: &Shared, format: BodyFormat, bytes: &[u8]) -> Result<Value, ApiError> {
    let refuse = |message: String| {
        if shared.fault(Fault::Malformed500) {
            ApiError::internal("unexpected error")
        } else {
            ApiError::bad_request(message)
        }
    };
    if format == BodyFormat::Json {
        return serde_json::from_slice(bytes)
            .map_err(|error| refuse(format!("the body is not valid JSON: {error}")));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|error| refuse(format!("the body is not valid XML: not UTF-8: {error}")))?;
    match body::decode(&shared.profile, format, text).map_err(refuse)? {
        body::Payload::Document(document) => Ok(document),
        body::Payload::Fault { .. } => Err(ApiError::bad_request("a SOAP fault is not a request")),
    }
}

fn param_error(problem: body::ParamProblem) -> ApiError {
    match problem {
        body::ParamProblem::Missing(path) => {
            ApiError::bad_request(format!("`{path}` is required")).with_field(path.to_string())
        }
        body::ParamProblem::Malformed(path, template) => {
            ApiError::bad_request(format!("`{path}` must look like `{template}`"))
                .with_field(path.to_string())
        }
        body::ParamProblem::Other {
            path,
            given,
            expected,
        } => ApiError::not_found(format!(
            "`{path}` is `{given}`; this partner serves `{expected}`"
        ))
        .with_field(path.to_string()),
    }
}

/// An answer in `format`; a document that cannot be written in it is the partner's own failure.
fn respond(shared: &Shared, operation: &Operation, status: StatusCode, body: Value) -> Response {
    let format = shared.profile.format_of(operation);
    if format == BodyFormat::Json {
        let mut response = (status, Json(body)).into_response();
        if let Some(media) = shared.json_media_type(operation) {
            response.headers_mut().insert(header::CONTENT_TYPE, media);
        }
        return response;
    }
    match body::encode(&shared.profile, format, &body) {
        Ok(text) => (
            status,
            [(header::CONTENT_TYPE, format.content_type(None))],
            text,
        )
            .into_response(),
        Err(message) => ApiError::internal(message).into_response_as(format),
    }
}

/// A save's answer with the id taken out (the faults that hide the new record's id).
fn answer_without_id(
    shared: &Shared,
    operation: &Operation,
    status: StatusCode,
    codec: &crate::profile::RecordCodec<'_>,
    mut rendered: Value,
) -> Response {
    if let Some(id_path) = codec.read_path(Field::Id) {
        id_path.set(&mut rendered, Value::Null);
    }
    let mut document = wrap(&operation.record, rendered);
    if let Some(id_at) = &operation.id_at {
        id_at.set(&mut document, Value::Null);
    }
    respond(shared, operation, status, document)
}

/// Where a write's record is in its request document.
fn record_of<'d>(operation: &Operation, document: &'d Value) -> Option<&'d Value> {
    match &operation.body {
        Some(at) => at.get(document),
        None => Some(document),
    }
}

fn wrap(path: &Option<crate::profile::JsonPath>, value: Value) -> Value {
    match path {
        Some(path) => path.wrap(value),
        None => value,
    }
}

fn staff_record(staff: &crate::model::Staff) -> Record {
    let mut record = Record::from([
        (Field::Id, staff.id.clone()),
        (Field::FirstName, staff.first_name.clone()),
        (Field::LastName, staff.last_name.clone()),
    ]);
    if let Some(email) = &staff.email {
        record.insert(Field::Email, email.clone());
    }
    record
}

fn source_record(source: &crate::model::LeadSource) -> Record {
    Record::from([
        (Field::Id, source.id.clone()),
        (Field::Name, source.name.clone()),
    ])
}

/// A list page answered from the page cache while the store is unchanged; faults bypass it.
fn list(
    shared: &Shared,
    matched: &Matched,
    operation: &Operation,
    path: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    // A lagging source list changes with time, not only with the store: no cache.
    if !shared.options.faults.is_empty() || !shared.options.source_list_lag.is_zero() {
        return render_list(shared, matched, operation, path, query);
    }
    // The key names the list and its parameters in sorted order, each length-prefixed so
    // that no two queries share a key.
    let mut key = String::with_capacity(64);
    key.push_str(matched.kind.key());
    let mut digits = itoa::Buffer::new();
    for (name, value) in query {
        for text in [name, value] {
            key.push('|');
            key.push_str(digits.format(text.len()));
            key.push(':');
            key.push_str(text);
        }
    }
    let generation = shared.store.generation();
    if let Some(bytes) = shared.pages.read(&key, generation) {
        let content_type = match shared.profile.format_of(operation) {
            BodyFormat::Json => HeaderValue::from_static("application/json"),
            format => HeaderValue::from_str(&format.content_type(None))
                .map_err(|_| ApiError::internal("the content type is not a header value"))?,
        };
        return Ok(bytes_response(StatusCode::OK, content_type, bytes));
    }
    let response = render_list(shared, matched, operation, path, query)?;
    let (parts, body) = response.into_parts();
    let bytes = futures_util::FutureExt::now_or_never(axum::body::to_bytes(body, usize::MAX))
        .and_then(Result::ok)
        .unwrap_or_default();
    shared.pages.write(key, generation, bytes.clone());
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}

/// An answer of bytes already rendered (a cached page, a record written straight to JSON).
fn bytes_response(
    status: StatusCode,
    content_type: HeaderValue,
    bytes: axum::body::Bytes,
) -> Response {
    // Built directly: through `IntoResponse` the bytes first get a content type of their own.
    let mut response = Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

fn render_list(
    shared: &Shared,
    matched: &Matched,
    operation: &Operation,
    path: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    let kind = matched.kind.record();
    let paging_spec = operation.paging.clone().unwrap_or_default();
    let window = paging::window(&paging_spec, query)?;
    let codec = shared.profile.codec(kind);
    let staff_fault = |fault| kind == RecordKind::Staff && shared.fault(fault);
    if staff_fault(Fault::StaffPaginationTruncated) && window.offset > 0 {
        let total = shared.store.read().staff.len();
        if window.offset.saturating_add(window.limit) >= total {
            return Err(ApiError::internal("the last page cannot be served"));
        }
    }
    // The loop fault serves the first page again wherever a later one is asked for; the
    // duplicate fault starts each later page one record early.
    let served = if staff_fault(Fault::StaffPaginationLoop) && window.offset > 0 {
        paging::Window {
            offset: 0,
            ..window
        }
    } else if staff_fault(Fault::StaffDuplicateAcrossPages) && window.offset > 0 {
        paging::Window {
            offset: window.offset - 1,
            ..window
        }
    } else {
        window
    };
    let (items, total) = {
        let data = shared.store.read();
        let records: Vec<Record> = match kind {
            RecordKind::Staff => data
                .staff
                .iter()
                .enumerate()
                .skip(served.offset)
                .take(served.limit)
                .map(|(index, staff)| shared.shown_staff(index, staff_record(staff)))
                .collect(),
            _ => data
                .sources
                .iter()
                .filter(|source| shared.source_listed_yet(source))
                .skip(window.offset)
                .take(window.limit)
                .map(source_record)
                .collect(),
        };
        let total = match kind {
            RecordKind::Staff => data.staff.len(),
            _ => data
                .sources
                .iter()
                .filter(|source| shared.source_listed_yet(source))
                .count(),
        };
        (records, total)
    };
    let encoded = items
        .iter()
        .map(|record| codec.encode_answer(record))
        .collect();
    let mut document = body::list_document(operation, encoded);
    let link = paging::annotate(&paging_spec, &mut document, window, total, path, query);
    // The counter faults state what the list does not hold.
    if staff_fault(Fault::StaffPageCountShort) {
        if let Some(pages) = &paging_spec.total_pages_field {
            let stated = total.div_ceil(window.limit.max(1)).saturating_sub(1);
            pages.set(&mut document, Value::from(stated as u64));
        }
    }
    if staff_fault(Fault::StaffTotalOverstated) {
        if let Some(field) = &paging_spec.total_field {
            field.set(&mut document, Value::from(total as u64 + 1));
        }
    }
    let mut response = respond(shared, operation, StatusCode::OK, document);
    if let Some(link) =
        link.and_then(|link| HeaderValue::from_str(&format!("<{link}>; rel=\"next\"")).ok())
    {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

fn lookup(
    shared: &Shared,
    operation: &Operation,
    email: Option<String>,
) -> Result<Response, ApiError> {
    let email = email.ok_or_else(|| ApiError::bad_request("the email to look up is missing"))?;
    let codec = shared.profile.codec(RecordKind::Staff);
    let data = shared.store.read();
    let found = if shared.fault(Fault::StaffLookupCaseSensitive) {
        data.staff
            .iter()
            .position(|s| s.email.as_deref() == Some(email.as_str()))
    } else {
        data.staff_by_email(&email)
            .and_then(|found| data.staff.iter().position(|s| s.id == found.id))
    }
    // Staff shown without an email cannot be found by one.
    .map(|index| shared.shown_staff(index, staff_record(&data.staff[index])))
    .filter(|record| record.contains_key(&Field::Email));
    drop(data);
    let list = operation.answer == Some(AnswerShape::List);
    let flagged = |mut document: Value, found: bool| {
        if let Some(flag) = &operation.found_field {
            flag.set(&mut document, Value::Bool(found));
        }
        document
    };
    if let Some(record) = found {
        let encoded = codec.encode_answer(&record);
        let document = if list {
            body::list_document(operation, vec![encoded])
        } else {
            wrap(&operation.record, encoded)
        };
        return Ok(respond(
            shared,
            operation,
            StatusCode::OK,
            flagged(document, true),
        ));
    }
    if shared.fault(Fault::StaffLookupUndeclaredNone) {
        return Err(ApiError::internal("user not found"));
    }
    // Nobody: the profile's first way of saying so.
    let none = crate::connector::client::lookup_nones(operation)
        .first()
        .copied()
        .unwrap_or(NoneAnswer::NotFound);
    let empty = |status: StatusCode| {
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = status;
        response
    };
    Ok(match none {
        NoneAnswer::NotFound => {
            return Err(ApiError::not_found(format!(
                "no staff member with email `{email}`"
            )))
        }
        NoneAnswer::NoContent => empty(StatusCode::NO_CONTENT),
        NoneAnswer::EmptyBody => empty(StatusCode::OK),
        NoneAnswer::NullRecord => respond(
            shared,
            operation,
            StatusCode::OK,
            flagged(wrap(&operation.record, Value::Null), false),
        ),
        NoneAnswer::EmptyList => respond(
            shared,
            operation,
            StatusCode::OK,
            flagged(body::list_document(operation, Vec::new()), false),
        ),
        NoneAnswer::NullList => {
            let document = match &operation.list {
                Some(path) => path.wrap(Value::Null),
                None => Value::Null,
            };
            respond(shared, operation, StatusCode::OK, flagged(document, false))
        }
        NoneAnswer::Flag => {
            let document = if list {
                body::list_document(operation, Vec::new())
            } else {
                Value::Object(Default::default())
            };
            respond(shared, operation, StatusCode::OK, flagged(document, false))
        }
    })
}

fn read(
    shared: &Shared,
    matched: &Matched,
    operation: &Operation,
    id: Option<String>,
) -> Result<Response, ApiError> {
    let kind = matched.kind.record();
    let id = id.ok_or_else(|| ApiError::bad_request("the record id is missing"))?;
    let data = shared.store.read();
    let record = data
        .records(kind)
        .and_then(|records| records.get(&id))
        .ok_or_else(|| ApiError::not_found(format!("no {kind} with id `{id}`")))?
        .unpack();
    let body = shared.render(&data, kind, &record);
    Ok(respond(
        shared,
        operation,
        StatusCode::OK,
        wrap(&operation.record, body),
    ))
}

fn write(
    shared: &Shared,
    matched: &Matched,
    operation: &Operation,
    path_id: Option<String>,
    document: &Value,
    path: &str,
) -> Result<Response, ApiError> {
    let kind = matched.kind.record();
    let record_json = match &operation.body {
        Some(at) => at.get(document).ok_or_else(|| {
            ApiError::bad_request(format!("the record is expected at `{at}` in the body"))
                .with_field(at.to_string())
        })?,
        None => document,
    };
    if !record_json.is_object() {
        let what = if shared.profile.format_of(operation).is_xml() {
            "an element with fields".to_owned()
        } else {
            format!("a JSON object, found {}", json_kind(record_json))
        };
        return Err(ApiError::bad_request(format!("the record must be {what}")));
    }
    let codec = shared.profile.codec(kind);
    if kind == RecordKind::Prospect && shared.fault(Fault::NullOwner500) {
        let owner_is_null = codec
            .path(Field::Owner)
            .and_then(|path| path.get(record_json))
            .is_some_and(Value::is_null);
        if owner_is_null {
            return Err(ApiError::internal("NullPointerException"));
        }
    }
    // A JSON partner is strict about types, as real ones are: `"42"` where an integer belongs
    // is refused (XML carries every value as text).
    let strict = shared.profile.format_of(operation) == BodyFormat::Json;
    let record = codec
        .decode_request(record_json, strict)
        .map_err(|problems| {
            let message: Vec<String> = problems.iter().map(ToString::to_string).collect();
            ApiError::unprocessable(message.join("; ")).with_field(problems[0].path.clone())
        })?;
    if let Some(problem) = codec
        .check_fixed_typed(record_json, strict)
        .into_iter()
        .next()
    {
        return Err(ApiError::unprocessable(problem.to_string()).with_field(problem.path));
    }
    save(shared, matched, operation, path_id, record, path)
}

/// A date that is not yyyy-mm-dd or an email without a mailbox and a domain, named by its
/// path: refused rather than stored, as the API document's `format` says. Values written
/// inside a pattern, or typed otherwise, are the profile's own shape.
fn malformed_value(shared: &Shared, kind: RecordKind, record: &Record) -> Option<ApiError> {
    let mapping = shared.profile.records.get(&kind)?;
    for (field, value) in record {
        let plain = mapping.fields.get(field).is_some_and(|map| {
            map.value_type == crate::profile::ValueType::String && map.write_pattern.is_none()
        });
        if !plain {
            continue;
        }
        let problem = match field {
            Field::BirthDate | Field::TrialStart | Field::TrialEnd if !is_date(value) => {
                format!("`{value}` is not a date (yyyy-mm-dd)")
            }
            Field::Email if !is_email(value) => {
                format!("`{value}` is not an email address (mailbox@domain)")
            }
            _ => continue,
        };
        let at = shared
            .profile
            .codec(kind)
            .path(*field)
            .map(ToString::to_string)
            .unwrap_or_else(|| field.to_string());
        return Some(ApiError::unprocessable(format!("`{at}`: {problem}")).with_field(at));
    }
    None
}

/// A calendar date written yyyy-mm-dd (RFC 3339 `full-date`), year 1 at the earliest.
fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(0);
    let year = number(0..4) as i32;
    year >= 1 && chrono::NaiveDate::from_ymd_opt(year, number(5..7), number(8..10)).is_some()
}

/// A mailbox and a domain around one `@`, with no white space or control characters.
fn is_email(text: &str) -> bool {
    match text.rsplit_once('@') {
        Some((mailbox, domain)) => {
            !mailbox.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// Saves a record read from a write's body: checks what it must carry, resolves its owner and
/// source, and answers with the record as stored.
fn save(
    shared: &Shared,
    matched: &Matched,
    operation: &Operation,
    path_id: Option<String>,
    mut record: Record,
    path: &str,
) -> Result<Response, ApiError> {
    let kind = matched.kind.record();
    let codec = shared.profile.codec(kind);
    for field in kind.mandatory_on_save() {
        if !record.contains_key(field) {
            let at = codec.path(*field).map(ToString::to_string);
            return Err(ApiError::unprocessable(format!(
                "`{}` is required",
                at.clone().unwrap_or_else(|| field.to_string())
            ))
            .with_field(at.unwrap_or_default()));
        }
    }
    if let Some(problem) = malformed_value(shared, kind, &record) {
        return Err(problem);
    }
    if kind == RecordKind::Prospect {
        if shared.fault(Fault::RejectUnowned) && !record.contains_key(&Field::Owner) {
            return Err(ApiError::unprocessable("an owner is required").with_field(
                codec
                    .path(Field::Owner)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ));
        }
        if shared.fault(Fault::RejectSourceless) && !record.contains_key(&Field::Source) {
            return Err(
                ApiError::unprocessable("a lead source is required").with_field(
                    codec
                        .path(Field::Source)
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                ),
            );
        }
    }
    if kind == RecordKind::Member && shared.fault(Fault::RejectMember) {
        return Err(ApiError::unprocessable("members are not accepted"));
    }
    let mut data = shared.store.write();
    if kind == RecordKind::Source {
        return create_source(shared, &mut data, operation, record, path);
    }
    shared.resolve_references(&mut data, kind, &mut record)?;
    // What the body carried: a PATCH changes only these.
    let sent: std::collections::BTreeSet<Field> = record.keys().copied().collect();
    let unowned = kind == RecordKind::Prospect && !record.contains_key(&Field::Owner);
    let sourceless = kind == RecordKind::Prospect && !record.contains_key(&Field::Source);
    if unowned {
        // The partner's own choice for leads that arrive without an owner.
        if let Some(owner) = &shared.options.default_owner {
            record.insert(Field::Owner, owner.clone());
        }
    }
    let numeric_owner = record
        .get(&Field::Owner)
        .is_some_and(|owner| !owner.is_empty() && owner.bytes().all(|b| b.is_ascii_digit()));
    if shared.fault(Fault::DropOwner) || (numeric_owner && shared.fault(Fault::DropOwnerNumericIds))
    {
        record.remove(&Field::Owner);
    }
    if shared.fault(Fault::UpperCaseNames) {
        for field in [Field::FirstName, Field::LastName] {
            if let Some(value) = record.get_mut(&field) {
                *value = value.to_uppercase();
            }
        }
    }
    if shared.fault(Fault::MangleUnicode) {
        for field in [Field::FirstName, Field::LastName] {
            if let Some(value) = record.get_mut(&field) {
                *value = value
                    .chars()
                    .map(|c| if c.is_ascii() { c } else { '?' })
                    .collect();
            }
        }
    }
    let mut body_id = record.remove(&Field::Id);
    let mut path_id = path_id;
    // The fault turns updates (a save carrying the partner's id) into creates.
    let duplicating = shared.fault(Fault::UpdateCreatesDuplicate)
        && (body_id.is_some() || matched.kind.addresses_one_record());
    if duplicating {
        body_id = None;
        path_id = None;
    }
    // A create resent with the external id of a record already here (its answer was lost)
    // updates that record instead of creating a second one.
    let resent_id = if duplicating || shared.fault(Fault::RetryCreatesDuplicate) {
        None
    } else {
        record
            .get(&Field::ExternalId)
            .and_then(|external| data.id_by_external(kind, external))
    };
    // A create of a record already here is answered with the declared conflict, where the
    // profile declares one, naming the existing record; nothing is changed.
    let creating = body_id.is_none() && !matched.kind.addresses_one_record();
    if let (true, Some(_), Some(existing)) = (creating, &operation.conflict, &resent_id) {
        let mut existing = existing.clone();
        if shared.fault(Fault::ConflictNamesAnotherRecord) {
            existing = data
                .records(kind)
                .and_then(|records| {
                    records
                        .iter()
                        .map(|(id, _)| id.into_owned())
                        .find(|id| *id != existing)
                })
                .unwrap_or_else(|| format!("{existing}0"));
        }
        let shown = data
            .records(kind)
            .and_then(|records| records.get(&existing))
            .map(|stored| shared.shown(&data, &stored.unpack()).into_owned());
        drop(data);
        return Ok(shared.conflict_response(
            operation,
            kind,
            &existing,
            shown.as_ref(),
            path,
            matched.kind,
        ));
    }
    let target_id = match matched.kind {
        OperationKind::ProspectSave | OperationKind::MemberSave => body_id.or(resent_id),
        OperationKind::ProspectUpdate | OperationKind::MemberUpdate
            if !shared.fault(Fault::UpdateCreatesDuplicate) =>
        {
            // In the path or query, or (a profile whose updates name the record in the body)
            // the record's own id.
            Some(
                path_id
                    .or(body_id)
                    .ok_or_else(|| ApiError::bad_request("the record id is missing"))?,
            )
        }
        _ => resent_id,
    };
    let (status, id) = match target_id {
        Some(id) => {
            let known = data
                .records(kind)
                .is_some_and(|records| records.contains_key(&id));
            if !known {
                return Err(
                    ApiError::not_found(format!("no {kind} with id `{id}`")).with_field(
                        codec
                            .path(Field::Id)
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                    ),
                );
            }
            // A PATCH keeps what it does not send; a PUT (or a save) replaces the record.
            let stored = data
                .records(kind)
                .filter(|_| operation.method == crate::profile::Method::Patch)
                .and_then(|records| records.get(&id))
                .map(|stored| stored.unpack());
            for (field, value) in stored.into_iter().flatten() {
                if !sent.contains(&field) {
                    record.insert(field, value);
                }
            }
            (StatusCode::OK, id)
        }
        None => {
            let held = data.prospects.len() + data.members.len();
            if let Some(cap) = shared.options.max_records.filter(|cap| held >= *cap) {
                return Err(ApiError::store_full(cap));
            }
            (StatusCode::CREATED, data.next_id(kind))
        }
    };
    record.insert(Field::Id, id.clone());
    let answer_lost =
        status == StatusCode::CREATED && shared.fault(Fault::LostAnswers) && shared.flaky_strikes();
    // The usual JSON answer is written straight to bytes, from the record before it is
    // stored: no copy of it and no JSON tree. Other answers take a copy to encode once the
    // store is released.
    let acknowledgement = operation.answer == Some(AnswerShape::Acknowledgement);
    let usual_json = shared.profile.format_of(operation) == BodyFormat::Json
        && !shared.fault(Fault::SaveReturnsNoId)
        && !acknowledgement
        && operation.id_at.is_none();
    let answer = if answer_lost {
        None
    } else if usual_json {
        let shown = shared.shown(&data, &record);
        Some(Ok(codec.encode_json(
            &shown,
            operation.record.as_ref(),
            Side::Answer,
        )))
    } else {
        Some(Err(shared.shown(&data, &record).into_owned()))
    };
    // The faults answer a new unowned (sourceless) lead as saved, and keep nothing of it.
    let discarded = status == StatusCode::CREATED
        && ((unowned && shared.fault(Fault::DiscardUnowned))
            || (sourceless && shared.fault(Fault::DiscardSourceless)));
    if !discarded {
        data.put(kind, record);
    }
    drop(data);
    match answer {
        None => Err(ApiError::internal(
            "the answer was lost (the record is saved)",
        )),
        Some(Ok(body)) => {
            let content_type = shared
                .json_media_type(operation)
                .unwrap_or(HeaderValue::from_static("application/json"));
            let response = bytes_response(status, content_type, body.into());
            Ok(shared.with_location(response, operation, path, &id, matched.kind))
        }
        Some(Err(_)) if acknowledgement => {
            Ok(shared.acknowledgement(operation, status, kind, &id, path, matched.kind))
        }
        Some(Err(shown)) if shared.fault(Fault::SaveReturnsNoId) => Ok(answer_without_id(
            shared,
            operation,
            status,
            &codec,
            codec.encode_answer(&shown),
        )),
        Some(Err(shown)) => {
            let rendered = codec.encode_answer(&shown);
            Ok(shared.saved_response(operation, status, rendered, path, &id, matched.kind))
        }
    }
}

fn create_source(
    shared: &Shared,
    data: &mut StoreData,
    operation: &Operation,
    record: Record,
    path: &str,
) -> Result<Response, ApiError> {
    if shared.fault(Fault::RejectNewSource) {
        return Err(ApiError::unprocessable(
            "lead sources cannot be created here",
        ));
    }
    let name = record.get(&Field::Name).cloned().unwrap_or_default();
    if let (Some(_), Some(existing)) = (&operation.conflict, data.source_by_name(&name)) {
        let existing = existing.clone();
        return Ok(shared.conflict_response(
            operation,
            RecordKind::Source,
            &existing.id,
            Some(&source_record(&existing)),
            path,
            OperationKind::SourceCreate,
        ));
    }
    let (status, source) = match data.source_by_name(&name) {
        Some(existing) => (StatusCode::OK, existing.clone()),
        None => {
            let source = crate::model::LeadSource {
                id: data.next_id(RecordKind::Source),
                name,
            };
            if !shared.fault(Fault::SourceCreateNoPersist) {
                data.sources.push(source.clone());
            }
            if !shared.options.source_list_lag.is_zero() {
                if let Ok(mut created) = shared.sources_created.lock() {
                    created.insert(source.id.clone(), std::time::Instant::now());
                }
            }
            if shared.fault(Fault::SourceCreateDuplicates) {
                let twin = crate::model::LeadSource {
                    id: data.next_id(RecordKind::Source),
                    name: source.name.clone(),
                };
                data.sources.push(twin);
            }
            (StatusCode::CREATED, source)
        }
    };
    // The fault answers the id of the first other source there is.
    let source = match data.sources.iter().find(|other| other.id != source.id) {
        Some(other)
            if status == StatusCode::CREATED && shared.fault(Fault::SourceCreateWrongId) =>
        {
            crate::model::LeadSource {
                id: other.id.clone(),
                name: source.name,
            }
        }
        _ => source,
    };
    let codec = shared.profile.codec(RecordKind::Source);
    if operation.answer == Some(AnswerShape::Acknowledgement) {
        let id = (!shared.fault(Fault::SourceCreateNoId)).then_some(source.id.as_str());
        return Ok(shared.acknowledgement_of(
            operation,
            status,
            RecordKind::Source,
            id,
            path,
            OperationKind::SourceCreate,
        ));
    }
    let rendered = codec.encode_answer(&source_record(&source));
    if shared.fault(Fault::SourceCreateNoId) {
        return Ok(answer_without_id(
            shared, operation, status, &codec, rendered,
        ));
    }
    Ok(shared.saved_response(
        operation,
        status,
        rendered,
        path,
        &source.id,
        OperationKind::SourceCreate,
    ))
}

impl Shared {
    /// The operation of the other kind (prospect or member) on the same route, if the profile
    /// declares one.
    fn twin_of(&self, kind: OperationKind) -> Option<OperationKind> {
        self.twins.get(&kind).copied()
    }

    /// Whether a request matched to `kind` is for its twin: a record of the twin's kind holds
    /// its id, or (without an id) its body holds the twin's fixed values and not its own.
    fn is_twin_request(
        &self,
        twin: OperationKind,
        kind: OperationKind,
        id: Option<&str>,
        document: Option<&Value>,
    ) -> bool {
        let data = self.store.read();
        let holds = |kind: OperationKind, id: &str| {
            data.records(kind.record())
                .is_some_and(|records| records.contains_key(id))
        };
        let body_id = |kind: OperationKind| {
            let operation = self.profile.operation(kind)?;
            let record = record_of(operation, document?)?;
            let path = self.profile.codec(kind.record()).write_path(Field::Id)?;
            crate::profile::path::scalar_text(path.get(record)?)
        };
        if let Some(id) = id
            .map(str::to_owned)
            .or_else(|| body_id(kind))
            .or_else(|| body_id(twin))
        {
            return !holds(kind, &id) && holds(twin, &id);
        }
        let fits = |kind: OperationKind| {
            let Some(operation) = self.profile.operation(kind) else {
                return false;
            };
            let Some(document) = document else {
                return false;
            };
            // The operation's own params, then the record's fixed values.
            body::read_params(operation, &self.profile.tenancy, document).is_ok()
                && record_of(operation, document).is_some_and(|record| {
                    self.profile
                        .codec(kind.record())
                        .check_fixed(record)
                        .is_empty()
                })
        };
        !fits(kind) && fits(twin)
    }

    /// The staff record at `index` of the store as this partner shows it: without an email
    /// under `staff-missing-email`, and for every tenth one under `staff-some-without-email`.
    fn shown_staff(&self, index: usize, mut record: Record) -> Record {
        let hidden = self.fault(Fault::StaffMissingEmail)
            || (self.fault(Fault::StaffSomeWithoutEmail) && index % 10 == 9);
        if hidden {
            record.remove(&Field::Email);
        }
        record
    }

    /// Whether `source` shows in the source list yet (see `PartnerOptions::source_list_lag`).
    fn source_listed_yet(&self, source: &crate::model::LeadSource) -> bool {
        let lag = self.options.source_list_lag;
        if lag.is_zero() {
            return true;
        }
        self.sources_created
            .lock()
            .map(|created| created.get(&source.id).is_none_or(|at| at.elapsed() >= lag))
            .unwrap_or(true)
    }

    /// Whether the `flaky` fault fails this request: a seeded share, never twice in a row.
    fn flaky_strikes(&self) -> bool {
        use std::sync::atomic::Ordering;
        let n = self.flaky_counter.fetch_add(1, Ordering::Relaxed);
        let mut x = self.options.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let strike = x % 100 < FLAKY_PERCENT && !self.flaky_last.load(Ordering::Relaxed);
        self.flaky_last.store(strike, Ordering::Relaxed);
        strike
    }

    /// Turns the owner and source a prospect names into the partner's ids.
    fn resolve_references(
        &self,
        data: &mut StoreData,
        kind: RecordKind,
        record: &mut Record,
    ) -> Result<(), ApiError> {
        if kind != RecordKind::Prospect {
            return Ok(());
        }
        let codec = self.profile.codec(kind);
        let at = |field| {
            codec
                .path(field)
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        // An id already known here needs no rewriting (the usual case: no copies made).
        let owner_known = self.profile.references.owner == OwnerReference::Id
            && record
                .get(&Field::Owner)
                .is_some_and(|owner| data.staff.iter().any(|s| s.id == *owner));
        let source_known = self.profile.references.source == SourceReference::Id
            && record
                .get(&Field::Source)
                .is_some_and(|source| data.sources.iter().any(|s| s.id == *source));
        if let Some(owner) = record.get(&Field::Owner).filter(|_| !owner_known).cloned() {
            let staff_id = match self.profile.references.owner {
                OwnerReference::Id => data
                    .staff
                    .iter()
                    .find(|s| s.id == owner)
                    .map(|s| s.id.clone()),
                OwnerReference::Email if self.fault(Fault::OwnerEmailCaseSensitive) => data
                    .staff
                    .iter()
                    .find(|s| s.email.as_deref() == Some(owner.as_str()))
                    .map(|s| s.id.clone()),
                OwnerReference::Email => data.staff_by_email(&owner).map(|s| s.id.clone()),
            };
            let staff_id = staff_id.ok_or_else(|| {
                ApiError::unprocessable(format!("owner `{owner}` is not a staff member here"))
                    .with_field(at(Field::Owner))
            })?;
            record.insert(Field::Owner, staff_id);
        }
        if let Some(source) = record
            .get(&Field::Source)
            .filter(|_| !source_known)
            .cloned()
        {
            let source_id = match self.profile.references.source {
                SourceReference::Id => data
                    .sources
                    .iter()
                    .find(|s| s.id == source)
                    .map(|s| s.id.clone()),
                SourceReference::Name
                    if self.fault(Fault::SourceCaseSensitive)
                        || self.fault(Fault::SourceAsciiOnlyFolding) =>
                {
                    let ascii_only = self.fault(Fault::SourceAsciiOnlyFolding);
                    let exact = data
                        .sources
                        .iter()
                        .find(|s| {
                            if ascii_only {
                                s.name.eq_ignore_ascii_case(&source)
                            } else {
                                s.name == source
                            }
                        })
                        .map(|s| s.id.clone());
                    // The faulty partner creates a second source for another spelling.
                    Some(exact.unwrap_or_else(|| {
                        let created = crate::model::LeadSource {
                            id: data.next_id(RecordKind::Source),
                            name: source.clone(),
                        };
                        data.sources.push(created.clone());
                        created.id
                    }))
                }
                // A partner taking its own spelling (a picklist) matches it exactly.
                SourceReference::Name if !self.profile.references.resolves_source_names() => data
                    .sources
                    .iter()
                    .find(|s| s.name == source)
                    .map(|s| s.id.clone()),
                SourceReference::Name => data.source_by_name(&source).map(|s| s.id.clone()),
            };
            let source_id = source_id.ok_or_else(|| {
                ApiError::unprocessable(format!("lead source `{source}` is not known here"))
                    .with_field(at(Field::Source))
            })?;
            record.insert(Field::Source, source_id);
        }
        Ok(())
    }

    /// A stored record in the partner's JSON, owner and source named as the profile says.
    fn render(&self, data: &StoreData, kind: RecordKind, stored: &Record) -> Value {
        self.profile
            .codec(kind)
            .encode_answer(&self.shown(data, stored))
    }

    /// The JSON media type a declared `Accept` asks for (`application/vnd.api+json`), which
    /// the answers then carry.
    fn json_media_type(&self, operation: &Operation) -> Option<HeaderValue> {
        let accept = operation
            .headers
            .iter()
            .chain(&self.profile.partner.headers)
            .find(|(name, _)| name.eq_ignore_ascii_case("accept"))?
            .1
            .render(&self.profile.tenancy, str::to_owned)
            .ok()?;
        let media = accept.split(',').next()?.trim().to_owned();
        let json = media.split(';').next()?.trim();
        (json.ends_with("/json") || json.ends_with("+json"))
            .then(|| HeaderValue::from_str(&media).ok())
            .flatten()
    }

    /// The answer to a write whose profile answers an acknowledgement: the id at `id-at`
    /// (typed as the id field is), or in the `Location`; without either, no body.
    fn acknowledgement(
        &self,
        operation: &Operation,
        status: StatusCode,
        kind: RecordKind,
        id: &str,
        path: &str,
        operation_kind: OperationKind,
    ) -> Response {
        let id = (!self.fault(Fault::SaveReturnsNoId)).then_some(id);
        self.acknowledgement_of(operation, status, kind, id, path, operation_kind)
    }

    fn acknowledgement_of(
        &self,
        operation: &Operation,
        status: StatusCode,
        kind: RecordKind,
        id: Option<&str>,
        path: &str,
        operation_kind: OperationKind,
    ) -> Response {
        match (&operation.id_at, operation.id_from.unwrap_or_default()) {
            (Some(id_at), IdFrom::Body) => {
                let value = id.map_or(Value::Null, |id| self.id_at_value(operation, kind, id));
                respond(self, operation, status, id_at.wrap(value))
            }
            (_, id_from) => {
                let mut response = Response::new(axum::body::Body::empty());
                // Nothing to say: an update answers 204; a create says where the record is.
                *response.status_mut() = if status == StatusCode::CREATED {
                    status
                } else {
                    StatusCode::NO_CONTENT
                };
                match (id, id_from) {
                    (Some(id), IdFrom::Location | IdFrom::Header) => {
                        self.with_location(response, operation, path, id, operation_kind)
                    }
                    _ => response,
                }
            }
        }
    }

    /// A record's id as a write's `id-at` holds it: inside the text of `id-pattern`, or typed
    /// as the id field is.
    fn id_at_value(&self, operation: &Operation, kind: RecordKind, id: &str) -> Value {
        match &operation.id_pattern {
            Some(pattern) => Value::String(crate::profile::codec::render_id(pattern, id)),
            None => crate::profile::codec::typed_value(
                self.profile.codec(kind).value_type(Field::Id),
                id,
            ),
        }
    }

    /// The declared conflict answer for a create of a record this partner already holds
    /// under `id` (`shown`, as the partner shows it).
    fn conflict_response(
        &self,
        operation: &Operation,
        kind: RecordKind,
        id: &str,
        shown: Option<&Record>,
        path: &str,
        operation_kind: OperationKind,
    ) -> Response {
        let Some(conflict) = &operation.conflict else {
            return ApiError::internal("no conflict answer is declared")
                .into_response_as(self.profile.format_of(operation));
        };
        let status = StatusCode::from_u16(conflict.status).unwrap_or(StatusCode::CONFLICT);
        let codec = self.profile.codec(kind);
        let mut document = match (&conflict.id_at, conflict.id_from, shown) {
            (None, IdFrom::Body, Some(shown)) => {
                wrap(&operation.record, codec.encode_answer(shown))
            }
            // Null to begin with: the first path set makes it the object or array it needs.
            _ => Value::Null,
        };
        if let Some(id_at) = conflict
            .id_at
            .as_ref()
            .filter(|_| conflict.id_from == IdFrom::Body)
        {
            let value = match &conflict.pattern {
                Some(pattern) => Value::String(crate::profile::codec::render_id(pattern, id)),
                None => crate::profile::codec::typed_value(codec.value_type(Field::Id), id),
            };
            id_at.set(&mut document, value);
        }
        if let (Some(when), Some(equals)) = (&conflict.when, &conflict.equals) {
            when.set(&mut document, Value::String(equals.clone()));
        }
        if document.is_null() {
            document = Value::Object(Default::default());
        }
        let response = respond(self, operation, status, document);
        if conflict.id_from == IdFrom::Location {
            let location = self.location_of(operation_kind, path, id);
            let mut response = response;
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            return response;
        }
        response
    }

    /// A stored record with its owner and source named as the profile references them
    /// (the record itself where it references both by id).
    fn shown<'r>(&self, data: &StoreData, stored: &'r Record) -> std::borrow::Cow<'r, Record> {
        let references = &self.profile.references;
        let (owner, source) = (references.owner_as_read(), references.source_as_read());
        if owner == OwnerReference::Id && source == SourceReference::Id {
            return std::borrow::Cow::Borrowed(stored);
        }
        let mut shown = stored.clone();
        if owner == OwnerReference::Email {
            if let Some(owner) = stored.get(&Field::Owner) {
                match data
                    .staff
                    .iter()
                    .find(|s| &s.id == owner)
                    .and_then(|s| s.email.clone())
                {
                    Some(email) => shown.insert(Field::Owner, email),
                    None => shown.remove(&Field::Owner),
                };
            }
        }
        if source == SourceReference::Name {
            if let Some(source) = stored.get(&Field::Source) {
                match data.sources.iter().find(|s| &s.id == source) {
                    Some(found) => shown.insert(Field::Source, found.name.clone()),
                    None => shown.remove(&Field::Source),
                };
            }
        }
        std::borrow::Cow::Owned(shown)
    }

    /// The answer to a successful write: the record where the profile says, and the id where
    /// the profile says.
    fn saved_response(
        &self,
        operation: &Operation,
        status: StatusCode,
        rendered: Value,
        path: &str,
        id: &str,
        kind: OperationKind,
    ) -> Response {
        let mut document = wrap(&operation.record, rendered);
        // The id also where the profile says it is, beside the record.
        if let Some(id_at) = &operation.id_at {
            id_at.set(
                &mut document,
                self.id_at_value(operation, kind.record(), id),
            );
        }
        let response = respond(self, operation, status, document);
        self.with_location(response, operation, path, id, kind)
    }

    /// `response` with the saved record's `Location` (or the header the profile names) where
    /// the profile takes the id from it.
    fn with_location(
        &self,
        mut response: Response,
        operation: &Operation,
        path: &str,
        id: &str,
        kind: OperationKind,
    ) -> Response {
        let (name, value) = match (operation.id_from, &operation.id_header) {
            (Some(IdFrom::Location), _) => (
                header::LOCATION,
                match &operation.id_pattern {
                    Some(pattern) => crate::profile::codec::render_id(pattern, id),
                    None => self.location_of(kind, path, id),
                },
            ),
            (Some(IdFrom::Header), Some(name)) => {
                let Ok(name) = header::HeaderName::from_bytes(name.as_bytes()) else {
                    return response;
                };
                let value = match &operation.id_pattern {
                    Some(pattern) => crate::profile::codec::render_id(pattern, id),
                    None => id.to_owned(),
                };
                (name, value)
            }
            _ => return response,
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
        response
    }

    /// Where a saved record can be found: the read operation's path, or the write path + id.
    fn location_of(&self, kind: OperationKind, path: &str, id: &str) -> String {
        let encoded_id = path_segment(id);
        let read = self
            .profile
            .read_operation(kind.record())
            .and_then(|read| self.profile.operation(read));
        if let Some(read) = read {
            struct Values<'a>(&'a crate::profile::Tenancy, &'a str);
            impl crate::profile::SlotValues for Values<'_> {
                fn value(&self, slot: Slot) -> Option<&str> {
                    match slot {
                        Slot::Id => Some(self.1),
                        other => self.0.value(other),
                    }
                }
            }
            // The client takes the id from the Location's last segment: only a read path
            // ending in `{id}` can serve as the Location.
            let ends_in_id = matches!(
                read.path.pieces().last(),
                Some(crate::profile::template::Piece::Slot(Slot::Id))
            );
            if !ends_in_id {
                return format!("{}/{encoded_id}", path.trim_end_matches('/'));
            }
            if let Ok(rendered) = read
                .path
                .render(&Values(&self.profile.tenancy, id), path_segment)
            {
                if read.query.is_empty() {
                    return rendered;
                }
            }
        }
        format!("{}/{encoded_id}", path.trim_end_matches('/'))
    }
}

/// What a path segment may hold unencoded (RFC 3986 `pchar`): unreserved characters,
/// sub-delimiters, `:` and `@`.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// `value` as one path segment: encoded only where a segment needs it, and never the dot
/// segments `.` or `..`, which a client would resolve away.
fn path_segment(value: &str) -> String {
    if value == "." || value == ".." {
        return value.replace('.', "%2E");
    }
    percent_encoding::utf8_percent_encode(value, PATH_SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn a_path_segment_encodes_only_what_a_segment_needs() {
        assert_eq!(path_segment("P-000002"), "P-000002");
        assert_eq!(
            path_segment("a_b.c~d!$&'()*+,;=:@e"),
            "a_b.c~d!$&'()*+,;=:@e"
        );
        assert_eq!(path_segment("a/b?c#d e%f"), "a%2Fb%3Fc%23d%20e%25f");
        assert_eq!(path_segment("Zoë"), "Zo%C3%AB");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("."), "%2E");
    }
}
