//! The request mix: how many authorize vs authenticate requests, and what share is meant to be
//! denied, parsed from `authorize=90,authenticate=10,deny=20`; each request kind's wire request
//! (against the provisioned database, see [`super::provision`]) and the answer it must get.
//!
//! Pure: the RNG is an argument. Called by the load generator's workers.

use super::provision::ALICE_PASSWORD;
use gatehouse_common::types::Method;
use gatehouse_common::wire::{AuthenticateRequest, AuthorizeRequest, Request, Response};
use rand::Rng;

/// The default mix: mostly authorize (what sshd asks on every login), some password checks,
/// one request in five meant to be denied.
pub const DEFAULT_MIX: &str = "authorize=90,authenticate=10,deny=20";

/// One kind of request in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// alice may SSH to the asking agent's own host: expects Allow.
    AuthorizeAllow,
    /// bob is locked: expects Deny.
    AuthorizeDeny,
    /// alice with her password: expects AuthOk.
    AuthenticateOk,
    /// mallory with a wrong password: expects AuthFail (costs the server the same argon2
    /// work). Not alice: the central lockout locks out a user with that many wrong passwords,
    /// which changes nothing for mallory's answers (still AuthFail, at the same cost) but would
    /// for alice's right one.
    AuthenticateFail,
}

/// A parsed mix. Weights are relative; `deny_percent` applies to both request types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub authorize: u32,
    pub authenticate: u32,
    /// 0..=100.
    pub deny_percent: u32,
}

/// Why a mix did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    #[error("mix entry {0:?} is not NAME=NUMBER")]
    NotAPair(String),
    #[error("unknown mix name {0:?} (expected authorize, authenticate or deny)")]
    UnknownName(String),
    #[error("mix value {0:?} is not a whole number")]
    BadNumber(String),
    #[error("deny={0} is over 100 (it is a percentage)")]
    DenyOver100(u32),
    #[error("authorize and authenticate weights are both 0: nothing to send")]
    Empty,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            authorize: 90,
            authenticate: 10,
            deny_percent: 20,
        }
    }
}

impl Mix {
    /// Parses `name=number` pairs separated by commas. Names left out count as 0.
    pub fn parse(text: &str) -> Result<Mix, MixError> {
        let mut mix = Mix {
            authorize: 0,
            authenticate: 0,
            deny_percent: 0,
        };
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, value) = entry
                .split_once('=')
                .ok_or_else(|| MixError::NotAPair(entry.to_string()))?;
            let value: u32 = value
                .trim()
                .parse()
                .map_err(|_| MixError::BadNumber(value.trim().to_string()))?;
            match name.trim() {
                "authorize" => mix.authorize = value,
                "authenticate" => mix.authenticate = value,
                "deny" if value > 100 => return Err(MixError::DenyOver100(value)),
                "deny" => mix.deny_percent = value,
                other => return Err(MixError::UnknownName(other.to_string())),
            }
        }
        if mix.authorize == 0 && mix.authenticate == 0 {
            return Err(MixError::Empty);
        }
        Ok(mix)
    }

    /// Draws the next request kind.
    pub fn pick(&self, rng: &mut impl Rng) -> Kind {
        let total = u64::from(self.authorize) + u64::from(self.authenticate);
        let authorize = rng.gen_range(0..total.max(1)) < u64::from(self.authorize);
        let deny = rng.gen_range(0..100) < self.deny_percent;
        match (authorize, deny) {
            (true, false) => Kind::AuthorizeAllow,
            (true, true) => Kind::AuthorizeDeny,
            (false, false) => Kind::AuthenticateOk,
            (false, true) => Kind::AuthenticateFail,
        }
    }

    /// The mix in its command-line form.
    pub fn to_text(&self) -> String {
        format!(
            "authorize={},authenticate={},deny={}",
            self.authorize, self.authenticate, self.deny_percent
        )
    }
}

/// Requests the engine handed back, kept per kind for the next submit: building one costs four
/// string allocations and frees, a measurable share of the load generator's core at 100k
/// requests/s (its CPU must stay below the server's for the server to be what is measured).
pub struct RequestPool {
    spare: [Vec<Request>; 4],
    /// Spare requests kept per kind: one per simulated agent of the worker covers a closed
    /// loop (a whole turn's answers come back before the next requests go out), and keeps the
    /// pool bounded whatever the engine hands back.
    cap: usize,
}

impl RequestPool {
    /// An empty pool keeping up to `cap` spare requests of each kind.
    pub fn new(cap: usize) -> Self {
        RequestPool {
            spare: Default::default(),
            cap,
        }
    }

    /// A request of `kind` from the agent of `host`: a spare one (its host rewritten in place,
    /// no allocation when the names are as long), or a new one.
    pub fn take(&mut self, kind: Kind, host: &str) -> Request {
        match self.spare.get_mut(kind.slot()).and_then(Vec::pop) {
            Some(mut request) => {
                set_asked_host(&mut request, host);
                request
            }
            None => kind.request(host),
        }
    }

    /// Keeps `request` (which must be `kind`'s) for reuse, up to the bound.
    pub fn give_back(&mut self, kind: Kind, request: Request) {
        if let Some(spare) = self.spare.get_mut(kind.slot()) {
            if spare.len() < self.cap {
                spare.push(request);
            }
        }
    }
}

impl Kind {
    /// The kind's place in a [`RequestPool`] (a new kind must get a slot there too).
    fn slot(self) -> usize {
        match self {
            Kind::AuthorizeAllow => 0,
            Kind::AuthorizeDeny => 1,
            Kind::AuthenticateOk => 2,
            Kind::AuthenticateFail => 3,
        }
    }

