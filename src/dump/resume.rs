//! `oxidump dump --resume`: what an interrupted dump to the same OXD file already
//! wrote is kept.
//!
//! A dump writes its output under a temporary name beside the destination
//! (`.NAME.partial-PID-…`, see [`crate::output`]); a run that is killed leaves it
//! there, and so does a run stopped by a signal (it first writes out everything it
//! had). A dump with `--resume` reads the partial output of a dead run in order, as
//! far as it is intact, and keeps:
//!
//! - every namespace whose NS_END record it reached with status complete, and
//! - of a split collection the run had not finished, every `_id` range whose
//!   RANGE_END record (spec §4.5) it reached with all the frames it lists;
//!
//! provided this run would dump it under the same name and kind. Their frames are
//! copied into the new archive (checked, as every frame read is) and they are not
//! read from the server again; a collection with kept ranges is read again only in
//! its other ranges, split as the interrupted run split it. The oplog is never kept:
//! with `--oplog` the window runs from the interrupted run's start to this run's end.
//! The manifest's `source.resumed_from` then holds when the interrupted run started.
//!
//! A resume is refused when the interrupted run's options that decide what a dump
//! holds (`source.dump_options`) are not this run's.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::catalog::{Catalog, NsKind, NsStatus};
use crate::oxd::ranges::{RangeEnd, RangePlan, RangeRecord};
use crate::oxd::reader::OxdSource;
use crate::sink::{Sink, SinkError};
use crate::source::{Chunk, Source};

/// What an interrupted run left that this run keeps.
#[derive(Debug)]
pub struct Kept {
    /// The partial output it is copied from (renamed so that no other run removes it).
    pub path: PathBuf,
    /// When the interrupted run started (the first of them, when it resumed one too).
    pub created_at: Option<bson::DateTime>,
    /// Where the interrupted run's oplog window started (`--oplog`).
    pub oplog_start: Option<bson::Timestamp>,
    /// Whole namespaces: namespace id in the partial output → id in this run's catalog.
    pub map: HashMap<usize, usize>,
    /// Per namespace id of this run: (documents, raw bytes) kept, whole namespaces
    /// and finished ranges alike.
    pub counts: HashMap<usize, (u64, u64)>,
    /// Per namespace id of this run: the split collections kept in part.
    pub ranges: BTreeMap<usize, KeptRanges>,
}

/// The finished ranges kept of a split collection.
#[derive(Debug, Clone)]
pub struct KeptRanges {
    /// The namespace id in the partial output.
    pub old: usize,
    /// How the interrupted run split it (this run reads the other ranges the same way).
    pub plan: RangePlan,
    /// Range index → the `seq` of its frames in the partial output.
    pub done: BTreeMap<u32, Vec<u32>>,
}

impl Kept {
    /// Raw bytes kept.
    fn bytes(&self) -> u64 {
        self.counts.values().map(|c| c.1).sum()
    }

    /// Names of what is kept, for the report: `db.c` for a whole namespace,
    /// `db.c (2 of 5 ranges)` for part of one.
    pub fn names(&self, catalog: &Catalog) -> Vec<String> {
        let mut v: Vec<String> = self
            .map
            .values()
            .map(|&n| catalog.namespaces[n].full_name())
            .chain(self.ranges.iter().map(|(&n, r)| {
                format!(
                    "{} ({} of {} ranges)",
                    catalog.namespaces[n].full_name(),
                    r.done.len(),
                    r.plan.len()
                )
            }))
            .collect();
        v.sort();
        v
    }
}

/// Why a resume is refused.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The interrupted run selected other data.
    #[error(
        "refusing to resume the interrupted dump in {}: it was made with {}, this dump with {}; run it with the same options, or without --resume to dump everything again",
        path.display(), show(was), show(now)
    )]
    Options {
        /// The partial output.
        path: PathBuf,
        /// Its options.
        was: String,
        /// This run's.
        now: String,
    },
    /// The interrupted run did not record its options.
    #[error(
        "refusing to resume the interrupted dump in {}: it does not record the options it was made with (an older oxidump wrote it); run without --resume to dump everything again",
        path.display()
    )]
    Unknown {
        /// The partial output.
        path: PathBuf,
    },
}

fn show(options: &str) -> String {
    if options.is_empty() {
        "no selecting options (a full dump)".into()
    } else {
        format!("`{options}`")
    }
}

