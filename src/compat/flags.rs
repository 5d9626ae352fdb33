//! Every flag of mongo-tools 100.x `mongodump` and `mongorestore` (visible and hidden),
//! what oxidump does with it, and the README table made from this list.
//!
//! The list is the single source of truth: the parser ([`super::args`]) accepts
//! exactly these spellings, the translators read them by their long name, and
//! [`markdown_table`] renders the README's table, which a test compares.

/// The two front ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `mongodump`.
    Mongodump,
    /// `mongorestore`.
    Mongorestore,
}

impl Tool {
    /// The program name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Mongodump => "mongodump",
            Tool::Mongorestore => "mongorestore",
        }
    }

    /// The tool a program name stands for (`mongodump`, `mongorestore.exe`, …).
    pub fn from_program(name: &str) -> Option<Tool> {
        let stem = name.strip_suffix(".exe").unwrap_or(name);
        match stem {
            "mongodump" => Some(Tool::Mongodump),
            "mongorestore" => Some(Tool::Mongorestore),
            _ => None,
        }
    }
}

/// How a flag takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// No value (`--gzip`).
    Switch,
    /// A value, as `--db x`, `--db=x`, `-d x` or `-dx`.
    Value,
    /// An optional value, given only as `--archive=FILE`; alone it means `-`.
    Optional,
    /// `-v`, `-vvv`, `--verbose`, `--verbose=N`: a level.
    Level,
}

/// What oxidump does with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Implemented with mongo-tools' meaning; the text says how.
    Supported(&'static str),
    /// Refused with this reason: the command fails before connecting.
    Refused(&'static str),
}

/// Which front ends have a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Both.
    Both,
    /// `mongodump` only.
    Dump,
    /// `mongorestore` only.
    Restore,
}

/// One flag.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// Long name, without the dashes.
    pub long: &'static str,
    /// Short name.
    pub short: Option<char>,
    /// How it takes a value.
    pub arity: Arity,
    /// Which front ends have it.
    pub scope: Scope,
    /// Hidden from mongo-tools' `--help`.
    pub hidden: bool,
    /// What oxidump does with it.
    pub status: Status,
}

impl Flag {
    /// Whether `tool` has this flag.
    pub fn applies_to(&self, tool: Tool) -> bool {
        matches!(
            (self.scope, tool),
            (Scope::Both, _)
                | (Scope::Dump, Tool::Mongodump)
                | (Scope::Restore, Tool::Mongorestore)
        )
    }

    /// `--long` and `-s`, as printed in messages and tables.
    pub fn spellings(&self) -> String {
        let long = match self.arity {
            Arity::Optional => format!("--{}[=VALUE]", self.long),
            Arity::Level => format!("--{}[=N]", self.long),
            _ => format!("--{}", self.long),
        };
        match self.short {
            Some(c) => format!("-{c}, {long}"),
            None => long,
        }
    }
}

const fn flag(long: &'static str, arity: Arity, scope: Scope, status: Status) -> Flag {
    Flag {
        long,
        short: None,
        arity,
        scope,
        hidden: false,
        status,
    }
}

const fn short(f: Flag, c: char) -> Flag {
    Flag {
        short: Some(c),
        ..f
    }
}

const fn hidden(f: Flag) -> Flag {
    Flag { hidden: true, ..f }
}

use Arity::{Level, Optional, Switch, Value};
use Scope::{Both, Dump, Restore};
use Status::{Refused, Supported};

const INTERNAL: &str =
    "a mongo-tools internal for its own test and tuning; oxidump has no equivalent";

