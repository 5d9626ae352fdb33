//! Reading users and roles from a server, and writing them to one.

use std::collections::{BTreeSet, HashSet};

use bson::{Bson, Document, doc};
use futures_util::TryStreamExt;
use mongodb::{Client, Database};
use serde::Serialize;

use super::{Kind, Scope, identity, mechanisms, role_from_info, user_from_info};

/// Error reading or writing users and roles.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// A server command failed.
    #[error("{what}: {}", crate::connect::describe(source))]
    Driver {
        /// What was being done.
        what: String,
        /// The driver error.
        source: mongodb::error::Error,
    },
    /// Users would lose their passwords: refused unless asked for.
    #[error(
        "{target} cannot take stored credentials ({why}), so the users {} would be created without their passwords; restore with --users-without-credentials (in the mongorestore front end, --usersWithoutCredentials) to create them with random passwords that an administrator must reset, or leave users and roles out",
        .users.join(", ")
    )]
    NoStoredCredentials {
        /// The target, credentials removed.
        target: String,
        /// Why it cannot.
        why: String,
        /// `db.user` of each user concerned.
        users: Vec<String>,
    },
    /// The backup comes from standard input: its users are known only once the data
    /// before them was restored, too late to refuse them first.
    #[error(
        "{target} cannot take stored credentials ({why}), and the users of {} cannot be read before the data, the backup coming from standard input, which cannot be read twice; restore with --users-without-credentials (in the mongorestore front end, --usersWithoutCredentials) to create any new user with a random password that an administrator must reset, or leave users and roles out",
        .namespaces.join(", ")
    )]
    StreamedUsers {
        /// The target, credentials removed.
        target: String,
        /// Why it cannot.
        why: String,
        /// The namespaces of users in the backup.
        namespaces: Vec<String>,
    },
    /// A backup document is not a user or role.
    #[error("{0}")]
    Malformed(String),
}

fn driver(what: impl Into<String>) -> impl FnOnce(mongodb::error::Error) -> AuthzError {
    let what = what.into();
    move |source| AuthzError::Driver { what, source }
}

/// Users and roles of one scope, as stored documents.
#[derive(Debug, Clone, Default)]
pub struct Authz {
    /// `system.users` documents.
    pub users: Vec<Document>,
    /// `system.roles` documents.
    pub roles: Vec<Document>,
}

async fn find_all(
    db: &Database,
    coll: &str,
    filter: Document,
) -> Result<Vec<Document>, AuthzError> {
    let c = db.collection::<Document>(coll);
    let cur = c
        .find(filter)
        .sort(doc! {"_id": 1})
        .await
        .map_err(driver(format!("reading admin.{coll}")))?;
    cur.try_collect()
        .await
        .map_err(driver(format!("reading admin.{coll}")))
}

/// Reads the users and roles of `scope`: the documents of `admin.system.users` and
/// `admin.system.roles` where the server lets them be read (mongod), otherwise
/// (a server that keeps them out of reach of `find`) through `usersInfo` and
/// `rolesInfo` with `showCredentials`, reshaped into the documents they describe.
pub async fn read(client: &Client, scope: &Scope) -> Result<Authz, AuthzError> {
    let admin = client.database("admin");
    let filter = match scope {
        Scope::All => doc! {},
        Scope::Db(d) => doc! {"db": d},
    };
    let mut users = find_all(&admin, super::USERS, filter.clone()).await?;
    let mut roles = find_all(&admin, super::ROLES, filter).await?;
    if users.is_empty() {
        users = users_info(client, scope).await?;
    }
    if roles.is_empty() {
        let mut dbs: BTreeSet<String> = BTreeSet::new();
        match scope {
            Scope::Db(d) => {
                dbs.insert(d.clone());
            }
            Scope::All => {
                dbs.insert("admin".into());
                dbs.extend(
                    client
                        .list_database_names()
                        .await
                        .map_err(driver("listDatabases"))?,
                );
                // Roles may be defined on databases that hold no data.
                for u in &users {
                    dbs.extend(u.get_str("db").ok().map(str::to_string));
                    for r in u.get_array("roles").into_iter().flatten() {
                        if let Some(db) = r.as_document().and_then(|r| r.get_str("db").ok()) {
                            dbs.insert(db.to_string());
                        }
                    }
                }
            }
        }
        for db in dbs {
            let reply = client
                .database(&db)
                .run_command(doc! {
                    "rolesInfo": 1, "showPrivileges": true,
                    "showAuthenticationRestrictions": true, "showBuiltinRoles": false,
                })
                .await
                .map_err(driver(format!("rolesInfo on {db}")))?;
            for r in reply.get_array("roles").into_iter().flatten() {
                if let Some(r) = r.as_document()
                    && r.get_str("db").ok() == Some(db.as_str())
                    && !r.get_bool("isBuiltin").unwrap_or(false)
                {
                    roles.push(role_from_info(r.clone()));
                }
            }
        }
    }
    Ok(Authz { users, roles })
}

