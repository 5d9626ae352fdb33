//! Splitting a big collection into `_id` ranges read concurrently.
//!
//! Split points come from `$sample` + `$bucketAuto` on `_id`, which orders values of
//! every BSON type the way the `_id` index does. Ranges are read with an `_id`
//! hint and `min`/`max` index bounds, never with `$gte`/`$lt` (which would silently
//! skip documents whose `_id` has another type): the first range has no lower bound
//! and the last no upper bound, so `MinKey` and `MaxKey` `_id`s are included too.

use bson::{Bson, Document, doc, rawdoc};
use mongodb::Database;

use super::plan::cursor_docs;

/// A half-open `_id` range `[min, max)`; `None` is unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct IdRange {
    /// Inclusive lower bound.
    pub min: Option<Bson>,
    /// Exclusive upper bound.
    pub max: Option<Bson>,
}

impl IdRange {
    /// The whole collection.
    pub fn all() -> IdRange {
        IdRange {
            min: None,
            max: None,
        }
    }
}

/// How many ranges a collection of `size` bytes gets with `split_above`.
pub fn range_count(size: u64, split_above: u64, max_ranges: usize) -> usize {
    if split_above == 0 || size <= split_above {
        return 1;
    }
    (size.div_ceil(split_above) as usize).clamp(2, max_ranges.max(2))
}

/// Turns sorted, distinct split points into ranges covering every `_id`.
pub fn ranges_from_points(points: Vec<Bson>) -> Vec<IdRange> {
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut lo = None;
    for p in points {
        out.push(IdRange {
            min: lo.take(),
            max: Some(p.clone()),
        });
        lo = Some(p);
    }
    out.push(IdRange { min: lo, max: None });
    out
}

/// Asks the server for `k - 1` split points of `coll`'s `_id` space. Returns a
/// single unbounded range when sampling fails or finds fewer distinct values.
pub async fn split(
    db: &Database,
    coll: &str,
    count: u64,
    k: usize,
) -> Result<Vec<IdRange>, mongodb::error::Error> {
    if k < 2 {
        return Ok(vec![IdRange::all()]);
    }
    // Enough samples for even-ish ranges; a random cursor needs < 5% of the collection.
    let sample = (k as u64 * 64).clamp(256, 20_000).min(count.max(1));
    let cmd = rawdoc! {
        "aggregate": coll,
        "pipeline": [
            {"$sample": {"size": sample as i64}},
            {"$project": {"_id": 1}},
            {"$bucketAuto": {"groupBy": "$_id", "buckets": k as i32}},
        ],
        "allowDiskUse": true,
        "cursor": {},
    };
    let buckets: Vec<Document> = cursor_docs(db, cmd).await?;
    let mut points = Vec::new();
    for b in buckets.iter().take(buckets.len().saturating_sub(1)) {
        if let Some(max) = b.get_document("_id").ok().and_then(|d| d.get("max")) {
            points.push(max.clone());
        }
    }
    points.dedup();
    Ok(ranges_from_points(points))
}

/// The `min`/`max` index bounds of a range, as documents for `find`.
pub fn bounds(r: &IdRange) -> (Option<Document>, Option<Document>) {
    (
        r.min.as_ref().map(|v| doc! {"_id": v.clone()}),
        r.max.as_ref().map(|v| doc! {"_id": v.clone()}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(range_count(10, 100, 64), 1);
        assert_eq!(range_count(1000, 100, 64), 10);
        assert_eq!(range_count(1_000_000, 100, 64), 64);
        assert_eq!(range_count(150, 100, 64), 2);
        assert_eq!(range_count(150, 0, 64), 1);
    }

    #[test]
    fn ranges_cover_everything() {
        let r = ranges_from_points(vec![Bson::Int32(10), Bson::String("m".into())]);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].min, None);
        assert_eq!(r[0].max, Some(Bson::Int32(10)));
        assert_eq!(r[1].min, Some(Bson::Int32(10)));
        assert_eq!(r[2].max, None);
        assert_eq!(ranges_from_points(vec![]), vec![IdRange::all()]);
    }
}
