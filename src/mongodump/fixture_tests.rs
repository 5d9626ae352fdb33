//! Tests against the dumps written by the real mongodump 100.18.0: the four fixture
//! forms must give the documents of `manifest.json`, the same catalog, and must be
//! written back byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, NsKind, Summary};
use crate::mongodump::archive::{self, ArchiveOutput, ArchiveReader, open_archive};
use crate::mongodump::dir::{DirReader, DirWriter, DirWriterOptions, PreludeAt};
use crate::mongodump::{ArchiveWriter, gunzip};
use crate::sink::{Sink, SinkError};
use crate::source::{Chunk, Source};

pub(crate) const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/mongodump-100.18"
);

pub(crate) fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

/// An in-memory archive output.
#[derive(Clone, Default)]
pub(crate) struct MemOut(pub(crate) Arc<Mutex<Vec<u8>>>);

impl MemOut {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl Write for MemOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ArchiveOutput for MemOut {
    fn commit(self: Box<Self>) -> Result<(), SinkError> {
        Ok(())
    }
    fn display_path(&self) -> PathBuf {
        PathBuf::from("memory")
    }
}

/// Every document of every namespace, checking the `Source` contract on the way:
/// whole documents, chunks of at most 4 MiB unless a single document, exactly one end
/// per namespace and nothing after it.
pub(crate) fn drain(src: &mut dyn Source) -> Vec<Vec<Vec<u8>>> {
    let n = src.catalog().namespaces.len();
    let mut docs: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n];
    let mut ended = vec![false; n];
    while let Some(chunk) = src.next_chunk().unwrap() {
        match chunk {
            Chunk::Docs { ns, data, count } => {
                assert!(!ended[ns], "documents after the end of namespace {ns}");
                let split: Vec<Vec<u8>> = crate::docs::DocIter::new(&data)
                    .map(|d| d.unwrap().to_vec())
                    .collect();
                assert_eq!(split.len() as u64, count);
                assert!(count > 0);
                assert!(data.len() <= archive::CHUNK_TARGET || count == 1);
                docs[ns].extend(split);
            }
            Chunk::End { ns, .. } => {
                assert!(!ended[ns], "namespace {ns} ended twice");
                ended[ns] = true;
            }
        }
    }
    assert!(ended.iter().all(|e| *e), "a namespace never ended");
    docs
}

/// Copies a source into a sink.
pub(crate) fn copy(src: &mut dyn Source, mut sink: Box<dyn Sink>) {
    let catalog = src.catalog().clone();
    sink.begin(&catalog).unwrap();
    while let Some(chunk) = src.next_chunk().unwrap() {
        match chunk {
            Chunk::Docs { ns, data, count } => sink.write_docs(ns, data, count).unwrap(),
            Chunk::End { ns, status } => sink.end_namespace(ns, &status).unwrap(),
        }
    }
    sink.finish(&Summary::default()).unwrap();
}

fn sha256_sorted(docs: &[Vec<u8>]) -> String {
    let mut sorted: Vec<&Vec<u8>> = docs.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for d in sorted {
        h.update(d);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a source's documents against `manifest.json` and returns its catalog.
fn check_manifest(src: &mut dyn Source) -> Catalog {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("manifest.json")).unwrap()).unwrap();
    let manifest = manifest.as_object().unwrap();
    let catalog = src.catalog().clone();
    let docs = drain(src);
    let mut covered = BTreeSet::new();
    for (i, ns) in catalog.namespaces.iter().enumerate() {
        // A dump holds the buckets of a time-series collection.
        let key = match ns.kind {
            NsKind::Timeseries => format!("{}.{}", ns.db, ns.bucket_collection()),
            _ => ns.full_name(),
        };
        let entry = &manifest[&key];
        covered.insert(key.clone());
        if ns.kind == NsKind::View {
            assert_eq!(entry["type"], "view", "{key}");
            assert!(docs[i].is_empty());
            continue;
        }
        assert_eq!(
            docs[i].len() as u64,
            entry["count"].as_u64().unwrap(),
            "{key}"
        );
        assert_eq!(
            sha256_sorted(&docs[i]),
            entry["sha256"].as_str().unwrap(),
            "{key}"
        );
    }
    // Everything in the manifest is covered, except what mongodump does not dump
    // (system.views) and the logical view of the time-series collection.
    let missing: Vec<&String> = manifest.keys().filter(|k| !covered.contains(*k)).collect();
    assert_eq!(missing, ["edge.series", "edge.system.views"]);
    assert_eq!(catalog.namespaces.len(), 15);
    catalog
}

