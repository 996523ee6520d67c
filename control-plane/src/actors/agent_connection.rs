//! One actor per agent WebSocket: reads and checks what the agent sends, forwards it to the
//! Supervisor, writes what the Supervisor sends, and keeps the link alive with pings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason, Message as WsMessage, ProtocolError as WsError};
use bytes::Bytes;
use streamspace_protocol::{
    AgentMessage, Command, ControlMessage, FRAME_HEADER_LEN, Frame, PLATFORMS, PROBE_SINCE,
    PROTOCOL_VERSION, ProtocolError, StreamId,
};
use uuid::Uuid;

use super::link_messages::{
    CloseLink, Home, LinkHandle, LinkRecipients, Outgoing, RegisterStream, SendFrame,
    UnregisterStream,
};
use super::link_streams::LinkStreams;
use super::supervisor_messages::{
    AgentDisconnected, AgentHello, AgentRefused, FromAgent, Seen, SupervisorHandle,
};
use super::tunnel_messages::{StreamClosed, StreamCredit, StreamData, TunnelHandle};
use crate::metrics::{Metrics, SocketKind};
use crate::websocket::{Outbox, Received};

/// How long a new connection may take to say `hello`.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The actor.
pub struct AgentConnection {
    agent_id: String,
    credential_id: Uuid,
    conn_id: String,
    supervisor: SupervisorHandle,
    metrics: Arc<Metrics>,
    ping_interval: Duration,
    // What goes out, in order. Its size is bounded by the protocol: JSON messages are few and
    // small, stream bytes are limited by each stream's credit window, and replies the agent
    // causes by `websocket::MAX_OWED`.
    outbox: Outbox,
    /// Open VNC streams on this link and the viewers they feed.
    streams: LinkStreams<TunnelHandle>,
    /// The agent understands PROBE frames (protocol 1.2 and later).
    probes: bool,
    last_seen_report: Instant,
    greeted: bool,
    closing: bool,
}

impl AgentConnection {
    /// Where the Supervisor and the tunnels send this connection what they have.
    pub fn handle(me: &Addr<AgentConnection>) -> LinkHandle {
        LinkHandle::new(LinkRecipients {
            outgoing: me.clone().recipient(),
            close: me.clone().recipient(),
            register: me.clone().recipient(),
            unregister: me.clone().recipient(),
            frame: me.clone().recipient(),
            home: Home::current(),
        })
    }

    /// Wraps an upgraded WebSocket. `agent_id` and `credential_id` were authenticated before
    /// the upgrade.
    pub fn new(
        agent_id: String,
        credential_id: Uuid,
        outbox: Outbox,
        supervisor: SupervisorHandle,
        metrics: Arc<Metrics>,
        ping_interval: Duration,
    ) -> Self {
        AgentConnection {
            agent_id,
            credential_id,
            conn_id: Uuid::new_v4().to_string(),
            supervisor,
            metrics,
            ping_interval,
            outbox,
            streams: LinkStreams::default(),
            probes: false,
            last_seen_report: Instant::now(),
            greeted: false,
            closing: false,
        }
    }

    fn send(&self, message: &ControlMessage) {
        self.outbox.send(WsMessage::Text(message.to_json().into()));
    }

    /// A reply the agent caused (an error about its message, a pong): an agent that keeps
    /// causing them while never reading is closed.
    fn send_owed(&mut self, ctx: &mut Context<Self>, frame: WsMessage) {
        if !self.outbox.send_owed(frame) {
            self.close(
                ctx,
                CloseCode::Policy,
                "the agent sends faster than it reads our replies",
            );
        }
    }

    fn error_reply(&mut self, ctx: &mut Context<Self>, code: &str, message: String) {
        let text = ControlMessage::Error {
            code: code.into(),
            message,
        }
        .to_json();
        self.send_owed(ctx, WsMessage::Text(text.into()));
    }

    fn close(&mut self, ctx: &mut Context<Self>, code: CloseCode, reason: impl Into<String>) {
        if self.closing {
            return;
        }
        self.closing = true;
        let reason = reason.into();
        log::info!(agent_id:% = self.agent_id; "agent {}: closing link: {reason}", self.agent_id);
        self.outbox.close(Some(CloseReason {
            code,
            description: Some(reason),
        }));
        ctx.stop();
    }

