//! The second and third words of `gatehouse-admin` (`host add`, `group member remove`, ...):
//! clap's definitions and the request each one becomes. Pure; part of [`super`].

use super::{route, Command, Owner};
use crate::admin::proto::AdminRequest as R;
use clap::{Args, Subcommand};
use gatehouse_common::policy::RouteTarget;
use std::path::PathBuf;

/// `host ...`
#[derive(Debug, Subcommand)]
pub enum HostCmd {
    /// Register a host; the master makes its node key and the CLI writes it to --key-file.
    Add {
        name: String,
        /// An address the host is known by (repeat for more).
        #[arg(long = "address", value_name = "A")]
        addresses: Vec<String>,
        /// A host group it belongs to (repeat for more; create each with `group add` first).
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        /// Where to write the new node key (created new, mode 0600).
        #[arg(long, value_name = "PATH")]
        key_file: PathBuf,
    },
    /// Unregister a host (refused while it is on the replica allow-list).
    Remove { name: String },
    /// Every host: addresses, groups, whether it replicates or asks for others (never keys).
    List,
    /// One host, with the routes that name it.
    Show { name: String },
    /// Let a jump host or proxy ask about logins on other hosts (yes), or stop it (no).
    AskForOthers {
        name: String,
        #[arg(value_parser = ["yes", "no"])]
        answer: String,
    },
}

impl HostCmd {
    pub(super) fn into_command(self) -> Command {
        match self {
            HostCmd::Add {
                name,
                addresses,
                groups,
                key_file,
            } => Command::HostAdd {
                request: R::HostAdd {
                    name,
                    addresses,
                    groups,
                },
                key_file,
            },
            HostCmd::Remove { name } => Command::Send(R::HostRemove { name }),
            HostCmd::List => Command::Send(R::HostList),
            HostCmd::Show { name } => Command::Send(R::HostShow { name }),
            HostCmd::AskForOthers { name, answer } => Command::Send(R::HostAskForOthers {
                name,
                allowed: answer == "yes",
            }),
        }
    }
}

/// `group ...` (host groups).
#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Add a host group.
    Add {
        name: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Remove a host group (refused while a host is a member).
    Remove { name: String },
    /// Every host group with its hosts.
    List,
    /// One host group: description, hosts, routes naming it.
    Show { name: String },
    /// Add a host to a group or remove it.
    #[command(subcommand)]
    Member(MemberCmd),
}

/// `group member add|remove GROUP HOST`, `unixgroup member add|remove GROUP USER`.
#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    /// Add the member.
    Add { group: String, member: String },
    /// Remove the member.
    Remove { group: String, member: String },
}

impl GroupCmd {
    pub(super) fn into_request(self) -> R {
        match self {
            GroupCmd::Add { name, description } => R::GroupAdd { name, description },
            GroupCmd::Remove { name } => R::GroupRemove { name },
            GroupCmd::List => R::GroupList,
            GroupCmd::Show { name } => R::GroupShow { name },
            GroupCmd::Member(MemberCmd::Add { group, member }) => R::GroupMemberAdd {
                group,
                host: member,
            },
            GroupCmd::Member(MemberCmd::Remove { group, member }) => R::GroupMemberRemove {
                group,
                host: member,
            },
        }
    }
}

/// `user ...`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user (a Unix login name: 1-32 of a-z, 0-9, _, . and -).
    Add {
        name: String,
        /// A class the user has (repeat for more).
        #[arg(long = "class", value_name = "C")]
        classes: Vec<String>,
    },
    /// Remove a user.
    Remove { name: String },
    /// Every user: classes, locked, password set, Unix uid (never a hash).
    List,
    /// One user: locks, lockout, password set or not, classes, routes, Unix identity.
    Show { name: String },
    /// Replace the user's classes with the --class options given (none: no classes).
    SetClasses {
        name: String,
        #[arg(long = "class", value_name = "C")]
        classes: Vec<String>,
    },
    /// Set the password: asked twice without echo on a terminal, else one line of standard
    /// input (never the command line); the master checks the password rules of the user's
    /// class and names the rule a refused password broke.
    Passwd { name: String },
    /// Deny the user everything.
    Lock { name: String },
    /// Lift the lock and any lockout after wrong passwords.
    Unlock { name: String },
    /// Make the password expired now: the next login with it must change it (a changed
    /// max_age_days otherwise applies at each user's next password change).
    Expire { name: String },
    /// Set the user's Unix identity (fields not given keep their value or default).
    Unix(UnixArgs),
    /// Remove the user's Unix identity.
    UnixRemove { name: String },
}

/// `user unix NAME [--uid N] [--gid N] [--gecos TEXT] [--home DIR] [--shell PATH]`.
#[derive(Debug, Args)]
pub struct UnixArgs {
    pub name: String,
    #[arg(long, value_name = "N")]
    pub uid: Option<u32>,
    #[arg(long, value_name = "N")]
    pub gid: Option<u32>,
    #[arg(long, value_name = "TEXT")]
    pub gecos: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub home: Option<String>,
    #[arg(long, value_name = "PATH")]
    pub shell: Option<String>,
}

