//! The agent's one link to the control plane: dials out, says `hello` with the sessions it
//! holds, carries out commands (once per id), sends heartbeats, routes stream frames to the
//! tunnels, and reconnects forever with jittered exponential backoff.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use awc::BoxedSocket;
use awc::error::WsProtocolError;
use awc::ws::{CloseCode, CloseReason, Frame as WsFrame, Message as WsMessage};
use futures_util::stream::{SplitSink, StreamExt};
use streamspace_protocol::{
    AgentMessage, Capacity, Command, ControlMessage, FRAME_HEADER_LEN, Frame, MAX_FRAME_PAYLOAD,
    MAX_TEXT_MESSAGE, PROBE_SINCE, PROTOCOL_VERSION, StreamId,
};
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::command_book::{CommandBook, Seen};
use crate::config::Config;
use crate::link_codec::{LinkCodec, Out};
use crate::link_messages::{LinkHandle, SendData, SendFrame, SendMessage, TunnelGone};
use crate::runtime::{LIST_DEADLINE, OPEN_DEADLINE, Runtime, listed, within};
use crate::tunnel::{self, Tunnel};

type WsSink = SplitSink<actix_codec::Framed<BoxedSocket, LinkCodec>, Out>;

/// Heartbeats until `welcome` says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// SIGTERM: refuse new work, close tunnels, say goodbye, close the link.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// A frame from the connection of generation `.0`; `None` once that connection ended.
struct Incoming(u64, Option<Result<WsFrame, WsProtocolError>>);

/// The runtime saw a session change behind the agent's back.
struct RuntimeChanged;

/// The actor.
pub struct ControlPlaneLink {
    config: Arc<Config>,
    runtime: Arc<dyn Runtime>,
    linked: Arc<AtomicBool>,
    sink: Option<SinkWrite<Out, WsSink>>,
    generation: u64,
    backoff: Backoff,
    /// The control plane closed the link because it restarts: dial again without waiting.
    reconnect_at_once: bool,
    heartbeat: Option<SpawnHandle>,
    reconcile: Option<SpawnHandle>,
    /// When the control plane was last heard from (it pings every heartbeat interval): a
    /// link silent for two intervals is half-open and is dropped.
    last_heard: std::time::Instant,
    commands: CommandBook,
    /// Open VNC streams and the session each belongs to.
    tunnels: HashMap<StreamId, (Uuid, Addr<Tunnel>)>,
    /// Streams whose VNC connection is being opened, and those of them the control plane
    /// closed meanwhile (the viewer left): those are dropped once open, never orphaned.
    opening: HashSet<StreamId>,
    cancelled: HashSet<StreamId>,
    stream_window: u32,
    /// The control plane understands PROBE frames (protocol 1.2 and later).
    probes: bool,
    shutting_down: bool,
    /// Fired when the link is down after a shutdown began.
    on_closed: Option<tokio::sync::oneshot::Sender<()>>,
    /// Sessions in the runtime's last list, for heartbeats: they never wait for the runtime.
    active_sessions: u32,
}

impl ControlPlaneLink {
    /// A link that reports its state through `linked` (for the readiness probe).
    pub fn new(config: Arc<Config>, runtime: Arc<dyn Runtime>, linked: Arc<AtomicBool>) -> Self {
        ControlPlaneLink {
            config,
            runtime,
            linked,
            sink: None,
            generation: 0,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
            reconnect_at_once: false,
            heartbeat: None,
            reconcile: None,
            last_heard: std::time::Instant::now(),
            commands: CommandBook::default(),
            tunnels: HashMap::new(),
            opening: HashSet::new(),
            cancelled: HashSet::new(),
            stream_window: streamspace_protocol::DEFAULT_STREAM_WINDOW,
            probes: false,
            shutting_down: false,
            on_closed: None,
            active_sessions: 0,
        }
    }