    fn refuse(&mut self, ctx: &mut Context<Self>, reason: impl Into<String>) {
        self.close(ctx, CloseCode::Policy, reason);
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let message = match AgentMessage::from_json(text) {
            Ok(message) => message,
            Err(ProtocolError::TooLarge { size, limit }) => {
                return self.close(
                    ctx,
                    CloseCode::Size,
                    format!("message of {size} bytes exceeds {limit}"),
                );
            }
            Err(e) if !self.greeted => return self.refuse(ctx, format!("expected hello: {e}")),
            Err(e) => {
                log::warn!(agent_id:% = self.agent_id; "agent {}: {e}", self.agent_id);
                return self.error_reply(ctx, "malformed_message", e.to_string());
            }
        };
        match (self.greeted, message) {
            (
                false,
                AgentMessage::Hello {
                    protocol_version,
                    agent_id,
                    platform,
                    region,
                    capacity,
                    sessions,
                    inventory_error,
                },
            ) => {
                self.probes = protocol_version >= PROBE_SINCE;
                if let Err(e) = PROTOCOL_VERSION.check_compatible(protocol_version) {
                    // An authenticated agent that cannot work until someone upgrades it.
                    self.supervisor.refused.do_send(AgentRefused {
                        agent_id: self.agent_id.clone(),
                        reason: e.to_string(),
                    });
                    return self.refuse(ctx, e.to_string());
                }
                if agent_id != self.agent_id {
                    return self.refuse(
                        ctx,
                        format!(
                            "credential is for agent {}, hello says {agent_id}",
                            self.agent_id
                        ),
                    );
                }
                if !PLATFORMS.contains(&platform.as_str()) {
                    return self.refuse(ctx, format!("unknown platform {platform:?}"));
                }
                let hello = AgentHello {
                    agent_id,
                    conn_id: self.conn_id.clone(),
                    credential_id: self.credential_id,
                    platform,
                    region,
                    capacity,
                    // An agent that could not list its sessions says why; its empty list
                    // must not make every session it holds look lost.
                    sessions: match inventory_error {
                        None => Ok(sessions),
                        Some(why) => Err(why),
                    },
                    link: AgentConnection::handle(&ctx.address()),
                };
                // Hold further messages until the Supervisor has registered us, so nothing
                // the agent sends overtakes its own hello.
                self.supervisor
                    .hello
                    .send(hello)
                    .into_actor(self)
                    .map(|result, this, ctx| match result {
                        Ok(Ok(())) => this.greeted = true,
                        Ok(Err(reason)) => this.refuse(ctx, reason),
                        Err(_) => {
                            this.close(ctx, CloseCode::Error, "control plane is shutting down")
                        }
                    })
                    .wait(ctx);
            }
            (false, _) => self.refuse(ctx, "expected hello as the first message"),
            (true, AgentMessage::Hello { .. }) => self.error_reply(
                ctx,
                "already_greeted",
                "hello was already received on this connection".into(),
            ),
            (true, AgentMessage::VncDisconnect { stream_id, reason }) => {
                self.seen();
                if let Some(tunnel) = self.streams.remove(stream_id) {
                    tunnel.closed.do_send(StreamClosed(reason));
                }
            }
            (true, AgentMessage::Unknown) => {
                log::debug!(
                    agent_id:% = self.agent_id;
                    "agent {}: ignoring a message of unknown type",
                    self.agent_id
                );
            }
            (true, message) => self.supervisor.from_agent.do_send(FromAgent {
                agent_id: self.agent_id.clone(),
                conn_id: self.conn_id.clone(),
                message,
            }),
        }
    }
}

impl Actor for AgentConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.metrics.socket_opened(SocketKind::Agent);
        ctx.run_later(HELLO_TIMEOUT, |this, ctx| {
            if !this.greeted {
                this.refuse(ctx, format!("no hello within {}s", HELLO_TIMEOUT.as_secs()));
            }
        });
        ctx.run_interval(self.ping_interval, |this, _| {
            this.outbox.send(WsMessage::Ping(Default::default()));
            this.probe_streams();
        });
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.metrics.socket_closed(SocketKind::Agent);
        for tunnel in self.streams.drain() {
            tunnel.closed.do_send(StreamClosed(
                "the agent's link to the control plane dropped".into(),
            ));
        }
        if self.greeted {
            self.supervisor.disconnected.do_send(AgentDisconnected {
                agent_id: self.agent_id.clone(),
                conn_id: self.conn_id.clone(),
            });
        }
        Running::Stop
    }
}

impl Handler<Outgoing> for AgentConnection {
    type Result = ();
    fn handle(&mut self, Outgoing(message): Outgoing, _: &mut Context<Self>) {
        self.send(&message);
        if let ControlMessage::Command {
            command: Command::VncConnect { stream_id, .. },
            ..
        } = message
        {
            for frame in self.streams.announced(stream_id) {
                self.send_frame(frame);
            }
        }
    }
}

impl Handler<RegisterStream> for AgentConnection {
    type Result = ();
    fn handle(&mut self, msg: RegisterStream, _: &mut Context<Self>) {
        self.streams.register(msg.stream_id, msg.tunnel);
    }
}

