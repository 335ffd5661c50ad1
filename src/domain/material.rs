//! Material discrimination: the calibrated 2-D lookup `(A_high, R = A_low / A_high) -> Zeff`, and
//! the class of a pixel (organic, inorganic, metal, dense).
//!
//! Owns: [`MaterialLut`], built at start-up from step wedges of calibration materials (the forward
//! model plays the wedge measurement), the exact bilinear lookup that the GPU shader mirrors, and
//! the class rule.
//!
//! Why 2-D: R falls with thickness (beam hardening), so a fixed R threshold misclassifies thick
//! organics as inorganic. At each A_high the calibration curves are ordered by R; a pixel's Zeff is
//! interpolated between the two curves that bracket its R. Heavy elements whose K-edge lies inside
//! the spectrum (tin, lead) have a *lower* R than lighter metals and would break the ordering: a
//! curve that is not above every lighter material's curve at some A_high is left out of that row,
//! so such materials are found by the dense-object alert (they are rarely thin) rather than by
//! their colour, as on real scanners.
//!
//! Must not import: egui, wgpu, tokio.

use super::physics::{ForwardModel, MaterialClass, PhysicsError, PhysicsTables};
use super::profile::ScannerProfile;

/// Calibrated lookup table; `zeff[ia * n_r + ir]` on a regular grid.
#[derive(Clone, Debug)]
pub struct MaterialLut {
    pub n_a: u32,
    pub n_r: u32,
    /// A_high of the last row (rows span `0..=a_max`).
    pub a_max: f32,
    /// R of the first and last column.
    pub r_min: f32,
    pub r_max: f32,
    pub zeff: Vec<f32>,
    /// A_high above which a pixel is dense (not penetrated).
    pub dense_threshold: f32,
    /// Names of the materials it was calibrated on.
    pub calibrated_on: Vec<String>,
}

/// Result of classifying one pixel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Classification {
    pub zeff: f32,
    pub class: MaterialClass,
}

/// Below this A_high, R is too noisy to mean anything; used for the guard in `ratio`.
pub const A_HIGH_EPS: f32 = 1e-4;

/// One calibration curve: R as a function of ln(A_high), sampled at the wedge steps.
struct Curve {
    zeff: f64,
    ln_a: Vec<f64>,
    r: Vec<f64>,
}

impl Curve {
    fn r_at(&self, a_high: f64) -> f64 {
        let x = a_high.max(1e-6).ln();
        let n = self.ln_a.len();
        if x <= self.ln_a[0] {
            return self.r[0];
        }
        if x >= self.ln_a[n - 1] {
            return self.r[n - 1];
        }
        let k = self.ln_a.partition_point(|&v| v <= x).clamp(1, n - 1);
        let t = (x - self.ln_a[k - 1]) / (self.ln_a[k] - self.ln_a[k - 1]);
        self.r[k - 1] + t * (self.r[k] - self.r[k - 1])
    }
}

impl MaterialLut {
    pub const DEFAULT_N_A: u32 = 256;
    pub const DEFAULT_N_R: u32 = 256;
    pub const DEFAULT_A_MAX: f32 = 8.0;
    pub const DEFAULT_R_MIN: f32 = 0.9;
    pub const DEFAULT_R_MAX: f32 = 3.6;

