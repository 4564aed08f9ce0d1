//! The mock partner's reference behaviour for each kind of operation, through the profile.

use super::error::ApiError;
use super::paging;
use super::store::StoreData;
use super::{Fault, Matched, PartnerState, Shared};
use crate::auth::AuthCheck;
use crate::model::{Field, Record, RecordKind};
use crate::profile::codec::json_kind;
use crate::profile::{
    IdFrom, LookupAnswer, Operation, OperationKind, OperationRole, OwnerReference, Slot,
    SourceReference, Template,
};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::collections::BTreeMap;

/// Serves one request addressed to the partner's API.
pub(super) async fn handle(state: &PartnerState, request: Request) -> Result<Response, ApiError> {
    let shared = &state.shared;
    if shared.fault(Fault::Slow) {
        tokio::time::sleep(shared.options.slow_delay).await;
    }
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let matched = shared.match_route(&parts.method, &path)?;
    if matched.kind == OperationKind::StaffList && shared.fault(Fault::NoStaffList) {
        return Err(ApiError::no_route(format!(
            "no operation of this partner at {path}"
        )));
    }
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let auth = shared.credentials.check(
        |name| parts.headers.get(name).and_then(|v| v.to_str().ok()),
        |name| query.get(name).map(String::as_str),
    );
    match auth {
        AuthCheck::Accepted => {}
        AuthCheck::Missing => return Err(ApiError::unauthenticated()),
        AuthCheck::Wrong => return Err(ApiError::forbidden()),
    }
    let operation = shared
        .profile
        .operation(matched.kind)
        .ok_or_else(|| ApiError::not_found("no such operation"))?;
    let captured = check_query(shared, operation, &query)?;
    let id = matched.path_id.clone().or(captured.id);
    let email = matched.path_email.clone().or(captured.email);
    let body = axum::body::to_bytes(body, shared.options.body_limit)
        .await
        .map_err(|_| ApiError::too_large(shared.options.body_limit))?;
    match matched.kind.role() {
        OperationRole::List => list(shared, &matched, operation, &path, &query),
        OperationRole::Lookup => lookup(shared, operation, email),
        OperationRole::Read => read(shared, &matched, operation, id),
        OperationRole::Write => write(shared, &matched, operation, id, &body, &path),
    }
}

#[derive(Default)]
struct Captured {
    id: Option<String>,
    email: Option<String>,
}

