//! Raw statements prepared once per connection.
//!
//! diesel never caches a `sql_query` (its text could be anything), so Postgres parses,
//! analyses and plans it on every call: on the command path that was a third of the
//! database's CPU (`perf`, `pg_stat_statements.track_planning`). A statement whose text is
//! one of a fixed few — constants and `format!`s of constants only, never a value — is safe
//! to prepare once per connection and look up by its text, as diesel does for its own
//! queries; Postgres then plans it once, or re-plans only where a custom plan pays.
//!
//! A plan Postgres keeps may date from when a table was tiny, and stays until the table is
//! next analysed: keyed lookups keep their index plans, but a statement whose best plan
//! depends on the table's size is planned at each call instead — an ordered scan for the
//! first match (placement), or a join of a batch's rows with a growing table (recording
//! answers), which a plan made on a small table does by scanning the table whole.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// A raw statement with a fixed text (see the module's note), prepared and cached by it.
#[derive(Debug, Clone)]
pub struct Prepared<Q>(Q);

/// Marks a raw statement as [`Prepared`].
pub trait Prepare: Sized {
    /// This statement, prepared once per connection. Its text must come from constants.
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q: QueryFragment<Pg>> Prepare for Q {}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

// No static id: the cache is keyed by the statement's text and bind types.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Prepared<Q> {}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Integer};
    use streamspace_testkit::TestDatabase;

    use super::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn prepared_statements(conn: &mut PgConnection) -> i64 {
        diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements")
            .get_result::<Count>(conn)
            .unwrap()
            .n
    }

    #[test]
    fn a_prepared_statement_is_prepared_once_per_text_and_binds_each_call_its_values() {
        let db = TestDatabase::create();
        let mut conn = db.connect();
        let before = prepared_statements(&mut conn);
        for (value, text) in [(1, "a"), (2, "a"), (3, "b"), (4, "a")] {
            let sql = format!("SELECT $1::bigint + 1 AS n -- {text}");
            let row: Count = diesel::sql_query(sql)
                .bind::<Integer, _>(value)
                .prepared()
                .get_result(&mut conn)
                .unwrap();
            assert_eq!(row.n, i64::from(value) + 1);
        }
        assert_eq!(prepared_statements(&mut conn) - before, 2, "one per text");
        // A plain raw statement is not prepared.
        diesel::sql_query("SELECT 1").execute(&mut conn).unwrap();
        assert_eq!(prepared_statements(&mut conn) - before, 2);
    }
}
