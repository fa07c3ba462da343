//! Offline password verifiers: after a successful online login the agent keeps an argon2id
//! hash of the password, keyed with a secret derived from its node key, so that when no server
//! is reachable (and `offline.passwords` is on) it can still check that password.
//!
//! Pure CPU work (argon2 takes tens of milliseconds by design, so the daemon runs it on its
//! verifier thread, never on its event loop). The key makes a stolen cache alone useless for
//! guessing: every guess needs the node key too (0600, root's), and the verifier differs from
//! the server's hash of the same password. The comparison is constant-time (`password-hash`
//! compares outputs with `subtle`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use gatehouse_common::nodekeys::NodeKey;
use hkdf::Hkdf;
use rand::{CryptoRng, RngCore};
use sha2::Sha256;

/// The HKDF label of the verifier key: changing it invalidates every stored verifier.
const VERIFIER_KEY_INFO: &[u8] = b"gatehouse v1 offline verifier";
/// argon2id memory per verifier, KiB (19 MiB, OWASP's minimum for argon2id with t = 2).
pub const VERIFIER_MEMORY_KIB: u32 = 19 * 1024;
/// argon2id passes (2).
pub const VERIFIER_PASSES: u32 = 2;

/// The secret that keys every verifier on this host.
pub struct VerifierKey([u8; 32]);

impl VerifierKey {
    /// HKDF-SHA256 of the node key with [`VERIFIER_KEY_INFO`].
    pub fn from_node_key(key: &NodeKey) -> VerifierKey {
        let mut out = [0u8; 32];
        // Cannot fail: 32 bytes is far below HKDF-SHA256's 8160-byte maximum.
        let _ = Hkdf::<Sha256>::new(None, &key.0).expand(VERIFIER_KEY_INFO, &mut out);
        VerifierKey(out)
    }

    fn argon2(&self) -> Option<Argon2<'_>> {
        let params = Params::new(VERIFIER_MEMORY_KIB, VERIFIER_PASSES, 1, None).ok()?;
        Argon2::new_with_secret(&self.0, Algorithm::Argon2id, Version::V0x13, params).ok()
    }

    /// A new verifier (a PHC string) for `password`.
    pub fn make(&self, password: &str, rng: &mut (impl RngCore + CryptoRng)) -> Option<String> {
        let salt = SaltString::generate(rng);
        let hash = self
            .argon2()?
            .hash_password(password.as_bytes(), &salt)
            .ok()?;
        Some(hash.to_string())
    }

    /// Whether `password` matches `verifier` (false for a malformed verifier).
    pub fn matches(&self, verifier: &str, password: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(verifier) else {
            return false;
        };
        self.argon2()
            .is_some_and(|a| a.verify_password(password.as_bytes(), &parsed).is_ok())
    }
}

impl Drop for VerifierKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn a_verifier_matches_its_password_only_and_only_with_its_key() {
        let mut rng = StdRng::seed_from_u64(7);
        let key = VerifierKey::from_node_key(&NodeKey([1; 32]));
        let verifier = key.make("correct horse", &mut rng).unwrap();
        assert!(
            verifier.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{verifier}"
        );
        assert!(key.matches(&verifier, "correct horse"));
        assert!(!key.matches(&verifier, "correct horse "));
        assert!(!key.matches(&verifier, ""));
        // Another host's key (a copied cache) never matches.
        let other = VerifierKey::from_node_key(&NodeKey([2; 32]));
        assert!(!other.matches(&verifier, "correct horse"));
        assert!(!key.matches("not a phc string", "correct horse"));
    }
}
