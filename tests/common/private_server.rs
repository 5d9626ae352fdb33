//! A SecantusDB instance of a test's own, for what the shared test server cannot do:
//! start with other options (`--auth`), be killed in the middle of a test, or hold a
//! whole server's worth of namespaces that no other test touches.
//!
//! Unlike [`super::server`], it is always a local SecantusDB (also when `MONGODB_URI`
//! is set), found the same way: `$SECANTUSD`, then the cache `scripts/setup` installs
//! into, then `PATH`. Dropping a [`PrivateServer`] kills it and removes its directory;
//! a watchdog process does the same if the test process dies without unwinding.
//!
//! ```ignore
//! let server = PrivateServer::start(&["--auth"]);
//! let client = server.client(); // unauthenticated: the localhost exception applies
//! ```

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use bson::doc;
use mongodb::Client;
use mongodb::options::ClientOptions;

use super::server::{block_on, secantus_bin, wait_for_ping};

/// How long a starting server may take to print its port, and then to answer `ping`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A SecantusDB started for one test, on an ephemeral port, with its storage in a fresh
/// temporary directory.
pub struct PrivateServer {
    child: Child,
    dir: PathBuf,
    addr: String,
    /// Connection string options every client needs (`&tls=true&tlsCAFile=…`).
    uri_params: String,
    /// Write end of the watchdog's stdin: a line means "cleaned up, just exit";
    /// end-of-file without one (this process died) means "kill the server, remove the
    /// directory".
    watchdog: Option<ChildStdin>,
}

impl PrivateServer {
    /// Starts `secantusd-rs --port 0 --storage-path DIR <extra_args>` and waits until it
    /// answers `ping` (which needs no authentication, also with `--auth`). Panics with
    /// the server's output when it cannot be started.
    pub fn start(extra_args: &[&str]) -> PrivateServer {
        PrivateServer::start_with(extra_args, "")
    }

    /// Like [`start`](Self::start), for a server every client must reach with the
    /// connection string options `uri_params` (`&tls=true&tlsCAFile=…` for a server
    /// started with `--tls-cert-file`); they are appended to [`uri`](Self::uri) and
    /// [`uri_with_credentials`](Self::uri_with_credentials).
    pub fn start_with(extra_args: &[&str], uri_params: &str) -> PrivateServer {
        let dir = tempfile::Builder::new()
            .prefix("oxidump-private-server-")
            .tempdir()
            .expect("create a temporary directory for a private server")
            .keep();
        PrivateServer::start_in(dir, extra_args, uri_params)
    }

    /// [`start_with`](Self::start_with) with the storage in `dir` (kept from an earlier run).
    fn start_in(dir: PathBuf, extra_args: &[&str], uri_params: &str) -> PrivateServer {
        PrivateServer::start_on(dir, "0", extra_args, uri_params)
    }