/// Every flag, in the order of mongo-tools' `--help` (general, verbosity, connection,
/// TLS, authentication, Kerberos, namespace, URI, then each tool's own groups), then
/// oxidump's own.
pub const FLAGS: &[Flag] = &[
    flag(
        "help",
        Switch,
        Both,
        Supported("prints this front end's usage"),
    ),
    flag(
        "version",
        Switch,
        Both,
        Supported("prints oxidump's version"),
    ),
    flag(
        "config",
        Value,
        Both,
        Supported(
            "YAML file with `password`, `uri` and `sslPEMKeyPassword`; flags on the command line win",
        ),
    ),
    short(
        flag(
            "verbose",
            Level,
            Both,
            Supported("adds detail: the native options used and one line per namespace"),
        ),
        'v',
    ),
    flag(
        "quiet",
        Switch,
        Both,
        Supported("silences progress lines only; errors and the summary are always printed"),
    ),
    short(
        flag(
            "host",
            Value,
            Both,
            Supported("`host[:port]`, `set/host1,host2`; becomes the connection string's hosts"),
        ),
        'h',
    ),
    flag(
        "port",
        Value,
        Both,
        Supported("added to every host without a port"),
    ),
    hidden(flag(
        "dialTimeout",
        Value,
        Both,
        Supported("seconds; `connectTimeoutMS` of the connection string"),
    )),
    hidden(flag(
        "socketTimeout",
        Value,
        Both,
        Supported(
            "`0` (the default) is accepted; any other value is refused: the driver has no socket timeout",
        ),
    )),
    hidden(flag(
        "TCPKeepAliveSeconds",
        Value,
        Both,
        Refused("the driver keeps its own TCP keep-alive interval and has no setting for it"),
    )),
    hidden(flag(
        "serverSelectionTimeout",
        Value,
        Both,
        Supported("seconds; `serverSelectionTimeoutMS` of the connection string"),
    )),
    hidden(flag(
        "compressors",
        Value,
        Both,
        Supported("`compressors` of the connection string (`none`: no compression)"),
    )),
    hidden(flag("numThreads", Value, Both, Refused(INTERNAL))),
    hidden(flag("failpoints", Value, Both, Refused(INTERNAL))),
    hidden(flag("trace", Switch, Both, Refused(INTERNAL))),
    flag("ssl", Switch, Both, Supported("`tls=true`")),
    flag("sslCAFile", Value, Both, Supported("`tlsCAFile`")),
    flag(
        "sslPEMKeyFile",
        Value,
        Both,
        Supported("`tlsCertificateKeyFile`"),
    ),
    flag(
        "sslPEMKeyPassword",
        Value,
        Both,
        Supported(
            "`tlsCertificateKeyFilePassword` (an encrypted PKCS#8 key, `ENCRYPTED PRIVATE KEY`)",
        ),
    ),
    flag("sslCRLFile", Value, Both, Refused(crate::connect::NO_CRL)),
    hidden(flag(
        "sslAllowInvalidCertificates",
        Switch,
        Both,
        Supported("`tlsAllowInvalidCertificates=true`"),
    )),
    hidden(flag(
        "sslAllowInvalidHostnames",
        Switch,
        Both,
        Supported("`tlsAllowInvalidHostnames=true`"),
    )),
    flag(
        "sslFIPSMode",
        Switch,
        Both,
        Refused("oxidump's TLS is rustls, not OpenSSL: there is no OpenSSL FIPS mode to switch on"),
    ),
    flag("tlsInsecure", Switch, Both, Supported("`tlsInsecure=true`")),
    short(
        flag(
            "username",
            Value,
            Both,
            Supported("the connection string's user"),
        ),
        'u',
    ),
    short(
        flag(
            "password",
            Value,
            Both,
            Supported(
                "the connection string's password; prompted for when `-u` is given without it",
            ),
        ),
        'p',
    ),
    flag(
        "authenticationDatabase",
        Value,
        Both,
        Supported("`authSource` (default as mongo-tools: `--db`, else `admin`)"),
    ),
    flag(
        "authenticationMechanism",
        Value,
        Both,
        Supported("`authMechanism`"),
    ),
    flag(
        "awsSessionToken",
        Value,
        Both,
        Supported("`authMechanismProperties=AWS_SESSION_TOKEN:…` (MONGODB-AWS)"),
    ),
    flag(
        "gssapiServiceName",
        Value,
        Both,
        Supported(
            "`authMechanismProperties=SERVICE_NAME:…` (GSSAPI: needs oxidump built with `--features gssapi`)",
        ),
    ),
    flag(
        "gssapiHostName",
        Value,
        Both,
        Supported(
            "`authMechanismProperties=SERVICE_HOST:…` (GSSAPI: needs oxidump built with `--features gssapi`)",
        ),
    ),
    short(
        flag(
            "db",
            Value,
            Both,
            Supported("one database (also taken from the connection string's path)"),
        ),
        'd',
    ),
    short(
        flag(
            "collection",
            Value,
            Both,
            Supported("one collection (needs `--db`)"),
        ),
        'c',
    ),
    flag(
        "uri",
        Value,
        Both,
        Supported("the connection string; also accepted as a positional argument"),
    ),
    // mongodump: query options
    short(
        flag(
            "query",
            Value,
            Dump,
            Supported("Extended JSON filter of the one collection (needs `-c`)"),
        ),
        'q',
    ),
    flag(
        "queryFile",
        Value,
        Dump,
        Supported("the filter read from a file"),
    ),
    flag(
        "readPreference",
        Value,
        Dump,
        Supported("a mode, or a JSON document with `mode`, `tagSets`, `maxStalenessSeconds`"),
    ),
    flag(
        "forceTableScan",
        Switch,
        Dump,
        Supported("each collection is read by one natural-order scan (no `_id` ranges)"),
    ),
    hidden(flag(
        "internalOnlySourceWritesDoneBarrier",
        Value,
        Dump,
        Refused(INTERNAL),
    )),
    // mongodump: output options
    short(
        flag(
            "out",
            Value,
            Dump,
            Supported(
                "output directory (default `dump`), merged into when it exists; `-`: one collection's BSON to standard output",
            ),
        ),
        'o',
    ),
    flag(
        "gzip",
        Switch,
        Both,
        Supported(
            "gzip each file or the whole archive; on restore the input's compression is also detected",
        ),
    ),
    flag(
        "oplog",
        Switch,
        Dump,
        Supported("captures the oplog written during the dump (`oplog.bson`); full dumps only"),
    ),
    flag(
        "archive",
        Optional,
        Both,
        Supported(
            "one archive file; alone or `=-` for standard output/input; a directory gets `archive` inside",
        ),
    ),
    flag(
        "dumpDbUsersAndRoles",
        Switch,
        Dump,
        Supported(
            "with `-d X`: also X's users and roles, as `X/$admin.system.users.bson` and `X/$admin.system.roles.bson`",
        ),
    ),
    flag(
        "excludeCollection",
        Value,
        Both,
        Supported("skips the collection (repeatable)"),
    ),
    flag(
        "excludeCollectionsWithPrefix",
        Value,
        Both,
        Supported("skips collections with the prefix (repeatable)"),
    ),
    short(
        flag(
            "numParallelCollections",
            Value,
            Both,
            Supported("collections (dump: cursors) at once; default 4"),
        ),
        'j',
    ),
    flag(
        "viewsAsCollections",
        Switch,
        Dump,
        Supported("only views are dumped, each as a collection of the documents it produces"),
    ),
    // mongorestore: namespace options
    flag(
        "nsExclude",
        Value,
        Restore,
        Supported("skips matching namespaces (repeatable)"),
    ),
    flag(
        "nsInclude",
        Value,
        Restore,
        Supported("only matching namespaces (repeatable)"),
    ),
    flag(
        "nsFrom",
        Value,
        Restore,
        Supported("rename source pattern, paired with `--nsTo`"),
    ),
    flag(
        "nsTo",
        Value,
        Restore,
        Supported("rename target pattern, paired with `--nsFrom`"),
    ),
    // mongorestore: input options
    flag(
        "objcheck",
        Switch,
        Restore,
        Supported(
            "every document is checked (as `oxidump verify --deep`) before anything is inserted",
        ),
    ),
    flag(
        "oplogReplay",
        Switch,
        Restore,
        Supported(
            "replays the dump's `oplog.bson` (or an archive file's oplog, or an OXD archive's captured window) after the data, without applyOps",
        ),
    ),
    flag(
        "oplogLimit",
        Value,
        Restore,
        Supported(
            "`<seconds>[:ordinal]`: only entries before it are replayed (exclusive, as mongorestore)",
        ),
    ),
    flag(
        "oplogFile",
        Value,
        Restore,
        Supported("the oplog to replay instead of the dump's `oplog.bson`"),
    ),
    flag(
        "restoreDbUsersAndRoles",
        Switch,
        Restore,
        Supported(
            "with `-d X`: also X's users and roles (credentials kept through `_mergeAuthzCollections`; see the README for servers without it)",
        ),
    ),
    flag(
        "dir",
        Value,
        Restore,
        Supported(
            "input directory or file (same as the positional argument); `-`: BSON on standard input",
        ),
    ),
    // mongorestore: restore options
    flag(
        "drop",
        Switch,
        Restore,
        Supported("drops each collection being restored just before restoring it"),
    ),
    flag(
        "dryRun",
        Switch,
        Restore,
        Supported("prints the plan and writes nothing"),
    ),
    flag(
        "writeConcern",
        Value,
        Restore,
        Supported("`majority` (default), a number, or a document such as `{w: 2, j: true}`"),
    ),
    flag(
        "noIndexRestore",
        Switch,
        Restore,
        Supported("secondary indexes are not built"),
    ),
    flag(
        "convertLegacyIndexes",
        Switch,
        Restore,
        Supported(
            "what the target refuses in legacy index specs is converted and reported (oxidump always does)",
        ),
    ),
    flag(
        "noOptionsRestore",
        Switch,
        Restore,
        Supported("collections are created without their dumped options"),
    ),
    flag(
        "keepIndexVersion",
        Switch,
        Restore,
        Supported("index specs keep their dumped version `v` (by default the target chooses)"),
    ),
    flag(
        "maintainInsertionOrder",
        Switch,
        Restore,
        Supported(
            "one inserter per collection, ordered batches, stops at the first refused document",
        ),
    ),
    flag(
        "numInsertionWorkersPerCollection",
        Value,
        Restore,
        Supported("concurrent inserters per collection"),
    ),
    flag(
        "stopOnError",
        Switch,
        Restore,
        Supported("stops at the first duplicate-key or validation error"),
    ),
    flag(
        "bypassDocumentValidation",
        Switch,
        Restore,
        Supported("inserts skip document validation"),
    ),
    flag(
        "preserveUUID",
        Switch,
        Restore,
        Supported("collections keep their dumped UUIDs (needs `--drop`)"),
    ),
    hidden(flag(
        "tempUsersColl",
        Value,
        Restore,
        Supported(
            "the `admin` collection users pass through on their way to `_mergeAuthzCollections`",
        ),
    )),
    hidden(flag(
        "tempRolesColl",
        Value,
        Restore,
        Supported(
            "the `admin` collection roles pass through on their way to `_mergeAuthzCollections`",
        ),
    )),
    hidden(flag(
        "batchSize",
        Value,
        Restore,
        Refused("oxidump sizes insert batches by bytes, from the server's limits"),
    )),
    flag(
        "fixDottedHashIndex",
        Switch,
        Restore,
        Supported("hashed indexes on dotted fields are built as ascending indexes"),
    ),
    // oxidump's own
    flag(
        "usersWithoutCredentials",
        Switch,
        Restore,
        Supported(
            "oxidump's own: on a server that cannot take stored credentials, create the restored users with random passwords that must be reset (otherwise they are refused, each named)",
        ),
    ),
    flag(
        "oxd",
        Switch,
        Dump,
        Supported(
            "oxidump's own: write an OXD archive (to `--archive`/`--out` FILE, default `dump.oxd`) instead of mongodump's layout",
        ),
    ),
];

