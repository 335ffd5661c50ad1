//! Synthetic bags and parcels, and a physics-based synthetic scanner that reads them out as raw
//! dual-energy detector lines.
//!
//! Owns: [`Bag`] (a deterministic, seeded description of a container and its contents, with
//! ground truth per object), [`generate_bag`], and [`SyntheticScanner`] (dark offset, per-channel
//! gain spread, tube drift, Poisson quantum noise and read noise on top of the forward model).
//! Objects overlap and sum their areal densities per material; each pixel's transmission comes from
//! [`FastModel`] (the forward model on 2 keV bins).
//!
//! Geometry: `x` runs along the belt (line index times the belt travel per line), `y` across the
//! belt (channel index times the channel pitch), both in millimetres.
//!
//! Must not import: egui, wgpu, tokio.

use ndarray::Array2;

use super::physics::{FastModel, ForwardModel, MaterialClass, PhysicsError, PhysicsTables};
use super::profile::ScannerProfile;
use super::rng::Rng;
use super::scan::{LineKind, RawFrame, RawLine};

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
        }
    }

    /// Of interest to quarantine (animal and plant products, soil).
    pub fn quarantine_interest(self) -> bool {
        matches!(self, Category::Fruit | Category::Meat | Category::Plant | Category::Soil)
    }

    /// Of interest to customs (weapons, shielding and concealment).
    pub fn customs_interest(self) -> bool {
        matches!(self, Category::Blade | Category::DenseBlock)
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
}

/// One object (or one part of a composite object) in a bag.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub category: Category,
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

    /// Areal density (g/cm^2) at `(x, y)` mm; 0 outside.
    pub fn areal_at(&self, x: f64, y: f64) -> f64 {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = dx * c + dy * s;
        let v = -dx * s + dy * c;
        let (nu, nv) = (u / self.half_w, v / self.half_h);
        let inside = match &self.outline {
            Outline::Rect => nu.abs() <= 1.0 && nv.abs() <= 1.0,
            Outline::Ellipse => nu * nu + nv * nv <= 1.0,
            Outline::Polygon(p) => point_in_polygon(p, u, v),
        };
        if !inside {
            return 0.0;
        }
        let t_cm = match self.profile {
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
        };
        t_cm * self.density_g_cm3
    }
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

/// A synthetic bag: container and contents, with ground truth.
#[derive(Clone, Debug)]
pub struct Bag {
    pub seed: u64,
    pub kind: BagKind,
    /// Length along the belt including leading and trailing air (mm).
    pub length_mm: f64,
    pub objects: Vec<Object>,
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
}

const MARGIN_MM: f64 = 60.0;

