//! mongo-tools spellings given to the native `oxidump dump` and `oxidump restore`.
//!
//! The native commands keep Rust-conventional flags, so a command line migrated from
//! mongodump or mongorestore without changes must fail, never run and do something
//! else (`-h 127.0.0.1` is not help, `-q '{...}'` is not quiet, `--out=dump` is not an
//! OXD file named `dump`). [`check`] finds such spellings and says what to write
//! instead: the native spelling, or the `oxidump mongodump`/`oxidump mongorestore` front
//! ends, which take the mongo-tools command line as it is.

use std::ffi::OsString;

use super::flags::{self, Tool};

/// Native value flags (their next argument is a value, not a flag).
const DUMP_VALUES: &[&str] = &[
    "--uri",
    "--out",
    "-o",
    "--format",
    "--db",
    "-d",
    "--collection",
    "-c",
    "--ns-include",
    "--ns-exclude",
    "--query",
    "--read-preference",
    "--jobs",
    "-j",
    "--split-above",
    "--zstd-level",
    "--report-json",
    "--batch-bytes",
];
const RESTORE_VALUES: &[&str] = &[
    "--uri",
    "--ns-include",
    "--ns-exclude",
    "--ns-from",
    "--ns-to",
    "--index-build",
    "--jobs",
    "-j",
    "--workers-per-collection",
    "--write-concern",
    "--report-json",
];
/// Long names the native command shares with mongo-tools, with the same meaning.
const DUMP_SHARED: &[&str] = &[
    "db",
    "collection",
    "query",
    "oplog",
    "quiet",
    "help",
    "gzip",
    "uri",
    "out",
];
const RESTORE_SHARED: &[&str] = &["drop", "quiet", "help", "uri"];

/// The native spelling of a mongo-tools flag, when there is one.
fn native_spelling(command: &str, long: &str) -> Option<&'static str> {
    Some(match long {
        "host"
        | "port"
        | "username"
        | "password"
        | "authenticationDatabase"
        | "authenticationMechanism"
        | "ssl"
        | "sslCAFile"
        | "sslPEMKeyFile"
        | "sslPEMKeyPassword"
        | "sslCRLFile"
        | "tlsInsecure"
        | "sslAllowInvalidCertificates"
        | "sslAllowInvalidHostnames"
        | "awsSessionToken"
        | "gssapiServiceName"
        | "gssapiHostName"
        | "dialTimeout"
        | "serverSelectionTimeout"
        | "compressors" => {
            "the connection string: --uri 'mongodb://USER:PASSWORD@HOST:PORT/?authSource=DB&tls=true'"
        }
        "archive" if command == "dump" => {
            "--format mongodump-archive --out FILE (or --out - for standard output)"
        }
        "archive" => {
            "the backup path as the positional argument (`-` for standard input); the format is detected"
        }
        "nsInclude" => "--ns-include",
        "nsExclude" => "--ns-exclude",
        "nsFrom" => "--ns-from",
        "nsTo" => "--ns-to",
        "readPreference" => "--read-preference (a mode), or readPreference in --uri",
        "numParallelCollections" => "-j/--jobs",
        "numInsertionWorkersPerCollection" => "--workers-per-collection",
        "writeConcern" => "--write-concern",
        "noIndexRestore" => "--index-build skip",
        "noOptionsRestore" => "--no-options",
        "stopOnError" => "--stop-on-error",
        "bypassDocumentValidation" => "--bypass-document-validation",
        "preserveUUID" => "--preserve-uuid",
        "dryRun" => "--dry-run",
        "dumpDbUsersAndRoles" => "--users-and-roles (with one --db)",
        "restoreDbUsersAndRoles" => "--users-and-roles",
        "tempUsersColl" | "tempRolesColl" => {
            "nothing: restore --users-and-roles uses admin.tempusers and admin.temproles"
        }
        "dir" => "the backup path as the positional argument",
        "excludeCollection" | "excludeCollectionsWithPrefix" => {
            "--ns-exclude 'DB.NAME' or --ns-exclude 'DB.PREFIX*'"
        }
        "db" if command == "restore" => "--ns-include 'DB.*'",
        "collection" if command == "restore" => "--ns-include 'DB.COLLECTION'",
        "gzip" if command == "restore" => "nothing: compression is detected from the bytes",
        "objcheck" => "`oxidump verify --deep` before the restore",
        "oplog" if command == "restore" => {
            "nothing: the oplog in a backup is reported, not replayed, by this version"
        }
        _ => return None,
    })
}

