//! The serial line protocol's codec (`hardware/serial-protocol.md`): frames to bytes and bytes to
//! frames, with no I/O, so it is tested and fuzzed on its own.
//!
//! Owns: [`Frame`], [`encode`], the incremental [`Decoder`] (resynchronises after garbage or a bad
//! CRC, never allocates more than one frame's limit however hostile the header) and its counters.
//!
//! Must not import: anything of the crate (the fuzz targets include this file by path); std and
//! `crc32fast` only.

use std::fmt;

/// Sync word that starts every frame.
pub const SYNC: [u8; 4] = [0xA5, 0x5A, 0x3C, 0xC3];
pub const VERSION: u8 = 1;
/// Header bytes including the header CRC.
pub const HEADER_LEN: usize = 18;
/// Header plus frame CRC.
pub const OVERHEAD: usize = HEADER_LEN + 4;
/// Most channels a LINE may carry.
pub const MAX_CHANNELS: usize = 8192;
/// Largest payload accepted (a LINE of [`MAX_CHANNELS`]).
pub const MAX_PAYLOAD: usize = 8 + 4 * MAX_CHANNELS;
/// Longest bag tag (bytes of UTF-8).
pub const MAX_TAG: usize = 64;

pub mod kind {
    pub const LINE: u8 = 0x01;
    pub const BAG_START: u8 = 0x02;
    pub const BAG_END: u8 = 0x03;
    pub const STATUS: u8 = 0x04;
    pub const HEARTBEAT: u8 = 0x05;
    pub const FAULT: u8 = 0x06;
    pub const COMMAND: u8 = 0x10;
    pub const ACK: u8 = 0x11;
}

/// What the scanner was doing when it read a line (wire values 0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireLineKind {
    Dark = 0,
    Air = 1,
    Scan = 2,
}

/// The scanner's state as a STATUS frame reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// bit 0 tube on, 1 belt running, 2 belt reversed, 3 interlock open, 4 fault.
    pub state: u16,
    pub kv_x10: u16,
    pub ma_x100: u16,
    pub temp_c_x10: i16,
    pub belt_mm_s: u16,
    pub line_rate_hz: u16,
}

impl Status {
    pub const TUBE_ON: u16 = 1;
    pub const BELT_RUNNING: u16 = 2;
    pub const BELT_REVERSED: u16 = 4;
    pub const INTERLOCK_OPEN: u16 = 8;
    pub const FAULT: u16 = 16;
}

/// Host commands (COMMAND frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    BeltStart = 1,
    BeltStop = 2,
    BeltReverse = 3,
    SendStatus = 4,
    Calibrate = 5,
}

impl Command {
    pub fn from_u8(v: u8) -> Option<Command> {
        Some(match v {
            1 => Command::BeltStart,
            2 => Command::BeltStop,
            3 => Command::BeltReverse,
            4 => Command::SendStatus,
            5 => Command::Calibrate,
            _ => return None,
        })
    }
}

/// One frame's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Line {
        line: u32,
        kind: WireLineKind,
        low: Vec<u16>,
        high: Vec<u16>,
    },
    BagStart {
        bag: u32,
        tag: String,
    },
    BagEnd {
        bag: u32,
    },
    Status(Status),
    Heartbeat {
        uptime_ms: u32,
    },
    Fault {
        code: u16,
        text: String,
    },
    /// Host to scanner; the raw command byte (unknown commands are answered "unknown").
    Command {
        command: u8,
    },
    Ack {
        frame: u32,
        command: u8,
        result: u8,
    },
}

/// Why [`encode`] refused a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum EncodeError {
    Channels(usize),
    LowHighMismatch,
    TagTooLong(usize),
    TextTooLong(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Channels(n) => write!(f, "a line of {n} channels (1..={MAX_CHANNELS} allowed)"),
            EncodeError::LowHighMismatch => write!(f, "low and high samples differ in number"),
            EncodeError::TagTooLong(n) => write!(f, "a bag tag of {n} bytes (at most {MAX_TAG})"),
            EncodeError::TextTooLong(n) => write!(f, "a fault text of {n} bytes (at most 255)"),
        }
    }
}

impl std::error::Error for EncodeError {}

const fn crc16_table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u16) << 8;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000 != 0 { (c << 1) ^ 0x1021 } else { c << 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC16: [u16; 256] = crc16_table();

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor).
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0xFFFF, |c, &b| (c << 8) ^ CRC16[((c >> 8) as u8 ^ b) as usize])
}

/// CRC-32 (ISO-HDLC, zlib's).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

