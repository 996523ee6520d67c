//! One actor per command in flight: delivers it when its agent is connected, records each
//! answer, and fails it when `COMMAND_TIMEOUT` passes. It stops when the command finishes.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use uuid::Uuid;

use super::batcher::{self, CommandWrites};
use super::supervisor_messages::{CommandDone, LinkOf, SendToAgent, SupervisorHandle};
use super::tunnel_messages::StreamClosed;
use crate::metrics::Metrics;
use crate::store::commands::{CommandRow, Known, RecordReply, Reply, ReplyEffect};

/// (Re)send the command if its agent is connected.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The link this is a redelivery for: skipped if the command already went out on it
    /// (a command created while its agent was saying hello is found by both paths).
    pub link: Option<String>,
}

/// The agent answered.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentReply {
    /// The answering agent (checked against the command's).
    pub agent_id: String,
    /// The answer.
    pub reply: Reply,
}

/// The agent's link dropped. Stream commands die with it (their stream is gone); the others
/// wait for redelivery on reconnect.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkLost;

/// Stop without recording anything (the command's agent was deleted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Cancel;

/// Who waits for a command's outcome.
pub enum Waiter {
    /// A viewer's tunnel, told why if its stream command fails.
    Stream(Recipient<StreamClosed>),
    /// An API request, given the result or the error.
    Reply(tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>),
}

/// A log line about `command`, with its command, agent and session ids as fields.
macro_rules! log_command {
    ($level:ident, $command:expr, $($arg:tt)+) => {{
        let command = &$command;
        match command.session_id {
            Some(session_id) => log::$level!(
                command_id:% = command.command_id, agent_id:% = command.agent_id,
                session_id:% = session_id; $($arg)+
            ),
            None => log::$level!(
                command_id:% = command.command_id, agent_id:% = command.agent_id; $($arg)+
            ),
        }
    }};
}

/// The actor.
pub struct CommandActor {
    command: CommandRow,
    supervisor: SupervisorHandle,
    /// Where its deliveries and answers are recorded.
    writes: CommandWrites,
    metrics: Arc<Metrics>,
    /// Told the outcome when the command finishes.
    waiter: Option<Waiter>,
    /// The agent connection it was last written to.
    delivered_on: Option<String>,
}

impl CommandActor {
    /// An actor for a persisted, unfinished command.
    pub fn new(
        command: CommandRow,
        supervisor: SupervisorHandle,
        writes: CommandWrites,
        metrics: Arc<Metrics>,
        waiter: Option<Waiter>,
    ) -> Self {
        CommandActor {
            command,
            supervisor,
            writes,
            metrics,
            waiter,
            delivered_on: None,
        }
    }

    fn command_id(&self) -> Uuid {
        self.command.command_id
    }

    /// Records a reply; stops the actor once the command is finished. Replies are handled
    /// one at a time (`wait`), so `ack` is never recorded after `completed`.
    fn record(&mut self, agent_id: Option<String>, reply: Reply, ctx: &mut Context<Self>) {
        let query = RecordReply {
            command_id: self.command_id(),
            agent_id,
            reply,
            known: Some(Known {
                command_type: self.command.command_type.clone(),
                session_id: self.command.session_id,
            }),
        };
        let replies = self.writes.replies.clone();
        async move { batcher::submit(&replies, query).await }
            .into_actor(self)
            .map(|result, this, ctx| match result {
                Ok(ReplyEffect::Recorded {
                    command,
                    session_state,
                }) => {
                    log_command!(
                        debug,
                        command,
                        "command {} ({}) is {}{}",
                        command.command_id,
                        command.command_type,
                        command.status,
                        session_state
                            .map(|s| format!("; session now {s}"))
                            .unwrap_or_default()
                    );
                    if command.completed_at.is_some() {
                        match (this.waiter.take(), &command.error) {
                            (Some(Waiter::Stream(tunnel)), Some(error)) => {
                                tunnel.do_send(StreamClosed(error.clone()))
                            }
                            (Some(Waiter::Reply(reply)), Some(error)) => {
                                let _ = reply.send(Err(error.clone()));
                            }
                            (Some(Waiter::Reply(reply)), None) => {
                                let _ = reply.send(Ok(command.result.clone().unwrap_or_default()));
                            }
                            _ => {}
                        }
                        let elapsed = (Utc::now() - command.created_at).num_milliseconds().max(0);
                        this.metrics
                            .observe_command(&command.command_type, elapsed as f64 / 1000.0);
                        ctx.stop();
                    }
                    this.command = *command;
                }
                Ok(ReplyEffect::Duplicate) => {
                    log_command!(
                        debug,
                        this.command,
                        "command {}: duplicate answer ignored",
                        this.command_id()
                    );
                }
                Ok(ReplyEffect::Unknown) => {
                    log_command!(
                        warn,
                        this.command,
                        "command {}: answer from an agent it was not sent to, ignored",
                        this.command_id()
                    );
                }
                Err(e) => log_command!(
                    error,
                    this.command,
                    "command {}: cannot record answer: {e}",
                    this.command_id()
                ),
            })
            .wait(ctx);
    }
}

