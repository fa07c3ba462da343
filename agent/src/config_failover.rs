//! The `failover: (...)` section of the agent's config: every wait the agent uses to leave a
//! server that stopped answering, refuses TCP, or got slow, besides the connection settings at
//! the top level. Each field has a `DEFAULT_*` constant with its reason; docs/AGENT.md lists
//! them all. Pure: parsed by serde, checked by [`FailoverConfig::check`], turned into typed
//! settings by [`FailoverConfig::settings`].

use crate::avoid::ConnectBackoff;
use crate::latency::{HedgePolicy, ResponseTimeouts};
use crate::switch::SwitchParams;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Default response timeout factor (3 × the server's recent p99). Why: a healthy server's
/// slowest recent answer, three times over, is not jitter any more; loopback and LAN answers
/// are well under the floor, so in practice the floor decides for authorize.
pub const DEFAULT_RESPONSE_TIMEOUT_P99_FACTOR: u32 = 3;
/// Default response timeout floor (100 ms). Why: 100 times a LAN authorize, above a busy
/// machine's scheduling hiccups; a server silent that long while its peers answer in
/// milliseconds is hung, and moving costs the request one more round trip.
pub const DEFAULT_RESPONSE_TIMEOUT_MIN_MS: u64 = 100;
/// Default response timeout ceiling, and the timeout before anything was measured (2000 ms).
/// Why: twice a replica's default busy limit (a queued password check may wait up to 1 s),
/// and well inside the 5 s deadline so a failover still has time.
pub const DEFAULT_RESPONSE_TIMEOUT_MAX_MS: u64 = 2000;
/// Hedge authorize requests by default (true): they are idempotent; see docs/AGENT.md.
pub const DEFAULT_HEDGE_AUTHORIZE: bool = true;
/// Default hedge factor (2 × the server's recent p99 of cheap answers). Why: "The Tail at
/// Scale" hedges after the 95th percentile; twice the slowest recent answer keeps hedges to
/// real stalls, not ordinary jitter.
pub const DEFAULT_HEDGE_P99_FACTOR: u32 = 2;
/// Default earliest hedge (50 ms). Why: half the response timeout floor, so a hedge comes
/// first; below it scheduling noise on a loaded host would start connections for nothing.
pub const DEFAULT_HEDGE_MIN_MS: u64 = 50;
/// Default minimum interval between hedges of one agent (1000 ms). Why: a hedge opens a
/// connection elsewhere; when every server is slow, hedging more often only adds load.
pub const DEFAULT_HEDGE_INTERVAL_MS: u64 = 1000;
/// Default first connect backoff (1000 ms), doubling per failure in a row. Why: the gRPC
/// initial backoff; a server whose TCP is blocked costs at most one attempt delay per second
/// at first, and less and less while it stays blocked.
pub const DEFAULT_CONNECT_BACKOFF_MS: u64 = 1000;
/// Default largest connect backoff (8000 ms). Why: after its backoff a server is only
/// retried in the background (a move no request waits for; new connections try it last), so
/// retrying often costs nothing but a SYN, and a server that comes back gets its share back
/// within seconds.
pub const DEFAULT_CONNECT_BACKOFF_MAX_MS: u64 = 8000;
/// Default refresh interval while connected (2000 ms, each one drawn from ±50 % of it). Why:
/// a restarted replica gets its share back within a few refreshes (the 10 s goal) at the cost
/// of one small UDP probe per server probed every 2 s per busy agent; the jitter keeps agents
/// that connected together from probing together.
pub const DEFAULT_REFRESH_INTERVAL_MS: u64 = 2000;
/// Default "clearly worse" factor for switching servers (2 ×). Why: the probe costs of equal
/// servers differ by less; a server twice as slow as another is worth leaving.
pub const DEFAULT_SWITCH_LATENCY_FACTOR: u32 = 2;
/// Default "clearly worse" margin (50 ms). Why: below it a difference is invisible to a login;
/// it also absorbs a single late probe reply on a busy host.
pub const DEFAULT_SWITCH_LATENCY_MARGIN_MS: u64 = 50;
/// Default shortest retry pause when every server is avoided (50 ms); see docs/AGENT.md.
pub const DEFAULT_RETRY_PAUSE_MIN_MS: u64 = 50;
/// Default longest retry pause (200 ms).
pub const DEFAULT_RETRY_PAUSE_MAX_MS: u64 = 200;
/// Default first background retry when nothing is reachable (1000 ms, gRPC's).
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 1000;
/// Default largest background retry delay (120 000 ms, gRPC's).
pub const DEFAULT_RETRY_BACKOFF_MAX_MS: u64 = 120_000;

/// Shortest refresh interval accepted (100 ms). Why: each refresh is a probe to a few servers;
/// thousands of agents refreshing faster would load the servers' probe path for nothing.
pub const MIN_REFRESH_INTERVAL_MS: u64 = 100;

/// As written in the file; every field optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverConfig {
    pub response_timeout_p99_factor: u32,
    pub response_timeout_min_ms: u64,
    pub response_timeout_max_ms: u64,
    pub hedge_authorize: bool,
    pub hedge_p99_factor: u32,
    pub hedge_min_ms: u64,
    pub hedge_interval_ms: u64,
    pub connect_backoff_ms: u64,
    pub connect_backoff_max_ms: u64,
    pub refresh_interval_ms: u64,
    pub switch_latency_factor: u32,
    pub switch_latency_margin_ms: u64,
    pub retry_pause_min_ms: u64,
    pub retry_pause_max_ms: u64,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            response_timeout_p99_factor: DEFAULT_RESPONSE_TIMEOUT_P99_FACTOR,
            response_timeout_min_ms: DEFAULT_RESPONSE_TIMEOUT_MIN_MS,
            response_timeout_max_ms: DEFAULT_RESPONSE_TIMEOUT_MAX_MS,
            hedge_authorize: DEFAULT_HEDGE_AUTHORIZE,
            hedge_p99_factor: DEFAULT_HEDGE_P99_FACTOR,
            hedge_min_ms: DEFAULT_HEDGE_MIN_MS,
            hedge_interval_ms: DEFAULT_HEDGE_INTERVAL_MS,
            connect_backoff_ms: DEFAULT_CONNECT_BACKOFF_MS,
            connect_backoff_max_ms: DEFAULT_CONNECT_BACKOFF_MAX_MS,
            refresh_interval_ms: DEFAULT_REFRESH_INTERVAL_MS,
            switch_latency_factor: DEFAULT_SWITCH_LATENCY_FACTOR,
            switch_latency_margin_ms: DEFAULT_SWITCH_LATENCY_MARGIN_MS,
            retry_pause_min_ms: DEFAULT_RETRY_PAUSE_MIN_MS,
            retry_pause_max_ms: DEFAULT_RETRY_PAUSE_MAX_MS,
            retry_backoff_ms: DEFAULT_RETRY_BACKOFF_MS,
            retry_backoff_max_ms: DEFAULT_RETRY_BACKOFF_MAX_MS,
        }
    }
}

