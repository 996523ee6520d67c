//! One actor per browser viewer: relays the viewer's WebSocket and one stream on the agent's
//! link, unmodified, in both directions, under the stream's credit windows.
//!
//! Every viewer's bytes are read as RFB messages ([`RfbInput`]): a view-only viewer's keyboard,
//! pointer and clipboard are dropped there and never reach the desktop; a controlling
//! viewer's input stamps the session as in use (its idle timeout starts again).
//!
//! Agent → viewer: the agent never has more than `window` bytes in flight; we grant credit
//! back only as the viewer's socket takes bytes (see [`super::viewer_writer`]), so a slow
//! viewer holds at most one window here and stalls only its own stream. Viewer → agent: we send only with credit; what the
//! viewer sends beyond that waits here, up to one window, and a viewer that overruns even
//! that is disconnected.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason, ProtocolError as WsError};

use crate::websocket::{Owed, Received};
use bytes::Bytes;
use streamspace_protocol::{
    DEFAULT_STREAM_WINDOW, Frame, RecvWindow, RfbInput, SendWindow, StreamId,
};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::link_messages::{LinkHandle, SendFrame, UnregisterStream};
use super::supervisor_messages::{CloseStream, OpenStream, SupervisorHandle};
pub use super::tunnel_messages::{EndViewer, StreamClosed, StreamCredit, StreamData, TunnelHandle};
use super::viewer_writer::ToViewer;
use crate::metrics::{Metrics, SocketKind};
use crate::model::ShareMode;
use crate::recording::{Recorder, RecordingOf};
use crate::store::StoreHandle;
use crate::store::audit::{NewAuditEntry, Record};
use crate::store::sessions::SessionInput;
use crate::store::shares::{ViewerJoined, ViewerLeft, ViewerRow};

/// A controlling viewer's input is recorded on its session at most this often.
const INPUT_STAMP_EVERY: Duration = Duration::from_secs(1);

/// The viewer's socket took this many RFB bytes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Written(pub usize);

/// Who is watching what.
pub struct Viewer {
    /// The session.
    pub session_id: Uuid,
    /// The agent holding it.
    pub agent_id: String,
    /// The user.
    pub user_id: Uuid,
    /// Their name.
    pub username: String,
    /// Their address.
    pub ip: Option<String>,
    /// What they may do.
    pub mode: ShareMode,
    /// The replica carrying the stream (this one).
    pub replica_id: Uuid,
    /// Record the stream into this directory (`RECORDING_DIR`), when its template says so.
    pub record_to: Option<std::path::PathBuf>,
}

/// The actor.
pub struct VncTunnel {
    viewer: Viewer,
    supervisor: SupervisorHandle,
    store: StoreHandle,
    metrics: Arc<Metrics>,
    outbox: mpsc::UnboundedSender<ToViewer>,
    /// Pongs queued for the viewer and not yet written.
    owed: Owed,
    /// Set once the agent accepted the stream.
    link: Option<(StreamId, LinkHandle)>,
    to_agent: SendWindow,
    /// Viewer bytes waiting for credit (at most one window).
    pending: VecDeque<Bytes>,
    pending_len: usize,
    from_agent: RecvWindow,
    bytes_to_viewer: u64,
    bytes_from_viewer: u64,
    opened_at: Instant,
    end_reason: Option<String>,
    agent_ended: bool,
    /// The viewer is pinged this often and dropped when silent for two of these: a browser
    /// that vanished without closing (a half-open connection) must not hold a stream.
    ping_interval: Duration,
    last_heard: Instant,
    /// Reads the viewer's messages (and drops a view-only viewer's input).
    input: RfbInput,
    /// When this viewer's input was last recorded on the session.
    input_stamped: Option<Instant>,
    /// The desktop's bytes to this viewer, recorded.
    recorder: Option<Recorder>,
    /// This connection, as the list of viewers shows it.
    connection: Uuid,
}

