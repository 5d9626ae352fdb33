//! Planning a dump: which namespaces, with which metadata, read how.
//!
//! Namespaces come from `listDatabases` and `listCollections`; index specs from
//! `listIndexes`, kept verbatim. What is skipped follows mongodump: `local`,
//! `config` and `__mdb_internal*` databases, `system.*` collections other than the
//! ones mongodump keeps, and names containing `$` — unless asked for explicitly.

use bson::{Bson, Document, RawDocumentBuf, rawdoc};
use futures_util::{StreamExt as _, TryStreamExt};
use mongodb::{Client, Database};

use crate::catalog::{
    BUCKETS_PREFIX, Catalog, Namespace, NsKind, OPLOG_COLLECTION, OPLOG_DB, SourceInfo,
};
use crate::nsmatch::NsFilter;

/// Which namespaces to dump.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these databases (all but `local`/`config` when empty).
    pub dbs: Vec<String>,
    /// Only this collection (needs exactly one database).
    pub collection: Option<String>,
    /// `--ns-include` / `--ns-exclude`.
    pub filter: NsFilter,
    /// Patterns as given, to tell explicit requests apart.
    pub include: Vec<String>,
    /// Only views, each dumped as a collection of the documents it produces
    /// (mongodump `--viewsAsCollections`).
    pub views_as_collections: bool,
    /// `admin.system.users` and `admin.system.roles` are dumped apart (see
    /// [`crate::authz`]): leave them out of the listed collections.
    pub authz_apart: bool,
}

/// How one namespace's documents are read.
#[derive(Debug, Clone)]
pub struct NsPlan {
    /// Index in the catalog.
    pub ns: usize,
    /// Database.
    pub db: String,
    /// Collection the documents are read from (`system.buckets.X` for time-series).
    pub data_coll: String,
    /// Whether to read with `rawData: true` (time-series on 8.3+ servers).
    pub raw_data: bool,
    /// Whether the order of documents matters (capped collections): never split.
    pub ordered: bool,
    /// Whether the collection is clustered (no separate `_id` index to hint).
    pub clustered: bool,
    /// Documents, as estimated by the server.
    pub count: u64,
    /// Uncompressed data size in bytes, as estimated by the server.
    pub size: u64,
    /// UUID from `listCollections`, to notice a drop-and-recreate.
    pub uuid: Option<[u8; 16]>,
    /// A view read as a collection (`--viewsAsCollections`): one plain `find`, no hint.
    pub through_view: bool,
}

/// Error planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A server command failed.
    #[error("{what}: {}", crate::connect::describe(source))]
    Driver {
        /// What was being asked.
        what: String,
        /// The driver error.
        source: mongodb::error::Error,
    },
    /// The selection is invalid or matches nothing.
    #[error("{0}")]
    Usage(String),
}

fn driver(what: impl Into<String>) -> impl FnOnce(mongodb::error::Error) -> PlanError {
    let what = what.into();
    move |source| PlanError::Driver { what, source }
}

/// Runs a cursor-returning command and collects every document, decoded (metadata only).
pub async fn cursor_docs(
    db: &Database,
    cmd: RawDocumentBuf,
) -> Result<Vec<Document>, mongodb::error::Error> {
    let mut cur = db.run_raw_cursor_command(cmd).batch().await?;
    let mut out = Vec::new();
    while let Some(b) = cur.try_next().await? {
        for d in b.doc_slices()? {
            let d = d?;
            if let Some(raw) = d.as_document() {
                out.push(Document::try_from(raw)?);
            }
        }
    }
    Ok(out)
}

fn db_is_internal(db: &str) -> bool {
    db.starts_with("__mdb_internal")
}

/// Collections mongodump keeps in `config` on a full dump.
const CONFIG_KEEP: [&str; 7] = [
    "chunks",
    "collections",
    "databases",
    "settings",
    "shards",
    "tags",
    "version",
];

impl Selection {
    fn db_named(&self, db: &str) -> bool {
        self.dbs.iter().any(|d| d == db)
            || self
                .include
                .iter()
                .any(|p| p.starts_with(&format!("{db}.")))
    }

