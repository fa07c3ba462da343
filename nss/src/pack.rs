//! Copying an entry into the caller's buffer the way glibc expects (`getpwnam_r`'s contract):
//! every string NUL-terminated inside `buf`, a group's member list an aligned, NULL-terminated
//! array of pointers inside `buf`, and `TooSmall` — never a partial write the caller would
//! use — when `buf` cannot hold it all (the caller retries with a bigger buffer).
//!
//! Pure: bytes and offsets; `base` is the address of `buf[0]`, given so that pointer values
//! and alignment can be computed without touching raw pointers. The FFI shell turns offsets
//! into pointers.

use gatehouse_local::{GroupEntry, PasswdEntry};

/// The buffer cannot hold the entry (glibc: NSS_STATUS_TRYAGAIN with ERANGE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSmall;

/// Where each passwd string starts in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswdOffsets {
    pub name: usize,
    pub passwd: usize,
    pub gecos: usize,
    pub dir: usize,
    pub shell: usize,
}

/// Where a group's strings and member array start in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupOffsets {
    pub name: usize,
    pub passwd: usize,
    /// The `char **gr_mem` array (aligned for pointers).
    pub members: usize,
}

/// What NSS shows in the password field: never a hash.
pub const PASSWORD_FIELD: &str = "x";

/// Appends NUL-terminated strings to a buffer, refusing to overrun it.
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn string(&mut self, s: &str) -> Result<usize, TooSmall> {
        let start = self.at;
        let end = start.checked_add(s.len() + 1).ok_or(TooSmall)?;
        let slot = self.buf.get_mut(start..end).ok_or(TooSmall)?;
        let (text, nul) = slot.split_at_mut(s.len());
        text.copy_from_slice(s.as_bytes());
        nul.fill(0);
        self.at = end;
        Ok(start)
    }
}

/// Packs a passwd entry: name, `x`, GECOS, home, shell.
pub fn pack_passwd(entry: &PasswdEntry, buf: &mut [u8]) -> Result<PasswdOffsets, TooSmall> {
    let mut w = Writer { buf, at: 0 };
    Ok(PasswdOffsets {
        name: w.string(&entry.name)?,
        passwd: w.string(PASSWORD_FIELD)?,
        gecos: w.string(&entry.gecos)?,
        dir: w.string(&entry.home)?,
        shell: w.string(&entry.shell)?,
    })
}

/// Packs a group entry: the member pointer array first (aligned for pointers, members then a
/// NULL), then the name, `x` and each member's name. `base` is `buf`'s address.
pub fn pack_group(
    entry: &GroupEntry,
    buf: &mut [u8],
    base: usize,
) -> Result<GroupOffsets, TooSmall> {
    const PTR: usize = std::mem::size_of::<usize>();
    let pad = (PTR - base % PTR) % PTR;
    let array_len = entry.members.len().checked_add(1).ok_or(TooSmall)? * PTR;
    let strings_at = pad.checked_add(array_len).ok_or(TooSmall)?;
    let mut w = Writer {
        buf,
        at: strings_at,
    };
    let name = w.string(&entry.name)?;
    let passwd = w.string(PASSWORD_FIELD)?;
    let mut member_offsets = Vec::with_capacity(entry.members.len());
    for member in &entry.members {
        member_offsets.push(w.string(member)?);
    }
    // Every string fits, so the array (before them) does too.
    let pointers = member_offsets
        .iter()
        .map(|off| base.wrapping_add(*off))
        .chain(std::iter::once(0));
    for (i, value) in pointers.enumerate() {
        let at = pad + i * PTR;
        let slot = w.buf.get_mut(at..at + PTR).ok_or(TooSmall)?;
        slot.copy_from_slice(&value.to_ne_bytes());
    }
    Ok(GroupOffsets {
        name,
        passwd,
        members: pad,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> PasswdEntry {
        PasswdEntry::example()
    }

    fn cstr(buf: &[u8], at: usize) -> &str {
        let end = buf[at..].iter().position(|&b| b == 0).unwrap() + at;
        std::str::from_utf8(&buf[at..end]).unwrap()
    }

    #[test]
    fn a_passwd_entry_needs_exactly_its_strings_and_their_nuls() {
        let need =
            "alice".len() + "x".len() + "Alice".len() + "/home/alice".len() + "/bin/sh".len() + 5;
        for len in 0..need {
            assert_eq!(
                pack_passwd(&alice(), &mut vec![0; len]),
                Err(TooSmall),
                "{len}"
            );
        }
        let mut buf = vec![0xff; need];
        let at = pack_passwd(&alice(), &mut buf).unwrap();
        let fields: Vec<&str> = [at.name, at.passwd, at.gecos, at.dir, at.shell]
            .iter()
            .map(|&o| cstr(&buf, o))
            .collect();
        assert_eq!(fields, ["alice", "x", "Alice", "/home/alice", "/bin/sh"]);
    }

    #[test]
    fn a_group_gets_an_aligned_null_terminated_member_array() {
        let group = GroupEntry {
            name: "ops".into(),
            gid: 7,
            members: vec!["alice".into(), "bob".into()],
        };
        for base in [0x1000usize, 0x1003] {
            let pad = (8 - base % 8) % 8;
            let need = pad + 3 * 8 + "ops".len() + 1 + 2 + "alice".len() + 1 + "bob".len() + 1;
            assert_eq!(
                pack_group(&group, &mut vec![0; need - 1], base),
                Err(TooSmall)
            );
            let mut buf = vec![0xff; need];
            let at = pack_group(&group, &mut buf, base).unwrap();
            assert_eq!((base + at.members) % 8, 0);
            assert_eq!(cstr(&buf, at.name), "ops");
            let pointer = |i: usize| {
                let at = at.members + i * 8;
                usize::from_ne_bytes(buf[at..at + 8].try_into().unwrap())
            };
            assert_eq!(cstr(&buf, pointer(0) - base), "alice");
            assert_eq!(cstr(&buf, pointer(1) - base), "bob");
            assert_eq!(pointer(2), 0);
        }
        let empty = GroupEntry {
            name: "e".into(),
            gid: 8,
            members: vec![],
        };
        let mut buf = vec![0; 8 + 2 + 2];
        let at = pack_group(&empty, &mut buf, 0).unwrap();
        assert_eq!(at.members, 0);
        assert_eq!(&buf[..8], &[0; 8]);
    }
}
