//! Probes for Kubernetes and load balancers.

use actix_web::{HttpResponse, get, web};

use super::AppState;
use crate::http::error::ApiError;
use crate::store::stats::Ping;

/// A probe's answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Probe {
    /// `ok` or `ready`.
    status: &'static str,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(
    tag = "probes",
    security(()),
    responses((status = 200, description = "Serving", body = Probe))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Probe { status: "ok" })
}

/// Readiness: the database answers (this replica's heartbeats reach it, and a query now) and
/// this replica is not shutting down.
#[utoipa::path(
    tag = "probes",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Probe),
        (status = 503, description = "Not ready: the body says why (`database_unavailable`, `shutting_down`)"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if *state.draining.borrow() {
        return Err(ApiError::Unavailable {
            code: "shutting_down",
            message: "this replica is shutting down".into(),
        });
    }
    if !state
        .database_reachable
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Err(ApiError::Unavailable {
            code: "database_unavailable",
            message: "database unreachable: this replica's heartbeats get no answer".into(),
        });
    }
    state
        .store
        .run(Ping)
        .await
        .map_err(|e| ApiError::Unavailable {
            code: "database_unavailable",
            message: format!("database unreachable: {e}"),
        })?;
    Ok(HttpResponse::Ok().json(Probe { status: "ready" }))
}
