//! The serial driver against the emulator over real pseudo-terminals: a clean link, a link with
//! injected noise, corruption and loss, a mid-stream disconnect (the terminal disappears and a new
//! one takes its place behind the same symlink, as a re-plugged USB adapter does), and host
//! commands answered by the scanner.

use std::time::{Duration, Instant};

use twinspect::assemble::Assembler;
use twinspect::domain::profile::ScannerProfile;
use twinspect::emulator::{EmulatorOptions, Impairments, SerialTarget, serve_serial};
use twinspect::source::serial::{SerialOptions, spawn};
use twinspect::source::{Belt, ScannerCommand, SourceEvent, SourceStats};

fn profile() -> ScannerProfile {
    ScannerProfile::load("desk-140").unwrap()
}

/// Drain `src` into an assembler until `done` or the deadline; returns the events' kinds seen.
struct Run {
    assembler: Assembler,
    shown_missing: usize,
    bags_started: Vec<(u64, Option<String>)>,
    bags_ended: Vec<u64>,
    links: Vec<(bool, String)>,
    statuses: Vec<twinspect::source::ScannerStatus>,
}

fn drive(
    src: &twinspect::source::RunningSource,
    secs: f64,
    mut done: impl FnMut(&Run) -> bool,
    mut each: impl FnMut(&Run),
) -> Run {
    let p = profile();
    let mut run = Run {
        assembler: Assembler::new(p.channels as usize, p.full_scale()),
        shown_missing: 0,
        bags_started: Vec::new(),
        bags_ended: Vec::new(),
        links: Vec::new(),
        statuses: Vec::new(),
    };
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until && !done(&run) {
        let mut evs = Vec::new();
        if let Ok(e) = src.events.recv_timeout(Duration::from_millis(100)) {
            evs.push(e);
            evs.extend(src.events.try_iter().take(4096));
        }
        for e in &evs {
            match e {
                SourceEvent::BagStart { bag, item_id } => run.bags_started.push((*bag, item_id.clone())),
                SourceEvent::Link { up, detail } => run.links.push((*up, detail.clone())),
                SourceEvent::BagEnd { bag } => run.bags_ended.push(*bag),
                SourceEvent::Status(s) => run.statuses.push(*s),
                _ => {}
            }
        }
        let b = run.assembler.feed(evs);
        run.shown_missing += b.missing.iter().filter(|m| **m).count();
        each(&run);
    }
    run
}

#[test]
fn a_clean_link_delivers_every_line_bags_with_tags_and_status() {
    let emu = serve_serial(
        &profile(),
        EmulatorOptions { speed: 2.0, gap_mm: 60.0, ..Default::default() },
        SerialTarget::Pty { link: None },
    )
    .unwrap();
    let src = spawn(SerialOptions::new(emu.path()));
    let run = drive(&src, 30.0, |r| r.bags_started.len() >= 2 && !r.statuses.is_empty(), |_| {});
    let s = &run.assembler.stats;
    assert!(run.assembler.calibration.is_some(), "calibrated from the scanner's dark/air cycle");
    assert!(run.bags_started.len() >= 2, "bags: {:?}", run.bags_started);
    assert_eq!(run.bags_started[0], (0, Some("TS0000010000".into())), "the baggage tag arrives with the bag");
    assert_eq!(s.lines_missing, 0, "a clean link loses nothing");
    assert!(s.lines_shown > 500, "{}", s.lines_shown);
    assert_eq!(SourceStats::get(&src.stats.crc_errors), 0);
    assert_eq!(SourceStats::get(&src.stats.frames_lost), 0);
    assert_eq!(SourceStats::get(&src.stats.bytes_skipped), 0);
    let st = run.statuses[0];
    assert!(st.tube_on && st.belt_running && (st.kv - 140.0).abs() < 0.01, "{st:?}");
    assert!(run.links.first().is_some_and(|(up, _)| *up));
}

#[test]
fn noise_corruption_and_loss_are_counted_and_lost_lines_stay_marked() {
    let impair = Impairments { loss: 0.01, corrupt: 0.01, noise: 0.02, seed: 5, ..Default::default() };
    let emu = serve_serial(
        &profile(),
        EmulatorOptions { speed: 2.0, gap_mm: 60.0, impair, ..Default::default() },
        SerialTarget::Pty { link: None },
    )
    .unwrap();
    let src = spawn(SerialOptions::new(emu.path()));
    let run = drive(
        &src,
        40.0,
        |r| r.assembler.stats.lines_shown > 1500 && r.assembler.stats.lines_missing > 10,
        |_| {},
    );
    let s = &run.assembler.stats;
    assert!(run.assembler.calibration.is_some());
    let crc = SourceStats::get(&src.stats.crc_errors);
    let skipped = SourceStats::get(&src.stats.bytes_skipped);
    let lost = SourceStats::get(&src.stats.frames_lost);
    assert!(crc > 0 && skipped > 0 && lost > 0, "crc {crc} skipped {skipped} lost {lost}");
    assert!(s.lines_missing > 10, "{}", s.lines_missing);
    // Every missing line after calibration is shown in place as missing, never stitched over.
    assert!(run.shown_missing as u64 <= s.lines_missing);
    assert!(run.shown_missing > 0);
    let e = &emu.stats;
    let dropped = e.frames_dropped.load(std::sync::atomic::Ordering::Relaxed);
    let corrupted = e.frames_corrupted.load(std::sync::atomic::Ordering::Relaxed);
    assert!(lost <= dropped + corrupted + 1, "the receiver never counts more than was injected");
}

