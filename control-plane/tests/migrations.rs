//! Migrations against a real Postgres: up, down, up again, and the indexes the seed names.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::MigrationHarness;
use streamspace_control_plane::store::migrations::{MIGRATIONS, run_pending};
use streamspace_testkit::TestDatabase;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn names(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    let mut names: Vec<String> = diesel::sql_query(sql)
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    names.sort();
    names
}

fn tables(conn: &mut PgConnection) -> Vec<String> {
    names(
        conn,
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' \
         AND tablename <> '__diesel_schema_migrations'",
    )
}

const TABLES: [&str; 10] = [
    "agent_commands",
    "agent_credentials",
    "agents",
    "audit_log",
    "homes",
    "replicas",
    "sessions",
    "spent_viewer_tokens",
    "templates",
    "users",
];

#[test]
fn migrations_run_up_down_and_up_again() {
    let db = TestDatabase::create();
    let mut conn = db.connect();

    let applied = run_pending(&mut conn).unwrap();
    assert_eq!(applied, 12);
    assert_eq!(tables(&mut conn), TABLES);

    conn.revert_all_migrations(MIGRATIONS).unwrap();
    assert!(tables(&mut conn).is_empty(), "down.sql left tables behind");
    let functions = names(
        &mut conn,
        "SELECT proname AS name FROM pg_proc WHERE proname LIKE 'streamspace_%'",
    );
    assert!(
        functions.is_empty(),
        "down.sql left functions behind: {functions:?}"
    );

    assert_eq!(run_pending(&mut conn).unwrap(), 12);
    assert_eq!(tables(&mut conn), TABLES);
    assert_eq!(
        run_pending(&mut conn).unwrap(),
        0,
        "a second run must be a no-op"
    );
}

#[test]
fn the_seed_indexes_exist() {
    let db = TestDatabase::create();
    let mut conn = db.connect();
    run_pending(&mut conn).unwrap();
    let indexes = names(
        &mut conn,
        "SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'",
    );
    for index in [
        "idx_agents_status",
        "idx_agents_platform",
        "idx_agent_commands_agent_id",
        "idx_agent_commands_status",
        "idx_sessions_agent_id",
        "idx_sessions_platform",
    ] {
        assert!(indexes.iter().any(|i| i == index), "missing {index}");
    }
}

#[test]
fn deleting_an_agent_cascades_to_commands_and_detaches_sessions() {
    let db = TestDatabase::create();
    let mut conn = db.connect();
    run_pending(&mut conn).unwrap();
    conn.batch_execute(
        "INSERT INTO users (id, username, password_hash) \
             VALUES ('00000000-0000-0000-0000-000000000001', 'alice', 'x');
         INSERT INTO agents (agent_id, platform) VALUES ('a1', 'local');
         INSERT INTO sessions (id, owner_id, template_name, agent_id) \
             VALUES ('00000000-0000-0000-0000-0000000000aa', \
                     '00000000-0000-0000-0000-000000000001', 'xterm', 'a1');
         INSERT INTO agent_commands (command_id, agent_id, command_type, payload, timeout_at) \
             VALUES (gen_random_uuid(), 'a1', 'list_sessions', '{}', now());
         DELETE FROM agents WHERE agent_id = 'a1';",
    )
    .unwrap();
    let commands = names(&mut conn, "SELECT command_type AS name FROM agent_commands");
    assert!(commands.is_empty());
    let orphans = names(
        &mut conn,
        "SELECT template_name AS name FROM sessions WHERE agent_id IS NULL",
    );
    assert_eq!(orphans, ["xterm"]);
}

#[test]
fn state_columns_refuse_unknown_values() {
    let db = TestDatabase::create();
    let mut conn = db.connect();
    run_pending(&mut conn).unwrap();
    let err = diesel::sql_query(
        "INSERT INTO agents (agent_id, platform, status) VALUES ('a', 'local', 'sleepy')",
    )
    .execute(&mut conn)
    .unwrap_err();
    assert!(err.to_string().contains("agents_status_check"), "{err}");
}
