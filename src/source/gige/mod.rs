//! GigE Vision: the control channel client (GVCP over UDP: discovery, registers, memory, the
//! GenICam XML, control privilege and its heartbeat) on top of the wire formats in [`gvcp`] and
//! [`gvsp`]; [`genicam`] reads the device's features through it, [`driver`] turns a device into
//! a line source (`gige://`).
//!
//! Owns: [`Gvcp`] (one device's control channel: request ids, timeouts, retries, PENDING_ACK),
//! [`GigeError`].
//!
//! Must not import: egui, wgpu.

pub mod driver;
pub mod genicam;
pub mod gvcp;
pub mod gvsp;
pub mod lines;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use genicam::PortError;
use gvcp::{Ack, AckError, Cmd, DeviceInfo, XmlUrl, reg};

#[derive(Debug, thiserror::Error)]
pub enum GigeError {
    #[error("GigE Vision socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer from {device} to {what} after {tries} tries of {timeout_ms} ms")]
    Timeout { device: SocketAddr, what: &'static str, tries: u32, timeout_ms: u128 },
    #[error("{what} at {addr:#010x}: {source}")]
    Device { what: &'static str, addr: u32, source: AckError },
    #[error("{0}")]
    Command(#[from] gvcp::CmdError),
    #[error("GenICam XML: {0}")]
    Xml(String),
    #[error(transparent)]
    XmlUrl(#[from] gvcp::XmlUrlError),
}

/// One device's control channel.
pub struct Gvcp {
    sock: UdpSocket,
    pub device: SocketAddr,
    req_id: u16,
    pub timeout: Duration,
    pub tries: u32,
    /// Acks that came too late or were for someone else (counted, ignored).
    pub stray_acks: u64,
    /// We took control and have not given it back: done on drop, so a failed set-up does not
    /// leave the device refusing everyone until its heartbeat times out.
    has_control: bool,
}

impl Drop for Gvcp {
    fn drop(&mut self) {
        if self.has_control {
            self.tries = 1;
            self.timeout = Duration::from_millis(100);
            let _ = self.release();
        }
    }
}

fn what(c: &Cmd) -> &'static str {
    match c {
        Cmd::Discovery => "DISCOVERY",
        Cmd::ReadReg(_) => "READREG",
        Cmd::WriteReg(_) => "WRITEREG",
        Cmd::ReadMem { .. } => "READMEM",
        Cmd::WriteMem { .. } => "WRITEMEM",
        Cmd::PacketResend { .. } => "PACKETRESEND",
    }
}

impl Gvcp {
    /// A control channel to the device at `ip` (port 3956), from an ephemeral local port.
    pub fn new(ip: Ipv4Addr) -> Result<Gvcp, GigeError> {
        let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        Ok(Gvcp {
            sock,
            device: SocketAddr::V4(SocketAddrV4::new(ip, gvcp::PORT)),
            // Aravis starts at 0xFF15 too; any non-zero start works.
            req_id: 0xFF14,
            timeout: Duration::from_millis(500),
            tries: 5,
            stray_acks: 0,
            has_control: false,
        })
    }

    fn next_id(&mut self) -> u16 {
        self.req_id = if self.req_id == 0xFFFF { 1 } else { self.req_id + 1 };
        self.req_id
    }

    /// Send `cmd` and wait for its ack (retrying on silence, waiting longer on PENDING_ACK);
    /// returns the raw ack packet.
    fn transact(&mut self, cmd: &Cmd) -> Result<Vec<u8>, GigeError> {
        let id = if matches!(cmd, Cmd::Discovery) { 0xFFFF } else { self.next_id() };
        let packet = cmd.encode(id)?;
        let mut buf = vec![0u8; 1500];
        for _ in 0..self.tries.max(1) {
            self.sock.send_to(&packet, self.device)?;
            let mut deadline = Instant::now() + self.timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.sock.set_read_timeout(Some(left))?;
                let (n, from) = match self.sock.recv_from(&mut buf) {
                    Ok(x) => x,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    Err(e) => return Err(e.into()),
                };
                let Ok(ack) = Ack::parse(&buf[..n]) else {
                    self.stray_acks += 1;
                    continue;
                };
                if ack.id != id || (from.ip() != self.device.ip() && !matches!(cmd, Cmd::Discovery)) {
                    self.stray_acks += 1;
                    continue;
                }
                if let Some(ms) = ack.pending_ms() {
                    deadline = Instant::now() + Duration::from_millis(u64::from(ms)) + self.timeout;
                    continue;
                }
                return Ok(buf[..n].to_vec());
            }
        }
        Err(GigeError::Timeout {
            device: self.device,
            what: what(cmd),
            tries: self.tries,
            timeout_ms: self.timeout.as_millis(),
        })
    }

    /// Ask the device (unicast) who it is.
    pub fn discover(&mut self) -> Result<DeviceInfo, GigeError> {
        let raw = self.transact(&Cmd::Discovery)?;
        let ack =
            Ack::parse(&raw).map_err(|e| GigeError::Device { what: "DISCOVERY", addr: 0, source: e })?;
        ack.discovery().map_err(|e| GigeError::Device { what: "DISCOVERY", addr: 0, source: e })
    }

    pub fn read_reg(&mut self, addr: u32) -> Result<u32, GigeError> {
        let raw = self.transact(&Cmd::ReadReg(vec![addr]))?;
        let r = Ack::parse(&raw).and_then(|a| a.read_regs(1));
        r.map(|v| v[0]).map_err(|e| GigeError::Device { what: "READREG", addr, source: e })
    }

    pub fn write_reg(&mut self, addr: u32, value: u32) -> Result<(), GigeError> {
        let raw = self.transact(&Cmd::WriteReg(vec![(addr, value)]))?;
        let r = Ack::parse(&raw).and_then(|a| a.write_regs());
        match r {
            Ok(1) => Ok(()),
            Ok(_) => Err(GigeError::Device {
                what: "WRITEREG",
                addr,
                source: AckError::Payload("nothing written"),
            }),
            Err(e) => Err(GigeError::Device { what: "WRITEREG", addr, source: e }),
        }
    }

    /// Read `len` bytes of device memory (in 512-byte requests, the last rounded up to 4).
    pub fn read_mem(&mut self, addr: u32, len: usize) -> Result<Vec<u8>, GigeError> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let a = addr + out.len() as u32;
            let want = (len - out.len()).min(gvcp::MAX_MEM);
            let count = want.div_ceil(4) * 4;
            let raw = self.transact(&Cmd::ReadMem { addr: a, count: count as u16 })?;
            let data = Ack::parse(&raw)
                .and_then(|x| x.read_mem(a, count).map(<[u8]>::to_vec))
                .map_err(|e| GigeError::Device { what: "READMEM", addr: a, source: e })?;
            out.extend_from_slice(&data[..want]);
        }
        Ok(out)
    }

