//! Entry points of the fuzz targets: each takes arbitrary bytes and drives one family of
//! oxidump's readers over them. `fuzz_targets/<name>.rs` calls the function `<name>`.
//!
//! The integration tests compile this same file (`tests/fuzz_regressions.rs` includes it
//! with `#[path]`) and replay every input under `fuzz/regressions/<name>/` through these
//! functions, so a target and its regression test cannot drift apart. The file therefore
//! uses only oxidump and its own dependencies (`bson`, `serde_json`), never libFuzzer.
//!
//! Every entry point must return without panicking (a failed assertion is a panic),
//! without hanging and within libFuzzer's memory limits (`-rss_limit_mb=512
//! -malloc_limit_mb=512`), whatever the bytes. The assertions below state what must
//! also hold; most important, in [`oxd_roundtrip`], what is written reads back.

use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Timestamp, doc};
use oxidump::catalog::{Catalog, Namespace, NsKind, NsStatus, OplogRange, SourceInfo, Summary};
use oxidump::docs::{self, DocIter};
use oxidump::extjson;
use oxidump::mongodump::{self, archive};
use oxidump::oxd::frame::FrameBuilder;
use oxidump::oxd::nsend::{self, NsDigest, NsEnd};
use oxidump::oxd::reader::{Index, OxdSource, read_frame_at};
use oxidump::oxd::writer::{OxdWriter, WriterOptions};
use oxidump::oxd::{self, check, header, record, trailer};
use oxidump::source::{Chunk, Source};
use oxidump::verify::{Report, VerifyOptions};

/// The name inputs are given in messages and reports.
const PATH: &str = "fuzz-input";

// ---------------------------------------------------------------------------------------
// OXD
// ---------------------------------------------------------------------------------------

/// `oxd_reader`: the bytes as an OXD archive, through every reading path: the streaming
/// [`OxdSource`], [`Index::open`] with [`read_frame_at`] for every indexed frame, and the
/// checker [`check::verify`] with `deep`.
pub fn oxd_reader(data: &[u8]) {
    let streamed = oxd_stream(data, false);
    let indexed = oxd_index(data, false);
    let report = oxd_verify(data);
    agree(&streamed, &indexed, &report);
}

/// `oxd_mutate`: edits applied to a valid archive, so that the fuzzer starts deep.
///
/// `data[0]` picks the archive ([`bases`]: bits 0–1) and whether the record checksums
/// are recomputed after the edits (bit 7: the damage then reaches manifest, footer and
/// frame decoding instead of stopping at a checksum). The rest is a list of 4-byte
/// edits `[op, pos_lo, pos_hi, value]` ([`apply_edit`]). The result goes through
/// [`oxd_reader`]'s paths; an unchanged archive must read back cleanly.
pub fn oxd_mutate(data: &[u8]) {
    let Some((&sel, edits)) = data.split_first() else {
        return;
    };
    let base = &bases()[(sel & 3) as usize];
    let mut a = base.clone();
    for e in edits.chunks_exact(4) {
        apply_edit(&mut a, [e[0], e[1], e[2], e[3]]);
        if a.len() > 1 << 20 {
            break;
        }
    }
    if sel & 0x80 != 0 {
        fix_checksums(&mut a);
    }
    let streamed = oxd_stream(&a, false);
    let indexed = oxd_index(&a, false);
    let report = oxd_verify(&a);
    if a == *base {
        assert!(streamed.is_ok(), "unchanged archive: {:?}", streamed.err());
        assert!(indexed.is_ok(), "unchanged archive: {:?}", indexed.err());
        assert!(report.is_ok(), "unchanged archive: {:?}", report.findings);
    }
    agree(&streamed, &indexed, &report);
}

