//! Replays every input kept under `fuzz/regressions/<target>/` through the entry point
//! of that fuzz target: crashes the fuzzer found (each fixed since) and a few inputs
//! that reach deep paths. An input that panics fails the test, naming the file.
//!
//! The entry points are not copied here: `fuzz/src/lib.rs`, the library the fuzz
//! targets call, is compiled into this module as it is (it depends only on oxidump,
//! `bson` and `serde_json`, never on libFuzzer), so a target and its replay always run
//! the same code, and the oxidump library needs no fuzzing module of its own.
//!
//! No server is needed.

use std::panic;
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod entries;

/// A fuzz target's entry point.
type Entry = fn(&[u8]);

/// Each target directory and the entry point its inputs go through.
const TARGETS: [(&str, Entry); 7] = [
    ("oxd_reader", entries::oxd_reader),
    ("oxd_mutate", entries::oxd_mutate),
    ("oxd_roundtrip", entries::oxd_roundtrip),
    ("mongodump_archive", entries::mongodump_archive),
    ("metadata", entries::metadata),
    ("docs", entries::docs),
    ("oplog", entries::oplog),
];

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = regressions().join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    files.sort();
    files
}

/// Runs `entry` on every input of `target`; returns the files that panicked.
fn replay(target: &str, entry: Entry) -> (usize, Vec<String>) {
    let files = inputs(target);
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if panic::catch_unwind(|| entry(&data)).is_err() {
            failed.push(f.display().to_string());
        }
    }
    (files.len(), failed)
}

#[test]
fn fuzz_regressions_replay_without_panicking() {
    let mut failed = Vec::new();
    let mut total = 0;
    for (target, entry) in TARGETS {
        let (n, f) = replay(target, entry);
        total += n;
        failed.extend(f);
    }
    assert!(total > 0, "no input under {}", regressions().display());
    assert!(failed.is_empty(), "inputs that panic: {failed:#?}");
}

#[test]
fn fuzz_regressions_every_directory_is_a_target() {
    let dir = regressions();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let name = e.expect("directory entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name} is not a fuzz target"
        );
    }
}
