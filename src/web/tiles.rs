//! A bag's image as the stations render it, cut into a Deep Zoom tile pyramid (as OpenSeadragon
//! reads it): level `max` is the full image, each level below half the one above (a 2x2 box
//! average), down to 1 x 1; tiles of [`TILE`] pixels, PNG, fetched only where the browser looks.
//!
//! Owns: the renderer (the GPU pipeline headless, or its CPU twin where the server has no
//! adapter), the pyramids of the bags recently viewed (a few, by bag and image function), tile
//! cutting and encoding, and the refusal of tiles outside the image or at absurd levels.
//! Must not import: egui, the desk (it reads scans from the archive itself, read-only).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;

use crate::desk::archiver::{LoadedBag, read_bag};
use crate::domain::profile::ScannerProfile;
use crate::domain::view::Preset;
use crate::files::store::Store;

/// Tile edge in pixels.
pub const TILE: usize = 256;
/// Pyramids kept (a whole 2048 x 2000 bag is 16 MB of RGBA at its top level).
pub const KEEP: usize = 6;

/// One level: RGBA rows.
pub struct Level {
    pub w: usize,
    pub h: usize,
    pub rgba: Vec<u8>,
}

/// Every level of one rendered image, `levels[max]` the full one, and each tile's PNG once
/// it has been asked for (encoded once however many tablets look).
pub struct Pyramid {
    pub levels: Vec<Level>,
    encoded: Vec<Vec<OnceLock<Bytes>>>,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum TileError {
    #[error("no level {0} (this image has levels 0 to {1})")]
    NoLevel(usize, usize),
    #[error("no tile {0}_{1} at level {2}")]
    Outside(usize, usize, usize),
    #[error("rendering: {0}")]
    Render(String),
    #[error("no bag {0} in the archive")]
    NoBag(i64),
    #[error("{0}")]
    Archive(String),
}

impl Pyramid {
    /// From the full image (`rgba`: `h` rows of `w` pixels).
    pub fn new(w: usize, h: usize, rgba: Vec<u8>) -> Pyramid {
        let mut levels = vec![Level { w, h, rgba }];
        while levels.last().is_some_and(|l| l.w > 1 || l.h > 1) {
            let half = halve(levels.last().expect("one at least"));
            levels.push(half);
        }
        levels.reverse();
        let encoded = levels
            .iter()
            .map(|l| (0..l.w.div_ceil(TILE) * l.h.div_ceil(TILE)).map(|_| OnceLock::new()).collect())
            .collect();
        Pyramid { levels, encoded }
    }

    pub fn max_level(&self) -> usize {
        self.levels.len() - 1
    }

    pub fn width(&self) -> usize {
        self.levels[self.max_level()].w
    }

    pub fn height(&self) -> usize {
        self.levels[self.max_level()].h
    }

    /// Tile (`col`, `row`) of `level` as RGBA with its size (edge tiles are smaller).
    pub fn tile(&self, level: usize, col: usize, row: usize) -> Result<(usize, usize, Vec<u8>), TileError> {
        let l = self.levels.get(level).ok_or(TileError::NoLevel(level, self.max_level()))?;
        let (x0, y0) = (col.saturating_mul(TILE), row.saturating_mul(TILE));
        if x0 >= l.w || y0 >= l.h {
            return Err(TileError::Outside(col, row, level));
        }
        let (tw, th) = ((l.w - x0).min(TILE), (l.h - y0).min(TILE));
        let mut out = Vec::with_capacity(tw * th * 4);
        for y in y0..y0 + th {
            let s = (y * l.w + x0) * 4;
            out.extend_from_slice(&l.rgba[s..s + tw * 4]);
        }
        Ok((tw, th, out))
    }

    /// The tile as PNG.
    pub fn tile_png(&self, level: usize, col: usize, row: usize) -> Result<Vec<u8>, TileError> {
        let (w, h, rgba) = self.tile(level, col, row)?;
        let mut png = Vec::new();
        let enc = image::codecs::png::PngEncoder::new_with_quality(
            &mut png,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Sub,
        );
        image::ImageEncoder::write_image(enc, &rgba, w as u32, h as u32, image::ExtendedColorType::Rgba8)
            .map_err(|e| TileError::Render(e.to_string()))?;
        Ok(png)
    }

    /// The tile as PNG, encoded on the first request and kept with the pyramid.
    pub fn png(&self, level: usize, col: usize, row: usize) -> Result<Bytes, TileError> {
        if let Some(b) = self.cached_png(level, col, row) {
            return Ok(b);
        }
        let png = Bytes::from(self.tile_png(level, col, row)?);
        let slot = self.slot(level, col, row).expect("tile_png checked the tile");
        Ok(slot.get_or_init(|| png).clone())
    }

