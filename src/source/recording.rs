//! The recording format (`.tsrec`): what a source delivered, event by event, with the time it
//! arrived, so that `replay://FILE` feeds the workstation exactly what it saw live.
//!
//! ```text
//! file   = magic "TWINREC1" | u32 header_len | header (JSON, UTF-8) | u32 crc32(header) | record*
//! record = u32 payload_len | u8 kind | u64 t_us | payload | u32 crc32(kind, t_us, payload)
//! ```
//! Little-endian throughout; `t_us` is microseconds since the recording began (never
//! decreasing). Kinds: 1 line (`u64 seq, u8 dark|air|scan, u32 n, n x u16 low, n x u16 high`),
//! 2 bag start (`u64 bag, u16 tag_len | 0xFFFF for none, tag`), 3 bag end (`u64 bag`), 4 fault
//! (`u32 len, text`), 5 status (`u8 flags, 6 x f32`), 6 link (`u8 up, u32 len, text`). GigE
//! Vision raw blocks are not recorded (their lines are). A recording cut short (a crash, a
//! full disk) ends at its last whole record; a damaged record is an error naming its offset.
//!
//! Depends on nothing of the crate (the fuzz target includes this file by path).
//!
//! Must not import: anything of the crate.

use std::io::{Read, Write};

pub const MAGIC: &[u8; 8] = b"TWINREC1";
/// Largest header (JSON) accepted.
pub const MAX_HEADER: u32 = 64 * 1024;
/// Widest line accepted (channels per energy).
pub const MAX_CHANNELS: u32 = 16_384;
/// Largest record payload: a line of the widest detector plus its fields.
pub const MAX_PAYLOAD: u32 = 13 + 4 * MAX_CHANNELS;
/// Longest text (fault, link detail, tag) accepted.
pub const MAX_TEXT: u32 = 4096;

#[derive(Clone, Debug, PartialEq)]
pub enum Rec {
    Line {
        seq: u64,
        kind: u8,
        low: Vec<u16>,
        high: Vec<u16>,
    },
    BagStart {
        bag: u64,
        item_id: Option<String>,
    },
    BagEnd {
        bag: u64,
    },
    Fault(String),
    /// Flags: bit 0 tube on, 1 belt running, 2 belt reversed, 3 interlock open, 4 fault; then
    /// kV, mA, temperature (deg C), belt speed (mm/s), line rate (Hz).
    Status {
        flags: u8,
        values: [f32; 5],
    },
    Link {
        up: bool,
        detail: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RecError {
    #[error("not a Twinspect recording (no TWINREC1 magic)")]
    Magic,
    #[error("recording header: {0}")]
    Header(String),
    #[error("record at byte {offset}: {what}")]
    Damaged { offset: u64, what: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(MAX_TEXT as usize)];
    // Cut on a character boundary.
    let mut n = b.len();
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..n]);
}

/// Encode one record (framing included).
pub fn encode(t_us: u64, rec: &Rec, out: &mut Vec<u8>) {
    let mut p = Vec::new();
    let kind = match rec {
        Rec::Line { seq, kind, low, high } => {
            p.extend_from_slice(&seq.to_le_bytes());
            p.push(*kind);
            p.extend_from_slice(&(low.len() as u32).to_le_bytes());
            for v in low.iter().chain(high.iter()) {
                p.extend_from_slice(&v.to_le_bytes());
            }
            1
        }
        Rec::BagStart { bag, item_id } => {
            p.extend_from_slice(&bag.to_le_bytes());
            match item_id {
                Some(t) => {
                    let mut n = t.len().min(MAX_TEXT as usize);
                    while !t.is_char_boundary(n) {
                        n -= 1;
                    }
                    p.extend_from_slice(&(n as u16).to_le_bytes());
                    p.extend_from_slice(&t.as_bytes()[..n]);
                }
                None => p.extend_from_slice(&0xFFFFu16.to_le_bytes()),
            }
            2
        }
        Rec::BagEnd { bag } => {
            p.extend_from_slice(&bag.to_le_bytes());
            3
        }
        Rec::Fault(s) => {
            put_text(&mut p, s);
            4
        }
        Rec::Status { flags, values } => {
            p.push(*flags);
            for v in values {
                p.extend_from_slice(&v.to_le_bytes());
            }
            5
        }
        Rec::Link { up, detail } => {
            p.push(u8::from(*up));
            put_text(&mut p, detail);
            6
        }
    };
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(&t_us.to_le_bytes());
    out.extend_from_slice(&p);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The file's opening: magic, header, its checksum.
pub fn encode_header(header_json: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    out.extend_from_slice(header_json.as_bytes());
    out.extend_from_slice(&crc32fast::hash(header_json.as_bytes()).to_le_bytes());
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn f32(&mut self) -> Option<f32> {
        self.u32().map(f32::from_bits)
    }
    fn text(&mut self) -> Option<String> {
        let n = self.u32()?;
        if n > MAX_TEXT {
            return None;
        }
        String::from_utf8(self.take(n as usize)?.to_vec()).ok()
    }
}

/// Why a record's payload does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload too short or malformed")]
    Short,
    #[error("line kind {0} (0 dark, 1 air, 2 scan)")]
    LineKind(u8),
    #[error("{0} channels (1..={MAX_CHANNELS})")]
    Channels(u32),
    #[error("tag of {0} bytes (at most {MAX_TEXT})")]
    TagLength(u16),
    #[error("tag is not UTF-8")]
    TagText,
    #[error("unknown record kind {0}")]
    Kind(u8),
    #[error("{0} bytes left over in the payload")]
    LeftOver(usize),
}

