//! What the binary says and exits with when something around the data goes wrong: an
//! output closed by its reader, damaged or foreign inputs, damage read from a pipe.
//! The exit status rule: 1 when the data is damaged or incomplete, 2 when the input is
//! not a backup or for usage and I/O errors.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bson::doc;
use serde_json::Value;

use crate::common::private_server::PrivateServer;
use crate::common::{DbGuard, block_on, client, oxidump, server};
use oxidump::catalog::{Catalog, Namespace, NsKind, NsStatus, SourceInfo, Summary};
use oxidump::oxd::reader::Index;
use oxidump::oxd::writer::{OxdWriter, WriterOptions};

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// Namespace `db.cN-data`.
pub(crate) fn ns_name(n: usize) -> String {
    format!("db.c{n}-data")
}

/// Document `i` of namespace `ns`, about `pad` bytes of letters that do not compress
/// much.
fn doc_of(ns: usize, i: usize, pad: usize) -> Vec<u8> {
    let mut x = (ns as u64) << 32 | i as u64 | 1;
    let noise: String = (0..pad)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (b'a' + ((x >> 33) % 26) as u8) as char
        })
        .collect();
    bson::serialize_to_vec(&doc! {"_id": i as i64, "ns": ns as i64, "pad": noise})
        .expect("serialize")
}

