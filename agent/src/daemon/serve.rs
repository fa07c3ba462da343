//! The daemon's event loop: the driver's one mio poll carries the engine's sockets, the local
//! listener, the local callers, the signal pipe and the verifier thread's waker. Local
//! requests go to the engine (or are answered from the cache, `login`); finished requests go
//! back to the caller that asked. SIGHUP reloads the config (`reload.rs`); SIGTERM and SIGINT
//! stop the loop. Each turn beats the service manager's watchdog. Not pure (sockets, clock,
//! signals); built and run by `daemon::run`.
//!
//! Bounds: at most [`MAX_LOCAL_CLIENTS`] callers, one request each in the engine at a time
//! (the next frame is read only after the answer), a request frame of at most
//! `MAX_REQUEST_FRAME`, an idle caller closed after [`LOCAL_IDLE_TIMEOUT`]; a caller waiting
//! on the engine waits at most the request deadline, since the engine finishes every request.

use super::access::check_caller;
use super::answer::{check_request, status_report, to_wire};
use super::clients::{LocalClient, ReadResult};
use super::login::{After, Before, Login, Pending};
use super::DaemonError;
use crate::balance::Balancing;
use crate::config::AgentConfig;
use crate::driver::{Completion, Driver, ExternalEvent, EXTERNAL_TOKEN_BASE};
use crate::engine::Engine;
use crate::local::{LocalErrorKind, LocalRequest, LocalResponse};
use gatehouse_common::os::peer::{peer_credentials, AllowedUids};
use gatehouse_common::service::signals::{request_for, Request as SignalRequest};
use gatehouse_common::service::watchdog::Heartbeat;
use gatehouse_common::service::Service;
use gatehouse_local::codec::{decode_request, encode_response, CodecError};
use mio::net::UnixListener;
use mio::{Interest, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most local callers connected at once (256). Why: PAM opens one connection per login step,
/// so a host rarely has more than a handful; the cap bounds descriptors and memory if a local
/// program opens connections in a loop. Callers beyond it get an error and are closed. It
/// equals the engine's `MAX_QUEUED_REQUESTS`, so callers alone cannot fill its queue.
pub const MAX_LOCAL_CLIENTS: usize = 256;
/// A caller with no request in progress is closed after this long (30 s). Why: a caller that
/// connects and sends nothing (or half a frame) would otherwise hold a slot forever.
pub const LOCAL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest sleep in one loop turn (1 s): how often idle callers are swept and a paused accept
/// (out of descriptors) is retried.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes read from a caller at once (4 KiB): a typical request frame is ~200 bytes.
const READ_CHUNK: usize = 4096;

const LISTENER: Token = Token(EXTERNAL_TOKEN_BASE);
const SIGNALS: Token = Token(EXTERNAL_TOKEN_BASE + 1);
const VERIFIER: Token = Token(EXTERNAL_TOKEN_BASE + 2);
const FIRST_CLIENT: usize = EXTERNAL_TOKEN_BASE + 3;

/// Wall-clock milliseconds since the Unix epoch (the cache's clock: it outlives the process).
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// The running daemon.
pub struct Daemon {
    pub(super) driver: Driver,
    /// The engine new requests go to.
    pub(super) engine: usize,
    /// Engines replaced by a reload: they finish their requests; an idle one's slot is
    /// reused by the next reload.
    pub(super) retired: Vec<usize>,
    /// The config running now, and the file it came from (for SIGHUP).
    pub(super) running: AgentConfig,
    pub(super) config_path: Option<PathBuf>,
    pub(super) service: Service,
    heartbeat: Heartbeat,
    listener: UnixListener,
    signals: Signals,
    clients: Slab<LocalClient>,
    /// (Engine, request) → (client slot, generation) waiting for it, and what to do with it.
    waiting: HashMap<(usize, crate::engine::RequestId), (usize, u64, Pending)>,
    /// Answers held back (an offline wrong password's failure delay): when, for whom.
    delayed: Vec<(Instant, (usize, u64), LocalResponse)>,
    pub(super) login: Login,
    /// Clients whose next request may be readable now.
    ready: Vec<usize>,
    completions: Vec<Completion>,
    /// Retries server names that did not resolve.
    resolver: super::resolver::Resolver,
    pub(super) servers: Vec<SocketAddr>,
    host: String,
    pub(super) balancing: Balancing,
    /// Uids that may ask for decisions and status (`access`).
    pub(super) trusted: AllowedUids,
    socket_path: PathBuf,
    next_generation: u64,
    accept_paused: bool,
    scratch: Vec<u8>,
}

impl Daemon {
    /// Puts `engine` in a new driver and registers the listener and SIGTERM/SIGINT on its poll.
    pub fn new(
        config: &AgentConfig,
        engine: Engine,
        mut listener: UnixListener,
        socket_path: PathBuf,
        login: impl FnOnce(Arc<dyn Fn() + Send + Sync>) -> Login,
    ) -> Result<Self, DaemonError> {
        let servers = config.server_addrs().to_vec();
        let seed = rand::random();
        let mut driver = Driver::new(servers.clone(), seed)?;
        let engine = driver.add_engine(engine);
        let mut signals = Signals::new([SIGHUP, SIGTERM, SIGINT])?;
        driver
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        driver
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(driver.registry(), VERIFIER)?);
        let login = login(Arc::new(move || {
            let _ = waker.wake();
        }));
        Ok(Daemon {
            driver,
            engine,
            retired: Vec::new(),
            running: config.clone(),
            config_path: None,
            service: Service::disabled(),
            heartbeat: Heartbeat::none(),
            listener,
            signals,
            clients: Slab::new(),
            waiting: HashMap::new(),
            delayed: Vec::new(),
            login,
            ready: Vec::new(),
            completions: Vec::new(),
            resolver: super::resolver::Resolver::new(Instant::now()),
            servers,
            host: config.host.clone(),
            balancing: config.balancing,
            trusted: AllowedUids::for_this_process(&config.trusted_uids),
            socket_path,
            next_generation: 1,
            accept_paused: false,
            scratch: vec![0; READ_CHUNK],
        })
    }

    /// Tells `service` when the daemon is ready, reloading and stopping, feeds its watchdog
    /// from this loop, and reloads `config_path` on SIGHUP.
    pub fn attach_service(&mut self, service: Service, config_path: PathBuf) {
        self.heartbeat = service.heartbeat("agent");
        self.service = service;
        self.config_path = Some(config_path);
    }

    /// Serves until SIGTERM or SIGINT. Servers coming and going never end it; only a failing
    /// poll does.
    pub fn run(&mut self) -> Result<(), DaemonError> {
        let mut external: Vec<ExternalEvent> = Vec::new();
        loop {
            external.clear();
            let wait = self
                .delayed
                .iter()
                .map(|(at, _, _)| at.saturating_duration_since(Instant::now()))
                .fold(SWEEP_INTERVAL, Duration::min);
            let wait = self.heartbeat.cap(Some(wait));
            self.driver.turn(wait, &mut external)?;
            self.heartbeat.beat(Instant::now());
            let mut stop = false;
            for event in &external {
                match event.token {
                    LISTENER => self.accept(),
                    SIGNALS => stop |= self.signalled(),
                    VERIFIER => self.verified(),
                    Token(t) => self.on_client_event(t.wrapping_sub(FIRST_CLIENT), event),
                }
            }
            self.release_delayed(Instant::now());
            self.deliver();
            self.serve_ready();
            self.sweep(Instant::now());
            if let Some(resolved) = self.resolver.poll(&self.running, Instant::now()) {
                let mut new = self.running.clone();
                new.set_resolved(resolved);
                super::resolver::log_unresolved(&new);
                let (now_known, all) = (new.server_addrs().len(), new.servers.len());
                self.apply(new);
                log::info!("servers resolved again: running with {now_known} of {all}");
            }
            if stop {
                log::info!("stopping; removing {}", self.socket_path.display());
                self.service.stopping("stopping");
                return Ok(());
            }
        }
    }

    /// Handles the signals that arrived; true when one asks to stop.
    fn signalled(&mut self) -> bool {
        let requests: Vec<SignalRequest> = self.signals.pending().filter_map(request_for).collect();
        let mut stop = false;
        for request in requests {
            match request {
                SignalRequest::Reload => {
                    log::info!("signal SIGHUP: reloading the config");
                    self.reload();
                }
                SignalRequest::Stop(name) => {
                    log::info!("signal {name}: stopping");
                    stop = true;
                }
            }
        }
        stop
    }

    fn accept(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_paused = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: retried on the next sweep.
                    log::warn!("accept on {}: {e}", self.socket_path.display());
                    self.accept_paused = true;
                    return;
                }
            };
            // The kernel's record of who connected; every request is checked against it.
            let uid = match peer_credentials(&stream) {
                Ok(peer) => peer.uid,
                Err(e) => {
                    log::warn!("a local caller's credentials are unknown ({e}); closing it");
                    continue;
                }
            };
            if self.clients.len() >= MAX_LOCAL_CLIENTS {
                log::warn!("{MAX_LOCAL_CLIENTS} local callers already connected; refusing one");
                let refusal = LocalResponse::Error {
                    kind: LocalErrorKind::TooManyClients,
                    message: format!("the agent serves at most {MAX_LOCAL_CLIENTS} callers"),
                };
                // Best effort: a small frame fits in a fresh socket's buffer.
                let _ = stream.write(&encode_response(&refusal));
                continue;
            }
            let entry = self.clients.vacant_entry();
            let slot = entry.key();
            let token = Token(FIRST_CLIENT + slot);
            if let Err(e) = self.driver.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("registering a local caller: {e}");
                continue;
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            entry.insert(LocalClient::new(stream, generation, uid, Instant::now()));
            self.ready.push(slot);
        }
    }

    fn on_client_event(&mut self, slot: usize, event: &ExternalEvent) {
        let Some(client) = self.clients.get_mut(slot) else {
            return;
        };
        if event.writable && client.flush().is_err() {
            return self.close(slot);
        }
        self.ready.push(slot);
        self.serve_ready();
    }

    /// Serves every client marked ready, including ones made ready meanwhile.
    fn serve_ready(&mut self) {
        while let Some(slot) = self.ready.pop() {
            self.serve(slot);
            self.deliver();
        }
    }

    /// Reads and handles this client's requests until it waits on the engine, has no complete
    /// frame, or is closed.
    fn serve(&mut self, slot: usize) {
        loop {
            let Some(client) = self.clients.get_mut(slot) else {
                return;
            };
            if client.closing {
                if client.outbuf.is_empty() {
                    self.close(slot);
                }
                return;
            }
            if client.pending {
                return;
            }
            let next = client
                .frames
                .next_body()
                .and_then(|body| body.map(|b| decode_request(&b)).transpose());
            match next {
                Ok(Some(request)) => self.handle(slot, request),
                Ok(None) => match client.read_some(&mut self.scratch) {
                    ReadResult::Data => {}
                    ReadResult::WouldBlock => return,
                    ReadResult::Closed => return self.close(slot),
                },
                Err(e) => {
                    log::warn!("local caller sent a bad frame ({e}); disconnecting it");
                    client.closing = true;
                    let kind = match e {
                        CodecError::Version(_) => LocalErrorKind::UnsupportedVersion,
                        _ => LocalErrorKind::BadRequest,
                    };
                    let error = LocalResponse::error(kind, e.to_string());
                    if client.send(&error).is_err() {
                        return self.close(slot);
                    }
                }
            }
        }
    }

    fn handle(&mut self, slot: usize, request: LocalRequest) {
        let now = Instant::now();
        let now_ms = unix_ms();
        let uid = self.clients.get(slot).map_or(u32::MAX, |c| c.uid);
        log::debug!("local request from uid {uid}: {request:?}");
        if let Err(message) = check_caller(&request, uid, &self.trusted) {
            log::warn!("local request refused: {message}");
            let refusal = LocalResponse::Error {
                kind: LocalErrorKind::PermissionDenied,
                message,
            };
            return self.answer(slot, &refusal, now);
        }
        let Some(mut wire) = to_wire(&request, &self.host) else {
            let status = self.driver.engine(self.engine).status(now);
            let report = status_report(
                &self.host,
                self.balancing,
                &status,
                &self.servers,
                self.clients.len(),
                self.login.report(now_ms),
            );
            return self.answer(slot, &LocalResponse::Status(Box::new(report)), now);
        };
        if let Err(why) = check_request(&wire) {
            wire.wipe_password();
            log::warn!("local request refused: {why}");
            let refusal = LocalResponse::Error {
                kind: LocalErrorKind::BadRequest,
                message: why,
            };
            return self.answer(slot, &refusal, now);
        }
        let pending = match self.login.before(&request, now_ms) {
            Before::Answer(answer) => return self.answer(slot, &answer, now),
            Before::Submit(pending) => pending,
        };
        let id = self.driver.submit(self.engine, wire);
        if let Some(client) = self.clients.get_mut(slot) {
            client.pending = true;
            client.last_active = now;
            self.waiting
                .insert((self.engine, id), (slot, client.generation, pending));
        }
        // A request the engine finished at once (queue full, nothing usable) is answered
        // now, before another submit could reuse its id.
        self.deliver();
    }

    /// Sends finished requests' answers to the callers still waiting for them.
    fn deliver(&mut self) {
        self.driver.take_completions(&mut self.completions);
        let now = Instant::now();
        for mut done in std::mem::take(&mut self.completions) {
            let waiting = self.waiting.remove(&(done.engine, done.request));
            let Some((slot, generation, pending)) = waiting else {
                if let Some(request) = done.outcome.request.as_mut() {
                    request.wipe_password();
                }
                continue;
            };
            let tag = (slot, generation);
            let servers = self.driver.servers_of(done.engine);
            let after = self
                .login
                .after(pending, &done.outcome, servers, tag, unix_ms());
            // The engine handed the request back: the daemon is its last holder (the verifier
            // thread got its own wiped copy, if any).
            if let Some(request) = done.outcome.request.as_mut() {
                request.wipe_password();
            }
            let response = match after {
                After::Answer(response) => response,
                // The verifier thread answers later; the caller stays pending.
                After::Wait => continue,
            };
            match &response {
                LocalResponse::Error { message, .. } => log::warn!(
                    "request failed after {:?} ({} redirects): {message}",
                    done.outcome.latency,
                    done.outcome.redirects
                ),
                other => log::debug!("answer after {:?}: {other:?}", done.outcome.latency),
            }
            self.answer_waiting(tag, &response, now);
        }
    }

    /// Answers the caller `tag` if it is still connected (it may have hung up meanwhile).
    fn answer_waiting(
        &mut self,
        (slot, generation): (usize, u64),
        response: &LocalResponse,
        now: Instant,
    ) {
        match self.clients.get_mut(slot) {
            Some(client) if client.generation == generation => {
                client.pending = false;
                self.answer(slot, response, now);
                self.ready.push(slot);
            }
            _ => {}
        }
    }

    /// Takes the verifier thread's results.
    fn verified(&mut self) {
        let now = Instant::now();
        while let Some(done) = self.login.next_done() {
            if let Some((tag, response, delay)) = self.login.verified(done, unix_ms()) {
                if delay.is_zero() {
                    self.answer_waiting(tag, &response, now);
                } else {
                    self.delayed.push((now + delay, tag, response));
                }
            }
        }
        self.serve_ready();
    }

    /// Sends the held-back answers whose time has come.
    fn release_delayed(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.delayed = later;
        for (_, tag, response) in due {
            self.answer_waiting(tag, &response, now);
        }
    }

    fn answer(&mut self, slot: usize, response: &LocalResponse, now: Instant) {
        let Some(client) = self.clients.get_mut(slot) else {
            return;
        };
        client.last_active = now;
        if client.send(response).is_err() {
            self.close(slot);
        }
    }

    fn close(&mut self, slot: usize) {
        if self.clients.contains(slot) {
            let mut client = self.clients.remove(slot);
            let _ = self.driver.registry().deregister(&mut client.stream);
        }
    }

    /// Closes idle callers and retries a paused accept.
    fn sweep(&mut self, now: Instant) {
        let idle: Vec<usize> = self
            .clients
            .iter()
            .filter(|(_, c)| {
                !c.pending && now.saturating_duration_since(c.last_active) > LOCAL_IDLE_TIMEOUT
            })
            .map(|(slot, _)| slot)
            .collect();
        for slot in idle {
            log::debug!("closing an idle local caller");
            self.close(slot);
        }
        if self.accept_paused {
            self.accept();
        }
    }
}
