//! The CLI's side of the local protocol: one request, one answer, through
//! `gatehouse_local::client` (which checks that the daemon runs as root or as the caller's own
//! uid before sending anything) with room for a status report.

use gatehouse_local::client::Asker;
use gatehouse_local::codec::MAX_STATUS_FRAME;
use std::path::Path;

pub use gatehouse_local::client::ClientError;
use gatehouse_local::{LocalRequest, LocalResponse};

/// How long the CLI waits for the daemon: `gatehouse_local::CALLER_TIMEOUT` (the longest
/// request deadline plus 5 s), so only a wedged daemon runs into it.
pub const CLIENT_TIMEOUT: std::time::Duration = gatehouse_local::CALLER_TIMEOUT;

/// Sends `request` to the daemon at `socket` and returns its answer. The daemon is checked
/// as the modules check it (`gatehouse_local::client`).
pub fn ask(socket: &Path, request: &LocalRequest) -> Result<LocalResponse, ClientError> {
    let mut asker = Asker::new(socket);
    asker.max_answer = MAX_STATUS_FRAME;
    asker.ask(request)
}
