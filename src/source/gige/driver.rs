//! The `gige://` line source: a GigE Vision line-scan detector driven through its own GenICam
//! features, its blocks turned into dual-energy lines.
//!
//! On connect the driver takes control, sets Width/Height/PixelFormat (Mono16) and
//! AcquisitionMode from the device's XML (refused with the device's reason when a value is out of
//! its range), points the stream channel at the local address that routes to the device, and, if
//! the device has an `XrayMode` feature (the emulator's, or a detector wired to the generator),
//! runs a calibration cycle: dark lines (beam off), then air lines (beam on, belt empty), each in
//! its own acquisition so no block mixes modes. Then it streams: packets into blocks (resends
//! asked for missing packets), blocks into numbered lines, a heartbeat well within the device's
//! timeout. Lines of packets that never came, blocks that never came, and the time the device was
//! gone become gaps in the line numbers, shown as missing, never stitched. A device that stops
//! answering is reported (link down, with why) and reconnected.
//!
//! Owns: [`GigeSourceOptions`] (from `gige://ADDRESS?layout=...&lines=...&packet=...`),
//! [`spawn`]. Must not import: egui, wgpu.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};

use super::genicam::NodeMap;
use super::gvcp::reg;
use super::gvsp::{self, Block, Blocks};
use super::lines::{DualLayout, block_lines};
use super::{GigeError, Gvcp};
use crate::domain::scan::LineKind;
use crate::source::url::{SourceUrl, UrlError};
use crate::source::{RunningSource, Silence, SourceEvent, SourceStats, send};

/// How to reach and drive a GigE Vision detector.
#[derive(Clone, Debug)]
pub struct GigeSourceOptions {
    /// The device's address (found by discovery when `serial` names it instead).
    pub ip: Ipv4Addr,
    /// Find the device by its serial number (broadcast discovery on every interface).
    pub serial: Option<String>,
    /// Detector channels per energy (the scanner profile's).
    pub channels: usize,
    pub layout: DualLayout,
    /// Lines per block (the block's Height is twice this for alternating rows).
    pub lines_per_block: u32,
    /// Stream packet size (SCPS: IP and UDP headers included), 576..=16384.
    pub packet_size: u32,
    /// Ask for missing packets again (PACKETRESEND).
    pub resend: bool,
    /// 64-bit block ids (GigE Vision 2.0), switched on at the device; else 16-bit ids that wrap.
    pub extended_ids: bool,
    /// Run a dark/air cycle through the device's `XrayMode` feature when it has one.
    pub calibrate: bool,
    pub calibration_lines: usize,
    /// Also deliver each block as it arrived ([`SourceEvent::RawBlock`]).
    pub raw: bool,
    /// The profile's line rate: how many lines a disconnection cost.
    pub line_rate_hz: f64,
    pub capacity: usize,
    pub reconnect: Duration,
    /// No stream packet for this long while acquiring is reported as link down.
    pub silence: Duration,
}

impl GigeSourceOptions {
    pub fn new(ip: Ipv4Addr, channels: usize) -> Self {
        GigeSourceOptions {
            ip,
            serial: None,
            channels,
            layout: DualLayout::AlternatingRows,
            lines_per_block: 64,
            packet_size: 1500,
            resend: true,
            extended_ids: false,
            calibrate: true,
            raw: false,
            calibration_lines: crate::source::CALIBRATION_LINES,
            line_rate_hz: 300.0,
            capacity: 8192,
            reconnect: Duration::from_secs(1),
            silence: Duration::from_secs(2),
        }
    }

