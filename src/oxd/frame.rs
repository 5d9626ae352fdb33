//! FRAME payloads (spec §6): runs of whole raw BSON documents of one namespace,
//! compressed on their own so frames encode and decode in parallel.
//!
//! The raw payload is the documents' bytes concatenated, exactly as the server sent
//! them. With codec 1 the stored payload is a single zstd frame that decompresses
//! to exactly `raw_len` bytes; a writer stores the payload raw (codec 0) when
//! compression would not make it smaller.

use std::cell::RefCell;

use super::ErrorKind;
use super::record::{Codec, RecordHeader, RecordKind};
use crate::docs::DocIter;

/// How to store payloads: `None` writes them uncompressed, `Some(level)` uses zstd.
pub type Level = Option<i32>;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Compresses `raw` with zstd at `level` on this thread's reusable context.
pub fn zstd_compress(raw: &[u8], level: i32) -> Vec<u8> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l) != Some(level) {
            *c = Some((
                level,
                zstd::bulk::Compressor::new(level).expect("zstd context"),
            ));
        }
        c.as_mut()
            .expect("set above")
            .1
            .compress(raw)
            .expect("zstd compression into a bound-sized buffer cannot fail")
    })
}

/// Buffers given back by consumers that are done with a frame's raw bytes, reused for
/// the next decompressions: fresh multi-megabyte allocations would otherwise be
/// page-faulted in (and zeroed by the kernel) frame after frame.
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// Most spare buffers kept.
const SPARE_MAX: usize = 32;

/// Gives a buffer back for reuse by later decompressions.
pub fn recycle(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > super::MAX_FRAME_RAW as usize {
        return;
    }
    buf.clear();
    if let Ok(mut s) = SPARE.lock()
        && s.len() < SPARE_MAX
    {
        s.push(buf);
    }
}

fn spare(capacity: usize) -> Vec<u8> {
    let mut b = SPARE
        .lock()
        .ok()
        .and_then(|mut s| s.pop())
        .unwrap_or_default();
    b.reserve(capacity);
    b
}

/// Decompresses one zstd frame that must yield exactly `raw_len` bytes.
pub fn zstd_decompress(stored: &[u8], raw_len: usize) -> Result<Vec<u8>, String> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        let d = d.get_or_insert_with(|| zstd::bulk::Decompressor::new().expect("zstd context"));
        // Decompresses into the buffer's spare capacity (at least `raw_len` bytes;
        // more only for a frame that lies about its size, which is then refused).
        let mut out = spare(raw_len);
        let n = d
            .decompress_to_buffer(stored, &mut out)
            .map_err(|e| format!("zstd: {e}"))?;
        if n > raw_len {
            return Err(format!(
                "decompressed to more than the header's raw_len {raw_len}"
            ));
        }
        if out.len() != raw_len {
            return Err(format!(
                "decompressed to {} bytes, header says raw_len {raw_len}",
                out.len()
            ));
        }
        Ok(out)
    })
}

/// A payload as it will be stored.
pub struct Stored {
    /// The codec used.
    pub codec: Codec,
    /// The stored bytes (compressed, or the raw bytes themselves for codec 0).
    pub bytes: Vec<u8>,
    /// The raw bytes when they differ from `bytes` (kept for the namespace digest).
    pub raw: Option<Vec<u8>>,
}

impl Stored {
    /// The raw payload.
    pub fn raw(&self) -> &[u8] {
        self.raw.as_deref().unwrap_or(&self.bytes)
    }
}

/// Compresses `raw` at `level`, falling back to storing it raw when compression
/// does not make it smaller.
pub fn store(raw: Vec<u8>, level: Level) -> Stored {
    if let Some(level) = level {
        let c = zstd_compress(&raw, level);
        if c.len() < raw.len() && !c.is_empty() {
            return Stored {
                codec: Codec::Zstd,
                bytes: c,
                raw: Some(raw),
            };
        }
    }
    Stored {
        codec: Codec::None,
        bytes: raw,
        raw: None,
    }
}

/// A frame ready to be written: its sealed header and stored payload.
pub struct EncodedFrame {
    /// The record header, checksums set.
    pub header: RecordHeader,
    /// The payload.
    pub stored: Stored,
    /// CRC-64/XZ of the raw payload, for the namespace digest.
    pub raw_crc: u64,
}

/// Encodes one frame of namespace `ns_id` with frame number `seq`. `raw` must be
/// `doc_count` whole documents (the caller builds frames from framed documents).
pub fn encode(ns_id: u32, seq: u32, raw: Vec<u8>, doc_count: u32, level: Level) -> EncodedFrame {
    let raw_len = raw.len() as u32;
    let raw_crc = super::nsend::crc64(&raw);
    let stored = store(raw, level);
    let mut header = RecordHeader {
        codec: stored.codec,
        ns_id,
        seq,
        raw_len,
        doc_count,
        ..RecordHeader::new(RecordKind::Frame)
    };
    header.seal(&stored.bytes);
    EncodedFrame {
        header,
        stored,
        raw_crc,
    }
}

/// Decodes a stored payload to its raw bytes according to the header's codec.
pub fn decode_payload(h: &RecordHeader, stored: Vec<u8>) -> Result<Vec<u8>, ErrorKind> {
    match h.codec {
        Codec::None => Ok(stored),
        Codec::Zstd => {
            zstd_decompress(&stored, h.raw_len as usize).map_err(|message| ErrorKind::Decode {
                what: h.describe(),
                message,
            })
        }
    }
}

