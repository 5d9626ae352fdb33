//! Oplog replay throughput against a live server, beside the raw insert throughput of
//! the same server in the same run.
//!
//! Builds N oplog entries in memory (`OXIDUMP_BENCH_OPLOG_ENTRIES`, default 200 000):
//! an insert-only oplog, then a mixed one (inserts, top-level and nested deltas,
//! replacements, deletes). Measures, round by round: the same documents sent with
//! unordered inserts at the replay's parallelism (the baseline), the insert-only
//! oplog replayed, and the mixed oplog replayed. Prints entries per second and the
//! ratio to the baseline (the target for the insert-only oplog is at least 0.7).
//!
//! Needs a server: `OXIDUMP_BENCH_URI=mongodb://… cargo bench --bench oplog` (a
//! replica-set member or not; nothing but the `oxidump_bench_oplog_*` databases is
//! touched, and they are dropped).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bson::{Document, RawDocumentBuf, Timestamp, doc};
use mongodb::Client;
use oxidump::oplog::apply::{ApplyOptions, Replayer, Selection};

const LANES: usize = 8;
const ROUNDS: usize = 3;

fn ts(i: usize) -> Timestamp {
    Timestamp {
        time: 1_700_000_000 + (i / 100_000) as u32,
        increment: (i % 100_000) as u32 + 1,
    }
}

fn raw(d: &Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(d).expect("encodes")
}

fn document(i: usize) -> Document {
    doc! {"_id": i as i64, "n": i as i64, "name": format!("user-{i}"), "tags": ["a", "b", "c"],
    "sub": {"k": 1, "s": "x".repeat(120)}}
}

fn insert_only(db: &str, n: usize) -> Vec<RawDocumentBuf> {
    let ns = format!("{db}.c");
    let mut v = vec![raw(
        &doc! {"op": "c", "ns": format!("{db}.$cmd"), "o": {"create": "c"}, "ts": ts(0)},
    )];
    v.extend((0..n).map(|i| raw(&doc! {"op": "i", "ns": &ns, "o": document(i), "ts": ts(i + 1)})));
    v
}

fn mixed(db: &str, n: usize) -> Vec<RawDocumentBuf> {
    let ns = format!("{db}.c");
    let mut v = vec![raw(
        &doc! {"op": "c", "ns": format!("{db}.$cmd"), "o": {"create": "c"}, "ts": ts(0)},
    )];
    let mut next = 0usize;
    for i in 0..n {
        let t = ts(i + 1);
        let target = (next.saturating_sub(1 + i % 97)) as i64;
        let e = match i % 10 {
            0..=4 => {
                next += 1;
                doc! {"op": "i", "ns": &ns, "o": document(next - 1), "ts": t}
            }
            5 | 6 => {
                doc! {"op": "u", "ns": &ns, "o": {"$v": 2, "diff": {"u": {"n": i as i64}, "i": {"seen": true}}}, "o2": {"_id": target}, "ts": t}
            }
            7 => {
                doc! {"op": "u", "ns": &ns, "o": {"$v": 2, "diff": {"ssub": {"u": {"k": i as i64}}, "stags": {"a": true, "u3": "d"}}}, "o2": {"_id": target}, "ts": t}
            }
            8 => {
                doc! {"op": "u", "ns": &ns, "o": {"_id": target, "replaced": i as i64}, "o2": {"_id": target}, "ts": t}
            }
            _ => doc! {"op": "d", "ns": &ns, "o": {"_id": target}, "ts": t},
        };
        v.push(raw(&e));
    }
    v
}

async fn drop_db(c: &Client, db: &str) {
    c.database(db).drop().await.expect("drop");
}

async fn baseline(c: &Client, db: &str, n: usize) -> f64 {
    drop_db(c, db).await;
    let coll = c.database(db).collection::<Document>("c");
    coll.insert_one(doc! {"_id": -1}).await.expect("create");
    let docs: Vec<Document> = (0..n).map(document).collect();
    let chunks: Vec<Vec<Document>> = docs.chunks(1000).map(<[Document]>::to_vec).collect();
    let started = Instant::now();
    let mut lanes: Vec<Vec<Vec<Document>>> = vec![Vec::new(); LANES];
    for (k, ch) in chunks.into_iter().enumerate() {
        lanes[k % LANES].push(ch);
    }
    let mut set = tokio::task::JoinSet::new();
    for lane in lanes {
        let coll = coll.clone();
        set.spawn(async move {
            for ch in lane {
                coll.insert_many(ch).ordered(false).await.expect("insert");
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("lane");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn replay(c: &Client, db: &str, entries: &[RawDocumentBuf]) -> f64 {
    drop_db(c, db).await;
    let started = Instant::now();
    let mut r = Replayer::new(
        c.clone(),
        ApplyOptions {
            lanes: LANES,
            ..ApplyOptions::default()
        },
        Selection::default(),
        BTreeMap::new(),
        HashMap::new(),
    )
    .await
    .expect("replayer");
    for e in entries {
        r.apply(e).await.expect("replay");
    }
    r.finish().await.expect("finish");
    entries.len() as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let Ok(uri) = std::env::var("OXIDUMP_BENCH_URI") else {
        eprintln!("oplog bench: set OXIDUMP_BENCH_URI to a server to measure (nothing run)");
        return;
    };
    let n: usize = std::env::var("OXIDUMP_BENCH_OPLOG_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = Client::with_uri_str(&uri).await.expect("client");
        let (raw_db, ins_db, mix_db) = (
            "oxidump_bench_oplog_raw",
            "oxidump_bench_oplog_ins",
            "oxidump_bench_oplog_mix",
        );
        let ins = insert_only(ins_db, n);
        let mix = mixed(mix_db, n);
        println!("oplog replay, {n} entries, {LANES} lanes, {ROUNDS} rounds");
        let mut best = [0f64; 3];
        for round in 1..=ROUNDS {
            let b = baseline(&c, raw_db, n).await;
            let i = replay(&c, ins_db, &ins).await;
            let m = replay(&c, mix_db, &mix).await;
            println!(
                "round {round}: raw inserts {b:>9.0} docs/s | insert-only oplog {i:>9.0} entries/s ({:.2}x) | mixed oplog {m:>9.0} entries/s ({:.2}x)",
                i / b,
                m / b
            );
            best = [best[0].max(b), best[1].max(i), best[2].max(m)];
        }
        println!(
            "best: raw inserts {:.0} docs/s, insert-only oplog {:.0} entries/s ({:.2}x), mixed {:.0} entries/s ({:.2}x)",
            best[0],
            best[1],
            best[1] / best[0],
            best[2],
            best[2] / best[0]
        );
        for db in [raw_db, ins_db, mix_db] {
            drop_db(&c, db).await;
        }
    });
}
