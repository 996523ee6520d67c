//! `GET /metrics`: Prometheus text format.

use actix_web::{HttpResponse, get, web};

use super::AppState;
use super::error::ApiError;
use crate::store::stats::ReadCounts;

/// Current metrics. Unauthenticated, like most exporters: serve it on a private network.
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let counts = state.store.run(ReadCounts).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render(&counts)))
}
