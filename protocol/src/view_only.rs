//! What a view-only viewer may send to the desktop: the RFB client → server byte stream
//! (RFC 6143 and the extensions noVNC speaks) cut into messages, with every input message
//! (keys, pointer, clipboard, desktop size, power actions) dropped and the rest passed on
//! unchanged. A message this filter cannot delimit ends the stream: passing bytes it cannot
//! judge would let input through.
//!
//! Only headers are held (at most [`HEADER_MAX`] bytes); bodies pass or are skipped as they
//! arrive, so a large cut text costs nothing to drop.

/// The longest header read before a message's length is known (a cut text's, or QEMU's
/// extended key event).
pub const HEADER_MAX: usize = 12;

/// Why a view-only viewer's stream was ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewOnlyError {
    /// The viewer's first 12 bytes are not an RFB 3.7 or 3.8 version.
    #[error("view-only viewers must speak RFB 3.7 or 3.8, not {0:?}")]
    Version(String),
    /// A security type whose exchange this filter cannot follow.
    #[error("view-only viewers may use security types None or VNC only, not {0}")]
    Security(u8),
    /// A message type this filter cannot delimit.
    #[error("a view-only viewer sent an RFB message of unknown type {0}")]
    Message(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Version,
    Security,
    /// VNC authentication's 16-byte response.
    Challenge,
    ClientInit,
    Messages,
}

/// What to do with the bytes of the message being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Pass(usize),
    Drop(usize),
}

/// The filter for one view-only viewer's stream.
#[derive(Debug)]
pub struct ViewOnly {
    phase: Phase,
    header: Vec<u8>,
    body: Option<Body>,
    dropped: u64,
}

impl Default for ViewOnly {
    fn default() -> Self {
        Self::new()
    }
}

impl ViewOnly {
    /// A filter at the start of a stream (before the viewer's version).
    pub fn new() -> Self {
        ViewOnly {
            phase: Phase::Version,
            header: Vec::with_capacity(HEADER_MAX),
            body: None,
            dropped: 0,
        }
    }

