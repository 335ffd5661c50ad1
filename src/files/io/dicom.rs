//! DICOM Part 10 files, the subset DICOS needs: data sets of explicit-VR little-endian elements
//! (nested sequences included), written with defined lengths, read with defined or undefined
//! lengths under hard limits.
//!
//! Owns: the byte layout (preamble, `DICM`, the file meta group with its group length, element
//! headers, item and delimiter tags, value padding). Knows nothing of DICOS or of scans: which
//! elements a file holds is `src/files/dicos.rs`'s business.
//!
//! Must not import: anything of the crate (it is fuzzed by path), egui, wgpu.
//!
//! Why not a DICOM crate: DICOS readers (Stratovan's SDICOS, which pyDICOS wraps) require a DICOS
//! version element *in the file meta group*, (0002,0004), which the Rust DICOM crates' fixed
//! meta-table types cannot carry; and the subset needed here is small.

use std::collections::BTreeMap;
use std::fmt;

/// Explicit VR little endian: the only transfer syntax written or read.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Limits a hostile file cannot exceed.
pub const MAX_DEPTH: usize = 8;
pub const MAX_ELEMENTS: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomError(pub String);

impl fmt::Display for DicomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DicomError {}

fn bad<T>(m: impl Into<String>) -> Result<T, DicomError> {
    Err(DicomError(m.into()))
}

/// `(group, element)` as one number: group in the high half.
pub const fn tag(group: u16, element: u16) -> u32 {
    ((group as u32) << 16) | element as u32
}

pub fn tag_text(t: u32) -> String {
    format!("({:04X},{:04X})", t >> 16, t & 0xffff)
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bytes(Vec<u8>),
    Items(Vec<DataSet>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub vr: [u8; 2],
    pub value: Value,
}

/// Elements in tag order (the order DICOM requires on disk).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataSet {
    elements: BTreeMap<u32, Element>,
}

/// VRs with a 4-byte length after two reserved bytes.
fn long_header(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV"
    )
}

fn known_vr(vr: [u8; 2]) -> bool {
    long_header(vr)
        || matches!(
            &vr,
            b"AE"
                | b"AS"
                | b"AT"
                | b"CS"
                | b"DA"
                | b"DS"
                | b"DT"
                | b"FL"
                | b"FD"
                | b"IS"
                | b"LO"
                | b"LT"
                | b"PN"
                | b"SH"
                | b"SL"
                | b"SS"
                | b"ST"
                | b"TM"
                | b"UI"
                | b"UL"
                | b"US"
        )
}

impl DataSet {
    pub fn new() -> Self {
        DataSet::default()
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Element)> {
        self.elements.iter().map(|(t, e)| (*t, e))
    }

    pub fn put_bytes(&mut self, t: u32, vr: &[u8; 2], mut bytes: Vec<u8>) {
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        self.elements.insert(t, Element { vr: *vr, value: Value::Bytes(bytes) });
    }

    /// A text value (several values joined by `\`), padded to even length as its VR requires.
    pub fn put_str(&mut self, t: u32, vr: &[u8; 2], s: &str) {
        let mut b = s.as_bytes().to_vec();
        if b.len() % 2 == 1 {
            b.push(if vr == b"UI" { 0 } else { b' ' });
        }
        self.elements.insert(t, Element { vr: *vr, value: Value::Bytes(b) });
    }

    pub fn put_strs(&mut self, t: u32, vr: &[u8; 2], values: &[&str]) {
        self.put_str(t, vr, &values.join("\\"));
    }

    pub fn put_u16(&mut self, t: u32, v: u16) {
        self.put_bytes(t, b"US", v.to_le_bytes().to_vec());
    }

    pub fn put_i16(&mut self, t: u32, v: i16) {
        self.put_bytes(t, b"SS", v.to_le_bytes().to_vec());
    }

    pub fn put_f32s(&mut self, t: u32, v: &[f32]) {
        self.put_bytes(t, b"FL", v.iter().flat_map(|x| x.to_le_bytes()).collect());
    }

    pub fn put_f64(&mut self, t: u32, v: f64) {
        self.put_bytes(t, b"FD", v.to_le_bytes().to_vec());
    }

    pub fn put_items(&mut self, t: u32, items: Vec<DataSet>) {
        self.elements.insert(t, Element { vr: *b"SQ", value: Value::Items(items) });
    }

