//! Tests of the archive reader, writer and checker.

use std::io::{Read, Write};
use std::path::Path;

use bson::doc;

use super::*;
use crate::catalog::{Namespace, NsKind, SourceInfo};
use crate::mongodump::fixture_tests::{MemOut, copy, drain, fixture};
use crate::mongodump::metadata::oplog_namespace;

fn bytes_of(d: bson::Document) -> Vec<u8> {
    bson::serialize_to_vec(&d).unwrap()
}

fn edge() -> Vec<u8> {
    std::fs::read(fixture("edge.archive")).unwrap()
}

fn no_progress() -> impl FnMut(u64) {
    |_| {}
}

fn check(bytes: &[u8], deep: bool) -> Report {
    verify_stream(
        bytes,
        false,
        Path::new("t.archive"),
        &VerifyOptions { deep },
        &mut no_progress(),
    )
}

/// Offset of the first occurrence of `needle` after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> usize {
    from + hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

fn read_err(bytes: &[u8]) -> String {
    match ArchiveReader::new(bytes, "t.archive") {
        Err(e) => e.to_string(),
        Ok(mut r) => loop {
            match r.next_chunk() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("read to the end without an error"),
                Err(e) => break e.to_string(),
            }
        },
    }
}

fn catalog(server: Option<&str>, namespaces: Vec<Namespace>) -> Catalog {
    Catalog {
        source: SourceInfo {
            server_version: server.map(str::to_string),
            tool: Some("mongodump 100.18.0".into()),
            ..SourceInfo::default()
        },
        namespaces,
    }
}

/// Writes an archive by hand: begin, then the given operations, then finish.
enum Op {
    Docs(usize, Vec<Vec<u8>>),
    End(usize),
}

fn write_archive(cat: &Catalog, ops: Vec<Op>) -> Vec<u8> {
    let out = MemOut::default();
    let mut w: Box<dyn Sink> = Box::new(ArchiveWriter::with_output(Box::new(out.clone())));
    w.begin(cat).unwrap();
    for op in ops {
        match op {
            Op::Docs(ns, docs) => {
                let n = docs.len() as u64;
                w.write_docs(ns, docs.concat(), n).unwrap();
            }
            Op::End(ns) => w.end_namespace(ns, &NsStatus::Complete).unwrap(),
        }
    }
    w.finish(&Summary::default()).unwrap();
    out.bytes()
}

/// The blocks of an archive: (db, collection, EOF, CRC, document count).
fn blocks(bytes: &[u8]) -> Vec<(String, String, bool, u64, usize)> {
    let mut r = Framer {
        r: bytes,
        offset: 0,
    };
    read_prelude(&mut r).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    loop {
        let first = match r.word("h").unwrap() {
            Word::Eof => break,
            Word::Len(b) => b,
            Word::Term => panic!("terminator instead of a header"),
        };
        buf.clear();
        let len = check_len(first, MAX_DOC_LEN).unwrap();
        r.body(first, len, &mut buf, "h").unwrap();
        let h = NsHeader::parse(&buf).unwrap();
        let mut n = 0;
        loop {
            match r.word("d").unwrap() {
                Word::Term => break,
                Word::Len(b) => {
                    let len = check_len(b, MAX_DOC_LEN).unwrap();
                    buf.clear();
                    r.body(b, len, &mut buf, "d").unwrap();
                    n += 1;
                }
                Word::Eof => panic!("no terminator"),
            }
        }
        out.push((h.db, h.collection, h.eof, h.crc, n));
    }
    out
}

#[test]
fn crc64_is_crc64_xz() {
    let mut d = crc64fast::Digest::new();
    d.write(b"123456789");
    assert_eq!(d.sum64(), 0x995D_C9BB_DF19_39FA);
    // The worked example of the format notes: {_id: int32 1}.
    let mut d = crc64fast::Digest::new();
    d.write(&bytes_of(doc! {"_id": 1}));
    assert_eq!(d.sum64(), 0xf3ea_6143_6a44_59fe);
}

