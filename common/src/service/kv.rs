//! `key=value` log fields (logfmt): what admin and decision lines are written as, so a log
//! pipeline can split them without knowing Rust's Debug format. A value is bare when it is
//! plain (letters, digits and `-_.:@/*,+`), else quoted with `"` and `\` escaped; a structured
//! value (any `Serialize`) is flattened with dotted keys, lists joined by commas. Pure.

use serde::Serialize;
use serde_json::Value;

/// `text` as a field value: bare when plain, quoted otherwise (empty text is `""`).
pub fn value(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@/*,+>".contains(c));
    if plain {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `thing` as fields: an enum variant becomes `kind=variant` followed by its fields; a struct
/// its fields; anything else `value=...`.
pub fn fields(thing: &impl Serialize) -> String {
    let mut out = Vec::new();
    match serde_json::to_value(thing) {
        Ok(Value::String(variant)) => out.push(format!("kind={}", value(&variant))),
        Ok(Value::Object(map)) if map.len() == 1 && map.values().all(Value::is_object) => {
            for (variant, inner) in map {
                out.push(format!("kind={}", value(&variant)));
                flatten("", &inner, &mut out);
            }
        }
        Ok(other) => flatten("", &other, &mut out),
        Err(e) => out.push(format!("error={}", value(&e.to_string()))),
    }
    out.join(" ")
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (key, inner) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, inner, out);
            }
        }
        leaf => {
            let key = if prefix.is_empty() { "value" } else { prefix };
            out.push(format!("{key}={}", value(&scalar(leaf))));
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    enum Request {
        UserAdd { name: String, classes: Vec<String> },
        Status,
    }

    #[test]
    fn values_are_bare_when_plain_and_quoted_otherwise() {
        assert_eq!(value("alice"), "alice");
        assert_eq!(value("SSH:*->alice@web*"), "SSH:*->alice@web*");
        assert_eq!(value("bad name"), "\"bad name\"");
        assert_eq!(value("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(value(""), "\"\"");
    }

    #[test]
    fn enums_become_a_kind_and_their_fields() {
        let add = Request::UserAdd {
            name: "alice".into(),
            classes: vec!["ops".into(), "dev".into()],
        };
        assert_eq!(fields(&add), "kind=UserAdd classes=ops,dev name=alice");
        assert_eq!(fields(&Request::Status), "kind=Status");
    }
}
