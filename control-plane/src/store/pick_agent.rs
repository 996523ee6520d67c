//! The agent a new session goes to, read off the `idx_agents_placement` index: the policy of
//! [`crate::placement::choose`] (least loaded by fraction, then fewest sessions, then name),
//! without reading or locking any agent but the one chosen. Each agent row carries its
//! active-session count, kept by a trigger on `sessions`, so the cost does not grow with the
//! fleet or the number of sessions.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};

use super::StoreError;
use super::prepared::Prepare;
use crate::placement::{Candidate, Request};

/// The best suitable agent not held by another placement, locked: the function of migration
/// `000018_placement_function`, the same query as [`PICK`] planned without sorts, so that a
/// statement calling it can be prepared (its kept plan walks the index at any fleet size).
pub(super) const PICK_SKIPPING_LOCKED: &str =
    "SELECT * FROM streamspace_pick_agent($1::text, $2::text[], $3::text, $4::text)";

/// Online, with room, suiting the request; in the order of the partial index
/// `idx_agents_placement`, so the first row found is the answer.
const PICK: &str = "SELECT agent_id, platform, region, max_sessions, active_sessions FROM agents \
     WHERE status = 'online' AND active_sessions < max_sessions \
       AND ($1::text IS NULL OR platform = $1) \
       AND (cardinality($2::text[]) = 0 OR platform = ANY($2)) \
       AND ($3::text IS NULL OR region = $3) \
       AND ($4::text IS NULL OR agent_id = $4) \
     ORDER BY load, active_sessions, agent_id LIMIT 1";

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    agent_id: String,
    #[diesel(sql_type = Text)]
    platform: String,
    #[diesel(sql_type = Nullable<Text>)]
    region: Option<String>,
    #[diesel(sql_type = BigInt)]
    max_sessions: i64,
    #[diesel(sql_type = Integer)]
    active_sessions: i32,
}

/// How the row found is locked.
#[derive(Clone, Copy)]
enum Lock {
    /// Not at all (a look).
    None,
    /// Passing over rows other transactions hold.
    SkipLocked,
    /// Waiting for the row.
    Wait,
}

fn first(
    conn: &mut PgConnection,
    request: &Request<'_>,
    agent: Option<&str>,
    lock: Lock,
) -> Result<Option<Candidate>, diesel::result::Error> {
    let query = match lock {
        // The common case, prepared (see `PICK_SKIPPING_LOCKED`).
        Lock::SkipLocked => diesel::sql_query(PICK_SKIPPING_LOCKED),
        // Planned at each call, not prepared: a plan Postgres would keep could date from a
        // fleet of eight (a sequential scan and sort), and stay in use with ten thousand
        // agents until the table is next analysed (13.6 ms a placement instead of 2.3 ms,
        // seen in a benchmark).
        Lock::None => diesel::sql_query(PICK),
        Lock::Wait => diesel::sql_query(format!("{PICK} FOR NO KEY UPDATE")),
    };
    let query = query
        .bind::<Nullable<Text>, _>(request.platform)
        .bind::<Array<Text>, _>(request.platforms)
        .bind::<Nullable<Text>, _>(request.region)
        .bind::<Nullable<Text>, _>(agent);
    let row: Option<Row> = match lock {
        Lock::SkipLocked => query.prepared().get_result(conn),
        Lock::None | Lock::Wait => query.get_result(conn),
    }
    .optional()?;
    Ok(row.map(|row| Candidate {
        agent_id: row.agent_id,
        platform: row.platform,
        region: row.region,
        max_sessions: u32::try_from(row.max_sessions).unwrap_or(u32::MAX),
        active: u32::try_from(row.active_sessions).unwrap_or(0),
    }))
}

