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
//! - A network failure is reported and retried with exponential backoff; the open
//!   segment is kept and continued after the reconnection checks above.
//! - With `once`, it archives up to the newest entry at its start, seals and returns.

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::time::{Duration, Instant};

use bson::{Document, RawDocumentBuf, Timestamp, doc};
use futures_util::TryStreamExt;
use mongodb::Client;
use mongodb::options::CursorType;
use serde::Serialize;

use super::entry::show_ts;
use super::segment::{OpTime, SegmentError, SegmentWriter};
use crate::catalog::{OPLOG_COLLECTION, OPLOG_DB, SourceInfo};
use crate::connect::{self, ConnectError};
use crate::oxd::writer::WriterOptions;
use crate::repo::{Repo, RepoError};

/// Default span of a segment.
pub const DEFAULT_SPAN: Duration = Duration::from_secs(600);
/// Default raw size of a segment.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// How long a cursor may stay without an entry before it is reopened.
pub const IDLE_REOPEN: Duration = Duration::from_secs(1);
/// Longest wait between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

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
        "the server no longer holds the last archived entry {archived} ({found}) although it holds older entries: the replica set rolled back entries that were archived. Nothing more is archived; move the repository's segments after the rollback point aside and run again"
    )]
    Rollback {
        /// The archived entry.
        archived: String,
        /// What the server holds there.
        found: String,
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
    if let Some(d) = at {
        let t = d.get_i64("t").ok();
        if t == l.t {
            return Ok(Start::After(l));
        }
        return Err(FollowError::Rollback {
            archived: l.show(),
            found: format!(
                "its timestamp is held with term {}",
                t.map_or("none".into(), |t| t.to_string())
            ),
        });
    }
    if oldest <= l.ts {
        return Err(FollowError::Rollback {
            archived: l.show(),
            found: format!("the oldest entry held is {}", show_ts(oldest)),
        });
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
            events(FollowEvent::Sealed {
                path,
                entries: meta.count,
                bytes,
            });
        }
        Ok(())
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
    let mut st = State {
        repo: &repo,
        opts: &opts,
        source: SourceInfo {
            tool: Some(crate::oxd::manifest::writer_name()),
            uri: Some(connect::redact_uri(&opts.uri)),
            created_at: Some(bson::DateTime::now()),
            ..SourceInfo::default()
        },
        open: None,
        last: last_sealed,
        chain_start: last_sealed.is_none(),
        report: FollowReport::default(),
    };
    let mut shutdown = pin!(shutdown);
    let mut backoff = Duration::from_secs(1);
    let mut target: Option<Timestamp> = None;
    let result = loop {
        let attempt = follow_once(&mut st, &mut target, events, shutdown.as_mut()).await;
        match attempt {
            Ok(()) => break Ok(()),
            Err(e) if is_network(&e) => {
                st.report.reconnects += 1;
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
    st.seal(events)?;
    result.map(|()| st.report)
}

/// One connection's worth of following: connects, checks where to go on from, reads.
async fn follow_once(
    st: &mut State<'_>,
    target: &mut Option<Timestamp>,
    events: &(dyn Fn(FollowEvent) + Send + Sync),
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<(), FollowError> {
    let client = connect::connect(&st.opts.uri, 2, None).await?;
    if st.source.server_version.is_none()
        && let Ok(info) = connect::server_info(&client).await
    {
        st.source.server_version = Some(info.version.clone());
    }
    // Entries pushed to the open segment are checked like sealed ones: a gap or a
    // rollback seals what was read first.
    let start = {
        let last = st.last;
        let mut report = std::mem::take(&mut st.report);
        let r = resume_point(&client, st.repo, last, st.opts, &mut report, events).await;
        st.report = report;
        match r {
            Ok(s) => s,
            Err(e) => {
                if matches!(e, FollowError::Gap { .. }) {
                    st.seal(events)?;
                }
                return Err(e);
            }
        }
    };
    if let Start::From(t) = start {
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
