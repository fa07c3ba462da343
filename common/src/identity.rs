//! Unix identities: what NSS shows on a managed host (`getent passwd alice`, `getent group ops`,
//! `id alice`). The entries ([`PasswdEntry`], [`GroupEntry`]), the lookups agents ask for
//! ([`Lookup`]), their limits, and the syntax rules every entry obeys.
//!
//! Pure data and checks. Used by the policy engine (which validates and indexes the entries a
//! database holds), the wire codec (which carries lookups and answers between agents and
//! servers), the agent's local protocol and the NSS module (which copies them into glibc's
//! buffers). The syntax rules exist because glibc and every tool that reads `/etc/passwd`-style
//! data treat `:` and newlines as separators: an entry holding one would be read as two fields,
//! or two entries, by some consumer.

/// Longest Unix user or group name, bytes (default 32): the limit of `useradd` and of utmp's
/// `ut_user` on Linux; a longer name cannot log in everywhere.
pub const MAX_UNIX_NAME_LEN: usize = 32;
/// Longest GECOS field, bytes (default 255): a full name and a few comma-separated extras.
pub const MAX_GECOS_LEN: usize = 255;
/// Longest home directory or shell path, bytes (default 255): ordinary paths are far shorter,
/// and it keeps every passwd answer under 1 KiB.
pub const MAX_UNIX_PATH_LEN: usize = 255;
/// Most members of one Unix group (default 1024). Why: a group answer must fit one wire frame
/// (64 KiB): 1024 names of at most 32 bytes plus their length prefixes is 34 KiB. Larger
/// populations belong in several groups, or in host groups and routes.
pub const MAX_GROUP_MEMBERS: usize = 1024;
/// Most Unix groups one user is a member of (default 1024). Why: each is a 4-byte gid in the
/// answer to a user's groups; Linux's `NGROUPS_MAX` is 65536, but a process with more than a few
/// hundred supplementary groups is already unusual, and NFS (AUTH_SYS) sees only 16.
pub const MAX_USER_GROUPS: usize = 1024;

/// Ids never handed out to directory users or groups: 0 (root: a directory entry must never be
/// able to become root), 65535 (the 16-bit `(uid_t)-1` older interfaces return on error) and
/// 4294967295 (`(uid_t)-1`, which `chown` and `setreuid` read as "leave unchanged").
pub const RESERVED_IDS: [u32; 3] = [0, 65_535, u32::MAX];

/// One user as `getent passwd` shows it. The password field is always `x`: Gatehouse never
/// exposes hashes through NSS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// One Unix group as `getent group` shows it: its members are user names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// An identity lookup: by user name or uid, by group name or gid, or the gids of the Unix groups
/// a user is a member of (for `initgroups`). `S` is `String`, or `&str` for a lookup read in
/// place from a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lookup<S = String> {
    UserByName(S),
    UserByUid(u32),
    GroupByName(S),
    GroupByGid(u32),
    /// The gids of the Unix groups listing this user as a member (not its primary gid).
    GroupsOfUser(S),
}

impl<S: AsRef<str>> Lookup<S> {
    /// The same lookup, borrowed.
    pub fn view(&self) -> Lookup<&str> {
        match self {
            Lookup::UserByName(n) => Lookup::UserByName(n.as_ref()),
            Lookup::UserByUid(id) => Lookup::UserByUid(*id),
            Lookup::GroupByName(n) => Lookup::GroupByName(n.as_ref()),
            Lookup::GroupByGid(id) => Lookup::GroupByGid(*id),
            Lookup::GroupsOfUser(n) => Lookup::GroupsOfUser(n.as_ref()),
        }
    }

    /// A copy that owns its strings.
    pub fn into_owned(self) -> Lookup {
        match self {
            Lookup::UserByName(n) => Lookup::UserByName(n.as_ref().to_owned()),
            Lookup::UserByUid(id) => Lookup::UserByUid(id),
            Lookup::GroupByName(n) => Lookup::GroupByName(n.as_ref().to_owned()),
            Lookup::GroupByGid(id) => Lookup::GroupByGid(id),
            Lookup::GroupsOfUser(n) => Lookup::GroupsOfUser(n.as_ref().to_owned()),
        }
    }

    /// A stable one-line key (`user:alice`, `uid:1001`, ...): for caches and logs.
    pub fn key(&self) -> String {
        match self {
            Lookup::UserByName(n) => format!("user:{}", n.as_ref()),
            Lookup::UserByUid(id) => format!("uid:{id}"),
            Lookup::GroupByName(n) => format!("group:{}", n.as_ref()),
            Lookup::GroupByGid(id) => format!("gid:{id}"),
            Lookup::GroupsOfUser(n) => format!("groups:{}", n.as_ref()),
        }
    }
}

