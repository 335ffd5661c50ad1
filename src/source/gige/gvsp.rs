//! GVSP, the GigE Vision stream protocol: packet headers (standard 16-bit and extended 64-bit
//! block ids), image leader and trailer, and the assembly of packets into blocks — out of order,
//! across block-id wrap, with the missing packets named so they can be asked for again, and
//! incomplete blocks reported as such, never passed on as whole. No I/O.
//!
//! Owns: [`Header`], [`Leader`], [`Trailer`], packet encoding (for the emulator), [`Blocks`].
//!
//! Must not import: anything of the crate (fuzzed by path); std only.

use std::collections::BTreeMap;
use std::fmt;

pub mod format {
    pub const LEADER: u8 = 1;
    pub const TRAILER: u8 = 2;
    pub const PAYLOAD: u8 = 3;
}

pub const PAYLOAD_IMAGE: u16 = 0x0001;
pub const MONO8: u32 = 0x0108_0001;
pub const MONO16: u32 = 0x0110_0007;
/// IP (20) + UDP (8) + GVSP standard header (8): subtract from SCPS for the data per packet.
pub const STANDARD_OVERHEAD: usize = 36;
pub const EXTENDED_OVERHEAD: usize = 48;
/// Largest block accepted (a header can claim anything).
pub const MAX_BLOCK_BYTES: usize = 256 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub status: u16,
    /// The block id (16 bits wide unless `extended`).
    pub block: u64,
    pub packet: u32,
    pub format: u8,
    pub extended: bool,
    /// The device flags this packet as a resend (extended headers only).
    pub resent: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum GvspError {
    Short(usize),
    Leader(&'static str),
    Size { width: u32, height: u32, pixel_format: u32 },
}

impl fmt::Display for GvspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GvspError::Short(n) => write!(f, "a {n}-byte GVSP packet is shorter than its header"),
            GvspError::Leader(w) => write!(f, "GVSP leader: {w}"),
            GvspError::Size { width, height, pixel_format } => {
                write!(f, "GVSP block of {width} x {height} pixels of format {pixel_format:#010x} refused")
            }
        }
    }
}

impl std::error::Error for GvspError {}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Split a packet into its header and the bytes after it.
pub fn parse(b: &[u8]) -> Result<(Header, &[u8]), GvspError> {
    if b.len() < 8 {
        return Err(GvspError::Short(b.len()));
    }
    if b[4] & 0x80 != 0 {
        if b.len() < 20 {
            return Err(GvspError::Short(b.len()));
        }
        let flags = be16(b, 2);
        let block = u64::from_be_bytes(b[8..16].try_into().expect("8 bytes"));
        let h = Header {
            status: be16(b, 0),
            block,
            packet: be32(b, 16),
            format: b[4] & 0x0F,
            extended: true,
            resent: flags & 0x01 != 0,
        };
        return Ok((h, &b[20..]));
    }
    let h = Header {
        status: be16(b, 0),
        block: u64::from(be16(b, 2)),
        packet: be32(b, 4) & 0x00FF_FFFF,
        format: b[4] & 0x0F,
        extended: false,
        resent: false,
    };
    Ok((h, &b[8..]))
}

/// Image leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leader {
    pub payload_type: u16,
    pub timestamp: u64,
    pub pixel_format: u32,
    pub width: u32,
    pub height: u32,
    pub offset_x: u32,
    pub offset_y: u32,
}

impl Leader {
    pub const LEN: usize = 36;

    pub fn parse(b: &[u8]) -> Result<Leader, GvspError> {
        if b.len() < Self::LEN {
            return Err(GvspError::Leader("shorter than 36 bytes"));
        }
        Ok(Leader {
            payload_type: be16(b, 2),
            timestamp: u64::from_be_bytes(b[4..12].try_into().expect("8 bytes")),
            pixel_format: be32(b, 12),
            width: be32(b, 16),
            height: be32(b, 20),
            offset_x: be32(b, 24),
            offset_y: be32(b, 28),
        })
    }

    pub fn bytes_per_pixel(&self) -> Option<usize> {
        match (self.pixel_format >> 16) & 0xFF {
            8 => Some(1),
            16 => Some(2),
            _ => None,
        }
    }

