//! The MANIFEST payload (spec §5): one BSON document describing the archive's
//! source and every namespace. A namespace's id is its index in `namespaces`.
//!
//! | field        | BSON type | required | meaning                                           |
//! |--------------|-----------|----------|---------------------------------------------------|
//! | `writer`     | string    | yes      | program that wrote the file, `oxidump 0.1.0`      |
//! | `created_at` | date      | yes      | when the backup was started                       |
//! | `source`     | document  | yes      | see [`source` fields](#source)                    |
//! | `namespaces` | array     | yes      | one document per namespace, in id order           |
//!
//! `source`: `tool`, `server_version`, `fcv`, `uri` (strings, credentials removed),
//! `concurrent_collections` (int32), `resumed_from` (date: the backup resumed an
//! interrupted one that started then), `dump_options` (string: the options that
//! decide what the dump holds) and `oplog_start` (timestamp: where the oplog window
//! starts), each optional.
//!
//! Namespace documents: `db` (string), `collection` (string, logical name), `type`
//! (`collection`, `view`, `timeseries` or `oplog`), `options` (document,
//! `listCollections` options verbatim), `indexes` (array of documents, `listIndexes`
//! output verbatim), `uuid` (binary subtype 4, optional). Readers ignore fields they
//! do not know.

use bson::{Binary, Bson, DateTime, Document, doc, spec::BinarySubtype};

use crate::catalog::{Catalog, Namespace, NsKind, SourceInfo};

/// The `writer` this build records.
pub fn writer_name() -> String {
    format!("oxidump {}", env!("CARGO_PKG_VERSION"))
}

/// Builds the manifest document for `catalog`. A missing `created_at` becomes now.
pub fn encode(catalog: &Catalog) -> Vec<u8> {
    let s = &catalog.source;
    let mut source = Document::new();
    let strings = [
        ("tool", &s.tool),
        ("server_version", &s.server_version),
        ("fcv", &s.fcv),
        ("uri", &s.uri),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            source.insert(k, v.clone());
        }
    }
    if let Some(c) = s.concurrent_collections {
        source.insert("concurrent_collections", c);
    }
    if let Some(t) = s.resumed_from {
        source.insert("resumed_from", t);
    }
    if let Some(o) = &s.dump_options {
        source.insert("dump_options", o.clone());
    }
    if let Some(t) = s.oplog_start {
        source.insert("oplog_start", t);
    }
    let namespaces: Vec<Bson> = catalog
        .namespaces
        .iter()
        .map(|n| {
            let mut d = doc! {
                "db": &n.db,
                "collection": &n.collection,
                "type": n.kind.as_str(),
                "options": n.options.clone(),
                "indexes": n.indexes.iter().cloned().map(Bson::Document).collect::<Vec<_>>(),
            };
            if let Some(u) = n.uuid {
                d.insert(
                    "uuid",
                    Binary {
                        subtype: BinarySubtype::Uuid,
                        bytes: u.to_vec(),
                    },
                );
            }
            Bson::Document(d)
        })
        .collect();
    let d = doc! {
        "writer": writer_name(),
        "created_at": s.created_at.unwrap_or_else(DateTime::now),
        "source": source,
        "namespaces": namespaces,
    };
    bson::serialize_to_vec(&d).expect("a manifest document always serializes")
}

/// Parses a manifest document into a catalog. Messages name the offending field.
pub fn decode(bytes: &[u8]) -> Result<Catalog, String> {
    match crate::docs::declared_len(bytes) {
        Some(n) if n as i64 == bytes.len() as i64 => {}
        _ => return Err("the payload is not exactly one BSON document".into()),
    }
    // The walk is depth-limited; the bson crate's decoding recurses without a limit.
    crate::docs::deep_check(bytes).map_err(|e| format!("not a BSON document: {e}"))?;
    let d =
        Document::from_reader(&mut &bytes[..]).map_err(|e| format!("not a BSON document: {e}"))?;
    let created_at = match d.get("created_at") {
        Some(Bson::DateTime(t)) => *t,
        Some(_) => return Err("`created_at` is not a date".into()),
        None => return Err("`created_at` is missing".into()),
    };
    match d.get("writer") {
        Some(Bson::String(_)) => {}
        _ => return Err("`writer` is missing or not a string".into()),
    }
    let src = match d.get("source") {
        Some(Bson::Document(s)) => s,
        _ => return Err("`source` is missing or not a document".into()),
    };
    let opt_str = |k: &str| -> Result<Option<String>, String> {
        match src.get(k) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`source.{k}` is not a string")),
        }
    };
    let source = SourceInfo {
        tool: opt_str("tool")?,
        server_version: opt_str("server_version")?,
        fcv: opt_str("fcv")?,
        uri: opt_str("uri")?,
        created_at: Some(created_at),
        concurrent_collections: match src.get("concurrent_collections") {
            None => None,
            Some(Bson::Int32(c)) => Some(*c),
            Some(_) => return Err("`source.concurrent_collections` is not an int32".into()),
        },
        resumed_from: match src.get("resumed_from") {
            None | Some(Bson::Null) => None,
            Some(Bson::DateTime(t)) => Some(*t),
            Some(_) => return Err("`source.resumed_from` is not a date".into()),
        },
        dump_options: opt_str("dump_options")?,
        oplog_start: match src.get("oplog_start") {
            None | Some(Bson::Null) => None,
            Some(Bson::Timestamp(t)) => Some(*t),
            Some(_) => return Err("`source.oplog_start` is not a timestamp".into()),
        },
    };
    let list = match d.get("namespaces") {
        Some(Bson::Array(a)) => a,
        _ => return Err("`namespaces` is missing or not an array".into()),
    };
    let mut namespaces = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let Bson::Document(nd) = item else {
            return Err(format!("`namespaces.{i}` is not a document"));
        };
        namespaces.push(decode_ns(nd).map_err(|e| format!("`namespaces.{i}.{e}"))?);
    }
    let mut seen = std::collections::HashSet::new();
    for n in &namespaces {
        if !seen.insert((n.db.as_str(), n.collection.as_str())) {
            return Err(format!("namespace {} is listed twice", n.full_name()));
        }
    }
    Ok(Catalog { source, namespaces })
}

