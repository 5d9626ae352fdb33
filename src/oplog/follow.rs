//! The oplog follower: tails `local.oplog.rs` and archives it as sealed segments in a
//! backup repository (`format-spec/repository-v1.md` §5–§7).
//!
//! - It resumes after the last sealed entry of the repository, after checking that
//!   the server still holds that entry (same `ts` and term). When the server's oldest
//!   entry is newer, the oplog rolled over while nothing archived it: the gap is
//!   recorded and the run fails unless told to continue. When the server holds older
//!   entries but not that one, the set lost it (a rollback): the run fails.
//! - Entries are read with a tailable, awaiting cursor in natural (oplog) order; an
//!   idle cursor is reopened after [`IDLE_REOPEN`], so a server whose tailable cursors
//!   never deliver is still followed.
//! - One segment is open at a time, streamed to a hidden file (a killed run's is
//!   removed by the next); it is sealed when its
//!   entries span `segment_span`, hold `segment_size` raw bytes, or have waited
//!   `segment_span` since its first entry arrived. A kill loses only the open segment,
//!   which the next run reads again from the server.
//! - A network failure is reported and retried with exponential backoff (reset once a
//!   connection works again); the open segment is kept and continued after the
//!   reconnection checks above, so nothing is lost or archived twice.
//! - While it runs, it replaces the repository's hidden status file every
//!   [`STATUS_EVERY`] ([`status`] reads it, with the server's newest entry, for the lag).
//! - With `once`, it archives up to the newest entry at its start, seals and returns.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::{Document, RawDocumentBuf, Timestamp, doc};
use futures_util::TryStreamExt;
use mongodb::Client;
use mongodb::options::CursorType;
use serde::Serialize;

use super::entry::show_ts;
use super::segment::{self, OpTime, SegmentError, SegmentWriter};
use crate::catalog::{OPLOG_COLLECTION, OPLOG_DB, SourceInfo};
use crate::connect::{self, ConnectError};
use crate::oxd::writer::WriterOptions;
use crate::repo::{FollowerStatus, Repo, RepoError};

/// Default span of a segment.
pub const DEFAULT_SPAN: Duration = Duration::from_secs(600);
/// Default raw size of a segment.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// How long a cursor may stay without an entry before it is reopened.
pub const IDLE_REOPEN: Duration = Duration::from_secs(1);
/// Longest wait between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a running follower replaces its status file.
pub const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How late a running follower's status may be before it is taken for stopped.
pub const STATUS_GRACE: Duration = Duration::from_secs(10);

/// Options of the follower.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// The source server.
    pub uri: String,
    /// The repository (created when missing).
    pub repo: PathBuf,
    /// Seal a segment once its entries span this long.
    pub segment_span: Duration,
    /// Seal a segment once its entries hold this many raw bytes.
    pub segment_size: u64,
    /// Archive up to the newest entry at the start, then return.
    pub once: bool,
    /// After recording a gap, continue archiving from the oldest entry the server holds.
    pub continue_after_gap: bool,
    /// After recording a rollback, continue archiving after the lost entries, in a new
    /// chain.
    pub continue_after_rollback: bool,
    /// How segments are written.
    pub writer: WriterOptions,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            uri: String::new(),
            repo: PathBuf::new(),
            segment_span: DEFAULT_SPAN,
            segment_size: DEFAULT_SEGMENT_SIZE,
            once: false,
            continue_after_gap: false,
            continue_after_rollback: false,
            writer: WriterOptions::default(),
        }
    }
}

