//! Sessions: users create, list, inspect and delete their own; admins everyone's.
//!
//! Another user's session answers 404, exactly like a missing one, so ids cannot be probed.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use streamspace_protocol::{Resources, SessionSpec, TemplateSpec};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::access::{controlling_access, viewer_access, visible_session};
use super::caller::Caller;
use super::error::ApiError;
use super::json_object::JsonObject;
use super::paging::{next_before, page_size};
use crate::actors::supervisor::Dispatch;
use crate::model::{Platform, ResourceAmounts, Role, SessionState};
use crate::store::create_session::{CreateSession, Placed};
use crate::store::sessions::{
    DeleteSession, Deletion, ListSessions, Removal, RemoveEndedSession, Session, SessionInput,
    SessionView,
};
use crate::store::templates::TemplateByName;
use crate::validate;

/// Resources used when neither the request nor the template says.
const DEFAULT_CPU: &str = "1";
const DEFAULT_MEMORY: &str = "2Gi";

/// A session request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// The template's name.
    template: String,
    /// CPU and memory; absent ones come from the template.
    #[serde(default)]
    resources: ResourceAmounts,
    /// Run it on this platform (one the template supports).
    #[schema(value_type = Option<Platform>, inline)]
    platform: Option<String>,
    /// Run it in this region.
    region: Option<String>,
    /// Keep the home directory on a volume for the next session of this template.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    persistent_home: bool,
}

fn default_true() -> bool {
    true
}

/// `POST /api/v1/sessions` → 202 with the session, placed on the least-loaded matching agent.
#[utoipa::path(
    request_body = NewSession,
    tag = "sessions",
    responses(
        (status = 202, description = "Recorded and sent to an agent; it becomes `running` or `failed`", body = SessionView),
        (status = 409, description = "The user's home for this template is held elsewhere or busy"),
        (status = 503, description = "No online agent can take it (`no_agent_available`), or the home's agent is away"),
    )
)]
#[post("/sessions")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonObject<NewSession>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    if let Some(platform) = &request.platform {
        validate::platform(platform).map_err(ApiError::invalid)?;
    }
    let template = state
        .store
        .run(TemplateByName(request.template.clone()))
        .await?
        .ok_or_else(|| ApiError::BadRequest {
            code: "unknown_template",
            message: format!("template: no template named {:?}", request.template),
        })?;
    let platforms = template.platforms();
    if let Some(platform) = &request.platform
        && !platforms.is_empty()
        && !platforms.contains(platform)
    {
        return Err(ApiError::BadRequest {
            code: "platform_not_supported",
            message: format!(
                "platform: template {} runs on {}, not {platform}",
                template.name,
                platforms.join(" or ")
            ),
        });
    }
    let default = |field: &str, fallback: &str| {
        template.default_resources[field]
            .as_str()
            .unwrap_or(fallback)
            .to_owned()
    };
    let resources = Resources {
        cpu: request
            .resources
            .cpu
            .unwrap_or_else(|| default("cpu", DEFAULT_CPU)),
        memory: request
            .resources
            .memory
            .unwrap_or_else(|| default("memory", DEFAULT_MEMORY)),
    };
    validate::cpu(&resources.cpu).map_err(ApiError::invalid)?;
    validate::memory(&resources.memory).map_err(ApiError::invalid)?;
    let spec = SessionSpec {
        session_id: Uuid::new_v4(),
        user: caller.username.clone(),
        template: TemplateSpec {
            name: template.name.clone(),
            image: template.image.clone(),
            vnc_port: u16::try_from(template.vnc_port).unwrap_or(5900),
            env: serde_json::from_value(template.env.clone()).unwrap_or_default(),
        },
        resources,
        persistent_home: request.persistent_home,
        // Chosen with the placement, where the user's home lives.
        home_id: None,
    };
    let placed = state
        .store
        .run(CreateSession {
            spec,
            owner_id: caller.id,
            template_id: template.id,
            platform: request.platform,
            region: request.region,
            platforms,
            limits: (template.idle_timeout_seconds, template.max_lifetime_seconds),
            idle_action: template
                .idle_action
                .parse()
                .unwrap_or(crate::model::IdleAction::Stop),
            recorded: template.record,
            command_id: Uuid::new_v4(),
            command_timeout: state.config.command_timeout,
            audit: caller.audit("session_create"),
        })
        .await?;
    let (session, command) = match placed {
        Placed::Created { session, command } => (*session, *command),
        Placed::NoAgent(message) => {
            return Err(ApiError::Unavailable {
                code: "no_agent_available",
                message,
            });
        }
        Placed::HomeRefused(code @ "home_unavailable", message) => {
            return Err(ApiError::Unavailable { code, message });
        }
        Placed::HomeRefused(code, message) => {
            return Err(ApiError::Conflict { code, message });
        }
    };
    state.supervisor.do_send(Dispatch(command));
    Ok(HttpResponse::Accepted().json(SessionView {
        session,
        owner: caller.username,
        agent_status: Some(crate::model::AgentStatus::Online.as_str().to_owned()),
    }))
}

const DEFAULT_PAGE: i64 = 100;

