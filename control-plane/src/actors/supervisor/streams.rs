//! VNC streams: opened for a viewer on its session's agent, closed when either side leaves.

use actix::prelude::*;
use streamspace_protocol::{Command, ControlMessage, StreamId};
use uuid::Uuid;

use super::Supervisor;
use super::commands::STREAM_COMMAND_TIMEOUT;
use crate::actors::command::Waiter;
use crate::actors::link_messages::{Home, LinkHandle, RegisterStream};
use crate::actors::supervisor_messages::{CloseStream, LinkHome, OpenStream};
use crate::actors::tunnel_messages::{EndViewer, StreamClosed, TunnelHandle};
use crate::store::commands::InsertCommand;

/// A user lost access (disabled, or a share revoked or changed): end their open streams
/// (on one session, or on all) with `reason`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseStreamsOf {
    /// The user.
    pub user_id: Uuid,
    /// Only this session's; every session's when `None`.
    pub session_id: Option<Uuid>,
    /// Told to the viewer.
    pub reason: String,
}

/// What a viewer is told when the owner revokes or changes its share (the same text whichever
/// replica's word arrives first).
pub const SHARE_ENDED: &str = "the owner changed or stopped sharing this desktop with you";
/// What a viewer is told when its account is disabled or deleted.
pub const ACCOUNT_ENDED: &str = "your account was disabled or deleted";

/// A viewer's stream as the Supervisor keeps it: whose, on what, and how to end it.
pub(super) struct OpenedStream {
    pub(super) user_id: Uuid,
    pub(super) session_id: Uuid,
    pub(super) tunnel: TunnelHandle,
}

impl Supervisor {
    /// The next free stream id (never 0, unique among open streams).
    fn allocate_stream(&mut self, opened: OpenedStream) -> StreamId {
        loop {
            self.next_stream = self.next_stream.wrapping_add(1).max(1);
            if let std::collections::hash_map::Entry::Vacant(free) =
                self.streams.entry(self.next_stream)
            {
                free.insert(opened);
                self.metrics.vnc_streams(self.streams.len());
                return self.next_stream;
            }
        }
    }

    /// Persists a stream command and starts its actor.
    fn stream_command(
        &mut self,
        agent_id: String,
        session_id: Uuid,
        command: Command,
        waiter: Option<Waiter>,
        ctx: &mut Context<Self>,
    ) {
        let store = self.store.clone();
        let insert = InsertCommand {
            agent_id,
            session_id: Some(session_id),
            message: ControlMessage::Command {
                command_id: Uuid::new_v4(),
                command,
            },
            timeout: STREAM_COMMAND_TIMEOUT,
        };
        // Spawned, not awaited in the mailbox: every agent's traffic passes through here.
        async move { store.run(insert).await }
            .into_actor(self)
            .map(move |inserted, this, _| match inserted {
                Ok(command) => this.track_notifying(command, waiter),
                Err(e) => {
                    log::error!("cannot persist a stream command: {e}");
                    if let Some(Waiter::Stream(tunnel)) = waiter {
                        tunnel.do_send(StreamClosed(format!(
                            "the control plane cannot reach its database: {e}"
                        )));
                    }
                }
            })
            .spawn(ctx);
    }
}

impl Handler<OpenStream> for Supervisor {
    type Result = Result<(StreamId, LinkHandle), String>;

    fn handle(&mut self, msg: OpenStream, ctx: &mut Context<Self>) -> Self::Result {
        let link = self
            .registry
            .link(&msg.agent_id)
            .map(|l| l.handle.clone())
            .ok_or_else(|| {
                format!(
                    "the agent running this session ({}) is offline",
                    msg.agent_id
                )
            })?;
        let stream_id = self.allocate_stream(OpenedStream {
            user_id: msg.user_id,
            session_id: msg.session_id,
            tunnel: msg.tunnel.clone(),
        });
        link.register.do_send(RegisterStream {
            stream_id,
            tunnel: msg.tunnel.clone(),
        });
        let command = Command::VncConnect {
            session_id: msg.session_id,
            stream_id,
            window: msg.window,
        };
        self.stream_command(
            msg.agent_id,
            msg.session_id,
            command,
            Some(Waiter::Stream(msg.tunnel.closed.clone())),
            ctx,
        );
        Ok((stream_id, link))
    }
}

impl Handler<LinkHome> for Supervisor {
    type Result = Option<Home>;

    fn handle(&mut self, LinkHome(agent_id): LinkHome, _: &mut Context<Self>) -> Option<Home> {
        self.registry.link(&agent_id).map(|l| l.handle.home.clone())
    }
}

impl Handler<CloseStream> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: CloseStream, ctx: &mut Context<Self>) {
        self.streams.remove(&msg.stream_id);
        self.metrics.vnc_streams(self.streams.len());
        if msg.tell_agent && self.registry.link(&msg.agent_id).is_some() {
            let command = Command::VncDisconnect {
                stream_id: msg.stream_id,
                reason: msg.reason,
            };
            self.stream_command(msg.agent_id, msg.session_id, command, None, ctx);
        }
    }
}

impl Handler<CloseStreamsOf> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: CloseStreamsOf, _: &mut Context<Self>) {
        // Each tunnel then stops and sends CloseStream, which frees its id.
        for stream in self.streams.values() {
            if stream.user_id == msg.user_id
                && msg.session_id.is_none_or(|s| s == stream.session_id)
            {
                stream.tunnel.end.do_send(EndViewer(msg.reason.clone()));
            }
        }
    }
}
