//! The size/speed curve of OXD against mongodump's gzipped archive, on the benchmark
//! dataset, per core.
//!
//! For zstd levels 1, 3, 6, 9 and 19: archive size, encode MB/s per core, and verify
//! MB/s per core next to raw zstd decompression of the same frames; and the same data
//! written as a gzipped mongodump archive by oxidump itself (flate2 at gzip's default
//! level 6, as mongodump's Go writer uses). Sizes and speeds are compared with a
//! baseline that shares no code with oxidump: the same raw BSON gzipped at level 6 by
//! flate2 alone. Prints a Markdown table.
//!
//!   cargo bench --bench archive
//!   OXIDUMP_BENCH_DATA=dump.oxd cargo bench --bench archive   # a real dataset
//!   OXIDUMP_BENCH_LEVELS=3 OXIDUMP_BENCH_FRAME=1MB cargo bench --bench archive
//!
//! MB/s are per core: raw BSON bytes per CPU second of the whole process (all
//! threads), so parallel compression counts every core it uses.

mod common;

use std::time::Duration;

use oxidump::catalog::{NsStatus, Summary};
use oxidump::oxd::frame;
use oxidump::sink::Sink;

/// How many times verify and raw decompression run inside one measurement.
const REPS: u64 = 4;

fn main() {
    if !common::benchmarking() {
        return;
    }
    let (data, label) = common::corpus(256 << 20);
    let raw = data.len() as u64;
    let frame_size = std::env::var("OXIDUMP_BENCH_FRAME")
        .ok()
        .and_then(|v| oxidump::dump::parse_size(&v).ok())
        .map(|v| v as usize)
        .unwrap_or(oxidump::oxd::DEFAULT_FRAME_SIZE);
    let frames = common::frames(&data, frame_size);
    println!(
        "corpus: {label}: {raw} bytes of raw BSON, {} frames of {} KiB",
        frames.len(),
        frame_size >> 10
    );

    // gzip mongodump archive, as oxidump writes it (whole stream gzipped).
    let dir = tempfile::tempdir().expect("tempdir");
    let gz_path = dir.path().join("bench.archive.gz");
    let (_, _, gz_cpu) = common::timed(|| {
        let out = oxidump::output::OutFile::create(&gz_path, true).expect("create");
        let mut w: Box<dyn Sink> =
            Box::new(oxidump::mongodump::archive::ArchiveWriter::new(out, true));
        let cat = common::catalog();
        w.begin(&cat).expect("begin");
        for (f, n) in &frames {
            w.write_docs(0, f.clone(), *n as u64).expect("write");
        }
        w.end_namespace(0, &NsStatus::Complete).expect("end");
        w.finish(&Summary::default()).expect("finish");
    });
    let gz_size = std::fs::metadata(&gz_path).expect("size").len();
    // The baseline, independent of oxidump: the same raw BSON gzipped at level 6 by
    // flate2 alone, as one stream.
    let (plain_gz, _, plain_cpu) = common::timed(|| {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        for (f, _) in &frames {
            e.write_all(f).expect("gzip");
        }
        e.finish().expect("gzip")
    });
    let base_size = plain_gz.len() as u64;
    let base_mbps = common::mbps(raw, plain_cpu.as_secs_f64());
    let gz_mbps = common::mbps(raw, gz_cpu.as_secs_f64());
    println!();
    println!(
        "| output | size | vs gzip size | ratio | encode MB/s per core | vs gzip speed | verify MB/s per core | raw zstd decompress MB/s | verify / decompress |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| raw BSON, gzip level 6 (flate2 alone: the baseline) | {:.1} MB | 1.000x | {:.2} | {:.0} | 1.00x | - | - | - |",
        base_size as f64 / 1e6,
        raw as f64 / base_size as f64,
        base_mbps
    );
    println!(
        "| mongodump archive, gzip (level 6), written by oxidump | {:.1} MB | {:.3}x | {:.2} | {:.0} | {:.2}x | - | - | - |",
        gz_size as f64 / 1e6,
        gz_size as f64 / base_size as f64,
        raw as f64 / gz_size as f64,
        gz_mbps,
        gz_mbps / base_mbps
    );
    let levels: Vec<i32> = std::env::var("OXIDUMP_BENCH_LEVELS")
        .unwrap_or_else(|_| "1,3,6,9,19".into())
        .split(',')
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    // An untimed pass first: the first measured level would otherwise pay for the
    // page faults of the first output buffers (a third of its speed, measured).
    for (i, (f, n)) in frames.iter().enumerate() {
        std::hint::black_box(frame::encode(0, i as u32, f.clone(), *n, Some(1)));
    }
    for level in levels {
        // Encode one frame after another on this thread: CPU per byte of one core.
        let (encoded, _, enc_cpu) = common::timed(|| {
            frames
                .iter()
                .enumerate()
                .map(|(i, (f, n))| frame::encode(0, i as u32, f.clone(), *n, Some(level)))
                .collect::<Vec<_>>()
        });
        let archive = common::archive(&frames, level);
        let size = archive.len() as u64;
        // Each of the two is run REPS times in one timed region so the clock's 10 ms
        // tick stays under 1% of what is measured.
        let (_, _, dec_cpu) = common::timed(|| {
            let mut dx = zstd::bulk::Decompressor::new().expect("zstd");
            for e in (0..REPS).flat_map(|_| &encoded) {
                if e.header.codec == oxidump::oxd::record::Codec::Zstd {
                    std::hint::black_box(
                        dx.decompress(&e.stored.bytes, e.header.raw_len as usize)
                            .expect("decompress"),
                    );
                }
            }
        });
        // The checker decodes frames on the thread pool: its CPU time, all threads
        // included, is what one core would spend.
        let (_, _, ver_cpu) = common::timed(|| {
            for _ in 0..REPS {
                common::verify(&archive);
            }
        });
        let ver = common::mbps(raw * REPS, ver_cpu.as_secs_f64());
        let dec = common::mbps(
            raw * REPS,
            dec_cpu.max(Duration::from_millis(1)).as_secs_f64(),
        );
        let enc = common::mbps(raw, enc_cpu.as_secs_f64());
        println!(
            "| OXD, zstd level {level}{} | {:.1} MB | {:.3}x | {:.2} | {:.0} | {:.2}x | {:.0} | {:.0} | {:.2} |",
            if level == oxidump::oxd::DEFAULT_ZSTD_LEVEL {
                " (default)"
            } else {
                ""
            },
            size as f64 / 1e6,
            size as f64 / base_size as f64,
            raw as f64 / size as f64,
            enc,
            enc / base_mbps,
            ver,
            dec,
            ver / dec
        );
    }
}
