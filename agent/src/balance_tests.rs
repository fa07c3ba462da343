use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn probed(server: usize, recommended_us: u64, seed_us: u64) -> Candidate {
    Candidate {
        server,
        load: Some(LoadReport {
            recommended_wait_us: recommended_us,
            seed_wait_us: seed_us,
            ..LoadReport::default()
        }),
    }
}

fn unprobed(server: usize) -> Candidate {
    Candidate { server, load: None }
}

/// Fraction of `draws` picks that land on each position.
fn shares(candidates: &[Candidate], mode: Balancing, draws: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state = RoundRobinState::default();
    let mut counts = vec![0usize; candidates.len()];
    for _ in 0..draws {
        let i = choose(candidates, mode, &mut state, &mut rng).unwrap();
        counts[i] += 1;
    }
    counts.iter().map(|&c| c as f64 / draws as f64).collect()
}

#[test]
fn waits_of_1ms_and_3ms_split_75_25() {
    let cands = [probed(0, 1_000, 0), probed(1, 3_000, 0)];
    let s = shares(&cands, Balancing::Probing, 100_000, 7);
    assert!((s[0] - 0.75).abs() < 0.01, "{s:?}");
    assert!((s[1] - 0.25).abs() < 0.01, "{s:?}");
}

#[test]
fn seed_estimate_weights_by_seed_wait_not_recommended() {
    // Recommended says equal, seed says 1:3.
    let cands = [probed(0, 2_000, 1_000), probed(1, 2_000, 3_000)];
    let s = shares(&cands, Balancing::SeedEstimate, 100_000, 11);
    assert!((s[0] - 0.75).abs() < 0.01, "{s:?}");
    let s = shares(&cands, Balancing::Probing, 100_000, 11);
    assert!((s[0] - 0.5).abs() < 0.01, "{s:?}");
}

#[test]
fn a_given_seed_gives_a_fixed_pick() {
    let cands = [
        probed(0, 1_000, 0),
        probed(1, 2_000, 0),
        probed(2, 4_000, 0),
    ];
    let mut rng = StdRng::seed_from_u64(42);
    let mut state = RoundRobinState::default();
    let picks: Vec<usize> = (0..8)
        .map(|_| choose(&cands, Balancing::Probing, &mut state, &mut rng).unwrap())
        .collect();
    assert_eq!(picks, [0, 0, 1, 0, 0, 0, 1, 1]);
    // The same picks follow from the rule: one uniform draw u in [0, 1) per pick, scaled by
    // the total weight 4:2:1 of 7, lands in [0, 4/7) → 0, [4/7, 6/7) → 1, [6/7, 1) → 2.
    let mut fresh = StdRng::seed_from_u64(42);
    let by_rule: Vec<usize> = (0..8)
        .map(|_| match fresh.gen::<f64>() {
            u if u < 4.0 / 7.0 => 0,
            u if u < 6.0 / 7.0 => 1,
            _ => 2,
        })
        .collect();
    assert_eq!(picks, by_rule);
}

#[test]
fn weight_is_clamped_at_both_ends() {
    assert_eq!(weight(0), weight(MIN_WAIT_US));
    assert_eq!(weight(1), 1.0 / MIN_WAIT_US as f64);
    assert_eq!(weight(u64::MAX), 1.0 / MAX_WAIT_US as f64);
    assert_eq!(weight(1_000), 0.001);
    assert!(weight(0).is_finite() && weight(u64::MAX) > 0.0);
}

#[test]
fn idle_replicas_with_seed_estimate_zero_share_equally() {
    // Both below the floor: both clamp to MIN_WAIT_US, so neither takes everything.
    let cands = [probed(0, 1, 0), probed(1, 1, 50)];
    let s = shares(&cands, Balancing::SeedEstimate, 100_000, 3);
    assert!((s[0] - 0.5).abs() < 0.01, "{s:?}");
}

#[test]
fn an_overloaded_server_still_gets_a_trickle() {
    // 1 ms vs u64::MAX (clamped to 10 s): ratio 10 000 : 1.
    let cands = [probed(0, 1_000, 0), probed(1, u64::MAX, 0)];
    let s = shares(&cands, Balancing::Probing, 200_000, 5);
    assert!(s[1] > 0.0 && s[1] < 0.0005, "{s:?}");
}

#[test]
fn empty_candidates_give_none_in_every_mode() {
    let mut rng = StdRng::seed_from_u64(1);
    for mode in [
        Balancing::Probing,
        Balancing::SeedEstimate,
        Balancing::RoundRobin,
        Balancing::Random,
        Balancing::Ordered,
    ] {
        let mut state = RoundRobinState::default();
        assert_eq!(choose(&[], mode, &mut state, &mut rng), None);
        assert!(order_candidates(&[], mode, &mut state, &mut rng).is_empty());
    }
}

