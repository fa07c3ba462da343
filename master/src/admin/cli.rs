//! `gatehouse-admin`'s command line: words → what to send to the master (and what to do
//! locally: write a key file, read a password, write an export), or a usage error.
//!
//! Pure: no I/O; `main` in src/bin/admin.rs does the reading and writing. Hand-written (no
//! argument-parsing dependency): every subcommand is a fixed word sequence plus a few
//! `--name VALUE` options.

use super::proto::AdminRequest;
use gatehouse_common::policy::{PolicyTime, Route, RouteTarget};
use gatehouse_common::types::Method;
use std::path::PathBuf;

/// Where the master listens unless `--socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/gatehouse-master/admin.sock";

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: the master refused the request (invalid input); nothing changed.
pub const EXIT_REFUSED: u8 = 1;
/// Exit status: bad command line, or a local file (key file, import, export) unusable.
pub const EXIT_USAGE: u8 = 2;
/// Log entries `compact` keeps by default: a replica down for up to 10,000 changes still
/// resumes from the log instead of needing a snapshot.
pub const DEFAULT_COMPACT_KEEP: u64 = 10_000;
/// Exit status: the master could not be reached (no socket, not running, connection lost).
pub const EXIT_UNREACHABLE: u8 = 3;

pub const USAGE: &str = "usage: gatehouse-admin [--socket PATH] [--master-uid UID] COMMAND
  host add NAME [--address A]... [--group G]... --key-file PATH
  host remove NAME | host list
  host ask-for-others NAME yes|no   (a jump host or proxy may ask about other hosts)
  group add NAME [--description TEXT] | group remove NAME
  group member add|remove GROUP HOST
  user add NAME [--class C]... | user remove NAME
  user passwd NAME          (the password is read from standard input)
  user lock NAME | user unlock NAME   (unlock also clears a lockout after wrong passwords)
  lockout list              (users locked out, and wrong passwords counted now, by host)
  user unix NAME [--uid N] [--gid N] [--gecos TEXT] [--home DIR] [--shell PATH]
  user unix-remove NAME | user show NAME
  unixgroup add NAME [--gid N] | unixgroup remove NAME | unixgroup list
  unixgroup member add|remove GROUP USER
  class add NAME | class remove NAME
  route add (--user U | --class C) RULE [--window W] [--expires E]
  route remove (--user U | --class C) RULE
  route list [--user U | --class C]
  replica add HOST | replica remove HOST
  status
  compact [--keep N]        (delete change-log entries but the newest N, default 10000)
  export [--out FILE]
  import FILE
  batch FILE                (one command per line, as on this command line; - reads standard
                             input; all or none in one transaction, one acknowledgement)
  check METHOD FROM_HOST FROM_USER TO_USER TO_HOST [--at YYYY-MM-DDTHH:MM:SSZ]
Exit status: 0 ok, 1 refused by the master, 2 usage error, 3 cannot reach the master.
The socket defaults to /run/gatehouse-master/admin.sock. Nothing is sent unless the socket and the
process listening on it belong to root, to you, or to --master-uid UID.";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send the request and print the answer.
    Send(AdminRequest),
    /// Send `HostAdd` and write the returned key to `key_file` (mode 0600).
    HostAdd {
        request: AdminRequest,
        key_file: PathBuf,
    },
    /// Read a password from standard input, then send `UserPasswd`.
    Passwd {
        name: String,
    },
    /// Export as RON to `out` or standard output.
    Export {
        out: Option<PathBuf>,
    },
    /// Send the file's text for import.
    Import {
        file: PathBuf,
    },
    /// Send the file's commands (one per line) as one batch.
    Batch {
        file: PathBuf,
    },
    Help,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub socket: PathBuf,
    /// `--master-uid UID`: a uid the master may run as, besides root and the caller's own.
    pub master_uid: Option<u32>,
    pub command: Command,
}

/// A bad command line; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Options that take a value.
const VALUE_OPTIONS: &[&str] = &[
    "--socket",
    "--master-uid",
    "--address",
    "--group",
    "--key-file",
    "--class",
    "--user",
    "--window",
    "--expires",
    "--at",
    "--out",
    "--keep",
    "--description",
    "--uid",
    "--gid",
    "--gecos",
    "--home",
    "--shell",
];

/// Words split into positionals and `--option value` pairs.
struct Words {
    positional: Vec<String>,
    options: Vec<(String, String)>,
}