    /// Calibrate from step wedges of `materials` (names in the physics tables) measured through
    /// `model`, one wedge step per entry of `steps_g_cm2`.
    pub fn calibrate(
        model: &ForwardModel,
        materials: &[String],
        steps_g_cm2: &[f64],
        dense_threshold: f32,
    ) -> Result<Self, PhysicsError> {
        let tables = PhysicsTables::builtin();
        let mut curves = Vec::new();
        for name in materials {
            let zeff = tables
                .material(name)
                .and_then(|m| m.zeff)
                .ok_or_else(|| PhysicsError::UnknownMaterial(name.clone()))?;
            let mut pts: Vec<(f64, f64)> = steps_g_cm2
                .iter()
                .map(|&s| model.material(name, s))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|(lo, hi)| *hi > 1e-6 && lo.is_finite() && hi.is_finite())
                .map(|(lo, hi)| (hi.ln(), lo / hi))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            if pts.is_empty() {
                continue;
            }
            curves.push(Curve {
                zeff,
                ln_a: pts.iter().map(|p| p.0).collect(),
                r: pts.iter().map(|p| p.1).collect(),
            });
        }
        curves.sort_by(|a, b| a.zeff.total_cmp(&b.zeff));
        Ok(Self::from_curves(&curves, materials.to_vec(), dense_threshold))
    }

    /// The table a profile's configuration asks for (its calibration materials and wedge steps).
    pub fn for_profile(profile: &ScannerProfile) -> Result<Self, PhysicsError> {
        let model = ForwardModel::new(profile.kvp, &profile.detector)?;
        Self::calibrate(
            &model,
            &profile.material.calibration,
            &profile.material.wedge_steps_g_cm2,
            profile.material.dense_threshold,
        )
    }

    fn from_curves(curves: &[Curve], calibrated_on: Vec<String>, dense_threshold: f32) -> Self {
        let (n_a, n_r) = (Self::DEFAULT_N_A, Self::DEFAULT_N_R);
        let (a_max, r_min, r_max) = (Self::DEFAULT_A_MAX, Self::DEFAULT_R_MIN, Self::DEFAULT_R_MAX);
        let mut zeff = vec![0f32; (n_a * n_r) as usize];
        let mut knots: Vec<(f64, f64)> = Vec::with_capacity(curves.len());
        for ia in 0..n_a {
            // Row A_high; the first row (A=0) takes the thinnest step's ratios.
            let a = (ia as f64 * a_max as f64 / (n_a - 1) as f64).max(1e-3);
            knots.clear();
            // Curves in ascending Zeff; keep those whose R is above every kept lighter one.
            for c in curves {
                let r = c.r_at(a);
                if knots.last().is_none_or(|&(last_r, _)| r > last_r) {
                    knots.push((r, c.zeff));
                }
            }
            for ir in 0..n_r {
                let r = r_min as f64 + ir as f64 * (r_max - r_min) as f64 / (n_r - 1) as f64;
                zeff[(ia * n_r + ir) as usize] = interp_knots(&knots, r) as f32;
            }
        }
        MaterialLut { n_a, n_r, a_max, r_min, r_max, zeff, dense_threshold, calibrated_on }
    }

    /// Zeff at `(A_low, A_high)`: bilinear on the grid, clamped at its edges. The WGSL in
    /// `shaders/prepare.wgsl` does exactly this.
    pub fn zeff(&self, a_low: f32, a_high: f32) -> f32 {
        let (fa, fr) = self.coords(a_low, a_high);
        let (ia0, ir0) = (fa.floor() as u32, fr.floor() as u32);
        let (ia1, ir1) = ((ia0 + 1).min(self.n_a - 1), (ir0 + 1).min(self.n_r - 1));
        let (ta, tr) = (fa - ia0 as f32, fr - ir0 as f32);
        let at = |ia: u32, ir: u32| self.zeff[(ia * self.n_r + ir) as usize];
        let z0 = at(ia0, ir0) + (at(ia0, ir1) - at(ia0, ir0)) * tr;
        let z1 = at(ia1, ir0) + (at(ia1, ir1) - at(ia1, ir0)) * tr;
        z0 + (z1 - z0) * ta
    }

    /// Continuous grid coordinates (row, column) of a pixel.
    pub fn coords(&self, a_low: f32, a_high: f32) -> (f32, f32) {
        let r = ratio(a_low, a_high);
        let fa = (a_high / self.a_max * (self.n_a - 1) as f32).clamp(0.0, (self.n_a - 1) as f32);
        let fr = ((r - self.r_min) / (self.r_max - self.r_min) * (self.n_r - 1) as f32)
            .clamp(0.0, (self.n_r - 1) as f32);
        (fa, fr)
    }

    pub fn classify(&self, a_low: f32, a_high: f32) -> Classification {
        let zeff = self.zeff(a_low, a_high);
        let class =
            if a_high > self.dense_threshold { MaterialClass::Dense } else { MaterialClass::from_zeff(zeff) };
        Classification { zeff, class }
    }
}

/// Low/high attenuation ratio with a guard for air (no NaN, no infinity).
pub fn ratio(a_low: f32, a_high: f32) -> f32 {
    if a_high > A_HIGH_EPS { a_low / a_high } else { 1.0 }
}

/// Piecewise-linear Zeff(R) through knots ascending in R; constant beyond the ends.
fn interp_knots(knots: &[(f64, f64)], r: f64) -> f64 {
    match knots {
        [] => 0.0,
        [only] => only.1,
        _ => {
            if r <= knots[0].0 {
                return knots[0].1;
            }
            let last = knots[knots.len() - 1];
            if r >= last.0 {
                return last.1;
            }
            let k = knots.partition_point(|&(kr, _)| kr <= r).clamp(1, knots.len() - 1);
            let (r0, z0) = knots[k - 1];
            let (r1, z1) = knots[k];
            z0 + (r - r0) / (r1 - r0) * (z1 - z0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::physics::Detector;

    fn lut(materials: &[&str]) -> MaterialLut {
        let model = ForwardModel::new(140, &Detector::reference()).unwrap();
        let names: Vec<String> = materials.iter().map(|s| s.to_string()).collect();
        MaterialLut::calibrate(&model, &names, &[0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0], 5.3).unwrap()
    }

    #[test]
    fn calibration_materials_come_back_as_their_own_zeff() {
        let l = lut(&["polyethylene", "water", "aluminium", "iron", "copper"]);
        let model = ForwardModel::new(140, &Detector::reference()).unwrap();
        for (name, z) in [("water", 7.42), ("aluminium", 13.0), ("iron", 26.0)] {
            for areal in [1.0, 4.0] {
                let (lo, hi) = model.material(name, areal).unwrap();
                let got = l.zeff(lo as f32, hi as f32);
                assert!((got - z).abs() < 0.6, "{name} {areal}: {got} vs {z}");
            }
        }
    }

    #[test]
    fn air_and_garbage_give_finite_results() {
        let l = lut(&["water", "iron"]);
        for (lo, hi) in [(0.0, 0.0), (-1.0, -1.0), (50.0, 0.0), (0.0, 50.0), (1e30, 1e30)] {
            let c = l.classify(lo, hi);
            assert!(c.zeff.is_finite(), "{lo},{hi}");
        }
        assert_eq!(l.classify(9.0, 8.0).class, MaterialClass::Dense);
    }

    #[test]
    fn lut_rows_are_monotone_in_ratio() {
        let l =
            lut(&["polyethylene", "water", "glass", "aluminium", "calcite", "iron", "copper", "tin", "lead"]);
        for ia in 0..l.n_a {
            let row = &l.zeff[(ia * l.n_r) as usize..((ia + 1) * l.n_r) as usize];
            assert!(row.windows(2).all(|w| w[1] >= w[0] - 1e-4), "row {ia} not monotone");
        }
    }
}
