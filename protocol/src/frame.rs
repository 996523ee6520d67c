use thiserror::Error;

use crate::StreamId;
use crate::version::ProtocolVersion;

/// The first protocol version whose peers understand PROBE frames.
pub const PROBE_SINCE: ProtocolVersion = ProtocolVersion { major: 1, minor: 2 };

/// Bytes before the payload: one byte kind, four bytes stream id (big-endian).
pub const FRAME_HEADER_LEN: usize = 5;

/// Largest payload of one DATA frame. Larger writes are split by the sender.
pub const MAX_FRAME_PAYLOAD: usize = 64 * 1024;

const CREDIT_PAYLOAD_LEN: usize = 4;

/// What a binary frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Stream bytes (RFB for VNC streams), passed on unmodified.
    Data = 1,
    /// The receiver drained bytes and grants the sender that much more window.
    Credit = 2,
    /// The sender knows no such stream (it ended, or never existed): stop using it. The
    /// answer to a DATA, CREDIT or PROBE frame for an unknown stream. Since protocol 1.1.
    Reset = 3,
    /// Do you still have this stream? Sent for streams that carried nothing for a while; the
    /// peer ignores it when it has the stream and answers RESET when it does not, so a
    /// tunnel whose other end is gone is closed even when no byte flows. Since protocol 1.2.
    Probe = 4,
}

/// A decoded binary frame, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Stream bytes.
    Data {
        /// The stream.
        stream_id: StreamId,
        /// 1..=[`MAX_FRAME_PAYLOAD`] bytes.
        payload: &'a [u8],
    },
    /// More window for the peer's sends on this stream.
    Credit {
        /// The stream.
        stream_id: StreamId,
        /// How many more bytes the peer may send (never 0).
        bytes: u32,
    },
    /// The peer has no such stream; its other end should close.
    Reset {
        /// The stream.
        stream_id: StreamId,
    },
    /// Asks whether the peer still has this stream (RESET if not).
    Probe {
        /// The stream.
        stream_id: StreamId,
    },
}

/// Why a binary frame was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Shorter than the header.
    #[error("frame of {0} bytes is shorter than the {FRAME_HEADER_LEN}-byte header")]
    Truncated(usize),
    /// Unknown kind byte.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// A DATA frame with no payload.
    #[error("empty data frame on stream {0}")]
    EmptyData(StreamId),
    /// A DATA payload over [`MAX_FRAME_PAYLOAD`].
    #[error("data frame of {size} bytes on stream {stream_id} exceeds {MAX_FRAME_PAYLOAD} bytes")]
    Oversize {
        /// The stream.
        stream_id: StreamId,
        /// The payload size.
        size: usize,
    },
    /// A CREDIT frame whose payload is not exactly four bytes, or grants zero.
    #[error("bad credit frame on stream {0}")]
    BadCredit(StreamId),
    /// A RESET frame with a payload.
    #[error("bad reset frame on stream {0}")]
    BadReset(StreamId),
    /// A PROBE frame with a payload.
    #[error("bad probe frame on stream {0}")]
    BadProbe(StreamId),
}

impl<'a> Frame<'a> {
    /// Decodes one binary WebSocket message.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, FrameError> {
        if bytes.len() < FRAME_HEADER_LEN {
            return Err(FrameError::Truncated(bytes.len()));
        }
        let (header, payload) = bytes.split_at(FRAME_HEADER_LEN);
        let stream_id = StreamId::from_be_bytes([header[1], header[2], header[3], header[4]]);
        match header[0] {
            k if k == FrameKind::Data as u8 => {
                if payload.is_empty() {
                    Err(FrameError::EmptyData(stream_id))
                } else if payload.len() > MAX_FRAME_PAYLOAD {
                    Err(FrameError::Oversize {
                        stream_id,
                        size: payload.len(),
                    })
                } else {
                    Ok(Frame::Data { stream_id, payload })
                }
            }
            k if k == FrameKind::Credit as u8 => {
                let raw: [u8; CREDIT_PAYLOAD_LEN] = payload
                    .try_into()
                    .map_err(|_| FrameError::BadCredit(stream_id))?;
                match u32::from_be_bytes(raw) {
                    0 => Err(FrameError::BadCredit(stream_id)),
                    bytes => Ok(Frame::Credit { stream_id, bytes }),
                }
            }
            k if k == FrameKind::Reset as u8 => match payload.is_empty() {
                true => Ok(Frame::Reset { stream_id }),
                false => Err(FrameError::BadReset(stream_id)),
            },
            k if k == FrameKind::Probe as u8 => match payload.is_empty() {
                true => Ok(Frame::Probe { stream_id }),
                false => Err(FrameError::BadProbe(stream_id)),
            },
            other => Err(FrameError::UnknownKind(other)),
        }
    }

    /// The stream this frame belongs to.
    pub fn stream_id(&self) -> StreamId {
        match *self {
            Frame::Data { stream_id, .. }
            | Frame::Credit { stream_id, .. }
            | Frame::Reset { stream_id }
            | Frame::Probe { stream_id } => stream_id,
        }
    }

    /// Encodes into a new buffer. Panics if a DATA payload breaks the size rules, which is a
    /// bug in the sender (it must split with [`MAX_FRAME_PAYLOAD`]), never input from the network.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Frame::Data { stream_id, payload } => {
                assert!(
                    !payload.is_empty() && payload.len() <= MAX_FRAME_PAYLOAD,
                    "data payload of {} bytes",
                    payload.len()
                );
                let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
                out.push(FrameKind::Data as u8);
                out.extend_from_slice(&stream_id.to_be_bytes());
                out.extend_from_slice(payload);
                out
            }
            Frame::Reset { stream_id } => header_only(FrameKind::Reset, stream_id),
            Frame::Probe { stream_id } => header_only(FrameKind::Probe, stream_id),
            Frame::Credit { stream_id, bytes } => {
                assert!(bytes > 0, "zero credit");
                let mut out = Vec::with_capacity(FRAME_HEADER_LEN + CREDIT_PAYLOAD_LEN);
                out.push(FrameKind::Credit as u8);
                out.extend_from_slice(&stream_id.to_be_bytes());
                out.extend_from_slice(&bytes.to_be_bytes());
                out
            }
        }
    }
}

