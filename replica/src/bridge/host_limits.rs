//! Per-host bookkeeping of queued work, for fairness and as a second line against password
//! guessing: each host's requests queued or in service (the fair queue's share of the predicted
//! wait), and for password checks a cap on those in flight and a token bucket per second.
//!
//! Pure: `now` is passed in. Owned by the reactor, which asks before queueing a request
//! ([`HostLimits::admit_password_check`], [`HostLimits::jobs_ahead`]) and reports each job
//! queued and done. Memory: an entry per host with work in flight or a bucket still refilling
//! (a few seconds after its last password check), so bounded by the hosts connected; idle
//! entries are swept at most once per [`SWEEP_INTERVAL`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often entries of idle hosts are dropped: 10 s (sweeping walks every entry).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// The per-host limits on password checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordLimits {
    /// Password checks one host may have queued or in service at once.
    pub in_flight: usize,
    /// Password checks one host may start per second, on average (above 0).
    pub per_second: u32,
    /// Password checks one host may start at once after a quiet spell (the bucket's size).
    pub burst: u32,
}

/// Why a password check was not queued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// The host already has `in_flight` password checks queued or in service.
    InFlight,
    /// The host used its rate; the bucket has a check again after this long.
    Rate { retry_after: Duration },
}

#[derive(Debug)]
struct HostLoad {
    /// Requests of this host queued or in service (all kinds).
    jobs: usize,
    /// Of `jobs`, the password checks.
    password_checks: usize,
    tokens: f64,
    refilled_at: Instant,
}

/// Every host's load and buckets.
#[derive(Debug)]
pub struct HostLimits {
    limits: PasswordLimits,
    hosts: HashMap<Arc<str>, HostLoad>,
    /// Hosts with `jobs > 0`.
    active: usize,
    next_sweep: Option<Instant>,
}

impl HostLimits {
    pub fn new(limits: PasswordLimits) -> Self {
        HostLimits {
            limits,
            hosts: HashMap::new(),
            active: 0,
            next_sweep: None,
        }
    }

    /// New limits (a reload), for the checks from now on.
    pub fn set_limits(&mut self, limits: PasswordLimits) {
        self.limits = limits;
    }

