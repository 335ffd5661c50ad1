//! Recording a source and replaying it: [`record`] tees any running source into a `.tsrec` file
//! (format in [`super::recording`]) while passing every event on unchanged; `replay://FILE`
//! ([`spawn_replay`]) delivers a recording's events again at their recorded pace times `speed`
//! (`speed=max`: as fast as the consumer takes them), through the same channel, so the assembler,
//! the archive and the screens cannot tell a replay from the live scanner.
//!
//! Owns: the mapping between [`SourceEvent`]s and records, the recorder thread (flushes at least
//! once a second, so a crash loses at most that; a write error stops the recording with a fault
//! while the live image goes on), the replay thread (a replay never drops a line: a file can wait
//! where a scanner cannot).
//!
//! Must not import: egui, wgpu.

use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, SendTimeoutError, bounded};

use super::recording::{Reader, Rec, RecError, Writer};
use super::{RunningSource, ScannerStatus, SourceEvent, SourceStats, send};
use crate::domain::scan::{LineKind, RawLine};

/// The record of an event (`None`: raw GigE Vision blocks, whose lines are recorded).
pub fn to_rec(ev: &SourceEvent) -> Option<Rec> {
    Some(match ev {
        SourceEvent::Line(l) => Rec::Line {
            seq: l.seq,
            kind: match l.kind {
                LineKind::Dark => 0,
                LineKind::Air => 1,
                LineKind::Scan => 2,
            },
            low: l.low.clone(),
            high: l.high.clone(),
        },
        SourceEvent::BagStart { bag, item_id } => Rec::BagStart { bag: *bag, item_id: item_id.clone() },
        SourceEvent::BagEnd { bag } => Rec::BagEnd { bag: *bag },
        SourceEvent::Fault(f) => Rec::Fault(f.clone()),
        SourceEvent::Status(s) => Rec::Status {
            flags: u8::from(s.tube_on)
                | u8::from(s.belt_running) << 1
                | u8::from(s.belt_reversed) << 2
                | u8::from(s.interlock_open) << 3
                | u8::from(s.fault) << 4,
            values: [s.kv, s.ma, s.temp_c, s.belt_mm_s, s.line_rate_hz],
        },
        SourceEvent::Link { up, detail } => Rec::Link { up: *up, detail: detail.clone() },
        // A detector's belt read-back is not kept: a replay's belt is the replay's.
        SourceEvent::RawBlock(_) | SourceEvent::Projected(_) | SourceEvent::Belt(_) => return None,
    })
}

/// The event a record stands for.
pub fn to_event(r: Rec) -> SourceEvent {
    match r {
        Rec::Line { seq, kind, low, high } => SourceEvent::Line(RawLine {
            seq,
            kind: match kind {
                0 => LineKind::Dark,
                1 => LineKind::Air,
                _ => LineKind::Scan,
            },
            low,
            high,
        }),
        Rec::BagStart { bag, item_id } => SourceEvent::BagStart { bag, item_id },
        Rec::BagEnd { bag } => SourceEvent::BagEnd { bag },
        Rec::Fault(f) => SourceEvent::Fault(f),
        Rec::Status { flags, values } => SourceEvent::Status(ScannerStatus {
            tube_on: flags & 1 != 0,
            belt_running: flags & 2 != 0,
            belt_reversed: flags & 4 != 0,
            interlock_open: flags & 8 != 0,
            fault: flags & 16 != 0,
            kv: values[0],
            ma: values[1],
            temp_c: values[2],
            belt_mm_s: values[3],
            line_rate_hz: values[4],
        }),
        Rec::Link { up, detail } => SourceEvent::Link { up, detail },
    }
}

/// What a recording says about itself.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub profile: String,
    pub channels: usize,
    pub source: String,
    pub started_unix_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Format { path: String, source: RecError },
    #[error("{path}: header: {why}")]
    Header { path: String, why: String },
    #[error(
        "{path} was recorded with {recorded} channels (profile {profile}); this profile has {given}: replay it with --profile {profile}"
    )]
    Channels { path: String, recorded: usize, given: usize, profile: String },
    #[error("speed={0}: a factor above 0 (1 = as recorded, 4 = four times faster) or max")]
    Speed(String),
}