    /// `gige://192.168.1.20?layout=alternating_rows&lines=64&packet=1500&resend=on&calibrate=on`
    /// (`reconnect_ms`, `silence_ms` too).
    pub fn from_url(u: &SourceUrl, channels: usize, line_rate_hz: f64) -> Result<Self, UrlError> {
        u.only_keys(&[
            "layout",
            "lines",
            "packet",
            "resend",
            "calibrate",
            "raw",
            "ids",
            "reconnect_ms",
            "silence_ms",
            "profile",
        ])?;
        let bad = |key: &str, why: &str| UrlError::Value {
            key: key.into(),
            value: u.get_str(key).unwrap_or(&u.location).into(),
            why: why.into(),
        };
        // gige://192.168.1.20, or gige://SERIAL (found by broadcast discovery)
        let loc = u.location.trim_end_matches('/');
        let (ip, serial) = match loc.parse::<Ipv4Addr>() {
            Ok(ip) => (ip, None),
            Err(_) if !loc.is_empty() && loc.len() <= 16 && loc.bytes().all(|b| b.is_ascii_graphic()) => {
                (Ipv4Addr::UNSPECIFIED, Some(loc.to_string()))
            }
            Err(_) => {
                return Err(bad(
                    "address",
                    "gige://ADDRESS names the device by its IPv4 address (gige://192.168.1.20) or its serial number (gige://TS-GIGE-0001, at most 16 characters)",
                ));
            }
        };
        let mut o = GigeSourceOptions::new(ip, channels);
        o.serial = serial;
        o.line_rate_hz = line_rate_hz;
        o.layout = match u.get_str("layout").unwrap_or("alternating_rows") {
            "alternating_rows" => DualLayout::AlternatingRows,
            "halves_of_row" => DualLayout::HalvesOfRow,
            _ => return Err(bad("layout", "alternating_rows or halves_of_row")),
        };
        o.lines_per_block = u.get("lines", o.lines_per_block)?;
        if !(1..=8192).contains(&o.lines_per_block) {
            return Err(bad("lines", "lines per block, 1 to 8192"));
        }
        o.packet_size = u.get("packet", o.packet_size)?;
        if !(576..=16384).contains(&o.packet_size) {
            return Err(bad("packet", "stream packet size in bytes, 576 to 16384"));
        }
        let on_off = |key: &str, default: bool| match u.get_str(key) {
            None => Ok(default),
            Some("on" | "true" | "1") => Ok(true),
            Some("off" | "false" | "0") => Ok(false),
            Some(_) => Err(bad(key, "on or off")),
        };
        o.resend = on_off("resend", true)?;
        o.calibrate = on_off("calibrate", true)?;
        o.raw = on_off("raw", false)?;
        o.extended_ids = match u.get_str("ids").unwrap_or("standard") {
            "standard" => false,
            "extended" => true,
            _ => return Err(bad("ids", "standard (16-bit block ids) or extended (64-bit, GigE Vision 2.0)")),
        };
        o.reconnect = Duration::from_millis(u.get("reconnect_ms", 1000u64)?.clamp(10, 60_000));
        o.silence = Duration::from_millis(u.get("silence_ms", 2000u64)?.clamp(50, 600_000));
        Ok(o)
    }

    pub fn url(&self) -> String {
        let layout = match self.layout {
            DualLayout::AlternatingRows => "alternating_rows",
            DualLayout::HalvesOfRow => "halves_of_row",
        };
        let at = self.serial.clone().unwrap_or_else(|| self.ip.to_string());
        format!("gige://{at}?layout={layout}&lines={}&packet={}", self.lines_per_block, self.packet_size)
    }
}

enum Ended {
    Stop,
    Lost(String),
}

/// A connected, configured device.
struct Session {
    ctl: Gvcp,
    map: NodeMap,
    rx: UdpSocket,
    chunk: usize,
    payload: usize,
    beat: Duration,
    last_beat: Instant,
    has_xray_mode: bool,
    /// The belt as the device's `BeltControl` reads back (`None`: it has no such feature).
    belt: Option<crate::source::Belt>,
}

/// One acquisition (start to stop): its block assembly and where its lines are numbered from.
struct Acquisition {
    blocks: Blocks,
    first_id: Option<u64>,
    /// The newest block delivered.
    last_id: Option<u64>,
    seq_base: u64,
    /// One past the last line number this acquisition can have used.
    end_seq: u64,
    /// Packets asked for again, per block.
    requested: HashMap<u64, u64>,
    /// Finished blocks waiting for an older one (still open) to finish first.
    finished: BTreeMap<u64, Block>,
    last_resend_check: Instant,
}

