//! Replaying a captured oplog to a moment: the inputs (a dump's window, saved oplog
//! files), the boundary, the checks made before anything is written, and the pass
//! that feeds [`super::apply::Replayer`].
//!
//! Boundary rule: every unit whose commit timestamp is at or before `B` is applied
//! (inclusive); a unit is an entry, a mongod transaction at its commit entry, or a
//! SecantusDB transaction at its last statement. `--until-exclusive` applies the
//! units strictly before `B` instead, as mongorestore's `--oplogLimit`. An RFC 3339
//! time in whole seconds is `B = (seconds, 0)`, the state at the start of that second;
//! with a fraction, the replay stops before the first entry whose `wall` is at or
//! after it. A dump is fuzzy across its window, so the earliest moment it reaches is
//! its consistent point (the window's end).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use bson::{Document, RawDocumentBuf, Timestamp};
use mongodb::Client;
use serde::Serialize;
use tokio::sync::mpsc;

use super::apply::{ApplyError, ApplyOptions, ReplayCounts, Replayer, Scan, Selection};
use super::entry::{self, EntryError, show_ts};
use crate::catalog::NsKind;
use crate::oxd::reader::{Index, NsSource, OxdSource};
use crate::source::{Chunk, Source, SourceError};

/// Error of a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An input cannot be read.
    #[error("{path}: {what}")]
    Input {
        /// The input.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// An entry does not parse.
    #[error("{path}: {source}")]
    Entry {
        /// The input.
        path: PathBuf,
        /// The entry's error.
        source: EntryError,
    },
    /// The boundary cannot be reached from the inputs.
    #[error("{0}")]
    Unreachable(String),
    /// The boundary does not parse.
    #[error(
        "--until {0:?}: expected a BSON timestamp `seconds:increment` or an RFC 3339 time such as 2026-12-01T10:00:00Z"
    )]
    BadBound(String),
    /// Applying failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Where replay stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A BSON timestamp.
    Ts(Timestamp),
    /// A wall-clock time with a fraction of a second (milliseconds since the epoch).
    Wall(bson::DateTime),
}

/// Parses `seconds:increment` or an RFC 3339 time.
pub fn parse_bound(s: &str) -> Result<Bound, ReplayError> {
    if let Some((a, b)) = s.split_once(':')
        && let (Ok(time), Ok(increment)) = (a.parse::<u32>(), b.parse::<u32>())
    {
        return Ok(Bound::Ts(Timestamp { time, increment }));
    }
    let t = bson::DateTime::parse_rfc3339_str(s).map_err(|_| ReplayError::BadBound(s.into()))?;
    let ms = t.timestamp_millis();
    if ms < 0 {
        return Err(ReplayError::BadBound(s.into()));
    }
    if ms % 1000 == 0 {
        Ok(Bound::Ts(Timestamp {
            time: u32::try_from(ms / 1000).map_err(|_| ReplayError::BadBound(s.into()))?,
            increment: 0,
        }))
    } else {
        Ok(Bound::Wall(t))
    }
}

/// What to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// The dump whose captured window is replayed first (`None`: files only).
    pub dump: Option<PathBuf>,
    /// Saved oplogs replayed after the window (a mongodump `oplog.bson`, a
    /// `local.oplog.rs` dump, or an OXD file holding an oplog namespace).
    pub files: Vec<PathBuf>,
    /// Where to stop (`None`: the end of the inputs).
    pub until: Option<Bound>,
    /// Apply the units strictly before `until` instead of at or before it.
    pub exclusive: bool,
    /// How to write.
    pub apply: ApplyOptions,
    /// Which namespaces, under which names.
    pub selection: Selection,
}

/// One input, scanned.
#[derive(Debug, Clone, Serialize)]
pub struct InputRange {
    /// The file.
    pub path: PathBuf,
    /// Its first entry (`seconds:increment`).
    pub first: Option<String>,
    /// Its last entry.
    pub last: Option<String>,
    /// Entries in it (those newer than the inputs before it).
    pub entries: u64,
}

