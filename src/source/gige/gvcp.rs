//! GVCP, the GigE Vision control protocol (UDP 3956): commands and acknowledgements as bytes, with
//! no I/O. Big-endian throughout.
//!
//! Owns: command encoding ([`Cmd`]), acknowledgement parsing ([`Ack`]) with every length checked
//! against the packet, the DISCOVERY_ACK record ([`DeviceInfo`]), the XML URL of register 0x0200
//! ([`XmlUrl`]), and the bootstrap register addresses.
//!
//! Must not import: anything of the crate (fuzzed by path); std only.

use std::fmt;
use std::net::Ipv4Addr;

pub const PORT: u16 = 3956;
/// Most data bytes in one READMEM/WRITEMEM (what Aravis uses; the packet limit is 540 bytes).
pub const MAX_MEM: usize = 512;
/// Most register addresses in one READREG (a 540-byte payload).
pub const MAX_REGS: usize = 135;
const KEY: u8 = 0x42;
const FLAG_ACK: u8 = 0x01;
const FLAG_BROADCAST_ACK: u8 = 0x10;
/// On PACKETRESEND: the request carries 64-bit block ids.
pub const FLAG_EXTENDED_ID: u8 = 0x10;
/// GVSP configuration register (0x0960): 64-bit block ids on the stream.
pub const GVSP_CONFIG_EXTENDED_ID: u32 = 0x4000_0000;

pub mod cmd {
    pub const DISCOVERY: u16 = 0x0002;
    pub const PACKETRESEND: u16 = 0x0040;
    pub const READREG: u16 = 0x0080;
    pub const WRITEREG: u16 = 0x0082;
    pub const READMEM: u16 = 0x0084;
    pub const WRITEMEM: u16 = 0x0086;
    pub const PENDING_ACK: u16 = 0x0089;
}

/// Bootstrap registers.
pub mod reg {
    pub const VERSION: u32 = 0x0000;
    pub const DEVICE_MODE: u32 = 0x0004;
    pub const CURRENT_IP: u32 = 0x0024;
    pub const XML_URL_1: u32 = 0x0200;
    pub const XML_URL_2: u32 = 0x0400;
    pub const STREAM_CHANNELS: u32 = 0x0904;
    pub const GVCP_CAPABILITY: u32 = 0x0934;
    pub const HEARTBEAT_TIMEOUT: u32 = 0x0938;
    pub const TICK_FREQ_HIGH: u32 = 0x093C;
    pub const TICK_FREQ_LOW: u32 = 0x0940;
    pub const GVSP_CONFIG: u32 = 0x0960;
    pub const CCP: u32 = 0x0A00;
    pub const SCP0: u32 = 0x0D00;
    pub const SCPS0: u32 = 0x0D04;
    pub const SCPD0: u32 = 0x0D08;
    pub const SCDA0: u32 = 0x0D18;
    pub const SCSP0: u32 = 0x0D1C;
    /// CCP values.
    pub const CCP_EXCLUSIVE: u32 = 0x1;
    pub const CCP_CONTROL: u32 = 0x2;
    /// Capability bit: the device honours PACKETRESEND.
    pub const CAP_PACKETRESEND: u32 = 0x4;
}

/// Acknowledgement status codes.
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    pub const NOT_IMPLEMENTED: u16 = 0x8001;
    pub const INVALID_PARAMETER: u16 = 0x8002;
    pub const INVALID_ADDRESS: u16 = 0x8003;
    pub const WRITE_PROTECT: u16 = 0x8004;
    pub const BAD_ALIGNMENT: u16 = 0x8005;
    pub const ACCESS_DENIED: u16 = 0x8006;
    pub const BUSY: u16 = 0x8007;
    pub const PACKET_UNAVAILABLE: u16 = 0x800C;
    pub const ERROR: u16 = 0x8FFF;

    pub fn name(s: u16) -> &'static str {
        match s {
            SUCCESS => "success",
            NOT_IMPLEMENTED => "not implemented",
            INVALID_PARAMETER => "invalid parameter",
            INVALID_ADDRESS => "invalid address",
            WRITE_PROTECT => "write protected",
            BAD_ALIGNMENT => "bad alignment",
            ACCESS_DENIED => "access denied (another host controls the device)",
            BUSY => "busy",
            PACKET_UNAVAILABLE => "packet unavailable",
            _ => "device error",
        }
    }
}