/// The flags of `tool`.
pub fn flags_for(tool: Tool) -> impl Iterator<Item = &'static Flag> {
    FLAGS.iter().filter(move |f| f.applies_to(tool))
}

/// The flag of `tool` with this long name.
pub fn by_long(tool: Tool, long: &str) -> Option<&'static Flag> {
    flags_for(tool).find(|f| f.long == long)
}

/// The flag of `tool` with this short name.
pub fn by_short(tool: Tool, c: char) -> Option<&'static Flag> {
    flags_for(tool).find(|f| f.short == Some(c))
}

/// Start and end markers of the generated table in the README.
pub const TABLE_BEGIN: &str = "<!-- compat-flags:begin -->";
/// See [`TABLE_BEGIN`].
pub const TABLE_END: &str = "<!-- compat-flags:end -->";

/// The README's table: one row per flag, its spellings, which tools have it and what
/// oxidump does with it.
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| Flag | mongodump | mongorestore | oxidump |\n| --- | :---: | :---: | --- |\n",
    );
    for f in FLAGS {
        let mark = |t: Tool| {
            if f.applies_to(t) {
                if f.hidden { "hidden" } else { "yes" }
            } else {
                ""
            }
        };
        let what = match f.status {
            Status::Supported(how) => format!("supported: {how}"),
            Status::Refused(why) => format!("**refused**: {why}"),
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            f.spellings(),
            mark(Tool::Mongodump),
            mark(Tool::Mongorestore),
            what.replace('|', "\\|")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_tool() {
        for tool in [Tool::Mongodump, Tool::Mongorestore] {
            let mut longs = std::collections::HashSet::new();
            let mut shorts = std::collections::HashSet::new();
            for f in flags_for(tool) {
                assert!(longs.insert(f.long), "{} twice", f.long);
                if let Some(c) = f.short {
                    assert!(shorts.insert(c), "-{c} twice");
                }
            }
        }
    }

    #[test]
    fn visible_counts_match_mongo_tools() {
        // mongo-tools 100.18 shows 37 flags in `mongodump --help` and 52 in
        // `mongorestore --help`; oxidump adds `--oxd` to mongodump and
        // `--usersWithoutCredentials` to mongorestore.
        let visible = |t: Tool| {
            flags_for(t)
                .filter(|f| !f.hidden && !["oxd", "usersWithoutCredentials"].contains(&f.long))
                .count()
        };
        assert_eq!(visible(Tool::Mongodump), 37);
        assert_eq!(visible(Tool::Mongorestore), 52);
    }

    const README: &str = include_str!("../../README.md");

    fn readme_table() -> &'static str {
        let start = README
            .find(TABLE_BEGIN)
            .expect("README has the table's begin marker")
            + TABLE_BEGIN.len();
        let end = README
            .find(TABLE_END)
            .expect("README has the table's end marker");
        README[start..end].trim()
    }

    /// `OXIDUMP_BLESS=1 cargo test --lib compat::flags` rewrites the README's table.
    #[test]
    fn readme_table_is_the_flag_list() {
        let want = markdown_table();
        if std::env::var_os("OXIDUMP_BLESS").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
            let text = std::fs::read_to_string(path).unwrap();
            let start = text.find(TABLE_BEGIN).unwrap() + TABLE_BEGIN.len();
            let end = text.find(TABLE_END).unwrap();
            let new = format!("{}\n{}{}", &text[..start], want, &text[end..]);
            std::fs::write(path, new).unwrap();
            return;
        }
        assert_eq!(
            readme_table(),
            want.trim(),
            "the README's flag table is out of date: run OXIDUMP_BLESS=1 cargo test --lib compat::flags"
        );
    }

    /// Every row of the README's table, read as a user would, against the parser: a
    /// flag marked for a tool is accepted by that tool's parser (and refused when the
    /// row says so), and unknown to the other tool when not marked for it.
    #[test]
    fn readme_table_matches_the_parser() {
        let mut rows = 0;
        for line in readme_table().lines().skip(2) {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 4, "row {line:?}");
            let spellings = cells[0].trim_matches('`');
            let refused = cells[3].starts_with("**refused**");
            assert!(refused || cells[3].starts_with("supported"), "row {line:?}");
            for (tool, cell) in [(Tool::Mongodump, cells[1]), (Tool::Mongorestore, cells[2])] {
                for sp in spellings.split(", ") {
                    let name = sp.split('[').next().unwrap();
                    let takes_value = by_long(tool, name.trim_start_matches('-'))
                        .or_else(|| name.chars().nth(1).and_then(|c| by_short(tool, c)))
                        .is_some_and(|f| f.arity == Arity::Value);
                    let mut args = vec![name.to_string()];
                    if takes_value {
                        args.push("1".into());
                    }
                    let parsed = super::super::args::parse(tool, &args);
                    if cell.is_empty() {
                        assert!(
                            parsed.is_err(),
                            "{name} is not a {} flag but parses",
                            tool.name()
                        );
                        continue;
                    }
                    let parsed = parsed.unwrap_or_else(|e| panic!("{} {name}: {e}", tool.name()));
                    assert_eq!(
                        parsed.refused().is_some(),
                        refused,
                        "{} {name}",
                        tool.name()
                    );
                    rows += 1;
                }
            }
        }
        assert!(rows > 89, "{rows} flag spellings checked");
    }

    /// The flags mongo-tools' option structs declare (`options.go` of `common/options`,
    /// `mongodump` and `mongorestore`, listed in the test fixtures) are exactly the
    /// list's, oxidump's own aside: the same long names for the same tools, with the
    /// same short names.
    #[test]
    fn the_list_is_mongo_tools_options() {
        const OPTIONS: &str = include_str!("../../tests/fixtures/mongo-tools/options-flags.txt");
        const OWN: [&str; 2] = ["oxd", "usersWithoutCredentials"];
        let mut declared = std::collections::BTreeSet::new();
        for line in OPTIONS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let mut it = line.split_whitespace();
            let tool = it.next().and_then(Tool::from_program).expect(line);
            let long = it.next().expect(line);
            let short = it.next().and_then(|s| s.chars().next());
            let f = by_long(tool, long).unwrap_or_else(|| {
                panic!("{} --{long} (mongo-tools) is not in the list", tool.name())
            });
            assert_eq!(f.short, short, "{} --{long}: short name", tool.name());
            declared.insert((tool.name(), long));
        }
        for tool in [Tool::Mongodump, Tool::Mongorestore] {
            for f in flags_for(tool).filter(|f| !OWN.contains(&f.long)) {
                assert!(
                    declared.contains(&(tool.name(), f.long)),
                    "{} --{} is in the list but not in mongo-tools' options",
                    tool.name(),
                    f.long
                );
            }
        }
        assert!(declared.len() > 100, "{} flags read", declared.len());
    }

    #[test]
    fn program_names() {
        assert_eq!(Tool::from_program("mongodump"), Some(Tool::Mongodump));
        assert_eq!(
            Tool::from_program("mongorestore.exe"),
            Some(Tool::Mongorestore)
        );
        assert_eq!(Tool::from_program("oxidump"), None);
    }
}
