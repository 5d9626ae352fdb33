//! The chain of segments (`format-spec/repository-v1.md` §6–§8): which segments link,
//! where the chain breaks and why, and the windows of time a restore can reach.

use bson::Timestamp;
use serde::Serialize;

use super::{GapRecord, RollbackRecord, SegmentInfo, SnapshotInfo, ser_ts};
use crate::oplog::entry::show_ts;
use crate::oplog::segment::{OpTime, SegmentMeta};

/// Why two consecutive segments do not link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakKind {
    /// A gap recorded by the archiver (the oplog rolled over while it was stopped).
    RecordedGap,
    /// Segments between the two are missing.
    Missing,
    /// The two overlap or are out of order.
    Order,
    /// The later one starts a chain with no recorded gap.
    Broken,
    /// The later one follows another history of the same timestamp (a rollback).
    Diverged,
    /// A rollback recorded by the archiver: the entries of the earlier run after its
    /// common point were lost by the replica set; the later one starts a new chain.
    Rollback,
}

impl BreakKind {
    /// The finding code of `verify`.
    pub fn code(self) -> &'static str {
        match self {
            BreakKind::RecordedGap => "gap",
            BreakKind::Missing => "chain-missing",
            BreakKind::Order => "chain-order",
            BreakKind::Broken => "chain-broken",
            BreakKind::Diverged => "chain-diverged",
            BreakKind::Rollback => "rollback",
        }
    }

    /// Whether the break was recorded by the archiver (not damage of the repository).
    pub fn is_recorded(self) -> bool {
        matches!(self, BreakKind::RecordedGap | BreakKind::Rollback)
    }
}

/// A place where the chain breaks: nothing is restorable strictly between `after`
/// and `before`.
#[derive(Debug, Clone, Serialize)]
pub struct Break {
    /// Why.
    pub kind: BreakKind,
    /// The last entry before the break.
    #[serde(serialize_with = "ser_ts")]
    pub after: Timestamp,
    /// The first entry after the break.
    #[serde(serialize_with = "ser_ts")]
    pub before: Timestamp,
    /// The segment before the break.
    pub after_segment: String,
    /// The segment after it.
    pub before_segment: String,
    /// What was found, for people.
    pub detail: String,
}

/// A maximal run of linked segments.
#[derive(Debug, Clone)]
pub struct Run {
    /// Indexes into [`Chain::segments`].
    pub segments: Vec<usize>,
    /// The entry before the first segment, when that segment has a link.
    pub prev: Option<Timestamp>,
    /// The first entry of the first segment.
    pub first: Timestamp,
    /// The newest entry a restore may reach: the last entry of the last segment, or,
    /// when a rollback was recorded after the run, its common point.
    pub last: Timestamp,
    /// The last entry of the last segment, when a recorded rollback cut the run short.
    pub rolled_back: Option<Timestamp>,
}

impl Run {
    /// Whether every entry after `t` up to [`Run::last`] is in this run.
    pub fn covers_after(&self, t: Timestamp) -> bool {
        (self.prev.is_some_and(|p| p <= t) || self.first <= t) && t <= self.last
    }
}

/// A moment that lies in archived entries a replica set rolled back: after the common
/// point of a recorded rollback, up to the lost entry it names.
pub fn rolled_back_at(t: Timestamp, rollbacks: &[RollbackRecord]) -> Option<&RollbackRecord> {
    rollbacks.iter().find(|r| {
        matches!((r.common_optime(), r.archived_optime()), (Some(c), Some(a)) if c.ts < t && t <= a.ts)
    })
}

/// The readable segments in chain order, their runs and the breaks between them.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// Readable segments whose name matches their content, in order.
    pub segments: Vec<(SegmentInfo, SegmentMeta)>,
    /// Segments that cannot be part of the chain, with the reason.
    pub damaged: Vec<(SegmentInfo, String)>,
    /// The runs, oldest first.
    pub runs: Vec<Run>,
    /// The breaks, oldest first (one between each two runs).
    pub breaks: Vec<Break>,
}