    /// The image's size in bytes, when it is a size we accept.
    pub fn image_bytes(&self) -> Result<usize, GvspError> {
        let refuse =
            GvspError::Size { width: self.width, height: self.height, pixel_format: self.pixel_format };
        let bpp = self.bytes_per_pixel().ok_or(GvspError::Leader("pixel format is not 8 or 16 bits mono"))?;
        let n = (self.width as usize).checked_mul(self.height as usize).and_then(|p| p.checked_mul(bpp));
        match n {
            Some(n) if n > 0 && n <= MAX_BLOCK_BYTES => Ok(n),
            _ => Err(refuse),
        }
    }
}

/// Image trailer: the lines actually delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    pub payload_type: u16,
    pub height: u32,
}

impl Trailer {
    pub fn parse(b: &[u8]) -> Option<Trailer> {
        (b.len() >= 8).then(|| Trailer { payload_type: be16(b, 2), height: be32(b, 4) })
    }
}

/// A standard-header packet (for the emulator and tests).
pub fn encode(block: u16, packet: u32, format: u8, status: u16, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
    out.extend_from_slice(&((u32::from(format & 0x0F) << 24) | (packet & 0x00FF_FFFF)).to_be_bytes());
    out.extend_from_slice(body);
}

/// An extended-id packet (GigE Vision 2.0: 64-bit block id, 32-bit packet id).
pub fn encode_extended(block: u64, packet: u32, format: u8, status: u16, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // flags
    out.extend_from_slice(&(0x8000_0000u32 | (u32::from(format & 0x0F) << 24)).to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
    out.extend_from_slice(&packet.to_be_bytes());
    out.extend_from_slice(body);
}

pub fn leader_body(l: &Leader) -> Vec<u8> {
    let mut b = Vec::with_capacity(Leader::LEN);
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&l.payload_type.to_be_bytes());
    b.extend_from_slice(&l.timestamp.to_be_bytes());
    for v in [l.pixel_format, l.width, l.height, l.offset_x, l.offset_y] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&[0; 4]); // padding x, padding y
    b
}

pub fn trailer_body(t: &Trailer) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&t.payload_type.to_be_bytes());
    b.extend_from_slice(&t.height.to_be_bytes());
    b
}

/// A block as delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Block id widened across 16-bit wraps (the wire id is `id & 0xFFFF` for standard headers).
    pub id: u64,
    pub leader: Leader,
    pub data: Vec<u8>,
    /// Packets that never arrived (their bytes are zero in `data`); empty for a whole block.
    pub missing_packets: Vec<u32>,
    /// Lines the trailer says were delivered.
    pub trailer_height: Option<u32>,
    /// Data bytes per payload packet (packet `k` holds bytes `(k-1)*chunk..k*chunk`).
    pub chunk: usize,
}

impl Block {
    /// Did every packet holding bytes `range` of `data` arrive?
    pub fn bytes_present(&self, range: std::ops::Range<usize>) -> bool {
        if range.is_empty() {
            return true;
        }
        let first = (range.start / self.chunk) as u32 + 1;
        let last = ((range.end - 1) / self.chunk) as u32 + 1;
        !self.missing_packets.iter().any(|p| (first..=last).contains(p))
    }
}

impl Block {
    /// Every packet and the trailer arrived.
    pub fn complete(&self) -> bool {
        self.missing_packets.is_empty() && self.trailer_height.is_some()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    pub packets: u64,
    pub duplicates: u64,
    /// Packets for blocks already delivered or given up, or outside the block.
    pub stray: u64,
    pub malformed: u64,
    pub blocks_complete: u64,
    pub blocks_incomplete: u64,
    /// Blocks whose leader never came (nothing to deliver).
    pub blocks_lost: u64,
}

struct Open {
    leader: Option<Leader>,
    data: Vec<u8>,
    got: Vec<bool>,
    trailer: Option<Trailer>,
    /// Packet count from the trailer's id (leader 0, data 1..=n, trailer n+1).
    last_id: Option<u32>,
    first_seen: u64,
    resend_asked: bool,
}

/// Assembles packets into blocks. `chunk` is the data bytes per payload packet (SCPS - 36).
pub struct Blocks {
    chunk: usize,
    open: BTreeMap<u64, Open>,
    /// The most recent wire block id and its widened value.
    last: Option<(u64, u64)>,
    /// Blocks at or below this id are finished (delivered or given up).
    done_up_to: Option<u64>,
    /// How many packets (of any block) may pass before an incomplete block is given up.
    pub patience: u64,
    /// Largest block accepted: set it to the PayloadSize the device was configured for, so a
    /// corrupt leader cannot make us allocate more.
    pub max_bytes: usize,
    clock: u64,
    pub stats: BlockStats,
}

impl Blocks {
    pub fn new(chunk: usize) -> Self {
        Blocks {
            chunk: chunk.max(1),
            open: BTreeMap::new(),
            last: None,
            done_up_to: None,
            patience: 4096,
            max_bytes: MAX_BLOCK_BYTES,
            clock: 0,
            stats: BlockStats::default(),
        }
    }

