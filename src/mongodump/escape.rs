//! Collection file names of the mongodump directory layout.
//!
//! mongodump names a collection's files after the collection, escaped with Go's
//! `url.QueryEscape`: the unreserved bytes `[A-Za-z0-9-_.~]` stay as they are, a space
//! becomes `+`, and every other byte (multi-byte UTF-8 included) becomes `%XX` with
//! uppercase hex digits. mongorestore reverses it with `url.QueryUnescape`.
//!
//! Long names: when the escaped stem is longer than [`MAX_STEM_LEN`] (238) bytes, the
//! stem becomes its first [`TRUNCATED_PREFIX_LEN`] (208) bytes, the literal `%24` (an
//! escaped `$`) and the unpadded base64url SHA-1 of the raw name (27 characters): 238
//! bytes in all, which leaves room for `.metadata.json.gz` under the usual 255-byte
//! limit. Such a stem does not unescape to the name (the cut can even split a `%XX`
//! escape); the real name is the metadata file's `collectionName`.
//! [`is_truncated_stem`] recognises these stems the way mongorestore does.
//!
//! Database directory names are not escaped.

use base64::Engine;
use sha1::{Digest, Sha1};

/// Longest stem mongodump writes; longer escaped names are truncated and hashed.
pub const MAX_STEM_LEN: usize = 238;

/// How many bytes of the escaped name a truncated stem keeps.
pub const TRUNCATED_PREFIX_LEN: usize = 208;

/// The delimiter between the kept prefix and the hash in a truncated stem (an escaped `$`).
pub const TRUNCATION_MARK: &str = "%24";

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether Go's `url.QueryEscape` leaves `b` as it is.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Escapes `s` exactly like Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(UPPER_HEX[(b >> 4) as usize] as char);
            out.push(UPPER_HEX[(b & 0xF) as usize] as char);
        }
    }
    out
}

/// A stem that does not unescape: a `%` not followed by two hex digits, or bytes that
/// are not UTF-8 once decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnescapeError {
    /// `%` is not followed by two hexadecimal digits.
    #[error("invalid escape {escape:?} at byte {offset} of {stem:?}")]
    BadEscape {
        /// The stem.
        stem: String,
        /// Byte offset of the `%`.
        offset: usize,
        /// The bytes following `%` (up to two).
        escape: String,
    },
    /// The decoded bytes are not UTF-8.
    #[error("{stem:?} does not decode to UTF-8")]
    NotUtf8 {
        /// The stem.
        stem: String,
    },
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Reverses [`query_escape`] like Go's `url.QueryUnescape`: `+` means a space, `%XX`
/// (either case) a byte; every other byte stands for itself.
pub fn query_unescape(stem: &str) -> Result<String, UnescapeError> {
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => {
                        let end = (i + 3).min(bytes.len());
                        return Err(UnescapeError::BadEscape {
                            stem: stem.to_string(),
                            offset: i,
                            escape: String::from_utf8_lossy(&bytes[i..end]).into_owned(),
                        });
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| UnescapeError::NotUtf8 {
        stem: stem.to_string(),
    })
}

/// The file stem mongodump uses for collection `name` (without `.bson` or
/// `.metadata.json`): the escaped name, truncated and hashed when too long.
pub fn collection_stem(name: &str) -> String {
    let escaped = query_escape(name);
    if escaped.len() <= MAX_STEM_LEN {
        return escaped;
    }
    let hash = Sha1::digest(name.as_bytes());
    let mut stem = String::with_capacity(MAX_STEM_LEN);
    // The escaped string is ASCII, so any byte index is a char boundary.
    stem.push_str(&escaped[..TRUNCATED_PREFIX_LEN]);
    stem.push_str(TRUNCATION_MARK);
    stem.push_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash));
    stem
}