async fn users_info(client: &Client, scope: &Scope) -> Result<Vec<Document>, AuthzError> {
    let (db, arg) = match scope {
        Scope::All => ("admin", Bson::Document(doc! {"forAllDBs": true})),
        Scope::Db(d) => (d.as_str(), Bson::Int32(1)),
    };
    let reply = client
        .database(db)
        .run_command(doc! {"usersInfo": arg, "showCredentials": true})
        .await
        .map_err(driver(format!("usersInfo on {db}")))?;
    let mut out = Vec::new();
    for u in reply.get_array("users").into_iter().flatten() {
        let Some((udb, name)) = u.as_document().and_then(|u| identity(Kind::Users, u)) else {
            continue;
        };
        // Restrictions are shown only for one user at a time.
        let one = client
            .database(&udb)
            .run_command(doc! {
                "usersInfo": {"user": &name, "db": &udb}, "showCredentials": true,
                "showCustomData": true, "showAuthenticationRestrictions": true,
            })
            .await
            .map_err(driver(format!("usersInfo of {udb}.{name}")))?;
        if let Some(d) = one
            .get_array("users")
            .ok()
            .and_then(|a| a.first())
            .and_then(Bson::as_document)
        {
            out.push(user_from_info(d.clone()));
        }
    }
    out.sort_by(|a, b| a.get_str("_id").ok().cmp(&b.get_str("_id").ok()));
    Ok(out)
}

/// How users and roles are written.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Whose users and roles these are.
    pub scope: Scope,
    /// Which of users and roles the backup has for the scope: only those are written,
    /// and `drop` applies only to those (as mongorestore merges only the files it has).
    pub kinds: Vec<Kind>,
    /// Remove the users and roles of the scope that the backup does not have.
    pub drop: bool,
    /// Where stored credentials cannot be written, create users with random passwords.
    pub without_credentials: bool,
    /// `admin` collections for `_mergeAuthzCollections`.
    pub temp_users: String,
    /// See `temp_users`.
    pub temp_roles: String,
    /// `writeConcern` of the writes.
    pub write_concern: Option<Document>,
    /// The target, credentials removed (for messages).
    pub target: String,
}

/// What was done.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// `merge` (`_mergeAuthzCollections`) or `commands` (user and role commands).
    pub method: String,
    /// Users written with their stored credentials.
    pub users: Vec<String>,
    /// Users that existed on the target: roles and data updated, password kept.
    pub users_updated: Vec<String>,
    /// Users created with a random password that must be reset.
    pub users_without_credentials: Vec<String>,
    /// Roles created or updated.
    pub roles: Vec<String>,
    /// Users and roles removed (`drop`).
    pub dropped: Vec<String>,
}

/// How a server takes users and roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `_mergeAuthzCollections` (mongod): stored documents, credentials included.
    Merge,
    /// The user and role management commands: everything but stored credentials.
    Commands,
}

/// Why a server with [`Method::Commands`] cannot take stored credentials.
const NO_MERGE: &str = "it has no _mergeAuthzCollections and its createUser takes only a password";

