//! The module's decisions against a fake PAM handle and a fake agent: every PAM code it can
//! return, the request it sends for each method, and the password handling options.

use super::*;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

struct FakePam {
    user: Result<String, i32>,
    items: HashMap<&'static str, String>,
    /// PAM_AUTHTOK.
    authtok: Option<String>,
    /// PAM_OLDAUTHTOK.
    oldauthtok: Option<String>,
    /// What the user types at the next prompts, in order (before `typed`).
    queue: VecDeque<String>,
    /// What the conversation answers (`Err`: the conversation fails).
    typed: Option<Result<String, i32>>,
    prompts: Vec<String>,
    messages: Vec<(bool, String)>,
    logs: RefCell<Vec<String>>,
    /// What `keep_aging` stored (PAM module data).
    aging: Option<PasswordAging>,
}

impl Default for FakePam {
    fn default() -> Self {
        FakePam {
            user: Ok("alice".into()),
            items: HashMap::new(),
            authtok: None,
            oldauthtok: None,
            queue: VecDeque::new(),
            typed: None,
            prompts: Vec::new(),
            messages: Vec::new(),
            logs: RefCell::new(Vec::new()),
            aging: None,
        }
    }
}

fn key(item: Item) -> &'static str {
    match item {
        Item::Service => "service",
        Item::Rhost => "rhost",
        Item::Ruser => "ruser",
        Item::Tty => "tty",
    }
}

impl FakePam {
    fn service(service: &str) -> FakePam {
        let mut pam = FakePam::default();
        pam.items.insert("service", service.into());
        pam
    }
    fn with(mut self, item: Item, value: &str) -> FakePam {
        self.items.insert(key(item), value.into());
        self
    }
    fn stored(mut self, password: &str) -> FakePam {
        self.authtok = Some(password.into());
        self
    }
    /// The user types these, one per prompt, in order.
    fn types(mut self, answers: &[&str]) -> FakePam {
        self.queue = answers.iter().map(|a| a.to_string()).collect();
        self
    }
    fn typing(mut self, password: &str) -> FakePam {
        self.typed = Some(Ok(password.into()));
        self
    }
}

impl PamHandle for FakePam {
    fn user(&mut self) -> Result<String, i32> {
        self.user.clone()
    }
    fn item(&self, item: Item) -> Option<String> {
        self.items.get(key(item)).cloned()
    }
    fn authtok(&self) -> Option<Zeroizing<String>> {
        self.authtok.clone().map(Zeroizing::new)
    }
    fn set_authtok(&mut self, password: &str) -> Result<(), i32> {
        self.authtok = Some(password.into());
        Ok(())
    }
    fn old_authtok(&self) -> Option<Zeroizing<String>> {
        self.oldauthtok.clone().map(Zeroizing::new)
    }
    fn set_old_authtok(&mut self, password: &str) -> Result<(), i32> {
        self.oldauthtok = Some(password.into());
        Ok(())
    }
    fn prompt_password(&mut self, prompt: &str) -> Result<Zeroizing<String>, i32> {
        self.prompts.push(prompt.into());
        if let Some(next) = self.queue.pop_front() {
            return Ok(Zeroizing::new(next));
        }
        self.typed
            .clone()
            .unwrap_or(Err(PAM_CONV_ERR))
            .map(Zeroizing::new)
    }
    fn message(&mut self, error: bool, text: &str) {
        self.messages.push((error, text.into()));
    }
    fn log(&self, text: &str) {
        self.logs.borrow_mut().push(text.into());
    }
    fn keep_aging(&mut self, aging: Option<PasswordAging>) {
        self.aging = aging;
    }
    fn kept_aging(&self) -> Option<PasswordAging> {
        self.aging
    }
}

