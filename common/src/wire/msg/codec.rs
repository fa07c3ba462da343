//! Field-by-field encoding and decoding of handshake and session messages. Pure; called only
//! by `Handshake::{encode,decode}` and `Session::{encode,decode}`, which add the
//! "leave `out` unchanged on error" and "no trailing bytes" rules.

mod lists;

use super::*;
use crate::wire::aging::{put_aging, read_aging};
use crate::wire::identity::{
    put_gids, put_group, put_lookup, put_passwd, read_gids, read_group, read_lookup, read_passwd,
};
use crate::wire::password_change::{
    put_change_request, put_outcome, read_change_request, read_outcome,
};
use crate::wire::writer::{put_string, truncate_utf8};
use lists::{put_ciphers, put_versions, read_ciphers, read_versions};

/// Sub-tags of a request body.
const REQ_AUTHORIZE: u8 = 1;
const REQ_AUTHENTICATE: u8 = 2;
/// 3-7 are the identity lookups (`wire::identity`); 8 is the local protocol's status.
const REQ_CHANGE_PASSWORD: u8 = 9;
/// Sub-tags of a response body.
const RESP_ALLOW: u8 = 1;
const RESP_DENY: u8 = 2;
const RESP_AUTH_OK: u8 = 3;
const RESP_AUTH_FAIL: u8 = 4;
/// The one reason byte an AuthFail carries ("failed"; docs/PROTOCOL.md, "Response body"). The
/// byte stays so that a later answer that is no oracle (say, "password correct but must be
/// changed") can get a code of its own; 1-3 were detailed reasons before 2026-12, now refused.
const AUTH_FAILED: u8 = 4;
const RESP_ERROR: u8 = 5;
const RESP_USER: u8 = 6;
const RESP_GROUP: u8 = 7;
const RESP_GROUPS: u8 = 8;
const RESP_NOT_FOUND: u8 = 9;
const RESP_PASSWORD_CHANGE: u8 = 10;
const RESP_AUTH_OK_AGING: u8 = 11;

pub(super) fn encode_handshake(msg: &Handshake, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match msg {
        Handshake::ClientHello(h) => {
            out.push(tag::CLIENT_HELLO);
            if h.versions.is_empty() {
                return Err(EncodeError::Empty { field: "versions" });
            }
            put_versions(out, &h.versions)?;
            if h.host.is_empty() {
                return Err(EncodeError::Empty { field: "host" });
            }
            put_string(out, "host", MAX_HOST_LEN, &h.host)?;
            out.extend_from_slice(&h.nonce);
            put_ciphers(out, &h.ciphers)?;
        }
        Handshake::ServerHello(h) => {
            out.push(tag::SERVER_HELLO);
            out.extend_from_slice(&h.version.to_be_bytes());
            out.extend_from_slice(&h.nonce);
            out.extend_from_slice(&h.proof);
            out.push(h.cipher.code());
        }
        Handshake::ClientFinish(f) => {
            out.push(tag::CLIENT_FINISH);
            out.extend_from_slice(&f.proof);
        }
        Handshake::Error(e) => {
            out.push(tag::HANDSHAKE_ERROR);
            put_wire_error(out, e);
        }
    }
    Ok(())
}

pub(super) fn decode_handshake(r: &mut Reader<'_>) -> Result<Handshake, DecodeError> {
    Ok(match r.u8()? {
        tag::CLIENT_HELLO => {
            let versions = read_versions(r)?;
            if versions.is_empty() {
                return Err(DecodeError::Invalid {
                    field: "versions",
                    why: "empty",
                });
            }
            let host = r.string("host", MAX_HOST_LEN)?;
            if host.is_empty() {
                return Err(DecodeError::Invalid {
                    field: "host",
                    why: "empty",
                });
            }
            let nonce = r.array()?;
            let ciphers = read_ciphers(r)?;
            Handshake::ClientHello(ClientHello {
                versions,
                host,
                nonce,
                ciphers,
            })
        }
        tag::SERVER_HELLO => {
            let version = r.u16()?;
            let nonce = r.array()?;
            let proof = r.array()?;
            let code = r.u8()?;
            let cipher = CipherSuite::from_code(code).ok_or(unknown("cipher suite", code))?;
            Handshake::ServerHello(ServerHello {
                version,
                nonce,
                proof,
                cipher,
            })
        }
        tag::CLIENT_FINISH => Handshake::ClientFinish(ClientFinish { proof: r.array()? }),
        tag::HANDSHAKE_ERROR => Handshake::Error(read_wire_error(r)?),
        other => return Err(DecodeError::UnknownTag(other)),
    })
}