impl UserCmd {
    pub(super) fn into_command(self) -> Command {
        let send = Command::Send;
        match self {
            UserCmd::Add { name, classes } => send(R::UserAdd { name, classes }),
            UserCmd::Remove { name } => send(R::UserRemove { name }),
            UserCmd::List => send(R::UserList),
            UserCmd::Show { name } => send(R::UserShow { name }),
            UserCmd::SetClasses { name, classes } => send(R::UserSetClasses { name, classes }),
            UserCmd::Passwd { name } => Command::Passwd { name },
            UserCmd::Lock { name } => send(R::UserLock { name }),
            UserCmd::Unlock { name } => send(R::UserUnlock { name }),
            UserCmd::Expire { name } => send(R::UserExpire { name }),
            UserCmd::Unix(a) => send(R::UserUnix {
                name: a.name,
                uid: a.uid,
                gid: a.gid,
                gecos: a.gecos,
                home: a.home,
                shell: a.shell,
            }),
            UserCmd::UnixRemove { name } => send(R::UserUnixRemove { name }),
        }
    }
}

/// `class ...`
#[derive(Debug, Subcommand)]
pub enum ClassCmd {
    /// Add a user class.
    Add { name: String },
    /// Remove a class (refused while a user has it).
    Remove { name: String },
    /// Every class with its users and route count.
    List,
    /// One class: its users and routes.
    Show { name: String },
}

impl ClassCmd {
    pub(super) fn into_request(self) -> R {
        match self {
            ClassCmd::Add { name } => R::ClassAdd { name },
            ClassCmd::Remove { name } => R::ClassRemove { name },
            ClassCmd::List => R::ClassList,
            ClassCmd::Show { name } => R::ClassShow { name },
        }
    }
}

/// `--user U | --class C`, one of them required.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct RequiredOwner {
    /// The user whose route this is.
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// The class whose route this is.
    #[arg(long, value_name = "C")]
    pub class: Option<String>,
}

impl RequiredOwner {
    fn target(self) -> RouteTarget {
        match self.user {
            Some(user) => RouteTarget::User(user),
            None => RouteTarget::Class(self.class.unwrap_or_default()),
        }
    }
}

/// `route ...`
#[derive(Debug, Subcommand)]
pub enum RouteCmd {
    /// Append a route (METHODS:FROM->TO, docs/POLICY.md); warns when its target names no
    /// registered host.
    Add {
        #[command(flatten)]
        owner: RequiredOwner,
        rule: String,
        /// Only within this weekly window (`Mon-Fri 08:00-18:00`, UTC).
        #[arg(long, value_name = "W")]
        window: Option<String>,
        /// Not from this time on (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC).
        #[arg(long, value_name = "E")]
        expires: Option<String>,
    },
    /// Remove the route with this rule text.
    Remove {
        #[command(flatten)]
        owner: RequiredOwner,
        rule: String,
    },
    /// Every route, or one user's or class's.
    List {
        #[command(flatten)]
        owner: Owner,
    },
    /// One route, with warnings for hosts or groups its target matches none of.
    Show {
        #[command(flatten)]
        owner: RequiredOwner,
        rule: String,
    },
}

impl RouteCmd {
    pub(super) fn into_request(self) -> R {
        match self {
            RouteCmd::Add {
                owner,
                rule,
                window,
                expires,
            } => R::RouteAdd {
                target: owner.target(),
                route: route(rule, window, expires),
            },
            RouteCmd::Remove { owner, rule } => R::RouteRemove {
                target: owner.target(),
                rule,
            },
            RouteCmd::List { owner } => R::RouteList {
                target: owner.target(),
            },
            RouteCmd::Show { owner, rule } => R::RouteShow {
                target: owner.target(),
                rule,
            },
        }
    }
}

/// `replica ...`
#[derive(Debug, Subcommand)]
pub enum ReplicaCmd {
    /// Allow a registered host to replicate the database.
    Add { host: String },
    /// Take a host off the replica allow-list.
    Remove { host: String },
    /// The allow-list with each replica's link state.
    List,
    /// One replica: its link, acknowledged sequence, lag, last heard.
    Show { host: String },
}

impl ReplicaCmd {
    pub(super) fn into_request(self) -> R {
        match self {
            ReplicaCmd::Add { host } => R::ReplicaAdd { host },
            ReplicaCmd::Remove { host } => R::ReplicaRemove { host },
            ReplicaCmd::List => R::ReplicaList,
            ReplicaCmd::Show { host } => R::ReplicaShow { host },
        }
    }
}

/// `unixgroup ...`
#[derive(Debug, Subcommand)]
pub enum UnixGroupCmd {
    /// Add a Unix group (without --gid, the lowest free gid in the range).
    Add {
        name: String,
        #[arg(long, value_name = "N")]
        gid: Option<u32>,
    },
    /// Remove a Unix group.
    Remove { name: String },
    /// Every Unix group with its gid and members.
    List,
    /// Add a user to a Unix group or remove it.
    #[command(subcommand)]
    Member(MemberCmd),
}

impl UnixGroupCmd {
    pub(super) fn into_request(self) -> R {
        match self {
            UnixGroupCmd::Add { name, gid } => R::UnixGroupAdd { name, gid },
            UnixGroupCmd::Remove { name } => R::UnixGroupRemove { name },
            UnixGroupCmd::List => R::UnixGroupList,
            UnixGroupCmd::Member(MemberCmd::Add { group, member }) => R::UnixGroupMemberAdd {
                group,
                user: member,
            },
            UnixGroupCmd::Member(MemberCmd::Remove { group, member }) => R::UnixGroupMemberRemove {
                group,
                user: member,
            },
        }
    }
}

/// `lockout ...`
#[derive(Debug, Subcommand)]
pub enum LockoutCmd {
    /// Users locked out now, and wrong passwords counted now by host.
    List,
}
