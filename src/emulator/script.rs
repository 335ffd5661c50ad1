//! What a scanner sends, line by line: the calibration cycle, empty belt, bags with their tags,
//! status and heartbeat; synthetic bags from the physics model or a recording served in a loop.
//! Both emulators (serial and GigE Vision) play it.
//!
//! Owns: [`Script`]. Must not import: egui, wgpu, the drivers of `source`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use crate::domain::physics::PhysicsError;
use crate::domain::profile::ScannerProfile;
use crate::domain::scan::{LineKind, RawLine};
use crate::domain::synth::{SyntheticScanner, generate_bag};
use crate::source::SourceEvent;
use crate::source::serial::codec::{Frame, WireLineKind};

/// A recording the emulator serves instead of synthetic bags (`emulate --source replay://FILE`),
/// from the start again at its end.
struct Recorded {
    path: PathBuf,
    channels: usize,
    reader: crate::source::recording::Reader<std::io::BufReader<std::fs::File>>,
    /// The recording's own calibration lines (its first ones), sent for every calibration cycle.
    dark: Vec<RawLine>,
    air: Vec<RawLine>,
    /// Bag number of the recording's bag in progress, as renumbered here.
    open_bag: Option<u32>,
}

impl Recorded {
    fn open(path: &Path, channels: usize) -> Result<Self, crate::source::replay::ReplayError> {
        let (mut reader, _) = crate::source::replay::open_recording(path, channels)?;
        // The recording's first calibration cycle (read only as far as it goes).
        let (mut dark, mut air) = (Vec::new(), Vec::new());
        let n = crate::source::CALIBRATION_LINES;
        while dark.len() < n || air.len() < n {
            let Ok(Some((_, rec))) = reader.next_record() else { break };
            if let SourceEvent::Line(l) = crate::source::replay::to_event(rec) {
                match l.kind {
                    LineKind::Dark if dark.len() < n => dark.push(l),
                    LineKind::Air if air.len() < n => air.push(l),
                    _ => {}
                }
            }
        }
        let p = path.display().to_string();
        if dark.is_empty() || air.is_empty() {
            return Err(crate::source::replay::ReplayError::Header {
                path: p,
                why: "no calibration lines (dark and air): record from the start of a source".into(),
            });
        }
        let (reader, _) = crate::source::replay::open_recording(path, channels)?;
        Ok(Recorded { path: path.to_path_buf(), channels, reader, dark, air, open_bag: None })
    }
}

/// Where a script's lines come from.
enum Origin {
    Synthetic(Box<SyntheticScanner>),
    Recorded(Box<Recorded>),
}

/// What the emulated scanner sends next, one item at a time (no timing, no I/O).
pub struct Script {
    origin: Origin,
    profile: ScannerProfile,
    seed: u64,
    bag_no: u32,
    /// Which synthetic bag comes next, and one to scan again first (reversed out of the tunnel).
    content: u32,
    again: Option<u32>,
    /// The synthetic bag whose frames are queued.
    queued: Option<u32>,
    queue: VecDeque<Frame>,
    next_line: u32,
    gap_lines: usize,
    /// Send BAG_START/BAG_END (some scanners do not: the workstation then segments the image).
    pub signal_bags: bool,
    /// Relative tube output drift amplitude (slow sine, one period a minute at the line rate).
    pub drift: f64,
    lines_made: u64,
}

impl Script {
    pub fn new(profile: &ScannerProfile, seed: u64, gap_mm: f64) -> Result<Self, PhysicsError> {
        let mut s = Script {
            origin: Origin::Synthetic(Box::new(SyntheticScanner::new(profile, seed)?)),
            profile: profile.clone(),
            seed,
            bag_no: 0,
            content: 0,
            again: None,
            queued: None,
            queue: VecDeque::new(),
            next_line: 0,
            gap_lines: (gap_mm / profile.line_pitch_mm()).ceil().max(1.0) as usize,
            signal_bags: true,
            drift: 0.0,
            lines_made: 0,
        };
        s.calibrate();
        Ok(s)
    }