    /// Input messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Appends to `out` what of `input` may reach the desktop. After an error the stream
    /// must end: nothing more may be passed.
    pub fn filter(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ViewOnlyError> {
        while !input.is_empty() {
            if let Some(body) = self.body {
                let (left, pass) = match body {
                    Body::Pass(n) => (n, true),
                    Body::Drop(n) => (n, false),
                };
                let n = left.min(input.len());
                if pass {
                    out.extend_from_slice(&input[..n]);
                }
                input = &input[n..];
                self.body = match left - n {
                    0 => None,
                    rest if pass => Some(Body::Pass(rest)),
                    rest => Some(Body::Drop(rest)),
                };
                continue;
            }
            let want = self.header_len();
            let n = (want - self.header.len()).min(input.len());
            self.header.extend_from_slice(&input[..n]);
            input = &input[n..];
            if self.header.len() < want {
                continue;
            }
            // A header whose full length depends on what it says asks again with more.
            if self.header_len() > self.header.len() {
                continue;
            }
            self.complete(out)?;
        }
        Ok(())
    }

    /// How many header bytes the current message needs, judged from those read so far.
    fn header_len(&self) -> usize {
        match self.phase {
            Phase::Version => 12,
            Phase::Security | Phase::ClientInit => 1,
            Phase::Challenge => 16,
            Phase::Messages => match self.header.first() {
                None => 1,
                Some(&kind) => match kind {
                    // The fixed-size messages.
                    0 => 20,
                    3 | 150 => 10,
                    4 => 8,
                    5 => 6,
                    250 => 4,
                    // Headers that end with the body's size: SetEncodings, gii, cut text,
                    // SetDesktopSize, fence.
                    2 | 253 => 4,
                    6 | 251 => 8,
                    248 => 9,
                    // QEMU: the sub-type says the rest.
                    255 => match self.header.get(1) {
                        None => 2,
                        Some(0) => 12,
                        Some(_) => 4,
                    },
                    _ => 1,
                },
            },
        }
    }

    /// Acts on a complete header.
    fn complete(&mut self, out: &mut Vec<u8>) -> Result<(), ViewOnlyError> {
        let header = std::mem::take(&mut self.header);
        match self.phase {
            Phase::Version => {
                if header != b"RFB 003.008\n" && header != b"RFB 003.007\n" {
                    return Err(ViewOnlyError::Version(
                        String::from_utf8_lossy(&header).trim_end().to_owned(),
                    ));
                }
                out.extend_from_slice(&header);
                self.phase = Phase::Security;
            }
            Phase::Security => {
                self.phase = match header[0] {
                    1 => Phase::ClientInit,
                    2 => Phase::Challenge,
                    other => return Err(ViewOnlyError::Security(other)),
                };
                out.extend_from_slice(&header);
            }
            Phase::Challenge => {
                out.extend_from_slice(&header);
                self.phase = Phase::ClientInit;
            }
            Phase::ClientInit => {
                // Shared, whatever the viewer asked: a guest must never disconnect the owner.
                out.push(1);
                self.phase = Phase::Messages;
            }
            Phase::Messages => {
                let u16_at = |i: usize| usize::from(u16::from_be_bytes([header[i], header[i + 1]]));
                let (pass, body) = match header[0] {
                    0 | 3 | 150 => (true, 0),
                    2 => (true, 4 * u16_at(2)),
                    248 => (true, usize::from(header[8])),
                    4 | 5 | 250 => (false, 0),
                    6 => {
                        // Negative lengths are the extended clipboard's: the size is the same.
                        let length =
                            i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                        (false, length.unsigned_abs() as usize)
                    }
                    251 => (false, 16 * usize::from(header[6])),
                    253 => (false, u16_at(2)),
                    255 => match header[1] {
                        0 => (false, 0),
                        other => return Err(ViewOnlyError::Message(other)),
                    },
                    other => return Err(ViewOnlyError::Message(other)),
                };
                if pass {
                    out.extend_from_slice(&header);
                } else {
                    self.dropped += 1;
                }
                if body > 0 {
                    self.body = Some(if pass {
                        Body::Pass(body)
                    } else {
                        Body::Drop(body)
                    });
                }
            }
        }
        self.header = header;
        self.header.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HANDSHAKE: &[u8] = b"RFB 003.008\n\x01\x00";

    fn update_request() -> Vec<u8> {
        vec![3, 1, 0, 0, 0, 0, 4, 0, 3, 0]
    }

    fn key(down: bool) -> Vec<u8> {
        vec![4, u8::from(down), 0, 0, 0, 0, 0, 0x61]
    }

    fn pointer(x: u16, y: u16) -> Vec<u8> {
        let mut m = vec![5, 1];
        m.extend(x.to_be_bytes());
        m.extend(y.to_be_bytes());
        m
    }

    fn cut_text(text: &[u8], extended: bool) -> Vec<u8> {
        let len = i32::try_from(text.len()).unwrap();
        let mut m = vec![6, 0, 0, 0];
        m.extend((if extended { -len } else { len }).to_be_bytes());
        m.extend(text);
        m
    }

    fn set_encodings(encodings: &[i32]) -> Vec<u8> {
        let mut m = vec![2, 0];
        m.extend(u16::try_from(encodings.len()).unwrap().to_be_bytes());
        for e in encodings {
            m.extend(e.to_be_bytes());
        }
        m
    }

    fn fence(payload: &[u8]) -> Vec<u8> {
        let mut m = vec![
            248,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            u8::try_from(payload.len()).unwrap(),
        ];
        m.extend(payload);
        m
    }

    fn desktop_size(screens: u8) -> Vec<u8> {
        let mut m = vec![251, 0, 5, 0, 3, 0, screens, 0];
        m.extend(std::iter::repeat_n(7, 16 * usize::from(screens)));
        m
    }

    fn run(filter: &mut ViewOnly, input: &[u8]) -> Result<Vec<u8>, ViewOnlyError> {
        let mut out = Vec::new();
        filter.filter(input, &mut out)?;
        Ok(out)
    }

    /// A viewer's stream of every message kind, and what may pass of it.
    fn session() -> (Vec<u8>, Vec<u8>, u64) {
        let passing = [
            vec![0; 20], // SetPixelFormat
            set_encodings(&[0, 1, 16, -223, -239]),
            update_request(),
            vec![150, 1, 0, 0, 0, 0, 4, 0, 3, 0], // EnableContinuousUpdates
            fence(b"abc"),
        ];
        let input_events = [
            key(true),
            pointer(300, 200),
            cut_text(b"secret", false),
            cut_text(&[0; 300], true),
            desktop_size(2),
            vec![250, 0, 1, 2],                             // xvp reboot
            vec![255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 30], // QEMU extended key
            vec![253, 0, 0, 3, 9, 9, 9],                    // gii
        ];
        let mut input = b"RFB 003.008\n\x01\x00".to_vec();
        let mut expected = b"RFB 003.008\n\x01\x01".to_vec();
        for (i, pass) in passing.iter().enumerate() {
            input.extend(pass);
            expected.extend(pass);
            input.extend(&input_events[i]);
        }
        for rest in &input_events[passing.len()..] {
            input.extend(rest);
        }
        input.extend(update_request());
        expected.extend(update_request());
        (input, expected, input_events.len() as u64)
    }

    #[test]
    fn input_messages_are_dropped_and_the_rest_passes_unchanged_with_shared_forced() {
        let (input, expected, events) = session();
        let mut filter = ViewOnly::new();
        assert_eq!(run(&mut filter, &input).unwrap(), expected);
        assert_eq!(filter.dropped(), events);
    }

    #[test]
    fn vnc_authentication_passes_its_response() {
        let mut filter = ViewOnly::new();
        let mut input = b"RFB 003.008\n\x02".to_vec();
        input.extend([9; 16]);
        input.push(0);
        input.extend(key(true));
        input.extend(update_request());
        let mut expected = b"RFB 003.008\n\x02".to_vec();
        expected.extend([9; 16]);
        expected.push(1);
        expected.extend(update_request());
        assert_eq!(run(&mut filter, &input).unwrap(), expected);
    }

    #[test]
    fn what_cannot_be_delimited_ends_the_stream() {
        assert_eq!(
            run(&mut ViewOnly::new(), b"RFB 003.003\n"),
            Err(ViewOnlyError::Version("RFB 003.003".into()))
        );
        assert_eq!(
            run(&mut ViewOnly::new(), b"RFB 003.008\n\x13"),
            Err(ViewOnlyError::Security(19))
        );
        let mut unknown = HANDSHAKE.to_vec();
        unknown.push(77);
        assert_eq!(
            run(&mut ViewOnly::new(), &unknown),
            Err(ViewOnlyError::Message(77))
        );
        let mut qemu_audio = HANDSHAKE.to_vec();
        qemu_audio.extend([255, 1, 0, 0]);
        assert_eq!(
            run(&mut ViewOnly::new(), &qemu_audio),
            Err(ViewOnlyError::Message(1))
        );
    }

    proptest! {
        /// However the stream is cut into frames, the same bytes pass.
        #[test]
        fn any_split_gives_the_same_output(cuts in proptest::collection::vec(0usize..400, 0..40)) {
            let (input, expected, events) = session();
            let mut filter = ViewOnly::new();
            let mut out = Vec::new();
            let mut rest: &[u8] = &input;
            for cut in cuts {
                let n = cut.min(rest.len());
                filter.filter(&rest[..n], &mut out).unwrap();
                rest = &rest[n..];
            }
            filter.filter(rest, &mut out).unwrap();
            prop_assert_eq!(out, expected);
            prop_assert_eq!(filter.dropped(), events);
        }

        /// Arbitrary bytes never panic, and never pass a key or pointer event.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut filter = ViewOnly::new();
            let mut out = Vec::new();
            let mut input = HANDSHAKE.to_vec();
            input.extend(bytes);
            let _ = filter.filter(&input, &mut out);
        }
    }
}