/// How `client`'s server takes users and roles: [`Method::Merge`] when it lists
/// `_mergeAuthzCollections` among its commands.
pub async fn method(client: &Client) -> Method {
    let listed = client
        .database("admin")
        .run_command(doc! {"listCommands": 1})
        .await
        .ok()
        .and_then(|r| {
            r.get_document("commands")
                .ok()
                .map(|c| c.contains_key("_mergeAuthzCollections"))
        })
        .unwrap_or(false);
    if listed {
        Method::Merge
    } else {
        Method::Commands
    }
}

fn with_wc(mut cmd: Document, wc: &Option<Document>) -> Document {
    if let Some(wc) = wc {
        cmd.insert("writeConcern", wc.clone());
    }
    cmd
}

fn id_of(kind: Kind, d: &Document) -> Result<(String, String), AuthzError> {
    identity(kind, d).ok_or_else(|| {
        AuthzError::Malformed(format!(
            "a {} document of the backup has no {} and db: {d}",
            if kind == Kind::Users { "user" } else { "role" },
            if kind == Kind::Users { "user" } else { "role" },
        ))
    })
}

/// The users of `users` that are not among `existing` (`db.user` each): those the
/// user commands could create only with a new password.
fn new_users(
    users: &[Document],
    existing: &BTreeSet<(String, String)>,
) -> Result<Vec<String>, AuthzError> {
    let mut out = Vec::new();
    for u in users {
        let (db, name) = id_of(Kind::Users, u)?;
        if !existing.contains(&(db.clone(), name.clone())) {
            out.push(format!("{db}.{name}"));
        }
    }
    Ok(out)
}

/// Checks, before anything is written, that `users` can be restored as `opts` asks:
/// on a server without `_mergeAuthzCollections`, the users the target does not have
/// yet would lose their passwords, so they are refused (each named) unless
/// `opts.without_credentials`. Returns the method [`apply`] will use.
pub async fn check(
    client: &Client,
    users: &[Document],
    opts: &ApplyOptions,
) -> Result<Method, AuthzError> {
    let m = method(client).await;
    if m == Method::Merge || opts.without_credentials || users.is_empty() {
        return Ok(m);
    }
    let existing = existing(client, Kind::Users, &opts.scope).await?;
    let lost = new_users(users, &existing)?;
    if lost.is_empty() {
        Ok(m)
    } else {
        Err(AuthzError::NoStoredCredentials {
            target: opts.target.clone(),
            why: NO_MERGE.into(),
            users: lost,
        })
    }
}

/// The same check for a backup on standard input, whose users cannot be read before
/// the data: on a server without `_mergeAuthzCollections`, users (the namespaces
/// `users_namespaces`) are refused unless `opts.without_credentials`.
pub async fn check_unread(
    client: &Client,
    users_namespaces: &[String],
    opts: &ApplyOptions,
) -> Result<Method, AuthzError> {
    let m = method(client).await;
    if m == Method::Merge || opts.without_credentials || users_namespaces.is_empty() {
        return Ok(m);
    }
    Err(AuthzError::StreamedUsers {
        target: opts.target.clone(),
        why: NO_MERGE.into(),
        namespaces: users_namespaces.to_vec(),
    })
}

/// The auth-schema version in `admin.system.version` documents (the one whose `_id` is
/// `authSchema`), if any.
pub fn auth_version_of(docs: &[Document]) -> Option<i64> {
    docs.iter()
        .find(|d| d.get_str("_id").ok() == Some("authSchema"))
        .and_then(|d| match d.get("currentVersion") {
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            Some(Bson::Int64(n)) => Some(*n),
            Some(Bson::Double(f)) => Some(*f as i64),
            _ => None,
        })
}

/// The auth-schema version of the users of a backup, as mongorestore infers it: the
/// one stored in its `system.version` documents (`stored`); without them, 5 for a
/// source server of version 3.0 or newer (SCRAM, the only schema since; the document
/// is gone from 8.1), 3 for one database's users, 1 otherwise (a 2.4 dump).
pub fn dump_auth_version(stored: Option<i64>, source: (u32, u32), one_db: bool) -> i64 {
    match stored {
        Some(v) => v,
        None if source >= (3, 0) => 5,
        None if one_db => 3,
        None => 1,
    }
}

