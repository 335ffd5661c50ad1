//! The parameter block shared by the GPU kernels and their CPU twins, laid out exactly like the
//! WGSL `Params` struct in `shaders/common.wgsl` (size asserted in tests).
//!
//! Must not import: egui.

use bytemuck::{Pod, Zeroable};

use crate::domain::calib::A_MAX;
use crate::domain::material::MaterialLut;
use crate::domain::physics::MaterialClass;
use crate::domain::view::{ColourMode, ViewSettings};

pub const FLAG_NEGATIVE: u32 = 1;
pub const FLAG_DENSE_ALERT: u32 = 2;
/// Lines wrap around (the live ring buffer); otherwise neighbours clamp at the frame edge.
pub const FLAG_WRAP: u32 = 4;

/// Pixels in the histogram of a CLAHE tile.
pub const CLAHE_BINS: u32 = 256;

/// Uniform block of every kernel. `lines` is the buffer's capacity in lines; `line0..line0+nlines`
/// (modulo `lines`) is the region a dispatch works on.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct Params {
    pub channels: u32,
    pub lines: u32,
    pub line0: u32,
    pub nlines: u32,

    pub full_scale: u32,
    pub colour_mode: u32,
    /// 0 none, 1 organic, 2 inorganic, 3 metal.
    pub only: u32,
    pub flags: u32,

    pub window_low: f32,
    pub window_high: f32,
    pub gamma: f32,
    pub edge: f32,

    pub local_contrast: f32,
    pub clahe_clip: f32,
    pub tile: u32,
    pub tiles_c: u32,

    pub tiles_l: u32,
    pub dense_threshold: f32,
    pub lut_a_max: f32,
    pub lut_r_min: f32,

    pub lut_r_max: f32,
    pub lut_n_a: u32,
    pub lut_n_r: u32,
    pub a_max: f32,
}

impl Params {
    /// Parameters for a buffer of `lines x channels` viewed with `view`.
    pub fn new(
        view: &ViewSettings,
        lut: &MaterialLut,
        channels: u32,
        lines: u32,
        full_scale: u16,
        wrap: bool,
    ) -> Self {
        let v = view.sanitized();
        let (wl, wh) = v.effective_window();
        let tile = v.clahe_tile;
        let mut flags = 0;
        if v.negative {
            flags |= FLAG_NEGATIVE;
        }
        if v.dense_alert {
            flags |= FLAG_DENSE_ALERT;
        }
        if wrap {
            flags |= FLAG_WRAP;
        }
        Params {
            channels,
            lines,
            line0: 0,
            nlines: lines,
            full_scale: full_scale as u32,
            colour_mode: match v.colour {
                ColourMode::Material => 0,
                ColourMode::Gray => 1,
                ColourMode::Pseudo => 2,
            },
            only: match v.only {
                None | Some(MaterialClass::Dense) => 0,
                Some(MaterialClass::Organic) => 1,
                Some(MaterialClass::Inorganic) => 2,
                Some(MaterialClass::Metal) => 3,
            },
            flags,
            window_low: wl,
            window_high: wh,
            gamma: v.gamma,
            edge: v.edge,
            local_contrast: v.local_contrast,
            clahe_clip: v.clahe_clip,
            tile,
            tiles_c: channels.div_ceil(tile),
            tiles_l: lines.div_ceil(tile),
            dense_threshold: lut.dense_threshold,
            lut_a_max: lut.a_max,
            lut_r_min: lut.r_min,
            lut_r_max: lut.r_max,
            lut_n_a: lut.n_a,
            lut_n_r: lut.n_r,
            a_max: A_MAX,
        }
    }

    pub fn with_region(mut self, line0: u32, nlines: u32) -> Self {
        self.line0 = line0;
        self.nlines = nlines;
        self
    }

    pub fn wrap(&self) -> bool {
        self.flags & FLAG_WRAP != 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_is_96_bytes_like_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::Params>(), 96);
    }
}
