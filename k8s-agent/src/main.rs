use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::Actor;
use streamspace_k8s_agent::config::{Config, Platform};
use streamspace_k8s_agent::link::{ControlPlaneLink, Shutdown};
use streamspace_k8s_agent::runtime::Runtime;
use streamspace_k8s_agent::runtime::kubernetes::client::client;
use streamspace_k8s_agent::runtime::kubernetes::objects::Layout;
use streamspace_k8s_agent::runtime::kubernetes::{KubeRuntime, KubeSettings};
use streamspace_k8s_agent::runtime::local::accounts::DesktopAccounts;
use streamspace_k8s_agent::runtime::local::{DesktopUser, LocalRuntime, LocalSettings};
use streamspace_k8s_agent::{health, render};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Both ring and aws-lc-rs can end up linked; kube and awc panic unless one is chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("render") {
        return render_command(&args[1..]);
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("streamspace-k8s-agent: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    actix::System::new().block_on(run(config))
}

fn layout(config: &Config) -> Layout {
    Layout {
        namespace: config.namespace.clone(),
        agent_id: config.agent_id.clone(),
        home_size: config.home_size.clone(),
        storage_class: config.storage_class.clone(),
        shm_size: config.shm_size.clone(),
        run_as_user: config.run_as_user,
    }
}

/// `render` needs only the layout settings, so it fills in the link's required variables.
fn render_command(args: &[String]) -> ExitCode {
    let config = Config::from_lookup(|name| match name {
        "AGENT_ID" => std::env::var(name).ok().or(Some("render".into())),
        "CONTROL_PLANE_URL" => Some("wss://unused".into()),
        other => std::env::var(other).ok(),
    });
    let result = config
        .map_err(|e| format!("configuration error: {e}"))
        .and_then(|c| render::render(&layout(&c), args));
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("streamspace-k8s-agent render: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(config: Config) -> ExitCode {
    log::info!("starting: {config:?}");
    let runtime: Result<Arc<dyn Runtime>, String> = match config.platform {
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
        Platform::Kubernetes => client(config.kubeconfig.as_deref()).await.map(|client| {
            let settings = KubeSettings {
                layout: layout(&config),
                ready_timeout: config.ready_timeout,
                max_sessions: config.max_sessions,
            };
            Arc::new(KubeRuntime::new(client, settings)) as Arc<dyn Runtime>
        }),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("streamspace-k8s-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let linked = Arc::new(AtomicBool::new(false));
    let probes = match health::serve(config.health_addr, linked.clone()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!(
                "streamspace-k8s-agent: HEALTH_ADDR: cannot listen on {}: {e}",
                config.health_addr
            );
            return ExitCode::from(2);
        }
    };
    let probes_handle = probes.handle();
    actix::spawn(probes);
    let link = ControlPlaneLink::new(Arc::new(config), runtime, linked).start();

    wait_for_termination().await;
    log::info!("shutting down");
    let _ = link.send(Shutdown).await;
    probes_handle.stop(false).await;
    ExitCode::SUCCESS
}

async fn wait_for_termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
