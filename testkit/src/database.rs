use diesel::{Connection, PgConnection, RunQueryDsl};
use uuid::Uuid;

/// A fresh, empty database on the Postgres server named by `DATABASE_URL`, dropped again when
/// this value is dropped. One per test, so tests run in parallel without seeing each other.
///
/// `scripts/test` starts a throwaway server and sets `DATABASE_URL`; tests never touch a
/// database they did not create.
#[derive(Clone)]
pub struct TestDatabase {
    server_url: String,
    name: String,
    url: String,
    // Dropped with the last clone (control-plane replicas share one database).
    _dropped_last: std::sync::Arc<DropDatabase>,
}

/// Drops the database when the last [`TestDatabase`] clone goes.
struct DropDatabase {
    server_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates the database. Panics with instructions when no server is configured.
    pub fn create() -> Self {
        let server_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
            panic!(
                "DATABASE_URL is not set: run the tests with scripts/test, which starts Postgres"
            )
        });
        let name = format!("test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&server_url)
            .unwrap_or_else(|e| panic!("cannot reach Postgres at DATABASE_URL: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE template0"))
            .execute(&mut admin)
            .expect("create test database");
        let url = replace_database(&server_url, &name);
        TestDatabase {
            _dropped_last: std::sync::Arc::new(DropDatabase {
                server_url: server_url.clone(),
                name: name.clone(),
            }),
            server_url,
            name,
            url,
        }
    }

    /// Connection URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new connection to this test's database.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to test database")
    }

    /// An outage of this database alone (the server is shared by parallel tests): new
    /// connections are refused and every open one is cut, until [`Self::restore`].
    pub fn take_down(&self) {
        self.allow_connections(false);
        self.admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        ));
    }

    /// Ends an outage begun by [`Self::take_down`].
    pub fn restore(&self) {
        self.allow_connections(true);
    }

    fn allow_connections(&self, allowed: bool) {
        self.admin(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {allowed}",
            self.name
        ));
    }

    /// Runs `sql` on the server's administrative database.
    fn admin(&self, sql: &str) {
        let mut admin = PgConnection::establish(&self.server_url).expect("reach the server");
        diesel::sql_query(sql)
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        // Best effort: the whole server is thrown away at the end of the run anyway.
        if let Ok(mut admin) = PgConnection::establish(&self.server_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// Swaps the database name in a `postgres://…/name?params` URL.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn replaces_or_adds_the_database_name() {
        assert_eq!(
            replace_database("postgres://u@h:5/postgres?host=/tmp", "t1"),
            "postgres://u@h:5/t1?host=/tmp"
        );
        assert_eq!(
            replace_database("postgres://u@h:5", "t1"),
            "postgres://u@h:5/t1"
        );
    }
}
