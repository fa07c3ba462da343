//! The server side of one agent connection: handshake, then sealed requests in and responses
//! out. Pure; driven by the bridge's reactor, one instance per connection.
//!
//! States: AwaitHello → (ServerHello sent) AwaitFinish → Established → Closed. Any failure
//! returns a [`SessionFailure`] naming the wire error to send and the reason to log; the caller
//! sends it with [`ServerSession::write_error`] and closes the connection.

use crate::crypto::handshake::{self, SessionKeys, Transcript};
use crate::crypto::seal::{Opener, Sealer};
use crate::nodekeys::{NodeKey, NodeKeyMap};
use crate::types::{ErrorCode, GoodbyeReason};
use crate::wire::frame::MAX_FRAME_LEN;
use crate::wire::msg::{
    ClientHello, Goodbye, Handshake, Request, Response, ServerHello, Session, WireError, NONCE_LEN,
};
use crate::wire::SUPPORTED_VERSIONS;
use rand::RngCore;

/// What a frame from the agent amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerInput {
    /// Handshake progress; nothing for the caller to do (a reply may have been written).
    Progress,
    /// The agent proved its node key; the connection is now sealed.
    Established,
    /// A request to dispatch; answer it with [`ServerSession::write_response`] and its id.
    Request { id: u32, body: Request },
    /// A replication-link message (only a master's replication listener accepts these).
    Replication(Vec<u8>),
}

/// A protocol failure: what to tell the peer and what to log. The connection must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFailure {
    /// The error to send (plaintext or sealed, as the state allows).
    pub error: WireError,
}

impl SessionFailure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        SessionFailure {
            error: WireError {
                code,
                message: message.into(),
                versions: Vec::new(),
                estimate_us: 0,
            },
        }
    }
}

enum State {
    AwaitHello,
    AwaitFinish {
        key: NodeKey,
        transcript: Transcript,
    },
    Established {
        opener: Opener,
        sealer: Sealer,
    },
}

/// One agent connection's protocol state.
pub struct ServerSession {
    state: State,
    host: Option<String>,
    version: u16,
}

impl Default for ServerSession {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerSession {
    /// A connection that has sent nothing yet.
    pub fn new() -> Self {
        ServerSession {
            state: State::AwaitHello,
            host: None,
            version: 0,
        }
    }

    /// The host the agent claims (after its hello) or has proven (once established).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// True once the agent has proven its node key.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established { .. })
    }

    /// The negotiated protocol version (0 before the hello).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Handles one frame payload from the agent. Replies needed by the handshake are appended
    /// to `out`. The payload is decrypted in place.
    pub fn handle_frame(
        &mut self,
        payload: &mut [u8],
        keys: &NodeKeyMap,
        rng: &mut impl RngCore,
        out: &mut Vec<u8>,
    ) -> Result<ServerInput, SessionFailure> {
        match &mut self.state {
            State::AwaitHello => {
                let hello = match Handshake::decode(payload) {
                    Ok(Handshake::ClientHello(hello)) => hello,
                    Ok(_) => return Err(unexpected("expected ClientHello")),
                    Err(e) => return Err(malformed(e)),
                };
                self.host = Some(hello.host.clone());
                let (key, transcript) = self.answer_hello(&hello, payload, keys, rng, out)?;
                self.state = State::AwaitFinish { key, transcript };
                Ok(ServerInput::Progress)
            }
            State::AwaitFinish { key, transcript } => {
                let finish = match Handshake::decode(payload) {
                    Ok(Handshake::ClientFinish(finish)) => finish,
                    Ok(_) => return Err(unexpected("expected ClientFinish")),
                    Err(e) => return Err(malformed(e)),
                };
                if !handshake::verify_client_proof(key, transcript, &finish.proof) {
                    return Err(SessionFailure::new(
                        ErrorCode::AuthFailed,
                        "client proof does not match the host's node key",
                    ));
                }
                let keys = SessionKeys::derive(key, transcript);
                self.state = State::Established {
                    opener: Opener::new(&keys.client_to_server),
                    sealer: Sealer::new(&keys.server_to_client),
                };
                Ok(ServerInput::Established)
            }
            State::Established { opener, .. } => {
                let text = opener
                    .open_in_place(payload)
                    .map_err(|e| SessionFailure::new(ErrorCode::AuthFailed, e.to_string()))?;
                match Session::decode(text) {
                    Ok(Session::Request { id, body }) => Ok(ServerInput::Request { id, body }),
                    Ok(Session::Replication(bytes)) => Ok(ServerInput::Replication(bytes)),
                    Ok(_) => Err(unexpected(
                        "peers may only send requests or replication messages",
                    )),
                    Err(e) => Err(malformed(e)),
                }
            }
        }
    }

