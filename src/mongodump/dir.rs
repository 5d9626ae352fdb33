//! The mongodump directory layout: reading ([`DirReader`]), writing ([`DirWriter`]) and
//! offline checking ([`verify`]).
//!
//! ```text
//! <root>/prelude.json                        {"ServerVersion":"…","ToolVersion":"…"}
//! <root>/oplog.bson                          the oplog slice (--oplog)
//! <root>/<db>/<stem>.bson                    raw documents, one after another
//! <root>/<db>/<stem>.metadata.json           options, indexes, uuid, collectionName, type
//! <root>/<db>/system.buckets.<stem>.bson     time-series buckets (sources below 8.3)
//! <root>/<db>/$admin.system.users.bson       --dumpDbUsersAndRoles (no metadata)
//! ```
//!
//! The stem is the escaped collection name (see [`escape`](crate::mongodump::escape)).
//! With `--gzip` every file is gzipped on its own and gets a `.gz` suffix, except
//! `oplog.bson`, which keeps its name. With `--db X`, `prelude.json` goes to
//! `<root>/X/prelude.json`. A view has only its metadata file.
//!
//! The reader accepts a dump root (database directories inside) or a single database
//! directory, plain or gzipped files (detected from their content, so `oplog.bson`
//! works either way), `*.bin` as BSON, and data files without metadata (plain
//! collections). Its catalog is sorted by database and collection name, the oplog last.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::catalog::{Catalog, Namespace, NsKind, NsStatus, Summary};
use crate::docs::{self, DocIter, MAX_DOC_LEN, MAX_USER_DOC_LEN, MIN_DOC_LEN};
use crate::mongodump::escape::{collection_stem, is_truncated_stem, query_unescape};
use crate::mongodump::extjson::write_string;
use crate::mongodump::metadata::{self, ADMIN_PREFIX, has_metadata, parse_metadata};
use crate::mongodump::{
    Counter, Counting, Error, GZIP_MAGIC, gunzip, read_prefix, server_from_version,
    stores_raw_timeseries, tool_from_version, version_for_tool,
};
use crate::output::AtomicDir;
use crate::sink::{Sink, SinkError};
use crate::source::{Chunk, Source, SourceError};
use crate::verify::{Finding, NsTotals, Report, Severity, VerifyOptions};

/// Name of the prelude file.
pub const PRELUDE_FILE: &str = "prelude.json";
/// Name of the oplog file at the root of a dump.
pub const OPLOG_FILE: &str = "oplog.bson";
/// The per-database users, roles and version collections of `--dumpDbUsersAndRoles`,
/// whose files mongodump names without escaping the `$`.
pub const ADMIN_FILES: [&str; 3] = [
    "$admin.system.users",
    "$admin.system.roles",
    "$admin.system.version",
];
/// About how many bytes of documents a chunk holds.
pub const CHUNK_TARGET: usize = 4 * 1024 * 1024;

/// Where `prelude.json` is (reader) or goes (writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreludeAt {
    /// At the root of the dump (a dump of several databases).
    #[default]
    Root,
    /// In the database directory (`mongodump --db X`); the catalog must hold one database.
    DbDir,
    /// Not written.
    Omit,
}

// ---------------------------------------------------------------------------------------
// Scanning
// ---------------------------------------------------------------------------------------

/// A data file and whether its content is gzipped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DataFile {
    path: PathBuf,
    gzip: bool,
}

/// Something wrong or unusual in the layout.
#[derive(Debug, Clone)]
struct Problem {
    severity: Severity,
    code: &'static str,
    path: PathBuf,
    namespace: Option<String>,
    message: String,
}

impl Problem {
    fn error(code: &'static str, path: &Path, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Error,
            code,
            path: path.to_path_buf(),
            namespace: None,
            message: message.into(),
        }
    }
    fn warning(code: &'static str, path: &Path, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, path, message)
        }
    }
    fn ns(mut self, ns: String) -> Problem {
        self.namespace = Some(ns);
        self
    }
    fn into_finding(self) -> Finding {
        let mut f = match self.severity {
            Severity::Error => Finding::error(self.code, self.message),
            Severity::Warning => Finding::warning(self.code, self.message),
        };
        f.file = Some(self.path);
        f.namespace = self.namespace;
        f
    }
    fn into_error(self) -> Error {
        Error::Layout {
            path: self.path,
            message: match self.namespace {
                Some(ns) => format!("namespace {ns}: {}", self.message),
                None => self.message,
            },
        }
    }
}

struct Scan {
    root: PathBuf,
    catalog: Catalog,
    data: Vec<Option<DataFile>>,
    metadata: Vec<Option<PathBuf>>,
    prelude: Option<(PathBuf, PreludeAt)>,
    problems: Vec<Problem>,
    /// Set when the layout could not be read at all.
    fatal: bool,
}

#[derive(Default)]
struct DbFiles {
    /// stem → metadata file (path, named .gz)
    meta: BTreeMap<String, (PathBuf, bool)>,
    /// stem → data file (path, named .gz)
    data: BTreeMap<String, (PathBuf, bool)>,
}

enum FileKind {
    Metadata(String, bool),
    Data(String, bool),
    Prelude,
    Other,
}

