//! The `mongorestore` front end: a mongo-tools command line becomes a
//! [`RestoreOptions`] for oxidump's restore engine.
//!
//! mongorestore's defaults are kept: the input is `dump/`; documents are inserted into
//! collections that already exist, duplicate keys and validation errors are counted,
//! reported and passed over (exit status 0) unless `--stopOnError`; `--drop` drops each
//! collection being restored just before restoring it; the write concern is `majority`
//! unless the connection string or `--writeConcern` says otherwise.
//!
//! What the input is follows mongorestore: a dump directory; with `-d X` the directory
//! of one database, restored as `X`; with `-d`/`-c` one `.bson` file (its
//! `.metadata.json` beside it is used when present), or standard input (`-`); with
//! `--archive` an archive file or standard input. The engine reads dump directories,
//! so a database directory restored under another name, a lone `.bson` file and BSON
//! on standard input are presented to it as a small dump directory of links (or, for
//! standard input, of the spooled stream) in a temporary directory.

use std::path::{Path, PathBuf};

use super::args::Parsed;
use super::conn::{self, Connection};
use super::{CompatError, Tool, escape_ns, log, number};
use crate::mongodump::escape::{collection_stem, query_unescape};
use crate::progress::{Progress, human_count};
use crate::restore::plan::Existing;
use crate::restore::{IndexBuild, OplogReplay, RestoreOptions, RestoreReport};

/// What a mongorestore command line comes to.
#[derive(Debug)]
pub struct RestorePlan {
    /// The engine's options.
    pub opts: RestoreOptions,
    /// The temporary dump directory presented to the engine, removed when dropped.
    pub staging: Option<tempfile::TempDir>,
    /// `--objcheck`: check every document before restoring.
    pub objcheck: bool,
    /// Lines for the log.
    pub notes: Vec<String>,
}

const INVALID_DB_CHARS: &[char] = &['/', '\\', '.', ' ', '"', '\0', '$'];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CompatError + '_ {
    move |source| CompatError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(unix)]
fn link(src: &Path, dst: &Path) -> Result<(), CompatError> {
    let src = src.canonicalize().map_err(io(src))?;
    std::os::unix::fs::symlink(&src, dst).map_err(io(dst))
}

#[cfg(not(unix))]
fn link(src: &Path, dst: &Path) -> Result<(), CompatError> {
    std::fs::hard_link(src, dst)
        .or_else(|_| std::fs::copy(src, dst).map(|_| ()))
        .map_err(io(dst))
}

fn staging_dir() -> Result<tempfile::TempDir, CompatError> {
    tempfile::Builder::new()
        .prefix("oxidump-mongorestore-")
        .tempdir()
        .map_err(io(&std::env::temp_dir()))
}

/// What kind of directory a restore target is.
#[derive(Debug, PartialEq, Eq)]
enum DirKind {
    /// Database directories inside (or only an oplog).
    Root,
    /// Collection files directly inside.
    Database,
    /// Nothing a restore can use.
    Empty,
}

fn is_collection_file(name: &str) -> bool {
    [
        ".bson",
        ".bson.gz",
        ".bin",
        ".metadata.json",
        ".metadata.json.gz",
    ]
    .iter()
    .any(|s| name.ends_with(s))
        && !name.starts_with("oplog.bson")
}

fn classify(dir: &Path) -> Result<DirKind, CompatError> {
    let mut files = false;
    let mut dirs = false;
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if e.path().is_dir() {
            dirs = true;
        } else if is_collection_file(&name) {
            files = true;
        } else if name.starts_with("oplog.bson") {
            dirs = true;
        }
    }
    Ok(if files {
        DirKind::Database
    } else if dirs {
        DirKind::Root
    } else {
        DirKind::Empty
    })
}

/// A data file's collection stem and suffix (`orders`, `.bson.gz`).
fn split_data_name(name: &str) -> Option<(&str, &'static str)> {
    for s in [".bson.gz", ".bson", ".bin"] {
        if let Some(stem) = name.strip_suffix(s) {
            return Some((stem, s));
        }
    }
    None
}

fn validate_names(db: Option<&str>, coll: Option<&str>) -> Result<(), CompatError> {
    if let Some(d) = db
        && (d.is_empty() || d.len() > 63 || d.contains(INVALID_DB_CHARS))
    {
        return Err(CompatError::BadOption(format!(
            "invalid db name: {d:?} is not a database name (at most 63 bytes, none of / \\ . space \" $)"
        )));
    }
    if let Some(c) = coll
        && (c.contains(['$', '\0']) || c.starts_with('.') || c.ends_with('.'))
    {
        return Err(CompatError::BadOption(format!(
            "invalid collection name: {c:?}"
        )));
    }
    Ok(())
}

