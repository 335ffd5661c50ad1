//! The serial-line scanner driver: opens the port (baud, parity, data and stop bits, flow control
//! from the URL), turns the byte stream into [`SourceEvent`]s through the [`codec`], sends host
//! commands, and survives a pulled cable: a read error or a vanished device closes the port and
//! reopens it every `reconnect` until it is back; silence longer than `silence` marks the link
//! down without closing it (an RS-422 cable pulled gives no error, only silence).
//!
//! Owns: [`SerialOptions`] (from a `serial://` URL), [`spawn`], line-number widening (wrap and
//! restart). Counters go to [`SourceStats`]; gaps in line numbers are left for the assembler to
//! show as missing lines.
//!
//! Must not import: egui, wgpu.

pub mod codec;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use serialport::{DataBits, FlowControl, Parity, StopBits};

use super::url::{SourceUrl, UrlError};
use super::{RunningSource, ScannerStatus, Silence, SourceEvent, SourceStats, send};
use crate::domain::scan::{LineKind, RawLine};
use codec::{Command, Decoder, Frame, WireLineKind};

#[derive(Clone, Debug)]
pub struct SerialOptions {
    pub path: String,
    pub baud: u32,
    pub parity: Parity,
    pub data_bits: DataBits,
    pub stop_bits: StopBits,
    pub flow: FlowControl,
    /// Time between attempts to reopen a lost port.
    pub reconnect: Duration,
    /// Silence after which the link is reported down (the scanner sends a heartbeat every second).
    pub silence: Duration,
    /// Channel capacity in events.
    pub capacity: usize,
}

impl SerialOptions {
    pub fn new(path: impl Into<String>) -> Self {
        SerialOptions {
            path: path.into(),
            baud: 3_000_000,
            parity: Parity::None,
            data_bits: DataBits::Eight,
            stop_bits: StopBits::One,
            flow: FlowControl::None,
            reconnect: Duration::from_millis(500),
            silence: Duration::from_secs(2),
            capacity: 8192,
        }
    }

    /// `serial:///dev/ttyUSB0?baud=3000000&parity=none&data=8&stop=1&flow=none`
    /// (`reconnect_ms`, `silence_ms` too).
    pub fn from_url(u: &SourceUrl) -> Result<Self, UrlError> {
        u.only_keys(&["baud", "parity", "data", "stop", "flow", "reconnect_ms", "silence_ms", "profile"])?;
        let bad = |key: &str, why: &str| UrlError::Value {
            key: key.into(),
            value: u.get_str(key).unwrap_or("").into(),
            why: why.into(),
        };
        if u.location.is_empty() {
            return Err(UrlError::Value {
                key: "path".into(),
                value: String::new(),
                why: "a serial URL names the device: serial:///dev/ttyUSB0".into(),
            });
        }
        let mut o = SerialOptions::new(&u.location);
        o.baud = u.get("baud", o.baud)?;
        if !(50..=50_000_000).contains(&o.baud) {
            return Err(bad("baud", "out of range 50..50000000"));
        }
        o.parity = match u.get_str("parity").unwrap_or("none") {
            "none" => Parity::None,
            "odd" => Parity::Odd,
            "even" => Parity::Even,
            _ => return Err(bad("parity", "none, odd or even")),
        };
        o.data_bits = match u.get("data", 8u8)? {
            5 => DataBits::Five,
            6 => DataBits::Six,
            7 => DataBits::Seven,
            8 => DataBits::Eight,
            _ => return Err(bad("data", "5, 6, 7 or 8")),
        };
        o.stop_bits = match u.get("stop", 1u8)? {
            1 => StopBits::One,
            2 => StopBits::Two,
            _ => return Err(bad("stop", "1 or 2")),
        };
        o.flow = match u.get_str("flow").unwrap_or("none") {
            "none" => FlowControl::None,
            "software" | "xonxoff" => FlowControl::Software,
            "hardware" | "rtscts" => FlowControl::Hardware,
            _ => return Err(bad("flow", "none, software or hardware")),
        };
        if o.data_bits != DataBits::Eight {
            // The protocol is binary: fewer data bits cannot carry it. Accepted for the record,
            // refused here with the reason rather than producing only CRC errors.
            return Err(bad("data", "the line protocol needs 8 data bits"));
        }
        if o.flow == FlowControl::Software {
            return Err(bad("flow", "XON/XOFF would eat binary data bytes: use none or hardware"));
        }
        o.reconnect = Duration::from_millis(u.get("reconnect_ms", 500u64)?.clamp(10, 60_000));
        o.silence = Duration::from_millis(u.get("silence_ms", 2000u64)?.clamp(50, 600_000));
        Ok(o)
    }

