use std::process::ExitCode;

use streamspace_k8s_agent::config::Config;

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
    log::info!("configuration: {config:?}");
    eprintln!(
        "streamspace-k8s-agent: the control-plane link and session runtimes are not built yet \
         (issue 4); configuration is valid"
    );
    ExitCode::FAILURE
}
