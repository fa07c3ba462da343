//! Node-key lookup benchmark: the arc-swap `NodeKeyStore` against lock-based maps.
//!
//! Not pure (threads, clocks, sleeps): a self-contained timing harness, no criterion. Run with
//! `cargo bench -p gatehouse-common --bench nodekeys`; it prints a Markdown table that goes into
//! docs/BENCHMARKS.md. Each run lasts `RUN_TIME` and stops by itself.
//!
//! Readers look up hosts in a fixed pseudo-random order (every lookup hits); every
//! `SAMPLE_EVERY`th lookup is timed with `Instant` for the latency percentiles, so p50/p99
//! include the timer's own cost (printed once as "timer overhead"). The optional writer replaces
//! one host's key every `WRITE_PERIOD`; for arc-swap that is clone-the-whole-map-and-publish,
//! for the locks an in-place write under the lock. Nothing is pinned: on a 2-core machine,
//! 2 readers + 1 writer oversubscribe the CPUs whenever the writer is busy. "reader CPU %" is
//! the readers' CPU time over their wall time: below 100 when a reader sleeps in a lock, when
//! the writer takes its core, or when other processes do (then contention is understated).

use gatehouse_common::nodekeys::{NodeKey, NodeKeyMap, NodeKeyStore};
use rand::{rngs::StdRng, SeedableRng};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Wall time of one run (one variant in one scenario): 2 s, long enough to smooth out
/// scheduler noise, short enough that the 16 runs finish in about half a minute.
const RUN_TIME: Duration = Duration::from_secs(2);
/// Lookup threads per run: 2, the core count of the machine the figures come from.
const READERS: usize = 2;
/// Every 1024th lookup is timed: rare enough that the two `Instant::now` calls do not dominate
/// the throughput figures, frequent enough for ~10^4 latency samples per run.
const SAMPLE_EVERY: u64 = 1024;
/// Writer period: one key replaced every 1 ms, a busy re-keying rate for a fleet.
const WRITE_PERIOD: Duration = Duration::from_millis(1);
/// Readers step through the host list by this prime, so consecutive lookups touch unrelated
/// buckets; it is coprime with every map size used here (10,000 and 100).
const STRIDE: usize = 7919;
/// Seed for the generated keys (every variant sees the same map).
const SEED: u64 = 0x6761_7465;

/// Each variant: a lookup returning an owned key, and a one-key update.
trait KeyStore: Sync {
    const NAME: &'static str;
    fn build(keys: NodeKeyMap) -> Self;
    fn lookup(&self, host: &str) -> Option<NodeKey>;
    fn replace(&self, host: &str, key: NodeKey);
}

/// (a) The real store: snapshot load + get + clone; an update clones and republishes the map.
impl KeyStore for NodeKeyStore {
    const NAME: &'static str = "(a) arc-swap NodeKeyStore";
    fn build(keys: NodeKeyMap) -> Self {
        NodeKeyStore::new(keys)
    }
    fn lookup(&self, host: &str) -> Option<NodeKey> {
        NodeKeyStore::lookup(self, host)
    }
    fn replace(&self, host: &str, key: NodeKey) {
        let mut next = NodeKeyMap::clone(&self.snapshot());
        set(&mut next, host, key);
        self.publish(next);
    }
}

