//! Control-plane replicas on one database: their heartbeats, who holds which agent's link (and
//! so drives its commands and judges its liveness), notifications between them, and viewer
//! tokens spent on any of them.
//!
//! The rule every replica follows: the replica recorded on an agent (`agents.replica_id`)
//! drives that agent's commands and judges its liveness. A hello records the replica it
//! reached; an agent whose replica is dead (three beats late) or gone is claimed by one
//! survivor, atomically.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::{Interval, Text};
use uuid::Uuid;

use super::prepared::Prepare;
use super::schema::{agents, replicas, spent_viewer_tokens};
use super::{Query, StoreError};
use crate::model::AgentStatus;

/// Channel on which a replica asks the agent's replica to look at its pending commands
/// (payload: the agent id).
pub const COMMANDS_CHANNEL: &str = "streamspace_commands";
/// Channel on which a replica says it now holds an agent's link (payload: `agent_id replica`).
pub const LINKS_CHANNEL: &str = "streamspace_links";
/// Channel on which a command's end is announced (payload: the command id).
pub const COMMAND_DONE_CHANNEL: &str = "streamspace_command_done";
/// A user changed (payload: their id): replicas forget them from their caches.
pub const USERS_CHANNEL: &str = "streamspace_users";
/// A user's access to desktops ended (payload: `user` — every desktop — or `user session`):
/// every replica ends that user's open streams there.
pub const ACCESS_CHANNEL: &str = "streamspace_access";

/// How late a replica's heartbeat may be before it counts as dead.
pub fn dead_after(heartbeat: Duration) -> Duration {
    heartbeat * 3
}

fn interval(d: Duration) -> diesel::data_types::PgInterval {
    diesel::data_types::PgInterval::from_microseconds(
        i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
    )
}

/// Records this replica (again, after it was judged dead while it lived); returns how many
/// other live replicas could take over its agents.
pub struct ReplicaBeat {
    /// This replica.
    pub id: Uuid,
    /// Where other replicas reach it.
    pub address: String,
    /// How late a heartbeat may be.
    pub dead_after: Duration,
}

impl Query for ReplicaBeat {
    type Output = i64;
    fn run(self, conn: &mut PgConnection) -> Result<i64, StoreError> {
        diesel::insert_into(replicas::table)
            .values((
                replicas::id.eq(self.id),
                replicas::address.eq(&self.address),
            ))
            .on_conflict(replicas::id)
            .do_update()
            .set(replicas::last_seen.eq(now))
            .execute(conn)?;
        takers(conn, self.id, self.dead_after)
    }
}

/// The other live replicas that take links: those that could take over `me`'s agents.
fn takers(conn: &mut PgConnection, me: Uuid, dead_after: Duration) -> Result<i64, StoreError> {
    let live = now.into_sql::<diesel::sql_types::Timestamptz>() - interval(dead_after);
    Ok(replicas::table
        .filter(replicas::id.ne(me))
        .filter(replicas::last_seen.gt(live))
        .filter(replicas::draining.eq(false))
        .count()
        .get_result(conn)?)
}

/// Says this replica takes no new links (it is shutting down).
pub struct DrainReplica(pub Uuid);

impl Query for DrainReplica {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        diesel::update(replicas::table.find(self.0))
            .set(replicas::draining.eq(true))
            .execute(conn)?;
        Ok(())
    }
}

/// A draining replica's handover: how many other live replicas take links, and how many agents
/// are still recorded online as linked here (each leaves that record when its hello reaches
/// another replica).
pub struct Handover {
    /// This replica.
    pub id: Uuid,
    /// How late a heartbeat may be.
    pub dead_after: Duration,
}

/// What [`Handover`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoverState {
    /// Other live replicas that are not draining.
    pub takers: i64,
    /// Agents still online here.
    pub still_here: i64,
}

impl Query for Handover {
    type Output = HandoverState;
    fn run(self, conn: &mut PgConnection) -> Result<HandoverState, StoreError> {
        let takers = takers(conn, self.id, self.dead_after)?;
        let still_here = agents::table
            .filter(agents::replica_id.eq(self.id))
            .filter(agents::status.eq(AgentStatus::Online.as_str()))
            .count()
            .get_result(conn)?;
        Ok(HandoverState { takers, still_here })
    }
}

/// This replica stops: its row goes, so its agents are claimed at once, not after three beats.
pub struct RemoveReplica(pub Uuid);

impl Query for RemoveReplica {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        diesel::delete(replicas::table.find(self.0)).execute(conn)?;
        Ok(())
    }
}

