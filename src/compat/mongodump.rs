//! The `mongodump` front end: a mongo-tools command line becomes a [`DumpOptions`] for
//! oxidump's dump engine.
//!
//! mongodump's defaults are kept: the output is the directory `dump/` (merged into when
//! it exists: the files of the namespaces dumped are replaced, others are left alone),
//! `--archive` writes one archive file (standard output when given no value), `-o -`
//! writes one collection's documents as raw BSON to standard output, and `--oxd` writes
//! an OXD archive instead of mongodump's layouts.

use std::path::{Path, PathBuf};

use super::args::Parsed;
use super::conn::{self, Connection};
use super::{CompatError, Tool, escape_ns, log, number};
use crate::commands::convert::OutputFormat;
use crate::dump::{DumpOptions, DumpReport};
use crate::progress::{Progress, human_bytes, human_count};

/// What a mongodump command line comes to.
#[derive(Debug, Clone)]
pub struct DumpPlan {
    /// The engine's options.
    pub opts: DumpOptions,
    /// `-o -`: the namespace whose documents go to standard output as raw BSON (the
    /// engine writes `opts.out`, a temporary OXD file, first).
    pub raw_stdout: Option<String>,
    /// Lines for the log.
    pub notes: Vec<String>,
}

/// File name of the OXD output in a directory, and without `--out`/`--archive`.
pub const OXD_DEFAULT: &str = "dump.oxd";

