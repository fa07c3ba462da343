//! The agent side of one connection: hello, verify the server's proof, finish, then sealed
//! requests out and responses in. Pure; driven by the agent's event loop and by test clients.

use crate::crypto::handshake::{self, SessionKeys, Transcript};
use crate::crypto::seal::{prepare_both, Opener, SealError, Sealer};
use crate::crypto::suite::CipherSuite;
use crate::nodekeys::NodeKey;
use crate::types::GoodbyeReason;
use crate::wire::frame::MAX_FRAME_LEN;
use crate::wire::msg::{
    ClientFinish, ClientHello, Handshake, Request, Response, Session, WireError, NONCE_LEN,
};
use crate::wire::reader::DecodeError;
use rand::RngCore;

/// What a frame from the server amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server proved the node key; requests may be sent (ClientFinish was written).
    Established { version: u16, cipher: CipherSuite },
    /// The answer to request `id`.
    Response { id: u32, body: Response },
    /// The server is closing: idle, reconnect (re-probe) or shutting down.
    Goodbye(GoodbyeReason),
    /// A replication-link message (only on a replica's link to its master).
    Replication(Vec<u8>),
}

/// Why the connection cannot go on. After any of these the agent closes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server sent an error (plaintext during the handshake, sealed after).
    #[error("server error {:?}: {}", .0.code, .0.message)]
    Server(WireError),
    /// The server's frame did not decode.
    #[error("malformed frame from server: {0}")]
    Malformed(#[from] DecodeError),
    /// The server's proof did not match our node key: not a genuine server.
    #[error("server failed to prove the node key")]
    BadServerProof,
    /// A sealed frame failed to open.
    #[error("{0}")]
    Sealed(#[from] SealError),
    /// The server chose a version we did not offer.
    #[error("server chose version {0}, which we did not offer")]
    VersionNotOffered(u16),
    /// The server chose a cipher suite we did not offer.
    #[error("server chose cipher suite {}, which we did not offer", .0.name())]
    CipherNotOffered(CipherSuite),
    /// A message that has no place in the current state.
    #[error("unexpected message from server: {0}")]
    Unexpected(&'static str),
    /// A request was written before the handshake finished.
    #[error("connection not established")]
    NotEstablished,
    /// Our own message could not be encoded (a host or field over its wire limit).
    #[error("cannot encode: {0}")]
    Encode(#[from] crate::wire::writer::EncodeError),
}

enum State {
    AwaitServerHello {
        hello: Vec<u8>,
        versions: Vec<u16>,
        ciphers: Vec<CipherSuite>,
    },
    Established {
        sealer: Sealer,
        opener: Opener,
        /// A sealed frame has opened: the server has our finish, so from now on only sealed
        /// frames are believed (a plaintext error could be forged by anyone on the path).
        sealed_seen: bool,
    },
}

/// One connection's protocol state, agent side.
pub struct ClientSession {
    state: State,
    key: NodeKey,
}

impl ClientSession {
    /// Starts a handshake as `host`, offering `versions` and `ciphers` (most preferred first;
    /// production callers pass `crypto::suite::preferred_suites()`), and appends the
    /// ClientHello frame to `out`. Fails for a host name the wire cannot carry (empty or over
    /// 255 bytes) or a version or cipher list that is empty or too long.
    pub fn start(
        host: &str,
        key: NodeKey,
        versions: &[u16],
        ciphers: &[CipherSuite],
        rng: &mut impl RngCore,
        out: &mut Vec<u8>,
    ) -> Result<Self, ClientError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let msg = Handshake::ClientHello(ClientHello {
            versions: versions.to_vec(),
            host: host.to_string(),
            nonce,
            ciphers: ciphers.to_vec(),
        });
        let mut hello = Vec::with_capacity(64 + host.len());
        msg.encode(&mut hello)?;
        super::write_handshake(&msg, out);
        Ok(ClientSession {
            state: State::AwaitServerHello {
                hello,
                versions: versions.to_vec(),
                ciphers: ciphers.to_vec(),
            },
            key,
        })
    }

    /// True once the server has proven the node key.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established { .. })
    }

    /// The cipher suite sealing the connection, once established.
    pub fn cipher(&self) -> Option<CipherSuite> {
        match &self.state {
            State::Established { sealer, .. } => Some(sealer.suite()),
            State::AwaitServerHello { .. } => None,
        }
    }

    /// Keeps the negotiated cipher built between frames, once established (AES-256-GCM only:
    /// about 2 KiB for both directions, ~0.3 µs less CPU per request). True if that added
    /// memory; a process with many sessions bounds how many it prepares.
    pub fn prepare_cipher(&mut self) -> bool {
        match &mut self.state {
            State::Established { sealer, opener, .. } => prepare_both(sealer, opener),
            State::AwaitServerHello { .. } => false,
        }
    }

    /// Handles one frame payload from the server (decrypted in place once sealed).
    pub fn handle_frame(
        &mut self,
        payload: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<ClientEvent, ClientError> {
        match &mut self.state {
            State::AwaitServerHello {
                hello,
                versions,
                ciphers,
            } => {
                let server = match Handshake::decode(payload)? {
                    Handshake::ServerHello(server) => server,
                    Handshake::Error(e) => return Err(ClientError::Server(e)),
                    _ => return Err(ClientError::Unexpected("expected ServerHello")),
                };
                if !versions.contains(&server.version) {
                    return Err(ClientError::VersionNotOffered(server.version));
                }
                if !ciphers.contains(&server.cipher) {
                    return Err(ClientError::CipherNotOffered(server.cipher));
                }
                // The choice is in the transcript: a cipher changed in transit (say, a
                // downgrade to the other suite we offered) makes the server's proof fail here.
                let transcript =
                    Transcript::new(hello, server.version, server.cipher, &server.nonce);
                let proof = handshake::client_proof(&self.key, &transcript);
                super::write_handshake(&Handshake::ClientFinish(ClientFinish { proof }), out);
                if !handshake::verify_server_proof(&self.key, &transcript, &server.proof) {
                    // Our proof is written all the same (the caller may send it before it
                    // closes): a genuine server with another key for this host then logs the
                    // host that failed its proof, where a silent close would leave it nothing
                    // to log. It gives an impostor nothing: a MAC under a 256-bit key over
                    // its own nonce, under a label no server proof uses.
                    return Err(ClientError::BadServerProof);
                }
                let keys = SessionKeys::derive(&self.key, &transcript);
                self.state = State::Established {
                    sealer: Sealer::new(server.cipher, &keys.client_to_server),
                    opener: Opener::new(server.cipher, &keys.server_to_client),
                    sealed_seen: false,
                };
                Ok(ClientEvent::Established {
                    version: server.version,
                    cipher: server.cipher,
                })
            }
            State::Established {
                opener,
                sealed_seen,
                ..
            } => {
                // Until the server has processed our finish it may still answer in plaintext
                // (for example "auth failed"), but only until its first sealed frame.
                // Both suites check the tag before they decrypt, so a frame that fails to open
                // is left untouched and can be read as a plaintext handshake error.
                let plaintext_allowed = !*sealed_seen;
                match opener.open_in_place(payload) {
                    Ok(text) => match Session::decode(text).inspect(|_| *sealed_seen = true)? {
                        Session::Response { id, body } => Ok(ClientEvent::Response { id, body }),
                        Session::Goodbye(g) => Ok(ClientEvent::Goodbye(g.reason)),
                        Session::Replication(bytes) => Ok(ClientEvent::Replication(bytes)),
                        Session::Error(e) => Err(ClientError::Server(e)),
                        Session::Request { .. } => {
                            Err(ClientError::Unexpected("servers do not send requests"))
                        }
                    },
                    Err(sealed) => match Handshake::decode(payload) {
                        Ok(Handshake::Error(e)) if plaintext_allowed => Err(ClientError::Server(e)),
                        _ => Err(sealed.into()),
                    },
                }
            }
        }
    }

    /// Switches both directions to new keys, counters from 0 (a replication link moving to
    /// the keys of its signed exchange, `repl::link_auth`). From then on only sealed frames
    /// are believed. Fails before the handshake has finished.
    pub fn rekey(&mut self, keys: &SessionKeys) -> Result<(), ClientError> {
        let State::Established { sealer, .. } = &self.state else {
            return Err(ClientError::NotEstablished);
        };
        let suite = sealer.suite();
        self.state = State::Established {
            sealer: Sealer::new(suite, &keys.client_to_server),
            opener: Opener::new(suite, &keys.server_to_client),
            sealed_seen: true,
        };
        Ok(())
    }

    /// Appends a sealed replication-link message.
    pub fn write_replication(
        &mut self,
        bytes: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), ClientError> {
        self.write_sealed(&Session::Replication(bytes), out)
    }

    fn write_sealed(&mut self, msg: &Session, out: &mut Vec<u8>) -> Result<(), ClientError> {
        let State::Established { sealer, .. } = &mut self.state else {
            return Err(ClientError::NotEstablished);
        };
        sealer.seal_frame(MAX_FRAME_LEN, out, |o| msg.encode(o))?;
        Ok(())
    }

    /// Appends a sealed request frame. The request is encoded where it is: an agent keeps
    /// it to retry elsewhere, and a copy per send would cost four allocations on its hot path.
    pub fn write_request(
        &mut self,
        id: u32,
        body: &Request,
        out: &mut Vec<u8>,
    ) -> Result<(), ClientError> {
        let State::Established { sealer, .. } = &mut self.state else {
            return Err(ClientError::NotEstablished);
        };
        sealer.seal_frame(MAX_FRAME_LEN, out, |o| Session::encode_request(id, body, o))?;
        Ok(())
    }
}
