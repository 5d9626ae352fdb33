//! Oplog replay against a real server: mongod-shaped and SecantusDB-shaped entries
//! replayed with ordinary commands give byte-exact documents, twice the same; a
//! workload written during `dump --oplog` is reproduced at the window's end and, with a
//! saved later oplog, at later moments; unreachable moments are refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, RawDocumentBuf, Timestamp, doc};
use futures_util::TryStreamExt as _;
use mongodb::Client;
use serde_json::Value;

use crate::common::private_server::PrivateServer;
use crate::common::{DbGuard, block_on, client, docs_digest, oxidump, run, server};
use oxidump::oplog::apply::{ApplyOptions, ReplayCounts, Replayer, Scan, Selection};

fn ts(i: u32) -> Timestamp {
    Timestamp {
        time: 1_000_000,
        increment: i,
    }
}

fn raw(d: &Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(d).expect("encodes")
}

/// Replays `entries` (given without `ts`; they get 1, 2, 3…) onto the test server.
fn replay(entries: &[Document]) -> ReplayCounts {
    replay_with(entries, Selection::default(), false).expect("replay")
}

/// [`replay`] with a selection; the first error is returned.
fn replay_with(
    entries: &[Document],
    selection: Selection,
    accept_partial: bool,
) -> Result<ReplayCounts, String> {
    replay_raw(&stamp(entries), selection, accept_partial).map(|(c, _)| c)
}

/// `entries` with `ts` 1, 2, 3…
fn stamp(entries: &[Document]) -> Vec<RawDocumentBuf> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut e = e.clone();
            e.insert("ts", ts(i as u32 + 1));
            raw(&e)
        })
        .collect()
}

/// Replays entries as they are onto the test server: the counts and the final index
/// catalog, or the first error.
fn replay_raw(
    stamped: &[RawDocumentBuf],
    selection: Selection,
    accept_partial: bool,
) -> Result<(ReplayCounts, BTreeMap<String, Vec<Document>>), String> {
    let c = client();
    let mut scan = Scan::default();
    for e in stamped {
        scan.add(e).expect("entry parses");
    }
    block_on(async move {
        let mut r = Replayer::new(
            c,
            ApplyOptions {
                lanes: 4,
                accept_partial,
                ..ApplyOptions::default()
            },
            selection,
            BTreeMap::new(),
            scan.txn_ends,
        )
        .await
        .expect("replayer");
        for e in stamped {
            r.apply(e).await.map_err(|x| x.to_string())?;
        }
        r.finish().await.map_err(|x| x.to_string())
    })
}

#[test]
fn a_selection_that_splits_a_transaction_stops_unless_accepted() {
    let _ = server();
    let guard = DbGuard::new("oplog_select");
    let db = guard.name().to_string();
    let (a, b, cmd) = (format!("{db}.a"), format!("{db}.b"), format!("{db}.$cmd"));
    let zero = doc! {"ts": Timestamp { time: 0, increment: 0 }, "t": -1_i64};
    let entries = [
        op("c", &cmd, doc! {"create": "a"}),
        op("c", &cmd, doc! {"create": "b"}),
        op("i", &b, doc! {"_id": 0}),
        doc! {"lsid": lsid(9), "txnNumber": 1_i64, "op": "c", "ns": "admin.$cmd", "prevOpTime": zero, "o": {"applyOps": [
            {"op": "i", "ns": &a, "o": {"_id": 1}},
            {"op": "i", "ns": &b, "o": {"_id": 1}},
        ]}},
    ];
    let only_a = || Selection {
        filter: oxidump::nsmatch::NsFilter::new(std::slice::from_ref(&a), &[]).expect("pattern"),
        renamer: oxidump::nsmatch::Renamer::default(),
    };
    let e = replay_with(&entries, only_a(), false).expect_err("a split transaction");
    assert!(e.contains("selected and unselected namespaces"), "{e}");
    // Accepted: the selected part only, with a warning; the unselected collection is
    // never created.
    let counts = replay_with(&entries, only_a(), true).expect("accepted");
    assert_eq!(raw_docs(&db, "a"), docs_of(&[doc! {"_id": 1}]));
    assert_eq!(collections(&db), vec!["a"]);
    assert_eq!(counts.warnings.len(), 1, "{counts:?}");
    assert_eq!(
        counts.skipped.get("insert: namespace not selected"),
        Some(&2),
        "{counts:?}"
    );
}

/// Every document of `db.coll` as raw bytes, in `_id` order.
fn raw_docs(db: &str, coll: &str) -> Vec<Vec<u8>> {
    let c = client();
    block_on(async move {
        c.database(db)
            .collection::<RawDocumentBuf>(coll)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await?
            .map_ok(RawDocumentBuf::into_bytes)
            .try_collect::<Vec<_>>()
            .await
    })
    .expect("read collection")
}

fn docs_of(list: &[Document]) -> Vec<Vec<u8>> {
    list.iter().map(|d| raw(d).into_bytes()).collect()
}

fn collections(db: &str) -> Vec<String> {
    let c = client();
    let mut v = block_on(async move { c.database(db).list_collection_names().await })
        .expect("list collections");
    v.sort();
    v
}

fn op(o: &str, ns: &str, body: Document) -> Document {
    doc! {"op": o, "ns": ns, "o": body}
}

fn upd(ns: &str, id: i32, body: Document) -> Document {
    doc! {"op": "u", "ns": ns, "o": body, "o2": {"_id": id}}
}

