//! Users and roles: what a backup keeps of `admin.system.users` and
//! `admin.system.roles`, and how they are put back.
//!
//! A full dump (or one of `admin`) stores them as the namespaces `admin.system.users`
//! and `admin.system.roles`; a dump of one database with its users and roles stores
//! only that database's as `<db>.$admin.system.users` and `<db>.$admin.system.roles`,
//! the names mongodump's `--dumpDbUsersAndRoles` uses. Their documents have the shape
//! of the server's own `system.users`/`system.roles` documents: credentials (SCRAM
//! salts, stored and server keys), roles, privileges, `customData` and
//! `authenticationRestrictions` included.
//!
//! [`server`] reads them from a server and writes them back: through
//! `_mergeAuthzCollections` where the server has it (mongod, as mongorestore does),
//! otherwise through the user and role management commands, which cannot take stored
//! credentials (see [`server::apply`]).
//!
//! These documents are few and small; unlike collection data they are decoded.

pub mod server;

use bson::{Bson, Document};

/// Collection of users in `admin`.
pub const USERS: &str = "system.users";
/// Collection of roles in `admin`.
pub const ROLES: &str = "system.roles";
/// Prefix of the per-database copies (`<db>.$admin.system.users`).
pub const DB_PREFIX: &str = "$admin.";

/// Which users and roles a namespace of a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every database's (`admin.system.users`).
    All,
    /// One database's (`<db>.$admin.system.users`).
    Db(String),
}

impl Scope {
    /// The `db` argument of `_mergeAuthzCollections` (`""` for every database).
    pub fn merge_db(&self) -> &str {
        match self {
            Scope::All => "",
            Scope::Db(d) => d,
        }
    }

    /// Whether a user or role defined on `db` is in this scope.
    pub fn covers(&self, db: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Db(d) => d == db,
        }
    }
}

/// Users or roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `system.users`.
    Users,
    /// `system.roles`.
    Roles,
}

/// Recognises a namespace of users or roles: `admin.system.users` (every database's)
/// or `<db>.$admin.system.users` (one database's), and the same for roles.
pub fn classify(db: &str, coll: &str) -> Option<(Kind, Scope)> {
    let (name, scope) = match coll.strip_prefix(DB_PREFIX) {
        Some(rest) => (rest, Scope::Db(db.to_string())),
        None if db == "admin" => (coll, Scope::All),
        None => return None,
    };
    let kind = match name {
        USERS => Kind::Users,
        ROLES => Kind::Roles,
        _ => return None,
    };
    Some((kind, scope))
}

/// The namespace (database, collection) that stores `kind` for `scope`.
pub fn namespace_of(kind: Kind, scope: &Scope) -> (String, String) {
    let name = match kind {
        Kind::Users => USERS,
        Kind::Roles => ROLES,
    };
    match scope {
        Scope::All => ("admin".into(), name.into()),
        Scope::Db(d) => (d.clone(), format!("{DB_PREFIX}{name}")),
    }
}

/// Fields of a `usersInfo` reply that the server derives and does not store.
const USER_DERIVED: [&str; 5] = [
    "mechanisms",
    "inheritedRoles",
    "inheritedPrivileges",
    "inheritedAuthenticationRestrictions",
    "privileges",
];
/// Fields of a `rolesInfo` reply that the server derives and does not store.
const ROLE_DERIVED: [&str; 5] = [
    "isBuiltin",
    "inheritedRoles",
    "inheritedPrivileges",
    "inheritedAuthenticationRestrictions",
    "warnings",
];

/// A `usersInfo` entry as the `system.users` document it describes.
pub fn user_from_info(mut info: Document) -> Document {
    for f in USER_DERIVED {
        info.remove(f);
    }
    if let Some(r) = info.remove("authenticationRestrictions") {
        let flat = flatten_restrictions(r);
        if !flat.is_empty() {
            info.insert("authenticationRestrictions", flat);
        }
    }
    info
}

/// A `rolesInfo` entry as the `system.roles` document it describes.
pub fn role_from_info(mut info: Document) -> Document {
    for f in ROLE_DERIVED {
        info.remove(f);
    }
    if let Some(r) = info.remove("authenticationRestrictions") {
        let flat = flatten_restrictions(r);
        if !flat.is_empty() {
            info.insert("authenticationRestrictions", flat);
        }
    }
    info
}

