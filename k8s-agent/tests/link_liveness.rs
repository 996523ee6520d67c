//! Links that fail without closing, between the real agent and the real control plane, made
//! by a TCP proxy between them: a half-open connection (a NAT dropped it, a peer froze) is
//! noticed by the agent, which dials again at once; a partition degrades the agent's
//! sessions and, once healed, loses nothing.

use std::time::Duration;

mod support;

use streamspace_k8s_agent::link::ControlPlaneLink;
use streamspace_testkit::control_plane as cp;
use streamspace_testkit::network_proxy::Proxy;

/// The real agent (local runtime) dialling the control plane through `proxy`.
fn agent_through(
    proxy: &Proxy,
    token: &str,
    data: &std::path::Path,
) -> actix::Addr<ControlPlaneLink> {
    support::local_agent(&format!("ws://127.0.0.1:{}", proxy.port), token, data)
}

fn upstream(server: &cp::TestServer) -> std::net::SocketAddr {
    server.base.trim_start_matches("http://").parse().unwrap()
}

#[actix_web::test]
async fn a_silent_link_is_dropped_and_the_agent_dials_again_at_once() {
    // The control plane pings every 200 ms; the agent gives up after two silent intervals.
    let server = cp::start(&[
        ("AGENT_HEARTBEAT_INTERVAL", "200ms"),
        ("AGENT_TIMEOUT", "5s"),
    ])
    .await;
    let token = server.register_agent("local-1", "local").await;
    let proxy = Proxy::start(upstream(&server)).await;
    let data = tempfile::tempdir().unwrap();
    let _agent = agent_through(&proxy, &token, data.path());
    cp::agent_reaches(&server, "local-1", "online").await;
    server.audit("agent_connect", 1).await;

    proxy.freeze();
    // A second hello, on a fresh connection through the proxy, well before AGENT_TIMEOUT.
    let connects = server.audit("agent_connect", 2).await;
    assert_eq!(connects.len(), 2);
    cp::agent_reaches(&server, "local-1", "online").await;
}

#[actix_web::test]
async fn a_partition_degrades_the_agents_sessions_and_after_it_heals_nothing_is_lost() {
    let server = cp::start(&[
        ("AGENT_HEARTBEAT_INTERVAL", "200ms"),
        ("AGENT_TIMEOUT", "1s"),
    ])
    .await;
    server.template("xterm").await;
    let token = server.register_agent("local-1", "local").await;
    let proxy = Proxy::start(upstream(&server)).await;
    let data = tempfile::tempdir().unwrap();
    let _agent = agent_through(&proxy, &token, data.path());
    cp::agent_reaches(&server, "local-1", "online").await;
    let kept = cp::create_session(&server, &server.admin, "xterm").await;
    let ended = cp::create_session(&server, &server.admin, "xterm").await;
    for id in [kept, ended] {
        cp::session_reaches_within(&server, id, "running", Duration::from_secs(20)).await;
    }

    proxy.partition();
    cp::agent_reaches(&server, "local-1", "offline").await;
    cp::session_reaches(&server, kept, "degraded").await;
    // A deletion asked for during the partition waits for the agent.
    let (status, _) = server
        .delete(&format!("/api/v1/sessions/{ended}"), &server.admin)
        .await;
    assert_eq!(status, 202);

    proxy.heal();
    cp::agent_reaches(&server, "local-1", "online").await;
    cp::session_reaches(&server, kept, "running").await;
    cp::session_reaches(&server, ended, "terminated").await;
    // The deletion ran once, on the agent, after the heal.
    let deletes: Vec<_> = cp::commands_of(&server, ended)
        .into_iter()
        .filter(|c| c.command_type == "delete_session")
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].status, "completed");
    // Its processes are gone; the other desktop still runs.
    let (_, sessions) = server
        .get("/api/v1/sessions?state=running", &server.admin)
        .await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    let (status, _) = server
        .delete(&format!("/api/v1/sessions/{kept}"), &server.admin)
        .await;
    assert_eq!(status, 202);
    cp::session_reaches(&server, kept, "terminated").await;
}