/// The checks made before anything is written, and what will be replayed.
#[derive(Debug, Clone)]
pub struct Prepared {
    opts: ReplayOptions,
    scan: Scan,
    /// The dump's consistent point (its window's end), if a dump is replayed.
    pub consistent: Option<Timestamp>,
    /// The resolved boundary: the newest `ts` applied.
    pub stop: Option<Timestamp>,
    /// The inputs.
    pub inputs: Vec<InputRange>,
}

/// What a replay did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReplayReport {
    /// The inputs and the ranges they cover.
    pub inputs: Vec<InputRange>,
    /// The dump's consistent point.
    pub consistent_point: Option<String>,
    /// The boundary asked for, as given.
    pub until: Option<String>,
    /// Whether the boundary was exclusive.
    pub exclusive: bool,
    /// Entries in the inputs up to the boundary, per `kind namespace` (dry run).
    pub planned: BTreeMap<String, u64>,
    /// Entries that will be refused (dry run).
    pub refused: Vec<String>,
    /// What was applied and skipped.
    pub counts: ReplayCounts,
    /// Secondary indexes built after the replay, per target namespace.
    pub indexes: BTreeMap<String, Vec<String>>,
    /// Indexes that failed to build (namespace, index, reason).
    pub index_errors: Vec<(String, String, String)>,
}

/// A reader of oplog entries from one input.
type Entries = Box<dyn Iterator<Item = Result<RawDocumentBuf, ReplayError>> + Send>;

fn input_err(path: &Path, what: impl std::fmt::Display) -> ReplayError {
    ReplayError::Input {
        path: path.to_path_buf(),
        what: what.to_string(),
    }
}

/// Entries from a [`Source`]: the documents of its oplog namespaces.
struct SourceEntries {
    src: Box<dyn Source>,
    path: PathBuf,
    oplog: Vec<bool>,
    buf: std::vec::IntoIter<RawDocumentBuf>,
    done: bool,
}

impl SourceEntries {
    /// The oplog entries of `src`: the documents of the namespaces `oplog` marks, or of
    /// every oplog namespace its catalog lists.
    fn new(src: Box<dyn Source>, path: &Path, oplog: Option<Vec<bool>>) -> Box<SourceEntries> {
        let oplog = oplog.unwrap_or_else(|| {
            src.catalog()
                .namespaces
                .iter()
                .map(|n| n.kind == NsKind::Oplog)
                .collect()
        });
        Box::new(SourceEntries {
            src,
            path: path.to_path_buf(),
            oplog,
            buf: Vec::new().into_iter(),
            done: false,
        })
    }
}

impl Iterator for SourceEntries {
    type Item = Result<RawDocumentBuf, ReplayError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(d) = self.buf.next() {
                return Some(Ok(d));
            }
            if self.done {
                return None;
            }
            match self.src.next_chunk() {
                Ok(Some(Chunk::Docs { ns, data, .. })) if self.oplog.get(ns) == Some(&true) => {
                    let mut docs = Vec::new();
                    for d in crate::docs::DocIter::new(&data) {
                        match d {
                            Ok(d) => match RawDocumentBuf::from_bytes(d.to_vec()) {
                                Ok(r) => docs.push(r),
                                Err(e) => return Some(Err(input_err(&self.path, e))),
                            },
                            Err(e) => return Some(Err(input_err(&self.path, e))),
                        }
                    }
                    self.buf = docs.into_iter();
                }
                Ok(Some(_)) => {}
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(input_err(&self.path, e)));
                }
            }
        }
    }
}

/// Entries of a plain file of concatenated BSON documents (`oplog.bson`).
struct BsonFile {
    r: BufReader<File>,
    path: PathBuf,
    done: bool,
}

impl Iterator for BsonFile {
    type Item = Result<RawDocumentBuf, ReplayError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        match crate::docs::read_doc(&mut self.r, &mut buf) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => Some(RawDocumentBuf::from_bytes(buf).map_err(|e| input_err(&self.path, e))),
            Err(e) => {
                self.done = true;
                Some(Err(input_err(&self.path, e)))
            }
        }
    }
}

fn source_err(e: SourceError) -> String {
    e.to_string()
}

/// An input's oplog, the window recorded with it, and the entry it continues (a
/// repository segment's link to the segment before it).
type Opened = (Entries, Option<(Timestamp, Timestamp)>, Option<Timestamp>);