/// Translates a parsed mongorestore command line (connection already folded into `conn`).
pub fn plan(p: &Parsed, conn: Connection) -> Result<RestorePlan, CompatError> {
    let bad = |m: String| Err(CompatError::BadOption(m));
    let mut notes = conn.notes.clone();
    let is_uri = |s: &String| s.starts_with("mongodb://") || s.starts_with("mongodb+srv://");
    let targets: Vec<&String> = p.positionals.iter().filter(|s| !is_uri(s)).collect();
    if targets.len() > 1 || p.positionals.iter().filter(|s| is_uri(s)).count() > 1 {
        return Err(CompatError::Usage(
            "error parsing positional arguments: provide only one directory or file to restore and only one MongoDB connection string. Connection strings must begin with mongodb:// or mongodb+srv:// schemes".into(),
        ));
    }
    let dir_flag = p.value("dir");
    if dir_flag.is_some() && !targets.is_empty() {
        return Err(CompatError::Usage(
            "error parsing positional arguments: cannot use both --dir and a positional argument to set the target directory".into(),
        ));
    }
    let target = targets.first().map(|s| s.as_str()).or(dir_flag);
    let archive = p.value("archive");
    let db = conn.db.clone();
    let coll = p
        .value("collection")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    if db.is_none() && coll.is_some() {
        return bad("cannot restore a collection without a specified database".into());
    }
    validate_names(db.as_deref(), coll.as_deref())?;
    let ns_from = p.values("nsFrom");
    let ns_to = p.values("nsTo");
    if ns_from.len() != ns_to.len() {
        return bad(
            "--nsFrom and --nsTo arguments must be specified an equal number of times".into(),
        );
    }
    let excl = p.values("excludeCollection");
    let excl_prefix = p.values("excludeCollectionsWithPrefix");
    if !excl.is_empty() && coll.is_some() {
        return bad("--collection is not allowed when --excludeCollection is specified".into());
    }
    if !excl_prefix.is_empty() && coll.is_some() {
        return bad(
            "--collection is not allowed when --excludeCollectionsWithPrefix is specified".into(),
        );
    }
    let jobs = match p.value("numParallelCollections") {
        Some(v) => number(v, "numParallelCollections")?,
        None => 4,
    };
    if jobs <= 0 {
        return bad("numParallelCollections must be positive".into());
    }
    let mut workers = match p.value("numInsertionWorkersPerCollection") {
        Some(v) => {
            let n = number(v, "numInsertionWorkersPerCollection")?;
            if n < 0 {
                return bad(
                    "cannot specify a negative number of insertion workers per collection".into(),
                );
            }
            Some(n.max(1) as usize)
        }
        None => None,
    };
    let mut stop_on_error = p.has("stopOnError");
    if p.has("maintainInsertionOrder") {
        stop_on_error = true;
        workers = Some(1);
    }
    if p.has("preserveUUID") && !p.has("drop") {
        return bad("cannot specify --preserveUUID without --drop".into());
    }
    if target == Some("-") {
        if archive.is_some() {
            return bad("cannot restore from \"-\" when --archive is specified".into());
        }
        if coll.is_none() {
            return bad("cannot restore from stdin without a specified collection".into());
        }
    }
    if archive.is_some() && target.is_some() {
        return bad(
            "--archive names the input: a directory or file to restore cannot be given as well"
                .into(),
        );
    }
    if p.has("objcheck") && (archive == Some("-") || target == Some("-")) {
        return bad("--objcheck reads the input twice (a check, then the restore): it needs a file or a directory, not standard input".into());
    }
    // With one collection, mongorestore spends -j on insertion workers.
    if coll.is_some() && workers.is_none() && jobs > 1 && !p.has("maintainInsertionOrder") {
        workers = Some(jobs as usize);
    }

    let mut include = p.values("nsInclude");
    let mut staging = None;
    let input: PathBuf;
    let mut selects_db = true;
    if let Some(a) = archive {
        let mut path = PathBuf::from(a);
        if a != "-" && path.is_dir() {
            let plain = path.join("archive");
            path = if !plain.exists() && path.join("archive.gz").exists() {
                path.join("archive.gz")
            } else {
                plain
            };
        }
        input = path;
    } else if target == Some("-") {
        let (d, c) = (
            db.clone().unwrap_or_default(),
            coll.clone().unwrap_or_default(),
        );
        let t = staging_dir()?;
        let dbdir = t.path().join(&d);
        std::fs::create_dir(&dbdir).map_err(io(&dbdir))?;
        let file = dbdir.join(format!("{}.bson", collection_stem(&c)));
        let mut out = std::fs::File::create(&file).map_err(io(&file))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut out).map_err(io(Path::new("-")))?;
        notes.push(format!("reading collection {d}.{c} from standard input"));
        input = dbdir;
        staging = Some(t);
    } else {
        let given = target.is_some();
        let t = PathBuf::from(target.unwrap_or("dump"));
        if !given {
            notes.push("using default 'dump' directory".into());
        }
        let meta = std::fs::metadata(&t).map_err(|e| {
            CompatError::BadOption(format!(
                "mongorestore target '{}' invalid: {e}",
                t.display()
            ))
        })?;
        if meta.is_file() {
            let fmt = crate::input::open(&t).ok().map(|o| o.format);
            if fmt.is_some() {
                // An OXD file or a mongodump archive given as a path: read as --archive.
                input = t;
            } else {
                let name = t
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let Some((stem, suffix)) = split_data_name(&name) else {
                    return bad(format!(
                        "file '{}' does not have .bson extension",
                        t.display()
                    ));
                };
                let (buckets, stem) = match stem.strip_prefix("system.buckets.") {
                    Some(s) => (true, s),
                    None => (false, stem),
                };
                let c = match &coll {
                    Some(c) => c.clone(),
                    None => query_unescape(stem)
                        .map_err(|e| CompatError::BadOption(format!("{}: {e}", t.display())))?,
                };
                let d = match &db {
                    Some(d) => d.clone(),
                    None => {
                        let parent = t
                            .canonicalize()
                            .ok()
                            .and_then(|p| {
                                p.parent()
                                    .and_then(|q| q.file_name())
                                    .map(|n| n.to_string_lossy().into_owned())
                            })
                            .unwrap_or_else(|| "test".into());
                        if parent == "." || parent == ".." || parent.is_empty() {
                            "test".into()
                        } else {
                            parent
                        }
                    }
                };
                validate_names(Some(&d), Some(&c))?;
                let st = staging_dir()?;
                let dbdir = st.path().join(&d);
                std::fs::create_dir(&dbdir).map_err(io(&dbdir))?;
                let out_stem = collection_stem(&c);
                let data_name = if buckets {
                    format!("system.buckets.{out_stem}{suffix}")
                } else {
                    format!("{out_stem}{suffix}")
                };
                link(&t, &dbdir.join(&data_name))?;
                let gz = if suffix.ends_with(".gz") { ".gz" } else { "" };
                let meta_in = t.with_file_name(format!("{stem}.metadata.json{gz}"));
                if meta_in.is_file() {
                    link(
                        &meta_in,
                        &dbdir.join(format!("{out_stem}.metadata.json{gz}")),
                    )?;
                } else if buckets {
                    return bad(format!(
                        "could not find the timeseries collection metadata file for {d}.{c}"
                    ));
                } else {
                    notes.push(format!(
                        "restoring {d}.{c} without metadata (no {} beside it)",
                        meta_in.display()
                    ));
                }
                include.push(format!("{}.{}", escape_ns(&d), escape_ns(&c)));
                selects_db = false;
                input = dbdir;
                staging = Some(st);
            }
        } else {
            if coll.is_some() {
                return bad(format!(
                    "file '{}' is a directory, not a bson file",
                    t.display()
                ));
            }
            let kind = classify(&t)?;
            match (&db, kind) {
                (Some(d), DirKind::Root) => {
                    return bad(format!(
                        "--db {d} with the dump directory {dir}: mongorestore reads the target as the directory of database {d} and would skip every database directory in it; give the database's directory ({dir}/{d}) or use --nsInclude '{d}.*'",
                        dir = t.display()
                    ));
                }
                (None, DirKind::Database) => {
                    return bad(format!(
                        "{} holds collection files, not database directories: give --db NAME to restore it as one database (as mongorestore requires)",
                        t.display()
                    ));
                }
                (Some(d), DirKind::Database) => {
                    let name = t
                        .canonicalize()
                        .ok()
                        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
                    if name.as_deref() == Some(d.as_str()) {
                        input = t;
                    } else {
                        // Present the directory's files under the name `d`.
                        let st = staging_dir()?;
                        let dbdir = st.path().join(d);
                        std::fs::create_dir(&dbdir).map_err(io(&dbdir))?;
                        for e in std::fs::read_dir(&t).map_err(io(&t))? {
                            let e = e.map_err(io(&t))?;
                            let path = e.path();
                            let fname = e.file_name();
                            if path.is_dir() {
                                notes.push(format!(
                                    "don't know what to do with subdirectory {}, skipping...",
                                    path.display()
                                ));
                                continue;
                            }
                            link(&path, &dbdir.join(fname))?;
                        }
                        if let Some(parent) = t
                            .canonicalize()
                            .ok()
                            .and_then(|p| p.parent().map(Path::to_path_buf))
                        {
                            for pre in ["prelude.json", "prelude.json.gz"] {
                                if parent.join(pre).is_file() && !t.join(pre).exists() {
                                    link(&parent.join(pre), &st.path().join(pre))?;
                                }
                            }
                        }
                        notes.push(format!(
                            "restoring the database directory {} as database {d}",
                            t.display()
                        ));
                        input = dbdir;
                        staging = Some(st);
                    }
                }
                (_, DirKind::Empty) => {
                    return bad(format!(
                        "{} holds no dump (no database directories and no collection files)",
                        t.display()
                    ));
                }
                (None, DirKind::Root) => input = t,
            }
        }
    }
    if p.has("convertLegacyIndexes") {
        notes.push("--convertLegacyIndexes: legacy index values the target refuses are converted (oxidump always does this) and each conversion is reported".into());
    }
    // mongorestore's --gzip says the input is gzipped; oxidump detects it, and checks
    // the flag against what it finds.
    if p.has("gzip") && input.as_os_str() != "-" {
        match crate::input::open(&input).map(|o| o.format) {
            Ok(crate::input::InputFormat::MongodumpArchive { gzip: false }) => {
                return bad(format!(
                    "--gzip: the archive {} is not gzipped",
                    input.display()
                ));
            }
            Ok(crate::input::InputFormat::Oxd) => notes.push(format!(
                "--gzip: {} is an OXD archive, compressed with zstd; read as it is",
                input.display()
            )),
            Ok(crate::input::InputFormat::MongodumpDir) => notes.push(
                "--gzip: the compression of each file is detected; files that are not gzipped are restored too".into(),
            ),
            _ => {}
        }
    }
    if selects_db {
        match (&db, &coll) {
            (Some(d), Some(c)) => include.push(format!("{}.{}", escape_ns(d), escape_ns(c))),
            (Some(d), None) => include.push(format!("{}.*", escape_ns(d))),
            _ => {}
        }
    }
    let mut exclude = p.values("nsExclude");
    for c in &excl {
        exclude.push(format!("*.{}", escape_ns(c)));
    }
    for c in &excl_prefix {
        exclude.push(format!("*.{}*", escape_ns(c)));
    }
    // mongorestore restores users and roles on a full restore, a restore of admin, or
    // with --restoreDbUsersAndRoles.
    if p.has("restoreDbUsersAndRoles") && (db.is_none() || db.as_deref() == Some("admin")) {
        return bad(
            "cannot use --restoreDbUsersAndRoles with the admin database or without --db".into(),
        );
    }
    let users_and_roles = p.has("restoreDbUsersAndRoles")
        || (coll.is_none()
            && p.values("nsInclude").is_empty()
            && (db.is_none() || db.as_deref() == Some("admin")));
    let write_concern = match p.value("writeConcern") {
        Some(w) => Some(write_concern(w)?),
        None => {
            let uri = conn::Uri::parse(&conn.uri)?;
            if uri.param("w").is_some() {
                None
            } else {
                Some("majority".to_string())
            }
        }
    };
    let oplog = oplog_replay(p, &input)?;
    let opts = RestoreOptions {
        uri: conn.uri,
        input,
        include,
        exclude,
        renames: ns_from.into_iter().zip(ns_to).collect(),
        existing: if p.has("drop") {
            Existing::Drop
        } else {
            Existing::Append
        },
        dry_run: p.has("dryRun"),
        index_build: if p.has("noIndexRestore") {
            IndexBuild::Skip
        } else {
            IndexBuild::Auto
        },
        jobs: jobs as usize,
        workers: workers.unwrap_or(crate::restore::DEFAULT_WORKERS),
        bypass_validation: p.has("bypassDocumentValidation"),
        write_concern,
        no_options: p.has("noOptionsRestore"),
        preserve_uuid: p.has("preserveUUID"),
        // mongorestore restores whatever the dump holds, admin, config and local included.
        include_system: true,
        stop_on_error,
        skip_corrupt: false,
        batch_bytes: None,
        index_specs: crate::restore::spec::IndexSpecOptions {
            keep_version: p.has("keepIndexVersion"),
            fix_dotted_hashed: p.has("fixDottedHashIndex"),
        },
        oplog,
        resume: false,
        journal: None,
        journal_in_target: false,
        users_and_roles,
        users_without_credentials: p.has("usersWithoutCredentials"),
        temp_users: p
            .value("tempUsersColl")
            .unwrap_or(crate::restore::DEFAULT_TEMP_USERS)
            .to_string(),
        temp_roles: p
            .value("tempRolesColl")
            .unwrap_or(crate::restore::DEFAULT_TEMP_ROLES)
            .to_string(),
    };
    Ok(RestorePlan {
        opts,
        staging,
        objcheck: p.has("objcheck"),
        notes,
    })
}

