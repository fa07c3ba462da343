//! Loading RON files (configs and database files) into serde structs, with errors that name the
//! file, the field and what was expected. Does file I/O; everything else here is pure.

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

/// A file that could not be loaded: which file, where, which field, and what was wrong.
#[derive(Debug)]
pub struct ConfigError {
    /// The file being read.
    pub file: PathBuf,
    /// `line:column` when the parser knows it.
    pub position: Option<(usize, usize)>,
    /// The field path (for example `limits.max_connections`), when known.
    pub field: Option<String>,
    /// What was wrong or expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error found after parsing, by a cross-field check.
    pub fn invalid(file: &Path, field: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            position: None,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

/// Reads and parses a RON file. Unknown fields are rejected by the target types
/// (`#[serde(deny_unknown_fields)]`).
pub fn load_ron<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        position: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    parse_ron(path, &text)
}

/// Parses RON text that came from `path` (used in errors only).
pub fn parse_ron<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    // implicit_some: admins write `busy_wait_ms: 500`, not `busy_wait_ms: Some(500)`.
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let mut de = ron::Deserializer::from_str_with_options(text, options)
        .map_err(|e| spanned(path, e, None))?;
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let field = (field != ".").then_some(field);
        spanned(path, de.span_error(e.into_inner()), field)
    })?;
    de.end()
        .map_err(|e| spanned(path, de.span_error(e), None))?;
    Ok(value)
}

fn spanned(path: &Path, e: ron::error::SpannedError, field: Option<String>) -> ConfigError {
    ConfigError {
        file: path.to_path_buf(),
        position: Some((e.position.line, e.position.col)),
        field,
        message: e.code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields exist to be parsed
    struct Inner {
        port: u16,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields exist to be parsed
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[test]
    fn a_type_error_names_the_file_and_the_field() {
        let err = parse_ron::<Outer>(
            Path::new("conf/x.ron"),
            r#"(name: "a", inner: (port: "eighty"))"#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("conf/x.ron"), "{text}");
        assert!(text.contains("field `inner.port`"), "{text}");
        assert!(text.contains("u16") || text.contains("integer"), "{text}");
    }

    #[test]
    fn an_unknown_field_is_rejected_with_its_name() {
        let err = parse_ron::<Outer>(
            Path::new("c.ron"),
            r#"(name: "a", inner: (port: 1), colour: 3)"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn a_syntax_error_gives_the_position() {
        let err =
            parse_ron::<Outer>(Path::new("c.ron"), "(name: \"a\",\n inner: (port: 1)").unwrap_err();
        assert!(err.position.is_some(), "{err}");
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let err = load_ron::<Outer>(Path::new("/nonexistent/gatehouse.ron")).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}
