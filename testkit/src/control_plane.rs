//! A real control plane on a free port with its own real database, an HTTP client for its
//! API, and a scripted agent speaking the protocol over a real WebSocket.

use std::collections::HashMap;
use std::time::Duration;

use crate::TestDatabase;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use streamspace_control_plane::config::Config;
use streamspace_control_plane::server;
use streamspace_protocol::{
    AgentMessage, Capacity, ControlMessage, PROTOCOL_VERSION, SessionReport,
};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// The `JWT_SECRET` every test server uses, so tests can sign edge-case tokens.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

/// Configuration for a control plane on a free loopback port with its own database.
pub fn config(db: &TestDatabase, overrides: &[(&str, &str)]) -> Config {
    let mut env: HashMap<&str, &str> = [
        ("DATABASE_URL", db.url()),
        ("JWT_SECRET", JWT_SECRET),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("STREAMSPACE_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]
    .into();
    env.extend(overrides.iter().copied());
    Config::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap()
}

/// A running control plane.
pub struct TestServer {
    pub db: TestDatabase,
    pub base: String,
    pub admin: String,
    /// This replica's id (several may share the database).
    pub replica_id: uuid::Uuid,
    handle: actix_web::dev::ServerHandle,
    stopper: streamspace_control_plane::server::Stopper,
}

/// The address of a control plane, to call it from any thread (a [`TestServer`] belongs to
/// the actix system that started it; a benchmark's viewers run on a thread of their own).
#[derive(Clone)]
pub struct Caller {
    pub base: String,
}

impl Caller {
    pub fn ws_base(&self) -> String {
        self.base.replacen("http://", "ws://", 1)
    }

    /// A JSON request; returns the status and the parsed body (`null` when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        // Longer than the server's own deadlines, so a test sees its answer, not ours.
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        let url = format!("{}{path}", self.base);
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .unwrap();
        let bytes = response.body().limit(16 * 1024 * 1024).await.unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let status = response.status().as_u16();
        if let Err(broken) = crate::api_contract::check(method, path, status, &json) {
            panic!("{broken}");
        }
        (status, json)
    }

    /// A viewer's WebSocket URL for `session`, its one-use token asked for with `token`.
    pub async fn viewer_url(&self, token: &str, session: uuid::Uuid) -> String {
        let (status, body) = self
            .call(
                "POST",
                &format!("/api/v1/sessions/{session}/viewer-token"),
                Some(token),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["expires_in"].as_u64().unwrap() <= 60,
            "viewer tokens are short-lived"
        );
        format!(
            "{}{}?token={}",
            self.ws_base(),
            body["path"].as_str().unwrap(),
            body["token"].as_str().unwrap()
        )
    }
}

fn install_crypto() {
    // awc is built with rustls in this workspace; it needs a provider chosen up front.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Starts the real server in the current actix system and logs the admin in.
pub async fn start(overrides: &[(&str, &str)]) -> TestServer {
    start_on(TestDatabase::create(), overrides).await
}

/// Starts a server on an existing database (a restart).
pub async fn start_on(db: TestDatabase, overrides: &[(&str, &str)]) -> TestServer {
    install_crypto();
    let running = server::start(config(&db, overrides))
        .await
        .expect("control plane starts");
    let base = format!("http://{}", running.addr);
    let handle = running.server.handle();
    actix_web::rt::spawn(running.server);
    let mut server = TestServer {
        db,
        base,
        admin: String::new(),
        replica_id: running.replica.id,
        handle,
        stopper: running.stopper,
    };
    server.admin = server.login("admin", ADMIN_PASSWORD).await;
    server
}

/// A server with an `xterm` template and agent `local-1` connected as a scripted agent;
/// returns the agent's token too, for reconnects.
pub async fn start_with_agent(overrides: &[(&str, &str)]) -> (TestServer, ScriptedAgent, String) {
    let server = start(overrides).await;
    server.template("xterm").await;
    let token = server.register_agent("local-1", "local").await;
    let agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    (server, agent, token)
}

impl TestServer {
    /// Stops the HTTP server (connections are dropped) and hands back the database.
    pub async fn stop(self) -> TestDatabase {
        self.handle.stop(false).await;
        self.db
    }

    /// Shuts down as on SIGTERM (agents and viewers handed to the other replicas, requests
    /// in flight finished); hands back the database.
    pub async fn shut_down(self) -> TestDatabase {
        self.stopper.stop().await;
        self.db
    }

    pub fn ws_base(&self) -> String {
        self.caller().ws_base()
    }

    /// A JSON request; returns the status and the parsed body (`null` when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.caller().call(method, path, token, body).await
    }

    /// A handle to call this control plane from another thread.
    pub fn caller(&self) -> Caller {
        Caller {
            base: self.base.clone(),
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("DELETE", path, Some(token), None).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "login {username}: {body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Creates a user and returns their login token.
    pub async fn user(&self, username: &str) -> String {
        let password = format!("{username}-password");
        let (status, body) = self
            .post(
                "/api/v1/users",
                &self.admin,
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        self.login(username, &password).await
    }

    /// Registers an agent; returns its token.
    pub async fn register_agent(&self, agent_id: &str, platform: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/agents/register",
                &self.admin,
                json!({"agent_id": agent_id, "platform": platform, "region": "test-region"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["credential"]["token"].as_str().unwrap().to_owned()
    }

    /// Creates a template named `name`.
    pub async fn template(&self, name: &str) {
        let (status, body) = self
            .post(
                "/api/v1/templates",
                &self.admin,
                json!({"name": name, "image": "xterm", "default_resources": {"cpu": "1", "memory": "1Gi"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// A viewer token for `session` as `token`, turned into the proxy's WebSocket URL.
    pub async fn viewer_url(&self, token: &str, session: uuid::Uuid) -> String {
        self.caller().viewer_url(token, session).await
    }

    /// A session of `owner` from `template` that the control plane holds for running on
    /// `agent_id`, written straight into the database: for a test whose agent cannot start one
    /// (its runtime froze), so what happens to its viewers can be seen.
    pub fn running_session_on(&self, owner: &str, template: &str, agent_id: &str) -> uuid::Uuid {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Made {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: uuid::Uuid,
        }
        let made: Made = diesel::sql_query(
            "INSERT INTO sessions (owner_id, template_id, template_name, state, agent_id, \
                 platform, persistent_home, started_at) \
             SELECT u.id, t.id, t.name, 'running', a.agent_id, a.platform, false, now() \
             FROM users u, templates t, agents a \
             WHERE u.username = $1 AND t.name = $2 AND a.agent_id = $3 \
             RETURNING id",
        )
        .bind::<diesel::sql_types::Text, _>(owner)
        .bind::<diesel::sql_types::Text, _>(template)
        .bind::<diesel::sql_types::Text, _>(agent_id)
        .get_result(&mut self.db.connect())
        .expect("the owner, the template and the agent exist");
        made.id
    }

    /// The audit entries of `action`, newest first, once there are at least `count` (audit
    /// records are written in the background, a moment after the request that caused them).
    pub async fn audit(&self, action: &str, count: usize) -> Vec<Value> {
        let path = format!("/api/v1/audit?action={action}");
        let what = format!("{count} {action} audit entries");
        let page = self
            .wait_for(&path, &self.admin, &what, |b| {
                b["entries"].as_array().is_some_and(|e| e.len() >= count)
            })
            .await;
        page["entries"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `path` until `check` holds (a few seconds at most).
    pub async fn wait_for(
        &self,
        path: &str,
        token: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.get(path, token).await;
            if status == 200 && check(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

type WsConnection = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

/// An agent written with the protocol crate, driven step by step by a test.
pub struct ScriptedAgent {
    pub agent_id: String,
    conn: WsConnection,
}

/// Why a connection attempt or a link ended.
#[derive(Debug)]
pub enum Refusal {
    /// The HTTP upgrade was refused with this status.
    Http(u16),
    /// The WebSocket was closed with this reason.
    Closed(Option<ws::CloseReason>),
}

impl ScriptedAgent {
    /// Opens the WebSocket with a credential (no hello yet).
    pub async fn open(server: &TestServer, agent_id: &str, token: &str) -> Result<Self, Refusal> {
        Self::open_at(&server.ws_base(), agent_id, token).await
    }

    /// Like [`Self::open`], to a control plane at `ws_base` (one this process did not start).
    pub async fn open_at(ws_base: &str, agent_id: &str, token: &str) -> Result<Self, Refusal> {
        let url = format!("{ws_base}/api/v1/agent/connect?agent_id={agent_id}");
        let result = awc::Client::default()
            .ws(url)
            .bearer_auth(token)
            .max_frame_size(2 * 1024 * 1024)
            .connect()
            .await;
        match result {
            Ok((_, conn)) => Ok(ScriptedAgent {
                agent_id: agent_id.to_owned(),
                conn,
            }),
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                Err(Refusal::Http(status.as_u16()))
            }
            Err(e) => panic!("websocket connect failed: {e}"),
        }
    }

    /// Opens and says hello with `sessions`; returns after `welcome`.
    pub async fn connect(
        server: &TestServer,
        agent_id: &str,
        token: &str,
        sessions: Vec<SessionReport>,
    ) -> Self {
        Self::connect_at(&server.ws_base(), agent_id, token, sessions).await
    }

    /// Like [`Self::connect`], to a control plane at `ws_base`.
    pub async fn connect_at(
        ws_base: &str,
        agent_id: &str,
        token: &str,
        sessions: Vec<SessionReport>,
    ) -> Self {
        let mut agent = Self::open_at(ws_base, agent_id, token)
            .await
            .expect("connect");
        agent.hello(sessions).await;
        match agent.recv().await {
            ControlMessage::Welcome {
                protocol_version, ..
            } => assert_eq!(protocol_version, PROTOCOL_VERSION),
            other => panic!("expected welcome, got {other:?}"),
        }
        agent
    }

    pub async fn hello(&mut self, sessions: Vec<SessionReport>) {
        let hello = AgentMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_id: self.agent_id.clone(),
            platform: "local".into(),
            region: Some("test-region".into()),
            capacity: Capacity {
                max_sessions: 10,
                cpu: None,
                memory: None,
            },
            sessions,
            inventory_error: None,
        };
        self.send(&hello).await;
    }

    pub async fn send(&mut self, message: &AgentMessage) {
        self.send_text(message.to_json()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.conn
            .send(ws::Message::Text(text.into()))
            .await
            .unwrap();
    }

    /// Sends a WebSocket ping (the server owes a pong).
    pub async fn send_ping(&mut self, payload: &[u8]) {
        self.conn
            .send(ws::Message::Ping(payload.to_vec().into()))
            .await
            .unwrap();
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.conn
            .send(ws::Message::Binary(bytes.into()))
            .await
            .unwrap();
    }

    /// The next JSON message (answering pings), within five seconds.
    pub async fn recv(&mut self) -> ControlMessage {
        match self.next_frame(Duration::from_secs(5)).await {
            Some(ws::Frame::Text(bytes)) => {
                ControlMessage::from_json(std::str::from_utf8(&bytes).unwrap()).unwrap()
            }
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The next binary frame, as sent.
    pub async fn recv_binary(&mut self) -> Vec<u8> {
        match self.next_frame(Duration::from_secs(5)).await {
            Some(ws::Frame::Binary(bytes)) => bytes.to_vec(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// The next command, answered with nothing yet.
    pub async fn recv_command(&mut self) -> (uuid::Uuid, streamspace_protocol::Command) {
        match self.recv().await {
            ControlMessage::Command {
                command_id,
                command,
            } => (command_id, command),
            other => panic!("expected a command, got {other:?}"),
        }
    }

    /// The next command, which must be a `vnc_connect`: acknowledged and completed, as the
    /// agent would once its end of the stream is open; the stream's id.
    pub async fn accept_stream(&mut self) -> streamspace_protocol::StreamId {
        let (command_id, command) = self.recv_command().await;
        let streamspace_protocol::Command::VncConnect { stream_id, .. } = command else {
            panic!("expected vnc_connect, got {command:?}");
        };
        self.send(&AgentMessage::Ack { command_id }).await;
        self.send(&AgentMessage::Completed {
            command_id,
            result: json!({ "stream_id": stream_id }),
        })
        .await;
        stream_id
    }

    /// The next command, which must be a `create_session` of `id`: reported running at once,
    /// as the agent would once the desktop is up; the spec it carried.
    pub async fn run_created(&mut self, id: uuid::Uuid) -> streamspace_protocol::SessionSpec {
        let (command_id, command) = self.recv_command().await;
        let streamspace_protocol::Command::CreateSession(spec) = command else {
            panic!("expected create_session, got {command:?}");
        };
        assert_eq!(spec.session_id, id);
        let result =
            serde_json::to_value(report(id, streamspace_protocol::AgentSessionState::Running))
                .expect("a report serializes");
        self.send(&AgentMessage::Completed { command_id, result })
            .await;
        spec
    }

    /// Whether anything but pings arrives within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        self.next_frame(wait).await.is_none()
    }

    /// Waits for the server to close the link; returns its reason.
    pub async fn closed(&mut self) -> Option<ws::CloseReason> {
        loop {
            match self.next_frame(Duration::from_secs(15)).await {
                Some(ws::Frame::Close(reason)) => return reason,
                Some(ws::Frame::Text(_)) => continue,
                None => panic!("link not closed"),
                Some(other) => panic!("expected close, got {other:?}"),
            }
        }
    }

    async fn next_frame(&mut self, wait: Duration) -> Option<ws::Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.conn.next())
                .await
                .ok()??
                .ok()?;
            match frame {
                ws::Frame::Ping(bytes) => {
                    let _ = self.conn.send(ws::Message::Pong(bytes)).await;
                }
                ws::Frame::Pong(_) => {}
                other => return Some(other),
            }
        }
    }

    /// Closes the link cleanly.
    pub async fn close(mut self) {
        let _ = self.conn.send(ws::Message::Close(None)).await;
    }
}

/// A session report as an agent sends it.
pub fn report(
    session_id: uuid::Uuid,
    state: streamspace_protocol::AgentSessionState,
) -> SessionReport {
    SessionReport {
        session_id,
        state,
        vnc: None,
        message: None,
    }
}

/// The commands stored for a session, read through the store's own query.
pub fn commands_of(
    server: &TestServer,
    session_id: uuid::Uuid,
) -> Vec<streamspace_control_plane::store::commands::CommandRow> {
    use streamspace_control_plane::store::Query;
    use streamspace_control_plane::store::commands::CommandsForSession;
    CommandsForSession(session_id)
        .run(&mut server.db.connect())
        .unwrap()
}

/// The commands whose payload names a session, even after it left the lists.
pub fn commands_mentioning(
    server: &TestServer,
    session_id: uuid::Uuid,
) -> Vec<streamspace_control_plane::store::commands::CommandRow> {
    use streamspace_control_plane::store::Query;
    use streamspace_control_plane::store::commands::CommandsMentioning;
    CommandsMentioning(session_id)
        .run(&mut server.db.connect())
        .unwrap()
}

/// Polls the stored commands of a session until `check` holds for them (some bookkeeping,
/// like delivery attempts, is written in the background).
pub async fn commands_until(
    server: &TestServer,
    session_id: uuid::Uuid,
    what: &str,
    check: impl Fn(&[streamspace_control_plane::store::commands::CommandRow]) -> bool,
) -> Vec<streamspace_control_plane::store::commands::CommandRow> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let commands = commands_of(server, session_id);
        if check(&commands) {
            return commands;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {commands:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Creates a session as `token` and returns its id. Without a persistent home, so a test may
/// start several of one template at once (a home serves one session at a time).
pub async fn create_session(server: &TestServer, token: &str, template: &str) -> uuid::Uuid {
    let (status, body) = server
        .post(
            "/api/v1/sessions",
            token,
            json!({"template": template, "persistent_home": false}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().parse().unwrap()
}

/// Creates a session as the admin and has `agent` report it running at once.
pub async fn running_session(server: &TestServer, agent: &mut ScriptedAgent) -> uuid::Uuid {
    running_session_of(server, agent, "xterm").await
}

/// Like [`running_session`], of `template`.
pub async fn running_session_of(
    server: &TestServer,
    agent: &mut ScriptedAgent,
    template: &str,
) -> uuid::Uuid {
    let id = create_session(server, &server.admin, template).await;
    agent.run_created(id).await;
    session_reaches(server, id, "running").await;
    id
}

/// Polls a session until it reaches `state`.
pub async fn session_reaches(server: &TestServer, id: uuid::Uuid, state: &str) -> Value {
    let path = format!("/api/v1/sessions/{id}");
    server
        .wait_for(
            &path,
            &server.admin,
            &format!("session {id} {state}"),
            |s| s["state"] == state,
        )
        .await
}

/// Polls a session until it reaches `state`, for up to `within` (an agent may first have to
/// reconnect and redo work).
pub async fn session_reaches_within(
    server: &TestServer,
    id: uuid::Uuid,
    state: &str,
    within: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, body) = server
            .get(&format!("/api/v1/sessions/{id}"), &server.admin)
            .await;
        if status == 200 && body["state"] == state {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "session {id} did not become {state}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls an agent until it reaches `status`.
pub async fn agent_reaches(server: &TestServer, agent_id: &str, status: &str) -> Value {
    let path = format!("/api/v1/agents/{agent_id}");
    server
        .wait_for(
            &path,
            &server.admin,
            &format!("agent {agent_id} {status}"),
            |a| a["status"] == status,
        )
        .await
}
