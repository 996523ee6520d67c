//! What several of the agent's integration tests share (`mod support;` in each).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::{Actor, Addr};
use streamspace_k8s_agent::config::Config;
use streamspace_k8s_agent::link::ControlPlaneLink;
use streamspace_k8s_agent::runtime::local::accounts::DesktopAccounts;
use streamspace_k8s_agent::runtime::local::{LocalRuntime, LocalSettings};

/// The real agent `local-1` with the local runtime (real Xvnc, desktops as this user, homes
/// in `data`), dialling `url` with `token`.
pub fn local_agent(url: &str, token: &str, data: &std::path::Path) -> Addr<ControlPlaneLink> {
    let env = [
        ("AGENT_ID", "local-1"),
        ("CONTROL_PLANE_URL", url),
        ("AGENT_TOKEN", token),
        ("PLATFORM", "local"),
    ];
    let config = Config::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let runtime = LocalRuntime::open(LocalSettings {
        data_dir: data.to_owned(),
        xvnc: "Xvnc".into(),
        geometry: "800x600".into(),
        max_sessions: 4,
        accounts: DesktopAccounts::Agent,
    })
    .unwrap();
    ControlPlaneLink::new(
        Arc::new(config),
        Arc::new(runtime),
        Arc::new(AtomicBool::new(false)),
    )
    .start()
}
