//! The item library of the synthetic scanner: containers, everyday contents, quarantine items and
//! threats, each built from the parts a real one has (a knife's blade, bolster, handle scales and
//! rivets; a laptop's cells, board, chips and hinge), each part its own material.
//!
//! An item is drawn in its own frame (`u` along its length, `v` across, millimetres, centred on
//! the origin) and placed by a [`Pose`]; [`Kind::size`] says how much room it needs.
//!
//! Must not import: egui, wgpu, tokio.

use std::f64::consts::{FRAC_PI_2, PI, TAU};

use super::super::rng::Rng;
use super::Outline::{Ellipse, Polygon, Rect};
use super::Profile::{Annulus, Cylinder, Dome, Shell, Slab, Tube};
use super::{Category, Object, Outline, Profile};

/// Every kind of item the generator knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Suitcase,
    SoftBag,
    ParcelBox,
    FoldedClothes,
    Shoes,
    Laptop,
    Phone,
    Charger,
    PowerBank,
    Cable,
    Bottle,
    GlassBottle,
    Can,
    Book,
    Toiletries,
    Coins,
    Keys,
    Umbrella,
    Pen,
    TrouserBelt,
    Glasses,
    Watch,
    Fruit,
    Meat,
    Sausages,
    SoilBag,
    Seeds,
    PlantCuttings,
    PottedPlant,
    AnimalInBox,
    Knife,
    Gun,
    Scissors,
    Lighter,
    Batteries,
    Powder,
    BulkLiquid,
    LeadBlock,
    BeltSeam,
}

impl Kind {
    /// What goes inside a bag (containers and the belt excepted).
    pub const CONTENTS: [Kind; 35] = [
        Kind::FoldedClothes,
        Kind::Shoes,
        Kind::Laptop,
        Kind::Phone,
        Kind::Charger,
        Kind::PowerBank,
        Kind::Cable,
        Kind::Bottle,
        Kind::GlassBottle,
        Kind::Can,
        Kind::Book,
        Kind::Toiletries,
        Kind::Coins,
        Kind::Keys,
        Kind::Umbrella,
        Kind::Pen,
        Kind::TrouserBelt,
        Kind::Glasses,
        Kind::Watch,
        Kind::Fruit,
        Kind::Meat,
        Kind::Sausages,
        Kind::SoilBag,
        Kind::Seeds,
        Kind::PlantCuttings,
        Kind::PottedPlant,
        Kind::AnimalInBox,
        Kind::Knife,
        Kind::Gun,
        Kind::Scissors,
        Kind::Lighter,
        Kind::Batteries,
        Kind::Powder,
        Kind::BulkLiquid,
        Kind::LeadBlock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Suitcase => "suitcase",
            Kind::SoftBag => "soft_bag",
            Kind::ParcelBox => "parcel_box",
            Kind::FoldedClothes => "folded_clothes",
            Kind::Shoes => "shoes",
            Kind::Laptop => "laptop",
            Kind::Phone => "phone",
            Kind::Charger => "charger",
            Kind::PowerBank => "power_bank",
            Kind::Cable => "cable",
            Kind::Bottle => "bottle",
            Kind::GlassBottle => "glass_bottle",
            Kind::Can => "can",
            Kind::Book => "book",
            Kind::Toiletries => "toiletries",
            Kind::Coins => "coins",
            Kind::Keys => "keys",
            Kind::Umbrella => "umbrella",
            Kind::Pen => "pen",
            Kind::TrouserBelt => "trouser_belt",
            Kind::Glasses => "glasses",
            Kind::Watch => "watch",
            Kind::Fruit => "fruit",
            Kind::Meat => "meat",
            Kind::Sausages => "sausages",
            Kind::SoilBag => "soil_bag",
            Kind::Seeds => "seeds",
            Kind::PlantCuttings => "plant_cuttings",
            Kind::PottedPlant => "potted_plant",
            Kind::AnimalInBox => "animal_in_box",
            Kind::Knife => "knife",
            Kind::Gun => "gun",
            Kind::Scissors => "scissors",
            Kind::Lighter => "lighter",
            Kind::Batteries => "batteries",
            Kind::Powder => "powder",
            Kind::BulkLiquid => "bulk_liquid",
            Kind::LeadBlock => "lead_block",
            Kind::BeltSeam => "belt_seam",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Suitcase, Kind::SoftBag, Kind::ParcelBox, Kind::BeltSeam]
            .into_iter()
            .chain(Kind::CONTENTS)
            .find(|k| k.name() == s)
    }

    pub fn category(self) -> Category {
        match self {
            Kind::Suitcase | Kind::SoftBag | Kind::ParcelBox | Kind::BeltSeam => Category::Container,
            Kind::FoldedClothes => Category::Clothing,
            Kind::Shoes => Category::Shoe,
            Kind::Laptop => Category::Laptop,
            Kind::Phone | Kind::Charger | Kind::PowerBank => Category::Electronics,
            Kind::Cable => Category::Cable,
            Kind::Bottle | Kind::GlassBottle | Kind::Can => Category::WaterBottle,
            Kind::Book => Category::Paper,
            Kind::Toiletries => Category::Toiletry,
            Kind::Coins => Category::Coin,
            Kind::Keys | Kind::Umbrella => Category::Key,
            Kind::Pen | Kind::Glasses => Category::Paper,
            Kind::TrouserBelt => Category::Clothing,
            Kind::Watch => Category::Electronics,
            Kind::Fruit => Category::Fruit,
            Kind::Meat | Kind::Sausages => Category::Meat,
            Kind::SoilBag | Kind::PottedPlant => Category::Soil,
            Kind::Seeds | Kind::PlantCuttings => Category::Plant,
            Kind::AnimalInBox => Category::Animal,
            Kind::Knife => Category::Blade,
            Kind::Gun => Category::Gun,
            Kind::Scissors => Category::Scissors,
            Kind::Lighter => Category::Lighter,
            Kind::Batteries => Category::Battery,
            Kind::Powder => Category::Powder,
            Kind::BulkLiquid => Category::Liquid,
            Kind::LeadBlock => Category::DenseBlock,
        }
    }

    /// Half length and half width (mm) of one drawn at random.
    pub fn size(self, rng: &mut Rng) -> (f64, f64) {
        let mut r = |lo: f64, hi: f64| rng.range(lo, hi);
        match self {
            Kind::Suitcase => (r(260.0, 380.0), r(170.0, 230.0)),
            Kind::SoftBag => (r(210.0, 325.0), r(140.0, 200.0)),
            Kind::ParcelBox => (r(125.0, 300.0), r(100.0, 210.0)),
            Kind::FoldedClothes => (r(110.0, 170.0), r(80.0, 130.0)),
            Kind::Shoes => (r(125.0, 145.0), r(95.0, 110.0)),
            Kind::Laptop => (r(150.0, 175.0), r(100.0, 120.0)),
            Kind::Phone => (r(68.0, 80.0), r(33.0, 38.0)),
            Kind::Charger => (60.0, 32.0),
            Kind::PowerBank => (r(65.0, 80.0), r(32.0, 40.0)),
            Kind::Cable => (r(70.0, 120.0), r(40.0, 70.0)),
            Kind::Bottle => (r(100.0, 130.0), r(30.0, 40.0)),
            Kind::GlassBottle => (r(110.0, 150.0), r(35.0, 42.0)),
            Kind::Can => (r(55.0, 80.0), 33.0),
            Kind::Book => (r(95.0, 125.0), r(65.0, 85.0)),
            Kind::Toiletries => (r(90.0, 110.0), r(60.0, 75.0)),
            Kind::Coins => (35.0, 35.0),
            Kind::Keys => (45.0, 30.0),
            Kind::Umbrella => (r(130.0, 160.0), 25.0),
            Kind::Pen => (r(65.0, 75.0), 6.0),
            Kind::TrouserBelt => (r(90.0, 130.0), r(40.0, 60.0)),
            Kind::Glasses => (70.0, 24.0),
            Kind::Watch => (22.0, 22.0),
            Kind::Fruit => (r(70.0, 100.0), r(60.0, 80.0)),
            Kind::Meat => (r(70.0, 100.0), r(45.0, 65.0)),
            Kind::Sausages => (r(90.0, 120.0), r(45.0, 60.0)),
            Kind::SoilBag => (r(60.0, 90.0), r(45.0, 65.0)),
            Kind::Seeds => (r(45.0, 60.0), r(35.0, 45.0)),
            Kind::PlantCuttings => (r(110.0, 150.0), r(30.0, 45.0)),
            Kind::PottedPlant => (80.0, 80.0),
            Kind::AnimalInBox => (r(90.0, 110.0), r(60.0, 75.0)),
            Kind::Knife => (r(105.0, 135.0), 16.0),
            Kind::Gun => (r(85.0, 100.0), r(60.0, 70.0)),
            Kind::Scissors => (r(80.0, 95.0), 35.0),
            Kind::Lighter => (40.0, 13.0),
            Kind::Batteries => (r(30.0, 45.0), r(25.0, 35.0)),
            Kind::Powder => (r(60.0, 90.0), r(45.0, 65.0)),
            Kind::BulkLiquid => (r(110.0, 140.0), r(75.0, 95.0)),
            Kind::LeadBlock => (r(25.0, 45.0), r(20.0, 35.0)),
            Kind::BeltSeam => (6.0, 400.0),
        }
    }

    /// Draw this item, `(hw, hh)` in size, at `pose`, appending its parts to `out`.
    pub fn build(self, out: &mut Vec<Object>, pose: Pose, (hw, hh): (f64, f64), rng: &mut Rng) {
        let mut it = Parts { item: out.len(), out, pose, kind: self.name(), category: self.category() };
        match self {
            Kind::Suitcase => suitcase(&mut it, hw, hh),
            Kind::SoftBag => soft_bag(&mut it, hw, hh, rng),
            Kind::ParcelBox => parcel_box(&mut it, hw, hh, rng),
            Kind::FoldedClothes => clothes(&mut it, hw, hh, rng),
            Kind::Shoes => shoes(&mut it, hw, hh),
            Kind::Laptop => laptop(&mut it, hw, hh),
            Kind::Phone => phone(&mut it, hw, hh),
            Kind::Charger => charger(&mut it),
            Kind::PowerBank => power_bank(&mut it, hw, hh, rng),
            Kind::Cable => cable(&mut it, hw, hh, rng),
            Kind::Bottle => {
                let level = rng.range(0.3, 0.95);
                bottle(&mut it, hw, hh, level, false)
            }
            Kind::GlassBottle => {
                let level = rng.range(0.5, 0.9);
                bottle(&mut it, hw, hh, level, true)
            }
            Kind::Can => can(&mut it, hw, hh),
            Kind::Book => book(&mut it, hw, hh),
            Kind::Toiletries => toiletries(&mut it, hw, hh),
            Kind::Coins => coins(&mut it, rng),
            Kind::Keys => keys(&mut it, rng),
            Kind::Umbrella => umbrella(&mut it, hw),
            Kind::Pen => pen(&mut it, hw),
            Kind::TrouserBelt => trouser_belt(&mut it, hw, hh),
            Kind::Glasses => glasses(&mut it),
            Kind::Watch => watch(&mut it),
            Kind::Fruit => fruit(&mut it, hw, hh, rng),
            Kind::Meat => meat(&mut it, hw, hh, rng),
            Kind::Sausages => sausages(&mut it, hw, hh, rng),
            Kind::SoilBag => soil_bag(&mut it, hw, hh, rng),
            Kind::Seeds => seeds(&mut it, hw, hh, rng),
            Kind::PlantCuttings => cuttings(&mut it, hw, hh, rng),
            Kind::PottedPlant => potted_plant(&mut it, rng),
            Kind::AnimalInBox => animal(&mut it, hw, hh),
            Kind::Knife => knife(&mut it, hw),
            Kind::Gun => gun(&mut it, hw, hh),
            Kind::Scissors => scissors(&mut it, hw),
            Kind::Lighter => lighter(&mut it),
            Kind::Batteries => batteries(&mut it, hw, hh, rng),
            Kind::Powder => powder(&mut it, hw, hh, rng),
            Kind::BulkLiquid => {
                let level = rng.range(0.4, 0.95);
                bulk_liquid(&mut it, hw, hh, level)
            }
            Kind::LeadBlock => {
                let t = rng.range(0.4, 1.5);
                it.add("block", LEAD, Rect, Slab(t), (0.0, 0.0, hw, hh, 0.0));
            }
            Kind::BeltSeam => {
                it.add("lacing", STEEL, Rect, teeth(0.25, 6.0, 0.5), (0.0, 0.0, hh, 5.0, FRAC_PI_2))
            }
        }
    }
}

