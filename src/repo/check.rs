//! `verify` of a repository (`format-spec/repository-v1.md` §9): the marker, every
//! snapshot and segment as OXD archives, each segment's completeness and the chain.

use std::fs::File;
use std::io::BufReader;

use super::chain::{self, BreakKind};
use super::{MARKER, Repo, RepoError};
use crate::oplog::segment;
use crate::verify::{Finding, Report, VerifyOptions};

/// The format name of a repository report.
pub const FORMAT_NAME: &str = "oxidump-repository";

fn verify_oxd(path: &std::path::Path, opts: &VerifyOptions, report: &mut Report) -> bool {
    let before = report.findings.len();
    match File::open(path) {
        Ok(f) => {
            let mut sub = Report::new(path, "oxd");
            crate::oxd::check::verify(BufReader::new(f), path, opts, &mut sub, &mut |_| {});
            if !sub.complete {
                report.push(
                    Finding::error("incomplete", "the object is not a complete OXD archive")
                        .file(path),
                );
            }
            for f in sub.findings {
                report.push(f.file(path));
            }
        }
        Err(e) => report.push(Finding::error("io", e.to_string()).file(path)),
    }
    report.findings[before..]
        .iter()
        .all(|f| f.severity != crate::verify::Severity::Error)
}

/// Verifies every object of the repository and the chain. Returns one report for the
/// whole repository; every finding names its object.
pub fn verify(repo: &Repo, opts: &VerifyOptions) -> Result<Report, RepoError> {
    let mut report = Report::new(repo.root(), FORMAT_NAME);
    report.complete = true;
    if let Err(e) = Repo::open(repo.root()) {
        report.push(Finding::error("repo-marker", e.to_string()).file(repo.root().join(MARKER)));
    }
    let (snapshots, bad) = repo.snapshots()?;
    for (path, why) in bad {
        verify_oxd(&path, opts, &mut report);
        report.push(Finding::error("snapshot", why).file(path));
    }
    for s in &snapshots {
        verify_oxd(&s.path, opts, &mut report);
    }
    let (gaps, bad_gaps) = repo.gaps()?;
    for (path, why) in bad_gaps {
        report.push(Finding::error("gap-object", why).file(path));
    }
    let (rollbacks, bad_rollbacks) = repo.rollbacks()?;
    for (path, why) in bad_rollbacks {
        report.push(Finding::error("rollback-object", why).file(path));
    }
    let segments = repo.segments()?;
    let mut checked = Vec::new();
    for mut s in segments {
        if s.named.is_none() {
            report.push(
                Finding::error(
                    "repo-name",
                    "not a segment name (<FIRST>_<LAST>.oxd, timestamps as SSSSSSSSSS.IIIIIIIIII)",
                )
                .file(&s.path),
            );
            continue;
        }
        let whole = verify_oxd(&s.path, opts, &mut report);
        if whole {
            match segment::read_meta(&s.path) {
                Ok((meta, index)) => {
                    let problems = segment::check_entries(&s.path, &meta, &index);
                    for p in &problems {
                        report.push(Finding::error("segment", p.clone()).file(&s.path));
                    }
                    if !problems.is_empty() {
                        s.meta = Err(problems.join("; "));
                    }
                }
                Err(e) => {
                    report.push(Finding::error("segment", e.to_string()).file(&s.path));
                    s.meta = Err(e.to_string());
                }
            }
        } else {
            s.meta = Err("damaged".into());
        }
        checked.push(s);
    }
    let chain = chain::analyse(checked, &gaps, &rollbacks);
    for (s, why) in &chain.damaged {
        if let Ok(m) = &s.meta
            && s.named != Some((m.first.ts, m.last.ts))
        {
            report.push(Finding::error("repo-name", why.clone()).file(&s.path));
        }
    }
    for b in &chain.breaks {
        let msg = format!(
            "between {} and {}: {}",
            b.after_segment, b.before_segment, b.detail
        );
        let path = repo.oplog_dir().join(&b.before_segment);
        report.push(if b.kind.is_recorded() {
            Finding::warning(b.kind.code(), msg).file(path)
        } else {
            Finding::error(b.kind.code(), msg).file(path)
        });
    }
    for g in &gaps {
        let named = g.after_optime();
        if !chain.segments.iter().any(|(_, m)| Some(m.last) == named) {
            report.push(
                Finding::warning(
                    "gap-object",
                    format!(
                        "the gap after {} names no archived entry (its segment is gone)",
                        g.after.ts
                    ),
                )
                .file(repo.root().join(super::GAPS)),
            );
        }
    }
    for r in &rollbacks {
        // Records that parse (the others were reported above) have both optimes.
        let (Some(a), common) = (r.archived_optime(), r.common_optime()) else {
            continue;
        };
        let archived = Some(a);
        let held = |o: Option<crate::oplog::segment::OpTime>| {
            o.is_some_and(|o| {
                chain
                    .segments
                    .iter()
                    .any(|(_, m)| m.first.ts <= o.ts && o.ts <= m.last.ts)
            })
        };
        let path = repo
            .root()
            .join(super::ROLLBACKS)
            .join(format!("{}.json", segment::ts_name(a.ts)));
        if !chain.segments.iter().any(|(_, m)| Some(m.last) == archived) {
            report.push(
                Finding::warning(
                    "rollback-object",
                    format!(
                        "the rollback up to {} names no archived segment end (its segment is gone)",
                        r.archived.ts
                    ),
                )
                .file(&path),
            );
        } else if !chain
            .breaks
            .iter()
            .any(|b| b.kind == BreakKind::Rollback && Some(b.after) == common.map(|c| c.ts))
        {
            // (A rollback followed by a new chain is reported as that break, above.)
            report.push(
                Finding::warning(
                    "rollback",
                    format!(
                        "the replica set rolled back the {} archived entries after {} up to {}: no restore reaches a moment among them",
                        r.lost, r.common.ts, r.archived.ts
                    ),
                )
                .file(&path),
            );
        }
        if !held(common) {
            report.push(
                Finding::warning(
                    "rollback-object",
                    format!("its common point {} is in no archived segment", r.common.ts),
                )
                .file(&path),
            );
        }
    }
    Ok(report)
}
