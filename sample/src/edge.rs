//! A corpus of BSON edge cases and collection shapes, loaded into one database.
//!
//! What it holds: every BSON type, the deprecated undefined, DBPointer and symbol
//! included, and a document with a duplicated key; NaN, -0.0 and infinities; Decimal128
//! extremes; dates before 1970 and in year 9999; a 90-level nested document; a 1 MiB
//! binary; `_id`s of 14 BSON types in one collection; field names with dots, `$` and the
//! empty string; a capped collection, a validator, a default collation, a clustered
//! collection, a time-series collection, an empty collection, a view; collection names
//! with spaces, dots, unicode, `%`, punctuation and 100 characters; an index of every
//! common kind (compound, unique, sparse, TTL, partial, collated, hidden); a user and a
//! role.
//!
//! These are the namespaces of the database the mongodump 100.18 fixtures were made from
//! (`tests/fixtures/mongodump-100.18/`); random parts (ObjectIds, binaries) differ.

use bson::oid::ObjectId;
use bson::raw::CString;
use bson::spec::BinarySubtype;
use bson::{
    Binary, Bson, DateTime, Decimal128, Document, JavaScriptCodeWithScope, RawDocumentBuf, Regex,
    Timestamp, doc,
};
use mongodb::{Client, Database, IndexModel, options::IndexOptions};
use serde_json::Value;

use crate::rng::Rng;
use crate::{Result, SampleError, digest};

/// The default seed.
pub const SEED: u64 = 11;

