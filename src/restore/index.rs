//! Building a collection's secondary indexes: one `createIndexes` with all of them
//! (a single scan of the collection on mongod); if the server refuses it, each index
//! on its own, so one bad index is reported and the others still get built.

use std::time::Instant;

use bson::{Bson, Document, doc};
use mongodb::Database;
use serde::Serialize;

/// What happened to a collection's indexes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexOutcome {
    /// Indexes built.
    pub built: Vec<String>,
    /// Indexes that failed, with the server's reason.
    pub failed: Vec<(String, String)>,
    /// Seconds spent.
    pub seconds: f64,
}

fn name_of(spec: &Document) -> String {
    spec.get_str("name").unwrap_or("(unnamed)").to_string()
}

async fn create(
    db: &Database,
    coll: &str,
    specs: &[Document],
    wc: Option<&Document>,
) -> Result<(), mongodb::error::Error> {
    let mut cmd = doc! {"createIndexes": coll, "indexes": specs.iter().cloned().map(Bson::Document).collect::<Vec<_>>()};
    if let Some(wc) = wc {
        cmd.insert("writeConcern", wc.clone());
    }
    db.run_command(cmd).await.map(|_| ())
}

/// Builds `specs` on `db.coll`.
pub async fn build(
    db: &Database,
    coll: &str,
    specs: &[Document],
    wc: Option<&Document>,
) -> IndexOutcome {
    let started = Instant::now();
    let mut out = IndexOutcome::default();
    if specs.is_empty() {
        return out;
    }
    match create(db, coll, specs, wc).await {
        Ok(()) => out.built = specs.iter().map(name_of).collect(),
        Err(_) if specs.len() > 1 => {
            for s in specs {
                match create(db, coll, std::slice::from_ref(s), wc).await {
                    Ok(()) => out.built.push(name_of(s)),
                    Err(e) => out.failed.push((name_of(s), e.kind.to_string())),
                }
            }
        }
        Err(e) => out.failed.push((name_of(&specs[0]), e.kind.to_string())),
    }
    out.seconds = started.elapsed().as_secs_f64();
    out
}
