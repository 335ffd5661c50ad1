//! Threat image projection (TIP): threats kept as what they do to the beam, and projected into
//! real or replayed bags for training.
//!
//! A [`Threat`] is an isolated object's transmission per energy (1 where it is absent), from the
//! physics model ([`Threat::from_objects`]) or cut out of a captured scan ([`Threat::from_scan`]).
//! Projection adds the threat's attenuation to the bag's along the beam. Multiplying
//! transmissions (`raw' = dark + (raw - dark) T`) is Beer-Lambert's law for one energy, but a
//! real beam is polychromatic: behind a dense part of the bag the beam is harder and a knife
//! attenuates less (27 % less in the physics model's low channel behind T = 0.22, measured). So
//! [`Projector`] works in basis-material space instead: each pixel of the bag and of the threat
//! is decomposed into the areal densities of polyethylene and iron that give its two measured
//! transmissions through the scanner's own spectrum and detector; the densities add exactly, and
//! the sum is taken back through the forward model; the bag's pixel is scaled by the ratio, so
//! its noise stays its own.
//! [`find_placement`] puts a threat where the bag is (its footprint on things in the beam, not
//! on the belt beside the bag).
//!
//! Must not import: egui, wgpu, tokio.

use ndarray::Array2;

use super::calib::Calibration;
use super::physics::{FastModel, ForwardModel, PhysicsError};
use super::profile::ScannerProfile;
use super::rng::Rng;
use super::scan::RawFrame;
use super::synth::{Bag, BagKind, Category, Object, SyntheticScanner};

/// Transmission above which a pixel of a threat counts as background.
pub const BACKGROUND_T: f32 = 0.995;
/// The same for a threat cut from a noisy scan: above this, quantum noise, not an object.
pub const SCAN_BACKGROUND_T: f32 = 0.95;

/// A threat in attenuation space.
#[derive(Clone, Debug, PartialEq)]
pub struct Threat {
    pub name: String,
    pub category: Category,
    /// Transmission `[[line, channel]]` per energy, 1 outside the object.
    pub t_low: Array2<f32>,
    pub t_high: Array2<f32>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TipError {
    #[error("the threat is empty (nothing in the beam)")]
    Empty,
    #[error("region {0:?} is outside the scan ({1} lines x {2} channels)")]
    Region((usize, usize, usize, usize), usize, usize),
    #[error("the calibration has {0} channels, the scan {1}")]
    Channels(usize, usize),
}

impl Threat {
    pub fn lines(&self) -> usize {
        self.t_low.nrows()
    }

    pub fn channels(&self) -> usize {
        self.t_low.ncols()
    }

    /// Pixels where the threat attenuates either energy.
    pub fn footprint(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.t_low
            .indexed_iter()
            .zip(self.t_high.iter())
            .filter(|((_, l), h)| **l < BACKGROUND_T || **h < BACKGROUND_T)
            .map(|((i, _), _)| i)
    }

    /// The noise-free transmissions of `objects` (positions in mm on an empty belt) through
    /// `scanner`'s physics, cropped to where they attenuate.
    pub fn from_objects(
        name: &str,
        category: Category,
        objects: &[Object],
        scanner: &mut SyntheticScanner,
    ) -> Result<Threat, TipError> {
        let p = scanner.profile.clone();
        let x1 = objects.iter().map(|o| o.bbox().1).fold(0.0, f64::max);
        let bag = Bag {
            seed: 0,
            kind: BagKind::Parcel,
            length_mm: x1 + 2.0 * p.line_pitch_mm(),
            objects: objects.to_vec(),
        };
        let (t_low, t_high) = scanner.transmission_frame(&bag);
        Threat { name: name.into(), category, t_low, t_high }.cropped()
    }

