//! `oxidump restore` against a live server, beside a raw-insert baseline measured in
//! the same run: the same documents, read from the source databases with the driver
//! alone and held in memory, sent with unordered `insert_many` at the same parallelism,
//! then the source's own index specs (`listIndexes`) built. The baseline shares no code
//! with oxidump.
//!
//! Starts a throwaway SecantusDB server (or uses `OXIDUMP_BENCH_URI`), loads
//! the sample dataset (`oxidump-sample dataset --scale S`) (`OXIDUMP_BENCH_SCALE`, default 0.5),
//! dumps it once to OXD and to a mongodump archive, then measures restores into fresh
//! databases: from OXD with indexes created before the data (the default) and built
//! after each collection's data, from the mongodump archive, and from OXD without
//! indexes. Runs go round by round, every run in each round. Reports wall
//! time split into data and index time, CPU seconds, MB/s and peak RSS.
//!
//!   cargo bench --bench restore

mod common;

use std::sync::Arc;
use std::time::Instant;

use bson::{Bson, Document, RawDocumentBuf, doc};

fn drop_dbs(uri: &str, prefix: &str) {
    common::drop_databases(uri, prefix, &[]);
}

struct Loaded {
    /// Target collection name -> documents.
    docs: Vec<(String, String, Vec<RawDocumentBuf>, Vec<Document>)>,
    bytes: u64,
}

/// The baseline's documents and index specs, read from the source databases with the
/// driver alone (raw batch cursors and `listIndexes`), before anything is timed: nothing
/// of oxidump's reader, catalog or index translation is involved.
fn load(uri: &str, dbs: &[&str]) -> Loaded {
    use futures_util::TryStreamExt as _;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.expect("client");
        let mut docs = Vec::new();
        let mut bytes = 0;
        for db in dbs {
            let d = client.database(db);
            let mut names = d.list_collection_names().await.expect("listCollections");
            names.sort();
            for coll in names {
                let c = d.collection::<Document>(&coll);
                let mut cursor = c.find(doc! {}).batch().await.expect("find");
                let mut all = Vec::new();
                while let Some(batch) = cursor.try_next().await.expect("getMore") {
                    for raw in batch.doc_slices().expect("batch") {
                        let raw = raw.expect("document");
                        let raw = raw.as_document().expect("a document");
                        bytes += raw.as_bytes().len() as u64;
                        all.push(
                            RawDocumentBuf::from_bytes(raw.as_bytes().to_vec()).expect("document"),
                        );
                    }
                }
                let listed = d
                    .run_command(doc! {"listIndexes": &coll})
                    .await
                    .expect("listIndexes");
                let specs: Vec<Document> = listed
                    .get_document("cursor")
                    .and_then(|c| c.get_array("firstBatch"))
                    .expect("listIndexes cursor")
                    .iter()
                    .filter_map(|s| s.as_document().cloned())
                    .filter(|s| s.get_str("name").ok() != Some("_id_"))
                    .map(|mut s| {
                        s.remove("ns");
                        s
                    })
                    .collect();
                docs.push((format!("base_{db}"), coll, all, specs));
            }
        }
        client.shutdown().await;
        Loaded { docs, bytes }
    })
}

/// Inserts everything with `insert_many` (unordered), `jobs` collections at once and
/// `workers` batches in flight per collection; then builds the indexes, `jobs` at once.
fn baseline(
    uri: &str,
    l: &Loaded,
    jobs: usize,
    workers: usize,
    batch_bytes: usize,
) -> (f64, f64, f64) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.expect("client");
        let cpu0 = common::process_cpu();
        let t0 = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
        let mut set = tokio::task::JoinSet::new();
        for (db, coll, docs, _) in &l.docs {
            // Batches as restore makes them: by document count and bytes.
            let mut batches: Vec<Vec<RawDocumentBuf>> = vec![Vec::new()];
            let mut size = 0;
            for d in docs {
                if size + d.as_bytes().len() > batch_bytes && !batches.last().expect("one").is_empty() {
                    batches.push(Vec::new());
                    size = 0;
                }
                size += d.as_bytes().len();
                batches.last_mut().expect("one").push(d.clone());
            }
            let coll = client.database(db).collection::<RawDocumentBuf>(coll);
            let sem = sem.clone();
            set.spawn(async move {
                let _p = sem.acquire_owned().await.expect("sem");
                let inner = Arc::new(tokio::sync::Semaphore::new(workers));
                let mut tasks = tokio::task::JoinSet::new();
                for b in batches.into_iter().filter(|b| !b.is_empty()) {
                    let p = inner.clone().acquire_owned().await.expect("sem");
                    let coll = coll.clone();
                    tasks.spawn(async move {
                        coll.insert_many(b).ordered(false).await.expect("insert");
                        drop(p);
                    });
                }
                while tasks.join_next().await.is_some() {}
            });
        }
        while set.join_next().await.is_some() {}
        let data = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for (db, coll, _, indexes) in &l.docs {
            if indexes.is_empty() {
                continue;
            }
            let db = client.database(db);
            let cmd = doc! {"createIndexes": coll.clone(), "indexes": indexes.iter().cloned().map(Bson::Document).collect::<Vec<_>>()};
            let sem = sem.clone();
            set.spawn(async move {
                let _p = sem.acquire_owned().await.expect("sem");
                db.run_command(cmd).await.expect("createIndexes");
            });
        }
        while set.join_next().await.is_some() {}
        let index = t1.elapsed().as_secs_f64();
        (data, index, (common::process_cpu() - cpu0).as_secs_f64())
    })
}

