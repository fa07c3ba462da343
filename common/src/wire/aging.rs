//! The encoding of a password's age after a correct password ([`PasswordAging`]), the same
//! in a server's `AuthOkAging` answer and in the agent's local `AuthOkAging` answer
//! (docs/PROTOCOL.md, "Response body"; docs/AGENT.md). Pure; never panics.
//!
//! ```text
//! aging = 0x01                  expired
//!       | 0x02 days:u16         expires in `days` whole days, rounded up
//! ```

use crate::types::PasswordAging;
use crate::wire::reader::{DecodeError, Reader};

const EXPIRED: u8 = 1;
const EXPIRES_IN: u8 = 2;

/// Appends the encoding of `aging`.
pub fn put_aging(out: &mut Vec<u8>, aging: PasswordAging) {
    match aging {
        PasswordAging::Expired => out.push(EXPIRED),
        PasswordAging::ExpiresIn { days } => {
            out.push(EXPIRES_IN);
            out.extend_from_slice(&days.to_be_bytes());
        }
    }
}

/// Reads one aging; an unknown state byte is an error.
pub fn read_aging(r: &mut Reader<'_>) -> Result<PasswordAging, DecodeError> {
    match r.u8()? {
        EXPIRED => Ok(PasswordAging::Expired),
        EXPIRES_IN => Ok(PasswordAging::ExpiresIn { days: r.u16()? }),
        code => Err(DecodeError::UnknownCode {
            field: "password aging",
            code: code.into(),
        }),
    }
}