    /// A script serving a recording (its lines, bags and tags as recorded, numbered afresh),
    /// looping at its end; its own calibration lines answer calibration requests.
    pub fn from_recording(
        profile: &ScannerProfile,
        path: &Path,
    ) -> Result<Self, crate::source::replay::ReplayError> {
        let mut s = Script {
            origin: Origin::Recorded(Box::new(Recorded::open(path, profile.channels as usize)?)),
            profile: profile.clone(),
            seed: 0,
            bag_no: 0,
            content: 0,
            again: None,
            queued: None,
            queue: VecDeque::new(),
            next_line: 0,
            gap_lines: 0,
            signal_bags: true,
            drift: 0.0,
            lines_made: 0,
        };
        s.calibrate();
        Ok(s)
    }

    fn push_line(&mut self, l: RawLine) {
        let kind = match l.kind {
            LineKind::Dark => WireLineKind::Dark,
            LineKind::Air => WireLineKind::Air,
            LineKind::Scan => WireLineKind::Scan,
        };
        self.queue.push_back(Frame::Line { line: self.next_line, kind, low: l.low, high: l.high });
        self.next_line = self.next_line.wrapping_add(1);
        self.lines_made += 1;
    }

    /// Queue a calibration cycle (dark, then air), sent before anything else still to come.
    pub fn calibrate(&mut self) {
        let pending: Vec<Frame> = self.queue.drain(..).collect();
        // Lines already numbered but not sent are renumbered after the cycle.
        let unsent = pending.iter().filter(|f| matches!(f, Frame::Line { .. })).count() as u32;
        self.next_line = self.next_line.wrapping_sub(unsent);
        self.lines_made -= u64::from(unsent);
        let (dark, air) = match &mut self.origin {
            Origin::Synthetic(sc) => sc.calibration_lines(crate::source::CALIBRATION_LINES),
            Origin::Recorded(r) => (r.dark.clone(), r.air.clone()),
        };
        for l in dark.into_iter().chain(air) {
            self.push_line(l);
        }
        for f in pending {
            match f {
                Frame::Line { kind, low, high, .. } => {
                    let kind = match kind {
                        WireLineKind::Dark => LineKind::Dark,
                        WireLineKind::Air => LineKind::Air,
                        WireLineKind::Scan => LineKind::Scan,
                    };
                    self.push_line(RawLine { seq: 0, kind, low, high });
                }
                other => self.queue.push_back(other),
            }
        }
    }

    /// The recording's next stretch: up to the end of its next bag (or 4096 lines of belt).
    /// The belt ran backwards: what was queued is not sent (the tube is off); a bag under the
    /// beam ends here, cut short, and a synthetic one is scanned again, whole, as the next bag
    /// (a new number, the same tag) when the belt runs forward. A recording goes on with its
    /// next bag. Returns the cut bag's end, to send now.
    pub fn reverse(&mut self) -> Option<Frame> {
        let pending: Vec<Frame> = self.queue.drain(..).collect();
        let unsent = pending.iter().filter(|f| matches!(f, Frame::Line { .. })).count() as u32;
        self.next_line = self.next_line.wrapping_sub(unsent);
        self.lines_made -= u64::from(unsent);
        let begun = |no: u32| !pending.iter().any(|f| matches!(f, Frame::BagStart { bag, .. } if *bag == no));
        let mut cut = None;
        for f in &pending {
            if let Frame::BagEnd { bag } = f
                && begun(*bag)
            {
                cut = Some(*bag);
            }
        }
        // A synthetic bag queued, begun or not, comes again.
        let queued_bag = pending.iter().any(|f| {
            matches!(f, Frame::BagStart { .. } | Frame::BagEnd { .. })
                || matches!(f, Frame::Line { kind: WireLineKind::Scan, .. })
        });
        if matches!(self.origin, Origin::Synthetic(_)) && queued_bag {
            self.again = self.queued.take();
        }
        if let Origin::Recorded(r) = &mut self.origin
            && cut.is_some()
        {
            r.open_bag = None;
        }
        cut.map(|bag| Frame::BagEnd { bag })
    }

