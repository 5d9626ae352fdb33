//! The backup repository: `dump --repo`, `oplog follow`, `ls`, `verify` and
//! `restore DIR --until` end to end, and every damage to the chain of segments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bson::{Document, RawDocumentBuf, Timestamp, doc};
use futures_util::TryStreamExt;
use mongodb::Client;
use oxidump::catalog::SourceInfo;
use oxidump::oplog::segment::{OpTime, SegmentWriter};
use oxidump::oxd::writer::WriterOptions;
use oxidump::repo::Repo;
use serde_json::Value;

use crate::common::private_server::PrivateServer;
use crate::common::{block_on, docs_digest, oxidump, run};

fn ts(time: u32, increment: u32) -> Timestamp {
    Timestamp { time, increment }
}

fn show(t: Timestamp) -> String {
    format!("{}:{}", t.time, t.increment)
}

/// A repository with `n` linked segments of 5 entries each, built offline.
fn offline_repo(dir: &Path, n: u32) -> Vec<PathBuf> {
    let repo = Repo::open_or_create(dir).expect("create the repository");
    let mut prev = None;
    let mut paths = Vec::new();
    for s in 0..n {
        let mut w = SegmentWriter::create(
            &repo.oplog_dir(),
            prev,
            &SourceInfo::default(),
            WriterOptions {
                frame_size: 64,
                ..WriterOptions::default()
            },
        )
        .expect("segment");
        for i in 1..=5u32 {
            let e = bson::rawdoc! {
                "ts": ts(100 + s, i), "t": 1_i64, "op": "i", "ns": "a.b",
                "o": {"_id": (s * 10 + i) as i32, "pad": "p".repeat(40)}
            };
            w.push(&e).expect("push");
        }
        let (path, meta) = w.seal().expect("seal").expect("entries");
        prev = Some(meta.last);
        paths.push(path);
    }
    paths
}

/// `verify --json DIR`: exit code and the codes of its findings.
fn verify_codes(dir: &Path) -> (i32, Vec<String>) {
    let out = oxidump()
        .args(["verify", "--json"])
        .arg(dir)
        .output()
        .expect("run verify");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let codes = v[0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().expect("code").to_string())
        .collect();
    (out.status.code().unwrap_or(-1), codes)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

#[test]
fn verify_detects_corrupted_truncated_missing_and_reordered_segments() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clean = tmp.path().join("clean");
    let segs = offline_repo(&clean, 4);
    let (code, codes) = verify_codes(&clean);
    assert_eq!((code, codes.len()), (0, 0), "a clean repository: {codes:?}");
    let variant = |name: &str| {
        let d = tmp.path().join(name);
        copy_dir(&clean, &d);
        let segs: Vec<PathBuf> = segs
            .iter()
            .map(|p| d.join("oplog").join(p.file_name().expect("name")))
            .collect();
        (d, segs)
    };

    // A flipped byte inside a frame's payload.
    let (d, s) = variant("corrupted");
    let mut b = std::fs::read(&s[1]).expect("read");
    let at = b.len() / 2;
    b[at] ^= 0x40;
    std::fs::write(&s[1], b).expect("write");
    let (code, codes) = verify_codes(&d);
    assert_eq!(code, 1, "{codes:?}");
    assert!(
        codes
            .iter()
            .any(|c| c.contains("crc") || c.contains("decode")),
        "{codes:?}"
    );

    // A segment cut short.
    let (d, s) = variant("truncated");
    let b = std::fs::read(&s[2]).expect("read");
    std::fs::write(&s[2], &b[..b.len() - 40]).expect("write");
    let (code, codes) = verify_codes(&d);
    assert_eq!(code, 1, "{codes:?}");
    assert!(
        codes.iter().any(|c| c == "truncated" || c == "incomplete"),
        "{codes:?}"
    );
    assert!(codes.iter().any(|c| c == "chain-missing"), "{codes:?}");

    // A segment deleted by hand.
    let (d, s) = variant("missing");
    std::fs::remove_file(&s[1]).expect("rm");
    let (code, codes) = verify_codes(&d);
    assert_eq!(
        (code, codes.clone()),
        (1, vec!["chain-missing".to_string()])
    );

    // Two segments exchanged under each other's names.
    let (d, s) = variant("reordered");
    let tmpname = s[1].with_extension("swap");
    std::fs::rename(&s[1], &tmpname).expect("mv");
    std::fs::rename(&s[2], &s[1]).expect("mv");
    std::fs::rename(&tmpname, &s[2]).expect("mv");
    let (code, codes) = verify_codes(&d);
    assert_eq!(code, 1, "{codes:?}");
    assert!(codes.iter().any(|c| c == "repo-name"), "{codes:?}");
    assert!(codes.iter().any(|c| c.starts_with("chain-")), "{codes:?}");

    // A segment of another chain placed among them: linked to an older entry.
    let (d, s) = variant("overlap");
    let mut w = SegmentWriter::create(
        &d.join("oplog"),
        Some(OpTime {
            ts: ts(100, 5),
            t: Some(1),
        }),
        &SourceInfo::default(),
        WriterOptions::default(),
    )
    .expect("segment");
    w.push(&bson::rawdoc! {"ts": ts(101, 9), "t": 1_i64, "op": "n", "ns": "", "o": {}})
        .expect("push");
    w.seal().expect("seal");
    let (code, codes) = verify_codes(&d);
    assert_eq!(code, 1, "{codes:?}");
    assert!(codes.iter().any(|c| c == "chain-order"), "{codes:?}");
    drop(s);
}

