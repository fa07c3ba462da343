//! A user's own password change, applied on the master: the old password has been verified
//! by the server the agent asked (this master's bridge, or a replica, which forwards the
//! change over its replication link). Here the master checks again that the user exists and
//! is neither locked nor locked out, sets the password with the very request
//! `gatehouse-admin user passwd` sends, through the admin handler (`admin::handler::handle`:
//! the rules of the user's class, and whatever else setting a password enforces), and records an admin-like audit record ("USER (own
//! password, through host HOST)", with the replica it came via; never the password).
//!
//! - [`change_own_password`]: the change itself (blocking: an argon2 hash and a commit);
//! - [`DirectChanger`]: the master's own bridge calls it on its worker threads;
//! - [`PasswordDesk`]: changes forwarded by replicas, applied on a thread of their own (the
//!   replication loop must not wait for argon2 or a commit), answers handed back to the loop.
//!
//! Not pure: commits through `MasterState`.

use crate::admin::handler::{handle, AdminServices, Session};
use crate::admin::proto::{AdminErrorKind, AdminRequest, AdminResponse};
use crate::audit::admin::{record, AdminCaller};
use crate::state::MasterState;
use gatehouse_common::policy::PolicyTime;
use gatehouse_common::service::kv;
use gatehouse_common::wire::{ChangeOutcome, ChangePasswordRequest};
use gatehouse_replica::password_change::PasswordChanger;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Forwarded changes waiting for the desk's thread (16): four per replica for four replicas
/// changing at their cap at once; more are answered "unavailable" at once. Each is a few
/// hundred bytes; the thread takes tens of milliseconds per change (argon2 and a commit).
pub const MAX_QUEUED_CHANGES: usize = 16;

/// The uid an audit record names for a user's own change when the user has no Unix identity:
/// u32::MAX, the "no uid" of `chown -1` (uid 0 would read as root).
pub const NO_UID: u32 = u32::MAX;

/// Changes `req.user`'s password to `req.new_password` on host `req.host`'s behalf, verified
/// by `via` (the replica that forwarded it; `None`: this master's own bridge). See the module
/// docs. `req.old_password` is not looked at (the verifying server checked it).
pub fn change_own_password(
    state: &MasterState,
    services: &AdminServices,
    via: Option<&str>,
    req: ChangePasswordRequest<&str>,
) -> ChangeOutcome {
    let now = PolicyTime::from_unix(now_unix());
    let user = req.user;
    // The same answer for each: the user must not learn which (nor that the old password
    // was right, for a locked account).
    // From the published snapshot (no store lock, no whole-database read).
    let snapshot = state.policy().load_full();
    let (uid, refusal) = match snapshot.user(user) {
        None => (NO_UID, Some("unknown user")),
        Some((_, u)) => {
            let uid = u.unix.as_ref().map_or(NO_UID, |x| x.uid);
            let locked_out = snapshot
                .user_standing(user)
                .is_some_and(|s| s.locked_out_at(now));
            if u.locked {
                (uid, Some("the user is locked"))
            } else if locked_out {
                (uid, Some("the user is locked out"))
            } else {
                (uid, None)
            }
        }
    };
    let caller = AdminCaller {
        uid,
        name: format!("{user} (own password, through host {})", req.host),
    };
    let command = format!(
        "kind=UserPasswd name={} by=self host={} via={}",
        kv::value(user),
        kv::value(req.host),
        kv::value(via.unwrap_or("master"))
    );
    let (response, outcome) = match refusal {
        // Writes wait for a replica to confirm this master's epoch (after a restart): a user
        // at passwd is told to come back rather than wait up to `write_confirm_wait`.
        None if !state.writes_open() => (
            AdminResponse::Error {
                kind: AdminErrorKind::Internal,
                message: "writes wait for a replica to confirm this master's epoch".into(),
            },
            ChangeOutcome::unavailable(
                "the master is not taking changes yet (it has just started); try again in a minute",
            ),
        ),
        Some(why) => (
            AdminResponse::Error {
                kind: AdminErrorKind::Refused,
                message: why.to_string(),
            },
            ChangeOutcome::Failed,
        ),
        None => {
            // Exactly what `gatehouse-admin user passwd` asks, through the same handler.
            let request = AdminRequest::UserPasswd {
                name: user.to_string(),
                password: Zeroizing::new(req.new_password.to_string()),
            };
            let mut session = Session::new(services.clone());
            // One change: no progress to report.
            let response = handle(state, &mut session, request, &mut |_| {});
            let outcome = outcome_of(&response);
            (response, outcome)
        }
    };
    log::info!(
        target: "gatehouse::admin",
        "{command} caller={}: {}",
        kv::value(&caller.name),
        outcome.name()
    );
    if let Some(audit) = &services.audit {
        record(audit, &caller, command, &response);
    }
    outcome
}

/// What the user is told of `passwd`'s answer: a refusal is the broken rule's text (the
/// user must choose another password); a failure of the master's is "unavailable".
fn outcome_of(response: &AdminResponse) -> ChangeOutcome {
    match response {
        AdminResponse::Error {
            kind: AdminErrorKind::Refused | AdminErrorKind::BadRequest,
            message,
        } => ChangeOutcome::Refused {
            rule: message.clone(),
        },
        AdminResponse::Error { message, .. } => {
            ChangeOutcome::unavailable(format!("the master could not store it: {message}"))
        }
        _ => ChangeOutcome::Changed,
    }
}

/// The master's own bridge: changes are applied on the worker thread that verified them.
pub struct DirectChanger {
    pub state: Arc<MasterState>,
    pub services: AdminServices,
}

impl PasswordChanger for DirectChanger {
    fn change(&self, _agent: &str, request: ChangePasswordRequest<&str>) -> ChangeOutcome {
        change_own_password(&self.state, &self.services, None, request)
    }
}

