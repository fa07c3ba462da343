//! Handshake proofs and key derivation. Pure.
//!
//! transcript = SHA-256("gatehouse v1 transcript" ‖ ClientHello bytes ‖ version u16
//!                      ‖ cipher u8 ‖ server nonce)
//! server proof = HMAC-SHA256(node key, "gatehouse v1 server proof" ‖ transcript)
//! client proof = HMAC-SHA256(node key, "gatehouse v1 client proof" ‖ transcript)
//! c2s key, s2c key = HKDF-SHA256(salt = transcript, ikm = node key,
//!                                info = "gatehouse v1 c2s" / "gatehouse v1 s2c"), 32 bytes each
//!
//! The transcript covers the whole ClientHello (host name, offered versions and cipher suites,
//! client nonce) and the server's choices, so a man in the middle cannot change the host or
//! downgrade the version or the cipher suite without breaking both proofs; both nonces make
//! every connection's keys fresh.

use super::suite::CipherSuite;
use crate::nodekeys::NodeKey;
use crate::wire::msg::{NONCE_LEN, PROOF_LEN};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

type HmacSha256 = Hmac<Sha256>;

const TRANSCRIPT_LABEL: &[u8] = b"gatehouse v1 transcript";
const SERVER_PROOF_LABEL: &[u8] = b"gatehouse v1 server proof";
const CLIENT_PROOF_LABEL: &[u8] = b"gatehouse v1 client proof";
const C2S_INFO: &[u8] = b"gatehouse v1 c2s";
const S2C_INFO: &[u8] = b"gatehouse v1 s2c";

/// Length of a session key, bytes (a ChaCha20-Poly1305 or AES-256-GCM key).
pub const SESSION_KEY_LEN: usize = 32;

/// Hash of the handshake so far; binds proofs and keys to this one connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Transcript([u8; 32]);

impl Transcript {
    /// Computes the transcript from the encoded ClientHello message (without frame prefix) and
    /// the server's chosen version, cipher suite and nonce.
    pub fn new(
        client_hello: &[u8],
        version: u16,
        cipher: CipherSuite,
        server_nonce: &[u8; NONCE_LEN],
    ) -> Self {
        let mut hash = Sha256::new();
        hash.update(TRANSCRIPT_LABEL);
        hash.update(client_hello);
        hash.update(version.to_be_bytes());
        hash.update([cipher.code()]);
        hash.update(server_nonce);
        Transcript(hash.finalize().into())
    }
}

fn mac(key: &NodeKey, label: &[u8], transcript: &Transcript) -> HmacSha256 {
    // HMAC accepts keys of any length; a 32-byte key cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&key.0).expect("HMAC takes any key length");
    mac.update(label);
    mac.update(&transcript.0);
    mac
}

/// The server's proof that it knows the node key.
pub fn server_proof(key: &NodeKey, transcript: &Transcript) -> [u8; PROOF_LEN] {
    mac(key, SERVER_PROOF_LABEL, transcript)
        .finalize()
        .into_bytes()
        .into()
}

/// The agent's proof that it knows the node key.
pub fn client_proof(key: &NodeKey, transcript: &Transcript) -> [u8; PROOF_LEN] {
    mac(key, CLIENT_PROOF_LABEL, transcript)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks a server proof in constant time.
pub fn verify_server_proof(key: &NodeKey, transcript: &Transcript, proof: &[u8]) -> bool {
    mac(key, SERVER_PROOF_LABEL, transcript)
        .verify_slice(proof)
        .is_ok()
}

/// Checks a client proof in constant time.
pub fn verify_client_proof(key: &NodeKey, transcript: &Transcript, proof: &[u8]) -> bool {
    mac(key, CLIENT_PROOF_LABEL, transcript)
        .verify_slice(proof)
        .is_ok()
}

/// The two directional keys of one connection; wiped from memory when dropped (the sealer
/// and opener built from them keep their own copies, wiped when they are dropped).
pub struct SessionKeys {
    /// Agent → server.
    pub client_to_server: [u8; SESSION_KEY_LEN],
    /// Server → agent.
    pub server_to_client: [u8; SESSION_KEY_LEN],
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.client_to_server.zeroize();
        self.server_to_client.zeroize();
    }
}

impl SessionKeys {
    /// Derives both keys from the node key and the transcript.
    pub fn derive(key: &NodeKey, transcript: &Transcript) -> Self {
        Self::expand(&transcript.0, &key.0, C2S_INFO, S2C_INFO)
    }

    /// Both keys by HKDF-SHA256 from `salt` and `ikm`, one per `info` label (also used by a
    /// replication link's key exchange, `repl::link_auth`).
    pub(crate) fn expand(salt: &[u8], ikm: &[u8], c2s_info: &[u8], s2c_info: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
        let mut keys = SessionKeys {
            client_to_server: [0; SESSION_KEY_LEN],
            server_to_client: [0; SESSION_KEY_LEN],
        };
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        hk.expand(c2s_info, &mut keys.client_to_server)
            .expect("32 bytes is a valid HKDF length");
        hk.expand(s2c_info, &mut keys.server_to_client)
            .expect("32 bytes is a valid HKDF length");
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHACHA: CipherSuite = CipherSuite::ChaCha20Poly1305;

    fn transcript() -> Transcript {
        Transcript::new(b"hello", 1, CHACHA, &[9; NONCE_LEN])
    }

    #[test]
    fn proofs_verify_only_with_the_same_key_and_transcript() {
        let key = NodeKey([1; 32]);
        let t = transcript();
        assert!(verify_server_proof(&key, &t, &server_proof(&key, &t)));
        assert!(verify_client_proof(&key, &t, &client_proof(&key, &t)));
        assert!(!verify_server_proof(
            &NodeKey([2; 32]),
            &t,
            &server_proof(&key, &t)
        ));
        let other = Transcript::new(b"hellO", 1, CHACHA, &[9; NONCE_LEN]);
        assert!(!verify_client_proof(&key, &other, &client_proof(&key, &t)));
        let aes = Transcript::new(b"hello", 1, CipherSuite::Aes256Gcm, &[9; NONCE_LEN]);
        assert!(!verify_server_proof(&key, &aes, &server_proof(&key, &t)));
        assert!(!verify_client_proof(&key, &t, &[0; 31]));
    }

    #[test]
    fn the_two_proofs_differ_so_one_cannot_be_reflected_as_the_other() {
        let key = NodeKey([1; 32]);
        let t = transcript();
        assert_ne!(server_proof(&key, &t), client_proof(&key, &t));
        assert!(!verify_client_proof(&key, &t, &server_proof(&key, &t)));
    }

    #[test]
    fn keys_differ_per_direction_and_per_transcript() {
        let key = NodeKey([1; 32]);
        let a = SessionKeys::derive(&key, &transcript());
        let b = SessionKeys::derive(&key, &Transcript::new(b"hello", 1, CHACHA, &[8; NONCE_LEN]));
        assert_ne!(a.client_to_server, a.server_to_client);
        assert_ne!(a.client_to_server, b.client_to_server);
    }
}