/// The target's auth-schema version (`getParameter authSchemaVersion`; 1 for a server
/// that does not know the parameter, as mongorestore assumes).
pub async fn server_auth_version(client: &Client) -> i64 {
    let reply = client
        .database("admin")
        .run_command(doc! {"getParameter": 1, "authSchemaVersion": 1})
        .await;
    match reply.ok().and_then(|r| r.get("authSchemaVersion").cloned()) {
        Some(Bson::Int32(n)) => i64::from(n),
        Some(Bson::Int64(n)) => n,
        Some(Bson::Double(f)) => f as i64,
        _ => 1,
    }
}

/// Whether users and roles of auth-schema version `dump` can be merged into a server
/// of version `server`: mongorestore's pairs (3→3, 3→5, 5→5, 1→1, 1→3); 2 and 4 are
/// upgrades in progress.
pub fn check_auth_versions(dump: i64, server: i64) -> Result<(), String> {
    for (v, whose) in [(dump, "a backup"), (server, "a server")] {
        if v == 2 || v == 4 {
            return Err(format!(
                "cannot restore users and roles {} {whose} of auth-schema version {v}: finish the upgrade of its users (authSchemaUpgrade) or roll it back",
                if whose == "a backup" { "from" } else { "to" }
            ));
        }
    }
    match (dump, server) {
        (3, 3) | (3, 5) | (5, 5) | (1, 1) | (1, 3) => Ok(()),
        (d, s) => Err(format!(
            "cannot restore users of auth-schema version {d} to a server of auth-schema version {s}"
        )),
    }
}

/// A random password for a user created without its credentials: 64 hex digits.
fn random_password() -> String {
    format!(
        "{}{}",
        bson::Uuid::new().to_string().replace('-', ""),
        bson::Uuid::new().to_string().replace('-', "")
    )
}

/// The commands that write role `r` on its database: one with its privileges and
/// restrictions (`createRole` when it is new, `updateRole` when it exists), created
/// without inherited roles, then, when it inherits any, an `updateRole` granting them
/// (so roles may refer to one another in any order).
fn role_commands(r: &Document, exists: bool) -> Result<(Document, Option<Document>), AuthzError> {
    let (_, name) = id_of(Kind::Roles, r)?;
    let privileges = r.get_array("privileges").cloned().unwrap_or_default();
    let mut first = if exists {
        doc! {"updateRole": &name, "privileges": privileges, "roles": []}
    } else {
        doc! {"createRole": &name, "privileges": privileges, "roles": []}
    };
    if let Ok(a) = r.get_array("authenticationRestrictions") {
        first.insert("authenticationRestrictions", a.clone());
    }
    let roles = r.get_array("roles").cloned().unwrap_or_default();
    let grant = (!roles.is_empty()).then(|| doc! {"updateRole": &name, "roles": roles});
    Ok((first, grant))
}

/// The command that writes user `u` on its database: `updateUser` (roles, custom data,
/// restrictions; the target's password kept) when it exists, otherwise `createUser`
/// with `password` and the mechanisms the user had credentials for.
fn user_command(u: &Document, exists: bool, password: &str) -> Result<Document, AuthzError> {
    let (_, name) = id_of(Kind::Users, u)?;
    let roles = u.get_array("roles").cloned().unwrap_or_default();
    let mut cmd = if exists {
        doc! {"updateUser": &name, "roles": roles}
    } else {
        let mut c = doc! {"createUser": &name, "pwd": password, "roles": roles};
        let mechs = mechanisms(u);
        if !mechs.is_empty() {
            c.insert("mechanisms", mechs);
        }
        c
    };
    if let Ok(d) = u.get_document("customData") {
        cmd.insert("customData", d.clone());
    }
    if let Ok(a) = u.get_array("authenticationRestrictions") {
        cmd.insert("authenticationRestrictions", a.clone());
    }
    Ok(cmd)
}

