//! The operator's measuring tools on a screen: the readout under the pointer (class, Zeff, both
//! attenuations, equivalent thickness, over the 5 x 5 pixels around it), the ruler and the
//! region; and the raw samples of the live image kept on the CPU for them (the GPU holds the
//! image itself).
//!
//! Owns: [`RawRing`], [`Measurement`], the readout's words. Must not import: wgpu, file or
//! network I/O.

use ndarray::Array2;

use super::i18n::Lang;
use crate::domain::calib::{Calibration, attenuation};
use crate::domain::measure::{Equivalent, Meter, Readout, RegionReadout};
use crate::domain::physics::MaterialClass;
use crate::domain::scan::RawFrame;

/// The raw samples of the last `cap` lines (what the live image holds), by absolute line number.
pub struct RawRing {
    channels: usize,
    cap: usize,
    /// Lines pushed so far (the next line's number).
    pub head: u64,
    low: Vec<u16>,
    high: Vec<u16>,
    missing: Vec<bool>,
}

impl RawRing {
    pub fn new(channels: usize, cap: usize) -> Self {
        RawRing { channels, cap: cap.max(1), head: 0, low: Vec::new(), high: Vec::new(), missing: Vec::new() }
    }

    /// Append a batch (`n * channels` samples each, a flag per line).
    pub fn push(&mut self, low: &[u16], high: &[u16], missing: &[bool]) {
        let ch = self.channels;
        if self.low.is_empty() {
            self.low = vec![0; self.cap * ch];
            self.high = vec![0; self.cap * ch];
            self.missing = vec![true; self.cap];
        }
        let n = low.len() / ch;
        // Of a batch longer than the ring only its last `cap` lines stay.
        let skip = n.saturating_sub(self.cap);
        self.head += skip as u64;
        for k in skip..n {
            let slot = (self.head % self.cap as u64) as usize;
            self.low[slot * ch..(slot + 1) * ch].copy_from_slice(&low[k * ch..(k + 1) * ch]);
            self.high[slot * ch..(slot + 1) * ch].copy_from_slice(&high[k * ch..(k + 1) * ch]);
            self.missing[slot] = missing.get(k).copied().unwrap_or(false);
            self.head += 1;
        }
    }

    /// Line `line`'s samples, if the ring still holds it and it was not lost on the link.
    fn line(&self, line: u64) -> Option<(&[u16], &[u16])> {
        if line >= self.head || line + (self.cap as u64) < self.head + 1 || self.low.is_empty() {
            return None;
        }
        let slot = (line % self.cap as u64) as usize;
        let ch = self.channels;
        (!self.missing[slot])
            .then(|| (&self.low[slot * ch..(slot + 1) * ch], &self.high[slot * ch..(slot + 1) * ch]))
    }
}

/// Where an image's raw samples are: the live ring, or an archived bag's frame.
pub enum Samples<'a> {
    Live(&'a RawRing),
    Frame(&'a RawFrame),
}

impl Samples<'_> {
    fn channels(&self) -> usize {
        match self {
            Samples::Live(r) => r.channels,
            Samples::Frame(f) => f.channels(),
        }
    }

    fn line(&self, line: i64) -> Option<(Vec<u16>, Vec<u16>)> {
        let line = u64::try_from(line).ok()?;
        match self {
            Samples::Live(r) => r.line(line).map(|(l, h)| (l.to_vec(), h.to_vec())),
            Samples::Frame(f) => {
                let k = usize::try_from(line).ok().filter(|&k| k < f.lines())?;
                Some((f.low.row(k).to_vec(), f.high.row(k).to_vec()))
            }
        }
    }

    /// Attenuations `[line, channel]` of lines `l0..l1` and channels `c0..c1` (clamped to the
    /// detector); `None` when any line of it is not there (gone from the ring, lost, not yet
    /// scanned) or nothing is left.
    pub fn attenuations(
        &self,
        cal: &Calibration,
        (l0, l1): (i64, i64),
        (c0, c1): (i64, i64),
    ) -> Option<(Array2<f32>, Array2<f32>)> {
        let ch = self.channels().min(cal.channels()) as i64;
        let (c0, c1) = (c0.clamp(0, ch), c1.clamp(0, ch));
        if l1 <= l0 || c1 <= c0 || l1 - l0 > 4096 {
            return None;
        }
        let t = cal.table();
        let (w, h) = ((l1 - l0) as usize, (c1 - c0) as usize);
        let (mut lo, mut hi) = (Array2::zeros((w, h)), Array2::zeros((w, h)));
        for (k, line) in (l0..l1).enumerate() {
            let (low, high) = self.line(line)?;
            for (j, c) in (c0 as usize..c1 as usize).enumerate() {
                lo[[k, j]] = attenuation(low[c], t[c][0], t[c][2], cal.full_scale);
                hi[[k, j]] = attenuation(high[c], t[c][1], t[c][3], cal.full_scale);
            }
        }
        Some((lo, hi))
    }
}

