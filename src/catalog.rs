//! What a backup holds, independent of the format it is stored in.
//!
//! Every reader (OXD, mongodump directory, mongodump archive) produces a [`Catalog`]
//! and every writer consumes one. Namespaces are addressed by their index in
//! [`Catalog::namespaces`]; that index is also the `ns_id` of the OXD format.

use bson::{DateTime, Document, Timestamp};

/// What kind of namespace a catalog entry is, as `listCollections` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsKind {
    /// An ordinary collection (capped and clustered collections included).
    Collection,
    /// A view: only its definition (`viewOn`, `pipeline`) is stored, never data.
    View,
    /// A time-series collection: its data are the raw bucket documents.
    Timeseries,
    /// The oplog slice captured during a dump (`--oplog`).
    Oplog,
}

impl NsKind {
    /// The name used in manifests and in mongodump metadata (`type`).
    pub fn as_str(self) -> &'static str {
        match self {
            NsKind::Collection => "collection",
            NsKind::View => "view",
            NsKind::Timeseries => "timeseries",
            NsKind::Oplog => "oplog",
        }
    }

    /// Parses the name written by [`NsKind::as_str`].
    pub fn parse(s: &str) -> Option<NsKind> {
        Some(match s {
            "collection" => NsKind::Collection,
            "view" => NsKind::View,
            "timeseries" => NsKind::Timeseries,
            "oplog" => NsKind::Oplog,
            _ => return None,
        })
    }
}

/// Database name used for the oplog namespace in a catalog.
pub const OPLOG_DB: &str = "local";
/// Collection name used for the oplog namespace in a catalog.
pub const OPLOG_COLLECTION: &str = "oplog.rs";
/// Prefix of the collection that stores a time-series collection's buckets.
pub const BUCKETS_PREFIX: &str = "system.buckets.";

/// One namespace (collection, view, time-series collection or oplog) of a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// Database name.
    pub db: String,
    /// Logical collection name (`X` for a time-series collection, not `system.buckets.X`).
    pub collection: String,
    /// Kind of namespace.
    pub kind: NsKind,
    /// `listCollections` `options`, verbatim (empty when there are none).
    pub options: Document,
    /// `listIndexes` documents, verbatim and in order.
    pub indexes: Vec<Document>,
    /// The collection UUID (`info.uuid`), when the source reported one.
    pub uuid: Option<[u8; 16]>,
}

impl Namespace {
    /// A plain collection with no options and no indexes.
    pub fn collection(db: impl Into<String>, collection: impl Into<String>) -> Namespace {
        Namespace {
            db: db.into(),
            collection: collection.into(),
            kind: NsKind::Collection,
            options: Document::new(),
            indexes: Vec::new(),
            uuid: None,
        }
    }

    /// `db.collection`, the name users type.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.db, self.collection)
    }

    /// Whether documents are stored for this namespace (views have none).
    pub fn has_data(&self) -> bool {
        self.kind != NsKind::View
    }

    /// The collection that physically holds the documents on servers that store
    /// time-series data in buckets (below 8.3): `system.buckets.X` for a time-series
    /// collection `X`, the collection itself otherwise.
    pub fn bucket_collection(&self) -> String {
        match self.kind {
            NsKind::Timeseries => format!("{BUCKETS_PREFIX}{}", self.collection),
            _ => self.collection.clone(),
        }
    }
}

/// Facts about where a backup came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceInfo {
    /// Tool that wrote the backup, for example `oxidump 0.1.0` or `mongodump 100.18.0`.
    pub tool: Option<String>,
    /// Source server version (`buildInfo.version`).
    pub server_version: Option<String>,
    /// Source feature compatibility version.
    pub fcv: Option<String>,
    /// When the backup was started.
    pub created_at: Option<DateTime>,
    /// Source connection string with credentials removed.
    pub uri: Option<String>,
    /// mongodump archive `concurrent_collections` (kept so a conversion can carry it).
    pub concurrent_collections: Option<i32>,
    /// When the interrupted dump that this one resumed started (`dump --resume`).
    pub resumed_from: Option<DateTime>,
    /// The options of the dump that decide what it holds, as typed (`--db shop
    /// --oplog`; empty for a full dump): a resumed dump must have the same.
    pub dump_options: Option<String>,
    /// With `--oplog`: where the oplog window starts (also the start of the
    /// interrupted run's window when the dump resumed one).
    pub oplog_start: Option<Timestamp>,
}

/// The oplog window captured by a dump with `--oplog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OplogRange {
    /// Timestamp of the newest oplog entry when the dump started.
    pub start: Timestamp,
    /// Timestamp of the newest oplog entry when the data phase ended.
    pub end: Timestamp,
}

/// Everything known about a backup before its data: where it came from and its namespaces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Provenance.
    pub source: SourceInfo,
    /// Namespaces; the index is the namespace id.
    pub namespaces: Vec<Namespace>,
}

impl Catalog {
    /// Index of the namespace `db.collection` (logical name), if present.
    pub fn find(&self, db: &str, collection: &str) -> Option<usize> {
        self.namespaces
            .iter()
            .position(|n| n.db == db && n.collection == collection)
    }

    /// Index of a namespace given as `db.collection`; the database is the part before the first dot.
    pub fn find_full(&self, full: &str) -> Option<usize> {
        let (db, coll) = full.split_once('.')?;
        self.find(db, coll)
    }
}

/// Whether a namespace's data is complete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NsStatus {
    /// Every document of the namespace was captured.
    #[default]
    Complete,
    /// The source changed under the dump (collection dropped or renamed); the data may be partial.
    Partial(String),
    /// Every document read is intact, but the record that closes the namespace in the
    /// backup is damaged: it could not be checked against (the message says where).
    Unchecked(String),
}

/// Facts known only when a backup is finished.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// When the backup was completed.
    pub completed_at: Option<DateTime>,
    /// The captured oplog window, if any.
    pub oplog: Option<OplogRange>,
    /// Warnings recorded while writing (for example a collection dropped during the dump).
    pub warnings: Vec<String>,
    /// Fields defined outside the OXD format (for example `segment`, the chain link of a
    /// repository's oplog segment), kept verbatim; OXD readers ignore them.
    pub extra: Document,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for k in [
            NsKind::Collection,
            NsKind::View,
            NsKind::Timeseries,
            NsKind::Oplog,
        ] {
            assert_eq!(NsKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(NsKind::parse("table"), None);
    }

    #[test]
    fn find_full_splits_at_first_dot() {
        let cat = Catalog {
            source: SourceInfo::default(),
            namespaces: vec![Namespace::collection("edge", "dots.in.name")],
        };
        assert_eq!(cat.find_full("edge.dots.in.name"), Some(0));
        assert_eq!(cat.find_full("edge.dots"), None);
        assert_eq!(cat.find_full("nodot"), None);
    }
}
