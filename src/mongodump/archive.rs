//! The `mongodump --archive` stream: reading ([`ArchiveReader`]), writing
//! ([`ArchiveWriter`]) and offline checking ([`verify`]).
//!
//! Layout (little-endian throughout; "doc" is a BSON document):
//!
//! ```text
//! archive := MAGIC header-doc metadata-doc* TERM ( ns-header-doc data-doc* TERM )*
//! MAGIC   := 6D E2 99 81            TERM := FF FF FF FF
//! ```
//!
//! - the header doc is `{concurrent_collections: int32, version: "0.1", server_version,
//!   tool_version}`;
//! - one metadata doc per namespace, `{db, collection, metadata: <.metadata.json text>,
//!   size: int32 0, type}`; the collection is the logical name (`X` for a time-series
//!   collection), the oplog is `{db: "", collection: "oplog", metadata: ""}`;
//! - a namespace header is exactly `{db, collection, EOF: bool, CRC: int64}` (unknown keys
//!   or other types are refused, as by mongorestore); data segments have `EOF: false`,
//!   `CRC: 0`; a namespace ends with one `EOF: true` header carrying the CRC-64/XZ of
//!   all its documents' bytes in archive order, followed at once by `TERM`;
//! - a time-series collection's data segments are named `system.buckets.X` when the
//!   source server is older than 8.3;
//! - every namespace of the prelude gets exactly one end block, views and empty
//!   collections included (those get an empty segment first); the oplog comes last;
//! - document lengths are 5 to 16 MiB (the archive parser of mongorestore refuses
//!   anything longer); this reader allows 16 MiB + 16 KiB in the oplog, like the server.
//!
//! The writer reproduces mongodump's multiplexer: each namespace buffers up to 16 MiB
//! of whole documents; a full buffer is written as a run of documents, with a new
//! namespace header only when the namespace differs from the previous write.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use bson::RawDocument;
use bson::raw::RawBsonRef;

use crate::catalog::{Catalog, Namespace, NsKind, NsStatus, Summary};
use crate::docs::{self, DocIter, MAX_DOC_LEN, MAX_USER_DOC_LEN, MIN_DOC_LEN};
use crate::mongodump::metadata::{self, bson_int, has_metadata, parse_metadata};
use crate::mongodump::{
    Counter, Counting, Error, GZIP_MAGIC, gunzip, parse_server_version, server_from_version,
    stores_raw_timeseries, tool_from_version, version_for_tool,
};
use crate::output::OutFile;
use crate::sink::{Sink, SinkError};
use crate::source::{Chunk, Source, SourceError};
use crate::verify::{Finding, NsTotals, Report, Severity, VerifyOptions};

/// The four bytes an archive starts with (`0x8199E26D` little-endian).
pub const MAGIC: [u8; 4] = [0x6d, 0xe2, 0x99, 0x81];
/// The block terminator (`0xFFFFFFFF`, never a valid BSON length).
pub const TERMINATOR: [u8; 4] = [0xff; 4];
/// The only archive format version there is.
pub const FORMAT_VERSION: &str = "0.1";
/// `concurrent_collections` written when the catalog does not say (mongodump's `-j` default).
pub const DEFAULT_CONCURRENT_COLLECTIONS: i32 = 4;
/// Largest document in an archive outside the oplog (and the size of mongodump's
/// per-namespace buffer).
pub const MAX_ARCHIVE_DOC_LEN: usize = MAX_USER_DOC_LEN;
/// Size of the per-namespace buffer of the writer, as in mongodump.
pub const MUX_BUFFER_LEN: usize = MAX_USER_DOC_LEN;
/// About how many bytes of documents the reader delivers per chunk.
pub const CHUNK_TARGET: usize = 4 * 1024 * 1024;
/// The writer flushes its largest buffer when all buffers together hold more than this.
const MAX_BUFFERED_TOTAL: usize = 128 * 1024 * 1024;

/// Database of the oplog in an archive.
pub const ARCHIVE_OPLOG_DB: &str = "";
/// Collection of the oplog in an archive.
pub const ARCHIVE_OPLOG_COLLECTION: &str = "oplog";

// ---------------------------------------------------------------------------------------
// Header documents
// ---------------------------------------------------------------------------------------

/// The archive header document (the first document of the prelude).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveHeader {
    /// mongodump's `-j`; mongorestore uses at least this many workers.
    pub concurrent_collections: i32,
    /// Format version, `0.1`.
    pub version: String,
    /// Source server version, or `unknown`.
    pub server_version: String,
    /// Version of the tool that wrote the archive.
    pub tool_version: String,
}

/// One metadata document of the prelude.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreludeEntry {
    /// Database (`""` for the oplog).
    pub db: String,
    /// Logical collection name (`oplog` for the oplog).
    pub collection: String,
    /// The `.metadata.json` text, or `""`.
    pub metadata: String,
    /// `size` (always 0 in mongodump's output).
    pub size: i64,
    /// `type`: `collection`, `view`, `timeseries` or `""`.
    pub kind: String,
    /// Offset of the document in the stream.
    pub offset: u64,
}

/// A namespace header: the start of a data segment or the end block of a namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsHeader {
    /// Database.
    pub db: String,
    /// Data collection (`system.buckets.X` for time-series data of servers below 8.3).
    pub collection: String,
    /// Whether this is the namespace's end block.
    pub eof: bool,
    /// CRC-64/XZ of all the namespace's documents (end block), 0 otherwise.
    pub crc: u64,
}

struct DocBuilder(Vec<u8>);

