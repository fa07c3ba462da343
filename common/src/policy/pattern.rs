//! User and host patterns in access routes: `*` matches any run of characters (including none),
//! `?` exactly one character, everything else itself (case-sensitive). A host pattern `+NAME`
//! instead names a host group and matches the hosts that are members of it.
//!
//! Pure. No recursion and no allocation when matching, so a hostile subject string cannot blow
//! the stack: literals and `*`-only patterns compare bytes (substring searches, linear in the
//! subject per run); patterns with `?` use the iterative two-pointer glob walk, O(pattern ×
//! subject) in the worst case.
//! Called by `policy::route`.

use std::collections::HashMap;
use std::sync::Arc;

/// A `*`/`?` pattern, or a literal when it has neither. 24 bytes; cloning one is a reference
/// count, so a compiled database shares each distinct wildcard pattern ([`GlobCache`]) and a
/// user's own name ([`GlobCache::with_owner`]) instead of holding a copy per route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    shape: Shape,
}

/// How a pattern is matched. Most route patterns are a literal or literal runs around `*`
/// (`web*`, `*.example.com`, `*`): those compare bytes, which is several times faster than
/// the general walk over characters that `?` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// `*` alone: matches everything, holds nothing.
    Any,
    Literal(Arc<str>),
    /// `*` only: the literal runs between the stars (the first anchored at the start, the
    /// last at the end; either may be empty). At least two.
    Stars(Arc<[Box<str>]>),
    /// Contains `?`: the characters, matched one by one.
    General(Arc<[char]>),
}

impl Glob {
    pub(crate) fn new(text: &str) -> Self {
        let shape = if text == "*" {
            Shape::Any
        } else if text.contains('?') {
            Shape::General(text.chars().collect())
        } else if text.contains('*') {
            Shape::Stars(text.split('*').map(Box::from).collect())
        } else {
            Shape::Literal(text.into())
        };
        Glob { shape }
    }

    /// True when the pattern contains `*` or `?`.
    pub(crate) fn is_wildcard(&self) -> bool {
        !matches!(self.shape, Shape::Literal(_))
    }

    pub(crate) fn matches(&self, subject: &str) -> bool {
        match &self.shape {
            Shape::Any => true,
            Shape::Literal(text) => same_bytes(text.as_bytes(), subject.as_bytes()),
            Shape::Stars(runs) => matches_stars(runs, subject),
            Shape::General(chars) => matches_general(chars, subject),
        }
    }
}

/// Shares compiled patterns while a database (or one change) compiles: each distinct wildcard
/// pattern is compiled once, and a literal equal to the route owner's name reuses that name.
/// Literals otherwise are allocated per route (they are mostly unique: a user's name).
#[derive(Debug, Default)]
pub(crate) struct GlobCache {
    wildcards: HashMap<Box<str>, Glob>,
    owner: Option<Arc<str>>,
}

impl GlobCache {
    /// From now on, a literal equal to `owner` shares its text.
    pub(crate) fn with_owner(&mut self, owner: &Arc<str>) -> &mut Self {
        self.owner = Some(owner.clone());
        self
    }

    /// The compiled form of `text`.
    pub(crate) fn glob(&mut self, text: &str) -> Glob {
        if let Some(owner) = self.owner.as_ref().filter(|o| &***o == text) {
            return Glob {
                shape: Shape::Literal(owner.clone()),
            };
        }
        if !text.contains(['*', '?']) {
            return Glob::new(text);
        }
        if let Some(glob) = self.wildcards.get(text) {
            return glob.clone();
        }
        let glob = Glob::new(text);
        self.wildcards.insert(text.into(), glob.clone());
        glob
    }
}

/// `runs` joined by `*`: the first run must start the subject, the last end it, and the
/// middle ones appear in order in between. Taking the leftmost place for each middle run
/// is never worse than a later one, so no backtracking is needed.
fn matches_stars(runs: &[Box<str>], subject: &str) -> bool {
    let (Some((first, rest)), Some(last)) = (runs.split_first(), runs.last()) else {
        return true;
    };
    let Some(after_first) = strip_prefix(subject, first) else {
        return false;
    };
    let Some(mut between) = strip_suffix(after_first, last) else {
        return false;
    };
    for run in &rest[..rest.len().saturating_sub(1)] {
        match between.find(&**run) {
            Some(at) => between = &between[at + run.len()..],
            None => return false,
        }
    }
    true
}

/// Byte equality, inline. Route names and runs are a few bytes: a library `memcmp` call
/// cost more than the comparison itself (measured: 4 % of the replica's CPU at 500
/// connections, with `==` on the runs).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// `text` without its prefix `run`.
fn strip_prefix<'a>(text: &'a str, run: &str) -> Option<&'a str> {
    let head = text.as_bytes().get(..run.len())?;
    same_bytes(head, run.as_bytes())
        .then(|| text.get(run.len()..))
        .flatten()
}

/// `text` without its suffix `run`.
fn strip_suffix<'a>(text: &'a str, run: &str) -> Option<&'a str> {
    let cut = text.len().checked_sub(run.len())?;
    same_bytes(&text.as_bytes()[cut..], run.as_bytes())
        .then(|| text.get(..cut))
        .flatten()
}

