//! Time-series buckets: unpacking `system.buckets.X` documents into measurements.
//!
//! # Why this exists
//!
//! A MongoDB time-series collection `X` stores its measurements grouped into *bucket
//! documents* in `system.buckets.X`, and mongodump dumps those buckets, not the
//! measurements. mongorestore inserts them back as buckets; a server that refuses
//! direct bucket inserts (error code 115, "a bucket cannot be inserted directly")
//! needs the measurements themselves inserted into `X`. [`unpack`] turns one bucket
//! back into its measurement documents, byte for byte what `find` on `X` returns.
//!
//! # Bucket layout (mongod 5.0 to 8.2)
//!
//! ```text
//! { _id: ObjectId,
//!   control: { version: 1 | 2 | 3, min: {..}, max: {..}, count?: int },
//!   meta?: <any>,                    // the metaField value shared by all measurements
//!   data: { <field>: <column>, .. } } // one column per field seen in the bucket
//! ```
//!
//! - **Version 1** (uncompressed): each column is a document whose keys are the row keys
//!   `"0"`, `"1"`, … of the measurements that have the field. The time column holds
//!   every row; its order is the measurement order.
//! - **Versions 2 and 3** (compressed; 3 only says the times are not sorted): each
//!   column is a *BSONColumn*, a BSON binary of subtype 7 holding one entry per
//!   measurement, in order; `control.count` gives the number of measurements. A
//!   *missing* entry means that measurement has no such field.
//!
//! # BSONColumn
//!
//! A BSONColumn is a sequence of *control bytes*, each followed by its payload, and a
//! final `0x00`:
//!
//! - `0x01..=0x1F`, `0x7F`, `0xFF`: a **literal**, a plain BSON element with an empty
//!   field name (`type 0x00 value`). It is the next value and the base for the deltas
//!   that follow it.
//! - `0x80..=0xDF`: **Simple-8b blocks**: the low nibble plus one is the number of 64-bit
//!   little-endian blocks that follow; the high nibble chooses how doubles are scaled
//!   (`0x8` stores a double's bits as an integer, `0x9..=0xD` multiply by 1, 10, 100,
//!   10⁴, 10⁸ and round). Each block packs several unsigned values; its low 4 bits are
//!   the *selector* saying how many values of how many bits (60×1 bit … 1×60 bits).
//!   Selectors 7 and 8 have a second nibble that can switch to *extended* layouts whose
//!   values carry a count of trailing zero bits (in bits, or in nibbles); selector 15 is
//!   a **run**: (second nibble + 1) × 120 repeats of the previous value. A value of
//!   all one bits is a **skip**: the field is missing there. Every other value is a
//!   zig-zag encoded signed delta from the previous value of the column: a plain delta
//!   for numbers, booleans, doubles (scaled) and 128-bit values (strings and binaries
//!   of at most 16 bytes, decimals); a delta of deltas for ObjectIds (timestamp and
//!   counter bytes), dates and timestamps. Values of other types (null, regex,
//!   objects, …) only allow a zero delta, which repeats the previous value.
//! - `0xF0`, `0xF1`, `0xF2`: **interleaved mode** for a run of objects (`0xF0`, of older
//!   servers, keeps arrays as plain values; `0xF1` also enters arrays; `0xF2` is for a
//!   run of arrays). A *reference object* follows, holding every field path of the run;
//!   each of its scalar leaves starts a sub-stream (decoded like a column of its own,
//!   with the reference value as its first base). Each object of the run takes one value
//!   from every sub-stream, in reference order, pulling the next control byte for a
//!   sub-stream whenever it runs dry; skipped leaves are left out, and so are
//!   sub-objects left empty (unless empty in the reference). A `0x00` where the first
//!   sub-stream needs a new control byte ends the run.
//!
//! The facts come from the MongoDB server's own description and decoder
//! (`src/mongo/bson/column/` in the server repository: `README.md`, `bsoncolumn.cpp`,
//! `simple8b.h`, `simple8b_helpers.h`, `simple8b_type_util.cpp`); this decoder follows
//! the server's `BSONColumn` iterator wherever formats allow a choice.
//!
//! # Measurements
//!
//! Measurement `i` is rebuilt as: the time field, then the meta field (when the
//! collection has one and the bucket has a `meta`; embedded documents in the meta value
//! get their keys sorted, recursively, as the server keeps them), then every other
//! column in the order of `data`, leaving out the columns missing at `i`.
//!
//! Columns are in the order the bucket first saw their fields, so a field missing from
//! the bucket's first measurements comes after the fields seen before it, whatever its
//! place in the measurement as inserted: the same order in which mongod's own unpacking
//! returns it. (A server that keeps the measurements themselves, like the SecantusDB
//! test server, returns the inserted order instead; only such measurements differ, and
//! only in field order.)
//!
//! # Hostile input
//!
//! Buckets come from backup files. [`unpack`] never panics, never recurses deeper than
//! [`MAX_DEPTH`], and bounds its work and memory: at most [`MAX_MEASUREMENTS`] per
//! bucket, at most [`MAX_OUTPUT_BYTES`] of decoded values and of output, and a bounded
//! number of decoding steps.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::docs::MAX_DOC_LEN;

/// Most measurements accepted in one bucket (mongod fills buckets up to 1000 by default).
pub const MAX_MEASUREMENTS: usize = 100_000;

/// Most bytes of decoded values, and separately of measurement documents, that one
/// bucket may unpack to.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024 * 1024;

/// Deepest nesting of documents followed in a reference object or a meta value.
pub const MAX_DEPTH: usize = 200;

/// Most decoding steps (values and interleaved leaves visited) spent on one bucket.
const MAX_WORK: u64 = 1 << 26;

/// Bookkeeping cost charged per stored value on top of its bytes.
const VALUE_OVERHEAD: usize = 32;

