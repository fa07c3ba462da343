use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

const MS: Duration = Duration::from_millis(1);

fn params(fanout: usize, min_replies: usize) -> ProbeParams {
    ProbeParams {
        fanout,
        min_replies,
        timeout: 150 * MS,
    }
}

fn load(wait_us: u64) -> LoadReport {
    LoadReport {
        recommended_wait_us: wait_us,
        ..LoadReport::default()
    }
}

fn servers_of(round: &ProbeRound) -> Vec<usize> {
    round.targets().iter().map(|t| t.server).collect()
}

#[test]
fn probes_every_server_when_there_are_no_more_than_the_fanout() {
    let t0 = Instant::now();
    let budget = Deadline::after(t0, 5000 * MS);
    let mut rng = StdRng::seed_from_u64(1);
    let round = ProbeRound::new(t0, 3, &AvoidList::new(3), params(3, 2), &budget, &mut rng);
    assert_eq!(servers_of(&round), vec![0, 1, 2]);
    let ids: Vec<u64> = round.targets().iter().map(|t| t.probe_id).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    assert_eq!(round.deadline(), t0 + 150 * MS);
}

#[test]
fn probes_a_random_subset_of_fanout_servers_covering_all_over_time() {
    let t0 = Instant::now();
    let budget = Deadline::after(t0, 5000 * MS);
    let mut rng = StdRng::seed_from_u64(2);
    let avoid = AvoidList::new(10);
    let mut seen = [0usize; 10];
    for _ in 0..10_000 {
        let round = ProbeRound::new(t0, 10, &avoid, params(3, 2), &budget, &mut rng);
        let s = servers_of(&round);
        assert_eq!(s.len(), 3);
        assert!(s[0] < s[1] && s[1] < s[2]);
        for x in s {
            seen[x] += 1;
        }
    }
    // Each server is in 3 of 10 rounds on average.
    for n in seen {
        assert!((2_850..=3_150).contains(&n), "{seen:?}");
    }
}

#[test]
fn avoided_and_suspect_servers_are_probed_only_when_needed() {
    let t0 = Instant::now();
    let budget = Deadline::after(t0, 5000 * MS);
    let mut rng = StdRng::seed_from_u64(3);
    let mut avoid = AvoidList::new(5);
    avoid.avoid_for(0, t0, 5000 * MS);
    avoid.avoid_for(1, t0, 5000 * MS);
    avoid.mark_suspect(2);
    for _ in 0..100 {
        let round = ProbeRound::new(t0, 5, &avoid, params(2, 2), &budget, &mut rng);
        assert_eq!(servers_of(&round), vec![3, 4]);
        let round = ProbeRound::new(t0, 5, &avoid, params(3, 2), &budget, &mut rng);
        assert_eq!(servers_of(&round), vec![2, 3, 4]);
        let round = ProbeRound::new(t0, 5, &avoid, params(4, 2), &budget, &mut rng);
        let s = servers_of(&round);
        assert!(s == vec![0, 2, 3, 4] || s == vec![1, 2, 3, 4], "{s:?}");
    }
}

#[test]
fn the_round_ends_at_min_replies() {
    let t0 = Instant::now();
    let budget = Deadline::after(t0, 5000 * MS);
    let mut rng = StdRng::seed_from_u64(4);
    let mut round = ProbeRound::new(t0, 3, &AvoidList::new(3), params(3, 2), &budget, &mut rng);
    let t = round.targets();
    assert!(!round.is_done(t0));
    assert_eq!(round.poll_timeout(t0 + 50 * MS), 100 * MS);
    assert_eq!(
        round.handle_reply(t[2].server, t[2].probe_id, load(3000)),
        ReplyOutcome::Accepted
    );
    assert!(!round.is_done(t0 + 10 * MS));
    assert_eq!(
        round.handle_reply(t[0].server, t[0].probe_id, load(1000)),
        ReplyOutcome::Accepted
    );
    assert!(round.is_done(t0 + 11 * MS));
    assert_eq!(round.poll_timeout(t0 + 11 * MS), Duration::ZERO);
    let out = round.finish();
    assert_eq!(
        out.candidates,
        vec![
            Candidate {
                server: 0,
                load: Some(load(1000))
            },
            Candidate {
                server: 2,
                load: Some(load(3000))
            },
            Candidate {
                server: 1,
                load: None
            },
        ]
    );
    assert_eq!(
        out.silent,
        Vec::<usize>::new(),
        "server 1 was not given its timeout: slower, not silent (never [suspect] for that)"
    );
}

