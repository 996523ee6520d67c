//! `kwok-desktops KUBECONFIG [NAMESPACE]`: gives every StreamSpace session Pod on the test
//! cluster's kwok node a real desktop (Xvnc + xterm on this host, reached through kwok's
//! port-forward), for the demo and the browser tests. Stops its desktops on SIGTERM/SIGINT.

use streamspace_testkit::kwok_desktops::Desktops;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(kubeconfig) = args.first() else {
        eprintln!("usage: kwok-desktops KUBECONFIG [NAMESPACE]");
        std::process::exit(2);
    };
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("no other crypto provider is installed");
    let desktops = match Desktops::start(kubeconfig.as_ref(), args.get(1).map(String::as_str)).await
    {
        Ok(desktops) => desktops,
        Err(e) => {
            eprintln!("kwok-desktops: {e}");
            std::process::exit(1);
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    desktops.stop().await;
}
