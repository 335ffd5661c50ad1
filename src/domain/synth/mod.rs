//! Synthetic bags and parcels, and a physics-based synthetic scanner that reads them out as raw
//! dual-energy detector lines.
//!
//! Owns: [`Bag`] (a deterministic, seeded description of a container and its contents, with
//! ground truth per part: material, mass, outline), [`generate_bag`] (the container, then its
//! contents packed by [`items`]' library at a clutter level), and [`SyntheticScanner`] (dark
//! offset, per-channel gain spread, tube drift, Poisson quantum noise and read noise on top of the
//! forward model).
//!
//! Image formation: each part's areal density is averaged over the detector pixel's area (the
//! part's coverage of the pixel from its signed distance to the outline: edges fall between
//! pixels, no stair steps); parts overlap and add as two basis materials read through a table of
//! the forward model ([`basis`]), or through the full model where a material has an absorption
//! edge in the spectrum; the detector then shares light between neighbouring channels
//! (crosstalk) and keeps a little of the last line (afterglow).
//!
//! Geometry: `x` runs along the belt (line index times the belt travel per line), `y` across the
//! belt (channel index times the channel pitch), both in millimetres.
//!
//! Must not import: egui, wgpu, tokio.

pub mod basis;
pub mod items;

use ndarray::Array2;

use super::physics::{FastModel, ForwardModel, MaterialClass, PhysicsError, PhysicsTables};
use super::profile::ScannerProfile;
use super::rng::Rng;
use super::scan::{LineKind, RawFrame, RawLine};
use basis::BasisTable;
pub use items::{Kind, Pose};

/// What an object is, for ground truth (training, tests) and for the agencies that look for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Container,
    Clothing,
    Paper,
    WaterBottle,
    Laptop,
    Battery,
    CircuitBoard,
    Hinge,
    Shoe,
    Fruit,
    Meat,
    Plant,
    Soil,
    Coin,
    Key,
    Blade,
    Cable,
    DenseBlock,
    Toiletry,
    Electronics,
    Animal,
    Gun,
    Scissors,
    Lighter,
    Powder,
    Liquid,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Container => "container",
            Category::Clothing => "clothing",
            Category::Paper => "paper",
            Category::WaterBottle => "water_bottle",
            Category::Laptop => "laptop",
            Category::Battery => "battery",
            Category::CircuitBoard => "circuit_board",
            Category::Hinge => "hinge",
            Category::Shoe => "shoe",
            Category::Fruit => "fruit",
            Category::Meat => "meat",
            Category::Plant => "plant",
            Category::Soil => "soil",
            Category::Coin => "coin",
            Category::Key => "key",
            Category::Blade => "blade",
            Category::Cable => "cable",
            Category::DenseBlock => "dense_block",
            Category::Toiletry => "toiletry",
            Category::Electronics => "electronics",
            Category::Animal => "animal",
            Category::Gun => "gun",
            Category::Scissors => "scissors",
            Category::Lighter => "lighter",
            Category::Powder => "powder",
            Category::Liquid => "liquid",
        }
    }

    /// Of interest to quarantine (animal and plant products, soil, live animals).
    pub fn quarantine_interest(self) -> bool {
        matches!(self, Category::Fruit | Category::Meat | Category::Plant | Category::Soil | Category::Animal)
    }

    /// Of interest to customs (weapons, shielding and concealment, powders, bulk liquids).
    pub fn customs_interest(self) -> bool {
        matches!(
            self,
            Category::Blade | Category::DenseBlock | Category::Gun | Category::Powder | Category::Liquid
        )
    }
}

/// Footprint of an object in its own frame (millimetres, centred on the origin).
#[derive(Clone, Debug, PartialEq)]
pub enum Outline {
    Rect,
    Ellipse,
    /// Vertices in the object's frame, inside the half extents.
    Polygon(Vec<(f64, f64)>),
}

/// Thickness of an object along the beam as a function of position in its footprint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Profile {
    /// Constant thickness (cm).
    Slab(f64),
    /// A cylinder lying with its axis along the object's local y: chord thickness (cm at the axis).
    Cylinder(f64),
    /// An ellipsoid: thickest (cm) at the centre.
    Dome(f64),
    /// A box seen from above: two walls (`wall_cm` each) everywhere, and `side_cm` of wall along
    /// the beam within `rim_mm` of the border.
    Shell { wall_cm: f64, side_cm: f64, rim_mm: f64 },
    /// A hollow cylinder (pipe, can, cell) lying with its axis along local y: outer diameter
    /// `d_cm`, inner diameter `inner` times the outer.
    Tube { d_cm: f64, inner: f64 },
    /// A ring seen along its axis (eyelet, washer, pot): `t_cm` thick outside `inner` times the
    /// outline (normalised radius).
    Annulus { t_cm: f64, inner: f64 },
    /// Teeth along local x (a zip, a spring, a comb): `t_cm` over `duty` of every `period_mm`.
    Teeth { t_cm: f64, period_mm: f64, duty: f64 },
    /// A soft, uneven layer (fabric, soil, powder): `t_cm` at the centre, thinning to the border,
    /// varied by `amount` (0..1) with a grain of `grain_mm` (deterministic noise from `seed`).
    Fabric { t_cm: f64, grain_mm: f64, amount: f64, seed: u32 },
}

/// One part of an item in a bag.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub category: Category,
    /// The item it belongs to (`knife`, `laptop`: [`Kind::name`]).
    pub kind: &'static str,
    /// Which part of the item (`blade`, `rivet`).
    pub part: &'static str,
    /// Name of a material in the physics tables.
    pub material: &'static str,
    /// Effective density (g/cm^3): lower than the bulk for fabrics, foams, cardboard.
    pub density_g_cm3: f64,
    pub outline: Outline,
    pub profile: Profile,
    /// Centre (mm).
    pub cx: f64,
    pub cy: f64,
    /// Half extents in the object's frame (mm).
    pub half_w: f64,
    pub half_h: f64,
    /// Rotation (radians) of the object's frame.
    pub angle: f64,
    /// Index of the first part of the composite item this part belongs to (itself if alone).
    pub item: usize,
}

impl Object {
    /// Axis-aligned bounding box `(x0, x1, y0, y1)` in mm.
    pub fn bbox(&self) -> (f64, f64, f64, f64) {
        let (s, c) = self.angle.sin_cos();
        let ex = (self.half_w * c).abs() + (self.half_h * s).abs();
        let ey = (self.half_w * s).abs() + (self.half_h * c).abs();
        (self.cx - ex, self.cx + ex, self.cy - ey, self.cy + ey)
    }

    /// `(x, y)` in the object's own frame.
    fn local(&self, x: f64, y: f64) -> (f64, f64) {
        self.local_with(x, y, self.angle.sin_cos())
    }

    /// The same with the rotation's sine and cosine given (the renderer keeps them per part).
    fn local_with(&self, x: f64, y: f64, (s, c): (f64, f64)) -> (f64, f64) {
        let (dx, dy) = (x - self.cx, y - self.cy);
        (dx * c + dy * s, -dx * s + dy * c)
    }

