//! The `agent_commands` rows themselves: what the changes that need a command (creating or
//! deleting a session, removing a home) insert in their own transactions, and the answers
//! recorded for them. Below both `commands` (which applies answers to sessions and homes) and
//! the tables whose changes send commands, so neither has to import the other.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use streamspace_protocol::ControlMessage;
use uuid::Uuid;

use super::StoreError;
use super::schema::agent_commands;
use crate::model::CommandStatus;

/// A command as stored.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize)]
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
    Ok(diesel::insert_into(agent_commands::table)
        .values((
            agent_commands::command_id.eq(command_id),
            agent_commands::agent_id.eq(agent_id),
            agent_commands::session_id.eq(session_id),
            agent_commands::command_type.eq(command.name()),
            agent_commands::payload.eq(serde_json::to_value(message).unwrap_or_default()),
            agent_commands::timeout_at.eq(deadline(timeout)),
        ))
        .returning(CommandRow::as_returning())
        .get_result(conn)?)
}

/// When a command given `timeout` (`COMMAND_TIMEOUT`) from now times out.
pub(super) fn deadline(timeout: std::time::Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX)
}

pub(super) fn statuses(list: &[CommandStatus]) -> Vec<&'static str> {
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
