use thiserror::Error;

/// Why a text message could not be decoded.
#[derive(Debug, Error)]
pub enum ProtocolError {
    /// The message is larger than [`crate::MAX_TEXT_MESSAGE`].
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the rejected message.
        size: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The text is not valid JSON, or a known message type has missing or mistyped fields.
    #[error("malformed message: {0}")]
    Malformed(#[source] serde_json::Error),
}