/// Writes users and roles to the target.
///
/// On a server with `_mergeAuthzCollections` (mongod), as mongorestore does: the
/// documents go into temporary `admin` collections, are merged in one command
/// (credentials kept as stored), and the temporary collections are dropped.
///
/// Otherwise through `createRole`/`updateRole` and `createUser`/`updateUser`, which
/// take everything but stored credentials: roles first (see [`role_commands`]); users
/// that already exist are updated and keep the target's password; users that do not
/// are refused, all of them named, before anything is written (the same refusal as
/// [`check`], which a restore makes before its data), unless `without_credentials`
/// asks to create them with random passwords.
pub async fn apply(
    client: &Client,
    authz: &Authz,
    opts: &ApplyOptions,
) -> Result<ApplyReport, AuthzError> {
    if method(client).await == Method::Merge {
        return merge(client, authz, opts).await;
    }
    let mut report = ApplyReport {
        method: "commands".into(),
        ..ApplyReport::default()
    };
    let has = |k: Kind| opts.kinds.contains(&k);
    // What exists now.
    let existing_users = existing(client, Kind::Users, &opts.scope).await?;
    let existing_roles = existing(client, Kind::Roles, &opts.scope).await?;
    let lost = new_users(&authz.users, &existing_users)?;
    if !lost.is_empty() && !opts.without_credentials {
        return Err(AuthzError::NoStoredCredentials {
            target: opts.target.clone(),
            why: NO_MERGE.into(),
            users: lost,
        });
    }
    let wc = &opts.write_concern;
    let mut grants = Vec::new();
    for r in &authz.roles {
        let (db, name) = id_of(Kind::Roles, r)?;
        let (first, grant) =
            role_commands(r, existing_roles.contains(&(db.clone(), name.clone())))?;
        client
            .database(&db)
            .run_command(with_wc(first, wc))
            .await
            .map_err(driver(format!("writing role {db}.{name}")))?;
        report.roles.push(format!("{db}.{name}"));
        grants.extend(grant.map(|g| (db, name, g)));
    }
    for (db, name, grant) in grants {
        client
            .database(&db)
            .run_command(with_wc(grant, wc))
            .await
            .map_err(driver(format!("granting roles to role {db}.{name}")))?;
    }
    for u in &authz.users {
        let (db, name) = id_of(Kind::Users, u)?;
        let exists = existing_users.contains(&(db.clone(), name.clone()));
        client
            .database(&db)
            .run_command(with_wc(user_command(u, exists, &random_password())?, wc))
            .await
            .map_err(driver(format!("writing user {db}.{name}")))?;
        if exists {
            report.users_updated.push(format!("{db}.{name}"));
        } else {
            report
                .users_without_credentials
                .push(format!("{db}.{name}"));
        }
    }
    if opts.drop {
        let keep = |kind: Kind, docs: &[Document]| -> HashSet<(String, String)> {
            docs.iter().filter_map(|d| identity(kind, d)).collect()
        };
        let (ku, kr) = (
            keep(Kind::Users, &authz.users),
            keep(Kind::Roles, &authz.roles),
        );
        let users = existing_users
            .iter()
            .filter(|u| has(Kind::Users) && !ku.contains(*u));
        for (db, name) in users {
            client
                .database(db)
                .run_command(with_wc(doc! {"dropUser": name}, wc))
                .await
                .map_err(driver(format!("dropping user {db}.{name}")))?;
            report.dropped.push(format!("user {db}.{name}"));
        }
        let roles = existing_roles
            .iter()
            .filter(|r| has(Kind::Roles) && !kr.contains(*r));
        for (db, name) in roles {
            client
                .database(db)
                .run_command(with_wc(doc! {"dropRole": name}, wc))
                .await
                .map_err(driver(format!("dropping role {db}.{name}")))?;
            report.dropped.push(format!("role {db}.{name}"));
        }
    }
    Ok(report)
}

