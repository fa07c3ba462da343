//! The Gatehouse side of the side-by-side throughput benchmark, with a client as lean as the
//! redis one: each connection is a distinct simulated agent (its own registered host and node
//! key) that runs the real handshake and sends sealed authorize requests (alice may SSH to the
//! agent's own host: answered Allow), one in flight, the next as soon as the answer is in — the shared
//! closed-loop client ([`super::closed_loop`]) without the agent engine's probing, balancing
//! and timers. Called by `gatehouse-loadgen direct`.
//!
//! Not pure (it runs the client); the protocol part is the pure `ClientSession`.

use super::closed_loop::{run_closed_loop, LoadProtocol, OnTick, Progress};
use super::mix::Kind;
use super::provision::Identity;
use super::stats::{ErrorKind, Stats};
use super::worker::keeps_cipher_built;
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
}

/// One agent's session and its next request id.
struct Agent {
    session: ClientSession,
    next_id: u32,
    /// Keeps its cipher built between frames (bounded as in `run`: [`keeps_cipher_built`]).
    prepare: bool,
    /// The request this agent sends, about its own host (sealed from a reference: no
    /// allocation per request).
    request: Request,
}

impl SealedAuthorize<'_> {
    fn send(&mut self, agent: &mut Agent, out: &mut Vec<u8>) -> Result<(), ErrorKind> {
        agent.next_id = agent.next_id.wrapping_add(1);
        agent
            .session
            .write_request(agent.next_id, &agent.request, out)
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
            prepare: keeps_cipher_built(index),
            request: Kind::AuthorizeAllow.request(&id.host),
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
                // The server ends the connection (a goodbye: idle, age, shutting down; or an
                // error): answers already counted stand, and the connection is not reopened
                // (keep runs shorter than the replica's connection age, 54 s at the least).
                Ok(ClientEvent::Goodbye(_) | ClientEvent::Replication(_)) | Err(_) => {
                    progress.end = Some(ErrorKind::Refused);
                    return Ok(progress);
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
    };
    let agents = identities.len();
    run_closed_loop(&mut protocol, addr, agents, duration, stop, on_tick)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::nodekeys::{NodeKey, NodeKeyMap};
    use gatehouse_common::session::{ServerInput, ServerSession};
    use gatehouse_common::types::GoodbyeReason;

    /// A server session on the other end of one simulated agent, in memory.
    struct Server {
        session: ServerSession,
        keys: NodeKeyMap,
        rng: StdRng,
    }

    impl Server {
        /// Feeds whole frames from the agent; returns the request ids received and appends
        /// the server's handshake replies to `back`.
        fn take(&mut self, mut bytes: &[u8], back: &mut Vec<u8>) -> Vec<u32> {
            let mut ids = Vec::new();
            while let Some((n, _)) = decode_frame(bytes, MAX_FRAME_LEN).unwrap() {
                let mut payload = bytes[FRAME_HEADER_LEN..n].to_vec();
                let input =
                    self.session
                        .handle_frame(&mut payload, &self.keys, &mut self.rng, back);
                if let ServerInput::Request { id, .. } = input.unwrap() {
                    ids.push(id);
                }
                bytes = &bytes[n..];
            }
            ids
        }
    }

    /// An agent connected and established against an in-memory server, its first request
    /// already sent (id 1).
    fn established(identities: &[Identity]) -> (SealedAuthorize<'_>, Agent, Server) {
        let mut protocol = SealedAuthorize {
            identities,
            ciphers: preferred_suites(),
            rng: StdRng::seed_from_u64(1),
        };
        let mut server = Server {
            session: ServerSession::new(gatehouse_common::crypto::aes_hardware()),
            keys: identities
                .iter()
                .map(|i| (i.host.clone(), i.key.clone()))
                .collect(),
            rng: StdRng::seed_from_u64(2),
        };
        let mut hello = Vec::new();
        let (mut agent, progress) = protocol.open(0, true, &mut hello).unwrap();
        assert!(
            !progress.sent_request,
            "no request before the server's proof"
        );
        let mut reply = Vec::new();
        assert!(server.take(&hello, &mut reply).is_empty());
        let mut out = Vec::new();
        let p = protocol
            .on_data(&mut agent, &mut reply, true, &mut out)
            .unwrap();
        assert!(p.sent_request && p.end.is_none());
        assert_eq!(
            server.take(&out, &mut Vec::new()),
            vec![1],
            "finish, then request 1"
        );
        (protocol, agent, server)
    }

    fn allow() -> Response {
        Response::Allow {
            route: "SSH:*->alice@web*".into(),
        }
    }

    fn identity() -> Vec<Identity> {
        vec![Identity {
            host: "agent00000".into(),
            key: NodeKey([5; 32]),
        }]
    }

    #[test]
    fn an_answer_split_across_reads_is_counted_once_and_the_next_request_follows() {
        let ids = identity();
        let (mut protocol, mut agent, mut server) = established(&ids);
        let mut answer = Vec::new();
        server
            .session
            .write_response(1, allow(), &mut answer)
            .unwrap();
        let (first, second) = answer.split_at(answer.len() / 2);
        let (mut inbuf, mut out) = (first.to_vec(), Vec::new());
        let p = protocol
            .on_data(&mut agent, &mut inbuf, true, &mut out)
            .unwrap();
        assert_eq!((p.expected, p.sent_request, out.len()), (0, false, 0));
        inbuf.extend_from_slice(second);
        let p = protocol
            .on_data(&mut agent, &mut inbuf, true, &mut out)
            .unwrap();
        assert_eq!((p.expected, p.unexpected, p.sent_request), (1, 0, true));
        assert!(inbuf.is_empty());
        assert_eq!(server.take(&out, &mut Vec::new()), vec![2]);
    }

    #[test]
    fn an_answer_followed_by_a_goodbye_counts_and_then_ends_the_connection() {
        let ids = identity();
        let (mut protocol, mut agent, mut server) = established(&ids);
        let mut inbuf = Vec::new();
        server
            .session
            .write_response(1, allow(), &mut inbuf)
            .unwrap();
        server
            .session
            .write_goodbye(GoodbyeReason::Reconnect, &mut inbuf);
        let mut out = Vec::new();
        let p = protocol
            .on_data(&mut agent, &mut inbuf, true, &mut out)
            .unwrap();
        assert_eq!(p.expected, 1, "the answer before the goodbye stands");
        assert_eq!(p.end, Some(ErrorKind::Refused));
    }

    #[test]
    fn a_wrong_answer_is_counted_as_unexpected() {
        let ids = identity();
        let (mut protocol, mut agent, mut server) = established(&ids);
        let mut inbuf = Vec::new();
        let deny = Response::Deny {
            reason: gatehouse_common::types::DenyReason::Locked,
        };
        server.session.write_response(1, deny, &mut inbuf).unwrap();
        let p = protocol
            .on_data(&mut agent, &mut inbuf, false, &mut Vec::new())
            .unwrap();
        assert_eq!((p.expected, p.unexpected, p.sent_request), (0, 1, false));
    }
}
