//! The `gatehouse-agent` command line: parsing (pure, by hand), the one-line human result and
//! exit code for each answer (pure, in [`render`]), and the glue that reads the password from
//! stdin and asks the daemon (`local::client`) or starts it (`crate::daemon`). The binary's
//! `main` only calls [`main`].

mod render;

pub use render::{render, render_status, Rendered};

use super::client::{self, ClientError};
use super::LocalRequest;
use crate::config::{AgentConfig, DEFAULT_SOCKET_PATH};
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

pub const USAGE: &str = "usage:
  gatehouse-agent run --config FILE
      run the agent daemon (prints `listening on SOCKET` when ready)
  gatehouse-agent [--socket PATH | --config FILE] authorize METHOD FROM_HOST FROM_USER TO_USER TO_HOST
      METHOD is LOGIN, SSH, SU or SUDO
  gatehouse-agent [--socket PATH | --config FILE] authenticate USER HOST
      the password is read from stdin (one trailing newline is removed)
  gatehouse-agent [--socket PATH | --config FILE] status [--json]
      --json: the whole report as JSON, for monitoring
  gatehouse-agent [--socket PATH | --config FILE] lookup user|uid|group|gid|groups KEY
      an identity as NSS sees it (exit 1: not found)
  gatehouse-agent --version
The socket is --socket PATH, else the config's socket_path, else /run/gatehouse/agent.sock.
Exit codes: 0 allow / auth ok / status, 1 deny / auth failed, 2 error.
Daemon signals: SIGHUP reloads the config, SIGTERM or SIGINT stops it.
Logging (daemon): the config's log_level (default info); RUST_LOG=debug overrides it and logs
every request. Under systemd, lines carry journald priorities.";

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
    Run { config: PathBuf },
    Ask { socket: SocketChoice, ask: Ask },
    Help,
    Version,
}

/// Parses the arguments after the program name. Options may come before or after the
/// subcommand; `Err` holds what was wrong (the caller prints it with the usage).
pub fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut socket = None;
    let mut config = None;
    let mut json = false;
    let mut words = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--socket" => socket = Some(iter.next().ok_or("--socket needs a PATH")?.into()),
            "--config" => config = Some(iter.next().ok_or("--config needs a FILE")?.into()),
            "-h" | "--help" | "help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--json" => json = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag:?}")),
            word => words.push(word.to_string()),
        }
    }
    let Some((sub, rest)) = words.split_first() else {
        return Err("a subcommand is required".into());
    };
    let want = |n: usize| {
        if rest.len() == n {
            Ok(())
        } else {
            Err(format!("{sub} takes {n} arguments, got {}", rest.len()))
        }
    };
    let ask = match sub.as_str() {
        "run" => {
            want(0)?;
            if socket.is_some() {
                return Err("run takes the socket path from the config, not --socket".into());
            }
            let config = config.ok_or("run needs --config FILE")?;
            return Ok(Command::Run { config });
        }
        "authorize" => {
            want(5)?;
            let method = Method::from_name(&rest[0])
                .ok_or_else(|| format!("unknown method {:?} (LOGIN, SSH, SU, SUDO)", rest[0]))?;
            Ask::Authorize {
                method,
                from_host: rest[1].clone(),
                from_user: rest[2].clone(),
                to_user: rest[3].clone(),
                to_host: rest[4].clone(),
            }
        }
        "authenticate" => {
            want(2)?;
            Ask::Authenticate {
                user: rest[0].clone(),
                host: rest[1].clone(),
            }
        }
        "status" => {
            want(0)?;
            if json {
                Ask::StatusJson
            } else {
                Ask::Status
            }
        }
        "lookup" => {
            want(2)?;
            let key = rest[1].clone();
            let id = || {
                key.parse::<u32>()
                    .map_err(|_| format!("lookup {}: {key:?} is not a number", rest[0]))
            };
            Ask::Lookup(match rest[0].as_str() {
                "user" => Lookup::UserByName(key.clone()),
                "uid" => Lookup::UserByUid(id()?),
                "group" => Lookup::GroupByName(key.clone()),
                "gid" => Lookup::GroupByGid(id()?),
                "groups" => Lookup::GroupsOfUser(key.clone()),
                other => {
                    return Err(format!(
                        "lookup {other:?}: use user, uid, group, gid or groups"
                    ))
                }
            })
        }
        other => return Err(format!("unknown subcommand {other:?}")),
    };
    if json && ask != Ask::StatusJson {
        return Err("--json goes with status only".into());
    }
    let socket = match (socket, config) {
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
    let command = match parse_args(args) {
        Ok(command) => command,
        Err(why) => {
            eprintln!("gatehouse-agent: {why}\n{USAGE}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::from(EXIT_OK)
        }
        Command::Version => {
            println!(
                "{}",
                gatehouse_common::service::version_line("gatehouse-agent")
            );
            ExitCode::from(EXIT_OK)
        }
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
