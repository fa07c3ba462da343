//! Cryptography for the agent ↔ server protocol. Pure functions over keys and bytes.
//!
//! - [`handshake`]: proofs of the node key in both directions and per-connection key derivation
//!   (HMAC-SHA256 and HKDF-SHA256 over a transcript of the hello messages).
//! - [`seal`]: ChaCha20-Poly1305 sealing of frames under a per-direction counter nonce, so a
//!   forged, replayed, reordered or truncated frame fails to open.
//! - [`probe_auth`]: truncated HMAC tags on UDP probes and their replies.
//!
//! docs/PROTOCOL.md ("Handshake and sealing") describes the same construction for third parties.

pub mod handshake;
pub mod probe_auth;
pub mod seal;

pub use handshake::{SessionKeys, Transcript};
pub use seal::{Opener, SealError, Sealer};
