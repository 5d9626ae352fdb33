//! Turning dumped metadata into commands a target server accepts: collection
//! options for `create`, index specs for `createIndexes`, and the version checks that
//! refuse what a target cannot know before anything is written.

use bson::{Bson, Document, doc};

use crate::catalog::{Namespace, NsKind};

/// Collection options `create` must not be given (server-internal or obsolete).
const DROPPED_OPTIONS: [&str; 3] = ["recordIdsReplicated", "flags", "autoIndexId"];

/// Index options that are obsolete and refused or meaningless on current servers.
const DROPPED_INDEX_OPTIONS: [&str; 4] = ["ns", "v", "dropDups", "safe"];

/// Normalised time-series options: `granularity` implies the bucket span, and a
/// server refuses `bucketMaxSpanSeconds` next to it, so the derived span is dropped.
pub fn normalize_timeseries(ts: &Document) -> Document {
    let mut out = ts.clone();
    if out.contains_key("granularity") {
        out.remove("bucketMaxSpanSeconds");
        out.remove("bucketRoundingSeconds");
    }
    out
}

/// The `create` command for `name` (the target collection) from a dumped namespace.
/// `with_options` false creates a plain collection (`--no-options`).
pub fn create_command(name: &str, ns: &Namespace, with_options: bool) -> Document {
    let mut cmd = doc! {"create": name};
    match ns.kind {
        NsKind::View => {
            for k in ["viewOn", "pipeline", "collation"] {
                if let Some(v) = ns.options.get(k) {
                    cmd.insert(k, v.clone());
                }
            }
        }
        NsKind::Timeseries => {
            for (k, v) in &ns.options {
                match k.as_str() {
                    "timeseries" => {
                        if let Bson::Document(ts) = v {
                            cmd.insert(k, normalize_timeseries(ts));
                        }
                    }
                    k if DROPPED_OPTIONS.contains(&k) => {}
                    _ => {
                        cmd.insert(k, v.clone());
                    }
                }
            }
        }
        NsKind::Collection | NsKind::Oplog => {
            if with_options {
                for (k, v) in &ns.options {
                    if !DROPPED_OPTIONS.contains(&k.as_str()) {
                        cmd.insert(k, v.clone());
                    }
                }
            }
            let clustered = ns.options.contains_key("clusteredIndex");
            if with_options
                && !clustered
                && let Some(id) = ns
                    .indexes
                    .iter()
                    .find(|i| i.get_str("name").ok() == Some("_id_"))
            {
                cmd.insert("idIndex", normalize_index(id));
            }
        }
    }
    cmd
}

/// An index spec as `createIndexes` should receive it: obsolete fields removed,
/// legacy key values (`"1"`, `true`, `1.0`) made numeric.
pub fn normalize_index(spec: &Document) -> Document {
    let mut out = Document::new();
    for (k, v) in spec {
        if DROPPED_INDEX_OPTIONS.contains(&k.as_str()) {
            continue;
        }
        if k == "key"
            && let Bson::Document(key) = v
        {
            let mut nk = Document::new();
            for (f, d) in key {
                nk.insert(f, normalize_direction(d));
            }
            out.insert(k, nk);
            continue;
        }
        out.insert(k, v.clone());
    }
    out
}

/// An index key value as a current server accepts it. Values it accepts keep their
/// type (`1.0` stays a double, as mongorestore restores it); what it refuses is
/// converted as mongorestore's `--convertLegacyIndexes` does: a zero, an empty string
/// and any value that is neither a number nor a string become `1`, and a number in a
/// string (`"1"`, `"-1"`) becomes that direction.
fn normalize_direction(v: &Bson) -> Bson {
    match v {
        Bson::String(s) => match s.parse::<f64>() {
            Ok(n) if n < 0.0 => Bson::Int32(-1),
            Ok(_) => Bson::Int32(1),
            Err(_) if s.is_empty() => Bson::Int32(1),
            Err(_) => v.clone(),
        },
        Bson::Double(d) if d.abs() < 1e-9 => Bson::Int32(if *d < 0.0 { -1 } else { 1 }),
        Bson::Int32(0) | Bson::Int64(0) => Bson::Int32(1),
        Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) => v.clone(),
        Bson::Decimal128(d) if d.to_string().parse::<f64>().is_ok_and(|x| x == 0.0) => {
            Bson::Int32(1)
        }
        Bson::Decimal128(_) => v.clone(),
        _ => Bson::Int32(1),
    }
}

