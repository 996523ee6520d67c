//! Tables analysed as soon as they have grown, not at autovacuum's next pass.
//!
//! Postgres keeps the plans of its foreign-key checks, of the triggers' statements and of our
//! prepared statements, made with the table's statistics of the moment, until the table is
//! next analysed. Made while `agents` held eight rows, a key lookup is a scan of the whole
//! table (cheaper than the index at that size), and stays one when thousands of agents have
//! been registered since: every session insert then scanned the fleet for its foreign-key
//! check, until autovacuum came by (a minute by default, or never, if it is off). A table
//! whose size has doubled since its statistics were taken is analysed at once instead, which
//! has Postgres plan those statements again.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{Query, StoreError};

/// The tables whose keys other rows point to, with the statements that look them up by key:
/// the foreign-key checks of every session, command and share, and the session count's
/// trigger (`agents`).
const WATCHED: [&str; 5] = ["agents", "sessions", "users", "templates", "homes"];

/// Smaller than this, in pages, a table is cheap to scan whatever the plan.
const SMALL_PAGES: i64 = 8;

#[derive(QueryableByName)]
struct Grown {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    pages: i64,
}

/// Analyses each watched table at least twice as large as when its statistics were taken
/// (and larger than [`SMALL_PAGES`]); the names of those analysed (or left to whoever was
/// analysing one at that moment).
pub struct AnalyseGrownTables;

impl Query for AnalyseGrownTables {
    type Output = Vec<String>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<String>, StoreError> {
        // Its size now, against `relpages` as the last ANALYZE (or VACUUM) left it. Each
        // name is found as `ANALYZE` below finds it (the search path), whatever the schema.
        let grown: Vec<Grown> = diesel::sql_query(
            "SELECT relname::text AS name, \
                 pg_relation_size(oid) / current_setting('block_size')::bigint AS pages \
             FROM pg_class \
             WHERE oid IN (SELECT to_regclass(t) FROM unnest($1::text[]) AS t) \
               AND pg_relation_size(oid) / current_setting('block_size')::bigint \
                   > GREATEST(2 * relpages::bigint, $2)",
        )
        .bind::<diesel::sql_types::Array<Text>, _>(&WATCHED[..])
        .bind::<BigInt, _>(SMALL_PAGES)
        .load(conn)?;
        let mut analysed = Vec::with_capacity(grown.len());
        for table in grown {
            // The name is one of ours (`WATCHED`), never text from elsewhere. SKIP_LOCKED: a
            // table another replica or autovacuum is analysing right now is left to them.
            let Some(name) = WATCHED.iter().find(|w| **w == table.name) else {
                continue;
            };
            diesel::sql_query(format!("ANALYZE (SKIP_LOCKED) {name}")).execute(conn)?;
            log::debug!("analysed {name}: {} pages", table.pages);
            analysed.push((*name).to_owned());
        }
        Ok(analysed)
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;

    #[derive(QueryableByName)]
    struct Pages {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        relpages: i32,
    }

    fn relpages(conn: &mut PgConnection) -> i32 {
        diesel::sql_query("SELECT relpages FROM pg_class WHERE relname = 'agents'")
            .get_result::<Pages>(conn)
            .unwrap()
            .relpages
    }

    #[test]
    fn a_watched_table_is_analysed_once_it_has_doubled_and_not_again_until_it_doubles_again() {
        let (_db, mut conn) = crate::store::migrated_database();
        let agents = |conn: &mut PgConnection, from: i32, to: i32| {
            conn.batch_execute(&format!(
                "INSERT INTO agents (agent_id, platform) \
                 SELECT 'a-' || i, 'local' FROM generate_series({from}, {to}) AS i"
            ))
            .unwrap();
        };
        // Small: left to autovacuum whatever its growth.
        agents(&mut conn, 1, 20);
        conn.batch_execute("ANALYZE agents").unwrap();
        agents(&mut conn, 21, 100);
        assert!(AnalyseGrownTables.run(&mut conn).unwrap().is_empty());
        // Thousands since: analysed (its statistics now count them), then left alone.
        agents(&mut conn, 101, 5000);
        assert_eq!(AnalyseGrownTables.run(&mut conn).unwrap(), ["agents"]);
        let analysed = relpages(&mut conn);
        assert!(analysed > 2 * SMALL_PAGES as i32, "{analysed} pages");
        assert!(AnalyseGrownTables.run(&mut conn).unwrap().is_empty());
        // A tenth more is not a doubling.
        agents(&mut conn, 5001, 5500);
        assert!(AnalyseGrownTables.run(&mut conn).unwrap().is_empty());
        assert_eq!(relpages(&mut conn), analysed);
    }
}
