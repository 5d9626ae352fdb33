//! `oxidump restore`: load a backup into a server, fast and safely.
//!
//! Stages:
//!
//! 1. read: any backup format. A complete OXD file or a mongodump directory is read
//!    per namespace (`jobs` namespaces at once, each from its own reader); a stream
//!    (mongodump archive, standard input, an incomplete OXD file) is read in order and
//!    dispatched to per-namespace pipelines as namespaces appear;
//! 2. [`plan`]: map sources to targets and refuse, before writing anything, what
//!    cannot be done safely;
//! 3. create: collections with their options (and, by default, their indexes), then
//!    views;
//! 4. [`insert`]: raw documents in unordered batches, `workers` inserters per collection;
//! 5. [`index`]: with `--index-build after`, each collection's indexes as soon as its
//!    data is in, while other collections are still loading.
//!
//! Every frame of an OXD backup is checked before any of its documents is sent.

pub mod index;
pub mod insert;
pub mod journal;
pub mod oplog;
pub mod plan;
pub mod spec;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bson::{Document, doc};
use mongodb::Client;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::catalog::{BUCKETS_PREFIX, Catalog, NsKind};
use crate::connect::{self, ConnectError, ServerInfo};
use crate::input::{self, InputFormat};
use crate::nsmatch::{NsFilter, PatternError, Renamer};
use crate::oxd::reader::{Index, NsSource, OxdSource};
use crate::progress::Progress;
use crate::progress::human_bytes as human;
use crate::source::{Chunk, Source, SourceError};
use insert::{BatchErrors, Batcher, InsertTarget};
use plan::{Existing, PlanInput, RestorePlanError, Target};

/// When secondary indexes are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexBuild {
    /// After each collection's data, while other collections still load.
    After,
    /// Before its data.
    Before,
    /// Not at all.
    Skip,
    /// The faster for the target (default): after the data on mongod, which sorts the
    /// keys of a bulk load in one pass (what mongorestore does too); before on
    /// SecantusDB, which measured faster that way (see the README's benchmarks).
    Auto,
}

impl IndexBuild {
    /// The mode to use on `server`: [`IndexBuild::Auto`] resolved, the others as they are.
    pub fn resolve(self, server: &ServerInfo) -> IndexBuild {
        match self {
            IndexBuild::Auto if server.secantus_version.is_some() => IndexBuild::Before,
            IndexBuild::Auto => IndexBuild::After,
            other => other,
        }
    }

    /// The mode's name, as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexBuild::After => "after",
            IndexBuild::Before => "before",
            IndexBuild::Skip => "skip",
            IndexBuild::Auto => "auto",
        }
    }
}

/// Everything `restore` needs; the CLI fills it.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Connection string of the target.
    pub uri: String,
    /// The backup (`-` for standard input).
    pub input: PathBuf,
    /// `--ns-include`.
    pub include: Vec<String>,
    /// `--ns-exclude`.
    pub exclude: Vec<String>,
    /// `--ns-from`/`--ns-to` pairs.
    pub renames: Vec<(String, String)>,
    /// What to do with existing targets.
    pub existing: Existing,
    /// Print the plan and write nothing.
    pub dry_run: bool,
    /// When indexes are built.
    pub index_build: IndexBuild,
    /// Collections restored at once.
    pub jobs: usize,
    /// Concurrent inserters per collection.
    pub workers: usize,
    /// `bypassDocumentValidation` on inserts.
    pub bypass_validation: bool,
    /// `--write-concern`.
    pub write_concern: Option<String>,
    /// Create collections without their options.
    pub no_options: bool,
    /// Keep the dumped collection UUIDs.
    pub preserve_uuid: bool,
    /// Allow writing to admin, local and config.
    pub include_system: bool,
    /// Duplicate-key and validation errors are fatal.
    pub stop_on_error: bool,
    /// Restore what is intact around damaged frames.
    pub skip_corrupt: bool,
    /// Most bytes per insert command (default: the server's document limit minus headroom).
    pub batch_bytes: Option<usize>,
    /// How dumped index specs are adjusted (index version, dotted hashed fields).
    pub index_specs: spec::IndexSpecOptions,
    /// Replay oplog after the data (`--oplog-replay`, `--oplog-file`).
    pub oplog: Option<OplogReplay>,
    /// Keep a resume journal, and continue from it when there is one (`--resume`).
    pub resume: bool,
    /// Where the journal is (default: beside the backup, see [`journal::default_path`]).
    pub journal: Option<PathBuf>,
    /// Keep the journal in the target server instead (see [`journal`]).
    pub journal_in_target: bool,
    /// Restore the users and roles the backup holds.
    pub users_and_roles: bool,
    /// Where the target cannot take stored credentials, create users with random
    /// passwords (to be reset) instead of refusing them.
    pub users_without_credentials: bool,
    /// `admin` collection users pass through on a server with `_mergeAuthzCollections`.
    pub temp_users: String,
    /// Same for roles.
    pub temp_roles: String,
}

/// Oplog replay asked of a restore.
#[derive(Debug, Clone, Default)]
pub struct OplogReplay {
    /// Replay the backup's own captured window (`--oplog-replay`).
    pub from_backup: bool,
    /// Saved oplogs replayed after it (`--oplog-file`).
    pub files: Vec<PathBuf>,
    /// `--until`: `seconds:increment` or an RFC 3339 time.
    pub until: Option<String>,
    /// `--until-exclusive`.
    pub exclusive: bool,
    /// `--oplog-accept-partial`.
    pub accept_partial: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            uri: String::new(),
            input: PathBuf::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            renames: Vec::new(),
            existing: Existing::Refuse,
            dry_run: false,
            index_build: IndexBuild::Auto,
            jobs: DEFAULT_JOBS,
            workers: DEFAULT_WORKERS,
            bypass_validation: false,
            write_concern: None,
            no_options: false,
            preserve_uuid: false,
            include_system: false,
            stop_on_error: false,
            skip_corrupt: false,
            batch_bytes: None,
            index_specs: spec::IndexSpecOptions::default(),
            oplog: None,
            resume: false,
            journal: None,
            journal_in_target: false,
            users_and_roles: false,
            users_without_credentials: false,
            temp_users: DEFAULT_TEMP_USERS.into(),
            temp_roles: DEFAULT_TEMP_ROLES.into(),
        }
    }
}

/// Default temporary collection of users (mongorestore's `--tempUsersColl`).
pub const DEFAULT_TEMP_USERS: &str = "tempusers";
/// Default temporary collection of roles (mongorestore's `--tempRolesColl`).
pub const DEFAULT_TEMP_ROLES: &str = "temproles";

/// Default collections restored at once (chosen by `benches/restore.rs`).
pub const DEFAULT_JOBS: usize = 4;
/// Default inserters per collection (chosen by `benches/restore.rs`).
pub const DEFAULT_WORKERS: usize = 2;
/// Frames read and decoded ahead of the inserters, per collection.
const READ_AHEAD: usize = 3;
/// Default bytes per insert batch (chosen by `benches/restore.rs`; the server's
/// `maxMessageSizeBytes` caps it).
pub const DEFAULT_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Error of a restore.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Options that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// A namespace pattern does not compile.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// The backup cannot be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Refused before writing.
    #[error(transparent)]
    Plan(#[from] RestorePlanError),
    /// The resume journal cannot be used.
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    /// A server command failed outside a namespace's own work.
    #[error("{what}: {}", crate::connect::describe(source))]
    Driver {
        /// What was being done.
        what: String,
        /// The driver error.
        source: mongodb::error::Error,
    },
    /// Oplog replay refused or failed.
    #[error(transparent)]
    Oplog(#[from] crate::oplog::replay::ReplayError),
}

impl RestoreError {
    /// Whether the backup is damaged or incomplete (exit status 1).
    pub fn is_damage(&self) -> bool {
        matches!(self, RestoreError::Source(e) if e.is_damage())
    }
}

/// Outcome of one namespace.
#[derive(Debug, Clone, Serialize, Default)]
pub struct NsReport {
    /// Source `db.collection`.
    pub source: String,
    /// Target `db.collection`.
    pub target: String,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// `restored`, `failed`, `skipped` or `planned` (dry run).
    pub status: String,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Documents in the backup, when known.
    pub expected: Option<u64>,
    /// Documents the server acknowledged as inserted.
    pub inserted: u64,
    /// Documents sent in requests the server never answered (the connection was lost,
    /// or the restore stopped waiting): the target may hold none, some or all of them.
    pub unacknowledged: u64,
    /// Documents refused as duplicate keys.
    pub duplicates: u64,
    /// Documents refused by the validator.
    pub invalid: u64,
    /// `_id`s of the first refused documents.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused_ids: Vec<String>,
    /// Damaged frames skipped (`--skip-corrupt`) or where the namespace stopped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<String>,
    /// Raw bytes inserted.
    pub bytes: u64,
    /// Seconds spent loading data.
    pub data_seconds: f64,
    /// Indexes built.
    pub indexes: Vec<String>,
    /// Indexes that failed, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub index_errors: Vec<(String, String)>,
    /// Seconds spent building indexes.
    pub index_seconds: f64,
    /// Whether it was dropped first.
    pub dropped: bool,
    /// Documents an earlier run of a resumed restore got acknowledged, not sent again.
    pub resumed: u64,
    /// Documents sent again by a resumed restore that the target already held
    /// (duplicate-key refusals of documents an interrupted run had sent): expected.
    pub already_present: u64,
    /// Collection option names (`capped`, `validator`, `timeseries`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl NsReport {
    /// Whether everything asked for this namespace was done.
    pub fn ok(&self) -> bool {
        matches!(self.status.as_str(), "restored" | "skipped" | "planned")
            && self.duplicates + self.invalid + self.unacknowledged == 0
            && self.index_errors.is_empty()
            && self.damaged.is_empty()
    }
}

/// What a restore did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RestoreReport {
    /// The backup.
    pub input: PathBuf,
    /// Its format.
    pub format: String,
    /// Target, credentials removed.
    pub target: String,
    /// Target server version.
    pub server_version: String,
    /// Whether nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// When secondary indexes were built (`auto` resolved for the target).
    pub index_build: String,
    /// Whether the restore was told to stop (a signal) before it was done: each
    /// namespace's status then says what the target holds (`restored`, `interrupted`
    /// with the acknowledged count, `not started`).
    pub interrupted: bool,
    /// Per namespace, in backup order.
    pub namespaces: Vec<NsReport>,
    /// Documents the server acknowledged as inserted.
    pub documents: u64,
    /// Documents sent whose outcome is unknown (see [`NsReport::unacknowledged`]).
    pub unacknowledged: u64,
    /// Raw bytes inserted.
    pub bytes: u64,
    /// Wall seconds of the data phase (first insert to last).
    pub data_seconds: f64,
    /// Seconds spent building indexes, summed over collections.
    pub index_seconds: f64,
    /// Wall seconds after the data phase until the last index was built.
    pub index_tail_seconds: f64,
    /// Total wall seconds.
    pub seconds: f64,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Whether the input is the partial output of an interrupted run: what it holds
    /// is restored, but it is not a whole backup.
    pub partial_input: bool,
    /// The oplog replay, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oplog: Option<crate::oplog::replay::ReplayReport>,
    /// The resume journal, when the restore keeps one (`--resume`); it is removed
    /// when everything was restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// Whether this run continued an earlier one from its journal.
    pub resumed: bool,
}

