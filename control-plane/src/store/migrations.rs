use diesel::PgConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Every migration in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Error type of the migration harness (it boxes whatever went wrong).
pub type MigrationError = Box<dyn std::error::Error + Send + Sync>;

/// Applies the migrations this database has not seen yet; returns how many ran.
pub fn run_pending(conn: &mut PgConnection) -> Result<usize, MigrationError> {
    Ok(conn.run_pending_migrations(MIGRATIONS)?.len())
}

/// Key of the advisory lock migrations run under.
const MIGRATION_LOCK: i64 = 0x5354_5245_414d; // "STREAM"

/// [`run_pending`] under a database-wide lock, so replicas starting together do not race:
/// the first applies them, the others then find nothing pending.
pub fn run_pending_exclusively(conn: &mut PgConnection) -> Result<usize, MigrationError> {
    use diesel::RunQueryDsl;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(conn)?;
    let applied = run_pending(conn);
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(conn)?;
    applied
}