    /// Whether `host` may queue a password check now; on `Ok` a token is spent (report the
    /// job with [`HostLimits::queued`]).
    pub fn admit_password_check(&mut self, host: &Arc<str>, now: Instant) -> Result<(), Refusal> {
        let limits = self.limits;
        let load = self.load(host, now);
        if load.password_checks >= limits.in_flight {
            return Err(Refusal::InFlight);
        }
        let elapsed = now
            .saturating_duration_since(load.refilled_at)
            .as_secs_f64();
        load.tokens =
            (load.tokens + elapsed * f64::from(limits.per_second)).min(f64::from(limits.burst));
        load.refilled_at = now;
        if load.tokens < 1.0 {
            let wait = (1.0 - load.tokens) / f64::from(limits.per_second);
            return Err(Refusal::Rate {
                retry_after: Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX),
            });
        }
        load.tokens -= 1.0;
        Ok(())
    }

    /// A job of `host` was queued.
    pub fn queued(&mut self, host: &Arc<str>, password_check: bool, now: Instant) {
        let load = self.load(host, now);
        load.jobs += 1;
        load.password_checks += usize::from(password_check);
        if load.jobs == 1 {
            self.active += 1;
        }
    }

    /// A job of `host` finished (answered, or its agent left).
    pub fn done(&mut self, host: &str, password_check: bool) {
        if let Some(load) = self.hosts.get_mut(host) {
            load.jobs = load.jobs.saturating_sub(1);
            if password_check {
                load.password_checks = load.password_checks.saturating_sub(1);
            }
            if load.jobs == 0 {
                self.active = self.active.saturating_sub(1);
            }
        }
    }

    /// About how many queued jobs a new one of `host` waits behind: the queue serves hosts in
    /// turn, so each host with work ahead contributes at most as many jobs as `host` has
    /// ahead plus one, and never more than `queue_len` in all. An upper bound that costs O(1).
    pub fn jobs_ahead(&self, host: &str, queue_len: usize) -> usize {
        let own = self.hosts.get(host).map_or(0, |l| l.jobs);
        let others = self.active - usize::from(own > 0);
        queue_len.min(own + others * (own + 1))
    }

    /// Drops the entries of hosts with nothing in flight whose bucket has refilled, at most
    /// once per [`SWEEP_INTERVAL`].
    pub fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.next_sweep = Some(now + SWEEP_INTERVAL);
        let limits = self.limits;
        self.hosts.retain(|_, load| {
            let elapsed = now
                .saturating_duration_since(load.refilled_at)
                .as_secs_f64();
            load.jobs > 0
                || load.tokens + elapsed * f64::from(limits.per_second) < f64::from(limits.burst)
        });
    }

    /// Hosts with an entry (for tests and stats).
    pub fn tracked(&self) -> usize {
        self.hosts.len()
    }

    fn load(&mut self, host: &Arc<str>, now: Instant) -> &mut HostLoad {
        let burst = f64::from(self.limits.burst);
        self.hosts.entry(host.clone()).or_insert_with(|| HostLoad {
            jobs: 0,
            password_checks: 0,
            tokens: burst,
            refilled_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PasswordLimits = PasswordLimits {
        in_flight: 3,
        per_second: 10,
        burst: 5,
    };

    #[test]
    fn a_host_gets_its_burst_then_its_rate_and_other_hosts_are_untouched() {
        let mut limits = HostLimits::new(PasswordLimits {
            in_flight: 100,
            ..LIMITS
        });
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limits.admit_password_check(&a, t0), Ok(()));
        }
        assert_eq!(
            limits.admit_password_check(&a, t0),
            Err(Refusal::Rate {
                retry_after: Duration::from_millis(100)
            })
        );
        assert_eq!(limits.admit_password_check(&b, t0), Ok(()));
        // 10 per second: one more every 100 ms.
        let later = t0 + Duration::from_millis(250);
        assert_eq!(limits.admit_password_check(&a, later), Ok(()));
        assert_eq!(limits.admit_password_check(&a, later), Ok(()));
        assert!(matches!(
            limits.admit_password_check(&a, later),
            Err(Refusal::Rate { retry_after }) if retry_after == Duration::from_millis(50)
        ));
    }

    #[test]
    fn a_host_has_at_most_its_cap_of_password_checks_in_flight() {
        let mut limits = HostLimits::new(LIMITS);
        let a: Arc<str> = "a".into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limits.admit_password_check(&a, t0), Ok(()));
            limits.queued(&a, true, t0);
        }
        // Authorize requests through the queue do not count against it.
        limits.queued(&a, false, t0);
        assert_eq!(limits.admit_password_check(&a, t0), Err(Refusal::InFlight));
        limits.done("a", true);
        assert_eq!(limits.admit_password_check(&a, t0), Ok(()));
    }

    #[test]
    fn jobs_ahead_follow_the_turns_of_the_fair_queue() {
        let mut limits = HostLimits::new(LIMITS);
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        let t0 = Instant::now();
        for _ in 0..40 {
            limits.queued(&a, false, t0);
        }
        // A flood of 40 from a: a new job of b waits behind one of a's, not forty.
        assert_eq!(limits.jobs_ahead("b", 40), 1);
        assert_eq!(limits.jobs_ahead("a", 40), 40);
        limits.queued(&b, false, t0);
        limits.queued(&c, false, t0);
        // c has one queued: its next waits behind two of a's, b's one and its own.
        assert_eq!(limits.jobs_ahead("c", 42), 1 + 2 * 2);
        // Never more than the queue holds.
        assert_eq!(limits.jobs_ahead("c", 3), 3);
        for _ in 0..40 {
            limits.done("a", false);
        }
        assert_eq!(limits.jobs_ahead("b", 2), 2);
    }

    #[test]
    fn idle_hosts_are_forgotten_once_their_bucket_has_refilled() {
        let mut limits = HostLimits::new(LIMITS);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let t0 = Instant::now();
        limits.admit_password_check(&a, t0).unwrap();
        limits.admit_password_check(&b, t0).unwrap();
        limits.queued(&b, true, t0);
        limits.sweep(t0);
        assert_eq!(limits.tracked(), 2, "a's bucket is not full yet");
        let later = t0 + SWEEP_INTERVAL;
        limits.sweep(later);
        assert_eq!(limits.tracked(), 1, "b still has a job in flight");
        limits.done("b", true);
        limits.sweep(later + Duration::from_secs(1));
        assert_eq!(limits.tracked(), 1, "at most one sweep per interval");
        limits.sweep(later + SWEEP_INTERVAL);
        assert_eq!(limits.tracked(), 0);
    }
}