/// The collections with odd names, five documents each.
pub const ODD_NAMES: [&str; 6] = [
    "with space",
    "dots.in.name",
    "ünïcödé",
    "per%cent",
    "odd-chars_~!@#",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// Drops `db` (with its users and roles), loads the corpus into it and returns its
/// manifest ([`digest::manifest`]): per namespace the document count and sha256, and
/// `{"type": "view"}` for views.
pub async fn load(client: &Client, db: &str, seed: u64) -> Result<Value> {
    let database = client.database(db);
    // Users and roles are not dropped with the database; a server without them is fine.
    let _ = database
        .run_command(doc! { "dropAllUsersFromDatabase": 1 })
        .await;
    let _ = database
        .run_command(doc! { "dropAllRolesFromDatabase": 1 })
        .await;
    database
        .drop()
        .await
        .map_err(SampleError::server(format!("dropping database {db}")))?;
    let mut r = Rng::new(seed, 0);

    let mut types = typed_docs(&mut r);
    types.extend((0..3).map(legacy_doc));
    insert(&database, "types", types).await?;

    create(
        &database,
        doc! { "create": "capped", "capped": true, "size": 1 << 20, "max": 100 },
    )
    .await?;
    insert(
        &database,
        "capped",
        (0..150).map(|i| raw(doc! { "_id": i, "v": i })).collect(),
    )
    .await?;

    create(
        &database,
        doc! {
            "create": "validated",
            "validator": { "$jsonSchema": { "bsonType": "object", "required": ["x"] } },
            "validationLevel": "strict",
            "validationAction": "error",
        },
    )
    .await?;
    insert(
        &database,
        "validated",
        (0..10).map(|i| raw(doc! { "_id": i, "x": i })).collect(),
    )
    .await?;

    create(
        &database,
        doc! { "create": "collated", "collation": { "locale": "fr", "strength": 2 } },
    )
    .await?;
    let names = ["côte", "cote", "Côte", "coté"];
    insert(
        &database,
        "collated",
        names
            .iter()
            .enumerate()
            .map(|(i, n)| raw(doc! { "_id": i as i32, "name": *n }))
            .collect(),
    )
    .await?;
    index(
        &database,
        "collated",
        doc! { "name": 1 },
        IndexOptions::builder().name("by_name".to_string()).build(),
    )
    .await?;

    create(
        &database,
        doc! { "create": "clustered", "clusteredIndex": { "key": { "_id": 1 }, "unique": true } },
    )
    .await?;
    insert(
        &database,
        "clustered",
        (0..20).map(|i| raw(doc! { "_id": i })).collect(),
    )
    .await?;

    create(
        &database,
        doc! { "create": "series", "timeseries": { "timeField": "t", "metaField": "m", "granularity": "seconds" } },
    )
    .await?;
    let jan1 = 1_704_067_200_000i64; // 2024-01-01T00:00:00Z
    insert(
        &database,
        "series",
        (0..100)
            .map(|i| raw(doc! { "t": DateTime::from_millis(jan1 + i64::from(i) * 1000), "m": { "s": i % 3 }, "v": i }))
            .collect(),
    )
    .await?;

    create(&database, doc! { "create": "empty" }).await?;
    create(
        &database,
        doc! { "create": "v_types", "viewOn": "types", "pipeline": [{ "$match": { "k": { "$exists": true } } }] },
    )
    .await?;

    for name in ODD_NAMES {
        insert(
            &database,
            name,
            (0..5)
                .map(|i| raw(doc! { "_id": i, "name": name }))
                .collect(),
        )
        .await?;
    }

    insert(
        &database,
        "indexed",
        (0..300)
            .map(|i: i32| {
                raw(doc! {
                    "_id": i, "a": i % 7, "b": { "c": i }, "tags": [i, i + 1],
                    "d": DateTime::from_millis(jan1), "s": format!("k{i:03}"),
                })
            })
            .collect(),
    )
    .await?;
    let named = |n: &str| IndexOptions::builder().name(n.to_string());
    index(
        &database,
        "indexed",
        doc! { "a": 1, "b.c": -1 },
        named("a_bc").build(),
    )
    .await?;
    index(
        &database,
        "indexed",
        doc! { "s": 1 },
        named("s_unique").unique(true).build(),
    )
    .await?;
    index(
        &database,
        "indexed",
        doc! { "tags": 1 },
        IndexOptions::builder().sparse(true).build(),
    )
    .await?;
    index(
        &database,
        "indexed",
        doc! { "d": 1 },
        IndexOptions::builder()
            .expire_after(std::time::Duration::from_secs(1_000_000_000))
            .build(),
    )
    .await?;
    index(
        &database,
        "indexed",
        doc! { "a": 1 },
        named("a_partial")
            .partial_filter_expression(doc! { "a": { "$gt": 3 } })
            .build(),
    )
    .await?;
    index(
        &database,
        "indexed",
        doc! { "b.c": 1 },
        named("bc_collated")
            .collation(
                mongodb::options::Collation::builder()
                    .locale("en")
                    .strength(mongodb::options::CollationStrength::Primary)
                    .build(),
            )
            .build(),
    )
    .await?;
    index(
        &database,
        "indexed",
        doc! { "s": 1 },
        named("s_hidden").hidden(true).build(),
    )
    .await?;

    command(
        &database,
        doc! { "createUser": "edge_reader", "pwd": "edge-pass", "roles": [{ "role": "read", "db": db }] },
    )
    .await?;
    command(
        &database,
        doc! {
            "createRole": "edge_role",
            "privileges": [{ "resource": { "db": db, "collection": "types" }, "actions": ["find"] }],
            "roles": [],
        },
    )
    .await?;

    digest::manifest(client, db).await
}

fn raw(d: Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(&d).expect("corpus documents always encode")
}

async fn command(db: &Database, cmd: Document) -> Result<()> {
    let what = format!(
        "running {} on {}",
        cmd.keys().next().map_or("", |k| k.as_str()),
        db.name()
    );
    db.run_command(cmd)
        .await
        .map_err(SampleError::server(what))?;
    Ok(())
}

async fn create(db: &Database, cmd: Document) -> Result<()> {
    command(db, cmd).await
}

async fn insert(db: &Database, coll: &str, docs: Vec<RawDocumentBuf>) -> Result<()> {
    db.collection::<RawDocumentBuf>(coll)
        .insert_many(docs)
        .await
        .map_err(SampleError::server(format!(
            "inserting into {}.{coll}",
            db.name()
        )))?;
    Ok(())
}

async fn index(db: &Database, coll: &str, keys: Document, options: IndexOptions) -> Result<()> {
    db.collection::<RawDocumentBuf>(coll)
        .create_index(IndexModel::builder().keys(keys).options(options).build())
        .await
        .map_err(SampleError::server(format!(
            "creating an index on {}.{coll}",
            db.name()
        )))?;
    Ok(())
}

fn bin(subtype: u8, bytes: impl Into<Vec<u8>>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::from(subtype),
        bytes: bytes.into(),
    })
}