/// Something the follower tells its caller as it goes.
#[derive(Debug, Clone)]
pub enum FollowEvent {
    /// Archiving starts or resumes.
    Resumed(String),
    /// A segment was sealed.
    Sealed {
        /// Its path.
        path: PathBuf,
        /// Entries in it.
        entries: u64,
        /// Raw bytes of its entries.
        bytes: u64,
    },
    /// The oplog rolled over while nothing archived it.
    Gap(String),
    /// The replica set lost archived entries.
    Rollback(String),
    /// Connected again after a failure.
    Reconnected(String),
    /// The connection failed; the follower waits before trying again.
    Reconnecting {
        /// What failed.
        error: String,
        /// How long it waits.
        wait: Duration,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FollowReport {
    /// Segments sealed.
    pub segments: u64,
    /// Entries archived.
    pub entries: u64,
    /// Raw bytes archived.
    pub bytes: u64,
    /// The newest archived entry.
    pub last: Option<String>,
    /// Gaps recorded.
    pub gaps: Vec<String>,
    /// Rollbacks recorded.
    pub rollbacks: Vec<String>,
    /// Reconnections.
    pub reconnects: u64,
}

/// Error of the follower.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A segment failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The server has no oplog.
    #[error("{0}: the server has no oplog to follow (it must be a replica set member)")]
    NoOplog(String),
    /// A command failed.
    #[error("{what}: {}", connect::describe(source))]
    Driver {
        /// What was being done.
        what: String,
        /// The driver's error.
        source: mongodb::error::Error,
    },
    /// The oplog rolled over while nothing archived it.
    #[error(
        "GAP in the oplog archive: the last archived entry is {after}, but the oldest entry the server still holds is {oldest}; the entries between them may be lost and no restore can cross this gap. The gap is recorded in the repository; run again with --continue-after-gap to archive from {oldest} on"
    )]
    Gap {
        /// The last archived entry.
        after: String,
        /// The server's oldest entry.
        oldest: String,
    },
    /// The set lost entries that were archived.
    #[error(
        "ROLLBACK: the server no longer holds the last archived entry {archived} ({found}): the replica set rolled back the {lost} archived entries after {common}. The rollback is recorded in the repository; no restore reaches a moment among the lost entries. Run again with --continue-after-rollback to archive the set's new history after {archived_ts}, in a new chain"
    )]
    Rollback {
        /// The archived entry.
        archived: String,
        /// Its timestamp.
        archived_ts: String,
        /// What the server holds there.
        found: String,
        /// The newest archived entry the server still holds.
        common: String,
        /// Archived entries after it.
        lost: u64,
    },
    /// The server shares no archived entry it could hold.
    #[error(
        "the server holds none of the archived entries from {oldest} up to the last one, {archived}: it follows another history (another replica set, or one rebuilt from a backup). Nothing was recorded or archived; follow it into another repository"
    )]
    Diverged {
        /// The last archived entry.
        archived: String,
        /// The server's oldest entry.
        oldest: String,
    },
}

fn driver(what: &str) -> impl FnOnce(mongodb::error::Error) -> FollowError + '_ {
    move |source| FollowError::Driver {
        what: what.into(),
        source,
    }
}

fn is_network(e: &FollowError) -> bool {
    match e {
        FollowError::Driver { source, .. } => connect::is_network(source),
        FollowError::Connect(ConnectError::Unreachable { .. }) => true,
        _ => false,
    }
}

fn oplog(client: &Client) -> mongodb::Collection<RawDocumentBuf> {
    client
        .database(OPLOG_DB)
        .collection::<RawDocumentBuf>(OPLOG_COLLECTION)
}

/// The oldest entry the server holds.
async fn oldest(client: &Client) -> Result<Option<Timestamp>, FollowError> {
    let d = client
        .database(OPLOG_DB)
        .collection::<Document>(OPLOG_COLLECTION)
        .find_one(doc! {})
        .sort(doc! {"$natural": 1})
        .projection(doc! {"ts": 1})
        .await
        .map_err(driver("reading the oldest oplog entry"))?;
    Ok(d.and_then(|d| d.get_timestamp("ts").ok()))
}

/// Where archiving goes on from.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// After this archived entry.
    After(OpTime),
    /// From this entry on (a new chain).
    From(Timestamp),
    /// After this timestamp, in a new chain (after a rollback).
    NewChainAfter(Timestamp),
}