    /// A threat cut out of a captured scan (`lines` x `channels` region `(l0, l1, c0, c1)`, end
    /// exclusive) through its calibration: what the object did to the beam there, clipped to
    /// (0, 1]; pixels barely attenuated count as background.
    ///
    /// With `subtract_background`, what lies around the object in the bag (clothes, the
    /// suitcase's shell) is taken out: per energy, the attenuation of the region's border is
    /// interpolated across the region (a Coons patch of its four edges, so any background that
    /// varies linearly, a wedge or a gradient, is removed exactly) and subtracted, leaving the
    /// object's own attenuation (attenuations add, Beer-Lambert). The region's edges must be
    /// background: mark with a margin around the object.
    pub fn from_scan(
        name: &str,
        category: Category,
        frame: &RawFrame,
        calib: &Calibration,
        region: (usize, usize, usize, usize),
        subtract_background: bool,
    ) -> Result<Threat, TipError> {
        let (l0, l1, c0, c1) = region;
        if calib.channels() != frame.channels() {
            return Err(TipError::Channels(calib.channels(), frame.channels()));
        }
        if l0 >= l1 || c0 >= c1 || l1 > frame.lines() || c1 > frame.channels() {
            return Err(TipError::Region(region, frame.lines(), frame.channels()));
        }
        let t = |raw: &Array2<u16>, dark: &[f32], air: &[f32]| {
            Array2::from_shape_fn((l1 - l0, c1 - c0), |(i, j)| {
                let c = c0 + j;
                let span = (air[c] - dark[c]).max(1.0);
                let v = ((raw[[l0 + i, c]] as f32 - dark[c]) / span).clamp(1e-4, 1.0);
                if v >= SCAN_BACKGROUND_T { 1.0 } else { v }
            })
        };
        let (mut t_low, mut t_high) = (
            t(&frame.low, &calib.dark_low, &calib.air_low),
            t(&frame.high, &calib.dark_high, &calib.air_high),
        );
        if subtract_background {
            for t in [&mut t_low, &mut t_high] {
                let a = t.mapv(|v| -v.ln());
                let b = border_patch(&a);
                *t = ndarray::Zip::from(&a).and(&b).map_collect(|&a, &b| {
                    let v = (-(a - b).max(0.0)).exp();
                    if v >= SCAN_BACKGROUND_T { 1.0 } else { v }
                });
            }
        }
        Threat { name: name.into(), category, t_low, t_high }.cropped()
    }

    /// Cut to the smallest box holding the footprint.
    fn cropped(self) -> Result<Threat, TipError> {
        let pts: Vec<(usize, usize)> = self.footprint().collect();
        if pts.is_empty() {
            return Err(TipError::Empty);
        }
        let (l0, l1) = pts.iter().fold((usize::MAX, 0), |(a, b), p| (a.min(p.0), b.max(p.0 + 1)));
        let (c0, c1) = pts.iter().fold((usize::MAX, 0), |(a, b), p| (a.min(p.1), b.max(p.1 + 1)));
        let s = ndarray::s![l0..l1, c0..c1];
        Ok(Threat {
            name: self.name,
            category: self.category,
            t_low: self.t_low.slice(s).to_owned(),
            t_high: self.t_high.slice(s).to_owned(),
        })
    }
}

/// The background under a region, from its border: the mean of the two outermost pixels on
/// each edge, smoothed along the edge (quantum noise), blended across as a Coons patch (each
/// edge interpolated linearly to the opposite one, less the corners' bilinear part).
pub(crate) fn border_patch(a: &Array2<f32>) -> Array2<f32> {
    let (h, w) = a.dim();
    let k = 2.min(h).min(w);
    let mean = |v: &mut dyn Iterator<Item = f32>| {
        let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
        s / n.max(1) as f32
    };
    // Edge profiles: along lines (left, right: outermost channels) and along channels.
    let smooth = |v: Vec<f32>| -> Vec<f32> {
        let r = 3usize;
        (0..v.len())
            .map(|i| {
                let (lo, hi) = (i.saturating_sub(r), (i + r + 1).min(v.len()));
                v[lo..hi].iter().sum::<f32>() / (hi - lo) as f32
            })
            .collect()
    };
    let left = smooth((0..h).map(|i| mean(&mut (0..k).map(|j| a[[i, j]]))).collect());
    let right = smooth((0..h).map(|i| mean(&mut (w - k..w).map(|j| a[[i, j]]))).collect());
    let top = smooth((0..w).map(|j| mean(&mut (0..k).map(|i| a[[i, j]]))).collect());
    let bottom = smooth((0..w).map(|j| mean(&mut (h - k..h).map(|i| a[[i, j]]))).collect());
    let (c00, c01) = ((left[0] + top[0]) / 2.0, (right[0] + top[w - 1]) / 2.0);
    let (c10, c11) = ((left[h - 1] + bottom[0]) / 2.0, (right[h - 1] + bottom[w - 1]) / 2.0);
    Array2::from_shape_fn((h, w), |(i, j)| {
        let v = if h > 1 { i as f32 / (h - 1) as f32 } else { 0.0 };
        let u = if w > 1 { j as f32 / (w - 1) as f32 } else { 0.0 };
        (1.0 - u) * left[i] + u * right[i] + (1.0 - v) * top[j] + v * bottom[j]
            - ((1.0 - u) * (1.0 - v) * c00 + u * (1.0 - v) * c01 + (1.0 - u) * v * c10 + u * v * c11)
    })
}

/// The basis materials every pixel is decomposed into: one low-Z, one high-Z.
pub const BASIS: [&str; 2] = ["polyethylene", "iron"];

/// Projects threats into bags through a scanner's physics (see the module's notes).
pub struct Projector {
    fast: FastModel,
    scratch: Vec<f32>,
}

impl Projector {
    pub fn new(profile: &ScannerProfile) -> Result<Projector, PhysicsError> {
        let fast = ForwardModel::new(profile.kvp, &profile.detector)?.fast(1.0, &BASIS)?;
        let scratch = vec![0.0; fast.bins()];
        Ok(Projector { fast, scratch })
    }

