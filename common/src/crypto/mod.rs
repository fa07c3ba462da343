//! Cryptography for the agent ↔ server protocol. Pure functions over keys and bytes, except
//! the one-time CPU feature check in [`suite`].
//!
//! - [`handshake`]: proofs of the node key in both directions and per-connection key derivation
//!   (HMAC-SHA256 and HKDF-SHA256 over a transcript of the hello messages).
//! - [`suite`]: the cipher suites (ChaCha20-Poly1305, AES-256-GCM), the server's choice rule
//!   and whether this machine has AES hardware (the one impure part: reads CPU features).
//! - [`seal`]: sealing of frames with the negotiated suite under a per-direction counter
//!   nonce, so a forged, replayed, reordered or truncated frame fails to open.
//! - [`probe_auth`]: truncated HMAC tags on UDP probes and their replies.
//!
//! docs/PROTOCOL.md ("Handshake and sealing") describes the same construction for third parties.

pub mod handshake;
pub mod probe_auth;
pub mod seal;
pub mod suite;

pub use handshake::{SessionKeys, Transcript};
pub use seal::{Opener, SealError, Sealer};
pub use suite::{aes_hardware, preferred_suites, CipherSuite};
