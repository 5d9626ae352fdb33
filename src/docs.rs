//! Raw BSON document framing: the one place that knows how a run of concatenated
//! documents is cut into documents, without decoding them.
//!
//! Every format oxidump reads stores documents the same way: each one starts with
//! its total length as a little-endian `int32` and ends with a `0x00` byte. The hot
//! paths only check that chain ([`check_chain`], [`DocIter`]); [`deep_check`] walks
//! every element of a document, like mongorestore's `--objcheck`.

use std::io::{self, Read};

/// Smallest valid BSON document: a 4-byte length and the terminating `0x00`.
pub const MIN_DOC_LEN: usize = 5;

/// Largest document accepted anywhere: the server's 16 MiB user-document limit plus
/// the 16 KiB the server allows oplog entries on top of it.
pub const MAX_DOC_LEN: usize = 16 * 1024 * 1024 + 16 * 1024;

/// Largest document a server accepts from a client (`maxBsonObjectSize`).
pub const MAX_USER_DOC_LEN: usize = 16 * 1024 * 1024;

/// A break in the chain of document lengths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Fewer than 4 bytes remain where a document length is expected.
    #[error("{remaining} trailing byte(s) at offset {offset} are not a whole document")]
    Trailing {
        /// Offset of the stray bytes, relative to the start of the run.
        offset: usize,
        /// How many bytes remain.
        remaining: usize,
    },
    /// The length prefix is below 5 or above [`MAX_DOC_LEN`].
    #[error("document at offset {offset} declares length {len}, outside 5..={MAX_DOC_LEN}")]
    BadLength {
        /// Offset of the document.
        offset: usize,
        /// The declared length.
        len: i64,
    },
    /// The declared length runs past the end of the data.
    #[error(
        "document at offset {offset} declares length {len} but only {available} byte(s) remain"
    )]
    Truncated {
        /// Offset of the document.
        offset: usize,
        /// The declared length.
        len: usize,
        /// Bytes available from `offset` to the end.
        available: usize,
    },
    /// The last byte of the document is not `0x00`.
    #[error("document at offset {offset} (length {len}) does not end with 0x00")]
    BadTerminator {
        /// Offset of the document.
        offset: usize,
        /// The declared length.
        len: usize,
    },
}

/// Reads the little-endian `int32` length prefix at the start of `bytes`.
#[inline]
pub fn declared_len(bytes: &[u8]) -> Option<i32> {
    bytes
        .get(..4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Checks one declared length against the limits.
#[inline]
fn check_len(offset: usize, len: i32) -> Result<usize, FramingError> {
    if len < MIN_DOC_LEN as i32 || len as i64 > MAX_DOC_LEN as i64 {
        return Err(FramingError::BadLength {
            offset,
            len: len as i64,
        });
    }
    Ok(len as usize)
}

/// Iterator over the whole documents of a run of concatenated BSON documents.
///
/// Yields each document's bytes as a borrowed slice; stops after the first
/// [`FramingError`].
pub struct DocIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> DocIter<'a> {
    /// Iterates the documents of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        DocIter {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Offset of the next document within the run.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for DocIter<'a> {
    type Item = Result<&'a [u8], FramingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos == self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let item = split_first(rest, self.pos);
        match &item {
            Ok(doc) => self.pos += doc.len(),
            Err(_) => self.failed = true,
        }
        Some(item)
    }
}

/// Splits the first document off `rest`, which starts at `offset` in its run.
#[inline]
fn split_first(rest: &[u8], offset: usize) -> Result<&[u8], FramingError> {
    let Some(len) = declared_len(rest) else {
        return Err(FramingError::Trailing {
            offset,
            remaining: rest.len(),
        });
    };
    let len = check_len(offset, len)?;
    if len > rest.len() {
        return Err(FramingError::Truncated {
            offset,
            len,
            available: rest.len(),
        });
    }
    if rest[len - 1] != 0 {
        return Err(FramingError::BadTerminator { offset, len });
    }
    Ok(&rest[..len])
}

/// Checks that `buf` is exactly a chain of whole documents and returns how many.
pub fn check_chain(buf: &[u8]) -> Result<u64, FramingError> {
    let mut n = 0u64;
    for d in DocIter::new(buf) {
        d?;
        n += 1;
    }
    Ok(n)
}

/// Reads one document from a stream into `buf` (replacing its contents).
///
/// Returns `Ok(false)` at a clean end of stream (no byte read). A length outside
/// the limits is refused before anything is allocated for it.
pub fn read_doc<R: Read>(r: &mut R, buf: &mut Vec<u8>) -> Result<bool, ReadDocError> {
    let mut len_bytes = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len_bytes[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(ReadDocError::Framing(FramingError::Trailing {
                    offset: 0,
                    remaining: got,
                }));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadDocError::Io(e)),
        }
    }
    let len = check_len(0, i32::from_le_bytes(len_bytes))?;
    buf.clear();
    buf.extend_from_slice(&len_bytes);
    buf.resize(len, 0);
    if let Err(e) = read_full(r, &mut buf[4..]) {
        return Err(match e {
            ReadFull::Eof(n) => ReadDocError::Framing(FramingError::Truncated {
                offset: 0,
                len,
                available: 4 + n,
            }),
            ReadFull::Io(e) => ReadDocError::Io(e),
        });
    }
    if buf[len - 1] != 0 {
        return Err(ReadDocError::Framing(FramingError::BadTerminator {
            offset: 0,
            len,
        }));
    }
    Ok(true)
}

