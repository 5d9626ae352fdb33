//! Restore drills: prove that a backup restores, document for document
//! (`oxidump test-restore`), and that a live database still matches its backup
//! (`oxidump diff`).
//!
//! A drill restores the backup with the ordinary restore engine into scratch databases
//! (`<prefix><db>`, a prefix no existing database starts with), then compares, per
//! namespace, what the server holds with what the backup holds: the documents by an
//! order-independent [`digest`], the `_id`s that differ when the digests do, the index
//! specs, the collection options and view definitions. The backup side is digested
//! while the restore runs. The scratch databases are dropped afterwards, whatever
//! happened, unless asked to keep them.
//!
//! A backup repository is drilled through one of its snapshots (the newest, or the one
//! named): the snapshot as it was dumped, without the oplog archived after it.

pub mod compare;
pub mod digest;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bson::doc;
use mongodb::Client;
use serde::Serialize;

use crate::catalog::{Catalog, Namespace, NsKind};
use crate::connect::{self, ConnectError};
use crate::nsmatch::{NsFilter, PatternError, Renamer};
use crate::progress::Progress;
use crate::restore::{self, IndexBuild, RestoreError, RestoreOptions, RestoreReport};
use crate::source::SourceError;
use compare::IdDifferences;
use digest::NsDigest;

/// Error of a drill or a diff (a difference found is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Options that do not fit together, or a target that is not safe to use.
    #[error("{0}")]
    Usage(String),
    /// A namespace pattern does not compile.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The backup cannot be read.
    #[error(transparent)]
    Backup(SourceError),
    /// A document that cannot be framed or unpacked.
    #[error("{ns}: {message}")]
    Malformed {
        /// The namespace.
        ns: String,
        /// What is wrong.
        message: String,
    },
    /// The restore failed before it could report.
    #[error("restore: {0}")]
    Restore(#[from] RestoreError),
    /// A server command failed.
    #[error("{what}: {}", connect::describe(source))]
    Server {
        /// What was being done.
        what: String,
        /// The driver's error.
        #[source]
        source: mongodb::error::Error,
    },
    /// Stopped by a signal.
    #[error("interrupted")]
    Interrupted,
    /// A task failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
    /// The backup repository cannot be read, or has no such snapshot.
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    /// Spooling standard input failed.
    #[error("spooling standard input to {path}: {source}")]
    Spool {
        /// The temporary file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl DrillError {
    fn server(what: impl Into<String>) -> impl FnOnce(mongodb::error::Error) -> DrillError {
        let what = what.into();
        move |source| DrillError::Server { what, source }
    }
}

/// What a drill or a diff does.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Connection string of the server.
    pub uri: String,
    /// The backup (`-`: standard input, spooled to a temporary file first).
    pub input: PathBuf,
    /// `--ns-include`.
    pub include: Vec<String>,
    /// `--ns-exclude`.
    pub exclude: Vec<String>,
    /// A backup repository as the input: the snapshot to read (default: the newest).
    pub snapshot: Option<String>,
    /// `diff` only: `--ns-from`/`--ns-to` pairs naming where the live copy is.
    pub renames: Vec<(String, String)>,
    /// `test-restore` only: scratch database prefix (default: `drill_<random>_`).
    pub prefix: Option<String>,
    /// `test-restore` only: keep the scratch databases.
    pub keep: bool,
    /// `test-restore` only: when indexes are built.
    pub index_build: IndexBuild,
    /// `test-restore` only: collections restored at once.
    pub jobs: usize,
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            uri: String::new(),
            input: PathBuf::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            snapshot: None,
            renames: Vec::new(),
            prefix: None,
            keep: false,
            index_build: IndexBuild::Auto,
            jobs: restore::DEFAULT_JOBS,
        }
    }
}

/// The comparison of one namespace.
#[derive(Debug, Clone, Serialize, Default)]
pub struct NsCheck {
    /// `db.collection` in the backup.
    pub source: String,
    /// `db.collection` compared on the server.
    pub target: String,
    /// `collection`, `view` or `timeseries`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `match`, `differs` or `failed`.
    pub status: String,
    /// Documents in the backup (measurements for a time-series collection).
    pub backup_documents: u64,
    /// Documents on the server.
    pub server_documents: u64,
    /// Digests of both sides (hex), when computed.
    pub backup_digest: String,
    /// The server side's digest.
    pub server_digest: String,
    /// `_id`s that differ, when the digests do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<IdDifferences>,
    /// Index differences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<String>,
    /// Kind, option and view differences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Why the namespace could not be restored or compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Seconds its restore took (data and indexes; `test-restore` only).
    pub restore_seconds: f64,
}

