//! `oxidump dump`: stream a live server into OXD or mongodump's layouts.
//!
//! The pipeline, stage by stage:
//!
//! 1. [`plan`]: list namespaces, options and index specs into a [`Catalog`];
//! 2. [`partition`]: split collections larger than `split_above` into `_id` ranges;
//! 3. [`read`]: `jobs` raw batch cursors at once copy documents as bytes into frames;
//! 4. one writer thread owns the output [`Sink`]; for OXD, frames are compressed on
//!    the rayon pool inside the sink and written in order;
//! 5. [`crate::oplog::capture`]: with `--oplog`, the oplog window of the dump is captured last.
//!
//! Memory is bounded by the channel between readers and writer, the frames in
//! flight in the writer, and one server reply per cursor; it does not grow with the
//! dataset. The output appears under its final name only once complete.

pub mod partition;
pub mod plan;
pub mod read;
pub mod resume;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use mongodb::Client;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::catalog::{Catalog, NsKind, NsStatus, OplogRange, SourceInfo, Summary};
use crate::commands::convert::{ConvertOptions, OutputFormat, create_sink};
use crate::connect::{self, ConnectError};
use crate::docs::{MAX_DOC_LEN, MAX_USER_DOC_LEN};
use crate::nsmatch::{NsFilter, PatternError};
use crate::oplog::capture as oplog;
use crate::oxd::writer::WriterOptions;
use crate::progress::Progress;
use crate::sink::{Sink, SinkError};
use partition::IdRange;
use plan::{NsPlan, PlanError, Selection};
use read::{Counters, How, Msg, ReadError, ReadSpec};

/// Everything `dump` needs; the CLI fills it.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// Connection string.
    pub uri: String,
    /// Output path; `None` for a name made of the source and the time; `-` for stdout.
    pub out: Option<PathBuf>,
    /// Output format.
    pub format: OutputFormat,
    /// Gzip mongodump output.
    pub gzip: bool,
    /// OXD frame settings.
    pub oxd: WriterOptions,
    /// `--db`, repeatable.
    pub dbs: Vec<String>,
    /// `--collection`.
    pub collection: Option<String>,
    /// `--ns-include`.
    pub include: Vec<String>,
    /// `--ns-exclude`.
    pub exclude: Vec<String>,
    /// `--query`, Extended JSON.
    pub query: Option<String>,
    /// `--read-preference`.
    pub read_preference: Option<String>,
    /// Cursors at once.
    pub jobs: usize,
    /// Collections larger than this many bytes are split into `_id` ranges (0: never).
    pub split_above: u64,
    /// Most ranges per collection.
    pub max_ranges: usize,
    /// Target bytes per server reply.
    pub batch_bytes: usize,
    /// Capture the oplog window.
    pub oplog: bool,
    /// Replace an existing output file.
    pub overwrite: bool,
    /// Read and discard (the raw-drain baseline): no output.
    pub drain_only: bool,
    /// Only views, each as a collection of the documents it produces.
    pub views_as_collections: bool,
    /// Keep what a killed dump to the same OXD file already wrote (see [`resume`]).
    pub resume: bool,
    /// When a signal stops the dump: keep what an OXD file output holds so far as the
    /// partial output of an interrupted run, for a later `--resume`, instead of
    /// removing it (outputs of other formats are always removed).
    pub keep_interrupted: bool,
    /// The output's directory holds the outputs of runs that each write a new name
    /// (the snapshots of a backup repository): the temporaries any dead run left
    /// there are removed, not only those of runs to the same name.
    pub leftovers_in_dir: bool,
    /// With one `--db`: also its users and roles, as `<db>.$admin.system.users` and
    /// `<db>.$admin.system.roles` (a full dump always has every database's).
    pub users_and_roles: bool,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            uri: String::new(),
            out: None,
            format: OutputFormat::Oxd,
            gzip: false,
            oxd: WriterOptions::default(),
            dbs: Vec::new(),
            collection: None,
            include: Vec::new(),
            exclude: Vec::new(),
            query: None,
            read_preference: None,
            jobs: DEFAULT_JOBS,
            split_above: DEFAULT_SPLIT_ABOVE,
            max_ranges: 64,
            batch_bytes: DEFAULT_BATCH_BYTES,
            oplog: false,
            overwrite: false,
            drain_only: false,
            views_as_collections: false,
            resume: false,
            keep_interrupted: false,
            leftovers_in_dir: false,
            users_and_roles: false,
        }
    }
}

