use std::process::ExitCode;

use streamspace_control_plane::config::Config;
use streamspace_control_plane::server;

// Returns freed memory to the system (after thousands of agents leave, glibc's allocator kept
// it all) and costs less per idle link.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // The replica bridge's client (awc) needs one TLS provider chosen for wss:// replicas.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("streamspace-control-plane: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let running = match server::start(config).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("streamspace-control-plane: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(password) = &running.generated_admin_password {
        // Printed once, on the start that created the account; it is stored only hashed.
        println!("first admin created: user \"admin\", password \"{password}\" (shown only now)");
    }
    log::info!("listening on http://{}", running.addr);
    let server = actix_web::rt::spawn(running.server);
    streamspace_settings::terminated().await;
    log::info!("shutting down: handing agents, viewers and commands to the other replicas");
    running.stopper.stop().await;
    match server.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("streamspace-control-plane: server failed: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("streamspace-control-plane: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
