//! Inserting raw documents: unordered `insert` commands built directly from the
//! stored bytes, filled up to the server's batch limits, several per collection at
//! once. Duplicate-key and validation errors are counted (with the first few `_id`s)
//! and the restore goes on, unless `--stop-on-error`; any other error is fatal.

use bson::{Bson, Document, RawArrayBuf, RawDocument, RawDocumentBuf, rawdoc};
use mongodb::Database;

use crate::connect::code_of;

/// Duplicate key.
pub const DUPLICATE_KEY: i32 = 11000;
/// Document failed validation.
pub const VALIDATION_FAILED: i32 = 121;

/// How many failing `_id`s are kept per namespace for the report.
pub const KEEP_IDS: usize = 5;

/// How one collection is inserted into.
#[derive(Debug, Clone)]
pub struct InsertTarget {
    /// Database.
    pub db: String,
    /// Collection the documents go into (`system.buckets.X` for time-series).
    pub coll: String,
    /// `bypassDocumentValidation`.
    pub bypass_validation: bool,
    /// Send `bypassEmptyTsReplacement` so zero timestamps are stored as dumped.
    pub bypass_empty_ts: bool,
    /// Insert time-series buckets with `rawData: true` (8.3+ targets).
    pub raw_data: bool,
    /// Write concern document, when not the server default.
    pub write_concern: Option<Document>,
}

/// Errors from one batch that the restore survives (unless `--stop-on-error`).
#[derive(Debug, Default, Clone)]
pub struct BatchErrors {
    /// Documents refused as duplicates.
    pub duplicates: u64,
    /// Documents refused by the validator.
    pub invalid: u64,
    /// `_id`s of the first refused documents, as Extended JSON.
    pub ids: Vec<String>,
    /// The first error message.
    pub first_message: Option<String>,
}

impl BatchErrors {
    /// Whether any document was refused.
    pub fn any(&self) -> bool {
        self.duplicates + self.invalid > 0
    }

    /// Adds another batch's errors.
    pub fn merge(&mut self, o: BatchErrors) {
        self.duplicates += o.duplicates;
        self.invalid += o.invalid;
        for id in o.ids {
            if self.ids.len() < KEEP_IDS {
                self.ids.push(id);
            }
        }
        if self.first_message.is_none() {
            self.first_message = o.first_message;
        }
    }
}

/// A fatal insert error.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// The command failed.
    #[error("inserting into {ns}: {source}")]
    Driver {
        /// Target namespace.
        ns: String,
        /// The driver error.
        source: mongodb::error::Error,
    },
    /// A document was refused for another reason than a duplicate key or validation.
    #[error("inserting into {ns}: document {id} refused (code {code}): {message}")]
    Refused {
        /// Target namespace.
        ns: String,
        /// The document's `_id`.
        id: String,
        /// Server error code.
        code: i32,
        /// Server message.
        message: String,
    },
    /// The write concern could not be satisfied.
    #[error("inserting into {ns}: write concern failed: {message}")]
    WriteConcern {
        /// Target namespace.
        ns: String,
        /// Server message.
        message: String,
    },
    /// The batch is not made of whole documents (a bug: sources check framing).
    #[error("inserting into {ns}: {message}")]
    Malformed {
        /// Target namespace.
        ns: String,
        /// What is wrong.
        message: String,
    },
}

/// A batch of whole documents, concatenated.
#[derive(Debug, Default)]
pub struct Batch {
    /// The documents' bytes.
    pub data: Vec<u8>,
    /// Where each document starts.
    pub starts: Vec<u32>,
}

impl Batch {
    /// Number of documents.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Document `i`.
    pub fn doc(&self, i: usize) -> &[u8] {
        let s = self.starts[i] as usize;
        let e = self
            .starts
            .get(i + 1)
            .map_or(self.data.len(), |&e| e as usize);
        &self.data[s..e]
    }
}

/// Cuts runs of documents into batches of at most `max_docs` documents and
/// `max_bytes` bytes.
pub struct Batcher {
    max_docs: usize,
    max_bytes: usize,
    cur: Batch,
}

impl Batcher {
    /// A batcher with these limits.
    pub fn new(max_docs: usize, max_bytes: usize) -> Batcher {
        Batcher {
            max_docs: max_docs.max(1),
            max_bytes,
            cur: Batch::default(),
        }
    }

    /// Adds a run of whole documents; returns the batches it filled.
    pub fn push(&mut self, run: &[u8]) -> Result<Vec<Batch>, crate::docs::FramingError> {
        let mut full = Vec::new();
        for d in crate::docs::DocIter::new(run) {
            let d = d?;
            if !self.cur.is_empty()
                && (self.cur.len() >= self.max_docs
                    || self.cur.data.len() + d.len() > self.max_bytes)
            {
                full.push(std::mem::take(&mut self.cur));
            }
            if self.cur.data.capacity() == 0 {
                self.cur.data.reserve(self.max_bytes.min(8 << 20));
            }
            self.cur.starts.push(self.cur.data.len() as u32);
            self.cur.data.extend_from_slice(d);
        }
        Ok(full)
    }

