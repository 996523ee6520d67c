//! A control plane written with the protocol crate, driven step by step by a test: it takes
//! one agent link, welcomes it, and lets the test send commands and frames and read what the
//! agent answers. For the agent's side of exchanges the real control plane never provokes
//! (e.g. a stream it forgot without a word).

use std::time::Duration;

use actix_web::{App, HttpRequest, HttpServer, web};
use actix_ws::AggregatedMessage;
use futures_util::StreamExt;
use streamspace_protocol::{AgentMessage, ControlMessage, DEFAULT_STREAM_WINDOW, PROTOCOL_VERSION};
use tokio::sync::mpsc;

/// What the agent sent.
#[derive(Debug)]
pub enum FromAgent {
    /// A JSON message.
    Message(AgentMessage),
    /// A binary stream frame, as sent.
    Frame(Vec<u8>),
}

/// The scripted control plane, listening on a loopback port.
pub struct ScriptedControlPlane {
    /// `ws://127.0.0.1:PORT`, for the agent's `CONTROL_PLANE_URL`.
    pub url: String,
    links: mpsc::UnboundedReceiver<(actix_ws::Session, mpsc::UnboundedReceiver<FromAgent>)>,
    server: actix_web::dev::ServerHandle,
}

/// One agent link, after its hello was answered with a welcome.
pub struct ScriptedLink {
    session: actix_ws::Session,
    incoming: mpsc::UnboundedReceiver<FromAgent>,
}

type Links = mpsc::UnboundedSender<(actix_ws::Session, mpsc::UnboundedReceiver<FromAgent>)>;

async fn accept(
    req: HttpRequest,
    body: web::Payload,
    links: web::Data<Links>,
) -> actix_web::Result<actix_web::HttpResponse> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut pongs = session.clone();
    actix_web::rt::spawn(async move {
        let mut stream = stream.aggregate_continuations();
        while let Some(Ok(message)) = stream.next().await {
            let item = match message {
                AggregatedMessage::Text(text) => match AgentMessage::from_json(&text) {
                    Ok(message) => FromAgent::Message(message),
                    Err(e) => panic!("the agent sent a malformed message: {e}"),
                },
                AggregatedMessage::Binary(bytes) => FromAgent::Frame(bytes.to_vec()),
                AggregatedMessage::Ping(bytes) => {
                    let _ = pongs.pong(&bytes).await;
                    continue;
                }
                _ => continue,
            };
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    let _ = links.send((session, rx));
    Ok(response)
}

impl ScriptedControlPlane {
    /// Starts listening.
    pub async fn start() -> Self {
        let (tx, links) = mpsc::unbounded_channel();
        let tx = web::Data::new(tx);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(tx.clone())
                .route("/api/v1/agent/connect", web::get().to(accept))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("bind a loopback port");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        ScriptedControlPlane {
            url: format!("ws://127.0.0.1:{port}"),
            links,
            server: handle,
        }
    }

    /// Waits for an agent's link and its hello, and welcomes it with this heartbeat interval.
    pub async fn accept(&mut self, heartbeat: Duration) -> ScriptedLink {
        let (session, incoming) = tokio::time::timeout(Duration::from_secs(10), self.links.recv())
            .await
            .expect("an agent dials within 10 s")
            .expect("the server runs");
        let mut link = ScriptedLink { session, incoming };
        match link.recv().await {
            FromAgent::Message(AgentMessage::Hello { .. }) => {}
            other => panic!("expected hello, got {other:?}"),
        }
        link.send(&ControlMessage::Welcome {
            protocol_version: PROTOCOL_VERSION,
            heartbeat_interval_ms: u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX),
            stream_window: DEFAULT_STREAM_WINDOW,
        })
        .await;
        // Pinged like the real control plane does, or the agent drops the link as half-open.
        let mut pinger = link.session.clone();
        actix_web::rt::spawn(async move {
            let mut every = tokio::time::interval(heartbeat);
            loop {
                every.tick().await;
                if pinger.ping(b"").await.is_err() {
                    break;
                }
            }
        });
        link
    }

    /// Stops listening.
    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

impl ScriptedLink {
    /// Sends a JSON message.
    pub async fn send(&mut self, message: &ControlMessage) {
        self.session
            .text(message.to_json())
            .await
            .expect("the link is open");
    }

    /// Sends a binary frame.
    pub async fn send_frame(&mut self, frame: Vec<u8>) {
        self.session.binary(frame).await.expect("the link is open");
    }

    /// The next thing the agent sent, heartbeats skipped, within five seconds.
    pub async fn recv(&mut self) -> FromAgent {
        loop {
            let item = tokio::time::timeout(Duration::from_secs(5), self.incoming.recv())
                .await
                .expect("the agent sends something within 5 s")
                .expect("the link is open");
            if !matches!(item, FromAgent::Message(AgentMessage::Heartbeat { .. })) {
                return item;
            }
        }
    }

    /// Everything the agent sends within `wait`, heartbeats skipped.
    pub async fn collect_for(&mut self, wait: Duration) -> Vec<FromAgent> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut all = Vec::new();
        while let Ok(Some(item)) = tokio::time::timeout_at(deadline, self.incoming.recv()).await {
            if !matches!(item, FromAgent::Message(AgentMessage::Heartbeat { .. })) {
                all.push(item);
            }
        }
        all
    }

    /// Closes the link.
    pub async fn close(self) {
        let _ = self.session.close(None).await;
    }
}
