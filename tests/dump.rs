//! `oxidump dump` against a real server, through the real binary: every format holds
//! the server's documents byte for byte with their metadata; split and unsplit reads
//! agree; namespace filters, `--query`, `--oplog` and standard output do what they say;
//! credentials never reach any output; failed and interrupted dumps leave nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use bson::{Binary, Bson, Document, RawDocumentBuf, Timestamp, doc, spec::BinarySubtype};
use futures_util::TryStreamExt as _;
use serde_json::Value;

use crate::common::private_server::PrivateServer;
use crate::common::{
    DbGuard, block_on, client, collection_digest, docs_digest, load_edge_corpus, oxidump, run,
    server,
};

const PASSWORD: &str = "S3cr3t-Pa55word!";

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// `oxidump dump --uri URI --quiet`.
fn dump(uri: &str) -> Command {
    let mut cmd = oxidump();
    cmd.args(["dump", "--uri", uri, "--quiet"]);
    cmd
}

/// Splits concatenated BSON documents.
fn split_docs(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        assert!(
            data.len() >= 5,
            "truncated document in {} bytes",
            data.len()
        );
        let len = i32::from_le_bytes(data[..4].try_into().expect("4 bytes")) as usize;
        assert!(
            (5..=data.len()).contains(&len),
            "bad document length {len} with {} bytes left",
            data.len()
        );
        out.push(data[..len].to_vec());
        data = &data[len..];
    }
    out
}

/// The raw documents of `ns` in the backup at `path`, as `oxidump cat --format bson` writes them.
fn cat_docs(path: &Path, ns: &str) -> Vec<Vec<u8>> {
    let out = oxidump()
        .arg("cat")
        .arg(path)
        .args(["--ns", ns, "--format", "bson"])
        .output()
        .expect("run oxidump cat");
    assert!(
        out.status.success(),
        "oxidump cat {} --ns {ns}: {}\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    split_docs(&out.stdout)
}

/// Count and sha256 of `ns` in the backup.
fn cat_digest(path: &Path, ns: &str) -> (u64, String) {
    docs_digest(cat_docs(path, ns))
}

/// `oxidump ls --json PATH`.
fn ls_json(path: &Path) -> Value {
    let (_, stdout, _) = run(oxidump().arg("ls").arg("--json").arg(path), 0);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("ls --json: {e}\n{stdout}"))
}

/// The namespaces `ls --json` lists, with their types.
fn listed(path: &Path) -> BTreeMap<String, String> {
    ls_json(path)["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().expect("namespace").to_string(),
                n["type"].as_str().expect("type").to_string(),
            )
        })
        .collect()
}

/// Just the namespace names.
fn listed_names(path: &Path) -> BTreeSet<String> {
    listed(path).into_keys().collect()
}

