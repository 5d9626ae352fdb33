//! Oplog segments: runs of consecutive oplog entries stored as OXD archives, each
//! with its first and last entry and a link to the entry before it
//! (`format-spec/repository-v1.md` §5).
//!
//! [`SegmentWriter`] streams entries into frames of a hidden temporary file and
//! [`SegmentWriter::seal`] gives it its final name only when it is complete, so memory
//! stays bounded by one frame plus the frames being compressed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bson::{Bson, Document, RawDocument, Timestamp, doc};

use super::entry::show_ts;
use crate::catalog::{
    Catalog, Namespace, NsKind, NsStatus, OPLOG_COLLECTION, OPLOG_DB, OplogRange, SourceInfo,
    Summary,
};
use crate::oxd::reader::{Index, NsSource};
use crate::oxd::writer::{OxdWriter, WriteError, WriterOptions};
use crate::source::{Chunk, Source};

/// Name of the summary field holding a segment's description.
pub const SEGMENT_FIELD: &str = "segment";
/// Extension of segment objects.
pub const SEGMENT_EXT: &str = "oxd";

/// Error writing or reading a segment.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The OXD writer failed.
    #[error("{path}: {source}")]
    Write {
        /// The segment being written.
        path: PathBuf,
        /// The writer's error.
        source: WriteError,
    },
    /// An entry cannot go into the segment.
    #[error("oplog entry {at}: {why}")]
    Entry {
        /// The entry's timestamp, or where it was read.
        at: String,
        /// What is wrong.
        why: String,
    },
    /// A stored segment is not a valid segment.
    #[error("{path}: {why}")]
    Invalid {
        /// The segment.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The final name is taken.
    #[error("{0}: already exists; a segment is never overwritten")]
    Exists(PathBuf),
}

/// An entry's position in the oplog: its `ts` and its term `t` (absent on servers
/// whose entries carry none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpTime {
    /// The entry's timestamp.
    pub ts: Timestamp,
    /// The replica-set term.
    pub t: Option<i64>,
}

impl OpTime {
    /// The optime of a raw oplog entry (`None` without a `ts`).
    pub fn of(entry: &RawDocument) -> Option<OpTime> {
        let ts = entry.get_timestamp("ts").ok()?;
        let t = entry.get_i64("t").ok();
        Some(OpTime { ts, t })
    }

    /// `{ts, t}` (no `t` when absent).
    pub fn to_doc(&self) -> Document {
        let mut d = doc! {"ts": self.ts};
        if let Some(t) = self.t {
            d.insert("t", t);
        }
        d
    }

    /// Parses [`OpTime::to_doc`]'s form.
    pub fn from_doc(d: &Document) -> Result<OpTime, String> {
        let ts = d
            .get_timestamp("ts")
            .map_err(|_| "an optime without a `ts` timestamp".to_string())?;
        let t = match d.get("t") {
            None => None,
            Some(Bson::Int64(t)) => Some(*t),
            Some(Bson::Int32(t)) => Some(i64::from(*t)),
            Some(_) => return Err("an optime whose `t` is not an integer".into()),
        };
        Ok(OpTime { ts, t })
    }

    /// `seconds:increment`, with the term when there is one.
    pub fn show(&self) -> String {
        match self.t {
            Some(t) => format!("{} (term {t})", show_ts(self.ts)),
            None => show_ts(self.ts),
        }
    }
}

/// What a sealed segment says about itself (its summary's `segment` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentMeta {
    /// The first entry.
    pub first: OpTime,
    /// The last entry.
    pub last: OpTime,
    /// The last entry of the segment this one continues (`None`: it starts a chain).
    pub prev: Option<OpTime>,
    /// The number of entries.
    pub count: u64,
}

impl SegmentMeta {
    /// The summary field's document.
    pub fn to_doc(&self) -> Document {
        let mut d = doc! {"first": self.first.to_doc(), "last": self.last.to_doc()};
        if let Some(p) = self.prev {
            d.insert("prev", p.to_doc());
        }
        d.insert("count", self.count as i64);
        d
    }