impl Actor for CommandActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let left = (self.command.timeout_at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        ctx.run_later(left, |this, ctx| {
            log_command!(
                warn,
                this.command,
                "command {} ({}) to agent {} timed out",
                this.command_id(),
                this.command.command_type,
                this.command.agent_id
            );
            this.record(None, Reply::TimedOut, ctx);
        });
        ctx.notify(Deliver { link: None });
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.supervisor
            .command_done
            .do_send(CommandDone(self.command_id()));
        Running::Stop
    }
}

impl Handler<Deliver> for CommandActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        if msg.link.is_some() && msg.link == self.delivered_on {
            return;
        }
        let message = match self.command.message() {
            Ok(message) => message,
            Err(e) => {
                log_command!(
                    error,
                    self.command,
                    "command {}: stored payload unreadable: {e}",
                    self.command_id()
                );
                return self.record(
                    None,
                    Reply::Failed(format!("stored payload unreadable: {e}")),
                    ctx,
                );
            }
        };
        let agent_id = self.command.agent_id.clone();
        let (supervisor, sent, id) = (
            self.supervisor.clone(),
            self.writes.sent.clone(),
            self.command_id(),
        );
        // Waited for (no answer is handled meanwhile). Not sent twice on one link, whichever
        // of the first delivery and a reconnect's redelivery comes first; and `sent_at` is
        // written before the frame leaves, so it never trails the agent's `ack`.
        supervisor
            .link_of
            .send(LinkOf(agent_id.clone()))
            .into_actor(self)
            .then(move |link, this, _| {
                let link = link.ok().flatten();
                let fresh = link.is_some() && link != this.delivered_on;
                async move {
                    if !fresh {
                        return None;
                    }
                    if let Err(e) = batcher::submit(&sent, id).await {
                        log::warn!("command {id}: cannot record its delivery: {e}");
                    }
                    supervisor
                        .send_to_agent
                        .send(SendToAgent { agent_id, message })
                        .await
                        .ok()
                        .flatten()
                }
                .into_actor(this)
            })
            .map(|sent, this, _| {
                if let Some(link) = sent {
                    this.delivered_on = Some(link);
                }
            })
            .wait(ctx);
    }
}

impl Handler<AgentReply> for CommandActor {
    type Result = ();

    fn handle(&mut self, msg: AgentReply, ctx: &mut Context<Self>) {
        self.record(Some(msg.agent_id), msg.reply, ctx);
    }
}

impl Handler<Cancel> for CommandActor {
    type Result = ();

    fn handle(&mut self, _: Cancel, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<LinkLost> for CommandActor {
    type Result = ();

    fn handle(&mut self, _: LinkLost, ctx: &mut Context<Self>) {
        if self.command.command_type.starts_with("vnc_") {
            let reason = "the agent's link to the control plane dropped".to_owned();
            self.record(None, Reply::Failed(reason), ctx);
        }
    }
}
