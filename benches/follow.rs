//! `oxidump oplog follow --once` against a live server: how many oplog entries per
//! second it archives into a repository, its CPU time and its peak RSS.
//!
//! Starts a throwaway SecantusDB server (or uses `OXIDUMP_BENCH_URI`), writes
//! `OXIDUMP_BENCH_ENTRIES` inserts (default 90 000, under the server's default oplog
//! cap of 100 000 entries), then archives the whole oplog once, with the default
//! segment size and with 1 MB segments.
//!
//!   cargo bench --bench follow

mod common;

use bson::doc;

fn main() {
    if !common::benchmarking() {
        return;
    }
    let entries: i64 = std::env::var("OXIDUMP_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(90_000);
    let server = common::server();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
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
    });
    let bin = env!("CARGO_BIN_EXE_oxidump");
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>12} {:>9}",
        "run", "entries", "wall s", "cpu s", "entries/s", "RSS MiB"
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
        let repo = oxidump::repo::Repo::open(&repo).expect("repository");
        let archived: u64 = repo
            .segments()
            .expect("segments")
            .iter()
            .filter_map(|s| s.meta.as_ref().ok().map(|m| m.count))
            .sum();
        println!(
            "{label:<28} {archived:>10} {:>9.2} {:>9.2} {:>12.0} {:>9.1}",
            cost.wall,
            cost.cpu,
            archived as f64 / cost.wall.max(1e-3),
            cost.max_rss_kb as f64 / 1024.0
        );
    }
}