impl DocBuilder {
    fn new() -> DocBuilder {
        DocBuilder(vec![0; 4])
    }
    fn key(&mut self, t: u8, key: &str) {
        self.0.push(t);
        self.0.extend_from_slice(key.as_bytes());
        self.0.push(0);
    }
    fn str(mut self, key: &str, v: &str) -> DocBuilder {
        self.key(0x02, key);
        self.0
            .extend_from_slice(&((v.len() + 1) as i32).to_le_bytes());
        self.0.extend_from_slice(v.as_bytes());
        self.0.push(0);
        self
    }
    fn bool(mut self, key: &str, v: bool) -> DocBuilder {
        self.key(0x08, key);
        self.0.push(v as u8);
        self
    }
    fn i32(mut self, key: &str, v: i32) -> DocBuilder {
        self.key(0x10, key);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(mut self, key: &str, v: i64) -> DocBuilder {
        self.key(0x12, key);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn finish(mut self) -> Vec<u8> {
        self.0.push(0);
        let len = self.0.len() as i32;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        self.0
    }
}

impl ArchiveHeader {
    /// The header document's bytes, fields in mongodump's order and types.
    pub fn to_bytes(&self) -> Vec<u8> {
        DocBuilder::new()
            .i32("concurrent_collections", self.concurrent_collections)
            .str("version", &self.version)
            .str("server_version", &self.server_version)
            .str("tool_version", &self.tool_version)
            .finish()
    }

    /// Parses the header document leniently, as Go's `bson.Unmarshal` does: unknown
    /// fields are ignored, integers may be int32, int64 or integral doubles.
    pub fn parse(bytes: &[u8]) -> Result<ArchiveHeader, String> {
        let mut h = ArchiveHeader::default();
        for (key, v) in elements(bytes)? {
            match key.as_str() {
                "concurrent_collections" => {
                    h.concurrent_collections =
                        bson_int_raw(v)
                            .and_then(|i| i32::try_from(i).ok())
                            .ok_or("concurrent_collections is not a 32-bit integer")?
                }
                "version" => h.version = string_field(&key, v)?,
                "server_version" => h.server_version = string_field(&key, v)?,
                "tool_version" => h.tool_version = string_field(&key, v)?,
                _ => {}
            }
        }
        Ok(h)
    }
}

impl PreludeEntry {
    /// The metadata document's bytes, fields in mongodump's order and types.
    pub fn to_bytes(&self) -> Vec<u8> {
        DocBuilder::new()
            .str("db", &self.db)
            .str("collection", &self.collection)
            .str("metadata", &self.metadata)
            .i32("size", i32::try_from(self.size).unwrap_or(0))
            .str("type", &self.kind)
            .finish()
    }

    /// Parses a metadata document leniently (unknown fields ignored, `size` int32 or int64).
    pub fn parse(bytes: &[u8], offset: u64) -> Result<PreludeEntry, String> {
        let mut e = PreludeEntry {
            offset,
            ..PreludeEntry::default()
        };
        for (key, v) in elements(bytes)? {
            match key.as_str() {
                "db" => e.db = string_field(&key, v)?,
                "collection" => e.collection = string_field(&key, v)?,
                "metadata" => e.metadata = string_field(&key, v)?,
                "type" => e.kind = string_field(&key, v)?,
                "size" => e.size = bson_int_raw(v).ok_or("size is not an integer")?,
                _ => {}
            }
        }
        Ok(e)
    }

    fn full_name(&self) -> String {
        format!("{}.{}", self.db, self.collection)
    }
}

impl NsHeader {
    /// The header's bytes: `{db, collection, EOF, CRC}` in that order, `CRC` an int64
    /// holding the bits of the unsigned checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        DocBuilder::new()
            .str("db", &self.db)
            .str("collection", &self.collection)
            .bool("EOF", self.eof)
            .i64("CRC", self.crc as i64)
            .finish()
    }

    /// Parses a namespace header strictly, like mongorestore: only the four known
    /// fields, each with its exact type (`CRC` must be an int64).
    pub fn parse(bytes: &[u8]) -> Result<NsHeader, String> {
        let mut h = NsHeader::default();
        for (key, v) in elements(bytes)? {
            match key.as_str() {
                "db" => h.db = string_field(&key, v)?,
                "collection" => h.collection = string_field(&key, v)?,
                "EOF" => match v {
                    RawBsonRef::Boolean(b) => h.eof = b,
                    other => {
                        return Err(format!(
                            "EOF is BSON {:?}, expected a boolean",
                            other.element_type()
                        ));
                    }
                },
                "CRC" => match v {
                    RawBsonRef::Int64(i) => h.crc = i as u64,
                    other => {
                        return Err(format!(
                            "CRC is BSON {:?}, expected int64",
                            other.element_type()
                        ));
                    }
                },
                other => return Err(format!("unknown field {other:?} in a namespace header")),
            }
        }
        Ok(h)
    }
}

fn elements(bytes: &[u8]) -> Result<Vec<(String, RawBsonRef<'_>)>, String> {
    let doc = RawDocument::from_bytes(bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for el in doc.iter() {
        let (k, v) = el.map_err(|e| e.to_string())?;
        out.push((k.as_str().to_string(), v));
    }
    Ok(out)
}

fn string_field(key: &str, v: RawBsonRef<'_>) -> Result<String, String> {
    match v {
        RawBsonRef::String(s) => Ok(s.to_string()),
        other => Err(format!(
            "{key} is BSON {:?}, expected a string",
            other.element_type()
        )),
    }
}

fn bson_int_raw(v: RawBsonRef<'_>) -> Option<i64> {
    match v {
        RawBsonRef::Int32(i) => bson_int(&bson::Bson::Int32(i)),
        RawBsonRef::Int64(i) => Some(i),
        RawBsonRef::Double(f) => bson_int(&bson::Bson::Double(f)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Low-level framing shared by the reader and the checker
// ---------------------------------------------------------------------------------------

/// A problem found while reading, with its location.
#[derive(Debug)]
struct Fault {
    code: &'static str,
    severity: Severity,
    offset: u64,
    namespace: Option<String>,
    frame: Option<u64>,
    message: String,
    io: Option<io::Error>,
}

impl Fault {
    fn new(code: &'static str, offset: u64, message: impl Into<String>) -> Fault {
        Fault {
            code,
            severity: Severity::Error,
            offset,
            namespace: None,
            frame: None,
            message: message.into(),
            io: None,
        }
    }
    fn ns(mut self, ns: Option<String>) -> Fault {
        self.namespace = ns;
        self
    }
    fn frame(mut self, frame: Option<u64>) -> Fault {
        self.frame = frame;
        self
    }
    fn warning(mut self) -> Fault {
        self.severity = Severity::Warning;
        self
    }
    fn into_finding(self) -> Finding {
        let mut f = match self.severity {
            Severity::Error => Finding::error(self.code, self.message),
            Severity::Warning => Finding::warning(self.code, self.message),
        };
        f.offset = Some(self.offset);
        f.namespace = self.namespace;
        f.frame = self.frame;
        f
    }
    fn into_error(self, path: &Path) -> Error {
        match self.io {
            Some(source) if self.code == "archive-io" => Error::Io {
                path: path.to_path_buf(),
                source,
            },
            _ => Error::Corrupt {
                path: path.to_path_buf(),
                offset: Some(self.offset),
                namespace: self.namespace,
                message: self.message,
            },
        }
    }
}

fn io_fault(e: io::Error, offset: u64, what: &str) -> Fault {
    let code = match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => "archive-gzip",
        io::ErrorKind::UnexpectedEof => "archive-truncated",
        _ => "archive-io",
    };
    let message = match code {
        "archive-gzip" => format!("damaged gzip stream while reading {what}: {e}"),
        "archive-truncated" => format!("gzip stream ends early while reading {what}: {e}"),
        _ => format!("read error while reading {what}: {e}"),
    };
    Fault {
        io: Some(e),
        ..Fault::new(code, offset, message)
    }
}

struct Framer<R> {
    r: R,
    offset: u64,
}

enum Word {
    Eof,
    Term,
    Len([u8; 4]),
}

impl<R: Read> Framer<R> {
    /// Reads four bytes: a clean end of stream, a terminator or a document length.
    fn word(&mut self, what: &str) -> Result<Word, Fault> {
        let start = self.offset;
        let mut b = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.r.read(&mut b[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_fault(e, start + got as u64, what)),
            }
        }
        self.offset += got as u64;
        match got {
            0 => Ok(Word::Eof),
            4 if b == TERMINATOR => Ok(Word::Term),
            4 => Ok(Word::Len(b)),
            n => Err(Fault::new(
                "archive-truncated",
                start,
                format!("the archive ends {n} byte(s) into {what}"),
            )),
        }
    }

    /// Reads the rest of a document whose length word was `first`, appending the whole
    /// document to `out`. The length must already be checked.
    fn body(
        &mut self,
        first: [u8; 4],
        len: usize,
        out: &mut Vec<u8>,
        what: &str,
    ) -> Result<(), Fault> {
        let start = self.offset - 4;
        let before = out.len();
        out.extend_from_slice(&first);
        let want = (len - 4) as u64;
        let res = (&mut self.r).take(want).read_to_end(out);
        let got = (out.len() - before - 4) as u64;
        self.offset += got;
        if let Err(e) = res {
            return Err(io_fault(e, self.offset, what));
        }
        if got < want {
            out.truncate(before);
            return Err(Fault::new(
                "archive-truncated",
                start,
                format!(
                    "the archive ends inside {what}: it declares {len} bytes, only {} remain",
                    got + 4
                ),
            ));
        }
        Ok(())
    }
}

fn check_len(first: [u8; 4], max: usize) -> Result<usize, i32> {
    let len = i32::from_le_bytes(first);
    if len < MIN_DOC_LEN as i32 || len as i64 > max as i64 {
        Err(len)
    } else {
        Ok(len as usize)
    }
}

fn hex4(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The parsed prelude of an archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prelude {
    /// The header document.
    pub header: ArchiveHeader,
    /// The metadata documents, in stream order.
    pub entries: Vec<PreludeEntry>,
}

fn read_prelude<R: Read>(f: &mut Framer<R>) -> Result<Prelude, Fault> {
    let mut buf = Vec::new();
    match f.word("the magic number")? {
        Word::Eof => {
            return Err(Fault::new("archive-truncated", 0, "the input is empty"));
        }
        Word::Len(b) if b == MAGIC => {}
        Word::Len(b) => {
            return Err(Fault::new(
                "archive-magic",
                0,
                format!(
                    "not a mongodump archive: starts with {}, expected {}",
                    hex4(&b),
                    hex4(&MAGIC)
                ),
            ));
        }
        Word::Term => {
            return Err(Fault::new(
                "archive-magic",
                0,
                "not a mongodump archive: starts with ff ff ff ff",
            ));
        }
    }
    let at = f.offset;
    let header = match f.word("the archive header")? {
        Word::Eof => {
            return Err(Fault::new(
                "archive-truncated",
                at,
                "the archive ends after the magic number",
            ));
        }
        Word::Term => {
            return Err(Fault::new(
                "archive-framing",
                at,
                "terminator where the archive header was expected",
            ));
        }
        Word::Len(b) => {
            let len = check_len(b, MAX_ARCHIVE_DOC_LEN).map_err(|len| {
                Fault::new(
                    "archive-framing",
                    at,
                    format!(
                        "archive header declares length {len}, outside 5..={MAX_ARCHIVE_DOC_LEN}"
                    ),
                )
            })?;
            f.body(b, len, &mut buf, "the archive header")?;
            ArchiveHeader::parse(&buf).map_err(|m| {
                Fault::new(
                    "archive-prelude",
                    at,
                    format!("invalid archive header: {m}"),
                )
            })?
        }
    };
    let mut entries = Vec::new();
    loop {
        let at = f.offset;
        match f.word("the prelude")? {
            Word::Term => break,
            Word::Eof => {
                return Err(Fault::new(
                    "archive-truncated",
                    at,
                    "the archive ends inside the prelude (no terminator after the metadata documents)",
                ));
            }
            Word::Len(b) => {
                let len = check_len(b, MAX_ARCHIVE_DOC_LEN).map_err(|len| {
                    Fault::new(
                        "archive-framing",
                        at,
                        format!("prelude document declares length {len}, outside 5..={MAX_ARCHIVE_DOC_LEN}"),
                    )
                })?;
                buf.clear();
                f.body(b, len, &mut buf, "a prelude metadata document")?;
                entries.push(PreludeEntry::parse(&buf, at).map_err(|m| {
                    Fault::new(
                        "archive-prelude",
                        at,
                        format!("invalid prelude metadata document: {m}"),
                    )
                })?);
            }
        }
    }
    Ok(Prelude { header, entries })
}

/// The catalog of an archive and how its data namespaces map onto it.
struct NsMap {
    catalog: Catalog,
    by_data: HashMap<(String, String), usize>,
}

fn is_oplog_entry(e: &PreludeEntry) -> bool {
    e.db == ARCHIVE_OPLOG_DB && e.collection == ARCHIVE_OPLOG_COLLECTION
}

fn build_catalog(prelude: &Prelude) -> (NsMap, Vec<Fault>) {
    let mut faults = Vec::new();
    let h = &prelude.header;
    let mut catalog = Catalog::default();
    catalog.source.tool = tool_from_version(&h.tool_version);
    catalog.source.server_version = server_from_version(&h.server_version);
    catalog.source.concurrent_collections = Some(h.concurrent_collections);
    let mut by_data: HashMap<(String, String), usize> = HashMap::new();
    let mut aliases = Vec::new();
    for e in &prelude.entries {
        if by_data.contains_key(&(e.db.clone(), e.collection.clone())) {
            faults.push(
                Fault::new(
                    "archive-prelude",
                    e.offset,
                    "namespace listed twice in the prelude; the second entry is ignored",
                )
                .ns(Some(e.full_name())),
            );
            continue;
        }
        let ns = if is_oplog_entry(e) {
            metadata::oplog_namespace()
        } else {
            let fallback = match e.kind.as_str() {
                "view" => NsKind::View,
                "timeseries" => NsKind::Timeseries,
                _ => NsKind::Collection,
            };
            if e.metadata.is_empty() {
                Namespace {
                    kind: fallback,
                    ..Namespace::collection(&e.db, &e.collection)
                }
            } else {
                match parse_metadata(e.metadata.as_bytes()) {
                    Ok(md) => {
                        let mut ns = md.to_namespace(&e.db, &e.collection);
                        if md.kind.is_none() && ns.kind == NsKind::Collection {
                            ns.kind = fallback;
                        }
                        ns
                    }
                    Err(err) => {
                        faults.push(
                            Fault::new(
                                "archive-metadata",
                                e.offset,
                                format!("invalid metadata: {err}"),
                            )
                            .ns(Some(e.full_name())),
                        );
                        Namespace {
                            kind: fallback,
                            ..Namespace::collection(&e.db, &e.collection)
                        }
                    }
                }
            }
        };
        let idx = catalog.namespaces.len();
        if ns.kind == NsKind::Timeseries {
            aliases.push((e.db.clone(), ns.bucket_collection(), idx));
        }
        by_data.insert((e.db.clone(), e.collection.clone()), idx);
        catalog.namespaces.push(ns);
    }
    for (db, coll, idx) in aliases {
        by_data.entry((db, coll)).or_insert(idx);
    }
    (NsMap { catalog, by_data }, faults)
}

fn max_doc_len(ns: &Namespace) -> usize {
    if ns.kind == NsKind::Oplog {
        MAX_DOC_LEN
    } else {
        MAX_ARCHIVE_DOC_LEN
    }
}

// ---------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum ReadState {
    Header,
    Segment(usize),
    Done,
}

struct NsRead {
    crc: crc64fast::Digest,
    ended: bool,
    segments: u64,
}

/// Reads a mongodump archive stream as a [`Source`].
///
/// The input is the **decompressed** stream (wrap gzip input with [`gunzip`], or use
/// [`open_archive`], which detects it). Chunks follow the stream: runs of whole
/// documents of about [`CHUNK_TARGET`] bytes at most (a larger document comes alone),
/// never spanning two segments, and a [`Chunk::End`] at each end block once its CRC is
/// checked. Any deviation from the format is an error naming the byte offset in the
/// stream and the namespace.
pub struct ArchiveReader<R> {
    f: Framer<BufReader<R>>,
    path: PathBuf,
    prelude: Prelude,
    catalog: Catalog,
    by_data: HashMap<(String, String), usize>,
    ns: Vec<NsRead>,
    open: usize,
    state: ReadState,
    pending: Option<([u8; 4], usize)>,
    failed: Option<String>,
}

impl<R: Read> ArchiveReader<R> {
    /// Reads the prelude of the archive stream `input`; `path` names it in messages.
    pub fn new(input: R, path: impl Into<PathBuf>) -> Result<ArchiveReader<R>, Error> {
        let path = path.into();
        let mut f = Framer {
            r: BufReader::with_capacity(256 * 1024, input),
            offset: 0,
        };
        let prelude = read_prelude(&mut f).map_err(|e| e.into_error(&path))?;
        let (map, faults) = build_catalog(&prelude);
        if let Some(fault) = faults.into_iter().next() {
            return Err(fault.into_error(&path));
        }
        let ns = map
            .catalog
            .namespaces
            .iter()
            .map(|_| NsRead {
                crc: crc64fast::Digest::new(),
                ended: false,
                segments: 0,
            })
            .collect::<Vec<_>>();
        Ok(ArchiveReader {
            open: ns.len(),
            ns,
            f,
            path,
            prelude,
            catalog: map.catalog,
            by_data: map.by_data,
            state: ReadState::Header,
            pending: None,
            failed: None,
        })
    }

    /// The archive header.
    pub fn header(&self) -> &ArchiveHeader {
        &self.prelude.header
    }

    /// The prelude's metadata documents, in stream order.
    pub fn prelude(&self) -> &Prelude {
        &self.prelude
    }

    /// Bytes of the (decompressed) stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.f.offset
    }

    fn ns_name(&self, ns: usize) -> String {
        self.catalog.namespaces[ns].full_name()
    }

    fn fail(&mut self, fault: Fault) -> Error {
        let err = fault.into_error(&self.path);
        self.failed = Some(err.to_string());
        self.state = ReadState::Done;
        err
    }

    fn step(&mut self) -> Result<Option<Chunk>, Fault> {
        loop {
            match self.state {
                ReadState::Done => return Ok(None),
                ReadState::Header => {
                    if let Some(chunk) = self.read_header()? {
                        return Ok(Some(chunk));
                    }
                }
                ReadState::Segment(ns) => {
                    if let Some(chunk) = self.read_segment(ns)? {
                        return Ok(Some(chunk));
                    }
                }
            }
        }
    }

    fn read_header(&mut self) -> Result<Option<Chunk>, Fault> {
        let at = self.f.offset;
        let first = match self.f.word("a namespace header")? {
            Word::Eof if self.open == 0 => {
                self.state = ReadState::Done;
                return Ok(None);
            }
            Word::Eof => {
                let missing: Vec<String> = (0..self.ns.len())
                    .filter(|&i| !self.ns[i].ended)
                    .map(|i| self.ns_name(i))
                    .collect();
                return Err(Fault::new(
                    "archive-missing-eof",
                    at,
                    format!(
                        "the archive ends before the end block of {} namespace(s): {}",
                        missing.len(),
                        abbreviate(&missing)
                    ),
                ));
            }
            Word::Term => {
                return Err(Fault::new(
                    "archive-framing",
                    at,
                    "terminator where a namespace header was expected",
                ));
            }
            Word::Len(b) if self.open == 0 => {
                return Err(Fault::new(
                    "archive-trailing",
                    at,
                    format!(
                        "data after the end block of the last namespace (starting {})",
                        hex4(&b)
                    ),
                ));
            }
            Word::Len(b) => b,
        };
        let len = check_len(first, MAX_ARCHIVE_DOC_LEN).map_err(|len| {
            Fault::new(
                "archive-framing",
                at,
                format!(
                    "namespace header declares length {len}, outside 5..={MAX_ARCHIVE_DOC_LEN}"
                ),
            )
        })?;
        let mut buf = Vec::with_capacity(len.min(4096));
        self.f.body(first, len, &mut buf, "a namespace header")?;
        let h = NsHeader::parse(&buf).map_err(|m| {
            Fault::new(
                "archive-header",
                at,
                format!("invalid namespace header: {m}"),
            )
        })?;
        let Some(&ns) = self.by_data.get(&(h.db.clone(), h.collection.clone())) else {
            return Err(Fault::new(
                "archive-unknown-ns",
                at,
                format!(
                    "namespace header for {}.{}, which the prelude does not list",
                    h.db, h.collection
                ),
            ));
        };
        let name = Some(self.ns_name(ns));
        if self.ns[ns].ended {
            return Err(Fault::new(
                "archive-after-eof",
                at,
                if h.eof {
                    "second end block for the namespace"
                } else {
                    "data segment after the namespace's end block"
                },
            )
            .ns(name));
        }
        if !h.eof {
            self.ns[ns].segments += 1;
            self.state = ReadState::Segment(ns);
            return Ok(None);
        }
        let term_at = self.f.offset;
        match self.f.word("the terminator of an end block")? {
            Word::Term => {}
            _ => {
                return Err(Fault::new(
                    "archive-framing",
                    term_at,
                    "an end block must be followed by a terminator",
                )
                .ns(name));
            }
        }
        let computed = self.ns[ns].crc.sum64();
        if computed != h.crc {
            return Err(Fault::new(
                "archive-crc",
                at,
                format!(
                    "CRC mismatch: the end block says {:#018x}, the documents give {computed:#018x}",
                    h.crc
                ),
            )
            .ns(name));
        }
        self.ns[ns].ended = true;
        self.open -= 1;
        Ok(Some(Chunk::End {
            ns,
            status: NsStatus::Complete,
        }))
    }

    fn read_segment(&mut self, ns: usize) -> Result<Option<Chunk>, Fault> {
        let max = max_doc_len(&self.catalog.namespaces[ns]);
        let mut data: Vec<u8> = Vec::new();
        let mut count = 0u64;
        loop {
            let at = self.f.offset;
            let (first, len) = match self.pending.take() {
                Some(p) => p,
                None => match self.f.word("a document")? {
                    Word::Term => {
                        self.state = ReadState::Header;
                        break;
                    }
                    Word::Eof => {
                        return Err(Fault::new(
                            "archive-truncated",
                            at,
                            "the archive ends inside a data segment (no terminator)",
                        )
                        .ns(Some(self.ns_name(ns)))
                        .frame(Some(self.ns[ns].segments - 1)));
                    }
                    Word::Len(b) => {
                        let len = check_len(b, max).map_err(|len| {
                            Fault::new(
                                "doc-framing",
                                at,
                                format!("document declares length {len}, outside 5..={max}"),
                            )
                            .ns(Some(self.ns_name(ns)))
                            .frame(Some(self.ns[ns].segments - 1))
                        })?;
                        (b, len)
                    }
                },
            };
            if !data.is_empty() && data.len() + len > CHUNK_TARGET {
                self.pending = Some((first, len));
                break;
            }
            let doc_at = self.f.offset - 4;
            self.f
                .body(first, len, &mut data, "a document")
                .map_err(|e| {
                    e.ns(Some(self.ns_name(ns)))
                        .frame(Some(self.ns[ns].segments - 1))
                })?;
            if data.last() != Some(&0) {
                return Err(Fault::new(
                    "doc-framing",
                    doc_at,
                    format!("document (length {len}) does not end with 0x00"),
                )
                .ns(Some(self.ns_name(ns)))
                .frame(Some(self.ns[ns].segments - 1)));
            }
            count += 1;
        }
        if count == 0 {
            return Ok(None);
        }
        self.ns[ns].crc.write(&data);
        Ok(Some(Chunk::Docs { ns, data, count }))
    }
}

fn abbreviate(names: &[String]) -> String {
    if names.len() <= 5 {
        names.join(", ")
    } else {
        format!("{}, … ({} more)", names[..5].join(", "), names.len() - 5)
    }
}

impl<R: Read + Send> Source for ArchiveReader<R> {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, SourceError> {
        if let Some(msg) = &self.failed {
            return Err(SourceError::Corrupt {
                path: self.path.clone(),
                message: format!("reading stopped after an earlier error: {msg}"),
            });
        }
        match self.step() {
            Ok(c) => Ok(c),
            Err(fault) => Err(self.fail(fault).into()),
        }
    }
}

/// Opens an archive file (`-` for standard input), gzipped or not: gzip is detected
/// from the first two bytes, and multi-member gzip streams are read to their end.
pub fn open_archive(path: &Path) -> Result<ArchiveReader<Box<dyn Read + Send>>, Error> {
    let (input, _gzip) = open_input(path)?;
    ArchiveReader::new(input, path)
}

/// Opens `path` (`-` for standard input) and returns a reader of the decompressed
/// bytes and whether the input was gzipped.
fn open_input(path: &Path) -> Result<(Box<dyn Read + Send>, bool), Error> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?)
    };
    sniff_gzip(raw).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Peeks at the first bytes of `raw` and decompresses it when it is gzip.