    fn url(&self) -> String {
        format!(
            "{}/api/v1/agent/connect?agent_id={}",
            self.config.control_plane_url, self.config.agent_id
        )
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let client = awc::Client::builder()
            .connector(awc::Connector::new().connector(nodelay_connector()))
            .timeout(Duration::from_secs(10))
            .max_http_version(awc::http::Version::HTTP_11)
            .finish();
        let mut request = client
            .ws(self.url())
            .max_frame_size(MAX_TEXT_MESSAGE.max(FRAME_HEADER_LEN + MAX_FRAME_PAYLOAD));
        if let Some(token) = &self.config.agent_token {
            request = request.bearer_auth(token);
        }
        let runtime = self.runtime.clone();
        let control_plane = self.config.control_plane_url.clone();
        async move {
            // The inventory goes in hello, so the control plane can reconcile at once. It is
            // read before dialling, so a slow runtime cannot run past the hello deadline.
            // A runtime that cannot list (e.g. no permission in its namespace) does not keep
            // the agent offline: the hello says why, and sessions fail with the reason.
            let (sessions, inventory_error) = match listed(LIST_DEADLINE, runtime.list()).await {
                Ok(sessions) => (sessions, None),
                Err(e) => {
                    log::warn!("cannot list this agent's sessions: {e}");
                    (Vec::new(), Some(e))
                }
            };
            let (_, framed) = request
                .connect()
                .await
                .map_err(|e| format!("cannot reach the control plane at {control_plane}: {e}"))?;
            Ok::<_, String>((framed, sessions, inventory_error))
        }
        .into_actor(self)
        .map(|result, this, ctx| match result {
            Ok((framed, sessions, inventory_error)) => {
                this.generation += 1;
                let generation = this.generation;
                let (sink, stream) = framed.into_map_codec(LinkCodec).split();
                this.sink = Some(SinkWrite::new(sink, ctx));
                ctx.add_stream(
                    stream
                        .map(move |item| Incoming(generation, Some(item)))
                        .chain(futures_util::stream::once(async move {
                            Incoming(generation, None)
                        })),
                );
                if inventory_error.is_none() {
                    this.active_sessions = count(&sessions);
                }
                let hello = AgentMessage::Hello {
                    protocol_version: PROTOCOL_VERSION,
                    agent_id: this.config.agent_id.clone(),
                    platform: this.config.platform.as_str().into(),
                    region: this.config.region.clone(),
                    capacity: Capacity {
                        max_sessions: this.runtime.max_sessions(),
                        cpu: None,
                        memory: None,
                    },
                    sessions,
                    inventory_error,
                };
                this.send(&hello);
            }
            Err(e) => {
                log::warn!("{e}");
                this.retry(ctx);
            }
        })
        .spawn(ctx);
    }

    fn retry(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        let delay = if std::mem::take(&mut self.reconnect_at_once) {
            Duration::ZERO
        } else {
            self.backoff.next_delay()
        };
        log::info!("reconnecting in {} ms", delay.as_millis());
        ctx.run_later(delay, |this, ctx| this.connect(ctx));
    }

    fn disconnected(&mut self, ctx: &mut Context<Self>) {
        self.sink = None;
        self.linked.store(false, Ordering::Relaxed);
        for handle in [self.heartbeat.take(), self.reconcile.take()]
            .into_iter()
            .flatten()
        {
            ctx.cancel_future(handle);
        }
        // The control plane's side of every stream died with the link, including those
        // still opening.
        self.cancelled.extend(self.opening.iter().copied());
        for (_, (_, tunnel)) in self.tunnels.drain() {
            tunnel.do_send(tunnel::Close);
        }
        if self.shutting_down {
            if let Some(done) = self.on_closed.take() {
                let _ = done.send(());
            }
            ctx.stop();
        } else {
            self.retry(ctx);
        }
    }

    /// The connection went silent without closing (a half-open TCP connection, a frozen
    /// control plane): give up on it and dial again at once.
    fn drop_silent_link(&mut self, silent: Duration, ctx: &mut Context<Self>) {
        log::warn!(
            "the control plane has been silent for {} ms; reconnecting",
            silent.as_millis()
        );
        // Whatever the old connection still delivers is ignored from now on.
        self.generation += 1;
        self.backoff.reset();
        self.disconnected(ctx);
    }