    /// Signed distance (mm) from the outline's border in the object's frame, negative inside
    /// (exact for rectangles and polygons, to first order for ellipses).
    fn signed_distance(&self, u: f64, v: f64) -> f64 {
        let (hw, hh) = (self.half_w, self.half_h);
        match &self.outline {
            Outline::Rect => {
                let (dx, dy) = (u.abs() - hw, v.abs() - hh);
                if dx > 0.0 && dy > 0.0 { dx.hypot(dy) } else { dx.max(dy) }
            }
            Outline::Ellipse => {
                let f = (u / hw).powi(2) + (v / hh).powi(2) - 1.0;
                let g = 2.0 * ((u / (hw * hw)).powi(2) + (v / (hh * hh)).powi(2)).sqrt();
                if g < 1e-9 { -hw.min(hh) } else { f / g }
            }
            Outline::Polygon(p) => {
                let mut d2 = f64::MAX;
                let mut j = p.len() - 1;
                for i in 0..p.len() {
                    let ((ax, ay), (bx, by)) = (p[j], p[i]);
                    let (ex, ey) = (bx - ax, by - ay);
                    let t =
                        (((u - ax) * ex + (v - ay) * ey) / (ex * ex + ey * ey).max(1e-12)).clamp(0.0, 1.0);
                    d2 = d2.min((u - ax - t * ex).powi(2) + (v - ay - t * ey).powi(2));
                    j = i;
                }
                if point_in_polygon(p, u, v) { -d2.sqrt() } else { d2.sqrt() }
            }
        }
    }

    /// Thickness (cm) at `(u, v)` in the object's frame, as if inside the outline, averaged
    /// over `width_mm` along u where the profile varies faster than a pixel (teeth).
    fn thickness_cm(&self, u: f64, v: f64, width_mm: f64) -> f64 {
        let nu = (u / self.half_w).clamp(-1.0, 1.0);
        let nv = (v / self.half_h).clamp(-1.0, 1.0);
        match self.profile {
            Profile::Slab(t) => t,
            Profile::Cylinder(t) => t * (1.0 - nu * nu).max(0.0).sqrt(),
            Profile::Dome(t) => {
                let q = match self.outline {
                    Outline::Rect => nu.powi(4) + nv.powi(4),
                    _ => nu * nu + nv * nv,
                };
                t * (1.0 - q).max(0.04).sqrt()
            }
            Profile::Shell { wall_cm, side_cm, rim_mm } => {
                let edge = (self.half_w - u.abs()).min(self.half_h - v.abs());
                if edge < rim_mm { side_cm } else { 2.0 * wall_cm }
            }
            Profile::Tube { d_cm, inner } => {
                let outer = (1.0 - nu * nu).max(0.0).sqrt();
                let hole = (inner * inner - nu * nu).max(0.0).sqrt();
                d_cm * (outer - hole)
            }
            Profile::Annulus { t_cm, inner } => {
                let r = (nu * nu + nv * nv).sqrt();
                // The hole's edge falls between pixels too: a ramp one pixel wide.
                let ramp = (width_mm / self.half_w.min(self.half_h)).max(1e-6);
                t_cm * ((r - inner) / ramp + 0.5).clamp(0.0, 1.0)
            }
            Profile::Teeth { t_cm, period_mm, duty } => {
                // Share of [a, b] covered by teeth `duty * period` long, one every `period`.
                let covered = |s: f64| {
                    let k = floor(s / period_mm);
                    k * duty * period_mm + (s - k * period_mm).min(duty * period_mm)
                };
                let s = u + self.half_w;
                if width_mm <= 0.0 {
                    return if (s / period_mm).fract() < duty { t_cm } else { 0.0 };
                }
                t_cm * (covered(s + width_mm / 2.0) - covered(s - width_mm / 2.0)) / width_mm
            }
            Profile::Fabric { t_cm, grain_mm, amount, seed } => {
                let q = nu * nu + nv * nv;
                let fall = (1.0 - q * q).max(0.15).sqrt();
                // Broad undulation, and ridged noise for creases (sharp where the cloth folds).
                let ridge = 1.0
                    - (2.0 * noise2(u / (grain_mm * 0.6), v / (grain_mm * 2.0), seed ^ 0x5bd1) - 1.0).abs();
                let n = 0.55 * noise2(u / grain_mm, v / (grain_mm * 2.5), seed) + 0.45 * ridge * ridge;
                (t_cm * fall * (1.0 + amount * (2.0 * n - 1.0))).max(0.0)
            }
        }
    }

    /// Areal density (g/cm^2) at the point `(x, y)` mm; 0 outside.
    pub fn areal_at(&self, x: f64, y: f64) -> f64 {
        let (u, v) = self.local(x, y);
        if self.signed_distance(u, v) > 0.0 {
            return 0.0;
        }
        self.thickness_cm(u, v, 0.0) * self.density_g_cm3
    }

    /// Areal density (g/cm^2) averaged over a detector pixel `pitch_mm` wide centred on
    /// `(x, y)`: the part's share of the pixel (from its distance to the border) times its
    /// thickness there. Edges fall between pixels instead of stepping from one to the next.
    pub fn areal_over(&self, x: f64, y: f64, pitch_mm: f64) -> f64 {
        self.areal_over_with(x, y, pitch_mm, self.angle.sin_cos())
    }

    fn areal_over_with(&self, x: f64, y: f64, pitch_mm: f64, trig: (f64, f64)) -> f64 {
        let (u, v) = self.local_with(x, y, trig);
        self.areal_over_local(u, v, pitch_mm)
    }

    /// [`Object::areal_over`] at `(u, v)` in the object's own frame.
    fn areal_over_local(&self, u: f64, v: f64, pitch_mm: f64) -> f64 {
        let d = self.signed_distance(u, v);
        let mut cover = (0.5 - d / pitch_mm).clamp(0.0, 1.0);
        if cover <= 0.0 {
            return 0.0;
        }
        if !matches!(self.outline, Outline::Polygon(_)) {
            // A part thinner than a pixel covers only its share of it.
            cover = cover.min(2.0 * self.half_w.min(self.half_h) / pitch_mm);
        }
        cover * self.thickness_cm(u, v, pitch_mm) * self.density_g_cm3
    }

    /// Channels `[c0, c1)` (of `n`, `pitch_mm` apart) whose pixel centres on the line at `x`
    /// lie within `pad_mm` of the part's rotated rectangle: where it can attenuate on that line.
    fn channels_on_line(
        &self,
        x: f64,
        (s, c): (f64, f64),
        pad_mm: f64,
        cp: f64,
        n: usize,
    ) -> Option<(usize, usize)> {
        let dx = x - self.cx;
        // With w = y - cy: u = dx c + w s, v = -dx s + w c; keep |u| <= hw + pad, |v| <= hh + pad.
        let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
        for (a, b, h) in [(s, dx * c, self.half_w + pad_mm), (c, -dx * s, self.half_h + pad_mm)] {
            if a.abs() < 1e-12 {
                if b.abs() > h {
                    return None;
                }
            } else {
                let (t0, t1) = ((-h - b) / a, (h - b) / a);
                lo = lo.max(t0.min(t1));
                hi = hi.min(t0.max(t1));
            }
        }
        if lo > hi {
            return None;
        }
        let c0 = ((self.cy + lo) / cp - 0.5).ceil().max(0.0) as usize;
        let c1 = ((((self.cy + hi) / cp - 0.5).floor() + 1.0).max(0.0) as usize).min(n);
        (c0 < c1).then_some((c0, c1))
    }

