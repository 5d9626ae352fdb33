//! The `oxidump` command line: parses arguments with clap, turns them into the
//! library's option structs, runs one command and maps the outcome to an exit code
//! (see [`EXIT_STATUS`]).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use oxidump::commands::{cat, convert, ls, verify};
use oxidump::compat;
use oxidump::oxd::writer::WriterOptions;
use oxidump::progress::Progress;
use oxidump::progress::human_bytes;

/// Fast, checksummed MongoDB backups: dump, restore, verify, list, extract and convert.
///
/// oxidump reads and writes its own OXD archives (framed, zstd-compressed,
/// checksummed, indexed) and mongodump's directory and --archive layouts, plain or
/// gzipped. Input formats are detected from the bytes; `-` means standard input or
/// output.
#[derive(Parser)]
#[command(name = "oxidump", version, about, long_about, max_term_width = 100, after_long_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The exit status rule, the same for every command.
const EXIT_STATUS: &str = "Exit status (every command):
  0  success: everything asked for was done
  1  the data is damaged or incomplete: a corrupt or truncated backup (what is intact is
     still listed, extracted or restored), or a dump or restore that did not get everything
  2  it is not ours, or a usage or I/O error: not a backup, bad options, unreachable server,
     a full disk, an output closed by its reader before the end
  3  interrupted (SIGINT, SIGTERM or SIGHUP): a dump leaves no output; a restore stops
     sending, waits for the requests already sent (a second signal kills them on the
     server where it allows), and reports per namespace what the target holds
     (restored, interrupted with the acknowledged count, not started)";

