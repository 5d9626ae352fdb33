//! The FOOTER payload (spec §8): the frame index and the closing summary.
//!
//! ```text
//! FooterHead  NsEntry × ns_count  FrameEntry × frame_count  Summary (BSON)
//! ```
//!
//! FooterHead (16 bytes):
//!
//! | offset | size | field         | meaning                        |
//! |-------:|-----:|---------------|--------------------------------|
//! | 0      | 4    | `ns_count`    | u32 LE, = namespaces in the manifest |
//! | 4      | 4    | reserved      | 0                              |
//! | 8      | 8    | `frame_count` | u64 LE, FRAME records in the archive |
//!
//! NsEntry (48 bytes), one per namespace in id order:
//!
//! | offset | size | field        | meaning                                  |
//! |-------:|-----:|--------------|------------------------------------------|
//! | 0      | 4    | `ns_id`      | u32 LE, equal to the entry's position    |
//! | 4      | 2    | `flags`      | u16 LE, the NS_END record's flags        |
//! | 6      | 2    | reserved     | 0                                        |
//! | 8      | 8    | `end_offset` | u64 LE, archive offset of the NS_END record |
//! | 16     | 8    | `doc_count`  | u64 LE, as in NS_END                     |
//! | 24     | 8    | `raw_bytes`  | u64 LE, as in NS_END                     |
//! | 32     | 8    | `frames`     | u64 LE, as in NS_END                     |
//! | 40     | 8    | `digest`     | u64 LE, as in NS_END                     |
//!
//! FrameEntry (24 bytes), grouped by namespace in id order, then by `seq`:
//!
//! | offset | size | field       | meaning                                   |
//! |-------:|-----:|-------------|-------------------------------------------|
//! | 0      | 8    | `offset`    | u64 LE, archive offset of the FRAME record |
//! | 8      | 4    | `ns_id`     | u32 LE                                    |
//! | 12     | 4    | `seq`       | u32 LE                                    |
//! | 16     | 4    | `doc_count` | u32 LE, as in the frame header            |
//! | 20     | 4    | `raw_len`   | u32 LE, as in the frame header            |
//!
//! Summary: one BSON document filling the rest of the payload: `completed_at`
//! (date), `warnings` (array of strings), `oplog` (optional document with `start` and
//! `end` timestamps).

use bson::{Bson, Document, doc};

use super::{le16, le32, le64, nsend::NsEnd};
use crate::catalog::{OplogRange, Summary};

/// Size of FooterHead.
pub const HEAD_LEN: usize = 16;
/// Size of one NsEntry.
pub const NS_ENTRY_LEN: usize = 48;
/// Size of one FrameEntry.
pub const FRAME_ENTRY_LEN: usize = 24;

/// One namespace's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsEntry {
    /// `ns_id`.
    pub ns_id: u32,
    /// `flags`.
    pub flags: u16,
    /// `end_offset`.
    pub end_offset: u64,
    /// Totals as in the NS_END record.
    pub end: NsEnd,
}

/// One frame's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameEntry {
    /// `offset`.
    pub offset: u64,
    /// `ns_id`.
    pub ns_id: u32,
    /// `seq`.
    pub seq: u32,
    /// `doc_count`.
    pub doc_count: u32,
    /// `raw_len`.
    pub raw_len: u32,
}

/// The parsed footer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Footer {
    /// One entry per namespace, in id order.
    pub namespaces: Vec<NsEntry>,
    /// Every frame, grouped by namespace then `seq`.
    pub frames: Vec<FrameEntry>,
    /// The closing summary.
    pub summary: Summary,
}

impl Footer {
    /// The frames of namespace `ns_id` (a contiguous slice of [`Footer::frames`]).
    pub fn frames_of(&self, ns_id: u32) -> &[FrameEntry] {
        let start = self.frames.partition_point(|f| f.ns_id < ns_id);
        let end = self.frames.partition_point(|f| f.ns_id <= ns_id);
        &self.frames[start..end]
    }