    /// Mass (g): the areal density integrated over the footprint.
    pub fn mass_g(&self) -> f64 {
        let step = 0.25f64;
        let nu = ((2.0 * self.half_w / step).ceil() as usize).clamp(16, 1200);
        let nv = ((2.0 * self.half_h / step).ceil() as usize).clamp(16, 1200);
        let (du, dv) = (2.0 * self.half_w / nu as f64, 2.0 * self.half_h / nv as f64);
        let mut sum = 0.0;
        for i in 0..nu {
            let u = -self.half_w + (i as f64 + 0.5) * du;
            for j in 0..nv {
                let v = -self.half_h + (j as f64 + 0.5) * dv;
                if self.signed_distance(u, v) <= 0.0 {
                    sum += self.thickness_cm(u, v, 0.0);
                }
            }
        }
        // cm thick x mm^2 / 100 = cm^3
        sum * du * dv / 100.0 * self.density_g_cm3
    }

    /// The outline in bag coordinates (mm): the polygon's corners, or 48 points of an ellipse.
    pub fn outline_mm(&self) -> Vec<[f64; 2]> {
        let (hw, hh) = (self.half_w, self.half_h);
        let local: Vec<(f64, f64)> = match &self.outline {
            Outline::Rect => vec![(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)],
            Outline::Ellipse => (0..48)
                .map(|k| {
                    let a = k as f64 / 48.0 * std::f64::consts::TAU;
                    (hw * a.cos(), hh * a.sin())
                })
                .collect(),
            Outline::Polygon(p) => p.clone(),
        };
        let (s, c) = self.angle.sin_cos();
        local
            .into_iter()
            .map(|(u, v)| {
                let x = self.cx + u * c - v * s;
                let y = self.cy + u * s + v * c;
                [(x * 100.0).round() / 100.0, (y * 100.0).round() / 100.0]
            })
            .collect()
    }
}

/// `x.floor()` without the library call it becomes on CPUs before SSE4.1 (the hot loops of the
/// renderer call it per pixel).
fn floor(x: f64) -> f64 {
    let i = x as i64 as f64;
    if i > x { i - 1.0 } else { i }
}

/// Side of the lattice of random values that value noise is read from (periodic).
const NOISE_SIDE: usize = 256;

/// The noise lattice: random values in [0, 1), the same on every machine.
fn noise_lattice() -> &'static [f32] {
    static LATTICE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    LATTICE.get_or_init(|| {
        let mut rng = Rng::new(0x0015_E1A7);
        (0..NOISE_SIDE * NOISE_SIDE).map(|_| rng.f64() as f32).collect()
    })
}

/// Smooth value noise in [0, 1] (bilinear between lattice values, smoothstep weights); each
/// seed reads the lattice from its own offset.
fn noise2(x: f64, y: f64, seed: u32) -> f64 {
    let lattice = noise_lattice();
    let (fx, fy) = (floor(x), floor(y));
    let m = NOISE_SIDE as i64 - 1;
    let ix = (fx as i64 + i64::from(seed & 0xff)) & m;
    let iy = (fy as i64 + i64::from((seed >> 8) & 0xff)) & m;
    let at = |i: i64, j: i64| f64::from(lattice[(((j & m) as usize) * NOISE_SIDE) + (i & m) as usize]);
    let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (smooth(x - fx), smooth(y - fy));
    let top = at(ix, iy) * (1.0 - sx) + at(ix + 1, iy) * sx;
    let bottom = at(ix, iy + 1) * (1.0 - sx) + at(ix + 1, iy + 1) * sx;
    top * (1.0 - sy) + bottom * sy
}

fn point_in_polygon(p: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = p.len() - 1;
    for i in 0..p.len() {
        let (xi, yi) = p[i];
        let (xj, yj) = p[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Kind of container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BagKind {
    HardSuitcase,
    SoftBag,
    Parcel,
}

impl BagKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BagKind::HardSuitcase => "hard_suitcase",
            BagKind::SoftBag => "soft_bag",
            BagKind::Parcel => "parcel",
        }
    }
}

/// A synthetic bag: container and contents, with ground truth.
#[derive(Clone, Debug)]
pub struct Bag {
    pub seed: u64,
    pub kind: BagKind,
    /// Length along the belt including leading and trailing air (mm).
    pub length_mm: f64,
    pub objects: Vec<Object>,
}

