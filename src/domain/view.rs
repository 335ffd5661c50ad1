//! What an operator's image functions are set to: [`ViewSettings`] (one per station) and the
//! console presets ([`Preset`]) that set them.
//!
//! Owns: the meaning of every display parameter (documented on its field). The pipeline (GPU and
//! its CPU twin) turns these into pixels; nothing here knows how.
//!
//! Must not import: egui, wgpu, tokio.

use serde::{Deserialize, Serialize};

use super::physics::MaterialClass;

/// How pixels are coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColourMode {
    /// Standard colour: orange organic, green inorganic, blue metal; darker is denser.
    #[default]
    Material,
    /// Black and white (grey levels of density only).
    Gray,
    /// Pseudo-colour: density mapped through a colour scale, material ignored.
    Pseudo,
}

/// Variable density (VDE): a narrow density window swept through the range over time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VdeSweep {
    /// Seconds for one sweep from dense to thin.
    pub period_secs: f32,
    /// Width of the window (fraction of the intensity range).
    pub width: f32,
    /// Where the sweep is now: 0 at the dense end, 1 at the thin end, 1 to 2 on the way back
    /// (a triangle wave); advanced by the UI each frame.
    pub phase: f32,
}

/// All image-function parameters of one station. Intensity below means
/// `exp(-(A_low + A_high) / 2)`: 1 is air, 0 is opaque.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewSettings {
    pub colour: ColourMode,
    /// Show only this class in colour; every other class fades to pale grey (OS/IS/metal only).
    pub only: Option<MaterialClass>,
    /// Invert the final image.
    pub negative: bool,
    /// Intensity mapped to black.
    pub window_low: f32,
    /// Intensity mapped to white.
    pub window_high: f32,
    /// Exponent applied after the window (below 1 brightens dark areas).
    pub gamma: f32,
    /// Edge enhancement: unsharp-mask gain on the 3x3 detail (0 = off).
    pub edge: f32,
    /// Local contrast (CLAHE) blend, 0 = off, 1 = full.
    pub local_contrast: f32,
    /// CLAHE clip limit as a multiple of the mean bin count.
    pub clahe_clip: f32,
    /// CLAHE tile edge in pixels (16 to 256, a power of two).
    pub clahe_tile: u32,
    /// Flag pixels the beam did not penetrate (red stripes).
    pub dense_alert: bool,
    /// Variable density sweep; overrides the window while active.
    pub vde: Option<VdeSweep>,
}

impl Default for ViewSettings {
    fn default() -> Self {
        ViewSettings {
            colour: ColourMode::Material,
            only: None,
            negative: false,
            window_low: 0.0,
            window_high: 1.0,
            gamma: 1.0,
            edge: 0.0,
            local_contrast: 0.0,
            clahe_clip: 3.0,
            clahe_tile: 64,
            dense_alert: true,
            vde: None,
        }
    }
}

impl ViewSettings {
    /// The window in force (VDE replaces the static window while it runs).
    pub fn effective_window(&self) -> (f32, f32) {
        match self.vde {
            Some(v) => {
                let w = v.width.clamp(0.02, 1.0);
                let folded = if v.phase > 1.0 { 2.0 - v.phase } else { v.phase };
                let c = folded.clamp(0.0, 1.0) * (1.0 - w) + w / 2.0;
                (c - w / 2.0, c + w / 2.0)
            }
            None => (self.window_low, self.window_high),
        }
    }

    /// Advance a running VDE sweep by `dt_secs` (back and forth).
    pub fn advance_vde(&mut self, dt_secs: f32) {
        if let Some(v) = &mut self.vde {
            v.phase = (v.phase + dt_secs / v.period_secs.max(0.1)).rem_euclid(2.0);
        }
    }

    /// Clamp every parameter to its legal range (settings may come from a file or a user).
    pub fn sanitized(&self) -> Self {
        let mut s = self.clone();
        let fin = |v: f32, d: f32| if v.is_finite() { v } else { d };
        s.window_low = fin(s.window_low, 0.0).clamp(0.0, 0.99);
        s.window_high = fin(s.window_high, 1.0).clamp(s.window_low + 0.01, 1.0);
        s.gamma = fin(s.gamma, 1.0).clamp(0.1, 5.0);
        s.edge = fin(s.edge, 0.0).clamp(0.0, 8.0);
        s.local_contrast = fin(s.local_contrast, 0.0).clamp(0.0, 1.0);
        s.clahe_clip = fin(s.clahe_clip, 3.0).clamp(1.0, 64.0);
        s.clahe_tile = s.clahe_tile.clamp(16, 256).next_power_of_two().min(256);
        if let Some(v) = &mut s.vde {
            v.width = fin(v.width, 0.25).clamp(0.02, 1.0);
            v.phase = fin(v.phase, 0.5).clamp(0.0, 2.0);
            v.period_secs = fin(v.period_secs, 4.0).clamp(0.1, 600.0);
        }
        s
    }
}

