//! The master as a server: agents see admin changes at once, acknowledged changes survive
//! SIGKILL, old stores are migrated and unknown ones refused, garbage on the admin socket gets
//! an error, and a second master cannot take over a live socket.

use gatehouse_common::policy::{Route, RouteTarget};
use gatehouse_common::types::{DenyReason, Method};
use gatehouse_common::wire::{AuthorizeRequest, Request, Response};
use gatehouse_master::admin::client::AdminClient;
use gatehouse_master::admin::proto::{
    read_message, AdminErrorKind, AdminRequest, AdminResponse, MAX_RESPONSE_BYTES,
};
use gatehouse_master::store::{SCHEMA_V0, SCHEMA_VERSION};
use gatehouse_tests::admin::{ask, import, run_admin, status};
use gatehouse_tests::*;
use std::io::Write;
use std::process::Command;
use std::sync::mpsc;

fn ssh(to_user: &str, to_host: &str) -> Request {
    Request::Authorize(AuthorizeRequest {
        method: Method::Ssh,
        from_host: "10.9.9.9".into(),
        from_user: to_user.into(),
        to_user: to_user.into(),
        to_host: to_host.into(),
    })
}

#[test]
fn agents_see_admin_changes_immediately_and_sigterm_drains() {
    let files = MasterFiles::new("(workers: 1)");
    let mut master = start_master(&files);
    let (db, hosts) = test_database(1);
    import(&files, &db);
    let mut agent = Client::connect(master.addr, &hosts[0]).unwrap();
    assert!(matches!(
        agent.request(1, ssh("alice", &hosts[0].name)).unwrap(),
        Response::Allow { .. }
    ));

    let locked = run_admin(&files, &["user", "lock", "alice"]);
    assert_eq!(locked.code, 0, "{locked:?}");
    assert_eq!(
        agent.request(2, ssh("alice", &hosts[0].name)).unwrap(),
        Response::Deny {
            reason: DenyReason::Locked
        }
    );
    run_admin(&files, &["user", "unlock", "alice"]);
    assert!(matches!(
        agent.request(3, ssh("alice", &hosts[0].name)).unwrap(),
        Response::Allow { .. }
    ));

    // A newly added host can connect with the key file the CLI wrote, at once.
    let key_file = files.dir.path().join("db9.key");
    let key_arg = key_file.to_string_lossy().to_string();
    assert_eq!(
        run_admin(&files, &["host", "add", "db9", "--key-file", &key_arg]).code,
        0
    );
    let key = std::fs::read_to_string(&key_file).unwrap();
    let db9 = TestHost {
        name: "db9".into(),
        key: gatehouse_common::nodekeys::NodeKey::from_hex(&key).unwrap(),
    };
    let mut new_agent = Client::connect(master.addr, &db9).unwrap();
    assert_eq!(
        new_agent.request(1, ssh("alice", "db9")).unwrap(),
        Response::Deny {
            reason: DenyReason::NoMatchingRoute
        }
    );
    let route = AdminRequest::RouteAdd {
        target: RouteTarget::User("alice".into()),
        route: Route {
            rule: "SSH:*->alice@db9".into(),
            window: None,
            expires: None,
        },
    };
    assert!(matches!(ask(&files, &route), AdminResponse::Done { .. }));
    assert!(matches!(
        new_agent.request(2, ssh("alice", "db9")).unwrap(),
        Response::Allow { .. }
    ));
    drop((agent, new_agent));

    master.signal(libc::SIGTERM);
    let exit = master
        .wait_exit(WAIT_LIMIT)
        .expect("master exits on SIGTERM");
    assert!(exit.success(), "{exit:?}");
    assert!(
        !files.socket.exists(),
        "the admin socket is removed on a clean exit"
    );
}

