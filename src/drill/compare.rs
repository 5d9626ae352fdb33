//! Comparing what a backup holds with what a server holds: documents (by
//! [`NsDigest`]), then, where they differ, the `_id`s; index specs, collection options
//! and view definitions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use bson::{Bson, Document, RawDocumentBuf, doc, rawdoc};
use futures_util::TryStreamExt as _;
use mongodb::Client;
use serde::Serialize;

use super::DrillError;
use super::digest::{NsDigest, bucket_of, doc_hash, id_key};
use crate::catalog::NsStatus;
use crate::catalog::{Catalog, Namespace, NsKind};
use crate::dump::plan::cursor_docs;
use crate::source::{Chunk, SourceError};

/// At most this many `_id`s are listed per kind of difference and namespace.
pub const MAX_IDS: usize = 10;
/// Documents held in memory at most while naming the `_id`s of one namespace's
/// differing buckets (beyond it, the differences are counted, not named).
const MAX_LOCATE: usize = 2_000_000;

/// Batch size of the read-back cursors.
const READ_BATCH: u32 = 10_000;

/// How the documents of a backup namespace are compared: as stored, or, for a
/// time-series collection, as the measurements its buckets hold.
fn unpacker(ns: &Namespace) -> Option<(String, Option<String>)> {
    if ns.kind != NsKind::Timeseries {
        return None;
    }
    let ts = ns.options.get_document("timeseries").ok()?;
    Some((
        ts.get_str("timeField").ok()?.to_string(),
        ts.get_str("metaField").ok().map(str::to_string),
    ))
}

/// What reading a backup through gave: its catalog, the namespaces whose every
/// document was read, and the damage that stopped the reading, if any.
pub struct BackupRead {
    /// The backup's catalog.
    pub catalog: Catalog,
    /// Namespaces (catalog indexes) whose end was reached.
    pub ended: HashSet<usize>,
    /// Why reading stopped early: damage, with where it is.
    pub damage: Option<String>,
}

/// Calls `each(ns_index, document)` for every document of the backup at `path` whose
/// namespace `wanted` accepts (time-series buckets unpacked into measurements). Damage
/// stops the reading and is returned in [`BackupRead::damage`], not as an error: the
/// namespaces read completely before it stay comparable.
fn for_each_doc(
    path: &Path,
    wanted: &dyn Fn(&Namespace) -> bool,
    each: &mut dyn FnMut(usize, &[u8]),
) -> Result<BackupRead, DrillError> {
    let mut src = crate::commands::open_source(path).map_err(DrillError::Backup)?;
    let catalog = src.catalog().clone();
    let want: Vec<bool> = catalog.namespaces.iter().map(wanted).collect();
    let unpack: Vec<Option<(String, Option<String>)>> =
        catalog.namespaces.iter().map(unpacker).collect();
    let mut ended = HashSet::new();
    let damage = loop {
        let chunk = match src.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break None,
            Err(SourceError::Corrupt { message, .. }) => break Some(message),
            Err(e) => return Err(DrillError::Backup(e)),
        };
        let (ns, data) = match chunk {
            Chunk::Docs { ns, data, .. } => (ns, data),
            Chunk::End { ns, status } => {
                if status == NsStatus::Complete {
                    ended.insert(ns);
                }
                continue;
            }
        };
        if !want.get(ns).copied().unwrap_or(false) {
            continue;
        }
        let name = || catalog.namespaces[ns].full_name();
        for d in crate::docs::DocIter::new(&data) {
            let d = d.map_err(|e| DrillError::Malformed {
                ns: name(),
                message: e.to_string(),
            })?;
            match &unpack[ns] {
                None => each(ns, d),
                Some((time, meta)) => {
                    let ms = crate::tsbucket::unpack(d, time, meta.as_deref()).map_err(|e| {
                        DrillError::Malformed {
                            ns: name(),
                            message: e.to_string(),
                        }
                    })?;
                    for m in &ms {
                        each(ns, m);
                    }
                }
            }
        }
    };
    Ok(BackupRead {
        catalog,
        ended,
        damage,
    })
}

/// The backup side of a comparison: per wanted namespace, by full name, its digest,
/// or why it cannot be compared (the backup is damaged or incomplete there).
pub struct BackupDigests {
    /// The backup's catalog.
    pub catalog: Catalog,
    /// Digests of the namespaces read completely.
    pub digests: BTreeMap<String, Result<NsDigest, String>>,
}

