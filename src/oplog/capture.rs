//! Capturing the oplog window of a dump (`--oplog`), as mongodump does: note the
//! newest oplog timestamp before the data is read and after, then copy the entries
//! between the two (bounds inclusive) as the archive's oplog stream, so a restore can
//! replay them to reach one consistent point.

use bson::{Document, RawDocument, Timestamp, doc};
use futures_util::TryStreamExt;
use mongodb::Client;
use mongodb::options::FindOptions;

use crate::catalog::{OPLOG_COLLECTION, OPLOG_DB};

/// Error capturing the oplog.
#[derive(Debug, thiserror::Error)]
pub enum OplogError {
    /// The server has no oplog to capture.
    #[error("--oplog needs a replica set member (this server has no oplog: {0})")]
    NoOplog(String),
    /// The window is no longer complete in the oplog.
    #[error(
        "oplog overflow: the oldest oplog entry ({oldest}) is newer than the dump's start ({start}); entries written during the dump were lost. Use a larger oplog or dump faster"
    )]
    Overflow {
        /// Start of the window.
        start: String,
        /// Oldest entry now.
        oldest: String,
    },
    /// An entry makes the window impossible to replay.
    #[error("the oplog window cannot be replayed: {0}; run the dump again")]
    Unreplayable(String),
    /// A server command failed.
    #[error("reading the oplog: {0}")]
    Driver(#[from] mongodb::error::Error),
}

pub use super::entry::show_ts;

/// The oldest (`order` 1) or newest (`order` -1) entry's `ts`, by a sort on `ts`
/// (SecantusDB ignores `$natural`: a `$natural: -1` read returns its oldest entry).
async fn edge_ts(client: &Client, order: i32) -> Result<Option<Timestamp>, mongodb::error::Error> {
    let coll = client
        .database(OPLOG_DB)
        .collection::<Document>(OPLOG_COLLECTION);
    let opts = FindOptions::builder()
        .sort(doc! {"ts": order})
        .limit(1)
        .projection(doc! {"ts": 1})
        .build();
    let mut cur = coll.find(doc! {}).with_options(opts).await?;
    Ok(match cur.try_next().await? {
        Some(d) => d.get_timestamp("ts").ok(),
        None => None,
    })
}

/// The oldest entry's `ts`. mongod reads its oplog in insertion order (`$natural`),
/// which is `ts` order, without sorting; a server that ignores `$natural` reads in
/// ascending order anyway.
async fn oldest_ts(client: &Client) -> Result<Option<Timestamp>, mongodb::error::Error> {
    let coll = client
        .database(OPLOG_DB)
        .collection::<Document>(OPLOG_COLLECTION);
    let opts = FindOptions::builder()
        .sort(doc! {"$natural": 1})
        .limit(1)
        .projection(doc! {"ts": 1})
        .build();
    let mut cur = coll.find(doc! {}).with_options(opts).await?;
    Ok(match cur.try_next().await? {
        Some(d) => d.get_timestamp("ts").ok(),
        None => None,
    })
}

/// The timestamp of the newest oplog entry: the server's last write optime
/// (`hello.lastWrite.opTime`), or, from a server that reports none, the largest `ts`
/// of the oplog. Never a `$natural: -1` read, which is the oldest entry on a server
/// that ignores `$natural`.
pub async fn newest(client: &Client) -> Result<Timestamp, OplogError> {
    let hello = client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await?;
    if hello.get_str("setName").is_err() {
        return Err(OplogError::NoOplog("it is not a replica set member".into()));
    }
    let last_write = hello
        .get_document("lastWrite")
        .ok()
        .and_then(|l| l.get_document("opTime").ok())
        .and_then(|o| o.get_timestamp("ts").ok());
    if let Some(t) = last_write {
        return Ok(t);
    }
    edge_ts(client, -1)
        .await?
        .ok_or_else(|| OplogError::NoOplog("local.oplog.rs is empty or missing".into()))
}

/// Waits until the entry at `end` (or a later one) can be read: a server may report a
/// write's optime (`hello.lastWrite`) a moment before its oplog entry is visible, and
/// a window copied before then would lose that write. Some timestamps never get an
/// entry (SecantusDB reports its current cluster time as `lastWrite`, and its aborted
/// transactions take one): after [`SETTLE_FOR`] without one, the window keeps its end,
/// with no entry at it. The wait is bounded by time, not by polls: on a server that
/// scans its whole oplog for each poll (SecantusDB: about 0.2 s per 50 000 entries),
/// a poll count would make it grow with the oplog.
pub async fn settle(client: &Client, end: Timestamp) -> Result<Timestamp, OplogError> {
    let coll = client
        .database(OPLOG_DB)
        .collection::<Document>(OPLOG_COLLECTION);
    let deadline = std::time::Instant::now() + SETTLE_FOR;
    loop {
        let found = coll
            .find_one(doc! {"ts": {"$gte": end}})
            .projection(doc! {"ts": 1})
            .await?;
        if found.is_some() {
            return Ok(end);
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Ok(end);
        }
        tokio::time::sleep(SETTLE_POLL.min(deadline - now)).await;
    }
}

/// How long [`settle`] waits for an entry at the end of a window.
const SETTLE_FOR: std::time::Duration = std::time::Duration::from_secs(2);
/// The pause between two polls of [`settle`].
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Fails when the oldest entry is newer than `start` (the window was rolled over).
pub async fn check_overflow(client: &Client, start: Timestamp) -> Result<(), OplogError> {
    if let Some(oldest) = oldest_ts(client).await?
        && oldest > start
    {
        return Err(OplogError::Overflow {
            start: show_ts(start),
            oldest: show_ts(oldest),
        });
    }
    Ok(())
}

/// Checks one captured entry the way mongodump does: renames, imports and changes to
/// `admin.system.version` (FCV, auth schema) make the window impossible to replay.
pub fn check_entry(entry: &RawDocument) -> Result<(), OplogError> {
    let ns = entry.get_str("ns").unwrap_or("");
    if ns == "admin.system.version" {
        return Err(OplogError::Unreplayable(
            "an entry changes admin.system.version (feature compatibility or auth schema changed during the dump)".into(),
        ));
    }
    if entry.get_str("op").ok() == Some("c")
        && let Ok(o) = entry.get_document("o")
    {
        for k in [
            "renameCollection",
            "importCollection",
            "upgradeDowngradeViewlessTimeseries",
        ] {
            if o.get(k).ok().flatten().is_some() {
                return Err(OplogError::Unreplayable(format!(
                    "an entry runs {k} on {ns}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_checks() {
        let ok = bson::rawdoc! {"op": "i", "ns": "a.b", "o": {"_id": 1}};
        assert!(check_entry(&ok).is_ok());
        let rename = bson::rawdoc! {"op": "c", "ns": "a.$cmd", "o": {"renameCollection": "a.b", "to": "a.c"}};
        assert!(check_entry(&rename).is_err());
        let fcv = bson::rawdoc! {"op": "u", "ns": "admin.system.version", "o": {}};
        assert!(check_entry(&fcv).is_err());
    }
}