    /// [`start_in`](Self::start_in) on `port` (`0`: an ephemeral one).
    fn start_on(dir: PathBuf, port: &str, extra_args: &[&str], uri_params: &str) -> PrivateServer {
        let bin = secantus_bin().unwrap_or_else(|e| panic!("{e}"));
        let stdout_path = dir.join("stdout.log");
        let log_path = dir.join("server.log");
        let create = |path: &Path| {
            File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
        };
        let child = Command::new(&bin)
            .arg("--port")
            .arg(port)
            .arg("--storage-path")
            .arg(dir.join("data"))
            .args(["--cache-size", "256M", "--log-level", "WARNING"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(create(&stdout_path))
            .stderr(create(&log_path))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let pid = child.id();

        // Stops the server and removes its directory if this process dies without
        // dropping the PrivateServer (SIGKILL, abort). Its own process group, so a
        // Ctrl-C aimed at the tests cannot take it down before it has cleaned up.
        const WATCHDOG: &str = r#"
            trap '' HUP INT
            if read -r _; then exit 0; fi
            kill -9 "$1" 2>/dev/null
            rm -rf "$2"
        "#;
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("oxidump-private-server-watchdog")
            .arg(pid.to_string())
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()
            .and_then(|mut w| w.stdin.take());

        let mut server = PrivateServer {
            child,
            dir,
            addr: String::new(),
            uri_params: uri_params.to_string(),
            watchdog,
        };
        let failed = |server: &PrivateServer, what: String| -> ! {
            let read = |path: &Path| fs::read_to_string(path).unwrap_or_default();
            panic!(
                "private test server {} (pid {pid}) {what}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                bin.display(),
                read(&server.dir.join("stdout.log")),
                read(&server.dir.join("server.log")),
            )
        };
        let deadline = Instant::now() + START_TIMEOUT;
        // It prints `secantusd-rs listening on 127.0.0.1:PORT` once bound.
        server.addr = loop {
            let out = fs::read_to_string(&stdout_path).unwrap_or_default();
            if let Some(addr) = out
                .lines()
                .find_map(|line| line.split_once("listening on ").map(|(_, a)| a.trim()))
            {
                break addr.to_string();
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                failed(&server, format!("exited ({status}) before listening"));
            }
            if Instant::now() > deadline {
                failed(&server, format!("printed no port within {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Err(e) = wait_for_ping(&server.uri(), deadline) {
            failed(&server, format!("does not answer ping: {e}"));
        }
        server
    }

    /// `host:port` it listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Connection string without credentials (`directConnection=true`).
    pub fn uri(&self) -> String {
        format!(
            "mongodb://{}/?directConnection=true{}",
            self.addr, self.uri_params
        )
    }

    /// Connection string with `user` and `password` (percent-encoded as needed),
    /// authenticating against `admin`.
    pub fn uri_with_credentials(&self, user: &str, password: &str) -> String {
        format!(
            "mongodb://{}:{}@{}/?directConnection=true&authSource=admin{}",
            percent_encode(user),
            percent_encode(password),
            self.addr,
            self.uri_params
        )
    }

    /// A client of this server built from `uri` (for example
    /// [`uri_with_credentials`](Self::uri_with_credentials)), usable from plain tests
    /// through [`block_on`].
    pub fn client_for(&self, uri: &str) -> Client {
        block_on(Client::with_uri_str(uri))
            .unwrap_or_else(|e| panic!("cannot create a client of the private server: {e}"))
    }

    /// An unauthenticated client (with `--auth`, enough to create the first user
    /// through the localhost exception).
    pub fn client(&self) -> Client {
        self.client_for(&self.uri())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its temporary directory (`data/`, `stdout.log`, `server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server at once (SIGKILL) and reaps it. The directory stays until drop.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same storage (after [`kill`](Self::kill)), on a
    /// new port: what it held when it was killed is there again.
    pub fn restart(&mut self) {
        self.restart_on("0");
    }

    /// Like [`restart`](Self::restart), on the port it listened on: clients of
    /// [`uri`](Self::uri) reach it again without knowing it went away.
    pub fn restart_on_same_port(&mut self) {
        let port = self
            .addr
            .rsplit_once(':')
            .map(|(_, p)| p.to_string())
            .expect("host:port");
        self.restart_on(&port);
    }

    /// Two servers with one history up to now: this one is stopped, its storage copied
    /// into the storage of a new server, and it is started again (on a new port). What
    /// each is written afterwards, the other does not hold.
    pub fn fork(&mut self) -> PrivateServer {
        self.kill();
        let dir = tempfile::Builder::new()
            .prefix("oxidump-private-server-")
            .tempdir()
            .expect("create a temporary directory for a private server")
            .keep();
        copy_tree(&self.dir.join("data"), &dir.join("data"));
        self.restart();
        PrivateServer::start_in(dir, &[], &self.uri_params.clone())
    }

    fn restart_on(&mut self, port: &str) {
        self.kill();
        let params = self.uri_params.clone();
        let next = PrivateServer::start_on(self.dir.clone(), port, &[], &params);
        // `next` must not be dropped: it would remove the directory.
        let mut next = std::mem::ManuallyDrop::new(next);
        // The new process and its watchdog take the old ones' places; the old watchdog
        // (its server reaped) is told to just exit.
        std::mem::swap(&mut self.child, &mut next.child);
        std::mem::swap(&mut self.watchdog, &mut next.watchdog);
        self.addr = std::mem::take(&mut next.addr);
        if let Some(mut w) = next.watchdog.take() {
            let _ = w.write_all(b"done\n");
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
        // Tell the watchdog everything is cleaned up (the server is reaped: its pid may
        // already belong to another process).
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.write_all(b"done\n");
        }
    }
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for e in fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.expect("a directory entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("a file type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest)
                .unwrap_or_else(|err| panic!("copy {}: {err}", dest.display()));
        }
    }
}

/// Percent-encodes what a connection string's user information cannot hold as is.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
