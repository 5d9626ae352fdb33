//! The time-series fixtures of `src/tsbucket.rs` (`tests/data/tsbucket/`): for each
//! collection below, a time-series collection is created on a server, its measurements
//! inserted, and two files saved: `<name>.buckets.bson` (the raw bucket documents of
//! `system.buckets.<name>`, by `_id`) and `<name>.measurements.bson` (the raw
//! measurements, in natural order). The tests check that unpacking the buckets gives
//! exactly the measurements the server returned.
//!
//! A field missing from the first measurement of a bucket but present later gets its
//! column after the columns seen before, so unpacking puts it after them (as mongod
//! does), while a server that stores measurements as inserted returns them in inserted
//! field order. The data keeps the first measurement of every bucket complete, so that
//! both orders agree and the bytes compare exactly.

use std::path::Path;

use bson::oid::ObjectId;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Document, RawDocumentBuf, Timestamp, doc};
use futures_util::TryStreamExt as _;
use mongodb::Client;

use crate::edge::decimal;
use crate::rng::Rng;
use crate::{Result, SampleError};

/// The scratch database the fixtures are made in (dropped afterwards).
pub const DB: &str = "tsbucket_gen";
/// 2024-03-01T00:00:00Z.
const T0_MS: i64 = 1_709_251_200_000;
/// The seed of every random choice.
pub const SEED: u64 = 20_240_301;

fn at(i: u64, step_ms: i64) -> DateTime {
    DateTime::from_millis(T0_MS + i as i64 * step_ms)
}

/// One fixture collection: its name, its `timeseries` options, its measurements.
pub struct Fixture {
    /// Collection name.
    pub name: &'static str,
    /// The `timeseries` option document.
    pub options: Document,
    /// Measurements, in insertion order.
    pub docs: Vec<RawDocumentBuf>,
}

fn raw(d: Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(&d).expect("fixture documents always encode")
}

/// 1150 measurements, 1100 under one meta value (a full bucket of 1000), scalar meta,
/// small and large deltas; short field names keep the files small.
fn ints(r: &mut Rng) -> Fixture {
    let mut big: i64 = 1 << 40;
    let steps = [1i64, -1, 1 << 35, -(1 << 33), 12_345_678_901];
    let docs = (0..1150u64)
        .map(|i| {
            let mut d = doc! {
                "t": at(i, 1000), "m": if i < 1100 { 0 } else { 1 }, "s": i as i32, "n": -(i as i32) * 3,
                "b": big, "i": ([i32::MAX, i32::MIN, 0, 1][(i % 4) as usize]),
                "r": r.below(2001) as i32 - 1000, "c": 7,
            };
            big += steps[r.below(steps.len() as u64) as usize];
            if i % 7 == 3 {
                d.remove("r");
            }
            if i % 100 == 50 {
                d.insert("x", i as i64);
            }
            raw(d)
        })
        .collect();
    Fixture {
        name: "ints",
        options: doc! {"timeField": "t", "metaField": "m", "granularity": "seconds"},
        docs,
    }
}

/// No meta; integral, fractional, special and mixed-scale doubles.
fn doubles(r: &mut Rng) -> Fixture {
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        5e-324,
        f64::MAX,
        1e300,
        -1e-300,
    ];
    let docs = (0..200u64)
        .map(|i| {
            let f = i as f64;
            let mut d = doc! {
                "t": at(i, 500), "integral": f * 10.0, "tenths": (f * 0.1 * 10.0).round() / 10.0,
                "cents": ((100.0 + f * 0.01) * 100.0).round() / 100.0, "scale4": f * 0.0001,
                "scale8": f * 1e-8, "noisy": r.unit() * 1000.0,
                "special": specials[(i as usize) % specials.len()],
                "mixed": ([1.5, 2.25, 3.125, 1e-8, 123_456_789.0, f][(i % 6) as usize]),
            };
            if i % 11 == 5 {
                d.remove("noisy");
            }
            raw(d)
        })
        .collect();
    Fixture {
        name: "doubles",
        options: doc! {"timeField": "t"},
        docs,
    }
}

