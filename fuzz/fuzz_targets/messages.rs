//! Hostile text frames: decoding either message direction returns a value or an error,
//! never a panic, and whatever decodes encodes again and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamspace_protocol::{AgentMessage, ControlMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = AgentMessage::from_json(text) {
        assert_eq!(AgentMessage::from_json(&message.to_json()).ok(), Some(message));
    }
    if let Ok(message) = ControlMessage::from_json(text) {
        assert_eq!(ControlMessage::from_json(&message.to_json()).ok(), Some(message));
    }
});
