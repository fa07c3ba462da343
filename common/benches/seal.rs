//! Sealing benchmark: the CPU cost of sealing and opening one small frame, the work every
//! request and every reply pays on both ends, for each cipher suite. ChaCha20-Poly1305 derives
//! a fresh Poly1305 key per frame, so its small frames are dominated by per-message setup.
//! AES-256-GCM is measured both ways a session can run it: built per frame from the kept key
//! (the default), and kept built between frames (`prepare`, for a bounded number of sessions).
//!
//! Not pure (clocks): a self-contained timing harness, no criterion. Run with
//! `cargo bench -p gatehouse-common --bench seal`; it prints a Markdown table for
//! docs/BENCHMARKS.md. Each row runs for `RUN_TIME` and stops by itself. Which ChaCha20 and
//! Poly1305 backends are measured is decided at build time (`.cargo/config.toml`); AES and
//! GHASH pick hardware or software at run time (the header line says which), and only
//! `--cfg aes_force_soft --cfg polyval_force_soft` forces software. Compare backends by
//! building with different `--cfg` flags, one table each.

use gatehouse_common::crypto::{aes_hardware, CipherSuite, Opener, Sealer};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Wall time per row: long enough to smooth scheduler noise, short enough for a quick run.
const RUN_TIME: Duration = Duration::from_millis(1500);
/// Frame cap handed to the sealer (the wire's 64 KiB limit).
const CAP: usize = 64 * 1024;
/// Plaintext sizes: an authorize request (~40 B), a reply (~20 B), a larger request, a
/// replication batch.
const SIZES: [usize; 4] = [20, 40, 200, 4096];

fn main() {
    println!("AES hardware in use here: {}", aes_hardware());
    println!();
    println!("| suite | cipher kept built | plaintext bytes | seal ns | open ns | seal+open ns |");
    println!("|---|---|---:|---:|---:|---:|");
    for suite in CipherSuite::ALL {
        for prepared in [false, true] {
            if prepared && suite == CipherSuite::ChaCha20Poly1305 {
                continue; // nothing to keep: ChaCha20-Poly1305 holds only its key
            }
            for size in SIZES {
                row(suite, prepared, size);
            }
        }
    }
}

/// A sealer and an opener for `suite`, kept built when `prepared`.
fn pair(suite: CipherSuite, prepared: bool, key: &[u8; 32]) -> (Sealer, Opener) {
    let (mut sealer, mut opener) = (Sealer::new(suite, key), Opener::new(suite, key));
    if prepared {
        sealer.prepare();
        opener.prepare();
    }
    (sealer, opener)
}

/// Times sealing and opening `size`-byte plaintexts under `suite`; prints one table row.
fn row(suite: CipherSuite, prepared: bool, size: usize) {
    let plain = vec![0x5a_u8; size];
    let key = [7_u8; 32];
    let (mut sealer, _) = pair(suite, prepared, &key);
    let mut out = Vec::with_capacity(size + 64);
    let (mut n, started) = (0_u64, Instant::now());
    while started.elapsed() < RUN_TIME {
        for _ in 0..1000 {
            out.clear();
            let r = sealer.seal_frame(CAP, &mut out, |b| {
                b.extend_from_slice(&plain);
                Ok(())
            });
            black_box((&r, &out));
        }
        n += 1000;
    }
    let seal_ns = started.elapsed().as_nanos() as f64 / n as f64;

    // Open: seal a fresh frame per iteration outside the timed region is too slow to
    // interleave, so seal a batch first, then time opening it in order.
    let (mut sealer, mut opener) = pair(suite, prepared, &key);
    let mut frames = Vec::with_capacity(1000);
    let (mut m, mut spent) = (0_u64, Duration::ZERO);
    while spent < RUN_TIME {
        frames.clear();
        for _ in 0..1000 {
            let mut f = Vec::with_capacity(size + 64);
            let _ = sealer.seal_frame(CAP, &mut f, |b| {
                b.extend_from_slice(&plain);
                Ok(())
            });
            frames.push(f);
        }
        let t = Instant::now();
        for f in frames.iter_mut() {
            let r = opener.open_in_place(&mut f[4..]).map(|p| p.len());
            black_box(r.ok());
        }
        spent += t.elapsed();
        m += 1000;
    }
    let open_ns = spent.as_nanos() as f64 / m as f64;
    println!(
        "| {} | {} | {size} | {seal_ns:.0} | {open_ns:.0} | {:.0} |",
        suite.name(),
        if prepared { "yes" } else { "no" },
        seal_ns + open_ns
    );
}
