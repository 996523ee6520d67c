//! Sharing a desktop: its owner (or an admin) lets another user watch it (`view`) or use it
//! (`control`), lists who it is shared with and who watches now, and revokes a share, which
//! ends that user's streams at once on every replica. The user finds it under "Shared with me"
//! and opens it in the same viewer. A view-only viewer's input is dropped by the control plane
//! (see `streamspace_protocol::ViewOnly`), not only by the page.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::access::visible_session;
use super::caller::Caller;
use super::error::ApiError;
use super::json_object::JsonObject;
use super::paging::{next_before, page_size};
use crate::actors::supervisor::{CloseStreamsOf, SHARE_ENDED};
use crate::model::ShareMode;
use crate::store::audit::Record;
use crate::store::replicas::dead_after;
use crate::store::sessions::SessionView;
use crate::store::shares::{
    ConnectedViewer, PutOutcome, PutShare, RevokeShare, Share, SharedSession, SharedWith, SharesOf,
    ViewersOf,
};

/// A session its owner (or an admin) may share: one that has not ended.
async fn shareable(state: &AppState, caller: &Caller, id: Uuid) -> Result<SessionView, ApiError> {
    let view = visible_session(state, caller, id).await?;
    if view.session.state().is_final() {
        return Err(ApiError::conflict(format!(
            "the session is {}: an ended desktop cannot be shared",
            view.session.state
        )));
    }
    Ok(view)
}

/// Who to share with, and how.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    /// The user's login name.
    username: String,
    /// `view` (watch only) or `control` (use it too).
    #[schema(value_type = ShareMode)]
    mode: String,
}

/// `POST /api/v1/sessions/{id}/shares`: shares a desktop (201), or changes how (200; the
/// user's open streams end, to come back with the new mode).
#[utoipa::path(
    tag = "sharing",
    request_body = NewShare,
    responses(
        (status = 201, description = "Shared", body = Share),
        (status = 200, description = "It was shared already; now with this mode", body = Share),
        (status = 400, description = "No such user (`unknown_user`), the owner themself, or a bad mode"),
        (status = 404, description = "No such session, or not the caller's"),
        (status = 409, description = "The session has ended"),
    )
)]
#[post("/sessions/{id}/shares")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: JsonObject<NewShare>,
) -> Result<HttpResponse, ApiError> {
    let NewShare { username, mode } = body.into_inner();
    let mode: ShareMode = mode
        .parse()
        .map_err(|e| ApiError::invalid(format!("mode: {e}")))?;
    let view = shareable(&state, &caller, id.into_inner()).await?;
    if username == view.owner {
        return Err(ApiError::invalid(format!(
            "username: {username} owns this desktop"
        )));
    }
    let outcome = state
        .store
        .run(PutShare {
            session_id: view.session.id,
            username: username.clone(),
            mode,
            by: caller.id,
        })
        .await?;
    let (share, created) = match outcome {
        PutOutcome::NoUser => {
            return Err(ApiError::BadRequest {
                code: "unknown_user",
                message: format!("username: no user named {username:?}"),
            });
        }
        PutOutcome::Created(share) => (share, true),
        PutOutcome::Changed(share) => {
            // Here at once; other replicas when the notification reaches them.
            state.supervisor.do_send(CloseStreamsOf {
                user_id: share.user_id,
                session_id: Some(share.session_id),
                reason: SHARE_ENDED.into(),
            });
            (share, false)
        }
        PutOutcome::Unchanged(share) => (share, false),
    };
    audit(&state, &caller, "session_share", &share, Some(created));
    Ok(if created {
        HttpResponse::Created().json(share)
    } else {
        HttpResponse::Ok().json(share)
    })
}

/// Audits `action` on `share`; `created` says whether a share was new or changed.
fn audit(state: &AppState, caller: &Caller, action: &str, share: &Share, created: Option<bool>) {
    let mut details = serde_json::json!({
        "user_id": share.user_id,
        "username": share.username,
        "mode": share.mode,
    });
    if let Some(created) = created {
        details["created"] = created.into();
    }
    state.store.spawn(Record(
        caller
            .audit(action)
            .target("session", share.session_id)
            .details(details),
    ));
}

