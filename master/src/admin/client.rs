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

/// How long the client waits for the master's next word: 120 s. Most requests are answered in
/// milliseconds; a long one (an import, a batch) sends progress at least every
/// `PROGRESS_INTERVAL` while it works, so this bounds silence, not the work: an import of a
/// million users that takes minutes never hits it, a hung master does.
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

    /// Sends `request` and waits for the response (progress news is skipped).
    pub fn request(&mut self, request: &AdminRequest) -> Result<AdminResponse, ProtoError> {
        self.request_with_progress(request, &mut |_| {})
    }

    /// Sends `request` and waits for the response, handing each `Progress` message the
    /// master sends first to `progress`.
    pub fn request_with_progress(
        &mut self,
        request: &AdminRequest,
        progress: &mut dyn FnMut(&AdminResponse),
    ) -> Result<AdminResponse, ProtoError> {
        let sent = write_message(&mut self.stream, request);
        // A master that refuses the caller's uid answers at once and closes without reading,
        // so the write may fail with the answer already waiting: read it before giving up.
        loop {
            match read_message(&mut self.stream, MAX_RESPONSE_BYTES) {
                Ok(Some(news @ AdminResponse::Progress { .. })) => progress(&news),
                Ok(Some(response)) => return Ok(response),
                Ok(None) => {
                    sent?;
                    return Err(ProtoError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Err(e) => {
                    sent?;
                    return Err(e);
                }
            }
        }
    }

    /// The raw stream, for tests that send malformed bytes.
    pub fn stream(&mut self) -> &mut UnixStream {
        &mut self.stream
    }
}