/// Generate a bag from a seed: same seed, same bag, on every machine.
pub fn generate_bag(seed: u64, profile: &ScannerProfile) -> Bag {
    let mut rng = Rng::new(seed ^ 0x05EE_DBA6);
    let belt_mm = profile.channels as f64 * profile.pixel_pitch_mm;
    let kind = *rng.pick(&[BagKind::HardSuitcase, BagKind::SoftBag, BagKind::Parcel]);
    let (len, wid) = match kind {
        BagKind::HardSuitcase => (rng.range(520.0, 760.0), rng.range(340.0, 460.0)),
        BagKind::SoftBag => (rng.range(420.0, 650.0), rng.range(280.0, 400.0)),
        BagKind::Parcel => (rng.range(250.0, 600.0), rng.range(200.0, 420.0)),
    };
    let wid = wid.min(belt_mm * 0.85);
    let cx = MARGIN_MM + len / 2.0;
    let cy = rng.range(wid / 2.0 + 0.04 * belt_mm, belt_mm - wid / 2.0 - 0.04 * belt_mm).max(wid / 2.0);
    let mut b = Builder { objects: Vec::new(), rng: rng.fork(1) };
    let rect = |cx, cy, hw, hh, angle| (cx, cy, hw, hh, angle);
    match kind {
        BagKind::HardSuitcase => {
            b.add(
                Category::Container,
                "pmma",
                1.2,
                Outline::Rect,
                Profile::Shell { wall_cm: 0.3, side_cm: 22.0, rim_mm: 4.0 },
                rect(cx, cy, len / 2.0, wid / 2.0, 0.0),
            );
            let item = b.objects.len();
            for side in [-1.0, 1.0] {
                b.part(
                    item,
                    Category::Container,
                    "aluminium",
                    2.7,
                    Outline::Rect,
                    Profile::Cylinder(0.5),
                    rect(cx, cy + side * wid * 0.3, len / 2.0 - 15.0, 9.0, 0.0),
                );
            }
            for (dx, dy) in [(-1.0, -1.0), (-1.0, 1.0)] {
                b.part(
                    item,
                    Category::Container,
                    "polyethylene",
                    0.95,
                    Outline::Ellipse,
                    Profile::Dome(4.0),
                    rect(cx + dx * (len / 2.0 - 30.0), cy + dy * (wid / 2.0 - 30.0), 25.0, 25.0, 0.0),
                );
                b.part(
                    item,
                    Category::Container,
                    "iron",
                    7.87,
                    Outline::Rect,
                    Profile::Cylinder(0.8),
                    rect(cx + dx * (len / 2.0 - 30.0), cy + dy * (wid / 2.0 - 30.0), 4.0, 28.0, 0.0),
                );
            }
        }
        BagKind::SoftBag => {
            b.add(
                Category::Container,
                "nylon6",
                0.6,
                Outline::Rect,
                Profile::Shell { wall_cm: 0.15, side_cm: 8.0, rim_mm: 6.0 },
                rect(cx, cy, len / 2.0, wid / 2.0, 0.0),
            );
            let item = b.objects.len() - 1;
            b.part(
                item,
                Category::Container,
                "zinc",
                7.1,
                Outline::Rect,
                Profile::Slab(0.12),
                rect(cx, cy - wid / 2.0 + 12.0, len / 2.0 - 20.0, 3.0, 0.0),
            );
        }
        BagKind::Parcel => {
            b.add(
                Category::Container,
                "cellulose",
                0.25,
                Outline::Rect,
                Profile::Shell { wall_cm: 0.6, side_cm: 30.0, rim_mm: 5.0 },
                rect(cx, cy, len / 2.0, wid / 2.0, 0.0),
            );
        }
    }
    let inner = (cx - len / 2.0 + 25.0, cx + len / 2.0 - 25.0, cy - wid / 2.0 + 25.0, cy + wid / 2.0 - 25.0);
    b.fill(kind, inner);
    Bag { seed, kind, length_mm: len + 2.0 * MARGIN_MM, objects: b.objects }
}

struct Builder {
    objects: Vec<Object>,
    rng: Rng,
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

impl Builder {
    #[allow(clippy::too_many_arguments)]
    fn part(
        &mut self,
        item: usize,
        category: Category,
        material: &'static str,
        density: f64,
        outline: Outline,
        profile: Profile,
        place: Place,
    ) {
        self.objects.push(Object::placed(category, material, density, outline, profile, place, item));
    }

    fn add(
        &mut self,
        category: Category,
        material: &'static str,
        density: f64,
        outline: Outline,
        profile: Profile,
        place: Place,
    ) -> usize {
        let item = self.objects.len();
        self.part(item, category, material, density, outline, profile, place);
        item
    }