fn classify(name: &str) -> FileKind {
    if name == PRELUDE_FILE || name == "prelude.json.gz" {
        FileKind::Prelude
    } else if let Some(stem) = name.strip_suffix(".metadata.json.gz") {
        FileKind::Metadata(stem.to_string(), true)
    } else if let Some(stem) = name.strip_suffix(".metadata.json") {
        FileKind::Metadata(stem.to_string(), false)
    } else if let Some(stem) = name.strip_suffix(".bson.gz") {
        FileKind::Data(stem.to_string(), true)
    } else if let Some(stem) = name.strip_suffix(".bson") {
        FileKind::Data(stem.to_string(), false)
    } else if let Some(stem) = name.strip_suffix(".bin") {
        FileKind::Data(stem.to_string(), false)
    } else {
        FileKind::Other
    }
}

fn list_dir(dir: &Path) -> io::Result<Vec<(String, PathBuf, bool)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let is_dir = e.file_type()?.is_dir() || (e.file_type()?.is_symlink() && path.is_dir());
        let name = e.file_name().to_string_lossy().into_owned();
        out.push((name, path, is_dir));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Whether a plain-named file holds gzip: its first bytes are the gzip magic and they
/// are not the start of a plausible document run.
fn sniff_data_gzip(path: &Path) -> io::Result<bool> {
    let head = read_prefix(path, 4)?;
    if !head.starts_with(&GZIP_MAGIC) {
        return Ok(false);
    }
    if head.len() < 4 {
        return Ok(true);
    }
    let len = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let size = fs::metadata(path)?.len();
    if len < MIN_DOC_LEN as i32 || len as usize > MAX_DOC_LEN || len as u64 > size {
        return Ok(true);
    }
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(len as u64 - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] != 0)
}

/// Opens a file for reading, decompressing it when `gzip`.
fn open_file(
    path: &Path,
    gzip: bool,
    counter: Option<&Counter>,
) -> io::Result<Box<dyn Read + Send>> {
    let f = File::open(path)?;
    let raw: Box<dyn Read + Send> = match counter {
        Some(c) => Box::new(Counting {
            inner: f,
            counter: c.clone(),
        }),
        None => Box::new(f),
    };
    Ok(if gzip {
        Box::new(gunzip(BufReader::with_capacity(256 * 1024, raw)))
    } else {
        raw
    })
}

/// Reads a whole small file (metadata, prelude), gunzipping when it is gzip.
fn read_small(path: &Path, named_gz: bool) -> Result<Vec<u8>, String> {
    let head = read_prefix(path, 2).map_err(|e| e.to_string())?;
    let gzip = head.starts_with(&GZIP_MAGIC);
    if named_gz && !gzip {
        return Err("named .gz but not gzip-compressed".into());
    }
    let r = open_file(path, gzip, None).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    // Metadata files are small; refuse anything absurd rather than exhaust memory.
    let limit = 256 * 1024 * 1024;
    r.take(limit + 1).read_to_end(&mut out).map_err(|e| {
        if gzip {
            format!("damaged gzip stream: {e}")
        } else {
            e.to_string()
        }
    })?;
    if out.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(out)
}

fn is_db_file(kind: &FileKind, name: &str) -> bool {
    match kind {
        FileKind::Metadata(..) => true,
        FileKind::Data(..) => name != OPLOG_FILE && name != "oplog.bson.gz",
        _ => false,
    }
}

fn scan(path: &Path) -> Scan {
    let mut s = Scan {
        root: path.to_path_buf(),
        catalog: Catalog::default(),
        data: Vec::new(),
        metadata: Vec::new(),
        prelude: None,
        problems: Vec::new(),
        fatal: false,
    };
    let top = match fs::metadata(path) {
        Ok(m) if m.is_dir() => match list_dir(path) {
            Ok(t) => t,
            Err(e) => {
                s.problems
                    .push(Problem::error("dir-io", path, format!("cannot list: {e}")));
                s.fatal = true;
                return s;
            }
        },
        Ok(_) => {
            s.problems.push(Problem::error(
                "dir-layout",
                path,
                "not a directory (a mongodump dump is a directory)",
            ));
            s.fatal = true;
            return s;
        }
        Err(e) => {
            s.problems
                .push(Problem::error("dir-io", path, e.to_string()));
            s.fatal = true;
            return s;
        }
    };
    let single_db = top
        .iter()
        .any(|(name, _, is_dir)| !is_dir && is_db_file(&classify(name), name));
    let mut namespaces: Vec<(Namespace, Option<DataFile>, Option<PathBuf>)> = Vec::new();
    let mut db_dirs: Vec<(String, PathBuf)> = Vec::new();
    if single_db {
        match path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_os_string()))
        {
            Some(n) => match n.into_string() {
                Ok(db) => db_dirs.push((db, path.to_path_buf())),
                Err(_) => s.problems.push(Problem::error(
                    "dir-name",
                    path,
                    "the database directory's name is not UTF-8",
                )),
            },
            None => s.problems.push(Problem::error(
                "dir-name",
                path,
                "cannot tell the database name of this directory",
            )),
        }
    } else {
        for (name, p, is_dir) in &top {
            if *is_dir {
                if name.starts_with('.') {
                    continue;
                }
                if p.file_name().and_then(|n| n.to_str()).is_none() {
                    s.problems
                        .push(Problem::error("dir-name", p, "directory name is not UTF-8"));
                    continue;
                }
                db_dirs.push((name.clone(), p.clone()));
            } else if name == OPLOG_FILE || name == "oplog.bson.gz" {
                let gzip = if name.ends_with(".gz") {
                    true
                } else {
                    match sniff_data_gzip(p) {
                        Ok(g) => g,
                        Err(e) => {
                            s.problems.push(Problem::error("dir-io", p, e.to_string()));
                            continue;
                        }
                    }
                };
                if namespaces.iter().any(|(n, ..)| n.kind == NsKind::Oplog) {
                    s.problems.push(Problem::error(
                        "dir-duplicate",
                        p,
                        "both oplog.bson and oplog.bson.gz are present",
                    ));
                    continue;
                }
                namespaces.push((
                    metadata::oplog_namespace(),
                    Some(DataFile {
                        path: p.clone(),
                        gzip,
                    }),
                    None,
                ));
            } else if matches!(classify(name), FileKind::Prelude) {
                if s.prelude.is_none() {
                    s.prelude = Some((p.clone(), PreludeAt::Root));
                }
            } else if !name.starts_with('.') {
                s.problems.push(Problem::warning(
                    "dir-unknown-file",
                    p,
                    "not part of a mongodump layout; ignored",
                ));
            }
        }
    }
    for (db, dir) in &db_dirs {
        scan_db(&mut s, db, dir, single_db, &mut namespaces);
    }
    if single_db && s.prelude.is_none() {
        // `mongorestore --dir <db dir>` also looks in the parent directory.
        if let Some(parent) = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            for name in [PRELUDE_FILE, "prelude.json.gz"] {
                let p = parent.join(name);
                if p.is_file() {
                    s.prelude = Some((p, PreludeAt::Root));
                    break;
                }
            }
        }
    }
    if let Some((p, _)) = s.prelude.clone() {
        read_prelude_file(&mut s, &p);
    }
    namespaces.sort_by(|a, b| {
        let oa = a.0.kind == NsKind::Oplog;
        let ob = b.0.kind == NsKind::Oplog;
        oa.cmp(&ob)
            .then_with(|| a.0.db.as_bytes().cmp(b.0.db.as_bytes()))
            .then_with(|| a.0.collection.as_bytes().cmp(b.0.collection.as_bytes()))
    });
    let mut seen = std::collections::HashSet::new();
    for (ns, data, meta) in &namespaces {
        if !seen.insert((ns.db.as_str(), ns.collection.as_str())) {
            let p = meta.clone().or(data.as_ref().map(|d| d.path.clone()));
            s.problems.push(
                Problem::error(
                    "dir-duplicate",
                    &p.unwrap_or_else(|| path.to_path_buf()),
                    "two sets of files describe the same namespace",
                )
                .ns(ns.full_name()),
            );
        }
    }
    for (ns, data, meta) in namespaces {
        s.catalog.namespaces.push(ns);
        s.data.push(data);
        s.metadata.push(meta);
    }
    s
}