/// The catalog of a backup, through the library.
fn catalog(path: &Path) -> oxidump::catalog::Catalog {
    oxidump::commands::open_source(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .catalog()
        .clone()
}

/// `oxidump verify PATH` succeeds.
fn assert_verifies(path: &Path) {
    let (_, stdout, _) = run(oxidump().arg("verify").arg(path), 0);
    assert!(stdout.contains("OK"), "{stdout}");
}

/// A `--report-json` file.
fn read_report(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read report {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report JSON: {e}\n{text}"))
}

/// The `ranges` of namespace `ns` in a report.
fn report_ranges(report: &Value, ns: &str) -> u64 {
    report["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .find(|n| n["namespace"] == ns)
        .unwrap_or_else(|| panic!("{ns} not in the report: {report:#}"))["ranges"]
        .as_u64()
        .expect("ranges")
}

/// Every entry of a directory (recursively), relative paths.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).expect("prefix").to_path_buf());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every file's bytes under `path` (a file or a directory).
fn all_bytes(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    if path.is_file() {
        return vec![(path.to_path_buf(), std::fs::read(path).expect("read"))];
    }
    entries(path)
        .into_iter()
        .map(|p| path.join(p))
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).expect("read");
            (p, b)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Inserts `docs` into `db.coll` of the shared server.
fn insert(db: &str, coll: &str, docs: Vec<Document>) {
    let c = client().database(db).collection::<Document>(coll);
    block_on(async { c.insert_many(docs).await })
        .unwrap_or_else(|e| panic!("insert into {db}.{coll}: {e}"));
}

/// Runs `command` on database `db` of the shared server.
fn command(db: &str, cmd: Document) -> Document {
    let shown = format!("{cmd}");
    block_on(async { client().database(db).run_command(cmd).await })
        .unwrap_or_else(|e| panic!("{shown} on {db}: {e}"))
}

/// Runs a cursor command on `db` and decodes every document.
fn cursor(client: &mongodb::Client, db: &str, cmd: Document) -> Vec<Document> {
    let shown = format!("{cmd}");
    let db = client.database(db);
    block_on(async {
        let reply = db.run_command(cmd).await?;
        let cursor = reply.get_document("cursor").expect("cursor").clone();
        let mut docs: Vec<Document> = cursor
            .get_array("firstBatch")
            .expect("firstBatch")
            .iter()
            .map(|d| d.as_document().expect("document").clone())
            .collect();
        let mut id = cursor.get_i64("id").unwrap_or(0);
        let coll = cursor
            .get_str("ns")
            .ok()
            .and_then(|ns| ns.split_once('.'))
            .map(|(_, c)| c.to_string())
            .unwrap_or_default();
        while id != 0 {
            let more = db
                .run_command(doc! {"getMore": id, "collection": coll.as_str()})
                .await?;
            let c = more.get_document("cursor").expect("cursor");
            docs.extend(
                c.get_array("nextBatch")
                    .expect("nextBatch")
                    .iter()
                    .map(|d| d.as_document().expect("document").clone()),
            );
            id = c.get_i64("id").unwrap_or(0);
        }
        Ok::<_, mongodb::error::Error>(docs)
    })
    .unwrap_or_else(|e| panic!("{shown}: {e}"))
}

/// Polls until `cond` or `timeout`; whether it held.
fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (`INT`, `KILL`…) to `pid` with kill(1).
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// `n` pseudo-random bytes (xorshift), different for every `seed`.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// `count` documents of about 1 KB each (mostly incompressible), `_id` 0..count.
fn kilobyte_docs(range: std::ops::Range<i64>) -> Vec<Document> {
    range
        .map(|i| {
            doc! {
                "_id": i,
                "pad": Binary { subtype: BinarySubtype::Generic, bytes: noise(i as u64, 1000) },
            }
        })
        .collect()
}

/// Output and exit status of a spawned child, after it ends.
fn finish(child: std::process::Child) -> (i32, String, String) {
    let out = child.wait_with_output().expect("wait for oxidump");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------
// The edge-case corpus in every format
// ---------------------------------------------------------------------------------

const FORMATS: [(&str, &[&str]); 5] = [
    ("oxd", &[]),
    ("dir", &["--format", "mongodump-dir"]),
    ("dir-gz", &["--format", "mongodump-dir", "--gzip"]),
    ("archive", &["--format", "mongodump-archive"]),
    ("archive-gz", &["--format", "mongodump-archive", "--gzip"]),
];

#[test]
fn edge_corpus_round_trips_in_every_format() {
    let guard = DbGuard::new("dump_edge");
    let db = guard.name();
    let manifest = load_edge_corpus(db);
    let manifest = manifest.as_object().expect("manifest");
    let buckets = format!("{db}.system.buckets.series");
    let system_views = format!("{db}.system.views");
    // What a dump must hold: every namespace but the bucket collection (reached through
    // its time-series collection) and system.views (views are saved as definitions).
    let expected: BTreeSet<String> = manifest
        .keys()
        .filter(|k| **k != buckets && **k != system_views)
        .cloned()
        .collect();
    assert!(expected.contains(&format!("{db}.types")), "{expected:?}");

    // The server's own account of options and indexes.
    let c = client();
    let infos = cursor(&c, db, doc! {"listCollections": 1});
    let info = |name: &str| -> Document {
        infos
            .iter()
            .find(|i| i.get_str("name").ok() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed by the server"))
            .clone()
    };

    let dir = tempfile::tempdir().expect("tempdir");
    for (label, flags) in FORMATS {
        let out = dir.path().join(format!("edge-{label}"));
        run(
            dump(&server().uri)
                .args(["--db", db])
                .args(flags)
                .arg("--out")
                .arg(&out),
            0,
        );
        assert_verifies(&out);

        // Namespaces and their types.
        let names = listed(&out);
        assert_eq!(
            names.keys().cloned().collect::<BTreeSet<_>>(),
            expected,
            "{label}"
        );
        assert_eq!(names[&format!("{db}.v_types")], "view", "{label}");
        assert_eq!(names[&format!("{db}.series")], "timeseries", "{label}");

        // Every collection's documents, byte for byte.
        for ns in &expected {
            let entry = &manifest[ns];
            if entry.get("type").and_then(Value::as_str) == Some("view") {
                continue;
            }
            // A time-series collection is dumped as its buckets.
            let source = if *ns == format!("{db}.series") {
                &manifest[&buckets]
            } else {
                entry
            };
            let want = (
                source["count"].as_u64().expect("count"),
                source["sha256"].as_str().expect("sha256").to_string(),
            );
            assert_eq!(cat_digest(&out, ns), want, "{label}: {ns}");
        }
        assert_eq!(
            collection_digest(db, "system.buckets.series"),
            cat_digest(&out, &format!("{db}.series")),
            "{label}: buckets on the server and dumped"
        );

        // Views, options and index specs, as the server lists them.
        let cat = catalog(&out);
        let ns = |coll: &str| {
            let i = cat
                .find(db, coll)
                .unwrap_or_else(|| panic!("{label}: {db}.{coll} not in the catalog"));
            &cat.namespaces[i]
        };
        for n in &cat.namespaces {
            let server_info = info(&n.collection);
            let want_options = server_info
                .get_document("options")
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                n.options,
                want_options,
                "{label}: options of {}",
                n.full_name()
            );
            if n.kind != oxidump::catalog::NsKind::View {
                let want_indexes = cursor(&c, db, doc! {"listIndexes": n.collection.as_str()});
                assert_eq!(
                    n.indexes,
                    want_indexes,
                    "{label}: indexes of {}",
                    n.full_name()
                );
                let uuid = server_info
                    .get_document("info")
                    .ok()
                    .and_then(|i| i.get_binary_generic("uuid").ok())
                    .cloned();
                if let Some(uuid) = uuid {
                    assert_eq!(
                        n.uuid.map(|u| u.to_vec()),
                        Some(uuid),
                        "{label}: uuid of {}",
                        n.full_name()
                    );
                }
            }
        }
        let v = ns("v_types");
        assert_eq!(v.kind, oxidump::catalog::NsKind::View, "{label}");
        assert_eq!(v.options.get_str("viewOn").ok(), Some("types"), "{label}");
        assert_eq!(
            v.options.get_array("pipeline").map(|p| p.len()).ok(),
            Some(1),
            "{label}: {:?}",
            v.options
        );
        let capped = &ns("capped").options;
        assert_eq!(
            capped.get_bool("capped").ok(),
            Some(true),
            "{label}: {capped}"
        );
        assert!(
            capped.contains_key("size") && capped.contains_key("max"),
            "{label}: {capped}"
        );
        let validated = &ns("validated").options;
        assert!(
            validated
                .get_document("validator")
                .is_ok_and(|v| v.contains_key("$jsonSchema")),
            "{label}: {validated}"
        );
        assert_eq!(
            validated.get_str("validationLevel").ok(),
            Some("strict"),
            "{label}"
        );
        assert_eq!(
            validated.get_str("validationAction").ok(),
            Some("error"),
            "{label}"
        );
        let collated = &ns("collated").options;
        assert_eq!(
            collated
                .get_document("collation")
                .and_then(|c| c.get_str("locale"))
                .ok(),
            Some("fr"),
            "{label}: {collated}"
        );
        let clustered = &ns("clustered").options;
        assert!(
            clustered
                .get_document("clusteredIndex")
                .is_ok_and(|c| c.get_document("key").ok() == Some(&doc! {"_id": 1})),
            "{label}: {clustered}"
        );
        let series = ns("series");
        assert_eq!(series.kind, oxidump::catalog::NsKind::Timeseries, "{label}");
        let ts = series
            .options
            .get_document("timeseries")
            .unwrap_or_else(|_| panic!("{label}: {}", series.options));
        assert_eq!(ts.get_str("timeField").ok(), Some("t"), "{label}: {ts}");
        assert_eq!(ts.get_str("metaField").ok(), Some("m"), "{label}: {ts}");
        assert_eq!(
            ts.get_str("granularity").ok(),
            Some("seconds"),
            "{label}: {ts}"
        );

        let indexed = ns("indexed");
        let spec = |name: &str| -> &Document {
            indexed
                .indexes
                .iter()
                .find(|i| i.get_str("name").ok() == Some(name))
                .unwrap_or_else(|| panic!("{label}: no index {name}: {:?}", indexed.indexes))
        };
        let names: BTreeSet<&str> = indexed
            .indexes
            .iter()
            .map(|i| i.get_str("name").expect("name"))
            .collect();
        assert_eq!(
            names,
            BTreeSet::from([
                "_id_",
                "a_bc",
                "s_unique",
                "tags_1",
                "d_1",
                "a_partial",
                "bc_collated",
                "s_hidden"
            ]),
            "{label}"
        );
        assert_eq!(
            spec("a_bc").get_document("key").ok(),
            Some(&doc! {"a": 1, "b.c": -1}),
            "{label}"
        );
        assert_eq!(
            spec("s_unique").get_bool("unique").ok(),
            Some(true),
            "{label}"
        );
        assert_eq!(
            spec("tags_1").get_bool("sparse").ok(),
            Some(true),
            "{label}"
        );
        assert!(
            matches!(
                spec("d_1").get("expireAfterSeconds"),
                Some(Bson::Int32(1_000_000_000)) | Some(Bson::Int64(1_000_000_000))
            ),
            "{label}: {}",
            spec("d_1")
        );
        assert_eq!(
            spec("a_partial")
                .get_document("partialFilterExpression")
                .ok(),
            Some(&doc! {"a": {"$gt": 3}}),
            "{label}"
        );
        assert_eq!(
            spec("bc_collated")
                .get_document("collation")
                .and_then(|c| c.get_str("locale"))
                .ok(),
            Some("en"),
            "{label}"
        );
        assert_eq!(
            spec("s_hidden").get_bool("hidden").ok(),
            Some(true),
            "{label}"
        );
        assert_eq!(
            ns("collated")
                .indexes
                .iter()
                .filter_map(|i| i.get_str("name").ok())
                .collect::<Vec<_>>(),
            ["_id_", "by_name"],
            "{label}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Split and unsplit reads
// ---------------------------------------------------------------------------------

/// Dumps `db.coll` split into many `_id` ranges and unsplit; both must hold exactly the
/// server's documents. Returns the split dump's range count.
fn split_and_unsplit(db: &str, coll: &str) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let ns = format!("{db}.{coll}");
    let server_digest = collection_digest(db, coll);
    assert!(server_digest.0 > 10, "{ns}: too few documents to split");
    let mut ranges = Vec::new();
    for (label, split) in [("split", Some("1KB")), ("whole", None)] {
        let out = dir.path().join(format!("{label}.oxd"));
        let report = dir.path().join(format!("{label}.json"));
        let mut cmd = dump(&server().uri);
        cmd.args(["--db", db, "--collection", coll])
            .arg("--out")
            .arg(&out)
            .arg("--report-json")
            .arg(&report);
        if let Some(s) = split {
            cmd.args(["--split-above", s]);
        }
        run(&mut cmd, 0);
        assert_eq!(cat_digest(&out, &ns), server_digest, "{label} dump of {ns}");
        ranges.push(report_ranges(&read_report(&report), &ns));
    }
    assert!(
        ranges[0] > 1,
        "{ns}: --split-above 1KB read {} range(s)",
        ranges[0]
    );
    assert_eq!(ranges[1], 1, "{ns}: the default split threshold split it");
    ranges[0]
}

#[test]
fn split_and_unsplit_agree_on_ids_of_every_type() {
    let guard = DbGuard::new("dump_split_edge");
    let db = guard.name();
    let manifest = load_edge_corpus(db);
    // The corpus' `_id`s span MinKey, MaxKey, null, numbers of four types, a string,
    // a document, binary, ObjectId, bool, date and timestamp.
    let ids: BTreeSet<String> = cursor(
        &client(),
        db,
        doc! {"aggregate": "types", "pipeline": [{"$project": {"t": {"$type": "$_id"}}}], "cursor": {}},
    )
    .iter()
    .map(|d| match d.get_str("t").expect("t") {
        "int" | "long" | "double" | "decimal" => "number".to_string(),
        t => t.to_string(),
    })
    .collect();
    assert!(ids.len() >= 11, "{ids:?}");
    split_and_unsplit(db, "types");

    // The whole corpus with every collection over 1 KB split: still every document,
    // and the capped collection read whole, in natural order.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("all-split.oxd");
    let report = dir.path().join("all-split.json");
    run(
        dump(&server().uri)
            .args(["--db", db, "--split-above", "1KB"])
            .arg("--out")
            .arg(&out)
            .arg("--report-json")
            .arg(&report),
        0,
    );
    let report = read_report(&report);
    assert!(
        report_ranges(&report, &format!("{db}.indexed")) > 1,
        "{report:#}"
    );
    assert_eq!(
        report_ranges(&report, &format!("{db}.capped")),
        1,
        "{report:#}"
    );
    for (ns, entry) in manifest.as_object().expect("manifest") {
        let Some(count) = entry.get("count") else {
            continue;
        };
        let coll = &ns[db.len() + 1..];
        // system.* are not dumped; the time-series collection is compared below.
        if coll.starts_with("system.") || coll == "series" {
            continue;
        }
        assert_eq!(
            cat_digest(&out, ns),
            (
                count.as_u64().expect("count"),
                entry["sha256"].as_str().expect("sha256").to_string()
            ),
            "{ns}"
        );
    }
    assert_eq!(
        cat_digest(&out, &format!("{db}.series")),
        collection_digest(db, "system.buckets.series")
    );
    let capped = client().database(db).collection::<RawDocumentBuf>("capped");
    let natural: Vec<Vec<u8>> = block_on(async {
        capped
            .find(doc! {})
            .hint(mongodb::options::Hint::Keys(doc! {"$natural": 1}))
            .await?
            .map_ok(RawDocumentBuf::into_bytes)
            .try_collect()
            .await
    })
    .expect("read capped");
    assert_eq!(natural.len(), 100);
    assert!(
        cat_docs(&out, &format!("{db}.capped")) == natural,
        "the capped collection is not in natural order"
    );
}

/// A cursor killed on the server in the middle of a read (`killCursors`, injected
/// with `OXIDUMP_FAULT_KILL_CURSOR` after a few batches): an `_id` range of one type
/// resumes after the last `_id` it read and the dump is complete, with a warning; a
/// range across `_id` types (whose order not every server keeps) and a collection read
/// whole in natural order cannot resume, so the dump fails, naming the collection, and
/// leaves no output.
#[test]
fn a_killed_cursor_resumes_its_range_or_fails_the_dump_clearly() {
    let guard = DbGuard::new("dump_killed");
    let db = guard.name();
    let pad = "k".repeat(400);
    insert(
        db,
        "ints",
        (0..3000).map(|i| doc! {"_id": i, "pad": &pad}).collect(),
    );
    insert(
        db,
        "mixed",
        (0..3000)
            .map(|i| {
                let id = if i % 3 == 0 {
                    Bson::String(format!("s{i:05}"))
                } else {
                    Bson::Int32(i)
                };
                doc! {"_id": id, "pad": &pad}
            })
            .collect(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // Small replies: the fourth reply of some cursor is its last before the kill.
    let killed = |coll: &str, split: bool, out: &Path| {
        let mut cmd = dump(&server().uri);
        cmd.args(["--db", db, "--collection", coll, "--batch-bytes", "16KB"])
            .arg("--out")
            .arg(out)
            .env("OXIDUMP_FAULT_KILL_CURSOR", "4");
        if split {
            cmd.args(["--split-above", "200KB"]);
        }
        cmd
    };

    // One type of `_id`, split into ranges: resumed, complete, with a warning.
    let ns = format!("{db}.ints");
    let out = dir.path().join("ints.oxd");
    let report = dir.path().join("ints.json");
    run(
        killed("ints", true, &out).arg("--report-json").arg(&report),
        0,
    );
    let report = read_report(&report);
    assert!(report_ranges(&report, &ns) > 1, "{report:#}");
    let warned = report.to_string();
    assert!(
        warned.contains("lost the cursor 1 time(s)") && warned.contains(&ns),
        "no warning of the resumed cursor in the report: {report:#}"
    );
    assert_eq!(
        cat_digest(&out, &ns),
        collection_digest(db, "ints"),
        "resumed dump of {ns}"
    );

    // Mixed `_id` types split, and a whole collection in natural order: a clear
    // failure and nothing written.
    for (coll, split) in [("mixed", true), ("ints", false)] {
        let ns = format!("{db}.{coll}");
        let out = dir.path().join(format!("{coll}-{split}.oxd"));
        let res = killed(coll, split, &out).output().expect("run dump");
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{ns}: {}\n{stderr}", res.status);
        assert!(
            stderr.contains(&ns) && stderr.contains("the cursor was lost after"),
            "{ns}: the failure does not say what was lost where:\n{stderr}"
        );
        assert!(!out.exists(), "{}", out.display());
    }
    assert_eq!(entries(dir.path()).len(), 2, "{:?}", entries(dir.path()));
}

#[test]
fn split_and_unsplit_agree_on_ids_of_one_type() {
    let guard = DbGuard::new("dump_split_same");
    let db = guard.name();
    // Numbers: int32, int64 and double representations interleaved, negative values,
    // fractions, extremes, infinities and a NaN (which sorts below every number).
    let mut numbers: Vec<Document> = (-1500i64..1500)
        .map(|i| {
            let id = match i.rem_euclid(3) {
                0 => Bson::Int32(i as i32),
                1 => Bson::Int64(i),
                _ if i % 5 == 0 => Bson::Double(i as f64 + 0.5),
                _ => Bson::Double(i as f64),
            };
            doc! {"_id": id, "pad": "n".repeat(20)}
        })
        .collect();
    numbers.extend([
        doc! {"_id": f64::NAN},
        doc! {"_id": f64::INFINITY},
        doc! {"_id": f64::NEG_INFINITY},
        doc! {"_id": i64::MAX},
        doc! {"_id": i64::MIN},
        doc! {"_id": i32::MIN},
        doc! {"_id": -1e300},
    ]);
    insert(db, "numbers", numbers);
    // Strings of several shapes, the empty string included.
    let mut strings: Vec<Document> = (0..3000)
        .map(|i| {
            let id = if i % 2 == 0 {
                format!("k{i:05}")
            } else {
                format!("K{i}-ü")
            };
            doc! {"_id": id, "pad": "s".repeat(20)}
        })
        .collect();
    strings.push(doc! {"_id": ""});
    insert(db, "strings", strings);

    split_and_unsplit(db, "numbers");
    split_and_unsplit(db, "strings");
}

// ---------------------------------------------------------------------------------
// Namespace selection
// ---------------------------------------------------------------------------------

#[test]
fn namespace_filters_select_exactly_what_they_say() {
    let mut guard = DbGuard::new("dump_flt1");
    let d1 = guard.name().to_string();
    let d2 = guard.add("dump_flt2");
    let d3 = guard.add("dump_flt3");
    for coll in ["a1", "a2", "b1", "system.js"] {
        insert(&d1, coll, vec![doc! {"_id": 1, "c": coll}]);
    }
    command(
        &d1,
        doc! {"create": "system.profile", "capped": true, "size": 1 << 20},
    );
    command(
        &d1,
        doc! {"create": "v", "viewOn": "a1", "pipeline": [{"$match": {"_id": 1}}]},
    );
    for coll in ["a1", "x"] {
        insert(&d2, coll, vec![doc! {"_id": 1}]);
    }
    insert(&d3, "c", vec![doc! {"_id": 1}]);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    let mut dumped = |args: &[&str]| -> BTreeSet<String> {
        n += 1;
        let out = dir.path().join(format!("f{n}.oxd"));
        run(dump(&server().uri).args(args).arg("--out").arg(&out), 0);
        listed_names(&out)
    };
    let set = |names: &[String]| names.iter().cloned().collect::<BTreeSet<String>>();
    let ns = |db: &str, c: &str| format!("{db}.{c}");

    // One database: system.js is kept, system.profile and system.views are not.
    let d1_default = set(&[
        ns(&d1, "a1"),
        ns(&d1, "a2"),
        ns(&d1, "b1"),
        ns(&d1, "system.js"),
        ns(&d1, "v"),
    ]);
    assert_eq!(dumped(&["--db", &d1]), d1_default);
    // --db is repeatable.
    let mut d1_d2 = d1_default.clone();
    d1_d2.extend([ns(&d2, "a1"), ns(&d2, "x")]);
    assert_eq!(dumped(&["--db", &d1, "--db", &d2]), d1_d2);
    // One collection.
    assert_eq!(
        dumped(&["--db", &d1, "--collection", "a2"]),
        set(&[ns(&d1, "a2")])
    );
    // A wildcard include, across all databases.
    assert_eq!(
        dumped(&["--ns-include", &format!("{d1}.a*")]),
        set(&[ns(&d1, "a1"), ns(&d1, "a2")])
    );
    // Includes are repeatable; a wildcard does not name system collections.
    let mut both = set(&[ns(&d2, "a1"), ns(&d2, "x")]);
    both.extend(d1_default.iter().cloned());
    assert_eq!(
        dumped(&[
            "--ns-include",
            &format!("{d1}.*"),
            "--ns-include",
            &format!("{d2}.*")
        ]),
        both
    );
    // Exclude wins over include.
    assert_eq!(
        dumped(&[
            "--ns-include",
            &format!("{d1}.*"),
            "--ns-exclude",
            &format!("{d1}.a*")
        ]),
        set(&[ns(&d1, "b1"), ns(&d1, "system.js"), ns(&d1, "v")])
    );
    // Exclude with --db.
    assert_eq!(
        dumped(&[
            "--db",
            &d1,
            "--ns-exclude",
            &format!("{d1}.b*"),
            "--ns-exclude",
            &format!("{d1}.v")
        ]),
        set(&[ns(&d1, "a1"), ns(&d1, "a2"), ns(&d1, "system.js")])
    );
    // A system collection named explicitly is dumped.
    assert_eq!(
        dumped(&["--ns-include", &format!("{d1}.system.profile")]),
        set(&[ns(&d1, "system.profile")])
    );
}

#[test]
fn ns_exclude_wins_over_an_exact_ns_include() {
    let guard = DbGuard::new("dump_flt_exact");
    let d1 = guard.name();
    insert(d1, "a1", vec![doc! {"_id": 1}]);
    insert(d1, "b1", vec![doc! {"_id": 1}]);
    let dir = tempfile::tempdir().expect("tempdir");
    // Two exact includes, one of them excluded: only the other one.
    let out = dir.path().join("one.oxd");
    run(
        dump(&server().uri)
            .args(["--ns-include", &format!("{d1}.a1")])
            .args(["--ns-include", &format!("{d1}.b1")])
            .args(["--ns-exclude", &format!("{d1}.a*")])
            .arg("--out")
            .arg(&out),
        0,
    );
    assert_eq!(listed_names(&out), BTreeSet::from([format!("{d1}.b1")]));
    // Everything included is excluded: nothing to dump, which is an error, not an
    // empty archive.
    let out = dir.path().join("none.oxd");
    let (_, _, stderr) = run(
        dump(&server().uri)
            .args(["--ns-include", &format!("{d1}.a1")])
            .args(["--ns-exclude", &format!("{d1}.a1")])
            .arg("--out")
            .arg(&out),
        2,
    );
    assert!(stderr.contains("nothing to dump"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn collection_needs_exactly_one_db() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.oxd");
    for args in [
        &["--collection", "c"][..],
        &["--db", "a", "--db", "b", "--collection", "c"],
    ] {
        let (_, _, stderr) = run(dump(&server().uri).args(args).arg("--out").arg(&out), 2);
        assert!(
            stderr.contains("--collection") && stderr.contains("one --db"),
            "{args:?}: {stderr}"
        );
    }
    assert!(entries(dir.path()).is_empty());
}

// ---------------------------------------------------------------------------------
// --query
// ---------------------------------------------------------------------------------

#[test]
fn query_dumps_exactly_the_matching_documents() {
    let guard = DbGuard::new("dump_query");
    let db = guard.name();
    let mut docs: Vec<Document> = (0..20).map(|i| doc! {"_id": i, "k": i}).collect();
    docs.extend([
        doc! {"_id": 100, "k": 5.5},
        doc! {"_id": 101, "k": i64::MAX},
        doc! {"_id": 102, "k": "7"}, // another type: never $gte a number
        doc! {"_id": 103},           // no k
        doc! {"_id": 104, "k": [1, 9]}, // an element matches
        doc! {"_id": 105, "k": [1, 2]}, // none does
        doc! {"_id": 106, "k": bson::Decimal128::from_bytes([0; 16])},
        doc! {"_id": 107, "k": null},
    ]);
    insert(db, "q", docs);
    insert(db, "other", vec![doc! {"_id": 1, "k": 50}]);

    let filter = doc! {"k": {"$gte": 5}};
    let c = client().database(db).collection::<RawDocumentBuf>("q");
    let matching: Vec<Vec<u8>> = block_on(async {
        c.find(filter)
            .await?
            .map_ok(RawDocumentBuf::into_bytes)
            .try_collect()
            .await
    })
    .expect("find");
    // 5..19, 5.5, i64::MAX, [1, 9]
    assert_eq!(matching.len(), 18);

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("q.oxd");
    run(
        dump(&server().uri)
            .args(["--db", db, "--collection", "q"])
            .args(["--query", r#"{"k": {"$gte": 5}}"#])
            .arg("--out")
            .arg(&out),
        0,
    );
    assert_eq!(
        listed_names(&out),
        BTreeSet::from([format!("{db}.q")]),
        "only the queried collection"
    );
    assert_eq!(cat_digest(&out, &format!("{db}.q")), docs_digest(matching));
    assert_verifies(&out);

    // Extended JSON in the query.
    let out2 = dir.path().join("q2.oxd");
    run(
        dump(&server().uri)
            .args(["--db", db, "--collection", "q"])
            .args([
                "--query",
                r#"{"k": {"$numberLong": "9223372036854775807"}}"#,
            ])
            .arg("--out")
            .arg(&out2),
        0,
    );
    assert_eq!(cat_digest(&out2, &format!("{db}.q")).0, 1);

    // --query filters one collection: it needs --collection.
    for args in [&["--db", db][..], &[]] {
        let out = dir.path().join("refused.oxd");
        let (_, _, stderr) = run(
            dump(&server().uri)
                .args(args)
                .args(["--query", r#"{"k": 1}"#])
                .arg("--out")
                .arg(&out),
            2,
        );
        assert!(
            stderr.contains("--query") && stderr.contains("--collection"),
            "{stderr}"
        );
        assert!(!out.exists());
    }
    // Not JSON.
    let out = dir.path().join("bad.oxd");
    let (_, _, stderr) = run(
        dump(&server().uri)
            .args(["--db", db, "--collection", "q", "--query", "{k: "])
            .arg("--out")
            .arg(&out),
        2,
    );
    assert!(stderr.contains("--query"), "{stderr}");
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------
// --oplog
// ---------------------------------------------------------------------------------

fn parse_ts(s: &str) -> Timestamp {
    let (t, i) = s.split_once(':').unwrap_or_else(|| panic!("timestamp {s}"));
    Timestamp {
        time: t.parse().expect("seconds"),
        increment: i.parse().expect("increment"),
    }
}

#[test]
fn oplog_captures_writes_made_during_the_dump() {
    // A server of its own: --oplog dumps the whole server, which on the shared one
    // would include every other test's databases while they come and go.
    let server = PrivateServer::start(&[]);
    let uri = server.uri();
    let c = server.client();
    let db = "oplogdb";
    // Enough data that the dump takes a moment.
    let coll = c.database(db).collection::<Document>("seed");
    block_on(async {
        for chunk in 0..4 {
            coll.insert_many(kilobyte_docs(chunk * 5000..(chunk + 1) * 5000))
                .await?;
        }
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("seed");

    // One writer inserts _id 0, 1, 2… one at a time until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicI64::new(-1));
    let live = c.database(db).collection::<Document>("live");
    let writer = {
        let (stop, last) = (stop.clone(), last.clone());
        std::thread::spawn(move || {
            block_on(async {
                let mut i = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    live.insert_one(doc! {"_id": i, "at": bson::DateTime::now()})
                        .await?;
                    last.store(i, Ordering::SeqCst);
                    i += 1;
                }
                Ok::<_, mongodb::error::Error>(())
            })
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || last.load(Ordering::SeqCst)
            >= 100),
        "the writer does not write"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("oplog.oxd");
    let report = dir.path().join("oplog.json");
    let before = last.load(Ordering::SeqCst);
    let result = dump(&uri)
        .arg("--oplog")
        .arg("--out")
        .arg(&out)
        .arg("--report-json")
        .arg(&report)
        .output()
        .expect("run dump");
    let after = last.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer thread").expect("inserts");
    assert!(
        result.status.success(),
        "dump --oplog: {}\n{}",
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(after > before, "no insert happened during the dump");
    assert_verifies(&out);

    // The window, in the manifest and the report.
    let ls = ls_json(&out);
    let window = ls["oplog"]
        .as_array()
        .expect("an oplog window in ls --json");
    let (start, end) = (
        parse_ts(window[0].as_str().expect("start")),
        parse_ts(window[1].as_str().expect("end")),
    );
    assert!(start <= end, "{start:?} > {end:?}");
    let rep = read_report(&report);
    assert_eq!(rep["oplog"], ls["oplog"]);
    let names = listed(&out);
    assert_eq!(
        names.get("local.oplog.rs").map(String::as_str),
        Some("oplog")
    );
    assert_eq!(
        names.get(&format!("{db}.live")).map(String::as_str),
        Some("collection")
    );
    let cat = catalog(&out);
    let oplog_ns = &cat.namespaces[cat.find("local", "oplog.rs").expect("oplog ns")];
    assert_eq!(oplog_ns.kind, oxidump::catalog::NsKind::Oplog);

    // Every entry lies in the window; the writer's inserts are among them.
    let entries = cat_docs(&out, "local.oplog.rs");
    assert!(!entries.is_empty(), "an empty oplog stream");
    let mut oplog_ids = BTreeSet::new();
    for raw in &entries {
        let e = Document::from_reader(&mut raw.as_slice()).expect("an oplog entry decodes");
        let ts = e
            .get_timestamp("ts")
            .unwrap_or_else(|_| panic!("no ts: {e}"));
        assert!(
            start <= ts && ts <= end,
            "{ts:?} outside {start:?}..{end:?}: {e}"
        );
        if e.get_str("ns").ok() == Some(format!("{db}.live").as_str())
            && e.get_str("op").ok() == Some("i")
        {
            let id = e.get_document("o").expect("o").get_i64("_id").expect("_id");
            oplog_ids.insert(id);
        }
    }
    assert!(
        !oplog_ids.is_empty(),
        "no insert into {db}.live in the captured oplog ({} entries)",
        entries.len()
    );
    // Consistency: what the collection missed, the oplog has. The collection's documents
    // and the oplog's inserts together are 0..=N without a gap.
    let coll_ids: BTreeSet<i64> = cat_docs(&out, &format!("{db}.live"))
        .iter()
        .map(|raw| {
            Document::from_reader(&mut raw.as_slice())
                .expect("decode")
                .get_i64("_id")
                .expect("_id")
        })
        .collect();
    let all: BTreeSet<i64> = coll_ids.union(&oplog_ids).copied().collect();
    let max = *all.last().expect("ids");
    assert!(max >= before, "{max} < {before}");
    let missing: Vec<i64> = (0..=max).filter(|i| !all.contains(i)).take(10).collect();
    assert!(
        missing.is_empty(),
        "inserts in neither the collection nor the oplog: {missing:?} (collection {}..={}, oplog {:?}..={:?})",
        coll_ids.first().unwrap_or(&-1),
        coll_ids.last().unwrap_or(&-1),
        oplog_ids.first(),
        oplog_ids.last()
    );

    // --oplog captures the whole server's oplog: not with a selection.
    for args in [
        &["--db", db][..],
        &["--ns-include", "oplogdb.*"],
        &["--db", db, "--collection", "live"],
    ] {
        let refused = dir.path().join("refused.oxd");
        let (_, _, stderr) = run(
            dump(&uri)
                .arg("--oplog")
                .args(args)
                .arg("--out")
                .arg(&refused),
            2,
        );
        assert!(stderr.contains("--oplog"), "{args:?}: {stderr}");
        assert!(!refused.exists());
    }
}

// ---------------------------------------------------------------------------------
// Standard output
// ---------------------------------------------------------------------------------

#[test]
fn dump_to_stdout_streams_a_verifiable_backup() {
    let guard = DbGuard::new("dump_stdout");
    let db = guard.name();
    insert(
        db,
        "docs",
        (0..2000)
            .map(|i| doc! {"_id": i, "s": format!("value {i}")})
            .collect(),
    );
    insert(db, "more", vec![doc! {"_id": "x", "n": 1.5}]);
    let expected = [
        (format!("{db}.docs"), collection_digest(db, "docs")),
        (format!("{db}.more"), collection_digest(db, "more")),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (label, flags, magic) in [
        ("oxd", &[][..], None),
        (
            "archive",
            &["--format", "mongodump-archive"][..],
            Some(&[0x6D, 0xE2, 0x99, 0x81][..]),
        ),
        (
            "archive-gz",
            &["--format", "mongodump-archive", "--gzip"][..],
            Some(&[0x1F, 0x8B][..]),
        ),
    ] {
        let out = dump(&server().uri)
            .args(["--db", db, "--out", "-"])
            .args(flags)
            .output()
            .expect("run dump");
        assert!(
            out.status.success(),
            "{label}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = out.stdout;
        if let Some(magic) = magic {
            assert!(bytes.starts_with(magic), "{label}: wrong magic");
        }
        // Nothing but the stream on stdout, and nothing written to the working directory.
        assert!(entries(dir.path()).is_empty());

        // `verify -` accepts it from standard input.
        let mut verify = oxidump()
            .args(["verify", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run verify");
        let mut stdin = verify.stdin.take().expect("stdin");
        let feed = {
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                use std::io::Write as _;
                stdin.write_all(&bytes)
            })
        };
        let verified = verify.wait_with_output().expect("verify");
        feed.join().expect("feeder").expect("write to verify");
        assert!(
            verified.status.success(),
            "{label}: verify -: {}\n{}{}",
            verified.status,
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        );

        // And holds the documents.
        let file = dir.path().join(format!("stdout-{label}"));
        std::fs::write(&file, &bytes).expect("write");
        for (ns, digest) in &expected {
            assert_eq!(&cat_digest(&file, ns), digest, "{label}: {ns}");
        }
        std::fs::remove_file(&file).expect("remove");
    }
    // A directory cannot go to standard output.
    let (_, stdout, stderr) = run(
        dump(&server().uri).args(["--db", db, "--out", "-", "--format", "mongodump-dir"]),
        2,
    );
    assert!(stdout.is_empty());
    assert!(stderr.contains("standard output"), "{stderr}");
}

#[test]
fn cat_reads_a_dump_from_stdin() {
    let guard = DbGuard::new("dump_cat_stdin");
    let db = guard.name();
    insert(db, "docs", (0..10).map(|i| doc! {"_id": i}).collect());
    let out = dump(&server().uri)
        .args(["--db", db, "--out", "-"])
        .output()
        .expect("dump");
    assert!(out.status.success());
    let mut cat = oxidump()
        .args(["cat", "-", "--ns", &format!("{db}.docs")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cat");
    {
        use std::io::Write as _;
        let mut stdin = cat.stdin.take().expect("stdin");
        stdin.write_all(&out.stdout).expect("feed");
    }
    let catted = cat.wait_with_output().expect("cat");
    assert!(
        catted.status.success(),
        "{}",
        String::from_utf8_lossy(&catted.stderr)
    );
    assert_eq!(
        docs_digest(split_docs(&catted.stdout)),
        collection_digest(db, "docs")
    );
}

// ---------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------

#[test]
fn credentials_in_the_uri_never_reach_any_output() {
    let server = PrivateServer::start(&["--auth"]);
    // The first user, through the localhost exception.
    let anon = server.client();
    block_on(async {
        anon.database("admin")
            .run_command(doc! {"createUser": "backup", "pwd": PASSWORD, "roles": ["root"]})
            .await
    })
    .expect("create the first user through the localhost exception");
    let uri = server.uri_with_credentials("backup", PASSWORD);
    assert!(
        uri.contains(PASSWORD),
        "the password needs no escaping: {uri}"
    );
    let c = server.client_for(&uri);
    block_on(async {
        let db = c.database("shop");
        db.collection::<Document>("orders")
            .insert_many((0..500).map(|i| doc! {"_id": i, "total": i * 3}))
            .await?;
        db.collection::<Document>("users")
            .insert_one(doc! {"_id": "u1", "name": "someone"})
            .await
    })
    .expect("load");

    let dir = tempfile::tempdir().expect("tempdir");
    let password = PASSWORD.as_bytes();
    for (label, flags) in FORMATS {
        let out = dir.path().join(format!("cred-{label}"));
        let report = dir.path().join(format!("cred-{label}.json"));
        // Not --quiet: the summary is printed too.
        let (_, stdout, stderr) = run(
            oxidump()
                .args(["dump", "--uri", &uri])
                .args(flags)
                .arg("--out")
                .arg(&out)
                .arg("--report-json")
                .arg(&report),
            0,
        );
        assert!(
            !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
            "{label}: {stderr}"
        );
        let report_text = std::fs::read_to_string(&report).expect("report");
        assert!(!report_text.contains(PASSWORD), "{label}: {report_text}");
        assert!(
            report_text.contains("backup@"),
            "{label}: the user name may stay: {report_text}"
        );
        for (file, bytes) in all_bytes(&out) {
            assert!(
                !contains(&bytes, password),
                "{label}: the password is in {}",
                file.display()
            );
        }
        // Decompressed: the manifest and every namespace's documents.
        let listing = ls_json(&out);
        let ls = serde_json::to_string(&listing).expect("json");
        assert!(!ls.contains(PASSWORD), "{label}: {ls}");
        // OXD records the source, with the user name (mongodump's layouts have no
        // place for it).
        if label == "oxd" {
            let source = listing["uri"].as_str().unwrap_or_default();
            assert!(source.starts_with("mongodb://backup@"), "{label}: {ls}");
        }
        for ns in listed_names(&out) {
            for d in cat_docs(&out, &ns) {
                assert!(!contains(&d, password), "{label}: the password is in {ns}");
            }
        }
        assert_eq!(
            cat_digest(&out, "shop.orders").0,
            500,
            "{label}: the dump holds the data"
        );
    }

    // A wrong password: a clear refusal, exit 2, nothing written, and the wrong
    // password is not echoed either.
    let wrong = "Wr0ng-Pa55word!";
    let out = dir.path().join("wrong.oxd");
    let (_, stdout, stderr) = run(
        oxidump()
            .args([
                "dump",
                "--uri",
                &server.uri_with_credentials("backup", wrong),
            ])
            .arg("--out")
            .arg(&out),
        2,
    );
    assert!(stderr.contains("authentication"), "{stderr}");
    assert!(
        stderr.contains(&format!("backup@{}", server.addr())),
        "{stderr}"
    );
    assert!(
        !stderr.contains(wrong) && !stdout.contains(wrong),
        "{stderr}"
    );
    assert!(!out.exists());
    assert!(
        !entries(dir.path())
            .iter()
            .any(|p| p.to_string_lossy().contains("wrong")),
        "{:?}",
        entries(dir.path())
    );
}

// ---------------------------------------------------------------------------------
// Interrupted and failed dumps
// ---------------------------------------------------------------------------------

/// Waits until the dump writing `out` has created its temporary file (it is under way)
/// and is still running.
fn wait_for_partial(child: &mut std::process::Child, dir: &Path) {
    let started = wait_until(Duration::from_secs(30), || {
        !entries(dir).is_empty() || child.try_wait().map_or(true, |s| s.is_some())
    });
    assert!(started, "the dump created no file within 30 s");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the dump ended before it could be interrupted; give it more data"
    );
}

#[test]
fn an_interrupted_dump_leaves_nothing() {
    let guard = DbGuard::new("dump_sigint");
    let db = guard.name();
    // About 200 MB.
    for chunk in 0..20 {
        insert(
            db,
            "big",
            kilobyte_docs(chunk * 10_000..(chunk + 1) * 10_000),
        );
    }
    // Ctrl-C on an OXD file; a termination signal on a mongodump directory.
    for (sig, flags) in [
        ("INT", &[][..]),
        ("TERM", &["--format", "mongodump-dir"][..]),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("big.out");
        let spawned = Instant::now();
        // Held after its writer's second run of documents until the signal: the
        // server may serve the whole collection in well under a second.
        let mut child = dump(&server().uri)
            .args(["--db", db])
            .args(flags)
            .arg("--out")
            .arg(&out)
            .env("OXIDUMP_FAULT_HOLD", "dump-docs:2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dump");
        wait_for_partial(&mut child, dir.path());
        // About a second in, and well after it started writing.
        std::thread::sleep(
            Duration::from_secs(1)
                .saturating_sub(spawned.elapsed())
                .max(Duration::from_millis(200)),
        );
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "SIG{sig}: the dump finished too soon to be interrupted"
        );
        signal(child.id(), sig);
        let sent = Instant::now();
        let (code, _, stderr) = finish(child);
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "SIG{sig}: took {:?} to stop",
            sent.elapsed()
        );
        assert_ne!(code, 0, "SIG{sig}: {stderr}");
        assert!(stderr.contains("interrupted"), "SIG{sig}: {stderr}");
        let left = entries(dir.path());
        if flags.is_empty() {
            // An OXD file keeps what it wrote for --resume: hidden, and marked partial.
            assert_eq!(left.len(), 1, "SIG{sig}: {left:?}");
            assert!(
                oxidump::output::is_partial_output(&left[0]),
                "SIG{sig}: {left:?}"
            );
            assert!(stderr.contains("--resume"), "SIG{sig}: {stderr}");
        } else {
            assert_eq!(left, Vec::<PathBuf>::new(), "SIG{sig}: left behind");
        }
    }
}

#[test]
fn a_server_killed_mid_dump_fails_the_dump_and_leaves_nothing() {
    let mut server = PrivateServer::start(&[]);
    let c = server.client();
    let coll = c.database("big").collection::<Document>("c");
    // About 100 MB.
    block_on(async {
        for chunk in 0..10 {
            coll.insert_many(kilobyte_docs(chunk * 10_000..(chunk + 1) * 10_000))
                .await?;
        }
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("load");
    drop(c);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("big.oxd");
    let uri = format!("{}&serverSelectionTimeoutMS=2000", server.uri());
    let mut child = dump(&uri)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dump");
    wait_for_partial(&mut child, dir.path());
    server.kill();
    let killed = Instant::now();
    let (code, _, stderr) = finish(child);
    assert!(
        killed.elapsed() < Duration::from_secs(30),
        "took {:?} to give up",
        killed.elapsed()
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("oxidump: error:"), "{stderr}");
    // The reason: a read failed because the connection went away.
    let lower = stderr.to_lowercase();
    assert!(
        lower.contains("reading "),
        "says what was being read: {stderr}"
    );
    assert!(
        [
            "connection",
            "i/o error",
            "cannot reach",
            "server selection"
        ]
        .iter()
        .any(|w| lower.contains(w)),
        "says the server went away: {stderr}"
    );
    assert_eq!(entries(dir.path()), Vec::<PathBuf>::new(), "left behind");
}

#[test]
fn an_unreachable_server_is_reported_quickly() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (uri, shown) in [
        (
            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=2000".to_string(),
            "mongodb://127.0.0.1:1/",
        ),
        (
            format!("mongodb://someone:{PASSWORD}@127.0.0.1:1/?serverSelectionTimeoutMS=2000"),
            "mongodb://someone@127.0.0.1:1/",
        ),
    ] {
        let started = Instant::now();
        let (_, stdout, stderr) = run(
            oxidump()
                .args(["dump", "--uri", &uri])
                .current_dir(dir.path())
                .args(["--out", "unreachable.oxd"]),
            2,
        );
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(stderr.contains("cannot reach"), "{stderr}");
        assert!(stderr.contains(shown), "{stderr}");
        assert!(
            !stderr.contains(PASSWORD) && !stdout.contains(PASSWORD),
            "{stderr}"
        );
        assert_eq!(entries(dir.path()), Vec::<PathBuf>::new());
    }
}

// ---------------------------------------------------------------------------------
// Default output name
// ---------------------------------------------------------------------------------

#[test]
fn default_output_is_named_after_the_source_and_the_time() {
    let guard = DbGuard::new("dump_default_name");
    let db = guard.name();
    insert(db, "c", vec![doc! {"_id": 1}]);
    let uri = &server().uri;
    // host:port as the URI spells it, ':' made '_'.
    let host = uri
        .split_once("://")
        .map(|(_, r)| r)
        .expect("scheme")
        .split(['/', '?', ','])
        .next()
        .expect("host")
        .rsplit('@')
        .next()
        .expect("host")
        .replace([':', '[', ']'], "_");
    let dir = tempfile::tempdir().expect("tempdir");
    let before = bson::DateTime::now().timestamp_millis() / 1000;
    run(dump(uri).args(["--db", db]).current_dir(dir.path()), 0);
    let after = bson::DateTime::now().timestamp_millis() / 1000;
    let files = entries(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].to_string_lossy().into_owned();
    let re = regex::Regex::new(&format!(
        r"^{}-(\d{{4}})(\d{{2}})(\d{{2}})T(\d{{2}})(\d{{2}})(\d{{2}})Z\.oxd$",
        regex::escape(&host)
    ))
    .expect("regex");
    let caps = re
        .captures(&name)
        .unwrap_or_else(|| panic!("{name:?} is not {host}-YYYYMMDDTHHMMSSZ.oxd"));
    let stamp = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &caps[1], &caps[2], &caps[3], &caps[4], &caps[5], &caps[6]
    );
    let at = bson::DateTime::parse_rfc3339_str(&stamp)
        .unwrap_or_else(|e| panic!("{stamp}: {e}"))
        .timestamp_millis()
        / 1000;
    assert!(before <= at && at <= after, "{stamp} not within the run");
    let path = dir.path().join(&name);
    assert_verifies(&path);
    assert_eq!(listed_names(&path), BTreeSet::from([format!("{db}.c")]));
}

// ---------------------------------------------------------------------------------
// Existing outputs, servers without an oplog
// ---------------------------------------------------------------------------------

#[test]
fn an_existing_output_is_kept_unless_forced() {
    let guard = DbGuard::new("dump_exists");
    let db = guard.name();
    insert(db, "c", vec![doc! {"_id": 1}]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("there.oxd");
    std::fs::write(&out, b"precious").expect("write");
    let (_, _, stderr) = run(
        dump(&server().uri)
            .args(["--db", db])
            .arg("--out")
            .arg(&out),
        2,
    );
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(&out).expect("read"), b"precious");
    assert_eq!(entries(dir.path()), [PathBuf::from("there.oxd")]);
    run(
        dump(&server().uri)
            .args(["--db", db, "--force"])
            .arg("--out")
            .arg(&out),
        0,
    );
    assert_eq!(
        cat_digest(&out, &format!("{db}.c")),
        collection_digest(db, "c")
    );
    assert_eq!(entries(dir.path()), [PathBuf::from("there.oxd")]);
}

#[test]
fn oplog_needs_a_replica_set_member() {
    let server = PrivateServer::start(&["--standalone"]);
    let c = server.client();
    block_on(async {
        c.database("s")
            .collection::<Document>("c")
            .insert_one(doc! {"_id": 1})
            .await
    })
    .expect("insert");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("oplog.oxd");
    let (_, _, stderr) = run(dump(&server.uri()).arg("--oplog").arg("--out").arg(&out), 2);
    assert!(stderr.contains("replica set"), "{stderr}");
    assert_eq!(entries(dir.path()), Vec::<PathBuf>::new());
}