/// A material of the physics tables and the density (g/cm^3) a part has of it.
type Mat = (&'static str, f64);

/// Mild steel.
const STEEL: Mat = ("iron", 7.87);
/// Aluminium.
const AL: Mat = ("aluminium", 2.7);
/// Copper.
const CU: Mat = ("copper", 8.96);
/// Brass (as copper).
const BRASS: Mat = ("copper", 8.5);
/// Zinc die-cast.
const ZINC: Mat = ("zinc", 7.1);
/// Polyethylene film and bottles.
const PE: Mat = ("polyethylene", 0.95);
/// Moulded plastic (as polyethylene).
const PLASTIC: Mat = ("polyethylene", 1.1);
/// Glass.
const GLASS: Mat = ("glass", 2.5);
/// Circuit board laminate (as glass).
const FR4: Mat = ("glass", 1.9);
/// Water.
const WATER: Mat = ("water", 1.0);
/// Flesh.
const MEAT: Mat = ("meat", 1.05);
/// Corrugated carton (as cellulose).
const CARTON: Mat = ("cellulose", 0.25);
/// Lead.
const LEAD: Mat = ("lead", 11.35);
/// Nylon.
const NYLON: Mat = ("nylon6", 1.14);

/// Where an item lies: its centre (mm) and rotation.
#[derive(Clone, Copy, Debug)]
pub struct Pose {
    pub cx: f64,
    pub cy: f64,
    pub angle: f64,
}

/// Appends an item's parts, each placed in the item's frame.
struct Parts<'a> {
    out: &'a mut Vec<Object>,
    pose: Pose,
    item: usize,
    kind: &'static str,
    category: Category,
}

impl Parts<'_> {
    /// One part: `place` is `(u, v, half_w, half_h, angle)` in the item's frame.
    fn add(
        &mut self,
        part: &'static str,
        (material, density): Mat,
        outline: Outline,
        profile: Profile,
        (u, v, hw, hh, a): (f64, f64, f64, f64, f64),
    ) {
        let (s, c) = self.pose.angle.sin_cos();
        let place = (self.pose.cx + u * c - v * s, self.pose.cy + u * s + v * c, hw, hh, self.pose.angle + a);
        let mut o = Object::placed(self.category, material, density, outline, profile, place, self.item);
        o.kind = self.kind;
        o.part = part;
        self.out.push(o);
    }

    /// The same part with another category (a laptop's battery cells are batteries).
    fn with(&mut self, category: Category) -> &mut Self {
        self.category = category;
        self
    }
}

fn teeth(t_cm: f64, period_mm: f64, duty: f64) -> Profile {
    Profile::Teeth { t_cm, period_mm, duty }
}

fn fabric(t_cm: f64, grain_mm: f64, amount: f64, seed: u32) -> Profile {
    Profile::Fabric { t_cm, grain_mm, amount, seed }
}

fn rect(u: f64, v: f64, hw: f64, hh: f64) -> (f64, f64, f64, f64, f64) {
    (u, v, hw, hh, 0.0)
}