    /// The port with these settings and a read/write timeout (the driver and the emulator open
    /// devices the same way).
    pub fn builder(&self, timeout: Duration) -> serialport::SerialPortBuilder {
        serialport::new(&self.path, self.baud)
            .parity(self.parity)
            .data_bits(self.data_bits)
            .stop_bits(self.stop_bits)
            .flow_control(self.flow)
            .timeout(timeout)
    }

    pub fn url(&self) -> String {
        format!("serial://{}?baud={}", self.path, self.baud)
    }
}

/// Widens 32-bit wire line numbers to the 64-bit sequence the assembler uses: wraps continue, a
/// number far behind the last is a restarted scanner (reported, no gap).
#[derive(Debug, Default)]
pub struct LineNumbers {
    last: Option<u64>,
}

impl LineNumbers {
    /// The widened number, and whether the scanner restarted its numbering.
    pub fn widen(&mut self, wire: u32) -> (u64, bool) {
        let (seq, restarted) = match self.last {
            None => (u64::from(wire), false),
            Some(last) => {
                let step = wire.wrapping_sub(last as u32);
                if step == 0 || step >= 1 << 31 { (last + 1, true) } else { (last + u64::from(step), false) }
            }
        };
        self.last = Some(seq);
        (seq, restarted)
    }
}

fn status(s: &codec::Status) -> ScannerStatus {
    use codec::Status as S;
    ScannerStatus {
        tube_on: s.state & S::TUBE_ON != 0,
        belt_running: s.state & S::BELT_RUNNING != 0,
        belt_reversed: s.state & S::BELT_REVERSED != 0,
        interlock_open: s.state & S::INTERLOCK_OPEN != 0,
        fault: s.state & S::FAULT != 0,
        kv: f32::from(s.kv_x10) / 10.0,
        ma: f32::from(s.ma_x100) / 100.0,
        temp_c: f32::from(s.temp_c_x10) / 10.0,
        belt_mm_s: f32::from(s.belt_mm_s),
        line_rate_hz: f32::from(s.line_rate_hz),
    }
}

/// Turns decoded frames into source events.
#[derive(Debug, Default)]
pub struct FrameMapper {
    pub lines: LineNumbers,
}

impl FrameMapper {
    pub fn map(&mut self, frame: Frame, out: &mut Vec<SourceEvent>) {
        match frame {
            Frame::Line { line, kind, low, high } => {
                let (seq, restarted) = self.lines.widen(line);
                if restarted {
                    out.push(SourceEvent::Fault(format!(
                        "scanner restarted its line numbering (line {line}): no gap assumed"
                    )));
                }
                let kind = match kind {
                    WireLineKind::Dark => LineKind::Dark,
                    WireLineKind::Air => LineKind::Air,
                    WireLineKind::Scan => LineKind::Scan,
                };
                out.push(SourceEvent::Line(RawLine { seq, kind, low, high }));
            }
            Frame::BagStart { bag, tag } => out.push(SourceEvent::BagStart {
                bag: u64::from(bag),
                item_id: (!tag.is_empty()).then_some(tag),
            }),
            Frame::BagEnd { bag } => out.push(SourceEvent::BagEnd { bag: u64::from(bag) }),
            Frame::Status(s) => out.push(SourceEvent::Status(status(&s))),
            Frame::Fault { code, text } => {
                out.push(SourceEvent::Fault(format!("scanner fault {code}: {text}")))
            }
            Frame::Ack { command, result, .. } if result != 0 => out.push(SourceEvent::Fault(format!(
                "scanner {} command {command}",
                if result == 1 { "refused" } else { "did not know" }
            ))),
            Frame::Heartbeat { .. } | Frame::Ack { .. } | Frame::Command { .. } => {}
        }
    }
}