/// A command from the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    Discovery,
    ReadReg(Vec<u32>),
    WriteReg(Vec<(u32, u32)>),
    ReadMem {
        addr: u32,
        count: u16,
    },
    WriteMem {
        addr: u32,
        data: Vec<u8>,
    },
    /// Ask for GVSP packets `first..=last` of a block again: standard 16-bit block ids and 24-bit
    /// packet ids, or (`extended`, flag 0x10) 64-bit block ids and 32-bit packet ids.
    PacketResend {
        channel: u16,
        block: u64,
        first: u32,
        last: u32,
        extended: bool,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum CmdError {
    Empty,
    TooMany(usize),
    Count(usize),
    PacketId(u32),
    BlockId(u64),
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::Empty => write!(f, "a register command needs at least one address"),
            CmdError::TooMany(n) => write!(f, "{n} registers in one command (at most {MAX_REGS})"),
            CmdError::Count(n) => {
                write!(f, "{n} bytes of memory in one command (1..={MAX_MEM}, a multiple of 4)")
            }
            CmdError::PacketId(p) => write!(f, "packet id {p} does not fit 24 bits"),
            CmdError::BlockId(b) => write!(f, "block id {b} does not fit 16 bits (extended ids are off)"),
        }
    }
}

impl std::error::Error for CmdError {}

impl Cmd {
    pub fn code(&self) -> u16 {
        match self {
            Cmd::Discovery => cmd::DISCOVERY,
            Cmd::ReadReg(_) => cmd::READREG,
            Cmd::WriteReg(_) => cmd::WRITEREG,
            Cmd::ReadMem { .. } => cmd::READMEM,
            Cmd::WriteMem { .. } => cmd::WRITEMEM,
            Cmd::PacketResend { .. } => cmd::PACKETRESEND,
        }
    }

    /// The packet for request id `req_id` (never 0; discovery always uses 0xFFFF).
    pub fn encode(&self, req_id: u16) -> Result<Vec<u8>, CmdError> {
        let mut p = Vec::new();
        let (flags, id) = match self {
            Cmd::Discovery => (FLAG_ACK | FLAG_BROADCAST_ACK, 0xFFFF),
            Cmd::PacketResend { extended: true, .. } => (FLAG_EXTENDED_ID, req_id.max(1)),
            Cmd::PacketResend { .. } => (0, req_id.max(1)),
            _ => (FLAG_ACK, req_id.max(1)),
        };
        match self {
            Cmd::Discovery => {}
            Cmd::ReadReg(a) => {
                if a.is_empty() {
                    return Err(CmdError::Empty);
                }
                if a.len() > MAX_REGS {
                    return Err(CmdError::TooMany(a.len()));
                }
                a.iter().for_each(|x| p.extend_from_slice(&x.to_be_bytes()));
            }
            Cmd::WriteReg(w) => {
                if w.is_empty() {
                    return Err(CmdError::Empty);
                }
                if w.len() > MAX_REGS / 2 {
                    return Err(CmdError::TooMany(w.len()));
                }
                for (a, v) in w {
                    p.extend_from_slice(&a.to_be_bytes());
                    p.extend_from_slice(&v.to_be_bytes());
                }
            }
            Cmd::ReadMem { addr, count } => {
                let c = usize::from(*count);
                if c == 0 || c > MAX_MEM || c % 4 != 0 {
                    return Err(CmdError::Count(c));
                }
                p.extend_from_slice(&addr.to_be_bytes());
                p.extend_from_slice(&0u16.to_be_bytes());
                p.extend_from_slice(&count.to_be_bytes());
            }
            Cmd::WriteMem { addr, data } => {
                if data.is_empty() || data.len() > MAX_MEM || data.len() % 4 != 0 {
                    return Err(CmdError::Count(data.len()));
                }
                p.extend_from_slice(&addr.to_be_bytes());
                p.extend_from_slice(data);
            }
            Cmd::PacketResend { channel, block, first, last, extended: false } => {
                for id in [first, last] {
                    if *id > 0x00FF_FFFF {
                        return Err(CmdError::PacketId(*id));
                    }
                }
                let b = u16::try_from(*block).map_err(|_| CmdError::BlockId(*block))?;
                p.extend_from_slice(&channel.to_be_bytes());
                p.extend_from_slice(&b.to_be_bytes());
                p.extend_from_slice(&first.to_be_bytes());
                p.extend_from_slice(&last.to_be_bytes());
            }
            Cmd::PacketResend { channel, block, first, last, extended: true } => {
                p.extend_from_slice(&channel.to_be_bytes());
                p.extend_from_slice(&0u16.to_be_bytes());
                p.extend_from_slice(&first.to_be_bytes());
                p.extend_from_slice(&last.to_be_bytes());
                p.extend_from_slice(&block.to_be_bytes());
            }
        }
        let mut out = vec![KEY, flags];
        out.extend_from_slice(&self.code().to_be_bytes());
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        out.extend(p);
        Ok(out)
    }
}