fn suitcase(it: &mut Parts, hw: f64, hh: f64) {
    it.add(
        "shell",
        ("pmma", 1.2),
        Rect,
        Shell { wall_cm: 0.3, side_cm: 22.0, rim_mm: 4.0 },
        rect(0.0, 0.0, hw, hh),
    );
    // The aluminium frame along both long rims and the ends, the zip just inside it.
    for side in [-1.0, 1.0] {
        it.add(
            "frame",
            AL,
            Rect,
            Tube { d_cm: 1.2, inner: 0.8 },
            rect(0.0, side * (hh - 7.0), hw - 8.0, 4.0),
        );
        it.add(
            "frame",
            AL,
            Rect,
            Tube { d_cm: 1.2, inner: 0.8 },
            (side * (hw - 7.0), 0.0, hh - 8.0, 4.0, FRAC_PI_2),
        );
        it.add(
            "zip teeth",
            ZINC,
            Rect,
            teeth(0.35, 2.2, 0.55),
            rect(0.0, side * (hh - 14.0), hw - 20.0, 2.2),
        );
        it.add(
            "zip teeth",
            ZINC,
            Rect,
            teeth(0.35, 2.2, 0.55),
            (side * (hw - 14.0), 0.0, hh - 20.0, 2.2, FRAC_PI_2),
        );
    }
    it.add("zip pull", ZINC, Rect, Slab(0.3), rect(hw * 0.3, hh - 14.0, 14.0, 5.0));
    // Telescopic handle: two tubes in channels along the length, the grip across the end.
    for side in [-1.0, 1.0] {
        let v = side * hh * 0.3;
        it.add(
            "handle channel",
            PLASTIC,
            Rect,
            Shell { wall_cm: 0.2, side_cm: 2.0, rim_mm: 2.0 },
            rect(-hw * 0.05, v, hw * 0.85, 14.0),
        );
        it.add(
            "handle tube",
            AL,
            Rect,
            Tube { d_cm: 2.2, inner: 0.85 },
            (-hw * 0.1, v, 9.0, hw * 0.75, FRAC_PI_2),
        );
        it.add(
            "handle tube",
            AL,
            Rect,
            Tube { d_cm: 1.8, inner: 0.85 },
            (-hw * 0.2, v, 7.0, hw * 0.6, FRAC_PI_2),
        );
    }
    it.add("handle grip", PLASTIC, Rect, Cylinder(3.0), (-hw + 22.0, 0.0, 12.0, hh * 0.4, 0.0));
    // Wheels with their axles and housings at the handle's end, feet at the other.
    for side in [-1.0, 1.0] {
        let (u, v) = (-hw + 30.0, side * (hh - 30.0));
        it.add("wheel housing", PLASTIC, Rect, Dome(5.0), rect(u, v, 26.0, 26.0));
        it.add("wheel", ("polyethylene", 1.2), Ellipse, Cylinder(5.0), rect(u, v, 25.0, 10.0));
        it.add("axle", STEEL, Rect, Cylinder(0.8), (u, v, 26.0, 4.0, FRAC_PI_2));
        it.add("foot", PLASTIC, Rect, Slab(2.0), rect(hw - 22.0, side * (hh - 24.0), 10.0, 18.0));
        it.add("rivet", STEEL, Ellipse, Slab(0.5), rect(u + 18.0, v, 2.5, 2.5));
    }
    it.add("carry handle", PLASTIC, Rect, Cylinder(2.5), rect(0.0, -hh + 10.0, 60.0, 10.0));
}

fn soft_bag(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    it.add(
        "body",
        ("nylon6", 0.6),
        Rect,
        Shell { wall_cm: 0.15, side_cm: 8.0, rim_mm: 6.0 },
        rect(0.0, 0.0, hw, hh),
    );
    it.add("base board", PE, Rect, Slab(0.3), rect(0.0, 0.0, hw - 10.0, hh - 10.0));
    it.add("zip teeth", NYLON, Rect, teeth(0.4, 1.6, 0.6), rect(0.0, -hh + 12.0, hw - 20.0, 2.5));
    let pull = rng.range(-0.6, 0.6) * hw;
    it.add("zip pull", ZINC, Rect, Slab(0.25), rect(pull, -hh + 12.0, 12.0, 5.0));
    for side in [-1.0, 1.0] {
        it.add(
            "strap buckle",
            STEEL,
            Ellipse,
            Annulus { t_cm: 0.4, inner: 0.7 },
            rect(side * (hw - 18.0), hh - 14.0, 12.0, 8.0),
        );
        it.add(
            "strap",
            ("nylon6", 1.0),
            Rect,
            fabric(0.3, 3.0, 0.3, 7),
            rect(side * (hw - 18.0), hh * 0.5, 12.0, hh * 0.45),
        );
    }
}

fn parcel_box(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    it.add(
        "carton",
        CARTON,
        Rect,
        Shell { wall_cm: 0.6, side_cm: 30.0, rim_mm: 5.0 },
        rect(0.0, 0.0, hw, hh),
    );
    it.add("flaps", CARTON, Rect, Slab(0.6), rect(0.0, 0.0, hw, hh * 0.5));
    it.add("tape", PLASTIC, Rect, Slab(0.06), rect(0.0, 0.0, hw, 24.0));
    if rng.chance(0.5) {
        for k in 0..4 {
            let u = -hw * 0.8 + k as f64 * hw * 0.53;
            it.add("staple", STEEL, Rect, Slab(0.08), rect(u, 0.0, 6.0, 0.6));
        }
    }
}

fn clothes(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    let (mat, dens) = if rng.chance(0.6) { ("cellulose", 0.22) } else { ("nylon6", 0.18) };
    let seed = rng.int(0, 1 << 30) as u32;
    // Folded: the whole garment, then the folds laid over it (each a layer more).
    it.add(
        "garment",
        (mat, dens),
        Rect,
        fabric(rng.range(1.5, 3.0), 9.0, 0.35, seed),
        rect(0.0, 0.0, hw, hh),
    );
    let folds = rng.int(1, 3);
    for k in 0..folds {
        let f = rng.range(0.45, 0.8);
        let side = if k % 2 == 0 { 1.0 } else { -1.0 };
        it.add(
            "fold",
            (mat, dens),
            Rect,
            fabric(rng.range(1.0, 2.5), 7.0, 0.4, seed + 1 + k as u32),
            rect(side * hw * (1.0 - f), 0.0, hw * f, hh * rng.range(0.85, 1.0)),
        );
    }
    it.add("seam", (mat, 0.6), Rect, Slab(0.4), rect(0.0, hh - 3.0, hw, 1.5));
    it.add("seam", (mat, 0.6), Rect, Slab(0.4), rect(0.0, -hh + 3.0, hw, 1.5));
    match rng.int(0, 2) {
        0 => {
            for k in 0..5 {
                let u = -hw * 0.7 + k as f64 * hw * 0.35;
                it.add(
                    "button",
                    ("polyethylene", 1.2),
                    Ellipse,
                    Annulus { t_cm: 0.3, inner: 0.25 },
                    rect(u, hh * 0.2, 6.0, 6.0),
                );
            }
        }
        1 => {
            it.add("zip teeth", ZINC, Rect, teeth(0.25, 1.8, 0.55), rect(0.0, 0.0, hw * 0.8, 1.8));
            it.add("zip pull", ZINC, Rect, Slab(0.2), rect(hw * 0.8, 0.0, 9.0, 4.0));
        }
        _ => {
            it.add("snap", STEEL, Ellipse, Annulus { t_cm: 0.25, inner: 0.4 }, rect(hw * 0.5, 0.0, 6.5, 6.5));
        }
    }
}

fn shoes(it: &mut Parts, hw: f64, hh: f64) {
    // A shoe's sole seen from above: toe wide, waist narrow, heel round.
    let sole = vec![
        (-1.0, -0.55),
        (-0.55, -0.75),
        (0.1, -0.85),
        (0.6, -1.0),
        (0.9, -0.8),
        (1.0, -0.2),
        (0.95, 0.5),
        (0.7, 1.0),
        (0.2, 0.9),
        (-0.3, 0.55),
        (-0.75, 0.7),
        (-1.0, 0.45),
    ];
    let w = hh * 0.45;
    for side in [-1.0, 1.0] {
        let v = side * hh * 0.5;
        let pts: Vec<(f64, f64)> = sole.iter().map(|&(a, b)| (a * hw, b * w)).collect();
        it.add("sole", PLASTIC, Polygon(pts.clone()), Slab(1.6), (0.0, v, hw, w, 0.0));
        it.add("upper", ("nylon6", 0.5), Polygon(pts), Dome(7.0), (0.0, v, hw, w, 0.0));
        it.add("heel", PLASTIC, Ellipse, Slab(2.5), rect(-hw * 0.78, v, hw * 0.22, w * 0.55));
        it.add("shank", STEEL, Rect, Slab(0.12), rect(-hw * 0.3, v, hw * 0.3, 5.0));
        for k in 0..5 {
            let u = hw * (0.05 + 0.1 * k as f64);
            for s2 in [-1.0, 1.0] {
                it.add(
                    "eyelet",
                    AL,
                    Ellipse,
                    Annulus { t_cm: 0.35, inner: 0.5 },
                    rect(u, v + s2 * w * 0.25, 2.8, 2.8),
                );
            }
        }
        for k in 0..6 {
            let a = k as f64 / 6.0 * TAU;
            let (u, dv) = (-hw * 0.78 + a.cos() * hw * 0.14, a.sin() * w * 0.35);
            it.add("nail", STEEL, Ellipse, Slab(1.2), rect(u, v + dv, 0.9, 0.9));
        }
    }
}

