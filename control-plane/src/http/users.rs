//! Users (admin): create, list, change role or password, disable, delete.

use actix_web::{HttpResponse, delete as delete_route, get, patch, post, web};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::caller::Caller;
use super::error::ApiError;
use super::paging::{ByName, DEFAULT_BY_NAME, next_before, page_size};
use crate::actors::supervisor::CloseStreamsOf;
use crate::auth::password;
use crate::model::Role;
use crate::store::audit::Record;
use crate::store::users::{
    CreateUser, DeleteUser, ListUsers, UpdateUser, UserChanges, UserDeletion,
};
use crate::validate;

/// A new user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    #[serde(default = "default_role")]
    role: Role,
}

fn default_role() -> Role {
    Role::User
}

pub(super) fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < password::MIN_PASSWORD_LEN {
        return Err(ApiError::invalid(format!(
            "password: must be at least {} characters",
            password::MIN_PASSWORD_LEN
        )));
    }
    Ok(())
}

pub(super) async fn hash(password: String) -> Result<String, ApiError> {
    web::block(move || password::hash(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// `POST /api/v1/users`
#[post("/users")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let NewUser {
        username,
        password,
        role,
    } = body.into_inner();
    validate::username(&username).map_err(ApiError::invalid)?;
    check_password(&password)?;
    let password_hash = hash(password).await?;
    let user = state
        .store
        .run(CreateUser {
            username,
            password_hash,
            role,
        })
        .await?;
    state.store.spawn(Record(
        caller
            .audit("user_create")
            .target("user", user.id)
            .details(serde_json::json!({ "username": user.username, "role": user.role })),
    ));
    Ok(HttpResponse::Created().json(user))
}

/// `GET /api/v1/users`
#[get("/users")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    page: web::Query<ByName>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let ByName { limit, after } = page.into_inner();
    let limit = page_size(limit, DEFAULT_BY_NAME)?;
    let users = state.store.run(ListUsers { after, limit }).await?;
    let next_after = next_before(&users, limit, |u| u.username.clone());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "users": users, "next_after": next_after })))
}

/// Changes to a user; absent fields stay as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    password: Option<String>,
    role: Option<Role>,
    disabled: Option<bool>,
}

/// `PATCH /api/v1/users/{id}`: e.g. `{"disabled": true}`.
#[patch("/users/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = id.into_inner();
    let UserPatch {
        password,
        role,
        disabled,
    } = body.into_inner();
    if id == caller.id && (disabled == Some(true) || role == Some(Role::User)) {
        return Err(ApiError::conflict(
            "an admin cannot disable or demote themselves; ask another admin",
        ));
    }
    let password_hash = match password {
        Some(password) => {
            check_password(&password)?;
            Some(hash(password).await?)
        }
        None => None,
    };
    let changed_password = password_hash.is_some();
    let changes = UserChanges {
        password_hash,
        role: role.map(|r| r.as_str().to_owned()),
        disabled,
    };
    if changes.password_hash.is_none() && changes.role.is_none() && changes.disabled.is_none() {
        return Err(ApiError::invalid(
            "nothing to change: give password, role or disabled",
        ));
    }
    let user =
        state
            .store
            .run(UpdateUser { id, changes })
            .await
            .map_err(|e| match ApiError::from(e) {
                ApiError::NotFound(_) => ApiError::NotFound(format!("no user {id}")),
                other => other,
            })?;
    if user.disabled {
        state.supervisor.do_send(CloseStreamsOf {
            user_id: user.id,
            reason: "your account was disabled".into(),
        });
    }
    state.store.spawn(Record(
        caller
            .audit("user_update")
            .target("user", user.id)
            .details(serde_json::json!({
                "role": role, "disabled": disabled, "password_changed": changed_password,
            })),
    ));
    Ok(HttpResponse::Ok().json(user))
}

/// `DELETE /api/v1/users/{id}` (admin): only a user who holds nothing on any agent (no active
/// session, no home); their ended sessions go with them, the audit log keeps their name.
#[delete_route("/users/{id}")]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = id.into_inner();
    if id == caller.id {
        return Err(ApiError::conflict(
            "an admin cannot delete themselves; ask another admin",
        ));
    }
    match state.store.run(DeleteUser(id)).await? {
        UserDeletion::Deleted => {}
        UserDeletion::NotFound => return Err(ApiError::NotFound(format!("no user {id}"))),
        UserDeletion::HasSessions(n) => {
            return Err(ApiError::Conflict {
                code: "user_has_sessions",
                message: format!("this user still has {n} active sessions: delete them first"),
            });
        }
        UserDeletion::HasHomes(n) => {
            return Err(ApiError::Conflict {
                code: "user_has_homes",
                message: format!("this user still has {n} persistent homes: delete them first"),
            });
        }
    }
    state
        .store
        .spawn(Record(caller.audit("user_delete").target("user", id)));
    Ok(HttpResponse::NoContent().finish())
}
