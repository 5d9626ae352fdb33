//! Users and roles through a dump and a restore, on servers started with `--auth`:
//! what the backup holds (credentials included), a restore that puts back roles,
//! privileges, custom data and authentication restrictions, users logging in with
//! their passwords afterwards with exactly their roles, renamed databases, and the
//! refusal (naming each user) where the target cannot take stored credentials.

use std::collections::BTreeSet;
use std::path::Path;

use bson::{Bson, Document, doc};
use mongodb::Client;

use crate::common::private_server::PrivateServer;
use crate::common::{block_on, oxidump, run};

const ADMIN_PW: &str = "adm1n-Pw";
const ALICE_PW: &str = "al1ce-Pw";
const BOB_PW: &str = "b0b-Pw";

fn cmd(c: &Client, db: &str, cmd: Document) -> Document {
    let shown = format!("{cmd}");
    block_on(async { c.database(db).run_command(cmd).await })
        .unwrap_or_else(|e| panic!("{db}: {shown}: {e}"))
}

/// A server with `--auth`, its first user `backup` (root) and a client logged in as it.
fn auth_server() -> (PrivateServer, Client, String) {
    let server = PrivateServer::start(&["--auth"]);
    cmd(
        &server.client(),
        "admin",
        doc! {"createUser": "backup", "pwd": ADMIN_PW, "roles": ["root"]},
    );
    let uri = server.uri_with_credentials("backup", ADMIN_PW);
    let c = server.client_for(&uri);
    (server, c, uri)
}

/// Two roles of `app` (one inheriting the other and restricted: SecantusDB reports a
/// role's inherited restrictions as its own, so the inherited one has none) and two
/// users, one with custom data and a restriction; one user of another database.
fn seed(c: &Client) {
    cmd(
        c,
        "app",
        doc! {
            "createRole": "reader", "roles": [{"role": "read", "db": "app"}],
            "privileges": [{"resource": {"db": "app", "collection": "c"}, "actions": ["find", "insert"]}],
        },
    );
    cmd(
        c,
        "app",
        doc! {
            "createRole": "lead", "privileges": [], "roles": [{"role": "reader", "db": "app"}],
            "authenticationRestrictions": [{"clientSource": ["127.0.0.1"], "serverAddress": ["127.0.0.1"]}],
        },
    );
    cmd(
        c,
        "app",
        doc! {
            "createUser": "alice", "pwd": ALICE_PW,
            "roles": [{"role": "lead", "db": "app"}, {"role": "readWrite", "db": "app"}],
            "customData": {"team": "billing", "n": 7},
            "authenticationRestrictions": [{"clientSource": ["127.0.0.1/32"]}],
        },
    );
    cmd(
        c,
        "app",
        doc! {"createUser": "bob", "pwd": BOB_PW, "roles": [{"role": "read", "db": "app"}]},
    );
    cmd(
        c,
        "other",
        doc! {"createUser": "carol", "pwd": "c4rol-Pw", "roles": [{"role": "read", "db": "other"}]},
    );
    block_on(async {
        c.database("app")
            .collection::<Document>("c")
            .insert_many((0..20).map(|i| doc! {"_id": i}))
            .await
    })
    .expect("insert");
}

/// Everything the server stores of `db`'s users and roles, credentials aside, in a
/// comparable form.
fn authz_of(c: &Client, db: &str) -> (Vec<Document>, Vec<Document>) {
    let reply = cmd(c, db, doc! {"usersInfo": 1});
    let mut users = Vec::new();
    for u in reply.get_array("users").expect("users") {
        let name = u.as_document().unwrap().get_str("user").unwrap();
        let one = cmd(
            c,
            db,
            doc! {"usersInfo": {"user": name, "db": db}, "showCustomData": true, "showAuthenticationRestrictions": true},
        );
        let u = one.get_array("users").unwrap()[0].as_document().unwrap();
        let mut keep = Document::new();
        for k in [
            "user",
            "db",
            "roles",
            "customData",
            "authenticationRestrictions",
        ] {
            if let Some(v) = u.get(k) {
                keep.insert(k, sorted(v));
            }
        }
        users.push(keep);
    }
    users.sort_by_key(|d| d.get_str("user").unwrap().to_string());
    let reply = cmd(
        c,
        db,
        doc! {"rolesInfo": 1, "showPrivileges": true, "showAuthenticationRestrictions": true},
    );
    let mut roles: Vec<Document> = reply
        .get_array("roles")
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_document().unwrap();
            let mut keep = Document::new();
            for k in [
                "role",
                "db",
                "roles",
                "privileges",
                "authenticationRestrictions",
            ] {
                if let Some(v) = r.get(k) {
                    keep.insert(k, sorted(v));
                }
            }
            keep
        })
        .collect();
    roles.sort_by_key(|d| d.get_str("role").unwrap().to_string());
    (users, roles)
}

