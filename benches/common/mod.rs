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

/// An archive in a new temporary folder holding one bag: `lines` lines of synthetic bags scanned
/// by `profile`, as the workstation archives them. The folder and the bag's id.
#[allow(dead_code)] // not every benchmark opens an archive
pub fn archived_bag(profile: &ScannerProfile, lines: usize) -> (tempfile::TempDir, i64) {
    let (frame, cal) = synthetic_frame(profile, lines);
    let dir = tempfile::tempdir().unwrap();
    let mut store = twinspect::files::store::Store::open(dir.path()).unwrap();
    let start = twinspect::files::store::BagStart {
        scanner_bag: 1,
        item_id: Some("BENCH0001"),
        source: "bench",
        profile: &profile.name,
        channels: profile.channels as usize,
        at_ms: 0,
    };
    let id = store.begin_bag(&start, "bench").unwrap();
    store.finish_bag(id, &frame, &cal, &[], false, 1, "bench").unwrap();
    (dir, id)
}
