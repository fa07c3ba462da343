//! Encoding helpers and the error an encoder returns when a value breaks a wire limit.
//!
//! Pure. Used by the encoders in `msg` and `probe`. Integers are written big-endian with
//! `extend_from_slice(&x.to_be_bytes())` at the call site; only strings need help, because
//! their length prefix and limit must agree with what the decoder accepts.

/// A value that cannot be put on the wire because it breaks a protocol limit. The decoder
/// would reject it, so the encoder refuses it rather than send something the peer drops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{field} is {len} bytes, over the limit of {max} bytes")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} has {count} entries, over the limit of {max}")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
}

/// Appends a u16 byte length then the UTF-8 bytes of `s`.
pub fn put_string(
    out: &mut Vec<u8>,
    field: &'static str,
    max: usize,
    s: &str,
) -> Result<(), EncodeError> {
    let len = checked_len::<u16>(field, max, s)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Appends a u8 byte length then the UTF-8 bytes of `s`.
pub(crate) fn put_short_string(
    out: &mut Vec<u8>,
    field: &'static str,
    max: usize,
    s: &str,
) -> Result<(), EncodeError> {
    let len = checked_len::<u8>(field, max, s)?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// `s.len()` as the prefix type, if it is within `max` and fits the prefix.
fn checked_len<T: TryFrom<usize>>(
    field: &'static str,
    max: usize,
    s: &str,
) -> Result<T, EncodeError> {
    let too_long = EncodeError::TooLong {
        field,
        len: s.len(),
        max,
    };
    if s.len() > max {
        return Err(too_long);
    }
    T::try_from(s.len()).map_err(|_| too_long)
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
pub(crate) fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1; // terminates: 0 is always a boundary
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_utf8_stops_on_char_boundary() {
        assert_eq!(truncate_utf8("abc", 5), "abc");
        assert_eq!(truncate_utf8("abc", 2), "ab");
        // "é" is two bytes: cutting at 2 would split it.
        assert_eq!(truncate_utf8("aé", 2), "a");
        assert_eq!(truncate_utf8("€", 2), "");
    }

    #[test]
    fn put_string_refuses_over_limit_and_writes_nothing() {
        let mut out = vec![];
        assert_eq!(
            put_string(&mut out, "user", 3, "abcd"),
            Err(EncodeError::TooLong {
                field: "user",
                len: 4,
                max: 3
            })
        );
        assert!(out.is_empty());
        put_string(&mut out, "user", 3, "abc").unwrap();
        assert_eq!(out, [0, 3, b'a', b'b', b'c']);
    }
}
