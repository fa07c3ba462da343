use super::*;

fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
    AgentConfig::parse(Path::new("agent.ron"), text)
}

const MINIMAL: &str = r#"(host: "h1", node_key_file: "/k", servers: ["10.0.0.1:7701"])"#;

/// MINIMAL with `extra` fields added.
fn with(extra: &str) -> String {
    format!(r#"(host: "h1", node_key_file: "/k", servers: ["10.0.0.1:7701"], {extra})"#)
}

fn field_of(err: &ConfigError) -> &str {
    err.field.as_deref().unwrap_or("")
}

#[test]
fn the_example_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/agent.ron");
    let c = AgentConfig::load(&path).unwrap();
    assert_eq!(c.host, "web01.example.org");
    let addrs: Vec<String> = c.server_addrs().iter().map(|a| a.to_string()).collect();
    assert_eq!(
        addrs,
        ["127.0.0.1:7701", "127.0.0.1:7702", "127.0.0.1:7703"]
    );
    assert_eq!(c.balancing, Balancing::Probing);
    // The example spells out the defaults.
    let defaults = parse(
        r#"(host: "web01.example.org", node_key_file: "/etc/gatehouse/node.key",
            servers: ["127.0.0.1:7701", "127.0.0.1:7702", "127.0.0.1:7703"])"#,
    )
    .unwrap();
    assert_eq!(c, defaults);
}

#[test]
fn defaults_fill_every_optional_field() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.balancing, Balancing::Probing);
    assert_eq!(c.probe_fanout, 3);
    assert_eq!(c.probe_min_replies, 2);
    assert_eq!(c.probe_timeout(), Duration::from_millis(150));
    assert_eq!(c.connect_timeout(), Duration::from_millis(1000));
    assert_eq!(c.attempt_delay(), Duration::from_millis(250));
    assert_eq!(c.request_deadline(), Duration::from_millis(5000));
    assert_eq!(c.idle_close(), Duration::from_millis(10_000));
    assert_eq!(c.max_connection_age(), Duration::from_millis(60_000));
    assert_eq!(c.avoid(), Duration::from_millis(5000));
    assert_eq!(c.socket_path, Path::new("/run/gatehouse/agent.sock"));
    assert_eq!(c.server_addrs(), &["10.0.0.1:7701".parse().unwrap()]);
}

#[test]
fn balancing_modes_are_read_by_lowercase_name() {
    let c = parse(&with("balancing: round_robin")).unwrap();
    assert_eq!(c.balancing, Balancing::RoundRobin);
    let c = parse(&with("balancing: seed_estimate")).unwrap();
    assert_eq!(c.balancing, Balancing::SeedEstimate);
    assert_eq!(
        field_of(&parse(&with("balancing: fastest")).unwrap_err()),
        "balancing"
    );
}

#[test]
fn an_unknown_field_is_rejected() {
    let err = parse(&with("probe_fanuot: 3")).unwrap_err();
    assert!(err.to_string().contains("probe_fanuot"), "{err}");
}

#[test]
fn cross_field_checks_name_the_field() {
    let cases = [
        (
            r#"(host: "h", node_key_file: "/k", servers: [])"#.to_string(),
            "servers",
        ),
        (
            r#"(host: " ", node_key_file: "/k", servers: ["10.0.0.1:1"])"#.to_string(),
            "host",
        ),
        (
            with("probe_fanout: 2, probe_min_replies: 3"),
            "probe_min_replies",
        ),
        (with("probe_min_replies: 0"), "probe_min_replies"),
        (with("probe_fanout: 0"), "probe_fanout"),
        (with("probe_fanout: 17"), "probe_fanout"),
        (with("probe_timeout_ms: 0"), "probe_timeout_ms"),
        (with("probe_timeout_ms: 5000"), "probe_timeout_ms"),
        (with("connect_timeout_ms: 0"), "connect_timeout_ms"),
        (with("request_deadline_ms: 0"), "request_deadline_ms"),
        (with("request_deadline_ms: 60001"), "request_deadline_ms"),
        (with("attempt_delay_ms: 99"), "attempt_delay_ms"),
        (with("attempt_delay_ms: 2001"), "attempt_delay_ms"),
        (with("idle_close_ms: 0"), "idle_close_ms"),
        (with("max_connection_age_ms: 0"), "max_connection_age_ms"),
        (with("avoid_ms: 0"), "avoid_ms"),
        (with(r#"socket_path: """#), "socket_path"),
    ];
    for (text, field) in cases {
        let err = parse(&text).unwrap_err();
        assert_eq!(field_of(&err), field, "{text}: {err}");
        assert!(err.to_string().starts_with("agent.ron"), "{err}");
    }
}

#[test]
fn bad_and_duplicate_server_addresses_are_rejected_by_position() {
    let err = parse(r#"(host: "h", node_key_file: "/k", servers: ["10.0.0.1:1", "nohost"])"#)
        .unwrap_err();
    assert_eq!(field_of(&err), "servers[1]", "{err}");
    assert!(err.to_string().contains("nohost"), "{err}");
    let err = parse(
        r#"(host: "h", node_key_file: "/k", servers: ["10.0.0.1:1", "[::1]:2", "10.0.0.1:1"])"#,
    )
    .unwrap_err();
    assert_eq!(field_of(&err), "servers[2]", "{err}");
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn the_defaults_satisfy_the_bounds_they_are_checked_against() {
    // The order relations are checked at compile time in config.rs; the defaults also pass
    // the run-time checks as a whole.
    assert!(parse(MINIMAL).is_ok());
    assert_eq!(
        Duration::from_millis(DEFAULT_ATTEMPT_DELAY_MS),
        crate::connect_plan::ATTEMPT_DELAY
    );
}

#[test]
fn the_failover_section_has_every_wait_with_a_default_and_checks_it() {
    let c = parse(MINIMAL).unwrap();
    let f = c.failover.settings();
    assert_eq!(f.response.min, Duration::from_millis(100));
    assert_eq!(f.response.max, Duration::from_millis(2000));
    assert_eq!(f.response.p99_factor, 3);
    assert!(f.hedge.is_some());
    assert_eq!(f.refresh_interval, Duration::from_millis(2000));
    assert_eq!(f.connect_backoff.max, Duration::from_millis(8000));
    let c = parse(&with(
        "failover: (hedge_authorize: false, response_timeout_min_ms: 250)",
    ))
    .unwrap();
    assert!(c.failover.settings().hedge.is_none());
    assert_eq!(c.failover.response_timeout_min_ms, 250);
    for (bad, field) in [
        (
            "failover: (response_timeout_min_ms: 3000)",
            "failover.response_timeout_max_ms",
        ),
        (
            "failover: (hedge_p99_factor: 0)",
            "failover.hedge_p99_factor",
        ),
        (
            "failover: (refresh_interval_ms: 10)",
            "failover.refresh_interval_ms",
        ),
        (
            "failover: (retry_pause_min_ms: 300)",
            "failover.retry_pause_max_ms",
        ),
    ] {
        assert_eq!(field_of(&parse(&with(bad)).unwrap_err()), field, "{bad}");
    }
    let err = parse(&with("failover: (hedge_authorise: true)")).unwrap_err();
    assert!(err.to_string().contains("hedge_authorise"), "{err}");
}
