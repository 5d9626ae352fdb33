//! Planning a restore: which dumped namespace goes where, and every check that must
//! pass before anything is written (system databases, collisions, non-empty targets,
//! options and index types the target does not know, UUIDs already taken).

use std::collections::{BTreeMap, HashMap};

use bson::{Bson, Document, doc, rawdoc};
use mongodb::Client;
use serde::Serialize;

use super::spec;
use crate::catalog::{BUCKETS_PREFIX, Catalog, NsKind};
use crate::connect::ServerInfo;
use crate::dump::plan::cursor_docs;
use crate::nsmatch::{NsFilter, Renamer};

/// What to do with a target that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Existing {
    /// Stop before writing anything if a target holds documents.
    #[default]
    Refuse,
    /// Drop each target collection being restored (and nothing else) first.
    Drop,
    /// Insert into existing targets.
    Append,
}

/// The fate of one dumped namespace.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Index in the source catalog.
    #[serde(skip)]
    pub src: usize,
    /// Source `db.collection`.
    pub source: String,
    /// Target database.
    pub db: String,
    /// Target collection (logical name).
    pub coll: String,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Documents in the backup, when known without reading it.
    pub documents: Option<u64>,
    /// Index names to build.
    pub indexes: Vec<String>,
    /// Collection option names.
    pub options: Vec<String>,
    /// Whether the target exists now.
    pub exists: bool,
    /// Documents the target holds now (when it exists).
    pub existing_documents: u64,
    /// Whether it will be dropped first.
    pub drop: bool,
    /// Why it is skipped, when it is.
    pub skip: Option<String>,
    /// Users or roles (written through [`crate::authz`], not inserted), and whose
    /// they are on the target.
    #[serde(skip)]
    pub authz: Option<(crate::authz::Kind, crate::authz::Scope)>,
}

impl Target {
    /// `db.collection` of the target.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.db, self.coll)
    }
}

/// Error planning a restore: nothing has been written.
#[derive(Debug, thiserror::Error)]
pub enum RestorePlanError {
    /// Refused before writing, with every reason.
    #[error("refusing to restore (nothing was written):\n  - {}", .0.join("\n  - "))]
    Refused(Vec<String>),
    /// A server command failed.
    #[error("{what}: {}", crate::connect::describe(source))]
    Driver {
        /// What was being asked.
        what: String,
        /// The driver error.
        source: mongodb::error::Error,
    },
}

/// Inputs of planning.
pub struct PlanInput<'a> {
    /// The backup's catalog.
    pub catalog: &'a Catalog,
    /// Documents per namespace when known.
    pub counts: &'a [Option<u64>],
    /// Include/exclude filter on source names.
    pub filter: &'a NsFilter,
    /// Renaming pairs.
    pub renamer: &'a Renamer,
    /// Existing-target policy.
    pub existing: Existing,
    /// Whether admin/local/config may be written.
    pub include_system: bool,
    /// Whether collections keep their UUIDs.
    pub preserve_uuid: bool,
    /// Whether collection options are skipped.
    pub no_options: bool,
    /// The target server.
    pub server: &'a ServerInfo,
    /// Source namespaces whose targets an earlier run of a resumed restore created:
    /// they are kept as they are (neither dropped nor refused for holding documents).
    pub resumed: &'a std::collections::HashSet<String>,
    /// Whether users and roles are restored.
    pub users_and_roles: bool,
}

const SYSTEM_DBS: [&str; 3] = ["admin", "local", "config"];

fn valid_db_name(db: &str) -> bool {
    !db.is_empty() && db.len() < 64 && !db.contains(['/', '\\', '.', ' ', '"', '$', '\0'])
}