/// Answers every request with one canned answer (an authorize with `authorize` if set) and
/// records what it was asked.
struct FakeAgent {
    answer: Result<LocalResponse, String>,
    authorize: Option<Result<LocalResponse, String>>,
    /// The answer to a password change, if set (else `answer`).
    change: Option<Result<LocalResponse, String>>,
    asked: RefCell<Vec<LocalRequest>>,
}

fn agent(answer: Result<LocalResponse, String>) -> FakeAgent {
    FakeAgent {
        answer,
        authorize: None,
        change: None,
        asked: RefCell::new(Vec::new()),
    }
}

impl Agent for FakeAgent {
    fn ask(&self, request: &LocalRequest) -> Result<LocalResponse, String> {
        self.asked.borrow_mut().push(request.clone());
        match (request, &self.authorize) {
            (LocalRequest::Authorize { .. }, Some(answer)) => answer.clone(),
            (LocalRequest::ChangePassword { .. }, _) if self.change.is_some() => {
                self.change.clone().unwrap_or_else(|| self.answer.clone())
            }
            _ => self.answer.clone(),
        }
    }
}

fn options(args: &[&str]) -> Options {
    Options::parse(args.iter().copied()).unwrap()
}

fn server() -> String {
    "127.0.0.1:7700".into()
}

fn auth_fail() -> Result<LocalResponse, String> {
    Ok(LocalResponse::AuthFail { server: server() })
}

fn deny(reason: DenyReason) -> Result<LocalResponse, String> {
    Ok(LocalResponse::Deny {
        reason,
        server: server(),
    })
}

fn error(kind: LocalErrorKind) -> Result<LocalResponse, String> {
    Ok(LocalResponse::error(kind, "x"))
}

fn alice_authenticates(password: &str) -> LocalRequest {
    LocalRequest::Authenticate {
        user: "alice".into(),
        password: password.to_string().into(),
        host: String::new(),
    }
}

/// The question after a failed password: does Gatehouse know alice at all?
fn knows_alice() -> LocalRequest {
    authorize(Method::Login, "", "", "alice")
}

#[test]
fn authenticate_maps_every_answer_to_its_pam_code() {
    let cases = [
        (
            Ok(LocalResponse::AuthOk { server: server() }),
            &[][..],
            PAM_SUCCESS,
        ),
        (
            error(LocalErrorKind::NoServerReachable),
            &[],
            PAM_AUTHINFO_UNAVAIL,
        ),
        (
            error(LocalErrorKind::NoServerAcceptsConnections),
            &[],
            PAM_AUTHINFO_UNAVAIL,
        ),
        (
            error(LocalErrorKind::DeadlineExceeded),
            &[],
            PAM_AUTHINFO_UNAVAIL,
        ),
        (
            error(LocalErrorKind::PermissionDenied),
            &[],
            PAM_SERVICE_ERR,
        ),
        (
            error(LocalErrorKind::UnsupportedVersion),
            &[],
            PAM_SERVICE_ERR,
        ),
        (
            Err("cannot reach the agent".into()),
            &[],
            PAM_AUTHINFO_UNAVAIL,
        ),
        // An answer that does not fit the question (a broken agent): fail closed.
        (Ok(LocalResponse::NotFound), &[], PAM_SERVICE_ERR),
    ];
    for (answer, args, expected) in cases {
        let mut pam = FakePam::service("sshd").typing("pw");
        let agent = agent(answer.clone());
        assert_eq!(
            authenticate(&mut pam, &agent, &options(args)),
            expected,
            "{answer:?} {args:?}"
        );
        assert_eq!(agent.asked.borrow().as_slice(), [alice_authenticates("pw")]);
    }
}