/// Translates a parsed mongodump command line (connection already folded into `conn`).
pub fn plan(p: &Parsed, conn: Connection) -> Result<DumpPlan, CompatError> {
    let bad = |m: &str| Err(CompatError::BadOption(m.to_string()));
    let mut notes = conn.notes.clone();
    let positional_is_uri =
        |s: &String| s.starts_with("mongodb://") || s.starts_with("mongodb+srv://");
    if p.positionals.len() > 1 || p.positionals.iter().any(|s| !positional_is_uri(s)) {
        return Err(CompatError::Usage(
            "error parsing positional arguments: provide only one MongoDB connection string. Connection strings must begin with mongodb:// or mongodb+srv:// schemes".into(),
        ));
    }
    let db = conn.db.clone();
    let coll = p
        .value("collection")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let out = p.value("out");
    let archive = p.value("archive");
    let query = p.value("query").filter(|q| !q.is_empty());
    let query_file = p.value("queryFile").filter(|q| !q.is_empty());
    let excl = p.values("excludeCollection");
    let excl_prefix = p.values("excludeCollectionsWithPrefix");
    let gzip = p.has("gzip");
    let oxd = p.has("oxd");
    let jobs = match p.value("numParallelCollections") {
        Some(v) => number(v, "numParallelCollections")?,
        None => 4,
    };
    // mongo-tools' checks, in its order and with its words.
    if out == Some("-") && coll.is_none() {
        return bad("can only dump a single collection to stdout");
    }
    if db.is_none() && coll.is_some() {
        return bad("cannot dump a collection without a specified database");
    }
    if query.is_some() && coll.is_none() {
        return bad("cannot dump using a query without a specified collection");
    }
    if query_file.is_some() && coll.is_none() {
        return bad("cannot dump using a queryFile without a specified collection");
    }
    if query.is_some() && query_file.is_some() {
        return bad("either query or queryFile can be specified as a query option, not both");
    }
    if p.has("dumpDbUsersAndRoles") && db.is_none() {
        return bad("must specify a database when running with dumpDbUsersAndRoles");
    }
    if p.has("dumpDbUsersAndRoles") && coll.is_some() {
        return bad("cannot specify a collection when running with dumpDbUsersAndRoles");
    }
    if p.has("dumpDbUsersAndRoles") && db.as_deref() == Some("admin") {
        return bad(
            "cannot use --dumpDbUsersAndRoles with the admin database (a dump of admin has every database's users and roles)",
        );
    }
    if query.is_some() && p.has("forceTableScan") {
        return bad("cannot use --forceTableScan when specifying --query");
    }
    if coll
        .as_deref()
        .is_some_and(|c| c.starts_with("system.buckets."))
    {
        return bad(
            "cannot specify a system.buckets collection in --collection. Specifying the timeseries collection will dump the system.buckets collection",
        );
    }
    if p.has("oplog") && db.is_some() {
        return bad("--oplog mode only supported on full dumps");
    }
    if !excl.is_empty() && coll.is_some() {
        return bad("--collection is not allowed when --excludeCollection is specified");
    }
    if !excl_prefix.is_empty() && coll.is_some() {
        return bad("--collection is not allowed when --excludeCollectionsWithPrefix is specified");
    }
    if !excl.is_empty() && db.is_none() {
        return bad("--db is required when --excludeCollection is specified");
    }
    if !excl_prefix.is_empty() && db.is_none() {
        return bad("--db is required when --excludeCollectionsWithPrefix is specified");
    }
    if out.is_some() && archive.is_some() {
        return bad("--out not allowed when --archive is specified");
    }
    if out == Some("-") && gzip {
        return bad(
            "compression can't be used when dumping a single collection to standard output",
        );
    }
    if jobs <= 0 {
        return bad("numParallelCollections must be positive");
    }
    if oxd && gzip {
        return bad("--gzip does not apply to --oxd: OXD frames are compressed with zstd");
    }
    let query = match (query, query_file) {
        (Some(q), _) => Some(q.to_string()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| CompatError::BadOption(format!("error reading queryFile {f}: {e}")))?,
        ),
        (None, None) => None,
    };

    let mut raw_stdout = None;
    let (format, path) = if out == Some("-") && !oxd {
        let ns = format!(
            "{}.{}",
            db.as_deref().unwrap_or(""),
            coll.as_deref().unwrap_or("")
        );
        raw_stdout = Some(ns);
        // Set by `run` to a temporary file.
        (OutputFormat::Oxd, PathBuf::new())
    } else if oxd {
        let p = archive.or(out).unwrap_or(OXD_DEFAULT);
        let p = PathBuf::from(p);
        let p = if p.is_dir() { p.join(OXD_DEFAULT) } else { p };
        (OutputFormat::Oxd, p)
    } else if let Some(a) = archive {
        let p = PathBuf::from(a);
        let p = if a != "-" && p.is_dir() {
            p.join(if gzip { "archive.gz" } else { "archive" })
        } else {
            p
        };
        (OutputFormat::MongodumpArchive, p)
    } else {
        let dir = PathBuf::from(out.unwrap_or("dump"));
        if dir.exists() && !dir.is_dir() {
            return Err(CompatError::BadOption(format!(
                "--out {}: exists and is not a directory",
                dir.display()
            )));
        }
        (OutputFormat::MongodumpDir, dir)
    };
    let mut exclude = Vec::new();
    if let Some(d) = &db {
        for c in &excl {
            exclude.push(format!("{}.{}", escape_ns(d), escape_ns(c)));
        }
        for c in &excl_prefix {
            exclude.push(format!("{}.{}*", escape_ns(d), escape_ns(c)));
        }
    }
    let mut opts = DumpOptions {
        uri: conn.uri,
        out: Some(path),
        format,
        gzip,
        dbs: db.into_iter().collect(),
        collection: coll,
        exclude,
        query,
        jobs: jobs as usize,
        oplog: p.has("oplog"),
        views_as_collections: p.has("viewsAsCollections"),
        users_and_roles: p.has("dumpDbUsersAndRoles"),
        // mongodump replaces an archive file and merges into a directory.
        overwrite: true,
        ..DumpOptions::default()
    };
    if p.has("forceTableScan") {
        opts.split_above = 0;
        notes.push("--forceTableScan: every collection is read by one natural-order scan".into());
    }
    Ok(DumpPlan {
        opts,
        raw_stdout,
        notes,
    })
}

