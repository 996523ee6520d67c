//! `/healthz` (the process runs) and `/readyz` (linked to the control plane) for probes, and
//! `/metrics` for Prometheus.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{App, HttpResponse, HttpServer, web};

use crate::runtime::Runtime;

/// Starts the probe server; it runs until the actix system stops.
pub fn serve(
    addr: SocketAddr,
    linked: Arc<AtomicBool>,
    runtime: Arc<dyn Runtime>,
) -> std::io::Result<actix_web::dev::Server> {
    let linked = web::Data::from(linked);
    let runtime = web::Data::from(runtime);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(linked.clone())
            .app_data(runtime.clone())
            .route("/metrics", web::get().to(metrics))
            .route(
                "/healthz",
                web::get()
                    .to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
            )
            .route("/readyz", web::get().to(ready))
    })
    .workers(1)
    .disable_signals()
    .bind(addr)?
    .run();
    Ok(server)
}

async fn metrics(runtime: web::Data<dyn Runtime>) -> HttpResponse {
    let text = crate::metrics::METRICS.render(runtime.get_ref()).await;
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text)
}

async fn ready(linked: web::Data<AtomicBool>) -> HttpResponse {
    if linked.load(Ordering::Relaxed) {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": "not_linked",
            "message": "not connected to the control plane",
        }))
    }
}
