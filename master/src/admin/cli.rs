//! `gatehouse-admin`'s command line: clap's definition of every command ([`AdminCli`]), turned
//! into what to send to the master and what to do locally (write a key file, read a password,
//! write an export, show an import's diff, follow the audit trail) as an [`Invocation`]. clap
//! gives the help text, suggestions for a mistyped command (`host lsit` → `list`), the man
//! page and the shell completions (`--generate`, common's `cli`).
//!
//! Pure but for reading the clock (`audit --since 15m` counts back from now); `main` in
//! src/bin/admin.rs does the reading and writing.

use super::proto::AdminRequest;
use crate::audit::AuditQuery;
use clap::{Args, Parser, Subcommand};
use gatehouse_common::cli::Generate;
use gatehouse_common::policy::{PolicyTime, Route, RouteTarget};
use gatehouse_common::types::Method;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[path = "cli_words.rs"]
mod words;
pub use words::{GroupCmd, HostCmd, ReplicaCmd, RouteCmd, UnixGroupCmd, UserCmd};

#[path = "cli_audit.rs"]
mod audit;
pub use audit::{AuditArgs, When, DEFAULT_AUDIT_LIMIT};

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

const AFTER_HELP: &str = "\
Exit status: 0 ok, 1 refused by the master, 2 usage error, 3 cannot reach the master.
Nothing is sent unless the socket and the process listening on it belong to root, to you, or
to --master-uid UID. docs/ADMIN.md describes every command.";

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-admin",
    version,
    about = "Change and inspect Gatehouse's security database through the master's admin socket",
    after_help = AFTER_HELP,
    arg_required_else_help = true
)]
pub struct AdminCli {
    /// The master's admin socket.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// A uid the master may run as, besides root and your own.
    #[arg(long, global = true, value_name = "UID")]
    pub master_uid: Option<u32>,
    /// Print lists and shows as JSON (`audit`: one JSON object a line).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print the man page or a shell's completions and exit.
    #[arg(long, value_name = "KIND", exclusive = true)]
    pub generate: Option<Generate>,
    #[command(subcommand)]
    pub command: Option<Top>,
}

/// The first word.
#[derive(Debug, Subcommand)]
pub enum Top {
    /// Hosts (managed servers) and their node keys.
    #[command(subcommand)]
    Host(HostCmd),
    /// Host groups (`+NAME` in routes).
    #[command(subcommand)]
    Group(GroupCmd),
    /// Users: classes, passwords, locks, Unix identities.
    #[command(subcommand)]
    User(UserCmd),
    /// User classes (sets of routes users share).
    #[command(subcommand)]
    Class(words::ClassCmd),
    /// Access routes of a user or a class.
    #[command(subcommand)]
    Route(RouteCmd),
    /// The replication allow-list and each replica's link.
    #[command(subcommand)]
    Replica(ReplicaCmd),
    /// Unix groups (what `getent group` shows on managed hosts).
    #[command(subcommand)]
    Unixgroup(UnixGroupCmd),
    /// Users locked out after wrong passwords.
    #[command(subcommand)]
    Lockout(words::LockoutCmd),
    /// Sequence, counts, the replica allow-list, each replica link, and the audit trail.
    Status,
    /// Delete change-log entries but the newest N.
    Compact {
        #[arg(long, value_name = "N", default_value_t = DEFAULT_COMPACT_KEEP)]
        keep: u64,
    },
    /// The whole database as RON (keys and hashes: written mode 0600).
    Export {
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Overwrite FILE if it exists.
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Replace the whole database with FILE, after checking all of it.
    Import {
        file: PathBuf,
        /// Check FILE and print what would be added, removed and changed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Evaluate an authorize request and print the decision and the route that made it.
    Check(CheckArgs),
    /// The audit trail (decisions, lockouts, admin actions), oldest first; --follow for new ones.
    Audit(AuditArgs),
    /// Apply FILE's commands (one a line, as on this command line; `-` reads standard input)
    /// as one batch: all or none, in one transaction, with one acknowledgement.
    Batch { file: PathBuf },
}

/// `check METHOD FROM_HOST FROM_USER TO_USER TO_HOST [--at T]`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// LOGIN, SSH, SU or SUDO.
    #[arg(value_parser = parse_method)]
    pub method: Method,
    pub from_host: String,
    pub from_user: String,
    pub to_user: String,
    pub to_host: String,
    /// Evaluate at this time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<i64>,
}

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
    /// Read a new password (twice without echo on a terminal, else one line of standard
    /// input), then send `UserPasswd`.
    Passwd { name: String },
    /// Export as RON to `out` (replacing it only with `force`) or standard output.
    Export { out: Option<PathBuf>, force: bool },
    /// Send the file's text for import, or with `dry_run` for a diff.
    Import { file: PathBuf, dry_run: bool },
    /// Print the audit records `query` selects; with `follow`, keep printing new ones as
    /// they are stored.
    Audit { query: AuditQuery, follow: bool },
    /// Send the file's commands (one per line) as one batch.
    Batch { file: PathBuf },
    /// Print a man page or completions.
    Generate(Generate),
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub socket: PathBuf,
    /// `--master-uid UID`: a uid the master may run as, besides root and the caller's own.
    pub master_uid: Option<u32>,
    /// `--json`: lists and shows as JSON, audit records as JSON lines.
    pub json: bool,
    pub command: Command,
}

