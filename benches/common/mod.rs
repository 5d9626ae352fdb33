//! Shared by the benchmarks: the data they run on, CPU-time measurement, and a
//! throwaway test server.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// About `target` bytes of raw BSON documents shaped like the sample dataset
/// ([`oxidump_sample::dataset`]: users, orders, blobs in its proportions), concatenated.
/// Used when no real dataset is given.
pub fn synthetic(target: usize) -> Vec<u8> {
    oxidump_sample::dataset::synthetic(target, 7)
}

/// The benchmark corpus: the documents of the backup named by `OXIDUMP_BENCH_DATA`
/// (any format oxidump reads), else `synthetic(default_bytes)`. Returns the bytes and
/// a label saying which.
pub fn corpus(default_bytes: usize) -> (Vec<u8>, String) {
    if let Ok(p) = std::env::var("OXIDUMP_BENCH_DATA") {
        let mut src =
            oxidump::commands::open_source(Path::new(&p)).expect("open OXIDUMP_BENCH_DATA");
        let mut out = Vec::new();
        while let Some(c) = src.next_chunk().expect("read OXIDUMP_BENCH_DATA") {
            if let oxidump::source::Chunk::Docs { data, .. } = c {
                out.extend(data);
            }
        }
        return (out, format!("documents of {p}"));
    }
    (
        synthetic(default_bytes),
        format!(
            "synthetic documents shaped like the sample dataset ({} MB)",
            default_bytes >> 20
        ),
    )
}

/// Cuts a run of documents into frame-sized runs.
pub fn frames(data: &[u8], size: usize) -> Vec<(Vec<u8>, u32)> {
    let mut b = oxidump::oxd::frame::FrameBuilder::new(size);
    let mut out = Vec::new();
    for d in oxidump::docs::DocIter::new(data) {
        if let Some(f) = b.push(d.expect("framed")) {
            out.push(f);
        }
    }
    out.extend(b.take());
    out
}

/// CPU time (user + system) of the calling thread.
pub fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    cpu_of_stat(&s)
}

/// CPU time (user + system) of the whole process.
pub fn process_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    cpu_of_stat(&s)
}

/// CPU time (user + system) of process `pid`.
pub fn pid_cpu(pid: u32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    cpu_of_stat(&s)
}

fn cpu_of_stat(s: &str) -> Duration {
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 here.
    let t = ticks(11) + ticks(12);
    Duration::from_millis(t * 10)
}

/// Runs `f` and returns (its result, wall time, CPU time of the whole process, every
/// thread included).
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (c0, w0) = (process_cpu(), Instant::now());
    let r = f();
    (r, w0.elapsed(), process_cpu().saturating_sub(c0))
}

/// What `/usr/bin/time` reports for a child.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChildCost {
    pub wall: f64,
    pub cpu: f64,
    pub max_rss_kb: u64,
}

/// Runs a command under `/usr/bin/time` and returns its cost; panics with its output on failure.
pub fn run_measured(args: &[&str], envs: &[(&str, &str)]) -> ChildCost {
    let mut c = std::process::Command::new("/usr/bin/time");
    c.arg("-f").arg("OXIDUMP-TIME %e %U %S %M").args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c
        .output()
        .expect("run /usr/bin/time (install the `time` package)");
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        panic!(
            "{args:?} failed:\n{}\n{err}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let line = err
        .lines()
        .rev()
        .find(|l| l.starts_with("OXIDUMP-TIME"))
        .expect("time output");
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    ChildCost {
        wall: v[0],
        cpu: v[1] + v[2],
        max_rss_kb: v[3] as u64,
    }
}

/// A throwaway SecantusDB server, or the server of `OXIDUMP_BENCH_URI`.
pub struct BenchServer {
    pub uri: String,
    pub pid: Option<u32>,
    child: Option<std::process::Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn secantus() -> PathBuf {
    if let Ok(p) = std::env::var("SECANTUSD") {
        return p.into();
    }
    let cache = std::env::var("OXIDUMP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/oxidump")
        });
    cache.join("secantus/bin/secantusd-rs")
}

