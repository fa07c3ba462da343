//! The worker pool (the seed's "servc" workers): a bounded queue in front of N threads that run
//! the request handler. The queue serves hosts in turn ([`FairQueue`]): one host's flood of
//! password checks delays another host's request by at most one of its own per turn. Threads and channels live here; what a request means is the handler's
//! business (`RequestHandler`), so the pool serves the replica, the master and the tests alike.
//!
//! Every job is stamped when queued and its queue time measured when a worker takes it; the
//! result carries queue and service time back to the reactor, which owns the estimator. The
//! reactor is woken through `mio::Waker`, at most once per batch of results (an atomic flag).
//!
//! Wake-ups are batched both ways, because on a busy replica (and always when the process is
//! pinned to one core) every futex wake and every eventfd write is a context switch: the
//! reactor accepts jobs into a staging list during its loop turn ([`WorkerPool::try_submit`],
//! which already counts them against the queue's capacity) and hands the whole batch over
//! with one lock and at most one wake-up ([`WorkerPool::flush`], once per turn or every
//! [`STAGE_BATCH`] jobs). A worker that takes a job while more wait and another worker sleeps
//! wakes that one, so a batch still spreads over every worker.

use super::fair_queue::FairQueue;
use super::stats::RequestKind;
use crossbeam_channel::{Receiver, Sender};
use gatehouse_common::wire::{Request, RequestView, Response};
use parking_lot::{Condvar, Mutex};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Who asked: the agent's host, proven by its node key in the handshake, and the address its
/// connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller<'a> {
    pub host: &'a str,
    pub address: SocketAddr,
}

/// What the workers call for each request. Implementations must be quick to clone-free share
/// (`Arc`) and must not panic on any request.
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers one request from `caller` (already authenticated) at wall-clock time `now`
    /// (the reactor reads the clock once per turn for the requests it answers).
    fn handle(&self, caller: Caller<'_>, request: RequestView<'_>, now: SystemTime) -> Response;

    /// True for a request answered in microseconds without blocking (a policy decision), which
    /// the reactor may answer on its own thread: handing it to a worker would cost more than
    /// the work. False (the default) sends it through the queue.
    fn is_cheap(&self, _request: RequestView<'_>) -> bool {
        false
    }

    /// True for a password check: tens of milliseconds of argon2 each, and what a password
    /// guesser sends. The reactor limits these per host (in flight and per second) and the
    /// queue serves hosts in turn, so one host's flood cannot delay the others'. False (the
    /// default): only the queue's fairness applies.
    fn is_password_check(&self, _request: RequestView<'_>) -> bool {
        false
    }
}

/// Runs the handler, turning a panic into an `Internal` error: a handler that panics must not
/// kill the thread it runs on (a worker, or the reactor for cheap requests); the agent gets an
/// error and goes elsewhere.
pub fn handle_guarded(
    handler: &dyn RequestHandler,
    caller: Caller<'_>,
    request: RequestView<'_>,
    now: SystemTime,
) -> Response {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handler.handle(caller, request, now)
    }))
    .unwrap_or_else(|_| {
        log::error!("request handler panicked on a request from {}", caller.host);
        Response::Error(gatehouse_common::wire::WireError::new(
            gatehouse_common::types::ErrorCode::Internal,
            "internal error, go elsewhere",
        ))
    })
}

/// What a request still borrowing its frame becomes.
pub enum InPlace {
    /// Answered at once, on the thread that read it.
    Answered(Response),
    /// Copied out of the frame, for the workers' queue.
    Queue(Request),
}

/// The reactor's choice for a request read in place: with `inline` (the handler, when cheap
/// requests are answered on the reactor thread and the replica is not draining), a cheap
/// request from a proven `caller` is answered now — nothing is allocated; any other request
/// is copied so that it outlives the frame.
pub fn answer_in_place(
    inline: Option<&dyn RequestHandler>,
    caller: Option<Caller<'_>>,
    request: RequestView<'_>,
    now: SystemTime,
) -> InPlace {
    match (inline.filter(|h| h.is_cheap(request)), caller) {
        (Some(handler), Some(caller)) => {
            InPlace::Answered(handle_guarded(handler, caller, request, now))
        }
        _ => InPlace::Queue(request.into_owned()),
    }
}

/// Identifies a connection across slot reuse: slab index plus generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub index: usize,
    pub generation: u64,
}

/// One queued request.
pub struct Job {
    pub conn: ConnId,
    pub request_id: u32,
    pub host: Arc<str>,
    /// The connection's peer address.
    pub peer: SocketAddr,
    pub request: Request,
    /// A password check (`RequestHandler::is_password_check`), counted per host.
    pub password_check: bool,
    /// For the metrics.
    pub kind: RequestKind,
    pub enqueued_at: Instant,
}

/// One finished request, on its way back to the reactor.
pub struct Done {
    pub conn: ConnId,
    pub request_id: u32,
    /// The job's host and kind, for the reactor's per-host counts.
    pub host: Arc<str>,
    pub password_check: bool,
    pub kind: RequestKind,
    pub response: Response,
    pub queue_time: Duration,
    pub service_time: Duration,
}

/// The queue had no room: the request is answered "busy, go elsewhere".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// Counters shared between the reactor and the workers.
#[derive(Default)]
pub struct PoolCounters {
    /// Jobs taken off the queue by workers (queue length = enqueued − taken).
    pub taken: AtomicU64,
    /// Set by a worker that woke the reactor; cleared by the reactor before it drains results.
    pub wake_pending: AtomicBool,
}