/// Decode one record's payload.
pub fn decode_payload(kind: u8, p: &[u8]) -> Result<Rec, PayloadError> {
    let mut c = Cursor { b: p, at: 0 };
    let short = || PayloadError::Short;
    let rec = match kind {
        1 => {
            let seq = c.u64().ok_or_else(short)?;
            let k = c.u8().ok_or_else(short)?;
            if k > 2 {
                return Err(PayloadError::LineKind(k));
            }
            let n = c.u32().ok_or_else(short)?;
            if n == 0 || n > MAX_CHANNELS {
                return Err(PayloadError::Channels(n));
            }
            let samples = c.take(n as usize * 4).ok_or_else(short)?;
            let v: Vec<u16> = samples.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
            let (low, high) = v.split_at(n as usize);
            Rec::Line { seq, kind: k, low: low.to_vec(), high: high.to_vec() }
        }
        2 => {
            let bag = c.u64().ok_or_else(short)?;
            let n = c.u16().ok_or_else(short)?;
            let item_id = if n == 0xFFFF {
                None
            } else if u32::from(n) > MAX_TEXT {
                return Err(PayloadError::TagLength(n));
            } else {
                Some(
                    String::from_utf8(c.take(n as usize).ok_or_else(short)?.to_vec())
                        .map_err(|_| PayloadError::TagText)?,
                )
            };
            Rec::BagStart { bag, item_id }
        }
        3 => Rec::BagEnd { bag: c.u64().ok_or_else(short)? },
        4 => Rec::Fault(c.text().ok_or_else(short)?),
        5 => {
            let flags = c.u8().ok_or_else(short)?;
            let mut values = [0f32; 5];
            for v in &mut values {
                *v = c.f32().ok_or_else(short)?;
            }
            Rec::Status { flags, values }
        }
        6 => {
            let up = c.u8().ok_or_else(short)? != 0;
            Rec::Link { up, detail: c.text().ok_or_else(short)? }
        }
        k => return Err(PayloadError::Kind(k)),
    };
    if c.at != p.len() {
        return Err(PayloadError::LeftOver(p.len() - c.at));
    }
    Ok(rec)
}

/// Reads a recording from any byte stream.
pub struct Reader<R: Read> {
    r: R,
    offset: u64,
    last_t: u64,
    pub header: String,
}

/// Fill `buf` completely; `Ok(false)` at a clean end before the first byte, an error when the
/// stream ends inside.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl<R: Read> Reader<R> {
    pub fn new(mut r: R) -> Result<Self, RecError> {
        let mut magic = [0u8; 8];
        if read_full(&mut r, &mut magic)? != 8 || &magic != MAGIC {
            return Err(RecError::Magic);
        }
        let mut n = [0u8; 4];
        if read_full(&mut r, &mut n)? != 4 {
            return Err(RecError::Header("cut short".into()));
        }
        let n = u32::from_le_bytes(n);
        if n > MAX_HEADER {
            return Err(RecError::Header(format!("{n} bytes (at most {MAX_HEADER})")));
        }
        let mut h = vec![0u8; n as usize + 4];
        if read_full(&mut r, &mut h)? != h.len() {
            return Err(RecError::Header("cut short".into()));
        }
        let crc = u32::from_le_bytes(h[n as usize..].try_into().expect("4 bytes"));
        h.truncate(n as usize);
        if crc32fast::hash(&h) != crc {
            return Err(RecError::Header("checksum mismatch".into()));
        }
        let header = String::from_utf8(h).map_err(|_| RecError::Header("not UTF-8".into()))?;
        Ok(Reader { r, offset: 16 + u64::from(n), last_t: 0, header })
    }

    /// Byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record and its time; `None` at the end (a record cut short by a crash counts as
    /// the end: everything before it is whole).
    pub fn next_record(&mut self) -> Result<Option<(u64, Rec)>, RecError> {
        let at = self.offset;
        let damaged = |what: String| RecError::Damaged { offset: at, what };
        let mut len = [0u8; 4];
        match read_full(&mut self.r, &mut len)? {
            0 => return Ok(None),
            4 => {}
            _ => return Ok(None),
        }
        let len = u32::from_le_bytes(len);
        if len > MAX_PAYLOAD {
            return Err(damaged(format!("payload of {len} bytes (at most {MAX_PAYLOAD})")));
        }
        let mut body = vec![0u8; 1 + 8 + len as usize + 4];
        if read_full(&mut self.r, &mut body)? != body.len() {
            return Ok(None);
        }
        let crc_at = body.len() - 4;
        let crc = u32::from_le_bytes(body[crc_at..].try_into().expect("4 bytes"));
        if crc32fast::hash(&body[..crc_at]) != crc {
            return Err(damaged("checksum mismatch".into()));
        }
        let t = u64::from_le_bytes(body[1..9].try_into().expect("8 bytes"));
        if t < self.last_t {
            return Err(damaged(format!("time goes back ({t} us after {} us)", self.last_t)));
        }
        let rec = decode_payload(body[0], &body[9..crc_at]).map_err(|e| damaged(e.to_string()))?;
        self.last_t = t;
        self.offset += 4 + body.len() as u64;
        Ok(Some((t, rec)))
    }
}

