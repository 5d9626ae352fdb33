//! The range records (spec §4.5): two ancillary kinds with which a dump says how it
//! split a collection into `_id` ranges and which frames hold each range it finished,
//! so that `dump --resume` keeps the finished ranges of a collection the interrupted
//! run had not finished. Readers that do not know them skip them; nothing else in an
//! archive depends on them.
//!
//! | kind   | name      | `ns_id`       | `seq`       | payload (BSON, codec 0)                          |
//! |--------|-----------|---------------|-------------|--------------------------------------------------|
//! | `0x80` | RANGES    | the namespace | `0`         | `{mode: "filter" \| "index-bounds", points: […]}` |
//! | `0x81` | RANGE_END | the namespace | range index | `{frames: [int32 seq, …], docs: int64, bytes: int64}` |
//!
//! With `k` split points, range `i` covers `[points[i-1], points[i])` of the `_id`
//! index order: range 0 has no lower bound and range `k` no upper bound. A RANGE_END
//! follows the last frame it lists.

use bson::{Bson, Document, doc};

/// `kind` of a RANGES record.
pub const KIND_RANGES: u8 = 0x80;
/// `kind` of a RANGE_END record.
pub const KIND_RANGE_END: u8 = 0x81;

/// How a collection was split (a RANGES record).
#[derive(Debug, Clone, PartialEq)]
pub struct RangePlan {
    /// Ranges are read with a `$gte`/`$lt` filter (every `_id` of one type class)
    /// rather than `min`/`max` index bounds.
    pub filter: bool,
    /// The split points, in `_id` index order.
    pub points: Vec<Bson>,
}

impl RangePlan {
    /// How many ranges the plan has.
    pub fn len(&self) -> usize {
        self.points.len() + 1
    }

    /// Never: a plan has at least one range.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The record's payload.
    pub fn encode(&self) -> Vec<u8> {
        let d = doc! {
            "mode": if self.filter { "filter" } else { "index-bounds" },
            "points": self.points.clone(),
        };
        bson::serialize_to_vec(&d).expect("a range plan always serializes")
    }

    /// Parses a payload written by [`RangePlan::encode`].
    pub fn decode(raw: &[u8]) -> Result<RangePlan, String> {
        let d = parse(raw)?;
        let filter = match d.get_str("mode") {
            Ok("filter") => true,
            Ok("index-bounds") => false,
            _ => return Err("RANGES: `mode` is not \"filter\" or \"index-bounds\"".into()),
        };
        let points = d
            .get_array("points")
            .map_err(|_| "RANGES: `points` is not an array".to_string())?
            .clone();
        Ok(RangePlan { filter, points })
    }
}

/// The frames and totals of one finished range (a RANGE_END record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeEnd {
    /// The `seq` of every frame of the range, in order.
    pub frames: Vec<u32>,
    /// Documents in those frames.
    pub docs: u64,
    /// Raw bytes in those frames.
    pub bytes: u64,
}

impl RangeEnd {
    /// The record's payload.
    pub fn encode(&self) -> Vec<u8> {
        let frames: Vec<Bson> = self.frames.iter().map(|&s| Bson::Int32(s as i32)).collect();
        let d = doc! {
            "frames": frames,
            "docs": self.docs as i64,
            "bytes": self.bytes as i64,
        };
        bson::serialize_to_vec(&d).expect("a range end always serializes")
    }

    /// Parses a payload written by [`RangeEnd::encode`].
    pub fn decode(raw: &[u8]) -> Result<RangeEnd, String> {
        let d = parse(raw)?;
        let bad = |f: &str| format!("RANGE_END: `{f}` is missing or of the wrong type");
        let frames = d
            .get_array("frames")
            .map_err(|_| bad("frames"))?
            .iter()
            .map(|v| match v {
                Bson::Int32(s) => Ok(*s as u32),
                _ => Err(bad("frames")),
            })
            .collect::<Result<Vec<u32>, String>>()?;
        let docs = d.get_i64("docs").map_err(|_| bad("docs"))?;
        let bytes = d.get_i64("bytes").map_err(|_| bad("bytes"))?;
        Ok(RangeEnd {
            frames,
            docs: docs.max(0) as u64,
            bytes: bytes.max(0) as u64,
        })
    }
}

/// A range record read from an archive.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeRecord {
    /// How namespace `ns` was split.
    Plan {
        /// Namespace id.
        ns: usize,
        /// The split.
        plan: RangePlan,
    },
    /// Range `range` of namespace `ns` was read to its end.
    End {
        /// Namespace id.
        ns: usize,
        /// Range index in the plan.
        range: u32,
        /// Its frames and totals.
        end: RangeEnd,
    },
}

impl RangeRecord {
    /// Decodes the payload of an ancillary record of `kind`; `None` for kinds that are
    /// not range records and for payloads that do not parse (they are skipped as any
    /// unknown ancillary record is: only what a resume could keep is lost).
    pub fn decode(kind: u8, ns: u32, seq: u32, raw: &[u8]) -> Option<RangeRecord> {
        match kind {
            KIND_RANGES => RangePlan::decode(raw).ok().map(|plan| RangeRecord::Plan {
                ns: ns as usize,
                plan,
            }),
            KIND_RANGE_END => RangeEnd::decode(raw).ok().map(|end| RangeRecord::End {
                ns: ns as usize,
                range: seq,
                end,
            }),
            _ => None,
        }
    }
}

fn parse(raw: &[u8]) -> Result<Document, String> {
    match crate::docs::declared_len(raw) {
        Some(n) if n as i64 == raw.len() as i64 => {}
        _ => return Err("the payload is not exactly one BSON document".into()),
    }
    crate::docs::deep_check(raw).map_err(|e| format!("not a BSON document: {e}"))?;
    Document::from_reader(&mut &raw[..]).map_err(|e| format!("not a BSON document: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let p = RangePlan {
            filter: true,
            points: vec![Bson::Int64(10), Bson::String("m".into())],
        };
        assert_eq!(RangePlan::decode(&p.encode()), Ok(p.clone()));
        assert_eq!(p.len(), 3);
        let e = RangeEnd {
            frames: vec![0, 3, 4],
            docs: 12,
            bytes: 3400,
        };
        assert_eq!(RangeEnd::decode(&e.encode()), Ok(e.clone()));
        assert_eq!(
            RangeRecord::decode(KIND_RANGE_END, 2, 1, &e.encode()),
            Some(RangeRecord::End {
                ns: 2,
                range: 1,
                end: e
            })
        );
        assert_eq!(RangeRecord::decode(0x90, 0, 0, &p.encode()), None);
        assert_eq!(RangeRecord::decode(KIND_RANGES, 0, 0, b"junk"), None);
    }
}
