//! The agent binary as an operator runs it: configuration errors, SIGTERM, and reconnecting
//! to a restarted control plane without running a command twice.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use streamspace_k8s_agent::runtime::{LIST_DEADLINE, OPEN_DEADLINE};
use streamspace_testkit::control_plane::{self as cp, TestServer};
use streamspace_testkit::rfb::ViewerStream;

const AGENT: &str = env!("CARGO_BIN_EXE_streamspace-k8s-agent");

struct AgentProcess {
    child: Child,
    data: tempfile::TempDir,
}

impl AgentProcess {
    fn start(server: &TestServer, token: &str) -> Self {
        Self::start_with(server, token, &[])
    }

    fn start_with(server: &TestServer, token: &str, env: &[(&str, &str)]) -> Self {
        Self::start_in(server, token, env, tempfile::tempdir().unwrap())
    }

    fn start_in(
        server: &TestServer,
        token: &str,
        env: &[(&str, &str)],
        data: tempfile::TempDir,
    ) -> Self {
        let child = Self::command(server, token, env, data.path())
            .spawn()
            .unwrap();
        AgentProcess { child, data }
    }

    /// The agent's command line and environment, as these tests run it.
    fn command(
        server: &TestServer,
        token: &str,
        env: &[(&str, &str)],
        data: &std::path::Path,
    ) -> Command {
        let mut command = Command::new(AGENT);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("AGENT_ID", "local-1")
            .env("CONTROL_PLANE_URL", server.ws_base())
            .env("AGENT_TOKEN", token)
            .env("PLATFORM", "local")
            .env("DATA_DIR", data)
            .env("HEALTH_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            // One account for all (created once, as in earlier releases) rather than one per
            // user left behind by every run; per-user accounts have their own test.
            .env("DESKTOP_ACCOUNTS", "shared")
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        command
    }

    /// kill -9, then the same agent again on the same data directory.
    fn crash_and_restart(&mut self, server: &TestServer, token: &str, env: &[(&str, &str)]) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().unwrap());
        let mut restarted = Self::start_in(server, token, env, data);
        // `restarted` then holds the dead process and a throwaway directory, and goes.
        std::mem::swap(self, &mut restarted);
    }

    fn terminate(&mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "agent ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Session processes outlive the agent by design; do not leave them behind.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.data.path())
            .status();
        if let Ok(entries) = std::fs::read_dir(self.data.path().join("sessions")) {
            for entry in entries.flatten() {
                if let Ok(bytes) = std::fs::read(entry.path().join("session.json")) {
                    let record: serde_json::Value =
                        serde_json::from_slice(&bytes).unwrap_or_default();
                    for key in ["xvnc_pid", "desktop_pid"] {
                        if let Some(pid) = record[key].as_i64() {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid as i32),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                }
            }
        }
    }
}

/// How many Xvnc servers run for `user`'s desktops: only what this test caused, since other
/// desktops (a demo) may run meanwhile and each test has a user of its own.
fn desktops_of(user: &str) -> usize {
    let xvnc = Command::new("pgrep")
        .arg("-f")
        .arg(format!("{user}'s StreamSpace desktop"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&xvnc.stdout).lines().count()
}

async fn open_viewer(server: &TestServer, token: &str, id: uuid::Uuid) -> ViewerStream {
    ViewerStream::open(&server.viewer_url(token, id).await)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap()
}

/// A new viewer of session `id` gets a framebuffer update with pixels.
async fn assert_viewable(server: &TestServer, token: &str, id: uuid::Uuid) {
    let url = server.viewer_url(token, id).await;
    ViewerStream::open_showing(&url).await.unwrap();
}

/// Like [`assert_viewable`], just after the agent restarted: "online" may still be the old
/// link's word for a moment, so a viewer refused because the new link is not there yet tries
/// again.
async fn viewable_after_restart(server: &TestServer, token: &str, id: uuid::Uuid) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let url = server.viewer_url(token, id).await;
        match ViewerStream::open_showing(&url).await {
            Ok(_) => return,
            Err(e) if e.contains("is offline") && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the desktop is not viewable: {e}"),
        }
    }
}

