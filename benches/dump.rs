//! `oxidump dump` against a live server, beside a raw-drain baseline measured in the
//! same run: the same cursors drained and the bytes discarded.
//!
//! Starts a throwaway SecantusDB server (or uses `OXIDUMP_BENCH_URI`, which must then
//! already hold the data), loads the sample dataset (`oxidump-sample dataset --scale S`) for each
//! scale of `OXIDUMP_BENCH_SCALES` (default `0.5`), and for each measures: the drain,
//! a dump to OXD at the default level, to a mongodump archive, and to a gzipped one.
//! Reports wall time, CPU seconds of oxidump and of the server, MB/s (raw BSON,
//! 10^6 bytes per second), peak RSS and output size. `OXIDUMP_BENCH_SWEEP=1` adds
//! runs over `-j` and `--split-above` to show how the defaults were chosen.
//!
//!   cargo bench --bench dump
//!   OXIDUMP_BENCH_SCALES=0.1,1 cargo bench --bench dump

mod common;

use std::path::Path;

struct Row {
    label: String,
    wall: f64,
    cpu: f64,
    server_cpu: f64,
    bytes: u64,
    rss_mb: f64,
    out_bytes: Option<u64>,
}

fn dump(
    bin: &str,
    uri: &str,
    dbs: &[String],
    extra: &[&str],
    out: Option<&Path>,
    server_pid: Option<u32>,
    label: &str,
) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let mut args: Vec<String> = vec![
        bin.into(),
        "dump".into(),
        "--uri".into(),
        uri.into(),
        "-q".into(),
    ];
    for d in dbs {
        args.push("--db".into());
        args.push(d.clone());
    }
    args.push("--report-json".into());
    args.push(report.display().to_string());
    match out {
        Some(o) => {
            args.push("--out".into());
            args.push(o.display().to_string());
        }
        None => args.push("--drain-only".into()),
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let s0 = server_pid.map(common::pid_cpu);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let cost = common::run_measured(&argv, &[]);
    let s1 = server_pid.map(common::pid_cpu);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    let out_bytes = out.and_then(dir_size);
    if let Some(o) = out {
        let _ = std::fs::remove_file(o).or_else(|_| std::fs::remove_dir_all(o));
    }
    Row {
        label: label.into(),
        wall: cost.wall,
        cpu: cost.cpu,
        server_cpu: match (s0, s1) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => f64::NAN,
        },
        bytes: r["bytes"].as_u64().unwrap_or(0),
        rss_mb: cost.max_rss_kb as f64 / 1024.0,
        out_bytes,
    }
}

/// The baseline: every collection of `dbs` read with plain `find`/`getMore` raw batch
/// cursors of the driver, `jobs` collections at once, the bytes counted and discarded.
/// Shares no code with oxidump (no planning, no statistics, no framing): the server's
/// own drain speed for this data and parallelism.
fn independent_drain(uri: &str, dbs: &[String], jobs: usize, server_pid: Option<u32>) -> Row {
    use futures_util::{StreamExt as _, TryStreamExt as _};
    let s0 = server_pid.map(common::pid_cpu);
    let ((bytes, docs), wall, cpu) = common::timed(|| {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        rt.block_on(async {
            let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
            let mut colls = Vec::new();
            for db in dbs {
                let names = client
                    .database(db)
                    .list_collection_names()
                    .await
                    .expect("listCollections");
                colls.extend(names.into_iter().map(|c| (db.clone(), c)));
            }
            let totals: Vec<(u64, u64)> = futures_util::stream::iter(colls)
                .map(|(db, c)| {
                    let client = client.clone();
                    async move {
                        let mut cursor = client
                            .database(&db)
                            .collection::<bson::Document>(&c)
                            .find(bson::doc! {})
                            .batch()
                            .await
                            .expect("find");
                        let (mut bytes, mut docs) = (0u64, 0u64);
                        while let Some(batch) = cursor.try_next().await.expect("getMore") {
                            for d in batch.doc_slices().expect("batch") {
                                let d = d.expect("document");
                                if let Some(doc) = d.as_document() {
                                    bytes += doc.as_bytes().len() as u64;
                                    docs += 1;
                                }
                            }
                        }
                        (bytes, docs)
                    }
                })
                .buffer_unordered(jobs)
                .collect()
                .await;
            client.shutdown().await;
            totals
                .iter()
                .fold((0, 0), |(b, d), (tb, td)| (b + tb, d + td))
        })
    });
    let s1 = server_pid.map(common::pid_cpu);
    let _ = docs;
    Row {
        label: format!("independent drain, driver only, {jobs} collections at once (baseline)"),
        wall: wall.as_secs_f64(),
        cpu: cpu.as_secs_f64(),
        server_cpu: match (s0, s1) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => f64::NAN,
        },
        bytes,
        rss_mb: f64::NAN,
        out_bytes: None,
    }
}

