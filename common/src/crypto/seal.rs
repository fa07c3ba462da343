//! Sealed frames: the negotiated AEAD (ChaCha20-Poly1305 or AES-256-GCM) under a
//! per-direction counter nonce. Pure.
//!
//! The nonce of the n-th frame in a direction is 4 zero bytes ‖ n as u64 big-endian, n from 0.
//! Sender and receiver both count, so the nonce is never sent: a replayed, reordered or dropped
//! frame is opened under the wrong counter and fails authentication, as does any changed or
//! truncated byte. The frame length prefix is not secret; it is implied by the ciphertext,
//! so tampering with it makes the frame fail to open too.
//!
//! Both RustCrypto AEADs verify the tag before they decrypt, so a frame that fails to open is
//! left byte for byte as it arrived: the agent relies on that to read a plaintext handshake
//! error in place of the server's first sealed frame (`session::client`).

use super::suite::CipherSuite;
use crate::wire::frame::{FrameError, FRAME_HEADER_LEN};
use crate::wire::writer::EncodeError;
use aes_gcm::aead::consts::U12;
use aes_gcm::aes::Aes256Enc;
use aes_gcm::AesGcm;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use zeroize::Zeroize;

/// AES-256-GCM (96-bit nonces, 16-byte tags) over the encrypt-only AES key schedule: GCM only
/// ever runs AES forwards, and the full `Aes256` also derives the decryption round keys,
/// wasted work when the cipher is built for every frame.
type Aes256Gcm = AesGcm<Aes256Enc, U12>;

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

/// Heap bytes one prepared direction holds: the expanded AES-256 key schedule and GHASH key
/// (hardware and software layouts share a union). A session has two directions.
pub const PREPARED_AES_BYTES: usize = std::mem::size_of::<Aes256Gcm>();

/// One direction's keyed AEAD. An enum rather than a trait object: two known ciphers, and
/// the match is cheaper than an indirect call on every frame.
enum Aead {
    ChaCha(ChaCha20Poly1305),
    /// The 32-byte key, and optionally the cipher built from it. Built per frame, AES-256-GCM
    /// costs ~150 ns more per seal or open (40-byte seal: ~310 ns, against ~150 ns prepared and
    /// ~480 ns for ChaCha20-Poly1305, which keeps only its key); prepared, it holds
    /// [`PREPARED_AES_BYTES`] (992) per direction. Kept for every connection, that raised a
    /// replica's memory per agent connection from ~0.8 to 2.8 KiB, over the 2 KiB budget, so
    /// the owner of many sessions prepares a bounded number ([`Sealer::prepare`]).
    Aes {
        key: [u8; 32],
        prepared: Option<Box<Aes256Gcm>>,
    },
}

/// The raw AES key is wiped when the session ends (ChaCha20Poly1305 wipes its own key). The
/// expanded AES key schedule of a prepared cipher is not: wiping it needs the `aes` crate's
/// `zeroize` feature, which would also wipe the schedule built for every unprepared frame,
/// a cost on every seal (docs/SECURITY.md, "Secrets at rest and in memory").
impl Drop for Aead {
    fn drop(&mut self) {
        if let Aead::Aes { key, .. } = self {
            key.zeroize();
        }
    }
}

impl Aead {
    fn new(suite: CipherSuite, key: &[u8; 32]) -> Self {
        match suite {
            CipherSuite::ChaCha20Poly1305 => {
                Aead::ChaCha(ChaCha20Poly1305::new(Key::from_slice(key)))
            }
            CipherSuite::Aes256Gcm => Aead::Aes {
                key: *key,
                prepared: None,
            },
        }
    }

    fn suite(&self) -> CipherSuite {
        match self {
            Aead::ChaCha(_) => CipherSuite::ChaCha20Poly1305,
            Aead::Aes { .. } => CipherSuite::Aes256Gcm,
        }
    }

