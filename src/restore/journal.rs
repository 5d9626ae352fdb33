//! The resume journal of `oxidump restore --resume`: what an earlier run of the same
//! restore got the server to acknowledge, so that a later run skips it.
//!
//! # Format (version 1)
//!
//! One JSON document, by default in a file beside the backup named
//! `<backup>.oxidump-resume` (or wherever `--resume-journal` says; with
//! `--resume-journal-in-target`, in the target server instead: the document
//! `{_id: <absolute path of the backup>, journal: <the JSON text>}` of collection
//! `oxidump_resume.journals`):
//!
//! ```json
//! {
//!   "format": "oxidump-restore-journal",
//!   "version": 1,
//!   "plan": {
//!     "input": "/backups/shop.oxd",
//!     "input_format": "oxd",
//!     "input_fingerprint": "size 123456, modified 1764640000.123456789",
//!     "target": "mongodb://db1:27017/",
//!     "options": {"existing": "refuse", "index_build": "before", "renames": "", ...}
//!   },
//!   "namespaces": {
//!     "shop.orders": {
//!       "created": true,
//!       "indexes_built": true,
//!       "data_done": false,
//!       "complete": false,
//!       "unit": "frame",
//!       "done": [0, 1, 2, 5],
//!       "documents": 40000
//!     }
//!   }
//! }
//! ```
//!
//! - `plan` is everything that decides what the restore writes: the input (its path,
//!   format and a fingerprint of its files' sizes and modification times), the target
//!   (credentials removed) and the options (namespace filters and renames, what to do
//!   with existing targets, index builds, validation, write concern, …). A run whose
//!   plan differs is refused, naming what changed. Options that change only how fast
//!   the restore goes (`-j`, `--workers-per-collection`) are not part of it.
//! - Per source namespace: `created` once the target collection (or view) was
//!   dropped and created as the plan says (a resumed run neither drops nor creates it
//!   again); `indexes_built` once its secondary indexes were built; `data_done` once
//!   every document was acknowledged; `complete` once nothing is left to do.
//! - `done` lists the units of input whose every document the server acknowledged
//!   (inserted, or refused as a duplicate key or by the validator, which a second
//!   sending would repeat): `unit` says what the numbers are: `frame` (OXD frame
//!   numbers, for an indexed OXD archive), `offset` (byte offsets in the decompressed
//!   `.bson` file where the run of documents starts, for a mongodump directory) or
//!   `chunk` (the ordinal of the run of documents among the namespace's runs in the
//!   stream, for a mongodump archive or an OXD file without a trailer). `documents`
//!   counts the documents of those units.
//!
//! The journal only ever records what was acknowledged, so a journal older than the
//! server's state is safe: what it does not list is sent again, and the duplicate-key
//! errors of documents already there are expected. It is replaced atomically (written
//! to a temporary file beside it, flushed, renamed over it), so a run killed at any
//! point leaves the previous journal or the new one, never a mix (in the target: one
//! document replaced by one command). It is removed when a restore ends with everything
//! restored.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bson::{Document, doc};
use serde::{Deserialize, Serialize};

/// Name of the format, in every journal.
pub const FORMAT: &str = "oxidump-restore-journal";
/// Version of the format this build writes and reads.
pub const VERSION: u32 = 1;

/// Error reading, checking or writing a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The journal file cannot be read or written.
    #[error("resume journal {path}: {source}")]
    Io {
        /// The journal.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The journal in the target cannot be read or written.
    #[error("resume journal {path}: {}", crate::connect::describe(source))]
    Server {
        /// The journal.
        path: String,
        /// The driver error.
        source: mongodb::error::Error,
    },
    /// It is not a journal this build understands.
    #[error("resume journal {path}: not a journal of this version of oxidump: {message}")]
    Format {
        /// The journal.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The journal belongs to another restore.
    #[error(
        "refusing to resume: {path} records a restore with another plan ({}); run it with the same options, or remove the journal to start over",
        .changes.join("; ")
    )]
    PlanChanged {
        /// The journal.
        path: String,
        /// What differs, one item per difference.
        changes: Vec<String>,
    },
}

/// Where a journal is kept.
#[derive(Debug, Clone)]
pub enum Store {
    /// A file.
    File(PathBuf),
    /// A document in the target server: `oxidump_resume.journals`, `_id` the backup.
    Server {
        /// The target.
        client: mongodb::Client,
        /// The document's `_id`.
        id: String,
    },
}

