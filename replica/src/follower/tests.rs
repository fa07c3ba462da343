//! The follower's epoch rule, on its message handling without a link or a thread: a newer
//! master's (signed) epoch is recorded only once the copy has been brought in line with that
//! master (a batch it streamed), never on a heartbeat alone, and the ack says so; a master
//! older than one already followed is refused.

use super::*;
use crate::store::tests::Scratch;
use gatehouse_common::policy::Database;
use gatehouse_common::repl::LinkTimings;

/// A follower over a fresh store that has already followed a master of epoch `known`.
fn follower(scratch: &Scratch, known: u64) -> Follower {
    let mut store = Store::open(&scratch.file()).expect("a fresh store opens");
    store.set_epoch(known).expect("the epoch is recorded");
    let policy = PolicySnapshot::compile(&Database::default()).expect("an empty policy");
    let status = FollowerStatus::new(store.sequence(), store.epoch());
    Follower {
        relay: None,
        config: FollowConfig {
            masters: vec![PinnedMaster {
                address: "127.0.0.1:1".parse().unwrap(),
                key: gatehouse_common::repl::MasterSecretKey::from_hex(&"01".repeat(32))
                    .unwrap()
                    .public(),
            }],
            host: "r1".into(),
            node_key_file: scratch.file().with_extension("key"),
            store: scratch.file(),
            status_file: None,
            timings: LinkTimings::default(),
            connect_timeout: Duration::from_secs(1),
        },
        key: NodeKey([1; 32]),
        store,
        published: Published {
            policy: Arc::new(ArcSwap::from_pointee(policy)),
            keys: Arc::new(NodeKeyStore::new(Default::default())),
            db: Arc::new(DbStatus::default()),
            reports: Arc::new(crate::reports::Reports::default()),
            audit: None,
        },
        status: Arc::new(Mutex::new(status)),
        rng: StdRng::seed_from_u64(1),
        backoff: Backoff::new(),
        status_written: Instant::now(),
        status_dirty: false,
        status_failing: false,
        link_epoch: 0,
    }
}

fn heartbeat() -> ReplMessage {
    ReplMessage::Heartbeat { seq: 0 }
}

fn empty_batch() -> ReplMessage {
    ReplMessage::Changes {
        changes: Vec::new(),
        head: 0,
    }
}

#[test]
fn a_newer_epoch_is_recorded_on_its_first_batch_not_on_a_heartbeat() {
    let scratch = Scratch::new();
    let mut follower = follower(&scratch, 1);
    follower.link_epoch = 2; // as the master signed it when the link opened
    let mut snapshot = SnapshotAssembler::default();
    let answer = follower.on_message(heartbeat(), &mut snapshot);
    assert!(matches!(answer, Ok(Handled::Answer(None))));
    assert_eq!(
        follower.store.epoch(),
        1,
        "a heartbeat alone proves nothing"
    );
    let answer = follower.on_message(empty_batch(), &mut snapshot);
    assert!(matches!(
        answer,
        Ok(Handled::Answer(Some(ReplMessage::Ack {
            applied: 0,
            epoch: 2
        })))
    ));
    assert_eq!(follower.store.epoch(), 2);
    assert_eq!(follower.status.lock().epoch, 2);
}

#[test]
fn a_master_older_than_one_already_followed_is_refused() {
    let scratch = Scratch::new();
    let follower = follower(&scratch, 2);
    let answer = follower.check_epoch(1);
    assert!(matches!(answer, Err(LinkError::Refused(_))), "{answer:?}");
    assert!(follower.check_epoch(2).is_ok() && follower.check_epoch(3).is_ok());
    assert_eq!(follower.store.epoch(), 2);
}
