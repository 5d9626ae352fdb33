//! Round trips over real mongodump output (`tests/fixtures/mongodump-100.18/`: a
//! directory, a directory of gzipped files, an archive and a gzipped archive, all of the
//! edge-case database) through the `oxidump` binary.
//!
//! Every fixture form is converted to OXD, that OXD to every mongodump form (directory,
//! gzipped directory, archive, gzipped archive), and each of those to OXD again. Every
//! file on the way verifies clean, holds per collection exactly the documents
//! `manifest.json` describes (count and sha256 of the raw bytes, read with `oxidump cat
//! --format bson`), and carries the same catalog: types, options, index specifications
//! in order, UUIDs, as `oxidump ls --json` and the library's sources report them.
//!
//! Also: outputs are never clobbered without `--force`; a conversion that fails leaves
//! nothing behind; `cat --format json` prints canonical Extended JSON, one line per
//! document; `-` reads standard input and writes standard output for the stream formats.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bson::Bson;
use serde_json::{Value, json};

use crate::common::{docs_digest, fixture_path, oxidump, run};

fn fixtures() -> PathBuf {
    fixture_path("mongodump-100.18")
}

/// The four forms of the fixture: file or directory name under `fixtures()`.
const FIXTURE_FORMS: [&str; 4] = ["dir", "dir-gzip", "edge.archive", "edge.archive.gz"];

/// The mongodump forms oxidump writes: output name, `--to`, `--gzip`.
const MONGODUMP_FORMS: [(&str, &str, bool); 4] = [
    ("dir", "mongodump-dir", false),
    ("dir-gzip", "mongodump-dir", true),
    ("archive", "mongodump-archive", false),
    ("archive.gz", "mongodump-archive", true),
];

/// What `manifest.json` promises.
struct Expected {
    /// Namespace to read with `cat` (the buckets for the time-series collection) → (count, sha256).
    data: BTreeMap<String, (u64, String)>,
    /// Views: metadata only.
    views: Vec<String>,
    /// Every namespace a backup of the fixture lists.
    catalog_names: Vec<String>,
}

fn expected() -> Expected {
    let m: Value = serde_json::from_slice(
        &fs::read(fixtures().join("manifest.json")).expect("read manifest.json"),
    )
    .expect("manifest.json is JSON");
    let mut data = BTreeMap::new();
    let mut views = Vec::new();
    let mut catalog_names = Vec::new();
    for (ns, v) in m.as_object().expect("an object") {
        if v["type"] == "view" {
            views.push(ns.clone());
            catalog_names.push(ns.clone());
        } else if ns == "edge.series" {
            // The logical measurement count; a dump holds the buckets (below).
            catalog_names.push(ns.clone());
        } else if ns == "edge.system.views" {
            // Not dumped: views are carried as metadata.
        } else {
            let count = v["count"].as_u64().expect("count");
            let sha = v["sha256"].as_str().expect("sha256").to_string();
            data.insert(ns.clone(), (count, sha));
            if !ns.starts_with("edge.system.buckets.") {
                catalog_names.push(ns.clone());
            }
        }
    }
    catalog_names.sort();
    assert!(data.contains_key("edge.system.buckets.series"));
    Expected {
        data,
        views,
        catalog_names,
    }
}

fn split_docs(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        assert!(b.len() >= 5, "trailing bytes after the documents");
        let n = i32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
        assert!(n >= 5 && n <= b.len(), "document length {n} of {}", b.len());
        out.push(b[..n].to_vec());
        b = &b[n..];
    }
    out
}

