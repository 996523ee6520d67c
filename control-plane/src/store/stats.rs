//! Counts for `/metrics`, read at scrape time so they are right after a restart.

use diesel::dsl::count_star;
use diesel::prelude::*;

use super::schema::{agent_commands, agents, sessions};
use super::{Query, StoreError};

/// Current counts by state.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Agents by status.
    pub agents: Vec<(String, i64)>,
    /// Sessions by state.
    pub sessions: Vec<(String, i64)>,
    /// Commands by type and status.
    pub commands: Vec<(String, String, i64)>,
}

/// Reads [`Counts`].
pub struct ReadCounts;

impl Query for ReadCounts {
    type Output = Counts;
    fn run(self, conn: &mut PgConnection) -> Result<Counts, StoreError> {
        Ok(Counts {
            agents: agents::table
                .group_by(agents::status)
                .select((agents::status, count_star()))
                .load(conn)?,
            sessions: sessions::table
                .group_by(sessions::state)
                .select((sessions::state, count_star()))
                .load(conn)?,
            commands: agent_commands::table
                .group_by((agent_commands::command_type, agent_commands::status))
                .select((
                    agent_commands::command_type,
                    agent_commands::status,
                    count_star(),
                ))
                .load(conn)?,
        })
    }
}

/// `SELECT 1`, for readiness.
pub struct Ping;

impl Query for Ping {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        diesel::sql_query("SELECT 1").execute(conn)?;
        Ok(())
    }
}
