//! The syslog form parsed back by a strict reader of RFC 5424's ABNF (section 6): every
//! production checked (PRI range, VERSION, the RFC 3339 TIMESTAMP, PRINTUSASCII header fields
//! within their lengths, SD-NAMEs, escaped PARAM-VALUEs, the BOM before MSG), and the values
//! recovered equal to the record's fields.

use super::*;
use crate::audit::record::{AuditEvent, Verdict};
use crate::types::{AuthFailure, Method};

/// A parsed RFC 5424 message.
#[derive(Debug)]
struct Parsed {
    pri: u16,
    timestamp: String,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    sd_id: String,
    params: Vec<(String, String)>,
    msg: String,
}

fn printusascii(s: &str, max: usize, what: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(format!("{what} {s:?} is not 1*{max}PRINTUSASCII"));
    }
    Ok(())
}

fn sd_name(s: &str) -> Result<(), String> {
    printusascii(s, 32, "SD-NAME")?;
    if s.contains(['=', ' ', ']', '"']) {
        return Err(format!("SD-NAME {s:?} has a forbidden character"));
    }
    Ok(())
}

/// FULL-DATE "T" FULL-TIME with TIME-OFFSET "Z" and a TIME-SECFRAC of 1-6 digits.
fn rfc3339(s: &str) -> Result<(), String> {
    let bad = || format!("TIMESTAMP {s:?}");
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || !digits(d[0], 4) || !digits(d[1], 2) || !digits(d[2], 2) {
        return Err(bad());
    }
    let time = time.strip_suffix('Z').ok_or_else(bad)?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "1"));
    let t: Vec<&str> = hms.split(':').collect();
    if t.len() != 3 || !t.iter().all(|p| digits(p, 2)) || !(1..=6).contains(&frac.len()) {
        return Err(bad());
    }
    Ok(())
}

fn parse(message: &str) -> Result<Parsed, String> {
    let rest = message.strip_prefix('<').ok_or("no PRI")?;
    let (prival, rest) = rest.split_once('>').ok_or("PRI not closed")?;
    if prival.is_empty() || prival.len() > 3 || !prival.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("PRIVAL {prival:?}"));
    }
    let pri: u16 = prival.parse().map_err(|_| "PRIVAL")?;
    if pri > 191 {
        return Err(format!("PRIVAL {pri} above 191"));
    }
    let rest = rest.strip_prefix("1 ").ok_or("VERSION is not 1")?;
    let mut header = rest.splitn(6, ' ');
    let mut next = |what: &str| header.next().ok_or(format!("no {what}"));
    let timestamp = next("TIMESTAMP")?.to_string();
    rfc3339(&timestamp)?;
    let hostname = next("HOSTNAME")?.to_string();
    printusascii(&hostname, 255, "HOSTNAME")?;
    let app_name = next("APP-NAME")?.to_string();
    printusascii(&app_name, 48, "APP-NAME")?;
    let procid = next("PROCID")?.to_string();
    printusascii(&procid, 128, "PROCID")?;
    let msgid = next("MSGID")?.to_string();
    printusascii(&msgid, 32, "MSGID")?;
    let rest = next("STRUCTURED-DATA")?;
    // One SD-ELEMENT: "[" SD-ID *(SP SD-PARAM) "]".
    let mut chars = rest.strip_prefix('[').ok_or("no SD-ELEMENT")?.chars();
    let sd_id: String = chars.by_ref().take_while(|c| *c != ' ').collect();
    sd_name(&sd_id)?;
    let mut params = Vec::new();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        sd_name(&name)?;
        if chars.next() != Some('"') {
            return Err(format!("PARAM-VALUE of {name} not quoted"));
        }
        let mut value = String::new();
        loop {
            match chars.next().ok_or("PARAM-VALUE not closed")? {
                '\\' => {
                    let escaped = chars.next().ok_or("dangling escape")?;
                    if !matches!(escaped, '"' | '\\' | ']') {
                        // RFC 5424 6.3.3: a backslash before anything else is kept as is.
                        value.push('\\');
                    }
                    value.push(escaped);
                }
                '"' => break,
                ']' => return Err(format!("unescaped ] in {name}")),
                c => value.push(c),
            }
        }
        params.push((name, value));
        match chars.next() {
            Some(' ') => continue,
            Some(']') => break,
            other => return Err(format!("after a PARAM: {other:?}")),
        }
    }
    let after: String = chars.collect();
    let msg = after
        .strip_prefix(" \u{feff}")
        .ok_or("MSG is not SP BOM UTF-8")?
        .to_string();
    Ok(Parsed {
        pri,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        sd_id,
        params,
        msg,
    })
}