#[test]
fn headers_encode_in_mongodumps_field_order() {
    let h = NsHeader {
        db: "test".into(),
        collection: "c".into(),
        eof: true,
        crc: 0xf3ea_6143_6a44_59fe,
    };
    let b = h.to_bytes();
    assert_eq!(b.len(), 55);
    assert_eq!(
        &b[b.len() - 9..b.len() - 1],
        &0xf3ea_6143_6a44_59feu64.to_le_bytes()
    );
    assert_eq!(NsHeader::parse(&b).unwrap(), h);
    let hdr = ArchiveHeader {
        concurrent_collections: 4,
        version: "0.1".into(),
        server_version: "8.2.11".into(),
        tool_version: "100.18.0-21-g8fa3cfc82".into(),
    };
    // Exactly the fixture's header document.
    let edge = edge();
    let len = hdr.to_bytes().len();
    assert_eq!(hdr.to_bytes(), &edge[4..4 + len]);
    assert_eq!(ArchiveHeader::parse(&edge[4..4 + len]).unwrap(), hdr);
}

#[test]
fn namespace_headers_are_parsed_strictly() {
    let with_extra =
        bytes_of(doc! {"db": "a", "collection": "b", "EOF": false, "CRC": 0i64, "x": 1});
    assert!(
        NsHeader::parse(&with_extra)
            .unwrap_err()
            .contains("unknown field")
    );
    let crc_int32 = bytes_of(doc! {"db": "a", "collection": "b", "EOF": false, "CRC": 0i32});
    assert!(NsHeader::parse(&crc_int32).unwrap_err().contains("CRC"));
    let eof_int = bytes_of(doc! {"db": "a", "collection": "b", "EOF": 1, "CRC": 0i64});
    assert!(NsHeader::parse(&eof_int).unwrap_err().contains("EOF"));
    // The prelude documents are read leniently, like Go's Unmarshal.
    let entry = bytes_of(
        doc! {"db": "a", "collection": "b", "metadata": "", "size": 5i64, "type": "", "new": true},
    );
    assert_eq!(PreludeEntry::parse(&entry, 0).unwrap().size, 5);
}

#[test]
fn reads_the_fixture_with_bucket_names_mapped_to_the_timeseries() {
    let edge = edge();
    let mut r = ArchiveReader::new(&edge[..], "edge.archive").unwrap();
    assert_eq!(r.header().version, "0.1");
    let cat = r.catalog().clone();
    let docs = drain(&mut r);
    let series = cat.find("edge", "series").unwrap();
    assert_eq!(cat.namespaces[series].kind, NsKind::Timeseries);
    assert_eq!(docs[series].len(), 3);
    assert_eq!(r.offset(), edge.len() as u64);
    // Nothing more after the end.
    assert!(r.next_chunk().unwrap().is_none());
}

#[test]
fn every_namespace_gets_one_eof_and_views_an_empty_segment() {
    // The fixture's layout: an empty segment only for namespaces without documents.
    let b = blocks(&edge());
    let eofs: Vec<_> = b.iter().filter(|x| x.2).collect();
    assert_eq!(eofs.len(), 15);
    let segs =
        |c: &str| -> Vec<usize> { b.iter().filter(|x| x.1 == c && !x.2).map(|x| x.4).collect() };
    assert_eq!(segs("v_types"), [0]);
    assert_eq!(segs("empty"), [0]);
    assert_eq!(segs("types"), [31]);
    assert_eq!(segs("system.buckets.series"), [3]);
    assert!(b.iter().all(|x| x.2 || x.3 == 0));
    let empty_eof = b.iter().find(|x| x.1 == "empty" && x.2).unwrap();
    assert_eq!(empty_eof.3, 0);
}

#[test]
fn corrupted_document_is_a_crc_error_naming_the_namespace() {
    let mut a = edge();
    // A byte inside the first document of `capped` (after its segment header).
    let hdr = NsHeader {
        db: "edge".into(),
        collection: "capped".into(),
        eof: false,
        crc: 0,
    }
    .to_bytes();
    let at = find(&a, &hdr, 0) + hdr.len() + 10;
    a[at] ^= 0x01;
    let e = read_err(&a);
    assert!(
        e.contains("CRC mismatch") && e.contains("edge.capped"),
        "{e}"
    );
    let report = check(&a, false);
    let crc: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.code == "archive-crc")
        .collect();
    assert_eq!(crc.len(), 1, "{:?}", report.findings);
    assert_eq!(crc[0].namespace.as_deref(), Some("edge.capped"));
    assert!(crc[0].offset.unwrap() > at as u64);
    // The checker went on to the end.
    assert!(report.complete);
    assert!(!report.is_ok());
    let types = report
        .namespaces
        .iter()
        .find(|n| n.namespace == "edge.types")
        .unwrap();
    assert_eq!(types.documents, 31);
}