/// A replica other replicas can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Its id.
    pub id: Uuid,
    /// Where it listens.
    pub address: String,
}

/// The live replica recorded on an agent, if any.
pub struct AgentReplica {
    /// The agent.
    pub agent_id: String,
    /// How late a heartbeat may be.
    pub dead_after: Duration,
}

impl Query for AgentReplica {
    type Output = Option<Replica>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<Replica>, StoreError> {
        let live = now.into_sql::<diesel::sql_types::Timestamptz>() - interval(self.dead_after);
        Ok(agents::table
            .inner_join(replicas::table.on(agents::replica_id.eq(replicas::id.nullable())))
            .filter(agents::agent_id.eq(&self.agent_id))
            .filter(replicas::last_seen.gt(live))
            .select((replicas::id, replicas::address))
            .first::<(Uuid, String)>(conn)
            .optional()?
            .map(|(id, address)| Replica { id, address }))
    }
}

/// An agent this replica now judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedAgent {
    /// The agent.
    pub agent_id: String,
    /// Whether it was online or warning: it gets the agent timeout to reconnect.
    pub believed_alive: bool,
}

/// Claims every agent no live replica holds (recorded on none, on a dead one, or on one
/// gone): from now on this replica drives their commands, and the ones believed alive are
/// `warning` until they reconnect or time out. Two replicas never claim the same agent.
pub struct ClaimOrphanAgents {
    /// This replica.
    pub me: Uuid,
    /// How late a heartbeat may be.
    pub dead_after: Duration,
}

impl Query for ClaimOrphanAgents {
    type Output = Vec<ClaimedAgent>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<ClaimedAgent>, StoreError> {
        // `SKIP LOCKED`: a replica claiming at the same moment takes the others.
        let rows: Vec<ClaimedRow> = diesel::sql_query(
            "UPDATE agents SET replica_id = $1, \
                 status = CASE WHEN status IN ('online', 'warning') THEN 'warning' ELSE status END, \
                 websocket_conn_id = NULL \
             WHERE id IN ( \
                 SELECT a.id FROM agents a \
                 LEFT JOIN replicas r ON r.id = a.replica_id AND r.last_seen > now() - $2 \
                 WHERE a.replica_id IS DISTINCT FROM $1 AND r.id IS NULL \
                 FOR UPDATE OF a SKIP LOCKED) \
             RETURNING agent_id, status",
        )
        .bind::<diesel::sql_types::Uuid, _>(self.me)
        .bind::<Interval, _>(interval(self.dead_after))
        .prepared()
        .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|row| ClaimedAgent {
                believed_alive: row.status == AgentStatus::Warning.as_str(),
                agent_id: row.agent_id,
            })
            .collect())
    }
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = Text)]
    agent_id: String,
    #[diesel(sql_type = Text)]
    status: String,
}

/// Announces `payload` on `channel` to every replica listening (this one too).
pub struct Notify {
    /// The channel.
    pub channel: &'static str,
    /// What it says.
    pub payload: String,
}

impl Query for Notify {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        notify(conn, self.channel, &self.payload)
    }
}

/// `pg_notify` within the caller's transaction: delivered when it commits.
pub(super) fn notify(
    conn: &mut PgConnection,
    channel: &str,
    payload: &str,
) -> Result<(), StoreError> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(channel)
        .bind::<Text, _>(payload)
        .prepared()
        .execute(conn)?;
    Ok(())
}

/// Sends one notification per payload on `channel`, in one statement.
pub(super) fn notify_each(
    conn: &mut PgConnection,
    channel: &str,
    payloads: &[String],
) -> Result<(), StoreError> {
    diesel::sql_query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
        .bind::<Text, _>(channel)
        .bind::<diesel::sql_types::Array<Text>, _>(payloads)
        .prepared()
        .execute(conn)?;
    Ok(())
}

/// Spends a viewer token: `true` the first time, on whichever replica (the pruner forgets
/// expired ones).
pub struct SpendViewerToken {
    /// The token's id.
    pub jti: Uuid,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

impl Query for SpendViewerToken {
    type Output = bool;
    fn run(self, conn: &mut PgConnection) -> Result<bool, StoreError> {
        let inserted = diesel::insert_into(spent_viewer_tokens::table)
            .values((
                spent_viewer_tokens::jti.eq(self.jti),
                spent_viewer_tokens::expires_at.eq(self.expires_at),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
        Ok(inserted == 1)
    }
}
