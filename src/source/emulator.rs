//! The scanner emulator: the physics-based synthetic scanner speaking the serial line protocol
//! (`hardware/serial-protocol.md`) at the profile's line rate, over a pseudo-terminal it creates
//! or a serial device it opens, with injectable faults (lost frames, corrupted bytes, noise bursts,
//! disconnects). Integrators test their set-up with it; the tests test the driver with it.
//!
//! Owns: [`Script`] (what a scanner sends, line by line: calibration cycle, empty belt, bags with
//! tags, status and heartbeat), [`Impairments`], [`serve_serial`] and its [`EmulatorStats`]; the
//! host-command handling (belt start/stop/reverse, status, calibrate, each acknowledged).
//!
//! Must not import: egui, wgpu.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::SerialPort;

use super::SourceEvent;
use super::serial::SerialOptions;
use super::serial::codec::{self, Command, Decoder, Frame, Status, WireLineKind};
use crate::domain::physics::PhysicsError;
use crate::domain::profile::ScannerProfile;
use crate::domain::rng::Rng;
use crate::domain::scan::{LineKind, RawLine};
use crate::domain::synth::{SyntheticScanner, generate_bag};

/// A recording the emulator serves instead of synthetic bags (`emulate --source replay://FILE`),
/// from the start again at its end.
struct Recorded {
    path: PathBuf,
    channels: usize,
    reader: super::recording::Reader<std::io::BufReader<std::fs::File>>,
    /// The recording's own calibration lines (its first ones), sent for every calibration cycle.
    dark: Vec<RawLine>,
    air: Vec<RawLine>,
    /// Bag number of the recording's bag in progress, as renumbered here.
    open_bag: Option<u32>,
}