#[test]
fn deep_check_reports_bad_content_and_goes_on() {
    let mut a = edge();
    let hdr = NsHeader {
        db: "edge".into(),
        collection: "validated".into(),
        eof: false,
        crc: 0,
    }
    .to_bytes();
    let doc_at = find(&a, &hdr, 0) + hdr.len();
    // Element type byte of the first element of the first document: make it invalid.
    a[doc_at + 4] = 0x77;
    let shallow = check(&a, false);
    assert!(shallow.findings.iter().all(|f| f.code == "archive-crc"));
    let deep = check(&a, true);
    let f = deep.findings.iter().find(|f| f.code == "doc-deep").unwrap();
    assert_eq!(f.namespace.as_deref(), Some("edge.validated"));
    assert_eq!(f.offset, Some(doc_at as u64));
    assert_eq!(f.frame, Some(0));
    assert!(deep.complete);
}

#[test]
fn truncation_anywhere_is_an_error_with_an_offset() {
    let a = edge();
    // Cut points: inside the magic, the prelude, a header, a document, a terminator,
    // and exactly at a block boundary.
    let last_block = a.len()
        - 4
        - NsHeader {
            db: "edge".into(),
            collection: "system.buckets.series".into(),
            eof: true,
            crc: 0,
        }
        .to_bytes()
        .len();
    for cut in [2, 50, 3000, 6430, 7000, 600_000, a.len() - 2, last_block] {
        let e = read_err(&a[..cut]);
        assert!(e.contains("offset"), "cut {cut}: {e}");
        let report = check(&a[..cut], false);
        assert!(!report.complete, "cut {cut}");
        let f = report
            .findings
            .iter()
            .find(|f| f.severity == Severity::Error)
            .unwrap();
        assert!(
            matches!(f.code, "archive-truncated" | "archive-missing-eof"),
            "cut {cut}: {f}"
        );
        assert!(f.offset.is_some());
    }
    // At a block boundary the missing end block is named.
    let report = check(&a[..last_block], false);
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "archive-missing-eof")
        .unwrap();
    assert_eq!(f.namespace.as_deref(), Some("edge.series"));
}

#[test]
fn bad_lengths_are_framing_errors() {
    let mut a = edge();
    let hdr = NsHeader {
        db: "edge".into(),
        collection: "indexed".into(),
        eof: false,
        crc: 0,
    }
    .to_bytes();
    let doc_at = find(&a, &hdr, 0) + hdr.len();
    a[doc_at..doc_at + 4].copy_from_slice(&3i32.to_le_bytes());
    let e = read_err(&a);
    assert!(
        e.contains(&format!("offset {doc_at}")) && e.contains("length 3"),
        "{e}"
    );
    let report = check(&a, false);
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "doc-framing")
        .unwrap();
    assert_eq!(f.offset, Some(doc_at as u64));
    assert_eq!(f.namespace.as_deref(), Some("edge.indexed"));
    assert!(!report.complete);
    // A document over 16 MiB outside the oplog.
    a[doc_at..doc_at + 4].copy_from_slice(&(16 * 1024 * 1024 + 1i32).to_le_bytes());
    assert!(read_err(&a).contains("outside 5..=16777216"));
    // A bad terminator byte: the reader stops, the checker goes on.
    let mut b = edge();
    let len = i32::from_le_bytes(b[doc_at..doc_at + 4].try_into().unwrap()) as usize;
    b[doc_at + len - 1] = 1;
    assert!(read_err(&b).contains("does not end with 0x00"));
    let report = check(&b, false);
    assert!(report.findings.iter().any(|f| f.code == "doc-framing"));
    assert!(report.complete);
}