/// Checks that a frame's raw payload is exactly `doc_count` whole documents.
pub fn check_docs(h: &RecordHeader, raw: &[u8]) -> Result<(), ErrorKind> {
    let mut n = 0u64;
    for d in DocIter::new(raw) {
        d.map_err(|source| ErrorKind::Framing {
            what: h.describe(),
            source,
        })?;
        n += 1;
    }
    if n != h.doc_count as u64 {
        return Err(ErrorKind::Inconsistent(format!(
            "{}: holds {n} documents, header says doc_count {}",
            h.describe(),
            h.doc_count
        )));
    }
    Ok(())
}

/// Bytes digested before the document headers inside them are checked.
const DIGEST_STRIDE: usize = 64 * 1024;

/// Checks that a frame's raw payload is exactly `doc_count` whole documents and
/// returns its CRC-64 digest, in one pass: the payload is digested stride by stride and
/// the document headers in each stride are checked right after, while they are in
/// cache (the two walks separately would read the frame twice from memory).
pub fn digest_docs(h: &RecordHeader, raw: &[u8]) -> Result<u64, ErrorKind> {
    let mut digest = crc64fast::Digest::new();
    let n = raw.len();
    let (mut pos, mut count) = (0usize, 0u64);
    let mut ok = true;
    let mut start = 0;
    while start < n {
        let end = (start + DIGEST_STRIDE).min(n);
        digest.write(&raw[start..end]);
        while ok && pos < end {
            if n - pos < 4 {
                ok = false;
                break;
            }
            let len =
                u32::from_le_bytes([raw[pos], raw[pos + 1], raw[pos + 2], raw[pos + 3]]) as usize;
            if !(crate::docs::MIN_DOC_LEN..=crate::docs::MAX_DOC_LEN).contains(&len)
                || len > n - pos
                || raw[pos + len - 1] != 0
            {
                ok = false;
                break;
            }
            pos += len;
            count += 1;
        }
        start = end;
    }
    if !ok || pos != n || count != h.doc_count as u64 {
        // Something is wrong: the slow walk says exactly what.
        check_docs(h, raw)?;
    }
    Ok(digest.sum64())
}

/// Collects whole documents of one namespace into frame-sized runs.
pub struct FrameBuilder {
    target: usize,
    buf: Vec<u8>,
    count: u32,
}

impl FrameBuilder {
    /// A builder emitting frames of about `target` raw bytes.
    pub fn new(target: usize) -> FrameBuilder {
        FrameBuilder {
            target: target.max(1),
            buf: Vec::new(),
            count: 0,
        }
    }

    /// Adds one whole document. Returns a full frame when the document would take
    /// the current one past its target (the document then starts the next frame).
    pub fn push(&mut self, doc: &[u8]) -> Option<(Vec<u8>, u32)> {
        let out = if !self.buf.is_empty() && self.buf.len() + doc.len() > self.target {
            self.take()
        } else {
            None
        };
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.target.max(doc.len()));
        }
        self.buf.extend_from_slice(doc);
        self.count += 1;
        out
    }

    /// Takes what has been collected, if anything.
    pub fn take(&mut self) -> Option<(Vec<u8>, u32)> {
        if self.count == 0 {
            return None;
        }
        let count = std::mem::take(&mut self.count);
        Some((std::mem::take(&mut self.buf), count))
    }

    /// Raw bytes collected so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is collected.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(n: usize) -> (Vec<u8>, u32) {
        let mut b = Vec::new();
        for i in 0..n {
            b.extend(
                bson::serialize_to_vec(&bson::doc! {"_id": i as i64, "s": "hello hello hello"})
                    .unwrap(),
            );
        }
        (b, n as u32)
    }

    #[test]
    fn encode_decode_check() {
        let (raw, n) = docs(100);
        let f = encode(1, 0, raw.clone(), n, Some(3));
        assert_eq!(f.header.codec, Codec::Zstd);
        assert!(f.stored.bytes.len() < raw.len());
        let back = decode_payload(&f.header, f.stored.bytes.clone()).unwrap();
        assert_eq!(back, raw);
        check_docs(&f.header, &back).unwrap();
        let mut h = f.header;
        h.doc_count = 99;
        assert!(check_docs(&h, &back).is_err());
    }

    #[test]
    fn incompressible_is_stored_raw() {
        let mut raw = Vec::new();
        let mut x = 0x1234_5678u32;
        let bin: Vec<u8> = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        raw.extend(bson::serialize_to_vec(&bson::doc! {"b": bson::Binary{subtype: bson::spec::BinarySubtype::Generic, bytes: bin}}).unwrap());
        let f = encode(0, 0, raw.clone(), 1, Some(3));
        assert_eq!(f.header.codec, Codec::None);
        assert_eq!(f.stored.raw(), &raw[..]);
    }

    #[test]
    fn builder_cuts_at_target() {
        let (raw, _) = docs(10);
        let one = raw.len() / 10;
        let mut b = FrameBuilder::new(one * 3);
        let mut frames = Vec::new();
        for d in DocIter::new(&raw) {
            if let Some(f) = b.push(d.unwrap()) {
                frames.push(f);
            }
        }
        frames.extend(b.take());
        assert_eq!(
            frames.iter().map(|f| f.1).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        assert_eq!(frames.concat_bytes(), raw);
    }

    trait Concat {
        fn concat_bytes(&self) -> Vec<u8>;
    }
    impl Concat for Vec<(Vec<u8>, u32)> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.iter().flat_map(|f| f.0.iter().copied()).collect()
        }
    }
}