    /// Reads the `segment` field of an archive's summary.
    pub fn from_summary(s: &Summary) -> Result<SegmentMeta, String> {
        let d = s
            .extra
            .get_document(SEGMENT_FIELD)
            .map_err(|_| "the summary has no `segment` document (not an oplog segment)")?;
        let part = |k: &str| -> Result<OpTime, String> {
            let sub = d
                .get_document(k)
                .map_err(|_| format!("`segment.{k}` is missing or not a document"))?;
            OpTime::from_doc(sub).map_err(|e| format!("`segment.{k}`: {e}"))
        };
        let prev = match d.get("prev") {
            None => None,
            Some(_) => Some(part("prev")?),
        };
        let count = match d.get("count") {
            Some(Bson::Int64(n)) if *n > 0 => *n as u64,
            _ => return Err("`segment.count` is missing or not a positive int64".into()),
        };
        Ok(SegmentMeta {
            first: part("first")?,
            last: part("last")?,
            prev,
            count,
        })
    }
}

/// A timestamp as it appears in object names: `SSSSSSSSSS.IIIIIIIIII`, so that the
/// byte order of names is the order of timestamps.
pub fn ts_name(ts: Timestamp) -> String {
    format!("{:010}.{:010}", ts.time, ts.increment)
}

/// Parses [`ts_name`]'s form (exactly).
pub fn parse_ts_name(s: &str) -> Option<Timestamp> {
    let (a, b) = s.split_once('.')?;
    if a.len() != 10 || b.len() != 10 || !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(Timestamp {
        time: a.parse().ok()?,
        increment: b.parse().ok()?,
    })
}

/// The file name of a segment from `first` to `last`.
pub fn segment_name(first: Timestamp, last: Timestamp) -> String {
    format!("{}_{}.{SEGMENT_EXT}", ts_name(first), ts_name(last))
}

/// Parses a segment's file name into its first and last timestamps.
pub fn parse_segment_name(name: &str) -> Option<(Timestamp, Timestamp)> {
    let stem = name.strip_suffix(&format!(".{SEGMENT_EXT}"))?;
    let (a, b) = stem.split_once('_')?;
    Some((parse_ts_name(a)?, parse_ts_name(b)?))
}

/// The catalog of every segment: one oplog namespace.
fn segment_catalog(source: &SourceInfo) -> Catalog {
    Catalog {
        source: source.clone(),
        namespaces: vec![Namespace {
            kind: NsKind::Oplog,
            ..Namespace::collection(OPLOG_DB, OPLOG_COLLECTION)
        }],
    }
}

/// A segment being written. Nothing is visible under a segment name until
/// [`SegmentWriter::seal`].
pub struct SegmentWriter {
    dir: PathBuf,
    w: OxdWriter<BufWriter<tempfile::NamedTempFile>>,
    frame: Vec<u8>,
    frame_docs: u32,
    frame_size: usize,
    first: Option<OpTime>,
    last: Option<OpTime>,
    prev: Option<OpTime>,
    count: u64,
    raw_bytes: u64,
}

