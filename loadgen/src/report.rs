//! Text output of a load run: the once-a-second progress line and the final report (the
//! demo's live table is in [`super::demo::table`]).
//!
//! Pure: formats numbers it is given into strings. Called by the subcommands in
//! [`super::cli`].

use super::stats::{Stats, Summary};
use std::fmt::Write;

/// A latency in µs as `870 µs`, `12.3 ms` or `1.20 s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} s", us as f64 / 1_000_000.0)
    }
}

fn shares_text(stats: &Stats) -> String {
    stats
        .shares()
        .iter()
        .map(|s| format!("{:.0}%", s * 100.0))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `[  3s]  5230 req/s  p99 4.1 ms  errors 0  share 33% 34% 33%  conns 2000`.
pub fn progress_line(second: u64, stats: &Stats, connections: usize) -> String {
    format!(
        "[{second:>3}s] {:>7} req/s  p99 {:>9}  errors {:<5} share {}  conns {connections}",
        stats.requests(),
        fmt_us(stats.latency.percentile(99.0)),
        stats.errors_total(),
        shares_text(stats),
    )
}

/// The final report.
pub fn final_report(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} loop, {} {} on {} thread(s), balancing {}, mix {}",
        s.mode,
        s.agents,
        if s.mode == "redis" {
            "connections"
        } else {
            "agents"
        },
        s.threads,
        s.balancing,
        s.mix
    );
    let _ = writeln!(
        out,
        "requests    {} in {:.1} s = {:.0} req/s ({} answered as expected)",
        s.requests, s.elapsed_s, s.throughput_rps, s.ok
    );
    let l = &s.latency_us;
    let _ = writeln!(
        out,
        "latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        fmt_us(l.p50),
        fmt_us(l.p90),
        fmt_us(l.p99),
        fmt_us(l.p999),
        fmt_us(l.max)
    );
    let _ = writeln!(out, "redirects   {}", s.redirects);
    let kinds: Vec<String> = s
        .errors_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "errors      {}{}",
        s.errors,
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        }
    );
    for server in &s.servers {
        let _ = writeln!(
            out,
            "server      {:<22} {:>5.1}%  {:>9} requests  p99 {}",
            server.addr,
            server.share_percent,
            server.requests,
            fmt_us(server.p99_us)
        );
    }
    for p in &s.phases {
        let shares: Vec<String> = p
            .summary
            .servers
            .iter()
            .map(|s| format!("{:.0}%", s.share_percent))
            .collect();
        let l = &p.summary.latency_us;
        let _ = writeln!(
            out,
            "phase       {:>4}-{:<4}s requests {}  p50 {}  p99 {}  max {}  errors {}  share {}",
            p.from_s,
            p.to_s,
            p.summary.requests,
            fmt_us(l.p50),
            fmt_us(l.p99),
            fmt_us(l.max),
            p.summary.errors,
            shares.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_print_in_a_readable_unit() {
        assert_eq!(fmt_us(870), "870 µs");
        assert_eq!(fmt_us(12_345), "12.3 ms");
        assert_eq!(fmt_us(1_200_000), "1.20 s");
    }

    #[test]
    fn the_final_report_has_throughput_latencies_redirects_errors_and_shares() {
        use super::super::stats::{ErrorKind, RunLabel};
        let mut stats = Stats::new(2);
        for us in [100, 200, 300] {
            stats.answered(Some(0), us, true);
        }
        stats.answered(Some(1), 2_500, true);
        stats.redirects = 2;
        stats.error(ErrorKind::DeadlineExceeded, 1);
        let label = RunLabel {
            mode: "closed".into(),
            agents: 1000,
            threads: 2,
            balancing: "probing".into(),
            mix: "authorize=100".into(),
            servers: vec!["127.0.0.1:7001".into(), "127.0.0.1:7002".into()],
        };
        let report = final_report(&Summary::new(&label, &stats, 2.0));
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(
            lines[0],
            "== closed loop, 1000 agents on 2 thread(s), balancing probing, mix authorize=100"
        );
        assert!(
            lines[1].starts_with("requests    5 in 2.0 s = 2 req/s (4 answered"),
            "{report}"
        );
        assert!(lines[2].starts_with("latency     p50 "), "{report}");
        for part in ["p90 ", "p99 ", "p99.9 ", "max "] {
            assert!(lines[2].contains(part), "{part}: {report}");
        }
        assert_eq!(lines[3], "redirects   2");
        assert_eq!(lines[4], "errors      1 (deadline_exceeded 1)");
        assert!(
            lines[5].starts_with("server      127.0.0.1:7001"),
            "{report}"
        );
        assert!(lines[5].contains("75.0%"), "{report}");
        assert!(lines[6].contains("25.0%"), "{report}");
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn the_progress_line_shows_rate_p99_errors_and_shares() {
        let mut stats = Stats::new(2);
        stats.answered(Some(0), 40, true);
        stats.answered(Some(0), 50, true);
        stats.answered(Some(1), 60, true);
        stats.answered(Some(1), 70, true);
        let line = progress_line(3, &stats, 7);
        assert_eq!(
            line,
            "[  3s]       4 req/s  p99     70 µs  errors 0     share 50% 50%  conns 7"
        );
    }
}
