//! One oplog entry, parsed and classified.
//!
//! Two servers' shapes are accepted: mongod's (`t`, `v`, transactions as `applyOps`
//! command entries, `$v: 2` update deltas as a `d`/`u`/`i`/`b`/`s<field>` tree) and
//! SecantusDB's (no `t`/`v`, transaction statements as separate CRUD entries carrying
//! `lsid`/`txnNumber` and no `stmtId`, update deltas in the change-stream form
//! `{updatedFields, removedFields, truncatedArrays}`). The update forms are told apart
//! by their exact key names, never by a first letter.

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf, Timestamp};

use super::diff::{self, DocDiff, FlatDiff};

/// Error parsing an entry. Every variant names the entry by its timestamp.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntryError {
    /// A field is missing or has the wrong type.
    #[error("oplog entry {at}: {what}")]
    Malformed {
        /// The entry's `ts` (`seconds:increment`), or where it sits.
        at: String,
        /// What is wrong.
        what: String,
    },
    /// A command that ordinary commands cannot replay.
    #[error("oplog entry {at}: unknown command `{name}` on {ns}; it cannot be replayed")]
    UnknownCommand {
        /// The entry's `ts`.
        at: String,
        /// The entry's namespace.
        ns: String,
        /// The command name.
        name: String,
    },
    /// An update's delta does not follow the grammar.
    #[error("oplog entry {at}: update of {ns}: {source}")]
    Diff {
        /// The entry's `ts`.
        at: String,
        /// The entry's namespace.
        ns: String,
        /// What is wrong with the delta.
        source: diff::DiffError,
    },
}

/// `seconds:increment`.
pub fn show_ts(t: Timestamp) -> String {
    format!("{}:{}", t.time, t.increment)
}

/// A transaction or session: `lsid` (as raw bytes, compared whole) and `txnNumber`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnKey {
    /// The `lsid` document's bytes.
    pub lsid: Vec<u8>,
    /// `txnNumber`.
    pub txn_number: i64,
}

/// The three forms of an update's `o`.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The whole new document.
    Replacement(Document),
    /// `$v: 1` (or unversioned) modifiers: `$set` of dotted paths and `$unset`.
    Modifiers {
        /// `$set`: path to its new value.
        set: Document,
        /// `$unset` paths.
        unset: Vec<String>,
    },
    /// mongod's `$v: 2` delta.
    Delta(DocDiff),
    /// SecantusDB's `$v: 2` change-stream form.
    Flat(FlatDiff),
}

/// A command entry, reduced to what replay needs. Collection names are bare (the
/// database is the entry's).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `create`, with the options to send (already cleaned).
    Create {
        /// Collection or view name.
        coll: String,
        /// Options for the `create` command.
        options: Document,
    },
    /// `drop`.
    Drop {
        /// Collection name.
        coll: String,
    },
    /// `renameCollection` (full namespaces).
    Rename {
        /// Source `db.coll`.
        from: String,
        /// Target `db.coll`.
        to: String,
        /// Whether an existing target is dropped.
        drop_target: bool,
    },
    /// `dropDatabase`.
    DropDatabase,
    /// `createIndexes` (either shape) or `commitIndexBuild`: index specs, without `ns`.
    CreateIndexes {
        /// Collection name.
        coll: String,
        /// The specs.
        specs: Vec<Document>,
    },
    /// `dropIndexes` of one index by name.
    DropIndex {
        /// Collection name.
        coll: String,
        /// Index name.
        name: String,
    },
    /// `collMod`: the command fields besides `index`, and the `index` part.
    CollMod {
        /// Collection or view name.
        coll: String,
        /// Options for `collMod` (without `index` and obsolete flags).
        options: Document,
        /// The `index` sub-document (TTL, hidden, ...), if any.
        index: Option<Document>,
    },
    /// `convertToCapped`.
    ConvertToCapped {
        /// Collection name.
        coll: String,
        /// Size in bytes.
        size: f64,
    },
    /// `emptycapped`: every document is removed.
    EmptyCapped {
        /// Collection name.
        coll: String,
    },
    /// `applyOps`: a batched write or (with a session) a transaction's operations.
    ApplyOps {
        /// The inner operations, stamped with this entry's `ts`.
        ops: Vec<Entry>,
        /// `partialTxn: true`: more entries of the same transaction follow.
        partial: bool,
        /// `prepare: true`: a commit or abort entry follows.
        prepare: bool,
    },
    /// `commitTransaction` of a prepared transaction.
    CommitTransaction,
    /// `abortTransaction`.
    AbortTransaction,
    /// A command replay ignores (index build bookkeeping, checks, internal catalog).
    Ignored(String),
    /// A command replay refuses (it needs files or a format change).
    Refused(String),
}