impl SegmentWriter {
    /// Starts a segment in `dir` that continues the entry `prev`.
    pub fn create(
        dir: &Path,
        prev: Option<OpTime>,
        source: &SourceInfo,
        opts: WriterOptions,
    ) -> Result<SegmentWriter, SegmentError> {
        let io = |source| SegmentError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = tempfile::Builder::new()
            .prefix(".segment-")
            .permissions(crate::output::file_mode())
            .tempfile_in(dir)
            .map_err(io)?;
        let w = OxdWriter::new(
            BufWriter::with_capacity(1 << 20, tmp),
            &segment_catalog(source),
            opts,
        )
        .map_err(|source| SegmentError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            w,
            frame: Vec::new(),
            frame_docs: 0,
            frame_size: opts.frame_size,
            first: None,
            last: None,
            prev,
            count: 0,
            raw_bytes: 0,
        })
    }

    /// Adds the next entry; its `ts` must be after the previous one's (and after
    /// `prev`'s).
    pub fn push(&mut self, entry: &RawDocument) -> Result<(), SegmentError> {
        let Some(op) = OpTime::of(entry) else {
            return Err(SegmentError::Entry {
                at: format!(
                    "after {}",
                    self.last.or(self.prev).map_or("-".into(), |o| o.show())
                ),
                why: "it has no `ts` timestamp".into(),
            });
        };
        if let Some(before) = self.last.or(self.prev)
            && op.ts <= before.ts
        {
            return Err(SegmentError::Entry {
                at: show_ts(op.ts),
                why: format!(
                    "it is not after the entry before it ({}); oplog entries arrived out of order",
                    before.show()
                ),
            });
        }
        self.first.get_or_insert(op);
        self.last = Some(op);
        self.count += 1;
        let bytes = entry.as_bytes();
        self.raw_bytes += bytes.len() as u64;
        self.frame.extend_from_slice(bytes);
        self.frame_docs += 1;
        if self.frame.len() >= self.frame_size {
            self.flush_frame()?;
        }
        Ok(())
    }

    fn flush_frame(&mut self) -> Result<(), SegmentError> {
        if self.frame_docs == 0 {
            return Ok(());
        }
        let raw = std::mem::take(&mut self.frame);
        let n = std::mem::take(&mut self.frame_docs);
        self.w
            .write_frame(0, raw, n)
            .map_err(|source| SegmentError::Write {
                path: self.dir.clone(),
                source,
            })
    }

    /// Entries so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Raw bytes of the entries so far.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// The first entry, once there is one.
    pub fn first(&self) -> Option<OpTime> {
        self.first
    }

    /// The last entry, once there is one.
    pub fn last(&self) -> Option<OpTime> {
        self.last
    }

    /// Finishes the archive, syncs it and gives it its final name. A segment without
    /// entries is discarded (`Ok(None)`).
    pub fn seal(mut self) -> Result<Option<(PathBuf, SegmentMeta)>, SegmentError> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return Ok(None);
        };
        self.flush_frame()?;
        let meta = SegmentMeta {
            first,
            last,
            prev: self.prev,
            count: self.count,
        };
        let dest = self.dir.join(segment_name(first.ts, last.ts));
        let werr = |source| SegmentError::Write {
            path: dest.clone(),
            source,
        };
        self.w.end_namespace(0, &NsStatus::Complete).map_err(werr)?;
        let summary = Summary {
            completed_at: Some(bson::DateTime::now()),
            oplog: Some(OplogRange {
                start: first.ts,
                end: last.ts,
            }),
            warnings: Vec::new(),
            extra: doc! {SEGMENT_FIELD: meta.to_doc()},
        };
        let (out, _) = self.w.finish(&summary).map_err(werr)?;
        let io = |source| SegmentError::Io {
            path: dest.clone(),
            source,
        };
        let mut tmp = out.into_inner().map_err(|e| io(e.into_error()))?;
        tmp.flush().map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        match tmp.persist_noclobber(&dest) {
            Ok(_) => {}
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(SegmentError::Exists(dest));
            }
            Err(e) => return Err(io(e.error)),
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(Some((dest, meta)))
    }
}