/// A ruler or a region, in image coordinates (line, channel from the bottom), kept until the
/// next one or Esc.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    pub region: bool,
    pub a: (f64, f64),
    pub b: (f64, f64),
}

impl Measurement {
    /// The region's lines and channels (end exclusive).
    pub fn bounds(&self) -> ((i64, i64), (i64, i64)) {
        let (l0, l1) = (self.a.0.min(self.b.0).floor() as i64, self.a.0.max(self.b.0).ceil() as i64);
        let (c0, c1) = (self.a.1.min(self.b.1).floor() as i64, self.a.1.max(self.b.1).ceil() as i64);
        ((l0, l1), (c0, c1))
    }
}

/// Half the side of the square the readout averages (5 x 5 pixels): one pixel's quantum noise
/// would make Zeff jump under a still pointer.
pub const READOUT_HALF: i64 = 2;

fn class_name(lang: Lang, c: MaterialClass) -> String {
    let (en, zh) = match c {
        MaterialClass::Organic => ("organic", "有机物"),
        MaterialClass::Inorganic => ("inorganic", "无机物"),
        MaterialClass::Metal => ("metal", "金属"),
        MaterialClass::Dense => ("not penetrated", "未穿透"),
    };
    lang.tr(en, zh)
}

fn equivalent_text(lang: Lang, e: &Equivalent) -> String {
    let (en, zh) = match e.material {
        "water" => ("water", "水"),
        "aluminium" => ("aluminium", "铝"),
        _ => ("steel", "钢"),
    };
    let (more_en, more_zh) = if e.at_least { ("more than", "超过") } else { ("about", "约") };
    lang.tr(&format!("{more_en} {:.0} mm {en}", e.mm), &format!("{more_zh} {:.0} 毫米{zh}", e.mm))
}

/// The readout's words: "Zeff 7.4 · organic · A 0.91/0.70 · about 40 mm water".
pub fn readout_text(lang: Lang, r: &Readout) -> String {
    let Some(e) = &r.equivalent else {
        let nothing = lang.tr("nothing in the beam", "无物体");
        return format!("A {:.2}/{:.2} · {nothing}", r.a_low, r.a_high);
    };
    format!(
        "Zeff {:.1} · {} · A {:.2}/{:.2} · {}",
        r.zeff,
        class_name(lang, r.class),
        r.a_low,
        r.a_high,
        equivalent_text(lang, e)
    )
}

/// A ruler's words.
pub fn ruler_text(lang: Lang, meter: &Meter, m: &Measurement) -> String {
    let mm = meter.distance_mm(m.b.0 - m.a.0, m.b.1 - m.a.1);
    format!("{} {mm:.0} mm", lang.tr("Ruler", "标尺"))
}

/// A region's words.
pub fn region_text(lang: Lang, r: &RegionReadout) -> String {
    let mut s = format!("{} {:.0} × {:.0} mm", lang.tr("Region", "区域"), r.along_mm, r.across_mm);
    if r.edge_dense {
        return s + &format!(
            " · {}",
            lang.tr(
                "its edge crosses something not penetrated: draw it with a margin around the object",
                "边缘穿过未穿透物体：请在物体周围留出余量"
            )
        );
    }
    if r.object_cm2 <= 0.0 {
        return s + &format!(" · {}", lang.tr("nothing above the background", "背景之上无物体"));
    }
    s += &format!(
        " · {} {:.1} cm² · Zeff {:.1} {}",
        lang.tr("object", "物体"),
        r.object_cm2,
        r.zeff,
        class_name(lang, r.class)
    );
    if r.dense {
        s += &format!(" · {}", lang.tr("part not penetrated", "部分未穿透"));
    }
    if let Some(e) = &r.equivalent {
        let more = if r.dense { lang.tr("at least ", "至少 ") } else { String::new() };
        let mass = if r.mass_g < 10.0 { format!("{:.1}", r.mass_g) } else { format!("{:.0}", r.mass_g) };
        s += &format!(" · {more}{:.2} g/cm² ({}) · {more}{mass} g", e.g_cm2, equivalent_text(lang, e));
    }
    s
}
