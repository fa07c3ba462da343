//! One load-generator thread: a [`Driver`] hosting one real agent [`Engine`] per simulated
//! identity, issuing requests closed-loop (each agent resubmits when answered, after a think
//! time) or open-loop (arrivals at a rate, spread round-robin over the agents), and sending its
//! counters to the collector once a second.
//!
//! Not pure: it owns sockets and reads the clock (it is the I/O shell of the load generator).
//! Every loop is bounded: issuing stops at the run's end, the drain after it at
//! [`DRAIN_LIMIT`], and one turn issues at most [`MAX_ISSUES_PER_TURN`] requests. Called by
//! [`super::run`].

use super::args::Mode;
use super::arrivals::Arrivals;
use super::mix::{Kind, Mix, RequestPool};
use super::provision::Identity;
use super::stats::{ErrorKind, Stats};
use gatehouse_agent::balance::Balancing;
use gatehouse_agent::config as defaults;
use gatehouse_agent::driver::{Completion, Driver};
use gatehouse_agent::engine::{Engine, EngineConfig, RequestId};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After the run's end, how long outstanding requests may take to finish (6 s): the agent's
/// request deadline (5 s) plus a second, so every request ends by its own deadline first.
pub const DRAIN_LIMIT: Duration =
    Duration::from_millis(defaults::DEFAULT_REQUEST_DEADLINE_MS + 1000);
/// After Ctrl-C, how long outstanding requests may take (1 s): the user wants out.
pub const STOP_DRAIN: Duration = Duration::from_secs(1);
/// Longest ramp over which the agents start (1 s, at most a quarter of the run), so thousands
/// of agents do not all probe and connect in the same millisecond.
pub const MAX_RAMP: Duration = Duration::from_secs(1);
/// Closed loop: pause before an agent resubmits after an error (100 ms), so a run against a
/// dead server does not spin.
pub const ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Requests one turn of the loop may issue (default 10 000), so the loop also reads answers.
pub const MAX_ISSUES_PER_TURN: usize = 10_000;
/// Longest single wait in the driver (100 ms), so the stop flag is seen promptly.
const MAX_TURN_WAIT: Duration = Duration::from_millis(100);
const TICK: Duration = Duration::from_secs(1);

/// What a worker tells the collector.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Counters for second `second` (1-based) of the run.
    Tick {
        worker: usize,
        second: u64,
        stats: Stats,
        connections: usize,
    },
    /// Everything the worker counted, and when its last request finished.
    Final {
        worker: usize,
        stats: Stats,
        finished: Instant,
    },
    Failed {
        worker: usize,
        error: String,
    },
}

/// One worker's share of the run.
pub struct WorkerPlan {
    pub worker: usize,
    pub servers: Vec<SocketAddr>,
    pub identities: Vec<Identity>,
    pub mode: Mode,
    /// This worker's share of an open-loop rate.
    pub rate_share: f64,
    pub mix: Mix,
    pub balancing: Balancing,
    pub seed: u64,
    pub start: Instant,
    pub duration: Duration,
}

/// Simulated agents per worker thread that keep their cipher built between frames, as a real
/// agent does (`EngineConfig::prepare_cipher`): about 2 KiB each, so at most 2 MiB per worker
/// however many agents it simulates; the rest build it per frame.
pub const PREPARED_AGENTS_PER_WORKER: usize = 1024;

/// Whether the simulated agent at `index` in its worker (or lean client) keeps its cipher
/// built: the first [`PREPARED_AGENTS_PER_WORKER`] do.
pub fn keeps_cipher_built(index: usize) -> bool {
    index < PREPARED_AGENTS_PER_WORKER
}

struct Worker {
    plan: WorkerPlan,
    driver: Driver,
    rng: StdRng,
    /// Per agent: requests outstanding and their kinds.
    outstanding: Vec<Vec<(RequestId, Kind)>>,
    /// Answered requests, reused for the next submits.
    requests: RequestPool,
    in_flight: usize,
    /// Closed loop: when each agent next submits.
    schedule: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Open loop: the arrivals' schedule (None in closed loop).
    arrivals: Option<Arrivals>,
    /// Open loop: the agents whose arrivals are due this turn (reused; at most
    /// [`MAX_ISSUES_PER_TURN`]).
    due: Vec<usize>,
    interval: Stats,
    total: Stats,
    last_finish: Instant,
}

