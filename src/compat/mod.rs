//! `mongodump` and `mongorestore` command lines (mongo-tools 100.x) on oxidump's engines.
//!
//! The front ends only translate: a command line is parsed with mongo-tools' spellings
//! ([`args`], from the list in [`flags`]), the connection flags are folded into one
//! connection string ([`conn`]), and the rest becomes a [`DumpOptions`] or
//! [`RestoreOptions`] handed to the same engines as `oxidump dump` and `oxidump restore`.
//! Every flag is either implemented with mongo-tools' meaning or refused, before
//! anything is done, with a message naming it and saying why.
//!
//! Messages are log lines as mongo-tools prints them (a timestamp, a tab, the text) on
//! standard error, and the exit status is mongo-tools': 0 on success, 1 on any failure.
//!
//! [`native`] is the other direction: it spots mongo-tools spellings given to the native
//! commands, which must fail rather than do something else.
//!
//! [`DumpOptions`]: crate::dump::DumpOptions
//! [`RestoreOptions`]: crate::restore::RestoreOptions

pub mod args;
pub mod config;
pub mod conn;
pub mod flags;
pub mod mongodump;
pub mod mongorestore;
pub mod native;
pub mod relaxed;

use std::ffi::OsString;
use std::path::PathBuf;

pub use flags::Tool;

use crate::progress::timestamp;

/// Error of a front end.
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    /// The command line is wrong (mongo-tools: "error parsing command line options").
    #[error("{0}")]
    Usage(String),
    /// A flag oxidump does not implement.
    #[error("{flag} is not supported by oxidump: {why}")]
    Refused {
        /// The flag as spelled in mongo-tools' help.
        flag: String,
        /// Why.
        why: &'static str,
    },
    /// The options do not fit together (mongo-tools: "bad option").
    #[error("bad option: {0}")]
    BadOption(String),
    /// The dump failed.
    #[error(transparent)]
    Dump(#[from] crate::dump::DumpError),
    /// The restore failed.
    #[error(transparent)]
    Restore(#[from] crate::restore::RestoreError),
    /// Reading the input for a check failed.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// Extracting a collection failed.
    #[error(transparent)]
    Cat(#[from] crate::commands::cat::CatError),
    /// A file operation of the front end itself.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The run was not a success (the reason was already printed).
    #[error("{0}")]
    Failed(String),
}

impl CompatError {
    fn is_usage(&self) -> bool {
        matches!(self, CompatError::Usage(_) | CompatError::Refused { .. })
    }
}

/// Exit status of mongo-tools on success.
pub const EXIT_SUCCESS: u8 = 0;
/// Exit status of mongo-tools on any failure.
pub const EXIT_FAILURE: u8 = 1;

/// Prints one log line on standard error: a timestamp, a tab, the text.
pub fn log(line: impl AsRef<str>) {
    eprintln!("{}\t{}", timestamp(), line.as_ref());
}

/// The front end the program was called as (`mongodump`, `mongorestore`, through a
/// symlink or a copy of the binary), from `argv[0]`.
pub fn program_tool(argv: &[OsString]) -> Option<Tool> {
    let name = std::path::Path::new(argv.first()?).file_name()?.to_str()?;
    Tool::from_program(name)
}

/// The front end an `oxidump` command line asks for, with its arguments: the program
/// called as `mongodump`/`mongorestore`, or `oxidump mongodump|mongorestore ARGS...`
/// (the arguments passed on untouched, a `--` included).
pub fn front_end_call(argv: &[OsString]) -> Option<(Tool, Vec<OsString>)> {
    if let Some(tool) = program_tool(argv) {
        return Some((tool, argv[1..].to_vec()));
    }
    let tool = Tool::from_program(argv.get(1)?.to_str()?)?;
    if tool.name() != argv[1] {
        return None;
    }
    Some((tool, argv[2..].to_vec()))
}

/// Runs `tool` with `args` (without the program name) and returns the exit status.
pub fn run(tool: Tool, args: Vec<OsString>) -> u8 {
    let args: Result<Vec<String>, _> = args.into_iter().map(OsString::into_string).collect();
    let args = match args {
        Ok(a) => a,
        Err(bad) => {
            log(format!(
                "error parsing command line options: argument {bad:?} is not valid UTF-8"
            ));
            return EXIT_FAILURE;
        }
    };
    let result = match tool {
        Tool::Mongodump => mongodump::run(&args),
        Tool::Mongorestore => mongorestore::run(&args),
    };
    match result {
        Ok(()) => EXIT_SUCCESS,
        Err(e) if e.is_usage() => {
            log(format!("error parsing command line options: {e}"));
            log(format!("try '{} --help' for more information", tool.name()));
            EXIT_FAILURE
        }
        Err(CompatError::Failed(_)) => EXIT_FAILURE,
        Err(e) => {
            log(format!("Failed: {e}"));
            EXIT_FAILURE
        }
    }
}

/// What both front ends do first: `--help`, `--version`, refused flags, `--config`.
/// Returns `None` when the command is done (help or version printed).
fn common_start(
    tool: Tool,
    args: &[String],
) -> Result<Option<(args::Parsed, config::Config)>, CompatError> {
    let p = args::parse(tool, args)?;
    if p.has("help") {
        print!("{}", usage(tool));
        return Ok(None);
    }
    if p.has("version") {
        println!(
            "{} (oxidump {}): mongo-tools 100.x command line",
            tool.name(),
            env!("CARGO_PKG_VERSION")
        );
        return Ok(None);
    }
    if let Some((f, why)) = p.refused() {
        return Err(CompatError::Refused {
            flag: format!("--{}", f.long),
            why,
        });
    }
    let cfg = match p.value("config") {
        Some(path) => config::load(std::path::Path::new(path))?,
        None => config::Config::default(),
    };
    Ok(Some((p, cfg)))
}

/// The `--help` text: usage, then every flag with what oxidump does with it.
pub fn usage(tool: Tool) -> String {
    let mut s = match tool {
        Tool::Mongodump => "Usage:\n  mongodump <options> <connection-string>\n\nExport the content of a running server into .bson files (or an archive, or with --oxd an OXD\narchive), with oxidump's engine. Specify a database with -d and a collection with -c to only\ndump that database or collection.\n\n".to_string(),
        Tool::Mongorestore => "Usage:\n  mongorestore <options> <connection-string> <directory or file to restore>\n\nRestore backups made by mongodump (or oxidump: OXD files are read too) into a running server,\nwith oxidump's engine. Specify a database with -d to restore a single database from the target\ndirectory, or use -d and -c to restore a single collection from a single .bson file.\n\n".to_string(),
    };
    s.push_str("Options:\n");
    for f in flags::flags_for(tool).filter(|f| !f.hidden) {
        let what = match f.status {
            flags::Status::Supported(how) => how.to_string(),
            flags::Status::Refused(why) => format!("REFUSED: {why}"),
        };
        s.push_str(&format!(
            "  {:<34} {}\n",
            f.spellings(),
            what.replace('`', "")
        ));
    }
    s
}

fn runtime() -> Result<tokio::runtime::Runtime, CompatError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CompatError::Io {
            path: PathBuf::from("<async runtime>"),
            source,
        })
}

