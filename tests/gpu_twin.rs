//! The GPU kernels held to their CPU twins, stage by stage, on random and edge-case frames
//! (1x1, odd sizes, all air, all dark, saturated), under every preset, and the live ring's
//! incremental path held to a full re-render.
//!
//! Needs a GPU adapter: in CI that is Mesa's lavapipe (`WGPU_BACKEND=vulkan`). A missing adapter
//! fails these tests; it never skips them.
//!
//! Tolerances: each stage is fed the *GPU's own* output of the previous stage, so the only
//! differences left are the GPU's `log`/`exp`/`pow` against Rust's (a few ulp on lavapipe, at most
//! 1e-5 relative; we allow 2e-5 plus 2e-5 absolute), Zeff through the LUT slope (0.05), CLAHE
//! tables where a pixel sits exactly on a histogram bin edge (1 %), and rgba8 rounding (2 levels).

use ndarray::{Array2, Array3};
use twinspect::domain::material::MaterialLut;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::rng::Rng;
use twinspect::domain::view::{Preset, ViewSettings};
use twinspect::pipeline::cpu;
use twinspect::pipeline::gpu::{GpuContext, GpuImage, ImageSpec, Kernels, LiveView, Work};

struct Rig {
    ctx: GpuContext,
    kernels: Kernels,
    lut: MaterialLut,
}

fn rig() -> Rig {
    let ctx = ctx();
    let kernels = Kernels::new(&ctx.device);
    Rig { ctx, kernels, lut: lut() }
}

fn ctx() -> GpuContext {
    GpuContext::headless().expect("a GPU adapter is required (CI: mesa-vulkan-drivers + WGPU_BACKEND=vulkan)")
}

fn lut() -> MaterialLut {
    MaterialLut::for_profile(&ScannerProfile::load("desk-140").unwrap()).unwrap()
}

const FULL: u16 = 65535;