/// `oxidump cat --ns ns --format bson` of `path`: the documents' bytes.
fn cat_bson(path: &Path, ns: &str) -> Vec<u8> {
    let out = oxidump()
        .arg("cat")
        .arg(path)
        .args(["--ns", ns, "--format", "bson"])
        .output()
        .expect("run oxidump cat");
    assert!(
        out.status.success(),
        "cat {} --ns {ns}: {}\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every collection of `path` holds what `manifest.json` says; views hold no documents.
fn check_documents(path: &Path, exp: &Expected) {
    for (ns, (count, sha)) in &exp.data {
        let docs = split_docs(&cat_bson(path, ns));
        let (n, digest) = docs_digest(docs);
        assert_eq!(
            (n, &digest),
            (*count, sha),
            "{}: {ns} differs from manifest.json",
            path.display()
        );
    }
    for ns in &exp.views {
        let (_, _, err) = run(oxidump().arg("cat").arg(path).args(["--ns", ns]), 2);
        assert!(err.contains("is a view"), "{}: {err}", path.display());
    }
}

/// One namespace's definition as the library reads it; documents as canonical Extended
/// JSON text, so the comparison sees key order and numeric types.
#[derive(Debug, PartialEq)]
struct NsMeta {
    kind: &'static str,
    options: String,
    indexes: Vec<String>,
    uuid: Option<[u8; 16]>,
}

fn canonical(d: &bson::Document) -> String {
    Bson::Document(d.clone())
        .into_canonical_extjson()
        .to_string()
}

/// The catalog of `path` through `oxidump::commands::open_source`, by namespace name,
/// with the source's tool and server version.
fn library_catalog(path: &Path) -> (BTreeMap<String, NsMeta>, Value) {
    let src = oxidump::commands::open_source(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let cat = src.catalog();
    let map: BTreeMap<String, NsMeta> = cat
        .namespaces
        .iter()
        .map(|n| {
            (
                n.full_name(),
                NsMeta {
                    kind: n.kind.as_str(),
                    options: canonical(&n.options),
                    indexes: n.indexes.iter().map(canonical).collect(),
                    uuid: n.uuid,
                },
            )
        })
        .collect();
    assert_eq!(
        map.len(),
        cat.namespaces.len(),
        "{}: duplicate names",
        path.display()
    );
    let source = json!({
        "tool": cat.source.tool,
        "server_version": cat.source.server_version,
        "fcv": cat.source.fcv,
    });
    (map, source)
}

/// `oxidump ls --json` of `path`: the header fields that must survive a conversion, and
/// per namespace its type, counts, index names and partial flag.
fn listing(path: &Path) -> (Value, BTreeMap<String, Value>) {
    let (_, out, _) = run(oxidump().args(["ls", "--json"]).arg(path), 0);
    let l: Value = serde_json::from_str(&out).expect("ls --json prints JSON");
    let head = json!({
        "complete": l["complete"],
        "tool": l["tool"],
        "server_version": l["server_version"],
        "fcv": l["fcv"],
    });
    let map = l["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().expect("name").to_string(),
                json!({
                    "type": n["type"],
                    "documents": n["documents"],
                    "raw_bytes": n["raw_bytes"],
                    "indexes": n["indexes"],
                    "partial": n["partial"],
                }),
            )
        })
        .collect();
    (head, map)
}

/// What every form must agree on.
struct Reference {
    catalog: BTreeMap<String, NsMeta>,
    source: Value,
    ls_head: Value,
    ls: BTreeMap<String, Value>,
}

/// The reference: the plain directory as mongodump wrote it.
fn reference(exp: &Expected) -> Reference {
    let dir = fixtures().join("dir");
    let (catalog, source) = library_catalog(&dir);
    let (ls_head, ls) = listing(&dir);
    assert_eq!(
        catalog.keys().cloned().collect::<Vec<_>>(),
        exp.catalog_names,
        "the fixture's namespaces"
    );
    assert_eq!(catalog["edge.series"].kind, "timeseries");
    assert_eq!(catalog["edge.v_types"].kind, "view");
    assert!(!catalog.contains_key("edge.system.views"));
    assert_eq!(ls_head["complete"], true);
    Reference {
        catalog,
        source,
        ls_head,
        ls,
    }
}

fn verify_clean(path: &Path) {
    let (_, out, _) = run(oxidump().args(["verify", "--json", "-q"]).arg(path), 0);
    let v: Value = serde_json::from_str(&out).expect("verify --json prints JSON");
    assert_eq!(v[0]["findings"], json!([]), "{}", path.display());
    assert_eq!(v[0]["complete"], true, "{}", path.display());
}

/// `path` verifies clean and holds the fixture's documents and catalog.
fn check_form(path: &Path, exp: &Expected, r: &Reference) {
    verify_clean(path);
    check_documents(path, exp);
    let (catalog, source) = library_catalog(path);
    assert_eq!(catalog, r.catalog, "{}: catalog", path.display());
    assert_eq!(source, r.source, "{}: source", path.display());
    let (head, ls) = listing(path);
    assert_eq!(head, r.ls_head, "{}: ls", path.display());
    assert_eq!(ls, r.ls, "{}: ls namespaces", path.display());
}

fn convert(input: &Path, output: &Path, to: &str, gzip: bool) {
    let mut cmd = oxidump();
    cmd.arg("convert")
        .arg(input)
        .arg(output)
        .args(["--to", to, "-q"]);
    if gzip {
        cmd.arg("--gzip");
    }
    run(&mut cmd, 0);
}

/// Fixture form → OXD → every mongodump form → OXD, checking every step.
fn round_trip(form: &str) {
    let exp = expected();
    let r = reference(&exp);
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = fixtures().join(form);
    check_form(&src, &exp, &r);
    let first = tmp.path().join("first.oxd");
    convert(&src, &first, "oxd", false);
    check_form(&first, &exp, &r);
    for (name, to, gzip) in MONGODUMP_FORMS {
        let mid = tmp.path().join(name);
        convert(&first, &mid, to, gzip);
        check_form(&mid, &exp, &r);
        let back = tmp.path().join(format!("{name}.oxd"));
        convert(&mid, &back, "oxd", false);
        check_form(&back, &exp, &r);
    }
}

#[test]
fn round_trip_from_mongodump_dir() {
    round_trip(FIXTURE_FORMS[0]);
}

#[test]
fn round_trip_from_mongodump_dir_gzip() {
    round_trip(FIXTURE_FORMS[1]);
}

#[test]
fn round_trip_from_mongodump_archive() {
    round_trip(FIXTURE_FORMS[2]);
}

#[test]
fn round_trip_from_mongodump_archive_gzip() {
    round_trip(FIXTURE_FORMS[3]);
}

/// Names in `dir` other than `keep`.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

#[test]
fn convert_never_replaces_an_existing_output_without_force() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = fixtures().join("edge.archive");
    for (name, to, gzip) in [
        ("x.oxd", "oxd", false),
        ("x.archive", "mongodump-archive", false),
        ("x.archive.gz", "mongodump-archive", true),
    ] {
        let out = tmp.path().join(name);
        fs::write(&out, b"precious, not a backup").expect("write");
        let mut cmd = oxidump();
        cmd.arg("convert")
            .arg(&src)
            .arg(&out)
            .args(["--to", to, "-q"]);
        if gzip {
            cmd.arg("--gzip");
        }
        let (_, _, err) = run(&mut cmd, 2);
        assert!(err.contains("already exists"), "{name}: {err}");
        assert_eq!(fs::read(&out).expect("read"), b"precious, not a backup");
        assert_eq!(leftovers(tmp.path(), &[name]), Vec::<String>::new());
        // With --force it is replaced by a complete backup.
        run(cmd.arg("--force"), 0);
        verify_clean(&out);
        assert_eq!(leftovers(tmp.path(), &[name]), Vec::<String>::new());
        fs::remove_file(&out).expect("remove");
    }
    // A directory that holds something is never written into.
    let dir = tmp.path().join("dump");
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("keep.txt"), b"keep").expect("write");
    let (_, _, err) = run(
        oxidump()
            .arg("convert")
            .arg(&src)
            .arg(&dir)
            .args(["--to", "mongodump-dir", "-q"]),
        2,
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(leftovers(&dir, &[]), ["keep.txt"]);
    assert_eq!(fs::read(dir.join("keep.txt")).expect("read"), b"keep");
    assert_eq!(leftovers(tmp.path(), &["dump"]), Vec::<String>::new());
}

