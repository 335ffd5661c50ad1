//! Pipeline benchmarks: the full-frame chain (raw -> RGBA, standard preset) on the GPU and on its
//! CPU twin at 512x512, 2048x1536 and 2304x4096 (channels x lines), live throughput in lines/s at
//! 2048 channels (assembly + GPU, strips of new lines), and OpenCV doing the
//! equivalent chain on the same frames in the same run (`benches/opencv_peer.py`), with the ratio.
//!
//! `cargo bench --bench pipeline` (set WGPU_BACKEND=vulkan on a machine without a GPU).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use ndarray::Array2;
use twinspect::assemble::Assembler;
use twinspect::domain::material::MaterialLut;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::scan::{LineKind, RawLine};
use twinspect::domain::synth::SyntheticScanner;
use twinspect::domain::view::Preset;
use twinspect::pipeline::cpu;
use twinspect::pipeline::gpu::{GpuContext, GpuImage, ImageSpec, Kernels, LiveView, Work};
use twinspect::source::{CALIBRATION_LINES, SourceEvent};

/// (lines, channels); named "channels x lines" as in the issue (2048 channels x 1536 lines).
const SIZES: [(usize, usize); 3] = [(512, 512), (1536, 2048), (4096, 2304)];

struct Frame {
    low: Array2<u16>,
    high: Array2<u16>,
    calib: Vec<[f32; 4]>,
}

/// A realistic frame: synthetic bags from the hub scanner, tiled to the requested size.
fn make_frame(lines: usize, channels: usize) -> Frame {
    let mut profile = ScannerProfile::load("hub-160").unwrap();
    profile.channels = channels as u32;
    let (f, cal) = common::synthetic_frame(&profile, lines);
    Frame { low: f.low, high: f.high, calib: cal.table() }
}

/// A calibration cycle as the scanner sends it: dark lines, then air lines.
fn calibration_events(channels: usize) -> Vec<SourceEvent> {
    let mut profile = ScannerProfile::load("hub-160").unwrap();
    profile.channels = channels as u32;
    let mut s = SyntheticScanner::new(&profile, 5).unwrap();
    let (dark, air) = s.calibration_lines(CALIBRATION_LINES);
    dark.into_iter().chain(air).map(SourceEvent::Line).collect()
}

fn write_peer_input(dir: &Path, name: &str, f: &Frame) {
    let bytes = |a: &Array2<u16>| a.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(dir.join(format!("{name}.low.u16")), bytes(&f.low)).unwrap();
    std::fs::write(dir.join(format!("{name}.high.u16")), bytes(&f.high)).unwrap();
    let cal: Vec<u8> = f.calib.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join(format!("{name}.calib.f32")), cal).unwrap();
}

