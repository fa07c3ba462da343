//! The master's shared state: a change that changes nothing publishes nothing (readers keep
//! the very snapshot and key map they hold), and reads never wait for a write.

use super::*;
use crate::admin::handler::{handle, Session};
use crate::admin::proto::{AdminRequest, AdminResponse};
use std::sync::mpsc;

fn state(name: &str) -> (MasterState, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("gatehouse-state-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&dir.join("master.sqlite")).unwrap();
    (MasterState::new(store), dir)
}

#[test]
fn a_change_that_changes_nothing_keeps_the_published_pointers() {
    let (state, dir) = state("noop");
    let add = Change::AddUser {
        name: "alice".into(),
        classes: vec![],
    };
    assert_eq!(state.apply(&add).unwrap(), 1);
    let (policy, keys) = (state.policy().load_full(), state.keys().snapshot());
    let unlock = Change::SetLocked {
        user: "alice".into(),
        locked: false,
    };
    assert_eq!(
        state.apply(&unlock).unwrap(),
        1,
        "answered at the current sequence"
    );
    assert!(Arc::ptr_eq(&policy, &state.policy().load_full()));
    assert!(Arc::ptr_eq(&keys, &state.keys().snapshot()));
    // A change to a user leaves the node-key map as it was, too.
    let lock = Change::SetLocked {
        user: "alice".into(),
        locked: true,
    };
    assert_eq!(state.apply(&lock).unwrap(), 2);
    assert!(!Arc::ptr_eq(&policy, &state.policy().load_full()));
    assert!(Arc::ptr_eq(&keys, &state.keys().snapshot()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn status_answers_while_the_store_is_held_by_a_write() {
    let (state, dir) = state("status");
    let state = Arc::new(state);
    let (tx, rx) = mpsc::channel();
    // The store lock is held (as a long import holds it) until status has answered.
    state.read(|_| {
        let asking = state.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let answer = handle(
                &asking,
                &mut Session::default(),
                AdminRequest::Status,
                &mut |_| {},
            );
            let _ = tx.send(answer);
        });
        let answer = rx.recv_timeout(std::time::Duration::from_secs(30));
        assert!(
            matches!(answer, Ok(AdminResponse::Status(_))),
            "status waited for the store: {answer:?}"
        );
    });
    let _ = std::fs::remove_dir_all(dir);
}
