//! The oplog as data: parsing entries, applying update deltas, and replaying entries
//! onto a server with ordinary commands (never `applyOps`).
//!
//! - [`entry`]: one entry of mongod or SecantusDB, parsed and classified;
//! - [`diff`]: update deltas (`$v: 2` trees, SecantusDB's flat form, `$v: 1`);
//! - [`apply`]: entries turned into commands, ordered per document, in parallel
//!   across documents, transactions kept whole;
//! - [`replay`]: the inputs of a replay, its boundary and the checks made before
//!   anything is written;
//! - [`capture`]: the window of one dump, read from a live server.

pub mod apply;
pub mod capture;
pub mod diff;
pub mod entry;
pub mod follow;
pub mod replay;
pub mod segment;
