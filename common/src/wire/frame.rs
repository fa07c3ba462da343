//! Frames: a 4-byte big-endian length followed by that many bytes.
//!
//! Pure: works on byte slices the caller's connection buffer provides. The replica's mio
//! bridge and the agent call [`decode_frame`] on whatever has arrived so far and
//! [`encode_frame`] to queue outgoing bytes. The length is checked against the cap as soon as
//! the 4-byte prefix is in, so a peer cannot make us buffer an oversized frame.
//! Zero-length frames are legal at this layer; the message layer rejects them (no tag).

/// Hard cap on a frame's payload, bytes (default 64 KiB). Bounds every per-connection read
/// buffer; the largest valid message (an authenticate request with a 1024-byte password plus
/// sealing overhead) is under 2 KiB, so this leaves ample room for growth.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Size of the length prefix, bytes.
pub const FRAME_HEADER_LEN: usize = 4;
/// Cap on a frame's payload before the handshake has finished, bytes (default 512). The
/// largest handshake message a peer sends is a ClientHello with 16 versions, a 255-byte host
/// and 8 cipher codes: 332 bytes (test `the_largest_handshake_message_fits_its_frame_cap`).
/// So a peer that has proven no key makes a server hold at most one such frame per connection
/// (516 bytes with the prefix), not [`MAX_FRAME_LEN`].
pub const MAX_HANDSHAKE_FRAME_LEN: usize = 512;

/// A frame that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the cap.
    #[error("frame of {len} bytes exceeds the cap of {cap} bytes")]
    TooLarge { len: usize, cap: usize },
}

/// Looks for one complete frame at the start of `buf`.
/// `Ok(None)`: need more bytes. `Ok(Some((consumed, payload)))`: a frame.
/// `Err(TooLarge)` as soon as the prefix is complete and announces more than `cap`.
pub fn decode_frame(buf: &[u8], cap: usize) -> Result<Option<(usize, &[u8])>, FrameError> {
    let Some((prefix, rest)) = buf.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let announced = u32::from_be_bytes(*prefix);
    // On a 16-bit target a u32 may not fit a usize; it is then certainly over any cap.
    let len = usize::try_from(announced).unwrap_or(usize::MAX);
    if len > cap {
        return Err(FrameError::TooLarge { len, cap });
    }
    match rest.get(..len) {
        Some(payload) => Ok(Some((FRAME_HEADER_LEN + len, payload))),
        None => Ok(None),
    }
}

/// Appends a frame holding `payload` to `out`. Refuses a payload over `cap` (or over
/// `u32::MAX`, which the prefix cannot express); `out` is then unchanged.
pub fn encode_frame(payload: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let too_large = FrameError::TooLarge {
        len: payload.len(),
        cap,
    };
    if payload.len() > cap {
        return Err(too_large);
    }
    let len = u32::try_from(payload.len()).map_err(|_| too_large)?;
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_vector_frame() {
        let mut out = vec![];
        encode_frame(b"hi", MAX_FRAME_LEN, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 2, b'h', b'i']);
        assert_eq!(decode_frame(&out, MAX_FRAME_LEN), Ok(Some((6, &b"hi"[..]))));
    }

    #[test]
    fn incomplete_prefix_or_payload_needs_more() {
        assert_eq!(decode_frame(&[], 10), Ok(None));
        assert_eq!(decode_frame(&[0, 0, 0], 10), Ok(None));
        assert_eq!(decode_frame(&[0, 0, 0, 3, 1, 2], 10), Ok(None));
    }

    #[test]
    fn oversized_prefix_is_rejected_before_payload_arrives() {
        // 64 KiB + 1 announced, nothing of the payload yet.
        assert_eq!(
            decode_frame(&[0, 1, 0, 1], MAX_FRAME_LEN),
            Err(FrameError::TooLarge {
                len: 65537,
                cap: MAX_FRAME_LEN
            })
        );
        assert_eq!(
            decode_frame(&[0xff, 0xff, 0xff, 0xff], MAX_FRAME_LEN),
            Err(FrameError::TooLarge {
                len: 0xffff_ffff,
                cap: MAX_FRAME_LEN
            })
        );
    }

    #[test]
    fn frame_of_exactly_cap_is_accepted() {
        let payload = vec![7u8; 16];
        let mut out = vec![];
        encode_frame(&payload, 16, &mut out).unwrap();
        assert_eq!(decode_frame(&out, 16), Ok(Some((20, &payload[..]))));
        assert_eq!(
            decode_frame(&out, 15),
            Err(FrameError::TooLarge { len: 16, cap: 15 })
        );
    }

    #[test]
    fn zero_length_frame_is_allowed() {
        assert_eq!(decode_frame(&[0, 0, 0, 0, 9], 0), Ok(Some((4, &[][..]))));
    }

    #[test]
    fn encode_over_cap_fails_and_leaves_out_unchanged() {
        let mut out = vec![1];
        assert_eq!(
            encode_frame(&[0; 5], 4, &mut out),
            Err(FrameError::TooLarge { len: 5, cap: 4 })
        );
        assert_eq!(out, [1]);
    }

    proptest! {
        #[test]
        fn decode_frame_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64),
                                     cap in 0usize..100) {
            match decode_frame(&buf, cap) {
                Ok(Some((consumed, payload))) => {
                    prop_assert_eq!(consumed, payload.len() + FRAME_HEADER_LEN);
                    prop_assert!(payload.len() <= cap);
                }
                Ok(None) | Err(FrameError::TooLarge { .. }) => {}
            }
        }

        #[test]
        fn frame_round_trips_and_leaves_following_bytes(
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            next in proptest::collection::vec(any::<u8>(), 0..10),
        ) {
            let mut out = vec![];
            encode_frame(&payload, MAX_FRAME_LEN, &mut out).unwrap();
            let whole = out.len();
            // Every strict prefix asks for more bytes.
            for cut in 0..whole {
                prop_assert_eq!(decode_frame(&out[..cut], MAX_FRAME_LEN), Ok(None));
            }
            out.extend_from_slice(&next);
            prop_assert_eq!(
                decode_frame(&out, MAX_FRAME_LEN),
                Ok(Some((whole, &payload[..])))
            );
        }
    }
}