    /// `(A_low, A_high)` behind basis areal densities `a` (g/cm^2).
    fn log_att(&mut self, a: [f32; 2]) -> (f32, f32) {
        let (l, h) = self.fast.transmission(&a, &mut self.scratch);
        (-l.max(1e-30).ln(), -h.max(1e-30).ln())
    }

    /// The basis areal densities (g/cm^2, not negative) that transmit `(t_low, t_high)`:
    /// damped Newton steps on the two log-attenuations.
    pub fn decompose(&mut self, t_low: f32, t_high: f32) -> [f32; 2] {
        let target = (-t_low.clamp(1e-6, 1.0).ln(), -t_high.clamp(1e-6, 1.0).ln());
        if target.0 <= 1e-5 && target.1 <= 1e-5 {
            return [0.0, 0.0];
        }
        // Start as if it were all polyethylene (about 0.2 cm^2/g at these energies).
        let mut a = [target.1 / 0.2, 0.0f32];
        for _ in 0..30 {
            let f = self.log_att(a);
            let r = (f.0 - target.0, f.1 - target.1);
            if r.0.abs() < 1e-5 && r.1.abs() < 1e-5 {
                break;
            }
            let h = [1e-3 * a[0].max(0.5), 1e-3 * a[1].max(0.05)];
            let f0 = self.log_att([a[0] + h[0], a[1]]);
            let f1 = self.log_att([a[0], a[1] + h[1]]);
            let j = [[(f0.0 - f.0) / h[0], (f1.0 - f.0) / h[1]], [(f0.1 - f.1) / h[0], (f1.1 - f.1) / h[1]]];
            let det = j[0][0] * j[1][1] - j[0][1] * j[1][0];
            if det.abs() < 1e-12 {
                break;
            }
            let d0 = (j[1][1] * r.0 - j[0][1] * r.1) / det;
            let d1 = (-j[1][0] * r.0 + j[0][0] * r.1) / det;
            a = [(a[0] - d0).max(0.0), (a[1] - d1).max(0.0)];
        }
        a
    }

    /// Transmissions of `threat` pixel `(i, j)` added to a bag pixel of transmissions `(tl, th)`:
    /// the factors `(T_new / T_bag)` per energy.
    fn factors(&mut self, bag: (f32, f32), threat: [f32; 2]) -> (f32, f32) {
        let ab = self.decompose(bag.0, bag.1);
        let (bl, bh) = self.fast.transmission(&ab, &mut self.scratch);
        let sum = [ab[0] + threat[0], ab[1] + threat[1]];
        let (nl, nh) = self.fast.transmission(&sum, &mut self.scratch);
        ((nl / bl.max(1e-30)).min(1.0), (nh / bh.max(1e-30)).min(1.0))
    }

    /// The transmissions of a bag pixel `(tl, th)` with threat pixel `(i, j)` added.
    pub fn combined(&mut self, bag: (f32, f32), threat: &Threat, i: usize, j: usize) -> (f32, f32) {
        let a = self.decompose(threat.t_low[[i, j]], threat.t_high[[i, j]]);
        let (fl, fh) = self.factors(bag, a);
        (bag.0 * fl, bag.1 * fh)
    }

