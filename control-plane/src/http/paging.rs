//! Paged lists: the page size a request may ask for, and the cursor of the next page.

use super::error::ApiError;

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
