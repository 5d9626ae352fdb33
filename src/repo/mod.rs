//! The backup repository (`format-spec/repository-v1.md`): snapshots and a
//! continuous archive of the oplog in segments, as immutable objects under one
//! directory.
//!
//! - this module: the layout (names, the marker), reading what is stored, and the
//!   records the follower puts (gaps, rollbacks, its status);
//! - [`chain`]: the chain of segments, its gaps, and the windows a restore can reach;
//! - [`check`]: `verify` of a whole repository;
//! - [`listing`]: `ls` of a repository;
//! - [`plan`]: choosing the snapshot and the segments that reach a moment.

pub mod chain;
pub mod check;
pub mod listing;
pub mod plan;

use std::fs::File;
use std::path::{Path, PathBuf};

use bson::Timestamp;
use serde::{Deserialize, Serialize};

use crate::catalog::NsKind;
use crate::oplog::entry::show_ts;
use crate::oplog::segment::{self, OpTime, SegmentError, SegmentMeta};
use crate::oxd::reader::Index;

/// Name of the marker object.
pub const MARKER: &str = "oxidump-repository.json";
/// Value of the marker's `format`.
pub const FORMAT: &str = "oxidump-repository";
/// Layout version written and read.
pub const VERSION: u32 = 1;
/// Prefix of snapshots.
pub const SNAPSHOTS: &str = "snapshots";
/// Prefix of oplog segments.
pub const OPLOG: &str = "oplog";
/// Prefix of recorded gaps.
pub const GAPS: &str = "gaps";
/// Prefix of recorded rollbacks.
pub const ROLLBACKS: &str = "rollbacks";
/// The follower's status file (hidden: not an object of the layout).
pub const FOLLOWER_STATUS: &str = ".follower-status.json";

/// Error of the repository layer.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The directory is not a repository.
    #[error("{path}: not an oxidump repository ({why})")]
    NotARepo {
        /// The directory.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A segment could not be written or read.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A restore cannot reach the moment asked for.
    #[error("{0}")]
    Unreachable(String),
    /// No snapshot of that name.
    #[error("{0}")]
    NoSnapshot(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RepoError + '_ {
    move |source| RepoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The marker object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// When the repository was created (RFC 3339).
    pub created_at: String,
}

/// An object that cannot be read as what its place says, and why.
pub type Unreadable = (PathBuf, String);

/// A repository on a local directory.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
}

/// A snapshot as listed.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    /// Its name (`YYYYMMDDTHHMMSSZ`).
    pub name: String,
    /// The object.
    pub path: PathBuf,
    /// When the dump started (RFC 3339).
    pub started_at: Option<String>,
    /// Its oplog window's start.
    #[serde(serialize_with = "ser_ts")]
    pub window_start: Timestamp,
    /// Its consistent point (the window's end).
    #[serde(serialize_with = "ser_ts")]
    pub consistent: Timestamp,
    /// Size of the object in bytes.
    pub bytes: u64,
    /// Documents stored (the oplog window's entries included).
    pub documents: u64,
    /// Namespaces other than the oplog, `db.collection`.
    pub namespaces: Vec<String>,
}

/// A segment as listed: its name, and what it says about itself when readable.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// The file name.
    pub name: String,
    /// The object.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// First and last timestamp from the name.
    pub named: Option<(Timestamp, Timestamp)>,
    /// Its description, or why it cannot be read.
    pub meta: Result<SegmentMeta, String>,
}

/// A recorded gap (`gaps/<AFTER>.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GapRecord {
    /// The last archived entry before the gap.
    pub after: GapOpTime,
    /// The oldest entry the server held when the gap was found (`S:I`).
    pub before: String,
    /// When it was found (RFC 3339).
    pub detected_at: String,
    /// What was found.
    pub reason: String,
}

/// An optime in a gap object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GapOpTime {
    /// `S:I`.
    pub ts: String,
    /// The term, if any.
    pub t: Option<i64>,
}

/// A recorded rollback (`rollbacks/<ARCHIVED>.json`): the replica set lost entries that
/// were archived.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RollbackRecord {
    /// The newest archived entry, which the set no longer holds.
    pub archived: GapOpTime,
    /// The newest archived entry the set still holds: the last restorable moment of the
    /// chain that ends at `archived`.
    pub common: GapOpTime,
    /// Archived entries after `common` (the ones the set lost).
    pub lost: u64,
    /// The oldest entry the server held when the rollback was found (`S:I`).
    pub server_oldest: String,
    /// When it was found (RFC 3339).
    pub detected_at: String,
    /// What was found.
    pub reason: String,
}