struct Driver {
    opts: GigeSourceOptions,
    tx: Sender<SourceEvent>,
    commands: crossbeam_channel::Receiver<crate::source::ScannerCommand>,
    stats: Arc<SourceStats>,
    stop: Arc<AtomicBool>,
    next_seq: u64,
    /// What this acquisition's block counters have already added to the shared ones.
    incomplete_blocks: u64,
    malformed: u64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A 16-bit wire block id from a widened one (ids run 1..=65535, 0 is not used).
fn wire_id(id: u64) -> u16 {
    ((id.saturating_sub(1)) % 65535 + 1) as u16
}

/// Ask for a large kernel receive buffer: a stream arrives in bursts faster than one thread
/// turns it into lines, and what overflows the buffer is lost for good (whole blocks). As root
/// (or with CAP_NET_ADMIN) SO_RCVBUFFORCE passes the system's `net.core.rmem_max`; otherwise the
/// request is capped by it. Returns the size the kernel granted (it reports double the request).
fn set_receive_buffer(sock: &UdpSocket, bytes: usize) -> usize {
    let size = bytes.min(i32::MAX as usize / 2) as libc::c_int;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let fd = sock.as_raw_fd();
    // SAFETY: setsockopt/getsockopt on a socket we own, with pointers to live c_ints and their
    // sizes. A refusal leaves the smaller size, which the caller reports.
    unsafe {
        let p = (&size as *const libc::c_int).cast();
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, len) != 0 {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, len);
        }
        let mut got: libc::c_int = 0;
        let mut got_len = len;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut got_len,
        );
        usize::try_from(got).unwrap_or(0) / 2
    }
}