/// An acknowledgement as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack<'a> {
    pub status: u16,
    pub ack: u16,
    pub id: u16,
    pub payload: &'a [u8],
}

#[derive(Debug, PartialEq, Eq)]
pub enum AckError {
    Short(usize),
    Length { said: usize, got: usize },
    Status(u16),
    Unexpected { want: u16, got: u16 },
    Payload(&'static str),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AckError::Short(n) => write!(f, "a {n}-byte GVCP packet (the header alone is 8)"),
            AckError::Length { said, got } => write!(f, "GVCP ack says {said} payload bytes, carries {got}"),
            AckError::Status(s) => write!(f, "device answered {:#06x}: {}", s, status::name(*s)),
            AckError::Unexpected { want, got } => write!(f, "expected ack {want:#06x}, got {got:#06x}"),
            AckError::Payload(what) => write!(f, "GVCP ack payload: {what}"),
        }
    }
}

impl std::error::Error for AckError {}

pub(crate) fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

pub(crate) fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl<'a> Ack<'a> {
    /// Parse a packet; the payload is exactly what the header says (extra bytes are refused,
    /// as are missing ones).
    pub fn parse(b: &'a [u8]) -> Result<Ack<'a>, AckError> {
        if b.len() < 8 {
            return Err(AckError::Short(b.len()));
        }
        let len = usize::from(be16(b, 4));
        if b.len() - 8 != len {
            return Err(AckError::Length { said: len, got: b.len() - 8 });
        }
        Ok(Ack { status: be16(b, 0), ack: be16(b, 2), id: be16(b, 6), payload: &b[8..] })
    }

    /// The ack for command `code`, successful; a PENDING_ACK is not handled here.
    fn expect(&self, code: u16) -> Result<(), AckError> {
        if self.status != status::SUCCESS {
            return Err(AckError::Status(self.status));
        }
        if self.ack != code + 1 {
            return Err(AckError::Unexpected { want: code + 1, got: self.ack });
        }
        Ok(())
    }

    /// Milliseconds more to wait, if this is a PENDING_ACK.
    pub fn pending_ms(&self) -> Option<u16> {
        (self.ack == cmd::PENDING_ACK && self.payload.len() >= 4).then(|| be16(self.payload, 2))
    }

    pub fn read_regs(&self, n: usize) -> Result<Vec<u32>, AckError> {
        self.expect(cmd::READREG)?;
        if self.payload.len() != 4 * n {
            return Err(AckError::Payload("READREG ack has the wrong number of values"));
        }
        Ok(self.payload.chunks_exact(4).map(|c| be32(c, 0)).collect())
    }

    /// Registers written (the device's index).
    pub fn write_regs(&self) -> Result<u16, AckError> {
        self.expect(cmd::WRITEREG)?;
        if self.payload.len() != 4 {
            return Err(AckError::Payload("WRITEREG ack is not 4 bytes"));
        }
        Ok(be16(self.payload, 2))
    }

    pub fn read_mem(&self, addr: u32, count: usize) -> Result<&'a [u8], AckError> {
        self.expect(cmd::READMEM)?;
        if self.payload.len() != 4 + count {
            return Err(AckError::Payload("READMEM ack has the wrong length"));
        }
        if be32(self.payload, 0) != addr {
            return Err(AckError::Payload("READMEM ack is for another address"));
        }
        Ok(&self.payload[4..])
    }

    pub fn write_mem(&self) -> Result<u16, AckError> {
        self.expect(cmd::WRITEMEM)?;
        if self.payload.len() != 4 {
            return Err(AckError::Payload("WRITEMEM ack is not 4 bytes"));
        }
        Ok(be16(self.payload, 2))
    }

    pub fn discovery(&self) -> Result<DeviceInfo, AckError> {
        self.expect(cmd::DISCOVERY)?;
        DeviceInfo::parse(self.payload)
    }
}

