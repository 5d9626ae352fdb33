//! Golden OXD test vectors, committed under `tests/vectors/` and listed in Appendix A of
//! `format-spec/oxd-v1.md`:
//!
//! - `golden-none.oxd` and `golden-zstd.oxd`: the same five namespaces (a collection in
//!   three frames, a second collection interleaved with it and marked PARTIAL, a view, an
//!   empty collection, an oplog slice), every BSON type, a warning and an oplog window,
//!   stored with codec 0 everywhere, then with zstd level 3;
//! - `expected.json`: what both decode to (catalog, summary, per namespace the count,
//!   bytes, CRC-64/XZ digest and the documents as canonical Extended JSON lines), and the
//!   record layout of `golden-none.oxd`;
//! - corrupted variants of the golden files and `findings.json`: for each, the findings
//!   `oxidump verify --json` reports (code, namespace, frame, offset) and its exit code.
//!
//! Everything is written by [`regenerate_vectors`], an ignored test:
//! `cargo test --test tests -- --ignored regenerate_vectors`. The generator is
//! deterministic: codec 0 output is byte-identical on every run ([`golden_none_is_reproducible`]).

use std::fs;
use std::path::{Path, PathBuf};

use bson::{Binary, Bson, DateTime, Document, Timestamp, doc, oid::ObjectId, spec::BinarySubtype};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::common::{oxidump, run};
use oxidump::catalog::{Catalog, Namespace, NsKind, NsStatus, OplogRange, SourceInfo, Summary};
use oxidump::oxd::writer::{OxdWriter, WriterOptions};
use oxidump::source::{Chunk, Source};

// ---------------------------------------------------------------------------------------
// Content of the golden archives
// ---------------------------------------------------------------------------------------

/// 2026-11-26T00:00:00Z, the manifest's `created_at`.
const CREATED_AT_MS: i64 = 1_795_651_200_000;
/// 2026-11-26T00:00:07Z, the summary's `completed_at`.
const COMPLETED_AT_MS: i64 = 1_795_651_207_000;
/// Seconds of `created_at`, for timestamps.
const T0: u32 = 1_795_651_200;

const COLL: u32 = 0;
const OTHER: u32 = 1;
const VIEW: u32 = 2;
const EMPTY: u32 = 3;
const OPLOG: u32 = 4;

const WARNING: &str =
    "vec.other: the collection was renamed while it was dumped; its documents may be incomplete";

fn uuid(n: u8) -> [u8; 16] {
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = n.wrapping_mul(16).wrapping_add(i as u8);
    }
    // RFC 4122 version 4, variant 1, so the bytes are a plausible UUID.
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

fn id_index() -> Document {
    doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}
}

/// The catalog of both golden archives.
pub fn catalog() -> Catalog {
    let coll = Namespace {
        db: "vec".into(),
        collection: "coll".into(),
        kind: NsKind::Collection,
        options: doc! {
            "validator": {"n": {"$gte": 0}},
            "validationLevel": "moderate",
        },
        indexes: vec![
            id_index(),
            doc! {"v": 2, "key": {"name": 1, "n": -1}, "name": "name_1_n_-1", "unique": true},
            doc! {"v": 2, "key": {"at": 1}, "name": "at_ttl", "expireAfterSeconds": 3600},
        ],
        uuid: Some(uuid(1)),
    };
    let other = Namespace {
        db: "vec".into(),
        collection: "other".into(),
        kind: NsKind::Collection,
        options: doc! {"capped": true, "size": 65536_i64, "max": 1000},
        indexes: vec![id_index()],
        uuid: Some(uuid(2)),
    };
    let view = Namespace {
        db: "vec".into(),
        collection: "view".into(),
        kind: NsKind::View,
        options: doc! {
            "viewOn": "coll",
            "pipeline": [{"$match": {"n": {"$gt": 1}}}, {"$project": {"name": 1}}],
        },
        indexes: Vec::new(),
        uuid: None,
    };
    let empty = Namespace {
        db: "vec".into(),
        collection: "empty".into(),
        kind: NsKind::Collection,
        options: Document::new(),
        indexes: vec![id_index()],
        uuid: Some(uuid(3)),
    };
    let oplog = Namespace {
        db: "local".into(),
        collection: "oplog.rs".into(),
        kind: NsKind::Oplog,
        options: doc! {"capped": true, "size": 1_073_741_824_i64},
        indexes: Vec::new(),
        uuid: Some(uuid(4)),
    };
    Catalog {
        source: SourceInfo {
            tool: Some("oxidump test vectors".into()),
            server_version: Some("8.0.4".into()),
            fcv: Some("8.0".into()),
            created_at: Some(DateTime::from_millis(CREATED_AT_MS)),
            uri: Some("mongodb://db.example.net:27017/?replicaSet=rs0".into()),
            concurrent_collections: None,
            resumed_from: None,
            dump_options: None,
            oplog_start: None,
        },
        namespaces: vec![coll, other, view, empty, oplog],
    }
}

/// The summary of both golden archives.
pub fn summary() -> Summary {
    Summary {
        completed_at: Some(DateTime::from_millis(COMPLETED_AT_MS)),
        oplog: Some(OplogRange {
            start: Timestamp {
                time: T0,
                increment: 1,
            },
            end: Timestamp {
                time: T0 + 6,
                increment: 2,
            },
        }),
        warnings: vec![WARNING.into()],
        extra: Default::default(),
    }
}

fn ser(d: &Document) -> Vec<u8> {
    bson::serialize_to_vec(d).expect("test documents serialize")
}