/// Tee `inner` into a recording at `path`; the returned source delivers the same events.
pub fn record(
    inner: RunningSource,
    path: &Path,
    profile: &str,
    channels: usize,
) -> Result<RunningSource, ReplayError> {
    let p = path.display().to_string();
    let file = std::fs::File::create(path).map_err(|source| ReplayError::File { path: p.clone(), source })?;
    let header = Header {
        format: "twinspect-recording".into(),
        version: 1,
        profile: profile.into(),
        channels,
        source: inner.description.clone(),
        started_unix_ms: crate::unix_ms(),
    };
    let json = serde_json::to_string(&header).expect("header serialises");
    let mut w = Writer::new(BufWriter::with_capacity(1 << 20, file), &json)
        .map_err(|source| ReplayError::File { path: p.clone(), source })?;
    let (tx, rx) = bounded(8192);
    let stats = inner.stats.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (st, sp) = (stats.clone(), stop.clone());
    let description = format!("{} (recording to {p})", inner.description);
    let commands = inner.commands.clone();
    let thread = std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || {
            let inner = inner;
            let t0 = Instant::now();
            let mut last_flush = Instant::now();
            let mut broken = false;
            let fail = |e: std::io::Error| SourceEvent::Fault(format!("recording to {p} stopped: {e}"));
            while !sp.load(Ordering::Relaxed) {
                let ev = match inner.events.recv_timeout(Duration::from_millis(50)) {
                    Ok(ev) => Some(ev),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                if let Some(ev) = ev {
                    if !broken && let Some(r) = to_rec(&ev) {
                        let t = t0.elapsed().as_micros() as u64;
                        if let Err(e) = w.write(t, &r) {
                            broken = true;
                            send(&tx, &st, fail(e));
                        }
                    }
                    if !forward(&tx, &st, ev) {
                        break;
                    }
                }
                if !broken && last_flush.elapsed() >= Duration::from_secs(1) {
                    last_flush = Instant::now();
                    if let Err(e) = w.flush() {
                        broken = true;
                        send(&tx, &st, fail(e));
                    }
                }
            }
            if !broken {
                let _ = w.flush();
                if let Ok(f) = w.into_inner().into_inner() {
                    let _ = f.sync_all();
                }
            }
        })
        .expect("spawn recorder thread");
    Ok(RunningSource { events: rx, stats, description, commands, stop, thread: Some(thread) })
}

/// Pass an event on as the inner source would have (its lines were counted there already).
fn forward(tx: &crossbeam_channel::Sender<SourceEvent>, stats: &SourceStats, ev: SourceEvent) -> bool {
    match tx.try_send(ev) {
        Ok(()) => true,
        Err(crossbeam_channel::TrySendError::Full(ev)) => {
            if matches!(ev, SourceEvent::Line(_)) {
                stats.lines_dropped.fetch_add(1, Ordering::Relaxed);
                true
            } else {
                !matches!(tx.send_timeout(ev, Duration::from_secs(1)), Err(SendTimeoutError::Disconnected(_)))
            }
        }
        Err(crossbeam_channel::TrySendError::Disconnected(_)) => false,
    }
}

/// `speed` of a replay URL: `Some(factor)`, or `None` for max.
pub fn parse_speed(s: &str) -> Result<Option<f64>, ReplayError> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
        _ => Err(ReplayError::Speed(s.into())),
    }
}

/// Open a recording and check it fits `channels`; its header.
pub fn open_recording(
    path: &Path,
    channels: usize,
) -> Result<(Reader<BufReader<std::fs::File>>, Header), ReplayError> {
    let p = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| ReplayError::File { path: p.clone(), source })?;
    let reader = Reader::new(BufReader::with_capacity(1 << 20, f))
        .map_err(|source| ReplayError::Format { path: p.clone(), source })?;
    let header: Header = serde_json::from_str(&reader.header)
        .map_err(|e| ReplayError::Header { path: p.clone(), why: e.to_string() })?;
    if header.format != "twinspect-recording" || header.version != 1 {
        return Err(ReplayError::Header {
            path: p,
            why: format!(
                "{} version {} (this Twinspect reads twinspect-recording 1)",
                header.format, header.version
            ),
        });
    }
    if header.channels != channels {
        return Err(ReplayError::Channels {
            path: p,
            recorded: header.channels,
            given: channels,
            profile: header.profile.clone(),
        });
    }
    Ok((reader, header))
}

