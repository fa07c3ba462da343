//! The daemon's signals, on a thread of their own: SIGHUP asks for a reload, SIGTERM and
//! SIGINT for a graceful stop. Each is logged as it arrives. The handler runs on this thread,
//! so a reload (reading and checking a file) never stalls an event loop; it hands the result
//! to the loops through their arc-swapped config and wakers.
//!
//! Registered before the daemon reports ready, so a SIGHUP sent by `systemctl reload`, by
//! logrotate or by a closed terminal never meets the default action (exit with status 129).

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io;

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGHUP: read the config again and apply what can change while running.
    Reload,
    /// SIGTERM or SIGINT (named): drain and exit.
    Stop(&'static str),
}

/// The request for a signal number; `None` for signals this module does not take.
pub fn request_for(signal: i32) -> Option<Request> {
    match signal {
        SIGHUP => Some(Request::Reload),
        SIGTERM => Some(Request::Stop("SIGTERM")),
        SIGINT => Some(Request::Stop("SIGINT")),
        _ => None,
    }
}

/// Takes SIGHUP, SIGTERM and SIGINT from now on and calls `handle` for each on a thread
/// named "signals".
pub fn spawn(mut handle: impl FnMut(Request) + Send + 'static) -> io::Result<()> {
    let mut signals = Signals::new([SIGHUP, SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                match request_for(signal) {
                    Some(Request::Reload) => log::info!("signal SIGHUP: reloading the config"),
                    Some(Request::Stop(name)) => log::info!("signal {name}: stopping"),
                    None => continue,
                }
                if let Some(request) = request_for(signal) {
                    handle(request);
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hup_reloads_and_term_or_int_stop() {
        assert_eq!(request_for(SIGHUP), Some(Request::Reload));
        assert_eq!(request_for(SIGTERM), Some(Request::Stop("SIGTERM")));
        assert_eq!(request_for(SIGINT), Some(Request::Stop("SIGINT")));
        assert_eq!(request_for(signal_hook::consts::SIGUSR1), None);
    }
}
