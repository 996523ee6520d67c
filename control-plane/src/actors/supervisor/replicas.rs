//! Sharing the work with the other replicas on the database: claiming the agents no live
//! replica holds, routing a command to the replica that holds its agent's link, and acting on
//! what the other replicas announce ([`ReplicaNotice`]). See [`crate::store::replicas`] for the
//! rule they all follow.

use std::time::Instant;

use actix::prelude::*;
use actix_http::ws::CloseCode;
use uuid::Uuid;

use super::streams::{ACCOUNT_ENDED, CloseStreamsOf, OpenedStream, SHARE_ENDED};
use super::{Reply, Supervisor};
use crate::actors::command::{Cancel, Waiter};
use crate::actors::link_messages::CloseLink;
use crate::actors::supervisor_messages::ReplicaNotice;
use crate::actors::tunnel_messages::StreamClosed;
use crate::store::commands::{CommandById, CommandRow, UnfinishedCommands};
use crate::store::replicas::{
    AgentReplica, COMMANDS_CHANNEL, ClaimOrphanAgents, Notify, dead_after,
};

impl Supervisor {
    /// Claims the agents no live replica holds: the ones believed alive get the agent timeout
    /// to come back, and every claimed agent's unfinished commands get their actors.
    pub(super) fn claim_orphans(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let claim = ClaimOrphanAgents {
            me: self.replica_id,
            dead_after: dead_after(self.timing.replica_heartbeat),
        };
        async move {
            let claimed = store.run(claim).await?;
            let agents = claimed.iter().map(|a| a.agent_id.clone()).collect();
            let commands = store.run(UnfinishedCommands(agents)).await?;
            Ok::<_, crate::store::StoreError>((claimed, commands))
        }
        .into_actor(self)
        .map(|claimed, this, _| match claimed {
            Ok((agents, commands)) => {
                if agents.is_empty() {
                    return;
                }
                log::info!(
                    "replica {}: judging {} agents no live replica holds; {} unfinished commands",
                    this.replica_id,
                    agents.len(),
                    commands.len()
                );
                let now = Instant::now();
                for agent in agents.iter().filter(|a| a.believed_alive) {
                    if this.registry.link(&agent.agent_id).is_none() {
                        this.registry.expect(&agent.agent_id, now);
                    }
                }
                commands.into_iter().for_each(|c| this.track(c));
            }
            Err(e) => log::error!("replica {}: cannot claim agents: {e}", this.replica_id),
        })
        .spawn(ctx);
    }

    /// Starts actors for the unfinished commands of the agents linked here that have none.
    pub(super) fn resync(&mut self, ctx: &mut Context<Self>) {
        self.pick_up(self.registry.linked(), ctx);
    }

    fn pick_up(&mut self, agents: Vec<String>, ctx: &mut Context<Self>) {
        if agents.is_empty() {
            return;
        }
        let store = self.store.clone();
        async move { store.run(UnfinishedCommands(agents)).await }
            .into_actor(self)
            .map(|commands, this, _| match commands {
                Ok(commands) => {
                    for command in commands {
                        // Only while its agent is still linked here: else its replica drives it.
                        if this.registry.link(&command.agent_id).is_some() {
                            this.track(command);
                        }
                    }
                }
                Err(e) => log::error!("cannot load unfinished commands: {e}"),
            })
            .spawn(ctx);
    }

    /// A command was persisted: this replica drives it if its agent is linked here, or no
    /// live replica holds the agent (it waits here for the agent, with its deadline);
    /// otherwise the agent's replica is woken to deliver it.
    pub(super) fn route(
        &mut self,
        command: CommandRow,
        reply: Option<Reply>,
        ctx: &mut Context<Self>,
    ) {
        if self.registry.link(&command.agent_id).is_some() {
            return self.track_notifying(command, reply.map(Waiter::Reply));
        }
        let store = self.store.clone();
        let owner = AgentReplica {
            agent_id: command.agent_id.clone(),
            dead_after: dead_after(self.timing.replica_heartbeat),
        };
        async move { store.run(owner).await }
            .into_actor(self)
            .map(move |owner, this, _| match owner {
                Ok(Some(replica)) if replica.id != this.replica_id => {
                    if let Some(reply) = reply {
                        this.remote_waiters.insert(command.command_id, reply);
                    }
                    this.store.spawn(Notify {
                        channel: COMMANDS_CHANNEL,
                        payload: command.agent_id.clone(),
                    });
                }
                _ => this.track_notifying(command, reply.map(Waiter::Reply)),
            })
            .spawn(ctx);
    }

