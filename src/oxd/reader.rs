//! Reading OXD archives: in order from any stream ([`RecordReader`], [`OxdSource`]),
//! or by jumping through the footer index when the input seeks ([`Index`]).
//!
//! Nothing is allocated from a length field before the record header carrying it
//! has passed its checksum and the spec's limits. Frame payloads are checked and
//! decompressed on the rayon pool while results are consumed in archive order.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::footer::{Footer, FrameEntry};
use super::frame;
use super::header::{self, FileHeader};
use super::nsend::{self, NsDigest, NsEnd};
use super::ranges::{self, RangeRecord};
use super::record::{self, RecordHeader, RecordKind};
use super::trailer::{self, Trailer};
use super::{Error, ErrorKind, manifest};
use crate::catalog::{Catalog, NsStatus, Summary};
use crate::pool::{self, Ordered};
use crate::source::{Chunk, Source, SourceError};

/// One record as read: where it starts, its header, its stored payload.
#[derive(Debug)]
pub struct Record {
    /// Archive offset of the record header.
    pub offset: u64,
    /// The validated header.
    pub header: RecordHeader,
    /// The stored payload (`stored_len` bytes), not yet checked against `payload_crc`.
    pub payload: Vec<u8>,
}

impl Record {
    /// Checks the payload checksum.
    pub fn check_crc(&self) -> Result<(), Error> {
        let computed = self.header.compute_payload_crc(&self.payload);
        if computed != self.header.payload_crc {
            return Err(Error::at(
                self.offset,
                ErrorKind::PayloadChecksum {
                    what: self.header.describe(),
                    stored: self.header.payload_crc,
                    computed,
                },
            ));
        }
        Ok(())
    }

    /// Checks the checksum and decodes the payload to its raw bytes.
    pub fn into_raw(self) -> Result<Vec<u8>, Error> {
        self.check_crc()?;
        let off = self.offset;
        frame::decode_payload(&self.header, self.payload).map_err(|k| Error::at(off, k))
    }
}

/// What [`RecordReader::next_record`] found.
#[derive(Debug)]
pub enum Next {
    /// A record with a valid header.
    Record(Record),
    /// The input ended exactly at a record boundary.
    Eof,
}

/// Sequential reader of an archive's structures, tracking byte offsets.
pub struct RecordReader<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    offset: u64,
    eof: bool,
}

const BUF: usize = 256 * 1024;

