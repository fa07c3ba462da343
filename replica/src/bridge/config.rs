//! The bridge's settings: the RON form (every field optional, with defaults) and the checked,
//! typed form the reactor uses. Pure conversion; reading the file is `gatehouse_common::config`.

use super::admission::AdmissionLimits;
use super::host_limits::PasswordLimits;
use super::lifecycle::Timeouts;
use gatehouse_common::config::ConfigError;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// Agent connections held at once (the seed's BRIDGE_SERVC_R_MAX_CONN default). Each costs
/// about 4-5 KiB of kernel memory for the socket pair plus well under 2 KiB here.
pub const DEFAULT_MAX_CONNECTIONS: usize = 9950;
/// Requests waiting for a worker. At ~10 µs per authorize that is ~20 ms of work on two
/// workers; slower requests hit the predicted-wait limit first.
pub const DEFAULT_QUEUE_CAPACITY: usize = 2048;
/// Predicted wait above which a request is answered "busy, go elsewhere" instead of queued:
/// 1 s, a fifth of the agent's default 5 s deadline budget, so the agent has time to go elsewhere.
pub const DEFAULT_BUSY_WAIT_MS: u64 = 1000;
/// Queue length above which probes go unanswered (three quarters of the default capacity),
/// so agents stop choosing this replica before it has to redirect.
pub const DEFAULT_PROBE_SILENCE_QUEUE_LEN: usize = 1536;
/// Idle agent connections are closed after 10 s (the seed's agents do the same).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 10_000;
/// Connections are retired after 60 s so agents re-probe and load rebalances.
pub const DEFAULT_MAX_CONNECTION_AGE_MS: u64 = 60_000;
/// The handshake is two small messages; 5 s is generous even on a congested link.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// A frame (at most 64 KiB) that has started must arrive within 5 s.
pub const DEFAULT_FRAME_TIMEOUT_MS: u64 = 5_000;
/// On SIGTERM, in-flight requests get this long to finish.
pub const DEFAULT_DRAIN_TIMEOUT_MS: u64 = 5_000;
/// After a goodbye, the bytes get this long to drain before the socket is closed anyway.
pub const DEFAULT_LINGER_MS: u64 = 1_000;
/// Requests one connection may have queued or in service at once (password checks; authorize
/// answered inline never counts); further frames wait in the socket (backpressure) so one
/// agent cannot fill the queue. Pipelined authorize requests are bounded instead by
/// `FRAMES_PER_TURN` per loop turn and by the unsent-answer high-water mark.
pub const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION: usize = 16;
/// Connections still in the handshake at once (sshd's MaxStartups "full"): 512, or a quarter of
/// `max_connections` when that is smaller (but at least [`MIN_DEFAULT_MAX_HANDSHAKES`]). A
/// handshake is one round trip and ~50 µs of CPU, so even 10,000 agents reconnecting within a
/// second (a replica restart) keep about 100 in progress (10,000/s × 10 ms); 512 is five times
/// that and 5 % of the default connection cap, so connections without a key never hold more
/// than that share of the table. Each costs a socket and at most one handshake frame (516 B).
pub const DEFAULT_MAX_HANDSHAKES: usize = 512;
/// The smallest default handshake cap, for small `max_connections` (tests, tiny sites): 16.
pub const MIN_DEFAULT_MAX_HANDSHAKES: usize = 16;
/// Handshakes in progress from which new connections are dropped at random (MaxStartups
/// "start"); absent, half of `max_handshakes` (256 by default).
pub const DEFAULT_HANDSHAKE_DROP_START_FRACTION: usize = 2;
/// The chance of that drop at the start, percent, rising linearly to 100 at the cap (sshd's
/// default "rate", 30): under a flood of keyless connections some new agents still get in,
/// and the ones dropped go to another server at once.
pub const DEFAULT_HANDSHAKE_DROP_RATE_PERCENT: u8 = 30;
/// Handshakes in progress from one source address, as a fraction of `max_handshakes`: a
/// quarter (128 by default), so one address cannot hold the handshake slots every agent needs. Established connections are not
/// counted per address (many hosts may share one behind a NAT); they are capped per host. A site
/// of thousands of hosts behind one NAT address that reconnect at once may need it raised.
pub const DEFAULT_HANDSHAKES_PER_SOURCE_FRACTION: usize = 4;
/// Established connections one host may hold: 8. An agent keeps one connection per server (a
/// second briefly while a retired one finishes); 8 leaves room for that and for a host running
/// tools beside its agent, while one host's key — stolen, or an agent gone wrong — holds at
/// most 8 of the table instead of all of it.
pub const DEFAULT_MAX_CONNECTIONS_PER_HOST: usize = 8;
/// How far a probe's sending time may be from this server's clock, either way, ms: 30,000. A
/// captured probe is worthless after it (and the replay cache refuses it within it). Fleets
/// kept by NTP agree within milliseconds; 30 s still answers a host whose clock has drifted
/// badly. An agent further off gets no probe replies (it still connects, to servers in list
/// order, and the server logs the skew with the host).
pub const DEFAULT_PROBE_WINDOW_MS: u64 = 30_000;
/// Probes remembered to refuse replays within the window: 65,536, about 3.3 MiB at most; the
/// cache holds one window's probes (over 2,000 a second fit), and when full it refuses probes
/// older than its oldest entry rather than answer one twice (`bridge/probe_guard.rs`).
pub const DEFAULT_PROBE_REPLAY_CACHE: usize = 65_536;
/// Password checks one host may have queued or in service at once: 8. A host checks one
/// password per login attempt; eight logins being checked at once on one host is already a
/// storm, and beyond it the host is told "busy, go elsewhere". With the fair queue this keeps
/// one host (or a stolen key) from holding the workers: at ~20-50 ms of argon2 each, 8 checks
/// are 4-8 turns of two workers.
pub const DEFAULT_MAX_PASSWORD_CHECKS_IN_FLIGHT_PER_HOST: usize = 8;
/// Password checks one host may start per second, on average: 10. A second line behind the
/// central lockout: a guesser holding one host's key gets 10 tries a second per server instead
/// of the ~60 a two-core server can verify, and a legitimate host (a busy jump host) rarely
/// sees more than a few logins a second. Over it: "busy, go elsewhere" with the wait.
pub const DEFAULT_PASSWORD_CHECKS_PER_SECOND_PER_HOST: u32 = 10;
/// Password checks one host may start at once after a quiet spell: 20, two seconds' worth, so
/// a burst of logins (a deploy opening sessions everywhere) is not slowed.
pub const DEFAULT_PASSWORD_CHECK_BURST_PER_HOST: u32 = 20;

