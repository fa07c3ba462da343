//! Table-driven tests of the policy engine: every `*.txt` file in tests/fixtures/policy is a list
//! of requests and the answers the engine must give. Failures are reported as `file:line`, all
//! of them at once. Line format:
//!
//! ```text
//! # comment (blank lines are ignored too)
//! db: basic.ron                       compile a database from this directory
//! at 2026-11-23T10:00:00Z             the time for the following authorize lines (UTC)
//! authorize SSH from=10.0.0.9 user=- to=alice@web1 -> allow "SSH:10.0.*->alice@web*"
//! authorize SU from=web1 user=alice to=root@web1 -> deny no_matching_route
//! authenticate alice pw=secret host=web1 -> ok
//! authenticate bob pw="two words" host=web1 -> fail bad_password
//! ```
//!
//! `user=-` means an empty from-user; double quotes group words and are removed.
//! The run also checks that, across all files, every method, every deny reason and every
//! authentication failure is exercised at least once.

use gatehouse_common::policy::{Database, Decision, PolicySnapshot, PolicyTime};
use gatehouse_common::types::{AuthFailure, DenyReason, Method};
use gatehouse_common::wire::{AuthenticateRequest, AuthorizeRequest};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy")
}

/// Splits on whitespace outside double quotes; the quotes themselves are dropped.
fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_token = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            c => {
                current.push(c);
                in_token = true;
            }
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if in_token {
        tokens.push(current);
    }
    Ok(tokens)
}

/// `key=value` arguments → map; every key in `keys` must be present, no others.
fn args<'a>(tokens: &'a [String], keys: &[&str]) -> Result<HashMap<&'a str, &'a str>, String> {
    let mut map = HashMap::new();
    for token in tokens {
        let (k, v) = token
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, found `{token}`"))?;
        if !keys.contains(&k) {
            return Err(format!("unknown argument `{k}`"));
        }
        map.insert(k, v);
    }
    match keys.iter().find(|k| !map.contains_key(**k)) {
        Some(missing) => Err(format!("missing argument `{missing}=`")),
        None => Ok(map),
    }
}

#[derive(Default)]
struct Coverage {
    methods: BTreeSet<&'static str>,
    denies: BTreeSet<&'static str>,
    failures: BTreeSet<&'static str>,
    allows: usize,
    oks: usize,
}

struct Runner {
    dir: PathBuf,
    snapshot: Option<PolicySnapshot>,
    now: Option<PolicyTime>,
    coverage: Coverage,
}

impl Runner {
    /// Runs one line; `Ok(true)` when it was a check (not a directive).
    fn line(&mut self, line: &str) -> Result<bool, String> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(false);
        }
        if let Some(file) = line.strip_prefix("db:") {
            let db = Database::load(&self.dir.join(file.trim())).map_err(|e| e.to_string())?;
            self.snapshot = Some(PolicySnapshot::compile(&db).map_err(|e| e.to_string())?);
            return Ok(false);
        }
        if let Some(time) = line.strip_prefix("at ") {
            self.now = Some(PolicyTime::parse_utc(time.trim()).map_err(|e| e.to_string())?);
            return Ok(false);
        }
        let tokens = tokenize(line)?;
        let arrow = tokens
            .iter()
            .position(|t| t == "->")
            .ok_or("missing `->`")?;
        let (request, expected) = (&tokens[..arrow], &tokens[arrow + 1..]);
        let snapshot = self.snapshot.as_ref().ok_or("no `db:` line before this")?;
        match request.first().map(String::as_str) {
            Some("authorize") => {
                let now = self.now.ok_or("no `at` line before this")?;
                let method = request.get(1).ok_or("missing method")?;
                let method = Method::from_name(method).ok_or("unknown method")?;
                let a = args(&request[2..], &["from", "user", "to"])?;
                let (to_user, to_host) = a["to"].split_once('@').ok_or("to= needs user@host")?;
                let from_user = if a["user"] == "-" { "" } else { a["user"] };
                let req: AuthorizeRequest = AuthorizeRequest {
                    method,
                    from_host: a["from"].into(),
                    from_user: from_user.into(),
                    to_user: to_user.into(),
                    to_host: to_host.into(),
                };
                let want = parse_decision(expected)?;
                self.coverage.methods.insert(method.name());
                match &want {
                    Decision::Allow { .. } => self.coverage.allows += 1,
                    Decision::Deny { reason } => {
                        self.coverage.denies.insert(reason.name());
                    }
                }
                let got = snapshot.authorize(&req, now);
                check(&got, &want, now)
            }
            Some("authenticate") => {
                let user = request.get(1).ok_or("missing user")?;
                let a = args(&request[2..], &["pw", "host"])?;
                let req = AuthenticateRequest {
                    user: user.clone(),
                    password: a["pw"].into(),
                    host: a["host"].into(),
                };
                let want = match expected {
                    [ok] if ok == "ok" => Ok(()),
                    [fail, reason] if fail == "fail" => Err(AuthFailure::ALL
                        .into_iter()
                        .find(|r| r.name() == reason)
                        .ok_or_else(|| format!("unknown failure `{reason}`"))?),
                    _ => return Err("expected `ok` or `fail REASON`".into()),
                };
                match want {
                    Ok(()) => self.coverage.oks += 1,
                    Err(reason) => {
                        self.coverage.failures.insert(reason.name());
                    }
                }
                let now = self.now.ok_or("no `at` line before this")?;
                let got = snapshot.authenticate(&req, now);
                if got == want {
                    Ok(true)
                } else {
                    Err(format!("expected {want:?}, got {got:?}"))
                }
            }
            _ => Err("expected db:, at, authorize or authenticate".into()),
        }
    }
}

