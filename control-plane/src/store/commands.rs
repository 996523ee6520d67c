//! `agent_commands`: every command, persisted before it is sent, with its lifecycle.

use diesel::dsl::now;
use diesel::prelude::*;
use streamspace_protocol::{Command, ControlMessage};
use uuid::Uuid;

pub use super::command_rows::{CommandRow, Reply};
use super::command_rows::{insert_command, statuses};
use super::prepared::Prepare;
use super::schema::{agent_commands, sessions};
use super::{Query, StoreError};
use crate::lifecycle::{self, Outcome};
use crate::model::{CommandStatus, SessionState};

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

/// These commands are being written to their agents' connections.
pub struct MarkSent(pub Vec<Uuid>);

impl Query for MarkSent {
    type Output = Vec<Result<(), StoreError>>;
    fn run(self, conn: &mut PgConnection) -> Result<Self::Output, StoreError> {
        use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
        let count = self.0.len();
        let mut ids = self.0;
        // A command is delivered once at a time (its actor waits), but a row is updated once
        // per statement all the same.
        ids.sort_unstable();
        ids.dedup();
        // Counted even if an answer was recorded first: it was handed over all the same.
        diesel::sql_query(
            "UPDATE agent_commands SET attempts = attempts + 1, \
             sent_at = CASE WHEN status = ANY($2) THEN now() ELSE sent_at END, \
             status = CASE WHEN status = $3 THEN $4 ELSE status END \
             FROM unnest($1::uuid[]) AS sent (command_id) \
             WHERE agent_commands.command_id = sent.command_id",
        )
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Text>, _>(statuses(CommandStatus::UNFINISHED))
        .bind::<Text, _>(CommandStatus::Pending.as_str())
        .bind::<Text, _>(CommandStatus::Sent.as_str())
        .prepared()
        .execute(conn)?;
        Ok((0..count).map(|_| Ok(())).collect())
    }
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
    /// What the caller knows of the command, if anything: enough for `RecordReplies` to record
    /// the common replies in one statement.
    pub known: Option<Known>,
}

/// A command's type and session, as its actor holds them.
pub struct Known {
    /// `create_session`, …
    pub command_type: String,
    /// The session it concerns.
    pub session_id: Option<Uuid>,
}