/// `--oplogReplay`, `--oplogFile`, `--oplogLimit` as mongorestore means them: replay
/// the dump's `oplog.bson` (or `--oplogFile`) after the data, up to and excluding
/// `--oplogLimit`. An OXD archive replays the window it captured.
fn oplog_replay(p: &Parsed, input: &Path) -> Result<Option<OplogReplay>, CompatError> {
    let bad = |m: String| Err(CompatError::BadOption(m));
    if !p.has("oplogReplay") {
        for f in ["oplogFile", "oplogLimit"] {
            if p.value(f).is_some() {
                return bad(format!("--{f} needs --oplogReplay"));
            }
        }
        return Ok(None);
    }
    let until = match p.value("oplogLimit") {
        None => None,
        Some(v) if v.contains(':') => Some(v.to_string()),
        Some(v) if v.parse::<u32>().is_ok() => Some(format!("{v}:0")),
        Some(v) => {
            return bad(format!(
                "--oplogLimit {v:?}: expected <seconds>[:ordinal], such as 1700000000:1"
            ));
        }
    };
    let mut asked = OplogReplay {
        until,
        exclusive: true,
        ..OplogReplay::default()
    };
    if let Some(f) = p.value("oplogFile") {
        // As mongorestore: one oplog, not the dump's and another.
        if input.join("oplog.bson").is_file() || input.join("oplog.bson.gz").is_file() {
            return bad(format!(
                "cannot provide both an oplog.bson file and an oplog file with --oplogFile: {} holds one; give only one of them",
                input.display()
            ));
        }
        asked.files.push(PathBuf::from(f));
        return Ok(Some(asked));
    }
    match crate::input::open(input).map(|o| o.format) {
        Ok(crate::input::InputFormat::Oxd) => asked.from_backup = true,
        Ok(crate::input::InputFormat::MongodumpDir) => {
            let plain = input.join("oplog.bson");
            if plain.is_file() {
                asked.files.push(plain);
            } else if input.join("oplog.bson.gz").is_file() {
                return bad(format!(
                    "--oplogReplay: {} holds a gzipped oplog.bson.gz; gunzip it and give it with --oplogFile",
                    input.display()
                ));
            } else {
                return bad(format!(
                    "--oplogReplay: no oplog.bson in {} (was the dump taken with --oplog?)",
                    input.display()
                ));
            }
        }
        // The archive's oplog namespace, read again after the data.
        Ok(crate::input::InputFormat::MongodumpArchive { gzip: false })
            if input.as_os_str() != "-" =>
        {
            asked.files.push(input.to_path_buf());
        }
        _ => {
            return bad(
                "--oplogReplay from a gzipped archive or standard input: the oplog is read after the data, so give it with --oplogFile, or restore from an archive file that is not gzipped"
                    .into(),
            );
        }
    }
    Ok(Some(asked))
}

