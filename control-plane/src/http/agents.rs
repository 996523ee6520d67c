//! Agents (admin): register, list, inspect, delete; mint, rotate and revoke credentials.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::caller::Caller;
use super::error::ApiError;
use super::json_object::JsonObject;
use super::paging::{DEFAULT_BY_NAME, next_before, page_size};
use crate::actors::supervisor::{AgentRemoved, Ask, CredentialsRevoked};
use crate::auth::agent_token;
use crate::model::{AgentStatus, Platform};
use crate::store::agents::{
    Agent, AgentById, AgentView, DeleteAgent, FleetSummary, ListAgents, RegisterAgent,
    SummarizeFleet,
};
use crate::store::audit::Record;
use crate::store::commands::InsertCommand;
use crate::store::credentials::{
    Credential, ListCredentials, MintCredential, NewCredential, RevokeCredential,
};
use crate::validate;

/// Registration form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The agent's name (`AGENT_ID`): letters, digits, `.`, `_`, `-`.
    #[schema(pattern = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")]
    agent_id: String,
    /// Where it runs sessions.
    #[schema(value_type = Platform, inline)]
    platform: String,
    /// Placement region.
    region: Option<String>,
}

fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    agent_id: &str,
    details: serde_json::Value,
) {
    state.store.spawn(Record(
        caller
            .audit(action)
            .target("agent", agent_id)
            .details(details),
    ));
}

fn no_agent(agent_id: &str) -> ApiError {
    ApiError::NotFound(format!("no agent {agent_id:?}"))
}

async fn find_agent(state: &AppState, agent_id: &str) -> Result<AgentView, ApiError> {
    state
        .store
        .run(AgentById(agent_id.to_owned()))
        .await?
        .ok_or_else(|| no_agent(agent_id))
}

fn new_credential(agent_id: &str, caller: &Caller) -> (agent_token::Minted, NewCredential) {
    let minted = agent_token::mint();
    let credential = NewCredential {
        agent_id: agent_id.to_owned(),
        token_hash: minted.hash.clone(),
        token_prefix: minted.prefix.clone(),
        created_by: Some(caller.id),
    };
    (minted, credential)
}

/// A new credential: the one response that ever contains a token.
#[derive(Serialize, ToSchema)]
pub struct ShownOnce {
    /// The credential's id.
    id: Uuid,
    /// The token, for `AGENT_TOKEN`; never shown again.
    token: String,
    /// Its first characters, as lists show it.
    token_prefix: String,
    /// Minted at.
    created_at: chrono::DateTime<chrono::Utc>,
    /// A reminder for people.
    note: &'static str,
}

fn shown_once(credential: &Credential, token: &str) -> ShownOnce {
    ShownOnce {
        id: credential.id,
        token: token.to_owned(),
        token_prefix: credential.token_prefix.clone(),
        created_at: credential.created_at,
        note: "the token is shown only now; set it as AGENT_TOKEN on the agent",
    }
}

/// A registered agent and its first credential.
#[derive(Serialize, ToSchema)]
pub struct Registered {
    /// The agent.
    agent: Agent,
    /// Its credential.
    credential: ShownOnce,
}

/// `POST /api/v1/agents/register`: creates the agent and its first credential.
#[utoipa::path(
    request_body = Registration,
    tag = "agents",
    responses(
        (status = 201, description = "Registered", body = Registered),
        (status = 403, description = "Admins only"),
        (status = 409, description = "An agent of that name exists"),
    )
)]
#[post("/agents/register")]
pub async fn register(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonObject<Registration>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let Registration {
        agent_id,
        platform,
        region,
    } = body.into_inner();
    validate::agent_id(&agent_id).map_err(ApiError::invalid)?;
    validate::platform(&platform).map_err(ApiError::invalid)?;
    let (minted, credential) = new_credential(&agent_id, &caller);
    let (agent, credential) = state
        .store
        .run(RegisterAgent {
            agent_id: agent_id.clone(),
            platform,
            region,
            credential,
        })
        .await?;
    audit(
        &state,
        &caller,
        "agent_register",
        &agent_id,
        serde_json::json!({ "platform": agent.platform }),
    );
    audit(
        &state,
        &caller,
        "credential_mint",
        &agent_id,
        serde_json::json!({ "prefix": minted.prefix }),
    );
    Ok(HttpResponse::Created().json(Registered {
        agent,
        credential: shown_once(&credential, &minted.token),
    }))
}

/// Filters and paging for the agent list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgentFilter {
    /// Only this platform.
    #[param(value_type = Option<Platform>, inline)]
    platform: Option<String>,
    /// Only agents in this state.
    #[param(value_type = Option<AgentStatus>, inline)]
    status: Option<String>,
    /// Only this region.
    region: Option<String>,
    /// Part of the agent's name.
    q: Option<String>,
    /// Page size (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Agents after this name: the previous page's `next_after`.
    after: Option<String>,
}