/// The `bridge: (...)` section of a server config, as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeFile {
    pub max_connections: Option<usize>,
    /// 0 or absent: one worker per available core.
    pub workers: Option<usize>,
    pub queue_capacity: Option<usize>,
    pub busy_wait_ms: Option<u64>,
    pub probe_silence_queue_len: Option<usize>,
    pub idle_timeout_ms: Option<u64>,
    pub max_connection_age_ms: Option<u64>,
    pub handshake_timeout_ms: Option<u64>,
    pub frame_timeout_ms: Option<u64>,
    pub drain_timeout_ms: Option<u64>,
    pub max_in_flight_per_connection: Option<usize>,
    pub probe_window_ms: Option<u64>,
    pub probe_replay_cache: Option<usize>,
    pub max_handshakes: Option<usize>,
    pub handshake_drop_start: Option<usize>,
    pub handshake_drop_rate_percent: Option<u8>,
    pub max_handshakes_per_source: Option<usize>,
    pub max_connections_per_host: Option<usize>,
    pub max_password_checks_in_flight_per_host: Option<usize>,
    pub password_checks_per_second_per_host: Option<u32>,
    pub password_check_burst_per_host: Option<u32>,
    /// Answer cheap requests (authorize) on the reactor thread; default true. See
    /// [`BridgeConfig::inline_cheap_requests`].
    pub inline_cheap_requests: Option<bool>,
    /// Benchmark only: every request sleeps this long on its worker, to make a replica slow.
    pub benchmark_service_delay_ms: Option<u64>,
}

/// Checked bridge settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub max_connections: usize,
    /// The caps on connections in the handshake, per source and per host (`max_connections`
    /// repeated in it).
    pub admission: AdmissionLimits,
    pub workers: usize,
    pub queue_capacity: usize,
    pub busy_wait: Duration,
    pub probe_silence_queue_len: usize,
    /// Probes sent further than this from the server's clock get no reply.
    pub probe_window: Duration,
    /// Probes remembered to refuse replays within the window.
    pub probe_replay_cache: usize,
    pub timeouts: Timeouts,
    pub drain_timeout: Duration,
    pub max_in_flight_per_connection: usize,
    /// Per-host limits on password checks (`RequestHandler::is_password_check`).
    pub password_limits: PasswordLimits,
    /// Cheap requests (authorize: a lookup in the compiled policy, about 1 µs) are answered on
    /// the reactor thread, as redis answers everything: handing one to a worker costs more than
    /// deciding it (a futex wake, a waker write and two context switches, about 2.5 µs measured
    /// with the process on one core). Password checks (argon2) always go through the queue to
    /// the workers. False sends everything through the queue (the seed's design). Forced false
    /// when `benchmark_service_delay` is set, so a slowed replica is slow for every request.
    pub inline_cheap_requests: bool,
    pub benchmark_service_delay: Duration,
    /// Whether connections may be sealed with AES-256-GCM (when the agent lists it first):
    /// `crypto::aes_hardware()`, detected once per process, not a file setting. Tests may
    /// clear it to force ChaCha20-Poly1305.
    pub aes_allowed: bool,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        // The defaults are valid by construction.
        BridgeConfig::from_file(&BridgeFile::default(), Path::new("<defaults>"))
            .expect("defaults are valid")
    }
}

