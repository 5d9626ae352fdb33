//! Tests of the directory reader, writer and checker.

use std::fs;
use std::io::Read;

use bson::doc;

use super::*;
use crate::catalog::{Namespace, NsKind, SourceInfo};
use crate::mongodump::escape::MAX_STEM_LEN;
use crate::mongodump::fixture_tests::{drain, fixture};
use crate::mongodump::metadata::oplog_namespace;

fn bytes_of(d: bson::Document) -> Vec<u8> {
    bson::serialize_to_vec(&d).unwrap()
}

/// Copies the fixture directory into a writable temporary place.
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(name);
    let src = fixture(name);
    for db in fs::read_dir(&src).unwrap() {
        let db = db.unwrap().path();
        let to = root.join(db.file_name().unwrap());
        fs::create_dir_all(&to).unwrap();
        for f in fs::read_dir(&db).unwrap() {
            let f = f.unwrap().path();
            let dest = to.join(f.file_name().unwrap());
            fs::write(&dest, fs::read(&f).unwrap()).unwrap();
        }
    }
    (tmp, root)
}

fn write_dump(dest: &Path, opts: DirWriterOptions, cat: &Catalog, data: &[Vec<Vec<u8>>]) {
    let mut w: Box<dyn Sink> = Box::new(DirWriter::create(dest, opts).unwrap());
    w.begin(cat).unwrap();
    for (i, docs) in data.iter().enumerate() {
        if !docs.is_empty() {
            w.write_docs(i, docs.concat(), docs.len() as u64).unwrap();
        }
        w.end_namespace(i, &NsStatus::Complete).unwrap();
    }
    w.finish(&Summary::default()).unwrap();
}

fn check(path: &Path, deep: bool) -> Report {
    verify(path, &VerifyOptions { deep }, &mut |_| {})
}

#[test]
fn opens_a_root_or_a_database_directory() {
    let root = DirReader::open(&fixture("dir")).unwrap();
    let db = DirReader::open(&fixture("dir/edge")).unwrap();
    assert_eq!(root.catalog(), db.catalog());
    assert_eq!(root.prelude_at(), Some(PreludeAt::DbDir));
    assert_eq!(db.prelude_at(), Some(PreludeAt::Root));
    assert!(!root.is_gzip());
    assert!(root.warnings().is_empty(), "{:?}", root.warnings());
    let cat = root.catalog();
    let series = cat.find("edge", "series").unwrap();
    assert_eq!(cat.namespaces[series].kind, NsKind::Timeseries);
    assert!(
        root.data_path(series)
            .unwrap()
            .ends_with("system.buckets.series.bson")
    );
    assert!(
        root.metadata_path(series)
            .unwrap()
            .ends_with("series.metadata.json")
    );
    let view = cat.find("edge", "v_types").unwrap();
    assert_eq!(root.data_path(view), None);
    assert!(cat.find("edge", "with space").is_some());
    assert!(cat.find("edge", "ünïcödé").is_some());
}

#[test]
fn random_access_gives_the_same_documents() {
    let mut r = DirReader::open(&fixture("dir-gzip")).unwrap();
    let types = r.catalog().find("edge", "types").unwrap();
    let mut one = r.open_namespace(types).unwrap();
    let mut docs = Vec::new();
    while let Some((data, count)) = one.next_chunk().unwrap() {
        assert!(data.len() <= CHUNK_TARGET || count == 1);
        docs.push((data, count));
    }
    assert_eq!(docs.iter().map(|d| d.1).sum::<u64>(), 31);
    // A 1 MiB document does not fit in the first 4 MiB chunk... every chunk is whole.
    let all = drain(&mut r);
    let joined: Vec<u8> = docs.iter().flat_map(|d| d.0.clone()).collect();
    assert_eq!(joined, all[types].concat());
    // A view reads as empty.
    let view = r.catalog().find("edge", "v_types").unwrap();
    assert!(
        r.open_namespace(view)
            .unwrap()
            .next_chunk()
            .unwrap()
            .is_none()
    );
    assert!(r.open_namespace(99).is_err());
}