impl Command {
    /// The command's name, for counting.
    pub fn name(&self) -> &str {
        match self {
            Command::Create { .. } => "create",
            Command::Drop { .. } => "drop",
            Command::Rename { .. } => "renameCollection",
            Command::DropDatabase => "dropDatabase",
            Command::CreateIndexes { .. } => "createIndexes",
            Command::DropIndex { .. } => "dropIndexes",
            Command::CollMod { .. } => "collMod",
            Command::ConvertToCapped { .. } => "convertToCapped",
            Command::EmptyCapped { .. } => "emptycapped",
            Command::ApplyOps { .. } => "applyOps",
            Command::CommitTransaction => "commitTransaction",
            Command::AbortTransaction => "abortTransaction",
            Command::Ignored(n) | Command::Refused(n) => n,
        }
    }
}

/// What an entry does.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Insert of a whole document (kept as raw bytes).
    Insert {
        /// The document's `_id`.
        id: Bson,
        /// The document.
        doc: RawDocumentBuf,
    },
    /// Update of one document by `_id`.
    Update {
        /// `o2._id`.
        id: Bson,
        /// The change.
        update: Update,
        /// `b: true`: upsert.
        upsert: bool,
    },
    /// Delete of one document by `_id`.
    Delete {
        /// The document's `_id`.
        id: Bson,
    },
    /// A command on `db.$cmd`.
    Command(Command),
    /// `n`: nothing to do.
    Noop,
    /// Newer servers' internal container operations (`ci`, `cd`, `cu`, `km`).
    Container(String),
}

/// One parsed entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its timestamp (inner `applyOps` operations take the outer entry's).
    pub ts: Timestamp,
    /// `wall`, when present.
    pub wall: Option<bson::DateTime>,
    /// `ns`: `db.coll` for CRUD, `db.$cmd` for commands, empty for no-ops.
    pub ns: String,
    /// What it does.
    pub op: Op,
    /// `lsid` + `txnNumber`, when present.
    pub session: Option<TxnKey>,
    /// Whether it carries `stmtId` (a retryable write, not a transaction statement).
    pub stmt_id: bool,
    /// `prevOpTime.ts`, when present.
    pub prev_ts: Option<Timestamp>,
    /// `multiOpType: 1`: an `applyOps` applied as a batch, never as a transaction.
    pub multi_op: bool,
}

impl Entry {
    /// The database of the entry's namespace.
    pub fn db(&self) -> &str {
        self.ns.split_once('.').map_or(self.ns.as_str(), |(d, _)| d)
    }

    /// A short name of what the entry does: `insert`, `update`, `delete`, `noop`, a
    /// command's name, or the container op.
    pub fn kind(&self) -> &str {
        match &self.op {
            Op::Insert { .. } => "insert",
            Op::Update { .. } => "update",
            Op::Delete { .. } => "delete",
            Op::Noop => "noop",
            Op::Container(o) => o,
            Op::Command(c) => c.name(),
        }
    }

    /// Whether this is a CRUD entry.
    pub fn is_crud(&self) -> bool {
        matches!(
            self.op,
            Op::Insert { .. } | Op::Update { .. } | Op::Delete { .. }
        )
    }

    /// The `_id` of a CRUD entry.
    pub fn id(&self) -> Option<&Bson> {
        match &self.op {
            Op::Insert { id, .. } | Op::Update { id, .. } | Op::Delete { id } => Some(id),
            _ => None,
        }
    }

    /// A statement of a SecantusDB transaction: CRUD with a session and no `stmtId`
    /// (mongod logs transaction statements inside `applyOps`, and its retryable
    /// writes always carry `stmtId`).
    pub fn is_txn_statement(&self) -> bool {
        self.is_crud() && self.session.is_some() && !self.stmt_id
    }
}

fn malformed(at: &str, what: impl Into<String>) -> EntryError {
    EntryError::Malformed {
        at: at.to_string(),
        what: what.into(),
    }
}

fn to_doc(at: &str, what: &str, r: &RawDocument) -> Result<Document, EntryError> {
    Document::try_from(r).map_err(|e| malformed(at, format!("`{what}` does not decode: {e}")))
}