/// Default number of cursors at once (chosen by `benches/dump.rs`).
pub const DEFAULT_JOBS: usize = 4;
/// Default split threshold: 1 GiB (chosen by `benches/dump.rs`).
pub const DEFAULT_SPLIT_ABOVE: u64 = 1024 * 1024 * 1024;
/// Default target size of one server reply.
pub const DEFAULT_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// Error of a dump.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Options that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// A namespace pattern does not compile.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Reading failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Reading users and roles failed.
    #[error(transparent)]
    Authz(#[from] crate::authz::server::AuthzError),
    /// Capturing the oplog failed.
    #[error(transparent)]
    Oplog(#[from] oplog::OplogError),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Sink(#[from] SinkError),
    /// A server command failed.
    #[error("{what}: {}", crate::connect::describe(source))]
    Driver {
        /// What was being done.
        what: String,
        /// The driver error.
        source: mongodb::error::Error,
    },
    /// A resume was refused.
    #[error(transparent)]
    Resume(#[from] resume::ResumeError),
    /// The dump was interrupted (Ctrl-C or a termination signal).
    #[error("{}", interrupted(kept.as_deref()))]
    Interrupted {
        /// Where what was written is kept for `dump --resume`; `None` when it was removed.
        kept: Option<PathBuf>,
    },
}

fn interrupted(kept: Option<&Path>) -> String {
    match kept {
        None => "interrupted: nothing was written (the partial output was removed)".into(),
        Some(p) => format!(
            "interrupted: the dump is incomplete; what it wrote is kept in {} (partial output of an interrupted run): run the same dump with --resume to continue it (any other run to the same destination removes it)",
            p.display()
        ),
    }
}

/// Per-namespace outcome.
#[derive(Debug, Clone, Serialize)]
pub struct NsReport {
    /// `db.collection`.
    pub namespace: String,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Documents dumped.
    pub documents: u64,
    /// Raw BSON bytes dumped.
    pub bytes: u64,
    /// `_id` ranges read concurrently (1 when not split).
    pub ranges: usize,
    /// Seconds from its first read to its end.
    pub seconds: f64,
    /// `complete` or `partial`.
    pub status: &'static str,
    /// Why it is partial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What a dump did: printed as a summary, written by `--report-json`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpReport {
    /// The output (`-` for stdout; none for a drain).
    pub output: Option<PathBuf>,
    /// Output format.
    pub format: String,
    /// Source, credentials removed.
    pub source: String,
    /// Source server version.
    pub server_version: String,
    /// Namespaces, in catalog order.
    pub namespaces: Vec<NsReport>,
    /// Documents.
    pub documents: u64,
    /// Raw BSON bytes.
    pub bytes: u64,
    /// Bytes written (the output's size), when it is a file or directory.
    pub stored_bytes: Option<u64>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Raw MB/s (10^6 bytes per second).
    pub mb_per_s: f64,
    /// Oplog window `start`, `end` (`seconds:increment`).
    pub oplog: Option<(String, String)>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// With `--resume`: what was kept from the output of an interrupted run instead
    /// of being read again: `db.c` for a whole namespace, `db.c (k of n ranges)` for
    /// the finished `_id` ranges of a collection that run had not finished.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<String>,
}

impl DumpReport {
    /// `raw / stored`.
    pub fn ratio(&self) -> Option<f64> {
        self.stored_bytes
            .filter(|s| *s > 0)
            .map(|s| self.bytes as f64 / s as f64)
    }
}

/// The default output name: `<host>_<port>-<UTC time>` plus the format's extension.
pub fn default_output(uri: &str, format: OutputFormat, gzip: bool) -> PathBuf {
    let redacted = connect::redact_uri(uri);
    let host = redacted
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or("")
        .split(['/', '?', ','])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("")
        .replace([':', '[', ']'], "_");
    let host = if host.is_empty() {
        "dump".to_string()
    } else {
        host
    };
    let now = bson::DateTime::now()
        .try_to_rfc3339_string()
        .unwrap_or_default();
    let stamp: String = now
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    let stem = format!("{host}-{stamp}Z");
    PathBuf::from(match (format, gzip) {
        (OutputFormat::Oxd, _) => format!("{stem}.oxd"),
        (OutputFormat::MongodumpArchive, false) => format!("{stem}.archive"),
        (OutputFormat::MongodumpArchive, true) => format!("{stem}.archive.gz"),
        (OutputFormat::MongodumpDir, _) => stem,
    })
}

/// The options that decide what a dump holds, as typed on the command line (empty for
/// a full dump). Recorded in the manifest (`source.dump_options`); a resumed dump must
/// have the same.
pub fn selection_options(opts: &DumpOptions) -> String {
    let mut v: Vec<String> = Vec::new();
    let quoted = |s: &str| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-*$/:".contains(c))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    for d in &opts.dbs {
        v.push(format!("--db {}", quoted(d)));
    }
    if let Some(c) = &opts.collection {
        v.push(format!("--collection {}", quoted(c)));
    }
    for p in &opts.include {
        v.push(format!("--ns-include {}", quoted(p)));
    }
    for p in &opts.exclude {
        v.push(format!("--ns-exclude {}", quoted(p)));
    }
    if let Some(q) = &opts.query {
        v.push(format!("--query {}", quoted(q)));
    }
    for (on, flag) in [
        (opts.views_as_collections, "--views-as-collections"),
        (opts.users_and_roles, "--users-and-roles"),
        (opts.oplog, "--oplog"),
    ] {
        if on {
            v.push(flag.into());
        }
    }
    v.join(" ")
}

fn validate(opts: &DumpOptions) -> Result<(), DumpError> {
    if opts.resume {
        if opts.format != OutputFormat::Oxd || opts.drain_only {
            return Err(DumpError::Usage("--resume needs an OXD output".into()));
        }
        if opts.out.as_deref().is_none_or(|o| o.as_os_str() == "-") {
            return Err(DumpError::Usage(
                "--resume needs the path of the interrupted dump's output (--out FILE)".into(),
            ));
        }
    }
    if opts.collection.is_some() && opts.dbs.len() != 1 {
        return Err(DumpError::Usage(
            "--collection needs exactly one --db".into(),
        ));
    }
    if opts.query.is_some() && opts.collection.is_none() {
        return Err(DumpError::Usage(
            "--query needs --db and --collection (it filters one collection)".into(),
        ));
    }
    if opts.oplog
        && (!opts.dbs.is_empty()
            || opts.collection.is_some()
            || opts.query.is_some()
            || !opts.include.is_empty()
            || !opts.exclude.is_empty())
    {
        return Err(DumpError::Usage(
            "--oplog captures the whole server's oplog: it works only for full dumps (no --db, --collection, --ns-include, --ns-exclude or --query)".into(),
        ));
    }
    if opts.users_and_roles
        && (opts.dbs.len() != 1 || opts.dbs[0] == "admin" || opts.collection.is_some())
    {
        return Err(DumpError::Usage(
            "--users-and-roles needs exactly one --db other than admin and no --collection (a full dump, or one of admin, always has every database's users and roles)".into(),
        ));
    }
    if opts.jobs == 0 {
        return Err(DumpError::Usage("-j must be at least 1".into()));
    }
    if opts.gzip && opts.format == OutputFormat::Oxd {
        return Err(DumpError::Usage(
            "--gzip applies to --format mongodump-dir or mongodump-archive; OXD is compressed with zstd (see --zstd-level)".into(),
        ));
    }
    if opts.out.as_deref() == Some(Path::new("-")) && opts.format == OutputFormat::MongodumpDir {
        return Err(DumpError::Usage(
            "a mongodump directory cannot be written to standard output".into(),
        ));
    }
    Ok(())
}

/// Whose users and roles a dump stores: every database's when `admin` is dumped
/// whole (a full dump, or `--db admin`), one database's with `--users-and-roles`.
fn authz_scope(opts: &DumpOptions, sel: &Selection) -> Option<crate::authz::Scope> {
    if opts.users_and_roles {
        return opts.dbs.first().cloned().map(crate::authz::Scope::Db);
    }
    let admin_whole = opts.collection.is_none()
        && opts.query.is_none()
        && !opts.views_as_collections
        && (opts.dbs.is_empty() || opts.dbs.iter().any(|d| d == "admin"))
        && sel.filter.allows("admin.system.users")
        && sel.filter.allows("admin.system.roles");
    admin_whole.then_some(crate::authz::Scope::All)
}

struct Task {
    plan: usize,
    how: How,
    /// The range's index, when the collection is split.
    range: Option<u32>,
}

struct NsRun {
    remaining: AtomicUsize,
    ranges: AtomicUsize,
    partial: std::sync::Mutex<Option<String>>,
    counters: Counters,
    started: std::sync::Mutex<Option<Instant>>,
    seconds: std::sync::Mutex<f64>,
}

/// Runs a dump. `shutdown` resolving (Ctrl-C, SIGTERM, SIGHUP) stops it at any
/// point, planning included: every cursor is abandoned, the partial output removed
/// (or, for an OXD file, kept for `--resume`, see [`DumpOptions::keep_interrupted`]),
/// and [`DumpError::Interrupted`] returned.
pub async fn run(
    opts: DumpOptions,
    progress: Progress,
    shutdown: impl Future<Output = ()>,
) -> Result<DumpReport, DumpError> {
    validate(&opts)?;
    let started = Instant::now();
    let filter = NsFilter::new(&opts.include, &opts.exclude)?;
    let query = opts.query.as_deref().map(plan::parse_query).transpose()?;
    // Listened to from the start: a stop while connecting or planning is a stop too.
    tokio::pin!(shutdown);
    let client = tokio::select! {
        c = connect::connect(
            &opts.uri,
            (opts.jobs * 2 + 4) as u32,
            opts.read_preference.as_deref(),
        ) => c?,
        _ = &mut shutdown => return Err(DumpError::Interrupted { kept: None }),
    };
    let r = dump_connected(&opts, &client, started, filter, query, progress, shutdown).await;
    // Every task that talked to the server is over: close the client before the
    // runtime goes, on every way out.
    connect::close(client).await;
    r
}

/// What planning found: the server, the catalog, the reads to make.
struct Planned {
    info: connect::ServerInfo,
    catalog: Catalog,
    plans: Vec<NsPlan>,
    authz_docs: Vec<(usize, Vec<u8>, u64)>,
    oplog_start: Option<bson::Timestamp>,
}

/// Lists and plans what the dump reads; nothing is written yet.
async fn plan_dump(
    opts: &DumpOptions,
    client: &Client,
    filter: NsFilter,
    query: Option<&bson::Document>,
) -> Result<Planned, DumpError> {
    let info = connect::server_info(client)
        .await
        .map_err(|source| DumpError::Driver {
            what: "reading server information".into(),
            source,
        })?;
    if opts.oplog && info.is_mongos {
        return Err(DumpError::Usage(
            "--oplog cannot be used through a mongos".into(),
        ));
    }
    let source = SourceInfo {
        tool: Some(format!("oxidump {}", env!("CARGO_PKG_VERSION"))),
        server_version: Some(info.version.clone()),
        fcv: info.fcv.clone(),
        created_at: Some(bson::DateTime::now()),
        uri: Some(connect::redact_uri(&opts.uri)),
        concurrent_collections: Some(opts.jobs.min(i32::MAX as usize) as i32),
        resumed_from: None,
        dump_options: Some(selection_options(opts)),
        oplog_start: None,
    };
    let sel = Selection {
        dbs: opts.dbs.clone(),
        collection: opts.collection.clone(),
        filter,
        include: opts.include.clone(),
        views_as_collections: opts.views_as_collections,
        authz_apart: false,
    };
    // The oplog window starts before the collections are listed: a collection created
    // between the two would otherwise be in neither the dump nor its window.
    let oplog_start = if opts.oplog {
        Some(oplog::newest(client).await?)
    } else {
        None
    };
    let source = SourceInfo {
        oplog_start,
        ..source
    };
    // SecantusDB's size statistics read the whole collection: asked only when a split
    // threshold other than the default says the user wants collections split there.
    let sizes = if info.secantus_version.is_some() && opts.split_above == DEFAULT_SPLIT_ABOVE {
        plan::Sizes::Skip
    } else {
        plan::Sizes::Metadata
    };
    let authz_scope = authz_scope(opts, &sel);
    let sel = Selection {
        authz_apart: authz_scope.is_some(),
        ..sel
    };
    let (mut catalog, plans) = plan::plan(client, &sel, source, opts.oplog, sizes).await?;
    // Users and roles, read apart: a server may keep them out of reach of `find`.
    let mut authz_docs = Vec::new();
    if let Some(scope) = &authz_scope {
        let a = crate::authz::server::read(client, scope).await?;
        for (kind, docs) in [
            (crate::authz::Kind::Users, &a.users),
            (crate::authz::Kind::Roles, &a.roles),
        ] {
            if docs.is_empty() && *scope == crate::authz::Scope::All {
                continue;
            }
            let (db, coll) = crate::authz::namespace_of(kind, scope);
            let mut data = Vec::new();
            for d in docs {
                let raw = bson::RawDocumentBuf::try_from(d).map_err(|e| {
                    DumpError::Usage(format!("a document of {db}.{coll} cannot be encoded: {e}"))
                })?;
                data.extend_from_slice(raw.as_bytes());
            }
            authz_docs.push((catalog.namespaces.len(), data, docs.len() as u64));
            catalog
                .namespaces
                .push(crate::catalog::Namespace::collection(db, coll));
        }
    }
    if query.is_some()
        && let Some(p) = plans.first()
        && catalog.namespaces[p.ns].kind == NsKind::Timeseries
    {
        return Err(DumpError::Usage(
            "--query is not supported for time-series collections".into(),
        ));
    }
    crate::fault::hold("dump-planned").await;
    Ok(Planned {
        info,
        catalog,
        plans,
        authz_docs,
        oplog_start,
    })
}

async fn dump_connected(
    opts: &DumpOptions,
    client: &Client,
    started: Instant,
    filter: NsFilter,
    query: Option<bson::Document>,
    progress: Progress,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<DumpReport, DumpError> {
    let planned = tokio::select! {
        p = plan_dump(opts, client, filter, query.as_ref()) => p?,
        _ = &mut shutdown => return Err(DumpError::Interrupted { kept: None }),
    };
    let Planned {
        info,
        mut catalog,
        mut plans,
        authz_docs,
        oplog_start,
    } = planned;

    let output = if opts.drain_only {
        None
    } else {
        Some(
            opts.out
                .clone()
                .unwrap_or_else(|| default_output(&opts.uri, opts.format, opts.gzip)),
        )
    };
    // Resuming: what a dead run to the same file completed is kept, not read again.
    let kept = match &output {
        Some(p) if opts.resume => {
            resume::take(p, &catalog, &selection_options(opts))?.map(Arc::new)
        }
        _ => None,
    };
    let mut oplog_start = oplog_start;
    if let Some(k) = &kept {
        catalog.source.resumed_from = k.created_at.or(Some(bson::DateTime::now()));
        plans.retain(|p| !k.map.values().any(|&n| n == p.ns));
        if opts.oplog {
            // The window starts where the interrupted run's started: the data it read
            // then are made consistent by replaying from there.
            let start = k.oplog_start.ok_or_else(|| {
                DumpError::Usage(format!(
                    "refusing to resume the interrupted dump in {}: it does not record where its oplog window starts; run without --resume",
                    k.path.display()
                ))
            })?;
            oplog::check_overflow(client, start).await.map_err(|e| {
                DumpError::Usage(format!(
                    "cannot resume the interrupted dump in {} with --oplog: {e}; run without --resume to dump everything again",
                    k.path.display()
                ))
            })?;
            oplog_start = Some(start);
            catalog.source.oplog_start = Some(start);
        }
    }
    // What runs to the same destination that died left behind goes first.
    let removed: Vec<String> = match &output {
        Some(p) if p.as_os_str() != "-" && opts.leftovers_in_dir => {
            let dir = p.parent().unwrap_or(std::path::Path::new("."));
            crate::output::remove_leftovers_in(dir)
                .into_iter()
                .map(|r| format!("removed {}, left by an interrupted run", r.display()))
                .collect()
        }
        Some(p) if p.as_os_str() != "-" => crate::output::remove_leftovers(p)
            .into_iter()
            .map(|r| {
                format!(
                    "removed {}, left by an interrupted run to the same destination",
                    r.display()
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let sink = match &output {
        Some(p) => Some(
            create_sink(
                p,
                &ConvertOptions {
                    to: opts.format,
                    gzip: opts.gzip,
                    oxd: opts.oxd,
                    overwrite: opts.overwrite,
                },
            )
            .map_err(|e| match e {
                crate::commands::convert::ConvertError::Sink(s) => DumpError::Sink(s),
                other => DumpError::Usage(other.to_string()),
            })?,
        ),
        None => None,
    };

    let total_bytes: u64 = plans.iter().map(|p| p.size).sum();
    let overall = progress.bytes((total_bytes > 0).then_some(total_bytes), "total");
    let runs: Arc<Vec<NsRun>> = Arc::new(
        catalog
            .namespaces
            .iter()
            .map(|_| NsRun {
                remaining: AtomicUsize::new(0),
                ranges: AtomicUsize::new(0),
                partial: std::sync::Mutex::new(None),
                counters: Counters::default(),
                started: std::sync::Mutex::new(None),
                seconds: std::sync::Mutex::new(0.0),
            })
            .collect(),
    );

    if let Some(k) = &kept {
        for (&n, &(docs, bytes)) in &k.counts {
            runs[n].counters.docs.store(docs, Ordering::Relaxed);
            runs[n].counters.bytes.store(bytes, Ordering::Relaxed);
        }
    }
    let (tx, rx) = mpsc::channel::<Msg>(opts.oxd.in_flight.max(2));
    let (sum_tx, sum_rx) = oneshot::channel::<Summary>();
    // A drain has no writer: its messages are only counted and dropped.
    let mut rx = Some(rx);
    let drain = if sink.is_none() {
        let mut rx = rx.take().expect("receiver");
        Some(tokio::spawn(
            async move { while rx.recv().await.is_some() {} },
        ))
    } else {
        None
    };
    let rx = rx;
    // Set when a stop comes after the reads are over: the writer then does not finish
    // (commit) the output it is still writing.
    let cancel = Arc::new(AtomicBool::new(false));
    let keep_interrupted = opts.keep_interrupted;
    let writer = sink.map(|sink| {
        let rx = rx.expect("receiver");
        let catalog = catalog.clone();
        let kept = kept.clone();
        let cancel = cancel.clone();
        std::thread::Builder::new()
            .name("oxidump-writer".into())
            .spawn(move || {
                write_loop(
                    sink,
                    &catalog,
                    rx,
                    sum_rx,
                    kept.as_deref(),
                    &cancel,
                    keep_interrupted,
                )
            })
            .expect("spawn writer thread")
    });
    let mut tasks = JoinSet::new();
    let work = dump_data(
        opts,
        client,
        &catalog,
        &plans,
        oplog_start,
        authz_docs,
        query,
        kept.as_ref().map(|k| &k.ranges),
        tx,
        runs.clone(),
        &progress,
        &overall,
        &mut tasks,
    );
    let result = tokio::select! {
        r = work => r,
        _ = &mut shutdown => {
            // The writer stops where it is, before the readers are stopped.
            cancel.store(true, Ordering::SeqCst);
            Err(DumpError::Interrupted { kept: None })
        }
    };
    // Stopped or failed: the readers still running are stopped, and awaited.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let summary = match &result {
        Ok(s) => Some(s.clone()),
        Err(_) => None,
    };
    let wrote = match writer {
        Some(w) => {
            if let Some(s) = summary {
                let _ = sum_tx.send(s);
            } else {
                drop(sum_tx);
            }
            let mut join = tokio::task::spawn_blocking(move || w.join());
            let joined = tokio::select! {
                j = &mut join => j,
                _ = &mut shutdown, if result.is_ok() => {
                    // Stopped while the last frames are written: not committed.
                    cancel.store(true, Ordering::SeqCst);
                    join.await
                }
            }
            .expect("join writer");
            match joined {
                Ok(Ok(Written::Committed)) => Ok(()),
                Ok(Ok(Written::Stopped(kept))) if cancel.load(Ordering::SeqCst) => {
                    return Err(DumpError::Interrupted { kept });
                }
                Ok(Ok(Written::Stopped(_))) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(SinkError::Misuse("the writer thread panicked".into())),
            }
        }
        None => {
            if let Some(d) = drain {
                let _ = d.await;
            }
            Ok(())
        }
    };
    overall.finish_and_clear();
    // A writer failure explains a reader's "writer stopped": report the writer's.
    let summary = match (result, wrote) {
        (Err(DumpError::Interrupted { kept }), _) => return Err(DumpError::Interrupted { kept }),
        (Err(DumpError::Read(ReadError::Closed)), Err(w)) => return Err(w.into()),
        (Err(e), _) => return Err(e),
        (Ok(_), Err(w)) => return Err(w.into()),
        (Ok(s), Ok(())) => s,
    };
    let seconds = started.elapsed().as_secs_f64();
    let namespaces: Vec<NsReport> = catalog
        .namespaces
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let r = &runs[i];
            let warning = r.partial.lock().expect("lock").clone();
            NsReport {
                namespace: n.full_name(),
                kind: n.kind.as_str(),
                documents: r.counters.docs.load(Ordering::Relaxed),
                bytes: r.counters.bytes.load(Ordering::Relaxed),
                ranges: r
                    .ranges
                    .load(Ordering::Relaxed)
                    .max(usize::from(n.kind == NsKind::Oplog)),
                seconds: *r.seconds.lock().expect("lock"),
                status: if warning.is_some() {
                    "partial"
                } else {
                    "complete"
                },
                warning,
            }
        })
        .collect();
    let resumed: Vec<String> = kept.as_ref().map(|k| k.names(&catalog)).unwrap_or_default();
    if let Some(k) = &kept {
        let _ = std::fs::remove_file(&k.path);
    }
    let documents = namespaces.iter().map(|n| n.documents).sum();
    let bytes: u64 = namespaces.iter().map(|n| n.bytes).sum();
    Ok(DumpReport {
        stored_bytes: output.as_deref().and_then(output_size),
        output,
        format: format_name(opts.format, opts.gzip),
        source: connect::redact_uri(&opts.uri),
        server_version: info.version,
        namespaces,
        documents,
        bytes,
        seconds,
        mb_per_s: bytes as f64 / 1e6 / seconds.max(1e-9),
        oplog: summary
            .oplog
            .map(|o| (oplog::show_ts(o.start), oplog::show_ts(o.end))),
        warnings: removed.into_iter().chain(summary.warnings).collect(),
        resumed,
    })
}

fn format_name(f: OutputFormat, gzip: bool) -> String {
    let base = match f {
        OutputFormat::Oxd => "oxd",
        OutputFormat::MongodumpDir => "mongodump-dir",
        OutputFormat::MongodumpArchive => "mongodump-archive",
    };
    if gzip {
        format!("{base}+gzip")
    } else {
        base.into()
    }
}

/// Size of a file, or of every file under a directory.
fn output_size(p: &Path) -> Option<u64> {
    if p.as_os_str() == "-" {
        return None;
    }
    let m = std::fs::metadata(p).ok()?;
    if m.is_file() {
        return Some(m.len());
    }
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let m = e.metadata().ok()?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    Some(total)
}

/// What the writer did with the output.
enum Written {
    /// Finished and under its final name.
    Committed,
    /// Left unfinished (the dump failed or was stopped): removed, or kept as the
    /// partial output of an interrupted run at this path.
    Stopped(Option<PathBuf>),
}

/// The writer thread: the single owner of the output.
fn write_loop(
    mut sink: Box<dyn Sink>,
    catalog: &Catalog,
    mut rx: mpsc::Receiver<Msg>,
    summary: oneshot::Receiver<Summary>,
    kept: Option<&resume::Kept>,
    cancel: &AtomicBool,
    keep_interrupted: bool,
) -> Result<Written, SinkError> {
    let mut copied = kept.is_none();
    // Stopped by a signal: what was written is kept for `--resume` (for outputs that
    // can be resumed); failed: removed (dropping the sink removes it).
    let stop = |sink: Box<dyn Sink>, copied: bool| -> Result<Written, SinkError> {
        if !(keep_interrupted && cancel.load(Ordering::SeqCst)) {
            return Ok(Written::Stopped(None));
        }
        let at = sink.suspend()?;
        if at.is_some()
            && copied
            && let Some(k) = kept
        {
            // Everything kept from it is in the new partial output too.
            let _ = std::fs::remove_file(&k.path);
        }
        Ok(Written::Stopped(at))
    };
    sink.begin(catalog)?;
    if let Some(k) = kept {
        copied = resume::copy(k, sink.as_mut(), cancel)?;
        if !copied {
            return stop(sink, false);
        }
    }
    while let Some(m) = rx.blocking_recv() {
        if cancel.load(Ordering::SeqCst) {
            return stop(sink, copied);
        }
        let point = match m {
            Msg::Docs {
                ns,
                range: None,
                data,
                count,
            } => {
                sink.write_docs(ns, data, count)?;
                "dump-docs"
            }
            Msg::Docs {
                ns,
                range: Some(r),
                data,
                count,
            } => {
                sink.write_range_docs(ns, r, data, count)?;
                "dump-docs"
            }
            Msg::Ranges { ns, plan } => {
                sink.begin_ranges(ns, &plan)?;
                ""
            }
            Msg::RangeEnd { ns, range } => {
                sink.end_range(ns, range)?;
                "dump-range-end"
            }
            Msg::End { ns, status } => {
                sink.end_namespace(ns, &status)?;
                if catalog.namespaces[ns].has_data() {
                    "dump-ns-end"
                } else {
                    ""
                }
            }
        };
        let mut flushed = Ok(());
        crate::fault::hold_until(point, cancel, || flushed = sink.flush());
        flushed?;
    }
    match summary.blocking_recv() {
        Ok(s) if !cancel.load(Ordering::SeqCst) => sink.finish(&s).map(|()| Written::Committed),
        _ => stop(sink, copied),
    }
}

#[allow(clippy::too_many_arguments)]
async fn dump_data(
    opts: &DumpOptions,
    client: &Client,
    catalog: &Catalog,
    plans: &[NsPlan],
    oplog_start: Option<bson::Timestamp>,
    authz_docs: Vec<(usize, Vec<u8>, u64)>,
    query: Option<bson::Document>,
    kept_ranges: Option<&std::collections::BTreeMap<usize, resume::KeptRanges>>,
    tx: mpsc::Sender<Msg>,
    runs: Arc<Vec<NsRun>>,
    progress: &Progress,
    overall: &indicatif::ProgressBar,
    set: &mut JoinSet<Result<Vec<String>, DumpError>>,
) -> Result<Summary, DumpError> {
    let mut warnings = Vec::new();
    // Users and roles, read before the data as mongodump does.
    for (ns, data, count) in authz_docs {
        runs[ns].counters.docs.fetch_add(count, Ordering::Relaxed);
        runs[ns]
            .counters
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if count > 0 {
            send(
                &tx,
                Msg::Docs {
                    ns,
                    range: None,
                    data,
                    count,
                },
            )
            .await?;
        }
        send(
            &tx,
            Msg::End {
                ns,
                status: NsStatus::Complete,
            },
        )
        .await?;
    }
    // Views have no data: end them first.
    for (i, n) in catalog.namespaces.iter().enumerate() {
        if !n.has_data() {
            send(
                &tx,
                Msg::End {
                    ns: i,
                    status: NsStatus::Complete,
                },
            )
            .await?;
        }
    }
    // Plan the tasks: the biggest collections' ranges first.
    let mut order: Vec<usize> = (0..plans.len())
        .filter(|&i| catalog.namespaces[plans[i].ns].kind != NsKind::Oplog)
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(plans[i].size));
    let mut tasks = Vec::new();
    for &i in &order {
        let p = &plans[i];
        // Split by the interrupted run, some of its ranges kept: the others are read.
        if let Some(k) = kept_ranges.and_then(|k| k.get(&p.ns)) {
            let ranges = partition::ranges_from_plan(&k.plan);
            let left: Vec<(u32, IdRange)> = (0u32..)
                .zip(ranges)
                .filter(|(r, _)| !k.done.contains_key(r))
                .collect();
            runs[p.ns].remaining.store(left.len(), Ordering::SeqCst);
            runs[p.ns].ranges.store(k.plan.len(), Ordering::SeqCst);
            if left.is_empty() {
                send(
                    &tx,
                    Msg::End {
                        ns: p.ns,
                        status: NsStatus::Complete,
                    },
                )
                .await?;
            }
            for (r, range) in left {
                tasks.push(Task {
                    plan: i,
                    how: How::Range(range),
                    range: Some(r),
                });
            }
            continue;
        }
        let hows = if let Some(q) = &query {
            vec![How::Query(q.clone())]
        } else if p.through_view {
            vec![How::Query(bson::Document::new())]
        } else if p.ordered || p.clustered || p.raw_data {
            vec![How::Natural]
        } else {
            let k = partition::range_count(p.size, opts.split_above, opts.max_ranges);
            if k < 2 {
                vec![How::Natural]
            } else {
                let db = client.database(&p.db);
                let ranges = partition::split(&db, &p.data_coll, p.count, k)
                    .await
                    .map_err(|source| DumpError::Driver {
                        what: format!(
                            "choosing split points of {}",
                            catalog.namespaces[p.ns].full_name()
                        ),
                        source,
                    })?;
                if ranges.len() < 2 {
                    vec![How::Natural]
                } else {
                    ranges.into_iter().map(How::Range).collect()
                }
            }
        };
        runs[p.ns].remaining.store(hows.len(), Ordering::SeqCst);
        runs[p.ns].ranges.store(hows.len(), Ordering::SeqCst);
        let split = hows.len() > 1 && hows.iter().all(|h| matches!(h, How::Range(_)));
        if split {
            let ranges: Vec<IdRange> = hows
                .iter()
                .filter_map(|h| match h {
                    How::Range(r) => Some(r.clone()),
                    _ => None,
                })
                .collect();
            send(
                &tx,
                Msg::Ranges {
                    ns: p.ns,
                    plan: partition::plan_of(&ranges),
                },
            )
            .await?;
        }
        for (r, how) in (0u32..).zip(hows) {
            tasks.push(Task {
                plan: i,
                how,
                range: split.then_some(r),
            });
        }
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs));
    let bars: Arc<Vec<std::sync::Mutex<Option<crate::progress::Meter>>>> = Arc::new(
        catalog
            .namespaces
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect(),
    );
    for t in tasks {
        let p = plans[t.plan].clone();
        let name = catalog.namespaces[p.ns].full_name();
        let mut spec = spec_for(opts, &p, name, t.how);
        spec.range = t.range;
        let (client, tx, runs, sem, bars, overall, progress) = (
            client.clone(),
            tx.clone(),
            runs.clone(),
            sem.clone(),
            bars.clone(),
            overall.clone(),
            progress.clone(),
        );
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            let run = &runs[p.ns];
            let bar = {
                let mut b = bars[p.ns].lock().expect("lock");
                run.started
                    .lock()
                    .expect("lock")
                    .get_or_insert_with(Instant::now);
                b.get_or_insert_with(|| {
                    progress.docs((p.count > 0).then_some(p.count), spec.name.clone())
                })
                .clone()
            };
            let on_batch = move |n: u64, bytes: u64| {
                bar.inc(n);
                bar.add_bytes(bytes);
                overall.inc(bytes);
            };
            let r = read::read(&client, &spec, &tx, &run.counters, &on_batch).await;
            let mut notes = Vec::new();
            let outcome = match r {
                Ok(o) => {
                    if o.resumes > 0 {
                        notes.push(format!(
                            "reading {}: the server lost the cursor {} time(s); the range was resumed after the last _id read, nothing is missing",
                            spec.name, o.resumes
                        ));
                    }
                    None
                }
                Err(ReadError::Driver { source, .. })
                    if read::collection_gone(&source)
                        && !plan::still_there(&client, &p.db, &p.data_coll, p.uuid).await =>
                {
                    Some(format!(
                        "{} was dropped or renamed during the dump; its data may be partial",
                        spec.name
                    ))
                }
                Err(e) => return Err(DumpError::Read(e)),
            };
            let gone = match outcome {
                Some(w) => Some(w),
                None if run.counters.docs.load(Ordering::Relaxed) == 0
                    && p.count > 0
                    && !plan::still_there(&client, &p.db, &p.data_coll, p.uuid).await =>
                {
                    Some(format!(
                        "{} was dropped or renamed during the dump; its data may be partial",
                        spec.name
                    ))
                }
                None => None,
            };
            if let Some(w) = &gone {
                run.partial
                    .lock()
                    .expect("lock")
                    .get_or_insert_with(|| w.clone());
            } else if let Some(range) = spec.range {
                send(&tx, Msg::RangeEnd { ns: p.ns, range }).await?;
            }
            if run.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                let status = match run.partial.lock().expect("lock").clone() {
                    Some(w) => NsStatus::Partial(w),
                    None => NsStatus::Complete,
                };
                if let Some(t) = *run.started.lock().expect("lock") {
                    *run.seconds.lock().expect("lock") = t.elapsed().as_secs_f64();
                }
                if let Some(b) = bars[p.ns].lock().expect("lock").take() {
                    b.finish_and_clear();
                }
                send(&tx, Msg::End { ns: p.ns, status }).await?;
            }
            notes.extend(gone);
            Ok::<Vec<String>, DumpError>(notes)
        });
    }
    while let Some(r) = set.join_next().await {
        match r.expect("a dump task panicked") {
            Ok(notes) => {
                for w in notes {
                    progress.println(format!("warning: {w}"));
                    warnings.push(w);
                }
            }
            Err(e) => {
                set.abort_all();
                return Err(e);
            }
        }
    }
    warnings.dedup();
    let mut oplog_range = None;
    if let Some(start) = oplog_start {
        let end = oplog::newest(client).await?;
        let end = oplog::settle(client, end).await?;
        oplog::check_overflow(client, start).await?;
        let p = plans
            .iter()
            .find(|p| catalog.namespaces[p.ns].kind == NsKind::Oplog)
            .expect("oplog planned")
            .clone();
        let spec = spec_for(
            opts,
            &p,
            catalog.namespaces[p.ns].full_name(),
            How::Oplog(start, end),
        );
        let bar = progress.docs(None, spec.name.clone());
        let b2 = bar.clone();
        let on_batch = move |n: u64, b: u64| {
            b2.inc(n);
            b2.add_bytes(b);
        };
        *runs[p.ns].started.lock().expect("lock") = Some(Instant::now());
        read::read(client, &spec, &tx, &runs[p.ns].counters, &on_batch).await?;
        oplog::check_overflow(client, start).await?;
        bar.finish_and_clear();
        *runs[p.ns].seconds.lock().expect("lock") = runs[p.ns]
            .started
            .lock()
            .expect("lock")
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        send(
            &tx,
            Msg::End {
                ns: p.ns,
                status: NsStatus::Complete,
            },
        )
        .await?;
        oplog_range = Some(OplogRange { start, end });
    }
    Ok(Summary {
        completed_at: Some(bson::DateTime::now()),
        oplog: oplog_range,
        warnings,
        extra: bson::Document::new(),
    })
}

