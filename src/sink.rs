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
use crate::oxd::ranges::RangePlan;

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

    /// Says how namespace `ns` is split into `_id` ranges read apart, before any of
    /// its documents. Formats that do not record it ignore it.
    fn begin_ranges(&mut self, ns: usize, plan: &RangePlan) -> Result<(), SinkError> {
        let _ = (ns, plan);
        Ok(())
    }

    /// Appends whole documents of range `range` of namespace `ns` (see
    /// [`Sink::begin_ranges`]). Formats that do not record ranges take them as
    /// [`Sink::write_docs`] does.
    fn write_range_docs(
        &mut self,
        ns: usize,
        range: u32,
        data: Vec<u8>,
        count: u64,
    ) -> Result<(), SinkError> {
        let _ = range;
        self.write_docs(ns, data, count)
    }

    /// Declares that range `range` of namespace `ns` has no more documents.
    fn end_range(&mut self, ns: usize, range: u32) -> Result<(), SinkError> {
        let _ = (ns, range);
        Ok(())
    }

    /// Puts everything given so far into the output (on disk for a file).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Stops for good without completing the output. A format whose partial output a
    /// later run can continue (`dump --resume`) keeps what was written, under the
    /// temporary name that marks it as the partial output of an interrupted run, and
    /// says where; the others remove it, as dropping them does.
    fn suspend(self: Box<Self>) -> Result<Option<PathBuf>, SinkError> {
        Ok(None)
    }
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