/// The least-loaded online agent with room that suits `request` (and is `only`, if given),
/// its row locked until the transaction ends so its count cannot move meanwhile. Concurrent
/// placements pass over each other's locked rows to the next agent.
pub(super) fn pick(
    conn: &mut PgConnection,
    request: &Request<'_>,
    only: Option<&str>,
) -> Result<Option<Candidate>, StoreError> {
    if let Some(agent) = first(conn, request, only, Lock::SkipLocked)? {
        return Ok(Some(agent));
    }
    // Every suitable agent is held by another placement, or there is none: wait for the
    // best one alone. Should it have filled up meanwhile, its lock is let go (the savepoint
    // is rolled back) before looking again, so no placement ever waits while holding a row
    // another one waits for.
    loop {
        let Some(best) = first(conn, request, only, Lock::None)? else {
            return Ok(None);
        };
        let locked = conn.transaction(|conn| {
            first(conn, request, Some(&best.agent_id), Lock::Wait)?
                .ok_or(diesel::result::Error::RollbackTransaction)
        });
        match locked {
            Ok(agent) => return Ok(Some(agent)),
            Err(diesel::result::Error::RollbackTransaction) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::Uuid as SqlUuid;
    use proptest::prelude::*;
    use streamspace_testkit::TestDatabase;

    use super::*;
    use crate::model::SessionState;
    use crate::placement::choose;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = Integer)]
        active_sessions: i32,
    }

    fn counted(conn: &mut PgConnection, agent: &str) -> i32 {
        diesel::sql_query("SELECT active_sessions FROM agents WHERE agent_id = $1")
            .bind::<Text, _>(agent)
            .get_result::<Count>(conn)
            .unwrap()
            .active_sessions
    }

    #[test]
    fn the_count_on_each_agent_follows_every_session_insert_change_move_and_delete() {
        let (_db, mut conn) = crate::store::migrated_database();
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "INSERT INTO users (id, username, password_hash, role) \
             VALUES ('00000000-0000-0000-0000-000000000001', 'u', 'x', 'user');\
             INSERT INTO agents (agent_id, platform) VALUES ('a', 'local'), ('b', 'local')",
        )
        .unwrap();
        let insert = |conn: &mut PgConnection, state: SessionState| -> uuid::Uuid {
            let id = uuid::Uuid::new_v4();
            diesel::sql_query(
                "INSERT INTO sessions (id, owner_id, template_name, state, agent_id) \
                 VALUES ($1, '00000000-0000-0000-0000-000000000001', 't', $2, 'a')",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(state.as_str())
            .execute(conn)
            .unwrap();
            id
        };
        // Every state, inserted: counted exactly when Rust calls it active.
        let mut expected = 0;
        for &state in SessionState::ALL {
            insert(&mut conn, state);
            expected += i32::from(SessionState::ACTIVE.contains(&state));
            assert_eq!(
                counted(&mut conn, "a"),
                expected,
                "after inserting {state:?}"
            );
        }
        // Changes between active states count nothing; ending one counts it out.
        let id = insert(&mut conn, SessionState::Pending);
        expected += 1;
        for (state, delta) in [
            (SessionState::Creating, 0),
            (SessionState::Running, 0),
            (SessionState::Degraded, 0),
            (SessionState::Terminating, 0),
            (SessionState::Terminated, -1),
            (SessionState::Failed, 0),
        ] {
            diesel::sql_query("UPDATE sessions SET state = $2 WHERE id = $1")
                .bind::<SqlUuid, _>(id)
                .bind::<Text, _>(state.as_str())
                .execute(&mut conn)
                .unwrap();
            expected += delta;
            assert_eq!(counted(&mut conn, "a"), expected, "after {state:?}");
        }
        // Moved to another agent, then deleted.
        let moved = insert(&mut conn, SessionState::Running);
        diesel::sql_query("UPDATE sessions SET agent_id = 'b' WHERE id = $1")
            .bind::<SqlUuid, _>(moved)
            .execute(&mut conn)
            .unwrap();
        assert_eq!(counted(&mut conn, "a"), expected);
        assert_eq!(counted(&mut conn, "b"), 1);
        diesel::sql_query("DELETE FROM sessions WHERE id = $1")
            .bind::<SqlUuid, _>(moved)
            .execute(&mut conn)
            .unwrap();
        assert_eq!(counted(&mut conn, "b"), 0);
        // Deleting the agent leaves its sessions without one, and nothing breaks.
        diesel::sql_query("DELETE FROM agents WHERE agent_id = 'a'")
            .execute(&mut conn)
            .unwrap();
    }

    #[derive(Debug, Clone)]
    struct Agent {
        platform: &'static str,
        region: Option<&'static str>,
        online: bool,
        max_sessions: u32,
        active: u32,
    }

    fn agent() -> impl Strategy<Value = Agent> {
        (
            prop::sample::select(vec!["kubernetes", "local", "docker"]),
            prop::sample::select(vec![Some("eu"), Some("us"), None]),
            prop::bool::weighted(0.8),
            0u32..5,
            0u32..6,
        )
            .prop_map(|(platform, region, online, max_sessions, active)| Agent {
                platform,
                region,
                online,
                max_sessions,
                active,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The index-ordered query, in the function and as written here, picks what the
        /// placement policy picks, for any fleet and request.
        #[test]
        fn picking_from_the_index_agrees_with_the_placement_policy(
            fleet in prop::collection::vec(agent(), 0..10),
            platform in prop::sample::select(vec![None, Some("kubernetes"), Some("local")]),
            region in prop::sample::select(vec![None, Some("eu"), Some("us")]),
            platforms in prop::sample::select(vec![vec![], vec!["docker".to_owned()], vec!["local".to_owned(), "kubernetes".to_owned()]]),
            only in prop::option::of(0usize..10),
        ) {
            thread_local! {
                static DB: std::cell::RefCell<Option<(TestDatabase, PgConnection)>> = const { std::cell::RefCell::new(None) };
            }
            DB.with(|db| {
                let mut db = db.borrow_mut();
                let (_, conn) = db.get_or_insert_with(crate::store::migrated_database);
                diesel::sql_query("DELETE FROM agents").execute(conn).unwrap();
                let mut candidates = Vec::new();
                for (i, a) in fleet.iter().enumerate() {
                    let agent_id = format!("agent-{i}");
                    diesel::sql_query(
                        "INSERT INTO agents (agent_id, platform, region, status, max_sessions, active_sessions) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind::<Text, _>(&agent_id)
                    .bind::<Text, _>(a.platform)
                    .bind::<Nullable<Text>, _>(a.region)
                    .bind::<Text, _>(if a.online { "online" } else { "offline" })
                    .bind::<BigInt, _>(i64::from(a.max_sessions))
                    .bind::<Integer, _>(a.active as i32)
                    .execute(conn)
                    .unwrap();
                    if a.online {
                        candidates.push(Candidate {
                            agent_id,
                            platform: a.platform.into(),
                            region: a.region.map(Into::into),
                            max_sessions: a.max_sessions,
                            active: a.active,
                        });
                    }
                }
                let request = Request { platform, region, platforms: &platforms };
                let only = only.map(|i| format!("agent-{i}"));
                let eligible: Vec<Candidate> = candidates
                    .iter()
                    .filter(|c| only.as_ref().is_none_or(|o| *o == c.agent_id))
                    .cloned()
                    .collect();
                let expected = choose(&eligible, &request).map(|c| c.agent_id.clone());
                let picked = conn
                    .transaction(|conn| pick(conn, &request, only.as_deref()))
                    .unwrap()
                    .map(|c| c.agent_id);
                prop_assert_eq!(&picked, &expected);
                // The unlocked look (the function's query as written here) agrees too.
                let looked = first(conn, &request, only.as_deref(), Lock::None)
                    .unwrap()
                    .map(|c| c.agent_id);
                prop_assert_eq!(looked, expected);
                Ok(())
            })?;
        }
    }
}
