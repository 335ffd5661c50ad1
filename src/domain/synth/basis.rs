//! Fast transmissions for the synthetic scanner: every material as a sum of two basis materials
//! (polyethylene and iron, as TIP decomposes), and a table of the forward model over the two.
//!
//! Summing each pixel's parts into two numbers and reading the table is what lets a whole bag
//! (millions of pixels, dozens of overlapping parts) render in tens of milliseconds; the exact
//! model takes one exponential per energy bin per pixel. The two-basis sum is exact for the basis
//! materials and within [`TOLERANCE`] in attenuation for every material it is used for; a
//! material it cannot represent (an absorption edge inside the spectrum: tin, lead) is marked
//! `exact`, and pixels holding any of it go through the full model.
//!
//! Must not import: egui, wgpu, tokio.

use super::super::physics::FastModel;

/// Largest relative error in attenuation (either energy) that the two-basis sum may make for a
/// material over 0.25-16 g/cm^2 before the material is rendered exactly instead. Organics come
/// within 0.5 %; aluminium, glass and calcite within 1.5 % at 0.25 g/cm^2 (an attenuation of
/// 0.1, where that is a quarter of the quantum noise of one pixel) and 0.7 % from 1 g/cm^2 up.
pub const TOLERANCE: f64 = 0.02;

const PE_MIN: f32 = -5.0;
const PE_MAX: f32 = 200.0;
const FE_MIN: f32 = -3.0;
const FE_MAX: f32 = 40.0;

/// One axis of the table: nodes evenly spaced in `t = sign(a) log2(1 + |a| / scale)`, so zero
/// is a node, steps near zero are a small fraction of a g/cm^2 (where the soft end of the
/// spectrum is used up and attenuation bends most) and grow in proportion to the areal density
/// where the beam has hardened. The logarithm is the float's own exponent and mantissa read as a
/// piecewise-linear log2 (exactly invertible, and no transcendental function per pixel).
#[derive(Clone, Copy)]
struct Axis {
    scale: f32,
    step: f32,
    zero: usize,
    n: usize,
}

/// Piecewise-linear log2 of `x >= 1`: exponent plus mantissa.
fn log2ish(x: f32) -> f32 {
    let b = x.to_bits();
    ((b >> 23) as i32 - 127) as f32 + (b & 0x7f_ffff) as f32 * (1.0 / 8_388_608.0)
}

/// Inverse of [`log2ish`].
fn exp2ish(t: f32) -> f32 {
    let e = t.floor();
    (1.0 + (t - e)) * 2f32.powi(e as i32)
}

impl Axis {
    fn new(min: f32, max: f32, scale: f32, step: f32) -> Axis {
        let zero = (log2ish(1.0 - min / scale) / step) as usize + 1;
        let n = zero + (log2ish(1.0 + max / scale) / step) as usize + 2;
        Axis { scale, step, zero, n }
    }

    /// Coordinate (in steps) of `a` g/cm^2, clamped to the table.
    fn coord(&self, a: f32) -> f32 {
        let t = log2ish(1.0 + a.abs() / self.scale).copysign(a);
        (t / self.step + self.zero as f32).clamp(0.0, (self.n - 1) as f32 - 1e-3)
    }

    fn value(&self, i: usize) -> f32 {
        let t = (i as f32 - self.zero as f32) * self.step;
        (self.scale * (exp2ish(t.abs()) - 1.0)).copysign(t)
    }
}

fn pe_axis() -> Axis {
    Axis::new(PE_MIN, PE_MAX, 0.05, 0.055)
}

fn fe_axis() -> Axis {
    Axis::new(FE_MIN, FE_MAX, 0.004, 0.065)
}

/// The forward model tabulated over (polyethylene, iron) areal densities, and each material's
/// equivalent in the two.
pub struct BasisTable {
    /// Per material of the [`FastModel`]: g/cm^2 of polyethylene and of iron per g/cm^2 of it.
    pub coeff: Vec<(f32, f32)>,
    /// Per material: rendered through the full model (its basis sum is off by more than the
    /// tolerance).
    pub exact: Vec<bool>,
    /// Per material: the largest relative error of the basis sum found.
    pub worst: Vec<f64>,
    n_fe: usize,
    pe_axis: Axis,
    fe_axis: Axis,
    /// Attenuation `-ln T` (low, high) at each grid point, `[i_pe * n_fe + i_fe]`.
    att: Vec<(f32, f32)>,
}