struct Row {
    label: String,
    wall: f64,
    data: f64,
    index: f64,
    cpu: f64,
    rss_mb: f64,
}

fn restore(bin: &str, uri: &str, input: &std::path::Path, extra: &[&str], label: &str) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("r.json");
    let rep = report.display().to_string();
    let inp = input.display().to_string();
    let mut args = vec![
        bin,
        "restore",
        &inp,
        "--uri",
        uri,
        "-q",
        "--report-json",
        &rep,
        "--ns-from",
        "shop.*",
        "--ns-to",
        "bench_shop.*",
        "--ns-from",
        "logs.*",
        "--ns-to",
        "bench_logs.*",
    ];
    args.extend_from_slice(extra);
    let cost = common::run_measured(&args, &[]);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    drop_dbs(uri, "bench_");
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    Row {
        label: label.into(),
        wall: cost.wall,
        data: f("data_seconds"),
        index: f("index_tail_seconds"),
        cpu: cost.cpu,
        rss_mb: cost.max_rss_kb as f64 / 1024.0,
    }
}

fn main() {
    if !common::benchmarking() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_oxidump");
    let server = common::server();
    let scale = std::env::var("OXIDUMP_BENCH_SCALE").unwrap_or_else(|_| "0.5".into());
    if std::env::var("OXIDUMP_BENCH_URI").is_err() {
        eprintln!("loading the sample dataset, scale {scale} ...");
        common::load_dataset(&server.uri, &scale);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let oxd = work.path().join("data.oxd");
    let arc = work.path().join("data.archive");
    for (out, fmt) in [(&oxd, "oxd"), (&arc, "mongodump-archive")] {
        let o = out.display().to_string();
        common::run_measured(
            &[
                bin,
                "dump",
                "--uri",
                &server.uri,
                "--db",
                "shop",
                "--db",
                "logs",
                "-q",
                "--out",
                &o,
                "--format",
                fmt,
            ],
            &[],
        );
    }
    let loaded = load(&server.uri, &["shop", "logs"]);
    let (jobs, workers) = (
        oxidump::restore::DEFAULT_JOBS,
        oxidump::restore::DEFAULT_WORKERS,
    );
    let batch = oxidump::restore::DEFAULT_BATCH_BYTES;
    let reps: usize = std::env::var("OXIDUMP_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut base = (f64::MAX, 0.0, 0.0);
    let runs: [(&std::path::Path, &[&str], &str); 4] = [
        (
            &oxd,
            &["--index-build", "before"],
            "oxidump restore OXD --index-build before (auto, the default, on SecantusDB)",
        ),
        (
            &oxd,
            &["--index-build", "after"],
            "oxidump restore OXD --index-build after",
        ),
        (
            &arc,
            &["--index-build", "before"],
            "oxidump restore mongodump archive --index-build before",
        ),
        (
            &oxd,
            &["--index-build", "skip"],
            "oxidump restore OXD --index-build skip (data only)",
        ),
    ];
    // Round after round of every run, so that what the server does in the background
    // (checkpoints after the load, cache warming) weighs on all of them alike.
    let mut rows: Vec<Option<Row>> = runs.iter().map(|_| None).collect();
    for _ in 0..reps {
        let b = baseline(&server.uri, &loaded, jobs, workers, batch);
        drop_dbs(&server.uri, "base_");
        if b.0 + b.1 < base.0 + base.1 {
            base = b;
        }
        for ((input, extra, label), best) in runs.iter().zip(rows.iter_mut()) {
            let r = restore(bin, &server.uri, input, extra, label);
            if best.as_ref().is_none_or(|b| r.wall < b.wall) {
                *best = Some(r);
            }
        }
    }
    let rows = rows.into_iter().map(|r| r.expect("one run"));
    let target = base.0 + base.1;
    println!(
        "\n### restore, sample dataset, scale {scale}: {:.0} MB raw, -j {jobs}, {workers} inserters per collection (best of {reps})\n",
        loaded.bytes as f64 / 1e6
    );
    println!(
        "| run | wall s | data s | index s (after data) | vs baseline+index | MB/s (data) | CPU s | peak RSS MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| raw insert_many baseline + index build | {:.2} | {:.2} | {:.2} | 1.00x | {:.0} | {:.2} | - |",
        target,
        base.0,
        base.1,
        common::mbps(loaded.bytes, base.0),
        base.2
    );
    for r in rows {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.0} | {:.2} | {:.0} |",
            r.label,
            r.wall,
            r.data,
            r.index,
            r.wall / target,
            common::mbps(loaded.bytes, r.data),
            r.cpu,
            r.rss_mb
        );
    }
}
