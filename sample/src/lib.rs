//! Sample data for oxidump's demo, tests and benchmarks.
//!
//! - [`dataset`]: a realistic dataset at a given scale (`shop.users`, `shop.orders`,
//!   `shop.blobs`, `logs.events_NNN`, with their indexes), about `scale` GB of BSON;
//! - [`edge`]: a corpus of every BSON type (the deprecated ones included) and every
//!   collection shape (capped, clustered, time-series, validated, collated, views, odd
//!   names, empty, large documents), with users and roles;
//! - [`digest`]: count and sha256 of a collection's documents in any order, and the
//!   comparison of two databases collection by collection;
//! - [`tsfixtures`]: the time-series fixtures of the bucket unpacker's tests, made on a
//!   real server.
//!
//! Everything is deterministic from a seed: the same seed loads the same bytes (except
//! what the server itself adds, such as time-series bucket ids).

pub mod dataset;
pub mod digest;
pub mod edge;
pub mod rng;
pub mod tsfixtures;

/// What can go wrong while loading or reading sample data.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The server refused or failed a command.
    #[error("{what}: {source}")]
    Server {
        /// What was being done, with the namespace.
        what: String,
        /// The driver's error.
        #[source]
        source: mongodb::error::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A document could not be encoded.
    #[error("cannot encode a document of {ns}: {source}")]
    Encode {
        /// The namespace.
        ns: String,
        /// The encoder's error.
        #[source]
        source: bson::error::Error,
    },
}

impl SampleError {
    /// A [`SampleError::Server`] for `what`.
    pub fn server(what: impl Into<String>) -> impl FnOnce(mongodb::error::Error) -> SampleError {
        let what = what.into();
        move |source| SampleError::Server { what, source }
    }
}

/// Result of this crate's operations.
pub type Result<T> = std::result::Result<T, SampleError>;