/// Checks that the server still holds `last` and decides where to read from.
async fn resume_point(
    client: &Client,
    repo: &Repo,
    last: Option<OpTime>,
    opts: &FollowOptions,
    report: &mut FollowReport,
    events: &(dyn Fn(FollowEvent) + Send + Sync),
) -> Result<Start, FollowError> {
    let Some(oldest) = oldest(client).await? else {
        return Err(FollowError::NoOplog(connect::redact_uri(&opts.uri)));
    };
    let Some(l) = last else {
        return Ok(Start::From(oldest));
    };
    let at = client
        .database(OPLOG_DB)
        .collection::<Document>(OPLOG_COLLECTION)
        .find_one(doc! {"ts": l.ts})
        .projection(doc! {"ts": 1, "t": 1})
        .await
        .map_err(driver("looking up the last archived entry"))?;
    let found = match at {
        Some(d) => {
            let t = d.get_i64("t").ok();
            if t == l.t {
                return Ok(Start::After(l));
            }
            format!(
                "its timestamp is held with term {}",
                t.map_or("none".into(), |t| t.to_string())
            )
        }
        None if oldest <= l.ts => format!("the oldest entry held is {}", show_ts(oldest)),
        None => String::new(),
    };
    if !found.is_empty() {
        return rollback(client, repo, l, oldest, found, opts, report, events).await;
    }
    let reason = format!(
        "the oldest entry the server held ({}) was newer than the last archived entry ({})",
        show_ts(oldest),
        l.show()
    );
    repo.record_gap(l, oldest, &reason)?;
    report.gaps.push(reason.clone());
    events(FollowEvent::Gap(reason));
    if opts.continue_after_gap {
        Ok(Start::From(oldest))
    } else {
        Err(FollowError::Gap {
            after: l.show(),
            oldest: show_ts(oldest),
        })
    }
}

/// The newest archived entry the server still holds (same `ts` and term), and how
/// many archived entries come after it. Segments are read from the newest back, down
/// to the first that starts before the server's oldest entry.
async fn common_point(
    client: &Client,
    repo: &Repo,
    oldest: Timestamp,
) -> Result<Option<(OpTime, u64)>, FollowError> {
    let mut lost = 0u64;
    for s in repo.segments()?.iter().rev() {
        let Ok(meta) = &s.meta else { continue };
        let ops = segment::read_optimes(&s.path)?;
        let mut held = HashSet::new();
        let mut cursor = client
            .database(OPLOG_DB)
            .collection::<Document>(OPLOG_COLLECTION)
            .find(doc! {"ts": {"$gte": meta.first.ts, "$lte": meta.last.ts}})
            .projection(doc! {"ts": 1, "t": 1, "_id": 0})
            .await
            .map_err(driver(
                "reading the server's entries of an archived segment",
            ))?;
        while let Some(d) = cursor.try_next().await.map_err(driver(
            "reading the server's entries of an archived segment",
        ))? {
            if let Ok(ts) = d.get_timestamp("ts") {
                held.insert((ts.time, ts.increment, d.get_i64("t").ok()));
            }
        }
        for o in ops.iter().rev() {
            if held.contains(&(o.ts.time, o.ts.increment, o.t)) {
                return Ok(Some((*o, lost)));
            }
            lost += 1;
        }
        if meta.first.ts < oldest {
            break;
        }
    }
    Ok(None)
}

/// The set lost the archived entry `l`: finds what it still holds, records the
/// rollback, and goes on after `l` in a new chain when told to.
#[allow(clippy::too_many_arguments)]
async fn rollback(
    client: &Client,
    repo: &Repo,
    l: OpTime,
    oldest: Timestamp,
    found: String,
    opts: &FollowOptions,
    report: &mut FollowReport,
    events: &(dyn Fn(FollowEvent) + Send + Sync),
) -> Result<Start, FollowError> {
    let Some((common, lost)) = common_point(client, repo, oldest).await? else {
        return Err(FollowError::Diverged {
            archived: l.show(),
            oldest: show_ts(oldest),
        });
    };
    let reason = format!(
        "the server no longer holds the archived entry {} ({found}); the newest archived entry it holds is {}, after which {lost} archived entries were lost",
        l.show(),
        common.show()
    );
    if repo.record_rollback(l, common, lost, oldest, &reason)? {
        report.rollbacks.push(reason.clone());
        events(FollowEvent::Rollback(reason));
    }
    if opts.continue_after_rollback {
        Ok(Start::NewChainAfter(l.ts))
    } else {
        Err(FollowError::Rollback {
            archived: l.show(),
            archived_ts: show_ts(l.ts),
            found,
            common: common.show(),
            lost,
        })
    }
}