/// Why a bucket could not be unpacked, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    /// The bucket document, or a document inside it, is not well-formed BSON.
    #[error("malformed bucket document at byte {offset}: {reason}")]
    Malformed {
        /// Offset within the bucket document.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A field the bucket layout requires is missing or has the wrong type.
    #[error("bucket field `{field}` is missing or not {expected}")]
    MissingField {
        /// Dotted path of the field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// `control.version` is not 1, 2 or 3.
    #[error("unsupported bucket version {0} (known: 1, 2, 3)")]
    UnsupportedVersion(i64),
    /// `data` has no column for the time field.
    #[error("bucket has no column for the time field `{0}`")]
    NoTimeColumn(String),
    /// `data` holds the same column name twice.
    #[error("bucket data holds the column `{0}` twice")]
    DuplicateColumn(String),
    /// A time field or meta field name that cannot be a BSON key.
    #[error("field name {0:?} contains a 0x00 byte")]
    BadFieldName(String),
    /// One column does not decode.
    #[error("column `{field}`, value {position}, byte {offset} of the column: {reason}")]
    Column {
        /// Name of the column (the measurement field).
        field: String,
        /// Index of the value being decoded (the measurement position).
        position: usize,
        /// Offset within the column: the BSONColumn bytes (after the binary header) for
        /// versions 2 and 3, the column document for version 1.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A measurement position has no time value.
    #[error("measurement {position} has no value for the time field `{field}`")]
    MissingTime {
        /// The time field.
        field: String,
        /// Position of the measurement.
        position: usize,
    },
    /// `control.count` or the time column claims too many measurements.
    #[error("bucket holds {count} measurements, more than the {max} accepted")]
    TooManyMeasurements {
        /// The count found.
        count: u64,
        /// [`MAX_MEASUREMENTS`].
        max: usize,
    },
    /// The bucket has a `meta` value but the collection has no metaField.
    #[error("bucket has a meta value but the collection has no metaField")]
    UnexpectedMeta,
    /// One measurement would exceed the largest document size.
    #[error("measurement {position} would be {size} bytes, over the {max}-byte limit")]
    MeasurementTooLarge {
        /// Position of the measurement.
        position: usize,
        /// Its size in bytes.
        size: usize,
        /// The limit ([`MAX_DOC_LEN`]).
        max: usize,
    },
    /// All measurements together would exceed [`MAX_OUTPUT_BYTES`].
    #[error("the bucket unpacks to more than {max} bytes")]
    TooLarge {
        /// [`MAX_OUTPUT_BYTES`].
        max: usize,
    },
}

/// Unpacks one bucket document into its measurement documents (raw BSON), in position
/// order.
///
/// `time_field` and `meta_field` are the collection's `timeseries.timeField` and
/// `timeseries.metaField` options.
pub fn unpack(
    bucket: &[u8],
    time_field: &str,
    meta_field: Option<&str>,
) -> Result<Vec<Vec<u8>>, BucketError> {
    for name in std::iter::once(time_field).chain(meta_field) {
        if name.as_bytes().contains(&0) {
            return Err(BucketError::BadFieldName(name.to_string()));
        }
    }
    let top = elements(bucket).map_err(malformed)?;
    let find = |name: &[u8]| top.iter().find(|e| e.name == name);

    let control =
        find(b"control")
            .filter(|e| e.ty == T_OBJECT)
            .ok_or(BucketError::MissingField {
                field: "control",
                expected: "a document",
            })?;
    let control_elems = elements(control.value)
        .map_err(|(o, r)| malformed((offset_in(bucket, control.value) + o, r)))?;
    let version = control_elems
        .iter()
        .find(|e| e.name == b"version")
        .and_then(number)
        .ok_or(BucketError::MissingField {
            field: "control.version",
            expected: "a number",
        })?;
    let count = match control_elems.iter().find(|e| e.name == b"count") {
        None => None,
        Some(e) => Some(
            number(e)
                .filter(|&c| c >= 0)
                .ok_or(BucketError::MissingField {
                    field: "control.count",
                    expected: "a non-negative number",
                })? as u64,
        ),
    };
    let data = find(b"data")
        .filter(|e| e.ty == T_OBJECT)
        .ok_or(BucketError::MissingField {
            field: "data",
            expected: "a document",
        })?;
    let columns =
        elements(data.value).map_err(|(o, r)| malformed((offset_in(bucket, data.value) + o, r)))?;

    let meta = match (find(b"meta"), meta_field) {
        (None, _) => None,
        (Some(_), None) => return Err(BucketError::UnexpectedMeta),
        (Some(m), Some(name)) => {
            let mut value = Vec::with_capacity(m.value.len());
            sorted_value(m.ty, m.value, 0, &mut value)
                .map_err(|(o, r)| malformed((offset_in(bucket, m.value) + o, r)))?;
            Some((name.as_bytes(), m.ty, value))
        }
    };

    let mut seen = HashSet::with_capacity(columns.len());
    for c in &columns {
        if !seen.insert(c.name) {
            return Err(BucketError::DuplicateColumn(lossy(c.name)));
        }
    }
    let time_name = time_field.as_bytes();
    let time_col = columns
        .iter()
        .find(|c| c.name == time_name)
        .ok_or_else(|| BucketError::NoTimeColumn(time_field.to_string()))?;
    let others: Vec<&Elem> = columns.iter().filter(|c| c.name != time_name).collect();

    let mut budget = Budget::default();
    let (n, time, decoded) = match version {
        1 => unpack_v1_columns(time_col, &others, &mut budget)?,
        2 | 3 => {
            if let Some(c) = count
                && c > MAX_MEASUREMENTS as u64
            {
                return Err(BucketError::TooManyMeasurements {
                    count: c,
                    max: MAX_MEASUREMENTS,
                });
            }
            let limit = count.map_or(MAX_MEASUREMENTS, |c| c as usize);
            let (time, produced) = decode_binary_column(time_col, limit, &mut budget)?;
            let n = count.map_or(produced.min(MAX_MEASUREMENTS), |c| c as usize);
            let mut decoded = Vec::with_capacity(others.len());
            for c in &others {
                decoded.push(decode_binary_column(c, n, &mut budget)?.0);
            }
            (n, time, decoded)
        }
        v => return Err(BucketError::UnsupportedVersion(v)),
    };

    assemble(n, time_field, &time, meta.as_ref(), &others, &decoded)
}

/// Builds the measurement documents from decoded columns (each sorted by position).
fn assemble(
    n: usize,
    time_field: &str,
    time: &[(u32, Val<'_>)],
    meta: Option<&(&[u8], u8, Vec<u8>)>,
    others: &[&Elem<'_>],
    decoded: &[Vec<(u32, Val<'_>)>],
) -> Result<Vec<Vec<u8>>, BucketError> {
    let time_name = time_field.as_bytes();
    let meta_len = meta.map_or(0, |(name, _, v)| name.len() + 2 + v.len());
    let mut cursors = vec![0usize; decoded.len()];
    let mut out = Vec::with_capacity(n);
    let mut total = 0usize;
    for (position, t) in (0..n).zip(time.iter()) {
        if t.0 as usize != position {
            return Err(BucketError::MissingTime {
                field: time_field.to_string(),
                position,
            });
        }
        let mut size = 4 + time_name.len() + 2 + t.1.bytes().len() + meta_len + 1;
        for (j, col) in decoded.iter().enumerate() {
            if let Some((p, v)) = col.get(cursors[j])
                && *p as usize == position
            {
                size += others[j].name.len() + 2 + v.bytes().len();
            }
        }
        if size > MAX_DOC_LEN {
            return Err(BucketError::MeasurementTooLarge {
                position,
                size,
                max: MAX_DOC_LEN,
            });
        }
        total += size;
        if total > MAX_OUTPUT_BYTES {
            return Err(BucketError::TooLarge {
                max: MAX_OUTPUT_BYTES,
            });
        }
        let mut doc = Vec::with_capacity(size);
        doc.extend_from_slice(&(size as i32).to_le_bytes());
        put_element(&mut doc, t.1.ty, time_name, t.1.bytes());
        if let Some((name, ty, value)) = meta {
            put_element(&mut doc, *ty, name, value);
        }
        for (j, col) in decoded.iter().enumerate() {
            if let Some((p, v)) = col.get(cursors[j])
                && *p as usize == position
            {
                put_element(&mut doc, v.ty, others[j].name, v.bytes());
                cursors[j] += 1;
            }
        }
        doc.push(0);
        debug_assert_eq!(doc.len(), size);
        out.push(doc);
    }
    if out.len() < n {
        return Err(BucketError::MissingTime {
            field: time_field.to_string(),
            position: out.len(),
        });
    }
    Ok(out)
}

fn put_element(out: &mut Vec<u8>, ty: u8, name: &[u8], value: &[u8]) {
    out.push(ty);
    out.extend_from_slice(name);
    out.push(0);
    out.extend_from_slice(value);
}

/// Decoded time column, the other columns, and the measurement count.
type Columns<'a> = (usize, Vec<(u32, Val<'a>)>, Vec<Vec<(u32, Val<'a>)>>);

/// Version 1: columns are documents keyed by row key; the time column's order is the
/// measurement order and other columns are matched to it by row key.
fn unpack_v1_columns<'a>(
    time_col: &Elem<'a>,
    others: &[&Elem<'a>],
    budget: &mut Budget,
) -> Result<Columns<'a>, BucketError> {
    let column_err = |c: &Elem, offset: usize, position: usize, reason: &str| BucketError::Column {
        field: lossy(c.name),
        position,
        offset,
        reason: reason.to_string(),
    };
    let rows = |c: &Elem<'a>| -> Result<Vec<Elem<'a>>, BucketError> {
        if c.ty != T_OBJECT {
            return Err(column_err(c, 0, 0, "a version 1 column must be a document"));
        }
        elements(c.value).map_err(|(o, r)| column_err(c, o, 0, r))
    };

    let time_rows = rows(time_col)?;
    if time_rows.len() > MAX_MEASUREMENTS {
        return Err(BucketError::TooManyMeasurements {
            count: time_rows.len() as u64,
            max: MAX_MEASUREMENTS,
        });
    }
    let mut index: HashMap<&[u8], u32> = HashMap::with_capacity(time_rows.len());
    let mut time = Vec::with_capacity(time_rows.len());
    for (i, e) in time_rows.iter().enumerate() {
        if index.insert(e.name, i as u32).is_some() {
            return Err(column_err(time_col, e.offset, i, "row key appears twice"));
        }
        budget
            .charge(e.value.len())
            .map_err(|r| column_err(time_col, e.offset, i, r))?;
        time.push((i as u32, Val::borrowed(e.ty, e.value)));
    }

    let mut decoded = Vec::with_capacity(others.len());
    for c in others {
        let mut col = Vec::new();
        for e in rows(c)? {
            let Some(&p) = index.get(e.name) else {
                return Err(column_err(c, e.offset, 0, "row key has no time value"));
            };
            budget
                .charge(e.value.len())
                .map_err(|r| column_err(c, e.offset, p as usize, r))?;
            col.push((p, Val::borrowed(e.ty, e.value)));
        }
        col.sort_by_key(|(p, _)| *p);
        if let Some(w) = col.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(column_err(c, 0, w[0].0 as usize, "row key appears twice"));
        }
        decoded.push(col);
    }
    Ok((time_rows.len(), time, decoded))
}

/// Versions 2 and 3: decodes one BSONColumn; values at positions `limit` and beyond
/// must be skips. Returns the present values and the number of entries.
fn decode_binary_column<'a>(
    c: &Elem<'a>,
    limit: usize,
    budget: &mut Budget,
) -> Result<(Vec<(u32, Val<'a>)>, usize), BucketError> {
    let column_err = |position: usize, offset: usize, reason: String| BucketError::Column {
        field: lossy(c.name),
        position,
        offset,
        reason,
    };
    if c.ty != T_BINARY || c.value.len() < 5 || c.value[4] != 7 {
        return Err(column_err(
            0,
            0,
            "a version 2 or 3 column must be a BSONColumn (binary subtype 7)".into(),
        ));
    }
    let decoder = ColumnDecoder {
        col: &c.value[5..],
        pos: 0,
        out: Vec::new(),
        produced: 0,
        limit,
        budget,
    };
    decoder
        .run()
        .map_err(|e| column_err(e.position, e.offset, e.reason))
}

// ---------------------------------------------------------------------------------------
// Raw BSON
// ---------------------------------------------------------------------------------------

const T_DOUBLE: u8 = 0x01;
const T_STRING: u8 = 0x02;
const T_OBJECT: u8 = 0x03;
const T_ARRAY: u8 = 0x04;
const T_BINARY: u8 = 0x05;
const T_OID: u8 = 0x07;
const T_BOOL: u8 = 0x08;
const T_DATE: u8 = 0x09;
const T_CODE: u8 = 0x0D;
const T_INT32: u8 = 0x10;
const T_TIMESTAMP: u8 = 0x11;
const T_INT64: u8 = 0x12;
const T_DECIMAL: u8 = 0x13;

/// An error inside a document: offset relative to the document, and what.
type Fail = (usize, &'static str);

fn malformed((offset, reason): Fail) -> BucketError {
    BucketError::Malformed { offset, reason }
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// Offset of `inner` within `outer` (`inner` must be a sub-slice of `outer`).
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

fn le_i32(b: &[u8], at: usize) -> Option<i32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// The document that starts at `at` in `b`: its declared length must fit and it must
/// end with 0x00.
fn frame(b: &[u8], at: usize) -> Result<&[u8], Fail> {
    let len = le_i32(b, at).ok_or((at, "document length runs past the end"))?;
    if len < 5 {
        return Err((at, "document length below 5"));
    }
    let end = at
        .checked_add(len as usize)
        .filter(|&e| e <= b.len())
        .ok_or((at, "document runs past the end"))?;
    if b[end - 1] != 0 {
        return Err((end - 1, "document does not end with 0x00"));
    }
    Ok(&b[at..end])
}

/// Length of a value of type `ty` at the start of `b`, checked against `b`'s end.
fn value_len(ty: u8, b: &[u8]) -> Result<usize, &'static str> {
    const SHORT: &str = "value runs past the end";
    let need = |n: usize| if b.len() >= n { Ok(n) } else { Err(SHORT) };
    let string = |b: &[u8]| -> Result<usize, &'static str> {
        let n = le_i32(b, 0).ok_or(SHORT)?;
        if n < 1 {
            return Err("string length below 1");
        }
        let end = 4 + n as usize;
        if end > b.len() {
            return Err(SHORT);
        }
        if b[end - 1] != 0 {
            return Err("string does not end with 0x00");
        }
        Ok(end)
    };
    let cstring = |b: &[u8]| -> Result<usize, &'static str> {
        b.iter()
            .position(|&c| c == 0)
            .map(|p| p + 1)
            .ok_or("unterminated C string")
    };
    match ty {
        0x01 | 0x09 | 0x11 | 0x12 => need(8),
        0x02 | 0x0D | 0x0E => string(b),
        0x03 | 0x04 => {
            let n = le_i32(b, 0).ok_or(SHORT)?;
            if n < 5 {
                return Err("document length below 5");
            }
            let n = need(n as usize)?;
            if b[n - 1] != 0 {
                return Err("document does not end with 0x00");
            }
            Ok(n)
        }
        0x05 => {
            let n = le_i32(b, 0).ok_or(SHORT)?;
            if n < 0 {
                return Err("negative binary length");
            }
            need(5 + n as usize)
        }
        0x06 | 0x0A | 0x7F | 0xFF => Ok(0),
        0x07 => need(12),
        0x08 => need(1),
        0x0B => {
            let a = cstring(b)?;
            Ok(a + cstring(&b[a..])?)
        }
        0x0C => {
            let s = string(b)?;
            need(s + 12)
        }
        0x0F => {
            let n = le_i32(b, 0).ok_or(SHORT)?;
            if n < 14 {
                return Err("code with scope length below 14");
            }
            need(n as usize)
        }
        0x10 => need(4),
        0x13 => need(16),
        _ => Err("unknown BSON type"),
    }
}

/// One element of a raw document.
#[derive(Debug, Clone, Copy)]
struct Elem<'a> {
    ty: u8,
    name: &'a [u8],
    value: &'a [u8],
    /// Offset of the type byte within the document.
    offset: usize,
}

/// The elements of `doc`, which must be exactly one framed document.
fn elements(doc: &[u8]) -> Result<Vec<Elem<'_>>, Fail> {
    let declared = le_i32(doc, 0).ok_or((0, "document length runs past the end"))?;
    if declared < 5 || declared as usize != doc.len() || doc[doc.len() - 1] != 0 {
        return Err((0, "bad document framing"));
    }
    let end = doc.len() - 1;
    let mut out = Vec::new();
    let mut pos = 4;
    while pos < end {
        let ty = doc[pos];
        if ty == 0 {
            return Err((pos, "0x00 before the end of the document"));
        }
        let name_end = doc[pos + 1..end]
            .iter()
            .position(|&c| c == 0)
            .map(|p| pos + 1 + p)
            .ok_or((pos, "unterminated field name"))?;
        let start = name_end + 1;
        let len = value_len(ty, &doc[start..end]).map_err(|r| (pos, r))?;
        out.push(Elem {
            ty,
            name: &doc[pos + 1..name_end],
            value: &doc[start..start + len],
            offset: pos,
        });
        pos = start + len;
    }
    Ok(out)
}

/// A numeric element as an integer (int32, int64, or an integral double).
fn number(e: &Elem) -> Option<i64> {
    match e.ty {
        T_INT32 => le_i32(e.value, 0).map(i64::from),
        T_INT64 => Some(le_u64(e.value) as i64),
        T_DOUBLE => {
            let d = f64::from_bits(le_u64(e.value));
            (d.fract() == 0.0 && d.abs() < 9.0e15).then_some(d as i64)
        }
        _ => None,
    }
}

/// Copies a value, sorting the keys of every embedded document (arrays keep their
/// order), as the server normalises meta values.
fn sorted_value(ty: u8, value: &[u8], depth: usize, out: &mut Vec<u8>) -> Result<(), Fail> {
    if ty != T_OBJECT && ty != T_ARRAY {
        out.extend_from_slice(value);
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Err((0, "meta value nested too deeply"));
    }
    let mut elems = elements(value)?;
    if ty == T_OBJECT {
        elems.sort_by(|a, b| a.name.cmp(b.name));
    }
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    for e in elems {
        out.push(e.ty);
        out.extend_from_slice(e.name);
        out.push(0);
        sorted_value(e.ty, e.value, depth + 1, out).map_err(|(o, r)| (e.offset + o, r))?;
    }
    out.push(0);
    let len = (out.len() - start) as i32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Values and limits
// ---------------------------------------------------------------------------------------

/// A decoded value: a BSON type and the value bytes, borrowed from the bucket or built.
#[derive(Debug, Clone)]
struct Val<'a> {
    ty: u8,
    data: Data<'a>,
}

#[derive(Debug, Clone)]
enum Data<'a> {
    Borrowed(&'a [u8]),
    Owned(Rc<[u8]>),
}

impl<'a> Val<'a> {
    fn borrowed(ty: u8, value: &'a [u8]) -> Self {
        Val {
            ty,
            data: Data::Borrowed(value),
        }
    }

    fn owned(ty: u8, value: Vec<u8>) -> Self {
        Val {
            ty,
            data: Data::Owned(value.into()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match &self.data {
            Data::Borrowed(b) => b,
            Data::Owned(b) => b,
        }
    }
}

/// Work and memory spent on one bucket.
#[derive(Default)]
struct Budget {
    work: u64,
    bytes: usize,
}

impl Budget {
    fn step(&mut self, n: u64) -> Result<(), &'static str> {
        self.work += n;
        if self.work > MAX_WORK {
            return Err("bucket exceeds the decoding work limit");
        }
        Ok(())
    }

    fn charge(&mut self, value_len: usize) -> Result<(), &'static str> {
        self.bytes += value_len + VALUE_OVERHEAD;
        if self.bytes > MAX_OUTPUT_BYTES {
            return Err("bucket exceeds the decoded size limit");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Simple-8b
// ---------------------------------------------------------------------------------------

/// Scale index meaning "the double's bits as an integer".
const SCALE_MEMORY: u8 = 5;
/// Multipliers of scale indexes 0 to 4.
const SCALE_MULTIPLIER: [f64; 5] = [1.0, 10.0, 100.0, 10_000.0, 100_000_000.0];

/// Values per block and bits per value of base selectors 1 to 14.
const BASE_COUNT: [u8; 15] = [0, 60, 30, 20, 15, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1];
const BASE_BITS: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 60];
/// Selector 7, extensions 1 to 9: value bits (plus 4 bits counting trailing zero bits).
const SEVEN_COUNT: [u8; 10] = [0, 9, 8, 7, 6, 5, 4, 3, 2, 1];
const SEVEN_BITS: [u8; 10] = [0, 2, 3, 4, 5, 7, 10, 14, 24, 52];
/// Selector 8, extensions 1 to 7: value bits (plus 4 bits counting trailing zero nibbles).
const EIGHT_SMALL_COUNT: [u8; 8] = [0, 7, 6, 5, 4, 3, 2, 1];
const EIGHT_SMALL_BITS: [u8; 8] = [0, 4, 5, 7, 10, 14, 24, 52];
/// Selector 8, extensions 8 to 13: value bits (plus 5 bits counting trailing zero nibbles).
const EIGHT_LARGE_COUNT: [u8; 6] = [6, 5, 4, 3, 2, 1];
const EIGHT_LARGE_BITS: [u8; 6] = [4, 6, 9, 13, 23, 51];
/// Repeats per unit of a run block's count nibble.
const RLE_UNIT: u32 = 120;

/// How one Simple-8b block lays out its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// No block loaded.
    Empty,
    /// Repeats the previous value `count` times.
    Run { count: u32 },
    /// `count` slots of `width` bits from bit `shift`; the low `tz_bits` bits of a slot
    /// count trailing zeros, in units of `tz_unit` bits.
    Slots {
        count: u32,
        shift: u32,
        width: u32,
        tz_bits: u32,
        tz_unit: u32,
    },
}

fn block_shape(block: u64) -> Result<Shape, &'static str> {
    let selector = (block & 0xF) as usize;
    let ext = ((block >> 4) & 0xF) as usize;
    let slots = |count: u8, bits: u8, shift: u32, tz_bits: u32, tz_unit: u32| Shape::Slots {
        count: u32::from(count),
        shift,
        width: u32::from(bits) + tz_bits,
        tz_bits,
        tz_unit,
    };
    Ok(match (selector, ext) {
        (0, _) => return Err("invalid Simple-8b selector 0"),
        (15, _) => Shape::Run {
            count: (ext as u32 + 1) * RLE_UNIT,
        },
        // Selectors 7 and 8 keep their second nibble for extensions, even unextended.
        (7 | 8, 0) => slots(BASE_COUNT[selector], BASE_BITS[selector], 8, 0, 0),
        (7, 1..=9) => slots(SEVEN_COUNT[ext], SEVEN_BITS[ext], 8, 4, 1),
        (8, 1..=7) => slots(EIGHT_SMALL_COUNT[ext], EIGHT_SMALL_BITS[ext], 8, 4, 4),
        (8, 8..=13) => slots(
            EIGHT_LARGE_COUNT[ext - 8],
            EIGHT_LARGE_BITS[ext - 8],
            8,
            5,
            4,
        ),
        (7 | 8, _) => return Err("invalid Simple-8b selector extension"),
        _ => slots(BASE_COUNT[selector], BASE_BITS[selector], 4, 0, 0),
    })
}

/// Value of slot `index` of a `Slots` block; `None` for a skip. `wide` selects 128-bit
/// arithmetic (otherwise trailing-zero shifts wrap at 64 bits, as the server does).
fn slot_value(block: u64, shape: Shape, index: u32, wide: bool) -> Option<u128> {
    let Shape::Slots {
        shift,
        width,
        tz_bits,
        tz_unit,
        ..
    } = shape
    else {
        return None;
    };
    let mask = (1u64 << width) - 1;
    let raw = (block >> (shift + index * width)) & mask;
    if raw == mask {
        return None;
    }
    let value = raw >> tz_bits;
    let zeros = (raw & ((1u64 << tz_bits) - 1)) as u32 * tz_unit;
    Some(if wide {
        u128::from(value) << zeros
    } else {
        u128::from(value << (zeros % 64))
    })
}

fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn unzigzag128(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

// ---------------------------------------------------------------------------------------
// Per-type encodings of the server's Simple8bTypeUtil
// ---------------------------------------------------------------------------------------

/// ObjectId as a 64-bit integer: counter and timestamp bytes interleaved, low first.
fn encode_oid(b: &[u8]) -> i64 {
    i64::from_le_bytes([b[11], b[3], b[10], b[2], b[9], b[1], b[0], 0])
}

/// The ObjectId of `encoded` with the process-unique bytes of `last`.
fn decode_oid(encoded: i64, last: &[u8]) -> Vec<u8> {
    let e = encoded.to_le_bytes();
    let mut out = last[..12].to_vec();
    out[0] = e[6];
    out[1] = e[5];
    out[2] = e[3];
    out[3] = e[1];
    out[9] = e[4];
    out[10] = e[2];
    out[11] = e[0];
    out
}

/// A double as a scaled integer, if it round-trips exactly.
fn encode_double(value: f64, scale: u8) -> Option<i64> {
    if scale == SCALE_MEMORY {
        return Some(value.to_bits() as i64);
    }
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    let m = SCALE_MULTIPLIER[scale as usize];
    let scaled = value * m;
    if !(-LIMIT..=LIMIT).contains(&scaled) {
        return None;
    }
    let rounded = scaled.round() as i64;
    ((rounded as f64 / m).to_bits() == value.to_bits()).then_some(rounded)
}

fn decode_double(encoded: i64, scale: u8) -> f64 {
    if scale == SCALE_MEMORY {
        f64::from_bits(encoded as u64)
    } else {
        encoded as f64 / SCALE_MULTIPLIER[scale as usize]
    }
}

/// Up to 16 bytes as a little-endian 128-bit integer, zero padded.
fn le_u128_padded(b: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    a[..b.len()].copy_from_slice(b);
    u128::from_le_bytes(a)
}

/// A string of at most 16 bytes, reversed so that its last bytes are the low ones;
/// 0 for strings that cannot be encoded (longer, or starting with 0x00).
fn encode_string(s: &[u8]) -> i128 {
    if s.len() > 16 || s.first() == Some(&0) {
        return 0;
    }
    let mut rev = s.to_vec();
    rev.reverse();
    le_u128_padded(&rev) as i128
}

/// The string value bytes (int32 length, bytes, 0x00) of an encoded string.
fn decode_string(encoded: i128) -> Vec<u8> {
    let b = (encoded as u128).to_le_bytes();
    let len = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(len + 5);
    out.extend_from_slice(&(len as i32 + 1).to_le_bytes());
    out.extend(b[..len].iter().rev());
    out.push(0);
    out
}

// ---------------------------------------------------------------------------------------
// BSONColumn decoding
// ---------------------------------------------------------------------------------------

/// Where a column failed: the value index, the column offset, and what.
struct ColError {
    position: usize,
    offset: usize,
    reason: String,
}

/// How a stream turns deltas into values.
#[derive(Debug, Clone, Copy)]
enum Enc {
    /// 64-bit types. `value` is the last encoded value, or for delta-of-delta types
    /// (`dod`) the last delta, with the value in `dod_value`.
    I64 {
        value: i64,
        dod_value: i64,
        dod: bool,
        scale: u8,
    },
    /// Strings, code, binaries and decimals: the last encoded 128-bit value.
    I128 { value: i128 },
}

impl Enc {
    fn for_literal(v: &Val) -> Enc {
        let b = v.bytes();
        match v.ty {
            T_STRING | T_CODE => Enc::I128 {
                value: encode_string(&b[4..b.len() - 1]),
            },
            T_BINARY => Enc::I128 {
                value: if b.len() - 5 <= 16 {
                    le_u128_padded(&b[5..]) as i128
                } else {
                    0
                },
            },
            T_DECIMAL => Enc::I128 {
                value: le_u128_padded(b) as i128,
            },
            ty => {
                let (value, dod) = match ty {
                    T_OID => (encode_oid(b), true),
                    T_DATE => (le_u64(b) as i64, true),
                    T_TIMESTAMP => (le_u64(b) as i64, true),
                    T_BOOL => (i64::from(b[0] != 0), false),
                    T_INT32 => (i64::from(le_i32(b, 0).unwrap_or(0)), false),
                    T_INT64 => (le_u64(b) as i64, false),
                    _ => (0, false),
                };
                if dod {
                    Enc::I64 {
                        value: 0,
                        dod_value: value,
                        dod,
                        scale: SCALE_MEMORY,
                    }
                } else {
                    Enc::I64 {
                        value,
                        dod_value: 0,
                        dod,
                        scale: SCALE_MEMORY,
                    }
                }
            }
        }
    }
}

/// One stream of values: a whole column in regular mode, or one leaf of the reference
/// object in interleaved mode.
struct Stream<'a> {
    /// The last value, base of the next delta; `None` before any literal.
    last: Option<Val<'a>>,
    enc: Enc,
    /// Offset of the next block of the current control byte, and the end of its blocks.
    next_block: usize,
    blocks_end: usize,
    /// The block being read, where it is, its layout and the next slot in it.
    block: u64,
    block_offset: usize,
    shape: Shape,
    slot: u32,
    /// The last Simple-8b value read: what a run block repeats.
    prev: Option<u128>,
}

impl<'a> Stream<'a> {
    /// A stream whose base is `last` (a column start has none).
    fn new(last: Option<Val<'a>>, enc: Enc) -> Self {
        Stream {
            last,
            enc,
            next_block: 0,
            blocks_end: 0,
            block: 0,
            block_offset: 0,
            shape: Shape::Empty,
            slot: 0,
            prev: Some(0),
        }
    }

    fn start() -> Self {
        Stream::new(
            None,
            Enc::I64 {
                value: 0,
                dod_value: 0,
                dod: false,
                scale: SCALE_MEMORY,
            },
        )
    }

    fn from_literal(v: Val<'a>) -> Self {
        Stream::new(Some(v.clone()), Enc::for_literal(&v))
    }

    /// A literal replaces the base and drops the Simple-8b state.
    fn load_literal(&mut self, v: Val<'a>) {
        *self = Stream::from_literal(v);
    }

    /// Starts reading `n` blocks at `start` announced by `control`.
    fn load_blocks(&mut self, control: u8, start: usize, n: usize) -> Result<(), &'static str> {
        let scale = match control >> 4 {
            0x8 => SCALE_MEMORY,
            s @ 0x9..=0xD => s - 0x9,
            _ => return Err("invalid control byte"),
        };
        match &mut self.enc {
            Enc::I64 {
                value, scale: s, ..
            } => {
                match &self.last {
                    Some(v) if v.ty == T_DOUBLE => {
                        let d = f64::from_bits(le_u64(v.bytes()));
                        *value = encode_double(d, scale)
                            .ok_or("the previous double cannot be encoded at this scale")?;
                    }
                    _ if scale != SCALE_MEMORY => {
                        return Err("scaled control byte for values that are not doubles");
                    }
                    _ => {}
                }
                *s = scale;
            }
            Enc::I128 { .. } if scale != SCALE_MEMORY => {
                return Err("scaled control byte for 128-bit values");
            }
            Enc::I128 { .. } => {}
        }
        self.next_block = start;
        self.blocks_end = start + 8 * n;
        self.shape = Shape::Empty;
        self.slot = 0;
        Ok(())
    }

    /// The next Simple-8b value (`Some(None)` is a skip), or `None` when the blocks of
    /// the current control byte are used up.
    fn next_delta(&mut self, col: &[u8]) -> Result<Option<Option<u128>>, Fail> {
        loop {
            match self.shape {
                Shape::Run { count } if self.slot < count => {
                    self.slot += 1;
                    return Ok(Some(self.prev));
                }
                Shape::Slots { count, .. } if self.slot < count => {
                    let wide = matches!(self.enc, Enc::I128 { .. });
                    let v = slot_value(self.block, self.shape, self.slot, wide);
                    self.slot += 1;
                    self.prev = v;
                    return Ok(Some(v));
                }
                _ => {}
            }
            if self.next_block >= self.blocks_end {
                self.shape = Shape::Empty;
                return Ok(None);
            }
            let at = self.next_block;
            let block = col
                .get(at..at + 8)
                .map(le_u64)
                .ok_or((at, "block runs past the end"))?;
            self.shape = block_shape(block).map_err(|r| (at, r))?;
            self.block = block;
            self.block_offset = at;
            self.slot = 0;
            self.next_block += 8;
        }
    }

    /// Applies one Simple-8b value: `None` (a skip) or a delta from the last value.
    fn apply(&mut self, delta: Option<u128>) -> Result<Option<Val<'a>>, Fail> {
        let fail = |r| (self.block_offset, r);
        let Some(delta) = delta else {
            return Ok(None);
        };
        let Some(last) = &self.last else {
            // Deltas before any literal decode to missing values, as in the server.
            return Ok(None);
        };
        let v = match &mut self.enc {
            Enc::I64 {
                value,
                dod_value,
                dod,
                scale,
            } => {
                let delta = delta as u64;
                if !*dod && delta == 0 {
                    return Ok(Some(last.clone()));
                }
                *value = value.wrapping_add(unzigzag64(delta));
                let x = if *dod {
                    *dod_value = dod_value.wrapping_add(*value);
                    *dod_value
                } else {
                    *value
                };
                let b = last.bytes();
                let bytes = match last.ty {
                    T_DOUBLE => decode_double(x, *scale).to_le_bytes().to_vec(),
                    T_OID => decode_oid(x, b),
                    T_DATE | T_INT64 | T_TIMESTAMP => x.to_le_bytes().to_vec(),
                    T_BOOL => vec![u8::from(x != 0)],
                    T_INT32 => (x as i32).to_le_bytes().to_vec(),
                    _ => return Err(fail("non-zero delta for a type that only repeats")),
                };
                Val::owned(last.ty, bytes)
            }
            Enc::I128 { value } => {
                if delta == 0 {
                    return Ok(Some(last.clone()));
                }
                *value = value.wrapping_add(unzigzag128(delta));
                let b = last.bytes();
                let bytes = match last.ty {
                    T_STRING | T_CODE => decode_string(*value),
                    T_BINARY => {
                        let len = b.len() - 5;
                        if len > 16 {
                            return Err(fail("delta for a binary longer than 16 bytes"));
                        }
                        let mut out = b[..5].to_vec();
                        out.extend_from_slice(&(*value as u128).to_le_bytes()[..len]);
                        out
                    }
                    T_DECIMAL => (*value as u128).to_le_bytes().to_vec(),
                    _ => return Err(fail("non-zero delta for a type that only repeats")),
                };
                Val::owned(last.ty, bytes)
            }
        };
        self.last = Some(v.clone());
        Ok(Some(v))
    }
}

