//! Replaying oplog entries with ordinary commands (`update`, `delete`, `create`,
//! `drop`, `renameCollection`, `collMod`, ...), never `applyOps`.
//!
//! Translation, per entry:
//! - an insert is a replacing upsert by `_id`, so a document the snapshot already
//!   holds converges;
//! - a replacement update is a replacing upsert by `_id`; `$v: 1` modifiers and
//!   SecantusDB's flat form are one operator update; a `$v: 2` delta of top-level
//!   fields is one pipeline update that yields mongod's document exactly (the `i`
//!   fields unset, then set, so they land at the end); any other delta is a
//!   read-modify-write by `_id` through [`diff::apply_doc_diff`] (the replay is the
//!   only writer of the document between the read and the write); an operator update
//!   the server refuses (a path through a scalar in a fuzzy state) falls back to the
//!   same read-modify-write;
//! - a delete is a delete by `_id`; updates and deletes of a missing document change
//!   nothing, as mongod's idempotent application;
//! - CRUD on a collection the target does not have is skipped (never created);
//! - index DDL only changes the index catalog: every secondary index is built after
//!   the replay, since ordinary commands cannot relax unique constraints the way
//!   mongod's applier does;
//! - the operations of a committed transaction are applied together, in a target
//!   transaction when they are all CRUD; aborted and uncommitted ones are not applied.
//!
//! - time-series measurements (SecantusDB keeps them, and does not keep their `_id`s
//!   unique) and documents holding a top-level `Timestamp(0, 0)` are written by
//!   delete and insert; mongod's bucket writes go to its bucket collection, and are
//!   refused where the target keeps measurements instead.
//!
//! Ordering: writes are buffered and sent in rounds, the k-th write of each document
//! (namespace and `_id`) in round k, so operations on one document keep their order;
//! in a round, writes of one namespace and kind go out as large batches, several at a
//! time; commands and transactions are barriers.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bson::{Bson, Document, RawArrayBuf, RawBson, RawDocument, RawDocumentBuf, Timestamp, doc};
use mongodb::{Client, ClientSession};
use serde::Serialize;

use super::diff::{self, DocDiff, FlatDiff};
use super::entry::{self, Command, Entry, EntryError, Op, TxnKey, Update, show_ts};
use crate::nsmatch::{NsFilter, Renamer};

/// Error of a replay. Every variant names the entry.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An entry does not parse.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// An entry that cannot be replayed faithfully; nothing after it was applied.
    #[error("oplog entry {at} ({kind} on {ns}): {why}")]
    Refused {
        /// Its `ts`.
        at: String,
        /// Its kind.
        kind: String,
        /// Its namespace.
        ns: String,
        /// Why.
        why: String,
    },
    /// The server refused a command.
    #[error(
        "oplog entry {at} ({kind} on {ns}): {}",
        crate::connect::describe(source)
    )]
    Server {
        /// Its `ts`.
        at: String,
        /// Its kind.
        kind: String,
        /// The target namespace.
        ns: String,
        /// The driver error.
        source: Box<mongodb::error::Error>,
    },
    /// The server refused a write of a batch.
    #[error(
        "oplog entry {at} ({kind} on {ns}): the server refused the write: {message} (code {code})"
    )]
    Write {
        /// Its `ts`.
        at: String,
        /// Its kind.
        kind: String,
        /// The target namespace.
        ns: String,
        /// Server error code.
        code: i32,
        /// Server message.
        message: String,
    },
    /// A document or update built for the server cannot be encoded.
    #[error("an oplog entry's document cannot be encoded for the server: {0}")]
    Encode(String),
    /// Reading the target's catalog failed.
    #[error("reading the target's collections: {}", crate::connect::describe(.0))]
    Catalog(Box<mongodb::error::Error>),
}

/// How the replay writes.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Write commands in flight at once (batches of different documents).
    pub lanes: usize,
    /// Most statements per write command.
    pub batch: usize,
    /// Writes buffered before they are sent.
    pub pending: usize,
    /// `writeConcern` sent with every write.
    pub write_concern: Option<Document>,
    /// Replay what can be where the selection breaks a unit (a transaction across
    /// selected and unselected namespaces, a rename across the selection, a
    /// `dropDatabase` of a partly selected database), instead of stopping.
    pub accept_partial: bool,
    /// Also replay `admin`, `config` and system collections.
    pub include_system: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            lanes: 8,
            batch: 1000,
            pending: 20_000,
            write_concern: None,
            accept_partial: false,
            include_system: false,
        }
    }
}

/// Which namespaces are replayed, and under which names.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--ns-include` / `--ns-exclude`.
    pub filter: NsFilter,
    /// `--ns-from` / `--ns-to`.
    pub renamer: Renamer,
}