fn laptop(it: &mut Parts, hw: f64, hh: f64) {
    it.add("case", AL, Rect, Slab(0.25), rect(0.0, 0.0, hw, hh));
    it.add("screen glass", GLASS, Rect, Slab(0.1), rect(0.0, 0.0, hw - 8.0, hh - 8.0));
    it.add("keyboard", PLASTIC, Rect, teeth(0.3, 19.0, 0.85), rect(0.0, hh * 0.25, hw * 0.85, hh * 0.4));
    it.with(Category::CircuitBoard);
    let (bu, bv) = (hw * 0.1, -hh * 0.45);
    it.add("board", FR4, Rect, Slab(0.16), rect(bu, bv, hw * 0.6, hh * 0.3));
    it.add("board copper", CU, Rect, Slab(0.012), rect(bu, bv, hw * 0.55, hh * 0.25));
    for (du, dv, s) in [(-0.35, 0.0, 14.0), (0.0, 0.1, 18.0), (0.3, -0.05, 10.0), (0.45, 0.12, 7.0)] {
        let (u, v) = (bu + du * hw, bv + dv * hh);
        it.add("chip", ("glass", 2.3), Rect, Slab(0.15), rect(u, v, s, s));
        it.add("chip lead frame", CU, Rect, teeth(0.02, 1.0, 0.5), rect(u, v, s + 1.5, s + 1.5));
    }
    it.add("heat pipe", CU, Rect, Tube { d_cm: 0.6, inner: 0.7 }, rect(bu - hw * 0.1, bv, hw * 0.45, 3.0));
    it.add("fan", AL, Ellipse, Annulus { t_cm: 0.6, inner: 0.3 }, rect(bu + hw * 0.45, bv, 28.0, 28.0));
    it.with(Category::Battery);
    for k in 0..3 {
        let u = -hw * 0.55 + k as f64 * hw * 0.55;
        it.add("cell can", AL, Rect, Slab(0.08), rect(u, hh * 0.55, hw * 0.24, 15.0));
        it.add("cell electrodes", CU, Rect, Slab(0.05), rect(u, hh * 0.55, hw * 0.22, 13.0));
        it.add("cell cathode", ("iron", 4.8), Rect, Slab(0.09), rect(u, hh * 0.55, hw * 0.22, 13.0));
        it.add("cell tab", AL, Rect, Slab(0.05), rect(u + hw * 0.24, hh * 0.55, 6.0, 4.0));
    }
    it.with(Category::Hinge);
    for side in [-1.0, 1.0] {
        it.add("hinge", STEEL, Rect, Cylinder(0.7), rect(side * hw * 0.7, -hh + 6.0, 18.0, 5.0));
        it.add("speaker magnet", ("iron", 7.5), Ellipse, Slab(0.4), rect(side * hw * 0.85, 0.0, 9.0, 6.0));
    }
    it.with(Category::Laptop);
    for (su, sv) in [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0), (0.0, 1.0), (0.0, -1.0)] {
        it.add("screw", STEEL, Ellipse, Slab(0.4), rect(su * (hw - 6.0), sv * (hh - 6.0), 1.6, 1.6));
    }
}

fn phone(it: &mut Parts, hw: f64, hh: f64) {
    it.add("frame", AL, Rect, Shell { wall_cm: 0.05, side_cm: 0.8, rim_mm: 2.0 }, rect(0.0, 0.0, hw, hh));
    it.add("glass", GLASS, Rect, Slab(0.14), rect(0.0, 0.0, hw - 1.0, hh - 1.0));
    it.with(Category::Battery);
    it.add("battery", CU, Rect, Slab(0.05), rect(-hw * 0.15, 0.0, hw * 0.55, hh * 0.75));
    it.add("battery cathode", ("iron", 4.8), Rect, Slab(0.08), rect(-hw * 0.15, 0.0, hw * 0.55, hh * 0.75));
    it.with(Category::CircuitBoard);
    it.add("board", FR4, Rect, Slab(0.1), rect(hw * 0.6, 0.0, hw * 0.3, hh * 0.8));
    it.add("shield can", STEEL, Rect, Slab(0.02), rect(hw * 0.6, 0.0, hw * 0.25, hh * 0.6));
    it.with(Category::Electronics);
    it.add("camera", STEEL, Ellipse, Annulus { t_cm: 0.5, inner: 0.6 }, rect(hw * 0.78, hh * 0.55, 5.0, 5.0));
    it.add("speaker magnet", ("iron", 7.5), Rect, Slab(0.3), rect(-hw * 0.88, 0.0, 4.0, 8.0));
    it.add("vibration motor", STEEL, Rect, Cylinder(0.4), rect(-hw * 0.85, hh * 0.6, 5.0, 2.0));
}

fn charger(it: &mut Parts) {
    it.add(
        "case",
        ("polyethylene", 1.2),
        Rect,
        Shell { wall_cm: 0.2, side_cm: 2.6, rim_mm: 2.0 },
        rect(-28.0, 0.0, 22.0, 22.0),
    );
    it.add("transformer core", ("iron", 7.6), Rect, Slab(1.0), rect(-28.0, 0.0, 8.0, 7.0));
    it.add("winding", CU, Ellipse, Annulus { t_cm: 0.5, inner: 0.5 }, rect(-28.0, 0.0, 9.0, 9.0));
    it.add("board", FR4, Rect, Slab(0.16), rect(-28.0, 0.0, 18.0, 18.0));
    it.add("capacitor", AL, Ellipse, Slab(2.0), rect(-40.0, 10.0, 5.0, 5.0));
    for side in [-1.0, 1.0] {
        it.add("prong", BRASS, Rect, Slab(0.15), rect(-56.0, side * 6.0, 8.0, 1.0));
    }
    it.with(Category::Cable);
    it.add("cable sheath", ("pvc", 1.4), Rect, Cylinder(0.45), rect(20.0, 0.0, 38.0, 2.5));
    it.add("cable core", CU, Rect, Cylinder(0.12), rect(20.0, 0.0, 38.0, 0.8));
}

fn power_bank(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    it.add("case", AL, Rect, Shell { wall_cm: 0.08, side_cm: 2.2, rim_mm: 2.0 }, rect(0.0, 0.0, hw, hh));
    it.with(Category::Battery);
    let cells = if rng.chance(0.5) { 2 } else { 3 };
    let pitch = 2.0 * hh / cells as f64;
    for k in 0..cells {
        let v = -hh + pitch * (k as f64 + 0.5);
        it.add(
            "cell can",
            STEEL,
            Rect,
            Tube { d_cm: 1.8, inner: 0.93 },
            (-hw * 0.1, v, 9.0, 32.5, FRAC_PI_2),
        );
        it.add("cell roll", ("copper", 3.0), Rect, Cylinder(1.6), (-hw * 0.1, v, 8.0, 31.0, FRAC_PI_2));
        it.add("cell pin", AL, Rect, Cylinder(0.3), (-hw * 0.1, v, 1.5, 30.0, FRAC_PI_2));
    }
    it.with(Category::CircuitBoard);
    it.add("board", FR4, Rect, Slab(0.16), rect(hw * 0.75, 0.0, hw * 0.18, hh * 0.8));
    it.add(
        "usb socket",
        STEEL,
        Rect,
        Shell { wall_cm: 0.03, side_cm: 0.6, rim_mm: 0.8 },
        rect(hw * 0.92, 0.0, 4.0, 7.0),
    );
}

