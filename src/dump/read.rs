//! Reading one namespace (or one `_id` range of it) into frames.
//!
//! The hot path: raw batch cursors hand over whole server replies; each document is
//! copied once, as bytes, from the reply into a frame buffer, and full frames go to
//! the single writer through a bounded channel. Nothing is decoded except the `_id`
//! of the last document of each batch (to resume a range after a killed cursor).
//! The next batch is fetched while the current one is being framed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bson::{Bson, Document, RawBson, RawBsonRef, Timestamp, doc, rawdoc};
use futures_util::StreamExt;
use mongodb::Client;
use mongodb::options::Hint;
use mongodb::raw_batch_cursor::{RawBatch, RawBatchCursor};
use tokio::sync::mpsc;

use super::partition::{IdRange, RangeMode, bounds, range_filter};
use crate::catalog::NsStatus;
use crate::connect::code_of;
use crate::oxd::frame::FrameBuilder;

/// What a read task sends to the writer.
#[derive(Debug)]
pub enum Msg {
    /// Whole documents of namespace `ns`.
    Docs {
        /// Namespace index.
        ns: usize,
        /// The `_id` range they belong to, when the collection is split.
        range: Option<u32>,
        /// Concatenated documents.
        data: Vec<u8>,
        /// How many.
        count: u64,
    },
    /// Namespace `ns` is split into these `_id` ranges (before any of its documents).
    Ranges {
        /// Namespace index.
        ns: usize,
        /// The split.
        plan: crate::oxd::ranges::RangePlan,
    },
    /// Range `range` of namespace `ns` was read to its end.
    RangeEnd {
        /// Namespace index.
        ns: usize,
        /// Range index.
        range: u32,
    },
    /// Namespace `ns` is complete.
    End {
        /// Namespace index.
        ns: usize,
        /// Whether all of it was captured.
        status: NsStatus,
    },
}

/// How a task reads.
#[derive(Debug, Clone)]
pub enum How {
    /// One cursor in natural order (`$natural` hint), as mongodump does.
    Natural,
    /// One `_id` range through the `_id` index.
    Range(IdRange),
    /// A user filter (`--query`), planner's choice of index.
    Query(Document),
    /// The oplog between two timestamps, inclusive.
    Oplog(Timestamp, Timestamp),
}

/// One unit of reading.
#[derive(Debug, Clone)]
pub struct ReadSpec {
    /// Namespace index.
    pub ns: usize,
    /// The index of the `_id` range read, when the collection is split.
    pub range: Option<u32>,
    /// `db.collection` for messages.
    pub name: String,
    /// Database.
    pub db: String,
    /// Collection holding the documents.
    pub coll: String,
    /// How to read.
    pub how: How,
    /// Read time-series data with `rawData: true`.
    pub raw_data: bool,
    /// Largest acceptable document.
    pub max_doc: usize,
    /// Documents per batch asked from the server.
    pub batch_size: u32,
    /// Target frame size.
    pub frame_size: usize,
    /// Count and time only; send nothing (the raw-drain baseline).
    pub drain_only: bool,
}

/// Live counters of one namespace, shared with the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    /// Documents read.
    pub docs: AtomicU64,
    /// Raw bytes read.
    pub bytes: AtomicU64,
}

/// Error of a read task.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The server failed the read.
    #[error("reading {ns}: {}", crate::connect::describe(source))]
    Driver {
        /// `db.collection`.
        ns: String,
        /// The driver error.
        source: mongodb::error::Error,
    },
    /// A cursor was lost and the read cannot be resumed.
    #[error(
        "reading {ns}: the cursor was lost after {docs} documents and this read cannot resume ({source}); run the dump again"
    )]
    Lost {
        /// `db.collection`.
        ns: String,
        /// Documents read before.
        docs: u64,
        /// The driver error.
        source: mongodb::error::Error,
    },
    /// The server returned a document over the limit.
    #[error(
        "{ns}: document with _id {id} is {len} bytes, over the {max}-byte limit; refusing to dump it"
    )]
    TooLarge {
        /// `db.collection`.
        ns: String,
        /// The document's `_id` as Extended JSON.
        id: String,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The server sent something that is not a document.
    #[error("{ns}: the server sent a malformed reply: {message}")]
    Malformed {
        /// `db.collection`.
        ns: String,
        /// What is wrong.
        message: String,
    },
    /// An oplog entry makes the captured window unusable.
    #[error(transparent)]
    Oplog(#[from] crate::oplog::capture::OplogError),
    /// The writer stopped (it failed or the dump was interrupted).
    #[error("the writer stopped")]
    Closed,
}

/// What a finished read did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadOutcome {
    /// Documents read.
    pub docs: u64,
    /// Raw bytes read.
    pub bytes: u64,
    /// Times a lost cursor was resumed.
    pub resumes: u32,
}

