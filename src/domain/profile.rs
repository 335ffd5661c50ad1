//! Scanner profiles: the hardware description of one scanner model (`hardware/scanners/*.toml`).
//!
//! Owns: [`ScannerProfile`] and its validation. The built-in profiles are embedded at compile time
//! so the program runs from any directory; `--profile` also accepts a path to a TOML file.
//!
//! Must not import: egui, wgpu, tokio.

use serde::{Deserialize, Serialize};

use super::physics::{Detector, MaterialClass, PhysicsTables};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {0:?} not found (built in: {1}); give a name or a path to a .toml file")]
    NotFound(String, String),
    #[error("reading profile {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("profile {path}: {source}")]
    Toml { path: String, source: toml::de::Error },
    #[error("profile {name}: {message}")]
    Invalid { name: String, message: String },
}

/// Everything Twinspect needs to know about a scanner model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerProfile {
    pub name: String,
    pub description: String,
    /// Tube voltage; must have a spectrum in the physics tables.
    pub kvp: u32,
    /// Detector channels across the belt (one detector line).
    pub channels: u32,
    pub pixel_pitch_mm: f64,
    /// Detector lines per second.
    pub line_rate_hz: f64,
    pub belt_speed_m_s: f64,
    /// ADC bits per sample (12 to 16); full scale is `2^bits - 1`.
    pub bit_depth: u32,
    /// Mean dark offset in ADC counts.
    pub dark_level: f64,
    /// Dark (read) noise, ADC counts rms.
    pub dark_noise: f64,
    /// Relative rms spread of channel gains (0.05 = 5 %).
    pub gain_spread: f64,
    /// Mean air signal above dark, ADC counts, low and high layer.
    pub air_signal_low: f64,
    pub air_signal_high: f64,
    /// Detected X-ray quanta per pixel in air (sets Poisson noise), low and high layer.
    pub air_quanta_low: f64,
    pub air_quanta_high: f64,
    pub detector: Detector,
    pub material: MaterialConfig,
}

/// Material discrimination settings of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialConfig {
    /// Reference materials whose step wedges calibrate the (A_high, R) -> Zeff table.
    pub calibration: Vec<String>,
    /// Step-wedge areal densities (g/cm^2) used for each calibration material.
    pub wedge_steps_g_cm2: Vec<f64>,
    /// A_high above which a pixel is "dense" (beam did not penetrate): dense-object alert.
    pub dense_threshold: f32,
}

const BUILTIN: &[(&str, &str)] = &[
    ("desk-140", include_str!("../../hardware/scanners/desk-140.toml")),
    ("hub-160", include_str!("../../hardware/scanners/hub-160.toml")),
];

/// Name of the default profile (the passenger-baggage desk scanner).
pub const DEFAULT_PROFILE: &str = "desk-140";