fn open_port(o: &SerialOptions) -> serialport::Result<Box<dyn serialport::SerialPort>> {
    let port = o.builder(Duration::from_millis(50)).open()?;
    // What was queued before we opened belongs to nobody: start clean.
    let _ = port.clear(serialport::ClearBuffer::Input);
    Ok(port)
}

fn publish(stats: &SourceStats, d: &codec::DecodeStats) {
    let r = Ordering::Relaxed;
    stats.bytes.store(d.bytes, r);
    stats.crc_errors.store(d.header_errors + d.crc_errors, r);
    stats.bytes_skipped.store(d.bytes_skipped, r);
    stats.malformed.store(d.malformed + d.unknown, r);
    stats.frames_lost.store(d.frames_lost, r);
}

struct Driver {
    opts: SerialOptions,
    tx: Sender<SourceEvent>,
    commands: Receiver<crate::source::ScannerCommand>,
    stats: Arc<SourceStats>,
    stop: Arc<AtomicBool>,
    decoder: Decoder,
    mapper: FrameMapper,
    command_seq: u32,
}

enum Ended {
    Stop,
    Lost(String),
}

impl Driver {
    fn emit(&self, ev: SourceEvent) -> bool {
        send(&self.tx, &self.stats, ev)
    }

    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10).min(d));
        }
        !self.stop.load(Ordering::Relaxed)
    }

    /// Commands given while the link is down are not kept for later (a belt stop sent minutes
    /// late would surprise everyone): each is reported as not sent.
    fn refuse_commands(&self) {
        while let Ok(c) = self.commands.try_recv() {
            let _ = self.emit(SourceEvent::Fault(format!("{c:?} not sent to the scanner: the link is down")));
        }
    }

    fn run(mut self) {
        let mut ever_up = false;
        let mut down_reported = false;
        while !self.stop.load(Ordering::Relaxed) {
            let port = match open_port(&self.opts) {
                Ok(p) => p,
                Err(e) => {
                    if !down_reported {
                        let detail = format!(
                            "cannot open {}: {e}; retrying every {} ms",
                            self.opts.path,
                            self.opts.reconnect.as_millis()
                        );
                        if !self.emit(SourceEvent::Link { up: false, detail }) {
                            return;
                        }
                        down_reported = true;
                    }
                    self.refuse_commands();
                    if !self.sleep(self.opts.reconnect) {
                        return;
                    }
                    continue;
                }
            };
            if ever_up {
                self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            ever_up = true;
            self.stats.connected.store(true, Ordering::Relaxed);
            self.decoder.reset_link();
            let detail = format!("{} open at {} baud", self.opts.path, self.opts.baud);
            if !self.emit(SourceEvent::Link { up: true, detail }) {
                return;
            }
            let ended = self.pump(port);
            self.stats.connected.store(false, Ordering::Relaxed);
            match ended {
                Ended::Stop => return,
                Ended::Lost(why) => {
                    if !self.emit(SourceEvent::Link { up: false, detail: why }) {
                        return;
                    }
                    self.refuse_commands();
                    down_reported = true;
                    if !self.sleep(self.opts.reconnect) {
                        return;
                    }
                }
            }
        }
    }

    fn pump(&mut self, mut port: Box<dyn serialport::SerialPort>) -> Ended {
        // Whatever the scanner sent before we listened is gone, its calibration cycle with it:
        // ask for a fresh one (dark and air lines are never shown, so this costs no image).
        let mut out = Vec::new();
        codec::encode(self.command_seq, &Frame::Command { command: Command::Calibrate as u8 }, &mut out)
            .expect("a command always encodes");
        self.command_seq = self.command_seq.wrapping_add(1);
        if let Err(e) = port.write_all(&out).and_then(|_| port.flush()) {
            return Ended::Lost(format!("{}: write failed: {e}", self.opts.path));
        }
        let mut buf = vec![0u8; 1 << 16];
        let mut events = Vec::new();
        let mut silence = Silence::new(self.opts.silence);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ended::Stop;
            }
            while let Ok(c) = self.commands.try_recv() {
                use crate::source::{Belt, ScannerCommand as C};
                let c = match c {
                    C::Belt(Belt::Forward) => Command::BeltStart,
                    C::Belt(Belt::Stop) => Command::BeltStop,
                    C::Belt(Belt::Reverse) => Command::BeltReverse,
                    C::Calibrate => Command::Calibrate,
                };
                out.clear();
                codec::encode(self.command_seq, &Frame::Command { command: c as u8 }, &mut out)
                    .expect("a command always encodes");
                self.command_seq = self.command_seq.wrapping_add(1);
                if let Err(e) = port.write_all(&out).and_then(|_| port.flush()) {
                    return Ended::Lost(format!("{}: write failed: {e}", self.opts.path));
                }
            }
            match port.read(&mut buf) {
                Ok(0) => return Ended::Lost(format!("{}: hung up", self.opts.path)),
                Ok(n) => {
                    let path = &self.opts.path;
                    if let Some(ev) = silence.heard(&self.stats, || format!("{path}: data again"))
                        && !self.emit(ev)
                    {
                        return Ended::Stop;
                    }
                    let mapper = &mut self.mapper;
                    self.decoder.push(&buf[..n], |r| mapper.map(r.frame, &mut events));
                    publish(&self.stats, &self.decoder.stats);
                    for ev in events.drain(..) {
                        if let SourceEvent::BagStart { .. } = ev {
                            self.stats.bags.fetch_add(1, Ordering::Relaxed);
                        }
                        if !send(&self.tx, &self.stats, ev) {
                            return Ended::Stop;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    let path = &self.opts.path;
                    let why =
                        |s| format!("{path}: no data from the scanner for {s:.1} s (cable? scanner power?)");
                    if let Some(ev) = silence.quiet(&self.stats, why)
                        && !self.emit(ev)
                    {
                        return Ended::Stop;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Ended::Lost(format!("{}: {e}", self.opts.path)),
            }
        }
    }
}

/// Start the serial driver thread.
pub fn spawn(opts: SerialOptions) -> RunningSource {
    let (tx, rx) = bounded(opts.capacity.max(16));
    let (ctx, crx) = bounded(16);
    let stats = Arc::new(SourceStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let description = opts.url();
    let driver = Driver {
        opts,
        tx,
        commands: crx,
        stats: stats.clone(),
        stop: stop.clone(),
        decoder: Decoder::new(),
        mapper: FrameMapper::default(),
        command_seq: 0,
    };
    let thread = crate::source::spawn_thread("serial source", &description, move || driver.run())
        .expect("spawn serial source thread");
    RunningSource { events: rx, stats, description, commands: Some(ctx), stop, thread: Some(thread) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_widen_across_wraps_and_restarts() {
        let mut n = LineNumbers::default();
        assert_eq!(n.widen(u32::MAX - 1), (u64::from(u32::MAX) - 1, false));
        assert_eq!(n.widen(u32::MAX), (u64::from(u32::MAX), false));
        assert_eq!(n.widen(2), (u64::from(u32::MAX) + 3, false), "wrap with two lines lost");
        let (s, restarted) = n.widen(0);
        assert!(restarted);
        assert_eq!(s, u64::from(u32::MAX) + 4, "a restart continues without a gap");
        assert_eq!(n.widen(1).0, u64::from(u32::MAX) + 5);
    }

    #[test]
    fn options_from_urls_with_reasons_for_refusals() {
        let o = SerialOptions::from_url(
            &SourceUrl::parse("serial:///dev/ttyS1?baud=115200&parity=even&stop=2&flow=hardware").unwrap(),
        )
        .unwrap();
        assert_eq!((o.path.as_str(), o.baud), ("/dev/ttyS1", 115_200));
        assert_eq!((o.parity, o.stop_bits, o.flow), (Parity::Even, StopBits::Two, FlowControl::Hardware));
        for (url, needle) in [
            ("serial://?baud=9600", "names the device"),
            ("serial:///dev/x?parity=mark", "none, odd or even"),
            ("serial:///dev/x?data=7", "8 data bits"),
            ("serial:///dev/x?flow=software", "XON/XOFF"),
            ("serial:///dev/x?baud=0", "out of range"),
            ("serial:///dev/x?speed=1", "unknown option `speed`"),
        ] {
            let e = SerialOptions::from_url(&SourceUrl::parse(url).unwrap()).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }
}
