//! The admin dump of the mock partner's store: the whole store streamed a chunk at a time, or
//! one page of one kind of record with the link to the next.

use super::store::{DumpChunks, Position, Section};
use super::{ApiError, PartnerState, ADMIN_PREFIX};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

/// Records in a page unless `limit` says otherwise.
pub const DEFAULT_PAGE: usize = 1_000;

/// The most records one page holds.
pub const MAX_PAGE: usize = 10_000;

/// `GET /__spoke/store`: the whole store; `?kind=K[&after=ID][&limit=N]`: one page of kind K.
pub(super) async fn admin_dump(
    State(state): State<PartnerState>,
    RawQuery(query): RawQuery,
) -> Response {
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let answer = match query.is_empty() {
        true => Ok(whole(state)),
        false => page(&state, &query),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// The whole store, streamed: the lock is taken for each chunk, never for the whole dump, and
/// no more than a chunk is in memory.
fn whole(state: PartnerState) -> Response {
    let chunks = futures_util::stream::unfold(
        (state, DumpChunks::default()),
        |(state, mut chunks)| async move {
            let chunk = chunks.next_chunk(state.store())?;
            let chunk = Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(chunk));
            Some((chunk, (state, chunks)))
        },
    );
    let mut response = Response::new(axum::body::Body::from_stream(chunks));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// One page of one kind: `{"kind", "records", "count", "next"}`, `next` (and a `Link` header)
/// the path of the following page, `null` after the last.
fn page(state: &PartnerState, query: &BTreeMap<String, String>) -> Result<Response, ApiError> {
    if let Some(unknown) = query
        .keys()
        .find(|name| !["kind", "after", "limit"].contains(&name.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "the store dump takes `kind`, `after` and `limit`, not `{unknown}`"
        ))
        .with_field(unknown.clone()));
    }
    let kinds = "staff, sources, prospects or members";
    let kind = query.get("kind").ok_or_else(|| {
        ApiError::bad_request(format!("a page is of one `kind`: {kinds}")).with_field("kind")
    })?;
    let section = Section::from_key(kind).ok_or_else(|| {
        ApiError::bad_request(format!("no kind `{kind}` in the store: {kinds}")).with_field("kind")
    })?;
    let limit = match query.get("limit") {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse()
            .ok()
            .filter(|limit| (1..=MAX_PAGE).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`limit` is a whole number from 1 to {MAX_PAGE}, not `{text}`"
                ))
                .with_field("limit")
            })?,
    };
    let mut body = format!("{{\"kind\":\"{kind}\",\"records\":[").into_bytes();
    let written = {
        let data = state.store().read();
        let from = match query.get("after") {
            None => Position::default(),
            Some(id) => data.position_after(section, id).ok_or_else(|| {
                ApiError::bad_request(format!("no {kind} record `{id}` to go on after"))
                    .with_field("after")
            })?,
        };
        data.write_section(section, from, limit, &mut body, &mut true)
    };
    let next = match (written.next, &written.last_id) {
        (Some(_), Some(last)) => Some(format!(
            "{ADMIN_PREFIX}/store?kind={kind}&after={}&limit={limit}",
            form_urlencoded::byte_serialize(last.as_bytes()).collect::<String>()
        )),
        _ => None,
    };
    body.extend_from_slice(format!("],\"count\":{},\"next\":", written.count).as_bytes());
    // A path of URL-safe characters: written as a JSON string as it is.
    body.extend_from_slice(serde_json::to_string(&next).unwrap_or_default().as_bytes());
    body.push(b'}');
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(link) =
        next.and_then(|next| HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")).ok())
    {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}
