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

/// CRC-64/XZ of `data` (the digest of one frame's documents).
pub fn crc64(data: &[u8]) -> u64 {
    let mut d = crc64fast::Digest::new();
    d.write(data);
    d.sum64()
}

/// The CRC-64/XZ polynomial, reflected.
const POLY: u64 = 0xC96C_5795_D787_0F42;

fn gf2_times(mat: &[u64; 64], mut vec: u64) -> u64 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn gf2_square(square: &mut [u64; 64], mat: &[u64; 64]) {
    for n in 0..64 {
        square[n] = gf2_times(mat, mat[n]);
    }
}

/// The operators that append 2^k zero bytes to a CRC, for k = 0..64, built once.
fn zero_byte_operators() -> &'static [[u64; 64]; 64] {
    static OPS: std::sync::OnceLock<Box<[[u64; 64]; 64]>> = std::sync::OnceLock::new();
    OPS.get_or_init(|| {
        let mut ops = Box::new([[0u64; 64]; 64]);
        // The operator for one zero bit, then squared three times: one zero byte.
        let mut op = [0u64; 64];
        op[0] = POLY;
        let mut row = 1u64;
        for slot in op.iter_mut().skip(1) {
            *slot = row;
            row <<= 1;
        }
        let mut next = [0u64; 64];
        for _ in 0..3 {
            gf2_square(&mut next, &op);
            op = next;
        }
        for k in 0..64 {
            ops[k] = op;
            gf2_square(&mut next, &op);
            op = next;
        }
        ops
    })
}

/// The CRC-64/XZ of `A ‖ B` from `crc(A)`, `crc(B)` and the length of `B`.
///
/// This is what lets frames be digested in parallel, each by the thread that
/// decompressed it while its bytes are in cache, and the namespace digest be put
/// together in order afterwards. `crc64fast` has no combine, so it is done here, by
/// the classic method: appending `len_b` zero bytes to A is a linear map over GF(2),
/// the product of the precomputed maps for the powers of two that make up `len_b`.
pub fn crc64_combine(mut crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    let ops = zero_byte_operators();
    let mut k = 0;
    let mut n = len_b;
    while n != 0 {
        if n & 1 != 0 {
            crc_a = gf2_times(&ops[k], crc_a);
        }
        n >>= 1;
        k += 1;
    }
    crc_a ^ crc_b
}

/// Accumulates a namespace's totals frame by frame, in frame order.
#[derive(Default)]
pub struct NsDigest {
    totals: NsEnd,
}

impl NsDigest {
    /// Adds one frame's raw payload holding `docs` documents.
    pub fn add_frame(&mut self, raw: &[u8], docs: u64) {
        self.add_digested(crc64(raw), raw.len() as u64, docs);
    }

    /// Adds one frame whose raw payload of `len` bytes has CRC-64 `crc` (computed by
    /// whoever had the bytes at hand).
    pub fn add_digested(&mut self, crc: u64, len: u64, docs: u64) {
        let t = &mut self.totals;
        t.digest = crc64_combine(t.digest, crc, len);
        t.doc_count += docs;
        t.raw_bytes += len;
        t.frames += 1;
    }

    /// The totals so far.
    pub fn totals(&self) -> NsEnd {
        self.totals
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

    #[test]
    fn combine_matches_the_whole() {
        let data: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for cut in [0, 1, 7, 8, 9, 4095, 65536, 99_999, 100_000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(
                crc64_combine(crc64(a), crc64(b), b.len() as u64),
                crc64(&data),
                "cut {cut}"
            );
        }
        let mut d = NsDigest::default();
        for part in data.chunks(33_333) {
            d.add_digested(crc64(part), part.len() as u64, 1);
        }
        assert_eq!(d.totals().digest, crc64(&data));
    }
}