/// Writes a recording to any byte sink.
pub struct Writer<W: Write> {
    w: W,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(mut w: W, header_json: &str) -> std::io::Result<Self> {
        let mut buf = Vec::new();
        encode_header(header_json, &mut buf);
        w.write_all(&buf)?;
        buf.clear();
        Ok(Writer { w, buf })
    }

    pub fn write(&mut self, t_us: u64, rec: &Rec) -> std::io::Result<()> {
        self.buf.clear();
        encode(t_us, rec, &mut self.buf);
        self.w.write_all(&self.buf)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(u64, Rec)> {
        vec![
            (0, Rec::Link { up: true, detail: "connected".into() }),
            (10, Rec::Line { seq: 1, kind: 0, low: vec![1, 2, 3], high: vec![4, 5, 6] }),
            (20, Rec::BagStart { bag: 7, item_id: Some("EMS 包裹 7".into()) }),
            (20, Rec::BagStart { bag: 8, item_id: None }),
            (30, Rec::Status { flags: 0b10011, values: [140.0, 1.0, 31.5, 200.0, 300.0] }),
            (40, Rec::Fault("lamp".into())),
            (50, Rec::BagEnd { bag: 7 }),
        ]
    }

    fn file(recs: &[(u64, Rec)]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), "{\"version\":1}").unwrap();
        for (t, r) in recs {
            w.write(*t, r).unwrap();
        }
        w.into_inner()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(u64, Rec)>, RecError> {
        let mut r = Reader::new(bytes)?;
        let mut v = Vec::new();
        while let Some(x) = r.next_record()? {
            v.push(x);
        }
        Ok(v)
    }

    #[test]
    fn records_round_trip() {
        let recs = sample();
        let bytes = file(&recs);
        let r = Reader::new(&bytes[..]).unwrap();
        assert_eq!(r.header, "{\"version\":1}");
        assert_eq!(read_all(&bytes).unwrap(), recs);
    }

    #[test]
    fn a_recording_cut_anywhere_reads_up_to_its_last_whole_record() {
        let recs = sample();
        let bytes = file(&recs);
        // Where each record ends.
        let mut ends = Vec::new();
        let mut r = Reader::new(&bytes[..]).unwrap();
        let first = r.offset() as usize;
        while r.next_record().unwrap().is_some() {
            ends.push(r.offset() as usize);
        }
        assert_eq!(ends.last(), Some(&bytes.len()));
        for cut in first..=bytes.len() {
            let got = read_all(&bytes[..cut]).unwrap();
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(got, recs[..whole].to_vec(), "cut at {cut}");
        }
        assert!(matches!(read_all(&bytes[..10]), Err(RecError::Header(_))));
        assert!(matches!(read_all(b"TWINREC2...."), Err(RecError::Magic)));
    }

    #[test]
    fn a_damaged_record_is_named_by_its_offset() {
        let bytes = file(&sample());
        let r = Reader::new(&bytes[..]).unwrap();
        let first = r.offset() as usize;
        let mut bad = bytes.clone();
        bad[first + 20] ^= 0x40;
        match read_all(&bad) {
            Err(RecError::Damaged { offset, what }) => {
                assert_eq!(offset, first as u64);
                assert!(what.contains("checksum"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        // An absurd length is refused before anything is allocated.
        let mut bad = bytes.clone();
        bad[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(read_all(&bad), Err(RecError::Damaged { .. })));
        // Time may not go back.
        let mut w = Writer::new(Vec::new(), "{}").unwrap();
        w.write(10, &Rec::BagEnd { bag: 1 }).unwrap();
        w.write(5, &Rec::BagEnd { bag: 2 }).unwrap();
        assert!(read_all(&w.into_inner()).unwrap_err().to_string().contains("time goes back"));
        // A well-framed record with a nonsense payload.
        let mut out = Vec::new();
        encode_header("{}", &mut out);
        let mut rec = Vec::new();
        encode(0, &Rec::Line { seq: 1, kind: 2, low: vec![1], high: vec![2] }, &mut rec);
        rec[21] = 9; // line kind 9 (after length, kind, time and sequence number)
        let crc_at = rec.len() - 4;
        let crc = crc32fast::hash(&rec[4..crc_at]);
        rec[crc_at..].copy_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&rec);
        assert!(read_all(&out).unwrap_err().to_string().contains("line kind 9"));
    }
}
