//! Test doubles for the module's decisions: a fake PAM handle (items, stored passwords, what
//! the user types, messages and log lines kept) and a fake agent (canned answers, requests
//! kept), shared by the tests of every PAM stage.

use crate::codes::*;
use crate::logic::{Agent, Item, PamHandle};
use crate::options::Options;
use gatehouse_common::types::{DenyReason, Method};
use gatehouse_local::{LocalErrorKind, LocalRequest, LocalResponse};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use zeroize::Zeroizing;

pub(crate) struct FakePam {
    pub(crate) user: Result<String, i32>,
    pub(crate) items: HashMap<&'static str, String>,
    /// PAM_AUTHTOK.
    pub(crate) authtok: Option<String>,
    /// PAM_OLDAUTHTOK.
    pub(crate) oldauthtok: Option<String>,
    /// What the user types at the next prompts, in order (before `typed`).
    pub(crate) queue: VecDeque<String>,
    /// What the conversation answers (`Err`: the conversation fails).
    pub(crate) typed: Option<Result<String, i32>>,
    pub(crate) prompts: Vec<String>,
    pub(crate) messages: Vec<(bool, String)>,
    pub(crate) logs: RefCell<Vec<String>>,
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
        }
    }
}

pub(crate) fn key(item: Item) -> &'static str {
    match item {
        Item::Service => "service",
        Item::Rhost => "rhost",
        Item::Ruser => "ruser",
        Item::Tty => "tty",
    }
}

impl FakePam {
    pub(crate) fn service(service: &str) -> FakePam {
        let mut pam = FakePam::default();
        pam.items.insert("service", service.into());
        pam
    }
    pub(crate) fn with(mut self, item: Item, value: &str) -> FakePam {
        self.items.insert(key(item), value.into());
        self
    }
    pub(crate) fn stored(mut self, password: &str) -> FakePam {
        self.authtok = Some(password.into());
        self
    }
    /// The user types these, one per prompt, in order.
    pub(crate) fn types(mut self, answers: &[&str]) -> FakePam {
        self.queue = answers.iter().map(|a| a.to_string()).collect();
        self
    }
    pub(crate) fn typing(mut self, password: &str) -> FakePam {
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
}

/// Answers every request with one canned answer (an authorize with `authorize` if set) and
/// records what it was asked.
pub(crate) struct FakeAgent {
    pub(crate) answer: Result<LocalResponse, String>,
    pub(crate) authorize: Option<Result<LocalResponse, String>>,
    /// The answer to a password change, if set (else `answer`).
    pub(crate) change: Option<Result<LocalResponse, String>>,
    pub(crate) asked: RefCell<Vec<LocalRequest>>,
}

pub(crate) fn agent(answer: Result<LocalResponse, String>) -> FakeAgent {
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

pub(crate) fn options(args: &[&str]) -> Options {
    Options::parse(args.iter().copied()).unwrap()
}

pub(crate) fn server() -> String {
    "127.0.0.1:7700".into()
}

pub(crate) fn auth_fail() -> Result<LocalResponse, String> {
    Ok(LocalResponse::AuthFail { server: server() })
}

pub(crate) fn deny(reason: DenyReason) -> Result<LocalResponse, String> {
    Ok(LocalResponse::Deny {
        reason,
        server: server(),
    })
}

pub(crate) fn error(kind: LocalErrorKind) -> Result<LocalResponse, String> {
    Ok(LocalResponse::error(kind, "x"))
}

pub(crate) fn alice_authenticates(password: &str) -> LocalRequest {
    LocalRequest::Authenticate {
        user: "alice".into(),
        password: password.to_string().into(),
        host: String::new(),
    }
}

/// The question after a failed password: does Gatehouse know alice at all?
pub(crate) fn knows_alice() -> LocalRequest {
    authorize(Method::Login, "", "", "alice")
}

pub(crate) fn authorize(
    method: Method,
    from_host: &str,
    from_user: &str,
    to_user: &str,
) -> LocalRequest {
    LocalRequest::Authorize {
        method,
        from_host: from_host.into(),
        from_user: from_user.into(),
        to_user: to_user.into(),
        to_host: String::new(),
    }
}
