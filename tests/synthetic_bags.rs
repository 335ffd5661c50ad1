//! Believable synthetic bags: every item of the library rendered through the physics, edges that
//! fall between pixels, ground truth that adds up, and bags that vary.

use std::collections::{HashMap, HashSet};

use twinspect::domain::physics::ForwardModel;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::synth::basis::TOLERANCE;
use twinspect::domain::synth::{
    Bag, BagKind, Category, Kind, Object, Outline, Profile, SyntheticScanner, Truth, generate_bag,
    single_item,
};

fn desk() -> ScannerProfile {
    ScannerProfile::load("desk-140").unwrap()
}

/// Per item kind, alone on the belt: at pixels inside every part there (no edge in the pixel),
/// the rendered attenuation of both energies equals the reference forward model of the parts
/// stacked there, within the tolerance the basis table is built to (heavy metals exactly).
#[test]
fn every_item_renders_its_parts_as_the_physics_model_says() {
    for profile in [desk(), ScannerProfile::load("hub-160").unwrap()] {
        let sc = SyntheticScanner::new(&profile, 1).unwrap();
        let model = ForwardModel::new(profile.kvp, &profile.detector).unwrap();
        let (lp, cp) = (profile.line_pitch_mm(), profile.pixel_pitch_mm);
        let pitch = (lp + cp) / 2.0;
        for kind in Kind::CONTENTS.iter().chain(&[Kind::Suitcase, Kind::SoftBag, Kind::ParcelBox]) {
            let bag = single_item(*kind, 3, &profile);
            let (lo, hi) = sc.transmission_frame(&bag);
            let mut checked = 0;
            let mut parts_seen = HashSet::new();
            let mut worst = 0.0f64;
            let (n, ch) = lo.dim();
            for l in (0..n).step_by(3) {
                for c in (0..ch).step_by(3) {
                    let (x, y) = ((l as f64 + 0.5) * lp, (c as f64 + 0.5) * cp);
                    let mut layers: HashMap<&str, f64> = HashMap::new();
                    let mut interior = true;
                    for o in &bag.objects {
                        let (a, b) = (o.areal_at(x, y), o.areal_over(x, y, pitch));
                        if (a - b).abs() > 1e-9 {
                            interior = false;
                            break;
                        }
                        if a > 0.0 {
                            *layers.entry(o.material).or_default() += a;
                        }
                    }
                    if !interior || layers.is_empty() || checked >= 800 {
                        continue;
                    }
                    let stack: Vec<(&str, f64)> = layers.iter().map(|(m, a)| (*m, *a)).collect();
                    let (al, ah) = model.stack(&stack).unwrap();
                    let (rl, rh) = (-(lo[[l, c]] as f64).ln(), -(hi[[l, c]] as f64).ln());
                    if ah > 6.0 {
                        // Not penetrated: beyond what the detector resolves, and so rendered.
                        assert!(rh > 5.3, "{}: {stack:?} renders {rh}, the model says {ah}", kind.name());
                        checked += 1;
                        continue;
                    }
                    let e = ((rl - al).abs() / al.max(0.02)).max((rh - ah).abs() / ah.max(0.02));
                    assert!(
                        e < TOLERANCE + 0.002,
                        "{} at line {l} channel {c}: {stack:?} renders ({rl:.4}, {rh:.4}), the model says ({al:.4}, {ah:.4})",
                        kind.name()
                    );
                    worst = worst.max(e);
                    checked += 1;
                    for o in &bag.objects {
                        if o.areal_at(x, y) > 0.0 {
                            parts_seen.insert(o.part);
                        }
                    }
                }
            }
            assert!(checked >= 20, "{}: only {checked} interior pixels", kind.name());
            eprintln!(
                "{} {}: {checked} pixels, {} of {} parts, worst relative error {worst:.4}",
                profile.name,
                kind.name(),
                parts_seen.len(),
                bag.objects.iter().map(|o| o.part).collect::<HashSet<_>>().len()
            );
        }
    }
}

