//! What an operator measures on the image: under the pointer, the material class, Zeff, both
//! attenuations and how thick the thing would be in the nearest reference material ("about
//! 12 mm steel", "about 40 mm water"); along a ruler, millimetres from the profile's geometry;
//! over a region, the area, mean Zeff, mass thickness and mass of what is in it, with the
//! background (clothes, the suitcase's shell) removed as threat image projection removes it.
//!
//! Zeff comes from the same calibrated lookup as the image's colours and `classify`
//! ([`MaterialLut::classify`]), so the readout, the colours and the CSV agree by construction.
//! Thickness inverts the profile's forward model (spectrum and detector) for the reference
//! material of the pixel's class: water for organic, aluminium for inorganic, iron (steel) for
//! metal and for what the beam did not penetrate (then a lower bound).
//!
//! Owns: [`Meter`], [`Readout`], [`Equivalent`], [`RegionReadout`]. Must not import: egui,
//! wgpu, tokio.

use ndarray::{Array2, ArrayView2};

use super::material::{Classification, MaterialLut};
use super::physics::{ForwardModel, MaterialClass, PhysicsError, PhysicsTables};
use super::profile::ScannerProfile;

/// A reference material's A_high over areal density, for inverting.
#[derive(Clone, Debug)]
struct Reference {
    /// Its name on screen.
    shown: &'static str,
    density_g_cm3: f64,
    /// Ascending areal densities (g/cm^2) and the A_high each gives.
    g_cm2: Vec<f64>,
    a_high: Vec<f64>,
}

impl Reference {
    fn new(model: &ForwardModel, material: &str, shown: &'static str) -> Result<Self, PhysicsError> {
        let density_g_cm3 = PhysicsTables::builtin()
            .material(material)
            .map(|m| m.density_g_cm3)
            .ok_or_else(|| PhysicsError::UnknownMaterial(material.into()))?;
        // 0.001 to 300 g/cm^2, log spaced: beam hardening makes A_high concave in thickness.
        let g_cm2: Vec<f64> = (0..=120).map(|k| 1e-3 * 10f64.powf(k as f64 * 5.5 / 120.0)).collect();
        let a_high =
            g_cm2.iter().map(|&g| model.material(material, g).map(|(_, h)| h)).collect::<Result<_, _>>()?;
        Ok(Reference { shown, density_g_cm3, g_cm2, a_high })
    }

    /// Areal density giving `a_high` (log-linear between the table's points; clamped to it).
    fn g_cm2_for(&self, a_high: f64) -> f64 {
        let n = self.a_high.len();
        if a_high <= self.a_high[0] {
            return self.g_cm2[0] * (a_high.max(0.0) / self.a_high[0]);
        }
        let k = self.a_high.partition_point(|&a| a < a_high).clamp(1, n - 1);
        let (a0, a1) = (self.a_high[k - 1], self.a_high[k]);
        let t = ((a_high - a0) / (a1 - a0)).clamp(0.0, 1.0);
        (self.g_cm2[k - 1].ln() + t * (self.g_cm2[k].ln() - self.g_cm2[k - 1].ln())).exp()
    }
}

/// How thick a pixel's attenuation is in a reference material.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Equivalent {
    /// `water`, `aluminium` or `steel`.
    pub material: &'static str,
    pub g_cm2: f32,
    pub mm: f32,
    /// Not penetrated: at least this much.
    pub at_least: bool,
}

/// Everything known about one pixel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Readout {
    pub a_low: f32,
    pub a_high: f32,
    pub zeff: f32,
    pub class: MaterialClass,
    /// `None` where there is next to nothing in the beam.
    pub equivalent: Option<Equivalent>,
}

/// What a region holds once its background is taken out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegionReadout {
    /// The region's extent along and across the belt (mm).
    pub along_mm: f32,
    pub across_mm: f32,
    /// The object's area: the region's pixels that attenuate above their background (cm^2).
    pub object_cm2: f32,
    /// Zeff of the object's summed attenuations, and its class (never `Dense`: see `dense`).
    pub zeff: f32,
    pub class: MaterialClass,
    /// Mean mass thickness over the object's area in the reference material of its class, and
    /// the mass that makes (g).
    pub equivalent: Option<Equivalent>,
    pub mass_g: f32,
    /// Some of it was not penetrated: thickness and mass are lower bounds.
    pub dense: bool,
    /// The region's edge crosses something not penetrated: the background under it is not
    /// known (draw the region with a margin around the object).
    pub edge_dense: bool,
}

/// Attenuation (A_high) below which nothing is said to be in the beam (98.5 % transmission).
pub const NOTHING_A_HIGH: f32 = 0.015;

/// The measuring tools of one scanner profile.
#[derive(Clone, Debug)]
pub struct Meter {
    /// water, aluminium, iron.
    refs: [Reference; 3],
    /// Millimetres per line along the belt and per channel across it.
    pub line_mm: f64,
    pub channel_mm: f64,
}