fn sorted(cat: &Catalog) -> Vec<crate::catalog::Namespace> {
    let mut v = cat.namespaces.clone();
    v.sort_by_key(|n| n.full_name());
    v
}

#[test]
fn all_four_forms_match_the_manifest_and_each_other() {
    let mut forms: Vec<(&str, Box<dyn Source>)> = vec![
        ("dir", Box::new(DirReader::open(&fixture("dir")).unwrap())),
        (
            "dir/edge",
            Box::new(DirReader::open(&fixture("dir/edge")).unwrap()),
        ),
        (
            "dir-gzip",
            Box::new(DirReader::open(&fixture("dir-gzip")).unwrap()),
        ),
        (
            "edge.archive",
            Box::new(open_archive(&fixture("edge.archive")).unwrap()),
        ),
        (
            "edge.archive.gz",
            Box::new(open_archive(&fixture("edge.archive.gz")).unwrap()),
        ),
    ];
    let mut catalogs = Vec::new();
    for (name, src) in forms.iter_mut() {
        let cat = check_manifest(src.as_mut());
        assert_eq!(
            cat.source.tool.as_deref(),
            Some("mongodump 100.18.0-21-g8fa3cfc82"),
            "{name}"
        );
        assert_eq!(
            cat.source.server_version.as_deref(),
            Some("8.2.11"),
            "{name}"
        );
        catalogs.push((*name, cat));
    }
    let reference = sorted(&catalogs[0].1);
    for (name, cat) in &catalogs[1..] {
        assert_eq!(sorted(cat), reference, "{name} differs from dir");
    }
    // The kinds the fixture holds.
    let kind = |coll: &str| {
        reference
            .iter()
            .find(|n| n.collection == coll)
            .map(|n| n.kind)
            .unwrap()
    };
    assert_eq!(kind("series"), NsKind::Timeseries);
    assert_eq!(kind("v_types"), NsKind::View);
    assert_eq!(kind("capped"), NsKind::Collection);
    // Directory catalogs are sorted by name; the archive keeps its prelude order.
    let dir_names: Vec<String> = catalogs[0]
        .1
        .namespaces
        .iter()
        .map(|n| n.full_name())
        .collect();
    let mut s = dir_names.clone();
    s.sort();
    assert_eq!(dir_names, s);
    assert_eq!(catalogs[3].1.namespaces[0].collection, "ünïcödé");
    assert_eq!(catalogs[3].1.source.concurrent_collections, Some(4));
}

#[test]
fn archive_written_back_is_byte_identical() {
    let original = std::fs::read(fixture("edge.archive")).unwrap();
    let mut src = ArchiveReader::new(&original[..], "edge.archive").unwrap();
    let out = MemOut::default();
    copy(
        &mut src,
        Box::new(ArchiveWriter::with_output(Box::new(out.clone()))),
    );
    let written = out.bytes();
    assert_eq!(written.len(), original.len());
    assert!(
        written == original,
        "first difference at byte {:?}",
        first_diff(&written, &original)
    );
}

