//! The caller side of the local protocol: connect to the agent's socket, check who answers,
//! send one request, read one answer. Blocking, for the CLI and the PAM and NSS modules.
//!
//! Who answers is checked with `gatehouse_common::os::peer`, the same rule gatehouse-admin
//! applies to the master: the socket file must belong to root or to the caller's own uid
//! before anything is sent, and the process listening on it (the kernel's record, which its
//! owner cannot fake) must run as one of them too. So a local user cannot put a listener of
//! their own in the agent's place and collect passwords or answer logins.
//!
//! Not pure (a socket). Safe to run inside any program a module is loaded into: the socket is
//! close-on-exec, every write uses `MSG_NOSIGNAL` (a C program has not ignored SIGPIPE, and an
//! agent that goes away must not kill it), and every step — connect included — is bounded by
//! the timeout.

use super::codec::{self, CodecError, LEN_PREFIX};
use super::{LocalRequest, LocalResponse};
use gatehouse_common::os::peer::{
    check_server_peer, check_socket_owner, AllowedUids, UntrustedServer,
};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to ask.
#[derive(Debug, Clone)]
pub struct Asker {
    /// The agent's socket.
    pub socket: PathBuf,
    /// Bound on each step (connect, each write, each read). Must be longer than the agent's
    /// request deadline: [`crate::CALLER_TIMEOUT`] by default.
    pub timeout: Duration,
    /// Largest answer body accepted ([`codec::MAX_ANSWER_FRAME`], or
    /// [`codec::MAX_STATUS_FRAME`] for a status).
    pub max_answer: usize,
    /// The uids the agent may run as: root and the caller's own uid
    /// ([`AllowedUids::for_this_process`]). Checked against the socket file's owner before
    /// connecting and against the listener's credentials before sending.
    pub agent_uids: AllowedUids,
}

/// Why the exchange with the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the agent daemon at {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("talking to the agent daemon: {0}")]
    Io(#[from] io::Error),
    #[error("the agent daemon closed the connection without answering")]
    Closed,
    #[error("not trusting the agent daemon: {0}")]
    Untrusted(#[from] UntrustedServer),
    #[error("request: {0}")]
    Request(CodecError),
    #[error("bad answer from the agent daemon: {0}")]
    Response(CodecError),
}

impl Asker {
    /// Asks with the defaults: [`crate::CALLER_TIMEOUT`], answers up to
    /// [`codec::MAX_ANSWER_FRAME`], an agent running as root or as this process's uid.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Asker {
            socket: socket.into(),
            timeout: crate::CALLER_TIMEOUT,
            max_answer: codec::MAX_ANSWER_FRAME,
            agent_uids: AllowedUids::for_this_process(&[]),
        }
    }

    /// Sends `request` and returns the answer.
    pub fn ask(&self, request: &LocalRequest) -> Result<LocalResponse, ClientError> {
        let frame = codec::encode_request(request).map_err(ClientError::Request)?;
        let socket = self.connect()?;
        send_all(&socket, &frame)?;
        let mut prefix = [0u8; LEN_PREFIX];
        recv_exact(&socket, &mut prefix)?;
        let len = codec::declared_len(prefix, self.max_answer).map_err(ClientError::Response)?;
        let mut body = vec![0u8; len];
        recv_exact(&socket, &mut body)?;
        // Answers carry no password; the request frame is wiped when dropped.
        codec::decode_response(&body).map_err(ClientError::Response)
    }

    fn connect(&self) -> Result<Socket, ClientError> {
        let connect_error = |source| ClientError::Connect {
            path: self.socket.clone(),
            source,
        };
        // Nothing, a password least of all, goes to a socket another user put there.
        check_socket_owner(&self.socket, &self.agent_uids)?;
        let address = SockAddr::unix(&self.socket).map_err(connect_error)?;
        // socket2 sets close-on-exec on every socket it creates.
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(connect_error)?;
        socket.set_read_timeout(Some(self.timeout))?;
        // On a Unix socket the send timeout also bounds a connect to a full accept queue.
        socket.set_write_timeout(Some(self.timeout))?;
        socket.connect(&address).map_err(connect_error)?;
        check_server_peer(&socket, &self.socket, &self.agent_uids)?;
        Ok(socket)
    }
}

/// Asks the agent at `socket` with [`Asker::new`]'s defaults.
pub fn ask(socket: &Path, request: &LocalRequest) -> Result<LocalResponse, ClientError> {
    Asker::new(socket).ask(request)
}

fn send_all(socket: &Socket, mut bytes: &[u8]) -> Result<(), ClientError> {
    while !bytes.is_empty() {
        match socket.send_with_flags(bytes, libc::MSG_NOSIGNAL) {
            Ok(0) => return Err(ClientError::Closed),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(ClientError::Closed),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn recv_exact(socket: &Socket, buf: &mut [u8]) -> Result<(), ClientError> {
    let mut read = 0;
    while read < buf.len() {
        let rest = buf.get_mut(read..).unwrap_or_default();
        match io::Read::read(&mut &*socket, rest) {
            Ok(0) => return Err(ClientError::Closed),
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
