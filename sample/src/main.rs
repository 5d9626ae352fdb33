//! `oxidump-sample`: loads oxidump's sample data into a server and compares databases.
//!
//! ```text
//! oxidump-sample dataset URI --scale 0.05      # shop.* and logs.*, about 50 MB
//! oxidump-sample edge URI --db edge            # every BSON type and collection shape
//! oxidump-sample compare URI shop=shop_copy    # same documents in every collection?
//! ```

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use mongodb::Client;

use oxidump_sample::{dataset, digest, edge};

/// Deterministic sample data for oxidump: load it into a server, compare databases.
#[derive(Parser)]
#[command(name = "oxidump-sample", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the realistic dataset (`shop.users`, `shop.orders`, `shop.blobs`,
    /// `logs.events_NNN`, with indexes), replacing those databases.
    Dataset {
        /// Connection string of the target server.
        uri: String,
        /// 1.0 is about 1 GB of BSON (2.5 million documents).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Seed of every random choice: the same seed loads the same documents.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Prepended to the database names.
        #[arg(long, default_value = "")]
        db_prefix: String,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Load the edge-case corpus into one database, replacing it, and print its manifest
    /// (per collection: count and sha256 of the sorted raw documents) as JSON.
    Edge {
        /// Connection string of the target server.
        uri: String,
        /// The database to (re)create.
        #[arg(long, default_value = "edge")]
        db: String,
        /// Seed of the random parts (binaries, ObjectIds).
        #[arg(long, default_value_t = edge::SEED)]
        seed: u64,
    },
    /// Regenerate the time-series fixtures of the bucket unpacker's tests
    /// (`tests/data/tsbucket/`) on a server: buckets and measurements of six collections.
    TsFixtures {
        /// Connection string of the server (a scratch database is created and dropped).
        uri: String,
        /// Where to write the `.bson` files.
        #[arg(long, default_value = "tests/data/tsbucket")]
        out: std::path::PathBuf,
    },
    /// Print the manifest of a database (count and sha256 of every collection) as JSON.
    Manifest {
        /// Connection string of the server.
        uri: String,
        /// The database.
        db: String,
    },
    /// Compare databases collection by collection (count and sha256 of the raw documents).
    ///
    /// Exit status 0 when every collection of each SOURCE has the same documents in COPY,
    /// 1 when any differs or is missing. Time-series collections are compared by their
    /// measurements; views are skipped.
    Compare {
        /// Connection string of the server.
        uri: String,
        /// `SOURCE=COPY` database pairs.
        #[arg(required = true, value_parser = parse_pair)]
        pairs: Vec<(String, String)>,
    },
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!("expected SOURCE=COPY, got {s:?}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oxidump-sample: {e}");
            ExitCode::from(2)
        }
    }
}

async fn connect(uri: &str) -> Result<Client, Box<dyn std::error::Error>> {
    Client::with_uri_str(uri)
        .await
        .map_err(|e| format!("cannot use {uri}: {e}").into())
}

async fn run(command: Command) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        Command::Dataset {
            uri,
            scale,
            seed,
            db_prefix,
            quiet,
        } => {
            let client = connect(&uri).await?;
            let started = Instant::now();
            let opts = dataset::DatasetOptions {
                scale,
                seed,
                db_prefix,
                progress: !quiet,
                ..dataset::DatasetOptions::default()
            };
            let loaded = dataset::load(&client, &opts).await?;
            let docs: u64 = loaded.iter().map(|l| l.documents).sum();
            let bytes: u64 = loaded.iter().map(|l| l.bytes).sum();
            eprintln!(
                "loaded {docs} documents ({:.1} MB) into {} collections in {:.1} s",
                bytes as f64 / 1e6,
                loaded.len(),
                started.elapsed().as_secs_f64()
            );
            client.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Edge { uri, db, seed } => {
            let client = connect(&uri).await?;
            let manifest = edge::load(&client, &db, seed).await?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            client.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::TsFixtures { uri, out } => {
            let client = connect(&uri).await?;
            for (name, n) in oxidump_sample::tsfixtures::generate(&client, &out).await? {
                eprintln!("{name}: {n} measurements");
            }
            client.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Manifest { uri, db } => {
            let client = connect(&uri).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&digest::manifest(&client, &db).await?)?
            );
            client.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare { uri, pairs } => {
            let client = connect(&uri).await?;
            let mut bad = 0;
            for (source, copy) in pairs {
                for c in digest::compare_databases(&client, &source, &copy).await? {
                    let verdict = if c.same() { "same" } else { "DIFFERENT" };
                    bad += usize::from(!c.same());
                    let theirs = match &c.copy {
                        Some(d) if !c.same() => format!(" ({copy}: {} documents)", d.count),
                        Some(_) => String::new(),
                        None => format!(" (missing in {copy})"),
                    };
                    println!(
                        "    {verdict:9} {source}.{}: {} documents{theirs}",
                        c.collection, c.source.count
                    );
                }
            }
            client.shutdown().await;
            if bad > 0 {
                eprintln!("oxidump-sample: {bad} collections differ");
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
