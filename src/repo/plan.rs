//! Choosing what reaches a moment (`format-spec/repository-v1.md` §8): the newest
//! snapshot whose window holds it, and the segments from that snapshot's consistent
//! point up to the moment. Nothing is written; a moment that cannot be reached is
//! refused with the windows that can.

use std::path::PathBuf;

use bson::Timestamp;
use serde::Serialize;

use super::chain::{self, Chain, Window};
use super::{Repo, RepoError, RollbackRecord, SnapshotInfo};
use crate::oplog::entry::show_ts;
use crate::oplog::replay::Bound;

/// The base and the segments of a restore to a moment.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The snapshot restored first.
    pub snapshot: SnapshotInfo,
    /// The window it opens.
    pub window: Window,
    /// The segments replayed after its own window, in order.
    pub segments: Vec<PathBuf>,
    /// Entries in those segments (all of them; the boundary cuts the last).
    pub segment_entries: u64,
}

/// The timestamp used to choose a base for `until`: a wall-clock time with a fraction
/// counts as the start of its second (the replay cuts it exactly).
fn plan_ts(until: Bound) -> Timestamp {
    match until {
        Bound::Ts(t) => t,
        Bound::Wall(w) => Timestamp {
            time: u32::try_from(w.timestamp_millis().max(0) / 1000).unwrap_or(u32::MAX),
            increment: 0,
        },
    }
}

fn reachable(windows: &[Window]) -> String {
    if windows.is_empty() {
        return "the repository has no snapshot".into();
    }
    let list: Vec<String> = windows.iter().map(Window::show).collect();
    format!("reachable: {}", list.join("; "))
}

/// Plans a restore of `repo` to `until`, from the snapshot named `snapshot` or the
/// newest one whose window holds `until`.
pub fn plan(repo: &Repo, until: Bound, snapshot: Option<&str>) -> Result<Plan, RepoError> {
    let (snapshots, _) = repo.snapshots()?;
    let (gaps, _) = repo.gaps()?;
    let (rollbacks, _) = repo.rollbacks()?;
    let chain = chain::analyse(repo.segments()?, &gaps, &rollbacks);
    plan_in(&snapshots, &chain, &rollbacks, until, snapshot)
}

/// [`plan`] over what was read.
pub fn plan_in(
    snapshots: &[SnapshotInfo],
    chain: &Chain,
    rollbacks: &[RollbackRecord],
    until: Bound,
    snapshot: Option<&str>,
) -> Result<Plan, RepoError> {
    let windows = chain::windows(snapshots, chain);
    let t = plan_ts(until);
    let pick = match snapshot {
        Some(name) => {
            let i = snapshots
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| {
                    RepoError::NoSnapshot(format!(
                        "no snapshot named {name:?}; {}",
                        reachable(&windows)
                    ))
                })?;
            if !windows[i].contains(t) {
                return Err(RepoError::Unreachable(format!(
                    "{} is not reachable from snapshot {name}, whose window is {} .. {}; {}",
                    show_ts(t),
                    show_ts(windows[i].from),
                    show_ts(windows[i].to),
                    reachable(&windows)
                )));
            }
            i
        }
        None => {
            let Some(i) = (0..snapshots.len()).rev().find(|&i| windows[i].contains(t)) else {
                let why = if snapshots.iter().all(|s| t < s.consistent) {
                    "it is before the consistent point of every snapshot".to_string()
                } else if let Some(r) = chain::rolled_back_at(t, rollbacks) {
                    format!(
                        "it lies in archived entries the replica set rolled back (after {} up to {}, recorded {}): the archive holds a history the set lost",
                        r.common.ts, r.archived.ts, r.detected_at
                    )
                } else if chain::newest(chain).is_none_or(|n| t > n.ts)
                    && windows.iter().all(|w| t > w.to)
                {
                    "it is after the newest archived oplog entry".to_string()
                } else {
                    let inside = chain
                        .breaks
                        .iter()
                        .find(|b| b.after < t && t < b.before)
                        .map(|b| {
                            format!(
                                "it lies in a gap of the oplog archive ({}: after {} and before {})",
                                b.kind.code(),
                                show_ts(b.after),
                                show_ts(b.before)
                            )
                        });
                    inside.unwrap_or_else(|| "no snapshot's window holds it".into())
                };
                return Err(RepoError::Unreachable(format!(
                    "--until {}: {why}; nothing was written; {}",
                    show_ts(t),
                    reachable(&windows)
                )));
            };
            i
        }
    };
    let window = windows[pick].clone();
    let base = &snapshots[pick];
    let mut segments = Vec::new();
    let mut segment_entries = 0;
    if let Some(r) = window.run
        && t > base.consistent
    {
        for &k in &chain.runs[r].segments {
            let (info, meta) = &chain.segments[k];
            if meta.last.ts <= base.consistent {
                continue;
            }
            segments.push(info.path.clone());
            segment_entries += meta.count;
            // A wall-clock bound may reach into the next second: keep one more.
            if meta.last.ts >= t && !matches!(until, Bound::Wall(_)) {
                break;
            }
            if meta.last.ts.time > t.time {
                break;
            }
        }
    }
    Ok(Plan {
        snapshot: base.clone(),
        window,
        segments,
        segment_entries,
    })
}

