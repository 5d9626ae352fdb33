//! Inserting raw documents: unordered `insert` commands built directly from the
//! stored bytes, filled up to the server's batch limits, several per collection at
//! once. Duplicate-key and validation errors are counted (with the first few `_id`s)
//! and the restore goes on, unless `--stop-on-error`; any other error is fatal.

use bson::{Bson, Document, RawArrayBuf, RawDocument, RawDocumentBuf, rawdoc};
use mongodb::Database;
use mongodb::error::ErrorKind;
use mongodb::options::{Acknowledgment, WriteConcern};

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
    /// Comment every insert carries: it finds this run's operations on the server
    /// (to kill them when the restore is told to stop twice).
    pub comment: Option<String>,
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
    #[error("inserting into {ns}: {}", crate::connect::describe(source))]
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
        /// Documents of the batch the server inserted all the same.
        inserted: u64,
    },
    /// The write concern could not be satisfied: the documents were written, but not
    /// acknowledged as the write concern asks.
    #[error("inserting into {ns}: write concern failed: {message}")]
    WriteConcern {
        /// Target namespace.
        ns: String,
        /// Server message.
        message: String,
        /// Documents the server reports written.
        inserted: u64,
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

impl InsertError {
    /// Documents of the failed batch the server reports inserted, or `None` when no
    /// answer came (the connection was lost after the batch was sent): the server may
    /// hold none, some or all of them.
    pub fn acknowledged(&self) -> Option<u64> {
        match self {
            InsertError::Refused { inserted, .. } | InsertError::WriteConcern { inserted, .. } => {
                Some(*inserted)
            }
            InsertError::Driver { source, .. } => match source.kind.as_ref() {
                ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => None,
                _ if source.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR) => None,
                // Interrupted (killed, or the server shutting down) part way through.
                _ if matches!(code_of(source), Some(11600..=11602)) => None,
                // The server answered with an error, or the batch was never sent.
                _ => Some(0),
            },
            InsertError::Malformed { .. } => Some(0),
        }
    }
}

/// A batch of whole documents, each in its own buffer as the driver sends them.
#[derive(Debug, Default)]
pub struct Batch {
    /// The documents.
    pub docs: Vec<RawDocumentBuf>,
    /// Their total size in bytes.
    pub bytes: usize,
    /// Which units of input the documents come from, in order: (unit, documents).
    pub parts: Vec<(u64, u32)>,
}

impl Batch {
    /// Number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn add(&mut self, doc: RawDocumentBuf, unit: u64) {
        self.bytes += doc.as_bytes().len();
        self.docs.push(doc);
        match self.parts.last_mut() {
            Some((u, n)) if *u == unit => *n += 1,
            _ => self.parts.push((unit, 1)),
        }
    }

    /// The unit of input of each document, in order.
    pub fn units(&self) -> impl Iterator<Item = u64> + '_ {
        self.parts
            .iter()
            .flat_map(|&(u, n)| std::iter::repeat_n(u, n as usize))
    }
}

/// Whether a document holds an empty `Timestamp(0, 0)` in one of its first two
/// fields, which a server replaces with the current time on insert unless told not to.
pub fn has_empty_timestamp(doc: &RawDocument) -> bool {
    doc.iter_elements().take(2).any(|e| {
        e.is_ok_and(|e| {
            e.element_type() == bson::spec::ElementType::Timestamp
                && matches!(e.value(), Ok(bson::RawBsonRef::Timestamp(t)) if t.time == 0 && t.increment == 0)
        })
    })
}

/// Cuts runs of documents into batches of at most `max_docs` documents and
/// `max_bytes` bytes. Documents that need the zero-timestamp flag are set aside.
pub struct Batcher {
    max_docs: usize,
    max_bytes: usize,
    cur: Batch,
    special: Batch,
}

impl Batcher {
    /// A batcher with these limits.
    pub fn new(max_docs: usize, max_bytes: usize) -> Batcher {
        Batcher {
            max_docs: max_docs.max(1),
            max_bytes,
            cur: Batch::default(),
            special: Batch::default(),
        }
    }

    /// Adds a run of whole documents; returns the batches it filled.
    pub fn push(&mut self, run: &[u8]) -> Result<Vec<Batch>, crate::docs::FramingError> {
        Ok(self.push_unit(run, 0)?.0)
    }

    /// Adds a run of whole documents from unit `unit` of the input (the batches say
    /// which documents come from which unit); returns the batches it filled and how
    /// many documents the run holds.
    pub fn push_unit(
        &mut self,
        run: &[u8],
        unit: u64,
    ) -> Result<(Vec<Batch>, u64), crate::docs::FramingError> {
        let mut full = Vec::new();
        let mut count = 0u64;
        for d in crate::docs::DocIter::new(run) {
            let d = d?;
            let doc = RawDocumentBuf::from_bytes(d.to_vec()).map_err(|_| {
                crate::docs::FramingError::BadTerminator {
                    offset: 0,
                    len: d.len(),
                }
            })?;
            count += 1;
            if has_empty_timestamp(&doc) {
                self.special.add(doc, unit);
                continue;
            }
            if !self.cur.is_empty()
                && (self.cur.len() >= self.max_docs || self.cur.bytes + d.len() > self.max_bytes)
            {
                full.push(std::mem::take(&mut self.cur));
            }
            self.cur.add(doc, unit);
        }
        Ok((full, count))
    }

