//! Peers on replication links for the trust tests, built from the real protocol pieces: a
//! test replica that opens a link to a real master and says what it likes, and a forged master
//! that holds only a replica's node key (as any server, or anyone with a copy of the database,
//! does) and tries to feed that replica. Blocking I/O; every read bounded by `WAIT_LIMIT`.

use crate::client::{Client, ClientFailure};
use crate::fleet::TestHost;
use crate::WAIT_LIMIT;
use gatehouse_common::crypto::aes_hardware;
use gatehouse_common::nodekeys::NodeKeyMap;
use gatehouse_common::policy::{Change, Route};
use gatehouse_common::repl::link_auth::{respond, LinkInitiator};
use gatehouse_common::repl::{MasterPublicKey, MasterSecretKey, ReplMessage};
use gatehouse_common::session::{ClientEvent, ServerInput, ServerSession};
use gatehouse_common::wire::frame::{decode_frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Opens a replication link to a real master as `replica`, checking the master's proof
/// against `pinned`. Returns the link and the master's signed epoch.
pub fn replica_link(
    addr: SocketAddr,
    replica: &TestHost,
    pinned: &MasterPublicKey,
) -> Result<(Client, u64), ClientFailure> {
    let mut client = Client::connect(addr, replica)?;
    let (initiator, hello) = LinkInitiator::start(&mut StdRng::from_entropy());
    client.send_replication(&ReplMessage::LinkHello(hello))?;
    let ReplMessage::LinkAuth(auth) = receive(&mut client)? else {
        panic!("the master answered the hello with something else");
    };
    let (keys, epoch) = initiator
        .finish(&auth, &replica.name, &replica.key, pinned)
        .expect("the real master proves its key");
    client.rekey(&keys)?;
    Ok((client, epoch))
}

/// The next replication message on a link.
pub fn receive(client: &mut Client) -> Result<ReplMessage, ClientFailure> {
    match client.next_event()? {
        ClientEvent::Replication(bytes) => Ok(ReplMessage::decode(&bytes).expect("decodes")),
        other => panic!("expected a replication message, got {other:?}"),
    }
}

/// A server that completes the node-key handshake as the master would (it holds the
/// replica's node key) and then presents a master key of its own: its own public key, or the
/// real master's (`claim`) with a signature it cannot make. Whatever follows — a batch adding a
/// user allowed everything, a huge epoch — must never be applied.
pub struct ForgedMaster {
    pub addr: SocketAddr,
    /// `LinkHello`s received: proof the replica reached the forger's key exchange.
    pub hellos: Arc<AtomicUsize>,
}

impl ForgedMaster {
    pub fn start(replica: &TestHost, claim: Option<MasterPublicKey>) -> ForgedMaster {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hellos = Arc::new(AtomicUsize::new(0));
        let counter = hellos.clone();
        let keys: NodeKeyMap = [(replica.name.clone(), replica.key.clone())].into();
        // Lives until the test process ends: one blocking accept loop, one link at a time.
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let _ = forge(stream, &keys, claim, &counter);
            }
        });
        ForgedMaster { addr, hellos }
    }

    pub fn hellos(&self) -> usize {
        self.hellos.load(Ordering::SeqCst)
    }
}

/// One link to the forger.
fn forge(
    mut stream: TcpStream,
    keys: &NodeKeyMap,
    claim: Option<MasterPublicKey>,
    hellos: &AtomicUsize,
) -> Result<(), ClientFailure> {
    stream.set_read_timeout(Some(WAIT_LIMIT))?;
    let mut rng = StdRng::from_entropy();
    let forger = MasterSecretKey::generate(&mut rng);
    let mut session = ServerSession::new(aes_hardware());
    let mut inbuf = Vec::new();
    loop {
        let Some((consumed, _)) = decode_frame(&inbuf, MAX_FRAME_LEN).ok().flatten() else {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk)? {
                0 => return Err(ClientFailure::Closed),
                n => inbuf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let mut frame: Vec<u8> = inbuf.drain(..consumed).collect();
        let mut out = Vec::new();
        let input = session
            .handle_frame(&mut frame[FRAME_HEADER_LEN..], keys, &mut rng, &mut out)
            .map(ServerInput::unless_request);
        stream.write_all(&out)?;
        let Ok(Some(ServerInput::Replication(bytes))) = input else {
            continue;
        };
        let Ok(ReplMessage::LinkHello(hello)) = ReplMessage::decode(&bytes) else {
            continue;
        };
        hellos.fetch_add(1, Ordering::SeqCst);
        let host = session.host().unwrap_or_default().to_string();
        let node_key = keys
            .get(&host)
            .cloned()
            .expect("the forger knows this host");
        let (mut auth, link_keys) = respond(&hello, &host, &node_key, &forger, u64::MAX, &mut rng)
            .expect("the forger's own exchange");
        if let Some(real) = claim {
            auth.master_key = real.0;
        }
        let mut out = Vec::new();
        let sends = [
            ReplMessage::LinkAuth(auth),
            ReplMessage::Heartbeat { seq: 1 },
            ReplMessage::Changes {
                head: 1,
                changes: vec![(1, mallory())],
            },
        ];
        for (i, msg) in sends.iter().enumerate() {
            if i == 1 {
                // Everything after the proof under the keys a fooled replica would switch to.
                let _ = session.rekey(&link_keys);
            }
            let _ = session.write_replication(msg.encode().expect("encodes"), &mut out);
        }
        stream.write_all(&out)?;
    }
}

/// The forged change: a user allowed everything, everywhere, as root.
pub fn mallory() -> Change {
    Change::ReplaceAll {
        database: gatehouse_common::policy::Database {
            users: vec![gatehouse_common::policy::User {
                name: "mallory".into(),
                password_hash: String::new(),
                locked: false,
                classes: Vec::new(),
                routes: vec![Route {
                    rule: "*:*->root@*".into(),
                    window: None,
                    expires: None,
                }],
                unix: None,
            }],
            ..Default::default()
        },
    }
}

/// A TCP connection to `addr` from the loopback address `source` (e.g. 127.0.0.2: on Linux
/// all of 127.0.0.0/8 is local), so a test can play a second machine.
pub fn connect_from(source: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let from: SocketAddr = format!("{source}:0").parse().expect("a source address");
    socket.bind(&from.into())?;
    socket.connect(&addr.into())?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT_LIMIT))?;
    Ok(stream)
}
