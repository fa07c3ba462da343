//! The module's arguments, from the PAM service file (`auth required pam_gatehouse.so
//! use_first_pass ignore_unknown_user`). Pure: words in, typed options or an error naming the
//! bad word out. An unknown word is an error (the module then fails closed with
//! PAM_SERVICE_ERR), so a typo never silently changes what the module does.

use gatehouse_common::types::Method;
use gatehouse_local::{CALLER_TIMEOUT, DEFAULT_SOCKET_PATH};
use std::path::PathBuf;
use std::time::Duration;

/// The PAM services the module knows without a `method=` option, and the route method each
/// one is asked about.
pub const DEFAULT_METHODS: [(&str, Method); 6] = [
    ("sshd", Method::Ssh),
    ("login", Method::Login),
    ("su", Method::Su),
    ("su-l", Method::Su),
    ("sudo", Method::Sudo),
    ("sudo-i", Method::Sudo),
];

/// The account sudo is asked about when the target is unknown to PAM (`root`): sudo starts PAM
/// for the invoking user and never tells it the account it will run as, so a route for sudo
/// names root (`SUDO:+web->root@+web`) and sudoers decides the rest.
pub const DEFAULT_SUDO_TARGET: &str = "root";

/// Most `method=` options (64): a service file lists a handful.
pub const MAX_METHOD_OPTIONS: usize = 64;

/// Parsed module arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Only use the password an earlier module stored (PAM_AUTHTOK); never prompt.
    pub use_first_pass: bool,
    /// Use a stored password if there is one, else prompt.
    pub try_first_pass: bool,
    /// In a password change, the new password is the one an earlier module (pam_pwquality)
    /// stored as PAM_AUTHTOK; never prompt for it.
    pub use_authtok: bool,
    /// A user Gatehouse does not know gets PAM_IGNORE, so local accounts (root, service
    /// users) go on to the next module.
    pub ignore_unknown_user: bool,
    /// The agent's socket (`socket=PATH`).
    pub socket: PathBuf,
    /// How long to wait for the agent (`timeout=SECONDS`); never below
    /// [`gatehouse_local::MAX_AGENT_DEADLINE`] + 1 s, so the agent's own failover always ends
    /// first.
    pub timeout: Duration,
    /// PAM service → route method, the defaults overridden by `method=SERVICE:METHOD`.
    pub methods: Vec<(String, Method)>,
    /// The method of a service not listed (`default_method=METHOD`); `None`: such a service
    /// is refused with PAM_SERVICE_ERR.
    pub default_method: Option<Method>,
    /// The target account of a sudo request (`sudo_target=USER`).
    pub sudo_target: String,
    /// Log every decision (`debug`).
    pub debug: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            use_first_pass: false,
            try_first_pass: false,
            use_authtok: false,
            ignore_unknown_user: false,
            socket: PathBuf::from(DEFAULT_SOCKET_PATH),
            timeout: CALLER_TIMEOUT,
            methods: DEFAULT_METHODS
                .iter()
                .map(|(s, m)| (s.to_string(), *m))
                .collect(),
            default_method: None,
            sudo_target: DEFAULT_SUDO_TARGET.to_string(),
            debug: false,
        }
    }
}

