//! The VNC proxy: `GET /api/v1/vnc/{session}?token=<viewer token>` upgrades to a WebSocket
//! that carries the session's RFB bytes unmodified; and `POST
//! /api/v1/sessions/{session}/viewer-token` issues the short token it needs, so the login
//! token never appears in a URL.

use actix::{Actor, AsyncContext};
use actix_web::body::{BodyStream, BoxBody};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::AppState;
use super::caller::{Caller, client_ip};
use super::error::ApiError;
use super::sessions::visible_session;
use crate::actors::owed::Owed;
use crate::actors::supervisor::Supervisor;
use crate::actors::viewer_writer::ViewerWriter;
use crate::actors::vnc_tunnel::{Viewer, VncTunnel, Written};
use crate::auth::tokens::{TokenError, VIEWER_TTL, VNC_AUDIENCE};
use crate::model::SessionState;
use crate::store::users::UserById;

/// Largest viewer message accepted (RFB client messages are tiny; clipboard text is the
/// largest legitimate one).
const MAX_VIEWER_FRAME: usize = 1024 * 1024;

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

/// A viewer token for one session, valid for about a minute.
#[post("/sessions/{id}/viewer-token")]
pub async fn viewer_token(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    proxy_enabled(&state)?;
    let view = visible_session(&state, &caller, id.into_inner()).await?;
    let session = view.session;
    require_running(session.state(), session.state_reason.as_deref())?;
    let (token, expires_at) =
        state
            .keys
            .viewer(caller.id, &caller.username, caller.role, session.id);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "token": token,
        "expires_at": expires_at,
        "expires_in": VIEWER_TTL.as_secs(),
        "path": format!("/api/v1/vnc/{}", session.id),
    })))
}

/// The query string of the proxy.
#[derive(Deserialize)]
pub struct VncQuery {
    token: Option<String>,
}

/// Upgrades a viewer to the session's VNC stream.
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
    let unused = claims.jti.is_some_and(|jti| {
        state
            .spent_viewer_tokens
            .spend(jti, claims.exp, chrono::Utc::now().timestamp())
    });
    if !unused {
        return Err(ApiError::Unauthorized(
            "this viewer token was already used; request a new one".into(),
        ));
    }
    let user = state
        .store
        .run(UserById(claims.sub))
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::Unauthorized("user no longer exists or is disabled".into()))?;
    let caller = Caller {
        id: user.id,
        role: user.role(),
        username: user.username,
        ip: client_ip(&req),
    };
    let view = visible_session(&state, &caller, id).await?;
    let session = view.session;
    require_running(session.state(), session.state_reason.as_deref())?;
    let agent_id = session
        .agent_id
        .ok_or_else(|| ApiError::conflict("the session has no agent"))?;
    // actix-ws decodes what the viewer sends; what goes to the viewer is written by our own
    // body (see `ViewerWriter`), so its session is left unused.
    let (response, _unused, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::invalid(format!("websocket upgrade: {e}")))?;
    let stream = stream
        .max_frame_size(MAX_VIEWER_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_VIEWER_FRAME);
    let viewer = Viewer {
        session_id: id,
        agent_id,
        user_id: caller.id,
        username: caller.username,
        ip: caller.ip,
    };
    let (outbox, queue) = mpsc::unbounded_channel();
    let owed = Owed::default();
    let tunnel = VncTunnel::create(|ctx| {
        ctx.add_stream(stream);
        VncTunnel::new(
            viewer,
            outbox,
            owed.clone(),
            Supervisor::handle(&state.supervisor),
            state.store.clone(),
            state.metrics.clone(),
            state.config.agent_heartbeat_interval,
        )
    });
    let (response, incoming_guard) = response.into_parts();
    let writer = ViewerWriter::new(queue, owed, incoming_guard, move |n| {
        tunnel.do_send(Written(n))
    });
    let response = response.set_body(BoxBody::new(BodyStream::new(writer)));
    Ok(response)
}