fn scan_db(
    s: &mut Scan,
    db: &str,
    dir: &Path,
    single_db: bool,
    out: &mut Vec<(Namespace, Option<DataFile>, Option<PathBuf>)>,
) {
    let entries = match list_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            s.problems
                .push(Problem::error("dir-io", dir, format!("cannot list: {e}")));
            return;
        }
    };
    let mut files = DbFiles::default();
    for (name, p, is_dir) in entries {
        if is_dir {
            if !name.starts_with('.') {
                s.problems.push(Problem::warning(
                    "dir-unknown-file",
                    &p,
                    "unexpected directory inside a database directory; ignored",
                ));
            }
            continue;
        }
        if p.file_name().and_then(|n| n.to_str()).is_none() {
            s.problems
                .push(Problem::error("dir-name", &p, "file name is not UTF-8"));
            continue;
        }
        match classify(&name) {
            FileKind::Prelude => {
                if s.prelude.is_none() {
                    s.prelude = Some((
                        p,
                        if single_db {
                            PreludeAt::Root
                        } else {
                            PreludeAt::DbDir
                        },
                    ));
                }
            }
            FileKind::Metadata(stem, gz) => {
                if let Some((other, _)) = files.meta.get(&stem) {
                    s.problems.push(Problem::error(
                        "dir-duplicate",
                        &p,
                        format!("{} holds the same collection's metadata", other.display()),
                    ));
                    continue;
                }
                files.meta.insert(stem, (p, gz));
            }
            FileKind::Data(stem, gz) => {
                if let Some((other, _)) = files.data.get(&stem) {
                    s.problems.push(Problem::error(
                        "dir-duplicate",
                        &p,
                        format!("{} holds the same collection's data", other.display()),
                    ));
                    continue;
                }
                files.data.insert(stem, (p, gz));
            }
            FileKind::Other => {
                if !name.starts_with('.') {
                    s.problems.push(Problem::warning(
                        "dir-unknown-file",
                        &p,
                        "not part of a mongodump layout; ignored",
                    ));
                }
            }
        }
    }
    let mut used: Vec<String> = Vec::new();
    for (stem, (mpath, named_gz)) in &files.meta {
        let md = match read_small(mpath, *named_gz)
            .and_then(|b| parse_metadata(&b).map_err(|e| e.message))
        {
            Ok(md) => md,
            Err(m) => {
                s.problems.push(Problem::error(
                    "dir-metadata",
                    mpath,
                    format!("invalid metadata: {m}"),
                ));
                continue;
            }
        };
        let name = if is_truncated_stem(stem) {
            match &md.collection_name {
                Some(n) => n.clone(),
                None => {
                    s.problems.push(Problem::error(
                        "dir-name",
                        mpath,
                        "truncated long-name file without collectionName in its metadata",
                    ));
                    continue;
                }
            }
        } else {
            match query_unescape(stem) {
                Ok(n) => n,
                Err(e) => {
                    s.problems
                        .push(Problem::error("dir-name", mpath, e.to_string()));
                    continue;
                }
            }
        };
        let ns = md.to_namespace(db, &name);
        let mut candidates: Vec<String> = Vec::new();
        match ns.kind {
            NsKind::View => {}
            NsKind::Timeseries => {
                if !is_truncated_stem(stem) {
                    candidates.push(format!("system.buckets.{stem}"));
                }
                candidates.push(collection_stem(&ns.bucket_collection()));
                candidates.push(stem.clone());
            }
            _ => candidates.push(stem.clone()),
        }
        let found = candidates
            .iter()
            .find(|c| files.data.contains_key(c.as_str()) && !used.contains(c))
            .cloned();
        let data = match found {
            Some(c) => {
                used.push(c.clone());
                let (dpath, gz) = &files.data[&c];
                match data_file(dpath, *gz) {
                    Ok(d) => Some(d),
                    Err(p) => {
                        s.problems.push(p.ns(ns.full_name()));
                        None
                    }
                }
            }
            None => {
                if ns.kind != NsKind::View {
                    s.problems.push(
                        Problem::warning(
                            "dir-missing-data",
                            mpath,
                            "metadata without a data file; the collection is restored empty",
                        )
                        .ns(ns.full_name()),
                    );
                }
                None
            }
        };
        if ns.kind == NsKind::View && files.data.contains_key(stem.as_str()) {
            s.problems.push(
                Problem::warning(
                    "dir-unknown-file",
                    &files.data[stem.as_str()].0,
                    "data file of a view; ignored",
                )
                .ns(ns.full_name()),
            );
            used.push(stem.clone());
        }
        out.push((ns, data, Some(mpath.clone())));
    }
    for (stem, (dpath, gz)) in &files.data {
        if used.contains(stem) {
            continue;
        }
        if is_truncated_stem(stem) {
            s.problems.push(Problem::error(
                "dir-name",
                dpath,
                "truncated long-name data file without a metadata file to give its real name",
            ));
            continue;
        }
        let name = match query_unescape(stem) {
            Ok(n) => n,
            Err(e) => {
                s.problems
                    .push(Problem::error("dir-name", dpath, e.to_string()));
                continue;
            }
        };
        let ns = Namespace::collection(db, &name);
        if !name.starts_with(ADMIN_PREFIX) {
            s.problems.push(
                Problem::warning(
                    "dir-missing-metadata",
                    dpath,
                    "data file without metadata; restored as a plain collection without indexes",
                )
                .ns(ns.full_name()),
            );
        }
        match data_file(dpath, *gz) {
            Ok(d) => out.push((ns, Some(d), None)),
            Err(p) => s.problems.push(p.ns(ns.full_name())),
        }
    }
}