#[test]
fn a_failed_password_asks_whether_the_user_exists_before_choosing_the_code() {
    let cases = [
        (deny(DenyReason::UnknownUser), &[][..], PAM_USER_UNKNOWN),
        (
            deny(DenyReason::UnknownUser),
            &["ignore_unknown_user"],
            PAM_IGNORE,
        ),
        // Gatehouse knows the user: the refusal stands, whatever the routes say.
        (
            deny(DenyReason::NoMatchingRoute),
            &["ignore_unknown_user"],
            PAM_AUTH_ERR,
        ),
        (
            deny(DenyReason::Locked),
            &["ignore_unknown_user"],
            PAM_AUTH_ERR,
        ),
        (
            Ok(LocalResponse::Allow {
                route: "r".into(),
                server: server(),
            }),
            &["ignore_unknown_user"],
            PAM_AUTH_ERR,
        ),
        // Not known to be unknown: fail closed, never PAM_IGNORE.
        (
            deny(DenyReason::UnknownHost),
            &["ignore_unknown_user"],
            PAM_AUTH_ERR,
        ),
        (
            error(LocalErrorKind::NoServerReachable),
            &["ignore_unknown_user"],
            PAM_AUTH_ERR,
        ),
        (Err("gone".into()), &["ignore_unknown_user"], PAM_AUTH_ERR),
    ];
    for (classified, args, expected) in cases {
        let mut pam = FakePam::service("sshd").typing("pw");
        let mut agent = agent(auth_fail());
        agent.authorize = Some(classified.clone());
        assert_eq!(
            authenticate(&mut pam, &agent, &options(args)),
            expected,
            "{classified:?} {args:?}"
        );
        assert_eq!(
            agent.asked.borrow().as_slice(),
            [alice_authenticates("pw"), knows_alice()]
        );
    }
}

#[test]
fn the_password_comes_from_the_prompt_or_an_earlier_module() {
    let ok = || agent(Ok(LocalResponse::AuthOk { server: server() }));
    // Default: prompt, and store the answer for later modules.
    let mut pam = FakePam::service("sshd").typing("typed");
    assert_eq!(authenticate(&mut pam, &ok(), &options(&[])), PAM_SUCCESS);
    assert_eq!(pam.prompts, ["Password: "]);
    assert_eq!(pam.authtok.as_deref(), Some("typed"));

    // use_first_pass: the stored one, never a prompt; none stored is a failure.
    let mut pam = FakePam::service("sshd").stored("stored");
    let agent = ok();
    assert_eq!(
        authenticate(&mut pam, &agent, &options(&["use_first_pass"])),
        PAM_SUCCESS
    );
    assert!(pam.prompts.is_empty());
    assert!(matches!(&agent.asked.borrow()[0],
        LocalRequest::Authenticate { password, .. } if password.as_str() == "stored"));
    let mut pam = FakePam::service("sshd").typing("typed");
    assert_eq!(
        authenticate(&mut pam, &ok(), &options(&["use_first_pass"])),
        PAM_AUTH_ERR
    );
    assert!(pam.prompts.is_empty());

    // try_first_pass: the stored one if any, else a prompt.
    let mut pam = FakePam::service("sshd").typing("typed");
    assert_eq!(
        authenticate(&mut pam, &ok(), &options(&["try_first_pass"])),
        PAM_SUCCESS
    );
    assert_eq!(pam.prompts.len(), 1);

    // A failed conversation, an empty or an over-long password never reach the agent.
    for (typed, expected) in [
        (Err(PAM_CONV_ERR), PAM_CONV_ERR),
        (Ok(String::new()), PAM_AUTH_ERR),
        (Ok("p".repeat(1025)), PAM_AUTH_ERR),
    ] {
        let mut pam = FakePam::service("sshd");
        pam.typed = Some(typed);
        let agent = ok();
        assert_eq!(authenticate(&mut pam, &agent, &options(&[])), expected);
        assert!(agent.asked.borrow().is_empty());
    }
}

