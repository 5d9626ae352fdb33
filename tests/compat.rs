//! The `mongodump` and `mongorestore` front ends, run as the binary against the test
//! server: mongo-tools command lines as they are, their defaults (`dump/`, merging into
//! it, restoring over existing data and counting duplicate keys, `--drop`), the binary
//! called through a symlink named `mongodump`, one collection's BSON on standard output,
//! one `.bson` file restored with `-d`/`-c`, OXD output with `--oxd`, and the native
//! commands refusing mongo-tools spellings.

use std::path::{Path, PathBuf};
use std::process::Command;

use bson::{Document, doc};

use crate::common::{
    DbGuard, block_on, client, collection_digest, docs_digest, oxidump, run, server,
};

/// Fills `db` with two collections (one with a secondary index) and returns their names.
fn seed(db: &str) -> [&'static str; 2] {
    let c = client();
    block_on(async {
        let orders = c.database(db).collection::<Document>("orders");
        let docs: Vec<Document> = (0..250)
            .map(|i| doc! {"_id": i, "sku": format!("s{}", i % 7), "qty": i64::from(i) * 3, "price": f64::from(i) / 4.0})
            .collect();
        orders.insert_many(docs).await.expect("insert orders");
        orders
            .create_index(mongodb::IndexModel::builder().keys(doc! {"sku": 1}).build())
            .await
            .expect("index");
        let users = c.database(db).collection::<Document>("users");
        let docs: Vec<Document> = (0..40)
            .map(|i| doc! {"name": format!("u{i}"), "tags": ["a", "b"], "nested": {"n": i}})
            .collect();
        users.insert_many(docs).await.expect("insert users");
    });
    ["orders", "users"]
}

/// Runs `cmd` and returns its exit code and outputs, whatever the code.
pub(crate) fn run_any(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn front(tool: &str, cwd: &Path) -> Command {
    let mut cmd = oxidump();
    cmd.arg(tool).current_dir(cwd);
    cmd
}

fn host_port() -> (String, String) {
    let uri = &server().uri;
    let rest = uri.split_once("://").expect("scheme").1;
    let hosts = rest.split(['/', '?']).next().expect("hosts");
    let hosts = hosts.rsplit('@').next().expect("hosts");
    let first = hosts.split(',').next().expect("a host");
    let (h, p) = first.rsplit_once(':').expect("host:port");
    (h.to_string(), p.to_string())
}

fn same_collections(a: &str, b: &str, colls: &[&str]) {
    for c in colls {
        assert_eq!(
            collection_digest(a, c),
            collection_digest(b, c),
            "{a}.{c} vs {b}.{c}"
        );
    }
}

pub(crate) fn index_names(db: &str, coll: &str) -> Vec<String> {
    let c = client();
    let coll = c.database(db).collection::<Document>(coll);
    let mut names = block_on(async { coll.list_index_names().await }).expect("list indexes");
    names.sort();
    names
}

/// The line mongorestore ends with: "N document(s) restored successfully. M document(s) failed to restore."
pub(crate) fn restored_counts(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("document(s) restored successfully"))
        .unwrap_or_else(|| panic!("no final line in:\n{stderr}"));
    let text = line.split('\t').nth(1).expect("timestamped line");
    let nums: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn mongodump_to_dump_dir_then_mongorestore_like_mongo_tools() {
    let mut g = DbGuard::new("compat_src");
    let src = g.name().to_string();
    let dst = g.add("compat_dst");
    let colls = seed(&src);
    let tmp = tempfile::tempdir().expect("tempdir");
    // The default output is dump/ in the current directory.
    let (_, _, err) = run(
        front("mongodump", tmp.path())
            .arg(&server().uri)
            .args(["-d", &src]),
        0,
    );
    assert!(
        err.contains(&format!("done dumping {src}.orders (250 documents")),
        "{err}"
    );
    for c in colls {
        assert!(
            tmp.path().join(format!("dump/{src}/{c}.bson")).is_file(),
            "{c}"
        );
        assert!(
            tmp.path()
                .join(format!("dump/{src}/{c}.metadata.json"))
                .is_file(),
            "{c}"
        );
    }
    // A database directory restored under another name with -d.
    let dbdir = format!("dump/{src}");
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", &dst, &dbdir]),
        0,
    );
    assert_eq!(restored_counts(&err), (290, 0), "{err}");
    same_collections(&src, &dst, &colls);
    assert_eq!(index_names(&dst, "orders"), ["_id_", "sku_1"]);
    // Again, without --drop: mongorestore inserts over existing data and counts the
    // duplicate keys, and that is not a failure.
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", &dst, &dbdir]),
        0,
    );
    assert_eq!(restored_counts(&err), (0, 290), "{err}");
    assert!(err.contains("duplicate key"), "{err}");
    same_collections(&src, &dst, &colls);
    // With --stopOnError the duplicates fail the restore.
    let (code, _, err) = run_any(front("mongorestore", tmp.path()).arg(&server().uri).args([
        "-d",
        &dst,
        "--stopOnError",
        &dbdir,
    ]));
    assert_eq!(code, 1, "{err}");
    // --drop replaces each collection: nothing fails.
    block_on(async {
        client()
            .database(&dst)
            .collection::<Document>("users")
            .insert_one(doc! {"extra": true})
            .await
    })
    .expect("insert");
    let (_, _, err) = run(
        front("mongorestore", tmp.path()).arg(&server().uri).args([
            "--drop",
            "--nsInclude",
            &format!("{src}.*"),
            "--nsFrom",
            &format!("{src}.*"),
            "--nsTo",
            &format!("{dst}.*"),
        ]),
        0,
    );
    assert_eq!(restored_counts(&err), (290, 0), "{err}");
    same_collections(&src, &dst, &colls);
}