/// Database of the journals kept in the target.
pub const SERVER_DB: &str = "oxidump_resume";
/// Collection of the journals kept in the target.
pub const SERVER_COLLECTION: &str = "journals";

impl Store {
    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Store::File(p) => p.display().to_string(),
            Store::Server { id, .. } => {
                format!("{SERVER_DB}.{SERVER_COLLECTION} {{_id: {id:?}}} in the target")
            }
        }
    }

    fn coll(client: &mongodb::Client) -> mongodb::Collection<Document> {
        client.database(SERVER_DB).collection(SERVER_COLLECTION)
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io {
            path: self.describe(),
            source,
        }
    }

    fn server(&self, source: mongodb::error::Error) -> JournalError {
        JournalError::Server {
            path: self.describe(),
            source,
        }
    }

    /// The journal's bytes, `None` when there is none.
    pub async fn read(&self) -> Result<Option<Vec<u8>>, JournalError> {
        match self {
            Store::File(p) => match std::fs::read(p) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.io(e)),
            },
            Store::Server { client, id } => {
                let d = Self::coll(client)
                    .find_one(doc! {"_id": id})
                    .await
                    .map_err(|e| self.server(e))?;
                match d {
                    None => Ok(None),
                    Some(d) => match d.get_str("journal") {
                        Ok(j) => Ok(Some(j.as_bytes().to_vec())),
                        Err(_) => Err(JournalError::Format {
                            path: self.describe(),
                            message: "no `journal` string".into(),
                        }),
                    },
                }
            }
        }
    }

    /// Replaces the journal, atomically.
    pub async fn write(&self, bytes: Vec<u8>) -> Result<(), JournalError> {
        match self {
            Store::File(p) => write_atomic(p, &bytes).map_err(|e| self.io(e)),
            Store::Server { client, id } => {
                let text = String::from_utf8(bytes).expect("JSON is UTF-8");
                Self::coll(client)
                    .replace_one(doc! {"_id": id}, doc! {"_id": id, "journal": text})
                    .upsert(true)
                    .await
                    .map(|_| ())
                    .map_err(|e| self.server(e))
            }
        }
    }

    /// Removes the journal.
    pub async fn remove(&self) -> Result<(), JournalError> {
        match self {
            Store::File(p) => match std::fs::remove_file(p) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.io(e)),
            },
            Store::Server { client, id } => Self::coll(client)
                .delete_one(doc! {"_id": id})
                .await
                .map(|_| ())
                .map_err(|e| self.server(e)),
        }
    }
}

/// What decides what a restore writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The backup's path.
    pub input: String,
    /// Its format.
    pub input_format: String,
    /// Sizes and modification times of its files.
    pub input_fingerprint: String,
    /// The target, credentials removed.
    pub target: String,
    /// Options, by name.
    pub options: BTreeMap<String, String>,
}

impl Plan {
    /// What differs from `other` (the plan of the journal), for a refusal.
    pub fn changes_from(&self, journal: &Plan) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |what: &str, old: &str, new: &str| {
            if old != new {
                out.push(format!("{what} was {old:?}, is now {new:?}"));
            }
        };
        cmp("the input", &journal.input, &self.input);
        cmp(
            "the input format",
            &journal.input_format,
            &self.input_format,
        );
        cmp(
            "the input's files (sizes, modification times)",
            &journal.input_fingerprint,
            &self.input_fingerprint,
        );
        cmp("the target", &journal.target, &self.target);
        let keys: BTreeSet<&String> = journal.options.keys().chain(self.options.keys()).collect();
        for k in keys {
            let none = String::new();
            cmp(
                &format!("option {k}"),
                journal.options.get(k).unwrap_or(&none),
                self.options.get(k).unwrap_or(&none),
            );
        }
        out
    }
}

/// What the units of a namespace's `done` list are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// OXD frame numbers.
    #[default]
    Frame,
    /// Byte offsets in a decompressed mongodump `.bson` file.
    Offset,
    /// Ordinals of runs of documents in a stream.
    Chunk,
}

/// Progress of one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsProgress {
    /// Dropped and created as planned.
    pub created: bool,
    /// Secondary indexes built.
    pub indexes_built: bool,
    /// Every document acknowledged.
    pub data_done: bool,
    /// Nothing left to do.
    pub complete: bool,
    /// What the numbers of `done` are.
    pub unit: Unit,
    /// Units whose every document was acknowledged.
    pub done: BTreeSet<u64>,
    /// Documents of those units.
    pub documents: u64,
}

