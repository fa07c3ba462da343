//! Bounds-checked reader over a byte slice, and the error every wire decoder returns.
//!
//! Pure: no I/O. Every read checks the remaining length first and reports
//! [`DecodeError::Truncated`] instead of panicking, so the decoders in `msg` and `probe` can be
//! fed any bytes a peer sends. All integers are big-endian.

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message truncated")]
    Truncated,
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    #[error("invalid {field}: {why}")]
    Invalid {
        field: &'static str,
        why: &'static str,
    },
    /// A code this version does not know (method, deny reason, error code, sub-tag, ...).
    #[error("unknown {field} code {code}")]
    UnknownCode { field: &'static str, code: u16 },
    /// A probe datagram that does not start with the `GH` magic.
    #[error("bad probe magic")]
    BadMagic,
    /// A probe datagram of a probe-format version this build does not speak.
    #[error("unsupported probe version {0}")]
    UnsupportedVersion(u8),
}

/// Reads big-endian fields from the front of a byte slice, never past its end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(DecodeError::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    /// Takes every byte not read yet (possibly none).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Takes the next `N` bytes as an array (nonces, proofs, magic).
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let head = self.bytes(N)?;
        <[u8; N]>::try_from(head).map_err(|_| DecodeError::Truncated)
    }

    /// The next byte, without taking it.
    pub fn peek_u8(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A u16 byte length then that many bytes of UTF-8. A length over `max_len` is rejected
    /// before the bytes are read, so a lying prefix costs nothing.
    pub fn string(&mut self, field: &'static str, max_len: usize) -> Result<String, DecodeError> {
        self.str(field, max_len).map(str::to_owned)
    }

    /// Like [`Reader::string`], borrowing the text from the buffer instead of copying it.
    pub fn str(&mut self, field: &'static str, max_len: usize) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u16()?);
        self.utf8(field, len, max_len)
    }

    /// Like [`Reader::string`] but with a u8 length (probe datagrams, where bytes are scarce).
    pub fn short_string(
        &mut self,
        field: &'static str,
        max_len: usize,
    ) -> Result<String, DecodeError> {
        let len = usize::from(self.u8()?);
        self.utf8(field, len, max_len).map(str::to_owned)
    }

    fn utf8(
        &mut self,
        field: &'static str,
        len: usize,
        max_len: usize,
    ) -> Result<&'a str, DecodeError> {
        if len > max_len {
            return Err(DecodeError::Invalid {
                field,
                why: "longer than its limit",
            });
        }
        let raw = self.bytes(len)?;
        std::str::from_utf8(raw).map_err(|_| DecodeError::Invalid {
            field,
            why: "not valid UTF-8",
        })
    }

    /// Ends decoding: every byte must have been consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian() {
        let buf = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(0x01));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.u64(), Ok(0x0809_0a0b_0c0d_0e0f));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn short_reads_are_truncated_not_panics() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), Err(DecodeError::Truncated));
        assert_eq!(r.array::<4>(), Err(DecodeError::Truncated));
        assert_eq!(r.bytes(usize::MAX), Err(DecodeError::Truncated));
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(3)));
    }

    #[test]
    fn string_reads_length_then_utf8() {
        let mut r = Reader::new(&[0, 3, b'a', b'b', b'c', 9]);
        assert_eq!(r.string("name", 3).as_deref(), Ok("abc"));
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn string_over_limit_is_invalid_even_if_truncated() {
        let mut r = Reader::new(&[0xff, 0xff]);
        assert_eq!(
            r.string("name", 255),
            Err(DecodeError::Invalid {
                field: "name",
                why: "longer than its limit"
            })
        );
    }

    #[test]
    fn string_rejects_invalid_utf8() {
        let mut r = Reader::new(&[2, 0xc3, 0x28]);
        assert_eq!(
            r.short_string("host", 255),
            Err(DecodeError::Invalid {
                field: "host",
                why: "not valid UTF-8"
            })
        );
    }
}