#[test]
fn mongodump_merges_into_an_existing_dump_dir() {
    let mut g = DbGuard::new("compat_merge_a");
    let a = g.name().to_string();
    let b = g.add("compat_merge_b");
    seed(&a);
    seed(&b);
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(tmp.path().join("dump")).expect("mkdir");
    std::fs::write(tmp.path().join("dump/notes.txt"), b"keep me").expect("write");
    run(
        front("mongodump", tmp.path())
            .arg(&server().uri)
            .args(["-d", &a]),
        0,
    );
    run(
        front("mongodump", tmp.path())
            .arg(&server().uri)
            .args(["-d", &b, "-c", "users"]),
        0,
    );
    let dump = tmp.path().join("dump");
    assert_eq!(
        std::fs::read(dump.join("notes.txt")).expect("read"),
        b"keep me"
    );
    assert!(dump.join(format!("{a}/orders.bson")).is_file());
    assert!(dump.join(format!("{b}/users.bson")).is_file());
    assert!(!dump.join(format!("{b}/orders.bson")).exists());
    // Dumping a again replaces its files with the new content.
    block_on(async {
        client()
            .database(&a)
            .collection::<Document>("users")
            .insert_one(doc! {"late": 1})
            .await
    })
    .expect("insert");
    run(
        front("mongodump", tmp.path())
            .arg(&server().uri)
            .args(["-d", &a, "-c", "users"]),
        0,
    );
    let bytes = std::fs::read(dump.join(format!("{a}/users.bson"))).expect("read");
    let docs = split_bson(&bytes);
    assert_eq!(docs_digest(docs), collection_digest(&a, "users"));
    // No temporary directory is left behind.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["dump"]);
}

fn split_bson(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while b.len() >= 5 {
        let n = i32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
        out.push(b[..n].to_vec());
        b = &b[n..];
    }
    assert!(b.is_empty(), "trailing bytes");
    out
}

