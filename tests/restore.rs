//! `oxidump restore`, run as a binary against a real server: round trips of the
//! edge-case corpus through every dump format, the mongodump fixtures, namespace
//! remapping, the safety rules (non-empty targets, `--drop`, `--append`, system
//! databases, `--dry-run`), damaged input, duplicate keys, a server that disappears
//! mid-restore, and the JSON report.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bson::{Bson, Document, RawDocumentBuf, doc};
use futures_util::TryStreamExt as _;
use serde_json::Value;

use crate::common::private_server::PrivateServer;
use crate::common::{
    DbGuard, block_on, client, collection_digest, docs_digest, fixture_path, load_edge_corpus,
    oxidump, run, server,
};

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// The mongodump 100.18 fixtures.
const FIXTURES: &str = "mongodump-100.18";

/// Collections of the edge corpus that only the time-series tests look at.
const TIME_SERIES: [&str; 2] = ["series", "system.buckets.series"];

/// `oxidump restore PATH --uri <test server> ARGS...`.
fn restore_cmd(path: &Path, args: &[&str]) -> Command {
    let mut cmd = oxidump();
    cmd.arg("restore")
        .arg(path)
        .args(["--uri", &server().uri])
        .args(args);
    cmd
}

/// `oxidump dump --uri <test server> --db DB --out OUT -q ARGS...`, expected to succeed.
fn dump(db: &str, out: &Path, args: &[&str]) {
    let mut cmd = oxidump();
    cmd.arg("dump")
        .args(["--uri", &server().uri, "--db", db, "-q", "--out"])
        .arg(out)
        .args(args);
    run(&mut cmd, 0);
}

/// Runs `cmd` and returns its exit code, asserting only that it is not 0.
fn run_failing(cmd: &mut Command) -> (i32, String, String) {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(
        code, 0,
        "{shown} succeeded but should have failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    (code, stdout, stderr)
}

/// Runs a database command on the test server.
/// Awaits a driver action on the shared runtime.
fn wait<F: IntoFuture>(f: F) -> F::Output {
    block_on(async move { f.await })
}

fn command(db: &str, cmd: Document) -> Document {
    let shown = format!("{cmd}");
    wait(client().database(db).run_command(cmd)).unwrap_or_else(|e| panic!("{db}: {shown}: {e}"))
}

/// The first batch of a cursor-returning command (enough for the small databases
/// the tests create).
fn first_batch(db: &str, cmd: Document) -> Vec<Document> {
    let reply = command(db, cmd);
    let cursor = reply.get_document("cursor").expect("a cursor");
    assert_eq!(
        cursor.get_i64("id").unwrap_or(0),
        0,
        "more than one batch: {reply}"
    );
    cursor
        .get_array("firstBatch")
        .expect("firstBatch")
        .iter()
        .map(|d| d.as_document().expect("a document").clone())
        .collect()
}

/// A document as a string: top-level fields sorted (their order carries no meaning
/// in options and index specs), nested values in their order (an index key's order
/// does matter), numbers in relaxed Extended JSON (so 1 and 1 as int64 compare equal).
fn canon(d: &Document) -> String {
    let sorted: BTreeMap<&str, Value> = d
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone().into_relaxed_extjson()))
        .collect();
    serde_json::to_string(&sorted).expect("JSON")
}

/// Collection names of `db` with their type and options, as `listCollections` says.
fn collections(db: &str) -> BTreeMap<String, String> {
    first_batch(db, doc! { "listCollections": 1 })
        .into_iter()
        .map(|c| {
            let name = c.get_str("name").expect("name").to_string();
            let kind = c.get_str("type").unwrap_or("collection").to_string();
            let options = c.get_document("options").cloned().unwrap_or_default();
            (name, format!("{kind} {}", canon(&options)))
        })
        .collect()
}

/// Index definitions of `db.coll` by name, without `v` and `ns`.
fn index_defs(db: &str, coll: &str) -> BTreeMap<String, String> {
    first_batch(db, doc! { "listIndexes": coll })
        .into_iter()
        .map(|i| index_entry(&i))
        .collect()
}

fn index_entry(spec: &Document) -> (String, String) {
    let mut spec = spec.clone();
    spec.remove("v");
    spec.remove("ns");
    (
        spec.get_str("name").expect("name").to_string(),
        canon(&spec),
    )
}

/// Raw documents of `db.coll`.
fn raw_docs(db: &str, coll: &str) -> Vec<Vec<u8>> {
    let coll = client().database(db).collection::<RawDocumentBuf>(coll);
    block_on(async {
        coll.find(doc! {})
            .await?
            .map_ok(RawDocumentBuf::into_bytes)
            .try_collect()
            .await
    })
    .unwrap_or_else(|e| panic!("cannot read {db}.{}: {e}", coll.name()))
}

fn insert(db: &str, coll: &str, docs: Vec<Document>) {
    let c = client().database(db).collection::<Document>(coll);
    wait(c.insert_many(docs)).unwrap_or_else(|e| panic!("insert into {db}.{coll}: {e}"));
}

fn database_names() -> BTreeSet<String> {
    wait(client().list_database_names())
        .expect("listDatabases")
        .into_iter()
        .collect()
}

/// The restore report written with `--report-json`.
fn read_report(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report is not JSON ({e}):\n{text}"))
}

/// The report's entry for source namespace `source`.
fn ns_report<'a>(report: &'a Value, source: &str) -> &'a Value {
    report["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .find(|n| n["source"] == source)
        .unwrap_or_else(|| panic!("no namespace {source} in the report:\n{report:#}"))
}

fn u64_of(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not a count in {v:#}"))
}

/// The whole documents of one run of concatenated BSON.
fn split_docs(mut run: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !run.is_empty() {
        let len = i32::from_le_bytes(run[..4].try_into().expect("4 bytes")) as usize;
        out.push(run[..len].to_vec());
        run = &run[len..];
    }
    out
}

/// Pseudo-random lowercase hex, `len` characters (xorshift; no two seeds alike).
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s.truncate(len);
    s
}

/// A small source database: `a` (10 documents, an index), `b` (5 documents), `c`
/// (3 documents).
fn small_source(guard: &DbGuard) -> String {
    let db = guard.name().to_string();
    insert(
        &db,
        "a",
        (0..10)
            .map(|i| doc! { "_id": i, "k": i * 3, "s": format!("a{i}") })
            .collect(),
    );
    command(
        &db,
        doc! { "createIndexes": "a", "indexes": [{ "key": { "k": 1 }, "name": "k_1", "unique": true }] },
    );
    insert(
        &db,
        "b",
        (0..5).map(|i| doc! { "_id": format!("b{i}") }).collect(),
    );
    insert(
        &db,
        "c",
        (0..3).map(|i| doc! { "_id": i, "c": true }).collect(),
    );
    db
}

// ---------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------

