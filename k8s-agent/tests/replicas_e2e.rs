//! Three control-plane replicas on one database behind a real load balancer (HAProxy checking
//! `/readyz`), and a real agent (local runtime, real Xvnc) linked through it. Every replica
//! is restarted in turn (shut down as on SIGTERM, then started again on its port) while API
//! requests keep coming and a viewer watches the desktop: no request fails, the agent is
//! linked again at once, the viewer is told why and comes back, and the session stays
//! `running` throughout.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use streamspace_control_plane::store::Query;
use streamspace_control_plane::store::commands::CommandsForSession;
use streamspace_control_plane::store::replicas::AgentReplica;
use streamspace_k8s_agent::link::ControlPlaneLink;
use streamspace_testkit::TestDatabase;
use streamspace_testkit::control_plane::{self as cp, TestServer};
use streamspace_testkit::load_balancer::LoadBalancer;
use streamspace_testkit::replica_process::{self, ReplicaProcess};
use streamspace_testkit::rfb::ViewerStream;
use uuid::Uuid;

mod support;

use streamspace_testkit::free_port;

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

/// The real agent (local runtime, real Xvnc) linked through the load balancer.
fn start_agent(
    lb: &LoadBalancer,
    token: &str,
    data: &std::path::Path,
) -> actix::Addr<ControlPlaneLink> {
    support::local_agent(&lb.ws_base(), token, data)
}

