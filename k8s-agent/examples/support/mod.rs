//! What the benchmarks share: a real agent with the local runtime, in this process, linked to
//! a control plane the benchmark started.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::{Actor, Addr};
use streamspace_k8s_agent::config::Config;
use streamspace_k8s_agent::link::ControlPlaneLink;
use streamspace_k8s_agent::runtime::Runtime;
use streamspace_k8s_agent::runtime::local::accounts::DesktopAccounts;
use streamspace_k8s_agent::runtime::local::{LocalRuntime, LocalSettings};
use streamspace_testkit::control_plane::{self as cp, TestServer};

/// A linked agent; its sessions' files live as long as it does.
pub struct LocalAgent {
    pub runtime: Arc<dyn Runtime>,
    _link: Addr<ControlPlaneLink>,
    _data: tempfile::TempDir,
}

/// Registers `agent_id` and links a real agent whose desktops run `xvnc` as their VNC server.
pub async fn local_agent(
    server: &TestServer,
    agent_id: &str,
    xvnc: &str,
    max_sessions: u32,
) -> LocalAgent {
    let token = server.register_agent(agent_id, "local").await;
    let data = tempfile::tempdir().unwrap();
    let runtime: Arc<dyn Runtime> = Arc::new(
        LocalRuntime::open(LocalSettings {
            data_dir: data.path().to_owned(),
            xvnc: xvnc.into(),
            geometry: "1280x800".into(),
            max_sessions,
            accounts: DesktopAccounts::Agent,
        })
        .unwrap(),
    );
    let url = server.ws_base();
    let env = [
        ("AGENT_ID", agent_id),
        ("CONTROL_PLANE_URL", url.as_str()),
        ("AGENT_TOKEN", token.as_str()),
        ("PLATFORM", "local"),
    ];
    let config = Config::from_lookup(|n| {
        env.iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let link = ControlPlaneLink::new(
        Arc::new(config),
        runtime.clone(),
        Arc::new(AtomicBool::new(false)),
    )
    .start();
    cp::agent_reaches(server, agent_id, "online").await;
    LocalAgent {
        runtime,
        _link: link,
        _data: data,
    }
}