/// Checks that `dst` holds what the edge corpus in `src` holds, apart from the
/// time-series collection: same collections with the same options, per collection
/// the same count, digest and index definitions, and a working view.
fn assert_same_corpus(src: &str, dst: &str, manifest: &Value, how: &str) {
    let skip = |name: &str| TIME_SERIES.contains(&name);
    let src_colls: BTreeMap<_, _> = collections(src)
        .into_iter()
        .filter(|(n, _)| !skip(n))
        .collect();
    let dst_colls: BTreeMap<_, _> = collections(dst)
        .into_iter()
        .filter(|(n, _)| !skip(n))
        .collect();
    assert_eq!(
        src_colls, dst_colls,
        "{how}: collections and their options (listCollections)"
    );
    for (ns, entry) in manifest.as_object().expect("manifest") {
        let coll = &ns[src.len() + 1..];
        if skip(coll) || coll == "system.views" {
            continue;
        }
        if entry.get("type").and_then(Value::as_str) == Some("view") {
            assert_eq!(
                collection_digest(dst, coll),
                collection_digest(src, coll),
                "{how}: view {coll} returns other documents"
            );
            continue;
        }
        let expected = (
            entry["count"].as_u64().expect("count"),
            entry["sha256"].as_str().expect("sha256").to_string(),
        );
        assert_eq!(
            collection_digest(src, coll),
            expected,
            "{how}: the source {coll} is not what the generator loaded"
        );
        assert_eq!(
            collection_digest(dst, coll),
            expected,
            "{how}: {coll} restored with other documents"
        );
        assert_eq!(
            index_defs(dst, coll),
            index_defs(src, coll),
            "{how}: index definitions of {coll}"
        );
    }
}

/// The edge corpus dumped as OXD, as a gzipped mongodump archive and as a mongodump
/// directory, each restored under another database name, comes back identical:
/// documents byte for byte, collection options, index definitions, the view. The
/// report counts every namespace's documents with data and index timings, and the
/// exit code is 0.
#[test]
fn edge_corpus_round_trips_through_every_format() {
    let mut guard = DbGuard::new("rt_src");
    let src = guard.name().to_string();
    let manifest = load_edge_corpus(&src);
    let tmp = tempfile::tempdir().expect("tempdir");
    let formats: [(&str, &[&str]); 3] = [
        ("edge.oxd", &[]),
        (
            "edge.archive.gz",
            &["--format", "mongodump-archive", "--gzip"],
        ),
        ("edge-dir", &["--format", "mongodump-dir"]),
    ];
    for (file, args) in formats {
        let path = tmp.path().join(file);
        dump(&src, &path, args);
        let dst = guard.add("rt_dst");
        let report_path = tmp.path().join(format!("{file}.report.json"));
        let mut cmd = restore_cmd(
            &path,
            &[
                "--ns-from",
                &format!("{src}.*"),
                "--ns-to",
                &format!("{dst}.*"),
                "--ns-exclude",
                &format!("{src}.series"),
                "--report-json",
                report_path.to_str().expect("UTF-8 path"),
                "-q",
            ],
        );
        run(&mut cmd, 0);
        assert_same_corpus(&src, &dst, &manifest, file);

        let report = read_report(&report_path);
        for (ns, entry) in manifest.as_object().expect("manifest") {
            let coll = &ns[src.len() + 1..];
            if TIME_SERIES.contains(&coll) || coll == "system.views" {
                continue;
            }
            let n = ns_report(&report, ns);
            assert_eq!(n["target"], format!("{dst}.{coll}"), "{file}: {n:#}");
            assert_eq!(n["status"], "restored", "{file}: {n:#}");
            if let Some(count) = entry.get("count") {
                assert_eq!(n["inserted"], *count, "{file}: {ns} inserted: {n:#}");
            }
            for field in ["data_seconds", "index_seconds"] {
                let secs = n[field]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{file}: {field} missing for {ns}: {n:#}"));
                assert!(secs >= 0.0, "{file}: {field} of {ns}: {secs}");
            }
        }
        let indexed = ns_report(&report, &format!("{src}.indexed"));
        assert_eq!(
            indexed["indexes"].as_array().map(Vec::len),
            Some(7),
            "{file}: the seven secondary indexes of indexed: {indexed:#}"
        );
    }
}

/// The time-series collection of the edge corpus, restored from each dump format and
/// from each mongodump fixture: the measurements read through the collection are the
/// source's, byte for byte; so are the buckets, except that a server that refuses
/// bucket documents (the restore then inserts the measurements, and says so) builds
/// buckets of its own, with `_id`s of its own: there the buckets must be the same
/// apart from their `_id`s. Options and indexes are the source's.
#[test]
fn time_series_round_trips_through_every_format_and_fixture() {
    let mut guard = DbGuard::new("ts_src");
    let src = guard.name().to_string();
    let manifest = load_edge_corpus(&src);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut inputs: Vec<(PathBuf, String, bool)> = Vec::new();
    let formats: [(&str, &[&str]); 3] = [
        ("ts.oxd", &[]),
        (
            "ts.archive.gz",
            &["--format", "mongodump-archive", "--gzip"],
        ),
        ("ts-dir", &["--format", "mongodump-dir"]),
    ];
    for (file, args) in formats {
        let path = tmp.path().join(file);
        dump(&src, &path, args);
        inputs.push((path, src.clone(), false));
    }
    for f in ["dir", "dir-gzip", "edge.archive", "edge.archive.gz"] {
        inputs.push((
            fixture_path(&format!("{FIXTURES}/{f}")),
            "edge".into(),
            true,
        ));
    }
    let fixture_manifest: Value = serde_json::from_slice(
        &fs::read(fixture_path(&format!("{FIXTURES}/manifest.json"))).expect("fixture manifest"),
    )
    .expect("JSON");
    let fixture_meta = fixture_metadata();
    let fixture_buckets = split_docs(
        &fs::read(fixture_path(&format!(
            "{FIXTURES}/dir/edge/system.buckets.series.bson"
        )))
        .expect("the fixture's buckets"),
    );
    assert_eq!(
        docs_digest(fixture_buckets.clone()),
        (
            fixture_manifest["edge.system.buckets.series"]["count"]
                .as_u64()
                .expect("count"),
            fixture_manifest["edge.system.buckets.series"]["sha256"]
                .as_str()
                .expect("sha256")
                .to_string()
        )
    );
    let source_buckets = raw_docs(&src, "system.buckets.series");
    for (k, (path, from, is_fixture)) in inputs.into_iter().enumerate() {
        let dst = guard.add("ts_dst");
        let how = path.display().to_string();
        let report_path = tmp.path().join(format!("ts-{k}.json"));
        let mut cmd = restore_cmd(
            &path,
            &[
                "--ns-include",
                &format!("{from}.series"),
                "--ns-from",
                &format!("{from}.*"),
                "--ns-to",
                &format!("{dst}.*"),
                "--report-json",
                report_path.to_str().expect("UTF-8"),
                "-q",
            ],
        );
        run(&mut cmd, 0);
        let (m, db, buckets) = if is_fixture {
            (&fixture_manifest, "edge", &fixture_buckets)
        } else {
            (&manifest, src.as_str(), &source_buckets)
        };
        let entry = |coll: &str| {
            let e = &m[format!("{db}.{coll}")];
            (
                e["count"].as_u64().expect("count"),
                e["sha256"].as_str().expect("sha256").to_string(),
            )
        };
        assert_eq!(
            collection_digest(&dst, "series"),
            entry("series"),
            "{how}: the measurements"
        );
        let report = read_report(&report_path);
        let r = ns_report(&report, &format!("{from}.series"));
        assert_eq!(r["status"], "restored", "{how}: {r:#}");
        let unpacked = r["message"]
            .as_str()
            .is_some_and(|m| m.contains("unpacked"));
        if unpacked {
            assert_eq!(
                docs_digest(without_ids(raw_docs(&dst, "system.buckets.series"))),
                docs_digest(without_ids(buckets.clone())),
                "{how}: the buckets the server built from the measurements"
            );
        } else {
            assert_eq!(
                collection_digest(&dst, "system.buckets.series"),
                entry("system.buckets.series"),
                "{how}: the buckets"
            );
        }
        let restored = collections(&dst);
        let series = restored
            .get("series")
            .unwrap_or_else(|| panic!("{how}: no series: {restored:?}"));
        if is_fixture {
            let meta = &fixture_meta["series"];
            let mut ts = meta
                .get_document("options")
                .expect("options")
                .get_document("timeseries")
                .expect("timeseries")
                .clone();
            // The span follows from the granularity: a server may or may not list it.
            ts.remove("bucketMaxSpanSeconds");
            let mut got: Document =
                serde_json::from_str::<Value>(series.split_once(' ').expect("type and options").1)
                    .ok()
                    .and_then(|v| Bson::try_from(v).ok())
                    .and_then(|b| b.as_document().cloned())
                    .expect("options")
                    .get_document("timeseries")
                    .expect("timeseries option")
                    .clone();
            got.remove("bucketMaxSpanSeconds");
            got.remove("bucketRoundingSeconds");
            assert_eq!(canon(&got), canon(&ts), "{how}: timeseries options");
            assert_eq!(
                index_defs(&dst, "series"),
                expected_indexes(meta),
                "{how}: indexes of series"
            );
        } else {
            assert_eq!(
                Some(series),
                collections(&src).get("series"),
                "{how}: series options"
            );
            assert_eq!(
                restored.get("system.buckets.series"),
                collections(&src).get("system.buckets.series"),
                "{how}: options of the bucket collection"
            );
            assert_eq!(
                index_defs(&dst, "series"),
                index_defs(&src, "series"),
                "{how}: indexes of series"
            );
        }
    }
}

/// Documents without their `_id`.
fn without_ids(docs: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    docs.into_iter()
        .map(|d| {
            let mut d = Document::from_reader(d.as_slice()).expect("a document");
            d.remove("_id");
            d.to_vec().expect("BSON")
        })
        .collect()
}

/// Per collection of the fixture, its `*.metadata.json` (Extended JSON) by name.
fn fixture_metadata() -> BTreeMap<String, Document> {
    let dir = fixture_path(&format!("{FIXTURES}/dir/edge"));
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(&dir).expect("fixture dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.ends_with(".metadata.json") {
            continue;
        }
        let json: Value =
            serde_json::from_slice(&fs::read(&path).expect("read metadata")).expect("JSON");
        let meta = match Bson::try_from(json) {
            Ok(Bson::Document(d)) => d,
            other => panic!("{}: not a document: {other:?}", path.display()),
        };
        let coll = meta.get_str("collectionName").expect("collectionName");
        out.insert(coll.to_string(), meta);
    }
    out
}

