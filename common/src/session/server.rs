//! The server side of one agent connection: handshake, then sealed requests in and responses
//! out. Pure; driven by the bridge's reactor, one instance per connection.
//!
//! States: AwaitHello → (ServerHello sent) AwaitFinish → Established → Closed. Any failure
//! returns a [`SessionFailure`] naming the wire error to send and the reason to log; the caller
//! sends it with [`ServerSession::write_error`] and closes the connection.

use crate::crypto::handshake::{self, SessionKeys, Transcript};
use crate::crypto::seal::{prepare_both, Opener, Sealer};
use crate::crypto::suite::{self, CipherSuite};
use crate::nodekeys::{NodeKey, NodeKeyMap};
use crate::types::{ErrorCode, GoodbyeReason};
use crate::wire::frame::MAX_FRAME_LEN;
use crate::wire::msg::{
    ClientHello, Goodbye, Handshake, RequestView, Response, ServerHello, Session, SessionView,
    WireError, NONCE_LEN,
};
use crate::wire::SUPPORTED_VERSIONS;
use rand::RngCore;

/// What a frame from the agent amounted to. A request borrows its strings from the frame
/// (`'p`): answer it, or copy it with [`RequestView::into_owned`] to keep it.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerInput<'p> {
    /// Handshake progress; nothing for the caller to do (a reply may have been written).
    Progress,
    /// The agent proved its node key; the connection is now sealed.
    Established,
    /// A request to dispatch; answer it with [`ServerSession::write_response`] and its id.
    Request { id: u32, body: RequestView<'p> },
    /// A replication-link message (only a master's replication listener accepts these).
    Replication(Vec<u8>),
}

impl ServerInput<'_> {
    /// The input with nothing borrowed from the frame, for a caller that takes no requests
    /// (a master's replication link); `None` for a request.
    pub fn unless_request(self) -> Option<ServerInput<'static>> {
        match self {
            ServerInput::Progress => Some(ServerInput::Progress),
            ServerInput::Established => Some(ServerInput::Established),
            ServerInput::Replication(bytes) => Some(ServerInput::Replication(bytes)),
            ServerInput::Request { .. } => None,
        }
    }
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
        cipher: CipherSuite,
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
    /// May this server choose AES-256-GCM (it runs AES in hardware)?
    aes_allowed: bool,
}

impl ServerSession {
    /// A connection that has sent nothing yet. `aes_allowed`: whether this server may choose
    /// AES-256-GCM, i.e. runs it in hardware (production callers pass
    /// `crypto::suite::aes_hardware()`); see `crypto::suite::choose` for the rule.
    pub fn new(aes_allowed: bool) -> Self {
        ServerSession {
            state: State::AwaitHello,
            host: None,
            version: 0,
            aes_allowed,
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

    /// The chosen cipher suite (`None` before the hello has been answered).
    pub fn cipher(&self) -> Option<CipherSuite> {
        match &self.state {
            State::AwaitHello => None,
            State::AwaitFinish { cipher, .. } => Some(*cipher),
            State::Established { sealer, .. } => Some(sealer.suite()),
        }
    }

    /// Keeps the negotiated cipher built between frames, once established (AES-256-GCM only:
    /// about 2 KiB for both directions, ~0.3 µs less CPU per request). True if that added
    /// memory; the caller bounds how many sessions it prepares.
    pub fn prepare_cipher(&mut self) -> bool {
        match &mut self.state {
            State::Established { opener, sealer } => prepare_both(sealer, opener),
            _ => false,
        }
    }

    /// Handles one frame payload from the agent. Replies needed by the handshake are appended
    /// to `out`. The payload is decrypted in place.
    pub fn handle_frame<'p>(
        &mut self,
        payload: &'p mut [u8],
        keys: &NodeKeyMap,
        rng: &mut impl RngCore,
        out: &mut Vec<u8>,
    ) -> Result<ServerInput<'p>, SessionFailure> {
        match &mut self.state {
            State::AwaitHello => {
                let hello = match Handshake::decode(payload) {
                    Ok(Handshake::ClientHello(hello)) => hello,
                    Ok(_) => return Err(unexpected("expected ClientHello")),
                    Err(e) => return Err(malformed(e)),
                };
                self.host = Some(hello.host.clone());
                let (key, transcript, cipher) =
                    self.answer_hello(&hello, payload, keys, rng, out)?;
                self.state = State::AwaitFinish {
                    key,
                    transcript,
                    cipher,
                };
                Ok(ServerInput::Progress)
            }
            State::AwaitFinish {
                key,
                transcript,
                cipher,
            } => {
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
                    opener: Opener::new(*cipher, &keys.client_to_server),
                    sealer: Sealer::new(*cipher, &keys.server_to_client),
                };
                Ok(ServerInput::Established)
            }
            State::Established { opener, .. } => {
                let text = opener
                    .open_in_place(payload)
                    .map_err(|e| SessionFailure::new(ErrorCode::AuthFailed, e.to_string()))?;
                match Session::decode_view(text) {
                    Ok(SessionView::Request { id, body }) => Ok(ServerInput::Request { id, body }),
                    Ok(SessionView::Other(Session::Replication(bytes))) => {
                        Ok(ServerInput::Replication(bytes))
                    }
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
    ) -> Result<(NodeKey, Transcript, CipherSuite), SessionFailure> {
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
        let Some(cipher) = suite::choose(&hello.ciphers, self.aes_allowed) else {
            let accepted = suite::suites_for(self.aes_allowed);
            let names =
                |list: &[CipherSuite]| list.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ");
            return Err(SessionFailure::new(
                ErrorCode::UnsupportedCipher,
                format!(
                    "no cipher suite in common: agent offers [{}] (unknown codes skipped), \
                     server accepts [{}]",
                    names(&hello.ciphers),
                    names(accepted)
                ),
            ));
        };
        let key = keys
            .get(&hello.host)
            .cloned()
            .ok_or_else(|| SessionFailure::new(ErrorCode::UnknownHost, "host is not registered"))?;
        self.version = version;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let transcript = Transcript::new(hello_bytes, version, cipher, &nonce);
        let proof = handshake::server_proof(&key, &transcript);
        super::write_handshake(
            &Handshake::ServerHello(ServerHello {
                version,
                nonce,
                proof,
                cipher,
            }),
            out,
        );
        Ok((key, transcript, cipher))
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

    /// Switches both directions to new keys, counters from 0 (a replication link moving to
    /// the keys of its signed exchange, `repl::link_auth`). Fails before the handshake has
    /// finished.
    pub fn rekey(&mut self, keys: &SessionKeys) -> Result<(), SessionFailure> {
        let State::Established { sealer, .. } = &self.state else {
            return Err(unexpected("connection not established"));
        };
        let suite = sealer.suite();
        self.state = State::Established {
            opener: Opener::new(suite, &keys.client_to_server),
            sealer: Sealer::new(suite, &keys.server_to_client),
        };
        Ok(())
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