    /// A random position for an object of half size (hw, hh) inside `area`.
    /// A random angle at which the rotated footprint fits (several tries, then the better of
    /// lengthwise and crosswise), and a centre that keeps it inside the area.
    fn spot(&mut self, area: (f64, f64, f64, f64), hw: f64, hh: f64) -> Place {
        let (x0, x1, y0, y1) = area;
        let extents = |a: f64| {
            let (s, c) = a.sin_cos();
            ((hw * c).abs() + (hh * s).abs(), (hw * s).abs() + (hh * c).abs())
        };
        let fits = |(ex, ey): (f64, f64)| 2.0 * ex <= x1 - x0 && 2.0 * ey <= y1 - y0;
        let mut angle = self.rng.range(-std::f64::consts::PI, std::f64::consts::PI);
        for _ in 0..16 {
            if fits(extents(angle)) {
                break;
            }
            angle = self.rng.range(-std::f64::consts::PI, std::f64::consts::PI);
        }
        if !fits(extents(angle)) {
            let over = |(ex, ey): (f64, f64)| (2.0 * ex - (x1 - x0)).max(2.0 * ey - (y1 - y0));
            let half_pi = std::f64::consts::FRAC_PI_2;
            angle = if over(extents(0.0)) <= over(extents(half_pi)) { 0.0 } else { half_pi };
        }
        let (ex, ey) = extents(angle);
        let cx = if x1 - x0 > 2.0 * ex { self.rng.range(x0 + ex, x1 - ex) } else { (x0 + x1) / 2.0 };
        let cy = if y1 - y0 > 2.0 * ey { self.rng.range(y0 + ey, y1 - ey) } else { (y0 + y1) / 2.0 };
        (cx, cy, hw, hh, angle)
    }

