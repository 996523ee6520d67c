//! The runtime `PLATFORM` names, built from the configuration.

use std::sync::Arc;

use crate::config::{Config, Platform};
use crate::runtime::docker::{self, DockerRuntime, DockerSettings};
use crate::runtime::kubernetes::client::client;
use crate::runtime::kubernetes::objects::Layout;
use crate::runtime::kubernetes::{KubeRuntime, KubeSettings};
use crate::runtime::local::accounts::DesktopAccounts;
use crate::runtime::local::{DesktopUser, LocalRuntime, LocalSettings};
use crate::runtime::{Runtime, within};

/// How Kubernetes objects are laid out, from the configuration (also for `render`).
pub fn layout(config: &Config) -> Layout {
    Layout {
        namespace: config.namespace.clone(),
        agent_id: config.agent_id.clone(),
        home_size: config.home_size.clone(),
        storage_class: config.storage_class.clone(),
        shm_size: config.shm_size.clone(),
        run_as_user: config.run_as_user,
    }
}

/// How long the start waits for the Docker engine's version, which it only logs.
const ENGINE_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// The runtime of `config.platform`; an error says what stops it (one line).
pub async fn runtime(config: &Config) -> Result<Arc<dyn Runtime>, String> {
    match config.platform {
        Platform::Local => {
            // Never desktops as root: they could read the agent's credential and each other.
            let accounts = match (nix::unistd::geteuid().is_root(), config.per_user_accounts) {
                (false, _) => Ok(DesktopAccounts::Agent),
                (true, true) => Ok(DesktopAccounts::PerUser {
                    prefix: config.desktop_user.clone(),
                }),
                (true, false) => DesktopUser::ensure(&config.desktop_user, "StreamSpace desktops")
                    .map(DesktopAccounts::Shared),
            };
            accounts.and_then(|accounts| {
                LocalRuntime::open(LocalSettings {
                    data_dir: config.data_dir.clone(),
                    xvnc: config.xvnc.clone(),
                    geometry: config.screen_geometry.clone(),
                    max_sessions: config.max_sessions,
                    accounts,
                })
                .map(|r| Arc::new(r) as Arc<dyn Runtime>)
                .map_err(|e| e.to_string())
            })
        }
        Platform::Docker => {
            let shm_bytes =
                docker::bytes(&config.shm_size).map_err(|e| format!("SHM_SIZE: {e}"))?;
            let runtime = DockerRuntime::new(DockerSettings {
                engine: config.docker_host.clone(),
                layout: docker::Layout {
                    agent_id: config.agent_id.clone(),
                    shm_bytes,
                    run_as_user: config.run_as_user,
                },
                ready_timeout: config.ready_timeout,
                max_sessions: config.max_sessions,
            });
            // Not fatal: the engine may come up after the agent; sessions say why meanwhile.
            // Nor does one that froze hold up the start for the client's two minutes.
            let host = config.docker_host.host();
            let failure = format!("the Docker engine at {host} did not answer");
            match within(ENGINE_CHECK, &failure, runtime.engine_version()).await {
                Ok(version) => log::info!("Docker engine {version} at {host}"),
                Err(e) => log::warn!("{e}; sessions fail until it answers"),
            }
            Ok(Arc::new(runtime) as Arc<dyn Runtime>)
        }
        Platform::Kubernetes => client(config.kubeconfig.as_deref()).await.map(|client| {
            let settings = KubeSettings {
                layout: layout(config),
                ready_timeout: config.ready_timeout,
                max_sessions: config.max_sessions,
            };
            Arc::new(KubeRuntime::new(client, settings)) as Arc<dyn Runtime>
        }),
    }
}
