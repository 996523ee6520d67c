//! The connection pool, and when a pooled connection is tested before it is handed out.
//!
//! r2d2 tests every checkout with a `SELECT 1`: a round trip per store call, a quarter of all
//! statements on the command path. Like HikariCP's `aliveBypassWindowMs`, a connection given
//! back moments ago by a call that succeeded is handed out untested; one idle for longer, or
//! whose last call failed (the database may have gone away under it), is tested first.

use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Error, ManageConnection};

use super::STATEMENT_TIMEOUT;

/// How long after a successful call a connection is trusted without a test.
pub const TRUSTED_FOR: Duration = Duration::from_millis(500);

/// A pooled connection, with what its tests need to know.
pub struct Conn {
    /// The connection.
    pub pg: PgConnection,
    trust: Trust,
}

impl Conn {
    /// Its last call failed: test it before it is handed out again.
    pub fn mark_suspect(&mut self) {
        self.trust.suspect = true;
    }
}

/// What decides whether a connection is tested at checkout.
#[derive(Debug, Clone, Copy)]
struct Trust {
    /// When it was last given back to the pool.
    returned_at: Instant,
    /// Its last call failed.
    suspect: bool,
}

impl Trust {
    fn fresh() -> Self {
        Trust {
            returned_at: Instant::now(),
            suspect: false,
        }
    }

    fn trusted(self) -> bool {
        !self.suspect && self.returned_at.elapsed() < TRUSTED_FOR
    }
}

/// [`ConnectionManager`] that skips the checkout test of a [`Conn::trusted`] connection.
#[derive(Debug)]
pub struct Manager(ConnectionManager<PgConnection>);

impl Manager {
    /// Connections to `database_url`.
    pub fn new(database_url: &str) -> Self {
        Manager(ConnectionManager::new(database_url))
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = Error;

    fn connect(&self) -> Result<Conn, Error> {
        Ok(Conn {
            pg: self.0.connect()?,
            // Just made: nothing to test.
            trust: Trust::fresh(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), Error> {
        if conn.trust.trusted() {
            return Ok(());
        }
        self.0.is_valid(&mut conn.pg)?;
        conn.trust.suspect = false;
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.trust.returned_at = Instant::now();
        self.0.has_broken(&mut conn.pg)
    }
}

/// Every pooled connection gets the statement timeout, so a lock or a slow scan can never
/// hold a store thread (and the requests queued behind it) for longer.
#[derive(Debug)]
pub struct StatementTimeout;

impl CustomizeConnection<Conn, Error> for StatementTimeout {
    fn on_acquire(&self, conn: &mut Conn) -> Result<(), Error> {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!(
            "SET statement_timeout = {}",
            STATEMENT_TIMEOUT.as_millis()
        ))
        .execute(&mut conn.pg)
        .map(|_| ())
        .map_err(Error::QueryError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_connection_just_given_back_by_a_successful_call_goes_untested() {
        assert!(Trust::fresh().trusted());
        let failed = Trust {
            suspect: true,
            ..Trust::fresh()
        };
        assert!(!failed.trusted(), "after a failure");
        let idle = Trust {
            returned_at: Instant::now() - TRUSTED_FOR,
            suspect: false,
        };
        assert!(!idle.trusted(), "idle for the whole window");
    }
}