#[test]
fn every_acknowledged_change_survives_sigkill() {
    let files = MasterFiles::new("(workers: 1)");
    let mut master = start_master(&files);
    let (acks_tx, acks_rx) = mpsc::channel();
    let socket = files.socket.clone();
    let writer = std::thread::spawn(move || {
        let mut client = AdminClient::connect(&socket).unwrap();
        for n in 0..1000 {
            let request = AdminRequest::UserAdd {
                name: format!("user{n:04}"),
                classes: vec![],
            };
            match client.request(&request) {
                Ok(AdminResponse::Done { seq }) => acks_tx.send((n, seq)).unwrap(),
                Ok(other) => panic!("user{n:04}: {other:?}"),
                Err(_) => return, // the master died mid-stream
            }
        }
    });
    let mut acked = Vec::new();
    while acked.len() < 100 {
        acked.push(acks_rx.recv_timeout(WAIT_LIMIT).expect("ack"));
    }
    master.signal(libc::SIGKILL);
    master.wait_exit(WAIT_LIMIT).expect("killed");
    writer.join().unwrap();
    acked.extend(acks_rx.try_iter());
    assert!(
        acked.len() < 1000,
        "the kill should land mid-stream ({} acks)",
        acked.len()
    );
    let (_, last_seq) = *acked.last().unwrap();

    // Restart on the same store (the stale socket file is replaced).
    let _master = start_master(&files);
    let report = status(&files);
    assert!(
        report.sequence >= last_seq,
        "{} < {last_seq}",
        report.sequence
    );
    let AdminResponse::Exported { database, .. } = ask(&files, &AdminRequest::Export) else {
        panic!("export")
    };
    for (n, _) in &acked {
        let name = format!("user{n:04}");
        assert!(database.users.iter().any(|u| u.name == name), "{name} lost");
    }
    // Each change added one user: nothing half-applied, no sequence skipped.
    assert_eq!(database.users.len() as u64, report.sequence);
}

fn master_exit(files: &MasterFiles) -> (i32, String) {
    let out = Command::new(bin_path("gatehouse-master"))
        .arg("--config")
        .arg(&files.config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_old_store_is_migrated_and_a_newer_one_refused() {
    let files = MasterFiles::new("()");
    // Created private, as the master requires of its store.
    write_private(&files.store, "");
    let conn = rusqlite::Connection::open(&files.store).unwrap();
    conn.execute_batch(SCHEMA_V0).unwrap();
    conn.execute_batch(
        "INSERT INTO meta VALUES ('schema_version', '0'), ('sequence', '3');
         INSERT INTO users VALUES ('alice', '', 0, 0);",
    )
    .unwrap();
    drop(conn);
    let master = start_master(&files);
    assert_eq!((status(&files).sequence, status(&files).users), (3, 1));
    assert!(
        master
            .log()
            .contains(&format!("migrated from schema 0 to {SCHEMA_VERSION}")),
        "{}",
        master.log()
    );
    drop(master);

    let conn = rusqlite::Connection::open(&files.store).unwrap();
    conn.execute(
        "UPDATE meta SET value = '9' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let (code, stderr) = master_exit(&files);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "schema version 9 is newer than this gatehouse-master supports ({SCHEMA_VERSION})"
        )),
        "{stderr}"
    );
}

#[test]
fn garbage_on_the_admin_socket_gets_an_error_and_a_second_master_is_refused() {
    let files = MasterFiles::new("()");
    let _master = start_master(&files);
    let mut client = AdminClient::connect(&files.socket).unwrap();
    let send_raw = |client: &mut AdminClient, bytes: &[u8]| {
        client.stream().write_all(bytes).unwrap();
        read_message::<AdminResponse>(client.stream(), MAX_RESPONSE_BYTES).unwrap()
    };
    for body in [&b"((((("[..], b"\xff\xfe\x00", b"HostAdd(name: 7)", b""] {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        match send_raw(&mut client, &frame) {
            Some(AdminResponse::Error {
                kind: AdminErrorKind::BadRequest,
                message,
            }) => {
                assert!(message.starts_with("malformed request"), "{message}")
            }
            other => panic!("{body:?}: {other:?}"),
        }
    }
    // The connection is still usable after a malformed request.
    assert!(matches!(
        client.request(&AdminRequest::Status),
        Ok(AdminResponse::Status(_))
    ));
    // An absurd length is refused and the connection closed, without reading 4 GiB.
    let reply = send_raw(&mut client, &u32::MAX.to_be_bytes());
    assert!(matches!(
        reply,
        Some(AdminResponse::Error {
            kind: AdminErrorKind::BadRequest,
            ..
        })
    ));
    assert_eq!(
        status(&files).sequence,
        0,
        "the master is alive and unchanged"
    );

    // Another master configured with the same socket (its own store) must not start.
    let other = MasterFiles::new("()");
    let config = std::fs::read_to_string(&other.config)
        .unwrap()
        .replace("\"admin.sock\"", &format!("{:?}", files.socket));
    std::fs::write(&other.config, config).unwrap();
    let (code, stderr) = master_exit(&other);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("another master is already listening there"),
        "{stderr}"
    );
    assert_eq!(status(&files).sequence, 0);
}
