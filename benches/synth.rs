//! Generating a synthetic bag: a 2048-channel x 2000-line hub bag (two bags of the generator end
//! to end, packed as the emulator packs them) rendered to noise-free transmissions through the
//! basis table, on every core, against the full forward model at every pixel (the way the
//! synthetic scanner worked before the table) in the same run; and the raw readout with noise
//! and the detector's blur and afterglow, as one frame and as the lines the emulators stream. Target (issue 22): the bag in under
//! 100 ms, so the emulator keeps up with the hub profile's line rate.
//!
//! `cargo bench --bench synth`

use std::time::Duration;

use criterion::Criterion;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::synth::{Bag, SyntheticScanner, generate_bag};

const CHANNELS: u32 = 2048;
const LINES: usize = 2000;

/// Two generated bags end to end, cut to `LINES` lines.
fn long_bag(profile: &ScannerProfile) -> Bag {
    let mut a = generate_bag(11, profile);
    let b = generate_bag(12, profile);
    let shift = a.length_mm;
    let first = a.objects.len();
    a.objects.extend(b.objects.into_iter().map(|mut o| {
        o.cx += shift;
        o.item += first;
        o
    }));
    a.length_mm = LINES as f64 * profile.line_pitch_mm();
    a
}

fn main() {
    let mut profile = ScannerProfile::load("hub-160").unwrap();
    profile.channels = CHANNELS;
    let bag = long_bag(&profile);
    assert_eq!(bag.lines(&profile), LINES);
    let mut sc = SyntheticScanner::new(&profile, 1).unwrap();
    eprintln!(
        "bag: {} parts, {} lines x {} channels, {} threads",
        bag.objects.len(),
        LINES,
        CHANNELS,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut c =
        Criterion::default().configure_from_args().measurement_time(Duration::from_secs(10)).sample_size(10);
    let mut g = c.benchmark_group("synthetic bag 2048x2000");
    g.bench_function("transmissions, basis table", |b| b.iter(|| sc.transmission_frame(&bag)));
    g.bench_function("transmissions, full model per pixel (before)", |b| {
        b.iter(|| sc.transmission_frame_exact(&bag))
    });
    g.bench_function("raw scan with noise and blur", |b| b.iter(|| sc.scan_bag(&bag)));
    // What the emulators stream: the same lines, not gathered into one frame.
    g.bench_function("raw lines as the emulator streams them", |b| b.iter(|| sc.scan_lines(&bag)));
    g.bench_function("generate (layout only)", |b| b.iter(|| generate_bag(12, &profile)));
    g.bench_function("scanner set-up (model, basis table)", |b| {
        b.iter(|| SyntheticScanner::new(&profile, 1).unwrap())
    });
    g.finish();
    c.final_summary();
}