/// Deepest nesting of an entry: a stored document nests at most 100 levels, and the
/// entry (and an `applyOps` around it) adds a few.
pub const MAX_DEPTH: usize = 120;

/// Values of a document or an array, in order.
type Values<'a> = Box<dyn Iterator<Item = Option<RawBsonRef<'a>>> + 'a>;

fn values_of_doc(d: &RawDocument) -> Values<'_> {
    Box::new(d.iter().map(|r| r.ok().map(|(_, v)| v)))
}

/// Whether `raw` nests deeper than `limit` (walked without recursion).
fn too_deep(raw: &RawDocument, limit: usize) -> bool {
    let mut stack: Vec<(Values<'_>, usize)> = vec![(values_of_doc(raw), 1)];
    while let Some((it, depth)) = stack.last_mut() {
        let depth = *depth;
        match it.next() {
            None | Some(None) => {
                stack.pop();
            }
            Some(Some(RawBsonRef::Document(d))) => {
                if depth + 1 > limit {
                    return true;
                }
                stack.push((values_of_doc(d), depth + 1));
            }
            Some(Some(RawBsonRef::Array(a))) => {
                if depth + 1 > limit {
                    return true;
                }
                stack.push((Box::new(a.into_iter().map(Result::ok)), depth + 1));
            }
            Some(Some(_)) => {}
        }
    }
    false
}

/// Parses one entry.
pub fn parse(raw: &RawDocument) -> Result<Entry, EntryError> {
    if too_deep(raw, MAX_DEPTH) {
        return Err(malformed(
            "(unread)",
            format!("the entry nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    let ts = match raw.get("ts") {
        Ok(Some(RawBsonRef::Timestamp(t))) => t,
        _ => {
            let at = match raw.get("ns") {
                Ok(Some(RawBsonRef::String(ns))) => format!("(on {ns})"),
                _ => "(without ns)".to_string(),
            };
            return Err(malformed(&at, "no `ts` timestamp"));
        }
    };
    parse_with_ts(raw, ts, true)
}

/// Parses an entry, taking `ts` from outside (inner `applyOps` operations have none).
fn parse_with_ts(raw: &RawDocument, ts: Timestamp, top: bool) -> Result<Entry, EntryError> {
    let at = show_ts(ts);
    let at = at.as_str();
    let mut op_s = None;
    let mut ns = None;
    let mut o = None;
    let mut o2 = None;
    let mut b = false;
    let mut wall = None;
    let mut lsid = None;
    let mut txn_number = None;
    let mut stmt_id = false;
    let mut prev_ts = None;
    let mut multi_op = false;
    for el in raw.iter() {
        let (k, v) = el.map_err(|e| malformed(at, format!("unreadable field: {e}")))?;
        match (k.as_str(), v) {
            ("op", RawBsonRef::String(s)) => op_s = Some(s),
            ("op", _) => return Err(malformed(at, "`op` is not a string")),
            ("ns", RawBsonRef::String(s)) => ns = Some(s),
            ("ns", _) => return Err(malformed(at, "`ns` is not a string")),
            ("o", RawBsonRef::Document(d)) => o = Some(d),
            ("o", _) => return Err(malformed(at, "`o` is not a document")),
            ("o2", RawBsonRef::Document(d)) => o2 = Some(d),
            ("b", RawBsonRef::Boolean(x)) => b = x,
            ("wall", RawBsonRef::DateTime(d)) => wall = Some(d),
            ("lsid", RawBsonRef::Document(d)) => lsid = Some(d.as_bytes().to_vec()),
            ("txnNumber", RawBsonRef::Int64(n)) => txn_number = Some(n),
            ("txnNumber", RawBsonRef::Int32(n)) => txn_number = Some(i64::from(n)),
            ("stmtId", _) => stmt_id = true,
            ("prevOpTime", RawBsonRef::Document(d)) => {
                if let Ok(t) = d.get_timestamp("ts") {
                    prev_ts = Some(t);
                }
            }
            ("multiOpType", RawBsonRef::Int32(1)) | ("multiOpType", RawBsonRef::Int64(1)) => {
                multi_op = true
            }
            ("tid", _) => {
                return Err(malformed(
                    at,
                    "`tid` (a serverless tenant) cannot be replayed into an ordinary server",
                ));
            }
            _ => {}
        }
    }
    let op_s = op_s.ok_or_else(|| malformed(at, "no `op`"))?;
    let ns = ns.unwrap_or("").to_string();
    let need_o = || o.ok_or_else(|| malformed(at, format!("`{op_s}` on {ns} has no `o`")));
    let op = match op_s {
        "i" => {
            let o = need_o()?;
            let id = id_of(o).or_else(|| o2.and_then(id_of)).ok_or_else(|| {
                malformed(at, format!("insert into {ns}: the document has no `_id`"))
            })?;
            Op::Insert {
                id,
                doc: o.to_owned(),
            }
        }
        "u" => {
            let o = need_o()?;
            let id = o2
                .and_then(id_of)
                .ok_or_else(|| malformed(at, format!("update of {ns}: `o2` has no `_id`")))?;
            let update = parse_update(at, &ns, o)?;
            Op::Update {
                id,
                update,
                upsert: b,
            }
        }
        "d" => {
            let o = need_o()?;
            let id = id_of(o)
                .or_else(|| o2.and_then(id_of))
                .ok_or_else(|| malformed(at, format!("delete from {ns}: `o` has no `_id`")))?;
            Op::Delete { id }
        }
        "n" => Op::Noop,
        "c" => Op::Command(parse_command(at, &ns, need_o()?, ts)?),
        "ci" | "cd" | "cu" | "km" => Op::Container(op_s.to_string()),
        other => return Err(malformed(at, format!("unknown op {other:?} on {ns}"))),
    };
    if !top && matches!(op, Op::Command(Command::ApplyOps { .. })) {
        return Err(malformed(at, "an applyOps inside an applyOps"));
    }
    let session = match (lsid, txn_number) {
        (Some(lsid), Some(txn_number)) => Some(TxnKey { lsid, txn_number }),
        _ => None,
    };
    Ok(Entry {
        ts,
        wall,
        ns,
        op,
        session,
        stmt_id,
        prev_ts,
        multi_op,
    })
}

fn id_of(d: &RawDocument) -> Option<Bson> {
    match d.get("_id") {
        Ok(Some(v)) => Bson::try_from(v).ok(),
        _ => None,
    }
}

/// The test server's delta keys.
const FLAT_KEYS: [&str; 4] = [
    "updatedFields",
    "removedFields",
    "truncatedArrays",
    "disambiguatedPaths",
];

fn parse_update(at: &str, ns: &str, o: &RawDocument) -> Result<Update, EntryError> {
    let derr = |source| EntryError::Diff {
        at: at.to_string(),
        ns: ns.to_string(),
        source,
    };
    let version = match o.get("$v") {
        Ok(Some(RawBsonRef::Int32(v))) => Some(i64::from(v)),
        Ok(Some(RawBsonRef::Int64(v))) => Some(v),
        Ok(Some(RawBsonRef::Double(v))) => Some(v as i64),
        Ok(Some(_)) => {
            return Err(malformed(
                at,
                format!("update of {ns}: `$v` is not a number"),
            ));
        }
        _ => None,
    };
    let has_dollar = o
        .iter()
        .filter_map(Result::ok)
        .any(|(k, _)| k.as_str().starts_with('$') && k.as_str() != "$v");
    match version {
        Some(2) => {
            let d = match o.get("diff") {
                Ok(Some(RawBsonRef::Document(d))) => d,
                _ => {
                    return Err(malformed(
                        at,
                        format!("update of {ns}: `$v: 2` without a `diff` document"),
                    ));
                }
            };
            let d = to_doc(at, "o.diff", d)?;
            let flat = !d.is_empty() && d.keys().all(|k| FLAT_KEYS.contains(&k.as_str()));
            if flat {
                Ok(Update::Flat(diff::parse_flat(&d).map_err(derr)?))
            } else {
                Ok(Update::Delta(diff::parse_doc_diff(&d).map_err(derr)?))
            }
        }
        Some(1) | None if has_dollar || version == Some(1) => {
            let mut set = Document::new();
            let mut unset = Vec::new();
            for (k, v) in to_doc(at, "o", o)? {
                match (k.as_str(), v) {
                    ("$v", _) => {}
                    ("$set", Bson::Document(d)) => set = d,
                    ("$unset", Bson::Document(d)) => {
                        unset = d.into_iter().map(|(k, _)| k).collect()
                    }
                    (k, _) => {
                        return Err(malformed(
                            at,
                            format!(
                                "update of {ns}: `{k}` is not a modifier an oplog holds ($set, $unset)"
                            ),
                        ));
                    }
                }
            }
            Ok(Update::Modifiers { set, unset })
        }
        None => Ok(Update::Replacement(to_doc(at, "o", o)?)),
        Some(v) => Err(malformed(
            at,
            format!("update of {ns}: unknown update version `$v: {v}`"),
        )),
    }
}

/// Commands whose entries replay ignores.
const IGNORED: [&str; 6] = [
    "startIndexBuild",
    "abortIndexBuild",
    "dbCheck",
    "setMultikeyMetadata",
    "dropIdent",
    "createDatabaseMetadata",
];
/// Commands whose entries replay refuses.
const REFUSED: [&str; 2] = ["importCollection", "upgradeDowngradeViewlessTimeseries"];

fn parse_command(
    at: &str,
    ns: &str,
    o: &RawDocument,
    ts: Timestamp,
) -> Result<Command, EntryError> {
    let mut d = to_doc(at, "o", o)?;
    let Some((name, first)) = d.iter().next().map(|(k, v)| (k.clone(), v.clone())) else {
        return Err(malformed(at, format!("command on {ns}: `o` is empty")));
    };
    let coll = || match &first {
        Bson::String(s) => Ok(s.clone()),
        _ => Err(malformed(
            at,
            format!("`{name}` on {ns}: the collection name is not a string"),
        )),
    };
    let cmd = match name.as_str() {
        "create" => {
            let coll = coll()?;
            d.remove("create");
            for k in ["recordIdsReplicated", "autoIndexId"] {
                d.remove(k);
            }
            if d.contains_key("clusteredIndex") || d.contains_key("viewOn") {
                d.remove("idIndex");
            }
            // Logged with the span the server derived; a `create` takes the span only
            // with an equal rounding, and neither with a granularity.
            if let Ok(t) = d.get_document_mut("timeseries") {
                if t.contains_key("granularity") {
                    t.remove("bucketMaxSpanSeconds");
                    t.remove("bucketRoundingSeconds");
                } else if let Some(span) = t.get("bucketMaxSpanSeconds").cloned()
                    && !t.contains_key("bucketRoundingSeconds")
                {
                    t.insert("bucketRoundingSeconds", span);
                }
            }
            // SecantusDB logs a view's pipeline as `viewPipeline`.
            if let Some(p) = d.remove("viewPipeline") {
                d.insert("pipeline", p);
            }
            Command::Create { coll, options: d }
        }
        "drop" => Command::Drop { coll: coll()? },
        "renameCollection" => {
            let from = coll()?;
            let to = d
                .get_str("to")
                .map_err(|_| malformed(at, format!("renameCollection of {from}: no `to`")))?
                .to_string();
            let drop_target = match d.get("dropTarget") {
                None | Some(Bson::Boolean(false)) | Some(Bson::Null) => false,
                Some(_) => true,
            };
            Command::Rename {
                from,
                to,
                drop_target,
            }
        }
        "dropDatabase" => Command::DropDatabase,
        "createIndexes" | "commitIndexBuild" => {
            let coll = coll()?;
            let specs = match d.get("indexes") {
                Some(Bson::Array(a)) => a
                    .iter()
                    .map(|s| match s {
                        Bson::Document(s) => Ok(s.clone()),
                        _ => Err(malformed(
                            at,
                            format!("`{name}` on {ns}: an index spec is not a document"),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => {
                    return Err(malformed(
                        at,
                        format!("`{name}` on {ns}: `indexes` is not an array"),
                    ));
                }
                None if name == "createIndexes" => {
                    // mongod's flattened single spec.
                    let mut s = d.clone();
                    s.remove("createIndexes");
                    vec![s]
                }
                None => {
                    return Err(malformed(
                        at,
                        format!("commitIndexBuild on {ns}: no `indexes`"),
                    ));
                }
            };
            let specs = specs
                .into_iter()
                .map(|mut s| {
                    s.remove("ns");
                    if !s.contains_key("key") || s.get_str("name").is_err() {
                        Err(malformed(
                            at,
                            format!("`{name}` on {ns}: an index spec lacks `key` or `name`"),
                        ))
                    } else {
                        Ok(s)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Command::CreateIndexes { coll, specs }
        }
        "dropIndexes" | "deleteIndexes" | "dropIndex" | "deleteIndex" => {
            let coll = coll()?;
            let name = match d.get("index") {
                Some(Bson::String(s)) => s.clone(),
                _ => {
                    return Err(malformed(
                        at,
                        format!("`{name}` on {ns}: `index` is not an index name"),
                    ));
                }
            };
            Command::DropIndex { coll, name }
        }
        "collMod" => {
            let coll = coll()?;
            d.remove("collMod");
            for k in ["noPadding", "usePowerOf2Sizes"] {
                d.remove(k);
            }
            let index = match d.remove("index") {
                Some(Bson::Document(i)) => Some(i),
                None => None,
                Some(_) => {
                    return Err(malformed(
                        at,
                        format!("collMod on {ns}: `index` is not a document"),
                    ));
                }
            };
            Command::CollMod {
                coll,
                options: d,
                index,
            }
        }
        "convertToCapped" => {
            let coll = coll()?;
            let size = match d.get("size") {
                Some(Bson::Int32(n)) => f64::from(*n),
                Some(Bson::Int64(n)) => *n as f64,
                Some(Bson::Double(n)) => *n,
                _ => {
                    return Err(malformed(
                        at,
                        format!("convertToCapped on {ns}: no numeric `size`"),
                    ));
                }
            };
            Command::ConvertToCapped { coll, size }
        }
        "emptycapped" => Command::EmptyCapped { coll: coll()? },
        "applyOps" => {
            let Bson::Array(_) = &first else {
                return Err(malformed(at, "applyOps: not an array"));
            };
            let arr = match o.get("applyOps") {
                Ok(Some(RawBsonRef::Array(a))) => a,
                _ => return Err(malformed(at, "applyOps: not an array")),
            };
            let mut ops = Vec::new();
            for (i, inner) in arr.into_iter().enumerate() {
                let inner = match inner {
                    Ok(RawBsonRef::Document(x)) => x,
                    _ => {
                        return Err(malformed(
                            at,
                            format!("applyOps: operation {i} is not a document"),
                        ));
                    }
                };
                ops.push(parse_with_ts(inner, ts, false)?);
            }
            let flag = |k: &str| matches!(d.get(k), Some(Bson::Boolean(true)));
            Command::ApplyOps {
                ops,
                partial: flag("partialTxn"),
                prepare: flag("prepare"),
            }
        }
        "commitTransaction" => Command::CommitTransaction,
        "abortTransaction" => Command::AbortTransaction,
        n if IGNORED.contains(&n) => Command::Ignored(n.to_string()),
        n if REFUSED.contains(&n) => Command::Refused(n.to_string()),
        _ => {
            return Err(EntryError::UnknownCommand {
                at: at.to_string(),
                ns: ns.to_string(),
                name,
            });
        }
    };
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, rawdoc};

    fn ts(n: u32) -> Timestamp {
        Timestamp {
            time: 100,
            increment: n,
        }
    }

    #[test]
    fn insert_update_delete_of_mongod() {
        let e = parse(&rawdoc! {"op": "i", "ns": "a.b", "ui": bson::Binary{subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![0;16]}, "o": {"_id": 1, "x": 2}, "o2": {"_id": 1}, "ts": ts(1), "t": 1_i64, "v": 2_i64, "wall": bson::DateTime::from_millis(5)}).unwrap();
        assert_eq!(e.kind(), "insert");
        assert_eq!(e.ns, "a.b");
        assert_eq!(e.db(), "a");
        assert_eq!(e.id(), Some(&Bson::Int32(1)));
        assert_eq!(e.wall, Some(bson::DateTime::from_millis(5)));
        let Op::Insert { doc, .. } = &e.op else {
            panic!()
        };
        assert_eq!(doc.as_bytes(), rawdoc! {"_id": 1, "x": 2}.as_bytes());

        let u = parse(&rawdoc! {"op": "u", "ns": "a.b", "o": {"$v": 2, "diff": {"i": {"city": "split"}}}, "o2": {"_id": "k", "shard": 1}, "ts": ts(2)}).unwrap();
        let Op::Update { id, update, upsert } = &u.op else {
            panic!()
        };
        assert_eq!(id, &Bson::String("k".into()));
        assert!(!upsert);
        assert!(matches!(update, Update::Delta(_)));

        let d = parse(&rawdoc! {"op": "d", "ns": "a.b", "o": {"_id": 3}, "ts": ts(3)}).unwrap();
        assert_eq!(d.id(), Some(&Bson::Int32(3)));
        // SecantusDB: `_id` also in `o2`; an `o` without it falls back to `o2`.
        let d = parse(&rawdoc! {"op": "d", "ns": "a.b", "o": {}, "o2": {"_id": 4}, "ts": ts(3)})
            .unwrap();
        assert_eq!(d.id(), Some(&Bson::Int32(4)));
    }

    #[test]
    fn update_forms_are_told_apart_by_exact_keys() {
        let p = |o: Document| {
            let raw = RawDocumentBuf::try_from(
                &doc! {"op": "u", "ns": "a.b", "o": o, "o2": {"_id": 1}, "ts": ts(1)},
            )
            .unwrap();
            match parse(&raw).unwrap().op {
                Op::Update { update, .. } => update,
                _ => unreachable!(),
            }
        };
        assert!(matches!(p(doc! {"_id": 1, "a": 2}), Update::Replacement(_)));
        assert!(matches!(
            p(doc! {"$v": 1, "$set": {"a.b": 1}, "$unset": {"c": true}}),
            Update::Modifiers { .. }
        ));
        assert!(matches!(
            p(doc! {"$set": {"a": 1}}),
            Update::Modifiers { .. }
        ));
        // `updatedFields` starts with `u`, but it is the test server's form.
        assert!(matches!(
            p(
                doc! {"$v": 2, "diff": {"updatedFields": {"a": 1}, "removedFields": [], "truncatedArrays": []}}
            ),
            Update::Flat(_)
        ));
        assert!(matches!(
            p(doc! {"$v": 2, "diff": {"u": {"a": 1}}}),
            Update::Delta(_)
        ));
        let Update::Modifiers { set, unset } =
            p(doc! {"$v": 1, "$set": {"a.b": 1}, "$unset": {"c": true}})
        else {
            unreachable!()
        };
        assert_eq!(set, doc! {"a.b": 1});
        assert_eq!(unset, vec!["c".to_string()]);
    }

    #[test]
    fn malformed_entries_are_typed_errors() {
        assert!(matches!(
            parse(&rawdoc! {"op": "i", "ns": "a.b", "o": {"_id": 1}}),
            Err(EntryError::Malformed { .. })
        ));
        assert!(matches!(
            parse(&rawdoc! {"op": "i", "ns": "a.b", "o": {"x": 1}, "ts": ts(1)}),
            Err(EntryError::Malformed { .. })
        ));
        assert!(matches!(
            parse(
                &rawdoc! {"op": "u", "ns": "a.b", "o": {"$v": 2, "diff": {"q": {}}}, "o2": {"_id": 1}, "ts": ts(1)}
            ),
            Err(EntryError::Diff { .. })
        ));
        assert!(matches!(
            parse(&rawdoc! {"op": "c", "ns": "a.$cmd", "o": {"frobnicate": 1}, "ts": ts(1)}),
            Err(EntryError::UnknownCommand { .. })
        ));
        let e = parse(&rawdoc! {"op": "z", "ns": "a.b", "o": {}, "ts": ts(7)}).unwrap_err();
        assert!(e.to_string().contains("100:7"), "{e}");
    }

    #[test]
    fn entries_nested_too_deep_are_refused_without_recursion() {
        let mut o = doc! {"x": 1};
        for _ in 0..MAX_DEPTH {
            o = doc! {"n": o};
        }
        let raw = RawDocumentBuf::try_from(
            &doc! {"op": "i", "ns": "a.b", "o": {"_id": 1, "deep": o}, "ts": ts(1)},
        )
        .unwrap();
        let e = parse(&raw).unwrap_err();
        assert!(e.to_string().contains("deeper than"), "{e}");
        assert!(!too_deep(&raw, 10_000));
    }

    #[test]
    fn commands() {
        let c = |o: Document| {
            let raw =
                RawDocumentBuf::try_from(&doc! {"op": "c", "ns": "db.$cmd", "o": o, "ts": ts(1)})
                    .unwrap();
            match parse(&raw).unwrap().op {
                Op::Command(c) => c,
                _ => unreachable!(),
            }
        };
        assert_eq!(
            c(
                doc! {"create": "c", "clusteredIndex": {"key": {"_id": 1}, "unique": true}, "idIndex": {"v": 2}, "recordIdsReplicated": true}
            ),
            Command::Create {
                coll: "c".into(),
                options: doc! {"clusteredIndex": {"key": {"_id": 1}, "unique": true}}
            }
        );
        assert_eq!(
            c(doc! {"create": "v", "viewOn": "c", "viewPipeline": [{"$match": {}}], "idIndex": {}}),
            Command::Create {
                coll: "v".into(),
                options: doc! {"viewOn": "c", "pipeline": [{"$match": {}}]}
            }
        );
        assert_eq!(
            c(doc! {"createIndexes": "c", "v": 2, "key": {"a": 1}, "name": "a_1", "unique": true}),
            Command::CreateIndexes {
                coll: "c".into(),
                specs: vec![doc! {"v": 2, "key": {"a": 1}, "name": "a_1", "unique": true}]
            }
        );
        assert_eq!(
            c(
                doc! {"createIndexes": "c", "indexes": [{"key": {"a": 1}, "name": "a_1", "ns": "db.c"}]}
            ),
            Command::CreateIndexes {
                coll: "c".into(),
                specs: vec![doc! {"key": {"a": 1}, "name": "a_1"}]
            }
        );
        assert_eq!(
            c(
                doc! {"commitIndexBuild": "c", "indexBuildUUID": 1, "indexes": [{"key": {"b": 1}, "name": "b_1"}]}
            ),
            Command::CreateIndexes {
                coll: "c".into(),
                specs: vec![doc! {"key": {"b": 1}, "name": "b_1"}]
            }
        );
        assert_eq!(
            c(doc! {"dropIndexes": "c", "index": "a_1", "key": {"a": 1}}),
            Command::DropIndex {
                coll: "c".into(),
                name: "a_1".into()
            }
        );
        assert_eq!(
            c(
                doc! {"collMod": "c", "validator": {"a": 1}, "index": {"name": "a_1", "hidden": true}, "noPadding": true}
            ),
            Command::CollMod {
                coll: "c".into(),
                options: doc! {"validator": {"a": 1}},
                index: Some(doc! {"name": "a_1", "hidden": true})
            }
        );
        assert_eq!(
            c(
                doc! {"renameCollection": "db.a", "to": "db.b", "stayTemp": false, "dropTarget": bson::Binary{subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![1;16]}}
            ),
            Command::Rename {
                from: "db.a".into(),
                to: "db.b".into(),
                drop_target: true
            }
        );
        assert_eq!(c(doc! {"dropDatabase": 1}), Command::DropDatabase);
        assert_eq!(c(doc! {"drop": "c"}), Command::Drop { coll: "c".into() });
        assert_eq!(
            c(doc! {"convertToCapped": "c", "size": 4096}),
            Command::ConvertToCapped {
                coll: "c".into(),
                size: 4096.0
            }
        );
        assert_eq!(
            c(doc! {"startIndexBuild": "c", "indexes": []}),
            Command::Ignored("startIndexBuild".into())
        );
        assert_eq!(
            c(doc! {"importCollection": "c"}),
            Command::Refused("importCollection".into())
        );
    }

    #[test]
    fn transactions_of_both_servers() {
        let lsid =
            doc! {"id": bson::Binary{subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![7;16]}};
        let raw = RawDocumentBuf::try_from(&doc! {
            "lsid": lsid.clone(), "txnNumber": 3_i64, "op": "c", "ns": "admin.$cmd",
            "o": {"applyOps": [
                {"op": "i", "ns": "a.b", "o": {"_id": 1}},
                {"op": "d", "ns": "a.c", "o": {"_id": 2}},
            ], "partialTxn": true},
            "ts": ts(9), "prevOpTime": {"ts": Timestamp{time: 0, increment: 0}, "t": -1_i64},
        })
        .unwrap();
        let e = parse(&raw).unwrap();
        let Op::Command(Command::ApplyOps {
            ops,
            partial,
            prepare,
        }) = &e.op
        else {
            panic!()
        };
        assert!(*partial && !*prepare);
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].ts, ts(9));
        assert_eq!(ops[1].ns, "a.c");
        assert_eq!(e.session.as_ref().unwrap().txn_number, 3);
        assert_eq!(
            e.prev_ts,
            Some(Timestamp {
                time: 0,
                increment: 0
            })
        );

        // SecantusDB statement: a session and no stmtId.
        let raw = RawDocumentBuf::try_from(&doc! {"op": "i", "ns": "a.b", "o": {"_id": 1}, "o2": {"_id": 1}, "ts": ts(2), "lsid": lsid.clone(), "txnNumber": 1_i64}).unwrap();
        assert!(parse(&raw).unwrap().is_txn_statement());
        // A retryable write carries stmtId.
        let raw = RawDocumentBuf::try_from(&doc! {"op": "i", "ns": "a.b", "o": {"_id": 1}, "ts": ts(2), "lsid": lsid, "txnNumber": 1_i64, "stmtId": 0}).unwrap();
        assert!(!parse(&raw).unwrap().is_txn_statement());
    }
}
