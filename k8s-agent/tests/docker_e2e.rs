//! The Docker path end to end against a real engine: the real control plane (real Postgres),
//! the agent with the Docker runtime, and a private dockerd (started by `scripts/test`, or by
//! the test binary itself) running the real desktop image (Xvnc and Xfce in a container).
//! RFB bytes go control plane → agent → 127.0.0.1:<published port> → Xvnc in the container.
//! One engine serves the file; each test has agent ids of its own, which name and label
//! everything its agent makes.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use serde_json::{Value, json};
use streamspace_k8s_agent::config::Config;
use streamspace_k8s_agent::launch;
use streamspace_k8s_agent::link::{ControlPlaneLink, Shutdown};
use streamspace_testkit::control_plane::{self as cp, TestServer};
use streamspace_testkit::docker_engine::DockerEngine;
use streamspace_testkit::rfb::ViewerStream;
use uuid::Uuid;

struct Setup {
    server: TestServer,
    engine: &'static DockerEngine,
    alice: String,
    agent_id: String,
    token: String,
    agent: Addr<ControlPlaneLink>,
}

fn agent_config(
    server: &TestServer,
    agent_id: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> Config {
    let engine = DockerEngine::shared();
    let url = server.ws_base();
    let mut env: Vec<(String, String)> = [
        ("AGENT_ID", agent_id),
        ("CONTROL_PLANE_URL", url.as_str()),
        ("AGENT_TOKEN", token),
        ("PLATFORM", "docker"),
        ("DOCKER_HOST", engine.host.as_str()),
        ("SESSION_READY_TIMEOUT", "60s"),
        ("SHM_SIZE", "256Mi"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // Later entries win.
    env.reverse();
    Config::from_lookup(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap()
}

async fn start_agent(config: Config) -> Addr<ControlPlaneLink> {
    let runtime = launch::runtime(&config).await.unwrap();
    ControlPlaneLink::new(Arc::new(config), runtime, Arc::new(AtomicBool::new(false))).start()
}

async fn setup(extra: &[(&str, &str)]) -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = env_logger::builder().is_test(true).try_init();
    let engine = tokio::task::spawn_blocking(DockerEngine::shared)
        .await
        .unwrap();
    let server = cp::start(&[]).await;
    for (name, image, env) in [
        ("desktop", engine.desktop_image.as_str(), json!({})),
        ("missing", "streamspace/missing-image:1", json!({})),
        (
            "misconfigured",
            engine.desktop_image.as_str(),
            json!({"SCREEN_GEOMETRY": "huge"}),
        ),
    ] {
        let (status, body) = server
            .post(
                "/api/v1/templates",
                &server.admin,
                json!({"name": name, "image": image, "env": env, "platforms": ["docker"],
                       "default_resources": {"cpu": "1", "memory": "1Gi"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let agent_id = format!("docker-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let token = server.register_agent(&agent_id, "docker").await;
    let agent = start_agent(agent_config(&server, &agent_id, &token, extra)).await;
    cp::agent_reaches(&server, &agent_id, "online").await;
    let alice = server.user("alice").await;
    Setup {
        server,
        engine,
        alice,
        agent_id,
        token,
        agent,
    }
}

impl Setup {
    async fn create(&self, body: Value) -> Uuid {
        let (status, body) = self
            .server
            .post("/api/v1/sessions", &self.alice, body)
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }

    async fn reaches(&self, id: Uuid, state: &str) -> Value {
        cp::session_reaches_within(&self.server, id, state, Duration::from_secs(60)).await
    }

    /// `docker inspect` of a container, as JSON.
    fn inspect(&self, name: &str) -> Value {
        let text = self.engine.docker(&["inspect", name]).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()[0].clone()
    }

    /// Names of this test's containers, stopped ones too.
    fn containers(&self) -> Vec<String> {
        self.names(&["ps", "-a"], "{{.Names}}")
    }

    fn volumes(&self) -> Vec<String> {
        self.names(&["volume", "ls"], "{{.Name}}")
    }

    /// What a docker list command shows of this test's agent's objects.
    fn names(&self, list: &[&str], format: &str) -> Vec<String> {
        let filter = format!("label=streamspace.io/agent-id={}", self.agent_id);
        let mut args = list.to_vec();
        args.extend(["--filter", &filter, "--format", format]);
        let names = self.engine.docker(&args).unwrap();
        names.lines().map(str::to_owned).collect()
    }

    /// Opens the desktop through the control plane and reads a first full frame.
    async fn view(&self, id: Uuid) -> (u16, u16, String) {
        let url = self.server.viewer_url(&self.alice, id).await;
        let (viewer, init) = ViewerStream::open_showing(&url).await.unwrap();
        viewer.close().await;
        (init.width, init.height, init.name)
    }
}

impl Drop for Setup {
    // Whatever a test left on the shared engine (a failed one too) goes with it.
    fn drop(&mut self) {
        let containers = self.containers();
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            let _ = self.engine.docker(&args);
        }
        for volume in self.volumes() {
            let _ = self.engine.docker(&["volume", "rm", &volume]);
        }
        let _ = self
            .engine
            .docker(&["network", "rm", &format!("streamspace-{}", self.agent_id)]);
    }
}

#[actix_web::test]
async fn a_session_is_a_limited_container_on_loopback_that_streams_its_desktop_and_is_removed() {
    let setup = setup(&[]).await;
    let asked = Instant::now();
    let id = setup
        .create(json!({"template": "desktop", "resources": {"cpu": "0.5", "memory": "768Mi"}}))
        .await;
    let running = setup.reaches(id, "running").await;
    let ready = asked.elapsed();
    assert_eq!(running["platform"], "docker");
    let name = format!("ss-{id}");
    assert_eq!(setup.containers(), std::slice::from_ref(&name));

    let inspected = setup.inspect(&name);
    let host = &inspected["HostConfig"];
    assert_eq!(host["NanoCpus"], 500_000_000, "{host}");
    assert_eq!(host["Memory"], 768 << 20);
    assert_eq!(host["CapDrop"], json!(["ALL"]));
    assert_eq!(host["SecurityOpt"], json!(["no-new-privileges"]));
    assert_eq!(
        host["NetworkMode"],
        format!("streamspace-{}", setup.agent_id)
    );
    assert_eq!(host["PortBindings"]["5900/tcp"][0]["HostIp"], "127.0.0.1");
    let published = &inspected["NetworkSettings"]["Ports"]["5900/tcp"];
    assert_eq!(published.as_array().unwrap().len(), 1, "{published}");
    assert_eq!(published[0]["HostIp"], "127.0.0.1");
    assert_eq!(inspected["Config"]["User"], "1000:1000");
    let labels = &inspected["Config"]["Labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "streamspace");
    assert_eq!(labels["streamspace.io/session-id"], id.to_string());
    assert_eq!(labels["streamspace.io/agent-id"], setup.agent_id);
    let env = inspected["Config"]["Env"].to_string();
    assert!(env.contains("STREAMSPACE_USER=alice"), "{env}");
    // Desktops on the agent's network cannot reach each other.
    let network = setup
        .engine
        .docker(&[
            "network",
            "inspect",
            "-f",
            "{{index .Options \"com.docker.network.bridge.enable_icc\"}}",
            &format!("streamspace-{}", setup.agent_id),
        ])
        .unwrap();
    assert_eq!(network, "false");

    // The real desktop, through the control plane and the agent's tunnel.
    let (width, height, desktop) = setup.view(id).await;
    let first_frame = asked.elapsed();
    assert_eq!((width, height), (1280, 800));
    assert_eq!(desktop, "StreamSpace alice");
    eprintln!(
        "docker session start: running after {} ms, first frame after {} ms",
        ready.as_millis(),
        first_frame.as_millis()
    );

    // The persistent home outlives the session; deleting it removes the volume.
    let home = running["home_id"]
        .as_str()
        .expect("a persistent home")
        .to_owned();
    let volume = format!("ss-home-{home}");
    assert_eq!(setup.volumes(), std::slice::from_ref(&volume));
    let (status, body) = setup
        .server
        .delete(&format!("/api/v1/homes/{home}"), &setup.alice)
        .await;
    assert_eq!(status, 409, "a home in use stays: {body}");
    let (status, _) = setup
        .server
        .delete(&format!("/api/v1/sessions/{id}"), &setup.alice)
        .await;
    assert_eq!(status, 202);
    setup.reaches(id, "terminated").await;
    assert!(setup.containers().is_empty());
    assert_eq!(setup.volumes(), [volume]);
    let (status, body) = setup
        .server
        .delete(&format!("/api/v1/homes/{home}"), &setup.alice)
        .await;
    assert_eq!(status, 202, "{body}");
    for _ in 0..100 {
        if setup.volumes().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(setup.volumes().is_empty(), "the home volume is removed");
}

#[actix_web::test]
async fn a_hibernated_container_is_removed_and_wakes_with_its_home_volume() {
    let setup = setup(&[]).await;
    let id = setup.create(json!({"template": "desktop"})).await;
    let running = setup.reaches(id, "running").await;
    let name = format!("ss-{id}");
    let volume = format!("ss-home-{}", running["home_id"].as_str().unwrap());
    setup
        .engine
        .docker(&["exec", &name, "sh", "-c", "echo kept > \"$HOME/notes.txt\""])
        .unwrap();

    let hibernate = format!("/api/v1/sessions/{id}/hibernate");
    let (status, body) = setup.server.post(&hibernate, &setup.alice, json!({})).await;
    assert_eq!(status, 202, "{body}");
    setup.reaches(id, "hibernated").await;
    assert!(setup.containers().is_empty(), "the container is removed");
    assert_eq!(
        setup.volumes(),
        std::slice::from_ref(&volume),
        "its home stays"
    );

    let wake = format!("/api/v1/sessions/{id}/wake");
    let asked = Instant::now();
    let (status, body) = setup.server.post(&wake, &setup.alice, json!({})).await;
    assert_eq!(status, 202, "{body}");
    setup.reaches(id, "running").await;
    let (_, _, desktop) = setup.view(id).await;
    eprintln!(
        "docker wake: first frame {} ms after asking",
        asked.elapsed().as_millis()
    );
    assert_eq!(desktop, "StreamSpace alice");
    assert_eq!(setup.containers(), std::slice::from_ref(&name));
    let notes = setup
        .engine
        .docker(&["exec", &name, "sh", "-c", "cat \"$HOME/notes.txt\""])
        .unwrap();
    assert_eq!(notes.trim(), "kept", "the same home, mounted again");
}

#[actix_web::test]
async fn a_restarted_agent_adopts_its_running_containers() {
    let setup = setup(&[]).await;
    let id = setup.create(json!({"template": "desktop"})).await;
    setup.reaches(id, "running").await;
    let _ = setup.agent.send(Shutdown).await;
    // Gone, expected back: its sessions are left as they are.
    cp::agent_reaches(&setup.server, &setup.agent_id, "warning").await;

    let config = agent_config(&setup.server, &setup.agent_id, &setup.token, &[]);
    let _again = start_agent(config).await;
    cp::agent_reaches(&setup.server, &setup.agent_id, "online").await;
    let (_, session) = setup
        .server
        .get(&format!("/api/v1/sessions/{id}"), &setup.alice)
        .await;
    assert_eq!(session["state"], "running", "{session}");
    assert_eq!(setup.view(id).await.2, "StreamSpace alice");
    assert_eq!(
        setup.containers(),
        [format!("ss-{id}")],
        "the same container"
    );
}

#[actix_web::test]
async fn a_missing_image_or_a_desktop_that_exits_fails_at_once_with_the_reason_and_leaves_nothing()
{
    let setup = setup(&[]).await;
    let missing = setup.create(json!({"template": "missing"})).await;
    let failed = setup.reaches(missing, "failed").await;
    let reason = failed["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("image streamspace/missing-image:1 is not on the Docker engine")
            && reason.contains("could not be pulled"),
        "{reason}"
    );

    let exits = setup
        .create(json!({"template": "misconfigured", "persistent_home": false}))
        .await;
    let failed = setup.reaches(exits, "failed").await;
    let reason = failed["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("exited with code 2")
            && reason.contains("SCREEN_GEOMETRY: \"huge\" is not WIDTHxHEIGHT"),
        "the last lines of its log: {reason}"
    );
    assert!(setup.containers().is_empty(), "{:?}", setup.containers());
    assert!(setup.volumes().is_empty(), "{:?}", setup.volumes());
}

#[actix_web::test]
async fn a_container_killed_behind_the_agents_back_fails_its_session_at_once() {
    // No periodic inventory within the test: only the engine's events can tell.
    let setup = setup(&[("RECONCILE_INTERVAL", "1h")]).await;
    let id = setup.create(json!({"template": "desktop"})).await;
    setup.reaches(id, "running").await;
    setup.engine.docker(&["kill", &format!("ss-{id}")]).unwrap();
    let failed =
        cp::session_reaches_within(&setup.server, id, "failed", Duration::from_secs(10)).await;
    let reason = failed["state_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("exited (137)"), "{failed}");
}

#[actix_web::test]
async fn an_engine_that_does_not_answer_fails_sessions_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}/docker.sock", dir.path().display());
    let setup = setup(&[("DOCKER_HOST", socket.as_str())]).await;
    let id = setup
        .create(json!({"template": "desktop", "persistent_home": false}))
        .await;
    let failed =
        cp::session_reaches_within(&setup.server, id, "failed", Duration::from_secs(10)).await;
    let reason = failed["state_reason"].as_str().unwrap();
    assert_eq!(
        reason,
        format!(
            "the Docker engine at {socket} does not answer: no socket at {}/docker.sock",
            dir.path().display()
        )
    );
}
