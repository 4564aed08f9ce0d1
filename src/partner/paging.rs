//! The server side of a profile's paging: which slice a request asks for, and the metadata
//! (total, next cursor or link) its answer carries.

use super::error::ApiError;
use crate::profile::{Paging, PagingStyle};
use serde_json::Value;
use std::collections::BTreeMap;

/// The largest page the mock partner serves, whatever is asked.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The largest page number, offset or page size the mock takes: larger ones are refused with
/// 400, as its API document's `maximum` says.
pub const MAX_QUERY_NUMBER: usize = i32::MAX as usize;

/// The query parameter the mock's own next links carry.
pub const PAGE_TOKEN_PARAM: &str = "page_token";

/// The slice of a list one request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Index of the first record.
    pub offset: usize,
    /// Records at most.
    pub limit: usize,
}

fn number(query: &BTreeMap<String, String>, name: &str) -> Result<Option<usize>, ApiError> {
    match query.get(name) {
        None => Ok(None),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|number| *number <= MAX_QUERY_NUMBER)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}` must be an integer from 0 to {}, got `{text}`",
                    MAX_QUERY_NUMBER
                ))
                .with_field(name)
            }),
    }
}

fn page_size(paging: &Paging, asked: Option<usize>) -> Result<usize, ApiError> {
    let size = asked.unwrap_or(paging.page_size.unwrap_or(50) as usize);
    if size == 0 {
        return Err(ApiError::bad_request("the page size must be at least 1"));
    }
    // The partner's own cap, where the profile states one: larger pages come back short.
    let cap = paging
        .max_page_size
        .map_or(MAX_PAGE_SIZE, |cap| (cap as usize).min(MAX_PAGE_SIZE));
    Ok(size.min(cap))
}

/// Encodes a position as an opaque cursor.
pub fn cursor_for(offset: usize) -> String {
    format!("c{offset:x}")
}

fn offset_from_cursor(cursor: &str) -> Option<usize> {
    usize::from_str_radix(cursor.strip_prefix('c')?, 16).ok()
}

/// The window a request asks for under `paging`.
pub fn window(paging: &Paging, query: &BTreeMap<String, String>) -> Result<Window, ApiError> {
    let param = |name: &Option<String>| name.clone().unwrap_or_default();
    match paging.style {
        PagingStyle::None => Ok(Window {
            offset: 0,
            limit: usize::MAX,
        }),
        PagingStyle::PageNumber => {
            let first = paging.first_page.unwrap_or(1) as usize;
            let page_param = param(&paging.page_param);
            let page = number(query, &page_param)?.unwrap_or(first);
            if page < first {
                return Err(
                    ApiError::bad_request(format!("pages start at {first}, got {page}"))
                        .with_field(page_param),
                );
            }
            let limit = page_size(paging, number(query, &param(&paging.size_param))?)?;
            let offset = (page - first).checked_mul(limit).ok_or_else(|| {
                ApiError::bad_request("the page number is too large").with_field(page_param)
            })?;
            Ok(Window { offset, limit })
        }
        PagingStyle::Offset => Ok(Window {
            offset: number(query, &param(&paging.offset_param))?.unwrap_or(0),
            limit: page_size(paging, number(query, &param(&paging.limit_param))?)?,
        }),
        PagingStyle::Cursor | PagingStyle::NextLink | PagingStyle::LinkHeader => {
            let cursor_param = match paging.style {
                PagingStyle::Cursor => param(&paging.cursor_param),
                _ => PAGE_TOKEN_PARAM.to_owned(),
            };
            let offset = match query.get(&cursor_param) {
                None => 0,
                Some(cursor) => offset_from_cursor(cursor).ok_or_else(|| {
                    ApiError::bad_request(format!("`{cursor}` is not a cursor this API issued"))
                        .with_field(cursor_param.clone())
                })?,
            };
            let asked = match &paging.size_param {
                Some(name) => number(query, name)?,
                None => None,
            };
            Ok(Window {
                offset,
                limit: page_size(paging, asked)?,
            })
        }
    }
}

/// Adds the paging metadata to a list answer: the total, the number of pages, the "more"
/// flag, the next cursor or the next link. `path` and `query` are the request's, to build a
/// next link. Returns the next link for a `Link` header, for that style.
pub fn annotate(
    paging: &Paging,
    document: &mut Value,
    window: Window,
    total: usize,
    path: &str,
    query: &BTreeMap<String, String>,
) -> Option<String> {
    let end = window.offset.saturating_add(window.limit);
    let next = (end < total).then_some(end);
    if let Some(total_field) = &paging.total_field {
        total_field.set(document, Value::from(total as u64));
    }
    if let Some(pages_field) = &paging.total_pages_field {
        let pages = total.div_ceil(window.limit.max(1));
        pages_field.set(document, Value::from(pages as u64));
    }
    if let Some(more_field) = &paging.more_field {
        more_field.set(document, Value::Bool(next.is_some()));
    }
    let link = |offset: usize| {
        let mut next_query = query.clone();
        next_query.insert(PAGE_TOKEN_PARAM.to_owned(), cursor_for(offset));
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next_query.iter())
            .finish();
        format!("{path}?{encoded}")
    };
    if paging.style == PagingStyle::LinkHeader {
        return next.map(link);
    }
    let next_field = paging.next_field.as_ref()?;
    let next_value = match (paging.style, next) {
        (PagingStyle::Cursor, Some(offset)) => Value::String(cursor_for(offset)),
        (PagingStyle::NextLink, Some(offset)) => Value::String(link(offset)),
        _ => Value::Null,
    };
    next_field.set(document, next_value);
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{JsonPath, PageStop};

    fn page_number() -> Paging {
        Paging {
            style: PagingStyle::PageNumber,
            page_param: Some("page".into()),
            size_param: Some("size".into()),
            page_size: Some(10),
            first_page: Some(1),
            stop: Some(PageStop::ShortPage),
            ..Paging::default()
        }
    }

    #[test]
    fn page_numbers_map_to_offsets() {
        let query = BTreeMap::from([("page".to_owned(), "3".to_owned())]);
        assert_eq!(
            window(&page_number(), &query).unwrap(),
            Window {
                offset: 20,
                limit: 10
            }
        );
    }

    #[test]
    fn a_page_before_the_first_is_a_bad_request() {
        let query = BTreeMap::from([("page".to_owned(), "0".to_owned())]);
        let error = window(&page_number(), &query).unwrap_err();
        assert_eq!(error.status, 400);
    }

    #[test]
    fn cursors_round_trip_and_end_with_null() {
        let paging = Paging {
            style: PagingStyle::Cursor,
            cursor_param: Some("cursor".into()),
            next_field: Some(JsonPath::parse("next").unwrap()),
            ..Paging::default()
        };
        let mut document = serde_json::json!({});
        let first = Window {
            offset: 0,
            limit: 5,
        };
        annotate(&paging, &mut document, first, 7, "/x", &BTreeMap::new());
        let cursor = document["next"].as_str().unwrap().to_owned();
        let query = BTreeMap::from([("cursor".to_owned(), cursor)]);
        let second = window(&paging, &query).unwrap();
        assert_eq!(second.offset, 5);
        annotate(&paging, &mut document, second, 7, "/x", &BTreeMap::new());
        assert!(document["next"].is_null());
    }
}
