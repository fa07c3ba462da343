//! Cipher suites: which AEAD seals a connection's frames, their wire codes, and whether this
//! machine runs AES-256-GCM in hardware.
//!
//! [`CipherSuite`], [`suites_for`] and [`choose`] are pure: the session state machines take the
//! offered and allowed suites as data, so tests can force either suite. [`aes_hardware`] and
//! [`preferred_suites`] are not: they read the CPU's feature flags (once per process). The
//! agent's engine defaults, the replica's bridge and follower, the master's replication
//! listener and the load generator use them, and so do the tests that play a real agent or
//! server (which suite they get does not change what they assert); the session and cipher tests
//! force each suite. docs/PROTOCOL.md, "Cipher negotiation", has the rule.

use std::sync::OnceLock;

/// The AEAD that seals a connection's frames. Both take a 32-byte key, a 12-byte nonce and add
/// a 16-byte tag, so everything around the cipher (key derivation, nonce layout, framing) is
/// the same for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// ChaCha20-Poly1305 (RFC 8439). Mandatory to implement: fast everywhere, constant time
    /// without special instructions.
    ChaCha20Poly1305,
    /// AES-256-GCM (NIST SP 800-38D). With AES-NI and PCLMULQDQ (or ARMv8 AES/PMULL) it seals
    /// and opens a 40-byte frame in ~38 % of ChaCha20-Poly1305's time with the cipher kept
    /// built, ~59 % when built per frame (`cargo bench --bench seal`); several times slower
    /// without the hardware.
    Aes256Gcm,
}

impl CipherSuite {
    /// All suites, in wire-code order.
    pub const ALL: [CipherSuite; 2] = [CipherSuite::ChaCha20Poly1305, CipherSuite::Aes256Gcm];

    /// The stable wire code.
    pub fn code(self) -> u8 {
        match self {
            CipherSuite::ChaCha20Poly1305 => 1,
            CipherSuite::Aes256Gcm => 2,
        }
    }

    /// Inverse of [`CipherSuite::code`]; `None` for a code this build does not know.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            CipherSuite::ChaCha20Poly1305 => "ChaCha20-Poly1305",
            CipherSuite::Aes256Gcm => "AES-256-GCM",
        }
    }
}

/// What a client offers, most preferred first: AES-256-GCM first only where it runs in
/// hardware. ChaCha20-Poly1305 is always offered, so any server can answer.
pub fn suites_for(aes_hardware: bool) -> &'static [CipherSuite] {
    if aes_hardware {
        &[CipherSuite::Aes256Gcm, CipherSuite::ChaCha20Poly1305]
    } else {
        &[CipherSuite::ChaCha20Poly1305]
    }
}

/// The server's choice from a client's offer (known suites only, in the client's order).
/// AES-256-GCM only when the client lists it first (it has AES hardware) and `aes_allowed`
/// (the server has too), because AES without hardware is slower than ChaCha20-Poly1305 for
/// whichever side lacks it; otherwise ChaCha20-Poly1305 if offered; otherwise `None`.
pub fn choose(offered: &[CipherSuite], aes_allowed: bool) -> Option<CipherSuite> {
    if aes_allowed && offered.first() == Some(&CipherSuite::Aes256Gcm) {
        return Some(CipherSuite::Aes256Gcm);
    }
    offered
        .iter()
        .copied()
        .find(|s| *s == CipherSuite::ChaCha20Poly1305)
}

/// True when this machine runs AES-256-GCM in hardware: the CPU has the instructions and the
/// RustCrypto `aes` and `polyval` crates were built to use them. Detected once per process.
///
/// x86/x86_64: AES-NI and PCLMULQDQ, the features `aes` and `polyval` detect at run time
/// (unless built with `--cfg aes_force_soft` / `polyval_force_soft`). aarch64: the `aes`
/// feature (which implies PMULL), but those crates use it only when built with
/// `--cfg aes_armv8 --cfg polyval_armv8`; without them AES-GCM is software, so this says false.
/// Elsewhere: false.
pub fn aes_hardware() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(detect)
}

/// The suites this machine offers as a client (see [`suites_for`]), detected once.
pub fn preferred_suites() -> &'static [CipherSuite] {
    suites_for(aes_hardware())
}

/// Whether the RustCrypto AES and POLYVAL crates of this build use the hardware at all:
/// not when forced to software, and on aarch64 only with their opt-in cfgs.
const BUILD_USES_AES_HARDWARE: bool = cfg!(all(
    not(aes_force_soft),
    not(polyval_force_soft),
    any(not(target_arch = "aarch64"), all(aes_armv8, polyval_armv8))
));

fn detect() -> bool {
    BUILD_USES_AES_HARDWARE && cpu_has_aes()
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn cpu_has_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn cpu_has_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
fn cpu_has_aes() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use CipherSuite::{Aes256Gcm as Aes, ChaCha20Poly1305 as ChaCha};

    #[test]
    fn codes_are_stable_and_unknown_codes_are_none() {
        assert_eq!(ChaCha.code(), 1);
        assert_eq!(Aes.code(), 2);
        for s in CipherSuite::ALL {
            assert_eq!(CipherSuite::from_code(s.code()), Some(s));
        }
        assert_eq!(CipherSuite::from_code(0), None);
        assert_eq!(CipherSuite::from_code(3), None);
    }

    #[test]
    fn clients_offer_aes_first_only_with_hardware_and_always_offer_chacha() {
        assert_eq!(suites_for(true), [Aes, ChaCha]);
        assert_eq!(suites_for(false), [ChaCha]);
        assert_eq!(preferred_suites(), suites_for(aes_hardware()));
    }

    #[test]
    fn aes_is_chosen_only_when_offered_first_and_allowed() {
        assert_eq!(choose(&[Aes, ChaCha], true), Some(Aes));
        assert_eq!(choose(&[Aes, ChaCha], false), Some(ChaCha));
        assert_eq!(choose(&[ChaCha, Aes], true), Some(ChaCha));
        assert_eq!(choose(&[ChaCha], true), Some(ChaCha));
        assert_eq!(choose(&[Aes], true), Some(Aes));
        assert_eq!(choose(&[Aes], false), None);
        assert_eq!(choose(&[], true), None);
    }
}