/// Reads a stored segment's description from its footer (the entries are not read).
pub fn read_meta(path: &Path) -> Result<(SegmentMeta, Index), SegmentError> {
    let invalid = |why: String| SegmentError::Invalid {
        path: path.to_path_buf(),
        why,
    };
    let mut f = File::open(path).map_err(|source| SegmentError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let index =
        Index::open(&mut f).map_err(|e| invalid(format!("not a complete OXD archive: {e}")))?;
    let meta = SegmentMeta::from_summary(&index.footer.summary).map_err(invalid)?;
    Ok((meta, index))
}

/// Reads every entry of a segment and checks it against its description
/// (`format-spec/repository-v1.md` §5.2, points 2 and 3). Returns every problem found.
pub fn check_entries(path: &Path, meta: &SegmentMeta, index: &Index) -> Vec<String> {
    let mut problems = Vec::new();
    let ns = match index.catalog.namespaces.as_slice() {
        [n] if n.kind == NsKind::Oplog => 0,
        _ => {
            problems.push("a segment must hold exactly one namespace, of type oplog".into());
            return problems;
        }
    };
    if index.footer.namespaces[ns].flags != 0 {
        problems.push("its oplog namespace is marked PARTIAL".into());
    }
    let mut count = 0u64;
    let mut prev: Option<OpTime> = meta.prev;
    let mut first = None;
    let mut last = None;
    let visited = visit_optimes(path, index, ns, &mut |op| {
        let Some(op) = op else {
            return Err(format!("entry {count} has no `ts`"));
        };
        if let Some(p) = prev
            && op.ts <= p.ts
        {
            problems.push(format!(
                "entry {} is not after the one before it ({})",
                op.show(),
                p.show()
            ));
        }
        first.get_or_insert(op);
        last = Some(op);
        prev = Some(op);
        count += 1;
        Ok(())
    });
    if let Err(why) = visited {
        problems.push(why);
        return problems;
    }
    if count != meta.count {
        problems.push(format!("it holds {count} entries but says {}", meta.count));
    }
    if first != Some(meta.first) {
        problems.push(format!(
            "its first entry is {} but it says {}",
            first.map_or("(none)".into(), |o| o.show()),
            meta.first.show()
        ));
    }
    if last != Some(meta.last) {
        problems.push(format!(
            "its last entry is {} but it says {}",
            last.map_or("(none)".into(), |o| o.show()),
            meta.last.show()
        ));
    }
    problems
}

/// Calls `f` with the optime of every entry of namespace `ns`, in order (`None` for an
/// entry without a `ts`); stops at the first error, of the archive or of `f`.
fn visit_optimes(
    path: &Path,
    index: &Index,
    ns: usize,
    f: &mut dyn FnMut(Option<OpTime>) -> Result<(), String>,
) -> Result<(), String> {
    let mut src = NsSource::new(path, index, ns);
    loop {
        match src.next_chunk() {
            Ok(Some(Chunk::Docs { data, .. })) => {
                for d in crate::docs::DocIter::new(&data) {
                    let d = d.map_err(|_| "a document does not frame".to_string())?;
                    f(RawDocument::from_bytes(d).ok().and_then(OpTime::of))?;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The optimes of every entry of a stored segment, in order (its entries are read,
/// not decoded).
pub fn read_optimes(path: &Path) -> Result<Vec<OpTime>, SegmentError> {
    let invalid = |why: String| SegmentError::Invalid {
        path: path.to_path_buf(),
        why,
    };
    let (meta, index) = read_meta(path)?;
    let mut out = Vec::with_capacity(usize::try_from(meta.count).unwrap_or(0));
    visit_optimes(path, &index, 0, &mut |op| {
        out.push(op.ok_or_else(|| format!("entry {} has no `ts`", out.len()))?);
        Ok(())
    })
    .map_err(invalid)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    fn ts(time: u32, increment: u32) -> Timestamp {
        Timestamp { time, increment }
    }

    #[test]
    fn names_sort_as_timestamps() {
        let a = segment_name(ts(9, 20), ts(10, 1));
        let b = segment_name(ts(10, 2), ts(100, 1));
        assert!(a < b);
        assert_eq!(parse_segment_name(&a), Some((ts(9, 20), ts(10, 1))));
        assert_eq!(parse_segment_name("x_y.oxd"), None);
        assert_eq!(parse_ts_name("1.2"), None);
    }

    #[test]
    fn a_sealed_segment_describes_itself() {
        let dir = tempfile::tempdir().expect("tmp");
        let prev = OpTime {
            ts: ts(5, 1),
            t: Some(1),
        };
        let mut w = SegmentWriter::create(
            dir.path(),
            Some(prev),
            &SourceInfo::default(),
            WriterOptions {
                frame_size: 64,
                ..WriterOptions::default()
            },
        )
        .expect("create");
        for i in 1..=20u32 {
            let e = rawdoc! {"ts": ts(6, i), "t": 1_i64, "op": "i", "ns": "a.b", "o": {"_id": i as i32}};
            w.push(&e).expect("push");
        }
        let late = rawdoc! {"ts": ts(6, 3), "op": "n"};
        assert!(w.push(&late).is_err(), "an entry out of order is refused");
        let (path, meta) = w.seal().expect("seal").expect("not empty");
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some(segment_name(ts(6, 1), ts(6, 20)).as_str())
        );
        let (read, index) = read_meta(&path).expect("meta");
        assert_eq!(read, meta);
        assert_eq!(read.prev, Some(prev));
        assert_eq!(read.count, 20);
        assert!(check_entries(&path, &read, &index).is_empty());
        let ops = read_optimes(&path).expect("optimes");
        assert_eq!((ops.len(), ops[0], ops[19]), (20, meta.first, meta.last));
        // Only the sealed object is left in the directory.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn an_empty_segment_is_discarded() {
        let dir = tempfile::tempdir().expect("tmp");
        let w = SegmentWriter::create(
            dir.path(),
            None,
            &SourceInfo::default(),
            WriterOptions::default(),
        )
        .expect("create");
        assert!(w.seal().expect("seal").is_none());
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }
}