/// `oxd_roundtrip`: an archive written with [`OxdWriter`] from a description taken from
/// the bytes ([`Plan`]) reads back exactly: catalog, every namespace's documents in
/// order, partial flags and summary, through the streaming reader and through the
/// index; the checker finds it complete, with an error only for documents that
/// [`docs::deep_check`] refuses.
pub fn oxd_roundtrip(data: &[u8]) {
    let plan = Plan::parse(data);
    let (archive, expected) = plan.write();
    let want: Vec<NsRead> = expected
        .iter()
        .map(|e| NsRead {
            totals: e.digest.totals(),
            data: Some(e.data.clone()),
            partial: Some(e.partial),
        })
        .collect();

    let (cat, got, summary) = oxd_stream(&archive, true).expect("streaming reader");
    assert_eq!(
        cat, plan.catalog,
        "catalog read back by the streaming reader"
    );
    assert_eq!(got, want, "documents read back by the streaming reader");
    assert_eq!(summary.as_ref(), Some(&plan.summary), "summary");

    let (cat, got, summary) = oxd_index(&archive, true).expect("index");
    assert_eq!(cat, plan.catalog, "catalog read back through the index");
    assert_eq!(got, want, "documents read back through the index");
    assert_eq!(
        summary.as_ref(),
        Some(&plan.summary),
        "summary in the footer"
    );

    let report = oxd_verify(&archive);
    assert!(report.complete, "{:?}", report.findings);
    let invalid = expected.iter().any(|e| e.invalid_docs);
    for f in &report.findings {
        assert!(invalid && f.code == "doc-deep", "unexpected finding {f}");
    }
    assert_eq!(
        report.has_errors(),
        invalid,
        "deep check disagrees: {:?}",
        report.findings
    );
    let totals: Vec<(u64, u64)> = report
        .namespaces
        .iter()
        .map(|n| (n.documents, n.bytes))
        .collect();
    let want_totals: Vec<(u64, u64)> = want
        .iter()
        .map(|n| (n.totals.doc_count, n.totals.raw_bytes))
        .collect();
    assert_eq!(totals, want_totals, "checker's namespace totals");
}

/// What one reading path got out of a namespace.
#[derive(Debug, Clone, PartialEq)]
struct NsRead {
    /// Counts and digest, as an NS_END record holds them.
    totals: NsEnd,
    /// The documents' bytes, concatenated (kept only when asked: a few kilobytes of
    /// input can decompress to hundreds of megabytes).
    data: Option<Vec<u8>>,
    /// Whether the namespace ended partial (the stream's end chunk, the footer's flags).
    partial: Option<bool>,
}

struct Collect {
    digests: Vec<NsDigest>,
    data: Vec<Option<Vec<u8>>>,
    partial: Vec<Option<bool>>,
}

impl Collect {
    fn new(n: usize, keep: bool) -> Collect {
        Collect {
            digests: (0..n).map(|_| NsDigest::default()).collect(),
            data: (0..n).map(|_| keep.then(Vec::new)).collect(),
            partial: vec![None; n],
        }
    }

    fn add(&mut self, ns: usize, raw: &[u8], count: u64) {
        self.digests[ns].add_frame(raw, count);
        if let Some(d) = &mut self.data[ns] {
            d.extend_from_slice(raw);
        }
    }

    fn finish(self) -> Vec<NsRead> {
        self.digests
            .iter()
            .zip(self.data)
            .zip(self.partial)
            .map(|((d, data), partial)| NsRead {
                totals: d.totals(),
                data,
                partial,
            })
            .collect()
    }
}

type ReadBack = Result<(Catalog, Vec<NsRead>, Option<Summary>), String>;

