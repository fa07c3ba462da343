//! Password rules when a password is set, against the real master and `gatehouse-admin`: each
//! rule (length, character classes, the user's name, the dictionary, a class's stricter
//! rules) refuses with its name and changes nothing; on a terminal the password is asked
//! twice without echo and two that differ change nothing.

use gatehouse_tests::admin::run_admin_on;
use gatehouse_tests::process::{bin_path, start_master, MasterFiles};
use gatehouse_tests::WAIT_LIMIT;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

fn master() -> (MasterFiles, gatehouse_tests::ServerProcess) {
    let probe = MasterFiles::new("()");
    let words = probe.dir.path().join("words");
    std::fs::write(&words, "# a word list\nsummer\ndragon\n").unwrap();
    let settings = format!(
        r#"password_policy: (min_length: 12, min_classes: 3, dictionary_file: Some({words:?}),
           classes: {{"admins": (min_length: 16)}}),"#
    );
    let files = MasterFiles::with_settings("()", "127.0.0.1:0", &settings);
    let master = start_master(&files);
    for args in [["user", "add", "alice"], ["user", "add", "root2"]] {
        assert_eq!(run_admin_on(&files.socket, &args, "").code, 0);
    }
    let add = ["class", "add", "admins"];
    assert_eq!(run_admin_on(&files.socket, &add, "").code, 0);
    let admin = ["user", "add", "carol", "--class", "admins"];
    assert_eq!(run_admin_on(&files.socket, &admin, "").code, 0);
    (files, master)
}

#[test]
fn each_rule_refuses_by_name_and_a_class_can_be_stricter() {
    let (files, _master) = master();
    let passwd = |user: &str, password: &str| {
        run_admin_on(
            &files.socket,
            &["user", "passwd", user],
            &format!("{password}\n"),
        )
    };
    for (password, rule) in [
        (
            "Sh0rt!",
            "rule min_length: at least 12 characters (this one has 6)",
        ),
        ("onlylowercaseletters", "rule min_classes: at least 3"),
        ("Alice-Is-Great-1", "rule user_name"),
        (
            "!!Dragon!!2026",
            "rule dictionary: it is a dictionary word (`dragon`)",
        ),
    ] {
        let run = passwd("alice", password);
        assert_eq!(run.code, 1, "{password}: {run:?}");
        assert!(run.stderr.contains(rule), "{password}: {}", run.stderr);
    }
    assert_eq!(passwd("alice", "Tr0ub4dor&3-xyz").code, 0);
    // carol's class asks for 16 characters.
    let run = passwd("carol", "Tr0ub4dor&3-xyz");
    assert!(run.stderr.contains("at least 16 characters"), "{run:?}");
    assert_eq!(passwd("carol", "Tr0ub4dor&3-xyzzy!").code, 0);
}

/// A pseudo-terminal: (the controller side, the side a program reads as its terminal).
fn pty() -> (std::fs::File, OwnedFd) {
    let (mut controller, mut terminal) = (0, 0);
    // SAFETY: openpty writes two descriptors into the locals; the other arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    }
}

/// Runs `user passwd alice` with a terminal as its stdin, typing each of `typed` once its
/// prompt has appeared; its exit code and everything the terminal showed and it printed.
fn passwd_on_terminal(files: &MasterFiles, typed: &[&str]) -> (i32, String) {
    let (controller, terminal) = pty();
    let mut reader = controller.try_clone().unwrap();
    let mut writer = controller;
    // The terminal's output, as it comes (a blocking reader thread; it ends when the terminal
    // closes).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    let stderr_terminal = terminal.try_clone().unwrap();
    let child = Command::new(bin_path("gatehouse-admin"))
        .arg("--socket")
        .arg(&files.socket)
        .args(["user", "passwd", "alice"])
        .stdin(Stdio::from(terminal))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr_terminal))
        .spawn()
        .unwrap();
    let mut shown = String::new();
    for (prompt, line) in ["New password for alice: ", "Again: "].iter().zip(typed) {
        while !shown.contains(prompt) {
            shown += &rx.recv_timeout(WAIT_LIMIT).expect("a prompt");
        }
        writer.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    // What is left on the terminal (the answer to a mismatch, newlines).
    while let Ok(more) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
        shown += &more;
    }
    shown += &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), shown)
}

#[test]
fn on_a_terminal_the_password_is_asked_twice_and_must_match() {
    let (files, _master) = master();
    let (code, text) = passwd_on_terminal(&files, &["Tr0ub4dor&3-xyz", "Tr0ub4dor&3-xyZ"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("New password for alice: "), "{text}");
    assert!(text.contains("Again: "), "{text}");
    assert!(text.contains("the two passwords differ"), "{text}");
    let (code, text) = passwd_on_terminal(&files, &["Tr0ub4dor&3-xyz", "Tr0ub4dor&3-xyz"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok (sequence"), "{text}");
    assert!(
        !text.contains("Tr0ub4dor"),
        "the terminal never echoed it: {text}"
    );
}