    /// Another replica holds the agent's link now: a link of it here is stale, and its
    /// commands are driven there.
    fn linked_elsewhere(&mut self, agent_id: &str) {
        if let Some(link) = self.registry.remove(agent_id) {
            link.handle.close.do_send(CloseLink {
                code: CloseCode::Policy,
                reason: "replaced by a newer connection of the same agent".into(),
            });
        }
        self.stop_commands_of(agent_id);
    }

    /// A command another replica drove ended: answer the request here that awaits it.
    fn command_done(&mut self, command_id: Uuid, ctx: &mut Context<Self>) {
        let Some(reply) = self.remote_waiters.remove(&command_id) else {
            return;
        };
        let store = self.store.clone();
        async move { store.run(CommandById(command_id)).await }
            .into_actor(self)
            .map(move |command, _, _| {
                let outcome = match command {
                    Ok(Some(command)) => match command.error {
                        Some(error) => Err(error),
                        None => Ok(command.result.unwrap_or_default()),
                    },
                    Ok(None) => Err("the command is gone".into()),
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(outcome);
            })
            .spawn(ctx);
    }
}

/// This replica shuts down: its agents are told to reconnect at once (to another replica),
/// its viewers that the stream ends (their viewer reconnects through another replica), and
/// its command actors let go (the replica that gets each agent's link picks them up, with
/// their deadlines, from the database). New links are refused from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Handler<Drain> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {
        self.draining = true;
        self.shed(
            "the control plane is restarting; reconnecting",
            "this control-plane replica is shutting down: reconnect",
        );
        log::info!("replica {}: drained", self.replica_id);
    }
}

impl Supervisor {
    /// Lets go of everything live here: viewers are told `viewer_reason` (first, so that is
    /// the reason they get), agents `agent_reason` with the code that makes them reconnect at
    /// once, and command actors stop (the replica that gets each agent drives them).
    fn shed(&mut self, viewer_reason: &str, agent_reason: &str) {
        for (_, OpenedStream { tunnel, .. }) in self.streams.drain() {
            tunnel
                .closed
                .do_send(StreamClosed(viewer_reason.to_owned()));
        }
        for agent_id in self.registry.linked() {
            if let Some(link) = self.registry.remove(&agent_id) {
                link.handle.close.do_send(CloseLink {
                    code: CloseCode::Restart,
                    reason: agent_reason.to_owned(),
                });
            }
        }
        for (_, (_, actor)) in self.commands.drain() {
            actor.do_send(Cancel);
        }
    }
}

impl Handler<ReplicaNotice> for Supervisor {
    type Result = ();

    fn handle(&mut self, notice: ReplicaNotice, ctx: &mut Context<Self>) {
        match notice {
            ReplicaNotice::CommandsPending(agent_id) => {
                if self.registry.link(&agent_id).is_some() {
                    self.pick_up(vec![agent_id], ctx);
                }
            }
            ReplicaNotice::Linked {
                agent_id,
                replica_id,
            } => {
                if replica_id != self.replica_id {
                    self.linked_elsewhere(&agent_id);
                }
            }
            ReplicaNotice::CommandDone(command_id) => self.command_done(command_id, ctx),
            ReplicaNotice::UserChanged(user) => self.users.forget(user),
            ReplicaNotice::AccessEnded {
                user_id,
                session_id,
            } => ctx.notify(CloseStreamsOf {
                user_id,
                session_id,
                reason: match session_id {
                    Some(_) => SHARE_ENDED,
                    None => ACCOUNT_ENDED,
                }
                .into(),
            }),
            ReplicaNotice::Resync => {
                self.users.clear();
                self.resync(ctx)
            }
            ReplicaNotice::DatabaseLost => {
                self.users.clear();
                log::error!(
                    "replica {}: the database does not answer; handing agents and viewers to other replicas",
                    self.replica_id
                );
                self.shed(
                    "this control-plane replica lost its database; reconnecting",
                    "this control-plane replica cannot reach the database: reconnect",
                );
            }
        }
    }
}
