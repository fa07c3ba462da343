//! Log output for a daemon: env_logger behind the `log` facade, in one of two styles chosen
//! at start.
//!
//! - **Journal**: stderr is the journal's stream (`JOURNAL_STREAM` names stderr's device and
//!   inode, as systemd sets it). Each line starts with its syslog priority, `<3>` for errors
//!   down to `<7>` for debug, which journald stores as the entry's priority and strips; no
//!   timestamp of our own (the journal has one).
//! - **Plain**: anything else (a terminal, a test's log file, SMF's service log): env_logger's
//!   usual `[time LEVEL target] message` lines.
//!
//! The level: `RUST_LOG`, when set, is the filter and wins (for debugging by hand); otherwise
//! the config's `log_level` (default info), which a reload may change ([`set_level`]).

use crate::config::ConfigError;
use log::LevelFilter;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

/// The level when neither `RUST_LOG` nor the config names one.
pub const DEFAULT_LEVEL: LevelFilter = LevelFilter::Info;

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `<N>target: message`, for journald.
    Journal,
    /// env_logger's default, with timestamps.
    Plain,
}

/// What [`init`] chose, for [`set_level`].
#[derive(Debug, Clone, Copy)]
struct Chosen {
    /// `RUST_LOG` was set: the config's level is not applied.
    rust_log: bool,
}

static CHOSEN: OnceLock<Chosen> = OnceLock::new();

/// The syslog priority of a level: err(3), warning(4), info(6), debug(7).
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// The style for this process: journal when `journal_stream` ("DEV:INODE") names stderr.
pub fn style_for(journal_stream: Option<&str>, stderr_id: Option<(u64, u64)>) -> Style {
    let named = journal_stream.and_then(|s| {
        let (dev, ino) = s.split_once(':')?;
        Some((
            dev.trim().parse::<u64>().ok()?,
            ino.trim().parse::<u64>().ok()?,
        ))
    });
    match (named, stderr_id) {
        (Some(named), Some(actual)) if named == actual => Style::Journal,
        _ => Style::Plain,
    }
}

/// Device and inode of standard error, as `JOURNAL_STREAM` writes them.
fn stderr_id() -> Option<(u64, u64)> {
    // SAFETY: fstat on fd 2 writes into the stat buffer we own; an invalid fd is an error.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some((st.st_dev as u64, st.st_ino as u64))
}

/// Installs the logger; the style comes from `JOURNAL_STREAM`. Call once, first thing in
/// `main`; a second call keeps the first logger.
pub fn init() -> Style {
    let journal = std::env::var("JOURNAL_STREAM").ok();
    let style = style_for(journal.as_deref(), stderr_id());
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(rust_log.as_deref().unwrap_or("trace"));
    builder.target(env_logger::Target::Stderr);
    if style == Style::Journal {
        builder.format(|out, record| {
            writeln!(
                out,
                "<{}>{}: {}",
                priority(record.level()),
                record.target(),
                record.args()
            )
        });
    }
    let logger = builder.build();
    let level = if rust_log.is_some() {
        logger.filter()
    } else {
        DEFAULT_LEVEL
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
        let _ = CHOSEN.set(Chosen {
            rust_log: rust_log.is_some(),
        });
    }
    style
}

/// Applies the config's `log_level` (`None`: the default). With `RUST_LOG` set nothing
/// changes and this returns false.
pub fn set_level(level: Option<LevelFilter>) -> bool {
    match CHOSEN.get() {
        Some(chosen) if !chosen.rust_log => {
            log::set_max_level(level.unwrap_or(DEFAULT_LEVEL));
            true
        }
        _ => false,
    }
}

/// A config's `log_level` text as a level; the error names `file` and the field.
pub fn parse_level(file: &Path, text: &str) -> Result<LevelFilter, ConfigError> {
    LevelFilter::from_str(text.trim()).map_err(|_| {
        ConfigError::invalid(
            file,
            "log_level",
            format!("expected off, error, warn, info, debug or trace, got {text:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog() {
        let got: Vec<u8> = [
            log::Level::Error,
            log::Level::Warn,
            log::Level::Info,
            log::Level::Debug,
            log::Level::Trace,
        ]
        .into_iter()
        .map(priority)
        .collect();
        assert_eq!(got, [3, 4, 6, 7, 7]);
    }

    #[test]
    fn the_journal_style_needs_journal_stream_to_name_stderr() {
        assert_eq!(style_for(Some("8:1234"), Some((8, 1234))), Style::Journal);
        // Inherited by a process whose stderr goes elsewhere: plain.
        assert_eq!(style_for(Some("8:1234"), Some((8, 99))), Style::Plain);
        assert_eq!(style_for(None, Some((8, 1234))), Style::Plain);
        assert_eq!(style_for(Some("garbage"), Some((8, 1234))), Style::Plain);
    }

    #[test]
    fn log_levels_parse_and_a_bad_one_names_the_field() {
        let file = Path::new("r.ron");
        assert_eq!(parse_level(file, "debug").unwrap(), LevelFilter::Debug);
        assert_eq!(parse_level(file, "WARN").unwrap(), LevelFilter::Warn);
        let err = parse_level(file, "loud").unwrap_err().to_string();
        assert!(err.contains("log_level") && err.contains("loud"), "{err}");
    }
}