    fn fill(&mut self, kind: BagKind, area: (f64, f64, f64, f64)) {
        let (aw, ah) = (area.1 - area.0, area.3 - area.2);
        let r = |b: &mut Builder, lo: f64, hi: f64| b.rng.range(lo, hi);
        // Clothes and paper first: they lie under everything else.
        let n_clothes = if kind == BagKind::Parcel { self.rng.int(0, 2) } else { self.rng.int(2, 5) };
        for _ in 0..n_clothes {
            let (hw, hh) = (r(self, 0.25, 0.45) * aw, r(self, 0.25, 0.45) * ah);
            let (mat, dens) = if self.rng.chance(0.6) { ("cellulose", 0.2) } else { ("nylon6", 0.15) };
            let t = r(self, 3.0, 8.0);
            let p = self.spot(area, hw, hh);
            self.add(Category::Clothing, mat, dens, Outline::Rect, Profile::Dome(t), p);
        }
        let mut extras: Vec<u8> = Vec::new();
        let menu: &[(u8, f64)] = &[
            (0, 0.5),
            (1, 0.45),
            (2, 0.35),
            (3, 0.45),
            (4, 0.25),
            (5, 0.3),
            (6, 0.15),
            (7, 0.15),
            (8, 0.5),
            (9, 0.5),
            (10, 0.35),
            (11, 0.45),
            (12, 0.25),
            (13, 0.35),
        ];
        for &(what, p) in menu {
            if self.rng.chance(p) {
                extras.push(what);
            }
        }
        if extras.is_empty() {
            extras.push(9);
        }
        for what in extras {
            match what {
                0 => {
                    // books / paper
                    let (hw, hh) = (r(self, 70.0, 120.0), r(self, 50.0, 90.0));
                    let p = self.spot(area, hw, hh);
                    let t = r(self, 1.5, 4.0);
                    self.add(Category::Paper, "cellulose", 0.9, Outline::Rect, Profile::Slab(t), p);
                }
                1 => {
                    // water bottle with a cap
                    let (hw, hh) = (r(self, 30.0, 40.0), r(self, 90.0, 140.0));
                    let p = self.spot(area, hw, hh);
                    let item = self.add(
                        Category::WaterBottle,
                        "water",
                        1.0,
                        Outline::Rect,
                        Profile::Cylinder(hw / 5.0),
                        p,
                    );
                    let (s, c) = p.4.sin_cos();
                    let cap = (p.0 - s * (hh + 8.0), p.1 + c * (hh + 8.0), 14.0, 9.0, p.4);
                    self.part(
                        item,
                        Category::WaterBottle,
                        "polyethylene",
                        0.95,
                        Outline::Rect,
                        Profile::Slab(2.6),
                        cap,
                    );
                }
                2 => {
                    // laptop: case, screen glass, board, battery cells, hinges
                    let (hw, hh) = (r(self, 150.0, 175.0), r(self, 100.0, 120.0));
                    let p = self.spot(area, hw, hh);
                    let item =
                        self.add(Category::Laptop, "aluminium", 2.7, Outline::Rect, Profile::Slab(0.25), p);
                    self.part(
                        item,
                        Category::Laptop,
                        "glass",
                        2.5,
                        Outline::Rect,
                        Profile::Slab(0.1),
                        (p.0, p.1, hw - 8.0, hh - 8.0, p.4),
                    );
                    let (s, c) = p.4.sin_cos();
                    let at = |du: f64, dv: f64| (p.0 + du * c - dv * s, p.1 + du * s + dv * c);
                    let (bx, by) = at(0.0, -hh * 0.45);
                    self.part(
                        item,
                        Category::CircuitBoard,
                        "glass",
                        1.9,
                        Outline::Rect,
                        Profile::Slab(0.16),
                        (bx, by, hw * 0.6, hh * 0.3, p.4),
                    );
                    self.part(
                        item,
                        Category::CircuitBoard,
                        "copper",
                        8.96,
                        Outline::Rect,
                        Profile::Slab(0.012),
                        (bx, by, hw * 0.55, hh * 0.25, p.4),
                    );
                    for k in 0..3 {
                        let (x, y) = at(-hw * 0.5 + k as f64 * hw * 0.5, hh * 0.5);
                        self.part(
                            item,
                            Category::Battery,
                            "iron",
                            7.87,
                            Outline::Rect,
                            Profile::Slab(0.06),
                            (x, y, hw * 0.22, 14.0, p.4),
                        );
                        self.part(
                            item,
                            Category::Battery,
                            "aluminium",
                            2.7,
                            Outline::Rect,
                            Profile::Cylinder(0.9),
                            (x, y, hw * 0.2, 13.0, p.4 + std::f64::consts::FRAC_PI_2 * 0.0),
                        );
                    }
                    for side in [-1.0, 1.0] {
                        let (x, y) = at(side * hw * 0.7, -hh + 6.0);
                        self.part(
                            item,
                            Category::Hinge,
                            "iron",
                            7.87,
                            Outline::Rect,
                            Profile::Slab(0.5),
                            (x, y, 18.0, 5.0, p.4),
                        );
                    }
                }
                3 => {
                    // shoes: rubber sole, heel, steel shank
                    let p = self.spot(area, 135.0, 110.0);
                    let (s, c) = p.4.sin_cos();
                    for side in [-1.0, 1.0] {
                        let (x, y) = (p.0 - s * side * 55.0, p.1 + c * side * 55.0);
                        let item = self.add(
                            Category::Shoe,
                            "polyethylene",
                            0.45,
                            Outline::Ellipse,
                            Profile::Dome(9.0),
                            (x, y, 130.0, 48.0, p.4),
                        );
                        self.part(
                            item,
                            Category::Shoe,
                            "iron",
                            7.87,
                            Outline::Rect,
                            Profile::Slab(0.15),
                            (x, y, 45.0, 6.0, p.4),
                        );
                    }
                }
                4 => {
                    // fruit
                    let n = self.rng.int(2, 6);
                    let p = self.spot(area, 90.0, 90.0);
                    for _ in 0..n {
                        let d = r(self, 30.0, 45.0);
                        let (x, y) = (p.0 + r(self, -55.0, 55.0), p.1 + r(self, -55.0, 55.0));
                        self.add(
                            Category::Fruit,
                            "fruit",
                            1.0,
                            Outline::Ellipse,
                            Profile::Dome(d / 5.0),
                            (x, y, d, d * 0.92, p.4),
                        );
                    }
                }
                5 => {
                    // meat in a vacuum pack, with a bone
                    let (hw, hh) = (r(self, 60.0, 90.0), r(self, 40.0, 60.0));
                    let p = self.spot(area, hw, hh);
                    let t = r(self, 3.0, 5.0);
                    let item = self.add(Category::Meat, "meat", 1.06, Outline::Ellipse, Profile::Dome(t), p);
                    if self.rng.chance(0.5) {
                        self.part(
                            item,
                            Category::Meat,
                            "calcite",
                            1.6,
                            Outline::Rect,
                            Profile::Cylinder(1.5),
                            (p.0, p.1, 8.0, p.3 * 0.9, p.4),
                        );
                    }
                }
                6 => {
                    // potted plant: soil ball and leaves
                    let p = self.spot(area, 70.0, 70.0);
                    let item = self.add(
                        Category::Soil,
                        "soil",
                        1.3,
                        Outline::Ellipse,
                        Profile::Dome(9.0),
                        (p.0, p.1, 48.0, 48.0, 0.0),
                    );
                    for k in 0..5 {
                        let a = k as f64 * 1.25 + p.4;
                        let (x, y) = (p.0 + a.cos() * 45.0, p.1 + a.sin() * 45.0);
                        self.part(
                            item,
                            Category::Plant,
                            "cellulose",
                            0.6,
                            Outline::Ellipse,
                            Profile::Slab(0.4),
                            (x, y, 30.0, 10.0, a),
                        );
                    }
                }
                7 => {
                    // a bag of soil
                    let (hw, hh) = (r(self, 50.0, 80.0), r(self, 40.0, 60.0));
                    let p = self.spot(area, hw, hh);
                    self.add(Category::Soil, "soil", 1.4, Outline::Rect, Profile::Dome(3.0), p);
                }
                8 => {
                    // coins
                    let n = self.rng.int(3, 10);
                    let p = self.spot(area, 40.0, 40.0);
                    for _ in 0..n {
                        let d = r(self, 9.0, 14.0);
                        let mat = *self.rng.pick(&["copper", "zinc", "iron"]);
                        let (x, y) = (p.0 + r(self, -30.0, 30.0), p.1 + r(self, -30.0, 30.0));
                        self.add(
                            Category::Coin,
                            mat,
                            8.0,
                            Outline::Ellipse,
                            Profile::Slab(0.18),
                            (x, y, d, d, 0.0),
                        );
                    }
                }
                9 => {
                    // keys
                    let n = self.rng.int(1, 3);
                    let p = self.spot(area, 40.0, 40.0);
                    for k in 0..n {
                        let key = vec![
                            (-30.0, -11.0),
                            (-12.0, -11.0),
                            (-10.0, -4.0),
                            (30.0, -4.0),
                            (30.0, 1.0),
                            (24.0, 4.0),
                            (20.0, 1.0),
                            (14.0, 5.0),
                            (8.0, 1.0),
                            (-10.0, 4.0),
                            (-12.0, 11.0),
                            (-30.0, 11.0),
                        ];
                        let mat = if self.rng.chance(0.5) { "iron" } else { "copper" };
                        self.add(
                            Category::Key,
                            mat,
                            8.0,
                            Outline::Polygon(key),
                            Profile::Slab(0.22),
                            (p.0 + k as f64 * 8.0, p.1 + k as f64 * 10.0, 30.0, 11.0, p.4 + k as f64 * 0.6),
                        );
                    }
                }
                10 => {
                    // knife: steel blade, plastic handle
                    let p = self.spot(area, 120.0, 15.0);
                    let blade =
                        vec![(-20.0, -11.0), (100.0, -11.0), (120.0, -2.0), (100.0, 8.0), (-20.0, 11.0)];
                    let item = self.add(
                        Category::Blade,
                        "iron",
                        7.87,
                        Outline::Polygon(blade),
                        Profile::Slab(0.25),
                        p,
                    );
                    let (s, c) = p.4.sin_cos();
                    self.part(
                        item,
                        Category::Blade,
                        "polyethylene",
                        1.0,
                        Outline::Rect,
                        Profile::Cylinder(2.2),
                        (p.0 - c * 70.0, p.1 - s * 70.0, 50.0, 13.0, p.4 + std::f64::consts::FRAC_PI_2),
                    );
                }
                11 => {
                    // cables: copper core in a PVC sheath
                    let n = self.rng.int(1, 2);
                    for _ in 0..n {
                        let l = r(self, 120.0, 260.0).min(0.48 * aw.max(ah));
                        let p = self.spot(area, 4.0, l);
                        let item = self.add(
                            Category::Cable,
                            "pvc",
                            1.4,
                            Outline::Rect,
                            Profile::Cylinder(0.5),
                            (p.0, p.1, 3.0, l, p.4),
                        );
                        self.part(
                            item,
                            Category::Cable,
                            "copper",
                            8.96,
                            Outline::Rect,
                            Profile::Cylinder(0.15),
                            (p.0, p.1, 1.2, l, p.4),
                        );
                    }
                }
                12 => {
                    // dense block (lead): the beam does not get through
                    let (hw, hh) = (r(self, 25.0, 45.0), r(self, 20.0, 35.0));
                    let p = self.spot(area, hw, hh);
                    let t = r(self, 0.4, 1.5);
                    self.add(Category::DenseBlock, "lead", 11.35, Outline::Rect, Profile::Slab(t), p);
                }
                _ => {
                    // toiletries: an aerosol can and a glass jar
                    let p = self.spot(area, 26.0, 80.0);
                    self.add(Category::Toiletry, "aluminium", 2.7, Outline::Rect, Profile::Slab(0.04), p);
                    let q = self.spot(area, 35.0, 35.0);
                    self.add(Category::Toiletry, "glass", 2.5, Outline::Ellipse, Profile::Slab(0.5), q);
                }
            }
        }
    }
}

/// A physics-based scanner: reads a [`Bag`] out as raw lines the way a profile's detector would.
pub struct SyntheticScanner {
    pub profile: ScannerProfile,
    fast: FastModel,
    gain_low: Vec<f32>,
    gain_high: Vec<f32>,
    dark_low: Vec<f32>,
    dark_high: Vec<f32>,
    rng: Rng,
    seq: u64,
    /// Tube output factor (1 = nominal); callers may change it to emulate drift.
    pub tube_output: f64,
    scratch: Vec<f32>,
    areal: Vec<f32>,
}

impl SyntheticScanner {
    pub fn new(profile: &ScannerProfile, seed: u64) -> Result<Self, PhysicsError> {
        let model = ForwardModel::new(profile.kvp, &profile.detector)?;
        let names: Vec<&str> = PhysicsTables::builtin().object_materials().map(|m| m.name.as_str()).collect();
        let fast = model.fast(2.0, &names)?;
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
        let bins = fast.bins();
        let mats = fast.materials.len();
        Ok(SyntheticScanner {
            profile: profile.clone(),
            fast,
            gain_low,
            gain_high,
            dark_low,
            dark_high,
            rng,
            seq: 0,
            tube_output: 1.0,
            scratch: vec![0.0; bins],
            areal: vec![0.0; mats],
        })
    }

