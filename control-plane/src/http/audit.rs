//! `GET /api/v1/audit` (admin), newest first, paged by id.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::caller::Caller;
use super::error::ApiError;
use super::paging::{next_before, page_size};
use crate::store::audit::{AuditEntry, ListAudit};

const DEFAULT_PAGE: i64 = 50;

/// Paging and filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Page size (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Entries older than this id: the previous page's `next_before`.
    before: Option<i64>,
    /// Only this action (e.g. `login_failed`).
    action: Option<String>,
    /// Only by this user name.
    user: Option<String>,
    /// Only at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

fn time(field: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::invalid(format!(
                        "{field}: {v:?} is not an RFC 3339 time like 2026-11-27T09:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// A page of the audit log, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    entries: Vec<AuditEntry>,
    /// The next page's `before`; null on the last page.
    next_before: Option<i64>,
}

/// A page of the audit log (admin).
#[utoipa::path(
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page", body = AuditPage),
        (status = 403, description = "Admins only"),
    )
)]
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
        user,
        since,
        until,
    } = query.into_inner();
    let (since, until) = (time("since", since)?, time("until", until)?);
    let limit = page_size(limit, DEFAULT_PAGE)?;
    let entries = state
        .store
        .run(ListAudit {
            limit,
            before,
            action,
            user,
            since,
            until,
        })
        .await?;
    let next_before = next_before(&entries, limit, |e| e.id);
    Ok(HttpResponse::Ok().json(AuditPage {
        entries,
        next_before,
    }))
}