/// `rolesInfo` reports a role's restrictions as a list of lists; `system.roles` and
/// `createRole` take one list.
fn flatten_restrictions(r: Bson) -> Vec<Bson> {
    let Bson::Array(items) = r else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Bson::Array(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    out
}

/// A user's or role's `db`, name and `_id` (`db.name`).
pub fn identity(kind: Kind, d: &Document) -> Option<(String, String)> {
    let name_field = match kind {
        Kind::Users => "user",
        Kind::Roles => "role",
    };
    Some((
        d.get_str("db").ok()?.to_string(),
        d.get_str(name_field).ok()?.to_string(),
    ))
}

/// Moves a user or role document to the databases `map` gives: its own `db` and
/// `_id`, the `db` of the roles it has, and (for roles) the databases of its
/// privileges' resources. `map` returns the new name of a database or `None` to keep it.
pub fn remap(kind: Kind, d: &mut Document, map: &dyn Fn(&str) -> Option<String>) {
    let name_field = match kind {
        Kind::Users => "user",
        Kind::Roles => "role",
    };
    if let Ok(db) = d.get_str("db")
        && let Some(to) = map(db)
    {
        let name = d.get_str(name_field).unwrap_or("").to_string();
        d.insert("_id", format!("{to}.{name}"));
        d.insert("db", to);
    }
    if let Ok(roles) = d.get_array_mut("roles") {
        for r in roles.iter_mut() {
            if let Bson::Document(r) = r
                && let Ok(db) = r.get_str("db")
                && let Some(to) = map(db)
            {
                r.insert("db", to);
            }
        }
    }
    if kind == Kind::Roles
        && let Ok(privs) = d.get_array_mut("privileges")
    {
        for p in privs.iter_mut() {
            if let Bson::Document(p) = p
                && let Ok(res) = p.get_document_mut("resource")
                && let Ok(db) = res.get_str("db")
                && !db.is_empty()
                && let Some(to) = map(db)
            {
                res.insert("db", to);
            }
        }
    }
}

/// The user or role documents of one namespace of a backup (`data`: its raw documents,
/// one after another) as they are written to the target: moved to the databases `map`
/// gives (see [`remap`]), and, for one database's (`scope` [`Scope::Db`]), to that
/// database also when the backup names it otherwise (a database restored under another
/// name without a rename pattern).
pub fn documents(
    kind: Kind,
    data: &[u8],
    scope: &Scope,
    map: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Document>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let len = data.get(at..at + 4).map_or(0, |b| {
            i32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(0) as usize
        });
        let raw = data
            .get(at..at + len)
            .ok_or_else(|| format!("a document at byte {at} runs past the end of the data"))?;
        let raw = bson::RawDocument::from_bytes(raw).map_err(|e| format!("at byte {at}: {e}"))?;
        let mut d = Document::try_from(raw).map_err(|e| format!("at byte {at}: {e}"))?;
        at += len;
        remap(kind, &mut d, map);
        if let Scope::Db(db) = scope
            && let Ok(own) = d.get_str("db").map(str::to_string)
            && own != *db
        {
            remap(kind, &mut d, &|x: &str| (x == own).then(|| db.clone()));
        }
        out.push(d);
    }
    Ok(out)
}

