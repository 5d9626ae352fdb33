//! The streaming OXD writer (spec §10, write order).
//!
//! [`OxdWriter`] is the single owner of the output. Frames are compressed on the
//! rayon pool while the writer keeps them in submission order ([`crate::pool::Ordered`]);
//! frame numbers are assigned at submission, so each namespace's frames are written
//! in the order they were given. The writer never seeks: offsets are counted as
//! bytes go out, and [`OxdWriter::finish`] appends the footer and trailer. An
//! archive whose writer did not finish has no trailer, which every reader reports
//! as incomplete.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;

use super::footer::{Footer, FrameEntry, NsEntry};
use super::frame::{self, EncodedFrame, FrameBuilder, Level};
use super::nsend::{self, NsDigest};
use super::ranges::{self, RangeEnd, RangePlan};
use super::record::{FLAG_PARTIAL, RecordHeader, RecordKind};
use super::trailer::Trailer;
use super::{DEFAULT_FRAME_SIZE, DEFAULT_ZSTD_LEVEL, header::FileHeader, manifest};
use crate::catalog::{Catalog, NsStatus, Summary};
use crate::docs::DocIter;
use crate::output::OutFile;
use crate::pool::{self, Ordered};
use crate::sink::{Sink, SinkError};

/// Largest frame target accepted, so a frame plus one maximal document stays under
/// the format's 64 MiB frame limit.
pub const MAX_FRAME_TARGET: usize = 32 * 1024 * 1024;

/// How to write an archive.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// zstd level, or `None` to store frames uncompressed.
    pub level: Level,
    /// Target raw size of a frame.
    pub frame_size: usize,
    /// Frames allowed in flight (being compressed or waiting to be written).
    pub in_flight: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            level: Some(DEFAULT_ZSTD_LEVEL),
            frame_size: DEFAULT_FRAME_SIZE,
            in_flight: pool::default_capacity(),
        }
    }
}

/// Error of the writer.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writing the output failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The writer was used against the write-order rules (a caller bug).
    #[error("{0}")]
    Misuse(String),
}

enum Pending {
    Frame(EncodedFrame),
    End {
        ns: u32,
        flags: u16,
    },
    /// An ancillary record, header and payload ready to be written.
    Ancillary(Vec<u8>),
}

#[derive(Default)]
struct NsState {
    next_seq: u32,
    ended: bool,
    digest: NsDigest,
    entry: Option<NsEntry>,
}

/// Statistics of a finished archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Bytes written, trailer included.
    pub archive_len: u64,
    /// Documents written.
    pub documents: u64,
    /// Raw BSON bytes written.
    pub raw_bytes: u64,
    /// FRAME records written.
    pub frames: u64,
}

/// Writes an OXD archive to any byte sink, in order, without seeking.
pub struct OxdWriter<W: Write> {
    out: W,
    offset: u64,
    level: Level,
    pending: Ordered<Pending>,
    ns: Vec<NsState>,
    frames: Vec<FrameEntry>,
    names: Vec<String>,
}

impl<W: Write> OxdWriter<W> {
    /// Writes the file header and the manifest for `catalog`.
    pub fn new(mut out: W, catalog: &Catalog, opts: WriterOptions) -> Result<Self, WriteError> {
        if u32::try_from(catalog.namespaces.len()).is_err() {
            return Err(WriteError::Misuse("too many namespaces".into()));
        }
        let header = FileHeader::default().encode();
        out.write_all(&header)?;
        let mut w = OxdWriter {
            out,
            offset: header.len() as u64,
            level: opts.level,
            pending: Ordered::new(opts.in_flight),
            ns: catalog
                .namespaces
                .iter()
                .map(|_| NsState::default())
                .collect(),
            frames: Vec::new(),
            names: catalog.namespaces.iter().map(|n| n.full_name()).collect(),
        };
        let m = manifest::encode(catalog);
        w.write_meta(RecordKind::Manifest, m)?;
        Ok(w)
    }

    fn write_meta(&mut self, kind: RecordKind, raw: Vec<u8>) -> Result<u64, WriteError> {
        if raw.len() > super::MAX_META_RAW as usize {
            return Err(WriteError::Misuse(format!(
                "{} of {} bytes exceeds the format's 256 MiB limit",
                kind.name(),
                raw.len()
            )));
        }
        let raw_len = raw.len() as u32;
        // Metadata records follow the frames' setting: compressed unless frames are stored raw.
        let stored = frame::store(raw, self.level.map(|_| DEFAULT_ZSTD_LEVEL));
        let mut h = RecordHeader {
            codec: stored.codec,
            raw_len,
            ..RecordHeader::new(kind)
        };
        let hb = h.seal(&stored.bytes);
        let at = self.offset;
        self.put(&hb)?;
        self.put(&stored.bytes)?;
        Ok(at)
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.offset += b.len() as u64;
        Ok(())
    }

