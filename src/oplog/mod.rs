//! The oplog as data: parsing entries, applying update deltas, and replaying entries
//! onto a server with ordinary commands (never `applyOps`).
//!
//! - [`entry`]: one entry of mongod or SecantusDB, parsed and classified;
//! - [`diff`]: update deltas (`$v: 2` trees, SecantusDB's flat form, `$v: 1`);
//! - [`apply`]: entries turned into commands, ordered per document, in parallel
//!   across documents, transactions kept whole.

pub mod apply;
pub mod diff;
pub mod entry;
pub mod replay;
