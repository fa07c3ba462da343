//! The `gatehouse-agent` command line: parsing (pure, clap), the one-line human result and
//! exit code for each answer (pure, in [`render`]), and the glue that reads the password from
//! stdin and asks the daemon (`local::client`) or starts it (`crate::daemon`). The binary's
//! `main` only calls [`main`].

mod render;

pub use render::{render, render_status, Rendered};

use super::client::{self, ClientError};
use super::LocalRequest;
use crate::config::{AgentConfig, DEFAULT_SOCKET_PATH};
use clap::{Parser, Subcommand};
use gatehouse_common::cli::{exit_for, print_generated, Generate, ManSection};
use gatehouse_common::identity::Lookup;
use gatehouse_common::types::Method;
use gatehouse_common::wire::MAX_PASSWORD_LEN;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// Exit code: allowed, authenticated, status shown, daemon stopped cleanly.
pub const EXIT_OK: u8 = 0;
/// Exit code: denied, or the password was wrong.
pub const EXIT_NO: u8 = 1;
/// Exit code: no decision (no server reachable, deadline, refused, daemon unreachable, bad
/// usage, daemon failed to start).
pub const EXIT_ERROR: u8 = 2;

const AFTER_HELP: &str = "\
The socket is --socket PATH, else the config's socket_path, else /run/gatehouse/agent.sock.
Exit codes: 0 allow / auth ok / status, 1 deny / auth failed / not found, 2 error.
Daemon signals: SIGHUP reloads the config, SIGTERM or SIGINT stops it.
Logging (daemon): the config's log_level (default info); RUST_LOG=debug overrides it and logs
every request. Under systemd, lines carry journald priorities.";

/// The command line (clap).
#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-agent",
    version,
    about = "The Gatehouse agent daemon (run) and the questions a local user may ask it",
    after_help = AFTER_HELP,
    arg_required_else_help = true
)]
struct AgentCli {
    /// The daemon's socket.
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The agent config: `run` starts it; other commands take its socket_path.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the man page or a shell's completions and exit.
    #[arg(long, value_name = "KIND", exclusive = true)]
    generate: Option<Generate>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run the agent daemon (prints `listening on SOCKET` when ready); needs --config.
    Run {
        /// Load and check the config and the node key file, then exit.
        #[arg(long)]
        check: bool,
    },
    /// May FROM_USER on FROM_HOST log in as TO_USER on TO_HOST this way?
    Authorize {
        /// LOGIN, SSH, SU or SUDO.
        #[arg(value_parser = parse_method)]
        method: Method,
        from_host: String,
        from_user: String,
        to_user: String,
        to_host: String,
    },
    /// Check USER's password (read from standard input; one trailing newline is removed).
    Authenticate { user: String, host: String },
    /// What the agent knows about each server and what it answered offline.
    Status {
        /// The whole report as JSON, for monitoring.
        #[arg(long)]
        json: bool,
    },
    /// An identity as NSS sees it (exit 1: not found).
    Lookup {
        #[arg(value_parser = ["user", "uid", "group", "gid", "groups"])]
        kind: String,
        key: String,
    },
}

fn parse_method(text: &str) -> Result<Method, String> {
    Method::from_name(text).ok_or_else(|| format!("unknown method {text:?} (LOGIN, SSH, SU, SUDO)"))
}

/// The clap command, for the man page and completions.
pub fn command() -> clap::Command {
    <AgentCli as clap::CommandFactory>::command()
}

/// Where the CLI finds the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketChoice {
    /// `--socket PATH`.
    Path(PathBuf),
    /// `--config FILE`: the config's `socket_path`.
    Config(PathBuf),
    /// Neither: [`DEFAULT_SOCKET_PATH`].
    Default,
}

/// A question for the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Authorize {
        method: Method,
        from_host: String,
        from_user: String,
        to_user: String,
        to_host: String,
    },
    /// The password comes from stdin, never from the command line.
    Authenticate {
        user: String,
        host: String,
    },
    Status,
    /// `status --json`.
    StatusJson,
    Lookup(Lookup),
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run {
        config: PathBuf,
    },
    /// `run --check`: load the config and the key, then exit.
    Check {
        config: PathBuf,
    },
    Ask {
        socket: SocketChoice,
        ask: Ask,
    },
    /// `--generate KIND`: a man page or completions.
    Generate(Generate),
}