fn is_literal_control(c: u8) -> bool {
    c & 0xE0 == 0 || c == 0x7F || c == 0xFF
}

fn is_interleaved_control(c: u8) -> bool {
    matches!(c, 0xF0..=0xF2)
}

/// The literal element at `pos`: its value and its size in the column.
fn literal_at(col: &[u8], pos: usize) -> Result<(Val<'_>, usize), Fail> {
    let ty = col[pos];
    match col.get(pos + 1) {
        None => return Err((pos, "literal runs past the end")),
        Some(0) => {}
        Some(_) => return Err((pos, "literal has a field name")),
    }
    let len = value_len(ty, &col[pos + 2..]).map_err(|r| (pos, r))?;
    Ok((Val::borrowed(ty, &col[pos + 2..pos + 2 + len]), 2 + len))
}

/// One step of an interleaved object's reference layout.
enum Op<'a> {
    Enter { name: &'a [u8], ty: u8 },
    Leaf { name: &'a [u8], stream: usize },
    Exit { allow_empty: bool },
}

/// Walks a reference object: sub-documents (and arrays if `arrays`) are entered, every
/// other element starts a stream.
fn discover<'a>(
    doc: &'a [u8],
    name: &'a [u8],
    ty: u8,
    arrays: bool,
    depth: usize,
    ops: &mut Vec<Op<'a>>,
    streams: &mut Vec<Stream<'a>>,
) -> Result<(), Fail> {
    if depth >= MAX_DEPTH {
        return Err((0, "reference object nested too deeply"));
    }
    let allow_empty = doc.len() == 5;
    ops.push(Op::Enter { name, ty });
    for e in elements(doc)? {
        if e.ty == T_OBJECT || (arrays && e.ty == T_ARRAY) {
            discover(e.value, e.name, e.ty, arrays, depth + 1, ops, streams)
                .map_err(|(o, r)| (e.offset + o, r))?;
        } else {
            ops.push(Op::Leaf {
                name: e.name,
                stream: streams.len(),
            });
            streams.push(Stream::from_literal(Val::borrowed(e.ty, e.value)));
        }
    }
    ops.push(Op::Exit { allow_empty });
    Ok(())
}

