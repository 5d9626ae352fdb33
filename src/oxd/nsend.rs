//! The NS_END payload (spec §7): 32 bytes closing one namespace.
//!
//! | offset | size | field       | meaning                                                  |
//! |-------:|-----:|-------------|----------------------------------------------------------|
//! | 0      | 8    | `doc_count` | u64 LE, documents in all frames of the namespace         |
//! | 8      | 8    | `raw_bytes` | u64 LE, sum of the frames' `raw_len`                     |
//! | 16     | 8    | `frames`    | u64 LE, number of FRAME records of the namespace         |
//! | 24     | 8    | `digest`    | u64 LE, CRC-64/XZ of all documents' bytes in frame order |

use super::{le64, record::FLAG_PARTIAL};

/// Size of the NS_END payload in bytes.
pub const LEN: usize = 32;

/// The running or final totals of one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NsEnd {
    /// `doc_count`.
    pub doc_count: u64,
    /// `raw_bytes`.
    pub raw_bytes: u64,
    /// `frames`.
    pub frames: u64,
    /// `digest`.
    pub digest: u64,
}

impl NsEnd {
    /// Serializes the payload.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..8].copy_from_slice(&self.doc_count.to_le_bytes());
        b[8..16].copy_from_slice(&self.raw_bytes.to_le_bytes());
        b[16..24].copy_from_slice(&self.frames.to_le_bytes());
        b[24..32].copy_from_slice(&self.digest.to_le_bytes());
        b
    }

    /// Parses the payload (every bit pattern is a valid NS_END).
    pub fn decode(b: &[u8; LEN]) -> NsEnd {
        NsEnd {
            doc_count: le64(b, 0),
            raw_bytes: le64(b, 8),
            frames: le64(b, 16),
            digest: le64(b, 24),
        }
    }
}

/// Whether the NS_END `flags` mark the namespace as partial.
pub fn is_partial(flags: u16) -> bool {
    flags & FLAG_PARTIAL != 0
}

/// Accumulates a namespace's totals frame by frame, in frame order.
pub struct NsDigest {
    totals: NsEnd,
    crc: crc64fast::Digest,
}

impl Default for NsDigest {
    fn default() -> Self {
        NsDigest {
            totals: NsEnd::default(),
            crc: crc64fast::Digest::new(),
        }
    }
}

impl NsDigest {
    /// Adds one frame's raw payload holding `docs` documents.
    pub fn add_frame(&mut self, raw: &[u8], docs: u64) {
        self.crc.write(raw);
        self.totals.doc_count += docs;
        self.totals.raw_bytes += raw.len() as u64;
        self.totals.frames += 1;
    }

    /// The totals so far.
    pub fn totals(&self) -> NsEnd {
        NsEnd {
            digest: self.crc.sum64(),
            ..self.totals
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_crc64_xz() {
        // Check value of CRC-64/XZ.
        let mut d = NsDigest::default();
        d.add_frame(b"1234", 1);
        d.add_frame(b"56789", 1);
        let t = d.totals();
        assert_eq!(t.digest, 0x995DC9BBDF1939FA);
        assert_eq!((t.doc_count, t.raw_bytes, t.frames), (2, 9, 2));
        assert_eq!(NsEnd::decode(&t.encode()), t);
        assert_eq!(NsDigest::default().totals().digest, 0);
    }
}