    fn check_open(&self, ns: u32) -> Result<(), WriteError> {
        match self.ns.get(ns as usize) {
            None => Err(WriteError::Misuse(format!(
                "namespace id {ns} is not in the manifest"
            ))),
            Some(s) if s.ended => Err(WriteError::Misuse(format!(
                "namespace {} was already ended",
                self.names[ns as usize]
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Submits one frame: `raw` is `doc_count` whole documents of namespace `ns`.
    /// Compression runs in parallel; the frame is written in submission order.
    pub fn write_frame(&mut self, ns: u32, raw: Vec<u8>, doc_count: u32) -> Result<(), WriteError> {
        self.check_open(ns)?;
        if raw.len() > super::MAX_FRAME_RAW as usize || doc_count == 0 {
            return Err(WriteError::Misuse(format!(
                "frame of {} bytes with {doc_count} documents is outside the format's limits",
                raw.len()
            )));
        }
        let st = &mut self.ns[ns as usize];
        let seq = st.next_seq;
        st.next_seq = seq
            .checked_add(1)
            .ok_or_else(|| WriteError::Misuse("more than 2^32 frames in one namespace".into()))?;
        while self.pending.is_full() {
            self.drain_one()?;
        }
        let level = self.level;
        self.pending
            .push(move || Pending::Frame(frame::encode(ns, seq, raw, doc_count, level)));
        Ok(())
    }

    /// Ends namespace `ns`: its NS_END record follows its last submitted frame.
    pub fn end_namespace(&mut self, ns: u32, status: &NsStatus) -> Result<(), WriteError> {
        self.check_open(ns)?;
        self.ns[ns as usize].ended = true;
        let flags = match status {
            // Written anew from the documents themselves: nothing to doubt.
            NsStatus::Complete | NsStatus::Unchecked(_) => 0,
            NsStatus::Partial(_) => FLAG_PARTIAL,
        };
        while self.pending.is_full() {
            self.drain_one()?;
        }
        self.pending.push_ready(Pending::End { ns, flags });
        Ok(())
    }

    /// The frame number the next frame of `ns` gets.
    pub fn next_seq(&self, ns: u32) -> u32 {
        self.ns.get(ns as usize).map_or(0, |s| s.next_seq)
    }

    /// Submits an ancillary record (spec §4.2) of `kind` (`0x80`–`0xFF`), written
    /// after everything submitted before it, its payload stored as it is (codec 0).
    pub fn write_ancillary(
        &mut self,
        kind: u8,
        ns: u32,
        seq: u32,
        raw: Vec<u8>,
    ) -> Result<(), WriteError> {
        if kind < 0x80 || raw.len() > super::MAX_META_RAW as usize {
            return Err(WriteError::Misuse(format!(
                "ancillary record of kind {kind:#04x} and {} bytes is outside the format's limits",
                raw.len()
            )));
        }
        let mut h = RecordHeader {
            ns_id: ns,
            seq,
            raw_len: raw.len() as u32,
            ..RecordHeader::new(RecordKind::Ancillary(kind))
        };
        let mut rec = h.seal(&raw).to_vec();
        rec.extend_from_slice(&raw);
        while self.pending.is_full() {
            self.drain_one()?;
        }
        self.pending.push_ready(Pending::Ancillary(rec));
        Ok(())
    }

    /// Writes out everything submitted so far and flushes the output.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        self.out.flush()?;
        Ok(())
    }

    /// Stops without finishing: everything submitted is written out (the output ends
    /// at a record boundary, with no footer: an incomplete archive) and the output is
    /// returned.
    pub fn suspend(mut self) -> Result<W, WriteError> {
        self.flush()?;
        Ok(self.out)
    }

    fn drain_one(&mut self) -> Result<(), WriteError> {
        match self.pending.pop() {
            None => Ok(()),
            Some(Pending::Ancillary(rec)) => {
                self.put(&rec)?;
                Ok(())
            }
            Some(Pending::Frame(f)) => {
                let at = self.offset;
                let h = f.header;
                self.put(&h.encode())?;
                self.put(&f.stored.bytes)?;
                self.ns[h.ns_id as usize].digest.add_digested(
                    f.raw_crc,
                    h.raw_len as u64,
                    h.doc_count as u64,
                );
                self.frames.push(FrameEntry {
                    offset: at,
                    ns_id: h.ns_id,
                    seq: h.seq,
                    doc_count: h.doc_count,
                    raw_len: h.raw_len,
                });
                Ok(())
            }
            Some(Pending::End { ns, flags }) => {
                let at = self.offset;
                let end = self.ns[ns as usize].digest.totals();
                let payload = end.encode();
                let mut h = RecordHeader {
                    flags,
                    ns_id: ns,
                    raw_len: nsend::LEN as u32,
                    ..RecordHeader::new(RecordKind::NsEnd)
                };
                let hb = h.seal(&payload);
                self.put(&hb)?;
                self.put(&payload)?;
                self.ns[ns as usize].entry = Some(NsEntry {
                    ns_id: ns,
                    flags,
                    end_offset: at,
                    end,
                });
                Ok(())
            }
        }
    }

    /// Writes everything still in flight, the footer and the trailer, and returns
    /// the output. Every namespace must have been ended.
    pub fn finish(mut self, summary: &Summary) -> Result<(W, WriteStats), WriteError> {
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        if let Some(i) = self.ns.iter().position(|s| !s.ended) {
            return Err(WriteError::Misuse(format!(
                "namespace {} was never ended",
                self.names[i]
            )));
        }
        let mut frames = std::mem::take(&mut self.frames);
        frames.sort_by_key(|f| (f.ns_id, f.seq));
        let namespaces: Vec<NsEntry> = self
            .ns
            .iter()
            .map(|s| s.entry.expect("ended namespaces have an entry"))
            .collect();
        let stats = WriteStats {
            archive_len: 0,
            documents: namespaces.iter().map(|n| n.end.doc_count).sum(),
            raw_bytes: namespaces.iter().map(|n| n.end.raw_bytes).sum(),
            frames: frames.len() as u64,
        };
        let footer = Footer {
            namespaces,
            frames,
            summary: Summary {
                completed_at: Some(summary.completed_at.unwrap_or_else(bson::DateTime::now)),
                ..summary.clone()
            },
        };
        let footer_offset = self.write_meta(RecordKind::Footer, footer.encode())?;
        let archive_len = self.offset + super::trailer::LEN as u64;
        let t = Trailer {
            footer_offset,
            archive_len,
        };
        self.put(&t.encode())?;
        self.out.flush()?;
        Ok((
            self.out,
            WriteStats {
                archive_len,
                ..stats
            },
        ))
    }
}

/// An OXD archive as a [`Sink`]: re-frames incoming document runs to the frame size
/// and commits the file only when finished.
pub struct OxdSink {
    writer: Option<OxdWriter<OutFile>>,
    out: Option<OutFile>,
    path: PathBuf,
    opts: WriterOptions,
    builders: Vec<FrameBuilder>,
    /// `_id` ranges being written, by (namespace, range): their own frames (a frame
    /// never mixes ranges), and what the range's RANGE_END will list.
    ranges: HashMap<(usize, u32), (FrameBuilder, RangeEnd)>,
}

impl OxdSink {
    /// An archive written to `out` (a file committed on finish, or standard output).
    pub fn new(out: OutFile, mut opts: WriterOptions) -> OxdSink {
        opts.frame_size = opts.frame_size.clamp(64 * 1024, MAX_FRAME_TARGET);
        OxdSink {
            path: out.display_path(),
            writer: None,
            out: Some(out),
            opts,
            builders: Vec::new(),
            ranges: HashMap::new(),
        }
    }

    fn err(&self, e: WriteError) -> SinkError {
        match e {
            WriteError::Io(source) => SinkError::Io {
                path: self.path.clone(),
                source,
            },
            WriteError::Misuse(m) => SinkError::Misuse(m),
        }
    }

    fn writer(&mut self) -> Result<&mut OxdWriter<OutFile>, SinkError> {
        self.writer
            .as_mut()
            .ok_or_else(|| SinkError::Misuse("begin was not called".into()))
    }

    fn emit(&mut self, ns: usize, raw: Vec<u8>, count: u32) -> Result<(), SinkError> {
        let r = self.writer()?.write_frame(ns as u32, raw, count);
        r.map_err(|e| self.err(e))
    }

    /// Emits a frame of range `range` of `ns` and notes it for the range's end.
    fn emit_range(
        &mut self,
        ns: usize,
        range: u32,
        raw: Vec<u8>,
        count: u32,
    ) -> Result<(), SinkError> {
        let seq = self.writer()?.next_seq(ns as u32);
        let len = raw.len() as u64;
        self.emit(ns, raw, count)?;
        let (_, end) = self
            .ranges
            .entry((ns, range))
            .or_insert_with(|| (FrameBuilder::new(self.opts.frame_size), RangeEnd::default()));
        end.frames.push(seq);
        end.docs += count as u64;
        end.bytes += len;
        Ok(())
    }

    /// Cuts a run of documents into frames with `b`: a run already about frame-sized
    /// goes out as it is, without a copy.
    fn cut(
        b: &mut FrameBuilder,
        target: usize,
        data: Vec<u8>,
        count: u64,
    ) -> Result<Vec<(Vec<u8>, u32)>, SinkError> {
        if b.is_empty() && data.len() >= target / 2 && data.len() <= target * 2 {
            let count = u32::try_from(count)
                .map_err(|_| SinkError::Misuse("too many documents in one run".into()))?;
            return Ok(vec![(data, count)]);
        }
        let mut full = Vec::new();
        for d in DocIter::new(&data) {
            let d = d.map_err(|e| {
                SinkError::Misuse(format!("documents given to the writer do not chain: {e}"))
            })?;
            if let Some(f) = b.push(d) {
                full.push(f);
            }
        }
        Ok(full)
    }
}

impl Sink for OxdSink {
    fn begin(&mut self, catalog: &Catalog) -> Result<(), SinkError> {
        let out = self
            .out
            .take()
            .ok_or_else(|| SinkError::Misuse("begin called twice".into()))?;
        let w = OxdWriter::new(out, catalog, self.opts).map_err(|e| self.err(e))?;
        self.writer = Some(w);
        self.builders = catalog
            .namespaces
            .iter()
            .map(|_| FrameBuilder::new(self.opts.frame_size))
            .collect();
        Ok(())
    }

    fn write_docs(&mut self, ns: usize, data: Vec<u8>, count: u64) -> Result<(), SinkError> {
        let target = self.opts.frame_size;
        let b = self
            .builders
            .get_mut(ns)
            .ok_or_else(|| SinkError::Misuse(format!("namespace id {ns} out of range")))?;
        for (raw, n) in Self::cut(b, target, data, count)? {
            self.emit(ns, raw, n)?;
        }
        Ok(())
    }

    fn begin_ranges(&mut self, ns: usize, plan: &RangePlan) -> Result<(), SinkError> {
        let r = self
            .writer()?
            .write_ancillary(ranges::KIND_RANGES, ns as u32, 0, plan.encode());
        r.map_err(|e| self.err(e))
    }

    fn write_range_docs(
        &mut self,
        ns: usize,
        range: u32,
        data: Vec<u8>,
        count: u64,
    ) -> Result<(), SinkError> {
        let target = self.opts.frame_size;
        let (b, _) = self
            .ranges
            .entry((ns, range))
            .or_insert_with(|| (FrameBuilder::new(target), RangeEnd::default()));
        for (raw, n) in Self::cut(b, target, data, count)? {
            self.emit_range(ns, range, raw, n)?;
        }
        Ok(())
    }

    fn end_range(&mut self, ns: usize, range: u32) -> Result<(), SinkError> {
        let tail = self
            .ranges
            .get_mut(&(ns, range))
            .and_then(|(b, _)| b.take());
        if let Some((raw, n)) = tail {
            self.emit_range(ns, range, raw, n)?;
        }
        let end = self
            .ranges
            .remove(&(ns, range))
            .map(|(_, e)| e)
            .unwrap_or_default();
        let r =
            self.writer()?
                .write_ancillary(ranges::KIND_RANGE_END, ns as u32, range, end.encode());
        r.map_err(|e| self.err(e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let r = self.writer()?.flush();
        r.map_err(|e| self.err(e))
    }

    fn suspend(mut self: Box<Self>) -> Result<Option<PathBuf>, SinkError> {
        let Some(w) = self.writer.take() else {
            return Ok(None);
        };
        let out = w.suspend().map_err(|e| self.err(e))?;
        Ok(out.keep_partial()?)
    }

    fn end_namespace(&mut self, ns: usize, status: &NsStatus) -> Result<(), SinkError> {
        if let Some((raw, n)) = self.builders.get_mut(ns).and_then(|b| b.take()) {
            self.emit(ns, raw, n)?;
        }
        // Ranges left open (their reads did not finish): their documents still count.
        let mut open: Vec<u32> = self
            .ranges
            .keys()
            .filter(|k| k.0 == ns)
            .map(|k| k.1)
            .collect();
        open.sort_unstable();
        for range in open {
            if let Some((mut b, _)) = self.ranges.remove(&(ns, range))
                && let Some((raw, n)) = b.take()
            {
                self.emit(ns, raw, n)?;
            }
        }
        let r = self.writer()?.end_namespace(ns as u32, status);
        r.map_err(|e| self.err(e))
    }

    fn finish(mut self: Box<Self>, summary: &Summary) -> Result<(), SinkError> {
        let w = self
            .writer
            .take()
            .ok_or_else(|| SinkError::Misuse("begin was not called".into()))?;
        let (out, _) = w.finish(summary).map_err(|e| self.err(e))?;
        out.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Namespace;
    use crate::oxd::ranges::RangeRecord;
    use crate::oxd::reader::OxdSource;
    use crate::source::{Chunk, Source};

    fn docs(from: i64, n: i64) -> Vec<u8> {
        (from..from + n)
            .flat_map(|i| bson::serialize_to_vec(&bson::doc! {"_id": i}).expect("doc"))
            .collect()
    }

    #[test]
    fn ranges_get_frames_of_their_own_and_records_that_list_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("r.oxd");
        let catalog = Catalog {
            source: Default::default(),
            namespaces: vec![Namespace::collection("db", "c")],
        };
        let opts = WriterOptions {
            level: None,
            frame_size: 64 * 1024,
            in_flight: 4,
        };
        let mut sink: Box<dyn Sink> = Box::new(OxdSink::new(
            OutFile::create(&path, false).expect("create"),
            opts,
        ));
        let plan = RangePlan {
            filter: true,
            points: vec![bson::Bson::Int64(100)],
        };
        sink.begin(&catalog).expect("begin");
        sink.begin_ranges(0, &plan).expect("plan");
        // The two ranges' documents arrive interleaved; each range's frames hold only
        // its own.
        sink.write_range_docs(0, 0, docs(0, 3), 3).expect("docs");
        sink.write_range_docs(0, 1, docs(100, 2), 2).expect("docs");
        sink.write_range_docs(0, 0, docs(3, 2), 2).expect("docs");
        sink.end_range(0, 0).expect("end range");
        sink.write_range_docs(0, 1, docs(102, 1), 1).expect("docs");
        sink.end_range(0, 1).expect("end range");
        sink.end_namespace(0, &NsStatus::Complete).expect("end");
        sink.finish(&Summary::default()).expect("finish");

        let mut s = OxdSource::open(&path).expect("open");
        let mut frames = Vec::new();
        while let Some(c) = s.next_chunk().expect("read") {
            if let Chunk::Docs { data, count, .. } = c {
                frames.push((data, count));
            }
        }
        assert_eq!(frames, vec![(docs(0, 5), 5), (docs(100, 3), 3)]);
        let len = |a: i64, n: i64| docs(a, n).len() as u64;
        assert_eq!(
            s.range_records(),
            &[
                RangeRecord::Plan { ns: 0, plan },
                RangeRecord::End {
                    ns: 0,
                    range: 0,
                    end: RangeEnd {
                        frames: vec![0],
                        docs: 5,
                        bytes: len(0, 5)
                    }
                },
                RangeRecord::End {
                    ns: 0,
                    range: 1,
                    end: RangeEnd {
                        frames: vec![1],
                        docs: 3,
                        bytes: len(100, 3)
                    }
                },
            ]
        );
    }

    #[test]
    fn a_suspended_archive_ends_at_a_record_boundary_under_its_partial_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.oxd");
        let catalog = Catalog {
            source: Default::default(),
            namespaces: vec![Namespace::collection("db", "c")],
        };
        let mut sink: Box<dyn Sink> = Box::new(OxdSink::new(
            OutFile::create(&path, false).expect("create"),
            WriterOptions::default(),
        ));
        sink.begin(&catalog).expect("begin");
        sink.write_docs(0, docs(0, 10), 10).expect("docs");
        sink.end_namespace(0, &NsStatus::Complete).expect("end");
        let kept = sink.suspend().expect("suspend").expect("a file is kept");
        assert!(!path.exists());
        assert!(
            crate::output::is_partial_output(&kept),
            "{}",
            kept.display()
        );
        let mut s = OxdSource::open(&kept).expect("open");
        assert!(matches!(
            s.next_chunk(),
            Ok(Some(Chunk::Docs { count: 10, .. }))
        ));
        assert!(matches!(s.next_chunk(), Ok(Some(Chunk::End { .. }))));
        // No footer: incomplete, and said so.
        let e = s.next_chunk().expect_err("incomplete");
        assert!(e.to_string().contains("without its footer"), "{e}");
    }
}
