//! `oxidump oplog follow` against a live server: how many oplog entries per second it
//! archives into a repository, its CPU time and its peak RSS, and how far the archive
//! lags behind a steady write load.
//!
//! Starts a throwaway SecantusDB server (or uses `OXIDUMP_BENCH_URI`), writes
//! `OXIDUMP_BENCH_ENTRIES` inserts (default 90 000, under the server's default oplog
//! cap of 100 000 entries), then:
//!
//! 1. reads the whole oplog once with the driver alone (the baseline: how fast the
//!    server hands out its oplog, no oxidump code), then archives it with
//!    `follow --once`, with the default segment size and with 1 MB segments;
//! 2. runs `follow --segment-span 1s` while a writer inserts
//!    `OXIDUMP_BENCH_RATE` documents per second (default 1 000) for
//!    `OXIDUMP_BENCH_STEADY_SECS` seconds (default 30), and samples four times a
//!    second how many written entries are not sealed yet (the lag, in entries and in
//!    seconds of writes); reports its p50 and maximum, the follower's CPU and its peak
//!    RSS.
//!
//!   cargo bench --bench follow

mod common;

use std::time::{Duration, Instant};

use bson::doc;
use futures_util::TryStreamExt as _;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Entries sealed in the repository at `repo`.
fn sealed_entries(repo: &std::path::Path) -> u64 {
    oxidump::repo::Repo::open(repo)
        .and_then(|r| r.segments())
        .map(|s| {
            s.iter()
                .filter_map(|s| s.meta.as_ref().ok().map(|m| m.count))
                .sum()
        })
        .unwrap_or(0)
}

/// Peak resident set of a running process (`VmHWM`), in KiB.
fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    if !common::benchmarking() {
        return;
    }
    let entries: i64 = env_or("OXIDUMP_BENCH_ENTRIES", 90_000);
    let rate: u64 = env_or("OXIDUMP_BENCH_RATE", 1_000);
    let steady_secs: u64 = env_or("OXIDUMP_BENCH_STEADY_SECS", 30);
    let server = common::server();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = rt.block_on(async {
        let c = mongodb::Client::with_uri_str(&server.uri)
            .await
            .expect("client");
        let coll = c.database("bench").collection::<bson::Document>("follow");
        let mut i = 0;
        while i < entries {
            let n = (entries - i).min(1000);
            let docs: Vec<bson::Document> = (i..i + n)
                .map(|k| doc! {"_id": k, "name": format!("user{k}"), "score": k % 97, "tags": ["a", "b"]})
                .collect();
            coll.insert_many(docs).await.expect("insert");
            i += n;
        }
        c
    });
    let bin = env!("CARGO_BIN_EXE_oxidump");
    println!(
        "{:<36} {:>10} {:>9} {:>9} {:>12} {:>9}",
        "run", "entries", "wall s", "cpu s", "entries/s", "RSS MiB"
    );

    // The baseline: the driver reads the whole oplog, nothing else.
    let (read, wall, cpu) = common::timed(|| {
        rt.block_on(async {
            let mut cur = client
                .database("local")
                .collection::<bson::RawDocumentBuf>("oplog.rs")
                .find(doc! {})
                .await
                .expect("find");
            let mut n = 0u64;
            while let Some(d) = cur.try_next().await.expect("read the oplog") {
                n += u64::from(!d.as_bytes().is_empty());
            }
            n
        })
    });
    println!(
        "{:<36} {read:>10} {:>9.2} {:>9.2} {:>12.0} {:>9}",
        "driver read of the oplog (baseline)",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        read as f64 / wall.as_secs_f64().max(1e-3),
        "-"
    );

    for (label, size) in [
        ("follow --once", "64MB"),
        ("follow --once, 1MB segments", "1MB"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        let cost = common::run_measured(
            &[
                bin,
                "oplog",
                "follow",
                "-q",
                "--once",
                "--segment-size",
                size,
                "--uri",
                &server.uri,
                "--repo",
                repo.to_str().expect("utf-8 path"),
            ],
            &[],
        );
        let archived = sealed_entries(&repo);
        println!(
            "{label:<36} {archived:>10} {:>9.2} {:>9.2} {:>12.0} {:>9.1}",
            cost.wall,
            cost.cpu,
            archived as f64 / cost.wall.max(1e-3),
            cost.max_rss_kb as f64 / 1024.0
        );
    }

    // Lag under a steady write load.
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().expect("utf-8 path").to_string();
    let caught_up = std::process::Command::new(bin)
        .args([
            "oplog",
            "follow",
            "-q",
            "--once",
            "--uri",
            &server.uri,
            "--repo",
            &repo_s,
        ])
        .status()
        .expect("follow --once");
    assert!(caught_up.success(), "follow --once failed");
    let base = sealed_entries(&repo);
    let mut child = std::process::Command::new(bin)
        .args([
            "oplog",
            "follow",
            "-q",
            "--segment-span",
            "1s",
            "--uri",
            &server.uri,
            "--repo",
            &repo_s,
        ])
        .spawn()
        .expect("start the follower");
    let pid = child.id();
    let cpu0 = common::pid_cpu(pid);
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (written, coll) = (
            written.clone(),
            client
                .database("bench")
                .collection::<bson::Document>("steady"),
        );
        rt.spawn(async move {
            // One batch every 100 ms: `rate` documents a second, one oplog entry each.
            let per_tick = (rate / 10).max(1);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(steady_secs);
            let mut k = 0i64;
            while Instant::now() < end {
                tick.tick().await;
                let docs: Vec<bson::Document> = (0..per_tick)
                    .map(|_| {
                        k += 1;
                        doc! {"_id": k, "name": format!("user{k}"), "score": k % 97}
                    })
                    .collect();
                coll.insert_many(docs).await.expect("steady insert");
                written.fetch_add(per_tick, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let mut lags = Vec::new();
    let started = Instant::now();
    while !writer.is_finished() {
        std::thread::sleep(Duration::from_millis(250));
        // Skip the first seconds: the follower connects and seals its first segment.
        if started.elapsed() < Duration::from_secs(3) {
            continue;
        }
        let w = written.load(std::sync::atomic::Ordering::SeqCst);
        let sealed = sealed_entries(&repo).saturating_sub(base);
        lags.push(w.saturating_sub(sealed));
    }
    rt.block_on(writer).expect("the writer");
    let total = written.load(std::sync::atomic::Ordering::SeqCst);
    let drained = Instant::now();
    while sealed_entries(&repo).saturating_sub(base) < total {
        assert!(
            drained.elapsed() < Duration::from_secs(60),
            "the follower never archived the steady writes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = common::pid_cpu(pid).saturating_sub(cpu0);
    let rss = peak_rss_kb(pid);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    lags.sort_unstable();
    let (p50, max) = (percentile(&lags, 0.5), lags.last().copied().unwrap_or(0));
    println!();
    println!(
        "steady load: {rate} inserts/s for {steady_secs} s ({total} entries), follow --segment-span 1s"
    );
    println!(
        "  lag of sealed entries ({} samples): p50 {p50} entries ({:.2} s of writes), max {max} entries ({:.2} s)",
        lags.len(),
        p50 as f64 / rate as f64,
        max as f64 / rate as f64
    );
    println!(
        "  follower: {:.2} s CPU ({:.1} % of one core), peak RSS {:.1} MiB",
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / steady_secs as f64,
        rss as f64 / 1024.0
    );
}
