//! The OXD archive format, version 1 (`format-spec/oxd-v1.md`).
//!
//! An OXD archive is a [`header::FileHeader`], a sequence of records (each a
//! [`record::RecordHeader`] followed by its payload), and a [`trailer::Trailer`]:
//!
//! ```text
//! FileHeader  MANIFEST  (FRAME | NS_END)*  FOOTER  Trailer
//! ```
//!
//! - the MANIFEST ([`manifest`]) describes the source and every namespace;
//! - FRAMEs ([`frame`]) carry runs of whole raw BSON documents of one namespace,
//!   each compressed on its own and checksummed over header and payload;
//! - one NS_END ([`nsend`]) per namespace closes it with document and byte counts
//!   and a CRC-64 digest of all its documents in order;
//! - the FOOTER ([`footer`]) indexes every frame and repeats the per-namespace
//!   totals, and the fixed-size trailer points at it;
//! - ancillary range records ([`ranges`]) say how a dump split a collection into
//!   `_id` ranges and which frames hold each finished range (for `dump --resume`).
//!
//! The writer never seeks ([`writer`]); readers consume archives in order from a
//! pipe, or jump through the footer when the input seeks ([`reader`]). [`check`]
//! verifies everything offline and reports findings.
//!
//! Each module mirrors one table of the specification; section names in the docs
//! refer to `format-spec/oxd-v1.md`.

pub mod check;
pub mod footer;
pub mod frame;
pub mod header;
pub mod manifest;
pub mod nsend;
pub mod ranges;
pub mod reader;
pub mod record;
pub mod trailer;
pub mod writer;

use std::io;

/// Largest raw (uncompressed) payload of a FRAME record: 64 MiB (spec §4.3).
pub const MAX_FRAME_RAW: u32 = 64 * 1024 * 1024;

/// Largest raw payload of a MANIFEST or FOOTER record: 256 MiB (spec §4.3).
pub const MAX_META_RAW: u32 = 256 * 1024 * 1024;

/// Default target size of a frame's raw payload (chosen by `benches/archive.rs`).
pub const DEFAULT_FRAME_SIZE: usize = 4 * 1024 * 1024;

/// Default zstd level (chosen by `benches/archive.rs`).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// CRC-32 (ISO-HDLC, as zlib and gzip) of `parts`, concatenated.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// A violation of the format, at a byte offset of the archive.
#[derive(Debug, thiserror::Error)]
#[error("offset {offset}: {kind}")]
pub struct Error {
    /// Byte offset of the structure concerned.
    pub offset: u64,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// An error at `offset`.
    pub fn at(offset: u64, kind: ErrorKind) -> Error {
        Error { offset, kind }
    }
}