fn lsid(n: u8) -> Document {
    doc! {"id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![n; 16] }, "uid": Binary { subtype: BinarySubtype::Generic, bytes: vec![0; 32] }}
}

/// The mongod-shaped history of the checklist, in one sequence, and the documents it
/// must leave.
fn mongod_history(db: &str) -> (Vec<Document>, Vec<Document>, Vec<Document>) {
    let a = format!("{db}.a");
    let b = format!("{db}.b");
    let cmd = format!("{db}.$cmd");
    let zero = doc! {"ts": Timestamp { time: 0, increment: 0 }, "t": -1_i64};
    let entries = vec![
        op(
            "c",
            &cmd,
            doc! {"create": "a", "validator": {"n": {"$type": "int"}}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}},
        ),
        op(
            "c",
            &cmd,
            doc! {"create": "b", "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}},
        ),
        // 1. insert, replace, delete, insert again.
        op("i", &a, doc! {"_id": 1, "a": 1}),
        upd(&a, 1, doc! {"_id": 1, "b": 2}),
        op("d", &a, doc! {"_id": 1}),
        op("i", &a, doc! {"_id": 1, "c": 3}),
        // 2. top-level delta: a missing `u` field is appended before the `i` fields.
        op("i", &a, doc! {"_id": 2, "a": 1}),
        upd(
            &a,
            2,
            doc! {"$v": 2, "diff": {"u": {"z": 1, "a": 2}, "i": {"q": 0}}},
        ),
        // 3. a reorder by `i` (a pipeline's diff).
        op("i", &a, doc! {"_id": 3, "a": 1, "b": 2, "c": 3}),
        upd(
            &a,
            3,
            doc! {"$v": 2, "diff": {"i": {"b": 2, "a": 1, "c": 4}}},
        ),
        // 4. nested and array diffs together.
        op(
            "i",
            &a,
            doc! {"_id": 4, "a": 1, "b": {"c": 1, "d": 2}, "arr": [1, 2, 3]},
        ),
        upd(
            &a,
            4,
            doc! {"$v": 2, "diff": {"u": {"a": 5}, "i": {"x": true}, "sarr": {"a": true, "u1": 7}, "sb": {"d": {"d": false}, "u": {"c": 9}}}},
        ),
        // 5. resize, padding, sub-diff into an element.
        op(
            "i",
            &a,
            doc! {"_id": 5, "arr": [1, 2, 3, 4, 5], "brr": [{"x": 1}], "crr": [1, 2]},
        ),
        upd(
            &a,
            5,
            doc! {"$v": 2, "diff": {"sarr": {"a": true, "l": 2}, "sbrr": {"a": true, "s0": {"u": {"x": 2}}, "u3": "z"}, "scrr": {"a": true, "l": 4}}},
        ),
        // 7. an insert-only diff of an existing field moves it, never duplicates it.
        op("i", &a, doc! {"_id": 7, "a": 1, "x": 7, "b": 2}),
        upd(&a, 7, doc! {"$v": 2, "diff": {"i": {"x": 3}}}),
        // 8. updates of a missing document: the delta does nothing, the replacement upserts.
        upd(&a, 8, doc! {"$v": 2, "diff": {"u": {"gone": 1}}}),
        upd(&a, 80, doc! {"_id": 80, "r": 1}),
        op("d", &a, doc! {"_id": 80}),
        // 9. $v: 1 modifiers.
        op("i", &a, doc! {"_id": 9, "c": 1}),
        upd(
            &a,
            9,
            doc! {"$v": 1, "$set": {"a.b": 1}, "$unset": {"c": true}},
        ),
        // Sub-diff into a value of another type (a later state): null.
        op("i", &a, doc! {"_id": 10, "n": 5}),
        upd(&a, 10, doc! {"$v": 2, "diff": {"sn": {"u": {"k": 1}}}}),
        // 11. small transaction over two collections.
        doc! {"lsid": lsid(1), "txnNumber": 1_i64, "op": "c", "ns": "admin.$cmd", "prevOpTime": zero.clone(), "o": {"applyOps": [
            {"op": "i", "ns": &a, "o": {"_id": 11, "t": 1}},
            {"op": "i", "ns": &b, "o": {"_id": 11, "t": 1}},
            {"op": "u", "ns": &a, "o": {"$v": 2, "diff": {"u": {"c": 4}}}, "o2": {"_id": 1}},
        ]}},
        // 12. large transaction: partial entries, then the commit with `count`.
        doc! {"lsid": lsid(2), "txnNumber": 1_i64, "op": "c", "ns": "admin.$cmd", "prevOpTime": zero.clone(), "o": {"applyOps": [
            {"op": "i", "ns": &b, "o": {"_id": 12, "p": 1}},
        ], "partialTxn": true}},
        doc! {"lsid": lsid(2), "txnNumber": 1_i64, "op": "c", "ns": "admin.$cmd", "prevOpTime": {"ts": ts(25), "t": 1_i64}, "o": {"applyOps": [
            {"op": "i", "ns": &b, "o": {"_id": 13, "p": 2}},
        ], "count": 2}},
        // 13. prepared then committed; prepared then aborted.
        doc! {"lsid": lsid(3), "txnNumber": 1_i64, "op": "c", "ns": "admin.$cmd", "prevOpTime": zero.clone(), "o": {"applyOps": [
            {"op": "i", "ns": &b, "o": {"_id": 14}},
        ], "prepare": true}},
        doc! {"lsid": lsid(4), "txnNumber": 1_i64, "op": "c", "ns": "admin.$cmd", "prevOpTime": zero.clone(), "o": {"applyOps": [
            {"op": "i", "ns": &b, "o": {"_id": 15}},
        ], "prepare": true}},
        doc! {"lsid": lsid(3), "txnNumber": 1_i64, "op": "c", "ns": "admin.$cmd", "prevOpTime": {"ts": ts(27), "t": 1_i64}, "o": {"commitTransaction": 1, "commitTimestamp": ts(29)}},
        doc! {"lsid": lsid(4), "txnNumber": 1_i64, "op": "c", "ns": "admin.$cmd", "prevOpTime": {"ts": ts(28), "t": 1_i64}, "o": {"abortTransaction": 1}},
        // 14. aborted transaction of a never prepared one: nothing logged but the abort.
        // 16. a retryable write: applied at once.
        doc! {"lsid": lsid(5), "txnNumber": 7_i64, "stmtId": 0, "op": "i", "ns": &b, "o": {"_id": 16}, "prevOpTime": zero.clone()},
        // 17. batched writes: applyOps without a session, and multiOpType 1.
        op(
            "c",
            "admin.$cmd",
            doc! {"applyOps": [
                {"op": "d", "ns": &b, "o": {"_id": 16}},
                {"op": "i", "ns": &b, "o": {"_id": 17}},
            ]},
        ),
        doc! {"lsid": lsid(6), "txnNumber": 1_i64, "multiOpType": 1, "op": "c", "ns": "admin.$cmd", "prevOpTime": zero.clone(), "o": {"applyOps": [
            {"op": "i", "ns": &b, "o": {"_id": 18}},
        ]}},
        // 23. index DDL only changes the catalog (built after the replay).
        op(
            "c",
            &cmd,
            doc! {"createIndexes": "a", "v": 2, "key": {"n": 1}, "name": "n_1"},
        ),
        op(
            "c",
            &cmd,
            doc! {"startIndexBuild": "b", "indexBuildUUID": Binary { subtype: BinarySubtype::Uuid, bytes: vec![9; 16] }, "indexes": [{"v": 2, "key": {"e": 1}, "name": "e_1", "unique": true}]},
        ),
        op(
            "c",
            &cmd,
            doc! {"commitIndexBuild": "b", "indexBuildUUID": Binary { subtype: BinarySubtype::Uuid, bytes: vec![9; 16] }, "indexes": [{"v": 2, "key": {"e": 1}, "name": "e_1", "unique": true}]},
        ),
        op(
            "c",
            &cmd,
            doc! {"createIndexes": "b", "indexes": [{"v": 2, "key": {"f": 1}, "name": "f_1"}]},
        ),
        op("c", &cmd, doc! {"dropIndexes": "b", "index": "f_1"}),
        // 24. two documents swap a unique value: fine, the index comes later.
        op("i", &b, doc! {"_id": 20, "e": "x"}),
        op("i", &b, doc! {"_id": 21, "e": "y"}),
        upd(&b, 20, doc! {"$v": 2, "diff": {"u": {"e": "y"}}}),
        upd(&b, 21, doc! {"$v": 2, "diff": {"u": {"e": "x"}}}),
        // 25. the validator would refuse this: replay bypasses validation.
        op("i", &a, doc! {"_id": 25, "n": "not an int"}),
        // 21. CRUD on a collection the target lacks is skipped, never creates it.
        op("i", &format!("{db}.ghost"), doc! {"_id": 1}),
        // 36. skipped kinds.
        doc! {"op": "n", "ns": "", "o": {"msg": "periodic noop"}},
        op(
            "i",
            "admin.system.version",
            doc! {"_id": "featureCompatibilityVersion", "version": "8.0"},
        ),
        // Drop and recreate under one name.
        op("c", &cmd, doc! {"create": "tmp"}),
        op("i", &format!("{db}.tmp"), doc! {"_id": 1, "old": true}),
        op("c", &cmd, doc! {"drop": "tmp"}),
        op("c", &cmd, doc! {"create": "tmp"}),
        op("i", &format!("{db}.tmp"), doc! {"_id": 2}),
        // A rename within the database.
        op("c", &cmd, doc! {"create": "r1"}),
        op("i", &format!("{db}.r1"), doc! {"_id": 1}),
        op(
            "c",
            &cmd,
            doc! {"renameCollection": format!("{db}.r1"), "to": format!("{db}.r2"), "stayTemp": false},
        ),
    ];
    let want_a = vec![
        doc! {"_id": 1, "c": 4},
        doc! {"_id": 2, "a": 2, "z": 1, "q": 0},
        doc! {"_id": 3, "b": 2, "a": 1, "c": 4},
        doc! {"_id": 4, "a": 5, "b": {"c": 9}, "arr": [1, 7, 3], "x": true},
        doc! {"_id": 5, "arr": [1, 2], "brr": [{"x": 2}, Bson::Null, Bson::Null, "z"], "crr": [1, 2, Bson::Null, Bson::Null]},
        doc! {"_id": 7, "a": 1, "b": 2, "x": 3},
        doc! {"_id": 9, "a": {"b": 1}},
        doc! {"_id": 10, "n": Bson::Null},
        doc! {"_id": 11, "t": 1},
        doc! {"_id": 25, "n": "not an int"},
    ];
    let want_b = vec![
        doc! {"_id": 11, "t": 1},
        doc! {"_id": 12, "p": 1},
        doc! {"_id": 13, "p": 2},
        doc! {"_id": 14},
        doc! {"_id": 17},
        doc! {"_id": 18},
        doc! {"_id": 20, "e": "y"},
        doc! {"_id": 21, "e": "x"},
    ];
    (entries, want_a, want_b)
}

#[test]
fn mongod_entries_replay_byte_exact_and_twice_the_same() {
    let _ = server();
    let guard = DbGuard::new("oplog_mongod");
    let db = guard.name().to_string();
    let (entries, want_a, want_b) = mongod_history(&db);
    let counts = replay(&entries);
    assert_eq!(raw_docs(&db, "a"), docs_of(&want_a), "{db}.a");
    assert_eq!(raw_docs(&db, "b"), docs_of(&want_b), "{db}.b");
    assert_eq!(raw_docs(&db, "tmp"), docs_of(&[doc! {"_id": 2}]));
    assert_eq!(raw_docs(&db, "r2"), docs_of(&[doc! {"_id": 1}]));
    assert_eq!(collections(&db), vec!["a", "b", "r2", "tmp"]);
    // Counted, not silently dropped.
    let skipped = |k: &str| counts.skipped.get(k).copied().unwrap_or(0);
    assert_eq!(skipped("insert: collection missing on the target"), 1);
    assert_eq!(skipped("noop: nothing to do"), 1);
    assert_eq!(skipped("insert: server metadata"), 1);
    assert_eq!(
        skipped("startIndexBuild: index build or internal bookkeeping"),
        1
    );
    assert_eq!(skipped("abortTransaction: transaction aborted"), 1);
    assert_eq!(counts.transactions, 3, "{counts:?}");
    assert_eq!(counts.transactions_not_applied, 1, "{counts:?}");
    assert!(counts.read_modify_writes >= 3, "{counts:?}");
    assert_eq!(counts.applied.get("renameCollection"), Some(&1));

    // The same history again over the result: the same state. (Without the rename at
    // its end: replayed over its own result, `create r1` cannot tell that `r2` is the
    // same collection, renamed; no entry carries that but the collection UUID.)
    replay(&entries[..entries.len() - 3]);
    assert_eq!(
        raw_docs(&db, "a"),
        docs_of(&want_a),
        "{db}.a replayed twice"
    );
    assert_eq!(
        raw_docs(&db, "b"),
        docs_of(&want_b),
        "{db}.b replayed twice"
    );
    assert_eq!(collections(&db), vec!["a", "b", "r2", "tmp"]);
}

#[test]
fn transaction_boundaries_and_secantus_shapes() {
    let _ = server();
    let guard = DbGuard::new("oplog_secantus");
    let db = guard.name().to_string();
    let a = format!("{db}.a");
    let cmd = format!("{db}.$cmd");
    let stmt = |n: u8, body: Document| {
        let mut d = body;
        d.insert("lsid", lsid(n));
        d.insert("txnNumber", 1_i64);
        d
    };
    // A SecantusDB transaction A..B with another client's write X between them;
    // updates in the flat form.
    let entries = [
        op("c", &cmd, doc! {"create": "a"}),
        op(
            "i",
            &a,
            doc! {"_id": 1, "n": 1, "arr": [1, 2, 3], "s": {"k": 1}},
        ),
        stmt(1, op("i", &a, doc! {"_id": 2})),
        op("i", &a, doc! {"_id": 3}),
        stmt(
            1,
            upd(
                &a,
                1,
                doc! {"$v": 2, "diff": {"updatedFields": {"n": 2, "zz": 1, "mm": 2, "aa": 3, "s.k": 5, "arr.4": 9}, "removedFields": [], "truncatedArrays": []}},
            ),
        ),
        upd(
            &a,
            1,
            doc! {"$v": 2, "diff": {"updatedFields": {}, "removedFields": ["mm"], "truncatedArrays": [{"field": "arr", "newSize": 2}]}},
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("oplog.bson");
    let mut bytes = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let mut e = e.clone();
        e.insert("ts", ts(i as u32 + 1));
        bytes.extend_from_slice(raw(&e).as_bytes());
    }
    std::fs::write(&file, bytes).expect("write oplog.bson");
    let restore = |until: &str, db_to: &str| {
        let mut c = oxidump();
        c.args(["restore", "--uri", &server().uri, "--quiet", "--oplog-file"])
            .arg(&file)
            .args(["--until", until])
            .args([
                "--ns-from",
                &format!("{db}.*"),
                "--ns-to",
                &format!("{db_to}.*"),
            ]);
        c
    };
    let mut guard = guard;
    // The boundary at X (inside the transaction): X applied, neither statement.
    let d1 = guard.add("oplog_txn1");
    run(&mut restore(&format!("{}:4", ts(0).time), &d1), 0);
    assert_eq!(
        raw_docs(&d1, "a"),
        docs_of(&[
            doc! {"_id": 1, "n": 1, "arr": [1, 2, 3], "s": {"k": 1}},
            doc! {"_id": 3}
        ])
    );
    // At the transaction's last statement: all of it; the flat form's new fields land
    // as one $set put them (in name order), the array padded.
    let d2 = guard.add("oplog_txn2");
    run(&mut restore(&format!("{}:5", ts(0).time), &d2), 0);
    assert_eq!(
        raw_docs(&d2, "a"),
        docs_of(&[
            doc! {"_id": 1, "n": 2, "arr": [1, 2, 3, Bson::Null, 9], "s": {"k": 5}, "aa": 3, "mm": 2, "zz": 1},
            doc! {"_id": 2},
            doc! {"_id": 3}
        ])
    );
    // To the end: the removal and the truncation too.
    let d3 = guard.add("oplog_txn3");
    run(&mut restore(&format!("{}:6", ts(0).time), &d3), 0);
    assert_eq!(
        raw_docs(&d3, "a")[0],
        raw(&doc! {"_id": 1, "n": 2, "arr": [1, 2], "s": {"k": 5}, "aa": 3, "zz": 1}).into_bytes()
    );
    // Exclusive: strictly before the transaction's end.
    let d4 = guard.add("oplog_txn4");
    run(
        restore(&format!("{}:5", ts(0).time), &d4).arg("--until-exclusive"),
        0,
    );
    assert_eq!(raw_docs(&d4, "a").len(), 2);
    // A dry run shows the window and the entries, and writes nothing.
    let d6 = guard.add("oplog_txn6");
    let (_, out, _) = run(
        restore(&format!("{}:6", ts(0).time), &d6).arg("--dry-run"),
        0,
    );
    assert!(
        out.contains("oplog replay (nothing will be written)"),
        "{out}"
    );
    assert!(out.contains(&format!("insert {db}.a")), "{out}");
    assert!(out.contains("replays up to 1000000:6 (inclusive)"), "{out}");
    assert!(collections(&d6).is_empty());
    // Beyond the last entry: refused, nothing written.
    let d5 = guard.add("oplog_txn5");
    let (_, _, err) = run(&mut restore(&format!("{}:7", ts(0).time), &d5), 2);
    assert!(err.contains("after the last oplog entry"), "{err}");
    assert!(collections(&d5).is_empty());
}

// ---------------------------------------------------------------------------------
// A workload written during `dump --oplog`
// ---------------------------------------------------------------------------------

/// The state of the workload's database at one moment: the newest oplog timestamp, and
/// the digest of every collection.
#[derive(Debug, Clone)]
struct Moment {
    ts: Timestamp,
    digests: BTreeMap<String, (u64, String)>,
}

async fn newest_ts(c: &Client) -> Timestamp {
    let e = c
        .database("local")
        .collection::<Document>("oplog.rs")
        .find_one(doc! {})
        .sort(doc! {"ts": -1})
        .await
        .expect("read the oplog")
        .expect("an oplog entry");
    e.get_timestamp("ts").expect("ts")
}

async fn digests(c: &Client, db: &str) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    let d = c.database(db);
    for name in d.list_collection_names().await.expect("list") {
        let docs: Vec<Vec<u8>> = d
            .collection::<RawDocumentBuf>(&name)
            .find(doc! {})
            .await
            .expect("find")
            .map_ok(RawDocumentBuf::into_bytes)
            .try_collect()
            .await
            .expect("read");
        out.insert(name, docs_digest(docs));
    }
    out
}

/// One step of the workload: every update shape, deletes, DDL, transactions. After
/// the dump only (`late`), renames and index drops too, which a dump refuses in its
/// window.
pub(crate) async fn step(c: &Client, db: &str, i: i64, late: bool) -> mongodb::error::Result<()> {
    let d = c.database(db);
    let a = d.collection::<Document>("a");
    let b = d.collection::<Document>("b");
    // Each round of 12 steps inserts one document and changes the previous round's.
    let k = i - i % 12 - 12;
    match i % 12 {
        0 => {
            a.insert_one(
                doc! {"_id": i, "n": i, "s": "x", "arr": [1, 2, 3], "sub": {"k": 1, "j": [1]}},
            )
            .await?;
        }
        1 => {
            a.update_one(
                doc! {"_id": k},
                doc! {"$set": {"sub.k": i, "zz": 1, "mm": 2, "aa": 3}},
            )
            .await?;
        }
        2 => {
            a.update_one(
                doc! {"_id": k},
                doc! {"$unset": {"s": ""}, "$inc": {"n": 1}},
            )
            .await?;
        }
        3 => {
            a.update_one(
                doc! {"_id": k},
                doc! {"$push": {"arr": i, "sub.j": {"$each": [i, i]}}},
            )
            .await?;
        }
        4 => {
            a.update_one(doc! {"_id": k}, doc! {"$pull": {"arr": 2}})
                .await?;
        }
        5 => {
            a.replace_one(doc! {"_id": k}, doc! {"r": i, "t": {"deep": [i]}})
                .await?;
        }
        6 => {
            a.delete_one(doc! {"_id": k - 12}).await?;
        }
        7 => {
            let mut s = c.start_session().await?;
            s.start_transaction().await?;
            b.insert_one(doc! {"_id": i, "txn": true})
                .session(&mut s)
                .await?;
            a.update_one(doc! {"_id": k}, doc! {"$set": {"in_txn": i}})
                .session(&mut s)
                .await?;
            s.commit_transaction().await?;
        }
        8 => {
            a.update_one(
                doc! {"_id": k},
                vec![doc! {"$set": {"p": {"$add": ["$n", 1]}}}],
            )
            .await?;
        }
        9 => {
            // An aborted transaction leaves nothing.
            let mut s = c.start_session().await?;
            s.start_transaction().await?;
            b.insert_one(doc! {"_id": -i}).session(&mut s).await?;
            s.abort_transaction().await?;
            a.update_one(doc! {"_id": k}, doc! {"$set": {"arr.6": "far"}})
                .await?;
        }
        10 => {
            // DDL: an index, a collection created and dropped, one created implicitly.
            match (i / 12) % 4 {
                0 => {
                    d.run_command(doc! {"createIndexes": "a", "indexes": [{"key": {format!("f{i}"): 1}, "name": format!("f{i}_1")}]})
                        .await?;
                }
                1 => {
                    d.collection::<Document>(&format!("tmp{i}"))
                        .insert_one(doc! {"_id": 1})
                        .await?;
                }
                2 => {
                    d.run_command(
                        doc! {"create": format!("v{i}"), "validator": {"x": {"$exists": true}}},
                    )
                    .await?;
                    d.collection::<Document>(&format!("v{i}"))
                        .insert_one(doc! {"_id": 1, "x": 1})
                        .await?;
                }
                _ => {
                    let names = d.list_collection_names().await?;
                    if let Some(t) = names.iter().find(|n| n.starts_with("tmp")) {
                        d.collection::<Document>(t).drop().await?;
                    }
                }
            }
        }
        _ => {
            if late && (i / 12) % 2 == 0 {
                let names = d.list_collection_names().await?;
                if let Some(v) = names.iter().find(|n| n.starts_with('v')) {
                    c.database("admin")
                        .run_command(doc! {"renameCollection": format!("{db}.{v}"), "to": format!("{db}.renamed{i}")})
                        .await?;
                }
            } else {
                b.delete_one(doc! {"_id": i - 4}).await?;
                b.insert_one(doc! {"_id": i, "plain": 1}).await?;
            }
        }
    }
    Ok(())
}

fn index_names(c: &Client, db: &str, coll: &str) -> Vec<String> {
    let c = c.clone();
    let (db, coll) = (db.to_string(), coll.to_string());
    let mut v = block_on(async move {
        c.database(&db)
            .collection::<Document>(&coll)
            .list_index_names()
            .await
    })
    .expect("list indexes");
    v.sort();
    v
}

fn digests_of_target(uri: &str, db: &str) -> BTreeMap<String, (u64, String)> {
    let uri = uri.to_string();
    let db = db.to_string();
    block_on(async move {
        let c = Client::with_uri_str(&uri).await.expect("client");
        digests(&c, &db).await
    })
}

fn ls_window(path: &Path) -> (Timestamp, Timestamp) {
    let (_, stdout, _) = run(oxidump().arg("ls").arg("--json").arg(path), 0);
    let v: Value = serde_json::from_str(&stdout).expect("ls --json");
    let w = v["oplog"].as_array().expect("an oplog window");
    let p = |s: &Value| {
        let (t, i) = s.as_str().expect("ts").split_once(':').expect("s:i");
        Timestamp {
            time: t.parse().expect("s"),
            increment: i.parse().expect("i"),
        }
    };
    (p(&w[0]), p(&w[1]))
}

fn show(t: Timestamp) -> String {
    format!("{}:{}", t.time, t.increment)
}

#[test]
fn a_dump_taken_during_writes_replays_to_its_consistent_point_and_later() {
    let source = PrivateServer::start(&[]);
    let target = PrivateServer::start(&[]);
    let (suri, turi) = (source.uri(), target.uri());
    let c = source.client();
    let db = "wl";
    // Bulk that makes the dump last while the workload writes: text that compresses
    // slowly at the dump's level 19 (a repeated letter would compress in no time, and
    // the dump would end before the workload pauses), whatever else it costs to read.
    block_on(async {
        let seed = c.database("bulk").collection::<RawDocumentBuf>("seed");
        for chunk in 0..12u64 {
            let mut r = oxidump_sample::rng::Rng::new(7, chunk);
            let docs: Vec<RawDocumentBuf> = (chunk * 5000..(chunk + 1) * 5000)
                .map(|i| oxidump_sample::dataset::Shape::User.make(&mut r, i))
                .collect();
            seed.insert_many(docs).await?;
        }
        c.database(db)
            .collection::<Document>("a")
            .insert_many((0..40i64).map(|i| doc! {"_id": -100 - i, "n": i}))
            .await?;
        c.database(db)
            .collection::<Document>("b")
            .insert_one(doc! {"_id": -1})
            .await?;
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("seed");

    // The only writer: one step at a time, each followed by a recorded moment.
    let moments = Arc::new(Mutex::new(Vec::<Moment>::new()));
    let steps = Arc::new(AtomicUsize::new(0));
    let late = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let writer = {
        let (moments, steps, late, stop, pause, paused, c) = (
            moments.clone(),
            steps.clone(),
            late.clone(),
            stop.clone(),
            pause.clone(),
            paused.clone(),
            c.clone(),
        );
        std::thread::spawn(move || {
            block_on(async move {
                let mut i = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    if pause.load(Ordering::SeqCst) {
                        paused.store(true, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    paused.store(false, Ordering::SeqCst);
                    step(&c, db, i, late.load(Ordering::SeqCst))
                        .await
                        .unwrap_or_else(|e| panic!("workload step {i}: {e}"));
                    let m = Moment {
                        ts: newest_ts(&c).await,
                        digests: digests(&c, db).await,
                    };
                    moments.lock().expect("lock").push(m);
                    steps.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
            })
        })
    };
    let wait_steps = |n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while steps.load(Ordering::SeqCst) < n {
            assert!(std::time::Instant::now() < deadline, "the workload stalls");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_steps(30);
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("wl.oxd");
    // A dump while the workload writes, held in the middle of its data (after its
    // writer's first run of documents, so past its window's start) while the workload
    // takes a few more steps and pauses; then released, it ends after the pause, so
    // the window's end is a moment the workload recorded, however fast the dump is.
    let release = dir.path().join("release");
    let mut child = oxidump()
        .args([
            "dump",
            "--uri",
            &suri,
            "--quiet",
            "--oplog",
            "-j",
            "1",
            "--zstd-level",
            "19",
            "--out",
        ])
        .arg(&dump)
        .env("OXIDUMP_FAULT_HOLD", "dump-docs")
        .env("OXIDUMP_FAULT_RELEASE", &release)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start dump");
    let stderr = child.stderr.take().expect("stderr");
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let stderr_reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("fault hold: dump-docs") {
                let _ = held_tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    held_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the dump holds in the middle of its data");
    let during = steps.load(Ordering::SeqCst);
    wait_steps(during + 3);
    pause.store(true, Ordering::SeqCst);
    while !paused.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let paused_at = moments
        .lock()
        .expect("lock")
        .last()
        .expect("a moment")
        .clone();
    std::fs::write(&release, b"").expect("release the dump");
    let indexes_at_pause = index_names(&c, db, "a");
    let out = child.wait_with_output().expect("dump");
    let err = stderr_reader.join().expect("stderr");
    assert!(out.status.success(), "dump --oplog: {err}");
    // Phase two: renames too, then stop.
    late.store(true, Ordering::SeqCst);
    pause.store(false, Ordering::SeqCst);
    let after_dump = steps.load(Ordering::SeqCst);
    wait_steps(after_dump + 40);
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("the workload panicked");
    let moments = moments.lock().expect("lock").clone();

    // The later oplog, saved as a dump of local.oplog.rs would be.
    let (start, end) = ls_window(&dump);
    let later = dir.path().join("later.bson");
    block_on(async {
        let mut cur = c
            .database("local")
            .collection::<RawDocumentBuf>("oplog.rs")
            .find(doc! {"ts": {"$gte": start}})
            .sort(doc! {"ts": 1})
            .await?;
        let mut bytes = Vec::new();
        while let Some(d) = cur.try_next().await? {
            bytes.extend_from_slice(d.as_bytes());
        }
        std::fs::write(&later, bytes).expect("write later.bson");
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("save the later oplog");

    // The state at the window's end: the moment the workload paused at.
    assert!(
        end >= paused_at.ts,
        "the dump ended ({}) before the workload paused ({}): it was too fast for this test",
        show(end),
        show(paused_at.ts)
    );
    assert!(
        moments.iter().all(|m| m.ts <= paused_at.ts || m.ts > end),
        "a write between the pause and the window's end"
    );
    let at_end = paused_at;
    assert!(
        moments.iter().any(|m| m.ts > start && m.ts <= end),
        "no write happened during the dump ({} .. {})",
        show(start),
        show(end)
    );
    let restore = |args: &[&str]| {
        let mut cmd = oxidump();
        cmd.args(["restore", "--uri", &turi, "--quiet"]).args(args);
        cmd
    };
    let dump_s = dump.to_str().expect("utf-8 path");
    let later_s = later.to_str().expect("utf-8 path");

    // 1. The dump and its window alone: the state at the consistent point.
    let report = dir.path().join("r1.json");
    run(
        restore(&[
            dump_s,
            "--oplog-replay",
            "--ns-include",
            "wl.*",
            "--report-json",
        ])
        .arg(&report),
        0,
    );
    assert_eq!(
        digests_of_target(&turi, db),
        at_end.digests,
        "restore --oplog-replay"
    );
    // The indexes the window created are built too (after the replay).
    assert_eq!(index_names(&target.client(), db, "a"), indexes_at_pause);
    assert!(
        indexes_at_pause.len() > 1,
        "the window created no index: {indexes_at_pause:?}"
    );
    let rep: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(rep["oplog"]["consistent_point"], show(end));
    assert!(
        rep["oplog"]["counts"]["applied"]["insert"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );

    // 2. The same window again over it: the same state.
    run(
        &mut restore(&["--oplog-file", dump_s, "--ns-include", "wl.*"]),
        0,
    );
    assert_eq!(
        digests_of_target(&turi, db),
        at_end.digests,
        "replayed twice"
    );

    // 3. With the later oplog, to later moments, remapped into fresh databases.
    let later_moments: Vec<&Moment> = moments.iter().filter(|m| m.ts > end).collect();
    assert!(later_moments.len() > 10, "too few moments after the dump");
    let picks = [
        later_moments[0],
        later_moments[later_moments.len() / 2],
        *later_moments.last().expect("last"),
    ];
    for (n, m) in picks.iter().enumerate() {
        let to = format!("wl_at{n}");
        run(
            &mut restore(&[
                dump_s,
                "--oplog-file",
                later_s,
                "--until",
                &show(m.ts),
                "--ns-include",
                "wl.*",
                "--ns-from",
                "wl.*",
                "--ns-to",
                &format!("{to}.*"),
            ]),
            0,
        );
        assert_eq!(
            digests_of_target(&turi, &to),
            m.digests,
            "restore to {} (moment {n})",
            show(m.ts)
        );
    }

    // 4. A moment before the consistent point is refused, and nothing is written.
    let early = show(Timestamp {
        time: end.time,
        increment: 0,
    });
    let (_, _, err) = run(
        &mut restore(&[
            dump_s,
            "--oplog-replay",
            "--until",
            &early,
            "--ns-include",
            "wl.*",
            "--ns-from",
            "wl.*",
            "--ns-to",
            "wl_early.*",
        ]),
        2,
    );
    assert!(err.contains("consistent point"), "{err}");
    assert!(digests_of_target(&turi, "wl_early").is_empty());
}

// ---------------------------------------------------------------------------------
// The rest of the checklist: fuzzy states, DDL, special collections, names, gaps
// ---------------------------------------------------------------------------------

/// Creates `db.coll` holding `docs` (a snapshot the replay starts from).
fn seed(db: &str, coll: &str, docs: &[Document]) {
    let c = client();
    let (db, coll, docs) = (db.to_string(), coll.to_string(), docs.to_vec());
    block_on(async move {
        let d = c.database(&db);
        d.create_collection(&coll).await?;
        if !docs.is_empty() {
            d.collection::<Document>(&coll).insert_many(docs).await?;
        }
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("seed the snapshot");
}

/// `from.*` replayed as `to.*`.
fn remap(from: &str, to: &str) -> Selection {
    Selection {
        filter: oxidump::nsmatch::NsFilter::default(),
        renamer: oxidump::nsmatch::Renamer::new(&[(format!("{from}.*"), format!("{to}.*"))])
            .expect("pattern"),
    }
}

/// The `listCollections` entry of `db.coll`.
fn coll_info(db: &str, coll: &str) -> Option<Document> {
    let c = client();
    let (db, coll) = (db.to_string(), coll.to_string());
    block_on(async move {
        let mut cur = c
            .database(&db)
            .run_cursor_command(doc! {"listCollections": 1, "filter": {"name": &coll}})
            .await?;
        let first = cur.try_next().await?;
        Ok::<_, mongodb::error::Error>(first)
    })
    .expect("listCollections")
}

/// The test server's own oplog entries of `db` written by `writes`, in `ts` order.
fn live<F, Fut>(db: &str, writes: F) -> Vec<RawDocumentBuf>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = mongodb::error::Result<()>>,
{
    let c = client();
    let prefix = format!("^{db}\\.");
    let marker = format!("end of the writes of {db}");
    block_on(async move {
        let before = newest_ts(&c).await;
        writes(c.clone()).await?;
        // A note after the writes: once it can be read, so can every entry before it.
        c.database("admin")
            .run_command(doc! {"appendOplogNote": 1, "data": {"msg": &marker}})
            .await?;
        let oplog = c.database("local").collection::<RawDocumentBuf>("oplog.rs");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let end = loop {
            let note = oplog
                .find_one(doc! {"ts": {"$gt": before}, "op": "n", "o.msg": &marker})
                .await?;
            if let Some(n) = note {
                break n.get_timestamp("ts").expect("ts");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the oplog note never appeared"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        oplog
            .find(doc! {"ts": {"$gt": before, "$lt": end}, "ns": {"$regex": prefix}})
            .sort(doc! {"ts": 1})
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .expect("live writes and their oplog")
}

#[test]
fn fuzzy_reapplication_over_a_later_snapshot_converges() {
    // Checklist 6: the snapshot already holds the state after later replacements; the
    // deltas before them land on that later state (examples 4b and 5), and the
    // replacements bring each document back to the source's.
    let _ = server();
    let mut guard = DbGuard::new("oplog_fuzzy");
    let later = vec![
        doc! {"_id": 1, "arr": [5]},
        doc! {"_id": 2, "a": 1, "x": 7, "b": 2},
    ];
    let entries = |db: &str| {
        let a = format!("{db}.a");
        vec![
            upd(
                &a,
                1,
                doc! {"$v": 2, "diff": {"sarr": {"a": true, "s0": {"u": {"x": 2}}, "u3": "z"}}},
            ),
            upd(&a, 2, doc! {"$v": 2, "diff": {"i": {"x": 3}}}),
            upd(&a, 1, doc! {"_id": 1, "arr": [5]}),
            upd(&a, 2, doc! {"_id": 2, "a": 1, "x": 7, "b": 2}),
        ]
    };
    // The deltas alone on the later state.
    let db = guard.name().to_string();
    seed(&db, "a", &later);
    replay(&entries(&db)[..2]);
    assert_eq!(
        raw_docs(&db, "a"),
        docs_of(&[
            doc! {"_id": 1, "arr": [Bson::Null, Bson::Null, Bson::Null, "z"]},
            doc! {"_id": 2, "a": 1, "b": 2, "x": 3},
        ])
    );
    // The whole window: the source's final state.
    let db = guard.add("oplog_fuzzy2");
    seed(&db, "a", &later);
    let counts = replay(&entries(&db));
    assert_eq!(raw_docs(&db, "a"), docs_of(&later));
    assert_eq!(counts.applied.get("update"), Some(&4), "{counts:?}");
}

#[test]
fn create_keeps_its_options_and_skips_a_collection_the_snapshot_holds() {
    // Checklist 18 and 19.
    let _ = server();
    let guard = DbGuard::new("oplog_create");
    let db = guard.name().to_string();
    let cmd = format!("{db}.$cmd");
    let id_index = doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"};
    seed(&db, "ex", &[doc! {"_id": 1, "keep": true}]);
    let entries = [
        op(
            "c",
            &cmd,
            doc! {"create": "val", "validator": {"n": {"$type": "int"}}, "validationLevel": "moderate", "validationAction": "warn", "idIndex": id_index.clone()},
        ),
        op(
            "c",
            &cmd,
            doc! {"create": "col", "collation": {"locale": "fr", "strength": 2}},
        ),
        // SecantusDB logs `idIndex` beside `clusteredIndex`; mongod refuses both.
        op(
            "c",
            &cmd,
            doc! {"create": "clu", "clusteredIndex": {"key": {"_id": 1}, "unique": true}, "idIndex": id_index.clone()},
        ),
        op(
            "c",
            &cmd,
            doc! {"create": "pre", "changeStreamPreAndPostImages": {"enabled": true}, "idIndex": id_index.clone()},
        ),
        op("c", &cmd, doc! {"create": "ex", "idIndex": id_index}),
        op("i", &format!("{db}.ex"), doc! {"_id": 2}),
    ];
    let counts = replay(&entries);
    let options = |c: &str| {
        coll_info(&db, c)
            .unwrap_or_else(|| panic!("{db}.{c} was not created"))
            .get_document("options")
            .cloned()
            .unwrap_or_default()
    };
    let val = options("val");
    assert_eq!(
        val.get_document("validator").ok(),
        Some(&doc! {"n": {"$type": "int"}})
    );
    assert_eq!(val.get_str("validationLevel").ok(), Some("moderate"));
    assert_eq!(val.get_str("validationAction").ok(), Some("warn"));
    let col = options("col");
    let collation = col.get_document("collation").expect("collation");
    assert_eq!(collation.get_str("locale").ok(), Some("fr"));
    assert_eq!(
        collation.get("strength").and_then(Bson::as_i32),
        Some(2),
        "{collation}"
    );
    let clu = options("clu");
    let ci = clu.get_document("clusteredIndex").expect("clusteredIndex");
    assert_eq!(ci.get_document("key").ok(), Some(&doc! {"_id": 1}));
    assert_eq!(ci.get_bool("unique").ok(), Some(true));
    assert_eq!(
        options("pre")
            .get_document("changeStreamPreAndPostImages")
            .ok(),
        Some(&doc! {"enabled": true})
    );
    // The snapshot's collection is kept with its documents.
    assert_eq!(
        raw_docs(&db, "ex"),
        docs_of(&[doc! {"_id": 1, "keep": true}, doc! {"_id": 2}])
    );
    assert_eq!(
        counts
            .skipped
            .get("create: collection exists on the target"),
        Some(&1),
        "{counts:?}"
    );
}

#[test]
fn a_collection_dropped_and_recreated_in_the_window_keeps_only_its_last_incarnation() {
    // Checklist 20: the dump was taken after the recreate.
    let _ = server();
    let guard = DbGuard::new("oplog_recreate");
    let db = guard.name().to_string();
    let cmd = format!("{db}.$cmd");
    let t = format!("{db}.t");
    seed(
        &db,
        "t",
        &[doc! {"_id": 2, "new": 1}, doc! {"_id": 3, "new": 1}],
    );
    let entries = [
        op("c", &cmd, doc! {"create": "t"}),
        op("i", &t, doc! {"_id": 1, "old": 1}),
        op("i", &t, doc! {"_id": 3, "old": 1}),
        upd(&t, 1, doc! {"$v": 2, "diff": {"u": {"old": 2}}}),
        op("c", &cmd, doc! {"drop": "t"}),
        op("c", &cmd, doc! {"create": "t"}),
        op("i", &t, doc! {"_id": 2, "new": 1}),
        op("i", &t, doc! {"_id": 3, "new": 1}),
    ];
    replay(&entries);
    assert_eq!(
        raw_docs(&db, "t"),
        docs_of(&[doc! {"_id": 2, "new": 1}, doc! {"_id": 3, "new": 1}])
    );
    // Again over the result: the same.
    replay(&entries);
    assert_eq!(
        raw_docs(&db, "t"),
        docs_of(&[doc! {"_id": 2, "new": 1}, doc! {"_id": 3, "new": 1}])
    );
}

#[test]
fn renames_with_drop_target_and_across_databases() {
    // Checklist 22: dropTarget; mongod's cross-database rename (a temporary collection
    // in the target database, filled, renamed, and the source dropped); SecantusDB's
    // single cross-database entry.
    let _ = server();
    let mut guard = DbGuard::new("oplog_rn1");
    let d1 = guard.name().to_string();
    let d2 = guard.add("oplog_rn2");
    let (c1, c2) = (format!("{d1}.$cmd"), format!("{d2}.$cmd"));
    let tmp = "tmpXy12.renameCollection";
    let uuid = Binary {
        subtype: BinarySubtype::Uuid,
        bytes: vec![3; 16],
    };
    let entries = [
        op("c", &c1, doc! {"create": "a"}),
        op("i", &format!("{d1}.a"), doc! {"_id": 1}),
        op("c", &c1, doc! {"create": "b"}),
        op("i", &format!("{d1}.b"), doc! {"_id": 9}),
        op(
            "c",
            &c1,
            doc! {"renameCollection": format!("{d1}.a"), "to": format!("{d1}.b"), "stayTemp": false, "dropTarget": uuid},
        ),
        // mongod, decomposed.
        op("c", &c1, doc! {"create": "c"}),
        op("i", &format!("{d1}.c"), doc! {"_id": 5}),
        op("c", &c2, doc! {"create": tmp}),
        op("i", &format!("{d2}.{tmp}"), doc! {"_id": 5}),
        op(
            "c",
            &c2,
            doc! {"renameCollection": format!("{d2}.{tmp}"), "to": format!("{d2}.c"), "stayTemp": false},
        ),
        op("c", &c1, doc! {"drop": "c"}),
        // SecantusDB: one entry, on the source database.
        op("c", &c1, doc! {"create": "d"}),
        op("i", &format!("{d1}.d"), doc! {"_id": 6}),
        op(
            "c",
            &c1,
            doc! {"renameCollection": format!("{d1}.d"), "to": format!("{d2}.e")},
        ),
    ];
    replay(&entries);
    assert_eq!(collections(&d1), vec!["b"]);
    assert_eq!(raw_docs(&d1, "b"), docs_of(&[doc! {"_id": 1}]));
    assert_eq!(collections(&d2), vec!["c", "e"]);
    assert_eq!(raw_docs(&d2, "c"), docs_of(&[doc! {"_id": 5}]));
    assert_eq!(raw_docs(&d2, "e"), docs_of(&[doc! {"_id": 6}]));
}

#[test]
fn capped_collections_keep_their_newest_documents() {
    // Checklist 26, mongod's entries and the test server's own.
    let _ = server();
    let mut guard = DbGuard::new("oplog_capped");
    let db = guard.name().to_string();
    let cmd = format!("{db}.$cmd");
    let cap = format!("{db}.cap");
    let mut entries = vec![op(
        "c",
        &cmd,
        doc! {"create": "cap", "capped": true, "size": 4096, "max": 3},
    )];
    for i in 0..5 {
        entries.push(op("i", &cap, doc! {"_id": i}));
    }
    entries.push(op("d", &cap, doc! {"_id": 0}));
    entries.push(op("d", &cap, doc! {"_id": 1}));
    entries.push(op(
        "c",
        &cmd,
        doc! {"create": "cap2", "capped": true, "size": 4096},
    ));
    entries.push(op("i", &format!("{db}.cap2"), doc! {"_id": 1}));
    entries.push(op("c", &cmd, doc! {"emptycapped": "cap2"}));
    replay(&entries);
    let ids = |db: &str, c: &str| -> Vec<Vec<u8>> { raw_docs(db, c) };
    assert_eq!(
        ids(&db, "cap"),
        docs_of(&[doc! {"_id": 2}, doc! {"_id": 3}, doc! {"_id": 4}])
    );
    assert!(ids(&db, "cap2").is_empty());
    let info = coll_info(&db, "cap").expect("cap");
    assert_eq!(
        info.get_document("options")
            .unwrap()
            .get_bool("capped")
            .ok(),
        Some(true)
    );

    // The test server's own entries: its trims are logged as deletes.
    let src = guard.add("oplog_capsrc");
    let entries = live(&src, |c| {
        let src = src.clone();
        async move {
            let d = c.database(&src);
            d.run_command(doc! {"create": "cap", "capped": true, "size": 4096, "max": 3})
                .await?;
            for i in 0..5 {
                d.collection::<Document>("cap")
                    .insert_one(doc! {"_id": i})
                    .await?;
            }
            Ok(())
        }
    });
    let to = guard.add("oplog_capdst");
    let (counts, _) = replay_raw(&entries, remap(&src, &to), false).expect("replay");
    assert_eq!(ids(&to, "cap"), ids(&src, "cap"));
    assert_eq!(ids(&to, "cap").len(), 3);
    assert_eq!(counts.applied.get("delete"), Some(&2), "{counts:?}");
}

#[test]
fn time_series_of_mongod_become_a_collection_and_bucket_writes_are_refused_by_name() {
    // Checklist 27 and 10 against the test server, which keeps measurements and
    // refuses bucket writes: the bucket collection becomes the time-series collection,
    // its view entry is skipped, and the buckets' inserts and binary-patch updates
    // stop the replay with a clear error, or are counted when partial results are
    // accepted.
    let _ = server();
    let mut guard = DbGuard::new("oplog_tsm");
    let entries = |db: &str| {
        let cmd = format!("{db}.$cmd");
        let buckets = format!("{db}.system.buckets.w");
        let oid = bson::oid::ObjectId::from_bytes([1; 12]);
        let t0 = bson::DateTime::from_millis(1_700_000_000_000);
        vec![
            op(
                "c",
                &cmd,
                doc! {"create": "system.buckets.w", "validator": {"$jsonSchema": {"bsonType": "object"}}, "clusteredIndex": true,
                "timeseries": {"timeField": "t", "metaField": "m", "granularity": "seconds", "bucketMaxSpanSeconds": 3600}},
            ),
            op(
                "i",
                &format!("{db}.system.views"),
                doc! {"_id": format!("{db}.w"), "viewOn": "system.buckets.w", "pipeline": [{"$_internalUnpackBucket": {"timeField": "t", "metaField": "m", "bucketMaxSpanSeconds": 3600}}]},
            ),
            op(
                "i",
                &buckets,
                doc! {"_id": oid, "control": {"version": 1, "min": {"_id": 1, "t": t0, "v": 1}, "max": {"_id": 1, "t": t0, "v": 1}}, "meta": "x", "data": {"_id": {"0": 1}, "t": {"0": t0}, "v": {"0": 1}}},
            ),
            doc! {"op": "u", "ns": &buckets, "o": {"$v": 2, "diff": {"sdata": {"b": {"v": {"o": 4, "d": Binary { subtype: BinarySubtype::Generic, bytes: vec![0x10, 0, 0] }}}}}}, "o2": {"_id": oid}},
        ]
    };
    let db = guard.name().to_string();
    let e = replay_with(&entries(&db), Selection::default(), false).expect_err("refused");
    assert!(e.contains("keeps measurements, not buckets"), "{e}");
    assert!(e.contains("system.buckets.w"), "{e}");
    let info = coll_info(&db, "w").expect("the time-series collection is created");
    assert_eq!(info.get_str("type").ok(), Some("timeseries"), "{info}");
    let ts_opts = info
        .get_document("options")
        .and_then(|o| o.get_document("timeseries"))
        .expect("timeseries options");
    assert_eq!(ts_opts.get_str("timeField").ok(), Some("t"));
    assert_eq!(ts_opts.get_str("metaField").ok(), Some("m"));
    // Accepted: counted by kind, warned once, nothing written to the collection.
    let db = guard.add("oplog_tsm2");
    let counts = replay_with(&entries(&db), Selection::default(), true).expect("accepted");
    let why = "time-series bucket write (the target keeps measurements, not buckets)";
    assert_eq!(
        counts.skipped.get(&format!("insert: {why}")),
        Some(&1),
        "{counts:?}"
    );
    assert_eq!(
        counts.skipped.get(&format!("update: {why}")),
        Some(&1),
        "{counts:?}"
    );
    assert_eq!(
        counts
            .skipped
            .get("insert: time-series view (created with its collection)"),
        Some(&1),
        "{counts:?}"
    );
    assert_eq!(counts.warnings.len(), 1, "{counts:?}");
    assert!(raw_docs(&db, "w").is_empty());
}

#[test]
fn time_series_measurements_of_the_test_server_keep_one_copy_each() {
    // Checklist 28: the test server keeps duplicate measurement `_id`s, so a
    // measurement the snapshot already holds would be doubled by a plain insert.
    let _ = server();
    let mut guard = DbGuard::new("oplog_tss");
    let src = guard.name().to_string();
    let t0 = bson::DateTime::from_millis(1_700_000_000_000);
    let ts_opts = doc! {"timeField": "t", "metaField": "k"};
    let entries = live(&src, |c| {
        let (src, ts_opts) = (src.clone(), ts_opts.clone());
        async move {
            let d = c.database(&src);
            d.run_command(doc! {"create": "m", "timeseries": ts_opts})
                .await?;
            let m = d.collection::<Document>("m");
            for i in 1..=3 {
                let k = if i == 1 { "x" } else { "a" };
                m.insert_one(doc! {"_id": i, "t": t0, "k": k, "v": i})
                    .await?;
            }
            m.delete_many(doc! {"_id": 3}).await?;
            // A measurement update (the server takes only `multi` ones that filter
            // on and change the meta field), logged per measurement by `_id`.
            m.update_many(doc! {"k": "a"}, doc! {"$set": {"k": "b"}})
                .await?;
            Ok(())
        }
    });
    let sorted = |db: &str| {
        let c = client();
        let db = db.to_string();
        block_on(async move {
            c.database(&db)
                .collection::<RawDocumentBuf>("m")
                .find(doc! {})
                .sort(doc! {"_id": 1})
                .await?
                .map_ok(RawDocumentBuf::into_bytes)
                .try_collect::<Vec<_>>()
                .await
        })
        .expect("read measurements")
    };
    let want = sorted(&src);
    assert_eq!(want.len(), 2);
    assert!(
        entries.iter().any(|e| e.get_str("op").ok() == Some("u")),
        "the update is logged"
    );
    // Onto an empty target, and onto a snapshot that holds measurement 1 already.
    let empty = guard.add("oplog_tss1");
    replay_raw(&entries, remap(&src, &empty), false).expect("replay");
    assert_eq!(sorted(&empty), want);
    let fuzzy = guard.add("oplog_tss2");
    let c = client();
    let f = fuzzy.clone();
    block_on(async move {
        let d = c.database(&f);
        d.run_command(doc! {"create": "m", "timeseries": {"timeField": "t", "metaField": "k"}})
            .await?;
        d.collection::<Document>("m")
            .insert_one(doc! {"_id": 1, "t": t0, "k": "x", "v": 1})
            .await?;
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("seed");
    replay_raw(&entries, remap(&src, &fuzzy), false).expect("replay");
    assert_eq!(sorted(&fuzzy), want);
    // Twice: the same.
    replay_raw(&entries, remap(&src, &fuzzy), false).expect("replay");
    assert_eq!(sorted(&fuzzy), want);
}

#[test]
fn views_of_both_servers() {
    // Checklist 29: mongod's `system.views` documents; the test server's `create`
    // with `viewOn`/`viewPipeline`, whose `collMod` of a view logs no definition.
    let _ = server();
    let mut guard = DbGuard::new("oplog_views");
    let db = guard.name().to_string();
    let sv = format!("{db}.system.views");
    let entries = [
        op("c", &format!("{db}.$cmd"), doc! {"create": "c"}),
        op(
            "i",
            &sv,
            doc! {"_id": format!("{db}.v"), "viewOn": "c", "pipeline": [{"$match": {"a": 1}}]},
        ),
        doc! {"op": "u", "ns": &sv, "o": {"_id": format!("{db}.v"), "viewOn": "c", "pipeline": [{"$match": {"a": 2}}]}, "o2": {"_id": format!("{db}.v")}},
        op(
            "i",
            &sv,
            doc! {"_id": format!("{db}.w"), "viewOn": "c", "pipeline": []},
        ),
        op("d", &sv, doc! {"_id": format!("{db}.w")}),
    ];
    replay(&entries);
    let v = coll_info(&db, "v").expect("view v");
    assert_eq!(v.get_str("type").ok(), Some("view"));
    let o = v.get_document("options").expect("options");
    assert_eq!(o.get_str("viewOn").ok(), Some("c"));
    assert_eq!(
        o.get_array("pipeline").ok(),
        Some(&vec![Bson::Document(doc! {"$match": {"a": 2}})])
    );
    assert!(coll_info(&db, "w").is_none());

    let src = guard.add("oplog_vsrc");
    let entries = live(&src, |c| {
        let src = src.clone();
        async move {
            let d = c.database(&src);
            d.run_command(doc! {"create": "c"}).await?;
            d.run_command(doc! {"create": "lv", "viewOn": "c", "pipeline": [{"$match": {"a": 1}}]})
                .await?;
            d.run_command(
                doc! {"collMod": "lv", "viewOn": "c", "pipeline": [{"$match": {"a": 3}}]},
            )
            .await?;
            Ok(())
        }
    });
    let to = guard.add("oplog_vdst");
    let (counts, _) = replay_raw(&entries, remap(&src, &to), false).expect("replay");
    let lv = coll_info(&to, "lv").expect("view lv");
    let o = lv.get_document("options").expect("options");
    assert_eq!(o.get_str("viewOn").ok(), Some("c"));
    // The test server's collMod entry carries no definition: the view keeps the one
    // it was created with, and the entry is counted.
    assert_eq!(
        o.get_array("pipeline").ok(),
        Some(&vec![Bson::Document(doc! {"$match": {"a": 1}})])
    );
    assert_eq!(
        counts.skipped.get(
            "collMod: no options logged (SecantusDB logs index and view changes without their content)"
        ),
        Some(&1),
        "{counts:?}"
    );
}

#[test]
fn drop_database_drops_it_whole_or_only_what_is_selected() {
    // Checklist 30.
    let _ = server();
    let mut guard = DbGuard::new("oplog_dropdb");
    let entries = |db: &str| {
        let cmd = format!("{db}.$cmd");
        vec![
            op("c", &cmd, doc! {"create": "a"}),
            op("i", &format!("{db}.a"), doc! {"_id": 1}),
            op(
                "i",
                &format!("{db}.system.views"),
                doc! {"_id": format!("{db}.v"), "viewOn": "a", "pipeline": []},
            ),
            op("c", &cmd, doc! {"drop": "a"}),
            op("c", &cmd, doc! {"dropDatabase": 1}),
        ]
    };
    let db = guard.name().to_string();
    seed(&db, "b", &[doc! {"_id": 7}]);
    replay(&entries(&db));
    let c = client();
    let names = block_on(async move { c.list_database_names().await }).expect("databases");
    assert!(!names.contains(&db), "{db} is still there");

    // Selective: only the selected collection goes; the rest of the database stays.
    let db = guard.add("oplog_dropdb2");
    seed(&db, "b", &[doc! {"_id": 7}]);
    let only_a = || Selection {
        filter: oxidump::nsmatch::NsFilter::new(&[format!("{db}.a"), format!("{db}.v")], &[])
            .expect("pattern"),
        renamer: oxidump::nsmatch::Renamer::default(),
    };
    let e = replay_with(&entries(&db), only_a(), false).expect_err("refused");
    assert!(
        e.contains("dropDatabase under a namespace selection"),
        "{e}"
    );
    let db = guard.add("oplog_dropdb3");
    seed(&db, "b", &[doc! {"_id": 7}]);
    let only_a = || Selection {
        filter: oxidump::nsmatch::NsFilter::new(&[format!("{db}.a"), format!("{db}.v")], &[])
            .expect("pattern"),
        renamer: oxidump::nsmatch::Renamer::default(),
    };
    replay_with(&entries(&db), only_a(), true).expect("accepted");
    assert_eq!(collections(&db), vec!["b"]);
    assert_eq!(raw_docs(&db, "b"), docs_of(&[doc! {"_id": 7}]));
}

#[test]
fn a_remap_moves_crud_index_ddl_and_views_and_warns_about_pipelines() {
    // Checklist 31: `db1.c` to `db2.d`, the rest of db1 to db2.
    let _ = server();
    let mut guard = DbGuard::new("oplog_rmsrc");
    let d1 = guard.name().to_string();
    let d2 = guard.add("oplog_rmdst");
    let cmd = format!("{d1}.$cmd");
    let c = format!("{d1}.c");
    let entries = [
        op("c", &cmd, doc! {"create": "c"}),
        op("i", &c, doc! {"_id": 1, "n": 1}),
        op("i", &c, doc! {"_id": 2, "n": 2}),
        upd(&c, 1, doc! {"$v": 2, "diff": {"u": {"n": 5}}}),
        op("d", &c, doc! {"_id": 2}),
        op(
            "c",
            &cmd,
            doc! {"createIndexes": "c", "v": 2, "key": {"n": 1}, "name": "n_1"},
        ),
        op("c", &cmd, doc! {"create": "tmp"}),
        op("c", &cmd, doc! {"drop": "tmp"}),
        op(
            "i",
            &format!("{d1}.system.views"),
            doc! {"_id": format!("{d1}.v"), "viewOn": "c", "pipeline": [{"$match": {}}]},
        ),
        op(
            "c",
            &cmd,
            doc! {"create": "lv", "viewOn": "c", "viewPipeline": [{"$lookup": {"from": "other", "localField": "n", "foreignField": "n", "as": "o"}}]},
        ),
    ];
    let sel = Selection {
        filter: oxidump::nsmatch::NsFilter::default(),
        renamer: oxidump::nsmatch::Renamer::new(&[
            (format!("{d1}.*"), format!("{d2}.*")),
            (format!("{d1}.c"), format!("{d2}.d")),
        ])
        .expect("pattern"),
    };
    let (counts, catalog) = replay_raw(&stamp(&entries), sel, false).expect("replay");
    assert!(collections(&d1).is_empty(), "{:?}", collections(&d1));
    let mut names = collections(&d2);
    names.retain(|n| !n.starts_with("system."));
    assert_eq!(names, vec!["d", "lv", "v"]);
    assert_eq!(raw_docs(&d2, "d"), docs_of(&[doc! {"_id": 1, "n": 5}]));
    let names: Vec<&str> = catalog[&format!("{d2}.d")]
        .iter()
        .filter_map(|s| s.get_str("name").ok())
        .collect();
    assert_eq!(names, vec!["n_1"]);
    for v in ["v", "lv"] {
        let info = coll_info(&d2, v).expect("view");
        assert_eq!(
            info.get_document("options").unwrap().get_str("viewOn").ok(),
            Some("d"),
            "{info}"
        );
    }
    assert_eq!(counts.warnings.len(), 1, "{counts:?}");
    assert!(counts.warnings[0].contains("$lookup"), "{counts:?}");
}

#[test]
fn empty_timestamps_survive_inserts_and_replacements() {
    // Checklist 34: servers replace a top-level Timestamp(0, 0) on insert and
    // replacement unless told not to; replay keeps it, over an empty target and over
    // a snapshot that holds the document already.
    let _ = server();
    let mut guard = DbGuard::new("oplog_emptyts");
    let zero = Timestamp {
        time: 0,
        increment: 0,
    };
    let want = vec![
        doc! {"_id": 1, "t": zero, "n": 1},
        doc! {"_id": 2, "t": zero},
        doc! {"_id": 3, "nested": {"t": zero}},
    ];
    let entries = |db: &str| {
        let z = format!("{db}.z");
        vec![
            op("c", &format!("{db}.$cmd"), doc! {"create": "z"}),
            op("i", &z, doc! {"_id": 1, "t": zero, "n": 1}),
            op("i", &z, doc! {"_id": 2, "n": 1}),
            upd(&z, 2, doc! {"_id": 2, "t": zero}),
            op("i", &z, doc! {"_id": 3, "nested": {"t": zero}}),
        ]
    };
    let db = guard.name().to_string();
    replay(&entries(&db));
    assert_eq!(raw_docs(&db, "z"), docs_of(&want));
    let db = guard.add("oplog_emptyts2");
    seed(
        &db,
        "z",
        &[doc! {"_id": 1, "n": 0}, doc! {"_id": 2, "n": 0}],
    );
    replay(&entries(&db));
    assert_eq!(raw_docs(&db, "z"), docs_of(&want));
}

#[test]
fn special_ids_and_names_and_a_16_mib_document() {
    // Checklist 35.
    let _ = server();
    let guard = DbGuard::new("oplog_names");
    let db = guard.name().to_string();
    let s = format!("{db}.s");
    let bin = Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![1, 2, 3],
    });
    // 16 MiB with the entry's overhead on top.
    let pad = "x".repeat(16 * 1024 * 1024 - 200);
    let entries = [
        op("c", &format!("{db}.$cmd"), doc! {"create": "s"}),
        op("i", &s, doc! {"_id": {"a": 1, "b": 2}, "x": 1}),
        doc! {"op": "u", "ns": &s, "o": {"$v": 2, "diff": {"u": {"x": 2}}}, "o2": {"_id": {"a": 1, "b": 2}}},
        op(
            "i",
            &s,
            doc! {"_id": bin.clone(), "$dollar": 1, "dot.ted": 2, "o": {"1": "one", "2": "two"}},
        ),
        doc! {"op": "u", "ns": &s, "o": {"$v": 2, "diff": {"u": {"dot.ted": 3, "$dollar": 4}, "so": {"u": {"1": "uno"}}}}, "o2": {"_id": bin.clone()}},
        op("i", &s, doc! {"_id": "big", "pad": &pad}),
        doc! {"op": "u", "ns": &s, "o": {"$v": 2, "diff": {"i": {"after": 1}}}, "o2": {"_id": "big"}},
    ];
    let counts = replay(&entries);
    let c = client();
    let got: Vec<Document> = block_on(async move {
        c.database(&db)
            .collection::<Document>("s")
            .find(doc! {})
            .await?
            .try_collect()
            .await
    })
    .expect("read");
    let find = |id: &Bson| {
        got.iter()
            .find(|d| d.get("_id") == Some(id))
            .map(|d| raw(d).into_bytes())
            .unwrap_or_else(|| panic!("no document {id}"))
    };
    assert_eq!(
        find(&Bson::Document(doc! {"a": 1, "b": 2})),
        raw(&doc! {"_id": {"a": 1, "b": 2}, "x": 2}).into_bytes()
    );
    assert_eq!(
        find(&bin),
        raw(&doc! {"_id": bin.clone(), "$dollar": 4, "dot.ted": 3, "o": {"1": "uno", "2": "two"}})
            .into_bytes()
    );
    assert_eq!(
        find(&Bson::String("big".into())),
        raw(&doc! {"_id": "big", "pad": &pad, "after": 1}).into_bytes()
    );
    // Names with `.` or `$`, and the nested diff: read-modify-writes.
    assert!(counts.read_modify_writes >= 1, "{counts:?}");
}

#[test]
fn a_gap_between_inputs_or_a_transaction_begun_before_them_is_refused_before_writing() {
    // Checklist 37, through the command.
    let _ = server();
    let guard = DbGuard::new("oplog_gap");
    let db = guard.name().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, list: &[(u32, Document)]| {
        let p = dir.path().join(name);
        let mut bytes = Vec::new();
        for (i, e) in list {
            let mut e = e.clone();
            e.insert("ts", ts(*i));
            bytes.extend_from_slice(raw(&e).as_bytes());
        }
        std::fs::write(&p, bytes).expect("write");
        p
    };
    let cmd = format!("{db}.$cmd");
    let a = format!("{db}.a");
    let first = write(
        "1.bson",
        &[
            (1, op("c", &cmd, doc! {"create": "a"})),
            (2, op("i", &a, doc! {"_id": 1})),
        ],
    );
    let second = write("2.bson", &[(5, op("i", &a, doc! {"_id": 2}))]);
    let restore = |files: &[&Path]| {
        let mut c = oxidump();
        c.args(["restore", "--uri", &server().uri, "--quiet"]);
        for f in files {
            c.arg("--oplog-file").arg(f);
        }
        c
    };
    let (_, _, err) = run(&mut restore(&[&first, &second]), 2);
    assert!(err.contains("may be missing"), "{err}");
    assert!(collections(&db).is_empty());
    let chain = write(
        "3.bson",
        &[
            (1, op("c", &cmd, doc! {"create": "a"})),
            (
                3,
                doc! {"lsid": lsid(1), "txnNumber": 1_i64, "op": "c", "ns": "admin.$cmd", "prevOpTime": {"ts": ts(0), "t": 1_i64}, "o": {"applyOps": [
                    {"op": "i", "ns": &a, "o": {"_id": 1}},
                ]}},
            ),
        ],
    );
    let (_, _, err) = run(&mut restore(&[&chain]), 2);
    assert!(err.contains("are not in the oplog read"), "{err}");
    assert!(collections(&db).is_empty());
    // Its first entries alone are fine.
    run(&mut restore(&[&first]), 0);
    assert_eq!(raw_docs(&db, "a"), docs_of(&[doc! {"_id": 1}]));
}

#[test]
fn the_oplog_end_is_the_last_write_not_a_natural_order_read() {
    // Checklist 38, on a server of its own: no other test writes between the reads.
    let private = PrivateServer::start(&[]);
    let c = private.client();
    block_on(async move {
        let coll = c.database("end").collection::<Document>("a");
        for i in 0..5 {
            coll.insert_one(doc! {"_id": i}).await?;
        }
        let newest = oxidump::oplog::capture::newest(&c).await.expect("newest");
        // At or after the newest entry (SecantusDB reports a last write one
        // increment past it), and never a second later.
        let last = newest_ts(&c).await;
        assert!(newest >= last, "{newest:?} < {last:?}");
        assert!(newest.time <= last.time + 1, "{newest:?} vs {last:?}");
        // Why: the test server ignores `$natural`, so a `$natural: -1` read gives its
        // oldest entry.
        let natural = c
            .database("local")
            .collection::<Document>("oplog.rs")
            .find_one(doc! {})
            .sort(doc! {"$natural": -1})
            .await?
            .expect("an entry");
        assert!(natural.get_timestamp("ts").expect("ts") < newest);
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("oplog end");
}