#[test]
fn long_names_timeseries_oplog_and_admin_files_round_trip() {
    let long = "L".repeat(300);
    let long_ts = format!("ts{}", "é".repeat(120));
    let nss = vec![
        Namespace::collection("db1", &long),
        Namespace {
            kind: NsKind::Timeseries,
            options: doc! {"timeseries": {"timeField": "t", "granularity": "seconds"}},
            ..Namespace::collection("db1", &long_ts)
        },
        Namespace::collection("db1", "$admin.system.users"),
        Namespace {
            kind: NsKind::View,
            options: doc! {"viewOn": "x", "pipeline": []},
            ..Namespace::collection("db2", "v")
        },
        Namespace::collection("db2", "empty"),
        oplog_namespace(),
    ];
    let data = vec![
        vec![bytes_of(doc! {"a": 1}), bytes_of(doc! {"a": 2})],
        vec![bytes_of(doc! {"bucket": 1})],
        vec![bytes_of(doc! {"user": "u"})],
        vec![],
        vec![],
        vec![bytes_of(doc! {"op": "i"})],
    ];
    for gzip in [false, true] {
        for server in ["8.2.11", "8.3.0"] {
            let cat = Catalog {
                source: SourceInfo {
                    server_version: Some(server.into()),
                    tool: Some("oxidump 0.1.0".into()),
                    ..SourceInfo::default()
                },
                namespaces: nss.clone(),
            };
            let tmp = tempfile::tempdir().unwrap();
            let dest = tmp.path().join("dump");
            let opts = DirWriterOptions {
                gzip,
                prelude: PreludeAt::Root,
                merge: false,
            };
            write_dump(&dest, opts, &cat, &data);
            let gz = if gzip { ".gz" } else { "" };
            // File names.
            let stem = collection_stem(&long);
            assert_eq!(stem.len(), MAX_STEM_LEN);
            assert!(dest.join("db1").join(format!("{stem}.bson{gz}")).is_file());
            let ts_data = if server == "8.2.11" {
                collection_stem(&format!("system.buckets.{long_ts}"))
            } else {
                collection_stem(&long_ts)
            };
            assert!(
                dest.join("db1")
                    .join(format!("{ts_data}.bson{gz}"))
                    .is_file()
            );
            assert!(
                dest.join("db1")
                    .join(format!("$admin.system.users.bson{gz}"))
                    .is_file()
            );
            assert!(
                !dest
                    .join("db1")
                    .join(format!("$admin.system.users.metadata.json{gz}"))
                    .exists()
            );
            assert!(
                dest.join("db2")
                    .join(format!("v.metadata.json{gz}"))
                    .is_file()
            );
            assert!(!dest.join("db2").join(format!("v.bson{gz}")).exists());
            assert!(dest.join("db2").join(format!("empty.bson{gz}")).is_file());
            // The oplog keeps its name, gzipped or not.
            let oplog = fs::read(dest.join("oplog.bson")).unwrap();
            assert_eq!(oplog.starts_with(&GZIP_MAGIC), gzip);
            assert!(dest.join(format!("prelude.json{gz}")).is_file());
            // Read back.
            let mut r = DirReader::open(&dest).unwrap();
            assert!(r.warnings().is_empty(), "{:?}", r.warnings());
            assert_eq!(r.is_gzip(), gzip);
            let back = r.catalog().clone();
            assert_eq!(back.source.server_version.as_deref(), Some(server));
            assert_eq!(back.source.tool.as_deref(), Some("oxidump 0.1.0"));
            let docs = drain(&mut r);
            for (i, ns) in nss.iter().enumerate() {
                let j = back
                    .find(&ns.db, &ns.collection)
                    .unwrap_or_else(|| panic!("{} missing", ns.full_name()));
                assert_eq!(back.namespaces[j].kind, ns.kind);
                assert_eq!(docs[j], data[i], "{}", ns.full_name());
            }
            // Sorted, oplog last.
            assert_eq!(back.namespaces.last().unwrap().kind, NsKind::Oplog);
            assert!(check(&dest, true).is_ok());
        }
    }
}

