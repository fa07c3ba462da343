//! The two counted lists in handshake messages: protocol versions (u16 each) and cipher
//! suites (u8 each). Pure; called by the message codec.

use super::super::*;

/// A u8 count (at most [`MAX_VERSIONS`]) then that many u16 versions.
pub(super) fn put_versions(out: &mut Vec<u8>, versions: &[u16]) -> Result<(), EncodeError> {
    let too_many = EncodeError::TooMany {
        field: "versions",
        count: versions.len(),
        max: MAX_VERSIONS,
    };
    if versions.len() > MAX_VERSIONS {
        return Err(too_many);
    }
    out.push(u8::try_from(versions.len()).map_err(|_| too_many)?);
    for v in versions {
        out.extend_from_slice(&v.to_be_bytes());
    }
    Ok(())
}

pub(super) fn read_versions(r: &mut Reader<'_>) -> Result<Vec<u16>, DecodeError> {
    let count = usize::from(r.u8()?);
    if count > MAX_VERSIONS {
        return Err(DecodeError::Invalid {
            field: "versions",
            why: "more than 16",
        });
    }
    (0..count).map(|_| r.u16()).collect()
}

/// A u8 count (1..=[`MAX_CIPHERS`]) then that many u8 cipher-suite codes.
pub(super) fn put_ciphers(out: &mut Vec<u8>, ciphers: &[CipherSuite]) -> Result<(), EncodeError> {
    if ciphers.is_empty() {
        return Err(EncodeError::Empty { field: "ciphers" });
    }
    let too_many = EncodeError::TooMany {
        field: "ciphers",
        count: ciphers.len(),
        max: MAX_CIPHERS,
    };
    if ciphers.len() > MAX_CIPHERS {
        return Err(too_many);
    }
    out.push(u8::try_from(ciphers.len()).map_err(|_| too_many)?);
    out.extend(ciphers.iter().map(|c| c.code()));
    Ok(())
}

/// The inverse of [`put_ciphers`], except that codes this build does not know are skipped:
/// a newer agent's offer of a future suite must not make an older server refuse it.
pub(super) fn read_ciphers(r: &mut Reader<'_>) -> Result<Vec<CipherSuite>, DecodeError> {
    let count = usize::from(r.u8()?);
    if count == 0 {
        return Err(DecodeError::Invalid {
            field: "ciphers",
            why: "empty",
        });
    }
    if count > MAX_CIPHERS {
        return Err(DecodeError::Invalid {
            field: "ciphers",
            why: "more than 8",
        });
    }
    Ok(r.bytes(count)?
        .iter()
        .filter_map(|&code| CipherSuite::from_code(code))
        .collect())
}