impl BasisTable {
    /// Build the table through `fast`, which must hold `polyethylene` and `iron`.
    pub fn new(fast: &FastModel) -> BasisTable {
        let pe = fast.material_index("polyethylene").expect("polyethylene is an object material");
        let fe = fast.material_index("iron").expect("iron is an object material");
        let n_m = fast.materials.len();
        let mut scratch = vec![0.0f32; fast.bins()];
        let mut areal = vec![0.0f32; n_m];
        let mut exact_att = |areal: &[f32]| -> (f32, f32) {
            let (l, h) = fast.transmission(areal, &mut scratch);
            (-l.max(f32::MIN_POSITIVE).ln(), -h.max(f32::MIN_POSITIVE).ln())
        };
        let (pe_axis, fe_axis) = (pe_axis(), fe_axis());
        let (n_pe, n_fe) = (pe_axis.n, fe_axis.n);
        let mut att = Vec::with_capacity(n_pe * n_fe);
        for i in 0..n_pe {
            for j in 0..n_fe {
                areal.fill(0.0);
                areal[pe] = pe_axis.value(i);
                areal[fe] = fe_axis.value(j);
                att.push(exact_att(&areal));
            }
        }
        let mut table = BasisTable {
            coeff: Vec::new(),
            exact: Vec::new(),
            worst: Vec::new(),
            n_fe,
            pe_axis,
            fe_axis,
            att,
        };
        // Each material's basis equivalent: the amounts of the two bases that attenuate both
        // energies as 2 g/cm^2 of it does (and as 8, averaged: beam hardening differs a little
        // between a material and its equivalent), per g/cm^2.
        for m in 0..n_m {
            let mut sum = (0.0f64, 0.0f64);
            for g in [2.0f32, 8.0] {
                areal.fill(0.0);
                areal[m] = g;
                let target = exact_att(&areal);
                let (p, f) = table.decompose(target);
                sum.0 += (p / g) as f64 / 2.0;
                sum.1 += (f / g) as f64 / 2.0;
            }
            let (a, b) = match m {
                _ if m == pe => (1.0, 0.0),
                _ if m == fe => (0.0, 1.0),
                _ => (sum.0 as f32, sum.1 as f32),
            };
            table.coeff.push((a, b));
            let mut worst = 0.0f64;
            for g in [0.25f32, 1.0, 4.0, 16.0] {
                areal.fill(0.0);
                areal[m] = g;
                let (el, eh) = exact_att(&areal);
                if eh > 9.0 {
                    continue; // beyond what a detector measures
                }
                let (tl, th) = table.att(a * g, b * g);
                worst = worst.max(((tl - el) / el).abs() as f64).max(((th - eh) / eh).abs() as f64);
            }
            table.worst.push(worst);
            table.exact.push(worst > TOLERANCE);
        }
        table
    }

    /// The polyethylene and iron (g/cm^2) that attenuate as `(a_low, a_high)` (Newton's method
    /// on the table; a point outside its range ends at the nearest).
    pub fn decompose(&self, (al, ah): (f32, f32)) -> (f32, f32) {
        // Start from iron alone matching the high energy, then Newton on both, each step
        // limited so that it cannot leap out of the region where the table is smooth.
        let (mut p, mut f) = (0.0f32, 0.0f32);
        for _ in 0..40 {
            let h = self.att(0.0, f).1;
            let d = (self.att(0.0, f + 0.01).1 - h) / 0.01;
            f = (f - (h - ah) / d.max(1e-6)).clamp(0.0, FE_MAX);
        }
        for _ in 0..60 {
            let (l, h) = self.att(p, f);
            let (rl, rh) = (l - al, h - ah);
            if rl.abs() < 1e-7 && rh.abs() < 1e-7 {
                break;
            }
            let (dp, df) = (0.01 + p.abs() * 0.01, 0.002 + f.abs() * 0.01);
            let (lp, hp) = self.att(p + dp, f);
            let (lf, hf) = self.att(p, f + df);
            let (j11, j12, j21, j22) = ((lp - l) / dp, (lf - l) / df, (hp - h) / dp, (hf - h) / df);
            let det = j11 * j22 - j12 * j21;
            if det.abs() < 1e-12 {
                break;
            }
            let step_p = (j22 * rl - j12 * rh) / det;
            let step_f = (-j21 * rl + j11 * rh) / det;
            let (lim_p, lim_f) = (0.5 + 0.3 * p.abs(), 0.05 + 0.3 * f.abs());
            p = (p - step_p.clamp(-lim_p, lim_p)).clamp(PE_MIN, PE_MAX);
            f = (f - step_f.clamp(-lim_f, lim_f)).clamp(FE_MIN, FE_MAX);
        }
        (p, f)
    }

    /// Transmissions `(T_low, T_high)` behind `pe` g/cm^2 of polyethylene and `fe` of iron.
    pub fn transmission(&self, pe: f32, fe: f32) -> (f32, f32) {
        let (l, h) = self.att(pe, fe);
        (exp_neg(l), exp_neg(h))
    }