/// A `Data` frame's header in a buffer with room for `payload` more bytes, for a reader to
/// fill in place: the frame is encoded without copying its payload. The buffer starts with
/// `room` zero bytes, left for the transport's own header (the agent writes its WebSocket
/// header there and sends the buffer as it is).
pub fn data_frame_buffer(room: usize, stream_id: StreamId, payload: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(room + FRAME_HEADER_LEN + payload);
    out.resize(room, 0);
    out.push(FrameKind::Data as u8);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out
}

fn header_only(kind: FrameKind, stream_id: StreamId) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN);
    out.push(kind as u8);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_frame_layout_is_kind_then_big_endian_stream_then_payload() {
        let bytes = Frame::Data {
            stream_id: 0x0102_0304,
            payload: b"RFB",
        }
        .encode();
        assert_eq!(bytes, [1, 1, 2, 3, 4, b'R', b'F', b'B']);
    }

    #[test]
    fn a_data_frame_filled_in_place_is_the_encoded_frame() {
        let mut frame = data_frame_buffer(2, 0x0102_0304, 3);
        assert!(frame.capacity() >= 2 + FRAME_HEADER_LEN + 3);
        frame.extend_from_slice(b"RFB");
        let encoded = Frame::Data {
            stream_id: 0x0102_0304,
            payload: b"RFB",
        }
        .encode();
        assert_eq!(frame[..2], [0, 0]);
        assert_eq!(frame[2..], encoded);
    }

    #[test]
    fn credit_frame_layout_is_kind_stream_and_big_endian_count() {
        let bytes = Frame::Credit {
            stream_id: 7,
            bytes: 65536,
        }
        .encode();
        assert_eq!(bytes, [2, 0, 0, 0, 7, 0, 1, 0, 0]);
    }

    #[test]
    fn reset_frame_layout_is_kind_and_stream_only() {
        let bytes = Frame::Reset { stream_id: 9 }.encode();
        assert_eq!(bytes, [3, 0, 0, 0, 9]);
        assert_eq!(Frame::decode(&bytes), Ok(Frame::Reset { stream_id: 9 }));
        assert_eq!(
            Frame::decode(&[3, 0, 0, 0, 9, 1]),
            Err(FrameError::BadReset(9))
        );
    }

    #[test]
    fn probe_frame_layout_is_kind_and_stream_only() {
        let bytes = Frame::Probe { stream_id: 9 }.encode();
        assert_eq!(bytes, [4, 0, 0, 0, 9]);
        assert_eq!(Frame::decode(&bytes), Ok(Frame::Probe { stream_id: 9 }));
        assert_eq!(
            Frame::decode(&[4, 0, 0, 0, 9, 0]),
            Err(FrameError::BadProbe(9))
        );
    }

    #[test]
    fn rejects_each_malformed_shape_with_its_own_error() {
        assert_eq!(Frame::decode(&[1, 0, 0]), Err(FrameError::Truncated(3)));
        assert_eq!(
            Frame::decode(&[9, 0, 0, 0, 1]),
            Err(FrameError::UnknownKind(9))
        );
        assert_eq!(
            Frame::decode(&[1, 0, 0, 0, 1]),
            Err(FrameError::EmptyData(1))
        );
        assert_eq!(
            Frame::decode(&[2, 0, 0, 0, 1, 0, 0]),
            Err(FrameError::BadCredit(1))
        );
        assert_eq!(
            Frame::decode(&[2, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(FrameError::BadCredit(1))
        );
        let mut big = vec![1, 0, 0, 0, 5];
        big.resize(FRAME_HEADER_LEN + MAX_FRAME_PAYLOAD + 1, 0xAA);
        assert_eq!(
            Frame::decode(&big),
            Err(FrameError::Oversize {
                stream_id: 5,
                size: MAX_FRAME_PAYLOAD + 1
            })
        );
    }

    #[test]
    fn accepts_a_payload_of_exactly_the_maximum() {
        let payload = vec![0x55; MAX_FRAME_PAYLOAD];
        let bytes = Frame::Data {
            stream_id: 1,
            payload: &payload,
        }
        .encode();
        assert!(
            matches!(Frame::decode(&bytes), Ok(Frame::Data { payload: p, .. }) if p.len() == MAX_FRAME_PAYLOAD)
        );
    }
}