    /// Project `threat` into `frame` with its top-left at `(line, channel)` (the part outside
    /// the frame is left out).
    pub fn project(
        &mut self,
        frame: &mut RawFrame,
        calib: &Calibration,
        threat: &Threat,
        line: usize,
        channel: usize,
    ) {
        let fs = calib.full_scale as f32;
        for (i, j) in threat.footprint().collect::<Vec<_>>() {
            let (l, c) = (line + i, channel + j);
            if l >= frame.lines() || c >= frame.channels() {
                continue;
            }
            let t = |raw: u16, dark: f32, air: f32| {
                ((raw as f32 - dark) / (air - dark).max(1.0)).clamp(1e-6, 1.0)
            };
            let bag = (
                t(frame.low[[l, c]], calib.dark_low[c], calib.air_low[c]),
                t(frame.high[[l, c]], calib.dark_high[c], calib.air_high[c]),
            );
            let a = self.decompose(threat.t_low[[i, j]], threat.t_high[[i, j]]);
            let (fl, fh) = self.factors(bag, a);
            let apply = |raw: u16, dark: f32, f: f32| -> u16 {
                (dark + (raw as f32 - dark) * f).round().clamp(0.0, fs) as u16
            };
            frame.low[[l, c]] = apply(frame.low[[l, c]], calib.dark_low[c], fl);
            frame.high[[l, c]] = apply(frame.high[[l, c]], calib.dark_high[c], fh);
        }
    }
}

/// Something is in the beam at this pixel (the bag, its contents), by its low-energy
/// transmission.
fn in_bag(frame: &RawFrame, calib: &Calibration, l: usize, c: usize) -> bool {
    let span = (calib.air_low[c] - calib.dark_low[c]).max(1.0);
    (frame.low[[l, c]] as f32 - calib.dark_low[c]) / span < 0.93
}

/// A place for `threat` inside the bag: every pixel of its footprint over something in the
/// beam (so it never floats on the empty belt). `None` when the bag has no such place.
pub fn find_placement(
    frame: &RawFrame,
    calib: &Calibration,
    threat: &Threat,
    rng: &mut Rng,
) -> Option<(usize, usize)> {
    if threat.lines() > frame.lines() || threat.channels() > frame.channels() {
        return None;
    }
    let foot: Vec<(usize, usize)> = threat.footprint().collect();
    // Sparse check first (every 7th footprint pixel), then all of it.
    let fits = |l: usize, c: usize, step: usize| {
        foot.iter().step_by(step).all(|&(i, j)| in_bag(frame, calib, l + i, c + j))
    };
    for _ in 0..400 {
        let l = rng.int(0, (frame.lines() - threat.lines()) as i64) as usize;
        let c = rng.int(0, (frame.channels() - threat.channels()) as i64) as usize;
        if fits(l, c, 7) && fits(l, c, 1) {
            return Some((l, c));
        }
    }
    None
}

/// The threats of the built-in library, built through `profile`'s physics: a kitchen knife and
/// a pistol from the synthetic scanner's item library (every part: blade, bolster, tang, handle
/// scales and rivets; slide, barrel, frame, grip, magazine with cartridges), a lead block, a
/// pistol-sized steel frame.
pub fn builtin_threats(
    profile: &ScannerProfile,
) -> Result<Vec<Threat>, crate::domain::physics::PhysicsError> {
    use super::synth::{Kind, Outline, Profile, single_item};
    let mut sc = SyntheticScanner::new(profile, 0)?;
    // One part of a threat: a slab of `mm` of a material in an outline, placed.
    let slab = |category, material, density, outline, mm, place| {
        Object::placed(category, material, density, outline, Profile::Slab(mm), place, 0)
    };
    let knife = single_item(Kind::Knife, 1, profile).objects;
    let pistol = single_item(Kind::Gun, 1, profile).objects;
    let lead =
        vec![slab(Category::DenseBlock, "lead", 11.34, Outline::Rect, 1.0, (60.0, 60.0, 40.0, 25.0, 0.2))];
    let frame = vec![
        slab(Category::Blade, "iron", 7.87, Outline::Rect, 0.8, (80.0, 60.0, 70.0, 14.0, 0.0)),
        slab(Category::Blade, "iron", 7.87, Outline::Rect, 1.2, (30.0, 95.0, 14.0, 30.0, -0.2)),
    ];
    let mut out = Vec::new();
    for (name, cat, objs) in [
        ("kitchen knife", Category::Blade, knife),
        ("lead block", Category::DenseBlock, lead),
        ("steel frame", Category::Blade, frame),
        ("pistol", Category::Gun, pistol),
    ] {
        if let Ok(t) = Threat::from_objects(name, cat, &objs, &mut sc) {
            out.push(t);
        }
    }
    Ok(out)
}

/// A threat projected into a bag of a training replay: which, and where in the bag's own
/// lines (counted from its first line) and detector channels.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProjectedThreat {
    pub bag: u64,
    pub name: String,
    pub category: Category,
    pub line: usize,
    pub channel: usize,
    pub lines: usize,
    pub channels: usize,
}

/// How a trainee did on one bag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingResult {
    /// A projected threat, alarmed on and marked where it was.
    Hit,
    /// A projected threat let through (released), or alarmed on without marking it.
    Miss,
    /// An alarm on a bag with no projected threat.
    FalseAlarm,
    /// No projected threat, released.
    CorrectReject,
}

