//! Password hashing and verification: argon2id in PHC string form
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
//!
//! Pure CPU work: the salt RNG is an argument, nothing reads a clock. Called by
//! `policy::decide` (verify, dummy verify), and by the master's user tools and load-test
//! provisioning (hash).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{CryptoRng, RngCore};
use std::collections::BTreeMap;

/// Largest argon2 memory cost a stored hash may ask for, KiB. Default 256 MiB: 13× the
/// standard cost, room for a site that raises it, but a corrupt or hostile database entry cannot
/// make every login allocate gigabytes. A hash above it is treated as unusable.
pub const MAX_VERIFY_M_COST_KIB: u32 = 256 * 1024;

/// Largest argon2 time cost (passes) a stored hash may ask for. Default 16: 8× the standard
/// cost; same reasoning as [`MAX_VERIFY_M_COST_KIB`], for CPU instead of memory.
pub const MAX_VERIFY_T_COST: u32 = 16;

/// Salt the dummy verification hashes with. Its value is irrelevant: the result is discarded.
const DUMMY_SALT: &[u8; 16] = b"gatehouse-dummy!";

/// How expensive a new hash is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// argon2 crate defaults (OWASP): m = 19456 KiB, t = 2, p = 1. Use for real accounts.
    Standard,
    /// m = 1024 KiB, t = 1, p = 1: about 20× cheaper than `Standard`, so a test suite or a load
    /// test provisioning thousands of users (and then verifying them at high rates) does not
    /// spend its time in argon2. Far too weak for real passwords: never use it for a real
    /// account.
    Fast,
}

impl HashCost {
    fn params(self) -> Params {
        match self {
            HashCost::Standard => Params::DEFAULT,
            // Params::new only fails for out-of-range values; these are constants in range.
            HashCost::Fast => Params::new(1024, 1, 1, None).unwrap_or(Params::DEFAULT),
        }
    }
}

/// Why hashing failed (only for absurd inputs, such as a password over 4 GiB).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot hash password: {0}")]
pub struct PasswordHashError(String);

/// Hashes `password` with a fresh 16-byte salt from `rng` (pass a CSPRNG such as `OsRng`; tests
/// pass a seeded `StdRng` to get the same string every run).
pub fn hash_password(
    password: &str,
    rng: &mut (impl RngCore + CryptoRng),
    cost: HashCost,
) -> Result<String, PasswordHashError> {
    let salt = SaltString::generate(rng);
    argon2id(cost.params())
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordHashError(e.to_string()))
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verify {
    Match,
    Mismatch,
    /// The stored string is not a usable argon2id hash; the reason is for the log.
    Unusable(String),
}

/// Checks `password` against the stored PHC string `stored`.
pub(crate) fn verify(stored: &str, password: &str) -> Verify {
    let (hash, params) = match usable(stored) {
        Ok(parsed) => parsed,
        Err(reason) => return Verify::Unusable(reason),
    };
    match argon2id(params).verify_password(password.as_bytes(), &hash) {
        Ok(()) => Verify::Match,
        Err(argon2::password_hash::Error::Password) => Verify::Mismatch,
        Err(e) => Verify::Unusable(e.to_string()),
    }
}

/// Parses a stored hash and checks it is argon2id within the cost limits.
fn usable(stored: &str) -> Result<(PasswordHash<'_>, Params), String> {
    let hash = PasswordHash::new(stored).map_err(|e| format!("not a PHC string: {e}"))?;
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return Err(format!("algorithm {} is not argon2id", hash.algorithm));
    }
    let params = Params::try_from(&hash).map_err(|e| format!("bad parameters: {e}"))?;
    if params.m_cost() > MAX_VERIFY_M_COST_KIB || params.t_cost() > MAX_VERIFY_T_COST {
        return Err(format!(
            "cost m={} t={} is above the limit m={MAX_VERIFY_M_COST_KIB} t={MAX_VERIFY_T_COST}",
            params.m_cost(),
            params.t_cost()
        ));
    }
    Ok((hash, params))
}

fn argon2id(params: Params) -> Argon2<'static> {
    #[cfg(test)]
    runs::count(params.m_cost());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Test-only count of the argon2id computations this thread started, with their memory cost:
/// how the tests show every failed password costs the same work (timing is not asserted).
#[cfg(test)]
pub(crate) mod runs {
    use std::cell::RefCell;

    thread_local! {
        static RUNS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn count(m_cost: u32) {
        RUNS.with(|r| r.borrow_mut().push(m_cost));
    }

    /// The memory costs of the runs started since the last call, and forgets them.
    pub(crate) fn take() -> Vec<u32> {
        RUNS.with(|r| std::mem::take(&mut *r.borrow_mut()))
    }
}

/// Burns the same CPU and memory as one real verification, for requests naming a user that
/// does not exist, so response time does not reveal which users exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DummyVerifier {
    params: Params,
}