    fn wants_db(&self, db: &str) -> bool {
        if !self.dbs.is_empty() {
            return self.dbs.iter().any(|d| d == db);
        }
        if db_is_internal(db) {
            return false;
        }
        if db == "local" || db == "config" {
            return self.db_named(db);
        }
        true
    }

    fn wants_coll(&self, db: &str, name: &str) -> bool {
        let full = format!("{db}.{name}");
        if let Some(c) = &self.collection {
            return c == name && self.filter.allows(&full);
        }
        if self.filter.names_explicitly(&full) {
            // Named without a wildcard: kept even if it is a system collection, but an
            // exclude still wins.
            return self.filter.allows(&full);
        }
        if name.contains('$') && !name.contains(".oplog.$") {
            return false;
        }
        if name.starts_with("system.") {
            let keep = match db {
                "admin" => name != "system.keys",
                _ => name == "system.js",
            };
            if !keep {
                return false;
            }
        }
        if db == "config" && !self.dbs.iter().any(|d| d == "config") && !CONFIG_KEEP.contains(&name)
        {
            return false;
        }
        self.filter.allows(&full)
    }
}

fn uuid_of(info: &Document) -> Option<[u8; 16]> {
    match info.get_document("info").ok()?.get("uuid")? {
        Bson::Binary(b) if b.bytes.len() == 16 => b.bytes.as_slice().try_into().ok(),
        _ => None,
    }
}

/// Builds the catalog and the read plans. `oplog` adds the oplog namespace (its data
/// is captured last). `version` is the source server version.
/// How planning learns each collection's size and count, which decide splitting and
/// give the progress totals. Planning never reads the data: a server whose size
/// statistics cost a scan is not asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// `$collStats` storage statistics: metadata on mongod (a few milliseconds a
    /// collection), asked for every collection at once.
    Metadata,
    /// None: SecantusDB computes `$collStats`, `collStats` and `dbStats` by reading the
    /// collection (1.2 to 1.8 s for 200,000 documents of 190 bytes, about as long as
    /// reading them), so by default sizes stay unknown there: nothing is split
    /// (splitting only slows that server down) and progress shows counts without totals.
    Skip,
}

/// Collections asked for their statistics at once.
const STATS_IN_FLIGHT: usize = 8;