impl RollbackRecord {
    /// The newest archived (lost) entry.
    pub fn archived_optime(&self) -> Option<OpTime> {
        self.archived.optime()
    }

    /// The newest archived entry the set still holds.
    pub fn common_optime(&self) -> Option<OpTime> {
        self.common.optime()
    }
}

impl GapOpTime {
    /// Of an optime.
    pub fn of(o: OpTime) -> GapOpTime {
        GapOpTime {
            ts: show_ts(o.ts),
            t: o.t,
        }
    }

    /// As an optime (`None` when `ts` is not `S:I`).
    pub fn optime(&self) -> Option<OpTime> {
        Some(OpTime {
            ts: parse_ts(&self.ts)?,
            t: self.t,
        })
    }
}

/// What the follower of a repository is doing, as it last said (the hidden file
/// [`FOLLOWER_STATUS`], replaced as it goes; not an object of the layout).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FollowerStatus {
    /// Its process id.
    pub pid: u32,
    /// `following`, `reconnecting`, `stopped` or `failed`.
    pub state: String,
    /// What it is doing or why it stopped, for people.
    pub detail: String,
    /// The server followed (credentials removed).
    pub uri: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it wrote this (RFC 3339).
    pub updated_at: String,
    /// While running: it writes again before this time (RFC 3339); a status older than
    /// that belongs to a follower that is no longer running.
    pub next_update_by: Option<String>,
    /// The newest entry read from the server (sealed or not), `S:I`.
    pub last_read: Option<String>,
    /// The newest sealed entry, `S:I`.
    pub last_sealed: Option<String>,
    /// Entries read but not sealed yet.
    pub unsealed_entries: u64,
    /// Segments sealed by this run.
    pub segments: u64,
    /// Entries sealed by this run.
    pub entries: u64,
    /// Reconnections of this run.
    pub reconnects: u64,
}

impl FollowerStatus {
    /// Its state, or `not running` when a running follower let its promised update
    /// time pass (it was killed, or its machine stopped).
    pub fn effective_state(&self) -> String {
        let overdue = self.next_update_by.as_deref().is_some_and(|by| {
            bson::DateTime::parse_rfc3339_str(by).is_ok_and(|by| bson::DateTime::now() > by)
        });
        if overdue {
            "not running".into()
        } else {
            self.state.clone()
        }
    }
}

impl GapRecord {
    /// The gap's `after` as an optime.
    pub fn after_optime(&self) -> Option<OpTime> {
        self.after.optime()
    }
}

/// Parses `S:I`.
pub fn parse_ts(s: &str) -> Option<Timestamp> {
    let (a, b) = s.split_once(':')?;
    Some(Timestamp {
        time: a.parse().ok()?,
        increment: b.parse().ok()?,
    })
}

fn ser_ts<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&show_ts(*t))
}

fn rfc3339_now() -> String {
    bson::DateTime::now()
        .try_to_rfc3339_string()
        .unwrap_or_default()
}

