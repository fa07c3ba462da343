//! What every Gatehouse command line shares (feature `cli`; the PAM and NSS modules, which
//! have no command line, leave it off): the `--generate KIND` option that prints a man page
//! or a shell's completions from the binary's own clap definition, so what the packages
//! install can never disagree with what the binary parses, and the exit status of a clap
//! error.
//!
//! Why an option on the binary rather than a build script: the definition lives in each
//! crate's library next to the code it drives, and a build script cannot see it without a
//! second copy; the packaging script (`scripts/build-debs.sh`) runs each built binary once
//! (ripgrep does the same with `rg --generate`).
//!
//! Not pure: writes to the writer it is given. Called by each binary's `main`.

use clap::{Command, ValueEnum};
use std::io::Write;

#[path = "cli_man.rs"]
mod man;

/// The end of the master's and the replica's `--help`: signals, logging, exit codes.
pub const DAEMON_AFTER_HELP: &str = "\
Signals: SIGHUP reloads the config, SIGTERM or SIGINT drains and exits.
Logging: the config's log_level (default info); RUST_LOG=debug overrides it and shows every
accept and close. Under systemd, lines carry journald priorities.
Exit codes: 0 after a clean drain, 1 a runtime failure, 2 a bad command line or config.";

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page (roff), section 1 or 8 as the binary says.
    Man,
    /// Completions for bash (`/usr/share/bash-completion/completions/NAME`).
    CompleteBash,
    /// Completions for zsh (`/usr/share/zsh/vendor-completions/_NAME`).
    CompleteZsh,
    /// Completions for fish (`/usr/share/fish/vendor_completions.d/NAME.fish`).
    CompleteFish,
}

/// Writes `what` for the command `cmd` (its name is the binary's) to `out`.
pub fn generate(
    mut cmd: Command,
    section: ManSection,
    what: Generate,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    match what {
        Generate::Man => {
            cmd.build();
            man::render(&cmd, section.number(), out)
        }
        Generate::CompleteBash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, out);
            Ok(())
        }
        Generate::CompleteZsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, out);
            Ok(())
        }
        Generate::CompleteFish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, out);
            Ok(())
        }
    }
}

/// The manual section of a binary's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManSection {
    /// 1: user commands (`gatehouse-agent`'s CLI, `gatehouse-loadgen`).
    User,
    /// 8: system administration commands and daemons (`gatehouse-admin`, the servers).
    Admin,
}

impl ManSection {
    fn number(self) -> &'static str {
        match self {
            ManSection::User => "1",
            ManSection::Admin => "8",
        }
    }
}

/// Prints `what` for `cmd` to standard output and returns the exit status: 0, or 1 when
/// standard output could not be written.
pub fn print_generated(
    cmd: Command,
    section: ManSection,
    what: Generate,
) -> std::process::ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match generate(cmd, section, what, &mut out).and_then(|()| out.flush()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write the output: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Prints a clap parse error (or the help or version it carries) and returns its exit
/// status: 0 for `--help` and `--version`, else `usage_status` (each binary keeps the
/// status its docs name for a bad command line; 2 everywhere today, as clap's own).
pub fn exit_for(error: &clap::Error, usage_status: u8) -> std::process::ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        std::process::ExitCode::from(usage_status)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn demo() -> Command {
        Command::new("gatehouse-demo")
            .version("1.0")
            .about("a demo")
            .subcommand(Command::new("status").about("show it"))
            .arg(Arg::new("config").long("config").value_name("FILE"))
    }

    fn text(what: Generate, section: ManSection) -> String {
        let mut out = Vec::new();
        generate(demo(), section, what, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn man_pages_and_completions_name_the_binary_its_options_and_subcommands() {
        let man = text(Generate::Man, ManSection::Admin);
        assert!(man.starts_with(".ie \\n(.g .ds Aq"), "{man}");
        assert!(man.contains(".TH gatehouse-demo 8"), "{man}");
        assert!(man.contains("\\-\\-config"), "{man}");
        assert!(text(Generate::Man, ManSection::User).contains(".TH gatehouse-demo 1"));
        let bash = text(Generate::CompleteBash, ManSection::User);
        assert!(bash.contains("-o default gatehouse-demo"), "{bash}");
        assert!(
            bash.contains("status") && bash.contains("--config"),
            "{bash}"
        );
        let zsh = text(Generate::CompleteZsh, ManSection::User);
        assert!(zsh.starts_with("#compdef gatehouse-demo"), "{zsh}");
        let fish = text(Generate::CompleteFish, ManSection::User);
        assert!(fish.contains("complete -c gatehouse-demo"), "{fish}");
        assert!(fish.contains("-l config"), "{fish}");
    }
}