fn dir_size(p: &Path) -> Option<u64> {
    let m = std::fs::metadata(p).ok()?;
    if m.is_file() {
        return Some(m.len());
    }
    Some(
        std::fs::read_dir(p)
            .ok()?
            .flatten()
            .filter_map(|e| dir_size(&e.path()))
            .sum(),
    )
}

fn print(rows: &[Row], baseline: f64) {
    println!(
        "| run | wall s | vs drain | oxidump CPU s | server CPU s | MB/s | peak RSS MB | output MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.2} | {:.2}x | {:.2} | {:.2} | {:.0} | {:.0} | {} |",
            r.label,
            r.wall,
            r.wall / baseline,
            r.cpu,
            r.server_cpu,
            common::mbps(r.bytes, r.wall),
            r.rss_mb,
            r.out_bytes
                .map(|b| format!("{:.1}", b as f64 / 1e6))
                .unwrap_or_else(|| "-".into())
        );
    }
}

fn main() {
    if !common::benchmarking() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_oxidump");
    let server = common::server();
    let scales = std::env::var("OXIDUMP_BENCH_SCALES").unwrap_or_else(|_| "0.5".into());
    let reps: usize = std::env::var("OXIDUMP_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let work = tempfile::tempdir().expect("tempdir");
    for scale in scales.split(',') {
        let dbs = if std::env::var("OXIDUMP_BENCH_URI").is_ok() {
            vec!["shop".to_string(), "logs".to_string()]
        } else {
            eprintln!("loading the sample dataset, scale {scale} ...");
            common::load_dataset(&server.uri, scale);
            vec!["shop".to_string(), "logs".to_string()]
        };
        println!("\n### dump, sample dataset, scale {scale} (best of {reps})\n");
        let best = |f: &dyn Fn() -> Row| -> Row {
            let mut rows: Vec<Row> = (0..reps).map(|_| f()).collect();
            rows.sort_by(|a, b| a.wall.total_cmp(&b.wall));
            rows.swap_remove(0)
        };
        let pid = server.pid;
        let mut rows = Vec::new();
        rows.push(best(&|| {
            independent_drain(&server.uri, &dbs, oxidump::dump::DEFAULT_JOBS, pid)
        }));
        rows.push(best(&|| {
            dump(
                bin,
                &server.uri,
                &dbs,
                &[],
                None,
                pid,
                "oxidump dump --drain-only (its own reading, nothing written)",
            )
        }));
        let oxd = work.path().join("b.oxd");
        rows.push(best(&|| {
            dump(
                bin,
                &server.uri,
                &dbs,
                &[],
                Some(&oxd),
                pid,
                "oxidump dump (OXD, default level)",
            )
        }));
        let arc = work.path().join("b.archive");
        rows.push(best(&|| {
            dump(
                bin,
                &server.uri,
                &dbs,
                &["--format", "mongodump-archive"],
                Some(&arc),
                pid,
                "oxidump dump --format mongodump-archive",
            )
        }));
        let gz = work.path().join("b.archive.gz");
        rows.push(best(&|| {
            dump(
                bin,
                &server.uri,
                &dbs,
                &["--format", "mongodump-archive", "--gzip"],
                Some(&gz),
                pid,
                "oxidump dump --format mongodump-archive --gzip",
            )
        }));
        if std::env::var("OXIDUMP_BENCH_SWEEP").is_ok() {
            for j in ["1", "2", "4", "8"] {
                let l = format!("OXD -j {j}");
                rows.push(best(&|| {
                    dump(bin, &server.uri, &dbs, &["-j", j], Some(&oxd), pid, &l)
                }));
            }
            for j in ["1", "2", "8"] {
                let l = format!("raw drain -j {j}");
                rows.push(best(&|| {
                    dump(bin, &server.uri, &dbs, &["-j", j], None, pid, &l)
                }));
            }
            for s in ["64MB", "1GB"] {
                let l = format!("raw drain --split-above {s}");
                rows.push(best(&|| {
                    dump(bin, &server.uri, &dbs, &["--split-above", s], None, pid, &l)
                }));
            }
        }
        let baseline = rows[0].wall;
        print(&rows, baseline);
        // The targets: OXD wall against the independent drain and against the gzipped
        // archive, OXD size against the gzipped archive, peak RSS.
        let (oxd_row, gz_row) = (&rows[2], &rows[4]);
        let size = |r: &Row| r.out_bytes.map_or(f64::NAN, |b| b as f64);
        println!(
            "\nOXD dump: {:.2}x the independent drain's wall (target <= 1.05x), {:.2}x the gzipped archive's wall (target <= 0.55x), {:.3}x its size (target <= 1.0x), peak RSS {:.0} MB (target < 256 MB)",
            oxd_row.wall / baseline,
            oxd_row.wall / gz_row.wall,
            size(oxd_row) / size(gz_row),
            oxd_row.rss_mb
        );
        if std::env::var("OXIDUMP_BENCH_URI").is_err() {
            // Next scale starts from an empty server.
            common::drop_databases(&server.uri, "", &["shop", "logs"]);
        }
    }
}
