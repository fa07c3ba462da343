//! Frames: a 4-byte big-endian length followed by that many bytes.
//! TODO(codec helper)

/// Hard cap on a frame's payload, bytes (64 KiB). Bounds every per-connection read buffer.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Size of the length prefix, bytes.
pub const FRAME_HEADER_LEN: usize = 4;

/// A frame that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the cap.
    #[error("frame of {len} bytes exceeds the cap of {cap} bytes")]
    TooLarge { len: usize, cap: usize },
}

/// Looks for one complete frame at the start of `buf`.
/// `Ok(None)`: need more bytes. `Ok(Some((consumed, payload)))`: a frame.
pub fn decode_frame(buf: &[u8], cap: usize) -> Result<Option<(usize, &[u8])>, FrameError> {
    let _ = (buf, cap);
    todo!()
}

/// Appends a frame holding `payload` to `out`.
pub fn encode_frame(payload: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let _ = (payload, cap, out);
    todo!()
}
