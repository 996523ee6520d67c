//! Shared by the integration tests: a real control plane on a free port and a real database.

#![allow(dead_code)]

use std::collections::HashMap;

use streamspace_control_plane::config::Config;
use streamspace_control_plane::server;
use streamspace_testkit::TestDatabase;

/// Configuration for a control plane on a free loopback port with its own database.
pub fn config(db: &TestDatabase, overrides: &[(&str, &str)]) -> Config {
    let mut env: HashMap<&str, &str> = [
        ("DATABASE_URL", db.url()),
        ("JWT_SECRET", "test-secret-test-secret-test-secret!"),
        ("LISTEN_ADDR", "127.0.0.1:0"),
    ]
    .into();
    env.extend(overrides.iter().copied());
    Config::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap()
}

/// A running control plane; stops with the test's actix system.
pub struct TestServer {
    pub db: TestDatabase,
    pub base: String,
}

/// Starts the real server in the current actix system.
pub fn start(overrides: &[(&str, &str)]) -> TestServer {
    // awc is built with rustls in this workspace; it needs a provider chosen up front.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create();
    let running = server::start(config(&db, overrides)).expect("control plane starts");
    let base = format!("http://{}", running.addr);
    actix_web::rt::spawn(running.server);
    TestServer { db, base }
}