impl Meter {
    pub fn new(profile: &ScannerProfile) -> Result<Self, PhysicsError> {
        let model = ForwardModel::new(profile.kvp, &profile.detector)?;
        Ok(Meter {
            refs: [
                Reference::new(&model, "water", "water")?,
                Reference::new(&model, "aluminium", "aluminium")?,
                Reference::new(&model, "iron", "steel")?,
            ],
            line_mm: profile.line_pitch_mm(),
            channel_mm: profile.pixel_pitch_mm,
        })
    }

    fn reference(&self, class: MaterialClass) -> &Reference {
        match class {
            MaterialClass::Organic => &self.refs[0],
            MaterialClass::Inorganic => &self.refs[1],
            MaterialClass::Metal | MaterialClass::Dense => &self.refs[2],
        }
    }

    /// `a_high` as a thickness of the reference material of `class` (a lower bound when dense).
    pub fn equivalent(&self, class: MaterialClass, a_high: f32) -> Option<Equivalent> {
        if !a_high.is_finite() || a_high < NOTHING_A_HIGH {
            return None;
        }
        let r = self.reference(class);
        let g = r.g_cm2_for(f64::from(a_high));
        Some(Equivalent {
            material: r.shown,
            g_cm2: g as f32,
            mm: (g / r.density_g_cm3 * 10.0) as f32,
            at_least: class == MaterialClass::Dense,
        })
    }

    /// The readout of one pixel's attenuations.
    pub fn point(&self, lut: &MaterialLut, a_low: f32, a_high: f32) -> Readout {
        let Classification { zeff, class } = lut.classify(a_low, a_high);
        Readout { a_low, a_high, zeff, class, equivalent: self.equivalent(class, a_high) }
    }

    /// Length of a ruler `lines` along and `channels` across the belt (mm).
    pub fn distance_mm(&self, lines: f64, channels: f64) -> f64 {
        (lines * self.line_mm).hypot(channels * self.channel_mm)
    }

