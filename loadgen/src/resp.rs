//! Just enough RESP (the redis protocol) for a GET load client: the request bytes and the
//! length of one complete reply at the front of a buffer.
//!
//! Pure. Called by [`super::redis`].

/// `GET k` as a RESP array.
pub const GET_K: &[u8] = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
/// Longest bulk reply accepted, bytes (default 1 MiB): a GET of the load key is tiny; this
/// only bounds a misbehaving peer.
pub const MAX_BULK: usize = 1 << 20;

/// What is at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Not a whole reply yet.
    Incomplete,
    /// A reply of this many bytes; `error` when it is a `-ERR` reply.
    Complete { len: usize, error: bool },
    /// Not RESP (or a type a GET never gets).
    Malformed,
}

/// Parses the first reply in `buf`.
pub fn parse_reply(buf: &[u8]) -> Reply {
    let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() > 64 {
            Reply::Malformed
        } else {
            Reply::Incomplete
        };
    };
    let Some((&kind, line)) = buf[..line_end].split_first() else {
        return Reply::Malformed;
    };
    let header = line_end + 2;
    match kind {
        b'+' | b':' => Reply::Complete {
            len: header,
            error: false,
        },
        b'-' => Reply::Complete {
            len: header,
            error: true,
        },
        b'$' => {
            let Some(n) = std::str::from_utf8(line)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
            else {
                return Reply::Malformed;
            };
            if n == -1 {
                return Reply::Complete {
                    len: header,
                    error: false,
                };
            }
            let Some(n) = usize::try_from(n).ok().filter(|&n| n <= MAX_BULK) else {
                return Reply::Malformed;
            };
            let total = header + n + 2;
            match buf.get(header + n..total) {
                None => Reply::Incomplete,
                Some(b"\r\n") => Reply::Complete {
                    len: total,
                    error: false,
                },
                Some(_) => Reply::Malformed,
            }
        }
        _ => Reply::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_a_get_can_get() {
        assert_eq!(
            parse_reply(b"$-1\r\nrest"),
            Reply::Complete {
                len: 5,
                error: false
            }
        );
        assert_eq!(
            parse_reply(b"$3\r\nabc\r\n"),
            Reply::Complete {
                len: 9,
                error: false
            }
        );
        assert_eq!(
            parse_reply(b"-ERR wrong\r\n"),
            Reply::Complete {
                len: 12,
                error: true
            }
        );
        assert_eq!(parse_reply(b"$3\r\nab"), Reply::Incomplete);
        assert_eq!(parse_reply(b"$3"), Reply::Incomplete);
        assert_eq!(parse_reply(b"$3\r\nabcd\r\n"), Reply::Malformed);
        assert_eq!(parse_reply(b"*1\r\n"), Reply::Malformed);
        assert_eq!(parse_reply(b"$99999999999\r\n"), Reply::Malformed);
    }
}
