//! A new session: placed on an agent and written with its `create_session` command and its
//! audit entry by one statement, so the command exists before anything is sent, and the
//! common case — an agent free to take it — costs one round trip to the database.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use streamspace_protocol::{Command, ControlMessage, SessionSpec};
use uuid::Uuid;

use super::command_rows::{CommandRow, deadline};
use super::homes::{self, HomePlacement};
use super::pick_agent::{PICK_SKIPPING_LOCKED, pick};
use super::prepared::Prepare;
use super::sessions::Session;
use super::{Query, StoreError};
use crate::placement;

/// Places a new session on an agent and persists it with its `create_session` command, in
/// one transaction: the command exists before anything is sent.
pub struct CreateSession {
    /// What to run (its `session_id` becomes the row's id).
    pub spec: SessionSpec,
    /// Owner.
    pub owner_id: Uuid,
    /// Template row.
    pub template_id: Uuid,
    /// Required platform.
    pub platform: Option<String>,
    /// Required region.
    pub region: Option<String>,
    /// The platforms the template runs on (empty: any).
    pub platforms: Vec<String>,
    /// The template's idle timeout and maximum lifetime, in seconds.
    pub limits: (Option<i32>, Option<i32>),
    /// What the template's idle timeout does.
    pub idle_action: crate::model::IdleAction,
    /// Whether the template records its desktops.
    pub recorded: bool,
    /// Command id for `create_session`.
    pub command_id: Uuid,
    /// `COMMAND_TIMEOUT`.
    pub command_timeout: std::time::Duration,
    /// The caller's `session_create` entry, written in the same transaction (its details get
    /// the template and the agent chosen): one commit for the creation and its record.
    pub audit: super::audit::NewAuditEntry,
}

