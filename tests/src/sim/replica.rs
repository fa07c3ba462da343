//! One simulated replica: a FIFO queue in front of `workers` workers, the REAL
//! [`QueueEstimator`] fed exactly as the bridge feeds it, and a history of the load reports it
//! would have answered probes with, so agents can read reports that are some time old.
//!
//! Pure: virtual time is a `u64` of µs passed in by the caller ([`super::run`]).
//!
//! Fidelity to the bridge (replica/src/bridge/reactor/serve.rs and probes.rs):
//! - the estimator records `(queue time, service time)` when a request completes;
//! - a report and the redirect check use the exact current queue length (waiting, not in
//!   service) and the exact number in service;
//! - the report's fields are built like `Reactor::load_report` (connections and database
//!   fields are 0: the sim has neither).

use gatehouse_common::wire::probe::LoadReport;
use gatehouse_replica::bridge::estimator::{Estimate, QueueEstimator};
use std::collections::VecDeque;
use std::time::Duration;

/// A request as a replica sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Job {
    /// Position in the arrival sequence (requests before the warm-up are not measured).
    pub index: usize,
    /// When the agent sent it, µs.
    pub arrived_us: u64,
    /// When it entered this replica's queue, µs (equal to `arrived_us`: no network delay).
    pub enqueued_us: u64,
    /// How long a worker of this replica will spend on it, µs.
    pub service_us: u64,
}

/// A request that a worker finished: the completion event's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Done {
    pub job: Job,
    /// When a worker started it, µs.
    pub started_us: u64,
}

impl Done {
    /// When the worker finishes it, µs.
    pub fn finish_us(&self) -> u64 {
        self.started_us.saturating_add(self.job.service_us)
    }
}

/// One replica's state.
#[derive(Debug, Clone)]
pub struct SimReplica {
    workers: usize,
    waiting: VecDeque<Job>,
    in_service: usize,
    estimator: QueueEstimator,
    /// `(since µs, report)`, oldest first; the front is the newest report not newer than the
    /// last time asked for (older ones are dropped, since report times only move forward).
    history: VecDeque<(u64, LoadReport)>,
}

impl SimReplica {
    /// An idle replica at time 0 whose estimator assumes the bridge's default prior.
    pub fn new(workers: usize) -> Self {
        let mut replica = SimReplica {
            workers: workers.max(1),
            waiting: VecDeque::new(),
            in_service: 0,
            estimator: QueueEstimator::default(),
            history: VecDeque::new(),
        };
        replica.snapshot(0);
        replica
    }

    /// The estimate for a request arriving now (what the redirect check uses).
    pub fn estimate_now(&self) -> Estimate {
        self.estimator
            .estimate(self.waiting.len(), self.in_service, self.workers)
    }

    /// Queues `job`; returns its completion when a worker is free to start it at once.
    pub fn admit(&mut self, now_us: u64, job: Job) -> Option<Done> {
        let started = if self.in_service < self.workers {
            self.in_service += 1;
            Some(Done {
                job,
                started_us: now_us,
            })
        } else {
            self.waiting.push_back(job);
            None
        };
        self.snapshot(now_us);
        started
    }

    /// A worker finished `done`: record it in the estimator (as the bridge does on a worker's
    /// result) and start the next waiting job, returning its completion.
    pub fn complete(&mut self, now_us: u64, done: Done) -> Option<Done> {
        let queue_us = done.started_us.saturating_sub(done.job.enqueued_us);
        self.estimator.record(
            Duration::from_micros(queue_us),
            Duration::from_micros(done.job.service_us),
        );
        self.in_service = self.in_service.saturating_sub(1);
        let next = self.waiting.pop_front().map(|job| {
            self.in_service += 1;
            Done {
                job,
                started_us: now_us,
            }
        });
        self.snapshot(now_us);
        next
    }

    /// The report a probe would have got at `at_us`. Callers must ask with non-decreasing
    /// times (older history is dropped); asking for a time before the first state gives the
    /// first state.
    pub fn report_at(&mut self, at_us: u64) -> LoadReport {
        while self
            .history
            .get(1)
            .is_some_and(|&(since, _)| since <= at_us)
        {
            self.history.pop_front();
        }
        self.history
            .front()
            .map_or_else(|| self.report_now(), |&(_, report)| report)
    }

    /// Built like the bridge's `Reactor::load_report`.
    fn report_now(&self) -> LoadReport {
        let estimate = self.estimate_now();
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        LoadReport {
            recommended_wait_us: micros(estimate.recommended),
            seed_wait_us: micros(estimate.seed),
            queue_len: clamp(self.waiting.len()),
            in_service: clamp(self.in_service),
            workers: clamp(self.workers),
            mean_queue_us: micros(estimate.mean_queue),
            mean_service_us: micros(estimate.mean_service),
            ..LoadReport::default()
        }
    }

    fn snapshot(&mut self, now_us: u64) {
        let report = self.report_now();
        self.history.push_back((now_us, report));
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(index: usize, at: u64, service: u64) -> Job {
        Job {
            index,
            arrived_us: at,
            enqueued_us: at,
            service_us: service,
        }
    }

    #[test]
    fn a_busy_worker_queues_and_reports_lag_behind_by_the_asked_time() {
        let mut r = SimReplica::new(1);
        let first = r.admit(0, job(0, 0, 1000)).unwrap();
        assert_eq!(r.admit(10, job(1, 10, 1000)), None);
        // At 5 µs only the first request was there: 1 in service, 0 waiting.
        let early = r.report_at(5);
        assert_eq!((early.queue_len, early.in_service), (0, 1));
        // Prior 1 ms × (0 + 1 + 1) ahead-and-self / 1 worker.
        assert_eq!(early.recommended_wait_us, 2000);
        let second = r.complete(first.finish_us(), first).unwrap();
        assert_eq!(second.started_us, 1000);
        let late = r.report_at(1000);
        assert_eq!((late.queue_len, late.in_service), (0, 1));
        // The estimator saw one request: queued 0, served 1000 µs.
        assert_eq!((late.mean_queue_us, late.mean_service_us), (0, 1000));
    }
}