impl TrainingResult {
    pub fn as_str(self) -> &'static str {
        match self {
            TrainingResult::Hit => "hit",
            TrainingResult::Miss => "miss",
            TrainingResult::FalseAlarm => "false_alarm",
            TrainingResult::CorrectReject => "correct_reject",
        }
    }

    pub fn parse(s: &str) -> Option<TrainingResult> {
        [TrainingResult::Hit, TrainingResult::Miss, TrainingResult::FalseAlarm, TrainingResult::CorrectReject]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Bounding box `(x0, x1, y0, y1)` of a mark in bag coordinates.
fn mark_box(shape: &super::inspection::Shape) -> (f32, f32, f32, f32) {
    use super::inspection::Shape;
    let pts: Vec<[f32; 2]> = match shape {
        Shape::Rect { x0, y0, x1, y1 } => vec![[*x0, *y0], [*x1, *y1]],
        Shape::Ellipse { cx, cy, rx, ry } => vec![[cx - rx, cy - ry], [cx + rx, cy + ry]],
        Shape::Polygon { points } => points.clone(),
        // An arrow points at the thing: its head counts.
        Shape::Arrow { to, .. } => vec![*to],
        Shape::Text { at } => vec![*at],
    };
    pts.iter().fold((f32::MAX, f32::MIN, f32::MAX, f32::MIN), |b, p| {
        (b.0.min(p[0]), b.1.max(p[0]), b.2.min(p[1]), b.3.max(p[1]))
    })
}

/// Judge a trainee's decision on a bag: `alarm` (any decision but release), `marks` (theirs on
/// this bag, in bag coordinates as the screens store them: x along the belt from the bag's first
/// line, y the detector channel; the display draws channel c at row channels - 1 - c).
pub fn judge(
    projected: Option<&ProjectedThreat>,
    alarm: bool,
    marks: &[&super::inspection::Annotation],
) -> TrainingResult {
    match (projected, alarm) {
        (None, false) => TrainingResult::CorrectReject,
        (None, true) => TrainingResult::FalseAlarm,
        (Some(_), false) => TrainingResult::Miss,
        (Some(p), true) => {
            // The threat's box in bag coordinates, with a little slack for a hand-drawn mark.
            let slack = 8.0;
            let (tx0, tx1) = (p.line as f32 - slack, (p.line + p.lines) as f32 + slack);
            let (ty0, ty1) = (p.channel as f32 - slack, (p.channel + p.channels) as f32 + slack);
            let hit = marks.iter().any(|m| {
                let (x0, x1, y0, y1) = mark_box(&m.shape);
                x0 <= tx1 && x1 >= tx0 && y0 <= ty1 && y1 >= ty0
            });
            if hit { TrainingResult::Hit } else { TrainingResult::Miss }
        }
    }
}

/// Signal-detection summary of a trainee's results.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Sensitivity {
    pub hits: u64,
    pub misses: u64,
    pub false_alarms: u64,
    pub correct_rejects: u64,
    pub hit_rate: f64,
    pub false_alarm_rate: f64,
    /// d' = z(H) - z(F), with the log-linear correction ((n + 0.5) / (N + 1)) so that perfect
    /// rates stay finite.
    pub d_prime: f64,
}

/// The inverse of the standard normal CDF (Acklam's rational approximation, relative error
/// below 1.2e-9).
pub fn probit(p: f64) -> f64 {
    const A: [f64; 6] = [
        -39.696_830_286_653_76,
        220.946_098_424_520_5,
        -275.928_510_446_968_7,
        138.357_751_867_269,
        -30.664_798_066_147_16,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -54.476_098_798_224_06,
        161.585_836_858_040_9,
        -155.698_979_859_886_6,
        66.801_311_887_719_72,
        -13.280_681_552_885_72,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -0.322_396_458_041_136_5,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 0.322_467_129_070_039_8, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -probit(1.0 - p)
    }
}