// ---------------------------------------------------------------------------------
// End to end on a test server
// ---------------------------------------------------------------------------------

async fn newest_ts(c: &Client) -> Timestamp {
    c.database("local")
        .collection::<Document>("oplog.rs")
        .find_one(doc! {})
        .sort(doc! {"ts": -1})
        .await
        .expect("read the oplog")
        .expect("an oplog entry")
        .get_timestamp("ts")
        .expect("ts")
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

#[derive(Debug, Clone)]
struct Moment {
    ts: Timestamp,
    digests: BTreeMap<String, (u64, String)>,
}

fn follow_once(uri: &str, repo: &Path, extra: &[&str], code: i32) -> String {
    let (_, _, stderr) = run(
        oxidump()
            .args(["oplog", "follow", "--uri", uri, "--repo"])
            .arg(repo)
            .args(["--once", "--segment-size", "4KB"])
            .args(extra),
        code,
    );
    stderr
}

/// Kills the follower when the test ends, also when it fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Killed {
    /// Asks it to stop (SIGTERM, as a service manager does) and waits: it seals its
    /// open segment and exits 0.
    fn stop(&mut self) {
        let pid = self.0.id().to_string();
        run(std::process::Command::new("kill").args(["-TERM", &pid]), 0);
        let status = self.0.wait().expect("wait for the follower");
        assert!(status.success(), "the follower stopped with {status}");
    }
}

/// A follower that runs until stopped, sealing a segment every second, its messages
/// in `log`.
fn spawn_follower(uri: &str, repo: &Path, log: &Path) -> Killed {
    oxidump()
        .args([
            "oplog",
            "follow",
            "--segment-span",
            "1s",
            "--uri",
            uri,
            "--repo",
        ])
        .arg(repo)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the follower's log"))
        .spawn()
        .map(Killed)
        .expect("start the follower")
}

/// `oplog follow --status --json`.
fn status_json(uri: &str, repo: &Path) -> Value {
    let (_, stdout, _) = run(
        oxidump()
            .args([
                "oplog", "follow", "--status", "--json", "--uri", uri, "--repo",
            ])
            .arg(repo),
        0,
    );
    serde_json::from_str(&stdout).expect("--status --json")
}

