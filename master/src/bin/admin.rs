//! gatehouse-admin: changes and inspects the security database through the master's local
//! admin socket. See `gatehouse-admin --help` and docs/ADMIN.md. Exit status: 0 ok, 1 refused
//! by the master, 2 usage error (or an unusable local file), 3 cannot reach the master.

use gatehouse_common::cli::{exit_for, print_generated, ManSection};
use gatehouse_common::os::peer::AllowedUids;
use gatehouse_common::os::secure_file::{create_private_file, Existing};
use gatehouse_master::admin::cli::{
    self, Command, Invocation, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE,
};
use gatehouse_master::admin::client::{AdminClient, ConnectError};
use gatehouse_master::admin::output::{progress_line, render, render_json};
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse, IMPORT_CHUNK_BYTES};
use gatehouse_master::admin::tty::new_password;
use gatehouse_master::audit::AuditQuery;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How often `audit --follow` asks for new records (500 ms).
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Why the command failed, which decides the exit status.
enum Failure {
    Usage(String),
    Unreachable(String),
    Refused(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invocation = match cli::parse(&args) {
        Ok(invocation) => invocation,
        Err(e) => return exit_for(&e, EXIT_USAGE),
    };
    match run(invocation) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("gatehouse-admin: {m}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Unreachable(m)) => {
            eprintln!("gatehouse-admin: {m}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        Err(Failure::Refused(m)) => {
            eprintln!("gatehouse-admin: refused: {m}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

fn connect(socket: &Path, expected: &AllowedUids) -> Result<AdminClient, Failure> {
    AdminClient::connect_expecting(socket, expected).map_err(|e| match e {
        ConnectError::Io(e) => Failure::Unreachable(format!(
            "cannot reach the master at {}: {e}",
            socket.display()
        )),
        ConnectError::Untrusted(e) => Failure::Unreachable(format!(
            "{e}. If the master runs as another user, name its uid with --master-uid"
        )),
    })
}

/// Sends one request on `client`; an error response becomes `Refused`.
fn ask(client: &mut AdminClient, request: &AdminRequest) -> Result<AdminResponse, Failure> {
    match client.request(request) {
        Ok(AdminResponse::Error { message, .. }) => Err(Failure::Refused(message)),
        Ok(response) => Ok(response),
        Err(e) => Err(Failure::Unreachable(format!("lost the master: {e}"))),
    }
}

/// Creates a file only the owner can read (keys, exports with password hashes), 0600 from
/// the moment it exists.
fn create_private(path: &Path, new: bool) -> Result<std::fs::File, Failure> {
    let existing = if new {
        Existing::Refuse
    } else {
        Existing::Replace
    };
    create_private_file(path, existing)
        .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", path.display())))
}

fn run(invocation: Invocation) -> Result<(), Failure> {
    let socket = invocation.socket;
    let expected = AllowedUids::for_this_process(invocation.master_uid.as_slice());
    let connect = |socket: &Path| connect(socket, &expected);
    let json = invocation.json;
    match invocation.command {
        Command::Generate(what) => {
            if print_generated(cli::command(), ManSection::Admin, what) != ExitCode::SUCCESS {
                return Err(Failure::Usage("cannot write to standard output".into()));
            }
        }
        Command::Send(request) => {
            let response = ask(&mut connect(&socket)?, &request)?;
            print_answer(&response, json);
        }
        Command::HostAdd { request, key_file } => {
            // Create the key file first: if it cannot be written, nothing is registered.
            let mut file = create_private(&key_file, true)?;
            let response = connect(&socket).and_then(|mut c| ask(&mut c, &request));
            let (seq, key) = match response {
                Ok(AdminResponse::HostAdded { seq, node_key }) => (seq, node_key),
                other => {
                    drop(file);
                    let _ = std::fs::remove_file(&key_file);
                    return match other {
                        Err(failure) => Err(failure),
                        Ok(r) => Err(Failure::Refused(format!("unexpected answer {r:?}"))),
                    };
                }
            };
            file.write_all(format!("{key}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    Failure::Usage(format!(
                        "host registered (sequence {seq}) but writing {} failed: {e}; \
                         remove the host and add it again",
                        key_file.display()
                    ))
                })?;
            println!(
                "ok (sequence {seq}); node key written to {} — install it on the host",
                key_file.display()
            );
        }
        Command::Passwd { name } => {
            // On a terminal: asked twice, without echo; otherwise one line of stdin.
            let password = new_password(&name).map_err(|e| Failure::Usage(e.to_string()))?;
            let request = AdminRequest::UserPasswd { name, password };
            let response = ask(&mut connect(&socket)?, &request)?;
            print_answer(&response, json);
        }
        Command::Export { out, force } => {
            // Refused before asking: an export holds every key and hash, and a typo must
            // not replace a backup (or any other file) without --force.
            if let Some(path) = out.as_ref().filter(|p| !force && p.exists()) {
                return Err(Failure::Usage(format!(
                    "{} exists: give --force to overwrite it",
                    path.display()
                )));
            }
            let response = ask(&mut connect(&socket)?, &AdminRequest::Export)?;
            let AdminResponse::Exported { seq, database } = response else {
                return Err(Failure::Refused(format!("unexpected answer {response:?}")));
            };
            let pretty = ron::ser::PrettyConfig::default();
            let text = ron::ser::to_string_pretty(&database, pretty)
                .map_err(|e| Failure::Refused(format!("cannot format the export: {e}")))?;
            let text =
                format!("// Gatehouse security database, exported at sequence {seq}.\n{text}\n");
            match out {
                Some(path) => {
                    let mut file = create_private(&path, !force)?;
                    file.write_all(text.as_bytes())
                        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
                    println!("exported sequence {seq} to {}", path.display());
                }
                None => print!("{text}"),
            }
        }
        Command::Audit { query, follow } => {
            audit(&mut connect(&socket)?, query, follow, json)?;
        }
        Command::Import { file, dry_run } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
            let mut client = connect(&socket)?;
            let mut news = Progress::new("import");
            let pieces = chunks(&text, IMPORT_CHUNK_BYTES);
            let mut sent = 0u64;
            for chunk in pieces {
                ask(
                    &mut client,
                    &AdminRequest::ImportChunk { text: chunk.into() },
                )?;
                sent += chunk.len() as u64;
                news.show("sending", sent, text.len() as u64);
            }
            let file = file.display().to_string();
            let last = if dry_run {
                AdminRequest::ImportDiff { file }
            } else {
                AdminRequest::ImportCommit { file }
            };
            let response = ask_long(&mut client, &last, &mut news)?;
            news.finish();
            print_answer(&response, json);
        }
        Command::Batch { file } => batch(&mut connect(&socket)?, &file)?,
    }
    Ok(())
}

/// Sends a long request, showing the master's progress news on standard error.
fn ask_long(
    client: &mut AdminClient,
    request: &AdminRequest,
    news: &mut Progress,
) -> Result<AdminResponse, Failure> {
    let mut show = |n: &AdminResponse| {
        if let AdminResponse::Progress { stage, done, total } = n {
            news.show(stage, *done, *total);
        }
    };
    match client.request_with_progress(request, &mut show) {
        Ok(AdminResponse::Error { message, .. }) => Err(Failure::Refused(message)),
        Ok(response) => Ok(response),
        Err(e) => Err(Failure::Unreachable(format!("lost the master: {e}"))),
    }
}

/// Requests per `BatchAdd` message: well under the request size cap for any line a person
/// writes (a route with its window is about 200 bytes of RON; the cap is 1 MiB).
const BATCH_REQUESTS_PER_MESSAGE: usize = 100;

/// `batch FILE`: every line a command, all sent as one batch, committed at once.
fn batch(client: &mut AdminClient, file: &Path) -> Result<(), Failure> {
    let text = match file.to_str() {
        Some("-") => std::io::read_to_string(std::io::stdin()),
        _ => std::fs::read_to_string(file),
    }
    .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    let mut requests = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match cli::batch_line(line) {
            Ok(Some(request)) => requests.push(request),
            Ok(None) => {}
            Err(e) => return Err(Failure::Usage(format!("{}:{}: {e}", file.display(), n + 1))),
        }
    }
    let mut news = Progress::new("batch");
    let total = requests.len() as u64;
    let mut sent = 0;
    for piece in requests.chunks(BATCH_REQUESTS_PER_MESSAGE) {
        let add = AdminRequest::BatchAdd {
            requests: piece.to_vec(),
        };
        ask(client, &add)?;
        sent += piece.len() as u64;
        news.show("sending", sent, total);
    }
    let response = ask_long(client, &AdminRequest::BatchCommit, &mut news)?;
    news.finish();
    println!("{} ({total} changes)", render(&response));
    Ok(())
}

/// Progress of a long command on standard error: one line per stage and at most one a
/// second within it, so a log of the command stays short; nothing for a quick one.
struct Progress {
    what: &'static str,
    started: Instant,
    last: Option<(Instant, String)>,
}

/// A command quicker than this shows no progress (1 s).
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

impl Progress {
    fn new(what: &'static str) -> Self {
        Progress {
            what,
            started: Instant::now(),
            last: None,
        }
    }