fn benches(c: &mut Criterion) {
    let ctx = GpuContext::headless().expect("GPU adapter (WGPU_BACKEND=vulkan for lavapipe)");
    let adapter = ctx.describe();
    eprintln!("adapter: {adapter}");
    let kernels = Kernels::new(&ctx.device);
    let lut = MaterialLut::for_profile(&ScannerProfile::load("hub-160").unwrap()).unwrap();
    let view = Preset::Standard.settings();
    let peer_dir = tempfile::tempdir().unwrap();
    let mut ours_ms: Vec<(String, f64)> = Vec::new();

    let mut g = c.benchmark_group("full_frame");
    g.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(1));
    for (lines, channels) in SIZES {
        let name = format!("{channels}x{lines}");
        let f = make_frame(lines, channels);
        write_peer_input(peer_dir.path(), &name, &f);
        g.throughput(Throughput::Elements((lines * channels) as u64));
        let img =
            GpuImage::new(&ctx.device, &ctx.queue, &kernels, channels as u32, lines as u32, 65535, &lut)
                .unwrap();
        img.set_calibration(&ctx.queue, &f.calib);
        let p = img.params(&view, false);
        // Upload, the whole chain, wait: what a new frame costs before it can be shown.
        let mut times = Vec::new();
        g.bench_function(BenchmarkId::new("gpu", &name), |b| {
            b.iter(|| {
                let t = Instant::now();
                img.write_frame(&ctx.queue, f.low.view(), f.high.view());
                img.run(&ctx.device, &ctx.queue, &kernels, &p, Work::full(lines as u32, p.tile));
                times.push(t.elapsed().as_secs_f64() * 1e3);
            })
        });
        times.sort_by(f64::total_cmp);
        if !times.is_empty() {
            // (empty when a filter skipped this benchmark)
            ours_ms.push((name.clone(), times[times.len() / 2]));
        }
        // The frame already on the GPU (a preset change, a zoom): the chain and the wait only.
        img.write_frame(&ctx.queue, f.low.view(), f.high.view());
        g.bench_function(BenchmarkId::new("gpu_resident", &name), |b| {
            b.iter(|| img.run(&ctx.device, &ctx.queue, &kernels, &p, Work::full(lines as u32, p.tile)))
        });
        if lines * channels <= 2048 * 1536 {
            g.bench_function(BenchmarkId::new("cpu_twin", &name), |b| {
                b.iter(|| cpu::render(f.low.view(), f.high.view(), &f.calib, &lut, &p, &[]))
            });
        }
    }
    g.finish();

    // Live path: source events -> assembler (air tracking, gap accounting) -> the GPU ring,
    // processing only the new lines, in strips as a frame's worth of lines arrives.
    let mut g = c.benchmark_group("live");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    let channels = 2048usize;
    let mut live = LiveView::new(
        &ctx.device,
        &ctx.queue,
        &kernels,
        ImageSpec { channels: channels as u32, lines: 4096, full_scale: 65535, views: 2 },
        &lut,
    )
    .unwrap();
    let f = make_frame(1024, channels);
    let mut asm = Assembler::new(channels, 65535);
    let cal_events = calibration_events(channels);
    let b = asm.feed(cal_events);
    assert!(b.calibration_changed);
    live.set_calibration(&ctx.queue, &asm.calibration.as_ref().unwrap().table());
    let mut seq = 1000u64;
    // Both stations live, as in the workstation: customs standard, quarantine organic-only.
    let two_stations = [view.clone(), Preset::Os.settings()];
    for strip in [16usize, 64, 256] {
        let lines: Vec<RawLine> = (0..strip)
            .map(|l| RawLine {
                seq: 0,
                kind: LineKind::Scan,
                low: f.low.row(l).to_vec(),
                high: f.high.row(l).to_vec(),
            })
            .collect();
        g.throughput(Throughput::Elements(strip as u64));
        g.bench_function(BenchmarkId::new("lines_2048ch_strip", strip), |b| {
            b.iter(|| {
                let events = lines.iter().cloned().map(|mut l| {
                    seq += 1;
                    l.seq = seq;
                    SourceEvent::Line(l)
                });
                let batch = asm.feed(events);
                live.push_lines(&ctx.queue, &batch.low, &batch.high, &batch.missing);
                let mut enc = ctx.device.create_command_encoder(&Default::default());
                live.encode(&ctx.queue, &mut enc, &kernels, &two_stations);
                let idx = ctx.queue.submit([enc.finish()]);
                let _ = ctx.device.poll(wgpu::PollType::Wait { submission_index: Some(idx), timeout: None });
            })
        });
    }
    g.finish();

    // The peer, same frames, same run.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/opencv_peer.py");
    let out = Command::new("python3").arg(&script).arg(peer_dir.path()).output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            println!("\nOpenCV peer (median ms, {}):", adapter);
            for line in text.lines() {
                let mut it = line.split_whitespace();
                if let (Some(name), Some(ms)) = (it.next(), it.next().and_then(|s| s.parse::<f64>().ok()))
                    && let Some((_, ours)) = ours_ms.iter().find(|(n, _)| n == name)
                {
                    println!(
                        "  {name}: twinspect GPU {ours:.1} ms, OpenCV {ms:.1} ms, ratio {:.2}",
                        ours / ms
                    );
                }
            }
        }
        Ok(o) => println!("OpenCV peer failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => println!("OpenCV peer not run: {e}"),
    }
}

criterion_group!(pipeline, benches);

fn main() {
    pipeline();
    criterion::Criterion::default().configure_from_args().final_summary();
}