/// Runs a mongodump command line.
pub fn run(args: &[String]) -> Result<(), CompatError> {
    let Some((p, cfg)) = super::common_start(Tool::Mongodump, args)? else {
        return Ok(());
    };
    let uri = p
        .positionals
        .first()
        .filter(|s| s.starts_with("mongodb"))
        .cloned();
    let conn = conn::build(&p, uri.as_deref(), &cfg, &mut conn::prompt_password)?;
    let mut plan = plan(&p, conn)?;
    let quiet = p.has("quiet");
    let verbose = p.verbosity;
    for n in &plan.notes {
        log(n);
    }
    let temp = match &plan.raw_stdout {
        Some(_) => {
            let t = tempfile::Builder::new()
                .prefix("oxidump-mongodump-")
                .tempdir()
                .map_err(|source| CompatError::Io {
                    path: std::env::temp_dir(),
                    source,
                })?;
            plan.opts.out = Some(t.path().join("one.oxd"));
            Some(t)
        }
        None => None,
    };
    if verbose > 0 {
        describe(&plan);
    }
    let to_stdout = plan.opts.out.as_deref() == Some(Path::new("-")) || plan.raw_stdout.is_some();
    let rt = super::runtime()?;
    let progress = Progress::new(quiet);
    let report = rt.block_on(crate::dump::run(
        plan.opts.clone(),
        progress,
        super::shutdown_signal(),
    ));
    super::finish(rt);
    let report = report?;
    if let (Some(ns), Some(out)) = (&plan.raw_stdout, &plan.opts.out) {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        crate::commands::cat::run(out, ns, crate::commands::cat::CatFormat::Bson, &mut w)?;
        std::io::Write::flush(&mut w).map_err(|source| CompatError::Io {
            path: PathBuf::from("-"),
            source,
        })?;
    }
    drop(temp);
    summary(&report, to_stdout, plan.raw_stdout.is_some());
    Ok(())
}