/// `--writeConcern`: `majority`, a number, a tag, or a relaxed-JSON document
/// (`{w: 2, wtimeout: 500, j: true}`; `fsync: true` means `j: true`), as strict JSON
/// for the engine.
pub fn write_concern(w: &str) -> Result<String, CompatError> {
    let t = w.trim();
    if !t.starts_with('{') {
        if t.is_empty() {
            return Err(CompatError::BadOption(
                "error parsing write concern: it is empty".into(),
            ));
        }
        return Ok(t.to_string());
    }
    let v = super::relaxed::parse(t)
        .map_err(|e| CompatError::BadOption(format!("error parsing write concern: {e}")))?;
    let obj = v.as_object().ok_or_else(|| {
        CompatError::BadOption("error parsing write concern: not a document".into())
    })?;
    let mut out = serde_json::Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "w" | "wtimeout" | "j" => {
                out.insert(k.clone(), v.clone());
            }
            "wtimeoutMS" => {
                out.insert("wtimeout".into(), v.clone());
            }
            "fsync" => {
                if v.as_bool() == Some(true) {
                    out.insert("j".into(), serde_json::Value::Bool(true));
                }
            }
            other => {
                return Err(CompatError::BadOption(format!(
                    "error parsing write concern: unknown field {other:?} (expected w, wtimeout, j, fsync)"
                )));
            }
        }
    }
    Ok(serde_json::Value::Object(out).to_string())
}