/// Plans the restore; returns the targets (skipped ones included, with their reason)
/// and warnings, or every reason to refuse.
pub async fn plan(
    client: &Client,
    input: PlanInput<'_>,
) -> Result<(Vec<Target>, Vec<String>), RestorePlanError> {
    let mut targets = Vec::new();
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    let target_ver = input.server.major_minor();
    if let Some(sv) = &input.catalog.source.server_version {
        let src = crate::connect::parse_major_minor(sv);
        if src != (0, 0) && target_ver != (0, 0) && target_ver < src {
            warnings.push(format!(
                "downgrade: the backup comes from server {sv}, the target runs {}; options and indexes are checked, but data written by newer features may not behave the same",
                input.server.version
            ));
        }
    }
    for (i, ns) in input.catalog.namespaces.iter().enumerate() {
        let source = ns.full_name();
        let mut t = Target {
            src: i,
            source: source.clone(),
            db: ns.db.clone(),
            coll: ns.collection.clone(),
            kind: ns.kind.as_str(),
            documents: input.counts.get(i).copied().flatten(),
            indexes: spec::secondary_indexes(ns)
                .iter()
                .filter_map(|x| x.get_str("name").ok().map(str::to_string))
                .collect(),
            options: ns.options.keys().cloned().collect(),
            exists: false,
            existing_documents: 0,
            drop: false,
            skip: None,
            authz: None,
        };
        if ns.kind == NsKind::Oplog {
            t.skip = Some("the oplog window is replayed only with --oplog-replay".into());
            targets.push(t);
            continue;
        }
        if !input.filter.allows(&source) {
            t.skip = Some("excluded by --ns-include/--ns-exclude".into());
            targets.push(t);
            continue;
        }
        let renamed = input.renamer.rename(&source);
        let Some((db, coll)) = renamed.split_once('.') else {
            refusals.push(format!(
                "{source} would be renamed to {renamed:?}, which is not db.collection"
            ));
            continue;
        };
        (t.db, t.coll) = (db.to_string(), coll.to_string());
        if !valid_db_name(db) || coll.is_empty() {
            refusals.push(format!(
                "{source} would be restored to {renamed:?}, which is not a valid namespace"
            ));
            continue;
        }
        if coll.starts_with(BUCKETS_PREFIX) {
            refusals.push(format!("{source}: restoring into {renamed} (a time-series bucket collection) directly is not allowed"));
            continue;
        }
        if let Some((kind, scope)) = crate::authz::classify(&ns.db, &ns.collection) {
            if !input.users_and_roles {
                t.skip = Some("users and roles are restored only with --users-and-roles".into());
            } else if matches!(scope, crate::authz::Scope::Db(_)) && db == "admin" {
                refusals.push(format!(
                    "{source}: one database's users and roles cannot be restored into admin"
                ));
                continue;
            } else {
                t.kind = match kind {
                    crate::authz::Kind::Users => "users",
                    crate::authz::Kind::Roles => "roles",
                };
                t.indexes.clear();
                t.options.clear();
                t.authz = Some((
                    kind,
                    match scope {
                        crate::authz::Scope::All => crate::authz::Scope::All,
                        crate::authz::Scope::Db(_) => crate::authz::Scope::Db(db.to_string()),
                    },
                ));
            }
            targets.push(t);
            continue;
        }
        if SYSTEM_DBS.contains(&db)
            && !input.include_system
            && !SYSTEM_DBS.contains(&ns.db.as_str())
        {
            refusals.push(format!(
                "{source} would be restored into {renamed}, in the system database {db}: add --include-system to allow it"
            ));
            continue;
        }
        if SYSTEM_DBS.contains(&db) && !input.include_system {
            t.skip = Some(format!(
                "{db} is a system database (use --include-system to restore into it)"
            ));
            targets.push(t);
            continue;
        }
        if (db == "admin" && coll == "system.version") || coll == "$admin.system.version" {
            t.skip = Some(
                "admin.system.version is the server's own (feature compatibility, auth schema)"
                    .into(),
            );
            targets.push(t);
            continue;
        }
        if ns.kind == NsKind::Timeseries && input.no_options {
            refusals.push(format!(
                "{source}: a time-series collection cannot be restored with --no-options"
            ));
        }
        for p in spec::check_compat(ns, &renamed, target_ver) {
            refusals.push(p);
        }
        for ix in &ns.indexes {
            warnings.extend(spec::index_conversions(&source, ix));
        }
        warnings.extend(spec::duplicate_indexes(&source, ns));
        targets.push(t);
    }
    // Two sources into one target.
    let mut seen: HashMap<String, &str> = HashMap::new();
    for t in targets.iter().filter(|t| t.skip.is_none()) {
        if t.authz.is_some() {
            continue;
        }
        if let Some(prev) = seen.insert(t.full_name(), &t.source) {
            refusals.push(format!(
                "{} and {} would both be restored to {}",
                prev,
                t.source,
                t.full_name()
            ));
        }
    }
    // What exists on the target now.
    let mut by_db: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (k, t) in targets.iter().enumerate() {
        if t.skip.is_none() && t.authz.is_none() {
            by_db.entry(t.db.clone()).or_default().push(k);
        }
    }
    let mut uuids_in_use: HashMap<[u8; 16], String> = HashMap::new();
    for (db, ks) in &by_db {
        let infos = cursor_docs(&client.database(db), rawdoc! {"listCollections": 1})
            .await
            .map_err(|source| RestorePlanError::Driver {
                what: format!("listing collections of {db}"),
                source,
            })?;
        let existing: HashMap<String, &Document> = infos
            .iter()
            .filter_map(|d| d.get_str("name").ok().map(|n| (n.to_string(), d)))
            .collect();
        for &k in ks {
            let t = &mut targets[k];
            let Some(info) = existing.get(&t.coll) else {
                continue;
            };
            t.exists = true;
            let is_view = info.get_str("type").ok() == Some("view");
            if !is_view {
                let coll = client.database(db).collection::<Document>(&t.coll);
                t.existing_documents = coll.estimated_document_count().await.unwrap_or(0);
                if t.existing_documents == 0 {
                    // An estimate can lag; make sure.
                    t.existing_documents = coll
                        .find_one(doc! {})
                        .projection(doc! {"_id": 1})
                        .await
                        .ok()
                        .flatten()
                        .map_or(0, |_| 1);
                }
            }
            match input.existing {
                _ if input.resumed.contains(&t.source) => {}
                Existing::Drop => t.drop = true,
                Existing::Append if is_view || t.kind == "view" => {
                    refusals.push(format!("{}: a view already exists there (use --drop to replace it)", t.full_name()))
                }
                Existing::Append => {}
                Existing::Refuse if is_view || t.kind == "view" => {
                    refusals.push(format!("{}: already exists (use --drop to replace it)", t.full_name()))
                }
                Existing::Refuse if t.existing_documents > 0 => refusals.push(format!(
                    "{}: already holds documents (use --drop to replace exactly the restored collections, or --append to add to them)",
                    t.full_name()
                )),
                Existing::Refuse => {}
            }
        }
        if input.preserve_uuid {
            for d in &infos {
                if let (Ok(name), Some(u)) = (d.get_str("name"), uuid_of(d)) {
                    uuids_in_use.insert(u, format!("{db}.{name}"));
                }
            }
        }
    }
    if input.preserve_uuid {
        // UUIDs in other databases can collide too.
        let dbs =
            client
                .list_database_names()
                .await
                .map_err(|source| RestorePlanError::Driver {
                    what: "listing databases".into(),
                    source,
                })?;
        for db in dbs.iter().filter(|d| !by_db.contains_key(*d)) {
            if let Ok(infos) =
                cursor_docs(&client.database(db), rawdoc! {"listCollections": 1}).await
            {
                for d in &infos {
                    if let (Ok(name), Some(u)) = (d.get_str("name"), uuid_of(d)) {
                        uuids_in_use.insert(u, format!("{db}.{name}"));
                    }
                }
            }
        }
        for t in targets
            .iter()
            .filter(|t| t.skip.is_none() && t.authz.is_none())
        {
            let ns = &input.catalog.namespaces[t.src];
            match ns.uuid {
                None if ns.kind != NsKind::View => refusals.push(format!(
                    "{}: --preserve-uuid, but the backup has no UUID for it",
                    t.source
                )),
                Some(u) => {
                    if let Some(owner) = uuids_in_use.get(&u)
                        && !((t.drop || input.resumed.contains(&t.source))
                            && *owner == t.full_name())
                    {
                        refusals.push(format!(
                            "{}: --preserve-uuid, but UUID {} is already used by {owner}",
                            t.full_name(),
                            hex(&u)
                        ));
                    }
                }
                None => {}
            }
        }
    }
    if !refusals.is_empty() {
        return Err(RestorePlanError::Refused(refusals));
    }
    Ok((targets, warnings))
}