/// Jobs staged by the reactor before it hands them to the workers: enough that a busy turn
/// costs one wake-up per 64 requests, few enough that on a multi-core machine a worker starts
/// on the first of them while the reactor is still reading (64 authorize jobs are about 0.3 ms
/// of work).
pub const STAGE_BATCH: usize = 64;

/// The queue the workers take jobs from, shared between the reactor and the workers.
struct Shared {
    state: Mutex<QueueState>,
    /// Signalled when jobs arrive or the queue closes.
    ready: Condvar,
}

struct QueueState {
    jobs: FairQueue<Job>,
    /// Workers blocked in `ready.wait` (only those need a wake-up).
    sleeping: usize,
    /// No more jobs will come: workers finish the queue and exit.
    closed: bool,
}

/// The reactor's handle on the pool.
pub struct WorkerPool {
    shared: Arc<Shared>,
    /// Accepted jobs not yet handed to the workers (part of the queue for every count).
    staged: Vec<Job>,
    /// Jobs accepted so far (staged or handed over); queue length = this − `taken`.
    accepted: u64,
    capacity: usize,
    stopped: bool,
    pub done: Receiver<Done>,
    pub counters: Arc<PoolCounters>,
    threads: Vec<JoinHandle<()>>,
    workers: usize,
}

impl WorkerPool {
    /// Starts `workers` threads behind a queue of `capacity` jobs.
    pub fn start(
        workers: usize,
        capacity: usize,
        handler: Arc<dyn RequestHandler>,
        service_delay: Duration,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(QueueState {
                jobs: FairQueue::default(),
                sleeping: 0,
                closed: false,
            }),
            ready: Condvar::new(),
        });
        // Results are bounded by the jobs in the system (queue + one per worker), so an
        // unbounded channel here cannot grow without bound.
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
        let counters = Arc::new(PoolCounters::default());
        let mut threads = Vec::with_capacity(workers);
        for n in 0..workers {
            let (queue, tx) = (shared.clone(), done_tx.clone());
            let (handler, counters, waker) = (handler.clone(), counters.clone(), waker.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("servc-{n}"))
                    .spawn(move || work(&queue, tx, &*handler, &counters, &waker, service_delay))?,
            );
        }
        Ok(WorkerPool {
            shared,
            staged: Vec::with_capacity(STAGE_BATCH),
            accepted: 0,
            capacity,
            stopped: false,
            done: done_rx,
            counters,
            threads,
            workers,
        })
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queues a job without blocking; refuses when the queue is full (or stopped). The job is
    /// staged: it reaches the workers at the next [`WorkerPool::flush`], which happens at
    /// once when [`STAGE_BATCH`] jobs are staged.
    pub fn try_submit(&mut self, job: Job) -> Result<(), QueueFull> {
        if self.stopped || self.queue_len() >= self.capacity {
            return Err(QueueFull);
        }
        self.accepted += 1;
        self.staged.push(job);
        if self.staged.len() >= STAGE_BATCH {
            self.flush();
        }
        Ok(())
    }

    /// Jobs accepted and not yet taken by a worker (staged ones included).
    pub fn queue_len(&self) -> usize {
        let taken = self.counters.taken.load(Ordering::Acquire);
        self.accepted.saturating_sub(taken) as usize
    }

    /// Hands the staged jobs to the workers: one lock, and one wake-up if a worker sleeps
    /// (that worker wakes the next if more jobs wait). The reactor calls this once per turn.
    pub fn flush(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let wake = {
            let mut state = self.shared.state.lock();
            for job in self.staged.drain(..) {
                let host = job.host.clone();
                state.jobs.push(&host, job);
            }
            state.sleeping > 0
        };
        if wake {
            self.shared.ready.notify_one();
        }
    }

    /// Stops the workers after they finish the queue, and waits for them.
    pub fn shutdown(mut self) {
        self.flush();
        self.stopped = true;
        self.shared.state.lock().closed = true;
        self.shared.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerPool {
    /// Dropped without `shutdown` (the process is exiting with connections open): the
    /// workers finish what they have and exit instead of sleeping forever.
    fn drop(&mut self) {
        self.shared.state.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

/// Takes the next job, sleeping while there is none; `None` once the queue is closed and empty.
fn next_job(queue: &Shared) -> Option<Job> {
    let mut state = queue.state.lock();
    loop {
        if let Some(job) = state.jobs.pop() {
            // More work and an idle colleague: pass the wake-up on (one per worker needed).
            if !state.jobs.is_empty() && state.sleeping > 0 {
                queue.ready.notify_one();
            }
            return Some(job);
        }
        if state.closed {
            return None;
        }
        state.sleeping += 1;
        queue.ready.wait(&mut state);
        state.sleeping -= 1;
    }
}

fn work(
    queue: &Shared,
    done: Sender<Done>,
    handler: &dyn RequestHandler,
    counters: &PoolCounters,
    waker: &mio::Waker,
    service_delay: Duration,
) {
    while let Some(mut job) = next_job(queue) {
        counters.taken.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        if !service_delay.is_zero() {
            std::thread::sleep(service_delay);
        }
        let caller = Caller {
            host: &job.host,
            address: job.peer,
        };
        let response = handle_guarded(handler, caller, job.request.view(), SystemTime::now());
        // The worker is the request's last holder: no password outlives its check.
        job.request.wipe_password();
        let finished = Instant::now();
        let result = Done {
            conn: job.conn,
            request_id: job.request_id,
            host: job.host,
            password_check: job.password_check,
            kind: job.kind,
            response,
            queue_time: started.saturating_duration_since(job.enqueued_at),
            service_time: finished.saturating_duration_since(started),
        };
        if done.send(result).is_err() {
            return; // the reactor is gone
        }
        if !counters.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = waker.wake() {
                log::error!("worker could not wake the reactor: {e}");
            }
        }
    }
}