/// A request message, from a borrowed body (what `Session::Request` encodes to).
pub(super) fn encode_request(
    id: u32,
    body: &Request,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.push(tag::REQUEST);
    out.extend_from_slice(&id.to_be_bytes());
    put_request(out, body)
}

pub(super) fn encode_session(msg: &Session, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match msg {
        Session::Request { id, body } => encode_request(*id, body, out)?,
        Session::Response { id, body } => {
            out.push(tag::RESPONSE);
            out.extend_from_slice(&id.to_be_bytes());
            put_response(out, body)?;
        }
        Session::Goodbye(g) => {
            out.push(tag::GOODBYE);
            out.push(g.reason.code());
        }
        Session::Error(e) => {
            out.push(tag::SESSION_ERROR);
            put_wire_error(out, e);
        }
        Session::Replication(bytes) => {
            // Length-prefixed like every other field, so trailing bytes are still detected;
            // the frame cap bounds it.
            out.push(tag::REPLICATION);
            let len = u32::try_from(bytes.len()).map_err(|_| EncodeError::TooLong {
                field: "replication",
                len: bytes.len(),
                max: u32::MAX as usize,
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
    Ok(())
}

pub(super) fn decode_session(r: &mut Reader<'_>) -> Result<Session, DecodeError> {
    Ok(match r.u8()? {
        tag::REQUEST => Session::Request {
            id: r.u32()?,
            body: read_request(r)?.into_owned(),
        },
        tag::RESPONSE => Session::Response {
            id: r.u32()?,
            body: read_response(r)?,
        },
        tag::GOODBYE => {
            let code = r.u8()?;
            let reason = GoodbyeReason::from_code(code).ok_or(unknown("goodbye reason", code))?;
            Session::Goodbye(Goodbye { reason })
        }
        tag::SESSION_ERROR => Session::Error(read_wire_error(r)?),
        tag::REPLICATION => {
            let len = r.u32()? as usize;
            Session::Replication(r.bytes(len)?.to_vec())
        }
        other => return Err(DecodeError::UnknownTag(other)),
    })
}

fn put_request(out: &mut Vec<u8>, body: &Request) -> Result<(), EncodeError> {
    match body {
        Request::Authorize(a) => {
            out.push(REQ_AUTHORIZE);
            out.push(a.method.code());
            put_string(out, "from_host", MAX_HOST_LEN, &a.from_host)?;
            put_string(out, "from_user", MAX_USER_LEN, &a.from_user)?;
            put_string(out, "to_user", MAX_USER_LEN, &a.to_user)?;
            put_string(out, "to_host", MAX_HOST_LEN, &a.to_host)?;
        }
        Request::Authenticate(a) => {
            out.push(REQ_AUTHENTICATE);
            put_string(out, "user", MAX_USER_LEN, &a.user)?;
            put_string(out, "password", MAX_PASSWORD_LEN, &a.password)?;
            put_string(out, "host", MAX_HOST_LEN, &a.host)?;
        }
        Request::Lookup(lookup) => put_lookup(out, lookup)?,
        Request::ChangePassword(c) => {
            out.push(REQ_CHANGE_PASSWORD);
            put_change_request(out, c)?;
        }
    }
    Ok(())
}

/// A session message as a server reads it: a request in place, anything else whole.
pub(super) fn decode_session_view<'a>(r: &mut Reader<'a>) -> Result<SessionView<'a>, DecodeError> {
    let mut peek = r.clone();
    if peek.u8()? != tag::REQUEST {
        return decode_session(r).map(SessionView::Other);
    }
    *r = peek;
    Ok(SessionView::Request {
        id: r.u32()?,
        body: read_request(r)?,
    })
}

fn read_request<'a>(r: &mut Reader<'a>) -> Result<RequestView<'a>, DecodeError> {
    Ok(match r.u8()? {
        REQ_AUTHORIZE => {
            let code = r.u8()?;
            let method = Method::from_code(code).ok_or(unknown("method", code))?;
            Request::Authorize(AuthorizeRequest {
                method,
                from_host: r.str("from_host", MAX_HOST_LEN)?,
                from_user: r.str("from_user", MAX_USER_LEN)?,
                to_user: r.str("to_user", MAX_USER_LEN)?,
                to_host: r.str("to_host", MAX_HOST_LEN)?,
            })
        }
        REQ_AUTHENTICATE => Request::Authenticate(AuthenticateRequest {
            user: r.str("user", MAX_USER_LEN)?,
            password: r.str("password", MAX_PASSWORD_LEN)?,
            host: r.str("host", MAX_HOST_LEN)?,
        }),
        REQ_CHANGE_PASSWORD => Request::ChangePassword(read_change_request(r)?),
        other => match read_lookup(other, r)? {
            Some(lookup) => Request::Lookup(lookup),
            None => return Err(unknown("request kind", other)),
        },
    })
}