fn regex(pattern: &str, options: &str) -> Bson {
    Bson::RegularExpression(Regex {
        pattern: CString::try_from(pattern).expect("no NUL in the pattern"),
        options: CString::try_from(options).expect("no NUL in the options"),
    })
}

/// A Decimal128 from its parts: `(-1)^negative * coefficient * 10^exponent`.
pub fn decimal(negative: bool, coefficient: u128, exponent: i32) -> Decimal128 {
    let biased = (exponent + 6176) as u128;
    let bits = (u128::from(negative) << 127) | (biased << 113) | coefficient;
    Decimal128::from_bytes(bits.to_le_bytes())
}

fn decimal_special(high: u64) -> Decimal128 {
    Decimal128::from_bytes((u128::from(high) << 64).to_le_bytes())
}

/// The documents of `types`: one per BSON type family, then one per `_id` type.
fn typed_docs(r: &mut Rng) -> Vec<RawDocumentBuf> {
    let mut deep = Document::new();
    for _ in 0..90 {
        deep = doc! { "n": deep };
    }
    let ms = |s: i64| DateTime::from_millis(s);
    let mut oid = [0u8; 12];
    oid.copy_from_slice(&r.bytes(12));
    let docs = vec![
        doc! { "_id": 1, "d": 1.5, "nan": f64::NAN, "inf": f64::INFINITY, "ninf": f64::NEG_INFINITY, "negzero": -0.0 },
        doc! { "_id": 2, "s": "", "u": "grüße 你好 🎉", "nul": "a\u{0}b", "long": "x".repeat(100_000) },
        doc! { "_id": 3, "deep": deep },
        doc! { "_id": 4, "arr": [], "nested": [[1, [2, [3, []]]], { "a": [{ "b": [] }] }] },
        doc! { "_id": 5, "bins": [
            bin(0, [0u8, 1]), bin(1, *b"fn"), bin(2, [0u8; 4]), bin(3, r.bytes(16)), bin(4, r.bytes(16)),
            bin(5, r.bytes(16)), bin(6, *b"enc"), bin(7, *b"col"), bin(8, *b"sens"), bin(0x80, *b"user"),
            bin(0, Vec::new()),
        ] },
        doc! { "_id": 6, "oid": ObjectId::from_bytes([0; 12]), "t": true, "f": false },
        doc! {
            "_id": 7,
            "dt": ms(1_709_208_000_123),           // 2024-02-29T12:00:00.123Z
            "old": ms(-62_135_596_800_000),         // 0001-01-01
            "neg": ms(-315_619_200_000),            // 1960-01-01
            "far": ms(253_402_300_799_999),         // 9999-12-31T23:59:59.999Z
        },
        doc! { "_id": 8, "n": Bson::Null, "re": regex("^a.*b$", "imsux"), "re2": regex("", "") },
        doc! {
            "_id": 9,
            "code": Bson::JavaScriptCode("function(){return 1}".into()),
            "cws": Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                code: "function(){return x}".into(),
                scope: doc! { "x": 1 },
            }),
        },
        doc! { "_id": 10, "i32": i32::MAX, "i32n": i32::MIN, "i64": i64::MAX, "i64n": i64::MIN },
        doc! {
            "_id": 11,
            "ts": Timestamp { time: 1_700_000_000, increment: 7 },
            "ts0": Timestamp { time: 0, increment: 0 },
        },
        doc! { "_id": 12, "dec": [
            decimal(false, 1, -1),
            decimal(true, 0, 0),
            decimal_special(0x7C00_0000_0000_0000),
            decimal_special(0x7800_0000_0000_0000),
            decimal(false, 9_999_999_999_999_999_999_999_999_999_999_999, 6111),
            decimal(false, 1, -6176),
        ] },
        doc! { "_id": 13, "min": Bson::MinKey, "max": Bson::MaxKey },
        doc! { "_id": 14, "a.b": 1, "$dollar": 2, "": 3, "x": { "$y": { "z.w": 4 } } },
        doc! { "_id": 15, "big": bin(0, r.bytes(1 << 20)) },
        doc! { "_id": "str-id", "k": 1 },
        doc! { "_id": ObjectId::from_bytes(oid), "k": 2 },
        doc! { "_id": { "a": 1, "b": 2 }, "k": 3 },
        doc! { "_id": 16i64, "k": 4 },
        doc! { "_id": 16.5, "k": 5 },
        doc! { "_id": decimal(false, 17, 0), "k": 6 },
        doc! { "_id": ms(946_684_800_000), "k": 7 }, // 2000-01-01
        doc! { "_id": true, "k": 8 },
        doc! { "_id": Bson::Null, "k": 9 },
        doc! { "_id": bin(0, [1u8, 2]), "k": 10 },
        doc! { "_id": Timestamp { time: 5, increment: 5 }, "k": 11 },
        doc! { "_id": Bson::MinKey, "k": 12 },
        doc! { "_id": Bson::MaxKey, "k": 13 },
    ];
    docs.into_iter().map(raw).collect()
}