/// An `XVNC` that waits a second before starting Xvnc, in a directory of its own.
fn slow_xvnc() -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let scripts = tempfile::tempdir().unwrap();
    // Run by the agent's unprivileged desktop account when the agent is root.
    std::fs::set_permissions(scripts.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let slow = scripts.path().join("slow-xvnc");
    std::fs::write(&slow, "#!/bin/sh\nsleep 1\nexec Xvnc \"$@\"\n").unwrap();
    std::fs::set_permissions(&slow, PermissionsExt::from_mode(0o755)).unwrap();
    let path = slow.to_string_lossy().into_owned();
    (scripts, path)
}

#[test]
fn help_lists_every_variable_with_its_default_and_version_names_the_release() {
    let run = |arg: &str| Command::new(AGENT).env_clear().arg(arg).output().unwrap();
    let output = run("--help");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in streamspace_k8s_agent::config::VARIABLES {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{} ", variable.name)))
            .unwrap_or_else(|| panic!("{} missing from\n{help}", variable.name));
        assert!(line.contains(&format!("[{}]", variable.default)), "{line}");
    }
    assert_eq!(
        String::from_utf8(run("--version").stdout).unwrap(),
        format!("streamspace-k8s-agent {}\n", env!("CARGO_PKG_VERSION"))
    );
    let unknown = run("--frobnicate");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown arguments"));
}

#[test]
fn bad_configuration_stops_the_agent_with_one_line_naming_the_variable() {
    for (var, value, line) in [
        (
            "CONTROL_PLANE_URL",
            "http://cp:8080",
            "streamspace-k8s-agent: configuration error: CONTROL_PLANE_URL: \"http://cp:8080\" must start with ws:// or wss://\n",
        ),
        (
            "CONTROL_PLANE_URL",
            "ws://cp:8080",
            "streamspace-k8s-agent: configuration error: CONTROL_PLANE_URL: \"ws://cp:8080\" is not encrypted: use wss:// (TLS), or set ALLOW_INSECURE_CONTROL_PLANE=true on a network you trust\n",
        ),
        (
            "PLATFORM",
            "podman",
            "streamspace-k8s-agent: configuration error: PLATFORM: \"podman\" is not kubernetes, docker or local\n",
        ),
    ] {
        let output = Command::new(AGENT)
            .env_clear()
            .env("AGENT_ID", "a")
            .env("CONTROL_PLANE_URL", "wss://cp:8080")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert_eq!(String::from_utf8(output.stderr).unwrap(), line);
    }
    let output = Command::new(AGENT).env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "streamspace-k8s-agent: configuration error: AGENT_ID: is required but not set\n"
    );
}

#[actix_web::test]
async fn sigterm_says_goodbye_and_exits_zero_within_seconds() {
    let server = cp::start(&[]).await;
    let token = server.register_agent("local-1", "local").await;
    let mut agent = AgentProcess::start(&server, &token);
    cp::agent_reaches(&server, "local-1", "online").await;
    let (code, took) = agent.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    server
        .wait_for(
            "/api/v1/audit?action=agent_goodbye",
            &server.admin,
            "goodbye audited",
            |b| b["entries"][0]["details"]["reason"] == "agent shutting down (SIGTERM)",
        )
        .await;
}

