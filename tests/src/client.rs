//! A blocking protocol client for tests: the real `ClientSession` over a std `TcpStream`, and
//! a one-shot UDP prober. Reads are bounded by `WAIT_LIMIT`.

use crate::fleet::TestHost;
use crate::WAIT_LIMIT;
use gatehouse_common::crypto::handshake::SessionKeys;
use gatehouse_common::crypto::probe_auth::{open_reply, seal_probe};
use gatehouse_common::crypto::{preferred_suites, CipherSuite};
use gatehouse_common::repl::ReplMessage;
use gatehouse_common::session::{ClientError, ClientEvent, ClientSession};
use gatehouse_common::wire::frame::{decode_frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use gatehouse_common::wire::{Probe, ProbeReply, Request, Response, SUPPORTED_VERSIONS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// Why a client operation failed.
#[derive(Debug)]
pub enum ClientFailure {
    Io(io::Error),
    /// The server closed the connection.
    Closed,
    Protocol(ClientError),
}

impl From<io::Error> for ClientFailure {
    fn from(e: io::Error) -> Self {
        ClientFailure::Io(e)
    }
}

impl From<ClientError> for ClientFailure {
    fn from(e: ClientError) -> Self {
        ClientFailure::Protocol(e)
    }
}

/// One agent connection.
pub struct Client {
    pub stream: TcpStream,
    session: ClientSession,
    inbuf: Vec<u8>,
}

impl Client {
    /// Connects and completes the handshake as `host`.
    pub fn connect(addr: SocketAddr, host: &TestHost) -> Result<Client, ClientFailure> {
        Self::connect_with_versions(addr, host, SUPPORTED_VERSIONS)
    }

    /// Connects offering `versions` (and the suites this machine prefers, as an agent would).
    pub fn connect_with_versions(
        addr: SocketAddr,
        host: &TestHost,
        versions: &[u16],
    ) -> Result<Client, ClientFailure> {
        Self::connect_offering(addr, host, versions, preferred_suites())
    }

    /// Connects offering `versions` and `ciphers` (most preferred first).
    pub fn connect_offering(
        addr: SocketAddr,
        host: &TestHost,
        versions: &[u16],
        ciphers: &[CipherSuite],
    ) -> Result<Client, ClientFailure> {
        let stream = raw_connect(addr)?;
        let mut out = Vec::new();
        let mut rng = StdRng::from_entropy();
        let key = host.key.clone();
        let session = ClientSession::start(&host.name, key, versions, ciphers, &mut rng, &mut out)?;
        let mut client = Client {
            stream,
            session,
            inbuf: Vec::new(),
        };
        client.stream.write_all(&out)?;
        match client.next_event()? {
            ClientEvent::Established { .. } => Ok(client),
            other => panic!("expected the handshake to finish, got {other:?}"),
        }
    }

    /// The cipher suite the server chose.
    pub fn cipher(&self) -> Option<CipherSuite> {
        self.session.cipher()
    }

    /// Sends one request and waits for its response.
    pub fn request(&mut self, id: u32, request: Request) -> Result<Response, ClientFailure> {
        self.send(id, request)?;
        match self.next_event()? {
            ClientEvent::Response { id: got, body } => {
                assert_eq!(got, id, "response for another request");
                Ok(body)
            }
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// Sends one request without waiting.
    pub fn send(&mut self, id: u32, request: Request) -> Result<(), ClientFailure> {
        let mut out = Vec::new();
        self.session.write_request(id, &request, &mut out)?;
        self.stream.write_all(&out)?;
        Ok(())
    }

    /// Sends one replication-link message (a test replica on a master's replication port).
    pub fn send_replication(&mut self, msg: &ReplMessage) -> Result<(), ClientFailure> {
        let bytes = msg.encode().expect("a test message encodes");
        let mut out = Vec::new();
        self.session.write_replication(bytes, &mut out)?;
        self.stream.write_all(&out)?;
        Ok(())
    }

    /// Switches the session to a replication link's own keys.
    pub fn rekey(&mut self, keys: &SessionKeys) -> Result<(), ClientFailure> {
        Ok(self.session.rekey(keys)?)
    }

    /// Seals a request without sending it (for replay and forgery tests).
    pub fn seal(&mut self, id: u32, request: Request) -> Vec<u8> {
        let mut out = Vec::new();
        self.session
            .write_request(id, &request, &mut out)
            .expect("seal");
        out
    }

    /// Reads until one whole frame has arrived and hands it to the session.
    pub fn next_event(&mut self) -> Result<ClientEvent, ClientFailure> {
        loop {
            if let Some((consumed, _)) =
                decode_frame(&self.inbuf, MAX_FRAME_LEN).map_err(|_| ClientFailure::Closed)?
            {
                let mut frame: Vec<u8> = self.inbuf.drain(..consumed).collect();
                let mut out = Vec::new();
                let event = self
                    .session
                    .handle_frame(&mut frame[FRAME_HEADER_LEN..], &mut out);
                if !out.is_empty() {
                    self.stream.write_all(&out)?;
                }
                return Ok(event?);
            }
            read_more(&mut self.stream, &mut self.inbuf)?;
        }
    }

    /// True when the server closes the connection (reads EOF or a reset) within the limit.
    pub fn closed_by_server(&mut self) -> bool {
        closed_by_server(&mut self.stream)
    }
}

/// A plain TCP connection with the test read timeout.
pub fn raw_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, WAIT_LIMIT)?;
    stream.set_read_timeout(Some(WAIT_LIMIT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A plain TCP connection from the local address `source` (any of 127.0.0.0/8 works on
/// loopback), so a test can play several source addresses.
pub fn raw_connect_from(source: std::net::IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&addr.into(), WAIT_LIMIT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT_LIMIT))?;
    Ok(stream)
}

fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ClientFailure> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) => Err(ClientFailure::Closed),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Err(ClientFailure::Closed),
        Err(e) => Err(e.into()),
    }
}

/// Reads and discards until EOF or reset; false if the server kept it open past the limit.
pub fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Reads one plaintext handshake frame from a raw stream (an error sent before/without a
/// session, such as "too many connections").
pub fn read_plain_frame(stream: &mut TcpStream) -> Option<gatehouse_common::wire::Handshake> {
    let mut buf = Vec::new();
    loop {
        if let Ok(Some((consumed, payload))) = decode_frame(&buf, MAX_FRAME_LEN) {
            let _ = consumed;
            return gatehouse_common::wire::Handshake::decode(payload).ok();
        }
        read_more(stream, &mut buf).ok()?;
    }
}

/// Sends one authenticated probe as `host` and waits up to `timeout` for the reply.
pub fn probe(addr: SocketAddr, host: &TestHost, timeout: Duration) -> Option<ProbeReply> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(timeout)).ok()?;
    let probe_id = StdRng::from_entropy().gen();
    let datagram = seal_probe(
        &host.key,
        &Probe {
            host: host.name.clone(),
            probe_id,
            sent_unix_ms: gatehouse_common::wire::unix_ms(std::time::SystemTime::now()),
        },
    )
    .ok()?;
    socket.send_to(&datagram, addr).ok()?;
    let mut buf = [0u8; 2048];
    loop {
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        if let Ok(reply) = open_reply(&host.key, &buf[..n]) {
            if reply.probe_id == probe_id {
                return Some(reply);
            }
        }
    }
}
