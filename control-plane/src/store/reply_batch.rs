//! Answers recorded together: each command's update and its session's in one statement, for
//! any number of answers. Every answer to a command concerning a session goes this way, with
//! its session's move from each state it moves from (a deletion's answer hibernates a
//! hibernating session and ends the others); a home's deletion, and answers the caller knows
//! nothing of, take [`RecordReply`]'s transaction. (This module uses `commands`, never the
//! other way round.)

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Jsonb, Nullable, Text, Uuid as SqlUuid};
use streamspace_protocol::Command;
use uuid::Uuid;

use super::commands::{
    CommandRow, RecordReply, Reply, ReplyEffect, movable_by, session_moves, unmoved, written,
};
use super::{Query, StoreError};
use crate::lifecycle::Transition;
use crate::model::SessionState;

/// Records each answer, in order of the list; the outcome of each, in the same order.
pub struct RecordReplies(pub Vec<RecordReply>);

impl Query for RecordReplies {
    type Output = Vec<Result<ReplyEffect, StoreError>>;
    fn run(self, conn: &mut PgConnection) -> Result<Self::Output, StoreError> {
        let mut outcomes: Vec<Option<Result<ReplyEffect, StoreError>>> =
            self.0.iter().map(|_| None).collect();
        let mut together = Vec::new();
        for (at, reply) in self.0.into_iter().enumerate() {
            match planned(&reply) {
                Some(plan) => together.push((at, reply, plan)),
                None => outcomes[at] = Some(reply.run(conn)),
            }
        }
        // A statement updates a row once: answers touching the same command or session go in
        // rounds, in their order.
        while !together.is_empty() {
            let (mut seen_commands, mut seen_sessions) = (HashSet::new(), HashSet::new());
            let (round, later): (Vec<_>, Vec<_>) =
                together.into_iter().partition(|(_, reply, plan)| {
                    let fresh = !seen_commands.contains(&reply.command_id)
                        && !seen_sessions.contains(&plan.session_id);
                    if fresh {
                        seen_commands.insert(reply.command_id);
                        seen_sessions.insert(plan.session_id);
                    }
                    fresh
                });
            together = later;
            // One order of rows for every batch, so batches in flight together (one per
            // replica) lock commands alike.
            let mut round = round;
            round.sort_by_key(|(_, reply, _)| reply.command_id);
            match retry_deadlocks(|| record_together(conn, &round)) {
                Ok(effects) => {
                    for ((at, _, _), effect) in round.iter().zip(effects) {
                        outcomes[*at] = Some(Ok(effect));
                    }
                }
                // Earlier rounds stand (each statement commits); this one's answers are not
                // recorded, and each waiter is told.
                Err(e) => {
                    for (at, _, _) in &round {
                        outcomes[*at] = Some(Err(StoreError::Unavailable(e.to_string())));
                    }
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| Err(StoreError::NotFound)))
            .collect())
    }
}

/// Times a batch is tried when Postgres ends it to break a deadlock.
const DEADLOCK_TRIES: usize = 3;

/// Runs `statement` again when Postgres ended it to break a deadlock (batches in flight, and
/// the triggers they fire, can lock shared rows in other orders): one statement, so nothing
/// of it stood, and the next try usually finds the other side done.
fn retry_deadlocks<T>(
    mut statement: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut tries = 1;
    loop {
        match statement() {
            Err(e) if is_deadlock(&e) && tries < DEADLOCK_TRIES => tries += 1,
            other => return other,
        }
    }
}

/// Whether Postgres ended the statement to break a deadlock (SQLSTATE 40P01; diesel names no
/// kind for it, so its message says).
fn is_deadlock(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(diesel::result::Error::DatabaseError(_, info))
        if info.message().starts_with("deadlock detected"))
}

/// How an answer is recorded together with others.
struct Plan {
    session_id: Uuid,
    /// Its session's move from each state it moves from (none: it does not move).
    moves: Vec<(SessionState, Transition)>,
}

