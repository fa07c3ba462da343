//! Reading the master's audit store in the tests: through the real `gatehouse-admin audit`
//! (text and JSON lines) and through the admin library for large counts, with bounded waits
//! for records still on their way.

use crate::admin::{ask, run_admin};
use crate::process::MasterFiles;
use crate::WAIT_LIMIT;
use gatehouse_common::audit::record::decode_one;
use gatehouse_common::audit::AuditRecord;
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse};
use gatehouse_master::audit::admin::from_hex;
use gatehouse_master::audit::store::MAX_QUERY_RECORDS;
use gatehouse_master::audit::AuditQuery;
use serde_json::Value;
use std::time::{Duration, Instant};

/// `gatehouse-admin audit --json ARGS` as parsed JSON objects.
pub fn audit_json(files: &MasterFiles, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--json", "--limit", "10000"];
    all.extend_from_slice(args);
    let run = run_admin(files, &all);
    assert_eq!(run.code, 0, "audit {args:?}: {}", run.stderr);
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every record `query` selects (paged through the admin library), with its server.
pub fn all_records(files: &MasterFiles, query: &AuditQuery) -> Vec<(String, AuditRecord)> {
    let mut out = Vec::new();
    let mut query = AuditQuery {
        after_id: Some(0),
        limit: MAX_QUERY_RECORDS,
        ..query.clone()
    };
    loop {
        let AdminResponse::AuditRecords(entries) = ask(
            files,
            &AdminRequest::Audit {
                query: query.clone(),
            },
        ) else {
            panic!("audit query refused");
        };
        let Some(last) = entries.last() else {
            return out;
        };
        query.after_id = Some(last.id);
        for e in entries {
            let bytes = from_hex(&e.record).expect("hex");
            out.push((e.server, decode_one(&bytes).expect("a record")));
        }
    }
}

/// Waits (bounded, polling the store) until `done` holds for what `query` selects.
pub fn wait_for_records(
    files: &MasterFiles,
    query: &AuditQuery,
    what: &str,
    done: impl Fn(&[(String, AuditRecord)]) -> bool,
) -> Vec<(String, AuditRecord)> {
    let start = Instant::now();
    loop {
        let records = all_records(files, query);
        if done(&records) {
            return records;
        }
        assert!(
            start.elapsed() < 2 * WAIT_LIMIT,
            "never saw {what}; {} records",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