/// Fault injection for tests, never set in normal use: with
/// `OXIDUMP_FAULT_KILL_CURSOR=N` in the environment, the first cursor of the run to
/// deliver its N-th batch is killed on the server (`killCursors`), as an operator or a
/// failover would kill it, so that tests can watch a read lose its cursor midway.
const FAULT_KILL_CURSOR: &str = "OXIDUMP_FAULT_KILL_CURSOR";

/// Whether the fault of [`FAULT_KILL_CURSOR`] has been injected in this process.
static FAULT_FIRED: AtomicBool = AtomicBool::new(false);

/// Kills the cursor that delivered `batch` if the fault of [`FAULT_KILL_CURSOR`] is
/// due at this cursor's `batches`-th batch.
async fn inject_cursor_fault(client: &Client, spec: &ReadSpec, batch: &RawBatch, batches: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var(FAULT_KILL_CURSOR).ok()?.parse().ok());
    let due = *at == Some(batches);
    if !due || FAULT_FIRED.swap(true, Ordering::SeqCst) {
        return;
    }
    let id = batch
        .as_raw_document()
        .get_document("cursor")
        .and_then(|c| c.get_i64("id"))
        .unwrap_or(0);
    if id != 0 {
        let _ = client
            .database(&spec.db)
            .run_command(doc! {"killCursors": &spec.coll, "cursors": [id]})
            .await;
    }
}

/// Error codes meaning the cursor is gone but the collection may still be there.
fn cursor_lost(e: &mongodb::error::Error) -> bool {
    matches!(code_of(e), Some(43) | Some(237) | Some(175) | Some(11601))
        || crate::connect::is_network(e)
}

/// Error codes meaning the collection went away under the cursor.
pub fn collection_gone(e: &mongodb::error::Error) -> bool {
    matches!(
        code_of(e),
        Some(26) | Some(175) | Some(96) | Some(43) | Some(237)
    )
}

async fn open(
    client: &Client,
    spec: &ReadSpec,
    how: &How,
) -> Result<RawBatchCursor, mongodb::error::Error> {
    let db = client.database(&spec.db);
    if spec.raw_data {
        let cmd = rawdoc! {"find": spec.coll.as_str(), "filter": {}, "rawData": true, "batchSize": spec.batch_size as i32};
        return db.run_raw_cursor_command(cmd).batch().await;
    }
    let coll = db.collection::<Document>(&spec.coll);
    let find = match how {
        How::Natural => coll.find(doc! {}).hint(Hint::Keys(doc! {"$natural": 1})),
        How::Range(r) if r.mode == RangeMode::Filter => {
            coll.find(range_filter(r)).sort(doc! {"_id": 1})
        }
        How::Range(r) => {
            let (min, max) = bounds(r);
            let mut f = coll.find(doc! {}).hint(Hint::Keys(doc! {"_id": 1}));
            if let Some(min) = min {
                f = f.min(min);
            }
            if let Some(max) = max {
                f = f.max(max);
            }
            f
        }
        How::Query(q) => coll.find(q.clone()),
        How::Oplog(start, end) => coll.find(doc! {"ts": {"$gte": *start, "$lte": *end}}),
    };
    find.batch_size(spec.batch_size).batch().await
}

/// Renders an `_id` for messages.
fn show_id(v: Option<RawBsonRef<'_>>) -> String {
    match v.and_then(|v| Bson::try_from(v).ok()) {
        Some(b) => b.into_relaxed_extjson().to_string(),
        None => "(none)".into(),
    }
}

/// The task that fetches a cursor's next batch while the current one is framed. It
/// is stopped and awaited on every way out of a read ([`Fetch::stop`]); dropped
/// without that (the read itself was cancelled), it is aborted, and the cursor it
/// owns is released, which the client waits for when it is closed.
struct Fetch(Option<tokio::task::JoinHandle<()>>);

