//! Counters for a load run: latency histogram (µs), answers as expected, redirects, errors by
//! kind, and per-server requests and latency. One `Stats` per thread per second, merged into
//! the run's totals; [`Summary`] is the final report's content (and its JSON form).
//!
//! Pure. Called by the load-generator workers, the redis client and [`super::report`].

use super::demo::status::ReplicationSummary;
use super::histogram::Histogram;
use gatehouse_agent::engine::AgentError;
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a request did not get the answer it should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The agent found no server that answered.
    NoServerReachable,
    /// Servers answered probes, but none accepted a TCP connection.
    NoServerAcceptsConnections,
    /// The request's deadline passed.
    DeadlineExceeded,
    /// A server refused the agent itself (unknown host, bad key) or the request.
    Refused,
    /// The agent's queue was full (open loop faster than the agent can send).
    QueueFull,
    /// An answer, but not the one the request kind must get (allow for a deny...).
    WrongAnswer,
    /// Open loop: arrivals the generator itself could not issue in time (it fell behind).
    GeneratorBehind,
    /// Still unanswered when the run's drain time ran out.
    Unfinished,
    /// Redis: a connection could not be opened or was closed.
    ConnectionFailed,
    /// Redis: a reply that is not RESP, or an error reply.
    Protocol,
}

const KINDS: usize = 10;

impl ErrorKind {
    pub const ALL: [ErrorKind; KINDS] = [
        ErrorKind::NoServerReachable,
        ErrorKind::NoServerAcceptsConnections,
        ErrorKind::DeadlineExceeded,
        ErrorKind::Refused,
        ErrorKind::QueueFull,
        ErrorKind::WrongAnswer,
        ErrorKind::GeneratorBehind,
        ErrorKind::Unfinished,
        ErrorKind::ConnectionFailed,
        ErrorKind::Protocol,
    ];

    /// The stable name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NoServerReachable => "no_server_reachable",
            ErrorKind::NoServerAcceptsConnections => "no_server_accepts_connections",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::Refused => "refused",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::WrongAnswer => "wrong_answer",
            ErrorKind::GeneratorBehind => "generator_behind",
            ErrorKind::Unfinished => "unfinished",
            ErrorKind::ConnectionFailed => "connection_failed",
            ErrorKind::Protocol => "protocol",
        }
    }

    /// The kind of an agent error.
    pub fn of(error: &AgentError) -> ErrorKind {
        match error {
            AgentError::NoServerReachable => ErrorKind::NoServerReachable,
            AgentError::NoServerAcceptsConnections => ErrorKind::NoServerAcceptsConnections,
            AgentError::DeadlineExceeded => ErrorKind::DeadlineExceeded,
            AgentError::Refused(_) | AgentError::NodeKeyRefused => ErrorKind::Refused,
            AgentError::QueueFull => ErrorKind::QueueFull,
        }
    }
}

/// Requests and latency of one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub requests: u64,
    pub latency: Histogram,
}

/// Counters for some stretch of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Latency of every answered request (expected answer or not), µs.
    pub latency: Histogram,
    /// Answered with the answer the request kind must get.
    pub ok: u64,
    pub redirects: u64,
    pub errors: [u64; KINDS],
    pub servers: Vec<ServerStats>,
}

impl Stats {
    pub fn new(servers: usize) -> Self {
        Stats {
            latency: Histogram::new(),
            ok: 0,
            redirects: 0,
            errors: [0; KINDS],
            servers: vec![ServerStats::default(); servers],
        }
    }

    /// Counts an answer from `server` after `latency_us`; `expected` when it is the right one.
    pub fn answered(&mut self, server: Option<usize>, latency_us: u64, expected: bool) {
        self.latency.record(latency_us);
        if expected {
            self.ok += 1;
        } else {
            self.error(ErrorKind::WrongAnswer, 1);
        }
        if let Some(s) = server.and_then(|s| self.servers.get_mut(s)) {
            s.requests += 1;
            s.latency.record(latency_us);
        }
    }