    pub fn get(&self, t: u32) -> Option<&Element> {
        self.elements.get(&t)
    }

    pub fn bytes(&self, t: u32) -> Option<&[u8]> {
        match &self.get(t)?.value {
            Value::Bytes(b) => Some(b),
            Value::Items(_) => None,
        }
    }

    /// A text value without its padding (trailing spaces and NULs), or None when absent.
    pub fn str(&self, t: u32) -> Option<String> {
        let b = self.bytes(t)?;
        let s = String::from_utf8_lossy(b);
        Some(s.trim_end_matches([' ', '\0']).trim_start_matches(' ').to_string())
    }

    /// Required text: a clear error naming the element when absent.
    pub fn need_str(&self, t: u32, name: &str) -> Result<String, DicomError> {
        self.str(t).ok_or_else(|| DicomError(format!("{name} {} is missing", tag_text(t))))
    }

    pub fn u16(&self, t: u32) -> Option<u16> {
        let b = self.bytes(t)?;
        (b.len() >= 2).then(|| u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn f32s(&self, t: u32) -> Option<Vec<f32>> {
        let b = self.bytes(t)?;
        Some(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    pub fn f64(&self, t: u32) -> Option<f64> {
        let b = self.bytes(t)?;
        (b.len() >= 8).then(|| f64::from_le_bytes(b[..8].try_into().expect("8 bytes")))
    }

    pub fn items(&self, t: u32) -> &[DataSet] {
        match self.get(t).map(|e| &e.value) {
            Some(Value::Items(v)) => v,
            _ => &[],
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        for (t, e) in &self.elements {
            out.extend_from_slice(&((t >> 16) as u16).to_le_bytes());
            out.extend_from_slice(&((t & 0xffff) as u16).to_le_bytes());
            out.extend_from_slice(&e.vr);
            let body = match &e.value {
                Value::Bytes(b) => b.clone(),
                Value::Items(items) => {
                    let mut b = Vec::new();
                    for item in items {
                        let mut ib = Vec::new();
                        item.encode_into(&mut ib);
                        b.extend_from_slice(&0xfffeu16.to_le_bytes());
                        b.extend_from_slice(&0xe000u16.to_le_bytes());
                        b.extend_from_slice(&(ib.len() as u32).to_le_bytes());
                        b.extend_from_slice(&ib);
                    }
                    b
                }
            };
            if long_header(e.vr) {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            } else {
                out.extend_from_slice(&(body.len() as u16).to_le_bytes());
            }
            out.extend_from_slice(&body);
        }
    }

    /// The elements as explicit VR little endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// A Part 10 file: 128-byte preamble, `DICM`, the meta group (group length computed here; every
/// element of `meta` must be in group 0002) and the data set.
pub fn encode_file(meta: &DataSet, data: &DataSet) -> Vec<u8> {
    let meta_bytes = meta.encode();
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    let mut gl = DataSet::new();
    gl.put_bytes(tag(2, 0), b"UL", (meta_bytes.len() as u32).to_le_bytes().to_vec());
    out.extend_from_slice(&gl.encode());
    out.extend_from_slice(&meta_bytes);
    out.extend_from_slice(&data.encode());
    out
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    elements: usize,
}

impl Reader<'_> {
    fn u16(&mut self) -> Result<u16, DicomError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    fn u32(&mut self) -> Result<u32, DicomError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DicomError> {
        if n > self.b.len() - self.pos {
            return bad(format!(
                "the file ends inside an element at byte {} (needs {n} more bytes, {} left)",
                self.pos,
                self.b.len() - self.pos
            ));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Elements until `end` (a byte offset) or, for an undefined-length item, its delimiter.
    fn data_set(
        &mut self,
        end: Option<usize>,
        depth: usize,
        stop_group: Option<u16>,
    ) -> Result<DataSet, DicomError> {
        let mut ds = DataSet::new();
        let mut last: Option<u32> = None;
        loop {
            if let Some(end) = end {
                if self.pos >= end {
                    if self.pos > end {
                        return bad(format!("an element runs past the end of its item at byte {end}"));
                    }
                    return Ok(ds);
                }
            } else if self.pos == self.b.len() {
                if depth == 0 {
                    return Ok(ds);
                }
                return bad("the file ends inside an item of undefined length");
            }
            let start = self.pos;
            let group = self.u16()?;
            if stop_group.is_some_and(|g| g != group) {
                self.pos = start;
                return Ok(ds);
            }
            let element = self.u16()?;
            let t = tag(group, element);
            if t == tag(0xfffe, 0xe00d) {
                self.u32()?;
                if end.is_some() || depth == 0 {
                    return bad(format!("an item delimiter outside an item at byte {start}"));
                }
                return Ok(ds);
            }
            if group == 0xfffe {
                return bad(format!("unexpected {} at byte {start}", tag_text(t)));
            }
            self.elements += 1;
            if self.elements > MAX_ELEMENTS {
                return bad(format!("more than {MAX_ELEMENTS} elements"));
            }
            if last.is_some_and(|l| t <= l) {
                return bad(format!("{} at byte {start} is out of order (tags must increase)", tag_text(t)));
            }
            last = Some(t);
            let vr_b = self.take(2)?;
            let vr = [vr_b[0], vr_b[1]];
            if !known_vr(vr) {
                return bad(format!(
                    "{} at byte {start}: {:?} is not a value representation (only explicit VR little endian is read)",
                    tag_text(t),
                    String::from_utf8_lossy(&vr)
                ));
            }
            let len = if long_header(vr) {
                self.take(2)?;
                self.u32()?
            } else {
                self.u16()? as u32
            };
            if &vr == b"SQ" {
                if depth + 1 > MAX_DEPTH {
                    return bad(format!("sequences nested deeper than {MAX_DEPTH}"));
                }
                let items = self.items(len, depth + 1)?;
                ds.elements.insert(t, Element { vr, value: Value::Items(items) });
                continue;
            }
            if len == u32::MAX {
                return bad(format!(
                    "{} at byte {start} has an undefined length (encapsulated, compressed pixel data is not read)",
                    tag_text(t)
                ));
            }
            let v = self.take(len as usize)?.to_vec();
            ds.elements.insert(t, Element { vr, value: Value::Bytes(v) });
        }
    }

    fn items(&mut self, len: u32, depth: usize) -> Result<Vec<DataSet>, DicomError> {
        let end = if len == u32::MAX {
            None
        } else {
            if len as usize > self.b.len() - self.pos {
                return bad(format!(
                    "a sequence of {len} bytes at byte {} runs past the end of the file",
                    self.pos
                ));
            }
            Some(self.pos + len as usize)
        };
        let mut items = Vec::new();
        loop {
            if let Some(end) = end {
                if self.pos == end {
                    return Ok(items);
                }
                if self.pos > end {
                    return bad("an item runs past the end of its sequence");
                }
            }
            let at = self.pos;
            let t = tag(self.u16()?, self.u16()?);
            let ilen = self.u32()?;
            match t {
                x if x == tag(0xfffe, 0xe0dd) && end.is_none() => return Ok(items),
                x if x == tag(0xfffe, 0xe000) => {
                    let iend = if ilen == u32::MAX {
                        None
                    } else {
                        if ilen as usize > self.b.len() - self.pos {
                            return bad(format!(
                                "an item of {ilen} bytes at byte {at} runs past the end of the file"
                            ));
                        }
                        Some(self.pos + ilen as usize)
                    };
                    items.push(self.data_set(iend, depth, None)?);
                }
                _ => return bad(format!("expected an item at byte {at}, found {}", tag_text(t))),
            }
        }
    }
}

/// Read a Part 10 file: `(meta group, data set)`. Only explicit VR little endian data sets are
/// read; anything else (or a damaged file) is an error that says what and where.
pub fn parse_file(bytes: &[u8]) -> Result<(DataSet, DataSet), DicomError> {
    if bytes.len() < 132 || &bytes[128..132] != b"DICM" {
        return bad("not a DICOM file (no 'DICM' after the 128-byte preamble)");
    }
    let mut r = Reader { b: bytes, pos: 132, elements: 0 };
    let meta = r.data_set(None, 0, Some(2))?;
    let ts = meta.str(tag(2, 0x10)).unwrap_or_default();
    if ts != EXPLICIT_VR_LE {
        return bad(format!(
            "transfer syntax {ts:?} is not read (only explicit VR little endian, {EXPLICIT_VR_LE}, uncompressed)"
        ));
    }
    let data = r.data_set(None, 0, None)?;
    Ok((meta, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (DataSet, DataSet) {
        let mut meta = DataSet::new();
        meta.put_bytes(tag(2, 1), b"OB", vec![0, 1]);
        meta.put_str(tag(2, 0x10), b"UI", EXPLICIT_VR_LE);
        let mut ds = DataSet::new();
        ds.put_str(tag(0x10, 0x20), b"LO", "TAG-1");
        ds.put_u16(tag(0x28, 0x10), 3);
        ds.put_f32s(tag(0x4010, 0x1004), &[1.0, 2.0, 0.0]);
        let mut inner = DataSet::new();
        inner.put_str(tag(8, 0x100), b"SH", "op1");
        let mut item = DataSet::new();
        item.put_items(tag(0x40, 0x1101), vec![inner.clone(), inner]);
        ds.put_items(tag(8, 0x1072), vec![item]);
        ds.put_bytes(tag(0x7fe0, 0x10), b"OW", vec![1, 2, 3, 4]);
        (meta, ds)
    }

    #[test]
    fn files_round_trip_with_nested_sequences() {
        let (meta, ds) = sample();
        let bytes = encode_file(&meta, &ds);
        let (m2, d2) = parse_file(&bytes).unwrap();
        assert_eq!(m2.str(tag(2, 0x10)).unwrap(), EXPLICIT_VR_LE);
        assert!(m2.get(tag(2, 0)).is_some(), "group length written");
        assert_eq!(d2, ds);
        assert_eq!(d2.str(tag(0x10, 0x20)).unwrap(), "TAG-1");
        assert_eq!(d2.items(tag(8, 0x1072))[0].items(tag(0x40, 0x1101)).len(), 2);
    }

    #[test]
    fn undefined_lengths_are_read() {
        // A sequence and its item with undefined lengths, as pydicom and SDICOS write them.
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        let ts = b"1.2.840.10008.1.2.1\0";
        b.extend_from_slice(&[2, 0, 0x10, 0, b'U', b'I', ts.len() as u8, 0]);
        b.extend_from_slice(ts);
        b.extend_from_slice(&[8, 0, 0x72, 0x10, b'S', b'Q', 0, 0, 0xff, 0xff, 0xff, 0xff]);
        b.extend_from_slice(&[0xfe, 0xff, 0, 0xe0, 0xff, 0xff, 0xff, 0xff]);
        b.extend_from_slice(&[8, 0, 0, 1, b'S', b'H', 4, 0, b'o', b'p', b'1', b' ']);
        b.extend_from_slice(&[0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0x10, 0, 0x20, 0, b'L', b'O', 2, 0, b'A', b' ']);
        let (_, ds) = parse_file(&b).unwrap();
        assert_eq!(ds.items(tag(8, 0x1072))[0].str(tag(8, 0x100)).unwrap(), "op1");
        assert_eq!(ds.str(tag(0x10, 0x20)).unwrap(), "A");
    }

    #[test]
    fn damaged_files_are_refused_with_a_reason() {
        let (meta, ds) = sample();
        let bytes = encode_file(&meta, &ds);
        // Every truncation is an error (or, cut exactly between elements, a shorter data set),
        // never a panic.
        for n in 0..bytes.len() {
            let _ = parse_file(&bytes[..n]);
        }
        assert!(parse_file(&bytes[..bytes.len() - 1]).unwrap_err().0.contains("ends inside"));
        assert!(parse_file(b"hello").unwrap_err().0.contains("DICM"));
        // An absurd length.
        let mut evil = bytes.clone();
        let at = evil.windows(2).position(|w| w == b"OW").unwrap();
        evil[at + 4..at + 8].copy_from_slice(&0xfff0_0000u32.to_le_bytes());
        assert!(parse_file(&evil).unwrap_err().0.contains("needs"));
        // Compressed data sets are named, not misread.
        let mut m = DataSet::new();
        m.put_str(tag(2, 0x10), b"UI", "1.2.840.10008.1.2.4.70");
        assert!(parse_file(&encode_file(&m, &ds)).unwrap_err().0.contains("1.2.840.10008.1.2.4.70"));
        // Sequences nested past the limit.
        let mut deep = DataSet::new();
        for _ in 0..MAX_DEPTH + 2 {
            let mut outer = DataSet::new();
            outer.put_items(tag(8, 0x1072), vec![deep]);
            deep = outer;
        }
        assert!(parse_file(&encode_file(&meta, &deep)).unwrap_err().0.contains("deeper"));
    }
}
