//! Paged lists: the page size a request may ask for, and the cursor of the next page.

use serde::Deserialize;

use super::error::ApiError;

/// `?limit=&after=` of a list by name; anything else in the query string is refused.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ByName {
    /// Page size (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Items after this name: the previous page's `next_after`.
    pub after: Option<String>,
}

/// Items a page of a list by name shows when the request does not say.
pub const DEFAULT_BY_NAME: i64 = 100;

/// Largest page any list serves.
pub const MAX_PAGE: i64 = 500;

/// The page size asked for, `default` when none; 400 outside 1..=[`MAX_PAGE`].
pub fn page_size(limit: Option<i64>, default: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid(format!(
            "limit: must be between 1 and {MAX_PAGE}"
        )))
    }
}

/// The next page's cursor (`next_before` in lists newest first, `next_after` in lists by
/// name): the last item's key when the page is full (there may be more).
pub fn next_before<T, K>(page: &[T], limit: i64, key: impl Fn(&T) -> K) -> Option<K> {
    (page.len() as i64 == limit)
        .then(|| page.last().map(key))
        .flatten()
}