/// Raw BSON element and document bytes, for what the `bson` crate will not build:
/// the deprecated DBPointer, and duplicated keys.
struct RawBuilder(Vec<u8>);

impl RawBuilder {
    fn new() -> Self {
        RawBuilder(vec![0; 4])
    }
    fn element(mut self, kind: u8, name: &str, payload: &[u8]) -> Self {
        self.0.push(kind);
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(0);
        self.0.extend_from_slice(payload);
        self
    }
    fn finish(mut self) -> RawDocumentBuf {
        self.0.push(0);
        let len = self.0.len() as i32;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        RawDocumentBuf::from_bytes(self.0).expect("well-framed document")
    }
}

fn bson_string(s: &str) -> Vec<u8> {
    let mut out = ((s.len() + 1) as i32).to_le_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    out
}

/// A document with undefined, DBPointer and symbol values and a duplicated key.
fn legacy_doc(i: i32) -> RawDocumentBuf {
    let mut pointer = bson_string("db.coll");
    pointer.extend_from_slice(&[0x5f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    RawBuilder::new()
        .element(0x10, "_id", &(900_000 + i).to_le_bytes())
        .element(0x06, "undef", &[])
        .element(0x0C, "dbptr", &pointer)
        .element(0x0E, "sym", &bson_string("a symbol"))
        .element(0x02, "dup", &bson_string("first"))
        .element(0x02, "dup", &bson_string("second"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_encode_as_the_spec_says() {
        // 0.1 and 1E-6176 and -0 as the Decimal128 spec's examples give them.
        assert_eq!(decimal(false, 1, -1).bytes(), {
            let mut b = [0u8; 16];
            b[0] = 1;
            b[14] = 0x3E;
            b[15] = 0x30;
            b
        });
        assert_eq!(decimal(false, 1, -6176).bytes()[0], 1);
        assert_eq!(decimal(true, 0, 0).bytes()[15], 0xB0);
        assert_eq!(decimal(true, 0, 0).bytes()[14], 0x40);
    }

    #[test]
    fn the_corpus_is_deterministic_and_complete() {
        let a = typed_docs(&mut Rng::new(SEED, 0));
        let b = typed_docs(&mut Rng::new(SEED, 0));
        assert_eq!(a, b);
        assert_eq!(a.len() + 3, 31);
        let legacy = legacy_doc(0);
        let kinds: Vec<u8> = legacy
            .iter_elements()
            .map(|e| e.unwrap().element_type() as u8)
            .collect();
        assert_eq!(kinds, [0x10, 0x06, 0x0C, 0x0E, 0x02, 0x02]);
    }
}
