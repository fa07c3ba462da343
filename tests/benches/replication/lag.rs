//! Replication lag: admin changes (`UserAdd`, one at a time at a steady rate) through the
//! admin socket; after each acknowledgement, probe every follower until its probe reply's
//! `db_sequence` reaches the acknowledged sequence. The lag of a change is the time from the
//! acknowledgement to the reply that shows it on the last follower. Not pure: real processes.

use crate::setup::Deployment;
use crate::stats::Summary;
use gatehouse_master::admin::client::AdminClient;
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse};
use gatehouse_tests::{probe, WAIT_LIMIT};
use std::time::{Duration, Instant};

/// How long one probe waits for its reply before it is sent again: 1 s. A lost UDP reply on
/// loopback is rare; this only keeps one from stalling the run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What one stream of changes measured.
pub struct LagRun {
    /// Ack → visible on every follower.
    pub last: Summary,
    /// Ack → visible on the first follower that showed it.
    pub first: Summary,
    /// Admin request → acknowledgement (the master's durable commit).
    pub ack: Summary,
    /// Round trip of the probes sent while waiting (the measurement's resolution).
    pub probe_rtt: Summary,
    /// Changes already visible on every follower at the first probe after the ack.
    pub visible_at_first_probe: usize,
    pub achieved_rate: f64,
}

/// Issues `changes` `UserAdd`s at `rate` per second (names `{prefix}n{i}`) and measures each.
pub fn measure(deployment: &Deployment, prefix: &str, changes: usize, rate: f64) -> LagRun {
    let mut admin = AdminClient::connect(&deployment.cluster.files.socket).expect("admin socket");
    let addrs: Vec<_> = deployment.replicas.iter().map(|(_, p)| p.addr).collect();
    let gap = Duration::from_secs_f64(1.0 / rate);
    let (mut last, mut first, mut ack, mut rtt) = (vec![], vec![], vec![], vec![]);
    let mut visible_at_first_probe = 0;
    let start = Instant::now();
    for i in 0..changes {
        // A steady schedule: a change that took long does not make the next ones bunch up
        // beyond catching up to the schedule.
        let due = start + gap * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = Instant::now();
        let response = admin
            .request(&AdminRequest::UserAdd {
                name: format!("{prefix}n{i}"),
                classes: Vec::new(),
            })
            .expect("user add");
        let acked = Instant::now();
        let AdminResponse::Done { seq } = response else {
            panic!("user add: {response:?}");
        };
        ack.push(acked - sent);
        let mut pending: Vec<usize> = (0..addrs.len()).collect();
        let mut seen_first = None;
        let mut round = 0;
        while !pending.is_empty() {
            assert!(
                acked.elapsed() < WAIT_LIMIT,
                "change {seq} not visible on every follower"
            );
            pending.retain(|&r| {
                let asked = Instant::now();
                let Some(reply) = probe(addrs[r], &deployment.prober, PROBE_TIMEOUT) else {
                    return true;
                };
                let now = Instant::now();
                rtt.push(now - asked);
                if reply.load.db_sequence >= seq {
                    seen_first.get_or_insert(now - acked);
                    false
                } else {
                    true
                }
            });
            if pending.is_empty() && round == 0 {
                visible_at_first_probe += 1;
            }
            round += 1;
        }
        last.push(acked.elapsed());
        first.push(seen_first.unwrap_or_default());
    }
    let elapsed = start.elapsed().as_secs_f64();
    LagRun {
        last: Summary::of(last),
        first: Summary::of(first),
        ack: Summary::of(ack),
        probe_rtt: Summary::of(rtt),
        visible_at_first_probe,
        achieved_rate: changes as f64 / elapsed,
    }
}