/// Ground truth of a bag as `render --truth` writes it: every item with its parts.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Truth {
    pub seed: u64,
    pub profile: String,
    pub bag: String,
    pub length_mm: f64,
    /// Belt travel per line and channel pitch (mm): pixel `(line, channel)` is centred on
    /// `((line + 0.5) * line_pitch_mm, (channel + 0.5) * channel_pitch_mm)`.
    pub line_pitch_mm: f64,
    pub channel_pitch_mm: f64,
    pub lines: usize,
    pub channels: usize,
    pub objects: Vec<TruthObject>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TruthObject {
    pub kind: String,
    pub category: Category,
    pub customs_interest: bool,
    pub quarantine_interest: bool,
    pub mass_g: f64,
    pub parts: Vec<TruthPart>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TruthPart {
    pub part: String,
    pub category: Category,
    pub material: String,
    pub class: Option<MaterialClass>,
    pub density_g_cm3: f64,
    pub mass_g: f64,
    /// Closed outline in bag millimetres, `[x along the belt, y across]`.
    pub outline: Vec<[f64; 2]>,
}

impl Bag {
    /// Number of detector lines the bag occupies at this profile's belt speed and line rate.
    pub fn lines(&self, profile: &ScannerProfile) -> usize {
        (self.length_mm / profile.line_pitch_mm()).ceil() as usize
    }

    /// Ground-truth class of an object's material.
    pub fn object_class(&self, i: usize) -> Option<MaterialClass> {
        PhysicsTables::builtin().material(self.objects[i].material).and_then(|m| m.class)
    }

    /// Footprint of object `i` on the scan grid: `mask[[line, channel]]`.
    pub fn object_mask(&self, i: usize, profile: &ScannerProfile) -> Array2<bool> {
        let (lp, cp) = (profile.line_pitch_mm(), profile.pixel_pitch_mm);
        let o = &self.objects[i];
        Array2::from_shape_fn((self.lines(profile), profile.channels as usize), |(l, c)| {
            o.areal_at((l as f64 + 0.5) * lp, (c as f64 + 0.5) * cp) > 0.0
        })
    }

    /// Every item with its parts, materials, masses and outlines.
    pub fn truth(&self, profile: &ScannerProfile) -> Truth {
        let mut objects: Vec<TruthObject> = Vec::new();
        let mut first: Vec<usize> = Vec::new();
        for (i, o) in self.objects.iter().enumerate() {
            let part = TruthPart {
                part: o.part.to_string(),
                category: o.category,
                material: o.material.to_string(),
                class: self.object_class(i),
                density_g_cm3: o.density_g_cm3,
                mass_g: (o.mass_g() * 100.0).round() / 100.0,
                outline: o.outline_mm(),
            };
            match first.iter().position(|&f| f == o.item) {
                Some(k) => objects[k].parts.push(part),
                None => {
                    let category = Kind::parse(o.kind).map_or(o.category, Kind::category);
                    first.push(o.item);
                    objects.push(TruthObject {
                        kind: o.kind.to_string(),
                        category,
                        customs_interest: category.customs_interest(),
                        quarantine_interest: category.quarantine_interest(),
                        mass_g: 0.0,
                        parts: vec![part],
                    });
                }
            }
        }
        for o in &mut objects {
            o.mass_g = (o.parts.iter().map(|p| p.mass_g).sum::<f64>() * 100.0).round() / 100.0;
        }
        Truth {
            seed: self.seed,
            profile: profile.name.clone(),
            bag: self.kind.as_str().to_string(),
            length_mm: self.length_mm,
            line_pitch_mm: profile.line_pitch_mm(),
            channel_pitch_mm: profile.pixel_pitch_mm,
            lines: self.lines(profile),
            channels: profile.channels as usize,
            objects,
        }
    }
}

const MARGIN_MM: f64 = 60.0;

/// How often each kind of content is packed (chance per bag; several of a kind may come).
fn menu(kind: BagKind) -> &'static [(Kind, f64)] {
    match kind {
        BagKind::Parcel => &[
            (Kind::Book, 0.35),
            (Kind::FoldedClothes, 0.35),
            (Kind::Shoes, 0.15),
            (Kind::Phone, 0.2),
            (Kind::Charger, 0.2),
            (Kind::PowerBank, 0.15),
            (Kind::Cable, 0.3),
            (Kind::Can, 0.15),
            (Kind::Toiletries, 0.2),
            (Kind::Fruit, 0.15),
            (Kind::Meat, 0.15),
            (Kind::Sausages, 0.15),
            (Kind::Seeds, 0.2),
            (Kind::SoilBag, 0.08),
            (Kind::PlantCuttings, 0.12),
            (Kind::AnimalInBox, 0.04),
            (Kind::Knife, 0.1),
            (Kind::Gun, 0.04),
            (Kind::Batteries, 0.25),
            (Kind::Powder, 0.06),
            (Kind::LeadBlock, 0.08),
            (Kind::Laptop, 0.15),
            (Kind::Pen, 0.15),
            (Kind::Glasses, 0.05),
            (Kind::Watch, 0.08),
        ],
        _ => &[
            (Kind::Shoes, 0.45),
            (Kind::Laptop, 0.35),
            (Kind::Phone, 0.3),
            (Kind::Charger, 0.35),
            (Kind::PowerBank, 0.3),
            (Kind::Cable, 0.45),
            (Kind::Bottle, 0.45),
            (Kind::GlassBottle, 0.1),
            (Kind::Can, 0.15),
            (Kind::Book, 0.35),
            (Kind::Toiletries, 0.45),
            (Kind::Coins, 0.4),
            (Kind::Keys, 0.45),
            (Kind::Umbrella, 0.2),
            (Kind::Pen, 0.5),
            (Kind::TrouserBelt, 0.3),
            (Kind::Glasses, 0.2),
            (Kind::Watch, 0.15),
            (Kind::Fruit, 0.25),
            (Kind::Meat, 0.15),
            (Kind::Sausages, 0.1),
            (Kind::SoilBag, 0.06),
            (Kind::Seeds, 0.08),
            (Kind::PlantCuttings, 0.06),
            (Kind::PottedPlant, 0.05),
            (Kind::Knife, 0.2),
            (Kind::Gun, 0.04),
            (Kind::Scissors, 0.2),
            (Kind::Lighter, 0.3),
            (Kind::Batteries, 0.2),
            (Kind::Powder, 0.04),
            (Kind::BulkLiquid, 0.06),
            (Kind::LeadBlock, 0.1),
        ],
    }
}

/// Generate a bag from a seed: same seed, same bag, on every machine.
///
/// The container first, then folded clothes lining it, then the rest of its contents in random
/// order, each at a place and angle where it lies inside the container and overlaps the items
/// already packed as little as the tries found (items stack in depth, so some overlap in the
/// image is real; none floats outside the bag). Packing stops at the bag's clutter level
/// (the items' footprints against the container's floor).
pub fn generate_bag(seed: u64, profile: &ScannerProfile) -> Bag {
    let mut rng = Rng::new(seed ^ 0x05EE_DBA6);
    let belt_mm = profile.channels as f64 * profile.pixel_pitch_mm;
    let kind = *rng.pick(&[BagKind::HardSuitcase, BagKind::SoftBag, BagKind::Parcel]);
    let container = match kind {
        BagKind::HardSuitcase => Kind::Suitcase,
        BagKind::SoftBag => Kind::SoftBag,
        BagKind::Parcel => Kind::ParcelBox,
    };
    let (hl, hwid) = container.size(&mut rng);
    let hwid = hwid.min(belt_mm * 0.85 / 2.0);
    let cx = MARGIN_MM + hl;
    let cy = rng.range(hwid + 0.04 * belt_mm, belt_mm - hwid - 0.04 * belt_mm).max(hwid);
    let mut objects = Vec::new();
    let mut parts = rng.fork(1);
    container.build(&mut objects, Pose { cx, cy, angle: 0.0 }, (hl, hwid), &mut parts);
    let inner = (cx - hl + 22.0, cx + hl - 22.0, cy - hwid + 22.0, cy + hwid - 22.0);
    let floor = (inner.1 - inner.0) * (inner.3 - inner.2);
    // Clothes line the bag (not a parcel of goods, mostly).
    let n_clothes = if kind == BagKind::Parcel { rng.int(0, 2) } else { rng.int(2, 4) };
    let mut packed: Vec<(f64, f64, f64, f64)> = Vec::new();
    for _ in 0..n_clothes {
        let size = Kind::FoldedClothes.size(&mut rng);
        let size = (size.0.min((inner.1 - inner.0) * 0.45), size.1.min((inner.3 - inner.2) * 0.45));
        let pose = spot(&mut rng, inner, size, &[]);
        Kind::FoldedClothes.build(&mut objects, pose, size, &mut parts);
    }
    let clutter = match kind {
        BagKind::HardSuitcase => rng.range(0.55, 0.95),
        BagKind::SoftBag => rng.range(0.5, 0.9),
        BagKind::Parcel => rng.range(0.35, 0.8),
    };
    let mut chosen: Vec<Kind> = menu(kind).iter().filter(|(_, p)| rng.chance(*p)).map(|(k, _)| *k).collect();
    if chosen.is_empty() {
        chosen.push(Kind::Keys);
    }
    // Shuffle (Fisher-Yates) so that what is packed first is not always the same kind.
    for i in (1..chosen.len()).rev() {
        let j = rng.int(0, i as i64) as usize;
        chosen.swap(i, j);
    }
    let mut used = 0.0;
    for k in chosen {
        let size = k.size(&mut rng);
        let area = 4.0 * size.0 * size.1;
        if used > 0.0 && used + area > clutter * floor {
            continue;
        }
        let (w, h) = (inner.1 - inner.0, inner.3 - inner.2);
        let fits = |a: f64, b: f64| 2.0 * a <= w && 2.0 * b <= h;
        if !fits(size.0, size.1) && !fits(size.1, size.0) {
            continue; // not in this bag, whichever way it lies
        }
        let pose = spot(&mut rng, inner, size, &packed);
        packed.push(rotated_box(pose, size));
        used += area;
        k.build(&mut objects, pose, size, &mut parts);
    }
    // Now and then the belt's lacing passes under the bag.
    if rng.chance(0.15) {
        let x = rng.range(MARGIN_MM * 0.3, 2.0 * hl + MARGIN_MM * 1.7);
        let pose = Pose { cx: x, cy: belt_mm / 2.0, angle: 0.0 };
        Kind::BeltSeam.build(&mut objects, pose, (6.0, belt_mm / 2.0 - 2.0), &mut parts);
    }
    Bag { seed, kind, length_mm: 2.0 * hl + 2.0 * MARGIN_MM, objects }
}

