//! The VNC proxy: `GET /api/v1/vnc/{session}?token=<viewer token>` upgrades to a WebSocket
//! that carries the session's RFB bytes unmodified; and `POST
//! /api/v1/sessions/{session}/viewer-token` issues the short token it needs, so the login
//! token never appears in a URL.

use actix::{Actor, AsyncContext};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::access::viewer_access;
use super::bridge;
use super::caller::{Caller, client_ip};
use super::error::ApiError;
use super::viewer_socket;
use crate::actors::link_messages::Home;
use crate::actors::supervisor_messages::LinkHome;
use crate::actors::vnc_tunnel::{Viewer, VncTunnel, Written};
use crate::auth::tokens::{REPLICA_AUDIENCE, TokenError, VIEWER_TTL, VNC_AUDIENCE};
use crate::model::{SessionState, ShareMode};
use crate::store::replicas::{AgentReplica, SpendViewerToken, dead_after};
use crate::websocket::Owed;

fn proxy_enabled(state: &AppState) -> Result<(), ApiError> {
    if state.config.vnc_proxy_enabled {
        Ok(())
    } else {
        Err(ApiError::Unavailable {
            code: "vnc_proxy_disabled",
            message: "the VNC proxy is disabled on this control plane (VNC_PROXY_ENABLED=false)"
                .into(),
        })
    }
}

fn require_running(state: SessionState, reason: Option<&str>) -> Result<(), ApiError> {
    if state == SessionState::Running {
        return Ok(());
    }
    let mut message = format!("the session is {state}, not running");
    if let Some(reason) = reason {
        message += &format!(": {reason}");
    }
    Err(ApiError::conflict(message))
}

/// A viewer token and where to use it.
#[derive(Serialize, ToSchema)]
pub struct ViewerToken {
    /// For `?token=` of the VNC WebSocket; good for one connection.
    token: String,
    /// When it stops working (Unix seconds).
    expires_at: i64,
    /// Seconds it stays good.
    expires_in: u64,
    /// The WebSocket's path.
    path: String,
    /// What the caller may do there: `control`, or `view` on a desktop shared for watching
    /// (their input is dropped).
    mode: ShareMode,
    /// The stream will be recorded (the viewer must say so).
    recorded: bool,
}

/// A viewer token for one session, valid for about a minute.
#[utoipa::path(
    tag = "sessions",
    responses(
        (status = 200, description = "A token", body = ViewerToken),
        (status = 404, description = "No such session, or neither the caller's nor shared with them"),
        (status = 409, description = "The session is not running"),
        (status = 503, description = "The VNC proxy is disabled"),
    )
)]
#[post("/sessions/{id}/viewer-token")]
pub async fn viewer_token(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    proxy_enabled(&state)?;
    let (view, mode) = viewer_access(&state, &caller, id.into_inner()).await?;
    let session = view.session;
    require_running(session.state(), session.state_reason.as_deref())?;
    let (token, expires_at) =
        state
            .keys
            .viewer(caller.id, &caller.username, caller.role, session.id);
    Ok(HttpResponse::Ok().json(ViewerToken {
        token,
        expires_at,
        expires_in: VIEWER_TTL.as_secs(),
        path: format!("/api/v1/vnc/{}", session.id),
        mode,
        recorded: session.recorded,
    }))
}

/// The query string of the proxy.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VncQuery {
    /// A viewer token for this session.
    token: Option<String>,
}