/// A session as the API shows it now, asked through the load balancer.
async fn session_now(lb: &LoadBalancer, admin: &str, session: Uuid) -> Value {
    let path = format!("/api/v1/sessions/{session}");
    let (status, body) = call(&lb.base(), "GET", &path, admin, None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Deletes the sessions and waits until they are gone, so no Xvnc outlives the test.
async fn remove(lb: &LoadBalancer, admin: &str, sessions: impl IntoIterator<Item = Uuid>) {
    for id in sessions {
        let path = format!("/api/v1/sessions/{id}");
        call(&lb.base(), "DELETE", &path, admin, None)
            .await
            .unwrap();
        session_reaches(lb, admin, id, "terminated").await;
    }
}

/// Waits until a session reaches `state`, asking through the load balancer.
async fn session_reaches(lb: &LoadBalancer, admin: &str, session: Uuid, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let path = format!("/api/v1/sessions/{session}");
        if let Ok((200, body)) = call(&lb.base(), "GET", &path, admin, None).await
            && body["state"] == state
        {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "session {session} not {state} in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create(lb: &LoadBalancer, admin: &str) -> Uuid {
    let (status, body) = call(
        &lb.base(),
        "POST",
        "/api/v1/sessions",
        admin,
        Some(json!({"template": "xterm", "persistent_home": false})),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().parse().unwrap()
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
    let _agent = start_agent(&lb, &token, data.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    while linked_replica(&db, &lb, &admin).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the agent linked through the load balancer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let session = create(&lb, &admin).await;
    session_reaches(&lb, &admin, session, "running").await;

    // Clients keep asking throughout; every answer must be a success.
    let failures = Rc::new(RefCell::new(Vec::<String>::new()));
    let requests = Rc::new(RefCell::new(0usize));
    let load_running = Rc::new(std::cell::Cell::new(true));
    let load = {
        let (failures, requests, running) =
            (failures.clone(), requests.clone(), load_running.clone());
        let (base, admin) = (lb.base(), admin.clone());
        actix_web::rt::spawn(async move {
            let mut made = Vec::new();
            while running.get() {
                let path = format!("/api/v1/sessions/{session}");
                match call(&base, "GET", &path, &admin, None).await {
                    Ok((200, body)) if body["state"] == "running" => {}
                    Ok((status, body)) => failures.borrow_mut().push(format!("{status} {body}")),
                    Err(e) => failures.borrow_mut().push(e),
                }
                // Every tenth request creates a desktop (and the next one deletes it), so
                // commands are in flight while replicas come and go.
                *requests.borrow_mut() += 1;
                if *requests.borrow() % 10 == 0 {
                    let (method, path, body) = match made.pop() {
                        None => (
                            "POST",
                            "/api/v1/sessions".to_owned(),
                            Some(json!({"template": "xterm", "persistent_home": false})),
                        ),
                        Some(id) => ("DELETE", format!("/api/v1/sessions/{id}"), None),
                    };
                    match call(&base, method, &path, &admin, body).await {
                        Ok((202, body)) if method == "POST" => {
                            made.push(body["id"].as_str().unwrap().parse::<Uuid>().unwrap());
                        }
                        Ok((202 | 204, _)) => {}
                        Ok((status, body)) => failures
                            .borrow_mut()
                            .push(format!("{method} {status} {body}")),
                        Err(e) => failures.borrow_mut().push(e),
                    }
                    *requests.borrow_mut() += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            made
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
            // Linked again, through the load balancer, to another replica; meanwhile the
            // agent stays placeable (a survivor claiming it on its way marked it `warning`,
            // and a session created then found no agent).
            let mut not_placeable = Vec::new();
            while linked_replica(&db, &lb, &admin)
                .await
                .is_none_or(|r| r == holder)
            {
                let (_, agent) = call(&lb.base(), "GET", "/api/v1/agents/local-1", &admin, None)
                    .await
                    .unwrap();
                if agent["status"] != "online" {
                    not_placeable.push(agent["status"].to_string());
                }
                assert!(
                    stopped_at.elapsed() < Duration::from_secs(1),
                    "the agent is linked again within a second"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(
                not_placeable.is_empty(),
                "while its link moved, the agent was {not_placeable:?}"
            );
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
            assert_eq!(reason, "the control plane is restarting; reconnecting");
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
    let made = load.await.unwrap();
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
    let body = session_now(&lb, &admin, session).await;
    assert_eq!(body["state"], "running", "never degraded or lost: {body}");
    remove(&lb, &admin, made.into_iter().chain([session])).await;
}

/// The replica process listening where the agent's replica record says.
fn holder_port(db: &TestDatabase) -> u16 {
    let query = AgentReplica {
        agent_id: "local-1".into(),
        dead_after: Duration::from_secs(1),
    };
    let replica = query.run(&mut db.connect()).unwrap().unwrap();
    replica.address.rsplit(':').next().unwrap().parse().unwrap()
}

async fn wait_linked_elsewhere(db: &TestDatabase, lb: &LoadBalancer, admin: &str, old: u16) {
    let since = Instant::now();
    loop {
        if linked_replica(db, lb, admin).await.is_some() && holder_port(db) != old {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "the agent is linked again within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "agent linked again {} ms after the kill",
        since.elapsed().as_millis()
    );
}

#[actix_web::test]
async fn killing_the_replica_that_holds_the_link_loses_no_desktop_and_runs_no_command_twice() {
    let _ = env_logger::builder().is_test(true).try_init();
    let db = TestDatabase::create();
    let binary = replica_process::binary();
    let env = [
        ("REPLICA_HEARTBEAT_INTERVAL", "200ms"),
        ("AGENT_HEARTBEAT_INTERVAL", "1s"),
        ("AGENT_TIMEOUT", "10s"),
    ];
    let ports = [free_port(), free_port(), free_port()];
    let mut replicas: HashMap<u16, ReplicaProcess> = ports
        .iter()
        .map(|p| (*p, ReplicaProcess::spawn(&binary, &db, *p, &env)))
        .collect();
    let addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    let lb = LoadBalancer::start(&addrs).unwrap();
    let (_, login) = call(
        &lb.base(),
        "POST",
        "/api/v1/auth/login",
        "",
        Some(json!({"username": "admin", "password": cp::ADMIN_PASSWORD})),
    )
    .await
    .unwrap();
    let admin = login["token"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &lb.base(),
        "POST",
        "/api/v1/templates",
        &admin,
        Some(json!({"name": "xterm", "image": "xterm"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let (_, registered) = call(
        &lb.base(),
        "POST",
        "/api/v1/agents/register",
        &admin,
        Some(json!({"agent_id": "local-1", "platform": "local"})),
    )
    .await
    .unwrap();
    let token = registered["credential"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = tempfile::tempdir().unwrap();
    let _agent = start_agent(&lb, &token, data.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    while linked_replica(&db, &lb, &admin).await.is_none() {
        assert!(Instant::now() < deadline, "the agent linked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // During a stream: the viewer's stream ends, and it gets the desktop again.
    let first = create(&lb, &admin).await;
    session_reaches(&lb, &admin, first, "running").await;
    let mut watching = viewer(&lb, &admin, first).await;
    let holder = holder_port(&db);
    replicas.remove(&holder).unwrap().kill();
    wait_linked_elsewhere(&db, &lb, &admin, holder).await;
    assert!(
        watching
            .closed_within(Duration::from_secs(5))
            .await
            .is_some(),
        "a stream through the killed replica ends instead of hanging"
    );
    let back = Instant::now();
    let _again = viewer(&lb, &admin, first).await;
    println!(
        "a viewer had the desktop again {} ms later",
        back.elapsed().as_millis()
    );

    // During a create: delivered by the replica that is then killed, completed through
    // another, exactly once.
    let second = create(&lb, &admin).await;
    let holder = holder_port(&db);
    replicas.remove(&holder).unwrap().kill();
    wait_linked_elsewhere(&db, &lb, &admin, holder).await;
    session_reaches(&lb, &admin, second, "running").await;
    let commands = CommandsForSession(second).run(&mut db.connect()).unwrap();
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0].status, "completed");
    // Neither session was wrongly marked lost or degraded.
    for session in [first, second] {
        let body = session_now(&lb, &admin, session).await;
        assert_eq!(body["state"], "running", "{body}");
    }
    remove(&lb, &admin, [first, second]).await;
}