struct ColumnDecoder<'a, 'b> {
    col: &'a [u8],
    pos: usize,
    out: Vec<(u32, Val<'a>)>,
    /// Entries produced so far, skips included: the position of the next one.
    produced: usize,
    /// Positions from here on must be skips.
    limit: usize,
    budget: &'b mut Budget,
}

impl<'a> ColumnDecoder<'a, '_> {
    fn err(&self, offset: usize, reason: impl Into<String>) -> ColError {
        ColError {
            position: self.produced,
            offset,
            reason: reason.into(),
        }
    }

    fn fail(&self, (offset, reason): Fail) -> ColError {
        self.err(offset, reason)
    }

    fn emit(&mut self, v: Option<Val<'a>>) -> Result<(), ColError> {
        self.budget.step(1).map_err(|r| self.err(self.pos, r))?;
        if let Some(v) = v {
            if self.produced >= self.limit {
                return Err(self.err(
                    self.pos,
                    format!("value beyond the bucket's {} measurements", self.limit),
                ));
            }
            self.budget
                .charge(v.bytes().len())
                .map_err(|r| self.err(self.pos, r))?;
            self.out.push((self.produced as u32, v));
        }
        self.produced += 1;
        Ok(())
    }

    /// Number of blocks announced by the Simple-8b control byte at `self.pos`, checked
    /// (with the control byte itself) against the column's end.
    fn blocks_at(&self) -> Result<usize, ColError> {
        let c = self.col[self.pos];
        if !(0x80..=0xDF).contains(&c) {
            return Err(self.err(self.pos, format!("invalid control byte 0x{c:02x}")));
        }
        let n = usize::from(c & 0x0F) + 1;
        if self.pos + 1 + 8 * n > self.col.len() {
            return Err(self.err(self.pos, "Simple-8b blocks run past the end"));
        }
        Ok(n)
    }

    fn run(mut self) -> Result<(Vec<(u32, Val<'a>)>, usize), ColError> {
        let col = self.col;
        let mut stream = Stream::start();
        loop {
            if let Some(d) = stream.next_delta(col).map_err(|f| self.fail(f))? {
                let v = stream.apply(d).map_err(|f| self.fail(f))?;
                self.emit(v)?;
                continue;
            }
            let Some(&c) = col.get(self.pos) else {
                return Err(self.err(self.pos, "column ends without its 0x00 terminator"));
            };
            if c == 0 {
                if self.pos + 1 != col.len() {
                    return Err(self.err(self.pos, "bytes after the column's 0x00 terminator"));
                }
                return Ok((self.out, self.produced));
            }
            if is_interleaved_control(c) {
                let last = self.interleaved()?;
                // Back in regular mode, the last object is the base for zero deltas.
                stream = Stream::new(last, Stream::start().enc);
            } else if is_literal_control(c) {
                let (v, size) = literal_at(col, self.pos).map_err(|f| self.fail(f))?;
                stream.load_literal(v.clone());
                self.emit(Some(v))?;
                self.pos += size;
            } else {
                let n = self.blocks_at()?;
                stream
                    .load_blocks(c, self.pos + 1, n)
                    .map_err(|r| self.err(self.pos, format!("{r} (0x{c:02x})")))?;
                self.pos += 1 + 8 * n;
            }
        }
    }

    /// Decodes an interleaved run starting at `self.pos`; returns its last object.
    fn interleaved(&mut self) -> Result<Option<Val<'a>>, ColError> {
        let col = self.col;
        let start = self.pos;
        let control = col[start];
        let arrays = control != 0xF0;
        let root_ty = if control == 0xF2 { T_ARRAY } else { T_OBJECT };
        let reference = frame(col, start + 1).map_err(|f| self.fail(f))?;
        let mut ops = Vec::new();
        let mut streams = Vec::new();
        discover(reference, b"", root_ty, arrays, 0, &mut ops, &mut streams)
            .map_err(|(o, r)| self.err(start + 1 + o, r))?;
        if streams.is_empty() {
            return Err(self.err(start, "interleaved reference object has no leaf"));
        }
        self.pos = start + 1 + reference.len();
        if col.get(self.pos).is_none_or(|&c| c == 0) {
            return Err(self.err(self.pos, "interleaved run holds no object"));
        }

        let mut last = None;
        let mut buf: Vec<u8> = Vec::new();
        // For each open sub-object: where its header starts and where its length goes.
        let mut open: Vec<(usize, usize)> = Vec::new();
        loop {
            self.budget
                .step(ops.len() as u64)
                .map_err(|r| self.err(self.pos, r))?;
            buf.clear();
            open.clear();
            for op in &ops {
                match *op {
                    Op::Enter { name, ty } => {
                        let header = buf.len();
                        if !open.is_empty() {
                            buf.push(ty);
                            buf.extend_from_slice(name);
                            buf.push(0);
                        }
                        open.push((header, buf.len()));
                        buf.extend_from_slice(&[0; 4]);
                    }
                    Op::Leaf { name, stream } => {
                        let v = match self.leaf(&mut streams, stream)? {
                            Leaf::Value(v) => v,
                            Leaf::End => return Ok(last),
                        };
                        if let Some(v) = v {
                            put_element(&mut buf, v.ty, name, v.bytes());
                        }
                    }
                    Op::Exit { allow_empty } => {
                        let Some((header, len_at)) = open.pop() else {
                            return Err(self.err(start, "unbalanced reference object"));
                        };
                        if !allow_empty && buf.len() == len_at + 4 {
                            buf.truncate(header);
                        } else {
                            buf.push(0);
                            let len = (buf.len() - len_at) as i32;
                            buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
                        }
                    }
                }
            }
            let obj = (!buf.is_empty()).then(|| Val::owned(root_ty, buf.clone()));
            self.emit(obj.clone())?;
            last = obj;
        }
    }

    /// The next value of leaf stream `i`, loading its next control byte if needed.
    fn leaf(&mut self, streams: &mut [Stream<'a>], i: usize) -> Result<Leaf<'a>, ColError> {
        let col = self.col;
        let s = &mut streams[i];
        if let Some(d) = s.next_delta(col).map_err(|f| self.fail(f))? {
            return Ok(Leaf::Value(s.apply(d).map_err(|f| self.fail(f))?));
        }
        let Some(&c) = col.get(self.pos) else {
            return Err(self.err(self.pos, "column ends inside an interleaved run"));
        };
        if c == 0 {
            if i != 0 {
                return Err(self.err(self.pos, "interleaved run ends in the middle of an object"));
            }
            self.pos += 1;
            for s in streams.iter_mut().skip(1) {
                if s.next_delta(col).map_err(|f| self.fail(f))?.is_some() {
                    return Err(self.err(self.pos, "interleaved run ends with values left over"));
                }
            }
            return Ok(Leaf::End);
        }
        if is_literal_control(c) {
            let (v, size) = literal_at(col, self.pos).map_err(|f| self.fail(f))?;
            s.load_literal(v.clone());
            self.pos += size;
            return Ok(Leaf::Value(Some(v)));
        }
        if is_interleaved_control(c) {
            return Err(self.err(self.pos, "interleaved run inside an interleaved run"));
        }
        let n = self.blocks_at()?;
        s.load_blocks(c, self.pos + 1, n)
            .map_err(|r| self.err(self.pos, format!("{r} (0x{c:02x})")))?;
        self.pos += 1 + 8 * n;
        let d = s
            .next_delta(col)
            .map_err(|f| self.fail(f))?
            .ok_or_else(|| self.err(self.pos, "control byte without values"))?;
        Ok(Leaf::Value(s.apply(d).map_err(|f| self.fail(f))?))
    }
}

enum Leaf<'a> {
    Value(Option<Val<'a>>),
    End,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::{DocIter, deep_check};
    use base64::Engine as _;
    use bson::spec::BinarySubtype;
    use bson::{Bson, Document, doc, oid::ObjectId};
    use sha2::{Digest, Sha256};

    // ----- helpers -----------------------------------------------------------------

    type Value = Option<(u8, Vec<u8>)>;

    fn docs_of(bytes: &[u8]) -> Vec<&[u8]> {
        DocIter::new(bytes).map(|d| d.expect("framing")).collect()
    }

    /// Type and value bytes of a BSON value.
    fn elem(v: impl Into<Bson>) -> (u8, Vec<u8>) {
        let bytes = doc! { "": v.into() }.to_vec().unwrap();
        (bytes[4], bytes[6..bytes.len() - 1].to_vec())
    }

    fn some(v: impl Into<Bson>) -> Value {
        Some(elem(v))
    }

    /// A literal with raw value bytes.
    fn raw_lit(ty: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![ty, 0];
        out.extend_from_slice(value);
        out
    }

    fn lit(v: impl Into<Bson>) -> Vec<u8> {
        let (ty, value) = elem(v);
        raw_lit(ty, &value)
    }

    /// A control byte with its blocks; `scale` is the high nibble (0x8 to 0xD).
    fn ctl(scale: u8, blocks: &[u64]) -> Vec<u8> {
        assert!((1..=16).contains(&blocks.len()));
        let mut out = vec![(scale << 4) | (blocks.len() as u8 - 1)];
        for b in blocks {
            out.extend_from_slice(&b.to_le_bytes());
        }
        out
    }

    /// Base selector block, every slot given (`None` is a skip).
    fn block(selector: u64, slots: &[Option<u64>]) -> u64 {
        let bits = u64::from(BASE_BITS[selector as usize]);
        assert_eq!(slots.len(), usize::from(BASE_COUNT[selector as usize]));
        let mut shift = if selector == 7 || selector == 8 { 8 } else { 4 };
        let mut b = selector;
        for s in slots {
            let raw = match s {
                Some(v) => {
                    assert!(*v < (1 << bits) - 1);
                    *v
                }
                None => (1 << bits) - 1,
            };
            b |= raw << shift;
            shift += bits;
        }
        b
    }

    /// Extended selector block: each slot is (significant bits, trailing-zero count).
    fn ext_block(selector: u64, ext: u64, slots: &[Option<(u64, u64)>]) -> u64 {
        let (count, bits, tz_bits) = match (selector, ext) {
            (7, 1..=9) => (SEVEN_COUNT[ext as usize], SEVEN_BITS[ext as usize], 4),
            (8, 1..=7) => (
                EIGHT_SMALL_COUNT[ext as usize],
                EIGHT_SMALL_BITS[ext as usize],
                4,
            ),
            (8, 8..=13) => (
                EIGHT_LARGE_COUNT[ext as usize - 8],
                EIGHT_LARGE_BITS[ext as usize - 8],
                5,
            ),
            _ => panic!("no such extension"),
        };
        assert_eq!(slots.len(), usize::from(count));
        let width = u64::from(bits) + tz_bits;
        let mut b = selector | (ext << 4);
        let mut shift = 8;
        for s in slots {
            let raw = match s {
                Some((v, tz)) => (v << tz_bits) | tz,
                None => (1 << width) - 1,
            };
            b |= raw << shift;
            shift += width;
        }
        b
    }

    fn rle(units: u64) -> u64 {
        ((units - 1) << 4) | 15
    }

    fn zz(v: i64) -> u64 {
        ((v << 1) ^ (v >> 63)) as u64
    }

    fn zz128(v: i128) -> u128 {
        ((v << 1) ^ (v >> 127)) as u128
    }

    fn column(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut out = parts.concat();
        out.push(0);
        out
    }

    /// Decodes a BSONColumn: one entry per position.
    fn decode(col: &[u8]) -> Result<Vec<Value>, String> {
        let mut budget = Budget::default();
        let d = ColumnDecoder {
            col,
            pos: 0,
            out: Vec::new(),
            produced: 0,
            limit: MAX_MEASUREMENTS,
            budget: &mut budget,
        };
        let (vals, n) = d
            .run()
            .map_err(|e| format!("{} (value {}, byte {})", e.reason, e.position, e.offset))?;
        let mut out = vec![None; n];
        for (p, v) in vals {
            out[p as usize] = Some((v.ty, v.bytes().to_vec()));
        }
        Ok(out)
    }

    fn binary_column(bytes: Vec<u8>) -> Bson {
        Bson::Binary(bson::Binary {
            subtype: BinarySubtype::Column,
            bytes,
        })
    }

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    fn to_docs(measurements: &[Vec<u8>]) -> Vec<Document> {
        measurements
            .iter()
            .map(|m| {
                deep_check(m).expect("valid BSON");
                Document::from_reader(&m[..]).unwrap()
            })
            .collect()
    }

    fn date(ms: i64) -> Bson {
        Bson::DateTime(bson::DateTime::from_millis(ms))
    }

    fn oid(hex: &str) -> Bson {
        Bson::ObjectId(ObjectId::parse_str(hex).unwrap())
    }

    fn fixture(rel: &str) -> Vec<u8> {
        let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    // ----- the mongodump fixture ----------------------------------------------------

    #[test]
    fn mongodump_fixture_unpacks_to_the_manifest_digest() {
        let buckets = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mongodump-100.18/dir/edge/system.buckets.series.bson"
        ))
        .unwrap();
        let mut all = Vec::new();
        for b in docs_of(&buckets) {
            all.extend(unpack(b, "t", Some("m")).unwrap());
        }
        assert_eq!(all.len(), 100);
        all.sort();
        let digest = Sha256::digest(all.concat());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "d40587704dfbbe236b7c225e1fd94d9eb312a053b522934f5b6c9eeabc02af7e"
        );
    }