impl Query for RecordReply {
    type Output = ReplyEffect;
    /// In a transaction, whatever the answer; `reply_batch::RecordReplies` records the common
    /// ones, of any number of commands, in one statement.
    fn run(self, conn: &mut PgConnection) -> Result<ReplyEffect, StoreError> {
        conn.transaction(|conn| {
            // The update itself decides: it matches only a command of this agent that the reply
            // may still move (an ack only one not acked yet), and locks it.
            let movable = movable_by(&self.reply);
            use diesel::IntoSql;
            use diesel::sql_types::Bool;
            // The deadline sweep (no agent) may move any agent's command.
            let by_agent = agent_commands::agent_id
                .nullable()
                .eq(self.agent_id.clone())
                .or(self.agent_id.is_none().into_sql::<Bool>());
            let target = agent_commands::table
                .filter(agent_commands::command_id.eq(self.command_id))
                .filter(agent_commands::status.eq_any(movable))
                .filter(by_agent);
            let updated: Option<CommandRow> = match &self.reply {
                Reply::Ack => diesel::update(target)
                    .set((
                        agent_commands::status.eq(CommandStatus::Ack.as_str()),
                        agent_commands::acked_at.eq(now),
                    ))
                    .returning(CommandRow::as_returning())
                    .get_result(conn)
                    .optional()?,
                finished => {
                    let (status, result, error) = written(finished);
                    diesel::update(target)
                        .set((
                            agent_commands::status.eq(status.as_str()),
                            agent_commands::result.eq(result),
                            agent_commands::error.eq(error),
                            agent_commands::completed_at.eq(now),
                        ))
                        .returning(CommandRow::as_returning())
                        .get_result(conn)
                        .optional()?
                }
            };
            let Some(command) = updated else {
                return unmoved(conn, self.command_id, self.agent_id.as_deref());
            };
            if command.command_type == Command::DELETE_HOME {
                super::homes::after_delete(conn, &command, &self.reply)?;
            }
            // A request on another replica may be waiting for it (live queries, home
            // deletions); session commands are followed through their session.
            if command.session_id.is_none() && !matches!(self.reply, Reply::Ack) {
                super::replicas::notify(
                    conn,
                    super::replicas::COMMAND_DONE_CHANNEL,
                    &command.command_id.to_string(),
                )?;
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

/// Why a reply moved no command: there is none of this agent's (`Unknown`), or it was past
/// what the reply could change (`Duplicate`).
pub(super) fn unmoved(
    conn: &mut PgConnection,
    command_id: Uuid,
    agent_id: Option<&str>,
) -> Result<ReplyEffect, StoreError> {
    let owner: Option<String> = agent_commands::table
        .filter(agent_commands::command_id.eq(command_id))
        .select(agent_commands::agent_id)
        .first(conn)
        .optional()?;
    Ok(match owner {
        Some(owner) if agent_id.is_none_or(|agent| agent == owner) => ReplyEffect::Duplicate,
        _ => ReplyEffect::Unknown,
    })
}

/// The status, result and error `reply` writes to its command.
pub(super) fn written(reply: &Reply) -> (CommandStatus, Option<serde_json::Value>, Option<String>) {
    match reply {
        Reply::Ack => (CommandStatus::Ack, None, None),
        Reply::Completed(result) => (CommandStatus::Completed, Some(result.clone()), None),
        Reply::Failed(error) => (CommandStatus::Failed, None, Some(error.clone())),
        Reply::TimedOut => (
            CommandStatus::Timeout,
            None,
            Some("no answer from the agent within COMMAND_TIMEOUT".to_owned()),
        ),
    }
}

/// The command statuses `reply` may still move.
pub(super) fn movable_by(reply: &Reply) -> Vec<&'static str> {
    match reply {
        Reply::Ack => statuses(&[CommandStatus::Pending, CommandStatus::Sent]),
        _ => statuses(CommandStatus::UNFINISHED),
    }
}

/// What `reply` to a `command_type` command does to its session, from each state it moves
/// from.
pub(super) fn session_moves(
    command_type: &str,
    reply: &Reply,
) -> Vec<(SessionState, lifecycle::Transition)> {
    let outcome = match reply {
        Reply::Ack => Outcome::Acked,
        Reply::Completed(result) => Outcome::Completed(result),
        Reply::Failed(error) => Outcome::Failed(error),
        Reply::TimedOut => Outcome::TimedOut,
    };
    SessionState::ALL
        .iter()
        .filter_map(|&from| {
            lifecycle::session_after_command(command_type, from, outcome).map(|to| (from, to))
        })
        .collect()
}

fn apply_to_session(
    conn: &mut PgConnection,
    session_id: Uuid,
    agent_id: &str,
    command_type: &str,
    reply: &Reply,
) -> Result<Option<SessionState>, StoreError> {
    // When the reply makes the same move from every state that moves at all, one conditional
    // update does it without reading the session first.
    let moves = session_moves(command_type, reply);
    let Some((_, first)) = moves.first().cloned() else {
        return Ok(None);
    };
    if moves.iter().all(|(_, to)| *to == first) {
        let from: Vec<SessionState> = moves.iter().map(|(from, _)| *from).collect();
        let (state, reason) = first;
        let moved =
            super::sessions::set_state_from(conn, session_id, agent_id, &from, state, reason)?;
        return Ok(moved.then_some(state));
    }
    let current: Option<(String, Option<String>)> = sessions::table
        .find(session_id)
        .select((sessions::state, sessions::agent_id))
        .for_update()
        .first(conn)
        .optional()?;
    let Some(current) = current
        .filter(|(_, placed_on)| placed_on.as_deref() == Some(agent_id))
        .and_then(|(s, _)| s.parse::<SessionState>().ok())
    else {
        return Ok(None);
    };
    let Some((_, (state, reason))) = moves.into_iter().find(|(from, _)| *from == current) else {
        return Ok(None);
    };
    super::sessions::set_state(conn, session_id, state, reason)?;
    Ok(Some(state))
}

/// Commands of these agents not yet finished, oldest first.
pub struct UnfinishedCommands(pub Vec<String>);

impl Query for UnfinishedCommands {
    type Output = Vec<CommandRow>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<CommandRow>, StoreError> {
        Ok(agent_commands::table
            .filter(agent_commands::status.eq_any(statuses(CommandStatus::UNFINISHED)))
            .filter(agent_commands::agent_id.eq_any(&self.0))
            .select(CommandRow::as_select())
            .order(agent_commands::created_at)
            .load(conn)?)
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

/// Commands whose payload names a session, oldest first: also those of a session removed from
/// the lists since (their `session_id` is cleared then, their payload is not).
pub struct CommandsMentioning(pub Uuid);

impl Query for CommandsMentioning {
    type Output = Vec<CommandRow>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<CommandRow>, StoreError> {
        Ok(agent_commands::table
            .filter(
                agent_commands::payload
                    .retrieve_by_path_as_text(vec!["command", "session_id"])
                    .eq(self.0.to_string()),
            )
            .order(agent_commands::created_at)
            .select(CommandRow::as_select())
            .load(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;

    #[test]
    fn marking_sent_counts_every_handover_and_moves_only_a_pending_command() {
        let (_db, mut conn) = crate::store::migrated_database();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        conn.batch_execute(&format!(
            "INSERT INTO agents (agent_id, platform) VALUES ('a', 'local');\
             INSERT INTO agent_commands (command_id, agent_id, command_type, payload, status, \
                timeout_at) VALUES \
                ('{}', 'a', 'list_sessions', '{{}}', 'pending', now() + interval '1 hour'), \
                ('{}', 'a', 'list_sessions', '{{}}', 'ack', now() + interval '1 hour'), \
                ('{}', 'a', 'list_sessions', '{{}}', 'completed', now() + interval '1 hour')",
            ids[0], ids[1], ids[2]
        ))
        .unwrap();
        // The first twice in one batch: one row update.
        let outcomes = MarkSent(vec![ids[0], ids[0], ids[1], ids[2]])
            .run(&mut conn)
            .unwrap();
        assert_eq!(outcomes.len(), 4);
        assert!(outcomes.iter().all(Result::is_ok));
        let seen: Vec<(String, i32, bool)> = ids
            .iter()
            .map(|id| {
                let c = CommandById(*id).run(&mut conn).unwrap().unwrap();
                (c.status, c.attempts, c.sent_at.is_some())
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("sent".to_owned(), 1, true),
                ("ack".to_owned(), 1, true),
                ("completed".to_owned(), 1, false),
            ]
        );
    }
}
