//! The compiled policy at scale: memory per user and per route, and what one change costs, at
//! 1k, 10k, 100k and 1M users (N users with a Unix identity and a class, N hosts, 2N routes,
//! shaped like `gatehouse_tests::dbgen`). Prints a Markdown table for docs/BENCHMARKS.md
//! ("Database scale"). Run: `cargo bench -p gatehouse-common --bench policy_scale`
//! (`SIZES="1000 10000"` for fewer).
//!
//! Not pure (a counting global allocator, the clock): a self-contained harness, no criterion.
//! Memory is what the allocator holds for the snapshot (live bytes after the compile minus
//! before; the allocator's own per-block overhead is not included, RSS is measured by
//! scripts/bench-database.sh). Per route: the difference between the database with its routes
//! and the same database without them, over the routes.

use gatehouse_common::policy::{
    Applied, Change, Database, Host, HostGroup, PolicySnapshot, Route, UnixAccount, User, UserClass,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// Counts the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Changes timed per size: each one `user lock`/`unlock` of a different user, alternating.
const CHANGES: usize = 2000;

fn fleet(n: usize, routes: bool) -> Database {
    let group = |i: usize| format!("grp{:03}", i % 100);
    Database {
        host_groups: (0..100)
            .map(|g| HostGroup {
                name: group(g),
                description: None,
            })
            .collect(),
        user_classes: (0..10)
            .map(|c| UserClass {
                name: format!("class{c}"),
                routes: vec![],
            })
            .collect(),
        hosts: (0..n)
            .map(|i| Host {
                name: format!("host{i:07}"),
                addresses: vec![format!(
                    "10.{}.{}.{}",
                    64 + i / 65536 % 64,
                    i / 256 % 256,
                    i % 256
                )],
                node_key: format!("{:064x}", i + 1),
                groups: vec![group(i)],
                may_ask_for_others: false,
            })
            .collect(),
        users: (0..n)
            .map(|i| {
                let name = format!("user{i:07}");
                User {
                    password_hash: format!(
                        "$argon2id$v=19$m=19456,t=2,p=1${i:022x}${:043x}",
                        i as u128 * 7919
                    ),
                    locked: false,
                    classes: vec![format!("class{}", i % 10)],
                    routes: match routes {
                        true => vec![
                            Route {
                                rule: format!("SSH:*->{name}@host{:04}*", i / 1000),
                                window: None,
                                expires: None,
                            },
                            Route {
                                rule: format!("LOGIN,SU:*->{name}@+{}", group(i / 7)),
                                window: None,
                                expires: None,
                            },
                        ],
                        false => vec![],
                    },
                    unix: Some(UnixAccount {
                        uid: 200_000 + i as u32,
                        gid: 200_000 + i as u32,
                        gecos: format!("Generated User {i}"),
                        home: format!("/home/{name}"),
                        shell: "/bin/bash".into(),
                    }),
                    name,
                }
            })
            .collect(),
        ..Database::default()
    }
}

/// Live bytes the compiled snapshot of `db` holds, and the snapshot.
fn compiled_bytes(db: &Database) -> (isize, PolicySnapshot, Duration) {
    let before = LIVE.load(Ordering::Relaxed);
    let start = Instant::now();
    let snapshot = PolicySnapshot::compile(db).expect("the generated database compiles");
    let took = start.elapsed();
    (LIVE.load(Ordering::Relaxed) - before, snapshot, took)
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let at = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[at].as_secs_f64() * 1e6
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "1000 10000 100000 1000000".into())
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    println!("| users | compile s | bytes per user (with its host) | bytes per route | change p50 µs | change p99 µs | no-op µs | bytes kept per change |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let (without, bare, _) = compiled_bytes(&fleet(n, false));
        drop(bare);
        let db = fleet(n, true);
        let (with, mut snapshot, took) = compiled_bytes(&db);
        drop(db);
        let per_user = without as f64 / n as f64;
        let per_route = (with - without) as f64 / (2 * n) as f64;
        // Each change replaces the current snapshot (the old one is dropped, as a server
        // publishing the new one would once readers let go): what it keeps is its new path.
        let mut times = Vec::with_capacity(CHANGES);
        let base = LIVE.load(Ordering::Relaxed);
        for k in 0..CHANGES {
            let change = Change::SetLocked {
                user: format!("user{:07}", (k * 7919) % n),
                locked: k % 2 == 0,
            };
            let start = Instant::now();
            let applied = snapshot.apply(&change).expect("a valid change");
            times.push(start.elapsed());
            if let Applied::Changed(next) = applied {
                snapshot = next;
            }
        }
        let kept = (LIVE.load(Ordering::Relaxed) - base) as f64 / CHANGES as f64;
        let noop = Change::SetLocked {
            user: "user0000000".into(),
            locked: snapshot.is_locked("user0000000"),
        };
        let start = Instant::now();
        for _ in 0..CHANGES {
            black_box(snapshot.apply(black_box(&noop)).expect("valid"));
        }
        let noop_us = start.elapsed().as_secs_f64() * 1e6 / CHANGES as f64;
        println!(
            "| {n} | {:.2} | {per_user:.0} | {per_route:.0} | {:.1} | {:.1} | {noop_us:.2} | {kept:.0} |",
            took.as_secs_f64(),
            percentile(&mut times, 0.5),
            percentile(&mut times, 0.99),
        );
    }
}