fn data_file(path: &Path, named_gz: bool) -> Result<DataFile, Problem> {
    if named_gz {
        let head =
            read_prefix(path, 2).map_err(|e| Problem::error("dir-io", path, e.to_string()))?;
        if !head.is_empty() && !head.starts_with(&GZIP_MAGIC) {
            return Err(Problem::error(
                "dir-gzip",
                path,
                "named .gz but not gzip-compressed",
            ));
        }
        return Ok(DataFile {
            path: path.to_path_buf(),
            gzip: !head.is_empty(),
        });
    }
    let gzip = sniff_data_gzip(path).map_err(|e| Problem::error("dir-io", path, e.to_string()))?;
    Ok(DataFile {
        path: path.to_path_buf(),
        gzip,
    })
}

fn read_prelude_file(s: &mut Scan, p: &Path) {
    let named_gz = p.to_string_lossy().ends_with(".gz");
    let parsed = read_small(p, named_gz).and_then(|b| {
        let v: Value = serde_json::from_slice(&b).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(m) = v else {
            return Err("not a JSON object".to_string());
        };
        let field = |k: &str| -> Result<Option<String>, String> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{k} is not a string")),
            }
        };
        Ok((field("ServerVersion")?, field("ToolVersion")?))
    });
    match parsed {
        Ok((server, tool)) => {
            s.catalog.source.server_version = server.as_deref().and_then(server_from_version);
            s.catalog.source.tool = tool.as_deref().and_then(tool_from_version);
        }
        Err(m) => s.problems.push(Problem::error(
            "dir-prelude",
            p,
            format!("invalid prelude: {m}"),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------

/// The documents of one namespace of a dump directory, read in chunks of whole
/// documents (about [`CHUNK_TARGET`] bytes, a larger document alone).
pub struct NsDocReader {
    r: Option<BufReader<Box<dyn Read + Send>>>,
    path: PathBuf,
    namespace: String,
    offset: u64,
    max: usize,
    pending: Option<[u8; 4]>,
}

impl NsDocReader {
    fn empty(namespace: String) -> NsDocReader {
        NsDocReader {
            r: None,
            path: PathBuf::new(),
            namespace,
            offset: 0,
            max: MAX_DOC_LEN,
            pending: None,
        }
    }

    /// Bytes of the (decompressed) file consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The data file, or an empty path for a namespace without one.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, offset: u64, message: String) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            offset: Some(offset),
            namespace: Some(self.namespace.clone()),
            message,
        }
    }

    fn io(&self, e: io::Error) -> Error {
        if matches!(
            e.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
        ) {
            self.corrupt(self.offset, format!("damaged gzip stream: {e}"))
        } else {
            Error::Io {
                path: self.path.clone(),
                source: e,
            }
        }
    }

    /// The next run of whole documents and how many there are; `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<(Vec<u8>, u64)>, Error> {
        let mut data = Vec::new();
        let mut count = 0u64;
        while let Some(r) = self.r.as_mut() {
            let at = self.offset;
            let first = match self.pending.take() {
                Some(b) => b,
                None => {
                    let mut b = [0u8; 4];
                    let mut got = 0;
                    while got < 4 {
                        match r.read(&mut b[got..]) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                self.r = None;
                                return Err(self.io(e));
                            }
                        }
                    }
                    self.offset += got as u64;
                    if got == 0 {
                        self.r = None;
                        break;
                    }
                    if got < 4 {
                        self.r = None;
                        return Err(self.corrupt(
                            at,
                            format!("{got} trailing byte(s) are not a whole document"),
                        ));
                    }
                    b
                }
            };
            let len = i32::from_le_bytes(first);
            if len < MIN_DOC_LEN as i32 || len as i64 > self.max as i64 {
                self.r = None;
                return Err(self.corrupt(
                    at,
                    format!("document declares length {len}, outside 5..={}", self.max),
                ));
            }
            let len = len as usize;
            if !data.is_empty() && data.len() + len > CHUNK_TARGET {
                self.pending = Some(first);
                break;
            }
            let doc_at = self.offset - 4;
            let before = data.len();
            data.extend_from_slice(&first);
            let want = (len - 4) as u64;
            let res = (&mut *r).take(want).read_to_end(&mut data);
            let got = (data.len() - before - 4) as u64;
            self.offset += got;
            if let Err(e) = res {
                self.r = None;
                return Err(self.io(e));
            }
            if got < want {
                self.r = None;
                return Err(self.corrupt(
                    doc_at,
                    format!(
                        "the file ends inside a document: it declares {len} bytes, only {} remain",
                        got + 4
                    ),
                ));
            }
            if data.last() != Some(&0) {
                self.r = None;
                return Err(self.corrupt(
                    doc_at,
                    format!("document (length {len}) does not end with 0x00"),
                ));
            }
            count += 1;
        }
        Ok(if count == 0 {
            None
        } else {
            Some((data, count))
        })
    }
}