    /// The last, partly filled batch.
    pub fn finish(&mut self) -> Option<Batch> {
        (!self.cur.is_empty()).then(|| std::mem::take(&mut self.cur))
    }
}

fn show_id(doc: &[u8]) -> String {
    RawDocument::from_bytes(doc)
        .ok()
        .and_then(|d| d.get("_id").ok().flatten())
        .and_then(|v| Bson::try_from(v).ok())
        .map(|b| b.into_relaxed_extjson().to_string())
        .unwrap_or_else(|| "(no _id)".into())
}

/// Inserts one batch. Returns the number of documents inserted and the survivable errors.
pub async fn insert_batch(
    db: &Database,
    t: &InsertTarget,
    batch: &Batch,
    stop_on_error: bool,
) -> Result<(u64, BatchErrors), InsertError> {
    let ns = format!("{}.{}", t.db, t.coll);
    let mut docs = RawArrayBuf::new();
    for i in 0..batch.len() {
        let d = RawDocument::from_bytes(batch.doc(i)).map_err(|e| InsertError::Malformed {
            ns: ns.clone(),
            message: e.to_string(),
        })?;
        docs.push(d);
    }
    let mut cmd = rawdoc! {"insert": t.coll.as_str(), "ordered": false};
    if t.bypass_validation {
        cmd.append(bson::cstr!("bypassDocumentValidation"), true);
    }
    if t.bypass_empty_ts {
        cmd.append(bson::cstr!("bypassEmptyTsReplacement"), true);
    }
    if t.raw_data {
        cmd.append(bson::cstr!("rawData"), true);
    }
    if let Some(wc) = &t.write_concern {
        let wc = RawDocumentBuf::try_from(wc).map_err(|e| InsertError::Malformed {
            ns: ns.clone(),
            message: e.to_string(),
        })?;
        cmd.append(bson::cstr!("writeConcern"), wc);
    }
    cmd.append(bson::cstr!("documents"), docs);
    let reply = db
        .run_raw_command(cmd)
        .await
        .map_err(|source| InsertError::Driver {
            ns: ns.clone(),
            source,
        })?;
    let n = match reply.get("n") {
        Some(Bson::Int32(n)) => *n as u64,
        Some(Bson::Int64(n)) => *n as u64,
        _ => 0,
    };
    if let Ok(wce) = reply.get_document("writeConcernError") {
        return Err(InsertError::WriteConcern {
            ns,
            message: wce.get_str("errmsg").unwrap_or("unknown").to_string(),
        });
    }
    let mut errs = BatchErrors::default();
    if let Ok(list) = reply.get_array("writeErrors") {
        for e in list {
            let Bson::Document(e) = e else { continue };
            let code = match e.get("code") {
                Some(Bson::Int32(c)) => *c,
                Some(Bson::Int64(c)) => *c as i32,
                _ => 0,
            };
            let index = match e.get("index") {
                Some(Bson::Int32(i)) => *i as usize,
                Some(Bson::Int64(i)) => *i as usize,
                _ => 0,
            };
            let id = if index < batch.len() {
                show_id(batch.doc(index))
            } else {
                "(unknown)".into()
            };
            let message = e.get_str("errmsg").unwrap_or("").to_string();
            match code {
                DUPLICATE_KEY | VALIDATION_FAILED if !stop_on_error => {
                    if code == DUPLICATE_KEY {
                        errs.duplicates += 1;
                    } else {
                        errs.invalid += 1;
                    }
                    if errs.ids.len() < KEEP_IDS {
                        errs.ids.push(id);
                    }
                    errs.first_message.get_or_insert(message);
                }
                _ => {
                    return Err(InsertError::Refused {
                        ns,
                        id,
                        code,
                        message,
                    });
                }
            }
        }
    }
    Ok((n, errs))
}

/// Whether a driver error means the server is gone (the restore cannot go on).
pub fn is_fatal_connection(e: &mongodb::error::Error) -> bool {
    crate::connect::is_network(e) || code_of(e) == Some(11600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: usize, size: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for i in 0..n {
            b.extend(
                bson::serialize_to_vec(&bson::doc! {"_id": i as i64, "p": "x".repeat(size)})
                    .unwrap(),
            );
        }
        b
    }

    #[test]
    fn batches_respect_both_limits() {
        let data = run(10, 100);
        let one = data.len() / 10;
        let mut b = Batcher::new(4, one * 3);
        let mut out = b.push(&data).unwrap();
        out.extend(b.finish());
        assert_eq!(
            out.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        let mut b = Batcher::new(2, 1 << 20);
        let mut out = b.push(&data).unwrap();
        out.extend(b.finish());
        assert_eq!(out.len(), 5);
        let all: Vec<u8> = out.iter().flat_map(|b| b.data.clone()).collect();
        assert_eq!(all, data);
        assert_eq!(out[1].doc(1), &data[one * 3..one * 4]);
    }

    #[test]
    fn a_document_larger_than_the_byte_limit_goes_alone() {
        let data = run(3, 1000);
        let mut b = Batcher::new(100, 10);
        let mut out = b.push(&data).unwrap();
        out.extend(b.finish());
        assert_eq!(out.len(), 3);
    }
}