    /// The tile's PNG if it has been encoded already.
    pub fn cached_png(&self, level: usize, col: usize, row: usize) -> Option<Bytes> {
        self.slot(level, col, row)?.get().cloned()
    }

    fn slot(&self, level: usize, col: usize, row: usize) -> Option<&OnceLock<Bytes>> {
        let l = self.levels.get(level)?;
        let cols = l.w.div_ceil(TILE);
        if col >= cols || row >= l.h.div_ceil(TILE) {
            return None;
        }
        self.encoded.get(level)?.get(row * cols + col)
    }

    /// The Deep Zoom descriptor (`.dzi`).
    pub fn dzi(&self) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="png" Overlap="0" TileSize="{TILE}"><Size Width="{}" Height="{}"/></Image>
"#,
            self.width(),
            self.height()
        )
    }
}

/// The level below: each pixel the mean of (up to) four, sizes rounded up as Deep Zoom does.
fn halve(l: &Level) -> Level {
    let (w, h) = (l.w.div_ceil(2), l.h.div_ceil(2));
    let mut rgba = vec![0u8; w * h * 4];
    for y in 0..h {
        let ys = [2 * y, (2 * y + 1).min(l.h - 1)];
        for x in 0..w {
            let xs = [2 * x, (2 * x + 1).min(l.w - 1)];
            for ch in 0..4 {
                let mut s = 0u32;
                for yy in ys {
                    for xx in xs {
                        s += l.rgba[(yy * l.w + xx) * 4 + ch] as u32;
                    }
                }
                rgba[(y * w + x) * 4 + ch] = ((s + 2) / 4) as u8;
            }
        }
    }
    Level { w, h, rgba }
}

/// The display pipeline for the server: the GPU when there is an adapter, else the CPU twin.
pub struct Renderer {
    gpu: Option<Mutex<(crate::pipeline::gpu::GpuContext, crate::pipeline::gpu::Kernels)>>,
    profile: ScannerProfile,
}

impl Renderer {
    /// `cpu`: do not look for an adapter.
    pub fn new(profile: ScannerProfile, cpu: bool) -> Renderer {
        let gpu = if cpu {
            None
        } else {
            match crate::pipeline::gpu::GpuContext::headless() {
                Ok(ctx) => {
                    let k = crate::pipeline::gpu::Kernels::new(&ctx.device);
                    Some(Mutex::new((ctx, k)))
                }
                Err(e) => {
                    tracing::warn!("no GPU adapter ({e}): bags are rendered on the CPU");
                    None
                }
            }
        };
        Renderer { gpu, profile }
    }

    pub fn on_gpu(&self) -> bool {
        self.gpu.is_some()
    }

    /// The bag under image function `f`, as a pyramid.
    pub fn pyramid(&self, bag: &LoadedBag, f: Preset) -> Result<Pyramid, TileError> {
        let profile = if bag.row.profile.is_empty() || bag.row.profile == self.profile.name {
            self.profile.clone()
        } else {
            ScannerProfile::load(&bag.row.profile).map_err(|e| TileError::Render(e.to_string()))?
        };
        let view = f.settings();
        let rgba = match &self.gpu {
            Some(g) => {
                let g = g.lock().map_err(|_| TileError::Render("the GPU renderer failed before".into()))?;
                let lut = crate::domain::material::MaterialLut::for_profile(&profile)
                    .map_err(|e| TileError::Render(e.to_string()))?;
                let scan = crate::pipeline::gpu::Scan {
                    frame: &bag.frame,
                    calib: &bag.calibration,
                    missing: &bag.missing,
                };
                crate::pipeline::gpu::render_frame(&g.0.device, &g.0.queue, &g.1, scan, &lut, &view)
                    .map_err(|e| TileError::Render(e.to_string()))?
            }
            None => {
                crate::files::export::render_cpu(&profile, &bag.frame, &bag.calibration, &bag.missing, &view)
                    .map_err(|e| TileError::Render(e.to_string()))?
            }
        };
        let (h, w, _) = rgba.dim();
        let data = rgba.as_standard_layout().iter().copied().collect();
        Ok(Pyramid::new(w, h, data))
    }
}

type Slot = Arc<tokio::sync::OnceCell<Result<Arc<Pyramid>, TileError>>>;
/// The slots by bag and function, and their order of use (last: the newest).
type Slots = (HashMap<(i64, Preset), Slot>, Vec<(i64, Preset)>);

/// The pyramids of the bags recently viewed, each rendered once however many ask at once.
pub struct TileCache {
    data: PathBuf,
    renderer: Arc<Renderer>,
    slots: Mutex<Slots>,
}

