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

/// What a command's progress means for the session it concerns. A `create_session` of a
/// `waking` session wakes it; a `delete_session` of a `hibernating` one hibernates it (the
/// agent keeps the home either way); the same answers move other sessions as a creation and
/// a deletion do.
pub fn session_after_command(
    command_type: &str,
    current: SessionState,
    outcome: Outcome<'_>,
) -> Option<Transition> {
    match command_type {
        "create_session" => after_create(current, outcome),
        "delete_session" => after_delete(current, outcome),
        _ => None,
    }
}

fn after_create(current: SessionState, outcome: Outcome<'_>) -> Option<Transition> {
    let waking = match current {
        SessionState::Pending | SessionState::Creating => false,
        SessionState::Waking => true,
        // Deleted (or lost) meanwhile: a late answer must not resurrect it.
        _ => return None,
    };
    let next = match outcome {
        Outcome::Acked => (SessionState::Creating, None),
        Outcome::Completed(result) => match serde_json::from_value::<SessionReport>(result.clone())
        {
            Ok(report) => from_report(&report),
            Err(e) => (
                SessionState::Failed,
                Some(format!("agent returned an unreadable result: {e}")),
            ),
        },
        Outcome::Failed(error) => (SessionState::Failed, Some(error.to_owned())),
        Outcome::TimedOut if waking => {
            return Some((
                SessionState::Failed,
                Some("the agent did not finish waking the session within COMMAND_TIMEOUT".into()),
            ));
        }
        Outcome::TimedOut => (
            SessionState::Failed,
            Some("the agent did not finish creating the session within COMMAND_TIMEOUT".into()),
        ),
    };
    if !waking {
        return Some(next);
    }
    match next {
        // Still starting: it stays `waking` until it runs.
        (SessionState::Creating, _) => None,
        // The agent removed what it started; the home is as it was, so the desktop can be
        // woken again.
        (SessionState::Failed, reason) => Some((
            SessionState::Hibernated,
            Some(format!(
                "could not wake: {}",
                reason.unwrap_or_else(|| "the agent reported a failure".into())
            )),
        )),
        other => Some(other),
    }
}

