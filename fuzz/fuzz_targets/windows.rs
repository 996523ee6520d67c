//! Credit windows driven by an arbitrary peer: whatever it sends or grants, the receiver
//! never buffers more than the window, refused input is refused without a panic, and a
//! sender never has more than its window in flight.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamspace_protocol::{RecvWindow, SendWindow};

fuzz_target!(|data: &[u8]| {
    let Some((&w, ops)) = data.split_first() else {
        return;
    };
    let window = (u32::from(w) + 1) * 1024;
    let mut send = SendWindow::new(window);
    let mut recv = RecvWindow::new(window);
    for op in ops.chunks(3) {
        let amount = usize::from(u16::from_le_bytes([op[0], *op.get(1).unwrap_or(&0)]));
        match op.get(2).copied().unwrap_or(0) % 4 {
            // A hostile peer sends DATA of any size: accepted only within the window.
            0 => {
                let before = recv.buffered();
                if recv.receive(amount).is_ok() {
                    assert_eq!(recv.buffered(), before + amount as u32);
                } else {
                    assert_eq!(recv.buffered(), before);
                }
            }
            // Our consumer drains what it has.
            1 => {
                let n = amount.min(recv.buffered() as usize);
                let _ = recv.drain(n);
            }
            // We send what the window allows.
            2 => {
                let n = send.next_chunk(amount);
                send.spend(n);
            }
            // A hostile peer grants any credit: refused beyond the window.
            _ => {
                let before = send.credit();
                if send.grant(amount as u32).is_err() {
                    assert_eq!(send.credit(), before);
                }
            }
        }
        assert!(recv.buffered() <= window);
        assert!(send.credit() <= window);
    }
});
