//! The scanner emulator as a GigE Vision device: GVCP on `ADDR:3956` (discovery, also by
//! broadcast on the network's broadcast address, READREG,
//! WRITEREG, READMEM, WRITEMEM, control privilege with heartbeat, PACKETRESEND), the GenICam XML
//! of `assets/gige/twinspect-linescan.xml` in device memory, and GVSP blocks of dual-energy lines
//! (low and high as alternating Mono16 rows) from the physics-based synthetic scanner at the
//! profile's line rate, with optional packet loss that resends recover.
//!
//! Owns: [`serve`], [`GigeOptions`], [`DeviceStats`], the device's register map. Aravis's
//! `arv-tool-0.8` and `arv-camera-test-0.8` are its peers in the tests.
//!
//! Must not import: egui, wgpu.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Script;
use crate::domain::profile::ScannerProfile;
use crate::domain::rng::Rng;
use crate::domain::scan::RawLine;
use crate::source::gige::gvcp::{self, DeviceInfo, be16, be32, cmd, reg, status};
use crate::source::gige::gvsp::{self, Leader, Trailer};
use crate::source::serial::codec::Frame;

pub const XML: &str = include_str!("../../assets/gige/twinspect-linescan.xml");
/// Where the XML lives in device memory.
pub const XML_ADDR: u32 = 0x0010_0000;

/// Device registers (see the XML).
pub mod dreg {
    pub const SENSOR_WIDTH: u32 = 0x20000;
    pub const WIDTH: u32 = 0x20004;
    pub const HEIGHT: u32 = 0x20008;
    pub const PIXEL_FORMAT: u32 = 0x2000C;
    pub const PAYLOAD_SIZE: u32 = 0x20010;
    pub const ACQUISITION_MODE: u32 = 0x20014;
    pub const ACQUISITION_START: u32 = 0x20018;
    pub const ACQUISITION_STOP: u32 = 0x2001C;
    pub const LINE_RATE: u32 = 0x20020;
    pub const TL_PARAMS_LOCKED: u32 = 0x20024;
    pub const XRAY_MODE: u32 = 0x20028;
    /// 0 stop, 1 forward, 2 reverse.
    pub const BELT_CONTROL: u32 = 0x2002C;
    /// Which energy `DetectorGain` addresses: 0 high, 1 low.
    pub const ENERGY_SELECTOR: u32 = 0x20030;
    /// Each energy's detector gain (IEEE 754 float): high at this address, low 4 bytes on.
    pub const DETECTOR_GAIN: u32 = 0x20040;
}

#[derive(Clone, Debug)]
pub struct GigeOptions {
    pub ip: Ipv4Addr,
    pub seed: u64,
    pub speed: f64,
    pub gap_mm: f64,
    /// Probability that a stream packet's first transmission is lost (resends always go).
    pub loss: f64,
    /// Probability that a stream packet is sent after the one that follows it.
    pub reorder: f64,
    pub serial_number: String,
    /// Go silent (no GVCP answers, no stream) every this many seconds...
    pub disconnect_every: Option<f64>,
    /// ...for this many seconds, like a pulled cable or a power cycle.
    pub disconnect_for: f64,
    /// Scan this many lines once and send them over and over (for throughput tests: the physics
    /// model is slower than a fast link); `None`: scan live.
    pub loop_lines: Option<usize>,
    /// Serve this recording (looping) instead of synthetic bags.
    pub replay: Option<std::path::PathBuf>,
}