/// What DISCOVERY_ACK says about a device (its bootstrap registers 0x000-0x0F7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub version: (u16, u16),
    pub device_mode: u32,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub subnet: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub manufacturer: String,
    pub model: String,
    pub device_version: String,
    pub manufacturer_info: String,
    pub serial: String,
    pub user_name: String,
}

/// A NUL-terminated (or full-width) string field.
fn field(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim().to_owned()
}

impl DeviceInfo {
    pub const LEN: usize = 248;

    pub fn parse(p: &[u8]) -> Result<DeviceInfo, AckError> {
        if p.len() < Self::LEN {
            return Err(AckError::Payload("DISCOVERY_ACK shorter than 248 bytes"));
        }
        let ip = |i| Ipv4Addr::from(be32(p, i));
        Ok(DeviceInfo {
            version: (be16(p, 0), be16(p, 2)),
            device_mode: be32(p, 4),
            mac: [p[0x0A], p[0x0B], p[0x0C], p[0x0D], p[0x0E], p[0x0F]],
            ip: ip(0x24),
            subnet: ip(0x34),
            gateway: ip(0x44),
            manufacturer: field(&p[0x48..0x68]),
            model: field(&p[0x68..0x88]),
            device_version: field(&p[0x88..0xA8]),
            manufacturer_info: field(&p[0xA8..0xD8]),
            serial: field(&p[0xD8..0xE8]),
            user_name: field(&p[0xE8..0xF8]),
        })
    }

    /// The record as a device sends it.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![0u8; Self::LEN];
        p[0..2].copy_from_slice(&self.version.0.to_be_bytes());
        p[2..4].copy_from_slice(&self.version.1.to_be_bytes());
        p[4..8].copy_from_slice(&self.device_mode.to_be_bytes());
        p[0x0A..0x10].copy_from_slice(&self.mac);
        for (at, ip) in [(0x24, self.ip), (0x34, self.subnet), (0x44, self.gateway)] {
            p[at..at + 4].copy_from_slice(&ip.octets());
        }
        for (at, len, s) in [
            (0x48, 32, &self.manufacturer),
            (0x68, 32, &self.model),
            (0x88, 32, &self.device_version),
            (0xA8, 48, &self.manufacturer_info),
            (0xD8, 16, &self.serial),
            (0xE8, 16, &self.user_name),
        ] {
            let b = s.as_bytes();
            let n = b.len().min(len - 1);
            p[at..at + n].copy_from_slice(&b[..n]);
        }
        p
    }
}

/// Where the GenICam XML is: `Local:name;addr;len` (in device memory), `File:` or `http:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlUrl {
    Local { name: String, addr: u32, len: u32 },
    Other(String),
}

/// Largest XML (zipped or not) read from device memory.
pub const MAX_XML: u32 = 4 << 20;

