//! Our CLAHE (CPU twin, which the GPU is held to in `gpu_twin.rs`) against OpenCV's
//! `createCLAHE` on the same 8-bit image: an implementation no one here wrote.
//!
//! Needs python3 with opencv-python-headless (installed by `.ci/test`). Differences come from
//! OpenCV's integer clip limit, integer redistribution of the excess, 8-bit tables and tile
//! centres at `x / tile - 0.5` (ours at pixel centres, `(x + 0.5) / tile - 0.5`): about a level
//! on average, a few at most.

use std::process::Command;

use ndarray::Array3;
use twinspect::domain::material::MaterialLut;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::rng::Rng;
use twinspect::domain::view::ViewSettings;
use twinspect::pipeline::cpu;
use twinspect::pipeline::params::Params;

#[test]
fn clahe_matches_opencv() {
    let (rows, cols, tile) = (384usize, 512usize, 64u32);
    // A smooth scene with structure at several scales, plus noise, in 8 bits.
    let mut rng = Rng::new(5);
    let img: Vec<u8> = (0..rows * cols)
        .map(|k| {
            let (y, x) = ((k / cols) as f64, (k % cols) as f64);
            let v = 110.0
                + 60.0 * (x / 47.0).sin() * (y / 83.0).cos()
                + 40.0 * ((x + y) / 150.0).sin()
                + if (x - 300.0).hypot(y - 200.0) < 60.0 { -70.0 } else { 0.0 }
                + 6.0 * rng.normal();
            v.clamp(0.0, 255.0) as u8
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("in.u8"), dir.path().join("out.u8"));
    std::fs::write(&src, &img).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/opencv_clahe.py");
    for clip in [2.0f32, 4.0] {
        let out = Command::new("python3")
            .arg(script)
            .arg(&src)
            .arg(&dst)
            .args([rows.to_string(), cols.to_string(), tile.to_string(), clip.to_string()])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "OpenCV peer failed (pip install opencv-python-headless): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = std::fs::read(&dst).unwrap();

        let view =
            ViewSettings { clahe_tile: tile, clahe_clip: clip, local_contrast: 1.0, ..Default::default() };
        let lut = MaterialLut::for_profile(&ScannerProfile::load("desk-140").unwrap()).unwrap();
        // lines = rows, channels = cols; intensity at the bin centre so bin_of gives the 8-bit value
        let p = Params::new(&view, &lut, cols as u32, rows as u32, 65535, false);
        let mut feat = Array3::<f32>::zeros((rows, cols, 4));
        for (k, &v) in img.iter().enumerate() {
            feat[[k / cols, k % cols, 3]] = (v as f32 + 0.5) / 256.0;
        }
        let luts = cpu::clahe_luts(feat.view(), &p);
        let (mut sum, mut signed, mut worst) = (0.0f64, 0.0f64, 0u8);
        for (k, &v) in img.iter().enumerate() {
            let ours = cpu::clahe_value(luts.view(), &p, (k / cols) as u32, (k % cols) as u32, v as usize);
            let ours = (ours * 255.0).round().clamp(0.0, 255.0) as u8;
            let d = ours.abs_diff(theirs[k]);
            sum += d as f64;
            signed += ours as f64 - theirs[k] as f64;
            worst = worst.max(d);
        }
        let mean = sum / img.len() as f64;
        let bias = signed / img.len() as f64;
        eprintln!("clip {clip}: mean |ours - OpenCV| = {mean:.3} levels, bias {bias:+.3}, worst {worst}");
        // OpenCV rounds twice (8-bit tables, then the interpolated value) and spreads the clipped
        // excess in whole counts, the remainder from the lowest bins up (so its tables run a
        // little high): about one level on average, under one level of bias.
        assert!(mean < 1.5, "clip {clip}: mean difference {mean}");
        assert!(bias.abs() < 1.0, "clip {clip}: bias {bias}");
        assert!(worst <= 6, "clip {clip}: worst difference {worst}");
        // and CLAHE did something: the result is not the input
        let changed = img.iter().zip(&theirs).filter(|(a, b)| a.abs_diff(**b) > 8).count();
        assert!(changed > img.len() / 10);
    }
}

/// `twinspect render` of synthetic bag 3 with `args`, to `out`.
fn render(out: &std::path::Path, args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_twinspect"))
        .env("WGPU_BACKEND", std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into()))
        .args(["render", "--synthetic", "3", "--out"])
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "render {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// SEN (F7) against OpenCV's unsharp mask of the same radius (a 3 x 3 box) and amount, on the
/// screens' own pipeline (the GPU): our edge enhancement is OpenCV's within a few per cent
/// (gain 1.0 would be the same strength), and SEN makes the bag's edges at least 1.5 times as
/// steep as the standard image's, so it visibly does something.
#[test]
fn sen_sharpens_like_opencv_unsharp_mask_and_visibly() {
    use twinspect::domain::view::Preset;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let amount = Preset::Edge.settings().edge;
    let edge_json = p("edge.json");
    std::fs::write(&edge_json, format!(r#"{{"colour": "gray", "edge": {amount}}}"#)).unwrap();
    render(&p("plain.png"), &["--preset", "bw"]);
    render(&p("edge.png"), &["--settings", edge_json.to_str().unwrap()]);
    render(&p("standard.png"), &["--preset", "standard"]);
    render(&p("sen.png"), &["--preset", "edge"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/opencv_sharpen.py");
    let out = Command::new("python3")
        .arg(script)
        .args([p("plain.png"), p("edge.png")])
        .arg(amount.to_string())
        .args([p("standard.png"), p("sen.png")])
        .output()
        .expect("python3");
    assert!(out.status.success(), "OpenCV peer failed: {}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (gain, rms, steep) =
        (r["gain"].as_f64().unwrap(), r["rms"].as_f64().unwrap(), r["steepness"].as_f64().unwrap());
    eprintln!("SEN: gain against OpenCV {gain:.3}, RMS {rms:.2} levels, edges {steep:.2}x as steep");
    assert!((0.95..=1.05).contains(&gain), "gain {gain}");
    assert!(rms < 2.0, "RMS {rms} levels");
    assert!(steep >= 1.5, "SEN edges only {steep:.2}x as steep as the standard image's");
}

/// OS, IS and metal strip colour, never density: every pixel they show in grey has the grey of
/// the black-and-white image (the same density), not a flat pale grey.
#[test]
fn stripping_keeps_the_density_of_what_it_strips() {
    let dir = tempfile::tempdir().unwrap();
    render(&dir.path().join("bw.png"), &["--preset", "bw"]);
    let bw = image::open(dir.path().join("bw.png")).unwrap().to_rgb8();
    for preset in ["os", "is", "metal"] {
        let path = dir.path().join(format!("{preset}.png"));
        render(&path, &["--preset", preset]);
        let img = image::open(&path).unwrap().to_rgb8();
        let (mut grey, mut worst, mut lo, mut hi) = (0usize, 0i32, 255u8, 0u8);
        for (p, q) in img.pixels().zip(bw.pixels()) {
            let is_grey = p[0] == p[1] && p[1] == p[2];
            if is_grey && q[0] < 250 {
                grey += 1;
                worst = worst.max((i32::from(p[0]) - i32::from(q[0])).abs());
                (lo, hi) = (lo.min(p[0]), hi.max(p[0]));
            }
        }
        eprintln!("{preset}: {grey} stripped pixels, grey {lo} to {hi}, worst {worst}");
        assert!(grey > 2_000, "{preset}: {grey} stripped pixels");
        assert!(worst <= 1, "{preset}: a stripped pixel {worst} levels from its density");
        // Not one flat pale grey: the stripped parts keep their range of densities.
        assert!(hi - lo > 80, "{preset}: stripped greys only {lo} to {hi}");
    }
}
