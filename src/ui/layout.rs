//! Where each station's window goes: one monitor side by side by default, or each on its own
//! monitor (position and size per station, optionally fullscreen), from a TOML file.
//!
//! Owns: [`Layout`] and its validation. Reading the file is the command line's job.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowPlacement {
    /// Top-left corner in desktop coordinates (a second monitor starts where the first ends,
    /// e.g. `[1920, 0]`).
    pub position: [f32; 2],
    pub size: [f32; 2],
    #[serde(default)]
    pub fullscreen: bool,
    /// The screen's UI scale (text, buttons, spacing): 2 for a 4K monitor beside an HD one
    /// (0.75 to 3; Ctrl+= and Ctrl+- change it on the screen, Ctrl+0 back to this).
    #[serde(default = "one")]
    pub ui_scale: f32,
}

fn one() -> f32 {
    1.0
}

/// The UI scales a screen may have.
pub const UI_SCALES: std::ops::RangeInclusive<f32> = 0.75..=3.0;

/// One placement per station, in the order of the agencies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// The belt moves the other way on screen: the newest line is drawn at the left edge.
    #[serde(default)]
    pub newest_at_left: bool,
    pub stations: Vec<WindowPlacement>,
}

impl Layout {
    /// Both windows side by side on one monitor of `width x height`.
    pub fn side_by_side(stations: usize, width: f32, height: f32) -> Self {
        let w = (width / stations.max(1) as f32).floor();
        Layout {
            newest_at_left: false,
            stations: (0..stations)
                .map(|i| WindowPlacement {
                    position: [w * i as f32, 0.0],
                    size: [w, height],
                    fullscreen: false,
                    ui_scale: 1.0,
                })
                .collect(),
        }
    }

    pub fn from_toml(text: &str, stations: usize) -> Result<Self, LayoutError> {
        let l: Layout = toml::from_str(text).map_err(|e| LayoutError::Toml(Box::new(e)))?;
        if l.stations.len() != stations {
            return Err(LayoutError::Count { placed: l.stations.len(), stations });
        }
        for (i, s) in l.stations.iter().enumerate() {
            let ok = s.position.iter().chain(&s.size).all(|v| v.is_finite())
                && (200.0..=16384.0).contains(&s.size[0])
                && (200.0..=16384.0).contains(&s.size[1]);
            if !ok {
                return Err(LayoutError::Size { station: i + 1 });
            }
            if !UI_SCALES.contains(&s.ui_scale) {
                return Err(LayoutError::Scale { station: i + 1, scale: s.ui_scale });
            }
        }
        Ok(l)
    }

    pub fn placement(&self, i: usize) -> WindowPlacement {
        self.stations
            .get(i)
            .cloned()
            .unwrap_or_else(|| Layout::side_by_side(i + 1, 1920.0, 1000.0).stations[i].clone())
    }
}

/// Why a layout file cannot place the windows.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Not TOML of a layout (the parser's words name the line).
    #[error(transparent)]
    Toml(Box<toml::de::Error>),
    #[error("the layout places {placed} windows; the workstation has {stations} stations")]
    Count { placed: usize, stations: usize },
    #[error("station {station}: size must be 200 to 16384 points, coordinates finite")]
    Size { station: usize },
    #[error("station {station}: ui_scale {scale} (0.75 to 3)")]
    Scale { station: usize, scale: f32 },
}

impl Default for Layout {
    fn default() -> Self {
        Layout::side_by_side(2, 1920.0, 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_parse_and_bad_ones_are_refused() {
        let two_monitors = "[[stations]]\nposition = [0, 0]\nsize = [1920, 1080]\nfullscreen = true\n\n\
                            [[stations]]\nposition = [1920, 0]\nsize = [1920, 1080]\nfullscreen = true\n";
        let l = Layout::from_toml(two_monitors, 2).unwrap();
        assert_eq!(l.placement(1).position, [1920.0, 0.0]);
        assert!(l.placement(0).fullscreen);
        assert!(matches!(
            Layout::from_toml(two_monitors, 3),
            Err(LayoutError::Count { placed: 2, stations: 3 })
        ));
        assert!(matches!(
            Layout::from_toml("[[stations]]\nposition = [0, 0]\nsize = [5, 5]\n", 1),
            Err(LayoutError::Size { station: 1 })
        ));
        assert!(matches!(Layout::from_toml("stations = 3", 1), Err(LayoutError::Toml(_))));
        assert!(Layout::from_toml("nonsense", 2).is_err());
        let shipped = include_str!("../../hardware/layouts/two-monitors.toml");
        assert!(Layout::from_toml(shipped, 2).unwrap().placement(1).fullscreen);
        let four_k = Layout::from_toml(include_str!("../../hardware/layouts/hd-and-4k.toml"), 2).unwrap();
        assert_eq!((four_k.placement(0).ui_scale, four_k.placement(1).ui_scale), (1.0, 2.0));
        assert!(matches!(
            Layout::from_toml("[[stations]]\nposition = [0, 0]\nsize = [500, 500]\nui_scale = 9\n", 1),
            Err(LayoutError::Scale { station: 1, .. })
        ));
        let d = Layout::default();
        assert_eq!(d.placement(0).position, [0.0, 0.0]);
        assert_eq!(d.placement(1).position, [960.0, 0.0]);
    }
}