/// One forwarded change: the replica's host, its id, the request.
type Job = (String, u64, ChangePasswordRequest);
/// What wakes the replication loop (set once the loop exists).
type Wake = Arc<Mutex<Option<Box<dyn Fn() + Send>>>>;

/// Changes forwarded by replicas: queued (bounded) for the desk's thread, answered through
/// [`PasswordDesk::take_results`] once the loop is woken.
pub struct PasswordDesk {
    jobs: crossbeam_channel::Sender<Job>,
    results: Arc<Mutex<Vec<(String, u64, ChangeOutcome)>>>,
    wake: Wake,
}

impl PasswordDesk {
    /// Starts the desk's thread.
    pub fn spawn(state: Arc<MasterState>, services: AdminServices) -> std::io::Result<Self> {
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(MAX_QUEUED_CHANGES);
        let results = Arc::new(Mutex::new(Vec::new()));
        let wake: Wake = Arc::new(Mutex::new(None));
        let (out, waker) = (results.clone(), wake.clone());
        std::thread::Builder::new()
            .name("password-changes".into())
            .spawn(move || {
                for (host, id, mut request) in queue {
                    let via = Some(host.as_str());
                    let outcome = change_own_password(&state, &services, via, request.view());
                    request.wipe();
                    out.lock().push((host, id, outcome));
                    if let Some(wake) = waker.lock().as_ref() {
                        wake();
                    }
                }
            })?;
        Ok(PasswordDesk {
            jobs,
            results,
            wake,
        })
    }

    /// Sets what wakes the replication loop when an answer is ready.
    pub fn set_waker(&self, wake: Box<dyn Fn() + Send>) {
        *self.wake.lock() = Some(wake);
    }

    /// Queues a change from replica `host`; `Err` is the answer to send at once (the queue
    /// is full, or the thread is gone).
    pub fn submit(
        &self,
        host: &str,
        id: u64,
        request: ChangePasswordRequest,
    ) -> Result<(), ChangeOutcome> {
        self.jobs
            .try_send((host.to_string(), id, request))
            .map_err(|e| {
                let (_, _, mut request) = e.into_inner();
                request.wipe();
                ChangeOutcome::unavailable(
                    "the master is busy with other password changes; try again in a moment",
                )
            })
    }

    /// The answers ready to send: (replica host, id, outcome).
    pub fn take_results(&self) -> Vec<(String, u64, ChangeOutcome)> {
        std::mem::take(&mut *self.results.lock())
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().try_into().unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passwords::PasswordPolicy;
    use crate::store::Store;
    use gatehouse_common::policy::password_rules::PasswordRules;
    use gatehouse_common::policy::Change;
    use std::path::PathBuf;

    /// A master state over a store in its own directory (removed when dropped).
    struct Master {
        state: MasterState,
        dir: PathBuf,
    }

    impl Drop for Master {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn master(label: &str) -> Master {
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-self-service-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let state = MasterState::new(Store::open(&dir.join("master.sqlite")).unwrap());
        for change in [
            Change::AddUser {
                name: "alice".into(),
                classes: Vec::new(),
            },
            Change::AddUser {
                name: "bob".into(),
                classes: Vec::new(),
            },
            Change::SetLocked {
                user: "bob".into(),
                locked: true,
            },
        ] {
            state.apply(&change).unwrap();
        }
        Master { state, dir }
    }

    fn services() -> AdminServices {
        AdminServices {
            audit: None,
            passwords: Arc::new(PasswordPolicy {
                default: PasswordRules {
                    min_length: 12,
                    ..PasswordRules::default()
                },
                ..PasswordPolicy::default()
            }),
        }
    }

    fn change(user: &str, new: &str) -> ChangePasswordRequest<String> {
        ChangePasswordRequest {
            user: user.into(),
            old_password: String::new(),
            new_password: new.into(),
            host: "web1".into(),
        }
    }

    #[test]
    fn the_master_rechecks_the_user_applies_the_rules_and_commits() {
        let m = master("rules");
        let services = services();
        let apply = |user: &str, new: &str| {
            change_own_password(&m.state, &services, Some("r1"), change(user, new).view())
        };
        let seq = m.state.read(|s| s.sequence());
        // Unknown and locked users: the one failure, nothing committed.
        assert_eq!(apply("ghost", "a long enough one"), ChangeOutcome::Failed);
        assert_eq!(apply("bob", "a long enough one"), ChangeOutcome::Failed);
        // A rule: refused, naming it.
        let ChangeOutcome::Refused { rule } = apply("alice", "short") else {
            panic!("not refused")
        };
        assert!(rule.contains("rule min_length"), "{rule}");
        assert_eq!(m.state.read(|s| s.sequence()), seq);
        // A good one: committed, and it checks as alice's password.
        assert_eq!(apply("alice", "a long enough one"), ChangeOutcome::Changed);
        assert_eq!(m.state.read(|s| s.sequence()), seq + 1);
        let hash = m.state.read(|s| {
            s.database()
                .users
                .iter()
                .find(|u| u.name == "alice")
                .map(|u| u.password_hash.clone())
        });
        assert!(hash.is_some_and(|h| h.starts_with("$argon2id$")));
    }

    #[test]
    fn a_master_waiting_for_its_epoch_answers_unavailable_at_once() {
        let m = master("gate");
        m.state
            .gate_writes_until_confirmed(std::time::Duration::from_secs(3600));
        let outcome = change_own_password(
            &m.state,
            &services(),
            None,
            change("alice", "a long enough one").view(),
        );
        assert!(
            matches!(outcome, ChangeOutcome::Unavailable { .. }),
            "{outcome:?}"
        );
    }
}