    /// Builds and keeps the AES cipher; true if that added memory (AES, not yet prepared).
    fn prepare(&mut self) -> bool {
        match self {
            Aead::Aes {
                key,
                prepared: prepared @ None,
            } => {
                *prepared = Some(Box::new(Aes256Gcm::new((&*key).into())));
                true
            }
            _ => false,
        }
    }

    fn seal(&self, counter: u64, text: &mut [u8]) -> Result<Tag, SealError> {
        let nonce = nonce(counter);
        match self {
            Aead::ChaCha(c) => c.encrypt_in_place_detached(&nonce, b"", text),
            Aead::Aes { key, prepared } => with_aes(key, prepared, |c| {
                c.encrypt_in_place_detached(&nonce, b"", text)
            }),
        }
        // Only a message over the cipher's limit (about 256 GiB, far above the frame cap)
        // fails to seal.
        .map_err(|_| SealError::Forged)
    }

    fn open(&self, counter: u64, text: &mut [u8], tag: &Tag) -> Result<(), SealError> {
        let nonce = nonce(counter);
        match self {
            Aead::ChaCha(c) => c.decrypt_in_place_detached(&nonce, b"", text, tag),
            Aead::Aes { key, prepared } => with_aes(key, prepared, |c| {
                c.decrypt_in_place_detached(&nonce, b"", text, tag)
            }),
        }
        .map_err(|_| SealError::Forged)
    }
}

/// Runs `f` with the prepared AES cipher, or with one built from `key` for this frame.
fn with_aes<R>(
    key: &[u8; 32],
    prepared: &Option<Box<Aes256Gcm>>,
    f: impl FnOnce(&Aes256Gcm) -> R,
) -> R {
    match prepared {
        Some(cipher) => f(cipher),
        None => f(&Aes256Gcm::new(key.into())),
    }
}

/// The sending half of one direction.
pub struct Sealer {
    cipher: Aead,
    counter: u64,
}

impl Sealer {
    /// A sealer for `suite` under `key`, starting at counter 0.
    pub fn new(suite: CipherSuite, key: &[u8; 32]) -> Self {
        Sealer {
            cipher: Aead::new(suite, key),
            counter: 0,
        }
    }

    /// The suite this sealer uses.
    pub fn suite(&self) -> CipherSuite {
        self.cipher.suite()
    }

    /// Keeps the cipher built between frames (AES only; see [`PREPARED_AES_BYTES`]). True if
    /// that added memory.
    pub fn prepare(&mut self) -> bool {
        self.cipher.prepare()
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
        let tag = match self.cipher.seal(self.counter, &mut out[body..]) {
            Ok(tag) => tag,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        self.counter = next;
        out.extend_from_slice(&tag);
        // len <= cap <= u32::MAX by construction of the cap.
        out[start..body].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }
}

/// Keeps both directions of a session built (see [`Sealer::prepare`]); true if either added
/// memory. Both are always prepared: no short-circuit.
pub fn prepare_both(sealer: &mut Sealer, opener: &mut Opener) -> bool {
    let opened = opener.prepare();
    sealer.prepare() | opened
}

/// The receiving half of one direction.
pub struct Opener {
    cipher: Aead,
    counter: u64,
}

impl Opener {
    /// An opener for `suite` under `key`, expecting counter 0 next.
    pub fn new(suite: CipherSuite, key: &[u8; 32]) -> Self {
        Opener {
            cipher: Aead::new(suite, key),
            counter: 0,
        }
    }

    /// The suite this opener uses.
    pub fn suite(&self) -> CipherSuite {
        self.cipher.suite()
    }

    /// Keeps the cipher built between frames (AES only). True if that added memory.
    pub fn prepare(&mut self) -> bool {
        self.cipher.prepare()
    }

    /// Opens a frame payload in place and returns the plaintext, a prefix of `payload`. The
    /// counter advances only on success, so a failed frame cannot desynchronise a good peer (the
    /// connection is closed anyway). On failure `payload` is unchanged: the tag is checked
    /// before anything is decrypted.
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
        self.cipher.open(self.counter, text, &tag)?;
        self.counter = next;
        Ok(text)
    }
}

#[cfg(test)]
mod tests;
