use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::Actor;
use streamspace_k8s_agent::config::{Config, VARIABLES};
use streamspace_k8s_agent::link::{ControlPlaneLink, Shutdown};
use streamspace_k8s_agent::{health, launch, render};

const NAME: &str = "streamspace-k8s-agent";

const USAGE: &[&str] = &[
    "streamspace-k8s-agent                 link to the control plane and run desktops (configured by the variables below)",
    "streamspace-k8s-agent render [--image I --user U --cpu C --memory M --ephemeral-home …]  print the Kubernetes objects of a sample session as YAML",
    "streamspace-k8s-agent --help | --version",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--help" | "-h") if args.len() == 1 => {
            print!(
                "{}",
                streamspace_settings::help(
                    NAME,
                    env!("CARGO_PKG_VERSION"),
                    "The StreamSpace agent: turns sessions into Pods, containers or local desktops.",
                    USAGE,
                    VARIABLES,
                )
            );
            return ExitCode::SUCCESS;
        }
        Some("--version" | "-V") if args.len() == 1 => {
            println!("{NAME} {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("render") => {}
        Some(_) => {
            eprintln!(
                "{NAME}: unknown arguments {args:?}; usage:\n  {}",
                USAGE.join("\n  ")
            );
            return ExitCode::from(2);
        }
        None => {}
    }
    match streamspace_settings::log_format(|name| std::env::var(name).ok()) {
        Ok(format) => streamspace_settings::init_logging(format, log_context),
        Err(e) => {
            eprintln!("{NAME}: configuration error: {e}");
            return ExitCode::from(2);
        }
    }
    // Both ring and aws-lc-rs can end up linked; kube and awc panic unless one is chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
    let _ = AGENT_ID.set(config.agent_id.clone());
    actix::System::new().block_on(run(config))
}

/// This agent's id, once configured: a field of every JSON log line, so a pipeline collecting
/// many agents' logs can tell them apart.
static AGENT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn log_context() -> Vec<(&'static str, String)> {
    AGENT_ID
        .get()
        .map(|id| vec![("agent_id", id.clone())])
        .unwrap_or_default()
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
        .and_then(|c| render::render(&launch::layout(&c), args));
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
    let runtime = launch::runtime(&config).await;
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("streamspace-k8s-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let linked = Arc::new(AtomicBool::new(false));
    let probes = match health::serve(config.health_addr, linked.clone(), runtime.clone()) {
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

    streamspace_settings::terminated().await;
    log::info!("shutting down");
    let _ = link.send(Shutdown).await;
    probes_handle.stop(false).await;
    ExitCode::SUCCESS
}