/// List filters and paging; `owner` and `user` are honoured for admins only.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SessionFilter {
    /// Only sessions in this state.
    #[param(value_type = Option<SessionState>, inline)]
    state: Option<String>,
    /// Only on this agent.
    agent_id: Option<String>,
    /// Only this owner's (admins).
    owner: Option<Uuid>,
    /// Only this owner's, by login name (admins).
    user: Option<String>,
    /// Only on this platform.
    #[param(value_type = Option<Platform>, inline)]
    platform: Option<String>,
    /// Page size (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Sessions older than this one: the previous page's `next_before`.
    before: Option<Uuid>,
}

/// `GET /api/v1/sessions`: the caller's own; admins see all, filtered; newest first, paged.
#[utoipa::path(
    tag = "sessions",
    params(SessionFilter),
    responses((status = 200, description = "A page", body = SessionPage))
)]
#[get("/sessions")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SessionFilter>,
) -> Result<HttpResponse, ApiError> {
    let SessionFilter {
        state: session_state,
        agent_id,
        owner,
        user,
        platform,
        limit,
        before,
    } = query.into_inner();
    let session_state = session_state
        .map(|s| {
            s.parse::<SessionState>()
                .map_err(|e| ApiError::invalid(format!("state: {e}")))
        })
        .transpose()?;
    if let Some(platform) = &platform {
        validate::platform(platform).map_err(ApiError::invalid)?;
    }
    let limit = page_size(limit, DEFAULT_PAGE)?;
    let owner_id = caller.owner_filter(owner);
    let owner_name = user.filter(|_| caller.role == Role::Admin);
    let sessions = state
        .store
        .run(ListSessions {
            owner_id,
            owner_name,
            state: session_state,
            agent_id,
            platform,
            limit,
            before,
        })
        .await?;
    let next_before = next_before(&sessions, limit, |s| s.session.id);
    Ok(HttpResponse::Ok().json(SessionPage {
        sessions,
        next_before,
    }))
}

/// A page of sessions, newest first.
#[derive(Serialize, ToSchema)]
pub struct SessionPage {
    /// The sessions.
    sessions: Vec<SessionView>,
    /// The next page's `before`; null on the last page.
    next_before: Option<Uuid>,
}

/// `GET /api/v1/sessions/{id}`: one session the caller may see: their own, one shared with
/// them, or (admins) any.
#[utoipa::path(
    tag = "sessions",
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 404, description = "No such session, or neither the caller's nor shared with them"),
    )
)]
#[get("/sessions/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (view, _) = viewer_access(&state, &caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /api/v1/sessions/{id}` → 202 while the agent removes it, 200 if nothing was left
/// to remove, 204 when it had already ended: then it is removed from the lists.
#[utoipa::path(
    tag = "sessions",
    responses(
        (status = 200, description = "Nothing was left to remove: it is `terminated`", body = SessionView),
        (status = 202, description = "The agent removes it; it becomes `terminated`", body = SessionView),
        (status = 204, description = "It had ended; now it is gone from the lists"),
        (status = 404, description = "No such session, or not the caller's"),
    )
)]
#[delete("/sessions/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = visible_session(&state, &caller, id.into_inner()).await?;
    if view.session.state().is_final() {
        let removal = state
            .store
            .run(RemoveEndedSession {
                id: view.session.id,
                command_id: Uuid::new_v4(),
                command_timeout: state.config.command_timeout,
                audit: caller
                    .audit("session_remove")
                    .target("session", view.session.id),
            })
            .await?;
        if let Removal::Removed(cleanup) = removal {
            if let Some(command) = cleanup {
                state.supervisor.do_send(Dispatch(*command));
            }
            return Ok(HttpResponse::NoContent().finish());
        }
    }
    let deletion = state
        .store
        .run(DeleteSession {
            id: view.session.id,
            command_id: Uuid::new_v4(),
            command_timeout: state.config.command_timeout,
            audit: caller
                .audit("session_delete")
                .target("session", view.session.id),
        })
        .await?;
    let (session, accepted) = match deletion {
        Deletion::Requested { session, command } => {
            state.supervisor.do_send(Dispatch(*command));
            (*session, true)
        }
        Deletion::Finished(session) => (*session, false),
    };
    Ok(changed(view, session, accepted))
}

/// The answer to a change of `view`'s session, now `session`: 202 while its agent carries it
/// out (`accepted`), else 200.
pub(super) fn changed(view: SessionView, session: Session, accepted: bool) -> HttpResponse {
    let body = SessionView {
        session,
        owner: view.owner,
        agent_status: view.agent_status,
    };
    if accepted {
        HttpResponse::Accepted().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

/// `POST /api/v1/sessions/{id}/activity`: "I'm still here" — counts as viewer input, so the
/// idle timeout starts again (the maximum lifetime does not move).
#[utoipa::path(
    tag = "sessions",
    responses(
        (status = 204, description = "Recorded"),
        (status = 403, description = "The desktop is shared with the caller to watch only"),
        (status = 404, description = "No such session, or neither the caller's nor shared with them"),
        (status = 409, description = "The session is not running"),
    )
)]
#[post("/sessions/{id}/activity")]
pub async fn activity(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = controlling_access(&state, &caller, id.into_inner()).await?;
    if view.session.state() != SessionState::Running {
        return Err(ApiError::conflict(format!(
            "the session is {}, not running",
            view.session.state
        )));
    }
    state.store.run(SessionInput(view.session.id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