impl VncTunnel {
    /// Where the agent's connection, the commands and the Supervisor send this tunnel what
    /// they have.
    pub fn handle(me: &Addr<VncTunnel>) -> TunnelHandle {
        TunnelHandle {
            data: me.clone().recipient(),
            credit: me.clone().recipient(),
            closed: me.clone().recipient(),
            end: me.clone().recipient(),
        }
    }

    /// A tunnel for an upgraded viewer WebSocket whose frames go out through `outbox` (read
    /// by a [`super::viewer_writer::ViewerWriter`] sharing `owed`).
    pub fn new(
        viewer: Viewer,
        outbox: mpsc::UnboundedSender<ToViewer>,
        owed: Owed,
        supervisor: SupervisorHandle,
        store: StoreHandle,
        metrics: Arc<Metrics>,
        ping_interval: Duration,
    ) -> Self {
        VncTunnel {
            supervisor,
            store,
            metrics,
            outbox,
            owed,
            link: None,
            to_agent: SendWindow::new(DEFAULT_STREAM_WINDOW),
            pending: VecDeque::new(),
            pending_len: 0,
            from_agent: RecvWindow::new(DEFAULT_STREAM_WINDOW),
            bytes_to_viewer: 0,
            bytes_from_viewer: 0,
            opened_at: Instant::now(),
            ping_interval,
            last_heard: Instant::now(),
            end_reason: None,
            agent_ended: false,
            input: match viewer.mode {
                ShareMode::View => RfbInput::view_only(),
                ShareMode::Control => RfbInput::control(),
            },
            input_stamped: None,
            recorder: None,
            connection: Uuid::new_v4(),
            viewer,
        }
    }

    /// This viewer's row in the list of who watches the session.
    fn viewer_row(&self) -> ViewerRow {
        ViewerRow {
            id: self.connection,
            session_id: self.viewer.session_id,
            user_id: self.viewer.user_id,
            replica_id: self.viewer.replica_id,
            mode: self.viewer.mode,
            ip: self.viewer.ip.clone(),
        }
    }

    /// Ends the viewer's connection with a reason it can show.
    fn finish(&mut self, ctx: &mut Context<Self>, code: CloseCode, reason: impl Into<String>) {
        if self.end_reason.is_some() {
            return;
        }
        let reason = reason.into();
        log::info!(
            session_id:% = self.viewer.session_id, agent_id:% = self.viewer.agent_id;
            "viewer of session {}: {reason}", self.viewer.session_id
        );
        let _ = self.outbox.send(ToViewer::Close(CloseReason {
            code,
            description: Some(reason.clone()),
        }));
        self.end_reason = Some(reason);
        ctx.stop();
    }

    /// Records that the session is in use, at most once per [`INPUT_STAMP_EVERY`].
    fn stamp_input(&mut self) {
        if self
            .input_stamped
            .is_some_and(|at| at.elapsed() < INPUT_STAMP_EVERY)
        {
            return;
        }
        self.input_stamped = Some(Instant::now());
        self.store.spawn(SessionInput(self.viewer.session_id));
    }

    /// Sends queued viewer bytes as far as credit allows.
    fn flush(&mut self) {
        let Some((stream_id, link)) = &self.link else {
            return;
        };
        while let Some(front) = self.pending.front_mut() {
            let n = self.to_agent.next_chunk(front.len());
            if n == 0 {
                break;
            }
            let chunk = front.split_to(n);
            self.to_agent.spend(n);
            self.pending_len -= n;
            link.frame.do_send(SendFrame(
                Frame::Data {
                    stream_id: *stream_id,
                    payload: &chunk,
                }
                .encode(),
            ));
            if front.is_empty() {
                self.pending.pop_front();
            }
        }
    }
}