/// The users a session is shared with.
#[derive(Serialize, ToSchema)]
pub struct ShareList {
    /// By name.
    shares: Vec<Share>,
}

/// `GET /api/v1/sessions/{id}/shares`: who a desktop is shared with (its owner and admins).
#[utoipa::path(
    tag = "sharing",
    responses(
        (status = 200, description = "The shares, by user name", body = ShareList),
        (status = 404, description = "No such session, or not the caller's"),
    )
)]
#[get("/sessions/{id}/shares")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = visible_session(&state, &caller, id.into_inner()).await?;
    let shares = state.store.run(SharesOf(view.session.id)).await?;
    Ok(HttpResponse::Ok().json(ShareList { shares }))
}

/// `DELETE /api/v1/sessions/{id}/shares/{user_id}`: ends a share; the user's open viewers
/// of it close at once.
#[utoipa::path(
    tag = "sharing",
    responses(
        (status = 204, description = "Revoked; their viewers are closed"),
        (status = 404, description = "No such session or share, or not the caller's"),
    )
)]
#[delete("/sessions/{id}/shares/{user_id}")]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user_id) = path.into_inner();
    let view = visible_session(&state, &caller, id).await?;
    let revoked = state
        .store
        .run(RevokeShare {
            session_id: view.session.id,
            user_id,
        })
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("session {id} is not shared with user {user_id}"))
        })?;
    state.supervisor.do_send(CloseStreamsOf {
        user_id,
        session_id: Some(view.session.id),
        reason: SHARE_ENDED.into(),
    });
    audit(&state, &caller, "session_share_revoke", &revoked, None);
    Ok(HttpResponse::NoContent().finish())
}

/// Who watches a desktop now.
#[derive(Serialize, ToSchema)]
pub struct ViewerList {
    /// Oldest connection first.
    viewers: Vec<ConnectedViewer>,
}

/// `GET /api/v1/sessions/{id}/viewers`: the viewers connected to a desktop now, through any
/// replica (its owner and admins).
#[utoipa::path(
    tag = "sharing",
    responses(
        (status = 200, description = "The viewers", body = ViewerList),
        (status = 404, description = "No such session, or not the caller's"),
    )
)]
#[get("/sessions/{id}/viewers")]
pub async fn viewers(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = visible_session(&state, &caller, id.into_inner()).await?;
    let viewers = state
        .store
        .run(ViewersOf {
            session_id: view.session.id,
            dead_after: dead_after(state.config.replica_heartbeat_interval),
        })
        .await?;
    Ok(HttpResponse::Ok().json(ViewerList { viewers }))
}

/// Paging of "Shared with me".
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SharedQuery {
    /// Page size (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Sessions older than this one: the previous page's `next_before`.
    before: Option<Uuid>,
}

/// A page of the desktops shared with the caller.
#[derive(Serialize, ToSchema)]
pub struct SharedPage {
    /// Newest session first.
    sessions: Vec<SharedSession>,
    /// The next page's `before`; null on the last page.
    next_before: Option<Uuid>,
}

/// `GET /api/v1/shared-sessions`: the desktops other users shared with the caller.
#[utoipa::path(
    tag = "sharing",
    params(SharedQuery),
    responses((status = 200, description = "A page", body = SharedPage))
)]
#[get("/shared-sessions")]
pub async fn shared_with_me(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SharedQuery>,
) -> Result<HttpResponse, ApiError> {
    let SharedQuery { limit, before } = query.into_inner();
    let limit = page_size(limit, super::paging::DEFAULT_BY_NAME)?;
    let sessions = state
        .store
        .run(SharedWith {
            user_id: caller.id,
            before,
            limit,
        })
        .await?;
    let next_before = next_before(&sessions, limit, |s| s.view.session.id);
    Ok(HttpResponse::Ok().json(SharedPage {
        sessions,
        next_before,
    }))
}