impl Words {
    fn split(args: &[String]) -> Result<Words, UsageError> {
        let mut words = Words {
            positional: Vec::new(),
            options: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if arg.starts_with("--") && arg.len() > 2 {
                if !VALUE_OPTIONS.contains(&arg.as_str()) {
                    return Err(usage(format!("unknown option {arg}")));
                }
                let value = iter
                    .next()
                    .ok_or_else(|| usage(format!("{arg} needs a value")))?;
                words.options.push((arg.clone(), value.clone()));
            } else {
                words.positional.push(arg.clone());
            }
        }
        Ok(words)
    }

    /// Refuses options this command does not take.
    fn only(&self, allowed: &[&str]) -> Result<(), UsageError> {
        match self
            .options
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((k, _)) => Err(usage(format!("{k} is not an option of this command"))),
            None => Ok(()),
        }
    }

    fn many(&self, name: &str) -> Vec<String> {
        let values = self.options.iter().filter(|(k, _)| k == name);
        values.map(|(_, v)| v.clone()).collect()
    }

    fn one(&self, name: &str) -> Result<Option<String>, UsageError> {
        let mut values = self.many(name);
        if values.len() > 1 {
            return Err(usage(format!("{name} given more than once")));
        }
        Ok(values.pop())
    }

    /// The positionals after the subcommand words, exactly `names.len()` of them.
    fn args(&self, skip: usize, names: &[&str]) -> Result<Vec<String>, UsageError> {
        let rest = self.positional.get(skip..).unwrap_or_default();
        if rest.len() != names.len() {
            return Err(usage(format!(
                "expected {} after `{}`, got {} argument(s)",
                if names.is_empty() {
                    "nothing".to_string()
                } else {
                    names.join(" ")
                },
                self.positional.get(..skip).unwrap_or_default().join(" "),
                rest.len()
            )));
        }
        Ok(rest.to_vec())
    }

    /// A numeric id option (`--uid`, `--gid`).
    fn id(&self, name: &str) -> Result<Option<u32>, UsageError> {
        self.one(name)?
            .map(|v| {
                v.parse()
                    .map_err(|_| usage(format!("{name} expects a number, got {v:?}")))
            })
            .transpose()
    }

    fn target(&self) -> Result<Option<RouteTarget>, UsageError> {
        match (self.one("--user")?, self.one("--class")?) {
            (Some(_), Some(_)) => Err(usage("give --user or --class, not both")),
            (Some(user), None) => Ok(Some(RouteTarget::User(user))),
            (None, Some(class)) => Ok(Some(RouteTarget::Class(class))),
            (None, None) => Ok(None),
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Invocation, UsageError> {
    if args
        .iter()
        .any(|a| a == "-h" || a == "--help" || a == "help")
    {
        return Ok(Invocation {
            socket: PathBuf::from(DEFAULT_SOCKET),
            master_uid: None,
            command: Command::Help,
        });
    }
    let mut words = Words::split(args)?;
    let socket = words
        .one("--socket")?
        .unwrap_or_else(|| DEFAULT_SOCKET.into());
    let master_uid = match words.one("--master-uid")? {
        None => None,
        Some(uid) => Some(
            uid.parse::<u32>()
                .map_err(|_| usage(format!("--master-uid takes a numeric uid, not {uid:?}")))?,
        ),
    };
    words
        .options
        .retain(|(k, _)| k != "--socket" && k != "--master-uid");
    let command = command(&words)?;
    Ok(Invocation {
        socket: PathBuf::from(socket),
        master_uid,
        command,
    })
}

fn send(request: AdminRequest) -> Result<Command, UsageError> {
    Ok(Command::Send(request))
}

fn command(w: &Words) -> Result<Command, UsageError> {
    use AdminRequest as R;
    let word = |i: usize| w.positional.get(i).map(String::as_str);
    let name = |skip| w.args(skip, &["NAME"]).map(|mut v| v.remove(0));
    let plain = |skip: usize| w.only(&[]).and_then(|()| name(skip));
    match (word(0), word(1)) {
        (Some("host"), Some("add")) => {
            w.only(&["--address", "--group", "--key-file"])?;
            let key_file = w
                .one("--key-file")?
                .ok_or_else(|| usage("host add needs --key-file PATH for the new host's key"))?;
            let request = R::HostAdd {
                name: name(2)?,
                addresses: w.many("--address"),
                groups: w.many("--group"),
            };
            Ok(Command::HostAdd {
                request,
                key_file: key_file.into(),
            })
        }
        (Some("host"), Some("remove")) => send(R::HostRemove { name: plain(2)? }),
        (Some("host"), Some("list")) => w.only(&[]).and(w.args(2, &[])).and(send(R::HostList)),
        (Some("host"), Some("ask-for-others")) => {
            w.only(&[])?;
            let [name, answer] = <[String; 2]>::try_from(w.args(2, &["NAME", "yes|no"])?)
                .map_err(|_| usage("expected NAME yes|no"))?;
            let allowed = match answer.as_str() {
                "yes" => true,
                "no" => false,
                other => {
                    return Err(usage(format!(
                        "host ask-for-others: {other:?}: use yes or no"
                    )))
                }
            };
            send(R::HostAskForOthers { name, allowed })
        }
        (Some("group"), Some("add")) => {
            w.only(&["--description"])?;
            let description = w.one("--description")?;
            send(R::GroupAdd {
                name: name(2)?,
                description,
            })
        }
        (Some("group"), Some("remove")) => send(R::GroupRemove { name: plain(2)? }),
        (Some("group"), Some("member")) => {
            w.only(&[])?;
            let action = word(2).unwrap_or_default().to_string();
            let [group, host] = <[String; 2]>::try_from(w.args(3, &["GROUP", "HOST"])?)
                .map_err(|_| usage("expected GROUP HOST"))?;
            match action.as_str() {
                "add" => send(R::GroupMemberAdd { group, host }),
                "remove" => send(R::GroupMemberRemove { group, host }),
                other => Err(usage(format!("group member {other:?}: use add or remove"))),
            }
        }
        (Some("user"), Some("add")) => {
            w.only(&["--class"])?;
            send(R::UserAdd {
                name: name(2)?,
                classes: w.many("--class"),
            })
        }
        (Some("user"), Some("remove")) => send(R::UserRemove { name: plain(2)? }),
        (Some("user"), Some("passwd")) => Ok(Command::Passwd { name: plain(2)? }),
        (Some("user"), Some("lock")) => send(R::UserLock { name: plain(2)? }),
        (Some("user"), Some("unlock")) => send(R::UserUnlock { name: plain(2)? }),
        (Some("user"), Some("unix")) => {
            w.only(&["--uid", "--gid", "--gecos", "--home", "--shell"])?;
            send(R::UserUnix {
                name: name(2)?,
                uid: w.id("--uid")?,
                gid: w.id("--gid")?,
                gecos: w.one("--gecos")?,
                home: w.one("--home")?,
                shell: w.one("--shell")?,
            })
        }
        (Some("user"), Some("unix-remove")) => send(R::UserUnixRemove { name: plain(2)? }),
        (Some("user"), Some("show")) => send(R::UserShow { name: plain(2)? }),
        (Some("unixgroup"), Some("add")) => {
            w.only(&["--gid"])?;
            send(R::UnixGroupAdd {
                name: name(2)?,
                gid: w.id("--gid")?,
            })
        }
        (Some("unixgroup"), Some("remove")) => send(R::UnixGroupRemove { name: plain(2)? }),
        (Some("unixgroup"), Some("list")) => {
            w.only(&[]).and(w.args(2, &[])).and(send(R::UnixGroupList))
        }
        (Some("unixgroup"), Some("member")) => {
            w.only(&[])?;
            let action = word(2).unwrap_or_default().to_string();
            let [group, user] = <[String; 2]>::try_from(w.args(3, &["GROUP", "USER"])?)
                .map_err(|_| usage("expected GROUP USER"))?;
            match action.as_str() {
                "add" => send(R::UnixGroupMemberAdd { group, user }),
                "remove" => send(R::UnixGroupMemberRemove { group, user }),
                other => Err(usage(format!(
                    "unixgroup member {other:?}: use add or remove"
                ))),
            }
        }
        (Some("lockout"), Some("list")) => {
            w.only(&[]).and(w.args(2, &[])).and(send(R::LockoutList))
        }
        (Some("class"), Some("add")) => send(R::ClassAdd { name: plain(2)? }),
        (Some("class"), Some("remove")) => send(R::ClassRemove { name: plain(2)? }),
        (Some("route"), Some(action @ ("add" | "remove"))) => {
            let options: &[&str] = if action == "add" {
                &["--user", "--class", "--window", "--expires"]
            } else {
                &["--user", "--class"]
            };
            w.only(options)?;
            let target = w
                .target()?
                .ok_or_else(|| usage(format!("route {action} needs --user U or --class C")))?;
            let rule = w.args(2, &["RULE"])?.remove(0);
            if action == "remove" {
                return send(R::RouteRemove { target, rule });
            }
            let route = Route {
                rule,
                window: w.one("--window")?,
                expires: w.one("--expires")?,
            };
            send(R::RouteAdd { target, route })
        }
        (Some("route"), Some("list")) => {
            w.only(&["--user", "--class"])?;
            w.args(2, &[])?;
            send(R::RouteList {
                target: w.target()?,
            })
        }
        (Some("replica"), Some("add")) => send(R::ReplicaAdd { host: plain(2)? }),
        (Some("replica"), Some("remove")) => send(R::ReplicaRemove { host: plain(2)? }),
        (Some("status"), _) => w.only(&[]).and(w.args(1, &[])).and(send(R::Status)),
        (Some("compact"), _) => {
            w.only(&["--keep"])?;
            w.args(1, &[])?;
            let keep = match w.one("--keep")? {
                None => DEFAULT_COMPACT_KEEP,
                Some(n) => n
                    .parse()
                    .map_err(|_| usage(format!("--keep expects a number of changes, got {n:?}")))?,
            };
            send(R::Compact { keep })
        }
        (Some("export"), _) => {
            w.only(&["--out"])?;
            w.args(1, &[])?;
            Ok(Command::Export {
                out: w.one("--out")?.map(PathBuf::from),
            })
        }
        (Some("import"), _) => {
            w.only(&[])?;
            let file = w.args(1, &["FILE"])?.remove(0);
            Ok(Command::Import { file: file.into() })
        }
        (Some("batch"), _) => {
            w.only(&[])?;
            let file = w.args(1, &["FILE"])?.remove(0);
            Ok(Command::Batch { file: file.into() })
        }
        (Some("check"), _) => check(w),
        (None, _) => Err(usage("no command given")),
        (Some(first), second) => Err(usage(format!(
            "unknown command `{first}{}`",
            second.map(|s| format!(" {s}")).unwrap_or_default()
        ))),
    }
}

/// One line of a batch file as its request: the words of a command line (split as a shell
/// would, with `'…'`, `"…"` and `\` quoting), which must be a plain change. `Ok(None)` for a
/// blank line or a `#` comment.
pub fn batch_line(line: &str) -> Result<Option<AdminRequest>, UsageError> {
    let words = split_words(line)?;
    if words.first().is_none_or(|w| w.starts_with('#')) {
        return Ok(None);
    }
    match parse(&words)?.command {
        Command::Send(request) => Ok(Some(request)),
        _ => Err(usage(
            "only commands that change the database and print nothing else can be batched",
        )),
    }
}

/// Splits a line into words: blanks separate; `'…'` keeps everything, `"…"` everything but
/// `\"` and `\\`, and `\` outside quotes takes the next character as it is.
fn split_words(line: &str) -> Result<Vec<String>, UsageError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(usage("unterminated ' quote")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => w.extend(['\\', c]),
                            None => return Err(usage("unterminated \" quote")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(usage("unterminated \" quote")),
                    }
                }
            }
            '\\' => {
                let next = chars.next().ok_or_else(|| usage("a line ends in \\"))?;
                word.get_or_insert_with(String::new).push(next);
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

fn check(w: &Words) -> Result<Command, UsageError> {
    w.only(&["--at"])?;
    let args = w.args(
        1,
        &["METHOD", "FROM_HOST", "FROM_USER", "TO_USER", "TO_HOST"],
    )?;
    let [method, from_host, from_user, to_user, to_host] =
        <[String; 5]>::try_from(args).map_err(|_| usage("check needs five arguments"))?;
    let method = Method::from_name(&method).ok_or_else(|| {
        usage(format!(
            "unknown method `{method}` (LOGIN, SSH, SU or SUDO)"
        ))
    })?;
    let at_unix = match w.one("--at")? {
        Some(text) => Some(
            PolicyTime::parse_utc(&text)
                .map_err(|e| usage(format!("--at `{text}`: {e}")))?
                .unix(),
        ),
        None => None,
    };
    send(AdminRequest::Check {
        method,
        from_host,
        from_user,
        to_user,
        to_host,
        at_unix,
    })
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
