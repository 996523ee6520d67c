//! `agent_commands`: every command, persisted before it is sent, with its lifecycle.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use serde::Serialize;
use streamspace_protocol::{Command, ControlMessage};
use uuid::Uuid;

use super::schema::{agent_commands, sessions};
use super::{Query, StoreError};
use crate::lifecycle::{self, Outcome};
use crate::model::{CommandStatus, SessionState};

/// A command as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = agent_commands)]
pub struct CommandRow {
    /// Surrogate key.
    #[serde(skip)]
    pub id: Uuid,
    /// The id on the wire.
    pub command_id: Uuid,
    /// Target agent.
    pub agent_id: String,
    /// Session it concerns, if any.
    pub session_id: Option<Uuid>,
    /// `create_session`, `delete_session`, …
    pub command_type: String,
    /// The exact wire message.
    pub payload: serde_json::Value,
    /// Lifecycle status.
    pub status: String,
    /// Result of `completed`.
    pub result: Option<serde_json::Value>,
    /// Error of `failed` or `timeout`.
    pub error: Option<String>,
    /// Times handed to a connection.
    pub attempts: i32,
    /// Persisted at.
    pub created_at: DateTime<Utc>,
    /// Last handed to a connection at.
    pub sent_at: Option<DateTime<Utc>>,
    /// Acknowledged at.
    pub acked_at: Option<DateTime<Utc>>,
    /// Finished (completed, failed or timed out) at.
    pub completed_at: Option<DateTime<Utc>>,
    /// Deadline.
    pub timeout_at: DateTime<Utc>,
}

impl CommandRow {
    /// The parsed status.
    pub fn status(&self) -> CommandStatus {
        self.status.parse().unwrap_or(CommandStatus::Failed)
    }

    /// The message to (re)send.
    pub fn message(&self) -> Result<ControlMessage, serde_json::Error> {
        serde_json::from_value(self.payload.clone())
    }
}

/// Inserts a `pending` command; used inside the transactions that create or delete sessions.
pub(super) fn insert_command(
    conn: &mut PgConnection,
    agent_id: &str,
    session_id: Option<Uuid>,
    message: &ControlMessage,
    timeout: std::time::Duration,
) -> Result<CommandRow, StoreError> {
    let ControlMessage::Command {
        command_id,
        command,
    } = message
    else {
        return Err(StoreError::Conflict("only commands are stored".into()));
    };
    let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    Ok(diesel::insert_into(agent_commands::table)
        .values((
            agent_commands::command_id.eq(command_id),
            agent_commands::agent_id.eq(agent_id),
            agent_commands::session_id.eq(session_id),
            agent_commands::command_type.eq(command.name()),
            agent_commands::payload.eq(serde_json::to_value(message).unwrap_or_default()),
            agent_commands::timeout_at.eq(Utc::now() + timeout),
        ))
        .returning(CommandRow::as_returning())
        .get_result(conn)?)
}

/// Persists a command that concerns no session change (e.g. `list_sessions`).
pub struct InsertCommand {
    /// Target.
    pub agent_id: String,
    /// Session it concerns.
    pub session_id: Option<Uuid>,
    /// The wire message.
    pub message: ControlMessage,
    /// `COMMAND_TIMEOUT`.
    pub timeout: std::time::Duration,
}

impl Query for InsertCommand {
    type Output = CommandRow;
    fn run(self, conn: &mut PgConnection) -> Result<CommandRow, StoreError> {
        insert_command(
            conn,
            &self.agent_id,
            self.session_id,
            &self.message,
            self.timeout,
        )
    }
}

/// The command was written to the agent's connection.
pub struct MarkSent(pub Uuid);

impl Query for MarkSent {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        let target = agent_commands::table.filter(agent_commands::command_id.eq(self.0));
        conn.transaction(|conn| {
            // Counted even if an answer was recorded first: it was handed over all the same.
            diesel::update(target)
                .set(agent_commands::attempts.eq(agent_commands::attempts + 1))
                .execute(conn)?;
            diesel::update(
                target.filter(agent_commands::status.eq_any(statuses(CommandStatus::UNFINISHED))),
            )
            .set(agent_commands::sent_at.eq(now))
            .execute(conn)?;
            diesel::update(
                target.filter(agent_commands::status.eq(CommandStatus::Pending.as_str())),
            )
            .set(agent_commands::status.eq(CommandStatus::Sent.as_str()))
            .execute(conn)?;
            Ok(())
        })
    }
}

fn statuses(list: &[CommandStatus]) -> Vec<&'static str> {
    list.iter().map(|s| s.as_str()).collect()
}

/// An answer (or the deadline) for a command.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `ack`.
    Ack,
    /// `completed`.
    Completed(serde_json::Value),
    /// `failed`.
    Failed(String),
    /// `COMMAND_TIMEOUT` passed.
    TimedOut,
}

/// What recording a reply did.
#[derive(Debug, Clone)]
pub enum ReplyEffect {
    /// No such command for this agent: an agent may only answer its own commands.
    Unknown,
    /// The command had already finished; the reply was a duplicate and changed nothing.
    Duplicate,
    /// Recorded.
    Recorded {
        /// The command after the change.
        command: Box<CommandRow>,
        /// The session state it moved to, if any.
        session_state: Option<SessionState>,
    },
}

/// Records an agent's reply (or a timeout) and applies its effect on the session, atomically.
pub struct RecordReply {
    /// The command.
    pub command_id: Uuid,
    /// The agent answering; `None` for the deadline sweep.
    pub agent_id: Option<String>,
    /// The answer.
    pub reply: Reply,
}