/// Digests every wanted namespace of the backup.
pub fn digest_backup(
    path: &Path,
    wanted: &dyn Fn(&Namespace) -> bool,
) -> Result<BackupDigests, DrillError> {
    let mut digests: HashMap<usize, NsDigest> = HashMap::new();
    let read = for_each_doc(path, wanted, &mut |ns, d| {
        digests.entry(ns).or_default().add(d)
    })?;
    let mut out = BTreeMap::new();
    for (i, ns) in read.catalog.namespaces.iter().enumerate() {
        if !ns.has_data() || !wanted(ns) {
            continue;
        }
        let entry = if read.ended.contains(&i) {
            Ok(digests.remove(&i).unwrap_or_default())
        } else {
            Err(match &read.damage {
                Some(d) => format!("the backup is damaged: {d}"),
                None => "the backup does not hold all of its documents".to_string(),
            })
        };
        out.insert(ns.full_name(), entry);
    }
    Ok(BackupDigests {
        catalog: read.catalog,
        digests: out,
    })
}

/// Reads `db.coll` with raw batch cursors and calls `each` on every document.
async fn read_collection(
    client: &Client,
    db: &str,
    coll: &str,
    each: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<(), DrillError> {
    let what = || format!("reading {db}.{coll}");
    let mut cursor = client
        .database(db)
        .collection::<Document>(coll)
        .find(doc! {})
        .batch_size(READ_BATCH)
        .batch()
        .await
        .map_err(DrillError::server(what()))?;
    while let Some(batch) = cursor
        .try_next()
        .await
        .map_err(DrillError::server(what()))?
    {
        for d in batch.doc_slices().map_err(DrillError::server(what()))? {
            let d = d.map_err(|e| DrillError::Malformed {
                ns: format!("{db}.{coll}"),
                message: e.to_string(),
            })?;
            if let Some(doc) = d.as_document() {
                each(doc.as_bytes());
            }
        }
    }
    Ok(())
}

/// The digest of what `db.coll` holds now.
pub async fn digest_collection(
    client: &Client,
    db: &str,
    coll: &str,
) -> Result<NsDigest, DrillError> {
    let mut d = NsDigest::default();
    read_collection(client, db, coll, &mut |doc| d.add(doc)).await?;
    Ok(d)
}

/// The `_id`s that differ between a backup namespace and a collection.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IdDifferences {
    /// In the backup, not on the server (first [`MAX_IDS`]).
    pub missing: Vec<String>,
    /// On the server, not in the backup.
    pub extra: Vec<String>,
    /// On both, with other contents.
    pub different: Vec<String>,
    /// Totals (may exceed the lists).
    pub missing_count: u64,
    /// Extra documents in all.
    pub extra_count: u64,
    /// Different documents in all.
    pub different_count: u64,
    /// True when there were too many documents in the differing buckets to name them all.
    pub truncated: bool,
}

/// Names the `_id`s that make `backup` and `server` differ: reads the documents of the
/// differing buckets again on both sides.
pub async fn locate(
    path: &Path,
    backup_ns: &str,
    client: &Client,
    db: &str,
    coll: &str,
    backup: &NsDigest,
    server: &NsDigest,
) -> Result<IdDifferences, DrillError> {
    let buckets: HashSet<usize> = backup.differing_buckets(server).into_iter().collect();
    let mut truncated = false;
    let mut ours: HashMap<Vec<u8>, Vec<u128>> = HashMap::new();
    let path_owned = path.to_path_buf();
    let backup_ns_owned = backup_ns.to_string();
    let buckets_b = buckets.clone();
    let (ours_map, t) = tokio::task::spawn_blocking(move || {
        let mut map: HashMap<Vec<u8>, Vec<u128>> = HashMap::new();
        let mut held = 0usize;
        let mut truncated = false;
        for_each_doc(
            &path_owned,
            &|n| n.full_name() == backup_ns_owned,
            &mut |_, d| {
                let key = id_key(d);
                if buckets_b.contains(&bucket_of(key)) {
                    if held >= MAX_LOCATE {
                        truncated = true;
                        return;
                    }
                    held += 1;
                    map.entry(key.to_vec()).or_default().push(doc_hash(d));
                }
            },
        )?;
        Ok::<_, DrillError>((map, truncated))
    })
    .await
    .map_err(|e| DrillError::Internal(e.to_string()))??;
    ours.extend(ours_map);
    truncated |= t;
    let mut theirs: HashMap<Vec<u8>, Vec<u128>> = HashMap::new();
    let mut held = 0usize;
    read_collection(client, db, coll, &mut |d| {
        let key = id_key(d);
        if buckets.contains(&bucket_of(key)) {
            if held >= MAX_LOCATE {
                truncated = true;
                return;
            }
            held += 1;
            theirs.entry(key.to_vec()).or_default().push(doc_hash(d));
        }
    })
    .await?;
    let mut out = IdDifferences {
        truncated,
        ..IdDifferences::default()
    };
    let mut keys: Vec<&Vec<u8>> = ours
        .keys()
        .chain(theirs.keys().filter(|k| !ours.contains_key(*k)))
        .collect();
    keys.sort();
    for key in keys {
        let mut a = ours.get(key).cloned().unwrap_or_default();
        let mut b = theirs.get(key).cloned().unwrap_or_default();
        a.sort_unstable();
        b.sort_unstable();
        if a == b {
            continue;
        }
        let (list, count) = match (a.len(), b.len()) {
            (_, 0) => (&mut out.missing, &mut out.missing_count),
            (0, _) => (&mut out.extra, &mut out.extra_count),
            _ => (&mut out.different, &mut out.different_count),
        };
        *count += 1;
        if list.len() < MAX_IDS {
            list.push(show_id_key(key));
        }
    }
    Ok(out)
}

