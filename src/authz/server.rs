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
        "users not restored: {target} cannot take stored credentials ({why}), so {} would be created without their passwords; restore with --users-without-credentials (in the mongorestore front end, --usersWithoutCredentials) to create them with random passwords that an administrator must reset",
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

/// Whether the server has `_mergeAuthzCollections` (mongod).
async fn has_merge(client: &Client) -> bool {
    client
        .database("admin")
        .run_command(doc! {"listCommands": 1})
        .await
        .ok()
        .and_then(|r| {
            r.get_document("commands")
                .ok()
                .map(|c| c.contains_key("_mergeAuthzCollections"))
        })
        .unwrap_or(false)
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

/// Writes users and roles to the target.
///
/// On a server with `_mergeAuthzCollections` (mongod), as mongorestore does: the
/// documents go into temporary `admin` collections, are merged in one command
/// (credentials kept as stored), and the temporary collections are dropped.
///
/// Otherwise through `createRole`/`updateRole` and `createUser`/`updateUser`, which
/// take everything but stored credentials: roles first (created without their roles,
/// then granted them, so they may refer to one another in any order); users that
/// already exist are updated and keep the target's password; users that do not are
/// refused, all of them named, before anything is written, unless
/// `without_credentials` asks to create them with random passwords.
pub async fn apply(
    client: &Client,
    authz: &Authz,
    opts: &ApplyOptions,
) -> Result<ApplyReport, AuthzError> {
    if has_merge(client).await {
        return merge(client, authz, opts).await;
    }
    let mut report = ApplyReport {
        method: "commands".into(),
        ..ApplyReport::default()
    };
    // What exists now.
    let existing_users = existing(client, Kind::Users, &opts.scope).await?;
    let existing_roles = existing(client, Kind::Roles, &opts.scope).await?;
    let mut new_users = Vec::new();
    for u in &authz.users {
        let (db, name) = id_of(Kind::Users, u)?;
        if !existing_users.contains(&(db.clone(), name.clone())) {
            new_users.push(format!("{db}.{name}"));
        }
    }
    if !new_users.is_empty() && !opts.without_credentials {
        return Err(AuthzError::NoStoredCredentials {
            target: opts.target.clone(),
            why: "it has no _mergeAuthzCollections and its createUser takes only a password".into(),
            users: new_users,
        });
    }
    let wc = &opts.write_concern;
    // Roles: privileges first, then the roles they inherit.
    for r in &authz.roles {
        let (db, name) = id_of(Kind::Roles, r)?;
        let privileges = r.get_array("privileges").cloned().unwrap_or_default();
        let mut cmd = if existing_roles.contains(&(db.clone(), name.clone())) {
            doc! {"updateRole": &name, "privileges": privileges, "roles": []}
        } else {
            doc! {"createRole": &name, "privileges": privileges, "roles": []}
        };
        if let Ok(a) = r.get_array("authenticationRestrictions") {
            cmd.insert("authenticationRestrictions", a.clone());
        }
        client
            .database(&db)
            .run_command(with_wc(cmd, wc))
            .await
            .map_err(driver(format!("writing role {db}.{name}")))?;
        report.roles.push(format!("{db}.{name}"));
    }
    for r in &authz.roles {
        let (db, name) = id_of(Kind::Roles, r)?;
        let roles = r.get_array("roles").cloned().unwrap_or_default();
        if roles.is_empty() {
            continue;
        }
        client
            .database(&db)
            .run_command(with_wc(doc! {"updateRole": &name, "roles": roles}, wc))
            .await
            .map_err(driver(format!("granting roles to role {db}.{name}")))?;
    }
    for u in &authz.users {
        let (db, name) = id_of(Kind::Users, u)?;
        let roles = u.get_array("roles").cloned().unwrap_or_default();
        let exists = existing_users.contains(&(db.clone(), name.clone()));
        let mut cmd = if exists {
            doc! {"updateUser": &name, "roles": roles}
        } else {
            let pwd = format!(
                "{}{}",
                bson::Uuid::new().to_string().replace('-', ""),
                bson::Uuid::new().to_string().replace('-', "")
            );
            let mut c = doc! {"createUser": &name, "pwd": pwd, "roles": roles};
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
        client
            .database(&db)
            .run_command(with_wc(cmd, wc))
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
        for (db, name) in existing_users.iter().filter(|u| !ku.contains(*u)) {
            client
                .database(db)
                .run_command(with_wc(doc! {"dropUser": name}, wc))
                .await
                .map_err(driver(format!("dropping user {db}.{name}")))?;
            report.dropped.push(format!("user {db}.{name}"));
        }
        for (db, name) in existing_roles.iter().filter(|r| !kr.contains(*r)) {
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

/// mongorestore's way: temporary collections merged by the server.
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
    for (coll, docs) in [
        (&opts.temp_users, &authz.users),
        (&opts.temp_roles, &authz.roles),
    ] {
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
    let cmd = with_wc(
        doc! {
            "_mergeAuthzCollections": 1,
            "tempUsersCollection": format!("admin.{}", opts.temp_users),
            "tempRolesCollection": format!("admin.{}", opts.temp_roles),
            "drop": opts.drop,
            "db": opts.scope.merge_db(),
        },
        &opts.write_concern,
    );
    let merged = admin
        .run_command(cmd)
        .await
        .map_err(driver("merging users and roles (_mergeAuthzCollections)"));
    for coll in [&opts.temp_users, &opts.temp_roles] {
        let _ = admin.collection::<Document>(coll).drop().await;
    }
    merged?;
    report.users = authz
        .users
        .iter()
        .filter_map(|u| identity(Kind::Users, u).map(|(d, n)| format!("{d}.{n}")))
        .collect();
    report.roles = authz
        .roles
        .iter()
        .filter_map(|r| identity(Kind::Roles, r).map(|(d, n)| format!("{d}.{n}")))
        .collect();
    Ok(report)
}