/// Runs a mongorestore command line.
pub fn run(args: &[String]) -> Result<(), CompatError> {
    let Some((p, cfg)) = super::common_start(Tool::Mongorestore, args)? else {
        return Ok(());
    };
    let uri = p
        .positionals
        .iter()
        .find(|s| s.starts_with("mongodb://") || s.starts_with("mongodb+srv://"))
        .cloned();
    let conn = conn::build(&p, uri.as_deref(), &cfg, &mut conn::prompt_password)?;
    let plan = plan(&p, conn)?;
    let quiet = p.has("quiet");
    for n in &plan.notes {
        log(n);
    }
    if p.verbosity > 0 {
        let o = &plan.opts;
        log(format!(
            "oxidump restore: {} into {}, include {:?}, exclude {:?}, renames {:?}, existing {:?}, indexes {:?}, jobs {}, inserters {}, write concern {:?}, stop on error {}",
            o.input.display(),
            crate::connect::redact_uri(&o.uri),
            o.include,
            o.exclude,
            o.renames,
            o.existing,
            o.index_build,
            o.jobs,
            o.workers,
            o.write_concern,
            o.stop_on_error
        ));
    }
    if plan.objcheck {
        let progress = Progress::new(quiet);
        let report = crate::commands::verify::run(
            &plan.opts.input,
            &crate::verify::VerifyOptions { deep: true },
            &progress,
        )?;
        if report.has_errors() {
            eprint!("{}", crate::commands::verify::render_text(&report));
            log("Failed: --objcheck found invalid documents; nothing was restored");
            return Err(CompatError::Failed("objcheck".into()));
        }
        log("--objcheck: every document is valid BSON");
    }
    let rt = super::runtime()?;
    let progress = Progress::new(quiet);
    let report = rt.block_on(crate::restore::run(
        plan.opts.clone(),
        progress,
        super::shutdown_signal,
    ));
    super::finish(rt);
    let report = report?;
    drop(plan.staging);
    if report.dry_run {
        print!("{}", crate::restore::render_plan(&report));
        log("dry run completed");
        return Ok(());
    }
    let ok = summary(&report, p.verbosity > 0);
    if ok {
        Ok(())
    } else {
        Err(CompatError::Failed("restore".into()))
    }
}

