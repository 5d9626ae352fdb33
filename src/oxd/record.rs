//! The record header (spec §4): 36 bytes in front of every record payload.
//!
//! | offset | size | field         | meaning                                              |
//! |-------:|-----:|---------------|------------------------------------------------------|
//! | 0      | 4    | `sync`        | `4F 58 52 43` (`OXRC`)                               |
//! | 4      | 1    | `kind`        | [`RecordKind`]                                       |
//! | 5      | 1    | `codec`       | [`Codec`]                                            |
//! | 6      | 2    | `flags`       | u16 LE, per kind; unused bits 0                      |
//! | 8      | 4    | `ns_id`       | u32 LE, namespace id (FRAME, NS_END), else 0         |
//! | 12     | 4    | `seq`         | u32 LE, frame number within its namespace, else 0    |
//! | 16     | 4    | `stored_len`  | u32 LE, payload bytes as stored                      |
//! | 20     | 4    | `raw_len`     | u32 LE, payload bytes once decoded                   |
//! | 24     | 4    | `doc_count`   | u32 LE, documents in a FRAME, else 0                 |
//! | 28     | 4    | `payload_crc` | u32 LE, CRC-32 of bytes 0..28 then the stored payload|
//! | 32     | 4    | `header_crc`  | u32 LE, CRC-32 of bytes 0..32                        |

use super::{Error, ErrorKind, MAX_FRAME_RAW, MAX_META_RAW, crc32, le16, le32};
use crate::docs::MIN_DOC_LEN;

/// The 4 bytes that open every record.
pub const SYNC: [u8; 4] = *b"OXRC";

/// Size of a record header in bytes.
pub const LEN: usize = 36;

/// NS_END flag: the source changed during the dump (collection dropped or renamed),
/// so the namespace's data may be incomplete.
pub const FLAG_PARTIAL: u16 = 0x0001;

/// What a record holds (`kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// 0x01: the manifest, a BSON document (spec §5).
    Manifest,
    /// 0x02: a frame of raw BSON documents of one namespace (spec §6).
    Frame,
    /// 0x03: the end of a namespace (spec §7).
    NsEnd,
    /// 0x04: the footer: index and summary (spec §8).
    Footer,
    /// 0x80–0xFF: an ancillary record a reader that does not know it must skip.
    Ancillary(u8),
}

impl RecordKind {
    /// The `kind` byte.
    pub fn to_byte(self) -> u8 {
        match self {
            RecordKind::Manifest => 0x01,
            RecordKind::Frame => 0x02,
            RecordKind::NsEnd => 0x03,
            RecordKind::Footer => 0x04,
            RecordKind::Ancillary(b) => b,
        }
    }

    /// Parses a `kind` byte; `None` for an unknown critical kind (0x00, 0x05–0x7F).
    pub fn from_byte(b: u8) -> Option<RecordKind> {
        Some(match b {
            0x01 => RecordKind::Manifest,
            0x02 => RecordKind::Frame,
            0x03 => RecordKind::NsEnd,
            0x04 => RecordKind::Footer,
            0x80..=0xFF => RecordKind::Ancillary(b),
            _ => return None,
        })
    }

    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Manifest => "MANIFEST",
            RecordKind::Frame => "FRAME",
            RecordKind::NsEnd => "NS_END",
            RecordKind::Footer => "FOOTER",
            RecordKind::Ancillary(_) => "ancillary record",
        }
    }
}

/// How a payload is stored (`codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// 0: stored as is; `stored_len == raw_len`.
    None,
    /// 1: one zstd frame; `stored_len <= raw_len`.
    Zstd,
}

impl Codec {
    /// The `codec` byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Zstd => 1,
        }
    }

    /// Parses a `codec` byte.
    pub fn from_byte(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::None),
            1 => Some(Codec::Zstd),
            _ => None,
        }
    }
}

/// A parsed record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// `kind`.
    pub kind: RecordKind,
    /// `codec`.
    pub codec: Codec,
    /// `flags`.
    pub flags: u16,
    /// `ns_id`.
    pub ns_id: u32,
    /// `seq`.
    pub seq: u32,
    /// `stored_len`.
    pub stored_len: u32,
    /// `raw_len`.
    pub raw_len: u32,
    /// `doc_count`.
    pub doc_count: u32,
    /// `payload_crc`.
    pub payload_crc: u32,
}

impl RecordHeader {
    /// A header for `kind` with every other field zero and no codec.
    pub fn new(kind: RecordKind) -> RecordHeader {
        RecordHeader {
            kind,
            codec: Codec::None,
            flags: 0,
            ns_id: 0,
            seq: 0,
            stored_len: 0,
            raw_len: 0,
            doc_count: 0,
            payload_crc: 0,
        }
    }