/// The section's settings, typed (what the engine uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverSettings {
    pub response: ResponseTimeouts,
    /// `None`: authorize is never hedged.
    pub hedge: Option<HedgePolicy>,
    pub connect_backoff: ConnectBackoff,
    /// The mean time between refresh probes while connected (each drawn from ±50 %).
    pub refresh_interval: Duration,
    pub switch: SwitchParams,
    pub retry_pause: (Duration, Duration),
    pub retry_backoff: (Duration, Duration),
}

impl Default for FailoverSettings {
    fn default() -> Self {
        FailoverConfig::default().settings()
    }
}

impl FailoverConfig {
    /// The first field that breaks a rule, with what the rule is.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("response_timeout_min_ms", self.response_timeout_min_ms),
            ("hedge_min_ms", self.hedge_min_ms),
            ("connect_backoff_ms", self.connect_backoff_ms),
            ("retry_backoff_ms", self.retry_backoff_ms),
            (
                "response_timeout_p99_factor",
                self.response_timeout_p99_factor.into(),
            ),
            ("hedge_p99_factor", self.hedge_p99_factor.into()),
            ("switch_latency_factor", self.switch_latency_factor.into()),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err((field, "must be nonzero".into()));
            }
        }
        let ordered = [
            (
                "response_timeout_max_ms",
                self.response_timeout_min_ms,
                self.response_timeout_max_ms,
            ),
            (
                "connect_backoff_max_ms",
                self.connect_backoff_ms,
                self.connect_backoff_max_ms,
            ),
            (
                "retry_pause_max_ms",
                self.retry_pause_min_ms,
                self.retry_pause_max_ms,
            ),
            (
                "retry_backoff_max_ms",
                self.retry_backoff_ms,
                self.retry_backoff_max_ms,
            ),
        ];
        for (field, min, max) in ordered {
            if max < min {
                return Err((field, format!("must be at least its minimum ({min})")));
            }
        }
        if self.refresh_interval_ms < MIN_REFRESH_INTERVAL_MS {
            let msg = format!("must be at least {MIN_REFRESH_INTERVAL_MS}");
            return Err(("refresh_interval_ms", msg));
        }
        Ok(())
    }

    /// The typed settings (call after [`FailoverConfig::check`]).
    pub fn settings(&self) -> FailoverSettings {
        let ms = Duration::from_millis;
        FailoverSettings {
            response: ResponseTimeouts {
                p99_factor: self.response_timeout_p99_factor,
                min: ms(self.response_timeout_min_ms),
                max: ms(self.response_timeout_max_ms),
            },
            hedge: self.hedge_authorize.then(|| HedgePolicy {
                p99_factor: self.hedge_p99_factor,
                min: ms(self.hedge_min_ms),
                interval: ms(self.hedge_interval_ms),
            }),
            connect_backoff: ConnectBackoff {
                initial: ms(self.connect_backoff_ms),
                max: ms(self.connect_backoff_max_ms),
            },
            refresh_interval: ms(self.refresh_interval_ms),
            switch: SwitchParams {
                latency_factor: self.switch_latency_factor,
                latency_margin: ms(self.switch_latency_margin_ms),
            },
            retry_pause: (ms(self.retry_pause_min_ms), ms(self.retry_pause_max_ms)),
            retry_backoff: (ms(self.retry_backoff_ms), ms(self.retry_backoff_max_ms)),
        }
    }
}
