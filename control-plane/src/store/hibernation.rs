//! Hibernation: a running desktop's workload stops while its home stays (`hibernating`, then
//! `hibernated`: a `delete_session` that keeps the home), and opening it starts the same
//! desktop again on the agent that keeps that home (`waking`, then `running`: its own
//! `create_session` once more). The commands' answers make the moves (`lifecycle`).

use diesel::prelude::*;
use streamspace_protocol::{Command, ControlMessage, SessionSpec};
use uuid::Uuid;

use super::command_rows::{CommandRow, insert_command};
use super::pick_agent::pick;
use super::schema::{agents, sessions};
use super::sessions::{DeleteCommand, Session, reload, set_state};
use super::{Query, StoreError};
use crate::model::SessionState;
use crate::placement;

/// Result of [`HibernateSession`] and [`WakeSession`].
pub enum SleepChange {
    /// Moved; send this command.
    Requested {
        /// The session now.
        session: Box<Session>,
        /// Its command.
        command: Box<CommandRow>,
    },
    /// Already on its way (a second "wake" while it wakes): nothing to send.
    Underway(Box<Session>),
    /// Not possible now: `(code, message)`; `agent_unavailable` is a passing outage, the
    /// others conflicts.
    Refused(&'static str, String),
}

fn locked(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<(Session, Option<serde_json::Value>), StoreError> {
    Ok(sessions::table
        .find(id)
        .select((Session::as_select(), sessions::spec))
        .for_update()
        .first(conn)?)
}

/// Whether `session` can hibernate, and if not why: `(code, message)`.
fn refusal(session: &Session, spec: Option<&serde_json::Value>) -> Option<(&'static str, String)> {
    let state = session.state();
    if state != SessionState::Running {
        return Some((
            "not_running",
            format!("the session is {state}; only a running desktop can hibernate"),
        ));
    }
    if !session.persistent_home {
        return Some((
            "no_persistent_home",
            "only a desktop with a persistent home can hibernate (its home is what stays); \
             delete it instead"
                .into(),
        ));
    }
    if spec.is_none() || session.agent_id.is_none() {
        return Some((
            "cannot_wake",
            "this desktop was started before hibernation existed and could not be started \
             again; delete it instead"
                .into(),
        ));
    }
    None
}

/// Hibernates a running desktop with a persistent home: `hibernating` plus a persisted
/// `delete_session` that keeps the home.
pub struct HibernateSession {
    /// The session.
    pub id: Uuid,
    /// Why, if not at its user's request (shown with the state).
    pub reason: Option<String>,
    /// Command id for `delete_session`.
    pub command_id: Uuid,
    /// `COMMAND_TIMEOUT`.
    pub command_timeout: std::time::Duration,
}

impl Query for HibernateSession {
    type Output = SleepChange;
    fn run(self, conn: &mut PgConnection) -> Result<SleepChange, StoreError> {
        conn.transaction(|conn| {
            let (session, spec) = locked(conn, self.id)?;
            if let Some((code, message)) = refusal(&session, spec.as_ref()) {
                return Ok(SleepChange::Refused(code, message));
            }
            let agent_id = session.agent_id.clone().unwrap_or_default();
            set_state(conn, self.id, SessionState::Hibernating, self.reason)?;
            let command = DeleteCommand {
                agent_id: &agent_id,
                session_id: self.id,
                keep_home: true,
                tied_to: Some(self.id),
                command_id: self.command_id,
                timeout: self.command_timeout,
            }
            .insert(conn)?;
            Ok(SleepChange::Requested {
                session: Box::new(reload(conn, self.id)?),
                command: Box::new(command),
            })
        })
    }
}

/// Wakes a hibernated desktop on the agent that keeps its home: `waking` plus its own
/// `create_session` again. Its idle timeout starts again.
pub struct WakeSession {
    /// The session.
    pub id: Uuid,
    /// Command id for `create_session`.
    pub command_id: Uuid,
    /// `COMMAND_TIMEOUT`.
    pub command_timeout: std::time::Duration,
}

impl Query for WakeSession {
    type Output = SleepChange;
    fn run(self, conn: &mut PgConnection) -> Result<SleepChange, StoreError> {
        conn.transaction(|conn| {
            let (session, spec) = locked(conn, self.id)?;
            match session.state() {
                SessionState::Hibernated => {}
                SessionState::Waking => return Ok(SleepChange::Underway(Box::new(session))),
                state => {
                    return Ok(SleepChange::Refused(
                        "not_hibernated",
                        format!("the session is {state}, not hibernated"),
                    ));
                }
            }
            let spec: Option<SessionSpec> = spec.and_then(|s| serde_json::from_value(s).ok());
            let (Some(agent_id), Some(spec)) = (session.agent_id.clone(), spec) else {
                return Ok(SleepChange::Refused(
                    "cannot_wake",
                    "nothing says how to start this desktop again; delete it instead".into(),
                ));
            };
            // The agent keeping its home, online and with room: its row stays locked until
            // this commits, as a placement's does.
            let request = placement::Request {
                platform: Some(&session.platform),
                region: None,
                platforms: &[],
            };
            if pick(conn, &request, Some(&agent_id))?.is_none() {
                let status: Option<String> = agents::table
                    .filter(agents::agent_id.eq(&agent_id))
                    .select(agents::status)
                    .first(conn)
                    .optional()?;
                let why = match status.as_deref() {
                    Some("online") => "has no free capacity".to_owned(),
                    Some(status) => format!("is {status}"),
                    None => "is gone".to_owned(),
                };
                return Ok(SleepChange::Refused(
                    "agent_unavailable",
                    format!("its home lives on agent {agent_id}, which {why}; try again later"),
                ));
            }
            set_state(conn, self.id, SessionState::Waking, None)?;
            // A separate statement: an input stamp does not count as a change of the row
            // (`updated_at`), the state change above does.
            diesel::update(sessions::table.find(self.id))
                .set(sessions::last_input_at.eq(diesel::dsl::now))
                .execute(conn)?;
            let message = ControlMessage::Command {
                command_id: self.command_id,
                command: Command::CreateSession(spec),
            };
            let command = insert_command(
                conn,
                &agent_id,
                Some(self.id),
                &message,
                self.command_timeout,
            )?;
            Ok(SleepChange::Requested {
                session: Box::new(reload(conn, self.id)?),
                command: Box::new(command),
            })
        })
    }
}
