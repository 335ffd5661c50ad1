//! Assembly of a line stream into what the display needs: the calibration cycle (dark, then air),
//! air re-calibration on empty-belt lines, sequence-gap accounting, and batches of calibrated-ready
//! raw lines for the live view.
//!
//! Owns: [`Assembler`] and [`AssemblyStats`]. Driven by [`crate::source::SourceEvent`]s; knows
//! nothing of the GPU or the window, so it is tested directly.
//!
//! Must not import: egui, wgpu.

use crate::domain::calib::{AirTracker, CalibError, Calibration};
use crate::domain::scan::{LineKind, RawLine};
use crate::source::SourceEvent;

/// A bag as the stream delimits it: its id, tag and the line range it occupies (absolute line
/// numbers of what was shown, so the display can find it in the ring).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BagSpan {
    pub bag: u64,
    pub item_id: Option<String>,
    pub first_line: u64,
    /// One past the last line; `None` while the bag is still coming in.
    pub end_line: Option<u64>,
}

/// What the assembler has to say after a batch of events.
#[derive(Debug, Default)]
pub struct Batch {
    /// Raw lines ready for display, concatenated (`n * channels` samples each).
    pub low: Vec<u16>,
    pub high: Vec<u16>,
    pub lines: usize,
    /// A new calibration (table form) to upload: `true` after a calibration cycle or an air update.
    pub calibration_changed: bool,
    /// The new calibration re-derives what is already on screen (a full calibration cycle).
    pub recalibrate_visible: bool,
    /// Bags that started or ended in this batch (latest state of each).
    pub bags: Vec<BagSpan>,
    /// Per line of the batch: lost before it reached us (an inserted placeholder, shown hatched).
    pub missing: Vec<bool>,
    /// The calibration in force when each bag that ended in this batch ended: what its scan is
    /// kept with, whatever air updates later lines of the same batch bring (so a bag's record
    /// depends on the line stream only, not on how it was cut into batches).
    pub ended: Vec<(u64, Calibration)>,
    /// Threats projected into bags of this batch (training replays).
    pub projected: Vec<crate::domain::tip::ProjectedThreat>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssemblyStats {
    pub lines_in: u64,
    pub lines_shown: u64,
    /// Lines the sequence numbers say were lost before reaching us.
    pub lines_missing: u64,
    pub calibrations: u64,
    /// Empty-belt lines used to re-take air.
    pub air_updates: u64,
    /// Lines since the last full calibration cycle.
    pub lines_since_calibration: u64,
    /// The most recent source faults (at most [`MAX_FAULTS`]).
    pub faults: Vec<String>,
    pub last_error: Option<String>,
    /// Bags begun: signalled by the scanner or found in the image.
    pub bags: u64,
    /// The scanner's latest own report, if it sends any.
    pub scanner: Option<crate::source::ScannerStatus>,
    /// The belt as the scanner (or the detector's `BeltControl`) last reported it.
    pub belt: Option<crate::source::Belt>,
    /// The link as the source last reported it (`None`: never reported, as for the emulator).
    pub link: Option<(bool, String)>,
}

/// Source faults kept for display.
pub const MAX_FAULTS: usize = 100;

/// Most placeholder lines shown for one gap (a ring's worth; longer gaps are only counted).
pub const MAX_GAP_LINES: u64 = 4096;

pub struct Assembler {
    pub channels: usize,
    pub full_scale: u16,
    dark: Vec<RawLine>,
    air: Vec<RawLine>,
    pub calibration: Option<Calibration>,
    tracker: AirTracker,
    last_seq: Option<u64>,
    /// The kind of the last line taken: lines lost after a scan line were image lines.
    last_kind: Option<LineKind>,
    pub stats: AssemblyStats,
    /// Re-upload the calibration table after this many air updates.
    pub air_upload_every: u64,
    /// The bag coming in now (signalled by the scanner or found in the image).
    open_bag: Option<BagSpan>,
    pub segmenter: Segmenter,
}

/// Finds bags in the image when the scanner does not signal them: a bag starts after
/// `start_lines` consecutive lines with something in the beam and ends after `end_lines` empty
/// ones; `margin` empty lines are kept on each side. Off for good once the scanner signals a bag.
#[derive(Clone, Debug)]
pub struct Segmenter {
    pub start_lines: u32,
    pub end_lines: u32,
    pub margin: u64,
    /// The scanner signals bags itself: segmentation is off.
    pub scanner_signals: bool,
    run_full: u32,
    run_empty: u32,
    next_bag: u64,
    last_end: u64,
}

impl Default for Segmenter {
    fn default() -> Self {
        Segmenter {
            start_lines: 3,
            end_lines: 40,
            margin: 4,
            scanner_signals: false,
            run_full: 0,
            run_empty: 0,
            next_bag: 0,
            last_end: 0,
        }
    }
}

impl Segmenter {
    /// `end_lines` for an empty stretch of `mm` of belt.
    pub fn for_profile(profile: &crate::domain::profile::ScannerProfile, end_mm: f64) -> Self {
        Segmenter {
            end_lines: (end_mm / profile.line_pitch_mm()).ceil().max(2.0) as u32,
            ..Default::default()
        }
    }
}

impl Assembler {
    pub fn new(channels: usize, full_scale: u16) -> Self {
        Assembler {
            channels,
            full_scale,
            dark: Vec::new(),
            air: Vec::new(),
            calibration: None,
            tracker: AirTracker::default(),
            last_seq: None,
            last_kind: None,
            stats: AssemblyStats::default(),
            air_upload_every: 16,
            open_bag: None,
            segmenter: Segmenter::default(),
        }
    }