fn put_response(out: &mut Vec<u8>, body: &Response) -> Result<(), EncodeError> {
    match body {
        Response::Allow { route } => {
            out.push(RESP_ALLOW);
            put_string(out, "route", MAX_ROUTE_LEN, route)?;
        }
        Response::Deny { reason } => out.extend_from_slice(&[RESP_DENY, reason.code()]),
        Response::AuthOk => out.push(RESP_AUTH_OK),
        Response::AuthOkAging(aging) => {
            out.push(RESP_AUTH_OK_AGING);
            put_aging(out, *aging);
        }
        Response::AuthFail => out.extend_from_slice(&[RESP_AUTH_FAIL, AUTH_FAILED]),
        Response::Error(e) => {
            out.push(RESP_ERROR);
            put_wire_error(out, e);
        }
        Response::User(entry) => {
            out.push(RESP_USER);
            put_passwd(out, entry)?;
        }
        Response::Group(entry) => {
            out.push(RESP_GROUP);
            put_group(out, entry)?;
        }
        Response::Groups(gids) => {
            out.push(RESP_GROUPS);
            put_gids(out, gids)?;
        }
        Response::NotFound => out.push(RESP_NOT_FOUND),
        Response::PasswordChange(outcome) => {
            out.push(RESP_PASSWORD_CHANGE);
            put_outcome(out, outcome);
        }
    }
    Ok(())
}

fn read_response(r: &mut Reader<'_>) -> Result<Response, DecodeError> {
    Ok(match r.u8()? {
        RESP_ALLOW => Response::Allow {
            route: r.str("route", MAX_ROUTE_LEN)?.into(),
        },
        RESP_DENY => {
            let code = r.u8()?;
            let reason = DenyReason::from_code(code).ok_or(unknown("deny reason", code))?;
            Response::Deny { reason }
        }
        RESP_AUTH_OK => Response::AuthOk,
        RESP_AUTH_OK_AGING => Response::AuthOkAging(read_aging(r)?),
        RESP_AUTH_FAIL => match r.u8()? {
            AUTH_FAILED => Response::AuthFail,
            code => return Err(unknown("auth failure", code)),
        },
        RESP_ERROR => Response::Error(read_wire_error(r)?),
        RESP_USER => Response::User(read_passwd(r)?.into()),
        RESP_GROUP => Response::Group(read_group(r)?.into()),
        RESP_GROUPS => Response::Groups(read_gids(r)?.into()),
        RESP_NOT_FOUND => Response::NotFound,
        RESP_PASSWORD_CHANGE => Response::PasswordChange(read_outcome(r)?),
        other => return Err(unknown("response kind", other)),
    })
}

/// Never fails: over-long parts are cut (see the module header).
fn put_wire_error(out: &mut Vec<u8>, e: &WireError) {
    out.extend_from_slice(&e.code.code().to_be_bytes());
    let message = truncate_utf8(&e.message, MAX_MESSAGE_LEN);
    // Cannot fail: `message` is within MAX_MESSAGE_LEN, which fits a u16.
    let _ = put_string(out, "message", MAX_MESSAGE_LEN, message);
    let versions = e.versions.get(..MAX_VERSIONS).unwrap_or(&e.versions);
    // Cannot fail: at most MAX_VERSIONS entries.
    let _ = put_versions(out, versions);
    out.extend_from_slice(&e.estimate_us.to_be_bytes());
}

fn read_wire_error(r: &mut Reader<'_>) -> Result<WireError, DecodeError> {
    let code = r.u16()?;
    let code = ErrorCode::from_code(code).ok_or(DecodeError::UnknownCode {
        field: "error code",
        code,
    })?;
    Ok(WireError {
        code,
        message: r.string("message", MAX_MESSAGE_LEN)?,
        versions: read_versions(r)?,
        estimate_us: r.u64()?,
    })
}

fn unknown(field: &'static str, code: u8) -> DecodeError {
    DecodeError::UnknownCode {
        field,
        code: code.into(),
    }
}