/// What [`normalize_index`] changes in an index's key and options, for the restore's
/// report (`shop.orders: index "a_1": key {"a": ""} converted to {"a": 1}`); the
/// index version `v` is left out, as the target always chooses it.
pub fn index_conversions(ns_name: &str, spec: &Document) -> Vec<String> {
    let mut out = Vec::new();
    let name = spec.get_str("name").unwrap_or("?");
    let norm = normalize_index(spec);
    if let (Ok(a), Ok(b)) = (spec.get_document("key"), norm.get_document("key"))
        && a != b
    {
        out.push(format!(
            "{ns_name}: index {name:?}: legacy key {} converted to {}",
            Bson::Document(a.clone()).into_relaxed_extjson(),
            Bson::Document(b.clone()).into_relaxed_extjson()
        ));
    }
    let dropped: Vec<&str> = spec
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "v" && *k != "ns" && DROPPED_INDEX_OPTIONS.contains(k))
        .collect();
    if !dropped.is_empty() {
        out.push(format!(
            "{ns_name}: index {name:?}: obsolete option(s) {} dropped",
            dropped.join(", ")
        ));
    }
    out
}

/// How index specs are adjusted beyond [`normalize_index`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexSpecOptions {
    /// Keep the dumped index version `v` (mongorestore `--keepIndexVersion`); by default
    /// the target chooses.
    pub keep_version: bool,
    /// Build hashed indexes on dotted fields as ascending indexes (mongorestore
    /// `--fixDottedHashIndex`).
    pub fix_dotted_hashed: bool,
}

/// [`normalize_index`], then `opts` applied.
pub fn adjust_index(spec: &Document, opts: IndexSpecOptions) -> Document {
    let mut out = normalize_index(spec);
    if opts.fix_dotted_hashed
        && let Ok(key) = out.get_document_mut("key")
    {
        for (field, dir) in key.iter_mut() {
            if field.contains('.') && dir.as_str() == Some("hashed") {
                *dir = Bson::Int32(1);
            }
        }
    }
    if opts.keep_version
        && let Some(v) = spec.get("v")
    {
        let mut with_v = doc! {"v": v.clone()};
        with_v.extend(out);
        out = with_v;
    }
    out
}

/// The secondary indexes to build (everything but the `_id` index, which `create`
/// makes, and the clustered index).
pub fn secondary_indexes(ns: &Namespace) -> Vec<Document> {
    secondary_indexes_with(ns, IndexSpecOptions::default())
}

/// [`secondary_indexes`], adjusted by `opts`. An index whose key is the same as an
/// earlier one's once legacy values are converted is left out (see
/// [`duplicate_indexes`]), as mongorestore's `--convertLegacyIndexes` leaves it out.
pub fn secondary_indexes_with(ns: &Namespace, opts: IndexSpecOptions) -> Vec<Document> {
    let dups: Vec<String> = duplicates(ns).into_iter().map(|(d, _)| d).collect();
    ns.indexes
        .iter()
        .filter(|i| {
            i.get_str("name").ok() != Some("_id_") && !i.get_bool("clustered").unwrap_or(false)
        })
        .filter(|i| {
            !dups
                .iter()
                .any(|d| i.get_str("name").ok() == Some(d.as_str()))
        })
        .map(|i| adjust_index(i, opts))
        .collect()
}

/// Whether two index keys are the same: the same fields in the same order, numbers
/// equal by value (`1` and `1.0`), other values equal.
fn same_key(a: &Document, b: &Document) -> bool {
    let num = |v: &Bson| match v {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    };
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (num(va), num(vb)) {
                    (Some(x), Some(y)) => x == y,
                    _ => va == vb,
                }
        })
}

/// `(index, earlier index)` name pairs: indexes whose key, once legacy values are
/// converted, is the key of an earlier index, where conversion made them the same (one
/// of the two had a legacy value). Two indexes the server would refuse as one.
fn duplicates(ns: &Namespace) -> Vec<(String, String)> {
    let mut kept: Vec<(String, Document, bool)> = Vec::new();
    let mut out = Vec::new();
    for ix in &ns.indexes {
        let (Ok(name), Ok(key)) = (ix.get_str("name"), ix.get_document("key")) else {
            continue;
        };
        let norm = normalize_index(ix);
        let Ok(nkey) = norm.get_document("key") else {
            continue;
        };
        let converted = nkey != key;
        match kept
            .iter()
            .find(|(_, k, c)| (*c || converted) && same_key(k, nkey))
        {
            Some((earlier, _, _)) => out.push((name.to_string(), earlier.clone())),
            None => kept.push((name.to_string(), nkey.clone(), converted)),
        }
    }
    out
}

/// What [`secondary_indexes_with`] leaves out of `ns` (named `ns_name`) as duplicates
/// once converted, for the restore's report.
pub fn duplicate_indexes(ns_name: &str, ns: &Namespace) -> Vec<String> {
    duplicates(ns)
        .into_iter()
        .map(|(d, earlier)| {
            format!(
                "{ns_name}: index {d:?} skipped: once legacy key values are converted its key is that of index {earlier:?}"
            )
        })
        .collect()
}

