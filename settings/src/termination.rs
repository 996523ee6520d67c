//! The signal to stop, for both binaries: they shut down in order (a `SIGTERM` from
//! Kubernetes or systemd, or Ctrl-C) instead of being cut off.

/// Resolves at the first `SIGTERM` or `SIGINT`; never, if the handlers cannot be installed.
pub async fn terminated() {
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