/// Names of the visible objects directly under `dir` (hidden names skipped), sorted.
fn list_names(dir: &Path) -> Result<Vec<String>, RepoError> {
    let mut names = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for e in rd {
        let e = e.map_err(io_err(dir))?;
        if let Some(n) = e.file_name().to_str()
            && !n.starts_with('.')
        {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(names)
}

impl Repo {
    /// Whether `path` holds a repository marker.
    pub fn is_repo(path: &Path) -> bool {
        path.join(MARKER).is_file()
    }

    /// Opens an existing repository.
    pub fn open(root: &Path) -> Result<Repo, RepoError> {
        let marker = root.join(MARKER);
        let text = std::fs::read_to_string(&marker).map_err(|e| RepoError::NotARepo {
            path: root.to_path_buf(),
            why: format!("{MARKER}: {e}"),
        })?;
        let m: Marker = serde_json::from_str(&text).map_err(|e| RepoError::NotARepo {
            path: root.to_path_buf(),
            why: format!("{MARKER}: {e}"),
        })?;
        if m.format != FORMAT || m.version != VERSION {
            return Err(RepoError::NotARepo {
                path: root.to_path_buf(),
                why: format!(
                    "{MARKER} names format {:?} version {}; this oxidump reads {FORMAT:?} version {VERSION}",
                    m.format, m.version
                ),
            });
        }
        Ok(Repo {
            root: root.to_path_buf(),
        })
    }

    /// Opens the repository at `root`, creating it (the directory and its marker) when
    /// the directory is missing or empty.
    pub fn open_or_create(root: &Path) -> Result<Repo, RepoError> {
        if Repo::is_repo(root) {
            return Repo::open(root);
        }
        std::fs::create_dir_all(root).map_err(io_err(root))?;
        if std::fs::read_dir(root)
            .map_err(io_err(root))?
            .next()
            .is_some()
        {
            return Err(RepoError::NotARepo {
                path: root.to_path_buf(),
                why: format!("the directory is not empty and has no {MARKER}"),
            });
        }
        let m = Marker {
            format: FORMAT.into(),
            version: VERSION,
            created_at: rfc3339_now(),
        };
        put_json(root, MARKER, &m)?;
        Ok(Repo {
            root: root.to_path_buf(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of segments.
    pub fn oplog_dir(&self) -> PathBuf {
        self.root.join(OPLOG)
    }

    /// Where a snapshot started at `started` is written.
    pub fn snapshot_path(&self, started: bson::DateTime) -> PathBuf {
        let stamp = chrono_stamp(started);
        self.root.join(SNAPSHOTS).join(format!("{stamp}.oxd"))
    }

    /// Creates the snapshot directory, so a dump can write into it.
    pub fn prepare_snapshot_dir(&self) -> Result<(), RepoError> {
        let d = self.root.join(SNAPSHOTS);
        std::fs::create_dir_all(&d).map_err(io_err(&d))
    }

    /// Every snapshot, oldest consistent point first; the objects that are not
    /// readable snapshots are returned beside, with the reason.
    pub fn snapshots(&self) -> Result<(Vec<SnapshotInfo>, Vec<Unreadable>), RepoError> {
        let dir = self.root.join(SNAPSHOTS);
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for name in list_names(&dir)? {
            let path = dir.join(&name);
            match read_snapshot(&path, &name) {
                Ok(s) => ok.push(s),
                Err(why) => bad.push((path, why)),
            }
        }
        ok.sort_by(|a: &SnapshotInfo, b| (a.consistent, &a.name).cmp(&(b.consistent, &b.name)));
        Ok((ok, bad))
    }

    /// Every segment, in name (chain) order.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>, RepoError> {
        let dir = self.oplog_dir();
        let mut out = Vec::new();
        for name in list_names(&dir)? {
            let path = dir.join(&name);
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let meta = segment::read_meta(&path)
                .map(|(m, _)| m)
                .map_err(|e| e.to_string());
            out.push(SegmentInfo {
                named: segment::parse_segment_name(&name),
                name,
                path,
                bytes,
                meta,
            });
        }
        Ok(out)
    }

    /// Every recorded gap; unreadable gap objects are returned beside.
    pub fn gaps(&self) -> Result<(Vec<GapRecord>, Vec<Unreadable>), RepoError> {
        let dir = self.root.join(GAPS);
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for name in list_names(&dir)? {
            let path = dir.join(&name);
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<GapRecord>(&t).map_err(|e| e.to_string()))
                .and_then(|g| {
                    let after = g
                        .after_optime()
                        .ok_or_else(|| format!("`after.ts` {:?} is not S:I", g.after.ts))?;
                    if parse_ts(&g.before).is_none() {
                        return Err(format!("`before` {:?} is not S:I", g.before));
                    }
                    let expect = format!("{}.json", segment::ts_name(after.ts));
                    if name != expect {
                        return Err(format!("its name should be {expect}"));
                    }
                    Ok(g)
                });
            match parsed {
                Ok(g) => ok.push(g),
                Err(why) => bad.push((path, why)),
            }
        }
        Ok((ok, bad))
    }

    /// Records a gap after `after` (once: an existing record is kept). Returns whether
    /// it was written now.
    pub fn record_gap(
        &self,
        after: OpTime,
        before: Timestamp,
        reason: &str,
    ) -> Result<bool, RepoError> {
        let dir = self.root.join(GAPS);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let name = format!("{}.json", segment::ts_name(after.ts));
        if dir.join(&name).exists() {
            return Ok(false);
        }
        let g = GapRecord {
            after: GapOpTime::of(after),
            before: show_ts(before),
            detected_at: rfc3339_now(),
            reason: reason.into(),
        };
        put_json(&dir, &name, &g)?;
        Ok(true)
    }

    /// Every recorded rollback; unreadable rollback objects are returned beside.
    pub fn rollbacks(&self) -> Result<(Vec<RollbackRecord>, Vec<Unreadable>), RepoError> {
        let dir = self.root.join(ROLLBACKS);
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for name in list_names(&dir)? {
            let path = dir.join(&name);
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<RollbackRecord>(&t).map_err(|e| e.to_string()))
                .and_then(|r| {
                    let archived = r
                        .archived_optime()
                        .ok_or_else(|| format!("`archived.ts` {:?} is not S:I", r.archived.ts))?;
                    let common = r
                        .common_optime()
                        .ok_or_else(|| format!("`common.ts` {:?} is not S:I", r.common.ts))?;
                    if common.ts >= archived.ts {
                        return Err(format!(
                            "`common` {} is not before `archived` {}",
                            r.common.ts, r.archived.ts
                        ));
                    }
                    let expect = format!("{}.json", segment::ts_name(archived.ts));
                    if name != expect {
                        return Err(format!("its name should be {expect}"));
                    }
                    Ok(r)
                });
            match parsed {
                Ok(r) => ok.push(r),
                Err(why) => bad.push((path, why)),
            }
        }
        Ok((ok, bad))
    }

    /// Records a rollback of the archived entries after `common` up to `archived` (once:
    /// an existing record is kept). Returns whether it was written now.
    pub fn record_rollback(
        &self,
        archived: OpTime,
        common: OpTime,
        lost: u64,
        server_oldest: Timestamp,
        reason: &str,
    ) -> Result<bool, RepoError> {
        let dir = self.root.join(ROLLBACKS);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let name = format!("{}.json", segment::ts_name(archived.ts));
        if dir.join(&name).exists() {
            return Ok(false);
        }
        let r = RollbackRecord {
            archived: GapOpTime::of(archived),
            common: GapOpTime::of(common),
            lost,
            server_oldest: show_ts(server_oldest),
            detected_at: rfc3339_now(),
            reason: reason.into(),
        };
        put_json(&dir, &name, &r)?;
        Ok(true)
    }

    /// Replaces the follower's status file.
    pub fn write_follower_status(&self, s: &FollowerStatus) -> Result<(), RepoError> {
        use std::io::Write;
        let dest = self.root.join(FOLLOWER_STATUS);
        let mut tmp = tempfile::Builder::new()
            .prefix(".put-")
            .tempfile_in(&self.root)
            .map_err(io_err(&self.root))?;
        let text = serde_json::to_string_pretty(s).expect("a status serializes") + "\n";
        tmp.write_all(text.as_bytes()).map_err(io_err(&dest))?;
        tmp.persist(&dest).map_err(|e| io_err(&dest)(e.error))?;
        Ok(())
    }

    /// The follower's status file, if a follower ever ran here.
    pub fn follower_status(&self) -> Result<Option<FollowerStatus>, RepoError> {
        let path = self.root.join(FOLLOWER_STATUS);
        match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| io_err(&path)(std::io::Error::other(e))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The last entry of the newest readable segment: where archiving resumes.
    pub fn last_sealed(&self) -> Result<Option<OpTime>, RepoError> {
        Ok(self
            .segments()?
            .iter()
            .rev()
            .find_map(|s| s.meta.as_ref().ok().map(|m| m.last)))
    }
}

/// `YYYYMMDDTHHMMSSZ` of a UTC time.
fn chrono_stamp(t: bson::DateTime) -> String {
    let s = t.try_to_rfc3339_string().unwrap_or_default();
    // 2026-12-02T01:51:11.123Z -> 20261202T015111Z
    let digits: String = s
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{digits}Z")
}

/// Puts a small JSON object atomically (temporary file, sync, rename without
/// replacing).
fn put_json<T: Serialize>(dir: &Path, name: &str, v: &T) -> Result<(), RepoError> {
    use std::io::Write;
    let dest = dir.join(name);
    let mut tmp = tempfile::Builder::new()
        .prefix(".put-")
        .permissions(crate::output::file_mode())
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let text = serde_json::to_string_pretty(v).expect("a repository object serializes") + "\n";
    tmp.write_all(text.as_bytes()).map_err(io_err(&dest))?;
    tmp.as_file().sync_all().map_err(io_err(&dest))?;
    tmp.persist_noclobber(&dest)
        .map_err(|e| io_err(&dest)(e.error))?;
    Ok(())
}

fn read_snapshot(path: &Path, name: &str) -> Result<SnapshotInfo, String> {
    let stem = name
        .strip_suffix(".oxd")
        .ok_or("a snapshot's name ends with .oxd")?;
    let bytes = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let index = Index::open(&mut f).map_err(|e| format!("not a complete OXD archive: {e}"))?;
    let Some(w) = index.footer.summary.oplog else {
        return Err("it has no oplog window (a snapshot is a dump taken with --oplog)".into());
    };
    Ok(SnapshotInfo {
        name: stem.to_string(),
        path: path.to_path_buf(),
        started_at: index
            .catalog
            .source
            .created_at
            .and_then(|t| t.try_to_rfc3339_string().ok()),
        window_start: w.start,
        consistent: w.end,
        bytes,
        documents: index
            .footer
            .namespaces
            .iter()
            .map(|n| n.end.doc_count)
            .sum(),
        namespaces: index
            .catalog
            .namespaces
            .iter()
            .filter(|n| n.kind != NsKind::Oplog)
            .map(|n| n.full_name())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_markers() {
        let t = bson::DateTime::from_millis(1_796_174_139_123);
        let s = chrono_stamp(t);
        assert_eq!(s.len(), 16, "{s}");
        assert!(s.ends_with('Z') && s.contains('T'));
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("r");
        assert!(Repo::open(&root).is_err());
        let r = Repo::open_or_create(&root).expect("create");
        assert!(Repo::is_repo(r.root()));
        Repo::open(&root).expect("open");
        std::fs::write(dir.path().join("other"), b"x").expect("w");
        assert!(
            Repo::open_or_create(dir.path()).is_err(),
            "a non-empty directory without a marker is refused"
        );
    }

    #[test]
    fn a_gap_is_recorded_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Repo::open_or_create(dir.path()).expect("create");
        let after = OpTime {
            ts: Timestamp {
                time: 10,
                increment: 2,
            },
            t: None,
        };
        let before = Timestamp {
            time: 20,
            increment: 1,
        };
        assert!(r.record_gap(after, before, "rolled over").expect("gap"));
        assert!(!r.record_gap(after, before, "again").expect("gap"));
        let (gaps, bad) = r.gaps().expect("gaps");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].after_optime(), Some(after));
        assert_eq!(gaps[0].before, "20:1");
    }

    #[test]
    fn a_rollback_is_recorded_once_and_checked() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Repo::open_or_create(dir.path()).expect("create");
        let op = |time, increment| OpTime {
            ts: Timestamp { time, increment },
            t: Some(3),
        };
        let oldest = Timestamp {
            time: 1,
            increment: 1,
        };
        assert!(
            r.record_rollback(op(10, 5), op(10, 2), 3, oldest, "lost")
                .expect("record")
        );
        assert!(
            !r.record_rollback(op(10, 5), op(10, 1), 4, oldest, "again")
                .expect("record")
        );
        let (rb, bad) = r.rollbacks().expect("rollbacks");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rb.len(), 1);
        assert_eq!(rb[0].common_optime(), Some(op(10, 2)));
        assert_eq!(rb[0].lost, 3);
        // A record whose common point is not before the archived entry is refused.
        let mut wrong = rb[0].clone();
        wrong.common = GapOpTime::of(op(11, 1));
        let name = format!("{}.json", segment::ts_name(op(10, 5).ts));
        std::fs::write(
            dir.path().join(ROLLBACKS).join(&name),
            serde_json::to_string(&wrong).expect("json"),
        )
        .expect("write");
        let (rb, bad) = r.rollbacks().expect("rollbacks");
        assert!(rb.is_empty() && bad.len() == 1, "{bad:?}");
    }

    #[test]
    fn a_follower_status_past_its_promise_is_not_running() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Repo::open_or_create(dir.path()).expect("create");
        assert_eq!(r.follower_status().expect("read"), None);
        let mut s = FollowerStatus {
            pid: 1,
            state: "following".into(),
            detail: String::new(),
            uri: String::new(),
            started_at: String::new(),
            updated_at: String::new(),
            next_update_by: Some("2000-01-01T00:00:00Z".into()),
            last_read: None,
            last_sealed: None,
            unsealed_entries: 0,
            segments: 0,
            entries: 0,
            reconnects: 0,
        };
        r.write_follower_status(&s).expect("write");
        let read = r.follower_status().expect("read").expect("a status");
        assert_eq!(read, s);
        assert_eq!(read.effective_state(), "not running");
        s.next_update_by = Some("2999-01-01T00:00:00Z".into());
        assert_eq!(s.effective_state(), "following");
        s.state = "stopped".into();
        s.next_update_by = None;
        assert_eq!(s.effective_state(), "stopped");
        // The status is hidden: no reader of the layout sees it.
        assert!(
            list_names(dir.path())
                .expect("ls")
                .iter()
                .all(|n| n != FOLLOWER_STATUS)
        );
    }
}