#[actix_web::test]
async fn after_a_control_plane_restart_the_agent_is_back_at_once_and_runs_nothing_twice() {
    let server = cp::start(&[]).await;
    let (status, body) = server
        .post(
            "/api/v1/templates",
            &server.admin,
            serde_json::json!({"name": "xterm", "image": "xterm"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = server.register_agent("local-1", "local").await;
    // A VNC server that takes a second to start keeps the create running long enough to
    // stop the control plane between the agent's ack and its completion.
    let (_scripts, slow_path) = slow_xvnc();
    let agent = AgentProcess::start_with(&server, &token, &[("XVNC", slow_path.as_str())]);
    cp::agent_reaches(&server, "local-1", "online").await;
    let addr = server.base.trim_start_matches("http://").to_owned();

    // The agent acknowledges the create, then the control plane goes away before the
    // completion arrives: the command stays acknowledged, not completed.
    // A user of its own, so the desktop's name (it carries the user) is this test's alone.
    let (user, user_token) = own_user(&server, "redelivery").await;
    let id = cp::create_session(&server, &user_token, "xterm").await;
    cp::session_reaches(&server, id, "creating").await;
    // The agent is told to link again as the shutdown begins, and retries from then on.
    let stopping = Instant::now();
    let db = server.stop().await;
    let server = cp::start_on(db, &[("LISTEN_ADDR", addr.as_str())]).await;
    let away = stopping.elapsed();
    cp::agent_reaches(&server, "local-1", "online").await;
    let back_after = stopping.elapsed() - away;
    eprintln!(
        "agent back {} ms after the control plane restarted ({} ms after the shutdown began)",
        back_after.as_millis(),
        away.as_millis()
    );
    // Its retries start at 250 ms and double, with jitter: the one pending when the control
    // plane is back is at most about twice the time it has been retrying, so the agent is back
    // within that, not at the 30 s cap. On top: its hello, the status write and this test's
    // polling (90–154 ms in all on an idle machine; it took 3.05 s once under the whole test
    // command's load while the desktop starting here held up the agent's hello).
    assert!(
        back_after < away * 2 + Duration::from_secs(6),
        "agent took {back_after:?} to come back, retrying {away:?} before"
    );

    // The redelivered create is answered from the agent's record, not run again.
    cp::session_reaches(&server, id, "running").await;
    cp::commands_until(&server, id, "completed after a redelivery", |c| {
        c[0].status == "completed" && c[0].attempts >= 2
    })
    .await;
    let sessions = std::fs::read_dir(agent.data.path().join("sessions"))
        .unwrap()
        .count();
    assert_eq!(
        sessions, 1,
        "one session directory: the desktop was started once"
    );
    assert_eq!(desktops_of(&user), 1, "exactly one Xvnc for the session");
}

/// A Kubernetes API server or a Docker engine that took the connection and froze (their
/// clients wait minutes for an answer) keeps the agent from listing its sessions, not from
/// linking: once the list's deadline passes it says hello without them, and why.
#[actix_web::test]
async fn an_agent_whose_api_server_froze_links_without_its_list_and_says_why() {
    // The kernel completes the connections in the listen backlog; nothing ever reads them.
    let frozen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        kubeconfig.path(),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: frozen\n  cluster:\n    server: http://{}\ncontexts:\n- name: frozen\n  context:\n    cluster: frozen\n    user: nobody\ncurrent-context: frozen\nusers:\n- name: nobody\n  user: {{}}\n",
            frozen.local_addr().unwrap()
        ),
    )
    .unwrap();
    let kubeconfig = kubeconfig.path().to_string_lossy().into_owned();
    links_without_its_list("kubernetes", &[("KUBECONFIG", kubeconfig.as_str())]).await;
}

#[actix_web::test]
async fn an_agent_whose_docker_engine_froze_links_without_its_list_and_says_why() {
    let (_frozen, host) = frozen_engine();
    links_without_its_list("docker", &[("DOCKER_HOST", host.as_str())]).await;
}

/// A `DOCKER_HOST` whose socket takes connections (the kernel completes them in the listen
/// backlog) and never reads them; frozen while the first value lives.
fn frozen_engine() -> (
    (tempfile::TempDir, std::os::unix::net::UnixListener),
    String,
) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let host = format!("unix://{}", socket.display());
    ((dir, listener), host)
}