/// Document meta with unsorted keys; short, long, repeating and empty strings.
fn strings() -> Fixture {
    let metas = [
        doc! {"zone": "eu", "host": {"name": "b", "dc": 2}, "arr": [{"k2": 1, "k1": 2}, 3]},
        doc! {"b": 1, "a": {"d": {"z": 1, "y": 2}, "c": Bson::Null}},
        doc! {"only": "x"},
    ];
    let docs = (0..150u64)
        .map(|i| {
            let mut d = doc! {
                "time": at(i, 1000), "meta": metas[(i % 3) as usize].clone(), "short": format!("s{i}"),
                "long": format!("a fairly long string value number {i:06}"),
                "rep": "same", "sixteen": format!("0123456789abcde{}", ["x", "y", "z"][(i % 3) as usize]),
                "empty": if i % 2 == 1 { "" } else { "e" }, "uni": format!("ünïcödé-{}", i % 5),
            };
            if i % 5 == 3 {
                d.remove("long");
            }
            raw(d)
        })
        .collect();
    Fixture {
        name: "strings",
        options: doc! {"timeField": "time", "metaField": "meta"},
        docs,
    }
}

/// Nested objects and arrays whose shape changes; fields missing here and there.
fn objects() -> Fixture {
    let docs = (0..200i32)
        .map(|i| {
            let mut o = doc! {"x": i, "y": {"deep": i * 2, "name": format!("n{}", i % 4)}};
            if i % 3 == 0 {
                o.insert("z", bson::bson!([i, i + 1, {"w": i}]));
            }
            if i % 10 == 7 {
                o = doc! {"y": {"other": true}};
            }
            let arr: Vec<i32> = (0..i % 5).collect();
            let mut d = doc! {
                "ts": at(i as u64, 1000), "tag": format!("sensor-{}", i % 4), "o": o, "arr": arr,
                "empty_obj": {}, "empty_arr": [],
            };
            if i % 4 == 1 {
                d.insert("arr", bson::bson!([{"a": i}, {"b": [i, {"c": i}]}]));
            }
            if i % 6 == 5 {
                d.remove("o");
            }
            if i >= 150 {
                d.remove("empty_obj");
            }
            raw(d)
        })
        .collect();
    Fixture {
        name: "objects",
        options: doc! {"timeField": "ts", "metaField": "tag"},
        docs,
    }
}

/// Every BSON type a measurement can hold, changing type within one field.
fn types() -> Fixture {
    let oid = ObjectId::parse_str("65f1a2b3c4d5e6f708091a2b").expect("hex");
    let bin = |subtype: u8, bytes: &[u8]| {
        Bson::Binary(Binary {
            subtype: BinarySubtype::from(subtype),
            bytes: bytes.to_vec(),
        })
    };
    let regex = Bson::RegularExpression(bson::Regex {
        pattern: bson::raw::CString::try_from("^a.*b$").expect("no NUL"),
        options: bson::raw::CString::try_from("im").expect("no NUL"),
    });
    let vals: Vec<Bson> = vec![
        Bson::Null,
        true.into(),
        false.into(),
        42.into(),
        (-42i64).into(),
        4.5.into(),
        "str".into(),
        decimal(false, 110, -2).into(),
        Bson::Decimal128(decimal_high(0xF800_0000_0000_0000)),
        Bson::Decimal128(decimal_high(0x7C00_0000_0000_0000)),
        Timestamp {
            time: 1_700_000_000,
            increment: 7,
        }
        .into(),
        DateTime::from_millis(-1000).into(),
        oid.into(),
        bin(0, &[1, 2]),
        bin(5, &[b'x'; 40]),
        bin(4, b"0123456789abcdef"),
        regex,
        Bson::JavaScriptCode("function(){}".into()),
        Bson::MinKey,
        Bson::MaxKey,
        doc! {"d": 1}.into(),
        bson::bson!([1, "two"]),
    ];
    let docs = (0..150u64)
        .map(|i| {
            let oid =
                ObjectId::parse_str(format!("{:08x}a1b2c3d4e5{:06x}", 0x6500_0000 + i, i * 3))
                    .expect("hex");
            let mut d = doc! {
                "t": at(i, 1000), "m": {"site": (i % 2) as i32, "kind": "k"},
                "any": vals[(i as usize) % vals.len()].clone(),
                "dec": decimal(false, u128::from(i * 100 + i % 100), -2),
                "ts": Timestamp { time: 1_700_000_000 + (i / 3) as u32, increment: (i % 3) as u32 },
                "date": DateTime::from_millis(1_577_836_800_000 + i as i64 * 1500),
                "oid": oid, "flag": i % 3 == 0, "bin": bin(0, &[(i % 256) as u8, 1, 2]),
                "nul": Bson::Null,
            };
            if i % 9 == 4 {
                d.remove("any");
            }
            raw(d)
        })
        .collect();
    Fixture {
        name: "types",
        options: doc! {"timeField": "t", "metaField": "m"},
        docs,
    }
}

