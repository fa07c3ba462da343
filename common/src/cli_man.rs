//! The man page of a binary with subcommands as one page: clap_mangen's sections (name,
//! synopsis, description, global options, the after-help text, version), with its list of
//! subcommands replaced by a COMMANDS section that gives every command in full
//! (`gatehouse-admin audit`, `gatehouse-admin user passwd`) with its arguments, options and
//! their values. clap_mangen's own list points at one page per subcommand
//! (`gatehouse-admin-audit(8)`), which no package installs; one page keeps `man
//! gatehouse-admin` complete and searchable. Part of [`super`]; writes to the writer it is
//! given.

use clap::{Arg, Command};
use std::io::Write;

/// Writes the page for the built command `cmd` in `section` ("1" or "8") to `out`.
pub(super) fn render(cmd: &Command, section: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone()).section(section);
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut part = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut buf = Vec::new();
        render(&mut buf).map(|()| parts.push(buf))
    };
    part(&|w| man.render_title(w))?;
    part(&|w| man.render_name_section(w))?;
    part(&|w| man.render_synopsis_section(w))?;
    part(&|w| man.render_description_section(w))?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        part(&|w| man.render_options_section(w))?;
    }
    if cmd.has_subcommands() {
        part(&|w| {
            let mut text = String::from(".SH COMMANDS\n");
            commands(cmd, cmd.get_name(), &mut text);
            w.write_all(text.as_bytes())
        })?;
    }
    if cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some() {
        part(&|w| man.render_extra_section(w))?;
    }
    if cmd.get_version().is_some() {
        part(&|w| man.render_version_section(w))?;
    }
    // Every part but ours starts with roff's preamble (what the title part holds before
    // `.TH`): keep the first only.
    let preamble = parts
        .first()
        .and_then(|title| title.windows(4).position(|w| w == b".TH "))
        .map_or(Vec::new(), |end| parts[0][..end].to_vec());
    for (i, part) in parts.iter().enumerate() {
        let body = match part.strip_prefix(preamble.as_slice()) {
            Some(rest) if i > 0 => rest,
            _ => part,
        };
        out.write_all(body)?;
    }
    Ok(())
}

/// Appends each leaf command under `cmd` (whose full name is `path`), in definition order.
fn commands(cmd: &Command, path: &str, out: &mut String) {
    // clap's own `help` subcommand is `--help` again.
    let subs = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help");
    for sub in subs {
        let path = format!("{path} {}", sub.get_name());
        if sub.has_subcommands() {
            commands(sub, &path, out);
            continue;
        }
        let args: Vec<&Arg> = sub.get_arguments().filter(|a| shown(a)).collect();
        let mut synopsis = format!("\\fB{}\\fR", escape(&path));
        for arg in args.iter().filter(|a| a.is_positional()) {
            let name = arg.get_value_names().and_then(|v| v.first().cloned());
            let name = name.map_or(arg.get_id().to_string(), |n| n.to_string());
            synopsis.push_str(&format!(" \\fI{}\\fR", escape(&name)));
        }
        if args.iter().any(|a| !a.is_positional()) {
            synopsis.push_str(" [\\fIOPTIONS\\fR]");
        }
        out.push_str(&format!(".TP\n{synopsis}\n"));
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            out.push_str(&format!("{}\n", escape(&about.to_string())));
        }
        let options: Vec<&&Arg> = args.iter().filter(|a| !a.is_positional()).collect();
        if !options.is_empty() {
            out.push_str(".RS\n");
            for arg in options {
                option(arg, out);
            }
            out.push_str(".RE\n");
        }
    }
}

/// Whether an argument of a leaf is listed there: not hidden, not `--help`, and not a
/// global one (those are in OPTIONS already).
fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set() && !arg.is_global_set() && arg.get_id() != "help"
}

/// One option: its name, value, default, help and possible values.
fn option(arg: &Arg, out: &mut String) {
    let Some(long) = arg.get_long() else {
        return;
    };
    let mut header = format!("\\fB\\-\\-{}\\fR", escape(long));
    let takes_values = arg.get_num_args().is_some_and(|n| n.takes_values());
    if takes_values {
        let name = arg.get_value_names().and_then(|v| v.first().cloned());
        let name = name.map_or(arg.get_id().to_string(), |n| n.to_string());
        header.push_str(&format!(" \\fI{}\\fR", escape(&name)));
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() {
            header.push_str(&format!(" [default: {}]", escape(&defaults.join(","))));
        }
    }
    out.push_str(&format!(".TP\n{header}\n"));
    if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
        out.push_str(&format!("{}\n", escape(&help.to_string())));
    }
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    if takes_values && !values.is_empty() {
        out.push_str(&format!(".br\nOne of: {}.\n", escape(&values.join(", "))));
    }
}

/// `text` as roff text: backslashes and dashes escaped, and a line that would start with
/// a control character (`.` or `'`) guarded.
fn escape(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    #[test]
    fn every_leaf_command_is_named_in_full_with_its_options() {
        let mut cmd = Command::new("gatehouse-demo")
            .version("1.0")
            .arg(
                Arg::new("socket")
                    .long("socket")
                    .global(true)
                    .value_name("PATH"),
            )
            .subcommand(
                Command::new("user").subcommand(
                    Command::new("passwd")
                        .about("Set the password")
                        .arg(Arg::new("name").value_name("NAME").required(true)),
                ),
            )
            .subcommand(
                Command::new("audit")
                    .about(".starts with a dot")
                    .arg(
                        Arg::new("outcome")
                            .long("outcome")
                            .value_name("O")
                            .value_parser(["allow", "deny"])
                            .help("Records with this outcome"),
                    )
                    .arg(Arg::new("follow").long("follow").action(ArgAction::SetTrue)),
            );
        cmd.build();
        let mut out = Vec::new();
        render(&cmd, "8", &mut out).unwrap();
        let man = String::from_utf8(out).unwrap();
        assert_eq!(man.matches(".ds Aq").count(), 2, "one preamble: {man}");
        assert!(man.contains(".TH gatehouse-demo 8"), "{man}");
        assert!(man.contains("\\-\\-socket"), "{man}");
        assert!(
            man.contains(
                ".TP\n\\fBgatehouse\\-demo user passwd\\fR \\fINAME\\fR\nSet the password"
            ),
            "{man}"
        );
        assert!(man.contains("\\fBgatehouse\\-demo audit\\fR [\\fIOPTIONS\\fR]\n\\&.starts"));
        assert!(man.contains(
            "\\fB\\-\\-outcome\\fR \\fIO\\fR\nRecords with this outcome\n.br\nOne of: allow, deny."
        ));
        assert!(man.contains(".TP\n\\fB\\-\\-follow\\fR\n"), "{man}");
        let commands = &man[man.find(".SH COMMANDS").unwrap()..];
        assert!(
            !commands.contains("socket"),
            "globals only in OPTIONS: {commands}"
        );
        assert!(
            !commands.contains(" help"),
            "no help subcommands: {commands}"
        );
        assert!(!man.contains("gatehouse\\-demo\\-audit(8)"), "{man}");
    }
}
