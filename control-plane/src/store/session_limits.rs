//! Templates' limits on their desktops: a session that had no viewer input for its idle
//! timeout, or that reached its maximum lifetime, is stopped like a deletion by its owner
//! (`terminating`, a `delete_session` for its agent), with the reason on the session and in
//! the audit log. An idle one whose template says `hibernate` (and that has a persistent
//! home) hibernates instead; a hibernated one still ends at its lifetime. Every replica
//! sweeps; `SKIP LOCKED` gives each overdue session to one.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use uuid::Uuid;

use super::audit::{NewAuditEntry, Record};
use super::command_rows::CommandRow;
use super::sessions::{DeleteCommand, set_state};
use super::{Query, StoreError};
use crate::model::SessionState;

/// Why a session was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// No viewer input for its idle timeout.
    Idle,
    /// Its maximum lifetime reached.
    Lifetime,
    /// No viewer input for its idle timeout, and its template hibernates idle desktops.
    IdleHibernate,
}

impl Overdue {
    /// The audit log's action.
    pub fn action(self) -> &'static str {
        match self {
            Overdue::Idle => "session_idle_stop",
            Overdue::Lifetime => "session_lifetime_stop",
            Overdue::IdleHibernate => "session_idle_hibernate",
        }
    }
}

/// `n` seconds in words, for a reason people read.
pub fn duration_words(seconds: i32) -> String {
    let seconds = i64::from(seconds);
    let (value, unit) = match seconds {
        s if s % 3600 == 0 => (s / 3600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{value} {unit}{}", if value == 1 { "" } else { "s" })
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    agent_id: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    persistent_home: bool,
    #[diesel(sql_type = Text)]
    cause: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    limit_seconds: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    can_hibernate: bool,
}

const DUE: &str = "SELECT id, agent_id, persistent_home, \
         CASE WHEN lifetime_over THEN 'lifetime' ELSE 'idle' END AS cause, \
         CASE WHEN lifetime_over THEN max_lifetime_seconds ELSE idle_timeout_seconds END \
             AS limit_seconds, \
         idle_action = 'hibernate' AND persistent_home AND has_spec AS can_hibernate \
     FROM (SELECT id, agent_id, persistent_home, idle_timeout_seconds, max_lifetime_seconds, \
             idle_action, spec IS NOT NULL AS has_spec, \
             COALESCE(started_at + make_interval(secs => max_lifetime_seconds) <= now(), false) \
                 AS lifetime_over \
           FROM sessions \
           WHERE (idle_timeout_seconds IS NOT NULL OR max_lifetime_seconds IS NOT NULL) \
             AND terminated_at IS NULL AND agent_id IS NOT NULL \
             AND (state IN ('running', 'degraded', 'hibernated') \
                  AND started_at + make_interval(secs => max_lifetime_seconds) <= now() \
                  OR state IN ('running', 'degraded') \
                  AND GREATEST(started_at, last_input_at) \
                     + make_interval(secs => idle_timeout_seconds) <= now()) \
           ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) AS due";

/// Stops (or hibernates) up to `limit` overdue sessions; their `delete_session` commands, to
/// dispatch.
pub struct EndOverdueSessions {
    /// At most this many per sweep.
    pub limit: i64,
    /// `COMMAND_TIMEOUT`.
    pub command_timeout: std::time::Duration,
}

impl Query for EndOverdueSessions {
    type Output = Vec<CommandRow>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<CommandRow>, StoreError> {
        conn.transaction(|conn| {
            let due: Vec<Due> = diesel::sql_query(DUE)
                .bind::<BigInt, _>(self.limit)
                .load(conn)?;
            let mut commands = Vec::with_capacity(due.len());
            for session in due {
                let limit = duration_words(session.limit_seconds);
                let (cause, reason) = match (session.cause.as_str(), session.can_hibernate) {
                    ("lifetime", _) => (
                        Overdue::Lifetime,
                        format!("reached its maximum lifetime of {limit}"),
                    ),
                    (_, true) => (
                        Overdue::IdleHibernate,
                        format!("hibernated after {limit} without input"),
                    ),
                    _ => (
                        Overdue::Idle,
                        format!("stopped after {limit} without input"),
                    ),
                };
                let (state, keep_home) = match cause {
                    Overdue::IdleHibernate => (SessionState::Hibernating, true),
                    _ => (SessionState::Terminating, session.persistent_home),
                };
                set_state(conn, session.id, state, Some(reason.clone()))?;
                commands.push(
                    DeleteCommand {
                        agent_id: &session.agent_id,
                        session_id: session.id,
                        keep_home,
                        tied_to: Some(session.id),
                        command_id: Uuid::new_v4(),
                        timeout: self.command_timeout,
                    }
                    .insert(conn)?,
                );
                Record(
                    NewAuditEntry::anonymous(cause.action())
                        .target("session", session.id)
                        .details(serde_json::json!({
                            "reason": reason,
                            "limit_seconds": session.limit_seconds,
                        })),
                )
                .run(conn)?;
            }
            Ok(commands)
        })
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;

    #[derive(QueryableByName)]
    struct Read {
        #[diesel(sql_type = BigInt)]
        entries: i64,
        #[diesel(sql_type = BigInt)]
        table_scans: i64,
    }

    /// What this connection has read of `sessions` and not yet reported: entries of the
    /// sweep's index, and scans of the whole table.
    fn read(conn: &mut PgConnection) -> (i64, i64) {
        let read: Read = diesel::sql_query(
            "SELECT pg_stat_get_xact_tuples_returned('idx_sessions_limited'::regclass) \
                 AS entries, \
             pg_stat_get_xact_numscans('sessions'::regclass) AS table_scans",
        )
        .get_result(conn)
        .unwrap();
        (read.entries, read.table_scans)
    }

    /// Ended sessions stay for their retention; the sweep reads the live ones only.
    #[test]
    fn the_sweep_reads_live_sessions_only_however_many_have_ended() {
        let (_db, mut conn) = crate::store::migrated_database();
        conn.batch_execute(
            "INSERT INTO users (id, username, password_hash, role) \
                 VALUES ('00000000-0000-0000-0000-000000000001', 'u', 'x', 'user');
             INSERT INTO agents (agent_id, platform) VALUES ('a', 'local');
             INSERT INTO sessions (owner_id, template_name, state, agent_id, started_at, \
                 terminated_at, max_lifetime_seconds) \
             SELECT '00000000-0000-0000-0000-000000000001', 't', 'terminated', 'a', \
                 now() - interval '2 hours', now() - interval '1 hour', 60 \
             FROM generate_series(1, 2000);
             INSERT INTO sessions (owner_id, template_name, state, agent_id, started_at, \
                 max_lifetime_seconds) \
             VALUES ('00000000-0000-0000-0000-000000000001', 't', 'running', 'a', \
                 now() - interval '2 hours', 60);
             ANALYZE sessions;",
        )
        .unwrap();
        let (stopped, before, after) = conn
            .transaction(|conn| {
                let before = read(conn);
                let stopped = EndOverdueSessions {
                    limit: 100,
                    command_timeout: std::time::Duration::from_secs(30),
                }
                .run(conn)
                .unwrap();
                diesel::QueryResult::Ok((stopped, before, read(conn)))
            })
            .unwrap();
        assert_eq!(stopped.len(), 1, "the one live session past its lifetime");
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 0));
    }

    #[test]
    fn limits_read_as_words() {
        assert_eq!(duration_words(1), "1 second");
        assert_eq!(duration_words(90), "90 seconds");
        assert_eq!(duration_words(120), "2 minutes");
        assert_eq!(duration_words(3600), "1 hour");
        assert_eq!(duration_words(8 * 3600), "8 hours");
    }
}