fn uuid_of(info: &Document) -> Option<[u8; 16]> {
    match info.get_document("info").ok()?.get("uuid")? {
        Bson::Binary(b) if b.bytes.len() == 16 => b.bytes.as_slice().try_into().ok(),
        _ => None,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses `--write-concern`: `majority`, a number, or a JSON document (`{"w":1,"j":true}`).
pub fn parse_write_concern(s: &str) -> Result<Document, String> {
    let s = s.trim();
    if s.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| format!("--write-concern {s}: {e}"))?;
        let d = match Bson::try_from(v) {
            Ok(Bson::Document(d)) => d,
            _ => {
                return Err(
                    "--write-concern must be a JSON object, a number or a tag like majority".into(),
                );
            }
        };
        for (k, v) in &d {
            let fits = match k.as_str() {
                "w" => match v {
                    Bson::Int32(n) => *n >= 0,
                    Bson::Int64(n) => *n >= 0,
                    Bson::String(t) => !t.is_empty(),
                    _ => false,
                },
                "j" | "fsync" => matches!(v, Bson::Boolean(_)),
                "wtimeout" => match v {
                    Bson::Int32(n) => *n >= 0,
                    Bson::Int64(n) => *n >= 0,
                    _ => false,
                },
                other => {
                    return Err(format!(
                        "--write-concern {s}: unknown field {other:?} (expected w, j, wtimeout)"
                    ));
                }
            };
            if !fits {
                return Err(format!(
                    "--write-concern {s}: {k} cannot be {v} (w: a number of nodes or a tag, j: true or false, wtimeout: milliseconds)"
                ));
            }
        }
        return Ok(d);
    }
    if let Ok(n) = s.parse::<i64>() {
        if n < 0 || n > i32::MAX as i64 {
            return Err(format!(
                "--write-concern {s}: w must be a number of nodes (0 or more)"
            ));
        }
        return Ok(doc! {"w": n as i32});
    }
    if s.is_empty() {
        return Err("--write-concern is empty".into());
    }
    Ok(doc! {"w": s})
}

