//! The agent's cache and offline settings (the `cache` and `offline` sections of agent.ron).
//! Pure: serde defaults, then checks.

use serde::{Deserialize, Serialize};

/// How long a found identity is answered from the cache before the servers are asked again
/// (300 s). Why: `ls -l`, `id` and every login look names up many times a second; five minutes
/// of staleness for a uid or a home directory is what SSSD and Kanidm also accept.
pub const DEFAULT_IDENTITY_TTL_S: u64 = 300;
/// How long "no such user" is remembered (30 s). Why: programs probe names that do not exist
/// (`getent passwd nosuch`, completion); a short memory spares the servers without hiding a
/// newly created user for long.
pub const DEFAULT_NEGATIVE_TTL_S: u64 = 30;
/// Cached allow/deny decisions younger than this answer authorize when no server is reachable
/// (3600 s). Why: an hour covers a replica outage; a route revoked meanwhile is not seen until
/// a server is back, so the window stays short.
pub const DEFAULT_AUTHORIZE_MAX_AGE_S: u64 = 3600;
/// A password verifier older than this is not used offline (7 days, 604800 s). Why: after a
/// week without a successful online login the account may have been changed or locked.
pub const DEFAULT_PASSWORD_MAX_AGE_S: u64 = 7 * 24 * 3600;
/// Delay before an offline "wrong password" (2000 ms). Why: the servers' lockout and rate
/// limits are out of reach offline; a fixed delay per try keeps guessing slow.
pub const DEFAULT_OFFLINE_FAILURE_DELAY_MS: u64 = 2000;
/// Longest any cache age may be configured (30 days): beyond it an answer describes an
/// account that may no longer exist.
pub const MAX_CACHE_AGE_S: u64 = 30 * 24 * 3600;
/// Longest offline failure delay (60 s).
pub const MAX_OFFLINE_FAILURE_DELAY_MS: u64 = 60_000;

/// `cache: (...)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub identity_ttl_s: u64,
    pub negative_ttl_s: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            identity_ttl_s: DEFAULT_IDENTITY_TTL_S,
            negative_ttl_s: DEFAULT_NEGATIVE_TTL_S,
        }
    }
}

/// `offline: (...)`: what the agent may answer from its cache when no server is reachable
/// (only then: a deny or a wrong password from a live server is final).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfflineConfig {
    /// Answer identity lookups from the cache, however old.
    pub identities: bool,
    /// Answer authorize from cached decisions younger than this, s (0: never).
    pub authorize_max_age_s: u64,
    /// Check passwords against verifiers of the last successful online login (off by default).
    pub passwords: bool,
    /// Verifiers older than this are not used, s.
    pub password_max_age_s: u64,
    /// Delay before an offline wrong-password answer, ms.
    pub failure_delay_ms: u64,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        OfflineConfig {
            identities: true,
            authorize_max_age_s: DEFAULT_AUTHORIZE_MAX_AGE_S,
            passwords: false,
            password_max_age_s: DEFAULT_PASSWORD_MAX_AGE_S,
            failure_delay_ms: DEFAULT_OFFLINE_FAILURE_DELAY_MS,
        }
    }
}

/// Checks both sections; `Err((field, why))`.
pub fn check(cache: &CacheConfig, offline: &OfflineConfig) -> Result<(), (String, String)> {
    for (field, value) in [
        ("cache.identity_ttl_s", cache.identity_ttl_s),
        ("cache.negative_ttl_s", cache.negative_ttl_s),
        ("offline.authorize_max_age_s", offline.authorize_max_age_s),
        ("offline.password_max_age_s", offline.password_max_age_s),
    ] {
        if value > MAX_CACHE_AGE_S {
            return Err((
                field.into(),
                format!("at most {MAX_CACHE_AGE_S} s (30 days)"),
            ));
        }
    }
    if offline.failure_delay_ms > MAX_OFFLINE_FAILURE_DELAY_MS {
        return Err((
            "offline.failure_delay_ms".into(),
            format!("at most {MAX_OFFLINE_FAILURE_DELAY_MS}"),
        ));
    }
    if offline.passwords && offline.password_max_age_s == 0 {
        return Err((
            "offline.password_max_age_s".into(),
            "must be nonzero when offline.passwords is on".into(),
        ));
    }
    Ok(())
}