    fn show(&mut self, stage: &str, done: u64, total: u64) {
        let now = Instant::now();
        let quiet = now.duration_since(self.started) < PROGRESS_AFTER;
        let same_stage = self.last.as_ref().is_some_and(|(at, last)| {
            last == stage && now.duration_since(*at) < Duration::from_secs(1)
        });
        if quiet || same_stage {
            return;
        }
        let elapsed = now.duration_since(self.started).as_secs_f64();
        eprintln!(
            "{}: {} ({elapsed:.1} s)",
            self.what,
            progress_line(stage, done, total)
        );
        self.last = Some((now, stage.to_string()));
    }

    fn finish(&self) {
        if self.last.is_some() {
            let elapsed = self.started.elapsed().as_secs_f64();
            eprintln!("{}: done in {elapsed:.1} s", self.what);
        }
    }
}

/// Prints the audit records `query` selects; with `follow`, then polls for new ones every
/// [`FOLLOW_POLL`] and prints them, until interrupted or standard output is closed (`| head`
/// ends the command quietly).
fn audit(
    client: &mut AdminClient,
    mut query: AuditQuery,
    follow: bool,
    json: bool,
) -> Result<(), Failure> {
    loop {
        let request = AdminRequest::Audit {
            query: query.clone(),
        };
        let response = ask(client, &request)?;
        let AdminResponse::AuditRecords(entries) = &response else {
            return Err(Failure::Refused(format!("unexpected answer {response:?}")));
        };
        // Nothing new prints nothing (not an empty line a second).
        if !entries.is_empty() && !print_answer(&response, json) {
            return Ok(());
        }
        if !follow {
            return Ok(());
        }
        match entries.last() {
            Some(last) => query.after_id = Some(last.id),
            // Nothing yet: follow from whatever is stored next.
            None => query.after_id = query.after_id.or(Some(0)),
        }
        // Follow mode polls: new records show within this long.
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Prints an answer: its JSON with `--json` (when it has data; audit records as JSON lines),
/// else its text; warnings go to standard error, so a script reading the output sees only
/// the answer. False when standard output is closed.
fn print_answer(response: &AdminResponse, json: bool) -> bool {
    if let AdminResponse::Warned { warnings, .. } = response {
        for warning in warnings {
            eprintln!("gatehouse-admin: warning: {warning}");
        }
    }
    let text = render_json(response)
        .filter(|_| json)
        .unwrap_or_else(|| render(response));
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
}

/// Splits `text` into pieces of at most `max` bytes, on character boundaries.
fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out
}