/// Threat image projection into a replay (training): a share `rate` of the bags get a threat
/// of the library, placed inside the bag.
pub struct TipReplay {
    pub rate: f64,
    pub seed: u64,
    pub threats: Vec<crate::domain::tip::Threat>,
    pub projector: crate::domain::tip::Projector,
}

/// Holds a bag's events back until its end, so a threat can be projected into the whole bag.
struct TipState {
    tip: TipReplay,
    rng: crate::domain::rng::Rng,
    dark: Vec<RawLine>,
    air: Vec<RawLine>,
    calib: Option<crate::domain::calib::Calibration>,
    /// The open bag and its events so far.
    bag: Option<(u64, Vec<SourceEvent>)>,
}

impl TipState {
    /// Events to deliver now for `ev` (none while a bag is held back).
    fn push(&mut self, ev: SourceEvent, channels: usize) -> Vec<SourceEvent> {
        if let SourceEvent::Line(l) = &ev {
            match l.kind {
                LineKind::Dark => {
                    if !self.air.is_empty() {
                        self.dark.clear();
                        self.air.clear();
                    }
                    self.dark.push(l.clone());
                }
                LineKind::Air => self.air.push(l.clone()),
                LineKind::Scan => {
                    if !self.dark.is_empty() && !self.air.is_empty() {
                        let (d, a): (Vec<&RawLine>, Vec<&RawLine>) =
                            (self.dark.iter().collect(), self.air.iter().collect());
                        self.calib = crate::domain::calib::Calibration::from_lines(&d, &a, u16::MAX).ok();
                        self.dark.clear();
                        self.air.clear();
                    }
                }
            }
        }
        match ev {
            SourceEvent::BagStart { bag, .. } => {
                let mut out = self.flush();
                out.extend(self.bag_start(bag, ev));
                out
            }
            SourceEvent::BagEnd { bag } if self.bag.as_ref().is_some_and(|(b, _)| *b == bag) => {
                let (bag, mut held) = self.bag.take().expect("checked");
                if let Some(p) = self.project(bag, &mut held, channels) {
                    held.push(SourceEvent::Projected(std::sync::Arc::new(p)));
                }
                held.push(ev);
                held
            }
            ev => match self.bag.as_mut() {
                // At most a bag of 16,384 lines is held (128 MiB at 2,048 channels); a longer
                // one passes unchanged.
                Some((_, held)) if held.len() < 16_384 => {
                    held.push(ev);
                    Vec::new()
                }
                _ => {
                    let mut out = self.flush();
                    out.push(ev);
                    out
                }
            },
        }
    }

    fn bag_start(&mut self, bag: u64, ev: SourceEvent) -> Vec<SourceEvent> {
        self.bag = Some((bag, vec![ev]));
        Vec::new()
    }

    /// Whatever is held, unchanged (a bag that never ends, or one too long to hold).
    fn flush(&mut self) -> Vec<SourceEvent> {
        self.bag.take().map(|(_, v)| v).unwrap_or_default()
    }

    fn project(
        &mut self,
        bag: u64,
        held: &mut [SourceEvent],
        channels: usize,
    ) -> Option<crate::domain::tip::ProjectedThreat> {
        use crate::domain::tip;
        let calib = self.calib.clone()?;
        if self.tip.threats.is_empty() || !self.rng.chance(self.tip.rate) {
            return None;
        }
        let idx: Vec<usize> = held
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, SourceEvent::Line(l) if l.kind == LineKind::Scan && l.low.len() == channels))
            .map(|(i, _)| i)
            .collect();
        if idx.is_empty() {
            return None;
        }
        let lines: Vec<RawLine> = idx
            .iter()
            .map(|&i| if let SourceEvent::Line(l) = &held[i] { l.clone() } else { unreachable!() })
            .collect();
        let mut frame = crate::domain::scan::RawFrame::from_lines(&lines, channels);
        let k = (self.rng.next_u64() % self.tip.threats.len() as u64) as usize;
        let threat = &self.tip.threats[k];
        let (l, c) = tip::find_placement(&frame, &calib, threat, &mut self.rng)?;
        self.tip.projector.project(&mut frame, &calib, threat, l, c);
        for (row, &i) in idx.iter().enumerate() {
            if let SourceEvent::Line(line) = &mut held[i] {
                line.low = frame.low.row(row).to_vec();
                line.high = frame.high.row(row).to_vec();
            }
        }
        Some(tip::ProjectedThreat {
            bag,
            name: threat.name.clone(),
            category: threat.category,
            line: l,
            channel: c,
            lines: threat.lines(),
            channels: threat.channels(),
        })
    }
}

