//! The link's proof of the master's identity: an honest exchange agrees on keys and epoch;
//! a forger holding the replica's node key (but not the master's secret key), a relay that
//! swaps the replica's ephemeral key, a changed epoch or host, and a low-order key all fail.

use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

const HOST: &str = "replica1";

/// The error of an exchange that must fail.
fn refused<T>(result: Result<T, LinkAuthError>) -> LinkAuthError {
    match result {
        Err(e) => e,
        Ok(_) => panic!("the exchange was accepted"),
    }
}

fn node_key() -> NodeKey {
    NodeKey([7; 32])
}

fn master(seed: u64) -> MasterSecretKey {
    MasterSecretKey::generate(&mut StdRng::seed_from_u64(seed))
}

/// A replica's hello and the honest master's answer.
fn exchange(master: &MasterSecretKey, epoch: u64) -> (LinkInitiator, LinkAuth, SessionKeys) {
    let mut rng = StdRng::seed_from_u64(42);
    let (initiator, hello) = LinkInitiator::start(&mut rng);
    let (auth, keys) = respond(&hello, HOST, &node_key(), master, epoch, &mut rng).unwrap();
    (initiator, auth, keys)
}

#[test]
fn an_honest_exchange_agrees_on_keys_and_epoch() {
    let m = master(1);
    let (initiator, auth, master_keys) = exchange(&m, 3);
    let (keys, epoch) = initiator
        .finish(&auth, HOST, &node_key(), &m.public())
        .unwrap();
    assert_eq!(epoch, 3);
    assert_eq!(keys.client_to_server, master_keys.client_to_server);
    assert_eq!(keys.server_to_client, master_keys.server_to_client);
    assert_ne!(keys.client_to_server, keys.server_to_client);
}

#[test]
fn a_master_with_another_key_is_not_the_pinned_one() {
    let pinned = master(1).public();
    let (initiator, auth, _) = exchange(&master(2), 1);
    let err = refused(initiator.finish(&auth, HOST, &node_key(), &pinned));
    assert!(matches!(err, LinkAuthError::NotPinned { .. }), "{err}");
}

#[test]
fn a_forger_claiming_the_pinned_key_cannot_sign_for_it() {
    let real = master(1);
    let (initiator, mut auth, _) = exchange(&master(2), 1);
    auth.master_key = real.public().0;
    let err = refused(initiator.finish(&auth, HOST, &node_key(), &real.public()));
    assert_eq!(err, LinkAuthError::BadSignature);
}

#[test]
fn any_change_to_the_signed_answer_is_refused() {
    let m = master(1);
    let tamper: [fn(&mut LinkAuth); 3] = [
        |a| a.epoch = u64::MAX,
        |a| a.ephemeral[0] ^= 1,
        |a| a.signature[10] ^= 1,
    ];
    for change in tamper {
        let (initiator, mut auth, _) = exchange(&m, 1);
        change(&mut auth);
        let err = refused(initiator.finish(&auth, HOST, &node_key(), &m.public()));
        assert_eq!(err, LinkAuthError::BadSignature);
    }
}

#[test]
fn an_answer_for_another_host_or_another_hello_is_refused() {
    let m = master(1);
    let (initiator, auth, _) = exchange(&m, 1);
    assert_eq!(
        refused(initiator.finish(&auth, "replica2", &node_key(), &m.public())),
        LinkAuthError::BadSignature
    );
    // A relay that passes the master a hello of its own and this replica the answer.
    let mut rng = StdRng::seed_from_u64(9);
    let (initiator, _) = LinkInitiator::start(&mut rng);
    let (_, relayed, _) = exchange(&m, 1);
    assert_eq!(
        refused(initiator.finish(&relayed, HOST, &node_key(), &m.public())),
        LinkAuthError::BadSignature
    );
}

#[test]
fn a_low_order_ephemeral_key_is_refused() {
    let m = master(1);
    let hello = LinkHello {
        ephemeral: [0; EPHEMERAL_LEN],
    };
    let mut rng = StdRng::seed_from_u64(5);
    let err = refused(respond(&hello, HOST, &node_key(), &m, 1, &mut rng));
    assert_eq!(err, LinkAuthError::WeakExchange);
}

#[test]
fn keys_round_trip_through_their_text_and_bad_text_is_refused() {
    let m = master(1);
    let again = MasterSecretKey::from_hex(&format!("{}\n", m.to_hex())).unwrap();
    assert_eq!(again.public(), m.public());
    assert_eq!(
        MasterPublicKey::from_hex(&m.public().to_hex()).unwrap(),
        m.public()
    );
    assert!(MasterPublicKey::from_hex("abcd").is_err());
    // Not every 32 bytes are a curve point; the first such pattern is refused by its text.
    let invalid = (0u8..=255)
        .map(|b| NodeKey([b; 32]).to_hex())
        .find(|hex| VerifyingKey::from_bytes(&NodeKey::from_hex(hex).unwrap().0).is_err())
        .expect("some 32-byte pattern is not a point");
    assert!(MasterPublicKey::from_hex(&invalid).is_err());
    assert!(
        !format!("{m:?}").contains(&m.to_hex()),
        "Debug never prints the secret"
    );
}

/// An RNG that returns one byte value for ever: makes the exchange's secrets fixed, for the
/// worked example in docs/PROTOCOL.md.
struct ConstRng(u8);

impl RngCore for ConstRng {
    fn next_u32(&mut self) -> u32 {
        u32::from_ne_bytes([self.0; 4])
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_ne_bytes([self.0; 8])
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(self.0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        dest.fill(self.0);
        Ok(())
    }
}

impl CryptoRng for ConstRng {}

/// The worked example of docs/PROTOCOL.md ("The master's identity"), also checked against an
/// independent implementation (Python's `cryptography`).
#[test]
fn wire_vector_link_exchange() {
    let master = MasterSecretKey::from_hex(&"01".repeat(32)).unwrap();
    let (initiator, hello) = LinkInitiator::start(&mut ConstRng(2));
    let (auth, keys) = respond(&hello, "r1", &node_key(), &master, 1, &mut ConstRng(3)).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        hex(&auth.master_key),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    assert_eq!(
        hex(&hello.ephemeral),
        "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59"
    );
    assert_eq!(
        hex(&auth.ephemeral),
        "5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22"
    );
    assert_eq!(
        hex(&binding("r1", &hello.ephemeral, &auth)),
        "be161c07cec4aa1d3681395cdd49b529fca7b0b7000fdd20f6a5d9d78a2f2e32"
    );
    assert_eq!(
        hex(&auth.signature),
        "1c5f55da855b79dbcdc540962d60f1481518334664d611be76a74dace5c3cc66\
         3545eea02c7287668b3a287df288a2d3a8090cc14e95570e8ab23d666864f50e"
    );
    assert_eq!(
        hex(&keys.client_to_server),
        "cdd21d93da9c846e8180359d72b87fff3d10857a611e399a2a8327f266d60e6f"
    );
    assert_eq!(
        hex(&keys.server_to_client),
        "09c2afd98e747271b2034fd37a86e268ffcfe6babfe22408f2ddf037951d3968"
    );
    let (mine, epoch) = initiator
        .finish(&auth, "r1", &node_key(), &master.public())
        .unwrap();
    assert_eq!(epoch, 1);
    assert_eq!(mine.client_to_server, keys.client_to_server);
    assert_eq!(mine.server_to_client, keys.server_to_client);
}