/// Console image functions, each one key away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The plain standard colour image (always one key away).
    Standard,
    /// High penetration: brightens dense areas.
    Hp,
    /// Low penetration: stretches thin items.
    Lp,
    /// Organic only (organic stripping).
    Os,
    /// Inorganic only.
    Is,
    /// Metal only.
    Metal,
    /// Super enhancement: edges and local contrast.
    Edge,
    /// Local contrast (CLAHE) only.
    Local,
    Negative,
    /// Black and white.
    Bw,
    Pseudo,
    /// Variable density sweep.
    Vde,
}

impl Preset {
    pub const ALL: [Preset; 12] = [
        Preset::Standard,
        Preset::Hp,
        Preset::Lp,
        Preset::Os,
        Preset::Is,
        Preset::Metal,
        Preset::Edge,
        Preset::Local,
        Preset::Negative,
        Preset::Bw,
        Preset::Pseudo,
        Preset::Vde,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Standard => "standard",
            Preset::Hp => "hp",
            Preset::Lp => "lp",
            Preset::Os => "os",
            Preset::Is => "is",
            Preset::Metal => "metal",
            Preset::Edge => "edge",
            Preset::Local => "local",
            Preset::Negative => "negative",
            Preset::Bw => "bw",
            Preset::Pseudo => "pseudo",
            Preset::Vde => "vde",
        }
    }

    /// The settings this preset gives, starting from the standard image.
    pub fn settings(self) -> ViewSettings {
        let mut s = ViewSettings::default();
        match self {
            Preset::Standard => {}
            Preset::Hp => {
                s.window_high = 0.25;
                s.gamma = 0.7;
            }
            Preset::Lp => {
                s.window_low = 0.45;
                s.gamma = 1.2;
            }
            Preset::Os => s.only = Some(MaterialClass::Organic),
            Preset::Is => s.only = Some(MaterialClass::Inorganic),
            Preset::Metal => s.only = Some(MaterialClass::Metal),
            Preset::Edge => {
                s.edge = 2.5;
                s.local_contrast = 0.6;
            }
            Preset::Local => s.local_contrast = 1.0,
            Preset::Negative => s.negative = true,
            Preset::Bw => s.colour = ColourMode::Gray,
            Preset::Pseudo => s.colour = ColourMode::Pseudo,
            Preset::Vde => s.vde = Some(VdeSweep { period_secs: 4.0, width: 0.3, phase: 0.5 }),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_differ_from_standard_and_roundtrip_as_json() {
        let std = Preset::Standard.settings();
        for p in Preset::ALL.into_iter().skip(1) {
            assert_ne!(p.settings(), std, "{p:?}");
            let json = serde_json::to_string(&p.settings()).unwrap();
            assert_eq!(serde_json::from_str::<ViewSettings>(&json).unwrap(), p.settings());
        }
        assert!(serde_json::from_str::<ViewSettings>(r#"{"gamma": 2.0, "bogus": 1}"#).is_err());
    }

    #[test]
    fn vde_sweeps_back_and_forth_inside_the_range() {
        let mut s = Preset::Vde.settings();
        let mut lows = Vec::new();
        for _ in 0..100 {
            s.advance_vde(0.1);
            let (lo, hi) = s.effective_window();
            assert!(lo >= 0.0 && hi <= 1.0 && hi > lo);
            lows.push(lo);
        }
        let (min, max) = lows.iter().fold((1f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(min < 0.05 && max > 0.65, "{min} {max}");
    }

    #[test]
    fn sanitized_clamps_hostile_values() {
        let mut s =
            ViewSettings { gamma: f32::NAN, window_low: 2.0, clahe_tile: 0, edge: 1e9, ..Default::default() };
        s = s.sanitized();
        assert_eq!(s.gamma, 1.0);
        assert!(s.window_low < s.window_high && s.window_high <= 1.0);
        assert_eq!(s.clahe_tile, 16);
        assert_eq!(s.edge, 8.0);
    }
}
