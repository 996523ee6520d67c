use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::Actor;
use streamspace_k8s_agent::config::{Config, Platform};
use streamspace_k8s_agent::health;
use streamspace_k8s_agent::link::{ControlPlaneLink, Shutdown};
use streamspace_k8s_agent::runtime::Runtime;
use streamspace_k8s_agent::runtime::local::{LocalRuntime, LocalSettings};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Both ring and aws-lc-rs can end up linked; kube and awc panic unless one is chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("streamspace-k8s-agent: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    actix::System::new().block_on(run(config))
}

async fn run(config: Config) -> ExitCode {
    log::info!("starting: {config:?}");
    let runtime = match config.platform {
        Platform::Local => LocalRuntime::open(LocalSettings {
            data_dir: config.data_dir.clone(),
            xvnc: config.xvnc.clone(),
            geometry: config.screen_geometry.clone(),
            max_sessions: config.max_sessions,
        })
        .map(Runtime::Local),
        Platform::Kubernetes => {
            eprintln!(
                "streamspace-k8s-agent: PLATFORM=kubernetes is not available in this build yet"
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime {
        Ok(runtime) => Arc::new(runtime),
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