    /// Widen a 16-bit id (ids wrap 65535 -> 1; 0 is not used); `None` for an id from before
    /// the first block seen.
    fn widen(&mut self, h: &Header) -> Option<u64> {
        if h.extended {
            return Some(h.block);
        }
        let wire = h.block & 0xFFFF;
        let id = match self.last {
            None => wire,
            Some((lw, lid)) => {
                // distance forward on the 1..=65535 circle
                let fwd = if wire >= lw { wire - lw } else { wire + 65535 - lw };
                if fwd < 32768 {
                    lid + fwd
                } else {
                    lid.checked_sub(65535 - fwd)? // an older block (late or resent packet)
                }
            }
        };
        if self.last.is_none_or(|(_, lid)| id > lid) {
            self.last = Some((wire, id));
        }
        Some(id)
    }

    /// Feed one packet; returns blocks finished by it (whole, or given up as incomplete).
    pub fn push(&mut self, packet: &[u8]) -> Vec<Block> {
        self.clock += 1;
        let mut out = Vec::new();
        let Ok((h, body)) = parse(packet) else {
            self.stats.malformed += 1;
            return out;
        };
        self.stats.packets += 1;
        let Some(id) = self.widen(&h) else {
            self.stats.stray += 1;
            return out;
        };
        if self.done_up_to.is_some_and(|d| id <= d) && !self.open.contains_key(&id) {
            self.stats.stray += 1;
            return out;
        }
        let clock = self.clock;
        let chunk = self.chunk;
        let o = self.open.entry(id).or_insert_with(|| Open {
            leader: None,
            data: Vec::new(),
            got: Vec::new(),
            trailer: None,
            last_id: None,
            first_seen: clock,
            resend_asked: false,
        });
        match h.format {
            format::LEADER => match Leader::parse(body).and_then(|l| l.image_bytes().map(|n| (l, n))) {
                Ok((_, n)) if n > self.max_bytes => self.stats.malformed += 1,
                Ok((l, n)) if o.leader.is_none() => {
                    o.leader = Some(l);
                    o.data.resize(n, 0);
                    o.got.resize(n.div_ceil(chunk), false);
                }
                Ok(_) => self.stats.duplicates += 1,
                Err(_) => self.stats.malformed += 1,
            },
            format::PAYLOAD => {
                let k = h.packet as usize;
                if o.leader.is_none() {
                    // payload before its leader: keep nothing, the leader's resend will bring it
                    self.stats.stray += 1;
                } else if k == 0 || k > o.got.len() {
                    self.stats.stray += 1;
                } else if o.got[k - 1] {
                    self.stats.duplicates += 1;
                } else {
                    let at = (k - 1) * chunk;
                    let n = body.len().min(o.data.len() - at);
                    o.data[at..at + n].copy_from_slice(&body[..n]);
                    o.got[k - 1] = true;
                }
            }
            format::TRAILER => {
                o.trailer = Trailer::parse(body);
                o.last_id = Some(h.packet);
                if o.trailer.is_none() {
                    self.stats.malformed += 1;
                }
            }
            _ => self.stats.malformed += 1,
        }
        let whole = o.leader.is_some() && o.trailer.is_some() && o.got.iter().all(|g| *g);
        if whole {
            let b = self.finish(id);
            out.extend(b);
        }
        // Give up on blocks older than `patience` packets.
        let stale: Vec<u64> =
            self.open.iter().filter(|(_, o)| clock - o.first_seen > self.patience).map(|(k, _)| *k).collect();
        for k in stale {
            out.extend(self.finish(k));
        }
        out
    }

    fn finish(&mut self, id: u64) -> Option<Block> {
        let o = self.open.remove(&id)?;
        self.done_up_to = Some(self.done_up_to.map_or(id, |d| d.max(id)));
        let Some(leader) = o.leader else {
            self.stats.blocks_lost += 1;
            return None;
        };
        let missing: Vec<u32> =
            o.got.iter().enumerate().filter(|(_, g)| !**g).map(|(k, _)| k as u32 + 1).collect();
        let b = Block {
            id,
            leader,
            data: o.data,
            missing_packets: missing,
            trailer_height: o.trailer.map(|t| t.height),
            chunk: self.chunk,
        };
        if b.complete() {
            self.stats.blocks_complete += 1;
        } else {
            self.stats.blocks_incomplete += 1;
        }
        Some(b)
    }

