//! Reading any backup: format detection and the [`Source`] every reader implements.
//!
//! A source yields the catalog first, then a stream of [`Chunk`]s: runs of whole
//! documents of one namespace, in stored order, and one [`Chunk::End`] per
//! namespace once its last documents have been delivered. Chunks of different
//! namespaces may interleave.

use std::io;
use std::path::PathBuf;

use crate::catalog::{Catalog, NsStatus, Summary};

/// One step of a [`Source`].
#[derive(Debug)]
pub enum Chunk {
    /// Whole BSON documents of namespace `ns`, concatenated, as stored.
    Docs {
        /// Namespace index in the catalog.
        ns: usize,
        /// The documents' bytes.
        data: Vec<u8>,
        /// How many documents `data` holds.
        count: u64,
    },
    /// Namespace `ns` has no more documents. Sent once for every namespace of the
    /// catalog, views included.
    End {
        /// Namespace index in the catalog.
        ns: usize,
        /// Whether the backup holds all of the namespace's documents.
        status: NsStatus,
    },
}

/// A backup being read, whatever its format.
pub trait Source: Send {
    /// The backup's provenance and namespaces.
    fn catalog(&self) -> &Catalog;

    /// The next chunk, or `None` once every namespace has ended and the input is exhausted.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, SourceError>;

    /// Facts recorded at the end of the backup (available once the source is exhausted).
    fn summary(&self) -> Option<&Summary> {
        None
    }
}

impl SourceError {
    /// Whether the backup itself is damaged or incomplete (exit status 1), as opposed
    /// to not being a backup at all or not being readable (exit status 2).
    pub fn is_damage(&self) -> bool {
        matches!(self, SourceError::Corrupt { .. })
    }
}

/// Error reading a backup. Every variant says where.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The input is not a backup oxidump knows.
    #[error(
        "{0}: not a backup oxidump can read (expected an OXD archive, a mongodump archive, plain or gzipped, or a mongodump directory)"
    )]
    Unrecognized(PathBuf),
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The input is damaged or malformed.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (namespace, frame, offset).
        message: String,
    },
}