/// Result of [`CreateSession`].
pub enum Placed {
    /// Persisted; send the command.
    Created {
        /// The session.
        session: Box<Session>,
        /// Its `create_session` command.
        command: Box<CommandRow>,
    },
    /// Nobody can take it; the message names what was asked for.
    NoAgent(String),
    /// The user's home cannot be used now: `(code, message)`; `home_in_use` and
    /// `home_being_deleted` are conflicts, `home_unavailable` a passing outage.
    HomeRefused(&'static str, String),
}

impl Query for CreateSession {
    type Output = Placed;
    fn run(self, conn: &mut PgConnection) -> Result<Placed, StoreError> {
        let request = placement::Request {
            platform: self.platform.as_deref(),
            region: self.region.as_deref(),
            platforms: &self.platforms,
        };
        // Most of the time an agent is free: the statement places and writes at once, on
        // its own (no BEGIN and COMMIT around it).
        if !self.spec.persistent_home
            && let Some(created) = self.write(conn, &request, None, None)?
        {
            return Ok(created);
        }
        // Every suitable agent is held by other placements, or there is none, or the home
        // decides: the agent is chosen and locked first (waiting if it must), then the same
        // statement writes on it, in one transaction.
        conn.transaction(|conn| {
            let no_agent = || Placed::NoAgent(placement::no_agent_message(&request));
            let (agent, home_id) = if self.spec.persistent_home {
                let template = self.spec.template.name.as_str();
                match homes::place(conn, self.owner_id, template, &request)? {
                    HomePlacement::Placed { agent, home_id } => (agent, Some(home_id)),
                    HomePlacement::Refused(code, message) => {
                        return Ok(Placed::HomeRefused(code, message));
                    }
                    HomePlacement::NoAgent => return Ok(no_agent()),
                }
            } else {
                match pick(conn, &request, None)? {
                    Some(agent) => (agent, None),
                    None => return Ok(no_agent()),
                }
            };
            // The agent's row is ours until the commit: it still suits.
            Ok(self
                .write(conn, &request, Some(&agent.agent_id), home_id)?
                .unwrap_or_else(no_agent))
        })
    }
}

/// The session's row, and its command's columns that the database fills in, named apart.
#[derive(QueryableByName)]
struct Written {
    #[diesel(embed)]
    session: Session,
    #[diesel(sql_type = SqlUuid)]
    command_row_id: Uuid,
    #[diesel(sql_type = Text)]
    command_status: String,
    #[diesel(sql_type = Integer)]
    command_attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    command_created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    command_timeout_at: DateTime<Utc>,
}

impl CreateSession {
    /// One statement: the best suitable agent not held by another placement (`agent`: that
    /// one only), the session on it, its command and the audit entry. `None` when no agent
    /// was found.
    fn write(
        &self,
        conn: &mut PgConnection,
        request: &placement::Request<'_>,
        agent: Option<&str>,
        home_id: Option<Uuid>,
    ) -> Result<Option<Placed>, StoreError> {
        let mut spec = self.spec.clone();
        spec.home_id = home_id;
        let command = Command::CreateSession(spec.clone());
        let command_type = command.name();
        let payload = serde_json::to_value(ControlMessage::Command {
            command_id: self.command_id,
            command,
        })
        .unwrap_or_default();
        let timeout_at = deadline(self.command_timeout);
        let audit = &self.audit;
        // Prepared: the placement in it is a function whose plan suits any fleet
        // (`pick_agent.rs`), and the rest are inserts.
        let written: Option<Written> = diesel::sql_query(format!(
            "WITH a AS ({PICK_SKIPPING_LOCKED}), \
             s AS (INSERT INTO sessions (id, owner_id, template_id, template_name, resources, \
                 persistent_home, home_id, agent_id, platform, region, idle_timeout_seconds, \
                 max_lifetime_seconds, recorded, idle_action, spec) \
               SELECT $5, $6, $7, $8, $9, $10, $11, a.agent_id, a.platform, a.region, $12, \
                 $13, $14, $15, $16 FROM a RETURNING *), \
             c AS (INSERT INTO agent_commands (command_id, agent_id, session_id, command_type, \
                 payload, timeout_at) \
               SELECT $17, s.agent_id, s.id, $18, $19, $20 FROM s RETURNING *), \
             l AS (INSERT INTO audit_log (action, actor_user_id, actor_username, \
                 actor_agent_id, target_type, target_id, details, source_ip) \
               SELECT $21, $22, $23, $24, 'session', s.id::text, \
                 jsonb_build_object('template', s.template_name, 'agent_id', s.agent_id), $25 \
               FROM s) \
             SELECT s.*, c.id AS command_row_id, c.status AS command_status, \
               c.attempts AS command_attempts, c.created_at AS command_created_at, \
               c.timeout_at AS command_timeout_at FROM s, c"
        ))
        .bind::<Nullable<Text>, _>(request.platform)
        .bind::<Array<Text>, _>(request.platforms)
        .bind::<Nullable<Text>, _>(request.region)
        .bind::<Nullable<Text>, _>(agent)
        .bind::<SqlUuid, _>(spec.session_id)
        .bind::<SqlUuid, _>(self.owner_id)
        .bind::<SqlUuid, _>(self.template_id)
        .bind::<Text, _>(&spec.template.name)
        .bind::<Jsonb, _>(serde_json::to_value(&spec.resources).unwrap_or_default())
        .bind::<Bool, _>(spec.persistent_home)
        .bind::<Nullable<SqlUuid>, _>(home_id)
        .bind::<Nullable<Integer>, _>(self.limits.0)
        .bind::<Nullable<Integer>, _>(self.limits.1)
        .bind::<Bool, _>(self.recorded)
        .bind::<Text, _>(self.idle_action.as_str())
        // Kept for waking it: the command carrying it is pruned in time.
        .bind::<Nullable<Jsonb>, _>(serde_json::to_value(&spec).ok())
        .bind::<SqlUuid, _>(self.command_id)
        .bind::<Text, _>(command_type)
        .bind::<Jsonb, _>(&payload)
        .bind::<Timestamptz, _>(timeout_at)
        .bind::<Text, _>(&audit.action)
        .bind::<Nullable<SqlUuid>, _>(audit.actor_user_id)
        .bind::<Nullable<Text>, _>(&audit.actor_username)
        .bind::<Nullable<Text>, _>(&audit.actor_agent_id)
        .bind::<Nullable<Text>, _>(&audit.source_ip)
        .prepared()
        .get_result(conn)
        .optional()?;
        Ok(written.map(|w| {
            let command = CommandRow {
                id: w.command_row_id,
                command_id: self.command_id,
                agent_id: w.session.agent_id.clone().unwrap_or_default(),
                session_id: Some(w.session.id),
                command_type: command_type.to_owned(),
                payload,
                status: w.command_status,
                result: None,
                error: None,
                attempts: w.command_attempts,
                created_at: w.command_created_at,
                sent_at: None,
                acked_at: None,
                completed_at: None,
                timeout_at: w.command_timeout_at,
            };
            Placed::Created {
                session: Box::new(w.session),
                command: Box::new(command),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use diesel::connection::SimpleConnection;
    use streamspace_protocol::{Resources, TemplateSpec};

    use super::*;
    use crate::store::audit::NewAuditEntry;
    use crate::store::schema::{agent_commands, audit_log, sessions};

    const OWNER: &str = "00000000-0000-0000-0000-000000000001";
    const TEMPLATE: &str = "00000000-0000-0000-0000-000000000002";

    fn fleet(conn: &mut PgConnection, agents: &str) {
        conn.batch_execute(&format!(
            "INSERT INTO users (id, username, password_hash, role) VALUES ('{OWNER}', 'u', 'x', 'user');\
             INSERT INTO templates (id, name, display_name, image) VALUES ('{TEMPLATE}', 't', 'T', 'img');\
             INSERT INTO agents (agent_id, platform, region, status, max_sessions) VALUES {agents}"
        ))
        .unwrap();
    }

    fn creation(persistent_home: bool) -> CreateSession {
        CreateSession {
            spec: SessionSpec {
                session_id: Uuid::new_v4(),
                user: "u".into(),
                template: TemplateSpec {
                    name: "t".into(),
                    image: "img".into(),
                    vnc_port: 5901,
                    env: Default::default(),
                },
                resources: Resources {
                    cpu: "1".into(),
                    memory: "1Gi".into(),
                },
                persistent_home,
                home_id: None,
            },
            owner_id: OWNER.parse().unwrap(),
            template_id: TEMPLATE.parse().unwrap(),
            platform: None,
            region: None,
            platforms: vec![],
            limits: (Some(60), None),
            idle_action: crate::model::IdleAction::Hibernate,
            recorded: true,
            command_id: Uuid::new_v4(),
            command_timeout: Duration::from_secs(30),
            audit: NewAuditEntry {
                action: "session_create".into(),
                actor_user_id: Some(OWNER.parse().unwrap()),
                actor_username: Some("u".into()),
                source_ip: Some("192.0.2.1".into()),
                ..Default::default()
            },
        }
    }

    /// Runs `create`, and checks that what it answered is what it wrote: the session and the
    /// command as read back, and the audit entry naming both.
    fn created(conn: &mut PgConnection, create: CreateSession) -> (Session, CommandRow) {
        let Placed::Created { session, command } = create.run(conn).unwrap() else {
            panic!("not created");
        };
        let stored_session: Session = sessions::table
            .find(session.id)
            .select(Session::as_select())
            .get_result(conn)
            .unwrap();
        let stored_command: CommandRow = agent_commands::table
            .filter(agent_commands::command_id.eq(command.command_id))
            .select(CommandRow::as_select())
            .get_result(conn)
            .unwrap();
        assert_eq!(format!("{session:?}"), format!("{stored_session:?}"));
        assert_eq!(format!("{command:?}"), format!("{stored_command:?}"));
        let (target, details, ip): (Option<String>, serde_json::Value, Option<String>) =
            audit_log::table
                .filter(audit_log::action.eq("session_create"))
                .select((
                    audit_log::target_id,
                    audit_log::details,
                    audit_log::source_ip,
                ))
                .order(audit_log::id.desc())
                .first(conn)
                .unwrap();
        assert_eq!(target, Some(session.id.to_string()));
        assert_eq!(
            details,
            serde_json::json!({"template": "t", "agent_id": session.agent_id})
        );
        assert_eq!(ip.as_deref(), Some("192.0.2.1"));
        (*session, *command)
    }

    /// The spec kept on the row for waking it.
    fn kept_spec(conn: &mut PgConnection, session: &Session) -> Option<SessionSpec> {
        let spec: Option<serde_json::Value> = sessions::table
            .find(session.id)
            .select(sessions::spec)
            .get_result(conn)
            .unwrap();
        spec.map(|s| serde_json::from_value(s).unwrap())
    }

    #[test]
    fn one_statement_places_on_the_least_loaded_agent_and_answers_what_it_wrote() {
        let (_db, mut conn) = crate::store::migrated_database();
        fleet(
            &mut conn,
            "('a', 'local', 'eu', 'online', 1), ('b', 'docker', 'us', 'online', 4), \
             ('c', 'local', 'eu', 'offline', 9)",
        );
        let create = creation(false);
        let spec = create.spec.clone();
        let (session, command) = created(&mut conn, create);
        // Both empty: the order falls to the name.
        assert_eq!(session.agent_id.as_deref(), Some("a"));
        assert_eq!(
            (session.platform.as_str(), session.region.as_deref()),
            ("local", Some("eu"))
        );
        assert_eq!(
            (session.state.as_str(), session.idle_action.as_str()),
            ("pending", "hibernate")
        );
        assert_eq!(session.idle_timeout_seconds, Some(60));
        assert!(session.recorded && !session.persistent_home);
        assert_eq!(kept_spec(&mut conn, &session), Some(spec.clone()));
        assert_eq!((command.status.as_str(), command.attempts), ("pending", 0));
        assert_eq!(command.session_id, Some(spec.session_id));
        assert_eq!(
            command.message().unwrap(),
            ControlMessage::Command {
                command_id: command.command_id,
                command: Command::CreateSession(spec),
            }
        );
        // 'a' is full now, 'b' takes the next; then nobody can.
        let next = created(&mut conn, creation(false)).0;
        assert_eq!(next.agent_id.as_deref(), Some("b"));
        let mut local = creation(false);
        local.platform = Some("local".into());
        assert!(matches!(
            local.run(&mut conn).unwrap(),
            Placed::NoAgent(message) if message.contains("local")
        ));
    }

    #[derive(QueryableByName)]
    struct Scans {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        scans: i64,
    }

    /// The statement is prepared, and Postgres keeps the plan it made for the table as it was
    /// then: a plan made on a fleet of two must still walk the placement index, not sort
    /// every online agent, once the fleet is thousands (before the table is analysed again);
    /// and once the grown table is analysed, no plan of the creation scans it whole.
    #[test]
    fn plans_kept_from_a_small_fleet_walk_indexes_in_a_large_one_once_it_is_analysed() {
        let (_db, mut conn) = crate::store::migrated_database();
        fleet(
            &mut conn,
            "('a', 'local', NULL, 'online', 100), ('b', 'local', NULL, 'online', 100)",
        );
        // Its statistics read, as autovacuum would have; then more calls than Postgres makes
        // custom plans for before it keeps a generic one.
        conn.batch_execute("ANALYZE agents").unwrap();
        for _ in 0..10 {
            created(&mut conn, creation(false));
        }
        conn.batch_execute(
            "INSERT INTO agents (agent_id, platform, status, max_sessions) \
             SELECT 'many-' || i, 'local', 'online', 10 FROM generate_series(1, 5000) AS i",
        )
        .unwrap();
        // One creation; what it scanned: each index, and the table whole.
        let scanned = |conn: &mut PgConnection| -> (Option<String>, Vec<(String, i64)>) {
            // The scans Postgres counted on this connection and not yet reported (so both
            // reads are in the transaction: nothing is reported in between).
            let scans = |conn: &mut PgConnection| -> Vec<(String, i64)> {
                diesel::sql_query(
                    "SELECT relname::text AS name, pg_stat_get_xact_numscans(oid) AS scans \
                     FROM pg_class \
                     WHERE relname IN ('agents', 'idx_agents_placement', 'idx_agents_status') \
                     ORDER BY relname",
                )
                .load::<Scans>(conn)
                .unwrap()
                .into_iter()
                .map(|s| (s.name, s.scans))
                .collect()
            };
            conn.transaction(|conn| {
                let before = scans(conn);
                let Placed::Created { session, .. } = creation(false).run(conn).unwrap() else {
                    panic!("not created");
                };
                let made = before
                    .into_iter()
                    .zip(scans(conn))
                    .map(|((name, was), (_, now))| (name, now - was))
                    .collect();
                diesel::QueryResult::Ok((session.agent_id, made))
            })
            .unwrap()
        };
        let (agent, made) = scanned(&mut conn);
        assert_eq!(agent.as_deref(), Some("many-1"));
        assert_eq!(
            made[1..],
            [
                ("idx_agents_placement".into(), 1),
                ("idx_agents_status".into(), 0)
            ]
        );
        // The foreign-key checks' and the trigger's plans were kept from the small table too:
        // they scan it whole (Postgres's own statements), until it is analysed.
        assert!(made[0].1 > 0, "{made:?}");
        assert_eq!(
            crate::store::grown_tables::AnalyseGrownTables
                .run(&mut conn)
                .unwrap(),
            ["agents"]
        );
        let (agent, made) = scanned(&mut conn);
        // Next by name among the empty ones.
        assert_eq!(agent.as_deref(), Some("many-10"));
        assert_eq!(
            made,
            [
                ("agents".into(), 0),
                ("idx_agents_placement".into(), 1),
                ("idx_agents_status".into(), 0)
            ]
        );
    }

    #[test]
    fn a_home_is_placed_first_and_the_session_written_on_its_agent() {
        let (_db, mut conn) = crate::store::migrated_database();
        fleet(&mut conn, "('a', 'local', NULL, 'online', 5)");
        let first = created(&mut conn, creation(true)).0;
        let home = first.home_id.expect("a home");
        assert!(first.persistent_home);
        assert_eq!(
            kept_spec(&mut conn, &first).and_then(|s| s.home_id),
            Some(home)
        );
        // In use by the first: refused, and nothing written.
        let before: i64 = sessions::table.count().get_result(&mut conn).unwrap();
        assert!(matches!(
            creation(true).run(&mut conn).unwrap(),
            Placed::HomeRefused("home_in_use", _)
        ));
        let after: i64 = sessions::table.count().get_result(&mut conn).unwrap();
        assert_eq!(before, after);
    }
}