/// A viewer of a desktop behind a frozen engine is told why once the open deadline passes,
/// not after the engine client's two minutes.
#[actix_web::test]
async fn a_viewer_of_a_desktop_behind_a_frozen_engine_is_told_why() {
    let (_frozen, host) = frozen_engine();
    let server = cp::start(&[]).await;
    server.template("xterm").await;
    let token = server.register_agent("local-1", "docker").await;
    let env = [("PLATFORM", "docker"), ("DOCKER_HOST", host.as_str())];
    let _agent = AgentProcess::start_with(&server, &token, &env);
    linked_despite_its_runtime(&server).await;
    let alice = server.user("alice").await;
    let id = server.running_session_on("alice", "xterm", "local-1");

    let url = server.viewer_url(&alice, id).await;
    let mut viewer = ViewerStream::open(&url)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    let reason = viewer
        .closed_within(OPEN_DEADLINE + Duration::from_secs(20))
        .await
        .expect("the viewer was left waiting");
    assert!(
        reason.contains(&format!(
            "could not be reached within {} s",
            OPEN_DEADLINE.as_secs()
        )),
        "{reason}"
    );
}

async fn links_without_its_list(platform: &str, env: &[(&str, &str)]) {
    let server = cp::start(&[]).await;
    let token = server.register_agent("local-1", platform).await;
    let health = format!("127.0.0.1:{}", streamspace_testkit::free_port());
    let mut env = env.to_vec();
    env.extend([("PLATFORM", platform), ("HEALTH_ADDR", health.as_str())]);
    let _agent = AgentProcess::start_with(&server, &token, &env);
    linked_despite_its_runtime(&server).await;
    let connects = server.audit("agent_connect", 1).await;
    assert_eq!(
        connects[0]["details"]["inventory_error"],
        format!(
            "the runtime did not list its sessions within {} s",
            LIST_DEADLINE.as_secs()
        )
    );
    // An admin asking it what it runs is told why it cannot say, before the query's own
    // deadline would answer "did not answer".
    let (status, body) = server
        .get("/api/v1/agents/local-1/sessions", &server.admin)
        .await;
    assert_eq!((status, body["error"].as_str()), (503, Some("agent_error")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("within {} s", LIST_DEADLINE.as_secs())),
        "{body}"
    );
    // Its metrics stay readable, the list that did not come counted as a failed call.
    let text = agent_metrics(&health).await;
    assert!(
        text.lines().any(|l| l.starts_with(
            "streamspace_agent_runtime_call_seconds_count{operation=\"list\",outcome=\"error\"} "
        )),
        "{text}"
    );
}