/// `GET /api/v1/agents?platform=&status=&region=&q=&limit=&after=`: by name, paged.
#[utoipa::path(
    tag = "agents",
    params(AgentFilter),
    responses(
        (status = 200, description = "A page", body = AgentPage),
        (status = 403, description = "Admins only"),
    )
)]
#[get("/agents")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AgentFilter>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let AgentFilter {
        platform,
        status,
        region,
        q,
        limit,
        after,
    } = query.into_inner();
    let status = status
        .map(|s| {
            s.parse::<AgentStatus>()
                .map_err(|e| ApiError::invalid(format!("status: {e}")))
        })
        .transpose()?;
    // An unknown platform is a mistake to point out, not an empty list.
    if let Some(platform) = &platform {
        validate::platform(platform).map_err(ApiError::invalid)?;
    }
    let limit = page_size(limit, DEFAULT_BY_NAME)?;
    let agents = state
        .store
        .run(ListAgents {
            platform,
            status,
            region,
            search: q.filter(|q| !q.is_empty()),
            after,
            limit,
        })
        .await?;
    let next_after = next_before(&agents, limit, |a| a.agent.agent_id.clone());
    Ok(HttpResponse::Ok().json(AgentPage { agents, next_after }))
}

/// A page of agents by name.
#[derive(Serialize, ToSchema)]
pub struct AgentPage {
    /// The agents.
    agents: Vec<AgentView>,
    /// The next page's `after`; null on the last page.
    next_after: Option<String>,
}

/// `GET /api/v1/agent-summary`: counts over the whole fleet, for the cards above a page of
/// the list.
#[utoipa::path(
    tag = "agents",
    responses(
        (status = 200, description = "The fleet", body = FleetSummary),
        (status = 403, description = "Admins only"),
    )
)]
#[get("/agent-summary")]
pub async fn summary(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    Ok(HttpResponse::Ok().json(state.store.run(SummarizeFleet).await?))
}

/// `GET /api/v1/agents/{agent_id}`: with active session count, capacity, last heartbeat.
#[utoipa::path(
    tag = "agents",
    responses(
        (status = 200, description = "The agent", body = AgentView),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such agent"),
    )
)]
#[get("/agents/{agent_id}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    agent_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let agent_id = agent_id.into_inner();
    let agent = find_agent(&state, &agent_id).await?;
    Ok(HttpResponse::Ok().json(agent))
}