/// mongorestore's last lines; whether the restore counts as a success as mongorestore
/// counts it (refused documents do not fail it unless `--stopOnError` stopped it).
fn summary(r: &RestoreReport, verbose: bool) -> bool {
    for w in &r.warnings {
        log(format!("warning: {w}"));
    }
    let mut ok = true;
    let mut failed_docs = 0;
    for n in &r.namespaces {
        let refused = n.duplicates + n.invalid;
        failed_docs += refused;
        match n.status.as_str() {
            "skipped" => {
                let excluded = n
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("excluded by"));
                if !excluded || verbose {
                    log(format!(
                        "not restoring {}: {}",
                        n.source,
                        n.message.as_deref().unwrap_or("skipped")
                    ));
                }
                continue;
            }
            "restored" => {}
            other => {
                ok = false;
                log(format!(
                    "Failed: {} -> {}: {other}{}",
                    n.source,
                    n.target,
                    n.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ));
            }
        }
        let shown = if n.source == n.target {
            n.source.clone()
        } else {
            format!("{} -> {}", n.source, n.target)
        };
        log(format!(
            "finished restoring {shown} ({} document{}, {} failure{})",
            human_count(n.inserted),
            if n.inserted == 1 { "" } else { "s" },
            human_count(refused),
            if refused == 1 { "" } else { "s" }
        ));
        if refused > 0 {
            let kinds = match (n.duplicates, n.invalid) {
                (d, 0) => format!("{d} duplicate key"),
                (0, v) => format!("{v} refused by validation"),
                (d, v) => format!("{d} duplicate key, {v} refused by validation"),
            };
            log(format!(
                "continuing through error: {shown}: {kinds}{}",
                if n.refused_ids.is_empty() {
                    String::new()
                } else {
                    format!(" (first _ids: {})", n.refused_ids.join(", "))
                }
            ));
        }
        for d in &n.damaged {
            ok = false;
            log(format!("Failed: {shown}: {d}"));
        }
        for (ix, e) in &n.index_errors {
            ok = false;
            log(format!("Failed: {shown}: index {ix}: {e}"));
        }
    }
    if let Some(o) = &r.oplog {
        for line in crate::restore::oplog::render(o).lines() {
            log(line.trim_start());
        }
        if !o.index_errors.is_empty() {
            ok = false;
        }
    }
    log(format!(
        "{} document(s) restored successfully. {} document(s) failed to restore.",
        r.documents, failed_docs
    ));
    if let Some(line) = interrupted_line(r) {
        log(line);
        ok = false;
    }
    ok
}

/// What an interrupted restore says last: that it was interrupted and what the target
/// holds. `None` when it was not interrupted.
fn interrupted_line(r: &RestoreReport) -> Option<String> {
    if !r.interrupted {
        return None;
    }
    let count = |st: &str| r.namespaces.iter().filter(|n| n.status == st).count();
    Some(format!(
        "restore interrupted: the target holds a partial restore ({} collection(s) restored, {} interrupted part way, {} not started); run the same restore again with --drop to replace it",
        count("restored"),
        count("interrupted"),
        count("not started")
    ))
}

#[cfg(test)]
mod tests {
    use super::super::config::Config;
    use super::*;

    fn plan_of(a: &[&str]) -> Result<RestorePlan, CompatError> {
        let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        let p = super::super::args::parse(Tool::Mongorestore, &args)?;
        let uri = p
            .positionals
            .iter()
            .find(|s| s.starts_with("mongodb"))
            .cloned();
        let conn = conn::build(&p, uri.as_deref(), &Config::default(), &mut |_| {
            Ok("pw".into())
        })?;
        plan(&p, conn)
    }

    fn bad(a: &[&str], want: &str) {
        let e = plan_of(a).unwrap_err().to_string();
        assert!(e.contains(want), "{a:?}: {e}");
    }