#[test]
fn failed_convert_leaves_no_output_and_no_temporary() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let inputs = tmp.path().join("in");
    fs::create_dir(&inputs).expect("mkdir");
    // Inputs cut in the middle of the 1 MiB document of edge.types.
    let archive = fs::read(fixtures().join("edge.archive")).expect("read");
    let cut_archive = inputs.join("cut.archive");
    fs::write(&cut_archive, &archive[..archive.len() / 2]).expect("write");
    let gz = fs::read(fixtures().join("edge.archive.gz")).expect("read");
    let cut_gz = inputs.join("cut.archive.gz");
    fs::write(&cut_gz, &gz[..gz.len() / 2]).expect("write");
    let oxd = inputs.join("whole.oxd");
    convert(&fixtures().join("edge.archive"), &oxd, "oxd", false);
    let whole = fs::read(&oxd).expect("read");
    let cut_oxd = inputs.join("cut.oxd");
    fs::write(&cut_oxd, &whole[..whole.len() / 2]).expect("write");
    let cut_dir = inputs.join("cut-dir");
    convert(
        &fixtures().join("edge.archive"),
        &cut_dir,
        "mongodump-dir",
        false,
    );
    let types = cut_dir.join("edge/types.bson");
    let t = fs::read(&types).expect("read types.bson");
    fs::write(&types, &t[..t.len() / 2]).expect("write");

    for input in [&cut_archive, &cut_gz, &cut_oxd, &cut_dir] {
        for (name, to, gzip) in [
            ("out.oxd", "oxd", false),
            ("out.archive", "mongodump-archive", false),
            ("out.archive.gz", "mongodump-archive", true),
            ("out-dir", "mongodump-dir", false),
            ("out-dir-gz", "mongodump-dir", true),
        ] {
            let outdir = tmp.path().join("out");
            fs::create_dir(&outdir).expect("mkdir");
            let mut cmd = oxidump();
            cmd.arg("convert")
                .arg(input)
                .arg(outdir.join(name))
                .args(["--to", to, "-q"]);
            if gzip {
                cmd.arg("--gzip");
            }
            // The input is damaged (cut): exit status 1.
            let (_, _, err) = run(&mut cmd, 1);
            assert!(!err.is_empty(), "{} -> {name}: no message", input.display());
            assert_eq!(
                leftovers(&outdir, &[]),
                Vec::<String>::new(),
                "{} -> {name} left something behind",
                input.display()
            );
            fs::remove_dir(&outdir).expect("remove the empty output directory");
        }
    }
}