    fn finish_calibration(&mut self, batch: &mut Batch) {
        if self.dark.is_empty() || self.air.is_empty() {
            return;
        }
        let dark: Vec<&RawLine> = self.dark.iter().collect();
        let air: Vec<&RawLine> = self.air.iter().collect();
        match Calibration::from_lines(&dark, &air, self.full_scale) {
            Ok(c) => {
                self.calibration = Some(c);
                self.stats.calibrations += 1;
                self.stats.lines_since_calibration = 0;
                batch.calibration_changed = true;
                batch.recalibrate_visible = true;
            }
            Err(
                e @ (CalibError::TooManyDead { .. }
                | CalibError::Width { .. }
                | CalibError::TooFewLines { .. }
                | CalibError::BadLevel),
            ) => {
                self.stats.last_error = Some(format!("calibration failed: {e}"));
            }
        }
        self.dark.clear();
        self.air.clear();
    }

    /// Segmentation step for the line just shown (index `lines_shown - 1`).
    fn segment(&mut self, empty: bool, batch: &mut Batch) {
        let idx = self.stats.lines_shown - 1;
        let sg = &mut self.segmenter;
        match self.open_bag.as_mut() {
            None if !empty => {
                sg.run_full += 1;
                if sg.run_full >= sg.start_lines {
                    let first =
                        (idx + 1 - u64::from(sg.start_lines)).saturating_sub(sg.margin).max(sg.last_end);
                    let span = BagSpan { bag: sg.next_bag, item_id: None, first_line: first, end_line: None };
                    sg.next_bag += 1;
                    sg.run_full = 0;
                    sg.run_empty = 0;
                    self.stats.bags += 1;
                    batch.bags.push(span.clone());
                    self.open_bag = Some(span);
                }
            }
            None => sg.run_full = 0,
            Some(_) if !empty => sg.run_empty = 0,
            Some(span) => {
                sg.run_empty += 1;
                if sg.run_empty >= sg.end_lines {
                    let end = idx + 1 - u64::from(sg.end_lines) + sg.margin;
                    span.end_line = Some(end);
                    sg.last_end = end;
                    sg.run_empty = 0;
                    let span = self.open_bag.take().expect("open");
                    self.ended(batch, span);
                }
            }
        }
    }

    /// A bag has ended: its final span, and the calibration in force now.
    fn ended(&self, batch: &mut Batch, span: BagSpan) {
        if let Some(c) = &self.calibration {
            batch.ended.retain(|(b, _)| *b != span.bag);
            batch.ended.push((span.bag, c.clone()));
        }
        batch.bags.retain(|b| b.bag != span.bag);
        batch.bags.push(span);
    }

