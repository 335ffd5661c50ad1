//! Files: display images to PNG, raw scans to and from 16-bit TIFF (two pages: low, high).
//!
//! Owns: the on-disk formats and their limits (a hostile TIFF cannot make us allocate without
//! bound). Must not import: egui, wgpu.

pub mod dicom;

use std::path::Path;

use ndarray::{Array2, Array3};

use crate::domain::scan::RawFrame;

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("{path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("{path}: PNG: {message}")]
    Png { path: String, message: String },
    #[error("{path}: TIFF: {message}")]
    Tiff { path: String, message: String },
}

/// Largest raw scan we read: 16384 channels x 65536 lines per page.
pub const MAX_TIFF_SIDE: u32 = 65536;
pub const MAX_TIFF_CHANNELS: u32 = 16384;

/// Write `[y, x, rgba]` as an 8-bit RGBA PNG.
pub fn write_png(path: &Path, rgba: &Array3<u8>) -> Result<(), IoError> {
    let (h, w, _) = rgba.dim();
    let data: Vec<u8> = rgba.iter().copied().collect();
    image::save_buffer(path, &data, w as u32, h as u32, image::ColorType::Rgba8)
        .map_err(|e| IoError::Png { path: path.display().to_string(), message: e.to_string() })
}

/// Write `bytes` to `path` so that the file is either complete or absent: a temporary file in
/// the same folder, flushed to disk, then renamed (a full disk or a pulled power cord never
/// leaves a truncated scan that looks whole).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    use std::io::Write;
    let e = |source| IoError::File { path: path.display().to_string(), source };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = std::path::PathBuf::from(tmp);
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(e)
}

/// Write a raw scan as a two-page 16-bit greyscale TIFF: page 1 low energy, page 2 high energy;
/// one row per detector line, one column per channel, values as the detector delivered them.
pub fn write_raw_tiff(path: &Path, frame: &RawFrame, description: &str) -> Result<(), IoError> {
    write_atomically(path, &encode_raw_tiff(path, frame, description)?)
}

/// The bytes [`write_raw_tiff`] writes (`path` only names the file in errors).
pub fn encode_raw_tiff(path: &Path, frame: &RawFrame, description: &str) -> Result<Vec<u8>, IoError> {
    let pages = [("low", &frame.low), ("high", &frame.high)].map(|(page, data)| {
        let (h, w) = data.dim();
        (w, h, data.iter().copied().collect::<Vec<u16>>(), format!("{description}; energy={page}"))
    });
    encode_gray16_pages(path, &pages)
}

/// Write one or more 16-bit greyscale pages `(width, height, samples, description)`.
pub fn write_gray16_pages(path: &Path, pages: &[(usize, usize, Vec<u16>, String)]) -> Result<(), IoError> {
    write_atomically(path, &encode_gray16_pages(path, pages)?)
}

fn encode_gray16_pages(path: &Path, pages: &[(usize, usize, Vec<u16>, String)]) -> Result<Vec<u8>, IoError> {
    use tiff::encoder::{TiffEncoder, colortype::Gray16};
    let err = |m: String| IoError::Tiff { path: path.display().to_string(), message: m };
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut buf).map_err(|e| err(e.to_string()))?;
        for (w, h, data, description) in pages {
            let mut img = enc.new_image::<Gray16>(*w as u32, *h as u32).map_err(|e| err(e.to_string()))?;
            img.encoder()
                .write_tag(tiff::tags::Tag::ImageDescription, description.as_str())
                .map_err(|e| err(e.to_string()))?;
            img.write_data(data).map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(buf.into_inner())
}

/// Read a raw scan written by [`write_raw_tiff`] (or any two-page 16-bit greyscale TIFF of equal
/// page sizes).
pub fn read_raw_tiff(path: &Path) -> Result<RawFrame, IoError> {
    let file = std::fs::File::open(path)
        .map_err(|source| IoError::File { path: path.display().to_string(), source })?;
    decode_raw_tiff(std::io::BufReader::new(file), &path.display().to_string())
}

/// [`read_raw_tiff`] of bytes already in memory (a scan from the hub); `name` for errors.
pub fn raw_tiff_from_bytes(bytes: &[u8], name: &str) -> Result<RawFrame, IoError> {
    decode_raw_tiff(std::io::Cursor::new(bytes), name)
}

fn decode_raw_tiff(reader: impl std::io::Read + std::io::Seek, name: &str) -> Result<RawFrame, IoError> {
    let (low, high) = decode_raw_tiff_pages(reader, name, None)?;
    Ok(RawFrame { low: low.expect("asked for"), high })
}

/// The high-energy page of a two-page raw TIFF held in memory, the low page's data skipped
/// (its size still checked): what the alarm aids need of a hub bag's scan.
pub fn raw_tiff_high_page(bytes: &[u8], name: &str) -> Result<Array2<u16>, IoError> {
    Ok(decode_raw_tiff_pages(std::io::Cursor::new(bytes), name, Some(bytes.len() as u64))?.1)
}