pub async fn plan(
    client: &Client,
    sel: &Selection,
    source: SourceInfo,
    oplog: bool,
    sizes: Sizes,
) -> Result<(Catalog, Vec<NsPlan>), PlanError> {
    let (major, minor) =
        crate::connect::parse_major_minor(source.server_version.as_deref().unwrap_or(""));
    let viewless_ts = (major, minor) >= (8, 3);
    let mut dbs = client
        .list_database_names()
        .await
        .map_err(driver("listDatabases"))?;
    dbs.sort();
    for d in &sel.dbs {
        if !dbs.contains(d) {
            return Err(PlanError::Usage(format!(
                "database {d:?} does not exist on the server"
            )));
        }
    }
    let mut catalog = Catalog {
        source,
        namespaces: Vec::new(),
    };
    let mut plans = Vec::new();
    for dbname in dbs.iter().filter(|d| sel.wants_db(d)) {
        let db = client.database(dbname);
        let mut colls = cursor_docs(&db, rawdoc! {"listCollections": 1})
            .await
            .map_err(driver(format!("listCollections on {dbname}")))?;
        colls.sort_by(|a, b| {
            a.get_str("name")
                .unwrap_or("")
                .cmp(b.get_str("name").unwrap_or(""))
        });
        for info in colls {
            let Ok(name) = info.get_str("name") else {
                continue;
            };
            let name = name.to_string();
            if !sel.wants_coll(dbname, &name) {
                continue;
            }
            if sel.authz_apart
                && dbname == "admin"
                && (name == crate::authz::USERS || name == crate::authz::ROLES)
            {
                continue;
            }
            if name.starts_with(BUCKETS_PREFIX) && sel.collection.as_deref() != Some(name.as_str())
            {
                // Reached through its time-series collection.
                continue;
            }
            let kind = match info.get_str("type").unwrap_or("collection") {
                "view" => NsKind::View,
                "timeseries" => NsKind::Timeseries,
                _ => NsKind::Collection,
            };
            let mut options = info.get_document("options").cloned().unwrap_or_default();
            if sel.views_as_collections {
                if kind != NsKind::View {
                    continue;
                }
                // Its documents, as a plain collection: no definition, no indexes.
                options.remove("viewOn");
                options.remove("pipeline");
                let ns = catalog.namespaces.len();
                catalog.namespaces.push(Namespace {
                    db: dbname.clone(),
                    collection: name.clone(),
                    kind: NsKind::Collection,
                    options,
                    indexes: Vec::new(),
                    uuid: None,
                });
                plans.push(NsPlan {
                    ns,
                    db: dbname.clone(),
                    data_coll: name.clone(),
                    raw_data: false,
                    ordered: true,
                    clustered: false,
                    count: 0,
                    size: 0,
                    uuid: None,
                    through_view: true,
                });
                continue;
            }
            let indexes = if kind == NsKind::View {
                Vec::new()
            } else {
                cursor_docs(&db, rawdoc! {"listIndexes": name.as_str()})
                    .await
                    .map_err(driver(format!("listIndexes on {dbname}.{name}")))?
            };
            let ns = catalog.namespaces.len();
            let uuid = uuid_of(&info);
            catalog.namespaces.push(Namespace {
                db: dbname.clone(),
                collection: name.clone(),
                kind,
                options: options.clone(),
                indexes,
                uuid,
            });
            if kind == NsKind::View {
                continue;
            }
            let data_coll = if kind == NsKind::Timeseries && !viewless_ts {
                format!("{BUCKETS_PREFIX}{name}")
            } else {
                name.clone()
            };
            let (count, size) = (0, 0); // filled in below, all at once
            plans.push(NsPlan {
                ns,
                db: dbname.clone(),
                data_coll,
                raw_data: kind == NsKind::Timeseries && viewless_ts,
                ordered: options.get_bool("capped").unwrap_or(false),
                clustered: options.contains_key("clusteredIndex") || kind == NsKind::Timeseries,
                count,
                size,
                uuid,
                through_view: false,
            });
        }
    }
    if sizes == Sizes::Metadata {
        let asked: Vec<(u64, u64)> = futures_util::stream::iter(plans.iter())
            .map(|p| {
                let db = client.database(&p.db);
                let coll = p.data_coll.clone();
                async move { stats(&db, &coll).await }
            })
            .buffered(STATS_IN_FLIGHT)
            .collect()
            .await;
        for (p, (count, size)) in plans.iter_mut().zip(asked) {
            p.count = count;
            p.size = size;
        }
    }
    if oplog {
        let db = client.database(OPLOG_DB);
        let (count, size) = match sizes {
            Sizes::Metadata => stats(&db, OPLOG_COLLECTION).await,
            Sizes::Skip => (0, 0),
        };
        let ns = catalog.namespaces.len();
        catalog.namespaces.push(Namespace {
            db: OPLOG_DB.into(),
            collection: OPLOG_COLLECTION.into(),
            kind: NsKind::Oplog,
            options: Document::new(),
            indexes: Vec::new(),
            uuid: None,
        });
        plans.push(NsPlan {
            ns,
            db: OPLOG_DB.into(),
            data_coll: OPLOG_COLLECTION.into(),
            raw_data: false,
            ordered: true,
            clustered: false,
            count,
            size,
            uuid: None,
            through_view: false,
        });
    }
    if catalog.namespaces.is_empty() {
        return Err(PlanError::Usage(
            "nothing to dump: no namespace matches the selection".into(),
        ));
    }
    Ok((catalog, plans))
}