    pub fn write_mem(&mut self, addr: u32, data: &[u8]) -> Result<(), GigeError> {
        for (k, c) in data.chunks(gvcp::MAX_MEM).enumerate() {
            let a = addr + (k * gvcp::MAX_MEM) as u32;
            let raw = self.transact(&Cmd::WriteMem { addr: a, data: c.to_vec() })?;
            Ack::parse(&raw).and_then(|x| x.write_mem()).map_err(|e| GigeError::Device {
                what: "WRITEMEM",
                addr: a,
                source: e,
            })?;
        }
        Ok(())
    }

    /// The device's GenICam XML as stored (a `.zip` name means a zip archive), and its URL.
    pub fn xml(&mut self) -> Result<(XmlUrl, Vec<u8>), GigeError> {
        let raw = self.read_mem(reg::XML_URL_1, 512)?;
        let url = XmlUrl::parse(&raw)?;
        match &url {
            XmlUrl::Local { addr, len, .. } => {
                let bytes = self.read_mem(*addr, *len as usize)?;
                Ok((url, bytes))
            }
            XmlUrl::Other(s) => {
                Err(GigeError::Xml(format!("`{s}`: only XML in device memory (Local:) is read")))
            }
        }
    }

    /// Become the controlling host (CCP = control). Keep it with [`Gvcp::heartbeat`] well within
    /// the device's heartbeat timeout (register 0x0938).
    pub fn take_control(&mut self) -> Result<(), GigeError> {
        self.write_reg(reg::CCP, reg::CCP_CONTROL)?;
        self.has_control = true;
        Ok(())
    }

    /// Keep control: a read of CCP (what refreshes the heartbeat on every device seen).
    pub fn heartbeat(&mut self) -> Result<u32, GigeError> {
        self.read_reg(reg::CCP)
    }

    pub fn release(&mut self) -> Result<(), GigeError> {
        self.has_control = false;
        self.write_reg(reg::CCP, 0)
    }

    /// Ask for stream packets `first..=last` of block `block` again (no acknowledgement comes:
    /// the packets do, or a PACKET_UNAVAILABLE status in their place).
    pub fn packet_resend(
        &mut self,
        block: u64,
        first: u32,
        last: u32,
        extended: bool,
    ) -> Result<(), GigeError> {
        let id = self.next_id();
        let packet = Cmd::PacketResend { channel: 0, block, first, last, extended }.encode(id)?;
        self.sock.send_to(&packet, self.device)?;
        Ok(())
    }

