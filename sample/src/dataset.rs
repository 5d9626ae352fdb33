//! A realistic dataset at a given scale: about `scale` GB of BSON in the shapes a real
//! deployment has.
//!
//! | namespace | documents at scale 1 | shape |
//! | --- | ---: | --- |
//! | `shop.users` | 500,000 | wide nested documents; unique, compound and multikey indexes |
//! | `shop.orders` | 2,000,000 | small documents with arrays; compound indexes |
//! | `shop.blobs` | 5,000 | 64 KiB binaries, half random, half compressible |
//! | `logs.events_NNN` | 100 collections of 2,000 | many small collections (per-collection overhead) |
//!
//! Documents are generated in batches, each from its own random stream, so the data of a
//! seed is the same whatever the batch order or parallelism.

use std::time::Duration;

use bson::{Binary, DateTime, Decimal128, RawDocumentBuf, doc, oid::ObjectId, spec::BinarySubtype};
use futures_util::{StreamExt as _, TryStreamExt as _};
use indicatif::{ProgressBar, ProgressStyle};
use mongodb::{Client, IndexModel, options::IndexOptions};

use crate::rng::Rng;
use crate::{Result, SampleError};

/// The words text fields are made of.
pub const WORDS: [&str; 26] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];

const COUNTRIES: [&str; 12] = [
    "DE", "FR", "US", "JP", "BR", "IN", "CN", "GB", "IT", "ES", "NL", "SE",
];
const STATUSES: [&str; 5] = ["new", "paid", "shipped", "delivered", "returned"];
const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];
/// 2020-01-01T00:00:00Z in milliseconds.
const EPOCH_MS: i64 = 1_577_836_800_000;
/// Size of the `data` field of a blob.
pub const BLOB_SIZE: usize = 65_536;

/// What to load.
#[derive(Clone, Debug)]
pub struct DatasetOptions {
    /// 1.0 is about 1 GB of BSON.
    pub scale: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Prepended to the database names (`shop`, `logs`).
    pub db_prefix: String,
    /// Show a progress bar on standard error (drawn only on a terminal).
    pub progress: bool,
    /// Concurrent insert batches.
    pub workers: usize,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            scale: 1.0,
            seed: 7,
            db_prefix: String::new(),
            progress: false,
            workers: 2,
        }
    }
}

/// One collection of the dataset: its name, how many documents, the batch size, the
/// document generator.
#[derive(Clone, Copy, Debug)]
pub struct Part {
    /// Database name without prefix (`shop` or `logs`).
    pub db: &'static str,
    /// Collection name (`events_NNN` for the logs, see [`Part::index`]).
    pub coll: &'static str,
    /// For `logs`: the collection number; else 0.
    pub index: u32,
    /// Documents to insert.
    pub count: u64,
    /// Documents per insert batch.
    pub batch: u64,
    /// Which generator.
    pub shape: Shape,
}

/// The document shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `shop.users`.
    User,
    /// `shop.orders`.
    Order,
    /// `shop.blobs`.
    Blob,
    /// `logs.events_NNN`.
    Event,
}

impl Part {
    /// The collection's name.
    pub fn collection(&self) -> String {
        match self.shape {
            Shape::Event => format!("events_{:03}", self.index),
            _ => self.coll.to_string(),
        }
    }

    /// The seed stream of this part (distinct per collection).
    fn stream(&self) -> u64 {
        match self.shape {
            Shape::User => 1,
            Shape::Order => 2,
            Shape::Blob => 3,
            Shape::Event => 100 + u64::from(self.index),
        }
    }

    /// Documents `start..end` of this part, generated from `seed`.
    pub fn batch_docs(&self, seed: u64, start: u64, end: u64) -> Vec<RawDocumentBuf> {
        let mut r = Rng::new(seed ^ (self.stream() << 40), start);
        (start..end.min(self.count))
            .map(|i| self.shape.make(&mut r, i))
            .collect()
    }
}

/// The parts of the dataset at `scale`, in load order.
pub fn parts(scale: f64) -> Vec<Part> {
    let n = |base: f64| (base * scale) as u64;
    let mut out = vec![
        Part {
            db: "shop",
            coll: "users",
            index: 0,
            count: n(500_000.0),
            batch: 2_000,
            shape: Shape::User,
        },
        Part {
            db: "shop",
            coll: "orders",
            index: 0,
            count: n(2_000_000.0),
            batch: 5_000,
            shape: Shape::Order,
        },
        Part {
            db: "shop",
            coll: "blobs",
            index: 0,
            count: n(5_000.0),
            batch: 100,
            shape: Shape::Blob,
        },
    ];
    for k in 0..event_collections(scale) {
        out.push(Part {
            db: "logs",
            coll: "events",
            index: k,
            count: 2_000,
            batch: 2_000,
            shape: Shape::Event,
        });
    }
    out
}

/// How many `logs.events_NNN` collections there are at `scale` (at least one).
pub fn event_collections(scale: f64) -> u32 {
    ((100.0 * scale) as u32).max(1)
}

fn word(r: &mut Rng) -> &'static str {
    WORDS[r.below(WORDS.len() as u64) as usize]
}

