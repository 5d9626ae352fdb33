//! Shared by the benchmarks: the data they run on, CPU-time measurement, and a
//! throwaway test server.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bson::{Binary, DateTime, Decimal128, doc, oid::ObjectId, spec::BinarySubtype};

/// A small deterministic generator (xorshift), so every run measures the same bytes.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const WORDS: [&str; 26] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];

fn words(r: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| WORDS[r.below(26) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Documents shaped like `../shared/bench/gen_dataset.py` (users, orders, blobs,
/// events in its proportions), about `target` bytes of raw BSON, concatenated.
/// Used when no real dataset is given.
pub fn synthetic(target: usize) -> Vec<u8> {
    let mut r = Rng::new(7);
    let mut out = Vec::with_capacity(target + (1 << 20));
    let epoch = 1_577_836_800_000i64;
    let mut i = 0u64;
    while out.len() < target {
        let d = match i % 20 {
            0..=4 => {
                let bio_len = 10 + r.below(50) as usize;
                let bio = words(&mut r, bio_len);
                doc! {
                    "_id": ObjectId::from_bytes({ let mut b = [0u8; 12]; b[..8].copy_from_slice(&r.next().to_be_bytes()); b }),
                    "email": format!("user{i}@example{}.com", r.below(100)),
                    "name": {"first": WORDS[r.below(26) as usize], "last": WORDS[r.below(26) as usize]},
                    "age": (18 + r.below(72)) as i32,
                    "country": (["DE", "FR", "US", "JP", "BR", "IN"][r.below(6) as usize]),
                    "tags": (0..1 + r.below(5)).map(|_| WORDS[r.below(26) as usize]).collect::<Vec<_>>(),
                    "created": DateTime::from_millis(epoch + r.below(100_000_000_000) as i64),
                    "balance": format!("{}.{:02}", r.below(10_000_000), r.below(100)).parse::<Decimal128>().unwrap(),
                    "score": (r.below(1_000_000) as f64) / 1000.0,
                    "visits": r.below(1_000_000_000_000) as i64,
                    "address": {"street": format!("{} {} street", r.below(999), WORDS[r.below(26) as usize]), "zip": format!("{:05}", r.below(100_000)),
                                "geo": {"type": "Point", "coordinates": [r.below(360) as f64 - 180.0, r.below(180) as f64 - 90.0]}},
                    "bio": bio,
                }
            }
            5..=18 => doc! {
                "_id": i as i64,
                "user_id": r.below(1_000_000) as i32,
                "ts": DateTime::from_millis(epoch + i as i64 * 37),
                "status": (["new", "paid", "shipped", "delivered", "returned"][r.below(5) as usize]),
                "items": (0..1 + r.below(3)).map(|_| doc! {"sku": format!("SKU-{}", r.below(100_000)), "qty": (1 + r.below(4)) as i32, "price": r.below(50_000) as f64 / 100.0}).collect::<Vec<_>>(),
                "total": r.below(200_000) as f64 / 100.0,
            },
            _ => {
                let mut data = r.bytes(8192);
                let w = WORDS[r.below(26) as usize].repeat(8192 / 4 + 1);
                data.extend_from_slice(&w.as_bytes()[..8192]);
                doc! {"_id": format!("blob-{i:08}"), "name": format!("file{i}.bin"), "len": 16384,
                "data": Binary { subtype: BinarySubtype::Generic, bytes: data }}
            }
        };
        out.extend(bson::serialize_to_vec(&d).expect("serialize"));
        i += 1;
    }
    out
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
            "synthetic documents shaped like gen_dataset.py ({} MB)",
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

/// Loads `gen_dataset.py --scale scale` into the server.
pub fn load_dataset(uri: &str, scale: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/gen_dataset.py");
    let st = std::process::Command::new("python3")
        .arg(script)
        .arg(uri)
        .args(["--scale", scale])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 gen_dataset.py (run scripts/setup for pymongo)");
    assert!(st.success(), "loading the dataset failed");
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
