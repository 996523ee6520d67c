//! A viewer's RFB bytes, from a hostile browser, cut into frames anywhere: the view-only filter
//! never panics, never passes more than it was given, and passes the same bytes however the
//! stream is cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamspace_protocol::RfbInput;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let mut whole = Vec::new();
    let whole_result = RfbInput::view_only().filter(stream, &mut whole);
    let mut pieces = Vec::new();
    let mut filter = RfbInput::view_only();
    let mut result = Ok(());
    for chunk in stream.chunks(usize::from(cut) + 1) {
        result = filter.filter(chunk, &mut pieces);
        if result.is_err() {
            break;
        }
    }
    assert!(whole.len() <= stream.len());
    assert_eq!(result.is_err(), whole_result.is_err());
    if whole_result.is_ok() {
        assert_eq!(pieces, whole);
    }
    // A viewer in control: only counted, never refused.
    let mut control = RfbInput::control();
    for chunk in stream.chunks(usize::from(cut) + 1) {
        control.observe(chunk);
    }
});