/// Runs one worker to the end; reports through `tx`.
pub fn run_worker(plan: WorkerPlan, tx: Sender<WorkerMsg>, stop: Arc<AtomicBool>) {
    let worker = plan.worker;
    let msg = match Worker::new(plan) {
        Ok(mut w) => w.run(&tx, &stop),
        Err(e) => WorkerMsg::Failed {
            worker,
            error: e.to_string(),
        },
    };
    let _ = tx.send(msg);
}

impl Worker {
    fn new(plan: WorkerPlan) -> std::io::Result<Worker> {
        let mut driver = Driver::new(plan.servers.clone(), plan.seed)?;
        for (n, id) in plan.identities.iter().enumerate() {
            // The agent's documented defaults, with the cipher kept built for a bounded number.
            let servers = plan.servers.len();
            let mut config =
                EngineConfig::with_defaults(&id.host, id.key.clone(), servers, plan.balancing);
            config.prepare_cipher = keeps_cipher_built(n);
            driver.add_engine(Engine::new(config));
        }
        let n = plan.identities.len();
        let ramp = MAX_RAMP.min(plan.duration / 4);
        let mut schedule = BinaryHeap::new();
        if let Mode::Closed { concurrency, .. } = plan.mode {
            for agent in 0..n {
                let at = plan.start + ramp.mul_f64(agent as f64 / n.max(1) as f64);
                for _ in 0..concurrency {
                    schedule.push(Reverse((at, agent)));
                }
            }
        }
        let servers = plan.servers.len();
        let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x6c6f_6164);
        let arrivals = match plan.mode {
            Mode::Open { poisson, .. } => Some(Arrivals::new(
                plan.start,
                plan.rate_share,
                poisson,
                n,
                &mut rng,
            )),
            Mode::Closed { .. } => None,
        };
        Ok(Worker {
            arrivals,
            due: Vec::new(),
            last_finish: plan.start,
            plan,
            driver,
            rng,
            outstanding: vec![Vec::new(); n],
            requests: RequestPool::new(n),
            in_flight: 0,
            schedule,
            interval: Stats::new(servers),
            total: Stats::new(servers),
        })
    }

    fn run(&mut self, tx: &Sender<WorkerMsg>, stop: &AtomicBool) -> WorkerMsg {
        let start = self.plan.start;
        let mut end = start + self.plan.duration;
        let mut hard_stop = end + DRAIN_LIMIT;
        let mut next_tick = start + TICK;
        let mut second = 1;
        let mut done = Vec::new();
        let mut external = Vec::new();
        loop {
            let now = Instant::now();
            if stop.load(Ordering::Relaxed) && now < end {
                end = now;
                hard_stop = now + STOP_DRAIN;
            }
            let issuing = now < end;
            if issuing {
                self.issue_due(now);
            } else if self.in_flight == 0 {
                break;
            }
            if now >= hard_stop {
                self.interval
                    .error(ErrorKind::Unfinished, self.in_flight as u64);
                break;
            }
            let next = match &self.arrivals {
                None => self.schedule.peek().map(|Reverse((at, _))| *at),
                Some(arrivals) => Some(arrivals.next_at()),
            };
            let wake = [
                next.filter(|_| issuing),
                Some(next_tick),
                Some(end),
                Some(hard_stop),
            ]
            .into_iter()
            .flatten()
            .filter(|&t| t > now)
            .min()
            .unwrap_or(now);
            let wait = wake.saturating_duration_since(now).min(MAX_TURN_WAIT);
            if let Err(e) = self.driver.turn(Some(wait), &mut external) {
                return WorkerMsg::Failed {
                    worker: self.plan.worker,
                    error: format!("event loop: {e}"),
                };
            }
            self.driver.take_completions(&mut done);
            let now = Instant::now();
            for c in done.drain(..) {
                self.complete(c, now, now < end);
            }
            if now >= next_tick && now < end {
                let stats =
                    std::mem::replace(&mut self.interval, Stats::new(self.plan.servers.len()));
                self.total.merge(&stats);
                let _ = tx.send(WorkerMsg::Tick {
                    worker: self.plan.worker,
                    second,
                    stats,
                    connections: self.driver.open_connections(),
                });
                // A worker that fell behind skips seconds rather than reporting them late.
                while next_tick <= now {
                    next_tick += TICK;
                    second += 1;
                }
            }
        }
        self.total.merge(&self.interval);
        WorkerMsg::Final {
            worker: self.plan.worker,
            stats: std::mem::replace(&mut self.total, Stats::new(0)),
            finished: self.last_finish,
        }
    }

    fn issue(&mut self, agent: usize) {
        let kind = self.plan.mix.pick(&mut self.rng);
        let host = &self.driver.engine(agent).config().host;
        let request = self.requests.take(kind, host);
        let id = self.driver.submit(agent, request);
        // A full queue answers at once with this id (counted when its completion is read).
        if id != RequestId(u64::MAX) {
            if let Some(list) = self.outstanding.get_mut(agent) {
                list.push((id, kind));
                self.in_flight += 1;
            }
        }
    }

    fn issue_due(&mut self, now: Instant) {
        if let Some(arrivals) = self.arrivals.as_mut() {
            let due = &mut self.due;
            let skipped = arrivals.take_due(now, MAX_ISSUES_PER_TURN, &mut self.rng, |agent| {
                due.push(agent)
            });
            if skipped > 0 {
                self.interval.error(ErrorKind::GeneratorBehind, skipped);
            }
            let mut due = std::mem::take(&mut self.due);
            for agent in due.drain(..) {
                self.issue(agent);
            }
            self.due = due;
            return;
        }
        let mut issued = 0;
        while issued < MAX_ISSUES_PER_TURN {
            match self.schedule.peek() {
                Some(&Reverse((at, agent))) if at <= now => {
                    self.schedule.pop();
                    self.issue(agent);
                    issued += 1;
                }
                _ => break,
            }
        }
    }

    fn complete(&mut self, mut c: Completion, now: Instant, issuing: bool) {
        let kind = self.outstanding.get_mut(c.engine).and_then(|list| {
            let pos = list.iter().position(|(id, _)| *id == c.request)?;
            Some(list.swap_remove(pos).1)
        });
        if kind.is_some() {
            self.in_flight -= 1;
            self.last_finish = now;
        }
        if let (Some(kind), Some(request)) = (kind, c.outcome.request.take()) {
            self.requests.give_back(kind, request);
        }
        let latency_us = u64::try_from(c.outcome.latency.as_micros()).unwrap_or(u64::MAX);
        self.interval.redirects += u64::from(c.outcome.redirects);
        let failed = match &c.outcome.result {
            Ok(response) => {
                let expected = kind.is_some_and(|k| k.expects(response));
                self.interval
                    .answered(c.outcome.server, latency_us, expected);
                !expected
            }
            Err(e) => {
                self.interval.error(ErrorKind::of(e), 1);
                true
            }
        };
        if let (Mode::Closed { think, .. }, true) = (self.plan.mode, issuing) {
            let pause = if failed {
                think.max(ERROR_PAUSE)
            } else {
                think
            };
            self.schedule.push(Reverse((now + pause, c.engine)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The load generator's memory bound: the first 1024 simulated agents of a worker keep
    /// their cipher built (~2 KiB each, at most 2 MiB), every later one builds it per frame.
    #[test]
    fn only_the_first_agents_of_a_worker_keep_their_cipher_built() {
        assert!(keeps_cipher_built(0));
        assert!(keeps_cipher_built(PREPARED_AGENTS_PER_WORKER - 1));
        assert!(!keeps_cipher_built(PREPARED_AGENTS_PER_WORKER));
        let prepared = (0..5000).filter(|&i| keeps_cipher_built(i)).count();
        assert_eq!(prepared, 1024);
    }
}