    /// `root/shop/{orders.bson, orders.metadata.json}` and `root/prelude.json`.
    fn dump_root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let shop = t.path().join("shop");
        std::fs::create_dir(&shop).unwrap();
        std::fs::write(shop.join("orders.bson"), b"").unwrap();
        std::fs::write(shop.join("orders.metadata.json"), b"{\"indexes\":[]}").unwrap();
        std::fs::write(t.path().join("prelude.json"), b"{}").unwrap();
        t
    }

    #[test]
    fn defaults_are_mongorestores() {
        let t = dump_root();
        let root = t.path().to_str().unwrap();
        let r = plan_of(&[root]).unwrap();
        assert_eq!(r.opts.input, t.path());
        assert_eq!(
            r.opts.existing,
            Existing::Append,
            "inserts into existing collections"
        );
        assert!(!r.opts.stop_on_error, "continues past duplicate keys");
        assert_eq!(r.opts.write_concern.as_deref(), Some("majority"));
        assert!(r.opts.include_system);
        assert_eq!(r.opts.jobs, 4);
        assert!(r.opts.include.is_empty() && r.opts.exclude.is_empty());
        let r = plan_of(&["--dir", root, "--drop", "mongodb://h/?w=1"]).unwrap();
        assert_eq!(r.opts.existing, Existing::Drop);
        assert_eq!(r.opts.write_concern, None, "the URI's w");
        bad(&[], "mongorestore target 'dump' invalid");
    }

    #[test]
    fn database_directory_under_another_name() {
        let t = dump_root();
        let shop = t.path().join("shop");
        let r = plan_of(&["-d", "shop", shop.to_str().unwrap()]).unwrap();
        assert_eq!(r.opts.input, shop);
        assert!(r.staging.is_none());
        assert_eq!(r.opts.include, vec!["shop.*"]);
        let r = plan_of(&["-d", "staging", shop.to_str().unwrap()]).unwrap();
        let st = r.staging.as_ref().unwrap();
        assert_eq!(r.opts.input, st.path().join("staging"));
        assert!(st.path().join("staging/orders.bson").exists());
        assert!(st.path().join("staging/orders.metadata.json").exists());
        assert!(st.path().join("prelude.json").exists());
        assert_eq!(r.opts.include, vec!["staging.*"]);
        bad(&[shop.to_str().unwrap()], "give --db NAME");
        bad(
            &["-d", "shop", t.path().to_str().unwrap()],
            "would skip every database directory",
        );
        bad(
            &["-d", "shop", "-c", "orders", shop.to_str().unwrap()],
            "is a directory, not a bson file",
        );
    }

    #[test]
    fn one_bson_file() {
        let t = dump_root();
        let f = t.path().join("shop/orders.bson");
        let r = plan_of(&[f.to_str().unwrap()]).unwrap();
        let st = r.staging.as_ref().unwrap();
        assert_eq!(r.opts.input, st.path().join("shop"));
        assert!(st.path().join("shop/orders.bson").exists());
        assert!(st.path().join("shop/orders.metadata.json").exists());
        assert_eq!(r.opts.include, vec!["shop.orders"]);
        let r = plan_of(&["-d", "x", "-c", "new*name", f.to_str().unwrap()]).unwrap();
        let st = r.staging.as_ref().unwrap();
        assert!(st.path().join("x/new%2Aname.bson").exists());
        assert!(st.path().join("x/new%2Aname.metadata.json").exists());
        assert_eq!(r.opts.include, vec!["x.new\\*name"]);
        let other = t.path().join("notes.txt");
        std::fs::write(&other, b"hello").unwrap();
        bad(&[other.to_str().unwrap()], "does not have .bson extension");
    }

    #[test]
    fn archives() {
        let r = plan_of(&["--archive", "-d", "shop", "-c", "orders"]).unwrap();
        assert_eq!(r.opts.input, Path::new("-"));
        assert_eq!(r.opts.include, vec!["shop.orders"]);
        let r = plan_of(&["--archive=x.archive", "--nsInclude", "a.*", "-d", "b"]).unwrap();
        assert_eq!(r.opts.input, Path::new("x.archive"));
        assert_eq!(r.opts.include, vec!["a.*", "b.*"]);
        bad(&["--archive", "dump"], "cannot be given as well");
        bad(
            &["--archive", "-d", "a", "-c", "b", "-"],
            "cannot restore from \"-\" when --archive is specified",
        );
        bad(&["--archive", "--objcheck"], "standard input");
        let t = dump_root();
        let plain = t.path().join("x.archive");
        std::fs::write(&plain, [0x6D, 0xE2, 0x99, 0x81, 0, 0, 0, 0]).unwrap();
        bad(
            &[&format!("--archive={}", plain.display()), "--gzip"],
            "is not gzipped",
        );
        let r = plan_of(&[t.path().to_str().unwrap(), "--gzip"]).unwrap();
        assert!(
            r.notes.iter().any(|n| n.contains("--gzip")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn namespaces_and_renames() {
        let t = dump_root();
        let root = t.path().to_str().unwrap();
        let r = plan_of(&[
            root,
            "--nsInclude",
            "shop.*",
            "--nsExclude",
            "shop.tmp",
            "--excludeCollection",
            "logs",
            "--excludeCollectionsWithPrefix",
            "cache_",
            "--nsFrom",
            "shop.$c$",
            "--nsTo",
            "copy.$c$",
        ])
        .unwrap();
        assert_eq!(r.opts.include, vec!["shop.*"]);
        assert_eq!(r.opts.exclude, vec!["shop.tmp", "*.logs", "*.cache_*"]);
        assert_eq!(
            r.opts.renames,
            vec![("shop.$c$".to_string(), "copy.$c$".to_string())]
        );
        bad(&[root, "--nsFrom", "a.*"], "equal number of times");
    }

    #[test]
    fn insertion_options() {
        let t = dump_root();
        let root = t.path().to_str().unwrap();
        let r = plan_of(&[
            root,
            "--maintainInsertionOrder",
            "--numInsertionWorkersPerCollection",
            "8",
        ])
        .unwrap();
        assert!(r.opts.stop_on_error);
        assert_eq!(r.opts.workers, 1);
        let r = plan_of(&[
            root,
            "-j",
            "6",
            "--numInsertionWorkersPerCollection",
            "3",
            "--stopOnError",
            "--bypassDocumentValidation",
            "--noIndexRestore",
            "--noOptionsRestore",
            "--dryRun",
            "--convertLegacyIndexes",
            "--objcheck",
        ])
        .unwrap();
        assert_eq!((r.opts.jobs, r.opts.workers), (6, 3));
        assert!(
            r.opts.stop_on_error
                && r.opts.bypass_validation
                && r.opts.no_options
                && r.opts.dry_run
                && r.objcheck
        );
        assert_eq!(r.opts.index_build, IndexBuild::Skip);
        assert_eq!(r.opts.index_specs, Default::default());
        let r = plan_of(&[root, "--keepIndexVersion", "--fixDottedHashIndex"]).unwrap();
        assert!(r.opts.index_specs.keep_version && r.opts.index_specs.fix_dotted_hashed);
        let f = t.path().join("shop/orders.bson");
        let r = plan_of(&["-d", "a", "-c", "b", "-j", "5", f.to_str().unwrap()]).unwrap();
        assert_eq!(
            r.opts.workers, 5,
            "-j becomes insertion workers for one collection"
        );
        bad(
            &[root, "--preserveUUID"],
            "cannot specify --preserveUUID without --drop",
        );
        let r = plan_of(&[root, "--preserveUUID", "--drop"]).unwrap();
        assert!(r.opts.preserve_uuid);
        bad(
            &[root, "--numInsertionWorkersPerCollection", "-1"],
            "negative",
        );
        bad(&[root, "-j", "0"], "must be positive");
        bad(
            &["-c", "x", root],
            "cannot restore a collection without a specified database",
        );
        bad(&["-d", "a.b", root], "invalid db name");
        bad(&["-d", "a", "-c", "x$y", root], "invalid collection name");
        bad(
            &["-d", "a", "-"],
            "cannot restore from stdin without a specified collection",
        );
        bad(&[root, root], "only one directory or file");
        bad(
            &["--dir", root, root],
            "cannot use both --dir and a positional argument",
        );
    }

    #[test]
    fn an_interrupted_restore_says_so() {
        let ns = |status: &str| crate::restore::NsReport {
            source: "a.b".into(),
            target: "a.b".into(),
            status: status.into(),
            ..Default::default()
        };
        let mut r = RestoreReport {
            namespaces: vec![
                ns("restored"),
                ns("interrupted"),
                ns("not started"),
                ns("not started"),
            ],
            ..Default::default()
        };
        assert_eq!(interrupted_line(&r), None);
        r.interrupted = true;
        let line = interrupted_line(&r).unwrap();
        assert!(
            line.starts_with("restore interrupted")
                && line.contains("1 collection(s) restored, 1 interrupted part way, 2 not started"),
            "{line}"
        );
        assert!(
            !summary(&r, false),
            "an interrupted restore is not a success"
        );
    }

    #[test]
    fn write_concerns() {
        assert_eq!(write_concern("majority").unwrap(), "majority");
        assert_eq!(write_concern("2").unwrap(), "2");
        assert_eq!(
            write_concern("{w: 3, wtimeout: 500, fsync: true, j: true}").unwrap(),
            r#"{"w":3,"wtimeout":500,"j":true}"#
        );
        assert_eq!(
            write_concern("{w: 'majority', fsync: true}").unwrap(),
            r#"{"w":"majority","j":true}"#
        );
        assert!(write_concern("{w: 1, x: 2}").is_err());
        assert!(write_concern("{w: }").is_err());
        let t = dump_root();
        let r = plan_of(&[t.path().to_str().unwrap(), "--writeConcern", "{w: 1}"]).unwrap();
        assert_eq!(r.opts.write_concern.as_deref(), Some(r#"{"w":1}"#));
    }

    /// No flag the parser accepts as supported is left unread by the translation.
    #[test]
    fn every_supported_flag_is_read() {
        let t = dump_root();
        let root = t.path().to_str().unwrap().to_string();
        let lines: Vec<Vec<String>> = vec![
            [
                "--host",
                "h",
                "--port",
                "1",
                "-u",
                "u",
                "-p",
                "p",
                "--authenticationDatabase",
                "a",
                "--authenticationMechanism",
                "SCRAM-SHA-256",
                "--ssl",
                "--sslCAFile",
                "f",
                "--sslPEMKeyFile",
                "f",
                "--sslPEMKeyPassword",
                "k",
                "--tlsInsecure",
                "--sslAllowInvalidCertificates",
                "--sslAllowInvalidHostnames",
                "--dialTimeout",
                "3",
                "--socketTimeout",
                "0",
                "--serverSelectionTimeout",
                "5",
                "--compressors",
                "zstd",
                "--awsSessionToken",
                "t",
                "--gssapiServiceName",
                "s",
                "--gssapiHostName",
                "g",
                "--nsInclude",
                "a.*",
                "--nsExclude",
                "b.*",
                "--nsFrom",
                "a.*",
                "--nsTo",
                "c.*",
                "--excludeCollection",
                "x",
                "--excludeCollectionsWithPrefix",
                "y",
                "--objcheck",
                "--gzip",
                "--drop",
                "--dryRun",
                "--writeConcern",
                "majority",
                "--noIndexRestore",
                "--convertLegacyIndexes",
                "--noOptionsRestore",
                "--keepIndexVersion",
                "--maintainInsertionOrder",
                "-j",
                "2",
                "--numInsertionWorkersPerCollection",
                "2",
                "--stopOnError",
                "--bypassDocumentValidation",
                "--preserveUUID",
                "--fixDottedHashIndex",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([root.clone()])
            .collect(),
            [
                "--uri",
                "mongodb://h/",
                "-d",
                "shop",
                "-c",
                "orders",
                "--archive=x",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            vec!["--dir".to_string(), root],
        ];
        let mut asked = std::collections::BTreeSet::new();
        for args in &lines {
            let p = super::super::args::parse(Tool::Mongorestore, args).unwrap();
            let uri = p
                .positionals
                .iter()
                .find(|s| s.starts_with("mongodb"))
                .cloned();
            if let Ok(c) = conn::build(&p, uri.as_deref(), &Config::default(), &mut |_| {
                Ok("pw".into())
            }) {
                let _ = plan(&p, c);
            }
            asked.extend(p.asked());
        }
        for f in super::super::flags::flags_for(Tool::Mongorestore) {
            if matches!(f.status, super::super::flags::Status::Supported(_))
                && !super::super::mongodump::tests::READ_BY_RUN.contains(&f.long)
            {
                assert!(
                    asked.contains(f.long),
                    "--{} is accepted but never read",
                    f.long
                );
            }
        }
    }
}
