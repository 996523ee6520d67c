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

/// The migrations in `migrations/`.
const MIGRATION_COUNT: usize = 19;

const TABLES: [&str; 13] = [
    "agent_commands",
    "agent_credentials",
    "agents",
    "audit_log",
    "homes",
    "recordings",
    "replicas",
    "session_shares",
    "session_viewers",
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
    assert_eq!(applied, MIGRATION_COUNT);
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

    assert_eq!(run_pending(&mut conn).unwrap(), MIGRATION_COUNT);
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
        "idx_sessions_agent_id",
        "idx_sessions_platform",
    ] {
        assert!(indexes.iter().any(|i| i == index), "missing {index}");
    }
}

#[derive(QueryableByName)]
struct Updates {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    all: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    hot: i64,
}

/// A session's moves while it lives write no index entry (heap-only updates): no index may
/// cover the state or the other columns a move sets. Its end, which stamps `terminated_at`
/// once, does (the limit sweep's index holds live sessions only).
#[test]
fn a_session_state_change_is_a_heap_only_update_until_its_end() {
    let db = TestDatabase::create();
    let mut conn = db.connect();
    run_pending(&mut conn).unwrap();
    conn.batch_execute(
        "INSERT INTO users (id, username, password_hash) \
             VALUES ('00000000-0000-0000-0000-000000000001', 'alice', 'x');
         INSERT INTO agents (agent_id, platform) VALUES ('a1', 'local');
         INSERT INTO sessions (id, owner_id, template_name, agent_id) \
             VALUES ('00000000-0000-0000-0000-0000000000aa', \
                     '00000000-0000-0000-0000-000000000001', 'xterm', 'a1');",
    )
    .unwrap();
    for (state, reason) in [
        ("creating", "NULL"),
        ("running", "NULL"),
        ("degraded", "'slow'"),
        ("terminated", "'gone'"),
    ] {
        // As the store writes a move: the end stamped when the state is final.
        conn.batch_execute(&format!(
            "UPDATE sessions SET state = '{state}', state_reason = {reason}, \
                 started_at = COALESCE(started_at, now()), \
                 last_input_at = now(), \
                 terminated_at = CASE WHEN '{state}' = 'terminated' THEN now() \
                     ELSE terminated_at END"
        ))
        .unwrap();
    }
    conn.batch_execute("SELECT pg_stat_force_next_flush()")
        .unwrap();
    let counts: Updates = diesel::sql_query(
        "SELECT n_tup_upd AS all, n_tup_hot_upd AS hot FROM pg_stat_user_tables \
         WHERE relname = 'sessions'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!((counts.all, counts.hot), (4, 3));
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

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    udt: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    nullable: bool,
}

#[derive(QueryableByName)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Text)]
    column: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    to_primary_key: bool,
}

/// Diesel's name for a Postgres column type.
fn diesel_type(udt: &str) -> &'static str {
    match udt {
        "uuid" => "Uuid",
        "text" => "Text",
        "varchar" => "Varchar",
        "int4" => "Int4",
        "int8" => "Int8",
        "bool" => "Bool",
        "float8" => "Float8",
        "jsonb" => "Jsonb",
        "timestamptz" => "Timestamptz",
        other => panic!("no diesel type known here for the column type {other}"),
    }
}

/// What `diesel print-schema` writes for this database (tables and columns in the catalog's
/// order, `joinable!` for single-column foreign keys to a primary key, every table allowed in
/// one query), so the schema check needs no CLI installed from source.
fn print_schema(conn: &mut PgConnection) -> String {
    let tables = names(
        conn,
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'",
    );
    let mut out = String::from("// @generated automatically by Diesel CLI.\n");
    for table in &tables {
        let key = names(
            conn,
            &format!(
                "SELECT a.attname AS name FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = 'public.{table}'::regclass AND i.indisprimary"
            ),
        );
        let columns: Vec<Column> = diesel::sql_query(
            "SELECT column_name::text AS name, udt_name::text AS udt, is_nullable = 'YES' AS nullable \
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 \
             ORDER BY ordinal_position",
        )
        .bind::<Text, _>(table)
        .load(conn)
        .unwrap();
        out.push_str(&format!(
            "\ndiesel::table! {{\n    {table} ({}) {{\n",
            key.join(", ")
        ));
        for column in columns {
            let kind = diesel_type(&column.udt);
            let kind = if column.nullable {
                format!("Nullable<{kind}>")
            } else {
                kind.to_owned()
            };
            out.push_str(&format!("        {} -> {kind},\n", column.name));
        }
        out.push_str("    }\n}\n");
    }
    let keys: Vec<ForeignKey> = diesel::sql_query(
        "SELECT child.relname::text AS child, parent.relname::text AS parent, \
                a.attname::text AS column, \
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.confrelid AND i.indisprimary \
                        AND i.indnatts = 1 AND i.indkey[0] = c.confkey[1]) AS to_primary_key \
         FROM pg_constraint c \
         JOIN pg_class child ON child.oid = c.conrelid \
         JOIN pg_class parent ON parent.oid = c.confrelid \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 \
         ORDER BY child.relname, parent.relname",
    )
    .load(conn)
    .unwrap();
    let joinable: Vec<&ForeignKey> = keys
        .iter()
        .filter(|k| k.to_primary_key)
        // Diesel leaves out a pair of tables joined by more than one key.
        .filter(|k| {
            keys.iter()
                .filter(|o| o.to_primary_key && o.child == k.child && o.parent == k.parent)
                .count()
                == 1
        })
        .collect();
    if !joinable.is_empty() {
        out.push('\n');
    }
    for key in joinable {
        out.push_str(&format!(
            "diesel::joinable!({} -> {} ({}));\n",
            key.child, key.parent, key.column
        ));
    }
    out.push_str("\ndiesel::allow_tables_to_appear_in_same_query!(\n");
    for table in &tables {
        out.push_str(&format!("    {table},\n"));
    }
    out.push_str(");\n");
    out
}

#[test]
fn schema_rs_is_what_the_migrations_make() {
    let db = TestDatabase::create();
    let mut conn = db.connect();
    run_pending(&mut conn).unwrap();
    let expected = print_schema(&mut conn);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/schema.rs");
    let actual = std::fs::read_to_string(path).unwrap();
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or(actual.lines().count().min(expected.lines().count()));
        panic!(
            "control-plane/src/store/schema.rs is stale from line {}: it says {:?}, the migrations make {:?} \
             (regenerate it with `diesel print-schema`, see diesel.toml, or copy what this test prints)\n{expected}",
            first + 1,
            actual.lines().nth(first),
            expected.lines().nth(first)
        );
    }
}