/// What is wrong with an archive. Messages name the specification's fields.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The first 8 bytes are not the OXD magic.
    #[error(
        "file header: magic is {found:02x?}, expected 89 4f 58 44 0d 0a 1a 0a (not an OXD archive)"
    )]
    BadMagic {
        /// The bytes found.
        found: Vec<u8>,
    },
    /// The major version is not one this reader implements.
    #[error("file header: version {major}.{minor} is not supported (this reader implements 1.x)")]
    UnsupportedVersion {
        /// `version_major`.
        major: u8,
        /// `version_minor`.
        minor: u8,
    },
    /// A checksum over a fixed-size structure does not match.
    #[error("{structure}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// Which structure (`file header`, `record header`, `trailer`).
        structure: &'static str,
        /// The stored CRC-32.
        stored: u32,
        /// The CRC-32 of the bytes read.
        computed: u32,
    },
    /// A reserved field or bit is not zero.
    #[error("{structure}: reserved field `{field}` is {value:#x}, must be 0")]
    Reserved {
        /// Which structure.
        structure: &'static str,
        /// Field name.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A record does not start with the `OXRC` sync bytes.
    #[error("record header: sync is {found:02x?}, expected 4f 58 52 43 (\"OXRC\")")]
    BadSync {
        /// The bytes found.
        found: Vec<u8>,
    },
    /// A critical record kind this reader does not know.
    #[error("record header: unknown critical record kind {kind:#04x}")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// A codec this reader does not know.
    #[error("record header: unknown codec {codec}")]
    UnknownCodec {
        /// The codec byte.
        codec: u8,
    },
    /// A field has a value the specification does not allow.
    #[error("{structure}: field `{field}` is {value}, {rule}")]
    BadField {
        /// Which structure.
        structure: &'static str,
        /// Field name.
        field: &'static str,
        /// The value found.
        value: u64,
        /// What is allowed.
        rule: &'static str,
    },
    /// The payload checksum of a record does not match.
    #[error("{what}: payload checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    PayloadChecksum {
        /// Which record (`frame 3 of ns 1`, `manifest`, …).
        what: String,
        /// The stored `payload_crc`.
        stored: u32,
        /// The CRC-32 computed over header and payload.
        computed: u32,
    },
    /// A compressed payload does not decompress to `raw_len` bytes.
    #[error("{what}: {message}")]
    Decode {
        /// Which record.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The documents of a frame do not chain.
    #[error("{what}: {source}")]
    Framing {
        /// Which record.
        what: String,
        /// The break.
        source: crate::docs::FramingError,
    },
    /// The input ends in the middle of a structure.
    #[error("archive ends inside the {structure}: {needed} byte(s) needed, {available} available")]
    Truncated {
        /// Which structure.
        structure: &'static str,
        /// Bytes the structure needs from its start.
        needed: u64,
        /// Bytes that were there.
        available: u64,
    },
    /// The input ends inside a record whose header was read and is valid.
    #[error(
        "{what}: the archive ends inside this record: {needed} byte(s) needed, {available} available"
    )]
    TruncatedRecord {
        /// Which record (`frame 3 of namespace 1`, …).
        what: String,
        /// Bytes the record needs from its start.
        needed: u64,
        /// Bytes that were there.
        available: u64,
    },
    /// The manifest does not parse or lacks a required field.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The footer does not parse or disagrees with the archive.
    #[error("footer: {0}")]
    Footer(String),
    /// The archive is structurally inconsistent (records out of order, counts that disagree).
    #[error("{0}")]
    Inconsistent(String),
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ErrorKind {
    /// The stable finding code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::BadMagic { .. } => "header-magic",
            ErrorKind::UnsupportedVersion { .. } => "header-version",
            ErrorKind::Checksum { structure, .. } => match *structure {
                "file header" => "header-crc",
                "trailer" => "trailer-crc",
                _ => "record-header-crc",
            },
            ErrorKind::Reserved { .. } => "reserved",
            ErrorKind::BadSync { .. } => "record-sync",
            ErrorKind::UnknownKind { .. } => "record-kind",
            ErrorKind::UnknownCodec { .. } => "record-codec",
            ErrorKind::BadField { .. } => "record-field",
            ErrorKind::PayloadChecksum { .. } => "payload-crc",
            ErrorKind::Decode { .. } => "frame-decode",
            ErrorKind::Framing { .. } => "frame-docs",
            ErrorKind::Truncated { .. } | ErrorKind::TruncatedRecord { .. } => "truncated",
            ErrorKind::Manifest(_) => "manifest",
            ErrorKind::Footer(_) => "footer",
            ErrorKind::Inconsistent(_) => "inconsistent",
            ErrorKind::Io(_) => "io",
        }
    }
}

/// Replaces every `namespace N` of an error message (records describe their namespace
/// by its id: `frame 4 of namespace 11`) with the namespace's name, `name(N)`. Only a
/// whole number is an id: `namespace 1` is not found inside `namespace 11`. Ids
/// `name` does not know are left as they are.
pub fn name_namespaces(message: &str, name: impl Fn(usize) -> Option<String>) -> String {
    const WORD: &str = "namespace ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(WORD) {
        let after = &rest[i + WORD.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let named = (digits > 0)
            .then(|| after[..digits].parse::<usize>().ok())
            .flatten()
            .and_then(&name);
        match named {
            Some(n) => {
                out.push_str(&rest[..i]);
                out.push_str(&n);
                rest = &after[digits..];
            }
            None => {
                out.push_str(&rest[..i + WORD.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reads a little-endian `u16` at `at`.
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Reads a little-endian `u32` at `at`.
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads a little-endian `u64` at `at`.
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod naming_tests {
    use super::name_namespaces;

    #[test]
    fn namespace_ids_are_whole_numbers() {
        let names: Vec<String> = (0..12).map(|i| format!("db.c{i}")).collect();
        let name = |i: usize| names.get(i).cloned();
        assert_eq!(
            name_namespaces("frame 4 of namespace 1: payload checksum mismatch", name),
            "frame 4 of db.c1: payload checksum mismatch"
        );
        assert_eq!(
            name_namespaces("frame 4 of namespace 11 at 9, NS_END of namespace 1", name),
            "frame 4 of db.c11 at 9, NS_END of db.c1"
        );
        assert_eq!(
            name_namespaces("namespace 12 has no NS_END record", name),
            "namespace 12 has no NS_END record"
        );
        assert_eq!(name_namespaces("namespace x", name), "namespace x");
    }
}
