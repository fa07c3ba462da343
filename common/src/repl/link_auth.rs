//! The master's identity on a replication link. Pure: randomness is passed in.
//!
//! Every server holds every node key (the database carries them), so the node-key handshake
//! proves only that the peer is *some* server. The master additionally holds an Ed25519 key
//! pair that no replica has; replicas pin its public key in their config. Inside the sealed
//! node-key session the replica sends a fresh X25519 public key ([`LinkHello`]); the master
//! answers with its own ephemeral key, its public key and epoch, and an Ed25519 signature over
//!
//! ```text
//! binding = SHA-256("gatehouse v1 replication link" ‖ host_len:u8 ‖ host ‖ replica_ephemeral
//!                   ‖ master_ephemeral ‖ master_key ‖ epoch:u64)
//! signature = Ed25519(master secret key, binding)
//! ```
//!
//! and both sides switch the session to keys derived from the X25519 shared secret:
//!
//! ```text
//! c2s, s2c = HKDF-SHA256(salt = binding, ikm = X25519(own secret, peer ephemeral) ‖ node key,
//!                        info = "gatehouse v1 link c2s" / "gatehouse v1 link s2c"), 32 bytes
//! ```
//!
//! A peer that knows the replica's node key but not the master's secret key cannot sign, and a
//! relay that passes the real master's answer through cannot compute the shared secret, so
//! everything after the switch (every batch, snapshot and ack) is bound to the master's
//! identity. The signed host name stops a relay from presenting one replica's exchange to the
//! master as another's.

use crate::crypto::handshake::SessionKeys;
use crate::nodekeys::{NodeKey, NodeKeyParseError};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use std::fmt;
use x25519_dalek::{PublicKey, StaticSecret};

/// Length of an X25519 public key, bytes.
pub const EPHEMERAL_LEN: usize = 32;
/// Length of a master public key (Ed25519), bytes.
pub const MASTER_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature, bytes.
pub const SIGNATURE_LEN: usize = 64;

const BINDING_LABEL: &[u8] = b"gatehouse v1 replication link";
const C2S_INFO: &[u8] = b"gatehouse v1 link c2s";
const S2C_INFO: &[u8] = b"gatehouse v1 link s2c";

/// Replica → master, first message on a link: a fresh X25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkHello {
    pub ephemeral: [u8; EPHEMERAL_LEN],
}

/// Master → replica: the master's ephemeral key, public key and epoch, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAuth {
    pub master_key: [u8; MASTER_KEY_LEN],
    pub ephemeral: [u8; EPHEMERAL_LEN],
    pub epoch: u64,
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why a link's proof of the master's identity failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkAuthError {
    #[error("the master presented key {presented}, not the key pinned for it ({pinned})")]
    NotPinned { presented: String, pinned: String },
    #[error("the master's signature does not verify: not the holder of the pinned key")]
    BadSignature,
    #[error("the key exchange produced no shared secret (a low-order public key)")]
    WeakExchange,
    #[error("{0}")]
    KeyText(String),
}

/// A master's secret signing key. Wiped from memory when dropped (ed25519-dalek zeroizes).
pub struct MasterSecretKey(SigningKey);

impl fmt::Debug for MasterSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterSecretKey(public {})", self.public())
    }
}

impl MasterSecretKey {
    /// A fresh key from the given CSPRNG.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        MasterSecretKey(SigningKey::generate(rng))
    }

    /// The key file's text: 64 hex digits of the secret seed (surrounding whitespace allowed).
    pub fn from_hex(text: &str) -> Result<Self, LinkAuthError> {
        let seed = NodeKey::from_hex(text).map_err(key_text)?;
        Ok(MasterSecretKey(SigningKey::from_bytes(&seed.0)))
    }

    /// The secret seed as 64 hex digits, for writing the key file (mode 0600).
    pub fn to_hex(&self) -> String {
        NodeKey(self.0.to_bytes()).to_hex()
    }

    pub fn public(&self) -> MasterPublicKey {
        MasterPublicKey(self.0.verifying_key().to_bytes())
    }
}

/// A master's public key, as pinned in a replica's config (64 hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MasterPublicKey(pub [u8; MASTER_KEY_LEN]);

impl MasterPublicKey {
    /// Parses 64 hex digits and checks they are a valid Ed25519 public key.
    pub fn from_hex(text: &str) -> Result<Self, LinkAuthError> {
        let bytes = NodeKey::from_hex(text).map_err(key_text)?.0;
        VerifyingKey::from_bytes(&bytes)
            .map_err(|_| LinkAuthError::KeyText("not a valid Ed25519 public key".into()))?;
        Ok(MasterPublicKey(bytes))
    }

