//! The Postgres store: the only module that speaks SQL.

pub mod migrations;
pub mod schema;

use diesel::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};

/// Connection pool shared by the store's worker threads.
pub type PgPool = Pool<ConnectionManager<PgConnection>>;
/// One connection taken from the pool.
pub type PgPooled = PooledConnection<ConnectionManager<PgConnection>>;

/// Builds the pool after one direct connection attempt, so a bad `DATABASE_URL` is reported
/// at once in one line instead of as the pool's retries.
pub fn connect(database_url: &str, size: u32) -> Result<PgPool, String> {
    use diesel::Connection;
    PgConnection::establish(database_url).map_err(|e| e.to_string().trim().replace('\n', " "))?;
    Pool::builder()
        .max_size(size)
        .connection_timeout(std::time::Duration::from_secs(5))
        .build(ConnectionManager::new(database_url))
        .map_err(|e| e.to_string())
}
