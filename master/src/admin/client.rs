//! The client side of the admin socket: connect, send a request, read its response.
//!
//! Not pure: a Unix socket. Called by `gatehouse-admin` and by tests.

use super::proto::{
    read_message, write_message, AdminRequest, AdminResponse, ProtoError, MAX_RESPONSE_BYTES,
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

impl AdminClient {
    /// Connects to the master's admin socket.
    pub fn connect(path: &Path) -> io::Result<AdminClient> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        Ok(AdminClient { stream })
    }

    /// Sends `request` and waits for the response.
    pub fn request(&mut self, request: &AdminRequest) -> Result<AdminResponse, ProtoError> {
        write_message(&mut self.stream, request)?;
        read_message(&mut self.stream, MAX_RESPONSE_BYTES)?
            .ok_or_else(|| ProtoError::Io(io::ErrorKind::UnexpectedEof.into()))
    }

    /// The raw stream, for tests that send malformed bytes.
    pub fn stream(&mut self) -> &mut UnixStream {
        &mut self.stream
    }
}