impl Selection {
    fn is_everything(&self) -> bool {
        !self.filter.has_includes() && !self.filter.has_excludes() && self.renamer.is_empty()
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplayCounts {
    /// Entries read.
    pub entries: u64,
    /// Entries applied, per kind (`insert`, `update`, `delete`, command names).
    pub applied: BTreeMap<String, u64>,
    /// Entries applied, per target namespace.
    pub applied_by_ns: BTreeMap<String, u64>,
    /// Entries skipped, per `kind: reason`.
    pub skipped: BTreeMap<String, u64>,
    /// Updates that read and rewrote their document (deltas one update cannot express).
    pub read_modify_writes: u64,
    /// Transactions applied.
    pub transactions: u64,
    /// Transactions not applied: aborted, or not committed by the end of the replay.
    pub transactions_not_applied: u64,
    /// The newest entry applied or skipped (`seconds:increment`).
    pub reached: Option<String>,
    /// Things that were replayed but not exactly.
    pub warnings: Vec<String>,
}

impl ReplayCounts {
    /// Entries applied in all.
    pub fn applied_total(&self) -> u64 {
        self.applied.values().sum()
    }

    /// Entries skipped in all.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// What one update does on the server.
#[derive(Debug, Clone)]
enum Change {
    Delta(DocDiff),
    Flat(FlatDiff),
    Modifiers { set: Document, unset: Vec<String> },
}

impl Change {
    fn apply(&self, pre: &Document) -> Document {
        match self {
            Change::Delta(d) => diff::apply_doc_diff(pre, d),
            Change::Flat(f) => diff::apply_flat(pre, f),
            Change::Modifiers { set, unset } => diff::apply_modifiers(pre, set, unset),
        }
    }
}

#[derive(Debug, Clone)]
enum WriteKind {
    /// An insert: sent as an insert, and replaced by `_id` where the document exists.
    Insert(RawDocumentBuf),
    /// Replace by `_id`, upserting.
    Replace(RawDocumentBuf),
    /// One update statement (operators or pipeline); `fallback` when refused.
    Update { u: RawBson, fallback: Change },
    /// Read, change in memory, write back.
    Modify(Change),
    /// Delete by `_id`.
    Delete,
}

#[derive(Debug, Clone)]
struct Write {
    ts: Timestamp,
    kind_name: &'static str,
    db: String,
    coll: String,
    id: Bson,
    /// `{_id: <id>}`: the statements' filter, and the document's identity.
    q: RawDocumentBuf,
    /// The target is a time-series collection: its documents are measurements, whose
    /// `_id`s the server may not keep unique, and which it may not update by `_id`.
    timeseries: bool,
    kind: WriteKind,
}

impl Write {
    fn ns(&self) -> String {
        format!("{}.{}", self.db, self.coll)
    }

    /// A hash of the document the write is about (namespace and `_id`). Two
    /// documents that share one only lose their freedom to go in the same round.
    fn doc_key(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.db.hash(&mut h);
        self.coll.hash(&mut h);
        self.q.as_bytes().hash(&mut h);
        h.finish()
    }

    fn class(&self) -> u8 {
        match &self.kind {
            WriteKind::Replace(d) | WriteKind::Insert(d) if self.timeseries || has_empty_ts(d) => 4,
            WriteKind::Replace(_) | WriteKind::Update { .. } => 0,
            WriteKind::Delete => 1,
            WriteKind::Modify(_) => 2,
            WriteKind::Insert(_) => 3,
        }
    }
}

/// Whether a document has a top-level `Timestamp(0, 0)` besides `_id`: servers
/// replace those with the current time on insert and replacement unless told not to
/// (`bypassEmptyTsReplacement`), and some replace them on a replacement even then, so
/// such documents are written by delete and insert.
fn has_empty_ts(d: &RawDocument) -> bool {
    d.iter().filter_map(Result::ok).any(|(k, v)| {
        k.as_str() != "_id"
            && matches!(
                v,
                bson::RawBsonRef::Timestamp(Timestamp {
                    time: 0,
                    increment: 0
                })
            )
    })
}

/// Splits writes into rounds: the k-th write of each document goes in round k. In a
/// round each document appears once, so its writes commute and go out in any order,
/// in large batches; rounds go one after another, so each document's writes keep
/// their order.
fn rounds(writes: Vec<Write>) -> Vec<Vec<Write>> {
    let mut seen: HashMap<u64, usize> = HashMap::with_capacity(writes.len());
    let mut out: Vec<Vec<Write>> = Vec::new();
    for w in writes {
        let n = seen.entry(w.doc_key()).or_insert(0);
        if out.len() <= *n {
            out.push(Vec::new());
        }
        out[*n].push(w);
        *n += 1;
    }
    out
}

/// One pass over the entries before anything is written: counts, the covered range,
/// where each SecantusDB transaction ends, and every entry parsed (so a malformed or
/// unknown entry stops the restore before it starts).
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Entries seen.
    pub entries: u64,
    /// The first `ts`.
    pub first: Option<Timestamp>,
    /// The last `ts`.
    pub last: Option<Timestamp>,
    /// Entries per kind and namespace (`kind ns`).
    pub by_kind_ns: BTreeMap<String, u64>,
    /// SecantusDB transactions: the largest `ts` of each.
    pub txn_ends: HashMap<TxnKey, Timestamp>,
    /// Entries that replay will refuse, with why.
    pub refused: Vec<(Timestamp, String)>,
    /// mongod transactions whose first entry has been seen.
    pub open_chains: HashSet<TxnKey>,
}

impl Scan {
    /// Adds one entry (entries come in `ts` order). Entries at or before the last one
    /// seen are ignored (overlapping inputs).
    pub fn add(&mut self, raw: &RawDocument) -> Result<bool, EntryError> {
        let e = entry::parse(raw)?;
        if self.last.is_some_and(|l| e.ts <= l) {
            return Ok(false);
        }
        self.entries += 1;
        self.first.get_or_insert(e.ts);
        self.last = Some(e.ts);
        *self
            .by_kind_ns
            .entry(format!("{} {}", e.kind(), e.ns))
            .or_default() += 1;
        if e.is_txn_statement() {
            let k = e.session.clone().expect("statement has a session");
            self.txn_ends.insert(k, e.ts);
        }
        match &e.op {
            Op::Command(Command::Refused(n)) => {
                self.refused.push((
                    e.ts,
                    format!("{n} on {} cannot be replayed with ordinary commands", e.ns),
                ));
            }
            Op::Command(Command::ApplyOps { .. }) if !e.multi_op => {
                if let Some(k) = &e.session {
                    let chain_start = e.prev_ts.is_none_or(|p| {
                        p == Timestamp {
                            time: 0,
                            increment: 0,
                        }
                    });
                    if chain_start {
                        self.open_chains.insert(k.clone());
                    } else if !self.open_chains.contains(k) {
                        self.refused.push((
                            e.ts,
                            format!(
                                "a transaction entry whose earlier entries (from {}) are not in the oplog read",
                                show_ts(e.prev_ts.expect("checked"))
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

/// Replays entries onto a target.
pub struct Replayer {
    client: Client,
    opts: ApplyOptions,
    sel: Selection,
    known: HashSet<String>,
    /// Target namespaces that are time-series collections.
    timeseries: HashSet<String>,
    /// The target keeps time-series measurements, not buckets (SecantusDB, which
    /// lists bucket collections but refuses writes to them).
    measurements_only: bool,
    /// Time-series namespaces whose bucket writes were skipped (warned once each).
    bucket_warned: HashSet<String>,
    indexes: BTreeMap<String, Vec<Document>>,
    txn_ends: HashMap<TxnKey, Timestamp>,
    groups: HashMap<TxnKey, Vec<Entry>>,
    mongod_txns: HashMap<TxnKey, Vec<Entry>>,
    pending: Vec<Write>,
    /// Bytes of the buffered writes (documents, filters), bounded by [`PENDING_BYTES`].
    pending_bytes: usize,
    /// Writes being sent in the background: how many were read-modify-writes.
    inflight: Option<tokio::task::JoinHandle<Result<u64, ApplyError>>>,
    counts: ReplayCounts,
    last: Option<Timestamp>,
}

fn code_of(e: &mongodb::error::Error) -> Option<i32> {
    crate::connect::code_of(e)
}

const NAMESPACE_EXISTS: i32 = 48;
const NAMESPACE_NOT_FOUND: i32 = 26;
const INDEX_NOT_FOUND: i32 = 27;

/// The target's collections and views, as `db.coll`, and which of them are
/// time-series collections.
pub async fn target_namespaces(
    client: &Client,
) -> Result<(HashSet<String>, HashSet<String>), ApplyError> {
    let mut out = HashSet::new();
    let mut timeseries = HashSet::new();
    let dbs = client
        .list_database_names()
        .await
        .map_err(|e| ApplyError::Catalog(Box::new(e)))?;
    for db in dbs {
        let infos = crate::dump::plan::cursor_docs(
            &client.database(&db),
            bson::rawdoc! {"listCollections": 1, "nameOnly": false},
        )
        .await
        .map_err(|e| ApplyError::Catalog(Box::new(e)))?;
        for i in infos {
            let Ok(name) = i.get_str("name") else {
                continue;
            };
            let ns = format!("{db}.{name}");
            if i.get_str("type").ok() == Some("timeseries") {
                timeseries.insert(ns.clone());
            }
            out.insert(ns);
        }
    }
    Ok((out, timeseries))
}

fn split_ns(ns: &str) -> (&str, &str) {
    ns.split_once('.').unwrap_or((ns, ""))
}

/// Namespaces replay leaves alone unless asked: server-internal and system data.
fn system_ns(ns: &str) -> Option<&'static str> {
    let (db, coll) = split_ns(ns);
    match (db, coll) {
        ("local", _) => Some("local database"),
        ("config", _) => Some("config database"),
        ("admin", "system.version") | ("admin", "system.keys") => Some("server metadata"),
        ("admin", "system.users") | ("admin", "system.roles") => {
            Some("users and roles are not replayed")
        }
        (_, "system.profile") => Some("profiler data"),
        _ if coll.starts_with("__mdb_internal") => Some("internal collection"),
        _ => None,
    }
}

impl Replayer {
    /// A replayer onto `client`, with the target's namespaces read now and the
    /// index catalog (`db.coll` to its secondary index specs) of what is restored.
    pub async fn new(
        client: Client,
        opts: ApplyOptions,
        sel: Selection,
        indexes: BTreeMap<String, Vec<Document>>,
        txn_ends: HashMap<TxnKey, Timestamp>,
    ) -> Result<Replayer, ApplyError> {
        let (known, timeseries) = target_namespaces(&client).await?;
        let measurements_only = crate::connect::server_info(&client)
            .await
            .map_err(|e| ApplyError::Catalog(Box::new(e)))?
            .secantus_version
            .is_some();
        let mut r = Replayer {
            client,
            opts,
            sel,
            known,
            timeseries,
            measurements_only,
            bucket_warned: HashSet::new(),
            indexes,
            txn_ends,
            groups: HashMap::new(),
            mongod_txns: HashMap::new(),
            pending: Vec::new(),
            pending_bytes: 0,
            inflight: None,
            counts: ReplayCounts::default(),
            last: None,
        };
        r.opts.lanes = r.opts.lanes.max(1);
        r.opts.batch = r.opts.batch.max(1);
        Ok(r)
    }

    /// The newest entry handled so far.
    pub fn reached(&self) -> Option<Timestamp> {
        self.last
    }

    fn skip(&mut self, kind: &str, why: &str) {
        *self
            .counts
            .skipped
            .entry(format!("{kind}: {why}"))
            .or_default() += 1;
    }

    fn applied(&mut self, kind: &str, ns: &str) {
        *self.counts.applied.entry(kind.to_string()).or_default() += 1;
        *self.counts.applied_by_ns.entry(ns.to_string()).or_default() += 1;
    }

    /// The target of a source namespace, or why it is not replayed.
    fn target(&self, ns: &str) -> Result<String, &'static str> {
        // mongod's buckets of `db.X` follow the selection and names of `db.X`.
        let (db, coll) = split_ns(ns);
        if let Some(name) = coll.strip_prefix("system.buckets.") {
            let t = self.target(&format!("{db}.{name}"))?;
            let (tdb, tcoll) = split_ns(&t);
            return Ok(format!("{tdb}.system.buckets.{tcoll}"));
        }
        if !self.opts.include_system
            && let Some(why) = system_ns(ns)
        {
            return Err(why);
        }
        if !self.sel.filter.allows(ns) {
            return Err("namespace not selected");
        }
        Ok(self.sel.renamer.rename(ns))
    }

    /// Handles one entry. Entries must come in `ts` order; an entry at or before the
    /// newest one handled is ignored (overlapping inputs).
    pub async fn apply(&mut self, raw: &RawDocument) -> Result<(), ApplyError> {
        let e = entry::parse(raw)?;
        if self.last.is_some_and(|l| e.ts <= l) {
            return Ok(());
        }
        self.last = Some(e.ts);
        self.counts.entries += 1;
        self.entry(e).await
    }

    async fn entry(&mut self, e: Entry) -> Result<(), ApplyError> {
        match &e.op {
            Op::Noop => self.skip("noop", "nothing to do"),
            Op::Container(k) => {
                let k = k.clone();
                self.skip(&k, "internal container operation")
            }
            Op::Insert { .. } | Op::Update { .. } | Op::Delete { .. } => {
                if e.is_txn_statement() {
                    return self.statement(e).await;
                }
                if let Some(w) = self.translate(e).await? {
                    self.pending_bytes += write_len(&w);
                    self.pending.push(w);
                    if self.pending.len() >= self.opts.pending
                        || self.pending_bytes >= PENDING_BYTES
                    {
                        self.send_pending().await?;
                    }
                }
            }
            Op::Command(_) => return self.command(e).await,
        }
        Ok(())
    }

    /// A SecantusDB transaction statement: buffered until the group's last one.
    async fn statement(&mut self, e: Entry) -> Result<(), ApplyError> {
        let key = e.session.clone().expect("statement has a session");
        let end = self.txn_ends.get(&key).copied().unwrap_or(e.ts);
        let ts = e.ts;
        self.groups.entry(key.clone()).or_default().push(e);
        if ts >= end {
            let ops = self.groups.remove(&key).unwrap_or_default();
            self.unit(ops).await?;
        }
        Ok(())
    }

    /// Turns a CRUD entry into a write, or counts why not.
    async fn translate(&mut self, e: Entry) -> Result<Option<Write>, ApplyError> {
        let kind_name = match e.op {
            Op::Insert { .. } => "insert",
            Op::Update { .. } => "update",
            _ => "delete",
        };
        let target = match self.target(&e.ns) {
            Ok(t) => t,
            Err(why) => {
                self.skip(kind_name, why);
                return Ok(None);
            }
        };
        let (db, coll) = split_ns(&target);
        let (db, coll) = (db.to_string(), coll.to_string());
        if coll == "system.views" {
            self.flush().await?;
            return self.view_write(&e).await.map(|()| None);
        }
        if let Some(name) = coll.strip_prefix("system.buckets.")
            && (self.measurements_only
                || (!self.known.contains(&target)
                    && self.timeseries.contains(&format!("{db}.{name}"))))
        {
            return self.bucket_write(&e, kind_name, &db, name).map(|()| None);
        }
        if !self.known.contains(&target) {
            self.skip(kind_name, "collection missing on the target");
            return Ok(None);
        }
        let id = e.id().cloned().expect("CRUD has an _id");
        let ts = e.ts;
        let Some(kind) = write_kind(e.op)? else {
            self.skip("update", "empty update");
            return Ok(None);
        };
        let timeseries = self.timeseries.contains(&target);
        let kind = match kind {
            // Measurements are updated by delete and insert: servers that keep them
            // take updates filtered only on the meta field.
            WriteKind::Update { fallback, .. } if timeseries => WriteKind::Modify(fallback),
            k => k,
        };
        self.applied(kind_name, &target);
        Ok(Some(Write {
            ts,
            kind_name,
            q: id_filter(&id)?,
            timeseries,
            db,
            coll,
            id,
            kind,
        }))
    }

    /// A write of mongod's time-series buckets where the target keeps the
    /// measurements themselves (SecantusDB refuses bucket writes, code 115; a
    /// time-series collection without a bucket collection is taken the same way). A
    /// bucket's change cannot be turned into measurement writes without the bucket it
    /// changes, so the replay stops, or with `accept_partial` counts the write as
    /// skipped.
    fn bucket_write(
        &mut self,
        e: &Entry,
        kind_name: &str,
        db: &str,
        name: &str,
    ) -> Result<(), ApplyError> {
        let ts_ns = format!("{db}.{name}");
        if !self.opts.accept_partial {
            return Err(self.refused(
                e,
                format!(
                    "a write of mongod's time-series buckets: the target's {ts_ns} keeps measurements, not buckets (it refuses bucket writes), and a bucket's change cannot be replayed as measurements; `--dry-run` counts these entries, --oplog-accept-partial skips them (counted)"
                ),
            ));
        }
        if self.bucket_warned.insert(ts_ns.clone()) {
            self.counts.warnings.push(format!(
                "{ts_ns}: mongod time-series bucket writes skipped (the target keeps measurements, not buckets); its measurements are those of the restored data only"
            ));
        }
        self.skip(
            kind_name,
            "time-series bucket write (the target keeps measurements, not buckets)",
        );
        Ok(())
    }

    /// mongod's views are documents of `db.system.views`: replayed as view DDL.
    async fn view_write(&mut self, e: &Entry) -> Result<(), ApplyError> {
        let kind = e.kind().to_string();
        let view_doc = match &e.op {
            Op::Insert { doc, .. } => Some(
                Document::try_from(doc.as_ref()).map_err(|x| self.refused(e, format!("{x}")))?,
            ),
            Op::Update {
                update: Update::Replacement(d),
                ..
            } => Some(d.clone()),
            Op::Update { .. } => {
                self.skip(&kind, "partial update of a view definition");
                return Ok(());
            }
            _ => None,
        };
        let Some(Bson::String(full)) = e.id().cloned() else {
            self.skip(&kind, "view document without a name");
            return Ok(());
        };
        let target = match self.target(&full) {
            Ok(t) => t,
            Err(why) => {
                self.skip(&kind, why);
                return Ok(());
            }
        };
        let vname = split_ns(&target).1.to_string();
        match view_doc {
            Some(d) => {
                let view_on = d.get_str("viewOn").unwrap_or("").to_string();
                if view_on.starts_with("system.buckets.") {
                    self.skip(&kind, "time-series view (created with its collection)");
                    return Ok(());
                }
                let pipeline = d.get("pipeline").cloned().unwrap_or(Bson::Array(vec![]));
                let view_on = self.view_source(split_ns(&full).0, &view_on, &target, &pipeline);
                let mut cmd = if self.known.contains(&target) {
                    doc! {"collMod": &vname, "viewOn": &view_on, "pipeline": pipeline}
                } else {
                    doc! {"create": &vname, "viewOn": &view_on, "pipeline": pipeline}
                };
                if !cmd.contains_key("collMod")
                    && let Some(c) = d.get("collation")
                {
                    cmd.insert("collation", c.clone());
                }
                self.run_ddl(e, &target, cmd, &[NAMESPACE_EXISTS]).await?;
                self.known.insert(target.clone());
            }
            None => {
                if self.known.remove(&target) {
                    self.run_ddl(e, &target, doc! {"drop": &vname}, &[NAMESPACE_NOT_FOUND])
                        .await?;
                } else {
                    self.skip(&kind, "view missing on the target");
                    return Ok(());
                }
            }
        }
        self.applied(&format!("view {kind}"), &target);
        Ok(())
    }

    /// The `viewOn` of a view created or changed at `target`: its source collection
    /// under the selection's names, when that stays in the view's database. A remap
    /// cannot follow the collections a pipeline names (`$lookup`, `$unionWith`, ...):
    /// those are warned about.
    fn view_source(&mut self, src_db: &str, on: &str, target: &str, pipeline: &Bson) -> String {
        if self.sel.renamer.is_empty() {
            return on.to_string();
        }
        let mut stages = Vec::new();
        foreign_stages(pipeline, &mut stages);
        if !stages.is_empty() {
            self.counts.warnings.push(format!(
                "view {target}: its pipeline names other collections ({}), which the remap does not rename",
                stages.join(", ")
            ));
        }
        let mapped = self.sel.renamer.rename(&format!("{src_db}.{on}"));
        let (vdb, vcoll) = split_ns(&mapped);
        if vdb == split_ns(target).0 {
            vcoll.to_string()
        } else {
            self.counts.warnings.push(format!(
                "view {target}: its source {src_db}.{on} maps to another database ({mapped}); the view keeps {on}"
            ));
            on.to_string()
        }
    }

    fn refused(&self, e: &Entry, why: impl Into<String>) -> ApplyError {
        ApplyError::Refused {
            at: show_ts(e.ts),
            kind: e.kind().to_string(),
            ns: e.ns.clone(),
            why: why.into(),
        }
    }

    async fn run_ddl(
        &self,
        e: &Entry,
        target: &str,
        mut cmd: Document,
        done: &[i32],
    ) -> Result<bool, ApplyError> {
        let (db, _) = split_ns(target);
        if let Some(wc) = &self.opts.write_concern {
            cmd.insert("writeConcern", wc.clone());
        }
        let db = if cmd.contains_key("renameCollection") {
            "admin"
        } else {
            db
        };
        match self.client.database(db).run_command(cmd).await {
            Ok(_) => Ok(true),
            Err(x) if code_of(&x).is_some_and(|c| done.contains(&c)) => Ok(false),
            Err(source) => Err(ApplyError::Server {
                at: show_ts(e.ts),
                kind: e.kind().to_string(),
                ns: target.to_string(),
                source: Box::new(source),
            }),
        }
    }

    /// A command entry: a barrier.
    async fn command(&mut self, e: Entry) -> Result<(), ApplyError> {
        let Op::Command(c) = &e.op else {
            unreachable!("commands only")
        };
        // Transactions and batches first: they are not DDL.
        match c {
            Command::ApplyOps {
                ops,
                partial,
                prepare,
            } => {
                let session = e.session.clone().filter(|_| !e.multi_op);
                let Some(key) = session else {
                    // A batched write: each operation on its own, with the outer ts.
                    self.applied("applyOps", "");
                    for op in ops.clone() {
                        Box::pin(self.entry(op)).await?;
                    }
                    return Ok(());
                };
                let chain_start = e.prev_ts.is_none_or(|p| {
                    p == Timestamp {
                        time: 0,
                        increment: 0,
                    }
                });
                if !self.mongod_txns.contains_key(&key) && !chain_start {
                    return Err(self.refused(
                        &e,
                        format!(
                            "the transaction's earlier entries (from {}) are not in the oplog read; the window starts inside the transaction",
                            show_ts(e.prev_ts.expect("checked"))
                        ),
                    ));
                }
                let buf = self.mongod_txns.entry(key.clone()).or_default();
                buf.extend(ops.iter().cloned());
                if !*partial && !*prepare {
                    let ops = self.mongod_txns.remove(&key).unwrap_or_default();
                    self.unit(ops).await?;
                }
                return Ok(());
            }
            Command::CommitTransaction => {
                let Some(key) = e.session.clone() else {
                    return Err(self.refused(&e, "commitTransaction without a session"));
                };
                match self.mongod_txns.remove(&key) {
                    Some(ops) => self.unit(ops).await?,
                    None => {
                        return Err(self.refused(
                            &e,
                            "commit of a prepared transaction whose entries are not in the oplog read",
                        ));
                    }
                }
                return Ok(());
            }
            Command::AbortTransaction => {
                if let Some(key) = &e.session
                    && self.mongod_txns.remove(key).is_some()
                {
                    self.counts.transactions_not_applied += 1;
                }
                self.skip("abortTransaction", "transaction aborted");
                return Ok(());
            }
            _ => {}
        }
        self.flush().await?;
        self.ddl(&e).await
    }

    async fn ddl(&mut self, e: &Entry) -> Result<(), ApplyError> {
        let Op::Command(c) = &e.op else {
            unreachable!("commands only")
        };
        let kind = c.name().to_string();
        let db = e.db().to_string();
        // The namespace a command is about, for selection.
        let about = match c {
            Command::Create { coll, .. }
            | Command::Drop { coll }
            | Command::CreateIndexes { coll, .. }
            | Command::DropIndex { coll, .. }
            | Command::CollMod { coll, .. }
            | Command::ConvertToCapped { coll, .. }
            | Command::EmptyCapped { coll } => Some(format!("{db}.{coll}")),
            Command::Rename { from, .. } => Some(from.clone()),
            _ => None,
        };
        let target = match about.as_deref().map(|a| self.target(a)) {
            Some(Ok(t)) => Some(t),
            Some(Err(why)) => {
                if let Command::Rename { to, .. } = c
                    && self.target(to).is_ok()
                {
                    return self
                        .partial(e, "a rename into the selection from outside it")
                        .await;
                }
                self.skip(&kind, why);
                return Ok(());
            }
            None => None,
        };
        match c {
            Command::Create { coll, options } => {
                let mut target = target.expect("create names a collection");
                let mut options = options.clone();
                let (tdb, tcoll) = split_ns(&target);
                let (tdb, mut tcoll) = (tdb.to_string(), tcoll.to_string());
                if tcoll == "system.views" {
                    self.skip(&kind, "views are created by their own entries");
                    return Ok(());
                }
                if let Some(name) = coll.strip_prefix("system.buckets.") {
                    // mongod's time-series buckets: the collection is created by name.
                    let mut o = Document::new();
                    for k in ["timeseries", "expireAfterSeconds"] {
                        if let Some(v) = options.get(k) {
                            o.insert(k, v.clone());
                        }
                    }
                    options = o;
                    tcoll = split_ns(&self.sel.renamer.rename(&format!("{db}.{name}")))
                        .1
                        .to_string();
                    target = format!("{tdb}.{tcoll}");
                }
                if let Some(Bson::String(on)) = options.get("viewOn").cloned() {
                    let pipeline = options.get("pipeline").cloned().unwrap_or(Bson::Null);
                    let on = self.view_source(&db, &on, &target, &pipeline);
                    options.insert("viewOn", on);
                }
                if self.known.contains(&target) {
                    self.skip(&kind, "collection exists on the target");
                    return Ok(());
                }
                let timeseries = options.contains_key("timeseries");
                let mut cmd = doc! {"create": &tcoll};
                cmd.extend(options);
                self.run_ddl(e, &target, cmd, &[NAMESPACE_EXISTS]).await?;
                self.known.insert(target.clone());
                if timeseries {
                    self.timeseries.insert(target.clone());
                    // mongod keeps the measurements in buckets it lists; a server
                    // that keeps measurements lists none.
                    let buckets = format!("system.buckets.{tcoll}");
                    let listed = crate::dump::plan::cursor_docs(
                        &self.client.database(&tdb),
                        bson::rawdoc! {"listCollections": 1, "filter": {"name": buckets.as_str()}, "nameOnly": true},
                    )
                    .await
                    .map_err(|e| ApplyError::Catalog(Box::new(e)))?;
                    if !listed.is_empty() {
                        self.known.insert(format!("{tdb}.{buckets}"));
                    }
                } else {
                    self.timeseries.remove(&target);
                }
                self.applied(&kind, &target);
            }
            Command::Drop { .. } => {
                let target = target.expect("drop names a collection");
                let (_, tcoll) = split_ns(&target);
                if !self.known.contains(&target) {
                    self.skip(&kind, "collection missing on the target");
                    return Ok(());
                }
                self.run_ddl(e, &target, doc! {"drop": tcoll}, &[NAMESPACE_NOT_FOUND])
                    .await?;
                self.known.remove(&target);
                self.indexes.remove(&target);
                self.applied(&kind, &target);
            }
            Command::Rename {
                to, drop_target, ..
            } => {
                let from_t = target.expect("rename names a collection");
                let to_t = match self.target(to) {
                    Ok(t) => t,
                    Err(_) => {
                        return self
                            .partial(e, "a rename out of the selection (replayed as a drop)")
                            .await;
                    }
                };
                if !self.known.contains(&from_t) {
                    self.skip(&kind, "collection missing on the target");
                    return Ok(());
                }
                let mut cmd = doc! {"renameCollection": &from_t, "to": &to_t};
                if *drop_target {
                    cmd.insert("dropTarget", true);
                }
                if self.known.contains(&to_t) && !*drop_target {
                    self.skip(&kind, "target collection exists");
                    return Ok(());
                }
                self.run_ddl(e, &from_t, cmd, &[NAMESPACE_NOT_FOUND, NAMESPACE_EXISTS])
                    .await?;
                self.known.remove(&from_t);
                self.known.insert(to_t.clone());
                if self.timeseries.remove(&from_t) {
                    self.timeseries.insert(to_t.clone());
                } else {
                    self.timeseries.remove(&to_t);
                }
                let specs = self.indexes.remove(&from_t);
                match specs {
                    Some(s) => {
                        self.indexes.insert(to_t.clone(), s);
                    }
                    None => {
                        self.indexes.remove(&to_t);
                    }
                }
                self.applied(&kind, &to_t);
            }
            Command::DropDatabase => {
                if !self.sel.is_everything() && !self.opts.include_system {
                    // Only the selected collections of the database go.
                    if !self.opts.accept_partial {
                        return Err(self.refused(
                            e,
                            "a dropDatabase under a namespace selection or remap (only part of the database is restored); --oplog-accept-partial drops the selected collections only",
                        ));
                    }
                }
                let prefix = format!("{db}.");
                let victims: Vec<String> = self
                    .known
                    .iter()
                    .filter(|k| k.starts_with(&prefix))
                    .filter(|k| self.target(k).as_deref() == Ok(k.as_str()))
                    .cloned()
                    .collect();
                if self.sel.is_everything() {
                    if system_ns(&format!("{db}.x")).is_some() && !self.opts.include_system {
                        self.skip(&kind, "system database");
                        return Ok(());
                    }
                    self.run_ddl(e, &format!("{db}.$cmd"), doc! {"dropDatabase": 1}, &[])
                        .await?;
                    self.known.retain(|k| !k.starts_with(&prefix));
                    self.indexes.retain(|k, _| !k.starts_with(&prefix));
                } else {
                    for v in victims {
                        let (_, c) = split_ns(&v);
                        self.run_ddl(e, &v, doc! {"drop": c}, &[NAMESPACE_NOT_FOUND])
                            .await?;
                        self.known.remove(&v);
                        self.indexes.remove(&v);
                    }
                }
                self.applied(&kind, &format!("{db}.$cmd"));
            }
            Command::CreateIndexes { specs, .. } => {
                let target = target.expect("names a collection");
                if !self.known.contains(&target) {
                    self.skip(&kind, "collection missing on the target");
                    return Ok(());
                }
                let cat = self.indexes.entry(target.clone()).or_default();
                for s in specs {
                    let name = s.get_str("name").unwrap_or_default();
                    if name == "_id_" {
                        continue;
                    }
                    cat.retain(|x| x.get_str("name").ok() != Some(name));
                    cat.push(s.clone());
                }
                self.applied(&kind, &target);
            }
            Command::DropIndex { name, .. } => {
                let target = target.expect("names a collection");
                let (_, tcoll) = split_ns(&target);
                if !self.known.contains(&target) {
                    self.skip(&kind, "collection missing on the target");
                    return Ok(());
                }
                if let Some(cat) = self.indexes.get_mut(&target) {
                    cat.retain(|x| x.get_str("name").ok() != Some(name.as_str()));
                }
                // Built already (not by this restore): drop it on the server too.
                self.run_ddl(
                    e,
                    &target,
                    doc! {"dropIndexes": tcoll, "index": name},
                    &[INDEX_NOT_FOUND, NAMESPACE_NOT_FOUND],
                )
                .await?;
                self.applied(&kind, &target);
            }
            Command::CollMod { options, index, .. } => {
                let target = target.expect("names a collection");
                let (_, tcoll) = split_ns(&target);
                if !self.known.contains(&target) {
                    self.skip(&kind, "collection missing on the target");
                    return Ok(());
                }
                if options.is_empty() && index.is_none() {
                    self.skip(
                        &kind,
                        "no options logged (SecantusDB logs index and view changes without their content)",
                    );
                    return Ok(());
                }
                if let Some(ix) = index {
                    let cat = self.indexes.entry(target.clone()).or_default();
                    let hit =
                        cat.iter_mut()
                            .find(|s| match (ix.get("name"), ix.get("keyPattern")) {
                                (Some(n), _) => s.get("name") == Some(n),
                                (None, Some(k)) => s.get("key") == Some(k),
                                _ => false,
                            });
                    if let Some(spec) = hit {
                        for (k, v) in ix {
                            if k != "name" && k != "keyPattern" {
                                spec.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                if !options.is_empty() {
                    let mut cmd = doc! {"collMod": tcoll};
                    let mut options = options.clone();
                    if let Some(Bson::String(on)) = options.get("viewOn").cloned() {
                        let mapped = self.sel.renamer.rename(&format!("{db}.{on}"));
                        options.insert("viewOn", split_ns(&mapped).1);
                    }
                    cmd.extend(options);
                    self.run_ddl(e, &target, cmd, &[NAMESPACE_NOT_FOUND])
                        .await?;
                }
                self.applied(&kind, &target);
            }
            Command::ConvertToCapped { size, .. } => {
                let target = target.expect("names a collection");
                let (_, tcoll) = split_ns(&target);
                if !self.known.contains(&target) {
                    self.skip(&kind, "collection missing on the target");
                    return Ok(());
                }
                self.run_ddl(
                    e,
                    &target,
                    doc! {"convertToCapped": tcoll, "size": *size},
                    &[NAMESPACE_NOT_FOUND],
                )
                .await?;
                self.applied(&kind, &target);
            }
            Command::EmptyCapped { .. } => {
                let target = target.expect("names a collection");
                let (_, tcoll) = split_ns(&target);
                if !self.known.contains(&target) {
                    self.skip(&kind, "collection missing on the target");
                    return Ok(());
                }
                self.run_ddl(
                    e,
                    &target,
                    doc! {"delete": tcoll, "deletes": [{"q": {}, "limit": 0}]},
                    &[NAMESPACE_NOT_FOUND],
                )
                .await?;
                self.applied(&kind, &target);
            }
            Command::Ignored(n) => {
                let n = n.clone();
                self.skip(&n, "index build or internal bookkeeping");
            }
            Command::Refused(n) => {
                return Err(
                    self.refused(e, format!("{n} cannot be replayed with ordinary commands"))
                );
            }
            Command::ApplyOps { .. } | Command::CommitTransaction | Command::AbortTransaction => {
                unreachable!("handled by command()")
            }
        }
        Ok(())
    }

    /// Where the selection breaks a unit: stop, unless partial results are accepted.
    async fn partial(&mut self, e: &Entry, what: &str) -> Result<(), ApplyError> {
        if !self.opts.accept_partial {
            return Err(self.refused(
                e,
                format!("{what}; --oplog-accept-partial replays what is selected"),
            ));
        }
        self.counts.warnings.push(format!(
            "{} ({} on {}): {what}",
            show_ts(e.ts),
            e.kind(),
            e.ns
        ));
        if let Op::Command(Command::Rename { from, .. }) = &e.op
            && let Ok(t) = self.target(from)
            && self.known.contains(&t)
        {
            let (_, c) = split_ns(&t);
            let c = c.to_string();
            self.run_ddl(e, &t, doc! {"drop": c}, &[NAMESPACE_NOT_FOUND])
                .await?;
            self.known.remove(&t);
            self.indexes.remove(&t);
            self.applied("renameCollection", &t);
        } else {
            self.skip(e.kind(), "outside the selection");
        }
        Ok(())
    }

    /// The operations of one committed transaction, applied together.
    async fn unit(&mut self, ops: Vec<Entry>) -> Result<(), ApplyError> {
        self.flush().await?;
        self.counts.transactions += 1;
        let selected = ops.iter().filter(|o| self.target(&o.ns).is_ok()).count();
        let crud = ops.iter().filter(|o| o.is_crud()).count();
        if selected > 0
            && selected < ops.len()
            && ops
                .iter()
                .any(|o| system_ns(&o.ns).is_none() && self.target(&o.ns).is_err())
        {
            let e = &ops[0];
            if !self.opts.accept_partial {
                return Err(self.refused(
                    e,
                    "a transaction over selected and unselected namespaces; --oplog-accept-partial applies its selected part",
                ));
            }
            self.counts.warnings.push(format!(
                "transaction committed at {}: applied only its selected namespaces",
                show_ts(e.ts)
            ));
        }
        if crud == ops.len() {
            let mut writes = Vec::new();
            for o in ops {
                if let Some(w) = self.translate(o).await? {
                    writes.push(w);
                }
            }
            if writes.is_empty() {
                return Ok(());
            }
            let ctx = self.ctx();
            let mut session = self.client.start_session().await.ok();
            if let Some(s) = session.as_mut()
                && s.start_transaction().await.is_ok()
            {
                let r = run_writes(&ctx, &writes, &mut Some(s)).await;
                match r {
                    Ok(n) => {
                        if s.commit_transaction().await.is_ok() {
                            self.counts.read_modify_writes += n;
                            return Ok(());
                        }
                    }
                    Err(_) => {
                        let _ = s.abort_transaction().await;
                    }
                }
            }
            // No transaction on the target: the same writes in order (each one
            // idempotent, so the final state is the same).
            let n = run_writes(&ctx, &writes, &mut None).await?;
            self.counts.read_modify_writes += n;
            return Ok(());
        }
        for o in ops {
            if o.is_crud() {
                if let Some(w) = self.translate(o).await? {
                    self.pending.push(w);
                }
            } else {
                self.flush().await?;
                Box::pin(self.entry(o)).await?;
            }
        }
        self.flush().await
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            client: self.client.clone(),
            batch: self.opts.batch,
            write_concern: self.opts.write_concern.clone(),
        }
    }

    /// Sends the buffered writes and waits for every write sent before.
    pub async fn flush(&mut self) -> Result<(), ApplyError> {
        self.send_pending().await?;
        self.settle().await
    }

    /// Waits for the writes sent in the background.
    async fn settle(&mut self) -> Result<(), ApplyError> {
        if let Some(h) = self.inflight.take() {
            self.counts.read_modify_writes += h.await.expect("replay writer panicked")?;
        }
        Ok(())
    }

    /// Sends the buffered writes in the background, once the writes sent before them
    /// are done (a document may have writes in both), while the next entries are read
    /// and translated. They go round by round (see [`rounds`]): in a round, the writes
    /// of one namespace and kind go out in batches of distinct documents, up to
    /// `lanes` batches at a time.
    async fn send_pending(&mut self) -> Result<(), ApplyError> {
        self.settle().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let ctx = Arc::new(self.ctx());
        let lanes = self.opts.lanes;
        self.inflight = Some(tokio::spawn(async move {
            let mut rmw = 0;
            for round in rounds(writes) {
                rmw += send_round(&ctx, round, lanes).await?;
            }
            Ok(rmw)
        }));
        Ok(())
    }

    /// Sends what is buffered and returns the counts and the final index catalog.
    /// Transactions never committed in what was read are counted as not applied.
    pub async fn finish(
        mut self,
    ) -> Result<(ReplayCounts, BTreeMap<String, Vec<Document>>), ApplyError> {
        self.flush().await?;
        let open = self.groups.len() + self.mongod_txns.len();
        if open > 0 {
            self.counts.transactions_not_applied += open as u64;
            let ops: usize = self
                .groups
                .values()
                .chain(self.mongod_txns.values())
                .map(Vec::len)
                .sum();
            for _ in 0..ops {
                self.skip(
                    "transaction operation",
                    "not committed by the end of the replay",
                );
            }
        }
        self.counts.reached = self.last.map(show_ts);
        Ok((self.counts, self.indexes))
    }
}

/// Pipeline stages that name another collection, found anywhere in `v`.
fn foreign_stages(v: &Bson, out: &mut Vec<String>) {
    match v {
        Bson::Array(a) => a.iter().for_each(|x| foreign_stages(x, out)),
        Bson::Document(d) => {
            for (k, x) in d {
                if ["$lookup", "$unionWith", "$graphLookup", "$merge", "$out"].contains(&k.as_str())
                    && !out.contains(k)
                {
                    out.push(k.clone());
                }
                foreign_stages(x, out);
            }
        }
        _ => {}
    }
}

/// How a CRUD entry is written: `None` for an update that changes nothing.
fn write_kind(op: Op) -> Result<Option<WriteKind>, ApplyError> {
    let kind = match op {
        Op::Insert { doc, .. } => WriteKind::Insert(doc),
        Op::Delete { .. } => WriteKind::Delete,
        Op::Update { update, .. } => match &update {
            Update::Replacement(d) => WriteKind::Replace(raw_doc(d)?),
            Update::Modifiers { set, unset } => {
                let mut u = Document::new();
                if !set.is_empty() {
                    u.insert("$set", set.clone());
                }
                if !unset.is_empty() {
                    let un: Document = unset.iter().map(|k| (k.clone(), Bson::from(""))).collect();
                    u.insert("$unset", un);
                }
                if u.is_empty() {
                    return Ok(None);
                }
                WriteKind::Update {
                    u: raw_bson(Bson::Document(u))?,
                    fallback: Change::Modifiers {
                        set: set.clone(),
                        unset: unset.clone(),
                    },
                }
            }
            Update::Delta(d) if d.is_empty() => return Ok(None),
            Update::Delta(d) if d.is_top_level() => WriteKind::Update {
                u: raw_bson(Bson::Array(pipeline_of(d)))?,
                fallback: Change::Delta(d.clone()),
            },
            Update::Delta(d) => WriteKind::Modify(Change::Delta(d.clone())),
            Update::Flat(f) if f.truncated.is_empty() => {
                let mut u = Document::new();
                if !f.updated.is_empty() {
                    u.insert("$set", f.updated.clone());
                }
                if !f.removed.is_empty() {
                    let un: Document = f
                        .removed
                        .iter()
                        .map(|k| (k.clone(), Bson::from("")))
                        .collect();
                    u.insert("$unset", un);
                }
                if u.is_empty() {
                    return Ok(None);
                }
                WriteKind::Update {
                    u: raw_bson(Bson::Document(u))?,
                    fallback: Change::Flat(f.clone()),
                }
            }
            Update::Flat(f) => WriteKind::Modify(Change::Flat(f.clone())),
        },
        _ => unreachable!("CRUD only"),
    };
    Ok(Some(kind))
}

fn raw_doc(d: &Document) -> Result<RawDocumentBuf, ApplyError> {
    RawDocumentBuf::try_from(d).map_err(|e| ApplyError::Encode(e.to_string()))
}

fn raw_bson(b: Bson) -> Result<RawBson, ApplyError> {
    RawBson::try_from(b).map_err(|e| ApplyError::Encode(e.to_string()))
}

/// The pipeline that applies a top-level delta exactly: removed fields, then the
/// `u` fields (in place, or appended when missing), then the `i` fields unset and
/// set again so that they land at the end, in their order.
pub fn pipeline_of(d: &DocDiff) -> Vec<Bson> {
    let lit = |v: &Bson| Bson::Document(doc! {"$literal": v.clone()});
    let mut stages = Vec::new();
    if !d.delete.is_empty() {
        stages.push(Bson::Document(doc! {"$unset": d.delete.clone()}));
    }
    if !d.update.is_empty() {
        let s: Document = d.update.iter().map(|(k, v)| (k.clone(), lit(v))).collect();
        stages.push(Bson::Document(doc! {"$set": s}));
    }
    if !d.insert.is_empty() {
        let names: Vec<String> = d.insert.iter().map(|(k, _)| k.clone()).collect();
        stages.push(Bson::Document(doc! {"$unset": names}));
        let s: Document = d.insert.iter().map(|(k, v)| (k.clone(), lit(v))).collect();
        stages.push(Bson::Document(doc! {"$set": s}));
    }
    stages
}

struct Ctx {
    client: Client,
    batch: usize,
    write_concern: Option<Document>,
}

/// Most bytes of statements per write command.
const BATCH_BYTES: usize = 8 << 20;
/// Most bytes of writes buffered before they are sent (besides those in flight): with
/// [`ApplyOptions::pending`], what bounds the replay's memory whatever the documents'
/// sizes.
const PENDING_BYTES: usize = 64 << 20;

fn wr_err(w: &Write, code: i32, message: String) -> ApplyError {
    ApplyError::Write {
        at: show_ts(w.ts),
        kind: w.kind_name.to_string(),
        ns: w.ns(),
        code,
        message,
    }
}

fn srv_err(w: &Write, source: mongodb::error::Error) -> ApplyError {
    ApplyError::Server {
        at: show_ts(w.ts),
        kind: w.kind_name.to_string(),
        ns: w.ns(),
        source: Box::new(source),
    }
}

async fn run_cmd(
    ctx: &Ctx,
    db: &str,
    cmd: RawDocumentBuf,
    session: &mut Option<&mut ClientSession>,
) -> Result<bson::Document, mongodb::error::Error> {
    let d = ctx.client.database(db);
    match session {
        Some(s) => d.run_raw_command(cmd).session(&mut **s).await,
        None => d.run_raw_command(cmd).await,
    }
}

fn id_filter(id: &Bson) -> Result<RawDocumentBuf, ApplyError> {
    raw_doc(&doc! {"_id": id.clone()})
}

/// Runs writes in order, grouping consecutive writes of one namespace and class into
/// one ordered command. Returns how many were read-modify-writes.
async fn run_writes(
    ctx: &Ctx,
    writes: &[Write],
    session: &mut Option<&mut ClientSession>,
) -> Result<u64, ApplyError> {
    let mut rmw = 0;
    let mut i = 0;
    while i < writes.len() {
        let w = &writes[i];
        match w.class() {
            2 => {
                let WriteKind::Modify(change) = &w.kind else {
                    unreachable!("class 2 is a read-modify-write")
                };
                modify(ctx, w, change, session).await?;
                rmw += 1;
                i += 1;
                continue;
            }
            4 => {
                // One at a time: a run could hold one `_id` twice.
                reinsert(ctx, std::slice::from_ref(w), session).await?;
                i += 1;
                continue;
            }
            3 if session.is_none() => {
                // A run of inserts holds each `_id` once: a second insert of one
                // document needs a delete between them, which ends the run.
                let mut j = i;
                let mut ids = HashSet::new();
                while j < writes.len()
                    && j - i < ctx.batch
                    && writes[j].class() == 3
                    && writes[j].db == w.db
                    && writes[j].coll == w.coll
                    && ids.insert(writes[j].q.as_bytes())
                {
                    j += 1;
                }
                insert_chunk(ctx, &writes[i..j]).await?;
                i = j;
                continue;
            }
            _ => {}
        }
        let mut j = i;
        let mut bytes = 0usize;
        while j < writes.len()
            && j - i < ctx.batch
            && bytes < BATCH_BYTES
            && writes[j].class() == w.class()
            && writes[j].db == w.db
            && writes[j].coll == w.coll
        {
            bytes += write_len(&writes[j]);
            j += 1;
        }
        rmw += statements(ctx, &writes[i..j], true, session).await?;
        i = j;
    }
    Ok(rmw)
}

/// Bytes a write adds to a command: its filter and its payload.
fn write_len(w: &Write) -> usize {
    w.q.as_bytes().len() + payload_len(w)
}

fn payload_len(w: &Write) -> usize {
    match &w.kind {
        WriteKind::Insert(d) | WriteKind::Replace(d) => d.as_bytes().len(),
        WriteKind::Update { .. } | WriteKind::Modify(_) | WriteKind::Delete => 64,
    }
}

/// Sends one round: its writes grouped by namespace and class, in batches, up to
/// `lanes` batches at a time. Every document appears at most once in a round.
async fn send_round(ctx: &Arc<Ctx>, round: Vec<Write>, lanes: usize) -> Result<u64, ApplyError> {
    let mut groups: BTreeMap<(String, String, u8), Vec<Write>> = BTreeMap::new();
    for w in round {
        groups
            .entry((w.db.clone(), w.coll.clone(), w.class()))
            .or_default()
            .push(w);
    }
    let mut batches: Vec<Vec<Write>> = Vec::new();
    for (_, ws) in groups {
        // Batches of equal size, as many as keep every writer busy to the end.
        let size = balanced_batch(ws.len(), ctx.batch, lanes);
        let mut cur = Vec::new();
        let mut bytes = 0usize;
        for w in ws {
            let n = write_len(&w);
            if !cur.is_empty() && (cur.len() >= size || bytes + n > BATCH_BYTES) {
                batches.push(std::mem::take(&mut cur));
                bytes = 0;
            }
            bytes += n;
            cur.push(w);
        }
        if !cur.is_empty() {
            batches.push(cur);
        }
    }
    let mut set = tokio::task::JoinSet::new();
    let mut rmw = 0;
    let mut first_err = None;
    let mut batches = batches.into_iter();
    loop {
        while set.len() < lanes.max(1) && first_err.is_none() {
            let Some(b) = batches.next() else { break };
            let ctx = ctx.clone();
            set.spawn(async move { send_batch(&ctx, &b).await });
        }
        let Some(r) = set.join_next().await else {
            break;
        };
        match r.expect("replay writer panicked") {
            Ok(n) => rmw += n,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(rmw),
    }
}

/// The size of the batches `len` writes are split into: at most `max`, and, when
/// more than one batch is needed, as many batches as a multiple of `lanes`, so that
/// the last wave of batches is as full as the others.
fn balanced_batch(len: usize, max: usize, lanes: usize) -> usize {
    let max = max.max(1);
    let lanes = lanes.max(1);
    if len <= max {
        return max;
    }
    let batches = len.div_ceil(max).div_ceil(lanes) * lanes;
    len.div_ceil(batches).max(1)
}

/// One batch of a round: writes of one namespace and class, distinct documents.
async fn send_batch(ctx: &Ctx, b: &[Write]) -> Result<u64, ApplyError> {
    match b[0].class() {
        2 => modify_batch(ctx, b).await,
        3 => insert_chunk(ctx, b).await.map(|()| 0),
        4 => reinsert(ctx, b, &mut None).await.map(|()| 0),
        _ => statements(ctx, b, false, &mut None).await,
    }
}

/// Sends update or delete statements (one namespace, one class) as one command. An
/// update the server refuses (a path through a scalar in a fuzzy state) is applied by
/// read-modify-write instead; any other refusal is an error. Returns how many were
/// read-modify-writes.
async fn statements(
    ctx: &Ctx,
    ws: &[Write],
    ordered: bool,
    session: &mut Option<&mut ClientSession>,
) -> Result<u64, ApplyError> {
    let w = &ws[0];
    let mut stmts = RawArrayBuf::new();
    for x in ws {
        let s = match &x.kind {
            WriteKind::Replace(d) | WriteKind::Insert(d) => {
                bson::rawdoc! {"q": x.q.clone(), "u": replacement(d.clone()), "upsert": true}
            }
            WriteKind::Update { u, .. } => bson::rawdoc! {"q": x.q.clone(), "u": u.clone()},
            WriteKind::Delete => {
                bson::rawdoc! {"q": x.q.clone(), "limit": if x.timeseries { 0 } else { 1 }}
            }
            WriteKind::Modify(_) => unreachable!("not batched"),
        };
        stmts.push(s);
    }
    let mut cmd = if matches!(w.kind, WriteKind::Delete) {
        bson::rawdoc! {"delete": w.coll.as_str(), "deletes": stmts, "ordered": ordered}
    } else {
        bson::rawdoc! {"update": w.coll.as_str(), "updates": stmts, "ordered": ordered, "bypassDocumentValidation": true}
    };
    if let Some(wc) = &ctx.write_concern {
        cmd.append(bson::raw::cstr!("writeConcern"), raw_doc(wc)?);
    }
    let resp = run_cmd(ctx, &w.db, cmd, session)
        .await
        .map_err(|e| srv_err(w, e))?;
    let errs = write_errors(&resp);
    let mut rmw = 0;
    let mut resume = None;
    for (k, code, message) in errs {
        let failed = ws.get(k).unwrap_or(w);
        match &failed.kind {
            WriteKind::Update { fallback, .. } => {
                // The server refused the path: the same change in memory.
                modify(ctx, failed, fallback, session).await?;
                rmw += 1;
                // Ordered: the statements after the refused one were not run.
                if ordered {
                    resume = Some(k + 1);
                }
            }
            _ => return Err(wr_err(failed, code, message)),
        }
    }
    if let Some(k) = resume
        && k < ws.len()
    {
        rmw += Box::pin(statements(ctx, &ws[k..], ordered, session)).await?;
    }
    Ok(rmw)
}

/// Sends inserts of distinct documents (one namespace) as one unordered `insert`;
/// those whose `_id` exists already (a snapshot ahead of the entry) are then replaced
/// by `_id`, which is what a replacing upsert would have done.
async fn insert_chunk(ctx: &Ctx, ws: &[Write]) -> Result<(), ApplyError> {
    let w = &ws[0];
    let mut docs = RawArrayBuf::new();
    for x in ws {
        if let WriteKind::Insert(d) | WriteKind::Replace(d) = &x.kind {
            docs.push(d.clone());
        }
    }
    let mut cmd = bson::rawdoc! {"insert": w.coll.as_str(), "documents": docs, "ordered": false, "bypassDocumentValidation": true};
    if let Some(wc) = &ctx.write_concern {
        cmd.append(bson::raw::cstr!("writeConcern"), raw_doc(wc)?);
    }
    let resp = run_cmd(ctx, &w.db, cmd, &mut None)
        .await
        .map_err(|e| srv_err(w, e))?;
    let mut existing = Vec::new();
    for (index, code, message) in write_errors(&resp) {
        let Some(failed) = ws.get(index) else {
            return Err(wr_err(
                w,
                code,
                "a write error without a valid index".into(),
            ));
        };
        if code != DUPLICATE_KEY {
            return Err(wr_err(failed, code, message));
        }
        let mut r = failed.clone();
        if let WriteKind::Insert(d) = r.kind {
            r.kind = WriteKind::Replace(d);
        }
        existing.push(r);
    }
    if !existing.is_empty() {
        statements(ctx, &existing, false, &mut None).await?;
    }
    Ok(())
}

/// Writes whole documents (one namespace, distinct `_id`s) by deleting every document
/// with their `_id`s, then inserting them: for time-series measurements, whose `_id`s
/// the server may not keep unique (an insert replayed over a snapshot that holds it
/// would leave two), and for documents holding a `Timestamp(0, 0)`, which a
/// replacement may not keep.
async fn reinsert(
    ctx: &Ctx,
    ws: &[Write],
    session: &mut Option<&mut ClientSession>,
) -> Result<(), ApplyError> {
    let w = &ws[0];
    let mut dels = RawArrayBuf::new();
    let mut docs = RawArrayBuf::new();
    let mut empty_ts = false;
    for x in ws {
        dels.push(bson::rawdoc! {"q": x.q.clone(), "limit": 0});
        if let WriteKind::Insert(d) | WriteKind::Replace(d) = &x.kind {
            empty_ts |= has_empty_ts(d);
            docs.push(d.clone());
        }
    }
    let mut del = bson::rawdoc! {"delete": w.coll.as_str(), "deletes": dels, "ordered": false};
    let mut ins = bson::rawdoc! {"insert": w.coll.as_str(), "documents": docs, "ordered": false, "bypassDocumentValidation": true};
    if empty_ts {
        ins.append(bson::raw::cstr!("bypassEmptyTsReplacement"), true);
    }
    if let Some(wc) = &ctx.write_concern {
        del.append(bson::raw::cstr!("writeConcern"), raw_doc(wc)?);
        ins.append(bson::raw::cstr!("writeConcern"), raw_doc(wc)?);
    }
    for cmd in [del, ins] {
        let resp = run_cmd(ctx, &w.db, cmd, session)
            .await
            .map_err(|e| srv_err(w, e))?;
        if let Some((k, code, message)) = write_errors(&resp).into_iter().next() {
            return Err(wr_err(ws.get(k).unwrap_or(w), code, message));
        }
    }
    Ok(())
}

/// The `u` of an update that replaces a document with `d`: `d` itself, or, when a
/// top-level name starts with `$` (which a replacement document may not hold), a
/// pipeline that replaces it with `d` taken literally.
fn replacement(d: RawDocumentBuf) -> RawBson {
    let dollar = d
        .iter()
        .filter_map(Result::ok)
        .any(|(k, _)| k.as_str().starts_with('$'));
    if !dollar {
        return RawBson::Document(d);
    }
    let mut stage = RawArrayBuf::new();
    stage.push(bson::rawdoc! {"$replaceWith": {"$literal": d}});
    RawBson::Array(stage)
}

/// `DuplicateKey`.
const DUPLICATE_KEY: i32 = 11000;

/// Every `writeErrors` entry of a response: (index, code, message).
fn write_errors(resp: &Document) -> Vec<(usize, i32, String)> {
    let Ok(errs) = resp.get_array("writeErrors") else {
        return Vec::new();
    };
    errs.iter()
        .filter_map(Bson::as_document)
        .map(|e| {
            let index = match e.get("index") {
                Some(Bson::Int32(n)) => *n as usize,
                Some(Bson::Int64(n)) => *n as usize,
                _ => usize::MAX,
            };
            let code = match e.get("code") {
                Some(Bson::Int32(n)) => *n,
                Some(Bson::Int64(n)) => *n as i32,
                _ => 0,
            };
            (index, code, e.get_str("errmsg").unwrap_or("").to_string())
        })
        .collect()
}

/// Read-modify-writes of distinct documents (one namespace) together: one `find` of
/// all of them, the changes applied in memory, one unordered `update` of the
/// replacements by `_id`. Nothing else writes a document between its read and its
/// write: the replay is the only writer, a round holds one write per document, and
/// rounds run one after another. Returns how many were read-modify-writes.
async fn modify_batch(ctx: &Ctx, ws: &[Write]) -> Result<u64, ApplyError> {
    let w = &ws[0];
    let ids: Vec<Bson> = ws.iter().map(|x| x.id.clone()).collect();
    let find = raw_doc(
        &doc! {"find": w.coll.as_str(), "filter": {"_id": {"$in": ids}}, "batchSize": (ws.len() + 1) as i64},
    )?;
    let found = crate::dump::plan::cursor_docs(&ctx.client.database(&w.db), find)
        .await
        .map_err(|e| srv_err(w, e))?;
    let mut by_id: HashMap<Vec<u8>, Document> = HashMap::with_capacity(found.len());
    for d in found {
        if let Some(id) = d.get("_id") {
            by_id.insert(id_filter(id)?.into_bytes(), d);
        }
    }
    let mut stmts = RawArrayBuf::new();
    let mut sent = Vec::new();
    let mut measurements = Vec::new();
    for x in ws {
        let WriteKind::Modify(change) = &x.kind else {
            unreachable!("a batch of read-modify-writes")
        };
        // A missing document: the change does nothing, as in mongod's application.
        let Some(pre) = by_id.get(x.q.as_bytes()) else {
            continue;
        };
        let post = raw_doc(&change.apply(pre))?;
        if raw_doc(pre)?.as_bytes() == post.as_bytes() {
            continue;
        }
        if x.timeseries {
            // A measurement cannot be replaced by `_id`: deleted and inserted.
            let mut r = x.clone();
            r.kind = WriteKind::Replace(post);
            measurements.push(r);
            continue;
        }
        stmts.push(bson::rawdoc! {"q": x.q.clone(), "u": replacement(post)});
        sent.push(x);
    }
    if !measurements.is_empty() {
        reinsert(ctx, &measurements, &mut None).await?;
    }
    if !sent.is_empty() {
        let mut cmd = bson::rawdoc! {"update": w.coll.as_str(), "updates": stmts, "ordered": false, "bypassDocumentValidation": true};
        if let Some(wc) = &ctx.write_concern {
            cmd.append(bson::raw::cstr!("writeConcern"), raw_doc(wc)?);
        }
        let resp = run_cmd(ctx, &w.db, cmd, &mut None)
            .await
            .map_err(|e| srv_err(w, e))?;
        if let Some((k, code, message)) = write_errors(&resp).into_iter().next() {
            return Err(wr_err(sent.get(k).copied().unwrap_or(w), code, message));
        }
    }
    Ok(ws.len() as u64)
}

/// Read-modify-write of one document by `_id`: read it, apply the change as the
/// source server did, and replace it (see [`modify_batch`] on why nothing else
/// writes it in between).
async fn modify(
    ctx: &Ctx,
    w: &Write,
    change: &Change,
    session: &mut Option<&mut ClientSession>,
) -> Result<(), ApplyError> {
    let find = bson::rawdoc! {"find": w.coll.as_str(), "filter": w.q.clone(), "limit": 1, "singleBatch": true};
    let resp = run_cmd(ctx, &w.db, find, session)
        .await
        .map_err(|e| srv_err(w, e))?;
    let pre = resp
        .get_document("cursor")
        .ok()
        .and_then(|c| c.get_array("firstBatch").ok())
        .and_then(|b| b.first())
        .and_then(|d| d.as_document())
        .cloned();
    // A missing document: the change does nothing, as in mongod's application.
    let Some(pre) = pre else { return Ok(()) };
    let post = raw_doc(&change.apply(&pre))?;
    if raw_doc(&pre)?.as_bytes() == post.as_bytes() {
        return Ok(());
    }
    if w.timeseries {
        let mut r = w.clone();
        r.kind = WriteKind::Replace(post);
        return reinsert(ctx, std::slice::from_ref(&r), session).await;
    }
    let mut cmd = bson::rawdoc! {"update": w.coll.as_str(), "updates": [{"q": w.q.clone(), "u": replacement(post)}], "ordered": true, "bypassDocumentValidation": true};
    if let Some(wc) = &ctx.write_concern {
        cmd.append(bson::raw::cstr!("writeConcern"), raw_doc(wc)?);
    }
    let resp = run_cmd(ctx, &w.db, cmd, session)
        .await
        .map_err(|e| srv_err(w, e))?;
    if let Some((_, code, message)) = write_errors(&resp).into_iter().next() {
        return Err(wr_err(w, code, message));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_of_a_top_level_delta() {
        let d = diff::parse_doc_diff(
            &doc! {"d": {"x": false}, "u": {"z": 1, "a": 2}, "i": {"q": {"$x": 0}}},
        )
        .unwrap();
        assert_eq!(
            pipeline_of(&d),
            vec![
                Bson::Document(doc! {"$unset": ["x"]}),
                Bson::Document(doc! {"$set": {"z": {"$literal": 1}, "a": {"$literal": 2}}}),
                Bson::Document(doc! {"$unset": ["q"]}),
                Bson::Document(doc! {"$set": {"q": {"$literal": {"$x": 0}}}}),
            ]
        );
    }

    fn kind_of(o: Document) -> Option<WriteKind> {
        let e = entry::parse(
            &raw_doc(&doc! {"op": "u", "ns": "a.b", "o": o, "o2": {"_id": 1}, "ts": Timestamp{time: 1, increment: 1}})
                .unwrap(),
        )
        .unwrap();
        write_kind(e.op).unwrap()
    }

    fn update_doc(k: &WriteKind) -> Bson {
        match k {
            WriteKind::Update { u, .. } => Bson::try_from(u.clone()).unwrap(),
            other => panic!("not one update: {other:?}"),
        }
    }

    #[test]
    fn each_update_form_becomes_the_right_write() {
        // Replacement: a replacing upsert of the same bytes.
        let Some(WriteKind::Replace(d)) = kind_of(doc! {"_id": 1, "x": 2}) else {
            panic!()
        };
        assert_eq!(
            d.as_bytes(),
            raw_doc(&doc! {"_id": 1, "x": 2}).unwrap().as_bytes()
        );
        // $v: 1: operators, `$v` dropped.
        let k = kind_of(doc! {"$v": 1, "$set": {"a.b": 1}, "$unset": {"c": true}}).unwrap();
        assert_eq!(
            update_doc(&k),
            Bson::Document(doc! {"$set": {"a.b": 1}, "$unset": {"c": ""}})
        );
        // A top-level delta: one pipeline.
        let k = kind_of(doc! {"$v": 2, "diff": {"u": {"a": 1}, "i": {"b": 2}}}).unwrap();
        assert_eq!(
            update_doc(&k),
            Bson::Array(vec![
                Bson::Document(doc! {"$set": {"a": {"$literal": 1}}}),
                Bson::Document(doc! {"$unset": ["b"]}),
                Bson::Document(doc! {"$set": {"b": {"$literal": 2}}}),
            ])
        );
        // Nested, array, dotted or `$` names: read-modify-write.
        for o in [
            doc! {"$v": 2, "diff": {"sa": {"u": {"b": 1}}}},
            doc! {"$v": 2, "diff": {"sa": {"a": true, "l": 1}}},
            doc! {"$v": 2, "diff": {"u": {"a.b": 1}}},
            doc! {"$v": 2, "diff": {"i": {"$x": 1}}},
        ] {
            assert!(matches!(
                kind_of(o),
                Some(WriteKind::Modify(Change::Delta(_)))
            ));
        }
        // SecantusDB's form: operators; with truncated arrays, read-modify-write.
        let k = kind_of(doc! {"$v": 2, "diff": {"updatedFields": {"a.1": 2}, "removedFields": ["z"], "truncatedArrays": []}}).unwrap();
        assert_eq!(
            update_doc(&k),
            Bson::Document(doc! {"$set": {"a.1": 2}, "$unset": {"z": ""}})
        );
        assert!(matches!(
            kind_of(
                doc! {"$v": 2, "diff": {"updatedFields": {}, "removedFields": [], "truncatedArrays": [{"field": "a", "newSize": 1}]}}
            ),
            Some(WriteKind::Modify(Change::Flat(_)))
        ));
        // Updates that change nothing.
        assert!(kind_of(doc! {"$v": 2, "diff": {}}).is_none());
        assert!(
            kind_of(doc! {"$v": 2, "diff": {"updatedFields": {}, "removedFields": []}}).is_none()
        );
    }

    #[test]
    fn fallback_changes_apply_in_memory() {
        let pre = doc! {"_id": 1, "a": {"b": 1}, "arr": [1, 2, 3]};
        let c = Change::Delta(
            diff::parse_doc_diff(&doc! {"sarr": {"a": true, "l": 1}, "sa": {"i": {"c": 2}}})
                .unwrap(),
        );
        assert_eq!(
            c.apply(&pre),
            doc! {"_id": 1, "a": {"b": 1, "c": 2}, "arr": [1]}
        );
        let c = Change::Modifiers {
            set: doc! {"a.b": 5},
            unset: vec!["arr".into()],
        };
        assert_eq!(c.apply(&pre), doc! {"_id": 1, "a": {"b": 5}});
    }

    fn write(coll: &str, id: i32, kind: WriteKind) -> Write {
        let id = Bson::Int32(id);
        Write {
            ts: Timestamp {
                time: 1,
                increment: 1,
            },
            kind_name: "delete",
            db: "d".into(),
            coll: coll.into(),
            q: id_filter(&id).unwrap(),
            id,
            timeseries: false,
            kind,
        }
    }

    #[test]
    fn rounds_keep_each_documents_order_and_batch_the_rest() {
        let ins = |id: i32| WriteKind::Insert(raw_doc(&doc! {"_id": id}).unwrap());
        let ws = vec![
            write("c", 1, ins(1)),
            write("c", 2, ins(2)),
            write("c", 1, WriteKind::Delete),
            write("e", 1, ins(1)),
            write("c", 1, ins(1)),
            write("c", 3, WriteKind::Delete),
        ];
        let r = rounds(ws);
        let shape: Vec<Vec<(String, i32, u8)>> = r
            .iter()
            .map(|round| {
                round
                    .iter()
                    .map(|w| (w.coll.clone(), w.id.as_i32().unwrap(), w.class()))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![
                    ("c".to_string(), 1, 3),
                    ("c".to_string(), 2, 3),
                    ("e".to_string(), 1, 3),
                    ("c".to_string(), 3, 1)
                ],
                vec![("c".to_string(), 1, 1)],
                vec![("c".to_string(), 1, 3)],
            ]
        );
    }

    #[test]
    fn batches_fill_every_writer_to_the_end() {
        assert_eq!(balanced_batch(500, 1000, 8), 1000);
        // 20 batches of 1000 would leave the third wave half empty: 24 of 834.
        assert_eq!(balanced_batch(20_000, 1000, 8), 834);
        assert_eq!(balanced_batch(8000, 1000, 8), 1000);
        assert_eq!(balanced_batch(1001, 1000, 1), 501);
        assert_eq!(balanced_batch(3, 1, 0), 1);
    }

    #[test]
    fn measurements_and_empty_timestamps_are_written_by_delete_and_insert() {
        let zero = Timestamp {
            time: 0,
            increment: 0,
        };
        let plain = write(
            "c",
            1,
            WriteKind::Insert(raw_doc(&doc! {"_id": 1}).unwrap()),
        );
        assert_eq!(plain.class(), 3);
        let mut m = plain.clone();
        m.timeseries = true;
        assert_eq!(m.class(), 4);
        let z = write(
            "c",
            1,
            WriteKind::Replace(raw_doc(&doc! {"_id": 1, "t": zero}).unwrap()),
        );
        assert_eq!(z.class(), 4);
        // Only top-level fields besides `_id` are replaced by servers.
        assert!(!has_empty_ts(&raw_doc(&doc! {"_id": zero}).unwrap()));
        assert!(!has_empty_ts(
            &raw_doc(&doc! {"_id": 1, "n": {"t": zero}}).unwrap()
        ));
        assert!(!has_empty_ts(
            &raw_doc(&doc! {"_id": 1, "t": Timestamp { time: 1, increment: 0 }}).unwrap()
        ));
    }

    #[test]
    fn system_namespaces_are_left_alone() {
        assert!(system_ns("admin.system.version").is_some());
        assert!(system_ns("config.transactions").is_some());
        assert!(system_ns("local.oplog.rs").is_some());
        assert!(system_ns("app.system.profile").is_some());
        assert!(system_ns("app.users").is_none());
        assert!(system_ns("admin.things").is_none());
    }

    #[test]
    fn scan_finds_transaction_ends_and_ignores_overlap() {
        let lsid = doc! {"id": 1};
        let t = |i| Timestamp {
            time: 5,
            increment: i,
        };
        let mut s = Scan::default();
        for (i, with) in [(1, true), (2, false), (3, true)] {
            let mut d = doc! {"op": "i", "ns": "a.b", "o": {"_id": i}, "ts": t(i)};
            if with {
                d.insert("lsid", lsid.clone());
                d.insert("txnNumber", 1_i64);
            }
            assert!(s.add(&raw_doc(&d).unwrap()).unwrap());
        }
        assert!(
            !s.add(&raw_doc(&doc! {"op": "n", "ns": "", "o": {}, "ts": t(2)}).unwrap())
                .unwrap()
        );
        assert_eq!(s.entries, 3);
        assert_eq!(s.first, Some(t(1)));
        assert_eq!(s.last, Some(t(3)));
        let key = TxnKey {
            lsid: raw_doc(&lsid).unwrap().into_bytes(),
            txn_number: 1,
        };
        assert_eq!(s.txn_ends.get(&key), Some(&t(3)));
        assert_eq!(s.by_kind_ns.get("insert a.b"), Some(&3));
    }
}
