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
    /// When `welcome` arrived.
    pub welcomed: Instant,
}

/// Connects `agent_id`, says hello, and answers until `stop`; `linked` gets the moment of
/// `welcome` (or is dropped if the control plane refused the link).
pub async fn run(
    ws_base: String,
    agent_id: String,
    token: String,
    linked: oneshot::Sender<Linked>,
    mut stop: watch::Receiver<bool>,
) {
    let url = format!("{ws_base}/api/v1/agent/connect?agent_id={agent_id}");
    let Ok((_, conn)) = crate::api::client()
        .ws(url)
        .bearer_auth(&token)
        .max_frame_size(2 * 1024 * 1024)
        .connect()
        .await
    else {
        return;
    };
    let mut agent = SimAgent {
        conn,
        sessions: HashSet::new(),
        streams: HashMap::new(),
        window: streamspace_protocol::DEFAULT_STREAM_WINDOW,
    };
    let hello = AgentMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_id: agent_id.clone(),
        platform: "local".into(),
        region: Some("bench".into()),
        capacity: Capacity {
            max_sessions: 1_000_000,
            cpu: None,
            memory: None,
        },
        sessions: vec![],
        inventory_error: None,
    };
    if !agent.send(&hello).await {
        return;
    }
    let heartbeat = loop {
        match agent.conn.next().await {
            Some(Ok(ws::Frame::Text(text))) => match parse(&text) {
                Some(ControlMessage::Welcome {
                    heartbeat_interval_ms,
                    stream_window,
                    ..
                }) => {
                    agent.window = stream_window;
                    let _ = linked.send(Linked {
                        welcomed: Instant::now(),
                    });
                    break Duration::from_millis(heartbeat_interval_ms.max(100));
                }
                _ => continue,
            },
            Some(Ok(ws::Frame::Ping(p))) => {
                let _ = agent.conn.send(ws::Message::Pong(p)).await;
            }
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    let mut beat = tokio::time::interval(heartbeat);
    beat.tick().await;
    loop {
        tokio::select! {
            frame = agent.conn.next() => {
                let Some(Ok(frame)) = frame else { return };
                if !agent.on_frame(frame).await {
                    return;
                }
            }
            _ = beat.tick() => {
                let active_sessions = agent.sessions.len() as u32;
                if !agent.send(&AgentMessage::Heartbeat { active_sessions }).await {
                    return;
                }
            }
            _ = stop.wait_for(|stop| *stop) => {
                let _ = agent.send(&AgentMessage::Goodbye { reason: "benchmark over".into() }).await;
                let _ = agent.conn.send(ws::Message::Close(None)).await;
                return;
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
