//! gatehouse-benchdb: the Rust half of scripts/bench-database.sh (database scale). Benchmark
//! tooling, not a product binary.
//!
//! - `generate --users N --out FILE [--base FILE]`: writes a generated database
//!   (`gatehouse_tests::dbgen::fleet`; the base, such as a provisioned `db.ron`, kept first).
//! - `lag --socket PATH --replicas ADDR[,ADDR...] --identities FILE [--changes K]
//!   [--rate PER_S]`: K single changes (`user add`, one at a time at a steady rate) through
//!   the admin socket; for each, the time to its acknowledgement (the master's durable commit)
//!   and from the acknowledgement until every follower's probe reply shows its sequence.
//!   Prints one JSON object with the percentiles, milliseconds.

use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::policy::Database;
use gatehouse_master::admin::client::AdminClient;
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse};
use gatehouse_tests::{probe, TestHost};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long one probe waits for its reply before it is sent again (20 ms): a reply lost or
/// late (a datagram dropped while the machine is loaded) then adds at most this to the
/// measured visibility, instead of a whole second that would be the probe's, not the
/// replica's.
const PROBE_TIMEOUT: Duration = Duration::from_millis(20);
/// How long a change may take to show on every follower before the run fails (60 s).
const VISIBLE_LIMIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => generate(&args),
        Some("lag") => lag(&args),
        _ => Err("expected `generate` or `lag`".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-benchdb: {e}");
            ExitCode::from(2)
        }
    }
}

fn value(args: &[String], name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

fn number<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match value(args, name) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("{name}: not a number: {text}")),
    }
}

fn generate(args: &[String]) -> Result<(), String> {
    let users: usize = number(args, "--users", 0)?;
    let out = value(args, "--out").ok_or("--out FILE is required")?;
    let base = match value(args, "--base") {
        Some(path) => Database::load(Path::new(&path)).map_err(|e| e.to_string())?,
        None => Database::default(),
    };
    let db = gatehouse_tests::dbgen::fleet(users, &base);
    let text = ron::to_string(&db).map_err(|e| e.to_string())?;
    std::fs::write(&out, &text).map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "wrote {out}: {} users, {} hosts, {} bytes",
        db.users.len(),
        db.hosts.len(),
        text.len()
    );
    Ok(())
}

/// The identities file a load generator's `provision` writes (read here, not through the
/// load generator's crate, so this tool only needs the file's format).
#[derive(serde::Deserialize)]
struct Identities {
    identities: Vec<Identity>,
}

#[derive(serde::Deserialize)]
struct Identity {
    host: String,
    key: String,
}

/// The first agent identity of `path`, to authenticate probes with.
fn first_identity(path: &Path) -> Result<TestHost, String> {
    let file: Identities = gatehouse_common::config::load_ron(path).map_err(|e| e.to_string())?;
    let first = file.identities.into_iter().next().ok_or("no identities")?;
    let key = NodeKey::from_hex(&first.key).map_err(|e| e.to_string())?;
    Ok(TestHost {
        name: first.host,
        key,
    })
}

/// The `p`-th percentile of `samples` (sorted in place), milliseconds.
fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let at = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len().max(1)) - 1;
    samples.get(at).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn lag(args: &[String]) -> Result<(), String> {
    let socket = value(args, "--socket").ok_or("--socket PATH is required")?;
    let replicas: Vec<SocketAddr> = value(args, "--replicas")
        .ok_or("--replicas ADDR,... is required")?
        .split(',')
        .map(|a| a.parse().map_err(|e| format!("{a}: {e}")))
        .collect::<Result<_, String>>()?;
    let identities = value(args, "--identities").ok_or("--identities FILE is required")?;
    let changes: usize = number(args, "--changes", 200)?;
    let rate: f64 = number(args, "--rate", 20.0)?;
    let prober = first_identity(Path::new(&identities))?;
    let mut admin = AdminClient::connect(Path::new(&socket)).map_err(|e| e.to_string())?;
    let gap = Duration::from_secs_f64(1.0 / rate);
    let (mut acks, mut visible) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let tag = std::process::id();
    for i in 0..changes {
        // A steady schedule (the bench's own pacing, not a synchronisation sleep).
        let due = start + gap * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = Instant::now();
        let request = AdminRequest::UserAdd {
            name: format!("lag{tag}n{i}"),
            classes: Vec::new(),
        };
        let response = admin.request(&request).map_err(|e| e.to_string())?;
        let acked = Instant::now();
        let AdminResponse::Done { seq } = response else {
            return Err(format!("user add: {response:?}"));
        };
        acks.push(acked - sent);
        let mut pending = replicas.clone();
        while !pending.is_empty() {
            if acked.elapsed() > VISIBLE_LIMIT {
                return Err(format!("change {seq} not visible on every follower"));
            }
            pending.retain(|addr| {
                probe(*addr, &prober, PROBE_TIMEOUT).is_none_or(|r| r.load.db_sequence < seq)
            });
        }
        visible.push(acked.elapsed());
    }
    println!(
        "{{\"changes\": {changes}, \"ack_p50_ms\": {:.3}, \"ack_p99_ms\": {:.3}, \"visible_p50_ms\": {:.3}, \"visible_p99_ms\": {:.3}, \"visible_max_ms\": {:.3}, \"total_p99_ms\": {:.3}}}",
        percentile(&mut acks, 0.5),
        percentile(&mut acks, 0.99),
        percentile(&mut visible, 0.5),
        percentile(&mut visible, 0.99),
        percentile(&mut visible, 1.0),
        {
            let mut total: Vec<Duration> = acks.iter().zip(&visible).map(|(a, v)| *a + *v).collect();
            percentile(&mut total, 0.99)
        }
    );
    Ok(())
}