fn link(
    a: &SegmentMeta,
    b: &SegmentMeta,
    gaps: &[GapRecord],
    rollbacks: &[RollbackRecord],
) -> Option<(BreakKind, String)> {
    if b.first.ts <= a.last.ts {
        return Some((
            BreakKind::Order,
            format!(
                "it starts at {}, not after the previous segment's last entry {}",
                show_ts(b.first.ts),
                show_ts(a.last.ts)
            ),
        ));
    }
    match b.prev {
        Some(p) if p == a.last => None,
        Some(p) if p.ts == a.last.ts => Some((
            BreakKind::Diverged,
            format!(
                "it continues {} but the previous segment ends at {}: another history of the same moment",
                p.show(),
                a.last.show()
            ),
        )),
        Some(p) if p.ts > a.last.ts => Some((
            BreakKind::Missing,
            format!(
                "it continues {}, but the previous segment present ends at {}: the segments holding the entries after {} up to {} are missing",
                p.show(),
                a.last.show(),
                show_ts(a.last.ts),
                show_ts(p.ts)
            ),
        )),
        Some(p) => Some((
            BreakKind::Order,
            format!(
                "it continues {}, before the previous segment's last entry {}",
                p.show(),
                a.last.show()
            ),
        )),
        None => {
            if let Some(r) = rollbacks
                .iter()
                .find(|r| r.archived_optime() == Some(a.last))
            {
                Some((
                    BreakKind::Rollback,
                    format!(
                        "the replica set rolled back the {} archived entries after {} up to {}; archiving went on in a new chain at {}",
                        r.lost,
                        r.common.ts,
                        show_ts(a.last.ts),
                        show_ts(b.first.ts)
                    ),
                ))
            } else if gaps.iter().any(|g| g.after_optime() == Some(a.last)) {
                Some((
                    BreakKind::RecordedGap,
                    format!(
                        "the oplog rolled over while it was not archived: entries after {} and before {} may be lost",
                        show_ts(a.last.ts),
                        show_ts(b.first.ts)
                    ),
                ))
            } else {
                Some((
                    BreakKind::Broken,
                    "it starts a new chain but no gap was recorded after the previous segment"
                        .into(),
                ))
            }
        }
    }
}

/// Orders the segments and finds their runs and breaks. A run whose last entry a
/// recorded rollback names ends, for a restore, at the rollback's common point.
pub fn analyse(
    segments: Vec<SegmentInfo>,
    gaps: &[GapRecord],
    rollbacks: &[RollbackRecord],
) -> Chain {
    let mut chain = Chain::default();
    for s in segments {
        match &s.meta {
            Err(why) => {
                let why = why.clone();
                chain.damaged.push((s, why));
            }
            Ok(m) => {
                let m = *m;
                if s.named != Some((m.first.ts, m.last.ts)) {
                    let why = format!(
                        "its name does not match its entries {} .. {}",
                        show_ts(m.first.ts),
                        show_ts(m.last.ts)
                    );
                    chain.damaged.push((s, why));
                } else {
                    chain.segments.push((s, m));
                }
            }
        }
    }
    chain.segments.sort_by_key(|(_, m)| (m.first.ts, m.last.ts));
    for i in 0..chain.segments.len() {
        let m = chain.segments[i].1;
        let joined = i > 0 && {
            let (prev_info, prev) = &chain.segments[i - 1];
            match link(prev, &m, gaps, rollbacks) {
                None => true,
                Some((kind, detail)) => {
                    let cut = rollbacks
                        .iter()
                        .find(|r| r.archived_optime() == Some(prev.last))
                        .and_then(RollbackRecord::common_optime);
                    chain.breaks.push(Break {
                        kind,
                        after: match (kind, cut) {
                            (BreakKind::Rollback, Some(c)) => c.ts,
                            _ => prev.last.ts,
                        },
                        before: m.first.ts,
                        after_segment: prev_info.name.clone(),
                        before_segment: chain.segments[i].0.name.clone(),
                        detail,
                    });
                    false
                }
            }
        };
        if joined {
            let run = chain.runs.last_mut().expect("a run before");
            run.segments.push(i);
            run.last = m.last.ts;
        } else {
            chain.runs.push(Run {
                segments: vec![i],
                prev: m.prev.map(|p| p.ts),
                first: m.first.ts,
                last: m.last.ts,
                rolled_back: None,
            });
        }
    }
    for run in &mut chain.runs {
        let Some(&k) = run.segments.last() else {
            continue;
        };
        let end = chain.segments[k].1.last;
        if let Some(c) = rollbacks
            .iter()
            .find(|r| r.archived_optime() == Some(end))
            .and_then(RollbackRecord::common_optime)
        {
            run.rolled_back = Some(end.ts);
            run.last = c.ts;
        }
    }
    chain
}

