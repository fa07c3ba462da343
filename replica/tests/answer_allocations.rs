//! Answering an authorize the way the reactor does for a cheap request (`reactor/frame.rs`
//! runs the same three steps: the session opens and decodes the frame in place,
//! `answer_in_place` decides, the session seals the answer into the connection's buffer)
//! allocates nothing once the buffers exist, with the debug log off (at debug level each
//! decision is a formatted log line) and with the audit journal off or on (its record is
//! encoded into the journal's buffer in place). At 150k+ requests per second on one core,
//! each allocation and free is measurable (five per request before: ~3 % of the replica's
//! CPU).
//!
//! Counted with a global allocator that counts the calls made on the answering thread while
//! it answers: the journal's writer thread (started when the journal opens, parking and
//! waking on its own schedule) does not count; it is the only test in this binary.

use gatehouse_common::crypto::suite::CipherSuite;
use gatehouse_common::nodekeys::{NodeKey, NodeKeyMap};
use gatehouse_common::policy::{Database, PolicySnapshot};
use gatehouse_common::session::{ClientEvent, ClientSession, ServerInput, ServerSession};
use gatehouse_common::types::Method;
use gatehouse_common::wire::{
    decode_frame, AuthorizeRequest, Request, Response, FRAME_HEADER_LEN, MAX_FRAME_LEN,
};
use gatehouse_replica::audit::{AuditConfig, Journal, Recorder};
use gatehouse_replica::bridge::workers::{answer_in_place, Caller, InPlace};
use gatehouse_replica::handler::PolicyHandler;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// Counts allocations and reallocations on threads that asked to be counted; frees are not
/// counted (each follows an allocation).
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations count (const-initialised: reading it never
    /// allocates, so the allocator may).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count_here() {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_here();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_here();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const KEY: NodeKey = NodeKey([7; 32]);

fn policy() -> PolicyHandler {
    let text = format!(
        r#"(hosts: [(name: "web1", node_key: "{}")],
            users: [(name: "alice", routes: [(rule: "SSH:*->alice@web*")])])"#,
        KEY.to_hex()
    );
    let db: Database = ron::from_str(&text).expect("the test database parses");
    let snapshot = PolicySnapshot::compile(&db).expect("the test database compiles");
    PolicyHandler::new(Arc::new(arc_swap::ArcSwap::from_pointee(snapshot)))
}

/// The payload of the one frame in `wire`.
fn payload(wire: &[u8]) -> Vec<u8> {
    let (consumed, _) = decode_frame(wire, MAX_FRAME_LEN).unwrap().unwrap();
    assert_eq!(consumed, wire.len(), "exactly one frame");
    wire[FRAME_HEADER_LEN..].to_vec()
}

fn established(rng: &mut StdRng) -> (ClientSession, ServerSession) {
    let keys = NodeKeyMap::from([("web1".to_string(), KEY)]);
    let suites = [CipherSuite::Aes256Gcm, CipherSuite::ChaCha20Poly1305];
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    let mut client = ClientSession::start("web1", KEY, &[1], &suites, rng, &mut c2s).unwrap();
    let mut server = ServerSession::new(true);
    let input = server
        .handle_frame(&mut payload(&c2s), &keys, rng, &mut s2c)
        .map(ServerInput::unless_request);
    assert_eq!(input, Ok(Some(ServerInput::Progress)));
    c2s.clear();
    let event = client.handle_frame(&mut payload(&s2c), &mut c2s).unwrap();
    assert!(
        matches!(event, ClientEvent::Established { .. }),
        "{event:?}"
    );
    let input = server
        .handle_frame(&mut payload(&c2s), &keys, rng, &mut Vec::new())
        .map(ServerInput::unless_request);
    assert_eq!(input, Ok(Some(ServerInput::Established)));
    (client, server)
}

/// One request through the server the reactor's way; returns the allocations it made and
/// the answer the client read.
fn answer_once(
    client: &mut ClientSession,
    server: &mut ServerSession,
    handler: &PolicyHandler,
    frame: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> (usize, Response) {
    frame.clear();
    out.clear();
    let request = Request::Authorize(AuthorizeRequest {
        method: Method::Ssh,
        from_host: "10.0.0.9".to_string(),
        from_user: "alice".to_string(),
        to_user: "alice".to_string(),
        to_host: "web1".to_string(),
    });
    client.write_request(1, &request, frame).unwrap();
    let no_keys = NodeKeyMap::new();
    let mut rng = StdRng::seed_from_u64(2);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let payload = &mut frame[FRAME_HEADER_LEN..];
    let Ok(ServerInput::Request { id, body }) =
        server.handle_frame(payload, &no_keys, &mut rng, out)
    else {
        panic!("expected a request");
    };
    let caller = Caller {
        host: "web1",
        address: "10.0.0.7:40112".parse().unwrap(),
    };
    let InPlace::Answered(response) =
        answer_in_place(Some(handler), Some(caller), body, SystemTime::now())
    else {
        panic!("an authorize is answered in place");
    };
    server.write_response(id, response, out).unwrap();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let answer = match client.handle_frame(&mut out[FRAME_HEADER_LEN..], &mut Vec::new()) {
        Ok(ClientEvent::Response { body, .. }) => body,
        other => panic!("expected a response, got {other:?}"),
    };
    (allocations, answer)
}

#[test]
fn an_authorize_answered_in_place_allocates_nothing() {
    COUNTED.with(|counted| counted.set(true));
    let mut rng = StdRng::seed_from_u64(1);
    let dir = std::env::temp_dir().join(format!("gatehouse-alloc-{}", std::process::id()));
    let journal = Journal::open(AuditConfig::in_dir(dir.clone())).unwrap();
    let plain = policy();
    let audited = policy().with_audit(Arc::new(Recorder::new(journal.clone())));
    let (mut frame, mut out) = (Vec::with_capacity(1024), Vec::with_capacity(1024));
    for (prepared, handler) in [(false, &plain), (true, &plain), (true, &audited)] {
        let (mut client, mut server) = established(&mut rng);
        if prepared {
            assert!(
                server.prepare_cipher(),
                "AES-256-GCM keeps its cipher built"
            );
        }
        // The first answer may build what is reused afterwards (the journal's segment).
        answer_once(&mut client, &mut server, handler, &mut frame, &mut out);
        journal.kick();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        assert!(journal.wait_until(deadline, |j| j.released_through() == j.assigned_through()));
        for _ in 0..3 {
            let (allocations, answer) =
                answer_once(&mut client, &mut server, handler, &mut frame, &mut out);
            assert!(
                matches!(&answer, Response::Allow { route } if &**route == "SSH:*->alice@web*"),
                "{answer:?}"
            );
            assert_eq!(allocations, 0, "cipher kept built: {prepared}");
        }
    }
    assert_eq!(
        journal.assigned_through(),
        4,
        "the audited answers were recorded"
    );
    journal.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}