/// Parses the arguments after the program name. `Err` is clap's error: printed with
/// [`clap::Error::print`] it is the message with a suggestion, or the help or version text.
pub fn parse(args: &[String]) -> Result<Invocation, clap::Error> {
    let program = std::iter::once("gatehouse-admin".to_string());
    let cli = AdminCli::try_parse_from(program.chain(args.iter().cloned()))?;
    let command = match (cli.generate, cli.command) {
        (Some(what), _) => Command::Generate(what),
        (None, Some(top)) => top.into_command(),
        // Options alone (`--socket S`): clap requires no subcommand, so that `--generate`
        // can stand alone.
        (None, None) => {
            return Err(command().error(
                clap::error::ErrorKind::MissingSubcommand,
                "no command given",
            ))
        }
    };
    Ok(Invocation {
        socket: cli.socket,
        master_uid: cli.master_uid,
        json: cli.json,
        command,
    })
}

/// The clap command, for the man page and completions.
pub fn command() -> clap::Command {
    <AdminCli as clap::CommandFactory>::command()
}

impl Top {
    fn into_command(self) -> Command {
        use AdminRequest as R;
        let send = Command::Send;
        match self {
            Top::Host(c) => c.into_command(),
            Top::Group(c) => send(c.into_request()),
            Top::User(c) => c.into_command(),
            Top::Class(c) => send(c.into_request()),
            Top::Route(c) => send(c.into_request()),
            Top::Replica(c) => send(c.into_request()),
            Top::Unixgroup(c) => send(c.into_request()),
            Top::Lockout(words::LockoutCmd::List) => send(R::LockoutList),
            Top::Status => send(R::Status),
            Top::Compact { keep } => send(R::Compact { keep }),
            Top::Export { out, force } => Command::Export { out, force },
            Top::Import { file, dry_run } => Command::Import { file, dry_run },
            Top::Check(a) => send(R::Check {
                method: a.method,
                from_host: a.from_host,
                from_user: a.from_user,
                to_user: a.to_user,
                to_host: a.to_host,
                at_unix: a.at,
            }),
            Top::Audit(a) => a.into_command(now_ms()),
            Top::Batch { file } => Command::Batch { file },
        }
    }
}

/// The wall clock in milliseconds since the epoch (relative `audit` times count from it).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn parse_method(text: &str) -> Result<Method, String> {
    Method::from_name(text)
        .ok_or_else(|| format!("unknown method `{text}` (LOGIN, SSH, SU or SUDO)"))
}

fn parse_at(text: &str) -> Result<i64, String> {
    PolicyTime::parse_utc(text)
        .map(|t| t.unix())
        .map_err(|e| e.to_string())
}

/// `--user U | --class C`, as a route's owner.
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct Owner {
    /// The user whose routes these are.
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// The class whose routes these are.
    #[arg(long, value_name = "C")]
    pub class: Option<String>,
}

impl Owner {
    fn target(self) -> Option<RouteTarget> {
        match (self.user, self.class) {
            (Some(user), _) => Some(RouteTarget::User(user)),
            (None, Some(class)) => Some(RouteTarget::Class(class)),
            (None, None) => None,
        }
    }
}

/// A route's rule and its optional limits, as `route add` takes them.
fn route(rule: String, window: Option<String>, expires: Option<String>) -> Route {
    Route {
        rule,
        window,
        expires,
    }
}

/// One line of a batch file as its request: the words of a command line (split as a shell
/// would, with `'…'`, `"…"` and `\` quoting), which must be a plain change. `Ok(None)` for a
/// blank line or a `#` comment.
pub fn batch_line(line: &str) -> Result<Option<AdminRequest>, String> {
    let words = split_words(line)?;
    if words.first().is_none_or(|w| w.starts_with('#')) {
        return Ok(None);
    }
    let parsed = parse(&words).map_err(|e| {
        // clap's message without its usage and help lines.
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("not a command").to_string();
        first.trim_start_matches("error: ").to_string()
    })?;
    match parsed.command {
        Command::Send(request) => Ok(Some(request)),
        _ => Err(
            "only commands that change the database and print nothing else can be batched".into(),
        ),
    }
}

/// Splits a line into words: blanks separate; `'…'` keeps everything, `"…"` everything but
/// `\"` and `\\`, and `\` outside quotes takes the next character as it is.
fn split_words(line: &str) -> Result<Vec<String>, String> {
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
                        None => return Err("unterminated ' quote".into()),
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
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                let next = chars.next().ok_or("a line ends in \\")?;
                word.get_or_insert_with(String::new).push(next);
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
