//! Simulated agents: the real protocol over real WebSockets, with no runtime behind them. A
//! session is "running" the moment it is asked for; a VNC stream echoes what the viewer sends,
//! under the stream's credit windows like the real agent's tunnels.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use streamspace_protocol::{
    AgentMessage, AgentSessionState, Capacity, Command, ControlMessage, Frame, PROTOCOL_VERSION,
    SessionReport, StreamId,
};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

type Connection = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

/// A running simulated agent; it says goodbye and closes when the fleet's stop is raised.
pub struct Linked {
    /// When `welcome` first arrived.
    pub welcomed: Instant,
}

/// How a link ended.
enum Ended {
    /// The fleet's stop: said goodbye.
    Stopped,
    /// The control plane refused or could not be reached.
    Refused,
    /// The link closed (e.g. the control plane restarted): reconnect.
    Closed,
}

/// Connects `agent_id`, says hello, and answers until `stop`; `linked` gets the moment of the
/// first `welcome` (or is dropped if the control plane refused the first link). Like the real
/// agent, a link that ends is made again at once — every 100 ms while the control plane does
/// not answer — reporting the sessions it holds; each `welcome` counts in `welcomes`.
pub async fn run(
    ws_base: String,
    agent_id: String,
    token: String,
    linked: oneshot::Sender<Linked>,
    welcomes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) {
    let mut linked = Some(linked);
    let mut sessions = HashSet::new();
    loop {
        let ended = serve(
            &ws_base,
            &agent_id,
            &token,
            &mut sessions,
            &mut stop,
            || {
                welcomes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(linked) = linked.take() {
                    let _ = linked.send(Linked {
                        welcomed: Instant::now(),
                    });
                }
            },
        )
        .await;
        match ended {
            Ended::Stopped => return,
            // Never linked: this agent is not one the control plane takes.
            Ended::Refused if linked.is_some() => return,
            Ended::Refused => tokio::time::sleep(Duration::from_millis(100)).await,
            Ended::Closed => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One link, from connect to its end.
async fn serve(
    ws_base: &str,
    agent_id: &str,
    token: &str,
    sessions: &mut HashSet<Uuid>,
    stop: &mut watch::Receiver<bool>,
    mut welcomed: impl FnMut(),
) -> Ended {
    let url = format!("{ws_base}/api/v1/agent/connect?agent_id={agent_id}");
    let Ok((_, conn)) = crate::api::client()
        .ws(url)
        .bearer_auth(token)
        .max_frame_size(2 * 1024 * 1024)
        .connect()
        .await
    else {
        return Ended::Refused;
    };
    let mut agent = SimAgent {
        conn,
        sessions: std::mem::take(sessions),
        streams: HashMap::new(),
        window: streamspace_protocol::DEFAULT_STREAM_WINDOW,
    };
    let ended = agent.serve(agent_id, stop, &mut welcomed).await;
    *sessions = agent.sessions;
    ended
}

impl SimAgent {
    async fn serve(
        &mut self,
        agent_id: &str,
        stop: &mut watch::Receiver<bool>,
        welcomed: &mut impl FnMut(),
    ) -> Ended {
        let held = self
            .sessions
            .iter()
            .map(|id| SessionReport {
                session_id: *id,
                state: AgentSessionState::Running,
                vnc: None,
                message: None,
            })
            .collect();
        let hello = AgentMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_id: agent_id.to_owned(),
            platform: "local".into(),
            region: Some("bench".into()),
            capacity: Capacity {
                max_sessions: 1_000_000,
                cpu: None,
                memory: None,
            },
            sessions: held,
            inventory_error: None,
        };
        if !self.send(&hello).await {
            return Ended::Refused;
        }
        let heartbeat = loop {
            match self.conn.next().await {
                Some(Ok(ws::Frame::Text(text))) => match parse(&text) {
                    Some(ControlMessage::Welcome {
                        heartbeat_interval_ms,
                        stream_window,
                        ..
                    }) => {
                        self.window = stream_window;
                        welcomed();
                        break Duration::from_millis(heartbeat_interval_ms.max(100));
                    }
                    _ => continue,
                },
                Some(Ok(ws::Frame::Ping(p))) => {
                    let _ = self.conn.send(ws::Message::Pong(p)).await;
                }
                Some(Ok(_)) => continue,
                _ => return Ended::Refused,
            }
        };
        let mut beat = tokio::time::interval(heartbeat);
        beat.tick().await;
        loop {
            tokio::select! {
                frame = self.conn.next() => {
                    let Some(Ok(frame)) = frame else { return Ended::Closed };
                    if !self.on_frame(frame).await {
                        return Ended::Closed;
                    }
                }
                _ = beat.tick() => {
                    let active_sessions = self.sessions.len() as u32;
                    if !self.send(&AgentMessage::Heartbeat { active_sessions }).await {
                        return Ended::Closed;
                    }
                }
                _ = stop.wait_for(|stop| *stop) => {
                    let _ = self.send(&AgentMessage::Goodbye { reason: "benchmark over".into() }).await;
                    let _ = self.conn.send(ws::Message::Close(None)).await;
                    return Ended::Stopped;
                }
            }
        }
    }
}

fn parse(text: &[u8]) -> Option<ControlMessage> {
    ControlMessage::from_json(std::str::from_utf8(text).ok()?).ok()
}

/// One echo stream: what the control plane still lets us send, and what waits for credit.
#[derive(Default)]
struct Echo {
    credit: u32,
    waiting: Vec<u8>,
}

struct SimAgent {
    conn: Connection,
    sessions: HashSet<Uuid>,
    streams: HashMap<StreamId, Echo>,
    window: u32,
}

impl SimAgent {
    async fn send(&mut self, message: &AgentMessage) -> bool {
        self.conn
            .send(ws::Message::Text(message.to_json().into()))
            .await
            .is_ok()
    }

    async fn send_frame(&mut self, frame: Frame<'_>) -> bool {
        self.conn
            .send(ws::Message::Binary(frame.encode().into()))
            .await
            .is_ok()
    }

    /// Handles one frame; `false` once the link is over.
    async fn on_frame(&mut self, frame: ws::Frame) -> bool {
        match frame {
            ws::Frame::Text(text) => match parse(&text) {
                Some(ControlMessage::Command {
                    command_id,
                    command,
                }) => self.on_command(command_id, command).await,
                _ => true,
            },
            ws::Frame::Binary(bytes) => self.on_binary(&bytes).await,
            ws::Frame::Ping(p) => self.conn.send(ws::Message::Pong(p)).await.is_ok(),
            ws::Frame::Close(_) => false,
            _ => true,
        }
    }

    async fn on_command(&mut self, command_id: Uuid, command: Command) -> bool {
        if !self.send(&AgentMessage::Ack { command_id }).await {
            return false;
        }
        let report = |session_id, state| SessionReport {
            session_id,
            state,
            vnc: None,
            message: None,
        };
        let result = match command {
            Command::CreateSession(spec) => {
                self.sessions.insert(spec.session_id);
                json!(report(spec.session_id, AgentSessionState::Running))
            }
            Command::DeleteSession { session_id, .. } => {
                self.sessions.remove(&session_id);
                json!({})
            }
            Command::ListSessions => {
                let sessions: Vec<SessionReport> = self
                    .sessions
                    .iter()
                    .map(|id| report(*id, AgentSessionState::Running))
                    .collect();
                json!({ "sessions": sessions })
            }
            Command::GetSession { session_id } => {
                json!(report(session_id, AgentSessionState::Running))
            }
            Command::VncConnect { stream_id, .. } => {
                let credit = self.window;
                self.streams.insert(
                    stream_id,
                    Echo {
                        credit,
                        waiting: Vec::new(),
                    },
                );
                json!({ "stream_id": stream_id })
            }
            Command::VncDisconnect { stream_id, .. } => {
                self.streams.remove(&stream_id);
                json!({})
            }
            _ => json!({}),
        };
        self.send(&AgentMessage::Completed { command_id, result })
            .await
    }

    async fn on_binary(&mut self, bytes: &[u8]) -> bool {
        match Frame::decode(bytes) {
            Ok(Frame::Data { stream_id, payload }) => {
                let Some(echo) = self.streams.get_mut(&stream_id) else {
                    return self.send_frame(Frame::Reset { stream_id }).await;
                };
                echo.waiting.extend_from_slice(payload);
                let taken = payload.len() as u32;
                // What we read is gone from our queues at once: the viewer may send more.
                self.send_frame(Frame::Credit {
                    stream_id,
                    bytes: taken,
                })
                .await
                    && self.flush(stream_id).await
            }
            Ok(Frame::Credit { stream_id, bytes }) => {
                if let Some(echo) = self.streams.get_mut(&stream_id) {
                    echo.credit = echo.credit.saturating_add(bytes);
                }
                self.flush(stream_id).await
            }
            Ok(Frame::Probe { stream_id }) if !self.streams.contains_key(&stream_id) => {
                self.send_frame(Frame::Reset { stream_id }).await
            }
            Ok(Frame::Reset { stream_id }) => {
                self.streams.remove(&stream_id);
                true
            }
            _ => true,
        }
    }

    /// Echoes what credit allows.
    async fn flush(&mut self, stream_id: StreamId) -> bool {
        let Some(echo) = self.streams.get_mut(&stream_id) else {
            return true;
        };
        let n = echo
            .waiting
            .len()
            .min(echo.credit as usize)
            .min(streamspace_protocol::MAX_FRAME_PAYLOAD);
        if n == 0 {
            return true;
        }
        let payload: Vec<u8> = echo.waiting.drain(..n).collect();
        echo.credit -= n as u32;
        let more = !echo.waiting.is_empty() && echo.credit > 0;
        if !self
            .send_frame(Frame::Data {
                stream_id,
                payload: &payload,
            })
            .await
        {
            return false;
        }
        if more {
            return Box::pin(self.flush(stream_id)).await;
        }
        true
    }
}