/// Drains the streaming reader to its end or its first error.
fn oxd_stream(data: &[u8], keep: bool) -> ReadBack {
    let mut s = OxdSource::new(data, PATH.into()).map_err(|e| e.to_string())?;
    let mut c = Collect::new(s.catalog().namespaces.len(), keep);
    while let Some(chunk) = s.next_chunk().map_err(|e| e.to_string())? {
        match chunk {
            Chunk::Docs { ns, data, count } => c.add(ns, &data, count),
            Chunk::End { ns, status } => {
                assert!(c.partial[ns].is_none(), "namespace {ns} ended twice");
                c.partial[ns] = Some(matches!(status, NsStatus::Partial(_)));
            }
        }
    }
    assert!(
        c.partial.iter().all(Option::is_some),
        "the stream ended without ending every namespace"
    );
    Ok((s.catalog().clone(), c.finish(), s.summary().cloned()))
}

/// Opens the index and reads every frame it lists; any error stops.
fn oxd_index(data: &[u8], keep: bool) -> ReadBack {
    let mut f = Cursor::new(data);
    let idx = Index::open(&mut f).map_err(|e| e.to_string())?;
    let mut c = Collect::new(idx.catalog.namespaces.len(), keep);
    for (p, e) in c.partial.iter_mut().zip(&idx.footer.namespaces) {
        *p = Some(nsend::is_partial(e.flags));
    }
    for e in &idx.footer.frames {
        let (h, raw) = read_frame_at(&mut f, e).map_err(|e| e.to_string())?;
        assert_eq!(
            (h.ns_id, h.seq),
            (e.ns_id, e.seq),
            "read_frame_at returned another frame than the entry names"
        );
        c.add(h.ns_id as usize, &raw, h.doc_count as u64);
    }
    Ok((idx.catalog, c.finish(), Some(idx.footer.summary)))
}

fn oxd_verify(data: &[u8]) -> Report {
    let mut report = Report::new(PATH, "oxd");
    check::verify(
        data,
        Path::new(PATH),
        &VerifyOptions { deep: true },
        &mut report,
        &mut |_| {},
    );
    report
}

/// An archive the checker passes must read back in full, the same way, through the
/// streaming reader and through the index.
fn agree(streamed: &ReadBack, indexed: &ReadBack, report: &Report) {
    if !report.is_ok() {
        return;
    }
    let s = streamed.as_ref().unwrap_or_else(|e| {
        panic!("the checker passes the archive, the streaming reader fails: {e}")
    });
    let i = indexed
        .as_ref()
        .unwrap_or_else(|e| panic!("the checker passes the archive, the index fails: {e}"));
    assert_eq!(s.0, i.0, "catalogs differ between stream and index");
    let totals = |r: &[NsRead]| r.iter().map(|n| n.totals).collect::<Vec<_>>();
    assert_eq!(
        totals(&s.1),
        totals(&i.1),
        "documents differ between stream and index"
    );
    assert_eq!(s.2, i.2, "summaries differ between stream and index");
}

// ---- seed archives and edits ----

/// The valid archives [`oxd_mutate`] starts from: frames stored raw, zstd level 1,
/// zstd level 3, and an archive without namespaces.
fn bases() -> &'static [Vec<u8>; 4] {
    static BASES: OnceLock<[Vec<u8>; 4]> = OnceLock::new();
    BASES.get_or_init(|| {
        [
            base_archive(None, true),
            base_archive(Some(1), true),
            base_archive(Some(3), true),
            base_archive(None, false),
        ]
    })
}