#[cfg(unix)]
#[test]
fn binary_called_mongodump_and_mongorestore_through_symlinks() {
    let mut g = DbGuard::new("compat_link_src");
    let src = g.name().to_string();
    let dst = g.add("compat_link_dst");
    let colls = seed(&src);
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    for name in ["mongodump", "mongorestore"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_oxidump"), bin.join(name)).expect("symlink");
    }
    let (host, port) = host_port();
    let archive = tmp.path().join("nightly.archive.gz");
    let mut cmd = Command::new(bin.join("mongodump"));
    cmd.env_remove("MONGODB_URI").current_dir(tmp.path()).args([
        "-h",
        &host,
        "--port",
        &port,
        "--db",
        &src,
        "--gzip",
        &format!("--archive={}", archive.display()),
    ]);
    run(&mut cmd, 0);
    assert!(archive.is_file());
    assert!(
        !tmp.path().join("dump").exists(),
        "--archive writes no directory"
    );
    let mut cmd = Command::new(bin.join("mongorestore"));
    cmd.env_remove("MONGODB_URI").current_dir(tmp.path()).args([
        "--host",
        &format!("{host}:{port}"),
        "--gzip",
        &format!("--archive={}", archive.display()),
        "--nsFrom",
        &format!("{src}.*"),
        "--nsTo",
        &format!("{dst}.*"),
    ]);
    let (_, _, err) = run(&mut cmd, 0);
    assert_eq!(restored_counts(&err), (290, 0), "{err}");
    same_collections(&src, &dst, &colls);
    // The symlinked name also answers --help with the flag list.
    let (_, out, _) = run(Command::new(bin.join("mongorestore")).arg("--help"), 0);
    assert!(
        out.contains("--nsInclude") && out.contains("--oplogReplay"),
        "{out}"
    );
}