#[test]
fn structural_errors() {
    let a = edge();
    // Bad magic.
    let mut m = a.clone();
    m[0] = 0;
    assert!(read_err(&m).contains("not a mongodump archive"));
    assert_eq!(check(&m, false).findings[0].code, "archive-magic");
    // Trailing garbage after the last end block.
    let mut t = a.clone();
    t.extend_from_slice(b"garbage!");
    assert!(read_err(&t).contains("after the end block of the last namespace"));
    let report = check(&t, false);
    assert!(report.findings.iter().any(|f| f.code == "archive-trailing"));
    // A header for a namespace the prelude does not list.
    let unknown = NsHeader {
        db: "edge".into(),
        collection: "nope".into(),
        eof: false,
        crc: 0,
    }
    .to_bytes();
    let first_block = find(&a, &TERMINATOR, 6000) + 4;
    let mut u = a[..first_block].to_vec();
    u.extend_from_slice(&unknown);
    u.extend_from_slice(&bytes_of(doc! {"x": 1}));
    u.extend_from_slice(&TERMINATOR);
    u.extend_from_slice(&a[first_block..]);
    assert!(read_err(&u).contains("edge.nope"));
    let report = check(&u, false);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == "archive-unknown-ns")
    );
    assert!(report.complete);
    // Data for a namespace after its end block.
    let seg = NsHeader {
        db: "edge".into(),
        collection: "capped".into(),
        eof: false,
        crc: 0,
    }
    .to_bytes();
    let series = NsHeader {
        db: "edge".into(),
        collection: "system.buckets.series".into(),
        eof: false,
        crc: 0,
    }
    .to_bytes();
    let at = find(&a, &series, 0);
    let mut late = a[..at].to_vec();
    late.extend_from_slice(&seg);
    late.extend_from_slice(&TERMINATOR);
    late.extend_from_slice(&a[at..]);
    assert!(read_err(&late).contains("after the namespace's end block"));
    assert!(
        check(&late, false)
            .findings
            .iter()
            .any(|f| f.code == "archive-after-eof")
    );
    // An end block followed by a document instead of a terminator.
    let eof = NsHeader {
        db: "edge".into(),
        collection: "v_types".into(),
        eof: true,
        crc: 0,
    }
    .to_bytes();
    let at = find(&a, &eof, 0) + eof.len();
    let mut e = a[..at].to_vec();
    e.extend_from_slice(&bytes_of(doc! {"x": 1}));
    e.extend_from_slice(&a[at..]);
    assert!(read_err(&e).contains("must be followed by a terminator"));
    assert!(
        check(&e, false)
            .findings
            .iter()
            .any(|f| f.code == "archive-framing")
    );
    // A header with a field of the wrong type.
    let bad = bytes_of(doc! {"db": "edge", "collection": "capped", "EOF": false, "CRC": 0i32});
    let mut h = a[..first_block].to_vec();
    h.extend_from_slice(&bad);
    h.extend_from_slice(&TERMINATOR);
    h.extend_from_slice(&a[first_block..]);
    assert!(read_err(&h).contains("expected int64"));
    assert!(
        check(&h, false)
            .findings
            .iter()
            .any(|f| f.code == "archive-header")
    );
}

#[test]
fn clean_fixture_verifies_with_totals() {
    let mut ticks = Vec::new();
    let report = verify(
        &fixture("edge.archive"),
        &VerifyOptions { deep: true },
        &mut |n| ticks.push(n),
    )
    .unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.format, "mongodump-archive");
    let total: u64 = report.namespaces.iter().map(|n| n.documents).sum();
    assert_eq!(total, 498);
    assert_eq!(*ticks.last().unwrap(), edge().len() as u64);
    let gz = verify(
        &fixture("edge.archive.gz"),
        &VerifyOptions::default(),
        &mut |n| ticks.push(n),
    )
    .unwrap();
    assert!(gz.is_ok(), "{:?}", gz.findings);
    assert_eq!(gz.format, "mongodump-archive+gzip");
    // Progress counts the compressed bytes.
    let size = std::fs::metadata(fixture("edge.archive.gz")).unwrap().len();
    assert_eq!(*ticks.last().unwrap(), size);
}