impl NsCheck {
    fn settle(&mut self) {
        if self.status == "failed" {
            return;
        }
        let same_docs = self.backup_digest == self.server_digest
            && self.backup_documents == self.server_documents;
        self.status = if same_docs && self.indexes.is_empty() && self.options.is_empty() {
            "match".into()
        } else {
            "differs".into()
        };
    }
}

/// What a drill or a diff found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DrillReport {
    /// `test-restore` or `diff`.
    pub command: String,
    /// The backup.
    pub backup: PathBuf,
    /// The server, credentials removed.
    pub target: String,
    /// The snapshot read, when the backup is a repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<PathBuf>,
    /// Scratch database prefix (`test-restore`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Per namespace, in backup order.
    pub namespaces: Vec<NsCheck>,
    /// True when every namespace matches.
    pub passed: bool,
    /// Documents compared (backup side).
    pub documents: u64,
    /// Wall seconds of the restore (`test-restore`): the recovery time to expect.
    pub restore_seconds: f64,
    /// Wall seconds of reading the server back and comparing.
    pub compare_seconds: f64,
    /// Total wall seconds.
    pub seconds: f64,
    /// Scratch databases, and whether they were dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scratch: Vec<String>,
    /// Whether the scratch databases were dropped.
    pub dropped: bool,
    /// Warnings (the restore's among them).
    pub warnings: Vec<String>,
}

/// A prefix no database name is likely to start with: `drill_` and six base-36 digits
/// from the clock and the process id.
fn random_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut n = (nanos ^ (u64::from(std::process::id()) << 32)) % 36u64.pow(6);
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    format!("drill_{}_", String::from_utf8_lossy(&digits))
}

/// Longest database name every supported server accepts.
const MAX_DB_NAME: usize = 63;

/// The backup as a path that can be read more than once: `-` is copied to a temporary
/// file (kept alive by the returned guard).
fn readable_twice(input: &Path) -> Result<(PathBuf, Option<tempfile::TempPath>), DrillError> {
    if input.as_os_str() != "-" {
        return Ok((input.to_path_buf(), None));
    }
    let tmp = tempfile::NamedTempFile::new().map_err(|source| DrillError::Spool {
        path: std::env::temp_dir(),
        source,
    })?;
    let path = tmp.path().to_path_buf();
    let (mut file, tmp_path) = tmp.into_parts();
    std::io::copy(&mut std::io::stdin().lock(), &mut file).map_err(|source| DrillError::Spool {
        path: path.clone(),
        source,
    })?;
    Ok((path, Some(tmp_path)))
}

/// When `input` is a backup repository, the snapshot a drill reads instead: the one
/// named `snapshot`, or else the newest (the latest consistent point).
fn snapshot_of(input: &Path, snapshot: Option<&str>) -> Result<Option<PathBuf>, DrillError> {
    if !crate::repo::Repo::is_repo(input) {
        if snapshot.is_some() {
            return Err(DrillError::Usage(format!(
                "--snapshot names a snapshot of a backup repository; {} is not one",
                input.display()
            )));
        }
        return Ok(None);
    }
    let repo = crate::repo::Repo::open(input)?;
    let (snapshots, _) = repo.snapshots()?;
    let names = || {
        let list: Vec<&str> = snapshots.iter().map(|s| s.name.as_str()).collect();
        if list.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has {}", list.join(", "))
        }
    };
    let chosen = match snapshot {
        Some(name) => snapshots.iter().find(|s| s.name == name).ok_or_else(|| {
            crate::repo::RepoError::NoSnapshot(format!(
                "{}: no snapshot named {name:?}; {}",
                input.display(),
                names()
            ))
        })?,
        None => snapshots.last().ok_or_else(|| {
            crate::repo::RepoError::NoSnapshot(format!(
                "{}: the repository holds no readable snapshot to drill",
                input.display()
            ))
        })?,
    };
    Ok(Some(chosen.path.clone()))
}