impl Options {
    /// Parses the module's arguments.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Options, String> {
        let mut options = Options::default();
        let mut method_options = 0;
        for arg in args {
            let (word, value) = match arg.split_once('=') {
                Some((w, v)) => (w, Some(v)),
                None => (arg, None),
            };
            match (word, value) {
                ("use_first_pass", None) => options.use_first_pass = true,
                ("try_first_pass", None) => options.try_first_pass = true,
                ("use_authtok", None) => options.use_authtok = true,
                ("ignore_unknown_user", None) => options.ignore_unknown_user = true,
                ("debug", None) => options.debug = true,
                ("socket", Some(path)) if path.starts_with('/') => {
                    options.socket = PathBuf::from(path)
                }
                ("timeout", Some(secs)) => {
                    let secs: u64 = secs
                        .parse()
                        .map_err(|_| format!("{arg}: expected whole seconds"))?;
                    options.timeout = Duration::from_secs(secs).max(CALLER_TIMEOUT);
                }
                ("method", Some(pair)) => {
                    method_options += 1;
                    if method_options > MAX_METHOD_OPTIONS {
                        return Err(format!("more than {MAX_METHOD_OPTIONS} method= options"));
                    }
                    let (service, method) = pair
                        .split_once(':')
                        .ok_or_else(|| format!("{arg}: expected method=SERVICE:METHOD"))?;
                    let method = parse_method(arg, method)?;
                    options.methods.retain(|(s, _)| s != service);
                    options.methods.push((service.to_string(), method));
                }
                ("default_method", Some(method)) => {
                    options.default_method = Some(parse_method(arg, method)?)
                }
                ("sudo_target", Some(user)) if !user.is_empty() => {
                    options.sudo_target = user.to_string()
                }
                _ => return Err(format!("unknown or malformed module argument `{arg}`")),
            }
        }
        if options.use_first_pass && options.try_first_pass {
            return Err("use_first_pass and try_first_pass exclude each other".into());
        }
        Ok(options)
    }

    /// The route method for PAM service `service`.
    pub fn method_of(&self, service: &str) -> Option<Method> {
        self.methods
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, m)| *m)
            .or(self.default_method)
    }
}

fn parse_method(arg: &str, name: &str) -> Result<Method, String> {
    Method::from_name(name)
        .ok_or_else(|| format!("{arg}: unknown method `{name}` (LOGIN, SSH, SU or SUDO)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_map_the_usual_services() {
        let o = Options::parse([]).unwrap();
        assert_eq!(o.method_of("sshd"), Some(Method::Ssh));
        assert_eq!(o.method_of("su"), Some(Method::Su));
        assert_eq!(o.method_of("sudo"), Some(Method::Sudo));
        assert_eq!(o.method_of("login"), Some(Method::Login));
        assert_eq!(o.method_of("cron"), None);
        assert_eq!(o.timeout, CALLER_TIMEOUT);
        assert_eq!(o.socket, PathBuf::from("/run/gatehouse/agent.sock"));
    }

    #[test]
    fn options_override_and_add() {
        let o = Options::parse([
            "use_first_pass",
            "ignore_unknown_user",
            "method=sshd:LOGIN",
            "method=gdm:login",
            "default_method=SU",
            "socket=/tmp/a.sock",
            "timeout=1",
            "sudo_target=admin",
        ])
        .unwrap();
        assert!(o.use_first_pass && o.ignore_unknown_user && !o.try_first_pass);
        assert_eq!(o.method_of("sshd"), Some(Method::Login));
        assert_eq!(o.method_of("gdm"), Some(Method::Login));
        assert_eq!(o.method_of("cron"), Some(Method::Su));
        assert_eq!(o.socket, PathBuf::from("/tmp/a.sock"));
        // Never shorter than the agent's longest deadline allows.
        assert_eq!(o.timeout, CALLER_TIMEOUT);
        assert_eq!(o.sudo_target, "admin");
    }

    #[test]
    fn bad_words_are_named() {
        for (args, expected) in [
            (
                &["use_frist_pass"][..],
                "unknown or malformed module argument `use_frist_pass`",
            ),
            (&["method=sshd"], "expected method=SERVICE:METHOD"),
            (&["method=sshd:TELNET"], "unknown method `TELNET`"),
            (
                &["socket=relative"],
                "malformed module argument `socket=relative`",
            ),
            (&["timeout=soon"], "expected whole seconds"),
            (&["use_first_pass", "try_first_pass"], "exclude each other"),
        ] {
            let err = Options::parse(args.iter().copied()).unwrap_err();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }
}

#[cfg(test)]
mod conf_tests {
    use super::*;

    /// Every pam_gatehouse line in the conf/pam.d examples parses.
    #[test]
    fn the_example_service_files_use_valid_arguments() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/pam.d");
        let mut lines = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let Some(at) = words.iter().position(|w| w.ends_with("pam_gatehouse.so")) {
                    let args = words.get(at + 1..).unwrap_or_default().iter().copied();
                    Options::parse(args)
                        .unwrap_or_else(|e| panic!("{}: {line}: {e}", path.display()));
                    lines += 1;
                }
            }
        }
        assert!(
            lines >= 7,
            "expected the sshd, su and sudo examples, found {lines} lines"
        );
    }
}
