//! Vocabulary shared by the wire protocol and the policy engine: access methods, deny and
//! authentication-failure reasons, goodbye reasons and wire error codes. Pure data.
//!
//! Every enum here has a stable one-byte (or two-byte) wire code; `from_code` never panics and
//! returns `None` for a code this version does not know, so the decoder can give a typed error.

use serde::{Deserialize, Serialize};

/// How a user is getting in. Routes name these as LOGIN, SSH, SU, SUDO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    /// Console or terminal login.
    Login,
    /// Remote login through sshd.
    Ssh,
    /// `su` to another account on the same host.
    Su,
    /// `sudo` to another account on the same host.
    Sudo,
}

impl Method {
    /// All methods, in wire-code order.
    pub const ALL: [Method; 4] = [Method::Login, Method::Ssh, Method::Su, Method::Sudo];

    /// The stable wire code.
    pub fn code(self) -> u8 {
        match self {
            Method::Login => 1,
            Method::Ssh => 2,
            Method::Su => 3,
            Method::Sudo => 4,
        }
    }

    /// Inverse of [`Method::code`]; `None` for an unknown code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The name used in access routes and on the command line (upper case).
    pub fn name(self) -> &'static str {
        match self {
            Method::Login => "LOGIN",
            Method::Ssh => "SSH",
            Method::Su => "SU",
            Method::Sudo => "SUDO",
        }
    }

    /// Parses a route or command-line name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// Why an authorize request was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DenyReason {
    /// The acting user is not in the database.
    UnknownUser,
    /// The target host is not a registered host.
    UnknownHost,
    /// The acting user is locked.
    Locked,
    /// No access route of the user or its classes matches.
    NoMatchingRoute,
    /// A route matches except for its weekday/time window.
    OutsideTimeWindow,
    /// A route matches except that it has expired.
    Expired,
}

impl DenyReason {
    /// All reasons, in wire-code order.
    pub const ALL: [DenyReason; 6] = [
        DenyReason::UnknownUser,
        DenyReason::UnknownHost,
        DenyReason::Locked,
        DenyReason::NoMatchingRoute,
        DenyReason::OutsideTimeWindow,
        DenyReason::Expired,
    ];

    /// The stable wire code.
    pub fn code(self) -> u8 {
        match self {
            DenyReason::UnknownUser => 1,
            DenyReason::UnknownHost => 2,
            DenyReason::Locked => 3,
            DenyReason::NoMatchingRoute => 4,
            DenyReason::OutsideTimeWindow => 5,
            DenyReason::Expired => 6,
        }
    }

    /// Inverse of [`DenyReason::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Short snake_case name for logs, fixtures and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            DenyReason::UnknownUser => "unknown_user",
            DenyReason::UnknownHost => "unknown_host",
            DenyReason::Locked => "locked",
            DenyReason::NoMatchingRoute => "no_matching_route",
            DenyReason::OutsideTimeWindow => "outside_time_window",
            DenyReason::Expired => "expired",
        }
    }
}

/// Why an authenticate request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthFailure {
    /// The user is not in the database.
    UnknownUser,
    /// The host asking is not a registered host.
    UnknownHost,
    /// The user is locked.
    Locked,
    /// The password does not match the stored hash (or the user has no usable hash).
    BadPassword,
    /// The user is locked out after too many failed passwords (the master's central lockout),
    /// until the lockout's time; the password was not looked at.
    LockedOut,
}

impl AuthFailure {
    /// All reasons, in wire-code order.
    pub const ALL: [AuthFailure; 5] = [
        AuthFailure::UnknownUser,
        AuthFailure::UnknownHost,
        AuthFailure::Locked,
        AuthFailure::BadPassword,
        AuthFailure::LockedOut,
    ];

    /// The stable code: agents never see it (they get one `AuthFail`), but a replica's
    /// password-failure reports to the master carry it (docs/PROTOCOL.md, "Reports").
    pub fn code(self) -> u8 {
        match self {
            AuthFailure::UnknownUser => 1,
            AuthFailure::UnknownHost => 2,
            AuthFailure::Locked => 3,
            AuthFailure::BadPassword => 4,
            AuthFailure::LockedOut => 5,
        }
    }

    /// Inverse of [`AuthFailure::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Short snake_case name for logs, fixtures and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            AuthFailure::UnknownUser => "unknown_user",
            AuthFailure::UnknownHost => "unknown_host",
            AuthFailure::Locked => "locked",
            AuthFailure::BadPassword => "bad_password",
            AuthFailure::LockedOut => "locked_out",
        }
    }
}