impl Default for GigeOptions {
    fn default() -> Self {
        GigeOptions {
            ip: Ipv4Addr::new(127, 0, 0, 2),
            seed: 1,
            speed: 1.0,
            gap_mm: 250.0,
            loss: 0.0,
            reorder: 0.0,
            disconnect_every: None,
            disconnect_for: 2.0,
            serial_number: "TS-GIGE-0001".into(),
            replay: None,
            loop_lines: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct DeviceStats {
    pub commands: AtomicU64,
    pub blocks: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub packets_dropped: AtomicU64,
    pub packets_reordered: AtomicU64,
    pub resend_requests: AtomicU64,
    pub packets_resent: AtomicU64,
    /// Resends asked for packets no longer kept (answered with PACKET_UNAVAILABLE).
    pub packets_unavailable: AtomicU64,
    pub heartbeat_expired: AtomicU64,
    /// Injected outages begun.
    pub disconnects: AtomicU64,
    /// Times the belt changed through `BeltControl`, and where it is now (0 stop, 1 forward,
    /// 2 reverse).
    pub belt_changes: AtomicU64,
    pub belt: AtomicU64,
}

struct Regs {
    boot: Vec<u8>,
    channels: u32,
    height: u32,
    acquisition_mode: u32,
    streaming: bool,
    tl_locked: u32,
    xray_mode: u32,
    belt: u32,
    /// Writes of `BeltControl` that changed it (counted as they come: the streaming thread may
    /// not look between two).
    belt_changes: u64,
    extended_ids: bool,
    /// Lines per second (an IEEE 754 float register, as SFNC's AcquisitionLineRate is).
    line_rate: f32,
    /// `EnergySelector` and each energy's gain (high, low): the samples are scaled by it.
    energy_selector: u32,
    gain: [f32; 2],
    /// The ADC's full scale, where a gain clips.
    full_scale: u16,
    controller: Option<SocketAddr>,
    last_from_controller: Instant,
}

impl Regs {
    fn u32_at(&self, a: u32) -> u32 {
        let i = a as usize;
        u32::from_be_bytes(self.boot[i..i + 4].try_into().expect("4 bytes"))
    }

    fn set(&mut self, a: u32, v: u32) {
        let i = a as usize;
        self.boot[i..i + 4].copy_from_slice(&v.to_be_bytes());
    }

    fn read(&self, a: u32) -> Result<u32, u16> {
        if !a.is_multiple_of(4) {
            return Err(status::BAD_ALIGNMENT);
        }
        Ok(match a {
            a if (a as usize) + 4 <= self.boot.len() => self.u32_at(a),
            dreg::SENSOR_WIDTH | dreg::WIDTH => self.channels,
            dreg::HEIGHT => self.height,
            dreg::PIXEL_FORMAT => gvsp::MONO16,
            dreg::PAYLOAD_SIZE => self.channels * self.height * 2,
            dreg::ACQUISITION_MODE => self.acquisition_mode,
            dreg::ACQUISITION_START | dreg::ACQUISITION_STOP => 0,
            dreg::LINE_RATE => self.line_rate.to_bits(),
            dreg::TL_PARAMS_LOCKED => self.tl_locked,
            dreg::XRAY_MODE => self.xray_mode,
            dreg::BELT_CONTROL => self.belt,
            dreg::ENERGY_SELECTOR => self.energy_selector,
            a if a == dreg::DETECTOR_GAIN || a == dreg::DETECTOR_GAIN + 4 => {
                self.gain[((a - dreg::DETECTOR_GAIN) / 4) as usize].to_bits()
            }
            _ => return Err(status::INVALID_ADDRESS),
        })
    }

    fn write(&mut self, a: u32, v: u32) -> Result<(), u16> {
        if !a.is_multiple_of(4) {
            return Err(status::BAD_ALIGNMENT);
        }
        match a {
            reg::CCP => self.set(a, v & 0x3),
            reg::SCP0 => self.set(a, v & 0xFFFF),
            reg::SCPS0 => {
                let size = v & 0xFFFF;
                if !(576..=9000).contains(&size) || !size.is_multiple_of(4) {
                    return Err(status::INVALID_PARAMETER);
                }
                self.set(a, size)
            }
            reg::SCPD0 | reg::SCDA0 | 0x0954 => self.set(a, v),
            // Tolerated and ignored: GVSP configuration (no extended ids), stream channel config.
            // 64-bit block ids on the stream (GigE Vision 2.0), or not; nothing else configurable.
            reg::GVSP_CONFIG => {
                self.extended_ids = v & gvcp::GVSP_CONFIG_EXTENDED_ID != 0;
                self.set(a, v & gvcp::GVSP_CONFIG_EXTENDED_ID);
            }
            // Tolerated and ignored: stream channel configuration (multipart).
            0x0D24 => {}
            dreg::HEIGHT => {
                if self.tl_locked != 0 || self.streaming {
                    return Err(status::WRITE_PROTECT);
                }
                if !(2..=16384).contains(&v) || !v.is_multiple_of(2) {
                    return Err(status::INVALID_PARAMETER);
                }
                self.height = v;
            }
            dreg::PIXEL_FORMAT if v == gvsp::MONO16 => {}
            dreg::PIXEL_FORMAT => return Err(status::INVALID_PARAMETER),
            dreg::ACQUISITION_MODE if v == 1 => self.acquisition_mode = v,
            dreg::ACQUISITION_MODE => return Err(status::INVALID_PARAMETER),
            dreg::ACQUISITION_START => {
                if v == 1 {
                    self.streaming = true;
                    self.tl_locked = 1;
                }
            }
            dreg::ACQUISITION_STOP => {
                if v == 1 {
                    self.streaming = false;
                    self.tl_locked = 0;
                }
            }
            dreg::TL_PARAMS_LOCKED if v <= 1 => self.tl_locked = v,
            dreg::XRAY_MODE if v <= 2 => self.xray_mode = v,
            dreg::BELT_CONTROL if v <= 2 => {
                self.belt_changes += u64::from(v != self.belt);
                self.belt = v;
            }
            dreg::ENERGY_SELECTOR if v <= 1 => self.energy_selector = v,
            dreg::TL_PARAMS_LOCKED | dreg::XRAY_MODE | dreg::BELT_CONTROL | dreg::ENERGY_SELECTOR => {
                return Err(status::INVALID_PARAMETER);
            }
            a if (a as usize) < self.boot.len() => return Err(status::WRITE_PROTECT),
            a if a == dreg::DETECTOR_GAIN || a == dreg::DETECTOR_GAIN + 4 => {
                let g = f32::from_bits(v);
                if !(0.25..=8.0).contains(&g) {
                    return Err(status::INVALID_PARAMETER);
                }
                self.gain[((a - dreg::DETECTOR_GAIN) / 4) as usize] = g;
            }
            dreg::LINE_RATE => {
                let rate = f32::from_bits(v);
                if !(1.0..=100_000.0).contains(&rate) {
                    return Err(status::INVALID_PARAMETER);
                }
                self.line_rate = rate;
            }
            dreg::SENSOR_WIDTH | dreg::WIDTH | dreg::PAYLOAD_SIZE => {
                return Err(status::WRITE_PROTECT);
            }
            _ => return Err(status::INVALID_ADDRESS),
        }
        Ok(())
    }

    fn read_mem(&self, a: u32, n: usize) -> Result<Vec<u8>, u16> {
        let end = a as usize + n;
        let xml = XML.as_bytes();
        if a >= XML_ADDR && end <= XML_ADDR as usize + xml.len().div_ceil(4) * 4 {
            let mut out = vec![0u8; n];
            let from = (a - XML_ADDR) as usize;
            let have = xml.len().saturating_sub(from).min(n);
            out[..have].copy_from_slice(&xml[from..from + have]);
            return Ok(out);
        }
        if end <= self.boot.len() {
            // strings and registers alike; live registers through `read`
            let mut out = self.boot[a as usize..end].to_vec();
            for (k, w) in out.chunks_exact_mut(4).enumerate() {
                if let Ok(v) = self.read(a + 4 * k as u32) {
                    w.copy_from_slice(&v.to_be_bytes());
                }
            }
            return Ok(out);
        }
        if !a.is_multiple_of(4) || !n.is_multiple_of(4) {
            return Err(status::BAD_ALIGNMENT);
        }
        let mut out = Vec::with_capacity(n);
        for k in 0..n / 4 {
            out.extend_from_slice(&self.read(a + 4 * k as u32)?.to_be_bytes());
        }
        Ok(out)
    }
}

/// A block as sent, kept for resends.
struct Sent {
    /// The block id as sent (16-bit, or 64-bit with extended ids).
    id: u64,
    extended: bool,
    packets: Vec<Vec<u8>>,
}

struct Shared {
    /// Injected outages: (every, for) in seconds from `started`.
    outage: Option<(f64, f64)>,
    started: Instant,
    regs: Mutex<Regs>,
    stats: Arc<DeviceStats>,
    stream: UdpSocket,
    history: Mutex<VecDeque<Sent>>,
}

impl Shared {
    /// Inside an injected outage: the device neither answers nor streams.
    fn offline(&self) -> bool {
        self.outage.is_some_and(|(every, off)| {
            let t = self.started.elapsed().as_secs_f64() % (every + off);
            t >= every
        })
    }
}

/// A running GigE Vision emulator; stops when dropped.
pub struct GigeDevice {
    pub stats: Arc<DeviceStats>,
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for GigeDevice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn info(o: &GigeOptions, profile: &ScannerProfile) -> DeviceInfo {
    DeviceInfo {
        version: (1, 2),
        device_mode: 0x8000_0000, // big-endian registers, class transmitter
        mac: [0x02, 0x54, 0x53, o.ip.octets()[1], o.ip.octets()[2], o.ip.octets()[3]],
        ip: o.ip,
        subnet: Ipv4Addr::new(255, 0, 0, 0),
        gateway: Ipv4Addr::UNSPECIFIED,
        manufacturer: "Twinspect".into(),
        model: "LineScanEmulator".into(),
        device_version: env!("CARGO_PKG_VERSION").into(),
        manufacturer_info: format!("{} {} kVp", profile.name, profile.kvp),
        serial: o.serial_number.clone(),
        user_name: String::new(),
    }
}

/// Start the emulator on `opts.ip` (GVCP port 3956).
pub fn serve(profile: &ScannerProfile, opts: GigeOptions) -> anyhow::Result<GigeDevice> {
    let control = UdpSocket::bind(SocketAddrV4::new(opts.ip, gvcp::PORT))
        .map_err(|e| anyhow::anyhow!("GigE Vision emulator on {}:{}: {e}", opts.ip, gvcp::PORT))?;
    control.set_read_timeout(Some(Duration::from_millis(50)))?;
    let stream = UdpSocket::bind(SocketAddrV4::new(opts.ip, 0))?;
    let mut boot = vec![0u8; 0x1000];
    let record = info(&opts, profile).encode();
    boot[..record.len()].copy_from_slice(&record);
    let url = format!("Local:twinspect-linescan.xml;{XML_ADDR:x};{:x}", XML.len());
    boot[0x200..0x200 + url.len()].copy_from_slice(url.as_bytes());
    let line_rate = (profile.line_rate_hz * opts.speed) as f32;
    let mut regs = Regs {
        boot,
        channels: profile.channels,
        height: 512,
        acquisition_mode: 1,
        streaming: false,
        tl_locked: 0,
        xray_mode: 0,
        belt: 1,
        belt_changes: 0,
        extended_ids: false,
        line_rate,
        energy_selector: 0,
        gain: [1.0, 1.0],
        full_scale: profile.full_scale(),
        controller: None,
        last_from_controller: Instant::now(),
    };
    regs.set(0x0014, 0x0000_0004); // current IP configuration: LLA (a fixed address here)
    regs.set(0x0600, 1); // network interfaces
    regs.set(reg::STREAM_CHANNELS, 1);
    regs.set(reg::GVCP_CAPABILITY, reg::CAP_PACKETRESEND | 0x1); // resend, multiple READREG/WRITEREG
    regs.set(reg::HEARTBEAT_TIMEOUT, 3000);
    regs.set(reg::TICK_FREQ_LOW, 1_000_000_000);
    regs.set(reg::SCPS0, 1400);
    regs.set(reg::SCSP0, u32::from(stream.local_addr()?.port()));
    let stats = Arc::new(DeviceStats::default());
    let shared = Arc::new(Shared {
        outage: opts.disconnect_every.map(|e| (e, opts.disconnect_for)),
        started: Instant::now(),
        regs: Mutex::new(regs),
        stats: stats.clone(),
        stream,
        history: Mutex::new(VecDeque::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let addr = control.local_addr()?;
    // Broadcast DISCOVERY reaches a socket bound to the broadcast address, not to ours; the
    // answer goes from our own address, as a device's does.
    let discovery = broadcast_socket(opts.ip)?;
    discovery.set_read_timeout(Some(Duration::from_millis(50)))?;
    let (answer, sh, sp) = (control.try_clone()?, shared.clone(), stop.clone());
    let discovery_thread = std::thread::Builder::new()
        .name("gige emulator discovery".into())
        .spawn(move || discovery_loop(discovery, answer, sh, sp))?;
    let (sh, sp) = (shared.clone(), stop.clone());
    let gvcp_thread = std::thread::Builder::new()
        .name("gige emulator gvcp".into())
        .spawn(move || control_loop(control, sh, sp))?;
    let mut script = match &opts.replay {
        Some(p) => Script::from_recording(profile, p)?,
        None => Script::new(profile, opts.seed, opts.gap_mm)?,
    };
    script.signal_bags = false;
    let lines = match opts.loop_lines {
        Some(n) => {
            let scan: Vec<RawLine> = (0..n.max(1)).map(|_| next_line(&mut script, 0)).collect();
            Lines::Loop { dark: script.dark_line(), air: script.air_line(), scan, next: 0 }
        }
        None => Lines::Live(Box::new(script)),
    };
    let (sh, sp) = (shared, stop.clone());
    let faults = Faults { loss: opts.loss, reorder: opts.reorder };
    let seed = opts.seed;
    let stream_thread = std::thread::Builder::new()
        .name("gige emulator gvsp".into())
        .spawn(move || stream_loop(lines, sh, sp, faults, seed))?;
    Ok(GigeDevice { stats, addr, stop, threads: vec![gvcp_thread, stream_thread, discovery_thread] })
}

/// A socket on port 3956 of the broadcast address of `ip`'s network (127.255.255.255 for
/// loopback, else the limited broadcast), shared (SO_REUSEADDR) so several emulators can listen.
fn broadcast_socket(ip: Ipv4Addr) -> std::io::Result<UdpSocket> {
    use std::os::fd::FromRawFd;
    let bcast = if ip.is_loopback() { Ipv4Addr::new(127, 255, 255, 255) } else { Ipv4Addr::BROADCAST };
    // SAFETY: a fresh socket whose descriptor UdpSocket takes over at once (closed on every
    // path); setsockopt and bind get pointers to live values of the sizes given.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sock = UdpSocket::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, (&one as *const libc::c_int).cast(), len);
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: gvcp::PORT.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(bcast).to_be() },
            sin_zero: [0; 8],
        };
        let r = libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if r != 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(e.kind(), format!("discovery on {bcast}:{}: {e}", gvcp::PORT)));
        }
        Ok(sock)
    }
}

fn discovery_loop(sock: UdpSocket, answer: UdpSocket, sh: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        let p = &buf[..n];
        if n < 8 || p[0] != 0x42 || be16(p, 2) != cmd::DISCOVERY || sh.offline() {
            continue; // only discovery is answered to a broadcast
        }
        let reply = match sh.regs.lock() {
            Ok(r) => ack(status::SUCCESS, cmd::DISCOVERY + 1, be16(p, 6), &r.boot[..DeviceInfo::LEN]),
            Err(_) => return,
        };
        let _ = answer.send_to(&reply, from);
    }
}

fn ack(status: u16, ack: u16, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload.len());
    p.extend_from_slice(&status.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn control_loop(sock: UdpSocket, sh: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        // Heartbeat: a controller that has gone quiet loses control and the stream stops.
        if let Ok(mut r) = sh.regs.lock()
            && r.controller.is_some()
        {
            let timeout = Duration::from_millis(u64::from(r.u32_at(reg::HEARTBEAT_TIMEOUT)));
            if r.last_from_controller.elapsed() > timeout {
                r.controller = None;
                r.set(reg::CCP, 0);
                r.set(reg::SCP0, 0);
                r.streaming = false;
                r.tl_locked = 0;
                sh.stats.heartbeat_expired.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        let p = &buf[..n];
        if n < 8 || p[0] != 0x42 || sh.offline() {
            continue; // not a GVCP command, or the cable is out
        }
        sh.stats.commands.fetch_add(1, Ordering::Relaxed);
        let (flags, code, len, id) = (p[1], be16(p, 2), be16(p, 4), be16(p, 6));
        let body = &p[8..];
        if usize::from(len) != body.len() {
            let _ = sock.send_to(&ack(status::INVALID_PARAMETER, code.wrapping_add(1), id, &[]), from);
            continue;
        }
        if code == cmd::PACKETRESEND {
            resend(&sh, flags, body);
            continue;
        }
        let reply = handle(&sh, from, code, id, body);
        if flags & 0x01 != 0 {
            let _ = sock.send_to(&reply, from);
        }
    }
}

fn handle(sh: &Shared, from: SocketAddr, code: u16, id: u16, body: &[u8]) -> Vec<u8> {
    let mut r = match sh.regs.lock() {
        Ok(r) => r,
        Err(e) => e.into_inner(),
    };
    let is_controller = r.controller == Some(from);
    if is_controller {
        r.last_from_controller = Instant::now();
    }
    let may_write = r.controller.is_none() || is_controller;
    let a = code.wrapping_add(1);
    match code {
        cmd::DISCOVERY => ack(status::SUCCESS, a, id, &r.boot[..DeviceInfo::LEN]),
        cmd::READREG => {
            if body.is_empty() || !body.len().is_multiple_of(4) {
                return ack(status::INVALID_PARAMETER, a, id, &[]);
            }
            let mut out = Vec::with_capacity(body.len());
            for k in 0..body.len() / 4 {
                match r.read(be32(body, 4 * k)) {
                    Ok(v) => out.extend_from_slice(&v.to_be_bytes()),
                    Err(s) => return ack(s, a, id, &[]),
                }
            }
            ack(status::SUCCESS, a, id, &out)
        }
        cmd::WRITEREG => {
            if body.is_empty() || !body.len().is_multiple_of(8) {
                return ack(status::INVALID_PARAMETER, a, id, &[]);
            }
            if !may_write {
                return ack(status::ACCESS_DENIED, a, id, &[0, 0, 0, 0]);
            }
            for k in 0..body.len() / 8 {
                let (addr, v) = (be32(body, 8 * k), be32(body, 8 * k + 4));
                if let Err(s) = write(&mut r, from, addr, v) {
                    return ack(s, a, id, &[0, 0, 0, k as u8]);
                }
            }
            let n = (body.len() / 8) as u16;
            ack(status::SUCCESS, a, id, &[0, 0, (n >> 8) as u8, n as u8])
        }
        cmd::READMEM => {
            if body.len() != 8 {
                return ack(status::INVALID_PARAMETER, a, id, &[]);
            }
            let (addr, count) = (be32(body, 0), usize::from(be16(body, 6)));
            if count == 0 || count > gvcp::MAX_MEM + 24 || count % 4 != 0 {
                return ack(status::INVALID_PARAMETER, a, id, &[]);
            }
            match r.read_mem(addr, count) {
                Ok(data) => {
                    let mut out = addr.to_be_bytes().to_vec();
                    out.extend(data);
                    ack(status::SUCCESS, a, id, &out)
                }
                Err(s) => ack(s, a, id, &[]),
            }
        }
        cmd::WRITEMEM => {
            if body.len() < 8 || !(body.len() - 4).is_multiple_of(4) {
                return ack(status::INVALID_PARAMETER, a, id, &[]);
            }
            if !may_write {
                return ack(status::ACCESS_DENIED, a, id, &[0, 0, 0, 0]);
            }
            let addr = be32(body, 0);
            let data = &body[4..];
            for k in 0..data.len() / 4 {
                if let Err(s) = write(&mut r, from, addr + 4 * k as u32, be32(data, 4 * k)) {
                    return ack(s, a, id, &[0, 0, 0, 0]);
                }
            }
            let n = data.len() as u16;
            ack(status::SUCCESS, a, id, &[0, 0, (n >> 8) as u8, n as u8])
        }
        _ => ack(status::NOT_IMPLEMENTED, a, id, &[]),
    }
}

fn write(r: &mut Regs, from: SocketAddr, addr: u32, v: u32) -> Result<(), u16> {
    r.write(addr, v)?;
    if addr == reg::CCP {
        if v & 0x3 != 0 {
            r.controller = Some(from);
            r.last_from_controller = Instant::now();
        } else {
            r.controller = None;
            r.streaming = false;
            r.tl_locked = 0;
        }
    }
    Ok(())
}

fn resend(sh: &Shared, flags: u8, body: &[u8]) {
    let extended = flags & gvcp::FLAG_EXTENDED_ID != 0;
    let (block, first, last) = if extended {
        if body.len() < 20 {
            return;
        }
        let b = u64::from_be_bytes(body[12..20].try_into().expect("8 bytes"));
        (b, be32(body, 4), be32(body, 8))
    } else {
        if body.len() < 12 {
            return;
        }
        (u64::from(be16(body, 2)), be32(body, 4) & 0xFF_FFFF, be32(body, 8) & 0xFF_FFFF)
    };
    sh.stats.resend_requests.fetch_add(1, Ordering::Relaxed);
    let dest = match sh.regs.lock() {
        Ok(r) => SocketAddrV4::new(Ipv4Addr::from(r.u32_at(reg::SCDA0)), r.u32_at(reg::SCP0) as u16),
        Err(_) => return,
    };
    if dest.port() == 0 || last < first || last - first > 100_000 {
        return;
    }
    let history = match sh.history.lock() {
        Ok(h) => h,
        Err(_) => return,
    };
    match history.iter().find(|s| s.id == block && s.extended == extended) {
        Some(sent) => {
            for k in first..=last {
                if let Some(p) = sent.packets.get(k as usize) {
                    if extended {
                        // Extended headers say "this packet was resent" (flag 0x0001).
                        let mut again = p.clone();
                        again[3] |= 0x01;
                        let _ = sh.stream.send_to(&again, dest);
                    } else {
                        let _ = sh.stream.send_to(p, dest);
                    }
                    sh.stats.packets_resent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        None => {
            for k in first..=last {
                let mut p = Vec::new();
                if extended {
                    gvsp::encode_extended(
                        block,
                        k,
                        gvsp::format::PAYLOAD,
                        status::PACKET_UNAVAILABLE,
                        &[],
                        &mut p,
                    );
                } else {
                    gvsp::encode(
                        block as u16,
                        k,
                        gvsp::format::PAYLOAD,
                        status::PACKET_UNAVAILABLE,
                        &[],
                        &mut p,
                    );
                }
                let _ = sh.stream.send_to(&p, dest);
                sh.stats.packets_unavailable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Blocks kept for resends.
const HISTORY_BLOCKS: usize = 64;

fn next_line(script: &mut Script, mode: u32) -> RawLine {
    match mode {
        1 => script.dark_line(),
        2 => script.air_line(),
        _ => loop {
            if let Frame::Line { low, high, line, .. } = script.next_frame() {
                break RawLine { seq: u64::from(line), kind: crate::domain::scan::LineKind::Scan, low, high };
            }
        },
    }
}

/// Where the streamed lines come from.
enum Lines {
    Live(Box<Script>),
    Loop { dark: RawLine, air: RawLine, scan: Vec<RawLine>, next: usize },
}

impl Lines {
    fn next(&mut self, mode: u32) -> std::borrow::Cow<'_, RawLine> {
        use std::borrow::Cow;
        match self {
            Lines::Live(s) => Cow::Owned(next_line(s, mode)),
            Lines::Loop { dark, air, scan, next } => match mode {
                1 => Cow::Borrowed(dark),
                2 => Cow::Borrowed(air),
                _ => {
                    let k = *next;
                    *next = (k + 1) % scan.len();
                    Cow::Borrowed(&scan[k])
                }
            },
        }
    }

    fn channels(&self) -> u32 {
        match self {
            Lines::Live(s) => s.channels() as u32,
            Lines::Loop { dark, .. } => dark.low.len() as u32,
        }
    }
}

fn stream_loop(mut script: Lines, sh: Arc<Shared>, stop: Arc<AtomicBool>, faults: Faults, seed: u64) {
    let mut rng = Rng::new(seed ^ 0x6196);
    let (mut wire_id, mut long_id): (u16, u64) = (0, 0);
    let mut rows: Vec<u8> = Vec::new();
    let mut lines_in_block = 0u32;
    let mut t0 = Instant::now();
    let mut made: u64 = 0;
    let mut was_streaming = false;
    let mut was_offline = false;
    let mut belt_was = 1;
    let mut rate_was = 0.0;
    while !stop.load(Ordering::Relaxed) {
        let (streaming, dest, scps, height, mode, extended, belt, rate, gain, full) = match sh.regs.lock() {
            Ok(r) => {
                sh.stats.belt_changes.store(r.belt_changes, Ordering::Relaxed);
                (
                    r.streaming,
                    SocketAddrV4::new(Ipv4Addr::from(r.u32_at(reg::SCDA0)), r.u32_at(reg::SCP0) as u16),
                    (r.u32_at(reg::SCPS0) & 0xFFFF) as usize,
                    r.height,
                    r.xray_mode,
                    r.extended_ids,
                    r.belt,
                    f64::from(r.line_rate),
                    r.gain,
                    r.full_scale,
                )
            }
            Err(_) => return,
        };
        // A new line rate (AcquisitionLineRate written): paced afresh from now.
        if rate != rate_was {
            rate_was = rate;
            was_streaming = false;
        }
        // The belt: reversing takes what was under the beam back out (it is scanned again when
        // the belt runs forward); at rest or reversed, scan lines wait (dark and air do not).
        if belt == 2
            && belt_was != 2
            && let Lines::Live(s) = &mut script
        {
            let _ = s.reverse();
        }
        sh.stats.belt.store(u64::from(belt), Ordering::Relaxed);
        belt_was = belt;
        let belt_holds = mode == 0 && belt != 1;
        let offline = sh.offline();
        if offline && !was_offline {
            sh.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        was_offline = offline;
        if !streaming || dest.port() == 0 || offline {
            was_streaming = false;
            rows.clear();
            lines_in_block = 0;
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        if belt_holds {
            // The block fills on when the belt runs again; paced afresh from then.
            was_streaming = false;
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        if !was_streaming {
            was_streaming = true;
            t0 = Instant::now();
            made = 0;
        }
        // Lines due by now (at most 50 ms worth per round).
        let due = (t0.elapsed().as_secs_f64() * rate) as u64;
        if due <= made {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let n = (due - made).min((rate * 0.05).ceil() as u64 + 1);
        made = made.max(due.saturating_sub((rate * 0.5) as u64)) + n;
        let lines_per_block = height / 2;
        for _ in 0..n {
            let l = script.next(mode);
            // Each energy's detector gain (high: selector 0, low: 1), clipped at full scale.
            for (row, g) in [(&l.low, gain[1]), (&l.high, gain[0])] {
                for &s in row.iter() {
                    let v = if g == 1.0 { s } else { (f32::from(s) * g).round().min(f32::from(full)) as u16 };
                    rows.extend_from_slice(&v.to_le_bytes());
                }
            }
            lines_in_block += 1;
            if lines_in_block == lines_per_block {
                let (id, overhead) = if extended {
                    long_id += 1;
                    (long_id, gvsp::EXTENDED_OVERHEAD)
                } else {
                    wire_id = if wire_id == u16::MAX { 1 } else { wire_id + 1 };
                    (u64::from(wire_id), gvsp::STANDARD_OVERHEAD)
                };
                let chunk = scps.saturating_sub(overhead).max(4);
                let width = script.channels();
                let packets = block_packets(id, extended, &rows, width, height, chunk, t0);
                send_block(&sh, &packets, dest, faults, &mut rng);
                if let Ok(mut h) = sh.history.lock() {
                    h.push_back(Sent { id, extended, packets });
                    while h.len() > HISTORY_BLOCKS {
                        h.pop_front();
                    }
                }
                sh.stats.blocks.fetch_add(1, Ordering::Relaxed);
                rows.clear();
                lines_in_block = 0;
            }
        }
    }
}

fn block_packets(
    id: u64,
    extended: bool,
    rows: &[u8],
    width: u32,
    height: u32,
    chunk: usize,
    t0: Instant,
) -> Vec<Vec<u8>> {
    let encode = |packet: u32, format: u8, body: &[u8], out: &mut Vec<u8>| {
        if extended {
            gvsp::encode_extended(id, packet, format, 0, body, out)
        } else {
            gvsp::encode(id as u16, packet, format, 0, body, out)
        }
    };
    let leader = Leader {
        payload_type: gvsp::PAYLOAD_IMAGE,
        timestamp: t0.elapsed().as_nanos() as u64,
        pixel_format: gvsp::MONO16,
        width,
        height,
        offset_x: 0,
        offset_y: 0,
    };
    let mut packets = Vec::with_capacity(rows.len() / chunk + 3);
    let mut p = Vec::new();
    encode(0, gvsp::format::LEADER, &gvsp::leader_body(&leader), &mut p);
    packets.push(p);
    for (k, c) in rows.chunks(chunk).enumerate() {
        let mut p = Vec::with_capacity(8 + c.len());
        encode(k as u32 + 1, gvsp::format::PAYLOAD, c, &mut p);
        packets.push(p);
    }
    let mut p = Vec::new();
    let t = Trailer { payload_type: gvsp::PAYLOAD_IMAGE, height };
    encode(packets.len() as u32, gvsp::format::TRAILER, &gvsp::trailer_body(&t), &mut p);
    packets.push(p);
    packets
}

/// Faults the stream injects.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    loss: f64,
    reorder: f64,
}

fn send_block(sh: &Shared, packets: &[Vec<u8>], dest: SocketAddrV4, f: Faults, rng: &mut Rng) {
    let send = |p: &Vec<u8>| {
        if sh.stream.send_to(p, dest).is_ok() {
            sh.stats.packets.fetch_add(1, Ordering::Relaxed);
            sh.stats.bytes.fetch_add(p.len() as u64, Ordering::Relaxed);
        }
    };
    let mut held: Option<&Vec<u8>> = None;
    for (k, p) in packets.iter().enumerate() {
        // Loss only on data packets: a lost leader or trailer cannot be asked for by id here.
        let data = k > 0 && k + 1 < packets.len();
        if data && rng.chance(f.loss) {
            sh.stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // Reordering: a data packet held back goes out after the next one.
        if data && held.is_none() && rng.chance(f.reorder) {
            held = Some(p);
            sh.stats.packets_reordered.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        send(p);
        if let Some(h) = held.take() {
            send(h);
        }
    }
    if let Some(h) = held {
        send(h);
    }
}