/// What a partial output holds, as far as it is intact.
struct Scanned {
    catalog: Catalog,
    /// Namespaces ended complete: (documents, raw bytes).
    ended: HashMap<usize, (u64, u64)>,
    /// Frames delivered intact, by (namespace, seq): (documents, raw bytes).
    frames: HashMap<(usize, u32), (u64, u64)>,
    /// Split collections: their plan.
    plans: HashMap<usize, RangePlan>,
    /// Finished ranges: (namespace, range, what its record lists).
    range_ends: Vec<(usize, u32, RangeEnd)>,
}

fn scan(path: &Path) -> Option<Scanned> {
    let mut s = OxdSource::open(path).ok()?;
    let catalog = s.catalog().clone();
    let mut seen: HashMap<usize, (u64, u64)> = HashMap::new();
    let mut seqs: HashMap<usize, u32> = HashMap::new();
    let mut frames = HashMap::new();
    let mut ended = HashMap::new();
    // Intact up to the cut (or the first damage): what comes after is not kept.
    while let Ok(Some(c)) = s.next_chunk() {
        match c {
            Chunk::Docs { ns, data, count } => {
                let e = seen.entry(ns).or_default();
                e.0 += count;
                e.1 += data.len() as u64;
                let q = seqs.entry(ns).or_default();
                frames.insert((ns, *q), (count, data.len() as u64));
                *q += 1;
            }
            Chunk::End {
                ns,
                status: NsStatus::Complete,
            } => {
                ended.insert(ns, seen.get(&ns).copied().unwrap_or_default());
            }
            Chunk::End { .. } => {}
        }
    }
    let mut plans = HashMap::new();
    let mut range_ends = Vec::new();
    for r in s.range_records() {
        match r {
            RangeRecord::Plan { ns, plan } => {
                plans.insert(*ns, plan.clone());
            }
            RangeRecord::End { ns, range, end } => range_ends.push((*ns, *range, end.clone())),
        }
    }
    Some(Scanned {
        catalog,
        ended,
        frames,
        plans,
        range_ends,
    })
}

/// What of `sc` this run (`catalog`) keeps; `path` is left empty.
fn keep(sc: &Scanned, catalog: &Catalog) -> Kept {
    let same = |o: usize| -> Option<usize> {
        let on = sc.catalog.namespaces.get(o)?;
        if !on.has_data() || on.kind == NsKind::Oplog {
            return None;
        }
        catalog
            .namespaces
            .iter()
            .position(|n| n.full_name() == on.full_name() && n.kind == on.kind)
    };
    let mut map = HashMap::new();
    let mut counts = HashMap::new();
    for (&o, &c) in &sc.ended {
        if let Some(n) = same(o) {
            map.insert(o, n);
            counts.insert(n, c);
        }
    }
    let mut ranges = BTreeMap::new();
    for (&o, plan) in &sc.plans {
        if sc.ended.contains_key(&o) {
            continue;
        }
        let Some(n) = same(o) else {
            continue;
        };
        let mut done = BTreeMap::new();
        let (mut docs, mut bytes) = (0, 0);
        let mut claimed = std::collections::HashSet::new();
        for (ns, range, end) in &sc.range_ends {
            if *ns != o || *range as usize >= plan.len() || done.contains_key(range) {
                continue;
            }
            // Every frame it lists was read intact, belongs to no other range, and
            // the totals agree.
            let mut got = Some((0, 0));
            for q in &end.frames {
                got = match (got, sc.frames.get(&(o, *q))) {
                    (Some((d, b)), Some((fd, fb))) if !claimed.contains(q) => {
                        Some((d + fd, b + fb))
                    }
                    _ => None,
                };
            }
            if got == Some((end.docs, end.bytes)) {
                claimed.extend(end.frames.iter().copied());
                done.insert(*range, end.frames.clone());
                docs += end.docs;
                bytes += end.bytes;
            }
        }
        if !done.is_empty() {
            counts.insert(n, (docs, bytes));
            ranges.insert(
                n,
                KeptRanges {
                    old: o,
                    plan: plan.clone(),
                    done,
                },
            );
        }
    }
    Kept {
        path: PathBuf::new(),
        created_at: sc
            .catalog
            .source
            .resumed_from
            .or(sc.catalog.source.created_at),
        oplog_start: sc.catalog.source.oplog_start,
        map,
        counts,
        ranges,
    }
}

