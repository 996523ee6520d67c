//! Retention: finished commands, audit entries, ended sessions and recordings older than their cutoff,
//! expired spent viewer tokens, and viewer rows that count no one (a departure recorded
//! before its arrival, or left by a replica that is gone), are deleted in bounded batches, so no table grows forever and no delete holds locks for long.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{
    agent_commands, audit_log, recordings, replicas, session_viewers, sessions, spent_viewer_tokens,
};
use super::{Query, StoreError};
use crate::model::{CommandStatus, SessionState};

/// One batch of pruning.
pub struct Prune {
    /// Finished commands that finished (or were created, if never) before this go.
    pub commands_before: DateTime<Utc>,
    /// Audit entries recorded before this go.
    pub audit_before: DateTime<Utc>,
    /// Terminated, failed or lost sessions last changed before this go.
    pub sessions_before: DateTime<Utc>,
    /// Recordings that ended (or, never ended, began) before this go; their files are the
    /// caller's to delete.
    pub recordings_before: DateTime<Utc>,
    /// Most rows deleted from each table in this batch.
    pub batch: i64,
}

/// How many rows a batch deleted, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Commands.
    pub commands: usize,
    /// Audit entries.
    pub audit: usize,
    /// Sessions.
    pub sessions: usize,
    /// Spent viewer tokens past their expiry (no longer needed to refuse a replay).
    pub viewer_tokens: usize,
    /// Viewer rows that count no one.
    pub viewers: usize,
    /// The files of the recordings deleted (relative to `RECORDING_DIR`), to delete too.
    pub recording_files: Vec<String>,
}

impl Pruned {
    /// Whether any table had a full batch (so there may be more to do).
    pub fn full(&self, batch: i64) -> bool {
        let batch = usize::try_from(batch).unwrap_or(usize::MAX);
        self.commands >= batch
            || self.audit >= batch
            || self.sessions >= batch
            || self.viewer_tokens >= batch
            || self.viewers >= batch
            || self.recording_files.len() >= batch
    }
}

impl Query for Prune {
    type Output = Pruned;
    fn run(self, conn: &mut PgConnection) -> Result<Pruned, StoreError> {
        conn.transaction(|conn| self.batch_in(conn))
    }
}

impl Prune {
    fn batch_in(&self, conn: &mut PgConnection) -> Result<Pruned, StoreError> {
        let unfinished: Vec<&str> = CommandStatus::UNFINISHED
            .iter()
            .map(|s| s.as_str())
            .collect();
        let old_commands = agent_commands::table
            .filter(agent_commands::status.ne_all(unfinished))
            .filter(
                agent_commands::completed_at.lt(self.commands_before).or(
                    agent_commands::completed_at
                        .is_null()
                        .and(agent_commands::created_at.lt(self.commands_before)),
                ),
            )
            .select(agent_commands::id)
            .limit(self.batch)
            .load::<uuid::Uuid>(conn)?;
        let commands =
            diesel::delete(agent_commands::table.filter(agent_commands::id.eq_any(old_commands)))
                .execute(conn)?;
        let old_audit = audit_log::table
            .filter(audit_log::at.lt(self.audit_before))
            .select(audit_log::id)
            .limit(self.batch)
            .load::<i64>(conn)?;
        let audit = diesel::delete(audit_log::table.filter(audit_log::id.eq_any(old_audit)))
            .execute(conn)?;
        let ended: Vec<&str> = [
            SessionState::Terminated,
            SessionState::Failed,
            SessionState::Lost,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        let old_sessions = sessions::table
            .filter(sessions::state.eq_any(ended))
            .filter(sessions::updated_at.lt(self.sessions_before))
            .select(sessions::id)
            .limit(self.batch)
            .load::<uuid::Uuid>(conn)?;
        // Their commands keep their history (the reference is set to NULL).
        let sessions = diesel::delete(sessions::table.filter(sessions::id.eq_any(old_sessions)))
            .execute(conn)?;
        let expired = spent_viewer_tokens::table
            .filter(spent_viewer_tokens::expires_at.lt(diesel::dsl::now))
            .select(spent_viewer_tokens::jti)
            .limit(self.batch)
            .load::<uuid::Uuid>(conn)?;
        let viewer_tokens = diesel::delete(
            spent_viewer_tokens::table.filter(spent_viewer_tokens::jti.eq_any(expired)),
        )
        .execute(conn)?;
        let replica_ids = replicas::table.select(replicas::id);
        let void = session_viewers::table
            .filter(
                session_viewers::left_at
                    .is_not_null()
                    .or(session_viewers::replica_id.ne_all(replica_ids)),
            )
            .select(session_viewers::id)
            .limit(self.batch)
            .load::<uuid::Uuid>(conn)?;
        let viewers =
            diesel::delete(session_viewers::table.filter(session_viewers::id.eq_any(void)))
                .execute(conn)?;
        let old_recordings = recordings::table
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
                    "COALESCE(ended_at, started_at)",
                )
                .lt(self.recordings_before),
            )
            .select(recordings::id)
            .limit(self.batch)
            .load::<uuid::Uuid>(conn)?;
        let recording_files =
            diesel::delete(recordings::table.filter(recordings::id.eq_any(old_recordings)))
                .returning(recordings::file)
                .get_results(conn)?;
        Ok(Pruned {
            commands,
            audit,
            sessions,
            viewer_tokens,
            viewers,
            recording_files,
        })
    }
}