/// Both pages of a raw TIFF, checked: 16-bit unsigned greyscale, sizes within limits, two pages
/// of one size. `skip_low` (the file's length): the low page's data is not decoded, only its
/// type checked and its strips found within the file.
fn decode_raw_tiff_pages(
    reader: impl std::io::Read + std::io::Seek,
    name: &str,
    skip_low: Option<u64>,
) -> Result<(Option<Array2<u16>>, Array2<u16>), IoError> {
    use tiff::decoder::{Decoder, DecodingResult, Limits};
    use tiff::tags::Tag;
    let err = |m: String| IoError::Tiff { path: name.to_string(), message: m };
    let mut limits = Limits::default();
    limits.decoding_buffer_size = (MAX_TIFF_SIDE as usize) * (MAX_TIFF_CHANNELS as usize) * 2;
    let mut dec = Decoder::new(reader).map_err(|e| err(e.to_string()))?.with_limits(limits);
    let mut pages: Vec<Option<Array2<u16>>> = Vec::new();
    let mut sizes: Vec<(u32, u32)> = Vec::new();
    loop {
        let (w, h) = dec.dimensions().map_err(|e| err(e.to_string()))?;
        if w == 0 || h == 0 || w > MAX_TIFF_CHANNELS || h > MAX_TIFF_SIDE {
            return Err(err(format!(
                "page of {w} x {h} is outside 1..={MAX_TIFF_CHANNELS} channels, 1..={MAX_TIFF_SIDE} lines"
            )));
        }
        sizes.push((w, h));
        if let Some(file_len) = skip_low.filter(|_| pages.is_empty()) {
            // Skipped, but it must be what it says: 16-bit unsigned single-channel greyscale,
            // its data within the file.
            let gray16 =
                matches!(dec.colortype().map_err(|e| err(e.to_string()))?, tiff::ColorType::Gray(16));
            let unsigned = dec
                .find_tag_unsigned::<u16>(Tag::SampleFormat)
                .map_err(|e| err(e.to_string()))?
                .is_none_or(|f| f == 1);
            if !gray16 || !unsigned {
                return Err(err("pages must be 16-bit single-channel greyscale".into()));
            }
            let offsets =
                dec.find_tag_unsigned_vec::<u64>(Tag::StripOffsets).map_err(|e| err(e.to_string()))?;
            let counts =
                dec.find_tag_unsigned_vec::<u64>(Tag::StripByteCounts).map_err(|e| err(e.to_string()))?;
            let within = match (offsets, counts) {
                (Some(o), Some(c)) => {
                    !o.is_empty()
                        && o.len() == c.len()
                        && o.iter()
                            .zip(&c)
                            .all(|(&o, &c)| o.checked_add(c).is_some_and(|end| end <= file_len))
                }
                _ => false,
            };
            if !within {
                return Err(err("the low page's strips are not within the file".into()));
            }
            pages.push(None);
        } else {
            match dec.read_image().map_err(|e| err(e.to_string()))? {
                DecodingResult::U16(v) if v.len() == w as usize * h as usize => pages.push(Some(
                    Array2::from_shape_vec((h as usize, w as usize), v).map_err(|e| err(e.to_string()))?,
                )),
                _ => return Err(err("pages must be 16-bit single-channel greyscale".into())),
            }
        }
        if pages.len() == 2 || !dec.more_images() {
            break;
        }
        dec.next_image().map_err(|e| err(e.to_string()))?;
    }
    if pages.len() != 2 || sizes[0] != sizes[1] {
        return Err(err(format!("need two pages (low, high) of equal size, found {}", pages.len())));
    }
    let high = pages.pop().flatten().expect("read");
    Ok((pages.pop().flatten(), high))
}

/// Folder of a data directory that holds the threat library's captured threats.
pub const THREATS_DIR: &str = "threats";

/// Save a threat for the library as a two-page 16-bit TIFF of transmission (`65535 * T`; page 1
/// low, page 2 high; rows are lines), its name and category in each page's description.
pub fn write_threat(path: &Path, t: &crate::domain::tip::Threat) -> Result<(), IoError> {
    let q = |a: &Array2<f32>| {
        a.iter().map(|v| (v.clamp(0.0, 1.0) * 65535.0).round() as u16).collect::<Vec<u16>>()
    };
    let desc = |page: &str| {
        serde_json::json!({ "twinspect": "threat", "name": t.name, "category": t.category, "energy": page })
            .to_string()
    };
    let (h, w) = t.t_low.dim();
    write_gray16_pages(path, &[(w, h, q(&t.t_low), desc("low")), (w, h, q(&t.t_high), desc("high"))])
}