/// Opens the oplog of an input, and the window and link recorded with it (OXD only).
fn open_entries(path: &Path) -> Result<Opened, ReplayError> {
    let mut f = File::open(path).map_err(|e| input_err(path, e))?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head).map_err(|e| input_err(path, e))?;
    drop(f);
    if n == 8 && head == crate::oxd::header::MAGIC {
        let mut f = File::open(path).map_err(|e| input_err(path, e))?;
        if let Ok(index) = Index::open(&mut f) {
            let window = index.footer.summary.oplog.map(|o| (o.start, o.end));
            let continues = super::segment::SegmentMeta::from_summary(&index.footer.summary)
                .ok()
                .and_then(|m| m.prev)
                .map(|p| p.ts);
            let Some(ns) = index
                .catalog
                .namespaces
                .iter()
                .position(|n| n.kind == NsKind::Oplog)
            else {
                return Ok((Box::new(std::iter::empty()), window, continues));
            };
            let src = NsSource::new(path, &index, ns);
            let oplog = vec![true; index.catalog.namespaces.len()];
            return Ok((
                SourceEntries::new(Box::new(src), path, Some(oplog)),
                window,
                continues,
            ));
        }
        // Incomplete: read in order; no window is known.
        let src = OxdSource::open(path).map_err(|e| input_err(path, source_err(e)))?;
        return Ok((SourceEntries::new(Box::new(src), path, None), None, None));
    }
    if n >= 4 && head[..4] == crate::input::ARCHIVE_MAGIC {
        let f = File::open(path).map_err(|e| input_err(path, e))?;
        let src = crate::mongodump::archive::ArchiveReader::new(BufReader::new(f), path)
            .map_err(|e| input_err(path, e))?;
        return Ok((SourceEntries::new(Box::new(src), path, None), None, None));
    }
    let f = File::open(path).map_err(|e| input_err(path, e))?;
    Ok((
        Box::new(BsonFile {
            r: BufReader::with_capacity(1 << 20, f),
            path: path.to_path_buf(),
            done: false,
        }),
        None,
        None,
    ))
}

fn inputs_of(opts: &ReplayOptions) -> Vec<PathBuf> {
    opts.dump.iter().chain(opts.files.iter()).cloned().collect()
}

/// Whether an entry at `ts` is within the boundary.
fn admits(stop: Option<Timestamp>, exclusive_at: Option<Timestamp>, ts: Timestamp) -> bool {
    match (stop, exclusive_at) {
        (_, Some(x)) => ts < x,
        (Some(s), None) => ts <= s,
        (None, None) => true,
    }
}

