//! Sealed frames: ChaCha20-Poly1305 under a per-direction counter nonce. Pure.
//!
//! The nonce of the n-th frame in a direction is 4 zero bytes ‖ n as u64 big-endian, n from 0.
//! Sender and receiver both count, so the nonce is never sent: a replayed, reordered or dropped
//! frame is opened under the wrong counter and fails authentication, as does any changed or
//! truncated byte. The frame length prefix is not secret; it is implied by the ciphertext,
//! so tampering with it makes the frame fail to open too.

use crate::wire::frame::{FrameError, FRAME_HEADER_LEN};
use crate::wire::writer::EncodeError;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};

/// Bytes the AEAD adds to every sealed frame.
pub const TAG_LEN: usize = 16;

/// Why a frame could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Forged, replayed, reordered, truncated or corrupted: the tag did not verify.
    #[error("sealed frame failed authentication (forged, replayed, reordered or truncated)")]
    Forged,
    /// Shorter than a tag.
    #[error("sealed frame shorter than its {TAG_LEN}-byte tag")]
    TooShort,
    /// 2^64 frames in one direction: the connection must end rather than reuse a nonce.
    #[error("nonce counter exhausted")]
    CounterExhausted,
    /// The sealed frame would exceed the frame cap.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The message itself could not be encoded (a field over its limit).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::from(bytes)
}

/// The sending half of one direction.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    counter: u64,
}

impl Sealer {
    /// A sealer starting at counter 0.
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
            counter: 0,
        }
    }

    /// Appends one complete sealed frame to `out`: the caller's `encode` writes the plaintext,
    /// which is then encrypted in place (no extra allocation). On error `out` is unchanged.
    pub fn seal_frame(
        &mut self,
        cap: usize,
        out: &mut Vec<u8>,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
    ) -> Result<(), SealError> {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        let body = out.len();
        if let Err(e) = encode(out) {
            out.truncate(start);
            return Err(e.into());
        }
        let len = out.len() - body + TAG_LEN;
        if len > cap {
            out.truncate(start);
            return Err(FrameError::TooLarge { len, cap }.into());
        }
        let Some(next) = self.counter.checked_add(1) else {
            out.truncate(start);
            return Err(SealError::CounterExhausted);
        };
        let tag =
            match self
                .cipher
                .encrypt_in_place_detached(&nonce(self.counter), b"", &mut out[body..])
            {
                Ok(tag) => tag,
                Err(_) => {
                    out.truncate(start);
                    return Err(SealError::Forged);
                }
            };
        self.counter = next;
        out.extend_from_slice(&tag);
        // len <= cap <= u32::MAX by construction of the cap.
        out[start..body].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }
}

/// The receiving half of one direction.
pub struct Opener {
    cipher: ChaCha20Poly1305,
    counter: u64,
}

impl Opener {
    /// An opener expecting counter 0 next.
    pub fn new(key: &[u8; 32]) -> Self {
        Opener {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
            counter: 0,
        }
    }

    /// Opens a frame payload in place and returns the plaintext, a prefix of `payload`. The
    /// counter advances only on success, so a failed frame cannot desynchronise a good peer (the
    /// connection is closed anyway).
    pub fn open_in_place<'a>(&mut self, payload: &'a mut [u8]) -> Result<&'a [u8], SealError> {
        let split = payload
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(SealError::TooShort)?;
        let next = self
            .counter
            .checked_add(1)
            .ok_or(SealError::CounterExhausted)?;
        let (text, tag) = payload.split_at_mut(split);
        let tag = Tag::clone_from_slice(tag);
        self.cipher
            .decrypt_in_place_detached(&nonce(self.counter), b"", text, &tag)
            .map_err(|_| SealError::Forged)?;
        self.counter = next;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::MAX_FRAME_LEN;

    fn sealed(sealer: &mut Sealer, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        sealer
            .seal_frame(MAX_FRAME_LEN, &mut out, |o| {
                o.extend_from_slice(text);
                Ok(())
            })
            .unwrap();
        out
    }

    fn payload(frame: &[u8]) -> Vec<u8> {
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(frame.len(), 4 + len);
        frame[4..].to_vec()
    }

    #[test]
    fn frames_open_in_order() {
        let key = [7; 32];
        let (mut s, mut o) = (Sealer::new(&key), Opener::new(&key));
        for text in [&b"one"[..], b"", b"three"] {
            let mut p = payload(&sealed(&mut s, text));
            assert_eq!(o.open_in_place(&mut p).unwrap(), text);
        }
    }

    #[test]
    fn replayed_reordered_forged_and_truncated_frames_fail() {
        let key = [7; 32];
        let mut s = Sealer::new(&key);
        let first = payload(&sealed(&mut s, b"first"));
        let second = payload(&sealed(&mut s, b"second"));

        let mut o = Opener::new(&key);
        assert_eq!(o.open_in_place(&mut second.clone()), Err(SealError::Forged));
        assert_eq!(o.open_in_place(&mut first.clone()).unwrap(), b"first");
        assert_eq!(o.open_in_place(&mut first.clone()), Err(SealError::Forged));

        let mut forged = second.clone();
        forged[0] ^= 1;
        assert_eq!(o.open_in_place(&mut forged), Err(SealError::Forged));
        let mut truncated = second[..second.len() - 1].to_vec();
        assert_eq!(o.open_in_place(&mut truncated), Err(SealError::Forged));
        assert_eq!(o.open_in_place(&mut [0; 3]), Err(SealError::TooShort));
        // A failure does not advance the counter: the genuine frame still opens.
        assert_eq!(o.open_in_place(&mut second.clone()).unwrap(), b"second");
    }

    #[test]
    fn the_wrong_key_fails() {
        let mut s = Sealer::new(&[1; 32]);
        let mut p = payload(&sealed(&mut s, b"x"));
        assert_eq!(
            Opener::new(&[2; 32]).open_in_place(&mut p),
            Err(SealError::Forged)
        );
    }

    #[test]
    fn an_oversized_frame_is_refused_and_leaves_the_buffer_unchanged() {
        let mut s = Sealer::new(&[1; 32]);
        let mut out = b"keep".to_vec();
        let err = s.seal_frame(20, &mut out, |o| {
            o.extend_from_slice(&[0; 10]);
            Ok(())
        });
        assert!(matches!(err, Err(SealError::Frame(_))));
        assert_eq!(out, b"keep");
    }
}
