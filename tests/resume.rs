//! `restore --resume`: a restore killed (SIGKILL) at any point and resumed ends in
//! the state one uninterrupted restore gives; a resume of another plan is refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bson::doc;
use futures_util::TryStreamExt as _;
use serde_json::Value;

use crate::common::{block_on, client, collection_digest, oxidump, server, unique_db};
use oxidump::catalog::{Catalog, Namespace, NsKind, NsStatus, SourceInfo, Summary};
use oxidump::oxd::writer::{OxdWriter, WriterOptions};

const NAMESPACES: usize = 3;
const FRAMES: usize = 12;
const PER_FRAME: usize = 2_000;

fn doc_of(ns: usize, i: usize) -> Vec<u8> {
    let mut x = (ns as u64) << 32 | i as u64 | 1;
    let pad: String = (0..300)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (b'a' + ((x >> 33) % 26) as u8) as char
        })
        .collect();
    bson::serialize_to_vec(&doc! {"_id": i as i64, "k": (i % 977) as i64, "pad": pad})
        .expect("serialize")
}

/// An OXD archive of collections `db.c0` … `db.c2`, each of [`FRAMES`] frames of
/// [`PER_FRAME`] documents, with a secondary index on `k`, written one namespace after
/// the other.
fn backup(path: &Path) {
    let catalog = Catalog {
        source: SourceInfo::default(),
        namespaces: (0..NAMESPACES)
            .map(|n| Namespace {
                db: "db".into(),
                collection: format!("c{n}"),
                kind: NsKind::Collection,
                options: bson::Document::new(),
                indexes: vec![
                    doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"},
                    doc! {"v": 2, "key": {"k": 1}, "name": "k_1"},
                ],
                uuid: None,
            })
            .collect(),
    };
    let opts = WriterOptions {
        level: None,
        frame_size: 1 << 20,
        in_flight: 4,
    };
    let mut w = OxdWriter::new(Vec::new(), &catalog, opts).expect("manifest");
    for n in 0..NAMESPACES {
        for f in 0..FRAMES {
            let docs: Vec<u8> = (0..PER_FRAME)
                .flat_map(|i| doc_of(n, f * PER_FRAME + i))
                .collect();
            w.write_frame(n as u32, docs, PER_FRAME as u32)
                .expect("frame");
        }
        w.end_namespace(n as u32, &NsStatus::Complete).expect("end");
    }
    fs::write(path, w.finish(&Summary::default()).expect("finish").0).expect("write");
}