/// Polls `what` every 100 ms until it holds, failing after `secs` seconds with `why`.
fn wait_until(secs: u64, why: &str, mut what: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !what() {
        assert!(std::time::Instant::now() < deadline, "{why}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Every sealed segment of `repo`, checked, oldest first.
fn sealed_segments(repo: &Path) -> Vec<oxidump::oplog::segment::SegmentMeta> {
    let mut metas = Vec::new();
    for e in std::fs::read_dir(repo.join("oplog")).expect("oplog/") {
        let p = e.expect("entry").path();
        if p.file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with('.')
        {
            continue;
        }
        let (meta, index) = oxidump::oplog::segment::read_meta(&p).expect("meta");
        let problems = oxidump::oplog::segment::check_entries(&p, &meta, &index);
        assert!(problems.is_empty(), "{}: {problems:?}", p.display());
        metas.push(meta);
    }
    metas.sort_by_key(|m| m.first.ts);
    metas
}

async fn oplog_count(c: &Client, filter: Document) -> u64 {
    c.database("local")
        .collection::<Document>("oplog.rs")
        .count_documents(filter)
        .await
        .expect("count oplog entries")
}

fn ls_json(repo: &Path, code: i32) -> Value {
    let (_, stdout, _) = run(oxidump().args(["ls", "--json"]).arg(repo), code);
    serde_json::from_str(&stdout).expect("ls --json")
}

fn restore_to(repo: &Path, uri: &str, until: Timestamp, code: i32) -> (String, String) {
    let (_, out, err) = run(
        oxidump().arg("restore").arg(repo).args([
            "--uri",
            uri,
            "--drop",
            "-q",
            "--until",
            &show(until),
        ]),
        code,
    );
    (out, err)
}

/// `restore REPO --dry-run`: its standard output.
fn dry_run(repo: &Path, uri: &str, until: Timestamp, extra: &[&str]) -> String {
    let (_, out, _) = run(
        oxidump()
            .arg("restore")
            .arg(repo)
            .args([
                "--uri",
                uri,
                "--drop",
                "-q",
                "--dry-run",
                "--until",
                &show(until),
            ])
            .args(extra),
        0,
    );
    out
}

#[test]
fn restoring_a_repository_to_recorded_moments_reproduces_them() {
    let source = PrivateServer::start(&[]);
    let target = PrivateServer::start(&[]);
    let (suri, turi) = (source.uri(), target.uri());
    let c = source.client();
    let db = "wl";
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("repo");
    let log = tmp.path().join("follow.log");
    block_on(async {
        let seed = c.database("bulk").collection::<Document>("seed");
        for chunk in 0..4i64 {
            let docs: Vec<Document> = (chunk * 5000..(chunk + 1) * 5000)
                .map(|i| doc! {"_id": i, "pad": "x".repeat(500)})
                .collect();
            seed.insert_many(docs).await?;
        }
        c.database(db)
            .collection::<Document>("a")
            .insert_many((0..20i64).map(|i| doc! {"_id": -100 - i, "n": i}))
            .await?;
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("seed");
    let mut follower = spawn_follower(&suri, &repo, &log);

    // The only writer: one step at a time (inserts, updates of every shape, deletes,
    // DDL, transactions), each followed by a recorded moment. Renames and index drops,
    // which a dump refuses in its window, only while no snapshot is being taken.
    let moments = Arc::new(Mutex::new(Vec::<Moment>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let dumping = Arc::new(AtomicBool::new(false));
    let writer = {
        let (moments, stop, dumping, suri) =
            (moments.clone(), stop.clone(), dumping.clone(), suri.clone());
        std::thread::spawn(move || {
            block_on(async move {
                let c = Client::with_uri_str(&suri).await.expect("client");
                let mut i = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    let late = !dumping.load(Ordering::SeqCst);
                    crate::oplog::step(&c, db, i, late)
                        .await
                        .unwrap_or_else(|e| panic!("workload step {i}: {e}"));
                    let m = Moment {
                        ts: newest_ts(&c).await,
                        digests: digests(&c, db).await,
                    };
                    moments.lock().expect("lock").push(m);
                    i += 1;
                }
            })
        })
    };
    let steps = || moments.lock().expect("lock").len();
    let wait_steps = |n: usize| wait_until(120, "the workload stalls", || steps() >= n);
    // The workload runs for minutes (`OXIDUMP_TEST_WORKLOAD_SECS`, default 180); each
    // event below comes at its share of that time, and after a few more steps.
    let secs: f64 = std::env::var("OXIDUMP_TEST_WORKLOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(180.0);
    let started = std::time::Instant::now();
    let at = |share: f64, more: usize| {
        let due = started + std::time::Duration::from_secs_f64(secs * share);
        let now = std::time::Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        wait_steps(steps() + more);
    };
    let snapshot = || {
        dumping.store(true, Ordering::SeqCst);
        // The step under way when the flag was set may be a rename: let it finish.
        wait_steps(steps() + 1);
        run(
            oxidump()
                .args(["dump", "--uri", &suri, "-q", "--repo"])
                .arg(&repo),
            0,
        );
        dumping.store(false, Ordering::SeqCst);
    };
    at(0.15, 14);
    snapshot();
    // The follower is killed in the middle of the run, and started again later.
    at(0.4, 24);
    follower.0.kill().expect("kill the follower");
    follower.0.wait().expect("wait");
    at(0.5, 12);
    let mut follower = spawn_follower(&suri, &repo, &log);
    at(0.65, 12);
    snapshot();
    at(1.0, 24);
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("the workload panicked");
    follower.stop();
    follow_once(&suri, &repo, &[], 0);

    let l = ls_json(&repo, 0);
    let snaps = l["snapshots"].as_array().expect("snapshots");
    assert_eq!(snaps.len(), 2, "{l}");
    assert!(l["gaps"].as_array().expect("gaps").is_empty(), "{l}");
    let windows = l["windows"].as_array().expect("windows");
    let parse = |v: &Value| oxidump::repo::parse_ts(v.as_str().expect("ts")).expect("S:I");
    let e1 = parse(&windows[0]["from"]);
    let e2 = parse(&windows[1]["from"]);
    let end = parse(&windows[1]["to"]);
    assert_eq!(
        parse(&windows[0]["to"]),
        end,
        "both windows reach the newest entry"
    );
    let (code, codes) = verify_codes(&repo);
    assert_eq!((code, codes.len()), (0, 0), "{codes:?}");
    let metas = sealed_segments(&repo);
    let archived: u64 = metas.iter().map(|m| m.count).sum();
    let first = metas.first().expect("segments").first.ts;
    let on_server = block_on(oplog_count(&c, doc! {"ts": {"$gte": first}}));
    assert_eq!(
        archived, on_server,
        "every entry archived once, across the kill"
    );

    let moments = moments.lock().expect("lock").clone();
    let before: Vec<&Moment> = moments.iter().filter(|m| m.ts < e1).collect();
    let between: Vec<&Moment> = moments.iter().filter(|m| m.ts >= e1 && m.ts < e2).collect();
    let after: Vec<&Moment> = moments
        .iter()
        .filter(|m| m.ts >= e2 && m.ts <= end)
        .collect();
    assert!(
        !before.is_empty() && between.len() >= 3 && after.len() >= 3,
        "moments on each side of the snapshots: {} {} {}",
        before.len(),
        between.len(),
        after.len()
    );

    // The plan, printed without writing: base, segments, entries to replay.
    let (name1, name2) = (
        snaps[0]["name"].as_str().expect("name"),
        snaps[1]["name"].as_str().expect("name"),
    );
    let replayed = |from: Timestamp, to: Timestamp| {
        block_on(oplog_count(&c, doc! {"ts": {"$gt": from, "$lte": to}}))
    };
    let mid = between[between.len() / 2].ts;
    let plan = dry_run(&repo, &turi, mid, &[]);
    assert!(plan.contains(&format!("base snapshot {name1} ")), "{plan}");
    assert!(
        plan.contains(&format!(
            "archived entries to replay after the snapshot: {} ",
            replayed(e1, mid)
        )),
        "{plan}"
    );
    assert!(plan.contains("oplog segments: "), "{plan}");
    let late = after[after.len() / 2].ts;
    let plan = dry_run(&repo, &turi, late, &[]);
    assert!(plan.contains(&format!("base snapshot {name2} ")), "{plan}");
    let forced = dry_run(&repo, &turi, late, &["--snapshot", name1]);
    assert!(
        forced.contains(&format!("base snapshot {name1} ")),
        "{forced}"
    );
    assert!(
        forced.contains(&format!(
            "archived entries to replay after the snapshot: {} ",
            replayed(e1, late)
        )),
        "{forced}"
    );
    let written = block_on(async {
        let t = Client::with_uri_str(&turi).await.expect("client");
        t.list_database_names().await.expect("databases")
    });
    assert!(
        !written.iter().any(|d| d == db),
        "a dry run writes nothing: {written:?}"
    );

    let picks = [
        between[0],
        between[between.len() / 3],
        between[2 * between.len() / 3],
        between[between.len() - 1],
        after[0],
        after[after.len() / 3],
        after[2 * after.len() / 3],
        after[after.len() - 1],
    ];
    // Each restore goes to an empty database: --drop replaces only the collections
    // restored, and a collection an earlier moment had would be left over.
    let clear = || {
        block_on(async {
            let t = Client::with_uri_str(&turi).await.expect("client");
            t.database(db)
                .drop()
                .await
                .expect("drop the target database");
        })
    };
    for m in picks {
        clear();
        let (_, err) = restore_to(&repo, &turi, m.ts, 0);
        let got = block_on(async {
            let c = Client::with_uri_str(&turi).await.expect("client");
            digests(&c, db).await
        });
        assert_eq!(got, m.digests, "state at {} ({err})", show(m.ts));
    }
    // The older snapshot, forced, reaches a moment after the newer one too.
    let m = after[after.len() / 2];
    clear();
    run(
        oxidump().arg("restore").arg(&repo).args([
            "--uri",
            &turi,
            "--drop",
            "-q",
            "--snapshot",
            name1,
            "--until",
            &show(m.ts),
        ]),
        0,
    );
    let got = block_on(async {
        let c = Client::with_uri_str(&turi).await.expect("client");
        digests(&c, db).await
    });
    assert_eq!(got, m.digests, "state at {} from {name1}", show(m.ts));
    // Before the oldest consistent point: refused, nothing written.
    let (_, err) = restore_to(&repo, &turi, before[0].ts, 2);
    assert!(err.contains("before the consistent point"), "{err}");
    assert!(err.contains("reachable"), "{err}");
    // After the newest archived entry: refused.
    let late = Timestamp {
        time: end.time + 100,
        increment: 1,
    };
    let (_, err) = restore_to(&repo, &turi, late, 2);
    assert!(
        err.contains("after the newest archived oplog entry"),
        "{err}"
    );
}

#[test]
fn a_rolled_over_oplog_is_a_gap_shown_by_ls_and_refused_by_restore() {
    let source = PrivateServer::start(&["--oplog-max-entries", "40"]);
    let target = PrivateServer::start(&[]);
    let (suri, turi) = (source.uri(), target.uri());
    let c = source.client();
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("repo");
    let coll = c.database("g").collection::<Document>("c");
    let insert = |from: i64, n: i64| {
        block_on(async {
            for i in from..from + n {
                coll.insert_one(doc! {"_id": i}).await?;
            }
            Ok::<_, mongodb::error::Error>(())
        })
        .expect("insert");
    };
    insert(0, 10);
    run(
        oxidump()
            .args(["dump", "--uri", &suri, "-q", "--repo"])
            .arg(&repo),
        0,
    );
    insert(10, 10);
    follow_once(&suri, &repo, &[], 0);
    let archived_end = block_on(newest_ts(&c));
    // The follower is stopped while far more entries than the oplog keeps are written.
    // The server prunes its oplog from time to time: write until it has.
    let oldest = || {
        block_on(async {
            c.database("local")
                .collection::<Document>("oplog.rs")
                .find_one(doc! {})
                .sort(doc! {"ts": 1})
                .await
                .expect("oldest")
                .expect("an entry")
                .get_timestamp("ts")
                .expect("ts")
        })
    };
    let mut next = 20;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while oldest() <= archived_end {
        assert!(
            std::time::Instant::now() < deadline,
            "the oplog never rolled over"
        );
        insert(next, 100);
        next += 100;
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let inside = oldest();
    assert!(inside > archived_end, "the oplog did not roll over");
    let err = follow_once(&suri, &repo, &[], 1);
    assert!(err.contains("GAP"), "{err}");
    assert!(err.contains("--continue-after-gap"), "{err}");
    let gaps: Vec<_> = std::fs::read_dir(repo.join("gaps"))
        .expect("gaps/")
        .collect();
    assert_eq!(gaps.len(), 1);
    follow_once(&suri, &repo, &["--continue-after-gap"], 0);
    insert(next, 5);
    follow_once(&suri, &repo, &[], 0);

    let l = ls_json(&repo, 0);
    let g = l["gaps"].as_array().expect("gaps");
    assert_eq!(g.len(), 1, "{l}");
    assert_eq!(g[0]["kind"], "recorded-gap");
    assert_eq!(g[0]["after"], show(archived_end));
    let (_, text, _) = run(oxidump().arg("ls").arg(&repo), 0);
    assert!(text.contains("GAP (gap) after"), "{text}");
    // verify: the recorded gap is a warning, not damage.
    let (code, codes) = verify_codes(&repo);
    assert_eq!((code, codes.clone()), (0, vec!["gap".to_string()]));

    // The last archived moment before the gap is reachable.
    restore_to(&repo, &turi, archived_end, 0);
    // A moment inside the gap is refused before anything is written.
    let mid = Timestamp {
        time: archived_end.time,
        increment: archived_end.increment + 1,
    };
    assert!(mid < inside);
    let (_, err) = restore_to(&repo, &turi, mid, 2);
    assert!(err.contains("gap"), "{err}");
    assert!(err.contains("reachable"), "{err}");
    let n = block_on(async {
        Client::with_uri_str(&turi)
            .await
            .expect("client")
            .database("g")
            .collection::<Document>("c")
            .count_documents(doc! {})
            .await
            .expect("count")
    });
    assert_eq!(n, 20, "the refused restore left the earlier one in place");
}

#[test]
fn a_follower_killed_and_restarted_loses_nothing() {
    let source = PrivateServer::start(&[]);
    let suri = source.uri();
    let c = source.client();
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("repo");
    let coll = c.database("k").collection::<Document>("c");
    let insert = |from: i64, n: i64| {
        block_on(async {
            for i in from..from + n {
                coll.insert_one(doc! {"_id": i, "pad": "y".repeat(200)})
                    .await?;
            }
            Ok::<_, mongodb::error::Error>(())
        })
        .expect("insert");
    };
    let segments = || {
        std::fs::read_dir(repo.join("oplog"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    let mut child = oxidump()
        .args([
            "oplog",
            "follow",
            "-q",
            "--segment-span",
            "1s",
            "--uri",
            &suri,
            "--repo",
        ])
        .arg(&repo)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Killed)
        .expect("start the follower");
    insert(0, 50);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut next = 1000;
    while segments() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower sealed nothing"
        );
        insert(next, 5);
        next += 5;
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // Killed in the middle of a segment: its open segment is lost, nothing else.
    insert(5000, 20);
    child.0.kill().expect("kill");
    child.0.wait().expect("wait");
    insert(6000, 20);
    follow_once(&suri, &repo, &[], 0);
    let hidden = std::fs::read_dir(repo.join("oplog"))
        .expect("oplog/")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with('.'))
        })
        .count();
    assert_eq!(hidden, 0, "the killed follower's open segment is removed");
    let (code, codes) = verify_codes(&repo);
    assert_eq!((code, codes.len()), (0, 0), "{codes:?}");
    let l = ls_json(&repo, 0);
    assert!(l["gaps"].as_array().expect("gaps").is_empty(), "{l}");
    // Every insert of the source is archived exactly once, in one unbroken chain.
    let ids = sealed_segments(&repo);
    for w in ids.windows(2) {
        assert_eq!(w[1].prev, Some(w[0].last), "linked segments");
    }
    let archived: u64 = ids.iter().map(|m| m.count).sum();
    let on_server = block_on(async {
        c.database("local")
            .collection::<Document>("oplog.rs")
            .count_documents(doc! {})
            .await
            .expect("count")
    });
    assert_eq!(archived, on_server, "every entry archived once");
}

#[test]
fn a_follower_survives_a_server_restart_and_reports_it() {
    let mut source = PrivateServer::start(&[]);
    // The status command gives up on a stopped server quickly.
    let suri = source.uri();
    let status_uri = format!("{suri}&serverSelectionTimeoutMS=1000");
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("repo");
    let log = tmp.path().join("follow.log");
    let insert = |from: i64, n: i64| {
        block_on(async {
            let c = Client::with_uri_str(&suri).await?;
            let coll = c.database("r").collection::<Document>("c");
            for i in from..from + n {
                coll.insert_one(doc! {"_id": i, "pad": "z".repeat(100)})
                    .await?;
            }
            Ok::<_, mongodb::error::Error>(())
        })
        .expect("insert");
    };
    insert(0, 10);
    follow_once(&suri, &repo, &[], 0);
    let st = status_json(&status_uri, &repo);
    assert_eq!(st["state"], "stopped", "{st}");
    assert_eq!(st["lag_entries"], 0, "{st}");
    insert(10, 30);
    let st = status_json(&status_uri, &repo);
    let sealed =
        oxidump::repo::parse_ts(st["last_sealed"].as_str().expect("last_sealed")).expect("S:I");
    let behind = block_on(async {
        let c = Client::with_uri_str(&suri).await.expect("client");
        oplog_count(&c, doc! {"ts": {"$gt": sealed}}).await
    });
    assert_eq!(st["lag_entries"], behind, "{st}");
    assert_eq!(behind, 30, "one oplog entry per insert");
    assert!(st["lag_seconds"].as_u64().is_some(), "{st}");

    let mut follower = spawn_follower(&suri, &repo, &log);
    let pid = follower.0.id();
    let caught_up = |st: &Value| st["state"] == "following" && st["lag_entries"] == 0;
    wait_until(60, "the follower never caught up", || {
        caught_up(&status_json(&status_uri, &repo))
    });
    assert_eq!(status_json(&status_uri, &repo)["follower"]["pid"], pid);

    // The server goes away: the follower says it is reconnecting.
    source.kill();
    wait_until(60, "the follower never reported the lost server", || {
        status_json(&status_uri, &repo)["state"] == "reconnecting"
    });
    let st = status_json(&status_uri, &repo);
    assert!(st["server_error"].is_string(), "{st}");
    // It comes back on the same address, with what it held; writes go on.
    source.restart_on_same_port();
    insert(40, 30);
    wait_until(
        120,
        "the follower never caught up after the restart",
        || caught_up(&status_json(&status_uri, &repo)),
    );
    follower.stop();
    let st = status_json(&status_uri, &repo);
    assert_eq!(st["state"], "stopped", "{st}");
    assert!(st["follower"]["reconnects"].as_u64() >= Some(1), "{st}");
    let text = std::fs::read_to_string(&log).expect("the follower's log");
    assert!(text.contains("connection lost"), "{text}");
    assert!(text.contains("connected again"), "{text}");

    // One unbroken chain holding every entry of the server once.
    let (code, codes) = verify_codes(&repo);
    assert_eq!((code, codes.len()), (0, 0), "{codes:?}");
    let metas = sealed_segments(&repo);
    for w in metas.windows(2) {
        assert_eq!(w[1].prev, Some(w[0].last), "linked segments");
    }
    let archived: u64 = metas.iter().map(|m| m.count).sum();
    let on_server = block_on(async {
        let c = Client::with_uri_str(&suri).await.expect("client");
        oplog_count(&c, doc! {}).await
    });
    assert_eq!(archived, on_server, "every entry archived once");
}

#[test]
fn a_rollback_of_archived_entries_is_recorded_shown_and_never_crossed() {
    let mut set = PrivateServer::start(&[]);
    let target = PrivateServer::start(&[]);
    let turi = target.uri();
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("repo");
    let insert = |uri: &str, from: i64, n: i64| {
        block_on(async {
            let c = Client::with_uri_str(uri).await?;
            let coll = c.database("rb").collection::<Document>("c");
            for i in from..from + n {
                coll.insert_one(doc! {"_id": i}).await?;
            }
            Ok::<_, mongodb::error::Error>(())
        })
        .expect("insert");
    };
    let state = |uri: &str| {
        block_on(async {
            let c = Client::with_uri_str(uri).await.expect("client");
            (newest_ts(&c).await, digests(&c, "rb").await)
        })
    };
    insert(&set.uri(), 0, 10);
    run(
        oxidump()
            .args(["dump", "--uri", &set.uri(), "-q", "--repo"])
            .arg(&repo),
        0,
    );
    insert(&set.uri(), 10, 5);
    follow_once(&set.uri(), &repo, &[], 0);
    let (shared_end, shared_state) = state(&set.uri());
    // The primary goes on alone and its writes are archived; the set then carries on
    // from what the other member held (the history up to `shared_end`) and loses them.
    let rest = set.fork();
    insert(&set.uri(), 100, 10);
    follow_once(&set.uri(), &repo, &[], 0);
    let (lost_end, _) = state(&set.uri());
    drop(set);
    let set = rest;
    let suri = set.uri();
    wait_until(10, "the clock never passed the lost entries", || {
        bson::DateTime::now().timestamp_millis() / 1000 > i64::from(lost_end.time)
    });
    insert(&suri, 200, 5);

    let err = follow_once(&suri, &repo, &[], 1);
    assert!(err.contains("ROLLBACK"), "{err}");
    assert!(err.contains("--continue-after-rollback"), "{err}");
    let records: Vec<_> = std::fs::read_dir(repo.join("rollbacks"))
        .expect("rollbacks/")
        .collect();
    assert_eq!(records.len(), 1);
    let l = ls_json(&repo, 0);
    let rb = &l["rollbacks"][0];
    assert_eq!(rb["archived"]["ts"], show(lost_end), "{l}");
    let common =
        oxidump::repo::parse_ts(rb["common"]["ts"].as_str().expect("common")).expect("S:I");
    assert!(
        common >= shared_end && common < lost_end,
        "the common point {} is the newest shared entry {} (or a later one both wrote alike)",
        show(common),
        show(shared_end)
    );
    assert!(rb["lost"].as_u64() >= Some(10), "{l}");
    assert_eq!(
        l["windows"][0]["to"],
        show(common),
        "the window stops at the common point: {l}"
    );
    let (_, text, _) = run(oxidump().arg("ls").arg(&repo), 0);
    assert!(text.contains("ROLLBACK after"), "{text}");
    let (code, codes) = verify_codes(&repo);
    assert_eq!((code, codes.clone()), (0, vec!["rollback".to_string()]));
    // Running again without the flag fails again, and records nothing new.
    follow_once(&suri, &repo, &[], 1);
    assert_eq!(
        std::fs::read_dir(repo.join("rollbacks"))
            .expect("rollbacks/")
            .count(),
        1
    );

    // Up to the common point, restores reproduce the state; after it, they refuse.
    restore_to(&repo, &turi, common, 0);
    let got = block_on(async {
        let c = Client::with_uri_str(&turi).await.expect("client");
        digests(&c, "rb").await
    });
    assert_eq!(got, shared_state, "state at the common point");
    let (_, err) = restore_to(&repo, &turi, lost_end, 2);
    assert!(err.contains("rolled back"), "{err}");
    assert!(err.contains("reachable"), "{err}");

    // Told to go on, it archives the set's new history in a new chain.
    follow_once(&suri, &repo, &["--continue-after-rollback"], 0);
    insert(&suri, 205, 5);
    follow_once(&suri, &repo, &[], 0);
    run(
        oxidump()
            .args(["dump", "--uri", &suri, "-q", "--repo"])
            .arg(&repo),
        0,
    );
    insert(&suri, 210, 5);
    follow_once(&suri, &repo, &[], 0);
    let l = ls_json(&repo, 0);
    let g = l["gaps"].as_array().expect("gaps");
    assert_eq!(g.len(), 1, "{l}");
    assert_eq!(g[0]["kind"], "rollback");
    assert_eq!(g[0]["after"], show(common));
    let (code, codes) = verify_codes(&repo);
    assert_eq!((code, codes.clone()), (0, vec!["rollback".to_string()]));
    let (now, now_state) = state(&suri);
    restore_to(&repo, &turi, now, 0);
    let got = block_on(async {
        let c = Client::with_uri_str(&turi).await.expect("client");
        digests(&c, "rb").await
    });
    assert_eq!(got, now_state, "state of the new history");
    assert_eq!(
        got["c"].0, 30,
        "the shared 15 documents and the new history's 15"
    );
}
