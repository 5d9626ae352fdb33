//! `oxidump test-restore` and `oxidump diff` against the test server: clean drills from
//! every format and from standard input, differences named by `_id`, index and option
//! differences, a damaged backup, an interrupted drill, and databases that must not be
//! touched.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use serde_json::Value;

use crate::common::private_server::PrivateServer;
use crate::common::{
    DbGuard, block_on, client, collection_digest, load_edge_corpus, oxidump, run, server,
};

fn dump(db: &str, out: &Path, args: &[&str]) {
    let mut cmd = oxidump();
    cmd.arg("dump")
        .args(["--uri", &server().uri, "--db", db, "-q", "--out"])
        .arg(out)
        .args(args);
    run(&mut cmd, 0);
}

fn drill_cmd(verb: &str, backup: &Path, args: &[&str]) -> Command {
    let mut cmd = oxidump();
    cmd.arg(verb)
        .arg(backup)
        .args(["--uri", &server().uri, "-q", "--json"])
        .args(args);
    cmd
}

fn databases() -> Vec<String> {
    let c = client();
    block_on(async { c.list_database_names().await }).expect("listDatabases")
}

fn command(db: &str, cmd: Document) {
    let c = client();
    block_on(async { c.database(db).run_command(cmd).await })
        .unwrap_or_else(|e| panic!("{db}: {e}"));
}

/// The report of a drill or diff, parsed from its `--json` output.
fn report(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

fn ns<'a>(report: &'a Value, source: &str) -> &'a Value {
    report["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .find(|n| n["source"] == source)
        .unwrap_or_else(|| panic!("{source} not in the report:\n{report:#}"))
}

/// A drill of the edge corpus passes from OXD, a mongodump archive (plain and
/// gzipped), a mongodump directory (plain and gzipped) and standard input; it compares
/// every namespace (the time-series collection by its measurements), drops its scratch
/// databases, and leaves the source and every other database exactly as they were.
#[test]
fn a_clean_drill_passes_from_every_format_and_touches_nothing_else() {
    let mut guard = DbGuard::new("drill_src");
    let src = guard.name().to_string();
    let manifest = load_edge_corpus(&src);
    let bystander = guard.add("drill_by");
    command(
        &bystander,
        doc! {"insert": "c", "documents": [{"_id": 1, "v": "untouched"}]},
    );
    let bystander_before = collection_digest(&bystander, "c");
    let tmp = tempfile::tempdir().expect("tempdir");
    let forms: [(&str, &[&str]); 5] = [
        ("edge.oxd", &[]),
        (
            "edge.archive.gz",
            &["--format", "mongodump-archive", "--gzip"],
        ),
        ("edge.archive", &["--format", "mongodump-archive"]),
        ("edge-dir", &["--format", "mongodump-dir"]),
        ("edge-dir-gz", &["--format", "mongodump-dir", "--gzip"]),
    ];
    let leftovers = |prefix: &str| -> Vec<String> {
        databases()
            .into_iter()
            .filter(|d| d.starts_with(prefix))
            .collect()
    };
    for (i, (file, args)) in forms.iter().enumerate() {
        let path = tmp.path().join(file);
        dump(&src, &path, args);
        let prefix = format!("dr{i}_{}_", std::process::id() % 10_000);
        guard.track(format!("{prefix}{src}"));
        let (_, stdout, _) = run(
            &mut drill_cmd("test-restore", &path, &["--prefix", &prefix]),
            0,
        );
        let r = report(&stdout);
        assert_eq!(r["passed"], true, "{file}: {r:#}");
        assert_eq!(r["dropped"], true, "{file}");
        for (name, entry) in manifest.as_object().expect("manifest") {
            if name.contains(".system.") {
                continue; // buckets and view definitions, compared through their namespaces
            }
            let n = ns(&r, name);
            assert_eq!(n["status"], "match", "{file}: {name}: {n:#}");
            if let Some(count) = entry.get("count") {
                assert_eq!(&n["backup_documents"], count, "{file}: {name}");
                assert_eq!(&n["server_documents"], count, "{file}: {name}");
            }
        }
        assert_eq!(
            ns(&r, &format!("{src}.series"))["backup_documents"],
            100,
            "measurements"
        );
        assert!(
            leftovers(&prefix).is_empty(),
            "{file}: left {:?}",
            leftovers(&prefix)
        );
    }
    // From standard input.
    let oxd = std::fs::read(tmp.path().join("edge.oxd")).expect("read");
    let prefix = format!("drin_{}_", std::process::id() % 10_000);
    guard.track(format!("{prefix}{src}"));
    let mut child = drill_cmd("test-restore", Path::new("-"), &["--prefix", &prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&oxd)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        report(&String::from_utf8_lossy(&out.stdout))["passed"],
        true
    );
    assert!(
        leftovers(&prefix).is_empty(),
        "left {:?}",
        leftovers(&prefix)
    );
    assert_eq!(collection_digest(&bystander, "c"), bystander_before);
    // The source is unchanged.
    for (name, entry) in manifest.as_object().expect("manifest") {
        if let Some(count) = entry.get("count") {
            let coll = &name[src.len() + 1..];
            let (n, sha) = collection_digest(&src, coll);
            assert_eq!(
                (n, sha.as_str()),
                (count.as_u64().unwrap(), entry["sha256"].as_str().unwrap()),
                "{name}"
            );
        }
    }
}

