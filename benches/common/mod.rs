//! Shared by the benchmarks: realistic frames of synthetic bags.

use ndarray::Array2;
use twinspect::domain::calib::Calibration;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::scan::RawFrame;
use twinspect::domain::synth::{SyntheticScanner, generate_bag};

/// `lines` lines of synthetic bags scanned by `profile` (its channel count), one after the
/// other, and the calibration of that scanner.
pub fn synthetic_frame(profile: &ScannerProfile, lines: usize) -> (RawFrame, Calibration) {
    let channels = profile.channels as usize;
    let mut s = SyntheticScanner::new(profile, 5).unwrap();
    let (dark, air) = s.calibration_lines(32);
    let cal = Calibration::from_lines(
        &dark.iter().collect::<Vec<_>>(),
        &air.iter().collect::<Vec<_>>(),
        profile.full_scale(),
    )
    .unwrap();
    let mut low = Array2::zeros((lines, channels));
    let mut high = Array2::zeros((lines, channels));
    let (mut l, mut seed) = (0, 1);
    while l < lines {
        let f = s.scan_bag(&generate_bag(seed, profile));
        for r in 0..f.lines().min(lines - l) {
            low.row_mut(l + r).assign(&f.low.row(r));
            high.row_mut(l + r).assign(&f.high.row(r));
        }
        l += f.lines();
        seed += 1;
    }
    (RawFrame { low, high }, cal)
}