/// (b) `std::sync::Mutex<HashMap>`.
struct StdMutex(Mutex<NodeKeyMap>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The lock variants' update: overwrite one key in place.
fn set(map: &mut NodeKeyMap, host: &str, key: NodeKey) {
    if let Some(slot) = map.get_mut(host) {
        *slot = key;
    }
}

impl KeyStore for StdMutex {
    const NAME: &'static str = "(b) std Mutex<HashMap>";
    fn build(keys: NodeKeyMap) -> Self {
        StdMutex(Mutex::new(keys))
    }
    fn lookup(&self, host: &str) -> Option<NodeKey> {
        lock(&self.0).get(host).cloned()
    }
    fn replace(&self, host: &str, key: NodeKey) {
        set(&mut lock(&self.0), host, key);
    }
}

/// (c) `parking_lot::RwLock<HashMap>`.
struct PlRwLock(parking_lot::RwLock<NodeKeyMap>);

impl KeyStore for PlRwLock {
    const NAME: &'static str = "(c) parking_lot RwLock<HashMap>";
    fn build(keys: NodeKeyMap) -> Self {
        PlRwLock(parking_lot::RwLock::new(keys))
    }
    fn lookup(&self, host: &str) -> Option<NodeKey> {
        self.0.read().get(host).cloned()
    }
    fn replace(&self, host: &str, key: NodeKey) {
        set(&mut self.0.write(), host, key);
    }
}

/// (d) The seed's pattern: a binary semaphore (taken flag + condvar) acquired around every
/// lookup, released with a wake-up on every release (a futex syscall each time, as a SysV
/// `semop` would make). The map sits in a parking_lot mutex only to satisfy the borrow
/// checker; the semaphore already excludes, so that lock is never contended.
struct Semaphore {
    taken: Mutex<bool>,
    freed: Condvar,
    map: parking_lot::Mutex<NodeKeyMap>,
}

impl Semaphore {
    fn with<R>(&self, f: impl FnOnce(&mut NodeKeyMap) -> R) -> R {
        let mut taken = lock(&self.taken);
        while *taken {
            taken = self
                .freed
                .wait(taken)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *taken = true;
        drop(taken);
        let out = f(&mut self.map.lock());
        *lock(&self.taken) = false;
        self.freed.notify_one();
        out
    }
}

impl KeyStore for Semaphore {
    const NAME: &'static str = "(d) semaphore per lookup (seed)";
    fn build(keys: NodeKeyMap) -> Self {
        Semaphore {
            taken: Mutex::new(false),
            freed: Condvar::new(),
            map: parking_lot::Mutex::new(keys),
        }
    }
    fn lookup(&self, host: &str) -> Option<NodeKey> {
        self.with(|m| m.get(host).cloned())
    }
    fn replace(&self, host: &str, key: NodeKey) {
        self.with(|m| set(m, host, key));
    }
}

struct ReaderStats {
    lookups: u64,
    elapsed: Duration,
    /// CPU time the thread actually got; below `elapsed` when other work took its core.
    cpu: Duration,
    samples_ns: Vec<u64>,
}

#[derive(Default)]
struct WriterStats {
    updates: u64,
    busy: Duration,
}

fn read_loop<S: KeyStore>(
    store: &S,
    names: &[String],
    first: usize,
    stop: &AtomicBool,
) -> ReaderStats {
    let mut i = first % names.len();
    let mut next = || {
        i = (i + STRIDE) % names.len();
        names[i].as_str()
    };
    let (mut lookups, mut hits) = (0u64, 0u64);
    let mut samples_ns = Vec::new();
    let (start, cpu_start) = (Instant::now(), thread_cpu());
    while !stop.load(Ordering::Relaxed) {
        for _ in 1..SAMPLE_EVERY {
            hits += u64::from(black_box(store.lookup(next())).is_some());
        }
        let host = next();
        let t = Instant::now();
        hits += u64::from(black_box(store.lookup(host)).is_some());
        samples_ns.push(t.elapsed().as_nanos() as u64);
        lookups += SAMPLE_EVERY;
    }
    let (elapsed, cpu) = (start.elapsed(), thread_cpu().saturating_sub(cpu_start));
    assert_eq!(hits, lookups, "a lookup of a present host missed");
    ReaderStats {
        lookups,
        elapsed,
        cpu,
        samples_ns,
    }
}

fn write_loop<S: KeyStore>(store: &S, names: &[String], stop: &AtomicBool) -> WriterStats {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let mut stats = WriterStats::default();
    let mut due = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let host = &names[(stats.updates as usize * STRIDE) % names.len()];
        let t = Instant::now();
        store.replace(host, NodeKey::generate(&mut rng));
        stats.busy += t.elapsed();
        stats.updates += 1;
        due += WRITE_PERIOD;
        match due.checked_duration_since(Instant::now()) {
            Some(wait) => thread::sleep(wait),
            // Behind schedule (slow update or descheduled): skip ticks rather than burst.
            None => due = Instant::now(),
        }
    }
    stats
}

/// One table row: runs variant `S` over `hosts` hosts, with or without the writer.
fn run<S: KeyStore>(hosts: usize, with_writer: bool) -> String {
    let mut rng = StdRng::seed_from_u64(SEED);
    let names: Vec<String> = (0..hosts).map(|i| format!("host{i:05}")).collect();
    let map: NodeKeyMap = names
        .iter()
        .map(|n| (n.clone(), NodeKey::generate(&mut rng)))
        .collect();
    let store = S::build(map);
    let stop = AtomicBool::new(false);
    let (readers, writer) = thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (store, names, stop) = (&store, &names, &stop);
                s.spawn(move || read_loop(store, names, r * hosts / READERS, stop))
            })
            .collect();
        let writer = with_writer.then(|| s.spawn(|| write_loop(&store, &names, &stop)));
        thread::sleep(RUN_TIME);
        stop.store(true, Ordering::Relaxed);
        let readers: Vec<ReaderStats> = readers.into_iter().map(|h| h.join().unwrap()).collect();
        let writer = writer.map(|h| h.join().unwrap()).unwrap_or_default();
        (readers, writer)
    });
    let mean = |f: fn(&ReaderStats) -> f64| readers.iter().map(f).sum::<f64>() / READERS as f64;
    let per_sec = READERS as f64 * mean(|r| r.lookups as f64 / r.elapsed.as_secs_f64());
    let ns_each = mean(|r| r.elapsed.as_nanos() as f64 / r.lookups as f64);
    let cpu_share = mean(|r| 100.0 * r.cpu.as_secs_f64() / r.elapsed.as_secs_f64());
    let mut samples: Vec<u64> = readers.into_iter().flat_map(|r| r.samples_ns).collect();
    let (updates, update) = if with_writer {
        let mean_us = writer.busy.as_secs_f64() * 1e6 / writer.updates.max(1) as f64;
        (writer.updates.to_string(), format!("{mean_us:.1}"))
    } else {
        ("–".into(), "–".into())
    };
    format!(
        "| {hosts} | {} | {} | {:.1} | {ns_each:.1} | {} | {} | {updates} | {update} | {cpu_share:.0} |",
        if with_writer { "1/ms" } else { "none" },
        S::NAME,
        per_sec / 1e6,
        percentile(&mut samples, 50),
        percentile(&mut samples, 99),
    )
}

