//! The replication thread's event loop: admits new connections (`admission`), runs each
//! [`Link`], closes an older link of a replica that has authenticated a new one, wakes on
//! every commit to stream changes, and ticks heartbeats and handshake deadlines. Only hosts on
//! the replica allow-list can complete the handshake (an unknown or non-replica host is
//! refused, fail closed).

use super::admission::{admit, Admission, Counts};
use super::link::{Close, Ctx, Link};
use super::LinkTable;
use crate::audit::Audit;
use crate::hooks::LinkState;
use crate::state::MasterState;
use gatehouse_common::nodekeys::NodeKeyMap;
use gatehouse_common::repl::{LinkTimings, MasterSecretKey};
use gatehouse_common::service::watchdog::Heartbeat;
use gatehouse_common::session::write_plain_error;
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::WireError;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use rand::rngs::StdRng;
use rand::SeedableRng;
use slab::Slab;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

pub(super) struct Reactor {
    poll: Poll,
    listener: TcpListener,
    links: Slab<Link>,
    table: Arc<LinkTable>,
    state: Arc<MasterState>,
    timings: LinkTimings,
    key: MasterSecretKey,
    rng: StdRng,
}

impl Reactor {
    pub fn new(
        listener: std::net::TcpListener,
        state: Arc<MasterState>,
        timings: LinkTimings,
        key: MasterSecretKey,
        audit: Option<Arc<Audit>>,
    ) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let table = Arc::new(LinkTable {
            records: Default::default(),
            waker,
            state: state.clone(),
            audit,
        });
        Ok(Reactor {
            poll,
            listener,
            links: Slab::new(),
            table,
            state,
            timings,
            key,
            rng: StdRng::from_entropy(),
        })
    }

    pub fn table(&self) -> Arc<LinkTable> {
        self.table.clone()
    }

    /// The node keys of the hosts allowed to replicate.
    fn replica_keys(&self) -> NodeKeyMap {
        // The published snapshot (no store lock): the allow-list and its hosts' keys only.
        let policy = self.state.policy().load_full();
        let keys = policy.node_keys();
        policy
            .replicas()
            .filter_map(|h| keys.get(h).map(|k| (h.to_string(), k.clone())))
            .collect()
    }

    /// Runs forever, beating `heartbeat` once per turn (and waking for it when idle).
    pub fn run(mut self, heartbeat: Heartbeat) {
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            heartbeat.beat(now);
            let timeout = self
                .links
                .iter()
                .map(|(_, l)| l.next_deadline())
                .min()
                .map(|at| at.saturating_duration_since(now) + Duration::from_millis(1));
            let timeout = heartbeat.cap(timeout);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("replication loop stopped: {e}");
                    return;
                }
            }
            let keys = self.replica_keys();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {
                        self.catch_up_all(&keys);
                        self.send_audit_acks();
                    }
                    Token(index) => self.on_link_event(index, event, &keys),
                }
            }
            self.tick(&keys);
        }
    }

    fn ctx<'a>(
        state: &'a MasterState,
        table: &'a Arc<LinkTable>,
        keys: &'a NodeKeyMap,
        master_key: &'a MasterSecretKey,
        rng: &'a mut StdRng,
    ) -> Ctx<'a> {
        Ctx {
            state,
            audit: table.audit.as_deref(),
            table,
            keys,
            master_key,
            rng,
            now: Instant::now(),
        }
    }

    fn accept(&mut self) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("replication accept failed: {e}");
                    return;
                }
            };
            let admission = admit(self.counts(peer), &mut self.rng);
            if admission != Admission::Accept {
                log::debug!("refused a replication connection from {peer}: {admission:?}");
                // Best effort, never blocking: tell a real replica to come back later.
                let mut out = Vec::new();
                let error = WireError::new(ErrorCode::TooManyConnections, "replication port busy");
                write_plain_error(&error, &mut out);
                let _ = std::io::Write::write(&mut stream, &out);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let entry = self.links.vacant_entry();
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(entry.key()),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("cannot register replication link from {peer}: {e}");
                continue;
            }
            log::debug!("replication connection from {peer}");
            entry.insert(Link::new(stream, peer, self.timings, Instant::now()));
        }
    }

    /// The counts admission decides on, for a connection from `peer`.
    fn counts(&self, peer: std::net::SocketAddr) -> Counts {
        let mut counts = Counts {
            links: self.links.len(),
            handshakes: 0,
            source_handshakes: 0,
        };
        for (_, link) in self.links.iter().filter(|(_, l)| l.in_handshake()) {
            counts.handshakes += 1;
            if link.peer.ip() == peer.ip() {
                counts.source_handshakes += 1;
            }
        }
        counts
    }

    /// A replica that authenticated a new link replaces its older one (a reconnect after a
    /// blip, before the old link's timeout noticed), so it never holds two.
    fn replace_older_link(&mut self, index: usize, host: &str) {
        let older: Vec<usize> = self
            .links
            .iter()
            .filter(|(i, l)| *i != index && l.host.as_deref() == Some(host) && !l.in_handshake())
            .map(|(i, _)| i)
            .collect();
        for i in older {
            log::warn!(
                "replica {host}: a new link from {} replaces its quiet one from {}",
                self.links[index].peer,
                self.links[i].peer
            );
            self.close(i, Close::Replaced);
        }
    }

    fn on_link_event(&mut self, index: usize, event: &mio::event::Event, keys: &NodeKeyMap) {
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        let mut ctx = Self::ctx(&self.state, &self.table, keys, &self.key, &mut self.rng);
        let mut result = Ok(());
        if event.is_writable() {
            result = link.flush().and_then(|_| link.catch_up(&mut ctx));
        }
        if result.is_ok() && (event.is_readable() || event.is_read_closed() || event.is_error()) {
            result = link.on_readable(&mut ctx);
        }
        let authenticated = link.take_authenticated();
        match result {
            Err(close) => self.close(index, close),
            Ok(()) => {
                if let Some(host) = authenticated {
                    self.replace_older_link(index, &host);
                }
            }
        }
    }

    fn catch_up_all(&mut self, keys: &NodeKeyMap) {
        let indexes: Vec<usize> = self.links.iter().map(|(i, _)| i).collect();
        for index in indexes {
            let mut ctx = Self::ctx(&self.state, &self.table, keys, &self.key, &mut self.rng);
            if let Err(close) = self.links[index].catch_up(&mut ctx) {
                self.close(index, close);
            }
        }
    }

    /// Sends each stored audit batch's ack on its replica's current link (a replaced link's
    /// replica gets it on the new one, which is as good: it only moves its ack forward).
    fn send_audit_acks(&mut self) {
        let Some(audit) = self.table.audit.clone() else {
            return;
        };
        let now = Instant::now();
        for (host, stream, through) in audit.take_acks() {
            let index = self
                .links
                .iter()
                .find(|(_, l)| l.host.as_deref() == Some(host.as_str()) && !l.in_handshake())
                .map(|(i, _)| i);
            if let Some(index) = index {
                if let Err(close) = self.links[index].ack_report(stream, through, now) {
                    self.close(index, close);
                }
            }
        }
    }

    fn tick(&mut self, keys: &NodeKeyMap) {
        let now = Instant::now();
        let due: Vec<usize> = self
            .links
            .iter()
            .filter(|(_, l)| l.next_deadline() <= now)
            .map(|(i, _)| i)
            .collect();
        for index in due {
            let mut ctx = Self::ctx(&self.state, &self.table, keys, &self.key, &mut self.rng);
            if let Err(close) = self.links[index].on_timer(&mut ctx) {
                self.close(index, close);
            }
        }
    }

    fn close(&mut self, index: usize, reason: Close) {
        let mut link = self.links.remove(index);
        let _ = self.poll.registry().deregister(&mut link.stream);
        let host = link.host.clone().unwrap_or_else(|| "-".into());
        match &reason {
            Close::PeerClosed => log::info!("replica {host} ({}) closed its link", link.peer),
            other => log::warn!(
                "replication link to {host} ({}) closed: {other:?}",
                link.peer
            ),
        }
        // A replaced link's replica is still connected, on its newer link; a link that never
        // finished its handshake never showed in the table.
        let shown =
            !matches!(reason, Close::Replaced | Close::Duplicate(_)) && !link.in_handshake();
        if let (Some(host), true) = (&link.host, shown) {
            self.table
                .update(host, |r| r.state = LinkState::Disconnected);
        }
    }
}