    /// The oldest block still being assembled: blocks finished after it must wait for it to
    /// keep their order (a block waiting for a resend finishes after the next one).
    pub fn oldest_open(&self) -> Option<u64> {
        self.open.keys().next().copied()
    }

    /// Give up every open block now (end of stream).
    pub fn flush(&mut self) -> Vec<Block> {
        let ids: Vec<u64> = self.open.keys().copied().collect();
        ids.into_iter().filter_map(|k| self.finish(k)).collect()
    }

    /// Packets to ask for again: for each open block older than the newest, the data packets
    /// missing so far (once per block), as `(wire block id, first, last)` ranges.
    pub fn resend_requests(&mut self) -> Vec<(u64, u32, u32)> {
        let newest = self.open.keys().next_back().copied();
        let mut out = Vec::new();
        for (id, o) in self.open.iter_mut() {
            if Some(*id) == newest && o.trailer.is_none() || o.resend_asked || o.leader.is_none() {
                continue;
            }
            o.resend_asked = true;
            let mut k = 0;
            while k < o.got.len() {
                if o.got[k] {
                    k += 1;
                    continue;
                }
                let first = k;
                while k < o.got.len() && !o.got[k] {
                    k += 1;
                }
                out.push((*id, first as u32 + 1, k as u32));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(w: u32, h: u32) -> Leader {
        Leader {
            payload_type: PAYLOAD_IMAGE,
            timestamp: 7,
            pixel_format: MONO16,
            width: w,
            height: h,
            offset_x: 0,
            offset_y: 0,
        }
    }

    /// The packets of one Mono16 block, `chunk` data bytes each.
    fn block_packets(block: u16, w: u32, h: u32, chunk: usize, fill: impl Fn(usize) -> u8) -> Vec<Vec<u8>> {
        let l = leader(w, h);
        let n = l.image_bytes().unwrap();
        let data: Vec<u8> = (0..n).map(fill).collect();
        let mut out = Vec::new();
        let mut p = Vec::new();
        encode(block, 0, format::LEADER, 0, &leader_body(&l), &mut p);
        out.push(p);
        let mut id = 1;
        for c in data.chunks(chunk) {
            let mut p = Vec::new();
            encode(block, id, format::PAYLOAD, 0, c, &mut p);
            out.push(p);
            id += 1;
        }
        let mut p = Vec::new();
        encode(
            block,
            id,
            format::TRAILER,
            0,
            &trailer_body(&Trailer { payload_type: PAYLOAD_IMAGE, height: h }),
            &mut p,
        );
        out.push(p);
        out
    }

    #[test]
    fn headers_parse_as_the_captures_show_them() {
        // Leader of block 0xff79 from Aravis's fake camera (shared GigE brief).
        let raw: Vec<u8> = [
            0x00, 0x00, 0xff, 0x79, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x18, 0xeb, 0xfe, 0x8a,
            0x3d, 0x27, 0xc4, 0xa8, 0x01, 0x10, 0x00, 0x07, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]
        .to_vec();
        let (h, body) = parse(&raw).unwrap();
        assert_eq!((h.block, h.packet, h.format, h.extended), (0xff79, 0, format::LEADER, false));
        let l = Leader::parse(body).unwrap();
        assert_eq!((l.pixel_format, l.width, l.height), (MONO16, 1024, 2));
        assert_eq!(l.image_bytes(), Ok(4096));
        let (h, _) = parse(&[0, 0, 0xff, 0x79, 0x03, 0, 0, 4, 3, 0x79]).unwrap();
        assert_eq!((h.packet, h.format), (4, format::PAYLOAD));
        // extended: flags 0x0001 (resent), block 2^40, packet 9
        let mut e = vec![0, 0, 0, 1, 0x83, 0, 0, 0];
        e.extend_from_slice(&(1u64 << 40).to_be_bytes());
        e.extend_from_slice(&9u32.to_be_bytes());
        let (h, _) = parse(&e).unwrap();
        assert_eq!((h.block, h.packet, h.format, h.extended, h.resent), (1 << 40, 9, 3, true, true));
        assert_eq!(parse(&[0; 5]), Err(GvspError::Short(5)));
        assert!(Leader { width: 0, ..leader(1, 1) }.image_bytes().is_err());
        assert!(Leader { width: u32::MAX, height: u32::MAX, ..leader(1, 1) }.image_bytes().is_err());
    }

    #[test]
    fn blocks_assemble_out_of_order_and_across_the_wrap() {
        let mut b = Blocks::new(100);
        let mut got = Vec::new();
        for block in [65534u16, 65535, 1, 2] {
            let mut ps = block_packets(block, 64, 3, 100, |i| (i % 251) as u8 ^ block as u8);
            ps.swap(2, 3);
            ps.swap(1, 4);
            for p in ps {
                got.extend(b.push(&p));
            }
        }
        assert_eq!(
            got.iter().map(|x| x.id).collect::<Vec<_>>(),
            vec![65534, 65535, 65536, 65537],
            "wrap skips 0"
        );
        for (blk, wire) in got.iter().zip([65534u16, 65535, 1, 2]) {
            assert!(blk.complete());
            assert_eq!(blk.data.len(), 384);
            assert!(blk.data.iter().enumerate().all(|(i, v)| *v == (i % 251) as u8 ^ wire as u8));
        }
        assert_eq!(b.stats.blocks_complete, 4);
    }

    #[test]
    fn a_block_waiting_for_a_resend_is_the_oldest_open() {
        let mut b = Blocks::new(100);
        let one = block_packets(1, 64, 3, 100, |_| 1);
        let two = block_packets(2, 64, 3, 100, |_| 2);
        for (k, p) in one.iter().enumerate() {
            if k != 2 {
                assert!(b.push(p).is_empty(), "block 1 lacks packet 2");
            }
        }
        let done: Vec<u64> = two.iter().flat_map(|p| b.push(p)).map(|x| x.id).collect();
        assert_eq!(done, [2], "block 2 finishes first");
        assert_eq!(b.oldest_open(), Some(1), "so it must wait for block 1");
        assert_eq!(b.push(&one[2]).iter().map(|x| x.id).collect::<Vec<_>>(), [1]);
        assert_eq!(b.oldest_open(), None);
    }

    #[test]
    fn lost_packets_are_named_asked_for_and_filled_by_a_resend() {
        let mut b = Blocks::new(100);
        let ps = block_packets(10, 100, 4, 100, |i| i as u8); // 800 bytes: 8 data packets
        let keep: Vec<&Vec<u8>> =
            ps.iter().enumerate().filter(|(i, _)| ![3, 4, 7].contains(i)).map(|(_, p)| p).collect();
        for p in &keep {
            assert!(b.push(p).is_empty(), "incomplete: nothing delivered yet");
        }
        assert_eq!(b.resend_requests(), vec![(10, 3, 4), (10, 7, 7)]);
        assert!(b.resend_requests().is_empty(), "asked once");
        let mut done = Vec::new();
        for i in [3, 4, 7] {
            done.extend(b.push(&ps[i]));
        }
        assert_eq!(done.len(), 1);
        assert!(done[0].complete());
        assert!(done[0].data.iter().enumerate().all(|(i, v)| *v == i as u8));
        // a duplicate after delivery is stray, not a new block
        assert!(b.push(&ps[2]).is_empty());
        assert_eq!(b.stats.stray, 1);
    }

    #[test]
    fn a_block_that_never_completes_is_given_up_as_incomplete() {
        let mut b = Blocks::new(100);
        b.patience = 20;
        let ps = block_packets(5, 100, 4, 100, |_| 9);
        for (i, p) in ps.iter().enumerate() {
            if i != 2 {
                b.push(p);
            }
        }
        let mut out = Vec::new();
        for blk in 6..10u16 {
            for p in block_packets(blk, 100, 4, 100, |_| 1) {
                out.extend(b.push(&p));
            }
        }
        let five = out.iter().find(|x| x.id == 5).expect("given up and reported");
        assert!(!five.complete());
        assert_eq!(five.missing_packets, vec![2]);
        assert_eq!(b.stats.blocks_incomplete, 1);
        // garbage and a hostile leader change nothing
        b.push(&[1, 2, 3]);
        let mut p = Vec::new();
        encode(99, 0, format::LEADER, 0, &leader_body(&leader(u32::MAX, u32::MAX)), &mut p);
        b.push(&p);
        assert_eq!(b.stats.malformed, 2);
        // a leader larger than the configured payload is refused before anything is allocated
        b.max_bytes = 100;
        b.push(&block_packets(200, 100, 4, 100, |_| 0)[0]);
        assert_eq!(b.stats.malformed, 3);
    }
}