impl ScannerProfile {
    /// Names of the built-in profiles.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// A built-in profile by name only, never a file (for a name that came from elsewhere: a
    /// hub bag's announcement).
    pub fn builtin(name: &str) -> Option<Self> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Self::from_toml(text, name).ok()
    }

    /// A built-in profile by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Self, ProfileError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::from_toml(text, name_or_path);
        }
        let p = std::path::Path::new(name_or_path);
        if p.extension().is_some_and(|e| e == "toml") || p.exists() {
            let text = std::fs::read_to_string(p)
                .map_err(|source| ProfileError::Io { path: name_or_path.into(), source })?;
            return Self::from_toml(&text, name_or_path);
        }
        Err(ProfileError::NotFound(name_or_path.into(), Self::builtin_names().join(", ")))
    }

    pub fn from_toml(text: &str, path: &str) -> Result<Self, ProfileError> {
        let p: ScannerProfile =
            toml::from_str(text).map_err(|source| ProfileError::Toml { path: path.into(), source })?;
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), ProfileError> {
        let bad = |m: String| Err(ProfileError::Invalid { name: self.name.clone(), message: m });
        let t = PhysicsTables::builtin();
        if t.spectrum(self.kvp).is_err() {
            return bad(format!("no tube spectrum for {} kVp", self.kvp));
        }
        if !(1..=16384).contains(&self.channels) {
            return bad(format!("channels {} outside 1..=16384", self.channels));
        }
        if !(8..=16).contains(&self.bit_depth) {
            return bad(format!("bit_depth {} outside 8..=16", self.bit_depth));
        }
        let full = self.full_scale() as f64;
        if !(self.dark_level >= 0.0 && self.dark_level + self.air_signal_low.max(self.air_signal_high) < full)
        {
            return bad("dark_level + air signal must stay below full scale".into());
        }
        for (what, v) in [
            ("pixel_pitch_mm", self.pixel_pitch_mm),
            ("line_rate_hz", self.line_rate_hz),
            ("belt_speed_m_s", self.belt_speed_m_s),
            ("air_signal_low", self.air_signal_low),
            ("air_signal_high", self.air_signal_high),
            ("air_quanta_low", self.air_quanta_low),
            ("air_quanta_high", self.air_quanta_high),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{what} must be positive, is {v}"));
            }
        }
        if !(0.0..0.5).contains(&self.gain_spread) || !(0.0..1000.0).contains(&self.dark_noise) {
            return bad("gain_spread must be in [0, 0.5) and dark_noise in [0, 1000)".into());
        }
        for layer in [&self.detector.low, &self.detector.filter, &self.detector.high] {
            if t.mu(&layer.material).is_err() {
                return bad(format!("detector material {:?} not in the tables", layer.material));
            }
        }
        if self.material.calibration.len() < 2 {
            return bad("material.calibration needs at least two materials".into());
        }
        for m in &self.material.calibration {
            match t.material(m) {
                Some(info) if info.class.is_some() && info.zeff.is_some() => {}
                _ => {
                    return bad(format!("calibration material {m:?} has no Zeff in the tables"));
                }
            }
        }
        if self.material.wedge_steps_g_cm2.is_empty()
            || self.material.wedge_steps_g_cm2.iter().any(|s| !(*s > 0.0 && *s < 1000.0))
        {
            return bad("material.wedge_steps_g_cm2 must be positive".into());
        }
        if !(self.material.dense_threshold > 0.5 && self.material.dense_threshold < 20.0) {
            return bad("material.dense_threshold must be in (0.5, 20)".into());
        }
        Ok(())
    }

    /// Largest ADC code.
    pub fn full_scale(&self) -> u16 {
        ((1u32 << self.bit_depth) - 1) as u16
    }

    /// Belt travel per line in mm (pixel size along the belt).
    pub fn line_pitch_mm(&self) -> f64 {
        self.belt_speed_m_s * 1000.0 / self.line_rate_hz
    }

    /// Zeff boundaries used for classes, for documentation and UI legends.
    pub fn class_of_zeff(zeff: f32) -> MaterialClass {
        MaterialClass::from_zeff(zeff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_load_and_validate() {
        let desk = ScannerProfile::load("desk-140").unwrap();
        assert_eq!(desk.kvp, 140);
        assert!((1400..=1700).contains(&desk.channels));
        assert_eq!(desk.detector, Detector::reference());
        let hub = ScannerProfile::load("hub-160").unwrap();
        assert_eq!(hub.kvp, 160);
        assert!((2200..=2400).contains(&hub.channels));
        assert_eq!(hub.detector, Detector::reference());
        // square-ish pixels: belt travel per line close to the channel pitch
        for p in [&desk, &hub] {
            let r = p.line_pitch_mm() / p.pixel_pitch_mm;
            assert!((0.8..1.25).contains(&r), "{}: {r}", p.name);
        }
    }

    #[test]
    fn absurd_profiles_are_rejected_with_a_reason() {
        let text = include_str!("../../hardware/scanners/desk-140.toml");
        let bad = text.replace("kvp = 140", "kvp = 120");
        let e = ScannerProfile::from_toml(&bad, "x").unwrap_err().to_string();
        assert!(e.contains("120 kVp"), "{e}");
        let bad = text.replace("channels = 1536", "channels = 0");
        assert!(ScannerProfile::from_toml(&bad, "x").is_err());
        let bad = text.replace("bit_depth = 16", "bit_depth = 40");
        assert!(ScannerProfile::from_toml(&bad, "x").is_err());
        let bad = format!("{text}\nsurprise = 1\n");
        assert!(ScannerProfile::from_toml(&bad, "x").is_err());
        assert!(matches!(ScannerProfile::load("nope"), Err(ProfileError::NotFound(..))));
    }
}
