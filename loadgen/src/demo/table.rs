//! The demo's text: the live per-server table printed every second (what each server's probe
//! reply said, what the agents saw that second, and each replica's replication as its status
//! file reports it) and the replication lines of the final report. Lines stay within 92
//! columns so the table reads in an ordinary terminal.
//!
//! Pure: formats what it is given. Called by [`super::run_demo`].

use super::status::{ReplicaStatus, ReplicationSummary};
use super::PROPAGATION_LIMIT;
use crate::report::fmt_us;
use crate::stats::Stats;
use gatehouse_common::wire::LoadReport;
use std::fmt::Write;
use std::net::SocketAddr;

/// Where a server's copy of the database comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copy {
    /// The master: the source of every change.
    Source,
    /// A replica, with its status file (`None` while it has not written one).
    Replica(Option<ReplicaStatus>),
}

/// One server's line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub addr: SocketAddr,
    /// Its answer to this second's probe; `None` when it did not answer in time.
    pub probe: Option<LoadReport>,
    pub copy: Copy,
}

/// The table for one second; `master_seq` is the master's sequence (the last change the demo
/// made), against which each replica's lag is counted. Row `i` is server `i` of `stats`.
pub fn live_table(
    second: u64,
    stats: &Stats,
    connections: usize,
    master_seq: u64,
    rows: &[Row],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "[{second:>3}s] {} req/s  p99 {}  errors {}  agent connections {connections}  \
         master sequence {master_seq}",
        stats.requests(),
        fmt_us(stats.latency.percentile(99.0)),
        stats.errors_total(),
    );
    let _ = writeln!(
        out,
        "  {:<8} {:>5} {:>6} {:>5} {:>10} {:>6} {:>6} {:>9}  {:<12} {:>7} {:>4}",
        "server",
        "port",
        "conns",
        "queue",
        "est. wait",
        "share",
        "req/s",
        "p99",
        "replication",
        "applied",
        "lag"
    );
    let shares = stats.shares();
    for (i, row) in rows.iter().enumerate() {
        let (conns, queue, wait) = match row.probe {
            Some(r) => (
                r.connections.to_string(),
                r.queue_len.to_string(),
                fmt_us(r.recommended_wait_us),
            ),
            None => ("-".into(), "-".into(), "no reply".into()),
        };
        let (link, applied, lag) = match &row.copy {
            Copy::Source => ("source".into(), master_seq.to_string(), "-".into()),
            Copy::Replica(Some(s)) => (
                s.state.name().to_string(),
                s.applied.to_string(),
                master_seq.saturating_sub(s.applied).to_string(),
            ),
            Copy::Replica(None) => ("no status".into(), "-".into(), "-".into()),
        };
        let server = stats.servers.get(i);
        let _ = writeln!(
            out,
            "  {:<8} {:>5} {conns:>6} {queue:>5} {wait:>10} {:>5.1}% {:>6} {:>9}  {link:<12} \
             {applied:>7} {lag:>4}",
            row.name,
            row.addr.port(),
            shares.get(i).copied().unwrap_or(0.0) * 100.0,
            server.map_or(0, |s| s.requests),
            fmt_us(server.map_or(0, |s| s.latency.percentile(99.0))),
        );
    }
    out
}

/// The final report's replication lines.
pub fn replication_report(r: &ReplicationSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replication master sequence {} after {} admin change(s) during the run",
        r.master_sequence, r.admin_changes,
    );
    if let Some(line) = slowest(&r.propagation_us) {
        let _ = writeln!(out, "            {line}");
    }
    for replica in &r.replicas {
        let _ = writeln!(
            out,
            "replica     {:<8} {:<21} {:<12} applied {:>5}  lag {}  snapshots {}",
            replica.name,
            replica.addr,
            replica.state,
            replica.applied_sequence,
            replica.lag,
            replica.snapshots
        );
    }
    out
}

