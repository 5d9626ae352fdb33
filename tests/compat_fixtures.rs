//! mongo-tools' own restore fixtures (`tests/fixtures/mongo-tools/`, from the
//! `mongorestore/testdata` directory of its repository) restored with the mongorestore
//! front end, each checked against what mongorestore leaves on the server: legacy index
//! specs, index key types, duplicate keys once converted, users and roles on a server
//! that cannot take stored credentials, oplog replay, gzip, names with special
//! characters, single `.bson` files with `-d`/`-c`, archives from a file and from
//! standard input, and a file that is not an archive.
//!
//! The fixtures name fixed databases (`test`, `db1`, `indextest`); the tests restore
//! them under names of their own (`--nsFrom`/`--nsTo`, or `-d`), so no two tests, and
//! no test and a user's data, meet.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use bson::{Bson, Document, doc};
use mongodb::Client;

use crate::common::private_server::PrivateServer;
use crate::common::{DbGuard, block_on, client, fixture_path, run, server};
use crate::compat::{front, index_names, restored_counts, run_any};

fn fixture(rel: &str) -> PathBuf {
    fixture_path(&format!("mongo-tools/{rel}"))
}

/// `mongorestore URI ARGS...`, from a scratch directory.
fn mongorestore(cwd: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = front("mongorestore", cwd);
    cmd.arg(&server().uri).args(args);
    cmd
}

/// The index specs of `db.coll`, by name.
fn index_specs(c: &Client, db: &str, coll: &str) -> Vec<Document> {
    let reply = block_on(async { c.database(db).run_command(doc! {"listIndexes": coll}).await })
        .unwrap_or_else(|e| panic!("listIndexes {db}.{coll}: {e}"));
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .expect("first batch")
        .iter()
        .filter_map(|b| b.as_document().cloned())
        .collect()
}

fn spec<'a>(specs: &'a [Document], name: &str) -> &'a Document {
    specs
        .iter()
        .find(|s| s.get_str("name").ok() == Some(name))
        .unwrap_or_else(|| panic!("no index {name} in {specs:?}"))
}

fn count(db: &str, coll: &str) -> u64 {
    let c = client();
    block_on(async {
        c.database(db)
            .collection::<Document>(coll)
            .count_documents(doc! {})
            .await
    })
    .unwrap_or_else(|e| panic!("counting {db}.{coll}: {e}"))
}

fn collections(c: &Client, db: &str) -> Vec<String> {
    let mut names = block_on(async { c.database(db).list_collection_names().await })
        .unwrap_or_else(|e| panic!("listing {db}: {e}"));
    names.sort();
    names
}

/// `indextestdump`: mongorestore refuses its index without `--convertLegacyIndexes`
/// and builds it converted with it; oxidump converts what the server refuses (the
/// boolean, the decimal zero, the empty string become 1; the double `1.0` stays a
/// double; the obsolete `safe` option is dropped), reports each conversion, and
/// restores the 100 documents.
#[test]
fn legacy_index_specs_are_converted() {
    let g = DbGuard::new("mt_legacy");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = fixture("indextestdump");
    let (_, _, err) = run(
        mongorestore(
            tmp.path(),
            &[
                "--nsFrom",
                "indextest.*",
                "--nsTo",
                &format!("{}.*", g.name()),
            ],
        )
        .arg(&dir),
        0,
    );
    assert_eq!(restored_counts(&err), (100, 0), "{err}");
    assert!(
        err.contains(r#"index "a_1_b_true": legacy key"#) && err.contains("converted to"),
        "{err}"
    );
    let specs = index_specs(&client(), g.name(), "test_collection");
    let ix = spec(&specs, "a_1_b_true");
    let key = ix.get_document("key").expect("key");
    assert_eq!(key.get("a"), Some(&Bson::Double(1.0)), "{ix}");
    for f in ["b", "c", "d"] {
        assert_eq!(key.get(f), Some(&Bson::Int32(1)), "{f} in {ix}");
    }
    assert!(!ix.contains_key("safe"), "{ix}");
    // --convertLegacyIndexes says what it would do anyway, and changes nothing.
    let (_, _, err) = run(
        mongorestore(
            tmp.path(),
            &[
                "--drop",
                "--convertLegacyIndexes",
                "--nsFrom",
                "indextest.*",
                "--nsTo",
                &format!("{}.*", g.name()),
            ],
        )
        .arg(&dir),
        0,
    );
    assert_eq!(restored_counts(&err), (100, 0), "{err}");
    assert_eq!(
        index_specs(&client(), g.name(), "test_collection").len(),
        2,
        "{err}"
    );
}

/// `coll_with_index`: `{f: 1.0}` is restored as a double, as mongorestore restores it.
#[test]
fn index_key_types_are_kept() {
    let g = DbGuard::new("mt_keytype");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, _, err) = run(
        mongorestore(tmp.path(), &["-d", g.name()]).arg(fixture("coll_with_index/test")),
        0,
    );
    assert_eq!(restored_counts(&err), (1, 0), "{err}");
    let specs = index_specs(&client(), g.name(), "foo");
    assert_eq!(
        spec(&specs, "f_1").get_document("key").expect("key"),
        &doc! {"f": 1.0},
        "{specs:?}"
    );
    assert_eq!(
        spec(&specs, "f_1")
            .get_document("key")
            .unwrap()
            .get("f")
            .map(Bson::element_type),
        Some(bson::spec::ElementType::Double)
    );
}

