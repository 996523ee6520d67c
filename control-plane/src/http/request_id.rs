//! Every HTTP request gets an id: the one a proxy sent in `X-Request-Id` (when it is a sane
//! token), else a new one. It is answered in the `X-Request-Id` header, written in error
//! bodies (`request_id`), carried by every log line logged while the request is handled (a
//! field of its own with `LOG_FORMAT=json`), and in the access log line that ends it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// The header, as proxies name it.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Log fields for the line being written: the request id while a request is handled.
pub fn log_context() -> Vec<(&'static str, String)> {
    current()
        .map(|id| vec![("request_id", id)])
        .unwrap_or_default()
}

/// A proxy's id is kept when it is 1–128 visible ASCII characters; anything else is replaced.
fn accepted(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    (!text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| text.to_owned())
}

/// The middleware: assigns the id, runs the request under it, answers it, logs the request.
pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(accepted)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let started = Instant::now();
    // The path only: viewer tokens travel in query strings and must not reach logs.
    let (method, path) = (req.method().clone(), req.path().to_owned());
    let peer = req
        .connection_info()
        .realip_remote_addr()
        .unwrap_or("-")
        .to_owned();
    REQUEST_ID
        .scope(id.clone(), async move {
            let mut response = next.call(req).await?;
            if let Ok(value) = HeaderValue::from_str(&id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(HEADER), value);
            }
            log::info!(
                target: "streamspace::access",
                "{peer} {method} {path} {} {:.1}ms request_id={id}",
                response.status().as_u16(),
                started.elapsed().as_secs_f64() * 1000.0
            );
            Ok(response)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxys_id_is_kept_only_when_it_is_a_sane_token() {
        let value = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(accepted(&value("abc-123")).as_deref(), Some("abc-123"));
        assert_eq!(accepted(&value("")), None);
        assert_eq!(accepted(&value("has space")), None);
        assert_eq!(accepted(&value(&"x".repeat(129))), None);
    }
}
