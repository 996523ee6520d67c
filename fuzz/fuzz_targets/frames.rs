//! Hostile binary frames: decoding never panics, and a frame that decodes encodes back to
//! exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamspace_protocol::Frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        assert_eq!(frame.encode(), data);
    }
});