/// Arrays in a canonical order (roles come back in any order).
fn sorted(v: &Bson) -> Bson {
    match v {
        Bson::Array(a) => {
            let mut items: Vec<Bson> = a.iter().map(sorted).collect();
            items.sort_by_key(|b| b.to_string());
            Bson::Array(items)
        }
        Bson::Document(d) => {
            Bson::Document(d.iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        other => other.clone(),
    }
}

/// Whether `user@db` logs in with `pwd`; if so, the roles it was granted.
fn login(server: &PrivateServer, user: &str, db: &str, pwd: &str) -> Option<BTreeSet<String>> {
    let uri = format!(
        "mongodb://{user}:{pwd}@{}/?directConnection=true&authSource={db}&serverSelectionTimeoutMS=5000",
        server.addr()
    );
    let status = block_on(async {
        let c = Client::with_uri_str(&uri).await?;
        c.database("admin")
            .run_command(doc! {"connectionStatus": 1})
            .await
    })
    .ok()?;
    let roles = status
        .get_document("authInfo")
        .ok()?
        .get_array("authenticatedUserRoles")
        .ok()?
        .iter()
        .filter_map(|r| {
            let r = r.as_document()?;
            Some(format!(
                "{}@{}",
                r.get_str("role").ok()?,
                r.get_str("db").ok()?
            ))
        })
        .collect();
    Some(roles)
}

/// `v` with every string `"app"` (a database name) replaced by `"app2"`.
fn renamed(v: &Bson) -> Bson {
    match v {
        Bson::String(s) if s == "app" => Bson::String("app2".into()),
        Bson::Array(a) => Bson::Array(a.iter().map(renamed).collect()),
        Bson::Document(d) => {
            Bson::Document(d.iter().map(|(k, v)| (k.clone(), renamed(v))).collect())
        }
        other => other.clone(),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The collections of `db` on the server of `c`, sorted.
fn collections(c: &Client, db: &str) -> Vec<String> {
    let mut names = block_on(async { c.database(db).list_collection_names().await })
        .unwrap_or_else(|e| panic!("listing {db}: {e}"));
    names.sort();
    names
}

/// The field `f` of each document.
fn names_of(docs: &[Document], f: &str) -> Vec<String> {
    docs.iter()
        .map(|d| d.get_str(f).unwrap().to_string())
        .collect()
}

/// Documents of namespace `ns` of a backup, through `oxidump cat`.
fn backup_docs(path: &Path, ns: &str) -> Vec<Document> {
    let out = oxidump()
        .args(["cat", "--ns", ns, "--format", "bson"])
        .arg(path)
        .output()
        .expect("run cat");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut data = &out.stdout[..];
    let mut docs = Vec::new();
    while data.len() >= 4 {
        let len = i32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
        docs.push(Document::from_reader(&data[..len]).expect("document"));
        data = &data[len..];
    }
    docs
}

fn ids(docs: &[Document]) -> BTreeSet<String> {
    docs.iter()
        .map(|d| d.get_str("_id").unwrap().to_string())
        .collect()
}

/// A full dump holds every user and role with its credentials; restoring it (with
/// `--drop`) onto the same server after the users were changed puts back exactly
/// what was dumped: the users log in with their passwords and have their roles, a
/// user created after the dump is removed.
#[test]
fn full_dump_keeps_users_and_roles_and_a_restore_puts_them_back() {
    let (server, c, uri) = auth_server();
    seed(&c);
    let before = authz_of(&c, "app");
    let tmp = tempfile::tempdir().expect("tempdir");
    let full = tmp.path().join("full.oxd");
    run(
        oxidump()
            .args(["dump", "--uri", &uri, "-q", "-o"])
            .arg(&full),
        0,
    );
    let users = backup_docs(&full, "admin.system.users");
    assert_eq!(
        ids(&users),
        set(&["admin.backup", "app.alice", "app.bob", "other.carol"])
    );
    // The stored credentials are the server's own.
    let shown = cmd(
        &c,
        "app",
        doc! {"usersInfo": "alice", "showCredentials": true},
    );
    let creds = shown.get_array("users").unwrap()[0]
        .as_document()
        .unwrap()
        .get_document("credentials")
        .unwrap()
        .clone();
    let alice = users
        .iter()
        .find(|u| u.get_str("_id").unwrap() == "app.alice")
        .unwrap();
    assert_eq!(alice.get_document("credentials").unwrap(), &creds);
    assert!(alice.get_document("customData").is_ok());
    assert!(alice.get_array("authenticationRestrictions").is_ok());
    let roles = backup_docs(&full, "admin.system.roles");
    assert_eq!(ids(&roles), set(&["app.lead", "app.reader"]));

    // Damage: alice loses a role, a role loses its privileges, someone new appears.
    cmd(
        &c,
        "app",
        doc! {"revokeRolesFromUser": "alice", "roles": [{"role": "lead", "db": "app"}]},
    );
    cmd(&c, "app", doc! {"updateRole": "reader", "privileges": []});
    cmd(
        &c,
        "app",
        doc! {"createUser": "mallory", "pwd": "m4llory-Pw", "roles": ["readWrite"]},
    );
    assert_ne!(authz_of(&c, "app"), before);
    // Without the flag, users and roles are left alone (and say so).
    let (_, _, err) = run(
        oxidump()
            .arg("restore")
            .arg(&full)
            .args(["--uri", &uri, "--drop", "-q"]),
        0,
    );
    assert!(err.contains("only with --users-and-roles"), "{err}");
    assert_ne!(authz_of(&c, "app"), before);
    let (_, _, err) = run(
        oxidump().arg("restore").arg(&full).args([
            "--uri",
            &uri,
            "--drop",
            "--users-and-roles",
            "-q",
        ]),
        0,
    );
    assert_eq!(authz_of(&c, "app"), before, "{err}");
    assert_eq!(
        login(&server, "alice", "app", ALICE_PW),
        Some(set(&["lead@app", "readWrite@app"]))
    );
    assert_eq!(
        login(&server, "bob", "app", BOB_PW),
        Some(set(&["read@app"]))
    );
    assert_eq!(login(&server, "mallory", "app", "m4llory-Pw"), None);
    assert_eq!(login(&server, "alice", "app", "wrong"), None);
}

/// One database's users and roles, dumped by the mongodump front end with
/// `--dumpDbUsersAndRoles` as mongodump lays them out, restored under another name on
/// another server: that server cannot take stored credentials, so the restore refuses
/// the users, naming each, before writing anything (exit status 2, as every refusal of
/// a plan); asked to, it creates them with random passwords, in the
/// renamed database, with their roles, privileges, custom data and restrictions.
#[test]
fn one_database_with_its_users_into_a_renamed_database() {
    let (_source, c, uri) = auth_server();
    seed(&c);
    let tmp = tempfile::tempdir().expect("tempdir");
    run(
        oxidump()
            .args([
                "mongodump",
                "--uri",
                &uri,
                "-d",
                "app",
                "--dumpDbUsersAndRoles",
                "-o",
            ])
            .arg(tmp.path().join("dump")),
        0,
    );
    let dir = tmp.path().join("dump");
    let db_dir = dir.join("app");
    assert!(db_dir.join("$admin.system.users.bson").is_file());
    assert!(db_dir.join("$admin.system.roles.bson").is_file());
    assert_eq!(
        ids(&backup_docs(&dir, "app.$admin.system.users")),
        set(&["app.alice", "app.bob"])
    );
    let (expected_users, expected_roles) = authz_of(&c, "app");

    let (target, t, turi) = auth_server();
    let restore = |extra: &[&str], code: i32| {
        run(
            oxidump()
                .arg("restore")
                .arg(&dir)
                .args(["--uri", &turi, "-q", "--users-and-roles", "--drop"])
                .args(["--ns-from", "app.*", "--ns-to", "app2.*"])
                .args(extra),
            code,
        )
    };
    let (_, _, err) = restore(&[], 2);
    assert!(
        err.contains("nothing was written")
            && err.contains("cannot take stored credentials")
            && err.contains("app2.alice, app2.bob")
            && err.contains("--users-without-credentials"),
        "{err}"
    );
    assert_eq!(authz_of(&t, "app2"), (Vec::new(), Vec::new()));
    // Refused before anything was written: no data either.
    assert_eq!(collections(&t, "app2"), Vec::<String>::new(), "{err}");
    let (_, _, err) = restore(&["--users-without-credentials"], 0);
    assert!(
        err.contains("without their passwords") && err.contains("app2.alice, app2.bob"),
        "{err}"
    );
    // Everything but the credentials, moved to app2.
    let moved = |docs: &[Document]| -> Vec<Document> {
        docs.iter()
            .map(|d| {
                sorted(&renamed(&Bson::Document(d.clone())))
                    .as_document()
                    .unwrap()
                    .clone()
            })
            .collect()
    };
    assert_eq!(
        authz_of(&t, "app2"),
        (moved(&expected_users), moved(&expected_roles)),
        "{err}"
    );
    assert_eq!(login(&target, "alice", "app2", ALICE_PW), None);
    cmd(&t, "app2", doc! {"updateUser": "alice", "pwd": "reset-Pw"});
    assert_eq!(
        login(&target, "alice", "app2", "reset-Pw"),
        Some(set(&["lead@app2", "readWrite@app2"]))
    );
    // The mongorestore front end, onto another name with -d: the users follow.
    run(
        oxidump()
            .args([
                "mongorestore",
                "--uri",
                &turi,
                "-d",
                "app3",
                "--restoreDbUsersAndRoles",
            ])
            .args(["--usersWithoutCredentials", "--drop"])
            .arg(&db_dir),
        0,
    );
    let (users, roles) = authz_of(&t, "app3");
    assert_eq!(names_of(&users, "user"), ["alice", "bob"]);
    assert_eq!(names_of(&roles, "role"), ["lead", "reader"]);
    assert_eq!(
        users[0].get_array("roles").unwrap(),
        &vec![
            Bson::Document(doc! {"role": "lead", "db": "app3"}),
            Bson::Document(doc! {"role": "readWrite", "db": "app3"}),
        ]
    );
    // A backup read as a stream: an archive file is read once more for its users, which
    // are refused by name before anything is written; standard input cannot be read
    // twice, so its users are refused unread, naming their namespace, unless asked.
    let archive = tmp.path().join("app.archive");
    run(
        oxidump()
            .args([
                "mongodump",
                "--uri",
                &uri,
                "-d",
                "app",
                "--dumpDbUsersAndRoles",
            ])
            .arg(format!("--archive={}", archive.display())),
        0,
    );
    let streamed = |extra: &[&str], code: i32| {
        run(
            oxidump()
                .args([
                    "mongorestore",
                    "--uri",
                    &turi,
                    "-d",
                    "app",
                    "--restoreDbUsersAndRoles",
                ])
                .args(["--nsFrom", "app.*", "--nsTo", "app4.*"])
                .arg(format!("--archive={}", archive.display()))
                .args(extra),
            code,
        )
    };
    let (_, _, err) = streamed(&[], 1);
    assert!(
        err.contains("cannot take stored credentials")
            && err.contains("the users app4.alice, app4.bob")
            && err.contains("--usersWithoutCredentials")
            && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(collections(&t, "app4"), Vec::<String>::new(), "{err}");
    let (code, _, err) = crate::compat::run_any(
        oxidump()
            .args([
                "mongorestore",
                "--uri",
                &turi,
                "-d",
                "app",
                "--restoreDbUsersAndRoles",
            ])
            .args(["--nsFrom", "app.*", "--nsTo", "app4.*", "--archive"])
            .stdin(std::fs::File::open(&archive).expect("open the archive")),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("app.$admin.system.users cannot be read before the data")
            && err.contains("--usersWithoutCredentials")
            && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(collections(&t, "app4"), Vec::<String>::new(), "{err}");
    streamed(&["--usersWithoutCredentials"], 0);
    assert_eq!(collections(&t, "app4"), ["c"]);
    assert_eq!(names_of(&authz_of(&t, "app4").0, "user"), ["alice", "bob"]);
    // Only app's users came along.
    assert_eq!(
        cmd(&t, "other", doc! {"usersInfo": 1})
            .get_array("users")
            .unwrap()
            .len(),
        0
    );
}
