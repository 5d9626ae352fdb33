//! oxidump: fast, checksummed MongoDB backups and restores.
//!
//! The crate is organised along the data path:
//!
//! - [`catalog`]: what a backup holds (namespaces, options, indexes), format-neutral;
//! - [`docs`]: cutting runs of raw BSON documents, never decoding them on the hot path;
//! - [`oxd`]: the OXD archive format (`format-spec/oxd-v1.md`): framed, zstd-compressed,
//!   checksummed, streamable, indexed;
//! - [`mongodump`]: mongodump's directory layout and `--archive` stream, plain or gzipped;
//! - [`source`] / [`sink`]: reading and writing any of those formats through one interface;
//! - [`verify`]: offline checking with findings that say what and where;
//! - [`output`]: outputs that appear under their final name only when complete;
//! - [`authz`]: users and roles (`admin.system.users`/`roles`) in a backup and back;
//! - [`compat`]: `mongodump` and `mongorestore` command lines on the same engines.

pub mod authz;
pub mod catalog;
pub mod commands;
pub mod compat;
pub mod connect;
pub mod docs;
pub mod drill;
pub mod dump;
pub mod extjson;
pub mod fault;
pub mod gzip;
pub mod input;
pub mod mongodump;
pub mod nsmatch;
pub mod oplog;
pub mod output;
pub mod oxd;
pub mod pool;
pub mod progress;
pub mod repo;
pub mod restore;
pub mod signals;
pub mod sink;
pub mod source;
pub mod tsbucket;
pub mod verify;
