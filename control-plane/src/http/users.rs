//! Users (admin): create, list, change role or password, disable, delete.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::caller::Caller;
use super::error::ApiError;
use super::json_object::JsonObject;
use super::paging::{ByName, DEFAULT_BY_NAME, next_before, page_size};
use crate::actors::supervisor::{ACCOUNT_ENDED, CloseStreamsOf};
use crate::auth::password;
use crate::model::Role;
use crate::store::audit::Record;
use crate::store::users::{
    CreateUser, DeleteUser, ListUsers, UpdateUser, User, UserChanges, UserDeletion,
};
use crate::validate;

/// A new user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name: lower-case letters, digits, `.`, `_`, `-`.
    #[schema(pattern = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")]
    username: String,
    /// At least 8 characters.
    #[schema(min_length = 8)]
    password: String,
    /// `user` unless given.
    #[serde(default = "default_role")]
    role: Role,
}

fn default_role() -> Role {
    Role::User
}

pub(super) fn check_password(password: &str) -> Result<(), ApiError> {
    // As every text in the API (its document says so), though a password is only hashed.
    if password.contains('\0') {
        return Err(ApiError::invalid(
            "password: must not contain NUL characters",
        ));
    }
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

/// `POST /api/v1/users` (admin)
#[utoipa::path(
    request_body = NewUser,
    tag = "users",
    responses(
        (status = 201, description = "Created", body = User),
        (status = 403, description = "Admins only"),
        (status = 409, description = "The name is taken"),
    )
)]
#[post("/users")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonObject<NewUser>,
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

/// A page of users by name.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    /// The users.
    users: Vec<User>,
    /// The next page's `after`; null on the last page.
    next_after: Option<String>,
}

/// `GET /api/v1/users` (admin): by name, paged.
#[utoipa::path(
    tag = "users",
    params(ByName),
    responses(
        (status = 200, description = "A page", body = UserPage),
        (status = 403, description = "Admins only"),
    )
)]
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
    Ok(HttpResponse::Ok().json(UserPage { users, next_after }))
}

/// Changes to a user; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// A new password (at least 8 characters); the user's sign-ins end.
    #[schema(min_length = 8)]
    password: Option<String>,
    /// A new role.
    role: Option<Role>,
    /// Disabled users cannot sign in; their viewers are closed.
    disabled: Option<bool>,
}

/// `PATCH /api/v1/users/{id}` (admin): e.g. `{"disabled": true}`.
#[utoipa::path(
    request_body = UserPatch,
    tag = "users",
    responses(
        (status = 200, description = "Changed", body = User),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such user"),
        (status = 409, description = "An admin cannot disable or demote themselves"),
    )
)]
#[patch("/users/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: JsonObject<UserPatch>,
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
    // Other replicas forget it when the change's notification reaches them.
    state.users.forget(id);
    if user.disabled {
        state.supervisor.do_send(CloseStreamsOf {
            user_id: user.id,
            session_id: None,
            reason: ACCOUNT_ENDED.into(),
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
#[utoipa::path(
    tag = "users",
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such user"),
        (status = 409, description = "Themselves, or a user with active sessions or homes"),
    )
)]
#[delete("/users/{id}")]
pub async fn remove(
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
        UserDeletion::Deleted => state.users.forget(id),
        UserDeletion::NotFound => return Err(ApiError::NotFound(format!("no user {id}"))),
        UserDeletion::HasSessions(n) => {
            return Err(ApiError::Conflict {
                code: "user_has_sessions",
                message: format!(
                    "this user still has {n} active or hibernated sessions: delete them first"
                ),
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