/// `duplicate_index_key`: `{foo: ""}`, `{foo: 1.0}` and `{foo: 1}` are one key once
/// converted; as mongorestore, the first is built, the others are reported and skipped,
/// and `{foo: 2}` is built too.
#[test]
fn indexes_that_are_duplicates_once_converted_are_skipped() {
    let g = DbGuard::new("mt_dupkey");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, _, err) = run(
        mongorestore(tmp.path(), &["-d", g.name()]).arg(fixture("duplicate_index_key/indextest")),
        0,
    );
    assert_eq!(restored_counts(&err), (0, 0), "{err}");
    assert_eq!(
        index_names(g.name(), "duplicate_index_key"),
        ["_id_", "foo_", "foo_2"],
        "{err}"
    );
    for skipped in ["foo_1.0", "foo_1"] {
        assert!(
            err.contains(&format!("index {skipped:?}")) && err.contains("skipped"),
            "{skipped}: {err}"
        );
    }
}

/// `usersdump` (a user with SCRAM-SHA-1 and -256 credentials, a role) together with a
/// database, restored whole onto a server with `--auth` that cannot take stored
/// credentials: refused before anything is written, the user named; with
/// `--usersWithoutCredentials`, the user exists with its roles (its password unknown)
/// and the role with its privileges.
#[test]
fn users_and_roles_on_a_server_without_stored_credentials() {
    let server = PrivateServer::start(&["--auth"]);
    let local = server.client();
    block_on(async {
        local
            .database("admin")
            .run_command(doc! {"createUser": "root", "pwd": "r00t-Pw", "roles": ["root"]})
            .await
    })
    .expect("first user");
    let uri = server.uri_with_credentials("root", "r00t-Pw");
    let c = server.client_for(&uri);
    // One dump directory: the users' admin and a database of data.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dump = tmp.path().join("dump");
    copy_dir(&fixture("usersdump"), &dump);
    copy_dir(&fixture("coll_with_index"), &dump);
    let (code, _, err) = run_any(front("mongorestore", tmp.path()).arg(&uri).arg(&dump));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("nothing was written")
            && err.contains("cannot take stored credentials")
            && err.contains("admin.reportsUser")
            && err.contains("--usersWithoutCredentials"),
        "{err}"
    );
    assert_eq!(collections(&c, "test"), Vec::<String>::new(), "{err}");
    let (_, _, err) = run(
        front("mongorestore", tmp.path())
            .arg(&uri)
            .arg("--usersWithoutCredentials")
            .arg(&dump),
        0,
    );
    assert!(err.contains("admin.reportsUser"), "{err}");
    assert_eq!(collections(&c, "test"), ["foo"]);
    let info = block_on(async {
        c.database("admin")
            .run_command(doc! {"usersInfo": {"user": "reportsUser", "db": "admin"}})
            .await
    })
    .expect("usersInfo");
    let user = info.get_array("users").unwrap()[0].as_document().unwrap();
    let mut roles: Vec<String> = user
        .get_array("roles")
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_document().unwrap();
            format!(
                "{}@{}",
                r.get_str("role").unwrap(),
                r.get_str("db").unwrap()
            )
        })
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            "read@products",
            "read@reporting",
            "read@sales",
            "readWrite@accounts"
        ]
    );
    let info = block_on(async {
        c.database("admin")
            .run_command(doc! {"rolesInfo": "manageOpRole", "showPrivileges": true})
            .await
    })
    .expect("rolesInfo");
    let role = info.get_array("roles").unwrap()[0].as_document().unwrap();
    let mut actions: Vec<String> = role
        .get_array("privileges")
        .unwrap()
        .iter()
        .flat_map(|p| {
            p.as_document()
                .unwrap()
                .get_array("actions")
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    actions.sort();
    assert_eq!(actions, ["inprog", "killCursors", "killop"], "{role}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// `oplogdump`: 5 documents, and an oplog that inserts 5 more; `--oplogReplay` applies
/// it after the data (10, as mongorestore counts), also under another database name.
/// `--oplogFile` next to the dump's own `oplog.bson` is refused, as mongorestore does.
#[test]
fn oplog_dump_replayed() {
    let g = DbGuard::new("mt_oplog");
    let tmp = tempfile::tempdir().expect("tempdir");
    let rename = ["--nsFrom", "db1.*", "--nsTo", &format!("{}.*", g.name())];
    let (_, _, err) = run(
        mongorestore(tmp.path(), &rename)
            .arg("--nsInclude=db1.*")
            .arg(fixture("oplogdump")),
        0,
    );
    assert_eq!(restored_counts(&err), (5, 0), "{err}");
    assert_eq!(count(g.name(), "c1"), 5);
    let (_, _, err) = run(
        mongorestore(tmp.path(), &rename)
            .args(["--nsInclude=db1.*", "--drop", "--oplogReplay"])
            .arg(fixture("oplogdump")),
        0,
    );
    assert_eq!(count(g.name(), "c1"), 10, "{err}");
    let (code, _, err) = run_any(
        mongorestore(tmp.path(), &rename)
            .args(["--drop", "--oplogReplay", "--oplogFile"])
            .arg(fixture("extra_oplog.bson"))
            .arg(fixture("oplogdump")),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot provide both an oplog.bson file and an oplog file"),
        "{err}"
    );
    assert_eq!(count(g.name(), "c1"), 10, "nothing written: {err}");
}

/// `prelude_gzip`: a `--gzip` dump directory, prelude included.
#[test]
fn gzipped_dump_directory() {
    let g = DbGuard::new("mt_gzip");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, _, err) = run(
        mongorestore(
            tmp.path(),
            &[
                "--gzip",
                "--nsFrom",
                "test.*",
                "--nsTo",
                &format!("{}.*", g.name()),
            ],
        )
        .arg(fixture("prelude_test/prelude_gzip")),
        0,
    );
    assert_eq!(restored_counts(&err), (1, 0), "{err}");
    assert_eq!(count(g.name(), "foo"), 1);
}

/// `specialcharacter`: the file `caf%C3%A9s.bson` is the collection `cafés`; include
/// patterns and renames match the decoded name.
#[test]
fn collection_names_with_special_characters() {
    let g = DbGuard::new("mt_special");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, _, err) = run(
        mongorestore(
            tmp.path(),
            &[
                "--nsInclude",
                "db1.cafés",
                "--nsFrom",
                "db1.cafés",
                "--nsTo",
                &format!("{}.cafés", g.name()),
            ],
        )
        .arg(fixture("specialcharacter")),
        0,
    );
    assert_eq!(restored_counts(&err), (1, 0), "{err}");
    assert_eq!(collections(&client(), g.name()), ["cafés"]);
    let (_, _, err) = run(
        mongorestore(
            tmp.path(),
            &[
                "--nsExclude",
                "db1.cafés",
                "--nsFrom",
                "db1.*",
                "--nsTo",
                &format!("{}.*", g.name()),
            ],
        )
        .arg(fixture("specialcharacter")),
        0,
    );
    assert_eq!(restored_counts(&err), (0, 0), "{err}");
}

/// One `.bson` file restored with `-d`/`-c` under a name of its own, its
/// `.metadata.json` beside it used.
#[test]
fn single_bson_files() {
    let g = DbGuard::new("mt_single");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, _, err) = run(
        mongorestore(tmp.path(), &["-d", g.name(), "-c", "one"])
            .arg(fixture("testdirs/db1/c1.bson")),
        0,
    );
    let (n, failed) = restored_counts(&err);
    assert_eq!(failed, 0, "{err}");
    assert!(n > 0, "{err}");
    assert_eq!(count(g.name(), "one"), n);
}