pub fn sniff_gzip<R: Read + Send + 'static>(
    mut raw: R,
) -> io::Result<(Box<dyn Read + Send>, bool)> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let prefix = io::Cursor::new(head[..got].to_vec());
    let gzip = got == 2 && head == GZIP_MAGIC;
    let joined = prefix.chain(raw);
    Ok(if gzip {
        (
            Box::new(gunzip(BufReader::with_capacity(256 * 1024, joined))),
            true,
        )
    } else {
        (Box::new(joined), false)
    })
}

/// Drives a reader and the checker over arbitrary bytes until they stop; for fuzzing.
/// Never panics, never allocates more than about twice the largest document.
pub fn read_all_for_fuzz(bytes: &[u8]) {
    if let Ok(mut r) = ArchiveReader::new(bytes, "fuzz") {
        while let Ok(Some(_)) = r.next_chunk() {}
    }
    let opts = VerifyOptions { deep: true };
    let _ = verify_stream(bytes, false, Path::new("fuzz"), &opts, &mut |_| {});
}

// ---------------------------------------------------------------------------------------
// Checker
// ---------------------------------------------------------------------------------------

/// Checks the archive at `path` (`-` for standard input), gzipped or not.
///
/// Only failing to open the input is an error; everything found in the content is a
/// [`Finding`] of the report. `progress` receives the number of bytes read so far from
/// the file (compressed bytes for a gzipped archive), about every MiB and at the end.
pub fn verify(
    path: &Path,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Report, Error> {
    let raw: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?)
    };
    let mut raw = BufReader::with_capacity(256 * 1024, raw);
    let gzip = {
        use std::io::BufRead;
        let head = raw.fill_buf().map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        head.starts_with(&GZIP_MAGIC)
    };
    Ok(verify_stream(raw, gzip, path, opts, progress))
}

