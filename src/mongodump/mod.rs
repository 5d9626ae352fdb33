//! mongodump's own formats: the dump directory and the `--archive` stream, plain or
//! gzipped, read and written byte-compatibly with mongodump/mongorestore 100.x.
//!
//! - [`escape`]: collection file names (Go `url.QueryEscape`, the 238-byte long-name rule);
//! - [`extjson`]: canonical Extended JSON exactly as mongodump's Go driver prints it;
//! - [`metadata`]: `<collection>.metadata.json` (options, indexes, UUID, type);
//! - [`archive`]: the `--archive` stream (magic, prelude, interleaved namespace segments,
//!   CRC-64/XZ per namespace): [`ArchiveReader`] ([`Source`](crate::source::Source)),
//!   [`ArchiveWriter`] ([`Sink`](crate::sink::Sink)) and [`archive::verify`];
//! - [`dir`]: the directory layout (`<db>/<collection>.bson`, `.metadata.json`, `--gzip`,
//!   `oplog.bson`, `prelude.json`): [`DirReader`], [`DirWriter`] and [`dir::verify`].
//!
//! How the shared catalog maps onto these formats:
//!
//! - a time-series collection `X` is one [`NsKind::Timeseries`](crate::catalog::NsKind)
//!   namespace named `X` whose documents are the raw buckets; mongodump stores them as
//!   `system.buckets.X` when the source server is older than 8.3 (or its version is
//!   unknown), as `X` otherwise;
//! - the oplog is the catalog namespace `local.oplog.rs` of kind `Oplog`; an archive names
//!   it `db:""`, `collection:"oplog"`, a directory stores it as `oplog.bson` at the root;
//! - `SourceInfo::tool` is `mongodump <ToolVersion>` for a version number read from a
//!   dump (`tool_version` in an archive, `ToolVersion` in `prelude.json`).
//!
//! Document bytes are never decoded on the data path: only lengths and terminators are
//! checked (and every element with a deep verification). Only headers and metadata are
//! parsed.

pub mod archive;
pub mod dir;
pub mod escape;
pub mod extjson;
pub mod metadata;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use archive::{ArchiveOutput, ArchiveReader, ArchiveWriter};
pub use dir::{DirReader, DirWriter, DirWriterOptions, NsDocReader, PreludeAt};
pub use metadata::{Metadata, MetadataError, parse_metadata};

use crate::catalog::SourceInfo;
use crate::source::SourceError;

