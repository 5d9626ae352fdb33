//! Frame encode, frame decode and the whole `verify`, each next to its physical
//! ceiling measured in the same run on the same bytes: memcpy, CRC-32 alone, raw zstd
//! compression and decompression. Every figure is per core: single-threaded, or (for
//! `verify`, which decodes on the thread pool) CPU seconds of all threads.
//!
//! `cargo bench --bench frames` (set `OXIDUMP_BENCH_DATA` to a backup to measure its
//! documents instead of the synthetic corpus).

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use oxidump::oxd::frame;
use oxidump::oxd::reader::Record;

const FRAME: usize = oxidump::oxd::DEFAULT_FRAME_SIZE;

fn benches(c: &mut Criterion) {
    let (data, label) = common::corpus(64 << 20);
    eprintln!("corpus: {label}, {} bytes", data.len());
    let frames = common::frames(&data, FRAME);
    let total: u64 = frames.iter().map(|f| f.0.len() as u64).sum();
    let mut g = c.benchmark_group("frames");
    g.throughput(Throughput::Bytes(total));
    g.sample_size(10);

    g.bench_function("ceiling/memcpy", |b| {
        let mut dst = vec![0u8; FRAME * 2];
        b.iter(|| {
            for (f, _) in &frames {
                dst[..f.len()].copy_from_slice(f);
                black_box(&dst);
            }
        })
    });
    g.bench_function("ceiling/crc32", |b| {
        b.iter(|| {
            for (f, _) in &frames {
                black_box(crc32fast::hash(f));
            }
        })
    });
    for level in [1, 3] {
        g.bench_function(format!("ceiling/zstd-compress-l{level}"), |b| {
            let mut cx = zstd::bulk::Compressor::new(level).unwrap();
            b.iter(|| {
                for (f, _) in &frames {
                    black_box(cx.compress(f).unwrap());
                }
            })
        });
        g.bench_function(format!("encode/l{level}"), |b| {
            b.iter(|| {
                for (i, (f, n)) in frames.iter().enumerate() {
                    black_box(frame::encode(0, i as u32, f.clone(), *n, Some(level)));
                }
            })
        });
    }
    // Decoding works on what the default level stores.
    let encoded: Vec<frame::EncodedFrame> = frames
        .iter()
        .enumerate()
        .map(|(i, (f, n))| {
            frame::encode(
                0,
                i as u32,
                f.clone(),
                *n,
                Some(oxidump::oxd::DEFAULT_ZSTD_LEVEL),
            )
        })
        .collect();
    g.bench_function("ceiling/zstd-decompress", |b| {
        let mut dx = zstd::bulk::Decompressor::new().unwrap();
        b.iter(|| {
            for e in &encoded {
                black_box(
                    dx.decompress(&e.stored.bytes, e.header.raw_len as usize)
                        .unwrap(),
                );
            }
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            for e in &encoded {
                let rec = Record {
                    offset: 0,
                    header: e.header,
                    payload: e.stored.bytes.clone(),
                };
                let raw = rec.into_raw().unwrap();
                frame::check_docs(&e.header, &raw).unwrap();
                black_box(raw);
            }
        })
    });
    // The whole of `oxidump verify` (without --deep) on an archive of these frames.
    // It decodes on the thread pool, so it is timed in CPU seconds of the whole
    // process, all threads: per core, like the single-threaded figures above.
    let archive = common::archive(&frames, oxidump::oxd::DEFAULT_ZSTD_LEVEL);
    g.bench_function("verify (CPU time)", |b| {
        b.iter_custom(|iters| {
            let c0 = common::process_cpu();
            for _ in 0..iters {
                common::verify(black_box(&archive));
            }
            common::process_cpu().saturating_sub(c0)
        })
    });
    g.finish();
}

criterion_group!(frames_group, benches);

fn main() {
    // Under `cargo test` (no `--bench`), only check that the benchmark builds.
    if !common::benchmarking() {
        return;
    }
    frames_group();
    Criterion::default().configure_from_args().final_summary();
}
