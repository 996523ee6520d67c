//! `agents`: registered agents, their liveness and what they announced.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::credentials::{Credential, NewCredential, insert_credential};
use super::prepared::Prepare;
use super::schema::{agents, sessions};
use super::{Query, StoreError};
use crate::model::{AgentStatus, SessionState};

/// An agent as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = agents)]
pub struct Agent {
    /// Surrogate key (not shown: the API names agents by `agent_id`).
    #[serde(skip)]
    pub id: uuid::Uuid,
    /// The agent's name.
    pub agent_id: String,
    /// `kubernetes` or `local`.
    pub platform: String,
    /// Placement region.
    pub region: Option<String>,
    /// `online`, `warning`, `offline`, `error`.
    #[schema(value_type = crate::model::AgentStatus)]
    pub status: String,
    /// As announced in `hello`.
    #[schema(value_type = Object)]
    pub capacity: serde_json::Value,
    /// Free-form.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The live WebSocket, if any.
    #[serde(skip)]
    pub websocket_conn_id: Option<String>,
    /// Last heartbeat or hello.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Registered at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Sessions placed on it that still hold resources (kept by a trigger on `sessions`).
    #[serde(skip)]
    pub active_sessions: i32,
}

/// An agent with how many sessions it holds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    /// The row.
    #[serde(flatten)]
    pub agent: Agent,
    /// Sessions placed on it that still hold resources.
    pub active_sessions: i64,
}

impl From<Agent> for AgentView {
    fn from(agent: Agent) -> Self {
        AgentView {
            active_sessions: i64::from(agent.active_sessions),
            agent,
        }
    }
}

/// Registers an agent together with its first credential.
pub struct RegisterAgent {
    /// Name.
    pub agent_id: String,
    /// Platform.
    pub platform: String,
    /// Region.
    pub region: Option<String>,
    /// Its first credential.
    pub credential: NewCredential,
}

impl Query for RegisterAgent {
    /// The agent and its first credential.
    type Output = (Agent, Credential);
    fn run(self, conn: &mut PgConnection) -> Result<(Agent, Credential), StoreError> {
        conn.transaction(|conn| {
            let agent = diesel::insert_into(agents::table)
                .values((
                    agents::agent_id.eq(&self.agent_id),
                    agents::platform.eq(&self.platform),
                    agents::region.eq(&self.region),
                ))
                .returning(Agent::as_returning())
                .get_result(conn)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "agent {:?} is already registered",
                        self.agent_id
                    )),
                    other => other,
                })?;
            let credential = insert_credential(conn, &self.credential)?;
            Ok((agent, credential))
        })
    }
}

/// A page of the agents matching optional filters, by name.
#[derive(Default)]
pub struct ListAgents {
    /// Only this platform.
    pub platform: Option<String>,
    /// Only this status.
    pub status: Option<AgentStatus>,
    /// Only this region.
    pub region: Option<String>,
    /// Only names containing this (case-insensitive).
    pub search: Option<String>,
    /// Names after this one (the previous page's last).
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
}

impl Query for ListAgents {
    type Output = Vec<AgentView>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<AgentView>, StoreError> {
        let mut query = agents::table.select(Agent::as_select()).into_boxed();
        if let Some(platform) = &self.platform {
            query = query.filter(agents::platform.eq(platform));
        }
        if let Some(status) = self.status {
            query = query.filter(agents::status.eq(status.as_str()));
        }
        if let Some(region) = &self.region {
            query = query.filter(agents::region.eq(region));
        }
        if let Some(search) = &self.search {
            let escaped = search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            query = query.filter(agents::agent_id.ilike(format!("%{escaped}%")));
        }
        if let Some(after) = &self.after {
            query = query.filter(agents::agent_id.gt(after));
        }
        let agents = query.order(agents::agent_id).limit(self.limit).load(conn)?;
        Ok(agents.into_iter().map(AgentView::from).collect())
    }
}