    fn fault(&mut self, f: String) {
        // Keep the most recent faults only: a flapping source must not grow memory.
        if self.stats.faults.len() >= MAX_FAULTS {
            self.stats.faults.remove(0);
        }
        self.stats.faults.push(f);
    }

    /// Feed events; returns the lines to show and whether the calibration changed.
    pub fn feed(&mut self, events: impl IntoIterator<Item = SourceEvent>) -> Batch {
        let mut batch = Batch::default();
        let events = events.into_iter();
        // Room for the lines the events are likely to carry (at most a ring's worth up front):
        // growing by doubling copied each batch's samples about once more.
        let expected = events.size_hint().0.min(MAX_GAP_LINES as usize);
        batch.low.reserve(expected * self.channels);
        batch.high.reserve(expected * self.channels);
        batch.missing.reserve(expected);
        for ev in events {
            let line = match ev {
                SourceEvent::Line(l) => l,
                SourceEvent::Fault(f) => {
                    self.fault(f);
                    continue;
                }
                SourceEvent::RawBlock(_) => continue, // its lines come as lines
                SourceEvent::Projected(p) => {
                    batch.projected.push((*p).clone());
                    continue;
                }
                SourceEvent::Status(s) => {
                    self.stats.scanner = Some(s);
                    self.stats.belt = Some(s.belt());
                    continue;
                }
                SourceEvent::Belt(b) => {
                    self.stats.belt = Some(b);
                    continue;
                }
                SourceEvent::Link { up, detail } => {
                    if !up {
                        self.fault(format!("link down: {detail}"));
                    }
                    self.stats.link = Some((up, detail));
                    continue;
                }
                SourceEvent::BagStart { bag, item_id } => {
                    self.segmenter.scanner_signals = true;
                    self.stats.bags += 1;
                    if let Some(mut prev) = self.open_bag.take() {
                        // no end was signalled: the bag ends where the next begins
                        prev.end_line = Some(self.stats.lines_shown);
                        self.ended(&mut batch, prev);
                    }
                    let span = BagSpan { bag, item_id, first_line: self.stats.lines_shown, end_line: None };
                    batch.bags.push(span.clone());
                    self.open_bag = Some(span);
                    continue;
                }
                SourceEvent::BagEnd { bag } => {
                    if let Some(mut span) = self.open_bag.take_if(|b| b.bag == bag) {
                        span.end_line = Some(self.stats.lines_shown);
                        self.ended(&mut batch, span);
                    }
                    continue;
                }
            };
            self.stats.lines_in += 1;
            if line.low.len() != self.channels || line.high.len() != self.channels {
                self.stats.last_error = Some(format!(
                    "line {} has {}/{} samples, expected {}: dropped",
                    line.seq,
                    line.low.len(),
                    line.high.len(),
                    self.channels
                ));
                continue;
            }
            if let Some(prev) = self.last_seq
                && line.seq > prev + 1
            {
                let lost = line.seq - prev - 1;
                self.stats.lines_missing += lost;
                // While scanning, lost lines keep their place on screen as placeholders (at most
                // one ring's worth): the image is never stitched across a gap. A gap that follows
                // a scan line lost image lines even when the next line is a calibration cycle (a
                // re-plugged cable asks for one): it is marked all the same.
                let scanning = line.kind == LineKind::Scan || self.last_kind == Some(LineKind::Scan);
                if scanning && self.calibration.is_some() {
                    let shown = lost.min(MAX_GAP_LINES) as usize;
                    batch.low.resize(batch.low.len() + shown * self.channels, 0);
                    batch.high.resize(batch.high.len() + shown * self.channels, 0);
                    batch.missing.resize(batch.missing.len() + shown, true);
                    batch.lines += shown;
                    self.stats.lines_shown += shown as u64;
                }
            }
            self.last_seq = Some(line.seq);
            self.last_kind = Some(line.kind);
            match line.kind {
                LineKind::Dark => {
                    if !self.air.is_empty() {
                        self.air.clear(); // a new cycle restarts
                    }
                    self.dark.push(line);
                }
                LineKind::Air => self.air.push(line),
                LineKind::Scan => {
                    if !self.air.is_empty() {
                        self.finish_calibration(&mut batch);
                    }
                    let Some(cal) = self.calibration.as_mut() else {
                        continue; // nothing can be shown before the first calibration
                    };
                    self.stats.lines_since_calibration += 1;
                    let empty = self.tracker.observe(cal, &line);
                    if empty {
                        self.stats.air_updates += 1;
                        if self.stats.air_updates.is_multiple_of(self.air_upload_every) {
                            batch.calibration_changed = true;
                        }
                    }
                    batch.low.extend_from_slice(&line.low);
                    batch.high.extend_from_slice(&line.high);
                    batch.missing.push(false);
                    batch.lines += 1;
                    self.stats.lines_shown += 1;
                    if !self.segmenter.scanner_signals {
                        self.segment(empty, &mut batch);
                    }
                }
            }
        }
        if !self.air.is_empty() && self.air.len() >= crate::source::CALIBRATION_LINES {
            self.finish_calibration(&mut batch);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, kind: LineKind, v: u16) -> SourceEvent {
        SourceEvent::Line(RawLine { seq, kind, low: vec![v; 8], high: vec![v; 8] })
    }

    #[test]
    fn bags_signalled_by_the_scanner_get_their_line_ranges() {
        let mut a = Assembler::new(8, 65535);
        let mut ev: Vec<SourceEvent> = (0..4).map(|s| line(s, LineKind::Dark, 1000)).collect();
        ev.extend((4..8).map(|s| line(s, LineKind::Air, 41000)));
        ev.extend((8..10).map(|s| line(s, LineKind::Scan, 41000)));
        ev.push(SourceEvent::BagStart { bag: 7, item_id: Some("EMS123".into()) });
        ev.extend((10..15).map(|s| line(s, LineKind::Scan, 20000)));
        let b = a.feed(ev);
        assert_eq!(
            b.bags,
            vec![BagSpan { bag: 7, item_id: Some("EMS123".into()), first_line: 2, end_line: None }]
        );
        let b = a.feed(vec![
            line(15, LineKind::Scan, 20000),
            SourceEvent::BagEnd { bag: 7 },
            SourceEvent::BagStart { bag: 8, item_id: None },
        ]);
        assert_eq!(
            b.bags[0],
            BagSpan { bag: 7, item_id: Some("EMS123".into()), first_line: 2, end_line: Some(8) }
        );
        assert_eq!(b.bags[1].first_line, 8);
    }

    #[test]
    fn bags_are_found_in_the_image_when_the_scanner_does_not_signal_them() {
        use crate::domain::profile::ScannerProfile;
        use crate::domain::synth::{SyntheticScanner, generate_bag};
        let p = ScannerProfile::load("desk-140").unwrap();
        let mut s = SyntheticScanner::new(&p, 9).unwrap();
        let mut a = Assembler::new(p.channels as usize, p.full_scale());
        a.segmenter = Segmenter::for_profile(&p, 30.0);
        let (dark, air) = s.calibration_lines(crate::source::CALIBRATION_LINES);
        a.feed(dark.into_iter().chain(air).map(SourceEvent::Line));
        let mut truth = Vec::new();
        let mut spans: Vec<BagSpan> = Vec::new();
        for seed in [11, 12] {
            let gap: Vec<SourceEvent> = (0..120).map(|_| SourceEvent::Line(s.air_line())).collect();
            a.feed(gap);
            let bag = generate_bag(seed, &p);
            let first = a.stats.lines_shown;
            let lines: Vec<SourceEvent> = s.bag_lines(&bag).map(SourceEvent::Line).collect();
            // ground truth: from the first to the last line any object is in the beam
            let pitch = p.line_pitch_mm();
            let x0 = bag.objects.iter().map(|o| o.bbox().0).fold(f64::MAX, f64::min);
            let x1 = bag.objects.iter().map(|o| o.bbox().1).fold(f64::MIN, f64::max);
            truth.push((first + (x0 / pitch).floor() as u64, first + (x1 / pitch).ceil() as u64));
            for chunk in lines.chunks(97) {
                for b in a.feed(chunk.to_vec()).bags {
                    spans.retain(|x| x.bag != b.bag);
                    spans.push(b);
                }
            }
        }
        let tail: Vec<SourceEvent> = (0..120).map(|_| SourceEvent::Line(s.air_line())).collect();
        for b in a.feed(tail).bags {
            spans.retain(|x| x.bag != b.bag);
            spans.push(b);
        }
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert_eq!(a.stats.bags, 2);
        for (span, (t0, t1)) in spans.iter().zip(&truth) {
            let end = span.end_line.expect("closed on empty belt");
            // Found within a few lines of where the objects begin and end (plus the margin).
            assert!(span.first_line <= t0 + 8 && span.first_line + 12 >= *t0, "{span:?} vs {t0}..{t1}");
            assert!(end + 8 >= *t1 && end <= t1 + 12, "{span:?} vs {t0}..{t1}");
        }
        // once the scanner signals a bag, the image no longer decides
        a.feed(vec![SourceEvent::BagStart { bag: 100, item_id: None }]);
        assert!(a.segmenter.scanner_signals);
    }

    #[test]
    fn calibrates_then_passes_scan_lines_and_counts_gaps() {
        let mut a = Assembler::new(8, 65535);
        let mut ev = vec![line(0, LineKind::Scan, 30000)]; // before calibration: not shown
        ev.extend((1..5).map(|s| line(s, LineKind::Dark, 1000)));
        ev.extend((5..9).map(|s| line(s, LineKind::Air, 41000)));
        ev.push(line(9, LineKind::Scan, 21000));
        ev.push(line(15, LineKind::Scan, 21000)); // 5 lines lost
        ev.push(SourceEvent::Line(RawLine {
            seq: 16,
            kind: LineKind::Scan,
            low: vec![1; 3],
            high: vec![1; 3],
        }));
        let b = a.feed(ev);
        assert!(b.calibration_changed && b.recalibrate_visible);
        assert_eq!(b.lines, 7, "two lines and five placeholders");
        assert_eq!(b.low.len(), 7 * 8);
        assert_eq!(a.stats.lines_missing, 5);
        // the five lost lines keep their place on screen, marked
        assert_eq!(b.missing, vec![false, true, true, true, true, true, false]);
        assert!(a.stats.last_error.as_deref().unwrap().contains("expected 8"));
        a.feed((0..250).map(|k| SourceEvent::Fault(format!("fault {k}"))));
        assert_eq!(a.stats.faults.len(), MAX_FAULTS);
        assert_eq!(a.stats.faults.last().map(String::as_str), Some("fault 249"));
        let c = a.calibration.as_ref().unwrap();
        assert_eq!(c.dark_low[0], 1000.0);
        assert_eq!(c.air_low[0], 41000.0);
    }

    #[test]
    fn a_gap_after_scan_lines_is_marked_even_when_a_calibration_cycle_follows_it() {
        // A re-plugged cable: image lines were lost, then the driver's calibration request is
        // answered first. The lost lines still keep their place, ahead of the next scan lines.
        let mut a = Assembler::new(8, 65535);
        let mut ev: Vec<SourceEvent> = (0..4).map(|s| line(s, LineKind::Dark, 1000)).collect();
        ev.extend((4..8).map(|s| line(s, LineKind::Air, 41000)));
        ev.extend((8..10).map(|s| line(s, LineKind::Scan, 21000)));
        ev.extend((20..24).map(|s| line(s, LineKind::Dark, 1000))); // 10 lines lost
        ev.extend((24..28).map(|s| line(s, LineKind::Air, 41000)));
        ev.push(line(28, LineKind::Scan, 21000));
        ev.extend([29, 30, 32].map(|s| line(s, LineKind::Dark, 1000))); // 1 lost in a cycle: not image
        let b = a.feed(ev);
        assert_eq!(a.stats.lines_missing, 11);
        assert_eq!(a.stats.calibrations, 2);
        let mut want = vec![false; 2];
        want.extend([true; 10]);
        want.push(false);
        assert_eq!(b.missing, want);
    }

    #[test]
    fn air_is_retaken_between_bags_when_the_tube_drifts_but_never_from_a_bag() {
        use crate::domain::profile::ScannerProfile;
        use crate::domain::synth::{SyntheticScanner, generate_bag};
        let p = ScannerProfile::load("desk-140").unwrap();
        let mut s = SyntheticScanner::new(&p, 2).unwrap();
        let mut a = Assembler::new(p.channels as usize, p.full_scale());
        let (dark, air) = s.calibration_lines(crate::source::CALIBRATION_LINES);
        a.feed(dark.into_iter().chain(air).map(SourceEvent::Line));
        let air0 = a.calibration.as_ref().unwrap().air_high.clone();
        // the tube loses 3 %: empty belt between bags re-takes the air level
        s.tube_output = 0.97;
        let gap: Vec<SourceEvent> = (0..150).map(|_| SourceEvent::Line(s.air_line())).collect();
        a.feed(gap);
        assert!(a.stats.air_updates > 100, "{}", a.stats.air_updates);
        let air1 = a.calibration.as_ref().unwrap().air_high.clone();
        let ratio: f32 =
            air1.iter().zip(&air0).map(|(n, o)| (n - 1200.0) / (o - 1200.0)).sum::<f32>() / air0.len() as f32;
        assert!((ratio - 0.97).abs() < 0.005, "air follows the tube: {ratio}");
        // a bag's lines are never taken for air
        let before = a.stats.air_updates;
        let bag = generate_bag(4, &p);
        let lines: Vec<SourceEvent> = s.bag_lines(&bag).map(SourceEvent::Line).collect();
        let n = lines.len();
        let b = a.feed(lines.into_iter().skip(80).take(n - 160));
        assert_eq!(a.stats.air_updates, before, "bag lines used as air");
        // the 80 skipped lines are a gap in the sequence: shown as placeholders, not stitched
        assert_eq!(b.lines, n - 160 + 80);
        assert_eq!(b.missing.iter().filter(|m| **m).count(), 80);
    }

    #[test]
    fn a_bag_is_kept_with_the_same_calibration_however_the_stream_is_batched() {
        use crate::capture::BagCollector;
        use crate::domain::profile::ScannerProfile;
        use crate::domain::synth::{SyntheticScanner, generate_bag};
        let p = ScannerProfile::load("desk-140").unwrap();
        let mut s = SyntheticScanner::new(&p, 3).unwrap();
        let (dark, air) = s.calibration_lines(crate::source::CALIBRATION_LINES);
        let mut ev: Vec<SourceEvent> = dark.into_iter().chain(air).map(SourceEvent::Line).collect();
        for b in 0..2u64 {
            s.tube_output = 1.0 - 0.02 * b as f64; // drift: empty belt re-takes air
            ev.extend((0..120).map(|_| SourceEvent::Line(s.air_line())));
            ev.push(SourceEvent::BagStart { bag: b, item_id: None });
            ev.extend(s.bag_lines(&generate_bag(b, &p)).map(SourceEvent::Line));
            ev.push(SourceEvent::BagEnd { bag: b });
        }
        ev.extend((0..200).map(|_| SourceEvent::Line(s.air_line())));
        let bags = |chunk: usize| {
            let mut a = Assembler::new(p.channels as usize, p.full_scale());
            let mut c = BagCollector::new(p.channels as usize, 8192);
            let mut out = Vec::new();
            for part in ev.chunks(chunk) {
                let batch = a.feed(part.iter().cloned());
                out.extend(c.push(&batch, a.calibration.as_ref()));
            }
            out
        };
        let (whole, small) = (bags(ev.len()), bags(7));
        assert_eq!(whole.len(), 2);
        assert_eq!(small.len(), 2);
        for (x, y) in whole.iter().zip(&small) {
            assert_eq!(x.frame, y.frame);
            assert!(x.calibration == y.calibration, "bag {}: calibration depends on batching", x.span.bag);
        }
    }
}