fn cable(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    // A coiled cable: a random walk of short straight segments inside the item's room.
    let (mut u, mut v) = (rng.range(-hw, hw) * 0.5, rng.range(-hh, hh) * 0.5);
    let mut heading = rng.range(-PI, PI);
    let n = rng.int(12, 24);
    for _ in 0..n {
        let step = rng.range(14.0, 24.0);
        heading += rng.range(-0.7, 0.7);
        let (nu, nv) = (u + heading.cos() * step, v + heading.sin() * step);
        if nu.abs() > hw - 4.0 || nv.abs() > hh - 4.0 {
            heading += PI * 0.6;
            continue;
        }
        let (mu, mv) = ((u + nu) / 2.0, (v + nv) / 2.0);
        it.add("sheath", ("pvc", 1.4), Rect, Cylinder(0.45), (mu, mv, step / 2.0 + 2.0, 2.3, heading));
        it.add("copper core", CU, Rect, Cylinder(0.14), (mu, mv, step / 2.0 + 2.0, 0.8, heading));
        (u, v) = (nu, nv);
    }
    it.add("plug", ("polyethylene", 1.2), Rect, Slab(1.0), (u, v, 9.0, 6.0, heading));
    it.add("plug contacts", BRASS, Rect, teeth(0.1, 2.0, 0.5), (u, v, 6.0, 3.0, heading));
}

fn bottle(it: &mut Parts, hw: f64, hh: f64, level: f64, glass: bool) {
    let (mat, dens, wall) = if glass { ("glass", 2.5, 0.86) } else { ("pmma", 1.38, 0.97) };
    let body = hw * 0.72;
    let neck = hw - body - 8.0;
    // Body (a thin-walled tube lying along u), shoulder, neck and cap.
    it.add(
        "body",
        (mat, dens),
        Rect,
        Tube { d_cm: hh / 5.0, inner: wall },
        (-hw + body, 0.0, hh, body, FRAC_PI_2),
    );
    it.add(
        "shoulder",
        (mat, dens),
        Ellipse,
        Tube { d_cm: hh / 5.0, inner: wall },
        (hw - neck - 8.0 - 6.0, 0.0, 14.0, hh * 0.9, 0.0),
    );
    it.add(
        "neck",
        (mat, dens),
        Rect,
        Tube { d_cm: hh / 9.0, inner: wall - 0.05 },
        (hw - neck / 2.0 - 8.0, 0.0, hh * 0.45, neck / 2.0, FRAC_PI_2),
    );
    it.add("cap", PE, Rect, Cylinder(hh / 8.0), rect(hw - 5.0, 0.0, 5.0, hh * 0.5));
    // The liquid lies along the bottle to its level (the bottle lies flat on the belt: the level
    // is a depth, so the liquid fills the body's length with a thinner layer).
    let depth = hh / 5.0 * wall * level;
    it.add(
        "liquid",
        WATER,
        Rect,
        Cylinder(depth),
        (-hw + body, 0.0, hh * wall * level.sqrt(), body - 1.0, FRAC_PI_2),
    );
}

fn can(it: &mut Parts, hw: f64, hh: f64) {
    it.add("can", AL, Rect, Tube { d_cm: hh / 5.0, inner: 0.985 }, (0.0, 0.0, hh, hw, FRAC_PI_2));
    for side in [-1.0, 1.0] {
        it.add("rim", AL, Rect, Slab(0.6), rect(side * (hw - 2.0), 0.0, 2.0, hh));
    }
    it.add("drink", WATER, Rect, Cylinder(hh / 5.0 * 0.9), (0.0, 0.0, hh * 0.95, hw - 4.0, FRAC_PI_2));
}

fn book(it: &mut Parts, hw: f64, hh: f64) {
    it.add(
        "pages",
        ("cellulose", 0.9),
        Rect,
        teeth(2.5, 0.4, 0.9),
        (0.0, 0.0, hh - 3.0, hw - 3.0, FRAC_PI_2),
    );
    it.add("cover", ("cellulose", 1.1), Rect, Slab(0.5), rect(0.0, 0.0, hw, hh));
    it.add("spine", ("cellulose", 1.0), Rect, Cylinder(3.0), rect(-hw + 4.0, 0.0, 4.0, hh));
}

fn toiletries(it: &mut Parts, hw: f64, hh: f64) {
    // A wash bag: aerosol can, toothpaste, cream jar, razor.
    it.add("wash bag", ("nylon6", 0.4), Rect, fabric(0.8, 6.0, 0.3, 3), rect(0.0, 0.0, hw, hh));
    let (au, av) = (-hw * 0.35, -hh * 0.35);
    it.add("aerosol can", AL, Rect, Tube { d_cm: 4.6, inner: 0.985 }, (au, av, 23.0, hw * 0.55, FRAC_PI_2));
    it.add("aerosol", ("water", 0.9), Rect, Cylinder(3.0), (au, av, 15.0, hw * 0.5, FRAC_PI_2));
    it.add("valve", STEEL, Ellipse, Slab(0.4), rect(au + hw * 0.55, av, 3.5, 3.5));
    it.add("toothpaste tube", AL, Rect, Slab(0.02), rect(hw * 0.3, hh * 0.5, hw * 0.5, 18.0));
    it.add("toothpaste", ("calcite", 1.4), Rect, Dome(2.2), rect(hw * 0.25, hh * 0.5, hw * 0.42, 15.0));
    it.add("jar", GLASS, Ellipse, Annulus { t_cm: 4.0, inner: 0.85 }, rect(hw * 0.5, -hh * 0.35, 25.0, 25.0));
    it.add("jar base", GLASS, Ellipse, Slab(0.5), rect(hw * 0.5, -hh * 0.35, 22.0, 22.0));
    it.add("cream", ("fat", 0.95), Ellipse, Slab(3.0), rect(hw * 0.5, -hh * 0.35, 21.0, 21.0));
    it.add("razor handle", PLASTIC, Rect, Cylinder(1.2), rect(-hw * 0.2, hh * 0.1, 45.0, 5.0));
    it.add("razor blades", STEEL, Rect, teeth(0.03, 1.3, 0.3), (-hw * 0.2 + 48.0, hh * 0.1, 4.0, 19.0, 0.0));
}

fn coins(it: &mut Parts, rng: &mut Rng) {
    let n = rng.int(3, 10);
    for _ in 0..n {
        let d = rng.range(9.0, 14.0);
        let mat = *rng.pick(&["copper", "zinc", "iron"]);
        let (u, v) = (rng.range(-24.0, 24.0), rng.range(-24.0, 24.0));
        if rng.chance(0.2) {
            it.add("coin", (mat, 8.0), Ellipse, Annulus { t_cm: 0.18, inner: 0.3 }, rect(u, v, d, d));
        } else {
            it.add("coin", (mat, 8.0), Ellipse, Slab(0.18), rect(u, v, d, d));
        }
    }
}

fn keys(it: &mut Parts, rng: &mut Rng) {
    it.add("key ring", STEEL, Ellipse, Annulus { t_cm: 0.3, inner: 0.85 }, rect(-28.0, 0.0, 13.0, 13.0));
    let n = rng.int(1, 3);
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
        let mat = if rng.chance(0.5) { "iron" } else { "copper" };
        let a = -0.5 + k as f64 * 0.5;
        let (u, v) = (-28.0 + a.cos() * 36.0, a.sin() * 36.0);
        it.add("key", (mat, 8.0), Polygon(key), Slab(0.22), (u, v, 30.0, 11.0, a));
    }
}

fn umbrella(it: &mut Parts, hw: f64) {
    it.add("canopy", ("nylon6", 0.3), Rect, fabric(3.0, 8.0, 0.5, 11), rect(0.0, 0.0, hw, 22.0));
    it.add("shaft", STEEL, Rect, Tube { d_cm: 1.0, inner: 0.8 }, (0.0, 0.0, 5.0, hw, FRAC_PI_2));
    for k in 0..6 {
        let v = -15.0 + k as f64 * 6.0;
        it.add("rib", STEEL, Rect, Cylinder(0.2), rect(hw * 0.1, v, hw * 0.8, 0.8));
    }
    it.add("handle", PLASTIC, Rect, Cylinder(2.5), rect(-hw + 20.0, 0.0, 20.0, 12.0));
    it.add("runner", STEEL, Rect, Cylinder(1.4), rect(hw * 0.3, 0.0, 8.0, 7.0));
}