/// Whether `stem` is a truncated long-name stem, by mongorestore's rule: it contains
/// `%24` and is exactly [`MAX_STEM_LEN`] bytes long. The collection's real name must
/// then come from the metadata's `collectionName`.
pub fn is_truncated_stem(stem: &str) -> bool {
    stem.len() == MAX_STEM_LEN && stem.contains(TRUNCATION_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go_query_escape() {
        assert_eq!(query_escape("with space"), "with+space");
        assert_eq!(query_escape("per%cent"), "per%25cent");
        assert_eq!(query_escape("odd-chars_~!@#"), "odd-chars_~%21%40%23");
        assert_eq!(query_escape("ünïcödé"), "%C3%BCn%C3%AFc%C3%B6d%C3%A9");
        assert_eq!(query_escape("dots.in.name"), "dots.in.name");
        assert_eq!(query_escape("a/b$c*d+e"), "a%2Fb%24c%2Ad%2Be");
        assert_eq!(query_escape("\u{0}\u{7f}"), "%00%7F");
        assert_eq!(query_escape(""), "");
    }

    #[test]
    fn fixture_file_names_round_trip() {
        // Every collection of the fixture dump, as named by mongodump 100.18.
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mongodump-100.18/dir/edge"
        );
        let names = [
            ("with space", "with+space"),
            ("per%cent", "per%25cent"),
            ("odd-chars_~!@#", "odd-chars_~%21%40%23"),
            ("ünïcödé", "%C3%BCn%C3%AFc%C3%B6d%C3%A9"),
            ("dots.in.name", "dots.in.name"),
            ("system.buckets.series", "system.buckets.series"),
        ];
        for (name, stem) in names {
            assert_eq!(collection_stem(name), stem);
            assert_eq!(query_unescape(stem).unwrap(), name);
            assert!(!is_truncated_stem(stem));
            let file = std::path::Path::new(dir).join(format!("{stem}.bson"));
            assert!(file.exists(), "{} missing", file.display());
        }
        let long = "a".repeat(100);
        assert_eq!(collection_stem(&long), long);
        assert!(
            std::path::Path::new(dir)
                .join(format!("{long}.metadata.json"))
                .exists()
        );
    }

    #[test]
    fn unescape_rules() {
        assert_eq!(query_unescape("a+b").unwrap(), "a b");
        assert_eq!(query_unescape("a%2bb").unwrap(), "a+b");
        assert_eq!(
            query_unescape("$admin.system.users").unwrap(),
            "$admin.system.users"
        );
        assert!(matches!(
            query_unescape("bad%zz"),
            Err(UnescapeError::BadEscape { offset: 3, .. })
        ));
        assert!(matches!(
            query_unescape("end%4"),
            Err(UnescapeError::BadEscape { offset: 3, .. })
        ));
        assert!(matches!(
            query_unescape("%FF"),
            Err(UnescapeError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn long_names_are_truncated_and_hashed() {
        // 239 unreserved bytes: one too many.
        let name = "x".repeat(239);
        let stem = collection_stem(&name);
        assert_eq!(stem.len(), MAX_STEM_LEN);
        assert!(stem.starts_with(&"x".repeat(TRUNCATED_PREFIX_LEN)));
        assert_eq!(&stem[208..211], "%24");
        let hash = Sha1::digest(name.as_bytes());
        assert_eq!(
            &stem[211..],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
        );
        assert!(is_truncated_stem(&stem));
        // Exactly 238 bytes is kept as it is.
        let name = "y".repeat(238);
        assert_eq!(collection_stem(&name), name);
        assert!(!is_truncated_stem(&name));
        // The cut may split an escape: 207 unreserved bytes then "é" (%C3%A9).
        let name = format!("{}é{}", "z".repeat(207), "w".repeat(40));
        let stem = collection_stem(&name);
        assert_eq!(stem.len(), MAX_STEM_LEN);
        assert_eq!(&stem[207..211], "%%24");
        assert!(is_truncated_stem(&stem));
    }

    #[test]
    fn known_sha1_vector() {
        // SHA-1("abc") = a9993e36..., base64url without padding.
        let hash = Sha1::digest(b"abc");
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash),
            "qZk-NkcGgWq6PiVxeFDCbJzQ2J0"
        );
    }
}
