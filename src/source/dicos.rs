//! `dicos://PATH` as a source: a DICOS DX pair (a folder holding it, or `FILE,FILE`) played
//! through the live path as if the scanner sent it, so it opens on both screens, is archived,
//! and can be marked and decided like a live bag.
//!
//! The images hold transmission (see `src/files/dicos.rs`); the source sends a calibration cycle of
//! dark lines at 0 and air lines just under the profile's full scale, then the bag's lines
//! scaled to that span, so the workstation's calibration reproduces the images' transmission
//! (to the profile's ADC resolution). Then empty belt, and the link reports the end.
//!
//! Owns: the playing of one pair. Must not import: egui, wgpu.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;

use super::{CALIBRATION_LINES, RunningSource, SourceEvent, SourceStats};
use crate::domain::profile::ScannerProfile;
use crate::domain::scan::{LineKind, RawLine};
use crate::files::dicos::{DicosError, FULL};

/// Empty belt before and after the bag, in lines.
const BELT_LINES: usize = 200;

/// The paths a `dicos://` location names: comma-separated files or folders.
pub fn paths(location: &str) -> Vec<PathBuf> {
    location.split(',').filter(|s| !s.is_empty()).map(PathBuf::from).collect()
}

/// Start playing the pair at the profile's line rate times `speed` (`None`: as fast as the
/// consumer takes it).
pub fn spawn(
    location: &str,
    speed: Option<f64>,
    profile: &ScannerProfile,
) -> Result<RunningSource, DicosError> {
    let imported = crate::files::dicos::import_pair(&paths(location))?;
    let channels = imported.frame.channels();
    if channels != profile.channels as usize {
        return Err(DicosError::Bad(format!(
            "{location}: the images have {channels} channels, profile {} has {} (choose its profile with --profile)",
            profile.name, profile.channels
        )));
    }
    let span = profile.full_scale() as f64 - 1.0;
    let scale = move |p: u16| (p as f64 / FULL as f64 * span).round() as u16;
    let (tx, rx) = bounded(8192);
    let stats = Arc::new(SourceStats::default());
    stats.connected.store(true, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let (st, sp) = (stats.clone(), stop.clone());
    let description = format!(
        "dicos://{location}?speed={} ({}, {} lines)",
        speed.map_or("max".to_string(), |s| s.to_string()),
        imported.ooi_id,
        imported.frame.lines()
    );
    let rate = profile.line_rate_hz;
    let thread = super::spawn_thread("dicos source", &description, move || {
        let t0 = Instant::now();
        let mut seq = 0u64;
        let deliver = |ev: SourceEvent| super::deliver_blocking(&tx, &sp, ev);
        let mut line = |kind: LineKind, low: Vec<u16>, high: Vec<u16>| -> bool {
            if let Some(s) = speed {
                let due = Duration::from_secs_f64(seq as f64 / (rate * s));
                if due > t0.elapsed() + Duration::from_millis(5) {
                    std::thread::sleep(due - t0.elapsed());
                }
            }
            let ok = deliver(SourceEvent::Line(RawLine { seq, kind, low, high }));
            seq += 1;
            st.lines_sent.fetch_add(1, Ordering::Relaxed);
            ok
        };
        let air = span as u16;
        for _ in 0..CALIBRATION_LINES {
            if !line(LineKind::Dark, vec![0; channels], vec![0; channels]) {
                return;
            }
        }
        for kind in [LineKind::Air, LineKind::Scan] {
            for _ in 0..if kind == LineKind::Air { CALIBRATION_LINES } else { BELT_LINES } {
                if !line(kind, vec![air; channels], vec![air; channels]) {
                    return;
                }
            }
        }
        st.bags.fetch_add(1, Ordering::Relaxed);
        if !deliver(SourceEvent::BagStart { bag: 0, item_id: Some(imported.ooi_id.clone()) }) {
            return;
        }
        let f = &imported.frame;
        for l in 0..f.lines() {
            let low = f.low.row(l).iter().map(|&p| scale(p)).collect();
            let high = f.high.row(l).iter().map(|&p| scale(p)).collect();
            if !line(LineKind::Scan, low, high) {
                return;
            }
        }
        if !deliver(SourceEvent::BagEnd { bag: 0 }) {
            return;
        }
        for _ in 0..BELT_LINES {
            if !line(LineKind::Scan, vec![air; channels], vec![air; channels]) {
                return;
            }
        }
        st.finished.store(true, Ordering::Relaxed);
        st.connected.store(false, Ordering::Relaxed);
        let _ = deliver(SourceEvent::Link { up: false, detail: "end of the DICOS images".into() });
    })
    .expect("spawn dicos source thread");
    Ok(RunningSource { events: rx, stats, description, commands: None, stop, thread: Some(thread) })
}
