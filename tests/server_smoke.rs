//! The test server and the harness itself: if these fail, every server test would.

use std::collections::BTreeSet;

use bson::{Document, doc};

use crate::common::{
    DbGuard, block_on, client, collection_digest, docs_digest, fixture_path, load_edge_corpus,
    oxidump, run, server,
};

#[test]
fn server_answers_ping_and_round_trips_a_document() {
    let server = server();
    assert!(server.external || server.uri.contains("directConnection=true"));
    let guard = DbGuard::new("smoke");
    let client = client();
    let coll = client.database(guard.name()).collection::<Document>("docs");
    let inserted = doc! { "_id": 1, "s": "grüße", "n": 1.5, "a": [1, 2, { "x": null }] };
    let found = block_on(async {
        client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await?;
        coll.insert_one(&inserted).await?;
        coll.find_one(doc! { "_id": 1 }).await
    })
    .expect("ping, insert and find");
    assert_eq!(found.as_ref(), Some(&inserted));

    // The digest helpers agree with each other on what was stored.
    let raw = inserted.to_vec().expect("serialize");
    assert_eq!(collection_digest(guard.name(), "docs"), docs_digest([raw]));
}

#[test]
fn edge_corpus_loads_with_the_fixture_namespaces() {
    let guard = DbGuard::new("edge");
    let db = guard.name();
    let manifest = load_edge_corpus(db);
    let manifest = manifest.as_object().expect("manifest is an object");

    // The same namespaces as the corpus the mongodump fixtures were made from (loaded
    // into `edge`); contents differ (fresh ObjectIds), names must not.
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture_path("mongodump-100.18/manifest.json"))
            .expect("read the fixture manifest"),
    )
    .expect("fixture manifest is JSON");
    let colls = |keys: Vec<&String>, db: &str| -> BTreeSet<String> {
        let prefix = format!("{db}.");
        keys.into_iter()
            .map(|k| {
                k.strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("{k} is not in {db}"))
                    .to_string()
            })
            .collect()
    };
    let ours = colls(manifest.keys().collect(), db);
    let theirs = colls(
        fixture.as_object().expect("object").keys().collect(),
        "edge",
    );
    assert_eq!(ours, theirs);

    // collection_digest reads back exactly what the generator's manifest says.
    for (ns, entry) in manifest {
        let Some(count) = entry.get("count") else {
            continue; // a view
        };
        let coll = &ns[db.len() + 1..];
        let expected = (
            count.as_u64().expect("count"),
            entry["sha256"].as_str().expect("sha256").to_string(),
        );
        assert_eq!(collection_digest(db, coll), expected, "{ns}");
    }
}

#[test]
fn oxidump_binary_runs() {
    let (_, stdout, _) = run(oxidump().arg("--help"), 0);
    assert!(stdout.contains("Usage"), "{stdout}");
}

#[test]
fn unique_db_names_are_valid_short_and_distinct() {
    let long = "a_very_long_prefix_that_cannot_fit.in/a database name";
    let names: BTreeSet<String> = (0..100).map(|_| crate::common::unique_db(long)).collect();
    assert_eq!(names.len(), 100);
    for name in &names {
        assert!(name.len() <= 38, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{name}"
        );
    }
}