#[test]
fn only_a_round_that_waited_its_timeout_calls_the_unanswered_silent() {
    let t0 = Instant::now();
    let budget = Deadline::after(t0, 5000 * MS);
    let mut rng = StdRng::seed_from_u64(9);
    let params = ProbeParams {
        fanout: 3,
        timeout: 100 * MS,
        min_replies: 2,
    };
    let mut round = ProbeRound::for_servers(t0, vec![0, 1, 2], params, &budget, &mut rng);
    let t = round.targets();
    round.handle_reply(t[0].server, t[0].probe_id, load(1000));
    assert!(!round.is_done(t0 + 99 * MS));
    assert!(round.is_done(t0 + 100 * MS));
    assert_eq!(round.finish().silent, vec![1, 2]);
}

#[test]
fn unknown_duplicate_and_misaddressed_replies_are_ignored() {
    let t0 = Instant::now();
    let budget = Deadline::after(t0, 5000 * MS);
    let mut rng = StdRng::seed_from_u64(5);
    let mut round = ProbeRound::new(t0, 3, &AvoidList::new(3), params(3, 3), &budget, &mut rng);
    let t = round.targets();
    let bogus = t[0].probe_id ^ t[1].probe_id ^ t[2].probe_id ^ 1;
    assert_eq!(round.handle_reply(0, bogus, load(1)), ReplyOutcome::Unknown);
    // Server 1's id arriving from server 0: not counted.
    assert_eq!(
        round.handle_reply(t[0].server, t[1].probe_id, load(1)),
        ReplyOutcome::Unknown
    );
    assert_eq!(
        round.handle_reply(t[1].server, t[1].probe_id, load(500)),
        ReplyOutcome::Accepted
    );
    assert_eq!(
        round.handle_reply(t[1].server, t[1].probe_id, load(1)),
        ReplyOutcome::Duplicate
    );
    assert_eq!(round.replies(), 1);
    let out = round.finish();
    assert_eq!(out.candidates[0].load, Some(load(500)));
}

#[test]
fn the_round_ends_at_the_probe_deadline_and_reports_the_silent() {
    let t0 = Instant::now();
    let budget = Deadline::after(t0, 5000 * MS);
    let mut rng = StdRng::seed_from_u64(6);
    let mut avoid = AvoidList::new(3);
    avoid.mark_suspect(0);
    let mut round = ProbeRound::new(t0, 3, &avoid, params(3, 2), &budget, &mut rng);
    let t = round.targets();
    round.handle_reply(t[0].server, t[0].probe_id, load(1000));
    assert!(!round.is_done(t0 + 149 * MS));
    assert!(round.is_done(t0 + 150 * MS));
    let out = round.finish();
    assert_eq!(out.silent, vec![1, 2]);
    out.record(&mut avoid);
    assert!(!avoid.is_suspect(0) && avoid.is_suspect(1) && avoid.is_suspect(2));
}

#[test]
fn the_probe_deadline_is_capped_by_the_request_budget() {
    let t0 = Instant::now();
    let budget = Deadline::after(t0, 40 * MS);
    let mut rng = StdRng::seed_from_u64(7);
    let round = ProbeRound::new(t0, 3, &AvoidList::new(3), params(3, 2), &budget, &mut rng);
    assert_eq!(round.deadline(), t0 + 40 * MS);
}

#[test]
fn min_replies_is_clamped_to_what_was_probed() {
    let t0 = Instant::now();
    let budget = Deadline::after(t0, 5000 * MS);
    let mut rng = StdRng::seed_from_u64(8);
    let mut round = ProbeRound::new(t0, 1, &AvoidList::new(1), params(3, 2), &budget, &mut rng);
    let t = round.targets();
    round.handle_reply(t[0].server, t[0].probe_id, load(1000));
    assert!(round.is_done(t0));
    // No servers: done at once, nothing found.
    let round = ProbeRound::new(t0, 0, &AvoidList::new(0), params(3, 2), &budget, &mut rng);
    assert!(round.is_done(t0));
    assert_eq!(round.finish().candidates, vec![]);
}

#[test]
fn unprobed_candidates_keep_configured_order_with_healthy_first() {
    let t0 = Instant::now();
    let mut avoid = AvoidList::new(4);
    avoid.avoid_for(0, t0, 1000 * MS);
    avoid.mark_suspect(1);
    let servers: Vec<usize> = unprobed_candidates(4, &avoid, t0)
        .iter()
        .map(|c| c.server)
        .collect();
    assert_eq!(servers, vec![2, 3, 1, 0]);
}