#[test]
fn cat_json_prints_one_canonical_extended_json_line_per_document() {
    let exp = expected();
    let tmp = tempfile::tempdir().expect("temp dir");
    let oxd = tmp.path().join("edge.oxd");
    convert(&fixtures().join("dir"), &oxd, "oxd", false);
    for path in [oxd, fixtures().join("edge.archive.gz")] {
        for (ns, (count, _)) in &exp.data {
            let docs = split_docs(&cat_bson(&path, ns));
            let out = oxidump()
                .arg("cat")
                .arg(&path)
                .args(["--ns", ns, "--format", "json"])
                .output()
                .expect("run cat");
            assert!(out.status.success(), "{ns}: {out:?}");
            let text = String::from_utf8(out.stdout).expect("UTF-8");
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{ns}: last line unterminated"
            );
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len() as u64, *count, "{}: {ns}", path.display());
            for (line, doc) in lines.iter().zip(&docs) {
                let mut want = String::new();
                oxidump::extjson::render(doc, &mut want).expect("render");
                assert_eq!(*line, want, "{ns}");
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{ns}: not JSON ({e}): {line}"));
                assert!(v.is_object(), "{ns}: {line}");
            }
        }
    }
    // Canonical, not relaxed: numbers keep their BSON type.
    let text = String::from_utf8(
        oxidump()
            .arg("cat")
            .arg(fixtures().join("edge.archive"))
            .args(["--ns", "edge.capped", "--format", "json"])
            .output()
            .expect("run cat")
            .stdout,
    )
    .expect("UTF-8");
    let first = text.lines().next().expect("a document");
    assert!(first.contains("{\"$number"), "{first}");
}