fn front_end(command: &str) -> &'static str {
    if command == "dump" {
        "oxidump mongodump"
    } else {
        "oxidump mongorestore"
    }
}

fn refuse(command: &str, shown: &str, long: Option<&str>, why: &str) -> String {
    let native = long.and_then(|l| native_spelling(command, l));
    let native = match native {
        Some(n) => format!("; the native spelling is {n}"),
        None => String::new(),
    };
    format!(
        "oxidump {command}: {shown} {why}. To run a mongo-tools command line as it is, use `{fe} ...` (or call the binary as {tool}){native}",
        fe = front_end(command),
        tool = if command == "dump" {
            "mongodump"
        } else {
            "mongorestore"
        },
    )
}

/// Checks the arguments of the native `dump` or `restore` (everything after the
/// subcommand) for mongo-tools spellings; the error says what to write instead.
pub fn check_args(command: &str, args: &[String]) -> Result<(), String> {
    let (values, shared): (&[&str], &[&str]) = match command {
        "dump" => (DUMP_VALUES, DUMP_SHARED),
        "restore" => (RESTORE_VALUES, RESTORE_SHARED),
        _ => return Ok(()),
    };
    let has_format = args
        .iter()
        .any(|a| a == "--format" || a.starts_with("--format="));
    let mongo_long = |name: &str| {
        flags::by_long(Tool::Mongodump, name).or_else(|| flags::by_long(Tool::Mongorestore, name))
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if a == "--" {
            break;
        }
        let next = args.get(i).map(String::as_str);
        let next_is_value = next.is_some_and(|n| !n.starts_with('-') || n == "-");
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            if command == "dump" && name == "out" {
                let v = inline.or(if next_is_value { next } else { None });
                if let Some(v) = v {
                    check_out(v, has_format)?;
                }
            }
            if mongo_long(name).is_some() && !shared.contains(&name) {
                return Err(refuse(
                    command,
                    &format!("--{name}"),
                    Some(name),
                    "is a mongo-tools flag, not one of this command's",
                ));
            }
            if values.contains(&format!("--{name}").as_str()) && inline.is_none() {
                i += 1;
            }
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let first = &a[..2];
            let attached = a.len() > 2;
            match first {
                "-h" if attached || next_is_value => {
                    return Err(refuse(
                        command,
                        &format!(
                            "-h {}",
                            if attached {
                                &a[2..]
                            } else {
                                next.unwrap_or("")
                            }
                        ),
                        Some("host"),
                        "is mongo-tools' host flag; here -h is help",
                    ));
                }
                "-q" if command == "dump" && (attached || next_is_value) => {
                    return Err(refuse(
                        command,
                        "-q with a value",
                        None,
                        "is mongo-tools' query flag; here -q is quiet and the filter is --query",
                    ));
                }
                "-u" | "-p" => {
                    return Err(refuse(
                        command,
                        first,
                        Some(if first == "-u" {
                            "username"
                        } else {
                            "password"
                        }),
                        "is a mongo-tools credential flag",
                    ));
                }
                "-v" => {
                    return Err(refuse(
                        command,
                        first,
                        None,
                        "is mongo-tools' verbosity flag",
                    ));
                }
                "-d" | "-c" if command == "restore" => {
                    return Err(refuse(
                        command,
                        first,
                        Some(if first == "-d" { "db" } else { "collection" }),
                        "is a mongo-tools namespace flag",
                    ));
                }
                "-o" if command == "dump" => {
                    let v = if attached {
                        Some(a[2..].trim_start_matches('='))
                    } else if next_is_value {
                        next
                    } else {
                        None
                    };
                    if let Some(v) = v {
                        check_out(v, has_format)?;
                    }
                }
                _ => {}
            }
            if values.contains(&a) {
                i += 1;
            }
            continue;
        }
        if a.starts_with("mongodb://") || a.starts_with("mongodb+srv://") {
            return Err(refuse(
                command,
                "a positional connection string",
                None,
                "is mongo-tools' way of naming the server; here it is --uri",
            ));
        }
    }
    Ok(())
}

