//! The real binary and the real server: start-up, probes, configuration errors.

use streamspace_testkit::control_plane as common;

use std::process::Command;

#[actix_web::test]
async fn probes_report_live_and_ready_against_a_real_database() {
    let server = common::start(&[]).await;
    let client = awc::Client::default();
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let mut response = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], status);
    }
}

#[actix_web::test]
async fn every_response_forbids_framing_foreign_scripts_sniffing_and_referrers() {
    let server = common::start(&[]).await;
    let client = awc::Client::default();
    for path in ["/", "/healthz", "/api/v1/auth/me", "/vnc-viewer/x", "/nope"] {
        let response = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
        };
        let csp = header("content-security-policy");
        for directive in [
            "script-src 'self';",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe-inline'"));
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
    }
}

#[test]
fn a_bad_variable_stops_the_binary_with_one_line_naming_it() {
    let output = binary()
        .env("DATABASE_URL", "postgres://127.0.0.1:1/x")
        .env("JWT_SECRET", "too-short")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "streamspace-control-plane: configuration error: JWT_SECRET: is 9 bytes; at least 32 are required\n"
    );
}

#[test]
fn an_unreachable_database_stops_the_binary_naming_database_url() {
    let output = binary()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("streamspace-control-plane: DATABASE_URL: cannot connect"),
        "{stderr}"
    );
}

#[test]
fn a_taken_listen_address_stops_the_binary_with_one_line_before_touching_the_database() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let output = binary()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .env("LISTEN_ADDR", addr.to_string())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "streamspace-control-plane: LISTEN_ADDR: cannot listen on {addr}: \
             Address already in use (os error 98)\n"
        )
    );
}

#[actix_web::test]
async fn without_a_configured_password_the_first_admin_gets_a_generated_one_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = streamspace_testkit::TestDatabase::create();
    let config = common::config(&db, &[("STREAMSPACE_ADMIN_PASSWORD", "")]);
    let running = streamspace_control_plane::server::start(config.clone())
        .await
        .unwrap();
    let password = running
        .generated_admin_password
        .clone()
        .expect("a generated password");
    assert_eq!(password.len(), 20);
    let base = format!("http://{}", running.addr);
    let handle = running.server.handle();
    actix_web::rt::spawn(running.server);
    let mut response = awc::Client::default()
        .post(format!("{base}/api/v1/auth/login"))
        .send_json(&serde_json::json!({"username": "admin", "password": password}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body().await);
    handle.stop(false).await;

    // A second start on the same database creates nothing and prints nothing.
    let again = streamspace_control_plane::server::start(config)
        .await
        .unwrap();
    assert!(again.generated_admin_password.is_none());
}

#[actix_web::test]
async fn a_database_that_does_not_answer_gets_503_within_the_statement_timeout() {
    use diesel::RunQueryDsl;
    let server = common::start(&[]).await;
    // Something else holds the users table: every request that reads it would wait forever.
    let mut locker = server.db.connect();
    diesel::sql_query("BEGIN").execute(&mut locker).unwrap();
    diesel::sql_query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .unwrap();
    let (status, body) = server.get("/api/v1/auth/me", &server.admin).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("database_unavailable")),
        "{body}"
    );
    assert_eq!(
        body["message"],
        "database unavailable: a query took longer than 5 s"
    );
    // Released, the same request works again.
    diesel::sql_query("ROLLBACK").execute(&mut locker).unwrap();
    let (status, _) = server.get("/api/v1/auth/me", &server.admin).await;
    assert_eq!(status, 200);
}

/// Memory freed after a connection storm is given back in small pages: the serving process
/// has transparent huge pages off (`THP_enabled: 0`), whatever the host's THP mode.
#[cfg(target_os = "linux")]
#[actix_web::test]
async fn the_serving_process_runs_without_transparent_huge_pages() {
    let db = streamspace_testkit::TestDatabase::create();
    let (mut child, _) = serving(&db, &[], std::process::Stdio::null()).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let thp = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .expect("the kernel reports THP_enabled");
    assert_eq!(thp.trim(), "0", "{status}");
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_streamspace-control-plane"));
    command.env_clear();
    command
}

#[test]
fn help_lists_every_variable_with_its_default_and_version_names_the_release() {
    let output = binary().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in streamspace_control_plane::config::VARIABLES {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{} ", variable.name)))
            .unwrap_or_else(|| panic!("{} missing from\n{help}", variable.name));
        assert!(line.contains(&format!("[{}]", variable.default)), "{line}");
    }
    assert!(help.contains("create-admin NAME") && help.contains("reset-password NAME"));
    let output = binary().arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("streamspace-control-plane {}\n", env!("CARGO_PKG_VERSION"))
    );
    let output = binary().arg("--frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown arguments"));
}