    /// Bytes 0..28, the part the payload checksum covers.
    fn prefix(&self) -> [u8; 28] {
        let mut b = [0u8; 28];
        b[..4].copy_from_slice(&SYNC);
        b[4] = self.kind.to_byte();
        b[5] = self.codec.to_byte();
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.ns_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.stored_len.to_le_bytes());
        b[20..24].copy_from_slice(&self.raw_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.doc_count.to_le_bytes());
        b
    }

    /// Sets `stored_len` and `payload_crc` for `payload` and serializes the header.
    pub fn seal(&mut self, payload: &[u8]) -> [u8; LEN] {
        self.stored_len = u32::try_from(payload.len()).expect("payload length checked by caller");
        let prefix = self.prefix();
        self.payload_crc = crc32(&[&prefix, payload]);
        self.encode()
    }

    /// Serializes the header as it is (`payload_crc` included).
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..28].copy_from_slice(&self.prefix());
        b[28..32].copy_from_slice(&self.payload_crc.to_le_bytes());
        let hcrc = crc32(&[&b[..32]]);
        b[32..36].copy_from_slice(&hcrc.to_le_bytes());
        b
    }

    /// The payload checksum of `payload` under this header.
    pub fn compute_payload_crc(&self, payload: &[u8]) -> u32 {
        crc32(&[&self.prefix(), payload])
    }

    /// Parses and validates a header read at archive offset `offset`: sync, header
    /// checksum, kind, codec, then the per-kind rules of spec §4.2–4.3. Lengths are
    /// validated here, so a caller may allocate `stored_len` bytes afterwards.
    pub fn decode(b: &[u8; LEN], offset: u64) -> Result<RecordHeader, Error> {
        let err = |kind| Error::at(offset, kind);
        if b[..4] != SYNC {
            return Err(err(ErrorKind::BadSync {
                found: b[..4].to_vec(),
            }));
        }
        let stored = le32(b, 32);
        let computed = crc32(&[&b[..32]]);
        if stored != computed {
            return Err(err(ErrorKind::Checksum {
                structure: "record header",
                stored,
                computed,
            }));
        }
        let kind = RecordKind::from_byte(b[4])
            .ok_or_else(|| err(ErrorKind::UnknownKind { kind: b[4] }))?;
        let codec =
            Codec::from_byte(b[5]).ok_or_else(|| err(ErrorKind::UnknownCodec { codec: b[5] }))?;
        let h = RecordHeader {
            kind,
            codec,
            flags: le16(b, 6),
            ns_id: le32(b, 8),
            seq: le32(b, 12),
            stored_len: le32(b, 16),
            raw_len: le32(b, 20),
            doc_count: le32(b, 24),
            payload_crc: le32(b, 28),
        };
        h.validate().map_err(err)?;
        Ok(h)
    }

    fn validate(&self) -> Result<(), ErrorKind> {
        let bad = |field: &'static str, value: u64, rule: &'static str| ErrorKind::BadField {
            structure: "record header",
            field,
            value,
            rule,
        };
        let reserved = |field: &'static str, value: u64| ErrorKind::Reserved {
            structure: "record header",
            field,
            value,
        };
        match self.codec {
            Codec::None if self.stored_len != self.raw_len => {
                return Err(bad(
                    "stored_len",
                    self.stored_len as u64,
                    "must equal raw_len when codec is 0",
                ));
            }
            Codec::Zstd if self.stored_len > self.raw_len || self.stored_len == 0 => {
                return Err(bad(
                    "stored_len",
                    self.stored_len as u64,
                    "must be between 1 and raw_len when codec is 1",
                ));
            }
            _ => {}
        }
        let allowed_flags = match self.kind {
            RecordKind::NsEnd => FLAG_PARTIAL,
            RecordKind::Ancillary(_) => u16::MAX,
            _ => 0,
        };
        if self.flags & !allowed_flags != 0 {
            return Err(reserved("flags", (self.flags & !allowed_flags) as u64));
        }
        match self.kind {
            RecordKind::Frame => {
                if self.raw_len < MIN_DOC_LEN as u32 || self.raw_len > MAX_FRAME_RAW {
                    return Err(bad(
                        "raw_len",
                        self.raw_len as u64,
                        "must be between 5 and 67108864 for a FRAME",
                    ));
                }
                if self.doc_count == 0 || self.doc_count > self.raw_len / MIN_DOC_LEN as u32 {
                    return Err(bad(
                        "doc_count",
                        self.doc_count as u64,
                        "must be between 1 and raw_len / 5 for a FRAME",
                    ));
                }
            }
            RecordKind::NsEnd => {
                if self.codec != Codec::None || self.raw_len != super::nsend::LEN as u32 {
                    return Err(bad(
                        "raw_len",
                        self.raw_len as u64,
                        "must be 32 with codec 0 for an NS_END",
                    ));
                }
                if self.seq != 0 {
                    return Err(reserved("seq", self.seq as u64));
                }
                if self.doc_count != 0 {
                    return Err(reserved("doc_count", self.doc_count as u64));
                }
            }
            RecordKind::Manifest | RecordKind::Footer => {
                if self.raw_len > MAX_META_RAW {
                    return Err(bad(
                        "raw_len",
                        self.raw_len as u64,
                        "must be at most 268435456 for a MANIFEST or FOOTER",
                    ));
                }
                for (field, v) in [
                    ("ns_id", self.ns_id),
                    ("seq", self.seq),
                    ("doc_count", self.doc_count),
                ] {
                    if v != 0 {
                        return Err(reserved(field, v as u64));
                    }
                }
            }
            RecordKind::Ancillary(_) => {
                if self.raw_len > MAX_META_RAW {
                    return Err(bad(
                        "raw_len",
                        self.raw_len as u64,
                        "must be at most 268435456",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Describes the record for messages (`frame 3 of namespace 1`, `manifest`, …).
    pub fn describe(&self) -> String {
        match self.kind {
            RecordKind::Frame => format!("frame {} of namespace {}", self.seq, self.ns_id),
            RecordKind::NsEnd => format!("NS_END of namespace {}", self.ns_id),
            RecordKind::Manifest => "manifest".into(),
            RecordKind::Footer => "footer".into(),
            RecordKind::Ancillary(k) => format!("ancillary record {k:#04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_header() -> RecordHeader {
        RecordHeader {
            codec: Codec::Zstd,
            ns_id: 3,
            seq: 7,
            raw_len: 100,
            doc_count: 2,
            ..RecordHeader::new(RecordKind::Frame)
        }
    }

    #[test]
    fn seal_then_decode() {
        let mut h = frame_header();
        let payload = [1u8; 40];
        let b = h.seal(&payload);
        let d = RecordHeader::decode(&b, 0).unwrap();
        assert_eq!(d, h);
        assert_eq!(d.compute_payload_crc(&payload), d.payload_crc);
        assert_ne!(d.compute_payload_crc(&[2u8; 40]), d.payload_crc);
    }

    #[test]
    fn every_header_byte_is_covered() {
        let mut h = frame_header();
        let b = h.seal(&[1u8; 40]);
        for i in 0..LEN {
            let mut c = b;
            c[i] ^= 0x10;
            assert!(RecordHeader::decode(&c, 0).is_err(), "byte {i}");
        }
    }

    #[test]
    fn per_kind_rules() {
        let check = |mut h: RecordHeader, payload: &[u8]| {
            let b = h.seal(payload);
            RecordHeader::decode(&b, 9).map_err(|e| e.kind.code())
        };
        // stored larger than raw for zstd
        let h = RecordHeader {
            raw_len: 10,
            doc_count: 1,
            ..frame_header()
        };
        assert_eq!(check(h, &[0u8; 11]), Err("record-field"));
        // oversized frame
        let h = RecordHeader {
            codec: Codec::None,
            raw_len: MAX_FRAME_RAW + 1,
            ..frame_header()
        };
        assert!(RecordHeader::decode(&{ h }.encode(), 0).is_err());
        // frame without documents
        let h = RecordHeader {
            doc_count: 0,
            ..frame_header()
        };
        assert_eq!(check(h, &[0u8; 10]), Err("record-field"));
        // unknown critical kind, ancillary kind accepted
        let mut b = frame_header().seal(&[0u8; 10]);
        b[4] = 0x33;
        let crc = crc32(&[&b[..32]]);
        b[32..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            RecordHeader::decode(&b, 0).unwrap_err().kind.code(),
            "record-kind"
        );
        let h = RecordHeader {
            raw_len: 3,
            ..RecordHeader::new(RecordKind::Ancillary(0x90))
        };
        assert!(check(h, &[0u8; 3]).is_ok());
        // reserved flags on a frame
        let h = RecordHeader {
            flags: 2,
            ..frame_header()
        };
        assert_eq!(check(h, &[0u8; 10]), Err("reserved"));
    }
}
