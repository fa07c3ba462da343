use super::*;

fn args(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

#[test]
fn run_defaults_are_one_thread_closed_loop_probing() {
    let Command::Run(run) = parse(&args(
        "run --servers 127.0.0.1:1,127.0.0.1:2 --identities i.ron",
    ))
    .unwrap() else {
        panic!("not run")
    };
    assert_eq!(run.servers.len(), 2);
    assert_eq!(run.threads, 1);
    assert_eq!(
        run.mode,
        Mode::Closed {
            concurrency: 1,
            think: Duration::ZERO
        }
    );
    assert_eq!(run.balancing, Balancing::Probing);
    assert_eq!(run.duration, Duration::from_secs(10));
    assert_eq!(run.mix, Mix::default());
}

#[test]
fn open_loop_takes_a_rate_with_or_without_per_second() {
    let line = "run --servers 127.0.0.1:1 --identities i --mode open --rate 5000/s \
                --arrivals even --balancing round_robin --duration=2.5";
    let Command::Run(run) = parse(&args(line)).unwrap() else {
        panic!("not run")
    };
    assert_eq!(
        run.mode,
        Mode::Open {
            rate: 5000.0,
            poisson: false
        }
    );
    assert_eq!(run.balancing, Balancing::RoundRobin);
    assert_eq!(run.duration, Duration::from_millis(2500));
}

#[test]
fn mistakes_get_messages_that_name_the_option() {
    let cases = [
        ("launch", "unrecognized subcommand 'launch'"),
        ("demp", "a similar subcommand exists: 'demo'"),
        (
            "provision --out d",
            "the following required arguments were not provided:\n  --agents <N>",
        ),
        (
            "provision --agents 0 --out d",
            "--agents: \"0\" is not valid: must be 1..=100000",
        ),
        (
            "provision --agents",
            "a value is required for '--agents <N>'",
        ),
        ("run --identities i", "--servers <A,B,C>"),
        ("run --servers nowhere --identities i", "expected IP:PORT"),
        (
            "run --servers 127.0.0.1:1 --identities i --mode open",
            "--rate is required",
        ),
        (
            "run --servers 127.0.0.1:1 --identities i --rate 5",
            "only with --mode open",
        ),
        (
            "run --servers 127.0.0.1:1 --identities i --duration nan",
            "--duration",
        ),
        (
            "run --servers 127.0.0.1:1 --identities i --mix deny=5",
            "--mix: authorize and",
        ),
        (
            "run --servers 127.0.0.1:1 --identities i --balancing best",
            "expected probing",
        ),
        (
            "run --servers 127.0.0.1:1 --identities i --frobnicate 1",
            "unexpected argument '--frobnicate'",
        ),
        (
            "run --servers 127.0.0.1:1 --identities i --theads 2",
            "tip: a similar argument exists: '--threads'",
        ),
        ("redis --addr 127.0.0.1:6379", "--connections <N>"),
        (
            "direct --server 127.0.0.1:7701 --agents 5",
            "--identities <FILE>",
        ),
        ("direct --identities i --agents 5", "--server <HOST:PORT>"),
        ("demo --agents 2000 --duration 0", "--duration"),
    ];
    for (line, want) in cases {
        let err = parse(&args(line)).unwrap_err().to_string();
        assert!(err.contains(want), "{line:?}: {err:?} lacks {want:?}");
    }
    let help = parse(&args("")).unwrap_err();
    assert_eq!(
        help.kind(),
        clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    command().debug_assert();
}

#[test]
fn demo_defaults_match_the_readme() {
    assert_eq!(
        parse(&args("demo")).unwrap(),
        Command::Demo(DemoArgs {
            duration: Duration::from_secs(20),
            agents: 2000,
            think: Duration::from_millis(DEFAULT_DEMO_THINK_MS),
            json: None
        })
    );
}

#[test]
fn the_lean_client_takes_one_server_and_the_identities() {
    assert_eq!(
        parse(&args(
            "direct --server 127.0.0.1:7701 --identities ids.ron --agents 500 --duration 5 --pin-cpu 1"
        ))
        .unwrap(),
        Command::Direct(DirectArgs {
            server: "127.0.0.1:7701".parse().unwrap(),
            identities: "ids.ron".into(),
            agents: 500,
            duration: Duration::from_secs(5),
            json: None,
            pin_cpu: Some(1),
            seed: 1,
        })
    );
}

#[test]
fn phases_are_increasing_whole_seconds() {
    let base = "run --servers 127.0.0.1:1 --identities i.ron";
    let run = |extra: &str| parse(&args(&format!("{base} {extra}")));
    match run("--phases 10,30").unwrap() {
        Command::Run(r) => assert_eq!(r.phases, vec![10, 30]),
        other => panic!("{other:?}"),
    }
    match run("").unwrap() {
        Command::Run(r) => assert!(r.phases.is_empty()),
        other => panic!("{other:?}"),
    }
    for bad in [
        "--phases 30,10",
        "--phases 0",
        "--phases 10,10",
        "--phases x",
    ] {
        assert!(run(bad).is_err(), "{bad}");
    }
}
