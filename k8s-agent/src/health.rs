//! `/healthz` (the process runs) and `/readyz` (linked to the control plane) for probes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{App, HttpResponse, HttpServer, web};

/// Starts the probe server; it runs until the actix system stops.
pub fn serve(addr: SocketAddr, linked: Arc<AtomicBool>) -> std::io::Result<actix_web::dev::Server> {
    let linked = web::Data::from(linked);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(linked.clone())
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