    fn refill_recorded(&mut self) {
        let mut pushed = 0usize;
        let mut restarts = 0;
        loop {
            let Origin::Recorded(r) = &mut self.origin else { return };
            let next = match r.reader.next_record() {
                Ok(Some((_, rec))) => Some(crate::source::replay::to_event(rec)),
                // The end (or a damaged tail): from the start again.
                Ok(None) | Err(_) => None,
            };
            let Some(ev) = next else {
                restarts += 1;
                let reopened = crate::source::replay::open_recording(&r.path, r.channels);
                match reopened {
                    Ok((reader, _)) if restarts < 3 => {
                        r.reader = reader;
                        // A bag the recording cut short ends where it was cut.
                        if let Some(no) = r.open_bag.take()
                            && self.signal_bags
                        {
                            self.queue.push_back(Frame::BagEnd { bag: no });
                        }
                        continue;
                    }
                    // Gone or empty: empty belt rather than nothing.
                    _ => {
                        let air = r.air[0].clone();
                        for _ in 0..self.gap_lines.max(64) {
                            self.push_line(air.clone());
                        }
                        return;
                    }
                }
            };
            match ev {
                SourceEvent::Line(l) => {
                    self.push_line(l);
                    pushed += 1;
                    if pushed >= 4096 && r_open_bag(&self.origin).is_none() {
                        return;
                    }
                }
                SourceEvent::BagStart { item_id, .. } => {
                    let no = self.bag_no;
                    self.bag_no = self.bag_no.wrapping_add(1);
                    if let Origin::Recorded(r) = &mut self.origin {
                        r.open_bag = Some(no);
                    }
                    if self.signal_bags {
                        let tag = item_id.unwrap_or_else(|| format!("REPLAY{no:06}"));
                        self.queue.push_back(Frame::BagStart { bag: no, tag });
                    }
                }
                SourceEvent::BagEnd { .. } => {
                    let open =
                        if let Origin::Recorded(r) = &mut self.origin { r.open_bag.take() } else { None };
                    if let Some(no) = open {
                        if self.signal_bags {
                            self.queue.push_back(Frame::BagEnd { bag: no });
                        }
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    fn refill(&mut self) {
        if matches!(self.origin, Origin::Recorded(_)) {
            return self.refill_recorded();
        }
        let rate = self.profile.line_rate_hz;
        for _ in 0..self.gap_lines {
            let drift = self.drift;
            let made = self.lines_made;
            let Origin::Synthetic(scanner) = &mut self.origin else { return };
            scanner.tube_output = 1.0 + drift * (made as f64 / rate / 60.0 * std::f64::consts::TAU).sin();
            let l = scanner.air_line();
            self.push_line(l);
        }
        let content = self.again.take().unwrap_or_else(|| {
            self.content = self.content.wrapping_add(1);
            self.content - 1
        });
        self.queued = Some(content);
        let bag =
            generate_bag(self.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(content)), &self.profile);
        let no = self.bag_no;
        self.bag_no = self.bag_no.wrapping_add(1);
        if self.signal_bags {
            let tag = format!("TS{:06}{:04}", self.seed % 1_000_000, content % 10_000);
            self.queue.push_back(Frame::BagStart { bag: no, tag });
        }
        let Origin::Synthetic(scanner) = &mut self.origin else { return };
        let lines: Vec<RawLine> = scanner.scan_lines(&bag);
        for l in lines {
            self.push_line(l);
        }
        if self.signal_bags {
            self.queue.push_back(Frame::BagEnd { bag: no });
        }
    }

    /// The next frame (lines, bag markers), forever.
    pub fn next_frame(&mut self) -> Frame {
        if self.queue.is_empty() {
            self.refill();
        }
        self.queue.pop_front().expect("refill queues lines")
    }

    /// A line with the beam off (for a host-driven dark calibration).
    pub fn dark_line(&mut self) -> RawLine {
        match &mut self.origin {
            Origin::Synthetic(sc) => sc.dark_line(),
            Origin::Recorded(r) => r.dark[self.lines_made as usize % r.dark.len()].clone(),
        }
    }

    /// A line of empty belt (for a host-driven air calibration).
    pub fn air_line(&mut self) -> RawLine {
        match &mut self.origin {
            Origin::Synthetic(sc) => RawLine { kind: LineKind::Air, ..sc.air_line() },
            Origin::Recorded(r) => r.air[self.lines_made as usize % r.air.len()].clone(),
        }
    }

    pub fn channels(&self) -> usize {
        match &self.origin {
            Origin::Synthetic(sc) => sc.channels(),
            Origin::Recorded(r) => r.channels,
        }
    }

    /// Bags begun so far.
    pub fn bags(&self) -> u32 {
        self.bag_no
    }
}

fn r_open_bag(o: &Origin) -> Option<u32> {
    match o {
        Origin::Recorded(r) => r.open_bag,
        Origin::Synthetic(_) => None,
    }
}