/// The index definitions a collection's metadata lists, by name, without `v`/`ns`.
fn expected_indexes(meta: &Document) -> BTreeMap<String, String> {
    meta.get_array("indexes")
        .expect("indexes")
        .iter()
        .map(|i| index_entry(i.as_document().expect("index spec")))
        .collect()
}

/// Every mongodump 100.18 fixture (directory, gzipped directory, archive, gzipped
/// archive) restored under a fresh database name reproduces the fixture manifest for
/// every collection but the time-series one, the index definitions and collection
/// options of its metadata, and a view that answers like the original.
#[test]
fn mongodump_fixtures_restore_to_their_manifest() {
    let manifest: Value = serde_json::from_slice(
        &fs::read(fixture_path(&format!("{FIXTURES}/manifest.json"))).expect("fixture manifest"),
    )
    .expect("JSON");
    let meta = fixture_metadata();
    let mut guard = DbGuard::new("fixtures");
    for fixture in ["dir", "dir-gzip", "edge.archive", "edge.archive.gz"] {
        let dst = guard.add("fx");
        let path = fixture_path(&format!("{FIXTURES}/{fixture}"));
        let mut cmd = restore_cmd(
            &path,
            &[
                "--ns-from",
                "edge.*",
                "--ns-to",
                &format!("{dst}.*"),
                "--ns-exclude",
                "edge.series",
                "-q",
            ],
        );
        run(&mut cmd, 0);
        let listed = collections(&dst);
        for (ns, entry) in manifest.as_object().expect("manifest") {
            let coll = ns.strip_prefix("edge.").expect("edge.*");
            if TIME_SERIES.contains(&coll) || coll == "system.views" {
                continue;
            }
            let m = meta
                .get(coll)
                .unwrap_or_else(|| panic!("no metadata for {coll}"));
            let options = m.get_document("options").cloned().unwrap_or_default();
            if entry.get("type").and_then(Value::as_str) == Some("view") {
                assert_eq!(
                    listed.get(coll),
                    Some(&format!("view {}", canon(&options))),
                    "{fixture}: view {coll}"
                );
                // v_types is `types` where `k` exists.
                let expected = docs_digest(raw_docs(&dst, "types").into_iter().filter(|d| {
                    bson::RawDocument::from_bytes(d)
                        .ok()
                        .and_then(|d| d.get("k").ok().flatten())
                        .is_some()
                }));
                assert!(expected.0 > 0, "{fixture}: types has documents with k");
                assert_eq!(
                    collection_digest(&dst, coll),
                    expected,
                    "{fixture}: the view {coll} answers with other documents"
                );
                continue;
            }
            let expected = (
                entry["count"].as_u64().expect("count"),
                entry["sha256"].as_str().expect("sha256").to_string(),
            );
            assert_eq!(
                collection_digest(&dst, coll),
                expected,
                "{fixture}: {coll} restored with other documents"
            );
            assert_eq!(
                index_defs(&dst, coll),
                expected_indexes(m),
                "{fixture}: index definitions of {coll}"
            );
            assert_eq!(
                listed.get(coll),
                Some(&format!("collection {}", canon(&options))),
                "{fixture}: options of {coll}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Remapping
// ---------------------------------------------------------------------------------

/// `--ns-from`/`--ns-to` with a wildcard, with a `$var$`, and several pairs at once
/// (the last matching pair decides).
#[test]
fn renames_with_wildcards_variables_and_several_pairs() {
    let mut guard = DbGuard::new("ren_src");
    let src = small_source(&guard);
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("src.oxd");
    dump(&src, &backup, &[]);
    let digests = |db: &str| -> Vec<(u64, String)> {
        ["a", "b", "c"]
            .iter()
            .map(|c| collection_digest(db, c))
            .collect()
    };
    let source = digests(&src);
    let names = |db: &str| -> Vec<String> {
        collections(db)
            .into_keys()
            .filter(|n| !n.starts_with("system."))
            .collect()
    };

    // Wildcard.
    let w = guard.add("ren_w");
    run(
        &mut restore_cmd(
            &backup,
            &[
                "--ns-from",
                &format!("{src}.*"),
                "--ns-to",
                &format!("{w}.*"),
                "-q",
            ],
        ),
        0,
    );
    assert_eq!(names(&w), ["a", "b", "c"]);
    assert_eq!(digests(&w), source);
    assert_eq!(index_defs(&w, "a"), index_defs(&src, "a"));

    // A `$var$` captured in the source and used in the target.
    let v = guard.add("ren_v");
    run(
        &mut restore_cmd(
            &backup,
            &[
                "--ns-from",
                &format!("{src}.$c$"),
                "--ns-to",
                &format!("{v}.old_$c$"),
                "-q",
            ],
        ),
        0,
    );
    assert_eq!(names(&v), ["old_a", "old_b", "old_c"]);
    let renamed: Vec<_> = ["old_a", "old_b", "old_c"]
        .iter()
        .map(|c| collection_digest(&v, c))
        .collect();
    assert_eq!(renamed, source);
    assert_eq!(index_defs(&v, "old_a"), index_defs(&src, "a"));

    // Several pairs: a specific pair after the wildcard wins for `b`...
    let m = guard.add("ren_m");
    run(
        &mut restore_cmd(
            &backup,
            &[
                "--ns-from",
                &format!("{src}.*"),
                "--ns-to",
                &format!("{m}.*"),
                "--ns-from",
                &format!("{src}.b"),
                "--ns-to",
                &format!("{m}.bee"),
                "-q",
            ],
        ),
        0,
    );
    assert_eq!(names(&m), ["a", "bee", "c"]);
    assert_eq!(collection_digest(&m, "bee"), source[1]);
    // ... and loses when the wildcard comes last.
    let l = guard.add("ren_l");
    let other = guard.add("ren_o");
    run(
        &mut restore_cmd(
            &backup,
            &[
                "--ns-from",
                &format!("{src}.b"),
                "--ns-to",
                &format!("{other}.bee"),
                "--ns-from",
                &format!("{src}.*"),
                "--ns-to",
                &format!("{l}.*"),
                "-q",
            ],
        ),
        0,
    );
    assert_eq!(names(&l), ["a", "b", "c"]);
    assert_eq!(digests(&l), source);
    assert!(!database_names().contains(&other), "{other} was written to");
}

/// Two sources mapped to one target are refused before anything is written: the
/// message names both sources, and the target database is as it was.
#[test]
fn two_sources_into_one_target_are_refused_before_writing() {
    let mut guard = DbGuard::new("col_src");
    let src = small_source(&guard);
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("src.oxd");
    dump(&src, &backup, &[]);
    let dst = guard.add("col_dst");
    insert(&dst, "keep", vec![doc! { "_id": 1, "keep": true }]);
    let before = (collections(&dst), collection_digest(&dst, "keep"));

    let (_, stdout, stderr) = run_failing(&mut restore_cmd(
        &backup,
        &[
            "--ns-from",
            &format!("{src}.a"),
            "--ns-to",
            &format!("{dst}.x"),
            "--ns-from",
            &format!("{src}.b"),
            "--ns-to",
            &format!("{dst}.x"),
            "--ns-from",
            &format!("{src}.c"),
            "--ns-to",
            &format!("{dst}.c"),
        ],
    ));
    let out = format!("{stdout}{stderr}");
    for name in [format!("{src}.a"), format!("{src}.b"), format!("{dst}.x")] {
        assert!(
            out.contains(&name),
            "the refusal does not name {name}:\n{out}"
        );
    }
    assert_eq!(
        (collections(&dst), collection_digest(&dst, "keep")),
        before,
        "the target changed"
    );
}

// ---------------------------------------------------------------------------------
// Safety
// ---------------------------------------------------------------------------------

/// A target collection holding documents stops the restore before anything is
/// written (no other target created either); `--append` adds to it and counts
/// duplicate `_id`s; `--drop` replaces exactly the restored collections and leaves a
/// sibling that is not in the backup untouched.
#[test]
fn non_empty_targets_refuse_append_adds_drop_replaces_only_targets() {
    let mut guard = DbGuard::new("safe_src");
    let src = small_source(&guard);
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("src.oxd");
    dump(&src, &backup, &[]);
    let dst = guard.add("safe_dst");
    let old_a = vec![
        doc! { "_id": 1000, "k": 1000, "old": true },
        doc! { "_id": 1001, "k": 1001, "old": true },
    ];
    insert(&dst, "a", old_a.clone());
    insert(
        &dst,
        "sibling",
        (0..3).map(|i| doc! { "_id": i, "sib": i }).collect(),
    );
    command(
        &dst,
        doc! { "createIndexes": "sibling", "indexes": [{ "key": { "sib": -1 }, "name": "sib_desc" }] },
    );
    let sibling = (
        collection_digest(&dst, "sibling"),
        index_defs(&dst, "sibling"),
    );
    let renames = [
        "--ns-from".to_string(),
        format!("{src}.*"),
        "--ns-to".to_string(),
        format!("{dst}.*"),
    ];
    let renames: Vec<&str> = renames.iter().map(String::as_str).collect();
    let with = |extra: &[&str]| -> Vec<String> {
        renames.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let restore = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        restore_cmd(&backup, &args)
    };

    // Refused: nothing written, not even the targets that do not exist yet.
    let names_before = collections(&dst);
    let a_before = collection_digest(&dst, "a");
    let (_, stdout, stderr) = run_failing(&mut restore(with(&[])));
    let out = format!("{stdout}{stderr}");
    assert!(
        out.contains(&format!("{dst}.a")) && out.contains("--drop") && out.contains("--append"),
        "the refusal names the target and the way out:\n{out}"
    );
    assert_eq!(collections(&dst), names_before, "a target was created");
    assert_eq!(collection_digest(&dst, "a"), a_before);
    assert_eq!(
        (
            collection_digest(&dst, "sibling"),
            index_defs(&dst, "sibling")
        ),
        sibling
    );

    // --append: the backup's documents are added to what was there.
    run(&mut restore(with(&["--append", "-q"])), 0);
    let mut expected_a = raw_docs(&src, "a");
    expected_a.extend(old_a.iter().map(|d| d.to_vec().expect("BSON")));
    assert_eq!(collection_digest(&dst, "a"), docs_digest(expected_a));
    for c in ["b", "c"] {
        assert_eq!(
            collection_digest(&dst, c),
            collection_digest(&src, c),
            "{c}"
        );
    }

    // --append again: every document is a duplicate, each one counted.
    let report_path = tmp.path().join("append-again.json");
    let (code, _, stderr) = run_failing(&mut restore(with(&[
        "--append",
        "-q",
        "--report-json",
        report_path.to_str().expect("UTF-8"),
    ])));
    assert_eq!(code, 1, "{stderr}");
    let report = read_report(&report_path);
    for (c, n) in [("a", 10), ("b", 5), ("c", 3)] {
        let r = ns_report(&report, &format!("{src}.{c}"));
        assert_eq!(u64_of(r, "duplicates"), n, "{r:#}");
        assert_eq!(u64_of(r, "inserted"), 0, "{r:#}");
    }

    // --drop: exactly the backup's collections, replaced; the sibling untouched.
    let report_path = tmp.path().join("drop.json");
    run(
        &mut restore(with(&[
            "--drop",
            "-q",
            "--report-json",
            report_path.to_str().expect("UTF-8"),
        ])),
        0,
    );
    for c in ["a", "b", "c"] {
        assert_eq!(
            collection_digest(&dst, c),
            collection_digest(&src, c),
            "{c}"
        );
        assert_eq!(index_defs(&dst, c), index_defs(&src, c), "{c}");
        assert_eq!(
            ns_report(&read_report(&report_path), &format!("{src}.{c}"))["dropped"],
            true
        );
    }
    assert_eq!(
        collections(&dst).into_keys().collect::<Vec<_>>(),
        ["a", "b", "c", "sibling"]
    );
    assert_eq!(
        (
            collection_digest(&dst, "sibling"),
            index_defs(&dst, "sibling")
        ),
        sibling,
        "--drop touched a collection that is not in the backup"
    );
}

/// Drops, when the test ends, the `admin`/`local`/`config` collections whose names
/// start with a prefix: only a broken restore would have created them.
struct SystemDbCleanup(String);

impl Drop for SystemDbCleanup {
    fn drop(&mut self) {
        let prefix = self.0.clone();
        let _ = std::thread::spawn(move || {
            let client = client();
            block_on(async {
                for db in ["admin", "local", "config"] {
                    let db = client.database(db);
                    if let Ok(names) = db.list_collection_names().await {
                        for n in names.iter().filter(|n| n.starts_with(&prefix)) {
                            let _ = db.collection::<Document>(n).drop().await;
                        }
                    }
                }
            })
        })
        .join();
    }
}

/// Without `--include-system`, nothing is written to `admin`, `local` or `config`,
/// whatever the renames say, and the output says why.
#[test]
fn system_databases_are_not_written_without_include_system() {
    let guard = DbGuard::new("sys_src");
    let src = small_source(&guard);
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("src.oxd");
    dump(&src, &backup, &[]);
    let prefix = format!("{src}_");
    let _cleanup = SystemDbCleanup(prefix.clone());
    for sys in ["admin", "local", "config"] {
        let listed = |sys: &str| -> Vec<String> {
            wait(client().database(sys).list_collection_names())
                .unwrap_or_default()
                .into_iter()
                .filter(|n| n.starts_with(&prefix))
                .collect()
        };
        let mut cmd = restore_cmd(
            &backup,
            &[
                "--ns-from",
                &format!("{src}.*"),
                "--ns-to",
                &format!("{sys}.{prefix}*"),
            ],
        );
        let out = cmd.output().expect("run oxidump");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(sys) && text.contains("--include-system"),
            "{sys}: no clear message ({}):\n{text}",
            out.status
        );
        assert_eq!(listed(sys), Vec::<String>::new(), "{sys} was written to");
    }
}

/// Each collection's UUID in `db`, by name.
fn collection_uuids(db: &str) -> BTreeMap<String, String> {
    first_batch(db, doc! { "listCollections": 1 })
        .iter()
        .filter_map(|c| {
            let uuid = c.get_document("info").ok()?.get("uuid")?;
            Some((c.get_str("name").ok()?.to_string(), format!("{uuid:?}")))
        })
        .collect()
}

/// `--preserve-uuid`: UUIDs still held by other collections are refused before
/// anything is written, naming the holder; once they are free the collections keep
/// their UUIDs where the server has `applyOps` (a real mongod), and a server without it
/// gets a clear refusal, again with nothing written.
#[test]
fn preserve_uuid_refuses_taken_uuids_and_keeps_free_ones() {
    let mut guard = DbGuard::new("uuid_src");
    let src = small_source(&guard);
    let dst = guard.add("uuid_dst");
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("src.oxd");
    dump(&src, &backup, &[]);
    let uuids = collection_uuids(&src);
    assert_eq!(uuids.len(), 3, "the source lists no UUIDs: {uuids:?}");
    let from = format!("{src}.*");
    let to = format!("{dst}.*");
    let args = [
        "--ns-from",
        &from,
        "--ns-to",
        &to,
        "--preserve-uuid",
        "--drop",
        "-q",
    ];

    // The source collections still hold those UUIDs.
    let (_, out, err) = run_failing(&mut restore_cmd(&backup, &args));
    let text = format!("{out}{err}");
    assert!(
        text.contains("already used by") && text.contains(&format!("{src}.a")),
        "the refusal does not name the collection holding the UUID:\n{text}"
    );
    assert!(
        !database_names().contains(&dst),
        "a refused restore wrote {dst}"
    );

    // Freed: the UUIDs are kept, or the server's lack of applyOps is named.
    wait(client().database(&src).drop()).expect("drop the source");
    let out = restore_cmd(&backup, &args).output().expect("run oxidump");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        assert_eq!(collection_uuids(&dst), uuids, "UUIDs not preserved");
    } else {
        assert!(
            text.contains("--preserve-uuid needs the applyOps command"),
            "{}: no clear reason:\n{text}",
            out.status
        );
        assert!(
            !database_names().contains(&dst),
            "a refused restore wrote {dst}"
        );
    }
}

/// `--dry-run` prints the plan (source -> target, documents, indexes, what would be
/// dropped) and writes nothing: a fresh target database does not exist afterwards,
/// and with `--drop` an existing target keeps its documents.
#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let mut guard = DbGuard::new("dry_src");
    let src = small_source(&guard);
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("src.oxd");
    dump(&src, &backup, &[]);

    let fresh = guard.add("dry_new");
    let (_, stdout, _) = run(
        &mut restore_cmd(
            &backup,
            &[
                "--ns-from",
                &format!("{src}.*"),
                "--ns-to",
                &format!("{fresh}.*"),
                "--dry-run",
            ],
        ),
        0,
    );
    let line_of = |out: &str, coll: &str| -> String {
        let arrow = format!("{src}.{coll} -> ");
        out.lines()
            .find(|l| l.contains(&arrow))
            .unwrap_or_else(|| panic!("no plan line for {src}.{coll}:\n{out}"))
            .to_string()
    };
    let a = line_of(&stdout, "a");
    assert!(a.contains(&format!("{fresh}.a")), "{a}");
    assert!(a.contains("10 documents"), "{a}");
    assert!(a.contains("k_1"), "index k_1 not in the plan: {a}");
    assert!(line_of(&stdout, "b").contains("5 documents"), "{stdout}");
    assert!(!a.contains("drop"), "nothing to drop: {a}");
    assert!(
        !database_names().contains(&fresh),
        "--dry-run created {fresh}"
    );

    // An existing target, with --drop: the plan says what would be dropped.
    let existing = guard.add("dry_old");
    insert(&existing, "a", vec![doc! { "_id": "keep me" }]);
    let before = collections(&existing);
    let (_, stdout, _) = run(
        &mut restore_cmd(
            &backup,
            &[
                "--ns-from",
                &format!("{src}.*"),
                "--ns-to",
                &format!("{existing}.*"),
                "--dry-run",
                "--drop",
            ],
        ),
        0,
    );
    assert!(line_of(&stdout, "a").contains("drop"), "{stdout}");
    assert!(
        !line_of(&stdout, "b").contains("drop"),
        "b does not exist, nothing to drop:\n{stdout}"
    );
    assert_eq!(
        collections(&existing),
        before,
        "--dry-run changed the target"
    );
    assert_eq!(
        collection_digest(&existing, "a"),
        docs_digest([doc! { "_id": "keep me" }.to_vec().expect("BSON")])
    );
}

/// The dry-run plan also shows each collection's options (here capped and a
/// validator), as the restore command's description promises.
#[test]
fn dry_run_plan_shows_collection_options() {
    let mut guard = DbGuard::new("dryo_src");
    let src = guard.name().to_string();
    command(
        &src,
        doc! { "create": "one", "capped": true, "size": 65536, "max": 10 },
    );
    command(
        &src,
        doc! { "create": "two", "validator": { "x": { "$exists": true } } },
    );
    insert(&src, "one", vec![doc! { "_id": 1 }]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("src.oxd");
    dump(&src, &backup, &[]);
    let dst = guard.add("dryo_dst");
    let (_, stdout, _) = run(
        &mut restore_cmd(
            &backup,
            &[
                "--ns-from",
                &format!("{src}.*"),
                "--ns-to",
                &format!("{dst}.*"),
                "--dry-run",
            ],
        ),
        0,
    );
    // The collections are named `one` and `two`: only their options can say these.
    assert!(stdout.contains("capped"), "{stdout}");
    assert!(stdout.contains("validator"), "{stdout}");
    assert!(!database_names().contains(&dst));
}

// ---------------------------------------------------------------------------------
// Integrity
// ---------------------------------------------------------------------------------

/// An OXD backup whose second frame of a multi-frame collection is damaged (one byte
/// of its payload flipped): the restore exits non-zero, the report and the summary
/// name the namespace and the frame, the other collections are fully restored, and the
/// damaged collection holds at most the documents before the damaged frame. With
/// `--skip-corrupt`, every document but those of the damaged frame is restored and
/// the frame is named in the report.
#[test]
fn a_damaged_oxd_frame_stops_its_namespace_or_is_skipped() {
    let mut guard = DbGuard::new("dmg_src");
    let src = guard.name().to_string();
    // 4000 documents of about 4 KiB: about 16 MiB, four 4 MiB frames.
    let big: Vec<Document> = (0..4000i64)
        .map(|i| doc! { "_id": i, "n": noise(i as u64, 4000) })
        .collect();
    for chunk in big.chunks(500) {
        insert(&src, "big", chunk.to_vec());
    }
    insert(
        &src,
        "small",
        (0..50).map(|i| doc! { "_id": i, "x": i }).collect(),
    );
    insert(
        &src,
        "indexed",
        (0..20).map(|i| doc! { "_id": i, "k": i }).collect(),
    );
    command(
        &src,
        doc! { "createIndexes": "indexed", "indexes": [{ "key": { "k": 1 }, "name": "k_1" }] },
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = tmp.path().join("good.oxd");
    dump(&src, &good, &[]);

    // Where the frames of `big` are, and which documents each holds.
    let mut f = fs::File::open(&good).expect("open the dump");
    let index = oxidump::oxd::reader::Index::open(&mut f).expect("a complete OXD file");
    let ns = index.catalog.find(&src, "big").expect("big in the backup");
    let frames = index.footer.frames_of(ns as u32).to_vec();
    assert!(
        frames.len() >= 3,
        "big should span several frames, it has {}",
        frames.len()
    );
    let frame_docs: Vec<Vec<Vec<u8>>> = frames
        .iter()
        .map(|e| {
            let (_, raw) = oxidump::oxd::reader::read_frame_at(&mut f, e).expect("read frame");
            split_docs(&raw)
        })
        .collect();
    assert_eq!(frame_docs.iter().map(Vec::len).sum::<usize>(), 4000);
    let damaged = &frames[1];

    // Flip one byte in the middle of the second frame's payload.
    let bad = tmp.path().join("bad.oxd");
    fs::copy(&good, &bad).expect("copy");
    let mut header = [0u8; oxidump::oxd::record::LEN];
    f.seek(SeekFrom::Start(damaged.offset)).expect("seek");
    f.read_exact(&mut header).expect("read the record header");
    let stored_len = u32::from_le_bytes(header[16..20].try_into().expect("4 bytes")) as u64;
    let at = damaged.offset + oxidump::oxd::record::LEN as u64 + stored_len / 2;
    let mut w = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&bad)
        .expect("open the copy");
    let mut byte = [0u8; 1];
    w.seek(SeekFrom::Start(at)).expect("seek");
    w.read_exact(&mut byte).expect("read");
    byte[0] ^= 0x5a;
    w.seek(SeekFrom::Start(at)).expect("seek");
    w.write_all(&byte).expect("write");
    drop(w);

    let names_frame = |text: &str| {
        text.contains(&format!("frame {}", damaged.seq))
            && text.contains(&damaged.offset.to_string())
    };
    let check_others = |dst: &str| {
        for c in ["small", "indexed"] {
            assert_eq!(
                collection_digest(dst, c),
                collection_digest(&src, c),
                "{c} not fully restored"
            );
            assert_eq!(index_defs(dst, c), index_defs(&src, c), "{c}");
        }
    };

    // Without --skip-corrupt: the namespace stops before the damaged frame.
    let dst = guard.add("dmg_stop");
    let report_path = tmp.path().join("stop.json");
    let (_, _, stderr) = run_failing(&mut restore_cmd(
        &bad,
        &[
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--report-json",
            report_path.to_str().expect("UTF-8"),
        ],
    ));
    let report = read_report(&report_path);
    let r = ns_report(&report, &format!("{src}.big"));
    assert_ne!(r["status"], "restored", "{r:#}");
    assert!(names_frame(&r.to_string()), "frame not named: {r:#}");
    assert!(
        stderr.contains(&format!("{src}.big")) && names_frame(&stderr),
        "the summary does not name the namespace and frame:\n{stderr}"
    );
    check_others(&dst);
    // Every intact frame before the damage is in, and nothing from it or after it.
    let restored = raw_docs(&dst, "big");
    assert_eq!(
        docs_digest(restored.clone()),
        docs_digest(frame_docs[0].clone()),
        "not exactly the frames before the damage ({} documents restored)",
        restored.len()
    );
    assert_eq!(u64_of(r, "inserted"), restored.len() as u64, "{r:#}");

    // The same from a pipe: the same outcome.
    let dst_pipe = guard.add("dmg_pipe");
    let report_path = tmp.path().join("pipe.json");
    let mut cmd = oxidump();
    cmd.args(["restore", "-", "--uri", &server().uri])
        .args([
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst_pipe}.*"),
        ])
        .arg("--report-json")
        .arg(&report_path)
        .stdin(Stdio::from(fs::File::open(&bad).expect("open")));
    let (code, _, stderr) = run_failing(&mut cmd);
    assert_eq!(code, 1, "{stderr}");
    let report = read_report(&report_path);
    let r = ns_report(&report, &format!("{src}.big"));
    assert_ne!(r["status"], "restored", "{r:#}");
    assert_eq!(
        collection_digest(&dst_pipe, "big"),
        docs_digest(frame_docs[0].clone()),
        "from a pipe: not exactly the frames before the damage"
    );

    // With --skip-corrupt: everything but the damaged frame.
    let dst = guard.add("dmg_skip");
    let report_path = tmp.path().join("skip.json");
    let (_, _, stderr) = run_failing(&mut restore_cmd(
        &bad,
        &[
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--skip-corrupt",
            "--report-json",
            report_path.to_str().expect("UTF-8"),
        ],
    ));
    let expected: Vec<Vec<u8>> = frame_docs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .flat_map(|(_, d)| d.iter().cloned())
        .collect();
    let expected_count = expected.len() as u64;
    assert_eq!(collection_digest(&dst, "big"), docs_digest(expected));
    let report = read_report(&report_path);
    let r = ns_report(&report, &format!("{src}.big"));
    assert!(names_frame(&r["damaged"].to_string()), "{r:#}");
    assert_eq!(u64_of(r, "inserted"), expected_count, "{r:#}");
    assert!(names_frame(&stderr), "{stderr}");
    check_others(&dst);
}

/// A mongodump archive with one byte of a collection's documents changed: the
/// restore reports the CRC mismatch with the namespace and exits non-zero.
#[test]
fn a_mongodump_archive_crc_mismatch_names_the_namespace() {
    let mut guard = DbGuard::new("crc_src");
    let src = guard.name().to_string();
    insert(
        &src,
        "c1",
        (0..100)
            .map(|i| doc! { "_id": i, "v": format!("MARKER-{i:04}") })
            .collect(),
    );
    insert(
        &src,
        "c2",
        (0..50).map(|i| doc! { "_id": i, "w": "other" }).collect(),
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let archive = tmp.path().join("src.archive");
    dump(&src, &archive, &["--format", "mongodump-archive"]);
    let mut bytes = fs::read(&archive).expect("read the archive");
    let at = bytes
        .windows(11)
        .position(|w| w == b"MARKER-0050")
        .expect("the marker is in the archive");
    bytes[at + 8] ^= 0x01; // a digit of the string: still valid BSON
    let bad = tmp.path().join("bad.archive");
    fs::write(&bad, &bytes).expect("write");

    let dst = guard.add("crc_dst");
    let report_path = tmp.path().join("report.json");
    let (_, _, stderr) = run_failing(&mut restore_cmd(
        &bad,
        &[
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--report-json",
            report_path.to_str().expect("UTF-8"),
        ],
    ));
    assert!(
        stderr.contains("CRC") && stderr.contains(&format!("{src}.c1")),
        "no CRC mismatch naming {src}.c1:\n{stderr}"
    );
    let report = read_report(&report_path);
    let r = ns_report(&report, &format!("{src}.c1"));
    assert_ne!(r["status"], "restored", "{r:#}");
    assert!(r.to_string().contains("CRC"), "{r:#}");
}

// ---------------------------------------------------------------------------------
// Duplicate keys
// ---------------------------------------------------------------------------------

/// A source of 1000 documents (`_id` 0..999) and a target already holding six of
/// those `_id`s with other contents. Returns (source db, backup, target db).
fn duplicates_setup(guard: &mut DbGuard, tmp: &Path) -> (String, PathBuf, String) {
    let src = guard.name().to_string();
    insert(
        &src,
        "d",
        (0..1000)
            .map(|i| doc! { "_id": i, "v": "x".repeat(100) })
            .collect(),
    );
    let backup = tmp.join("src.oxd");
    dump(&src, &backup, &[]);
    let dst = guard.add("dup_dst");
    insert(
        &dst,
        "d",
        DUPLICATE_IDS
            .iter()
            .map(|&i| doc! { "_id": i, "v": "old" })
            .collect(),
    );
    (src, backup, dst)
}

const DUPLICATE_IDS: [i32; 6] = [10, 50, 500, 700, 900, 999];

/// `--append` onto a target holding some of the same `_id`s: every other document is
/// inserted, the duplicates are counted with the first few `_id`s in the report, the
/// existing documents are kept, and the exit code is non-zero.
#[test]
fn append_counts_duplicate_keys_and_inserts_the_rest() {
    let mut guard = DbGuard::new("dup_src");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (src, backup, dst) = duplicates_setup(&mut guard, tmp.path());
    let report_path = tmp.path().join("report.json");
    let (code, _, stderr) = run_failing(&mut restore_cmd(
        &backup,
        &[
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--append",
            "--report-json",
            report_path.to_str().expect("UTF-8"),
        ],
    ));
    assert_eq!(code, 1, "{stderr}");
    let report = read_report(&report_path);
    let r = ns_report(&report, &format!("{src}.d"));
    assert_eq!(u64_of(r, "duplicates"), 6, "{r:#}");
    assert_eq!(u64_of(r, "inserted"), 994, "{r:#}");
    let ids: Vec<String> = r["refused_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no refused_ids: {r:#}"))
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    let known: Vec<String> = DUPLICATE_IDS.iter().map(|i| i.to_string()).collect();
    assert!(
        !ids.is_empty() && ids.len() <= 6 && ids.iter().all(|i| known.contains(i)),
        "refused _ids {ids:?}, expected some of {known:?}"
    );
    assert!(stderr.contains("duplicate"), "{stderr}");
    let coll = client().database(&dst).collection::<Document>("d");
    assert_eq!(wait(coll.count_documents(doc! {})).expect("count"), 1000);
    assert_eq!(
        wait(coll.count_documents(doc! { "v": "old" })).expect("count"),
        6,
        "the existing documents were replaced"
    );
}

/// With `--stop-on-error`, the restore stops at the first refused document: fewer
/// documents are inserted than without it, the report's count matches what the
/// target holds, and the message says why it stopped.
#[test]
fn stop_on_error_stops_at_the_first_refused_document() {
    let mut guard = DbGuard::new("dups_src");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (src, backup, dst) = duplicates_setup(&mut guard, tmp.path());
    let report_path = tmp.path().join("report.json");
    let (_, _, stderr) = run_failing(&mut restore_cmd(
        &backup,
        &[
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--append",
            "--stop-on-error",
            "-j",
            "1",
            "--workers-per-collection",
            "1",
            "--report-json",
            report_path.to_str().expect("UTF-8"),
        ],
    ));
    assert!(
        stderr.contains("stop"),
        "the message does not say the restore stopped:\n{stderr}"
    );
    let coll = client().database(&dst).collection::<Document>("d");
    let inserted = wait(coll.count_documents(doc! {})).expect("count") - 6;
    assert!(
        inserted < 994,
        "{inserted} documents inserted: the restore did not stop at the first duplicate"
    );
    let report = read_report(&report_path);
    let r = ns_report(&report, &format!("{src}.d"));
    assert_eq!(
        u64_of(r, "inserted"),
        inserted,
        "the report's count is not what the target holds: {r:#}"
    );
}

// ---------------------------------------------------------------------------------
// Report and exit code
// ---------------------------------------------------------------------------------

/// An index that cannot be built (a unique index over documents appended next to a
/// conflicting one) is reported by name, the other index is still built, the data is
/// in, and the exit code is non-zero.
#[test]
fn a_failed_index_build_is_reported_and_the_exit_code_is_not_zero() {
    let mut guard = DbGuard::new("ix_src");
    let src = guard.name().to_string();
    insert(
        &src,
        "u",
        (0..20).map(|i| doc! { "_id": i, "k": i, "o": i }).collect(),
    );
    command(
        &src,
        doc! { "createIndexes": "u", "indexes": [
            { "key": { "k": 1 }, "name": "k_unique", "unique": true },
            { "key": { "o": -1 }, "name": "o_desc" },
        ] },
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("src.oxd");
    dump(&src, &backup, &[]);
    let dst = guard.add("ix_dst");
    insert(&dst, "u", vec![doc! { "_id": "other", "k": 3 }]);
    let report_path = tmp.path().join("report.json");
    let (code, _, stderr) = run_failing(&mut restore_cmd(
        &backup,
        &[
            "--ns-from",
            &format!("{src}.*"),
            "--ns-to",
            &format!("{dst}.*"),
            "--append",
            "--index-build",
            "after",
            "--report-json",
            report_path.to_str().expect("UTF-8"),
        ],
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("k_unique"), "{stderr}");
    let report = read_report(&report_path);
    let r = ns_report(&report, &format!("{src}.u"));
    assert_eq!(u64_of(r, "inserted"), 20, "{r:#}");
    assert!(r["index_errors"].to_string().contains("k_unique"), "{r:#}");
    assert!(r["index_seconds"].as_f64().is_some(), "{r:#}");
    let built = index_defs(&dst, "u");
    assert!(built.contains_key("o_desc"), "{built:?}");
    assert!(!built.contains_key("k_unique"), "{built:?}");
}

// ---------------------------------------------------------------------------------
// A server that disappears
// ---------------------------------------------------------------------------------

/// A target server killed (SIGKILL) while the restore is loading data: the restore
/// ends on its own within a bounded time (no hang), exits non-zero, and says which
/// namespace failed and why; nothing panics.
#[test]
fn a_server_that_disappears_mid_restore_fails_clearly_and_promptly() {
    const DOCS: i64 = 200_000;
    /// Longest the restore may take to give up once its server is gone.
    const GIVE_UP: Duration = Duration::from_secs(90);

    let guard = DbGuard::new("gone_src");
    let src = guard.name().to_string();
    for start in (0..DOCS).step_by(50_000) {
        insert(
            &src,
            "m",
            (start..start + 50_000)
                .map(|i| doc! { "_id": i, "a": i * 7, "s": "abcdefgh" })
                .collect(),
        );
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("src.oxd");
    dump(&src, &backup, &[]);
    drop(guard);

    let mut target = PrivateServer::start(&[]);
    let target_client = target.client();
    let stdout_path = tmp.path().join("stdout");
    let stderr_path = tmp.path().join("stderr");
    let mut child = oxidump()
        .arg("restore")
        .arg(&backup)
        .args(["--uri", &target.uri(), "--ns-from", &format!("{src}.*")])
        .args([
            "--ns-to",
            "gone.*",
            "-j",
            "1",
            "--workers-per-collection",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("run oxidump restore");

    // Once the target collection exists the data phase is about to start: give it a
    // moment to be under way, then kill the server.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let names = wait(target_client.database("gone").list_collection_names());
        if names.is_ok_and(|n| n.iter().any(|n| n == "m")) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the restore ended ({status}) before its target collection appeared:\n{}",
                fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the target collection never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(status)) = child.try_wait() {
        panic!(
            "the restore of {DOCS} documents finished ({status}) before the server could be killed: make the backup bigger"
        );
    }
    target.kill();
    let killed = Instant::now();

    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for oxidump") {
            break status;
        }
        if killed.elapsed() > GIVE_UP {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the restore still runs {GIVE_UP:?} after its server was killed:\n{}",
                fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = killed.elapsed();
    let stderr = fs::read_to_string(&stderr_path).expect("stderr");
    assert!(
        !status.success() && status.code().is_some(),
        "{status} after the server was killed:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&format!("{src}.m")) && stderr.contains("gone.m"),
        "the error does not name the namespace:\n{stderr}"
    );
    eprintln!("the restore gave up {took:.1?} after its server was killed:\n{stderr}");
}