/// The mechanisms a user document has credentials for (`SCRAM-SHA-1`, `SCRAM-SHA-256`).
pub fn mechanisms(user: &Document) -> Vec<String> {
    user.get_document("credentials")
        .map(|c| {
            c.keys()
                .filter(|k| k.starts_with("SCRAM-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn namespaces_are_recognised() {
        assert_eq!(
            classify("admin", "system.users"),
            Some((Kind::Users, Scope::All))
        );
        assert_eq!(
            classify("app", "$admin.system.roles"),
            Some((Kind::Roles, Scope::Db("app".into())))
        );
        assert_eq!(classify("app", "system.users"), None);
        assert_eq!(classify("admin", "system.version"), None);
        assert_eq!(classify("app", "$admin.system.version"), None);
        assert_eq!(
            namespace_of(Kind::Users, &Scope::Db("app".into())),
            ("app".into(), "$admin.system.users".into())
        );
    }

    #[test]
    fn info_replies_become_stored_documents() {
        let u = user_from_info(doc! {
            "_id": "app.a", "user": "a", "db": "app",
            "credentials": {"SCRAM-SHA-256": {"iterationCount": 15000}},
            "roles": [{"role": "read", "db": "app"}],
            "mechanisms": ["SCRAM-SHA-256"], "inheritedRoles": [],
            "authenticationRestrictions": [{"clientSource": ["127.0.0.1"]}],
        });
        assert_eq!(
            u,
            doc! {
                "_id": "app.a", "user": "a", "db": "app",
                "credentials": {"SCRAM-SHA-256": {"iterationCount": 15000}},
                "roles": [{"role": "read", "db": "app"}],
                "authenticationRestrictions": [{"clientSource": ["127.0.0.1"]}],
            }
        );
        assert_eq!(mechanisms(&u), vec!["SCRAM-SHA-256".to_string()]);
        let r = role_from_info(doc! {
            "_id": "app.r", "role": "r", "db": "app", "privileges": [], "roles": [],
            "authenticationRestrictions": [[{"clientSource": ["10.0.0.0/8"]}]],
            "isBuiltin": false, "inheritedPrivileges": [],
        });
        assert_eq!(
            r,
            doc! {
                "_id": "app.r", "role": "r", "db": "app", "privileges": [], "roles": [],
                "authenticationRestrictions": [{"clientSource": ["10.0.0.0/8"]}],
            }
        );
        // No restriction: none stored.
        let r = role_from_info(doc! {"role": "r", "db": "app", "authenticationRestrictions": [[]]});
        assert!(!r.contains_key("authenticationRestrictions"));
    }

    #[test]
    fn documents_of_a_namespace() {
        let first = bson::serialize_to_vec(&doc! {"_id": "app.a", "user": "a", "db": "app", "roles": [{"role": "read", "db": "app"}]}).unwrap();
        let mut data = first.clone();
        data.extend(
            bson::serialize_to_vec(
                &doc! {"_id": "other.b", "user": "b", "db": "other", "roles": []},
            )
            .unwrap(),
        );
        let map = |db: &str| (db == "other").then(|| "other2".to_string());
        let docs = documents(Kind::Users, &data, &Scope::All, &map).unwrap();
        let ids: Vec<&str> = docs.iter().map(|d| d.get_str("_id").unwrap()).collect();
        assert_eq!(ids, ["app.a", "other2.b"]);
        // One database's users restored under another name follow it.
        let docs = documents(Kind::Users, &first, &Scope::Db("copy".into()), &|_| None);
        let docs = docs.unwrap();
        assert_eq!(docs[0].get_str("_id").unwrap(), "copy.a");
        assert_eq!(
            docs[0].get_array("roles").unwrap()[0],
            Bson::Document(doc! {"role": "read", "db": "copy"})
        );
        let e =
            documents(Kind::Users, &data[..data.len() - 3], &Scope::All, &|_| None).unwrap_err();
        assert!(e.contains("runs past the end"), "{e}");
        assert!(
            documents(Kind::Roles, &[], &Scope::All, &|_| None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn remapping_moves_own_db_roles_and_resources() {
        let map = |db: &str| (db == "app").then(|| "app2".to_string());
        let mut u = doc! {
            "_id": "app.a", "user": "a", "db": "app",
            "roles": [{"role": "read", "db": "app"}, {"role": "read", "db": "other"}],
        };
        remap(Kind::Users, &mut u, &map);
        assert_eq!(
            u,
            doc! {
                "_id": "app2.a", "user": "a", "db": "app2",
                "roles": [{"role": "read", "db": "app2"}, {"role": "read", "db": "other"}],
            }
        );
        let mut r = doc! {
            "_id": "app.r", "role": "r", "db": "app",
            "privileges": [
                {"resource": {"db": "app", "collection": "c"}, "actions": ["find"]},
                {"resource": {"db": "", "collection": ""}, "actions": ["find"]},
                {"resource": {"cluster": true}, "actions": ["listDatabases"]},
            ],
            "roles": [{"role": "read", "db": "app"}],
        };
        remap(Kind::Roles, &mut r, &map);
        assert_eq!(r.get_str("_id").unwrap(), "app2.r");
        let privs = r.get_array("privileges").unwrap();
        let db_of = |i: usize| {
            privs[i]
                .as_document()
                .unwrap()
                .get_document("resource")
                .unwrap()
                .get_str("db")
                .map(str::to_string)
        };
        assert_eq!(db_of(0).unwrap(), "app2");
        assert_eq!(db_of(1).unwrap(), "");
        assert!(db_of(2).is_err());
    }
}
