//! The authenticated user behind a request (`Authorization: Bearer <login token>`).

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use crate::auth::tokens::{API_AUDIENCE, TokenError};
use crate::model::Role;
use crate::store::audit::NewAuditEntry;
use crate::store::users::{User, UserById};

/// Who is calling. Extracting it checks the token and that the user still exists and is
/// enabled, so disabling a user takes effect at once.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// Current role (from the database, not the token).
    pub role: Role,
    /// Client address, for the audit log.
    pub ip: Option<String>,
}

impl Caller {
    /// Admins only.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::User => Err(ApiError::Forbidden("this requires the admin role".into())),
        }
    }

    /// Whether the caller may see something owned by `owner`.
    pub fn may_access(&self, owner: Uuid) -> bool {
        self.role == Role::Admin || self.id == owner
    }

    /// Whose things a list shows: admins the `requested` owner's (or everyone's), users their
    /// own whatever they asked.
    pub fn owner_filter(&self, requested: Option<Uuid>) -> Option<Uuid> {
        match self.role {
            Role::Admin => requested,
            Role::User => Some(self.id),
        }
    }

    /// An audit entry for something the caller did, from their address.
    pub fn audit(&self, action: &str) -> NewAuditEntry {
        NewAuditEntry::by_user(action, self.id, &self.username).from_ip(self.ip.clone())
    }
}

/// User `id` as it is now: from the cache of recent callers, else read (and kept there).
pub async fn current_user(state: &AppState, id: Uuid) -> Result<Option<User>, ApiError> {
    if let Some(user) = state.users.get(id) {
        return Ok(Some(user));
    }
    let user = state.store.run(UserById(id)).await?;
    if let Some(user) = &user {
        state.users.put(user.clone());
    }
    Ok(user)
}

/// The client address as the audit log records it.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req).map(str::to_owned);
        let ip = client_ip(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("app state missing".into()))?;
            let token = token.ok_or_else(|| {
                ApiError::Unauthorized("missing Authorization: Bearer <token> header".into())
            })?;
            let claims = state
                .keys
                .verify(&token, API_AUDIENCE)
                .map_err(|e| match e {
                    TokenError::Expired => {
                        ApiError::Unauthorized("token expired; log in again".into())
                    }
                    TokenError::WrongAudience => {
                        ApiError::Unauthorized("this token is not valid for the API".into())
                    }
                    TokenError::Invalid => ApiError::Unauthorized("invalid token".into()),
                })?;
            let user = current_user(&state, claims.sub)
                .await?
                .filter(|u| !u.disabled)
                .ok_or_else(|| {
                    ApiError::Unauthorized("user no longer exists or is disabled".into())
                })?;
            // Tokens name the password they were issued under; older ones (without that
            // claim) are judged by their issue time, in whole seconds.
            let outdated = match claims.pwd {
                Some(issued_under) => issued_under < user.password_changed_at.timestamp_micros(),
                None => claims.iat < user.password_changed_at.timestamp(),
            };
            if outdated {
                return Err(ApiError::Unauthorized(
                    "the password changed since this token was issued; log in again".into(),
                ));
            }
            Ok(Caller {
                id: user.id,
                role: user.role(),
                username: user.username,
                ip,
            })
        })
    }
}
