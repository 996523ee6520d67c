//! The link's WebSocket codec: awc's for every message but a stream's data. A tunnel reads the
//! VNC server's bytes into a buffer that leaves [`ROOM`] bytes free in front of the stream
//! frame; the frame's WebSocket header is written there and the payload masked where it lies,
//! and when nothing else waits to be written the buffer becomes the connection's write buffer
//! as it is. awc's codec copied every payload into that buffer and masked it there: two passes
//! over every byte relayed, now one.

use actix_codec::{Decoder, Encoder};
use awc::error::WsProtocolError;
use awc::ws::{Codec, Frame, Message};
use bytes::{Buf, BytesMut};

/// Room in front of a data frame for its WebSocket header: two bytes, a 64-bit length and the
/// mask.
pub const ROOM: usize = 14;

/// What the link writes.
pub enum Out {
    /// A message, encoded by awc's codec.
    Message(Message),
    /// A binary message laid out behind [`ROOM`] free bytes.
    Roomy(Vec<u8>),
}

impl From<Message> for Out {
    fn from(message: Message) -> Self {
        Out::Message(message)
    }
}

/// awc's client codec, and data frames written in place.
pub struct LinkCodec(pub Codec);

impl Decoder for LinkCodec {
    type Item = Frame;
    type Error = WsProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WsProtocolError> {
        self.0.decode(src)
    }
}

impl Encoder<Out> for LinkCodec {
    type Error = WsProtocolError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), WsProtocolError> {
        match item {
            Out::Message(message) => self.0.encode(message, dst),
            Out::Roomy(frame) => {
                let frame = in_place(frame, mask_key()?);
                if dst.is_empty() {
                    *dst = frame;
                } else {
                    dst.extend_from_slice(&frame);
                }
                Ok(())
            }
        }
    }
}

/// A client's masking key, from the system's randomness (RFC 6455 §5.3).
fn mask_key() -> Result<[u8; 4], WsProtocolError> {
    let mut key = [0; 4];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(key)
}

/// The masked binary frame of `frame`'s payload (what follows its [`ROOM`] bytes), its header
/// written in the room: the returned buffer starts at the header.
fn in_place(mut frame: Vec<u8>, key: [u8; 4]) -> BytesMut {
    let len = frame.len() - ROOM;
    let mut header = [0u8; ROOM];
    // FIN and the binary opcode; the mask bit and the length.
    header[0] = 0x82;
    let mut at = 2;
    if len < 126 {
        header[1] = 0x80 | len as u8;
    } else if let Ok(short) = u16::try_from(len) {
        header[1] = 0x80 | 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        at = 4;
    } else {
        header[1] = 0x80 | 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        at = 10;
    }
    header[at..at + 4].copy_from_slice(&key);
    let header = &header[..at + 4];
    let start = ROOM - header.len();
    frame[start..ROOM].copy_from_slice(header);
    mask(&mut frame[ROOM..], key);
    // (Both conversions keep the allocation: the buffer is not copied.)
    let mut frame = BytesMut::from(bytes::Bytes::from(frame));
    frame.advance(start);
    frame
}

/// XORs `bytes` with the key repeated, eight bytes at a time.
fn mask(bytes: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = bytes.chunks_exact_mut(8);
    for word in &mut words {
        let masked = u64::from_ne_bytes((&*word).try_into().unwrap_or_default()) ^ wide;
        word.copy_from_slice(&masked.to_ne_bytes());
    }
    // The tail starts at a multiple of eight, so at the key's first byte.
    for (byte, k) in words.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_written_in_place_decodes_as_the_message_a_server_receives() {
        for len in [0, 1, 7, 125, 126, 65_535, 65_536, 70_001] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut frame = vec![0; ROOM];
            frame.extend_from_slice(&payload);
            let mut wire = in_place(frame, [0x12, 0x34, 0x56, 0x78]);
            // A server's codec: refuses unmasked frames, unmasks.
            let got = Codec::new().max_size(1 << 20).decode(&mut wire).unwrap();
            assert_eq!(got, Some(Frame::Binary(payload.into())), "{len} bytes");
            assert!(wire.is_empty());
        }
    }

    #[test]
    fn a_frame_behind_other_bytes_is_appended_and_alone_becomes_the_buffer() {
        let mut codec = LinkCodec(Codec::new().client_mode());
        let roomy = || {
            let mut frame = vec![0; ROOM];
            frame.extend_from_slice(b"VNC");
            Out::Roomy(frame)
        };
        let mut alone = BytesMut::new();
        codec.encode(roomy(), &mut alone).unwrap();
        let mut behind = BytesMut::new();
        codec
            .encode(Message::Ping("p".into()).into(), &mut behind)
            .unwrap();
        codec.encode(roomy(), &mut behind).unwrap();
        let mut server = Codec::new();
        assert_eq!(
            server.decode(&mut alone).unwrap(),
            Some(Frame::Binary("VNC".into()))
        );
        assert_eq!(
            server.decode(&mut behind).unwrap(),
            Some(Frame::Ping("p".into()))
        );
        assert_eq!(
            server.decode(&mut behind).unwrap(),
            Some(Frame::Binary("VNC".into()))
        );
    }
}
