//! The Supervisor: one per process. It owns the registry of agent connections and command
//! actors, routes messages between them and the store, and sweeps agent liveness.
//!
//! Message structs and their handlers live in files by topic: [`agents`] (the agent link),
//! [`commands`] (dispatch and delivery) and
//! [`streams`] (VNC streams).

mod agents;
mod commands;
pub mod registry;
mod replicas;
mod streams;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use streamspace_protocol::StreamId;
use uuid::Uuid;

pub use self::agents::{AgentRemoved, CredentialsRevoked};
pub use self::commands::{Ask, Dispatch, STREAM_COMMAND_TIMEOUT};
use self::registry::Registry;
pub use self::replicas::Drain;
use self::streams::OpenedStream;
pub use self::streams::{ACCOUNT_ENDED, CloseStreamsOf, SHARE_ENDED};
use super::batcher::{Batcher, CommandWrites};
use super::command::CommandActor;
use super::link_messages::LinkHandle;
pub use super::supervisor_messages::{SupervisorHandle, SupervisorRecipients};
use crate::auth::user_cache::UserCache;
use crate::metrics::Metrics;
use crate::store::StoreHandle;
use crate::store::agents::LinkAgents;

/// Timings from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// `AGENT_HEARTBEAT_INTERVAL`.
    pub heartbeat_interval: Duration,
    /// `AGENT_TIMEOUT`.
    pub agent_timeout: Duration,
    /// `COMMAND_TIMEOUT`.
    pub command_timeout: Duration,
    /// `REPLICA_HEARTBEAT_INTERVAL`.
    pub replica_heartbeat: Duration,
}

impl Timing {
    /// How often liveness is swept: fine enough to notice silence within a tenth of the
    /// timeout, never busier than 10 times a second.
    fn sweep_every(&self) -> Duration {
        (self.agent_timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }
}

/// The actor.
pub struct Supervisor {
    store: StoreHandle,
    metrics: Arc<Metrics>,
    timing: Timing,
    registry: Registry<LinkHandle>,
    /// Command id → (agent id, actor).
    commands: HashMap<Uuid, (String, Addr<CommandActor>)>,
    /// Streams open: id → the viewer's user and tunnel; and the last id handed out.
    streams: HashMap<StreamId, OpenedStream>,
    next_stream: StreamId,
    /// Credentials revoked while this process runs (a revoked one never authenticates
    /// again, so this only grows with admins' revocations).
    revoked: HashSet<Uuid>,
    /// This replica.
    replica_id: Uuid,
    /// API requests here awaiting commands another replica drives: command id → reply.
    remote_waiters: HashMap<Uuid, Reply>,
    /// Shutting down: new links are refused.
    draining: bool,
    /// Heartbeats not yet stamped in the store: agent → the connection it came on.
    beats: HashMap<String, String>,
    /// Where hellos are recorded, in batches.
    hellos: Addr<Batcher<LinkAgents>>,
    /// Where command actors record deliveries and their agents' answers.
    writes: CommandWrites,
    /// Recent callers, forgotten when other replicas say they changed.
    users: Arc<UserCache>,
    /// Its own handle, for the command actors it starts (the one the HTTP handlers share).
    own: SupervisorHandle,
}

/// How long heartbeats are gathered before one statement stamps them (`last_heartbeat` in
/// the store lags by at most this; liveness is judged here, from the registry).
const HEARTBEAT_STAMP_EVERY: Duration = Duration::from_secs(1);

/// Where an API request awaiting a command gets its outcome.
pub type Reply = tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>;

impl Supervisor {
    /// A supervisor over `store`, recording hellos through `hellos`; `own` is its handle,
    /// made from the address of the context it will run in ([`Supervisor::handle`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: StoreHandle,
        metrics: Arc<Metrics>,
        timing: Timing,
        replica_id: Uuid,
        writes: CommandWrites,
        hellos: Addr<Batcher<LinkAgents>>,
        users: Arc<UserCache>,
        own: SupervisorHandle,
    ) -> Self {
        Supervisor {
            writes,
            users,
            replica_id,
            remote_waiters: HashMap::new(),
            draining: false,
            beats: HashMap::new(),
            hellos,
            store,
            metrics,
            timing,
            registry: Registry::default(),
            commands: HashMap::new(),
            streams: HashMap::new(),
            next_stream: 0,
            revoked: HashSet::new(),
            own,
        }
    }
}

impl Supervisor {
    /// Where the actors the Supervisor addresses send it what they have.
    pub fn handle(me: &Addr<Supervisor>) -> SupervisorHandle {
        SupervisorHandle::new(SupervisorRecipients {
            hello: me.clone().recipient(),
            from_agent: me.clone().recipient(),
            seen: me.clone().recipient(),
            disconnected: me.clone().recipient(),
            refused: me.clone().recipient(),
            send_to_agent: me.clone().recipient(),
            link_of: me.clone().recipient(),
            command_done: me.clone().recipient(),
            open_stream: me.clone().recipient(),
            close_stream: me.clone().recipient(),
        })
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Agents no live replica holds (the previous process's, when there is one replica)
        // are ours to judge: they get the timeout to come back, and their unfinished
        // commands get their actors back, with their deadlines.
        self.claim_orphans(ctx);
        ctx.run_interval(self.timing.replica_heartbeat, |this, ctx| {
            this.claim_orphans(ctx)
        });
        // The safety net under the notifications: pending commands of the agents linked here.
        ctx.run_interval(self.timing.replica_heartbeat * 10, |this, ctx| {
            this.resync(ctx)
        });
        ctx.run_interval(self.timing.sweep_every(), |this, _| this.sweep());
        ctx.run_interval(HEARTBEAT_STAMP_EVERY, |this, _| this.record_heartbeats());
    }
}
