//! The Postgres store: the only module that speaks SQL.
//!
//! Each query is a struct implementing [`Query`], defined next to its table. The [`Store`]
//! actor runs on a `SyncArbiter` (diesel is blocking) and executes whatever query it is sent;
//! callers use a [`StoreHandle`] and never see a connection.

/// Keyset paging newest first: narrows the boxed `$query` to rows before the cursor row
/// `$before` in `($key, $id)` order, or makes the caller return an empty page when that row is
/// gone. (A macro: each table's columns are their own types.)
macro_rules! page_before {
    ($conn:expr, $query:ident, $before:expr, $table:ident, $key:ident) => {
        if let Some(before) = $before {
            let at: Option<chrono::DateTime<chrono::Utc>> = $table::table
                .find(before)
                .select($table::$key)
                .first($conn)
                .optional()?;
            let Some(at) = at else {
                return Ok(Vec::new());
            };
            $query = $query.filter(
                $table::$key
                    .lt(at)
                    .or($table::$key.eq(at).and($table::id.lt(before))),
            );
        }
    };
}

pub mod agents;
pub mod audit;
mod command_rows;
pub mod commands;
pub mod create_session;
pub mod credentials;
mod error;
pub mod grown_tables;
pub mod hibernation;
pub mod homes;
pub mod migrations;
mod pick_agent;
pub mod pool;
mod prepared;
pub mod recordings;
pub mod replicas;
pub mod reply_batch;
pub mod retention;
pub mod schema;
pub mod session_limits;
pub mod sessions;
pub mod shares;
pub mod stats;
pub mod templates;
pub mod users;

use std::time::Duration;

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};
use diesel::PgConnection;
use diesel::r2d2::Pool;

pub use error::StoreError;

/// Connection pool shared by the store's worker threads.
pub type PgPool = Pool<pool::Manager>;

/// Longest any one statement may run; the database cancels it after that.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a caller waits for a store call (queueing, a connection, the statements).
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// Builds the pool after one direct connection attempt, so a bad `DATABASE_URL` is reported
/// at once in one line instead of as the pool's retries.
pub fn connect(database_url: &str, size: u32) -> Result<PgPool, String> {
    use diesel::Connection;
    PgConnection::establish(database_url).map_err(|e| e.to_string().trim().replace('\n', " "))?;
    Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(5))
        .connection_customizer(Box::new(pool::StatementTimeout))
        .build(pool::Manager::new(database_url))
        .map_err(|e| e.to_string())
}

/// A unit of database work: one or more statements, usually one transaction.
pub trait Query: Send + 'static {
    /// What it returns.
    type Output: Send + 'static;
    /// Runs it on a connection from the pool.
    fn run(self, conn: &mut PgConnection) -> Result<Self::Output, StoreError>;
}

/// The store actor: one per worker thread, all sharing the pool.
pub struct Store {
    pool: PgPool,
}

impl Actor for Store {
    type Context = SyncContext<Self>;
}

/// Envelope that lets the store run any [`Query`].
pub struct Run<Q: Query>(pub Q);

impl<Q: Query> Message for Run<Q> {
    type Result = Result<Q::Output, StoreError>;
}

impl<Q: Query> Handler<Run<Q>> for Store {
    type Result = Result<Q::Output, StoreError>;

    fn handle(&mut self, Run(query): Run<Q>, _: &mut SyncContext<Self>) -> Self::Result {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let result = query.run(&mut conn.pg);
        if result.is_err() {
            conn.mark_suspect();
        }
        result
    }
}

/// Cheap, cloneable access to the store.
#[derive(Clone)]
pub struct StoreHandle {
    addr: Addr<Store>,
}

impl StoreHandle {
    /// Starts `threads` store actors over `pool`. Must run inside an actix system.
    pub fn start(pool: PgPool, threads: usize) -> Self {
        let addr = SyncArbiter::start(threads, move || Store { pool: pool.clone() });
        StoreHandle { addr }
    }

    /// Runs a query and waits for its result, at most [`CALL_DEADLINE`].
    pub async fn run<Q: Query>(&self, query: Q) -> Result<Q::Output, StoreError> {
        match tokio::time::timeout(CALL_DEADLINE, self.addr.send(Run(query))).await {
            Ok(answer) => answer.map_err(|e| StoreError::Unavailable(e.to_string()))?,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} s",
                CALL_DEADLINE.as_secs()
            ))),
        }
    }

    /// Runs a query without waiting (audit records, timestamps); failures are logged.
    pub fn spawn<Q: Query>(&self, query: Q) {
        let addr = self.addr.clone();
        actix::spawn(async move {
            match addr.send(Run(query)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("store: background query failed: {e}"),
                Err(e) => log::warn!("store: unavailable: {e}"),
            }
        });
    }
}

/// A fresh database with every migration applied, and a connection to it (store tests).
#[cfg(test)]
pub(crate) fn migrated_database() -> (streamspace_testkit::TestDatabase, PgConnection) {
    let db = streamspace_testkit::TestDatabase::create();
    let mut conn = db.connect();
    migrations::run_pending(&mut conn).unwrap();
    (db, conn)
}
