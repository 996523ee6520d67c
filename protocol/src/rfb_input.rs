//! A viewer's RFB client → server byte stream (RFC 6143 and the extensions noVNC speaks) cut
//! into messages, to see its input (keys, pointer, clipboard, desktop size, power actions)
//! and, for a view-only viewer, to drop it and pass the rest unchanged.
//!
//! View-only: a message this reader cannot delimit ends the stream, since passing bytes it
//! cannot judge would let input through. With control, such a message passes, and so does
//! everything after it, each read counted as input (the framing is lost; the desktop is
//! better kept than stopped for idleness by mistake).
//!
//! Only headers are held (at most [`HEADER_MAX`] bytes); bodies pass or are skipped as they
//! arrive, so a large cut text costs nothing to drop.

/// The longest header read before a message's length is known (a cut text's, or QEMU's
/// extended key event).
pub const HEADER_MAX: usize = 12;

/// Why a view-only viewer's stream was ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RfbInputError {
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

/// The reader of one viewer's stream.
#[derive(Debug)]
pub struct RfbInput {
    view_only: bool,
    /// Framing lost (control only): everything passes and counts as input.
    lost: bool,
    phase: Phase,
    header: Vec<u8>,
    body: Option<Body>,
    input: u64,
    /// Where [`RfbInput::observe`] lets the reader write what it would pass (kept while
    /// small, so observing a controlling viewer allocates nothing per ordinary message).
    scratch: Vec<u8>,
}

impl RfbInput {
    fn new(view_only: bool) -> Self {
        RfbInput {
            view_only,
            lost: false,
            phase: Phase::Version,
            header: Vec::with_capacity(HEADER_MAX),
            body: None,
            input: 0,
            scratch: Vec::new(),
        }
    }

    /// For a viewer who may only watch: input is dropped, the shared flag forced.
    pub fn view_only() -> Self {
        Self::new(true)
    }

    /// For a viewer in control: everything passes; input is only counted.
    pub fn control() -> Self {
        Self::new(false)
    }

    /// Input messages seen so far (dropped, for a view-only viewer).
    pub fn input(&self) -> u64 {
        self.input
    }

    /// For a view-only viewer: appends to `out` what of `input` may reach the desktop. After
    /// an error the stream must end: nothing more may be passed.
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), RfbInputError> {
        debug_assert!(self.view_only, "filter is for view-only viewers");
        self.read(input, out)
    }

    /// For a viewer in control, whose bytes pass as they are: counts the input in `input`.
    pub fn observe(&mut self, input: &[u8]) {
        if self.lost {
            self.input += 1;
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        if self.read(input, &mut scratch).is_err() {
            self.lost = true;
            self.input += 1;
        }
        // A large paste passes through once; only a small buffer is kept.
        if scratch.capacity() <= 1024 {
            self.scratch = scratch;
        }
    }

    fn read(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), RfbInputError> {
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
    fn complete(&mut self, out: &mut Vec<u8>) -> Result<(), RfbInputError> {
        let header = std::mem::take(&mut self.header);
        match self.phase {
            Phase::Version => {
                if header != b"RFB 003.008\n" && header != b"RFB 003.007\n" {
                    return Err(RfbInputError::Version(
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
                    other => return Err(RfbInputError::Security(other)),
                };
                out.extend_from_slice(&header);
            }
            Phase::Challenge => {
                out.extend_from_slice(&header);
                self.phase = Phase::ClientInit;
            }
            Phase::ClientInit => {
                // Shared, whatever a guest asked: they must never disconnect the owner.
                out.push(if self.view_only { 1 } else { header[0] });
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
                        other => return Err(RfbInputError::Message(other)),
                    },
                    other => return Err(RfbInputError::Message(other)),
                };
                if !pass {
                    self.input += 1;
                }
                let pass = pass || !self.view_only;
                if pass {
                    out.extend_from_slice(&header);
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

    fn run(filter: &mut RfbInput, input: &[u8]) -> Result<Vec<u8>, RfbInputError> {
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
        let mut filter = RfbInput::view_only();
        assert_eq!(run(&mut filter, &input).unwrap(), expected);
        assert_eq!(filter.input(), events);
    }

    #[test]
    fn vnc_authentication_passes_its_response() {
        let mut filter = RfbInput::view_only();
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
            run(&mut RfbInput::view_only(), b"RFB 003.003\n"),
            Err(RfbInputError::Version("RFB 003.003".into()))
        );
        assert_eq!(
            run(&mut RfbInput::view_only(), b"RFB 003.008\n\x13"),
            Err(RfbInputError::Security(19))
        );
        let mut unknown = HANDSHAKE.to_vec();
        unknown.push(77);
        assert_eq!(
            run(&mut RfbInput::view_only(), &unknown),
            Err(RfbInputError::Message(77))
        );
        let mut qemu_audio = HANDSHAKE.to_vec();
        qemu_audio.extend([255, 1, 0, 0]);
        assert_eq!(
            run(&mut RfbInput::view_only(), &qemu_audio),
            Err(RfbInputError::Message(1))
        );
    }

    #[test]
    fn with_control_input_is_counted_and_unknown_messages_count_as_input_from_then_on() {
        let (input, _, events) = session();
        let mut reader = RfbInput::control();
        reader.observe(&input);
        assert_eq!(reader.input(), events);
        let mut unknown = HANDSHAKE.to_vec();
        unknown.extend([77, 1, 2]);
        let mut reader = RfbInput::control();
        reader.observe(&unknown);
        reader.observe(&update_request());
        assert_eq!(reader.input(), 2);
    }

    proptest! {
        /// However the stream is cut into frames, the same bytes pass.
        #[test]
        fn any_split_gives_the_same_output(cuts in proptest::collection::vec(0usize..400, 0..40)) {
            let (input, expected, events) = session();
            let mut filter = RfbInput::view_only();
            let mut out = Vec::new();
            let mut rest: &[u8] = &input;
            for cut in cuts {
                let n = cut.min(rest.len());
                filter.filter(&rest[..n], &mut out).unwrap();
                rest = &rest[n..];
            }
            filter.filter(rest, &mut out).unwrap();
            prop_assert_eq!(out, expected);
            prop_assert_eq!(filter.input(), events);
        }

        /// Arbitrary bytes never panic, and never pass a key or pointer event.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut filter = RfbInput::view_only();
            let mut out = Vec::new();
            let mut input = HANDSHAKE.to_vec();
            input.extend(bytes);
            let _ = filter.filter(&input, &mut out);
        }
    }
}