/// The axis-aligned box of an item of half size `(hw, hh)` at `pose`.
fn rotated_box(pose: Pose, (hw, hh): (f64, f64)) -> (f64, f64, f64, f64) {
    let (s, c) = pose.angle.sin_cos();
    let ex = (hw * c).abs() + (hh * s).abs();
    let ey = (hw * s).abs() + (hh * c).abs();
    (pose.cx - ex, pose.cx + ex, pose.cy - ey, pose.cy + ey)
}

/// A place for an item of half size `(hw, hh)` inside `area`: of several random angles and
/// centres where it fits, the one overlapping the `packed` boxes least.
fn spot(
    rng: &mut Rng,
    area: (f64, f64, f64, f64),
    (hw, hh): (f64, f64),
    packed: &[(f64, f64, f64, f64)],
) -> Pose {
    let (x0, x1, y0, y1) = area;
    let mut best: Option<(f64, Pose)> = None;
    for _ in 0..24 {
        let mut angle = rng.range(-std::f64::consts::PI, std::f64::consts::PI);
        let (mut ex, mut ey) = {
            let b = rotated_box(Pose { cx: 0.0, cy: 0.0, angle }, (hw, hh));
            (b.1, b.3)
        };
        if 2.0 * ex > x1 - x0 || 2.0 * ey > y1 - y0 {
            // Lengthwise or crosswise, whichever fits better.
            let along = (2.0 * hw - (x1 - x0)).max(2.0 * hh - (y1 - y0));
            let across = (2.0 * hh - (x1 - x0)).max(2.0 * hw - (y1 - y0));
            angle = if along <= across { 0.0 } else { std::f64::consts::FRAC_PI_2 };
            let b = rotated_box(Pose { cx: 0.0, cy: 0.0, angle }, (hw, hh));
            (ex, ey) = (b.1, b.3);
        }
        let cx = if x1 - x0 > 2.0 * ex { rng.range(x0 + ex, x1 - ex) } else { (x0 + x1) / 2.0 };
        let cy = if y1 - y0 > 2.0 * ey { rng.range(y0 + ey, y1 - ey) } else { (y0 + y1) / 2.0 };
        let pose = Pose { cx, cy, angle };
        let b = rotated_box(pose, (hw, hh));
        let overlap: f64 = packed
            .iter()
            .map(|p| ((b.1.min(p.1) - b.0.max(p.0)).max(0.0)) * ((b.3.min(p.3) - b.2.max(p.2)).max(0.0)))
            .sum();
        if best.as_ref().is_none_or(|(o, _)| overlap < *o) {
            best = Some((overlap, pose));
        }
        if overlap == 0.0 {
            break;
        }
    }
    best.expect("at least one try").1
}

/// Where an object lies: centre x, y (mm), half extents (mm), rotation (radians).
pub type Place = (f64, f64, f64, f64, f64);

impl Object {
    /// An object of `material` at `density` (g/cm^3), placed at `place`, part of item `item`.
    pub fn placed(
        category: Category,
        material: &'static str,
        density: f64,
        outline: Outline,
        profile: Profile,
        (cx, cy, hw, hh, angle): Place,
        item: usize,
    ) -> Object {
        Object {
            category,
            kind: category.as_str(),
            part: category.as_str(),
            material,
            density_g_cm3: density,
            outline,
            profile,
            cx,
            cy,
            half_w: hw,
            half_h: hh,
            angle,
            item,
        }
    }
}

/// One item alone on an empty belt (for the gallery and the TIP library): `kind` drawn from
/// `seed`, lengthwise in the middle of the belt.
pub fn single_item(kind: Kind, seed: u64, profile: &ScannerProfile) -> Bag {
    let mut rng = Rng::new(seed ^ 0x17E4);
    let size = kind.size(&mut rng);
    let belt_mm = profile.channels as f64 * profile.pixel_pitch_mm;
    let size = (size.0, size.1.min(belt_mm / 2.0 - 10.0));
    let cx = 40.0 + size.0.max(size.1);
    let mut objects = Vec::new();
    kind.build(&mut objects, Pose { cx, cy: belt_mm / 2.0, angle: 0.0 }, size, &mut rng);
    let x1 = objects.iter().map(|o| o.bbox().1).fold(0.0, f64::max);
    Bag { seed, kind: BagKind::Parcel, length_mm: x1 + 40.0, objects }
}

/// Light shared with each neighbouring channel of the detector (scintillator crosstalk).
pub const CROSSTALK: f32 = 0.04;
/// Share of a line's signal still glowing in the next line (scintillator afterglow).
pub const AFTERGLOW: f32 = 0.015;

/// A physics-based scanner: reads a [`Bag`] out as raw lines the way a profile's detector would.
pub struct SyntheticScanner {
    pub profile: ScannerProfile,
    fast: FastModel,
    table: BasisTable,
    gain_low: Vec<f32>,
    gain_high: Vec<f32>,
    dark_low: Vec<f32>,
    dark_high: Vec<f32>,
    /// The seed of every line's noise (with the line's number).
    noise_seed: u64,
    seq: u64,
    /// Tube output factor (1 = nominal); callers may change it to emulate drift.
    pub tube_output: f64,
    /// The last line read out of a bag (afterglow), air before the first.
    glow: (Vec<f32>, Vec<f32>),
}

/// Per part of a bag: material index, bounding box, rotation.
struct Prepared {
    mats: Vec<usize>,
    boxes: Vec<(f64, f64, f64, f64)>,
    trig: Vec<(f64, f64)>,
}

/// Per-line working memory of the renderer.
struct LineBuf {
    /// Every pixel through the full model (the reference the table is held to).
    all_exact: bool,
    pe: Vec<f32>,
    fe: Vec<f32>,
    exact: Vec<bool>,
    areal: Vec<f32>,
    scratch: Vec<f32>,
}