/// The argon2 cost of a usable stored hash: memory (KiB), passes, lanes, output bytes.
type CostKey = (u32, u32, u32, usize);

/// How many users' hashes are at each cost: what picks the dummy's cost. Kept up to date one
/// hash at a time (a database has a handful of distinct costs, so a change costs a few map
/// steps), and the same whatever order the users came in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CostCensus(BTreeMap<CostKey, u64>);

impl CostCensus {
    fn key(stored: &str) -> Option<CostKey> {
        let (_, p) = usable(stored).ok()?;
        let len = p.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        Some((p.m_cost(), p.t_cost(), p.p_cost(), len))
    }

    /// Counts one user's stored hash (unusable ones are not counted).
    pub(crate) fn add(&mut self, stored: &str) {
        if let Some(key) = Self::key(stored) {
            *self.0.entry(key).or_default() += 1;
        }
    }

    /// Forgets one user's stored hash.
    pub(crate) fn remove(&mut self, stored: &str) {
        let Some(key) = Self::key(stored) else { return };
        if let Some(count) = self.0.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.0.remove(&key);
            }
        }
    }

    /// A dummy at the cost most users' hashes have (on a tie, the cheaper in memory, then in
    /// passes), or [`HashCost::Standard`] when no hash is usable.
    pub(crate) fn verifier(&self) -> DummyVerifier {
        let most = self.0.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
        let params = most
            .and_then(|(&(m, t, p, len), _)| Params::new(m, t, p, Some(len)).ok())
            .unwrap_or(Params::DEFAULT);
        DummyVerifier { params }
    }
}

impl DummyVerifier {
    /// At the cost most of `stored` have (see [`CostCensus::verifier`]).
    #[cfg(test)]
    pub(crate) fn matching<'a>(stored: impl IntoIterator<Item = &'a str>) -> Self {
        let mut census = CostCensus::default();
        stored.into_iter().for_each(|s| census.add(s));
        census.verifier()
    }

    /// One argon2id computation at the chosen cost; the result is thrown away.
    pub(crate) fn run(&self, password: &str) {
        let len = self
            .params
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let mut out = vec![0u8; len];
        let result = argon2id(self.params.clone()).hash_password_into(
            password.as_bytes(),
            DUMMY_SALT,
            &mut out,
        );
        std::hint::black_box((result.is_ok(), out));
    }

    #[cfg(test)]
    pub(crate) fn m_cost(&self) -> u32 {
        self.params.m_cost()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn fast_hashes_verify_and_are_deterministic_with_a_seeded_rng() {
        let hash = hash_password("secret", &mut StdRng::seed_from_u64(1), HashCost::Fast).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        let again = hash_password("secret", &mut StdRng::seed_from_u64(1), HashCost::Fast).unwrap();
        assert_eq!(hash, again);
        assert_eq!(verify(&hash, "secret"), Verify::Match);
        assert_eq!(verify(&hash, "Secret"), Verify::Mismatch);
        assert_eq!(verify(&hash, ""), Verify::Mismatch);
    }

    #[test]
    fn standard_cost_uses_the_argon2_defaults() {
        let hash = hash_password("pw", &mut StdRng::seed_from_u64(2), HashCost::Standard).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[test]
    fn unusable_hashes_are_reported_not_matched() {
        let fast = hash_password("pw", &mut StdRng::seed_from_u64(3), HashCost::Fast).unwrap();
        let argon2i = fast.replacen("argon2id", "argon2i", 1);
        let greedy = fast.replacen("m=1024", "m=4194304", 1);
        for stored in ["", "plaintext", "$argon2id$v=19$m=x$", &argon2i, &greedy] {
            assert!(
                matches!(verify(stored, "pw"), Verify::Unusable(_)),
                "{stored:?} should be unusable"
            );
        }
    }

    #[test]
    fn the_dummy_costs_what_the_database_costs() {
        let fast = hash_password("pw", &mut StdRng::seed_from_u64(4), HashCost::Fast).unwrap();
        assert_eq!(
            DummyVerifier::matching(["junk", fast.as_str()]).m_cost(),
            1024
        );
        assert_eq!(DummyVerifier::matching([]).m_cost(), Params::DEFAULT_M_COST);
        DummyVerifier::matching([fast.as_str()]).run("anything");
        let standard = Params::DEFAULT_M_COST;
        let std_hash =
            hash_password("pw", &mut StdRng::seed_from_u64(5), HashCost::Standard).unwrap();
        let most_standard = [fast.as_str(), &std_hash, &std_hash];
        assert_eq!(DummyVerifier::matching(most_standard).m_cost(), standard);
        let mut census = CostCensus::default();
        most_standard.iter().for_each(|h| census.add(h));
        census.remove(&std_hash);
        census.remove(&std_hash);
        assert_eq!(
            census.verifier().m_cost(),
            1024,
            "the last one left decides"
        );
    }
}