    fn send(&mut self, message: &AgentMessage) {
        if let Some(sink) = &mut self.sink {
            let _ = sink.write(WsMessage::Text(message.to_json().into()).into());
        }
    }

    fn on_control(&mut self, message: ControlMessage, ctx: &mut Context<Self>) {
        match message {
            ControlMessage::Welcome {
                protocol_version,
                heartbeat_interval_ms,
                stream_window,
            } => {
                self.probes = protocol_version >= PROBE_SINCE;
                log::info!(
                    "linked to the control plane at {}",
                    self.config.control_plane_url
                );
                self.linked.store(true, Ordering::Relaxed);
                crate::metrics::METRICS.linked();
                self.backoff.reset();
                self.stream_window = stream_window;
                let every = match heartbeat_interval_ms {
                    0 => DEFAULT_HEARTBEAT,
                    ms => Duration::from_millis(ms.max(100)),
                };
                if let Some(handle) = self.heartbeat.take() {
                    ctx.cancel_future(handle);
                }
                if let Some(handle) = self.reconcile.take() {
                    ctx.cancel_future(handle);
                }
                self.reconcile = Some(
                    ctx.run_interval(self.config.reconcile_interval, |this, ctx| {
                        this.send_inventory(ctx)
                    }),
                );
                self.last_heard = std::time::Instant::now();
                self.heartbeat = Some(ctx.run_interval(every, move |this, ctx| {
                    if this.last_heard.elapsed() > every * 2 {
                        return this.drop_silent_link(every * 2, ctx);
                    }
                    this.probe_tunnels();
                    let active_sessions = this.active_sessions;
                    this.send(&AgentMessage::Heartbeat { active_sessions });
                }));
            }
            ControlMessage::Command {
                command_id,
                command,
            } => self.on_command(command_id, command, ctx),
            ControlMessage::Error { code, message } => {
                log::warn!("control plane rejected a message: {code}: {message}");
            }
            ControlMessage::Unknown => log::debug!("ignoring a control message of unknown type"),
        }
    }

    /// Asks the control plane whether it still has each open stream: one it lost without a
    /// word answers RESET, which closes the tunnel and its port-forward, even when no byte
    /// flows to reveal it.
    fn probe_tunnels(&mut self) {
        if !self.probes {
            return;
        }
        let Some(sink) = &mut self.sink else {
            return;
        };
        for stream_id in self.tunnels.keys() {
            let frame = Frame::Probe {
                stream_id: *stream_id,
            };
            let _ = sink.write(WsMessage::Binary(frame.encode().into()).into());
        }
    }

    /// A frame came for a stream we do not have (still opening ones excepted): say so.
    fn reset(&mut self, stream_id: StreamId) {
        if self.opening.contains(&stream_id) {
            return;
        }
        if let Some(sink) = &mut self.sink {
            let _ =
                sink.write(WsMessage::Binary(Frame::Reset { stream_id }.encode().into()).into());
        }
    }

    /// Reports every session the runtime holds, for the control plane to reconcile.
    fn send_inventory(&mut self, ctx: &mut Context<Self>) {
        let runtime = self.runtime.clone();
        async move { listed(LIST_DEADLINE, runtime.inventory()).await }
            .into_actor(self)
            .map(|listed, this, _| match listed {
                Ok(sessions) => {
                    this.active_sessions = count(&sessions);
                    this.send(&AgentMessage::Inventory { sessions });
                }
                Err(e) => log::warn!("cannot list this agent's sessions: {e}"),
            })
            .spawn(ctx);
    }