/// Checks an archive read from `input` (gzipped when `gzip`); `path` names it in the
/// report. `progress` receives the bytes read from `input` (compressed bytes for gzip).
/// See [`verify`].
pub fn verify_stream<R: Read>(
    input: R,
    gzip: bool,
    path: &Path,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Report {
    let counter = Counter::default();
    let counted = Counting {
        inner: input,
        counter: counter.clone(),
    };
    let format = if gzip {
        "mongodump-archive+gzip"
    } else {
        "mongodump-archive"
    };
    let mut report = Report::new(path, format);
    if gzip {
        let stream = gunzip(BufReader::with_capacity(256 * 1024, counted));
        check(stream, counter, opts, &mut report, progress);
    } else {
        check(counted, counter, opts, &mut report, progress);
    }
    report
}

/// Checks the **decompressed** archive stream `stream` into `report` (whose path and
/// format the caller has set), adding findings, per-namespace totals and
/// `report.complete`. `progress` receives the bytes of `stream` consumed so far.
pub fn verify_into<R: Read>(
    stream: R,
    opts: &VerifyOptions,
    report: &mut Report,
    progress: &mut dyn FnMut(u64),
) {
    let counter = Counter::default();
    let counted = Counting {
        inner: stream,
        counter: counter.clone(),
    };
    check(counted, counter, opts, report, progress);
}

fn check<R: Read>(
    stream: R,
    counter: Counter,
    opts: &VerifyOptions,
    report: &mut Report,
    progress: &mut dyn FnMut(u64),
) {
    let mut checker = Checker {
        f: Framer {
            r: BufReader::with_capacity(256 * 1024, stream),
            offset: 0,
        },
        opts,
        progress,
        counter,
        last_progress: 0,
        report,
    };
    checker.run();
}

struct Checker<'a, R> {
    f: Framer<R>,
    opts: &'a VerifyOptions,
    progress: &'a mut dyn FnMut(u64),
    counter: Counter,
    last_progress: u64,
    report: &'a mut Report,
}

