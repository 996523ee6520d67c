//! The Kubernetes API emulator as a process, for browser tests and the demo's Kubernetes
//! mode: `kube-emulator LISTEN_ADDR KUBECONFIG_OUT [NAMESPACE]` writes a kubeconfig pointing
//! at itself and serves until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use streamspace_testkit::kube_emulator::KubeEmulator;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, kubeconfig, rest @ ..] = args.as_slice() else {
        eprintln!("usage: kube-emulator LISTEN_ADDR KUBECONFIG_OUT [NAMESPACE]");
        return ExitCode::from(2);
    };
    let namespace = rest
        .first()
        .map_or("streamspace", String::as_str)
        .to_owned();
    let (listen, kubeconfig) = (listen.clone(), kubeconfig.clone());
    actix_web::rt::System::new().block_on(async move {
        let emulator = match KubeEmulator::start(&listen, Duration::from_millis(500)) {
            Ok(emulator) => emulator,
            Err(e) => {
                eprintln!("kube-emulator: cannot listen on {listen}: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = std::fs::write(&kubeconfig, emulator.kubeconfig(&namespace)) {
            eprintln!("kube-emulator: cannot write {kubeconfig}: {e}");
            return ExitCode::from(2);
        }
        eprintln!("kube-emulator: serving the Kubernetes API on http://{}", emulator.addr);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        drop(emulator);
        ExitCode::SUCCESS
    })
}
