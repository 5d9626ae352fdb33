//! `oxidump verify`: check a backup offline and report every finding.

use std::path::Path;

use crate::input::{self, InputFormat};
use crate::progress::Progress;
use crate::source::SourceError;
use crate::verify::{Report, VerifyOptions};

/// Verifies the backup at `path` (`-` for standard input). An error is returned only
/// when the input cannot be opened at all; everything else is a finding in the report.
pub fn run(path: &Path, opts: &VerifyOptions, progress: &Progress) -> Result<Report, SourceError> {
    let opened = input::open(path)?;
    let mut report = Report::new(path, opened.format.name());
    let bar = progress.bytes(opened.size, format!("verify {}", path.display()));
    // Stream formats count the bytes read from the input itself (compressed bytes
    // for gzip), so the bar matches the file size.
    let stream = opened
        .stream
        .map(|s| Box::new(input::Counting::new(s, bar.clone())) as Box<dyn std::io::Read + Send>);
    let mut ignore = |_: u64| {};
    match opened.format {
        InputFormat::Oxd => crate::oxd::check::verify(
            stream.expect("stream"),
            path,
            opts,
            &mut report,
            &mut ignore,
        ),
        InputFormat::MongodumpArchive { gzip } => {
            let stream = stream.expect("stream");
            let stream: Box<dyn std::io::Read + Send> = if gzip {
                Box::new(crate::mongodump::gunzip(stream))
            } else {
                stream
            };
            crate::mongodump::archive::verify_into(stream, opts, &mut report, &mut ignore)
        }
        InputFormat::MongodumpDir => {
            let mut tick = |n: u64| bar.inc(n);
            crate::mongodump::dir::verify_into(path, opts, &mut report, &mut tick)
        }
    }
    bar.finish_and_clear();
    if crate::output::is_partial_output(path) {
        report.complete = false;
        report.push(crate::verify::Finding::error(
            "partial-output",
            crate::output::PARTIAL_OUTPUT,
        ));
    }
    Ok(report)
}

/// Renders a report for people: one line per finding, then a verdict.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    for f in &r.findings {
        s.push_str(&f.to_string());
        s.push('\n');
    }
    let docs: u64 = r.namespaces.iter().map(|n| n.documents).sum();
    let bytes: u64 = r.namespaces.iter().map(|n| n.bytes).sum();
    let errors = r
        .findings
        .iter()
        .filter(|f| f.severity == crate::verify::Severity::Error)
        .count();
    // Incomplete: it stops early. Corrupt: something that is there is wrong.
    let incomplete = r
        .findings
        .iter()
        .any(|f| matches!(f.code, "incomplete" | "partial-output"));
    let corrupt = r.findings.iter().any(|f| {
        f.severity == crate::verify::Severity::Error
            && !matches!(
                f.code,
                "incomplete"
                    | "partial-output"
                    | "truncated"
                    | "ns-missing-end"
                    | "archive-truncated"
                    | "archive-missing-eof"
            )
    });
    let verdict = match (r.is_ok(), corrupt, incomplete) {
        (true, _, _) => "OK".to_string(),
        (false, true, true) => format!("CORRUPT and INCOMPLETE ({errors} error(s))"),
        (false, false, true) => format!("INCOMPLETE ({errors} error(s))"),
        (false, _, _) if errors == 0 => "INCOMPLETE".to_string(),
        (false, _, _) => format!("CORRUPT ({errors} error(s))"),
    };
    s.push_str(&format!(
        "{}: {} ({}, {} namespaces, {} documents, {} bytes{})\n",
        r.path.display(),
        verdict,
        r.format,
        r.namespaces.len(),
        docs,
        bytes,
        if incomplete { ", incomplete" } else { "" }
    ));
    s
}