#[test]
fn damaged_gzip_is_a_finding() {
    let mut gz = std::fs::read(fixture("edge.archive.gz")).unwrap();
    let mid = gz.len() / 2;
    for b in &mut gz[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let report = verify_stream(
        &gz[..],
        true,
        Path::new("x.gz"),
        &VerifyOptions::default(),
        &mut no_progress(),
    );
    assert!(!report.is_ok());
    assert!(
        report.findings.iter().any(|f| matches!(
            f.code,
            "archive-gzip" | "archive-crc" | "doc-framing" | "archive-framing"
        )),
        "{:?}",
        report.findings
    );
    // Truncated gzip.
    let gz = std::fs::read(fixture("edge.archive.gz")).unwrap();
    let report = verify_stream(
        &gz[..gz.len() / 3],
        true,
        Path::new("x.gz"),
        &VerifyOptions::default(),
        &mut no_progress(),
    );
    assert!(!report.complete);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == "archive-truncated"),
        "{:?}",
        report.findings
    );
}

#[test]
fn multi_member_gzip_is_read_to_the_end() {
    let a = edge();
    let mut gz = Vec::new();
    for part in [&a[..500_000], &a[500_000..]] {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(part).unwrap();
        gz.extend(e.finish().unwrap());
    }
    let (r, is_gz) = sniff_gzip(io::Cursor::new(gz)).unwrap();
    assert!(is_gz);
    let mut reader = ArchiveReader::new(r, "two-members.gz").unwrap();
    let docs = drain(&mut reader);
    assert_eq!(docs.iter().map(Vec::len).sum::<usize>(), 498);
}

#[test]
fn chunks_are_bounded_and_big_documents_come_alone() {
    let cat = catalog(Some("8.2.0"), vec![Namespace::collection("d", "c")]);
    let small = bytes_of(
        doc! {"b": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![7; 100_000] }},
    );
    let big = bytes_of(
        doc! {"b": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![8; 5 << 20] }},
    );
    let mut docs = vec![small.clone(); 100];
    docs.push(big.clone());
    docs.extend(vec![small.clone(); 3]);
    let a = write_archive(&cat, vec![Op::Docs(0, docs.clone()), Op::End(0)]);
    let mut r = ArchiveReader::new(&a[..], "t").unwrap();
    let mut sizes = Vec::new();
    while let Some(c) = r.next_chunk().unwrap() {
        if let Chunk::Docs { data, count, .. } = c {
            assert!(data.len() <= CHUNK_TARGET || count == 1);
            sizes.push((data.len(), count));
        }
    }
    assert!(sizes.contains(&(big.len(), 1)));
    assert_eq!(sizes.iter().map(|s| s.1).sum::<u64>(), 104);
    assert!(sizes.len() >= 4);
}

#[test]
fn writer_interleaves_like_mongodumps_multiplexer() {
    let cat = catalog(
        Some("8.2.0"),
        vec![
            Namespace::collection("d", "a"),
            Namespace::collection("d", "b"),
        ],
    );
    let doc = |i: i32| bytes_of(doc! {"i": i});
    // Alternating small writes stay buffered: one segment per namespace.
    let a = write_archive(
        &cat,
        vec![
            Op::Docs(0, vec![doc(1)]),
            Op::Docs(1, vec![doc(2)]),
            Op::Docs(0, vec![doc(3)]),
            Op::End(1),
            Op::Docs(0, vec![doc(4)]),
            Op::End(0),
        ],
    );
    let b = blocks(&a);
    let simple: Vec<(&str, bool, usize)> = b.iter().map(|x| (x.1.as_str(), x.2, x.4)).collect();
    assert_eq!(
        simple,
        [
            ("b", false, 1),
            ("b", true, 0),
            ("a", false, 3),
            ("a", true, 0)
        ]
    );
    let mut crc = crc64fast::Digest::new();
    for i in [1, 3, 4] {
        crc.write(&doc(i));
    }
    assert_eq!(b[3].3, crc.sum64());
    // Buffers of 16 MiB: a namespace's run is handed over when the next document
    // does not fit, and interleaves with the other namespace's runs.
    let big = |i: i32| {
        bytes_of(
            doc! {"i": i, "b": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 6 << 20] }},
        )
    };
    let a = write_archive(
        &cat,
        vec![
            Op::Docs(0, vec![big(1), big(2)]),
            Op::Docs(1, vec![doc(9)]),
            Op::Docs(0, vec![big(3)]),
            Op::Docs(1, vec![doc(10)]),
            Op::End(1),
            Op::End(0),
        ],
    );
    let simple: Vec<(String, bool, usize)> =
        blocks(&a).into_iter().map(|x| (x.1, x.2, x.4)).collect();
    assert_eq!(
        simple,
        [
            ("a".to_string(), false, 2),
            ("b".to_string(), false, 2),
            ("b".to_string(), true, 0),
            ("a".to_string(), false, 1),
            ("a".to_string(), true, 0),
        ]
    );
    assert!(check(&a, true).is_ok());
}

