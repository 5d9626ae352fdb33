//! `<collection>.metadata.json`: a collection's options, indexes, UUID and type.
//!
//! mongodump writes one line of canonical Extended JSON v2, compact, with its keys in
//! the order of its Go struct: `options` (omitted when empty), `indexes` (always, `[]`
//! when there are none), `uuid` (32 lowercase hex digits, omitted when unknown),
//! `collectionName` (always) and `type` (omitted when empty). The same text is the
//! `metadata` string of an archive's prelude. [`Metadata::to_json`] reproduces it byte
//! for byte; [`parse_metadata`] reads it back, along with relaxed and legacy forms
//! (bare numbers, `"options":{}`, `ns` inside index specifications, which is kept as
//! read), ignoring unknown keys.

use bson::{Bson, Document};
use serde_json::Value;

use crate::catalog::{Namespace, NsKind, OPLOG_COLLECTION, OPLOG_DB};
use crate::mongodump::extjson;

/// Prefix of the per-database users/roles/version collections mongodump writes with
/// `--dumpDbUsersAndRoles` (`$admin.system.users`, …). They never have metadata.
pub const ADMIN_PREFIX: &str = "$admin.";

/// The content of a `.metadata.json` file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// `listCollections` options, verbatim and in order (empty when absent).
    pub options: Document,
    /// `listIndexes` documents, verbatim and in order.
    pub indexes: Vec<Document>,
    /// The collection UUID.
    pub uuid: Option<[u8; 16]>,
    /// `collectionName`: the real, unescaped collection name.
    pub collection_name: Option<String>,
    /// `type`: `collection`, `view`, `timeseries` (absent in old dumps).
    pub kind: Option<String>,
}

/// A metadata file that cannot be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MetadataError {
    /// What is wrong (with the JSON path of the offending element).
    pub message: String,
}

impl MetadataError {
    fn new(message: impl Into<String>) -> MetadataError {
        MetadataError {
            message: message.into(),
        }
    }
}

/// Parses the text of a `.metadata.json` file (or of an archive prelude's `metadata`).
///
/// Never panics, whatever the input.
pub fn parse_metadata(bytes: &[u8]) -> Result<Metadata, MetadataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| MetadataError::new(format!("not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(MetadataError::new(
            "the top level is not a JSON object".to_string(),
        ));
    };
    let mut md = Metadata::default();
    for (key, v) in &map {
        match key.as_str() {
            "options" => match v {
                Value::Null => {}
                Value::Object(m) => {
                    md.options = extjson::parse_document(m, "options")
                        .map_err(|e| MetadataError::new(e.to_string()))?
                }
                other => {
                    return Err(MetadataError::new(format!(
                        "\"options\" must be an object, found {}",
                        json_kind(other)
                    )));
                }
            },
            "indexes" => match v {
                Value::Null => {}
                Value::Array(a) => {
                    for (i, ix) in a.iter().enumerate() {
                        let path = format!("indexes.{i}");
                        let Value::Object(m) = ix else {
                            return Err(MetadataError::new(format!(
                                "{path} must be an object, found {}",
                                json_kind(ix)
                            )));
                        };
                        md.indexes.push(
                            extjson::parse_document(m, &path)
                                .map_err(|e| MetadataError::new(e.to_string()))?,
                        );
                    }
                }
                other => {
                    return Err(MetadataError::new(format!(
                        "\"indexes\" must be an array, found {}",
                        json_kind(other)
                    )));
                }
            },
            "uuid" => match v {
                Value::Null => {}
                Value::String(s) if s.is_empty() => {}
                Value::String(s) => {
                    md.uuid = Some(
                        extjson::parse_hex16(s)
                            .or_else(|| extjson::parse_uuid_dashed(s))
                            .ok_or_else(|| {
                                MetadataError::new(format!(
                                    "\"uuid\" {s:?} is not 32 hexadecimal digits"
                                ))
                            })?,
                    )
                }
                other => {
                    return Err(MetadataError::new(format!(
                        "\"uuid\" must be a string, found {}",
                        json_kind(other)
                    )));
                }
            },
            "collectionName" => match v {
                Value::Null => {}
                Value::String(s) => md.collection_name = Some(s.clone()),
                other => {
                    return Err(MetadataError::new(format!(
                        "\"collectionName\" must be a string, found {}",
                        json_kind(other)
                    )));
                }
            },
            "type" => match v {
                Value::Null => {}
                Value::String(s) if s.is_empty() => {}
                Value::String(s) => md.kind = Some(s.clone()),
                other => {
                    return Err(MetadataError::new(format!(
                        "\"type\" must be a string, found {}",
                        json_kind(other)
                    )));
                }
            },
            _ => {}
        }
    }
    Ok(md)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xF) as usize] as char);
    }
    s
}