/// A steel plate's edge at an angle: the half-attenuation crossing found per line (between
/// pixels, by interpolation) lies on a straight line to a tenth of a pixel. Sampling the plate
/// at pixel centres (no partial volume) puts it on a staircase, a third of a pixel off.
#[test]
fn edges_fall_between_pixels_without_stair_steps() {
    let p = desk();
    let sc = SyntheticScanner::new(&p, 1).unwrap();
    let plate = Object::placed(
        Category::DenseBlock,
        "iron",
        7.87,
        Outline::Rect,
        Profile::Slab(0.2),
        (150.0, 600.0, 200.0, 60.0, 0.12),
        0,
    );
    let bag = Bag { seed: 0, kind: BagKind::Parcel, length_mm: 300.0, objects: vec![plate.clone()] };
    let (lo, _) = sc.transmission_frame(&bag);
    let full = -(lo[[190, 750]] as f64).ln();
    assert!(full > 0.3, "the plate attenuates: {full}");
    let edge_of = |att: &dyn Fn(usize) -> f64| -> Option<f64> {
        // The plate's lower edge (y about 540 mm, channel 675), crossing half its attenuation.
        (600..720).find_map(|c| {
            let (a, b) = (att(c), att(c + 1));
            (a < full / 2.0 && b >= full / 2.0).then(|| c as f64 + (full / 2.0 - a) / (b - a))
        })
    };
    let fit = |pts: &[(f64, f64)]| -> f64 {
        let n = pts.len() as f64;
        let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let k = sxy / sxx;
        (pts.iter().map(|p| (p.1 - my - k * (p.0 - mx)).powi(2)).sum::<f64>() / n).sqrt()
    };
    let (mut ours, mut sampled) = (Vec::new(), Vec::new());
    for l in 120..260 {
        let x = (l as f64 + 0.5) * p.line_pitch_mm();
        if let Some(e) = edge_of(&|c| -(lo[[l, c]] as f64).ln()) {
            ours.push((l as f64, e));
        }
        let point = |c: usize| {
            let y = (c as f64 + 0.5) * p.pixel_pitch_mm;
            if plate.areal_at(x, y) > 0.0 { full } else { 0.0 }
        };
        if let Some(e) = edge_of(&point) {
            sampled.push((l as f64, e));
        }
    }
    assert!(ours.len() > 100 && sampled.len() > 100, "{} {}", ours.len(), sampled.len());
    let (r_ours, r_sampled) = (fit(&ours), fit(&sampled));
    eprintln!("edge residual: partial volume {r_ours:.3} px, point sampling {r_sampled:.3} px");
    assert!(r_ours < 0.1, "{r_ours}");
    assert!(r_sampled > 2.0 * r_ours, "{r_sampled} vs {r_ours}");
}

/// The fast renderer against the full model at every pixel of whole bags of both profiles.
#[test]
fn whole_bags_match_the_full_model() {
    for (profile, seed) in [(desk(), 5u64), (ScannerProfile::load("hub-160").unwrap(), 6)] {
        let sc = SyntheticScanner::new(&profile, 1).unwrap();
        let bag = generate_bag(seed, &profile);
        let (lo, hi) = sc.transmission_frame(&bag);
        let (el, eh) = sc.transmission_frame_exact(&bag);
        let mut errs = Vec::new();
        for (((a, b), c), d) in lo.iter().zip(&hi).zip(&el).zip(&eh) {
            let (aa, ea) = (-(*a as f64).ln(), -(*c as f64).ln());
            let (ab, eb) = (-(*b as f64).ln(), -(*d as f64).ln());
            if ea > 0.01 && eb < 6.0 {
                errs.push(((aa - ea).abs() / ea).max((ab - eb).abs() / eb.max(0.01)));
            }
        }
        errs.sort_by(f64::total_cmp);
        let q = |f: f64| errs[((errs.len() - 1) as f64 * f) as usize];
        eprintln!(
            "{}: {} pixels, relative error median {:.5} p99 {:.5}",
            profile.name,
            errs.len(),
            q(0.5),
            q(0.99)
        );
        assert!(errs.len() > 100_000);
        assert!(q(0.5) < 0.005 && q(0.99) < TOLERANCE, "median {} p99 {}", q(0.5), q(0.99));
    }
}

