//! A load run: splits the agents over worker threads ([`super::worker`]), then collects their
//! once-a-second counters into one event per second and their totals into the final one.
//!
//! Not pure: it spawns threads. The caller (the `run` and `demo` subcommands, the tests) pulls
//! [`RunEvent`]s with [`Run::next`] and decides what to print. Dropping a `Run` stops its
//! workers and joins them.

use super::args::Mode;
use super::mix::Mix;
use super::provision::Identity;
use super::stats::Stats;
use super::worker::{run_worker, WorkerMsg, WorkerPlan, DRAIN_LIMIT};
use gatehouse_agent::balance::Balancing;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Delay between spawning the workers and the run's start (50 ms), so every thread has built
/// its engines before the first request and all threads' seconds line up.
const START_DELAY: Duration = Duration::from_millis(50);

/// What to run.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub servers: Vec<SocketAddr>,
    pub identities: Vec<Identity>,
    pub threads: usize,
    pub mode: Mode,
    pub duration: Duration,
    pub mix: Mix,
    pub balancing: Balancing,
    pub seed: u64,
}

/// What the run reports.
#[derive(Debug)]
pub enum RunEvent {
    /// Second `second` of the run is over: its counters from every worker, and the agent
    /// connections open at its end.
    Tick {
        second: u64,
        stats: Stats,
        connections: usize,
    },
    /// Every worker has finished: the totals and the time from start to the last answer.
    Done { stats: Stats, elapsed: Duration },
    /// A worker could not run (for example no UDP socket): the run is stopping.
    Failed(String),
}

/// A run under way.
pub struct Run {
    rx: Receiver<WorkerMsg>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    start: Instant,
    workers: usize,
    servers: usize,
    /// Seconds reported by some workers but not yet all: (stats, connections).
    pending: BTreeMap<u64, (Stats, usize)>,
    /// The last second each worker reported.
    reported: Vec<u64>,
    finals: usize,
    total: Stats,
    finished: Instant,
    /// When to give up waiting for the workers (they bound themselves; this is a backstop).
    give_up: Instant,
}

impl Run {
    /// Starts the workers. `stop` ends the run early when set (Ctrl-C).
    pub fn start(plan: RunPlan, stop: Arc<AtomicBool>) -> std::io::Result<Run> {
        let workers = plan.threads.clamp(1, plan.identities.len().max(1));
        let start = Instant::now() + START_DELAY;
        let (tx, rx) = channel();
        let mut handles = Vec::new();
        let rate = match plan.mode {
            Mode::Open { rate, .. } => rate,
            Mode::Closed { .. } => 0.0,
        };
        for w in 0..workers {
            // Agents w, w + workers, ... go to worker w, so each gets an even share.
            let identities: Vec<Identity> = plan
                .identities
                .iter()
                .skip(w)
                .step_by(workers)
                .cloned()
                .collect();
            let worker_plan = WorkerPlan {
                worker: w,
                servers: plan.servers.clone(),
                identities,
                mode: plan.mode,
                rate_share: rate / workers as f64,
                mix: plan.mix,
                balancing: plan.balancing,
                seed: plan.seed.wrapping_add(w as u64 * 0x9e37_79b9),
                start,
                duration: plan.duration,
            };
            let (tx, stop) = (tx.clone(), stop.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("loadgen-{w}"))
                    .spawn(move || run_worker(worker_plan, tx, stop))?,
            );
        }
        Ok(Run {
            rx,
            handles,
            stop,
            start,
            workers,
            servers: plan.servers.len(),
            pending: BTreeMap::new(),
            reported: vec![0; workers],
            finals: 0,
            total: Stats::new(plan.servers.len()),
            finished: start,
            give_up: start + plan.duration + DRAIN_LIMIT + Duration::from_secs(5),
        })
    }

    /// When the run started (second 0).
    pub fn start_time(&self) -> Instant {
        self.start
    }

    /// The next event, waiting at most `limit`; `None` when nothing happened in that time.
    pub fn next(&mut self, limit: Duration) -> Option<RunEvent> {
        let until = Instant::now() + limit;
        loop {
            if let Some(event) = self.ready() {
                return Some(event);
            }
            let now = Instant::now();
            if now >= self.give_up {
                self.stop.store(true, Ordering::Relaxed);
                return Some(RunEvent::Failed(
                    "workers did not finish in time".to_string(),
                ));
            }
            let wait = until.min(self.give_up).saturating_duration_since(now);
            if wait.is_zero() {
                return None;
            }
            match self.rx.recv_timeout(wait) {
                Ok(msg) => {
                    if let Some(event) = self.absorb(msg) {
                        return Some(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    return Some(RunEvent::Failed("a worker thread died".to_string()));
                }
            }
        }
    }

    fn absorb(&mut self, msg: WorkerMsg) -> Option<RunEvent> {
        match msg {
            WorkerMsg::Tick {
                worker,
                second,
                stats,
                connections,
            } => {
                let entry = self
                    .pending
                    .entry(second)
                    .or_insert_with(|| (Stats::new(self.servers), 0));
                entry.0.merge(&stats);
                entry.1 += connections;
                if let Some(r) = self.reported.get_mut(worker) {
                    *r = second;
                }
                None
            }
            WorkerMsg::Final {
                worker,
                stats,
                finished,
            } => {
                self.total.merge(&stats);
                self.finished = self.finished.max(finished);
                self.finals += 1;
                if let Some(r) = self.reported.get_mut(worker) {
                    *r = u64::MAX;
                }
                None
            }
            WorkerMsg::Failed { error, .. } => {
                self.stop.store(true, Ordering::Relaxed);
                Some(RunEvent::Failed(error))
            }
        }
    }

    /// A second every worker has reported (or moved past), or the end.
    fn ready(&mut self) -> Option<RunEvent> {
        let done_to = self.reported.iter().copied().min().unwrap_or(u64::MAX);
        if let Some(entry) = self.pending.first_entry() {
            if *entry.key() <= done_to {
                let second = *entry.key();
                let (stats, connections) = entry.remove();
                return Some(RunEvent::Tick {
                    second,
                    stats,
                    connections,
                });
            }
        }
        if self.finals == self.workers {
            self.finals += 1; // report Done once
            let stats = std::mem::replace(&mut self.total, Stats::new(0));
            return Some(RunEvent::Done {
                stats,
                elapsed: self.finished.saturating_duration_since(self.start),
            });
        }
        None
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
