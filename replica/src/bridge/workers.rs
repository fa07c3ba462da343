//! The worker pool (the seed's "servc" workers): a bounded queue in front of N threads that run
//! the request handler. Threads and channels live here; what a request means is the handler's
//! business (`RequestHandler`), so the pool serves the replica, the master and the tests alike.
//!
//! Every job is stamped when queued and its queue time measured when a worker takes it; the
//! result carries queue and service time back to the reactor, which owns the estimator. The
//! reactor is woken through `mio::Waker`, at most once per batch of results (an atomic flag).

use crossbeam_channel::{Receiver, Sender, TrySendError};
use gatehouse_common::wire::{Request, Response};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the workers call for each request. Implementations must be quick to clone-free share
/// (`Arc`) and must not panic on any request.
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers one request from the agent on `host` (already authenticated).
    fn handle(&self, host: &str, request: &Request) -> Response;
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
    pub request: Request,
    pub enqueued_at: Instant,
}

/// One finished request, on its way back to the reactor.
pub struct Done {
    pub conn: ConnId,
    pub request_id: u32,
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

/// The reactor's handle on the pool.
pub struct WorkerPool {
    jobs: Option<Sender<Job>>,
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
        let (jobs_tx, jobs_rx) = crossbeam_channel::bounded::<Job>(capacity);
        // Results are bounded by the jobs in the system (queue + one per worker), so an
        // unbounded channel here cannot grow without bound.
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
        let counters = Arc::new(PoolCounters::default());
        let mut threads = Vec::with_capacity(workers);
        for n in 0..workers {
            let (rx, tx) = (jobs_rx.clone(), done_tx.clone());
            let (handler, counters, waker) = (handler.clone(), counters.clone(), waker.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("servc-{n}"))
                    .spawn(move || work(rx, tx, &*handler, &counters, &waker, service_delay))?,
            );
        }
        Ok(WorkerPool {
            jobs: Some(jobs_tx),
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

    /// Queues a job without blocking; refuses when the queue is full (or stopped).
    pub fn try_submit(&self, job: Job) -> Result<(), QueueFull> {
        match self.jobs.as_ref() {
            Some(tx) => tx.try_send(job).map_err(|e| match e {
                TrySendError::Full(_) | TrySendError::Disconnected(_) => QueueFull,
            }),
            None => Err(QueueFull),
        }
    }

    /// Stops the workers after they finish the queue, and waits for them.
    pub fn shutdown(mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn work(
    jobs: Receiver<Job>,
    done: Sender<Done>,
    handler: &dyn RequestHandler,
    counters: &PoolCounters,
    waker: &mio::Waker,
    service_delay: Duration,
) {
    while let Ok(job) = jobs.recv() {
        counters.taken.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        if !service_delay.is_zero() {
            std::thread::sleep(service_delay);
        }
        let response = handler.handle(&job.host, &job.request);
        let finished = Instant::now();
        let result = Done {
            conn: job.conn,
            request_id: job.request_id,
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
