//! Writing any backup format: the [`Sink`] every writer implements.
//!
//! A sink receives the catalog, then runs of whole documents per namespace (which
//! may interleave), one end per namespace, and a final [`Sink::finish`] that
//! completes the output and moves it to its final name. A sink dropped without
//! `finish` leaves nothing that looks like a complete backup.

use std::io;
use std::path::PathBuf;

use crate::catalog::{Catalog, NsStatus, Summary};
use crate::output::OutputError;

/// A backup being written, whatever its format.
pub trait Sink: Send {
    /// Starts the output with the backup's catalog. Called once, before any data.
    fn begin(&mut self, catalog: &Catalog) -> Result<(), SinkError>;

    /// Appends whole documents (concatenated BSON, `count` of them) to namespace `ns`.
    fn write_docs(&mut self, ns: usize, data: Vec<u8>, count: u64) -> Result<(), SinkError>;

    /// Declares that namespace `ns` has no more documents. Called once per namespace.
    fn end_namespace(&mut self, ns: usize, status: &NsStatus) -> Result<(), SinkError>;

    /// Completes the output (footers, checksums, rename into place).
    fn finish(self: Box<Self>, summary: &Summary) -> Result<(), SinkError>;
}

/// Error writing a backup.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Creating or committing the output failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The data cannot be represented in the output format.
    #[error("{0}")]
    Unsupported(String),
    /// The writer was used out of order (a bug in the caller).
    #[error("internal: {0}")]
    Misuse(String),
}