/// Waits for agent `local-1` to be online: the start's engine check and the hello's list may
/// each wait out their deadline first.
async fn linked_despite_its_runtime(server: &TestServer) {
    let started = Instant::now();
    loop {
        let (status, body) = server.get("/api/v1/agents/local-1", &server.admin).await;
        if status == 200 && body["status"] == "online" {
            return;
        }
        assert!(
            started.elapsed() < LIST_DEADLINE * 2 + Duration::from_secs(20),
            "the agent did not link: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The agent's `/metrics` at `health`, which must answer 200 (a frozen runtime included).
async fn agent_metrics(health: &str) -> String {
    let mut response = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
        .get(format!("http://{health}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    String::from_utf8(response.body().await.unwrap().to_vec()).unwrap()
}

/// A user of this test's alone (`PREFIX-` and 8 random hex digits): its name and its login.
async fn own_user(server: &TestServer, prefix: &str) -> (String, String) {
    let user = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let token = server.user(&user).await;
    (user, token)
}

#[actix_web::test]
async fn an_agent_killed_during_a_create_runs_it_once_after_it_restarts() {
    let server = cp::start(&[]).await;
    server.template("xterm").await;
    let token = server.register_agent("local-1", "local").await;
    // A VNC server that takes a second to start keeps the create running long enough to
    // kill the agent in the middle of it.
    let (_scripts, slow_path) = slow_xvnc();
    let env = [("XVNC", slow_path.as_str())];
    let mut agent = AgentProcess::start_with(&server, &token, &env);
    cp::agent_reaches(&server, "local-1", "online").await;

    let (user, user_token) = own_user(&server, "crash").await;
    let id = cp::create_session(&server, &user_token, "xterm").await;
    cp::session_reaches(&server, id, "creating").await;
    agent.crash_and_restart(&server, &token, &env);

    // The create is redelivered to the restarted agent and runs to the end, once: whatever
    // the killed agent had started for it is gone.
    cp::session_reaches_within(&server, id, "running", Duration::from_secs(30)).await;
    assert_eq!(desktops_of(&user), 1, "exactly one Xvnc for the session");
}

#[actix_web::test]
async fn a_control_plane_restart_during_a_stream_ends_it_and_the_desktop_is_viewable_again() {
    let server = cp::start(&[]).await;
    server.template("xterm").await;
    let token = server.register_agent("local-1", "local").await;
    let _agent = AgentProcess::start(&server, &token);
    cp::agent_reaches(&server, "local-1", "online").await;
    let alice = server.user("alice").await;
    let id = cp::create_session(&server, &alice, "xterm").await;
    cp::session_reaches_within(&server, id, "running", Duration::from_secs(20)).await;
    let mut viewer = open_viewer(&server, &alice, id).await;
    viewer.handshake().await.unwrap();

    // The control plane goes away mid-stream: the viewer's stream ends (it does not hang).
    let addr = server.base.trim_start_matches("http://").to_owned();
    let db = server.stop().await;
    let _ = viewer.closed().await;

    // Back on the same address: the agent returns, the session is still running (its agent
    // kept it), and a new viewer gets pixels.
    let server = cp::start_on(db, &[("LISTEN_ADDR", addr.as_str())]).await;
    cp::agent_reaches(&server, "local-1", "online").await;
    cp::session_reaches(&server, id, "running").await;
    let alice = server.login("alice", "alice-password").await;
    assert_viewable(&server, &alice, id).await;
}

#[actix_web::test]
async fn an_agent_killed_during_a_stream_tells_the_viewer_and_its_desktop_is_viewable_after_it_restarts()
 {
    let server = cp::start(&[]).await;
    server.template("xterm").await;
    let token = server.register_agent("local-1", "local").await;
    let mut agent = AgentProcess::start(&server, &token);
    cp::agent_reaches(&server, "local-1", "online").await;
    let alice = server.user("alice").await;
    let id = cp::create_session(&server, &alice, "xterm").await;
    cp::session_reaches_within(&server, id, "running", Duration::from_secs(20)).await;
    let mut viewer = open_viewer(&server, &alice, id).await;
    viewer.handshake().await.unwrap();

    agent.crash_and_restart(&server, &token, &[]);
    assert_eq!(
        viewer.closed().await.as_deref(),
        Some("the agent's link to the control plane dropped")
    );
    // The restarted agent adopts the desktop it left running: viewable again, same session.
    cp::agent_reaches(&server, "local-1", "online").await;
    cp::session_reaches(&server, id, "running").await;
    viewable_after_restart(&server, &alice, id).await;
}

#[actix_web::test]
async fn a_hibernated_desktop_survives_both_restarting_and_wakes_with_its_home() {
    let server = cp::start(&[]).await;
    // The desktop notes each start in its home, then runs xterm.
    let (status, body) = server
        .post(
            "/api/v1/templates",
            &server.admin,
            serde_json::json!({"name": "noting", "image":
                "sh -c 'echo \"$STREAMSPACE_SESSION_ID\" >> \"$HOME/starts\"; exec xterm'"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = server.register_agent("local-1", "local").await;
    let mut agent = AgentProcess::start(&server, &token);
    cp::agent_reaches(&server, "local-1", "online").await;
    let (user, user_token) = own_user(&server, "sleeper").await;
    let (status, body) = server
        .post(
            "/api/v1/sessions",
            &user_token,
            serde_json::json!({"template": "noting", "persistent_home": true}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id: uuid::Uuid = body["id"].as_str().unwrap().parse().unwrap();
    let running = cp::session_reaches_within(&server, id, "running", Duration::from_secs(20)).await;
    let home = agent
        .data
        .path()
        .join("homes")
        .join(running["home_id"].as_str().unwrap());
    assert_viewable(&server, &user_token, id).await;
    std::fs::write(home.join("notes.txt"), "kept while asleep").unwrap();

    let (status, body) = server
        .post(
            &format!("/api/v1/sessions/{id}/hibernate"),
            &user_token,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    cp::session_reaches_within(&server, id, "hibernated", Duration::from_secs(20)).await;
    assert_eq!(desktops_of(&user), 0, "its Xvnc stopped");

    // Both restart: the agent killed and started again on its data, the control plane
    // stopped and started again on its database. Still hibernated, nothing running.
    agent.crash_and_restart(&server, &token, &[]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let db = server.stop().await;
    let server = cp::start_on(db, &[("LISTEN_ADDR", addr.as_str())]).await;
    cp::agent_reaches(&server, "local-1", "online").await;
    let user_token = server.login(&user, &format!("{user}-password")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, still) = server
        .get(&format!("/api/v1/sessions/{id}"), &user_token)
        .await;
    assert_eq!(still["state"], "hibernated", "{still}");
    assert_eq!(desktops_of(&user), 0);

    // Woken: the same desktop on the same home, viewable again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server
            .post(
                &format!("/api/v1/sessions/{id}/wake"),
                &user_token,
                serde_json::json!({}),
            )
            .await;
        match status {
            202 => break,
            // "online" may still be the old link's word for a moment.
            503 if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => panic!("wake: {status} {body}"),
        }
    }
    cp::session_reaches_within(&server, id, "running", Duration::from_secs(20)).await;
    assert_eq!(desktops_of(&user), 1, "one Xvnc again");
    assert_eq!(
        std::fs::read_to_string(home.join("notes.txt")).unwrap(),
        "kept while asleep"
    );
    assert_eq!(
        std::fs::read_to_string(home.join("starts")).unwrap(),
        format!("{id}\n{id}\n"),
        "started twice, both times on this home"
    );
    viewable_after_restart(&server, &user_token, id).await;
}

#[actix_web::test]
async fn with_log_format_json_every_line_of_the_agent_is_an_object_naming_it() {
    let server = cp::start(&[]).await;
    let token = server.register_agent("local-1", "local").await;
    let data = tempfile::tempdir().unwrap();
    let mut child = AgentProcess::command(
        &server,
        &token,
        &[("LOG_FORMAT", "json"), ("RUST_LOG", "info")],
        data.path(),
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    cp::agent_reaches(&server, "local-1", "online").await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap();
    let (log, lines) = streamspace_testkit::json_log::read(&mut child);
    assert!(lines.len() >= 2, "{log}");
    for line in &lines {
        assert_eq!(line["agent_id"], "local-1", "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("shutting down")),
        "{log}"
    );
}

/// A scrape parsed by the official Prometheus Python client's OpenMetrics parser (Debian's
/// `python3-prometheus-client`): its families with their type, unit and samples.
fn parsed(text: &str) -> Vec<serde_json::Value> {
    use std::io::Write;
    const PARSE: &str = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        print(json.dumps([{'name': f.name, 'type': f.type, 'unit': f.unit, \
        'samples': [{'name': s.name, 'labels': s.labels, 'value': s.value} for s in f.samples]} \
        for f in text_string_to_metric_families(sys.stdin.read())]))";
    let mut python = Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (scripts/test installs it)");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Counters' samples end in `_total`, histograms name their unit (`_seconds`, `_bytes`),
/// every name is ours.
fn assert_conventions(families: &[serde_json::Value], text: &str) {
    assert!(!families.is_empty(), "{text}");
    for family in families {
        let name = family["name"].as_str().unwrap();
        assert!(name.starts_with("streamspace_"), "{name}");
        match family["type"].as_str().unwrap() {
            "counter" => {
                for sample in family["samples"].as_array().unwrap() {
                    let sample = sample["name"].as_str().unwrap();
                    assert!(
                        sample == format!("{name}_total") || sample == format!("{name}_created"),
                        "counter {name}: sample {sample}"
                    );
                }
            }
            "histogram" => assert!(
                name.ends_with("_seconds") || name.ends_with("_bytes"),
                "histogram {name}"
            ),
            "gauge" => {}
            other => panic!("{name}: unexpected type {other}\n{text}"),
        }
    }
}

#[actix_web::test]
async fn both_metrics_endpoints_parse_and_the_agent_counts_sessions_tunnel_bytes_links_and_calls() {
    let server = cp::start(&[]).await;
    server.template("xterm").await;
    let token = server.register_agent("local-1", "local").await;
    let port = streamspace_testkit::free_port();
    let health = format!("127.0.0.1:{port}");
    let _agent = AgentProcess::start_with(&server, &token, &[("HEALTH_ADDR", &health)]);
    cp::agent_reaches(&server, "local-1", "online").await;
    let alice = server.user("alice").await;
    let id = cp::create_session(&server, &alice, "xterm").await;
    cp::session_reaches(&server, id, "running").await;
    let url = server.viewer_url(&alice, id).await;
    let (_viewer, _) = ViewerStream::open_showing(&url).await.unwrap();

    let agent_text = agent_metrics(&health).await;
    let agent = parsed(&agent_text);
    assert_conventions(&agent, &agent_text);
    // The sum of the samples named `sample` with `label`.
    let value = |sample: &str, label: (&str, &str)| -> f64 {
        agent
            .iter()
            .flat_map(|f| f["samples"].as_array().unwrap())
            .filter(|s| s["name"] == sample && s["labels"][label.0] == label.1)
            .map(|s| s["value"].as_f64().unwrap())
            .sum()
    };
    assert_eq!(
        value("streamspace_agent_sessions", ("state", "running")),
        1.0
    );
    assert!(
        value(
            "streamspace_agent_tunnel_bytes_total",
            ("direction", "to_viewer")
        ) > 1e5
    );
    assert!(
        value(
            "streamspace_agent_tunnel_bytes_total",
            ("direction", "from_viewer")
        ) > 0.0
    );
    assert!(
        value(
            "streamspace_agent_runtime_call_seconds_count",
            ("operation", "create_session")
        ) >= 1.0,
        "{agent_text}"
    );
    let links = agent
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .find(|s| s["name"] == "streamspace_agent_links_total")
        .unwrap_or_else(|| panic!("{agent_text}"));
    assert!(links["value"].as_f64().unwrap() >= 1.0);

    let (status, text) = server.call("GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_owned();
    let control_plane = parsed(&text);
    assert_conventions(&control_plane, &text);
    assert_dashboard_reads(&[&agent, &control_plane]);
}

/// The charts' Grafana dashboard asks only for series these scrapes have: every metric its
/// queries name is a sample of one of them, every label it groups by is on that metric.
fn assert_dashboard_reads(scrapes: &[&[serde_json::Value]]) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/streamspace-control-plane/dashboards/streamspace.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let samples: Vec<&serde_json::Value> = scrapes
        .iter()
        .flat_map(|families| families.iter())
        .flat_map(|f| f["samples"].as_array().unwrap())
        .collect();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 4);
    let mut named = 0;
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("streamspace_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                let of_metric: Vec<_> = samples.iter().filter(|s| s["name"] == name).collect();
                assert!(!of_metric.is_empty(), "{expr}: no sample {name}");
                named += 1;
                // `by (a, b)` right before the metric's aggregation names its labels.
                if let Some(by) = expr.split(" by (").nth(1) {
                    let labels = by.split(')').next().unwrap();
                    for label in labels
                        .split(", ")
                        .filter(|l| !["le", "instance", "pod"].contains(l))
                    {
                        assert!(
                            of_metric.iter().any(|s| s["labels"].get(label).is_some()),
                            "{expr}: {name} has no label {label}"
                        );
                    }
                }
            }
        }
    }
    assert!(named >= 8, "{named}");
}