/// Replay a recording: its events at their recorded pace divided by `speed` (`None`: at once);
/// with `tip`, threats projected into a share of its bags (each bag is then held until it
/// ends).
pub fn spawn_replay(
    path: &Path,
    speed: Option<f64>,
    channels: usize,
    tip: Option<TipReplay>,
) -> Result<RunningSource, ReplayError> {
    spawn_replay_with(path, speed, channels, tip, false)
}

/// [`spawn_replay`], and with `step` bag by bag: after each bag's end the replay waits for
/// [`SourceStats::next_bag`] (the workstation's "Next bag" button; `capture` steps by itself).
pub fn spawn_replay_with(
    path: &Path,
    speed: Option<f64>,
    channels: usize,
    tip: Option<TipReplay>,
    step: bool,
) -> Result<RunningSource, ReplayError> {
    let (mut reader, header) = open_recording(path, channels)?;
    let (tx, rx) = bounded(8192);
    let stats = Arc::new(SourceStats::default());
    stats.connected.store(true, Ordering::Relaxed);
    stats.stepping.store(step, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let (st, sp) = (stats.clone(), stop.clone());
    let p = path.display().to_string();
    let description = format!(
        "replay://{p}?speed={}{} (recorded from {})",
        if step { "step".to_string() } else { speed.map_or("max".to_string(), |s| s.to_string()) },
        tip.as_ref().map_or(String::new(), |t| format!("&tip={}", t.rate)),
        header.source
    );
    let mut tip = tip.map(|t| TipState {
        rng: crate::domain::rng::Rng::new(t.seed),
        tip: t,
        dark: Vec::new(),
        air: Vec::new(),
        calib: None,
        bag: None,
    });
    let thread = super::spawn_thread("replay", &description, move || {
        let t0 = Instant::now();
        let mut events = 0u64;
        let mut bags_sent = 0u64;
        // A blocking send that still hears the stop switch.
        let deliver = |ev: SourceEvent| super::deliver_blocking(&tx, &sp, ev);
        let (clean, end) = loop {
            let (t, rec) = match reader.next_record() {
                Ok(Some(x)) => x,
                Ok(None) => break (true, format!("end of recording {p} ({events} events)")),
                Err(e) => {
                    let _ = deliver(SourceEvent::Fault(format!("{p}: {e}; replay stopped there")));
                    break (false, format!("replay of {p} stopped at a damaged record"));
                }
            };
            if let Some(speed) = speed {
                let due = Duration::from_secs_f64(t as f64 / 1e6 / speed);
                while t0.elapsed() < due {
                    if sp.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(due.saturating_sub(t0.elapsed()).min(Duration::from_millis(50)));
                }
            }
            let ev = to_event(rec);
            match &ev {
                SourceEvent::Line(_) => {
                    st.lines_sent.fetch_add(1, Ordering::Relaxed);
                }
                SourceEvent::BagStart { .. } => {
                    st.bags.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            let out = match tip.as_mut() {
                Some(t) => t.push(ev, channels),
                None => vec![ev],
            };
            for ev in out {
                let bag_end = matches!(ev, SourceEvent::BagEnd { .. });
                if !deliver(ev) {
                    return;
                }
                if step && bag_end {
                    bags_sent += 1;
                    st.step_waiting.store(true, Ordering::Relaxed);
                    while st.steps.load(Ordering::Relaxed) < bags_sent {
                        if sp.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    st.step_waiting.store(false, Ordering::Relaxed);
                }
            }
            events += 1;
        };
        if let Some(t) = tip.as_mut() {
            for ev in t.flush() {
                if !deliver(ev) {
                    return;
                }
            }
        }
        // Played to its end: not a fault (a damaged record is one, and says so).
        st.finished.store(clean, Ordering::Relaxed);
        st.connected.store(false, Ordering::Relaxed);
        let _ = deliver(SourceEvent::Link { up: false, detail: end });
    })
    .expect("spawn replay thread");
    Ok(RunningSource { events: rx, stats, description, commands: None, stop, thread: Some(thread) })
}