/// Read a threat [`write_threat`] saved.
pub fn read_threat(path: &Path) -> Result<crate::domain::tip::Threat, IoError> {
    use tiff::decoder::Decoder;
    let err = |m: String| IoError::Tiff { path: path.display().to_string(), message: m };
    let frame = read_raw_tiff(path)?;
    let file = std::fs::File::open(path)
        .map_err(|source| IoError::File { path: path.display().to_string(), source })?;
    let mut dec = Decoder::new(std::io::BufReader::new(file)).map_err(|e| err(e.to_string()))?;
    let desc = dec
        .get_tag_ascii_string(tiff::tags::Tag::ImageDescription)
        .map_err(|_| err("no description: not a Twinspect threat".into()))?;
    #[derive(serde::Deserialize)]
    struct D {
        twinspect: String,
        name: String,
        category: crate::domain::synth::Category,
    }
    let d: D = serde_json::from_str(&desc).map_err(|e| err(format!("not a Twinspect threat ({e})")))?;
    if d.twinspect != "threat" || d.name.trim().is_empty() {
        return Err(err("not a Twinspect threat".into()));
    }
    let t = |a: &Array2<u16>| a.mapv(|v| (v as f32 / 65535.0).max(1e-4));
    Ok(crate::domain::tip::Threat {
        name: d.name,
        category: d.category,
        t_low: t(&frame.low),
        t_high: t(&frame.high),
    })
}

/// The captured threats in `dir` (`*.tiff`, by file name); none when the folder does not exist.
pub fn load_threats(dir: &Path) -> Result<Vec<crate::domain::tip::Threat>, IoError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(IoError::File { path: dir.display().to_string(), source }),
    };
    let mut files: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tiff"))
        .collect();
    files.sort();
    files.iter().map(|p| read_threat(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tiff_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scan.tiff");
        let mut f = RawFrame::zeros(7, 5);
        for ((i, v), w) in f.low.indexed_iter_mut().zip(f.high.iter_mut()) {
            *v = (i.0 * 1000 + i.1) as u16;
            *w = 65535 - *v;
        }
        write_raw_tiff(&p, &f, "twinspect test").unwrap();
        assert_eq!(read_raw_tiff(&p).unwrap(), f);
        std::fs::write(&p, b"II*\0garbage").unwrap();
        assert!(read_raw_tiff(&p).is_err());
        assert!(read_raw_tiff(&dir.path().join("missing.tiff")).is_err());
    }

    #[test]
    fn the_high_page_alone_is_the_high_page_and_a_scan_that_is_not_two_like_pages_is_refused() {
        let mut f = RawFrame::zeros(9, 6);
        for ((i, v), w) in f.low.indexed_iter_mut().zip(f.high.iter_mut()) {
            *v = (i.0 * 100 + i.1) as u16;
            *w = 60000 - 3 * *v;
        }
        let bytes = encode_raw_tiff(Path::new("a"), &f, "two pages").unwrap();
        assert_eq!(raw_tiff_high_page(&bytes, "a").unwrap(), f.high);
        // One page; pages of two sizes; an 8-bit first page: refused as the whole decode is.
        let one = {
            let mut out = std::io::Cursor::new(Vec::new());
            let mut enc = tiff::encoder::TiffEncoder::new(&mut out).unwrap();
            enc.write_image::<tiff::encoder::colortype::Gray16>(6, 9, f.low.as_slice().unwrap()).unwrap();
            out.into_inner()
        };
        assert!(raw_tiff_high_page(&one, "one").unwrap_err().to_string().contains("two pages"));
        let uneven = {
            let mut out = std::io::Cursor::new(Vec::new());
            let mut enc = tiff::encoder::TiffEncoder::new(&mut out).unwrap();
            enc.write_image::<tiff::encoder::colortype::Gray16>(6, 9, f.low.as_slice().unwrap()).unwrap();
            enc.write_image::<tiff::encoder::colortype::Gray16>(6, 3, &f.high.as_slice().unwrap()[..18])
                .unwrap();
            out.into_inner()
        };
        assert!(raw_tiff_high_page(&uneven, "u").unwrap_err().to_string().contains("equal size"));
        assert!(raw_tiff_from_bytes(&uneven, "u").is_err());
        let eight = {
            let mut out = std::io::Cursor::new(Vec::new());
            let mut enc = tiff::encoder::TiffEncoder::new(&mut out).unwrap();
            enc.write_image::<tiff::encoder::colortype::Gray8>(6, 9, &[7u8; 54]).unwrap();
            enc.write_image::<tiff::encoder::colortype::Gray16>(6, 9, f.high.as_slice().unwrap()).unwrap();
            out.into_inner()
        };
        assert!(raw_tiff_high_page(&eight, "8").unwrap_err().to_string().contains("16-bit"));
        assert!(raw_tiff_high_page(b"II*\0garbage", "g").is_err());
        // A low page whose strips point beyond the end of the file: refused too (its first
        // strip's offset moved past the end in the first directory).
        let mut cut = bytes.clone();
        let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as usize;
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        let ifd = u32_at(&cut, 4);
        let entry =
            (0..u16_at(&cut, ifd)).map(|k| ifd + 2 + 12 * k).find(|&e| u16_at(&cut, e) == 273).unwrap();
        assert_eq!(u16_at(&cut, entry + 2), 4, "StripOffsets as LONG");
        let at = if u32_at(&cut, entry + 4) == 1 { entry + 8 } else { u32_at(&cut, entry + 8) };
        let beyond = (cut.len() as u32 + 1000).to_le_bytes();
        cut[at..at + 4].copy_from_slice(&beyond);
        let e = raw_tiff_high_page(&cut, "cut").unwrap_err().to_string();
        assert!(e.contains("strips are not within"), "{e}");
    }
}