/// Reads every input once: parses every entry, finds the range each covers, checks
/// that they join without a gap and that the boundary lies within what they reach.
/// Nothing is written.
pub fn prepare(opts: ReplayOptions) -> Result<Prepared, ReplayError> {
    let mut scan = Scan::default();
    let mut consistent = None;
    let mut inputs = Vec::new();
    let mut wall_stop: Option<Timestamp> = None;
    let mut wall_cut = false;
    for (k, path) in inputs_of(&opts).iter().enumerate() {
        let (entries, window, continues) = open_entries(path)?;
        let is_dump = k == 0 && opts.dump.is_some();
        if is_dump {
            let Some((_, end)) = window else {
                return Err(input_err(
                    path,
                    "the backup holds no complete oplog window (dump it with --oplog, and let the dump finish)",
                ));
            };
            consistent = Some(end);
        }
        let before = scan.last;
        let mut range = InputRange {
            path: path.clone(),
            first: None,
            last: None,
            entries: 0,
        };
        let mut first_of_file = None;
        for raw in entries {
            let raw = raw?;
            let ts = match raw.get_timestamp("ts") {
                Ok(t) => t,
                Err(_) => {
                    return Err(ReplayError::Entry {
                        path: path.clone(),
                        source: entry::parse(&raw).expect_err("an entry without ts"),
                    });
                }
            };
            first_of_file.get_or_insert(ts);
            if let Some(Bound::Wall(t)) = opts.until
                && !wall_cut
                && scan.last.is_none_or(|l| ts > l)
            {
                match raw.get_datetime("wall") {
                    Ok(w) if w >= t => wall_cut = true,
                    _ => wall_stop = Some(ts),
                }
            }
            let fresh = scan.add(&raw).map_err(|source| ReplayError::Entry {
                path: path.clone(),
                source,
            })?;
            if fresh {
                range.entries += 1;
                range.first.get_or_insert(show_ts(ts));
                range.last = Some(show_ts(ts));
            }
        }
        // A later input must start at or before the end of the ones before it, or
        // be a segment that continues exactly that entry.
        if let (Some(prev), Some(first)) = (before, first_of_file)
            && first > prev
            && continues != Some(prev)
        {
            return Err(ReplayError::Unreachable(format!(
                "{} starts at {} but the oplog read before it ends at {}: the entries between them may be missing, so no state after {} can be reached",
                path.display(),
                show_ts(first),
                show_ts(prev),
                show_ts(prev)
            )));
        }
        inputs.push(range);
    }
    // The newest moment the inputs reach: their last entry, or the dump's consistent
    // point when no entry follows it (a timestamp may be taken by a write that logs
    // nothing, such as an aborted transaction's).
    let top = scan.last.max(consistent);
    let reach = |scan: &Scan| {
        format!(
            "the inputs reach {} .. {}",
            consistent
                .or(scan.first)
                .map_or("(nothing)".to_string(), show_ts),
            top.map_or("(nothing)".to_string(), show_ts)
        )
    };
    let stop = match opts.until {
        None => scan.last,
        Some(Bound::Wall(_)) => wall_stop,
        Some(Bound::Ts(t)) if opts.exclusive => {
            // The newest entry strictly before t is reached; checked below on t.
            let earliest = consistent.or(scan.first);
            if earliest.is_some_and(|e| t <= e) {
                return Err(ReplayError::Unreachable(format!(
                    "--until {} --until-exclusive stops before the earliest reachable moment; {}",
                    show_ts(t),
                    reach(&scan)
                )));
            }
            if top.is_some_and(|l| t > l) {
                return Err(ReplayError::Unreachable(format!(
                    "--until {} is after the last oplog entry; {}",
                    show_ts(t),
                    reach(&scan)
                )));
            }
            Some(t)
        }
        Some(Bound::Ts(t)) => Some(t),
    };
    let exclusive_at = match (opts.until, opts.exclusive) {
        (Some(Bound::Ts(t)), true) => Some(t),
        _ => None,
    };
    if exclusive_at.is_none() && opts.until.is_some() {
        let Some(b) = stop else {
            return Err(ReplayError::Unreachable(format!(
                "--until is before the first oplog entry; {}",
                reach(&scan)
            )));
        };
        if let Some(c) = consistent
            && b < c
        {
            return Err(ReplayError::Unreachable(format!(
                "--until {} is before the dump's consistent point {} (a dump is consistent only at the end of its window); {}",
                show_ts(b),
                show_ts(c),
                reach(&scan)
            )));
        }
        if consistent.is_none() && scan.first.is_some_and(|f| b < f) {
            return Err(ReplayError::Unreachable(format!(
                "--until {} is before the first oplog entry; {}",
                show_ts(b),
                reach(&scan)
            )));
        }
        if matches!(opts.until, Some(Bound::Ts(_))) && top.is_none_or(|l| b > l) {
            return Err(ReplayError::Unreachable(format!(
                "--until {} is after the last oplog entry; {}",
                show_ts(b),
                reach(&scan)
            )));
        }
        if matches!(opts.until, Some(Bound::Wall(_))) && !wall_cut {
            return Err(ReplayError::Unreachable(format!(
                "--until is after the wall time of the last oplog entry; {}",
                reach(&scan)
            )));
        }
    }
    // Entries that cannot be replayed stop the restore now, not half-way.
    if let Some((t, why)) = scan
        .refused
        .iter()
        .find(|(t, _)| admits(stop, exclusive_at, *t))
    {
        return Err(ReplayError::Unreachable(format!(
            "oplog entry {}: {why}; nothing was written",
            show_ts(*t)
        )));
    }
    Ok(Prepared {
        opts,
        scan,
        consistent,
        stop,
        inputs,
    })
}

impl Prepared {
    fn exclusive_at(&self) -> Option<Timestamp> {
        match (self.opts.until, self.opts.exclusive) {
            (Some(Bound::Ts(t)), true) => Some(t),
            _ => None,
        }
    }