/// Collection the write-concern probe deletes from: none of that name is expected,
/// and a delete never creates one.
const WRITE_CONCERN_PROBE: &str = "oxidump.write_concern_probe";

/// Longest the server may take to satisfy the write concern of a write that changes
/// nothing.
const WRITE_CONCERN_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Asks the server, with a write that changes nothing (a delete matching no document
/// of a collection that does not exist) in database `db`, whether it accepts write
/// concern `wc` (`shown` as the user gave it). Refused when the server says it cannot
/// satisfy it (an unknown tag, more nodes than it has) or does not satisfy it in time.
/// When the server cannot be asked (no privilege), the restore goes on.
pub async fn check_write_concern(
    client: &Client,
    db: &str,
    wc: &Document,
    shown: &str,
) -> Result<(), RestorePlanError> {
    let cmd = doc! {
        "delete": WRITE_CONCERN_PROBE,
        "deletes": [{"q": {"_id": {"$in": []}}, "limit": 1}],
        "writeConcern": wc.clone(),
    };
    let refuse = |why: String| {
        RestorePlanError::Refused(vec![format!(
            "--write-concern {shown}: the server does not accept it: {why}"
        )])
    };
    let asked = tokio::time::timeout(
        WRITE_CONCERN_PROBE_TIMEOUT,
        client.database(db).run_command(cmd),
    )
    .await;
    match asked {
        Err(_) => Err(refuse(format!(
            "a write that changes nothing was not acknowledged within {WRITE_CONCERN_PROBE_TIMEOUT:?}"
        ))),
        Ok(Ok(reply)) => match reply.get_document("writeConcernError") {
            Ok(wce) => Err(refuse(
                wce.get_str("errmsg")
                    .unwrap_or("write concern error")
                    .to_string(),
            )),
            Err(_) => Ok(()),
        },
        Ok(Err(e)) => match crate::connect::code_of(&e) {
            // Bad value, failed to parse, type mismatch, unknown write concern mode,
            // unsatisfiable, write concern failed or timed out.
            Some(2 | 9 | 14 | 64 | 79 | 100) => Err(refuse(crate::connect::describe(&e))),
            _ if matches!(
                e.kind.as_ref(),
                mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(
                    _
                ))
            ) =>
            {
                Err(refuse(crate::connect::describe(&e)))
            }
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_concerns() {
        assert_eq!(parse_write_concern("majority"), Ok(doc! {"w": "majority"}));
        assert_eq!(parse_write_concern("1"), Ok(doc! {"w": 1}));
        assert_eq!(
            parse_write_concern(r#"{"w": 2, "j": true}"#),
            Ok(doc! {"w": 2, "j": true})
        );
        assert!(parse_write_concern("-1").is_err());
        assert!(parse_write_concern("{").is_err());
        assert!(parse_write_concern(r#"{"w": -1}"#).is_err());
        assert!(parse_write_concern(r#"{"w": true}"#).is_err());
        assert!(parse_write_concern(r#"{"j": "yes"}"#).is_err());
        assert!(parse_write_concern(r#"{"wtimeoutMS": 5}"#).is_err());
        assert!(parse_write_concern("").is_err());
        assert!(parse_write_concern("99999999999").is_err());
    }

    #[test]
    fn db_names() {
        assert!(valid_db_name("shop"));
        assert!(!valid_db_name("a.b"));
        assert!(!valid_db_name(""));
        assert!(!valid_db_name(&"x".repeat(64)));
    }
}