/// `test.bar.archive`: restored from the file and from standard input, the same
/// documents either way; `dump-w-oplog.archive` restores its data, and with
/// `--oplogReplay` replays its oplog after them.
#[test]
fn archives_from_a_file_and_from_standard_input() {
    let mut g = DbGuard::new("mt_archive");
    let a = g.name().to_string();
    let b = g.add("mt_archive_stdin");
    let tmp = tempfile::tempdir().expect("tempdir");
    let archive = fixture("test.bar.archive");
    let (_, _, err) = run(
        mongorestore(
            tmp.path(),
            &["--nsFrom", "test.*", "--nsTo", &format!("{a}.*")],
        )
        .arg(format!("--archive={}", archive.display())),
        0,
    );
    let (n, failed) = restored_counts(&err);
    assert!(n > 0 && failed == 0, "{err}");
    assert_eq!(count(&a, "bar"), n);
    let mut child = mongorestore(
        tmp.path(),
        &[
            "--archive",
            "--nsFrom",
            "test.*",
            "--nsTo",
            &format!("{b}.*"),
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&archive).unwrap())
        .expect("feed the archive");
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(restored_counts(&err), (n, 0), "{err}");
    assert_eq!(
        crate::common::collection_digest(&a, "bar"),
        crate::common::collection_digest(&b, "bar")
    );
    // 25 documents, and an oplog of the 16 inserts made while they were dumped (the
    // documents are in the data already) and 2 of config: with --oplogReplay the
    // archive's oplog is read again from the file and replayed after the data.
    let c = g.add("mt_archive_oplog");
    let with_oplog = format!("--archive={}", fixture("dump-w-oplog.archive").display());
    let rename = [
        "--nsInclude",
        "test.*",
        "--nsFrom",
        "test.*",
        "--nsTo",
        &format!("{c}.*"),
    ];
    let (_, _, err) = run(mongorestore(tmp.path(), &rename).arg(&with_oplog), 0);
    assert_eq!(restored_counts(&err), (25, 0), "{err}");
    assert_eq!(count(&c, "foo"), 25);
    let (_, _, err) = run(
        mongorestore(tmp.path(), &rename)
            .args(["--drop", "--oplogReplay"])
            .arg(&with_oplog),
        0,
    );
    assert!(err.contains("oplog: 18 entries read, 16 applied"), "{err}");
    assert_eq!(count(&c, "foo"), 25, "{err}");
    // Standard input cannot be read twice.
    let (code, _, err) =
        run_any(mongorestore(tmp.path(), &rename).args(["--archive", "--oplogReplay"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--oplogReplay from a gzipped archive or standard input"),
        "{err}"
    );
}

/// `bad-format.archive` is not an archive: refused, named, nothing restored.
#[test]
fn a_file_that_is_not_an_archive() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = fixture("bad-format.archive");
    let (code, _, err) =
        run_any(mongorestore(tmp.path(), &[]).arg(format!("--archive={}", bad.display())));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bad-format.archive"), "{err}");
}
