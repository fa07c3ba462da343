//! The client side of the admin socket: connect, check that the master is who it should be,
//! send a request, read its response.
//!
//! Not pure: a Unix socket. Called by `gatehouse-admin` and by tests. Before anything is sent
//! (a password above all), the socket file must be owned by, and the listening process run
//! as, root, the caller's own uid or a uid the caller names (`--master-uid`): a fake listener
//! another local user put at the path learns nothing.

use super::proto::{
    read_message, write_message, AdminRequest, AdminResponse, ProtoError, MAX_RESPONSE_BYTES,
};
use gatehouse_common::os::peer::{
    check_server_peer, check_socket_owner, AllowedUids, UntrustedServer,
};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long the client waits for a response: 120 s. Most answer in milliseconds; an import
/// of a large database or a password hash under load can take seconds.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// One admin connection.
pub struct AdminClient {
    stream: UnixStream,
}

/// Why no admin connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Untrusted(#[from] UntrustedServer),
}

impl AdminClient {
    /// Connects to the master's admin socket, trusting a master that runs as root or as this
    /// process's user.
    pub fn connect(path: &Path) -> Result<AdminClient, ConnectError> {
        Self::connect_expecting(path, &AllowedUids::for_this_process(&[]))
    }

    /// Connects to the master's admin socket, trusting a master that runs as one of
    /// `expected` (checked on the socket file before connecting, and on the listener's
    /// credentials after).
    pub fn connect_expecting(
        path: &Path,
        expected: &AllowedUids,
    ) -> Result<AdminClient, ConnectError> {
        check_socket_owner(path, expected)?;
        let stream = UnixStream::connect(path)?;
        check_server_peer(&stream, path, expected)?;
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        Ok(AdminClient { stream })
    }

    /// Sends `request` and waits for the response.
    pub fn request(&mut self, request: &AdminRequest) -> Result<AdminResponse, ProtoError> {
        let sent = write_message(&mut self.stream, request);
        // A master that refuses the caller's uid answers at once and closes without reading,
        // so the write may fail with the answer already waiting: read it before giving up.
        match read_message(&mut self.stream, MAX_RESPONSE_BYTES) {
            Ok(Some(response)) => Ok(response),
            Ok(None) => {
                sent?;
                Err(ProtoError::Io(io::ErrorKind::UnexpectedEof.into()))
            }
            Err(e) => {
                sent?;
                Err(e)
            }
        }
    }

    /// The raw stream, for tests that send malformed bytes.
    pub fn stream(&mut self) -> &mut UnixStream {
        &mut self.stream
    }
}