/// Ends the runtime without waiting for a reader still blocked on its input (standard
/// input that stays open after an interrupted restore), as the native commands do.
fn finish(rt: tokio::runtime::Runtime) {
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
}

/// Resolves on Ctrl-C, SIGTERM or SIGHUP, after saying so as mongo-tools does.
async fn shutdown_signal() {
    let signal = crate::signals::shutdown().await;
    log(format!(
        "signal '{}' received; attempting to shut down",
        signal.name()
    ));
}

/// Parses a whole number given to `flag`.
fn number(v: &str, flag: &str) -> Result<i64, CompatError> {
    v.trim().parse::<i64>().map_err(|_| {
        CompatError::Usage(format!(
            "invalid argument for flag --{flag}: expected a number, got {v:?}"
        ))
    })
}

/// mongorestore's pattern escaping of a literal name (`*` and `\`).
pub fn escape_ns(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('*', "\\*")
        .replace('$', "\\$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_lists_every_visible_flag() {
        for tool in [Tool::Mongodump, Tool::Mongorestore] {
            let u = usage(tool);
            for f in flags::flags_for(tool).filter(|f| !f.hidden) {
                assert!(
                    u.contains(&format!("--{}", f.long)),
                    "{} in {}",
                    f.long,
                    tool.name()
                );
            }
        }
    }

    #[test]
    fn front_end_calls() {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let (t, a) = front_end_call(&v(&["/usr/bin/mongodump", "-d", "x"])).unwrap();
        assert_eq!((t, a), (Tool::Mongodump, v(&["-d", "x"])));
        let (t, a) = front_end_call(&v(&["oxidump", "mongorestore", "--", "--x"])).unwrap();
        assert_eq!((t, a), (Tool::Mongorestore, v(&["--", "--x"])));
        assert!(front_end_call(&v(&["oxidump", "dump", "-d", "x"])).is_none());
        assert!(front_end_call(&v(&["oxidump", "mongodump.exe"])).is_none());
        assert!(front_end_call(&v(&["oxidump"])).is_none());
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_ns("a*b\\c"), "a\\*b\\\\c");
    }

    #[test]
    fn refused_flags_fail_before_anything() {
        let e = common_start(
            Tool::Mongorestore,
            &["--sslFIPSMode".to_string(), "dump".to_string()],
        )
        .unwrap_err();
        assert!(e.is_usage());
        let m = e.to_string();
        assert!(
            m.contains("--sslFIPSMode") && m.contains("not supported"),
            "{m}"
        );
    }
}
