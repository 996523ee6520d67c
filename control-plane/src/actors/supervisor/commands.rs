//! Commands: dispatch from the API, delivery to connections, and their actors' end.

use actix::prelude::*;

use super::Supervisor;
use crate::actors::link_messages::Outgoing;
use crate::actors::supervisor_messages::{CommandDone, LinkOf, SendToAgent};
use std::time::Duration;

use crate::actors::command::{Cancel, CommandActor, LinkLost, Waiter};
use crate::store::commands::CommandRow;

/// A command was persisted: start its actor, which delivers it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dispatch(pub CommandRow);

/// A persisted command whose answer an API request awaits.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ask {
    /// The command.
    pub command: CommandRow,
    /// Gets the result, or the error.
    pub reply: super::Reply,
}

/// How long stream commands may take: a viewer is waiting.
pub const STREAM_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

impl Supervisor {
    /// Starts an actor for a command unless one is running.
    pub(super) fn track(&mut self, command: CommandRow) {
        self.track_notifying(command, None);
    }

    /// Like [`Supervisor::track`], telling `waiter` the outcome.
    pub(super) fn track_notifying(&mut self, command: CommandRow, waiter: Option<Waiter>) {
        let id = command.command_id;
        if self.commands.contains_key(&id) {
            return;
        }
        let agent_id = command.agent_id.clone();
        let actor = CommandActor::new(
            command,
            self.own.clone(),
            self.writes.clone(),
            self.metrics.clone(),
            waiter,
        );
        self.commands.insert(id, (agent_id, actor.start()));
    }

    /// Tells the actors of an agent's commands that its link dropped.
    pub(super) fn link_lost(&mut self, agent_id: &str) {
        for (agent, actor) in self.commands.values() {
            if agent == agent_id {
                actor.do_send(LinkLost);
            }
        }
    }

    /// Stops the actors of an agent's commands without recording anything (their rows went
    /// with the agent, or another replica drives them now).
    pub(super) fn stop_commands_of(&mut self, agent_id: &str) {
        self.commands.retain(|_, (agent, actor)| {
            let keep = agent != agent_id;
            if !keep {
                actor.do_send(Cancel);
            }
            keep
        });
    }
}

impl Handler<Dispatch> for Supervisor {
    type Result = ();

    fn handle(&mut self, Dispatch(command): Dispatch, ctx: &mut Context<Self>) {
        self.route(command, None, ctx);
    }
}

impl Handler<Ask> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Ask, ctx: &mut Context<Self>) {
        self.route(msg.command, Some(msg.reply), ctx);
    }
}

impl Handler<SendToAgent> for Supervisor {
    type Result = Option<String>;

    fn handle(&mut self, msg: SendToAgent, _: &mut Context<Self>) -> Option<String> {
        let link = self.registry.link(&msg.agent_id)?;
        link.handle.outgoing.do_send(Outgoing(msg.message));
        Some(link.conn_id.clone())
    }
}

impl Handler<LinkOf> for Supervisor {
    type Result = Option<String>;

    fn handle(&mut self, LinkOf(agent_id): LinkOf, _: &mut Context<Self>) -> Option<String> {
        self.registry.link(&agent_id).map(|l| l.conn_id.clone())
    }
}

impl Handler<CommandDone> for Supervisor {
    type Result = ();

    fn handle(&mut self, CommandDone(id): CommandDone, _: &mut Context<Self>) {
        self.commands.remove(&id);
    }
}