/// Upgrades a viewer to the session's VNC stream: here when this replica holds the agent's
/// link, else bridged to the replica that does.
#[utoipa::path(
    tag = "sessions",
    security(()),
    params(VncQuery),
    responses(
        (status = 101, description = "A WebSocket (subprotocol `binary`) carrying the session's RFB bytes"),
        (status = 401, description = "No, an expired or a spent viewer token"),
        (status = 403, description = "The token is for another session"),
        (status = 404, description = "No such session"),
        (status = 409, description = "The session is not running"),
        (status = 503, description = "The VNC proxy is disabled, or the agent is away"),
    )
)]
#[get("/vnc/{id}")]
pub async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
    id: web::Path<Uuid>,
    query: web::Query<VncQuery>,
) -> Result<HttpResponse, ApiError> {
    proxy_enabled(&state)?;
    let id = id.into_inner();
    let token = query.into_inner().token.ok_or_else(|| {
        ApiError::Unauthorized("missing ?token= (POST /api/v1/sessions/{id}/viewer-token)".into())
    })?;
    let claims = state.keys.verify(&token, VNC_AUDIENCE).map_err(|e| {
        ApiError::Unauthorized(match e {
            TokenError::Expired => "viewer token expired; request a new one".into(),
            TokenError::WrongAudience => "not a viewer token".into(),
            TokenError::Invalid => "invalid viewer token".into(),
        })
    })?;
    if claims.sid != Some(id) {
        return Err(ApiError::Forbidden(
            "this viewer token is for another session".into(),
        ));
    }
    // Spent in the database: a token is good for one connection, whichever replica it reaches.
    let unused = match claims.jti {
        Some(jti) => {
            let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_default();
            state
                .store
                .run(SpendViewerToken { jti, expires_at })
                .await?
        }
        None => false,
    };
    if !unused {
        return Err(ApiError::Unauthorized(
            "this viewer token was already used; request a new one".into(),
        ));
    }
    let viewer = viewable(&state, claims.sub, client_ip(&req), id).await?;
    let home = link_home(&state, &viewer).await;
    if home.is_none() {
        let owner = AgentReplica {
            agent_id: viewer.agent_id.clone(),
            dead_after: dead_after(state.config.replica_heartbeat_interval),
        };
        if let Some(replica) = state.store.run(owner).await?
            && replica.id != state.replica_id
        {
            return bridge::open(&state, &req, body, &viewer, claims.role, &replica).await;
        }
    }
    tunnel(&state, &req, viewer, home)
}

/// The worker of the viewer's agent's link, if the agent is linked to this replica.
async fn link_home(state: &AppState, viewer: &Viewer) -> Option<Home> {
    let asked = state.supervisor.send(LinkHome(viewer.agent_id.clone()));
    asked.await.ok().flatten()
}

/// `GET /internal/v1/vnc/{id}`: another replica bridging a viewer it verified to a session
/// whose agent is linked here. Only a replica's token (`Authorization: Bearer`) opens it.
#[get("/internal/v1/vnc/{id}")]
pub async fn bridged(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    proxy_enabled(&state)?;
    let id = id.into_inner();
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("replicas only: missing bearer token".into()))?;
    let claims = state
        .keys
        .verify(token, REPLICA_AUDIENCE)
        .map_err(|_| ApiError::Unauthorized("replicas only: not a replica's token".into()))?;
    if claims.sid != Some(id) {
        return Err(ApiError::Forbidden(
            "this replica token is for another session".into(),
        ));
    }
    // The viewer's address as the bridging replica saw it, for the audit log.
    let ip = req
        .headers()
        .get(bridge::VIEWER_IP_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| client_ip(&req));
    let viewer = viewable(&state, claims.sub, ip, id).await?;
    let home = link_home(&state, &viewer).await;
    tunnel(&state, &req, viewer, home)
}

/// The viewer of a session that `user` may see, which runs on an agent.
async fn viewable(
    state: &AppState,
    user: Uuid,
    ip: Option<String>,
    id: Uuid,
) -> Result<Viewer, ApiError> {
    let user = super::caller::current_user(state, user)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::Unauthorized("user no longer exists or is disabled".into()))?;
    let caller = Caller {
        id: user.id,
        role: user.role(),
        username: user.username,
        ip,
    };
    let (view, mode) = viewer_access(state, &caller, id).await?;
    let session = view.session;
    require_running(session.state(), session.state_reason.as_deref())?;
    let agent_id = session
        .agent_id
        .ok_or_else(|| ApiError::conflict("the session has no agent"))?;
    Ok(Viewer {
        session_id: id,
        agent_id,
        user_id: caller.id,
        username: caller.username,
        ip: caller.ip,
        mode,
        replica_id: state.replica_id,
        record_to: session.recorded.then(|| state.config.recording_dir.clone()),
    })
}

/// The viewer's stream through this replica's link to the agent, served on the link's
/// worker (`home`) when it has one.
fn tunnel(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    viewer: Viewer,
    home: Option<Home>,
) -> Result<HttpResponse, ApiError> {
    let accepted = viewer_socket::upgrade(req)?;
    let state = state.clone();
    let home = home.and_then(|home| home.elsewhere());
    Ok(accepted.serve_on(home, move |incoming| {
        let (outbox, mut queue) = mpsc::unbounded_channel();
        let owed = Owed::default();
        let tunnel = VncTunnel::create(|ctx| {
            ctx.add_stream(incoming);
            VncTunnel::new(
                viewer,
                outbox,
                owed.clone(),
                state.supervisor_handle.clone(),
                state.store.clone(),
                state.metrics.clone(),
                state.config.agent_heartbeat_interval,
            )
        });
        let queue = futures_util::stream::poll_fn(move |cx| queue.poll_recv(cx));
        viewer_socket::body(queue, owed, move |n| tunnel.do_send(Written(n)))
    }))
}