/// The age of a password that was just verified (shadow(5)'s expiry and warning period), as
/// a server tells the agent after a *correct* password only (docs/SECURITY.md, "Password
/// age"): a wrong password gets the one `AuthFail` whatever the account's age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PasswordAging {
    /// The password has expired: the user must change it before the login goes on (PAM
    /// `account` answers PAM_NEW_AUTHTOK_REQD).
    Expired,
    /// The password expires in `days` days (rounded up: 1 means within the next 24 hours).
    ExpiresIn { days: u16 },
}

impl PasswordAging {
    /// What the user is told, for PAM's messages and the agent's CLI.
    pub fn message(self) -> String {
        match self {
            PasswordAging::Expired => {
                "Your password has expired; you must change it now.".to_string()
            }
            PasswordAging::ExpiresIn { days: 1 } => "Your password expires within a day.".into(),
            PasswordAging::ExpiresIn { days } => format!("Your password expires in {days} days."),
        }
    }
}

/// Why the server is ending a healthy connection (sent sealed, then the server closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoodbyeReason {
    /// No complete request arrived within the idle timeout.
    Idle,
    /// The connection reached its age limit: re-probe and reconnect, so load rebalances.
    Reconnect,
    /// The server is shutting down: go elsewhere.
    ShuttingDown,
}

impl GoodbyeReason {
    /// All reasons, in wire-code order.
    pub const ALL: [GoodbyeReason; 3] = [
        GoodbyeReason::Idle,
        GoodbyeReason::Reconnect,
        GoodbyeReason::ShuttingDown,
    ];

    /// The stable wire code.
    pub fn code(self) -> u8 {
        match self {
            GoodbyeReason::Idle => 1,
            GoodbyeReason::Reconnect => 2,
            GoodbyeReason::ShuttingDown => 3,
        }
    }

    /// Inverse of [`GoodbyeReason::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// Stable wire error codes. Sent in an `Error` message, plaintext before the handshake has
/// finished and sealed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No protocol version in common; the error lists the server's versions.
    UnsupportedVersion,
    /// The host named in the hello is not registered.
    UnknownHost,
    /// The peer failed to prove knowledge of the node key, or a sealed frame failed to open.
    AuthFailed,
    /// A frame or message could not be decoded.
    Malformed,
    /// A frame's length prefix exceeds the frame cap.
    FrameTooLarge,
    /// The server is at its connection cap: close and go elsewhere.
    TooManyConnections,
    /// The server is overloaded: close and go elsewhere (carries the estimate).
    Busy,
    /// The handshake did not finish in time, or a frame trickled in too slowly.
    Timeout,
    /// The server is shutting down: go elsewhere.
    ShuttingDown,
    /// The server failed internally; the request may be retried elsewhere.
    Internal,
    /// The message was valid but not allowed in this state (for example a second hello).
    UnexpectedMessage,
    /// No cipher suite in common: the hello offered none the server knows and may choose.
    UnsupportedCipher,
}

impl ErrorCode {
    /// All codes, in wire-code order.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::UnsupportedVersion,
        ErrorCode::UnknownHost,
        ErrorCode::AuthFailed,
        ErrorCode::Malformed,
        ErrorCode::FrameTooLarge,
        ErrorCode::TooManyConnections,
        ErrorCode::Busy,
        ErrorCode::Timeout,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
        ErrorCode::UnexpectedMessage,
        ErrorCode::UnsupportedCipher,
    ];

    /// The stable wire code (a u16 on the wire).
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::UnsupportedVersion => 1,
            ErrorCode::UnknownHost => 2,
            ErrorCode::AuthFailed => 3,
            ErrorCode::Malformed => 4,
            ErrorCode::FrameTooLarge => 5,
            ErrorCode::TooManyConnections => 6,
            ErrorCode::Busy => 7,
            ErrorCode::Timeout => 8,
            ErrorCode::ShuttingDown => 9,
            ErrorCode::Internal => 10,
            ErrorCode::UnexpectedMessage => 11,
            ErrorCode::UnsupportedCipher => 12,
        }
    }

    /// Inverse of [`ErrorCode::code`].
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// True when the agent should close this connection and try another server.
    pub fn means_go_elsewhere(self) -> bool {
        matches!(
            self,
            ErrorCode::TooManyConnections | ErrorCode::Busy | ErrorCode::ShuttingDown
        )
    }
}