/// A journal's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalData {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The restore it belongs to.
    pub plan: Plan,
    /// Per source namespace (`db.collection`).
    pub namespaces: BTreeMap<String, NsProgress>,
}

impl JournalData {
    /// An empty journal for `plan`.
    pub fn new(plan: Plan) -> JournalData {
        JournalData {
            format: FORMAT.into(),
            version: VERSION,
            plan,
            namespaces: BTreeMap::new(),
        }
    }

    /// Parses a journal (`path` says where it is, for messages).
    pub fn parse(path: &str, bytes: &[u8]) -> Result<JournalData, JournalError> {
        let d: JournalData = serde_json::from_slice(bytes).map_err(|e| JournalError::Format {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        if d.format != FORMAT || d.version != VERSION {
            return Err(JournalError::Format {
                path: path.to_string(),
                message: format!("format {:?} version {}", d.format, d.version),
            });
        }
        Ok(d)
    }
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it, flushed to
/// disk, renamed over it, and the directory flushed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "journal".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The default place of the journal of a restore from `input`: beside it.
pub fn default_path(input: &Path) -> PathBuf {
    let mut name = input
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "backup".into());
    name.push(".oxidump-resume");
    input.with_file_name(name)
}

/// Sizes and modification times of the files of a backup (a file, or every file
/// under a directory), as one string.
pub fn fingerprint(input: &Path) -> std::io::Result<String> {
    fn stamp(m: &std::fs::Metadata) -> String {
        let t = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        format!(
            "size {}, modified {}.{:09}",
            m.len(),
            t.as_secs(),
            t.subsec_nanos()
        )
    }
    let m = std::fs::metadata(input)?;
    if !m.is_dir() {
        return Ok(stamp(&m));
    }
    let mut files = Vec::new();
    let mut stack = vec![input.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = e.metadata()?;
            let name = e.file_name().to_string_lossy().into_owned();
            if m.is_dir() {
                stack.push(e.path());
            } else if name.ends_with(".oxidump-resume") || name.contains(".oxidump-resume.tmp-") {
                // A journal kept inside the backup is not part of it.
            } else {
                let rel = e.path().strip_prefix(input).unwrap_or(&e.path()).to_owned();
                files.push(format!("{}: {}", rel.display(), stamp(&m)));
            }
        }
    }
    files.sort();
    // A digest keeps the journal small whatever the number of files.
    let all = files.join("\n");
    Ok(format!(
        "{} files, crc64 {:016x}",
        files.len(),
        crate::oxd::nsend::crc64(all.as_bytes())
    ))
}

/// The journal of a running restore: updated as the server acknowledges, written
/// when something changes that a resumed run must know at once (a target created,
/// indexes built, a namespace done) and otherwise at most every
/// [`Journal::FLUSH_EVERY`].
pub struct Journal {
    store: Store,
    state: Mutex<State>,
    /// Held while writing: writes go out in the order of their snapshots.
    writing: tokio::sync::Mutex<()>,
    /// Fault injection (`restore-unit`, see [`crate::fault`]): the restore holds at
    /// its next [`Journal::hold_point`].
    hold: std::sync::atomic::AtomicBool,
}

struct State {
    data: JournalData,
    dirty: bool,
    error: Option<String>,
}

impl Journal {
    /// How often acknowledged units are written at most.
    pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

    /// Reads the journal in `store` and checks that it is one of `plan`. `None`
    /// when there is none.
    pub async fn check(store: &Store, plan: &Plan) -> Result<Option<JournalData>, JournalError> {
        let Some(bytes) = store.read().await? else {
            return Ok(None);
        };
        let d = JournalData::parse(&store.describe(), &bytes)?;
        let changes = plan.changes_from(&d.plan);
        if !changes.is_empty() {
            return Err(JournalError::PlanChanged {
                path: store.describe(),
                changes,
            });
        }
        Ok(Some(d))
    }

