//! The balancing simulation (tests/src/sim): the agent's default policy against the seed's rule
//! and the policies without probes, on FACTS.md's scenario, swept over seeds.
//!
//! Replay one seed with its full report:
//! `GATEHOUSE_SIM_SEED=3 cargo test -p gatehouse-tests --test balance_sim -- --nocapture`.
//! Print the table for docs/BENCHMARKS.md:
//! `cargo test -p gatehouse-tests --test balance_sim --release -- --ignored --nocapture print_balance_table`.

use gatehouse_tests::sim::{report, run_all, Policy, RunStats, Scenario, Staleness, Summary};

/// Seeds swept by the test (0..SEEDS). Small enough that the sweep stays under 10 s in a debug
/// build on the 2-core machine.
const SEEDS: u64 = 6;
/// Requests per run in the test (about 1,900 fast-replica service times of simulated time).
/// Every one of seeds 0..200 passed at this size (checked once with a release build).
const TEST_ARRIVALS: usize = 12_000;

/// Seeds to run: `GATEHOUSE_SIM_SEED=n` replays only `n`, otherwise `0..default`.
fn seeds(default: u64) -> (Vec<u64>, bool) {
    match std::env::var("GATEHOUSE_SIM_SEED") {
        Ok(s) => {
            let seed = s
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("GATEHOUSE_SIM_SEED={s:?} is not a u64"));
            (vec![seed], true)
        }
        Err(_) => ((0..default).collect(), false),
    }
}

fn replay_hint(seed: u64) -> String {
    format!(
        "seed {seed}; replay: GATEHOUSE_SIM_SEED={seed} cargo test -p gatehouse-tests \
         --test balance_sim -- --nocapture"
    )
}

fn by_policy(runs: &[RunStats], policy: Policy) -> &RunStats {
    runs.iter()
        .find(|r| r.policy == policy)
        .expect("run_all runs every policy")
}

#[test]
fn probing_beats_the_seed_rule_and_random_and_spares_the_slow_replicas() {
    let scenario = Scenario::facts(TEST_ARRIVALS);
    let slow = scenario.slow_replicas();
    assert_eq!(slow, vec![6, 7]);
    let (seeds, replay) = seeds(SEEDS);
    for seed in seeds {
        let runs = run_all(&scenario, seed);
        let text = report::seed_report(&scenario, &runs);
        if replay {
            println!("{text}");
        }
        let probing = by_policy(&runs, Policy::Probing);
        let hint = replay_hint(seed);
        for other in [Policy::SeedEstimate, Policy::Random] {
            let o = by_policy(&runs, other);
            assert!(
                probing.mean_sojourn() < o.mean_sojourn(),
                "probing's mean sojourn {:.2} is not below {other}'s {:.2}; {hint}\n{text}",
                probing.mean_sojourn(),
                o.mean_sojourn(),
            );
        }
        // The agent's first picks, not the served shares: the replica's busy limit redirects
        // whatever exceeds a slow replica's capacity, so under every policy it ends up
        // serving about its capacity share. What the balancer decides is where requests are
        // sent first, and each redirect is a wasted round trip.
        let rr = by_policy(&runs, Policy::RoundRobin);
        assert!(
            probing.pick_share_of(&slow) < rr.pick_share_of(&slow),
            "slow replicas' first-pick share under probing {:.3} is not below round robin's \
             {:.3}; {hint}\n{text}",
            probing.pick_share_of(&slow),
            rr.pick_share_of(&slow),
        );
        assert!(
            probing.redirects < rr.redirects,
            "probing redirected {} requests, round robin {}; {hint}\n{text}",
            probing.redirects,
            rr.redirects,
        );
    }
}

/// Sizes for the docs table: more seeds and requests than the test (run it with --release;
/// about half a minute there, several minutes in a debug build).
const TABLE_SEEDS: u64 = 10;
const TABLE_ARRIVALS: usize = 100_000;

#[test]
#[ignore = "prints the report for docs/BENCHMARKS.md"]
fn print_balance_table() {
    let (seeds, _) = seeds(TABLE_SEEDS);
    let base = Scenario::facts(TABLE_ARRIVALS);
    let scenarios = [
        ("Default fanout 3", base.clone()),
        (
            "All 8 probed",
            Scenario {
                fanout: base.replicas.len(),
                ..base.clone()
            },
        ),
        (
            "Fanout 2 (least reported wait = best of two)",
            Scenario {
                fanout: 2,
                ..base.clone()
            },
        ),
        (
            "Fresh reports, fanout 3",
            Scenario {
                staleness: Staleness::Delayed(0),
                ..base.clone()
            },
        ),
    ];
    for (title, scenario) in scenarios {
        let runs: Vec<RunStats> = seeds.iter().flat_map(|&s| run_all(&scenario, s)).collect();
        let summaries: Vec<Summary> = Policy::ALL
            .iter()
            .filter_map(|&p| Summary::of(p, &runs))
            .collect();
        println!("### {title}\n");
        println!("{} seeds; {}.\n", seeds.len(), report::describe(&scenario));
        println!("{}", report::markdown_table(&scenario, &summaries));
    }
}