#[test]
fn gzipped_archive_written_back_decompresses_to_the_fixture() {
    // A separate mongodump run: its prelude order differs from edge.archive's, so the
    // reference is its own decompressed stream.
    let mut original = Vec::new();
    gunzip(std::fs::File::open(fixture("edge.archive.gz")).unwrap())
        .read_to_end(&mut original)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.archive.gz");
    let mut src = open_archive(&fixture("edge.archive.gz")).unwrap();
    copy(
        &mut src,
        Box::new(ArchiveWriter::create(&dest, true, false).unwrap()),
    );
    let mut plain = Vec::new();
    gunzip(std::fs::File::open(&dest).unwrap())
        .read_to_end(&mut plain)
        .unwrap();
    assert!(
        plain == original,
        "first difference at byte {:?}",
        first_diff(&plain, &original)
    );
}

fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or(if a.len() == b.len() {
            None
        } else {
            Some(a.len().min(b.len()))
        })
}

/// Every file under `root`, relative path → content (decompressed when `gunzip_all`).
fn tree(root: &Path, gunzip_all: bool) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let raw = std::fs::read(&p).unwrap();
            let content = if gunzip_all {
                let mut v = Vec::new();
                gunzip(&raw[..]).read_to_end(&mut v).unwrap();
                v
            } else {
                raw
            };
            out.insert(rel, content);
        }
    }
    out
}

fn assert_same_tree(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in want {
        assert!(
            got[k] == *v,
            "{k} differs at byte {:?}",
            first_diff(&got[k], v)
        );
    }
}

#[test]
fn directory_written_back_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dump");
    let mut src = DirReader::open(&fixture("dir")).unwrap();
    assert_eq!(src.prelude_at(), Some(PreludeAt::DbDir));
    let opts = DirWriterOptions {
        gzip: false,
        prelude: PreludeAt::DbDir,
        merge: false,
    };
    copy(&mut src, Box::new(DirWriter::create(&dest, opts).unwrap()));
    assert_same_tree(&tree(&dest, false), &tree(&fixture("dir"), false));
}

#[test]
fn gzipped_directory_written_back_is_identical_after_decompression() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dump");
    let mut src = DirReader::open(&fixture("dir-gzip")).unwrap();
    assert!(src.is_gzip());
    let opts = DirWriterOptions {
        gzip: true,
        prelude: PreludeAt::DbDir,
        merge: false,
    };
    copy(&mut src, Box::new(DirWriter::create(&dest, opts).unwrap()));
    assert_same_tree(&tree(&dest, true), &tree(&fixture("dir-gzip"), true));
}

#[test]
fn archive_converted_to_a_directory_matches_mongodumps_directory() {
    // The archive and the directory were dumped from the same database: converting
    // one into the other gives exactly the files mongodump wrote.
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dump");
    let mut src = open_archive(&fixture("edge.archive")).unwrap();
    let opts = DirWriterOptions {
        gzip: false,
        prelude: PreludeAt::DbDir,
        merge: false,
    };
    copy(&mut src, Box::new(DirWriter::create(&dest, opts).unwrap()));
    assert_same_tree(&tree(&dest, false), &tree(&fixture("dir"), false));
}

#[test]
fn directory_converted_to_an_archive_reads_back_the_same() {
    let mut src = DirReader::open(&fixture("dir-gzip")).unwrap();
    let out = MemOut::default();
    copy(
        &mut src,
        Box::new(ArchiveWriter::with_output(Box::new(out.clone()))),
    );
    let bytes = out.bytes();
    let mut back = ArchiveReader::new(&bytes[..], "memory").unwrap();
    check_manifest(&mut back);
    // Same prelude as mongodump's archive, in a different order.
    let ours = back.prelude().entries.clone();
    let theirs = open_archive(&fixture("edge.archive"))
        .unwrap()
        .prelude()
        .entries
        .clone();
    let key = |e: &archive::PreludeEntry| {
        (
            e.db.clone(),
            e.collection.clone(),
            e.metadata.clone(),
            e.kind.clone(),
        )
    };
    let mut a: Vec<_> = ours.iter().map(key).collect();
    let mut b: Vec<_> = theirs.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // And it verifies clean.
    let report = archive::verify_stream(
        &bytes[..],
        false,
        Path::new("memory"),
        &Default::default(),
        &mut |_| {},
    );
    assert!(report.is_ok(), "{:?}", report.findings);
}
