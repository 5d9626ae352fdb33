//! What a restore drill adds to a plain restore: `oxidump restore` of a backup into
//! fresh databases beside `oxidump test-restore` of the same backup (the same restore
//! engine, then the read-back and comparison of every namespace), in the same run,
//! alternating.
//!
//! Starts a throwaway SecantusDB server (or uses `OXIDUMP_BENCH_URI`), loads the sample
//! dataset (`oxidump-sample dataset --scale S`, `OXIDUMP_BENCH_SCALE`, default 0.1),
//! dumps it once to OXD, then runs `OXIDUMP_BENCH_REPS` rounds (default 2) of: a plain
//! restore (timed, then dropped), a drill (timed; its report splits restore and
//! comparison). Prints wall seconds, CPU seconds and peak RSS of each, and the ratio of
//! the drill's comparison time to the plain restore's wall time.
//!
//!   cargo bench --bench drill

mod common;

fn main() {
    if !common::benchmarking() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_oxidump");
    let server = common::server();
    let scale = std::env::var("OXIDUMP_BENCH_SCALE").unwrap_or_else(|_| "0.1".into());
    if std::env::var("OXIDUMP_BENCH_URI").is_err() {
        eprintln!("loading the sample dataset, scale {scale} ...");
        common::load_dataset(&server.uri, &scale);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let oxd = work.path().join("data.oxd");
    let o = oxd.display().to_string();
    common::run_measured(
        &[
            bin,
            "dump",
            "--uri",
            &server.uri,
            "--db",
            "shop",
            "--db",
            "logs",
            "-q",
            "--out",
            &o,
        ],
        &[],
    );
    let reps: usize = std::env::var("OXIDUMP_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let report = work.path().join("drill.json");
    let r = report.display().to_string();
    println!("\n### restore drill, sample dataset, scale {scale} ({reps} rounds)\n");
    println!(
        "| round | plain restore wall s | CPU s | RSS MB | drill wall s | drill restore s | drill compare s | CPU s | RSS MB | compare / plain restore |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for round in 1..=reps {
        let plain = common::run_measured(
            &[
                bin,
                "restore",
                &o,
                "--uri",
                &server.uri,
                "-q",
                "--ns-from",
                "shop.*",
                "--ns-to",
                "plain_shop.*",
                "--ns-from",
                "logs.*",
                "--ns-to",
                "plain_logs.*",
            ],
            &[],
        );
        common::drop_databases(&server.uri, "plain_", &[]);
        let drill = common::run_measured(
            &[
                bin,
                "test-restore",
                &o,
                "--uri",
                &server.uri,
                "-q",
                "--report-json",
                &r,
            ],
            &[],
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).expect("drill report")).expect("JSON");
        assert_eq!(json["passed"], true, "the drill failed: {json:#}");
        let f = |k: &str| json[k].as_f64().unwrap_or(0.0);
        println!(
            "| {round} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2}x |",
            plain.wall,
            plain.cpu,
            plain.max_rss_kb as f64 / 1024.0,
            drill.wall,
            f("restore_seconds"),
            f("compare_seconds"),
            drill.cpu,
            drill.max_rss_kb as f64 / 1024.0,
            f("compare_seconds") / plain.wall.max(1e-9),
        );
    }
}