impl Actor for VncTunnel {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.metrics.socket_opened(SocketKind::Viewer);
        ctx.run_interval(self.ping_interval, |this, ctx| {
            if this.last_heard.elapsed() > this.ping_interval * 2 {
                return this.finish(ctx, CloseCode::Away, "the viewer stopped answering");
            }
            let _ = this.outbox.send(ToViewer::Ping);
        });
        let open = OpenStream {
            session_id: self.viewer.session_id,
            agent_id: self.viewer.agent_id.clone(),
            tunnel: VncTunnel::handle(&ctx.address()),
            user_id: self.viewer.user_id,
            window: DEFAULT_STREAM_WINDOW,
        };
        self.supervisor
            .open_stream
            .send(open)
            .into_actor(self)
            .map(|opened, this, ctx| match opened {
                Ok(Ok((stream_id, link))) => {
                    this.link = Some((stream_id, link));
                    let recording = this.viewer.record_to.as_ref().map(|dir| {
                        let id = Uuid::new_v4();
                        this.recorder = Some(Recorder::start(
                            dir,
                            RecordingOf {
                                id,
                                session_id: this.viewer.session_id,
                                user_id: this.viewer.user_id,
                                username: this.viewer.username.clone(),
                            },
                            this.store.clone(),
                        ));
                        id
                    });
                    this.store.spawn(Record(
                        NewAuditEntry::by_user(
                            "vnc_connect",
                            this.viewer.user_id,
                            &this.viewer.username,
                        )
                        .target("session", this.viewer.session_id)
                        .details(serde_json::json!({
                            "agent_id": this.viewer.agent_id,
                            "stream_id": stream_id,
                            "mode": this.viewer.mode,
                            "recording": recording,
                        }))
                        .from_ip(this.viewer.ip.clone()),
                    ));
                    this.store.spawn(ViewerJoined(this.viewer_row()));
                    this.flush();
                }
                Ok(Err(reason)) => this.finish(ctx, CloseCode::Again, reason),
                Err(_) => this.finish(
                    ctx,
                    CloseCode::Restart,
                    "the control plane is shutting down",
                ),
            })
            .wait(ctx);
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.metrics.socket_closed(SocketKind::Viewer);
        // The recording ends with the stream: its writer finishes what it was handed.
        self.recorder = None;
        // What the writer will never write (and so never report) leaves the gauge now.
        self.metrics
            .viewer_buffered(-i64::from(self.from_agent.buffered()));
        let reason = self
            .end_reason
            .clone()
            .unwrap_or_else(|| "viewer closed".into());
        if let Some((stream_id, link)) = self.link.take() {
            link.unregister.do_send(UnregisterStream(stream_id));
            self.supervisor.close_stream.do_send(CloseStream {
                agent_id: self.viewer.agent_id.clone(),
                session_id: self.viewer.session_id,
                stream_id,
                reason: reason.clone(),
                tell_agent: !self.agent_ended,
            });
            self.store.spawn(Record(
                NewAuditEntry::by_user(
                    "vnc_disconnect",
                    self.viewer.user_id,
                    &self.viewer.username,
                )
                .target("session", self.viewer.session_id)
                .details(serde_json::json!({
                    "agent_id": self.viewer.agent_id,
                    "stream_id": stream_id,
                    "reason": reason,
                    "bytes_to_viewer": self.bytes_to_viewer,
                    "bytes_from_viewer": self.bytes_from_viewer,
                    "duration_ms": self.opened_at.elapsed().as_millis() as u64,
                    "mode": self.viewer.mode,
                    "input_dropped": (self.viewer.mode == ShareMode::View).then(|| self.input.input()),
                }))
                .from_ip(self.viewer.ip.clone()),
            ));
            self.store.spawn(ViewerLeft(self.viewer_row()));
        }
        Running::Stop
    }
}

impl Handler<StreamData> for VncTunnel {
    type Result = ();

    fn handle(&mut self, StreamData(bytes): StreamData, ctx: &mut Context<Self>) {
        if let Err(e) = self.from_agent.receive(bytes.len()) {
            return self.finish(
                ctx,
                CloseCode::Error,
                format!("the agent broke flow control: {e}"),
            );
        }
        self.bytes_to_viewer += bytes.len() as u64;
        self.metrics.viewer_buffered(bytes.len() as i64);
        if let Some(recorder) = &mut self.recorder {
            recorder.record(&bytes);
        }
        let _ = self.outbox.send(ToViewer::Bytes(bytes));
    }
}