/// An uncompressed OXD archive of `namespaces` collections [`ns_name`], each
/// of `frames` frames of `per_frame` documents; frames are written round robin.
fn archive(namespaces: usize, frames: usize, per_frame: usize, pad: usize) -> Vec<u8> {
    let catalog = Catalog {
        source: SourceInfo::default(),
        namespaces: (0..namespaces)
            .map(|n| Namespace {
                db: "db".into(),
                collection: ns_name(n)["db.".len()..].to_string(),
                kind: NsKind::Collection,
                options: bson::Document::new(),
                indexes: vec![doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}],
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
    for f in 0..frames {
        for n in 0..namespaces {
            let docs: Vec<u8> = (0..per_frame)
                .flat_map(|i| doc_of(n, f * per_frame + i, pad))
                .collect();
            w.write_frame(n as u32, docs, per_frame as u32)
                .expect("frame");
        }
    }
    for n in 0..namespaces {
        w.end_namespace(n as u32, &NsStatus::Complete).expect("end");
    }
    w.finish(&Summary::default()).expect("finish").0
}

/// Like [`archive`], but each namespace is written whole, its end record included,
/// before the next one starts.
pub(crate) fn archive_in_order(
    namespaces: usize,
    frames: usize,
    per_frame: usize,
    pad: usize,
) -> Vec<u8> {
    let catalog = Catalog {
        source: SourceInfo::default(),
        namespaces: (0..namespaces)
            .map(|n| Namespace {
                db: "db".into(),
                collection: ns_name(n)["db.".len()..].to_string(),
                kind: NsKind::Collection,
                options: bson::Document::new(),
                indexes: vec![doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}],
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
    for n in 0..namespaces {
        for f in 0..frames {
            let docs: Vec<u8> = (0..per_frame)
                .flat_map(|i| doc_of(n, f * per_frame + i, pad))
                .collect();
            w.write_frame(n as u32, docs, per_frame as u32)
                .expect("frame");
        }
        w.end_namespace(n as u32, &NsStatus::Complete).expect("end");
    }
    w.finish(&Summary::default()).expect("finish").0
}

/// Flips a byte in the payload of frame `seq` of namespace `ns`.
fn damage_frame(oxd: &mut [u8], ns: u32, seq: u32) {
    let idx = Index::open(&mut std::io::Cursor::new(&*oxd)).expect("index");
    let e = idx
        .footer
        .frames_of(ns)
        .iter()
        .find(|e| e.seq == seq)
        .expect("frame");
    // Past the 32-byte record header, inside the documents.
    oxd[e.offset as usize + 100] ^= 0x55;
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).expect("write");
    p
}

/// Runs `cmd`, its standard input from `stdin` when given, and returns the exit
/// code, standard output and standard error.
fn output(cmd: &mut Command, stdin: Option<&Path>) -> (i32, Vec<u8>, String) {
    if let Some(p) = stdin {
        cmd.stdin(Stdio::from(fs::File::open(p).expect("open")));
    } else {
        cmd.stdin(Stdio::null());
    }
    let out = cmd.output().expect("run oxidump");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` with its standard output read for `keep` bytes and then closed.
/// Returns the exit code, the bytes read and standard error.
fn closed_after(cmd: &mut Command, keep: usize) -> (i32, usize, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oxidump");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; keep];
    let mut got = 0;
    while got < keep {
        match stdout.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => panic!("reading the output: {e}"),
        }
    }
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        got,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The byte count of an "output was closed … after N bytes" message.
fn closed_bytes(stderr: &str) -> u64 {
    let at = stderr
        .find("closed by its reader after ")
        .unwrap_or_else(|| panic!("no closed-output message in: {stderr}"));
    stderr[at + "closed by its reader after ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in: {stderr}"))
}

// ---------------------------------------------------------------------------------
// A closed output
// ---------------------------------------------------------------------------------

#[test]
fn a_producer_whose_output_is_closed_fails_and_says_how_far_it_got() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // 4 namespaces of 6 frames of 200 documents of ~2 KB: about 10 MB.
    let oxd = write(tmp.path(), "big.oxd", &archive(4, 6, 200, 2000));
    let keep = 300_000;
    for args in [
        &["convert", "BIG", "-", "--to", "mongodump-archive", "-q"][..],
        &["convert", "BIG", "-", "--to", "oxd", "-q"],
        &["convert", "-", "-", "--to", "mongodump-archive", "-q"],
        &["cat", "BIG", "--ns", "db.c2-data"],
        &["cat", "-", "--ns", "db.c2-data", "--format", "json"],
    ] {
        let mut cmd = oxidump();
        for a in args {
            cmd.arg(if *a == "BIG" {
                oxd.as_os_str()
            } else {
                a.as_ref()
            });
        }
        if args[1] == "-" {
            cmd.stdin(Stdio::from(fs::File::open(&oxd).expect("open")));
        } else {
            cmd.stdin(Stdio::null());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut buf = vec![0u8; keep];
        stdout
            .read_exact(&mut buf)
            .unwrap_or_else(|e| panic!("{args:?}: the first bytes: {e}"));
        drop(stdout);
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let n = closed_bytes(&err);
        assert!(
            n >= keep as u64,
            "{args:?}: {n} bytes reported, {keep} were read: {err}"
        );
        assert_eq!(
            err.matches("closed by its reader").count(),
            1,
            "{args:?}: {err}"
        );
    }
    // Before a single byte got through.
    let (code, got, err) = closed_after(
        oxidump()
            .arg("convert")
            .arg(&oxd)
            .args(["-", "--to", "oxd", "-q"]),
        0,
    );
    assert_eq!((code, got), (2, 0), "{err}");
    assert_eq!(closed_bytes(&err), 0, "{err}");
}

#[test]
fn listings_for_people_may_be_cut_short() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let oxd = write(tmp.path(), "many.oxd", &archive(300, 1, 1, 10));
    for args in [&["ls"][..], &["ls", "--json"], &["verify", "-q"]] {
        let (code, _, err) = closed_after(oxidump().arg(args[0]).arg(&oxd).args(&args[1..]), 10);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
    let (code, _, err) = closed_after(oxidump().arg("--help"), 10);
    assert_eq!(code, 0, "--help: {err}");
}

// ---------------------------------------------------------------------------------
// Exit codes
// ---------------------------------------------------------------------------------

#[test]
fn damaged_data_exits_1_and_foreign_data_exits_2() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let good = archive(2, 2, 5, 50);
    let verify = |p: &Path| output(oxidump().args(["verify", "-q"]).arg(p), None);

    // A flipped byte anywhere in the magic: a damaged OXD archive.
    for i in 0..8 {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut b = good.clone();
            b[i] ^= flip;
            let p = write(tmp.path(), "magic.oxd", &b);
            let (code, out, err) = verify(&p);
            let out = String::from_utf8_lossy(&out);
            assert_eq!(code, 1, "byte {i} ^ {flip:#x}: {out}{err}");
            assert!(out.contains("CORRUPT"), "byte {i} ^ {flip:#x}: {out}");
        }
    }
    // Cut inside the magic, or just after it.
    for n in 1..=12 {
        let p = write(tmp.path(), "cut.oxd", &good[..n]);
        let (code, out, err) = verify(&p);
        assert_eq!(
            code,
            1,
            "cut to {n} bytes: {}{err}",
            String::from_utf8_lossy(&out)
        );
    }
    // Not ours: random bytes, plain or gzipped, and an empty file.
    let random: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&random).expect("gzip");
    let gz = gz.finish().expect("gzip");
    for (name, bytes) in [
        ("random.bin", &random[..]),
        ("random.bin.gz", &gz[..]),
        ("empty", &[][..]),
    ] {
        let p = write(tmp.path(), name, bytes);
        let (code, out, err) = verify(&p);
        assert_eq!(code, 2, "{name}: {}{err}", String::from_utf8_lossy(&out));
        assert_eq!(
            err.matches("not a backup").count(),
            1,
            "{name}: said once: {err}"
        );
        for cmd in [&["ls"][..], &["cat", "--ns", "db.c0-data"]] {
            let (code, _, err) = output(oxidump().arg(cmd[0]).arg(&p).args(&cmd[1..]), None);
            assert_eq!(code, 2, "{cmd:?} {name}: {err}");
        }
    }
    // With --json, the unreadable input is in the array, with its error.
    let p = write(tmp.path(), "random.bin", &random);
    let (code, out, _) = output(oxidump().args(["verify", "--json"]).arg(&p), None);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_slice(&out).expect("JSON");
    assert!(
        v[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a backup")),
        "{v}"
    );

    // cat of a damaged archive writes the intact frames before the damage, exits 1.
    let mut bad = archive(2, 4, 10, 50);
    damage_frame(&mut bad, 1, 2);
    let p = write(tmp.path(), "bad.oxd", &bad);
    for stdin in [false, true] {
        let mut cmd = oxidump();
        cmd.arg("cat");
        cmd.arg(if stdin { Path::new("-") } else { &p });
        cmd.args(["--ns", "db.c1-data"]);
        let (code, out, err) = output(&mut cmd, stdin.then_some(&p));
        assert_eq!(code, 1, "stdin {stdin}: {err}");
        let expected: Vec<u8> = (0..20).flat_map(|i| doc_of(1, i, 50)).collect();
        assert_eq!(
            out, expected,
            "stdin {stdin}: the two intact frames, byte for byte"
        );
    }

    // Usage errors exit 2.
    let (code, _, _) = output(oxidump().args(["verify", "--bogus"]), None);
    assert_eq!(code, 2);
    // The rule is in the help.
    let (_, help, _) = output(oxidump().arg("--help"), None);
    let help = String::from_utf8_lossy(&help);
    assert!(
        help.contains("1  the data is damaged or incomplete"),
        "{help}"
    );
    assert!(help.contains("2  it is not ours"), "{help}");
}

// ---------------------------------------------------------------------------------
// Damage read from a pipe
// ---------------------------------------------------------------------------------

#[test]
fn damage_read_from_a_pipe_names_its_own_namespace() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // Namespaces 0..=11: the damage is in namespace 11, whose id starts with 1's.
    let mut bad = archive(12, 3, 4, 50);
    damage_frame(&mut bad, 11, 1);
    let p = write(tmp.path(), "bad.oxd", &bad);
    for stdin in [false, true] {
        let mut cmd = oxidump();
        cmd.arg("cat");
        cmd.arg(if stdin { Path::new("-") } else { &p });
        cmd.args(["--ns", &ns_name(11)]);
        let (code, _, err) = output(&mut cmd, stdin.then_some(&p));
        assert_eq!(code, 1, "stdin {stdin}: {err}");
        assert!(
            err.contains(&format!("frame 1 of {}:", ns_name(11))),
            "stdin {stdin}: {err}"
        );
        assert!(!err.contains(&ns_name(1)), "stdin {stdin}: {err}");
    }
    // A restore read from a pipe names it too.
    let guard = DbGuard::new("pipe_names");
    let (code, _, err) = output(
        oxidump()
            .args(["restore", "-", "--uri", &server().uri, "-q"])
            .args([
                "--ns-from",
                "db.*",
                "--ns-to",
                &format!("{}.*", guard.name()),
            ]),
        Some(&p),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("frame 1 of {}", ns_name(11))),
        "{err}"
    );
    assert!(!err.contains(&format!("of {}", ns_name(1))), "{err}");
}

// ---------------------------------------------------------------------------------
// Against a server
// ---------------------------------------------------------------------------------

/// Fills `db` on the server behind `client` with `colls` collections `c0`, `c1`, … of
/// `docs` documents each, about `pad` bytes apiece.
fn fill(client: &mongodb::Client, db: &str, colls: usize, docs: usize, pad: usize) {
    block_on(async {
        for c in 0..colls {
            let coll = client
                .database(db)
                .collection::<bson::RawDocumentBuf>(&format!("c{c}"));
            for start in (0..docs).step_by(10_000) {
                let batch: Vec<bson::RawDocumentBuf> = (start..(start + 10_000).min(docs))
                    .map(|i| bson::RawDocumentBuf::from_bytes(doc_of(c, i, pad)).expect("doc"))
                    .collect();
                coll.insert_many(batch).await.expect("insert");
            }
        }
    });
}

/// Documents in `db.coll` on the server behind `client`.
fn count(client: &mongodb::Client, db: &str, coll: &str) -> u64 {
    let coll = client.database(db).collection::<bson::Document>(coll);
    block_on(async { coll.count_documents(doc! {}).await }).expect("count")
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

fn report(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .expect("report JSON")
}

/// Waits (at most a minute) until `f` holds.
pub(crate) fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_dump_whose_output_is_closed_fails_without_a_panic() {
    let guard = DbGuard::new("closed_dump");
    let db = guard.name().to_string();
    fill(&client(), &db, 3, 20_000, 400);
    for (round, format) in ["oxd", "mongodump-archive", "oxd"].iter().enumerate() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let report_path = tmp.path().join("report.json");
        let (code, got, err) = closed_after(
            oxidump()
                .args(["dump", "--uri", &server().uri, "--db", &db, "--out", "-"])
                .args(["--format", format, "-j", "4", "--split-above", "1MB"])
                .arg("--report-json")
                .arg(&report_path),
            200_000 * round,
        );
        assert_eq!(code, 2, "{format}: {err}");
        assert!(!err.contains("panicked"), "{format}: {err}");
        assert!(closed_bytes(&err) >= got as u64, "{format}: {err}");
        assert!(
            !report_path.exists(),
            "a failed dump writes no report of success"
        );
    }
    // A full disk under the output, while readers are busy: the error, said once.
    for format in ["oxd", "mongodump-archive"] {
        let Ok(full) = fs::OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let out = oxidump()
            .args([
                "dump",
                "--uri",
                &server().uri,
                "--db",
                &db,
                "--out",
                "-",
                "-q",
            ])
            .args(["--format", format, "-j", "4", "--split-above", "1MB"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(full))
            .stderr(Stdio::piped())
            .output()
            .expect("run dump");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{format}: {err}");
        assert!(!err.contains("panicked"), "{format}: {err}");
        assert_eq!(
            err.matches("No space left on device").count(),
            1,
            "{format}: {err}"
        );
    }
}

#[test]
fn an_invalid_write_concern_is_refused_before_anything_is_written() {
    let mut guard = DbGuard::new("wc_src");
    let src = guard.name().to_string();
    let dst = guard.add("wc_dst");
    fill(&client(), &src, 2, 50, 20);
    let tmp = tempfile::tempdir().expect("temp dir");
    let backup = tmp.path().join("src.oxd");
    crate::common::run(
        oxidump()
            .args(["dump", "--uri", &server().uri, "--db", &src, "-q", "--out"])
            .arg(&backup),
        0,
    );
    for wc in [
        "bogus",
        "7",
        r#"{"w": 1, "bogus": true}"#,
        r#"{"j": "yes"}"#,
    ] {
        for dry in [false, true] {
            let mut cmd = oxidump();
            cmd.arg("restore")
                .arg(&backup)
                .args(["--uri", &server().uri, "--ns-from", &format!("{src}.*")])
                .args(["--ns-to", &format!("{dst}.*"), "--write-concern", wc]);
            if dry {
                cmd.arg("--dry-run");
            }
            let (code, out, err) = output(&mut cmd, None);
            assert_eq!(
                code,
                2,
                "{wc} dry-run {dry}: {}{err}",
                String::from_utf8_lossy(&out)
            );
            assert!(err.contains("--write-concern"), "{wc}: {err}");
            let db = client().database(&dst);
            let names = block_on(async { db.list_collection_names().await }).expect("list");
            assert!(names.is_empty(), "{wc}: the target was written: {names:?}");
        }
    }
    // A write concern the server can satisfy restores everything.
    let (code, _, err) = output(
        oxidump()
            .arg("restore")
            .arg(&backup)
            .args(["--uri", &server().uri, "--ns-from", &format!("{src}.*")])
            .args([
                "--ns-to",
                &format!("{dst}.*"),
                "--write-concern",
                "majority",
                "-q",
            ]),
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(count(&client(), &dst, "c0"), 50);
}

#[test]
fn an_interrupted_restore_stops_sending_and_reports_what_the_target_holds() {
    let source = PrivateServer::start(&[]);
    fill(&source.client(), "src", 4, 60_000, 300);
    let tmp = tempfile::tempdir().expect("temp dir");
    let backup = tmp.path().join("src.oxd");
    crate::common::run(
        oxidump()
            .args(["dump", "--uri", &source.uri(), "--db", "src", "-q", "--out"])
            .arg(&backup),
        0,
    );
    drop(source);
    let target = PrivateServer::start(&[]);
    let tc = target.client();
    for (round, sig) in ["INT", "TERM", "HUP"].iter().enumerate() {
        let report_path = tmp.path().join(format!("report-{round}.json"));
        let db = format!("r{round}");
        let child = oxidump()
            .arg("restore")
            .arg(&backup)
            .args(["--uri", &target.uri(), "-j", "2", "-q"])
            .args(["--ns-from", "src.*", "--ns-to", &format!("{db}.*")])
            .arg("--report-json")
            .arg(&report_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn restore");
        until("documents arrive", || {
            (0..4)
                .map(|c| count(&tc, &db, &format!("c{c}")))
                .sum::<u64>()
                > 5_000
        });
        signal(child.id(), sig);
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "SIG{sig}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains("interrupted: the target holds a partial restore"),
            "{err}"
        );
        // What the report says is what the server holds, now that the process is gone.
        let r = report(&report_path);
        assert_eq!(r["interrupted"], true);
        let mut unfinished = 0;
        for n in r["namespaces"].as_array().expect("namespaces") {
            let name = n["target"].as_str().expect("target");
            let coll = name.split_once('.').expect("db.coll").1;
            let status = n["status"].as_str().expect("status");
            assert!(
                ["restored", "interrupted", "not started"].contains(&status),
                "{name}: {status}"
            );
            assert_eq!(n["unacknowledged"], 0, "{name}: {n}");
            let held = count(&tc, &db, coll);
            assert_eq!(n["inserted"].as_u64(), Some(held), "SIG{sig} {name}: {n}");
            if status == "restored" {
                assert_eq!(held, 60_000, "{name}");
            } else {
                unfinished += 1;
            }
        }
        assert!(
            unfinished > 0,
            "SIG{sig}: the restore was done before the signal"
        );
    }
    // Told twice: it stops waiting (killing its operations where the server allows);
    // what it could not wait for is reported unacknowledged, never as inserted.
    let report_path = tmp.path().join("report-twice.json");
    let child = oxidump()
        .arg("restore")
        .arg(&backup)
        .args(["--uri", &target.uri(), "-j", "4", "-q"])
        .args(["--ns-from", "src.*", "--ns-to", "twice.*"])
        .arg("--report-json")
        .arg(&report_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn restore");
    until("documents arrive", || {
        (0..4)
            .map(|c| count(&tc, "twice", &format!("c{c}")))
            .sum::<u64>()
            > 5_000
    });
    signal(child.id(), "INT");
    std::thread::sleep(Duration::from_millis(50));
    signal(child.id(), "INT");
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "twice: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let r = report(&report_path);
    for n in r["namespaces"].as_array().expect("namespaces") {
        let coll = n["target"]
            .as_str()
            .expect("target")
            .split_once('.')
            .expect("db.c")
            .1;
        let acked = n["inserted"].as_u64().expect("inserted");
        let unknown = n["unacknowledged"].as_u64().expect("unacknowledged");
        let held = count(&tc, "twice", coll);
        assert!(
            acked <= held && held <= acked + unknown,
            "twice {coll}: {held} held: {n}"
        );
    }

    // Nothing is still being written: an immediate run again replaces everything
    // cleanly, without a duplicate key.
    let (code, _, err) = output(
        oxidump()
            .arg("restore")
            .arg(&backup)
            .args(["--uri", &target.uri(), "--drop", "-q"])
            .args(["--ns-from", "src.*", "--ns-to", "r0.*"]),
        None,
    );
    assert_eq!(code, 0, "{err}");
    for c in 0..4 {
        assert_eq!(count(&tc, "r0", &format!("c{c}")), 60_000);
    }
}

#[test]
fn a_restore_whose_server_dies_counts_what_was_acknowledged() {
    let source = PrivateServer::start(&[]);
    fill(&source.client(), "src", 1, 200_000, 100);
    let tmp = tempfile::tempdir().expect("temp dir");
    let backup = tmp.path().join("src.oxd");
    crate::common::run(
        oxidump()
            .args(["dump", "--uri", &source.uri(), "--db", "src", "-q", "--out"])
            .arg(&backup),
        0,
    );
    drop(source);
    let mut target = PrivateServer::start(&[]);
    let report_path = tmp.path().join("report.json");
    let child = oxidump()
        .arg("restore")
        .arg(&backup)
        .args(["--uri", &target.uri(), "-q", "--report-json"])
        .arg(&report_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn restore");
    let tc = target.client();
    until("documents arrive", || count(&tc, "src", "c0") > 20_000);
    target.kill();
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The lost server is said in words, once per line, never as the driver's debug
    // rendering.
    for internal in ["Kind:", "labels:", "source: Some", "Error {"] {
        assert!(!err.contains(internal), "{internal}: {err}");
    }
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let distinct: std::collections::BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(distinct.len(), lines.len(), "a line said twice: {err}");
    target.restart();
    let held = count(&target.client(), "src", "c0");
    let r = report(&report_path);
    let n = &r["namespaces"][0];
    let acked = n["inserted"].as_u64().expect("inserted");
    let unknown = n["unacknowledged"].as_u64().expect("unacknowledged");
    assert!(
        acked <= held && held <= acked + unknown,
        "the server holds {held}, the report says {acked} acknowledged and {unknown} unanswered: {n}"
    );
}

#[test]
fn a_cut_stream_restores_every_namespace_that_ended_before_the_cut() {
    let mut guard = DbGuard::new("cut_a");
    let by_path = guard.name().to_string();
    let by_pipe = guard.add("cut_b");
    let tmp = tempfile::tempdir().expect("temp dir");
    // 8 namespaces of 3 frames of 500 documents; cut inside frame 1 of namespace 5.
    let full = archive_in_order(8, 3, 500, 200);
    let idx = Index::open(&mut std::io::Cursor::new(&full)).expect("index");
    let cut_at = idx.footer.frames_of(5)[1].offset as usize + 1000;
    let cut = write(tmp.path(), "cut.oxd", &full[..cut_at]);
    for (db, stdin) in [(&by_path, false), (&by_pipe, true)] {
        let report_path = tmp.path().join(format!("{db}.json"));
        let mut cmd = oxidump();
        cmd.arg("restore")
            .arg(if stdin { Path::new("-") } else { &cut })
            .args(["--uri", &server().uri, "--ns-from", "db.*"])
            .args(["--ns-to", &format!("{db}.*"), "-q", "-j", "8"])
            .arg("--report-json")
            .arg(&report_path);
        let (code, _, err) = output(&mut cmd, stdin.then_some(&cut));
        assert_eq!(code, 1, "stdin {stdin}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let r = report(&report_path);
        for n in 0..8 {
            let coll = &ns_name(n)["db.".len()..];
            let held = count(&client(), db, coll);
            let entry = &r["namespaces"][n];
            match n {
                0..5 => {
                    assert_eq!(held, 1500, "stdin {stdin}: {coll} ended before the cut");
                    assert_eq!(entry["status"], "restored", "stdin {stdin}: {entry}");
                }
                // The frame before the cut is in.
                5 => {
                    assert_eq!(held, 500, "stdin {stdin}: {coll}: {entry}");
                    assert_eq!(entry["status"], "failed", "stdin {stdin}: {entry}");
                }
                _ => assert_eq!(held, 0, "stdin {stdin}: {coll}"),
            }
        }
    }
}

/// The hidden temporaries of `dest` in its directory.
fn partials(dest: &Path) -> Vec<PathBuf> {
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

/// Bytes under `p` (a file, or every file of a directory tree).
fn size_of(p: &Path) -> u64 {
    if p.is_file() {
        return fs::metadata(p).map_or(0, |m| m.len());
    }
    fs::read_dir(p)
        .map(|d| d.flatten().map(|e| size_of(&e.path())).sum())
        .unwrap_or(0)
}

#[test]
fn an_interrupted_dump_leaves_nothing_that_looks_complete_and_the_next_run_cleans_up() {
    let guard = DbGuard::new("killed_dump");
    let db = guard.name().to_string();
    fill(&client(), &db, 3, 40_000, 400);
    let tmp = tempfile::tempdir().expect("temp dir");
    for (format, name) in [("mongodump-dir", "dump"), ("oxd", "x.oxd")] {
        let dest = tmp.path().join(name);
        let dump = || {
            let mut cmd = oxidump();
            cmd.args(["dump", "--uri", &server().uri, "--db", &db, "-j", "1"])
                .args(["--format", format, "--out"])
                .arg(&dest)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            cmd
        };
        // SIGKILL: the temporary stays, and is recognisably partial.
        let mut child = dump().spawn().expect("spawn dump");
        until("the dump has written something", || {
            partials(&dest)
                .first()
                .is_some_and(|p| size_of(p) > 1 << 20)
        });
        signal(child.id(), "KILL");
        let _ = child.wait();
        let left = partials(&dest);
        assert_eq!(left.len(), 1, "{format}: {left:?}");
        assert!(!dest.exists(), "{format}");
        let (code, out, err) = output(oxidump().args(["verify", "-q"]).arg(&left[0]), None);
        let out = String::from_utf8_lossy(&out);
        assert_eq!(code, 1, "{format}: {out}{err}");
        assert!(
            out.contains("partial output of an interrupted run"),
            "{format}: {out}"
        );
        // (ls lists what is intact, or stops at the cut-off end of a file.)
        let (code, out, err) = output(oxidump().arg("ls").arg(&left[0]), None);
        let out = String::from_utf8_lossy(&out);
        assert_eq!(code, 1, "{format}: {out}{err}");
        assert!(
            out.contains("partial output of an interrupted run")
                || err.contains("partial output of an interrupted run"),
            "{format}: {out}{err}"
        );
        // Converting it would make it look complete: refused. Restoring it restores
        // what it holds, and says it is partial.
        let (code, _, err) = output(
            oxidump()
                .arg("convert")
                .arg(&left[0])
                .arg(tmp.path().join("converted.oxd"))
                .args(["--to", "oxd", "-q"]),
            None,
        );
        assert_eq!(code, 1, "{format}: {err}");
        assert!(
            err.contains("partial output of an interrupted run"),
            "{format}: {err}"
        );
        let (code, out, err) = output(
            oxidump()
                .arg("restore")
                .arg(&left[0])
                .args(["--uri", &server().uri, "--dry-run", "--ns-from", "*"])
                .args(["--ns-to", &format!("{db}_elsewhere.*")]),
            None,
        );
        let out = String::from_utf8_lossy(&out);
        assert_eq!(code, 1, "{format}: {out}{err}");
        assert!(
            out.contains("partial output of an interrupted run"),
            "{format}: {out}{err}"
        );

        // The leftover of the killed run is removed by the next run to the same place.
        let out = dump().output().expect("dump");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {err}");
        assert!(
            err.contains("left by an interrupted run"),
            "{format}: {err}"
        );
        assert!(
            partials(&dest).is_empty(),
            "{format}: {:?}",
            partials(&dest)
        );
        let (code, out, err) = output(oxidump().args(["verify", "-q"]).arg(&dest), None);
        assert_eq!(code, 0, "{format}: {}{err}", String::from_utf8_lossy(&out));

        // SIGHUP is a stop like SIGTERM: exit 3, nothing left that looks complete. An
        // OXD file keeps what it holds for --resume, recognisably partial; a directory
        // is removed.
        let hup = tmp.path().join(format!("hup-{name}"));
        let child = oxidump()
            .args(["dump", "--uri", &server().uri, "--db", &db, "-j", "1"])
            .args(["--format", format, "--out"])
            .arg(&hup)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dump");
        until("the next dump has written something", || {
            partials(&hup).iter().any(|p| size_of(p) > 1 << 20)
        });
        signal(child.id(), "HUP");
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{format}: SIGHUP: {err}");
        assert!(!hup.exists(), "{format}");
        let left = partials(&hup);
        if format == "oxd" {
            assert_eq!(left.len(), 1, "{format}: SIGHUP left {left:?}");
            assert!(err.contains("--resume"), "{format}: {err}");
            let (code, out, err) = output(oxidump().args(["verify", "-q"]).arg(&left[0]), None);
            let out = String::from_utf8_lossy(&out);
            assert_eq!(code, 1, "{format}: {out}{err}");
            assert!(
                out.contains("partial output of an interrupted run"),
                "{format}: {out}"
            );
        } else {
            assert!(left.is_empty(), "{format}: SIGHUP left {left:?}");
        }
    }
}

/// The hidden temporaries under `dir`, whatever they were for.
fn hidden_partials(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with('.') && n.contains(".partial-")
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_snapshot_killed_in_a_repository_is_removed_by_the_next_snapshot() {
    // A snapshot is a dump of the whole server (with its oplog window): a server of
    // its own.
    let source = PrivateServer::start(&[]);
    let uri = source.uri();
    fill(&source.client(), "killed_snapshot", 3, 40_000, 400);
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = tmp.path().join("repo");
    let snapshots = repo.join("snapshots");
    let snapshot = || {
        let mut cmd = oxidump();
        cmd.args(["dump", "--uri", &uri, "-j", "1", "--repo"])
            .arg(&repo)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let mut child = snapshot().spawn().expect("spawn dump");
    until("the snapshot has written something", || {
        hidden_partials(&snapshots)
            .first()
            .is_some_and(|p| size_of(p) > 1 << 20)
    });
    signal(child.id(), "KILL");
    let _ = child.wait();
    let left = hidden_partials(&snapshots);
    assert_eq!(left.len(), 1, "{left:?}");
    // A reader of the repository sees no snapshot in it.
    let (code, out, err) = output(oxidump().args(["ls", "--json"]).arg(&repo), None);
    let listing: Value = serde_json::from_slice(&out).expect("ls --json");
    assert_eq!(code, 0, "{listing}{err}");
    assert_eq!(
        listing["snapshots"].as_array().map(Vec::len),
        Some(0),
        "{listing}"
    );
    // The next snapshot has a name of its own (its start's second), and still removes
    // what the killed one left.
    std::thread::sleep(Duration::from_millis(1100));
    let out = snapshot().output().expect("dump");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("left by an interrupted run"), "{err}");
    assert!(
        hidden_partials(&snapshots).is_empty(),
        "{:?}",
        hidden_partials(&snapshots)
    );
    let (code, out, err) = output(oxidump().args(["ls", "--json"]).arg(&repo), None);
    let listing: Value = serde_json::from_slice(&out).expect("ls --json");
    assert_eq!(code, 0, "{listing}{err}");
    assert_eq!(
        listing["snapshots"].as_array().map(Vec::len),
        Some(1),
        "{listing}"
    );
}

#[test]
fn errors_say_their_cause_once_in_one_line() {
    // Missing credentials: one short line, no dump of the server's reply.
    let auth = PrivateServer::start(&["--auth"]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let (code, _, err) = output(
        oxidump()
            .args(["dump", "--uri", &auth.uri(), "-q", "--out"])
            .arg(tmp.path().join("x.oxd")),
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.len() < 300, "{} characters: {err}", err.len());
    assert!(err.contains("requires authentication"), "{err}");
    assert!(err.contains("user and password"), "{err}");
    for internal in ["RawDocumentBuf", "labels", "Kind:"] {
        assert!(!err.contains(internal), "{internal}: {err}");
    }

    // An option without a value is a bad connection string, not an unreachable server.
    let (code, _, err) = output(
        oxidump()
            .args([
                "dump",
                "-q",
                "--uri",
                &format!("mongodb://{}/?replicaSet=", auth.addr()),
            ])
            .arg("--out")
            .arg(tmp.path().join("y.oxd")),
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("option replicaSet has no value"), "{err}");
    assert!(!err.contains("cannot reach"), "{err}");

    // A full disk is said once.
    let oxd = write(tmp.path(), "a.oxd", &archive(2, 2, 100, 500));
    let full = fs::OpenOptions::new().write(true).open("/dev/full");
    if let Ok(full) = full {
        let out = oxidump()
            .arg("convert")
            .arg(&oxd)
            .args(["-", "--to", "mongodump-archive", "-q"])
            .stdout(Stdio::from(full))
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
    }
}

/// Flips a byte in the payload of the NS_END record of namespace `ns`.
fn damage_end(oxd: &mut [u8], ns: usize) {
    let idx = Index::open(&mut std::io::Cursor::new(&*oxd)).expect("index");
    let at = idx.footer.namespaces[ns].end_offset as usize + oxidump::oxd::record::LEN + 5;
    oxd[at] ^= 0x55;
}

#[test]
fn a_damaged_end_record_gives_the_same_outcome_by_path_and_by_pipe() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut bad = archive_in_order(3, 2, 50, 100);
    damage_end(&mut bad, 1);
    let p = write(tmp.path(), "bad-end.oxd", &bad);
    let (code, out, _) = output(oxidump().args(["verify", "-q"]).arg(&p), None);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out));
    // cat: every document, then the damage, exit 1, by path as by pipe.
    let expected: Vec<u8> = (0..100).flat_map(|i| doc_of(1, i, 100)).collect();
    for stdin in [false, true] {
        let mut cmd = oxidump();
        cmd.arg("cat")
            .arg(if stdin { Path::new("-") } else { &p })
            .args(["--ns", &ns_name(1)]);
        let (code, out, err) = output(&mut cmd, stdin.then_some(&p));
        assert_eq!(code, 1, "stdin {stdin}: {err}");
        assert!(
            err.contains("NS_END record of db.c1-data"),
            "stdin {stdin}: {err}"
        );
        assert_eq!(out, expected, "stdin {stdin}");
    }

    // restore: everything restored, the damage reported, exit 1, by path as by pipe.
    let mut guard = DbGuard::new("bad_end_a");
    let by_pipe = guard.add("bad_end_b");
    let by_path = guard.name().to_string();
    for (db, stdin) in [(&by_path, false), (&by_pipe, true)] {
        let report_path = tmp.path().join(format!("{db}.json"));
        let mut cmd = oxidump();
        cmd.arg("restore")
            .arg(if stdin { Path::new("-") } else { &p })
            .args(["--uri", &server().uri, "--ns-from", "db.*"])
            .args(["--ns-to", &format!("{db}.*")])
            .arg("--report-json")
            .arg(&report_path);
        let (code, _, err) = output(&mut cmd, stdin.then_some(&p));
        assert_eq!(code, 1, "stdin {stdin}: {err}");
        assert!(
            err.contains("NS_END record of db.c1-data"),
            "stdin {stdin}: {err}"
        );
        let r = report(&report_path);
        for n in 0..3 {
            let coll = &ns_name(n)["db.".len()..];
            assert_eq!(count(&client(), db, coll), 100, "stdin {stdin}: {coll}");
            let entry = &r["namespaces"][n];
            assert_eq!(entry["status"], "restored", "stdin {stdin}: {entry}");
            assert_eq!(
                entry["damaged"].as_array().map_or(0, Vec::len),
                usize::from(n == 1),
                "stdin {stdin}: {entry}"
            );
        }
    }
}

#[test]
fn a_restore_from_a_pipe_that_stays_open_stops_when_told() {
    let guard = DbGuard::new("idle_pipe");
    let db = guard.name().to_string();
    // Small frames: far more records in the first half than are read ahead.
    let full = archive_in_order(3, 40, 100, 300);
    let report_path = tempfile::tempdir().expect("temp dir");
    let report_path = report_path.path().join("report.json");
    let mut child = oxidump()
        .args([
            "restore",
            "-",
            "--uri",
            &server().uri,
            "-q",
            "--ns-from",
            "db.*",
        ])
        .args(["--ns-to", &format!("{db}.*")])
        .arg("--report-json")
        .arg(&report_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn restore");
    // Half the archive, and the pipe left open: the reader waits for more.
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&full[..full.len() / 2]).expect("write");
    stdin.flush().expect("flush");
    until("documents arrive", || {
        count(&client(), &db, &ns_name(0)["db.".len()..]) > 0
    });
    signal(child.id(), "INT");
    // It ends on its own although its input never does (a stuck process fails here).
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the restore still runs after SIGINT, waiting for its input");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert_eq!(status.code(), Some(3), "{err}");
    let r = report(&report_path);
    assert_eq!(r["interrupted"], true);
    for n in r["namespaces"].as_array().expect("namespaces") {
        let coll = n["target"]
            .as_str()
            .expect("target")
            .split_once('.')
            .expect("db.c")
            .1;
        assert_eq!(
            n["inserted"].as_u64(),
            Some(count(&client(), &db, coll)),
            "{n}"
        );
    }
}

#[test]
fn told_twice_while_requests_wait_for_a_server_that_does_not_answer_it_stops_waiting() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let backup = write(tmp.path(), "b.oxd", &archive(4, 12, 2_000, 300));
    let mut target = PrivateServer::start(&[]);
    let tc = target.client();
    let report_path = tmp.path().join("report.json");
    let child = oxidump()
        .arg("restore")
        .arg(&backup)
        .args(["--uri", &target.uri(), "-j", "2", "-q"])
        .arg("--report-json")
        .arg(&report_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn restore");
    until("documents arrive", || {
        (0..4)
            .map(|n| count(&tc, "db", &format!("c{n}-data")))
            .sum::<u64>()
            > 0
    });
    // The server stops answering: the requests the restore sends from now on wait.
    signal(target.pid(), "STOP");
    std::thread::sleep(Duration::from_millis(500));
    signal(child.id(), "INT");
    std::thread::sleep(Duration::from_millis(500));
    signal(child.id(), "INT");
    let out = child.wait_with_output().expect("wait");
    signal(target.pid(), "CONT");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let r = report(&report_path);
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("stopped again while waiting for the server"),
        "{warnings}"
    );
    // The server finishes what it had received: then it holds at least what was
    // acknowledged and at most that plus what was left unanswered.
    let held = || -> u64 {
        (0..4)
            .map(|n| count(&tc, "db", &format!("c{n}-data")))
            .sum()
    };
    let mut last = held();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = held();
        if now == last {
            break;
        }
        last = now;
    }
    let mut unknown_total = 0;
    for n in r["namespaces"].as_array().expect("namespaces") {
        let coll = n["target"]
            .as_str()
            .expect("target")
            .split_once('.')
            .expect("db.c")
            .1;
        let acked = n["inserted"].as_u64().expect("inserted");
        let unknown = n["unacknowledged"].as_u64().expect("unacknowledged");
        let held = count(&tc, "db", coll);
        assert!(
            acked <= held && held <= acked + unknown,
            "{coll}: {held} held: {n}"
        );
        unknown_total += unknown;
    }
    assert!(
        unknown_total > 0,
        "no request was waiting for the server: {r}"
    );
    target.kill();
}

#[test]
fn a_dump_stopped_while_it_plans_stops_cleanly() {
    let guard = DbGuard::new("plan_stop");
    let db = guard.name().to_string();
    fill(&client(), &db, 2, 2_000, 100);
    let tmp = tempfile::tempdir().expect("temp dir");
    for (sig, format) in [("INT", "oxd"), ("TERM", "mongodump-dir"), ("HUP", "oxd")] {
        let dest = tmp.path().join(format!("{sig}.out"));
        let mut cmd = oxidump();
        cmd.args([
            "dump",
            "--uri",
            &server().uri,
            "--db",
            &db,
            "--format",
            format,
        ])
        .arg("--out")
        .arg(&dest)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
        // Held once the namespaces are listed and planned, before anything is written.
        let held = crate::common::Held::start(&mut cmd, "dump-planned");
        let (code, err) = held.signal(sig);
        assert_eq!(code, Some(3), "SIG{sig}: {err}");
        assert!(err.contains("interrupted"), "SIG{sig}: {err}");
        assert!(!dest.exists(), "SIG{sig}");
        assert!(
            partials(&dest).is_empty(),
            "SIG{sig}: {:?}",
            partials(&dest)
        );
    }
}
