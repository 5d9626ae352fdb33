//! The trailer (spec §9): the last 32 bytes of a complete archive.
//!
//! | offset | size | field           | meaning                                        |
//! |-------:|-----:|-----------------|------------------------------------------------|
//! | 0      | 8    | `footer_offset` | u64 LE, archive offset of the FOOTER record    |
//! | 8      | 8    | `archive_len`   | u64 LE, total archive length, trailer included |
//! | 16     | 4    | reserved        | 0                                              |
//! | 20     | 4    | `trailer_crc`   | u32 LE, CRC-32 of bytes 0..20                  |
//! | 24     | 8    | `end_magic`     | `89 4F 58 44 45 4E 44 0A` (`\x89OXDEND\n`)     |

use super::{Error, ErrorKind, crc32, le32, le64};

/// Size of the trailer in bytes.
pub const LEN: usize = 32;

/// The last 8 bytes of a complete archive.
pub const END_MAGIC: [u8; 8] = [0x89, b'O', b'X', b'D', b'E', b'N', b'D', 0x0A];

/// The parsed trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// `footer_offset`.
    pub footer_offset: u64,
    /// `archive_len`.
    pub archive_len: u64,
}

impl Trailer {
    /// Serializes the trailer.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..8].copy_from_slice(&self.footer_offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.archive_len.to_le_bytes());
        let crc = crc32(&[&b[..20]]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        b[24..32].copy_from_slice(&END_MAGIC);
        b
    }

    /// Parses a trailer read at archive offset `offset` (end magic, checksum, reserved,
    /// then `archive_len == offset + 32` and `footer_offset < offset`).
    pub fn decode(b: &[u8; LEN], offset: u64) -> Result<Trailer, Error> {
        if b[24..32] != END_MAGIC {
            return Err(Error::at(
                offset,
                ErrorKind::Inconsistent(format!(
                    "trailer: end magic is {:02x?}, expected 89 4f 58 44 45 4e 44 0a",
                    &b[24..32]
                )),
            ));
        }
        let stored = le32(b, 20);
        let computed = crc32(&[&b[..20]]);
        if stored != computed {
            return Err(Error::at(
                offset,
                ErrorKind::Checksum {
                    structure: "trailer",
                    stored,
                    computed,
                },
            ));
        }
        let reserved = le32(b, 16);
        if reserved != 0 {
            return Err(Error::at(
                offset + 16,
                ErrorKind::Reserved {
                    structure: "trailer",
                    field: "reserved",
                    value: reserved as u64,
                },
            ));
        }
        let t = Trailer {
            footer_offset: le64(b, 0),
            archive_len: le64(b, 8),
        };
        if t.archive_len != offset + LEN as u64 {
            return Err(Error::at(
                offset,
                ErrorKind::Inconsistent(format!(
                    "trailer: archive_len is {} but the archive is {} bytes long",
                    t.archive_len,
                    offset + LEN as u64
                )),
            ));
        }
        if t.footer_offset >= offset {
            return Err(Error::at(
                offset,
                ErrorKind::Inconsistent(format!(
                    "trailer: footer_offset {} is not before the trailer",
                    t.footer_offset
                )),
            ));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let t = Trailer {
            footer_offset: 1000,
            archive_len: 2032,
        };
        let b = t.encode();
        assert_eq!(Trailer::decode(&b, 2000).unwrap(), t);
        assert!(Trailer::decode(&b, 1999).is_err());
        let mut c = b;
        c[3] ^= 1;
        assert_eq!(
            Trailer::decode(&c, 2000).unwrap_err().kind.code(),
            "trailer-crc"
        );
        let mut c = b;
        c[31] = 0;
        assert!(Trailer::decode(&c, 2000).is_err());
    }
}