/// Error reading a mongodump directory or archive. Every variant says where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error (including a damaged gzip stream).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The bytes are not what the format allows.
    #[error("{}: {}", path.display(), located(*offset, namespace.as_deref(), message))]
    Corrupt {
        /// The file (the archive, or the data file inside a directory).
        path: PathBuf,
        /// Byte offset of the problem (in the decompressed stream for gzipped input).
        offset: Option<u64>,
        /// The namespace concerned, `db.collection`.
        namespace: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A metadata document or file cannot be read.
    #[error("{}: invalid metadata{}: {source}", path.display(), namespace.as_ref().map(|n| format!(" of {n}")).unwrap_or_default())]
    Metadata {
        /// The metadata file (or the archive holding it).
        path: PathBuf,
        /// The namespace concerned.
        namespace: Option<String>,
        /// What is wrong.
        source: MetadataError,
    },
    /// The directory does not have the layout of a dump.
    #[error("{}: {message}", path.display())]
    Layout {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn located(offset: Option<u64>, namespace: Option<&str>, message: &str) -> String {
    let mut s = String::new();
    if let Some(o) = offset {
        s.push_str(&format!("offset {o}"));
    }
    if let Some(ns) = namespace {
        if !s.is_empty() {
            s.push_str(", ");
        }
        s.push_str(&format!("namespace {ns}"));
    }
    if s.is_empty() {
        message.to_string()
    } else {
        format!("{s}: {message}")
    }
}

impl From<Error> for SourceError {
    fn from(e: Error) -> SourceError {
        match e {
            Error::Io { path, source } => SourceError::Io { path, source },
            Error::Corrupt {
                ref path,
                ref offset,
                ref namespace,
                ref message,
            } => SourceError::Corrupt {
                path: path.clone(),
                message: located(*offset, namespace.as_deref(), message),
            },
            Error::Metadata { ref path, .. } | Error::Layout { ref path, .. } => {
                let full = e.to_string();
                let prefix = format!("{}: ", path.display());
                SourceError::Corrupt {
                    path: path.clone(),
                    message: full.strip_prefix(&prefix).unwrap_or(&full).to_string(),
                }
            }
        }
    }
}

/// The two bytes every gzip member starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Wraps a reader in a gzip decoder that reads every member of a multi-member stream
/// (as written by pigz or by concatenating gzip files).
pub fn gunzip<R: Read>(r: R) -> flate2::read::MultiGzDecoder<R> {
    flate2::read::MultiGzDecoder::new(r)
}

/// Parses a server version the way mongo-tools does (`db.StrToVersion`): build
/// suffixes after `-` or `+` are dropped, then exactly three numeric parts.
pub fn parse_server_version(v: &str) -> Option<(u32, u32, u32)> {
    let v = v.split('-').next().unwrap_or(v);
    let v = v.split('+').next().unwrap_or(v);
    let mut parts = v.splitn(3, '.');
    let a = parts.next()?.parse().ok()?;
    let b = parts.next()?.parse().ok()?;
    let c = parts.next()?.parse().ok()?;
    Some((a, b, c))
}

/// Whether a dump of a server of this version stores time-series data under the
/// collection's own name (8.3 and above) rather than under `system.buckets.X`. An
/// unknown or unparsable version counts as older, as in mongodump.
pub fn stores_raw_timeseries(server_version: Option<&str>) -> bool {
    server_version
        .and_then(parse_server_version)
        .is_some_and(|v| v >= (8, 3, 0))
}

/// `SourceInfo::tool` for a tool version read from a dump: `mongodump <version>` when it
/// is a version number, the text as it is otherwise. `None` for an empty version.
pub fn tool_from_version(version: &str) -> Option<String> {
    if version.is_empty() {
        None
    } else if version.starts_with(|c: char| c.is_ascii_digit()) {
        Some(format!("mongodump {version}"))
    } else {
        Some(version.to_string())
    }
}

/// The tool version to write in a dump (`tool_version`, `ToolVersion`): the reverse of
/// [`tool_from_version`], or this crate's name and version when the source says nothing.
pub fn version_for_tool(source: &SourceInfo) -> String {
    match source.tool.as_deref() {
        Some(t) => t.strip_prefix("mongodump ").unwrap_or(t).to_string(),
        None => format!("oxidump {}", env!("CARGO_PKG_VERSION")),
    }
}

/// `SourceInfo::server_version` for a version read from a dump (`""` and `unknown` mean none).
pub fn server_from_version(version: &str) -> Option<String> {
    match version {
        "" | "unknown" => None,
        v => Some(v.to_string()),
    }
}

/// Byte counter shared between a reader and whoever reports progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counter(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Counter {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A reader that counts the bytes read through it into a [`Counter`].
pub(crate) struct Counting<R> {
    pub(crate) inner: R,
    pub(crate) counter: Counter,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.add(n as u64);
        Ok(n)
    }
}

/// Reads up to `n` bytes of `path` (fewer at end of file).
pub(crate) fn read_prefix(path: &Path, n: usize) -> io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

#[cfg(test)]
mod fixture_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions() {
        assert_eq!(parse_server_version("8.2.11"), Some((8, 2, 11)));
        assert_eq!(parse_server_version("8.3.0-rc1"), Some((8, 3, 0)));
        assert_eq!(parse_server_version("8.3"), None);
        assert!(!stores_raw_timeseries(Some("8.2.11")));
        assert!(stores_raw_timeseries(Some("8.3.0")));
        assert!(stores_raw_timeseries(Some("10.0.1")));
        assert!(!stores_raw_timeseries(Some("unknown")));
        assert!(!stores_raw_timeseries(None));
    }

    #[test]
    fn tool_versions_round_trip() {
        let t = tool_from_version("100.18.0-21-g8fa3cfc82");
        assert_eq!(t.as_deref(), Some("mongodump 100.18.0-21-g8fa3cfc82"));
        let src = SourceInfo {
            tool: t,
            ..SourceInfo::default()
        };
        assert_eq!(version_for_tool(&src), "100.18.0-21-g8fa3cfc82");
        assert_eq!(
            tool_from_version("oxidump 0.1.0").as_deref(),
            Some("oxidump 0.1.0")
        );
        assert_eq!(tool_from_version(""), None);
    }

    #[test]
    fn errors_say_where() {
        let e = Error::Corrupt {
            path: "a.archive".into(),
            offset: Some(12),
            namespace: Some("db.c".into()),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.archive: offset 12, namespace db.c: bad");
        let s: SourceError = e.into();
        assert_eq!(s.to_string(), "a.archive: offset 12, namespace db.c: bad");
        let m = Error::Metadata {
            path: "d/c.metadata.json".into(),
            namespace: Some("d.c".into()),
            source: MetadataError {
                message: "not valid JSON".into(),
            },
        };
        let s: SourceError = m.into();
        assert_eq!(
            s.to_string(),
            "d/c.metadata.json: invalid metadata of d.c: not valid JSON"
        );
    }
}
