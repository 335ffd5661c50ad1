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