/// Starts a server (unless `OXIDUMP_BENCH_URI` names one).
pub fn server() -> BenchServer {
    if let Ok(uri) = std::env::var("OXIDUMP_BENCH_URI") {
        return BenchServer {
            uri,
            pid: None,
            child: None,
            _dir: None,
        };
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("server.log");
    let child = std::process::Command::new(secantus())
        .args(["--port", "0", "--log-level", "WARNING", "--storage-path"])
        .arg(dir.path().join("data"))
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start secantusd-rs (run scripts/setup)");
    let pid = child.id();
    let started = Instant::now();
    let port = loop {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&log) {
            let _ = f.read_to_string(&mut s);
        }
        if let Some(p) = s
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        {
            break p.rsplit(':').next().unwrap_or("").to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(300));
    BenchServer {
        uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
        pid: Some(pid),
        child: Some(child),
        _dir: Some(dir),
    }
}

/// Loads the sample dataset ([`oxidump_sample::dataset`]) at `scale` into the server,
/// with a progress bar.
pub fn load_dataset(uri: &str, scale: &str) {
    let scale: f64 = scale
        .parse()
        .unwrap_or_else(|_| panic!("scale {scale:?} is not a number"));
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
        let opts = oxidump_sample::dataset::DatasetOptions {
            scale,
            progress: true,
            ..Default::default()
        };
        oxidump_sample::dataset::load(&client, &opts)
            .await
            .unwrap_or_else(|e| panic!("loading the sample dataset failed: {e}"));
        client.shutdown().await;
    });
}

/// Drops every database whose name starts with `prefix` (or equals one of `names`).
pub fn drop_databases(uri: &str, prefix: &str, names: &[&str]) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
        let all = client.list_database_names().await.expect("listDatabases");
        for db in all {
            if (!prefix.is_empty() && db.starts_with(prefix)) || names.contains(&db.as_str()) {
                client
                    .database(&db)
                    .drop()
                    .await
                    .unwrap_or_else(|e| panic!("dropping {db}: {e}"));
            }
        }
        client.shutdown().await;
    });
}

/// Whether the binary runs as a benchmark (`cargo bench` passes `--bench`); under
/// `cargo test` the benchmarks only check that they build.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Megabytes (10^6 bytes) per second.
pub fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

/// The catalog of the one namespace the CPU benchmarks put their frames in.
pub fn catalog() -> oxidump::catalog::Catalog {
    oxidump::catalog::Catalog {
        namespaces: vec![oxidump::catalog::Namespace::collection("bench", "data")],
        ..oxidump::catalog::Catalog::default()
    }
}

/// A complete OXD archive, in memory, holding `frames` compressed at `level`.
pub fn archive(frames: &[(Vec<u8>, u32)], level: i32) -> Vec<u8> {
    let opts = oxidump::oxd::writer::WriterOptions {
        level: Some(level),
        ..oxidump::oxd::writer::WriterOptions::default()
    };
    let mut w = oxidump::oxd::writer::OxdWriter::new(Vec::new(), &catalog(), opts).expect("writer");
    for (f, n) in frames {
        w.write_frame(0, f.clone(), *n).expect("frame");
    }
    w.end_namespace(0, &oxidump::catalog::NsStatus::Complete)
        .expect("end");
    w.finish(&oxidump::catalog::Summary::default())
        .expect("finish")
        .0
}

/// Runs `oxidump verify`'s checker over an in-memory archive; panics on any finding.
pub fn verify(archive: &[u8]) {
    let mut rep = oxidump::verify::Report::new("bench.oxd", "oxd");
    oxidump::oxd::check::verify(
        archive,
        Path::new("bench.oxd"),
        &oxidump::verify::VerifyOptions::default(),
        &mut rep,
        &mut |_| {},
    );
    assert!(rep.is_ok(), "{:?}", rep.findings);
}