    /// The report of a dry run: entries by kind and namespace up to the boundary are
    /// not known without a second pass, so the whole inputs' counts are given.
    pub fn dry_run(&self) -> ReplayReport {
        ReplayReport {
            inputs: self.inputs.clone(),
            consistent_point: self.consistent.map(show_ts),
            until: self.stop.map(show_ts),
            exclusive: self.opts.exclusive,
            planned: self.scan.by_kind_ns.clone(),
            refused: self
                .scan
                .refused
                .iter()
                .map(|(t, w)| format!("{}: {w}", show_ts(*t)))
                .collect(),
            ..ReplayReport::default()
        }
    }

    /// Replays onto `client`, starting from the index catalog of what the data phase
    /// restored (target `db.coll` to secondary index specs). Returns the report and
    /// the final catalog, whose indexes the caller builds.
    pub async fn run(
        self,
        client: Client,
        indexes: BTreeMap<String, Vec<Document>>,
    ) -> Result<(ReplayReport, BTreeMap<String, Vec<Document>>), ReplayError> {
        let mut replayer = Replayer::new(
            client,
            self.opts.apply.clone(),
            self.opts.selection.clone(),
            indexes,
            self.scan.txn_ends.clone(),
        )
        .await?;
        let (stop, exclusive_at) = (self.stop, self.exclusive_at());
        let paths = inputs_of(&self.opts);
        let (tx, mut rx) = mpsc::channel::<Result<Vec<RawDocumentBuf>, ReplayError>>(4);
        let reader = tokio::task::spawn_blocking(move || {
            for path in paths {
                let entries = match open_entries(&path) {
                    Ok((e, _, _)) => e,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                let mut batch = Vec::with_capacity(1024);
                for raw in entries {
                    match raw {
                        Ok(r) => {
                            let ts = r.get_timestamp("ts").ok();
                            if ts.is_some_and(|t| !admits(stop, exclusive_at, t)) {
                                let _ = tx.blocking_send(Ok(batch));
                                return;
                            }
                            batch.push(r);
                            if batch.len() == 1024
                                && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    }
                }
                if !batch.is_empty() && tx.blocking_send(Ok(batch)).is_err() {
                    return;
                }
            }
        });
        while let Some(batch) = rx.recv().await {
            for raw in batch? {
                replayer.apply(&raw).await?;
            }
        }
        let _ = reader.await;
        let (counts, catalog) = replayer.finish().await?;
        let mut report = self.dry_run();
        report.planned.clear();
        report.refused.clear();
        report.counts = counts;
        Ok((report, catalog))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn ts(time: u32, increment: u32) -> Timestamp {
        Timestamp { time, increment }
    }

    #[test]
    fn bounds_parse() {
        assert_eq!(parse_bound("17:3").unwrap(), Bound::Ts(ts(17, 3)));
        assert_eq!(
            parse_bound("1970-01-01T00:00:20Z").unwrap(),
            Bound::Ts(ts(20, 0))
        );
        assert_eq!(
            parse_bound("1970-01-01T00:00:20.5Z").unwrap(),
            Bound::Wall(bson::DateTime::from_millis(20_500))
        );
        assert!(parse_bound("yesterday").is_err());
        assert!(parse_bound("1:x").is_err());
    }

    fn oplog_file(dir: &Path, name: &str, entries: &[(u32, u32, i64)]) -> PathBuf {
        let p = dir.join(name);
        let mut out = Vec::new();
        for &(t, i, wall) in entries {
            let d = doc! {"op": "n", "ns": "", "o": {"msg": "x"}, "ts": ts(t, i), "wall": bson::DateTime::from_millis(wall)};
            out.extend_from_slice(RawDocumentBuf::try_from(&d).unwrap().as_bytes());
        }
        std::fs::write(&p, out).unwrap();
        p
    }

    fn opts(files: Vec<PathBuf>, until: Option<&str>, exclusive: bool) -> ReplayOptions {
        ReplayOptions {
            files,
            until: until.map(|u| parse_bound(u).unwrap()),
            exclusive,
            ..ReplayOptions::default()
        }
    }

    #[test]
    fn entries_that_cannot_be_replayed_are_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bson");
        let mut out = Vec::new();
        for d in [
            doc! {"op": "n", "ns": "", "o": {}, "ts": ts(10, 1)},
            doc! {"op": "c", "ns": "a.$cmd", "o": {"importCollection": "c"}, "ts": ts(11, 1)},
            doc! {"op": "c", "ns": "admin.$cmd", "lsid": {"id": 1}, "txnNumber": 1_i64,
            "prevOpTime": {"ts": ts(9, 1), "t": 1_i64},
            "o": {"applyOps": [{"op": "i", "ns": "a.b", "o": {"_id": 1}}]}, "ts": ts(12, 1)},
        ] {
            out.extend_from_slice(RawDocumentBuf::try_from(&d).unwrap().as_bytes());
        }
        std::fs::write(&p, out).unwrap();
        let e = prepare(opts(vec![p.clone()], None, false)).unwrap_err();
        assert!(e.to_string().contains("11:1: importCollection"), "{e}");
        // Before it, the same inputs are fine.
        assert!(prepare(opts(vec![p.clone()], Some("10:1"), false)).is_ok());
        // A transaction whose start is not in the inputs.
        let q = dir.path().join("q.bson");
        let chain = doc! {"op": "c", "ns": "admin.$cmd", "lsid": {"id": 1}, "txnNumber": 1_i64,
        "prevOpTime": {"ts": ts(9, 1), "t": 1_i64},
        "o": {"applyOps": [{"op": "i", "ns": "a.b", "o": {"_id": 1}}]}, "ts": ts(12, 1)};
        std::fs::write(&q, RawDocumentBuf::try_from(&chain).unwrap().into_bytes()).unwrap();
        let e = prepare(opts(vec![q], None, false)).map(|_| ()).unwrap_err();
        assert!(
            e.to_string()
                .contains("(from 9:1) are not in the oplog read"),
            "{e}"
        );
    }

    #[test]
    fn boundaries_are_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let a = oplog_file(
            dir.path(),
            "a.bson",
            &[(10, 1, 10_000), (11, 1, 11_000), (12, 1, 12_500)],
        );
        let p = prepare(opts(vec![a.clone()], None, false)).unwrap();
        assert_eq!(p.stop, Some(ts(12, 1)));
        assert_eq!(p.inputs[0].entries, 3);
        assert_eq!(
            prepare(opts(vec![a.clone()], Some("11:1"), false))
                .unwrap()
                .stop,
            Some(ts(11, 1))
        );
        // Past the end, before the start.
        let e = prepare(opts(vec![a.clone()], Some("12:2"), false)).unwrap_err();
        assert!(e.to_string().contains("10:1 .. 12:1"), "{e}");
        assert!(prepare(opts(vec![a.clone()], Some("9:1"), false)).is_err());
        // Exclusive: strictly before.
        assert_eq!(
            prepare(opts(vec![a.clone()], Some("11:1"), true))
                .unwrap()
                .exclusive_at(),
            Some(ts(11, 1))
        );
        assert!(prepare(opts(vec![a.clone()], Some("10:1"), true)).is_err());
        // A whole second: the state at its start.
        assert_eq!(
            prepare(opts(vec![a.clone()], Some("1970-01-01T00:00:12Z"), false))
                .unwrap()
                .stop,
            Some(ts(12, 0))
        );
        // A fraction: cut before the first entry whose wall is at or after it.
        assert_eq!(
            prepare(opts(
                vec![a.clone()],
                Some("1970-01-01T00:00:12.200Z"),
                false
            ))
            .unwrap()
            .stop,
            Some(ts(11, 1))
        );
        // A second file that overlaps joins; one that leaves a gap is refused.
        let b = oplog_file(dir.path(), "b.bson", &[(12, 1, 12_500), (13, 1, 13_000)]);
        let p = prepare(opts(vec![a.clone(), b], None, false)).unwrap();
        assert_eq!(p.stop, Some(ts(13, 1)));
        assert_eq!(p.inputs[1].entries, 1);
        let c = oplog_file(dir.path(), "c.bson", &[(20, 1, 20_000)]);
        let e = prepare(opts(vec![a, c], None, false)).unwrap_err();
        assert!(e.to_string().contains("may be missing"), "{e}");
    }
}