    // ----- buckets generated by the test server ---------------------------------------

    /// Collections made by `oxidump-sample ts-fixtures` (`sample/src/tsfixtures.rs`): name, timeField, metaField.
    const GENERATED: &[(&str, &str, Option<&str>)] = &[
        ("ints", "t", Some("m")),
        ("doubles", "t", None),
        ("strings", "time", Some("meta")),
        ("objects", "ts", Some("tag")),
        ("types", "t", Some("m")),
        ("raw_odd", "t", None),
    ];

    #[test]
    fn generated_buckets_unpack_to_the_servers_measurements() {
        for &(name, time, meta) in GENERATED {
            let buckets = fixture(&format!("tests/data/tsbucket/{name}.buckets.bson"));
            let expected = fixture(&format!("tests/data/tsbucket/{name}.measurements.bson"));
            let mut got = Vec::new();
            for b in docs_of(&buckets) {
                let count = Document::from_reader(b)
                    .unwrap()
                    .get_document("control")
                    .unwrap()
                    .get_i32("count")
                    .unwrap();
                let ms = unpack(b, time, meta).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(ms.len(), count as usize, "{name}");
                for m in &ms {
                    deep_check(m).unwrap();
                }
                got.extend(ms);
            }
            let mut want: Vec<Vec<u8>> = docs_of(&expected).iter().map(|d| d.to_vec()).collect();
            assert_eq!(got.len(), want.len(), "{name}");
            got.sort();
            want.sort();
            if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
                panic!(
                    "{name}: unpacked measurements differ, first:\n{:?}\n{:?}",
                    Document::from_reader(&g[..]),
                    Document::from_reader(&w[..])
                );
            }
        }
    }

    // ----- buckets written by mongod (from the server's own tests) ------------------

    #[test]
    fn mongod_v3_bucket_with_unsorted_times() {
        let bucket = doc! {
            "_id": oid("630ea4802093f9983fc394dc"),
            "control": {"version": 3, "min": {}, "max": {}, "count": 2},
            "data": {
                "t": binary_column(b64("CQDolzLxggEAAID+fAAAAAAAAAA=")),
                "_id": binary_column(b64("BwBjD6v3w4hFb4rqTy2ATgAAAAAAAAAA")),
                "a": binary_column(b64("EAAAAAAAgC4AAAAAAAAAAA==")),
            }
        };
        let got = to_docs(&unpack(&bucket.to_vec().unwrap(), "t", None).unwrap());
        assert_eq!(
            got,
            vec![
                doc! {"t": date(1661904001000), "_id": oid("630fabf7c388456f8aea4f2d"), "a": 0},
                doc! {"t": date(1661904000000), "_id": oid("630fabf7c388456f8aea4f2f"), "a": 1},
            ]
        );
    }

    #[test]
    fn mongod_v2_bucket_with_scaled_doubles() {
        let bucket = doc! {
            "_id": oid("65a6eb806ffc9fa4280ecac4"),
            "control": {"version": 2, "min": {}, "max": {}, "count": 2},
            "meta": 0,
            "data": {
                "t": binary_column(b64("CQAYhggUjQEAAIAOAAAAAAAAAAA=")),
                "a": binary_column(b64("AQAAAAAAAAAAAJAuAAAAAAAAAAA=")),
                "_id": binary_column(b64("BwBlpuun5tLoSOCMN1CALgAAAAAAAAAA")),
            }
        };
        let got = to_docs(&unpack(&bucket.to_vec().unwrap(), "t", Some("m")).unwrap());
        let t = date(0x018d_1408_8618);
        assert_eq!(
            got,
            vec![
                doc! {"t": t.clone(), "m": 0, "a": 0.0, "_id": oid("65a6eba7e6d2e848e08c3750")},
                doc! {"t": t, "m": 0, "a": 1.0, "_id": oid("65a6eba7e6d2e848e08c3751")},
            ]
        );
    }

    #[test]
    fn mongod_v2_bucket_with_string_meta() {
        let bucket = doc! {
            "control": {"version": 2, "min": {}, "max": {}, "count": 1},
            "meta": "preUpgrade",
            "data": {
                "t": binary_column(b64("CQAAcHMxjwEAAAA=")),
                "_id": binary_column(b64("AQAAAAAAAADwPwA=")),
                "v": binary_column(b64("AgALAAAAcHJlVXBncmFkZQAA")),
            }
        };
        let got = to_docs(&unpack(&bucket.to_vec().unwrap(), "t", Some("m")).unwrap());
        assert_eq!(
            got,
            vec![
                doc! {"t": date(0x018f_3173_7000), "m": "preUpgrade", "_id": 1.0, "v": "preUpgrade"}
            ]
        );
    }

    // ----- Simple-8b ----------------------------------------------------------------

    /// Zig-zag decoding, written out independently of the decoder's.
    fn unzig(v: u64) -> i64 {
        if v.is_multiple_of(2) {
            (v / 2) as i64
        } else {
            -(((v - 1) / 2) as i64) - 1
        }
    }

    /// Expected int64 column: literal `base`, then the zig-zag deltas of `slots`.
    fn expected_i64(base: i64, slots: &[Option<u64>]) -> Vec<Value> {
        let mut acc = base;
        let mut out = vec![some(Bson::Int64(base))];
        for s in slots {
            out.push(s.map(|v| {
                acc = acc.wrapping_add(unzig(v));
                elem(Bson::Int64(acc))
            }));
        }
        out
    }

    #[test]
    fn every_base_selector_decodes_its_slots() {
        for sel in 1..=14u64 {
            let count = usize::from(BASE_COUNT[sel as usize]);
            let bits = u32::from(BASE_BITS[sel as usize]);
            let max = (1u64 << bits) - 2; // all ones is a skip
            let mut slots: Vec<Option<u64>> =
                (0..count).map(|i| Some(i as u64 % (max + 1))).collect();
            slots[0] = Some(max);
            if count > 1 {
                slots[count - 1] = None;
            }
            let col = column(&[lit(Bson::Int64(-5)), ctl(8, &[block(sel, &slots)])]);
            assert_eq!(
                decode(&col).unwrap(),
                expected_i64(-5, &slots),
                "selector {sel}"
            );
        }
    }

    #[test]
    fn extended_selectors_restore_trailing_zeros() {
        let mut cases: Vec<(u64, u64, u64, u32)> = Vec::new(); // selector, ext, tz, shift
        for ext in 1..=9 {
            cases.push((7, ext, 13, 13)); // trailing zeros in bits
        }
        for ext in 1..=7 {
            cases.push((8, ext, 9, 36)); // in nibbles
        }
        for ext in 8..=13 {
            cases.push((8, ext, 20, 80 % 64)); // 5-bit nibble count, wraps at 64 bits
        }
        for (sel, ext, tz, shift) in cases {
            let (count, bits) = match (sel, ext) {
                (7, e) => (SEVEN_COUNT[e as usize], SEVEN_BITS[e as usize]),
                (_, e @ 1..=7) => (EIGHT_SMALL_COUNT[e as usize], EIGHT_SMALL_BITS[e as usize]),
                (_, e) => (
                    EIGHT_LARGE_COUNT[e as usize - 8],
                    EIGHT_LARGE_BITS[e as usize - 8],
                ),
            };
            let v = (1u64 << (bits - 1)) | 1;
            let mut slots = vec![Some((v, tz)); usize::from(count)];
            if count > 1 {
                slots[0] = Some((0, 0));
                slots[usize::from(count) - 1] = None;
            }
            let col = column(&[lit(Bson::Int64(0)), ctl(8, &[ext_block(sel, ext, &slots)])]);
            let deltas: Vec<Option<u64>> =
                slots.iter().map(|s| s.map(|(v, _)| v << shift)).collect();
            assert_eq!(
                decode(&col).unwrap(),
                expected_i64(0, &deltas),
                "selector {sel} extension {ext}"
            );
        }
    }

    #[test]
    fn wide_values_shift_trailing_zeros_past_64_bits() {
        let zero = Bson::Decimal128(bson::Decimal128::from_bytes([0; 16]));
        let v = (1u64 << 50) | 0b101;
        let col = column(&[lit(zero), ctl(8, &[ext_block(8, 13, &[Some((v, 31))])])]);
        let delta = u128::from(v) << 124;
        let want = unzig128(delta) as u128;
        assert_eq!(
            decode(&col).unwrap()[1],
            some(Bson::Decimal128(bson::Decimal128::from_bytes(
                want.to_le_bytes()
            )))
        );
    }

    fn unzig128(v: u128) -> i128 {
        if v.is_multiple_of(2) {
            (v / 2) as i128
        } else {
            -(((v - 1) / 2) as i128) - 1
        }
    }

    #[test]
    fn runs_repeat_the_previous_simple8b_value() {
        let one = Some(zz(1));
        // A run after two +1 deltas: 120 more +1 deltas.
        let col = column(&[lit(10), ctl(8, &[block(13, &[one, one]), rle(1)])]);
        let got = decode(&col).unwrap();
        let want: Vec<Value> = (10..=132).map(|i: i32| some(i)).collect();
        assert_eq!(got, want);

        // A run first after a literal repeats 0: the literal itself.
        let got = decode(&column(&[lit("x"), ctl(8, &[rle(2)])])).unwrap();
        assert_eq!(got, vec![some("x"); 241]);

        // A run opening the next control byte repeats the last value of the one before.
        let col = column(&[
            lit(Bson::Int64(0)),
            ctl(8, &[block(14, &[Some(zz(2))])]),
            ctl(8, &[rle(16)]),
        ]);
        let got = decode(&col).unwrap();
        assert_eq!(got.len(), 2 + 1920);
        assert_eq!(got.last().unwrap(), &some(Bson::Int64(2 * 1921)));

        // A run of skips.
        let col = column(&[lit(true), ctl(8, &[block(14, &[None]), rle(1)])]);
        let got = decode(&col).unwrap();
        assert_eq!(got.len(), 122);
        assert!(got[1..].iter().all(Option::is_none));
    }

    // ----- value types ----------------------------------------------------------------

    #[test]
    fn doubles_follow_their_scale() {
        let d = |v: f64| some(v);
        let slots = [Some(zz(1)), Some(zz(1)), None, Some(zz(-3))];
        // 1.5 at scale 10: 15, 16, 17, -, 14.
        let run = [lit(1.5), ctl(0xA, &[block(11, &slots)])];
        assert_eq!(
            decode(&column(&run)).unwrap(),
            vec![d(1.5), d(1.6), d(1.7), None, d(1.4)]
        );
        // The next control byte rescales the last value: 1.4 at scale 100 is 140.
        let mut more = run.to_vec();
        more.push(ctl(0xB, &[block(14, &[Some(zz(5))])]));
        assert_eq!(decode(&column(&more)).unwrap()[5], d(1.45));
        // ...but 1.4 has no exact encoding at scale 1.
        let mut bad = run.to_vec();
        bad.push(ctl(0x9, &[block(14, &[Some(zz(5))])]));
        assert!(
            decode(&column(&bad))
                .unwrap_err()
                .contains("cannot be encoded")
        );
        // Scale 10^8 and 10^4.
        let col = column(&[lit(0.5), ctl(0xD, &[block(14, &[Some(zz(1))])])]);
        assert_eq!(decode(&col).unwrap()[1], d(0.500_000_01));
        let col = column(&[lit(-2.0), ctl(0xC, &[block(14, &[Some(zz(-1))])])]);
        assert_eq!(decode(&col).unwrap()[1], d(-2.0001));
        // Raw bits: NaN payloads and -0.0 survive.
        let nan = f64::from_bits(0x7ff8_0000_0000_0000);
        let col = column(&[lit(nan), ctl(8, &[block(13, &[Some(zz(1)), Some(0)])])]);
        let got = decode(&col).unwrap();
        assert_eq!(
            got[1],
            Some((T_DOUBLE, 0x7ff8_0000_0000_0001u64.to_le_bytes().to_vec()))
        );
        assert_eq!(got[2], got[1]);
        let col = column(&[lit(-0.0), ctl(8, &[block(14, &[Some(0)])])]);
        assert_eq!(
            decode(&col).unwrap()[1],
            Some((T_DOUBLE, (-0.0f64).to_le_bytes().to_vec()))
        );
        // Scaled control bytes are for doubles only.
        let col = column(&[lit(1), ctl(0x9, &[block(14, &[Some(0)])])]);
        assert!(decode(&col).unwrap_err().contains("not doubles"));
    }

    #[test]
    fn dates_timestamps_and_object_ids_use_delta_of_delta() {
        let dods = [Some(zz(10)), Some(0), Some(0), Some(zz(-10))];
        let col = column(&[lit(date(1000)), ctl(8, &[block(11, &dods)])]);
        let want: Vec<Value> = [1000, 1010, 1020, 1030, 1030]
            .iter()
            .map(|&ms| some(date(ms)))
            .collect();
        assert_eq!(decode(&col).unwrap(), want);

        let ts = |t, i| {
            Bson::Timestamp(bson::Timestamp {
                time: t,
                increment: i,
            })
        };
        let col = column(&[
            lit(ts(5, 1)),
            ctl(8, &[block(12, &[Some(zz(1)), Some(0), None])]),
        ]);
        assert_eq!(
            decode(&col).unwrap(),
            vec![some(ts(5, 1)), some(ts(5, 2)), some(ts(5, 3)), None]
        );

        // +1 on the counter, then the delta repeats; the process-unique bytes stay.
        let col = column(&[
            lit(oid("65a6eba7e6d2e848e08c3750")),
            ctl(8, &[block(13, &[Some(zz(1)), Some(0)])]),
        ]);
        assert_eq!(
            decode(&col).unwrap(),
            vec![
                some(oid("65a6eba7e6d2e848e08c3750")),
                some(oid("65a6eba7e6d2e848e08c3751")),
                some(oid("65a6eba7e6d2e848e08c3752")),
            ]
        );
        // The timestamp bytes are interleaved above the counter's low byte.
        let col = column(&[
            lit(oid("00000001aaaaaaaaaa000000")),
            ctl(8, &[block(14, &[Some(zz(256))])]),
        ]);
        assert_eq!(
            decode(&col).unwrap()[1],
            some(oid("00000002aaaaaaaaaa000000"))
        );
    }

    #[test]
    fn booleans_and_integers_take_plain_deltas() {
        let col = column(&[
            lit(true),
            ctl(8, &[block(12, &[Some(zz(-1)), Some(zz(1)), Some(0)])]),
        ]);
        assert_eq!(
            decode(&col).unwrap(),
            vec![some(true), some(false), some(true), some(true)]
        );
        // int32 values wrap like the server's.
        let col = column(&[lit(i32::MAX), ctl(8, &[block(14, &[Some(zz(1))])])]);
        assert_eq!(decode(&col).unwrap()[1], some(i32::MIN));
        let col = column(&[
            lit(Bson::Int64(i64::MIN)),
            ctl(8, &[block(14, &[Some(zz(-1))])]),
        ]);
        assert_eq!(decode(&col).unwrap()[1], some(Bson::Int64(i64::MAX)));
    }

    /// Independent statement of the 128-bit string encoding: bytes reversed, little-endian.
    fn string_number(s: &str) -> i128 {
        let mut b = [0u8; 16];
        for (i, c) in s.bytes().rev().enumerate() {
            b[i] = c;
        }
        i128::from_le_bytes(b)
    }

    #[test]
    fn strings_binaries_and_decimals_take_128_bit_deltas() {
        let step =
            |from: &str, to: &str| Some(zz128(string_number(to) - string_number(from)) as u64);
        let blocks = [
            block(14, &[step("abc", "abd")]),
            block(14, &[step("abd", "ab")]),
            block(14, &[step("ab", "")]),
            block(13, &[Some(0), None]),
        ];
        let col = column(&[lit("abc"), ctl(8, &blocks)]);
        assert_eq!(
            decode(&col).unwrap(),
            vec![
                some("abc"),
                some("abd"),
                some("ab"),
                some(""),
                some(""),
                None
            ]
        );
        // Up to 16 bytes; a longer literal is a base of 0 for the next delta.
        let col = column(&[
            lit("0123456789abcdef"),
            ctl(8, &[block(14, &[Some(zz(1))])]),
        ]);
        assert_eq!(decode(&col).unwrap()[1], some("0123456789abcdeg"));
        let long = "a string longer than sixteen bytes";
        let col = column(&[lit(long), ctl(8, &[block(13, &[Some(0), step("", "xy")])])]);
        assert_eq!(
            decode(&col).unwrap(),
            vec![some(long), some(long), some("xy")]
        );
        // JavaScript code is a string too.
        let col = column(&[
            lit(Bson::JavaScriptCode("f()".into())),
            ctl(8, &[block(14, &[step("f()", "g()")])]),
        ]);
        assert_eq!(
            decode(&col).unwrap()[1],
            some(Bson::JavaScriptCode("g()".into()))
        );

        let bin = |b: &[u8], subtype: u8| {
            Bson::Binary(bson::Binary {
                subtype: BinarySubtype::from(subtype),
                bytes: b.to_vec(),
            })
        };
        let col = column(&[
            lit(bin(&[1, 2, 3], 0x80)),
            ctl(8, &[block(13, &[Some(zz(1)), Some(zz(256))])]),
        ]);
        assert_eq!(
            decode(&col).unwrap(),
            vec![
                some(bin(&[1, 2, 3], 0x80)),
                some(bin(&[2, 2, 3], 0x80)),
                some(bin(&[2, 3, 3], 0x80))
            ]
        );
        let col = column(&[
            lit(bin(&[7; 17], 0)),
            ctl(8, &[block(13, &[Some(0), Some(zz(1))])]),
        ]);
        assert!(decode(&col).unwrap_err().contains("longer than 16"));

        let dec = |b: [u8; 16]| Bson::Decimal128(bson::Decimal128::from_bytes(b));
        let mut one = [0u8; 16];
        one[0] = 1;
        one[14] = 0x40;
        one[15] = 0x30; // 1E+0
        let mut two = one;
        two[0] = 2;
        let col = column(&[lit(dec(one)), ctl(8, &[block(14, &[Some(zz(1))])])]);
        assert_eq!(decode(&col).unwrap(), vec![some(dec(one)), some(dec(two))]);
    }

    #[test]
    fn other_types_only_repeat() {
        let regex = raw_lit(0x0B, b"^a\0i\0");
        let symbol = raw_lit(0x0E, b"\x04\0\0\0abc\0");
        let mut pointer = b"\x08\0\0\0db.coll\0".to_vec();
        pointer.extend(0..12u8);
        let pointer = raw_lit(0x0C, &pointer);
        let scope = raw_lit(0x0F, b"\x0f\0\0\0\x02\0\0\0x\0\x05\0\0\0\0");
        let literals = [
            lit(Bson::Null),
            lit(Bson::MinKey),
            lit(Bson::MaxKey),
            lit(Bson::Undefined),
            lit(doc! {"a": 1}),
            lit(Bson::Array(vec![1.into(), "x".into()])),
            regex,
            symbol,
            pointer,
            scope,
        ];
        for l in literals {
            let col = column(&[l.clone(), ctl(8, &[block(12, &[Some(0), None, Some(0)])])]);
            let got = decode(&col).unwrap();
            let first = got[0].clone();
            assert!(first.is_some());
            assert_eq!(
                got,
                vec![first.clone(), first.clone(), None, first],
                "{l:02x?}"
            );
            let col = column(&[l.clone(), ctl(8, &[block(14, &[Some(zz(1))])])]);
            assert!(
                decode(&col).unwrap_err().contains("only repeats"),
                "{l:02x?}"
            );
        }
    }

    #[test]
    fn values_before_the_first_literal_are_missing() {
        let col = column(&[ctl(8, &[block(12, &[None, Some(0), Some(zz(7))])]), lit(3)]);
        assert_eq!(decode(&col).unwrap(), vec![None, None, None, some(3)]);
        let col = column(&[ctl(8, &[block(14, &[None])])]);
        assert_eq!(decode(&col).unwrap(), vec![None]);
        assert_eq!(decode(&[0]).unwrap(), vec![]);
    }

    #[test]
    fn literals_restart_the_deltas() {
        let col = column(&[
            lit(5),
            ctl(8, &[block(14, &[Some(zz(1))])]),
            lit("s"),
            lit(date(7)),
            ctl(8, &[block(13, &[Some(zz(3)), Some(0)])]),
            lit(1.0),
            ctl(8, &[block(14, &[Some(0)])]),
        ]);
        assert_eq!(
            decode(&col).unwrap(),
            vec![
                some(5),
                some(6),
                some("s"),
                some(date(7)),
                some(date(10)),
                some(date(13)),
                some(1.0),
                some(1.0)
            ]
        );
    }

    #[test]
    fn malformed_columns_are_errors() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "without its 0x00"),
            (lit(1), "without its 0x00"),
            (vec![0, 0], "after the column"),
            (column(&[lit(1), ctl(8, &[0])]), "selector 0"),
            (column(&[lit(1), ctl(8, &[(10 << 4) | 7])]), "extension"),
            (column(&[lit(1), ctl(8, &[(14 << 4) | 8])]), "extension"),
            (column(&[lit(1), vec![0x81, 0, 0]]), "run past the end"),
            (column(&[lit(1), vec![0x20]]), "invalid control byte 0x20"),
            (column(&[lit(1), vec![0xE0]]), "invalid control byte"),
            (column(&[lit(1), vec![0xF3]]), "invalid control byte"),
            (
                column(&[vec![0x02, 0x01, 0x02, 0, 0, 0, b'a', 0]]),
                "field name",
            ),
            (column(&[vec![0x14, 0]]), "unknown BSON type"),
            (column(&[vec![0x02, 0, 0, 0, 0, 0]]), "string length"),
            (column(&[vec![0x03, 0, 9, 0, 0, 0, 0]]), "past the end"),
            (column(&[vec![0xF1, 5, 0, 0, 0, 0]]), "no leaf"),
            (
                column(&[vec![0xF1], doc! {"a": 1}.to_vec().unwrap()]),
                "holds no object",
            ),
        ];
        for (col, want) in cases {
            let err = decode(&col).unwrap_err();
            assert!(err.contains(want), "{col:02x?}: {err}");
        }
    }

    // ----- interleaved mode ------------------------------------------------------------

    fn interleaved(control: u8, reference: Document, parts: &[Vec<u8>]) -> Vec<u8> {
        let mut all = vec![vec![control], reference.to_vec().unwrap()];
        all.extend_from_slice(parts);
        column(&all)
    }

    #[test]
    fn interleaved_objects_and_arrays() {
        let reference = doc! {"a": 1, "b": {"c": Bson::Int64(10)}, "d": [5]};
        let col = interleaved(
            0xF1,
            reference,
            &[
                ctl(8, &[block(12, &[Some(0), Some(zz(1)), None])]), // a
                ctl(8, &[block(12, &[None, None, Some(zz(5))])]),    // b.c
                ctl(8, &[block(12, &[Some(0), Some(0), Some(0)])]),  // d.0
                vec![0],                                             // end of the run
                ctl(8, &[block(13, &[Some(0), None])]),              // repeat, skip
            ],
        );
        let o3 = doc! {"b": {"c": Bson::Int64(15)}, "d": [5]};
        assert_eq!(
            decode(&col).unwrap(),
            vec![
                some(doc! {"a": 1, "d": [5]}),
                some(doc! {"a": 2, "d": [5]}),
                some(o3.clone()),
                some(o3),
                None,
            ]
        );
    }

    #[test]
    fn legacy_interleaving_keeps_arrays_whole() {
        let col = interleaved(
            0xF0,
            doc! {"x": [1, 2], "y": 3},
            &[
                ctl(8, &[block(13, &[Some(0), Some(0)])]),
                ctl(8, &[block(13, &[Some(0), Some(zz(1))])]),
                vec![0],
            ],
        );
        assert_eq!(
            decode(&col).unwrap(),
            vec![
                some(doc! {"x": [1, 2], "y": 3}),
                some(doc! {"x": [1, 2], "y": 4})
            ]
        );
    }

    #[test]
    fn interleaved_array_root() {
        let col = interleaved(
            0xF2,
            doc! {"0": 1, "1": {"k": "s"}},
            &[
                ctl(8, &[block(13, &[Some(0), Some(zz(2))])]),
                ctl(8, &[block(13, &[Some(0), None])]),
                vec![0],
            ],
        );
        assert_eq!(
            decode(&col).unwrap(),
            vec![
                some(Bson::Array(vec![1.into(), doc! {"k": "s"}.into()])),
                some(Bson::Array(vec![3.into()])),
            ]
        );
    }

    #[test]
    fn interleaved_leaves_can_take_literals() {
        let col = interleaved(
            0xF1,
            doc! {"a": 1, "b": 2},
            &[
                ctl(8, &[block(14, &[Some(0)])]),
                ctl(8, &[block(13, &[Some(0), Some(zz(1))])]),
                lit("hi"),
                vec![0],
            ],
        );
        assert_eq!(
            decode(&col).unwrap(),
            vec![some(doc! {"a": 1, "b": 2}), some(doc! {"a": "hi", "b": 3})]
        );
    }

    #[test]
    fn interleaved_empty_and_missing_objects() {
        // An empty sub-object of the reference is always there.
        let col = interleaved(
            0xF1,
            doc! {"e": {}, "a": 1},
            &[ctl(8, &[block(13, &[Some(0), None])]), vec![0]],
        );
        assert_eq!(
            decode(&col).unwrap(),
            vec![some(doc! {"e": {}, "a": 1}), some(doc! {"e": {}})]
        );
        // An object with every leaf skipped is missing; a zero delta repeats the
        // reference value.
        let col = interleaved(
            0xF1,
            doc! {"a": 1},
            &[ctl(8, &[block(13, &[None, Some(0)])]), vec![0]],
        );
        assert_eq!(decode(&col).unwrap(), vec![None, some(doc! {"a": 1})]);
    }

    #[test]
    fn interleaved_runs_must_end_cleanly() {
        // b still has a value when a's stream ends the run.
        let col = interleaved(
            0xF1,
            doc! {"a": 1, "b": 2},
            &[
                ctl(8, &[block(14, &[Some(0)])]),
                ctl(8, &[block(13, &[Some(0), Some(0)])]),
                vec![0],
            ],
        );
        assert!(decode(&col).unwrap_err().contains("left over"));
        // The run ends where b needs a control byte.
        let col = interleaved(
            0xF1,
            doc! {"a": 1, "b": 2},
            &[
                ctl(8, &[block(13, &[Some(0), Some(0)])]),
                ctl(8, &[block(14, &[Some(0)])]),
                vec![0],
            ],
        );
        assert!(decode(&col).unwrap_err().contains("middle of an object"));
        // Interleaved inside interleaved.
        let col = interleaved(0xF1, doc! {"a": 1}, &[vec![0xF1]]);
        assert!(decode(&col).unwrap_err().contains("inside an interleaved"));
    }

    // ----- whole buckets -----------------------------------------------------------------

    fn bytes(d: Document) -> Vec<u8> {
        d.to_vec().unwrap()
    }

    #[test]
    fn version_1_buckets_and_meta_normalisation() {
        let bucket = doc! {
            "_id": oid("65a6eb806ffc9fa4280ecac4"),
            "control": {"version": 1, "min": {}, "max": {}},
            "meta": {"b": 1, "a": {"d": 1, "c": [{"z": 1, "y": 2}, 3]}},
            "data": {
                "_id": {"0": 1, "1": 2},
                "time": {"0": date(1), "1": date(2)},
                "x": {"1": "only in the second"},
            }
        };
        let got = to_docs(&unpack(&bytes(bucket), "time", Some("mm")).unwrap());
        let meta = doc! {"a": {"c": [{"y": 2, "z": 1}, 3], "d": 1}, "b": 1};
        assert_eq!(
            got,
            vec![
                doc! {"time": date(1), "mm": meta.clone(), "_id": 1},
                doc! {"time": date(2), "mm": meta, "_id": 2, "x": "only in the second"},
            ]
        );
        // Row keys out of order: the time column gives the order.
        let bucket = doc! {
            "control": {"version": 1},
            "data": {"_id": {"1": 1, "0": 2}, "time": {"1": date(1), "0": date(2)}},
        };
        assert_eq!(
            to_docs(&unpack(&bytes(bucket), "time", None).unwrap()),
            vec![
                doc! {"time": date(1), "_id": 1},
                doc! {"time": date(2), "_id": 2}
            ]
        );
    }

    /// A version 2 bucket with `count` measurements and these columns.
    fn v2(count: Option<i32>, meta: Option<Bson>, columns: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
        let mut control = doc! {"version": 2, "min": {}, "max": {}};
        if let Some(c) = count {
            control.insert("count", c);
        }
        let mut d = doc! {"_id": oid("65a6eb806ffc9fa4280ecac4"), "control": control};
        if let Some(m) = meta {
            d.insert("meta", m);
        }
        let mut data = Document::new();
        for (name, col) in columns {
            data.insert(name, binary_column(col));
        }
        d.insert("data", data);
        bytes(d)
    }

    #[test]
    fn compressed_bucket_with_every_encoding() {
        let times = column(&[
            lit(date(1_000_000)),
            ctl(
                8,
                &[block(11, &[Some(zz(1000)), Some(0), Some(0), Some(0)])],
            ),
        ]);
        let values = column(&[
            lit(1.5),
            ctl(0xA, &[block(12, &[Some(zz(1)), None, Some(zz(-2))])]),
            ctl(8, &[block(13, &[None, None])]),
        ]);
        let objs = interleaved(
            0xF1,
            doc! {"k": "a", "n": {"v": 1}},
            &[
                ctl(
                    8,
                    &[
                        block(12, &[Some(0), Some(zz(1)), None]),
                        block(13, &[Some(0), Some(0)]),
                    ],
                ),
                ctl(
                    8,
                    &[
                        block(11, &[Some(0), None, Some(zz(4)), Some(0)]),
                        block(14, &[None]),
                    ],
                ),
                vec![0],
            ],
        );
        let bucket = v2(
            Some(5),
            Some(Bson::Document(doc! {"z": 1, "a": 2})),
            vec![
                ("v", values),
                ("t", times),
                ("o", objs),
                ("empty", column(&[])),
            ],
        );
        let got = to_docs(&unpack(&bucket, "t", Some("meta")).unwrap());
        let meta = doc! {"a": 2, "z": 1};
        assert_eq!(
            got,
            vec![
                doc! {"t": date(1_000_000), "meta": meta.clone(), "v": 1.5, "o": {"k": "a", "n": {"v": 1}}},
                doc! {"t": date(1_001_000), "meta": meta.clone(), "v": 1.6, "o": {"k": "b"}},
                doc! {"t": date(1_002_000), "meta": meta.clone(), "o": {"n": {"v": 5}}},
                doc! {"t": date(1_003_000), "meta": meta.clone(), "v": 1.4, "o": {"k": "b", "n": {"v": 5}}},
                doc! {"t": date(1_004_000), "meta": meta, "o": {"k": "b"}},
            ]
        );
        // Without control.count the time column gives the number of measurements.
        let bucket = v2(
            None,
            None,
            vec![("t", column(&[lit(date(5)), lit(date(6))]))],
        );
        assert_eq!(unpack(&bucket, "t", Some("m")).unwrap().len(), 2);
    }

    #[test]
    fn bucket_errors_say_what_and_where() {
        let t2 = || column(&[lit(date(1)), lit(date(2))]);
        let err = |b: &[u8], time: &str, meta: Option<&str>| unpack(b, time, meta).unwrap_err();

        assert_eq!(
            err(&v2(Some(2), Some(1.into()), vec![("t", t2())]), "t", None),
            BucketError::UnexpectedMeta
        );
        assert_eq!(
            err(&v2(Some(2), None, vec![("t", t2())]), "time", None),
            BucketError::NoTimeColumn("time".into())
        );
        assert_eq!(
            err(&v2(Some(3), None, vec![("t", t2())]), "t", None),
            BucketError::MissingTime {
                field: "t".into(),
                position: 2
            }
        );
        let gap = column(&[lit(date(1)), ctl(8, &[block(14, &[None])]), lit(date(3))]);
        assert_eq!(
            err(&v2(Some(3), None, vec![("t", gap)]), "t", None),
            BucketError::MissingTime {
                field: "t".into(),
                position: 1
            }
        );
        assert_eq!(
            err(&v2(Some(100_001), None, vec![("t", t2())]), "t", None),
            BucketError::TooManyMeasurements {
                count: 100_001,
                max: MAX_MEASUREMENTS
            }
        );
        assert_eq!(
            err(&v2(Some(2), None, vec![("t", t2())]), "t", Some("a\0b")),
            BucketError::BadFieldName("a\0b".into())
        );
        // A value beyond control.count.
        let long = column(&[lit(1), lit(2), lit(3)]);
        match err(
            &v2(Some(2), None, vec![("t", t2()), ("x", long)]),
            "t",
            None,
        ) {
            BucketError::Column {
                field,
                position,
                offset,
                reason,
            } => {
                assert_eq!((field.as_str(), position, offset), ("x", 2, 12));
                assert!(
                    reason.contains("beyond the bucket's 2 measurements"),
                    "{reason}"
                );
            }
            e => panic!("{e}"),
        }
        // A broken column names the field, the value and the byte.
        let bad = column(&[lit(1), ctl(8, &[block(14, &[Some(0)]), 0])]);
        match err(&v2(Some(2), None, vec![("t", t2()), ("x", bad)]), "t", None) {
            BucketError::Column {
                field,
                position,
                offset,
                reason,
            } => {
                assert_eq!((field.as_str(), position, offset), ("x", 2, 15));
                assert!(reason.contains("selector 0"), "{reason}");
            }
            e => panic!("{e}"),
        }

        let with = |d: Document| bytes(d);
        assert!(matches!(
            err(&with(doc! {"data": {}}), "t", None),
            BucketError::MissingField {
                field: "control",
                ..
            }
        ));
        assert!(matches!(
            err(
                &with(doc! {"control": {"version": "2"}, "data": {}}),
                "t",
                None
            ),
            BucketError::MissingField {
                field: "control.version",
                ..
            }
        ));
        assert_eq!(
            err(
                &with(doc! {"control": {"version": 4}, "data": {"t": {}}}),
                "t",
                None
            ),
            BucketError::UnsupportedVersion(4)
        );
        assert!(matches!(
            err(
                &with(doc! {"control": {"version": 2}, "data": {"t": {"0": 1}}}),
                "t",
                None
            ),
            BucketError::Column { .. }
        ));
        assert!(matches!(
            err(
                &with(doc! {"control": {"version": 1}, "data": {"t": {"0": 1}, "x": {"7": 1}}}),
                "t",
                None
            ),
            BucketError::Column { .. }
        ));
        let mut dup =
            bytes(doc! {"control": {"version": 1}, "data": {"t": {"0": 1}, "u": {"0": 1}}});
        let at = dup.windows(3).position(|w| w == b"\x03u\0").unwrap();
        dup[at + 1] = b't';
        assert_eq!(
            err(&dup, "t", None),
            BucketError::DuplicateColumn("t".into())
        );
        assert!(matches!(
            err(&[5, 0, 0, 0], "t", None),
            BucketError::Malformed { .. }
        ));
        assert!(matches!(
            err(&[6, 0, 0, 0, 0x0A, 0], "t", None),
            BucketError::Malformed { .. }
        ));
    }

    // ----- round trips through a simple encoder -------------------------------------------

    /// xorshift64*: deterministic pseudo-random numbers for the property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Packs Simple-8b slots greedily with base selectors into control bytes of up to 16
    /// blocks (a plain encoder written from the format description).
    fn pack(scale: u8, slots: &[Option<u64>], out: &mut Vec<u8>) {
        let mut blocks = Vec::new();
        let mut i = 0;
        while i < slots.len() {
            let sel = (1..=14u64)
                .find(|&sel| {
                    let count = usize::from(BASE_COUNT[sel as usize]);
                    let max = (1u64 << BASE_BITS[sel as usize]) - 2;
                    i + count <= slots.len()
                        && slots[i..i + count]
                            .iter()
                            .all(|s| s.is_none_or(|v| v <= max))
                })
                .unwrap();
            let count = usize::from(BASE_COUNT[sel as usize]);
            blocks.push(block(sel, &slots[i..i + count]));
            i += count;
        }
        for chunk in blocks.chunks(16) {
            out.extend(ctl(scale, chunk));
        }
    }

    /// Encodes a column of int64s, dates (delta of delta) or doubles (scaled).
    fn encode(values: &[Option<Bson>]) -> Vec<u8> {
        const FITS: u64 = (1 << 60) - 2;
        let mut out = Vec::new();
        let mut slots: Vec<Option<u64>> = Vec::new();
        // The state after the last value: encoded value, delta, scale.
        let mut prev: Option<(i64, i64, u8)> = None;
        let mut scale = 8u8;
        for v in values {
            let Some(v) = v else {
                slots.push(None);
                continue;
            };
            let next = match (v, prev) {
                (Bson::Int64(x), Some((p, _, _))) => {
                    let d = zz(x.wrapping_sub(p));
                    (d <= FITS).then_some((d, (*x, 0, 8)))
                }
                (Bson::DateTime(x), Some((p, pd, _))) => {
                    let x = x.timestamp_millis();
                    let delta = x.wrapping_sub(p);
                    let d = zz(delta.wrapping_sub(pd));
                    (d <= FITS).then_some((d, (x, delta, 8)))
                }
                (Bson::Double(x), Some((p, _, s))) => {
                    let idx = if s == 8 { SCALE_MEMORY } else { s - 9 };
                    encode_double(*x, idx).and_then(|e| {
                        let d = zz(e.wrapping_sub(p));
                        (d <= FITS).then_some((d, (e, 0, s)))
                    })
                }
                _ => None,
            };
            match next {
                Some((d, state)) => {
                    slots.push(Some(d));
                    prev = Some(state);
                }
                None => {
                    pack(scale, &slots, &mut out);
                    slots.clear();
                    out.extend(lit(v.clone()));
                    prev = Some(match v {
                        Bson::Int64(x) => (*x, 0, 8),
                        Bson::DateTime(x) => (x.timestamp_millis(), 0, 8),
                        Bson::Double(x) => {
                            // The smallest scale that encodes this literal exactly.
                            let idx = (0..5)
                                .find(|&i| encode_double(*x, i).is_some())
                                .unwrap_or(5);
                            scale = if idx == 5 { 8 } else { 9 + idx };
                            (encode_double(*x, idx).unwrap(), 0, scale)
                        }
                        _ => unreachable!(),
                    });
                }
            }
        }
        pack(scale, &slots, &mut out);
        out.push(0);
        out
    }

    #[test]
    fn random_columns_round_trip() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for round in 0..300 {
            let kind = round % 3;
            let len = 1 + rng.below(400) as usize;
            let mut x: i64 = rng.next() as i64 >> rng.below(64);
            let mut delta: i64 = 0;
            let values: Vec<Option<Bson>> = (0..len)
                .map(|_| {
                    if rng.below(10) == 0 {
                        return None;
                    }
                    let jump = match rng.below(8) {
                        0 => rng.next() as i64,
                        1 => (rng.next() >> 20) as i64,
                        2 => 0,
                        _ => rng.below(200) as i64 - 100,
                    };
                    Some(match kind {
                        0 => {
                            x = x.wrapping_add(jump);
                            Bson::Int64(x)
                        }
                        1 => {
                            delta = if rng.below(4) == 0 { jump } else { delta };
                            x = x.wrapping_add(delta) % 8_000_000_000_000_000;
                            date(x)
                        }
                        _ => Bson::Double(match rng.below(6) {
                            0 => f64::from_bits(rng.next()),
                            1 => (rng.below(100_000) as f64) / 100.0,
                            2 => (rng.below(1000) as f64) * 1e-8,
                            3 => [f64::NAN, f64::INFINITY, -0.0, 0.1][rng.below(4) as usize],
                            _ => rng.below(1 << 20) as f64,
                        }),
                    })
                })
                .collect();
            let col = encode(&values);
            let got = decode(&col).unwrap_or_else(|e| panic!("round {round}: {e}"));
            let want: Vec<Value> = values.iter().map(|v| v.clone().map(elem)).collect();
            // Leading skips before the first literal may have been packed as one block
            // with the skips: the counts agree either way.
            assert_eq!(got, want, "round {round}");
        }
    }

    // ----- hostile input -------------------------------------------------------------------

    /// A v2 bucket of 124 measurements using every encoding, for the mutation tests.
    fn rich_bucket() -> Vec<u8> {
        let times = column(&[
            lit(date(1_000_000)),
            ctl(8, &[block(12, &[Some(zz(1000)), Some(0), Some(0)]), rle(1)]),
        ]);
        let doubles = column(&[
            lit(1.5),
            ctl(
                0xA,
                &[block(11, &[Some(zz(1)), None, Some(zz(-2)), Some(0)])],
            ),
        ]);
        let strings = column(&[lit("ab"), ctl(8, &[block(8, &[Some(2); 7])])]);
        let ids = column(&[
            lit(oid("65a6eba7e6d2e848e08c3750")),
            ctl(8, &[block(14, &[Some(zz(1))]), rle(1)]),
        ]);
        let wide = column(&[
            lit(Bson::Decimal128(bson::Decimal128::from_bytes([1; 16]))),
            ctl(8, &[ext_block(8, 12, &[Some((3, 30)), None])]),
        ]);
        let objs = interleaved(
            0xF1,
            doc! {"k": "a", "n": {"v": 1, "w": [true]}, "e": {}},
            &[
                // k: 5 values; n.v: 5 values; n.w.0: a literal, then 4 values.
                ctl(
                    8,
                    &[
                        block(12, &[Some(0), Some(zz(1)), None]),
                        block(13, &[Some(0), Some(0)]),
                    ],
                ),
                ctl(
                    8,
                    &[ext_block(
                        7,
                        5,
                        &[Some((1, 2)), None, Some((0, 0)), Some((1, 1)), None],
                    )],
                ),
                lit(Bson::Null),
                ctl(
                    8,
                    &[
                        block(13, &[Some(0), Some(0)]),
                        block(14, &[None]),
                        block(14, &[Some(0)]),
                    ],
                ),
                vec![0],
                ctl(8, &[block(14, &[Some(0)])]),
            ],
        );
        v2(
            Some(124),
            Some(Bson::Document(doc! {"z": [{"b": 1, "a": 2}], "a": 2})),
            vec![
                ("t", times),
                ("d", doubles),
                ("s", strings),
                ("_id", ids),
                ("w", wide),
                ("o", objs),
            ],
        )
    }

    #[test]
    fn rich_bucket_unpacks() {
        let got = to_docs(&unpack(&rich_bucket(), "t", Some("m")).unwrap());
        assert_eq!(got.len(), 124);
        let meta = doc! {"a": 2, "z": [{"a": 2, "b": 1}]};
        assert_eq!(
            got[0],
            doc! {
                "t": date(1_000_000),
                "m": meta.clone(),
                "d": 1.5,
                "s": "ab",
                "_id": oid("65a6eba7e6d2e848e08c3750"),
                "w": Bson::Decimal128(bson::Decimal128::from_bytes([1; 16])),
                "o": {"k": "a", "n": {"v": 3, "w": [Bson::Null]}, "e": {}},
            }
        );
        // The run after the +1 delta of delta repeats +1: the deltas grow 1, 2, 3...
        assert_eq!(
            got[5],
            doc! {
                "t": date(1_005_000),
                "m": meta.clone(),
                "s": "ag",
                "_id": oid("65a6eba7e6d2e848e08c375f"),
                "o": {"k": "b", "n": {"w": [Bson::Null]}, "e": {}},
            }
        );
        // ...and carry from the counter's low byte into the timestamp's.
        assert_eq!(
            got[121],
            doc! {"t": date(1_121_000), "m": meta.clone(), "_id": oid("65a6ebc4e6d2e848e08c3725")}
        );
        assert_eq!(got[123], doc! {"t": date(1_123_000), "m": meta});
        let objects: Vec<_> = got[..6]
            .iter()
            .map(|d| d.get_document("o").unwrap().clone())
            .collect();
        assert_eq!(
            objects[1..5],
            [
                doc! {"k": "b", "n": {"w": [Bson::Null]}, "e": {}},
                doc! {"n": {"v": 3, "w": [Bson::Null]}, "e": {}},
                doc! {"k": "b", "n": {"v": 4}, "e": {}},
                doc! {"k": "b", "n": {"w": [Bson::Null]}, "e": {}},
            ]
        );
    }

    /// Truncating or changing any byte never panics, and never takes long.
    fn mutate_everywhere(bucket: &[u8], time: &str, meta: Option<&str>, stride: usize) {
        let start = std::time::Instant::now();

        let mut b = bucket.to_vec();
        for i in (0..bucket.len()).step_by(stride) {
            let _ = unpack(&bucket[..i], time, meta);
            for x in [0x01, 0x02, 0x10, 0x40, 0x80, 0xFF] {
                b[i] ^= x;
                let _ = unpack(&b, time, meta);
                b[i] ^= x;
            }
            for v in [
                0x00, 0x01, 0x05, 0x0F, 0x7F, 0x80, 0x8F, 0xDF, 0xF0, 0xF1, 0xF2, 0xFE,
            ] {
                let old = b[i];
                b[i] = v;
                let _ = unpack(&b, time, meta);
                b[i] = old;
            }
        }
        assert!(
            start.elapsed().as_secs() < 60,
            "mutations took {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn truncated_or_flipped_buckets_never_panic() {
        mutate_everywhere(&rich_bucket(), "t", Some("m"), 1);
        let series = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mongodump-100.18/dir/edge/system.buckets.series.bson"
        ))
        .unwrap();
        for b in docs_of(&series) {
            mutate_everywhere(b, "t", Some("m"), 1);
        }
        // The smallest bucket of each generated collection, at some 150 places.
        for &(name, time, meta) in GENERATED {
            let buckets = fixture(&format!("tests/data/tsbucket/{name}.buckets.bson"));
            let smallest = docs_of(&buckets)
                .into_iter()
                .min_by_key(|b| b.len())
                .unwrap();
            mutate_everywhere(smallest, time, meta, 1 + smallest.len() / 150);
        }
    }

    #[test]
    fn random_columns_never_panic() {
        let mut rng = Rng(0xdead_beef_0bad_f00d);
        let pieces: Vec<Vec<u8>> = vec![
            lit(1),
            lit(2.5),
            lit("s"),
            lit(date(3)),
            lit(oid("65a6eba7e6d2e848e08c3750")),
            lit(Bson::Decimal128(bson::Decimal128::from_bytes([3; 16]))),
            lit(doc! {"a": 1}),
            vec![0xF1],
            vec![0xF0],
            vec![0xF2],
            doc! {"a": 1, "b": {"c": "x"}}.to_vec().unwrap(),
            vec![0],
        ];
        for _ in 0..3000 {
            let mut col = Vec::new();
            for _ in 0..rng.below(12) {
                match rng.below(4) {
                    0 => col.extend(&pieces[rng.below(pieces.len() as u64) as usize]),
                    1 => {
                        let n = 1 + rng.below(3);
                        col.push(0x80 | (rng.below(6) as u8) << 4 | (n as u8 - 1));
                        for _ in 0..n {
                            let b = match rng.below(3) {
                                0 => rng.next(),
                                1 => rle(1 + rng.below(16)),
                                _ => rng.next() & !0xF | (1 + rng.below(14)),
                            };
                            col.extend(b.to_le_bytes());
                        }
                    }
                    2 => col.push(rng.next() as u8),
                    _ => col.extend(rng.next().to_le_bytes()),
                }
            }
            col.push(0);
            let _ = decode(&col);
            let count = rng.below(5) as i32;
            let bucket = v2(
                Some(count),
                None,
                vec![("t", column(&[lit(date(1))])), ("x", col)],
            );
            let _ = unpack(&bucket, "t", None);
        }
    }

    #[test]
    fn amplification_is_bounded() {
        // A 1 MiB string repeated by runs: stops at the size limit, not at 100 GiB.
        let big = "x".repeat(1 << 20);
        let mut parts = vec![lit(big.as_str())];
        for _ in 0..40 {
            parts.push(ctl(8, &[rle(16); 16]));
        }
        let bucket = v2(None, None, vec![("t", column(&parts))]);
        match unpack(&bucket, "t", None).unwrap_err() {
            BucketError::Column { reason, .. } => {
                assert!(reason.contains("size limit"), "{reason}")
            }
            e => panic!("{e}"),
        }
        // Skips are free to store but not to decode: the work limit stops a flood of them.
        let flood = ctl(8, &[rle(16); 16]);
        let mut parts = vec![lit(date(1)), ctl(8, &[block(14, &[None])])];
        for _ in 0..(MAX_WORK / (16 * 1920) + 2) {
            parts.push(flood.clone());
        }
        let bucket = v2(Some(1), None, vec![("t", column(&parts))]);
        match unpack(&bucket, "t", None).unwrap_err() {
            BucketError::Column { reason, .. } => {
                assert!(reason.contains("work limit"), "{reason}")
            }
            e => panic!("{e}"),
        }
        // A reference object nested too deeply.
        let mut deep = doc! {"v": 1};
        for _ in 0..MAX_DEPTH {
            deep = doc! {"d": deep};
        }
        let col = interleaved(0xF1, deep, &[vec![0]]);
        assert!(decode(&col).unwrap_err().contains("nested too deeply"));
    }
}
