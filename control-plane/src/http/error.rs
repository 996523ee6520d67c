//! The one error type HTTP handlers return: a status and a JSON body
//! `{"error": "snake_case_code", "message": "…"}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error as the API reports it. Each variant maps to one status on purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid.
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// 401: no or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing (or not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, with other methods (`Allow` lists them).
    #[error("{path} does not take {method}; it takes {allow}")]
    MethodNotAllowed {
        /// The method asked for.
        method: String,
        /// The path.
        path: String,
        /// The methods it takes, comma-separated.
        allow: String,
    },
    /// 409: conflicts with existing state.
    #[error("{message}")]
    Conflict {
        /// Machine-readable code (`conflict` unless something more precise helps a client).
        code: &'static str,
        /// For people.
        message: String,
    },
    /// 429: too many attempts; try again after this many seconds.
    #[error("{message}")]
    TooManyRequests {
        /// For people.
        message: String,
        /// Seconds to wait (`Retry-After`).
        retry_after: u64,
    },
    /// 503: a dependency (database, agents) is unavailable.
    #[error("{message}")]
    Unavailable {
        /// Machine-readable code.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// 500: a bug or an unexpected failure; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

/// The body of every error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Machine-readable code, e.g. `not_found`, `invalid_request`, `no_agent_available`.
    error: &'a str,
    /// For people; names the field at fault where there is one.
    message: String,
    /// The request's id (`X-Request-Id`), to find its log lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ApiError {
    /// The body's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unavailable { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A 409 with the `conflict` code.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code: "conflict",
            message: message.into(),
        }
    }

    /// A 400 with the `invalid_request` code.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "invalid_request",
            message: message.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            log::error!("internal error: {detail}");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::TooManyRequests { retry_after, .. } = self {
            response.insert_header(("Retry-After", retry_after.to_string()));
        }
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            response.insert_header(("Allow", allow.clone()));
        }
        response.json(ErrorBody {
            error: self.code(),
            // Messages quote input; NUL (which the document rules out of every text) is shown
            // as the replacement character.
            message: self.to_string().replace('\0', "\u{FFFD}"),
            request_id: super::request_id::current(),
        })
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::InvalidText(message) => ApiError::BadRequest {
                code: "invalid_text",
                message: format!("text fields must not contain NUL characters ({message})"),
            },
            StoreError::Unavailable(message) => ApiError::Unavailable {
                code: "database_unavailable",
                message: format!("database unavailable: {message}"),
            },
            StoreError::Database(e) => ApiError::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    async fn body(e: ApiError) -> (u16, serde_json::Value) {
        let response = e.error_response();
        let status = response.status().as_u16();
        let bytes = to_bytes(response.into_body()).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[actix_web::test]
    async fn every_variant_has_its_status_and_a_json_body() {
        let cases = [
            (
                ApiError::invalid("cpu: \"lots\" is not a quantity"),
                400,
                "invalid_request",
            ),
            (
                ApiError::Unauthorized("bad password".into()),
                401,
                "unauthorized",
            ),
            (ApiError::Forbidden("admins only".into()), 403, "forbidden"),
            (ApiError::NotFound("no session 1".into()), 404, "not_found"),
            (ApiError::conflict("user alice exists"), 409, "conflict"),
            (
                ApiError::Unavailable {
                    code: "no_agent_available",
                    message: "no online agent for platform local".into(),
                },
                503,
                "no_agent_available",
            ),
        ];
        for (error, status, code) in cases {
            let message = error.to_string();
            assert_eq!(
                body(error).await,
                (
                    status,
                    serde_json::json!({"error": code, "message": message})
                )
            );
        }
    }

    #[actix_web::test]
    async fn internal_errors_hide_their_detail() {
        let (status, json) = body(ApiError::Internal("pool timed out at db:5432".into())).await;
        assert_eq!(status, 500);
        assert_eq!(
            json,
            serde_json::json!({"error": "internal", "message": "internal error"})
        );
    }
}