/// The `pct`th percentile of `samples` (nearest rank), 0 if there are none.
fn percentile(samples: &mut [u64], pct: usize) -> u64 {
    samples.sort_unstable();
    match samples.len() {
        0 => 0,
        n => samples[(n * pct / 100).min(n - 1)],
    }
}

/// This thread's user + system CPU time, from /proc (Linux, 10 ms ticks); zero if unreadable.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Median cost of the `Instant::now` + `elapsed` pair that wraps each sampled lookup.
fn timer_overhead_ns() -> u64 {
    let mut samples: Vec<u64> = (0..100_000)
        .map(|_| Instant::now().elapsed().as_nanos() as u64)
        .collect();
    percentile(&mut samples, 50)
}

fn main() {
    println!(
        "timer overhead (p50 of an empty Instant pair): {} ns",
        timer_overhead_ns()
    );
    println!("{READERS} reader threads, {RUN_TIME:?} per run, nothing pinned\n");
    println!("| hosts | writer | variant | Mlookups/s (total) | ns/lookup (per thread) | p50 ns | p99 ns | updates | µs/update | reader CPU % |");
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (hosts, with_writer) in [(10_000, false), (10_000, true), (100, false), (100, true)] {
        println!("{}", run::<NodeKeyStore>(hosts, with_writer));
        println!("{}", run::<StdMutex>(hosts, with_writer));
        println!("{}", run::<PlRwLock>(hosts, with_writer));
        println!("{}", run::<Semaphore>(hosts, with_writer));
    }
}