impl Handler<Written> for VncTunnel {
    type Result = ();

    fn handle(&mut self, Written(n): Written, _: &mut Context<Self>) {
        self.metrics.viewer_buffered(-(n as i64));
        if let (Some(bytes), Some((stream_id, link))) = (self.from_agent.drain(n), &self.link) {
            link.frame.do_send(SendFrame(
                Frame::Credit {
                    stream_id: *stream_id,
                    bytes,
                }
                .encode(),
            ));
        }
    }
}

impl Handler<StreamCredit> for VncTunnel {
    type Result = ();

    fn handle(&mut self, StreamCredit(bytes): StreamCredit, ctx: &mut Context<Self>) {
        if let Err(e) = self.to_agent.grant(bytes) {
            return self.finish(
                ctx,
                CloseCode::Error,
                format!("the agent broke flow control: {e}"),
            );
        }
        self.flush();
    }
}

impl Handler<StreamClosed> for VncTunnel {
    type Result = ();

    fn handle(&mut self, StreamClosed(reason): StreamClosed, ctx: &mut Context<Self>) {
        self.agent_ended = true;
        self.finish(ctx, CloseCode::Normal, reason);
    }
}

impl Handler<EndViewer> for VncTunnel {
    type Result = ();

    fn handle(&mut self, EndViewer(reason): EndViewer, ctx: &mut Context<Self>) {
        self.finish(ctx, CloseCode::Policy, reason);
    }
}

impl StreamHandler<Result<Received, WsError>> for VncTunnel {
    fn handle(&mut self, item: Result<Received, WsError>, ctx: &mut Context<Self>) {
        if item.is_ok() {
            self.last_heard = Instant::now();
        }
        match item {
            Ok(Received::Binary(bytes)) => {
                self.bytes_from_viewer += bytes.len() as u64;
                let bytes = match self.viewer.mode {
                    ShareMode::Control => {
                        let before = self.input.input();
                        self.input.observe(&bytes);
                        if self.input.input() > before {
                            self.stamp_input();
                        }
                        bytes
                    }
                    ShareMode::View => {
                        let mut allowed = Vec::with_capacity(bytes.len());
                        if let Err(e) = self.input.filter(&bytes, &mut allowed) {
                            return self.finish(ctx, CloseCode::Policy, e.to_string());
                        }
                        if allowed.is_empty() {
                            return;
                        }
                        Bytes::from(allowed)
                    }
                };
                self.pending_len += bytes.len();
                self.pending.push_back(bytes);
                if self.pending_len > DEFAULT_STREAM_WINDOW as usize {
                    return self.finish(
                        ctx,
                        CloseCode::Policy,
                        "the viewer sends faster than the desktop reads",
                    );
                }
                self.flush();
            }
            Ok(Received::Text(_)) => self.finish(
                ctx,
                CloseCode::Unsupported,
                "this endpoint carries binary RFB only",
            ),
            Ok(Received::Ping(bytes)) => {
                if !self.owed.add() {
                    return self.finish(
                        ctx,
                        CloseCode::Policy,
                        "the viewer sends pings but reads nothing",
                    );
                }
                let _ = self.outbox.send(ToViewer::Pong(bytes));
            }
            Ok(Received::Pong(_)) => {}
            Ok(Received::Close(_)) => {
                self.end_reason = Some("viewer closed".into());
                let _ = self.outbox.send(ToViewer::Close(CloseReason {
                    code: CloseCode::Normal,
                    description: None,
                }));
                ctx.stop();
            }
            Err(e) => self.finish(
                ctx,
                CloseCode::Protocol,
                format!("viewer protocol error: {e}"),
            ),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        if self.end_reason.is_none() {
            self.end_reason = Some("viewer went away".into());
        }
        ctx.stop();
    }
}