    pub fn error(&mut self, kind: ErrorKind, n: u64) {
        if let Some(c) = self.errors.get_mut(kind as usize) {
            *c += n;
        }
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Requests finished: answered or failed.
    pub fn requests(&self) -> u64 {
        self.ok + self.errors_total()
    }

    /// Each server's share of the answered requests, 0..=1.
    pub fn shares(&self) -> Vec<f64> {
        let total: u64 = self.servers.iter().map(|s| s.requests).sum();
        self.servers
            .iter()
            .map(|s| {
                if total == 0 {
                    0.0
                } else {
                    s.requests as f64 / total as f64
                }
            })
            .collect()
    }

    pub fn merge(&mut self, other: &Stats) {
        self.latency.merge(&other.latency);
        self.ok += other.ok;
        self.redirects += other.redirects;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        if self.servers.len() < other.servers.len() {
            self.servers
                .resize(other.servers.len(), ServerStats::default());
        }
        for (mine, theirs) in self.servers.iter_mut().zip(&other.servers) {
            mine.requests += theirs.requests;
            mine.latency.merge(&theirs.latency);
        }
    }
}

/// Latency percentiles, µs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Latency {
    pub fn of(h: &Histogram) -> Latency {
        Latency {
            p50: h.percentile(50.0),
            p90: h.percentile(90.0),
            p99: h.percentile(99.0),
            p999: h.percentile(99.9),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// One server's line of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerSummary {
    pub addr: String,
    pub requests: u64,
    /// Share of the answered requests, percent.
    pub share_percent: f64,
    pub p99_us: u64,
}

/// The final report (text and `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// What ran: `closed`, `open` or `redis`.
    pub mode: String,
    /// Simulated agents (redis: connections).
    pub agents: usize,
    pub threads: usize,
    pub balancing: String,
    pub mix: String,
    /// Wall time from the start to the last answer, seconds.
    pub elapsed_s: f64,
    /// Requests finished (answered as expected + errors).
    pub requests: u64,
    pub ok: u64,
    pub throughput_rps: f64,
    pub latency_us: Latency,
    pub redirects: u64,
    pub errors: u64,
    /// Only kinds that happened.
    pub errors_by_kind: BTreeMap<String, u64>,
    pub servers: Vec<ServerSummary>,
    /// The demo only: the master's sequence and where each replica ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationSummary>,
    /// `run --phases` only: each phase's own summary.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<super::phases::PhaseSummary>,
    /// `run --phases` only: the run second by second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seconds: Vec<super::phases::SecondSummary>,
}

/// What a run was (the parts of the summary that are not counters).
#[derive(Debug, Clone)]
pub struct RunLabel {
    pub mode: String,
    pub agents: usize,
    pub threads: usize,
    pub balancing: String,
    pub mix: String,
    pub servers: Vec<String>,
}

impl Summary {
    pub fn new(label: &RunLabel, stats: &Stats, elapsed_s: f64) -> Summary {
        let shares = stats.shares();
        Summary {
            mode: label.mode.clone(),
            agents: label.agents,
            threads: label.threads,
            balancing: label.balancing.clone(),
            mix: label.mix.clone(),
            elapsed_s,
            requests: stats.requests(),
            ok: stats.ok,
            throughput_rps: if elapsed_s > 0.0 {
                stats.requests() as f64 / elapsed_s
            } else {
                0.0
            },
            latency_us: Latency::of(&stats.latency),
            redirects: stats.redirects,
            errors: stats.errors_total(),
            errors_by_kind: ErrorKind::ALL
                .iter()
                .zip(stats.errors)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.name().to_string(), n))
                .collect(),
            servers: label
                .servers
                .iter()
                .enumerate()
                .map(|(i, addr)| ServerSummary {
                    addr: addr.clone(),
                    requests: stats.servers.get(i).map_or(0, |s| s.requests),
                    share_percent: shares.get(i).map_or(0.0, |s| s * 100.0),
                    p99_us: stats
                        .servers
                        .get(i)
                        .map_or(0, |s| s.latency.percentile(99.0)),
                })
                .collect(),
            replication: None,
            phases: Vec::new(),
            seconds: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_merge_and_the_summary_reports_them() {
        let mut a = Stats::new(2);
        a.answered(Some(0), 10, true);
        a.answered(Some(1), 30, false);
        let mut b = Stats::new(2);
        b.answered(Some(1), 20, true);
        b.error(ErrorKind::QueueFull, 2);
        b.redirects = 1;
        a.merge(&b);
        let label = RunLabel {
            mode: "closed".into(),
            agents: 2,
            threads: 1,
            balancing: "probing".into(),
            mix: "authorize=1".into(),
            servers: vec!["a".into(), "b".into()],
        };
        let s = Summary::new(&label, &a, 2.0);
        assert_eq!((s.requests, s.ok, s.errors, s.redirects), (5, 2, 3, 1));
        assert_eq!(s.throughput_rps, 2.5);
        assert_eq!(
            s.errors_by_kind,
            BTreeMap::from([("queue_full".into(), 2), ("wrong_answer".into(), 1)])
        );
        let shares: Vec<f64> = s.servers.iter().map(|s| s.share_percent).collect();
        assert_eq!(shares, [1.0 / 3.0 * 100.0, 2.0 / 3.0 * 100.0]);
        assert_eq!(s.latency_us.p50, 20);
        assert_eq!(s.latency_us.max, 30);
    }
}