    pub fn to_hex(&self) -> String {
        NodeKey(self.0).to_hex()
    }
}

impl fmt::Display for MasterPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for MasterPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterPublicKey({self})")
    }
}

fn key_text(e: NodeKeyParseError) -> LinkAuthError {
    LinkAuthError::KeyText(e.to_string())
}

/// The replica's half of the exchange, between its hello and the master's answer.
pub struct LinkInitiator {
    secret: StaticSecret,
    ephemeral: [u8; EPHEMERAL_LEN],
}

impl LinkInitiator {
    /// A fresh exchange; send the returned hello.
    pub fn start(rng: &mut (impl RngCore + CryptoRng)) -> (Self, LinkHello) {
        let secret = StaticSecret::random_from_rng(rng);
        let ephemeral = PublicKey::from(&secret).to_bytes();
        (LinkInitiator { secret, ephemeral }, LinkHello { ephemeral })
    }

    /// Checks the master's answer against the pinned key and returns the link's new keys and
    /// the master's (signed) epoch. `host` is this replica's registered name.
    pub fn finish(
        self,
        auth: &LinkAuth,
        host: &str,
        node_key: &NodeKey,
        pinned: &MasterPublicKey,
    ) -> Result<(SessionKeys, u64), LinkAuthError> {
        if auth.master_key != pinned.0 {
            return Err(LinkAuthError::NotPinned {
                presented: MasterPublicKey(auth.master_key).to_hex(),
                pinned: pinned.to_hex(),
            });
        }
        let binding = binding(host, &self.ephemeral, auth);
        let verifier =
            VerifyingKey::from_bytes(&pinned.0).map_err(|_| LinkAuthError::BadSignature)?;
        let signature = ed25519_dalek::Signature::from_bytes(&auth.signature);
        verifier
            .verify_strict(&binding, &signature)
            .map_err(|_| LinkAuthError::BadSignature)?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(auth.ephemeral));
        let keys = derive(&binding, shared.as_bytes(), node_key)?;
        Ok((keys, auth.epoch))
    }
}

/// The master's answer to a replica's hello: the message to send and the link's new keys.
/// `host` is the replica host proven by the node-key handshake.
pub fn respond(
    hello: &LinkHello,
    host: &str,
    node_key: &NodeKey,
    master: &MasterSecretKey,
    epoch: u64,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(LinkAuth, SessionKeys), LinkAuthError> {
    let secret = StaticSecret::random_from_rng(rng);
    let mut auth = LinkAuth {
        master_key: master.public().0,
        ephemeral: PublicKey::from(&secret).to_bytes(),
        epoch,
        signature: [0; SIGNATURE_LEN],
    };
    let binding = binding(host, &hello.ephemeral, &auth);
    auth.signature = master.0.sign(&binding).to_bytes();
    let shared = secret.diffie_hellman(&PublicKey::from(hello.ephemeral));
    let keys = derive(&binding, shared.as_bytes(), node_key)?;
    Ok((auth, keys))
}

fn binding(host: &str, replica_ephemeral: &[u8; EPHEMERAL_LEN], auth: &LinkAuth) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(BINDING_LABEL);
    // Host names are at most 255 bytes (the hello's limit); a longer one is cut, never wraps.
    let host = &host.as_bytes()[..host.len().min(255)];
    hash.update([host.len() as u8]);
    hash.update(host);
    hash.update(replica_ephemeral);
    hash.update(auth.ephemeral);
    hash.update(auth.master_key);
    hash.update(auth.epoch.to_be_bytes());
    hash.finalize().into()
}

fn derive(
    binding: &[u8; 32],
    shared: &[u8; 32],
    node_key: &NodeKey,
) -> Result<SessionKeys, LinkAuthError> {
    // A low-order peer key makes the shared secret all zeros: refuse rather than derive keys
    // an attacker could predict.
    if shared.iter().all(|b| *b == 0) {
        return Err(LinkAuthError::WeakExchange);
    }
    let mut ikm = [0u8; 64];
    ikm[..32].copy_from_slice(shared);
    ikm[32..].copy_from_slice(&node_key.0);
    let keys = SessionKeys::expand(binding, &ikm, C2S_INFO, S2C_INFO);
    ikm.fill(0);
    Ok(keys)
}

#[cfg(test)]
#[path = "link_auth_tests.rs"]
mod tests;
