//! Persistent homes: users list and delete their own, admins everyone's.
//!
//! A home is made by the first session of a user and template with `persistent_home` on an
//! agent, and reused by the next ones there. Another user's home answers 404, like a missing one.

use actix_web::{HttpResponse, delete, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::caller::Caller;
use super::error::ApiError;
use super::paging::{next_before, page_size};
use crate::actors::supervisor::Dispatch;
use crate::store::audit::Record;
use crate::store::homes::{DeleteHome, HomeById, HomeDeletion, HomeView, ListHomes};

/// List filters; `owner` is honoured for admins only.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HomeFilter {
    /// Only this owner's (admins).
    owner: Option<Uuid>,
    /// Only on this agent.
    agent_id: Option<String>,
    /// Page size (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Homes used before this one: the previous page's `next_before`.
    before: Option<Uuid>,
}

/// A page of homes, most recently used first.
#[derive(Serialize, ToSchema)]
pub struct HomePage {
    /// The homes.
    homes: Vec<HomeView>,
    /// The next page's `before`; null on the last page.
    next_before: Option<Uuid>,
}

const DEFAULT_PAGE: i64 = 100;

fn no_home(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no home {id}"))
}

async fn visible_home(state: &AppState, caller: &Caller, id: Uuid) -> Result<HomeView, ApiError> {
    state
        .store
        .run(HomeById(id))
        .await?
        .filter(|h| caller.may_access(h.home.owner_id))
        .ok_or_else(|| no_home(id))
}

/// `GET /api/v1/homes`: the caller's own; admins see all, filtered; most recently used first,
/// paged.
#[utoipa::path(
    tag = "homes",
    params(HomeFilter),
    responses((status = 200, description = "A page", body = HomePage))
)]
#[get("/homes")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<HomeFilter>,
) -> Result<HttpResponse, ApiError> {
    let HomeFilter {
        owner,
        agent_id,
        limit,
        before,
    } = query.into_inner();
    let owner_id = caller.owner_filter(owner);
    let limit = page_size(limit, DEFAULT_PAGE)?;
    let homes = state
        .store
        .run(ListHomes {
            owner_id,
            agent_id,
            limit,
            before,
        })
        .await?;
    let next_before = next_before(&homes, limit, |h| h.home.id);
    Ok(HttpResponse::Ok().json(HomePage { homes, next_before }))
}

/// `GET /api/v1/homes/{id}`: one home the caller may see.
#[utoipa::path(
    tag = "homes",
    responses(
        (status = 200, description = "The home", body = HomeView),
        (status = 404, description = "No such home, or not the caller's"),
    )
)]
#[get("/homes/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(visible_home(&state, &caller, id.into_inner()).await?))
}

/// `DELETE /api/v1/homes/{id}` → 202 while its agent removes the data (the home disappears
/// from the list once it confirms), 409 while a session uses it.
#[utoipa::path(
    tag = "homes",
    responses(
        (status = 202, description = "Its agent removes the data", body = HomeView),
        (status = 404, description = "No such home, or not the caller's"),
        (status = 409, description = "A session uses it (`home_in_use`)"),
    )
)]
#[delete("/homes/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let home = visible_home(&state, &caller, id.into_inner()).await?;
    let deletion = state
        .store
        .run(DeleteHome {
            id: home.home.id,
            command_id: Uuid::new_v4(),
            command_timeout: state.config.command_timeout,
        })
        .await?;
    let view = match deletion {
        HomeDeletion::NotFound => return Err(no_home(home.home.id)),
        HomeDeletion::InUse(session) => {
            return Err(ApiError::Conflict {
                code: "home_in_use",
                message: format!(
                    "home {} is in use by session {session}; end the session first",
                    home.home.id
                ),
            });
        }
        HomeDeletion::Requested(view, command) => {
            if let Some(command) = command {
                state.supervisor.do_send(Dispatch(*command));
            }
            *view
        }
    };
    state.store.spawn(Record(
        caller
            .audit("home_delete")
            .target("home", view.home.id)
            .details(serde_json::json!({
                "owner": view.owner,
                "template": view.home.template_name,
                "agent_id": view.home.agent_id,
            })),
    ));
    Ok(HttpResponse::Accepted().json(view))
}
