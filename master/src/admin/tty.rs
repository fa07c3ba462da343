//! Reading a new password for `gatehouse-admin user passwd`: on a terminal, asked twice with
//! echo off (the two must match); otherwise one line from standard input, for scripts. The
//! text is wiped from memory when dropped.
//!
//! Not pure: the terminal (termios on standard input) and standard error for the prompts.

use std::io::{self, BufRead, Write};
use zeroize::Zeroizing;

/// Bytes reserved for a password line (1 KiB): longer ones still work, but may leave a copy in
/// memory the allocator reuses.
const PASSWORD_LINE_CAPACITY: usize = 1024;

/// Why no password was read.
#[derive(Debug, thiserror::Error)]
pub enum PasswordInputError {
    #[error("cannot read the password: {0}")]
    Io(#[from] io::Error),
    #[error("no password on standard input")]
    Empty,
    #[error("the two passwords differ; nothing was changed")]
    Mismatch,
}

/// Whether standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// One line of standard input without its line end.
fn read_line() -> Result<Zeroizing<String>, PasswordInputError> {
    let mut line = Zeroizing::new(String::with_capacity(PASSWORD_LINE_CAPACITY));
    io::stdin().lock().read_line(&mut line)?;
    let password = Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_string());
    if password.is_empty() {
        return Err(PasswordInputError::Empty);
    }
    Ok(password)
}

/// Reads one line with the terminal's echo off (restored afterwards, also on error).
fn read_hidden(prompt: &str) -> Result<Zeroizing<String>, PasswordInputError> {
    // Echo goes off before the prompt shows, so nothing typed after the prompt is echoed.
    // SAFETY: termios is plain data; tcgetattr fills it for descriptor 0.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to a live termios.
    if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
        return Err(io::Error::last_os_error().into());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: as above, with a termios derived from the saved one.
    if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) } != 0 {
        return Err(io::Error::last_os_error().into());
    }
    let mut stderr = io::stderr();
    let line = write!(stderr, "{prompt}")
        .and_then(|()| stderr.flush())
        .map_err(PasswordInputError::from)
        .and_then(|()| read_line());
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved) };
    line
}

/// The new password for `user`: asked twice on a terminal, else one line of standard input.
pub fn new_password(user: &str) -> Result<Zeroizing<String>, PasswordInputError> {
    if !stdin_is_terminal() {
        return read_line();
    }
    let first = read_hidden(&format!("New password for {user}: "))?;
    let second = read_hidden("Again: ")?;
    if *first != *second {
        return Err(PasswordInputError::Mismatch);
    }
    Ok(first)
}