/// Why a device's XML URL (register 0x0200) cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlUrlError {
    #[error("XML URL `{0}`: expected Local:name;address;length")]
    Form(String),
    #[error("XML URL `{url}`: `{field}` is not hexadecimal")]
    NotHex { url: String, field: String },
    #[error("XML URL `{url}`: length {len} (1..={MAX_XML} accepted)")]
    Length { url: String, len: u32 },
    #[error("XML URL `{0}`: address + length overflow")]
    Overflow(String),
}

impl XmlUrl {
    /// Parse the string of register 0x0200 (NUL-terminated in 512 bytes).
    pub fn parse(raw: &[u8]) -> Result<XmlUrl, XmlUrlError> {
        let s = field(raw);
        let Some(rest) = s.strip_prefix("Local:").or_else(|| s.strip_prefix("local:")) else {
            return Ok(XmlUrl::Other(s));
        };
        let rest = rest.split('?').next().unwrap_or("");
        let parts: Vec<&str> = rest.split(';').collect();
        let [name, addr, len] = parts[..] else {
            return Err(XmlUrlError::Form(s));
        };
        let hex = |t: &str| {
            let t = t.trim();
            u32::from_str_radix(t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t), 16)
                .map_err(|_| XmlUrlError::NotHex { url: s.clone(), field: t.to_owned() })
        };
        let (addr, len) = (hex(addr)?, hex(len)?);
        if len == 0 || len > MAX_XML {
            return Err(XmlUrlError::Length { url: s, len });
        }
        if addr.checked_add(len).is_none() {
            return Err(XmlUrlError::Overflow(s));
        }
        Ok(XmlUrl::Local { name: name.to_owned(), addr, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace() && *c != '|').collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn commands_encode_as_aravis_sends_them() {
        // Byte strings from real Aravis traffic (shared GigE brief, captures).
        assert_eq!(Cmd::Discovery.encode(7).unwrap(), hex("42 11 0002 0000 ffff"));
        assert_eq!(
            Cmd::ReadMem { addr: 0x200, count: 0x200 }.encode(0xff15).unwrap(),
            hex("42 01 0084 0008 ff15 | 00000200 0000 0200")
        );
        assert_eq!(
            Cmd::WriteReg(vec![(0xa00, 2)]).encode(0xff36).unwrap(),
            hex("42 01 0082 0008 ff36 | 00000a00 00000002")
        );
        assert_eq!(Cmd::ReadReg(vec![4]).encode(0xff37).unwrap(), hex("42 01 0080 0004 ff37 | 00000004"));
        assert_eq!(
            Cmd::WriteMem { addr: 0xd24, data: vec![0, 0, 0, 0x40] }.encode(0xff29).unwrap(),
            hex("42 01 0086 0008 ff29 | 00000d24 00000040")
        );
        assert_eq!(
            Cmd::PacketResend { channel: 0, block: 0xffde, first: 0x50, last: 0x50, extended: false }
                .encode(0xff15)
                .unwrap(),
            hex("42 00 0040 000c ff15 | 0000 ffde | 00000050 | 00000050")
        );
        // GigE Vision 2.0 extended ids: flag 0x10, channel, reserved, first32, last32, block64
        assert_eq!(
            Cmd::PacketResend { channel: 0, block: 1 << 40, first: 7, last: 9, extended: true }
                .encode(3)
                .unwrap(),
            hex("42 10 0040 0014 0003 | 0000 0000 | 00000007 | 00000009 | 0000010000000000")
        );
        assert_eq!(
            Cmd::PacketResend { channel: 0, block: 70_000, first: 1, last: 1, extended: false }.encode(3),
            Err(CmdError::BlockId(70_000))
        );
        assert_eq!(Cmd::ReadReg(vec![]).encode(1), Err(CmdError::Empty));
        assert_eq!(Cmd::ReadMem { addr: 0, count: 6 }.encode(1), Err(CmdError::Count(6)));
        assert_eq!(Cmd::ReadReg(vec![0; 136]).encode(1), Err(CmdError::TooMany(136)));
        assert_eq!(Cmd::ReadReg(vec![4]).encode(0).unwrap()[6..8], [0, 1], "request id 0 is never sent");
    }

    #[test]
    fn acks_parse_with_every_length_checked() {
        let a = hex("0000 0085 0008 ff2d | 00030004 00000800");
        assert_eq!(Ack::parse(&a).unwrap().read_mem(0x30004, 4).unwrap(), &[0, 0, 8, 0]);
        assert!(Ack::parse(&a).unwrap().read_mem(0x30008, 4).is_err(), "another address");
        assert!(Ack::parse(&a).unwrap().read_mem(0x30004, 8).is_err(), "short");
        let w = hex("0000 0083 0004 ff36 | 0000 0001");
        assert_eq!(Ack::parse(&w).unwrap().write_regs(), Ok(1));
        let r = hex("0000 0081 0004 ff37 | 00000000");
        assert_eq!(Ack::parse(&r).unwrap().read_regs(1), Ok(vec![0]));
        assert_eq!(
            Ack::parse(&r).unwrap().read_regs(2),
            Err(AckError::Payload("READREG ack has the wrong number of values"))
        );
        let denied = hex("8006 0083 0000 0005");
        let e = Ack::parse(&denied).unwrap().write_regs().unwrap_err();
        assert!(e.to_string().contains("access denied"), "{e}");
        assert_eq!(
            Ack::parse(&hex("0000 0081 0008 0001 | 00000000")),
            Err(AckError::Length { said: 8, got: 4 })
        );
        assert_eq!(Ack::parse(&[0, 0, 0]), Err(AckError::Short(3)));
        let pending = hex("0000 0089 0004 0009 | 0000 01f4");
        assert_eq!(Ack::parse(&pending).unwrap().pending_ms(), Some(500));
        assert_eq!(Ack::parse(&r).unwrap().write_regs(), Err(AckError::Unexpected { want: 0x83, got: 0x81 }));
    }

    #[test]
    fn discovery_records_round_trip_and_short_ones_are_refused() {
        let info = DeviceInfo {
            version: (2, 0),
            device_mode: 0x8000_0001,
            mac: [2, 0, 0, 0, 0, 7],
            ip: Ipv4Addr::new(127, 0, 0, 2),
            subnet: Ipv4Addr::new(255, 0, 0, 0),
            gateway: Ipv4Addr::UNSPECIFIED,
            manufacturer: "Twinspect".into(),
            model: "Line scanner emulator".into(),
            device_version: "0.1.0".into(),
            manufacturer_info: "desk-140".into(),
            serial: "XRAY0001".into(),
            user_name: "a name that is far too long for 16 bytes".into(),
        };
        let mut ack = hex("0000 0003 00f8 ffff");
        ack.extend(info.encode());
        let got = Ack::parse(&ack).unwrap().discovery().unwrap();
        assert_eq!(got.user_name, "a name that is", "cut to the field (15 bytes and a NUL), trimmed");
        assert_eq!(DeviceInfo { user_name: got.user_name.clone(), ..info }, got);
        assert!(DeviceInfo::parse(&[0; 100]).is_err());
    }

    #[test]
    fn xml_urls_as_devices_write_them() {
        let mut raw = b"Local:arv-fake-camera.xml;10000;3e67".to_vec();
        raw.resize(512, 0);
        assert_eq!(
            XmlUrl::parse(&raw),
            Ok(XmlUrl::Local { name: "arv-fake-camera.xml".into(), addr: 0x10000, len: 0x3e67 })
        );
        assert_eq!(
            XmlUrl::parse(b"Local:x.zip;0x8000;0X100?SchemaVersion=1.1.0"),
            Ok(XmlUrl::Local { name: "x.zip".into(), addr: 0x8000, len: 0x100 })
        );
        assert_eq!(XmlUrl::parse(b"http://example/x.xml"), Ok(XmlUrl::Other("http://example/x.xml".into())));
        for bad in [
            &b"Local:x.xml;zz;10"[..],
            b"Local:x.xml;10",
            b"Local:x;0;0",
            b"Local:x;ffffffff;10",
            b"Local:x;0;ffffffff",
        ] {
            assert!(XmlUrl::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