impl Driver {
    fn emit(&self, ev: SourceEvent) -> bool {
        send(&self.tx, &self.stats, ev)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stopped() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn run(mut self) {
        let mut ever_up = false;
        let mut down_reported = false;
        let mut down_since: Option<Instant> = None;
        loop {
            if self.stopped() {
                return;
            }
            let mut s = match self.connect() {
                Ok(s) => s,
                Err(why) => {
                    if !down_reported {
                        down_reported = true;
                        down_since.get_or_insert_with(Instant::now);
                        if !self.emit(SourceEvent::Link { up: false, detail: why }) {
                            return;
                        }
                    }
                    if !self.sleep(self.opts.reconnect) {
                        return;
                    }
                    continue;
                }
            };
            if ever_up {
                self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            // The lines the scanner scanned while we could not hear it are a gap, not a splice.
            if let Some(t) = down_since.take()
                && ever_up
            {
                let lost = (t.elapsed().as_secs_f64() * self.opts.line_rate_hz) as u64;
                self.next_seq += lost.max(u64::from(self.opts.lines_per_block));
            }
            ever_up = true;
            let ended = self.session(&mut s);
            self.stats.connected.store(false, Ordering::Relaxed);
            let _ = s.map.execute(&mut s.ctl, "AcquisitionStop");
            let _ = s.ctl.release();
            match ended {
                Ended::Stop => return,
                Ended::Lost(why) => {
                    down_since = Some(Instant::now());
                    down_reported = true;
                    if !self.emit(SourceEvent::Link { up: false, detail: why })
                        || !self.sleep(self.opts.reconnect)
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Take control and configure the device for dual-energy lines.
    fn connect(&mut self) -> Result<Session, String> {
        if let Some(sn) = self.opts.serial.clone() {
            // Looked up on every connect: a device may come back with another address (DHCP).
            let found = super::discover_all(Duration::from_millis(500)).map_err(err)?;
            let Some((ip, _)) = found.iter().find(|(_, info)| info.serial == sn) else {
                let seen: Vec<String> = found.iter().map(|(ip, i)| format!("{} at {ip}", i.serial)).collect();
                return Err(format!(
                    "gige://{sn}: no device with serial number {sn} answered discovery (seen: {})",
                    if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
                ));
            };
            self.opts.ip = *ip;
        }
        let o = &self.opts;
        let at = |e: GigeError| format!("gige://{}: {e}", o.ip);
        let mut ctl = Gvcp::new(o.ip).map_err(at)?;
        ctl.timeout = Duration::from_millis(300);
        ctl.tries = 3;
        let info = ctl.discover().map_err(at)?;
        let (_, xml) = ctl.xml().map_err(at)?;
        let mut map = NodeMap::load(&xml).map_err(|e| format!("gige://{}: {e}", o.ip))?;
        ctl.take_control().map_err(at)?;
        let feature = |e: super::genicam::GenicamError| {
            format!("{} {} at {}: {e}", info.manufacturer, info.model, o.ip)
        };
        // A device left acquiring by an earlier host refuses format changes.
        if map.has("AcquisitionStop") {
            let _ = map.execute(&mut ctl, "AcquisitionStop");
        }
        let (w, h) = o.layout.image_size(o.channels as u32, o.lines_per_block);
        for (name, v) in [("Width", i64::from(w)), ("Height", i64::from(h))] {
            if map.int(&mut ctl, name).map_err(feature)? != v {
                map.set_int(&mut ctl, name, v).map_err(feature)?;
            }
        }
        if map.enum_entry(&mut ctl, "PixelFormat").map_err(feature)? != "Mono16" {
            map.set_enum(&mut ctl, "PixelFormat", "Mono16").map_err(feature)?;
        }
        if map.entries("AcquisitionMode").is_ok_and(|e| e.iter().any(|x| x == "Continuous")) {
            map.set_enum(&mut ctl, "AcquisitionMode", "Continuous").map_err(feature)?;
        }
        // Block ids: the device's GVSP configuration says which; a device that cannot do 64-bit
        // ids keeps the bit clear, and is refused rather than misread.
        // (A device without the register streams 16-bit ids: fine unless 64-bit were asked for.)
        let config = match ctl.read_reg(reg::GVSP_CONFIG) {
            Ok(c) => c,
            Err(_) if !o.extended_ids => 0,
            Err(e) => return Err(at(e)),
        };
        let want = if o.extended_ids {
            config | super::gvcp::GVSP_CONFIG_EXTENDED_ID
        } else {
            config & !super::gvcp::GVSP_CONFIG_EXTENDED_ID
        };
        if want != config {
            ctl.write_reg(reg::GVSP_CONFIG, want).map_err(at)?;
        }
        // Read back whenever it matters: the device may have refused the change.
        let extended = if want != config || o.extended_ids {
            ctl.read_reg(reg::GVSP_CONFIG).map_err(at)? & super::gvcp::GVSP_CONFIG_EXTENDED_ID != 0
        } else {
            false
        };
        if extended != o.extended_ids {
            return Err(format!(
                "gige://{}: the device did not switch {} 64-bit block ids (GVSP configuration {config:#010x})",
                o.ip,
                if o.extended_ids { "to" } else { "off" }
            ));
        }
        let overhead = if extended { gvsp::EXTENDED_OVERHEAD } else { gvsp::STANDARD_OVERHEAD };
        ctl.write_reg(reg::SCPS0, o.packet_size).map_err(at)?;
        let scps = (ctl.read_reg(reg::SCPS0).map_err(at)? & 0xFFFF) as usize;
        let chunk = scps
            .checked_sub(overhead)
            .filter(|c| *c >= 4)
            .ok_or_else(|| format!("gige://{}: stream packet size {scps} leaves no room for data", o.ip))?;
        let local = ctl.local_ip().map_err(at)?;
        let rx = UdpSocket::bind(SocketAddrV4::new(local, 0))
            .map_err(|e| format!("stream socket on {local}: {e}"))?;
        let rcvbuf = set_receive_buffer(&rx, 64 << 20);
        rx.set_read_timeout(Some(Duration::from_millis(20))).map_err(err)?;
        let port = rx.local_addr().map_err(err)?.port();
        ctl.write_reg(reg::SCDA0, u32::from(local)).map_err(at)?;
        ctl.write_reg(reg::SCP0, u32::from(port)).map_err(at)?;
        let image = w as usize * h as usize * 2;
        let payload = match map.int(&mut ctl, "PayloadSize") {
            Ok(p) if p > 0 => (p as usize).max(image),
            _ => image,
        };
        let timeout_ms = ctl.read_reg(reg::HEARTBEAT_TIMEOUT).unwrap_or(3000).clamp(300, 60_000);
        let beat = Duration::from_millis(u64::from(timeout_ms) / 3);
        let has_xray_mode = map.has("XrayMode");
        let detail = format!(
            "{} {} (serial {}) at {}: {w} x {h} Mono16 blocks, {scps}-byte packets to {local}:{port}, {} MiB receive buffer{}",
            info.manufacturer,
            info.model,
            info.serial,
            o.ip,
            rcvbuf >> 20,
            if rcvbuf < 8 << 20 { " (small: raise net.core.rmem_max or run with CAP_NET_ADMIN)" } else { "" }
        );
        self.stats.connected.store(true, Ordering::Relaxed);
        if !self.emit(SourceEvent::Link { up: true, detail }) {
            return Err("stopped".into());
        }
        let mut s = Session {
            ctl,
            map,
            rx,
            chunk,
            payload,
            beat,
            last_beat: Instant::now(),
            has_xray_mode,
            belt: None,
        };
        s.belt = read_belt(&mut s);
        if let Some(b) = s.belt
            && !self.emit(SourceEvent::Belt(b))
        {
            return Err("stopped".into());
        }
        Ok(s)
    }

    fn session(&mut self, s: &mut Session) -> Ended {
        if self.opts.calibrate && s.has_xray_mode {
            for (entry, kind) in [("Dark", LineKind::Dark), ("Air", LineKind::Air)] {
                if let Err(e) = s.map.set_enum(&mut s.ctl, "XrayMode", entry) {
                    return Ended::Lost(format!("calibration ({entry}): {e}"));
                }
                let n = self.opts.calibration_lines;
                if let Some(end) = self.acquire(s, kind, Some(n)) {
                    return end;
                }
            }
            if let Err(e) = s.map.set_enum(&mut s.ctl, "XrayMode", "Scan") {
                return Ended::Lost(format!("calibration (Scan): {e}"));
            }
        }
        self.acquire(s, LineKind::Scan, None).unwrap_or(Ended::Stop)
    }

    /// One acquisition: start, deliver lines of `kind` (until `limit` lines, or for ever), stop.
    /// `None` when the limit was reached and the device is still ours.
    fn acquire(&mut self, s: &mut Session, kind: LineKind, limit: Option<usize>) -> Option<Ended> {
        let mut blocks = Blocks::new(s.chunk);
        blocks.max_bytes = s.payload;
        let mut acq = Acquisition {
            blocks,
            first_id: None,
            last_id: None,
            seq_base: self.next_seq,
            end_seq: self.next_seq,
            requested: HashMap::new(),
            finished: BTreeMap::new(),
            last_resend_check: Instant::now(),
        };
        if let Err(e) = s.map.execute(&mut s.ctl, "AcquisitionStart") {
            return Some(Ended::Lost(format!("AcquisitionStart: {e}")));
        }
        let ended = self.pump(s, &mut acq, kind, limit);
        let _ = s.map.execute(&mut s.ctl, "AcquisitionStop");
        // Whatever was in flight belongs to this acquisition: take it now, then number on.
        let quiet_until = Instant::now() + Duration::from_millis(500);
        let mut buf = vec![0u8; 65536];
        while Instant::now() < quiet_until {
            match s.rx.recv(&mut buf) {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        self.next_seq = acq.end_seq;
        ended
    }

    fn publish(&mut self, b: &Blocks) {
        let st = &self.stats;
        let add = |c: &std::sync::atomic::AtomicU64, now: u64, was: &mut u64| {
            c.fetch_add(now.saturating_sub(*was), Ordering::Relaxed);
            *was = now;
        };
        // Blocks' counters restart with each acquisition; the shared ones only grow. Blocks that
        // never came whole are counted here; blocks that never came at all (or without their
        // leader) by the jump in ids when the next one is delivered, so none counts twice.
        add(&st.frames_lost, b.stats.blocks_incomplete, &mut self.incomplete_blocks);
        add(&st.malformed, b.stats.malformed, &mut self.malformed);
    }

    fn pump(
        &mut self,
        s: &mut Session,
        acq: &mut Acquisition,
        kind: LineKind,
        limit: Option<usize>,
    ) -> Option<Ended> {
        self.incomplete_blocks = 0;
        self.malformed = 0;
        let mut buf = vec![0u8; 65536];
        let mut delivered = 0usize;
        let mut silence = Silence::new(self.opts.silence);
        let started = Instant::now();
        loop {
            if self.stopped() || !self.obey(s) {
                return Some(Ended::Stop);
            }
            if s.belt.is_some_and(|b| b != crate::source::Belt::Forward) {
                // A belt at rest sends no lines: that silence is not a lost link (the
                // heartbeat still answers).
                silence.hush();
            }
            if let Some(n) = limit
                && delivered >= n
            {
                return None;
            }
            match s.rx.recv(&mut buf) {
                Ok(n) => {
                    self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let ip = self.opts.ip;
                    if let Some(ev) =
                        silence.heard(&self.stats, || format!("gige://{ip}: stream packets again"))
                        && !self.emit(ev)
                    {
                        return Some(Ended::Stop);
                    }
                    for block in acq.blocks.push(&buf[..n]) {
                        acq.finished.insert(block.id, block);
                    }
                    // In id order: a block still waiting for a resend holds back later ones.
                    let hold_from = acq.blocks.oldest_open().unwrap_or(u64::MAX);
                    while let Some(id) = acq.finished.first_key_value().map(|(id, _)| *id) {
                        if id > hold_from {
                            break;
                        }
                        let block = acq.finished.remove(&id).expect("the first key is there");
                        match self.deliver(acq, block, kind) {
                            Ok(k) => delivered += k,
                            Err(e) => return Some(e),
                        }
                    }
                    self.publish(&acq.blocks);
                }
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    let ip = self.opts.ip;
                    let why =
                        |s| format!("gige://{ip}: no stream packets for {s:.1} s (cable? detector power?)");
                    if let Some(ev) = silence.quiet(&self.stats, why)
                        && !self.emit(ev)
                    {
                        return Some(Ended::Stop);
                    }
                    if limit.is_some() && started.elapsed() > Duration::from_secs(10) + self.opts.silence {
                        return Some(Ended::Lost(format!(
                            "gige://{}: calibration ({kind:?}) got {delivered} lines in 10 s",
                            self.opts.ip
                        )));
                    }
                }
                Err(e) => return Some(Ended::Lost(format!("stream socket: {e}"))),
            }
            if self.opts.resend && acq.last_resend_check.elapsed() >= Duration::from_millis(5) {
                acq.last_resend_check = Instant::now();
                for (id, first, last) in acq.blocks.resend_requests() {
                    let ext = self.opts.extended_ids;
                    let block = if ext { id } else { u64::from(wire_id(id)) };
                    if s.ctl.packet_resend(block, first, last, ext).is_ok() {
                        let n = u64::from(last - first + 1);
                        *acq.requested.entry(id).or_default() += n;
                        self.stats.resends_requested.fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
            if s.last_beat.elapsed() >= s.beat {
                s.last_beat = Instant::now();
                if let Err(e) = s.ctl.heartbeat() {
                    return Some(Ended::Lost(format!("gige://{}: heartbeat: {e}", self.opts.ip)));
                }
            }
        }
    }

    /// Commands from the workstation: the belt through the device's `BeltControl` feature, read
    /// back and reported; what the device cannot do is reported as a fault. False when stopped.
    fn obey(&mut self, s: &mut Session) -> bool {
        use crate::source::{Belt, ScannerCommand};
        while let Ok(c) = self.commands.try_recv() {
            let ev = match c {
                ScannerCommand::Belt(b) if s.belt.is_some() => {
                    let entry = match b {
                        Belt::Forward => "Forward",
                        Belt::Stop => "Stop",
                        Belt::Reverse => "Reverse",
                    };
                    match s.map.set_enum(&mut s.ctl, "BeltControl", entry) {
                        Ok(()) => {
                            s.belt = read_belt(s);
                            s.belt.map(SourceEvent::Belt)
                        }
                        Err(e) => Some(SourceEvent::Fault(format!("belt {}: {e}", b.name()))),
                    }
                }
                ScannerCommand::Belt(b) => Some(SourceEvent::Fault(format!(
                    "belt {}: this device has no BeltControl feature (the belt is run from the scanner)",
                    b.name()
                ))),
                ScannerCommand::Calibrate => Some(SourceEvent::Fault(
                    "calibration on command: not over GigE Vision (it runs at every connection)".into(),
                )),
            };
            if let Some(ev) = ev
                && !self.emit(ev)
            {
                return false;
            }
        }
        true
    }

    /// A finished block's lines, numbered by block id; returns how many were sent.
    fn deliver(&mut self, acq: &mut Acquisition, block: Block, kind: LineKind) -> Result<usize, Ended> {
        if let Some(asked) = acq.requested.remove(&block.id) {
            let honoured = asked.saturating_sub(block.missing_packets.len() as u64);
            self.stats.resends_honoured.fetch_add(honoured, Ordering::Relaxed);
        }
        let first = *acq.first_id.get_or_insert(block.id);
        let Some(k) = block.id.checked_sub(first) else { return Ok(0) };
        // Blocks of which not a single packet arrived never reach the assembler of blocks: the
        // jump in ids says how many.
        if let Some(last) = acq.last_id
            && block.id > last + 1
        {
            self.stats.frames_lost.fetch_add(block.id - last - 1, Ordering::Relaxed);
        }
        acq.last_id = Some(acq.last_id.map_or(block.id, |l| l.max(block.id)));
        let per = u64::from(self.opts.lines_per_block);
        let first_seq = acq.seq_base + k * per;
        acq.end_seq = acq.end_seq.max(first_seq + per);
        let (lines, _skipped) = match block_lines(&block, self.opts.layout, self.opts.channels, first_seq) {
            Ok(x) => x,
            Err(why) => return Err(Ended::Lost(format!("gige://{}: {why}", self.opts.ip))),
        };
        if self.opts.raw {
            let raw = crate::source::RawBlock {
                id: block.id,
                width: block.leader.width,
                height: block.leader.height,
                pixel_format: block.leader.pixel_format,
                missing_packets: block.missing_packets.clone(),
                data: block.data,
            };
            if !self.emit(SourceEvent::RawBlock(Arc::new(raw))) {
                return Err(Ended::Stop);
            }
        }
        let n = lines.len();
        for mut l in lines {
            l.kind = kind;
            if !self.emit(SourceEvent::Line(l)) {
                return Err(Ended::Stop);
            }
        }
        Ok(n)
    }
}

/// Start the GigE Vision driver thread.
pub fn spawn(opts: GigeSourceOptions) -> RunningSource {
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
        next_seq: 0,
        incomplete_blocks: 0,
        malformed: 0,
    };
    let thread = crate::source::spawn_thread("gige source", &description, move || driver.run())
        .expect("spawn gige source thread");
    RunningSource { events: rx, stats, description, commands: Some(ctx), stop, thread: Some(thread) }
}

/// The belt as the device's `BeltControl` says (`None`: no such feature, or an entry not known).
fn read_belt(s: &mut Session) -> Option<crate::source::Belt> {
    if !s.map.has("BeltControl") {
        return None;
    }
    let entry = s.map.enum_entry(&mut s.ctl, "BeltControl").ok()?;
    crate::source::Belt::parse(&entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_wrap_like_the_device() {
        assert_eq!(wire_id(1), 1);
        assert_eq!(wire_id(65535), 65535);
        assert_eq!(wire_id(65536), 1, "65535 is followed by 1");
        assert_eq!(wire_id(131070), 65535);
    }

    #[test]
    fn options_from_urls_with_reasons_for_refusals() {
        let u = SourceUrl::parse("gige://192.168.1.20?layout=halves_of_row&lines=128&packet=9000&resend=off")
            .unwrap();
        let o = GigeSourceOptions::from_url(&u, 1536, 300.0).unwrap();
        assert_eq!(o.ip, Ipv4Addr::new(192, 168, 1, 20));
        assert_eq!(
            (o.layout, o.lines_per_block, o.packet_size, o.resend),
            (DualLayout::HalvesOfRow, 128, 9000, false)
        );
        let again = GigeSourceOptions::from_url(&SourceUrl::parse(&o.url()).unwrap(), 1536, 300.0).unwrap();
        assert_eq!((again.ip, again.layout, again.lines_per_block), (o.ip, o.layout, o.lines_per_block));
        let by_serial =
            GigeSourceOptions::from_url(&SourceUrl::parse("gige://TS-GIGE-0001").unwrap(), 1536, 300.0)
                .unwrap();
        assert_eq!(by_serial.serial.as_deref(), Some("TS-GIGE-0001"));
        assert_eq!(by_serial.url(), "gige://TS-GIGE-0001?layout=alternating_rows&lines=64&packet=1500");
        for (url, needle) in [
            ("gige://a-serial-number-too-long?lines=8", "IPv4 address"),
            ("gige://10.0.0.1?layout=diagonal", "alternating_rows or halves_of_row"),
            ("gige://10.0.0.1?lines=0", "1 to 8192"),
            ("gige://10.0.0.1?packet=100", "576 to 16384"),
            ("gige://10.0.0.1?resend=maybe", "on or off"),
            ("gige://10.0.0.1?baud=9600", "unknown option `baud`"),
        ] {
            let e = GigeSourceOptions::from_url(&SourceUrl::parse(url).unwrap(), 1536, 300.0)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }
}