#[test]
fn one_collection_to_stdout_and_back_from_one_bson_file() {
    let mut g = DbGuard::new("compat_one");
    let src = g.name().to_string();
    let dst = g.add("compat_one_dst");
    seed(&src);
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = front("mongodump", tmp.path())
        .arg(&server().uri)
        .args([
            "-d",
            &src,
            "-c",
            "orders",
            "-q",
            r#"{"qty": {"$gte": 300}}"#,
            "-o",
            "-",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = split_bson(&out.stdout);
    assert_eq!(docs.len(), 150, "qty = 3i >= 300 for i >= 100");
    // Write it as mongodump would, with the metadata file beside it, and restore that
    // one file under another name.
    run(
        front("mongodump", tmp.path())
            .arg(&server().uri)
            .args(["-d", &src, "-c", "orders", "-o", "full"]),
        0,
    );
    let file: PathBuf = tmp.path().join(format!("full/{src}/orders.bson"));
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", &dst, "-c", "copy"])
            .arg(&file),
        0,
    );
    assert_eq!(restored_counts(&err), (250, 0), "{err}");
    assert_eq!(
        collection_digest(&dst, "copy"),
        collection_digest(&src, "orders")
    );
    assert_eq!(index_names(&dst, "copy"), ["_id_", "sku_1"]);
    // The same BSON from standard input (no metadata: no secondary index).
    let bson = std::fs::read(&file).expect("read");
    let mut child = front("mongorestore", tmp.path())
        .arg(&server().uri)
        .args(["-d", &dst, "-c", "piped", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &bson).expect("write");
    let done = child.wait_with_output().expect("wait");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        collection_digest(&dst, "piped"),
        collection_digest(&src, "orders")
    );
}

#[test]
fn oxd_output_through_the_front_end() {
    let g = DbGuard::new("compat_oxd");
    seed(g.name());
    let tmp = tempfile::tempdir().expect("tempdir");
    run(
        front("mongodump", tmp.path())
            .arg(&server().uri)
            .args(["-d", g.name(), "--oxd"]),
        0,
    );
    let oxd = tmp.path().join("dump.oxd");
    let (_, out, _) = run(oxidump().arg("verify").arg(&oxd), 0);
    assert!(out.contains("2 namespaces, 290 documents"), "{out}");
    // mongorestore reads it back from the positional path (its format is detected).
    let g2 = DbGuard::new("compat_oxd_dst");
    let dst = g2.name().to_string();
    let (_, _, err) = run(
        front("mongorestore", tmp.path()).arg(&server().uri).args([
            "--nsFrom",
            &format!("{}.*", g.name()),
            "--nsTo",
            &format!("{dst}.*"),
            "dump.oxd",
        ]),
        0,
    );
    assert_eq!(restored_counts(&err), (290, 0), "{err}");
    same_collections(g.name(), &dst, &["orders", "users"]);
}

#[test]
fn refusals_and_native_spellings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The issue's example: this used to print help and exit 0.
    let (code, out, err) = run_any(oxidump().args(["dump", "-h", "127.0.0.1", "--port", "27017"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("oxidump mongodump") && err.contains("--uri"),
        "{err}"
    );
    let (code, _, err) = run_any(oxidump().args(["restore", "--nsInclude", "a.*", "dump"]));
    assert_eq!(code, 2);
    assert!(err.contains("--ns-include"), "{err}");
    // Refused flags name themselves and fail with mongo-tools' status, before connecting.
    for (tool, flag) in [("mongodump", "--trace"), ("mongorestore", "--sslFIPSMode")] {
        let (code, _, err) = run_any(front(tool, tmp.path()).args([flag, "--host", "127.0.0.1:1"]));
        assert_eq!(code, 1, "{tool} {flag}: {err}");
        assert!(err.contains(flag) && err.contains("not supported"), "{err}");
    }
    // mongo-tools' own checks keep their words.
    let (code, _, err) = run_any(front("mongodump", tmp.path()).args(["-d", "a", "--oplog"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("--oplog mode only supported on full dumps"),
        "{err}"
    );
    assert!(!tmp.path().join("dump").exists());
}

/// `-u` without `-p` reads the password (one line of standard input when it is not a
/// terminal), and `--authenticationDatabase` says where the user is; the password
/// appears in no output.
#[test]
fn credentials_from_flags_and_a_prompted_password() {
    const PASSWORD: &str = "s3cret-Pw";
    let server = crate::common::private_server::PrivateServer::start(&["--auth"]);
    let anon = server.client();
    block_on(async {
        anon.database("admin")
            .run_command(doc! {"createUser": "backup", "pwd": PASSWORD, "roles": ["root"]})
            .await
    })
    .expect("create the first user through the localhost exception");
    let c = server.client_for(&server.uri_with_credentials("backup", PASSWORD));
    block_on(async {
        c.database("shop")
            .collection::<Document>("orders")
            .insert_many((0..30).map(|i| doc! {"_id": i}))
            .await
    })
    .expect("load");
    let (host, port) = server.addr().rsplit_once(':').expect("host:port");
    let tmp = tempfile::tempdir().expect("tempdir");
    let with_stdin = |args: &[&str], input: &str| {
        let mut child = front("mongodump", tmp.path())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let base = [
        "-h",
        host,
        "--port",
        port,
        "-u",
        "backup",
        "--authenticationDatabase",
        "admin",
        "-d",
        "shop",
    ];
    let (code, out, err) = with_stdin(&base, &format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "{err}");
    assert!(tmp.path().join("dump/shop/orders.bson").is_file(), "{err}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{err}");
    // A wrong password fails with mongo-tools' status and says why.
    let (code, _, err) = with_stdin(&base, "wrong\n");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("authentication"), "{err}");
    // Without --authenticationDatabase, mongo-tools authenticates against --db: the
    // user is in admin, so that fails.
    let (code, _, err) = with_stdin(
        &base[..6]
            .iter()
            .chain(["-d", "shop"].iter())
            .copied()
            .collect::<Vec<_>>(),
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 1, "{err}");
}

/// `--oplog` on a full dump writes `oplog.bson` at the root of `dump/`, as mongodump
/// does; a private server, so no other test's databases come and go during the dump.
#[test]
fn full_dump_with_oplog() {
    let server = crate::common::private_server::PrivateServer::start(&[]);
    let c = server.client();
    block_on(async {
        c.database("shop")
            .collection::<Document>("orders")
            .insert_many((0..20).map(|i| doc! {"_id": i}))
            .await
    })
    .expect("load");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, _, err) = run(
        front("mongodump", tmp.path()).args(["--host", server.addr(), "--oplog"]),
        0,
    );
    assert!(tmp.path().join("dump/oplog.bson").is_file(), "{err}");
    assert!(tmp.path().join("dump/shop/orders.bson").is_file(), "{err}");
    assert!(err.contains("oplog window"), "{err}");
}

/// `--fixDottedHashIndex` builds a hashed index on a dotted field as an ascending one,
/// and `--keepIndexVersion` keeps the dumped `v`.
#[test]
fn index_spec_flags() {
    let g = DbGuard::new("compat_idx");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(
        dir.join("c.bson"),
        doc! {"_id": 1, "a": {"b": 2}, "x": 3}
            .to_vec()
            .expect("bson"),
    )
    .expect("write");
    std::fs::write(
        dir.join("c.metadata.json"),
        r#"{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"},{"v":{"$numberInt":"1"},"key":{"a.b":"hashed"},"name":"ab_hashed"},{"v":{"$numberInt":"1"},"key":{"x":{"$numberInt":"1"}},"name":"x_1"}],"collectionName":"c"}"#,
    )
    .expect("write");
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", g.name(), "--fixDottedHashIndex", "--keepIndexVersion"])
            .arg(&dir),
        0,
    );
    assert_eq!(restored_counts(&err), (1, 0), "{err}");
    let c = client();
    let reply = block_on(async {
        c.database(g.name())
            .run_command(doc! {"listIndexes": "c"})
            .await
    })
    .expect("list indexes");
    let specs: Vec<Document> = reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .expect("first batch")
        .iter()
        .filter_map(|b| b.as_document().cloned())
        .collect();
    let named = |n: &str| {
        specs
            .iter()
            .find(|s| s.get_str("name").ok() == Some(n))
            .unwrap_or_else(|| panic!("{n} in {specs:?}"))
            .clone()
    };
    assert_eq!(
        named("ab_hashed").get_document("key").expect("key"),
        &doc! {"a.b": 1},
        "{specs:?}"
    );
    assert_eq!(
        named("x_1").get("v"),
        Some(&bson::Bson::Int32(1)),
        "{specs:?}"
    );
}

/// Index key values are restored as dumped (`{f: 1.0}` stays a double, as mongorestore
/// restores it); legacy values the server refuses (an empty string, a boolean) become
/// 1, and each conversion is reported.
#[test]
fn index_keys_keep_their_type_and_legacy_values_are_converted() {
    let g = DbGuard::new("compat_legacy");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(
        dir.join("c.bson"),
        doc! {"_id": 1, "f": 1, "a": 2, "b": 3}
            .to_vec()
            .expect("bson"),
    )
    .expect("write");
    std::fs::write(
        dir.join("c.metadata.json"),
        r#"{"indexes":[{"v":2,"key":{"_id":1},"name":"_id_","ns":"x.c"},{"v":2,"key":{"f":{"$numberDouble":"1.0"}},"name":"f_1","ns":"x.c"},{"v":1,"key":{"a":1,"b":""},"name":"a_1_b_","ns":"x.c"},{"v":1,"key":{"b":true},"name":"b_true","ns":"x.c"}],"collectionName":"c"}"#,
    )
    .expect("write");
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", g.name()])
            .arg(&dir),
        0,
    );
    assert_eq!(restored_counts(&err), (1, 0), "{err}");
    assert!(
        err.contains(r#"index "a_1_b_": legacy key {"a":1,"b":""} converted to {"a":1,"b":1}"#),
        "{err}"
    );
    assert!(
        err.contains(r#"index "b_true": legacy key {"b":true} converted to {"b":1}"#),
        "{err}"
    );
    let c = client();
    let reply = block_on(async {
        c.database(g.name())
            .run_command(doc! {"listIndexes": "c"})
            .await
    })
    .expect("list indexes");
    let specs: Vec<Document> = reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .expect("first batch")
        .iter()
        .filter_map(|b| b.as_document().cloned())
        .collect();
    let key = |n: &str| {
        specs
            .iter()
            .find(|s| s.get_str("name").ok() == Some(n))
            .and_then(|s| s.get_document("key").ok().cloned())
            .unwrap_or_else(|| panic!("{n} in {specs:?}"))
    };
    assert_eq!(
        key("f_1").get("f"),
        Some(&bson::Bson::Double(1.0)),
        "{specs:?}"
    );
    assert_eq!(key("a_1_b_"), doc! {"a": 1, "b": 1}, "{specs:?}");
    assert_eq!(key("b_true"), doc! {"b": 1}, "{specs:?}");
}

/// `--viewsAsCollections` dumps only the views, each as the documents it produces, and
/// they restore as plain collections.
#[test]
fn views_as_collections() {
    let mut g = DbGuard::new("compat_views");
    let src = g.name().to_string();
    let dst = g.add("compat_views_dst");
    seed(&src);
    let c = client();
    block_on(async {
        c.database(&src)
            .run_command(doc! {"create": "big_orders", "viewOn": "orders", "pipeline": [{"$match": {"qty": {"$gte": 600}}}]})
            .await
    })
    .expect("create view");
    let tmp = tempfile::tempdir().expect("tempdir");
    run(
        front("mongodump", tmp.path()).arg(&server().uri).args([
            "-d",
            &src,
            "--viewsAsCollections",
        ]),
        0,
    );
    let dir = tmp.path().join(format!("dump/{src}"));
    let names: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["big_orders.bson", "big_orders.metadata.json"],
        "only the view, as data"
    );
    let meta = std::fs::read_to_string(dir.join("big_orders.metadata.json")).expect("read");
    assert!(
        !meta.contains("viewOn") && !meta.contains("pipeline"),
        "{meta}"
    );
    let docs = split_bson(&std::fs::read(dir.join("big_orders.bson")).expect("read"));
    assert_eq!(docs.len(), 50, "qty = 3i >= 600 for 200 <= i < 250");
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", &dst])
            .arg(&dir),
        0,
    );
    assert_eq!(restored_counts(&err), (50, 0), "{err}");
    assert_eq!(collection_digest(&dst, "big_orders"), docs_digest(docs));
}

/// `--config` supplies the connection string, `--writeConcern` takes mongo-tools'
/// relaxed JSON, and `--dryRun` writes nothing.
#[test]
fn config_file_write_concern_and_dry_run() {
    let mut g = DbGuard::new("compat_cfg");
    let src = g.name().to_string();
    let dst = g.add("compat_cfg_dst");
    seed(&src);
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("tools.yaml");
    std::fs::write(&cfg, format!("# the server\nuri: '{}'\n", server().uri)).expect("write");
    let cfg = cfg.to_str().expect("utf-8").to_string();
    run(
        front("mongodump", tmp.path()).args(["--config", &cfg, "-d", &src]),
        0,
    );
    let dbdir = format!("dump/{src}");
    let (_, out, _) = run(
        front("mongorestore", tmp.path()).args(["--config", &cfg, "-d", &dst, "--dryRun", &dbdir]),
        0,
    );
    assert!(out.contains("nothing will be written"), "{out}");
    assert_eq!(
        collection_digest(&dst, "orders").0,
        0,
        "a dry run writes nothing"
    );
    let (_, _, err) = run(
        front("mongorestore", tmp.path()).args([
            "--config",
            &cfg,
            "-d",
            &dst,
            "--writeConcern",
            "{w: 1, wtimeout: 5000, fsync: true}",
            &dbdir,
        ]),
        0,
    );
    assert_eq!(restored_counts(&err), (290, 0), "{err}");
    same_collections(&src, &dst, &["orders", "users"]);
    // A config file with a key mongo-tools does not know is refused.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "user: someone\n").expect("write");
    let (code, _, err) = run_any(front("mongodump", tmp.path()).arg("--config").arg(&bad));
    assert_eq!(code, 1);
    assert!(err.contains("\"user\""), "{err}");
}

/// `--objcheck` checks every document before anything is inserted: a damaged file
/// restores nothing.
#[test]
fn objcheck_before_inserting() {
    let g = DbGuard::new("compat_objcheck");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).expect("mkdir");
    let mut good = Vec::new();
    for i in 0..10 {
        good.extend(doc! {"_id": i, "s": "text"}.to_vec().expect("bson"));
    }
    std::fs::write(dir.join("a.bson"), &good).expect("write");
    // A document whose string claims more bytes than it has, then a good one.
    let mut bad = doc! {"_id": 1, "s": "text"}.to_vec().expect("bson");
    let at = bad.len() - 10;
    bad[at] = 0x7f;
    bad.extend(doc! {"_id": 2}.to_vec().expect("bson"));
    std::fs::write(dir.join("b.bson"), &bad).expect("write");
    let (code, _, err) = run_any(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", g.name(), "--objcheck"])
            .arg(&dir),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--objcheck found invalid documents"), "{err}");
    assert_eq!(
        collection_digest(g.name(), "a").0,
        0,
        "nothing was restored"
    );
    std::fs::remove_file(dir.join("b.bson")).expect("rm");
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", g.name(), "--objcheck"])
            .arg(&dir),
        0,
    );
    assert_eq!(restored_counts(&err), (10, 0), "{err}");
}