fn describe(plan: &DumpPlan) {
    let o = &plan.opts;
    log(format!(
        "oxidump dump: source {}, format {:?}{}, output {}",
        crate::connect::redact_uri(&o.uri),
        o.format,
        if o.gzip { " gzipped" } else { "" },
        match &plan.raw_stdout {
            Some(ns) => format!("{ns} as BSON on standard output"),
            None => o
                .out
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    ));
    log(format!(
        "oxidump dump: databases {:?}, collection {:?}, exclude {:?}, query {:?}, cursors {}, split above {} bytes, oplog {}",
        o.dbs, o.collection, o.exclude, o.query, o.jobs, o.split_above, o.oplog
    ));
}

/// mongodump's last lines: one per namespace, then the totals.
fn summary(r: &DumpReport, to_stdout: bool, raw: bool) {
    for n in &r.namespaces {
        if n.kind == "view" {
            log(format!("done dumping {} (view)", n.namespace));
            continue;
        }
        log(format!(
            "done dumping {} ({} document{}, {})",
            n.namespace,
            human_count(n.documents),
            if n.documents == 1 { "" } else { "s" },
            human_bytes(n.bytes)
        ));
        if let Some(w) = &n.warning {
            log(format!("warning: {w}"));
        }
    }
    for w in &r.warnings {
        log(format!("warning: {w}"));
    }
    let out = match (&r.output, to_stdout) {
        (_, true) if raw => "standard output (BSON)".to_string(),
        (_, true) => "standard output".to_string(),
        (Some(p), false) => p.display().to_string(),
        (None, false) => String::new(),
    };
    log(format!(
        "dumped {} namespace{}, {} documents, {} in {:.1}s to {} ({})",
        r.namespaces.len(),
        if r.namespaces.len() == 1 { "" } else { "s" },
        human_count(r.documents),
        human_bytes(r.bytes),
        r.seconds,
        out,
        if raw { "bson" } else { r.format.as_str() }
    ));
    if let Some((s, e)) = &r.oplog {
        log(format!("oplog window {s} .. {e}"));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::config::Config;
    use super::*;

    fn plan_of(a: &[&str]) -> Result<DumpPlan, CompatError> {
        let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        let p = super::super::args::parse(Tool::Mongodump, &args)?;
        let uri = p
            .positionals
            .first()
            .filter(|s| s.starts_with("mongodb"))
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

    #[test]
    fn defaults_are_mongodumps() {
        let d = plan_of(&[]).unwrap();
        assert_eq!(d.opts.format, OutputFormat::MongodumpDir);
        assert_eq!(d.opts.out.as_deref(), Some(Path::new("dump")));
        assert!(d.opts.overwrite, "merges into an existing dump/");
        assert_eq!(d.opts.jobs, 4);
        assert!(d.opts.dbs.is_empty() && d.opts.collection.is_none());
        assert_eq!(
            d.opts.uri,
            "mongodb://localhost:27017/?directConnection=true"
        );
        assert!(!d.opts.gzip && !d.opts.oplog);
    }

    #[test]
    fn namespaces_and_query() {
        let d = plan_of(&[
            "-d",
            "shop",
            "-c",
            "orders",
            "-q",
            "{\"a\":1}",
            "-o",
            "out",
            "--gzip",
        ])
        .unwrap();
        assert_eq!(d.opts.dbs, vec!["shop"]);
        assert_eq!(d.opts.collection.as_deref(), Some("orders"));
        assert_eq!(d.opts.query.as_deref(), Some("{\"a\":1}"));
        assert_eq!(d.opts.out.as_deref(), Some(Path::new("out")));
        assert!(d.opts.gzip);
        let d = plan_of(&[
            "mongodb://h:1/shop",
            "--excludeCollection",
            "tmp*x",
            "--excludeCollectionsWithPrefix",
            "cache_",
        ])
        .unwrap();
        assert_eq!(d.opts.dbs, vec!["shop"]);
        assert_eq!(d.opts.exclude, vec!["shop.tmp\\*x", "shop.cache_*"]);
    }

    #[test]
    fn query_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("q.json");
        std::fs::write(&f, "{\"x\": {\"$gt\": 1}}").unwrap();
        let d = plan_of(&["-d", "a", "-c", "b", "--queryFile", f.to_str().unwrap()]).unwrap();
        assert_eq!(d.opts.query.as_deref(), Some("{\"x\": {\"$gt\": 1}}"));
        bad(
            &["-d", "a", "-c", "b", "--queryFile", "/nonexistent/q.json"],
            "error reading queryFile",
        );
    }

    #[test]
    fn archives_and_oxd() {
        let d = plan_of(&["--archive"]).unwrap();
        assert_eq!(d.opts.format, OutputFormat::MongodumpArchive);
        assert_eq!(d.opts.out.as_deref(), Some(Path::new("-")));
        let d = plan_of(&["--archive=x.archive", "--gzip"]).unwrap();
        assert_eq!(d.opts.out.as_deref(), Some(Path::new("x.archive")));
        assert!(d.opts.gzip);
        let dir = tempfile::tempdir().unwrap();
        let a = format!("--archive={}", dir.path().display());
        let d = plan_of(&[&a, "--gzip"]).unwrap();
        assert_eq!(d.opts.out, Some(dir.path().join("archive.gz")));
        let d = plan_of(&["--oxd"]).unwrap();
        assert_eq!(d.opts.format, OutputFormat::Oxd);
        assert_eq!(d.opts.out.as_deref(), Some(Path::new("dump.oxd")));
        let d = plan_of(&["--oxd", "--archive"]).unwrap();
        assert_eq!(d.opts.out.as_deref(), Some(Path::new("-")));
        let o = dir.path().display().to_string();
        let d = plan_of(&["--oxd", "-o", &o]).unwrap();
        assert_eq!(d.opts.out, Some(dir.path().join("dump.oxd")));
        bad(&["--oxd", "--gzip"], "--gzip does not apply to --oxd");
    }

    #[test]
    fn raw_bson_to_stdout() {
        let d = plan_of(&["-d", "a", "-c", "b", "-o", "-"]).unwrap();
        assert_eq!(d.raw_stdout.as_deref(), Some("a.b"));
        assert_eq!(d.opts.format, OutputFormat::Oxd);
    }

    #[test]
    fn mongo_tools_refusals() {
        bad(&["-o", "-"], "can only dump a single collection to stdout");
        bad(
            &["-c", "x"],
            "cannot dump a collection without a specified database",
        );
        bad(
            &["-q", "{}"],
            "cannot dump using a query without a specified collection",
        );
        bad(
            &["--queryFile", "f"],
            "cannot dump using a queryFile without a specified collection",
        );
        bad(
            &["-d", "a", "-c", "b", "-q", "{}", "--queryFile", "f"],
            "not both",
        );
        bad(
            &["-d", "a", "-c", "b", "-q", "{}", "--forceTableScan"],
            "--forceTableScan",
        );
        bad(&["-d", "a", "-c", "system.buckets.x"], "system.buckets");
        bad(
            &["-d", "a", "--oplog"],
            "--oplog mode only supported on full dumps",
        );
        bad(
            &["-d", "a", "-c", "b", "--excludeCollection", "x"],
            "--collection is not allowed",
        );
        bad(
            &["-d", "a", "-c", "b", "--excludeCollectionsWithPrefix", "x"],
            "--collection is not allowed",
        );
        bad(&["--excludeCollection", "x"], "--db is required");
        bad(&["--excludeCollectionsWithPrefix", "x"], "--db is required");
        bad(
            &["-o", "x", "--archive"],
            "--out not allowed when --archive is specified",
        );
        bad(
            &["-d", "a", "-c", "b", "-o", "-", "--gzip"],
            "compression can't be used",
        );
        bad(&["-j", "0"], "numParallelCollections must be positive");
        bad(&["-j", "many"], "expected a number");
        bad(&["localhost"], "provide only one MongoDB connection string");
        bad(
            &["mongodb://a/", "mongodb://b/"],
            "only one MongoDB connection string",
        );
    }

    #[test]
    fn table_scan_and_oplog() {
        let d = plan_of(&["--forceTableScan", "--oplog", "-j", "8"]).unwrap();
        assert_eq!(d.opts.split_above, 0);
        assert!(d.opts.oplog);
        assert!(!d.opts.views_as_collections);
        assert!(
            plan_of(&["--viewsAsCollections"])
                .unwrap()
                .opts
                .views_as_collections
        );
        assert_eq!(d.opts.jobs, 8);
    }

    /// Flags read by `run` itself rather than by the translation.
    pub(crate) const READ_BY_RUN: [&str; 5] = ["help", "version", "config", "verbose", "quiet"];

    /// No flag the parser accepts as supported is left unread by the translation.
    #[test]
    fn every_supported_flag_is_read() {
        let lines: &[&[&str]] = &[
            &[
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
                "--readPreference",
                "nearest",
                "-d",
                "db",
                "-c",
                "c",
                "-q",
                "{}",
                "-o",
                "out",
                "--gzip",
                "-j",
                "2",
            ],
            &[
                "--uri",
                "mongodb://h/",
                "--oplog",
                "--forceTableScan",
                "--viewsAsCollections",
                "--archive=x",
                "--oxd",
            ],
        ];
        let mut asked = std::collections::BTreeSet::new();
        for l in lines {
            let args: Vec<String> = l.iter().map(|s| s.to_string()).collect();
            let p = super::super::args::parse(Tool::Mongodump, &args).unwrap();
            let uri = p.positionals.first().cloned();
            if let Ok(c) = conn::build(&p, uri.as_deref(), &Config::default(), &mut |_| {
                Ok("pw".into())
            }) {
                let _ = plan(&p, c);
            }
            asked.extend(p.asked());
        }
        for f in super::super::flags::flags_for(Tool::Mongodump) {
            if matches!(f.status, super::super::flags::Status::Supported(_))
                && !READ_BY_RUN.contains(&f.long)
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