#[test]
fn a_failing_or_odd_user_name_is_answered_without_the_agent() {
    for (user, args, expected) in [
        (Err(PAM_SYSTEM_ERR), &[][..], PAM_SYSTEM_ERR),
        (Err(PAM_CONV_ERR), &[], PAM_CONV_ERR),
        (Ok(String::new()), &[], PAM_USER_UNKNOWN),
        (Ok("u".repeat(256)), &["ignore_unknown_user"], PAM_IGNORE),
    ] {
        let agent = agent(Ok(LocalResponse::AuthOk { server: server() }));
        for decide in [authenticate, acct_mgmt] {
            let mut pam = FakePam::service("sshd").typing("pw");
            pam.user = user.clone();
            assert_eq!(
                decide(&mut pam, &agent, &options(args)),
                expected,
                "{user:?}"
            );
        }
        assert!(agent.asked.borrow().is_empty());
    }
}

#[test]
fn account_maps_every_answer_to_its_pam_code() {
    let allow = Ok(LocalResponse::Allow {
        route: "SSH:*->alice@web*".into(),
        server: server(),
    });
    let cases = [
        (allow, &[][..], PAM_SUCCESS),
        (deny(DenyReason::NoMatchingRoute), &[], PAM_PERM_DENIED),
        (deny(DenyReason::OutsideTimeWindow), &[], PAM_PERM_DENIED),
        (deny(DenyReason::UnknownHost), &[], PAM_PERM_DENIED),
        (deny(DenyReason::Locked), &[], PAM_ACCT_EXPIRED),
        (deny(DenyReason::Expired), &[], PAM_ACCT_EXPIRED),
        (deny(DenyReason::UnknownUser), &[], PAM_USER_UNKNOWN),
        (
            deny(DenyReason::UnknownUser),
            &["ignore_unknown_user"],
            PAM_IGNORE,
        ),
        (
            error(LocalErrorKind::NoServerReachable),
            &[],
            PAM_AUTHINFO_UNAVAIL,
        ),
        (error(LocalErrorKind::BadRequest), &[], PAM_SERVICE_ERR),
        (Err("timed out".into()), &[], PAM_AUTHINFO_UNAVAIL),
        (
            Ok(LocalResponse::AuthOk { server: server() }),
            &[],
            PAM_SERVICE_ERR,
        ),
    ];
    for (answer, args, expected) in cases {
        let mut pam = FakePam::service("sshd");
        assert_eq!(
            acct_mgmt(&mut pam, &agent(answer.clone()), &options(args)),
            expected,
            "{answer:?} {args:?}"
        );
    }
}

fn authorize(method: Method, from_host: &str, from_user: &str, to_user: &str) -> LocalRequest {
    LocalRequest::Authorize {
        method,
        from_host: from_host.into(),
        from_user: from_user.into(),
        to_user: to_user.into(),
        to_host: String::new(),
    }
}

#[test]
fn account_asks_with_the_method_of_the_service_from_the_right_place() {
    let cases = [
        (
            FakePam::service("sshd").with(Item::Rhost, "10.0.0.7"),
            &[][..],
            authorize(Method::Ssh, "10.0.0.7", "", "alice"),
        ),
        // No remote host: the terminal's name.
        (
            FakePam::service("login").with(Item::Tty, "/dev/tty1"),
            &[],
            authorize(Method::Login, "tty1", "", "alice"),
        ),
        // su: from this host, the invoking user becoming PAM_USER.
        (
            FakePam::service("su")
                .with(Item::Ruser, "bob")
                .with(Item::Tty, "/dev/pts/1"),
            &[],
            authorize(Method::Su, "", "bob", "alice"),
        ),
        // sudo: PAM_USER is the invoker; the target is sudo_target.
        (
            FakePam::service("sudo").with(Item::Ruser, "alice"),
            &["sudo_target=admin"],
            authorize(Method::Sudo, "", "alice", "admin"),
        ),
        // A mapping from the arguments wins over the default.
        (
            FakePam::service("sshd").with(Item::Rhost, "h"),
            &["method=sshd:LOGIN"],
            authorize(Method::Login, "h", "", "alice"),
        ),
        (
            FakePam::service("gdm"),
            &["default_method=LOGIN"],
            authorize(Method::Login, "", "", "alice"),
        ),
    ];
    for (mut pam, args, expected) in cases {
        let agent = agent(Ok(LocalResponse::Allow {
            route: "r".into(),
            server: server(),
        }));
        assert_eq!(acct_mgmt(&mut pam, &agent, &options(args)), PAM_SUCCESS);
        assert_eq!(agent.asked.borrow().as_slice(), [expected]);
    }
    // A service with no method is a configuration error, not a guess.
    let mut pam = FakePam::service("cron");
    let agent = agent(Ok(LocalResponse::Allow {
        route: "r".into(),
        server: server(),
    }));
    assert_eq!(acct_mgmt(&mut pam, &agent, &options(&[])), PAM_SERVICE_ERR);
    assert!(agent.asked.borrow().is_empty());
    assert!(
        pam.logs.borrow()[0].contains("add method=cron:"),
        "{:?}",
        pam.logs
    );
}

