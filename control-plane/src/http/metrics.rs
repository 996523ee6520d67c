//! `GET /metrics`: Prometheus text format.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};

use super::AppState;
use super::error::ApiError;
use crate::store::stats::ReadCounts;

/// How long the state counts are reused: scrapes, however frequent or hostile (the endpoint
/// is unauthenticated), cost the database at most one count per this period.
const COUNTS_MAX_AGE: Duration = Duration::from_secs(10);

/// Current metrics. Unauthenticated, like most exporters: serve it on a private network.
#[utoipa::path(
    tag = "probes",
    security(()),
    responses((
        status = 200,
        description = "OpenMetrics text",
        body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    ))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let counts = match state.metrics.recent_counts(COUNTS_MAX_AGE) {
        Some(counts) => counts,
        None => {
            let counts = state.store.run(ReadCounts).await?;
            state.metrics.remember_counts(counts.clone());
            counts
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render(&counts)))
}