/// `DELETE /api/v1/agents/{agent_id}`: its link is closed, its sessions become `lost`.
#[utoipa::path(
    tag = "agents",
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such agent"),
    )
)]
#[delete("/agents/{agent_id}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    agent_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let agent_id = agent_id.into_inner();
    state
        .store
        .run(DeleteAgent(agent_id.clone()))
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::NotFound(_) => no_agent(&agent_id),
            other => other,
        })?;
    state.supervisor.do_send(AgentRemoved(agent_id.clone()));
    audit(
        &state,
        &caller,
        "agent_delete",
        &agent_id,
        serde_json::json!({}),
    );
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/agents/{agent_id}/credentials`: never the tokens, only their prefixes; newest
/// first, paged.
#[utoipa::path(
    tag = "agents",
    params(CredentialQuery),
    responses(
        (status = 200, description = "A page of its credentials", body = CredentialPage),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such agent"),
    )
)]
#[get("/agents/{agent_id}/credentials")]
pub async fn list_credentials(
    state: web::Data<AppState>,
    caller: Caller,
    agent_id: web::Path<String>,
    query: web::Query<CredentialQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let agent_id = agent_id.into_inner();
    let CredentialQuery { limit, before } = query.into_inner();
    let limit = page_size(limit, DEFAULT_BY_NAME)?;
    find_agent(&state, &agent_id).await?;
    let credentials = state
        .store
        .run(ListCredentials {
            agent_id,
            limit,
            before,
        })
        .await?;
    let next_before = next_before(&credentials, limit, |c| c.id);
    Ok(HttpResponse::Ok().json(CredentialPage {
        credentials,
        next_before,
    }))
}

/// A page of an agent's credentials, revoked ones included, newest first.
#[derive(Serialize, ToSchema)]
pub struct CredentialPage {
    /// The credentials.
    credentials: Vec<Credential>,
    /// The next page's `before`; null on the last page.
    next_before: Option<Uuid>,
}

/// Paging of an agent's credentials.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CredentialQuery {
    /// Page size (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Credentials older than this one: the previous page's `next_before`.
    before: Option<Uuid>,
}

async fn mint(
    state: &AppState,
    caller: &Caller,
    agent_id: String,
    rotate: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let (minted, credential) = new_credential(&agent_id, caller);
    let (credential, revoked) = state
        .store
        .run(MintCredential {
            credential,
            revoke_others: rotate,
        })
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::NotFound(_) => no_agent(&agent_id),
            other => other,
        })?;
    if !revoked.is_empty() {
        state.supervisor.do_send(CredentialsRevoked {
            agent_id: agent_id.clone(),
            ids: revoked.clone(),
        });
    }
    let action = if rotate {
        "credential_rotate"
    } else {
        "credential_mint"
    };
    audit(
        state,
        caller,
        action,
        &agent_id,
        serde_json::json!({ "prefix": credential.token_prefix, "revoked": revoked }),
    );
    Ok(HttpResponse::Created().json(shown_once(&credential, &minted.token)))
}

/// `POST /api/v1/agents/{agent_id}/credentials`: an additional credential.
#[utoipa::path(
    tag = "agents",
    responses(
        (status = 201, description = "Minted", body = ShownOnce),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such agent"),
    )
)]
#[post("/agents/{agent_id}/credentials")]
pub async fn mint_credential(
    state: web::Data<AppState>,
    caller: Caller,
    agent_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    mint(&state, &caller, agent_id.into_inner(), false).await
}

/// `POST /api/v1/agents/{agent_id}/credentials/rotate`: a new credential; all others are
/// revoked and a link using one of them is closed.
#[utoipa::path(
    tag = "agents",
    responses(
        (status = 201, description = "Minted; the others revoked", body = ShownOnce),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such agent"),
    )
)]
#[post("/agents/{agent_id}/credentials/rotate")]
pub async fn rotate_credentials(
    state: web::Data<AppState>,
    caller: Caller,
    agent_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    mint(&state, &caller, agent_id.into_inner(), true).await
}

/// `DELETE /api/v1/agents/{agent_id}/credentials/{id}`: revokes one credential.
#[utoipa::path(
    tag = "agents",
    responses(
        (status = 200, description = "Revoked", body = Credential),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such agent or credential"),
    )
)]
#[delete("/agents/{agent_id}/credentials/{id}")]
pub async fn revoke_credential(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let (agent_id, id) = path.into_inner();
    let credential = state
        .store
        .run(RevokeCredential {
            agent_id: agent_id.clone(),
            id,
        })
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::NotFound(_) => {
                ApiError::NotFound(format!("agent {agent_id:?} has no credential {id}"))
            }
            other => other,
        })?;
    state.supervisor.do_send(CredentialsRevoked {
        agent_id: agent_id.clone(),
        ids: vec![id],
    });
    audit(
        &state,
        &caller,
        "credential_revoke",
        &agent_id,
        serde_json::json!({ "id": id, "prefix": credential.token_prefix }),
    );
    Ok(HttpResponse::Ok().json(credential))
}

/// What an agent says it runs.
#[derive(Serialize, ToSchema)]
pub struct LiveSessions {
    /// The agent.
    agent_id: String,
    /// Its sessions as it reports them (id, state, address).
    #[schema(value_type = Vec<Object>)]
    sessions: serde_json::Value,
}

/// How long a live question to an agent may take.
const LIVE_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// `GET /api/v1/agents/{agent_id}/sessions`: asks the agent (`list_sessions`) what it runs
/// right now, as opposed to what the database believes.
#[utoipa::path(
    tag = "agents",
    responses(
        (status = 200, description = "What the agent runs", body = LiveSessions),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such agent"),
        (status = 503, description = "The agent is not online, failed or did not answer"),
    )
)]
#[get("/agents/{agent_id}/sessions")]
pub async fn live_sessions(
    state: web::Data<AppState>,
    caller: Caller,
    agent_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let agent_id = agent_id.into_inner();
    let agent = find_agent(&state, &agent_id).await?;
    if agent.agent.status != AgentStatus::Online.as_str() {
        return Err(ApiError::Unavailable {
            code: "agent_offline",
            message: format!(
                "agent {agent_id:?} is {}; it cannot be asked now",
                agent.agent.status
            ),
        });
    }
    let command = state
        .store
        .run(InsertCommand {
            agent_id: agent_id.clone(),
            session_id: None,
            message: streamspace_protocol::ControlMessage::Command {
                command_id: Uuid::new_v4(),
                command: streamspace_protocol::Command::ListSessions,
            },
            timeout: LIVE_QUERY_TIMEOUT,
        })
        .await?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    state.supervisor.do_send(Ask { command, reply });
    // The command's own deadline answers first; this one only guards against a lost actor.
    let waited = tokio::time::timeout(LIVE_QUERY_TIMEOUT * 2, answer).await;
    match waited {
        Ok(Ok(Ok(result))) => Ok(HttpResponse::Ok().json(LiveSessions {
            agent_id,
            sessions: result["sessions"].clone(),
        })),
        Ok(Ok(Err(error))) => Err(ApiError::Unavailable {
            code: "agent_error",
            message: format!("agent {agent_id:?} could not list its sessions: {error}"),
        }),
        _ => Err(ApiError::Unavailable {
            code: "agent_timeout",
            message: format!("agent {agent_id:?} did not answer"),
        }),
    }
}