/// How long the admin changes took to reach every replica: the slowest, or how many did not
/// within the demo's limit. `None` when there were none.
fn slowest(propagation_us: &[Option<u64>]) -> Option<String> {
    if propagation_us.is_empty() {
        return None;
    }
    let late = propagation_us.iter().filter(|t| t.is_none()).count();
    if late > 0 {
        return Some(format!(
            "{late} change(s) not on every replica within {PROPAGATION_LIMIT:?}"
        ));
    }
    let max = propagation_us.iter().flatten().copied().max().unwrap_or(0);
    Some(format!(
        "each change on every replica within {} of its acknowledgement",
        fmt_us(max)
    ))
}

#[cfg(test)]
mod tests {
    use super::super::status::{LinkState, ReplicaSummary};
    use super::*;

    fn report(connections: u32, queue_len: u32, wait_us: u64) -> LoadReport {
        LoadReport {
            connections,
            queue_len,
            recommended_wait_us: wait_us,
            ..LoadReport::default()
        }
    }

    #[test]
    fn the_table_shows_load_share_and_each_replicas_replication() {
        let mut stats = Stats::new(3);
        stats.answered(Some(0), 40, true);
        stats.answered(Some(1), 900, true);
        stats.answered(Some(1), 1500, true);
        stats.answered(Some(2), 60, true);
        let status = |state, applied| ReplicaStatus {
            state,
            applied,
            master_head: applied,
            snapshots: 1,
        };
        let rows = [
            Row {
                name: "master".into(),
                addr: "127.0.0.1:40001".parse().unwrap(),
                probe: Some(report(12, 3, 2500)),
                copy: Copy::Source,
            },
            Row {
                name: "replica0".into(),
                addr: "127.0.0.1:40002".parse().unwrap(),
                probe: None,
                copy: Copy::Replica(Some(status(LinkState::Established, 7))),
            },
            Row {
                name: "replica1".into(),
                addr: "127.0.0.1:40003".parse().unwrap(),
                probe: Some(report(0, 0, 1)),
                copy: Copy::Replica(Some(status(LinkState::Reconnecting, 5))),
            },
        ];
        let table = live_table(4, &stats, 30, 7, &rows);
        let want = [
            "[  4s] 4 req/s  p99 1.5 ms  errors 0  agent connections 30  master sequence 7",
            "  server    port  conns queue  est. wait  share  req/s       p99  replication  applied  lag",
            "  master   40001     12     3     2.5 ms  25.0%      1     40 µs  source             7    -",
            "  replica0 40002      -     -   no reply  50.0%      2    1.5 ms  established        7    0",
            "  replica1 40003      0     0       1 µs  25.0%      1     60 µs  reconnecting       5    2",
        ];
        assert_eq!(table.lines().collect::<Vec<_>>(), want);
        assert!(table.lines().all(|l| l.chars().count() <= 92), "{table}");
    }

    #[test]
    fn the_final_report_names_each_replicas_sequence() {
        let r = ReplicationSummary {
            master_sequence: 12,
            admin_changes: 4,
            propagation_us: vec![Some(900), Some(3100), Some(2000), Some(40)],
            replicas: vec![ReplicaSummary {
                name: "replica0".into(),
                addr: "127.0.0.1:40002".into(),
                state: "established".into(),
                applied_sequence: 12,
                lag: 0,
                snapshots: 1,
            }],
        };
        assert_eq!(
            replication_report(&r),
            "replication master sequence 12 after 4 admin change(s) during the run\n            \
             each change on every replica within 3.1 ms of its acknowledgement\n\
             replica     replica0 127.0.0.1:40002       established  applied    12  lag 0  \
             snapshots 1\n"
        );
        assert_eq!(
            slowest(&[Some(5), None, None]).as_deref(),
            Some("2 change(s) not on every replica within 1s")
        );
        assert_eq!(slowest(&[]), None);
    }
}