impl Plan {
    /// The moves as one JSON object, `{from: {"state": to, "reason": …}}`, so one statement
    /// applies whichever the session's state is when its row is locked.
    fn moves_json(&self) -> serde_json::Value {
        self.moves
            .iter()
            .map(|(from, (to, reason))| {
                (
                    from.as_str().to_owned(),
                    serde_json::json!({ "state": to.as_str(), "reason": reason }),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// The plan for `reply`, if it can be recorded together with others: the caller knows the
/// command concerns a session, and it is not a home's deletion (whose answer changes the
/// home too).
fn planned(reply: &RecordReply) -> Option<Plan> {
    let known = reply.known.as_ref()?;
    let session_id = known.session_id?;
    if known.command_type == Command::DELETE_HOME {
        return None;
    }
    Some(Plan {
        session_id,
        moves: session_moves(&known.command_type, &reply.reply),
    })
}

/// A row of [`record_together`].
#[derive(QueryableByName)]
struct Recorded {
    #[diesel(embed)]
    command: CommandRow,
    #[diesel(sql_type = Nullable<Text>)]
    moved_to: Option<String>,
}

/// One statement for `round` (no command or session twice). The filters stay on the updated
/// rows, so Postgres checks them again after waiting for a row lock.
fn record_together(
    conn: &mut PgConnection,
    round: &[(usize, RecordReply, Plan)],
) -> Result<Vec<ReplyEffect>, StoreError> {
    let column = |f: &dyn Fn(&RecordReply, &Plan) -> String| {
        round.iter().map(|(_, r, p)| f(r, p)).collect::<Vec<_>>()
    };
    let written: Vec<_> = round.iter().map(|(_, r, _)| written(&r.reply)).collect();
    let to = "(r.moves -> sessions.state ->> 'state')";
    let finals: Vec<String> = SessionState::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| format!("'{s}'"))
        .collect();
    let (started, terminated) = super::sessions::stamps(
        &format!("{to} = 'running'"),
        &format!("{to} IN ({})", finals.join(", ")),
    );
    let (before, after) = super::sessions::reason_rule(to);
    let reason = format!("{before}(r.moves -> sessions.state ->> 'reason'){after}");
    let sql = format!(
        "WITH r AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], \
             $5::text[], $6::bool[], $7::text[], $8::uuid[], $9::jsonb[]) \
           AS r (command_id, agent_id, status, result, error, ack, movable, session_id, \
                 moves)), \
         c AS (UPDATE agent_commands SET status = r.status, \
             acked_at = CASE WHEN r.ack THEN now() ELSE agent_commands.acked_at END, \
             result = CASE WHEN r.ack THEN agent_commands.result ELSE r.result END, \
             error = CASE WHEN r.ack THEN agent_commands.error ELSE r.error END, \
             completed_at = CASE WHEN r.ack THEN agent_commands.completed_at ELSE now() END \
           FROM r WHERE agent_commands.command_id = r.command_id \
             AND agent_commands.status = ANY(string_to_array(r.movable, ',')) \
             AND (r.agent_id IS NULL OR agent_commands.agent_id = r.agent_id) \
           RETURNING agent_commands.*), \
         s AS (UPDATE sessions SET state = {to}, state_reason = {reason}, \
             started_at = {started}, terminated_at = {terminated} \
           FROM c JOIN r ON r.command_id = c.command_id \
           WHERE sessions.id = r.session_id AND sessions.agent_id = c.agent_id \
             AND (r.moves -> sessions.state) IS NOT NULL \
           RETURNING sessions.id, sessions.state) \
         SELECT c.*, (SELECT s.state FROM s WHERE s.id = c.session_id) AS moved_to FROM c"
    );
    // Planned at each call, not prepared: a plan kept from when `agent_commands` was small
    // joins by scanning it whole, and stays until the table is next analysed — on a new
    // database that was every batch of the first minute (683 blocks read per batch, the
    // heaviest statement of the creation benchmark; see docs/PERFORMANCE.md).
    let recorded: Vec<Recorded> = diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(
            round
                .iter()
                .map(|(_, r, _)| r.command_id)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            round
                .iter()
                .map(|(_, r, _)| r.agent_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(written.iter().map(|w| w.0.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Jsonb>>, _>(written.iter().map(|w| w.1.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(written.iter().map(|w| w.2.clone()).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(
            round
                .iter()
                .map(|(_, r, _)| matches!(r.reply, Reply::Ack))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(column(&|r, _| movable_by(&r.reply).join(",")))
        .bind::<Array<SqlUuid>, _>(
            round
                .iter()
                .map(|(_, _, p)| p.session_id)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Jsonb>, _>(
            round
                .iter()
                .map(|(_, _, p)| p.moves_json())
                .collect::<Vec<_>>(),
        )
        .load(conn)?;
    round
        .iter()
        .map(|(_, reply, _)| {
            match recorded
                .iter()
                .find(|row| row.command.command_id == reply.command_id)
            {
                Some(row) => Ok(ReplyEffect::Recorded {
                    command: Box::new(row.command.clone()),
                    session_state: row.moved_to.as_deref().and_then(|s| s.parse().ok()),
                }),
                None => unmoved(conn, reply.command_id, reply.agent_id.as_deref()),
            }
        })
        .collect()
}

#[cfg(test)]
mod deadlock_tests {
    use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};

    use super::*;

    struct Message(&'static str);

    impl DatabaseErrorInformation for Message {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn failure(message: &'static str) -> StoreError {
        StoreError::Database(Error::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(Message(message)),
        ))
    }

    #[test]
    fn a_batch_ended_by_a_deadlock_is_tried_again_a_few_times_and_nothing_else_is() {
        let mut calls = 0;
        let result = retry_deadlocks(|| {
            calls += 1;
            if calls < 2 {
                Err(failure("deadlock detected"))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result.unwrap(), 2);

        let mut calls = 0;
        let result: Result<(), _> = retry_deadlocks(|| {
            calls += 1;
            Err(failure("deadlock detected"))
        });
        assert!(result.is_err());
        assert_eq!(calls, DEADLOCK_TRIES);

        let mut calls = 0;
        let result: Result<(), _> = retry_deadlocks(|| {
            calls += 1;
            Err(failure("canceling statement due to statement timeout"))
        });
        assert!(result.is_err());
        assert_eq!(calls, 1, "only deadlocks are tried again");
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use streamspace_testkit::TestDatabase;

    use super::*;
    use crate::model::CommandStatus;
    use crate::store::command_rows::statuses;
    use crate::store::commands::{CommandById, Known};

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

    /// A database with one user and these agents (`(agent_id, platform)` rows in SQL).
    fn with_agents(agents: &str) -> (TestDatabase, PgConnection) {
        let (db, mut conn) = crate::store::migrated_database();
        conn.batch_execute(&format!(
            "INSERT INTO users (username, password_hash) VALUES ('u', 'x');\
             INSERT INTO agents (agent_id, platform) VALUES {agents}"
        ))
        .unwrap();
        (db, conn)
    }

    fn effect(effect: &ReplyEffect) -> String {
        match effect {
            ReplyEffect::Recorded { session_state, .. } => format!("recorded {session_state:?}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_records_every_answer_exactly_as_the_transaction_does_one_by_one() {
        let (_db, mut conn) = with_agents("('a', 'local'), ('b', 'local')");
        let running = serde_json::json!({"session_id": Uuid::nil(), "state": "running"});
        let replies = [
            Reply::Ack,
            Reply::Completed(running),
            Reply::Completed(serde_json::json!({"unreadable": true})),
            Reply::Failed("no room".into()),
            Reply::TimedOut,
        ];
        let answer = |conn: &mut PgConnection,
                      command: Uuid,
                      agent: Option<&str>,
                      reply: &Reply,
                      known: Option<&str>| RecordReply {
            command_id: command,
            agent_id: agent.map(str::to_owned),
            reply: reply.clone(),
            known: known.map(|command_type| Known {
                command_type: command_type.to_owned(),
                session_id: CommandById(command).run(conn).unwrap().unwrap().session_id,
            }),
        };
        // Every answer to every state of command and session: recorded one by one through
        // the transaction (the caller knowing nothing), one by one as a batch of one, and all
        // together in one batch.
        let (mut cases, mut batch, mut batched) = (Vec::new(), Vec::new(), Vec::new());
        for command_type in ["create_session", "delete_session"] {
            for reply in &replies {
                for status in statuses(CommandStatus::ALL) {
                    for state in SessionState::ALL {
                        for agent in [Some("a"), Some("b"), None] {
                            let case = format!(
                                "{command_type} {reply:?} to a {status} command, session {state}, from {agent:?}"
                            );
                            let command = setup(&mut conn, command_type, status, state.as_str());
                            let one_by_one = effect(
                                &answer(&mut conn, command, agent, reply, None)
                                    .run(&mut conn)
                                    .unwrap(),
                            );
                            let expected = (one_by_one, after(&mut conn, command));
                            let command = setup(&mut conn, command_type, status, state.as_str());
                            batch.push(answer(
                                &mut conn,
                                command,
                                agent,
                                reply,
                                Some(command_type),
                            ));
                            batched.push(command);
                            cases.push((case, expected));
                        }
                    }
                }
            }
        }
        let effects = RecordReplies(batch).run(&mut conn).unwrap();
        assert_eq!(effects.len(), cases.len());
        for (((case, expected), command), got) in cases.iter().zip(batched).zip(effects) {
            let got = (effect(&got.unwrap()), after(&mut conn, command));
            assert_eq!(&got, expected, "{case}");
        }
        assert_eq!(
            cases.len(),
            2 * replies.len() * CommandStatus::ALL.len() * SessionState::ALL.len() * 3
        );
    }

    #[test]
    fn answers_to_one_command_in_one_batch_are_recorded_in_their_order() {
        let (_db, mut conn) = with_agents("('a', 'local')");
        let command = setup(&mut conn, "create_session", "sent", "pending");
        let session_id = CommandById(command)
            .run(&mut conn)
            .unwrap()
            .unwrap()
            .session_id;
        let running = serde_json::json!({"session_id": session_id, "state": "running"});
        let effects = RecordReplies(
            [Reply::Ack, Reply::Completed(running), Reply::Ack]
                .into_iter()
                .map(|reply| RecordReply {
                    command_id: command,
                    agent_id: Some("a".into()),
                    reply,
                    known: Some(Known {
                        command_type: "create_session".into(),
                        session_id,
                    }),
                })
                .collect(),
        )
        .run(&mut conn)
        .unwrap();
        let effects: Vec<String> = effects
            .iter()
            .map(|e| effect(e.as_ref().unwrap()))
            .collect();
        assert_eq!(
            effects,
            [
                "recorded Some(Creating)",
                "recorded Some(Running)",
                "Duplicate"
            ]
        );
        let done = after(&mut conn, command);
        assert_eq!(
            (
                done.status.as_str(),
                done.acked,
                done.completed,
                done.state.as_str(),
                done.started
            ),
            ("completed", true, true, "running", true)
        );
    }
}
