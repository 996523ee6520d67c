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