/// Parses the arguments after the program name. Options may come before or after the
/// subcommand; `Err` is clap's error (printed, it says what was wrong and suggests).
pub fn parse_args(args: &[String]) -> Result<Command, clap::Error> {
    let program = std::iter::once("gatehouse-agent".to_string());
    let cli = AgentCli::try_parse_from(program.chain(args.iter().cloned()))?;
    let usage =
        |message: String| command().error(clap::error::ErrorKind::ArgumentConflict, message);
    if let Some(what) = cli.generate {
        return Ok(Command::Generate(what));
    }
    let Some(sub) = cli.command else {
        return Err(command().error(
            clap::error::ErrorKind::MissingSubcommand,
            "a subcommand is required",
        ));
    };
    let ask = match sub {
        Sub::Run { check } => {
            if cli.socket.is_some() {
                return Err(usage(
                    "run takes the socket path from the config, not --socket".into(),
                ));
            }
            let config = cli.config.ok_or_else(|| {
                command().error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "run needs --config FILE",
                )
            })?;
            return Ok(match check {
                true => Command::Check { config },
                false => Command::Run { config },
            });
        }
        Sub::Authorize {
            method,
            from_host,
            from_user,
            to_user,
            to_host,
        } => Ask::Authorize {
            method,
            from_host,
            from_user,
            to_user,
            to_host,
        },
        Sub::Authenticate { user, host } => Ask::Authenticate { user, host },
        Sub::Status { json: true } => Ask::StatusJson,
        Sub::Status { json: false } => Ask::Status,
        Sub::Lookup { kind, key } => {
            let id = || {
                key.parse::<u32>().map_err(|_| {
                    command().error(
                        clap::error::ErrorKind::InvalidValue,
                        format!("lookup {kind}: {key:?} is not a number"),
                    )
                })
            };
            Ask::Lookup(match kind.as_str() {
                "uid" => Lookup::UserByUid(id()?),
                "gid" => Lookup::GroupByGid(id()?),
                "group" => Lookup::GroupByName(key.clone()),
                "groups" => Lookup::GroupsOfUser(key.clone()),
                _ => Lookup::UserByName(key.clone()),
            })
        }
    };
    let socket = match (cli.socket, cli.config) {
        (Some(path), _) => SocketChoice::Path(path),
        (None, Some(config)) => SocketChoice::Config(config),
        (None, None) => SocketChoice::Default,
    };
    Ok(Command::Ask { socket, ask })
}

/// The password as typed: at most one trailing newline ("\n" or "\r\n") removed.
pub fn strip_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Runs the command line `args` (without the program name).
pub fn main(args: &[String]) -> ExitCode {
    let parsed = match parse_args(args) {
        Ok(parsed) => parsed,
        Err(e) => return exit_for(&e, EXIT_ERROR),
    };
    match parsed {
        Command::Generate(what) => print_generated(command(), ManSection::Admin, what),
        Command::Check { config } => match crate::daemon::check(&config) {
            Ok(()) => {
                println!("config and node key OK");
                ExitCode::from(EXIT_OK)
            }
            Err(e) => {
                eprintln!("gatehouse-agent: {e}");
                ExitCode::from(EXIT_ERROR)
            }
        },
        Command::Run { config } => match crate::daemon::run(&config) {
            Ok(()) => ExitCode::from(EXIT_OK),
            Err(e) => {
                eprintln!("gatehouse-agent: {e}");
                ExitCode::from(EXIT_ERROR)
            }
        },
        Command::Ask { socket, ask } => match ask_daemon(&socket, ask) {
            Ok(rendered) => {
                if rendered.code == EXIT_ERROR {
                    eprintln!("{}", rendered.text);
                } else {
                    println!("{}", rendered.text);
                }
                ExitCode::from(rendered.code)
            }
            Err(why) => {
                eprintln!("error: {why}");
                ExitCode::from(EXIT_ERROR)
            }
        },
    }
}

fn ask_daemon(socket: &SocketChoice, ask: Ask) -> Result<Rendered, String> {
    let path = socket_path(socket)?;
    let json = ask == Ask::StatusJson;
    let request = match ask {
        Ask::Authorize {
            method,
            from_host,
            from_user,
            to_user,
            to_host,
        } => LocalRequest::Authorize {
            method,
            from_host,
            from_user,
            to_user,
            to_host,
        },
        Ask::Authenticate { user, host } => LocalRequest::Authenticate {
            user,
            password: read_password()?,
            host,
        },
        Ask::Status | Ask::StatusJson => LocalRequest::Status,
        Ask::Lookup(lookup) => LocalRequest::Lookup(lookup),
    };
    let response = client::ask(&path, &request).map_err(|e: ClientError| e.to_string())?;
    match &response {
        super::LocalResponse::Status(report) if json => Ok(Rendered {
            text: serde_json::to_string_pretty(report).map_err(|e| e.to_string())?,
            code: EXIT_OK,
        }),
        _ => Ok(render(&request, &response)),
    }
}

fn socket_path(choice: &SocketChoice) -> Result<PathBuf, String> {
    Ok(match choice {
        SocketChoice::Path(path) => path.clone(),
        SocketChoice::Config(file) => {
            let config = AgentConfig::load(file).map_err(|e| e.to_string())?;
            crate::daemon::resolve_path(file, &config.socket_path)
        }
        SocketChoice::Default => Path::new(DEFAULT_SOCKET_PATH).to_path_buf(),
    })
}

/// Reads the password from stdin, refusing one longer than the protocol carries. The buffer
/// is sized up front (no copy left behind by a growing allocation) and wiped when dropped.
fn read_password() -> Result<Zeroizing<String>, String> {
    let cap = MAX_PASSWORD_LEN as u64 + 2; // room for "\r\n"
    let mut bytes = Zeroizing::new(Vec::with_capacity(cap as usize + 1));
    std::io::stdin()
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    if bytes.len() as u64 > cap {
        return Err(format!(
            "the password is longer than {MAX_PASSWORD_LEN} bytes"
        ));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| "the password is not UTF-8".to_string())?;
    // One exact allocation; stripping the newline only shortens it.
    Ok(Zeroizing::new(strip_newline(text.to_string())))
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
