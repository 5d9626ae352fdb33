//! oxidump's integration tests, all in one test binary: one build and one link for the
//! whole suite, and one test server shared by every test (see `common/server.rs`).
//!
//! Tests that need a server call `common::server()`; they use `MONGODB_URI` when it is
//! set, and otherwise a SecantusDB started on demand (`scripts/setup` installs it).

// Not every helper is used by every test module at all times.
#[allow(dead_code, unused_imports)]
mod common;

/// The test server answers, stores documents, and takes the edge-case corpus.
mod server_smoke;

/// Users and roles through dumps and restores on servers with `--auth`: credentials, roles, privileges, renames, refusals.
mod authz;
/// `oxidump mongodump` and `oxidump mongorestore`: mongo-tools command lines, their defaults, symlinked names, native refusals.
mod compat;
/// mongo-tools' own restore fixtures through the mongorestore front end: legacy indexes, key types, users, oplogs, gzip, archives.
mod compat_fixtures;
/// `oxidump test-restore` and `oxidump diff`: restore drills and drift detection.
mod drill;
/// `oxidump dump` against a real server: formats, split reads, filters, --query, --oplog, stdout, credentials, failures.
mod dump;
/// Closed outputs, exit codes, damaged and foreign inputs, interrupted runs.
mod faults;
/// Inputs kept under `fuzz/regressions/` replay through the fuzz targets' entry points without a panic.
mod fuzz_regressions;
/// Oplog replay against a real server: mongod and SecantusDB entries byte-exact, transaction boundaries, a dump taken during writes replayed to its consistent point and later.
mod oplog;
/// The backup repository: `dump --repo`, `oplog follow`, `ls`, `verify` and `restore DIR --until` end to end; every damage to the chain of segments.
mod repo;
/// `oxidump restore` against a real server: round trips, fixtures, renames, safety, damage, duplicates.
mod restore;
/// `restore --resume`: killed at any point and resumed, a restore ends as one uninterrupted run.
mod resume;
/// Round trips over the mongodump fixtures through every format, and convert/cat behaviour around them.
mod roundtrip;
/// The repository stands alone: no path leaves it, no Python is needed, the fixtures are inside.
mod self_contained;
/// TLS with client certificates made by the test: dump and restore, refusals, an encrypted key, tlsCRLFile.
mod tls;
/// Golden OXD vectors (`tests/vectors/`): clean decode, reproducibility, findings of every corrupted variant.
mod vectors;