#[test]
fn unanswered_candidates_come_only_after_answered_ones() {
    let cands = [unprobed(0), probed(1, 9_000_000, 0), unprobed(2)];
    let mut rng = StdRng::seed_from_u64(9);
    let mut state = RoundRobinState::default();
    for _ in 0..1_000 {
        let order = order_candidates(&cands, Balancing::Probing, &mut state, &mut rng);
        assert_eq!(order[0], 1);
        assert_eq!(order.len(), 3);
    }
    // With no report at all, still a pick (uniform), so UDP loss never blocks a login.
    let cands = [unprobed(4), unprobed(5)];
    let s = shares(&cands, Balancing::Probing, 100_000, 2);
    assert!((s[0] - 0.5).abs() < 0.01, "{s:?}");
}

#[test]
fn ordered_always_takes_the_first_and_uses_no_randomness() {
    let cands = [unprobed(3), unprobed(1), unprobed(2)];
    let mut rng = StdRng::seed_from_u64(1);
    let mut state = RoundRobinState::default();
    assert_eq!(
        choose(&cands, Balancing::Ordered, &mut state, &mut rng),
        Some(0)
    );
    assert_eq!(
        order_candidates(&cands, Balancing::Ordered, &mut state, &mut rng),
        vec![0, 1, 2]
    );
    let mut fresh = StdRng::seed_from_u64(1);
    assert_eq!(rng.gen::<u64>(), fresh.gen::<u64>());
}

#[test]
fn round_robin_rotates_by_server_index_even_when_the_set_changes() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut state = RoundRobinState::default();
    let all = [unprobed(0), unprobed(1), unprobed(2)];
    let mut served = Vec::new();
    for _ in 0..4 {
        let i = choose(&all, Balancing::RoundRobin, &mut state, &mut rng).unwrap();
        served.push(all[i].server);
    }
    assert_eq!(served, vec![0, 1, 2, 0]);
    // Server 1 drops out: after 0 comes 2.
    let some = [unprobed(0), unprobed(2)];
    let i = choose(&some, Balancing::RoundRobin, &mut state, &mut rng).unwrap();
    assert_eq!(some[i].server, 2);
    // The full order continues the rotation and advances the state by one request only.
    let order = order_candidates(&all, Balancing::RoundRobin, &mut state, &mut rng);
    assert_eq!(order, vec![0, 1, 2]);
    let i = choose(&all, Balancing::RoundRobin, &mut state, &mut rng).unwrap();
    assert_eq!(all[i].server, 1);
}

#[test]
fn random_is_uniform() {
    let cands = [
        probed(0, 1_000, 0),
        probed(1, 9_000, 0),
        unprobed(2),
        unprobed(3),
    ];
    let s = shares(&cands, Balancing::Random, 100_000, 4);
    for share in s {
        assert!((share - 0.25).abs() < 0.01, "{share}");
    }
}

#[test]
fn the_order_is_a_permutation_led_by_the_weighted_pick() {
    let cands = [
        probed(0, 1_000, 0),
        probed(1, 3_000, 0),
        probed(2, 6_000, 0),
    ];
    let mut rng = StdRng::seed_from_u64(8);
    let mut state = RoundRobinState::default();
    let mut firsts = [0usize; 3];
    let mut seconds_after_0 = [0usize; 3];
    for _ in 0..100_000 {
        let order = order_candidates(&cands, Balancing::Probing, &mut state, &mut rng);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2]);
        firsts[order[0]] += 1;
        if order[0] == 0 {
            seconds_after_0[order[1]] += 1;
        }
    }
    // Weights 6:2:1 of 9 for the first pick.
    assert!((firsts[0] as f64 / 100_000.0 - 6.0 / 9.0).abs() < 0.01);
    assert!((firsts[2] as f64 / 100_000.0 - 1.0 / 9.0).abs() < 0.01);
    // Without replacement: after 0, the rest split 2:1.
    let n = (seconds_after_0[1] + seconds_after_0[2]) as f64;
    assert!((seconds_after_0[1] as f64 / n - 2.0 / 3.0).abs() < 0.01);
}

#[test]
fn ron_names_are_lowercase() {
    let text = ron::to_string(&Balancing::SeedEstimate).unwrap();
    assert_eq!(text, "seed_estimate");
    for (name, mode) in [
        ("probing", Balancing::Probing),
        ("seed_estimate", Balancing::SeedEstimate),
        ("seedestimate", Balancing::SeedEstimate),
        ("round_robin", Balancing::RoundRobin),
        ("roundrobin", Balancing::RoundRobin),
        ("random", Balancing::Random),
        ("ordered", Balancing::Ordered),
    ] {
        assert_eq!(ron::from_str::<Balancing>(name).unwrap(), mode, "{name}");
    }
    assert!(ron::from_str::<Balancing>("Probing").is_err());
    assert!(Balancing::Probing.needs_probes() && !Balancing::Ordered.needs_probes());
}
