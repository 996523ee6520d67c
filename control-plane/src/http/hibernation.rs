//! Hibernate and wake: the owner (or an admin) stops a running desktop's workload and keeps
//! its home; opening it again (its owner, an admin, or a user it is shared with to control)
//! starts it on the agent that keeps that home.

use actix_web::{HttpResponse, post, web};
use uuid::Uuid;

use super::AppState;
use super::access::{controlling_access, visible_session};
use super::caller::Caller;
use super::error::ApiError;
use super::sessions::changed;
use crate::actors::supervisor::Dispatch;
use crate::store::audit::Record;
use crate::store::hibernation::{HibernateSession, SleepChange, WakeSession};
use crate::store::sessions::SessionView;

/// The answer to a change: 202 with the session while its agent carries it out, 200 when it
/// was already under way, the refusal's error otherwise.
fn answer(
    state: &AppState,
    caller: &Caller,
    action: &str,
    view: SessionView,
    change: SleepChange,
) -> Result<HttpResponse, ApiError> {
    let (session, accepted) = match change {
        SleepChange::Requested { session, command } => {
            state.supervisor.do_send(Dispatch(*command));
            state.store.spawn(Record(
                caller
                    .audit(action)
                    .target("session", session.id)
                    .details(serde_json::json!({ "agent_id": session.agent_id })),
            ));
            (*session, true)
        }
        SleepChange::Underway(session) => (*session, false),
        SleepChange::Refused(code @ "agent_unavailable", message) => {
            return Err(ApiError::Unavailable { code, message });
        }
        SleepChange::Refused(code, message) => return Err(ApiError::Conflict { code, message }),
    };
    Ok(changed(view, session, accepted))
}

/// `POST /api/v1/sessions/{id}/hibernate` → 202: its workload stops (Pod or container
/// removed, Xvnc stopped), its home stays; it becomes `hibernating`, then `hibernated`. Its
/// viewers' streams end with the workload.
#[utoipa::path(
    tag = "sessions",
    responses(
        (status = 202, description = "Its agent stops it; it becomes `hibernated`", body = SessionView),
        (status = 404, description = "No such session, or not the caller's"),
        (status = 409, description = "Not running (`not_running`), or without a persistent home (`no_persistent_home`): nothing would stay"),
    )
)]
#[post("/sessions/{id}/hibernate")]
pub async fn hibernate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = visible_session(&state, &caller, id.into_inner()).await?;
    let change = state
        .store
        .run(HibernateSession {
            id: view.session.id,
            reason: None,
            command_id: Uuid::new_v4(),
            command_timeout: state.config.command_timeout,
        })
        .await?;
    answer(&state, &caller, "session_hibernate", view, change)
}

/// `POST /api/v1/sessions/{id}/wake` → 202: the desktop starts again on the agent that keeps
/// its home; it becomes `waking`, then `running` (or `hibernated` again, with the reason, if
/// it could not start). 200 when it is already waking.
#[utoipa::path(
    tag = "sessions",
    responses(
        (status = 200, description = "Already waking", body = SessionView),
        (status = 202, description = "Its agent starts it; it becomes `running`", body = SessionView),
        (status = 403, description = "The desktop is shared with the caller to watch only"),
        (status = 404, description = "No such session, or neither the caller's nor shared with them"),
        (status = 409, description = "Not hibernated (`not_hibernated`)"),
        (status = 503, description = "The agent keeping its home is offline or full (`agent_unavailable`)"),
    )
)]
#[post("/sessions/{id}/wake")]
pub async fn wake(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = controlling_access(&state, &caller, id.into_inner()).await?;
    let change = state
        .store
        .run(WakeSession {
            id: view.session.id,
            command_id: Uuid::new_v4(),
            command_timeout: state.config.command_timeout,
        })
        .await?;
    answer(&state, &caller, "session_wake", view, change)
}