fn parse_decision(expected: &[String]) -> Result<Decision, String> {
    match expected {
        [allow, route] if allow == "allow" => Ok(Decision::Allow {
            route: route.as_str().into(),
        }),
        [deny, reason] if deny == "deny" => Ok(Decision::Deny {
            reason: DenyReason::ALL
                .into_iter()
                .find(|r| r.name() == reason)
                .ok_or_else(|| format!("unknown deny reason `{reason}`"))?,
        }),
        _ => Err("expected `allow \"ROUTE\"` or `deny REASON`".into()),
    }
}

fn check(got: &Decision, want: &Decision, now: PolicyTime) -> Result<bool, String> {
    if got == want {
        Ok(true)
    } else {
        Err(format!("at {now}: expected {want:?}, got {got:?}"))
    }
}

#[test]
fn policy_fixtures() {
    let dir = fixture_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());

    let mut failures = Vec::new();
    let mut coverage = Coverage::default();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let mut runner = Runner {
            dir: dir.clone(),
            snapshot: None,
            now: None,
            coverage: std::mem::take(&mut coverage),
        };
        let mut checks = 0;
        for (i, line) in text.lines().enumerate() {
            match runner.line(line) {
                Ok(is_check) => checks += usize::from(is_check),
                Err(e) => failures.push(format!("{name}:{}: {e}\n    {}", i + 1, line.trim())),
            }
        }
        if checks == 0 {
            failures.push(format!("{name}: no checks"));
        }
        coverage = runner.coverage;
    }
    assert!(
        failures.is_empty(),
        "{} fixture failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );

    let all = |names: &mut dyn Iterator<Item = &'static str>| names.collect::<BTreeSet<_>>();
    assert_eq!(
        coverage.methods,
        all(&mut Method::ALL.iter().map(|m| m.name()))
    );
    assert_eq!(
        coverage.denies,
        all(&mut DenyReason::ALL.iter().map(|r| r.name()))
    );
    assert_eq!(
        coverage.failures,
        all(&mut AuthFailure::ALL.iter().map(|r| r.name()))
    );
    assert!(coverage.allows > 0 && coverage.oks > 0);
}

#[test]
fn the_tokenizer_keeps_quoted_words_together() {
    assert_eq!(
        tokenize(r#"authenticate erin pw="two words" host=web1 -> ok"#).unwrap(),
        [
            "authenticate",
            "erin",
            "pw=two words",
            "host=web1",
            "->",
            "ok"
        ]
    );
    assert_eq!(tokenize(r#"pw="""#).unwrap(), ["pw="]);
    assert!(tokenize(r#"allow "x"#).is_err());
}