/// Renders an [`id_key`] (a whole `_id` element) as relaxed Extended JSON.
pub fn show_id_key(key: &[u8]) -> String {
    if key.is_empty() {
        return "(no _id)".into();
    }
    let mut doc = ((key.len() + 5) as i32).to_le_bytes().to_vec();
    doc.extend_from_slice(key);
    doc.push(0);
    RawDocumentBuf::from_bytes(doc)
        .ok()
        .and_then(|d| {
            d.get("_id")
                .ok()
                .flatten()
                .and_then(|v| Bson::try_from(v).ok())
        })
        .map(|b| b.into_relaxed_extjson().to_string())
        .unwrap_or_else(|| "(unreadable _id)".into())
}

/// The `listCollections` entry of `db.coll`, if it exists.
pub async fn collection_info(
    client: &Client,
    db: &str,
    coll: &str,
) -> Result<Option<Document>, DrillError> {
    let docs = cursor_docs(
        &client.database(db),
        rawdoc! {"listCollections": 1, "filter": {"name": coll}},
    )
    .await
    .map_err(DrillError::server(format!("listCollections on {db}")))?;
    Ok(docs.into_iter().next())
}

/// The index specs of `db.coll`.
pub async fn index_specs(
    client: &Client,
    db: &str,
    coll: &str,
) -> Result<Vec<Document>, DrillError> {
    cursor_docs(&client.database(db), rawdoc! {"listIndexes": coll})
        .await
        .map_err(DrillError::server(format!("listIndexes on {db}.{coll}")))
}