#[test]
fn a_pulled_cable_is_reported_reconnected_and_the_gap_is_marked() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("scanner");
    let impair = Impairments {
        disconnect_every: Some(Duration::from_secs(4)),
        disconnect_for: Duration::from_millis(700),
        seed: 1,
        ..Default::default()
    };
    let emu = serve_serial(
        &profile(),
        EmulatorOptions { speed: 1.0, gap_mm: 60.0, impair, ..Default::default() },
        SerialTarget::Pty { link: Some(link.clone()) },
    )
    .unwrap();
    let mut o = SerialOptions::new(link.display().to_string());
    o.reconnect = Duration::from_millis(100);
    let src = spawn(o);
    let run = drive(
        &src,
        40.0,
        |r| SourceStats::get(&src.stats.reconnects) >= 1 && r.assembler.stats.lines_shown > 2000,
        |_| {},
    );
    assert!(SourceStats::get(&src.stats.reconnects) >= 1, "links: {:?}", run.links);
    let downs: Vec<_> = run.links.iter().filter(|(up, _)| !up).collect();
    assert!(!downs.is_empty(), "the operator is told: {:?}", run.links);
    assert!(run.assembler.stats.faults.iter().any(|f| f.starts_with("link down")));
    // 0.7 s at 300 lines/s lost while the cable was out: a marked gap of about 210 lines.
    let missing = run.assembler.stats.lines_missing;
    assert!((100..2000).contains(&missing), "missing {missing}");
    assert!(run.shown_missing > 0);
    drop(src);
    drop(emu);
    assert!(!link.exists(), "the emulator removes its symlink");
}

