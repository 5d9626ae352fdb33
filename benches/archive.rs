//! The size/speed curve of OXD against mongodump's gzipped archive, on the benchmark
//! dataset, per core.
//!
//! For zstd levels 1, 3, 6, 9 and 19: archive size, encode MB/s per core, and verify
//! MB/s per core next to raw zstd decompression of the same frames; and the same data
//! written as a gzipped mongodump archive by oxidump itself (flate2 at gzip's default
//! level 6, as mongodump's Go writer uses). Prints a Markdown table.
//!
//!   cargo bench --bench archive
//!   OXIDUMP_BENCH_DATA=dump.oxd cargo bench --bench archive   # a real dataset
//!   OXIDUMP_BENCH_LEVELS=3 OXIDUMP_BENCH_FRAME=1MB cargo bench --bench archive
//!
//! MB/s are per core: raw BSON bytes per CPU second of the whole process (all
//! threads), so parallel compression counts every core it uses.

mod common;

use std::path::Path;
use std::time::Duration;

use oxidump::catalog::{Catalog, Namespace, NsStatus, Summary};
use oxidump::oxd::frame;
use oxidump::oxd::writer::{OxdWriter, WriterOptions};
use oxidump::sink::Sink;
use oxidump::verify::{Report, VerifyOptions};

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
    let (_, gz_wall, gz_cpu) = common::timed(|| {
        let out = oxidump::output::OutFile::create(&gz_path, true).expect("create");
        let mut w: Box<dyn Sink> =
            Box::new(oxidump::mongodump::archive::ArchiveWriter::new(out, true));
        let cat = catalog();
        w.begin(&cat).expect("begin");
        for (f, n) in &frames {
            w.write_docs(0, f.clone(), *n as u64).expect("write");
        }
        w.end_namespace(0, &NsStatus::Complete).expect("end");
        w.finish(&Summary::default()).expect("finish");
    });
    let gz_size = std::fs::metadata(&gz_path).expect("size").len();
    let gz_mbps = common::mbps(raw, gz_cpu.as_secs_f64());
    println!();
    println!(
        "| output | size | ratio | encode MB/s per core | vs gzip archive | verify MB/s per core | raw zstd decompress MB/s | verify / decompress |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| mongodump archive, gzip (level 6) | {:.1} MB | {:.2} | {:.0} | 1.00x | - | - | - |",
        gz_size as f64 / 1e6,
        raw as f64 / gz_size as f64,
        gz_mbps
    );
    let _ = gz_wall;
    let levels: Vec<i32> = std::env::var("OXIDUMP_BENCH_LEVELS")
        .unwrap_or_else(|_| "1,3,6,9,19".into())
        .split(',')
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for level in levels {
        // Encode one frame after another on this thread: CPU per byte of one core.
        let (encoded, _, enc_cpu) = common::timed(|| {
            frames
                .iter()
                .enumerate()
                .map(|(i, (f, n))| frame::encode(0, i as u32, f.clone(), *n, Some(level)))
                .collect::<Vec<_>>()
        });
        let archive = build(&frames, level);
        let size = archive.len() as u64;
        let (_, _, dec_cpu) = common::timed(|| {
            let mut dx = zstd::bulk::Decompressor::new().expect("zstd");
            for e in &encoded {
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
            let mut rep = Report::new("bench.oxd", "oxd");
            oxidump::oxd::check::verify(
                &archive[..],
                Path::new("bench.oxd"),
                &VerifyOptions::default(),
                &mut rep,
                &mut |_| {},
            );
            assert!(rep.is_ok(), "{:?}", rep.findings);
        });
        let ver = common::mbps(raw, ver_cpu.as_secs_f64());
        let dec = common::mbps(raw, dec_cpu.max(Duration::from_millis(1)).as_secs_f64());
        let enc = common::mbps(raw, enc_cpu.as_secs_f64());
        println!(
            "| OXD, zstd level {level}{} | {:.1} MB | {:.2} | {:.0} | {:.2}x | {:.0} | {:.0} | {:.2} |",
            if level == oxidump::oxd::DEFAULT_ZSTD_LEVEL {
                " (default)"
            } else {
                ""
            },
            size as f64 / 1e6,
            raw as f64 / size as f64,
            enc,
            enc / gz_mbps,
            ver,
            dec,
            ver / dec
        );
    }
}

fn catalog() -> Catalog {
    Catalog {
        namespaces: vec![Namespace::collection("bench", "data")],
        ..Catalog::default()
    }
}

fn build(frames: &[(Vec<u8>, u32)], level: i32) -> Vec<u8> {
    let opts = WriterOptions {
        level: Some(level),
        ..WriterOptions::default()
    };
    let mut w = OxdWriter::new(Vec::new(), &catalog(), opts).expect("writer");
    for (f, n) in frames {
        w.write_frame(0, f.clone(), *n).expect("frame");
    }
    w.end_namespace(0, &NsStatus::Complete).expect("end");
    w.finish(&Summary::default()).expect("finish").0
}
