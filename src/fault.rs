//! Fault injection for tests, never set in normal use.
//!
//! With `OXIDUMP_FAULT_HOLD=POINT` (or `POINT:N`, the N-th time the point is
//! reached, counting from 1) in the environment, a run that reaches that point of its
//! work says so on standard error (`oxidump: fault hold: POINT N`) and goes no further
//! there, so that a test can signal or kill it at a known point instead of guessing
//! with timing. What the run wrote before the point is on disk when it says so.
//!
//! Points:
//!
//! - `dump-planned`: a dump has listed and planned its namespaces and has not created
//!   its output yet (a stop must still be honoured there);
//! - `dump-docs`: a dump's writer has written a run of documents;
//! - `dump-range-end`: a dump's writer has recorded the end of an `_id` range of a
//!   split collection;
//! - `dump-ns-end`: a dump's writer has ended a namespace that holds data;
//! - `restore-unit`: a restore's journal (`--resume`) has recorded that every
//!   document of a unit of the input (a frame, a byte range) was acknowledged;
//! - `restore-data-done`, `restore-indexes-built`, `restore-ns-complete`: a restore's
//!   journal (`--resume`) has recorded that a namespace's documents are all
//!   acknowledged, that its indexes are built, that it is complete.
//!
//! A hold in the dump's writer lasts until the dump is stopped (a signal); a hold in
//! planning lasts until the process is stopped or killed. With
//! `OXIDUMP_FAULT_RELEASE=FILE` too, a hold also ends when FILE exists, and the run
//! goes on from there.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The environment variable that names the point.
pub const HOLD: &str = "OXIDUMP_FAULT_HOLD";
/// The environment variable that names a file whose creation ends the hold (without
/// it, a hold lasts as described above).
pub const RELEASE: &str = "OXIDUMP_FAULT_RELEASE";

/// The point asked for, and at which of its occurrences.
fn wanted() -> Option<&'static (String, u64)> {
    static WANTED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    WANTED
        .get_or_init(|| {
            let v = std::env::var(HOLD).ok().filter(|v| !v.is_empty())?;
            Some(match v.split_once(':') {
                Some((p, n)) => (p.to_string(), n.parse().ok()?),
                None => (v, 1),
            })
        })
        .as_ref()
}

/// Counts one occurrence of `point`; true when this is the one to hold at (then
/// [`hold_now`]).
pub fn due(point: &str) -> bool {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    match wanted() {
        Some((p, n)) if p == point => SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *n,
        _ => false,
    }
}

fn announce(point: &str) {
    let n = wanted().map_or(1, |w| w.1);
    eprintln!("oxidump: fault hold: {point} {n}");
}

/// Holds an async task for good at `point` when it is due.
pub async fn hold(point: &str) {
    if due(point) {
        hold_now(point).await;
    }
}

/// Whether the file named by [`RELEASE`] exists: a hold ends then, and the run goes
/// on as if it had never been held.
fn released() -> bool {
    std::env::var_os(RELEASE).is_some_and(|p| std::path::Path::new(&p).exists())
}

/// Holds an async task at `point`, which [`due`] said is due: for good, or until the
/// file named by [`RELEASE`] exists.
pub async fn hold_now(point: &str) {
    announce(point);
    if std::env::var_os(RELEASE).is_none() {
        std::future::pending::<()>().await;
    }
    while !released() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Holds a thread at `point`, when it is due, until `release` is set; `before` runs
/// first (it puts what was written on disk).
pub fn hold_until(point: &str, release: &AtomicBool, before: impl FnOnce()) {
    if !due(point) {
        return;
    }
    before();
    announce(point);
    while !release.load(Ordering::SeqCst) && !released() {
        std::thread::park_timeout(Duration::from_millis(20));
    }
}