impl TileCache {
    pub fn new(data: PathBuf, renderer: Renderer) -> TileCache {
        TileCache { data, renderer: Arc::new(renderer), slots: Mutex::new((HashMap::new(), Vec::new())) }
    }

    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    /// Bag `id`'s pyramid under `f`: from the cache, or read from the archive (its SHA-256
    /// checked) and rendered on a blocking thread.
    pub async fn pyramid(&self, id: i64, f: Preset) -> Result<Arc<Pyramid>, TileError> {
        let slot = {
            let mut g = self.slots.lock().expect("tile cache");
            let (map, order) = &mut *g;
            let slot = map.entry((id, f)).or_default().clone();
            order.retain(|k| *k != (id, f));
            order.push((id, f));
            while order.len() > KEEP {
                let old = order.remove(0);
                map.remove(&old);
            }
            slot
        };
        let (data, renderer) = (self.data.clone(), self.renderer.clone());
        let r = slot
            .get_or_init(|| async move {
                let job = tokio::task::spawn_blocking(move || {
                    let store = Store::open_read(&data).map_err(|e| TileError::Archive(e.to_string()))?;
                    let bag = read_bag(&store, id, &renderer.profile.name).map_err(|e| match e {
                        crate::files::store::StoreError::NoSuchBag(id) => TileError::NoBag(id),
                        e => TileError::Archive(e.to_string()),
                    })?;
                    renderer.pyramid(&bag, f).map(Arc::new)
                });
                job.await.unwrap_or_else(|e| Err(TileError::Render(e.to_string())))
            })
            .await
            .clone();
        if r.is_err() {
            // Not kept: a bag that failed (a disk problem) is tried again next time.
            self.slots.lock().expect("tile cache").0.remove(&(id, f));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Vec<u8> {
        (0..w * h).flat_map(|i| [(i % w / 4) as u8, (i / w / 4) as u8, 7, 255]).collect()
    }

    #[test]
    fn levels_halve_rounding_up_down_to_one_pixel_as_deep_zoom_counts_them() {
        let p = Pyramid::new(2000, 700, ramp(2000, 700));
        // Deep Zoom: ceil(log2(max(w, h))) + 1 levels.
        assert_eq!(p.levels.len(), 11 + 1);
        assert_eq!((p.levels[10].w, p.levels[10].h), (1000, 350));
        assert_eq!((p.levels[9].w, p.levels[9].h), (500, 175));
        assert_eq!((p.levels[8].w, p.levels[8].h), (250, 88));
        assert_eq!((p.levels[0].w, p.levels[0].h), (1, 1));
        assert!(p.dzi().contains(r#"Width="2000" Height="700""#));
    }

    #[test]
    fn a_halved_pixel_is_the_mean_of_its_four() {
        let p = Pyramid::new(
            4,
            2,
            vec![
                10, 0, 0, 255, 20, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, /**/ 30, 0, 0, 255, 41, 0, 0, 255,
                0, 0, 0, 0, 0, 0, 0, 0,
            ],
        );
        let l = &p.levels[p.max_level() - 1];
        assert_eq!((l.w, l.h), (2, 1));
        assert_eq!(l.rgba[0], 25, "(10 + 20 + 30 + 41) / 4 rounded");
    }

    #[test]
    fn edge_tiles_are_cut_short_and_tiles_outside_are_refused() {
        let p = Pyramid::new(600, 300, ramp(600, 300));
        let m = p.max_level();
        let (w, h, px) = p.tile(m, 2, 1).unwrap();
        assert_eq!((w, h), (600 - 512, 300 - 256));
        assert_eq!(&px[..4], &[128, 64, 7, 255][..], "x 512, y 256 of the ramp");
        assert_eq!(p.tile(m, 3, 0), Err(TileError::Outside(3, 0, m)));
        assert_eq!(p.tile(m, 0, 2), Err(TileError::Outside(0, 2, m)));
        assert_eq!(p.tile(m + 1, 0, 0).unwrap_err(), TileError::NoLevel(m + 1, m));
        assert!(p.tile(usize::MAX, usize::MAX, 0).is_err());
        assert!(p.tile(m, usize::MAX, usize::MAX).is_err(), "no overflow");
        let png = p.tile_png(0, 0, 0).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // Kept once encoded: the same bytes, not encoded again.
        assert!(p.cached_png(m, 2, 1).is_none());
        let a = p.png(m, 2, 1).unwrap();
        assert_eq!(a, p.tile_png(m, 2, 1).unwrap());
        assert_eq!(p.cached_png(m, 2, 1).unwrap().as_ptr(), a.as_ptr());
        assert_eq!(p.png(m, 3, 0), Err(TileError::Outside(3, 0, m)));
        assert!(p.cached_png(m, 3, 0).is_none() && p.cached_png(m + 1, 0, 0).is_none());
    }
}