/// The moments reachable from one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// The snapshot's name.
    pub snapshot: String,
    /// Its consistent point: the earliest moment.
    #[serde(serialize_with = "ser_ts")]
    pub from: Timestamp,
    /// The newest moment reachable without crossing a break.
    #[serde(serialize_with = "ser_ts")]
    pub to: Timestamp,
    /// The run of segments that extends it (index into [`Chain::runs`]).
    #[serde(skip)]
    pub run: Option<usize>,
}

impl Window {
    /// Whether `t` is in the window.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t <= self.to
    }

    /// `from .. to (snapshot NAME)`.
    pub fn show(&self) -> String {
        format!(
            "{} .. {} (snapshot {})",
            show_ts(self.from),
            show_ts(self.to),
            self.snapshot
        )
    }
}

/// The window of each snapshot.
pub fn windows(snapshots: &[SnapshotInfo], chain: &Chain) -> Vec<Window> {
    snapshots
        .iter()
        .map(|s| {
            let run = chain.runs.iter().position(|r| r.covers_after(s.consistent));
            Window {
                snapshot: s.name.clone(),
                from: s.consistent,
                to: run.map_or(s.consistent, |r| chain.runs[r].last),
                run,
            }
        })
        .collect()
}

/// The newest archived entry.
pub fn newest(chain: &Chain) -> Option<OpTime> {
    chain.segments.last().map(|(_, m)| m.last)
}