impl Metadata {
    /// The metadata mongodump writes for a catalog namespace.
    pub fn for_namespace(ns: &Namespace) -> Metadata {
        Metadata {
            options: ns.options.clone(),
            indexes: ns.indexes.clone(),
            uuid: ns.uuid,
            collection_name: Some(ns.collection.clone()),
            kind: match ns.kind {
                NsKind::Oplog => None,
                k => Some(k.as_str().to_string()),
            },
        }
    }

    /// The namespace kind these metadata describe: a view when `type` says so or the
    /// options have `viewOn`; time-series when `type` says so or the options have
    /// `timeseries` (what mongorestore looks at); a collection otherwise.
    pub fn ns_kind(&self) -> NsKind {
        match self.kind.as_deref() {
            Some("view") => NsKind::View,
            Some("timeseries") => NsKind::Timeseries,
            _ if self.options.contains_key("viewOn") => NsKind::View,
            _ if self.options.contains_key("timeseries") => NsKind::Timeseries,
            _ => NsKind::Collection,
        }
    }

    /// The catalog namespace `db.collection` these metadata describe.
    pub fn to_namespace(&self, db: &str, collection: &str) -> Namespace {
        Namespace {
            db: db.to_string(),
            collection: collection.to_string(),
            kind: self.ns_kind(),
            options: self.options.clone(),
            indexes: self.indexes.clone(),
            uuid: self.uuid,
        }
    }

    /// The `.metadata.json` text, exactly as mongodump writes it (no trailing newline).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        if !self.options.is_empty() {
            out.push_str("\"options\":");
            extjson::write_document(&mut out, &self.options);
            out.push(',');
        }
        out.push_str("\"indexes\":[");
        for (i, ix) in self.indexes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            extjson::write_document(&mut out, ix);
        }
        out.push(']');
        if let Some(uuid) = &self.uuid {
            out.push_str(",\"uuid\":\"");
            out.push_str(&hex_lower(uuid));
            out.push('"');
        }
        out.push_str(",\"collectionName\":");
        extjson::write_string(
            &mut out,
            self.collection_name.as_deref().unwrap_or_default(),
            false,
        );
        if let Some(kind) = self.kind.as_deref().filter(|k| !k.is_empty()) {
            out.push_str(",\"type\":");
            extjson::write_string(&mut out, kind, false);
        }
        out.push('}');
        out
    }
}

/// Whether mongodump writes metadata for this namespace: not for the oplog, nor for the
/// per-database `$admin.system.*` collections.
pub fn has_metadata(ns: &Namespace) -> bool {
    ns.kind != NsKind::Oplog && !ns.collection.starts_with(ADMIN_PREFIX)
}

/// The `.metadata.json` text mongodump writes for `ns`.
pub fn metadata_json(ns: &Namespace) -> String {
    Metadata::for_namespace(ns).to_json()
}

/// The catalog namespace of the oplog captured by `--oplog`.
pub fn oplog_namespace() -> Namespace {
    Namespace {
        kind: NsKind::Oplog,
        ..Namespace::collection(OPLOG_DB, OPLOG_COLLECTION)
    }
}