fn frame_type(f: &Frame) -> u8 {
    match f {
        Frame::Line { .. } => kind::LINE,
        Frame::BagStart { .. } => kind::BAG_START,
        Frame::BagEnd { .. } => kind::BAG_END,
        Frame::Status(_) => kind::STATUS,
        Frame::Heartbeat { .. } => kind::HEARTBEAT,
        Frame::Fault { .. } => kind::FAULT,
        Frame::Command { .. } => kind::COMMAND,
        Frame::Ack { .. } => kind::ACK,
    }
}

/// Append one frame (header, payload, CRCs) with sequence number `seq` to `out`.
pub fn encode(seq: u32, frame: &Frame, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&SYNC);
    out.push(VERSION);
    out.push(frame_type(frame));
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // length, filled in below
    out.extend_from_slice(&[0; 2]); // header CRC
    let payload = out.len();
    let r = encode_payload(frame, out);
    if let Err(e) = r {
        out.truncate(start);
        return Err(e);
    }
    let len = (out.len() - payload) as u32;
    out[start + 12..start + 16].copy_from_slice(&len.to_le_bytes());
    let hcrc = crc16(&out[start..start + 16]);
    out[start + 16..start + 18].copy_from_slice(&hcrc.to_le_bytes());
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn encode_payload(frame: &Frame, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match frame {
        Frame::Line { line, kind, low, high } => {
            if low.len() != high.len() {
                return Err(EncodeError::LowHighMismatch);
            }
            if low.is_empty() || low.len() > MAX_CHANNELS {
                return Err(EncodeError::Channels(low.len()));
            }
            out.reserve(8 + 4 * low.len() + 4);
            out.extend_from_slice(&line.to_le_bytes());
            out.push(*kind as u8);
            out.push(0);
            out.extend_from_slice(&(low.len() as u16).to_le_bytes());
            for s in low.iter().chain(high) {
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        Frame::BagStart { bag, tag } => {
            if tag.len() > MAX_TAG {
                return Err(EncodeError::TagTooLong(tag.len()));
            }
            out.extend_from_slice(&bag.to_le_bytes());
            out.push(tag.len() as u8);
            out.extend_from_slice(tag.as_bytes());
        }
        Frame::BagEnd { bag } => out.extend_from_slice(&bag.to_le_bytes()),
        Frame::Status(s) => {
            for v in [s.state, s.kv_x10, s.ma_x100, s.temp_c_x10 as u16, s.belt_mm_s, s.line_rate_hz] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Frame::Heartbeat { uptime_ms } => out.extend_from_slice(&uptime_ms.to_le_bytes()),
        Frame::Fault { code, text } => {
            if text.len() > 255 {
                return Err(EncodeError::TextTooLong(text.len()));
            }
            out.extend_from_slice(&code.to_le_bytes());
            out.push(text.len() as u8);
            out.extend_from_slice(text.as_bytes());
        }
        Frame::Command { command } => out.push(*command),
        Frame::Ack { frame, command, result } => {
            out.extend_from_slice(&frame.to_le_bytes());
            out.push(*command);
            out.push(*result);
        }
    }
    Ok(())
}

/// A frame that passed both CRCs and parsed, with its frame sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub seq: u32,
    pub frame: Frame,
}

/// What the decoder counted (all monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub bytes: u64,
    pub frames: u64,
    /// Bytes thrown away while looking for a sync word (noise, partial frames).
    pub bytes_skipped: u64,
    /// Headers refused: bad header CRC, wrong version, or a length over the limit.
    pub header_errors: u64,
    /// Frames whose frame CRC failed.
    pub crc_errors: u64,
    /// Good CRCs but a payload that does not fit the type.
    pub malformed: u64,
    /// Good CRCs, a type this version does not know.
    pub unknown: u64,
    /// Frames lost according to the frame sequence numbers.
    pub frames_lost: u64,
}

/// Incremental decoder: feed it whatever the port delivered, take frames out.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    pos: usize,
    last_seq: Option<u32>,
    pub stats: DecodeStats,
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held waiting for the rest of a frame (never more than one largest frame plus the
    /// last push).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Forget partial data (after a reconnect: what was half-received belongs to the old link).
    pub fn reset_link(&mut self) {
        self.stats.bytes_skipped += self.pending() as u64;
        self.buf.clear();
        self.pos = 0;
        self.last_seq = None;
    }

    /// Feed bytes; every complete good frame is passed to `sink` in order.
    pub fn push(&mut self, bytes: &[u8], mut sink: impl FnMut(Received)) {
        self.stats.bytes += bytes.len() as u64;
        // Compact: keep only the unconsumed tail.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
        while let Some(r) = self.next() {
            sink(r);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Skip `n` bytes as garbage.
    fn skip(&mut self, n: usize) {
        self.pos += n;
        self.stats.bytes_skipped += n as u64;
    }

    fn next(&mut self) -> Option<Received> {
        loop {
            let avail = &self.buf[self.pos..];
            // 1. sync
            match find_sync(avail) {
                Some(0) => {}
                Some(i) => {
                    self.skip(i);
                    continue;
                }
                None => {
                    // Keep a possible partial sync word at the end.
                    let keep = partial_sync_suffix(avail);
                    let n = avail.len() - keep;
                    self.skip(n);
                    return None;
                }
            }
            if avail.len() < HEADER_LEN {
                return None;
            }
            // 2. header
            let h = &avail[..HEADER_LEN];
            let len = u32_at(h, 12) as usize;
            if h[4] != VERSION || len > MAX_PAYLOAD || crc16(&h[..16]) != u16_at(h, 16) {
                self.stats.header_errors += 1;
                self.skip(1);
                continue;
            }
            let total = HEADER_LEN + len + 4;
            if avail.len() < total {
                return None;
            }
            // 3. frame CRC
            let f = &avail[..total];
            if crc32(&f[..HEADER_LEN + len]) != u32_at(f, HEADER_LEN + len) {
                self.stats.crc_errors += 1;
                self.skip(1);
                continue;
            }
            let (ty, seq) = (f[5], u32_at(f, 8));
            let parsed = parse_payload(ty, &f[HEADER_LEN..HEADER_LEN + len]);
            self.pos += total;
            if let Some(prev) = self.last_seq {
                let step = seq.wrapping_sub(prev);
                // A step "backwards" is a restarted sender, not 4 billion lost frames.
                if step > 1 && step < 1 << 31 {
                    self.stats.frames_lost += u64::from(step - 1);
                }
            }
            self.last_seq = Some(seq);
            match parsed {
                Parsed::Ok(frame) => {
                    self.stats.frames += 1;
                    return Some(Received { seq, frame });
                }
                Parsed::Malformed => self.stats.malformed += 1,
                Parsed::Unknown => self.stats.unknown += 1,
            }
        }
    }
}

fn find_sync(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 4 <= b.len() {
        match b[i..].iter().position(|&x| x == SYNC[0]) {
            None => return None,
            Some(k) => {
                i += k;
                if i + 4 > b.len() {
                    return None;
                }
                if b[i..i + 4] == SYNC {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// Length of the longest suffix of `b` that is a proper prefix of the sync word.
fn partial_sync_suffix(b: &[u8]) -> usize {
    (1..SYNC.len()).rev().find(|&k| b.len() >= k && b[b.len() - k..] == SYNC[..k]).unwrap_or(0)
}

enum Parsed {
    Ok(Frame),
    Malformed,
    Unknown,
}

fn parse_payload(ty: u8, p: &[u8]) -> Parsed {
    use Parsed::{Malformed, Unknown};
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    match ty {
        kind::LINE => {
            if p.len() < 8 {
                return Malformed;
            }
            let n = u16_at(p, 6) as usize;
            let kind = match p[4] {
                0 => WireLineKind::Dark,
                1 => WireLineKind::Air,
                2 => WireLineKind::Scan,
                _ => return Malformed,
            };
            if p[5] != 0 || n == 0 || n > MAX_CHANNELS || p.len() != 8 + 4 * n {
                return Malformed;
            }
            let samples = |b: &[u8]| b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            Parsed::Ok(Frame::Line {
                line: u32_at(p, 0),
                kind,
                low: samples(&p[8..8 + 2 * n]),
                high: samples(&p[8 + 2 * n..]),
            })
        }
        kind::BAG_START => {
            if p.len() < 5 || p.len() != 5 + p[4] as usize || p[4] as usize > MAX_TAG {
                return Malformed;
            }
            match text(&p[5..]) {
                Some(tag) if !tag.chars().any(char::is_control) => {
                    Parsed::Ok(Frame::BagStart { bag: u32_at(p, 0), tag })
                }
                _ => Malformed,
            }
        }
        kind::BAG_END if p.len() == 4 => Parsed::Ok(Frame::BagEnd { bag: u32_at(p, 0) }),
        kind::STATUS if p.len() == 12 => Parsed::Ok(Frame::Status(Status {
            state: u16_at(p, 0),
            kv_x10: u16_at(p, 2),
            ma_x100: u16_at(p, 4),
            temp_c_x10: u16_at(p, 6) as i16,
            belt_mm_s: u16_at(p, 8),
            line_rate_hz: u16_at(p, 10),
        })),
        kind::HEARTBEAT if p.len() == 4 => Parsed::Ok(Frame::Heartbeat { uptime_ms: u32_at(p, 0) }),
        kind::FAULT => {
            if p.len() < 3 || p.len() != 3 + p[2] as usize {
                return Malformed;
            }
            match text(&p[3..]) {
                Some(text) => Parsed::Ok(Frame::Fault { code: u16_at(p, 0), text }),
                None => Malformed,
            }
        }
        kind::COMMAND if p.len() == 1 => Parsed::Ok(Frame::Command { command: p[0] }),
        kind::ACK if p.len() == 6 => {
            Parsed::Ok(Frame::Ack { frame: u32_at(p, 0), command: p[4], result: p[5] })
        }
        kind::BAG_END | kind::STATUS | kind::HEARTBEAT | kind::COMMAND | kind::ACK => Malformed,
        _ => Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Frame> {
        vec![
            Frame::Heartbeat { uptime_ms: 1000 },
            Frame::Line { line: 7, kind: WireLineKind::Air, low: vec![1, 2, 65535], high: vec![4, 0, 6] },
            Frame::BagStart { bag: 3, tag: "EMS中国123".into() },
            Frame::BagStart { bag: 4, tag: String::new() },
            Frame::BagEnd { bag: 3 },
            Frame::Status(Status {
                state: 3,
                kv_x10: 1400,
                ma_x100: 50,
                temp_c_x10: -12,
                belt_mm_s: 200,
                line_rate_hz: 300,
            }),
            Frame::Fault { code: 9, text: "interlock".into() },
            Frame::Command { command: 2 },
            Frame::Ack { frame: 77, command: 2, result: 0 },
        ]
    }

    fn decode_all(bytes: &[u8], chunk: usize) -> (Vec<Received>, DecodeStats) {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in bytes.chunks(chunk.max(1)) {
            d.push(c, |r| out.push(r));
        }
        (out, d.stats)
    }

    #[test]
    fn crcs_match_their_published_check_values() {
        // The standard "123456789" check values of both CRC catalogue entries.
        assert_eq!(crc16(b"123456789"), 0x29B1);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn heartbeat_bytes_are_exactly_as_specified() {
        let mut b = Vec::new();
        encode(7, &Frame::Heartbeat { uptime_ms: 1000 }, &mut b).unwrap();
        let head = [0xA5, 0x5A, 0x3C, 0xC3, 1, 5, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0];
        assert_eq!(b[..16], head);
        assert_eq!(u16::from_le_bytes([b[16], b[17]]), crc16(&head));
        assert_eq!(b[18..22], [0xE8, 0x03, 0, 0]);
        assert_eq!(u32::from_le_bytes(b[22..26].try_into().unwrap()), crc32(&b[..22]));
        assert_eq!(b.len(), 4 + OVERHEAD);
    }

    #[test]
    fn every_frame_round_trips_in_any_chunking() {
        let mut bytes = Vec::new();
        for (i, f) in frames().iter().enumerate() {
            encode(i as u32, f, &mut bytes).unwrap();
        }
        for chunk in [1, 2, 3, 17, 4096] {
            let (got, stats) = decode_all(&bytes, chunk);
            assert_eq!(got.iter().map(|r| r.frame.clone()).collect::<Vec<_>>(), frames(), "chunk {chunk}");
            assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), (0..9).collect::<Vec<_>>());
            assert_eq!(stats.bytes_skipped, 0);
            assert_eq!(stats.frames, 9);
        }
    }

    #[test]
    fn encode_refuses_what_the_wire_cannot_carry() {
        let mut b = vec![9];
        let l = |n: usize, m: usize| Frame::Line {
            line: 0,
            kind: WireLineKind::Scan,
            low: vec![0; n],
            high: vec![0; m],
        };
        assert_eq!(encode(0, &l(0, 0), &mut b), Err(EncodeError::Channels(0)));
        assert_eq!(
            encode(0, &l(MAX_CHANNELS + 1, MAX_CHANNELS + 1), &mut b),
            Err(EncodeError::Channels(8193))
        );
        assert_eq!(encode(0, &l(3, 4), &mut b), Err(EncodeError::LowHighMismatch));
        let tag = Frame::BagStart { bag: 0, tag: "x".repeat(65) };
        assert_eq!(encode(0, &tag, &mut b), Err(EncodeError::TagTooLong(65)));
        assert_eq!(b, vec![9], "a refused frame leaves nothing behind");
        encode(0, &l(MAX_CHANNELS, MAX_CHANNELS), &mut b).unwrap();
        assert_eq!(b.len(), 1 + OVERHEAD + MAX_PAYLOAD);
    }

    #[test]
    fn garbage_bad_crcs_and_false_syncs_are_skipped_and_counted() {
        let fs = frames();
        let mut bytes = b"noise".to_vec();
        bytes.extend_from_slice(&SYNC); // a false sync with nothing valid after it
        bytes.extend_from_slice(&[1, 1, 0, 0]);
        encode(0, &fs[0], &mut bytes).unwrap();
        // frame 1 with a flipped payload byte
        let at = bytes.len();
        encode(1, &fs[1], &mut bytes).unwrap();
        bytes[at + HEADER_LEN + 3] ^= 0x40;
        // frame 2 with a corrupt length (header CRC catches it)
        let at = bytes.len();
        encode(2, &fs[2], &mut bytes).unwrap();
        bytes[at + 13] ^= 0x01;
        bytes.extend_from_slice(&[0xA5, 0x5A, 0xA5]); // partial syncs
        encode(3, &fs[3], &mut bytes).unwrap();
        for chunk in [1, 5, 1 << 20] {
            let (got, st) = decode_all(&bytes, chunk);
            assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 3], "chunk {chunk}");
            assert_eq!(st.crc_errors, 1);
            assert_eq!(st.header_errors, 2, "the false sync and the corrupt length");
            assert_eq!(st.frames_lost, 2);
            assert!(st.bytes_skipped > 5);
        }
    }

    #[test]
    fn a_hostile_length_is_refused_before_anything_is_buffered_for_it() {
        let mut h = SYNC.to_vec();
        h.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        let c = crc16(&h);
        h.extend_from_slice(&c.to_le_bytes());
        let mut d = Decoder::new();
        d.push(&h, |_| panic!("no frame"));
        assert_eq!(d.stats.header_errors, 1);
        assert!(d.pending() < SYNC.len(), "{}", d.pending());
        // A valid header for a maximal line, then a stream of noise: memory stays bounded.
        let mut big = Vec::new();
        encode(
            0,
            &Frame::Line { line: 0, kind: WireLineKind::Scan, low: vec![1; 8192], high: vec![2; 8192] },
            &mut big,
        )
        .unwrap();
        big.truncate(big.len() - 100);
        d.push(&big, |_| panic!("incomplete"));
        for _ in 0..100 {
            d.push(&[0x11; 4096], |_| {});
            assert!(d.pending() <= OVERHEAD + MAX_PAYLOAD + 4096);
        }
        assert_eq!(d.stats.crc_errors, 1);
    }

    #[test]
    fn malformed_and_unknown_frames_with_good_crcs_are_counted_not_returned() {
        let mut bytes = Vec::new();
        encode(0, &Frame::BagEnd { bag: 1 }, &mut bytes).unwrap();
        // retype the BAG_END as LINE: a 4-byte line is malformed
        bytes[5] = kind::LINE;
        let fix = |b: &mut Vec<u8>| {
            let h = crc16(&b[..16]);
            b[16..18].copy_from_slice(&h.to_le_bytes());
            let n = b.len() - 4;
            let c = crc32(&b[..n]);
            b[n..].copy_from_slice(&c.to_le_bytes());
        };
        fix(&mut bytes);
        let mut unknown = Vec::new();
        encode(1, &Frame::BagEnd { bag: 1 }, &mut unknown).unwrap();
        unknown[5] = 0x7F;
        fix(&mut unknown);
        let mut tag = Vec::new();
        encode(2, &Frame::BagStart { bag: 1, tag: "a\u{7}b".into() }, &mut tag).unwrap();
        bytes.extend(unknown);
        bytes.extend(tag);
        encode(3, &Frame::BagEnd { bag: 2 }, &mut bytes).unwrap();
        let (got, st) = decode_all(&bytes, 7);
        assert_eq!(got, vec![Received { seq: 3, frame: Frame::BagEnd { bag: 2 } }]);
        assert_eq!((st.malformed, st.unknown, st.frames_lost), (2, 1, 0));
    }

    #[test]
    fn sequence_wraps_and_restarts_are_not_losses() {
        let mut bytes = Vec::new();
        for s in [u32::MAX - 1, u32::MAX, 0, 1, 5, 0, 1] {
            encode(s, &Frame::BagEnd { bag: 0 }, &mut bytes).unwrap();
        }
        let (got, st) = decode_all(&bytes, 64);
        assert_eq!(got.len(), 7);
        assert_eq!(st.frames_lost, 3, "only 2, 3, 4 are missing");
    }
}