impl<R: Read> RecordReader<R> {
    /// Reads from `r`, whose first byte is archive offset 0.
    pub fn new(r: R) -> Self {
        RecordReader {
            r,
            buf: Vec::new(),
            pos: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Archive offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Makes at least `n` bytes available if the input has them; returns how many are.
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        while self.buf.len() - self.pos < n && !self.eof {
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let have = self.buf.len();
            let want = (n - have).max(BUF);
            // Appends into spare capacity: nothing is zeroed first.
            let got = (&mut self.r).take(want as u64).read_to_end(&mut self.buf)?;
            if got < want {
                self.eof = true;
            }
        }
        Ok(self.buf.len() - self.pos)
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    fn io(&self, e: io::Error) -> Error {
        Error::at(self.offset, ErrorKind::Io(e))
    }

    /// Whether the input is exhausted.
    pub fn at_eof(&mut self) -> Result<bool, Error> {
        Ok(self.fill(1).map_err(|e| self.io(e))? == 0)
    }

    /// Reads and validates the file header.
    pub fn read_file_header(&mut self) -> Result<FileHeader, Error> {
        let got = self.fill(header::LEN).map_err(|e| self.io(e))?;
        if got < header::LEN {
            if got >= 8 && self.buf[self.pos..self.pos + 8] != header::MAGIC {
                return Err(Error::at(
                    0,
                    ErrorKind::BadMagic {
                        found: self.buf[self.pos..self.pos + 8].to_vec(),
                    },
                ));
            }
            return Err(Error::at(
                0,
                ErrorKind::Truncated {
                    structure: "file header",
                    needed: header::LEN as u64,
                    available: got as u64,
                },
            ));
        }
        let b: [u8; header::LEN] = self.buf[self.pos..self.pos + header::LEN]
            .try_into()
            .expect("length checked");
        let h = FileHeader::decode(&b)?;
        self.consume(header::LEN);
        Ok(h)
    }

    /// Reads the next record. On a header error nothing is consumed, so the caller
    /// may [`resync`](Self::resync); on a truncated payload the input is exhausted.
    pub fn next_record(&mut self) -> Result<Next, Error> {
        let got = self.fill(record::LEN).map_err(|e| self.io(e))?;
        if got == 0 {
            return Ok(Next::Eof);
        }
        if got < record::LEN {
            return Err(Error::at(
                self.offset,
                ErrorKind::Truncated {
                    structure: "record header",
                    needed: record::LEN as u64,
                    available: got as u64,
                },
            ));
        }
        let b: [u8; record::LEN] = self.buf[self.pos..self.pos + record::LEN]
            .try_into()
            .expect("length checked");
        let offset = self.offset;
        let header = RecordHeader::decode(&b, offset)?;
        let len = header.stored_len as usize;
        // The payload goes straight into its own buffer: what is already buffered is
        // copied, the rest read directly, so large payloads are never shuffled around.
        // Capacity grows with the bytes that actually arrive (a header may claim
        // up to the format's limit on a stream that ends early).
        let mut payload = Vec::with_capacity(len.min(8 << 20));
        let buffered = (self.buf.len() - self.pos - record::LEN).min(len);
        let start = self.pos + record::LEN;
        payload.extend_from_slice(&self.buf[start..start + buffered]);
        self.consume(record::LEN + buffered);
        if buffered < len {
            let want = (len - buffered) as u64;
            let got = (&mut self.r)
                .take(want)
                .read_to_end(&mut payload)
                .map_err(|e| self.io(e))?;
            self.offset += got as u64;
            if (got as u64) < want {
                self.eof = true;
                return Err(Error::at(
                    offset,
                    ErrorKind::TruncatedRecord {
                        what: header.describe(),
                        needed: (record::LEN + len) as u64,
                        available: (record::LEN + payload.len()) as u64,
                    },
                ));
            }
        }
        Ok(Next::Record(Record {
            offset,
            header,
            payload,
        }))
    }

    /// Skips forward to the next byte position holding a record header that passes
    /// its checksum, starting one byte after the current position. Returns the new
    /// offset, or `None` when the input ends first.
    pub fn resync(&mut self) -> Result<Option<u64>, Error> {
        if self.fill(1).map_err(|e| self.io(e))? > 0 {
            self.consume(1);
        }
        loop {
            let avail = self.fill(record::LEN).map_err(|e| self.io(e))?;
            if avail < record::LEN {
                self.consume(avail);
                return Ok(None);
            }
            let window = &self.buf[self.pos..];
            match window.windows(4).position(|w| w == record::SYNC) {
                Some(i) => {
                    self.consume(i);
                    if self.fill(record::LEN).map_err(|e| self.io(e))? < record::LEN {
                        let left = self.buf.len() - self.pos;
                        self.consume(left);
                        return Ok(None);
                    }
                    let b: [u8; record::LEN] = self.buf[self.pos..self.pos + record::LEN]
                        .try_into()
                        .expect("length checked");
                    if RecordHeader::decode(&b, self.offset).is_ok() {
                        return Ok(Some(self.offset));
                    }
                    self.consume(1);
                }
                None => {
                    // Keep the last 3 bytes: a sync may straddle the refill.
                    let skip = window.len().saturating_sub(3);
                    self.consume(skip);
                }
            }
        }
    }

    /// Reads the trailer, which must end the input.
    pub fn read_trailer(&mut self) -> Result<Trailer, Error> {
        let offset = self.offset;
        let got = self.fill(trailer::LEN + 1).map_err(|e| self.io(e))?;
        if got < trailer::LEN {
            return Err(Error::at(
                offset,
                ErrorKind::Truncated {
                    structure: "trailer",
                    needed: trailer::LEN as u64,
                    available: got as u64,
                },
            ));
        }
        let b: [u8; trailer::LEN] = self.buf[self.pos..self.pos + trailer::LEN]
            .try_into()
            .expect("length checked");
        let t = Trailer::decode(&b, offset)?;
        self.consume(trailer::LEN);
        if got > trailer::LEN {
            return Err(Error::at(
                self.offset,
                ErrorKind::Inconsistent("bytes follow the trailer".into()),
            ));
        }
        Ok(t)
    }
}

/// Reads the file header and the manifest, which must be the first record.
pub fn read_start<R: Read>(rr: &mut RecordReader<R>) -> Result<Catalog, Error> {
    rr.read_file_header()?;
    let rec = match rr.next_record()? {
        Next::Record(r) if r.header.kind == RecordKind::Manifest => r,
        Next::Record(r) => {
            return Err(Error::at(
                r.offset,
                ErrorKind::Manifest(format!(
                    "the first record is a {}, expected the MANIFEST",
                    r.header.kind.name()
                )),
            ));
        }
        Next::Eof => {
            return Err(Error::at(
                rr.offset(),
                ErrorKind::Manifest("the archive ends before its manifest".into()),
            ));
        }
    };
    let off = rec.offset;
    let raw = rec.into_raw()?;
    manifest::decode(&raw).map_err(|m| Error::at(off, ErrorKind::Manifest(m)))
}

enum Item {
    Frame {
        offset: u64,
        header: RecordHeader,
        raw: Vec<u8>,
        crc: u64,
    },
    End {
        offset: u64,
        header: RecordHeader,
        end: NsEnd,
    },
    /// An NS_END record whose header is valid but whose payload is damaged.
    DamagedEnd {
        offset: u64,
        header: RecordHeader,
        message: String,
    },
}

/// What a damaged NS_END record means to a reader: the documents were checked frame
/// by frame, their totals could not be checked against the record.
fn damaged_end_message(name: &str, offset: u64, what: &str) -> String {
    format!(
        "the NS_END record of {name} at offset {offset} is damaged ({what}): every document read is intact, but their totals could not be checked against it"
    )
}

#[derive(Default)]
struct NsRead {
    next_seq: u32,
    ended: bool,
    digest: NsDigest,
}

/// An OXD archive read in order as a [`Source`], frames decoded in parallel.
///
/// Everything is checked on the way: checksums, decompression, document framing,
/// frame order, each namespace's counts and digest, the footer and the trailer.
/// The first violation stops the source with an error naming namespace and offset.
pub struct OxdSource<R> {
    path: PathBuf,
    rr: RecordReader<R>,
    catalog: Catalog,
    names: Vec<String>,
    pending: Ordered<Result<Item, Error>>,
    ns: Vec<NsRead>,
    footer: Option<Footer>,
    done: bool,
    /// Reading ahead stopped at this error: it is returned once every record read
    /// before it has been delivered.
    failed: Option<Error>,
    /// The range records read so far (spec §4.5).
    ranges: Vec<RangeRecord>,
}

impl OxdSource<File> {
    /// Opens an archive file.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let f = File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        OxdSource::new(f, path.to_path_buf())
    }
}

impl<R: Read + Send> OxdSource<R> {
    /// Reads an archive from `r`; `path` names it in messages.
    pub fn new(r: R, path: PathBuf) -> Result<Self, SourceError> {
        let mut rr = RecordReader::new(r);
        let catalog = read_start(&mut rr).map_err(|e| corrupt(&path, e))?;
        let names = catalog.namespaces.iter().map(|n| n.full_name()).collect();
        let ns = (0..catalog.namespaces.len())
            .map(|_| NsRead::default())
            .collect();
        Ok(OxdSource {
            path,
            rr,
            catalog,
            names,
            pending: Ordered::new(pool::default_capacity()),
            ns,
            footer: None,
            done: false,
            failed: None,
            ranges: Vec::new(),
        })
    }