#[test]
fn oplog_comes_last_and_timeseries_data_uses_buckets_below_8_3() {
    let ts = Namespace {
        kind: NsKind::Timeseries,
        options: doc! {"timeseries": {"timeField": "t"}},
        ..Namespace::collection("d", "ts")
    };
    let view = Namespace {
        kind: NsKind::View,
        options: doc! {"viewOn": "c", "pipeline": []},
        ..Namespace::collection("d", "v")
    };
    let nss = vec![oplog_namespace(), Namespace::collection("d", "c"), ts, view];
    let doc = |i: i32| bytes_of(doc! {"i": i});
    let ops = || {
        vec![
            Op::Docs(0, vec![doc(100)]),
            Op::Docs(1, vec![doc(1)]),
            Op::Docs(0, vec![doc(101)]),
            Op::End(0),
            Op::Docs(2, vec![doc(2)]),
            Op::End(2),
            Op::End(3),
            Op::Docs(1, vec![doc(3)]),
            Op::End(1),
        ]
    };
    for (server, data_name) in [
        (Some("8.2.11"), "system.buckets.ts"),
        (None, "system.buckets.ts"),
        (Some("8.3.0"), "ts"),
    ] {
        let cat = catalog(server, nss.clone());
        let a = write_archive(&cat, ops());
        let b = blocks(&a);
        let names: Vec<(&str, &str, bool)> = b
            .iter()
            .map(|x| (x.0.as_str(), x.1.as_str(), x.2))
            .collect();
        assert_eq!(
            names,
            [
                ("d", data_name, false),
                ("d", data_name, true),
                ("d", "v", false),
                ("d", "v", true),
                ("d", "c", false),
                ("d", "c", true),
                ("", "oplog", false),
                ("", "oplog", true),
            ]
        );
        assert_eq!(b[6].4, 2);
        let report = check(&a, true);
        assert!(report.is_ok(), "{:?}", report.findings);
        let warned = report
            .findings
            .iter()
            .any(|f| f.code == "archive-server-version");
        assert_eq!(warned, server.is_none());
        let mut r = ArchiveReader::new(&a[..], "t").unwrap();
        assert_eq!(r.header().server_version, server.unwrap_or("unknown"));
        let back_cat = r.catalog().clone();
        assert_eq!(back_cat.namespaces, cat.namespaces);
        let docs = drain(&mut r);
        assert_eq!(docs[0], [doc(100), doc(101)]);
        assert_eq!(docs[2], [doc(2)]);
        // The prelude lists the oplog as mongodump does.
        let e = &r.prelude().entries[0];
        assert_eq!(
            (
                e.db.as_str(),
                e.collection.as_str(),
                e.metadata.as_str(),
                e.kind.as_str()
            ),
            ("", "oplog", "", "")
        );
        assert_eq!(r.prelude().entries[2].collection, "ts");
        assert_eq!(r.prelude().entries[2].kind, "timeseries");
    }
}