#[test]
fn host_commands_stop_and_start_the_belt_and_are_acknowledged() {
    let emu = serve_serial(
        &profile(),
        EmulatorOptions { speed: 1.0, gap_mm: 60.0, ..Default::default() },
        SerialTarget::Pty { link: None },
    )
    .unwrap();
    let src = spawn(SerialOptions::new(emu.path()));
    let mut sent_stop = false;
    let run = drive(
        &src,
        20.0,
        |r| r.statuses.iter().any(|s| !s.belt_running),
        |r| {
            if !sent_stop && r.assembler.calibration.is_some() {
                sent_stop = src.command(ScannerCommand::Belt(Belt::Stop));
            }
        },
    );
    assert!(sent_stop);
    assert!(run.statuses.iter().any(|s| !s.belt_running), "status after the stop command");
    assert!(emu.stats.commands.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    // With the belt stopped no lines come.
    let before = run.assembler.stats.lines_in;
    let more = drive(&src, 1.0, |_| false, |_| {});
    assert!(
        more.assembler.stats.lines_in <= 2,
        "{} lines after stop (had {before})",
        more.assembler.stats.lines_in
    );
    assert!(src.command(ScannerCommand::Belt(Belt::Forward)));
    let more = drive(&src, 10.0, |r| r.assembler.stats.lines_in > 50, |_| {});
    assert!(more.assembler.stats.lines_in > 50, "the belt runs again");
    assert!(more.statuses.last().is_some_and(|s| s.belt() == Belt::Forward && s.tube_on));
}

/// Reversing takes the bag under the beam back out: its scan ends there (cut short, the tube
/// off, no lines while reversing), and when the belt runs forward the same bag (its tag) is
/// scanned again, whole, as a new bag: what the scanner sends, never stitched.
#[test]
fn a_reversed_bag_ends_cut_short_and_is_scanned_again_whole_under_a_new_number() {
    let emu = serve_serial(
        &profile(),
        EmulatorOptions { speed: 2.0, gap_mm: 40.0, ..Default::default() },
        SerialTarget::Pty { link: None },
    )
    .unwrap();
    let src = spawn(SerialOptions::new(emu.path()));
    // Into the first bag: 100 of its lines, then reverse.
    let mut lines_in_bag = 0usize;
    let mut in_bag = false;
    let until = Instant::now() + Duration::from_secs(30);
    let mut first_tag = None;
    while lines_in_bag < 100 {
        assert!(Instant::now() < until, "no bag came");
        let Ok(e) = src.events.recv_timeout(Duration::from_millis(200)) else { continue };
        match e {
            SourceEvent::BagStart { item_id, .. } => (in_bag, first_tag) = (true, item_id),
            SourceEvent::Line(_) if in_bag => lines_in_bag += 1,
            _ => {}
        }
    }
    assert!(src.command(ScannerCommand::Belt(Belt::Reverse)));
    let run = drive(&src, 10.0, |r| r.statuses.iter().any(|s| s.belt() == Belt::Reverse), |_| {});
    assert!(run.statuses.iter().any(|s| s.belt() == Belt::Reverse && !s.tube_on), "{:?}", run.statuses);
    assert_eq!(run.bags_ended, vec![0], "the bag under the beam ends at the reverse, cut short");
    // Still reversing: nothing more through the beam.
    let still = drive(&src, 1.0, |_| false, |_| {});
    assert!(still.assembler.stats.lines_in <= 2, "{} lines while reversing", still.assembler.stats.lines_in);
    assert!(src.command(ScannerCommand::Belt(Belt::Forward)));
    // Forward: the cut bag ended (its end was sent at the reverse, or comes now), the same tag
    // comes again under the next number, and it is scanned whole.
    let mut events = Vec::new();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < until, "the bag did not come again whole");
        let Ok(e) = src.events.recv_timeout(Duration::from_millis(200)) else { continue };
        let end = matches!(e, SourceEvent::BagEnd { bag: 1 });
        events.push(e);
        if end {
            break;
        }
    }
    let starts: Vec<(u64, Option<String>)> = events
        .iter()
        .filter_map(|e| {
            if let SourceEvent::BagStart { bag, item_id } = e { Some((*bag, item_id.clone())) } else { None }
        })
        .collect();
    assert_eq!(starts, vec![(1, first_tag.clone())], "the same bag again, as bag 1");
    let from = events.iter().position(|e| matches!(e, SourceEvent::BagStart { .. })).unwrap();
    let again = events[from..].iter().filter(|e| matches!(e, SourceEvent::Line(_))).count();
    // The whole bag: as many lines as the script makes of it when nothing interrupts.
    let mut script = twinspect::emulator::Script::new(&profile(), 1, 40.0).unwrap();
    let whole = {
        let (mut n, mut counting) = (0, false);
        loop {
            match script.next_frame() {
                twinspect::source::serial::codec::Frame::BagStart { .. } => counting = true,
                twinspect::source::serial::codec::Frame::BagEnd { .. } => break n,
                twinspect::source::serial::codec::Frame::Line { .. } if counting => n += 1,
                _ => {}
            }
        }
    };
    assert_eq!(again, whole, "scanned again whole");
    assert!(whole > 100);
}

/// An encoder written from `hardware/serial-protocol.md` alone, in Python with zlib's CRC-32
/// (`fuzz/make_seeds.py`, which also seeds the fuzzer): our decoder reads every frame it makes,
/// with no error, and our encoder makes the same bytes.
#[test]
fn frames_from_an_independent_encoder_of_the_spec_decode_exactly() {
    use twinspect::source::serial::codec::{Decoder, Frame, Status, WireLineKind, encode};
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/make_seeds.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(dir.path().join("each-1")).unwrap();
    let stream = &bytes[1..]; // the first byte is the fuzz target's chunk size
    let mut d = Decoder::new();
    let mut got = Vec::new();
    d.push(stream, |r| got.push(r));
    let want = vec![
        Frame::Heartbeat { uptime_ms: 1000 },
        Frame::Line { line: 7, kind: WireLineKind::Air, low: vec![1, 2, 65535], high: vec![4, 0, 6] },
        Frame::BagStart { bag: 3, tag: "EMS123".into() },
        Frame::BagEnd { bag: 3 },
        Frame::Status(Status {
            state: 3,
            kv_x10: 1400,
            ma_x100: 100,
            temp_c_x10: 315,
            belt_mm_s: 200,
            line_rate_hz: 300,
        }),
        Frame::Fault { code: 9, text: "interlock".into() },
        Frame::Command { command: 5 },
        Frame::Ack { frame: 6, command: 5, result: 0 },
    ];
    assert_eq!(got.iter().map(|r| r.frame.clone()).collect::<Vec<_>>(), want);
    assert_eq!(d.stats.bytes_skipped + d.stats.crc_errors + d.stats.header_errors + d.stats.malformed, 0);
    let mut ours = Vec::new();
    for (i, f) in want.iter().enumerate() {
        encode(i as u32, f, &mut ours).unwrap();
    }
    assert_eq!(ours, stream, "byte for byte");
}