/// `diff` names exactly the documents changed, deleted and added since the backup,
/// and index and option changes; it writes nothing.
#[test]
fn diff_names_changed_deleted_and_added_ids_and_index_and_option_changes() {
    let guard = DbGuard::new("diff_src");
    let db = guard.name();
    let docs: Vec<Document> = (0..2000)
        .map(|i| doc! {"_id": i, "v": i, "s": format!("doc {i}")})
        .collect();
    let c = client().database(db).collection::<Document>("c");
    block_on(async { c.insert_many(docs).await }).expect("insert");
    command(
        db,
        doc! {"createIndexes": "c", "indexes": [{"key": {"v": 1}, "name": "v_1"}]},
    );
    command(db, doc! {"create": "other"});
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("b.oxd");
    dump(db, &backup, &[]);

    // Unchanged: no difference.
    let (_, stdout, _) = run(&mut drill_cmd("diff", &backup, &[]), 0);
    assert_eq!(report(&stdout)["passed"], true);

    let c = client().database(db).collection::<Document>("c");
    block_on(async {
        c.update_one(doc! {"_id": 17}, doc! {"$set": {"v": -1}})
            .await?;
        c.update_one(doc! {"_id": 1500}, doc! {"$set": {"s": "changed"}})
            .await?;
        c.delete_one(doc! {"_id": 42}).await?;
        c.insert_one(doc! {"_id": "new", "v": 0}).await?;
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("changes");
    command(db, doc! {"dropIndexes": "c", "index": "v_1"});
    command(
        db,
        doc! {"createIndexes": "c", "indexes": [{"key": {"s": 1}, "name": "s_1"}]},
    );
    command(
        db,
        doc! {"collMod": "other", "validator": {"x": {"$exists": true}}},
    );
    let before = collection_digest(db, "c");

    let (_, stdout, _) = run(&mut drill_cmd("diff", &backup, &[]), 1);
    let r = report(&stdout);
    assert_eq!(r["passed"], false);
    let n = ns(&r, &format!("{db}.c"));
    assert_eq!(n["status"], "differs");
    assert_eq!(n["backup_documents"], 2000);
    assert_eq!(n["server_documents"], 2000);
    let ids = &n["ids"];
    assert_eq!(ids["missing"], serde_json::json!(["42"]), "{n:#}");
    assert_eq!(ids["extra"], serde_json::json!(["\"new\""]), "{n:#}");
    let mut different: Vec<String> = ids["different"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    different.sort();
    assert_eq!(different, ["1500", "17"], "{n:#}");
    let indexes: Vec<&str> = n["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(indexes.contains(&"index v_1 is missing"), "{indexes:?}");
    assert!(
        indexes.contains(&"index s_1 is not in the backup"),
        "{indexes:?}"
    );
    let other = ns(&r, &format!("{db}.other"));
    assert_eq!(other["status"], "differs");
    assert!(
        other["options"][0].as_str().unwrap().contains("validator"),
        "{other:#}"
    );
    // Text output says the same for people.
    let mut text = oxidump();
    text.arg("diff")
        .arg(&backup)
        .args(["--uri", &server().uri, "-q"]);
    let (_, stdout, _) = run(&mut text, 1);
    assert!(stdout.contains("1 missing _id: 42"), "{stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    // Read-only.
    assert_eq!(collection_digest(db, "c"), before);
}

/// A damaged frame fails the drill, naming the frame, and still drops the scratch
/// databases.
#[test]
fn a_damaged_backup_fails_the_drill_with_the_frame_named() {
    let guard = DbGuard::new("drill_bad");
    let db = guard.name();
    let docs: Vec<Document> = (0..20_000)
        .map(|i| doc! {"_id": i, "pad": "x".repeat(200)})
        .collect();
    let c = client().database(db).collection::<Document>("c");
    block_on(async { c.insert_many(docs).await }).expect("insert");
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("b.oxd");
    dump(db, &backup, &[]);
    let mut bytes = std::fs::read(&backup).expect("read");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&backup, &bytes).expect("write");
    let prefix = format!("drbad{}_", std::process::id() % 10_000);
    let mut cmd = drill_cmd("test-restore", &backup, &["--prefix", &prefix]);
    let out = cmd.output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let r = report(&stdout);
    assert_eq!(r["passed"], false);
    let n = ns(&r, &format!("{db}.c"));
    assert_eq!(n["status"], "failed", "{n:#}");
    assert!(
        n["message"].as_str().unwrap_or("").contains("frame"),
        "{n:#}"
    );
    assert!(!databases().iter().any(|d| d.starts_with(&prefix)));
}

/// Ctrl-C in the middle of a drill stops it, exits 3 and leaves no scratch database.
#[test]
fn an_interrupted_drill_leaves_no_scratch_database() {
    let guard = DbGuard::new("drill_int");
    let db = guard.name();
    let big = "y".repeat(2000);
    let c = client().database(db).collection::<Document>("c");
    for chunk in 0..20 {
        let docs: Vec<Document> = (0..5000)
            .map(|i| doc! {"_id": chunk * 5000 + i, "pad": &big})
            .collect();
        block_on(async { c.insert_many(docs).await }).expect("insert");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("b.oxd");
    dump(db, &backup, &[]);
    let prefix = format!("drint{}_", std::process::id() % 10_000);
    let scratch = format!("{prefix}{db}");
    let mut child = drill_cmd("test-restore", &backup, &["--prefix", &prefix, "-j", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the restore has started writing, then interrupt.
    let started = Instant::now();
    while !databases().contains(&scratch) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the drill never started restoring"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the drill ended before it was interrupted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !databases().contains(&scratch),
        "scratch database {scratch} left behind"
    );
}

/// The snapshots of a backup repository, oldest first (names as `oxidump ls` shows them).
fn snapshot_names(repo: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo.join("snapshots"))
        .expect("snapshots directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".oxd").map(str::to_string))
        .collect();
    names.sort();
    names
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A backup repository is drilled through its newest snapshot, or the one `--snapshot`
/// names; `diff` against an older snapshot names what changed since it; a snapshot the
/// repository does not hold, or `--snapshot` with a file, is refused before anything
/// is written.
#[test]
fn a_repository_is_drilled_through_its_newest_or_named_snapshot() {
    // A repository holds full dumps: the source is a server of its own.
    let source = PrivateServer::start(&[]);
    let db = "shop";
    let c = source.client().database(db).collection::<Document>("c");
    let docs: Vec<Document> = (0..100).map(|i| doc! {"_id": i, "v": i}).collect();
    block_on(async { c.insert_many(docs).await }).expect("insert");
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let snapshot = || {
        run(
            oxidump()
                .args(["dump", "--uri", &source.uri(), "-q", "--repo"])
                .arg(&repo),
            0,
        );
        unix_seconds()
    };
    let first_done = snapshot();
    block_on(async {
        c.update_one(doc! {"_id": 7}, doc! {"$set": {"v": -7}})
            .await?;
        c.insert_one(doc! {"_id": 100, "v": 100}).await?;
        Ok::<_, mongodb::error::Error>(())
    })
    .expect("changes");
    // Snapshots are named by the second their dump starts in.
    while unix_seconds() == first_done {
        std::thread::sleep(Duration::from_millis(20));
    }
    snapshot();
    let names = snapshot_names(&repo);
    assert_eq!(names.len(), 2, "{names:?}");

    // Drilled on the shared server: the newest snapshot.
    let mut guard = DbGuard::new("drill_repo");
    let prefix = format!("{}_", guard.name());
    guard.track(format!("{prefix}{db}"));
    let (_, stdout, _) = run(
        &mut drill_cmd("test-restore", &repo, &["--prefix", &prefix]),
        0,
    );
    let r = report(&stdout);
    assert_eq!(r["passed"], true, "{r:#}");
    assert!(
        r["snapshot"].as_str().unwrap_or("").contains(&names[1]),
        "the newest snapshot is drilled: {r:#}"
    );
    assert_eq!(r["namespaces"].as_array().map(Vec::len), Some(1), "{r:#}");
    assert_eq!(ns(&r, "shop.c")["backup_documents"], 101);
    assert!(!databases().iter().any(|d| d.starts_with(&prefix)));

    // The live database is what the newest snapshot holds, not the first.
    let diff = |args: &[&str], code: i32| {
        let (_, stdout, _) = run(
            oxidump()
                .arg("diff")
                .arg(&repo)
                .args(["--uri", &source.uri(), "-q", "--json"])
                .args(args),
            code,
        );
        report(&stdout)
    };
    assert_eq!(diff(&[], 0)["passed"], true);
    let r = diff(&["--snapshot", &names[0]], 1);
    assert!(
        r["snapshot"].as_str().unwrap_or("").contains(&names[0]),
        "{r:#}"
    );
    let ids = &ns(&r, "shop.c")["ids"];
    assert_eq!(ids["different"], serde_json::json!(["7"]), "{r:#}");
    assert_eq!(ids["extra"], serde_json::json!(["100"]), "{r:#}");
    assert_eq!(ids["missing_count"], 0, "{r:#}");

    // Refusals name what is wrong.
    let (_, _, stderr) = run(
        &mut drill_cmd(
            "test-restore",
            &repo,
            &["--prefix", &prefix, "--snapshot", "20000101T000000Z"],
        ),
        2,
    );
    assert!(
        stderr.contains("no snapshot named \"20000101T000000Z\"") && stderr.contains(&names[0]),
        "{stderr}"
    );
    let file = repo.join("snapshots").join(format!("{}.oxd", names[0]));
    let (_, _, stderr) = run(&mut drill_cmd("diff", &file, &["--snapshot", &names[0]]), 2);
    assert!(stderr.contains("is not one"), "{stderr}");
}
