//! Replication benchmark (docs/BENCHMARKS.md, "Replication"): a real master and followers on
//! loopback, the followers loaded by `gatehouse-loadgen` agents.
//!
//! 1. Lag: a steady stream of admin changes; for each, the time from the admin command's
//!    acknowledgement to the change being visible (probe `db_sequence`) on every follower,
//!    without agent load and under two agent loads.
//! 2. Catch-up: a follower down for 10,000 changes restarts and catches up by resume.
//!
//! Run: `cargo bench -p gatehouse-tests --bench replication`. Sizes can be lowered for a quick
//! look with GATEHOUSE_BENCH_CHANGES (lag changes per load level, default 500),
//! GATEHOUSE_BENCH_RATE (changes/s, default 25) and GATEHOUSE_BENCH_CATCHUP (default 10000).
//! Not pure: this is a program measuring processes.

mod catchup;
mod lag;
mod setup;
mod stats;

use setup::{Deployment, Load, LoadLevel, LoadResult};
use stats::ms;
use std::time::Instant;

/// Followers in the cluster: 2, so that on a 2-core machine the master, the followers, the load
/// generator and the prober are not hopelessly oversubscribed.
const REPLICAS: &[&str] = &["r1", "r2"];
/// Simulated agents loading the followers: 300 ("a few hundred"), each a registered host.
const AGENTS: usize = 300;

const LEVELS: &[LoadLevel] = &[
    LoadLevel {
        label: "no agents",
        think_ms: None,
    },
    LoadLevel {
        label: "300 agents, think 100 ms",
        think_ms: Some(100),
    },
    LoadLevel {
        label: "300 agents, no think (saturating)",
        think_ms: Some(0),
    },
];

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The machine's busy share over an interval, from /proc/stat's first line.
fn cpu_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total, idle)
}

fn busy_percent(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.0.saturating_sub(before.0).max(1) as f64;
    let idle = after.1.saturating_sub(before.1) as f64;
    100.0 * (1.0 - idle / total)
}

fn main() {
    // Debug logging in the servers would be part of what is measured; info keeps the lines
    // the checks need ("following ... from sequence", "gets a snapshot").
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "info");
    }
    let changes = env_number("GATEHOUSE_BENCH_CHANGES", 500) as usize;
    let rate = env_number("GATEHOUSE_BENCH_RATE", 25) as f64;
    let catch_up_changes = env_number("GATEHOUSE_BENCH_CATCHUP", 10_000);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "replication bench: nproc {nproc}, CPU {cpu:?}, RUST_LOG={:?}",
        std::env::var("RUST_LOG").unwrap_or_default()
    );
    println!("{} followers, {AGENTS} agents, {changes} changes per level at {rate}/s, catch-up over {catch_up_changes} changes", REPLICAS.len());

    let setup_start = Instant::now();
    let mut deployment = Deployment::start(REPLICAS, AGENTS);
    println!(
        "deployment ready in {:.1} s in {}",
        setup_start.elapsed().as_secs_f64(),
        deployment.cluster.files.dir.path().display()
    );

    let mut rows = Vec::new();
    for (n, level) in LEVELS.iter().enumerate() {
        eprintln!("level {n}: {}", level.label);
        let cpu_before = cpu_ticks();
        let load = level
            .think_ms
            .map(|think| Load::start(&deployment, think, &format!("level{n}")));
        let run = lag::measure(&deployment, &format!("l{n}"), changes, rate);
        let agents = load.map(Load::stop);
        let busy = busy_percent(cpu_before, cpu_ticks());
        println!(
            "{}: p50 {} p99 {} ms",
            level.label,
            ms(run.last.pct(50.0)),
            ms(run.last.pct(99.0))
        );
        rows.push((level, run, agents, busy));
    }

    let catch = catchup::measure(&mut deployment, REPLICAS.len() - 1, catch_up_changes);

    println!();
    println!(
        "Lag: ack of `UserAdd` → visible in probe replies of every follower ({} followers), ms",
        REPLICAS.len()
    );
    println!();
    println!("| agent load | agents req/s (p99 ms, errors) | CPU busy % | changes | rate /s | p50 | p90 | p99 | max | first follower p50 / p99 | visible at first probe | admin ack p50 / p99 | probe RTT p50 / p99 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (level, run, agents, busy) in &rows {
        let agents = match agents {
            Some(LoadResult {
                throughput_rps,
                p99_us,
                errors,
            }) => {
                format!(
                    "{throughput_rps:.0} ({:.1}, {errors})",
                    *p99_us as f64 / 1e3
                )
            }
            None => "–".into(),
        };
        println!(
            "| {} | {agents} | {busy:.0} | {} | {:.1} | {} | {} | {} | {} | {} / {} | {:.0} % | {} / {} | {} / {} |",
            level.label,
            run.last.count(),
            run.achieved_rate,
            ms(run.last.pct(50.0)),
            ms(run.last.pct(90.0)),
            ms(run.last.pct(99.0)),
            ms(run.last.max()),
            ms(run.first.pct(50.0)),
            ms(run.first.pct(99.0)),
            100.0 * run.visible_at_first_probe as f64 / run.last.count().max(1) as f64,
            ms(run.ack.pct(50.0)),
            ms(run.ack.pct(99.0)),
            ms(run.probe_rtt.pct(50.0)),
            ms(run.probe_rtt.pct(99.0)),
        );
    }
    println!();
    println!(
        "Catch-up: follower stopped at sequence {}, {} changes made while it was down",
        catch.resumed_from, catch.changes
    );
    println!();
    println!("| what | value |");
    println!("|---|---:|");
    let rate_of = |d: std::time::Duration| catch.changes as f64 / d.as_secs_f64();
    println!("| making the changes on the master (one at a time, each durable) | {:.1} s = {:.0} changes/s |", catch.write_time.as_secs_f64(), rate_of(catch.write_time));
    println!(
        "| admin ack per change p50 / p99 / max | {} / {} / {} ms |",
        ms(catch.ack.pct(50.0)),
        ms(catch.ack.pct(99.0)),
        ms(catch.ack.max())
    );
    println!(
        "| admin ack mean, first / last tenth of the changes | {} / {} ms |",
        ms(catch.ack_first_tenth),
        ms(catch.ack_last_tenth)
    );
    println!(
        "| restart → follower ready (listening) | {} ms |",
        ms(catch.ready)
    );
    println!(
        "| restart → first batch applied | {} ms |",
        ms(catch.first_batch)
    );
    println!(
        "| restart → caught up (applied = master's sequence) | {} ms |",
        ms(catch.caught_up)
    );
    println!(
        "| changes applied per second (restart → caught up) | {:.0} |",
        rate_of(catch.caught_up)
    );
    println!(
        "| status-file updates seen while catching up | {} |",
        catch.updates_seen
    );
    println!(
        "| resumed from its own sequence | yes ({}) |",
        catch.resumed_from
    );
    println!(
        "| snapshots received (status file) / master log \"gets a snapshot\" | {} / {} |",
        catch.snapshots,
        if catch.master_sent_snapshot {
            "yes"
        } else {
            "no"
        }
    );
    assert_eq!(
        catch.snapshots, 0,
        "the follower got a snapshot instead of resuming"
    );
    assert!(!catch.master_sent_snapshot, "the master sent a snapshot");
}
