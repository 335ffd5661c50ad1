//! Opening an archived bag on a screen: a 2048-channel x 2000-line bag read from the archive
//! (row, record, the two-page TIFF checked against its SHA-256, calibration: the archive
//! thread's part) and put on the GPU (upload, compose under the standard preset, the GPU
//! finished: the frame loop's part), and both as the operator waits for them. Target: under
//! 100 ms on lavapipe (median). The peer, in the same run: Python reading the same TIFF with
//! tifffile and running OpenCV's equivalent display chain (`benches/open_peer.py`).
//!
//! `cargo bench --bench open_bag` (set WGPU_BACKEND=vulkan on a machine without a GPU).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use twinspect::desk::archiver::read_bag;
use twinspect::domain::material::MaterialLut;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::view::Preset;
use twinspect::files::store::Store;
use twinspect::pipeline::gpu::{GpuContext, GpuImage, Kernels, Work};

const CHANNELS: usize = 2048;
const LINES: usize = 2000;

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut profile = ScannerProfile::load("hub-160").unwrap();
    profile.channels = CHANNELS as u32;
    let (dir, id) = common::archived_bag(&profile, LINES);
    let reader = Store::open_read(dir.path()).unwrap();
    let ctx = GpuContext::headless().expect("a GPU adapter (WGPU_BACKEND=vulkan for lavapipe)");
    let adapter = ctx.describe();
    let kernels = Kernels::new(&ctx.device);
    let lut = MaterialLut::for_profile(&profile).unwrap();
    let view = Preset::Standard.settings();
    let show = |b: &twinspect::desk::archiver::LoadedBag| {
        let (lines, channels) = (b.frame.lines() as u32, b.frame.channels() as u32);
        let img =
            GpuImage::new(&ctx.device, &ctx.queue, &kernels, channels, lines, b.calibration.full_scale, &lut)
                .unwrap();
        img.set_calibration(&ctx.queue, &b.calibration.table());
        img.write_frame(&ctx.queue, b.frame.low.view(), b.frame.high.view());
        let p = img.params(&view, false);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        img.encode(&ctx.queue, &mut enc, &kernels, &p, Work::full(lines, p.tile));
        let idx = ctx.queue.submit([enc.finish()]);
        let _ = ctx.device.poll(wgpu::PollType::Wait { submission_index: Some(idx), timeout: None });
        img
    };
    // Pipelines built before anything is timed (the workstation has built them long before).
    drop(show(&read_bag(&reader, id, &profile.name).unwrap()));

    let mut c =
        Criterion::default().configure_from_args().sample_size(20).measurement_time(Duration::from_secs(8));
    println!("open a 2048x2000 archived bag, adapter: {adapter}");
    let mut g = c.benchmark_group("open_bag");
    g.bench_function("read from the archive", |b| b.iter(|| read_bag(&reader, id, &profile.name).unwrap()));
    let loaded = read_bag(&reader, id, &profile.name).unwrap();
    g.bench_function("upload and compose (GPU finished)", |b| b.iter(|| show(&loaded)));
    // Its parts: making the GPU image, then (into one made before) the upload, and the compose.
    let (lines, channels) = (loaded.frame.lines() as u32, loaded.frame.channels() as u32);
    let fs = loaded.calibration.full_scale;
    let finish = |idx| {
        let _ = ctx.device.poll(wgpu::PollType::Wait { submission_index: Some(idx), timeout: None });
    };
    g.bench_function("part: make the GPU image", |b| {
        b.iter(|| {
            let img = GpuImage::new(&ctx.device, &ctx.queue, &kernels, channels, lines, fs, &lut).unwrap();
            finish(ctx.queue.submit([]));
            img
        })
    });
    let img = GpuImage::new(&ctx.device, &ctx.queue, &kernels, channels, lines, fs, &lut).unwrap();
    g.bench_function("part: upload the scan", |b| {
        b.iter(|| {
            img.set_calibration(&ctx.queue, &loaded.calibration.table());
            img.write_frame(&ctx.queue, loaded.frame.low.view(), loaded.frame.high.view());
            finish(ctx.queue.submit([]));
        })
    });
    g.bench_function("part: compose", |b| {
        b.iter(|| {
            let p = img.params(&view, false);
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            img.encode(&ctx.queue, &mut enc, &kernels, &p, Work::full(lines, p.tile));
            finish(ctx.queue.submit([enc.finish()]));
        })
    });
    drop(img);
    g.bench_function("both", |b| b.iter(|| show(&read_bag(&reader, id, &profile.name).unwrap())));
    g.finish();

    // Medians for the summary line, measured here as well.
    let mut both = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        drop(show(&read_bag(&reader, id, &profile.name).unwrap()));
        both.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let ours = median_ms(both);
    println!("\nopen a 2048x2000 archived bag: median {ours:.1} ms on {adapter} (target < 100 ms)");

    // The peer: the same TIFF read with tifffile, then OpenCV's display chain.
    let tiff = dir.path().join(reader.bag(id).unwrap().scan_file.unwrap());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/open_peer.py");
    match Command::new("python3").arg(&script).arg(&tiff).output() {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            if let Some(ms) = text.split_whitespace().last().and_then(|s| s.parse::<f64>().ok()) {
                println!("peer (tifffile + OpenCV chain): median {ms:.1} ms; ratio {:.2}", ours / ms);
            }
        }
        Ok(o) => println!("peer failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => println!("peer not run: {e}"),
    }
    c.final_summary();
}
