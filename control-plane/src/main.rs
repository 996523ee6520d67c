use std::process::ExitCode;

use streamspace_control_plane::accounts_cli::{self, Action};
use streamspace_control_plane::config::{Config, VARIABLES};
use streamspace_control_plane::server;

// Returns freed memory to the system (glibc's allocator kept 174 MiB after thousands of agents
// left, 19 MiB of it in use) and costs less per idle link.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NAME: &str = "streamspace-control-plane";

const USAGE: &[&str] = &[
    "streamspace-control-plane                    serve (configured by the variables below)",
    "streamspace-control-plane create-admin NAME  add an admin (password from standard input, else generated and printed)",
    "streamspace-control-plane reset-password NAME  set a user's password (the same way)",
    "streamspace-control-plane --help | --version",
];

fn main() -> ExitCode {
    let huge_pages_off = transparent_huge_pages_off();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => serve(huge_pages_off),
        ["--help" | "-h"] => {
            print!(
                "{}",
                streamspace_settings::help(
                    NAME,
                    env!("CARGO_PKG_VERSION"),
                    "The StreamSpace control plane: API, pages, agent links and the VNC proxy.",
                    USAGE,
                    VARIABLES,
                )
            );
            ExitCode::SUCCESS
        }
        ["--version" | "-V"] => {
            println!("{NAME} {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        [command @ ("create-admin" | "reset-password"), username] => {
            let action = if *command == "create-admin" {
                Action::CreateAdmin
            } else {
                Action::ResetPassword
            };
            let result = accounts_cli::run(
                action,
                username,
                |name| std::env::var(name).ok(),
                std::io::stdin(),
                accounts_cli::stdin_is_terminal(),
            );
            match result {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{NAME} {command}: {e}");
                    ExitCode::from(2)
                }
            }
        }
        other => {
            eprintln!(
                "{NAME}: unknown arguments {other:?}; usage:\n  {}",
                USAGE.join("\n  ")
            );
            ExitCode::from(2)
        }
    }
}

/// Turns transparent huge pages off for this process, before it allocates in earnest. With
/// them, memory freed after a fleet's connection storm stayed in 2 MiB pages the kernel would
/// not give back: 12.5–15.5 KiB of RSS per idle link against 8.4–10.0 without, on hosts with
/// THP `madvise` (mimalloc asked for them) and `always` alike (docs/PERFORMANCE.md).
fn transparent_huge_pages_off() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    return nix::sys::prctl::set_thp_disable(true).map_err(|e| e.to_string());
    #[cfg(not(target_os = "linux"))]
    Ok(())
}

#[actix_web::main]
async fn serve(huge_pages_off: Result<(), String>) -> ExitCode {
    match streamspace_settings::log_format(|name| std::env::var(name).ok()) {
        Ok(format) => streamspace_settings::init_logging(
            format,
            streamspace_control_plane::http::request_id::log_context,
        ),
        Err(e) => {
            eprintln!("{NAME}: configuration error: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = huge_pages_off {
        log::warn!("cannot turn transparent huge pages off (memory may be kept longer): {e}");
    }
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