/// Namespaces a drill compares: those with data or definitions the restore writes
/// (not the oplog, not system databases unless named).
fn comparable(ns: &Namespace, filter: &NsFilter) -> bool {
    ns.kind != NsKind::Oplog
        && !matches!(ns.db.as_str(), "admin" | "local" | "config")
        && filter.allows(&ns.full_name())
}

/// A flag set when the shutdown future resolves, and a future that waits for it.
#[derive(Clone)]
struct Stop(Arc<(AtomicBool, tokio::sync::Notify)>);

impl Stop {
    fn watch(shutdown: impl Future<Output = ()> + Send + 'static) -> Stop {
        let stop = Stop(Arc::new((
            AtomicBool::new(false),
            tokio::sync::Notify::new(),
        )));
        let s = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            s.0.0.store(true, Ordering::SeqCst);
            s.0.1.notify_waiters();
        });
        stop
    }
    fn requested(&self) -> bool {
        self.0.0.load(Ordering::SeqCst)
    }
    async fn wait(self) {
        loop {
            let notified = self.0.1.notified();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }
}

/// `oxidump test-restore`: restores the backup into scratch databases, compares, drops
/// them. A future made by `shutdown` resolving (Ctrl-C) stops the drill (the restore
/// asks it for more than one, as for a second signal); the scratch databases are
/// dropped then too.
pub async fn test_restore<S, F>(
    opts: DrillOptions,
    progress: Progress,
    shutdown: S,
) -> Result<DrillReport, DrillError>
where
    S: Fn() -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let stop = Stop::watch(shutdown());
    let filter = NsFilter::new(&opts.include, &opts.exclude)?;
    let snapshot = snapshot_of(&opts.input, opts.snapshot.as_deref())?;
    let (path, _spool) = readable_twice(snapshot.as_deref().unwrap_or(&opts.input))?;
    let catalog = crate::commands::open_source(&path)
        .map_err(DrillError::Backup)?
        .catalog()
        .clone();
    let prefix = opts.prefix.clone().unwrap_or_else(random_prefix);
    let dbs: Vec<String> = {
        let mut d: Vec<String> = catalog
            .namespaces
            .iter()
            .filter(|n| comparable(n, &filter))
            .map(|n| n.db.clone())
            .collect();
        d.sort();
        d.dedup();
        d
    };
    if dbs.is_empty() {
        return Err(DrillError::Usage(format!(
            "{}: no namespace to restore (check --ns-include/--ns-exclude)",
            opts.input.display()
        )));
    }
    let scratch: Vec<String> = dbs.iter().map(|d| format!("{prefix}{d}")).collect();
    if let Some(long) = scratch.iter().find(|s| s.len() > MAX_DB_NAME) {
        return Err(DrillError::Usage(format!(
            "scratch database name {long:?} is longer than {MAX_DB_NAME} bytes: choose a shorter --prefix"
        )));
    }
    let client = connect::connect(&opts.uri, 8, None).await?;
    let existing = client
        .list_database_names()
        .await
        .map_err(DrillError::server("listDatabases"))?;
    if let Some(taken) = existing.iter().find(|e| e.starts_with(&prefix)) {
        return Err(DrillError::Usage(format!(
            "database {taken:?} already exists on the server and starts with the scratch prefix {prefix:?}: \
             a drill never writes next to existing data (choose another --prefix)"
        )));
    }
    let renames: Vec<(String, String)> = dbs
        .iter()
        .zip(&scratch)
        .map(|(d, s)| (format!("{d}.*"), format!("{s}.*")))
        .collect();
    let mut report = DrillReport {
        command: "test-restore".into(),
        backup: opts.input.clone(),
        snapshot: snapshot.clone(),
        target: connect::redact_uri(&opts.uri),
        prefix: Some(prefix.clone()),
        scratch: scratch.clone(),
        ..DrillReport::default()
    };

    let outcome = drill(
        &opts,
        &path,
        &catalog,
        renames,
        &client,
        &progress,
        (&stop, shutdown),
        &mut report,
    )
    .await;
    if opts.keep {
        report.dropped = false;
    } else {
        report.dropped = drop_scratch(&client, &scratch).await;
        if !report.dropped {
            report.warnings.push(format!(
                "could not drop every scratch database: {}",
                scratch.join(", ")
            ));
        }
    }
    client.shutdown().await;
    report.seconds = started.elapsed().as_secs_f64();
    outcome.map(|()| report)
}