/// Why a name, id or field is not a valid Unix identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("`{0}` is not a valid Unix name (1-32 bytes of a-z, 0-9, _, . or -, not starting with - or a digit-only name)")]
    BadName(String),
    #[error("id {0} is reserved (0 is root; 65535 and 4294967295 mean \"no id\" to the kernel)")]
    ReservedId(u32),
    #[error("{field} `{value}` must not contain `:`, a newline or a NUL byte, and is at most {max} bytes")]
    BadText {
        field: &'static str,
        value: String,
        max: usize,
    },
    #[error("{field} `{value}` must be an absolute path")]
    NotAbsolute { field: &'static str, value: String },
}

/// A portable Unix login or group name: 1..=32 bytes of `a-z 0-9 _ . -` (upper case too: some
/// sites use it), not starting with `-` (it would read as an option) and not all digits (it
/// would read as an id). Stricter than glibc, looser than POSIX's portable set by `.`-only
/// names, which are refused as well (`.` and `..` are paths).
pub fn check_unix_name(name: &str) -> Result<(), IdentityError> {
    let bad = || IdentityError::BadName(name.to_string());
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    if name.is_empty()
        || name.len() > MAX_UNIX_NAME_LEN
        || !name.bytes().all(allowed)
        || name.starts_with('-')
        || name.bytes().all(|b| b.is_ascii_digit())
        || name.bytes().all(|b| b == b'.')
    {
        return Err(bad());
    }
    Ok(())
}

/// Refuses the [`RESERVED_IDS`].
pub fn check_id(id: u32) -> Result<(), IdentityError> {
    if RESERVED_IDS.contains(&id) {
        return Err(IdentityError::ReservedId(id));
    }
    Ok(())
}

/// A free-text passwd field (GECOS, home, shell): no separator a passwd consumer would split
/// on, and at most `max` bytes.
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), IdentityError> {
    if value.len() > max || value.contains([':', '\n', '\r', '\0']) {
        return Err(IdentityError::BadText {
            field,
            value: value.chars().take(64).collect(),
            max,
        });
    }
    Ok(())
}

/// A home directory or shell: an absolute path without passwd separators.
pub fn check_path(field: &'static str, value: &str) -> Result<(), IdentityError> {
    check_text(field, value, MAX_UNIX_PATH_LEN)?;
    if !value.starts_with('/') {
        return Err(IdentityError::NotAbsolute {
            field,
            value: value.to_string(),
        });
    }
    Ok(())
}

impl PasswdEntry {
    /// The entry of the worked examples (docs/PROTOCOL.md, docs/AGENT.md) and of the tests of
    /// every crate that carries entries: alice, 100001/100001, `Alice`, `/home/alice`,
    /// `/bin/sh`.
    pub fn example() -> PasswdEntry {
        PasswdEntry {
            name: "alice".into(),
            uid: 100_001,
            gid: 100_001,
            gecos: "Alice".into(),
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
        }
    }

    /// Checks every field (name, ids, GECOS, home, shell).
    pub fn check(&self) -> Result<(), IdentityError> {
        check_unix_name(&self.name)?;
        check_id(self.uid)?;
        check_id(self.gid)?;
        check_text("gecos", &self.gecos, MAX_GECOS_LEN)?;
        check_path("home", &self.home)?;
        check_path("shell", &self.shell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_names_follow_the_portable_rules() {
        for good in [
            "alice",
            "a",
            "svc-backup",
            "j.doe",
            "_apt",
            "Bob",
            "u1",
            &"x".repeat(32),
        ] {
            assert_eq!(check_unix_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "-rf",
            "123",
            "al:ice",
            "al ice",
            "é",
            ".",
            "..",
            &"x".repeat(33),
        ] {
            assert!(check_unix_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_ids_and_separators_are_refused() {
        for id in RESERVED_IDS {
            assert_eq!(check_id(id), Err(IdentityError::ReservedId(id)));
        }
        assert_eq!(check_id(100_000), Ok(()));
        assert!(check_text("gecos", "Alice Smith,Room 4", MAX_GECOS_LEN).is_ok());
        for bad in ["a:b", "a\nb", "a\0b", &"x".repeat(256)] {
            assert!(check_text("gecos", bad, MAX_GECOS_LEN).is_err(), "{bad:?}");
        }
        assert!(check_path("home", "/home/alice").is_ok());
        assert_eq!(
            check_path("shell", "bin/sh").unwrap_err().to_string(),
            "shell `bin/sh` must be an absolute path"
        );
    }

    #[test]
    fn lookup_keys_are_distinct_per_kind() {
        let keys = [
            Lookup::UserByName("1".to_string()).key(),
            Lookup::<String>::UserByUid(1).key(),
            Lookup::GroupByName("1".to_string()).key(),
            Lookup::<String>::GroupByGid(1).key(),
            Lookup::GroupsOfUser("1".to_string()).key(),
        ];
        let unique: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len());
        assert_eq!(
            Lookup::UserByName("al").into_owned().view(),
            Lookup::UserByName("al")
        );
    }
}