fn restore(input: &Path, db: &str) -> Command {
    let mut c = oxidump();
    c.arg("restore")
        .arg(input)
        .args(["--uri", &server().uri, "-q"])
        .args(["--ns-from", "db.*", "--ns-to", &format!("{db}.*")])
        // Small batches, one at a time: there is time to stop it part way.
        .args([
            "-j",
            "1",
            "--workers-per-collection",
            "1",
            "--batch-bytes",
            "256KB",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn journal(path: &Path) -> Option<Value> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// The journal a restore keeps in the target (`--resume-journal-in-target`) for the
/// backup at `input`.
fn journal_in_target(input: &Path) -> Option<Value> {
    let id = std::path::absolute(input)
        .expect("absolute")
        .display()
        .to_string();
    let c = client();
    let d = block_on(async {
        c.database("oxidump_resume")
            .collection::<bson::Document>("journals")
            .find_one(doc! {"_id": id})
            .await
    })
    .expect("read the journal")?;
    serde_json::from_str(d.get_str("journal").expect("journal text")).ok()
}

fn ns(j: &Value, n: usize) -> &Value {
    &j["namespaces"][format!("db.c{n}")]
}

fn flag(j: &Value, n: usize, what: &str) -> bool {
    ns(j, n)[what].as_bool().unwrap_or(false)
}

fn done_units(j: &Value, n: usize) -> usize {
    ns(j, n)["done"].as_array().map_or(0, Vec::len)
}

/// How many namespaces (in whatever order the restore takes them) are `complete`.
fn completed(j: &Value) -> usize {
    (0..NAMESPACES).filter(|&n| flag(j, n, "complete")).count()
}

/// Whether a namespace not complete has at least `units` units done.
fn loading(j: &Value, units: usize) -> bool {
    (0..NAMESPACES).any(|n| !flag(j, n, "complete") && done_units(j, n) >= units)
}

/// Per collection of `db`: the documents' digest and the indexes (name and key).
fn state(db: &str) -> Vec<((u64, String), Vec<String>)> {
    (0..NAMESPACES)
        .map(|n| {
            let coll = format!("c{n}");
            let c = client();
            let mut ix: Vec<String> = block_on(async {
                c.database(db)
                    .collection::<bson::Document>(&coll)
                    .list_indexes()
                    .await?
                    .map_ok(|m| {
                        format!(
                            "{} {}",
                            m.options.and_then(|o| o.name).unwrap_or_default(),
                            m.keys
                        )
                    })
                    .try_collect()
                    .await
            })
            .expect("list indexes");
            ix.sort();
            (collection_digest(db, &coll), ix)
        })
        .collect()
}

fn total(db: &str) -> u64 {
    (0..NAMESPACES)
        .map(|n| {
            let c = client();
            block_on(async {
                c.database(db)
                    .collection::<bson::Document>(&format!("c{n}"))
                    .count_documents(doc! {})
                    .await
            })
            .expect("count")
        })
        .sum()
}

/// The documents in `db` once requests the killed process had sent are done (the
/// server finishes those it had received): the count no longer moves.
fn settled(db: &str) -> u64 {
    let mut last = total(db);
    let mut same = 0;
    while same < 5 {
        std::thread::sleep(Duration::from_millis(100));
        let now = total(db);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

fn run_out(cmd: &mut Command) -> (i32, String, Value) {
    let report = tempfile::NamedTempFile::new().expect("temp");
    let out = cmd
        .arg("--report-json")
        .arg(report.path())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let r = journal(report.path()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), err, r)
}

#[test]
fn a_restore_killed_anywhere_and_resumed_ends_as_one_uninterrupted_run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let oxd = tmp.path().join("b.oxd");
    backup(&oxd);
    let all = (NAMESPACES * FRAMES * PER_FRAME) as u64;

    // The state one uninterrupted run gives.
    let reference = unique_db("resume_ref");
    let (code, err, _) = run_out(&mut restore(&oxd, &reference));
    assert_eq!(code, 0, "{err}");
    let want = state(&reference);
    assert_eq!(want.iter().map(|s| s.0.0).sum::<u64>(), all);
    assert!(want[0].1.iter().any(|i| i.starts_with("k_1")), "{want:?}");

    // (name, --index-build, where the journal goes (beside the backup, a path, the
    // target), where it is held and killed, what the journal then says)
    type When = Box<dyn Fn(&Value) -> bool>;
    let target = Some(PathBuf::from("(target)"));
    let points: Vec<(&str, &str, Option<PathBuf>, &str, When)> = vec![
        (
            "during data, the journal in the target",
            "before",
            target.clone(),
            "restore-unit:2",
            Box::new(|j| completed(j) == 0 && loading(j, 2)),
        ),
        (
            "during data",
            "before",
            None,
            "restore-unit:3",
            Box::new(|j| completed(j) == 0 && loading(j, 3)),
        ),
        (
            "during data of the second namespace",
            "after",
            Some(tmp.path().join("j-data2")),
            "restore-unit:14",
            Box::new(|j| {
                (0..NAMESPACES).filter(|&n| flag(j, n, "data_done")).count() == 1
                    && (0..NAMESPACES).any(|n| !flag(j, n, "data_done") && done_units(j, n) >= 2)
            }),
        ),
        (
            "during index builds",
            "after",
            Some(tmp.path().join("j-index")),
            "restore-data-done:1",
            Box::new(|j| {
                (0..NAMESPACES).any(|n| flag(j, n, "data_done") && !flag(j, n, "complete"))
            }),
        ),
        (
            "between namespaces",
            "before",
            Some(tmp.path().join("j-between")),
            "restore-ns-complete:1",
            Box::new(|j| completed(j) == 1),
        ),
    ];
    let mut hit = Vec::new();
    for (i, (name, index_build, jpath, point, when)) in points.into_iter().enumerate() {
        let db = unique_db(&format!("resume{i}"));
        let in_target = jpath == target;
        let journal_path = jpath
            .clone()
            .unwrap_or_else(|| tmp.path().join("b.oxd.oxidump-resume"));
        let read = || {
            if in_target {
                journal_in_target(&oxd)
            } else {
                journal(&journal_path)
            }
        };
        let with = |c: &mut Command| {
            c.args(["--index-build", index_build, "--resume"]);
            match &jpath {
                _ if in_target => c.arg("--resume-journal-in-target"),
                Some(p) => c.arg("--resume-journal").arg(p),
                None => c,
            };
        };
        let mut cmd = restore(&oxd, &db);
        with(&mut cmd);
        let (code, err) = crate::common::Held::start(&mut cmd, point).signal("KILL");
        assert_eq!(code, None, "{name}: {err}");
        {
            hit.push(name);
            let j = read().expect("the journal survives SIGKILL");
            assert_eq!(j["format"], "oxidump-restore-journal");
            assert!(when(&j), "{name}: {j}");
            let held = settled(&db);
            assert!(
                held < all || name == "during index builds",
                "{name}: {held}"
            );

            // Another plan is refused, and writes nothing.
            let mut other = restore(&oxd, &db);
            with(&mut other);
            other.arg("--append");
            let (code, err, _) = run_out(&mut other);
            assert_eq!(code, 2, "{name}: {err}");
            assert!(err.contains("refusing to resume"), "{err}");
            assert!(
                err.contains("option existing targets was \"refuse\", is now \"--append\""),
                "{err}"
            );
            let mut other = restore(&oxd, &db);
            with(&mut other);
            other.args(["--ns-exclude", "db.c2"]);
            let (code, err, _) = run_out(&mut other);
            assert_eq!(code, 2, "{name}: {err}");
            assert!(err.contains("option --ns-exclude"), "{err}");
            assert_eq!(total(&db), held, "{name}: a refused resume wrote");

            // Resumed: done, and exactly as the uninterrupted run.
            let mut again = restore(&oxd, &db);
            with(&mut again);
            let (code, err, r) = run_out(&mut again);
            assert_eq!(code, 0, "{name}: {err}");
            assert_eq!(r["resumed"], true, "{name}: {r}");
            let mut skipped = 0;
            for n in r["namespaces"].as_array().expect("namespaces") {
                assert_eq!(n["duplicates"], 0, "{name}: {n}");
                // Skipped, inserted now, or sent again and found there: each once.
                let parts = ["resumed", "inserted", "already_present"]
                    .map(|k| n[k].as_u64().unwrap_or_else(|| panic!("{k}: {n}")));
                assert_eq!(
                    parts.iter().sum::<u64>(),
                    (FRAMES * PER_FRAME) as u64,
                    "{name}: {n}"
                );
                skipped += parts[0];
            }
            assert!(skipped > 0, "{name}: nothing was skipped: {r}");
        }
        assert_eq!(state(&db), want, "{name}");
        assert!(
            !journal_path.exists() && read().is_none(),
            "{name}: the journal is removed once everything is restored"
        );
        {
            let c = client();
            block_on(async { c.database(&db).drop().await })
        }
        .expect("drop");
    }
    eprintln!("stopped {hit:?}");
    assert!(
        hit.contains(&"during data")
            && hit.contains(&"between namespaces")
            && hit.contains(&"during data, the journal in the target"),
        "the restore was never stopped where it should be: {hit:?}"
    );
    {
        let c = client();
        block_on(async { c.database(&reference).drop().await })
    }
    .expect("drop");
}

#[test]
fn a_mongodump_directory_restore_resumes_at_byte_offsets() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let oxd = tmp.path().join("b.oxd");
    backup(&oxd);
    let dir = tmp.path().join("dump");
    let out = oxidump()
        .args(["convert"])
        .arg(&oxd)
        .arg(&dir)
        .args(["--to", "mongodump-dir"])
        .output()
        .expect("convert");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = unique_db("resume_dref");
    let (code, err, _) = run_out(&mut restore(&oxd, &reference));
    assert_eq!(code, 0, "{err}");
    let want = state(&reference);

    let db = unique_db("resume_dir");
    let journal_path = tmp.path().join("dump.oxidump-resume");
    let mut cmd = restore(&dir, &db);
    cmd.arg("--resume");
    // Killed once the first namespace is complete, before the second begins.
    let (code, err) = crate::common::Held::start(&mut cmd, "restore-ns-complete:1").signal("KILL");
    assert_eq!(code, None, "{err}");
    let j = journal(&journal_path).expect("journal");
    assert_eq!(completed(&j), 1, "{j}");
    let first = (0..NAMESPACES)
        .find(|&n| flag(&j, n, "complete"))
        .expect("one complete");
    assert_eq!(ns(&j, first)["unit"], "offset", "{j}");
    // Byte offsets, not ordinals: past the first unit they are large.
    let offsets: Vec<u64> = ns(&j, first)["done"]
        .as_array()
        .expect("done")
        .iter()
        .map(|v| v.as_u64().expect("offset"))
        .collect();
    assert!(
        offsets.len() >= 2 && offsets.iter().any(|&o| o > 1 << 20),
        "{offsets:?}"
    );
    let mut again = restore(&dir, &db);
    again.arg("--resume");
    let (code, err, r) = run_out(&mut again);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["resumed"], true);
    assert_eq!(state(&db), want);
    assert!(!journal_path.exists());
    for d in [&db, &reference] {
        {
            let c = client();
            block_on(async { c.database(d).drop().await })
        }
        .expect("drop");
    }
}

#[test]
fn resume_needs_a_backup_read_by_path_and_counting_refusals() {
    let out = oxidump()
        .args(["restore", "-", "--uri", "mongodb://127.0.0.1:1", "--resume"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--resume needs a backup read by path"),
        "{err}"
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let oxd = tmp.path().join("b.oxd");
    fs::write(&oxd, b"").expect("write");
    let out = oxidump()
        .arg("restore")
        .arg(&oxd)
        .args([
            "--uri",
            "mongodb://127.0.0.1:1",
            "--resume",
            "--stop-on-error",
        ])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--resume and --stop-on-error"), "{err}");
}

/// The documents' digest of every namespace of the OXD archive at `path`, by name.
fn archive_digests(path: &Path) -> Vec<(String, (u64, String))> {
    use oxidump::source::{Chunk, Source as _};
    let mut f = fs::File::open(path).expect("open");
    let index = oxidump::oxd::reader::Index::open(&mut f).expect("index");
    (0..index.catalog.namespaces.len())
        .map(|n| {
            let mut s = oxidump::oxd::reader::NsSource::new(path, &index, n);
            let mut docs = Vec::new();
            while let Some(c) = s.next_chunk().expect("read") {
                if let Chunk::Docs { data, .. } = c {
                    docs.extend(
                        oxidump::docs::DocIter::new(&data).map(|d| d.expect("doc").to_vec()),
                    );
                }
            }
            (
                index.catalog.namespaces[n].full_name(),
                crate::common::docs_digest(docs),
            )
        })
        .collect()
}

#[test]
fn a_killed_dump_resumed_keeps_the_namespaces_it_completed() {
    let db = unique_db("resume_dump");
    let c = client();
    block_on(async {
        for n in 0..NAMESPACES {
            let coll = c
                .database(&db)
                .collection::<bson::RawDocumentBuf>(&format!("c{n}"));
            for start in (0..24_000).step_by(4_000) {
                let batch: Vec<_> = (start..start + 4_000)
                    .map(|i| bson::RawDocumentBuf::from_bytes(doc_of(n, i)).expect("doc"))
                    .collect();
                coll.insert_many(batch).await.expect("insert");
            }
        }
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let dump = |out: &Path| {
        let mut c = oxidump();
        c.args([
            "dump",
            "--uri",
            &server().uri,
            "--db",
            &db,
            "-j",
            "1",
            "-q",
            "--out",
        ])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    };
    let reference = tmp.path().join("ref.oxd");
    let out = dump(&reference).output().expect("dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = archive_digests(&reference);
    let full = fs::metadata(&reference).expect("size").len();

    let dest = tmp.path().join("b.oxd");
    let partial = || {
        fs::read_dir(tmp.path())
            .expect("list")
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".b.oxd.partial-")
            })
            .map(|e| e.path())
    };
    let mut child = dump(&dest).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    // Past half of it: the first of three collections is complete, the last is not.
    let killed = loop {
        if child.try_wait().expect("wait").is_some() {
            break false;
        }
        if partial().is_some_and(|p| fs::metadata(p).map_or(0, |m| m.len()) > full * 55 / 100) {
            child.kill().expect("SIGKILL");
            child.wait().expect("wait");
            break true;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(killed, "the dump ended before it could be stopped");
    assert!(!dest.exists());
    assert!(
        partial().is_some(),
        "a killed dump leaves its partial output"
    );

    let report = tmp.path().join("report.json");
    let mut again = dump(&dest);
    again.arg("--resume").arg("--report-json").arg(&report);
    let out = again.output().expect("dump --resume");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&fs::read(&report).expect("report")).expect("json");
    let kept = r["resumed"].as_array().map_or(0, Vec::len);
    assert!((1..NAMESPACES).contains(&kept), "{r}");
    assert!(partial().is_none(), "the kept partial output is removed");
    // One archive that verifies clean, says it was resumed, and holds what an
    // uninterrupted dump holds.
    let v = oxidump().arg("verify").arg(&dest).output().expect("verify");
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    let index = oxidump::oxd::reader::Index::open(&mut fs::File::open(&dest).expect("open"))
        .expect("index");
    let from = index
        .catalog
        .source
        .resumed_from
        .expect("resumed_from in the manifest");
    assert!(from < index.catalog.source.created_at.expect("created_at"));
    assert_eq!(archive_digests(&dest), want);
    block_on(async { c.database(&db).drop().await }).expect("drop");
}

/// `db.c0` … `db.c2` of 24,000 documents each on the server behind `c`.
fn fill_server(c: &mongodb::Client, db: &str) {
    block_on(async {
        for n in 0..NAMESPACES {
            let coll = c
                .database(db)
                .collection::<bson::RawDocumentBuf>(&format!("c{n}"));
            for start in (0..24_000).step_by(4_000) {
                let batch: Vec<_> = (start..start + 4_000)
                    .map(|i| bson::RawDocumentBuf::from_bytes(doc_of(n, i)).expect("doc"))
                    .collect();
                coll.insert_many(batch).await.expect("insert");
            }
        }
    });
}

/// The hidden partial outputs of `dest`.
fn partials_of(dest: &Path) -> Vec<PathBuf> {
    let prefix = format!(
        ".{}.partial-",
        dest.file_name().expect("name").to_string_lossy()
    );
    let mut v: Vec<PathBuf> = fs::read_dir(dest.parent().expect("parent"))
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn verify_clean(path: &Path) {
    let v = oxidump().arg("verify").arg(path).output().expect("verify");
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
}

#[test]
fn a_dump_killed_or_stopped_anywhere_and_resumed_holds_what_one_run_holds() {
    let db = unique_db("resume_points");
    let c = client();
    fill_server(&c, &db);
    let tmp = tempfile::tempdir().expect("temp dir");
    // One cursor at a time; every collection (about 8 MB) split into _id ranges.
    let dump = |out: &Path| {
        let mut c = oxidump();
        c.args(["dump", "--uri", &server().uri, "--db", &db, "-j", "1", "-q"])
            .args(["--split-above", "2MB", "--out"])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    };
    let reference = tmp.path().join("ref.oxd");
    let out = dump(&reference)
        .stderr(Stdio::piped())
        .output()
        .expect("dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = archive_digests(&reference);

    // (name, where it is held, how it is stopped, what a resume keeps: whole
    // namespaces, how many namespaces kept in part; the reads of ranges of several
    // collections may interleave)
    let points = [
        (
            "during data, after one range",
            "dump-range-end:1",
            "KILL",
            0,
            1..=1,
        ),
        (
            "during data, after two ranges, by SIGINT",
            "dump-range-end:2",
            "INT",
            0,
            1..=2,
        ),
        (
            "during data, inside the first range",
            "dump-docs:1",
            "KILL",
            0,
            0..=0,
        ),
        ("between namespaces", "dump-ns-end:1", "KILL", 1, 0..=2),
        (
            "between namespaces, by SIGTERM",
            "dump-ns-end:2",
            "TERM",
            2,
            0..=1,
        ),
    ];
    for (i, (name, point, sig, whole, in_part)) in points.into_iter().enumerate() {
        let dest = tmp.path().join(format!("b{i}.oxd"));
        let held = crate::common::Held::start(&mut dump(&dest), point);
        let (code, err) = held.signal(sig);
        if sig == "KILL" {
            assert_eq!(code, None, "{name}: {err}");
        } else {
            assert_eq!(code, Some(3), "{name}: {err}");
            assert!(err.contains("--resume"), "{name}: {err}");
        }
        assert!(!dest.exists(), "{name}");
        let left = partials_of(&dest);
        assert_eq!(left.len(), 1, "{name}: {left:?}");

        // Other options: refused, and the partial output stays for the right ones.
        let mut other = dump(&dest);
        other.args(["--resume", "--ns-exclude", &format!("{db}.c2")]);
        let out = other.stderr(Stdio::piped()).output().expect("dump");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains("refusing to resume"), "{name}: {err}");
        assert!(err.contains("--ns-exclude"), "{name}: {err}");
        assert_eq!(partials_of(&dest), left, "{name}");

        let report = tmp.path().join(format!("r{i}.json"));
        let mut again = dump(&dest);
        again.arg("--resume").arg("--report-json").arg(&report);
        let out = again
            .stderr(Stdio::piped())
            .output()
            .expect("dump --resume");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        let r: Value = serde_json::from_slice(&fs::read(&report).expect("report")).expect("json");
        let kept: Vec<&str> = r["resumed"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let part = kept.iter().filter(|k| k.contains(" ranges)")).count();
        assert_eq!(kept.len() - part, whole, "{name}: kept {kept:?}");
        assert!(in_part.contains(&part), "{name}: kept {kept:?}");
        assert!(
            partials_of(&dest).is_empty(),
            "{name}: {:?}",
            partials_of(&dest)
        );
        // One archive that verifies clean, says it was resumed, and holds what an
        // uninterrupted dump holds.
        verify_clean(&dest);
        let index = oxidump::oxd::reader::Index::open(&mut fs::File::open(&dest).expect("open"))
            .expect("index");
        assert_eq!(
            index.catalog.source.resumed_from.is_some(),
            !kept.is_empty(),
            "{name}"
        );
        assert_eq!(archive_digests(&dest), want, "{name}");
    }

    // A resumed run stopped in its turn (after reading two more ranges), resumed again:
    // one partial output is left each time, and the end is the same.
    let dest = tmp.path().join("chain.oxd");
    let (code, err) =
        crate::common::Held::start(&mut dump(&dest), "dump-range-end:1").signal("KILL");
    assert_eq!(code, None, "{err}");
    let mut again = dump(&dest);
    again.arg("--resume");
    let (code, err) = crate::common::Held::start(&mut again, "dump-range-end:2").signal("INT");
    assert_eq!(code, Some(3), "{err}");
    let left = partials_of(&dest);
    assert_eq!(left.len(), 1, "{left:?}");
    let report = tmp.path().join("chain.json");
    let out = dump(&dest)
        .arg("--resume")
        .arg("--report-json")
        .arg(&report)
        .stderr(Stdio::piped())
        .output()
        .expect("dump --resume");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&fs::read(&report).expect("report")).expect("json");
    // Ranges finished by both interrupted runs are kept: at least three (or a whole
    // collection, when they completed one).
    let kept = r["resumed"].as_array().expect("resumed");
    let whole = kept
        .iter()
        .any(|k| k.as_str().is_some_and(|k| !k.ends_with(" ranges)")));
    let ranges: u64 = kept
        .iter()
        .filter_map(|k| {
            let k = k.as_str()?;
            let (_, tail) = k.rsplit_once(" (")?;
            tail.split(' ').next()?.parse::<u64>().ok()
        })
        .sum();
    assert!(ranges >= 3 || whole, "{r}");
    assert!(partials_of(&dest).is_empty());
    verify_clean(&dest);
    assert_eq!(archive_digests(&dest), want, "chain");
    block_on(async { c.database(&db).drop().await }).expect("drop");
}

/// The documents of namespace `name` of the OXD archive at `path`.
fn ns_docs(path: &Path, name: &str) -> Vec<bson::Document> {
    use oxidump::source::{Chunk, Source as _};
    let mut f = fs::File::open(path).expect("open");
    let index = oxidump::oxd::reader::Index::open(&mut f).expect("index");
    let n = index
        .catalog
        .namespaces
        .iter()
        .position(|n| n.full_name() == name)
        .unwrap_or_else(|| panic!("no {name}"));
    let mut s = oxidump::oxd::reader::NsSource::new(path, &index, n);
    let mut docs = Vec::new();
    while let Some(c) = s.next_chunk().expect("read") {
        if let Chunk::Docs { data, .. } = c {
            for d in oxidump::docs::DocIter::new(&data) {
                docs.push(bson::Document::from_reader(&mut d.expect("doc")).expect("decode"));
            }
        }
    }
    docs
}

#[test]
fn a_resumed_dump_with_oplog_has_one_window_from_the_first_start_to_its_end() {
    // A server of its own: --oplog dumps the whole server.
    let server = crate::common::private_server::PrivateServer::start(&[]);
    let c = server.client();
    let db = "oplog_resume";
    fill_server(&c, db);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dest = tmp.path().join("o.oxd");
    let dump = || {
        let mut cmd = oxidump();
        cmd.args(["dump", "--uri", &server.uri(), "--oplog", "-j", "1", "-q"])
            .arg("--out")
            .arg(&dest)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    };
    let held = crate::common::Held::start(&mut dump(), &format!("dump-ns-end:{}", 1));
    let (code, err) = held.signal("KILL");
    assert_eq!(code, None, "{err}");
    let left = partials_of(&dest);
    assert_eq!(left.len(), 1, "{left:?}");
    let first_start = {
        use oxidump::source::Source as _;
        oxidump::oxd::reader::OxdSource::open(&left[0])
            .expect("open the partial output")
            .catalog()
            .source
            .oplog_start
            .expect("the partial output says where its window starts")
    };
    // Written after the first run stopped, into every collection (the one it kept
    // among them): only the oplog window brings them to one point.
    block_on(async {
        for n in 0..NAMESPACES {
            c.database(db)
                .collection::<bson::Document>(&format!("c{n}"))
                .insert_one(doc! {"_id": "late", "n": n as i64})
                .await
                .expect("insert");
        }
    });

    // Without --oplog: other options, refused.
    let mut other = oxidump();
    other
        .args(["dump", "--uri", &server.uri(), "-j", "1", "-q", "--resume"])
        .arg("--out")
        .arg(&dest);
    let out = other.output().expect("dump");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("refusing to resume") && err.contains("--oplog"),
        "{err}"
    );

    let out = dump()
        .arg("--resume")
        .stderr(Stdio::piped())
        .output()
        .expect("dump --resume");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("resumed: "), "{err}");
    verify_clean(&dest);
    let index = oxidump::oxd::reader::Index::open(&mut fs::File::open(&dest).expect("open"))
        .expect("index");
    assert_eq!(index.catalog.source.oplog_start, Some(first_start));
    assert!(index.catalog.source.resumed_from.is_some());
    let window = index.footer.summary.oplog.expect("an oplog window");
    assert_eq!(window.start, first_start);
    // The window reaches past the writes made between the runs.
    let late: Vec<bson::Timestamp> = ns_docs(&dest, "local.oplog.rs")
        .iter()
        .filter(|e| {
            e.get_str("op").ok() == Some("i")
                && e.get_str("ns").is_ok_and(|ns| ns.starts_with(db))
                && e.get_document("o")
                    .is_ok_and(|o| o.get_str("_id").ok() == Some("late"))
        })
        .map(|e| e.get_timestamp("ts").expect("ts"))
        .collect();
    assert_eq!(late.len(), NAMESPACES, "{late:?}");
    assert!(
        late.iter().all(|t| window.start <= *t && *t <= window.end),
        "{late:?} outside {window:?}"
    );
}

#[test]
fn a_restore_killed_at_each_step_of_a_namespace_and_resumed_ends_as_one_run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let oxd = tmp.path().join("b.oxd");
    backup(&oxd);
    let reference = unique_db("resume_sref");
    let (code, err, _) = run_out(&mut restore(&oxd, &reference));
    assert_eq!(code, 0, "{err}");
    let want = state(&reference);

    type Check = fn(&Value) -> bool;
    // (name, where it is held and killed, --index-build, what the journal then says)
    let points: [(&str, &str, &str, Check); 6] = [
        ("during data", "restore-unit:3", "before", |j| {
            completed(j) == 0 && loading(j, 3)
        }),
        (
            "during data of the second namespace",
            "restore-unit:15",
            "after",
            |j| {
                (0..NAMESPACES).filter(|&n| flag(j, n, "data_done")).count() == 1
                    && (0..NAMESPACES).any(|n| !flag(j, n, "data_done") && done_units(j, n) >= 3)
            },
        ),
        (
            "data done, index builds not run",
            "restore-data-done:1",
            "after",
            |j| (0..NAMESPACES).any(|n| flag(j, n, "data_done") && !flag(j, n, "indexes_built")),
        ),
        (
            "index builds done, namespace not complete",
            "restore-indexes-built:1",
            "after",
            |j| (0..NAMESPACES).any(|n| flag(j, n, "indexes_built") && !flag(j, n, "complete")),
        ),
        (
            "between namespaces",
            "restore-ns-complete:1",
            "before",
            |j| completed(j) == 1,
        ),
        (
            "between the second and the third",
            "restore-ns-complete:2",
            "after",
            |j| completed(j) == 2,
        ),
    ];
    for (i, (name, point, index_build, check)) in points.into_iter().enumerate() {
        let db = unique_db(&format!("resume_s{i}"));
        let jpath = tmp.path().join(format!("j{i}"));
        let with = |c: &mut Command| {
            c.args(["--index-build", index_build, "--resume", "--resume-journal"])
                .arg(&jpath);
        };
        let mut cmd = restore(&oxd, &db);
        with(&mut cmd);
        let (code, err) = crate::common::Held::start(&mut cmd, point).signal("KILL");
        assert_eq!(code, None, "{name}: {err}");
        let j = journal(&jpath).expect("the journal survives SIGKILL");
        assert!(check(&j), "{name}: {j}");

        let mut again = restore(&oxd, &db);
        with(&mut again);
        let (code, err, r) = run_out(&mut again);
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(r["resumed"], true, "{name}: {r}");
        for n in r["namespaces"].as_array().expect("namespaces") {
            assert_eq!(n["duplicates"], 0, "{name}: {n}");
        }
        assert_eq!(state(&db), want, "{name}");
        assert!(!jpath.exists(), "{name}: the journal is removed at the end");
        {
            let c = client();
            block_on(async { c.database(&db).drop().await })
        }
        .expect("drop");
    }
    {
        let c = client();
        block_on(async { c.database(&reference).drop().await })
    }
    .expect("drop");
}