    /// The request this kind sends from the agent of `host`, about `host` itself: a server
    /// refuses an agent asking about another host (docs/SECURITY.md).
    pub fn request(self, host: &str) -> Request {
        match self {
            Kind::AuthorizeAllow | Kind::AuthorizeDeny => {
                let user = if self == Kind::AuthorizeAllow {
                    "alice"
                } else {
                    "bob"
                };
                Request::Authorize(AuthorizeRequest {
                    method: Method::Ssh,
                    from_host: "10.1.2.3".into(),
                    from_user: user.into(),
                    to_user: user.into(),
                    to_host: host.into(),
                })
            }
            Kind::AuthenticateOk => Request::Authenticate(AuthenticateRequest {
                user: "alice".into(),
                password: ALICE_PASSWORD.into(),
                host: host.into(),
            }),
            Kind::AuthenticateFail => Request::Authenticate(AuthenticateRequest {
                user: "mallory".into(),
                password: "not-mallorys-password".into(),
                host: host.into(),
            }),
        }
    }

    /// Whether `response` is the answer this kind must get.
    pub fn expects(self, response: &Response) -> bool {
        matches!(
            (self, response),
            (Kind::AuthorizeAllow, Response::Allow { .. })
                | (Kind::AuthorizeDeny, Response::Deny { .. })
                | (Kind::AuthenticateOk, Response::AuthOk)
                | (Kind::AuthenticateFail, Response::AuthFail)
        )
    }
}

/// Makes `request` ask about `host` (an authorize's to-host, an authenticate's host; an
/// identity lookup names no host).
fn set_asked_host(request: &mut Request, host: &str) {
    let field = match request {
        Request::Authorize(a) => &mut a.to_host,
        Request::Authenticate(a) => &mut a.host,
        Request::Lookup(_) => return,
    };
    if field != host {
        field.clear();
        field.push_str(host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn the_request_pool_reuses_what_it_is_given_up_to_its_bound() {
        let mut pool = RequestPool::new(1);
        let mut marked = Kind::AuthorizeAllow.request("agent00001");
        if let Request::Authorize(a) = &mut marked {
            a.from_host = "reused".into();
        }
        pool.give_back(Kind::AuthorizeAllow, marked.clone());
        let another = Kind::AuthorizeAllow.request("agent00001");
        pool.give_back(Kind::AuthorizeAllow, another); // over the bound
                                                       // The spare one comes back, asking about the agent that takes it.
        let mut want = marked;
        if let Request::Authorize(a) = &mut want {
            a.to_host = "agent00002".into();
        }
        assert_eq!(pool.take(Kind::AuthorizeAllow, "agent00002"), want);
        assert_eq!(
            pool.take(Kind::AuthorizeAllow, "agent00003"),
            Kind::AuthorizeAllow.request("agent00003"),
            "the second was dropped: a new one is built"
        );
        assert_eq!(
            pool.take(Kind::AuthorizeDeny, "a"),
            Kind::AuthorizeDeny.request("a")
        );
        pool.give_back(Kind::AuthenticateOk, Kind::AuthenticateOk.request("a"));
        assert_eq!(
            pool.take(Kind::AuthenticateOk, "b"),
            Kind::AuthenticateOk.request("b")
        );
    }

    #[test]
    fn the_default_text_parses_to_the_default_mix() {
        assert_eq!(Mix::parse(DEFAULT_MIX), Ok(Mix::default()));
        assert_eq!(Mix::default().to_text(), DEFAULT_MIX);
    }

    #[test]
    fn left_out_names_count_as_zero_and_spaces_are_ignored() {
        assert_eq!(
            Mix::parse(" authenticate = 5 ,"),
            Ok(Mix {
                authorize: 0,
                authenticate: 5,
                deny_percent: 0
            })
        );
    }

    #[test]
    fn bad_mixes_say_what_is_wrong() {
        assert_eq!(
            Mix::parse("authorise=1"),
            Err(MixError::UnknownName("authorise".into()))
        );
        assert_eq!(
            Mix::parse("authorize"),
            Err(MixError::NotAPair("authorize".into()))
        );
        assert_eq!(
            Mix::parse("authorize=-1"),
            Err(MixError::BadNumber("-1".into()))
        );
        assert_eq!(
            Mix::parse("authorize=1,deny=101"),
            Err(MixError::DenyOver100(101))
        );
        assert_eq!(Mix::parse("deny=10"), Err(MixError::Empty));
    }

    #[test]
    fn picks_follow_the_weights() {
        let mix = Mix::parse("authorize=3,authenticate=1,deny=50").unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[mix.pick(&mut rng) as usize] += 1;
        }
        // Expected 15000, 15000, 5000, 5000; allow 3 % sampling noise.
        for (got, want) in counts.iter().zip([15_000, 15_000, 5_000, 5_000]) {
            assert!(got.abs_diff(want) < want * 3 / 100, "{counts:?}");
        }
    }

    #[test]
    fn each_kind_expects_its_own_answer_only() {
        let allow = Response::Allow { route: "r".into() };
        assert!(Kind::AuthorizeAllow.expects(&allow));
        assert!(!Kind::AuthorizeDeny.expects(&allow));
        assert!(Kind::AuthenticateOk.expects(&Response::AuthOk));
        assert!(!Kind::AuthenticateFail.expects(&Response::AuthOk));
    }
}