impl RestoreReport {
    /// Sums the namespaces' counts and index seconds into the report's totals.
    pub fn add_up(&mut self) {
        self.documents = self.namespaces.iter().map(|n| n.inserted).sum();
        self.bytes = self.namespaces.iter().map(|n| n.bytes).sum();
        self.unacknowledged = self.namespaces.iter().map(|n| n.unacknowledged).sum();
        // From +0.0: a float sum of nothing is -0.0, printed "-0.0s".
        self.index_seconds = self.namespaces.iter().fold(0.0, |a, n| a + n.index_seconds);
    }

    /// Exit 0 only when everything asked for was restored.
    pub fn ok(&self) -> bool {
        !self.interrupted
            && !self.partial_input
            && self.namespaces.iter().all(NsReport::ok)
            && self
                .oplog
                .as_ref()
                .is_none_or(|o| o.index_errors.is_empty())
    }
}

/// `--oplog-file` without a backup: replays onto whatever the target holds.
async fn run_oplog_only<F: Future<Output = ()>>(
    opts: &RestoreOptions,
    filter: &NsFilter,
    renamer: &Renamer,
    write_concern: Option<Document>,
    started: Instant,
    shutdown: impl Fn() -> F,
) -> Result<RestoreReport, RestoreError> {
    let Some(asked) = opts.oplog.as_ref().filter(|o| !o.files.is_empty()) else {
        return Err(RestoreError::Usage(
            "restore needs a backup, or --oplog-file to replay onto what the target holds".into(),
        ));
    };
    if asked.from_backup {
        return Err(RestoreError::Usage(
            "--oplog-replay replays a backup's window: give the backup".into(),
        ));
    }
    let prepared = oplog::prepare(oplog::ReplaySetup {
        asked,
        backup: None,
        filter,
        renamer,
        write_concern: write_concern.clone(),
        lanes: opts.jobs * opts.workers,
        include_system: opts.include_system,
    })?;
    let client = connect::connect(&opts.uri, (opts.jobs * opts.workers + 4) as u32, None).await?;
    let server = connect::server_info(&client)
        .await
        .map_err(|source| RestoreError::Driver {
            what: "reading server information".into(),
            source,
        })?;
    let mut report = RestoreReport {
        input: asked.files[0].clone(),
        format: "oplog".into(),
        target: connect::redact_uri(&opts.uri),
        server_version: server.version.clone(),
        dry_run: opts.dry_run,
        ..RestoreReport::default()
    };
    if opts.dry_run {
        report.oplog = Some(prepared.dry_run());
    } else {
        let reports = Mutex::new(Vec::new());
        let work = oplog::replay_then_index(
            &client,
            prepared,
            Default::default(),
            opts.index_build,
            write_concern.as_ref(),
            &reports,
        );
        tokio::select! {
            r = work => report.oplog = Some(r?),
            _ = shutdown() => {
                report.interrupted = true;
                report.warnings.push(REPLAY_INTERRUPTED.into());
            }
        }
    }
    connect::close(client).await;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

enum Feed {
    /// Documents, how many, and which unit of the input they are (see [`journal::Unit`]).
    Docs(Vec<u8>, u64, journal::Unit, u64),
    Damaged(String),
    Failed(String),
}

struct Ctx {
    /// The resume journal (`--resume`).
    journal: Option<Arc<journal::Journal>>,
    /// Source namespaces an earlier run started (their re-sent documents may be there).
    resumed: std::collections::HashSet<String>,
    /// Becomes `true` when the restore is told to stop: no new request is sent.
    stop: tokio::sync::watch::Receiver<bool>,
    /// The comment of this run's inserts.
    op_comment: String,
    client: Client,
    no_options: bool,
    preserve_uuid: bool,
    server: ServerInfo,
    catalog: Catalog,
    write_concern: Option<Document>,
    bypass_validation: bool,
    bypass_empty_ts: bool,
    stop_on_error: bool,
    workers: usize,
    batch_docs: usize,
    batch_bytes: usize,
    index_build: IndexBuild,
    index_specs: spec::IndexSpecOptions,
    index_sem: Arc<Semaphore>,
    progress: Progress,
    overall: indicatif::ProgressBar,
    /// Documents of the users and roles targets, by target, written after the data.
    authz_docs: Mutex<std::collections::HashMap<usize, Vec<u8>>>,
}

/// Opened input: random access per namespace, or one stream.
enum Input {
    Oxd { path: PathBuf, index: Index },
    Dir(crate::mongodump::dir::DirReader),
    Stream(Box<dyn Source>),
}

fn open_input(path: &Path) -> Result<(Input, String), SourceError> {
    let opened = input::open(path)?;
    let name = opened.format.name().to_string();
    let inp = match opened.format {
        InputFormat::Oxd if path.as_os_str() != "-" => {
            let mut f = std::fs::File::open(path).map_err(|source| SourceError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            match Index::open(&mut f) {
                Ok(index) => Input::Oxd {
                    path: path.to_path_buf(),
                    index,
                },
                // No valid trailer: read what is intact, in order.
                Err(_) => Input::Stream(Box::new(OxdSource::new(
                    opened.stream.expect("stream"),
                    path.to_path_buf(),
                )?)),
            }
        }
        InputFormat::MongodumpDir => {
            Input::Dir(crate::mongodump::dir::DirReader::open(path).map_err(|e| {
                SourceError::Corrupt {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                }
            })?)
        }
        _ => Input::Stream(crate::commands::source_from(opened)?),
    };
    Ok((inp, name))
}

fn catalog_of(i: &Input) -> &Catalog {
    match i {
        Input::Oxd { index, .. } => &index.catalog,
        Input::Dir(d) => d.catalog(),
        Input::Stream(s) => s.catalog(),
    }
}

/// Whether a server of this version accepts `bypassEmptyTsReplacement`.
fn accepts_empty_ts_flag(v: &str) -> bool {
    let mut it = v.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b, c) = (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    );
    match (a, b) {
        (a, _) if a >= 8 => true,
        (7, 0) => c >= 13,
        (6, 0) => c >= 17,
        (5, 0) => c >= 29,
        (a, _) => a > 7,
    }
}

/// Runs a restore. The future `shutdown()` makes resolving (Ctrl-C, a termination
/// signal) stops it: no new request is sent, those already sent are awaited (at most
/// [`STOP_GRACE`]), and the report says what the target holds. A second one (made
/// after the first resolved) kills this run's operations on the server where the
/// server allows it, and stops waiting.
pub async fn run<F: Future<Output = ()>>(
    opts: RestoreOptions,
    progress: Progress,
    shutdown: impl Fn() -> F,
) -> Result<RestoreReport, RestoreError> {
    if opts.jobs == 0 || opts.workers == 0 {
        return Err(RestoreError::Usage(
            "-j and --workers-per-collection must be at least 1".into(),
        ));
    }
    if opts.preserve_uuid && opts.existing != Existing::Drop {
        return Err(RestoreError::Usage("--preserve-uuid needs --drop (a collection keeps its UUID only when it is created anew)".into()));
    }
    let started = Instant::now();
    let filter = NsFilter::new(&opts.include, &opts.exclude)?;
    let renamer = Renamer::new(&opts.renames)?;
    let write_concern = opts
        .write_concern
        .as_deref()
        .map(plan::parse_write_concern)
        .transpose()
        .map_err(RestoreError::Usage)?;
    if opts.resume && opts.input.as_os_str() == "-" {
        return Err(RestoreError::Usage(
            "--resume needs a backup read by path: standard input cannot be read again from where it stopped".into(),
        ));
    }
    if opts.resume && opts.stop_on_error {
        return Err(RestoreError::Usage(
            "--resume and --stop-on-error do not go together: a resumed restore sends some documents again, and the target already holding them is expected".into(),
        ));
    }
    if opts.input.as_os_str().is_empty() {
        return run_oplog_only(&opts, &filter, &renamer, write_concern, started, shutdown).await;
    }
    let (input, format) = open_input(&opts.input)?;
    let journal = opts
        .resume
        .then(|| journal_plan(&opts, &format))
        .transpose()?;
    let catalog = catalog_of(&input).clone();
    let raw_total: u64 = match &input {
        Input::Oxd { index, .. } => index
            .footer
            .namespaces
            .iter()
            .map(|n| n.end.raw_bytes)
            .sum(),
        _ => 0,
    };
    let counts: Vec<Option<u64>> = match &input {
        Input::Oxd { index, .. } => index
            .footer
            .namespaces
            .iter()
            .map(|n| Some(n.end.doc_count))
            .collect(),
        _ => vec![None; catalog.namespaces.len()],
    };
    let client =
        connect::connect(&opts.uri, (opts.jobs * (opts.workers + 1) + 4) as u32, None).await?;
    let loaded = Loaded {
        journal,
        started,
        filter,
        renamer,
        write_concern,
        input,
        format,
        catalog,
        raw_total,
        counts,
    };
    let r = restore_connected(&opts, &client, loaded, progress, shutdown).await;
    // Every task that talked to the server is over: close the client before the
    // runtime goes, on every way out.
    connect::close(client).await;
    r
}

/// The resume journal of a restore.
enum Journaled {
    /// Kept up to date; `true` when it continues an earlier run.
    Open(Arc<journal::Journal>, bool),
    /// Read for a dry run.
    Checked(journal::JournalData),
}

impl Journaled {
    /// Whether an earlier run created the target of source namespace `ns`.
    fn created(&self, ns: &str) -> bool {
        match self {
            Journaled::Open(j, resumed) => *resumed && j.progress(ns).created,
            Journaled::Checked(d) => d.namespaces.get(ns).is_some_and(|p| p.created),
        }
    }
}

/// What decides what a restore writes, for its journal.
fn journal_plan(opts: &RestoreOptions, format: &str) -> Result<journal::Plan, RestoreError> {
    let input = std::path::absolute(&opts.input).unwrap_or_else(|_| opts.input.clone());
    let input_fingerprint =
        journal::fingerprint(&opts.input).map_err(|source| SourceError::Io {
            path: opts.input.clone(),
            source,
        })?;
    let list = |v: &[String]| v.join(" ");
    let options = [
        ("--ns-include", list(&opts.include)),
        ("--ns-exclude", list(&opts.exclude)),
        (
            "--ns-from/--ns-to",
            opts.renames
                .iter()
                .map(|(a, b)| format!("{a}={b}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "existing targets",
            match opts.existing {
                Existing::Refuse => "refuse",
                Existing::Drop => "--drop",
                Existing::Append => "--append",
            }
            .to_string(),
        ),
        (
            "--index-build",
            format!("{:?}", opts.index_build).to_lowercase(),
        ),
        (
            "--bypass-document-validation",
            opts.bypass_validation.to_string(),
        ),
        (
            "--write-concern",
            opts.write_concern.clone().unwrap_or_default(),
        ),
        ("--no-options", opts.no_options.to_string()),
        ("--preserve-uuid", opts.preserve_uuid.to_string()),
        ("--include-system", opts.include_system.to_string()),
        ("--skip-corrupt", opts.skip_corrupt.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(journal::Plan {
        input: input.display().to_string(),
        input_format: format.to_string(),
        input_fingerprint,
        target: connect::redact_uri(&opts.uri),
        options,
    })
}

/// What is known before connecting.
struct Loaded {
    /// The plan of the resume journal (`--resume`).
    journal: Option<journal::Plan>,
    started: Instant,
    filter: NsFilter,
    renamer: Renamer,
    write_concern: Option<Document>,
    input: Input,
    format: String,
    catalog: Catalog,
    raw_total: u64,
    counts: Vec<Option<u64>>,
}

/// How long requests already sent may take to be answered once a restore is told to
/// stop; what is still unanswered then is reported as unacknowledged.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Said when a stop comes during the oplog replay.
const REPLAY_INTERRUPTED: &str = "interrupted during the oplog replay: the target holds the data and part of the replay (replaying again from the start converges)";

/// How long killed operations may take to answer.
const KILL_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Kills the operations on the server that carry `comment` (this run's inserts):
/// says what was done, for the report. Servers without `currentOp` or `killOp`, or
/// users without the privilege, get the operations left to finish.
async fn kill_operations(client: &Client, comment: &str) -> String {
    let admin = client.database("admin");
    let current = admin
        .run_command(doc! {"currentOp": true, "command.comment": comment})
        .await;
    let ops = match current {
        Ok(r) => r.get_array("inprog").cloned().unwrap_or_default(),
        Err(e) => {
            return format!(
                "the server could not list them ({}); requests still running were left to finish",
                connect::describe(&e)
            );
        }
    };
    if ops.is_empty() {
        return "the server lists none of this run's operations (currentOp); requests still running were left to finish".into();
    }
    let mut killed = 0;
    for op in ops.iter().filter_map(|o| o.as_document()) {
        if let Some(id) = op.get("opid")
            && admin
                .run_command(doc! {"killOp": 1, "op": id.clone()})
                .await
                .is_ok()
        {
            killed += 1;
        }
    }
    format!(
        "{killed} of this run's {} operations on the server were killed",
        ops.len()
    )
}

async fn restore_connected<F: Future<Output = ()>>(
    opts: &RestoreOptions,
    client: &Client,
    loaded: Loaded,
    progress: Progress,
    shutdown: impl Fn() -> F,
) -> Result<RestoreReport, RestoreError> {
    let Loaded {
        journal: journal_plan,
        started,
        filter,
        renamer,
        write_concern,
        input,
        format,
        catalog,
        raw_total,
        counts,
    } = loaded;
    let server = connect::server_info(client)
        .await
        .map_err(|source| RestoreError::Driver {
            what: "reading server information".into(),
            source,
        })?;
    let index_build = opts.index_build.resolve(&server);
    let journal = match journal_plan {
        None => None,
        Some(plan) => {
            let store = if opts.journal_in_target {
                journal::Store::Server {
                    client: client.clone(),
                    id: plan.input.clone(),
                }
            } else {
                journal::Store::File(
                    opts.journal
                        .clone()
                        .unwrap_or_else(|| journal::default_path(&opts.input)),
                )
            };
            if opts.dry_run {
                // Checked, never written.
                journal::Journal::check(&store, &plan)
                    .await?
                    .map(Journaled::Checked)
            } else {
                let (j, resumed) = journal::Journal::open(store, plan).await?;
                Some(Journaled::Open(Arc::new(j), resumed))
            }
        }
    };
    let resumed: std::collections::HashSet<String> = match &journal {
        Some(j) => catalog
            .namespaces
            .iter()
            .map(|n| n.full_name())
            .filter(|n| j.created(n))
            .collect(),
        None => Default::default(),
    };
    let (targets, mut warnings) = plan::plan(
        client,
        PlanInput {
            catalog: &catalog,
            counts: &counts,
            filter: &filter,
            renamer: &renamer,
            existing: opts.existing,
            include_system: opts.include_system,
            preserve_uuid: opts.preserve_uuid,
            no_options: opts.no_options,
            server: &server,
            resumed: &resumed,
            users_and_roles: opts.users_and_roles,
        },
    )
    .await?;
    // Oplog inputs are read and the boundary checked before anything is written.
    let replay = match &opts.oplog {
        Some(asked) => Some(oplog::prepare(oplog::ReplaySetup {
            asked,
            backup: Some(&opts.input),
            filter: &filter,
            renamer: &renamer,
            write_concern: write_concern.clone(),
            lanes: opts.jobs * opts.workers,
            include_system: opts.include_system,
        })?),
        None => None,
    };
    if opts.preserve_uuid && !opts.dry_run {
        let probe = client
            .database("admin")
            .run_command(doc! {"applyOps": []})
            .await;
        if let Err(e) = probe
            && matches!(connect::code_of(&e), Some(59) | Some(115))
        {
            return Err(RestoreError::Plan(RestorePlanError::Refused(vec![
                format!(
                    "--preserve-uuid needs the applyOps command, which this server does not support ({})",
                    e.kind
                ),
            ])));
        }
    }
    let mut report = RestoreReport {
        input: opts.input.clone(),
        format,
        target: connect::redact_uri(&opts.uri),
        server_version: server.version.clone(),
        dry_run: opts.dry_run,
        index_build: index_build.as_str().to_string(),
        journal: match &journal {
            Some(Journaled::Open(j, _)) => Some(j.describe()),
            _ => None,
        },
        resumed: matches!(
            journal,
            Some(Journaled::Open(_, true) | Journaled::Checked(_))
        ),
        ..RestoreReport::default()
    };
    if crate::output::is_partial_output(&opts.input) {
        report.partial_input = true;
        warnings.insert(
            0,
            format!(
                "{}: {}",
                opts.input.display(),
                crate::output::PARTIAL_OUTPUT
            ),
        );
    }
    report.namespaces = targets
        .iter()
        .map(|t| NsReport {
            source: t.source.clone(),
            target: t.full_name(),
            kind: t.kind.to_string(),
            status: match (&t.skip, opts.dry_run) {
                (Some(_), _) => "skipped".into(),
                (None, true) => "planned".into(),
                (None, false) => "pending".into(),
            },
            message: t.skip.clone(),
            expected: t.documents,
            indexes: if index_build == IndexBuild::Skip {
                Vec::new()
            } else {
                t.indexes.clone()
            },
            dropped: t.drop,
            options: t.options.clone(),
            ..NsReport::default()
        })
        .collect();
    // A write concern the server refuses is refused before anything is written.
    if let (Some(wc), Some(t)) = (&write_concern, targets.iter().find(|t| t.skip.is_none())) {
        plan::check_write_concern(
            client,
            &t.db,
            wc,
            opts.write_concern.as_deref().unwrap_or(""),
        )
        .await?;
    }
    // Users that the target cannot take are refused before anything is written.
    let authz_read = check_authz(client, opts, &renamer, &input, &targets).await?;
    if replay.is_some() {
        for r in report.namespaces.iter_mut().filter(|r| r.kind == "oplog") {
            r.message = Some("the oplog window is replayed after the data".into());
        }
    }
    if opts.dry_run {
        report.oplog = replay.as_ref().map(|p| p.dry_run());
        report.warnings = warnings;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let batch_bytes = opts
        .batch_bytes
        .unwrap_or(DEFAULT_BATCH_BYTES)
        .min((server.max_message_size.max(2 << 20) as usize) - (1 << 20));
    let total = raw_total;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let journal = match journal {
        Some(Journaled::Open(j, _)) => Some(j),
        _ => None,
    };
    let ctx = Arc::new(Ctx {
        journal: journal.clone(),
        resumed,
        stop,
        op_comment: format!(
            "oxidump restore {}-{}",
            std::process::id(),
            bson::oid::ObjectId::new().to_hex()
        ),
        client: client.clone(),
        no_options: opts.no_options,
        preserve_uuid: opts.preserve_uuid,
        bypass_empty_ts: accepts_empty_ts_flag(&server.version),
        server,
        catalog: catalog.clone(),
        write_concern,
        bypass_validation: opts.bypass_validation,
        stop_on_error: opts.stop_on_error,
        workers: opts.workers,
        batch_docs: (ctx_max_batch(client).await).unwrap_or(100_000),
        batch_bytes,
        // With a replay, every secondary index waits for its end.
        index_build: if replay.is_some() {
            IndexBuild::Skip
        } else {
            index_build
        },
        index_specs: opts.index_specs,
        index_sem: Arc::new(Semaphore::new(opts.jobs)),
        overall: progress.bytes((total > 0).then_some(total), "restore"),
        progress: progress.clone(),
        authz_docs: Mutex::new(std::collections::HashMap::new()),
    });
    let authz_targets: Vec<(usize, Target)> = targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.skip.is_none() && t.authz.is_some())
        .map(|(k, t)| (k, t.clone()))
        .collect();
    let reports = Arc::new(Mutex::new(std::mem::take(&mut report.namespaces)));
    for (k, read) in authz_read {
        match read {
            Ok(data) => {
                ctx.authz_docs.lock().expect("lock").insert(k, data);
            }
            Err(m) => set(&reports, k, |r| {
                r.status = "failed".into();
                r.message = Some(m);
            }),
        }
    }
    let seed = oplog::seed_indexes(&catalog, &targets);
    let work = restore_all(
        ctx.clone(),
        input,
        targets,
        opts.jobs,
        opts.skip_corrupt,
        reports.clone(),
    );
    tokio::pin!(work);
    // What the server acknowledged reaches the journal at most FLUSH_EVERY late.
    let flusher = journal.clone().map(|j| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(journal::Journal::FLUSH_EVERY);
            loop {
                every.tick().await;
                j.flush_quietly().await;
            }
        })
    });
    // Told to stop: no new request is sent, those already sent are answered (for at
    // most STOP_GRACE), and the report says what the target holds.
    let data_done = tokio::select! {
        r = &mut work => Some(r),
        _ = shutdown() => {
            report.interrupted = true;
            let _ = stop_tx.send(true);
            tokio::select! {
                r = tokio::time::timeout(STOP_GRACE, &mut work) => r.ok(),
                _ = shutdown() => {
                    // Told twice: what the server is still doing for this run is killed.
                    let killed = tokio::time::timeout(
                        KILL_GRACE,
                        kill_operations(client, &ctx.op_comment),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        format!("the server did not answer currentOp within {KILL_GRACE:?}; requests still running were left to it")
                    });
                    report.warnings.push(format!(
                        "stopped again while waiting for the server: {killed}"
                    ));
                    tokio::time::timeout(KILL_GRACE, &mut work).await.ok()
                }
            }
        }
    };
    let data_done = match data_done {
        Some(r) => r?,
        None => {
            report.warnings.push(format!(
                "requests sent before the stop were still unanswered after {STOP_GRACE:?}"
            ));
            DataDone {
                data_seconds: 0.0,
                data_finished: Instant::now(),
                finished: Instant::now(),
                warnings: Vec::new(),
            }
        }
    };
    ctx.overall.finish_and_clear();
    let authz_docs = std::mem::take(&mut *ctx.authz_docs.lock().expect("lock"));
    let authz_warnings = restore_authz(
        client,
        opts,
        &renamer,
        ctx.write_concern.clone(),
        &authz_targets,
        authz_docs,
        &reports,
    )
    .await;
    if let Some(p) = replay.filter(|_| !report.interrupted) {
        let work = oplog::replay_then_index(
            client,
            p,
            seed,
            index_build,
            ctx.write_concern.as_ref(),
            &reports,
        );
        tokio::select! {
            r = work => report.oplog = Some(r?),
            _ = shutdown() => {
                report.interrupted = true;
                report.warnings.push(REPLAY_INTERRUPTED.into());
            }
        }
    }
    report.namespaces = Arc::try_unwrap(reports)
        .map(|m| m.into_inner().expect("lock"))
        .unwrap_or_else(|a| a.lock().expect("lock").clone());
    if report.interrupted {
        for n in &mut report.namespaces {
            match n.status.as_str() {
                "pending" => n.status = "not started".into(),
                "loading" | "indexing" => n.status = "interrupted".into(),
                _ => {}
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    report.add_up();
    report.data_seconds = data_done.data_seconds;
    report.index_tail_seconds = (data_done.finished - data_done.data_finished).as_secs_f64();
    report.seconds = seconds;
    warnings.extend(data_done.warnings);
    warnings.append(&mut report.warnings);
    warnings.extend(authz_warnings);
    report.warnings = warnings;
    if let Some(f) = flusher {
        f.abort();
        let _ = f.await;
    }
    if let Some(j) = &journal {
        j.flush_quietly().await;
        if let Some(e) = j.take_error() {
            report.warnings.push(format!(
                "{e}: a resumed run may send more again than it needs to"
            ));
        }
        if report.ok() {
            if let Err(e) = j.remove().await {
                report.warnings.push(e.to_string());
            }
        } else {
            report.warnings.push(format!(
                "progress is kept in {}: run the same restore with --resume to continue",
                j.describe()
            ));
        }
    }
    Ok(report)
}

/// Where the renaming moves the users and roles of database `db`: a user or role of
/// `db` follows `db`'s namespaces. `None` when it stays.
fn authz_db_map(renamer: &Renamer, db: &str) -> Option<String> {
    use crate::authz;
    let probe = format!("{db}.{}{}", authz::DB_PREFIX, authz::USERS);
    let renamed = renamer.rename(&probe);
    let to = renamed.split_once('.').map(|(d, _)| d)?;
    (to != db).then(|| to.to_string())
}

/// The users and roles targets grouped by scope, in backup order.
fn authz_scopes(targets: &[(usize, Target)]) -> Vec<(crate::authz::Scope, Vec<&(usize, Target)>)> {
    let mut out: Vec<(crate::authz::Scope, Vec<&(usize, Target)>)> = Vec::new();
    for kt in targets {
        let scope = &kt.1.authz.as_ref().expect("authz target").1;
        match out.iter_mut().find(|(s, _)| s == scope) {
            Some((_, v)) => v.push(kt),
            None => out.push((scope.clone(), vec![kt])),
        }
    }
    out
}

/// How the users and roles of `scope` (its targets `mine`) are written.
fn apply_options(
    opts: &RestoreOptions,
    scope: &crate::authz::Scope,
    mine: &[&(usize, Target)],
    write_concern: Option<Document>,
) -> crate::authz::server::ApplyOptions {
    crate::authz::server::ApplyOptions {
        scope: scope.clone(),
        kinds: mine
            .iter()
            .filter_map(|(_, t)| t.authz.as_ref().map(|a| a.0))
            .collect(),
        drop: opts.existing == Existing::Drop,
        without_credentials: opts.users_without_credentials,
        temp_users: opts.temp_users.clone(),
        temp_roles: opts.temp_roles.clone(),
        write_concern,
        target: connect::redact_uri(&opts.uri),
    }
}

/// Before anything is written: reads the users and roles of a backup read per
/// namespace (they are few and small), and refuses the users the target cannot take
/// (see [`crate::authz::server::check`]); a file read as a stream is read once more
/// for its users where the target needs them checked, and a backup on standard input
/// has its users refused on such a target without being read. Returns what was read
/// per namespace, by target.
async fn check_authz(
    client: &Client,
    opts: &RestoreOptions,
    renamer: &Renamer,
    input: &Input,
    targets: &[Target],
) -> Result<std::collections::HashMap<usize, Result<Vec<u8>, String>>, RestoreError> {
    use crate::authz::{self, Kind, server};
    let live: Vec<(usize, Target)> = targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.skip.is_none() && t.authz.is_some())
        .map(|(k, t)| (k, t.clone()))
        .collect();
    let mut read = std::collections::HashMap::new();
    if live.is_empty() {
        return Ok(read);
    }
    let streamed = matches!(input, Input::Stream(_));
    if !streamed {
        for (k, t) in &live {
            read.insert(*k, read_namespace(input, t.src, &t.source));
        }
    }
    let refuse =
        |e: server::AuthzError| RestoreError::Plan(RestorePlanError::Refused(vec![e.to_string()]));
    // On a server that merges stored documents (mongod), the backup's auth schema must
    // be one the server takes, as mongorestore checks.
    if !streamed && server::method(client).await == server::Method::Merge {
        let target_version = server::server_auth_version(client).await;
        let source = catalog_of(input)
            .source
            .server_version
            .as_deref()
            .map_or((0, 0), connect::parse_major_minor);
        for (scope, mine) in authz_scopes(&live) {
            let (version_ns, one_db) = match &scope {
                authz::Scope::All => ("admin.system.version".to_string(), false),
                authz::Scope::Db(_) => {
                    let src_db = mine[0].1.source.split_once('.').map_or("", |(d, _)| d);
                    (format!("{src_db}.{}system.version", authz::DB_PREFIX), true)
                }
            };
            let stored = targets
                .iter()
                .find(|t| t.source == version_ns)
                .and_then(|t| read_namespace(input, t.src, &t.source).ok())
                .and_then(|data| {
                    authz::documents(Kind::Roles, &data, &authz::Scope::All, &|_| None).ok()
                })
                .and_then(|docs| server::auth_version_of(&docs));
            let dump_version = server::dump_auth_version(stored, source, one_db);
            server::check_auth_versions(dump_version, target_version)
                .map_err(|e| RestoreError::Plan(RestorePlanError::Refused(vec![e])))?;
        }
    }
    for (scope, mine) in authz_scopes(&live) {
        let users: Vec<&&(usize, Target)> = mine
            .iter()
            .filter(|(_, t)| t.authz.as_ref().is_some_and(|a| a.0 == Kind::Users))
            .collect();
        if users.is_empty() {
            continue;
        }
        let o = apply_options(opts, &scope, &mine, None);
        let map = |db: &str| authz_db_map(renamer, db);
        let mut docs = Vec::new();
        if streamed {
            // A file read as a stream is read once more, up to its users (mongodump
            // writes them first); standard input cannot be.
            let again = opts.input.as_os_str() != "-"
                && !opts.users_without_credentials
                && server::method(client).await == server::Method::Commands;
            if !again {
                let names: Vec<String> = users.iter().map(|(_, t)| t.source.clone()).collect();
                server::check_unread(client, &names, &o)
                    .await
                    .map_err(refuse)?;
                continue;
            }
            let srcs: Vec<usize> = users.iter().map(|(_, t)| t.src).collect();
            let unreadable = |e: String| {
                RestoreError::Plan(RestorePlanError::Refused(vec![format!(
                    "reading the users of {} before its data: {e}",
                    opts.input.display()
                )]))
            };
            for data in read_again(&opts.input, &srcs).map_err(unreadable)? {
                docs.extend(
                    authz::documents(Kind::Users, &data, &scope, &map).map_err(unreadable)?,
                );
            }
        }
        for (k, _) in &users {
            // A namespace that cannot be read fails on its own, after the data.
            if let Some(Ok(data)) = read.get(k)
                && let Ok(d) = authz::documents(Kind::Users, data, &scope, &map)
            {
                docs.extend(d);
            }
        }
        server::check(client, &docs, &o).await.map_err(refuse)?;
    }
    Ok(read)
}

/// The documents of namespaces `srcs` (in that order) of a backup file read as a
/// stream, from a second reading of the file that stops once they have all ended.
fn read_again(path: &Path, srcs: &[usize]) -> Result<Vec<Vec<u8>>, String> {
    let opened = input::open(path).map_err(|e| e.to_string())?;
    let mut source = crate::commands::source_from(opened).map_err(|e| e.to_string())?;
    let mut out = vec![Vec::new(); srcs.len()];
    let mut open = srcs.len();
    while open > 0 {
        match source.next_chunk().map_err(|e| e.to_string())? {
            Some(Chunk::Docs { ns, data, .. }) => {
                if let Some(i) = srcs.iter().position(|&s| s == ns) {
                    out[i].extend_from_slice(&data);
                }
            }
            Some(Chunk::End { ns, .. }) => {
                if srcs.contains(&ns) {
                    open -= 1;
                }
            }
            None => break,
        }
    }
    Ok(out)
}

/// Every document of namespace `src` of a backup read per namespace, or why not.
fn read_namespace(input: &Input, src: usize, name: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match input {
        Input::Oxd { path, index } => {
            let mut s = NsSource::with_options(path, index, src, false, READ_AHEAD);
            loop {
                match s.next_chunk() {
                    Ok(Some(Chunk::Docs { data, .. })) => out.extend_from_slice(&data),
                    Ok(Some(Chunk::End {
                        status: crate::catalog::NsStatus::Unchecked(m),
                        ..
                    })) => return Err(m),
                    Ok(Some(Chunk::End { .. })) | Ok(None) => break,
                    Err(e) => return Err(format!("{name}: {e}")),
                }
            }
        }
        Input::Dir(d) => {
            let mut r = d.open_namespace(src).map_err(|e| format!("{name}: {e}"))?;
            while let Some((data, _)) = r.next_chunk().map_err(|e| format!("{name}: {e}"))? {
                out.extend_from_slice(&data);
            }
        }
        Input::Stream(_) => return Err(format!("{name}: read as a stream")),
    }
    Ok(out)
}

/// Writes the users and roles collected from the backup, scope by scope, and records
/// the outcome on their targets. Returns warnings (users whose passwords must be reset).
async fn restore_authz(
    client: &Client,
    opts: &RestoreOptions,
    renamer: &Renamer,
    write_concern: Option<Document>,
    targets: &[(usize, Target)],
    mut docs: std::collections::HashMap<usize, Vec<u8>>,
    reports: &Mutex<Vec<NsReport>>,
) -> Vec<String> {
    use crate::authz::{self, Kind, server};
    let mut warnings = Vec::new();
    let map = |db: &str| authz_db_map(renamer, db);
    for (scope, mine) in authz_scopes(targets) {
        let mut all = server::Authz::default();
        let mut failed: Option<String> = None;
        for (k, t) in &mine {
            let kind = t.authz.as_ref().expect("authz target").0;
            let data = docs.remove(k).unwrap_or_default();
            match authz::documents(kind, &data, &scope, &map) {
                Ok(d) => match kind {
                    Kind::Users => all.users.extend(d),
                    Kind::Roles => all.roles.extend(d),
                },
                Err(e) => {
                    failed = Some(format!("{}: a damaged document: {e}", t.source));
                }
            }
            let status = reports.lock().expect("lock")[*k].status.clone();
            if status == "failed" {
                failed.get_or_insert(format!("{}: the backup could not be read", t.source));
            }
        }
        let outcome = match failed {
            Some(m) => Err(m),
            None => server::apply(
                client,
                &all,
                &apply_options(opts, &scope, &mine, write_concern.clone()),
            )
            .await
            .map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(r) => {
                if !r.users_without_credentials.is_empty() {
                    warnings.push(format!(
                        "users created without their passwords (random passwords; reset them with updateUser): {}",
                        r.users_without_credentials.join(", ")
                    ));
                }
                if !r.users_updated.is_empty() {
                    warnings.push(format!(
                        "users that already existed keep the target's password (roles, customData and authenticationRestrictions restored): {}",
                        r.users_updated.join(", ")
                    ));
                }
                for (k, t) in &mine {
                    let kind = t.authz.as_ref().expect("authz target").0;
                    let n = match kind {
                        Kind::Users => all.users.len(),
                        Kind::Roles => all.roles.len(),
                    } as u64;
                    set(reports, *k, |rep| {
                        rep.status = "restored".into();
                        rep.inserted = n;
                        rep.message = Some(match (kind, r.method.as_str()) {
                            (Kind::Users, "merge") => {
                                "with their credentials (_mergeAuthzCollections)".into()
                            }
                            (Kind::Roles, "merge") => "_mergeAuthzCollections".into(),
                            (_, _) => "through the user and role commands".into(),
                        });
                    });
                }
            }
            Err(m) => {
                for (k, _) in &mine {
                    set(reports, *k, |rep| {
                        rep.status = "failed".into();
                        rep.message = Some(m.clone());
                    });
                }
            }
        }
    }
    warnings
}

async fn ctx_max_batch(client: &Client) -> Option<usize> {
    let hello = client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
        .ok()?;
    match hello.get("maxWriteBatchSize") {
        Some(bson::Bson::Int32(n)) => Some(*n as usize),
        Some(bson::Bson::Int64(n)) => Some(*n as usize),
        _ => None,
    }
}

struct DataDone {
    data_seconds: f64,
    data_finished: Instant,
    finished: Instant,
    warnings: Vec<String>,
}

/// Creates the targets, loads the data, builds the indexes.
async fn restore_all(
    ctx: Arc<Ctx>,
    input: Input,
    targets: Vec<Target>,
    jobs: usize,
    skip_corrupt: bool,
    reports: Arc<Mutex<Vec<NsReport>>>,
) -> Result<DataDone, RestoreError> {
    let mut warnings = Vec::new();
    // Create every collection first, views last: nothing is inserted before every
    // target exists with its options.
    let live: Vec<usize> = (0..targets.len())
        .filter(|&k| targets[k].skip.is_none())
        .collect();
    let mut order: Vec<usize> = live
        .iter()
        .copied()
        .filter(|&k| targets[k].authz.is_none())
        .collect();
    order.sort_by_key(|&k| targets[k].kind == "view");
    let mut created = vec![false; targets.len()];
    // Users and roles are only collected here, and written after the data.
    for &k in &live {
        created[k] = targets[k].authz.is_some();
    }
    for &k in &order {
        if *ctx.stop.borrow() {
            break;
        }
        let t = &targets[k];
        let earlier = ctx.journal.as_ref().map(|j| j.progress(&t.source));
        if let Some(p) = earlier.as_ref().filter(|p| p.complete) {
            // An earlier run did everything for it.
            set(&reports, k, |r| {
                r.status = "restored".into();
                r.resumed = p.documents;
                r.message = Some("restored by an earlier run (resumed)".into());
            });
            continue;
        }
        match prepare(&ctx, t).await {
            Ok(()) => {
                created[k] = true;
                if let Some(j) = &ctx.journal {
                    if t.kind == "view" {
                        j.complete(&t.source).await;
                    } else {
                        j.created(&t.source).await;
                    }
                }
                if t.kind == "view" {
                    set(&reports, k, |r| r.status = "restored".into());
                }
            }
            Err(m) => set(&reports, k, |r| {
                r.status = "failed".into();
                r.message = Some(m);
            }),
        }
        if created[k]
            && ctx.index_build == IndexBuild::Before
            && t.kind != "view"
            && !earlier.as_ref().is_some_and(|p| p.indexes_built)
        {
            let ns = &ctx.catalog.namespaces[t.src];
            let o = index::build(
                &ctx.client.database(&t.db),
                &t.coll,
                &spec::secondary_indexes_with(ns, ctx.index_specs),
                ctx.write_concern.as_ref(),
            )
            .await;
            if let (Some(j), true) = (&ctx.journal, o.failed.is_empty()) {
                j.indexes_built(&t.source).await;
            }
            set(&reports, k, |r| {
                r.indexes = o.built.clone();
                r.index_errors = o.failed.clone();
                r.index_seconds = o.seconds;
            });
        }
    }
    let by_src: std::collections::HashMap<usize, usize> = live
        .iter()
        .filter(|&&k| created[k] && targets[k].kind != "view")
        .map(|&k| (targets[k].src, k))
        .collect();
    let data_started = Instant::now();
    let mut pipelines: JoinSet<()> = JoinSet::new();
    let data_finished = Arc::new(Mutex::new(Instant::now()));
    match input {
        Input::Oxd { .. } | Input::Dir(_) => {
            let input = Arc::new(match input {
                Input::Oxd { path, index } => Random::Oxd { path, index },
                Input::Dir(d) => Random::Dir(Mutex::new(d)),
                Input::Stream(_) => unreachable!("matched above"),
            });
            let sem = Arc::new(Semaphore::new(jobs));
            // Biggest first, so the longest collection starts early. Users and roles
            // were read before the data (see `check_authz`).
            let mut ks: Vec<usize> = by_src
                .values()
                .copied()
                .filter(|&k| targets[k].authz.is_none())
                .collect();
            ks.sort_by_key(|&k| std::cmp::Reverse(targets[k].documents.unwrap_or(0)));
            for k in ks {
                let t = targets[k].clone();
                let (ctx, input, sem, reports, df) = (
                    ctx.clone(),
                    input.clone(),
                    sem.clone(),
                    reports.clone(),
                    data_finished.clone(),
                );
                pipelines.spawn(async move {
                    let permit = sem.acquire_owned().await.expect("semaphore open");
                    let (tx, rx) = mpsc::channel::<Feed>(2);
                    let src = t.src;
                    let name = t.source.clone();
                    let reader = tokio::task::spawn_blocking(move || {
                        feed_one(&input, src, &name, skip_corrupt, tx)
                    });
                    run_pipeline(ctx, t, k, rx, reports, df, Some(permit)).await;
                    let _ = reader.await;
                });
            }
        }
        Input::Stream(source) => {
            let handle = tokio::runtime::Handle::current();
            let (ctx2, reports2, df) = (ctx.clone(), reports.clone(), data_finished.clone());
            let targets2 = targets.clone();
            let by_src2 = by_src.clone();
            let started: Started = Arc::new(Mutex::new(Vec::new()));
            let started2 = started.clone();
            let mut reader = tokio::task::spawn_blocking(move || {
                feed_stream(
                    source, &handle, ctx2, &targets2, &by_src2, reports2, df, &started2,
                )
            });
            let mut stop = ctx.stop.clone();
            tokio::select! {
                r = &mut reader => warnings.extend(r.expect("stream reader panicked")),
                // Told to stop: the reader may wait for input that does not come; what
                // matters is the pipelines, which stop sending and are awaited below.
                _ = stop.wait_for(|s| *s) => {}
            }
            loop {
                let handles = std::mem::take(&mut *started.lock().expect("lock"));
                if handles.is_empty() {
                    break;
                }
                for h in handles {
                    h.await.expect("restore pipeline panicked");
                }
            }
        }
    }
    while let Some(r) = pipelines.join_next().await {
        r.expect("restore pipeline panicked");
    }
    let data_finished = *data_finished.lock().expect("lock");
    Ok(DataDone {
        data_seconds: (data_finished.max(data_started) - data_started).as_secs_f64(),
        data_finished: data_finished.max(data_started),
        finished: Instant::now(),
        warnings,
    })
}

fn set(reports: &Mutex<Vec<NsReport>>, k: usize, f: impl FnOnce(&mut NsReport)) {
    f(&mut reports.lock().expect("lock")[k]);
}

/// Drops (with `--drop`) and creates one target.
async fn prepare(ctx: &Ctx, t: &Target) -> Result<(), String> {
    let db = ctx.client.database(&t.db);
    let ns = &ctx.catalog.namespaces[t.src];
    if t.drop {
        db.collection::<Document>(&t.coll)
            .drop()
            .await
            .map_err(|e| format!("dropping {}: {}", t.full_name(), e.kind))?;
    }
    if t.exists && !t.drop {
        return Ok(());
    }
    let cmd = spec::create_command(&t.coll, ns, !ctx.no_options);
    match ns
        .uuid
        .filter(|_| ctx.preserve_uuid && ns.kind != NsKind::View)
    {
        // A collection keeps its UUID only when created through applyOps with `ui`.
        Some(uuid) => {
            let op = doc! {
                "op": "c",
                "ns": format!("{}.$cmd", t.db),
                "o": cmd,
                "ui": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: uuid.to_vec() },
            };
            ctx.client
                .database("admin")
                .run_command(doc! {"applyOps": [op]})
                .await
                .map_err(|e| format!("creating {} with its UUID: {}", t.full_name(), e.kind))?;
        }
        None => {
            db.run_command(cmd)
                .await
                .map_err(|e| format!("creating {}: {}", t.full_name(), e.kind))?;
        }
    }
    Ok(())
}

/// An input read per namespace, shared by the readers.
enum Random {
    Oxd { path: PathBuf, index: Index },
    Dir(Mutex<crate::mongodump::dir::DirReader>),
}

/// Reads one namespace of a random-access input into its pipeline.
fn feed_one(input: &Random, src: usize, name: &str, skip_corrupt: bool, tx: mpsc::Sender<Feed>) {
    match input {
        Random::Oxd { path, index } => {
            let mut s = NsSource::with_options(path, index, src, skip_corrupt, READ_AHEAD);
            loop {
                match s.next_chunk() {
                    Ok(Some(Chunk::Docs { data, count, .. })) => {
                        let seq = s.last_frame().unwrap_or(0) as u64;
                        if tx
                            .blocking_send(Feed::Docs(data, count, journal::Unit::Frame, seq))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(Some(Chunk::End {
                        status: crate::catalog::NsStatus::Unchecked(m),
                        ..
                    })) => {
                        let _ = tx.blocking_send(Feed::Damaged(m));
                        break;
                    }
                    Ok(Some(Chunk::End { .. })) | Ok(None) => break,
                    Err(e) => {
                        for f in s.skipped() {
                            let _ = tx.blocking_send(Feed::Damaged(skipped_message(f)));
                        }
                        let _ = tx.blocking_send(Feed::Failed(format!(
                            "stopped before damaged data: {e}"
                        )));
                        return;
                    }
                }
            }
            for f in s.skipped() {
                let _ = tx.blocking_send(Feed::Damaged(skipped_message(f)));
            }
        }
        Random::Dir(d) => {
            let opened = d.lock().expect("lock").open_namespace(src);
            let mut r = match opened {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.blocking_send(Feed::Failed(format!("{name}: {e}")));
                    return;
                }
            };
            loop {
                let at = r.offset();
                match r.next_chunk() {
                    Ok(Some((data, count))) => {
                        if tx
                            .blocking_send(Feed::Docs(data, count, journal::Unit::Offset, at))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.blocking_send(Feed::Failed(format!(
                            "stopped before damaged data: {e}"
                        )));
                        return;
                    }
                }
            }
        }
    }
}

fn skipped_message(f: &crate::oxd::reader::SkippedFrame) -> String {
    format!(
        "frame {} at offset {} ({} documents) not restored: {}",
        f.entry.seq, f.entry.offset, f.entry.doc_count, f.message
    )
}

/// The pipelines a stream reader started, for the restore to await.
type Started = Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>;

/// Reads a stream in order and dispatches each namespace's documents to a pipeline
/// started when the namespace first appears.
#[allow(clippy::too_many_arguments)]
fn feed_stream(
    mut source: Box<dyn Source>,
    handle: &tokio::runtime::Handle,
    ctx: Arc<Ctx>,
    targets: &[Target],
    by_src: &std::collections::HashMap<usize, usize>,
    reports: Arc<Mutex<Vec<NsReport>>>,
    data_finished: Arc<Mutex<Instant>>,
    started: &Started,
) -> Vec<String> {
    let mut senders: std::collections::HashMap<usize, mpsc::Sender<Feed>> =
        std::collections::HashMap::new();
    let mut ended = std::collections::HashSet::new();
    let mut ordinals: std::collections::HashMap<usize, u64> = std::collections::HashMap::new();
    let mut warnings = Vec::new();
    let start = |src: usize, senders: &mut std::collections::HashMap<usize, mpsc::Sender<Feed>>| {
        if let Some(&k) = by_src.get(&src) {
            let (tx, rx) = mpsc::channel::<Feed>(2);
            let t = targets[k].clone();
            let (ctx, reports, df) = (ctx.clone(), reports.clone(), data_finished.clone());
            set(&reports, k, |r| r.status = "loading".into());
            started
                .lock()
                .expect("lock")
                .push(handle.spawn(run_pipeline(ctx, t, k, rx, reports, df, None)));
            senders.insert(src, tx);
        }
    };
    loop {
        if *ctx.stop.borrow() {
            break;
        }
        match source.next_chunk() {
            Ok(Some(Chunk::Docs { ns, data, count })) => {
                if !senders.contains_key(&ns) && !ended.contains(&ns) {
                    start(ns, &mut senders);
                }
                let ord = ordinals.entry(ns).or_insert(0);
                let unit = *ord;
                *ord += 1;
                if let Some(tx) = senders.get(&ns)
                    && tx
                        .blocking_send(Feed::Docs(data, count, journal::Unit::Chunk, unit))
                        .is_err()
                {
                    senders.remove(&ns);
                }
            }
            Ok(Some(Chunk::End { ns, status })) => {
                if !senders.contains_key(&ns) && !ended.contains(&ns) {
                    start(ns, &mut senders);
                }
                if let (crate::catalog::NsStatus::Unchecked(m), Some(tx)) =
                    (status, senders.get(&ns))
                {
                    let _ = tx.blocking_send(Feed::Damaged(m));
                }
                senders.remove(&ns);
                ended.insert(ns);
            }
            Ok(None) => break,
            Err(e) => {
                let msg = format!("the input failed: {e}");
                for (_, tx) in senders.drain() {
                    let _ = tx.blocking_send(Feed::Failed(msg.clone()));
                }
                for (&src, &k) in by_src {
                    if !ended.contains(&src) {
                        set(&reports, k, |r| {
                            if r.status == "pending" {
                                r.status = "failed".into();
                                r.message = Some(msg.clone());
                            }
                        });
                    }
                }
                warnings.push(msg);
                break;
            }
        }
    }
    // Namespaces the stream never mentioned (possible only for damaged inputs).
    let stopped = *ctx.stop.borrow();
    for (&src, &k) in by_src {
        if !stopped && !ended.contains(&src) && !senders.contains_key(&src) {
            set(&reports, k, |r| {
                if r.status == "pending" {
                    r.status = "failed".into();
                    r.message = Some("the input ended before this namespace's data".into());
                }
            });
        }
    }
    drop(senders);
    let _ = start;
    warnings
}

/// One insert request and what became of it.
struct Sent {
    docs: u64,
    bytes: u64,
    /// The units of input its documents come from (see [`insert::Batch::parts`]).
    parts: Vec<(u64, u32)>,
    result: Result<(u64, BatchErrors), insert::InsertError>,
}

/// What the server acknowledged for one namespace, and what it never answered.
#[derive(Default)]
struct Tally {
    inserted: u64,
    bytes: u64,
    unacknowledged: u64,
    errors: BatchErrors,
}

impl Tally {
    /// Counts a request: the acknowledged documents as inserted, the documents of a
    /// request left unanswered as unacknowledged; a fatal error is kept (the first).
    fn add(&mut self, s: Sent, fatal: &mut Option<String>) {
        match s.result {
            Ok((n, e)) => {
                self.inserted += n;
                self.bytes += if n == s.docs {
                    s.bytes
                } else {
                    s.bytes * n / s.docs.max(1)
                };
                self.errors.merge(e);
            }
            Err(e) => {
                match e.acknowledged() {
                    Some(n) => {
                        self.inserted += n;
                        self.bytes += s.bytes * n / s.docs.max(1);
                    }
                    None => self.unacknowledged += s.docs,
                }
                fatal.get_or_insert(e.to_string());
            }
        }
    }
}

/// Loads one namespace's documents, then builds its indexes.
async fn run_pipeline(
    ctx: Arc<Ctx>,
    t: Target,
    k: usize,
    mut rx: mpsc::Receiver<Feed>,
    reports: Arc<Mutex<Vec<NsReport>>>,
    data_finished: Arc<Mutex<Instant>>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let started = Instant::now();
    set(&reports, k, |r| r.status = "loading".into());
    if t.authz.is_some() {
        let mut data = Vec::new();
        while let Some(f) = rx.recv().await {
            match f {
                Feed::Docs(d, ..) => data.extend_from_slice(&d),
                Feed::Damaged(m) | Feed::Failed(m) => {
                    set(&reports, k, |r| {
                        r.status = "failed".into();
                        r.message = Some(m);
                    });
                    return;
                }
            }
        }
        ctx.authz_docs.lock().expect("lock").insert(k, data);
        set(&reports, k, |r| r.status = "pending".into());
        drop(permit);
        return;
    }
    let ns = &ctx.catalog.namespaces[t.src];
    let raw_ts = ns.kind == NsKind::Timeseries && ctx.server.major_minor() >= (8, 3);
    let coll = if ns.kind == NsKind::Timeseries && !raw_ts {
        format!("{BUCKETS_PREFIX}{}", t.coll)
    } else {
        t.coll.clone()
    };
    let mut target = Arc::new(InsertTarget {
        db: t.db.clone(),
        coll,
        bypass_validation: ctx.bypass_validation && ns.kind != NsKind::Timeseries,
        bypass_empty_ts: ctx.bypass_empty_ts,
        raw_data: raw_ts,
        write_concern: ctx.write_concern.clone(),
        comment: Some(ctx.op_comment.clone()),
    });
    // Time-series buckets go in as buckets; a server that keeps measurements instead
    // refuses them (code 115), and then every bucket is unpacked into its measurements.
    let mut ts = (ns.kind == NsKind::Timeseries && !raw_ts).then(|| TsFallback::new(&ns.options));
    let mut unpacked = (0u64, 0u64);
    let db = ctx.client.database(&t.db);
    let bar = ctx.progress.docs(t.documents, t.full_name());
    let mut batcher = Batcher::new(ctx.batch_docs, ctx.batch_bytes);
    let sem = Arc::new(Semaphore::new(ctx.workers));
    let mut inflight: JoinSet<Sent> = JoinSet::new();
    let mut tally = Tally::default();
    let mut fatal: Option<String> = None;
    let mut damaged = Vec::new();
    let mut input_failed: Option<String> = None;
    // Resuming: what an earlier run got acknowledged is not sent again; the units of
    // input whose documents are all acknowledged go into the journal.
    let earlier = ctx
        .journal
        .as_ref()
        .map(|j| j.progress(&t.source))
        .unwrap_or_default();
    let mut resumed_docs = 0u64;
    let mut tracker = journal::UnitTracker::default();
    let mut unit_kind = journal::Unit::Frame;
    let settle = |s: &Sent, tracker: &mut journal::UnitTracker, unit: journal::Unit| {
        let Some(j) = &ctx.journal else { return };
        if let Ok((n, e)) = &s.result
            && n + e.duplicates + e.invalid >= s.docs
        {
            for (key, docs) in tracker.acknowledged(&s.parts) {
                j.unit_done(&t.source, unit, key, docs);
            }
        }
    };
    // The report follows the requests as they go: should the restore stop waiting
    // for them (told to stop twice), what is still unanswered is unacknowledged.
    let mut inflight_docs = 0u64;
    let live = |tally: &Tally, inflight: u64| {
        set(&reports, k, |r| {
            r.inserted = tally.inserted;
            r.unacknowledged = tally.unacknowledged + inflight;
        })
    };
    let mut stop = ctx.stop.clone();
    let mut stopped = *stop.borrow();
    'feed: while !stopped {
        let f = tokio::select! {
            f = rx.recv() => f,
            _ = stop.wait_for(|s| *s) => {
                stopped = true;
                break 'feed;
            }
        };
        let Some(f) = f else { break };
        let (data, key) = match f {
            Feed::Docs(d, c, unit, key) => {
                unit_kind = unit;
                if earlier.done.contains(&key) {
                    resumed_docs += c;
                    continue;
                }
                (d, key)
            }
            Feed::Damaged(m) => {
                damaged.push(m);
                continue;
            }
            Feed::Failed(m) => {
                // The input stops here: what came before it is intact and still
                // inserted (the documents waiting for a full batch included).
                input_failed = Some(m);
                break;
            }
        };
        let data = match ts.as_mut() {
            None => data,
            Some(fb) => {
                if fb.mode.is_none() {
                    match fb.probe(&db, &target, &data, ctx.stop_on_error).await {
                        Ok(Some(n)) => {
                            tally.inserted += n;
                            bar.inc(n);
                        }
                        Ok(None) => {
                            target = Arc::new(InsertTarget {
                                coll: t.coll.clone(),
                                ..(*target).clone()
                            });
                        }
                        Err(m) => {
                            fatal.get_or_insert(m);
                            break 'feed;
                        }
                    }
                }
                match fb.transform(data) {
                    Ok((d, buckets, measurements)) => {
                        unpacked.0 += buckets;
                        unpacked.1 += measurements;
                        d
                    }
                    Err(m) => {
                        fatal.get_or_insert(format!("unpacking time-series buckets: {m}"));
                        break 'feed;
                    }
                }
            }
        };
        let full = match batcher.push_unit(&data, key) {
            Ok((b, n)) => {
                if let (Some((key, _)), Some(j)) = (tracker.pushed(key, n), &ctx.journal) {
                    j.unit_done(&t.source, unit_kind, key, 0);
                }
                b
            }
            Err(e) => {
                fatal.get_or_insert(format!("malformed documents: {e}"));
                break;
            }
        };
        for batch in full {
            while let Some(r) = inflight.try_join_next() {
                let r = r.expect("insert task panicked");
                settle(&r, &mut tracker, unit_kind);
                inflight_docs -= r.docs;
                tally.add(r, &mut fatal);
                live(&tally, inflight_docs);
            }
            if let Some(j) = &ctx.journal {
                j.hold_point().await;
            }
            if fatal.is_some() || (ctx.stop_on_error && tally.errors.any()) {
                break 'feed;
            }
            let permit = sem.clone().acquire_owned().await.expect("semaphore open");
            // Told to stop while waiting for a free inserter: this batch is not sent.
            if *stop.borrow() {
                stopped = true;
                break 'feed;
            }
            let (db, target, bar, overall, stop) = (
                db.clone(),
                target.clone(),
                bar.clone(),
                ctx.overall.clone(),
                ctx.stop_on_error,
            );
            inflight_docs += batch.len() as u64;
            live(&tally, inflight_docs);
            inflight.spawn(async move {
                let docs = batch.len() as u64;
                let b = batch.bytes as u64;
                let parts = batch.parts.clone();
                let r = insert::insert_batch(&db, &target, batch, stop).await;
                drop(permit);
                if let Ok((n, _)) = &r {
                    bar.inc(*n);
                    bar.add_bytes(b);
                    overall.inc(b);
                }
                Sent {
                    docs,
                    bytes: b,
                    parts,
                    result: r,
                }
            });
        }
    }
    if !stopped && fatal.is_none() && !(ctx.stop_on_error && tally.errors.any()) {
        let last = batcher.finish();
        let special = batcher.take_special();
        if let Some(batch) = last {
            let (docs, b) = (batch.len() as u64, batch.bytes as u64);
            let parts = batch.parts.clone();
            live(&tally, inflight_docs + docs);
            let r = insert::insert_batch(&db, &target, batch, ctx.stop_on_error).await;
            if let Ok((n, _)) = &r {
                bar.inc(*n);
                bar.add_bytes(b);
                ctx.overall.inc(b);
            }
            let sent = Sent {
                docs,
                bytes: b,
                parts,
                result: r,
            };
            settle(&sent, &mut tracker, unit_kind);
            tally.add(sent, &mut fatal);
            live(&tally, inflight_docs);
        }
        // Documents with an empty timestamp in their first fields, one per command,
        // flagged so the server keeps the zero.
        let units: Vec<u64> = special.units().collect();
        for (d, unit) in special.docs.into_iter().zip(units) {
            if fatal.is_some() || *ctx.stop.borrow() {
                stopped |= *ctx.stop.borrow();
                break;
            }
            let b = d.as_bytes().len() as u64;
            let one = insert::Batch {
                bytes: b as usize,
                docs: vec![d],
                parts: vec![(unit, 1)],
            };
            live(&tally, inflight_docs + 1);
            let r = insert::insert_command(&db, &target, &one, true, ctx.stop_on_error).await;
            if let Ok((n, _)) = &r {
                bar.inc(*n);
                bar.add_bytes(b);
                ctx.overall.inc(b);
            }
            let sent = Sent {
                docs: 1,
                bytes: b,
                parts: one.parts,
                result: r,
            };
            settle(&sent, &mut tracker, unit_kind);
            tally.add(sent, &mut fatal);
            live(&tally, inflight_docs);
        }
    }
    // Requests already sent are answered before the namespace is reported.
    while let Some(r) = inflight.join_next().await {
        let r = r.expect("insert task panicked");
        settle(&r, &mut tracker, unit_kind);
        inflight_docs -= r.docs;
        tally.add(r, &mut fatal);
        live(&tally, inflight_docs);
    }
    if let Some(m) = input_failed {
        damaged.push(m.clone());
        fatal.get_or_insert(m);
    }
    let Tally {
        inserted,
        bytes,
        unacknowledged,
        mut errors,
    } = tally;
    // Sent again after an interruption: documents already there are expected.
    let already_present = if ctx.resumed.contains(&t.source) {
        let n = errors.duplicates;
        errors.duplicates = 0;
        if errors.invalid == 0 {
            errors.ids.clear();
            errors.first_message = None;
        }
        n
    } else {
        0
    };
    // Dropping the receiver tells the reader to stop.
    drop(rx);
    bar.finish_and_clear();
    let data_seconds = started.elapsed().as_secs_f64();
    {
        let mut df = data_finished.lock().expect("lock");
        *df = (*df).max(Instant::now());
    }
    drop(permit);
    let failed = fatal.clone().or_else(|| {
        (ctx.stop_on_error && errors.any()).then(|| {
            format!(
                "stopped at the first refused document (--stop-on-error): {}",
                errors.first_message.clone().unwrap_or_default()
            )
        })
    });
    let sent_any = inserted + unacknowledged + errors.duplicates + errors.invalid > 0;
    set(&reports, k, |r| {
        r.inserted = inserted;
        r.resumed = earlier.documents.max(resumed_docs);
        r.already_present = already_present;
        r.unacknowledged = unacknowledged;
        r.bytes = bytes;
        r.duplicates = errors.duplicates;
        r.invalid = errors.invalid;
        r.refused_ids = errors.ids.clone();
        r.damaged = damaged.clone();
        r.data_seconds = data_seconds;
        if unpacked.0 > 0 {
            r.message = Some(format!(
                "the server refuses time-series bucket documents: {} buckets were unpacked into {} measurements and inserted into {}",
                unpacked.0,
                unpacked.1,
                t.full_name()
            ));
        }
        if let Some(m) = &failed {
            r.status = "failed".into();
            r.message = Some(m.clone());
        } else if stopped {
            r.status = if sent_any {
                "interrupted"
            } else {
                "not started"
            }
            .into();
        } else {
            r.status = "indexing".into();
            if errors.any() && unpacked.0 == 0 {
                r.message = Some(format!(
                    "{} duplicate-key and {} validation error(s); first: {}",
                    errors.duplicates,
                    errors.invalid,
                    errors.first_message.clone().unwrap_or_default()
                ));
            }
        }
    });
    if failed.is_none()
        && !stopped
        && let Some(j) = &ctx.journal
    {
        j.data_done(&t.source).await;
    }
    if failed.is_none()
        && !stopped
        && ctx.index_build == IndexBuild::After
        && !earlier.indexes_built
    {
        let _p = ctx.index_sem.acquire().await.expect("semaphore open");
        let specs = spec::secondary_indexes_with(ns, ctx.index_specs);
        let o = index::build(&db, &t.coll, &specs, ctx.write_concern.as_ref()).await;
        if let (Some(j), true) = (&ctx.journal, o.failed.is_empty()) {
            j.indexes_built(&t.source).await;
        }
        set(&reports, k, |r| {
            r.indexes = o.built.clone();
            r.index_errors = o.failed.clone();
            r.index_seconds = o.seconds;
        });
    }
    let complete = {
        let mut rs = reports.lock().expect("lock");
        let r = &mut rs[k];
        if r.status == "indexing" {
            r.status = "restored".into();
        }
        r.status == "restored" && r.index_errors.is_empty()
    };
    if let (Some(j), true) = (&ctx.journal, complete) {
        j.complete(&t.source).await;
    }
}

/// The `--dry-run` plan, for people.
pub fn render_plan(r: &RestoreReport) -> String {
    let mut s = format!(
        "restore plan: {} ({}) -> {} (server {}); nothing will be written\n\n",
        r.input.display(),
        r.format,
        r.target,
        r.server_version
    );
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for n in &r.namespaces {
        let docs = n
            .expected
            .map(|d| d.to_string())
            .unwrap_or_else(|| "?".into());
        match n.status.as_str() {
            "skipped" => s.push_str(&format!(
                "  skip   {}  ({})\n",
                n.source,
                n.message.as_deref().unwrap_or("")
            )),
            _ => {
                s.push_str(&format!(
                    "  {}  {} -> {}  [{}] {} documents{}{}\n",
                    if n.dropped { "drop+create" } else { "create" },
                    n.source,
                    n.target,
                    n.kind,
                    docs,
                    if n.options.is_empty() {
                        String::new()
                    } else {
                        format!(", options: {}", n.options.join(", "))
                    },
                    if n.indexes.is_empty() {
                        String::new()
                    } else {
                        format!(", indexes: {}", n.indexes.join(", "))
                    }
                ));
            }
        }
    }
    if let Some(o) = &r.oplog {
        s.push_str(&oplog::render_plan(o));
    }
    s
}

/// The final summary, for people.
pub fn render_summary(r: &RestoreReport) -> String {
    let mut s = String::new();
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for n in &r.namespaces {
        // Namespaces left out by the user's own filters are not news.
        let filtered = n.status == "skipped"
            && n.message
                .as_deref()
                .is_some_and(|m| m.starts_with("excluded by"));
        if filtered || (n.ok() && n.message.is_none()) {
            continue;
        }
        let mut line = format!("{} -> {}: {}", n.source, n.target, n.status);
        if let Some(m) = &n.message {
            line.push_str(&format!(": {m}"));
        }
        if n.duplicates + n.invalid > 0 && !n.refused_ids.is_empty() {
            line.push_str(&format!(
                " (first refused _ids: {})",
                n.refused_ids.join(", ")
            ));
        }
        if n.status != "not started" && (n.status != "restored" || n.unacknowledged > 0) {
            line.push_str(&format!(
                "; {} documents acknowledged{}",
                n.inserted,
                if n.unacknowledged > 0 {
                    format!(
                        ", {} sent without an answer (the target may hold none, some or all of them)",
                        n.unacknowledged
                    )
                } else {
                    String::new()
                }
            ));
        }
        s.push_str(&line);
        s.push('\n');
        for d in &n.damaged {
            s.push_str(&format!("    {d}\n"));
        }
        for (ix, e) in &n.index_errors {
            s.push_str(&format!("    index {ix} failed: {e}\n"));
        }
    }
    let restored = r
        .namespaces
        .iter()
        .filter(|n| n.status == "restored")
        .count();
    let failed = r.namespaces.iter().filter(|n| !n.ok()).count();
    if r.interrupted {
        let count = |st: &str| r.namespaces.iter().filter(|n| n.status == st).count();
        s.push_str(&format!(
            "interrupted: the target holds a partial restore: {restored} namespace(s) restored, {} interrupted (acknowledged documents above), {} not started\n",
            count("interrupted"),
            count("not started")
        ));
    }
    if r.resumed {
        let (earlier, again) = r
            .namespaces
            .iter()
            .fold((0, 0), |(a, b), n| (a + n.resumed, b + n.already_present));
        s.push_str(&format!(
            "resumed: {earlier} documents acknowledged by an earlier run were not sent again; {again} sent again were already in the target\n"
        ));
    }
    s.push_str(&format!(
        "restored {restored} namespaces, {} documents, {} in {:.1}s (data {:.1}s, {:.1} MB/s; indexes {:.1}s summed, {:.1}s after the data){}\n",
        r.documents,
        human(r.bytes),
        r.seconds,
        r.data_seconds,
        r.bytes as f64 / 1e6 / r.data_seconds.max(1e-9),
        r.index_seconds,
        r.index_tail_seconds,
        if failed > 0 { format!("; {failed} namespace(s) not fully restored") } else { String::new() }
    ));
    if let Some(o) = &r.oplog {
        s.push_str(&oplog::render(o));
    }
    s
}

/// Restoring a time-series collection into a server that keeps measurements, not
/// buckets: the first bucket decides which kind of server this is.
struct TsFallback {
    time_field: String,
    meta_field: Option<String>,
    /// `None` until decided; `Some(true)` to unpack buckets into measurements.
    mode: Option<bool>,
    /// The probe inserted the first bucket: drop it from the first run.
    skip_first: bool,
}

impl TsFallback {
    fn new(options: &Document) -> TsFallback {
        let ts = options.get_document("timeseries").ok();
        TsFallback {
            time_field: ts
                .and_then(|t| t.get_str("timeField").ok())
                .unwrap_or("t")
                .to_string(),
            meta_field: ts
                .and_then(|t| t.get_str("metaField").ok())
                .map(str::to_string),
            mode: None,
            skip_first: false,
        }
    }

    /// Inserts the first bucket of `data` on its own. `Some(1)` when the server took
    /// it (buckets go in as they are), `None` when it refused buckets (unpack them).
    async fn probe(
        &mut self,
        db: &mongodb::Database,
        target: &InsertTarget,
        data: &[u8],
        stop_on_error: bool,
    ) -> Result<Option<u64>, String> {
        let Some(first) = crate::docs::DocIter::new(data).next() else {
            return Ok(Some(0));
        };
        let first = first.map_err(|e| e.to_string())?;
        let doc = bson::RawDocumentBuf::from_bytes(first.to_vec()).map_err(|e| e.to_string())?;
        let one = insert::Batch {
            bytes: first.len(),
            docs: vec![doc],
            ..insert::Batch::default()
        };
        match insert::insert_command(db, target, &one, false, stop_on_error).await {
            Ok((n, _)) => {
                self.mode = Some(false);
                // Taken: the caller skips it.
                self.skip_first = true;
                Ok(Some(n))
            }
            Err(insert::InsertError::Refused { code: 115, .. }) => {
                self.mode = Some(true);
                Ok(None)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The documents to insert for a run of buckets: the buckets themselves, or their
    /// measurements. Returns (documents, buckets unpacked, measurements made).
    fn transform(&mut self, data: Vec<u8>) -> Result<(Vec<u8>, u64, u64), String> {
        let skip = std::mem::take(&mut self.skip_first);
        if self.mode != Some(true) {
            if !skip {
                return Ok((data, 0, 0));
            }
            let first = crate::docs::declared_len(&data).unwrap_or(0).max(0) as usize;
            return Ok((data[first.min(data.len())..].to_vec(), 0, 0));
        }
        let mut out = Vec::with_capacity(data.len() * 2);
        let (mut buckets, mut measurements) = (0u64, 0u64);
        for b in crate::docs::DocIter::new(&data) {
            let b = b.map_err(|e| e.to_string())?;
            let ms = crate::tsbucket::unpack(b, &self.time_field, self.meta_field.as_deref())
                .map_err(|e| e.to_string())?;
            buckets += 1;
            measurements += ms.len() as u64;
            for m in ms {
                out.extend_from_slice(&m);
            }
        }
        Ok((out, buckets, measurements))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_index_build_is_after_on_mongod_and_before_on_secantus() {
        let mongod = ServerInfo {
            version: "8.0.4".into(),
            ..ServerInfo::default()
        };
        let secantus = ServerInfo {
            secantus_version: Some("0.5.3".into()),
            ..mongod.clone()
        };
        assert_eq!(IndexBuild::Auto.resolve(&mongod), IndexBuild::After);
        assert_eq!(IndexBuild::Auto.resolve(&secantus), IndexBuild::Before);
        for explicit in [IndexBuild::After, IndexBuild::Before, IndexBuild::Skip] {
            assert_eq!(explicit.resolve(&mongod), explicit);
            assert_eq!(explicit.resolve(&secantus), explicit);
        }
    }

    #[test]
    fn a_summary_without_index_builds_says_zero_seconds() {
        let mut r = RestoreReport {
            namespaces: vec![NsReport {
                status: "skipped".into(),
                ..NsReport::default()
            }],
            ..RestoreReport::default()
        };
        r.add_up();
        let text = render_summary(&r);
        assert!(text.contains("indexes 0.0s summed"), "{text}");
        assert!(!text.contains("-0.0"), "{text}");
        r.namespaces.clear();
        r.add_up();
        assert!(!render_summary(&r).contains("-0.0"));
    }

    #[test]
    fn an_interrupted_summary_says_what_the_target_holds() {
        let ns = |status: &str, inserted, unacknowledged| NsReport {
            source: format!("s.{status}"),
            target: format!("t.{status}"),
            status: status.into(),
            inserted,
            unacknowledged,
            ..NsReport::default()
        };
        let mut r = RestoreReport {
            interrupted: true,
            namespaces: vec![
                ns("restored", 10, 0),
                ns("interrupted", 7, 3),
                ns("not started", 0, 0),
            ],
            ..RestoreReport::default()
        };
        r.add_up();
        assert!(!r.ok());
        let text = render_summary(&r);
        assert!(
            text.contains("s.interrupted -> t.interrupted: interrupted; 7 documents acknowledged, 3 sent without an answer"),
            "{text}"
        );
        assert!(
            text.contains("1 namespace(s) restored, 1 interrupted (acknowledged documents above), 1 not started"),
            "{text}"
        );
    }
}
