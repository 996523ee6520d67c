//! The control plane's HTTP API as the load generator uses it: one keep-alive client per
//! caller, JSON in and out.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

/// An HTTP client with Nagle's algorithm off, as the real agent's and browsers' are: what is
/// measured is the control plane, not a client waiting for delayed ACKs.
pub fn client() -> awc::Client {
    let connector = streamspace_k8s_agent::link::nodelay_connector();
    awc::Client::builder()
        .connector(awc::Connector::new().connector(connector))
        .timeout(Duration::from_secs(60))
        .finish()
}

/// A caller of the API with its own connection pool.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    client: awc::Client,
}

/// What one call returned.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// Bytes of the body.
    pub size: usize,
    pub took: Duration,
}

impl Api {
    /// A caller with no token yet.
    pub fn new(base: &str) -> Self {
        Api {
            base: base.to_owned(),
            token: String::new(),
            client: client(),
        }
    }

    /// The same caller, signed in as `username`.
    pub async fn login(base: &str, username: &str, password: &str) -> Self {
        let mut api = Api::new(base);
        let answer = api
            .call(
                "POST",
                "/api/v1/auth/login",
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(answer.status, 200, "login {username}: {}", answer.body);
        api.token = answer.body["token"].as_str().unwrap().to_owned();
        api
    }

    /// Another caller with the same token and its own connections.
    pub fn another(&self) -> Self {
        Api {
            client: client(),
            ..self.clone()
        }
    }

    pub fn ws_base(&self) -> String {
        self.base.replacen("http://", "ws://", 1)
    }

    /// One request; a transport error is answered as status 0.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let started = Instant::now();
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        let sent = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        };
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Answer {
                    status: 0,
                    body: Value::String(e.to_string()),
                    size: 0,
                    took: started.elapsed(),
                };
            }
        };
        let bytes = response
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .unwrap_or_default();
        Answer {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            size: bytes.len(),
            took: started.elapsed(),
        }
    }

    /// Registers agent `agent_id`; its token.
    pub async fn register_agent(&self, agent_id: &str) -> String {
        let answer = self
            .call(
                "POST",
                "/api/v1/agents/register",
                Some(json!({"agent_id": agent_id, "platform": "local", "region": "bench"})),
            )
            .await;
        assert_eq!(answer.status, 201, "register {agent_id}: {}", answer.body);
        answer.body["credential"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A template the simulated agents run.
    pub async fn template(&self, name: &str) {
        let answer = self
            .call(
                "POST",
                "/api/v1/templates",
                Some(json!({"name": name, "image": "xterm"})),
            )
            .await;
        assert_eq!(answer.status, 201, "template: {}", answer.body);
    }

    /// `POST /api/v1/sessions`; the new session's id when it was accepted.
    pub async fn create_session(&self, template: &str) -> (Answer, Option<Uuid>) {
        let answer = self
            .call(
                "POST",
                "/api/v1/sessions",
                Some(json!({"template": template, "persistent_home": false})),
            )
            .await;
        let id = (answer.status == 202)
            .then(|| answer.body["id"].as_str().and_then(|s| s.parse().ok()))
            .flatten();
        (answer, id)
    }

    /// The viewer's WebSocket URL for `session`.
    pub async fn viewer_url(&self, session: Uuid) -> String {
        let answer = self
            .call(
                "POST",
                &format!("/api/v1/sessions/{session}/viewer-token"),
                Some(json!({})),
            )
            .await;
        assert_eq!(answer.status, 200, "viewer token: {}", answer.body);
        format!(
            "{}/api/v1/vnc/{session}?token={}",
            self.ws_base(),
            answer.body["token"].as_str().unwrap()
        )
    }

    /// Waits until `session` is in `state`.
    pub async fn session_reaches(&self, session: Uuid, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self
                .call("GET", &format!("/api/v1/sessions/{session}"), None)
                .await;
            if answer.body["state"] == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "session {session} stayed {}",
                answer.body["state"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
