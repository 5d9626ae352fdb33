//! The restore's side of oplog replay: the options it hands to [`crate::oplog`], the
//! index catalog it seeds from the backup, and the indexes it builds once the replay
//! is done (every secondary index waits for the replay: ordinary commands cannot
//! relax unique constraints the way mongod's own applier does).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use bson::Document;
use mongodb::Client;

use super::plan::Target;
use super::{IndexBuild, NsReport, OplogReplay, RestoreError, index, spec};
use crate::catalog::Catalog;
use crate::nsmatch::{NsFilter, Renamer};
use crate::oplog::apply::{ApplyOptions, Selection};
use crate::oplog::replay::{self, Prepared, ReplayReport};

/// Everything `prepare` needs from the restore's options.
pub struct ReplaySetup<'a> {
    /// What was asked.
    pub asked: &'a OplogReplay,
    /// The backup (`None`: only `--oplog-file`s).
    pub backup: Option<&'a Path>,
    /// Include and exclude patterns.
    pub filter: &'a NsFilter,
    /// Renames.
    pub renamer: &'a Renamer,
    /// `writeConcern` of every write.
    pub write_concern: Option<Document>,
    /// Concurrent lanes.
    pub lanes: usize,
    /// Whether system namespaces are replayed.
    pub include_system: bool,
}

/// Reads the oplog inputs and checks the boundary; nothing is written.
pub fn prepare(s: ReplaySetup<'_>) -> Result<Prepared, RestoreError> {
    let until = s
        .asked
        .until
        .as_deref()
        .map(replay::parse_bound)
        .transpose()?;
    if let Some(b) = s.backup
        && b.as_os_str() == "-"
    {
        return Err(RestoreError::Usage(
            "--oplog-replay reads the backup twice: give a file, not standard input".into(),
        ));
    }
    Ok(replay::prepare(replay::ReplayOptions {
        dump: s
            .backup
            .filter(|_| s.asked.from_backup)
            .map(Path::to_path_buf),
        files: s.asked.files.clone(),
        until,
        exclusive: s.asked.exclusive,
        apply: ApplyOptions {
            lanes: s.lanes.max(1),
            write_concern: s.write_concern,
            accept_partial: s.asked.accept_partial,
            include_system: s.include_system,
            ..ApplyOptions::default()
        },
        selection: Selection {
            filter: s.filter.clone(),
            renamer: s.renamer.clone(),
        },
    })?)
}

/// The secondary indexes of what the data phase restored, by target namespace.
pub fn seed_indexes(catalog: &Catalog, targets: &[Target]) -> BTreeMap<String, Vec<Document>> {
    targets
        .iter()
        .filter(|t| t.skip.is_none() && t.kind != "view" && t.kind != "oplog")
        .map(|t| {
            (
                t.full_name(),
                spec::secondary_indexes(&catalog.namespaces[t.src]),
            )
        })
        .collect()
}

/// Replays, then builds the final index catalog (unless indexes are skipped),
/// recording outcomes on the namespaces' reports or, for collections the oplog
/// created, on the replay's report.
pub async fn replay_then_index(
    client: &Client,
    prepared: Prepared,
    seed: BTreeMap<String, Vec<Document>>,
    index_build: IndexBuild,
    write_concern: Option<&Document>,
    reports: &Mutex<Vec<NsReport>>,
) -> Result<ReplayReport, RestoreError> {
    let (mut report, catalog) = prepared.run(client.clone(), seed).await?;
    if index_build == IndexBuild::Skip {
        return Ok(report);
    }
    for (ns, specs) in catalog {
        if specs.is_empty() {
            continue;
        }
        let Some((db, coll)) = ns.split_once('.') else {
            continue;
        };
        let o = index::build(&client.database(db), coll, &specs, write_concern).await;
        let mut rs = reports.lock().expect("lock");
        match rs.iter_mut().find(|r| r.target == ns && r.kind != "oplog") {
            Some(r) => {
                r.indexes = o.built.clone();
                r.index_errors = o.failed.clone();
                r.index_seconds += o.seconds;
            }
            None => {
                report.indexes.insert(ns.clone(), o.built.clone());
                for (ix, e) in o.failed {
                    report.index_errors.push((ns.clone(), ix, e));
                }
            }
        }
    }
    Ok(report)
}

/// The replay's lines of the summary.
pub fn render(r: &ReplayReport) -> String {
    let mut s = String::new();
    let c = &r.counts;
    s.push_str(&format!(
        "oplog: {} entries read, {} applied, {} skipped; reached {}{}\n",
        c.entries,
        c.applied_total(),
        c.skipped_total(),
        c.reached.as_deref().unwrap_or("(nothing)"),
        r.consistent_point
            .as_ref()
            .map(|p| format!(" (consistent point {p})"))
            .unwrap_or_default()
    ));
    if !c.applied.is_empty() {
        let parts: Vec<String> = c.applied.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s.push_str(&format!("  applied: {}\n", parts.join(", ")));
    }
    for (k, n) in &c.skipped {
        s.push_str(&format!("  skipped {n}: {k}\n"));
    }
    if c.transactions + c.transactions_not_applied > 0 {
        s.push_str(&format!(
            "  transactions: {} applied, {} not applied (aborted or not committed by the boundary)\n",
            c.transactions, c.transactions_not_applied
        ));
    }
    for w in &c.warnings {
        s.push_str(&format!("  warning: {w}\n"));
    }
    for (ns, ix, e) in &r.index_errors {
        s.push_str(&format!("  index {ns} {ix} failed: {e}\n"));
    }
    s
}

/// The replay's lines of a dry run.
pub fn render_plan(r: &ReplayReport) -> String {
    let mut s = String::from("\noplog replay (nothing will be written):\n");
    for i in &r.inputs {
        s.push_str(&format!(
            "  input {}: {} entries, {} .. {}\n",
            i.path.display(),
            i.entries,
            i.first.as_deref().unwrap_or("-"),
            i.last.as_deref().unwrap_or("-")
        ));
    }
    if let Some(p) = &r.consistent_point {
        s.push_str(&format!("  consistent point: {p}\n"));
    }
    s.push_str(&format!(
        "  replays up to {} ({})\n",
        r.until.as_deref().unwrap_or("the end"),
        if r.exclusive {
            "exclusive"
        } else {
            "inclusive"
        }
    ));
    if !r.planned.is_empty() {
        s.push_str("  entries in the inputs, by kind and namespace:\n");
    }
    for (k, n) in &r.planned {
        s.push_str(&format!("  {n:>8}  {k}\n"));
    }
    for x in &r.refused {
        s.push_str(&format!("  refused: {x}\n"));
    }
    s
}