/// `--oplogReplay --oplogFile F --oplogLimit T` replays the saved oplog after the data,
/// entries before `T` only (mongorestore's limit is exclusive); `--oplogReplay` on a dump
/// without `oplog.bson` is refused before anything is written.
#[test]
fn oplog_replay_flags() {
    let g = DbGuard::new("compat_oplog");
    let db = g.name();
    let colls = seed(db);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (h, p) = host_port();
    run(
        front("mongodump", tmp.path()).args(["--host", &h, "--port", &p, "-d", db]),
        0,
    );
    // Without oplog.bson in dump/, --oplogReplay is refused.
    let (code, _, err) = run_any(front("mongorestore", tmp.path()).args([
        "--host",
        &h,
        "--port",
        &p,
        "--oplogReplay",
        "--drop",
    ]));
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("oplog.bson"), "{err}");
    // A saved oplog of three inserts into orders, the last at or after the limit.
    let ns = format!("{db}.orders");
    let mut oplog = Vec::new();
    for (i, id) in [1000, 1001, 1002].into_iter().enumerate() {
        let entry = doc! {
            "op": "i", "ns": &ns, "o": {"_id": id, "sku": "oplog", "qty": 1i64, "price": 0.5},
            "ts": bson::Timestamp { time: 1_800_000_000, increment: i as u32 + 1 },
            "t": 1i64, "v": 2, "wall": bson::DateTime::from_millis(1_800_000_000_000),
        };
        oplog.extend(bson::serialize_to_vec(&entry).expect("encode"));
    }
    let file = tmp.path().join("saved-oplog.bson");
    std::fs::write(&file, oplog).expect("write oplog");
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .args(["--host", &h, "--port", &p, "--drop", "--oplogReplay"])
            .arg("--oplogFile")
            .arg(&file)
            .args(["--oplogLimit", "1800000000:3"]),
        0,
    );
    let c = client().database(db).collection::<Document>("orders");
    let mut ids: Vec<i32> = block_on(async {
        use futures_util::TryStreamExt as _;
        c.find(doc! {"sku": "oplog"})
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .expect("read")
    .iter()
    .map(|d| d.get_i32("_id").expect("_id"))
    .collect();
    ids.sort_unstable();
    assert_eq!(ids, [1000, 1001], "{err}");
    assert_eq!(
        block_on(async { c.count_documents(doc! {}).await }).expect("count"),
        252
    );
    let _ = colls;
}

/// A mongorestore whose standard error is not a terminal prints timestamped progress
/// lines (namespace, documents, rate) while it runs; told to stop (SIGINT) while its
/// input, an archive on standard input, is still open, it says that it was interrupted
/// and what the target holds, and exits 1 (mongo-tools' status for any failure); the
/// documents the server acknowledged are there.
#[test]
fn progress_lines_then_an_interrupted_restore_says_so() {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use crate::faults::{archive_in_order, ns_name, signal, until};
    let g = DbGuard::new("compat_intr");
    let db = g.name().to_string();
    let tmp = tempfile::tempdir().expect("tempdir");
    let full = archive_in_order(3, 40, 100, 300);
    let mut child = front("mongorestore", tmp.path())
        .arg(&server().uri)
        .args([
            "--archive",
            "--nsFrom",
            "db.*",
            "--nsTo",
            &format!("{db}.*"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mongorestore");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines() {
                lines.lock().unwrap().push(l.expect("stderr line"));
            }
        })
    };
    // Half the archive, the pipe left open: the restore waits for the rest.
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&full[..full.len() / 2]).expect("write");
    stdin.flush().expect("flush");
    let count = |coll: &str| {
        let c = client();
        block_on(async {
            c.database(&db)
                .collection::<Document>(coll)
                .count_documents(doc! {})
                .await
        })
        .expect("count")
    };
    let first = &ns_name(0)["db.".len()..];
    until("documents arrive", || count(first) > 0);
    // A progress line: a timestamp, a tab, a namespace with its documents and rate.
    let is_progress = |l: &String| {
        l.split_once('\t').is_some_and(|(ts, text)| {
            ts.len() == "2026-01-02T03:04:05.678+0000".len()
                && text.contains("-data  ")
                && text.contains(" documents/s")
        })
    };
    until("a progress line is printed", || {
        lines.lock().unwrap().iter().any(is_progress)
    });
    signal(child.id(), "INT");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "mongorestore still runs after SIGINT:\n{}",
                lines.lock().unwrap().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    reader.join().expect("stderr reader");
    let err = lines.lock().unwrap().join("\n");
    assert_eq!(status.code(), Some(1), "{err}");
    let rate = lines
        .lock()
        .unwrap()
        .iter()
        .find(|l| is_progress(l))
        .cloned()
        .expect("progress line");
    // Rates for people: one decimal at most.
    let per_sec = rate.rsplit("  ").next().expect("rate");
    let number = per_sec.trim_end_matches(" documents/s").replace(',', "");
    assert!(
        number.split_once('.').is_some_and(|(_, d)| d.len() == 1),
        "{rate}"
    );
    assert!(
        err.contains("signal 'interrupt' received; attempting to shut down"),
        "{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("restore interrupted: the target holds a partial restore"),
        "{err}"
    );
    let (restored, _) = restored_counts(&err);
    let held: u64 = (0..3).map(|n| count(&ns_name(n)["db.".len()..])).sum();
    assert_eq!(restored, held, "{err}");
}