fn origin() -> Origin<'static> {
    Origin {
        id: 41,
        server: "r1",
        seq: 9,
    }
}

#[test]
fn an_authorize_parses_back_with_every_field() {
    let record = AuditRecord {
        at_unix_ms: 1_795_435_200_123,
        agent: "web1".into(),
        address: Some("10.0.0.7:40112".parse().unwrap()),
        event: AuditEvent::Authorize {
            method: Method::Ssh,
            from_user: "alice".into(),
            from_host: "10.0.0.9".into(),
            to_user: "alice".into(),
            to_host: "web1".into(),
            // Every character PARAM-VALUE must escape.
            verdict: Verdict::Allow {
                route: r#"SSH:*->alice@web* [class "ops\"]"#.into(),
            },
        },
    };
    let text = message(&record, origin(), SyslogFormat::default());
    let parsed = parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(parsed.pri, 10 * 8 + 6, "authpriv.info");
    assert_eq!(parsed.timestamp, "2026-11-23T12:00:00.123Z");
    assert_eq!(
        (parsed.hostname.as_str(), parsed.app_name.as_str()),
        ("r1", "gatehouse")
    );
    assert_eq!(
        (parsed.procid.as_str(), parsed.msgid.as_str()),
        ("-", "authorize")
    );
    assert_eq!(parsed.sd_id, "audit@32473");
    let want: Vec<(String, String)> = fields(&record, Some(origin()))
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(parsed.params, want);
    assert_eq!(parsed.msg, text_line(&record, Some(origin())));
}

#[test]
fn severity_and_facility_follow_the_outcome_and_the_config() {
    let failure = AuditRecord {
        at_unix_ms: 0,
        agent: "web1".into(),
        address: None,
        event: AuditEvent::Authenticate {
            user: "bob".into(),
            host: "web1".into(),
            outcome: Err(AuthFailure::BadPassword),
        },
    };
    let local0 = SyslogFormat {
        facility: 16,
        enterprise_number: 99999,
    };
    let parsed = parse(&message(&failure, origin(), local0)).unwrap();
    assert_eq!(parsed.pri, 16 * 8 + 5, "local0.notice");
    assert_eq!(parsed.sd_id, "audit@99999");
    let refused = AuditRecord {
        event: AuditEvent::HostRefused {
            code: crate::types::ErrorCode::AuthFailed,
        },
        ..failure
    };
    let parsed = parse(&message(&refused, origin(), SyslogFormat::default())).unwrap();
    assert_eq!(parsed.pri, 10 * 8 + 4, "authpriv.warning");
    assert_eq!(parsed.msgid, "host_refused");
}

#[test]
fn a_server_name_that_is_not_printable_ascii_cannot_break_the_header() {
    let record = AuditRecord {
        at_unix_ms: 0,
        agent: String::new(),
        address: None,
        event: AuditEvent::Suppressed { count: 3 },
    };
    let odd = Origin {
        server: "r 1\u{e9}",
        ..origin()
    };
    let parsed = parse(&message(&record, odd, SyslogFormat::default())).unwrap();
    assert_eq!(parsed.hostname, "r_1_");
}