    fn on_command(&mut self, command_id: Uuid, command: Command, ctx: &mut Context<Self>) {
        match self.commands.begin(command_id) {
            Seen::Running => return self.send(&AgentMessage::Ack { command_id }),
            Seen::Answered(answer) => return self.send(&answer),
            Seen::New => {}
        }
        self.send(&AgentMessage::Ack { command_id });
        if self.shutting_down {
            return self.answer(command_id, Err("the agent is shutting down".into()));
        }
        log::info!("command {command_id}: {}", command.name());
        let runtime = self.runtime.clone();
        match command {
            Command::VncConnect {
                session_id,
                stream_id,
                window,
            } => {
                self.opening.insert(stream_id);
                async move {
                    let failure = "the desktop's VNC server could not be reached";
                    within(OPEN_DEADLINE, failure, runtime.open_vnc(session_id)).await
                }
                .into_actor(self)
                .map(move |opened, this, ctx| {
                    this.opening.remove(&stream_id);
                    if this.cancelled.remove(&stream_id) {
                        // Dropping the connection closes it (and its port-forward).
                        log::info!("stream {stream_id}: the viewer left while it opened");
                        let error = "the viewer left before the stream opened";
                        return this.answer(command_id, Err(error.into()));
                    }
                    match opened {
                        Ok(vnc) => {
                            let tunnel =
                                Tunnel::new(stream_id, window, vnc, link_handle(ctx)).start();
                            if let Some((_, old)) =
                                this.tunnels.insert(stream_id, (session_id, tunnel))
                            {
                                old.do_send(tunnel::Close);
                            }
                            this.answer(
                                command_id,
                                Ok(serde_json::json!({ "stream_id": stream_id })),
                            );
                        }
                        Err(e) => this.answer(command_id, Err(e)),
                    }
                })
                .spawn(ctx);
            }
            Command::VncDisconnect { stream_id, reason } => {
                log::info!("stream {stream_id} closed by the control plane: {reason}");
                if let Some((_, tunnel)) = self.tunnels.remove(&stream_id) {
                    tunnel.do_send(tunnel::Close);
                } else if self.opening.contains(&stream_id) {
                    self.cancelled.insert(stream_id);
                }
                self.answer(command_id, Ok(serde_json::json!({})));
            }
            Command::DeleteSession { session_id, .. } => {
                // Its viewers end with the session, whatever the runtime does to the
                // connection behind them.
                let streams: Vec<StreamId> = self
                    .tunnels
                    .iter()
                    .filter(|(_, (session, _))| *session == session_id)
                    .map(|(stream_id, _)| *stream_id)
                    .collect();
                for stream_id in streams {
                    if let Some((_, tunnel)) = self.tunnels.remove(&stream_id) {
                        tunnel.do_send(tunnel::End("the session was deleted".into()));
                    }
                }
                async move { run(runtime.as_ref(), command).await }
                    .into_actor(self)
                    .map(move |result, this, _| this.answer(command_id, result))
                    .spawn(ctx);
            }
            other => {
                async move { run(runtime.as_ref(), other).await }
                    .into_actor(self)
                    .map(move |result, this, _| this.answer(command_id, result))
                    .spawn(ctx);
            }
        }
    }

    fn answer(&mut self, command_id: Uuid, result: Result<serde_json::Value, String>) {
        let answer = match result {
            Ok(result) => AgentMessage::Completed { command_id, result },
            Err(error) => {
                log::warn!("command {command_id} failed: {error}");
                AgentMessage::Failed { command_id, error }
            }
        };
        self.send(&answer);
        self.commands.finish(command_id, answer);
    }

    fn on_binary(&mut self, bytes: bytes::Bytes) {
        match Frame::decode(&bytes) {
            Ok(Frame::Data { stream_id, .. }) => match self.tunnels.get(&stream_id) {
                Some((_, tunnel)) => {
                    // A view of the received buffer: no copy on the data path.
                    tunnel.do_send(tunnel::Data(bytes.slice(FRAME_HEADER_LEN..)))
                }
                None => self.reset(stream_id),
            },
            Ok(Frame::Credit { stream_id, bytes }) => match self.tunnels.get(&stream_id) {
                Some((_, tunnel)) => tunnel.do_send(tunnel::Credit(bytes)),
                None => self.reset(stream_id),
            },
            Ok(Frame::Probe { stream_id }) => {
                if !self.tunnels.contains_key(&stream_id) {
                    self.reset(stream_id);
                }
            }
            // The control plane has no viewer for it: close our end.
            Ok(Frame::Reset { stream_id }) => {
                if let Some((_, tunnel)) = self.tunnels.remove(&stream_id) {
                    log::info!("stream {stream_id} reset by the control plane");
                    tunnel.do_send(tunnel::Close);
                }
            }
            Err(e) => log::warn!("bad stream frame from the control plane: {e}"),
        }
    }
}