    /// Opens the journal in `store` for `plan`: the one there, when there is one (its
    /// plan must be `plan`), else a new one, written at once. Returns whether it resumes.
    pub async fn open(store: Store, plan: Plan) -> Result<(Journal, bool), JournalError> {
        let found = Self::check(&store, &plan).await?;
        let resumed = found.is_some();
        let j = Journal {
            store,
            state: Mutex::new(State {
                data: found.unwrap_or_else(|| JournalData::new(plan)),
                dirty: !resumed,
                error: None,
            }),
            writing: tokio::sync::Mutex::new(()),
            hold: std::sync::atomic::AtomicBool::new(false),
        };
        if !resumed {
            j.flush().await?;
        }
        Ok((j, resumed))
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Whether it is a file at `p`.
    pub fn is_file(&self, p: &Path) -> bool {
        matches!(&self.store, Store::File(f) if f == p)
    }

    /// A copy of a namespace's progress.
    pub fn progress(&self, ns: &str) -> NsProgress {
        let s = self.state.lock().expect("lock");
        s.data.namespaces.get(ns).cloned().unwrap_or_default()
    }

    fn update(&self, ns: &str, f: impl FnOnce(&mut NsProgress)) {
        let mut s = self.state.lock().expect("lock");
        f(s.data.namespaces.entry(ns.to_string()).or_default());
        s.dirty = true;
    }

    /// The target of `ns` was created as planned (written at once).
    pub async fn created(&self, ns: &str) {
        self.update(ns, |p| p.created = true);
        self.flush_quietly().await;
    }

    /// The secondary indexes of `ns` were built (written at once).
    pub async fn indexes_built(&self, ns: &str) {
        self.update(ns, |p| p.indexes_built = true);
        self.flush_quietly().await;
        crate::fault::hold("restore-indexes-built").await;
    }

    /// Every document of unit `key` of `ns` (`docs` of them) was acknowledged
    /// (written with the next flush).
    pub fn unit_done(&self, ns: &str, unit: Unit, key: u64, docs: u64) {
        self.update(ns, |p| {
            p.unit = unit;
            if p.done.insert(key) {
                p.documents += docs;
            }
        });
        if crate::fault::due("restore-unit") {
            self.hold.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Where a restore sending documents may be held by fault injection
    /// (`restore-unit`, see [`crate::fault`]): once the unit due was recorded, the
    /// journal is written and the restore goes no further.
    pub async fn hold_point(&self) {
        if self.hold.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.flush_quietly().await;
            crate::fault::hold_now("restore-unit").await;
        }
    }

    /// Every document of `ns` was acknowledged (written at once).
    pub async fn data_done(&self, ns: &str) {
        self.update(ns, |p| p.data_done = true);
        self.flush_quietly().await;
        crate::fault::hold("restore-data-done").await;
    }

    /// Nothing is left to do for `ns` (written at once).
    pub async fn complete(&self, ns: &str) {
        self.update(ns, |p| {
            p.data_done = true;
            p.complete = true;
        });
        self.flush_quietly().await;
        crate::fault::hold("restore-ns-complete").await;
    }

    /// Writes the journal if it changed.
    pub async fn flush(&self) -> Result<(), JournalError> {
        let _w = self.writing.lock().await;
        let bytes = {
            let mut s = self.state.lock().expect("lock");
            if !s.dirty {
                return Ok(());
            }
            s.dirty = false;
            serde_json::to_vec_pretty(&s.data).expect("a journal serializes")
        };
        let r = self.store.write(bytes).await;
        if r.is_err() {
            self.state.lock().expect("lock").dirty = true;
        }
        r
    }

    /// Like [`Journal::flush`]; a failure is kept for [`Journal::take_error`] (the
    /// restore goes on: a journal that lags only makes a resumed run send more again).
    pub async fn flush_quietly(&self) {
        if let Err(e) = self.flush().await {
            let mut s = self.state.lock().expect("lock");
            s.error.get_or_insert(e.to_string());
        }
    }

    /// The first write that failed, if any.
    pub fn take_error(&self) -> Option<String> {
        self.state.lock().expect("lock").error.take()
    }

    /// Removes the journal (the restore is done).
    pub async fn remove(&self) -> Result<(), JournalError> {
        let _w = self.writing.lock().await;
        self.store.remove().await
    }
}

/// Counts, per unit of input, the documents sent but not yet acknowledged, and tells
/// the journal about each unit once all of its documents are.
#[derive(Debug, Default)]
pub struct UnitTracker {
    outstanding: BTreeMap<u64, (u64, u64)>,
}

impl UnitTracker {
    /// `docs` documents of unit `key` were handed to the batcher (all of the unit's).
    /// Returns the unit when it has none (it is done at once).
    pub fn pushed(&mut self, key: u64, docs: u64) -> Option<(u64, u64)> {
        if docs == 0 {
            return Some((key, 0));
        }
        let e = self.outstanding.entry(key).or_insert((0, 0));
        e.0 += docs;
        e.1 += docs;
        None
    }

    /// A batch made of `parts` (unit, documents) was acknowledged whole. Returns the
    /// units (and their document counts) now done.
    pub fn acknowledged(&mut self, parts: &[(u64, u32)]) -> Vec<(u64, u64)> {
        let mut done = Vec::new();
        for &(key, n) in parts {
            if let Some(e) = self.outstanding.get_mut(&key) {
                e.0 = e.0.saturating_sub(n as u64);
                if e.0 == 0 {
                    done.push((key, e.1));
                    self.outstanding.remove(&key);
                }
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            input: "/b/x.oxd".into(),
            input_format: "oxd".into(),
            input_fingerprint: "size 1".into(),
            target: "mongodb://h/".into(),
            options: [("existing".to_string(), "drop".to_string())].into(),
        }
    }

    fn file(p: &Path) -> Store {
        Store::File(p.to_path_buf())
    }

    #[tokio::test]
    async fn a_journal_is_written_at_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let (j, resumed) = Journal::open(file(&p), plan()).await.unwrap();
        assert!(!resumed);
        assert!(p.exists(), "a new journal is written before anything else");
        j.created("d.c").await;
        j.unit_done("d.c", Unit::Frame, 3, 10);
        j.unit_done("d.c", Unit::Frame, 3, 10);
        j.unit_done("d.c", Unit::Frame, 0, 7);
        j.flush().await.unwrap();
        drop(j);
        let (j, resumed) = Journal::open(file(&p), plan()).await.unwrap();
        assert!(resumed);
        let pr = j.progress("d.c");
        assert!(pr.created && !pr.data_done);
        assert_eq!(pr.done.iter().copied().collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!(pr.documents, 17, "a unit is counted once");
        assert_eq!(j.progress("d.other"), NsProgress::default());
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        j.remove().await.unwrap();
        assert!(!p.exists());
    }

    #[tokio::test]
    async fn a_changed_plan_is_refused_naming_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        Journal::open(file(&p), plan()).await.unwrap();
        let mut other = plan();
        other.options.insert("existing".into(), "append".into());
        other.options.insert("renames".into(), "a.*=b.*".into());
        other.input_fingerprint = "size 2".into();
        match Journal::open(file(&p), other).await {
            Err(e @ JournalError::PlanChanged { .. }) => {
                let m = e.to_string();
                assert!(
                    m.contains("option existing was \"drop\", is now \"append\""),
                    "{m}"
                );
                assert!(m.contains("option renames was \"\""), "{m}");
                assert!(m.contains("the input's files"), "{m}");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[tokio::test]
    async fn foreign_or_damaged_journals_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        std::fs::write(&p, b"{\"format\": \"x\"").unwrap();
        assert!(matches!(
            Journal::open(file(&p), plan()).await,
            Err(JournalError::Format { .. })
        ));
        let mut d = JournalData::new(plan());
        d.version = 99;
        std::fs::write(&p, serde_json::to_vec(&d).unwrap()).unwrap();
        assert!(matches!(
            Journal::open(file(&p), plan()).await,
            Err(JournalError::Format { .. })
        ));
    }

    #[test]
    fn a_unit_is_done_when_every_batch_holding_its_documents_is_acknowledged() {
        let mut t = UnitTracker::default();
        assert_eq!(
            t.pushed(7, 0),
            Some((7, 0)),
            "an empty unit is done at once"
        );
        assert_eq!(t.pushed(0, 10), None);
        assert_eq!(t.pushed(1, 5), None);
        // A batch of the first 8 of unit 0; then one of the last 2 of 0 and 3 of 1.
        assert!(t.acknowledged(&[(0, 8)]).is_empty());
        assert_eq!(t.acknowledged(&[(0, 2), (1, 3)]), vec![(0, 10)]);
        assert_eq!(t.acknowledged(&[(1, 2)]), vec![(1, 5)]);
        assert!(
            t.acknowledged(&[(1, 2)]).is_empty(),
            "unknown units are ignored"
        );
    }

    #[test]
    fn the_default_journal_is_beside_the_backup() {
        assert_eq!(
            default_path(Path::new("/b/x.oxd")),
            PathBuf::from("/b/x.oxd.oxidump-resume")
        );
        assert_eq!(
            default_path(Path::new("/b/dump/")),
            PathBuf::from("/b/dump.oxidump-resume")
        );
    }

    #[test]
    fn fingerprints_change_with_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.bson"), b"12").unwrap();
        let one = fingerprint(dir.path()).unwrap();
        assert_eq!(one, fingerprint(dir.path()).unwrap());
        std::fs::write(dir.path().join("a.bson"), b"123").unwrap();
        assert_ne!(one, fingerprint(dir.path()).unwrap());
    }
}
