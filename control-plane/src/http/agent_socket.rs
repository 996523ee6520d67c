//! `GET /api/v1/agent/connect?agent_id=…`: the agent's WebSocket. The credential
//! (`Authorization: Bearer <token>`) is checked before the upgrade, and must belong to the
//! agent named in the query.

use actix::{Actor, AsyncContext};
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use streamspace_protocol::{FRAME_HEADER_LEN, MAX_FRAME_PAYLOAD, MAX_TEXT_MESSAGE};
use utoipa::IntoParams;

use super::AppState;
use super::caller::{bearer, client_ip};
use super::error::ApiError;
use crate::actors::agent_connection::AgentConnection;
use crate::actors::batcher;
use crate::auth::agent_token;
use crate::store::audit::{NewAuditEntry, Record};
use crate::websocket;

/// The query string.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    /// The agent's name; the credential must be its own.
    agent_id: String,
}

/// Upgrades an authenticated agent to the WebSocket link.
#[utoipa::path(
    tag = "agents",
    security(("agent" = [])),
    params(ConnectQuery),
    responses(
        (status = 101, description = "The agent's WebSocket link (see the protocol in DESIGN.md)"),
        (status = 401, description = "No, an unknown or a revoked credential"),
        (status = 403, description = "The credential belongs to another agent"),
    )
)]
#[get("/agent/connect")]
pub async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<ConnectQuery>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = query.into_inner().agent_id;
    let token = bearer(&req).ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Bearer <agent token> header".into())
    })?;
    let credential = batcher::submit(&state.agent_credentials, agent_token::hash(token)).await?;
    let refused = |reason: &str| {
        state.store.spawn(Record(
            NewAuditEntry::anonymous("agent_auth_failed")
                .target("agent", &agent_id)
                .details(serde_json::json!({ "reason": reason }))
                .from_ip(client_ip(&req)),
        ));
    };
    let Some(credential) = credential else {
        refused("unknown or revoked credential");
        return Err(ApiError::Unauthorized(
            "unknown or revoked agent credential".into(),
        ));
    };
    if credential.agent_id != agent_id {
        refused("credential belongs to another agent");
        return Err(ApiError::Forbidden(format!(
            "this credential belongs to another agent, not {agent_id:?}"
        )));
    }
    let (response, outbox, inbox) = websocket::accept(
        &req,
        body,
        MAX_TEXT_MESSAGE.max(FRAME_HEADER_LEN + MAX_FRAME_PAYLOAD),
    )
    .map_err(|e| ApiError::invalid(format!("websocket upgrade: {e}")))?;
    let config = &state.config;
    AgentConnection::create(|ctx| {
        ctx.add_stream(inbox);
        AgentConnection::new(
            agent_id,
            credential.id,
            outbox,
            state.supervisor_handle.clone(),
            state.metrics.clone(),
            config.agent_heartbeat_interval,
        )
    });
    Ok(response)
}