/// Checks the operation's declared query parameters: constants must match, `{id}` and
/// `{email}` are captured.
fn check_query(
    shared: &Shared,
    operation: &Operation,
    query: &BTreeMap<String, String>,
) -> Result<Captured, ApiError> {
    let mut captured = Captured::default();
    for (name, template) in &operation.query {
        let given = query.get(name);
        let slots = template.slots();
        if slots.contains(&Slot::Id) || slots.contains(&Slot::Email) {
            let Some(given) = given else {
                return Err(
                    ApiError::bad_request(format!("query parameter `{name}` is required"))
                        .with_field(name),
                );
            };
            let value = extract_slot(template, given).ok_or_else(|| {
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

/// The value filling a template's one `{id}`/`{email}` slot in `given`, literals around it.
fn extract_slot(template: &Template, given: &str) -> Option<String> {
    use crate::profile::template::Piece;
    let mut prefix = String::new();
    let mut suffix = String::new();
    let mut seen_slot = false;
    for piece in template.pieces() {
        match piece {
            Piece::Text(text) if !seen_slot => prefix.push_str(text),
            Piece::Text(text) => suffix.push_str(text),
            Piece::Slot(Slot::Id | Slot::Email) => seen_slot = true,
            Piece::Slot(_) => return None,
        }
    }
    let value = given.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
    (!value.is_empty()).then(|| value.to_owned())
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
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

fn list(
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
    // The loop fault serves the first page again wherever a later one is asked for.
    let served = if shared.fault(Fault::StaffPaginationLoop)
        && kind == RecordKind::Staff
        && window.offset > 0
    {
        paging::Window {
            offset: 0,
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
                .skip(served.offset)
                .take(served.limit)
                .map(staff_record)
                .collect(),
            _ => data
                .sources
                .iter()
                .skip(window.offset)
                .take(window.limit)
                .map(source_record)
                .collect(),
        };
        let total = match kind {
            RecordKind::Staff => data.staff.len(),
            _ => data.sources.len(),
        };
        (records, total)
    };
    let array = Value::Array(items.iter().map(|r| codec.encode(r)).collect());
    let mut document = wrap(&operation.list, array);
    paging::annotate(&paging_spec, &mut document, window, total, path, query);
    Ok(json_response(StatusCode::OK, document))
}

fn lookup(
    shared: &Shared,
    operation: &Operation,
    email: Option<String>,
) -> Result<Response, ApiError> {
    let email = email.ok_or_else(|| ApiError::bad_request("the email to look up is missing"))?;
    let codec = shared.profile.codec(RecordKind::Staff);
    let found = shared.store.read().staff_by_email(&email).map(staff_record);
    match operation.answer {
        Some(LookupAnswer::List) => {
            let items: Vec<Value> = found.iter().map(|r| codec.encode(r)).collect();
            Ok(json_response(
                StatusCode::OK,
                wrap(&operation.list, Value::Array(items)),
            ))
        }
        _ => match found {
            Some(record) => Ok(json_response(
                StatusCode::OK,
                wrap(&operation.record, codec.encode(&record)),
            )),
            None => Err(ApiError::not_found(format!(
                "no staff member with email `{email}`"
            ))),
        },
    }
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
        .ok_or_else(|| ApiError::not_found(format!("no {kind} with id `{id}`")))?;
    let body = shared.render(&data, kind, record);
    Ok(json_response(StatusCode::OK, wrap(&operation.record, body)))
}

fn write(
    shared: &Shared,
    matched: &Matched,
    operation: &Operation,
    path_id: Option<String>,
    body: &[u8],
    path: &str,
) -> Result<Response, ApiError> {
    let kind = matched.kind.record();
    let document: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("the body is not valid JSON: {error}")))?;
    let record_json = match &operation.body {
        Some(at) => at.get(&document).ok_or_else(|| {
            ApiError::bad_request(format!("the record is expected at `{at}` in the body"))
                .with_field(at.to_string())
        })?,
        None => &document,
    };
    if !record_json.is_object() {
        return Err(ApiError::bad_request(format!(
            "the record must be a JSON object, found {}",
            json_kind(record_json)
        )));
    }
    let codec = shared.profile.codec(kind);
    let mut record = codec.decode(record_json).map_err(|problems| {
        let message: Vec<String> = problems.iter().map(ToString::to_string).collect();
        ApiError::unprocessable(message.join("; ")).with_field(problems[0].path.clone())
    })?;
    if let Some(problem) = codec.check_fixed(record_json).into_iter().next() {
        return Err(ApiError::unprocessable(problem.to_string()).with_field(problem.path));
    }
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
    if shared.fault(Fault::DropOwner) {
        record.remove(&Field::Owner);
    }
    let mut body_id = record.remove(&Field::Id);
    let mut path_id = path_id;
    if shared.fault(Fault::UpdateCreatesDuplicate) {
        body_id = None;
        path_id = None;
    }
    let target_id = match matched.kind {
        OperationKind::ProspectSave | OperationKind::MemberSave => body_id,
        OperationKind::ProspectUpdate | OperationKind::MemberUpdate
            if !shared.fault(Fault::UpdateCreatesDuplicate) =>
        {
            Some(path_id.ok_or_else(|| ApiError::bad_request("the record id is missing"))?)
        }
        _ => None,
    };
    let (status, id) = match target_id {
        Some(id) => {
            let records = data.records_mut(kind).expect("written kinds have records");
            if !records.contains_key(&id) {
                return Err(
                    ApiError::not_found(format!("no {kind} with id `{id}`")).with_field(
                        codec
                            .path(Field::Id)
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                    ),
                );
            }
            record.insert(Field::Id, id.clone());
            records.insert(id.clone(), record);
            (StatusCode::OK, id)
        }
        None => {
            let id = data.next_id(kind);
            record.insert(Field::Id, id.clone());
            data.records_mut(kind)
                .expect("written kinds have records")
                .insert(id.clone(), record);
            (StatusCode::CREATED, id)
        }
    };
    let stored = &data.records(kind).expect("written kinds have records")[&id];
    let mut rendered = shared.render(&data, kind, stored);
    if shared.fault(Fault::SaveReturnsNoId) {
        if let Some(id_path) = codec.path(Field::Id) {
            id_path.set(&mut rendered, Value::Null);
        }
        return Ok(json_response(status, wrap(&operation.record, rendered)));
    }
    Ok(shared.saved_response(operation, status, rendered, path, &id, matched.kind))
}

fn create_source(
    shared: &Shared,
    data: &mut StoreData,
    operation: &Operation,
    record: Record,
    path: &str,
) -> Result<Response, ApiError> {
    let name = record.get(&Field::Name).cloned().unwrap_or_default();
    let (status, source) = match data.source_by_name(&name) {
        Some(existing) => (StatusCode::OK, existing.clone()),
        None => {
            let source = crate::model::LeadSource {
                id: data.next_id(RecordKind::Source),
                name,
            };
            data.sources.push(source.clone());
            (StatusCode::CREATED, source)
        }
    };
    let rendered = shared
        .profile
        .codec(RecordKind::Source)
        .encode(&source_record(&source));
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
        if let Some(owner) = record.get(&Field::Owner).cloned() {
            let staff_id = match self.profile.references.owner {
                OwnerReference::Id => data
                    .staff
                    .iter()
                    .find(|s| s.id == owner)
                    .map(|s| s.id.clone()),
                OwnerReference::Email => data.staff_by_email(&owner).map(|s| s.id.clone()),
            };
            let staff_id = staff_id.ok_or_else(|| {
                ApiError::unprocessable(format!("owner `{owner}` is not a staff member here"))
                    .with_field(at(Field::Owner))
            })?;
            record.insert(Field::Owner, staff_id);
        }
        if let Some(source) = record.get(&Field::Source).cloned() {
            let source_id = match self.profile.references.source {
                SourceReference::Id => data
                    .sources
                    .iter()
                    .find(|s| s.id == source)
                    .map(|s| s.id.clone()),
                SourceReference::Name if self.fault(Fault::SourceCaseSensitive) => {
                    let exact = data
                        .sources
                        .iter()
                        .find(|s| s.name == source)
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
        let mut shown = stored.clone();
        if self.profile.references.owner == OwnerReference::Email {
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
        if self.profile.references.source == SourceReference::Name {
            if let Some(source) = stored.get(&Field::Source) {
                match data.sources.iter().find(|s| &s.id == source) {
                    Some(found) => shown.insert(Field::Source, found.name.clone()),
                    None => shown.remove(&Field::Source),
                };
            }
        }
        self.profile.codec(kind).encode(&shown)
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
        let mut response = json_response(status, wrap(&operation.record, rendered));
        if operation.id_from == Some(IdFrom::Location) {
            let location = self.location_of(kind, path, id);
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
        }
        response
    }

    /// Where a saved record can be found: the read operation's path, or the write path + id.
    fn location_of(&self, kind: OperationKind, path: &str, id: &str) -> String {
        let encoded_id =
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
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
            if let Ok(rendered) = read.path.render(&Values(&self.profile.tenancy, id), |v| {
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            }) {
                if read.query.is_empty() {
                    return rendered;
                }
            }
        }
        format!("{}/{encoded_id}", path.trim_end_matches('/'))
    }
}