fn fruit(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    // A few apples or oranges in a net: flesh, skin, core and pips each their own.
    let n = rng.int(2, 5);
    let citrus = rng.chance(0.5);
    it.add("net", PE, Rect, teeth(0.05, 6.0, 0.2), rect(0.0, 0.0, hw, hh));
    for k in 0..n {
        let d = rng.range(32.0, 42.0);
        let a = k as f64 / n as f64 * TAU + rng.range(-0.3, 0.3);
        let (u, v) = ((hw - d) * 0.8 * a.cos(), (hh - d) * 0.8 * a.sin());
        it.add("flesh", ("fruit", 1.0), Ellipse, Dome(d / 5.0), (u, v, d, d * 0.94, a));
        it.add(
            "skin",
            ("fruit", 1.1),
            Ellipse,
            Annulus { t_cm: d / 25.0, inner: 0.92 },
            (u, v, d, d * 0.94, a),
        );
        if citrus {
            for s in 0..10 {
                let b = s as f64 / 10.0 * TAU;
                it.add(
                    "segment wall",
                    ("cellulose", 0.5),
                    Rect,
                    Slab(d / 6.0),
                    (u + b.cos() * d * 0.45, v + b.sin() * d * 0.45, d * 0.42, 0.6, a + b),
                );
            }
        } else {
            it.add("core", ("cellulose", 0.6), Ellipse, Dome(d / 12.0), (u, v, d * 0.25, d * 0.2, a));
            for s in 0..5 {
                let b = s as f64 / 5.0 * TAU;
                it.add(
                    "pip",
                    ("sugar", 1.2),
                    Ellipse,
                    Dome(0.4),
                    (u + b.cos() * d * 0.14, v + b.sin() * d * 0.14, 3.5, 2.0, b),
                );
            }
            it.add("stalk", ("cellulose", 0.9), Rect, Cylinder(0.3), (u, v, 1.2, 6.0, a));
        }
    }
}

fn meat(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    it.add("vacuum pack", PE, Rect, Slab(0.04), rect(0.0, 0.0, hw, hh));
    let t = rng.range(3.0, 5.0);
    it.add("muscle", ("meat", 1.06), Ellipse, fabric(t, 12.0, 0.2, 5), rect(0.0, 0.0, hw * 0.92, hh * 0.9));
    it.add("fat cap", ("fat", 0.92), Ellipse, Dome(t * 0.6), rect(0.0, hh * 0.55, hw * 0.85, hh * 0.35));
    if rng.chance(0.8) {
        // A bone with its knuckles and the marrow inside.
        let a = rng.range(-0.3, 0.3);
        it.add(
            "bone shaft",
            ("calcite", 1.9),
            Rect,
            Tube { d_cm: 2.2, inner: 0.6 },
            (0.0, 0.0, 11.0, hw * 0.6, FRAC_PI_2 + a),
        );
        for side in [-1.0, 1.0] {
            let (u, v) = (side * hw * 0.62 * a.cos(), side * hw * 0.62 * a.sin());
            it.add("bone knuckle", ("calcite", 1.6), Ellipse, Dome(3.0), (u, v, 14.0, 18.0, a));
        }
    }
}

fn sausages(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    it.add("pack", PE, Rect, Slab(0.05), rect(0.0, 0.0, hw, hh));
    let n = rng.int(3, 6);
    let pitch = 2.0 * hh / n as f64;
    for k in 0..n {
        let v = -hh + pitch * (k as f64 + 0.5);
        let d = pitch * 0.45;
        it.add("sausage", ("meat", 1.0), Ellipse, Cylinder(d / 5.0), (0.0, v, d, hw * 0.9, FRAC_PI_2));
        it.add(
            "fat",
            ("fat", 0.92),
            Ellipse,
            fabric(d / 10.0, 2.5, 0.8, 9 + k as u32),
            (0.0, v, d * 0.8, hw * 0.85, FRAC_PI_2),
        );
        for side in [-1.0, 1.0] {
            it.add("tie", ("cellulose", 1.0), Rect, Slab(0.2), rect(side * hw * 0.93, v, 2.5, 2.0));
        }
    }
}

fn soil_bag(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    it.add("bag", PE, Rect, Slab(0.05), rect(0.0, 0.0, hw, hh));
    let seed = rng.int(0, 1 << 30) as u32;
    it.add(
        "soil",
        ("soil", 1.3),
        Ellipse,
        fabric(3.5, 2.0, 0.45, seed),
        rect(0.0, 0.0, hw * 0.95, hh * 0.92),
    );
    for _ in 0..rng.int(3, 9) {
        let (u, v) = (rng.range(-0.6, 0.6) * hw, rng.range(-0.6, 0.6) * hh);
        let s = rng.range(2.5, 7.0);
        let a = rng.range(-PI, PI);
        it.add("stone", ("calcite", 2.6), Ellipse, Dome(s / 5.0), (u, v, s, s * 0.7, a));
    }
    for _ in 0..rng.int(2, 6) {
        let (u, v) = (rng.range(-0.6, 0.6) * hw, rng.range(-0.6, 0.6) * hh);
        it.add("root", ("cellulose", 0.7), Rect, Cylinder(0.2), (u, v, 12.0, 0.8, rng.range(-PI, PI)));
    }
}

fn seeds(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    it.add("packet", ("cellulose", 0.8), Rect, Slab(0.04), rect(0.0, 0.0, hw, hh));
    it.with(Category::Plant);
    for _ in 0..rng.int(40, 90) {
        let (u, v) = (rng.range(-0.85, 0.85) * hw, rng.range(-0.85, 0.85) * hh);
        let s = rng.range(1.8, 3.5);
        it.add("seed", ("sugar", 1.3), Ellipse, Dome(s / 7.0), (u, v, s, s * 0.6, rng.range(-PI, PI)));
    }
}

fn cuttings(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    it.add("wrap", PE, Rect, Slab(0.04), rect(0.0, 0.0, hw, hh));
    it.add("wet paper", WATER, Rect, fabric(0.8, 5.0, 0.5, 21), rect(-hw * 0.75, 0.0, hw * 0.25, hh * 0.9));
    for k in 0..rng.int(3, 6) {
        let v = rng.range(-0.6, 0.6) * hh;
        let a = rng.range(-0.12, 0.12);
        it.add("stem", ("cellulose", 0.9), Rect, Cylinder(0.5), (0.0, v, hw * 0.95, 2.5, a));
        for j in 0..4 {
            let u = -hw * 0.3 + j as f64 * hw * 0.35;
            let side = if (j + k) % 2 == 0 { 1.0 } else { -1.0 };
            it.add(
                "leaf",
                ("water", 0.9),
                Ellipse,
                Slab(0.05),
                (u, v + side * 10.0, 16.0, 6.0, a + side * 0.6),
            );
            it.add("node", ("cellulose", 1.0), Ellipse, Dome(0.7), (u, v, 3.0, 3.5, a));
        }
    }
}

fn potted_plant(it: &mut Parts, rng: &mut Rng) {
    it.add(
        "pot",
        ("polyethylene", 1.0),
        Ellipse,
        Annulus { t_cm: 10.0, inner: 0.94 },
        rect(0.0, 0.0, 50.0, 50.0),
    );
    let seed = rng.int(0, 1 << 30) as u32;
    it.with(Category::Soil);
    it.add("soil", ("soil", 1.2), Ellipse, fabric(9.0, 2.5, 0.3, seed), rect(0.0, 0.0, 46.0, 46.0));
    it.with(Category::Plant);
    for k in 0..6 {
        let a = k as f64 * 1.05 + rng.range(-0.2, 0.2);
        let (u, v) = (a.cos() * 52.0, a.sin() * 52.0);
        it.add("leaf", ("water", 0.9), Ellipse, Slab(0.08), (u, v, 28.0, 10.0, a));
        it.add("leaf vein", ("cellulose", 1.0), Rect, Slab(0.1), (u, v, 26.0, 0.6, a));
    }
}

