//! The VNC streams of one agent link, as its connection routes them. A stream is registered
//! when a viewer opens it, but the agent only learns of it from the `vnc_connect` command,
//! which is persisted first and so may leave after the viewer's first bytes: until that
//! command has gone out, the viewer's frames wait here (at most its credit window) and the
//! stream is not probed, or the agent would answer RESET to a stream it does not know yet.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use streamspace_protocol::StreamId;

/// One stream, `T` being what feeds its viewer.
struct Linked<T> {
    tunnel: T,
    /// When its `vnc_connect` went out to the agent.
    announced: Option<Instant>,
    /// Frames for the agent sent before then, in order.
    held: Vec<Vec<u8>>,
}

/// The streams of a link.
pub struct LinkStreams<T> {
    streams: HashMap<StreamId, Linked<T>>,
}

impl<T> Default for LinkStreams<T> {
    fn default() -> Self {
        LinkStreams {
            streams: HashMap::new(),
        }
    }
}

impl<T> LinkStreams<T> {
    /// A viewer opened `stream_id`; its `vnc_connect` is on its way.
    pub fn register(&mut self, stream_id: StreamId, tunnel: T) {
        self.streams.insert(
            stream_id,
            Linked {
                tunnel,
                announced: None,
                held: Vec::new(),
            },
        );
    }

    /// The `vnc_connect` of `stream_id` went out: the frames held for it, to send now.
    pub fn announced(&mut self, stream_id: StreamId) -> Vec<Vec<u8>> {
        match self.streams.get_mut(&stream_id) {
            Some(stream) if stream.announced.is_none() => {
                stream.announced = Some(Instant::now());
                std::mem::take(&mut stream.held)
            }
            _ => Vec::new(),
        }
    }

    /// A frame for the agent on `stream_id`: given back to send now, or held until the stream
    /// is announced.
    pub fn outgoing(&mut self, stream_id: StreamId, frame: Vec<u8>) -> Option<Vec<u8>> {
        match self.streams.get_mut(&stream_id) {
            Some(stream) if stream.announced.is_none() => {
                stream.held.push(frame);
                None
            }
            _ => Some(frame),
        }
    }

    /// What feeds `stream_id`'s viewer.
    pub fn get(&self, stream_id: StreamId) -> Option<&T> {
        self.streams.get(&stream_id).map(|s| &s.tunnel)
    }

    /// Whether `stream_id` is open on this link.
    pub fn contains(&self, stream_id: StreamId) -> bool {
        self.streams.contains_key(&stream_id)
    }

    /// Forgets `stream_id` (and anything held for it); what fed its viewer.
    pub fn remove(&mut self, stream_id: StreamId) -> Option<T> {
        self.streams.remove(&stream_id).map(|s| s.tunnel)
    }

    /// Forgets every stream; what fed their viewers.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.streams.drain().map(|(_, s)| s.tunnel)
    }

    /// Streams the agent has known of for `age` or more (younger ones may still be opening
    /// there): those to probe.
    pub fn known_for(&self, age: Duration) -> Vec<StreamId> {
        self.streams
            .iter()
            .filter(|(_, s)| s.announced.is_some_and(|at| at.elapsed() >= age))
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_before_the_announcement_wait_for_it_and_go_in_order() {
        let mut streams = LinkStreams::default();
        streams.register(7, "viewer");
        assert_eq!(streams.outgoing(7, vec![1]), None);
        assert_eq!(streams.outgoing(7, vec![2]), None);
        // Other streams, and streams this link does not have, are not held.
        assert_eq!(streams.outgoing(8, vec![9]), Some(vec![9]));
        assert_eq!(streams.announced(7), vec![vec![1], vec![2]]);
        assert_eq!(streams.outgoing(7, vec![3]), Some(vec![3]));
        assert!(streams.announced(7).is_empty(), "announced once");
        assert_eq!(streams.get(7), Some(&"viewer"));
    }

    #[test]
    fn only_streams_the_agent_knows_of_are_probed() {
        let mut streams = LinkStreams::default();
        streams.register(1, ());
        streams.register(2, ());
        assert!(streams.known_for(Duration::ZERO).is_empty());
        streams.announced(2);
        assert_eq!(streams.known_for(Duration::ZERO), vec![2]);
        assert!(streams.known_for(Duration::from_secs(60)).is_empty());
        streams.outgoing(1, vec![0]);
        assert_eq!(streams.remove(1), Some(()));
        assert!(!streams.contains(1));
        assert_eq!(streams.drain().count(), 1);
    }
}