struct NsCheck {
    crc: crc64fast::Digest,
    ended: bool,
    segments: u64,
}

#[derive(Clone, Copy)]
enum Target {
    /// Documents of a known, open namespace, in segment `seg`.
    Ns(usize, u64),
    /// Documents that belong nowhere (unknown namespace, after the end, bad header):
    /// checked for framing only; `Some(ns)` when a namespace is known.
    Stray(Option<usize>),
}

impl<R: Read> Checker<'_, R> {
    fn tick(&mut self) {
        let n = self.counter.get();
        if n >= self.last_progress + (1 << 20) {
            self.last_progress = n;
            (self.progress)(n);
        }
    }

    fn push(&mut self, fault: Fault) {
        self.report.push(fault.into_finding());
    }

    fn run(&mut self) {
        let prelude = match read_prelude(&mut self.f) {
            Ok(p) => p,
            Err(fault) => {
                self.push(fault);
                (self.progress)(self.counter.get());
                return;
            }
        };
        if prelude.header.version != FORMAT_VERSION {
            self.push(
                Fault::new(
                    "archive-version",
                    4,
                    format!(
                        "archive format version {:?}, expected {FORMAT_VERSION:?}",
                        prelude.header.version
                    ),
                )
                .warning(),
            );
        }
        if parse_server_version(&prelude.header.server_version).is_none() {
            self.push(
                Fault::new(
                    "archive-server-version",
                    4,
                    format!(
                        "server_version {:?} is not x.y.z: mongorestore 100.x stops with \"parse version from prelude\" on such an archive",
                        prelude.header.server_version
                    ),
                )
                .warning(),
            );
        }
        let (map, faults) = build_catalog(&prelude);
        for fault in faults {
            self.push(fault);
        }
        let names: Vec<String> = map
            .catalog
            .namespaces
            .iter()
            .map(Namespace::full_name)
            .collect();
        self.report.namespaces = names
            .iter()
            .map(|n| NsTotals {
                namespace: n.clone(),
                ..NsTotals::default()
            })
            .collect();
        let mut ns: Vec<NsCheck> = names
            .iter()
            .map(|_| NsCheck {
                crc: crc64fast::Digest::new(),
                ended: false,
                segments: 0,
            })
            .collect();
        let clean_end = self.walk(&map, &names, &mut ns);
        if clean_end {
            for (i, st) in ns.iter().enumerate() {
                if !st.ended {
                    let f = Fault::new(
                        "archive-missing-eof",
                        self.f.offset,
                        "the archive ends without this namespace's end block (mongorestore refuses it)",
                    )
                    .ns(Some(names[i].clone()));
                    self.push(f);
                }
            }
            self.report.complete = ns.iter().all(|s| s.ended);
        } else {
            let missing = ns.iter().filter(|s| !s.ended).count();
            if missing > 0
                && let Some(last) = self.report.findings.last_mut()
            {
                last.message.push_str(&format!(
                    "; {missing} namespace(s) never reached their end block"
                ));
            }
            self.report.complete = false;
        }
        (self.progress)(self.counter.get());
    }

    /// Walks the namespace blocks; returns whether the stream ended cleanly at a block
    /// boundary.
    fn walk(&mut self, map: &NsMap, names: &[String], ns: &mut [NsCheck]) -> bool {
        let mut buf = Vec::new();
        let mut target: Option<Target> = None;
        let mut after_eof_block: Option<usize> = None;
        loop {
            self.tick();
            let at = self.f.offset;
            let Some(t) = target else {
                // Expecting a namespace header.
                let first = match self.f.word("a namespace header") {
                    Err(f) => {
                        self.push(f);
                        return false;
                    }
                    Ok(Word::Eof) => return true,
                    Ok(Word::Term) => {
                        self.push(Fault::new(
                            "archive-framing",
                            at,
                            "terminator where a namespace header was expected",
                        ));
                        continue;
                    }
                    Ok(Word::Len(b)) => b,
                };
                let len = match check_len(first, MAX_ARCHIVE_DOC_LEN) {
                    Ok(l) => l,
                    Err(len) => {
                        let msg = if ns.iter().all(|s| s.ended) {
                            format!(
                                "data after the end block of the last namespace (a length of {len})"
                            )
                        } else {
                            format!(
                                "namespace header declares length {len}, outside 5..={MAX_ARCHIVE_DOC_LEN}"
                            )
                        };
                        let code = if ns.iter().all(|s| s.ended) {
                            "archive-trailing"
                        } else {
                            "archive-framing"
                        };
                        self.push(Fault::new(code, at, msg));
                        return false;
                    }
                };
                buf.clear();
                if let Err(f) = self.f.body(first, len, &mut buf, "a namespace header") {
                    self.push(f);
                    return false;
                }
                let h = match NsHeader::parse(&buf) {
                    Ok(h) => h,
                    Err(m) => {
                        self.push(Fault::new(
                            "archive-header",
                            at,
                            format!("invalid namespace header: {m}"),
                        ));
                        target = Some(Target::Stray(None));
                        continue;
                    }
                };
                let Some(&i) = map.by_data.get(&(h.db.clone(), h.collection.clone())) else {
                    self.push(Fault::new(
                        "archive-unknown-ns",
                        at,
                        format!(
                            "namespace header for {}.{}, which the prelude does not list",
                            h.db, h.collection
                        ),
                    ));
                    target = Some(Target::Stray(None));
                    continue;
                };
                let name = Some(names[i].clone());
                if ns[i].ended {
                    self.push(
                        Fault::new(
                            "archive-after-eof",
                            at,
                            if h.eof {
                                "second end block for the namespace"
                            } else {
                                "data segment after the namespace's end block"
                            },
                        )
                        .ns(name),
                    );
                    target = Some(Target::Stray(Some(i)));
                    continue;
                }
                if h.eof {
                    ns[i].ended = true;
                    let computed = ns[i].crc.sum64();
                    if computed != h.crc {
                        self.push(
                            Fault::new(
                                "archive-crc",
                                at,
                                format!(
                                    "CRC mismatch: the end block says {:#018x}, the documents give {computed:#018x}",
                                    h.crc
                                ),
                            )
                            .ns(name),
                        );
                    }
                    after_eof_block = Some(i);
                    target = Some(Target::Stray(Some(i)));
                } else {
                    target = Some(Target::Ns(i, ns[i].segments));
                    ns[i].segments += 1;
                }
                continue;
            };
            // Inside a block: documents until the terminator.
            let (ns_idx, counting) = match t {
                Target::Ns(i, _) => (Some(i), true),
                Target::Stray(i) => (i, false),
            };
            let name = ns_idx.map(|i| names[i].clone());
            let frame = match t {
                Target::Ns(_, seg) => Some(seg),
                Target::Stray(_) => None,
            };
            let first = match self.f.word("a document") {
                Err(f) => {
                    self.push(f.ns(name).frame(frame));
                    return false;
                }
                Ok(Word::Term) => {
                    target = None;
                    after_eof_block = None;
                    continue;
                }
                Ok(Word::Eof) => {
                    self.push(
                        Fault::new(
                            "archive-truncated",
                            at,
                            "the archive ends inside a block (no terminator)",
                        )
                        .ns(name)
                        .frame(frame),
                    );
                    return false;
                }
                Ok(Word::Len(b)) => b,
            };
            if let Some(i) = after_eof_block.take() {
                self.push(
                    Fault::new(
                        "archive-framing",
                        at,
                        "an end block must be followed by a terminator, found documents",
                    )
                    .ns(Some(names[i].clone())),
                );
            }
            let len = match check_len(first, MAX_DOC_LEN) {
                Ok(l) => l,
                Err(len) => {
                    self.push(
                        Fault::new(
                            "doc-framing",
                            at,
                            format!("document declares length {len}, outside 5..={MAX_DOC_LEN}"),
                        )
                        .ns(name)
                        .frame(frame),
                    );
                    return false;
                }
            };
            if len > MAX_ARCHIVE_DOC_LEN {
                let is_oplog =
                    ns_idx.is_some_and(|i| map.catalog.namespaces[i].kind == NsKind::Oplog);
                let f = Fault::new(
                    "archive-doc-size",
                    at,
                    format!(
                        "document of {len} bytes: mongorestore does not read documents over {MAX_ARCHIVE_DOC_LEN} bytes in an archive"
                    ),
                )
                .ns(name.clone())
                .frame(frame);
                self.push(if is_oplog { f.warning() } else { f });
            }
            buf.clear();
            if let Err(f) = self.f.body(first, len, &mut buf, "a document") {
                self.push(f.ns(name).frame(frame));
                return false;
            }
            if buf[len - 1] != 0 {
                self.push(
                    Fault::new(
                        "doc-framing",
                        at,
                        format!("document (length {len}) does not end with 0x00"),
                    )
                    .ns(name.clone())
                    .frame(frame),
                );
            } else if self.opts.deep
                && let Err(e) = docs::deep_check(&buf)
            {
                self.push(
                    Fault::new("doc-deep", at, e.to_string())
                        .ns(name.clone())
                        .frame(frame),
                );
            }
            if let (true, Some(i)) = (counting, ns_idx) {
                ns[i].crc.write(&buf);
                let tot = &mut self.report.namespaces[i];
                tot.documents += 1;
                tot.bytes += len as u64;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

/// Where an [`ArchiveWriter`] puts its bytes: a plain output or a compressor in front of
/// one. The stream is complete only once [`ArchiveOutput::commit`] has run.
pub trait ArchiveOutput: Write + Send {
    /// Finishes the stream (compressor trailer, flush) and moves it to its final name.
    fn commit(self: Box<Self>) -> Result<(), SinkError>;
    /// The output's name for messages.
    fn display_path(&self) -> PathBuf;
}

impl ArchiveOutput for OutFile {
    fn commit(self: Box<Self>) -> Result<(), SinkError> {
        (*self).commit().map_err(SinkError::from)
    }
    fn display_path(&self) -> PathBuf {
        OutFile::display_path(self)
    }
}

/// Whole-stream gzip (flate2, default level) in front of another output, as `--gzip`
/// with `--archive` writes it. Any other compressor producing a gzip stream (a parallel
/// one, say) can take its place through [`ArchiveOutput`].
pub struct GzipOutput {
    enc: crate::gzip::ParallelGzip<Box<dyn ArchiveOutput>>,
    path: PathBuf,
}

impl GzipOutput {
    /// Compresses into `inner`.
    pub fn new(inner: Box<dyn ArchiveOutput>) -> GzipOutput {
        let path = inner.display_path();
        GzipOutput {
            enc: crate::gzip::ParallelGzip::new(inner),
            path,
        }
    }
}

impl Write for GzipOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.enc.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.enc.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}

impl ArchiveOutput for GzipOutput {
    fn commit(self: Box<Self>) -> Result<(), SinkError> {
        let path = self.path.clone();
        let inner = self
            .enc
            .finish()
            .map_err(|source| SinkError::Io { path, source })?;
        inner.commit()
    }
    fn display_path(&self) -> PathBuf {
        self.path.clone()
    }
}

struct NsOut {
    /// Data namespace of the segments.
    db: String,
    coll: String,
    full: String,
    crc: crc64fast::Digest,
    pending: Vec<u8>,
    ended: bool,
    has_data: bool,
    is_oplog: bool,
}

/// Writes a mongodump archive as a [`Sink`], byte for byte as mongodump would for the
/// same catalog and the same sequence of documents.
///
/// The prelude lists the namespaces in catalog order. Each namespace buffers up to
/// [`MUX_BUFFER_LEN`] bytes of whole documents, written as one run when the next
/// document would not fit, at its end, or when all buffers together exceed 128 MiB; a
/// namespace header is written only when the namespace differs from the previous run.
/// Ending a namespace writes its last run (an empty segment if it never had one) and
/// its end block. The oplog always comes last: its documents are spooled to a temporary
/// file while other namespaces are still open.
pub struct ArchiveWriter {
    out: Option<Box<dyn ArchiveOutput>>,
    path: PathBuf,
    begun: bool,
    ns: Vec<NsOut>,
    current: Option<usize>,
    buffered: usize,
    oplog: Option<usize>,
    spool: Option<BufWriter<File>>,
    oplog_end_requested: bool,
    open_others: usize,
}

impl ArchiveWriter {
    /// Writes the archive to `path` (`-` for standard output), gzipped when `gzip`.
    /// A file appears under its name only when [`Sink::finish`] succeeds.
    pub fn create(path: &Path, gzip: bool, overwrite: bool) -> Result<ArchiveWriter, SinkError> {
        let out = OutFile::create(path, overwrite)?;
        Ok(ArchiveWriter::new(out, gzip))
    }

    /// Writes the archive to `out`, gzipped when `gzip`.
    pub fn new(out: OutFile, gzip: bool) -> ArchiveWriter {
        let out: Box<dyn ArchiveOutput> = Box::new(out);
        ArchiveWriter::with_output(if gzip {
            Box::new(GzipOutput::new(out))
        } else {
            out
        })
    }

    /// Writes the (uncompressed) archive stream into `out`, which may compress it.
    pub fn with_output(out: Box<dyn ArchiveOutput>) -> ArchiveWriter {
        ArchiveWriter {
            path: out.display_path(),
            out: Some(out),
            begun: false,
            ns: Vec::new(),
            current: None,
            buffered: 0,
            oplog: None,
            spool: None,
            oplog_end_requested: false,
            open_others: 0,
        }
    }

    fn io(&self, source: io::Error) -> SinkError {
        SinkError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| SinkError::Misuse("archive written after finish".into()))?;
        out.write_all(bytes).map_err(|source| SinkError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn header_bytes(&self, ns: usize, eof: bool) -> Vec<u8> {
        let n = &self.ns[ns];
        NsHeader {
            db: n.db.clone(),
            collection: n.coll.clone(),
            eof,
            crc: if eof { n.crc.sum64() } else { 0 },
        }
        .to_bytes()
    }

    /// mongodump's `formatBody`: a header when the namespace changes, then the bytes.
    fn emit(&mut self, ns: usize, data: &[u8]) -> Result<(), SinkError> {
        if self.current != Some(ns) {
            if self.current.is_some() {
                self.put(&TERMINATOR)?;
            }
            let h = self.header_bytes(ns, false);
            self.put(&h)?;
            self.current = Some(ns);
        }
        self.put(data)
    }

    fn flush_ns(&mut self, ns: usize) -> Result<(), SinkError> {
        let data = std::mem::take(&mut self.ns[ns].pending);
        self.buffered -= data.len();
        self.emit(ns, &data)
    }

    /// mongodump's `MuxIn.Write`: buffer whole documents, hand the buffer over when the
    /// next document would not fit.
    fn push(&mut self, ns: usize, data: Vec<u8>) -> Result<(), SinkError> {
        let pending = self.ns[ns].pending.len();
        if pending + data.len() <= MUX_BUFFER_LEN {
            self.buffered += data.len();
            if pending == 0 {
                self.ns[ns].pending = data;
            } else {
                self.ns[ns].pending.extend_from_slice(&data);
            }
        } else {
            for doc in DocIter::new(&data) {
                let doc = doc.map_err(|e| SinkError::Misuse(e.to_string()))?;
                if self.ns[ns].pending.len() + doc.len() > MUX_BUFFER_LEN {
                    self.flush_ns(ns)?;
                }
                self.ns[ns].pending.extend_from_slice(doc);
                self.buffered += doc.len();
            }
        }
        while self.buffered > MAX_BUFFERED_TOTAL {
            let largest = (0..self.ns.len())
                .max_by_key(|&i| self.ns[i].pending.len())
                .unwrap_or(ns);
            self.flush_ns(largest)?;
        }
        Ok(())
    }

    /// mongodump's `MuxIn.Close` and `formatEOF`.
    fn end(&mut self, ns: usize) -> Result<(), SinkError> {
        self.flush_ns(ns)?;
        if self.current.is_some() {
            self.put(&TERMINATOR)?;
        }
        let h = self.header_bytes(ns, true);
        self.put(&h)?;
        self.put(&TERMINATOR)?;
        self.current = None;
        self.ns[ns].ended = true;
        Ok(())
    }

    fn drain_spool(&mut self, oplog: usize) -> Result<(), SinkError> {
        let Some(spool) = self.spool.take() else {
            return Ok(());
        };
        let mut file = spool.into_inner().map_err(|e| self.io(e.into_error()))?;
        file.rewind().map_err(|e| self.io(e))?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut doc = Vec::new();
        let mut batch = Vec::new();
        loop {
            match docs::read_doc(&mut r, &mut doc) {
                Ok(true) => {
                    batch.extend_from_slice(&doc);
                    if batch.len() >= CHUNK_TARGET {
                        self.push(oplog, std::mem::take(&mut batch))?;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    return Err(SinkError::Io {
                        path: self.path.clone(),
                        source: io::Error::other(format!("oplog spool file: {e}")),
                    });
                }
            }
        }
        if !batch.is_empty() {
            self.push(oplog, batch)?;
        }
        Ok(())
    }

    fn check_ns(&self, ns: usize) -> Result<(), SinkError> {
        if !self.begun {
            return Err(SinkError::Misuse("documents before begin".into()));
        }
        match self.ns.get(ns) {
            None => Err(SinkError::Misuse(format!(
                "namespace index {ns} is not in the catalog"
            ))),
            Some(n) if n.ended => Err(SinkError::Misuse(format!(
                "namespace {} used after its end",
                n.full
            ))),
            Some(_) => Ok(()),
        }
    }
}

impl Sink for ArchiveWriter {
    fn begin(&mut self, catalog: &Catalog) -> Result<(), SinkError> {
        if self.begun {
            return Err(SinkError::Misuse("begin called twice".into()));
        }
        let src = &catalog.source;
        let raw_ts = stores_raw_timeseries(src.server_version.as_deref());
        let header = ArchiveHeader {
            concurrent_collections: src
                .concurrent_collections
                .unwrap_or(DEFAULT_CONCURRENT_COLLECTIONS),
            version: FORMAT_VERSION.into(),
            server_version: src
                .server_version
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            tool_version: version_for_tool(src),
        };
        let mut prelude = MAGIC.to_vec();
        prelude.extend(header.to_bytes());
        let mut seen: HashMap<(String, String), String> = HashMap::new();
        for (i, ns) in catalog.namespaces.iter().enumerate() {
            let is_oplog = ns.kind == NsKind::Oplog;
            let (db, logical, data) = if is_oplog {
                if self.oplog.is_some() {
                    return Err(SinkError::Unsupported(
                        "a mongodump archive holds at most one oplog".into(),
                    ));
                }
                self.oplog = Some(i);
                (
                    ARCHIVE_OPLOG_DB.to_string(),
                    ARCHIVE_OPLOG_COLLECTION.to_string(),
                    ARCHIVE_OPLOG_COLLECTION.to_string(),
                )
            } else {
                let data = if raw_ts {
                    ns.collection.clone()
                } else {
                    ns.bucket_collection()
                };
                (ns.db.clone(), ns.collection.clone(), data)
            };
            for key in [(db.clone(), logical.clone()), (db.clone(), data.clone())] {
                if let Some(other) = seen.get(&key)
                    && *other != ns.full_name()
                {
                    return Err(SinkError::Unsupported(format!(
                        "{} and {other} would both be stored as {}.{} in a mongodump archive",
                        ns.full_name(),
                        key.0,
                        key.1
                    )));
                }
            }
            if seen
                .insert((db.clone(), logical.clone()), ns.full_name())
                .is_some()
            {
                return Err(SinkError::Unsupported(format!(
                    "namespace {} is listed twice in the catalog",
                    ns.full_name()
                )));
            }
            seen.insert((db.clone(), data.clone()), ns.full_name());
            let entry = PreludeEntry {
                db: db.clone(),
                collection: logical,
                metadata: if has_metadata(ns) {
                    metadata::metadata_json(ns)
                } else {
                    String::new()
                },
                size: 0,
                kind: match ns.kind {
                    NsKind::Oplog => String::new(),
                    _ if !has_metadata(ns) => String::new(),
                    k => k.as_str().to_string(),
                },
                offset: 0,
            };
            let bytes = entry.to_bytes();
            if bytes.len() > MAX_ARCHIVE_DOC_LEN {
                return Err(SinkError::Unsupported(format!(
                    "the metadata of {} take {} bytes, more than an archive document may hold",
                    ns.full_name(),
                    bytes.len()
                )));
            }
            prelude.extend(bytes);
            self.ns.push(NsOut {
                db,
                coll: data,
                full: ns.full_name(),
                crc: crc64fast::Digest::new(),
                pending: Vec::new(),
                ended: false,
                has_data: ns.has_data(),
                is_oplog,
            });
        }
        prelude.extend_from_slice(&TERMINATOR);
        self.put(&prelude)?;
        self.open_others = self.ns.iter().filter(|n| !n.is_oplog).count();
        self.begun = true;
        Ok(())
    }

    fn write_docs(&mut self, ns: usize, data: Vec<u8>, count: u64) -> Result<(), SinkError> {
        self.check_ns(ns)?;
        let n = &self.ns[ns];
        if !n.has_data {
            return Err(SinkError::Unsupported(format!(
                "{} is a view and cannot hold documents",
                n.full
            )));
        }
        let mut seen = 0u64;
        for doc in DocIter::new(&data) {
            let doc = doc.map_err(|e| SinkError::Misuse(format!("{}: {e}", n.full)))?;
            if doc.len() > MAX_ARCHIVE_DOC_LEN {
                return Err(SinkError::Unsupported(format!(
                    "{}: a document of {} bytes is larger than the {MAX_ARCHIVE_DOC_LEN} bytes mongorestore reads from an archive",
                    n.full,
                    doc.len()
                )));
            }
            seen += 1;
        }
        if seen != count {
            return Err(SinkError::Misuse(format!(
                "{}: {count} documents announced, {seen} in the data",
                n.full
            )));
        }
        if data.is_empty() {
            return Ok(());
        }
        self.ns[ns].crc.write(&data);
        if self.ns[ns].is_oplog && self.open_others > 0 {
            if self.spool.is_none() {
                let f = tempfile::tempfile().map_err(|e| self.io(e))?;
                self.spool = Some(BufWriter::with_capacity(1 << 20, f));
            }
            let path = self.path.clone();
            if let Some(s) = self.spool.as_mut() {
                s.write_all(&data)
                    .map_err(|source| SinkError::Io { path, source })?;
            }
            return Ok(());
        }
        self.push(ns, data)
    }

    fn end_namespace(&mut self, ns: usize, _status: &NsStatus) -> Result<(), SinkError> {
        self.check_ns(ns)?;
        if self.ns[ns].is_oplog {
            if self.open_others > 0 {
                if self.oplog_end_requested {
                    return Err(SinkError::Misuse("the oplog was ended twice".into()));
                }
                self.oplog_end_requested = true;
                return Ok(());
            }
            return self.end(ns);
        }
        self.end(ns)?;
        self.open_others -= 1;
        if self.open_others == 0
            && let Some(oplog) = self.oplog
        {
            self.drain_spool(oplog)?;
            if self.oplog_end_requested {
                self.end(oplog)?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, _summary: &Summary) -> Result<(), SinkError> {
        if !self.begun {
            return Err(SinkError::Misuse("finish before begin".into()));
        }
        let open: Vec<String> = self
            .ns
            .iter()
            .filter(|n| !n.ended)
            .map(|n| n.full.clone())
            .collect();
        if !open.is_empty() {
            return Err(SinkError::Misuse(format!(
                "finish with {} namespace(s) not ended: {}",
                open.len(),
                abbreviate(&open)
            )));
        }
        let out = self
            .out
            .take()
            .ok_or_else(|| SinkError::Misuse("finish called twice".into()))?;
        out.commit()
    }
}

#[cfg(test)]
mod tests;