async fn send(tx: &mpsc::Sender<Msg>, m: Msg) -> Result<(), DumpError> {
    tx.send(m)
        .await
        .map_err(|_| DumpError::Read(ReadError::Closed))
}

fn spec_for(opts: &DumpOptions, p: &NsPlan, name: String, how: How) -> ReadSpec {
    let avg = p.size.checked_div(p.count).map_or(1024, |a| a.max(1));
    let batch_size = (opts.batch_bytes as u64 / avg).clamp(1, 100_000) as u32;
    ReadSpec {
        ns: p.ns,
        range: None,
        name,
        db: p.db.clone(),
        coll: p.data_coll.clone(),
        how,
        raw_data: p.raw_data,
        max_doc: if p.db == crate::catalog::OPLOG_DB {
            MAX_DOC_LEN
        } else {
            MAX_USER_DOC_LEN
        },
        batch_size,
        frame_size: opts.oxd.frame_size,
        drain_only: opts.drain_only,
    }
}

/// Parses a size like `512`, `64KB`, `1MB`, `256MiB`, `2GB` (units are powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 512KB, 64MB, 1GB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => {
            return Err(format!(
                "{s:?}: unknown unit {u:?} (use B, KB, MB, GB or TB)"
            ));
        }
    };
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MB"), Ok(1 << 20));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn default_names() {
        let p = default_output(
            "mongodb://u:p@db1.example:27017,db2/x?replicaSet=rs",
            OutputFormat::Oxd,
            false,
        );
        let s = p.to_string_lossy();
        assert!(s.starts_with("db1.example_27017-"), "{s}");
        assert!(s.ends_with("Z.oxd"));
        assert!(!s.contains('p') || !s.contains("u:p"));
        let p = default_output("mongodb://h", OutputFormat::MongodumpArchive, true);
        assert!(p.to_string_lossy().ends_with(".archive.gz"));
    }
}
