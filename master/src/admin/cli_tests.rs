use super::*;

fn parse_words(line: &str) -> Result<Invocation, UsageError> {
    let args: Vec<String> = line.split_whitespace().map(String::from).collect();
    parse(&args)
}

fn request(line: &str) -> AdminRequest {
    match parse_words(line).unwrap().command {
        Command::Send(request) => request,
        other => panic!("{line}: {other:?}"),
    }
}

fn error(line: &str) -> String {
    parse_words(line).unwrap_err().to_string()
}

#[test]
fn commands_become_requests() {
    let inv = parse_words("--socket /tmp/a.sock host add web1 --address 10.0.0.5 --group web --address ::1 --key-file k").unwrap();
    assert_eq!(inv.socket, PathBuf::from("/tmp/a.sock"));
    assert_eq!(
        inv.command,
        Command::HostAdd {
            request: AdminRequest::HostAdd {
                name: "web1".into(),
                addresses: vec!["10.0.0.5".into(), "::1".into()],
                groups: vec!["web".into()],
            },
            key_file: "k".into(),
        }
    );
    assert_eq!(
        request("route add --class ops SSH:*->*@+web --window Sat,Sun"),
        AdminRequest::RouteAdd {
            target: RouteTarget::Class("ops".into()),
            route: Route {
                rule: "SSH:*->*@+web".into(),
                window: Some("Sat,Sun".into()),
                expires: None,
            },
        }
    );
    assert_eq!(
        request("group member remove web web1"),
        AdminRequest::GroupMemberRemove {
            group: "web".into(),
            host: "web1".into()
        }
    );
    assert_eq!(
        request("check ssh 10.0.0.1 alice alice web1 --at 2026-03-02T09:00:00Z"),
        AdminRequest::Check {
            method: Method::Ssh,
            from_host: "10.0.0.1".into(),
            from_user: "alice".into(),
            to_user: "alice".into(),
            to_host: "web1".into(),
            at_unix: Some(1_772_442_000),
        }
    );
    assert_eq!(
        request("host ask-for-others jump1 yes"),
        AdminRequest::HostAskForOthers {
            name: "jump1".into(),
            allowed: true
        }
    );
    assert_eq!(
        request("host ask-for-others jump1 no"),
        AdminRequest::HostAskForOthers {
            name: "jump1".into(),
            allowed: false
        }
    );
    assert_eq!(
        request("route list"),
        AdminRequest::RouteList { target: None }
    );
    assert_eq!(request("lockout list"), AdminRequest::LockoutList);
    assert_eq!(
        request("user unlock bob"),
        AdminRequest::UserUnlock { name: "bob".into() }
    );
    assert_eq!(
        parse_words("status").unwrap().socket,
        PathBuf::from(DEFAULT_SOCKET)
    );
    assert_eq!(
        parse_words("user passwd alice").unwrap().command,
        Command::Passwd {
            name: "alice".into()
        }
    );
}

#[test]
fn bad_command_lines_say_what_is_wrong() {
    assert_eq!(error(""), "no command given");
    assert_eq!(
        error("host frobnicate x"),
        "unknown command `host frobnicate`"
    );
    assert_eq!(
        error("host add web1"),
        "host add needs --key-file PATH for the new host's key"
    );
    assert_eq!(
        error("user add"),
        "expected NAME after `user add`, got 0 argument(s)"
    );
    assert_eq!(
        error("user lock alice bob"),
        "expected NAME after `user lock`, got 2 argument(s)"
    );
    assert_eq!(
        error("host ask-for-others jump1 maybe"),
        "host ask-for-others: \"maybe\": use yes or no"
    );
    assert_eq!(error("user add al --colour red"), "unknown option --colour");
    assert_eq!(
        error("user add al --group g"),
        "--group is not an option of this command"
    );
    assert_eq!(
        error("route add SSH:*->a@b"),
        "route add needs --user U or --class C"
    );
    assert_eq!(
        error("route add --user a --class b R"),
        "give --user or --class, not both"
    );
    assert_eq!(
        error("check FTP h a a web1"),
        "unknown method `FTP` (LOGIN, SSH, SU or SUDO)"
    );
    assert!(error("check SSH h a a web1 --at yesterday").starts_with("--at `yesterday`: "));
    assert_eq!(error("export --out"), "--out needs a value");
}

#[test]
fn batch_lines_are_command_lines_split_as_a_shell_would() {
    assert_eq!(batch_line("   # a comment").unwrap(), None);
    assert_eq!(batch_line("").unwrap(), None);
    assert_eq!(
        batch_line(r#"route add --user al "SSH:*->al@web*" --window 'Mon-Fri 08:00-18:00'"#)
            .unwrap(),
        Some(AdminRequest::RouteAdd {
            target: RouteTarget::User("al".into()),
            route: Route {
                rule: "SSH:*->al@web*".into(),
                window: Some("Mon-Fri 08:00-18:00".into()),
                expires: None,
            },
        })
    );
    assert_eq!(
        batch_line(r#"group add web --description "the \"web\" tier""#).unwrap(),
        Some(AdminRequest::GroupAdd {
            name: "web".into(),
            description: Some(r#"the "web" tier"#.into()),
        })
    );
    assert_eq!(
        batch_line(r"user add al\ bert").unwrap(),
        Some(AdminRequest::UserAdd {
            name: "al bert".into(),
            classes: vec![],
        })
    );
    let refused = |line: &str| batch_line(line).unwrap_err().to_string();
    assert!(refused("user passwd al").starts_with("only commands that change"));
    assert_eq!(refused("user add 'al"), "unterminated ' quote");
    assert_eq!(
        refused("user frobnicate al"),
        "unknown command `user frobnicate`"
    );
}