    /// The local address that reaches the device (where its stream should be sent). Connecting
    /// a UDP socket sends nothing; it only asks the routing table.
    pub fn local_ip(&self) -> Result<Ipv4Addr, GigeError> {
        let probe = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        probe.connect(self.device)?;
        match probe.local_addr()? {
            SocketAddr::V4(a) => Ok(*a.ip()),
            SocketAddr::V6(_) => Err(GigeError::Xml("no IPv4 route to the device".into())),
        }
    }
}

/// Every device that answers a broadcast DISCOVERY within `wait`, on every IPv4 interface that is
/// up (its broadcast address; 127.255.255.255 on loopback), as (address it answered from, record).
/// A device on a foreign subnet answers too (it can still be reached to be given an address).
pub fn discover_all(wait: Duration) -> Result<Vec<(Ipv4Addr, DeviceInfo)>, GigeError> {
    let packet = Cmd::Discovery.encode(0xFFFF)?;
    let mut socks = Vec::new();
    for (local, bcast) in broadcast_targets() {
        let Ok(s) = UdpSocket::bind(SocketAddrV4::new(local, 0)) else { continue };
        if s.set_broadcast(true).is_err() || s.send_to(&packet, SocketAddrV4::new(bcast, gvcp::PORT)).is_err()
        {
            continue;
        }
        socks.push(s);
    }
    let mut found: Vec<(Ipv4Addr, DeviceInfo)> = Vec::new();
    let until = Instant::now() + wait;
    let mut buf = vec![0u8; 1500];
    while Instant::now() < until && !socks.is_empty() {
        for s in &socks {
            s.set_read_timeout(Some(Duration::from_millis(10)))?;
            while let Ok((n, SocketAddr::V4(from))) = s.recv_from(&mut buf) {
                let info = Ack::parse(&buf[..n]).and_then(|a| a.discovery());
                if let Ok(info) = info
                    && !found.iter().any(|(ip, _)| ip == from.ip())
                {
                    found.push((*from.ip(), info));
                }
            }
        }
    }
    Ok(found)
}

/// (local address, broadcast address) of each IPv4 interface that is up.
fn broadcast_targets() -> Vec<(Ipv4Addr, Ipv4Addr)> {
    fn v4(sa: *const libc::sockaddr) -> Option<Ipv4Addr> {
        // SAFETY: the caller passes a non-null sockaddr from getifaddrs; AF_INET ones are
        // sockaddr_in.
        unsafe {
            if sa.is_null() || i32::from((*sa).sa_family) != libc::AF_INET {
                return None;
            }
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
        }
    }
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free once with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut p = ifap;
        while !p.is_null() {
            let ifa = &*p;
            p = ifa.ifa_next;
            let flags = ifa.ifa_flags as libc::c_int;
            let Some(local) = v4(ifa.ifa_addr) else { continue };
            if flags & libc::IFF_UP == 0 {
                continue;
            }
            let bcast = if flags & libc::IFF_LOOPBACK != 0 {
                Some(Ipv4Addr::new(127, 255, 255, 255))
            } else if flags & libc::IFF_BROADCAST != 0 {
                v4(ifa.ifa_ifu)
            } else {
                None
            };
            if let Some(b) = bcast {
                out.push((local, b));
            }
        }
        libc::freeifaddrs(ifap);
    }
    out
}

/// GenICam features reach the device through its control channel: 4-byte aligned registers by
/// READREG/WRITEREG (what every device implements), anything else by READMEM/WRITEMEM.
impl genicam::Port for Gvcp {
    fn read(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, PortError> {
        let a = u32::try_from(addr).map_err(|_| PortError::Address)?;
        let r = if len == 4 && a.is_multiple_of(4) {
            self.read_reg(a).map(|v| v.to_be_bytes().to_vec())
        } else {
            self.read_mem(a & !3, len + (a & 3) as usize).map(|b| b[(a & 3) as usize..].to_vec())
        };
        r.map_err(port_error)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), PortError> {
        let a = u32::try_from(addr).map_err(|_| PortError::Address)?;
        let r = if data.len() == 4 && a.is_multiple_of(4) {
            self.write_reg(a, u32::from_be_bytes([data[0], data[1], data[2], data[3]]))
        } else if a.is_multiple_of(4) && data.len().is_multiple_of(4) {
            self.write_mem(a, data)
        } else {
            return Err(PortError::Unaligned { len: data.len() });
        };
        r.map_err(port_error)
    }
}

/// The GenICam view of a control channel's failure: the device's refusal, or the link's.
fn port_error(e: GigeError) -> PortError {
    match e {
        GigeError::Device { .. } => PortError::Refused(e.to_string()),
        e => PortError::Link(e.to_string()),
    }
}
