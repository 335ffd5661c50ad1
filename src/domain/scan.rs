//! Raw scan data as the detector delivers it: dual-energy lines of 16-bit samples.
//!
//! Owns: [`RawLine`] (one detector readout) and [`RawFrame`] (lines stacked into an image, row =
//! line, column = channel).
//!
//! Must not import: egui, wgpu, tokio.

use ndarray::Array2;

/// What the scanner was doing when a line was read (a real scanner reports dark and air
/// calibration modes; during scanning it does not know whether the belt is empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// Beam off: dark offset.
    Dark,
    /// Beam on, belt known to be empty: air calibration.
    Air,
    /// Beam on, normal scanning.
    Scan,
}

/// One detector readout: `channels` samples per energy.
#[derive(Clone, Debug, PartialEq)]
pub struct RawLine {
    /// Line sequence number from the scanner (monotonic; gaps mean lost lines).
    pub seq: u64,
    pub kind: LineKind,
    pub low: Vec<u16>,
    pub high: Vec<u16>,
}

/// A block of lines: `low[[line, channel]]`, `high[[line, channel]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RawFrame {
    pub low: Array2<u16>,
    pub high: Array2<u16>,
}

impl RawFrame {
    pub fn zeros(lines: usize, channels: usize) -> Self {
        RawFrame { low: Array2::zeros((lines, channels)), high: Array2::zeros((lines, channels)) }
    }

    pub fn lines(&self) -> usize {
        self.low.nrows()
    }

    pub fn channels(&self) -> usize {
        self.low.ncols()
    }

    /// Stack lines (all of the same width) into a frame.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a RawLine>, channels: usize) -> Self {
        let mut low = Vec::new();
        let mut high = Vec::new();
        let mut n = 0;
        for l in lines {
            assert_eq!(l.low.len(), channels, "line {} has {} channels", l.seq, l.low.len());
            low.extend_from_slice(&l.low);
            high.extend_from_slice(&l.high);
            n += 1;
        }
        RawFrame {
            low: Array2::from_shape_vec((n, channels), low).expect("shape"),
            high: Array2::from_shape_vec((n, channels), high).expect("shape"),
        }
    }
}