impl Recorded {
    fn open(path: &Path, channels: usize) -> Result<Self, super::replay::ReplayError> {
        let (mut reader, _) = super::replay::open_recording(path, channels)?;
        // The recording's first calibration cycle (read only as far as it goes).
        let (mut dark, mut air) = (Vec::new(), Vec::new());
        let n = super::CALIBRATION_LINES;
        while dark.len() < n || air.len() < n {
            let Ok(Some((_, rec))) = reader.next_record() else { break };
            if let SourceEvent::Line(l) = super::replay::to_event(rec) {
                match l.kind {
                    LineKind::Dark if dark.len() < n => dark.push(l),
                    LineKind::Air if air.len() < n => air.push(l),
                    _ => {}
                }
            }
        }
        let p = path.display().to_string();
        if dark.is_empty() || air.is_empty() {
            return Err(super::replay::ReplayError::Header {
                path: p,
                why: "no calibration lines (dark and air): record from the start of a source".into(),
            });
        }
        let (reader, _) = super::replay::open_recording(path, channels)?;
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
    pub fn from_recording(profile: &ScannerProfile, path: &Path) -> Result<Self, super::replay::ReplayError> {
        let mut s = Script {
            origin: Origin::Recorded(Box::new(Recorded::open(path, profile.channels as usize)?)),
            profile: profile.clone(),
            seed: 0,
            bag_no: 0,
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
            Origin::Synthetic(sc) => sc.calibration_lines(super::CALIBRATION_LINES),
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
    fn refill_recorded(&mut self) {
        let mut pushed = 0usize;
        let mut restarts = 0;
        loop {
            let Origin::Recorded(r) = &mut self.origin else { return };
            let next = match r.reader.next_record() {
                Ok(Some((_, rec))) => Some(super::replay::to_event(rec)),
                // The end (or a damaged tail): from the start again.
                Ok(None) | Err(_) => None,
            };
            let Some(ev) = next else {
                restarts += 1;
                let reopened = super::replay::open_recording(&r.path, r.channels);
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
        let bag = generate_bag(
            self.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(self.bag_no)),
            &self.profile,
        );
        let no = self.bag_no;
        self.bag_no = self.bag_no.wrapping_add(1);
        if self.signal_bags {
            let tag = format!("TS{:06}{:04}", self.seed % 1_000_000, no % 10_000);
            self.queue.push_back(Frame::BagStart { bag: no, tag });
        }
        let Origin::Synthetic(scanner) = &mut self.origin else { return };
        let lines: Vec<RawLine> = scanner.bag_lines(&bag).collect();
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

/// Faults to inject on the link (probabilities per frame).
#[derive(Clone, Debug, Default)]
pub struct Impairments {
    /// Drop the whole frame.
    pub loss: f64,
    /// Flip one random byte of the frame.
    pub corrupt: f64,
    /// Send 1-64 random bytes before the frame.
    pub noise: f64,
    /// Drop the link this often (pty: the terminal disappears and a new one takes its place)...
    pub disconnect_every: Option<Duration>,
    /// ...for this long (the scanner keeps scanning: what it scans meanwhile is lost).
    pub disconnect_for: Duration,
    pub seed: u64,
}

#[derive(Debug, Default)]
pub struct EmulatorStats {
    pub frames: AtomicU64,
    pub lines: AtomicU64,
    pub bytes: AtomicU64,
    /// Frames dropped on purpose (loss) or while disconnected.
    pub frames_dropped: AtomicU64,
    pub frames_corrupted: AtomicU64,
    pub noise_bursts: AtomicU64,
    pub disconnects: AtomicU64,
    /// Frames that could not be written (nobody reading: the port's buffer stayed full).
    pub unsent: AtomicU64,
    pub commands: AtomicU64,
    pub bags: AtomicU64,
}

#[derive(Clone, Debug)]
pub enum SerialTarget {
    /// Create a pseudo-terminal; optionally keep a symlink at this path pointing at it (it moves
    /// to the new terminal after an injected disconnect, like a USB adapter's by-id name).
    Pty { link: Option<PathBuf> },
    /// Open this device.
    Device(SerialOptions),
}

#[derive(Clone, Debug)]
pub struct EmulatorOptions {
    pub seed: u64,
    /// Line rate relative to the profile's.
    pub speed: f64,
    pub gap_mm: f64,
    pub drift: f64,
    pub signal_bags: bool,
    pub impair: Impairments,
    /// Serve this recording (looping) instead of synthetic bags.
    pub replay: Option<PathBuf>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            seed: 1,
            speed: 1.0,
            gap_mm: 250.0,
            drift: 0.0,
            signal_bags: true,
            impair: Impairments::default(),
            replay: None,
        }
    }
}

/// A running emulator; stops (and removes its symlink) when dropped.
pub struct Emulator {
    pub stats: Arc<EmulatorStats>,
    path: Arc<Mutex<String>>,
    link: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Where a client connects: the symlink if one was asked for, else the current device.
    pub fn path(&self) -> String {
        match &self.link {
            Some(l) => l.display().to_string(),
            None => self.path.lock().map(|p| p.clone()).unwrap_or_default(),
        }
    }

    /// Stop at once (also on drop).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(l) = &self.link {
            let _ = std::fs::remove_file(l);
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Bytes a second a line needs on the wire at the profile's line rate.
pub fn link_bytes_per_second(profile: &ScannerProfile, speed: f64) -> f64 {
    (codec::OVERHEAD + 8 + 4 * profile.channels as usize) as f64 * profile.line_rate_hz * speed
}

struct Port {
    port: Box<dyn SerialPort>,
    _slave: Option<serialport::TTYPort>,
}

fn replace_link(link: &Path, target: &str) -> std::io::Result<()> {
    let tmp = link.with_extension("twinspect-tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

fn set_nonblocking(port: &serialport::TTYPort) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = port.as_raw_fd();
    // SAFETY: fcntl on a file descriptor this port owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Write all of `bytes` unless the port stays full for `patience` (then `TimedOut`).
fn write_within(port: &mut dyn SerialPort, mut bytes: &[u8], patience: Duration) -> std::io::Result<()> {
    let mut stalled_since: Option<Instant> = None;
    while !bytes.is_empty() {
        match port.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                stalled_since = None;
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= patience {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn open_target(target: &SerialTarget) -> anyhow::Result<(Port, String)> {
    match target {
        SerialTarget::Pty { link } => {
            let (mut master, slave) = serialport::TTYPort::pair()
                .map_err(|e| anyhow::anyhow!("cannot create a pseudo-terminal: {e}"))?;
            master.set_timeout(Duration::from_millis(50))?;
            // Non-blocking: a write to a terminal nobody reads must time out, not hang (a blocking
            // write waits for the whole frame however long that takes).
            set_nonblocking(&master)?;
            let name = slave.name().ok_or_else(|| anyhow::anyhow!("pseudo-terminal without a name"))?;
            if let Some(l) = link {
                replace_link(l, &name).map_err(|e| anyhow::anyhow!("symlink {}: {e}", l.display()))?;
            }
            // The pair's own terminal end stays open (unlocked: a client may open it too), so
            // writes do not fail while no client is there; they fill its buffer and time out.
            Ok((Port { port: Box::new(master), _slave: Some(slave) }, name))
        }
        SerialTarget::Device(o) => {
            let port = o
                .builder(Duration::from_millis(200))
                .open()
                .map_err(|e| anyhow::anyhow!("{}: {e}", o.path))?;
            Ok((Port { port, _slave: None }, o.path.clone()))
        }
    }
}

enum Sent {
    Yes,
    /// Nobody is reading: the port's buffer stayed full for the write timeout.
    Blocked,
    /// The port is gone.
    Failed,
}

/// The emulator's side of the link: frame numbering and the impairments.
struct Link {
    seq: u32,
    rng: Rng,
    impair: Impairments,
    stats: Arc<EmulatorStats>,
    bytes: Vec<u8>,
}

impl Link {
    /// Encode and send one frame through the impairments.
    fn send(&mut self, port: &mut dyn SerialPort, frame: &Frame) -> Sent {
        let r = Ordering::Relaxed;
        self.bytes.clear();
        if codec::encode(self.seq, frame, &mut self.bytes).is_err() {
            return Sent::Yes; // the script never makes such frames
        }
        self.seq = self.seq.wrapping_add(1);
        if matches!(frame, Frame::Line { .. }) {
            self.stats.lines.fetch_add(1, r);
        }
        if self.rng.chance(self.impair.loss) {
            self.stats.frames_dropped.fetch_add(1, r);
            return Sent::Yes;
        }
        if self.rng.chance(self.impair.corrupt) {
            let i = self.rng.int(0, self.bytes.len() as i64 - 1) as usize;
            self.bytes[i] ^= 1 << self.rng.int(0, 7);
            self.stats.frames_corrupted.fetch_add(1, r);
        }
        if self.rng.chance(self.impair.noise) {
            let n = self.rng.int(1, 64) as usize;
            let noise: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
            self.bytes.splice(0..0, noise);
            self.stats.noise_bursts.fetch_add(1, r);
        }
        match write_within(port, &self.bytes, Duration::from_millis(50)) {
            Ok(()) => {
                self.stats.frames.fetch_add(1, r);
                self.stats.bytes.fetch_add(self.bytes.len() as u64, r);
                Sent::Yes
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                self.stats.unsent.fetch_add(1, r);
                Sent::Blocked
            }
            Err(_) => Sent::Failed,
        }
    }
}

/// The emulated scanner's running state.
struct Server {
    profile: ScannerProfile,
    opts: EmulatorOptions,
    target: SerialTarget,
    script: Script,
    link: Link,
    port: Option<Port>,
    path: Arc<Mutex<String>>,
    stats: Arc<EmulatorStats>,
    stop: Arc<AtomicBool>,
    belt_running: bool,
    reversed: bool,
    started: Instant,
    decoder: Decoder,
    /// Answers to commands, sent before the next lines.
    replies: Vec<Frame>,
}

impl Server {
    fn status(&self) -> Frame {
        let mut state = Status::TUBE_ON;
        if self.belt_running {
            state |= Status::BELT_RUNNING;
        }
        if self.reversed {
            state |= Status::BELT_REVERSED;
        }
        let (p, speed) = (&self.profile, self.opts.speed);
        Frame::Status(Status {
            state,
            kv_x10: (p.kvp * 10).min(u32::from(u16::MAX)) as u16,
            ma_x100: 100,
            temp_c_x10: 315,
            belt_mm_s: (p.belt_speed_m_s * 1000.0 * speed).round().min(65535.0) as u16,
            line_rate_hz: (p.line_rate_hz * speed).round().min(65535.0) as u16,
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Read and answer host commands.
    fn commands(&mut self) {
        let Some(p) = self.port.as_mut() else { return };
        if p.port.bytes_to_read().unwrap_or(0) == 0 {
            return;
        }
        let mut rx = [0u8; 1024];
        let Ok(n) = p.port.read(&mut rx) else { return };
        let mut got = Vec::new();
        self.decoder.push(&rx[..n], |r| got.push(r));
        for r in got {
            let Frame::Command { command } = r.frame else { continue };
            self.stats.commands.fetch_add(1, Ordering::Relaxed);
            let result = match Command::from_u8(command) {
                Some(Command::BeltStart) => {
                    self.belt_running = true;
                    0
                }
                Some(Command::BeltStop) => {
                    self.belt_running = false;
                    0
                }
                Some(Command::BeltReverse) => {
                    self.reversed = !self.reversed;
                    0
                }
                Some(Command::SendStatus) => 0,
                Some(Command::Calibrate) => {
                    self.script.calibrate();
                    0
                }
                None => 2,
            };
            self.replies.push(Frame::Ack { frame: r.seq, command, result });
            let st = self.status();
            self.replies.push(st);
        }
    }

    /// Send a batch; the rest of it is lost when nobody reads or the port fails.
    fn transmit(&mut self, frames: &[Frame]) {
        let Some(p) = self.port.as_mut() else {
            self.stats.frames_dropped.fetch_add(frames.len() as u64, Ordering::Relaxed);
            return;
        };
        for (k, f) in frames.iter().enumerate() {
            match self.link.send(p.port.as_mut(), f) {
                Sent::Yes => {}
                Sent::Blocked => {
                    // Like bits sent down a cable with nothing at the other end.
                    self.stats.unsent.fetch_add((frames.len() - k - 1) as u64, Ordering::Relaxed);
                    return;
                }
                Sent::Failed => {
                    self.port = None;
                    return;
                }
            }
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }

    fn reopen(&mut self) -> bool {
        match open_target(&self.target) {
            Ok((p, name)) => {
                if let Ok(mut g) = self.path.lock() {
                    *g = name;
                }
                self.port = Some(p);
                true
            }
            Err(e) => {
                log::warn!("emulator: reopening the link: {e}");
                false
            }
        }
    }

    fn run(mut self) {
        let rate = self.profile.line_rate_hz * self.opts.speed.max(1e-3);
        let t0 = Instant::now();
        let mut lines_done: u64 = 0;
        let mut last_tick = t0 - Duration::from_secs(1);
        let every = self.opts.impair.disconnect_every;
        let outage = self.opts.impair.disconnect_for;
        let mut next_disconnect = every.map(|d| t0 + d);
        let mut reconnect_at: Option<Instant> = None;
        while !self.stopped() {
            let now = Instant::now();
            // Injected disconnects: the link disappears, the belt keeps running.
            if let (Some(at), Some(every)) = (next_disconnect, every)
                && now >= at
                && self.port.is_some()
            {
                self.port = None;
                self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
                reconnect_at = Some(now + outage);
                next_disconnect = Some(now + outage + every);
            }
            if self.port.is_none() && reconnect_at.is_none() {
                reconnect_at = Some(now + Duration::from_millis(200)); // the device failed
            }
            if let Some(at) = reconnect_at
                && now >= at
            {
                reconnect_at = if self.reopen() { None } else { Some(now + Duration::from_millis(200)) };
            }
            self.commands();
            let mut frames = std::mem::take(&mut self.replies);
            if now.duration_since(last_tick) >= Duration::from_secs(1) {
                last_tick = now;
                let uptime_ms = self.started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
                frames.push(Frame::Heartbeat { uptime_ms });
                frames.push(self.status());
            }
            // Lines due by now, at most 50 ms of them per round: a slow machine falls behind
            // (and says so in its line rate), it does not stall.
            let due = (t0.elapsed().as_secs_f64() * rate) as u64;
            let n = due.saturating_sub(lines_done).min((rate * 0.05).ceil() as u64 + 1);
            lines_done = lines_done.max(due.saturating_sub((rate * 0.5) as u64)) + n;
            if self.belt_running {
                let mut made = 0;
                while made < n && !self.stopped() {
                    let f = self.script.next_frame();
                    made += u64::from(matches!(f, Frame::Line { .. }));
                    frames.push(f);
                }
            }
            self.stats.bags.store(u64::from(self.script.bags()), Ordering::Relaxed);
            self.transmit(&frames);
            if frames.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Serve the synthetic scanner over a serial link until dropped.
pub fn serve_serial(
    profile: &ScannerProfile,
    opts: EmulatorOptions,
    target: SerialTarget,
) -> anyhow::Result<Emulator> {
    let mut script = match &opts.replay {
        Some(p) => Script::from_recording(profile, p)?,
        None => Script::new(profile, opts.seed, opts.gap_mm)?,
    };
    script.signal_bags = opts.signal_bags;
    script.drift = opts.drift;
    let (port, name) = open_target(&target)?;
    let stats = Arc::new(EmulatorStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let path = Arc::new(Mutex::new(name));
    let link = match &target {
        SerialTarget::Pty { link } => link.clone(),
        SerialTarget::Device(_) => None,
    };
    let server = Server {
        profile: profile.clone(),
        link: Link {
            seq: 0,
            rng: Rng::new(opts.impair.seed ^ 0x5EED),
            impair: opts.impair.clone(),
            stats: stats.clone(),
            bytes: Vec::new(),
        },
        opts,
        target,
        script,
        port: Some(port),
        path: path.clone(),
        stats: stats.clone(),
        stop: stop.clone(),
        belt_running: true,
        reversed: false,
        started: Instant::now(),
        decoder: Decoder::new(),
        replies: Vec::new(),
    };
    let thread = std::thread::Builder::new().name("scanner emulator".into()).spawn(move || server.run())?;
    Ok(Emulator { stats, path, link, stop, thread: Some(thread) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_calibrates_then_scans_bags_with_contiguous_numbers() {
        let p = ScannerProfile::load("desk-140").unwrap();
        let mut s = Script::new(&p, 3, 20.0).unwrap();
        let mut kinds = Vec::new();
        let mut markers = Vec::new();
        let mut last = None;
        while markers.len() < 4 {
            match s.next_frame() {
                Frame::Line { line, kind, low, .. } => {
                    assert_eq!(low.len(), 1536);
                    if let Some(l) = last {
                        assert_eq!(line, l + 1);
                    }
                    last = Some(line);
                    kinds.push(kind);
                }
                m => markers.push(m),
            }
        }
        let c = super::super::CALIBRATION_LINES;
        assert!(kinds[..c].iter().all(|k| *k == WireLineKind::Dark));
        assert!(kinds[c..2 * c].iter().all(|k| *k == WireLineKind::Air));
        assert!(kinds[2 * c..].iter().all(|k| *k == WireLineKind::Scan));
        assert!(matches!(&markers[0], Frame::BagStart { bag: 0, tag } if tag == "TS0000030000"));
        assert_eq!(markers[1], Frame::BagEnd { bag: 0 });
        assert!(matches!(markers[2], Frame::BagStart { bag: 1, .. }));
        // a calibration on command comes next, numbered on
        s.calibrate();
        match s.next_frame() {
            Frame::Line { line, kind, .. } => {
                assert_eq!(kind, WireLineKind::Dark);
                assert_eq!(line, last.unwrap() + 1);
            }
            f => panic!("{f:?}"),
        }
    }
}
