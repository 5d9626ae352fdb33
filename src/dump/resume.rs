//! `oxidump dump --resume`: what an interrupted dump to the same OXD file already
//! wrote is kept.
//!
//! A dump writes its output under a temporary name beside the destination
//! (`.NAME.partial-PID-…`, see [`crate::output`]); a run that is killed leaves it
//! there. A dump with `--resume` reads the partial output of a dead run in order, as
//! far as it is intact, and keeps every namespace whose NS_END record it reached with
//! status complete and that the new run would dump under the same name and kind: their
//! frames are copied into the new archive (checked, as every frame read is) and they
//! are not read from the server again. Everything else is dumped as usual. The
//! manifest's `source.resumed_from` then holds when the interrupted run started.
//!
//! Kept are whole namespaces: a namespace the interrupted run had not ended is read
//! again from the start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, NsStatus};
use crate::oxd::reader::OxdSource;
use crate::source::{Chunk, Source};

/// What an interrupted run left that this run keeps.
#[derive(Debug)]
pub struct Kept {
    /// The partial output it is copied from (renamed so that no other run removes it).
    pub path: PathBuf,
    /// When the interrupted run started (the first of them, when it resumed one too).
    pub created_at: Option<bson::DateTime>,
    /// Namespace id in the partial output → namespace id in this run's catalog.
    pub map: HashMap<usize, usize>,
    /// Per namespace id of this run: (documents, raw bytes) kept.
    pub counts: HashMap<usize, (u64, u64)>,
}

/// Per namespace id: (documents, raw bytes).
type Counts = HashMap<usize, (u64, u64)>;

/// What a partial output holds: its catalog, and per namespace the documents and raw
/// bytes of the namespaces it ended complete.
fn scan(path: &Path) -> Option<(Catalog, Counts)> {
    let mut s = OxdSource::open(path).ok()?;
    let catalog = s.catalog().clone();
    let mut seen: HashMap<usize, (u64, u64)> = HashMap::new();
    let mut ended = HashMap::new();
    // Intact up to the cut (or the first damage): what comes after is not kept.
    while let Ok(Some(c)) = s.next_chunk() {
        match c {
            Chunk::Docs { ns, data, count } => {
                let e = seen.entry(ns).or_default();
                e.0 += count;
                e.1 += data.len() as u64;
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
    Some((catalog, ended))
}

/// Finds the partial output of a dead run to `dest` that keeps the most of
/// `catalog` (this run's), renames it out of the way of leftover removal, and says
/// what it keeps. `None` when there is none, or nothing in it can be kept.
pub fn take(dest: &Path, catalog: &Catalog) -> Option<Kept> {
    let mut best: Option<(PathBuf, HashMap<usize, usize>, Counts)> = None;
    let mut created_at = None;
    for p in crate::output::dead_leftovers(dest) {
        if !p.is_file() {
            continue;
        }
        let Some((old, ended)) = scan(&p) else {
            continue;
        };
        let mut map = HashMap::new();
        let mut counts = HashMap::new();
        for (&o, &c) in &ended {
            let Some(on) = old.namespaces.get(o) else {
                continue;
            };
            if !on.has_data() {
                continue;
            }
            if let Some(n) = catalog
                .namespaces
                .iter()
                .position(|n| n.full_name() == on.full_name() && n.kind == on.kind && n.has_data())
            {
                map.insert(o, n);
                counts.insert(n, c);
            }
        }
        if best.as_ref().is_none_or(|b| map.len() > b.1.len()) {
            created_at = old.source.resumed_from.or(old.source.created_at);
            best = Some((p, map, counts));
        }
    }
    let (path, map, counts) = best?;
    if map.is_empty() {
        return None;
    }
    // Under this process's id: removal of dead runs' leftovers leaves it alone, and
    // should this run die too, the next one finds it again.
    let kept = crate::output::own_leftover_name(dest, "resume");
    std::fs::rename(&path, &kept).ok()?;
    Some(Kept {
        path: kept,
        created_at,
        map,
        counts,
    })
}

/// Copies the kept namespaces' frames and end records from the partial output into
/// `sink` (under this run's namespace ids); stops once every kept namespace ended.
pub fn copy(kept: &Kept, sink: &mut dyn crate::sink::Sink) -> Result<(), crate::sink::SinkError> {
    let mut s = OxdSource::open(&kept.path).map_err(|e| {
        crate::sink::SinkError::Misuse(format!("reading the interrupted run's output again: {e}"))
    })?;
    let mut left = kept.map.len();
    while left > 0 {
        let c = s.next_chunk().map_err(|e| {
            crate::sink::SinkError::Misuse(format!(
                "reading the interrupted run's output again: {e}"
            ))
        })?;
        match c {
            Some(Chunk::Docs { ns, data, count }) => {
                if let Some(&n) = kept.map.get(&ns) {
                    sink.write_docs(n, data, count)?;
                }
            }
            Some(Chunk::End { ns, status }) => {
                if let Some(&n) = kept.map.get(&ns) {
                    sink.end_namespace(n, &status)?;
                    left -= 1;
                }
            }
            None => {
                return Err(crate::sink::SinkError::Misuse(
                    "the interrupted run's output ended before what was kept of it".into(),
                ));
            }
        }
    }
    Ok(())
}