#[allow(clippy::too_many_arguments)]
async fn drill<S, F>(
    opts: &DrillOptions,
    path: &Path,
    catalog: &Catalog,
    renames: Vec<(String, String)>,
    client: &Client,
    progress: &Progress,
    (stop, shutdown): (&Stop, S),
    report: &mut DrillReport,
) -> Result<(), DrillError>
where
    S: Fn() -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let filter = NsFilter::new(&opts.include, &opts.exclude)?;
    // The backup side, digested while the restore runs.
    let backup_side = {
        let path = path.to_path_buf();
        let filter = NsFilter::new(&opts.include, &opts.exclude)?;
        tokio::task::spawn_blocking(move || {
            compare::digest_backup(&path, &|n| comparable(n, &filter))
        })
    };
    let restore_opts = RestoreOptions {
        uri: opts.uri.clone(),
        input: path.to_path_buf(),
        include: opts.include.clone(),
        exclude: opts.exclude.clone(),
        renames,
        index_build: opts.index_build,
        jobs: opts.jobs,
        ..RestoreOptions::default()
    };
    let restore_started = Instant::now();
    let restored: RestoreReport = restore::run(restore_opts, progress.clone(), shutdown).await?;
    if restored.interrupted {
        return Err(DrillError::Interrupted);
    }
    report.restore_seconds = restore_started.elapsed().as_secs_f64();
    report.warnings.extend(restored.warnings.iter().cloned());
    let digests = backup_side
        .await
        .map_err(|e| DrillError::Internal(e.to_string()))??
        .digests;
    if stop.requested() {
        return Err(DrillError::Interrupted);
    }
    let compare_started = Instant::now();
    let by_source: BTreeMap<&str, &restore::NsReport> = restored
        .namespaces
        .iter()
        .map(|n| (n.source.as_str(), n))
        .collect();
    let mut checks = Vec::new();
    for ns in catalog.namespaces.iter().filter(|n| comparable(n, &filter)) {
        let full = ns.full_name();
        let Some(r) = by_source.get(full.as_str()) else {
            continue; // not restored by design (system collections)
        };
        if r.status == "skipped" {
            continue;
        }
        let mut check = NsCheck {
            source: full.clone(),
            target: r.target.clone(),
            kind: ns.kind.as_str().into(),
            restore_seconds: r.data_seconds + r.index_seconds,
            ..NsCheck::default()
        };
        if r.status != "restored" {
            check.status = "failed".into();
            check.message = Some(
                r.message
                    .clone()
                    .unwrap_or_else(|| format!("restore {}", r.status)),
            );
        }
        checks.push((ns, check));
    }
    check_all(client, path, checks, &digests, opts.jobs, stop, report).await?;
    report.compare_seconds = compare_started.elapsed().as_secs_f64();
    report.passed =
        !report.namespaces.is_empty() && report.namespaces.iter().all(|n| n.status == "match");
    let _ = progress;
    Ok(())
}

/// Runs the checks of `checks`, `jobs` namespaces at once (the server reads several
/// cursors while this side hashes), and adds them to `report` in their order.
async fn check_all(
    client: &Client,
    path: &Path,
    checks: Vec<(&Namespace, NsCheck)>,
    digests: &BTreeMap<String, Result<NsDigest, String>>,
    jobs: usize,
    stop: &Stop,
    report: &mut DrillReport,
) -> Result<(), DrillError> {
    use futures_util::{StreamExt as _, TryStreamExt as _};
    let all = futures_util::stream::iter(checks.into_iter().map(|(ns, mut check)| async move {
        let backup = digests.get(&ns.full_name());
        check_namespace(client, path, ns, &mut check, backup).await?;
        check.settle();
        Ok::<_, DrillError>(check)
    }))
    .buffered(jobs.max(1))
    .try_collect::<Vec<NsCheck>>();
    let done = tokio::select! {
        res = all => res?,
        _ = stop.clone().wait() => return Err(DrillError::Interrupted),
    };
    for check in done {
        report.documents += check.backup_documents;
        report.namespaces.push(check);
    }
    Ok(())
}

