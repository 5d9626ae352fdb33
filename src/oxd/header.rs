//! The file header (spec §3): the first 16 bytes of every OXD archive.
//!
//! | offset | size | field           | value                                   |
//! |-------:|-----:|-----------------|-----------------------------------------|
//! | 0      | 8    | `magic`         | `89 4F 58 44 0D 0A 1A 0A`               |
//! | 8      | 1    | `version_major` | 1                                       |
//! | 9      | 1    | `version_minor` | 0                                       |
//! | 10     | 2    | `flags`         | u16 LE, reserved, 0                     |
//! | 12     | 4    | `header_crc`    | u32 LE, CRC-32 of bytes 0..12           |

use super::{Error, ErrorKind, crc32, le16, le32};

/// The 8 magic bytes that open an OXD archive: a high byte (catches 7-bit
/// transports), `OXD`, CR LF (catches line-ending conversion), `^Z`, LF.
pub const MAGIC: [u8; 8] = [0x89, b'O', b'X', b'D', 0x0D, 0x0A, 0x1A, 0x0A];

/// Size of the file header in bytes.
pub const LEN: usize = 16;

/// Major version written and understood by this implementation.
pub const VERSION_MAJOR: u8 = 1;

/// Minor version written by this implementation. Readers accept any minor version
/// of a major version they implement.
pub const VERSION_MINOR: u8 = 0;

/// The parsed file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// `version_major`.
    pub major: u8,
    /// `version_minor`.
    pub minor: u8,
}

impl Default for FileHeader {
    fn default() -> Self {
        FileHeader {
            major: VERSION_MAJOR,
            minor: VERSION_MINOR,
        }
    }
}

impl FileHeader {
    /// Serializes the header.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8] = self.major;
        b[9] = self.minor;
        // flags (10..12) stay zero.
        let crc = crc32(&[&b[..12]]);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and validates the header (magic first, then checksum, then version).
    pub fn decode(b: &[u8; LEN]) -> Result<FileHeader, Error> {
        if b[..8] != MAGIC {
            return Err(Error::at(
                0,
                ErrorKind::BadMagic {
                    found: b[..8].to_vec(),
                },
            ));
        }
        let stored = le32(b, 12);
        let computed = crc32(&[&b[..12]]);
        if stored != computed {
            return Err(Error::at(
                0,
                ErrorKind::Checksum {
                    structure: "file header",
                    stored,
                    computed,
                },
            ));
        }
        let (major, minor) = (b[8], b[9]);
        if major != VERSION_MAJOR {
            return Err(Error::at(8, ErrorKind::UnsupportedVersion { major, minor }));
        }
        let flags = le16(b, 10);
        if flags != 0 {
            return Err(Error::at(
                10,
                ErrorKind::Reserved {
                    structure: "file header",
                    field: "flags",
                    value: flags as u64,
                },
            ));
        }
        Ok(FileHeader { major, minor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_bytes() {
        let b = FileHeader::default().encode();
        assert_eq!(&b[..10], &[0x89, b'O', b'X', b'D', 13, 10, 0x1a, 10, 1, 0]);
        assert_eq!(FileHeader::decode(&b).unwrap(), FileHeader::default());
    }

    #[test]
    fn rejects_magic_crc_version_flags() {
        let good = FileHeader::default().encode();
        let mut b = good;
        b[1] = b'P';
        assert!(matches!(
            FileHeader::decode(&b).unwrap_err().kind,
            ErrorKind::BadMagic { .. }
        ));
        let mut b = good;
        b[9] = 7;
        assert!(matches!(
            FileHeader::decode(&b).unwrap_err().kind,
            ErrorKind::Checksum { .. }
        ));
        let mut b = FileHeader { major: 2, minor: 0 }.encode();
        assert!(matches!(
            FileHeader::decode(&b).unwrap_err().kind,
            ErrorKind::UnsupportedVersion { major: 2, .. }
        ));
        b = good;
        b[10] = 1;
        let crc = crc32(&[&b[..12]]);
        b[12..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            FileHeader::decode(&b).unwrap_err().kind,
            ErrorKind::Reserved { .. }
        ));
        // A newer minor version of the same major is accepted.
        let b = FileHeader { major: 1, minor: 9 }.encode();
        assert_eq!(FileHeader::decode(&b).unwrap().minor, 9);
    }
}