    /// A region's attenuations (`[line, channel]`, at least 3 x 3): its background, interpolated
    /// from its border, taken out; what is left measured. `None` when the region is too small.
    pub fn region(
        &self,
        lut: &MaterialLut,
        a_low: ArrayView2<f32>,
        a_high: ArrayView2<f32>,
    ) -> Option<RegionReadout> {
        let (lines, channels) = a_high.dim();
        if lines < 3 || channels < 3 || a_low.dim() != a_high.dim() {
            return None;
        }
        let clean = |a: ArrayView2<f32>| a.mapv(|v| if v.is_finite() { v.max(0.0) } else { 0.0 });
        let (lo, hi): (Array2<f32>, Array2<f32>) = (clean(a_low), clean(a_high));
        let (blo, bhi) = (super::tip::border_patch(&lo), super::tip::border_patch(&hi));
        // What is above the background: the residual, 3 x 3 smoothed, above the larger of
        // NOTHING_A_HIGH and four times the smoothed noise (the residual's spread on the border,
        // which is background by definition).
        let residual = &hi - &bhi;
        let edge_dense = hi.indexed_iter().any(|((i, j), &v)| {
            (i == 0 || j == 0 || i == lines - 1 || j == channels - 1) && v > lut.dense_threshold
        });
        let border: Vec<f32> = residual
            .indexed_iter()
            .filter(|((i, j), _)| *i == 0 || *j == 0 || *i == lines - 1 || *j == channels - 1)
            .map(|(_, &v)| v)
            .collect();
        let mean = border.iter().sum::<f32>() / border.len() as f32;
        let sigma =
            (border.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / border.len() as f32).sqrt();
        let threshold = NOTHING_A_HIGH.max(4.0 * sigma / 3.0);
        let smooth = Array2::from_shape_fn((lines, channels), |(i, j)| {
            let (i0, i1, j0, j1) =
                (i.saturating_sub(1), (i + 2).min(lines), j.saturating_sub(1), (j + 2).min(channels));
            let w = residual.slice(ndarray::s![i0..i1, j0..j1]);
            w.sum() / w.len() as f32
        });
        let (mut n, mut sum_lo, mut sum_hi, mut dense) = (0usize, 0f64, 0f64, false);
        for ((((&l, &h), &bl), &bh), &sm) in lo.iter().zip(&hi).zip(&blo).zip(&bhi).zip(&smooth) {
            let (ol, oh) = ((l - bl).max(0.0), (h - bh).max(0.0));
            // Smoothed, so that noise does not count; itself too, so that the smoothing's
            // halo around the object does not.
            if sm >= threshold && h - bh >= threshold {
                n += 1;
                sum_lo += f64::from(ol);
                sum_hi += f64::from(oh);
                dense |= h > lut.dense_threshold;
            }
        }
        let pixel_cm2 = self.line_mm * self.channel_mm / 100.0;
        let (along_mm, across_mm) =
            ((lines as f64 * self.line_mm) as f32, (channels as f64 * self.channel_mm) as f32);
        if n == 0 {
            let class = MaterialClass::Organic;
            return Some(RegionReadout {
                along_mm,
                across_mm,
                object_cm2: 0.0,
                zeff: 0.0,
                class,
                equivalent: None,
                mass_g: 0.0,
                dense: false,
                edge_dense,
            });
        }
        let (mean_lo, mean_hi) = ((sum_lo / n as f64) as f32, (sum_hi / n as f64) as f32);
        let zeff = lut.zeff(mean_lo, mean_hi);
        // The class of what was measured; a part not penetrated makes the figures lower bounds.
        let class = MaterialClass::from_zeff(zeff);
        let object_cm2 = (n as f64 * pixel_cm2) as f32;
        let mut equivalent = self.equivalent(class, mean_hi);
        if let Some(e) = equivalent.as_mut() {
            e.at_least = dense;
        }
        let mass_g = equivalent.map_or(0.0, |e| e.g_cm2 * object_cm2);
        Some(RegionReadout {
            along_mm,
            across_mm,
            object_cm2,
            zeff,
            class,
            equivalent,
            mass_g,
            dense,
            edge_dense,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (ScannerProfile, MaterialLut, Meter, ForwardModel) {
        let p = ScannerProfile::load("desk-140").unwrap();
        let lut = MaterialLut::for_profile(&p).unwrap();
        let meter = Meter::new(&p).unwrap();
        let model = ForwardModel::new(p.kvp, &p.detector).unwrap();
        (p, lut, meter, model)
    }

    #[test]
    fn thickness_comes_back_in_the_reference_material() {
        let (_, lut, meter, model) = setup();
        // 40 mm of water, 12 mm of steel, 20 mm of aluminium.
        for (material, density, mm, shown) in [
            ("water", 1.0, 40.0, "water"),
            ("iron", 7.87, 12.0, "steel"),
            ("aluminium", 2.7, 20.0, "aluminium"),
        ] {
            let (lo, hi) = model.material(material, density * mm / 10.0).unwrap();
            let r = meter.point(&lut, lo as f32, hi as f32);
            let e = r.equivalent.unwrap();
            assert_eq!(e.material, shown, "{material}: {r:?}");
            assert!((e.mm - mm as f32).abs() < 0.02 * mm as f32, "{material}: {} mm for {mm}", e.mm);
        }
        // Air: nothing to say.
        assert_eq!(meter.point(&lut, 0.001, 0.001).equivalent, None);
    }

    #[test]
    fn a_region_weighs_what_lies_in_it_above_its_background() {
        let (p, lut, meter, model) = setup();
        // A 2 cm water background everywhere; 10 x 10 pixels of 5 mm aluminium on it, in the
        // middle of a 30 x 30 region.
        let (bl, bh) = model.material("water", 2.0).unwrap();
        let (sl, sh) = model.stack(&[("water", 2.0), ("aluminium", 1.35)]).unwrap();
        let inside = |i: usize, j: usize| (10..20).contains(&i) && (10..20).contains(&j);
        let lo = Array2::from_shape_fn((30, 30), |(i, j)| if inside(i, j) { sl as f32 } else { bl as f32 });
        let hi = Array2::from_shape_fn((30, 30), |(i, j)| if inside(i, j) { sh as f32 } else { bh as f32 });
        let r = meter.region(&lut, lo.view(), hi.view()).unwrap();
        let pixel_cm2 = (p.line_pitch_mm() * p.pixel_pitch_mm / 100.0) as f32;
        assert!((r.object_cm2 - 100.0 * pixel_cm2).abs() < 1e-4, "{r:?}");
        assert_eq!(r.class, MaterialClass::Inorganic, "{r:?}");
        assert!((r.zeff - 13.0).abs() < 13.0 * 0.1, "{r:?}");
        let e = r.equivalent.unwrap();
        assert_eq!(e.material, "aluminium");
        // Beam hardening by the water under it: within 10 % of 1.35 g/cm^2.
        assert!((e.g_cm2 - 1.35).abs() < 0.135, "{e:?}");
        assert!((r.mass_g - e.g_cm2 * r.object_cm2).abs() < 1e-4);
        assert!(!r.dense);
        assert!((r.along_mm - 30.0 * p.line_pitch_mm() as f32).abs() < 1e-3);
    }

    #[test]
    fn a_ruler_measures_millimetres_from_the_geometry() {
        let (p, _, meter, _) = setup();
        assert!((meter.distance_mm(100.0, 0.0) - 100.0 * p.line_pitch_mm()).abs() < 1e-9);
        assert!((meter.distance_mm(0.0, 50.0) - 50.0 * p.pixel_pitch_mm).abs() < 1e-9);
        let (a, b) = (3.0 * p.line_pitch_mm(), 4.0 * p.pixel_pitch_mm);
        assert!((meter.distance_mm(3.0, 4.0) - (a * a + b * b).sqrt()).abs() < 1e-9);
    }
}
