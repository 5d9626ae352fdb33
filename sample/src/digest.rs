//! Order-independent digests of collections, and comparisons of databases with them.
//!
//! The digest of a collection is its document count and the sha256 of its documents'
//! raw bytes, sorted bytewise and concatenated: equal digests mean the same documents,
//! byte for byte, in any order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bson::{RawDocumentBuf, doc};
use futures_util::TryStreamExt as _;
use mongodb::{Client, Database};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{Result, SampleError};

/// Count and hex sha256 of documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    /// Number of documents.
    pub count: u64,
    /// Hex sha256 of the sorted raw documents.
    pub sha256: String,
}

/// The [`Digest`] of raw BSON documents given in any order.
pub fn docs_digest(docs: impl IntoIterator<Item = Vec<u8>>) -> Digest {
    let mut docs: Vec<Vec<u8>> = docs.into_iter().collect();
    docs.sort_unstable();
    let mut hash = Sha256::new();
    for d in &docs {
        hash.update(d);
    }
    let mut hex = String::with_capacity(64);
    for byte in hash.finalize() {
        write!(hex, "{byte:02x}").expect("writing to a String");
    }
    Digest {
        count: docs.len() as u64,
        sha256: hex,
    }
}

/// The [`Digest`] of what collection `coll` of `db` holds now.
pub async fn collection_digest(db: &Database, coll: &str) -> Result<Digest> {
    let docs: Vec<Vec<u8>> = db
        .collection::<RawDocumentBuf>(coll)
        .find(doc! {})
        .await
        .map_err(SampleError::server(format!("reading {}.{coll}", db.name())))?
        .map_ok(RawDocumentBuf::into_bytes)
        .try_collect()
        .await
        .map_err(SampleError::server(format!("reading {}.{coll}", db.name())))?;
    Ok(docs_digest(docs))
}

/// One entry of `listCollections`: the name and whether it is a view.
#[derive(Clone, Debug)]
pub struct CollectionName {
    /// The collection's name.
    pub name: String,
    /// True for a view.
    pub view: bool,
}

/// The collections and views of `db`, sorted by name.
pub async fn list_collections(db: &Database) -> Result<Vec<CollectionName>> {
    let mut names: Vec<CollectionName> = db
        .list_collections()
        .await
        .map_err(SampleError::server(format!(
            "listing the collections of {}",
            db.name()
        )))?
        .map_ok(|spec| CollectionName {
            view: matches!(spec.collection_type, mongodb::results::CollectionType::View),
            name: spec.name,
        })
        .try_collect()
        .await
        .map_err(SampleError::server(format!(
            "listing the collections of {}",
            db.name()
        )))?;
    names.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(names)
}

/// The manifest of `db`: `{"<db>.<coll>": {"count": N, "sha256": HEX}}` for every
/// collection `listCollections` shows, and `{"type": "view"}` for views (the format of
/// `tests/fixtures/mongodump-100.18/manifest.json`).
pub async fn manifest(client: &Client, db: &str) -> Result<Value> {
    let database = client.database(db);
    let mut out = serde_json::Map::new();
    for c in list_collections(&database).await? {
        let ns = format!("{db}.{}", c.name);
        if c.view {
            out.insert(ns, json!({ "type": "view" }));
            continue;
        }
        let d = collection_digest(&database, &c.name).await?;
        out.insert(ns, json!({ "count": d.count, "sha256": d.sha256 }));
    }
    Ok(Value::Object(out))
}

/// One collection compared between two databases.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// The collection's name.
    pub collection: String,
    /// Digest in the source database.
    pub source: Digest,
    /// Digest in the other database (`None`: it does not exist there).
    pub copy: Option<Digest>,
}

impl Comparison {
    /// True when both hold the same documents.
    pub fn same(&self) -> bool {
        self.copy.as_ref() == Some(&self.source)
    }
}

/// Compares every collection of `source` with the collection of the same name in `copy`,
/// by [`Digest`]. Views and `system.views` are skipped (they hold no documents of their
/// own), and so are time-series buckets (`system.buckets.*`): a time-series collection is
/// compared through its measurements, since how a server packs them into buckets is its
/// own business and a restore may re-bucket them.
pub async fn compare_databases(
    client: &Client,
    source: &str,
    copy: &str,
) -> Result<Vec<Comparison>> {
    let src = client.database(source);
    let dst = client.database(copy);
    let in_copy: BTreeMap<String, bool> = list_collections(&dst)
        .await?
        .into_iter()
        .map(|c| (c.name, c.view))
        .collect();
    let mut out = Vec::new();
    for c in list_collections(&src).await? {
        if c.view || c.name == "system.views" || c.name.starts_with("system.buckets.") {
            continue;
        }
        let copy = match in_copy.get(&c.name) {
            Some(false) => Some(collection_digest(&dst, &c.name).await?),
            _ => None,
        };
        out.push(Comparison {
            source: collection_digest(&src, &c.name).await?,
            collection: c.name,
            copy,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ignores_order_and_matches_sha256_of_nothing() {
        let a = docs_digest([vec![5, 0, 0, 0, 0], vec![6, 0, 0, 0, 8, 0]]);
        let b = docs_digest([vec![6, 0, 0, 0, 8, 0], vec![5, 0, 0, 0, 0]]);
        assert_eq!(a, b);
        assert_eq!(a.count, 2);
        assert_eq!(
            docs_digest(Vec::<Vec<u8>>::new()).sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