fn base_archive(level: Option<i32>, with_data: bool) -> Vec<u8> {
    let mut orders = Namespace::collection("shop", "orders");
    orders.options = doc! {"validator": {"qty": {"$gte": 0}}};
    orders.indexes = vec![
        doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"},
        doc! {"v": 2, "key": {"sku": 1, "at": -1}, "name": "sku_1_at_-1", "unique": true},
    ];
    orders.uuid = Some([0x5a; 16]);
    let mut view = Namespace::collection("shop", "big_orders");
    view.kind = NsKind::View;
    view.options = doc! {"viewOn": "orders", "pipeline": [{"$match": {"qty": {"$gt": 10}}}]};
    let mut series = Namespace::collection("metrics", "cpu");
    series.kind = NsKind::Timeseries;
    series.options = doc! {"timeseries": {"timeField": "t", "granularity": "seconds"}};
    let catalog = Catalog {
        source: SourceInfo {
            tool: Some("oxidump fuzz".into()),
            server_version: Some("8.2.1".into()),
            created_at: Some(DateTime::from_millis(1_700_000_000_000)),
            ..SourceInfo::default()
        },
        namespaces: if with_data {
            vec![orders, view, series]
        } else {
            Vec::new()
        },
    };
    let opts = WriterOptions {
        level,
        frame_size: 400,
        in_flight: 4,
    };
    let mut w = OxdWriter::new(Vec::new(), &catalog, opts).expect("writer");
    if with_data {
        let docs = |from: i32, n: i32| {
            let mut b = FrameBuilder::new(400);
            let mut frames = Vec::new();
            for i in from..from + n {
                let d = doc! {
                    "_id": i,
                    "sku": format!("sku-{}", i % 7),
                    "qty": i64::from(i) * 3,
                    "at": DateTime::from_millis(1_700_000_000_000 + i64::from(i)),
                    "tags": ["a", {"nested": [1.5, Bson::Null, {"deep": true}]}],
                    "bin": Binary { subtype: BinarySubtype::Uuid, bytes: vec![i as u8; 16] },
                };
                if let Some(f) = b.push(&bson::serialize_to_vec(&d).expect("serializes")) {
                    frames.push(f);
                }
            }
            frames.extend(b.take());
            frames
        };
        for (raw, n) in docs(0, 12) {
            w.write_frame(0, raw, n).expect("frame");
        }
        w.end_namespace(1, &NsStatus::Complete).expect("end");
        for (raw, n) in docs(100, 3) {
            w.write_frame(2, raw, n).expect("frame");
        }
        w.end_namespace(2, &NsStatus::Partial("dropped".into()))
            .expect("end");
        w.end_namespace(0, &NsStatus::Complete).expect("end");
    }
    let summary = Summary {
        completed_at: Some(DateTime::from_millis(1_700_000_001_000)),
        oplog: Some(OplogRange {
            start: Timestamp {
                time: 1,
                increment: 2,
            },
            end: Timestamp {
                time: 3,
                increment: 4,
            },
        }),
        warnings: vec!["shop.gone was dropped during the dump".into()],
        extra: Default::default(),
    };
    w.finish(&summary).expect("finish").0
}

/// Applies one edit `[op, pos_lo, pos_hi, value]` to `a`; `pos` is taken modulo the
/// length (plus one, so the end can be reached).
fn apply_edit(a: &mut Vec<u8>, [op, lo, hi, v]: [u8; 4]) {
    let pos = u16::from_le_bytes([lo, hi]) as usize % (a.len() + 1);
    let at = pos.min(a.len().saturating_sub(1));
    match op % 8 {
        0 | 1 if !a.is_empty() => a[at] ^= if v == 0 { 0x01 } else { v },
        2 if !a.is_empty() => a[at] = v,
        3 => a.insert(pos, v),
        4 if pos < a.len() => {
            a.remove(pos);
        }
        5 => a.truncate(pos),
        6 => {
            // an interesting 32-bit value, as length and count fields hold
            let x: u32 = match v % 8 {
                0 => 0,
                1 => 1,
                2 => 5,
                3 => 0x7fff_ffff,
                4 => 0xffff_ffff,
                5 => 0x8000_0000,
                6 => oxd::MAX_FRAME_RAW + 1,
                _ => oxd::MAX_META_RAW,
            };
            let b = x.to_le_bytes();
            for (i, byte) in b.iter().enumerate() {
                if let Some(t) = a.get_mut(pos + i) {
                    *t = *byte;
                }
            }
        }
        7 => {
            // duplicate a run of bytes in place (a repeated record, a stuttering write)
            let end = (pos + v as usize * 4).min(a.len());
            let run = a[pos..end].to_vec();
            a.splice(pos..pos, run);
        }
        _ => {}
    }
}