/// Compares one backup namespace with its target on the server, filling `check`.
async fn check_namespace(
    client: &Client,
    path: &Path,
    ns: &Namespace,
    check: &mut NsCheck,
    backup: Option<&Result<NsDigest, String>>,
) -> Result<(), DrillError> {
    let (db, coll) = check
        .target
        .split_once('.')
        .map(|(d, c)| (d.to_string(), c.to_string()))
        .unwrap_or_default();
    let info = compare::collection_info(client, &db, &coll).await?;
    check.options = compare::compare_options(ns, info.as_ref());
    if info.is_none() || ns.kind == NsKind::View {
        return Ok(());
    }
    let indexes = compare::index_specs(client, &db, &coll).await?;
    check.indexes = compare::compare_indexes(&ns.indexes, &indexes);
    let empty = NsDigest::default();
    let backup = match backup {
        None => &empty,
        Some(Ok(d)) => d,
        Some(Err(why)) => {
            check.status = "failed".into();
            check.message.get_or_insert_with(|| why.clone());
            return Ok(());
        }
    };
    let server = compare::digest_collection(client, &db, &coll).await?;
    check.backup_documents = backup.count;
    check.server_documents = server.count;
    check.backup_digest = backup.hex();
    check.server_digest = server.hex();
    if backup != &server {
        check.ids =
            Some(compare::locate(path, &check.source, client, &db, &coll, backup, &server).await?);
    }
    Ok(())
}

