//! Bounds-checked reader. TODO(codec helper)

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message truncated")]
    Truncated,
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    #[error("invalid {field}: {why}")]
    Invalid {
        field: &'static str,
        why: &'static str,
    },
}