/// Ground truth: masses add up (a slab's is density x thickness x area), outlines lie inside the
/// bag, items of interest flagged for their agency, and the JSON reads back.
#[test]
fn ground_truth_adds_up() {
    let p = desk();
    for seed in 0..12 {
        let bag = generate_bag(seed, &p);
        let truth = bag.truth(&p);
        let json = serde_json::to_string(&truth).unwrap();
        let back: Truth = serde_json::from_str(&json).unwrap();
        assert_eq!(back.objects.len(), truth.objects.len());
        let parts: usize = truth.objects.iter().map(|o| o.parts.len()).sum();
        assert_eq!(parts, bag.objects.len(), "every part once");
        let belt = p.channels as f64 * p.pixel_pitch_mm;
        for o in &truth.objects {
            let sum: f64 = o.parts.iter().map(|p| p.mass_g).sum();
            assert!((o.mass_g - sum).abs() < 0.05, "{}", o.kind);
            assert_eq!(o.customs_interest, o.category.customs_interest());
            for part in &o.parts {
                assert!(part.mass_g >= 0.0 && part.class.is_some(), "{} {}", o.kind, part.part);
                for [x, y] in &part.outline {
                    assert!((-1.0..=bag.length_mm + 1.0).contains(x) && (-1.0..=belt + 1.0).contains(y));
                }
            }
        }
        let container = truth.objects.iter().find(|o| o.category == Category::Container).unwrap();
        assert!((500.0..12_000.0).contains(&container.mass_g), "{} g", container.mass_g);
    }
    // A slab's mass from first principles.
    let o = Object::placed(
        Category::Paper,
        "cellulose",
        0.9,
        Outline::Rect,
        Profile::Slab(2.0),
        (0.0, 0.0, 100.0, 50.0, 0.4),
        0,
    );
    let want = 0.9 * 2.0 * (20.0 * 10.0); // g/cm3 x cm x cm2
    assert!((o.mass_g() / want - 1.0).abs() < 0.005, "{} vs {want}", o.mass_g());
    let e = Object::placed(
        Category::Coin,
        "copper",
        8.96,
        Outline::Ellipse,
        Profile::Slab(0.2),
        (0.0, 0.0, 10.0, 10.0, 0.0),
        0,
    );
    let want = 8.96 * 0.2 * std::f64::consts::PI * 1.0;
    assert!((e.mass_g() / want - 1.0).abs() < 0.01, "{} vs {want}", e.mass_g());
}

/// Over many bags every kind of the library is packed somewhere, bags are reproducible, and
/// nothing lies outside its container.
#[test]
fn bags_pack_every_kind_inside_the_container() {
    let p = desk();
    let a = generate_bag(42, &p);
    assert_eq!(a.objects, generate_bag(42, &p).objects);
    assert_ne!(a.objects, generate_bag(43, &p).objects);
    let mut seen = HashSet::new();
    let mut parts = Vec::new();
    for seed in 0..600 {
        let bag = generate_bag(seed, &p);
        let shell = bag.objects[0].bbox();
        parts.push(bag.objects.len());
        for o in &bag.objects {
            seen.insert(o.kind);
            if o.kind == "belt_seam" {
                continue;
            }
            let (x0, x1, y0, y1) = o.bbox();
            let slack = 2.0;
            assert!(
                x0 >= shell.0 - slack
                    && x1 <= shell.1 + slack
                    && y0 >= shell.2 - slack
                    && y1 <= shell.3 + slack,
                "seed {seed}: {} {} outside the container",
                o.kind,
                o.part
            );
        }
    }
    for k in Kind::CONTENTS {
        assert!(seen.contains(k.name()), "{} never packed in 600 bags", k.name());
    }
    parts.sort();
    eprintln!("parts per bag: median {}, max {}", parts[parts.len() / 2], parts[parts.len() - 1]);
    assert!(parts[parts.len() / 2] >= 40, "cluttered bags have many parts");
}

/// `render --truth` writes the bag's ground truth; `--item` scans one item of the library.
#[test]
fn render_writes_the_truth_and_scans_single_items() {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("t.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinspect"))
        .args(["render", "--synthetic", "7", "--truth"])
        .arg(&truth)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t: Truth = serde_json::from_slice(&std::fs::read(&truth).unwrap()).unwrap();
    assert_eq!(t.objects.len(), generate_bag(7, &desk()).truth(&desk()).objects.len());
    let png = dir.path().join("knife.png");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinspect"))
        .args(["render", "--synthetic", "1", "--item", "knife", "--cpu", "--truth"])
        .arg(dir.path().join("k.json"))
        .arg("--out")
        .arg(&png)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let k: Truth = serde_json::from_slice(&std::fs::read(dir.path().join("k.json")).unwrap()).unwrap();
    assert_eq!(k.objects.len(), 1);
    let parts: HashSet<&str> = k.objects[0].parts.iter().map(|p| p.part.as_str()).collect();
    for want in ["blade", "bolster", "tang", "handle scales", "rivet"] {
        assert!(parts.contains(want), "{parts:?}");
    }
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinspect"))
        .args(["render", "--synthetic", "1", "--item", "bazooka", "--truth", "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no item \"bazooka\" in the library"));
}