/// Reads a mongodump dump directory as a [`Source`], namespace after namespace.
pub struct DirReader {
    scan: Scan,
    cursor: usize,
    current: Option<NsDocReader>,
    failed: Option<String>,
}

impl DirReader {
    /// Scans the dump at `path` (a dump root or a single database directory) and reads
    /// every metadata file. Warnings (a data file without metadata, metadata without
    /// data, unknown files) do not stop it; anything unreadable does.
    pub fn open(path: &Path) -> Result<DirReader, Error> {
        let s = scan(path);
        if let Some(p) = s
            .problems
            .iter()
            .find(|p| p.severity == Severity::Error)
            .cloned()
        {
            return Err(p.into_error());
        }
        Ok(DirReader {
            scan: s,
            cursor: 0,
            current: None,
            failed: None,
        })
    }

    /// The directory that was opened.
    pub fn root(&self) -> &Path {
        &self.scan.root
    }

    /// The namespaces, sorted by database and collection name, the oplog last.
    pub fn catalog(&self) -> &Catalog {
        &self.scan.catalog
    }

    /// The data file of namespace `ns`, if it has one.
    pub fn data_path(&self, ns: usize) -> Option<&Path> {
        self.scan.data.get(ns)?.as_ref().map(|d| d.path.as_path())
    }

    /// The metadata file of namespace `ns`, if it has one.
    pub fn metadata_path(&self, ns: usize) -> Option<&Path> {
        self.scan.metadata.get(ns)?.as_deref()
    }

    /// Where `prelude.json` was found, if anywhere.
    pub fn prelude_at(&self) -> Option<PreludeAt> {
        self.scan.prelude.as_ref().map(|p| p.1)
    }

    /// Whether the data files are gzipped (`--gzip`): true when any of them is.
    pub fn is_gzip(&self) -> bool {
        self.scan.data.iter().flatten().any(|d| d.gzip)
    }

    /// Warnings found while scanning (unknown files, data without metadata, …).
    pub fn warnings(&self) -> Vec<Finding> {
        self.scan
            .problems
            .iter()
            .cloned()
            .map(Problem::into_finding)
            .collect()
    }

    /// Opens the documents of namespace `ns` on their own (for example to read several
    /// namespaces in parallel). A namespace without a data file reads as empty.
    pub fn open_namespace(&self, ns: usize) -> Result<NsDocReader, Error> {
        let Some(n) = self.scan.catalog.namespaces.get(ns) else {
            return Err(Error::Layout {
                path: self.scan.root.clone(),
                message: format!("namespace index {ns} is not in the catalog"),
            });
        };
        let Some(d) = &self.scan.data[ns] else {
            return Ok(NsDocReader::empty(n.full_name()));
        };
        let r = open_file(&d.path, d.gzip, None).map_err(|source| Error::Io {
            path: d.path.clone(),
            source,
        })?;
        Ok(NsDocReader {
            r: Some(BufReader::with_capacity(256 * 1024, r)),
            path: d.path.clone(),
            namespace: n.full_name(),
            offset: 0,
            max: MAX_DOC_LEN,
            pending: None,
        })
    }
}

