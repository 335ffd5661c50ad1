//! The CPU twin of every GPU kernel: same inputs, same outputs, written plainly with ndarray so
//! that tests can hold the GPU to it and so that the pipeline runs (slowly) without a GPU.
//!
//! Stages (each mirrors one WGSL entry point in `shaders/`):
//! 1. [`prepare`] (`prepare.wgsl`): raw 16-bit low/high -> features `(A_low, A_high, Zeff, I)`
//!    per pixel, `I = exp(-(A_low + A_high) / 2)` the display intensity.
//! 2. [`clahe_luts`] (`clahe.wgsl`): per-tile clipped histogram equalisation tables of `I`.
//! 3. [`compose`] (`compose.wgsl`): edge enhancement, local contrast, window, gamma, colour,
//!    stripping, negative, dense-object alert -> RGBA8 in display orientation (x = line,
//!    y = channel from the top, so the belt runs horizontally). The GPU's display textures hold
//!    the same image turned (a row per line); `GpuImage::read_rgba` turns it back.
//!
//! Must not import: egui, wgpu.

use ndarray::{Array3, ArrayView2, ArrayView3};

use super::params::{CLAHE_BINS, FLAG_DENSE_ALERT, FLAG_NEGATIVE, Params};
use crate::domain::calib::attenuation;
use crate::domain::material::MaterialLut;
use crate::domain::physics::{MaterialClass, ZEFF_INORGANIC_MAX, ZEFF_ORGANIC_MAX};

/// Stage 1 for lines `p.line0 .. p.line0 + p.nlines` (modulo `p.lines`) into `feat`
/// (`[line, channel, (A_low, A_high, Zeff, I)]`).
pub fn prepare_into(
    low: ArrayView2<u16>,
    high: ArrayView2<u16>,
    calib: &[[f32; 4]],
    lut: &MaterialLut,
    p: &Params,
    feat: &mut Array3<f32>,
) {
    for k in 0..p.nlines {
        let l = ((p.line0 + k) % p.lines) as usize;
        for c in 0..p.channels as usize {
            let t = calib[c];
            let a_lo = attenuation(low[[l, c]], t[0], t[2], p.full_scale as u16);
            let a_hi = attenuation(high[[l, c]], t[1], t[3], p.full_scale as u16);
            feat[[l, c, 0]] = a_lo;
            feat[[l, c, 1]] = a_hi;
            feat[[l, c, 2]] = lut.zeff(a_lo, a_hi);
            feat[[l, c, 3]] = (-(a_lo + a_hi) * 0.5).exp();
        }
    }
}

/// Stage 1 for a whole frame.
pub fn prepare(
    low: ArrayView2<u16>,
    high: ArrayView2<u16>,
    calib: &[[f32; 4]],
    lut: &MaterialLut,
    p: &Params,
) -> Array3<f32> {
    let mut feat = Array3::zeros((p.lines as usize, p.channels as usize, 4));
    prepare_into(low, high, calib, lut, &p.with_region(0, p.lines), &mut feat);
    feat
}

/// Histogram bin of an intensity.
#[inline]
pub fn bin_of(i: f32) -> usize {
    ((i * CLAHE_BINS as f32).max(0.0) as usize).min(CLAHE_BINS as usize - 1)
}

/// Stage 2: CLAHE tables, `[tile_line, tile_channel, bin]` -> equalised intensity.
pub fn clahe_luts(feat: ArrayView3<f32>, p: &Params) -> Array3<f32> {
    let nb = CLAHE_BINS as usize;
    let mut luts = Array3::zeros((p.tiles_l as usize, p.tiles_c as usize, nb));
    let t = p.tile as usize;
    for tl in 0..p.tiles_l as usize {
        for tc in 0..p.tiles_c as usize {
            let mut hist = vec![0u32; nb];
            let l1 = ((tl + 1) * t).min(p.lines as usize);
            let c1 = ((tc + 1) * t).min(p.channels as usize);
            for l in tl * t..l1 {
                for c in tc * t..c1 {
                    hist[bin_of(feat[[l, c, 3]])] += 1;
                }
            }
            let lut = tile_lut(&hist, p.clahe_clip);
            for (b, v) in lut.into_iter().enumerate() {
                luts[[tl, tc, b]] = v;
            }
        }
    }
    luts
}

/// Clip a tile's histogram at `clip` times the mean bin, spread the excess evenly, and return the
/// normalised cumulative table. Summation order matches the shader's serial loop exactly.
pub fn tile_lut(hist: &[u32], clip_factor: f32) -> Vec<f32> {
    let nb = hist.len() as f32;
    let npx: u32 = hist.iter().sum();
    if npx == 0 {
        return vec![0.0; hist.len()];
    }
    let clip = (clip_factor * npx as f32 / nb).max(1.0);
    let mut excess = 0.0f32;
    for &h in hist {
        excess += (h as f32 - clip).max(0.0);
    }
    let add = excess / nb;
    let mut cdf = 0.0f32;
    hist.iter()
        .map(|&h| {
            cdf += (h as f32).min(clip) + add;
            cdf / npx as f32
        })
        .collect()
}