/// `(db, name)` of the users or roles of `scope` on the target.
async fn existing(
    client: &Client,
    kind: Kind,
    scope: &Scope,
) -> Result<BTreeSet<(String, String)>, AuthzError> {
    let mut out = BTreeSet::new();
    match kind {
        Kind::Users => {
            let (db, arg) = match scope {
                Scope::All => ("admin", Bson::Document(doc! {"forAllDBs": true})),
                Scope::Db(d) => (d.as_str(), Bson::Int32(1)),
            };
            let reply = client
                .database(db)
                .run_command(doc! {"usersInfo": arg})
                .await
                .map_err(driver(format!("usersInfo on {db}")))?;
            for u in reply.get_array("users").into_iter().flatten() {
                if let Some(id) = u.as_document().and_then(|u| identity(Kind::Users, u)) {
                    out.insert(id);
                }
            }
        }
        Kind::Roles => {
            let dbs: Vec<String> = match scope {
                Scope::Db(d) => vec![d.clone()],
                Scope::All => {
                    let mut v = client
                        .list_database_names()
                        .await
                        .map_err(driver("listDatabases"))?;
                    if !v.iter().any(|d| d == "admin") {
                        v.push("admin".into());
                    }
                    v
                }
            };
            for db in dbs {
                let reply = client
                    .database(&db)
                    .run_command(doc! {"rolesInfo": 1, "showBuiltinRoles": false})
                    .await
                    .map_err(driver(format!("rolesInfo on {db}")))?;
                for r in reply.get_array("roles").into_iter().flatten() {
                    if let Some(r) = r.as_document()
                        && !r.get_bool("isBuiltin").unwrap_or(false)
                        && let Some(id) = identity(Kind::Roles, r)
                        && id.0 == db
                    {
                        out.insert(id);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The temporary `admin` collections of a merge, each with the documents it receives:
/// users and roles, those the backup has (see [`ApplyOptions::kinds`]).
fn merge_collections<'a>(
    authz: &'a Authz,
    opts: &'a ApplyOptions,
) -> Vec<(Kind, &'a str, &'a [Document])> {
    let mut out = Vec::new();
    if opts.kinds.contains(&Kind::Users) {
        out.push((
            Kind::Users,
            opts.temp_users.as_str(),
            authz.users.as_slice(),
        ));
    }
    if opts.kinds.contains(&Kind::Roles) {
        out.push((
            Kind::Roles,
            opts.temp_roles.as_str(),
            authz.roles.as_slice(),
        ));
    }
    out
}

/// mongorestore's `_mergeAuthzCollections` command: the temporary collections the
/// backup filled (`tempUsersCollection` merges into `system.users`,
/// `tempRolesCollection` into `system.roles`), `drop` (replace the scope's users and
/// roles rather than add to them), `db` (`""`: every database) and the write concern.
fn merge_command(opts: &ApplyOptions) -> Document {
    let mut cmd = doc! {"_mergeAuthzCollections": 1};
    if opts.kinds.contains(&Kind::Users) {
        cmd.insert("tempUsersCollection", format!("admin.{}", opts.temp_users));
    }
    if opts.kinds.contains(&Kind::Roles) {
        cmd.insert("tempRolesCollection", format!("admin.{}", opts.temp_roles));
    }
    cmd.insert("drop", opts.drop);
    cmd.insert("db", opts.scope.merge_db());
    with_wc(cmd, &opts.write_concern)
}

/// mongorestore's way: each temporary collection dropped and filled, one merge
/// command, the temporary collections dropped whatever the outcome.
async fn merge(
    client: &Client,
    authz: &Authz,
    opts: &ApplyOptions,
) -> Result<ApplyReport, AuthzError> {
    let admin = client.database("admin");
    let mut report = ApplyReport {
        method: "merge".into(),
        ..ApplyReport::default()
    };
    let temps = merge_collections(authz, opts);
    if temps.is_empty() {
        return Ok(report);
    }
    let filled = async {
        for (_, coll, docs) in &temps {
            let c = admin.collection::<Document>(coll);
            c.drop()
                .await
                .map_err(driver(format!("dropping admin.{coll}")))?;
            if !docs.is_empty() {
                c.insert_many(docs.iter())
                    .await
                    .map_err(driver(format!("filling admin.{coll}")))?;
            }
        }
        admin
            .run_command(merge_command(opts))
            .await
            .map_err(driver("merging users and roles (_mergeAuthzCollections)"))
    }
    .await;
    for (_, coll, _) in &temps {
        let _ = admin.collection::<Document>(coll).drop().await;
    }
    filled?;
    for (kind, _, docs) in &temps {
        let names = docs
            .iter()
            .filter_map(|d| identity(*kind, d).map(|(d, n)| format!("{d}.{n}")));
        match kind {
            Kind::Users => report.users.extend(names),
            Kind::Roles => report.roles.extend(names),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(scope: Scope, kinds: &[Kind], drop: bool) -> ApplyOptions {
        ApplyOptions {
            scope,
            kinds: kinds.to_vec(),
            drop,
            without_credentials: false,
            temp_users: "tempusers".into(),
            temp_roles: "temproles".into(),
            write_concern: Some(doc! {"w": "majority"}),
            target: "mongodb://h/".into(),
        }
    }

    /// The merge command is mongorestore's, field for field and in its order.
    #[test]
    fn merge_command_is_mongorestores() {
        let o = opts(Scope::All, &[Kind::Users, Kind::Roles], true);
        assert_eq!(
            merge_command(&o),
            doc! {
                "_mergeAuthzCollections": 1,
                "tempUsersCollection": "admin.tempusers",
                "tempRolesCollection": "admin.temproles",
                "drop": true,
                "db": "",
                "writeConcern": {"w": "majority"},
            }
        );
        // One database's, users only (a backup without roles), other temporary names,
        // no write concern: only the users are merged, and only that database's.
        let mut o = opts(Scope::Db("app".into()), &[Kind::Users], false);
        o.temp_users = "myusers".into();
        o.write_concern = None;
        assert_eq!(
            merge_command(&o),
            doc! {
                "_mergeAuthzCollections": 1,
                "tempUsersCollection": "admin.myusers",
                "drop": false,
                "db": "app",
            }
        );
    }

    /// The temporary collections receive the stored documents as they are, credentials
    /// included, and only for the kinds the backup has.
    #[test]
    fn merge_fills_the_temporary_collections_with_the_stored_documents() {
        let user = doc! {
            "_id": "app.a", "user": "a", "db": "app",
            "credentials": {"SCRAM-SHA-256": {"iterationCount": 15000, "salt": "c2FsdA==", "storedKey": "a2V5", "serverKey": "c2s="}},
            "roles": [{"role": "read", "db": "app"}],
        };
        let authz = Authz {
            users: vec![user.clone()],
            roles: Vec::new(),
        };
        let o = opts(Scope::All, &[Kind::Users, Kind::Roles], false);
        let temps = merge_collections(&authz, &o);
        assert_eq!(temps.len(), 2);
        assert_eq!((temps[0].0, temps[0].1), (Kind::Users, "tempusers"));
        assert_eq!(temps[0].2, [user]);
        assert_eq!(
            (temps[1].0, temps[1].1, temps[1].2.len()),
            (Kind::Roles, "temproles", 0)
        );
        let o = opts(Scope::All, &[Kind::Roles], false);
        let temps = merge_collections(&authz, &o);
        assert_eq!(temps.len(), 1);
        assert_eq!(temps[0].1, "temproles");
        assert!(merge_collections(&authz, &opts(Scope::All, &[], true)).is_empty());
    }

    /// mongo-tools' fixtures `auth_version_3.bson` and `auth_version_5.bson`: the
    /// version read, and the pairs mongorestore accepts.
    #[test]
    fn auth_schema_versions() {
        let read = |name: &str| {
            let path = format!(
                "{}/tests/fixtures/mongo-tools/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let data = std::fs::read(&path).unwrap();
            crate::authz::documents(Kind::Roles, &data, &Scope::All, &|_| None).unwrap()
        };
        assert_eq!(auth_version_of(&read("auth_version_3.bson")), Some(3));
        assert_eq!(auth_version_of(&read("auth_version_5.bson")), Some(5));
        assert_eq!(
            auth_version_of(&[doc! {"_id": "featureCompatibilityVersion"}]),
            None
        );
        assert_eq!(dump_auth_version(Some(3), (8, 0), false), 3);
        assert_eq!(dump_auth_version(None, (8, 2), false), 5);
        assert_eq!(dump_auth_version(None, (0, 0), true), 3);
        assert_eq!(dump_auth_version(None, (0, 0), false), 1);
        for (d, s) in [(3, 3), (3, 5), (5, 5), (1, 1), (1, 3)] {
            assert!(check_auth_versions(d, s).is_ok(), "{d} -> {s}");
        }
        for (d, s) in [(1, 5), (5, 3), (5, 1), (3, 1)] {
            let e = check_auth_versions(d, s).unwrap_err();
            assert!(
                e.contains(&format!(
                    "version {d} to a server of auth-schema version {s}"
                )),
                "{e}"
            );
        }
        assert!(
            check_auth_versions(4, 5)
                .unwrap_err()
                .contains("finish the upgrade")
        );
        assert!(
            check_auth_versions(5, 2)
                .unwrap_err()
                .contains("to a server")
        );
    }

    #[test]
    fn role_commands_create_then_grant() {
        let r = doc! {
            "_id": "app.lead", "role": "lead", "db": "app",
            "privileges": [{"resource": {"db": "app", "collection": ""}, "actions": ["find"]}],
            "roles": [{"role": "reader", "db": "app"}],
            "authenticationRestrictions": [{"clientSource": ["10.0.0.0/8"]}],
        };
        let (first, grant) = role_commands(&r, false).unwrap();
        assert_eq!(
            first,
            doc! {
                "createRole": "lead",
                "privileges": [{"resource": {"db": "app", "collection": ""}, "actions": ["find"]}],
                "roles": [],
                "authenticationRestrictions": [{"clientSource": ["10.0.0.0/8"]}],
            }
        );
        assert_eq!(
            grant,
            Some(doc! {"updateRole": "lead", "roles": [{"role": "reader", "db": "app"}]})
        );
        let (first, grant) =
            role_commands(&doc! {"role": "r", "db": "app", "privileges": []}, true).unwrap();
        assert_eq!(
            first,
            doc! {"updateRole": "r", "privileges": [], "roles": []}
        );
        assert_eq!(grant, None);
        assert!(role_commands(&doc! {"db": "app"}, false).is_err());
    }

    #[test]
    fn user_commands_keep_everything_but_credentials() {
        let u = doc! {
            "_id": "app.alice", "user": "alice", "db": "app",
            "credentials": {"SCRAM-SHA-1": {}, "SCRAM-SHA-256": {}},
            "roles": [{"role": "read", "db": "app"}],
            "customData": {"team": "billing"},
            "authenticationRestrictions": [{"clientSource": ["127.0.0.1"]}],
        };
        assert_eq!(
            user_command(&u, false, "pw").unwrap(),
            doc! {
                "createUser": "alice", "pwd": "pw",
                "roles": [{"role": "read", "db": "app"}],
                "mechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
                "customData": {"team": "billing"},
                "authenticationRestrictions": [{"clientSource": ["127.0.0.1"]}],
            }
        );
        assert_eq!(
            user_command(&u, true, "pw").unwrap(),
            doc! {
                "updateUser": "alice",
                "roles": [{"role": "read", "db": "app"}],
                "customData": {"team": "billing"},
                "authenticationRestrictions": [{"clientSource": ["127.0.0.1"]}],
            }
        );
        let p = random_password();
        assert_eq!(p.len(), 64);
        assert_ne!(p, random_password());
    }

    #[test]
    fn new_users_are_those_the_target_lacks() {
        let users = [
            doc! {"user": "a", "db": "app"},
            doc! {"user": "b", "db": "app"},
            doc! {"user": "a", "db": "other"},
        ];
        let existing: BTreeSet<(String, String)> = [("app".to_string(), "b".to_string())].into();
        assert_eq!(new_users(&users, &existing).unwrap(), ["app.a", "other.a"]);
        assert!(new_users(&[doc! {"user": "x"}], &existing).is_err());
        let e = AuthzError::NoStoredCredentials {
            target: "mongodb://h/".into(),
            why: NO_MERGE.into(),
            users: vec!["app.a".into(), "other.a".into()],
        }
        .to_string();
        assert!(
            e.contains("the users app.a, other.a")
                && e.contains("--users-without-credentials")
                && e.contains("--usersWithoutCredentials"),
            "{e}"
        );
    }
}
