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
use crate::oxd::ranges::RangePlan;

/// A half-open `_id` range `[min, max)`; `None` is unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct IdRange {
    /// Inclusive lower bound.
    pub min: Option<Bson>,
    /// Exclusive upper bound.
    pub max: Option<Bson>,
    /// How the range is queried.
    pub mode: RangeMode,
}

/// How a range is expressed to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeMode {
    /// `min`/`max` index bounds with an `_id` hint: exact whatever the types of the
    /// `_id`s. Used when `_id`s of several BSON type classes exist.
    IndexBounds,
    /// A `$gte`/`$lt` filter sorted by `_id`: exact when every `_id` belongs to one
    /// type class (the lowest and highest `_id` are of the same class, so nothing of
    /// another class can sort between them), and cheaper on some servers.
    Filter,
}

impl IdRange {
    /// The whole collection.
    pub fn all() -> IdRange {
        IdRange {
            min: None,
            max: None,
            mode: RangeMode::IndexBounds,
        }
    }
}

/// The comparison class of a BSON type in the server's sort order: values of
/// different classes never compare equal, and `$lt`/`$gte` only match their own class.
pub fn type_class(v: &Bson) -> i32 {
    match v {
        Bson::MinKey => -1,
        Bson::Undefined => 0,
        Bson::Null => 5,
        Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_) => 10,
        Bson::String(_) | Bson::Symbol(_) => 15,
        Bson::Document(_) => 20,
        Bson::Array(_) => 25,
        Bson::Binary(_) => 30,
        Bson::ObjectId(_) => 35,
        Bson::Boolean(_) => 40,
        Bson::DateTime(_) => 45,
        Bson::Timestamp(_) => 47,
        Bson::RegularExpression(_) => 50,
        Bson::DbPointer(_) => 55,
        Bson::JavaScriptCode(_) => 60,
        Bson::JavaScriptCodeWithScope(_) => 65,
        Bson::MaxKey => 127,
    }
}

/// The lowest and highest `_id` of a collection (through the `_id` index).
pub async fn id_extremes(
    db: &Database,
    coll: &str,
) -> Result<Option<(Bson, Bson)>, mongodb::error::Error> {
    let c = db.collection::<Document>(coll);
    let lo = c
        .find_one(doc! {})
        .sort(doc! {"_id": 1})
        .projection(doc! {"_id": 1})
        .await?
        .and_then(|d| d.get("_id").cloned());
    let hi = c
        .find_one(doc! {})
        .sort(doc! {"_id": -1})
        .projection(doc! {"_id": 1})
        .await?
        .and_then(|d| d.get("_id").cloned());
    Ok(lo.zip(hi))
}

/// The filter of a [`RangeMode::Filter`] range.
pub fn range_filter(r: &IdRange) -> Document {
    let mut cond = Document::new();
    if let Some(lo) = &r.min {
        cond.insert("$gte", lo.clone());
    }
    if let Some(hi) = &r.max {
        cond.insert("$lt", hi.clone());
    }
    if cond.is_empty() {
        return doc! {};
    }
    let f = doc! {"_id": cond};
    // NaN sorts below every number but matches no comparison: the first range of a
    // numeric _id space takes it explicitly.
    if r.min.is_none() && r.max.as_ref().is_some_and(|m| type_class(m) == 10) {
        return doc! {"$or": [f, {"_id": f64::NAN}]};
    }
    f
}

/// How many ranges a collection of `size` bytes gets with `split_above`.
pub fn range_count(size: u64, split_above: u64, max_ranges: usize) -> usize {
    if split_above == 0 || size <= split_above {
        return 1;
    }
    (size.div_ceil(split_above) as usize).clamp(2, max_ranges.max(2))
}

/// Turns sorted, distinct split points into ranges covering every `_id`.
pub fn ranges_from_points(points: Vec<Bson>, mode: RangeMode) -> Vec<IdRange> {
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut lo = None;
    for p in points {
        out.push(IdRange {
            min: lo.take(),
            max: Some(p.clone()),
            mode,
        });
        lo = Some(p);
    }
    out.push(IdRange {
        min: lo,
        max: None,
        mode,
    });
    out
}

/// The ranges of a split recorded in an archive (a RANGES record, see
/// [`crate::oxd::ranges`]).
pub fn ranges_from_plan(p: &RangePlan) -> Vec<IdRange> {
    let mode = if p.filter {
        RangeMode::Filter
    } else {
        RangeMode::IndexBounds
    };
    ranges_from_points(p.points.clone(), mode)
}

/// The record of a split made by [`ranges_from_points`]: its split points and mode.
pub fn plan_of(ranges: &[IdRange]) -> RangePlan {
    RangePlan {
        filter: ranges.first().is_some_and(|r| r.mode == RangeMode::Filter),
        points: ranges.iter().filter_map(|r| r.max.clone()).collect(),
    }
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
    // One type class from the lowest to the highest _id: a plain filter is exact.
    let mode = match id_extremes(db, coll).await? {
        Some((lo, hi))
            if type_class(&lo) == type_class(&hi)
                && points.iter().all(|p| type_class(p) == type_class(&lo)) =>
        {
            RangeMode::Filter
        }
        _ => RangeMode::IndexBounds,
    };
    Ok(ranges_from_points(points, mode))
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
        let r = ranges_from_points(
            vec![Bson::Int32(10), Bson::String("m".into())],
            RangeMode::IndexBounds,
        );
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].min, None);
        assert_eq!(r[0].max, Some(Bson::Int32(10)));
        assert_eq!(r[1].min, Some(Bson::Int32(10)));
        assert_eq!(r[2].max, None);
        assert_eq!(
            ranges_from_points(vec![], RangeMode::IndexBounds),
            vec![IdRange::all()]
        );
    }

    #[test]
    fn recorded_splits_give_the_same_ranges() {
        for mode in [RangeMode::Filter, RangeMode::IndexBounds] {
            let r = ranges_from_points(vec![Bson::Int32(10), Bson::String("m".into())], mode);
            let p = plan_of(&r);
            assert_eq!(p.len(), 3);
            assert_eq!(ranges_from_plan(&p), r);
        }
    }

    #[test]
    fn filters() {
        let r = ranges_from_points(vec![Bson::Int32(10), Bson::Int32(20)], RangeMode::Filter);
        let f0 = range_filter(&r[0]);
        assert!(f0.get_array("$or").is_ok(), "{f0}");
        assert_eq!(range_filter(&r[1]), doc! {"_id": {"$gte": 10, "$lt": 20}});
        assert_eq!(range_filter(&r[2]), doc! {"_id": {"$gte": 20}});
        let s = ranges_from_points(vec![Bson::String("m".into())], RangeMode::Filter);
        assert_eq!(range_filter(&s[0]), doc! {"_id": {"$lt": "m"}});
        assert_eq!(range_filter(&IdRange::all()), doc! {});
    }

    #[test]
    fn classes() {
        assert_eq!(type_class(&Bson::Int32(1)), type_class(&Bson::Double(2.0)));
        assert_ne!(
            type_class(&Bson::Int32(1)),
            type_class(&Bson::String("1".into()))
        );
        assert!(type_class(&Bson::MinKey) < type_class(&Bson::Null));
        assert!(
            type_class(&Bson::ObjectId(bson::oid::ObjectId::new()))
                < type_class(&Bson::Boolean(true))
        );
    }
}
