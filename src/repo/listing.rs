//! `ls` of a repository: snapshots, the oplog archive, the restorable windows and
//! every gap with its bounds.

use serde::Serialize;

use super::chain::{self, Break, Window};
use super::{FollowerStatus, Repo, RepoError, RollbackRecord, SnapshotInfo};
use crate::oplog::entry::show_ts;

/// The oplog archive in one line.
#[derive(Debug, Clone, Serialize, Default)]
pub struct OplogArchive {
    /// Readable segments.
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Their entries.
    pub entries: u64,
    /// The oldest archived entry (`S:I`).
    pub oldest: Option<String>,
    /// The newest archived entry.
    pub newest: Option<String>,
    /// Seconds between the newest archived entry and now.
    pub lag_seconds: Option<i64>,
    /// Segments that cannot be read or whose name lies, with the reason.
    pub damaged: Vec<(String, String)>,
}

/// What `ls DIR` shows.
#[derive(Debug, Clone, Serialize)]
pub struct RepoListing {
    /// The repository.
    pub path: std::path::PathBuf,
    /// Snapshots, oldest consistent point first.
    pub snapshots: Vec<SnapshotInfo>,
    /// Objects under `snapshots/` that are not readable snapshots.
    pub unreadable_snapshots: Vec<(String, String)>,
    /// The oplog archive.
    pub oplog: OplogArchive,
    /// Each snapshot's window.
    pub windows: Vec<Window>,
    /// Every break of the chain (recorded gaps and rollbacks, and damage).
    pub gaps: Vec<Break>,
    /// Every recorded rollback: archived entries the replica set lost.
    pub rollbacks: Vec<RollbackRecord>,
    /// Objects under `gaps/` or `rollbacks/` that cannot be read, with the reason.
    pub unreadable_records: Vec<(String, String)>,
    /// What the follower last said about itself, if one ever ran here.
    pub follower: Option<FollowerStatus>,
}

impl RepoListing {
    /// Whether the listing shows nothing wrong (recorded gaps are not damage).
    pub fn is_clean(&self) -> bool {
        self.unreadable_snapshots.is_empty()
            && self.unreadable_records.is_empty()
            && self.oplog.damaged.is_empty()
            && self.gaps.iter().all(|g| g.kind.is_recorded())
    }
}

/// Lists a repository (footers and segment summaries only; no data is read).
pub fn list(repo: &Repo) -> Result<RepoListing, RepoError> {
    let (snapshots, bad) = repo.snapshots()?;
    let (gaps, bad_gaps) = repo.gaps()?;
    let (rollbacks, bad_rollbacks) = repo.rollbacks()?;
    let chain = chain::analyse(repo.segments()?, &gaps, &rollbacks);
    let windows = chain::windows(&snapshots, &chain);
    let newest = chain::newest(&chain);
    let oplog = OplogArchive {
        segments: chain.segments.len(),
        bytes: chain.segments.iter().map(|(s, _)| s.bytes).sum(),
        entries: chain.segments.iter().map(|(_, m)| m.count).sum(),
        oldest: chain.segments.first().map(|(_, m)| show_ts(m.first.ts)),
        newest: newest.map(|n| show_ts(n.ts)),
        lag_seconds: newest
            .map(|n| bson::DateTime::now().timestamp_millis() / 1000 - i64::from(n.ts.time)),
        damaged: chain
            .damaged
            .iter()
            .map(|(s, why)| (s.name.clone(), why.clone()))
            .collect(),
    };
    Ok(RepoListing {
        path: repo.root().to_path_buf(),
        unreadable_snapshots: bad
            .into_iter()
            .map(|(p, why)| (p.display().to_string(), why))
            .collect(),
        snapshots,
        oplog,
        windows,
        gaps: chain.breaks,
        rollbacks,
        unreadable_records: bad_gaps
            .into_iter()
            .chain(bad_rollbacks)
            .map(|(p, why)| (p.display().to_string(), why))
            .collect(),
        // A status that cannot be read is not worth failing a listing for.
        follower: repo.follower_status().ok().flatten(),
    })
}

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Renders a listing for people.
pub fn render_text(l: &RepoListing) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "repository {}", l.path.display());
    let _ = writeln!(s, "snapshots: {}", l.snapshots.len());
    for x in &l.snapshots {
        let _ = writeln!(
            s,
            "  {}  started {}  consistent at {}  {}  {} documents  {} namespaces: {}",
            x.name,
            x.started_at.as_deref().unwrap_or("?"),
            show_ts(x.consistent),
            human(x.bytes),
            x.documents,
            x.namespaces.len(),
            x.namespaces.join(", ")
        );
    }
    for (p, why) in &l.unreadable_snapshots {
        let _ = writeln!(s, "  UNREADABLE {p}: {why}");
    }
    let o = &l.oplog;
    let _ = writeln!(
        s,
        "oplog: {} segments, {} entries, {}, {} .. {}{}",
        o.segments,
        o.entries,
        human(o.bytes),
        o.oldest.as_deref().unwrap_or("-"),
        o.newest.as_deref().unwrap_or("-"),
        o.lag_seconds
            .map_or(String::new(), |l| format!(" (newest entry {l} s ago)"))
    );
    for (name, why) in &o.damaged {
        let _ = writeln!(s, "  DAMAGED {name}: {why}");
    }
    let _ = writeln!(s, "restorable windows:");
    if l.windows.is_empty() {
        let _ = writeln!(s, "  none (no snapshot)");
    }
    for w in &l.windows {
        let _ = writeln!(s, "  {}", w.show());
    }
    if l.gaps.is_empty() {
        let _ = writeln!(s, "gaps: none");
    } else {
        let _ = writeln!(s, "gaps: {}", l.gaps.len());
        for g in &l.gaps {
            let _ = writeln!(
                s,
                "  GAP ({}) after {} before {}: {}",
                g.kind.code(),
                show_ts(g.after),
                show_ts(g.before),
                g.detail
            );
        }
    }
    if !l.rollbacks.is_empty() {
        let _ = writeln!(s, "rollbacks: {}", l.rollbacks.len());
    }
    for r in &l.rollbacks {
        let _ = writeln!(
            s,
            "  ROLLBACK after {} up to {}: the replica set lost {} archived entries (found {}); no restore reaches a moment after {} along them",
            r.common.ts, r.archived.ts, r.lost, r.detected_at, r.common.ts
        );
    }
    for (p, why) in &l.unreadable_records {
        let _ = writeln!(s, "  UNREADABLE {p}: {why}");
    }
    if let Some(f) = &l.follower {
        let _ = writeln!(
            s,
            "follower: {} (pid {}, updated {}): {}",
            f.effective_state(),
            f.pid,
            f.updated_at,
            f.detail
        );
    }
    s
}