/// Drops the scratch databases (with their users and roles), and checks that they are
/// gone: writes still in flight when a restore was stopped can recreate a database
/// moments after it was dropped, so the drop is repeated until it holds.
async fn drop_scratch(client: &Client, scratch: &[String]) -> bool {
    for attempt in 0..10 {
        for name in scratch {
            let db = client.database(name);
            let _ = db.run_command(doc! { "dropAllUsersFromDatabase": 1 }).await;
            let _ = db.run_command(doc! { "dropAllRolesFromDatabase": 1 }).await;
            let _ = db.drop().await;
        }
        tokio::time::sleep(Duration::from_millis(if attempt == 0 { 200 } else { 1000 })).await;
        match client.list_database_names().await {
            Ok(names) if !names.iter().any(|n| scratch.contains(n)) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// `oxidump diff`: compares the backup with the live namespaces (renamed by
/// `--ns-from`/`--ns-to` when given), reading only.
pub async fn diff<F>(opts: DrillOptions, shutdown: F) -> Result<DrillReport, DrillError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let stop = Stop::watch(shutdown);
    let filter = NsFilter::new(&opts.include, &opts.exclude)?;
    let renamer = Renamer::new(&opts.renames)?;
    let snapshot = snapshot_of(&opts.input, opts.snapshot.as_deref())?;
    let (path, _spool) = readable_twice(snapshot.as_deref().unwrap_or(&opts.input))?;
    let client = connect::connect(&opts.uri, 4, None).await?;
    let mut report = DrillReport {
        command: "diff".into(),
        backup: opts.input.clone(),
        snapshot: snapshot.clone(),
        target: connect::redact_uri(&opts.uri),
        ..DrillReport::default()
    };
    let digest_path = path.clone();
    let digest_filter = NsFilter::new(&opts.include, &opts.exclude)?;
    let compare::BackupDigests { catalog, digests } = tokio::task::spawn_blocking(move || {
        compare::digest_backup(&digest_path, &|n| comparable(n, &digest_filter))
    })
    .await
    .map_err(|e| DrillError::Internal(e.to_string()))??;
    let compare_started = Instant::now();
    if stop.requested() {
        return Err(DrillError::Interrupted);
    }
    let checks = catalog
        .namespaces
        .iter()
        .filter(|n| comparable(n, &filter))
        .map(|ns| {
            let full = ns.full_name();
            let check = NsCheck {
                target: renamer.rename(&full),
                source: full,
                kind: ns.kind.as_str().into(),
                ..NsCheck::default()
            };
            (ns, check)
        })
        .collect();
    check_all(
        &client,
        &path,
        checks,
        &digests,
        opts.jobs,
        &stop,
        &mut report,
    )
    .await?;
    client.shutdown().await;
    report.compare_seconds = compare_started.elapsed().as_secs_f64();
    report.seconds = started.elapsed().as_secs_f64();
    report.passed =
        !report.namespaces.is_empty() && report.namespaces.iter().all(|n| n.status == "match");
    Ok(report)
}

/// The report as text for people: one line per namespace, the differences under it,
/// then the verdict and the timings.
pub fn render(r: &DrillReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} against {}",
        r.command,
        r.backup.display(),
        r.target
    );
    if let Some(snap) = &r.snapshot {
        let _ = writeln!(s, "  snapshot {}", snap.display());
    }
    if let Some(p) = &r.prefix {
        let _ = writeln!(s, "  restored into scratch databases {p}<db>");
    }
    for n in &r.namespaces {
        let verdict = match n.status.as_str() {
            "match" => "ok  ",
            "differs" => "DIFF",
            _ => "FAIL",
        };
        let docs = if n.kind == "view" {
            "definition".to_string()
        } else if n.backup_documents == n.server_documents {
            format!("{} documents", thousands(n.backup_documents))
        } else {
            format!(
                "{} documents in the backup, {} on the server",
                thousands(n.backup_documents),
                thousands(n.server_documents)
            )
        };
        // A drill's targets are the sources under the prefix the header names.
        let shown = if n.target == n.source || r.prefix.is_some() {
            n.source.clone()
        } else {
            format!("{} -> {}", n.source, n.target)
        };
        let timing = if r.command == "test-restore" && n.kind != "view" {
            format!(", restored in {:.1} s", n.restore_seconds)
        } else {
            String::new()
        };
        let _ = writeln!(s, "  {verdict} {shown} ({}): {docs}{timing}", n.kind);
        if let Some(m) = &n.message {
            let _ = writeln!(s, "         {m}");
        }
        if let Some(ids) = &n.ids {
            for (what, count, list) in [
                ("missing", ids.missing_count, &ids.missing),
                ("extra", ids.extra_count, &ids.extra),
                ("different", ids.different_count, &ids.different),
            ] {
                if count > 0 {
                    let more = if count as usize > list.len() {
                        format!(" (first {})", list.len())
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        s,
                        "         {} {what} _id{}{more}: {}",
                        thousands(count),
                        if count == 1 { "" } else { "s" },
                        list.join(", ")
                    );
                }
            }
            if ids.truncated {
                let _ = writeln!(s, "         (too many differences to name them all)");
            }
        }
        for d in n.options.iter().chain(&n.indexes) {
            let _ = writeln!(s, "         {d}");
        }
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let matching = r.namespaces.iter().filter(|n| n.status == "match").count();
    if r.command == "test-restore" {
        let _ = writeln!(
            s,
            "restore {:.1} s, read-back and comparison {:.1} s, total {:.1} s",
            r.restore_seconds, r.compare_seconds, r.seconds
        );
        let _ = writeln!(
            s,
            "scratch databases {}: {}",
            if r.dropped { "dropped" } else { "kept" },
            r.scratch.join(", ")
        );
    } else {
        let _ = writeln!(s, "read and compared in {:.1} s", r.seconds);
    }
    let _ = writeln!(
        s,
        "{}: {matching} of {} namespaces match the backup ({} documents)",
        if r.passed { "PASSED" } else { "FAILED" },
        r.namespaces.len(),
        thousands(r.documents)
    );
    s
}

fn thousands(n: u64) -> String {
    indicatif::HumanCount(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_short_and_distinct_enough() {
        let p = random_prefix();
        assert!(
            p.starts_with("drill_") && p.ends_with('_') && p.len() == 13,
            "{p}"
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }

    #[test]
    fn a_check_matches_only_when_everything_does() {
        let mut c = NsCheck {
            backup_digest: "a".into(),
            server_digest: "a".into(),
            ..NsCheck::default()
        };
        c.settle();
        assert_eq!(c.status, "match");
        c.indexes.push("index x is missing".into());
        c.settle();
        assert_eq!(c.status, "differs");
        let mut f = NsCheck {
            status: "failed".into(),
            ..NsCheck::default()
        };
        f.settle();
        assert_eq!(f.status, "failed");
    }
}