#[test]
fn pairing_warnings_and_layout_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("dump").join("d");
    fs::create_dir_all(&db).unwrap();
    fs::write(db.join("orphan.bson"), bytes_of(doc! {"x": 1})).unwrap();
    fs::write(
        db.join("nodata.metadata.json"),
        br#"{"indexes":[],"collectionName":"nodata","type":"collection"}"#,
    )
    .unwrap();
    fs::write(db.join("notes.txt"), b"hello").unwrap();
    fs::write(db.join("legacy.bin"), bytes_of(doc! {"y": 1})).unwrap();
    let root = tmp.path().join("dump");
    let r = DirReader::open(&root).unwrap();
    let codes: Vec<&str> = r.warnings().iter().map(|f| f.code).collect();
    // legacy.bin and orphan.bson have no metadata.
    assert_eq!(
        codes,
        [
            "dir-unknown-file",
            "dir-missing-data",
            "dir-missing-metadata",
            "dir-missing-metadata"
        ]
    );
    assert!(r.catalog().find("d", "legacy").is_some());
    assert!(r.catalog().find("d", "orphan").is_some());
    let report = check(&root, false);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.findings.len(), 4);
    // The same collection twice.
    fs::write(db.join("orphan.bson.gz"), b"").unwrap();
    let e = DirReader::open(&root).err().unwrap().to_string();
    assert!(e.contains("orphan"), "{e}");
    assert!(!check(&root, false).is_ok());
    fs::remove_file(db.join("orphan.bson.gz")).unwrap();
    // Two spellings of the same name.
    fs::write(db.join("%6Frphan.bson"), b"").unwrap();
    let e = DirReader::open(&root).err().unwrap().to_string();
    assert!(
        e.contains("d.orphan") && e.contains("same namespace"),
        "{e}"
    );
    fs::remove_file(db.join("%6Frphan.bson")).unwrap();
    // A name that does not unescape.
    fs::write(db.join("bad%zz.bson"), b"").unwrap();
    let e = DirReader::open(&root).err().unwrap().to_string();
    assert!(e.contains("bad%zz") && e.contains("invalid escape"), "{e}");
    fs::remove_file(db.join("bad%zz.bson")).unwrap();
    // A truncated long name without metadata.
    let stem = collection_stem(&"q".repeat(400));
    fs::write(db.join(format!("{stem}.bson")), b"").unwrap();
    let e = DirReader::open(&root).err().unwrap().to_string();
    assert!(e.contains("truncated long-name"), "{e}");
    fs::remove_file(db.join(format!("{stem}.bson"))).unwrap();
    // Invalid metadata.
    fs::write(db.join("broken.metadata.json"), b"{\"indexes\":").unwrap();
    let e = DirReader::open(&root).err().unwrap().to_string();
    assert!(
        e.contains("broken.metadata.json") && e.contains("invalid metadata"),
        "{e}"
    );
    let report = check(&root, false);
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "dir-metadata")
        .unwrap();
    assert!(f.file.as_ref().unwrap().ends_with("broken.metadata.json"));
    fs::remove_file(db.join("broken.metadata.json")).unwrap();
    // Not a directory.
    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert!(DirReader::open(&file).is_err());
    assert!(!check(&file, false).complete);
}