/// Reads an integer field that Go may have written as int32, int64 or an integral double.
pub(crate) fn bson_int(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    use std::path::Path;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mongodump-100.18/dir/edge"
    );

    fn fixture_metadata_files() -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(DIR)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".metadata.json"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_fixture_file_round_trips_byte_for_byte() {
        let files = fixture_metadata_files();
        assert_eq!(files.len(), 15);
        for f in files {
            let text = std::fs::read(&f).unwrap();
            let md = parse_metadata(&text).unwrap();
            assert_eq!(
                md.to_json().as_bytes(),
                &text[..],
                "{}",
                f.file_name().unwrap().to_string_lossy()
            );
            // Through the catalog model as well.
            let name = md.collection_name.clone().unwrap();
            let ns = md.to_namespace("edge", &name);
            assert_eq!(metadata_json(&ns).as_bytes(), &text[..]);
        }
    }

    #[test]
    fn fixture_kinds_and_uuids() {
        let read = |name: &str| {
            parse_metadata(&std::fs::read(Path::new(DIR).join(name)).unwrap()).unwrap()
        };
        let series = read("series.metadata.json");
        assert_eq!(series.ns_kind(), NsKind::Timeseries);
        let view = read("v_types.metadata.json");
        assert_eq!(view.ns_kind(), NsKind::View);
        assert_eq!(view.uuid, None);
        assert!(view.indexes.is_empty());
        let capped = read("capped.metadata.json");
        assert_eq!(capped.ns_kind(), NsKind::Collection);
        assert_eq!(
            capped.uuid,
            Some([
                0x6b, 0x07, 0xef, 0x37, 0x7c, 0xbc, 0x4a, 0xd6, 0x84, 0x97, 0x88, 0x57, 0x6b, 0x07,
                0xef, 0x37
            ])
        );
        assert_eq!(capped.options.get("size"), Some(&Bson::Int32(1_048_576)));
        let indexed = read("indexed.metadata.json");
        let compound = indexed.indexes[1].get_document("key").unwrap();
        let keys: Vec<&str> = compound.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b.c"]);
    }

    #[test]
    fn key_order_is_kept() {
        // Needs serde_json's preserve_order: a sorted map would put "a" first.
        let text = br#"{"indexes":[{"v":{"$numberInt":"2"},"key":{"b":{"$numberInt":"1"},"a":{"$numberInt":"1"}},"name":"b_1_a_1"}],"collectionName":"c","type":"collection"}"#;
        let md = parse_metadata(text).unwrap();
        let key = md.indexes[0].get_document("key").unwrap();
        assert_eq!(key.keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(md.to_json().as_bytes(), &text[..]);
        // And from a document built in code.
        let ns = Namespace {
            indexes: vec![doc! {"v": 2, "key": {"z": 1, "y": -1}, "name": "zy"}],
            options: doc! {"validationLevel": "strict", "capped": false},
            ..Namespace::collection("d", "c")
        };
        assert_eq!(
            metadata_json(&ns),
            r#"{"options":{"validationLevel":"strict","capped":false},"indexes":[{"v":{"$numberInt":"2"},"key":{"z":{"$numberInt":"1"},"y":{"$numberInt":"-1"}},"name":"zy"}],"collectionName":"c","type":"collection"}"#
        );
    }

    #[test]
    fn legacy_and_relaxed_forms() {
        let text = br#"{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_","ns":"db1.c1"},{"v":1,"key":{"x":-1.5,"big":4294967296},"name":"x"}],"uuid":"0679DB72-0000-4000-8000-00000000094A","extra":[1,2]}"#;
        let md = parse_metadata(text).unwrap();
        assert!(md.options.is_empty());
        assert_eq!(md.indexes[0].get("v"), Some(&Bson::Int32(2)));
        assert_eq!(md.indexes[0].get_str("ns").unwrap(), "db1.c1");
        let key = md.indexes[1].get_document("key").unwrap();
        assert_eq!(key.get("x"), Some(&Bson::Double(-1.5)));
        assert_eq!(key.get("big"), Some(&Bson::Int64(4_294_967_296)));
        assert_eq!(md.uuid.unwrap()[0], 0x06);
        assert_eq!(md.collection_name, None);
        assert_eq!(md.ns_kind(), NsKind::Collection);
        // Canonical output of a legacy file: no options, canonical numbers.
        assert!(
            md.to_json()
                .starts_with(r#"{"indexes":[{"v":{"$numberInt":"2"}"#)
        );
        // The kind follows the options when `type` is absent.
        let v =
            parse_metadata(br#"{"options":{"viewOn":"a","pipeline":[]},"indexes":[]}"#).unwrap();
        assert_eq!(v.ns_kind(), NsKind::View);
        let t = parse_metadata(br#"{"options":{"timeseries":{"timeField":"t"}}}"#).unwrap();
        assert_eq!(t.ns_kind(), NsKind::Timeseries);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases: [(&[u8], &str); 8] = [
            (b"", "not valid JSON"),
            (b"[]", "top level"),
            (br#"{"options":[]}"#, "\"options\" must be an object"),
            (br#"{"indexes":{}}"#, "\"indexes\" must be an array"),
            (br#"{"indexes":[1]}"#, "indexes.0 must be an object"),
            (br#"{"uuid":"xyz"}"#, "\"uuid\""),
            (
                br#"{"indexes":[{"key":{"a":{"$numberInt":"1.5"}}}]}"#,
                "at indexes.0.key.a",
            ),
            (br#"{"collectionName":3}"#, "collectionName"),
        ];
        for (text, want) in cases {
            let e = parse_metadata(text).unwrap_err();
            assert!(e.message.contains(want), "{e} does not contain {want}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let seeds: [&[u8]; 6] = [
            br#"{"options":{"a":{"$binary":{"base64":"AA==","subType":"zz"}}}}"#,
            br#"{"indexes":[{"a":{"$timestamp":{"t":-1,"i":2}}}]}"#,
            &[0xff, 0xfe, 0x00],
            b"{\"options\":{\"x\":{\"$date\":{\"$numberLong\":\"99999999999999999999\"}}}}",
            br#"{"options":{"x":{"$numberDecimal":"1e99999"}}}"#,
            &[b'['; 10_000],
        ];
        for s in seeds {
            let _ = parse_metadata(s);
        }
        // Random structures made of Extended JSON keys and odd values.
        let keys = [
            "$numberInt",
            "$numberLong",
            "$numberDouble",
            "$numberDecimal",
            "$oid",
            "$symbol",
            "$minKey",
            "$maxKey",
            "$undefined",
            "$uuid",
            "$binary",
            "$type",
            "$code",
            "$scope",
            "$timestamp",
            "$regularExpression",
            "$dbPointer",
            "$ref",
            "$id",
            "$date",
            "t",
            "i",
            "pattern",
            "options",
            "base64",
            "subType",
            "indexes",
            "uuid",
            "type",
            "collectionName",
        ];
        let values = [
            "1",
            "-1",
            "1.5",
            "1e400",
            "99999999999999999999",
            "\"x\"",
            "\"1\"",
            "\"AA==\"",
            "\"Infinity\"",
            "true",
            "null",
            "[]",
            "{}",
            "\"2000-01-01T00:00:00Z\"",
            "\"00112233-4455-6677-8899-aabbccddeeff\"",
            "\"0102030405060708090a0b0c\"",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        fn random_json(
            next: &mut dyn FnMut(usize) -> usize,
            keys: &[&str],
            values: &[&str],
            depth: usize,
        ) -> String {
            if depth > 4 || next(3) == 0 {
                return values[next(values.len())].to_string();
            }
            if next(4) == 0 {
                let n = next(3);
                let items: Vec<String> = (0..n)
                    .map(|_| random_json(next, keys, values, depth + 1))
                    .collect();
                return format!("[{}]", items.join(","));
            }
            let n = 1 + next(3);
            let items: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "\"{}\":{}",
                        keys[next(keys.len())],
                        random_json(next, keys, values, depth + 1)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        let mut parsed = 0;
        for _ in 0..20_000 {
            let body = random_json(&mut next, &keys, &values, 0);
            let text = format!(r#"{{"options":{body},"indexes":[{body}]}}"#);
            if let Ok(md) = parse_metadata(text.as_bytes()) {
                // Whatever parses writes back to something that parses to the same.
                let again = parse_metadata(md.to_json().as_bytes()).unwrap();
                assert_eq!(again.options, md.options, "{text}");
                assert_eq!(again.indexes, md.indexes, "{text}");
                assert_eq!(again.to_json(), md.to_json(), "{text}");
                parsed += 1;
            }
        }
        assert!(parsed > 1000, "only {parsed} random documents parsed");
        // Every prefix of a real file.
        let text = std::fs::read(Path::new(DIR).join("collated.metadata.json")).unwrap();
        for i in 0..text.len() {
            let _ = parse_metadata(&text[..i]);
        }
    }

    #[test]
    fn admin_collections_and_oplog_have_no_metadata() {
        assert!(!has_metadata(&Namespace::collection(
            "db",
            "$admin.system.users"
        )));
        assert!(!has_metadata(&oplog_namespace()));
        assert!(has_metadata(&Namespace::collection("db", "c")));
    }
}