/// The open segment and when its first entry arrived.
struct Open {
    w: SegmentWriter,
    since: Instant,
}

struct State<'a> {
    repo: &'a Repo,
    opts: &'a FollowOptions,
    source: SourceInfo,
    open: Option<Open>,
    /// The newest entry pushed (sealed or not).
    last: Option<OpTime>,
    /// Whether the next segment starts a chain (after a gap, or the first ever).
    chain_start: bool,
    report: FollowReport,
    status: Arc<Mutex<FollowerStatus>>,
}

impl State<'_> {
    fn push(
        &mut self,
        entry: &RawDocumentBuf,
        events: &(dyn Fn(FollowEvent) + Send + Sync),
    ) -> Result<(), FollowError> {
        if self.open.is_none() {
            let prev = if self.chain_start { None } else { self.last };
            self.open = Some(Open {
                w: SegmentWriter::create(
                    &self.repo.oplog_dir(),
                    prev,
                    &self.source,
                    self.opts.writer,
                )?,
                since: Instant::now(),
            });
        }
        let open = self.open.as_mut().expect("opened above");
        open.w.push(entry)?;
        self.last = open.w.last();
        let unsealed = open.w.count();
        if let Ok(mut s) = self.status.lock() {
            s.last_read = self.last.map(|l| show_ts(l.ts));
            s.unsealed_entries = unsealed;
        }
        let span = self.opts.segment_span.as_secs();
        let full = open.w.raw_bytes() >= self.opts.segment_size
            || match (open.w.first(), open.w.last()) {
                (Some(f), Some(l)) => u64::from(l.ts.time.saturating_sub(f.ts.time)) >= span,
                _ => false,
            };
        if full {
            self.seal(events)?;
        }
        Ok(())
    }

    fn seal(&mut self, events: &(dyn Fn(FollowEvent) + Send + Sync)) -> Result<(), FollowError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let bytes = open.w.raw_bytes();
        if let Some((path, meta)) = open.w.seal()? {
            self.chain_start = false;
            self.report.segments += 1;
            self.report.entries += meta.count;
            self.report.bytes += bytes;
            self.report.last = Some(meta.last.show());
            if let Ok(mut s) = self.status.lock() {
                s.last_sealed = Some(show_ts(meta.last.ts));
                s.unsealed_entries = 0;
                s.segments = self.report.segments;
                s.entries = self.report.entries;
            }
            events(FollowEvent::Sealed {
                path,
                entries: meta.count,
                bytes,
            });
        }
        Ok(())
    }

    /// Sets the state shown by the status file.
    fn set_state(&self, state: &str, detail: String) {
        if let Ok(mut s) = self.status.lock() {
            s.state = state.into();
            s.detail = detail;
            s.reconnects = self.report.reconnects;
        }
    }

    fn idle_seal_due(&self) -> bool {
        self.open
            .as_ref()
            .is_some_and(|o| o.since.elapsed() >= self.opts.segment_span)
    }
}

