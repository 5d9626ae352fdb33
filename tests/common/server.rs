//! The MongoDB server the integration tests run against, and the async plumbing to talk
//! to it from plain `#[test]` functions.
//!
//! By default the test binary starts one SecantusDB (a real MongoDB wire-protocol server,
//! installed by `scripts/setup`) on an ephemeral port, with its storage in a fresh
//! temporary directory, the first time a test asks for [`server`]. With `MONGODB_URI` set,
//! the tests use that server instead and start nothing; they then must only touch
//! databases they created ([`super::unique_db`], [`super::DbGuard`]).

use std::fs::{self, File};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bson::doc;
use mongodb::Client;
use mongodb::options::ClientOptions;

/// How long a starting server may take to print its port, and then to answer `ping`.
/// Generous: on a 2-core machine the tests often start while other builds are running.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The server the tests use.
pub struct TestServer {
    /// Connection string. For the local server it includes `directConnection=true`
    /// (SecantusDB advertises itself as a single-node replica set).
    pub uri: String,
    /// True when the server is the user's own (`MONGODB_URI`), not one started here.
    pub external: bool,
    /// The local server's temporary directory: `data/` (storage), `stdout.log` and
    /// `server.log` (stderr). `None` for an external server.
    pub dir: Option<PathBuf>,
    /// The local server's process id.
    pub pid: Option<u32>,
    /// Write end of the watchdog's stdin. It is never written to and never dropped (this
    /// lives in a static): the kernel closes it when the test process exits, however it
    /// exits, and that end-of-file is the watchdog's signal to stop the server.
    _watchdog_pipe: Option<ChildStdin>,
}

/// The outcome of starting the server. A failed start is remembered rather than retried,
/// so one broken setup gives one clear message per test instead of a fresh 60-second
/// timeout per test.
static SERVER: OnceLock<Result<TestServer, String>> = OnceLock::new();

/// The server, started on first use and shared by every test of this binary.
///
/// Panics (in every test that asks, with the same message) if it cannot be started.
pub fn server() -> &'static TestServer {
    let started = SERVER.get_or_init(|| match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => external(uri),
        _ => start_local(),
    });
    match started {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

/// Whether [`server`] has been asked for and is up, without starting it.
pub fn is_up() -> bool {
    matches!(SERVER.get(), Some(Ok(_)))
}

/// Uses the user's server from `MONGODB_URI`, after checking that it answers.
fn external(uri: String) -> Result<TestServer, String> {
    wait_for_ping(&uri, Instant::now() + Duration::from_secs(30))
        .map_err(|e| format!("the server of MONGODB_URI does not answer ping: {e}"))?;
    Ok(TestServer {
        uri,
        external: true,
        dir: None,
        pid: None,
        _watchdog_pipe: None,
    })
}

/// Where `secantusd-rs` is: `$SECANTUSD`, then the cache `scripts/setup` installs into,
/// then `PATH`. The same search as `secantus_bin` in `scripts/lib.sh`.
pub(super) fn secantus_bin() -> Result<PathBuf, String> {
    const HINT: &str = "run scripts/setup to install it, or set SECANTUSD to its path, \
                        or set MONGODB_URI to use a MongoDB server of your own";
    if let Some(path) = std::env::var_os("SECANTUSD").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "SECANTUSD={} is not a file; {HINT}",
                path.display()
            ))
        };
    }
    let cache = match std::env::var_os("OXIDUMP_CACHE").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/oxidump"),
    };
    let cached = cache.join("secantus/bin/secantusd-rs");
    if cached.is_file() {
        return Ok(cached);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("secantusd-rs"))
        .find(|p| p.is_file());
    on_path.ok_or_else(|| {
        format!(
            "the test server secantusd-rs is not installed (looked in $SECANTUSD, {}, PATH); {HINT}",
            cached.display()
        )
    })
}

