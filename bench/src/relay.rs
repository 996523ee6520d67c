//! Round trips through the VNC relay (viewer WebSocket → control plane → agent link → the
//! simulated agent's echo), many streams at a steady message rate, against the same pattern
//! over direct TCP connections to an echo server.

use streamspace_testkit::rfb::ViewerStream;
pub use streamspace_testkit::round_trips::{Pattern, round_trips};

/// `n` viewers, one per URL.
pub async fn viewers(urls: Vec<String>) -> Vec<ViewerStream> {
    let mut streams = Vec::with_capacity(urls.len());
    for url in urls {
        let (_, conn) = crate::api::client()
            .ws(url)
            .max_frame_size(1 << 20)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("viewer: {e}"));
        streams.push(ViewerStream::from_websocket(conn));
    }
    streams
}
