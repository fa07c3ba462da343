//! Running the real `gatehouse-loadgen` binary from tests: bounded in time, both pipes
//! drained, and its JSON summary read back. Not pure (processes, files).

use crate::{bin_path, TestDir, WAIT_LIMIT};
use gatehouse_common::policy::Database;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs the load generator with `args`; kills it if it runs past `limit`.
pub fn loadgen(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(bin_path("gatehouse-loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse-loadgen");
    // Drain both pipes on threads so a chatty run cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    let Some(status) = crate::process::wait_child(&mut child, limit) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("gatehouse-loadgen {args:?} ran past {limit:?}");
    };
    Output {
        status,
        stdout: out.join().expect("stdout thread"),
        stderr: err.join().expect("stderr thread"),
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("summary written");
    serde_json::from_str(&text).expect("summary is JSON")
}

pub fn num(v: &Value, field: &str) -> f64 {
    v.pointer(field)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("summary lacks {field}: {v}"))
}

/// A fleet written by `gatehouse-loadgen provision` into a test directory: the database the
/// replicas load, the identities file the simulated agents use, and where a run's JSON
/// summary goes.
pub struct Provisioned {
    pub dir: TestDir,
    pub db: Database,
    /// The identities file, as a command-line argument.
    pub identities: String,
    /// Where a run writes its summary (`--json`).
    pub json: PathBuf,
}

impl Provisioned {
    /// Provisions `agents` simulated agents in a new test directory named after `name`.
    pub fn new(name: &str, agents: usize) -> Provisioned {
        let dir = TestDir::new(name);
        let out = dir.path().display().to_string();
        let agents = agents.to_string();
        let provisioned = loadgen(
            &["provision", "--agents", &agents, "--out", &out],
            WAIT_LIMIT,
        );
        assert!(
            provisioned.status.success(),
            "{}",
            text(&provisioned.stderr)
        );
        let db = Database::load(&dir.path().join("db.ron")).expect("provisioned db");
        let identities = dir.path().join("identities.ron").display().to_string();
        let json = dir.path().join("summary.json");
        Provisioned {
            dir,
            db,
            identities,
            json,
        }
    }

    /// Runs `gatehouse-loadgen run` against `servers` (comma-separated addresses) with this
    /// fleet's identities, writing its summary to [`Provisioned::json`], plus `extra`
    /// arguments.
    pub fn run(&self, servers: &str, extra: &[&str]) -> Output {
        let json = self.json_arg();
        let mut args = vec![
            "run",
            "--servers",
            servers,
            "--identities",
            &self.identities,
            "--json",
            &json,
        ];
        args.extend_from_slice(extra);
        loadgen(&args, WAIT_LIMIT)
    }

    /// The summary path, as a command-line argument.
    pub fn json_arg(&self) -> String {
        self.json.display().to_string()
    }
}