/// How many archived entries a restore along `p` replays after its snapshot: those of
/// its segments after the snapshot's consistent point, up to `until` (before it when
/// `exclusive`; a wall-clock time counts by the second of each entry's timestamp).
/// Reads the entries of the first and last segments only.
pub fn entries_to_replay(p: &Plan, until: Bound, exclusive: bool) -> Result<u64, RepoError> {
    let keep = |ts: Timestamp| {
        ts > p.snapshot.consistent
            && match until {
                Bound::Ts(t) if exclusive => ts < t,
                Bound::Ts(t) => ts <= t,
                Bound::Wall(w) => i64::from(ts.time) * 1000 <= w.timestamp_millis(),
            }
    };
    let mut n = 0;
    let last = p.segments.len().saturating_sub(1);
    for (i, path) in p.segments.iter().enumerate() {
        let (meta, _) = crate::oplog::segment::read_meta(path)?;
        if (i == 0 || i == last) && !(keep(meta.first.ts) && keep(meta.last.ts)) {
            n += crate::oplog::segment::read_optimes(path)?
                .into_iter()
                .filter(|o| keep(o.ts))
                .count() as u64;
        } else {
            n += meta.count;
        }
    }
    Ok(n)
}

/// The plan of a restore from a repository, for people: the base, each segment and
/// the entries replayed.
pub fn render(p: &Plan, replay_entries: u64) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "repository plan: base snapshot {} (consistent at {}, {} documents), window {}",
        p.snapshot.name,
        show_ts(p.snapshot.consistent),
        p.snapshot.documents,
        p.window.show()
    );
    let _ = writeln!(s, "  oplog segments: {}", p.segments.len());
    for path in &p.segments {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let _ = writeln!(s, "    {name}");
    }
    let _ = writeln!(
        s,
        "  archived entries to replay after the snapshot: {replay_entries} (of {} in those segments)",
        p.segment_entries
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::segment::{OpTime, SegmentMeta};
    use crate::repo::SegmentInfo;

    fn ts(time: u32) -> Timestamp {
        Timestamp { time, increment: 1 }
    }

    fn seg(first: u32, last: u32, prev: Option<u32>) -> SegmentInfo {
        let op = |t| OpTime { ts: ts(t), t: None };
        SegmentInfo {
            name: format!("{first}"),
            path: PathBuf::from(format!("seg{first}")),
            bytes: 1,
            named: Some((ts(first), ts(last))),
            meta: Ok(SegmentMeta {
                first: op(first),
                last: op(last),
                prev: prev.map(op),
                count: 2,
            }),
        }
    }

    fn snap(name: &str, consistent: u32) -> SnapshotInfo {
        SnapshotInfo {
            name: name.into(),
            path: PathBuf::from(name),
            started_at: None,
            window_start: ts(consistent - 1),
            consistent: ts(consistent),
            bytes: 1,
            documents: 0,
            namespaces: Vec::new(),
        }
    }

    #[test]
    fn picks_the_newest_base_and_the_segments_up_to_the_moment() {
        let chain = chain::analyse(
            vec![
                seg(1, 10, None),
                seg(11, 20, Some(10)),
                seg(21, 30, Some(20)),
            ],
            &[],
            &[],
        );
        let snaps = [snap("a", 5), snap("b", 15)];
        let p = plan_in(&snaps, &chain, &[], Bound::Ts(ts(25)), None).expect("plan");
        assert_eq!(p.snapshot.name, "b");
        assert_eq!(
            p.segments,
            vec![PathBuf::from("seg11"), PathBuf::from("seg21")]
        );
        let p = plan_in(&snaps, &chain, &[], Bound::Ts(ts(12)), None).expect("plan");
        assert_eq!(p.snapshot.name, "a");
        assert_eq!(
            p.segments,
            vec![PathBuf::from("seg1"), PathBuf::from("seg11")]
        );
        let p = plan_in(&snaps, &chain, &[], Bound::Ts(ts(25)), Some("a")).expect("forced");
        assert_eq!(p.segments.len(), 3);
        // The consistent point itself needs no segment.
        let p = plan_in(&snaps, &chain, &[], Bound::Ts(ts(15)), None).expect("plan");
        assert!(p.segments.is_empty());
    }

    #[test]
    fn unreachable_moments_are_refused_naming_the_windows() {
        let gap = crate::repo::GapRecord {
            after: crate::repo::GapOpTime {
                ts: "10:1".into(),
                t: None,
            },
            before: "20:1".into(),
            detected_at: String::new(),
            reason: String::new(),
        };
        let chain = chain::analyse(vec![seg(1, 10, None), seg(21, 30, None)], &[gap], &[]);
        let snaps = [snap("a", 5), snap("b", 25)];
        let before = plan_in(&snaps, &chain, &[], Bound::Ts(ts(3)), None).unwrap_err();
        assert!(
            before.to_string().contains("before the consistent point"),
            "{before}"
        );
        let inside = plan_in(&snaps, &chain, &[], Bound::Ts(ts(15)), None).unwrap_err();
        assert!(inside.to_string().contains("gap"), "{inside}");
        assert!(
            inside.to_string().contains("5:1 .. 10:1 (snapshot a)"),
            "{inside}"
        );
        let after = plan_in(&snaps, &chain, &[], Bound::Ts(ts(31)), None).unwrap_err();
        assert!(after.to_string().contains("after the newest"), "{after}");
        let forced = plan_in(&snaps, &chain, &[], Bound::Ts(ts(27)), Some("a")).unwrap_err();
        assert!(
            forced.to_string().contains("not reachable from snapshot a"),
            "{forced}"
        );
        assert!(plan_in(&snaps, &chain, &[], Bound::Ts(ts(27)), None).is_ok());
    }

    #[test]
    fn a_moment_among_rolled_back_entries_is_refused() {
        let op = |t| OpTime { ts: ts(t), t: None };
        let rb = crate::repo::RollbackRecord {
            archived: crate::repo::GapOpTime::of(op(20)),
            common: crate::repo::GapOpTime::of(op(14)),
            lost: 6,
            server_oldest: "1:1".into(),
            detected_at: "then".into(),
            reason: String::new(),
        };
        let rbs = [rb];
        let chain = chain::analyse(
            vec![seg(1, 10, None), seg(11, 20, Some(10)), seg(25, 30, None)],
            &[],
            &rbs,
        );
        let snaps = [snap("a", 5), snap("b", 26)];
        let p = plan_in(&snaps, &chain, &rbs, Bound::Ts(ts(14)), None).expect("plan");
        assert_eq!(p.snapshot.name, "a");
        let err = plan_in(&snaps, &chain, &rbs, Bound::Ts(ts(17)), None).unwrap_err();
        assert!(err.to_string().contains("rolled back"), "{err}");
        assert!(
            err.to_string().contains("5:1 .. 14:1 (snapshot a)"),
            "{err}"
        );
        let err = plan_in(&snaps, &chain, &rbs, Bound::Ts(ts(22)), None).unwrap_err();
        assert!(err.to_string().contains("gap"), "{err}");
        assert!(plan_in(&snaps, &chain, &rbs, Bound::Ts(ts(28)), None).is_ok());
    }
}
