//! Two screens live: the real workstation (both stations' full UI, the GPU pipeline, the archive)
//! drawn headless on this machine's adapter (lavapipe here) while a scanner sends 2,000 lines/s
//! of 2048 channels, with frames paced at 60 Hz as a display would pace them.
//!
//! Measured per line: from the moment it was handed to the workstation to the end of the first
//! frame in which both screens show it (drawn and rendered to pixels, the GPU finished: the
//! readback makes this an upper bound of what a window's present costs). Per frame: the work
//! (ingest, both screens drawn and rendered), and the line index each screen was drawn with,
//! which must be the same on both in every frame. Criterion times one such frame with 33 new
//! lines (the lines of one 60 Hz frame at 2,000 lines/s).
//!
//! `cargo bench --bench two_screens` (WGPU_BACKEND=vulkan on a machine without a GPU).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use twinspect::desk::{Command, Desk, Done};
use twinspect::domain::inspection::InspectionConfig;
use twinspect::domain::material::MaterialLut;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::scan::RawLine;
use twinspect::domain::synth::{SyntheticScanner, generate_bag};
use twinspect::source::{CALIBRATION_LINES, RunningSource, SourceEvent};
use twinspect::ui::snapshot::Headless;
use twinspect::ui::{Parts, layout::Layout};

const RATE: f64 = 2000.0;
const CHANNELS: u32 = 2048;
const FRAME: Duration = Duration::from_nanos(16_666_667);
/// Each screen as `cargo run --release` places them on a 1920x1000 desktop.
const SCREEN: [f32; 2] = [960.0, 1000.0];

fn profile() -> ScannerProfile {
    let mut p = ScannerProfile::load("desk-140").unwrap();
    p.channels = CHANNELS;
    p.line_rate_hz = RATE;
    p.belt_speed_m_s = p.pixel_pitch_mm * RATE / 1000.0;
    p
}

/// Calibration lines, then a cycle of belt and bags (scan lines) to repeat.
fn lines(p: &ScannerProfile) -> (Vec<RawLine>, Vec<RawLine>) {
    let mut s = SyntheticScanner::new(p, 11).unwrap();
    let (dark, air) = s.calibration_lines(CALIBRATION_LINES);
    let mut cycle = Vec::new();
    for b in 0..3 {
        cycle.extend((0..300).map(|_| s.air_line()));
        let bag = generate_bag(100 + b, p);
        cycle.extend(s.bag_lines(&bag));
    }
    (dark.into_iter().chain(air).collect(), cycle)
}

fn workstation(
    p: &ScannerProfile,
    data: &std::path::Path,
) -> (crossbeam_channel::Sender<SourceEvent>, Headless) {
    let (tx, source) = RunningSource::fed("bench: 2,000 lines/s of 2048 channels", 16384);
    let inspection = InspectionConfig::default();
    let mut desk = Desk::new(inspection.clone(), Desk::demo_operators(), true);
    desk.archive =
        Some(twinspect::desk::archiver::Archiver::open(data, "bench", &p.name, CHANNELS as usize).unwrap());
    let parts = Parts {
        remote: None,
        hub: None,
        no_scanner: false,
        publishing: None,
        profile: p.clone(),
        source,
        lut: MaterialLut::for_profile(p).unwrap(),
        inspection,
        desk,
        layout: Layout::side_by_side(2, 1920.0, 1000.0),
    };
    (tx, Headless::new(parts, SCREEN).expect("a GPU adapter (WGPU_BACKEND=vulkan for lavapipe)"))
}