/// Runs an account command against `db` with `stdin` piped in; exit code and output.
fn account(db: &streamspace_testkit::TestDatabase, args: &[&str], stdin: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = binary()
        .env("DATABASE_URL", db.url())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[actix_web::test]
async fn an_operator_creates_an_admin_and_resets_a_lost_password_from_the_command_line() {
    let server = common::start(&[]).await;
    let before = server.admin.clone();

    let (code, text) = account(&server.db, &["create-admin", "ops"], "ops-password-1\n");
    assert_eq!((code, text.trim()), (0, "admin \"ops\" created"));
    let ops = server.login("ops", "ops-password-1").await;
    let (_, me) = server.get("/api/v1/auth/me", &ops).await;
    assert_eq!(me["role"], "admin");
    let (code, text) = account(&server.db, &["create-admin", "ops"], "ops-password-1\n");
    assert_eq!(code, 2);
    assert!(text.contains("already exists"), "{text}");

    // Nothing piped in: a password is generated and shown once; old sign-ins stop working.
    let (code, text) = account(&server.db, &["reset-password", "admin"], "");
    assert_eq!(code, 0, "{text}");
    let password = text.trim().rsplit(' ').next().unwrap();
    server.login("admin", password).await;
    let (status, _) = server.get("/api/v1/auth/me", &before).await;
    assert_eq!(status, 401, "a token from before the reset is refused");

    for (args, stdin, says) in [
        (
            &["reset-password", "nobody"][..],
            "long-enough-1\n",
            "no user \"nobody\"",
        ),
        (
            &["reset-password", "ops"],
            "short\n",
            "at least 8 characters",
        ),
        (
            &["create-admin", "bad name!"],
            "long-enough-1\n",
            "user name",
        ),
    ] {
        let (code, text) = account(&server.db, args, stdin);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
    }
    let (code, text) = {
        let output = binary().args(["create-admin", "x"]).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2));
    assert!(text.contains("DATABASE_URL"), "{text}");
}

#[actix_web::test]
async fn with_log_format_json_every_line_is_an_object_and_each_request_carries_its_id() {
    let db = streamspace_testkit::TestDatabase::create();
    let (mut child, base) =
        serving(&db, &[("LOG_FORMAT", "json")], std::process::Stdio::piped()).await;
    let client = awc::Client::default();

    // A proxy's id is kept: in the header, in the error body.
    let mut response = client
        .get(format!("{base}/api/v1/auth/me"))
        .insert_header(("X-Request-Id", "trace-42"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers().get("x-request-id").unwrap(), "trace-42");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-42");
    // Without one (or with a malformed one) a fresh id is made.
    let response = client
        .get(format!("{base}/healthz"))
        .insert_header(("X-Request-Id", "has a space"))
        .send()
        .await
        .unwrap();
    let made = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(made.parse::<uuid::Uuid>().is_ok(), "{made}");

    // An agent links and leaves: those lines name it in a field of their own.
    let token = register_agent(&base, "json-1").await;
    let ws_base = base.replacen("http://", "ws://", 1);
    let mut agent = common::ScriptedAgent::open_at(&ws_base, "json-1", &token)
        .await
        .unwrap();
    agent.hello(vec![]).await;
    agent.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // The log is written line by line as it goes: nothing is lost by killing the process.
    let _ = child.kill();
    let _ = child.wait();
    let (log, lines) = streamspace_testkit::json_log::read(&mut child);
    assert!(lines.len() > 3, "{log}");
    for line in &lines {
        for key in ["time", "level", "target", "message"] {
            assert!(line[key].is_string(), "{key} missing: {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l["request_id"] == "trace-42"
            && l["target"] == "streamspace::access"
            && l["message"]
                .as_str()
                .unwrap()
                .contains("GET /api/v1/auth/me 401")),
        "{log}"
    );
    // (Its link's end is logged as a close or, on a loaded machine, as the connection ending.)
    let about_the_agent: Vec<_> = lines.iter().filter(|l| l["agent_id"] == "json-1").collect();
    assert!(
        about_the_agent
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("agent json-1")),
        "{log}"
    );

    let output = binary().env("LOG_FORMAT", "xml").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("LOG_FORMAT: \"xml\" is not text or json"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn sigterm_tells_agents_to_reconnect_elsewhere_and_exits_zero_within_the_grace() {
    const AGENTS: usize = 300;
    let db = streamspace_testkit::TestDatabase::create();
    let (mut child, base) = serving(
        &db,
        &[("SHUTDOWN_GRACE", "3s"), ("RUST_LOG", "warn")],
        std::process::Stdio::inherit(),
    )
    .await;
    let ws = base.replacen("http://", "ws://", 1);
    // Many, so that each close frame must go out though the HTTP server stops right after.
    let mut agents = Vec::new();
    for n in 0..AGENTS {
        let agent_id = format!("local-{n}");
        let token = register_agent(&base, &agent_id).await;
        agents.push(common::ScriptedAgent::connect_at(&ws, &agent_id, &token, vec![]).await);
    }

    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for agent in &mut agents {
        let reason = agent.closed().await.expect("a close frame with a reason");
        assert_eq!(
            reason.code,
            awc::ws::CloseCode::Restart,
            "the agent is told to reconnect at once: {reason:?}"
        );
    }
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "still running {:?} after SIGTERM",
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0));
}

/// The binary serving `db` on a free port with `env` (stdout dropped, stderr as `stderr`
/// says), once `/readyz` answers; and its base URL.
/// Registers a local agent through the binary's API as the admin; its token.
async fn register_agent(base: &str, agent_id: &str) -> String {
    let client = awc::Client::default();
    let mut login = client
        .post(format!("{base}/api/v1/auth/login"))
        .send_json(&serde_json::json!({"username": "admin", "password": common::ADMIN_PASSWORD}))
        .await
        .unwrap();
    let admin: serde_json::Value = login.json().await.unwrap();
    let mut registered = client
        .post(format!("{base}/api/v1/agents/register"))
        .bearer_auth(admin["token"].as_str().unwrap())
        .send_json(&serde_json::json!({"agent_id": agent_id, "platform": "local"}))
        .await
        .unwrap();
    let registered: serde_json::Value = registered.json().await.unwrap();
    registered["credential"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn serving(
    db: &streamspace_testkit::TestDatabase,
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    let port = streamspace_testkit::free_port();
    let child = binary()
        .env("DATABASE_URL", db.url())
        .env("JWT_SECRET", common::JWT_SECRET)
        .env("STREAMSPACE_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(std::time::Instant::now() < deadline, "not ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (child, base)
}
