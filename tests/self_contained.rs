//! The repository carries everything it needs: nothing in it reads outside itself, and
//! nothing needs Python to set up, demo or test.

use std::fs;
use std::path::{Path, PathBuf};

/// Directories that hold no sources of the project (build output, fuzzing state).
const SKIP_DIRS: [&str; 6] = [
    ".git",
    "target",
    "fuzz/target",
    "fuzz/corpus",
    "fuzz/artifacts",
    "fuzz/coverage",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of the repository outside [`SKIP_DIRS`], with its path relative to the root.
fn files() -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .into_owned();
            if SKIP_DIRS.contains(&rel.as_str()) {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push((rel, path));
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo(), &repo(), &mut out);
    out
}

#[test]
fn nothing_reads_outside_the_repository() {
    // Spelled in two pieces so that this file does not match itself.
    let needle = ["..", "/shared"].concat();
    let mut hits = Vec::new();
    let mut checked = 0;
    for (rel, path) in files() {
        let Ok(text) = fs::read_to_string(&path) else {
            continue; // binary data (fixtures, vectors)
        };
        checked += 1;
        for (n, line) in text.lines().enumerate() {
            if line.contains(&needle) {
                hits.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} text files found under {}",
        repo().display()
    );
    assert!(
        hits.is_empty(),
        "paths that leave the repository:\n{}",
        hits.join("\n")
    );
}

#[test]
fn setup_demo_and_tests_need_no_python() {
    let mut hits = Vec::new();
    // A Rust program starting a Python interpreter (spelled in pieces so that this file
    // does not match itself).
    let spawn = ["\"py", "thon"].concat();
    let python = ["py", "thon"].concat();
    for (rel, path) in files() {
        if rel.ends_with(".py") {
            hits.push(format!("{rel}: a Python program"));
            continue;
        }
        if rel.ends_with(".rs") {
            let text = fs::read_to_string(&path).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                if line.contains(&spawn) {
                    hits.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
            continue;
        }
        // What setting up, the demo and the tests run: the scripts and CI.
        let is_script = rel.starts_with("scripts/") || rel.starts_with(".ci/");
        if !is_script {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or("");
            if code.contains(&python) || code.contains("pip ") {
                hits.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "Python in the setup, demo or test path:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_fixtures_are_inside_the_repository() {
    let manifest = repo().join("tests/fixtures/mongodump-100.18/manifest.json");
    let text =
        fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let value: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    assert!(value.get("edge.types").is_some(), "{text}");
    for form in [
        "dir/edge",
        "dir-gzip/edge",
        "edge.archive",
        "edge.archive.gz",
    ] {
        let path = repo().join("tests/fixtures/mongodump-100.18").join(form);
        assert!(path.exists(), "{} is missing", path.display());
    }
}