fn animal(it: &mut Parts, hw: f64, hh: f64) {
    // A small live animal (a rabbit-sized mammal) in a carton: body, skull, spine, ribs, legs.
    it.add(
        "carton",
        CARTON,
        Rect,
        Shell { wall_cm: 0.4, side_cm: 12.0, rim_mm: 4.0 },
        rect(0.0, 0.0, hw, hh),
    );
    it.add(
        "bedding",
        ("cellulose", 0.1),
        Rect,
        fabric(2.0, 4.0, 0.7, 33),
        rect(0.0, 0.0, hw - 6.0, hh - 6.0),
    );
    it.with(Category::Animal);
    let (bw, bh) = (hw * 0.6, hh * 0.55);
    it.add("body", MEAT, Ellipse, Dome(7.0), rect(-hw * 0.05, 0.0, bw, bh));
    it.add(
        "fur",
        ("cellulose", 0.08),
        Ellipse,
        fabric(2.0, 1.5, 0.6, 34),
        rect(-hw * 0.05, 0.0, bw + 5.0, bh + 5.0),
    );
    it.add("head", MEAT, Ellipse, Dome(4.5), rect(bw * 0.95, 0.0, bw * 0.35, bh * 0.55));
    it.add(
        "skull",
        ("calcite", 1.8),
        Ellipse,
        Annulus { t_cm: 4.0, inner: 0.85 },
        rect(bw * 0.98, 0.0, bw * 0.28, bh * 0.45),
    );
    it.add("jaw", ("calcite", 1.8), Rect, Cylinder(0.4), rect(bw * 1.1, 0.0, bw * 0.18, 2.0));
    let n = 14;
    for k in 0..n {
        let u = -bw * 0.85 + k as f64 * (1.7 * bw / n as f64);
        it.add("vertebra", ("calcite", 1.7), Ellipse, Dome(1.0), rect(u, 0.0, bw * 0.045, 3.0));
        if (3..10).contains(&k) {
            for side in [-1.0, 1.0] {
                it.add(
                    "rib",
                    ("calcite", 1.6),
                    Rect,
                    Cylinder(0.25),
                    (u, side * bh * 0.4, bh * 0.42, 0.8, side * 1.2),
                );
            }
        }
    }
    // Legs folded under the body: the bone in its flesh.
    for (u, side) in [(-bw * 0.6, -1.0), (-bw * 0.6, 1.0), (bw * 0.55, -1.0), (bw * 0.55, 1.0)] {
        let place = (u, side * bh * 0.7, 1.5, bh * 0.32, side * 0.4);
        it.add("leg", MEAT, Ellipse, Dome(1.8), (place.0, place.1, 7.0, bh * 0.38, place.4));
        it.add("leg bone", ("calcite", 1.7), Rect, Cylinder(0.4), place);
    }
}

fn knife(it: &mut Parts, hw: f64) {
    // Blade (spine to edge, tapering to the point), bolster, full tang under handle scales, rivets.
    let bl = hw * 1.2;
    let blade = [(0.0, -11.0), (bl * 0.8, -11.0), (bl, -2.0), (bl * 0.8, 6.0), (bl * 0.3, 10.0), (0.0, 10.5)];
    let pts = blade.iter().map(|&(u, v)| (u - bl / 2.0, v)).collect();
    let bu = -0.2 * hw + bl / 2.0;
    it.add("blade", STEEL, Polygon(pts), Slab(0.16), rect(bu, 0.0, bl / 2.0, 11.0));
    // The ground edge is thin; the spine side keeps the steel's full thickness.
    it.add("spine", STEEL, Rect, Slab(0.1), rect(bu - bl * 0.15, 5.0, bl * 0.33, 4.0));
    let hu = -hw + hw * 0.4;
    it.add("bolster", STEEL, Rect, Cylinder(1.4), rect(hu + hw * 0.42, 0.0, 5.0, 12.0));
    it.add("tang", STEEL, Rect, Slab(0.25), rect(hu, 0.0, hw * 0.38, 8.0));
    it.add("handle scales", ("cellulose", 0.9), Ellipse, Cylinder(2.0), rect(hu, 0.0, hw * 0.42, 13.0));
    for k in 0..3 {
        it.add(
            "rivet",
            BRASS,
            Ellipse,
            Slab(1.0),
            rect(hu - hw * 0.25 + k as f64 * hw * 0.25, 0.0, 2.2, 2.2),
        );
    }
}

fn gun(it: &mut Parts, hw: f64, hh: f64) {
    // A pistol: slide over the barrel, polymer frame and grip, steel magazine with cartridges,
    // trigger, trigger guard, sights.
    let top = hh - 16.0;
    it.add(
        "slide",
        STEEL,
        Rect,
        Shell { wall_cm: 0.25, side_cm: 1.2, rim_mm: 3.0 },
        rect(0.0, top, hw, 14.0),
    );
    it.add(
        "barrel",
        STEEL,
        Rect,
        Tube { d_cm: 1.4, inner: 0.62 },
        (hw * 0.05, top, 7.0, hw * 0.92, FRAC_PI_2),
    );
    it.add("recoil spring", STEEL, Rect, teeth(0.6, 2.5, 0.35), rect(hw * 0.2, top - 12.0, hw * 0.6, 3.5));
    it.add("frame", ("polyethylene", 1.35), Rect, Slab(2.8), rect(hw * 0.1, top - 14.0, hw * 0.85, 9.0));
    let grip = vec![(-12.0, 0.0), (14.0, 0.0), (20.0, -62.0), (-6.0, -66.0)];
    let gu = -hw * 0.6;
    it.add("grip", ("polyethylene", 1.35), Polygon(grip), Slab(3.0), (gu, top - 16.0, 20.0, 66.0, 0.0));
    it.add(
        "magazine",
        STEEL,
        Polygon(vec![(-8.0, 2.0), (8.0, 2.0), (13.0, -60.0), (-3.0, -62.0)]),
        Shell { wall_cm: 0.08, side_cm: 1.0, rim_mm: 1.0 },
        (gu + 2.0, top - 18.0, 13.0, 62.0, 0.0),
    );
    for k in 0..6 {
        let v = top - 24.0 - k as f64 * 8.5;
        let u = gu + 2.0 + k as f64 * 1.4;
        it.add("cartridge case", BRASS, Rect, Tube { d_cm: 0.95, inner: 0.85 }, rect(u, v, 9.0, 4.5));
        it.add("bullet", LEAD, Ellipse, Cylinder(0.9), rect(u + 10.0, v, 5.0, 4.5));
    }
    it.add(
        "trigger guard",
        STEEL,
        Ellipse,
        Annulus { t_cm: 0.6, inner: 0.78 },
        rect(-hw * 0.2, top - 30.0, 16.0, 12.0),
    );
    it.add("trigger", STEEL, Rect, Slab(0.5), (-hw * 0.22, top - 28.0, 2.0, 8.0, 0.2));
    it.add("sight", STEEL, Rect, Slab(0.6), rect(hw - 6.0, top + 14.0, 3.0, 2.0));
    it.add("sight", STEEL, Rect, Slab(0.8), rect(-hw + 6.0, top + 14.0, 4.0, 2.0));
    it.add("hammer", STEEL, Rect, Slab(0.8), rect(-hw - 3.0, top + 2.0, 4.0, 6.0));
}

fn scissors(it: &mut Parts, hw: f64) {
    let a = 0.12;
    for side in [-1.0, 1.0] {
        let blade = [(-0.6, -5.0), (1.0, -1.0), (1.0, 1.0), (-0.6, 5.0)];
        let pts = blade.iter().map(|&(u, v)| (u * hw * 0.55, v)).collect();
        it.add("blade", STEEL, Polygon(pts), Slab(0.25), (hw * 0.12, side * 1.5, hw * 0.55, 5.0, side * a));
        it.add(
            "handle loop",
            ("polyethylene", 1.2),
            Ellipse,
            Annulus { t_cm: 1.0, inner: 0.65 },
            (-hw * 0.62, side * 16.0, hw * 0.3, 15.0, side * 0.3),
        );
        it.add("blade tang", STEEL, Rect, Slab(0.25), (-hw * 0.35, side * 8.0, hw * 0.25, 3.0, side * 0.3));
    }
    it.add("pivot screw", STEEL, Ellipse, Slab(0.9), rect(-hw * 0.1, 0.0, 3.5, 3.5));
}