impl Fetch {
    async fn stop(mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
            let _ = h.await;
        }
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// Reads `spec` to the end, sending frames on `tx`.
pub async fn read(
    client: &Client,
    spec: &ReadSpec,
    tx: &mpsc::Sender<Msg>,
    counters: &Counters,
    on_batch: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<ReadOutcome, ReadError> {
    let mut out = ReadOutcome::default();
    let mut frames = FrameBuilder::new(spec.frame_size);
    let mut how = spec.how.clone();
    // For ranges: the _id of the last document read, to resume after it.
    let mut last_id: Option<RawBson> = None;
    let mut skip_first_if: Option<RawBson> = None;
    loop {
        let cursor = match open(client, spec, &how).await {
            Ok(c) => c,
            Err(e) if out.resumes > 0 && cursor_lost(&e) && out.resumes < 5 => {
                out.resumes += 1;
                tokio::time::sleep(Duration::from_millis(500 * out.resumes as u64)).await;
                continue;
            }
            Err(source) => {
                return Err(ReadError::Driver {
                    ns: spec.name.clone(),
                    source,
                });
            }
        };
        let (btx, mut brx) = mpsc::channel::<Result<RawBatch, mongodb::error::Error>>(1);
        let fetch = Fetch(Some(tokio::spawn(async move {
            let mut cursor = cursor;
            while let Some(b) = cursor.next().await {
                let stop = b.is_err();
                if btx.send(b).await.is_err() || stop {
                    break;
                }
            }
        })));
        let consumed: Result<Option<mongodb::error::Error>, ReadError> = async {
            let mut failure = None;
            let mut batches = 0u64;
            while let Some(batch) = brx.recv().await {
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                let malformed = |m: String| ReadError::Malformed {
                    ns: spec.name.clone(),
                    message: m,
                };
                let docs = batch.doc_slices().map_err(|e| malformed(e.to_string()))?;
                let mut last = None;
                let (mut n, mut bytes) = (0u64, 0u64);
                for item in docs {
                    let item = item.map_err(|e| malformed(e.to_string()))?;
                    let d = item
                        .as_document()
                        .ok_or_else(|| malformed("a batch element is not a document".into()))?;
                    let raw = d.as_bytes();
                    if let Some(skip) = skip_first_if.take()
                        && d.get("_id").ok().flatten().map(RawBson::from).as_ref() == Some(&skip)
                    {
                        continue;
                    }
                    if let How::Oplog(..) = how {
                        crate::oplog::capture::check_entry(d)?;
                    }
                    if raw.len() > spec.max_doc {
                        return Err(ReadError::TooLarge {
                            ns: spec.name.clone(),
                            id: show_id(d.get("_id").ok().flatten()),
                            len: raw.len(),
                            max: spec.max_doc,
                        });
                    }
                    n += 1;
                    bytes += raw.len() as u64;
                    last = Some(d);
                    if !spec.drain_only
                        && let Some((data, count)) = frames.push(raw)
                    {
                        tx.send(Msg::Docs {
                            ns: spec.ns,
                            range: spec.range,
                            data,
                            count: count as u64,
                        })
                        .await
                        .map_err(|_| ReadError::Closed)?;
                    }
                }
                if matches!(how, How::Range(_))
                    && let Some(d) = last
                {
                    last_id = d.get("_id").ok().flatten().map(RawBson::from);
                }
                out.docs += n;
                out.bytes += bytes;
                counters.docs.fetch_add(n, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                on_batch(n, bytes);
                batches += 1;
                inject_cursor_fault(client, spec, &batch, batches).await;
            }
            Ok(failure)
        }
        .await;
        // The prefetching task holds the cursor: it is over before this read is.
        drop(brx);
        fetch.stop().await;
        match consumed? {
            None => break,
            Some(e) => {
                // Resuming after the last `_id` read is exact only when documents arrive
                // in `_id` order: ranges of one `_id` type are read with a sort on `_id`;
                // across types, servers do not all return index bounds in order (one
                // returned strings before numbers), so such ranges fail instead.
                let resumable = matches!(&how, How::Range(r) if r.mode == RangeMode::Filter)
                    && cursor_lost(&e)
                    && out.resumes < 5;
                if !resumable {
                    if cursor_lost(&e) && out.docs > 0 {
                        return Err(ReadError::Lost {
                            ns: spec.name.clone(),
                            docs: out.docs,
                            source: e,
                        });
                    }
                    return Err(ReadError::Driver {
                        ns: spec.name.clone(),
                        source: e,
                    });
                }
                out.resumes += 1;
                if let (How::Range(r), Some(id)) = (&how, &last_id) {
                    let min = Bson::try_from(id.clone()).map_err(|e| ReadError::Malformed {
                        ns: spec.name.clone(),
                        message: e.to_string(),
                    })?;
                    how = How::Range(IdRange {
                        min: Some(min),
                        max: r.max.clone(),
                        mode: r.mode,
                    });
                    skip_first_if = Some(id.clone());
                }
            }
        }
    }
    if let Some((data, count)) = frames.take() {
        tx.send(Msg::Docs {
            ns: spec.ns,
            range: spec.range,
            data,
            count: count as u64,
        })
        .await
        .map_err(|_| ReadError::Closed)?;
    }
    Ok(out)
}

/// Shared counters by namespace.
pub type SharedCounters = Arc<Vec<Counters>>;