/// GLSL/WGSL `smoothstep`.
#[inline]
pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

type Rgb = [f32; 3];

fn mix3(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

pub const ORGANIC_RGB: Rgb = [1.0, 0.58, 0.1];
pub const INORGANIC_RGB: Rgb = [0.25, 0.78, 0.2];
pub const METAL_RGB: Rgb = [0.2, 0.42, 1.0];
pub const ALERT_RGB: Rgb = [0.95, 0.05, 0.1];

/// Material hue: orange, green, blue, blended over one Zeff unit either side of each boundary.
pub fn material_hue(zeff: f32) -> Rgb {
    let t1 = smoothstep(ZEFF_ORGANIC_MAX - 1.0, ZEFF_ORGANIC_MAX + 1.0, zeff);
    let t2 = smoothstep(ZEFF_INORGANIC_MAX - 1.0, ZEFF_INORGANIC_MAX + 1.0, zeff);
    mix3(mix3(ORGANIC_RGB, INORGANIC_RGB, t1), METAL_RGB, t2)
}

const PSEUDO: [Rgb; 5] =
    [[0.05, 0.0, 0.25], [0.1, 0.25, 0.95], [0.1, 0.8, 0.4], [1.0, 0.85, 0.1], [1.0, 1.0, 1.0]];

pub fn pseudo_colour(v: f32) -> Rgb {
    let x = v.clamp(0.0, 1.0) * 4.0;
    let k = (x.floor() as usize).min(3);
    mix3(PSEUDO[k], PSEUDO[k + 1], x - k as f32)
}

/// Class of a pixel the way the compose stage sees it (1 organic, 2 inorganic, 3 metal, 4 dense).
pub fn class_code(a_high: f32, zeff: f32, dense_threshold: f32) -> u32 {
    if a_high > dense_threshold {
        4
    } else {
        match MaterialClass::from_zeff(zeff) {
            MaterialClass::Organic => 1,
            MaterialClass::Inorganic => 2,
            _ => 3,
        }
    }
}

/// Neighbour line index: wraps in the live ring, clamps in a frame.
#[inline]
pub fn neighbour_line(l: i64, lines: i64, wrap: bool) -> usize {
    if wrap { l.rem_euclid(lines) as usize } else { l.clamp(0, lines - 1) as usize }
}

/// Bilinear tile coordinates for one axis: `(i0, i1, t)`.
#[inline]
pub fn tile_axis(x: u32, tile: u32, tiles: u32, wrap: bool) -> (usize, usize, f32) {
    let f = (x as f32 + 0.5) / tile as f32 - 0.5;
    if wrap {
        let i0 = f.floor();
        let t = f - i0;
        let n = tiles as i64;
        let i0 = i0 as i64;
        (i0.rem_euclid(n) as usize, (i0 + 1).rem_euclid(n) as usize, t)
    } else {
        let f = f.clamp(0.0, (tiles - 1) as f32);
        let i0 = f.floor();
        (i0 as usize, (i0 as usize + 1).min(tiles as usize - 1), f - i0)
    }
}

/// The CLAHE-equalised value of bin `b` at pixel `(l, c)`: bilinear between the tables of the
/// four nearest tile centres.
pub fn clahe_value(luts: ArrayView3<f32>, p: &Params, l: u32, c: u32, b: usize) -> f32 {
    let (l0, l1, tl) = tile_axis(l, p.tile, p.tiles_l, p.wrap());
    let (c0, c1, tc) = tile_axis(c, p.tile, p.tiles_c, false);
    let top = luts[[l0, c0, b]] + (luts[[l0, c1, b]] - luts[[l0, c0, b]]) * tc;
    let bot = luts[[l1, c0, b]] + (luts[[l1, c1, b]] - luts[[l1, c0, b]]) * tc;
    top + (bot - top) * tl
}

/// Stage 3 for one pixel: RGBA in 0..1.
pub fn compose_pixel(feat: ArrayView3<f32>, luts: ArrayView3<f32>, p: &Params, l: u32, c: u32) -> [f32; 4] {
    let wrap = p.wrap();
    let at = |ll: i64, cc: i64| {
        let ll = neighbour_line(ll, p.lines as i64, wrap);
        let cc = cc.clamp(0, p.channels as i64 - 1) as usize;
        (feat[[ll, cc, 2]], feat[[ll, cc, 3]])
    };
    let (li, ci) = (l as i64, c as i64);
    let i0 = feat[[l as usize, c as usize, 3]];
    // 3x3 sums of intensity (for the unsharp detail) and of Zeff (material is shown from the
    // local mean: a single noisy pixel does not flip class).
    let (mut zsum, mut sum) = (0.0f32, 0.0f32);
    for dl in -1..=1 {
        for dc in -1..=1 {
            let (z, i) = at(li + dl, ci + dc);
            zsum += z;
            sum += i;
        }
    }
    let detail = i0 - sum / 9.0;
    let mut i = i0;
    if p.local_contrast > 0.0 {
        let eq = clahe_value(luts, p, l, c, bin_of(i0));
        i += (eq - i) * p.local_contrast;
    }
    i += p.edge * detail;
    let mut v = ((i - p.window_low) / (p.window_high - p.window_low)).clamp(0.0, 1.0);
    v = if v > 0.0 { v.powf(p.gamma) } else { 0.0 };

    let a_hi = feat[[l as usize, c as usize, 1]];
    let zeff = zsum / 9.0;
    let sat = smoothstep(0.02, 0.2, a_hi);
    let mut rgb = match p.colour_mode {
        1 => [v, v, v],
        2 => pseudo_colour(v),
        _ => {
            let h = mix3([1.0; 3], material_hue(zeff), sat);
            [h[0] * v, h[1] * v, h[2] * v]
        }
    };
    // Stripped classes lose their colour, not their density: plain grey.
    if p.only != 0 && class_code(a_hi, zeff, p.dense_threshold) != p.only {
        rgb = [v, v, v];
    }
    if p.flags & FLAG_NEGATIVE != 0 {
        rgb = [1.0 - rgb[0], 1.0 - rgb[1], 1.0 - rgb[2]];
    }
    if p.flags & FLAG_DENSE_ALERT != 0 && a_hi > p.dense_threshold && ((l + c) / 4).is_multiple_of(2) {
        rgb = ALERT_RGB;
    }
    [rgb[0], rgb[1], rgb[2], 1.0]
}

/// Quantise like a `rgba8unorm` store.
#[inline]
pub fn to_unorm8(x: f32) -> u8 {
    (x.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Stage 3 for a whole frame: `[y, x, rgba]` with `x` = line and `y = channels - 1 - channel`.
pub fn compose(feat: ArrayView3<f32>, luts: ArrayView3<f32>, p: &Params) -> Array3<u8> {
    compose_with_missing(feat, luts, p, &[])
}

/// The hatch that shows a lost line (never stitched over).
pub fn missing_hatch(l: u32, c: u32) -> [f32; 4] {
    let v = if ((l + c) / 3).is_multiple_of(2) { 0.8 } else { 0.55 };
    [v, v, v, 1.0]
}

/// Stage 3 with lines marked lost (`missing[l]`; shorter slices mean the rest are present).
pub fn compose_with_missing(
    feat: ArrayView3<f32>,
    luts: ArrayView3<f32>,
    p: &Params,
    missing: &[bool],
) -> Array3<u8> {
    let mut out = Array3::zeros((p.channels as usize, p.lines as usize, 4));
    for l in 0..p.lines {
        let lost = missing.get(l as usize).copied().unwrap_or(false);
        for c in 0..p.channels {
            let px = if lost { missing_hatch(l, c) } else { compose_pixel(feat, luts, p, l, c) };
            let y = (p.channels - 1 - c) as usize;
            for k in 0..4 {
                out[[y, l as usize, k]] = to_unorm8(px[k]);
            }
        }
    }
    out
}

/// The whole chain on the CPU: raw frame to display RGBA (`missing[l]`: line `l` was lost and
/// is shown hatched; an empty slice means none was).
pub fn render(
    low: ArrayView2<u16>,
    high: ArrayView2<u16>,
    calib: &[[f32; 4]],
    lut: &MaterialLut,
    p: &Params,
    missing: &[bool],
) -> Array3<u8> {
    let feat = prepare(low, high, calib, lut, p);
    let luts = clahe_luts(feat.view(), p);
    compose_with_missing(feat.view(), luts.view(), p, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_lut_is_monotone_and_ends_at_one() {
        let mut hist = vec![0u32; 256];
        hist[10] = 4000;
        hist[200] = 96;
        for clip in [1.0, 3.0, 64.0] {
            let lut = tile_lut(&hist, clip);
            assert!(lut.windows(2).all(|w| w[1] >= w[0]));
            assert!((lut[255] - 1.0).abs() < 1e-4, "{}", lut[255]);
        }
        // a strong clip limits the jump at the dominant bin (that is what "limited" means)
        let hard = tile_lut(&hist, 1.0);
        let soft = tile_lut(&hist, 64.0);
        assert!(hard[10] - hard[9] < soft[10] - soft[9]);
        assert_eq!(tile_lut(&[0; 256], 3.0), vec![0.0; 256]);
    }

    #[test]
    fn hues_follow_the_display_convention() {
        assert_eq!(material_hue(6.0), ORGANIC_RGB);
        assert_eq!(material_hue(14.0), INORGANIC_RGB);
        assert_eq!(material_hue(26.0), METAL_RGB);
        assert_eq!(pseudo_colour(1.0), [1.0, 1.0, 1.0]);
    }

    #[test]
    fn tile_axis_wraps_and_clamps() {
        assert_eq!(tile_axis(0, 64, 4, false), (0, 1, 0.0)); // t = 0: tile 0 alone
        assert_eq!(tile_axis(255, 64, 4, false), (3, 3, 0.0));
        let (a, b, t) = tile_axis(0, 64, 4, true);
        assert_eq!((a, b), (3, 0));
        assert!((t - (1.0 - 31.5 / 64.0)).abs() < 1e-6);
    }
}