fn after_delete(current: SessionState, outcome: Outcome<'_>) -> Option<Transition> {
    match (current, outcome) {
        (_, Outcome::Acked) => None,
        // A workload its agent still held while it slept (removed by the inventory's
        // cleanup): the desktop stays hibernated.
        (SessionState::Hibernated, _) => None,
        (SessionState::Hibernating, Outcome::Completed(_)) => {
            Some((SessionState::Hibernated, None))
        }
        (SessionState::Hibernating, Outcome::Failed(error)) => Some((
            SessionState::Failed,
            Some(format!("hibernation failed: {error}")),
        )),
        (SessionState::Hibernating, Outcome::TimedOut) => Some((
            SessionState::Failed,
            Some("the agent did not confirm the hibernation within COMMAND_TIMEOUT".into()),
        )),
        (_, Outcome::Completed(_)) => Some((SessionState::Terminated, None)),
        (_, Outcome::Failed(error)) => Some((
            SessionState::Failed,
            Some(format!("deletion failed: {error}")),
        )),
        (_, Outcome::TimedOut) => Some((
            SessionState::Failed,
            Some("the agent did not confirm the deletion within COMMAND_TIMEOUT".into()),
        )),
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

/// What a session-status message from the agent means for the session. A hibernating or
/// hibernated session is its commands' to move; a waking one only learns that it runs or
/// failed.
pub fn session_after_status(current: SessionState, report: &SessionReport) -> Option<Transition> {
    if current.is_final()
        || matches!(
            current,
            SessionState::Hibernating | SessionState::Hibernated
        )
    {
        return None;
    }
    let next = from_report(report);
    if current == SessionState::Waking
        && !matches!(next.0, SessionState::Running | SessionState::Failed)
    {
        return None;
    }
    (next.0 != current).then_some(next)
}

/// Compares the sessions the database places on an agent with the inventory the agent
/// reported on (re)connect; returns the changes to make. A hibernated session is not
/// expected in an inventory (its workload is gone by design); one being hibernated and
/// missing has finished hibernating.
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
                (SessionState::Hibernating, None) => Some((SessionState::Hibernated, None)),
                (SessionState::Waking, Some(r)) => session_after_status(state, r),
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

    #[test]
    fn a_deletion_answer_hibernates_a_hibernating_session_and_ends_any_other() {
        let done = serde_json::json!({});
        let delete = |state, outcome| session_after_command("delete_session", state, outcome);
        assert_eq!(
            delete(SessionState::Hibernating, Outcome::Completed(&done)),
            Some((SessionState::Hibernated, None))
        );
        assert_eq!(
            delete(SessionState::Running, Outcome::Completed(&done)),
            Some((SessionState::Terminated, None))
        );
        let (state, reason) = delete(SessionState::Hibernating, Outcome::Failed("busy")).unwrap();
        assert_eq!(
            (state, reason.as_deref()),
            (SessionState::Failed, Some("hibernation failed: busy"))
        );
        let (state, reason) = delete(SessionState::Hibernating, Outcome::TimedOut).unwrap();
        assert_eq!(state, SessionState::Failed);
        assert!(reason.unwrap().contains("hibernation"));
        // Removing a workload left behind never ends the sleeping desktop.
        for outcome in [
            Outcome::Completed(&done),
            Outcome::Failed("x"),
            Outcome::TimedOut,
        ] {
            assert_eq!(delete(SessionState::Hibernated, outcome), None);
        }
    }

    #[test]
    fn a_creation_answer_wakes_a_waking_session_or_puts_it_back_to_sleep() {
        let running =
            serde_json::to_value(report(Uuid::nil(), AgentSessionState::Running)).unwrap();
        let starting =
            serde_json::to_value(report(Uuid::nil(), AgentSessionState::Starting)).unwrap();
        let create =
            |outcome| session_after_command("create_session", SessionState::Waking, outcome);
        assert_eq!(create(Outcome::Acked), None);
        assert_eq!(create(Outcome::Completed(&starting)), None);
        assert_eq!(
            create(Outcome::Completed(&running)),
            Some((SessionState::Running, None))
        );
        let (state, reason) = create(Outcome::Failed("no such image")).unwrap();
        assert_eq!(
            (state, reason.as_deref()),
            (
                SessionState::Hibernated,
                Some("could not wake: no such image")
            )
        );
        let (state, reason) = create(Outcome::TimedOut).unwrap();
        assert_eq!(state, SessionState::Failed);
        assert!(reason.unwrap().contains("waking"));
        // A hibernated session is not woken by a late answer of its first creation.
        assert_eq!(
            session_after_command(
                "create_session",
                SessionState::Hibernated,
                Outcome::Completed(&running)
            ),
            None
        );
    }

    #[test]
    fn status_reports_move_neither_a_sleeping_session_nor_a_waking_one_backwards() {
        let id = Uuid::nil();
        for state in [SessionState::Hibernating, SessionState::Hibernated] {
            for reported in [AgentSessionState::Running, AgentSessionState::Failed] {
                assert_eq!(session_after_status(state, &report(id, reported)), None);
            }
        }
        assert_eq!(
            session_after_status(
                SessionState::Waking,
                &report(id, AgentSessionState::Starting)
            ),
            None
        );
        assert_eq!(
            session_after_status(
                SessionState::Waking,
                &report(id, AgentSessionState::Running)
            ),
            Some((SessionState::Running, None))
        );
    }

    #[test]
    fn reconcile_never_judges_a_sleeping_session_lost() {
        let (asleep, falling, waking, woken) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        let db = [
            (asleep, SessionState::Hibernated),
            (falling, SessionState::Hibernating),
            (waking, SessionState::Waking),
            (woken, SessionState::Waking),
        ];
        let changes = reconcile(&db, &[report(woken, AgentSessionState::Running)]);
        assert_eq!(
            changes,
            vec![
                (falling, (SessionState::Hibernated, None)),
                (woken, (SessionState::Running, None)),
            ]
        );
    }
}