impl Handler<UnregisterStream> for AgentConnection {
    type Result = ();
    fn handle(&mut self, UnregisterStream(stream_id): UnregisterStream, _: &mut Context<Self>) {
        self.streams.remove(stream_id);
    }
}

impl Handler<SendFrame> for AgentConnection {
    type Result = ();
    fn handle(&mut self, SendFrame(bytes): SendFrame, _: &mut Context<Self>) {
        let frame = match Frame::decode(&bytes).map(|f| f.stream_id()) {
            Ok(stream_id) => self.streams.outgoing(stream_id, bytes),
            Err(_) => Some(bytes),
        };
        if let Some(frame) = frame {
            self.send_frame(frame);
        }
    }
}

impl Handler<CloseLink> for AgentConnection {
    type Result = ();
    fn handle(&mut self, msg: CloseLink, ctx: &mut Context<Self>) {
        self.close(ctx, msg.code, msg.reason);
    }
}

impl StreamHandler<Result<Received, WsError>> for AgentConnection {
    fn handle(&mut self, item: Result<Received, WsError>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        match item {
            Ok(Received::Text(text)) => self.on_text(&text, ctx),
            Ok(Received::Binary(_)) if !self.greeted => {
                self.refuse(ctx, "expected hello as the first message")
            }
            Ok(Received::Binary(bytes)) => {
                self.seen();
                self.on_frame(bytes, ctx);
            }
            Ok(Received::Ping(bytes)) => {
                self.send_owed(ctx, WsMessage::Pong(bytes));
            }
            Ok(Received::Pong(_)) => self.seen(),
            Ok(Received::Close(reason)) => {
                log::info!(agent_id:% = self.agent_id; "agent {} closed its link: {reason:?}", self.agent_id);
                self.closing = true;
                self.outbox.close(Some(CloseReason {
                    code: CloseCode::Normal,
                    description: None,
                }));
                ctx.stop();
            }
            Err(WsError::Overflow) => self.close(ctx, CloseCode::Size, "frame too large"),
            Err(e) => self.close(ctx, CloseCode::Protocol, format!("protocol error: {e}")),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The TCP connection ended.
        ctx.stop();
    }
}

impl AgentConnection {
    /// Routes a binary stream frame to its viewer. A frame for a stream this side does not
    /// have is answered with a RESET, so the agent closes its end (and its port-forward)
    /// instead of keeping an orphan open.
    fn on_frame(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        match Frame::decode(&bytes) {
            Ok(Frame::Data { stream_id, .. }) => match self.streams.get(stream_id) {
                Some(tunnel) => tunnel
                    .data
                    .do_send(StreamData(bytes.slice(FRAME_HEADER_LEN..))),
                None => self.reset(ctx, stream_id),
            },
            Ok(Frame::Credit { stream_id, bytes }) => match self.streams.get(stream_id) {
                Some(tunnel) => tunnel.credit.do_send(StreamCredit(bytes)),
                None => self.reset(ctx, stream_id),
            },
            Ok(Frame::Probe { stream_id }) => {
                if !self.streams.contains(stream_id) {
                    self.reset(ctx, stream_id);
                }
            }
            Ok(Frame::Reset { stream_id }) => {
                if let Some(tunnel) = self.streams.remove(stream_id) {
                    tunnel
                        .closed
                        .do_send(StreamClosed("the agent no longer has this stream".into()));
                }
            }
            Err(e) => {
                log::warn!(agent_id:% = self.agent_id; "agent {}: bad stream frame: {e}", self.agent_id);
                self.error_reply(ctx, "bad_frame", e.to_string());
            }
        }
    }

    /// Asks the agent whether it still has each stream it was told of an interval or more
    /// ago (younger ones may still be opening there): one it lost without a word answers
    /// RESET, which closes the viewer, even when no byte flows to reveal it.
    fn probe_streams(&self) {
        if !self.probes {
            return;
        }
        for stream_id in self.streams.known_for(self.ping_interval) {
            self.send_frame(Frame::Probe { stream_id }.encode());
        }
    }

    fn send_frame(&self, frame: Vec<u8>) {
        self.outbox.send(WsMessage::Binary(frame.into()));
    }

    fn reset(&mut self, ctx: &mut Context<Self>, stream_id: StreamId) {
        let frame = Frame::Reset { stream_id }.encode();
        self.send_owed(ctx, WsMessage::Binary(frame.into()));
    }

    /// Anything from the agent proves it alive, pongs included. Reported at most once a
    /// second, so stream traffic does not flood the Supervisor.
    fn seen(&mut self) {
        if self.greeted && self.last_seen_report.elapsed() >= Duration::from_secs(1) {
            self.last_seen_report = Instant::now();
            self.supervisor.seen.do_send(Seen {
                agent_id: self.agent_id.clone(),
                conn_id: self.conn_id.clone(),
            });
        }
    }
}