/// The iterative two-pointer glob walk, for patterns with `?` (one character, not one byte).
fn matches_general(p: &[char], subject: &str) -> bool {
    let next_char = |at: usize| subject.get(at..).and_then(|rest| rest.chars().next());
    let (mut pi, mut si) = (0usize, 0usize); // pattern index (chars), subject index (bytes)
                                             // After the last `*`: the pattern index just past it, and where in the subject the star's
                                             // run currently ends. On a mismatch the star swallows one more character and we retry.
    let mut star: Option<(usize, usize)> = None;
    loop {
        match (p.get(pi), next_char(si)) {
            (Some('*'), _) => {
                pi += 1;
                star = Some((pi, si));
            }
            (Some('?'), Some(c)) => {
                pi += 1;
                si += c.len_utf8();
            }
            (Some(&pc), Some(c)) if pc == c => {
                pi += 1;
                si += c.len_utf8();
            }
            (None, None) => return true,
            _ => {
                let Some((star_pi, star_si)) = star else {
                    return false;
                };
                let Some(c) = next_char(star_si) else {
                    return false;
                };
                let star_si = star_si + c.len_utf8();
                star = Some((star_pi, star_si));
                pi = star_pi;
                si = star_si;
            }
        }
    }
}

/// A host pattern: a glob on the host string, or a host-group reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPat {
    Glob(Glob),
    /// `+NAME`: group NAME, the name shared with the snapshot's group entry.
    Group(Arc<str>),
}

impl HostPat {
    /// `host` is the string as the request gave it; `groups` the groups of the registered
    /// host it names, if it names one.
    pub(crate) fn matches(&self, host: &str, groups: Option<&[Arc<str>]>) -> bool {
        match self {
            HostPat::Glob(glob) => glob.matches(host),
            HostPat::Group(group) => groups.is_some_and(|g| g.iter().any(|n| same_name(n, group))),
        }
    }

    /// The group this pattern names, if it is a group reference.
    pub(crate) fn group(&self) -> Option<&Arc<str>> {
        match self {
            HostPat::Group(name) => Some(name),
            HostPat::Glob(_) => None,
        }
    }
}

/// Two group names: the same shared text in the common case (one pointer compare), else
/// compared byte by byte.
fn same_name(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || same_bytes(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(pattern: &str, subject: &str) -> bool {
        Glob::new(pattern).matches(subject)
    }

    #[test]
    fn star_and_question_mark() {
        assert!(m("web*", "web1") && m("web*", "web") && m("*", ""));
        assert!(m("10.0.*", "10.0.3.7") && !m("10.0.*", "10.1.0.1"));
        assert!(m("web?", "web1") && !m("web?", "web") && !m("web?", "web12"));
        assert!(m("*b*d", "abcbd") && m("a*b?c*", "axxbyczz") && !m("a*b?c", "abc"));
        assert!(m("h?st", "hést"), "? is one character, not one byte");
        assert!(m("*.example.com", "web.example.com") && !m("*.example.com", "example.com"));
        assert!(!m("a*a", "a") && m("a*a", "aa") && m("a**b*", "ab"));
    }

    #[test]
    fn literals_match_exactly_and_case_sensitively() {
        assert!(m("alice", "alice") && !m("alice", "Alice") && !m("alice", "alice2"));
        assert!(!Glob::new("root").is_wildcard() && Glob::new("r?ot").is_wildcard());
    }

    #[test]
    fn group_refs_match_members_only() {
        let name = |n: &str| Arc::<str>::from(n);
        let group = HostPat::Group(name("web"));
        assert!(group.matches("web1", Some(&[name("db"), name("web")])));
        assert!(!group.matches("web1", Some(&[name("db")])));
        assert!(!group.matches("10.9.9.9", None));
    }

    #[test]
    fn a_cache_shares_wildcards_and_the_owner_name() {
        let mut cache = GlobCache::default();
        let owner: Arc<str> = "alice".into();
        let (a, b) = (cache.glob("web*"), cache.glob("web*"));
        let Shape::Stars(ra) = &a.shape else { panic!() };
        let Shape::Stars(rb) = &b.shape else { panic!() };
        assert!(Arc::ptr_eq(ra, rb));
        let lit = cache.with_owner(&owner).glob("alice");
        assert!(matches!(&lit.shape, Shape::Literal(t) if Arc::ptr_eq(t, &owner)));
        assert_eq!(cache.glob("*").shape, Shape::Any);
        assert!(m("*", "") && m("*", "anything"));
    }

    #[test]
    fn pathological_patterns_finish() {
        let subject = "a".repeat(10_000);
        assert!(!m("*a*a*a*a*a*a*a*b", &subject));
    }

    /// Reference matcher: the obvious recursive definition.
    fn reference(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && reference(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(p in "[ab*?é]{0,8}", s in "[abé]{0,10}") {
            let pc: Vec<char> = p.chars().collect();
            let sc: Vec<char> = s.chars().collect();
            prop_assert_eq!(m(&p, &s), reference(&pc, &sc));
        }

        /// The byte path for `*`-only patterns, where the runs can overlap the subject's
        /// ends in tricky ways (`a*a` against `a`).
        #[test]
        fn star_only_patterns_agree_with_the_reference(p in "[ab*é]{0,8}", s in "[abé]{0,10}") {
            let pc: Vec<char> = p.chars().collect();
            let sc: Vec<char> = s.chars().collect();
            prop_assert_eq!(m(&p, &s), reference(&pc, &sc));
        }
    }
}