#[test]
fn verify_finds_damaged_data_files() {
    let (_tmp, root) = fixture_copy("dir");
    assert!(check(&root, true).is_ok());
    let indexed = root.join("edge/indexed.bson");
    let original = fs::read(&indexed).unwrap();
    let doc_len = i32::from_le_bytes(original[..4].try_into().unwrap()) as usize;
    // A bad length in the third document.
    let mut bad = original.clone();
    let at = 2 * doc_len;
    bad[at..at + 4].copy_from_slice(&2i32.to_le_bytes());
    fs::write(&indexed, &bad).unwrap();
    let report = check(&root, false);
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "doc-framing")
        .unwrap();
    assert_eq!(f.offset, Some(at as u64));
    assert_eq!(f.namespace.as_deref(), Some("edge.indexed"));
    assert!(f.file.as_ref().unwrap().ends_with("indexed.bson"));
    assert!(!report.complete);
    let counted = report
        .namespaces
        .iter()
        .find(|n| n.namespace == "edge.indexed")
        .unwrap();
    assert_eq!(counted.documents, 2);
    // The reader stops there too, naming file, namespace and offset.
    let mut r = DirReader::open(&root).unwrap();
    let err = loop {
        match r.next_chunk() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("read a damaged file to the end"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        err.contains("indexed.bson")
            && err.contains(&format!("offset {at}"))
            && err.contains("edge.indexed"),
        "{err}"
    );
    assert!(r.next_chunk().is_err());
    // A truncated file.
    fs::write(&indexed, &original[..original.len() - 10]).unwrap();
    let report = check(&root, false);
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "doc-framing")
        .unwrap();
    assert_eq!(f.offset, Some((original.len() - doc_len) as u64));
    // Bad content only shows with the deep check.
    let mut content = original.clone();
    content[doc_len + 4] = 0x77;
    fs::write(&indexed, &content).unwrap();
    assert!(check(&root, false).is_ok());
    let report = check(&root, true);
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "doc-deep")
        .unwrap();
    assert_eq!(f.offset, Some(doc_len as u64));
    assert!(report.complete);
}

#[test]
fn verify_finds_damaged_gzip_files() {
    let (_tmp, root) = fixture_copy("dir-gzip");
    let mut ticks = Vec::new();
    let report = verify(&root, &VerifyOptions { deep: true }, &mut |n| ticks.push(n));
    assert!(report.is_ok(), "{:?}", report.findings);
    let on_disk: u64 = fs::read_dir(root.join("edge"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bson.gz"))
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(*ticks.last().unwrap(), on_disk);
    let types = root.join("edge/types.bson.gz");
    let gz = fs::read(&types).unwrap();
    let mut bad = gz.clone();
    for b in &mut bad[1000..1100] {
        *b = !*b;
    }
    fs::write(&types, &bad).unwrap();
    let report = check(&root, false);
    assert!(!report.is_ok());
    let f = report
        .findings
        .iter()
        .find(|f| f.namespace.as_deref() == Some("edge.types"))
        .unwrap();
    assert!(matches!(f.code, "dir-gzip" | "doc-framing"), "{f}");
    fs::write(&types, &gz[..gz.len() / 2]).unwrap();
    let report = check(&root, false);
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "dir-gzip")
        .unwrap();
    assert!(f.file.as_ref().unwrap().ends_with("types.bson.gz"));
    assert!(!report.complete);
    // A file named .gz that is not gzip.
    fs::write(root.join("edge/empty.bson.gz"), bytes_of(doc! {"x": 1})).unwrap();
    let report = check(&root, false);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == "dir-gzip" && f.file.as_ref().unwrap().ends_with("empty.bson.gz"))
    );
}

#[test]
fn plain_file_starting_like_gzip_is_not_mistaken_for_gzip() {
    // A first document of length 0x00088b1f starts with the gzip magic 1f 8b 08.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("dump");
    let len = 0x0008_8b1fusize;
    let mut d =
        doc! {"b": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![] }};
    let base = bytes_of(d.clone()).len();
    d.insert(
        "b",
        bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: vec![0x42; len - base],
        },
    );
    let bytes = bytes_of(d);
    assert_eq!(&bytes[..3], &[0x1f, 0x8b, 0x08]);
    let cat = Catalog {
        namespaces: vec![oplog_namespace()],
        ..Catalog::default()
    };
    write_dump(
        &root,
        DirWriterOptions::default(),
        &cat,
        &[vec![bytes.clone()]],
    );
    let mut r = DirReader::open(&root).unwrap();
    assert!(!r.is_gzip());
    assert_eq!(drain(&mut r)[0], [bytes]);
}