    /// The range records (spec §4.5) read so far, intact, in the order they came.
    /// Reading runs ahead of the chunks delivered: a record here may list frames not
    /// delivered yet, or never (when the archive is damaged or cut after it).
    pub fn range_records(&self) -> &[RangeRecord] {
        &self.ranges
    }

    fn err(&self, e: Error) -> SourceError {
        SourceError::Corrupt {
            path: self.path.clone(),
            message: super::name_namespaces(&e.to_string(), |i| self.names.get(i).cloned()),
        }
    }

    fn ns_name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Reads records until the pipeline is full or the footer has been read.
    fn fill(&mut self) -> Result<(), Error> {
        while self.footer.is_none() && !self.pending.is_full() {
            let rec = match self.rr.next_record()? {
                Next::Eof => {
                    return Err(Error::at(
                        self.rr.offset(),
                        ErrorKind::Inconsistent(
                            "the archive ends without its footer: it is incomplete (interrupted or truncated)"
                                .into(),
                        ),
                    ));
                }
                Next::Record(r) => r,
            };
            let h = rec.header;
            match h.kind {
                RecordKind::Frame | RecordKind::NsEnd => {
                    if h.ns_id as usize >= self.ns.len() {
                        return Err(Error::at(
                            rec.offset,
                            ErrorKind::Inconsistent(format!(
                                "{} names namespace id {}, the manifest has {}",
                                h.kind.name(),
                                h.ns_id,
                                self.ns.len()
                            )),
                        ));
                    }
                    if h.kind == RecordKind::Frame {
                        self.pending.push(move || {
                            let offset = rec.offset;
                            let raw = rec.into_raw()?;
                            let crc =
                                frame::digest_docs(&h, &raw).map_err(|k| Error::at(offset, k))?;
                            Ok(Item::Frame {
                                offset,
                                header: h,
                                raw,
                                crc,
                            })
                        });
                    } else {
                        // The record's header is sound (it was checked), so reading can
                        // step over a damaged payload: the namespace ends here all the
                        // same, unchecked.
                        match rec.check_crc() {
                            Ok(()) => {
                                let end =
                                    NsEnd::decode(rec.payload[..].try_into().expect("32 bytes"));
                                self.pending.push_ready(Ok(Item::End {
                                    offset: rec.offset,
                                    header: h,
                                    end,
                                }));
                            }
                            Err(e) => {
                                let what = match e.kind {
                                    ErrorKind::PayloadChecksum { .. } => {
                                        "payload checksum mismatch".to_string()
                                    }
                                    k => k.to_string(),
                                };
                                self.pending.push_ready(Ok(Item::DamagedEnd {
                                    offset: rec.offset,
                                    header: h,
                                    message: what,
                                }));
                            }
                        }
                    }
                }
                RecordKind::Footer => {
                    let off = rec.offset;
                    let raw = rec.into_raw()?;
                    let f =
                        Footer::decode(&raw).map_err(|m| Error::at(off, ErrorKind::Footer(m)))?;
                    let t = self.rr.read_trailer()?;
                    if t.footer_offset != off {
                        return Err(Error::at(
                            t.archive_len - trailer::LEN as u64,
                            ErrorKind::Inconsistent(format!(
                                "trailer: footer_offset is {}, the footer is at {off}",
                                t.footer_offset
                            )),
                        ));
                    }
                    self.footer = Some(f);
                }
                RecordKind::Manifest => {
                    return Err(Error::at(
                        rec.offset,
                        ErrorKind::Inconsistent("a second MANIFEST record".into()),
                    ));
                }
                RecordKind::Ancillary(k) => {
                    rec.check_crc()?;
                    if matches!(k, ranges::KIND_RANGES | ranges::KIND_RANGE_END) {
                        let (ns, seq) = (h.ns_id, h.seq);
                        if let Ok(raw) = rec.into_raw()
                            && let Some(r) = RangeRecord::decode(k, ns, seq, &raw)
                        {
                            self.ranges.push(r);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Chunk>, Error> {
        if self.done {
            return Ok(None);
        }
        // Records read before a damaged or missing one are delivered first: what a
        // cut or damaged stream holds before the damage does not depend on how far
        // reading had got ahead.
        if self.failed.is_none()
            && let Err(e) = self.fill()
        {
            self.failed = Some(e);
        }
        match self.pending.pop() {
            Some(item) => match item? {
                Item::Frame {
                    offset,
                    header,
                    raw,
                    crc,
                } => {
                    let st = &mut self.ns[header.ns_id as usize];
                    if st.ended || header.seq != st.next_seq {
                        let expected = st.next_seq;
                        let msg = if st.ended {
                            format!(
                                "frame {} of {} comes after its NS_END",
                                header.seq,
                                self.ns_name(header.ns_id)
                            )
                        } else {
                            format!(
                                "frame {} of {} is out of order: expected frame {expected} (a frame is missing, duplicated or moved)",
                                header.seq,
                                self.ns_name(header.ns_id)
                            )
                        };
                        return Err(Error::at(offset, ErrorKind::Inconsistent(msg)));
                    }
                    st.next_seq += 1;
                    st.digest
                        .add_digested(crc, raw.len() as u64, header.doc_count as u64);
                    Ok(Some(Chunk::Docs {
                        ns: header.ns_id as usize,
                        data: raw,
                        count: header.doc_count as u64,
                    }))
                }
                Item::End {
                    offset,
                    header,
                    end,
                } => {
                    let ns = header.ns_id as usize;
                    let st = &mut self.ns[ns];
                    if st.ended {
                        return Err(Error::at(
                            offset,
                            ErrorKind::Inconsistent(format!(
                                "a second NS_END for {}",
                                self.names[ns]
                            )),
                        ));
                    }
                    st.ended = true;
                    let seen = st.digest.totals();
                    if seen != end {
                        return Err(Error::at(
                            offset,
                            ErrorKind::Inconsistent(ns_mismatch(&self.names[ns], &seen, &end)),
                        ));
                    }
                    let status = if nsend::is_partial(header.flags) {
                        NsStatus::Partial("the source changed while it was dumped".into())
                    } else {
                        NsStatus::Complete
                    };
                    Ok(Some(Chunk::End { ns, status }))
                }
                Item::DamagedEnd {
                    offset,
                    header,
                    message,
                } => {
                    let ns = header.ns_id as usize;
                    let st = &mut self.ns[ns];
                    if st.ended {
                        return Err(Error::at(
                            offset,
                            ErrorKind::Inconsistent(format!(
                                "a second NS_END for {}",
                                self.names[ns]
                            )),
                        ));
                    }
                    st.ended = true;
                    // The footer's copy of the record is checked at the end.
                    Ok(Some(Chunk::End {
                        ns,
                        status: NsStatus::Unchecked(damaged_end_message(
                            &self.names[ns],
                            offset,
                            &message,
                        )),
                    }))
                }
            },
            None => {
                self.done = true;
                if let Some(e) = self.failed.take() {
                    return Err(e);
                }
                let footer = self.footer.as_ref().expect("fill reads until the footer");
                if let Some(i) = self.ns.iter().position(|s| !s.ended) {
                    return Err(Error::at(
                        self.rr.offset(),
                        ErrorKind::Inconsistent(format!(
                            "namespace {} has no NS_END record",
                            self.names[i]
                        )),
                    ));
                }
                check_footer_totals(
                    footer,
                    &self
                        .ns
                        .iter()
                        .map(|s| s.digest.totals())
                        .collect::<Vec<_>>(),
                )
                .map_err(|m| Error::at(self.rr.offset(), ErrorKind::Footer(m)))?;
                Ok(None)
            }
        }
    }
}

/// Describes how a namespace's totals differ from its NS_END record.
pub fn ns_mismatch(name: &str, seen: &NsEnd, end: &NsEnd) -> String {
    let mut parts = Vec::new();
    if seen.frames != end.frames {
        parts.push(format!(
            "{} frames read, NS_END says {}",
            seen.frames, end.frames
        ));
    }
    if seen.doc_count != end.doc_count {
        parts.push(format!(
            "{} documents read, NS_END says {}",
            seen.doc_count, end.doc_count
        ));
    }
    if seen.raw_bytes != end.raw_bytes {
        parts.push(format!(
            "{} bytes read, NS_END says {}",
            seen.raw_bytes, end.raw_bytes
        ));
    }
    if seen.digest != end.digest {
        parts.push(format!(
            "digest of the documents read is {:#018x}, NS_END says {:#018x}",
            seen.digest, end.digest
        ));
    }
    format!("{name}: {}", parts.join("; "))
}

/// Checks the footer's namespace totals against those seen while reading.
fn check_footer_totals(footer: &Footer, seen: &[NsEnd]) -> Result<(), String> {
    if footer.namespaces.len() != seen.len() {
        return Err(format!(
            "lists {} namespaces, the manifest has {}",
            footer.namespaces.len(),
            seen.len()
        ));
    }
    for (e, s) in footer.namespaces.iter().zip(seen) {
        if e.end != *s {
            return Err(format!(
                "totals of namespace {} differ from its NS_END record",
                e.ns_id
            ));
        }
    }
    Ok(())
}

fn corrupt(path: &Path, e: Error) -> SourceError {
    match e.kind {
        ErrorKind::Io(source) => SourceError::Io {
            path: path.to_path_buf(),
            source,
        },
        _ => SourceError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

impl<R: Read + Send> Source for OxdSource<R> {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, SourceError> {
        self.step().map_err(|e| self.err(e))
    }

    fn summary(&self) -> Option<&Summary> {
        self.footer.as_ref().map(|f| &f.summary)
    }
}

/// Random access to a complete archive through its footer.
pub struct Index {
    /// The manifest.
    pub catalog: Catalog,
    /// The footer.
    pub footer: Footer,
    /// The trailer.
    pub trailer: Trailer,
}

impl Index {
    /// Reads header, manifest, trailer and footer of a seekable archive. Fails when
    /// the archive has no valid trailer (it is then incomplete: read it in order).
    pub fn open<F: Read + Seek>(f: &mut F) -> Result<Index, Error> {
        f.seek(SeekFrom::Start(0))
            .map_err(|e| Error::at(0, e.into()))?;
        let catalog = {
            let mut rr = RecordReader::new(&mut *f);
            read_start(&mut rr)?
        };
        let len = f
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::at(0, e.into()))?;
        if len < (header::LEN + record::LEN + trailer::LEN) as u64 {
            return Err(Error::at(
                len,
                ErrorKind::Truncated {
                    structure: "trailer",
                    needed: trailer::LEN as u64,
                    available: len,
                },
            ));
        }
        let toff = len - trailer::LEN as u64;
        let mut tb = [0u8; trailer::LEN];
        f.seek(SeekFrom::Start(toff))
            .map_err(|e| Error::at(toff, e.into()))?;
        f.read_exact(&mut tb)
            .map_err(|e| Error::at(toff, e.into()))?;
        let trailer = Trailer::decode(&tb, toff)?;
        f.seek(SeekFrom::Start(trailer.footer_offset))
            .map_err(|e| Error::at(trailer.footer_offset, e.into()))?;
        let mut rr = RecordReader::new(f.take(toff - trailer.footer_offset));
        let rec = match rr
            .next_record()
            .map_err(|e| shift(e, trailer.footer_offset))?
        {
            Next::Record(r) if r.header.kind == RecordKind::Footer => r,
            _ => {
                return Err(Error::at(
                    trailer.footer_offset,
                    ErrorKind::Footer(
                        "trailer's footer_offset does not point at a FOOTER record".into(),
                    ),
                ));
            }
        };
        let raw = rec
            .into_raw()
            .map_err(|e| shift(e, trailer.footer_offset))?;
        let footer = Footer::decode(&raw)
            .map_err(|m| Error::at(trailer.footer_offset, ErrorKind::Footer(m)))?;
        if footer.namespaces.len() != catalog.namespaces.len() {
            return Err(Error::at(
                trailer.footer_offset,
                ErrorKind::Footer(format!(
                    "lists {} namespaces, the manifest has {}",
                    footer.namespaces.len(),
                    catalog.namespaces.len()
                )),
            ));
        }
        Ok(Index {
            catalog,
            footer,
            trailer,
        })
    }
}

fn shift(mut e: Error, by: u64) -> Error {
    e.offset += by;
    e
}

/// Reads and decodes the frame at `entry` of a seekable archive, checking that the
/// record there is the frame the index names.
pub fn read_frame_at<F: Read + Seek>(
    f: &mut F,
    entry: &FrameEntry,
) -> Result<(RecordHeader, Vec<u8>), Error> {
    f.seek(SeekFrom::Start(entry.offset))
        .map_err(|e| Error::at(entry.offset, e.into()))?;
    let mut rr = RecordReader::new(f.take(record::LEN as u64 + super::MAX_FRAME_RAW as u64));
    let rec = match rr.next_record().map_err(|e| shift(e, entry.offset))? {
        Next::Record(r) => shift_rec(r, entry.offset),
        Next::Eof => {
            return Err(Error::at(
                entry.offset,
                ErrorKind::Footer("a frame entry points past the end of the archive".into()),
            ));
        }
    };
    let h = rec.header;
    if h.kind != RecordKind::Frame
        || h.ns_id != entry.ns_id
        || h.seq != entry.seq
        || h.doc_count != entry.doc_count
        || h.raw_len != entry.raw_len
    {
        return Err(Error::at(
            entry.offset,
            ErrorKind::Footer(format!(
                "the index names frame {} of namespace {} here, the record is {}",
                entry.seq,
                entry.ns_id,
                h.describe()
            )),
        ));
    }
    let off = rec.offset;
    let raw = rec.into_raw()?;
    frame::check_docs(&h, &raw).map_err(|k| Error::at(off, k))?;
    Ok((h, raw))
}

fn shift_rec(mut r: Record, by: u64) -> Record {
    r.offset += by;
    r
}

/// A decoded frame or why it could not be decoded.
type FrameResult = Result<(RecordHeader, Vec<u8>, u64), Error>;

/// A frame that could not be read, as a lenient [`NsSource`] reports it.
#[derive(Debug, Clone)]
pub struct SkippedFrame {
    /// The index entry of the frame (its offset, number and document count).
    pub entry: FrameEntry,
    /// What was wrong.
    pub message: String,
}

/// One namespace of a seekable archive as a [`Source`]: only its frames are read,
/// in parallel, and its digest is checked against the footer at the end.
///
/// A damaged frame stops the source with an error, unless it was built with
/// `skip_corrupt`: then the frame is recorded in [`NsSource::skipped`] and reading
/// goes on with the next one.
pub struct NsSource {
    path: PathBuf,
    catalog: Catalog,
    ns: usize,
    entries: std::vec::IntoIter<FrameEntry>,
    expected: NsEnd,
    flags: u16,
    end_offset: u64,
    pending: Ordered<(FrameEntry, FrameResult)>,
    digest: NsDigest,
    skip_corrupt: bool,
    skipped: Vec<SkippedFrame>,
    last_frame: Option<u32>,
    done: bool,
}

impl NsSource {
    /// Opens namespace `ns` of the archive at `path` through `index`.
    pub fn new(path: &Path, index: &Index, ns: usize) -> NsSource {
        NsSource::with_options(path, index, ns, false, pool::default_capacity())
    }

    /// Like [`NsSource::new`], skipping damaged frames when `skip_corrupt`, with at
    /// most `read_ahead` frames read and decoded ahead of the consumer.
    pub fn with_options(
        path: &Path,
        index: &Index,
        ns: usize,
        skip_corrupt: bool,
        read_ahead: usize,
    ) -> NsSource {
        NsSource {
            path: path.to_path_buf(),
            catalog: index.catalog.clone(),
            ns,
            entries: index.footer.frames_of(ns as u32).to_vec().into_iter(),
            expected: index.footer.namespaces[ns].end,
            flags: index.footer.namespaces[ns].flags,
            end_offset: index.footer.namespaces[ns].end_offset,
            pending: Ordered::new(read_ahead),
            digest: NsDigest::default(),
            skip_corrupt,
            skipped: Vec::new(),
            last_frame: None,
            done: false,
        }
    }

    /// The number (`seq`) of the frame whose documents the last chunk held.
    pub fn last_frame(&self) -> Option<u32> {
        self.last_frame
    }

    /// Frames skipped because they were damaged.
    pub fn skipped(&self) -> &[SkippedFrame] {
        &self.skipped
    }

    /// Reads the namespace's NS_END record, as a reader of the whole archive in order
    /// would: what is wrong with it, if anything (the footer holds a copy, which the
    /// documents were checked against).
    fn check_end_record(&self) -> Option<String> {
        let read = || -> Result<Option<String>, Error> {
            let mut f = File::open(&self.path).map_err(|e| Error::at(self.end_offset, e.into()))?;
            f.seek(SeekFrom::Start(self.end_offset))
                .map_err(|e| Error::at(self.end_offset, e.into()))?;
            let rec = match RecordReader::new(f).next_record()? {
                Next::Record(r) => r,
                Next::Eof => return Ok(Some("missing".into())),
            };
            if rec.header.kind != RecordKind::NsEnd || rec.header.ns_id as usize != self.ns {
                return Ok(Some(format!(
                    "the footer points at {}",
                    rec.header.describe()
                )));
            }
            if rec.check_crc().is_err() {
                return Ok(Some("payload checksum mismatch".into()));
            }
            let end = NsEnd::decode(rec.payload[..].try_into().expect("32 bytes"));
            Ok((end != self.expected).then(|| "it disagrees with the footer's copy".into()))
        };
        match read() {
            Ok(r) => r,
            Err(e) => Some(e.kind.to_string()),
        }
    }

    /// What is wrong with a frame, naming its namespace (without the offset, which the
    /// error carries separately).
    fn describe(&self, e: &Error) -> String {
        super::name_namespaces(&e.kind.to_string(), |i| {
            self.catalog.namespaces.get(i).map(|n| n.full_name())
        })
    }

    fn step(&mut self) -> Result<Option<Chunk>, SourceError> {
        loop {
            if self.done {
                return Ok(None);
            }
            while !self.pending.is_full() {
                let Some(e) = self.entries.next() else { break };
                let path = self.path.clone();
                self.pending.push(move || {
                    let r = File::open(&path)
                        .map_err(|err| Error::at(e.offset, err.into()))
                        .and_then(|mut f| read_frame_at(&mut f, &e))
                        .map(|(h, raw)| {
                            let crc = super::nsend::crc64(&raw);
                            (h, raw, crc)
                        });
                    (e, r)
                });
            }
            match self.pending.pop() {
                Some((entry, Ok((h, raw, crc)))) => {
                    self.last_frame = Some(entry.seq);
                    self.digest
                        .add_digested(crc, raw.len() as u64, h.doc_count as u64);
                    return Ok(Some(Chunk::Docs {
                        ns: self.ns,
                        data: raw,
                        count: h.doc_count as u64,
                    }));
                }
                Some((entry, Err(e))) => {
                    let message = self.describe(&e);
                    if !self.skip_corrupt || matches!(e.kind, ErrorKind::Io(_)) {
                        self.done = true;
                        return Err(corrupt(
                            &self.path,
                            Error::at(e.offset, ErrorKind::Inconsistent(message)),
                        ));
                    }
                    self.skipped.push(SkippedFrame { entry, message });
                }
                None => {
                    self.done = true;
                    let seen = self.digest.totals();
                    if self.skipped.is_empty() && seen != self.expected {
                        return Err(SourceError::Corrupt {
                            path: self.path.clone(),
                            message: ns_mismatch(
                                &self.catalog.namespaces[self.ns].full_name(),
                                &seen,
                                &self.expected,
                            )
                            .replace("NS_END says", "the footer says"),
                        });
                    }
                    let status = if let Some(what) = self.check_end_record() {
                        NsStatus::Unchecked(damaged_end_message(
                            &self.catalog.namespaces[self.ns].full_name(),
                            self.end_offset,
                            &what,
                        ))
                    } else if nsend::is_partial(self.flags) {
                        NsStatus::Partial("the source changed while it was dumped".into())
                    } else {
                        NsStatus::Complete
                    };
                    return Ok(Some(Chunk::End {
                        ns: self.ns,
                        status,
                    }));
                }
            }
        }
    }
}

impl Source for NsSource {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, SourceError> {
        self.step()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::{Namespace, NsKind, SourceInfo};
    use crate::oxd::writer::{OxdWriter, WriterOptions};
    use std::io::Cursor;

    pub(crate) fn catalog() -> Catalog {
        let mut v = Namespace::collection("t", "v");
        v.kind = NsKind::View;
        Catalog {
            source: SourceInfo {
                created_at: Some(bson::DateTime::from_millis(0)),
                ..SourceInfo::default()
            },
            namespaces: vec![
                Namespace::collection("t", "a"),
                Namespace::collection("t", "b"),
                v,
            ],
        }
    }

    pub(crate) fn docs(from: i64, n: i64) -> Vec<u8> {
        let mut b = Vec::new();
        for i in from..from + n {
            b.extend(
                bson::serialize_to_vec(&bson::doc! {"_id": i, "pad": "x".repeat(50)}).unwrap(),
            );
        }
        b
    }

    /// a: 3 frames, b: 1 frame, v: none; frames interleaved.
    pub(crate) fn archive(level: Option<i32>) -> Vec<u8> {
        let opts = WriterOptions {
            level,
            ..WriterOptions::default()
        };
        let mut w = OxdWriter::new(Vec::new(), &catalog(), opts).unwrap();
        w.write_frame(0, docs(0, 10), 10).unwrap();
        w.write_frame(1, docs(100, 5), 5).unwrap();
        w.write_frame(0, docs(10, 10), 10).unwrap();
        w.end_namespace(1, &NsStatus::Complete).unwrap();
        w.end_namespace(2, &NsStatus::Complete).unwrap();
        w.write_frame(0, docs(20, 3), 3).unwrap();
        w.end_namespace(0, &NsStatus::Partial("dropped".into()))
            .unwrap();
        let summary = Summary {
            completed_at: Some(bson::DateTime::from_millis(1)),
            ..Summary::default()
        };
        w.finish(&summary).unwrap().0
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Chunk>, SourceError> {
        let mut s = OxdSource::new(Cursor::new(bytes.to_vec()), "t.oxd".into())?;
        let mut out = Vec::new();
        while let Some(c) = s.next_chunk()? {
            out.push(c);
        }
        Ok(out)
    }

    #[test]
    fn streams_back_what_was_written() {
        for level in [None, Some(1), Some(3)] {
            let a = archive(level);
            let chunks = read_all(&a).unwrap();
            let mut a_docs = Vec::new();
            let mut ends = Vec::new();
            for c in chunks {
                match c {
                    Chunk::Docs { ns: 0, data, .. } => a_docs.extend(data),
                    Chunk::Docs { .. } => {}
                    Chunk::End { ns, status } => ends.push((ns, status)),
                }
            }
            assert_eq!(a_docs, docs(0, 23));
            assert_eq!(ends.len(), 3);
            assert_eq!(
                ends[2],
                (
                    0,
                    NsStatus::Partial("the source changed while it was dumped".into())
                )
            );
        }
    }

    #[test]
    fn index_gives_random_access() {
        let a = archive(Some(3));
        let mut c = Cursor::new(a.clone());
        let idx = Index::open(&mut c).unwrap();
        assert_eq!(idx.catalog, catalog());
        assert_eq!(idx.footer.frames_of(0).len(), 3);
        assert_eq!(idx.footer.namespaces[0].end.doc_count, 23);
        let (_, raw) = read_frame_at(&mut c, &idx.footer.frames_of(0)[1]).unwrap();
        assert_eq!(raw, docs(10, 10));
    }

    #[test]
    fn truncation_anywhere_is_an_error_never_a_panic() {
        let a = archive(Some(3));
        for cut in (0..a.len()).step_by(7).chain([a.len() - 1, a.len() - 32]) {
            let r = read_all(&a[..cut]);
            assert!(r.is_err(), "cut at {cut} read as complete");
            let mut c = Cursor::new(a[..cut].to_vec());
            assert!(Index::open(&mut c).is_err());
        }
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let a = archive(Some(3));
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 0x01;
            // An error, or (a damaged NS_END payload, stepped over) a namespace
            // reported unchecked.
            let noticed = match read_all(&b) {
                Err(_) => true,
                Ok(chunks) => chunks.iter().any(|c| {
                    matches!(
                        c,
                        Chunk::End {
                            status: NsStatus::Unchecked(_),
                            ..
                        }
                    )
                }),
            };
            assert!(noticed, "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn resync_finds_the_next_record() {
        let a = archive(None);
        let mut b = a.clone();
        // damage the second record's header (the first frame)
        let mut rr = RecordReader::new(&a[..]);
        read_start(&mut rr).unwrap();
        let frame_off = rr.offset() as usize;
        b[frame_off + 10] ^= 0xff;
        let mut rr = RecordReader::new(&b[..]);
        read_start(&mut rr).unwrap();
        assert!(rr.next_record().is_err());
        let next = rr.resync().unwrap().unwrap();
        assert!(next > frame_off as u64);
        match rr.next_record().unwrap() {
            Next::Record(r) => assert_eq!((r.header.ns_id, r.header.seq), (1, 0)),
            Next::Eof => panic!("expected a record"),
        }
    }
}