    /// The last, partly filled batch.
    pub fn finish(&mut self) -> Option<Batch> {
        (!self.cur.is_empty()).then(|| std::mem::take(&mut self.cur))
    }

    /// Documents that must be inserted with `bypassEmptyTsReplacement`.
    pub fn take_special(&mut self) -> Batch {
        std::mem::take(&mut self.special)
    }
}

fn show_id(doc: &RawDocument) -> String {
    doc.get("_id")
        .ok()
        .flatten()
        .and_then(|v| Bson::try_from(v).ok())
        .map(|b| b.into_relaxed_extjson().to_string())
        .unwrap_or_else(|| "(no _id)".into())
}

/// Converts a write-concern document to the driver's type.
pub fn write_concern(d: &Document) -> WriteConcern {
    let mut wc = WriteConcern::default();
    wc.w = match d.get("w") {
        Some(Bson::Int32(n)) => Some(Acknowledgment::Nodes((*n).max(0) as u32)),
        Some(Bson::Int64(n)) => Some(Acknowledgment::Nodes((*n).max(0) as u32)),
        Some(Bson::String(s)) if s == "majority" => Some(Acknowledgment::Majority),
        Some(Bson::String(s)) => Some(Acknowledgment::Custom(s.clone())),
        _ => None,
    };
    wc.journal = d.get_bool("j").ok();
    wc.w_timeout = match d.get("wtimeout") {
        Some(Bson::Int32(n)) => Some(std::time::Duration::from_millis((*n).max(0) as u64)),
        Some(Bson::Int64(n)) => Some(std::time::Duration::from_millis((*n).max(0) as u64)),
        _ => None,
    };
    wc
}

/// Sorts write errors into the counted (duplicates, validation: the caller decides
/// whether they stop the restore) and the fatal.
fn classify(
    ns: &str,
    batch: &Batch,
    inserted: u64,
    errors: impl IntoIterator<Item = (usize, i32, String)>,
) -> Result<BatchErrors, InsertError> {
    let mut errs = BatchErrors::default();
    for (index, code, message) in errors {
        let id = batch
            .docs
            .get(index)
            .map(|d| show_id(d))
            .unwrap_or_else(|| "(unknown)".into());
        match code {
            DUPLICATE_KEY | VALIDATION_FAILED => {
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
                    ns: ns.to_string(),
                    id,
                    code,
                    message,
                    inserted,
                });
            }
        }
    }
    Ok(errs)
}

/// Inserts one batch (unordered). Documents go as an OP_MSG document sequence,
/// byte for byte as stored. Returns how many were inserted and the survivable errors.
pub async fn insert_batch(
    db: &Database,
    t: &InsertTarget,
    batch: Batch,
    stop_on_error: bool,
) -> Result<(u64, BatchErrors), InsertError> {
    let ns = format!("{}.{}", t.db, t.coll);
    if batch.is_empty() {
        return Ok((0, BatchErrors::default()));
    }
    if t.raw_data {
        // rawData is a command field the driver's insert cannot carry.
        return insert_command(db, t, &batch, false, stop_on_error).await;
    }
    let coll = db.collection::<RawDocumentBuf>(&t.coll);
    // With --stop-on-error the batch is ordered, so the server stops at the first
    // refused document and everything before it is in.
    let mut op = coll.insert_many(&batch.docs).ordered(stop_on_error);
    if t.bypass_validation {
        op = op.bypass_document_validation(true);
    }
    if let Some(wc) = &t.write_concern {
        op = op.write_concern(write_concern(wc));
    }
    if let Some(c) = &t.comment {
        op = op.comment(Bson::String(c.clone()));
    }
    match op.await {
        Ok(r) => Ok((r.inserted_ids.len() as u64, BatchErrors::default())),
        Err(e) => match e.kind.as_ref() {
            ErrorKind::InsertMany(im) => {
                let list = im.write_errors.clone().unwrap_or_default();
                let inserted = if stop_on_error {
                    list.iter().map(|w| w.index).min().unwrap_or(batch.len()) as u64
                } else {
                    batch.len() as u64 - (list.len() as u64).min(batch.len() as u64)
                };
                if let Some(wce) = &im.write_concern_error {
                    return Err(InsertError::WriteConcern {
                        ns,
                        message: wce.message.clone(),
                        inserted,
                    });
                }
                let errs = classify(
                    &ns,
                    &batch,
                    inserted,
                    list.into_iter().map(|w| (w.index, w.code, w.message)),
                )?;
                Ok((inserted, errs))
            }
            ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(wce)) => {
                Err(InsertError::WriteConcern {
                    ns,
                    message: wce.message.clone(),
                    inserted: batch.len() as u64,
                })
            }
            _ => Err(InsertError::Driver { ns, source: e }),
        },
    }
}

