//! The Gatehouse side of the side-by-side throughput benchmark, with a client as lean as the
//! redis one: each connection is a distinct simulated agent (its own registered host and node
//! key) that runs the real handshake and sends sealed authorize requests (alice may SSH to
//! web1: answered Allow), one in flight, the next as soon as the answer is in — the shared
//! closed-loop client ([`super::closed_loop`]) without the agent engine's probing, balancing
//! and timers. Called by `gatehouse-loadgen direct`.
//!
//! Not pure (it runs the client); the protocol part is the pure `ClientSession`.

use super::closed_loop::{run_closed_loop, LoadProtocol, OnTick, Progress};
use super::mix::Kind;
use super::provision::Identity;
use super::stats::{ErrorKind, Stats};
use super::worker::PREPARED_AGENTS_PER_WORKER;
use gatehouse_common::crypto::{preferred_suites, CipherSuite};
use gatehouse_common::session::{ClientEvent, ClientSession};
use gatehouse_common::wire::frame::{decode_frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use gatehouse_common::wire::{Request, Response, SUPPORTED_VERSIONS};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Sealed authorize requests from many agents.
struct SealedAuthorize<'a> {
    identities: &'a [Identity],
    ciphers: &'a [CipherSuite],
    rng: StdRng,
    /// The request every agent sends (moved into each frame and back: no allocation).
    request: Request,
}

/// One agent's session and its next request id.
struct Agent {
    session: ClientSession,
    next_id: u32,
    /// Keeps its cipher built between frames (the first [`PREPARED_AGENTS_PER_WORKER`], as
    /// in `run`: bounded memory).
    prepare: bool,
}

impl SealedAuthorize<'_> {
    fn send(&mut self, agent: &mut Agent, out: &mut Vec<u8>) -> Result<(), ErrorKind> {
        agent.next_id = agent.next_id.wrapping_add(1);
        agent
            .session
            .write_request_in_place(agent.next_id, &mut self.request, out)
            .map_err(|_| ErrorKind::Protocol)
    }
}

impl LoadProtocol for SealedAuthorize<'_> {
    type Conn = Agent;

    fn open(
        &mut self,
        index: usize,
        _issuing: bool,
        out: &mut Vec<u8>,
    ) -> Result<(Agent, Progress), ErrorKind> {
        let id = self.identities.get(index).ok_or(ErrorKind::Refused)?;
        let session = ClientSession::start(
            &id.host,
            id.key.clone(),
            SUPPORTED_VERSIONS,
            self.ciphers,
            &mut self.rng,
            out,
        )
        .map_err(|_| ErrorKind::Protocol)?;
        // The first request waits for the server's proof (`Established`).
        let agent = Agent {
            session,
            next_id: 0,
            prepare: index < PREPARED_AGENTS_PER_WORKER,
        };
        Ok((agent, Progress::default()))
    }

    fn on_data(
        &mut self,
        agent: &mut Agent,
        inbuf: &mut Vec<u8>,
        issuing: bool,
        out: &mut Vec<u8>,
    ) -> Result<Progress, ErrorKind> {
        let mut progress = Progress::default();
        while let Some((consumed, _)) =
            decode_frame(inbuf, MAX_FRAME_LEN).map_err(|_| ErrorKind::Protocol)?
        {
            let payload = inbuf
                .get_mut(FRAME_HEADER_LEN..consumed)
                .ok_or(ErrorKind::Protocol)?;
            let event = agent.session.handle_frame(payload, out);
            inbuf.drain(..consumed);
            // One request in flight: the first once the server has proven the key, then one
            // per answer.
            match event {
                Ok(ClientEvent::Established { .. }) => {
                    if agent.prepare {
                        agent.session.prepare_cipher();
                    }
                }
                Ok(ClientEvent::Response { body, .. }) => {
                    if matches!(body, Response::Allow { .. }) {
                        progress.expected += 1;
                    } else {
                        progress.unexpected += 1;
                    }
                }
                Ok(ClientEvent::Goodbye(_) | ClientEvent::Replication(_)) | Err(_) => {
                    return Err(ErrorKind::Refused)
                }
            }
            if issuing {
                self.send(agent, out)?;
                progress.sent_request = true;
            }
        }
        Ok(progress)
    }
}

/// Runs the load with one connection per identity (`identities.len()` agents); returns the
/// totals and the time from start to the last answer.
pub fn run_direct(
    addr: SocketAddr,
    identities: &[Identity],
    duration: Duration,
    seed: u64,
    stop: &std::sync::atomic::AtomicBool,
    on_tick: &mut OnTick<'_>,
) -> io::Result<(Stats, Duration)> {
    let mut protocol = SealedAuthorize {
        identities,
        ciphers: preferred_suites(),
        rng: StdRng::seed_from_u64(seed),
        request: Kind::AuthorizeAllow.request(),
    };
    let agents = identities.len();
    run_closed_loop(&mut protocol, addr, agents, duration, stop, on_tick)
}