    fn answer_hello(
        &mut self,
        hello: &ClientHello,
        hello_bytes: &[u8],
        keys: &NodeKeyMap,
        rng: &mut impl RngCore,
        out: &mut Vec<u8>,
    ) -> Result<(NodeKey, Transcript), SessionFailure> {
        let Some(version) = SUPPORTED_VERSIONS
            .iter()
            .copied()
            .find(|v| hello.versions.contains(v))
        else {
            let mut failure = SessionFailure::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "no common protocol version: agent offers {:?}, server speaks {:?}",
                    hello.versions, SUPPORTED_VERSIONS
                ),
            );
            failure.error.versions = SUPPORTED_VERSIONS.to_vec();
            return Err(failure);
        };
        let key = keys
            .get(&hello.host)
            .cloned()
            .ok_or_else(|| SessionFailure::new(ErrorCode::UnknownHost, "host is not registered"))?;
        self.version = version;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let transcript = Transcript::new(hello_bytes, version, &nonce);
        let proof = handshake::server_proof(&key, &transcript);
        super::write_handshake(
            &Handshake::ServerHello(ServerHello {
                version,
                nonce,
                proof,
            }),
            out,
        );
        Ok((key, transcript))
    }

    /// Appends a sealed response. Fails only if the connection is not established or the
    /// response would exceed the frame cap; the caller then closes the connection.
    pub fn write_response(
        &mut self,
        id: u32,
        body: Response,
        out: &mut Vec<u8>,
    ) -> Result<(), SessionFailure> {
        self.write_sealed(&Session::Response { id, body }, out)
    }

    /// Appends a sealed replication-link message.
    pub fn write_replication(
        &mut self,
        bytes: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), SessionFailure> {
        self.write_sealed(&Session::Replication(bytes), out)
    }

    /// Appends a sealed goodbye (only once established; before that there is nothing to say).
    pub fn write_goodbye(&mut self, reason: GoodbyeReason, out: &mut Vec<u8>) {
        if self.is_established() {
            let _ = self.write_sealed(&Session::Goodbye(Goodbye { reason }), out);
        }
    }

    /// Appends an error: sealed once established, plaintext before.
    pub fn write_error(&mut self, error: &WireError, out: &mut Vec<u8>) {
        if self.is_established() {
            let _ = self.write_sealed(&Session::Error(error.clone()), out);
        } else {
            super::write_handshake(&Handshake::Error(error.clone()), out);
        }
    }

    fn write_sealed(&mut self, msg: &Session, out: &mut Vec<u8>) -> Result<(), SessionFailure> {
        let State::Established { sealer, .. } = &mut self.state else {
            return Err(unexpected("connection not established"));
        };
        sealer
            .seal_frame(MAX_FRAME_LEN, out, |o| msg.encode(o))
            .map_err(|e| SessionFailure::new(ErrorCode::Internal, e.to_string()))
    }
}

fn unexpected(what: &str) -> SessionFailure {
    SessionFailure::new(ErrorCode::UnexpectedMessage, what)
}

fn malformed(e: impl std::fmt::Display) -> SessionFailure {
    SessionFailure::new(ErrorCode::Malformed, e.to_string())
}