/// Document count and uncompressed size of a collection (0, 0 when unknown).
pub async fn stats(db: &Database, coll: &str) -> (u64, u64) {
    let cmd = rawdoc! {"aggregate": coll, "pipeline": [{"$collStats": {"storageStats": {}}}], "cursor": {}};
    if let Ok(docs) = cursor_docs(db, cmd).await {
        let (mut count, mut size) = (0u64, 0u64);
        for d in docs {
            if let Ok(s) = d.get_document("storageStats") {
                count += num(s.get("count"));
                size += num(s.get("size"));
            }
        }
        if count > 0 || size > 0 {
            return (count, size);
        }
    }
    let c = db.collection::<Document>(coll);
    (c.estimated_document_count().await.unwrap_or(0), 0)
}

fn num(b: Option<&Bson>) -> u64 {
    match b {
        Some(Bson::Int32(v)) => (*v).max(0) as u64,
        Some(Bson::Int64(v)) => (*v).max(0) as u64,
        Some(Bson::Double(v)) if *v > 0.0 => *v as u64,
        _ => 0,
    }
}

/// Whether `db.coll` still exists with the same UUID (to tell a drop or rename
/// during the dump from a killed cursor).
pub async fn still_there(client: &Client, db: &str, coll: &str, uuid: Option<[u8; 16]>) -> bool {
    let cmd = rawdoc! {"listCollections": 1, "filter": {"name": coll}};
    match cursor_docs(&client.database(db), cmd).await {
        Ok(v) => match v.first() {
            None => false,
            Some(info) => uuid.is_none() || uuid_of(info) == uuid,
        },
        Err(_) => true,
    }
}

/// Parses a `--query` given as Extended JSON (canonical or relaxed).
pub fn parse_query(q: &str) -> Result<Document, PlanError> {
    let v: serde_json::Value = serde_json::from_str(q)
        .map_err(|e| PlanError::Usage(format!("--query is not valid JSON: {e}")))?;
    match Bson::try_from(v) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err(PlanError::Usage("--query must be a JSON object".into())),
        Err(e) => Err(PlanError::Usage(format!(
            "--query is not valid Extended JSON: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn sel(dbs: &[&str], include: &[&str]) -> Selection {
        let include: Vec<String> = include.iter().map(|s| s.to_string()).collect();
        Selection {
            dbs: dbs.iter().map(|s| s.to_string()).collect(),
            collection: None,
            filter: NsFilter::new(&include, &[]).unwrap(),
            include,
            views_as_collections: false,
            authz_apart: false,
        }
    }

    #[test]
    fn default_skips_like_mongodump() {
        let s = sel(&[], &[]);
        assert!(s.wants_db("shop"));
        assert!(s.wants_db("admin"));
        assert!(!s.wants_db("local"));
        assert!(!s.wants_db("config"));
        assert!(!s.wants_db("__mdb_internal_x"));
        assert!(s.wants_coll("shop", "orders"));
        assert!(s.wants_coll("shop", "system.js"));
        assert!(!s.wants_coll("shop", "system.views"));
        assert!(!s.wants_coll("shop", "system.profile"));
        assert!(s.wants_coll("admin", "system.users"));
        assert!(!s.wants_coll("admin", "system.keys"));
        assert!(!s.wants_coll("shop", "a$b"));
    }

    #[test]
    fn explicit_requests_win() {
        assert!(sel(&["local"], &[]).wants_db("local"));
        assert!(sel(&[], &["config.*"]).wants_db("config"));
        assert!(sel(&[], &["shop.system.profile"]).wants_coll("shop", "system.profile"));
        let mut s = sel(&["shop"], &[]);
        s.collection = Some("system.views".into());
        assert!(s.wants_coll("shop", "system.views"));
        assert!(!s.wants_coll("shop", "orders"));
    }

    #[test]
    fn query_parsing() {
        assert_eq!(
            parse_query(r#"{"a": {"$gt": 1}}"#).unwrap(),
            doc! {"a": {"$gt": 1}}
        );
        let d = parse_query(r#"{"t": {"$date": "2024-01-01T00:00:00Z"}}"#).unwrap();
        assert!(matches!(d.get("t"), Some(Bson::DateTime(_))));
        assert!(parse_query("[1]").is_err());
        assert!(parse_query("{").is_err());
    }
}
