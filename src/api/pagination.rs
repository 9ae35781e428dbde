//! Atlas list conventions: `pageNum` (≥ 1), `itemsPerPage` (1–500, default 100),
//! `includeCount` (default true) and `links` with `self`, `next` and `previous`.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::ApiError;
use super::json::Format;
use crate::store::Page;

/// The common query parameters of every Atlas operation.
#[derive(Debug, Clone)]
pub struct Query {
    pub page: Page,
    pub include_count: bool,
    pub format: Format,
}

fn bad_param(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::bad_request(
        "INVALID_QUERY_PARAMETER",
        format!("Invalid value {value} for query parameter {name}: {expected}."),
    )
    .with_parameters([name.to_string(), value.to_string()])
    .with_field(name, expected)
}

fn parse_bool(
    params: &HashMap<String, String>,
    name: &str,
    default: bool,
) -> Result<bool, ApiError> {
    // Atlas accepts `true`/`false` in any case (`includeCount=True` from some clients).
    match params.get(name).map(|s| s.as_str()) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(bad_param(name, other, "expected true or false")),
    }
}

fn parse_u32(
    params: &HashMap<String, String>,
    name: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(bad_param(
                name,
                text,
                &format!("expected an integer from {min} to {max}"),
            )),
        },
    }
}

impl Query {
    pub fn parse(params: &HashMap<String, String>) -> Result<Query, ApiError> {
        Ok(Query {
            page: Page {
                page_num: parse_u32(params, "pageNum", 1, 1, u32::MAX / 1000)?,
                items_per_page: parse_u32(params, "itemsPerPage", 100, 1, 500)?,
            },
            include_count: parse_bool(params, "includeCount", true)?,
            format: Format {
                envelope: parse_bool(params, "envelope", false)?,
                pretty: parse_bool(params, "pretty", false)?,
            },
        })
    }
}

/// A link of a list (`rel`: `self`, `next`, `previous`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    /// Absolute URL.
    pub href: String,
    pub rel: String,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paginated<T: ToSchema> {
    pub links: Vec<Link>,
    pub results: Vec<T>,
    /// The number of items in the whole list (absent with `includeCount=false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub total_count: Option<u64>,
}

/// `{links, results, totalCount}` for one page. `base` is the absolute URL of the list
/// without a query.
pub fn page<T: ToSchema>(base: &str, query: &Query, results: Vec<T>, total: u64) -> Paginated<T> {
    let Page {
        page_num,
        items_per_page,
    } = query.page;
    let link = |n: u32, rel: &str| Link {
        href: format!(
            "{base}?includeCount={}&pageNum={n}&itemsPerPage={items_per_page}",
            query.include_count
        ),
        rel: rel.to_string(),
    };
    let mut links = vec![link(page_num, "self")];
    if u64::from(page_num) * u64::from(items_per_page) < total {
        links.push(link(page_num + 1, "next"));
    }
    if page_num > 1 {
        links.push(link(page_num - 1, "previous"));
    }
    Paginated {
        links,
        results,
        total_count: query.include_count.then_some(total),
    }
}

/// `{links, results, totalCount}` for one page. `base` is the absolute URL of the list
/// without a query.
pub fn page_body(base: &str, query: &Query, results: Vec<Value>, total: u64) -> Value {
    let Page {
        page_num,
        items_per_page,
    } = query.page;
    let link = |n: u32, rel: &str| {
        json!({
            "href": format!("{base}?includeCount={}&pageNum={n}&itemsPerPage={items_per_page}", query.include_count),
            "rel": rel,
        })
    };
    let mut links = vec![link(page_num, "self")];
    if u64::from(page_num) * u64::from(items_per_page) < total {
        links.push(link(page_num + 1, "next"));
    }
    if page_num > 1 {
        links.push(link(page_num - 1, "previous"));
    }
    let mut body = json!({"links": links, "results": results});
    if query.include_count
        && let Some(map) = body.as_object_mut()
    {
        map.insert("totalCount".into(), total.into());
    }
    body
}
