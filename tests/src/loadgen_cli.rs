//! Running the real `gatehouse-loadgen` binary from tests: bounded in time, both pipes
//! drained, and its JSON summary read back. Not pure (processes, files).

use crate::bin_path;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
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
