//! The serial scanner emulator: the [`Script`] spoken in the serial line protocol
//! (`hardware/serial-protocol.md`) at the profile's line rate, over a pseudo-terminal it creates
//! or a serial device it opens, with injectable faults (lost frames, corrupted bytes, noise bursts,
//! disconnects). Integrators test their set-up with it; the tests test the driver with it.
//!
//! Owns: [`Impairments`], [`serve_serial`] and its [`EmulatorStats`]; the host-command handling
//! (belt start/stop/reverse, status, calibrate, each acknowledged); an injected open interlock
//! and generator fault.
//!
//! Must not import: egui, wgpu, the serial driver (it speaks the codec only).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::SerialPort;

use super::Script;
use crate::domain::profile::ScannerProfile;
use crate::domain::rng::Rng;
use crate::source::serial::SerialOptions;
use crate::source::serial::codec::{self, Command, Decoder, Frame, Status};

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
    /// The tunnel's interlock opens this long after start (a curtain pulled, a hatch opened):
    /// the tube goes off and the belt stops, as the scanner's safety circuit does.
    pub interlock_after: Option<Duration>,
    /// The generator faults this long after start: a FAULT frame with code [`FAULT_CODE`],
    /// the status's fault bit, the tube off.
    pub fault_after: Option<Duration>,
}

/// The fault the emulator injects, and its words.
pub const FAULT_CODE: u16 = 301;
pub const FAULT_TEXT: &str = "X-ray generator: tube over-temperature";

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
            interlock_after: None,
            fault_after: None,
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
    /// Injected: the interlock is open; the generator has faulted.
    interlock: bool,
    fault: bool,
    started: Instant,
    decoder: Decoder,
    /// Answers to commands, sent before the next lines.
    replies: Vec<Frame>,
}

impl Server {
    fn status(&self) -> Frame {
        // The tube is on while the belt carries bags through the beam.
        let mut state = if self.forward() { Status::TUBE_ON } else { 0 };
        if self.interlock {
            state |= Status::INTERLOCK_OPEN;
        }
        if self.fault {
            state |= Status::FAULT;
        }
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

    fn forward(&self) -> bool {
        self.belt_running && !self.reversed && !self.interlock && !self.fault
    }

    /// The injected interlock and fault, when their time comes: said at once.
    fn inject(&mut self) {
        let due = |after: Option<Duration>| after.is_some_and(|d| self.started.elapsed() >= d);
        if !self.interlock && due(self.opts.interlock_after) {
            self.interlock = true;
            self.belt_running = false;
            let st = self.status();
            self.replies.push(st);
        }
        if !self.fault && due(self.opts.fault_after) {
            self.fault = true;
            self.replies.push(Frame::Fault { code: FAULT_CODE, text: FAULT_TEXT.into() });
            let st = self.status();
            self.replies.push(st);
        }
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
                    (self.belt_running, self.reversed) = (true, false);
                    0
                }
                Some(Command::BeltStop) => {
                    self.belt_running = false;
                    0
                }
                Some(Command::BeltReverse) => {
                    if !(self.belt_running && self.reversed)
                        && let Some(end) = self.script.reverse()
                    {
                        self.replies.push(end);
                    }
                    (self.belt_running, self.reversed) = (true, true);
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
                tracing::warn!("emulator: reopening the link: {e}");
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
            self.inject();
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
            if !self.forward() {
                // Nothing goes through the beam: the line clock waits with the belt.
                lines_done = due;
            } else {
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
        interlock: false,
        fault: false,
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
    use crate::source::CALIBRATION_LINES;
    use crate::source::serial::codec::WireLineKind;

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
        let c = CALIBRATION_LINES;
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