fn words(r: &mut Rng, n: u64) -> String {
    let mut s = String::with_capacity(n as usize * 7);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(word(r));
    }
    s
}

fn title(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

impl Shape {
    /// Document number `i` of this shape.
    pub fn make(self, r: &mut Rng, i: u64) -> RawDocumentBuf {
        let d = match self {
            Shape::User => {
                let mut oid = [0u8; 12];
                oid[..4].copy_from_slice(&(i as u32).to_be_bytes());
                oid[4..].copy_from_slice(&r.bytes(8));
                let n_tags = r.range(1, 6) as usize;
                let tags: Vec<&str> = r.sample(&WORDS, n_tags).into_iter().copied().collect();
                let mut prefs = bson::Document::new();
                let pref_words: Vec<&str> = r.sample(&WORDS, 6).into_iter().copied().collect();
                for w in pref_words {
                    prefs.insert(w, r.unit() < 0.5);
                }
                let balance: Decimal128 = format!("{}.{:02}", r.below(10_000_000), r.below(100))
                    .parse()
                    .expect("a decimal literal");
                let bio_len = r.range(10, 60);
                doc! {
                    "_id": ObjectId::from_bytes(oid),
                    "email": format!("user{i}@example{}.com", r.below(100)),
                    "name": { "first": title(word(r)), "last": title(word(r)) },
                    "age": r.range(18, 90) as i32,
                    "country": *r.pick(&COUNTRIES),
                    "tags": tags,
                    "created": DateTime::from_millis(EPOCH_MS + r.below(100_000_000) as i64 * 1000),
                    "balance": balance,
                    "score": r.unit() * 1000.0,
                    "visits": r.below(1_000_000_000_000) as i64,
                    "address": {
                        "street": format!("{} {} street", r.range(1, 999), word(r)),
                        "city": title(word(r)),
                        "zip": format!("{:05}", r.below(100_000)),
                        "geo": { "type": "Point", "coordinates": [r.unit() * 360.0 - 180.0, r.unit() * 180.0 - 90.0] },
                    },
                    "prefs": prefs,
                    "bio": words(r, bio_len),
                }
            }
            Shape::Order => {
                let items: Vec<bson::Document> = (0..r.range(1, 4))
                    .map(|_| {
                        doc! {
                            "sku": format!("SKU-{}", r.below(100_000)),
                            "qty": r.range(1, 5) as i32,
                            "price": (r.unit() * 49_900.0 + 100.0).round() / 100.0,
                        }
                    })
                    .collect();
                doc! {
                    "_id": i as i64,
                    "user_id": r.below(1_000_000) as i32,
                    "ts": DateTime::from_millis(EPOCH_MS + i as i64 * 37 + r.below(37) as i64),
                    "status": *r.pick(&STATUSES),
                    "items": items,
                    "total": (r.unit() * 199_900.0 + 100.0).round() / 100.0,
                }
            }
            Shape::Blob => {
                let mut data = r.bytes(BLOB_SIZE / 2);
                let word = word(r).as_bytes();
                data.extend(word.iter().cycle().take(BLOB_SIZE / 2));
                doc! {
                    "_id": format!("blob-{i:08}"),
                    "name": format!("file{i}.bin"),
                    "len": BLOB_SIZE as i32,
                    "data": Binary { subtype: BinarySubtype::Generic, bytes: data },
                    "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: r.bytes(16) },
                }
            }
            Shape::Event => {
                let mut oid = [0u8; 12];
                oid[..8].copy_from_slice(&i.to_be_bytes());
                oid[8..].copy_from_slice(&r.bytes(4));
                doc! {
                    "_id": ObjectId::from_bytes(oid),
                    "seq": i as i32,
                    "level": *r.pick(&LEVELS),
                    "msg": words(r, 8),
                    "at": DateTime::from_millis(EPOCH_MS + i as i64 * 1000),
                }
            }
        };
        RawDocumentBuf::try_from(&d).expect("generated documents always encode")
    }
}

/// Documents and bytes one namespace received.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// `db.collection`.
    pub ns: String,
    /// Documents inserted.
    pub documents: u64,
    /// Raw BSON bytes inserted.
    pub bytes: u64,
}