#[test]
fn debug_logs_decisions_but_never_the_password() {
    let mut pam = FakePam::service("sshd").typing("hunter2");
    let agent = agent(auth_fail());
    authenticate(&mut pam, &agent, &options(&["debug"]));
    acct_mgmt(&mut pam, &agent, &options(&["debug"]));
    let logs = pam.logs.borrow().join("\n");
    assert!(logs.contains("authenticate for `alice`: refused"), "{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}

#[test]
fn an_expired_password_authenticates_and_then_the_account_asks_for_a_change() {
    let opts = options(&[]);
    let aging = |aging| {
        agent(Ok(LocalResponse::AuthOkAging {
            aging,
            server: server(),
        }))
    };
    let mut pam = FakePam::service("sshd").typing("right-but-old");
    assert_eq!(
        authenticate(&mut pam, &aging(PasswordAging::Expired), &opts),
        PAM_SUCCESS
    );
    let mut allowed = agent(Ok(LocalResponse::Allow {
        route: "SSH:*->alice@*".into(),
        server: server(),
    }));
    let mut sshd = options(&["method=sshd:SSH"]);
    assert_eq!(acct_mgmt(&mut pam, &allowed, &sshd), PAM_NEW_AUTHTOK_REQD);
    assert_eq!(
        pam.messages,
        [(
            true,
            "Your password has expired; you must change it now.".to_string()
        )]
    );
    // A denial still wins over the age: no change asked of someone who may not log in.
    allowed.answer = deny(DenyReason::NoMatchingRoute);
    assert_eq!(acct_mgmt(&mut pam, &allowed, &sshd), PAM_PERM_DENIED);

    // In the warning period: a text message and success.
    let mut pam = FakePam::service("sshd").typing("right");
    let soon = aging(PasswordAging::ExpiresIn { days: 3 });
    assert_eq!(authenticate(&mut pam, &soon, &opts), PAM_SUCCESS);
    allowed.answer = Ok(LocalResponse::Allow {
        route: "r".into(),
        server: server(),
    });
    assert_eq!(acct_mgmt(&mut pam, &allowed, &sshd), PAM_SUCCESS);
    assert_eq!(
        pam.messages,
        [(false, "Your password expires in 3 days.".to_string())]
    );

    // A later plain success on the same handle clears what an earlier one kept; an account
    // step with no password step before it (an SSH key) has nothing to say.
    let ok = agent(Ok(LocalResponse::AuthOk { server: server() }));
    assert_eq!(authenticate(&mut pam, &ok, &opts), PAM_SUCCESS);
    assert_eq!(pam.kept_aging(), None);
    let mut keyed = FakePam::service("sshd");
    sshd = options(&["method=sshd:SSH"]);
    assert_eq!(acct_mgmt(&mut keyed, &allowed, &sshd), PAM_SUCCESS);
    assert!(keyed.messages.is_empty());
}

/// The password stage's tests, a child of this module so they share its fakes.
#[path = "chauthtok_tests.rs"]
mod chauthtok;