#[test]
fn writer_refuses_misuse_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.archive");
    let view = Namespace {
        kind: NsKind::View,
        ..Namespace::collection("d", "v")
    };
    let cat = catalog(None, vec![Namespace::collection("d", "c"), view]);
    let mut w: Box<dyn Sink> = Box::new(ArchiveWriter::create(&dest, false, false).unwrap());
    assert!(w.write_docs(0, bytes_of(doc! {}), 1).is_err());
    w.begin(&cat).unwrap();
    assert!(matches!(
        w.write_docs(1, bytes_of(doc! {}), 1),
        Err(SinkError::Unsupported(_))
    ));
    assert!(matches!(
        w.write_docs(0, bytes_of(doc! {}), 2),
        Err(SinkError::Misuse(_))
    ));
    assert!(matches!(
        w.write_docs(0, vec![1, 2, 3], 1),
        Err(SinkError::Misuse(_))
    ));
    assert!(matches!(
        w.write_docs(7, bytes_of(doc! {}), 1),
        Err(SinkError::Misuse(_))
    ));
    let huge = bytes_of(
        doc! {"b": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 16 << 20] }},
    );
    assert!(matches!(
        w.write_docs(0, huge, 1),
        Err(SinkError::Unsupported(_))
    ));
    w.end_namespace(0, &NsStatus::Complete).unwrap();
    assert!(w.end_namespace(0, &NsStatus::Complete).is_err());
    let err = w.finish(&Summary::default()).unwrap_err();
    assert!(err.to_string().contains("d.v"), "{err}");
    assert!(!dest.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Two namespaces stored under the same archive name.
    let clash = catalog(
        Some("8.0.0"),
        vec![
            Namespace {
                kind: NsKind::Timeseries,
                ..Namespace::collection("d", "x")
            },
            Namespace::collection("d", "system.buckets.x"),
        ],
    );
    let mut w = ArchiveWriter::with_output(Box::new(MemOut::default()));
    assert!(matches!(w.begin(&clash), Err(SinkError::Unsupported(_))));
}

#[test]
fn written_file_is_committed_on_finish() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.archive");
    let a = edge();
    let mut src = ArchiveReader::new(&a[..], "edge.archive").unwrap();
    copy(
        &mut src,
        Box::new(ArchiveWriter::create(&dest, false, false).unwrap()),
    );
    assert_eq!(std::fs::read(&dest).unwrap(), edge());
    assert!(ArchiveWriter::create(&dest, false, false).is_err());
}

#[test]
fn never_panics_on_damaged_input() {
    let cat = catalog(
        Some("8.2.0"),
        vec![
            Namespace::collection("d", "c"),
            Namespace {
                kind: NsKind::View,
                options: doc! {"viewOn": "c", "pipeline": [{"$match": {"a": 1}}]},
                ..Namespace::collection("d", "v")
            },
            oplog_namespace(),
        ],
    );
    let a = write_archive(
        &cat,
        vec![
            Op::Docs(
                0,
                vec![
                    bytes_of(doc! {"a": 1, "s": "x"}),
                    bytes_of(doc! {"b": [1, 2]}),
                ],
            ),
            Op::End(0),
            Op::End(1),
            Op::Docs(
                2,
                vec![bytes_of(
                    doc! {"ts": bson::Timestamp { time: 1, increment: 1 }},
                )],
            ),
            Op::End(2),
        ],
    );
    assert!(check(&a, true).is_ok());
    // Every prefix.
    for cut in 0..a.len() {
        read_all_for_fuzz(&a[..cut]);
        assert!(!check(&a[..cut], true).complete, "cut {cut}");
    }
    // Deterministic byte flips.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut b = a.clone();
        let i = (seed as usize) % b.len();
        b[i] = (seed >> 32) as u8;
        read_all_for_fuzz(&b);
    }
    // Lengths that claim far more than there is.
    let mut lie = a[..4].to_vec();
    lie.extend_from_slice(&(16 * 1024 * 1024i32).to_le_bytes());
    read_all_for_fuzz(&lie);
    read_all_for_fuzz(&[]);
    read_all_for_fuzz(&[0xff; 64]);
}

#[test]
fn reads_from_a_slow_reader() {
    // One byte per read call must not change anything.
    struct Slow<'a>(&'a [u8]);
    impl Read for Slow<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }
    let a = edge();
    let mut r = ArchiveReader::new(Slow(&a[..100_000]), "slow").unwrap();
    let err = loop {
        match r.next_chunk() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("truncated input read to the end"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(err.contains("offset"), "{err}");
    // Errors repeat rather than turning into a clean end.
    assert!(r.next_chunk().is_err());
}