/// TCP connections with Nagle's algorithm off: acks, credits and keystrokes are tiny, and
/// holding them back for the peer's delayed ACK (~40 ms) would stall commands and streams.
/// (Public for the benchmark's simulated agents, which must not be slower than this one.)
pub fn nodelay_connector() -> impl actix_service::Service<
    actix_tls::connect::ConnectInfo<awc::http::Uri>,
    Response = actix_tls::connect::Connection<awc::http::Uri, tokio::net::TcpStream>,
    Error = actix_tls::connect::ConnectError,
> + Clone {
    use actix_service::ServiceExt;
    actix_tls::connect::Connector::default().service().map(
        |connection: actix_tls::connect::Connection<awc::http::Uri, tokio::net::TcpStream>| {
            let _ = connection.io_ref().set_nodelay(true);
            connection
        },
    )
}

fn count(sessions: &[streamspace_protocol::SessionReport]) -> u32 {
    u32::try_from(sessions.len()).unwrap_or(u32::MAX)
}

/// Carries out the commands that only need the runtime.
async fn run(runtime: &dyn Runtime, command: Command) -> Result<serde_json::Value, String> {
    let operation = command.name();
    let started = std::time::Instant::now();
    let result = call(runtime, command).await;
    crate::metrics::METRICS.runtime_call(operation, started.elapsed(), result.is_ok());
    result
}

async fn call(runtime: &dyn Runtime, command: Command) -> Result<serde_json::Value, String> {
    let value = |v| serde_json::to_value(v).map_err(|e| e.to_string());
    match command {
        Command::CreateSession(spec) => {
            value(runtime.create(&spec).await.map_err(|e| e.to_string())?)
        }
        Command::DeleteSession {
            session_id,
            keep_home,
        } => {
            runtime
                .delete(session_id, keep_home)
                .await
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({}))
        }
        Command::DeleteHome { home_id } => {
            runtime
                .delete_home(home_id)
                .await
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({}))
        }
        Command::ListSessions => {
            let sessions = listed(LIST_DEADLINE, runtime.list()).await?;
            Ok(serde_json::json!({ "sessions": sessions }))
        }
        Command::GetSession { session_id } => {
            value(runtime.get(session_id).await.map_err(|e| e.to_string())?)
        }
        Command::VncConnect { .. } | Command::VncDisconnect { .. } => {
            Err("handled by the link".into())
        }
    }
}

impl Actor for ControlPlaneLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(changes) = self.runtime.changes() {
            ctx.add_stream(changes.map(|()| RuntimeChanged));
        }
        self.connect(ctx);
    }
}

