//! Three control-plane replicas on one database behind a real load balancer (HAProxy checking
//! `/readyz`), and a real agent (local runtime, real Xvnc) linked through it. Every replica
//! is restarted in turn (shut down as on SIGTERM, then started again on its port) while API
//! requests keep coming and a viewer watches the desktop: no request fails, the agent is
//! linked again at once, the viewer is told why and comes back, and the session stays
//! `running` throughout.

use std::cell::RefCell;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use actix::Actor;
use serde_json::{Value, json};
use streamspace_control_plane::store::Query;
use streamspace_control_plane::store::replicas::AgentReplica;
use streamspace_k8s_agent::config::Config;
use streamspace_k8s_agent::link::ControlPlaneLink;
use streamspace_k8s_agent::runtime::local::accounts::DesktopAccounts;
use streamspace_k8s_agent::runtime::local::{LocalRuntime, LocalSettings};
use streamspace_testkit::TestDatabase;
use streamspace_testkit::control_plane::{self as cp, TestServer};
use streamspace_testkit::load_balancer::LoadBalancer;
use streamspace_testkit::rfb::ViewerStream;
use uuid::Uuid;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn replica(db: Option<TestDatabase>, port: u16) -> TestServer {
    let listen = format!("127.0.0.1:{port}");
    let overrides = [
        ("REPLICA_HEARTBEAT_INTERVAL", "200ms"),
        ("AGENT_HEARTBEAT_INTERVAL", "1s"),
        ("AGENT_TIMEOUT", "10s"),
        ("LISTEN_ADDR", listen.as_str()),
    ];
    match db {
        None => cp::start(&overrides).await,
        Some(db) => cp::start_on(db, &overrides).await,
    }
}

/// A request through the load balancer; `Err` when no answer came at all.
async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let request = client
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(token);
    let mut response = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    }
    .map_err(|e| e.to_string())?;
    let bytes = response.body().await.map_err(|e| e.to_string())?;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((response.status().as_u16(), value))
}

