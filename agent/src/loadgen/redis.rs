//! The redis side of the side-by-side throughput benchmark: `GET k` over RESP on the shared
//! closed-loop client ([`super::closed_loop`]), one GET in flight per connection, resent as
//! soon as the reply is in. Called by `gatehouse-loadgen redis`.
//!
//! Not pure (it runs the client); the protocol part only parses bytes.

use super::closed_loop::{run_closed_loop, LoadProtocol, OnTick, Progress};
use super::resp::{parse_reply, Reply, GET_K};
use super::stats::{ErrorKind, Stats};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// RESP `GET k`: every reply counts, an error reply as the wrong answer.
struct GetK;

impl LoadProtocol for GetK {
    type Conn = ();

    fn open(
        &mut self,
        _index: usize,
        issuing: bool,
        out: &mut Vec<u8>,
    ) -> Result<((), Progress), ErrorKind> {
        if issuing {
            out.extend_from_slice(GET_K);
        }
        let progress = Progress {
            sent_request: issuing,
            ..Progress::default()
        };
        Ok(((), progress))
    }

    fn on_data(
        &mut self,
        _conn: &mut (),
        inbuf: &mut Vec<u8>,
        issuing: bool,
        out: &mut Vec<u8>,
    ) -> Result<Progress, ErrorKind> {
        let mut progress = Progress::default();
        loop {
            match parse_reply(inbuf) {
                Reply::Incomplete => return Ok(progress),
                Reply::Malformed => return Err(ErrorKind::Protocol),
                Reply::Complete { len, error } => {
                    inbuf.drain(..len);
                    if error {
                        progress.unexpected += 1;
                    } else {
                        progress.expected += 1;
                    }
                    if issuing {
                        out.extend_from_slice(GET_K);
                        progress.sent_request = true;
                    }
                }
            }
        }
    }
}

/// Runs the redis load; returns the totals and the time from start to the last reply.
pub fn run_redis(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    stop: &std::sync::atomic::AtomicBool,
    on_tick: &mut OnTick<'_>,
) -> io::Result<(Stats, Duration)> {
    run_closed_loop(&mut GetK, addr, connections, duration, stop, on_tick)
}