/// Documents 0..4 of `vec.coll`: every one the same length (fixed-width values), so
/// frames 0 and 1 (two documents each) have the same size and can be swapped in place.
fn coll_doc(i: u8) -> Vec<u8> {
    ser(&doc! {
        "_id": i as i32,
        "name": format!("item-{i:03}"),
        "n": i as i64,
        "price": i as f64 * 1.25,
        "ok": i.is_multiple_of(2),
        "at": DateTime::from_millis(CREATED_AT_MS + i as i64 * 1000),
        "ref": ObjectId::from_bytes([0x65, 0x5f, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, i]),
        "tags": ["red", "green", "blue"],
        "sub": {"x": i as i32, "y": Bson::Null},
        "blob": Binary { subtype: BinarySubtype::Generic, bytes: vec![i; 4] },
        "note": "lorem ipsum dolor sit amet, lorem ipsum dolor sit amet, lorem ipsum dolor sit amet",
    })
}

/// A little BSON builder for what `bson::Document` cannot hold: repeated keys, and
/// the deprecated types (undefined, DBPointer, symbol) written exactly.
struct RawDoc(Vec<u8>);

impl RawDoc {
    fn new() -> RawDoc {
        RawDoc(vec![0; 4])
    }

    fn el(mut self, ty: u8, key: &str, value: &[u8]) -> RawDoc {
        self.0.push(ty);
        self.0.extend_from_slice(key.as_bytes());
        self.0.push(0);
        self.0.extend_from_slice(value);
        self
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.push(0);
        let n = self.0.len() as i32;
        self.0[..4].copy_from_slice(&n.to_le_bytes());
        self.0
    }
}

