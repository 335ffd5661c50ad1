//! Serial line protocol benchmarks: decode throughput of the codec (target >= 200 MB/s) next to
//! its floors in the same run (CRC-32 alone over the same bytes, and a plain copy), and lines/s
//! of 2048 channels from bytes through the frame mapper and the assembler (calibration, air
//! tracking, gap accounting, segmentation) — the CPU part of "20,000 lines/s end to end".
//!
//! `cargo bench --bench serial`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use twinspect::assemble::Assembler;
use twinspect::domain::rng::Rng;
use twinspect::source::serial::FrameMapper;
use twinspect::source::serial::codec::{Decoder, Frame, WireLineKind, encode};

const CHANNELS: usize = 2048;
const LINES: usize = 2000;

/// A stream as a scanner sends it: 64 dark, 64 air, then scan lines with noise and objects,
/// a heartbeat every 300 lines.
fn stream() -> Vec<u8> {
    let mut rng = Rng::new(3);
    let mut out = Vec::new();
    let mut seq = 0u32;
    for l in 0..LINES {
        let (kind, base) = match l {
            0..64 => (WireLineKind::Dark, 1000.0),
            64..128 => (WireLineKind::Air, 40000.0),
            _ => (WireLineKind::Scan, 40000.0),
        };
        let object = l % 400 > 200;
        let sample = |rng: &mut Rng, c: usize, f: f64| {
            let t = if object && (300..1500).contains(&c) { 0.3 } else { 1.0 };
            (1000.0 + (base - 1000.0) * t * f + rng.normal() * 50.0).clamp(0.0, 65535.0) as u16
        };
        let low: Vec<u16> = (0..CHANNELS).map(|c| sample(&mut rng, c, 0.9)).collect();
        let high: Vec<u16> = (0..CHANNELS).map(|c| sample(&mut rng, c, 1.0)).collect();
        encode(seq, &Frame::Line { line: l as u32, kind, low, high }, &mut out).unwrap();
        seq += 1;
        if l % 300 == 0 {
            encode(seq, &Frame::Heartbeat { uptime_ms: l as u32 }, &mut out).unwrap();
            seq += 1;
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let bytes = stream();
    let mut g = c.benchmark_group("serial decode");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.sample_size(20);
    for chunk in [4096usize, 65536] {
        g.bench_with_input(BenchmarkId::new("twinspect codec", chunk), &chunk, |b, &chunk| {
            b.iter(|| {
                let mut d = Decoder::new();
                let mut n = 0usize;
                for part in bytes.chunks(chunk) {
                    d.push(part, |_| n += 1);
                }
                assert_eq!(n, LINES + LINES.div_ceil(300));
                n
            })
        });
    }
    g.bench_function("floor: crc32fast alone", |b| b.iter(|| crc32fast::hash(&bytes)));
    g.bench_function("floor: copy", |b| b.iter(|| bytes.to_vec()));
    g.finish();

    let mut g = c.benchmark_group("serial to assembler");
    g.throughput(Throughput::Elements(LINES as u64));
    g.sample_size(10);
    g.bench_function("bytes -> lines -> assembler, 2048 ch", |b| {
        b.iter(|| {
            let mut d = Decoder::new();
            let mut m = FrameMapper::default();
            let mut a = Assembler::new(CHANNELS, 65535);
            let mut events = Vec::new();
            let mut shown = 0;
            for part in bytes.chunks(65536) {
                d.push(part, |r| m.map(r.frame, &mut events));
                shown += a.feed(events.drain(..)).lines;
            }
            assert_eq!(shown, LINES - 128);
            shown
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
