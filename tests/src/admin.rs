//! Running the real `gatehouse-admin` binary against a master, and asking the master directly
//! through the admin client library.

use crate::process::{bin_path, run_with_stdin, start_master, MasterFiles, ServerProcess};
use gatehouse_common::policy::Database;
use gatehouse_master::admin::client::AdminClient;
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse, StatusReport};
use std::path::Path;
use std::process::Command;

/// What one `gatehouse-admin` run did.
pub use crate::process::Finished as AdminRun;

/// Runs `gatehouse-admin --socket SOCKET ARGS...`, feeding `stdin`.
pub fn run_admin_on(socket: &Path, args: &[&str], stdin: &str) -> AdminRun {
    let mut command = Command::new(bin_path("gatehouse-admin"));
    command.arg("--socket").arg(socket).args(args);
    run_with_stdin(&mut command, stdin)
}

/// Runs `gatehouse-admin` against `files`' master with no input.
pub fn run_admin(files: &MasterFiles, args: &[&str]) -> AdminRun {
    run_admin_on(&files.socket, args, "")
}

/// Asks the master directly (library client).
pub fn ask(files: &MasterFiles, request: &AdminRequest) -> AdminResponse {
    AdminClient::connect(&files.socket)
        .expect("connect to the admin socket")
        .request(request)
        .expect("admin response")
}

/// The master's status report.
pub fn status(files: &MasterFiles) -> StatusReport {
    match ask(files, &AdminRequest::Status) {
        AdminResponse::Status(report) => report,
        other => panic!("status: {other:?}"),
    }
}

/// A master started for CLI tests, with helpers asserting each command's outcome.
pub struct Admin {
    pub files: MasterFiles,
    _master: ServerProcess,
}

impl Admin {
    /// Starts a fresh master (one worker) in its own directory.
    pub fn start() -> Admin {
        let files = MasterFiles::new("(workers: 1)");
        let master = start_master(&files);
        Admin {
            files,
            _master: master,
        }
    }

    /// A path in the master's directory.
    pub fn path(&self, name: &str) -> String {
        self.files
            .dir
            .path()
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    /// Runs `gatehouse-admin ARGS...`.
    pub fn run(&self, args: &[&str]) -> AdminRun {
        run_admin(&self.files, args)
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "{args:?} failed: {run:?}");
        run.stdout
    }

    /// Runs a command the master must refuse (exit 1) with `message`, changing nothing.
    pub fn refused(&self, args: &[&str], message: &str) {
        let before = status(&self.files).sequence;
        let run = self.run(args);
        assert_eq!(run.code, 1, "{args:?} should be refused: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert_eq!(
            status(&self.files).sequence,
            before,
            "{args:?} changed something"
        );
    }

    /// Runs a command with a usage error (exit 2), changing nothing.
    pub fn usage(&self, args: &[&str], message: &str) {
        let before = status(&self.files).sequence;
        let run = self.run(args);
        assert_eq!(run.code, 2, "{args:?} should be a usage error: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert_eq!(status(&self.files).sequence, before);
    }
}

/// Loads `db` into the master through the admin socket (import).
pub fn import(files: &MasterFiles, db: &Database) {
    let text = ron::to_string(db).unwrap();
    let mut client = AdminClient::connect(&files.socket).unwrap();
    let chunk = AdminRequest::ImportChunk { text };
    assert!(matches!(
        client.request(&chunk).unwrap(),
        AdminResponse::ImportPending { .. }
    ));
    let commit = AdminRequest::ImportCommit {
        file: "test".into(),
    };
    assert!(matches!(
        client.request(&commit).unwrap(),
        AdminResponse::Done { .. }
    ));
}
