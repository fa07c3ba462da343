//! The verifier thread: argon2id runs here (tens of milliseconds each), never on the daemon's
//! event loop, which keeps answering lookups meanwhile. Jobs come over a channel; results go
//! back over another, with a `mio::Waker` wake so the loop picks them up at once.
//!
//! Not pure (a thread). Bounded: at most [`MAX_PENDING_JOBS`] jobs wait; beyond that a job is
//! refused (a verifier not made, an offline check answered "no server reachable").

use super::verifier::VerifierKey;
use rand::rngs::OsRng;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Most jobs waiting for the thread (64). Why: each is one login; a host with more logins in
/// flight than this is better told "try again" than made to queue argon2 work without limit.
pub const MAX_PENDING_JOBS: usize = 64;

/// Work for the thread. Passwords are wiped when the job is dropped (after its argon2 run).
pub enum Job {
    /// Make a verifier for `user` after a successful online login.
    Make {
        user: String,
        password: Zeroizing<String>,
        now_ms: u64,
    },
    /// Check `password` offline; `tag` says who is waiting.
    Check {
        tag: (usize, u64),
        user: String,
        password: Zeroizing<String>,
        verifier: String,
        age_ms: u64,
    },
}

/// What the thread did.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    Made {
        user: String,
        verifier: String,
        now_ms: u64,
    },
    Checked {
        tag: (usize, u64),
        user: String,
        matches: bool,
        age_ms: u64,
    },
}

/// The daemon's end of the thread.
pub struct Worker {
    jobs: SyncSender<Job>,
    done: Receiver<Done>,
}

impl Worker {
    /// Starts the thread; `wake` is called after each result.
    pub fn start(key: VerifierKey, wake: Arc<dyn Fn() + Send + Sync>) -> std::io::Result<Worker> {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(MAX_PENDING_JOBS);
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("verifier".into())
            .spawn(move || {
                for job in job_rx {
                    let result = match job {
                        Job::Make {
                            user,
                            password,
                            now_ms,
                        } => match key.make(&password, &mut OsRng) {
                            Some(verifier) => Done::Made {
                                user,
                                verifier,
                                now_ms,
                            },
                            None => continue,
                        },
                        Job::Check {
                            tag,
                            user,
                            password,
                            verifier,
                            age_ms,
                        } => Done::Checked {
                            tag,
                            matches: key.matches(&verifier, &password),
                            user,
                            age_ms,
                        },
                    };
                    if done_tx.send(result).is_err() {
                        return;
                    }
                    wake();
                }
            })?;
        Ok(Worker { jobs, done })
    }

    /// Queues a job; `false` when the queue is full or the thread is gone.
    pub fn submit(&self, job: Job) -> bool {
        match self.jobs.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// The next result, if any.
    pub fn next_done(&self) -> Option<Done> {
        match self.done.try_recv() {
            Ok(done) => Some(done),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }
}
