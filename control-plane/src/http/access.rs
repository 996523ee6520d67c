//! Who may see a session: its owner and admins always; a user it is shared with, to view it
//! (and to control it when the share says so). Anyone else gets the 404 of a missing one, so
//! ids cannot be probed.

use uuid::Uuid;

use super::AppState;
use super::caller::Caller;
use super::error::ApiError;
use crate::model::ShareMode;
use crate::store::sessions::{SessionById, SessionView};
use crate::store::shares::ShareFor;

fn no_session(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no session {id}"))
}

/// Loads a session the caller may see, or 404.
pub async fn visible_session(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<SessionView, ApiError> {
    state
        .store
        .run(SessionById(id))
        .await?
        .filter(|s| caller.may_access(s.session.owner_id))
        .ok_or_else(|| no_session(id))
}

/// A session the caller may view, and what they may do in it: its owner and admins control
/// it; a user it is shared with as the share says. Anyone else gets the 404 of a missing one.
pub async fn viewer_access(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<(SessionView, ShareMode), ApiError> {
    let view = state
        .store
        .run(SessionById(id))
        .await?
        .ok_or_else(|| no_session(id))?;
    if caller.may_access(view.session.owner_id) {
        return Ok((view, ShareMode::Control));
    }
    let share = state
        .store
        .run(ShareFor {
            session_id: id,
            user_id: caller.id,
        })
        .await?;
    share.map(|mode| (view, mode)).ok_or_else(|| no_session(id))
}

/// A session the caller may control (its owner, an admin, a user it is shared with to
/// control), for what a watch-only guest may not do: they get 403, anyone else the 404 of a
/// missing one.
pub async fn controlling_access(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<SessionView, ApiError> {
    match viewer_access(state, caller, id).await? {
        (_, ShareMode::View) => Err(ApiError::Forbidden(
            "this desktop is shared with you to watch only".into(),
        )),
        (view, ShareMode::Control) => Ok(view),
    }
}
