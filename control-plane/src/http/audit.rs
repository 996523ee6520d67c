//! `GET /api/v1/audit` (admin), newest first, paged by id.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;

use super::AppState;
use super::caller::Caller;
use super::error::ApiError;
use crate::store::audit::ListAudit;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// Paging and filters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Page size (default 50, at most 500).
    limit: Option<i64>,
    /// Entries older than this id: the previous page's `next_before`.
    before: Option<i64>,
    /// Only this action (e.g. `login_failed`).
    action: Option<String>,
}

/// A page of the audit log.
#[get("/audit")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let AuditQuery {
        limit,
        before,
        action,
    } = query.into_inner();
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit: must be between 1 and {MAX_PAGE}"
        )));
    }
    let entries = state
        .store
        .run(ListAudit {
            limit,
            before,
            action,
        })
        .await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "entries": entries,
        "next_before": next_before,
    })))
}