/// The detector's crosstalk: each channel shares [`CROSSTALK`] of its signal with either
/// neighbour (the edges with themselves). Written for the compiler to vectorise.
fn crosstalk(src: &[f32], out: &mut [f32]) {
    let n = src.len();
    if n < 2 {
        out.copy_from_slice(src);
        return;
    }
    let (keep, share) = (1.0 - 2.0 * CROSSTALK, CROSSTALK);
    out[0] = keep * src[0] + share * (src[0] + src[1]);
    out[n - 1] = keep * src[n - 1] + share * (src[n - 2] + src[n - 1]);
    for ((o, w), c) in out[1..n - 1].iter_mut().zip(src.windows(3)).zip(&src[1..n - 1]) {
        *o = keep * *c + share * (w[0] + w[2]);
    }
}

impl SyntheticScanner {
    pub fn new(profile: &ScannerProfile, seed: u64) -> Result<Self, PhysicsError> {
        let model = ForwardModel::new(profile.kvp, &profile.detector)?;
        let names: Vec<&str> = PhysicsTables::builtin().object_materials().map(|m| m.name.as_str()).collect();
        let fast = model.fast(2.0, &names)?;
        let table = BasisTable::new(&fast);
        let mut rng = Rng::new(seed ^ 0xDE7EC7);
        let n = profile.channels as usize;
        let gains = |rng: &mut Rng| -> Vec<f32> {
            (0..n).map(|_| (1.0 + profile.gain_spread * rng.normal()).clamp(0.5, 1.5) as f32).collect()
        };
        let gain_low = gains(&mut rng);
        let gain_high = gains(&mut rng);
        let darks = |rng: &mut Rng| -> Vec<f32> {
            (0..n).map(|_| (profile.dark_level * (1.0 + 0.05 * rng.normal())).max(0.0) as f32).collect()
        };
        let dark_low = darks(&mut rng);
        let dark_high = darks(&mut rng);
        Ok(SyntheticScanner {
            profile: profile.clone(),
            fast,
            table,
            gain_low,
            gain_high,
            dark_low,
            dark_high,
            noise_seed: rng.next_u64(),
            seq: 0,
            tube_output: 1.0,
            glow: (vec![1.0; n], vec![1.0; n]),
        })
    }

    pub fn channels(&self) -> usize {
        self.profile.channels as usize
    }

    /// What the renderer keeps per part of a bag: its material's index in the model, its
    /// bounding box, its rotation's sine and cosine.
    fn prepare(&self, bag: &Bag) -> Prepared {
        let mats = bag
            .objects
            .iter()
            .map(|o| {
                self.fast
                    .material_index(o.material)
                    .expect("bag materials are object materials of the tables")
            })
            .collect();
        Prepared {
            mats,
            boxes: bag.objects.iter().map(Object::bbox).collect(),
            trig: bag.objects.iter().map(|o| o.angle.sin_cos()).collect(),
        }
    }