/// Drops the dataset's databases and loads it into the server of `client`, then creates
/// the indexes. Returns what each namespace received.
pub async fn load(client: &Client, opts: &DatasetOptions) -> Result<Vec<Loaded>> {
    let shop = format!("{}shop", opts.db_prefix);
    let logs = format!("{}logs", opts.db_prefix);
    for db in [&shop, &logs] {
        client
            .database(db)
            .drop()
            .await
            .map_err(SampleError::server(format!("dropping database {db}")))?;
    }
    let parts = parts(opts.scale);
    let total: u64 = parts.iter().map(|p| p.count).sum();
    let bar = progress_bar(opts.progress, total);
    let mut loaded = Vec::with_capacity(parts.len());
    for part in &parts {
        let db = if part.db == "shop" { &shop } else { &logs };
        let coll_name = part.collection();
        let ns = format!("{db}.{coll_name}");
        bar.set_message(ns.clone());
        let coll = client.database(db).collection::<RawDocumentBuf>(&coll_name);
        let starts: Vec<u64> = (0..part.count)
            .step_by(part.batch.max(1) as usize)
            .collect();
        let workers = if part.shape == Shape::Event {
            1
        } else {
            opts.workers.max(1)
        };
        let sizes: Vec<(u64, u64)> = futures_util::stream::iter(starts)
            .map(|start| {
                let coll = coll.clone();
                let part = *part;
                let seed = opts.seed;
                let ns = ns.clone();
                let bar = bar.clone();
                async move {
                    let docs = part.batch_docs(seed, start, start + part.batch);
                    let n = docs.len() as u64;
                    let bytes: u64 = docs.iter().map(|d| d.as_bytes().len() as u64).sum();
                    coll.insert_many(docs)
                        .ordered(false)
                        .await
                        .map_err(SampleError::server(format!("inserting into {ns}")))?;
                    bar.inc(n);
                    Ok::<_, SampleError>((n, bytes))
                }
            })
            .buffer_unordered(workers)
            .try_collect()
            .await?;
        loaded.push(Loaded {
            ns,
            documents: sizes.iter().map(|s| s.0).sum(),
            bytes: sizes.iter().map(|s| s.1).sum(),
        });
    }
    bar.set_message("indexes");
    create_indexes(client, &shop, &logs, opts.scale).await?;
    bar.finish_and_clear();
    Ok(loaded)
}

/// The dataset's secondary indexes.
async fn create_indexes(client: &Client, shop: &str, logs: &str, scale: f64) -> Result<()> {
    let unique = IndexOptions::builder().unique(true).build();
    let model = |keys: bson::Document, options: Option<IndexOptions>| {
        IndexModel::builder().keys(keys).options(options).build()
    };
    let plan = [
        (
            "users",
            vec![
                model(doc! { "email": 1 }, Some(unique)),
                model(doc! { "country": 1, "age": -1 }, None),
                model(doc! { "tags": 1 }, None),
            ],
        ),
        (
            "orders",
            vec![
                model(doc! { "user_id": 1, "ts": -1 }, None),
                model(doc! { "status": 1 }, None),
            ],
        ),
    ];
    for (coll, models) in plan {
        client
            .database(shop)
            .collection::<RawDocumentBuf>(coll)
            .create_indexes(models)
            .await
            .map_err(SampleError::server(format!(
                "creating the indexes of {shop}.{coll}"
            )))?;
    }
    for k in 0..event_collections(scale) {
        let coll = format!("events_{k:03}");
        client
            .database(logs)
            .collection::<RawDocumentBuf>(&coll)
            .create_index(model(doc! { "at": 1 }, None))
            .await
            .map_err(SampleError::server(format!(
                "creating the index of {logs}.{coll}"
            )))?;
    }
    Ok(())
}

fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} loading {msg:28} [{bar:30}] {human_pos}/{human_len} documents ({per_sec}, {eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// About `target` bytes of raw BSON documents of the dataset's shapes in its proportions,
/// concatenated, with no server: for benchmarks of the offline code paths.
pub fn synthetic(target: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed, 0);
    let mut out = Vec::with_capacity(target + BLOB_SIZE * 2);
    let mut i = 0u64;
    while out.len() < target {
        // Per 20 documents: 5 users, 14 orders, 1 blob: byte shares close to the dataset's.
        let shape = match i % 20 {
            0..=4 => Shape::User,
            5..=18 => Shape::Order,
            _ => Shape::Blob,
        };
        out.extend_from_slice(shape.make(&mut r, i).as_bytes());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_deterministic_and_independent_of_order() {
        let part = parts(0.01)[1];
        let a = part.batch_docs(7, 0, 10);
        let b = part.batch_docs(7, 0, 10);
        assert_eq!(a, b);
        assert_ne!(a, part.batch_docs(8, 0, 10));
        assert_eq!(a.len(), 10);
        // The last batch stops at the part's count.
        assert_eq!(
            part.batch_docs(7, part.count - 3, part.count + 100).len(),
            3
        );
    }

    #[test]
    fn scale_sets_counts() {
        let p = parts(0.3);
        let total: u64 = p.iter().map(|p| p.count).sum();
        assert_eq!(
            p.iter()
                .filter(|p| p.db == "shop")
                .map(|p| p.count)
                .sum::<u64>(),
            751_500
        );
        assert_eq!(event_collections(0.3), 30);
        assert_eq!(total, 751_500 + 30 * 2_000);
        assert_eq!(event_collections(0.001), 1);
    }

    #[test]
    fn shapes_have_their_fields_and_sizes() {
        let mut r = Rng::new(1, 1);
        let user = Shape::User.make(&mut r, 3);
        assert!(user.get("email").unwrap().is_some());
        let blob = Shape::Blob.make(&mut r, 3);
        assert!(blob.as_bytes().len() > BLOB_SIZE);
        let s = synthetic(1 << 20, 7);
        assert!(s.len() >= 1 << 20);
        assert_eq!(s, synthetic(1 << 20, 7));
    }
}
