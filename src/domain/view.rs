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
    /// Show only this class in colour; every other class in grey, its density kept (OS/IS/metal
    /// only).
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

/// An operator's own brightness, contrast and gamma, on top of the image function in force
/// (kept across functions, reset with Esc).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adjust {
    /// Shifts the window by this share of its width: positive is brighter (-0.5 to 0.5).
    pub brightness: f32,
    /// Narrows the window by this factor: above 1 is more contrast (0.25 to 4).
    pub contrast: f32,
    /// Multiplies the function's gamma: below 1 brightens the dark parts (0.25 to 4).
    pub gamma: f32,
}

impl Default for Adjust {
    fn default() -> Self {
        Adjust { brightness: 0.0, contrast: 1.0, gamma: 1.0 }
    }
}

/// One press of a brightness, contrast or gamma key.
pub const ADJUST_STEP: f32 = 0.05;

impl Adjust {
    pub fn is_neutral(&self) -> bool {
        *self == Adjust::default()
    }

    /// Within the ranges above (values may come from a user or a file).
    pub fn sanitized(self) -> Adjust {
        let fin = |v: f32, d: f32| if v.is_finite() { v } else { d };
        Adjust {
            brightness: fin(self.brightness, 0.0).clamp(-0.5, 0.5),
            contrast: fin(self.contrast, 1.0).clamp(0.25, 4.0),
            gamma: fin(self.gamma, 1.0).clamp(0.25, 4.0),
        }
    }

    /// One key press: brightness by a step, contrast and gamma by a step's factor.
    pub fn brighter(self, up: bool) -> Adjust {
        let d = if up { ADJUST_STEP } else { -ADJUST_STEP };
        Adjust { brightness: self.brightness + d, ..self }.sanitized()
    }

    pub fn more_contrast(self, up: bool) -> Adjust {
        let f = if up { 1.0 + 2.0 * ADJUST_STEP } else { 1.0 / (1.0 + 2.0 * ADJUST_STEP) };
        Adjust { contrast: self.contrast * f, ..self }.sanitized()
    }

    pub fn more_gamma(self, up: bool) -> Adjust {
        let f = if up { 1.0 + 2.0 * ADJUST_STEP } else { 1.0 / (1.0 + 2.0 * ADJUST_STEP) };
        Adjust { gamma: self.gamma * f, ..self }.sanitized()
    }
}

impl ViewSettings {
    /// These settings with an operator's brightness, contrast and gamma: the window narrowed
    /// about its centre and shifted, the gamma multiplied (a VDE sweep keeps its own window).
    pub fn adjusted(&self, a: Adjust) -> ViewSettings {
        let a = a.sanitized();
        let mut s = self.clone();
        let (lo, hi) = (self.window_low, self.window_high);
        let width = hi - lo;
        let centre = (lo + hi) / 2.0 - a.brightness * width;
        let w = width / a.contrast;
        s.window_low = centre - w / 2.0;
        s.window_high = centre + w / 2.0;
        s.gamma = self.gamma * a.gamma;
        s.sanitized()
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
            // An unsharp mask of radius 1 (3 x 3 box) with amount 4, on local contrast: edges
            // 1.6x as steep as the standard image's (tests/peer_opencv.rs), visibly sharper.
            Preset::Edge => {
                s.edge = 4.0;
                s.local_contrast = 0.8;
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
    fn brightness_contrast_and_gamma_move_the_window_and_come_back() {
        let std = Preset::Standard.settings();
        assert_eq!(std.adjusted(Adjust::default()), std);
        let hp = Preset::Hp.settings();
        assert_eq!(hp.adjusted(Adjust::default()), hp);
        // Brighter: the window moves down (more intensities map to white).
        let b = hp.adjusted(Adjust::default().brighter(true));
        assert!(b.window_low <= hp.window_low && b.window_high < hp.window_high, "{b:?}");
        // More contrast: a narrower window about the same centre.
        let c = hp.adjusted(Adjust::default().more_contrast(true));
        assert!(c.window_high - c.window_low < hp.window_high - hp.window_low);
        let centre = |s: &ViewSettings| (s.window_low + s.window_high) / 2.0;
        assert!((centre(&c) - centre(&hp)).abs() < 1e-6);
        let g = hp.adjusted(Adjust::default().more_gamma(false));
        assert!(g.gamma < hp.gamma);
        // Up then down is where it started; the ranges hold however often a key is pressed.
        let a = Adjust::default().more_contrast(true).more_contrast(false).brighter(true).brighter(false);
        assert!((a.contrast - 1.0).abs() < 1e-6 && a.brightness.abs() < 1e-6);
        let mut a = Adjust::default();
        for _ in 0..1000 {
            a = a.brighter(true).more_contrast(true).more_gamma(true);
        }
        assert_eq!(a, Adjust { brightness: 0.5, contrast: 4.0, gamma: 4.0 });
        let s = std.adjusted(a);
        assert!(s.window_low < s.window_high && s.window_high <= 1.0 && s.gamma <= 5.0);
        assert_eq!(Adjust { brightness: f32::NAN, ..a }.sanitized().brightness, 0.0);
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