/// Starts a SecantusDB on an ephemeral port and waits until it answers `ping`.
fn start_local() -> Result<TestServer, String> {
    let bin = secantus_bin()?;
    // Kept on disk (not a self-deleting TempDir): statics are never dropped, and the
    // server must be gone before its storage is removed. The watchdog removes it.
    let dir = tempfile::Builder::new()
        .prefix("oxidump-test-server-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory for the test server: {e}"))?
        .keep();
    let stdout_path = dir.join("stdout.log");
    let log_path = dir.join("server.log");
    let create = |path: &Path| {
        File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
    };
    // Files rather than pipes: nothing has to keep draining them for the server to make
    // progress, and they are still there to quote when the start fails.
    let mut child = Command::new(&bin)
        .arg("--port")
        .arg("0")
        .arg("--storage-path")
        .arg(dir.join("data"))
        .args(["--cache-size", "512M", "--log-level", "WARNING"])
        .stdin(Stdio::null())
        .stdout(create(&stdout_path)?)
        .stderr(create(&log_path)?)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let pid = child.id();

    // Statics are never dropped, so nothing in this process can stop the server when the
    // tests end, and a panicking or killed test process could not anyway. A separate
    // watchdog process does it: it waits for end-of-file on its stdin, whose write end
    // only this process holds (Rust opens every descriptor close-on-exec, so programs the
    // tests spawn do not inherit it). End-of-file comes when this process exits for any
    // reason, SIGKILL included; the watchdog then stops the server (SIGTERM, then SIGKILL
    // after 5 s) and removes its directory. It runs in its own process group so a Ctrl-C
    // or a group kill aimed at the tests cannot take it down before it has cleaned up.
    const WATCHDOG: &str = r#"
        trap '' HUP INT
        while read -r _; do :; done
        kill "$1" 2>/dev/null
        i=0
        while kill -0 "$1" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$1" 2>/dev/null
        rm -rf "$2"
    "#;
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("oxidump-test-watchdog")
        .arg(pid.to_string())
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let pipe = match watchdog {
        Ok(mut watchdog) => watchdog.stdin.take().expect("watchdog stdin is piped"),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_dir_all(&dir);
            return Err(format!("cannot start the test server's watchdog (sh): {e}"));
        }
    };

    // From here on, an early return drops `pipe`, and the watchdog cleans up.
    let failed = |what: String| {
        let read = |path: &Path| fs::read_to_string(path).unwrap_or_default();
        format!(
            "test server {} (pid {pid}) {what}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            bin.display(),
            read(&stdout_path),
            read(&log_path),
        )
    };
    let deadline = Instant::now() + START_TIMEOUT;
    // It prints `secantusd-rs listening on 127.0.0.1:PORT` once bound.
    let addr = loop {
        let out = fs::read_to_string(&stdout_path).unwrap_or_default();
        if let Some(addr) = out
            .lines()
            .find_map(|line| line.split_once("listening on ").map(|(_, a)| a.trim()))
        {
            break addr.to_string();
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(failed(format!("exited ({status}) before listening")));
        }
        if Instant::now() > deadline {
            return Err(failed(format!("printed no port within {START_TIMEOUT:?}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let uri = format!("mongodb://{addr}/?directConnection=true");
    if let Err(e) = wait_for_ping(&uri, deadline) {
        return Err(failed(format!(
            "listens on {addr} but does not answer ping: {e}"
        )));
    }
    Ok(TestServer {
        uri,
        external: false,
        dir: Some(dir),
        pid: Some(pid),
        _watchdog_pipe: Some(pipe),
    })
}

/// Pings until the server answers or `deadline` passes; the last error otherwise.
pub(super) fn wait_for_ping(uri: &str, deadline: Instant) -> Result<(), String> {
    block_on(async {
        let mut options = ClientOptions::parse(uri).await.map_err(|e| e.to_string())?;
        options.server_selection_timeout = Some(Duration::from_secs(2));
        options.connect_timeout = Some(Duration::from_secs(2));
        let client = Client::with_options(options).map_err(|e| e.to_string())?;
        loop {
            match client
                .database("admin")
                .run_command(doc! { "ping": 1 })
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e.to_string()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// The runtime every helper's async work runs on, shared by all tests.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-runtime")
            .enable_all()
            .build()
            .expect("cannot build the tests' tokio runtime")
    })
}

/// Runs a future to completion on the shared runtime.
///
/// For plain `#[test]` functions: like any `block_on`, it panics when called from inside
/// async code, so fetch [`client`] and the like before entering an `async` block.
pub fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// A client of [`server`] (a cheap clone of one shared client). Its background tasks run
/// on the shared runtime, so it works from any runtime or none.
pub fn client() -> Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let uri = &server().uri;
            block_on(Client::with_uri_str(uri))
                .unwrap_or_else(|e| panic!("cannot create a client of the test server: {e}"))
        })
        .clone()
}