fn bstring(s: &str) -> Vec<u8> {
    let mut v = ((s.len() + 1) as i32).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

fn cstring(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn binary(subtype: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = (bytes.len() as i32).to_le_bytes().to_vec();
    v.push(subtype);
    v.extend_from_slice(bytes);
    v
}

/// Document 4 of `vec.coll`: one element of every BSON type, special doubles, odd keys
/// and a repeated key.
fn exotic_doc() -> Vec<u8> {
    let oid = [
        0x65, 0x5f, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x2a,
    ];
    let sub = RawDoc::new()
        .el(0x10, "x", &1i32.to_le_bytes())
        .el(0x03, "y", &RawDoc::new().el(0x0A, "z", &[]).finish())
        .finish();
    let arr = RawDoc::new()
        .el(0x10, "0", &1i32.to_le_bytes())
        .el(0x02, "1", &bstring("two"))
        .el(
            0x03,
            "2",
            &RawDoc::new()
                .el(0x01, "three", &3.0f64.to_le_bytes())
                .finish(),
        )
        .finish();
    let scope = RawDoc::new().el(0x10, "x", &1i32.to_le_bytes()).finish();
    let code = bstring("function () { return x; }");
    let mut cws = ((4 + code.len() + scope.len()) as i32)
        .to_le_bytes()
        .to_vec();
    cws.extend_from_slice(&code);
    cws.extend_from_slice(&scope);
    let mut regex = cstring("^item-0*[1-9]$");
    regex.extend(cstring("im"));
    let mut dbptr = bstring("vec.coll");
    dbptr.extend_from_slice(&oid);
    let ts = ((T0 as u64) << 32) | 7;
    // Decimal128 -12.345: coefficient 12345, exponent -3, sign bit set.
    let mut dec = 12345u64.to_le_bytes().to_vec();
    dec.extend_from_slice(&0xB03A_0000_0000_0000u64.to_le_bytes());
    RawDoc::new()
        .el(0x10, "_id", &4i32.to_le_bytes())
        .el(0x01, "double", &3.25f64.to_le_bytes())
        .el(0x01, "neg_zero", &(-0.0f64).to_le_bytes())
        .el(0x01, "nan", &f64::NAN.to_le_bytes())
        .el(0x01, "inf", &f64::NEG_INFINITY.to_le_bytes())
        .el(
            0x02,
            "string",
            &bstring("h\u{e9}llo w\u{f6}rld \u{2713} \"quoted\"\n"),
        )
        .el(0x02, "", &bstring("the empty key"))
        .el(0x02, "a.b", &bstring("a dotted key"))
        .el(0x02, "$dollar", &bstring("a $-prefixed key"))
        .el(0x03, "doc", &sub)
        .el(0x04, "array", &arr)
        .el(0x05, "bin", &binary(0x00, &[0, 1, 2, 0xff]))
        .el(0x05, "uuid", &binary(0x04, &uuid(9)))
        .el(0x05, "user_bin", &binary(0x80, b"user"))
        .el(0x06, "undefined", &[])
        .el(0x07, "oid", &oid)
        .el(0x08, "yes", &[1])
        .el(0x08, "no", &[0])
        .el(0x09, "date", &CREATED_AT_MS.to_le_bytes())
        .el(0x09, "date_before_1970", &(-1i64).to_le_bytes())
        .el(0x0A, "null", &[])
        .el(0x0B, "regex", &regex)
        .el(0x0C, "dbpointer", &dbptr)
        .el(0x0D, "code", &bstring("function () { return 1; }"))
        .el(0x0E, "symbol", &bstring("sym"))
        .el(0x0F, "code_w_scope", &cws)
        .el(0x10, "int32_min", &i32::MIN.to_le_bytes())
        .el(0x11, "timestamp", &ts.to_le_bytes())
        .el(0x12, "int64_max", &i64::MAX.to_le_bytes())
        .el(0x13, "decimal", &dec)
        .el(0xFF, "minkey", &[])
        .el(0x7F, "maxkey", &[])
        .el(0x10, "dup", &1i32.to_le_bytes())
        .el(0x10, "dup", &2i32.to_le_bytes())
        .finish()
}

fn other_doc(i: u8) -> Vec<u8> {
    ser(&doc! {
        "_id": ObjectId::from_bytes([0x65, 0x5f, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, i]),
        "kind": "other",
        "seq": i as i64,
        "text": "the quick brown fox jumps over the lazy dog; the quick brown fox jumps over the lazy dog",
    })
}

fn oplog_doc(i: u8) -> Vec<u8> {
    ser(&doc! {
        "op": "i",
        "ns": "vec.coll",
        "ui": Binary { subtype: BinarySubtype::Uuid, bytes: uuid(1).to_vec() },
        "o": {"_id": 10 + i as i32, "name": format!("item-{:03}", 10 + i)},
        "ts": Timestamp { time: T0 + 5 + i as u32, increment: 1 + i as u32 },
        "t": 1_i64,
        "v": 2_i64,
        "wall": DateTime::from_millis(CREATED_AT_MS + 5000 + i as i64 * 1000),
    })
}

/// One step of the write order.
enum Step {
    Frame(u32, Vec<Vec<u8>>),
    End(u32, NsStatus),
}

/// The write order of both golden archives: `vec.coll` in 3 frames interleaved with the
/// 2 frames of `vec.other`; the view's and the empty collection's NS_END in between;
/// the oplog last.
fn plan() -> Vec<Step> {
    vec![
        Step::Frame(COLL, vec![coll_doc(0), coll_doc(1)]),
        Step::Frame(OTHER, vec![other_doc(0), other_doc(1)]),
        Step::Frame(COLL, vec![coll_doc(2), coll_doc(3)]),
        Step::End(EMPTY, NsStatus::Complete),
        Step::Frame(OTHER, vec![other_doc(2), other_doc(3)]),
        Step::End(VIEW, NsStatus::Complete),
        Step::End(OTHER, NsStatus::Partial(WARNING.into())),
        Step::Frame(COLL, vec![exotic_doc()]),
        Step::End(COLL, NsStatus::Complete),
        Step::Frame(OPLOG, vec![oplog_doc(0), oplog_doc(1)]),
        Step::End(OPLOG, NsStatus::Complete),
    ]
}

/// Writes a golden archive: frames uncompressed (`None`) or zstd at `level`.
pub fn build(level: Option<i32>) -> Vec<u8> {
    let opts = WriterOptions {
        level,
        frame_size: 4096,
        in_flight: 4,
    };
    let mut w = OxdWriter::new(Vec::new(), &catalog(), opts).expect("manifest");
    for step in plan() {
        match step {
            Step::Frame(ns, docs) => {
                let n = docs.len() as u32;
                w.write_frame(ns, docs.concat(), n).expect("frame");
            }
            Step::End(ns, status) => w.end_namespace(ns, &status).expect("ns end"),
        }
    }
    w.finish(&summary()).expect("footer").0
}

/// The documents of each namespace and whether it is partial, as the plan writes them.
fn planned_content() -> (Vec<Vec<Vec<u8>>>, Vec<bool>) {
    let n = catalog().namespaces.len();
    let mut docs = vec![Vec::new(); n];
    let mut partial = vec![false; n];
    for step in plan() {
        match step {
            Step::Frame(ns, d) => docs[ns as usize].extend(d),
            Step::End(ns, s) => partial[ns as usize] = matches!(s, NsStatus::Partial(_)),
        }
    }
    (docs, partial)
}

// ---------------------------------------------------------------------------------------
// Independent checksums (bit by bit, as the spec's pseudocode)
// ---------------------------------------------------------------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    c ^ 0xFFFF_FFFF
}

fn crc64xz(data: &[u8]) -> u64 {
    let mut c = u64::MAX;
    for &b in data {
        c ^= b as u64;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xC96C_5795_D787_0F42
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The decoded description (`expected.json`)
// ---------------------------------------------------------------------------------------

fn rfc3339(t: DateTime) -> String {
    t.try_to_rfc3339_string().expect("dates in range")
}

fn ts_json(t: Timestamp) -> Value {
    json!({"t": t.time, "i": t.increment})
}

fn render_line(doc: &[u8]) -> String {
    let mut s = String::new();
    oxidump::extjson::render(doc, &mut s).expect("test documents render");
    s
}

/// Splits whole concatenated documents.
fn split_docs(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = i32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
        out.push(b[..n].to_vec());
        b = &b[n..];
    }
    out
}

/// The content of a backup as `expected.json` records it.
fn describe(cat: &Catalog, summary: &Summary, docs: &[Vec<Vec<u8>>], partial: &[bool]) -> Value {
    let s = &cat.source;
    let namespaces: Vec<Value> = cat
        .namespaces
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let all = docs[i].concat();
            json!({
                "ns_id": i,
                "namespace": n.full_name(),
                "db": n.db,
                "collection": n.collection,
                "type": n.kind.as_str(),
                "uuid": n.uuid.map(|u| u.iter().map(|b| format!("{b:02x}")).collect::<String>()),
                "options": Bson::Document(n.options.clone()).into_canonical_extjson(),
                "indexes": n.indexes.iter().map(|d| Bson::Document(d.clone()).into_canonical_extjson()).collect::<Vec<_>>(),
                "index_names": n.indexes.iter().map(|d| d.get_str("name").unwrap_or_default().to_string()).collect::<Vec<_>>(),
                "partial": partial[i],
                "documents": docs[i].len(),
                "bytes": all.len(),
                "digest": format!("{:#018x}", crc64xz(&all)),
                "docs": docs[i].iter().map(|d| render_line(d)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "source": {
            "tool": s.tool,
            "server_version": s.server_version,
            "fcv": s.fcv,
            "uri": s.uri,
            "created_at": s.created_at.map(rfc3339),
        },
        "summary": {
            "completed_at": summary.completed_at.map(rfc3339),
            "warnings": summary.warnings,
            "oplog": summary.oplog.map(|o| json!({"start": ts_json(o.start), "end": ts_json(o.end)})),
        },
        "namespaces": namespaces,
    })
}

/// One record of an archive's layout.
#[derive(Debug, Clone, Copy)]
struct Rec {
    offset: usize,
    kind: u8,
    codec: u8,
    flags: u16,
    ns_id: u32,
    seq: u32,
    stored_len: usize,
    raw_len: u32,
    doc_count: u32,
}

impl Rec {
    fn end(&self) -> usize {
        self.offset + 36 + self.stored_len
    }

    fn payload(&self) -> usize {
        self.offset + 36
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            1 => "MANIFEST",
            2 => "FRAME",
            3 => "NS_END",
            4 => "FOOTER",
            _ => "?",
        }
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Walks the records of a complete, valid archive from the file header to the FOOTER.
fn layout(a: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut at = 16;
    loop {
        assert_eq!(&a[at..at + 4], b"OXRC", "record at {at}");
        let r = Rec {
            offset: at,
            kind: a[at + 4],
            codec: a[at + 5],
            flags: u16::from_le_bytes([a[at + 6], a[at + 7]]),
            ns_id: le32(a, at + 8),
            seq: le32(a, at + 12),
            stored_len: le32(a, at + 16) as usize,
            raw_len: le32(a, at + 20),
            doc_count: le32(a, at + 24),
        };
        out.push(r);
        at = r.end();
        if r.kind == 4 {
            assert_eq!(at + 32, a.len(), "the trailer follows the footer");
            return out;
        }
    }
}

fn layout_json(a: &[u8]) -> Value {
    let recs: Vec<Value> = layout(a)
        .iter()
        .map(|r| {
            json!({
                "offset": r.offset,
                "kind": r.kind_name(),
                "codec": r.codec,
                "flags": r.flags,
                "ns_id": r.ns_id,
                "seq": r.seq,
                "stored_len": r.stored_len,
                "raw_len": r.raw_len,
                "doc_count": r.doc_count,
            })
        })
        .collect();
    json!({
        "size": a.len(),
        "sha256": sha256_hex(a),
        "records": recs,
        "trailer": a.len() - 32,
    })
}

fn expected_json(none: &[u8]) -> Value {
    let (docs, partial) = planned_content();
    let mut v = describe(&catalog(), &summary(), &docs, &partial);
    v["golden-none.oxd"] = layout_json(none);
    v
}

// ---------------------------------------------------------------------------------------
// Corrupted variants
// ---------------------------------------------------------------------------------------

/// A corrupted variant: file name, what was done, the bytes.
struct Variant {
    name: &'static str,
    what: String,
    bytes: Vec<u8>,
}

fn find(recs: &[Rec], kind: u8, ns: u32, seq: u32) -> Rec {
    *recs
        .iter()
        .find(|r| r.kind == kind && (kind == 1 || kind == 4 || (r.ns_id == ns && r.seq == seq)))
        .unwrap_or_else(|| panic!("no record of kind {kind}, ns {ns}, seq {seq}"))
}

fn frame(recs: &[Rec], ns: u32, seq: u32) -> Rec {
    find(recs, 2, ns, seq)
}

fn flip(a: &[u8], at: usize) -> Vec<u8> {
    let mut b = a.to_vec();
    b[at] ^= 0x20;
    b
}

/// Recomputes `payload_crc` and `header_crc` of the record at `r` in `b`.
fn reseal(b: &mut [u8], r: &Rec) {
    let mut covered = b[r.offset..r.offset + 28].to_vec();
    covered.extend_from_slice(&b[r.payload()..r.end()]);
    let p = crc32(&covered);
    b[r.offset + 28..r.offset + 32].copy_from_slice(&p.to_le_bytes());
    let h = crc32(&b[r.offset..r.offset + 32]);
    b[r.offset + 32..r.offset + 36].copy_from_slice(&h.to_le_bytes());
}

fn variants(none: &[u8], zstd: &[u8]) -> Vec<Variant> {
    let n = layout(none);
    let z = layout(zstd);
    let manifest = find(&n, 1, 0, 0);
    let footer = find(&n, 4, 0, 0);
    let trailer = none.len() - 32;
    let c0 = frame(&n, COLL, 0);
    let c1 = frame(&n, COLL, 1);
    let c2 = frame(&n, COLL, 2);
    let o0 = frame(&n, OTHER, 0);
    let o1 = frame(&n, OTHER, 1);
    let end_other = find(&n, 3, OTHER, 0);
    assert_eq!(
        c0.stored_len, c1.stored_len,
        "frames 0 and 1 of vec.coll have one size"
    );
    let mut v = Vec::new();
    let mut add = |name: &'static str, what: String, bytes: Vec<u8>| {
        v.push(Variant { name, what, bytes });
    };

    let at = c1.payload() + c1.stored_len / 2;
    add(
        "payload-flip.oxd",
        format!(
            "golden-none.oxd with byte {at} (inside the payload of frame 1 of vec.coll) XOR 0x20"
        ),
        flip(none, at),
    );
    let at = c1.offset + 12;
    add(
        "frame-header-flip.oxd",
        format!(
            "golden-none.oxd with byte {at} (the `seq` field of the header of frame 1 of vec.coll) XOR 0x20"
        ),
        flip(none, at),
    );
    let at = manifest.payload() + manifest.stored_len / 2;
    add(
        "manifest-flip.oxd",
        format!("golden-none.oxd with byte {at} (inside the MANIFEST payload) XOR 0x20"),
        flip(none, at),
    );
    let at = end_other.payload();
    add(
        "nsend-flip.oxd",
        format!(
            "golden-none.oxd with byte {at} (`doc_count` in the NS_END payload of vec.other) XOR 0x20"
        ),
        flip(none, at),
    );
    let at = footer.payload() + 16 + 5 * 48 + 8;
    add(
        "footer-flip.oxd",
        format!("golden-none.oxd with byte {at} (inside the FOOTER's frame index) XOR 0x20"),
        flip(none, at),
    );
    let at = trailer + 8;
    add(
        "trailer-flip.oxd",
        format!("golden-none.oxd with byte {at} (`archive_len` in the trailer) XOR 0x20"),
        flip(none, at),
    );
    let at = none.len() - 1;
    add(
        "trailer-magic-flip.oxd",
        format!("golden-none.oxd with byte {at} (the last byte of `end_magic`) XOR 0x20"),
        flip(none, at),
    );

    let cut = manifest.payload() + manifest.stored_len / 2;
    add(
        "truncated-in-manifest.oxd",
        format!("the first {cut} bytes of golden-none.oxd (cut inside the MANIFEST payload)"),
        none[..cut].to_vec(),
    );
    let cut = c1.payload() + c1.stored_len / 2;
    add(
        "truncated-mid-frame.oxd",
        format!(
            "the first {cut} bytes of golden-none.oxd (cut inside the payload of frame 1 of vec.coll)"
        ),
        none[..cut].to_vec(),
    );
    let cut = o1.offset + 20;
    add(
        "truncated-in-record-header.oxd",
        format!(
            "the first {cut} bytes of golden-none.oxd (cut inside the header of frame 1 of vec.other)"
        ),
        none[..cut].to_vec(),
    );
    let cut = footer.offset;
    add(
        "truncated-before-footer.oxd",
        format!("the first {cut} bytes of golden-none.oxd (everything before the FOOTER)"),
        none[..cut].to_vec(),
    );
    let cut = trailer;
    add(
        "truncated-before-trailer.oxd",
        format!("the first {cut} bytes of golden-none.oxd (everything before the trailer)"),
        none[..cut].to_vec(),
    );
    let cut = none.len() - 1;
    add(
        "truncated-1-byte-short.oxd",
        format!("the first {cut} bytes of golden-none.oxd (the last byte is missing)"),
        none[..cut].to_vec(),
    );

    let mut b = none[..c1.offset].to_vec();
    b.extend_from_slice(&none[c1.end()..]);
    add(
        "frame-dropped.oxd",
        format!(
            "golden-none.oxd without bytes {}..{} (the record of frame 1 of vec.coll); every other byte as it was",
            c1.offset,
            c1.end()
        ),
        b,
    );
    let mut b = none.to_vec();
    b[c0.offset..c0.end()].copy_from_slice(&none[c1.offset..c1.end()]);
    b[c1.offset..c1.end()].copy_from_slice(&none[c0.offset..c0.end()]);
    add(
        "frames-swapped.oxd",
        format!(
            "golden-none.oxd with the records of frames 0 and 1 of vec.coll (same size) swapped: frame 1 at {}, frame 0 at {}",
            c0.offset, c1.offset
        ),
        b,
    );
    let mut b = none[..c1.end()].to_vec();
    b.extend_from_slice(&none[c1.offset..c1.end()]);
    b.extend_from_slice(&none[c1.end()..]);
    add(
        "frame-duplicated.oxd",
        format!(
            "golden-none.oxd with the record of frame 1 of vec.coll (bytes {}..{}) repeated right after itself",
            c1.offset,
            c1.end()
        ),
        b,
    );

    let mut b = none.to_vec();
    let at = c2.payload() + 4 + 1 + 4; // the value of `_id`: 4 -> 5
    assert_eq!(b[at], 4, "the exotic document's _id");
    b[at] = 5;
    reseal(&mut b, &c2);
    add(
        "digest-mismatch.oxd",
        format!(
            "golden-none.oxd with byte {at} (the `_id` of the document in frame 2 of vec.coll) changed from 4 to 5 and the frame's checksums recomputed"
        ),
        b,
    );
    let mut b = none.to_vec();
    b[o0.offset + 24] = 1;
    reseal(&mut b, &o0);
    add(
        "frame-doc-count.oxd",
        format!(
            "golden-none.oxd with `doc_count` of frame 0 of vec.other (byte {}) changed from 2 to 1 and the header's checksums recomputed",
            o0.offset + 24
        ),
        b,
    );

    let zc1 = frame(&z, COLL, 1);
    let zc0 = frame(&z, COLL, 0);
    assert_eq!((zc0.codec, zc1.codec), (1, 1), "vec.coll frames compress");
    let at = zc1.payload() + zc1.stored_len / 2;
    add(
        "zstd-payload-flip.oxd",
        format!(
            "golden-zstd.oxd with byte {at} (inside the zstd payload of frame 1 of vec.coll) XOR 0x20"
        ),
        flip(zstd, at),
    );
    let mut b = zstd.to_vec();
    let at = zc0.payload();
    assert_eq!(b[at..at + 4], [0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    b[at] = 0x29;
    reseal(&mut b, &zc0);
    add(
        "zstd-frame-decode.oxd",
        format!(
            "golden-zstd.oxd with the zstd magic of frame 0 of vec.coll (byte {at}) changed from 0x28 to 0x29 and the frame's checksums recomputed"
        ),
        b,
    );
    let cut = zc1.payload() + zc1.stored_len / 2;
    add(
        "zstd-truncated-mid-frame.oxd",
        format!(
            "the first {cut} bytes of golden-zstd.oxd (cut inside the payload of frame 1 of vec.coll)"
        ),
        zstd[..cut].to_vec(),
    );
    v
}

// ---------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------

/// Findings recorded for a variant that are judged wrong or misleading, as a note
/// written next to them in `findings.json` (none at present).
const DISPUTED: &[(&str, &str)] = &[];

/// `oxidump verify --json` on `path`: exit code, `complete`, and the findings as
/// `{code, namespace, frame, offset}`.
fn verify_findings(path: &Path) -> (i32, bool, Vec<Value>) {
    let out = oxidump()
        .args(["verify", "--json", "-q"])
        .arg(path)
        .output()
        .expect("run oxidump verify");
    let code = out.status.code().unwrap_or(-1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify {} printed no JSON ({e}): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let report = &v[0];
    let findings = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            json!({
                "code": f["code"],
                "namespace": f.get("namespace").cloned().unwrap_or(Value::Null),
                "frame": f.get("frame").cloned().unwrap_or(Value::Null),
                "offset": f.get("offset").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    (
        code,
        report["complete"].as_bool().expect("complete"),
        findings,
    )
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read_vector(name: &str) -> Vec<u8> {
    let p = vectors_dir().join(name);
    fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn read_json(name: &str) -> Value {
    serde_json::from_slice(&read_vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON") + "\n"
}

/// Writes `bytes` to `path` through a temporary file and a rename, so tests reading the
/// vectors while the generator runs never see a half-written file.
fn write_atomic(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Writes every vector file. Run it when the content or the format changes, then read
/// every finding in `findings.json` before committing.
#[test]
#[ignore = "generator: writes tests/vectors/"]
fn regenerate_vectors() {
    let dir = vectors_dir();
    fs::create_dir_all(&dir).expect("create tests/vectors");
    let none = build(None);
    let zstd = build(Some(3));
    write_atomic(&dir.join("golden-none.oxd"), &none);
    write_atomic(&dir.join("golden-zstd.oxd"), &zstd);
    write_atomic(
        &dir.join("expected.json"),
        pretty(&expected_json(&none)).as_bytes(),
    );
    let mut list = Vec::new();
    for var in variants(&none, &zstd) {
        let path = dir.join(var.name);
        write_atomic(&path, &var.bytes);
        let (code, complete, findings) = verify_findings(&path);
        let mut entry = json!({
            "file": var.name,
            "what": var.what,
            "exit_code": code,
            "complete": complete,
            "findings": findings,
        });
        if let Some((_, note)) = DISPUTED.iter().find(|(n, _)| *n == var.name) {
            entry["disputed"] = json!(note);
        }
        list.push(entry);
    }
    write_atomic(
        &dir.join("findings.json"),
        pretty(&Value::Array(list)).as_bytes(),
    );
}

// ---------------------------------------------------------------------------------------
// Tests over the committed files
// ---------------------------------------------------------------------------------------

const GOLDEN: [&str; 2] = ["golden-none.oxd", "golden-zstd.oxd"];

#[test]
fn reference_checksums_match_the_spec_check_values() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc64xz(b"123456789"), 0x995D_C9BB_DF19_39FA);
    assert_eq!(crc64xz(b""), 0);
}

/// (a) Both golden files verify clean.
#[test]
fn golden_files_verify_clean() {
    for name in GOLDEN {
        let path = vectors_dir().join(name);
        let (_, out, _) = run(
            oxidump()
                .args(["verify", "--deep", "--json", "-q"])
                .arg(&path),
            0,
        );
        let v: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v[0]["complete"], true, "{name}");
        assert_eq!(v[0]["findings"], json!([]), "{name}");
        let expected = read_json("expected.json");
        for (i, ns) in expected["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_eq!(
                v[0]["namespaces"][i]["namespace"], ns["namespace"],
                "{name}"
            );
            assert_eq!(
                v[0]["namespaces"][i]["documents"], ns["documents"],
                "{name}"
            );
            assert_eq!(v[0]["namespaces"][i]["bytes"], ns["bytes"], "{name}");
        }
    }
}

/// (a) Both golden files decode through the library's streaming reader to exactly
/// `expected.json`: catalog, summary, partial flags, every document.
#[test]
fn golden_files_decode_to_expected() {
    let expected = read_json("expected.json");
    for name in GOLDEN {
        let path = vectors_dir().join(name);
        let mut src = oxidump::oxd::reader::OxdSource::open(&path).expect("open");
        let n = src.catalog().namespaces.len();
        let mut docs = vec![Vec::new(); n];
        let mut partial = vec![false; n];
        let mut ended = vec![0; n];
        while let Some(c) = src.next_chunk().expect("read") {
            match c {
                Chunk::Docs { ns, data, count } => {
                    let d = split_docs(&data);
                    assert_eq!(d.len() as u64, count, "{name}");
                    docs[ns].extend(d);
                }
                Chunk::End { ns, status } => {
                    ended[ns] += 1;
                    partial[ns] = matches!(status, NsStatus::Partial(_));
                }
            }
        }
        assert_eq!(ended, vec![1; n], "{name}: one end per namespace");
        let cat = src.catalog().clone();
        let summary = src.summary().expect("summary").clone();
        let got = describe(&cat, &summary, &docs, &partial);
        for key in ["source", "summary", "namespaces"] {
            assert_eq!(got[key], expected[key], "{name}: {key}");
        }
        // The catalog and summary are exactly what the generator wrote.
        assert_eq!(cat, catalog(), "{name}");
        assert_eq!(summary, self::summary(), "{name}");
    }
}

/// (a) `oxidump cat --format bson` (through the footer index) and `--format json` give
/// each namespace's documents exactly; a view has none to give.
#[test]
fn golden_files_cat_to_expected() {
    let expected = read_json("expected.json");
    for name in GOLDEN {
        let path = vectors_dir().join(name);
        for ns in expected["namespaces"].as_array().unwrap() {
            let nsname = ns["namespace"].as_str().unwrap();
            if ns["type"] == "view" {
                let (_, _, err) = run(oxidump().arg("cat").arg(&path).args(["--ns", nsname]), 2);
                assert!(err.contains("is a view"), "{err}");
                continue;
            }
            let out = oxidump()
                .arg("cat")
                .arg(&path)
                .args(["--ns", nsname, "--format", "bson"])
                .output()
                .expect("run cat");
            assert!(out.status.success(), "{name} {nsname}: {out:?}");
            let raw = out.stdout;
            let docs = split_docs(&raw);
            assert_eq!(json!(docs.len()), ns["documents"], "{name} {nsname}");
            assert_eq!(json!(raw.len()), ns["bytes"], "{name} {nsname}");
            assert_eq!(
                json!(format!("{:#018x}", crc64xz(&raw))),
                ns["digest"],
                "{name} {nsname}"
            );
            let lines: Vec<String> = docs.iter().map(|d| render_line(d)).collect();
            assert_eq!(json!(lines), ns["docs"], "{name} {nsname}");
            let (_, out, _) = run(
                oxidump()
                    .arg("cat")
                    .arg(&path)
                    .args(["--ns", nsname, "--format", "json"]),
                0,
            );
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(json!(lines), ns["docs"], "{name} {nsname} as JSON");
        }
    }
}

/// (b) The generator reproduces `golden-none.oxd` byte for byte, and its layout is the
/// one `expected.json` records.
#[test]
fn golden_none_is_reproducible() {
    let committed = read_vector("golden-none.oxd");
    let built = build(None);
    assert!(
        committed == built,
        "golden-none.oxd differs from the generator's output ({} vs {} bytes): run the generator and review the diff",
        committed.len(),
        built.len()
    );
    let expected = read_json("expected.json");
    assert_eq!(layout_json(&committed), expected["golden-none.oxd"]);
    assert_eq!(expected_json(&committed), expected);
    // Codec 0 everywhere: every record of the layout.
    assert!(layout(&committed).iter().all(|r| r.codec == 0));
}

/// The corrupted variants are exactly the committed golden files with the documented
/// change.
#[test]
fn variants_derive_from_the_golden_files() {
    let none = read_vector("golden-none.oxd");
    let zstd = read_vector("golden-zstd.oxd");
    let recorded = read_json("findings.json");
    let recorded = recorded.as_array().unwrap();
    let vars = variants(&none, &zstd);
    assert_eq!(vars.len(), recorded.len());
    for (var, rec) in vars.iter().zip(recorded) {
        assert_eq!(rec["file"], var.name);
        assert_eq!(rec["what"], json!(var.what), "{}", var.name);
        assert!(
            read_vector(var.name) == var.bytes,
            "{} is not the documented change of its golden file",
            var.name
        );
    }
}

/// (c) Every corrupted variant gives exactly its recorded findings, is incomplete or
/// corrupt, and exits 1.
#[test]
fn variants_give_their_recorded_findings() {
    let recorded = read_json("findings.json");
    let mut failures = Vec::new();
    for rec in recorded.as_array().unwrap() {
        let name = rec["file"].as_str().unwrap();
        let (code, complete, findings) = verify_findings(&vectors_dir().join(name));
        assert_eq!(rec["exit_code"], 1, "{name}: recorded exit code");
        assert!(
            !rec["findings"].as_array().unwrap().is_empty(),
            "{name}: recorded no finding"
        );
        let got = json!({"exit_code": code, "complete": complete, "findings": findings});
        let want = json!({"exit_code": rec["exit_code"], "complete": rec["complete"], "findings": rec["findings"]});
        if got != want {
            failures.push(format!("{name}:\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (d) `oxidump ls` lists each golden file from its footer with the expected counts.
#[test]
fn golden_files_list_expected_counts() {
    let expected = read_json("expected.json");
    for name in GOLDEN {
        let path = vectors_dir().join(name);
        let (_, out, _) = run(oxidump().args(["ls", "--json"]).arg(&path), 0);
        let l: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(l["complete"], true, "{name}");
        assert_eq!(l["format"], "oxd");
        assert_eq!(l["tool"], expected["source"]["tool"]);
        assert_eq!(l["server_version"], expected["source"]["server_version"]);
        assert_eq!(l["fcv"], expected["source"]["fcv"]);
        assert_eq!(l["uri"], expected["source"]["uri"]);
        assert_eq!(l["created_at"], expected["source"]["created_at"]);
        assert_eq!(l["completed_at"], expected["summary"]["completed_at"]);
        assert_eq!(l["warnings"], expected["summary"]["warnings"]);
        let o = &expected["summary"]["oplog"];
        assert_eq!(
            l["oplog"],
            json!([
                format!("{}:{}", o["start"]["t"], o["start"]["i"]),
                format!("{}:{}", o["end"]["t"], o["end"]["i"])
            ])
        );
        let want: Vec<Value> = expected["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                json!({
                    "namespace": n["namespace"], "type": n["type"], "documents": n["documents"],
                    "raw_bytes": n["bytes"], "indexes": n["index_names"], "partial": n["partial"],
                })
            })
            .collect();
        let got: Vec<Value> = l["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                json!({
                    "namespace": n["namespace"], "type": n["type"], "documents": n["documents"],
                    "raw_bytes": n["raw_bytes"], "indexes": n["indexes"], "partial": n["partial"],
                })
            })
            .collect();
        assert_eq!(got, want, "{name}");
        // The text listing names every namespace with its document count.
        let (_, text, _) = run(oxidump().arg("ls").arg(&path), 0);
        for n in expected["namespaces"].as_array().unwrap() {
            let line = text
                .lines()
                .find(|l| l.starts_with(n["namespace"].as_str().unwrap()))
                .unwrap_or_else(|| panic!("{name}: no line for {}", n["namespace"]));
            let count = n["documents"].to_string();
            assert!(
                line.split_whitespace().any(|w| w == count),
                "{name}: {line:?} lacks count {count}"
            );
        }
    }
}

/// Appendix A of the specification lists every committed vector file, and only those,
/// with the size and SHA-256 of `golden-none.oxd`.
#[test]
fn spec_appendix_lists_every_vector() {
    let spec =
        fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("format-spec/oxd-v1.md"))
            .expect("read the spec");
    let start = spec.find("## Appendix A.").expect("Appendix A");
    let end = spec.find("## Appendix B.").expect("Appendix B");
    let appendix = &spec[start..end];
    let mut listed: Vec<String> = appendix
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_string())
        .filter(|n| n.ends_with(".oxd") || n.ends_with(".json"))
        .collect();
    listed.sort();
    let mut files: Vec<String> = fs::read_dir(vectors_dir())
        .expect("read tests/vectors")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(listed, files);
    let none = read_vector("golden-none.oxd");
    assert!(appendix.contains(&sha256_hex(&none)));
    assert!(appendix.contains(&format!("{} bytes, SHA-256", none.len())));
}

// ---------------------------------------------------------------------------------------
// Findings once judged wrong, pinned so they stay right: what they should be
// ---------------------------------------------------------------------------------------

fn golden_layout() -> Vec<Rec> {
    layout(&read_vector("golden-none.oxd"))
}

/// The full `verify --json` report of a vector.
fn verify_report(name: &str) -> Value {
    let out = oxidump()
        .args(["verify", "--json", "-q"])
        .arg(vectors_dir().join(name))
        .output()
        .expect("run oxidump verify");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    v[0].clone()
}

fn codes(findings: &[Value]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect()
}

#[test]
fn damaged_ns_end_is_not_reported_missing() {
    let end = find(&golden_layout(), 3, OTHER, 0);
    let (_, _, got) = verify_findings(&vectors_dir().join("nsend-flip.oxd"));
    assert_eq!(
        got,
        vec![
            json!({"code": "payload-crc", "namespace": "vec.other", "frame": null, "offset": end.offset})
        ]
    );
}

#[test]
fn duplicated_frame_is_reported_once() {
    let (_, _, got) = verify_findings(&vectors_dir().join("frame-duplicated.oxd"));
    assert!(codes(&got).contains(&"frame-duplicate"), "{got:?}");
    assert!(!codes(&got).contains(&"frame-order"), "{got:?}");
}

#[test]
fn shifted_records_give_at_most_one_footer_finding() {
    for name in ["frame-dropped.oxd", "frame-duplicated.oxd"] {
        let (_, _, got) = verify_findings(&vectors_dir().join(name));
        let footer = codes(&got).iter().filter(|c| **c == "footer").count();
        assert!(footer <= 1, "{name}: {footer} footer findings: {got:?}");
    }
}

#[test]
fn findings_are_in_input_order() {
    let (_, _, got) = verify_findings(&vectors_dir().join("frame-dropped.oxd"));
    let c = codes(&got);
    let missing = c
        .iter()
        .position(|c| *c == "frame-missing")
        .expect("frame-missing");
    let trailer = c
        .iter()
        .position(|c| *c == "inconsistent")
        .expect("inconsistent");
    assert!(
        got[missing]["offset"].as_u64() < got[trailer]["offset"].as_u64(),
        "{got:?}"
    );
    assert!(missing < trailer, "frame-missing is found first: {got:?}");
}

#[test]
fn truncated_frame_names_its_namespace() {
    for name in ["truncated-mid-frame.oxd", "zstd-truncated-mid-frame.oxd"] {
        let (_, _, got) = verify_findings(&vectors_dir().join(name));
        let t = got
            .iter()
            .find(|f| f["code"] == "truncated")
            .expect("truncated");
        assert_eq!(t["namespace"], "vec.coll", "{name}: {got:?}");
        assert_eq!(t["frame"], 1, "{name}: {got:?}");
    }
}

#[test]
fn incomplete_names_the_unclosed_namespaces() {
    for (name, unclosed) in [
        (
            "truncated-in-record-header.oxd",
            &["vec.coll", "vec.other", "vec.view", "local.oplog.rs"][..],
        ),
        (
            "truncated-mid-frame.oxd",
            &[
                "vec.coll",
                "vec.other",
                "vec.view",
                "vec.empty",
                "local.oplog.rs",
            ][..],
        ),
    ] {
        let r = verify_report(name);
        let said: String = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{} {} ", f["namespace"], f["message"]))
            .collect();
        for ns in unclosed {
            assert!(
                said.contains(ns),
                "{name}: nothing says {ns} was not closed: {said}"
            );
        }
    }
}

#[test]
fn missing_trailer_is_reported_incomplete() {
    for name in ["truncated-before-trailer.oxd", "truncated-1-byte-short.oxd"] {
        let (_, _, got) = verify_findings(&vectors_dir().join(name));
        assert_eq!(codes(&got), ["truncated", "incomplete"], "{name}");
    }
}

#[test]
fn corrupt_archives_are_not_reported_complete() {
    let recorded = read_json("findings.json");
    for rec in recorded.as_array().unwrap() {
        let name = rec["file"].as_str().unwrap();
        let (_, complete, _) = verify_findings(&vectors_dir().join(name));
        assert!(
            !complete,
            "{name}: reported complete, but an archive with findings is not (section 12)"
        );
    }
}