impl Query for RecordReply {
    type Output = ReplyEffect;
    fn run(self, conn: &mut PgConnection) -> Result<ReplyEffect, StoreError> {
        conn.transaction(|conn| {
            let command: Option<CommandRow> = agent_commands::table
                .filter(agent_commands::command_id.eq(self.command_id))
                .select(CommandRow::as_select())
                .for_update()
                .first(conn)
                .optional()?;
            let Some(command) = command.filter(|c| {
                self.agent_id
                    .as_ref()
                    .is_none_or(|agent| *agent == c.agent_id)
            }) else {
                return Ok(ReplyEffect::Unknown);
            };
            let status = command.status();
            if !CommandStatus::UNFINISHED.contains(&status)
                || (matches!(self.reply, Reply::Ack) && status == CommandStatus::Ack)
            {
                return Ok(ReplyEffect::Duplicate);
            }
            let target = agent_commands::table.find(command.id);
            let command = match &self.reply {
                Reply::Ack => diesel::update(target)
                    .set((
                        agent_commands::status.eq(CommandStatus::Ack.as_str()),
                        agent_commands::acked_at.eq(now),
                    ))
                    .returning(CommandRow::as_returning())
                    .get_result(conn)?,
                finished => {
                    let (status, result, error) = match finished {
                        Reply::Completed(result) => {
                            (CommandStatus::Completed, Some(result.clone()), None)
                        }
                        Reply::Failed(error) => (CommandStatus::Failed, None, Some(error.clone())),
                        _ => (
                            CommandStatus::Timeout,
                            None,
                            Some("no answer from the agent within COMMAND_TIMEOUT".to_owned()),
                        ),
                    };
                    diesel::update(target)
                        .set((
                            agent_commands::status.eq(status.as_str()),
                            agent_commands::result.eq(result),
                            agent_commands::error.eq(error),
                            agent_commands::completed_at.eq(now),
                        ))
                        .returning(CommandRow::as_returning())
                        .get_result(conn)?
                }
            };
            if command.command_type == Command::DELETE_HOME {
                super::homes::after_delete(conn, &command, &self.reply)?;
            }
            let session_state = match command.session_id {
                Some(session_id) => apply_to_session(
                    conn,
                    session_id,
                    &command.agent_id,
                    &command.command_type,
                    &self.reply,
                )?,
                None => None,
            };
            Ok(ReplyEffect::Recorded {
                command: Box::new(command),
                session_state,
            })
        })
    }
}

fn apply_to_session(
    conn: &mut PgConnection,
    session_id: Uuid,
    agent_id: &str,
    command_type: &str,
    reply: &Reply,
) -> Result<Option<SessionState>, StoreError> {
    let current: Option<(String, Option<String>)> = sessions::table
        .find(session_id)
        .select((sessions::state, sessions::agent_id))
        .for_update()
        .first(conn)
        .optional()?;
    // Only the session's own agent's answers move it: another agent's never end it.
    let Some(current) = current
        .filter(|(_, placed_on)| placed_on.as_deref() == Some(agent_id))
        .and_then(|(s, _)| s.parse::<SessionState>().ok())
    else {
        return Ok(None);
    };
    let outcome = match reply {
        Reply::Ack => Outcome::Acked,
        Reply::Completed(result) => Outcome::Completed(result),
        Reply::Failed(error) => Outcome::Failed(error),
        Reply::TimedOut => Outcome::TimedOut,
    };
    let Some((state, reason)) = lifecycle::session_after_command(command_type, current, outcome)
    else {
        return Ok(None);
    };
    super::sessions::set_state(conn, session_id, state, reason)?;
    Ok(Some(state))
}

/// Which of `sessions` already have an unfinished `delete_session` on `agent_id`, so a
/// reconciliation does not ask twice.
pub(super) fn deletions_in_flight(
    conn: &mut PgConnection,
    agent_id: &str,
    sessions: &[Uuid],
) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<Option<Uuid>> = agent_commands::table
        .filter(agent_commands::agent_id.eq(agent_id))
        .filter(agent_commands::session_id.eq_any(sessions))
        .filter(agent_commands::command_type.eq("delete_session"))
        .filter(agent_commands::status.eq_any(statuses(CommandStatus::UNFINISHED)))
        .select(agent_commands::session_id)
        .load(conn)?;
    Ok(ids.into_iter().flatten().collect())
}

/// Commands not yet finished, oldest first; for one agent or all.
pub struct UnfinishedCommands(pub Option<String>);

impl Query for UnfinishedCommands {
    type Output = Vec<CommandRow>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<CommandRow>, StoreError> {
        let mut query = agent_commands::table
            .filter(agent_commands::status.eq_any(statuses(CommandStatus::UNFINISHED)))
            .select(CommandRow::as_select())
            .order(agent_commands::created_at)
            .into_boxed();
        if let Some(agent_id) = &self.0 {
            query = query.filter(agent_commands::agent_id.eq(agent_id));
        }
        Ok(query.load(conn)?)
    }
}

/// One command by its wire id.
pub struct CommandById(pub Uuid);

impl Query for CommandById {
    type Output = Option<CommandRow>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<CommandRow>, StoreError> {
        Ok(agent_commands::table
            .filter(agent_commands::command_id.eq(self.0))
            .select(CommandRow::as_select())
            .first(conn)
            .optional()?)
    }
}

/// Commands concerning a session, oldest first.
pub struct CommandsForSession(pub Uuid);

impl Query for CommandsForSession {
    type Output = Vec<CommandRow>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<CommandRow>, StoreError> {
        Ok(agent_commands::table
            .filter(agent_commands::session_id.eq(self.0))
            .order(agent_commands::created_at)
            .select(CommandRow::as_select())
            .load(conn)?)
    }
}