/// The whole fleet at a glance, whatever page a list shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FleetSummary {
    /// Registered agents.
    pub agents: i64,
    /// Agents by status.
    pub by_status: std::collections::BTreeMap<String, i64>,
    /// Sessions holding resources, over all agents.
    pub active_sessions: i64,
    /// Platforms with at least one agent.
    pub platforms: Vec<String>,
    /// Regions agents announced.
    pub regions: Vec<String>,
}

/// Reads [`FleetSummary`].
pub struct SummarizeFleet;

impl Query for SummarizeFleet {
    type Output = FleetSummary;
    fn run(self, conn: &mut PgConnection) -> Result<FleetSummary, StoreError> {
        use diesel::dsl::{count_star, sum};
        // (status, platform, region, agents, their active sessions)
        type Group = (String, String, Option<String>, i64, Option<i64>);
        let groups: Vec<Group> = agents::table
            .group_by((agents::status, agents::platform, agents::region))
            .select((
                agents::status,
                agents::platform,
                agents::region,
                count_star(),
                sum(agents::active_sessions),
            ))
            .load(conn)?;
        let mut summary = FleetSummary {
            agents: 0,
            by_status: Default::default(),
            active_sessions: 0,
            platforms: Vec::new(),
            regions: Vec::new(),
        };
        for (status, platform, region, count, active) in groups {
            summary.agents += count;
            *summary.by_status.entry(status).or_default() += count;
            summary.active_sessions += active.unwrap_or(0);
            summary.platforms.push(platform);
            summary.regions.extend(region);
        }
        for list in [&mut summary.platforms, &mut summary.regions] {
            list.sort();
            list.dedup();
        }
        Ok(summary)
    }
}

/// One agent with its session count.
pub struct AgentById(pub String);

impl Query for AgentById {
    type Output = Option<AgentView>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<AgentView>, StoreError> {
        let agent = agents::table
            .filter(agents::agent_id.eq(&self.0))
            .select(Agent::as_select())
            .first(conn)
            .optional()?;
        Ok(agent.map(AgentView::from))
    }
}

/// Deletes an agent: its commands and credentials go with it; its active and hibernated sessions become
/// `lost` (nothing can reach them any more) and are detached.
pub struct DeleteAgent(pub String);

