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

/// The command was written to the agent's connection.
pub struct MarkSent(pub Uuid);

impl Query for MarkSent {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
        // Counted even if an answer was recorded first: it was handed over all the same.
        diesel::sql_query(
            "UPDATE agent_commands SET attempts = attempts + 1, \
             sent_at = CASE WHEN status = ANY($2) THEN now() ELSE sent_at END, \
             status = CASE WHEN status = $3 THEN $4 ELSE status END \
             WHERE command_id = $1",
        )
        .bind::<SqlUuid, _>(self.0)
        .bind::<Array<Text>, _>(statuses(CommandStatus::UNFINISHED))
        .bind::<Text, _>(CommandStatus::Pending.as_str())
        .bind::<Text, _>(CommandStatus::Sent.as_str())
        .prepared()
        .execute(conn)?;
        Ok(())
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
    /// What the caller knows of the command, if anything: enough to record the common
    /// replies in one statement.
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
    fn run(self, conn: &mut PgConnection) -> Result<ReplyEffect, StoreError> {
        if let Some(known) = &self.known
            && let Some(session_id) = known.session_id
            && known.command_type != Command::DELETE_HOME
            && let Some(session_move) = uniform_move(&known.command_type, &self.reply)
        {
            return record_in_one_statement(conn, &self, session_id, session_move);
        }
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
fn unmoved(
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
fn written(reply: &Reply) -> (CommandStatus, Option<serde_json::Value>, Option<String>) {
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
fn movable_by(reply: &Reply) -> Vec<&'static str> {
    match reply {
        Reply::Ack => statuses(&[CommandStatus::Pending, CommandStatus::Sent]),
        _ => statuses(CommandStatus::UNFINISHED),
    }
}

/// What `reply` to a `command_type` command does to its session, from each state it moves
/// from.
fn session_moves(command_type: &str, reply: &Reply) -> Vec<(SessionState, lifecycle::Transition)> {
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

/// A session move that is the same from every state it happens in: those states and the
/// move. `Some(None)`: the reply moves no session; `None`: the move depends on the state.
type UniformMove = Option<(Vec<SessionState>, lifecycle::Transition)>;

fn uniform_move(command_type: &str, reply: &Reply) -> Option<UniformMove> {
    let moves = session_moves(command_type, reply);
    let Some((_, first)) = moves.first() else {
        return Some(None);
    };
    if !moves.iter().all(|(_, to)| to == first) {
        return None;
    }
    let first = first.clone();
    Some(Some((
        moves.into_iter().map(|(from, _)| from).collect(),
        first,
    )))
}

/// A row of [`record_in_one_statement`].
#[derive(QueryableByName)]
struct Recorded {
    #[diesel(embed)]
    command: CommandRow,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    moved: bool,
}

/// [`RecordReply`] of a session's command whose move does not depend on the session's state
/// (`session_move`): the command's update and the session's in one statement, so one round
/// trip and no explicit transaction. The session's filters stay on its updated row.
fn record_in_one_statement(
    conn: &mut PgConnection,
    query: &RecordReply,
    session_id: Uuid,
    session_move: UniformMove,
) -> Result<ReplyEffect, StoreError> {
    use diesel::sql_types::{Array, Jsonb, Nullable, Text, Uuid as SqlUuid};
    let (status, result, error) = written(&query.reply);
    let stamps = match query.reply {
        Reply::Ack => "acked_at = now()",
        _ => "result = $4, error = $5, completed_at = now()",
    };
    let (from, (state, reason)) =
        session_move.unwrap_or((Vec::new(), (SessionState::Failed, None)));
    let (started, terminated) = super::sessions::stamps(state);
    let sql = format!(
        "WITH c AS (UPDATE agent_commands SET status = $3, {stamps} \
         WHERE command_id = $1 AND status = ANY($6) AND ($2::text IS NULL OR agent_id = $2) \
         RETURNING *), \
         s AS (UPDATE sessions SET state = $7, state_reason = $8, \
         started_at = {started}, terminated_at = {terminated} \
         FROM c WHERE sessions.id = $9 AND sessions.agent_id = c.agent_id \
         AND sessions.state = ANY($10) RETURNING sessions.id) \
         SELECT c.*, EXISTS (SELECT 1 FROM s) AS moved FROM c"
    );
    let recorded: Option<Recorded> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(query.command_id)
        .bind::<Nullable<Text>, _>(query.agent_id.as_deref())
        .bind::<Text, _>(status.as_str())
        .bind::<Nullable<Jsonb>, _>(result)
        .bind::<Nullable<Text>, _>(error)
        .bind::<Array<Text>, _>(movable_by(&query.reply))
        .bind::<Text, _>(state.as_str())
        .bind::<Nullable<Text>, _>(reason)
        .bind::<SqlUuid, _>(session_id)
        .bind::<Array<Text>, _>(from.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        .prepared()
        .get_result(conn)
        .optional()?;
    match recorded {
        None => unmoved(conn, query.command_id, query.agent_id.as_deref()),
        Some(Recorded { command, moved }) => Ok(ReplyEffect::Recorded {
            command: Box::new(command),
            session_state: moved.then_some(state),
        }),
    }
}

fn apply_to_session(
    conn: &mut PgConnection,
    session_id: Uuid,
    agent_id: &str,
    command_type: &str,
    reply: &Reply,
) -> Result<Option<SessionState>, StoreError> {
    // When the reply makes the same move from every state that moves at all (as it does for
    // every command today), one conditional update does it without reading the session first.
    if let Some(session_move) = uniform_move(command_type, reply) {
        let Some((from, (state, reason))) = session_move else {
            return Ok(None);
        };
        let moved =
            super::sessions::set_state_from(conn, session_id, agent_id, &from, state, reason)?;
        return Ok(moved.then_some(state));
    }
    let moves = session_moves(command_type, reply);
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
    use streamspace_testkit::TestDatabase;

    use super::*;

    /// What a recorded reply left behind, to compare the two ways of recording it.
    #[derive(QueryableByName, Debug, PartialEq)]
    struct After {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Jsonb>)]
        result: Option<serde_json::Value>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        error: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        acked: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        completed: bool,
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        state_reason: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        started: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        terminated: bool,
    }

    /// A session in `state` on agent `a`, with a `command_type` command in `status`.
    fn setup(conn: &mut PgConnection, command_type: &str, status: &str, state: &str) -> Uuid {
        let (session, command) = (Uuid::new_v4(), Uuid::new_v4());
        conn.batch_execute(&format!(
            "INSERT INTO sessions (id, owner_id, template_name, state, resources, platform, agent_id) \
                VALUES ('{session}', (SELECT id FROM users), 't', '{state}', '{{}}', 'local', 'a');\
             INSERT INTO agent_commands (command_id, agent_id, session_id, command_type, payload, \
                status, timeout_at) VALUES ('{command}', 'a', '{session}', '{command_type}', '{{}}', \
                '{status}', now() + interval '1 hour')"
        ))
        .unwrap();
        command
    }

    fn after(conn: &mut PgConnection, command: Uuid) -> After {
        diesel::sql_query(
            "SELECT c.status, c.result, c.error, c.acked_at IS NOT NULL AS acked, \
             c.completed_at IS NOT NULL AS completed, s.state, s.state_reason, \
             s.started_at IS NOT NULL AS started, s.terminated_at IS NOT NULL AS terminated \
             FROM agent_commands c JOIN sessions s ON s.id = c.session_id WHERE c.command_id = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(command)
        .get_result(conn)
        .unwrap()
    }

    fn effect(effect: &ReplyEffect) -> String {
        match effect {
            ReplyEffect::Recorded { session_state, .. } => format!("recorded {session_state:?}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn one_statement_records_every_reply_exactly_as_the_transaction_does() {
        let db = TestDatabase::create();
        let mut conn = db.connect();
        crate::store::migrations::run_pending(&mut conn).unwrap();
        conn.batch_execute(
            "INSERT INTO users (username, password_hash) VALUES ('u', 'x');\
             INSERT INTO agents (agent_id, platform) VALUES ('a', 'local'), ('b', 'local')",
        )
        .unwrap();
        let running = serde_json::json!({"session_id": Uuid::nil(), "state": "running"});
        let replies = [
            Reply::Ack,
            Reply::Completed(running),
            Reply::Completed(serde_json::json!({"unreadable": true})),
            Reply::Failed("no room".into()),
            Reply::TimedOut,
        ];
        let mut compared = 0;
        for command_type in ["create_session", "delete_session"] {
            for reply in &replies {
                for status in statuses(CommandStatus::ALL) {
                    for state in SessionState::ALL {
                        for agent in [Some("a"), Some("b"), None] {
                            let mut outcomes = Vec::new();
                            for known in [true, false] {
                                let command =
                                    setup(&mut conn, command_type, status, state.as_str());
                                let query = RecordReply {
                                    command_id: command,
                                    agent_id: agent.map(str::to_owned),
                                    reply: reply.clone(),
                                    known: known.then(|| Known {
                                        command_type: command_type.to_owned(),
                                        session_id: Some(
                                            CommandById(command)
                                                .run(&mut conn)
                                                .unwrap()
                                                .unwrap()
                                                .session_id
                                                .unwrap(),
                                        ),
                                    }),
                                };
                                let done = effect(&query.run(&mut conn).unwrap());
                                outcomes.push((done, after(&mut conn, command)));
                            }
                            assert_eq!(
                                outcomes[0], outcomes[1],
                                "{command_type} {reply:?} to a {status} command, session {state}, from {agent:?}"
                            );
                            compared += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(
            compared,
            2 * replies.len() * CommandStatus::ALL.len() * SessionState::ALL.len() * 3
        );
    }
}