fn decode_ns(d: &Document) -> Result<Namespace, String> {
    let s = |k: &str| match d.get(k) {
        Some(Bson::String(v)) => Ok(v.clone()),
        _ => Err(format!("{k}` is missing or not a string")),
    };
    let db = s("db")?;
    let collection = s("collection")?;
    if db.is_empty() || collection.is_empty() {
        return Err("db` and `collection` must not be empty".into());
    }
    let kind =
        NsKind::parse(&s("type")?).ok_or("type` is not collection, view, timeseries or oplog")?;
    let options = match d.get("options") {
        Some(Bson::Document(o)) => o.clone(),
        None => Document::new(),
        Some(_) => return Err("options` is not a document".into()),
    };
    let indexes = match d.get("indexes") {
        None => Vec::new(),
        Some(Bson::Array(a)) => a
            .iter()
            .map(|x| match x {
                Bson::Document(ix) => Ok(ix.clone()),
                _ => Err("indexes` holds a non-document".to_string()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("indexes` is not an array".into()),
    };
    let uuid = match d.get("uuid") {
        None => None,
        Some(Bson::Binary(b)) if b.bytes.len() == 16 => {
            Some(<[u8; 16]>::try_from(b.bytes.as_slice()).expect("16 bytes"))
        }
        Some(_) => return Err("uuid` is not a 16-byte binary".into()),
    };
    Ok(Namespace {
        db,
        collection,
        kind,
        options,
        indexes,
        uuid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Catalog {
        let mut ts = Namespace::collection("shop", "series");
        ts.kind = NsKind::Timeseries;
        ts.options = doc! {"timeseries": {"timeField": "t", "granularity": "seconds"}};
        let mut c = Namespace::collection("shop", "orders");
        c.indexes = vec![
            doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"},
            doc! {"v": 2, "key": {"b": 1, "a": -1}, "name": "b_1_a_-1", "unique": true},
        ];
        c.uuid = Some([7; 16]);
        Catalog {
            source: SourceInfo {
                tool: Some("oxidump test".into()),
                server_version: Some("8.2.11".into()),
                fcv: Some("8.2".into()),
                created_at: Some(DateTime::from_millis(1_700_000_000_000)),
                uri: Some("mongodb://host:27017/".into()),
                concurrent_collections: Some(4),
                resumed_from: None,
                dump_options: Some("--db shop".into()),
                oplog_start: Some(bson::Timestamp {
                    time: 1_700_000_000,
                    increment: 3,
                }),
            },
            namespaces: vec![c, ts],
        }
    }

    #[test]
    fn round_trip() {
        let cat = sample();
        assert_eq!(decode(&encode(&cat)).unwrap(), cat);
    }

    #[test]
    fn errors_name_the_field() {
        let d = doc! {"writer": "x", "created_at": DateTime::now(), "source": {},
        "namespaces": [{"db": "a", "collection": "b", "type": "table"}]};
        let e = decode(&bson::serialize_to_vec(&d).unwrap()).unwrap_err();
        assert!(e.contains("namespaces.0.type"), "{e}");
        assert!(
            decode(b"\x05\x00\x00\x00\x00")
                .unwrap_err()
                .contains("created_at")
        );
        assert!(decode(b"garbage").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let depth = 100_000;
        let mut d = encode(&sample());
        d.pop();
        d.extend(b"\x03deep\0");
        for k in (1..=depth).rev() {
            d.extend(((5 + 8 * k) as i32).to_le_bytes());
            d.extend(b"\x03a\0");
        }
        d.extend([5, 0, 0, 0, 0]);
        d.extend(std::iter::repeat_n(0u8, depth + 1));
        let n = d.len() as i32;
        d[..4].copy_from_slice(&n.to_le_bytes());
        let e = decode(&d).unwrap_err();
        assert!(e.contains("nesting deeper"), "{e}");
    }
}
