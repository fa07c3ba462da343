//! Option/value pairs of one subcommand (as clap matched them) and typed lookups with range
//! checks. Pure.

use super::{ArgError, MAX_DURATION_S};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub(super) fn invalid(option: &str, value: &str, why: impl Into<String>) -> ArgError {
    ArgError::Invalid {
        option: option.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// Option/value pairs of one subcommand, in order.
pub(super) struct Options(Vec<(String, String)>);

impl Options {
    /// The options clap matched for one subcommand, as `(--name, value)`.
    pub(super) fn from_matches(matches: &clap::ArgMatches) -> Options {
        let pairs = matches
            .ids()
            .filter_map(|id| {
                // The ids include the argument group clap derives per struct: not a String.
                let value = matches.try_get_one::<String>(id.as_str()).ok()??;
                Some((
                    format!("--{}", id.as_str().replace('_', "-")),
                    value.clone(),
                ))
            })
            .collect();
        Options(pairs)
    }

    /// The last value given for `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
        &self,
        name: &str,
        min: T,
        max: T,
    ) -> Result<Option<T>, ArgError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let value: T = text
            .parse()
            .map_err(|_| invalid(name, text, "not a number"))?;
        // Written so NaN fails too.
        if !(value >= min && value <= max) {
            return Err(invalid(name, text, format!("must be {min}..={max}")));
        }
        Ok(Some(value))
    }

    pub(super) fn seconds(&self, name: &str, default: f64) -> Result<Duration, ArgError> {
        let secs = self.number(name, 0.001, MAX_DURATION_S)?.unwrap_or(default);
        Ok(Duration::from_secs_f64(secs))
    }

    /// A comma-separated list of at most `max` whole seconds, each above the one before and
    /// above 0 (empty when the option is absent).
    pub(super) fn increasing_seconds(&self, name: &str, max: usize) -> Result<Vec<u64>, ArgError> {
        let Some(text) = self.get(name) else {
            return Ok(Vec::new());
        };
        let mut list: Vec<u64> = Vec::new();
        for part in text.split(',') {
            let value: u64 = part
                .trim()
                .parse()
                .map_err(|_| invalid(name, text, "expected whole seconds, e.g. 10,30"))?;
            if value == 0
                || list.last().is_some_and(|&last| value <= last)
                || value as f64 > MAX_DURATION_S
            {
                return Err(invalid(
                    name,
                    text,
                    "each must be above 0 and the one before",
                ));
            }
            list.push(value);
        }
        if list.len() > max {
            return Err(invalid(name, text, format!("at most {max} splits")));
        }
        Ok(list)
    }

    pub(super) fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }

    pub(super) fn addr(&self, name: &str, text: &str) -> Result<SocketAddr, ArgError> {
        text.trim()
            .parse()
            .map_err(|_| invalid(name, text, "expected IP:PORT, for example 127.0.0.1:7701"))
    }
}