#[derive(Subcommand)]
enum Command {
    /// Dump a live server into an OXD archive (default) or mongodump's layouts.
    ///
    /// Collections are read by several cursors at once; collections larger than
    /// --split-above are split into _id ranges read concurrently. Documents are copied as
    /// raw BSON, never decoded. The output is written under a temporary name and renamed
    /// when complete: an interrupted or failed dump leaves nothing that looks finished.
    Dump(DumpArgs),
    /// Restore a backup (OXD, mongodump directory or archive, plain or gzipped, or `-`) into a server.
    ///
    /// Collections are created with their options and indexes (or indexes built after the
    /// data: --index-build), and documents inserted in parallel unordered batches. Nothing is
    /// written to admin, local or config without --include-system, and a target collection
    /// that already holds documents stops the restore before anything is written, unless
    /// --drop or --append. Exit status: 0 only when everything asked for was restored.
    Restore(RestoreArgs),
    /// Restore drill: restore a backup into scratch databases, prove it matches, drop them.
    ///
    /// Restores every namespace (or the selected ones) with the restore engine into
    /// databases named <prefix><db> (a prefix no existing database starts with: the
    /// drill refuses to run otherwise), then compares, per namespace, what the server
    /// holds with the backup: document count, an order-independent digest of the raw
    /// documents (time-series collections by their measurements) and, where they
    /// differ, the first _ids missing, extra or different; index specs; collection
    /// options; view definitions. Prints the restore time per namespace and in total:
    /// the recovery time to expect on this server. The scratch databases are dropped
    /// afterwards, also after a failure or Ctrl-C, unless --keep.
    /// Exit status: 0 everything matches, 1 a difference or a failed restore, 2 usage,
    /// connection or I/O error, 3 interrupted.
    #[command(
        name = "test-restore",
        after_long_help = "Examples:\n  oxidump test-restore nightly.oxd --uri mongodb://scratch-host\n  oxidump test-restore dump/ --uri \"$URI\" --ns-include 'shop.*' --report-json drill.json\n  ssh backup 'cat nightly.oxd' | oxidump test-restore - --uri \"$URI\" --json"
    )]
    TestRestore(DrillArgs),
    /// Compare a backup with a live database, reading only: what changed since the backup.
    ///
    /// The same comparison as test-restore, against the namespaces as they are on the
    /// server (or where --ns-from/--ns-to say a copy lives): documents (count, digest,
    /// the first _ids missing, extra or different), index specs, options, views. Writes
    /// nothing to the server. Exit status: 0 no difference, 1 differences, 2 usage,
    /// connection or I/O error.
    #[command(
        after_long_help = "Examples:\n  oxidump diff nightly.oxd --uri mongodb://localhost\n  oxidump diff nightly.oxd --uri \"$URI\" --ns-from 'shop.*' --ns-to 'shop_restored.*' --json"
    )]
    Diff(DrillArgs),
    /// Check a backup offline: every checksum, every document's framing, counts and digests.
    ///
    /// Reports every finding with its namespace, frame and byte offset, not just the first.
    /// Exit status: 0 clean, 1 damaged or incomplete, 2 not a backup, usage or I/O error.
    #[command(
        after_long_help = "Examples:\n  oxidump verify backup.oxd\n  oxidump verify --deep --json dump/ nightly.archive.gz\n  ssh backup 'cat backup.oxd' | oxidump verify -"
    )]
    Verify {
        /// Backups to check: OXD files, mongodump archives (plain or gzipped), mongodump directories, `-`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also walk every element of every document (types, lengths, UTF-8), like mongorestore --objcheck.
        #[arg(long)]
        deep: bool,
        /// Print the reports as JSON (one array, one object per path) instead of text.
        #[arg(long)]
        json: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// List a backup: where it came from, then per namespace its type, documents, sizes and indexes.
    ///
    /// A complete OXD file is listed from its footer without reading the data. Exit status 1
    /// when the backup is incomplete (what is intact is still listed).
    #[command(
        after_long_help = "Examples:\n  oxidump ls backup.oxd\n  oxidump ls --json dump/ | jq '.namespaces[].documents'"
    )]
    Ls {
        /// The backup.
        path: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Archive the oplog continuously into a backup repository.
    #[command(subcommand)]
    Oplog(OplogCommand),
    /// Write one namespace's documents to standard output.
    ///
    /// A complete OXD file is read through its index: only that namespace's frames are read.
    #[command(
        after_long_help = "Examples:\n  oxidump cat backup.oxd --ns shop.orders > orders.bson\n  oxidump cat dump/ --ns shop.users --format json | head"
    )]
    Cat {
        /// The backup.
        path: PathBuf,
        /// The namespace, `db.collection`.
        #[arg(long)]
        ns: String,
        /// `bson`: the stored documents byte for byte; `json`: one canonical Extended JSON document per line.
        #[arg(long, value_enum, default_value_t = CatFormatArg::Bson)]
        format: CatFormatArg,
    },
    /// Convert a backup to another format, every document byte for byte, all metadata carried over.
    #[command(
        after_long_help = "Examples:\n  oxidump convert dump/ backup.oxd --to oxd\n  oxidump convert backup.oxd dump.archive.gz --to mongodump-archive --gzip\n  oxidump convert backup.oxd restored-dump/ --to mongodump-dir"
    )]
    Convert {
        /// The backup to read (any format, `-` for standard input).
        input: PathBuf,
        /// Where to write (`-` for standard output, not for directories). Written under a
        /// temporary name and renamed when complete.
        output: PathBuf,
        /// Output format.
        #[arg(long, value_enum)]
        to: FormatArg,
        /// Gzip the mongodump output (each file of a directory, or the whole archive stream).
        #[arg(long)]
        gzip: bool,
        /// zstd level for OXD frames (1 fastest … 19 smallest; 0 stores frames uncompressed).
        #[arg(long, default_value_t = oxidump::oxd::DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(0..=22))]
        zstd_level: i32,
        /// Replace the output file if it exists (a mongodump directory is merged into: the files of the namespaces written are replaced).
        #[arg(long)]
        force: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run a mongodump command line (mongo-tools 100.x flags) on oxidump's dump engine.
    ///
    /// Also what the binary does when called as `mongodump`. `mongodump --help` lists
    /// every flag and what oxidump does with it.
    #[command(disable_help_flag = true)]
    Mongodump {
        /// mongodump's arguments, as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Run a mongorestore command line (mongo-tools 100.x flags) on oxidump's restore engine.
    ///
    /// Also what the binary does when called as `mongorestore`.
    #[command(disable_help_flag = true)]
    Mongorestore {
        /// mongorestore's arguments, as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Subcommand)]
enum OplogCommand {
    /// Tail local.oplog.rs and write sealed oplog segments into a repository.
    ///
    /// A segment appears under its final name only when complete; a stopped or killed
    /// follower loses only its open segment, which the next run reads again (it resumes after
    /// the last sealed entry). When the server's oldest entry is newer than the last archived
    /// one, the oplog rolled over while nothing archived it: the gap is recorded, `ls` shows it,
    /// no restore crosses it, and the follower exits with status 1 unless --continue-after-gap.
    /// When the set lost archived entries (a rollback), the newest archived entry it still
    /// holds is found and the rollback recorded the same way (--continue-after-rollback).
    /// Network failures and server restarts are retried with backoff, and reported.
    /// --status shows the follower's state and the lag. Exit status: 0 success, 1 gap,
    /// rollback or another history (with --status: the last run failed).
    #[command(after_long_help = "Examples:
  oxidump oplog follow --uri mongodb://db1/?replicaSet=rs0 --repo /backups/shop
  oxidump oplog follow --uri mongodb://db1/?replicaSet=rs0 --repo /backups/shop --once   # from cron
  oxidump oplog follow --uri mongodb://db1/?replicaSet=rs0 --repo /backups/shop --status")]
    Follow(FollowArgs),
}

#[derive(clap::Args)]
struct FollowArgs {
    /// Connection string of the replica set to follow.
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    uri: String,
    /// The backup repository (created when missing).
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// Seal a segment once its entries span this long (or it waited this long): 90s, 10m, 1h.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    segment_span: std::time::Duration,
    /// Seal a segment once its entries hold this many raw bytes: 16MB, 64MB, 1GB.
    #[arg(long, default_value = "64MB", value_parser = oxidump::dump::parse_size)]
    segment_size: u64,
    /// Archive up to the newest entry at the start, seal, and exit.
    #[arg(long)]
    once: bool,
    /// After recording a gap, go on archiving from the oldest entry the server holds.
    #[arg(long)]
    continue_after_gap: bool,
    /// After recording a rollback, go on archiving the set's history after the lost
    /// entries, in a new chain.
    #[arg(long)]
    continue_after_rollback: bool,
    /// Show the follower's state (running or not, reconnecting, failed) and the lag of
    /// the archive (the server's newest entry against the newest sealed one, in seconds
    /// and entries); archive nothing.
    #[arg(long, conflicts_with_all = ["once", "continue_after_gap", "continue_after_rollback"])]
    status: bool,
    /// With --status: print JSON.
    #[arg(long, requires = "status")]
    json: bool,
    /// No progress messages.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: 90s, 10m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        u => return Err(format!("{s:?}: unknown unit {u:?} (use s, m or h)")),
    };
    if secs == 0 {
        return Err("a segment span must be at least one second".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

fn follow(a: FollowArgs) -> anyhow::Result<Outcome> {
    use oxidump::oplog::follow::{self, FollowError, FollowEvent, FollowOptions};
    if a.status {
        let rt = runtime()?;
        let st = rt.block_on(follow::status(&a.uri, &a.repo))?;
        if a.json {
            out(&(serde_json::to_string_pretty(&st)? + "\n"))?;
        } else {
            out(&st.render())?;
        }
        return Ok(if st.failed() {
            Outcome::Failed
        } else {
            Outcome::Ok
        });
    }
    let opts = FollowOptions {
        uri: a.uri,
        repo: a.repo,
        segment_span: a.segment_span,
        segment_size: a.segment_size,
        once: a.once,
        continue_after_gap: a.continue_after_gap,
        continue_after_rollback: a.continue_after_rollback,
        ..FollowOptions::default()
    };
    let quiet = a.quiet;
    let events = move |e: FollowEvent| match e {
        FollowEvent::Gap(why) => eprintln!("oxidump: GAP IN THE OPLOG ARCHIVE: {why}"),
        FollowEvent::Rollback(why) => eprintln!("oxidump: ROLLBACK RECORDED: {why}"),
        FollowEvent::Reconnected(what) => eprintln!("oxidump: {what}"),
        FollowEvent::Reconnecting { error, wait } => {
            eprintln!(
                "oxidump: connection lost ({error}); retrying in {} s",
                wait.as_secs()
            )
        }
        FollowEvent::Sealed {
            path,
            entries,
            bytes,
        } if !quiet => eprintln!(
            "sealed {} ({entries} entries, {})",
            path.display(),
            human_bytes(bytes)
        ),
        FollowEvent::Resumed(what) if !quiet => eprintln!("{what}"),
        _ => {}
    };
    let rt = runtime()?;
    match rt.block_on(follow::run(opts, &events, shutdown_signal())) {
        Ok(r) => {
            if !quiet {
                eprintln!(
                    "archived {} entries ({}) in {} segments; newest {}",
                    r.entries,
                    human_bytes(r.bytes),
                    r.segments,
                    r.last.as_deref().unwrap_or("-")
                );
            }
            Ok(Outcome::Ok)
        }
        Err(
            e @ (FollowError::Gap { .. }
            | FollowError::Rollback { .. }
            | FollowError::Diverged { .. }),
        ) => {
            eprintln!("oxidump: error: {e}");
            Ok(Outcome::Failed)
        }
        Err(e) => Err(e.into()),
    }
}

/// A restore from a repository: the plan picks the snapshot and the segments.
fn repo_restore_inputs(
    a: &RestoreArgs,
    dir: &std::path::Path,
) -> anyhow::Result<(PathBuf, oxidump::restore::OplogReplay)> {
    use oxidump::repo::{Repo, plan};
    let Some(until) = &a.until else {
        anyhow::bail!(
            "{}: a restore from a repository needs --until TIME (`oxidump ls {}` shows the reachable windows)",
            dir.display(),
            dir.display()
        );
    };
    let repo = Repo::open(dir)?;
    let bound = oxidump::oplog::replay::parse_bound(until)?;
    let p = plan::plan(&repo, bound, a.snapshot.as_deref())?;
    if a.dry_run {
        let n = plan::entries_to_replay(&p, bound, a.until_exclusive)?;
        out_listing(&(plan::render(&p, n) + "\n"))?;
    } else if !a.quiet {
        eprintln!(
            "base: snapshot {} (consistent at {}), then {} oplog segment(s), {} archived entries to scan; window {}",
            p.snapshot.name,
            oxidump::oplog::entry::show_ts(p.snapshot.consistent),
            p.segments.len(),
            p.segment_entries,
            p.window.show()
        );
    }
    Ok((
        p.snapshot.path.clone(),
        oxidump::restore::OplogReplay {
            from_backup: true,
            files: p.segments,
            until: Some(until.clone()),
            exclusive: a.until_exclusive,
            accept_partial: a.oplog_accept_partial,
        },
    ))
}

#[derive(clap::Args)]
#[command(after_long_help = "Examples:
  oxidump dump --uri mongodb://localhost:27017
  oxidump dump --uri 'mongodb://backup:PASS@db1,db2/?replicaSet=rs0&authSource=admin' --oplog --out nightly.oxd
  oxidump dump --uri mongodb://localhost --db shop --ns-exclude 'shop.tmp_*' -j 8 --out shop.oxd
  oxidump dump --uri mongodb://localhost --format mongodump-archive --gzip --out - | ssh backup 'cat > shop.archive.gz'")]
struct DumpArgs {
    /// Connection string: hosts, credentials, TLS, replicaSet, authSource, readPreference, compressors.
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    uri: String,
    /// Output path (`-` for standard output). Default: <host>_<port>-<UTC time>.oxd in the current directory.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Write the dump as a snapshot into this backup repository (created when missing):
    /// an OXD archive with its oplog window, under snapshots/<UTC start time>.oxd.
    #[arg(long, conflicts_with = "out", value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Oxd)]
    format: FormatArg,
    /// Gzip mongodump output (each file of a directory, or the whole archive stream).
    #[arg(long)]
    gzip: bool,
    /// Only this database (repeatable). Default: every database but local and config.
    #[arg(long = "db", short = 'd')]
    dbs: Vec<String>,
    /// Only this collection (needs exactly one --db).
    #[arg(long, short = 'c')]
    collection: Option<String>,
    /// Only namespaces matching this pattern, e.g. 'shop.*' (repeatable; `*` matches anything, dots included).
    #[arg(long = "ns-include")]
    ns_include: Vec<String>,
    /// Skip namespaces matching this pattern (repeatable; wins over --ns-include).
    #[arg(long = "ns-exclude")]
    ns_exclude: Vec<String>,
    /// Filter the one collection selected with --db and --collection (Extended JSON), e.g. '{"status":"paid"}'.
    #[arg(long)]
    query: Option<String>,
    /// Read preference: primary, primaryPreferred, secondary, secondaryPreferred or nearest.
    #[arg(long)]
    read_preference: Option<String>,
    /// Cursors read at once, across collections and _id ranges.
    #[arg(short = 'j', long = "jobs", default_value_t = oxidump::dump::DEFAULT_JOBS)]
    jobs: usize,
    /// Split collections larger than this into _id ranges read concurrently (e.g. 64MB, 1GB; 0 never splits).
    #[arg(long, default_value = "1GB", value_parser = oxidump::dump::parse_size)]
    split_above: u64,
    /// zstd level for OXD frames (1 fastest … 19 smallest; 0 stores frames uncompressed).
    #[arg(long, default_value_t = oxidump::oxd::DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(0..=22))]
    zstd_level: i32,
    /// Also capture the oplog written during the dump, so a restore can reach one consistent point.
    #[arg(long)]
    oplog: bool,
    /// With one --db: also dump that database's users and roles (a full dump, or one of admin, always has every database's).
    #[arg(long)]
    users_and_roles: bool,
    /// Replace the output file if it exists (a mongodump directory is merged into: the files of the namespaces written are replaced).
    #[arg(long)]
    force: bool,
    /// No progress output (errors, warnings and the summary are still printed).
    #[arg(long, short)]
    quiet: bool,
    /// Write the summary, per namespace, as JSON to this file.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Continue a dump to the same OXD file (--out) that was killed or stopped by a
    /// signal: the namespaces and _id ranges it finished are copied from its partial
    /// output, the rest is read again (with --oplog, the window starts where its window
    /// started). Refused when the options that select what is dumped differ. The
    /// manifest records that the backup was resumed, and from when.
    #[arg(long)]
    resume: bool,
    /// Read everything and discard it (no output): measures how fast the server can be drained.
    #[arg(long, hide = true)]
    drain_only: bool,
    /// Target bytes per server reply (tuning).
    #[arg(long, hide = true, value_parser = oxidump::dump::parse_size)]
    batch_bytes: Option<u64>,
}

#[derive(clap::Args)]
#[command(after_long_help = "Examples:
  oxidump restore backup.oxd --uri mongodb://localhost:27017 --dry-run
  oxidump restore backup.oxd --uri mongodb://localhost --ns-from 'prod.*' --ns-to 'staging.*' --drop
  oxidump restore dump/ --uri mongodb://localhost --ns-include 'shop.orders' --append
  ssh backup 'cat shop.archive.gz' | oxidump restore - --uri mongodb://localhost")]
struct RestoreArgs {
    /// The backup: an OXD file, a mongodump directory, a mongodump archive (plain or gzipped), or `-`.
    /// May be left out with --oplog-file: the oplog is then replayed onto what the target holds.
    /// A backup repository (see `oplog follow`) is restored to --until: from the newest snapshot
    /// whose window holds that moment, replaying its window and the archived oplog after it.
    #[arg(required_unless_present = "oplog_file")]
    path: Option<PathBuf>,
    /// With a repository: restore from this snapshot (its name as `ls` shows it).
    #[arg(long, value_name = "NAME")]
    snapshot: Option<String>,
    /// Connection string of the target server.
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    uri: String,
    /// Only namespaces matching this pattern (source names; repeatable; `*` matches anything).
    #[arg(long = "ns-include")]
    ns_include: Vec<String>,
    /// Skip namespaces matching this pattern (repeatable; wins over --ns-include).
    #[arg(long = "ns-exclude")]
    ns_exclude: Vec<String>,
    /// Rename: source pattern, e.g. 'prod.*' or 'prod.$c$' (repeatable, paired with --ns-to).
    #[arg(long = "ns-from")]
    ns_from: Vec<String>,
    /// Rename: target pattern, e.g. 'staging.*' or 'archive.old_$c$' (the last matching pair wins).
    #[arg(long = "ns-to")]
    ns_to: Vec<String>,
    /// Drop each target collection being restored (and nothing else) before restoring it.
    #[arg(long, conflicts_with = "append")]
    drop: bool,
    /// Insert into target collections that already hold documents.
    #[arg(long)]
    append: bool,
    /// Print the plan (source -> target, documents, indexes, options, drops) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// When to build secondary indexes: auto (default) picks the faster for the target,
    /// after the data on mongod (it sorts a bulk load's keys in one pass, as mongorestore
    /// relies on) and before it on SecantusDB; or always before inserting, after each
    /// collection's data, or skip them. The README's benchmarks compare the modes.
    #[arg(long, value_enum, default_value_t = IndexBuildArg::Auto)]
    index_build: IndexBuildArg,
    /// Collections restored at once.
    #[arg(short = 'j', long = "jobs", default_value_t = oxidump::restore::DEFAULT_JOBS)]
    jobs: usize,
    /// Concurrent inserters per collection.
    #[arg(long, default_value_t = oxidump::restore::DEFAULT_WORKERS)]
    workers_per_collection: usize,
    /// Skip document validation on insert (not for time-series collections).
    #[arg(long)]
    bypass_document_validation: bool,
    /// Write concern: majority, a number, or JSON like '{"w":1,"j":true}'. Default: the URI's, else the server's.
    #[arg(long)]
    write_concern: Option<String>,
    /// Create collections without their dumped options (not allowed for time-series collections).
    #[arg(long)]
    no_options: bool,
    /// Create collections with their dumped UUIDs (needs --drop and a server with applyOps).
    #[arg(long, requires = "drop")]
    preserve_uuid: bool,
    /// Allow restoring into admin, local and config.
    #[arg(long)]
    include_system: bool,
    /// Restore the users and roles the backup holds (with their credentials where the target takes them; with --drop, the users and roles of the same databases that the backup lacks are removed).
    #[arg(long)]
    users_and_roles: bool,
    /// Where the target cannot take stored credentials, create the users with random passwords that must be reset (otherwise they are refused, each named).
    #[arg(long, requires = "users_and_roles")]
    users_without_credentials: bool,
    /// Stop at the first duplicate-key or validation error instead of counting them.
    #[arg(long)]
    stop_on_error: bool,
    /// Restore what is intact around damaged frames instead of stopping the namespace there.
    #[arg(long)]
    skip_corrupt: bool,
    /// Keep a journal of what the server acknowledged and, when one is there, continue the
    /// restore it records: what is done is skipped, what was sent without an answer is sent
    /// again (the target already holding some of it is expected), index builds that had not
    /// run are run. A journal of another plan (input, target, namespaces, options) is
    /// refused. The journal is removed once everything is restored.
    #[arg(long)]
    resume: bool,
    /// Where the --resume journal is (default: beside the backup, BACKUP.oxidump-resume).
    #[arg(long, value_name = "PATH", requires = "resume")]
    resume_journal: Option<PathBuf>,
    /// Keep the --resume journal in the target server (collection oxidump_resume.journals)
    /// instead of beside the backup, for backups on read-only storage.
    #[arg(long, requires = "resume", conflicts_with = "resume_journal")]
    resume_journal_in_target: bool,
    /// Most bytes per insert command (tuning).
    #[arg(long, hide = true, value_parser = oxidump::dump::parse_size)]
    batch_bytes: Option<u64>,
    /// No progress output (errors, warnings and the summary are still printed).
    #[arg(long, short)]
    quiet: bool,
    /// Write the summary, per namespace, as JSON to this file.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// After the data, replay the oplog window the dump captured (`dump --oplog`): the
    /// result is the source's state at the window's end, its consistent point. Replay uses
    /// ordinary commands (never applyOps); secondary indexes are built after it.
    #[arg(long)]
    oplog_replay: bool,
    /// Replay this saved oplog after the dump's window (repeatable, in order; implies
    /// --oplog-replay): a mongodump oplog.bson, a dump of local.oplog.rs, or an OXD file
    /// holding an oplog. It must start at or before the end of what precedes it. Without a
    /// backup, it is replayed onto what the target already holds.
    #[arg(long = "oplog-file", value_name = "FILE")]
    oplog_file: Vec<PathBuf>,
    /// Stop the replay at this moment: a BSON timestamp `seconds:increment` or an RFC 3339
    /// time. Inclusive: the entry at TS is applied, and so is a transaction that commits at
    /// TS (a whole-second time T means the state at the start of T). Must lie between the
    /// dump's consistent point and the last entry the inputs hold; otherwise nothing is
    /// written.
    #[arg(long, value_name = "TS")]
    until: Option<String>,
    /// With --until: apply only what is strictly before TS (as mongorestore's --oplogLimit).
    #[arg(long, requires = "until")]
    until_exclusive: bool,
    /// Where a namespace selection or remap breaks a unit of the oplog (a transaction over
    /// selected and unselected namespaces, a rename across the selection, a dropDatabase of
    /// a partly selected database), replay the selected part instead of stopping.
    #[arg(long)]
    oplog_accept_partial: bool,
}

#[derive(clap::Args)]
struct DrillArgs {
    /// The backup: an OXD file, a mongodump directory, a mongodump archive (plain or
    /// gzipped), `-` (standard input, copied to a temporary file first), or a backup
    /// repository (its newest snapshot, or the one --snapshot names).
    path: PathBuf,
    /// A backup repository: the snapshot to read (a name `oxidump ls DIR` shows).
    #[arg(long)]
    snapshot: Option<String>,
    /// Connection string of the server.
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    uri: String,
    /// Only namespaces matching this pattern (repeatable; `*` matches anything).
    #[arg(long = "ns-include")]
    ns_include: Vec<String>,
    /// Skip namespaces matching this pattern (repeatable; wins over --ns-include).
    #[arg(long = "ns-exclude")]
    ns_exclude: Vec<String>,
    /// diff: where the live copy is, source pattern (paired with --ns-to).
    #[arg(long = "ns-from")]
    ns_from: Vec<String>,
    /// diff: where the live copy is, target pattern.
    #[arg(long = "ns-to")]
    ns_to: Vec<String>,
    /// test-restore: prefix of the scratch database names (default: drill_<random>_).
    #[arg(long)]
    prefix: Option<String>,
    /// test-restore: keep the scratch databases instead of dropping them.
    #[arg(long)]
    keep: bool,
    /// test-restore: when to build secondary indexes, as restore does.
    #[arg(long, value_enum, default_value_t = IndexBuildArg::Auto)]
    index_build: IndexBuildArg,
    /// test-restore: collections restored at once.
    #[arg(short = 'j', long = "jobs", default_value_t = oxidump::restore::DEFAULT_JOBS)]
    jobs: usize,
    /// Print the report as JSON on standard output instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum IndexBuildArg {
    /// Build each collection's indexes as soon as its data is in.
    After,
    /// Create each collection's indexes before inserting its data.
    Before,
    /// Do not build secondary indexes.
    Skip,
    /// After the data on mongod, before it on SecantusDB.
    Auto,
}

#[derive(Clone, Copy, ValueEnum)]
enum CatFormatArg {
    Bson,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// OXD archive.
    Oxd,
    /// mongodump directory layout.
    MongodumpDir,
    /// mongodump --archive stream.
    MongodumpArchive,
}

/// How a command ended.
enum Outcome {
    Ok,
    /// The data is damaged or incomplete, or was not fully processed (exit 1).
    Failed,
    /// An error already reported on standard error (exit 2).
    Reported,
    /// Stopped by a signal (exit 3).
    Interrupted,
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((tool, args)) = compat::front_end_call(&argv) {
        return ExitCode::from(compat::run(tool, args));
    }
    if let Err(m) = compat::native::check(&argv) {
        eprintln!("{m}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse_from(argv);
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Reported) => ExitCode::from(2),
        Ok(Outcome::Interrupted) => ExitCode::from(3),
        Err(e) => {
            eprintln!("oxidump: error: {}", render_error(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The error and its causes in one line, each cause once: many errors already say
/// their cause (`path: what went wrong`), which is then not repeated.
fn render_error(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for c in e.chain().skip(1) {
        // Driver errors are described, in one line, by the error that holds them;
        // their own text adds internal labels and a dump of the server's reply.
        if c.downcast_ref::<mongodb::error::Error>().is_some() {
            break;
        }
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
    }
    s
}

/// 1 when the error is damaged or incomplete data, 2 otherwise (see [`EXIT_STATUS`]).
fn exit_code(e: &anyhow::Error) -> u8 {
    let damage = e.chain().any(|c| {
        c.downcast_ref::<oxidump::source::SourceError>()
            .is_some_and(|e| e.is_damage())
            || c.downcast_ref::<cat::CatError>()
                .is_some_and(|e| e.is_damage())
            || c.downcast_ref::<convert::ConvertError>()
                .is_some_and(|e| e.is_damage())
            || c.downcast_ref::<oxidump::restore::RestoreError>()
                .is_some_and(|e| e.is_damage())
    });
    // (An interrupted restore is not an error: its report says what the target holds.)
    let interrupted = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<oxidump::dump::DumpError>(),
            Some(oxidump::dump::DumpError::Interrupted { .. })
        )
    });
    if interrupted {
        3
    } else if damage {
        1
    } else {
        2
    }
}

/// Writes to standard output, reporting errors (a closed pipe) instead of panicking.
fn out(s: &str) -> io::Result<()> {
    let mut o = oxidump::output::StdoutSink::new();
    o.write_all(s.as_bytes())?;
    o.flush()
}

/// Writes a listing for people to standard output: a reader that stops reading
/// (`| head`) has seen what it wanted, so a closed pipe is not an error here, and
/// only here (outputs that are data fail when their reader goes away).
fn out_listing(s: &str) -> io::Result<()> {
    match out(s) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

fn format_of(f: FormatArg) -> convert::OutputFormat {
    match f {
        FormatArg::Oxd => convert::OutputFormat::Oxd,
        FormatArg::MongodumpDir => convert::OutputFormat::MongodumpDir,
        FormatArg::MongodumpArchive => convert::OutputFormat::MongodumpArchive,
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Drops the runtime once a command is over: everything that talked to the server
/// has been awaited and the client closed; what may be left is a thread blocked
/// reading an input nobody needs any more (standard input after a stop), which is
/// not waited for.
fn finish(rt: tokio::runtime::Runtime) {
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
}

/// Resolves on Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal or session).
async fn shutdown_signal() {
    oxidump::signals::shutdown().await;
}

fn dump(a: DumpArgs) -> anyhow::Result<Outcome> {
    let (out, oplog) = match &a.repo {
        Some(dir) => {
            if !matches!(a.format, FormatArg::Oxd) || a.gzip {
                anyhow::bail!("--repo writes OXD snapshots; leave out --format and --gzip");
            }
            let repo = oxidump::repo::Repo::open_or_create(dir)?;
            repo.prepare_snapshot_dir()?;
            (Some(repo.snapshot_path(bson::DateTime::now())), true)
        }
        None => (a.out.clone(), a.oplog),
    };
    let opts = oxidump::dump::DumpOptions {
        uri: a.uri,
        out,
        format: format_of(a.format),
        gzip: a.gzip,
        oxd: WriterOptions {
            level: (a.zstd_level > 0).then_some(a.zstd_level),
            ..WriterOptions::default()
        },
        dbs: a.dbs,
        collection: a.collection,
        include: a.ns_include,
        exclude: a.ns_exclude,
        query: a.query,
        read_preference: a.read_preference,
        jobs: a.jobs,
        split_above: a.split_above,
        oplog,
        users_and_roles: a.users_and_roles,
        overwrite: a.force,
        drain_only: a.drain_only,
        resume: a.resume,
        // Stopped by a signal, a dump to a file it was told keeps what it wrote, for
        // --resume (a snapshot of a repository is never resumed).
        leftovers_in_dir: a.repo.is_some(),
        keep_interrupted: a.repo.is_none()
            && a.out.as_deref().is_some_and(|o| o.as_os_str() != "-"),
        batch_bytes: a
            .batch_bytes
            .map(|b| b as usize)
            .unwrap_or(oxidump::dump::DEFAULT_BATCH_BYTES),
        ..oxidump::dump::DumpOptions::default()
    };
    let to_stdout = opts.out.as_deref() == Some(std::path::Path::new("-"));
    let progress = Progress::new(a.quiet);
    let rt = runtime()?;
    let report = rt.block_on(oxidump::dump::run(opts, progress, shutdown_signal()));
    finish(rt);
    let report = report?;
    if let Some(p) = &a.report_json {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        if !report.resumed.is_empty() {
            eprintln!(
                "resumed: {} namespace(s) kept from the interrupted dump's output: {}",
                report.resumed.len(),
                report.resumed.join(", ")
            );
        }
        let stored = match (report.stored_bytes, report.ratio()) {
            (Some(s), Some(r)) => format!(", {} stored (ratio {r:.2})", human_bytes(s)),
            _ => String::new(),
        };
        let out = match &report.output {
            Some(p) if !to_stdout => format!(" -> {}", p.display()),
            Some(_) => " -> standard output".into(),
            None => " (drained, nothing written)".into(),
        };
        eprintln!(
            "dumped {} namespaces, {} documents, {} raw{stored} in {:.1}s ({:.1} MB/s){out}",
            report.namespaces.len(),
            report.documents,
            human_bytes(report.bytes),
            report.seconds,
            report.mb_per_s
        );
        if let Some((s, e)) = &report.oplog {
            eprintln!("oplog window {s} .. {e}");
        }
    }
    Ok(Outcome::Ok)
}

fn drill(a: DrillArgs, test_restore: bool) -> anyhow::Result<Outcome> {
    if a.ns_from.len() != a.ns_to.len() {
        anyhow::bail!(
            "--ns-from and --ns-to come in pairs: {} --ns-from for {} --ns-to",
            a.ns_from.len(),
            a.ns_to.len()
        );
    }
    if test_restore && !a.ns_from.is_empty() {
        anyhow::bail!(
            "test-restore chooses its own target names (--prefix); --ns-from/--ns-to are for diff"
        );
    }
    let opts = oxidump::drill::DrillOptions {
        uri: a.uri,
        snapshot: a.snapshot,
        input: a.path,
        include: a.ns_include,
        exclude: a.ns_exclude,
        renames: a.ns_from.into_iter().zip(a.ns_to).collect(),
        prefix: a.prefix,
        keep: a.keep,
        index_build: match a.index_build {
            IndexBuildArg::After => oxidump::restore::IndexBuild::After,
            IndexBuildArg::Before => oxidump::restore::IndexBuild::Before,
            IndexBuildArg::Skip => oxidump::restore::IndexBuild::Skip,
            IndexBuildArg::Auto => oxidump::restore::IndexBuild::Auto,
        },
        jobs: a.jobs,
    };
    let rt = runtime()?;
    let progress = Progress::new(a.quiet || a.json);
    let result = rt.block_on(async {
        if test_restore {
            oxidump::drill::test_restore(opts, progress, shutdown_signal).await
        } else {
            oxidump::drill::diff(opts, shutdown_signal()).await
        }
    });
    let report = match result {
        Ok(r) => r,
        Err(oxidump::drill::DrillError::Interrupted) => {
            eprintln!("oxidump: interrupted; the scratch databases were dropped unless --keep");
            std::process::exit(3);
        }
        Err(e) => return Err(e.into()),
    };
    let json = serde_json::to_string_pretty(&report)? + "\n";
    if let Some(p) = &a.report_json {
        std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
    }
    if a.json {
        out(&json)?;
    } else {
        out(&oxidump::drill::render(&report))?;
    }
    Ok(if report.passed {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

fn restore(a: RestoreArgs) -> anyhow::Result<Outcome> {
    use oxidump::restore::{IndexBuild, RestoreOptions, plan::Existing};
    if a.ns_from.len() != a.ns_to.len() {
        anyhow::bail!(
            "--ns-from and --ns-to come in pairs: {} --ns-from for {} --ns-to",
            a.ns_from.len(),
            a.ns_to.len()
        );
    }
    let repo_inputs = match &a.path {
        Some(p) if oxidump::repo::Repo::is_repo(p) => Some(repo_restore_inputs(&a, p)?),
        _ => None,
    };
    if a.snapshot.is_some() && repo_inputs.is_none() {
        anyhow::bail!("--snapshot names a snapshot of a backup repository; the input is not one");
    }
    if repo_inputs.is_none()
        && (a.until.is_some() || a.oplog_accept_partial)
        && !a.oplog_replay
        && a.oplog_file.is_empty()
    {
        anyhow::bail!("--until and --oplog-accept-partial need --oplog-replay or --oplog-file");
    }
    let oplog =
        (a.oplog_replay || !a.oplog_file.is_empty()).then(|| oxidump::restore::OplogReplay {
            // With a backup, a saved oplog continues its window: both are replayed.
            from_backup: a.oplog_replay || a.path.is_some(),
            files: a.oplog_file.clone(),
            until: a.until.clone(),
            exclusive: a.until_exclusive,
            accept_partial: a.oplog_accept_partial,
        });
    let (input, oplog) = match repo_inputs {
        Some((base, replay)) => (base, Some(replay)),
        None => (a.path.clone().unwrap_or_default(), oplog),
    };
    let opts = RestoreOptions {
        uri: a.uri,
        input,
        include: a.ns_include,
        exclude: a.ns_exclude,
        renames: a.ns_from.into_iter().zip(a.ns_to).collect(),
        existing: if a.drop {
            Existing::Drop
        } else if a.append {
            Existing::Append
        } else {
            Existing::Refuse
        },
        dry_run: a.dry_run,
        index_build: match a.index_build {
            IndexBuildArg::After => IndexBuild::After,
            IndexBuildArg::Before => IndexBuild::Before,
            IndexBuildArg::Skip => IndexBuild::Skip,
            IndexBuildArg::Auto => IndexBuild::Auto,
        },
        jobs: a.jobs,
        workers: a.workers_per_collection,
        bypass_validation: a.bypass_document_validation,
        write_concern: a.write_concern,
        no_options: a.no_options,
        preserve_uuid: a.preserve_uuid,
        include_system: a.include_system,
        users_and_roles: a.users_and_roles,
        users_without_credentials: a.users_without_credentials,
        stop_on_error: a.stop_on_error,
        skip_corrupt: a.skip_corrupt,
        index_specs: Default::default(),
        oplog,
        batch_bytes: a.batch_bytes.map(|b| b as usize),
        resume: a.resume,
        journal: a.resume_journal,
        journal_in_target: a.resume_journal_in_target,
        ..RestoreOptions::default()
    };
    let progress = Progress::new(a.quiet);
    let rt = runtime()?;
    let report = rt.block_on(oxidump::restore::run(opts, progress, shutdown_signal));
    finish(rt);
    let report = report?;
    if let Some(p) = &a.report_json {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if report.dry_run {
        out_listing(&oxidump::restore::render_plan(&report))?;
    } else {
        eprint!("{}", oxidump::restore::render_summary(&report));
    }
    Ok(if report.interrupted {
        Outcome::Interrupted
    } else if report.ok() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// The front ends print their own messages and exit 0 or 1, as mongo-tools does.
fn compat_outcome(code: u8) -> Outcome {
    if code == compat::EXIT_SUCCESS {
        Outcome::Ok
    } else {
        Outcome::Failed
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Mongodump { args } => {
            Ok(compat_outcome(compat::run(compat::Tool::Mongodump, args)))
        }
        Command::Mongorestore { args } => Ok(compat_outcome(compat::run(
            compat::Tool::Mongorestore,
            args,
        ))),
        Command::Dump(a) => dump(a),
        Command::Restore(a) => restore(a),
        Command::TestRestore(a) => drill(a, true),
        Command::Diff(a) => drill(a, false),
        Command::Oplog(OplogCommand::Follow(a)) => follow(a),
        Command::Verify {
            paths,
            deep,
            json,
            quiet,
        } => {
            let progress = Progress::new(quiet || json);
            let opts = oxidump::verify::VerifyOptions { deep };
            let mut reports = Vec::new();
            let mut failed = false;
            let mut unreadable = false;
            for p in &paths {
                let run = if oxidump::repo::Repo::is_repo(p) {
                    oxidump::repo::Repo::open(p)
                        .and_then(|r| oxidump::repo::check::verify(&r, &opts))
                        .map_err(|e| oxidump::source::SourceError::Io {
                            path: p.clone(),
                            source: std::io::Error::other(e.to_string()),
                        })
                } else {
                    verify::run(p, &opts, &progress)
                };
                match run {
                    Ok(r) => {
                        failed |= !r.is_ok();
                        if !json {
                            out_listing(&verify::render_text(&r))?;
                        }
                        reports.push(serde_json::to_value(&r)?);
                    }
                    Err(e) => {
                        // Damage found before the format is known counts as damage.
                        if e.is_damage() {
                            failed = true;
                        } else {
                            unreadable = true;
                        }
                        eprintln!("oxidump: error: {e}");
                        reports.push(serde_json::json!({
                            "path": p,
                            "error": e.to_string(),
                        }));
                    }
                }
            }
            if json {
                out(&(serde_json::to_string_pretty(&reports)? + "\n"))?;
            }
            Ok(if unreadable {
                Outcome::Reported
            } else if failed {
                Outcome::Failed
            } else {
                Outcome::Ok
            })
        }
        Command::Ls { path, json } if oxidump::repo::Repo::is_repo(&path) => {
            let repo = oxidump::repo::Repo::open(&path)?;
            let l = oxidump::repo::listing::list(&repo)?;
            if json {
                out(&(serde_json::to_string_pretty(&l)? + "\n"))?;
            } else {
                out(&oxidump::repo::listing::render_text(&l))?;
            }
            Ok(if l.is_clean() {
                Outcome::Ok
            } else {
                Outcome::Failed
            })
        }
        Command::Ls { path, json } => {
            let l = ls::run(&path)?;
            if json {
                out_listing(&(serde_json::to_string_pretty(&l)? + "\n"))?;
            } else {
                out_listing(&ls::render_text(&l))?;
            }
            Ok(if l.complete {
                Outcome::Ok
            } else {
                Outcome::Failed
            })
        }
        Command::Cat { path, ns, format } => {
            let format = match format {
                CatFormatArg::Bson => cat::CatFormat::Bson,
                CatFormatArg::Json => cat::CatFormat::Json,
            };
            let mut out = io::BufWriter::with_capacity(1 << 20, oxidump::output::StdoutSink::new());
            cat::run(&path, &ns, format, &mut out)?;
            out.flush().context("writing output")?;
            Ok(Outcome::Ok)
        }
        Command::Convert {
            input,
            output,
            to,
            gzip,
            zstd_level,
            force,
            quiet,
        } => {
            let to = format_of(to);
            let opts = convert::ConvertOptions {
                to,
                gzip,
                oxd: WriterOptions {
                    level: (zstd_level > 0).then_some(zstd_level),
                    ..WriterOptions::default()
                },
                overwrite: force,
            };
            let progress = Progress::new(quiet || output.as_os_str() == "-");
            let s = convert::run(&input, &output, &opts, &progress)?;
            if !quiet {
                eprintln!(
                    "converted {} namespaces, {} documents, {} bytes to {}",
                    s.namespaces,
                    s.documents,
                    s.bytes,
                    output.display()
                );
            }
            Ok(Outcome::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
