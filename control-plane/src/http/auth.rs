//! `POST /api/v1/auth/login`, `GET /api/v1/auth/me`, `POST /api/v1/auth/password`.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::caller::{Caller, client_ip};
use super::error::ApiError;
use super::json_object::JsonObject;
use crate::auth::password;
use crate::model::Role;
use crate::store::audit::{NewAuditEntry, Record};
use crate::store::users::{UpdateUser, User, UserById, UserByName, UserChanges};

/// How long a login may wait for a free hashing permit before it is told to come back.
const HASHING_PATIENCE: Duration = Duration::from_secs(5);

/// Login form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// A login token and whose it is.
#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    /// For `Authorization: Bearer …`.
    token: String,
    /// When it stops working (Unix seconds).
    expires_at: i64,
    /// The user.
    user: User,
}

/// Exchanges a user name and password for a login token.
#[utoipa::path(
    request_body = Login,
    tag = "auth",
    security(()),
    responses(
        (status = 200, description = "Signed in", body = LoginAnswer),
        (status = 401, description = "Wrong user name or password"),
        (status = 403, description = "The account is disabled"),
        (status = 429, description = "Too many failed logins; see `Retry-After`"),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonObject<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login { username, password } = body.into_inner();
    let ip = client_ip(&req);
    state
        .logins
        .check(ip.as_deref(), &username, Instant::now())
        .map_err(|wait| ApiError::TooManyRequests {
            message: format!(
                "too many failed logins from this address or for this user; try again in {} s",
                wait.as_secs().max(1)
            ),
            retry_after: wait.as_secs().max(1),
        })?;
    let user = state.store.run(UserByName(username.clone())).await?;
    // argon2 is deliberately slow and memory-hungry: off the async workers, one per core.
    let _permit = state
        .logins
        .hashing_permit(HASHING_PATIENCE)
        .await
        .ok_or_else(|| ApiError::TooManyRequests {
            message: "too many logins at once; try again in a moment".into(),
            retry_after: 1,
        })?;
    let (user, valid) = web::block(move || match user {
        Some(user) => {
            let valid = password::verify(&user.password_hash, &password);
            (Some(user), valid)
        }
        None => {
            password::verify_dummy(&password);
            (None, false)
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(user) = user.filter(|_| valid) else {
        state
            .logins
            .failed(ip.as_deref(), &username, Instant::now());
        // Throttled attempts never get here, so these rows grow only as fast as the limits
        // allow.
        state.store.spawn(Record(
            NewAuditEntry::anonymous("login_failed")
                .details(serde_json::json!({ "username": username }))
                .from_ip(ip),
        ));
        return Err(ApiError::Unauthorized(
            "invalid username or password".into(),
        ));
    };
    if user.disabled {
        return Err(ApiError::Forbidden("this account is disabled".into()));
    }
    state.logins.succeeded(&username);
    let (token, expires_at) = state.keys.login(
        user.id,
        &user.username,
        user.role(),
        user.password_changed_at,
    );
    state.store.spawn(Record(
        NewAuditEntry::by_user("login", user.id, &user.username)
            .target("user", user.id)
            .from_ip(ip),
    ));
    Ok(HttpResponse::Ok().json(LoginAnswer {
        token,
        expires_at,
        user,
    }))
}

/// Who is calling.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// User id.
    id: Uuid,
    /// Login name.
    username: String,
    /// Role, as the database says now.
    role: Role,
}

/// The caller.
#[utoipa::path(tag = "auth", responses((status = 200, description = "The caller", body = Me)))]
#[get("/auth/me")]
pub async fn me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        id: caller.id,
        username: caller.username,
        role: caller.role,
    })
}

/// A password change by the user themselves.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    current_password: String,
    /// At least 8 characters.
    #[schema(min_length = 8)]
    new_password: String,
}

/// Changes the caller's own password. Every login token issued before stops working, so the
/// answer carries a new one, like a login's.
#[utoipa::path(
    request_body = PasswordChange,
    tag = "auth",
    responses(
        (status = 200, description = "Changed; a new token, as a login's", body = LoginAnswer),
        (status = 403, description = "`current_password` is wrong"),
        (status = 429, description = "Too many password checks at once; see `Retry-After`"),
    )
)]
#[post("/auth/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonObject<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    super::users::check_password(&new_password)?;
    let user = state
        .store
        .run(UserById(caller.id))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("user no longer exists".into()))?;
    let _permit = state
        .logins
        .hashing_permit(HASHING_PATIENCE)
        .await
        .ok_or_else(|| ApiError::TooManyRequests {
            message: "too many password checks at once; try again in a moment".into(),
            retry_after: 1,
        })?;
    let stored = user.password_hash.clone();
    let valid = web::block(move || password::verify(&stored, &current_password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !valid {
        return Err(ApiError::Forbidden(
            "current_password: that is not your current password".into(),
        ));
    }
    let changes = UserChanges {
        password_hash: Some(super::users::hash(new_password).await?),
        ..UserChanges::default()
    };
    let user = state
        .store
        .run(UpdateUser {
            id: user.id,
            changes,
        })
        .await?;
    // Other replicas forget it when the change's notification reaches them.
    state.users.forget(user.id);
    state.store.spawn(Record(
        caller.audit("password_change").target("user", user.id),
    ));
    let (token, expires_at) = state.keys.login(
        user.id,
        &user.username,
        user.role(),
        user.password_changed_at,
    );
    Ok(HttpResponse::Ok().json(LoginAnswer {
        token,
        expires_at,
        user,
    }))
}