/// `--quiet` silences progress only: the per-collection lines, errors (duplicate keys
/// here) and the summary are printed; `-v` adds the options the engine was given.
#[test]
fn quiet_keeps_errors_and_summary_and_verbose_adds_detail() {
    let mut g = DbGuard::new("compat_quiet_src");
    let src = g.name().to_string();
    let dst = g.add("compat_quiet_dst");
    seed(&src);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, _, err) = run(
        front("mongodump", tmp.path())
            .arg(&server().uri)
            .args(["-d", &src, "-v"]),
        0,
    );
    assert!(err.contains("oxidump dump: source"), "{err}");
    let dbdir = format!("dump/{src}");
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", &dst, "--quiet", &dbdir]),
        0,
    );
    assert!(!err.contains("oxidump restore:"), "{err}");
    assert_eq!(restored_counts(&err), (290, 0), "{err}");
    // Again: every document a duplicate key, reported also with --quiet.
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&server().uri)
            .args(["-d", &dst, "--quiet", "-v", &dbdir]),
        0,
    );
    assert!(err.contains("oxidump restore:"), "-v: {err}");
    assert!(
        err.contains("continuing through error") && err.contains("duplicate key"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "finished restoring {dst}.orders (0 documents, 250 failures)"
        )),
        "{err}"
    );
    assert_eq!(restored_counts(&err), (0, 290), "{err}");
}