    /// Attenuation `(-ln T_low, -ln T_high)` behind `pe` g/cm^2 of polyethylene and `fe` of iron
    /// (bilinear in the table; clamped to its range).
    pub fn att(&self, pe: f32, fe: f32) -> (f32, f32) {
        let (x, y) = (self.pe_axis.coord(pe), self.fe_axis.coord(fe));
        let (i, j) = (x as usize, y as usize);
        let (fx, fy) = (x - i as f32, y - j as f32);
        let k = i * self.n_fe + j;
        let (a, b, c, d) =
            (self.att[k], self.att[k + 1], self.att[k + self.n_fe], self.att[k + self.n_fe + 1]);
        let lerp = |a: f32, b: f32, c: f32, d: f32| {
            (a * (1.0 - fy) + b * fy) * (1.0 - fx) + (c * (1.0 - fy) + d * fy) * fx
        };
        (lerp(a.0, b.0, c.0, d.0), lerp(a.1, b.1, c.1, d.1))
    }
}

/// `exp(-a)` to a part in a million (the library's call is a tenth of the renderer's time):
/// `2^x` with `x = -a log2(e)`, its nearest integer into the float's exponent, the rest by
/// the exponential series.
fn exp_neg(a: f32) -> f32 {
    let x = -a * std::f32::consts::LOG2_E;
    if x < -126.0 {
        return 0.0;
    }
    if x > 126.0 {
        return f32::MAX;
    }
    // Nearest integer, so the fraction is within +-1/2 where the series converges fastest.
    let i = (x + if x < 0.0 { -0.5 } else { 0.5 }) as i32;
    let f = (x - i as f32) * std::f32::consts::LN_2;
    let p = 1.0
        + f * (1.0 + f * (0.5 + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0))))));
    p * f32::from_bits(((i + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fast_exponential_is_the_librarys_within_a_part_in_a_million() {
        for k in -2000..20000 {
            let a = k as f32 * 0.001;
            let (ours, std) = (super::exp_neg(a), (-a).exp());
            assert!((ours / std - 1.0).abs() < 2e-6, "exp(-{a}): {ours} vs {std}");
        }
        assert_eq!(super::exp_neg(200.0), 0.0);
    }

    use super::*;
    use crate::domain::physics::{Detector, ForwardModel, PhysicsTables};

    #[test]
    fn the_basis_sum_holds_every_material_it_is_used_for_and_names_those_it_cannot() {
        let names: Vec<&str> = PhysicsTables::builtin().object_materials().map(|m| m.name.as_str()).collect();
        for kvp in [140, 160] {
            let model = ForwardModel::new(kvp, &Detector::reference()).unwrap();
            let fast = model.fast(2.0, &names).unwrap();
            let t = BasisTable::new(&fast);
            let exact: Vec<&str> = names.iter().zip(&t.exact).filter(|(_, e)| **e).map(|(n, _)| *n).collect();
            eprintln!("{kvp} kVp: rendered exactly: {exact:?}");
            let worst: Vec<String> = names.iter().zip(&t.worst).map(|(n, w)| format!("{n} {w:.4}")).collect();
            eprintln!("{kvp} kVp: worst relative error of the basis sum: {}", worst.join(", "));
            // Lead's K-edge (88 keV) lies inside the spectrum: no two-basis sum can follow it.
            assert!(exact.contains(&"lead") && exact.contains(&"tin"), "{exact:?}");
            for must in
                ["polyethylene", "water", "cellulose", "meat", "aluminium", "iron", "glass", "calcite"]
            {
                assert!(!exact.contains(&must), "{must} should go through the table");
            }
            // Against the reference model itself (not the binned one), mixtures included.
            let pe = names.iter().position(|n| *n == "polyethylene").unwrap();
            let fe = names.iter().position(|n| *n == "iron").unwrap();
            assert_eq!(t.coeff[pe], (1.0, 0.0));
            assert_eq!(t.coeff[fe], (0.0, 1.0));
            for (m, name) in names.iter().enumerate() {
                if t.exact[m] {
                    continue;
                }
                for g in [0.5, 2.0, 8.0] {
                    let (rl, rh) = model.material(name, g).unwrap();
                    if rh > 9.0 {
                        continue;
                    }
                    let (a, b) = t.coeff[m];
                    let (tl, th) = t.att(a * g as f32, b * g as f32);
                    let e = ((tl as f64 / rl - 1.0).abs()).max((th as f64 / rh - 1.0).abs());
                    assert!(e < TOLERANCE, "{name} {g} g/cm2 at {kvp} kVp: ({tl}, {th}) vs ({rl}, {rh})");
                }
            }
            // A stack of water and aluminium, as the layers sum.
            let (rl, rh) = model.stack(&[("water", 10.0), ("aluminium", 2.0)]).unwrap();
            let w = names.iter().position(|n| *n == "water").unwrap();
            let al = names.iter().position(|n| *n == "aluminium").unwrap();
            let (pe_sum, fe_sum) =
                (t.coeff[w].0 * 10.0 + t.coeff[al].0 * 2.0, t.coeff[w].1 * 10.0 + t.coeff[al].1 * 2.0);
            let (tl, th) = t.att(pe_sum, fe_sum);
            assert!((tl as f64 / rl - 1.0).abs() < 0.01 && (th as f64 / rh - 1.0).abs() < 0.01);
        }
    }
}