    pub fn channels(&self) -> usize {
        self.profile.channels as usize
    }

    /// Index of a material in the per-pixel areal density vector.
    fn material_index(&self, name: &str) -> usize {
        self.fast.material_index(name).expect("bag materials are object materials of the tables")
    }

    fn sample(&mut self, t: f32, dark: f32, gain: f32, quanta: f64, signal: f64, beam: bool) -> u16 {
        let mut v = dark as f64 + self.profile.dark_noise * self.rng.normal();
        if beam {
            let q = self.rng.poisson(quanta * self.tube_output * t as f64);
            v += q / quanta * signal * gain as f64;
        }
        v.round().clamp(0.0, self.profile.full_scale() as f64) as u16
    }

    /// Read out one line given per-channel transmissions (`None`: beam off).
    pub fn line_from_transmission(&mut self, t: Option<(&[f32], &[f32])>) -> RawLine {
        let n = self.channels();
        let p = self.profile.clone();
        let mut low = Vec::with_capacity(n);
        let mut high = Vec::with_capacity(n);
        for c in 0..n {
            let (tl, th) = t.map_or((0.0, 0.0), |(l, h)| (l[c], h[c]));
            low.push(self.sample(
                tl,
                self.dark_low[c],
                self.gain_low[c],
                p.air_quanta_low,
                p.air_signal_low,
                t.is_some(),
            ));
            high.push(self.sample(
                th,
                self.dark_high[c],
                self.gain_high[c],
                p.air_quanta_high,
                p.air_signal_high,
                t.is_some(),
            ));
        }
        self.seq += 1;
        let kind = if t.is_some() { LineKind::Scan } else { LineKind::Dark };
        RawLine { seq: self.seq - 1, kind, low, high }
    }