impl Query for DeleteAgent {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        conn.transaction(|conn| {
            diesel::update(
                sessions::table
                    .filter(sessions::agent_id.eq(&self.0))
                    .filter(sessions::state.eq_any(SessionState::holding_home_names())),
            )
            .set((
                sessions::state.eq(SessionState::Lost.as_str()),
                sessions::state_reason.eq(format!("agent {} was deleted", self.0)),
            ))
            .execute(conn)?;
            match diesel::delete(agents::table.filter(agents::agent_id.eq(&self.0)))
                .execute(conn)?
            {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
    }
}

/// A new connection said `hello`: record what it announced and make it the live one. The
/// platform and region an admin registered stand: a hello naming another platform is refused
/// (`Conflict`), and its region only fills in one the admin left empty. A credential revoked
/// after the connection was accepted refuses it too.
pub struct MarkConnected {
    /// Agent.
    pub agent_id: String,
    /// The new connection.
    pub conn_id: String,
    /// The credential it authenticated with: revoked since, the hello is refused.
    pub credential_id: Uuid,
    /// Announced platform.
    pub platform: String,
    /// Announced region.
    pub region: Option<String>,
    /// Announced capacity.
    pub capacity: serde_json::Value,
    /// The replica the link reached: it drives the agent's commands from now on.
    pub replica_id: Uuid,
}

impl MarkConnected {
    /// Why the link was not recorded: read only after the update matched nothing.
    fn refusal(&self, conn: &mut PgConnection) -> Result<StoreError, StoreError> {
        let platform: Option<String> = agents::table
            .filter(agents::agent_id.eq(&self.agent_id))
            .select(agents::platform)
            .first(conn)
            .optional()?;
        Ok(match platform {
            None => StoreError::NotFound,
            Some(platform) if platform != self.platform => StoreError::Conflict(format!(
                "agent {} is registered for platform {platform}, its hello says {}",
                self.agent_id, self.platform
            )),
            Some(_) => StoreError::Conflict("credential revoked".into()),
        })
    }

    /// Records many links in one statement (the agent registered for the platform named, the
    /// credential its own and not revoked); returns the time of each link recorded, by agent. Each agent at most once. (The
    /// platform is compared with `IS NOT DISTINCT FROM`, which no index serves: with the
    /// statistics of a just-registered fleet, Postgres matched agents through the platform
    /// index and filtered a thousand rows per hello — 300 ms a batch in `auto_explain`
    /// instead of 7 ms through the agent-id index.)
    fn apply_all(
        marks: &[&MarkConnected],
        conn: &mut PgConnection,
    ) -> Result<std::collections::HashMap<String, DateTime<Utc>>, StoreError> {
        use diesel::sql_types::{
            Array, BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
        };
        #[derive(QueryableByName)]
        struct Recorded {
            #[diesel(sql_type = Text)]
            agent_id: String,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            last_heartbeat: Option<DateTime<Utc>>,
        }
        let column =
            |f: fn(&MarkConnected) -> String| marks.iter().map(|m| f(m)).collect::<Vec<_>>();
        let rows: Vec<Recorded> = diesel::sql_query(
            "UPDATE agents SET status = $9, websocket_conn_id = h.conn_id, \
                 region = COALESCE(agents.region, h.region), capacity = h.capacity, \
                 max_sessions = h.max_sessions, last_heartbeat = now(), replica_id = h.replica_id \
             FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], \
                         $6::jsonb[], $7::int8[], $8::uuid[]) \
                  AS h (agent_id, conn_id, credential_id, platform, region, capacity, \
                        max_sessions, replica_id) \
             WHERE agents.agent_id = h.agent_id AND agents.platform IS NOT DISTINCT FROM h.platform \
               AND EXISTS (SELECT 1 FROM agent_credentials c WHERE c.id = h.credential_id \
                           AND c.agent_id = h.agent_id AND c.revoked_at IS NULL) \
             RETURNING agents.agent_id, agents.last_heartbeat",
        )
        .bind::<Array<Text>, _>(column(|m| m.agent_id.clone()))
        .bind::<Array<Text>, _>(column(|m| m.conn_id.clone()))
        .bind::<Array<SqlUuid>, _>(marks.iter().map(|m| m.credential_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(column(|m| m.platform.clone()))
        .bind::<Array<Nullable<Text>>, _>(
            marks.iter().map(|m| m.region.clone()).collect::<Vec<_>>(),
        )
        .bind::<Array<Jsonb>, _>(marks.iter().map(|m| m.capacity.clone()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(
            marks
                .iter()
                .map(|m| m.capacity["max_sessions"].as_i64().unwrap_or(0))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<SqlUuid>, _>(marks.iter().map(|m| m.replica_id).collect::<Vec<_>>())
        .bind::<Text, _>(AgentStatus::Online.as_str())
        .prepared()
        .load(conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.last_heartbeat.map(|at| (r.agent_id, at)))
            .collect())
    }
}

/// What a `hello` changes: the link recorded and announced to the other replicas, the audit
/// entry, the agent's inventory reconciled (unless it could not list it), and the commands it
/// has not answered loaded for redelivery. Recorded with the others that arrived with it, by
/// [`LinkAgents`].
pub struct LinkAgent {
    /// The link.
    pub mark: MarkConnected,
    /// The agent's `agent_connect` entry.
    pub audit: super::audit::NewAuditEntry,
    /// Its inventory and `COMMAND_TIMEOUT` (for cleanup commands); `None` when it could not
    /// list its sessions.
    pub inventory: Option<(
        Vec<streamspace_protocol::SessionReport>,
        std::time::Duration,
    )>,
}

/// What [`LinkAgent`] did.
pub struct Linked {
    /// The database's time of the link.
    pub as_of: DateTime<Utc>,
    /// The reconciliation, when there was an inventory.
    pub reconciled: Option<super::sessions::Reconciled>,
    /// Its unfinished commands, oldest first.
    pub unfinished: Vec<super::commands::CommandRow>,
}

/// Hellos that arrived together, in one transaction: one commit for all of them, the audit
/// entries in one insert, the other replicas told and the credentials' use stamped in one
/// statement each, and every agent's unfinished commands read in one query — a fleet reconnecting costs the database a few
/// statements per batch and one per agent. An agent whose link is refused (unknown, revoked,
/// another platform) gets its own error; the others are recorded.
pub struct LinkAgents(pub Vec<LinkAgent>);

impl Query for LinkAgents {
    /// One result per hello, in order.
    type Output = Vec<Result<Linked, StoreError>>;
    fn run(self, conn: &mut PgConnection) -> Result<Self::Output, StoreError> {
        conn.transaction(|conn| {
            // The same agent twice in a batch (a reconnect racing its old link): the later
            // hello is the one that stays.
            let last: std::collections::HashMap<String, usize> = self
                .0
                .iter()
                .enumerate()
                .map(|(i, link)| (link.mark.agent_id.clone(), i))
                .collect();
            let marks: Vec<&MarkConnected> = self
                .0
                .iter()
                .enumerate()
                .filter(|(i, link)| last[&link.mark.agent_id] == *i)
                .map(|(_, link)| &link.mark)
                .collect();
            let recorded = MarkConnected::apply_all(&marks, conn)?;
            // Agents holding sessions here, whose inventories must be compared even when empty.
            let candidates: Vec<&str> = recorded.keys().map(String::as_str).collect();
            let placed: std::collections::HashSet<String> = sessions::table
                .filter(sessions::agent_id.eq_any(&candidates))
                .filter(sessions::state.eq_any(SessionState::active_names()))
                .select(sessions::agent_id.assume_not_null())
                .distinct()
                .load::<String>(conn)?
                .into_iter()
                .collect();
            let mut results = Vec::with_capacity(self.0.len());
            let mut audits = Vec::new();
            let mut holders = Vec::new();
            let mut credentials = Vec::new();
            let mut linked: Vec<(String, usize)> = Vec::new();
            for (i, link) in self.0.into_iter().enumerate() {
                let as_of = match recorded.get(&link.mark.agent_id) {
                    Some(&as_of) if last[&link.mark.agent_id] == i => as_of,
                    Some(_) => {
                        results.push(Err(StoreError::Conflict(
                            "replaced by a newer connection of the same agent".into(),
                        )));
                        continue;
                    }
                    // A refusal is an answer read from the database, not a failed statement:
                    // the transaction goes on for the others.
                    None => {
                        results.push(Err(link.mark.refusal(conn)?));
                        continue;
                    }
                };
                let agent_id = link.mark.agent_id;
                // The other replicas close a link of this agent they still hold, once this
                // commits.
                holders.push(format!("{agent_id} {}", link.mark.replica_id));
                credentials.push(link.mark.credential_id);
                audits.push(link.audit);
                let reconciled = match link.inventory {
                    // Nothing held there and nothing placed here: nothing to compare.
                    Some((inventory, _)) if inventory.is_empty() && !placed.contains(&agent_id) => {
                        Some(super::sessions::Reconciled::default())
                    }
                    Some((inventory, command_timeout)) => Some(
                        super::sessions::ApplyInventory {
                            agent_id: agent_id.clone(),
                            inventory,
                            as_of,
                            command_timeout,
                        }
                        .apply(conn)?,
                    ),
                    None => None,
                };
                linked.push((agent_id, results.len()));
                results.push(Ok(Linked {
                    as_of,
                    reconciled,
                    unfinished: Vec::new(),
                }));
            }
            if linked.is_empty() {
                return Ok(results);
            }
            super::replicas::notify_each(conn, super::replicas::LINKS_CHANNEL, &holders)?;
            diesel::insert_into(super::schema::audit_log::table)
                .values(&audits)
                .execute(conn)?;
            diesel::update(
                super::schema::agent_credentials::table
                    .filter(super::schema::agent_credentials::id.eq_any(&credentials)),
            )
            .set(super::schema::agent_credentials::last_used_at.eq(now))
            .execute(conn)?;
            let ids = linked.iter().map(|(id, _)| id.clone()).collect();
            // The same agent twice in a batch (a reconnect racing the old link): its commands
            // go to the later link, which is the one that stays.
            let slot: std::collections::HashMap<String, usize> = linked.into_iter().collect();
            for command in super::commands::UnfinishedCommands(ids).run(conn)? {
                if let Some(Ok(linked)) = slot.get(&command.agent_id).map(|&i| &mut results[i]) {
                    linked.unfinished.push(command);
                }
            }
            Ok(results)
        })
    }
}

/// Heartbeats that arrived on live connections, gathered for a moment: one statement stamps
/// them all, so a fleet's heartbeats cost the database a write a second, not one each.
pub struct RecordHeartbeats {
    /// Agent and the connection its heartbeat came on; a stale connection's changes nothing.
    pub beats: Vec<(String, String)>,
}

impl Query for RecordHeartbeats {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        use diesel::sql_types::{Array, Text};
        let (agents, conns): (Vec<String>, Vec<String>) = self.beats.into_iter().unzip();
        diesel::sql_query(
            "UPDATE agents SET status = $3, last_heartbeat = now() \
             FROM unnest($1::text[], $2::text[]) AS beat (agent_id, conn_id) \
             WHERE agents.agent_id = beat.agent_id AND agents.websocket_conn_id = beat.conn_id",
        )
        .bind::<Array<Text>, _>(agents)
        .bind::<Array<Text>, _>(conns)
        .bind::<Text, _>(AgentStatus::Online.as_str())
        .prepared()
        .execute(conn)?;
        Ok(())
    }
}

/// Liveness changed. Going `offline` also marks the agent's running sessions `degraded`.
pub struct SetAgentStatus {
    /// Agent.
    pub agent_id: String,
    /// New status.
    pub status: AgentStatus,
    /// Applies only while the store records this connection for the agent (`None`: none),
    /// so a judgement about an old connection never lands after a reconnect.
    pub conn_id: Option<String>,
}

impl Query for SetAgentStatus {
    /// How many sessions became degraded.
    type Output = usize;
    fn run(self, conn: &mut PgConnection) -> Result<usize, StoreError> {
        conn.transaction(|conn| {
            let target = agents::table
                .filter(agents::agent_id.eq(&self.agent_id))
                .filter(agents::websocket_conn_id.is_not_distinct_from(self.conn_id.clone()));
            if self.status == AgentStatus::Offline {
                let changed = diesel::update(target)
                    .set((
                        agents::status.eq(self.status.as_str()),
                        agents::websocket_conn_id.eq(None::<String>),
                    ))
                    .execute(conn)?;
                if changed == 0 {
                    return Ok(0); // the agent reconnected meanwhile
                }
                Ok(diesel::update(
                    sessions::table
                        .filter(sessions::agent_id.eq(&self.agent_id))
                        .filter(sessions::state.eq(SessionState::Running.as_str())),
                )
                .set((
                    sessions::state.eq(SessionState::Degraded.as_str()),
                    sessions::state_reason.eq(format!("agent {} is offline", self.agent_id)),
                ))
                .execute(conn)?)
            } else {
                diesel::update(target)
                    .set(agents::status.eq(self.status.as_str()))
                    .execute(conn)?;
                Ok(0)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use uuid::Uuid;

    use super::*;
    use crate::store::audit::NewAuditEntry;

    const CREDENTIAL_A: &str = "00000000-0000-0000-0000-00000000000a";
    const CREDENTIAL_B: &str = "00000000-0000-0000-0000-00000000000b";

    fn hello(agent_id: &str, credential: &str, platform: &str) -> LinkAgent {
        LinkAgent {
            mark: MarkConnected {
                agent_id: agent_id.into(),
                conn_id: format!("conn-{agent_id}"),
                credential_id: credential.parse().unwrap(),
                platform: platform.into(),
                region: None,
                capacity: serde_json::json!({"max_sessions": 5}),
                replica_id: Uuid::nil(),
            },
            audit: NewAuditEntry::by_agent("agent_connect", agent_id),
            inventory: Some((Vec::new(), std::time::Duration::from_secs(60))),
        }
    }

    #[test]
    fn a_batch_links_each_agent_it_may_refuses_the_others_and_hands_out_their_commands() {
        let (_db, mut conn) = crate::store::migrated_database();
        conn.batch_execute(&format!(
            "INSERT INTO agents (agent_id, platform) VALUES ('a', 'local'), ('b', 'docker');\
             INSERT INTO agent_credentials (id, agent_id, token_hash, token_prefix) \
                VALUES ('{CREDENTIAL_A}', 'a', 'ha', 'pa'), ('{CREDENTIAL_B}', 'b', 'hb', 'pb');\
             INSERT INTO agent_commands (command_id, agent_id, command_type, payload, timeout_at) \
                VALUES (gen_random_uuid(), 'a', 'list_sessions', '{{}}', now() + interval '1 hour'), \
                (gen_random_uuid(), 'b', 'list_sessions', '{{}}', now() + interval '1 hour')"
        ))
        .unwrap();
        let results = LinkAgents(vec![
            hello("a", CREDENTIAL_A, "local"),
            hello("nobody", CREDENTIAL_A, "local"),
            hello("b", CREDENTIAL_B, "local"),
            // Another credential's agent: refused like a revoked one.
            hello("b", CREDENTIAL_A, "docker"),
            // The same agent again (a reconnect racing its old link): the later one stays.
            hello("a", CREDENTIAL_A, "local"),
        ])
        .run(&mut conn)
        .unwrap();
        assert_eq!(results.len(), 5);
        assert!(matches!(&results[0], Err(StoreError::Conflict(why)) if why.contains("newer")));
        let linked = results[4].as_ref().unwrap();
        assert_eq!(linked.unfinished.len(), 1);
        assert_eq!(linked.unfinished[0].agent_id, "a");
        assert!(matches!(results[1], Err(StoreError::NotFound)));
        assert!(
            matches!(&results[2], Err(StoreError::Conflict(why)) if why.contains("platform docker")),
            "{:?}",
            results[2].as_ref().err()
        );
        assert!(matches!(&results[3], Err(StoreError::Conflict(why)) if why.contains("revoked")));
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            agent_id: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            status: String,
        }
        let rows: Vec<Row> = diesel::sql_query("SELECT agent_id, status FROM agents ORDER BY 1")
            .load(&mut conn)
            .unwrap();
        let statuses: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.agent_id.as_str(), r.status.as_str()))
            .collect();
        assert_eq!(statuses, [("a", "online"), ("b", "offline")]);
        // Only the linked agent's connection is audited.
        let audited: Vec<Row> =
            diesel::sql_query("SELECT actor_agent_id AS agent_id, action AS status FROM audit_log")
                .load(&mut conn)
                .unwrap();
        assert_eq!(audited.len(), 1);
        assert_eq!(audited[0].agent_id, "a");
        // And only its credential's use is stamped.
        let used: Vec<Row> = diesel::sql_query(
            "SELECT agent_id, 'used' AS status FROM agent_credentials WHERE last_used_at IS NOT NULL",
        )
        .load(&mut conn)
        .unwrap();
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].agent_id, "a");
    }
}
