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
    let output = Command::new(env!("CARGO_BIN_EXE_streamspace-control-plane"))
        .env_clear()
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
    let output = Command::new(env!("CARGO_BIN_EXE_streamspace-control-plane"))
        .env_clear()
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
