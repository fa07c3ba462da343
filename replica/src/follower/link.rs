//! One connection to a master, blocking with timeouts: connect (bounded), handshake with the
//! replica's node key, the master's proof of its identity against the pinned key and the
//! switch to the link's own keys (`repl::link_auth`), then framed sealed replication messages.
//! Nothing a peer sends is believed before that proof. Every read waits at most until
//! the link's next liveness deadline, and every write at most a heartbeat timeout (socket
//! timeouts plus TCP_USER_TIMEOUT), so a stopped master is noticed in time and never blocks
//! the replica.

use super::config::PinnedMaster;
use gatehouse_common::crypto::preferred_suites;
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::repl::link_auth::LinkInitiator;
use gatehouse_common::repl::ReplMessage;
use gatehouse_common::session::{ClientEvent, ClientSession};
use gatehouse_common::wire::frame::{decode_frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use gatehouse_common::wire::SUPPORTED_VERSIONS;
use rand::RngCore;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Why a link ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("the master closed the link")]
    Closed,
    #[error("protocol: {0}")]
    Protocol(String),
    /// The peer's text, quoted: it may say anything.
    #[error("refused by the master: {0:?}")]
    Refused(String),
    #[error("not the pinned master: {0}")]
    NotMaster(String),
    #[error("the master was silent for the heartbeat timeout")]
    Silent,
    #[error("no answer within the request timeout")]
    Overdue,
    #[error("store: {0}")]
    Store(String),
}

/// What a read produced.
pub enum Incoming {
    Message(ReplMessage),
    /// The read timed out at the deadline: time to check liveness.
    Tick,
}

/// An established link.
pub struct Link {
    stream: TcpStream,
    session: ClientSession,
    inbuf: Vec<u8>,
}

impl Link {
    /// Connects, completes the handshake as `host`, and checks the master's proof of its
    /// identity against `master.key`. Returns the link and the master's (signed) epoch.
    pub fn open(
        master: &PinnedMaster,
        host: &str,
        key: &NodeKey,
        connect_timeout: Duration,
        io_timeout: Duration,
        rng: &mut (impl RngCore + rand::CryptoRng),
    ) -> Result<(Link, u64), LinkError> {
        let addr: SocketAddr = master.address;
        let stream =
            TcpStream::connect_timeout(&addr, connect_timeout).map_err(LinkError::Connect)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(io_timeout))?;
        stream.set_read_timeout(Some(io_timeout))?;
        #[cfg(target_os = "linux")]
        socket2::SockRef::from(&stream).set_tcp_user_timeout(Some(io_timeout))?;
        let mut out = Vec::new();
        // Offer what this machine runs fastest (AES-256-GCM only with AES hardware).
        let ciphers = preferred_suites();
        let session = ClientSession::start(
            host,
            key.clone(),
            SUPPORTED_VERSIONS,
            ciphers,
            rng,
            &mut out,
        )
        .map_err(|e| LinkError::Protocol(e.to_string()))?;
        let mut link = Link {
            stream,
            session,
            inbuf: Vec::new(),
        };
        link.stream.write_all(&out)?;
        // The server's hello is the only frame before we are established; our finish goes
        // out with the answer to it.
        let mut out = Vec::new();
        let event = link.next_event(&mut out, Instant::now() + io_timeout)?;
        if !out.is_empty() {
            link.stream.write_all(&out)?;
        }
        match event {
            Some(ClientEvent::Established { .. }) => {}
            Some(_) => {
                return Err(LinkError::Protocol(
                    "unexpected message during the handshake".into(),
                ))
            }
            None => return Err(LinkError::Silent),
        }
        // The peer knows this replica's node key, as every server does; now it must prove it
        // holds the pinned master key.
        let (initiator, hello) = LinkInitiator::start(rng);
        link.send(&ReplMessage::LinkHello(hello))?;
        let auth = match link.receive(Instant::now() + io_timeout)? {
            Incoming::Message(ReplMessage::LinkAuth(auth)) => auth,
            Incoming::Message(ReplMessage::Refused { reason }) => {
                return Err(LinkError::Refused(reason))
            }
            Incoming::Message(other) => {
                return Err(LinkError::NotMaster(format!(
                    "{} before the master's proof",
                    other.name()
                )))
            }
            Incoming::Tick => return Err(LinkError::Silent),
        };
        let (keys, epoch) = initiator
            .finish(&auth, host, key, &master.key)
            .map_err(|e| LinkError::NotMaster(e.to_string()))?;
        link.session
            .rekey(&keys)
            .map_err(|e| LinkError::Protocol(e.to_string()))?;
        Ok((link, epoch))
    }

    /// Sends one message. The plaintext of a password change is wiped once sealed.
    pub fn send(&mut self, msg: &ReplMessage) -> Result<(), LinkError> {
        let bytes = msg
            .encode()
            .map_err(|e| LinkError::Protocol(e.to_string()))?;
        let mut out = Vec::new();
        let sealed = match msg {
            ReplMessage::PasswordChange { .. } => {
                self.session.write_replication_secret(bytes, &mut out)
            }
            _ => self.session.write_replication(bytes, &mut out),
        };
        sealed.map_err(|e| LinkError::Protocol(e.to_string()))?;
        self.stream.write_all(&out)?;
        Ok(())
    }

    /// Waits for the next message until `deadline`.
    pub fn receive(&mut self, deadline: Instant) -> Result<Incoming, LinkError> {
        let mut out = Vec::new();
        match self.next_event(&mut out, deadline)? {
            None => Ok(Incoming::Tick),
            Some(ClientEvent::Replication(bytes)) => ReplMessage::decode(&bytes)
                .map(Incoming::Message)
                .map_err(|e| LinkError::Protocol(e.to_string())),
            Some(ClientEvent::Goodbye(reason)) => Err(LinkError::Protocol(format!(
                "unexpected goodbye {reason:?}"
            ))),
            Some(_) => Err(LinkError::Protocol("unexpected agent response".into())),
        }
    }

    /// The next session event, or None at the deadline.
    fn next_event(
        &mut self,
        out: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<Option<ClientEvent>, LinkError> {
        loop {
            if let Some((consumed, _)) = decode_frame(&self.inbuf, MAX_FRAME_LEN)
                .map_err(|e| LinkError::Protocol(e.to_string()))?
            {
                let event = self
                    .session
                    .handle_frame(&mut self.inbuf[FRAME_HEADER_LEN..consumed], out);
                self.inbuf.drain(..consumed);
                return match event {
                    Ok(event) => Ok(Some(event)),
                    Err(gatehouse_common::session::ClientError::Server(e)) => {
                        Err(LinkError::Refused(e.message))
                    }
                    Err(e) => Err(LinkError::Protocol(e.to_string())),
                };
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(LinkError::Closed),
                Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