fn decimal_high(high: u64) -> bson::Decimal128 {
    bson::Decimal128::from_bytes((u128::from(high) << 64).to_le_bytes())
}

/// Deprecated types drivers cannot build: undefined, symbol, DBPointer.
fn raw_odd() -> Fixture {
    let docs = (0..20u64)
        .map(|i| {
            let mut body = Vec::new();
            body.push(0x09);
            body.extend_from_slice(b"t\0");
            body.extend_from_slice(&(T0_MS + i as i64 * 1000).to_le_bytes());
            body.push(0x06);
            body.extend_from_slice(b"undef\0");
            let sym = format!("sym{}\0", i % 2);
            body.push(0x0E);
            body.extend_from_slice(b"sym\0");
            body.extend_from_slice(&(sym.len() as i32).to_le_bytes());
            body.extend_from_slice(sym.as_bytes());
            body.push(0x0C);
            body.extend_from_slice(b"ptr\0");
            body.extend_from_slice(&8i32.to_le_bytes());
            body.extend_from_slice(b"db.coll\0");
            body.extend((0u8..12).collect::<Vec<u8>>());
            body.push(0x10);
            body.extend_from_slice(b"n\0");
            body.extend_from_slice(&(i as i32).to_le_bytes());
            let mut doc = ((body.len() + 5) as i32).to_le_bytes().to_vec();
            doc.extend(body);
            doc.push(0);
            RawDocumentBuf::from_bytes(doc).expect("well-framed")
        })
        .collect();
    Fixture {
        name: "raw_odd",
        options: doc! {"timeField": "t"},
        docs,
    }
}

/// Every fixture collection, generated from [`SEED`].
pub fn fixtures() -> Vec<Fixture> {
    let mut r = Rng::new(SEED, 0);
    vec![
        ints(&mut r),
        doubles(&mut r),
        strings(),
        objects(),
        types(),
        raw_odd(),
    ]
}

async fn raw_docs(client: &Client, coll: &str, sort: Document) -> Result<Vec<u8>> {
    let what = format!("reading {DB}.{coll}");
    let docs: Vec<RawDocumentBuf> = client
        .database(DB)
        .collection::<RawDocumentBuf>(coll)
        .find(doc! {})
        .sort(sort)
        .await
        .map_err(SampleError::server(what.clone()))?
        .try_collect()
        .await
        .map_err(SampleError::server(what))?;
    Ok(docs.iter().flat_map(|d| d.as_bytes().to_vec()).collect())
}

/// Makes the fixtures on the server of `client` and writes them into `out`.
pub async fn generate(client: &Client, out: &Path) -> Result<Vec<(String, usize)>> {
    let db = client.database(DB);
    db.drop()
        .await
        .map_err(SampleError::server(format!("dropping {DB}")))?;
    let mut made = Vec::new();
    let result = async {
        for f in fixtures() {
            db.run_command(doc! {"create": f.name, "timeseries": f.options.clone()})
                .await
                .map_err(SampleError::server(format!("creating {DB}.{}", f.name)))?;
            let n = f.docs.len();
            db.collection::<RawDocumentBuf>(f.name)
                .insert_many(f.docs)
                .await
                .map_err(SampleError::server(format!(
                    "inserting into {DB}.{}",
                    f.name
                )))?;
            let buckets = raw_docs(
                client,
                &format!("system.buckets.{}", f.name),
                doc! {"_id": 1},
            )
            .await?;
            let measurements = raw_docs(client, f.name, doc! {"$natural": 1}).await?;
            for (suffix, bytes) in [("buckets", buckets), ("measurements", measurements)] {
                let path = out.join(format!("{}.{suffix}.bson", f.name));
                std::fs::write(&path, bytes).map_err(|source| SampleError::Write {
                    path: path.clone(),
                    source,
                })?;
            }
            made.push((f.name.to_string(), n));
        }
        Ok(())
    }
    .await;
    let _ = db.drop().await;
    result.map(|()| made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_deterministic_with_complete_first_measurements() {
        let a = fixtures();
        let b = fixtures();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.docs, y.docs, "{}", x.name);
        }
        let counts: Vec<usize> = a.iter().map(|f| f.docs.len()).collect();
        assert_eq!(counts, [1150, 200, 150, 200, 150, 20]);
        // The first measurement of every collection has every field a later one has at
        // top level, but those added on purpose later (ints' "x").
        let first = a[0].docs[0].iter().count();
        assert_eq!(first, 8);
    }
}