fn ms(value: Option<u64>, default: u64) -> Duration {
    Duration::from_millis(value.unwrap_or(default))
}

impl BridgeConfig {
    /// Applies defaults and checks every rule; `file` is named in errors.
    pub fn from_file(f: &BridgeFile, file: &Path) -> Result<Self, ConfigError> {
        let field = |name: &str| format!("bridge.{name}");
        let positive = |name: &str, value: usize| positive_in(file, name, value);
        let workers = match f.workers.unwrap_or(0) {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let queue_capacity = positive(
            "queue_capacity",
            f.queue_capacity.unwrap_or(DEFAULT_QUEUE_CAPACITY),
        )?;
        let probe_silence_queue_len = f.probe_silence_queue_len.unwrap_or(
            DEFAULT_PROBE_SILENCE_QUEUE_LEN
                .min(queue_capacity.saturating_mul(3) / 4)
                .max(1),
        );
        if probe_silence_queue_len > queue_capacity {
            return Err(ConfigError::invalid(
                file,
                &field("probe_silence_queue_len"),
                format!("expected at most queue_capacity ({queue_capacity})"),
            ));
        }
        let timeouts = Timeouts {
            handshake: ms(f.handshake_timeout_ms, DEFAULT_HANDSHAKE_TIMEOUT_MS),
            frame: ms(f.frame_timeout_ms, DEFAULT_FRAME_TIMEOUT_MS),
            idle: ms(f.idle_timeout_ms, DEFAULT_IDLE_TIMEOUT_MS),
            max_age: ms(f.max_connection_age_ms, DEFAULT_MAX_CONNECTION_AGE_MS),
            linger: Duration::from_millis(DEFAULT_LINGER_MS),
        };
        for (name, value) in [
            ("handshake_timeout_ms", timeouts.handshake),
            ("frame_timeout_ms", timeouts.frame),
            ("idle_timeout_ms", timeouts.idle),
            ("max_connection_age_ms", timeouts.max_age),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(
                    file,
                    &field(name),
                    "expected a duration above 0 ms",
                ));
            }
        }
        let benchmark_service_delay = ms(f.benchmark_service_delay_ms, 0);
        let max_connections = positive(
            "max_connections",
            f.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
        )?;
        let admission = admission_limits(f, file, max_connections)?;
        let per_second = positive(
            "password_checks_per_second_per_host",
            f.password_checks_per_second_per_host
                .unwrap_or(DEFAULT_PASSWORD_CHECKS_PER_SECOND_PER_HOST) as usize,
        )?;
        let burst = positive(
            "password_check_burst_per_host",
            f.password_check_burst_per_host
                .unwrap_or(DEFAULT_PASSWORD_CHECK_BURST_PER_HOST) as usize,
        )?;
        let password_limits = PasswordLimits {
            in_flight: positive(
                "max_password_checks_in_flight_per_host",
                f.max_password_checks_in_flight_per_host
                    .unwrap_or(DEFAULT_MAX_PASSWORD_CHECKS_IN_FLIGHT_PER_HOST),
            )?,
            per_second: u32::try_from(per_second).unwrap_or(u32::MAX),
            burst: u32::try_from(burst).unwrap_or(u32::MAX),
        };
        Ok(BridgeConfig {
            max_connections,
            admission,
            workers,
            queue_capacity,
            busy_wait: ms(f.busy_wait_ms, DEFAULT_BUSY_WAIT_MS),
            probe_silence_queue_len,
            probe_window: ms(f.probe_window_ms, DEFAULT_PROBE_WINDOW_MS),
            probe_replay_cache: positive(
                "probe_replay_cache",
                f.probe_replay_cache.unwrap_or(DEFAULT_PROBE_REPLAY_CACHE),
            )?,
            timeouts,
            drain_timeout: ms(f.drain_timeout_ms, DEFAULT_DRAIN_TIMEOUT_MS),
            max_in_flight_per_connection: positive(
                "max_in_flight_per_connection",
                f.max_in_flight_per_connection
                    .unwrap_or(DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION),
            )?,
            password_limits,
            inline_cheap_requests: f.inline_cheap_requests.unwrap_or(true)
                && benchmark_service_delay.is_zero(),
            benchmark_service_delay,
            aes_allowed: gatehouse_common::crypto::aes_hardware(),
        })
    }
}

/// `value`, or an error naming `bridge.NAME` in `file` when it is 0.
fn positive_in(file: &Path, name: &str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        Err(ConfigError::invalid(
            file,
            &format!("bridge.{name}"),
            "expected a number above 0",
        ))
    } else {
        Ok(value)
    }
}

