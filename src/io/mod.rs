//! Files: display images to PNG, raw scans to and from 16-bit TIFF (two pages: low, high).
//!
//! Owns: the on-disk formats and their limits (a hostile TIFF cannot make us allocate without
//! bound). Must not import: egui, wgpu.

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

/// Write a raw scan as a two-page 16-bit greyscale TIFF: page 1 low energy, page 2 high energy;
/// one row per detector line, one column per channel, values as the detector delivered them.
pub fn write_raw_tiff(path: &Path, frame: &RawFrame, description: &str) -> Result<(), IoError> {
    use tiff::encoder::{TiffEncoder, colortype::Gray16};
    let err = |m: String| IoError::Tiff { path: path.display().to_string(), message: m };
    let file = std::fs::File::create(path)
        .map_err(|source| IoError::File { path: path.display().to_string(), source })?;
    let mut enc = TiffEncoder::new(std::io::BufWriter::new(file)).map_err(|e| err(e.to_string()))?;
    for (page, data) in [("low", &frame.low), ("high", &frame.high)] {
        let (h, w) = data.dim();
        let mut img = enc.new_image::<Gray16>(w as u32, h as u32).map_err(|e| err(e.to_string()))?;
        img.encoder()
            .write_tag(tiff::tags::Tag::ImageDescription, format!("{description}; energy={page}").as_str())
            .map_err(|e| err(e.to_string()))?;
        let flat: Vec<u16> = data.iter().copied().collect();
        img.write_data(&flat).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// Read a raw scan written by [`write_raw_tiff`] (or any two-page 16-bit greyscale TIFF of equal
/// page sizes).
pub fn read_raw_tiff(path: &Path) -> Result<RawFrame, IoError> {
    use tiff::decoder::{Decoder, DecodingResult, Limits};
    let err = |m: String| IoError::Tiff { path: path.display().to_string(), message: m };
    let file = std::fs::File::open(path)
        .map_err(|source| IoError::File { path: path.display().to_string(), source })?;
    let mut limits = Limits::default();
    limits.decoding_buffer_size = (MAX_TIFF_SIDE as usize) * (MAX_TIFF_CHANNELS as usize) * 2;
    let mut dec =
        Decoder::new(std::io::BufReader::new(file)).map_err(|e| err(e.to_string()))?.with_limits(limits);
    let mut pages: Vec<Array2<u16>> = Vec::new();
    loop {
        let (w, h) = dec.dimensions().map_err(|e| err(e.to_string()))?;
        if w == 0 || h == 0 || w > MAX_TIFF_CHANNELS || h > MAX_TIFF_SIDE {
            return Err(err(format!(
                "page of {w} x {h} is outside 1..={MAX_TIFF_CHANNELS} channels, 1..={MAX_TIFF_SIDE} lines"
            )));
        }
        match dec.read_image().map_err(|e| err(e.to_string()))? {
            DecodingResult::U16(v) if v.len() == w as usize * h as usize => pages
                .push(Array2::from_shape_vec((h as usize, w as usize), v).map_err(|e| err(e.to_string()))?),
            _ => return Err(err("pages must be 16-bit single-channel greyscale".into())),
        }
        if pages.len() == 2 || !dec.more_images() {
            break;
        }
        dec.next_image().map_err(|e| err(e.to_string()))?;
    }
    if pages.len() != 2 || pages[0].dim() != pages[1].dim() {
        return Err(err(format!("need two pages (low, high) of equal size, found {}", pages.len())));
    }
    let high = pages.pop().expect("two pages");
    let low = pages.pop().expect("two pages");
    Ok(RawFrame { low, high })
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
}
