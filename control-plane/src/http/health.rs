//! Probes for Kubernetes and load balancers.

use actix_web::{HttpResponse, get, web};
use diesel::RunQueryDsl;

use crate::http::error::ApiError;
use crate::store::PgPool;

/// Liveness: the process serves HTTP.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers.
#[get("/readyz")]
pub async fn readyz(pool: web::Data<PgPool>) -> Result<HttpResponse, ApiError> {
    let pool = pool.into_inner();
    web::block(move || -> Result<(), String> {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .map_err(|e| e.to_string())?;
        Ok(())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Unavailable {
        code: "database_unavailable",
        message: format!("database unreachable: {e}"),
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}