    pub fn dark_line(&mut self) -> RawLine {
        self.line_from_transmission(None)
    }

    pub fn air_line(&mut self) -> RawLine {
        let ones = vec![1.0f32; self.channels()];
        self.line_from_transmission(Some((&ones, &ones)))
    }

    /// Noise-free transmissions `(T_low, T_high)` of line `l` of a bag.
    pub fn transmissions(
        &mut self,
        bag: &Bag,
        boxes: &[(f64, f64, f64, f64)],
        l: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let n = self.channels();
        let x = (l as f64 + 0.5) * self.profile.line_pitch_mm();
        let active: Vec<usize> =
            (0..bag.objects.len()).filter(|&i| boxes[i].0 <= x && x <= boxes[i].1).collect();
        let mat_idx: Vec<usize> =
            active.iter().map(|&i| self.material_index(bag.objects[i].material)).collect();
        let (mut tl, mut th) = (vec![1.0f32; n], vec![1.0f32; n]);
        let mut last: Option<(Vec<f32>, (f32, f32))> = None;
        for c in 0..n {
            let y = (c as f64 + 0.5) * self.profile.pixel_pitch_mm;
            self.areal.fill(0.0);
            let mut any = false;
            for (k, &i) in active.iter().enumerate() {
                if boxes[i].2 <= y && y <= boxes[i].3 {
                    let a = bag.objects[i].areal_at(x, y);
                    if a > 0.0 {
                        self.areal[mat_idx[k]] += a as f32;
                        any = true;
                    }
                }
            }
            if !any {
                continue;
            }
            // Neighbouring pixels of slabs repeat the same areal vector: reuse the result.
            if let Some((prev, t)) = &last
                && prev == &self.areal
            {
                (tl[c], th[c]) = *t;
                continue;
            }
            let t = self.fast.transmission(&self.areal, &mut self.scratch);
            (tl[c], th[c]) = t;
            last = Some((self.areal.clone(), t));
        }
        (tl, th)
    }

    /// Scan a whole bag: its raw lines, in order.
    pub fn scan_bag(&mut self, bag: &Bag) -> RawFrame {
        let lines: Vec<RawLine> = self.bag_lines(bag).collect();
        RawFrame::from_lines(&lines, self.channels())
    }

    /// The bag's raw lines, one at a time (for a live stream).
    pub fn bag_lines<'a>(&'a mut self, bag: &'a Bag) -> impl Iterator<Item = RawLine> + 'a {
        let boxes: Vec<_> = bag.objects.iter().map(Object::bbox).collect();
        let n = bag.lines(&self.profile);
        (0..n).map(move |l| {
            let (tl, th) = self.transmissions(bag, &boxes, l);
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