/// Runs `cmd` with `stdin` as standard input and standard output written to `stdout`.
fn run_piped(cmd: &mut Command, stdin: Option<&Path>, stdout: Option<&Path>) -> (i32, String) {
    if let Some(p) = stdin {
        cmd.stdin(Stdio::from(File::open(p).expect("open stdin")));
    }
    if let Some(p) = stdout {
        cmd.stdout(Stdio::from(File::create(p).expect("create stdout")));
    }
    let out = cmd.stderr(Stdio::piped()).output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dash_reads_standard_input_and_writes_standard_output() {
    let exp = expected();
    let r = reference(&exp);
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = |n: &str| tmp.path().join(n);
    let oxd = t("from-dir.oxd");
    convert(&fixtures().join("dir"), &oxd, "oxd", false);

    // Standard input: every stream format.
    for (i, input) in [
        fixtures().join("edge.archive"),
        fixtures().join("edge.archive.gz"),
        oxd.clone(),
    ]
    .iter()
    .enumerate()
    {
        let out = t(&format!("stdin-{i}.oxd"));
        let (code, err) = run_piped(
            oxidump()
                .args(["convert", "-"])
                .arg(&out)
                .args(["--to", "oxd", "-q"]),
            Some(input),
            None,
        );
        assert_eq!(code, 0, "{}: {err}", input.display());
        check_form(&out, &exp, &r);
    }

    // Standard output: OXD and both archive forms, from a file and from a directory.
    for (name, input, to, gzip) in [
        ("stdout.oxd", fixtures().join("dir-gzip"), "oxd", false),
        ("stdout.archive", oxd.clone(), "mongodump-archive", false),
        ("stdout.archive.gz", oxd.clone(), "mongodump-archive", true),
    ] {
        let out = t(name);
        let mut cmd = oxidump();
        cmd.arg("convert").arg(&input).args(["-", "--to", to, "-q"]);
        if gzip {
            cmd.arg("--gzip");
        }
        let (code, err) = run_piped(&mut cmd, None, Some(&out));
        assert_eq!(code, 0, "{name}: {err}");
        check_form(&out, &exp, &r);
    }

    // Both at once: a pipe through.
    let out = t("through.oxd");
    let (code, err) = run_piped(
        oxidump().args(["convert", "-", "-", "--to", "oxd", "-q"]),
        Some(&fixtures().join("edge.archive.gz")),
        Some(&out),
    );
    assert_eq!(code, 0, "{err}");
    check_form(&out, &exp, &r);

    // verify and ls read standard input too.
    let report = t("report.txt");
    let (code, err) = run_piped(
        oxidump().args(["verify", "-q", "-"]),
        Some(&oxd),
        Some(&report),
    );
    assert_eq!(code, 0, "verify -: {err}");
    let text = fs::read_to_string(&report).expect("read");
    assert!(text.contains("-: OK (oxd, 15 namespaces"), "{text}");
    let (code, err) = run_piped(
        oxidump().args(["ls", "--json", "-"]),
        Some(&oxd),
        Some(&report),
    );
    assert_eq!(code, 0, "ls -: {err}");
    let l: Value = serde_json::from_slice(&fs::read(&report).expect("read")).expect("JSON");
    assert_eq!(l["complete"], true);
    let names: Vec<&str> = l["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .map(|n| n["namespace"].as_str().expect("name"))
        .collect();
    assert_eq!(names.len(), r.ls.len());
    for n in l["namespaces"].as_array().expect("namespaces") {
        let name = n["namespace"].as_str().expect("name");
        assert_eq!(n["documents"], r.ls[name]["documents"], "{name}");
        assert_eq!(n["raw_bytes"], r.ls[name]["raw_bytes"], "{name}");
    }

    // A directory has no stream form.
    let (code, err) = run_piped(
        oxidump()
            .arg("convert")
            .arg(&oxd)
            .args(["-", "--to", "mongodump-dir", "-q"]),
        None,
        Some(&t("nothing")),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("standard output"), "{err}");
}

#[test]
fn cat_reads_standard_input() {
    let exp = expected();
    let tmp = tempfile::tempdir().expect("temp dir");
    let oxd = tmp.path().join("edge.oxd");
    convert(&fixtures().join("edge.archive"), &oxd, "oxd", false);
    let (count, sha) = &exp.data["edge.capped"];
    for input in [
        oxd,
        fixtures().join("edge.archive"),
        fixtures().join("edge.archive.gz"),
    ] {
        let out = oxidump()
            .args(["cat", "-", "--ns", "edge.capped", "--format", "bson"])
            .stdin(Stdio::from(File::open(&input).expect("open")))
            .output()
            .expect("run cat");
        assert!(
            out.status.success(),
            "cat - < {}: {}",
            input.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            docs_digest(split_docs(&out.stdout)),
            (*count, sha.clone()),
            "{}",
            input.display()
        );
    }
}

#[cfg(unix)]
#[test]
fn converted_files_get_the_usual_permissions() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().expect("temp dir");
    let plain = tmp.path().join("plain");
    fs::write(&plain, b"x").expect("write");
    let usual = fs::metadata(&plain).expect("stat").permissions().mode() & 0o777;
    for (name, to) in [("x.oxd", "oxd"), ("x.archive", "mongodump-archive")] {
        let out = tmp.path().join(name);
        convert(&fixtures().join("edge.archive"), &out, to, false);
        let mode = fs::metadata(&out).expect("stat").permissions().mode() & 0o777;
        assert_eq!(
            mode, usual,
            "{name}: mode {mode:o}, a new file gets {usual:o}"
        );
    }
    let dir = tmp.path().join("dump");
    convert(
        &fixtures().join("edge.archive"),
        &dir,
        "mongodump-dir",
        false,
    );
    let f = dir.join("edge/capped.bson");
    let mode = fs::metadata(&f).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, usual, "directory output files get the usual mode");
}

#[test]
fn ls_and_verify_survive_a_closed_standard_output() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let oxd = tmp.path().join("edge.oxd");
    convert(&fixtures().join("edge.archive"), &oxd, "oxd", false);
    // Listings for people: a reader that stops reading is no error. Data (cat, and
    // verify's machine-readable report) is: the output is incomplete.
    for (args, expected) in [
        (&["ls"][..], 0),
        (&["ls", "--json"], 0),
        (&["verify", "-q"], 0),
        (&["verify", "--json"], 2),
        (&["cat", "--ns", "edge.types", "--format", "json"], 2),
    ] {
        let mut child = oxidump()
            .args(&args[..1])
            .arg(&oxd)
            .args(&args[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close the reading end before the command prints anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(expected), "{args:?}: {err}");
        if expected != 0 {
            assert!(
                err.contains("closed by its reader after 0 bytes"),
                "{args:?}: {err}"
            );
        }
    }
}
