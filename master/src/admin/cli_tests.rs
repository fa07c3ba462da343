use super::*;
use gatehouse_common::policy::{Route, RouteTarget};

fn parse_words(line: &str) -> Result<Invocation, clap::Error> {
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
        request("user expire bob"),
        AdminRequest::UserExpire { name: "bob".into() }
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
fn new_commands_become_requests() {
    assert_eq!(
        request("host show web1"),
        AdminRequest::HostShow {
            name: "web1".into()
        }
    );
    assert_eq!(request("group list"), AdminRequest::GroupList);
    assert_eq!(
        request("group show web"),
        AdminRequest::GroupShow { name: "web".into() }
    );
    assert_eq!(request("class list"), AdminRequest::ClassList);
    assert_eq!(
        request("class show ops"),
        AdminRequest::ClassShow { name: "ops".into() }
    );
    assert_eq!(request("user list"), AdminRequest::UserList);
    assert_eq!(request("replica list"), AdminRequest::ReplicaList);
    assert_eq!(
        request("replica show r1"),
        AdminRequest::ReplicaShow { host: "r1".into() }
    );
    assert_eq!(
        request("user set-classes alice --class ops --class admins"),
        AdminRequest::UserSetClasses {
            name: "alice".into(),
            classes: vec!["ops".into(), "admins".into()],
        }
    );
    assert_eq!(
        request("user set-classes alice"),
        AdminRequest::UserSetClasses {
            name: "alice".into(),
            classes: vec![]
        }
    );
    assert_eq!(
        request("route show --user alice SSH:*->alice@web1"),
        AdminRequest::RouteShow {
            target: RouteTarget::User("alice".into()),
            rule: "SSH:*->alice@web1".into(),
        }
    );
    let inv = parse_words("--json host list").unwrap();
    assert!(inv.json);
    assert!(
        parse_words("user list --json").unwrap().json,
        "--json after the command"
    );
    assert_eq!(
        parse_words("import db.ron --dry-run").unwrap().command,
        Command::Import {
            file: "db.ron".into(),
            dry_run: true
        }
    );
    assert_eq!(
        parse_words("export --out db.ron --force").unwrap().command,
        Command::Export {
            out: Some("db.ron".into()),
            force: true
        }
    );
    assert_eq!(
        parse_words("--generate complete-bash").unwrap().command,
        Command::Generate(Generate::CompleteBash)
    );
    assert_eq!(
        parse_words("status --socket /tmp/s").unwrap().socket,
        PathBuf::from("/tmp/s"),
        "--socket after the command, as before"
    );
}

#[test]
fn bad_command_lines_say_what_is_wrong_and_suggest_the_right_word() {
    let kind = |line: &str| parse_words(line).unwrap_err().kind();
    use clap::error::ErrorKind as K;
    assert_eq!(kind(""), K::DisplayHelpOnMissingArgumentOrSubcommand);
    assert_eq!(kind("--socket /tmp/s"), K::MissingSubcommand);
    assert!(error("--socket /tmp/s").contains("no command given"));
    assert_eq!(kind("host frobnicate x"), K::InvalidSubcommand);
    assert!(
        error("host lsit").contains("tip: a similar subcommand exists: 'list'"),
        "{}",
        error("host lsit")
    );
    assert!(
        error("usr add alice").contains("'user'"),
        "{}",
        error("usr add alice")
    );
    assert!(
        error("host add web1").contains("--key-file <PATH>"),
        "{}",
        error("host add web1")
    );
    assert_eq!(kind("user add"), K::MissingRequiredArgument);
    assert_eq!(kind("user lock alice bob"), K::UnknownArgument);
    assert!(error("host ask-for-others jump1 maybe").contains("[possible values: yes, no]"));
    assert_eq!(kind("user add al --colour red"), K::UnknownArgument);
    assert_eq!(kind("user add al --group g"), K::UnknownArgument);
    assert!(
        error("route add SSH:*->a@b").contains("--user <U>|--class <C>"),
        "{}",
        error("route add SSH:*->a@b")
    );
    assert_eq!(kind("route add --user a --class b R"), K::ArgumentConflict);
    assert!(error("check FTP h a a web1").contains("unknown method `FTP` (LOGIN, SSH, SU or SUDO)"));
    assert!(error("check SSH h a a web1 --at yesterday").contains("--at <TIME>"));
    assert_eq!(kind("export --out"), K::InvalidValue);
    assert_eq!(
        kind("export --force"),
        K::MissingRequiredArgument,
        "--force needs --out"
    );
    // Help and version are "errors" clap prints to stdout with exit 0.
    assert_eq!(kind("--help"), K::DisplayHelp);
    assert_eq!(kind("--version"), K::DisplayVersion);
    assert!(!parse_words("--version").unwrap_err().use_stderr());
}

#[test]
fn the_definition_is_consistent() {
    command().debug_assert();
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
        "unrecognized subcommand 'frobnicate'"
    );
}
