//! A listener served on a thread of its own, in a runtime of its own.

use std::future::Future;

use tokio::net::TcpListener;

/// Listens on a free port of 127.0.0.1 and runs `serve` with the listener on a new thread, in
/// a current-thread tokio runtime of its own (so what it serves may be reached by blocking code
/// on the caller's thread, and its work does not wait behind the caller's). Returns the port.
pub fn serve_on_own_thread<F, Fut>(serve: F) -> u16
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move { serve(TcpListener::from_std(listener).unwrap()).await });
    });
    port
}