    /// Serializes the footer payload (raw, before any compression).
    pub fn encode(&self) -> Vec<u8> {
        let summary = summary_doc(&self.summary);
        let mut b = Vec::with_capacity(
            HEAD_LEN
                + self.namespaces.len() * NS_ENTRY_LEN
                + self.frames.len() * FRAME_ENTRY_LEN
                + summary.len(),
        );
        b.extend_from_slice(&(self.namespaces.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&(self.frames.len() as u64).to_le_bytes());
        for n in &self.namespaces {
            b.extend_from_slice(&n.ns_id.to_le_bytes());
            b.extend_from_slice(&n.flags.to_le_bytes());
            b.extend_from_slice(&[0; 2]);
            b.extend_from_slice(&n.end_offset.to_le_bytes());
            b.extend_from_slice(&n.end.doc_count.to_le_bytes());
            b.extend_from_slice(&n.end.raw_bytes.to_le_bytes());
            b.extend_from_slice(&n.end.frames.to_le_bytes());
            b.extend_from_slice(&n.end.digest.to_le_bytes());
        }
        for f in &self.frames {
            b.extend_from_slice(&f.offset.to_le_bytes());
            b.extend_from_slice(&f.ns_id.to_le_bytes());
            b.extend_from_slice(&f.seq.to_le_bytes());
            b.extend_from_slice(&f.doc_count.to_le_bytes());
            b.extend_from_slice(&f.raw_len.to_le_bytes());
        }
        b.extend_from_slice(&summary);
        b
    }

    /// Parses a footer payload. Table sizes are checked against the payload length
    /// before anything is allocated; entries must be in the order the spec requires.
    pub fn decode(b: &[u8]) -> Result<Footer, String> {
        if b.len() < HEAD_LEN {
            return Err(format!("{} bytes, shorter than its 16-byte head", b.len()));
        }
        let ns_count = le32(b, 0) as u64;
        if le32(b, 4) != 0 {
            return Err("reserved head field is not 0".into());
        }
        let frame_count = le64(b, 8);
        let tables = ns_count
            .checked_mul(NS_ENTRY_LEN as u64)
            .and_then(|n| frame_count.checked_mul(FRAME_ENTRY_LEN as u64)?.checked_add(n))
            .and_then(|t| t.checked_add(HEAD_LEN as u64))
            .filter(|&t| t <= b.len() as u64)
            .ok_or_else(|| {
                format!(
                    "ns_count {ns_count} and frame_count {frame_count} need more than the {} payload bytes",
                    b.len()
                )
            })? as usize;
        let mut namespaces = Vec::with_capacity(ns_count as usize);
        let mut at = HEAD_LEN;
        for i in 0..ns_count as u32 {
            let e = NsEntry {
                ns_id: le32(b, at),
                flags: le16(b, at + 4),
                end_offset: le64(b, at + 8),
                end: NsEnd {
                    doc_count: le64(b, at + 16),
                    raw_bytes: le64(b, at + 24),
                    frames: le64(b, at + 32),
                    digest: le64(b, at + 40),
                },
            };
            if e.ns_id != i {
                return Err(format!("namespace entry {i} has ns_id {}", e.ns_id));
            }
            if le16(b, at + 6) != 0 {
                return Err(format!("namespace entry {i}: reserved field is not 0"));
            }
            namespaces.push(e);
            at += NS_ENTRY_LEN;
        }
        let mut frames = Vec::with_capacity(frame_count as usize);
        let mut prev: Option<(u32, u32)> = None;
        for i in 0..frame_count {
            let f = FrameEntry {
                offset: le64(b, at),
                ns_id: le32(b, at + 8),
                seq: le32(b, at + 12),
                doc_count: le32(b, at + 16),
                raw_len: le32(b, at + 20),
            };
            if f.ns_id as u64 >= ns_count {
                return Err(format!("frame entry {i} names namespace {}", f.ns_id));
            }
            let expected_seq = match prev {
                Some((ns, seq)) if ns == f.ns_id => seq + 1,
                Some((ns, _)) if ns > f.ns_id => {
                    return Err(format!("frame entry {i} is out of namespace order"));
                }
                _ => 0,
            };
            if f.seq != expected_seq {
                return Err(format!(
                    "frame entry {i} of namespace {} has seq {}, expected {expected_seq}",
                    f.ns_id, f.seq
                ));
            }
            prev = Some((f.ns_id, f.seq));
            frames.push(f);
            at += FRAME_ENTRY_LEN;
        }
        debug_assert_eq!(at, tables);
        let summary = parse_summary(&b[tables..])?;
        Ok(Footer {
            namespaces,
            frames,
            summary,
        })
    }
}

fn summary_doc(s: &Summary) -> Vec<u8> {
    let mut d = doc! {
        "completed_at": s.completed_at.unwrap_or_else(bson::DateTime::now),
        "warnings": s.warnings.clone(),
    };
    if let Some(o) = s.oplog {
        d.insert("oplog", doc! {"start": o.start, "end": o.end});
    }
    for (k, v) in &s.extra {
        if !matches!(k.as_str(), "completed_at" | "warnings" | "oplog") {
            d.insert(k.clone(), v.clone());
        }
    }
    bson::serialize_to_vec(&d).expect("a summary document always serializes")
}

fn parse_summary(b: &[u8]) -> Result<Summary, String> {
    match crate::docs::declared_len(b) {
        Some(n) if n as i64 == b.len() as i64 => {}
        _ => return Err("summary is not exactly one BSON document".into()),
    }
    // The walk is depth-limited; the bson crate's decoding recurses without a limit.
    crate::docs::deep_check(b).map_err(|e| format!("summary: {e}"))?;
    let d = Document::from_reader(&mut &b[..]).map_err(|e| format!("summary: {e}"))?;
    let completed_at = match d.get("completed_at") {
        Some(Bson::DateTime(t)) => Some(*t),
        _ => return Err("summary: `completed_at` is missing or not a date".into()),
    };
    let warnings = match d.get("warnings") {
        Some(Bson::Array(a)) => a
            .iter()
            .map(|w| match w {
                Bson::String(s) => Ok(s.clone()),
                _ => Err("summary: `warnings` holds a non-string".to_string()),
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
        Some(_) => return Err("summary: `warnings` is not an array".into()),
    };
    let oplog = match d.get("oplog") {
        None => None,
        Some(Bson::Document(o)) => match (o.get("start"), o.get("end")) {
            (Some(Bson::Timestamp(start)), Some(Bson::Timestamp(end))) => Some(OplogRange {
                start: *start,
                end: *end,
            }),
            _ => return Err("summary: `oplog` needs `start` and `end` timestamps".into()),
        },
        Some(_) => return Err("summary: `oplog` is not a document".into()),
    };
    let extra = d
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "completed_at" | "warnings" | "oplog"))
        .collect();
    Ok(Summary {
        completed_at,
        oplog,
        warnings,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Footer {
        let fr = |offset, ns_id, seq| FrameEntry {
            offset,
            ns_id,
            seq,
            doc_count: 3,
            raw_len: 300,
        };
        Footer {
            namespaces: vec![
                NsEntry {
                    ns_id: 0,
                    flags: 0,
                    end_offset: 900,
                    end: NsEnd {
                        doc_count: 6,
                        raw_bytes: 600,
                        frames: 2,
                        digest: 42,
                    },
                },
                NsEntry {
                    ns_id: 1,
                    flags: 1,
                    end_offset: 1000,
                    end: NsEnd::default(),
                },
            ],
            frames: vec![fr(100, 0, 0), fr(500, 0, 1)],
            summary: Summary {
                completed_at: Some(bson::DateTime::from_millis(5)),
                oplog: Some(OplogRange {
                    start: bson::Timestamp {
                        time: 1,
                        increment: 2,
                    },
                    end: bson::Timestamp {
                        time: 3,
                        increment: 4,
                    },
                }),
                warnings: vec!["w".into()],
                extra: bson::doc! {"segment": {"count": 1_i64}},
            },
        }
    }

    #[test]
    fn round_trip_and_lookup() {
        let f = sample();
        let d = Footer::decode(&f.encode()).unwrap();
        assert_eq!(d, f);
        assert_eq!(d.frames_of(0).len(), 2);
        assert!(d.frames_of(1).is_empty());
    }

    #[test]
    fn refuses_counts_larger_than_payload() {
        let mut b = sample().encode();
        b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Footer::decode(&b).unwrap_err().contains("need more"));
        let mut b = sample().encode();
        // swap the two frame entries' seq
        let at = HEAD_LEN + 2 * NS_ENTRY_LEN + 12;
        b[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
        assert!(Footer::decode(&b).unwrap_err().contains("seq"));
    }

    #[test]
    fn deep_summary_is_an_error_not_a_stack_overflow() {
        let depth = 100_000;
        let mut b = sample().encode();
        b.pop();
        // the summary follows the two namespace and two frame entries of the sample
        let summary_at = HEAD_LEN + 2 * NS_ENTRY_LEN + 2 * FRAME_ENTRY_LEN;
        b.extend(b"\x03deep\0");
        for k in (1..=depth).rev() {
            b.extend(((5 + 8 * k) as i32).to_le_bytes());
            b.extend(b"\x03a\0");
        }
        b.extend([5, 0, 0, 0, 0]);
        b.extend(std::iter::repeat_n(0u8, depth + 1));
        let n = (b.len() - summary_at) as i32;
        b[summary_at..summary_at + 4].copy_from_slice(&n.to_le_bytes());
        let e = Footer::decode(&b).unwrap_err();
        assert!(e.contains("nesting deeper"), "{e}");
    }
}
