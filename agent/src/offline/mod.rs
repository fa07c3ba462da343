//! The agent's cache and its offline answers (docs/AGENT.md, "Identities, the cache and
//! offline answers").
//!
//! - [`config`]: the `cache` and `offline` settings;
//! - [`cache`]: the SQLite cache (identities, decisions, verifiers);
//! - [`verifier`]: keyed argon2id verifiers of passwords;
//! - [`worker`]: the thread that runs argon2 off the daemon's event loop;
//! - this file: the pure rules — when a cached identity is fresh, when a cached answer may be
//!   given offline, and how an offline answer names itself.
//!
//! Offline means only this: the engine answered "no server reachable". A deny, a wrong
//! password, a refusal or a timeout from a server that answered is final.

pub mod cache;
pub mod config;
pub mod verifier;
pub mod worker;

use config::{CacheConfig, OfflineConfig};
use gatehouse_local::LocalResponse;

/// Whether a cached identity answer is fresh enough to give without asking a server.
pub fn identity_is_fresh(answer: &LocalResponse, age_ms: u64, cache: &CacheConfig) -> bool {
    let ttl_s = match answer {
        LocalResponse::NotFound => cache.negative_ttl_s,
        _ => cache.identity_ttl_s,
    };
    age_ms < ttl_s.saturating_mul(1000)
}

/// Whether a cached authorize decision this old may be given offline.
pub fn decision_usable(age_ms: u64, offline: &OfflineConfig) -> bool {
    age_ms < offline.authorize_max_age_s.saturating_mul(1000)
}

/// Whether a verifier this old may check a password offline.
pub fn verifier_usable(age_ms: u64, offline: &OfflineConfig) -> bool {
    offline.passwords && age_ms < offline.password_max_age_s.saturating_mul(1000)
}

/// What an offline answer gives as its `server`: the cache and the age of what it answers from.
pub fn offline_source(age_ms: u64) -> String {
    format!("offline cache ({} s old)", age_ms / 1000)
}

/// `answer` as given offline: decisions name the cache as their source.
pub fn as_offline(answer: LocalResponse, age_ms: u64) -> LocalResponse {
    let server = offline_source(age_ms);
    match answer {
        LocalResponse::Allow { route, .. } => LocalResponse::Allow { route, server },
        LocalResponse::Deny { reason, .. } => LocalResponse::Deny { reason, server },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::types::DenyReason;

    #[test]
    fn freshness_and_offline_ages_follow_the_config() {
        let cache = CacheConfig {
            identity_ttl_s: 300,
            negative_ttl_s: 30,
        };
        let user = LocalResponse::Groups(vec![]);
        assert!(identity_is_fresh(&user, 299_999, &cache));
        assert!(!identity_is_fresh(&user, 300_000, &cache));
        assert!(identity_is_fresh(&LocalResponse::NotFound, 29_999, &cache));
        assert!(!identity_is_fresh(&LocalResponse::NotFound, 30_000, &cache));
        let mut offline = OfflineConfig::default();
        assert!(decision_usable(3_599_999, &offline));
        assert!(!decision_usable(3_600_000, &offline));
        offline.authorize_max_age_s = 0;
        assert!(
            !decision_usable(0, &offline),
            "0 turns offline decisions off"
        );
        assert!(
            !verifier_usable(0, &offline),
            "passwords are off by default"
        );
        offline.passwords = true;
        assert!(verifier_usable(7 * 24 * 3_600_000 - 1, &offline));
        assert!(!verifier_usable(7 * 24 * 3_600_000, &offline));
    }

    #[test]
    fn offline_decisions_name_the_cache_and_its_age() {
        let deny = LocalResponse::Deny {
            reason: DenyReason::NoMatchingRoute,
            server: "10.0.0.1:7700".into(),
        };
        assert_eq!(
            as_offline(deny, 61_500),
            LocalResponse::Deny {
                reason: DenyReason::NoMatchingRoute,
                server: "offline cache (61 s old)".into(),
            }
        );
    }
}