fn lighter(it: &mut Parts) {
    it.add(
        "body",
        PLASTIC,
        Rect,
        Shell { wall_cm: 0.15, side_cm: 1.2, rim_mm: 1.5 },
        rect(-6.0, 0.0, 34.0, 12.0),
    );
    it.add("butane", ("polyethylene", 0.58), Rect, Slab(0.9), rect(-12.0, 0.0, 27.0, 10.5));
    it.add(
        "hood",
        STEEL,
        Rect,
        Shell { wall_cm: 0.03, side_cm: 0.8, rim_mm: 0.8 },
        rect(32.0, 0.0, 8.0, 12.0),
    );
    it.add("spark wheel", STEEL, Ellipse, teeth(0.6, 0.8, 0.5), rect(30.0, 2.0, 4.0, 4.0));
    it.add("flint spring", STEEL, Rect, teeth(0.1, 1.2, 0.4), rect(20.0, 2.0, 8.0, 1.0));
    it.add("valve", BRASS, Rect, Cylinder(0.3), rect(28.0, -5.0, 3.0, 1.5));
}

fn batteries(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    // A pack of AA cells: steel can, zinc anode paste, MnO2 cathode ring, carbon rod, the cap.
    it.add("blister", ("pvc", 1.38), Rect, Slab(0.03), rect(0.0, 0.0, hw, hh));
    let n = rng.int(2, 6);
    let pitch = 2.0 * hh / n as f64;
    for k in 0..n {
        let v = -hh + pitch * (k as f64 + 0.5);
        let len = hw.min(25.0);
        it.add("can", STEEL, Rect, Tube { d_cm: 1.45, inner: 0.96 }, (0.0, v, 7.0, len, FRAC_PI_2));
        it.add(
            "cathode",
            ("iron", 2.2),
            Rect,
            Tube { d_cm: 1.35, inner: 0.6 },
            (0.0, v, 6.5, len - 2.0, FRAC_PI_2),
        );
        it.add("anode", ("zinc", 2.8), Rect, Cylinder(0.8), (0.0, v, 4.0, len - 3.0, FRAC_PI_2));
        it.add("collector", BRASS, Rect, Cylinder(0.15), (0.0, v, 0.8, len - 4.0, FRAC_PI_2));
        it.add("cap", STEEL, Ellipse, Slab(0.3), rect(len + 1.0, v, 1.5, 2.5));
    }
}

fn powder(it: &mut Parts, hw: f64, hh: f64, rng: &mut Rng) {
    // Compressed powder in wrapped bricks or a taped pillow bag.
    let mat = if rng.chance(0.7) { "sugar" } else { "salt" };
    it.add("wrap", PE, Rect, Slab(0.12), rect(0.0, 0.0, hw, hh));
    it.add(
        "powder",
        (mat, 1.1),
        Rect,
        fabric(3.2, 1.2, 0.12, rng.int(0, 1 << 30) as u32),
        rect(0.0, 0.0, hw - 3.0, hh - 3.0),
    );
    it.add("tape", PLASTIC, Rect, Slab(0.1), rect(0.0, 0.0, 18.0, hh));
    it.add("tape", PLASTIC, Rect, Slab(0.1), rect(0.0, 0.0, hw, 18.0));
}

fn bulk_liquid(it: &mut Parts, hw: f64, hh: f64, level: f64) {
    it.add("jerrycan", PE, Rect, Shell { wall_cm: 0.25, side_cm: 4.0, rim_mm: 4.0 }, rect(0.0, 0.0, hw, hh));
    it.add("liquid", WATER, Rect, Slab(12.0 * level), rect(0.0, 0.0, hw - 5.0, hh - 5.0));
    it.add(
        "handle",
        PE,
        Rect,
        Shell { wall_cm: 0.3, side_cm: 3.0, rim_mm: 3.0 },
        rect(-hw * 0.2, hh - 15.0, hw * 0.4, 10.0),
    );
    it.add("cap", PE, Ellipse, Cylinder(2.0), rect(hw - 18.0, hh - 18.0, 14.0, 14.0));
}

fn pen(it: &mut Parts, hw: f64) {
    it.add(
        "barrel",
        ("polyethylene", 1.05),
        Rect,
        Tube { d_cm: 1.0, inner: 0.75 },
        (0.0, 0.0, 5.0, hw - 4.0, FRAC_PI_2),
    );
    it.add(
        "refill",
        ("polyethylene", 1.0),
        Rect,
        Tube { d_cm: 0.3, inner: 0.6 },
        (2.0, 0.0, 1.5, hw - 10.0, FRAC_PI_2),
    );
    it.add("ink", ("water", 1.1), Rect, Cylinder(0.18), (-hw * 0.2, 0.0, 0.9, hw * 0.6, FRAC_PI_2));
    it.add("spring", STEEL, Rect, teeth(0.35, 1.0, 0.3), rect(hw * 0.55, 0.0, 8.0, 2.0));
    it.add("tip", BRASS, Rect, Cylinder(0.2), rect(hw - 3.0, 0.0, 3.0, 1.0));
    it.add("clip", STEEL, Rect, Slab(0.05), rect(-hw * 0.6, 4.0, hw * 0.35, 1.5));
}

fn trouser_belt(it: &mut Parts, hw: f64, hh: f64) {
    // A leather belt rolled up: a spiral of strap, the steel buckle with its prong outside.
    let turns = 3;
    for k in 0..turns {
        let r = 1.0 - k as f64 * 0.25;
        it.add(
            "strap",
            ("meat", 0.9),
            Ellipse,
            Annulus { t_cm: 3.5, inner: 0.88 },
            rect(0.0, 0.0, hw * 0.7 * r, hh * r),
        );
    }
    it.add(
        "buckle",
        STEEL,
        Rect,
        Shell { wall_cm: 0.0, side_cm: 0.4, rim_mm: 4.0 },
        rect(hw * 0.82, 0.0, 18.0, 22.0),
    );
    it.add("prong", STEEL, Rect, Cylinder(0.35), rect(hw * 0.8, 0.0, 16.0, 1.5));
    for k in 0..5 {
        it.add(
            "strap hole",
            STEEL,
            Ellipse,
            Annulus { t_cm: 0.05, inner: 0.7 },
            rect(-hw * 0.4 + k as f64 * 9.0, -hh * 0.93, 2.0, 2.0),
        );
    }
}

fn glasses(it: &mut Parts) {
    for side in [-1.0, 1.0] {
        it.add("lens", ("pmma", 1.18), Ellipse, Dome(0.35), rect(side * 34.0, 0.0, 26.0, 19.0));
        it.add(
            "rim",
            ("iron", 4.5),
            Ellipse,
            Annulus { t_cm: 0.25, inner: 0.9 },
            rect(side * 34.0, 0.0, 28.0, 21.0),
        );
        it.add("hinge", STEEL, Rect, Slab(0.3), rect(side * 64.0, 8.0, 4.0, 3.0));
        it.add("temple", PLASTIC, Rect, Cylinder(0.35), (side * 38.0, 15.0, 30.0, 1.8, side * 0.08));
        it.add("nose pad", PLASTIC, Ellipse, Slab(0.3), rect(side * 9.0, -8.0, 3.0, 4.5));
    }
    it.add("bridge", ("iron", 4.5), Rect, Cylinder(0.25), rect(0.0, 6.0, 8.0, 1.2));
}

fn watch(it: &mut Parts) {
    it.add("case", ("iron", 7.9), Ellipse, Annulus { t_cm: 1.0, inner: 0.82 }, rect(0.0, 0.0, 19.0, 19.0));
    it.add("back", ("iron", 7.9), Ellipse, Slab(0.1), rect(0.0, 0.0, 16.0, 16.0));
    it.add("movement", BRASS, Ellipse, teeth(0.15, 2.0, 0.5), rect(0.0, 0.0, 13.0, 13.0));
    it.add("battery", STEEL, Ellipse, Slab(0.2), rect(3.0, 3.0, 5.5, 5.5));
    it.add("crystal", GLASS, Ellipse, Slab(0.2), rect(0.0, 0.0, 15.5, 15.5));
    it.add("crown", STEEL, Rect, Cylinder(0.3), rect(20.5, 0.0, 2.0, 2.0));
    for side in [-1.0, 1.0] {
        it.add("strap", ("meat", 0.9), Rect, fabric(0.4, 3.0, 0.2, 5), (0.0, side * 21.0, 10.0, 3.0, 0.0));
        it.add("lug bar", STEEL, Rect, Cylinder(0.15), rect(0.0, side * 19.5, 10.0, 0.8));
    }
}