/// Removes the hidden files of segments a killed follower left open (only one
/// follower writes to a repository).
fn remove_stale_segments(repo: &Repo) {
    let Ok(rd) = std::fs::read_dir(repo.oplog_dir()) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(".segment-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Follows the oplog of `opts.uri` into `opts.repo` until `shutdown` resolves (or, with
/// `once`, up to the newest entry at the start). The open segment is sealed on the
/// way out.
pub async fn run(
    opts: FollowOptions,
    events: &(dyn Fn(FollowEvent) + Send + Sync),
    shutdown: impl Future<Output = ()>,
) -> Result<FollowReport, FollowError> {
    let repo = Repo::open_or_create(&opts.repo)?;
    remove_stale_segments(&repo);
    let last_sealed = repo.last_sealed()?;
    let started = bson::DateTime::now();
    let status = Arc::new(Mutex::new(FollowerStatus {
        pid: std::process::id(),
        state: "following".into(),
        detail: "connecting".into(),
        uri: connect::redact_uri(&opts.uri),
        started_at: rfc3339(started),
        updated_at: String::new(),
        next_update_by: None,
        last_read: last_sealed.map(|l| show_ts(l.ts)),
        last_sealed: last_sealed.map(|l| show_ts(l.ts)),
        unsealed_entries: 0,
        segments: 0,
        entries: 0,
        reconnects: 0,
    }));
    let heartbeat = {
        let (repo, status) = (repo.clone(), status.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(STATUS_EVERY);
            loop {
                tick.tick().await;
                let snapshot = status.lock().map(|s| s.clone());
                if let Ok(s) = snapshot {
                    // A status that cannot be written is not worth stopping the archive for.
                    let _ = write_status(&repo, s, true);
                }
            }
        })
    };
    let mut st = State {
        repo: &repo,
        opts: &opts,
        source: SourceInfo {
            tool: Some(crate::oxd::manifest::writer_name()),
            uri: Some(connect::redact_uri(&opts.uri)),
            created_at: Some(started),
            ..SourceInfo::default()
        },
        open: None,
        last: last_sealed,
        chain_start: last_sealed.is_none(),
        report: FollowReport::default(),
        status: status.clone(),
    };
    let mut shutdown = pin!(shutdown);
    let mut backoff = Duration::from_secs(1);
    let mut target: Option<Timestamp> = None;
    let mut failing: Option<String> = None;
    let result = loop {
        let attempt = follow_once(
            &mut st,
            &mut target,
            &mut failing,
            events,
            shutdown.as_mut(),
        )
        .await;
        match attempt {
            Ok(()) => break Ok(()),
            Err(e) if is_network(&e) => {
                if failing.is_none() {
                    // The first failure after a working connection: retry soon.
                    backoff = Duration::from_secs(1);
                }
                st.report.reconnects += 1;
                failing = Some(e.to_string());
                st.set_state(
                    "reconnecting",
                    format!("{e}; retrying in {} s", backoff.as_secs()),
                );
                events(FollowEvent::Reconnecting {
                    error: e.to_string(),
                    wait: backoff,
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.as_mut() => break Ok(()),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => break Err(e),
        }
    };
    // What was read is kept, whatever stopped the run (a gap or a rollback seals the
    // entries read before it; nothing after them was pushed).
    let sealed = st.seal(events);
    heartbeat.abort();
    let _ = heartbeat.await;
    let (state, detail) = match (&result, &sealed) {
        (Ok(()), Ok(())) => ("stopped", "the run ended".to_string()),
        (Err(e), _) => ("failed", e.to_string()),
        (_, Err(e)) => ("failed", e.to_string()),
    };
    st.set_state(state, detail);
    if let Ok(s) = status.lock().map(|s| s.clone()) {
        let _ = write_status(&repo, s, false);
    }
    sealed?;
    result.map(|()| st.report)
}

fn rfc3339(t: bson::DateTime) -> String {
    t.try_to_rfc3339_string().unwrap_or_default()
}

/// Writes the status, stamped now; a running follower promises the next one within
/// [`STATUS_GRACE`].
fn write_status(repo: &Repo, mut s: FollowerStatus, running: bool) -> Result<(), RepoError> {
    let now = bson::DateTime::now();
    s.updated_at = rfc3339(now);
    s.next_update_by = running.then(|| {
        rfc3339(bson::DateTime::from_millis(
            now.timestamp_millis() + STATUS_GRACE.as_millis() as i64,
        ))
    });
    repo.write_follower_status(&s)
}

/// What `oplog follow --status` shows: the follower's state and how far the archive is
/// behind the server.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The repository.
    pub repo: PathBuf,
    /// `following`, `reconnecting`, `stopped`, `failed`, `not running` (a running
    /// state whose follower stopped writing it) or `never run`.
    pub state: String,
    /// What the follower last said, if it ever ran here.
    pub follower: Option<FollowerStatus>,
    /// The newest sealed entry of the repository (`S:I`).
    pub last_sealed: Option<String>,
    /// The newest entry the server holds (`S:I`), when it could be asked.
    pub server_newest: Option<String>,
    /// Seconds between the server's newest entry and the newest sealed entry.
    pub lag_seconds: Option<u32>,
    /// Entries the server holds after the newest sealed entry.
    pub lag_entries: Option<u64>,
    /// Why the server could not be asked.
    pub server_error: Option<String>,
}

impl Status {
    /// Whether the follower's last run failed (a gap, a rollback, another error).
    pub fn failed(&self) -> bool {
        self.state == "failed"
    }

    /// For people.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "repository {}", self.repo.display());
        match &self.follower {
            Some(f) => {
                let _ = writeln!(
                    s,
                    "follower: {} (pid {}, started {}, updated {}): {}",
                    self.state, f.pid, f.started_at, f.updated_at, f.detail
                );
                let _ = writeln!(
                    s,
                    "  this run: {} segments, {} entries sealed, {} read and not sealed yet, {} reconnections; newest read {}",
                    f.segments,
                    f.entries,
                    f.unsealed_entries,
                    f.reconnects,
                    f.last_read.as_deref().unwrap_or("-")
                );
            }
            None => {
                let _ = writeln!(s, "follower: {}", self.state);
            }
        }
        let _ = writeln!(
            s,
            "newest sealed entry: {}",
            self.last_sealed.as_deref().unwrap_or("-")
        );
        match (&self.server_newest, &self.server_error) {
            (Some(n), _) => {
                let _ = writeln!(
                    s,
                    "server's newest entry: {n}; lag: {} s, {} entries",
                    self.lag_seconds.map_or("-".into(), |l| l.to_string()),
                    self.lag_entries.map_or("-".into(), |l| l.to_string())
                );
            }
            (None, Some(e)) => {
                let _ = writeln!(s, "server: {e}");
            }
            (None, None) => {}
        }
        s
    }
}

/// Reads the follower's status in `repo` and measures the lag against `uri`'s oplog:
/// the server's newest entry against the newest sealed one, in seconds and entries.
/// A server that cannot be asked is reported, not an error.
pub async fn status(uri: &str, repo: &std::path::Path) -> Result<Status, FollowError> {
    let repo = Repo::open(repo)?;
    let follower = repo.follower_status()?;
    let last = repo.last_sealed()?;
    let state = follower
        .as_ref()
        .map_or_else(|| "never run".to_string(), FollowerStatus::effective_state);
    let mut out = Status {
        repo: repo.root().to_path_buf(),
        state,
        follower,
        last_sealed: last.map(|l| show_ts(l.ts)),
        server_newest: None,
        lag_seconds: None,
        lag_entries: None,
        server_error: None,
    };
    let asked = async {
        let client = connect::connect(uri, 1, None).await?;
        let newest = super::capture::newest(&client)
            .await
            .map_err(|e| FollowError::NoOplog(e.to_string()))?;
        let filter = match last {
            Some(l) => doc! {"ts": {"$gt": l.ts}},
            None => doc! {},
        };
        let behind = client
            .database(OPLOG_DB)
            .collection::<Document>(OPLOG_COLLECTION)
            .count_documents(filter)
            .await
            .map_err(driver("counting the entries after the newest sealed one"))?;
        connect::close(client).await;
        Ok::<_, FollowError>((newest, behind))
    };
    match asked.await {
        Ok((newest, behind)) => {
            out.server_newest = Some(show_ts(newest));
            out.lag_seconds = last.map(|l| newest.time.saturating_sub(l.ts.time));
            out.lag_entries = Some(behind);
        }
        Err(e) => out.server_error = Some(e.to_string()),
    }
    Ok(out)
}

/// One connection's worth of following: connects, checks where to go on from, reads.
async fn follow_once(
    st: &mut State<'_>,
    target: &mut Option<Timestamp>,
    failing: &mut Option<String>,
    events: &(dyn Fn(FollowEvent) + Send + Sync),
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<(), FollowError> {
    // What was read before a connection failed is sealed first: the checks below then
    // look at archived entries only, and a rollback's record names a sealed one.
    st.seal(events)?;
    let client = tokio::select! {
        c = connect::connect(&st.opts.uri, 2, None) => c?,
        _ = shutdown.as_mut() => return Ok(()),
    };
    if st.source.server_version.is_none()
        && let Ok(info) = connect::server_info(&client).await
    {
        st.source.server_version = Some(info.version.clone());
    }
    let start = {
        let last = st.last;
        let mut report = std::mem::take(&mut st.report);
        let r = resume_point(&client, st.repo, last, st.opts, &mut report, events).await;
        st.report = report;
        r?
    };
    if let Some(was) = failing.take() {
        events(FollowEvent::Reconnected(format!(
            "connected again to {} after {} failed attempt(s) (last: {was})",
            connect::redact_uri(&st.opts.uri),
            st.report.reconnects
        )));
    }
    st.set_state("following", "reading the oplog".into());
    if let Start::NewChainAfter(t) = start {
        // `last` stays the lost entry: a reconnection before the new chain's first
        // segment finds the rollback again and goes on after it again.
        st.chain_start = true;
        events(FollowEvent::Resumed(format!(
            "archiving the set's history after {} in a new chain (after the rollback)",
            show_ts(t)
        )));
    } else if let Start::From(t) = start {
        if st.last.is_some() {
            // A gap was recorded: what is open ends the old chain.
            st.seal(events)?;
        }
        st.chain_start = true;
        st.last = None;
        events(FollowEvent::Resumed(format!(
            "archiving from {} (the oldest entry the server holds)",
            show_ts(t)
        )));
    } else if let Some(l) = st.last {
        events(FollowEvent::Resumed(format!(
            "archiving after {}",
            l.show()
        )));
    }
    let mut from = start;
    if st.opts.once && target.is_none() {
        let end = super::capture::newest(&client)
            .await
            .map_err(|e| FollowError::NoOplog(e.to_string()))?;
        *target = Some(super::capture::settle(&client, end).await.unwrap_or(end));
    }
    loop {
        let mut filter = match from {
            Start::After(l) => doc! {"ts": {"$gt": l.ts}},
            Start::From(t) => doc! {"ts": {"$gte": t}},
            Start::NewChainAfter(t) => doc! {"ts": {"$gt": t}},
        };
        if let Some(t) = *target {
            if st.last.is_some_and(|l| l.ts >= t) {
                return Ok(());
            }
            let ts = filter.get_document_mut("ts").expect("built above");
            ts.insert("$lte", t);
        }
        let coll = oplog(&client);
        let find = coll.find(filter);
        let mut cursor = if target.is_some() {
            find.await
        } else {
            find.cursor_type(CursorType::TailableAwait)
                .max_await_time(IDLE_REOPEN)
                .await
        }
        .map_err(driver("opening a cursor on the oplog"))?;
        loop {
            let next = tokio::select! {
                n = tokio::time::timeout(IDLE_REOPEN, cursor.try_next()) => n,
                _ = shutdown.as_mut() => return Ok(()),
            };
            match next {
                Ok(Ok(Some(entry))) => {
                    st.push(&entry, events)?;
                }
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(driver("reading the oplog")(e)),
                // A plain cursor is only slow: keep reading it.
                Err(_) if target.is_some() => {}
                // Idle: seal a segment that waited long enough, reopen the cursor.
                Err(_) => break,
            }
        }
        if let Some(l) = st.last {
            from = Start::After(l);
        }
        if target.is_some() {
            // A plain cursor ended: everything up to the target was read.
            return Ok(());
        }
        if st.idle_seal_due() {
            st.seal(events)?;
        }
    }
}