fn calib_table(channels: usize, rng: &mut Rng) -> Vec<[f32; 4]> {
    (0..channels)
        .map(|c| {
            let dl = 1000.0 + 50.0 * rng.normal() as f32;
            let dh = 1100.0 + 50.0 * rng.normal() as f32;
            let span = |r: &mut Rng| {
                if c == 2 && channels > 4 { -1.0 } else { (40000.0 + 2000.0 * r.normal() as f32).ln() }
            };
            [dl, dh, span(rng), span(rng)]
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Fill {
    Random,
    Air,
    Dark,
    Saturated,
    Ramp,
}

fn frame(lines: usize, channels: usize, fill: Fill, rng: &mut Rng) -> (Array2<u16>, Array2<u16>) {
    let mut sample = |l: usize, c: usize| -> u16 {
        match fill {
            Fill::Air => (41000.0 + 200.0 * rng.normal()) as u16,
            Fill::Dark => (1000.0 + 5.0 * rng.normal()) as u16,
            Fill::Saturated => FULL,
            Fill::Ramp => (1000 + ((l * 37 + c * 11) % 40000)) as u16,
            Fill::Random => match rng.int(0, 9) {
                0 => 0,
                1 => FULL,
                2 => rng.int(900, 1200) as u16,
                _ => (1000.0 + 40000.0 * (-rng.range(0.0, 7.0)).exp()) as u16,
            },
        }
    };
    let low = Array2::from_shape_fn((lines, channels), |(l, c)| sample(l, c));
    let high = Array2::from_shape_fn((lines, channels), |(l, c)| sample(l, c).saturating_add(100));
    (low, high)
}

fn assert_close(what: &str, gpu: &Array3<f32>, cpu: &Array3<f32>, k: usize, abs: f32, rel: f32) {
    assert_eq!(gpu.dim(), cpu.dim(), "{what}");
    let mut worst = 0.0f32;
    for ((idx, &g), &c) in gpu.indexed_iter().zip(cpu.iter()) {
        if idx.2 != k {
            continue;
        }
        assert!(g.is_finite(), "{what} {idx:?}: GPU gave {g}");
        let d = (g - c).abs();
        worst = worst.max(d);
        assert!(d <= abs + rel * c.abs(), "{what} {idx:?}: GPU {g} vs CPU {c}");
    }
    let _ = worst;
}

fn max_rgba_diff(a: &Array3<u8>, b: &Array3<u8>) -> (u8, f64) {
    assert_eq!(a.dim(), b.dim());
    let mut worst = 0u8;
    let mut over = 0usize;
    for (x, y) in a.iter().zip(b.iter()) {
        let d = x.abs_diff(*y);
        worst = worst.max(d);
        if d > 2 {
            over += 1;
        }
    }
    (worst, over as f64 / a.len() as f64)
}

/// Runs all three stages on the GPU and checks each against the CPU twin fed the same inputs.
fn check_frame(rig: &Rig, lines: usize, channels: usize, fill: Fill, view: &ViewSettings, seed: u64) {
    let (ctx, kernels, lut) = (&rig.ctx, &rig.kernels, &rig.lut);
    let mut rng = Rng::new(seed);
    let calib = calib_table(channels, &mut rng);
    let (low, high) = frame(lines, channels, fill, &mut rng);
    let img =
        GpuImage::new(&ctx.device, &ctx.queue, kernels, channels as u32, lines as u32, FULL, lut).unwrap();
    img.set_calibration(&ctx.queue, &calib);
    img.write_frame(&ctx.queue, low.view(), high.view());
    let p = img.params(view, false);
    img.run(&ctx.device, &ctx.queue, kernels, &p, Work::full(lines as u32, p.tile));
    let what = format!("{lines}x{channels} {fill:?} {view:?}");

    let g_feat = img.read_features(&ctx.device, &ctx.queue, kernels).unwrap();
    let c_feat = cpu::prepare(low.view(), high.view(), &calib, lut, &p);
    assert_close(&format!("A_low {what}"), &g_feat, &c_feat, 0, 2e-5, 2e-5);
    assert_close(&format!("A_high {what}"), &g_feat, &c_feat, 1, 2e-5, 2e-5);
    // Zeff is compared where the beam was attenuated: in air (A_high < 0.02) the ratio of two
    // near-zero attenuations amplifies ulp differences, and the display shows no colour there
    // (saturation is 0 below A_high = 0.02), so Zeff is meaningless and invisible.
    let mut g_z = g_feat.clone();
    for ((l, c, k), v) in g_z.indexed_iter_mut() {
        if k == 2 && c_feat[[l, c, 1]] < 0.02 {
            *v = c_feat[[l, c, 2]];
        }
    }
    assert_close(&format!("Zeff {what}"), &g_z, &c_feat, 2, 0.05, 0.0);
    assert_close(&format!("I {what}"), &g_feat, &c_feat, 3, 2e-5, 2e-5);

    let c_luts = cpu::clahe_luts(g_feat.view(), &p);
    if p.local_contrast > 0.0 {
        let g_luts = img.read_luts(&ctx.device, &ctx.queue, &p).unwrap();
        for k in 0..256 {
            assert_close(&format!("CLAHE {what}"), &g_luts, &c_luts, k, 0.01, 0.0);
        }
        let g_rgba = img.read_rgba(&ctx.device, &ctx.queue).unwrap();
        let c_rgba = cpu::compose(g_feat.view(), g_luts.view(), &p);
        let (worst, _) = max_rgba_diff(&g_rgba, &c_rgba);
        assert!(worst <= 2, "compose {what}: worst {worst}");
    } else {
        let g_rgba = img.read_rgba(&ctx.device, &ctx.queue).unwrap();
        let c_rgba = cpu::compose(g_feat.view(), c_luts.view(), &p);
        let (worst, _) = max_rgba_diff(&g_rgba, &c_rgba);
        assert!(worst <= 2, "compose {what}: worst {worst}");
    }

    // End to end from raw: pixels whose Zeff or intensity sits on a class or bin boundary may
    // round the other way; those must be rare.
    let g_rgba = img.read_rgba(&ctx.device, &ctx.queue).unwrap();
    let e2e = cpu::render(low.view(), high.view(), &calib, lut, &p, &[]);
    let (_, frac) = max_rgba_diff(&g_rgba, &e2e);
    assert!(frac < 0.005, "end to end {what}: {:.3} % of samples differ by more than 2", frac * 100.0);
}

#[test]
fn every_stage_matches_the_cpu_twin_on_edge_case_frames() {
    let rig = rig();
    eprintln!("adapter: {}", rig.ctx.describe());
    let std = Preset::Standard.settings();
    let sizes = [(1, 1), (1, 7), (7, 1), (3, 5), (67, 33), (130, 257)];
    let mut seed = 0;
    for (lines, channels) in sizes {
        for fill in [Fill::Random, Fill::Air, Fill::Dark, Fill::Saturated, Fill::Ramp] {
            seed += 1;
            check_frame(&rig, lines, channels, fill, &std, seed);
        }
    }
}

#[test]
fn every_preset_matches_the_cpu_twin() {
    let rig = rig();
    for (k, preset) in Preset::ALL.into_iter().enumerate() {
        check_frame(&rig, 200, 150, Fill::Random, &preset.settings(), 100 + k as u64);
        check_frame(&rig, 129, 65, Fill::Ramp, &preset.settings(), 200 + k as u64);
    }
    let custom = ViewSettings {
        clahe_tile: 16,
        clahe_clip: 1.5,
        local_contrast: 0.7,
        edge: 1.0,
        gamma: 0.6,
        ..Default::default()
    };
    check_frame(&rig, 100, 90, Fill::Random, &custom, 7);
}

#[test]
fn live_ring_processes_new_lines_like_a_full_render_for_two_stations() {
    let ctx = ctx();
    let kernels = Kernels::new(&ctx.device);
    let lut = lut();
    let channels = 96usize;
    let mut rng = Rng::new(99);
    let calib = calib_table(channels, &mut rng);
    let mut live = LiveView::new(
        &ctx.device,
        &ctx.queue,
        &kernels,
        ImageSpec { channels: channels as u32, lines: 256, full_scale: FULL, views: 2 },
        &lut,
    )
    .unwrap();
    let cap = live.capacity() as usize;
    assert_eq!(cap, 256);
    live.set_calibration(&ctx.queue, &calib);
    // lines not yet received are full scale (air) in the ring
    let mut ring_low = Array2::<u16>::from_elem((cap, channels), FULL);
    let mut ring_high = Array2::<u16>::from_elem((cap, channels), FULL);
    let mut ring_missing = vec![false; cap];
    let mut total = 0usize;
    let views = [Preset::Standard.settings(), Preset::Edge.settings(), Preset::Local.settings()];
    for (step, chunk) in [1usize, 5, 60, 200, 3, 300, 17, 255, 1].into_iter().enumerate() {
        let (low, high) = frame(chunk, channels, Fill::Random, &mut rng);
        for l in 0..chunk {
            ring_low.row_mut((total + l) % cap).assign(&low.row(l));
            ring_high.row_mut((total + l) % cap).assign(&high.row(l));
        }
        total += chunk;
        // A few lines of some chunks were lost on the way: they must show as the hatch.
        let missing: Vec<bool> = (0..chunk).map(|l| step % 2 == 1 && (2..6).contains(&l)).collect();
        for (l, &m) in missing.iter().enumerate() {
            ring_missing[(total - chunk + l) % cap] = m;
        }
        live.push_lines(&ctx.queue, low.as_slice().unwrap(), high.as_slice().unwrap(), &missing);
        // Station 0's view changes every third step (the others exercise the incremental path);
        // station 1 keeps pseudo-colour throughout and must follow the new lines all the same.
        let stations = [views[step / 3].clone(), Preset::Pseudo.settings()];
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        assert!(live.encode(&ctx.queue, &mut enc, &kernels, &stations));
        ctx.queue.submit([enc.finish()]);
        let view = &stations[0];

        let p = live.image.params(view, true);
        let feat = cpu::prepare(ring_low.view(), ring_high.view(), &calib, &lut, &p);
        let g_feat = live.image.read_features(&ctx.device, &ctx.queue, &kernels).unwrap();
        assert_close(&format!("live step {step} A_high"), &g_feat, &feat, 1, 2e-5, 2e-5);
        let luts = if p.local_contrast > 0.0 {
            live.image.read_luts(&ctx.device, &ctx.queue, &p).unwrap()
        } else {
            cpu::clahe_luts(g_feat.view(), &p)
        };
        if p.local_contrast > 0.0 {
            let c_luts = cpu::clahe_luts(g_feat.view(), &p);
            for k in 0..256 {
                assert_close(&format!("live step {step} CLAHE"), &luts, &c_luts, k, 0.01, 0.0);
            }
        }
        let want = cpu::compose_with_missing(g_feat.view(), luts.view(), &p, &ring_missing);
        let got = live.image.read_rgba(&ctx.device, &ctx.queue).unwrap();
        let (worst, _) = max_rgba_diff(&got, &want);
        assert!(worst <= 2, "live step {step} (chunk {chunk}, total {total}): worst {worst}");
        let p1 = live.image.params(&stations[1], true);
        let want1 = cpu::compose_with_missing(
            g_feat.view(),
            cpu::clahe_luts(g_feat.view(), &p1).view(),
            &p1,
            &ring_missing,
        );
        let got1 = live.image.read_rgba_of(&ctx.device, &ctx.queue, 1).unwrap();
        let (worst1, _) = max_rgba_diff(&got1, &want1);
        assert!(worst1 <= 2, "station 1, live step {step}: worst {worst1}");
        assert_ne!(got, got1, "the two stations show their own image functions");
    }
    assert_eq!(live.head, total as u64);
    // nothing new and nothing changed: no work at all
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    let last = [views[2].clone(), Preset::Pseudo.settings()];
    assert!(!live.encode(&ctx.queue, &mut enc, &kernels, &last));
}

#[test]
fn frames_beyond_the_device_limits_are_refused_cleanly() {
    let ctx = ctx();
    let kernels = Kernels::new(&ctx.device);
    let lut = lut();
    let max = ctx.device.limits().max_texture_dimension_2d;
    let r = GpuImage::new(&ctx.device, &ctx.queue, &kernels, 16, max + 1, FULL, &lut);
    assert!(r.is_err());
    assert!(GpuImage::new(&ctx.device, &ctx.queue, &kernels, 0, 10, FULL, &lut).is_err());
}

/// `render_frame` (what `twinspect render --raw` uses on a captured bag) shows the lost lines it is
/// told of as the hatch, exactly as the CPU twin does, and the rest of the image as before.
#[test]
fn a_captured_bag_renders_its_lost_lines_hatched_like_the_cpu_twin() {
    use twinspect::domain::calib::Calibration;
    use twinspect::domain::scan::{RawFrame, RawLine};
    let rig = rig();
    let p = ScannerProfile::load("desk-140").unwrap();
    let mut s = twinspect::domain::synth::SyntheticScanner::new(&p, 4).unwrap();
    let bag = twinspect::domain::synth::generate_bag(21, &p);
    let lines: Vec<RawLine> = s.bag_lines(&bag).take(200).collect();
    let mut frame = RawFrame::from_lines(&lines, p.channels as usize);
    let mut missing = vec![false; 200];
    for l in [10, 11, 12, 150] {
        missing[l] = true;
        frame.low.row_mut(l).fill(0);
        frame.high.row_mut(l).fill(0);
    }
    let (dark, air) = s.calibration_lines(16);
    let calib = Calibration::from_lines(
        &dark.iter().collect::<Vec<_>>(),
        &air.iter().map(|l| l as &RawLine).collect::<Vec<_>>(),
        p.full_scale(),
    )
    .unwrap();
    let view = Preset::Standard.settings();
    let scan = twinspect::pipeline::gpu::Scan { frame: &frame, calib: &calib, missing: &missing };
    let g = twinspect::pipeline::gpu::render_frame(
        &rig.ctx.device,
        &rig.ctx.queue,
        &rig.kernels,
        scan,
        &rig.lut,
        &view,
    )
    .unwrap();
    let params =
        twinspect::pipeline::params::Params::new(&view, &rig.lut, p.channels, 200, p.full_scale(), false);
    let c = cpu::render(frame.low.view(), frame.high.view(), &calib.table(), &rig.lut, &params, &missing);
    let (_, frac) = max_rgba_diff(&g, &c);
    assert!(frac < 0.005, "{:.3} % differ", frac * 100.0);
    let h = p.channels as usize;
    for l in [10usize, 150] {
        for y in [0, h / 2, h - 1] {
            let c_hat = cpu::missing_hatch(l as u32, (h - 1 - y) as u32);
            let want = (c_hat[0] * 255.0).round() as u8;
            assert!(g[[y, l, 0]].abs_diff(want) <= 1 && g[[y, l, 0]] == g[[y, l, 2]], "line {l} row {y}");
        }
    }
}

/// Two stations composed in one dispatch (compose's `main2`: the features computed once for both)
/// give exactly what each station's view gives alone, for pairs of presets that differ in every
/// shading choice (colour mode, stripping, negative, local contrast), with lost lines.
#[test]
fn two_views_composed_together_match_each_view_alone() {
    let rig = rig();
    let (ctx, kernels, lut) = (&rig.ctx, &rig.kernels, &rig.lut);
    let (lines, channels) = (97usize, 70usize);
    let mut rng = Rng::new(31);
    let calib = calib_table(channels, &mut rng);
    let (low, high) = frame(lines, channels, Fill::Random, &mut rng);
    let missing: Vec<bool> = (0..lines).map(|l| l % 29 == 3).collect();
    let spec = ImageSpec { channels: channels as u32, lines: lines as u32, full_scale: FULL, views: 2 };
    let pairs = [
        (Preset::Standard, Preset::Os),
        (Preset::Pseudo, Preset::Negative),
        (Preset::Bw, Preset::Metal),
        (Preset::Edge, Preset::Local),
        (Preset::Hp, Preset::Edge),
    ];
    for (a, b) in pairs {
        let img = GpuImage::with_views(&ctx.device, &ctx.queue, kernels, spec, lut).unwrap();
        img.set_calibration(&ctx.queue, &calib);
        img.write_frame(&ctx.queue, low.view(), high.view());
        img.write_missing(&ctx.queue, 0, &missing);
        let (pa, pb) = (img.params(&a.settings(), false), img.params(&b.settings(), false));
        let full = Work::full(lines as u32, pa.tile);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        img.encode_views(&ctx.queue, &mut enc, kernels, &[(&pa, full), (&pb, full)]);
        ctx.queue.submit([enc.finish()]);
        let together = [0, 1].map(|i| img.read_rgba_of(&ctx.device, &ctx.queue, i).unwrap());
        for (i, p) in [(0usize, &pa), (1, &pb)] {
            let alone = GpuImage::with_views(&ctx.device, &ctx.queue, kernels, spec, lut).unwrap();
            alone.set_calibration(&ctx.queue, &calib);
            alone.write_frame(&ctx.queue, low.view(), high.view());
            alone.write_missing(&ctx.queue, 0, &missing);
            alone.run(&ctx.device, &ctx.queue, kernels, p, Work::full(lines as u32, p.tile));
            let want = alone.read_rgba(&ctx.device, &ctx.queue).unwrap();
            assert_eq!(together[i], want, "{a:?} + {b:?}: view {i} composed together differs from alone");
        }
        assert_ne!(together[0], together[1], "{a:?} + {b:?}: each station has its own image function");
    }
}

/// On lavapipe compose takes its neighbours through subgroup shuffles (`main_sg`, `main2_sg`):
/// that path must be the one in use there (so these tests exercise it in CI), and render exactly
/// what the plain entry points render, for one station and two, at widths that are not a multiple
/// of a subgroup's 30 channels (and narrower than one), an even width over two subgroups, with
/// lost lines.
#[test]
fn the_subgroup_compose_renders_exactly_what_the_plain_one_does() {
    use twinspect::pipeline::gpu::{KERNELS, Tuning};
    let rig = rig();
    let (ctx, lut) = (&rig.ctx, &rig.lut);
    let tuned = rig.kernels.tuning;
    if ctx.info.device_type == wgpu::DeviceType::Cpu
        && ctx.device.features().contains(wgpu::Features::SUBGROUP)
    {
        assert_eq!(tuned.sg, 8, "lavapipe has 8-lane subgroups: compose should use them");
    }
    let plain_tuning = Tuning { sg: 0, ..tuned };
    if tuned.sg == 0 {
        // No subgroups here (a GPU's tuning): both would be the plain path, nothing to compare.
        return;
    }
    let sources = [KERNELS[0].1, KERNELS[1].1, KERNELS[2].1];
    let plain = Kernels::from_sources(&ctx.device, sources, plain_tuning);
    let mut rng = Rng::new(77);
    for (lines, channels) in [(1usize, 1usize), (9, 7), (40, 29), (33, 30), (70, 61), (35, 97), (12, 64)] {
        let calib = calib_table(channels, &mut rng);
        let (low, high) = frame(lines, channels, Fill::Random, &mut rng);
        let missing: Vec<bool> = (0..lines).map(|l| l % 11 == 4).collect();
        let spec = ImageSpec { channels: channels as u32, lines: lines as u32, full_scale: FULL, views: 2 };
        for (a, b) in Preset::ALL.iter().zip(Preset::ALL.iter().rev()) {
            let render = |kernels: &Kernels| {
                let img = GpuImage::with_views(&ctx.device, &ctx.queue, kernels, spec, lut).unwrap();
                img.set_calibration(&ctx.queue, &calib);
                img.write_frame(&ctx.queue, low.view(), high.view());
                img.write_missing(&ctx.queue, 0, &missing);
                let (pa, pb) = (img.params(&a.settings(), false), img.params(&b.settings(), false));
                let full = Work::full(lines as u32, pa.tile);
                // both stations together (main2), then station A alone (main) into view 1
                let mut enc = ctx.device.create_command_encoder(&Default::default());
                img.encode_views(&ctx.queue, &mut enc, kernels, &[(&pa, full), (&pb, full)]);
                ctx.queue.submit([enc.finish()]);
                let two = [0, 1].map(|i| img.read_rgba_of(&ctx.device, &ctx.queue, i).unwrap());
                img.run(&ctx.device, &ctx.queue, kernels, &pa, full);
                (two, img.read_rgba(&ctx.device, &ctx.queue).unwrap())
            };
            let (sg_two, sg_one) = render(&rig.kernels);
            let (pl_two, pl_one) = render(&plain);
            assert_eq!(sg_two, pl_two, "{channels}x{lines} {a:?}+{b:?}: two stations differ");
            assert_eq!(sg_one, pl_one, "{channels}x{lines} {a:?}: one station differs");
        }
    }
}

/// The subgroup form renders a region's lines one by one, like the plain form: a region that
/// starts and ends on odd lines renders its lines like the plain form, from the data there now,
/// and every line outside it keeps what it showed (its stores pair neighbouring channels, never
/// neighbouring lines).
#[test]
fn a_region_with_odd_bounds_renders_like_the_plain_form() {
    use twinspect::pipeline::gpu::{KERNELS, Tuning};
    let rig = rig();
    let (ctx, lut) = (&rig.ctx, &rig.lut);
    if rig.kernels.tuning.sg == 0 {
        return; // a GPU's tuning: there is only the plain form
    }
    let sources = [KERNELS[0].1, KERNELS[1].1, KERNELS[2].1];
    let plain = Kernels::from_sources(&ctx.device, sources, Tuning { sg: 0, ..rig.kernels.tuning });
    let mut rng = Rng::new(5);
    let (lines, channels) = (40usize, 61usize);
    let calib = calib_table(channels, &mut rng);
    let (low_a, high_a) = frame(lines, channels, Fill::Random, &mut rng);
    let (low_b, high_b) = frame(lines, channels, Fill::Random, &mut rng);
    let spec = ImageSpec { channels: channels as u32, lines: lines as u32, full_scale: FULL, views: 2 };
    let (l0, n) = (13usize, 7usize);
    let render = |kernels: &Kernels| {
        let img = GpuImage::with_views(&ctx.device, &ctx.queue, kernels, spec, lut).unwrap();
        img.set_calibration(&ctx.queue, &calib);
        img.write_frame(&ctx.queue, low_a.view(), high_a.view());
        let (pa, pb) =
            (img.params(&Preset::Standard.settings(), false), img.params(&Preset::Os.settings(), false));
        let full = Work::full(lines as u32, pa.tile);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        img.encode_views(&ctx.queue, &mut enc, kernels, &[(&pa, full), (&pb, full)]);
        ctx.queue.submit([enc.finish()]);
        let before = [0, 1].map(|i| img.read_rgba_of(&ctx.device, &ctx.queue, i).unwrap());
        img.write_frame(&ctx.queue, low_b.view(), high_b.view());
        let part = Work { clahe: None, compose: Some((l0 as u32, n as u32)) };
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        img.encode_views(&ctx.queue, &mut enc, kernels, &[(&pa, part), (&pb, part)]);
        ctx.queue.submit([enc.finish()]);
        (before, [0, 1].map(|i| img.read_rgba_of(&ctx.device, &ctx.queue, i).unwrap()))
    };
    let (sg_before, sg_after) = render(&rig.kernels);
    let (pl_before, pl_after) = render(&plain);
    assert_eq!(sg_before, pl_before, "full frames differ");
    for v in 0..2 {
        // x is the line: the region's lines as the plain form renders them
        for x in l0..l0 + n {
            assert_eq!(
                sg_after[v].slice(ndarray::s![.., x, ..]),
                pl_after[v].slice(ndarray::s![.., x, ..]),
                "view {v} line {x}"
            );
        }
        // no line outside the region is re-rendered: what was shown there stays
        let mut changed = 0;
        for x in (0..l0).chain(l0 + n..lines) {
            assert_eq!(
                sg_after[v].slice(ndarray::s![.., x, ..]),
                sg_before[v].slice(ndarray::s![.., x, ..]),
                "view {v} line {x}"
            );
        }
        for x in l0..l0 + n {
            changed += usize::from(
                sg_after[v].slice(ndarray::s![.., x, ..]) != sg_before[v].slice(ndarray::s![.., x, ..]),
            );
        }
        assert!(changed > 0, "view {v}: the region shows the new data");
    }
}