/// `--out X` of the native dump writes an OXD file named X unless `--format` says
/// otherwise; mongodump's `--out X` is a directory. A path that can only mean a
/// directory (an existing one, a trailing `/`, or mongodump's default `dump`) is refused.
fn check_out(v: &str, has_format: bool) -> Result<(), String> {
    let path = std::path::Path::new(v);
    let looks_like_dir = v.ends_with('/')
        || path.is_dir()
        || path.file_name().and_then(|n| n.to_str()) == Some("dump");
    if has_format || v == "-" || !looks_like_dir {
        return Ok(());
    }
    Err(format!(
        "oxidump dump: --out {v} would write an OXD archive named {v:?}, while mongodump's --out names a directory. Name the file {v}.oxd, add --format mongodump-dir for a mongodump directory, or use `oxidump mongodump ...` for mongodump's command line"
    ))
}

/// [`check_args`] on a whole `oxidump` command line (program name first).
pub fn check(argv: &[OsString]) -> Result<(), String> {
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match args.get(1).map(String::as_str) {
        Some(c @ ("dump" | "restore")) => check_args(c, &args[2..]),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chk(cmd: &str, a: &[&str]) -> Result<(), String> {
        check_args(cmd, &a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn migrated_dump_lines_fail() {
        for a in [
            &["-h", "127.0.0.1", "--port", "27017"][..],
            &["-h127.0.0.1"],
            &["--host", "db1"],
            &["--port", "27017"],
            &["--archive"],
            &["--archive=x.archive"],
            &["-q", "{\"a\":1}"],
            &["-u", "admin"],
            &["-p", "secret"],
            &["--authenticationDatabase", "admin"],
            &["--readPreference", "secondary"],
            &["--numParallelCollections", "2"],
            &["--excludeCollection", "x"],
            &["--ssl"],
            &["-v"],
            &["--out=dump"],
            &["-o", "dump"],
            &["-o", "backups/"],
            &["--out", "/tmp"],
            &["--out", "out/dump"],
            &["mongodb://localhost"],
        ] {
            let e = chk("dump", a).unwrap_err();
            assert!(e.contains("oxidump mongodump"), "{a:?}: {e}");
        }
        let e = chk("dump", &["--nsInclude", "a.*"]).unwrap_err();
        assert!(e.contains("--ns-include"), "{e}");
    }

    #[test]
    fn migrated_restore_lines_fail() {
        for a in [
            &["--nsInclude", "a.*", "dump"][..],
            &["-h", "localhost", "dump"],
            &["--gzip", "dump"],
            &["-d", "shop", "dump/shop"],
            &["--db", "shop", "dump/shop"],
            &["--archive=x"],
            &["--dir", "dump"],
            &["--writeConcern", "majority", "dump"],
            &["--oplogReplay", "dump"],
            &["mongodb://h", "dump"],
        ] {
            let e = chk("restore", a).unwrap_err();
            assert!(e.contains("oxidump mongorestore"), "{a:?}: {e}");
        }
    }

    #[test]
    fn native_lines_pass() {
        for a in [
            &["--uri", "mongodb://h", "--out", "x.oxd"][..],
            &["--uri", "mongodb://h", "--out", "/tmp/nightly.backup"],
            &["--uri", "mongodb://h", "--out", "/tmp/edge-oxd"],
            &[
                "--uri",
                "mongodb://h",
                "-o",
                "-",
                "--format",
                "mongodump-archive",
            ],
            &[
                "--uri",
                "mongodb://h",
                "--out",
                "dir",
                "--format",
                "mongodump-dir",
                "--gzip",
            ],
            &[
                "--uri=mongodb://h",
                "-q",
                "--db",
                "a",
                "-c",
                "b",
                "--query",
                "{\"x\":1}",
            ],
            &["-h"],
            &["--help"],
            &["--uri", "mongodb://h", "--query", "-h"],
            &[
                "--uri",
                "mongodb://h",
                "--oplog",
                "-j",
                "8",
                "--ns-include",
                "a.*",
            ],
        ] {
            chk("dump", a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
        }
        for a in [
            &["backup.oxd", "--uri", "mongodb://h", "--drop", "-q"][..],
            &["-q", "backup.oxd", "--uri", "mongodb://h"],
            &["--ns-include", "a.*", "dump", "--uri", "mongodb://h", "-h"],
            &["-", "--uri", "mongodb://h", "--write-concern", "majority"],
        ] {
            chk("restore", a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
        }
        assert!(check(&["oxidump".into(), "verify".into(), "--port".into()]).is_ok());
    }
}