#[test]
fn writer_keeps_several_files_open_and_refuses_misuse() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dump");
    let nss = vec![
        Namespace::collection("d", "a"),
        Namespace::collection("d", "b"),
        Namespace {
            kind: NsKind::View,
            ..Namespace::collection("d", "v")
        },
    ];
    let cat = Catalog {
        namespaces: nss,
        ..Catalog::default()
    };
    let one = bytes_of(doc! {"x": 1});
    let two = bytes_of(doc! {"x": 2});
    let mut w: Box<dyn Sink> =
        Box::new(DirWriter::create(&dest, DirWriterOptions::default()).unwrap());
    w.begin(&cat).unwrap();
    w.write_docs(0, one.clone(), 1).unwrap();
    w.write_docs(1, two.clone(), 1).unwrap();
    w.write_docs(0, two.clone(), 1).unwrap();
    assert!(matches!(
        w.write_docs(2, one.clone(), 1),
        Err(SinkError::Unsupported(_))
    ));
    assert!(matches!(
        w.write_docs(0, one.clone(), 3),
        Err(SinkError::Misuse(_))
    ));
    w.end_namespace(0, &NsStatus::Complete).unwrap();
    assert!(w.write_docs(0, one.clone(), 1).is_err());
    w.end_namespace(1, &NsStatus::Complete).unwrap();
    assert!(!dest.exists());
    // Finishing with a namespace still open fails and leaves nothing behind.
    assert!(w.finish(&Summary::default()).is_err());
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    // Done properly.
    write_dump(
        &dest,
        DirWriterOptions::default(),
        &cat,
        &[vec![one.clone(), two.clone()], vec![two.clone()], vec![]],
    );
    assert_eq!(
        fs::read(dest.join("d/a.bson")).unwrap(),
        [one, two.clone()].concat()
    );
    assert_eq!(fs::read(dest.join("d/b.bson")).unwrap(), two);
    // An existing, non-empty destination is refused.
    assert!(DirWriter::create(&dest, DirWriterOptions::default()).is_err());
    // Two namespaces writing to the same file.
    let clash = Catalog {
        source: SourceInfo {
            server_version: Some("8.0.0".into()),
            ..SourceInfo::default()
        },
        namespaces: vec![
            Namespace {
                kind: NsKind::Timeseries,
                ..Namespace::collection("d", "x")
            },
            Namespace::collection("d", "system.buckets.x"),
        ],
    };
    let mut w = DirWriter::create(&tmp.path().join("other"), DirWriterOptions::default()).unwrap();
    assert!(matches!(w.begin(&clash), Err(SinkError::Unsupported(_))));
    // A database name that cannot be a directory.
    let bad = Catalog {
        namespaces: vec![Namespace::collection("../x", "c")],
        ..Catalog::default()
    };
    let mut w = DirWriter::create(&tmp.path().join("third"), DirWriterOptions::default()).unwrap();
    assert!(matches!(w.begin(&bad), Err(SinkError::Unsupported(_))));
    // The prelude in a database directory needs a single database.
    let two_dbs = Catalog {
        namespaces: vec![
            Namespace::collection("a", "c"),
            Namespace::collection("b", "c"),
        ],
        ..Catalog::default()
    };
    let opts = DirWriterOptions {
        gzip: false,
        prelude: PreludeAt::DbDir,
        merge: false,
    };
    let mut w = DirWriter::create(&tmp.path().join("fourth"), opts).unwrap();
    assert!(matches!(w.begin(&two_dbs), Err(SinkError::Unsupported(_))));
}

#[test]
fn prelude_text_is_go_json() {
    assert_eq!(
        prelude_json("8.2.11", "100.18.0-21-g8fa3cfc82").as_bytes(),
        &fs::read(fixture("dir/edge/prelude.json")).unwrap()[..]
    );
    assert_eq!(
        prelude_json("a<b", "c&d"),
        r#"{"ServerVersion":"a\u003cb","ToolVersion":"c\u0026d"}"#
    );
    let mut gz = Vec::new();
    gunzip(File::open(fixture("dir-gzip/edge/prelude.json.gz")).unwrap())
        .read_to_end(&mut gz)
        .unwrap();
    assert_eq!(
        gz,
        prelude_json("8.2.11", "100.18.0-21-g8fa3cfc82").as_bytes()
    );
}
