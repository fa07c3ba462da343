//! The caller side of the local protocol: connect to the daemon's socket, check that the
//! daemon runs as root or as the caller's own uid, send one request, read one answer.
//! Blocking I/O with timeouts (a CLI call is one short exchange); used by `local::cli`.

use super::frame::{self, FrameError, LEN_PREFIX, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use super::{LocalRequest, LocalResponse};
use crate::budget::MAX_REQUEST_DEADLINE;
use gatehouse_common::os::peer::{
    check_server_peer, check_socket_owner, AllowedUids, UntrustedServer,
};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// How long the CLI waits for the daemon's answer: the longest request deadline the config
/// allows (60 s) plus 5 s. Why: the daemon always answers within the request's deadline, so
/// only a wedged daemon runs into this, and the CLI must not hang forever on one.
pub const CLIENT_TIMEOUT: Duration = MAX_REQUEST_DEADLINE.saturating_add(Duration::from_secs(5));

/// Why the exchange with the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the agent daemon at {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Untrusted(#[from] UntrustedServer),
    #[error("talking to the agent daemon: {0}")]
    Io(#[from] io::Error),
    #[error("the agent daemon closed the connection without answering")]
    Closed,
    #[error("request: {0}")]
    Request(FrameError),
    #[error("bad answer from the agent daemon: {0}")]
    Response(FrameError),
}

/// Sends `request` to the daemon at `socket` and returns its answer.
pub fn ask(socket: &Path, request: &LocalRequest) -> Result<LocalResponse, ClientError> {
    let bytes =
        Zeroizing::new(frame::encode(request, MAX_REQUEST_FRAME).map_err(ClientError::Request)?);
    // Nothing, a password least of all, goes to a listener that another user put there.
    let expected = AllowedUids::for_this_process(&[]);
    check_socket_owner(socket, &expected)?;
    let mut stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    check_server_peer(&stream, socket, &expected)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    stream.write_all(&bytes)?;
    read_response(&mut stream)
}

/// Reads one response frame.
pub fn read_response(stream: &mut impl Read) -> Result<LocalResponse, ClientError> {
    let mut prefix = [0u8; LEN_PREFIX];
    read_exact(stream, &mut prefix)?;
    let len = frame::declared_len(prefix, MAX_RESPONSE_FRAME).map_err(ClientError::Response)?;
    let mut body = vec![0u8; len];
    read_exact(stream, &mut body)?;
    frame::decode_body(&body).map_err(ClientError::Response)
}

fn read_exact(stream: &mut impl Read, buf: &mut [u8]) -> Result<(), ClientError> {
    stream.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ClientError::Closed,
        _ => ClientError::Io(e),
    })
}
