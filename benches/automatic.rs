//! The automatic level's (L1) work on one hub bag at a station, piece by piece: the scan's
//! SHA-256 (checked on every fetch), decoding its two-page TIFF whole (what L1 did before) or
//! the high-energy page alone (what it does now), the dense-pixel count, and the whole verdict.
//! The bag: synthetic parcels scanned by the hub profile (`hub-160`), 840 lines (7.7 MB), the size of
//! the bags `benches/hub.rs` sends through the broker.
//!
//! `cargo bench --bench automatic`.

mod common;

use criterion::Criterion;
use twinspect::domain::automatic::{AutomaticConfig, dense_pixels};
use twinspect::domain::profile::ScannerProfile;
use twinspect::files::store::hex_sha256;
use twinspect::hub::station::Automatic;
use twinspect::hub::{BagAnnouncement, CalibrationMsg, FORMAT, ScanRef};

const LINES: usize = 840;

fn main() {
    let profile = ScannerProfile::load("hub-160").unwrap();
    let channels = profile.channels as usize;
    let (frame, cal) = common::synthetic_frame(&profile, LINES);
    let scan = twinspect::files::io::encode_raw_tiff(std::path::Path::new("bench"), &frame, "bench").unwrap();
    let bag = BagAnnouncement {
        format: FORMAT,
        line: "L1".into(),
        node: "n1".into(),
        bag: 1,
        scanner_bag: 1,
        item_id: None,
        profile: profile.name.clone(),
        source: "bench".into(),
        channels,
        lines: LINES,
        missing_rows: Vec::new(),
        truncated: false,
        started_ms: 0,
        ended_ms: 1,
        calibration: CalibrationMsg {
            dark_low: cal.dark_low.clone(),
            dark_high: cal.dark_high.clone(),
            air_low: cal.air_low.clone(),
            air_high: cal.air_high.clone(),
            full_scale: cal.full_scale,
        },
        scan: ScanRef {
            bucket: "twinspect-scans-L1".into(),
            object: "L1/n1/bag-00000001.tiff".into(),
            bytes: scan.len() as u64,
            sha256: hex_sha256(&scan),
            format: "tiff-u16-2page".into(),
        },
        screened_at_desk: Vec::new(),
    };
    let l1 = Automatic {
        aids: AutomaticConfig { agencies: vec!["customs".into()], dense_pixels: 16 },
        release: "release".into(),
    };
    let high = frame.high.as_slice().unwrap();
    let threshold = profile.material.dense_threshold;
    println!(
        "hub bag: {channels} channels x {LINES} lines, scan of {:.1} MB; verdict: {}",
        scan.len() as f64 / 1e6,
        l1.verdict(&bag, &scan).describe()
    );
    let mut c = Criterion::default().configure_from_args().sample_size(30);
    let mut g = c.benchmark_group("automatic");
    g.bench_function("scan sha256", |b| b.iter(|| hex_sha256(&scan)));
    g.bench_function("decode both pages (before)", |b| {
        b.iter(|| twinspect::files::io::raw_tiff_from_bytes(&scan, "bench").unwrap())
    });
    g.bench_function("decode the high page", |b| {
        b.iter(|| twinspect::files::io::raw_tiff_high_page(&scan, "bench").unwrap())
    });
    g.bench_function("dense-pixel count", |b| b.iter(|| dense_pixels(high, channels, &cal, threshold, &[])));
    g.bench_function("verdict (high page, count)", |b| b.iter(|| l1.verdict(&bag, &scan)));
    g.finish();
    c.final_summary();
}