/// Collection options with the server version that introduced them.
const OPTION_SINCE: [(&str, (u32, u32)); 5] = [
    ("timeseries", (5, 0)),
    ("clusteredIndex", (5, 3)),
    ("changeStreamPreAndPostImages", (6, 0)),
    ("expireAfterSeconds", (5, 0)),
    ("encryptedFields", (7, 0)),
];

/// Index types with the versions that support them: `(type, since, removed in)`.
/// `(type, introduced in, removed in)`.
type IndexTypeSupport = (&'static str, (u32, u32), Option<(u32, u32)>);

const INDEX_TYPES: [IndexTypeSupport; 6] = [
    ("2d", (0, 0), None),
    ("2dsphere", (2, 4), None),
    ("text", (2, 4), None),
    ("hashed", (2, 4), None),
    ("geoHaystack", (0, 0), Some((4, 9))),
    ("columnstore", (6, 3), Some((7, 0))),
];

/// Checks that a target of version `target` can hold `ns`: every collection option
/// and index type must exist there. Returns one message per problem, naming the option.
pub fn check_compat(ns: &Namespace, target_name: &str, target: (u32, u32)) -> Vec<String> {
    let mut out = Vec::new();
    if target == (0, 0) {
        return out;
    }
    for (opt, since) in OPTION_SINCE {
        if ns.options.contains_key(opt) && target < since {
            out.push(format!(
                "{target_name}: collection option `{opt}` needs server {}.{} or newer; the target is {}.{}",
                since.0, since.1, target.0, target.1
            ));
        }
    }
    for ix in &ns.indexes {
        let name = ix.get_str("name").unwrap_or("?");
        if let Ok(key) = ix.get_document("key") {
            for (_, v) in key {
                if let Bson::String(t) = &normalize_direction(v) {
                    if t.parse::<f64>().is_ok() {
                        continue;
                    }
                    match INDEX_TYPES.iter().find(|(n, _, _)| n == t) {
                        Some((_, since, removed)) => {
                            if target < *since || removed.is_some_and(|r| target >= r) {
                                out.push(format!(
                                    "{target_name}: index {name:?} is of type `{t}`, which server {}.{} does not support",
                                    target.0, target.1
                                ));
                            }
                        }
                        None if t.starts_with('$') => {}
                        None => out.push(format!(
                            "{target_name}: index {name:?} has unknown type `{t}`"
                        )),
                    }
                }
            }
            if key.keys().any(|k| k.contains("$**")) && target < (4, 2) {
                out.push(format!(
                    "{target_name}: wildcard index {name:?} needs server 4.2 or newer"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeseries_keeps_granularity_drops_span() {
        let ts = doc! {"timeField": "t", "metaField": "m", "granularity": "seconds", "bucketMaxSpanSeconds": 3600};
        assert_eq!(
            normalize_timeseries(&ts),
            doc! {"timeField": "t", "metaField": "m", "granularity": "seconds"}
        );
        let custom =
            doc! {"timeField": "t", "bucketMaxSpanSeconds": 100, "bucketRoundingSeconds": 100};
        assert_eq!(normalize_timeseries(&custom), custom);
    }

    #[test]
    fn create_commands() {
        let mut c = Namespace::collection("d", "c");
        c.options = doc! {"capped": true, "size": 4096, "autoIndexId": true};
        c.indexes = vec![doc! {"v": 2, "key": {"_id": 1}, "name": "_id_", "ns": "d.c"}];
        assert_eq!(
            create_command("x", &c, true),
            doc! {"create": "x", "capped": true, "size": 4096, "idIndex": {"key": {"_id": 1}, "name": "_id_"}}
        );
        assert_eq!(create_command("x", &c, false), doc! {"create": "x"});
        let mut v = Namespace::collection("d", "v");
        v.kind = NsKind::View;
        v.options = doc! {"viewOn": "c", "pipeline": []};
        assert_eq!(
            create_command("v2", &v, true),
            doc! {"create": "v2", "viewOn": "c", "pipeline": []}
        );
        let mut cl = Namespace::collection("d", "cl");
        cl.options = doc! {"clusteredIndex": {"key": {"_id": 1}, "unique": true}};
        cl.indexes = vec![doc! {"v": 2, "key": {"_id": 1}, "name": "_id_", "clustered": true}];
        assert!(!create_command("cl", &cl, true).contains_key("idIndex"));
        assert!(secondary_indexes(&cl).is_empty());
    }

    #[test]
    fn index_version_and_dotted_hashed() {
        let spec = doc! {"v": 1, "key": {"a.b": "hashed", "c": 1}, "name": "h"};
        assert_eq!(
            adjust_index(&spec, IndexSpecOptions::default()),
            doc! {"key": {"a.b": "hashed", "c": 1}, "name": "h"}
        );
        assert_eq!(
            adjust_index(
                &spec,
                IndexSpecOptions {
                    keep_version: true,
                    fix_dotted_hashed: true
                }
            ),
            doc! {"v": 1, "key": {"a.b": 1, "c": 1}, "name": "h"}
        );
        let flat = doc! {"key": {"a": "hashed"}, "name": "a_hashed"};
        let fixed = adjust_index(
            &flat,
            IndexSpecOptions {
                fix_dotted_hashed: true,
                ..IndexSpecOptions::default()
            },
        );
        assert_eq!(fixed, flat, "only dotted fields change");
    }

    #[test]
    fn legacy_index_specs() {
        let spec = doc! {"v": 1, "key": {"a": "1", "b": -1.0, "c": true, "g": "2dsphere"}, "name": "x", "ns": "d.c", "unique": true};
        assert_eq!(
            normalize_index(&spec),
            doc! {"key": {"a": 1, "b": -1.0, "c": 1, "g": "2dsphere"}, "name": "x", "unique": true}
        );
        // What a target accepts keeps its type; zeros and empty strings become 1.
        let spec = doc! {"key": {"f": 1.0, "g": -1i64, "h": 0, "i": "", "j": 0.0}, "name": "y", "dropDups": true};
        assert_eq!(
            normalize_index(&spec),
            doc! {"key": {"f": 1.0, "g": -1i64, "h": 1, "i": 1, "j": 1}, "name": "y"}
        );
        let notes = index_conversions("d.c", &spec);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains(r#"{"f":1.0,"g":-1,"h":0,"i":"","j":0.0}"#),
            "{notes:?}"
        );
        assert!(notes[1].contains("dropDups"), "{notes:?}");
        assert!(
            index_conversions("d.c", &doc! {"v": 2, "key": {"a": 1.0}, "name": "a"}).is_empty()
        );
        // A legacy empty-string key is not an unknown index type.
        let mut n = Namespace::collection("d", "c");
        n.indexes = vec![doc! {"key": {"a": 1, "b": ""}, "name": "a_1_b_"}];
        assert!(check_compat(&n, "d.c", (8, 0)).is_empty());
    }

    /// mongo-tools' `duplicate_index_key` fixture: `""`, `1.0` and `1` are one key once
    /// converted; the first is kept. Same keys that no conversion made the same (an
    /// index per collation, say) are all kept.
    #[test]
    fn duplicates_once_converted_are_left_out() {
        let mut n = Namespace::collection("d", "c");
        n.indexes = vec![
            doc! {"v": 1, "key": {"_id": 1}, "name": "_id_"},
            doc! {"v": 1, "key": {"foo": ""}, "name": "foo_"},
            doc! {"v": 1, "key": {"foo": 1.0}, "name": "foo_1.0"},
            doc! {"v": 1, "key": {"foo": 1}, "name": "foo_1"},
            doc! {"v": 1, "key": {"foo": 2}, "name": "foo_2"},
            doc! {"v": 2, "key": {"bar": 1}, "name": "bar_en", "collation": {"locale": "en"}},
            doc! {"v": 2, "key": {"bar": 1}, "name": "bar_fr", "collation": {"locale": "fr"}},
        ];
        let names: Vec<String> = secondary_indexes(&n)
            .iter()
            .map(|i| i.get_str("name").unwrap().to_string())
            .collect();
        assert_eq!(names, ["foo_", "foo_2", "bar_en", "bar_fr"]);
        let notes = duplicate_indexes("d.c", &n);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains(r#"index "foo_1.0" skipped"#) && notes[0].contains(r#"index "foo_""#),
            "{notes:?}"
        );
        assert!(same_key(
            &doc! {"a": 1, "b": -1i64},
            &doc! {"a": 1.0, "b": -1}
        ));
        assert!(!same_key(&doc! {"a": 1, "b": 1}, &doc! {"b": 1, "a": 1}));
        assert!(!same_key(&doc! {"a": "hashed"}, &doc! {"a": 1}));
    }

    #[test]
    fn compatibility() {
        let mut n = Namespace::collection("d", "c");
        n.options = doc! {"clusteredIndex": {"key": {"_id": 1}, "unique": true}};
        n.indexes = vec![doc! {"key": {"loc": "geoHaystack", "a": 1}, "name": "hay"}];
        let p = check_compat(&n, "d.c", (5, 0));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("clusteredIndex"));
        assert!(p[1].contains("geoHaystack"));
        assert!(
            check_compat(&n, "d.c", (4, 4))
                .iter()
                .any(|m| m.contains("clusteredIndex"))
        );
        let mut ok = Namespace::collection("d", "c");
        ok.indexes = vec![
            doc! {"key": {"t": "text"}, "name": "t"},
            doc! {"key": {"$**": 1}, "name": "w"},
        ];
        assert!(check_compat(&ok, "d.c", (8, 2)).is_empty());
    }
}