/// Finds the partial output of a dead run to `dest` made with `options` (this run's,
/// see [`super::selection_options`]) that keeps the most of `catalog` (this run's),
/// renames it out of the way of leftover removal, and says what it keeps. `None` when
/// there is none, or nothing in it can be kept; refused when the only partial outputs
/// there were made with other options.
pub fn take(dest: &Path, catalog: &Catalog, options: &str) -> Result<Option<Kept>, ResumeError> {
    let mut best: Option<Kept> = None;
    let mut matched = false;
    let mut refused = None;
    for p in crate::output::dead_leftovers(dest) {
        if !p.is_file() {
            continue;
        }
        let Some(sc) = scan(&p) else {
            continue;
        };
        match &sc.catalog.source.dump_options {
            Some(o) if o == options => matched = true,
            Some(o) => {
                refused.get_or_insert(ResumeError::Options {
                    path: p.clone(),
                    was: o.clone(),
                    now: options.to_string(),
                });
                continue;
            }
            None => {
                refused.get_or_insert(ResumeError::Unknown { path: p.clone() });
                continue;
            }
        }
        let k = Kept {
            path: p,
            ..keep(&sc, catalog)
        };
        if best.as_ref().is_none_or(|b| k.bytes() > b.bytes()) {
            best = Some(k);
        }
    }
    if !matched && let Some(r) = refused {
        return Err(r);
    }
    let Some(mut k) = best else {
        return Ok(None);
    };
    if k.map.is_empty() && k.ranges.is_empty() {
        return Ok(None);
    }
    // Under this process's id: removal of dead runs' leftovers leaves it alone, and
    // should this run die too, the next one finds it again.
    let kept = crate::output::own_leftover_name(dest, "resume");
    if std::fs::rename(&k.path, &kept).is_err() {
        return Ok(None);
    }
    k.path = kept;
    Ok(Some(k))
}

fn again(e: impl std::fmt::Display) -> SinkError {
    SinkError::Misuse(format!("reading the interrupted run's output again: {e}"))
}

/// Copies what is kept from the partial output into `sink` (under this run's
/// namespace ids): the kept namespaces' frames and end records, and of the split
/// collections kept in part their plan and their finished ranges. Stops once all of
/// it is copied (true), or early when `cancel` is set (false).
pub fn copy(kept: &Kept, sink: &mut dyn Sink, cancel: &AtomicBool) -> Result<bool, SinkError> {
    let mut s = OxdSource::open(&kept.path).map_err(again)?;
    // Frame (old namespace, seq) → (namespace, range) it is copied into.
    let mut owner: HashMap<(usize, u32), (usize, u32)> = HashMap::new();
    let mut frames_left: HashMap<(usize, u32), usize> = HashMap::new();
    for (&n, r) in &kept.ranges {
        sink.begin_ranges(n, &r.plan)?;
        for (&range, seqs) in &r.done {
            if seqs.is_empty() {
                sink.end_range(n, range)?;
                continue;
            }
            frames_left.insert((n, range), seqs.len());
            for &q in seqs {
                owner.insert((r.old, q), (n, range));
            }
        }
    }
    let mut left = kept.map.len() + owner.len();
    let mut seqs: HashMap<usize, u32> = HashMap::new();
    while left > 0 {
        if cancel.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match s.next_chunk().map_err(again)? {
            Some(Chunk::Docs { ns, data, count }) => {
                let q = seqs.entry(ns).or_default();
                let seq = *q;
                *q += 1;
                if let Some(&n) = kept.map.get(&ns) {
                    sink.write_docs(n, data, count)?;
                } else if let Some(&(n, range)) = owner.get(&(ns, seq)) {
                    sink.write_range_docs(n, range, data, count)?;
                    left -= 1;
                    let l = frames_left.get_mut(&(n, range)).expect("counted");
                    *l -= 1;
                    if *l == 0 {
                        sink.end_range(n, range)?;
                    }
                }
            }
            Some(Chunk::End { ns, status }) => {
                if let Some(&n) = kept.map.get(&ns) {
                    sink.end_namespace(n, &status)?;
                    left -= 1;
                }
            }
            None => {
                return Err(again(
                    "it ended before what was kept of it (it changed since it was read)",
                ));
            }
        }
    }
    Ok(true)
}
