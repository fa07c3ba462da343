//! Exact-byte vectors for identity lookups and answers (the worked examples in
//! docs/PROTOCOL.md, "Identity lookups"), and the decoder's refusal of invalid entries.

use crate::identity::{GroupEntry, Lookup, PasswdEntry, MAX_GROUP_MEMBERS};
use crate::wire::strategies::hex;
use crate::wire::{DecodeError, EncodeError, Request, Response, Session};

fn enc(m: &Session) -> Vec<u8> {
    let mut out = vec![];
    m.encode(&mut out).unwrap();
    out
}

fn alice() -> PasswdEntry {
    PasswdEntry::example()
}

#[test]
fn wire_vector_identity_lookups() {
    let cases = [
        (
            Lookup::UserByName("alice".to_string()),
            "10 00000009 03 0005 616c696365",
        ),
        (Lookup::UserByUid(100_001), "10 00000009 04 000186a1"),
        (
            Lookup::GroupByName("ops".to_string()),
            "10 00000009 05 0003 6f7073",
        ),
        (Lookup::GroupByGid(100_100), "10 00000009 06 00018704"),
        (
            Lookup::GroupsOfUser("bob".to_string()),
            "10 00000009 07 0003 626f62",
        ),
    ];
    for (lookup, bytes) in cases {
        let msg = Session::Request {
            id: 9,
            body: Request::Lookup(lookup),
        };
        assert_eq!(enc(&msg), hex(bytes), "{msg:?}");
        assert_eq!(Session::decode(&hex(bytes)), Ok(msg));
    }
}

#[test]
fn wire_vector_identity_answers() {
    let group = GroupEntry {
        name: "ops".into(),
        gid: 100_100,
        members: vec!["alice".into(), "bob".into()],
    };
    let cases = [
        (
            Response::User(alice().into()),
            "11 00000009 06 0005 616c696365 000186a1 000186a1 0005 416c696365
             000b 2f686f6d652f616c696365 0007 2f62696e2f7368",
        ),
        (
            Response::Group(group.into()),
            "11 00000009 07 0003 6f7073 00018704 0002 0005 616c696365 0003 626f62",
        ),
        (
            Response::Groups(vec![100_100, 100_200].into()),
            "11 00000009 08 0002 00018704 00018768",
        ),
        (Response::NotFound, "11 00000009 09"),
    ];
    for (body, bytes) in cases {
        let msg = Session::Response { id: 9, body };
        assert_eq!(enc(&msg), hex(bytes), "{msg:?}");
        assert_eq!(Session::decode(&hex(bytes)), Ok(msg));
    }
}

#[test]
fn invalid_entries_do_not_decode_and_are_not_encoded() {
    let invalid = Err(DecodeError::Invalid {
        field: "passwd entry",
        why: "not a valid Unix identity",
    });
    // uid 0: a directory entry must never be root.
    let root = "11 00000009 06 0004 726f6f74 00000000 000186a1 0000 0001 2f 0001 2f";
    assert_eq!(Session::decode(&hex(root)), invalid);
    // A `:` in the name would split a passwd line.
    let colon = "11 00000009 06 0003 613a62 000186a1 000186a1 0000 0001 2f 0001 2f";
    assert_eq!(Session::decode(&hex(colon)), invalid);
    // A group announcing more members than the limit is refused from its count.
    let crowd = format!(
        "11 00000009 07 0003 6f7073 00018704 {:04x}",
        MAX_GROUP_MEMBERS + 1
    );
    assert_eq!(
        Session::decode(&hex(&crowd)),
        Err(DecodeError::Invalid {
            field: "members",
            why: "too many entries"
        })
    );
    let long = PasswdEntry {
        name: "x".repeat(33),
        ..alice()
    };
    let msg = Session::Response {
        id: 1,
        body: Response::User(long.into()),
    };
    assert_eq!(
        msg.encode(&mut vec![]),
        Err(EncodeError::TooLong {
            field: "name",
            len: 33,
            max: 32
        })
    );
}

#[test]
fn the_largest_group_answer_fits_a_frame() {
    let group = GroupEntry {
        name: "g".repeat(32),
        gid: 7,
        members: (0..MAX_GROUP_MEMBERS)
            .map(|i| format!("{i:a>32}"))
            .collect(),
    };
    let msg = Session::Response {
        id: 1,
        body: Response::Group(group.into()),
    };
    let len = enc(&msg).len();
    // 1 tag + 4 id + 1 kind + (2 + 32) name + 4 gid + 2 count + 1024 × (2 + 32): the size
    // docs/PROTOCOL.md quotes.
    assert_eq!(len, 34_862);
    assert!(len + 16 <= crate::wire::MAX_FRAME_LEN, "{len}");
}