async fn viewer(lb: &LoadBalancer, token: &str, session: Uuid) -> ViewerStream {
    let (status, body) = call(
        &lb.base(),
        "POST",
        &format!("/api/v1/sessions/{session}/viewer-token"),
        token,
        Some(json!({})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let url = format!(
        "{}{}?token={}",
        lb.ws_base(),
        body["path"].as_str().unwrap(),
        body["token"].as_str().unwrap()
    );
    let mut viewer = ViewerStream::open(&url)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    let init = viewer.handshake().await.unwrap();
    viewer
        .request_update(init.width, init.height)
        .await
        .unwrap();
    assert!(!viewer.read_update().await.unwrap().0.is_empty());
    viewer
}

/// The live replica holding the agent's link, once it is linked there (a replica that only
/// claimed it, waiting for it to come back, does not count).
async fn linked_replica(db: &TestDatabase, lb: &LoadBalancer, admin: &str) -> Option<Uuid> {
    let query = AgentReplica {
        agent_id: "local-1".into(),
        dead_after: Duration::from_secs(1),
    };
    let replica = query.run(&mut db.connect()).unwrap()?;
    let (_, agent) = call(&lb.base(), "GET", "/api/v1/agents/local-1", admin, None)
        .await
        .ok()?;
    (agent["status"] == "online").then_some(replica.id)
}

#[actix_web::test]
async fn a_rolling_restart_of_every_replica_loses_no_request_no_link_and_no_desktop() {
    let _ = env_logger::builder().is_test(true).try_init();
    let ports = [free_port(), free_port(), free_port()];
    let first = replica(None, ports[0]).await;
    let db = first.db.clone();
    let mut replicas = [
        Some(first),
        Some(replica(Some(db.clone()), ports[1]).await),
        Some(replica(Some(db.clone()), ports[2]).await),
    ];
    let addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    let lb = LoadBalancer::start(&addrs).unwrap();
    let some = replicas[0].as_ref().unwrap();
    let admin = some.admin.clone();
    some.template("xterm").await;
    let token = some.register_agent("local-1", "local").await;

    let data = tempfile::tempdir().unwrap();
    let url = lb.ws_base();
    let env = [
        ("AGENT_ID", "local-1"),
        ("CONTROL_PLANE_URL", url.as_str()),
        ("AGENT_TOKEN", token.as_str()),
        ("PLATFORM", "local"),
    ];
    let config = Config::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let runtime = LocalRuntime::open(LocalSettings {
        data_dir: data.path().to_owned(),
        xvnc: "Xvnc".into(),
        geometry: "800x600".into(),
        max_sessions: 4,
        accounts: DesktopAccounts::Agent,
    })
    .unwrap();
    let _agent = ControlPlaneLink::new(
        Arc::new(config),
        Arc::new(runtime),
        Arc::new(AtomicBool::new(false)),
    )
    .start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while linked_replica(&db, &lb, &admin).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the agent linked through the load balancer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = call(
        &lb.base(),
        "POST",
        "/api/v1/sessions",
        &admin,
        Some(json!({"template": "xterm", "persistent_home": false})),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{body}");
    let session: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    cp::session_reaches(replicas[1].as_ref().unwrap(), session, "running").await;

    // Clients keep asking throughout; every answer must be a success.
    let failures = Rc::new(RefCell::new(Vec::<String>::new()));
    let requests = Rc::new(RefCell::new(0usize));
    let load_running = Rc::new(std::cell::Cell::new(true));
    let load = {
        let (failures, requests, running) =
            (failures.clone(), requests.clone(), load_running.clone());
        let (base, admin) = (lb.base(), admin.clone());
        actix_web::rt::spawn(async move {
            while running.get() {
                let path = format!("/api/v1/sessions/{session}");
                match call(&base, "GET", &path, &admin, None).await {
                    Ok((200, body)) if body["state"] == "running" => {}
                    Ok((status, body)) => failures.borrow_mut().push(format!("{status} {body}")),
                    Err(e) => failures.borrow_mut().push(e),
                }
                *requests.borrow_mut() += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    for i in 0..3 {
        let mut watching = viewer(&lb, &admin, session).await;
        let holder = linked_replica(&db, &lb, &admin).await.unwrap();
        let stopping = replicas[i].take().unwrap();
        let held_the_link = stopping.replica_id == holder;
        let stopped_at = Instant::now();
        let shutting_down = actix_web::rt::spawn(stopping.shut_down());
        if held_the_link {
            // Linked again, through the load balancer, to another replica.
            while linked_replica(&db, &lb, &admin)
                .await
                .is_none_or(|r| r == holder)
            {
                assert!(
                    stopped_at.elapsed() < Duration::from_secs(1),
                    "the agent is linked again within a second"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            println!(
                "replica {i} (holding the agent's link) shut down: agent linked again after {} ms",
                stopped_at.elapsed().as_millis()
            );
        }
        let _db = shutting_down.await.unwrap();
        println!(
            "replica {i} shut down in {} ms",
            stopped_at.elapsed().as_millis()
        );
        // A viewer whose stream went through the stopped replica is told why; any viewer
        // gets the desktop again through the others.
        if let Some(reason) = watching.closed_within(Duration::from_millis(200)).await {
            assert!(
                reason.contains("restarting") || reason.contains("shutting down"),
                "{reason}"
            );
        }
        let back_at = Instant::now();
        let _again = viewer(&lb, &admin, session).await;
        println!(
            "replica {i} shut down: a viewer had the desktop again {} ms later",
            back_at.elapsed().as_millis()
        );
        replicas[i] = Some(replica(Some(db.clone()), ports[i]).await);
    }
    load_running.set(false);
    load.await.unwrap();
    assert!(
        failures.borrow().is_empty(),
        "{} of {} requests failed: {:?}",
        failures.borrow().len(),
        requests.borrow(),
        failures.borrow()
    );
    println!(
        "{} API requests during the rolling restart, none failed",
        requests.borrow()
    );
    let (_, body) = call(
        &lb.base(),
        "GET",
        &format!("/api/v1/sessions/{session}"),
        &admin,
        None,
    )
    .await
    .unwrap();
    assert_eq!(body["state"], "running", "never degraded or lost: {body}");
}