/// Error of [`read_doc`].
#[derive(Debug, thiserror::Error)]
pub enum ReadDocError {
    /// The bytes are not a whole document (offsets are relative to the document).
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// The stream could not be read.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// How [`read_full`] stopped early.
pub enum ReadFull {
    /// End of stream after this many bytes.
    Eof(usize),
    /// An I/O error.
    Io(io::Error),
}

/// Fills `buf` completely from `r`, reporting how far it got at a premature end of stream.
pub fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<(), ReadFull> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Err(ReadFull::Eof(got)),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFull::Io(e)),
        }
    }
    Ok(())
}

/// A document whose elements do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid element at {path}: {message}")]
pub struct DeepError {
    /// Dotted path of the element (`a.b.0`), or `(document)` for the document itself.
    pub path: String,
    /// What the BSON parser reported.
    pub message: String,
}

/// Maximum nesting accepted by [`deep_check`] (the server's own limit is 100 levels
/// for stored documents; the walk allows some headroom, but never unbounded recursion).
pub const MAX_DEPTH: usize = 200;

/// Walks every element of `doc`: types, lengths, UTF-8 of keys and strings, nested
/// documents and arrays. This is what `verify --deep` runs on each document.
pub fn deep_check(doc: &[u8]) -> Result<(), DeepError> {
    let raw = bson::RawDocument::from_bytes(doc).map_err(|e| DeepError {
        path: "(document)".into(),
        message: e.to_string(),
    })?;
    walk(raw, &mut String::new(), 0)
}

fn as_document<'a>(bytes: &'a [u8], path: &str) -> Result<&'a bson::RawDocument, DeepError> {
    bson::RawDocument::from_bytes(bytes).map_err(|e| DeepError {
        path: path.to_string(),
        message: e.to_string(),
    })
}

fn walk(doc: &bson::RawDocument, path: &mut String, depth: usize) -> Result<(), DeepError> {
    use bson::RawBsonRef;
    if depth > MAX_DEPTH {
        return Err(DeepError {
            path: path.clone(),
            message: format!("nesting deeper than {MAX_DEPTH} levels"),
        });
    }
    let base = path.len();
    for el in doc.iter_elements() {
        let el = el.map_err(|e| DeepError {
            path: if path.is_empty() {
                "(document)".into()
            } else {
                path.clone()
            },
            message: e.to_string(),
        })?;
        if base > 0 {
            path.push('.');
        }
        path.push_str(el.key().as_str());
        let value = el.value().map_err(|e| DeepError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        match value {
            RawBsonRef::Document(d) => walk(d, path, depth + 1)?,
            RawBsonRef::Array(a) => walk(as_document(a.as_bytes(), path)?, path, depth + 1)?,
            RawBsonRef::JavaScriptCodeWithScope(c) => walk(c.scope, path, depth + 1)?,
            _ => {}
        }
        path.truncate(base);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: bson::Document) -> Vec<u8> {
        bson::serialize_to_vec(&v).unwrap()
    }

    #[test]
    fn iterates_a_chain() {
        let mut buf = doc(bson::doc! {"a": 1});
        buf.extend(doc(bson::doc! {"b": "x"}));
        assert_eq!(check_chain(&buf), Ok(2));
        assert_eq!(check_chain(&[]), Ok(0));
    }

    #[test]
    fn reports_each_kind_of_break() {
        let one = doc(bson::doc! {"a": 1});
        let mut trailing = one.clone();
        trailing.extend([1, 2]);
        assert_eq!(
            check_chain(&trailing),
            Err(FramingError::Trailing {
                offset: one.len(),
                remaining: 2
            })
        );
        let mut truncated = one.clone();
        truncated.pop();
        assert!(matches!(
            check_chain(&truncated),
            Err(FramingError::Truncated { offset: 0, .. })
        ));
        let mut bad_term = one.clone();
        *bad_term.last_mut().unwrap() = 7;
        assert!(matches!(
            check_chain(&bad_term),
            Err(FramingError::BadTerminator { offset: 0, .. })
        ));
        assert!(matches!(
            check_chain(&[4, 0, 0, 0, 0]),
            Err(FramingError::BadLength { len: 4, .. })
        ));
        assert!(matches!(
            check_chain(&[0xff, 0xff, 0xff, 0x7f, 0]),
            Err(FramingError::BadLength { .. })
        ));
    }

    #[test]
    fn read_doc_refuses_huge_length_without_allocating() {
        let mut src: &[u8] = &[0xff, 0xff, 0xff, 0x7f, 0, 0];
        let mut buf = Vec::new();
        assert!(matches!(
            read_doc(&mut src, &mut buf),
            Err(ReadDocError::Framing(FramingError::BadLength { .. }))
        ));
        assert_eq!(buf.capacity(), 0);
    }

    #[test]
    fn read_doc_stream() {
        let mut data = doc(bson::doc! {"a": 1});
        data.extend(doc(bson::doc! {"b": 2}));
        let mut src = &data[..];
        let mut buf = Vec::new();
        assert!(read_doc(&mut src, &mut buf).unwrap());
        assert!(read_doc(&mut src, &mut buf).unwrap());
        assert!(!read_doc(&mut src, &mut buf).unwrap());
    }

    #[test]
    fn deep_check_finds_bad_utf8_in_nested_string() {
        let mut d = doc(bson::doc! {"a": {"s": "ok"}});
        let pos = d.windows(2).position(|w| w == b"ok").unwrap();
        d[pos] = 0xff;
        let err = deep_check(&d).unwrap_err();
        assert_eq!(err.path, "a.s");
        assert!(deep_check(&doc(bson::doc! {"a": [1, {"b": null}]})).is_ok());
    }
}