/// The connection caps, with their cross-field rules.
fn admission_limits(
    f: &BridgeFile,
    file: &Path,
    max_connections: usize,
) -> Result<AdmissionLimits, ConfigError> {
    let invalid =
        |name: &str, why: String| ConfigError::invalid(file, &format!("bridge.{name}"), why);
    let positive = |name: &str, value: usize| positive_in(file, name, value);
    let default_handshakes =
        (max_connections / 4).clamp(MIN_DEFAULT_MAX_HANDSHAKES, DEFAULT_MAX_HANDSHAKES);
    let max_handshakes = positive(
        "max_handshakes",
        f.max_handshakes.unwrap_or(default_handshakes),
    )?;
    let handshake_drop_start = f
        .handshake_drop_start
        .unwrap_or(max_handshakes / DEFAULT_HANDSHAKE_DROP_START_FRACTION);
    if handshake_drop_start > max_handshakes {
        return Err(invalid(
            "handshake_drop_start",
            format!("expected at most max_handshakes ({max_handshakes})"),
        ));
    }
    let handshake_drop_rate_percent = f
        .handshake_drop_rate_percent
        .unwrap_or(DEFAULT_HANDSHAKE_DROP_RATE_PERCENT);
    if handshake_drop_rate_percent > 100 {
        return Err(invalid(
            "handshake_drop_rate_percent",
            "expected a percentage, 0 to 100".into(),
        ));
    }
    Ok(AdmissionLimits {
        max_connections,
        max_handshakes,
        handshake_drop_start,
        handshake_drop_rate_percent,
        max_handshakes_per_source: positive(
            "max_handshakes_per_source",
            f.max_handshakes_per_source
                .unwrap_or((max_handshakes / DEFAULT_HANDSHAKES_PER_SOURCE_FRACTION).max(1)),
        )?,
        max_connections_per_host: positive(
            "max_connections_per_host",
            f.max_connections_per_host
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_HOST),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_constants() {
        let c = BridgeConfig::default();
        assert_eq!(c.max_connections, 9950);
        assert_eq!(c.timeouts.idle, Duration::from_secs(10));
        assert_eq!(c.timeouts.max_age, Duration::from_secs(60));
        assert_eq!(c.probe_silence_queue_len, 1536);
        assert!(c.workers >= 1);
        assert!(c.inline_cheap_requests);
        assert_eq!(c.probe_window, Duration::from_secs(30));
        assert_eq!(c.probe_replay_cache, 65_536);
        let a = c.admission;
        assert_eq!((a.max_handshakes, a.handshake_drop_start), (512, 256));
        assert_eq!(a.handshake_drop_rate_percent, 30);
        assert_eq!(
            (a.max_handshakes_per_source, a.max_connections_per_host),
            (128, 8)
        );
        // A small table: a quarter of it for handshakes, a quarter of those per source.
        let f = BridgeFile {
            max_connections: Some(200),
            ..Default::default()
        };
        let a = BridgeConfig::from_file(&f, Path::new("r.ron"))
            .unwrap()
            .admission;
        let derived = (
            a.max_handshakes,
            a.handshake_drop_start,
            a.max_handshakes_per_source,
        );
        assert_eq!(derived, (50, 25, 12));
        let limits = c.password_limits;
        assert_eq!(
            (limits.in_flight, limits.per_second, limits.burst),
            (8, 10, 20)
        );
    }

    #[test]
    fn a_benchmark_service_delay_sends_every_request_to_the_workers() {
        let f = BridgeFile {
            benchmark_service_delay_ms: Some(4),
            ..Default::default()
        };
        let c = BridgeConfig::from_file(&f, Path::new("r.ron")).unwrap();
        assert!(!c.inline_cheap_requests);
        assert_eq!(c.benchmark_service_delay, Duration::from_millis(4));
    }

    #[test]
    fn invalid_values_name_the_field() {
        let cases = [
            (
                BridgeFile {
                    queue_capacity: Some(10),
                    probe_silence_queue_len: Some(11),
                    ..Default::default()
                },
                "bridge.probe_silence_queue_len",
            ),
            (
                BridgeFile {
                    max_connections: Some(0),
                    ..Default::default()
                },
                "bridge.max_connections",
            ),
            (
                BridgeFile {
                    max_handshakes: Some(10),
                    handshake_drop_start: Some(11),
                    ..Default::default()
                },
                "bridge.handshake_drop_start",
            ),
            (
                BridgeFile {
                    handshake_drop_rate_percent: Some(101),
                    ..Default::default()
                },
                "expected a percentage",
            ),
        ];
        for (f, want) in cases {
            let err = BridgeConfig::from_file(&f, Path::new("r.ron")).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