/// A number as f64 (so `1`, `1i64` and `1.0` compare equal), anything else unchanged.
fn normalize(v: &Bson) -> Bson {
    match v {
        Bson::Int32(n) => Bson::Double(f64::from(*n)),
        Bson::Int64(n) => Bson::Double(*n as f64),
        Bson::Document(d) => {
            Bson::Document(d.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        Bson::Array(a) => Bson::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn normalized(d: &Document, skip: &[&str]) -> Document {
    d.iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), normalize(v)))
        .collect()
}

/// Key order matters in an index key: compared as a list of pairs.
fn key_pairs(d: &Document) -> Vec<(String, Bson)> {
    d.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()
}

/// Differences between the backup's index specs and the server's, by name. Numbers
/// compare by value (`1` equals `1.0`); `v` and `ns` are ignored.
pub fn compare_indexes(backup: &[Document], server: &[Document]) -> Vec<String> {
    let by_name = |specs: &[Document]| -> BTreeMap<String, Document> {
        specs
            .iter()
            .map(|s| (s.get_str("name").unwrap_or("").to_string(), s.clone()))
            .collect()
    };
    let (ours, theirs) = (by_name(backup), by_name(server));
    let mut out = Vec::new();
    for (name, spec) in &ours {
        let Some(other) = theirs.get(name) else {
            out.push(format!("index {name} is missing"));
            continue;
        };
        let key = |s: &Document| s.get_document("key").map(key_pairs).unwrap_or_default();
        if key(spec) != key(other) {
            out.push(format!(
                "index {name} has key {} instead of {}",
                other
                    .get_document("key")
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                spec.get_document("key")
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ));
        }
        let skip = ["v", "ns", "key", "name"];
        let (a, b) = (normalized(spec, &skip), normalized(other, &skip));
        if a != b {
            out.push(format!("index {name} has options {b} instead of {a}"));
        }
    }
    for name in theirs.keys().filter(|n| !ours.contains_key(*n)) {
        out.push(format!("index {name} is not in the backup"));
    }
    out
}

/// The collection options worth comparing: all but the collection's identity (`uuid`);
/// for a time-series collection, its `timeseries` fields that a user sets (bucket spans
/// are derived by the server from the granularity and may be normalised by a restore).
fn comparable_options(kind: NsKind, options: &Document) -> Document {
    let mut o = normalized(options, &["uuid"]);
    if kind == NsKind::Timeseries
        && let Ok(ts) = options.get_document("timeseries")
    {
        o.insert(
            "timeseries",
            normalized(ts, &["bucketMaxSpanSeconds", "bucketRoundingSeconds"]),
        );
    }
    o
}

/// Differences between a backup namespace's kind and options and the server's
/// `listCollections` entry (`None`: the namespace does not exist there).
pub fn compare_options(ns: &Namespace, info: Option<&Document>) -> Vec<String> {
    let Some(info) = info else {
        return vec!["does not exist on the server".into()];
    };
    let kind = match info.get_str("type").unwrap_or("collection") {
        "view" => NsKind::View,
        "timeseries" => NsKind::Timeseries,
        _ => NsKind::Collection,
    };
    if kind != ns.kind {
        return vec![format!(
            "is a {} on the server, a {} in the backup",
            kind.as_str(),
            ns.kind.as_str()
        )];
    }
    let server = info.get_document("options").cloned().unwrap_or_default();
    let (a, b) = (
        comparable_options(kind, &ns.options),
        comparable_options(kind, &server),
    );
    if a == b {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (k, v) in &a {
        match b.get(k) {
            None => out.push(format!("option {k} is missing (backup: {v})")),
            Some(w) if w != v => out.push(format!("option {k} is {w} (backup: {v})")),
            _ => {}
        }
    }
    for (k, v) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
        out.push(format!("option {k} is {v}, not in the backup"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_compare_by_value_and_order() {
        let a = [doc! {"v": 2, "key": {"a": 1.0, "b": -1}, "name": "ab", "unique": true}];
        let same = [doc! {"v": 1, "key": {"a": 1, "b": -1i64}, "name": "ab", "unique": true}];
        assert!(compare_indexes(&a, &same).is_empty());
        let swapped = [doc! {"v": 2, "key": {"b": -1, "a": 1}, "name": "ab", "unique": true}];
        assert_eq!(compare_indexes(&a, &swapped).len(), 1);
        let not_unique = [doc! {"v": 2, "key": {"a": 1, "b": -1}, "name": "ab"}];
        assert!(compare_indexes(&a, &not_unique)[0].contains("options"));
        let more = [a[0].clone(), doc! {"key": {"c": 1}, "name": "c_1"}];
        assert_eq!(
            compare_indexes(&a, &more),
            vec!["index c_1 is not in the backup".to_string()]
        );
        assert_eq!(
            compare_indexes(&more, &a),
            vec!["index c_1 is missing".to_string()]
        );
    }

    #[test]
    fn options_ignore_uuid_and_derived_bucket_spans() {
        let mut ns = Namespace::collection("d", "c");
        ns.kind = NsKind::Timeseries;
        ns.options = doc! {"timeseries": {"timeField": "t", "granularity": "seconds", "bucketMaxSpanSeconds": 3600}};
        let info = doc! {"name": "c", "type": "timeseries", "options": {"timeseries": {"timeField": "t", "granularity": "seconds"}}, "info": {"uuid": 1}};
        assert!(compare_options(&ns, Some(&info)).is_empty());
        let info = doc! {"name": "c", "type": "timeseries", "options": {"timeseries": {"timeField": "x", "granularity": "seconds"}}};
        assert_eq!(compare_options(&ns, Some(&info)).len(), 1);
        let view = doc! {"name": "c", "type": "view", "options": {}};
        assert!(compare_options(&ns, Some(&view))[0].contains("view"));
        assert_eq!(
            compare_options(&ns, None),
            vec!["does not exist on the server".to_string()]
        );
    }

    #[test]
    fn id_keys_render_as_extended_json() {
        let d = bson::serialize_to_vec(&doc! {"_id": "abc", "x": 1}).unwrap();
        assert_eq!(show_id_key(id_key(&d)), "\"abc\"");
        assert_eq!(show_id_key(&[]), "(no _id)");
    }
}