impl StreamHandler<RuntimeChanged> for ControlPlaneLink {
    fn handle(&mut self, _: RuntimeChanged, ctx: &mut Context<Self>) {
        if self.linked.load(Ordering::Relaxed) {
            self.send_inventory(ctx);
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        // The runtime stopped watching; the periodic inventory still reconciles.
    }
}

impl StreamHandler<Incoming> for ControlPlaneLink {
    fn handle(&mut self, Incoming(generation, item): Incoming, ctx: &mut Context<Self>) {
        if generation != self.generation {
            return; // a previous connection's leftovers
        }
        if matches!(item, Some(Ok(_))) {
            self.last_heard = std::time::Instant::now();
        }
        match item {
            Some(Ok(WsFrame::Text(bytes))) => match std::str::from_utf8(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|text| ControlMessage::from_json(text).map_err(|e| e.to_string()))
            {
                Ok(message) => self.on_control(message, ctx),
                Err(e) => log::warn!("unreadable message from the control plane: {e}"),
            },
            Some(Ok(WsFrame::Binary(bytes))) => self.on_binary(bytes),
            Some(Ok(WsFrame::Ping(bytes))) => {
                if let Some(sink) = &mut self.sink {
                    let _ = sink.write(WsMessage::Pong(bytes).into());
                }
            }
            Some(Ok(WsFrame::Close(reason))) => {
                // A control-plane replica shutting down: another one takes the link now.
                self.reconnect_at_once = reason
                    .as_ref()
                    .is_some_and(|r| r.code == CloseCode::Restart);
                let why = reason
                    .and_then(|r| r.description)
                    .unwrap_or_else(|| "no reason given".into());
                if self.shutting_down {
                    log::info!("the control plane acknowledged the goodbye");
                } else {
                    log::warn!("the control plane closed the link: {why}");
                    if let Some(sink) = &mut self.sink {
                        let _ = sink.write(WsMessage::Close(None).into());
                    }
                }
                if let Some(sink) = &mut self.sink {
                    sink.close();
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => log::warn!("link error: {e}"),
            None => {
                self.generation += 1;
                self.disconnected(ctx);
            }
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        // Each connection's stream ends with `Incoming(_, None)`; the actor lives on.
    }
}

impl WriteHandler<WsProtocolError> for ControlPlaneLink {
    fn error(&mut self, err: WsProtocolError, _: &mut Context<Self>) -> Running {
        log::warn!("cannot write to the control plane: {err}");
        Running::Continue
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Where a tunnel sends what it has for the control plane: this link.
fn link_handle(ctx: &Context<ControlPlaneLink>) -> LinkHandle {
    let me = ctx.address();
    LinkHandle {
        message: me.clone().recipient(),
        frame: me.clone().recipient(),
        data: me.clone().recipient(),
        gone: me.recipient(),
    }
}

impl Handler<SendMessage> for ControlPlaneLink {
    type Result = ();
    fn handle(&mut self, SendMessage(message): SendMessage, _: &mut Context<Self>) {
        self.send(&message);
    }
}

impl Handler<SendFrame> for ControlPlaneLink {
    type Result = ();
    fn handle(&mut self, SendFrame(bytes): SendFrame, _: &mut Context<Self>) {
        if let Some(sink) = &mut self.sink {
            let _ = sink.write(WsMessage::Binary(bytes.into()).into());
        }
    }
}

impl Handler<SendData> for ControlPlaneLink {
    type Result = ();
    fn handle(&mut self, SendData(frame): SendData, _: &mut Context<Self>) {
        if let Some(sink) = &mut self.sink {
            let _ = sink.write(Out::Roomy(frame));
        }
    }
}

impl Handler<TunnelGone> for ControlPlaneLink {
    type Result = ();
    fn handle(&mut self, TunnelGone(stream_id): TunnelGone, _: &mut Context<Self>) {
        self.tunnels.remove(&stream_id);
    }
}

impl Handler<Shutdown> for ControlPlaneLink {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        for (stream_id, (_, tunnel)) in self.tunnels.drain() {
            tunnel.do_send(tunnel::Close);
            let reason = "the agent is shutting down".to_owned();
            let message = AgentMessage::VncDisconnect { stream_id, reason };
            if let Some(sink) = &mut self.sink {
                let _ = sink.write(WsMessage::Text(message.to_json().into()).into());
            }
        }
        self.send(&AgentMessage::Goodbye {
            reason: "agent shutting down (SIGTERM)".into(),
        });
        let (done, closed) = tokio::sync::oneshot::channel();
        match &mut self.sink {
            Some(sink) => {
                // The control plane answers our close with its own and hangs up; waiting for
                // that is what guarantees the goodbye was read, not just written.
                let _ = sink.write(
                    WsMessage::Close(Some(CloseReason {
                        code: CloseCode::Away,
                        description: Some("agent shutting down".into()),
                    }))
                    .into(),
                );
                self.on_closed = Some(done);
            }
            None => {
                let _ = done.send(());
                ctx.stop();
            }
        }
        Box::pin(
            async move {
                let _ = tokio::time::timeout(Duration::from_secs(3), closed).await;
            }
            .into_actor(self),
        )
    }
}