    /// Read out line `seq` given per-channel transmissions (`None`: beam off). Its noise comes
    /// from a stream of its own (the scanner's seed and the line's number), so a bag's lines are
    /// the same read out one at a time (a live stream) or many at once on every core.
    fn read_line(&self, seq: u64, t: Option<(&[f32], &[f32])>) -> RawLine {
        let p = &self.profile;
        let mut rng = Rng::new(self.noise_seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (tl, th) = t.unzip();
        let low = self.read_energy(
            &mut rng,
            tl,
            &self.dark_low,
            &self.gain_low,
            p.air_quanta_low,
            p.air_signal_low,
        );
        let high = self.read_energy(
            &mut rng,
            th,
            &self.dark_high,
            &self.gain_high,
            p.air_quanta_high,
            p.air_signal_high,
        );
        let kind = if t.is_some() { LineKind::Scan } else { LineKind::Dark };
        RawLine { seq, kind, low, high }
    }

    /// One energy's samples of a line: each channel's dark level, read noise, and the photons
    /// through `t` (none: beam off; Poisson: exact below 30 quanta, above it its normal
    /// approximation, which joins the read noise in one normal draw), scaled by the channel's
    /// gain and rounded to the converter's counts.
    fn read_energy(
        &self,
        rng: &mut Rng,
        t: Option<&[f32]>,
        dark: &[f32],
        gain: &[f32],
        quanta: f64,
        signal: f64,
    ) -> Vec<u16> {
        let read = self.profile.dark_noise;
        let full = self.profile.full_scale() as f64;
        // Rounded to the nearest count (a positive value: plus a half, truncated; no libm call).
        let count = |v: f64| (v.clamp(0.0, full) + 0.5) as u16;
        let Some(t) = t else {
            return dark.iter().map(|&d| count(d as f64 + read * rng.gauss())).collect();
        };
        let (per_signal, photons) = (signal / quanta, quanta * self.tube_output);
        t.iter()
            .zip(dark.iter().zip(gain))
            .map(|(&t, (&d, &g))| {
                let per_quantum = per_signal * g as f64;
                let lambda = photons * t as f64;
                count(if lambda >= 30.0 {
                    let var = read * read + per_quantum * per_quantum * lambda;
                    d as f64 + per_quantum * lambda + var.sqrt() * rng.gauss()
                } else {
                    d as f64 + read * rng.gauss() + per_quantum * rng.poisson(lambda)
                })
            })
            .collect()
    }

    /// Read out the next line given per-channel transmissions (`None`: beam off).
    pub fn line_from_transmission(&mut self, t: Option<(&[f32], &[f32])>) -> RawLine {
        let line = self.read_line(self.seq, t);
        self.seq += 1;
        line
    }

    pub fn dark_line(&mut self) -> RawLine {
        self.line_from_transmission(None)
    }

    pub fn air_line(&mut self) -> RawLine {
        let ones = vec![1.0f32; self.channels()];
        self.line_from_transmission(Some((&ones, &ones)))
    }

    fn line_buf(&self) -> LineBuf {
        let n = self.channels();
        LineBuf {
            all_exact: false,
            pe: vec![0.0; n],
            fe: vec![0.0; n],
            exact: vec![false; n],
            areal: vec![0.0; self.fast.materials.len()],
            scratch: vec![0.0; self.fast.bins()],
        }
    }

    /// Noise-free transmissions of line `l` of a bag into `tl`, `th`, before the detector's
    /// blur: each part's areal density averaged over the pixel, summed as basis materials.
    fn render_line(
        &self,
        bag: &Bag,
        prep: &Prepared,
        l: usize,
        buf: &mut LineBuf,
        (tl, th): (&mut [f32], &mut [f32]),
    ) {
        let n = self.channels();
        let (lp, cp) = (self.profile.line_pitch_mm(), self.profile.pixel_pitch_mm);
        let pitch = (lp + cp) / 2.0;
        let x = (l as f64 + 0.5) * lp;
        buf.pe.fill(0.0);
        buf.fe.fill(0.0);
        buf.exact.fill(false);
        let mut active = Vec::new();
        for (i, o) in bag.objects.iter().enumerate() {
            let b = prep.boxes[i];
            if x < b.0 - pitch || x > b.1 + pitch {
                continue;
            }
            active.push(i);
            let trig = prep.trig[i];
            let Some((c0, c1)) = o.channels_on_line(x, trig, pitch, cp, n) else { continue };
            let m = prep.mats[i];
            let (ka, kb) = self.table.coeff[m];
            let exact = self.table.exact[m] || buf.all_exact;
            // Along the line the part's own coordinates step evenly: one rotation per line.
            let (mut u, mut v) = o.local_with(x, (c0 as f64 + 0.5) * cp, trig);
            let (du, dv) = (trig.0 * cp, trig.1 * cp);
            for c in c0..c1 {
                let a = o.areal_over_local(u, v, pitch) as f32;
                (u, v) = (u + du, v + dv);
                if a > 0.0 {
                    if exact {
                        buf.exact[c] = true;
                    } else {
                        buf.pe[c] += ka * a;
                        buf.fe[c] += kb * a;
                    }
                }
            }
        }
        for c in 0..n {
            if buf.exact[c] {
                // Every part here through the full model (an absorption edge in the spectrum).
                buf.areal.fill(0.0);
                let y = (c as f64 + 0.5) * cp;
                for &i in &active {
                    buf.areal[prep.mats[i]] +=
                        bag.objects[i].areal_over_with(x, y, pitch, prep.trig[i]) as f32;
                }
                (tl[c], th[c]) = self.fast.transmission(&buf.areal, &mut buf.scratch);
            } else if buf.pe[c] == 0.0 && buf.fe[c] == 0.0 {
                (tl[c], th[c]) = (1.0, 1.0);
            } else {
                (tl[c], th[c]) = self.table.transmission(buf.pe[c], buf.fe[c]);
            }
        }
    }

    /// Noise-free transmissions `(T_low, T_high)` of line `l` of a bag (no detector blur).
    pub fn transmissions(&self, bag: &Bag, l: usize) -> (Vec<f32>, Vec<f32>) {
        let n = self.channels();
        let prep = self.prepare(bag);
        let mut buf = self.line_buf();
        let (mut tl, mut th) = (vec![1.0f32; n], vec![1.0f32; n]);
        self.render_line(bag, &prep, l, &mut buf, (&mut tl, &mut th));
        (tl, th)
    }

    /// Noise-free transmissions of the whole bag (no detector blur), `[[line, channel]]`, on
    /// every core.
    pub fn transmission_frame(&self, bag: &Bag) -> (Array2<f32>, Array2<f32>) {
        self.frame_with(bag, false)
    }

    /// The same through the full forward model at every pixel, without the basis table: the
    /// reference the table is held to (and the speed it is measured against).
    pub fn transmission_frame_exact(&self, bag: &Bag) -> (Array2<f32>, Array2<f32>) {
        self.frame_with(bag, true)
    }

    fn frame_with(&self, bag: &Bag, all_exact: bool) -> (Array2<f32>, Array2<f32>) {
        let (lines, n) = (bag.lines(&self.profile), self.channels());
        let prep = self.prepare(bag);
        // Every pixel is written below: zeroed memory (fresh pages, touched first by the
        // threads that render them) rather than a single-threaded fill.
        let mut lo = Array2::<f32>::zeros((lines, n));
        let mut hi = Array2::<f32>::zeros((lines, n));
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, 16);
        // Blocks of lines handed out in turn, so that a cluttered stretch of the bag does not
        // leave the other cores idle.
        const BLOCK: usize = 32;
        let blocks: Vec<std::sync::Mutex<Option<_>>> = lo
            .axis_chunks_iter_mut(ndarray::Axis(0), BLOCK)
            .zip(hi.axis_chunks_iter_mut(ndarray::Axis(0), BLOCK))
            .enumerate()
            .map(|(k, rows)| std::sync::Mutex::new(Some((k * BLOCK, rows))))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                let (prep, blocks, next) = (&prep, &blocks, &next);
                s.spawn(move || {
                    let mut buf = self.line_buf();
                    buf.all_exact = all_exact;
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(block) = blocks.get(k) else { break };
                        let taken = block.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                        let Some((first, (mut lo, mut hi))) = taken else { continue };
                        for (r, (mut a, mut b)) in lo.rows_mut().into_iter().zip(hi.rows_mut()).enumerate() {
                            let (a, b) = (
                                a.as_slice_mut().expect("rows are contiguous"),
                                b.as_slice_mut().expect("rows are contiguous"),
                            );
                            self.render_line(bag, prep, first + r, &mut buf, (a, b));
                        }
                    }
                });
            }
        });
        drop(blocks);
        (lo, hi)
    }

    /// The detector's blur of one line: light shared with the neighbouring channels, and the
    /// afterglow of the line before.
    fn blur(&mut self, t: &mut [f32], high: bool) {
        let src = t.to_vec();
        crosstalk(&src, t);
        self.afterglow(t, high);
    }

    /// The last line's afterglow on line `t` (one line after another: each carries the last).
    fn afterglow(&mut self, t: &mut [f32], high: bool) {
        let glow = if high { &mut self.glow.1 } else { &mut self.glow.0 };
        for (v, g) in t.iter_mut().zip(glow.iter_mut()) {
            *v = (1.0 - AFTERGLOW) * *v + AFTERGLOW * *g;
            *g = *v;
        }
    }

    /// Scan a whole bag: its raw lines, in order.
    pub fn scan_bag(&mut self, bag: &Bag) -> RawFrame {
        let lines = self.scan_lines(bag);
        RawFrame::from_lines(&lines, self.channels())
    }

    /// A whole bag's raw lines at once, rendered and read out on every core: the same lines as
    /// [`SyntheticScanner::bag_lines`] gives one at a time.
    pub fn scan_lines(&mut self, bag: &Bag) -> Vec<RawLine> {
        let (mut lo, mut hi) = self.transmission_frame(bag);
        self.glow.0.fill(1.0);
        self.glow.1.fill(1.0);
        let n = lo.nrows();
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, 16);
        let per = n.div_ceil(threads).max(1);
        // The detector's crosstalk within each line on every core, its afterglow line after
        // line (each line carries the last one's), then the readout's noise on every core.
        std::thread::scope(|s| {
            let chunks = lo
                .axis_chunks_iter_mut(ndarray::Axis(0), per)
                .zip(hi.axis_chunks_iter_mut(ndarray::Axis(0), per));
            for (mut x, mut y) in chunks {
                s.spawn(move || {
                    let mut src = Vec::new();
                    for mut row in x.rows_mut().into_iter().chain(y.rows_mut()) {
                        let row = row.as_slice_mut().expect("rows are contiguous");
                        src.clear();
                        src.extend_from_slice(row);
                        crosstalk(&src, row);
                    }
                });
            }
        });
        for (mut a, mut b) in lo.rows_mut().into_iter().zip(hi.rows_mut()) {
            self.afterglow(a.as_slice_mut().expect("rows are contiguous"), false);
            self.afterglow(b.as_slice_mut().expect("rows are contiguous"), true);
        }
        let first = self.seq;
        self.seq += n as u64;
        let this = &*self;
        let lines: Vec<RawLine> = std::thread::scope(|s| {
            let parts: Vec<_> = (0..n)
                .step_by(per)
                .map(|from| {
                    let (lo, hi) = (&lo, &hi);
                    s.spawn(move || {
                        (from..(from + per).min(n))
                            .map(|l| {
                                let (a, b) = (lo.row(l), hi.row(l));
                                let (a, b) =
                                    (a.as_slice().expect("contiguous"), b.as_slice().expect("contiguous"));
                                this.read_line(first + l as u64, Some((a, b)))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts.into_iter().flat_map(|p| p.join().expect("a readout thread panicked")).collect()
        });
        lines
    }

    /// The bag's raw lines, one at a time (for a live stream): the same lines as
    /// [`SyntheticScanner::scan_bag`].
    pub fn bag_lines<'a>(&'a mut self, bag: &'a Bag) -> impl Iterator<Item = RawLine> + 'a {
        let prep = self.prepare(bag);
        let n = bag.lines(&self.profile);
        let mut buf = self.line_buf();
        let ch = self.channels();
        self.glow.0.fill(1.0);
        self.glow.1.fill(1.0);
        (0..n).map(move |l| {
            let (mut tl, mut th) = (vec![1.0f32; ch], vec![1.0f32; ch]);
            self.render_line(bag, &prep, l, &mut buf, (&mut tl, &mut th));
            self.blur(&mut tl, false);
            self.blur(&mut th, true);
            self.line_from_transmission(Some((&tl, &th)))
        })
    }

    /// `n` dark and `n` air lines for calibration.
    pub fn calibration_lines(&mut self, n: usize) -> (Vec<RawLine>, Vec<RawLine>) {
        let dark = (0..n).map(|_| self.dark_line()).collect();
        let air = (0..n).map(|_| RawLine { kind: LineKind::Air, ..self.air_line() }).collect();
        (dark, air)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk() -> ScannerProfile {
        ScannerProfile::load("desk-140").unwrap()
    }

    #[test]
    fn a_bag_read_out_at_once_on_every_core_is_the_one_read_line_by_line() {
        let p = desk();
        let bag = generate_bag(7, &p);
        let mut a = SyntheticScanner::new(&p, 3).unwrap();
        let mut b = SyntheticScanner::new(&p, 3).unwrap();
        // After calibration lines, as a source reads them first.
        let _ = (a.calibration_lines(4), b.calibration_lines(4));
        let whole = a.scan_lines(&bag);
        let one_by_one: Vec<RawLine> = b.bag_lines(&bag).collect();
        assert_eq!(whole.len(), bag.lines(&p));
        assert!(whole == one_by_one, "the same lines, noise and all");
        // The next bag goes on from the same line number, and its noise is new.
        let next = a.scan_lines(&bag);
        assert_eq!(next[0].seq, whole.last().unwrap().seq + 1);
        assert_ne!(next[10].low, whole[10].low);
        // Another seed, other noise on the same bag.
        let mut c = SyntheticScanner::new(&p, 4).unwrap();
        let _ = c.calibration_lines(4);
        assert_ne!(c.scan_lines(&bag)[10].low, whole[10].low);
    }

    #[test]
    fn bags_are_deterministic_and_varied() {
        let p = desk();
        let a = generate_bag(42, &p);
        let b = generate_bag(42, &p);
        assert_eq!(a.objects, b.objects);
        let c = generate_bag(43, &p);
        assert_ne!(a.objects, c.objects);
        let mut seen = std::collections::HashSet::new();
        for seed in 0..60 {
            let bag = generate_bag(seed, &p);
            assert!(bag.objects.len() >= 3, "seed {seed}");
            assert!(bag.lines(&p) > 300 && bag.lines(&p) < 1300, "seed {seed}");
            let belt = p.channels as f64 * p.pixel_pitch_mm;
            for o in &bag.objects {
                seen.insert(o.category);
                let (x0, x1, y0, y1) = o.bbox();
                assert!(x0 >= 0.0 && x1 <= bag.length_mm && y0 >= 0.0 && y1 <= belt, "seed {seed}: {o:?}");
                assert!(PhysicsTables::builtin().material(o.material).is_some());
            }
        }
        for cat in [
            Category::Fruit,
            Category::Meat,
            Category::Soil,
            Category::Blade,
            Category::DenseBlock,
            Category::Laptop,
            Category::Coin,
            Category::Key,
            Category::Cable,
            Category::WaterBottle,
        ] {
            assert!(seen.contains(&cat), "{cat:?} never generated in 60 bags");
        }
    }

    #[test]
    fn scanned_water_bottle_matches_the_forward_model() {
        // A slab of water scanned, calibrated and averaged equals the exact model within noise.
        let p = desk();
        let mut s = SyntheticScanner::new(&p, 1).unwrap();
        let (dark, air) = s.calibration_lines(64);
        let cal = crate::domain::calib::Calibration::from_lines(
            &dark.iter().collect::<Vec<_>>(),
            &air.iter().collect::<Vec<_>>(),
            p.full_scale(),
        )
        .unwrap();
        let slab = Object {
            category: Category::WaterBottle,
            kind: "slab",
            part: "slab",
            material: "water",
            density_g_cm3: 1.0,
            outline: Outline::Rect,
            profile: Profile::Slab(10.0),
            cx: 100.0,
            cy: 600.0,
            half_w: 90.0,
            half_h: 400.0,
            angle: 0.0,
            item: 0,
        };
        let bag = Bag { seed: 0, kind: BagKind::Parcel, length_mm: 200.0, objects: vec![slab] };
        let frame = s.scan_bag(&bag);
        let (mut sum_lo, mut sum_hi, mut n) = (0.0, 0.0, 0.0);
        for l in 100..150 {
            let line = RawLine {
                seq: 0,
                kind: LineKind::Scan,
                low: frame.low.row(l).to_vec(),
                high: frame.high.row(l).to_vec(),
            };
            let (lo, hi) = cal.attenuate_line(&line);
            for c in 400..1100 {
                sum_lo += lo[c] as f64;
                sum_hi += hi[c] as f64;
                n += 1.0;
            }
        }
        let exact = ForwardModel::new(140, &p.detector).unwrap().material("water", 10.0).unwrap();
        assert!((sum_lo / n / exact.0 - 1.0).abs() < 0.01, "{} vs {}", sum_lo / n, exact.0);
        assert!((sum_hi / n / exact.1 - 1.0).abs() < 0.01, "{} vs {}", sum_hi / n, exact.1);
        // air outside the slab stays near zero attenuation
        let line = RawLine {
            seq: 0,
            kind: LineKind::Scan,
            low: frame.low.row(120).to_vec(),
            high: frame.high.row(120).to_vec(),
        };
        let (lo, _) = cal.attenuate_line(&line);
        let air_mean: f32 = lo[..200].iter().sum::<f32>() / 200.0;
        assert!(air_mean.abs() < 0.01, "{air_mean}");
    }

    #[test]
    fn raw_samples_respect_the_adc() {
        let p = desk();
        let mut s = SyntheticScanner::new(&p, 3).unwrap();
        let d = s.dark_line();
        let mean = d.low.iter().map(|&v| v as f64).sum::<f64>() / d.low.len() as f64;
        assert!((mean - p.dark_level).abs() < 0.02 * p.dark_level, "{mean}");
        s.tube_output = 2.0; // saturate: samples clip at full scale, never wrap
        let a = s.air_line();
        assert!(a.low.iter().chain(&a.high).any(|&v| v == p.full_scale()));
        let mask = generate_bag(5, &p).object_mask(0, &p);
        assert!(mask.iter().any(|&m| m));
    }
}
