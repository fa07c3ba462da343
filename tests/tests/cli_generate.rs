//! Every binary's `--generate`: a man page (roff, the right section, every subcommand and
//! option named) and bash, zsh and fish completions that the shells accept, generated from
//! the same clap definition that parses the command line. The packages install these
//! (scripts/build-debs.sh).

use gatehouse_tests::process::bin_path;
use std::process::Command;

/// Each binary, its man section and words its page and completions must name.
const BINARIES: [(&str, &str, &[&str]); 5] = [
    (
        "gatehouse-admin",
        "8",
        &[
            "host",
            "replica",
            "--socket",
            "--json",
            "audit",
            "--follow",
            "--since",
            "--key-file",
            "passwd",
        ],
    ),
    (
        "gatehouse-agent",
        "8",
        &["authorize", "status", "lookup", "--socket"],
    ),
    (
        "gatehouse-master",
        "8",
        &["--config", "--check", "--promote"],
    ),
    ("gatehouse-replica", "8", &["--config", "--check"]),
    (
        "gatehouse-loadgen",
        "1",
        &["provision", "demo", "direct", "--generate"],
    ),
];

fn generate(binary: &str, kind: &str) -> String {
    let out = Command::new(bin_path(binary))
        .args(["--generate", kind])
        .output()
        .unwrap();
    assert!(out.status.success(), "{binary} --generate {kind}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_binary_generates_its_man_page_naming_its_commands_and_options() {
    for (binary, section, words) in BINARIES {
        let man = generate(binary, "man");
        assert!(
            man.contains(&format!(".TH {binary} {section}")),
            "{binary}: {man}"
        );
        for word in words {
            // roff escapes the dashes of options.
            let roff = word.replace('-', "\\-");
            assert!(man.contains(&roff), "{binary}: the man page lacks {word}");
        }
    }
}

#[test]
fn completions_name_the_subcommands_and_bash_accepts_them() {
    for (binary, _, words) in BINARIES {
        let bash = generate(binary, "complete-bash");
        let zsh = generate(binary, "complete-zsh");
        let fish = generate(binary, "complete-fish");
        assert!(zsh.starts_with(&format!("#compdef {binary}")), "{binary}");
        assert!(fish.contains(&format!("complete -c {binary}")), "{binary}");
        for word in words {
            assert!(
                bash.contains(word),
                "{binary}: bash completion lacks {word}"
            );
            assert!(zsh.contains(word), "{binary}: zsh completion lacks {word}");
        }
        assert!(bash.contains("set-classes") || binary != "gatehouse-admin");
        // bash -n parses without running: a syntax error in the script fails here.
        let mut check = Command::new("bash")
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("bash");
        std::io::Write::write_all(&mut check.stdin.take().unwrap(), bash.as_bytes()).unwrap();
        let checked = check.wait_with_output().unwrap();
        assert!(checked.status.success(), "{binary}: {checked:?}");
    }
}

#[test]
fn an_unknown_generate_kind_is_a_usage_error_listing_the_kinds() {
    let out = Command::new(bin_path("gatehouse-admin"))
        .args(["--generate", "manpage"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[possible values: man, complete-bash, complete-zsh, complete-fish]"),
        "{stderr}"
    );
}