fn line(l: &RawLine, seq: u64) -> SourceEvent {
    SourceEvent::Line(RawLine { seq, ..l.clone() })
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The live run: lines paced at 2,000/s by a sender thread, frames at 60 Hz.
fn live(seconds: f64) {
    let p = profile();
    let (cal, cycle) = lines(&p);
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut ws) = workstation(&p, dir.path());
    for (i, l) in cal.iter().enumerate() {
        tx.send(line(l, i as u64)).unwrap();
    }
    // Calibrated, and the first frames drawn (pipelines built) before the clock starts.
    for _ in 0..10 {
        ws.frame_rendered().unwrap();
    }
    let total = (seconds * RATE) as usize;
    let base = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(u64::MAX)).collect());
    let (s2, cal_n) = (sent.clone(), cal.len() as u64);
    let sender = std::thread::spawn(move || {
        let start = Instant::now();
        for k in 0..total {
            let due = start + Duration::from_secs_f64(k as f64 / RATE);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let ev = line(&cycle[k % cycle.len()], cal_n + k as u64);
            s2[k].store(base.elapsed().as_nanos() as u64, Ordering::Release);
            tx.send(ev).unwrap();
        }
        tx
    });
    // Both operators decide every bag as it is shown whole: decisions commit during the run,
    // and the frames drawn while one is being written are timed apart.
    for (i, (id, pin)) in [("c001", "1111"), ("q001", "2222")].into_iter().enumerate() {
        let r = ws.ws_mut().command(i, Command::Login { id: id.into(), pin: pin.into() });
        assert!(matches!(r, Ok(Done::LoggedIn(_))), "{r:?}");
    }
    let (mut committing_ms, mut decisions) = (Vec::new(), 0usize);
    let (mut frame_ms, mut latency_ms) = (Vec::new(), Vec::new());
    let (mut differ, mut late, mut shown) = (0usize, 0usize, 0usize);
    let mut frame_starts: Vec<u64> = Vec::new();
    let mut heads: Vec<u64> = Vec::new();
    let mut next = Instant::now();
    while shown < total {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next = next.max(Instant::now()) + FRAME;
        for i in 0..2 {
            let desk = ws.ws().desk();
            let due = desk.focus(i).filter(|&b| {
                desk.shown_whole(i, b)
                    && desk.bag(b).is_some_and(|(_, r)| r.current(&desk.station(i).agency).is_none())
            });
            if due.is_some() && !desk.is_recording(i) {
                let r = ws.ws_mut().command(i, Command::Decide { code: "release".into(), reason: None });
                if matches!(r, Ok(Done::Recording)) {
                    decisions += 1;
                }
            }
        }
        let committing = (0..2).any(|i| ws.ws().desk().is_recording(i));
        let t0 = Instant::now();
        let drawn = ws.frame_rendered().unwrap();
        let t1 = Instant::now();
        let ms = (t1 - t0).as_secs_f64() * 1e3;
        if committing {
            committing_ms.push(ms);
        } else {
            frame_ms.push(ms);
        }
        if drawn.iter().any(|h| *h != drawn[0]) {
            differ += 1;
        }
        let head = (drawn[0].unwrap_or(0) as usize).min(total);
        let (start_ns, end_ns) = ((t0 - base).as_nanos() as u64, (t1 - base).as_nanos() as u64);
        for k in shown..head {
            let s = sent[k].load(Ordering::Acquire);
            assert!(s != u64::MAX, "line {k} on screen before it was sent");
            latency_ms.push((end_ns.saturating_sub(s)) as f64 / 1e6);
            // Sent before an earlier frame began, yet not in that frame: it missed a frame.
            if frame_starts.last().is_some_and(|&prev| s < prev) {
                late += 1;
            }
        }
        shown = shown.max(head);
        frame_starts.push(start_ns);
        heads.push(head as u64);
        if base.elapsed() > Duration::from_secs_f64(seconds * 3.0 + 30.0) {
            panic!("only {shown} of {total} lines shown: the workstation fell behind");
        }
    }
    drop(sender.join().unwrap());
    let dropped = ws.ws().source().stats.lines_dropped.load(Ordering::Relaxed);
    frame_ms.sort_by(f64::total_cmp);
    committing_ms.sort_by(f64::total_cmp);
    latency_ms.sort_by(f64::total_cmp);
    let within = latency_ms.iter().filter(|&&l| l <= FRAME.as_secs_f64() * 1e3).count();
    println!(
        "two screens live, {} lines/s x {CHANNELS} channels, screens {}x{}, {} s, {} frames, adapter: {}",
        RATE,
        SCREEN[0],
        SCREEN[1],
        seconds,
        frame_ms.len() + committing_ms.len(),
        ws.ws().adapter()
    );
    println!(
        "frame work (ingest + both screens drawn and rendered), no decision being written: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&frame_ms, 0.5),
        pct(&frame_ms, 0.99),
        frame_ms.last().unwrap()
    );
    if !committing_ms.is_empty() {
        println!(
            "frames drawn while a decision was being committed ({decisions} decisions, {} frames): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            committing_ms.len(),
            pct(&committing_ms, 0.5),
            pct(&committing_ms, 0.99),
            committing_ms.last().unwrap()
        );
    }
    println!(
        "line to both screens: median {:.2} ms, p99 {:.2} ms, max {:.2} ms; within one 60 Hz frame (16.7 ms): {:.2} %",
        pct(&latency_ms, 0.5),
        pct(&latency_ms, 0.99),
        latency_ms.last().unwrap(),
        100.0 * within as f64 / latency_ms.len() as f64
    );
    println!(
        "lines that missed the next frame: {late} of {}; frames where the screens' line index differed: {differ}; lines dropped: {dropped}",
        latency_ms.len()
    );
    let p99 = pct(&latency_ms, 0.99);
    println!(
        "target (p99 within one 60 Hz frame, screens never differ): {}",
        if p99 <= 16.7 && differ == 0 { "met" } else { "NOT met" }
    );
}

/// Criterion: one frame with the 33 lines of a 60 Hz frame at 2,000 lines/s.
fn frame_cost(c: &mut Criterion) {
    let p = profile();
    let (cal, cycle) = lines(&p);
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut ws) = workstation(&p, dir.path());
    let mut seq = 0u64;
    for l in &cal {
        tx.send(line(l, seq)).unwrap();
        seq += 1;
    }
    ws.frame_rendered().unwrap();
    let mut k = 0usize;
    c.bench_function("two screens: frame with 33 new lines (960x1000 each)", |b| {
        b.iter(|| {
            for _ in 0..33 {
                tx.send(line(&cycle[k % cycle.len()], seq)).unwrap();
                seq += 1;
                k += 1;
            }
            ws.frame_rendered().unwrap()
        })
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args().sample_size(30);
    frame_cost(&mut c);
    live(std::env::var("TWO_SCREENS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20.0));
    c.final_summary();
}