impl Source for DirReader {
    fn catalog(&self) -> &Catalog {
        &self.scan.catalog
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, SourceError> {
        if let Some(msg) = &self.failed {
            return Err(SourceError::Corrupt {
                path: self.scan.root.clone(),
                message: format!("reading stopped after an earlier error: {msg}"),
            });
        }
        if self.cursor >= self.scan.catalog.namespaces.len() {
            return Ok(None);
        }
        let ns = self.cursor;
        if self.current.is_none() {
            match self.open_namespace(ns) {
                Ok(r) => self.current = Some(r),
                Err(e) => {
                    self.failed = Some(e.to_string());
                    return Err(e.into());
                }
            }
        }
        let reader = self.current.as_mut().expect("opened above");
        match reader.next_chunk() {
            Ok(Some((data, count))) => Ok(Some(Chunk::Docs { ns, data, count })),
            Ok(None) => {
                self.current = None;
                self.cursor += 1;
                Ok(Some(Chunk::End {
                    ns,
                    status: NsStatus::Complete,
                }))
            }
            Err(e) => {
                // Stop here: nothing more is read after an error, and the error repeats.
                self.current = None;
                self.failed = Some(e.to_string());
                Err(e.into())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

/// Options of a [`DirWriter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirWriterOptions {
    /// Gzip every file (`--gzip`): `.gz` names, except `oplog.bson`.
    pub gzip: bool,
    /// Where `prelude.json` goes.
    pub prelude: PreludeAt,
    /// Merge into an existing directory, as mongodump does: the files written replace
    /// those of the same name, other files are left alone.
    pub merge: bool,
}

enum FileOut {
    Plain(BufWriter<File>),
    Gzip(crate::gzip::ParallelGzip<BufWriter<File>>),
}

impl FileOut {
    fn create(path: &Path, gzip: bool) -> io::Result<FileOut> {
        let f = BufWriter::with_capacity(1 << 20, File::create(path)?);
        Ok(if gzip {
            FileOut::Gzip(crate::gzip::ParallelGzip::new(f))
        } else {
            FileOut::Plain(f)
        })
    }

    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            FileOut::Plain(w) => w.write_all(b),
            FileOut::Gzip(w) => w.write_all(b),
        }
    }

    fn close(self) -> io::Result<()> {
        let w = match self {
            FileOut::Plain(w) => w,
            FileOut::Gzip(g) => g.finish()?,
        };
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
    }
}

struct NsFile {
    full: String,
    /// Data file, relative to the root (none for views).
    data: Option<PathBuf>,
    out: Option<FileOut>,
    ended: bool,
}

/// Writes a mongodump dump directory as a [`Sink`]: the directory is built under a
/// temporary name and appears under its final name only when [`Sink::finish`] succeeds.
///
/// Metadata files are written by [`Sink::begin`]; each data file is opened on its
/// namespace's first documents (several may be open at once) and closed (flushed and
/// synced) by [`Sink::end_namespace`]; a collection without documents gets an empty
/// file. `prelude.json` is written last.
pub struct DirWriter {
    dir: Option<AtomicDir>,
    opts: DirWriterOptions,
    begun: bool,
    ns: Vec<NsFile>,
    prelude: Option<(PathBuf, String)>,
}

impl DirWriter {
    /// Starts building the dump directory `dest` (refused if it exists and is not
    /// empty, unless `opts.merge`).
    pub fn create(dest: &Path, opts: DirWriterOptions) -> Result<DirWriter, SinkError> {
        let dir = if opts.merge {
            AtomicDir::create_merging(dest)?
        } else {
            AtomicDir::create(dest)?
        };
        Ok(DirWriter {
            dir: Some(dir),
            opts,
            begun: false,
            ns: Vec::new(),
            prelude: None,
        })
    }

    fn root(&self) -> Result<&Path, SinkError> {
        self.dir
            .as_ref()
            .map(AtomicDir::path)
            .ok_or_else(|| SinkError::Misuse("dump directory already committed".into()))
    }

    fn gz(&self, name: String) -> String {
        if self.opts.gzip { name + ".gz" } else { name }
    }

    fn write_small(&self, rel: &Path, content: &[u8]) -> Result<(), SinkError> {
        let path = self.root()?.join(rel);
        let io = |source| SinkError::Io {
            path: rel.to_path_buf(),
            source,
        };
        let mut f = FileOut::create(&path, self.opts.gzip).map_err(io)?;
        f.write_all(content).map_err(io)?;
        f.close().map_err(io)
    }

    fn check_ns(&self, ns: usize) -> Result<(), SinkError> {
        if !self.begun {
            return Err(SinkError::Misuse("documents before begin".into()));
        }
        match self.ns.get(ns) {
            None => Err(SinkError::Misuse(format!(
                "namespace index {ns} is not in the catalog"
            ))),
            Some(n) if n.ended => Err(SinkError::Misuse(format!(
                "namespace {} used after its end",
                n.full
            ))),
            Some(_) => Ok(()),
        }
    }
}

fn check_db_name(db: &str) -> Result<(), SinkError> {
    if db.is_empty() || db == "." || db == ".." || db.contains(['/', '\\', '\0']) {
        return Err(SinkError::Unsupported(format!(
            "database name {db:?} cannot be a directory name"
        )));
    }
    Ok(())
}

/// `prelude.json` as mongodump writes it (Go `encoding/json`, compact).
pub fn prelude_json(server_version: &str, tool_version: &str) -> String {
    let mut s = String::from("{\"ServerVersion\":");
    write_string(&mut s, server_version, true);
    s.push_str(",\"ToolVersion\":");
    write_string(&mut s, tool_version, true);
    s.push('}');
    s
}

impl Sink for DirWriter {
    fn begin(&mut self, catalog: &Catalog) -> Result<(), SinkError> {
        if self.begun {
            return Err(SinkError::Misuse("begin called twice".into()));
        }
        let raw_ts = stores_raw_timeseries(catalog.source.server_version.as_deref());
        let mut taken: HashMap<PathBuf, String> = HashMap::new();
        let mut dbs: Vec<&str> = Vec::new();
        let mut files: Vec<NsFile> = Vec::new();
        let mut metadata_files: Vec<(PathBuf, String)> = Vec::new();
        for ns in &catalog.namespaces {
            let full = ns.full_name();
            let mut claim = |rel: PathBuf| -> Result<PathBuf, SinkError> {
                if let Some(other) = taken.insert(rel.clone(), full.clone()) {
                    return Err(SinkError::Unsupported(format!(
                        "{full} and {other} would both be written to {}",
                        rel.display()
                    )));
                }
                Ok(rel)
            };
            if ns.kind == NsKind::Oplog {
                let rel = claim(PathBuf::from(OPLOG_FILE))?;
                files.push(NsFile {
                    full,
                    data: Some(rel),
                    out: None,
                    ended: false,
                });
                continue;
            }
            check_db_name(&ns.db)?;
            if !dbs.contains(&ns.db.as_str()) {
                dbs.push(&ns.db);
            }
            let stem_of = |name: &str| {
                // mongodump names these three files literally (`$` unescaped).
                if ADMIN_FILES.contains(&name) {
                    name.to_string()
                } else {
                    collection_stem(name)
                }
            };
            let db_dir = PathBuf::from(&ns.db);
            if has_metadata(ns) {
                let rel = claim(
                    db_dir.join(self.gz(format!("{}.metadata.json", stem_of(&ns.collection)))),
                )?;
                metadata_files.push((rel, metadata::metadata_json(ns)));
            }
            let data = if ns.has_data() {
                let coll = if ns.kind == NsKind::Timeseries && !raw_ts {
                    ns.bucket_collection()
                } else {
                    ns.collection.clone()
                };
                Some(claim(
                    db_dir.join(self.gz(format!("{}.bson", stem_of(&coll)))),
                )?)
            } else {
                None
            };
            files.push(NsFile {
                full,
                data,
                out: None,
                ended: false,
            });
        }
        let prelude_rel = match self.opts.prelude {
            PreludeAt::Omit => None,
            PreludeAt::Root => Some(PathBuf::from(self.gz(PRELUDE_FILE.to_string()))),
            PreludeAt::DbDir => match dbs.as_slice() {
                [db] => Some(PathBuf::from(db).join(self.gz(PRELUDE_FILE.to_string()))),
                _ => {
                    return Err(SinkError::Unsupported(format!(
                        "prelude.json can go into the database directory only for a dump of one database, not {}",
                        dbs.len()
                    )));
                }
            },
        };
        let root = self.root()?.to_path_buf();
        for db in &dbs {
            let p = root.join(db);
            fs::create_dir_all(&p).map_err(|source| SinkError::Io {
                path: PathBuf::from(db),
                source,
            })?;
        }
        for (rel, text) in &metadata_files {
            self.write_small(rel, text.as_bytes())?;
        }
        self.prelude = prelude_rel.map(|rel| {
            let server = catalog
                .source
                .server_version
                .clone()
                .unwrap_or_else(|| "unknown".into());
            (
                rel,
                prelude_json(&server, &version_for_tool(&catalog.source)),
            )
        });
        self.ns = files;
        self.begun = true;
        Ok(())
    }

    fn write_docs(&mut self, ns: usize, data: Vec<u8>, count: u64) -> Result<(), SinkError> {
        self.check_ns(ns)?;
        let n = &self.ns[ns];
        let Some(rel) = n.data.clone() else {
            return Err(SinkError::Unsupported(format!(
                "{} is a view and cannot hold documents",
                n.full
            )));
        };
        let mut seen = 0u64;
        for doc in DocIter::new(&data) {
            doc.map_err(|e| SinkError::Misuse(format!("{}: {e}", n.full)))?;
            seen += 1;
        }
        if seen != count {
            return Err(SinkError::Misuse(format!(
                "{}: {count} documents announced, {seen} in the data",
                n.full
            )));
        }
        let io = |source| SinkError::Io {
            path: rel.clone(),
            source,
        };
        if self.ns[ns].out.is_none() {
            let path = self.root()?.join(&rel);
            self.ns[ns].out = Some(FileOut::create(&path, self.opts.gzip).map_err(io)?);
        }
        if let Some(out) = self.ns[ns].out.as_mut() {
            out.write_all(&data).map_err(io)?;
        }
        Ok(())
    }

    fn end_namespace(&mut self, ns: usize, _status: &NsStatus) -> Result<(), SinkError> {
        self.check_ns(ns)?;
        let n = &mut self.ns[ns];
        n.ended = true;
        let Some(rel) = n.data.clone() else {
            return Ok(());
        };
        let io = |source| SinkError::Io {
            path: rel.clone(),
            source,
        };
        let out = match self.ns[ns].out.take() {
            Some(o) => o,
            None => {
                let path = self.root()?.join(&rel);
                FileOut::create(&path, self.opts.gzip).map_err(io)?
            }
        };
        out.close().map_err(io)
    }

    fn finish(mut self: Box<Self>, _summary: &Summary) -> Result<(), SinkError> {
        if !self.begun {
            return Err(SinkError::Misuse("finish before begin".into()));
        }
        let open: Vec<&str> = self
            .ns
            .iter()
            .filter(|n| !n.ended)
            .map(|n| n.full.as_str())
            .collect();
        if !open.is_empty() {
            return Err(SinkError::Misuse(format!(
                "finish with {} namespace(s) not ended: {}",
                open.len(),
                open.join(", ")
            )));
        }
        if let Some((rel, text)) = self.prelude.take() {
            self.write_small(&rel, text.as_bytes())?;
        }
        let dir = self
            .dir
            .take()
            .ok_or_else(|| SinkError::Misuse("finish called twice".into()))?;
        dir.commit()?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Checker
// ---------------------------------------------------------------------------------------

/// Checks the dump directory at `path`: its layout (names, metadata, pairing of data
/// and metadata files), the framing of every data file (the first break of each file is
/// reported with its offset), gzip streams and, with `opts.deep`, every document's
/// content. `progress` receives the number of bytes read from disk so far, about every
/// MiB and at the end.
pub fn verify(path: &Path, opts: &VerifyOptions, progress: &mut dyn FnMut(u64)) -> Report {
    let mut report = Report::new(path, "mongodump-dir");
    verify_into(path, opts, &mut report, progress);
    report
}

/// Like [`verify`], into a report whose path and format the caller has set.
pub fn verify_into(
    path: &Path,
    opts: &VerifyOptions,
    report: &mut Report,
    progress: &mut dyn FnMut(u64),
) {
    let s = scan(path);
    for p in s.problems.iter().cloned() {
        report.push(p.into_finding());
    }
    if s.fatal {
        progress(0);
        return;
    }
    let counter = Counter::default();
    let mut last = 0u64;
    let mut complete = true;
    for (i, ns) in s.catalog.namespaces.iter().enumerate() {
        let mut totals = NsTotals {
            namespace: ns.full_name(),
            ..NsTotals::default()
        };
        if let Some(d) = &s.data[i] {
            let max = if ns.kind == NsKind::Oplog {
                MAX_DOC_LEN
            } else {
                MAX_USER_DOC_LEN
            };
            let mut tick = |n: u64| {
                if n >= last + (1 << 20) {
                    last = n;
                    progress(n);
                }
            };
            if !check_file(d, ns, max, opts, &counter, &mut totals, report, &mut tick) {
                complete = false;
            }
        }
        report.namespaces.push(totals);
    }
    report.complete = complete && !s.problems.iter().any(|p| p.severity == Severity::Error);
    progress(counter.get());
}

/// Checks one data file; returns whether it was read to a clean end.
#[allow(clippy::too_many_arguments)]
fn check_file(
    d: &DataFile,
    ns: &Namespace,
    max_user: usize,
    opts: &VerifyOptions,
    counter: &Counter,
    totals: &mut NsTotals,
    report: &mut Report,
    tick: &mut dyn FnMut(u64),
) -> bool {
    let finding = |code: &'static str, offset: Option<u64>, msg: String| {
        let mut f = Finding::error(code, msg).file(&d.path).ns(ns.full_name());
        f.offset = offset;
        f
    };
    let r = match open_file(&d.path, d.gzip, Some(counter)) {
        Ok(r) => r,
        Err(e) => {
            report.push(finding("dir-io", None, format!("cannot open: {e}")));
            return false;
        }
    };
    let mut r = BufReader::with_capacity(256 * 1024, r);
    let mut offset = 0u64;
    let mut doc = Vec::new();
    loop {
        tick(counter.get());
        let at = offset;
        let mut b = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match r.read(&mut b[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    report.push(io_finding(e, d, ns, at + got as u64));
                    return false;
                }
            }
        }
        offset += got as u64;
        if got == 0 {
            return true;
        }
        if got < 4 {
            report.push(finding(
                "doc-framing",
                Some(at),
                format!("{got} trailing byte(s) at the end of the file are not a whole document"),
            ));
            return false;
        }
        let len = i32::from_le_bytes(b);
        if len < MIN_DOC_LEN as i32 || len as i64 > MAX_DOC_LEN as i64 {
            report.push(finding(
                "doc-framing",
                Some(at),
                format!("document declares length {len}, outside 5..={MAX_DOC_LEN}"),
            ));
            return false;
        }
        let len = len as usize;
        if len > max_user {
            report.push(
                Finding::warning(
                    "doc-size",
                    format!("document of {len} bytes, larger than the server accepts ({max_user})"),
                )
                .file(&d.path)
                .ns(ns.full_name())
                .offset(at),
            );
        }
        doc.clear();
        doc.extend_from_slice(&b);
        let want = (len - 4) as u64;
        let res = (&mut r).take(want).read_to_end(&mut doc);
        let got = (doc.len() - 4) as u64;
        offset += got;
        if let Err(e) = res {
            report.push(io_finding(e, d, ns, offset));
            return false;
        }
        if got < want {
            report.push(finding(
                "doc-framing",
                Some(at),
                format!(
                    "the file ends inside a document: it declares {len} bytes, only {} remain",
                    got + 4
                ),
            ));
            return false;
        }
        if doc[len - 1] != 0 {
            report.push(finding(
                "doc-framing",
                Some(at),
                format!("document (length {len}) does not end with 0x00"),
            ));
        } else if opts.deep
            && let Err(e) = docs::deep_check(&doc)
        {
            report.push(finding("doc-deep", Some(at), e.to_string()));
        }
        totals.documents += 1;
        totals.bytes += len as u64;
    }
}

fn io_finding(e: io::Error, d: &DataFile, ns: &Namespace, offset: u64) -> Finding {
    let (code, msg) = if d.gzip
        && matches!(
            e.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
        ) {
        ("dir-gzip", format!("damaged gzip stream: {e}"))
    } else {
        ("dir-io", format!("read error: {e}"))
    };
    Finding::error(code, msg)
        .file(&d.path)
        .ns(ns.full_name())
        .offset(offset)
}

#[cfg(test)]
mod tests;
