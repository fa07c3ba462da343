//! The caller side of the local protocol: connect to the agent's socket, check who answers,
//! send one request, read one answer. Blocking, for the CLI and the PAM and NSS modules.
//!
//! Not pure (a socket). Safe to run inside any program a module is loaded into: the socket is
//! close-on-exec, every write uses `MSG_NOSIGNAL` (a C program has not ignored SIGPIPE, and an
//! agent that goes away must not kill it), and every step — connect included — is bounded by
//! the timeout.

use super::codec::{self, CodecError, LEN_PREFIX};
use super::peer::{check_agent, peer_cred};
use super::{LocalRequest, LocalResponse};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::os::fd::AsRawFd;
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
    /// Check the agent's uid against the socket's owner before sending (modules do; see
    /// `peer::check_agent`).
    pub check_agent: bool,
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
    Untrusted(String),
    #[error("request: {0}")]
    Request(CodecError),
    #[error("bad answer from the agent daemon: {0}")]
    Response(CodecError),
}

impl Asker {
    /// Asks with the defaults: [`crate::CALLER_TIMEOUT`], answers up to
    /// [`codec::MAX_ANSWER_FRAME`], the agent checked.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Asker {
            socket: socket.into(),
            timeout: crate::CALLER_TIMEOUT,
            max_answer: codec::MAX_ANSWER_FRAME,
            check_agent: true,
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
        codec::decode_response(&body).map_err(ClientError::Response)
    }

    fn connect(&self) -> Result<Socket, ClientError> {
        let connect_error = |source| ClientError::Connect {
            path: self.socket.clone(),
            source,
        };
        let address = SockAddr::unix(&self.socket).map_err(connect_error)?;
        // socket2 sets close-on-exec on every socket it creates.
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(connect_error)?;
        socket.set_read_timeout(Some(self.timeout))?;
        // On a Unix socket the send timeout also bounds a connect to a full accept queue.
        socket.set_write_timeout(Some(self.timeout))?;
        socket.connect(&address).map_err(connect_error)?;
        if self.check_agent {
            let peer = peer_cred(socket.as_raw_fd())?;
            check_agent(&self.socket, peer.uid).map_err(ClientError::Untrusted)?;
        }
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