/// The newest moment a restore may reach from any run.
pub fn newest_reachable(chain: &Chain) -> Option<Timestamp> {
    chain.runs.iter().map(|r| r.last).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn ts(time: u32) -> Timestamp {
        Timestamp { time, increment: 1 }
    }

    fn op(time: u32) -> OpTime {
        OpTime {
            ts: ts(time),
            t: Some(1),
        }
    }

    fn seg(first: u32, last: u32, prev: Option<u32>) -> SegmentInfo {
        SegmentInfo {
            name: format!("{first}-{last}"),
            path: PathBuf::from("x"),
            bytes: 1,
            named: Some((ts(first), ts(last))),
            meta: Ok(SegmentMeta {
                first: op(first),
                last: op(last),
                prev: prev.map(op),
                count: 1,
            }),
        }
    }

    fn snap(consistent: u32) -> SnapshotInfo {
        SnapshotInfo {
            name: format!("s{consistent}"),
            path: PathBuf::from("s"),
            started_at: None,
            window_start: ts(consistent - 1),
            consistent: ts(consistent),
            bytes: 1,
            documents: 0,
            namespaces: Vec::new(),
        }
    }

    #[test]
    fn linked_segments_make_one_run() {
        let c = analyse(
            vec![seg(1, 5, None), seg(6, 9, Some(5)), seg(10, 20, Some(9))],
            &[],
            &[],
        );
        assert!(c.breaks.is_empty());
        assert_eq!(c.runs.len(), 1);
        let w = windows(&[snap(3), snap(25)], &c);
        assert_eq!((w[0].from, w[0].to), (ts(3), ts(20)));
        assert_eq!((w[1].from, w[1].to), (ts(25), ts(25)), "after the archive");
    }

    #[test]
    fn every_break_is_named() {
        let missing = analyse(vec![seg(1, 5, None), seg(10, 20, Some(9))], &[], &[]);
        assert_eq!(missing.breaks[0].kind, BreakKind::Missing);
        assert_eq!(missing.runs.len(), 2);
        let order = analyse(vec![seg(1, 5, None), seg(4, 20, Some(3))], &[], &[]);
        assert_eq!(order.breaks[0].kind, BreakKind::Order);
        let broken = analyse(vec![seg(1, 5, None), seg(10, 20, None)], &[], &[]);
        assert_eq!(broken.breaks[0].kind, BreakKind::Broken);
        let gap = GapRecord {
            after: super::super::GapOpTime {
                ts: "5:1".into(),
                t: Some(1),
            },
            before: "10:1".into(),
            detected_at: String::new(),
            reason: String::new(),
        };
        let recorded = analyse(vec![seg(1, 5, None), seg(10, 20, None)], &[gap], &[]);
        assert_eq!(recorded.breaks[0].kind, BreakKind::RecordedGap);
        let w = windows(&[snap(3), snap(12)], &recorded);
        assert_eq!(w[0].to, ts(5), "a window stops at a gap");
        assert_eq!(w[1].to, ts(20));
        let mut diverged = seg(6, 9, Some(5));
        if let Ok(m) = &mut diverged.meta {
            m.prev = Some(OpTime {
                ts: ts(5),
                t: Some(2),
            });
        }
        let d = analyse(vec![seg(1, 5, None), diverged], &[], &[]);
        assert_eq!(d.breaks[0].kind, BreakKind::Diverged);
    }

    #[test]
    fn a_recorded_rollback_cuts_the_run_at_its_common_point() {
        let rb = RollbackRecord {
            archived: super::super::GapOpTime::of(op(9)),
            common: super::super::GapOpTime::of(op(7)),
            lost: 2,
            server_oldest: "1:1".into(),
            detected_at: String::new(),
            reason: String::new(),
        };
        let rbs = [rb];
        let c = analyse(
            vec![seg(1, 5, None), seg(6, 9, Some(5)), seg(12, 20, None)],
            &[],
            &rbs,
        );
        assert_eq!(c.breaks.len(), 1);
        assert_eq!(c.breaks[0].kind, BreakKind::Rollback);
        assert!(c.breaks[0].kind.is_recorded());
        assert_eq!((c.breaks[0].after, c.breaks[0].before), (ts(7), ts(12)));
        assert_eq!(c.runs[0].last, ts(7));
        assert_eq!(c.runs[0].rolled_back, Some(ts(9)));
        let w = windows(&[snap(3), snap(8), snap(14)], &c);
        assert_eq!(w[0].to, ts(7), "a window stops at the common point");
        assert_eq!(
            w[1].to,
            ts(8),
            "a snapshot of the lost history reaches only itself"
        );
        assert_eq!(w[2].to, ts(20));
        assert!(rolled_back_at(ts(8), &rbs).is_some());
        assert!(rolled_back_at(ts(7), &rbs).is_none());
        assert!(rolled_back_at(ts(10), &rbs).is_none());
        // Without a later segment the run is cut all the same.
        let c = analyse(vec![seg(1, 5, None), seg(6, 9, Some(5))], &[], &rbs);
        assert!(c.breaks.is_empty());
        assert_eq!(newest_reachable(&c), Some(ts(7)));
    }

    #[test]
    fn a_name_that_lies_is_damage() {
        let mut s = seg(6, 9, Some(5));
        s.named = Some((ts(6), ts(8)));
        let c = analyse(vec![seg(1, 5, None), s], &[], &[]);
        assert_eq!(c.damaged.len(), 1);
        assert_eq!(c.segments.len(), 1);
    }
}