/// Recomputes every checksum the format has, wherever the structures are found: the
/// file header's, each record header's and payload's, the trailer's.
fn fix_checksums(a: &mut [u8]) {
    if a.len() >= header::LEN && a[..8] == header::MAGIC {
        let crc = oxd::crc32(&[&a[..12]]);
        a[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    let mut pos = header::LEN;
    while pos + record::LEN <= a.len() {
        if a[pos..pos + 4] != record::SYNC {
            pos += 1;
            continue;
        }
        let stored = u32::from_le_bytes(a[pos + 16..pos + 20].try_into().expect("4")) as usize;
        let start = pos + record::LEN;
        let end = start.saturating_add(stored).min(a.len());
        let crc = oxd::crc32(&[&a[pos..pos + 28], &a[start..end]]);
        a[pos + 28..pos + 32].copy_from_slice(&crc.to_le_bytes());
        let crc = oxd::crc32(&[&a[pos..pos + 32]]);
        a[pos + 32..pos + 36].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
    let n = a.len();
    if n >= trailer::LEN && a[n - 8..] == trailer::END_MAGIC {
        let t = n - trailer::LEN;
        let crc = oxd::crc32(&[&a[t..t + 20]]);
        a[t + 20..t + 24].copy_from_slice(&crc.to_le_bytes());
    }
}

// ---- round trip ----

/// Namespace names [`Plan`] picks from (distinct, some with characters that need care).
const NAMES: [(&str, &str); 6] = [
    ("shop", "orders"),
    ("metrics", "cpu"),
    ("db with space", "coll.with.dots"),
    ("ünï", "cöd€ 😀"),
    ("local", "oplog.rs"),
    ("admin", "$admin.system.users"),
];

/// An archive to write, read from fuzz bytes:
///
/// - byte 0: bits 0–1 the zstd level (stored, 1, 3, 9), bits 2–3 the number of
///   namespaces minus one, bits 4–6 the first of [`NAMES`] used;
/// - byte 1: two bits per namespace, its kind (collection, view, time series, oplog);
/// - byte 2: the target frame size, `16 + 8 * b`;
/// - then operations: `op` with `ns = (op >> 2) % namespaces`, by `op & 3`:
///   0 and 1: a document `{_id, b: BinData}` of the next `len` bytes (repeated 64
///   times when `op & 0x80`; with `op & 0x40` and kind 1 the bytes are framed as a
///   document as they are, valid BSON or not); 2: end the namespace (partial when
///   `op & 0x80`); 3: cut the namespace's frame here.
struct Plan {
    catalog: Catalog,
    level: Option<i32>,
    frame_size: usize,
    ops: Vec<Op>,
    summary: Summary,
}

enum Op {
    Doc(u32, Vec<u8>),
    End(u32, bool),
    Cut(u32),
}

/// What was written for one namespace.
struct Written {
    data: Vec<u8>,
    digest: NsDigest,
    partial: bool,
    invalid_docs: bool,
}

impl Plan {
    fn parse(data: &[u8]) -> Plan {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        let (b0, b1, b2) = (byte(0), byte(1), byte(2));
        let level = [None, Some(1), Some(3), Some(9)][(b0 & 3) as usize];
        let n = ((b0 >> 2) & 3) as usize + 1;
        let first = ((b0 >> 4) & 7) as usize;
        let namespaces: Vec<Namespace> = (0..n)
            .map(|i| {
                let (db, coll) = NAMES[(first + i) % NAMES.len()];
                let mut ns = Namespace::collection(db, coll);
                ns.kind = [
                    NsKind::Collection,
                    NsKind::View,
                    NsKind::Timeseries,
                    NsKind::Oplog,
                ][((b1 >> (2 * i)) & 3) as usize];
                ns.uuid = (i % 2 == 0).then_some([i as u8 ^ b1; 16]);
                if ns.kind == NsKind::View {
                    ns.options = doc! {"viewOn": "x", "pipeline": []};
                }
                ns
            })
            .collect();
        let mut ops = Vec::new();
        let mut rest = data.get(3..).unwrap_or_default();
        let mut id = 0i64;
        while let Some((&op, tail)) = rest.split_first() {
            rest = tail;
            let ns = ((op >> 2) as usize % n) as u32;
            match op & 3 {
                0 | 1 => {
                    let Some((&len, tail)) = rest.split_first() else {
                        break;
                    };
                    let take = (len as usize).min(tail.len());
                    let (bytes, tail) = tail.split_at(take);
                    rest = tail;
                    let mut bytes = bytes.to_vec();
                    if op & 0x80 != 0 {
                        bytes = bytes.repeat(64);
                    }
                    let doc = if op & 3 == 1 && op & 0x40 != 0 {
                        framed(&bytes)
                    } else {
                        id += 1;
                        let d = doc! {"_id": id, "b": Binary { subtype: BinarySubtype::Generic, bytes }};
                        bson::serialize_to_vec(&d).expect("serializes")
                    };
                    ops.push(Op::Doc(ns, doc));
                }
                2 => ops.push(Op::End(ns, op & 0x80 != 0)),
                _ => ops.push(Op::Cut(ns)),
            }
        }
        Plan {
            catalog: Catalog {
                source: SourceInfo {
                    tool: Some("oxidump fuzz".into()),
                    created_at: Some(DateTime::from_millis(i64::from(b2) << 20)),
                    concurrent_collections: Some(i32::from(b1)),
                    ..SourceInfo::default()
                },
                namespaces,
            },
            level,
            frame_size: 16 + 8 * b2 as usize,
            ops,
            summary: Summary {
                completed_at: Some(DateTime::from_millis(1_700_000_000_000)),
                oplog: (b0 & 0x80 != 0).then_some(OplogRange {
                    start: Timestamp {
                        time: b1.into(),
                        increment: 1,
                    },
                    end: Timestamp {
                        time: b2.into(),
                        increment: 2,
                    },
                }),
                warnings: if b0 & 0x80 != 0 {
                    vec!["a warning".into()]
                } else {
                    Vec::new()
                },
                extra: Default::default(),
            },
        }
    }

    /// Writes the archive; returns it with what was written for each namespace.
    fn write(&self) -> (Vec<u8>, Vec<Written>) {
        let n = self.catalog.namespaces.len();
        let opts = WriterOptions {
            level: self.level,
            frame_size: self.frame_size,
            in_flight: 3,
        };
        let mut w = OxdWriter::new(Vec::new(), &self.catalog, opts).expect("writer");
        let mut builders: Vec<FrameBuilder> =
            (0..n).map(|_| FrameBuilder::new(self.frame_size)).collect();
        let mut written: Vec<Written> = (0..n)
            .map(|_| Written {
                data: Vec::new(),
                digest: NsDigest::default(),
                partial: false,
                invalid_docs: false,
            })
            .collect();
        let mut ended = vec![false; n];
        let emit = |w: &mut OxdWriter<Vec<u8>>, wr: &mut Written, ns: u32, f: (Vec<u8>, u32)| {
            wr.digest.add_frame(&f.0, f.1.into());
            wr.data.extend_from_slice(&f.0);
            w.write_frame(ns, f.0, f.1).expect("frame");
        };
        for op in &self.ops {
            match op {
                Op::Doc(ns, doc) => {
                    let i = *ns as usize;
                    if ended[i] || !self.catalog.namespaces[i].has_data() {
                        continue;
                    }
                    written[i].invalid_docs |= docs::deep_check(doc).is_err();
                    if let Some(f) = builders[i].push(doc) {
                        emit(&mut w, &mut written[i], *ns, f);
                    }
                }
                Op::Cut(ns) => {
                    let i = *ns as usize;
                    if let Some(f) = builders[i].take() {
                        emit(&mut w, &mut written[i], *ns, f);
                    }
                }
                Op::End(ns, partial) => {
                    let i = *ns as usize;
                    if ended[i] {
                        continue;
                    }
                    if let Some(f) = builders[i].take() {
                        emit(&mut w, &mut written[i], *ns, f);
                    }
                    ended[i] = true;
                    written[i].partial = *partial;
                    let status = if *partial {
                        NsStatus::Partial("fuzz".into())
                    } else {
                        NsStatus::Complete
                    };
                    w.end_namespace(*ns, &status).expect("end");
                }
            }
        }
        for i in 0..n {
            if !ended[i] {
                if let Some(f) = builders[i].take() {
                    emit(&mut w, &mut written[i], i as u32, f);
                }
                w.end_namespace(i as u32, &NsStatus::Complete).expect("end");
            }
        }
        let (archive, _) = w.finish(&self.summary).expect("finish");
        (archive, written)
    }
}

/// `bytes` framed as one document: a length prefix and a terminator around them.
fn framed(bytes: &[u8]) -> Vec<u8> {
    let len = (bytes.len() + 5) as i32;
    let mut d = len.to_le_bytes().to_vec();
    d.extend_from_slice(bytes);
    d.push(0);
    d
}

// ---------------------------------------------------------------------------------------
// mongodump
// ---------------------------------------------------------------------------------------

/// `mongodump_archive`: the bytes as a mongodump `--archive` stream, through the reader
/// ([`archive::read_all_for_fuzz`], and a [`mongodump::ArchiveReader`] drained here) and
/// the checker ([`archive::verify_into`], deep; gzipped input too when the bytes start
/// like gzip). An archive the checker passes must read to its end.
pub fn mongodump_archive(data: &[u8]) {
    archive::read_all_for_fuzz(data);
    let opts = VerifyOptions { deep: true };
    let mut report = Report::new(PATH, "mongodump-archive");
    archive::verify_into(data, &opts, &mut report, &mut |_| {});
    if data.starts_with(&mongodump::GZIP_MAGIC) {
        let _ = archive::verify_stream(data, true, Path::new(PATH), &opts, &mut |_| {});
    }
    let read = (|| -> Result<(), String> {
        let mut r = mongodump::ArchiveReader::new(data, PATH).map_err(|e| e.to_string())?;
        while r.next_chunk().map_err(|e| e.to_string())?.is_some() {}
        Ok(())
    })();
    if report.is_ok() {
        assert!(
            read.is_ok(),
            "the checker passes the archive, the reader fails: {}",
            read.unwrap_err()
        );
    }
}

/// `metadata`: the bytes as a `.metadata.json` file. What parses must write back
/// ([`mongodump::Metadata::to_json`]) to text that parses again, to the same text.
pub fn metadata(data: &[u8]) {
    let Ok(md) = mongodump::parse_metadata(data) else {
        return;
    };
    let _ = md.ns_kind();
    let json = md.to_json();
    let again = mongodump::parse_metadata(json.as_bytes())
        .unwrap_or_else(|e| panic!("to_json wrote metadata that does not parse: {e}\n{json}"));
    assert_eq!(again.to_json(), json, "to_json after a round trip differs");
}

// ---------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------

/// `docs`: the bytes as a run of documents ([`docs::check_chain`], [`DocIter`],
/// [`docs::read_doc`], which must agree), each document and the whole input through
/// [`docs::deep_check`] and [`extjson::render`].
pub fn docs(data: &[u8]) {
    let chain = docs::check_chain(data);
    let mut n = 0u64;
    let mut failed = None;
    let mut iter_docs = Vec::new();
    for d in DocIter::new(data) {
        match d {
            Ok(d) => {
                n += 1;
                iter_docs.push(d);
                one_doc(d);
            }
            Err(e) => failed = Some(e),
        }
    }
    match &chain {
        Ok(count) => assert!(failed.is_none() && *count == n, "check_chain and DocIter"),
        Err(e) => assert_eq!(failed.as_ref(), Some(e), "check_chain and DocIter"),
    }
    let mut r = data;
    let mut buf = Vec::new();
    let mut read = 0;
    loop {
        match docs::read_doc(&mut r, &mut buf) {
            Ok(true) => {
                assert_eq!(Some(&buf.as_slice()), iter_docs.get(read), "read_doc");
                read += 1;
            }
            Ok(false) => {
                assert!(
                    chain.is_ok(),
                    "read_doc reached the end, check_chain failed"
                );
                break;
            }
            Err(_) => {
                assert!(chain.is_err(), "read_doc failed, check_chain passed");
                break;
            }
        }
    }
    assert_eq!(read, iter_docs.len(), "read_doc and DocIter");
    if iter_docs.len() != 1 || iter_docs[0].len() != data.len() {
        one_doc(data);
    }
}

/// One document through the deep check and the Extended JSON renderer: what renders
/// is JSON; what passes the deep check renders.
fn one_doc(doc: &[u8]) {
    let deep = docs::deep_check(doc);
    let mut out = String::new();
    let rendered = extjson::render(doc, &mut out);
    if deep.is_ok() {
        assert!(
            rendered.is_ok(),
            "deep_check passes, render fails: {}",
            rendered.unwrap_err()
        );
    }
    if rendered.is_ok()
        && let Err(e) = serde_json::from_str::<serde_json::Value>(&out)
    {
        // serde_json refuses nesting deeper than 128 levels; anything else is a bug.
        assert!(
            e.to_string().contains("recursion limit"),
            "render wrote invalid JSON ({e}): {out}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Oplog entries
// ---------------------------------------------------------------------------------------

/// `oplog`: the bytes as one oplog entry. Parsing either succeeds or gives a typed
/// error; a parsed update's change applies to several pre-images (its own document, an
/// empty one, one of every shape) without a panic, and a top-level delta always has a
/// pipeline; the scan of a replay accepts or refuses it the same way.
pub fn oplog(data: &[u8]) {
    use oxidump::oplog::entry::{Op, Update, parse};
    use oxidump::oplog::{apply, diff};
    let Ok(raw) = bson::RawDocument::from_bytes(data) else {
        return;
    };
    let parsed = parse(raw);
    let mut scan = apply::Scan::default();
    assert_eq!(parsed.is_ok(), scan.add(raw).is_ok());
    let Ok(e) = parsed else { return };
    let _ = (e.kind(), e.db(), e.id(), e.is_txn_statement());
    let Op::Update { update, .. } = &e.op else {
        return;
    };
    let own = bson::Document::try_from(raw).unwrap_or_default();
    let pres = [
        own,
        bson::Document::new(),
        doc! {"_id": 1, "a": 1, "b": {"c": [1, {"d": 2}]}, "arr": [1, 2, 3], "s": "x",
        "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] }},
    ];
    for pre in &pres {
        match update {
            Update::Replacement(_) => {}
            Update::Modifiers { set, unset } => {
                let _ = diff::apply_modifiers(pre, set, unset);
            }
            Update::Delta(d) => {
                let post = diff::apply_doc_diff(pre, d);
                // Applying a diff keeps `_id` unless the diff itself names it.
                if pre.contains_key("_id") && !post.contains_key("_id") {
                    assert!(
                        d.delete.iter().any(|k| k == "_id")
                            || d.insert.iter().any(|(k, _)| k == "_id")
                    );
                }
                if d.is_top_level() {
                    let _ = apply::pipeline_of(d);
                }
            }
            Update::Flat(f) => {
                let _ = diff::apply_flat(pre, f);
            }
        }
    }
}
