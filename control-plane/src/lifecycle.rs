//! Session state transitions, as plain functions the store applies inside its transactions.

use streamspace_protocol::{AgentSessionState, SessionReport};
use uuid::Uuid;

use crate::model::SessionState;

/// How a command ended (or progressed).
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// The agent acknowledged it.
    Acked,
    /// The agent finished it with this result.
    Completed(&'a serde_json::Value),
    /// The agent could not carry it out.
    Failed(&'a str),
    /// No answer in time.
    TimedOut,
}

/// A state to move a session to, with the reason to record.
pub type Transition = (SessionState, Option<String>);

/// What a command's progress means for the session it concerns.
pub fn session_after_command(
    command_type: &str,
    current: SessionState,
    outcome: Outcome<'_>,
) -> Option<Transition> {
    match (command_type, outcome) {
        ("create_session", _)
            if current != SessionState::Pending && current != SessionState::Creating =>
        {
            // Deleted (or lost) meanwhile: a late answer must not resurrect it.
            None
        }
        ("create_session", Outcome::Acked) => Some((SessionState::Creating, None)),
        ("create_session", Outcome::Completed(result)) => {
            match serde_json::from_value::<SessionReport>(result.clone()) {
                Ok(report) => Some(from_report(&report)),
                Err(e) => Some((
                    SessionState::Failed,
                    Some(format!("agent returned an unreadable result: {e}")),
                )),
            }
        }
        ("create_session", Outcome::Failed(error)) => {
            Some((SessionState::Failed, Some(error.to_owned())))
        }
        ("create_session", Outcome::TimedOut) => Some((
            SessionState::Failed,
            Some("the agent did not finish creating the session within COMMAND_TIMEOUT".into()),
        )),
        ("delete_session", Outcome::Completed(_)) => Some((SessionState::Terminated, None)),
        ("delete_session", Outcome::Failed(error)) => Some((
            SessionState::Failed,
            Some(format!("deletion failed: {error}")),
        )),
        ("delete_session", Outcome::TimedOut) => Some((
            SessionState::Failed,
            Some("the agent did not confirm the deletion within COMMAND_TIMEOUT".into()),
        )),
        _ => None,
    }
}

fn from_report(report: &SessionReport) -> Transition {
    match report.state {
        AgentSessionState::Running => (SessionState::Running, None),
        AgentSessionState::Starting => (SessionState::Creating, report.message.clone()),
        AgentSessionState::Stopping => (SessionState::Terminating, report.message.clone()),
        AgentSessionState::Failed => (
            SessionState::Failed,
            Some(
                report
                    .message
                    .clone()
                    .unwrap_or_else(|| "the agent reported a failure".into()),
            ),
        ),
    }
}

/// What a session-status message from the agent means for the session.
pub fn session_after_status(current: SessionState, report: &SessionReport) -> Option<Transition> {
    if current.is_final() {
        return None;
    }
    let next = from_report(report);
    (next.0 != current).then_some(next)
}

/// Compares the sessions the database places on an agent with the inventory the agent
/// reported on (re)connect; returns the changes to make.
pub fn reconcile(
    db: &[(Uuid, SessionState)],
    inventory: &[SessionReport],
) -> Vec<(Uuid, Transition)> {
    db.iter()
        .filter_map(|&(id, state)| {
            let report = inventory.iter().find(|r| r.session_id == id);
            let change = match (state, report) {
                (SessionState::Running | SessionState::Degraded, None) => Some((
                    SessionState::Lost,
                    Some("the agent no longer has this session".into()),
                )),
                (SessionState::Terminating, None) => Some((SessionState::Terminated, None)),
                (
                    SessionState::Running | SessionState::Degraded | SessionState::Creating,
                    Some(r),
                ) => {
                    let next = from_report(r);
                    (next.0 != state || state == SessionState::Degraded).then_some(next)
                }
                _ => None,
            };
            change.map(|c| (id, c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: Uuid, state: AgentSessionState) -> SessionReport {
        SessionReport {
            session_id: id,
            state,
            vnc: None,
            message: None,
        }
    }

    #[test]
    fn create_session_moves_pending_to_creating_to_running() {
        let running =
            serde_json::to_value(report(Uuid::nil(), AgentSessionState::Running)).unwrap();
        assert_eq!(
            session_after_command("create_session", SessionState::Pending, Outcome::Acked),
            Some((SessionState::Creating, None))
        );
        assert_eq!(
            session_after_command(
                "create_session",
                SessionState::Creating,
                Outcome::Completed(&running)
            ),
            Some((SessionState::Running, None))
        );
    }

    #[test]
    fn a_late_create_answer_does_not_resurrect_a_deleted_session() {
        let running =
            serde_json::to_value(report(Uuid::nil(), AgentSessionState::Running)).unwrap();
        for state in [
            SessionState::Terminating,
            SessionState::Terminated,
            SessionState::Lost,
        ] {
            assert_eq!(
                session_after_command("create_session", state, Outcome::Completed(&running)),
                None
            );
        }
    }

    #[test]
    fn failures_and_timeouts_fail_the_session_with_a_reason() {
        let (state, reason) = session_after_command(
            "create_session",
            SessionState::Creating,
            Outcome::Failed("image pull failed"),
        )
        .unwrap();
        assert_eq!(
            (state, reason.as_deref()),
            (SessionState::Failed, Some("image pull failed"))
        );
        let (state, reason) =
            session_after_command("create_session", SessionState::Pending, Outcome::TimedOut)
                .unwrap();
        assert_eq!(state, SessionState::Failed);
        assert!(reason.unwrap().contains("COMMAND_TIMEOUT"));
    }

    #[test]
    fn reconcile_marks_missing_sessions_lost_and_present_ones_running() {
        let (kept, gone, deleting) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let db = [
            (kept, SessionState::Degraded),
            (gone, SessionState::Degraded),
            (deleting, SessionState::Terminating),
        ];
        let changes = reconcile(&db, &[report(kept, AgentSessionState::Running)]);
        assert_eq!(
            changes,
            vec![
                (kept, (SessionState::Running, None)),
                (
                    gone,
                    (
                        SessionState::Lost,
                        Some("the agent no longer has this session".into())
                    )
                ),
                (deleting, (SessionState::Terminated, None)),
            ]
        );
    }

    #[test]
    fn reconcile_leaves_consistent_sessions_alone() {
        let id = Uuid::from_u128(1);
        assert!(
            reconcile(
                &[(id, SessionState::Running)],
                &[report(id, AgentSessionState::Running)]
            )
            .is_empty()
        );
        assert!(reconcile(&[(id, SessionState::Pending)], &[]).is_empty());
    }
}
