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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::AtomicBool;

    /// Runs the client with one connection for 300 ms against a server thread that reads the
    /// first `GET k` and then does `misbehave` with the socket; returns the client's totals.
    fn against(misbehave: impl FnOnce(&mut TcpStream) + Send + 'static) -> Stats {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut get = [0u8; GET_K.len()];
            socket.read_exact(&mut get).unwrap();
            misbehave(&mut socket);
            // Hold the socket until the client closes its end, so ours ends with a FIN and
            // never with a reset.
            let _ = socket.read(&mut [0u8; 64]);
        });
        let stop = AtomicBool::new(false);
        let run = Duration::from_millis(300);
        let (stats, _) = run_redis(addr, 1, run, &stop, &mut |_, _, _| {}).unwrap();
        server.join().unwrap();
        stats
    }

    /// A server that answers the first GET with half a reply and closes, the end of its
    /// stream right behind the data: the client counts a failed connection, and does not wait
    /// for the rest of an answer that cannot come (it would be `unfinished` after the drain).
    #[test]
    fn a_server_closing_mid_answer_fails_the_connection() {
        let stats = against(|socket| {
            socket.write_all(b"$3\r\nba").unwrap();
            socket.shutdown(Shutdown::Write).unwrap();
        });
        assert_eq!(stats.ok, 0);
        assert_eq!(stats.errors[ErrorKind::ConnectionFailed as usize], 1);
        assert_eq!(stats.errors[ErrorKind::Unfinished as usize], 0);
    }

    /// A server that streams a reply which never completes: the client drops the connection
    /// once it holds `MAX_INBUF` unparsed bytes, as a protocol error, instead of buffering
    /// without bound.
    #[test]
    fn an_answer_that_never_ends_is_cut_off_at_the_input_bound() {
        use crate::closed_loop::MAX_INBUF;
        let stats = against(|socket| {
            // A bulk string announced far longer than what follows, which is still more than
            // the client may hold.
            let header = format!("${}\r\n", 4 * MAX_INBUF);
            socket.write_all(header.as_bytes()).unwrap();
            let _ = socket.write_all(&vec![b'a'; 2 * MAX_INBUF]);
        });
        assert_eq!(stats.ok, 0);
        assert_eq!(stats.errors[ErrorKind::Protocol as usize], 1);
    }
}
