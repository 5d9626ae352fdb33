//! Helpers shared by the integration tests: the test server ([`server`]), database names
//! that cannot collide ([`unique_db`], [`DbGuard`]), content digests comparable with the
//! fixtures' manifests, and running the `oxidump` binary.

pub mod private_server;
pub mod server;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bson::doc;

pub use server::{TestServer, block_on, client, server};

/// Longest database name [`unique_db`] returns: the smallest limit among the servers
/// and tools users may run the tests against.
const MAX_DB_NAME: usize = 38;

/// A database name no other test, and no other run of the tests, uses: `prefix` (cut
/// short, and stripped of characters a database name cannot hold) followed by a suffix
/// made of the process id, a time-based salt and a per-process counter. At most 38 bytes.
pub fn unique_db(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static RUN: OnceLock<String> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!(
            "{}{}",
            base36(std::process::id()),
            base36(nanos % 36u32.pow(3))
        )
    });
    let suffix = format!("_{run}_{}", base36(COUNTER.fetch_add(1, Ordering::Relaxed)));
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(MAX_DB_NAME.saturating_sub(suffix.len()))
        .collect();
    prefix + &suffix
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

/// Databases a test creates, dropped (best effort) when the guard goes out of scope,
/// whether the test passes or panics: tests against a user's own server (`MONGODB_URI`)
/// must leave it as they found it. Users and roles defined in those databases are
/// dropped too (`dropDatabase` alone keeps them).
pub struct DbGuard {
    names: Vec<String>,
}

impl DbGuard {
    /// A guard over one fresh database named by [`unique_db`]`(prefix)`.
    pub fn new(prefix: &str) -> Self {
        Self {
            names: vec![unique_db(prefix)],
        }
    }

    /// The first database's name.
    pub fn name(&self) -> &str {
        &self.names[0]
    }

    /// Another fresh database, dropped with the others.
    pub fn add(&mut self, prefix: &str) -> String {
        let name = unique_db(prefix);
        self.names.push(name.clone());
        name
    }

    /// Also drop `name`, a database the test creates under a name of its own making
    /// (for example one derived from a guarded name).
    pub fn track(&mut self, name: impl Into<String>) {
        self.names.push(name.into());
    }
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.names);
        if !server::is_up() {
            return; // nothing can have been created
        }
        // On a thread of its own: a guard may be dropped inside async code, where
        // `block_on` panics, or while unwinding from a failed assertion, where a second
        // panic would abort the whole test binary. A failure here is only reported.
        let dropped = std::thread::spawn(move || {
            let client = client();
            block_on(async {
                for name in names {
                    let db = client.database(&name);
                    // Users and roles may not exist or be supported; best effort.
                    let _ = db.run_command(doc! { "dropAllUsersFromDatabase": 1 }).await;
                    let _ = db.run_command(doc! { "dropAllRolesFromDatabase": 1 }).await;
                    if let Err(e) = db.drop().await {
                        eprintln!("warning: could not drop test database {name}: {e}");
                    }
                }
            })
        })
        .join();
        if dropped.is_err() {
            eprintln!("warning: could not drop the test databases (see the panic above)");
        }
    }
}

/// Count and hex sha256 of a collection's documents ([`oxidump_sample::digest`]): the raw
/// bytes of every document, sorted bytewise, concatenated. Equal digests mean the same
/// documents, byte for byte, in any order; the fixtures' `manifest.json` uses the same.
pub fn collection_digest(db: &str, coll: &str) -> (u64, String) {
    let database = client().database(db);
    let d = block_on(oxidump_sample::digest::collection_digest(&database, coll))
        .unwrap_or_else(|e| panic!("cannot read {db}.{coll}: {e}"));
    (d.count, d.sha256)
}

/// [`collection_digest`] of a list of raw BSON documents.
pub fn docs_digest(docs: impl IntoIterator<Item = Vec<u8>>) -> (u64, String) {
    let d = oxidump_sample::digest::docs_digest(docs);
    (d.count, d.sha256)
}

/// A path under the repository's test fixtures (`tests/fixtures/`), for example
/// `mongodump-100.18/manifest.json`: real mongodump 100.18 output and its manifest.
pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

/// Loads the BSON edge-case corpus ([`oxidump_sample::edge`]: every BSON type, every
/// collection shape) into `db` on the test server, replacing whatever `db` held, and
/// returns its manifest: `{"<db>.<coll>": {"count": N, "sha256": HEX}}`, and
/// `{"type": "view"}` for views.
pub fn load_edge_corpus(db: &str) -> serde_json::Value {
    let client = client();
    block_on(oxidump_sample::edge::load(
        &client,
        db,
        oxidump_sample::edge::SEED,
    ))
    .unwrap_or_else(|e| panic!("cannot load the edge-case corpus into {db}: {e}"))
}

/// The `oxidump` binary under test. `MONGODB_URI` is removed from its environment (the
/// CLI reads `--uri` from it), so a test behaves the same whichever server it runs
/// against: give it `--uri` explicitly.
pub fn oxidump() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxidump"));
    cmd.env_remove("MONGODB_URI");
    cmd
}

/// Runs `cmd` to completion, its standard input empty, and returns its exit code (-1 if
/// a signal ended it), standard output and standard error (lossily decoded). Panics with
/// the command line and both outputs when the exit code is not `expected_code`.
pub fn run(cmd: &mut Command, expected_code: i32) -> (i32, String, String) {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if code != expected_code {
        panic!(
            "{shown}\n{} (expected exit code {expected_code})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            out.status
        );
    }
    (code, stdout, stderr)
}

/// A run of the binary held at a fault point (`OXIDUMP_FAULT_HOLD`, see
/// `oxidump::fault`): started with its standard error piped, and returned once it says
/// it holds there, so that a test stops or kills it at a known point of its work.
pub struct Held {
    /// The process.
    pub child: std::process::Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    /// What it printed on standard error up to the hold.
    pub before: String,
}

impl Held {
    /// Starts `cmd` with `OXIDUMP_FAULT_HOLD=point` and waits until it holds there.
    /// Panics with what it printed when it ends first.
    // The child is waited for by `Held` (`signal`, or its `Drop`).
    #[allow(clippy::zombie_processes)]
    pub fn start(cmd: &mut Command, point: &str) -> Held {
        use std::io::BufRead as _;
        let mut child = cmd
            .env("OXIDUMP_FAULT_HOLD", point)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let name = point.split(':').next().unwrap_or(point);
        let mut before = String::new();
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                let status = child.wait();
                panic!("ended ({status:?}) before holding at {point}:\n{before}");
            }
            if line.starts_with(&format!("oxidump: fault hold: {name} ")) {
                return Held {
                    child,
                    stderr,
                    before,
                };
            }
            before.push_str(&line);
        }
    }

    /// Sends `sig` (`INT`, `TERM`, `HUP`, `KILL`…) and waits for the end: the exit
    /// code (`None` when a signal ended it) and the rest of standard error.
    pub fn signal(mut self, sig: &str) -> (Option<i32>, String) {
        use std::io::Read as _;
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig}");
        let mut rest = String::new();
        let _ = self.stderr.read_to_string(&mut rest);
        let status = self.child.wait().expect("wait");
        (status.code(), rest)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