/// Inserts documents with an `insert` command built here, for what the driver's
/// insert cannot say: `bypassEmptyTsReplacement` (documents with a zero timestamp in
/// their first fields) and `rawData`. Used one document at a time for the former.
pub async fn insert_command(
    db: &Database,
    t: &InsertTarget,
    batch: &Batch,
    empty_ts: bool,
    stop_on_error: bool,
) -> Result<(u64, BatchErrors), InsertError> {
    let ns = format!("{}.{}", t.db, t.coll);
    let mut docs = RawArrayBuf::new();
    for d in &batch.docs {
        docs.push(d.as_ref());
    }
    let mut cmd = rawdoc! {"insert": t.coll.as_str(), "ordered": stop_on_error};
    if t.bypass_validation {
        cmd.append(bson::cstr!("bypassDocumentValidation"), true);
    }
    if empty_ts && t.bypass_empty_ts {
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
    if let Some(c) = &t.comment {
        cmd.append(bson::cstr!("comment"), c.as_str());
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
            inserted: n,
        });
    }
    let list: Vec<(usize, i32, String)> = reply
        .get_array("writeErrors")
        .map(|l| {
            l.iter()
                .filter_map(|e| e.as_document())
                .map(|e| {
                    let num = |k: &str| match e.get(k) {
                        Some(Bson::Int32(v)) => *v as i64,
                        Some(Bson::Int64(v)) => *v,
                        _ => 0,
                    };
                    (
                        num("index") as usize,
                        num("code") as i32,
                        e.get_str("errmsg").unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let errs = classify(&ns, batch, n, list)?;
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

    fn flat(out: &[Batch]) -> Vec<u8> {
        out.iter()
            .flat_map(|b| b.docs.iter().flat_map(|d| d.as_bytes().to_vec()))
            .collect()
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
        assert_eq!(flat(&out), data);
    }

    #[test]
    fn batches_say_which_units_their_documents_come_from() {
        let data = run(5, 10);
        let mut b = Batcher::new(4, 1 << 20);
        let (out, n) = b.push_unit(&data, 7).unwrap();
        assert_eq!(n, 5);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].parts, vec![(7, 4)]);
        let (out, n) = b.push_unit(&data[..data.len() / 5 * 2], 9).unwrap();
        assert_eq!(n, 2);
        assert!(out.is_empty());
        let last = b.finish().unwrap();
        assert_eq!(last.parts, vec![(7, 1), (9, 2)]);
        assert_eq!(last.units().collect::<Vec<_>>(), vec![7, 9, 9]);
    }

    #[test]
    fn a_document_larger_than_the_byte_limit_goes_alone() {
        let data = run(3, 1000);
        let mut b = Batcher::new(100, 10);
        let mut out = b.push(&data).unwrap();
        out.extend(b.finish());
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn zero_timestamps_in_the_first_fields_are_set_aside() {
        let zero = bson::Timestamp {
            time: 0,
            increment: 0,
        };
        let mut data = bson::serialize_to_vec(&bson::doc! {"_id": 1, "ts": zero}).unwrap();
        data.extend(bson::serialize_to_vec(&bson::doc! {"_id": 2, "a": 1, "ts": zero}).unwrap());
        data.extend(
            bson::serialize_to_vec(
                &bson::doc! {"_id": 3, "ts": bson::Timestamp { time: 1, increment: 0 }},
            )
            .unwrap(),
        );
        let mut b = Batcher::new(100, 1 << 20);
        assert!(b.push(&data).unwrap().is_empty());
        assert_eq!(b.take_special().len(), 1);
        assert_eq!(b.finish().unwrap().len(), 2);
    }

    #[test]
    fn failed_batches_count_what_the_server_acknowledged_and_no_more() {
        let lost = InsertError::Driver {
            ns: "d.c".into(),
            source: mongodb::error::Error::from(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        };
        assert_eq!(lost.acknowledged(), None, "no answer: unknown");
        let wc = InsertError::WriteConcern {
            ns: "d.c".into(),
            message: "no such mode".into(),
            inserted: 464,
        };
        assert_eq!(
            wc.acknowledged(),
            Some(464),
            "written, without the durability asked"
        );
        let refused = InsertError::Refused {
            ns: "d.c".into(),
            id: "1".into(),
            code: 2,
            message: "bad".into(),
            inserted: 9,
        };
        assert_eq!(refused.acknowledged(), Some(9));
        let batch = Batch {
            docs: (0..10)
                .map(|i| RawDocumentBuf::try_from(&bson::doc! {"_id": i}).unwrap())
                .collect(),
            ..Batch::default()
        };
        match classify("d.c", &batch, 9, [(3, 2, "bad".to_string())]) {
            Err(e @ InsertError::Refused { .. }) => assert_eq!(e.acknowledged(), Some(9)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn write_concern_documents() {
        let wc = write_concern(&bson::doc! {"w": "majority", "j": true, "wtimeout": 500});
        assert_eq!(wc.w, Some(Acknowledgment::Majority));
        assert_eq!(wc.journal, Some(true));
        assert_eq!(
            write_concern(&bson::doc! {"w": 2}).w,
            Some(Acknowledgment::Nodes(2))
        );
    }
}