pub fn sensitivity(results: &[TrainingResult]) -> Sensitivity {
    let count = |r: TrainingResult| results.iter().filter(|x| **x == r).count() as u64;
    let (h, m, f, c) = (
        count(TrainingResult::Hit),
        count(TrainingResult::Miss),
        count(TrainingResult::FalseAlarm),
        count(TrainingResult::CorrectReject),
    );
    let rate = |a: u64, b: u64| if a + b == 0 { 0.0 } else { a as f64 / (a + b) as f64 };
    let corrected = |a: u64, b: u64| (a as f64 + 0.5) / ((a + b) as f64 + 1.0);
    Sensitivity {
        hits: h,
        misses: m,
        false_alarms: f,
        correct_rejects: c,
        hit_rate: rate(h, m),
        false_alarm_rate: rate(f, c),
        d_prime: probit(corrected(h, m)) - probit(corrected(f, c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::synth::generate_bag;

    fn desk() -> ScannerProfile {
        ScannerProfile::load("desk-140").unwrap()
    }

    fn calibrate(sc: &mut SyntheticScanner, p: &ScannerProfile) -> Calibration {
        let (dark, air) = sc.calibration_lines(64);
        let (d, a): (Vec<_>, Vec<_>) = (dark.iter().collect(), air.iter().collect());
        Calibration::from_lines(&d, &a, p.full_scale()).unwrap()
    }

    /// Noise-free transmissions of a whole bag.
    fn transmissions(sc: &mut SyntheticScanner, bag: &Bag) -> (Array2<f32>, Array2<f32>) {
        sc.transmission_frame(bag)
    }

    #[test]
    fn a_projected_threat_matches_the_bag_scanned_with_it_within_noise() {
        let p = desk();
        let mut sc = SyntheticScanner::new(&p, 1).unwrap();
        let bag = generate_bag(7, &p);
        // The knife alone, and the bag with the knife inside it (same place).
        let knife_blade = vec![(-60.0, -11.0), (60.0, -11.0), (80.0, -2.0), (60.0, 8.0), (-60.0, 11.0)];
        let (cx, cy) = (bag.length_mm / 2.0, p.channels as f64 * p.pixel_pitch_mm / 2.0);
        let knife = Object::placed(
            Category::Blade,
            "iron",
            7.87,
            crate::domain::synth::Outline::Polygon(knife_blade),
            crate::domain::synth::Profile::Slab(0.25),
            (cx, cy, 80.0, 11.0, 0.3),
            0,
        );
        let threat_t = {
            let alone = Bag {
                seed: 0,
                kind: BagKind::Parcel,
                length_mm: bag.length_mm,
                objects: vec![knife.clone()],
            };
            transmissions(&mut sc, &alone)
        };
        let (tl_all, th_all) = (threat_t.0.clone(), threat_t.1.clone());
        let mut with = bag.clone();
        with.objects.push(knife);
        let (bl, bh) = transmissions(&mut sc, &bag);
        let (wl, wh) = transmissions(&mut sc, &with);
        // Per pixel of the knife: the projection (bag x knife) against the scan of both, in
        // units of the scan's own quantum noise at that pixel (sigma_T = sqrt(T / quanta)).
        let mut z = Vec::new();
        let mut rel = Vec::new();
        let mut naive = Vec::new();
        let mut projector = Projector::new(&p).unwrap();
        let threat = Threat {
            name: "knife".into(),
            category: Category::Blade,
            t_low: threat_t.0.clone(),
            t_high: threat_t.1.clone(),
        };
        for ((idx, &kl), &kh) in tl_all.indexed_iter().zip(th_all.iter()) {
            if kl >= BACKGROUND_T && kh >= BACKGROUND_T {
                continue;
            }
            let (pl, ph) = projector.combined((bl[idx], bh[idx]), &threat, idx.0, idx.1);
            let naive_l = bl[idx] * kl;
            naive.push(((-(naive_l as f64).ln() + (wl[idx] as f64).ln()) / -(wl[idx] as f64).ln()).abs());
            for (proj, real, quanta) in [(pl, wl[idx], p.air_quanta_low), (ph, wh[idx], p.air_quanta_high)] {
                let sigma = (real as f64 / quanta).sqrt().max(1e-9);
                z.push(((proj - real) as f64 / sigma).abs());
                let (ap, ar) = (-(proj as f64).ln(), -(real as f64).ln());
                rel.push(((ap - ar) / ar.max(1e-6)).abs());
            }
        }
        assert!(z.len() > 2000, "the knife covers {} pixel-energies", z.len());
        z.sort_by(f64::total_cmp);
        rel.sort_by(f64::total_cmp);
        naive.sort_by(f64::total_cmp);
        let q = |v: &[f64], f: f64| v[((v.len() - 1) as f64 * f) as usize];
        eprintln!(
            "attenuation error: basis projection median {:.4} p99 {:.4} max {:.4}; multiplying transmissions median {:.4} p99 {:.4} max {:.4}",
            q(&rel, 0.5),
            q(&rel, 0.99),
            q(&rel, 1.0),
            q(&naive, 0.5),
            q(&naive, 0.99),
            q(&naive, 1.0)
        );
        let (median, p99) = (z[z.len() / 2], z[z.len() * 99 / 100]);
        eprintln!(
            "projection error in noise sigmas: median {median:.3}, 99th percentile {p99:.3}, max {:.3}",
            z[z.len() - 1]
        );
        assert!(median < 0.5 && p99 < 2.0, "median {median}, p99 {p99}");
        assert!(q(&rel, 0.99) < 0.05, "attenuation within 5 % at the 99th percentile");
    }

    #[test]
    fn projection_darkens_only_the_threat_footprint_and_placement_stays_in_the_bag() {
        let p = desk();
        let mut sc = SyntheticScanner::new(&p, 3).unwrap();
        let calib = calibrate(&mut sc, &p);
        let bag = generate_bag(11, &p);
        let frame = sc.scan_bag(&bag);
        let threats = builtin_threats(&p).unwrap();
        assert_eq!(threats.len(), 4);
        let lead = threats.iter().find(|t| t.name == "lead block").unwrap();
        assert!(lead.t_low.iter().any(|&t| t < 0.05), "1 cm of lead stops most of the low-energy beam");
        let mut rng = Rng::new(5);
        let mut projector = Projector::new(&p).unwrap();
        for t in &threats {
            let (l, c) = find_placement(&frame, &calib, t, &mut rng).expect("a place in the bag");
            for (i, j) in t.footprint() {
                assert!(in_bag(&frame, &calib, l + i, c + j), "{} floats outside the bag", t.name);
            }
            let mut projected = frame.clone();
            projector.project(&mut projected, &calib, t, l, c);
            // Darker (or as dark) over the threat, in proportion to what it stops on its own.
            let mut darker = 0;
            for (i, j) in t.footprint() {
                let (ll, cc) = (l + i, c + j);
                assert!(projected.low[[ll, cc]] <= frame.low[[ll, cc]]);
                assert!(projected.high[[ll, cc]] <= frame.high[[ll, cc]]);
                darker += usize::from(t.t_low[[i, j]] < 0.9 && projected.low[[ll, cc]] < frame.low[[ll, cc]]);
            }
            assert!(darker > t.footprint().count() / 4, "{}: {darker} pixels darker", t.name);
            // Outside the footprint nothing changes.
            let changed = projected.low.iter().zip(frame.low.iter()).filter(|(a, b)| a != b).count();
            assert!(changed <= t.footprint().count());
        }
        // An empty belt has no place for a threat.
        let empty = RawFrame::from_lines(&(0..200).map(|_| sc.air_line()).collect::<Vec<_>>(), sc.channels());
        assert_eq!(find_placement(&empty, &calib, &threats[0], &mut rng), None);
    }

    #[test]
    fn probit_matches_known_quantiles_and_d_prime_follows_signal_detection_theory() {
        // Quantiles of the standard normal (any statistics table; scipy.stats.norm.ppf).
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_963_985),
            (0.84134474606, 1.0),
            (0.01, -2.326_347_874),
            (1e-6, -4.753_424_309),
        ] {
            assert!((probit(p) - z).abs() < 1e-6, "probit({p}) = {} not {z}", probit(p));
        }
        use TrainingResult::*;
        let mut r = vec![Hit; 8];
        r.extend([Miss; 2]);
        r.extend([FalseAlarm; 1]);
        r.extend([CorrectReject; 9]);
        let s = sensitivity(&r);
        assert_eq!((s.hits, s.misses, s.false_alarms, s.correct_rejects), (8, 2, 1, 9));
        assert!((s.hit_rate - 0.8).abs() < 1e-12 && (s.false_alarm_rate - 0.1).abs() < 1e-12);
        // Log-linear: z(8.5/11) - z(1.5/11).
        let want = probit(8.5 / 11.0) - probit(1.5 / 11.0);
        assert!((s.d_prime - want).abs() < 1e-12 && s.d_prime > 1.8, "{}", s.d_prime);
        assert!(sensitivity(&[Hit, CorrectReject]).d_prime.is_finite(), "perfect rates stay finite");
    }

    #[test]
    fn a_trainee_hits_only_by_alarming_and_marking_where_the_threat_is() {
        use crate::domain::inspection::{Annotation, Shape};
        let p = ProjectedThreat {
            bag: 1,
            name: "kitchen knife".into(),
            category: Category::Blade,
            line: 100,
            channel: 500,
            lines: 200,
            channels: 80,
        };
        let mark = |shape| Annotation::new(1, "customs", "c001", shape, "weapon", "", 0);
        // Channels 500..580 of lines 100..300 of the bag.
        let on = mark(Shape::Rect { x0: 150.0, y0: 520.0, x1: 250.0, y1: 560.0 });
        let off = mark(Shape::Rect { x0: 150.0, y0: 100.0, x1: 250.0, y1: 200.0 });
        assert_eq!(judge(Some(&p), true, &[&on]), TrainingResult::Hit);
        assert_eq!(judge(Some(&p), true, &[&off]), TrainingResult::Miss);
        assert_eq!(judge(Some(&p), true, &[]), TrainingResult::Miss);
        assert_eq!(judge(Some(&p), false, &[&on]), TrainingResult::Miss);
        assert_eq!(judge(None, true, &[]), TrainingResult::FalseAlarm);
        assert_eq!(judge(None, false, &[]), TrainingResult::CorrectReject);
        let arrow = mark(Shape::Arrow { from: [0.0, 0.0], to: [120.0, 570.0] });
        assert_eq!(judge(Some(&p), true, &[&arrow]), TrainingResult::Hit);
    }

    #[test]
    fn a_threat_cut_from_a_scan_is_its_transmission_there() {
        let p = desk();
        let mut sc = SyntheticScanner::new(&p, 4).unwrap();
        let calib = calibrate(&mut sc, &p);
        let threats = builtin_threats(&p).unwrap();
        let lead = &threats[1];
        // Scan the lead block alone (through the noisy detector), cut it back out.
        let mut f = RawFrame::from_lines(
            &(0..lead.lines() + 20).map(|_| sc.air_line()).collect::<Vec<_>>(),
            sc.channels(),
        );
        Projector::new(&p).unwrap().project(&mut f, &calib, lead, 10, 100);
        let cut = Threat::from_scan(
            "lead (captured)",
            Category::DenseBlock,
            &f,
            &calib,
            (0, f.lines(), 0, f.channels()),
            false,
        )
        .unwrap();
        assert!(cut.lines().abs_diff(lead.lines()) <= 2 && cut.channels().abs_diff(lead.channels()) <= 2);
        assert!(matches!(
            Threat::from_scan("x", Category::Blade, &f, &calib, (5, 5, 0, 10), true),
            Err(TipError::Region(..))
        ));
        let air_only =
            RawFrame::from_lines(&(0..50).map(|_| sc.air_line()).collect::<Vec<_>>(), sc.channels());
        assert_eq!(
            Threat::from_scan("x", Category::Blade, &air_only, &calib, (0, 50, 0, 100), true),
            Err(TipError::Empty)
        );
    }

    #[test]
    fn a_threat_cut_from_a_bag_leaves_the_bag_behind() {
        let p = desk();
        let mut sc = SyntheticScanner::new(&p, 4).unwrap();
        let calib = calibrate(&mut sc, &p);
        let lead = &builtin_threats(&p).unwrap()[0];
        // The knife inside a bag whose own attenuation is a wedge rising across the belt
        // and along it (clothes thickening), noiseless so the arithmetic is checked exactly.
        let (lines, channels) = (lead.lines() + 40, sc.channels());
        let wedge = |i: usize, j: usize| 0.2 + 0.004 * i as f32 + 0.002 * (j % 300) as f32;
        let raw = |dark: &[f32], air: &[f32], t_obj: &Array2<f32>, i: usize, j: usize| {
            let (li, cj) = (i.wrapping_sub(20), j.wrapping_sub(130));
            let obj = if li < t_obj.dim().0 && cj < t_obj.dim().1 { t_obj[[li, cj]] } else { 1.0 };
            let t = (-wedge(i, j)).exp() * obj;
            (dark[j] + t * (air[j] - dark[j])).round() as u16
        };
        let frame = RawFrame {
            low: Array2::from_shape_fn((lines, channels), |(i, j)| {
                raw(&calib.dark_low, &calib.air_low, &lead.t_low, i, j)
            }),
            high: Array2::from_shape_fn((lines, channels), |(i, j)| {
                raw(&calib.dark_high, &calib.air_high, &lead.t_high, i, j)
            }),
        };
        // Around the block with a margin (the wedge runs on across the whole region).
        let region = (0, lines, 100, 160 + lead.channels());
        let kept = Threat::from_scan("bag and all", Category::Blade, &frame, &calib, region, false).unwrap();
        let cut = Threat::from_scan("knife", Category::Blade, &frame, &calib, region, true).unwrap();
        // Without subtraction the whole bag comes along; with it, the knife alone, its own
        // transmission within what 16-bit counts allow.
        assert_eq!((kept.lines(), kept.channels()), (lines, 60 + lead.channels()));
        assert!(cut.lines().abs_diff(lead.lines()) <= 1 && cut.channels().abs_diff(lead.channels()) <= 1);
        // The cut is cropped where a noisy scan would show the object (T < 0.95), the model's
        // threat where anything attenuates: align the two (a pixel or two) before comparing.
        let (mut worst, mut n) = (f32::MAX, 0);
        for (dl, dc) in (-2..=2).flat_map(|a: i64| (-2..=2).map(move |b: i64| (a, b))) {
            let (mut w, mut k) = (0.0f32, 0);
            for ((i, j), &t) in lead.t_low.indexed_iter() {
                let (ci, cj) = (i as i64 + dl, j as i64 + dc);
                // (Where 16-bit counts still resolve it.)
                if (0.02..0.9).contains(&t)
                    && ci >= 0
                    && cj >= 0
                    && (ci as usize) < cut.lines()
                    && (cj as usize) < cut.channels()
                {
                    w = w.max((cut.t_low[[ci as usize, cj as usize]].ln() - t.ln()).abs());
                    k += 1;
                }
            }
            if k > 100 && w < worst {
                (worst, n) = (w, k);
            }
        }
        assert!(n > 100 && worst < 0.02, "attenuation off by {worst} at worst over {n} pixels");
    }
}
