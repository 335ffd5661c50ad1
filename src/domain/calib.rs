//! Detector calibration: dark offset and air gain per channel and energy, attenuation
//! `A = -ln((raw - dark) / (air - dark))`, and air re-calibration from empty-belt lines.
//!
//! Owns: [`Calibration`], the exact attenuation rule that the GPU shader mirrors
//! ([`attenuation`]), and [`AirTracker`]. Starved pixels (no signal above dark) read as
//! [`A_MAX`]; saturated pixels (at full scale) read as air; dead channels read as air and are
//! listed. No NaN and no infinity can leave this module.
//!
//! Must not import: egui, wgpu, tokio.

use super::scan::RawLine;

/// Largest attenuation reported (a starved pixel). `ln(65535)` is about 11.1, so no real
/// measurement of a 16-bit detector exceeds it.
pub const A_MAX: f32 = 12.0;
/// Signal above dark (ADC counts) below which a pixel is starved.
pub const STARVED_COUNTS: f32 = 1.0;
/// Air span (air - dark, ADC counts) below which a channel is dead.
pub const DEAD_SPAN: f32 = 64.0;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalibError {
    #[error("calibration needs at least one dark and one air line (got {dark} dark, {air} air)")]
    TooFewLines { dark: usize, air: usize },
    #[error("calibration lines have {got} channels, expected {expected}")]
    Width { expected: usize, got: usize },
    #[error(
        "{dead} of {channels} channels are dead (air within {DEAD_SPAN} counts of dark): check the beam and the detector"
    )]
    TooManyDead { dead: usize, channels: usize },
    #[error("calibration levels must be finite and within 0..=65535")]
    BadLevel,
}

/// Per-channel dark and air levels for both energies.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub dark_low: Vec<f32>,
    pub dark_high: Vec<f32>,
    pub air_low: Vec<f32>,
    pub air_high: Vec<f32>,
    /// Largest ADC code (saturation).
    pub full_scale: u16,
    /// Channels whose air span is below [`DEAD_SPAN`] in either energy.
    pub dead: Vec<u32>,
}

/// Attenuation of one sample: the rule shared with `shaders/prepare.wgsl`.
/// `ln_span` is `ln(air - dark)`, or a negative value for a dead channel.
#[inline]
pub fn attenuation(raw: u16, dark: f32, ln_span: f32, full_scale: u16) -> f32 {
    if ln_span < 0.0 || raw >= full_scale {
        return 0.0;
    }
    let s = raw as f32 - dark;
    if s < STARVED_COUNTS {
        return A_MAX;
    }
    (ln_span - s.ln()).clamp(0.0, A_MAX)
}

fn mean_of(lines: &[&RawLine], channels: usize, pick: impl Fn(&RawLine) -> &[u16]) -> Vec<f32> {
    let mut acc = vec![0f64; channels];
    for l in lines {
        for (a, &v) in acc.iter_mut().zip(pick(l)) {
            *a += v as f64;
        }
    }
    acc.iter().map(|a| (*a / lines.len() as f64) as f32).collect()
}

impl Calibration {
    /// Average dark (beam off) and air (beam on, empty belt) lines.
    pub fn from_lines(dark: &[&RawLine], air: &[&RawLine], full_scale: u16) -> Result<Self, CalibError> {
        if dark.is_empty() || air.is_empty() {
            return Err(CalibError::TooFewLines { dark: dark.len(), air: air.len() });
        }
        let channels = dark[0].low.len();
        for l in dark.iter().chain(air) {
            if l.low.len() != channels || l.high.len() != channels {
                return Err(CalibError::Width { expected: channels, got: l.low.len() });
            }
        }
        let mut c = Calibration {
            dark_low: mean_of(dark, channels, |l| &l.low),
            dark_high: mean_of(dark, channels, |l| &l.high),
            air_low: mean_of(air, channels, |l| &l.low),
            air_high: mean_of(air, channels, |l| &l.high),
            full_scale,
            dead: Vec::new(),
        };
        c.update_dead();
        if c.dead.len() * 2 > channels {
            return Err(CalibError::TooManyDead { dead: c.dead.len(), channels });
        }
        Ok(c)
    }

    /// A calibration from its four tables (as saved beside a scan or in the archive).
    pub fn from_tables(
        dark_low: Vec<f32>,
        dark_high: Vec<f32>,
        air_low: Vec<f32>,
        air_high: Vec<f32>,
        full_scale: u16,
    ) -> Result<Self, CalibError> {
        let channels = dark_low.len();
        for t in [&dark_high, &air_low, &air_high] {
            if t.len() != channels {
                return Err(CalibError::Width { expected: channels, got: t.len() });
            }
        }
        if channels == 0 {
            return Err(CalibError::TooFewLines { dark: 0, air: 0 });
        }
        let ok = |v: &f32| v.is_finite() && (0.0..=65535.0).contains(v);
        if ![&dark_low, &dark_high, &air_low, &air_high].iter().all(|t| t.iter().all(ok)) {
            return Err(CalibError::BadLevel);
        }
        let mut c = Calibration { dark_low, dark_high, air_low, air_high, full_scale, dead: Vec::new() };
        c.update_dead();
        if c.dead.len() * 2 > channels {
            return Err(CalibError::TooManyDead { dead: c.dead.len(), channels });
        }
        Ok(c)
    }

    fn update_dead(&mut self) {
        self.dead = (0..self.channels())
            .filter(|&i| {
                self.air_low[i] - self.dark_low[i] < DEAD_SPAN
                    || self.air_high[i] - self.dark_high[i] < DEAD_SPAN
            })
            .map(|i| i as u32)
            .collect();
    }

    pub fn channels(&self) -> usize {
        self.dark_low.len()
    }

    /// `ln(air - dark)` or -1 for a dead channel.
    fn ln_span(air: f32, dark: f32) -> f32 {
        let span = air - dark;
        if span < DEAD_SPAN { -1.0 } else { span.ln() }
    }

    /// Per channel `[dark_low, dark_high, ln_span_low, ln_span_high]`: the GPU's calibration table.
    pub fn table(&self) -> Vec<[f32; 4]> {
        (0..self.channels())
            .map(|i| {
                [
                    self.dark_low[i],
                    self.dark_high[i],
                    Self::ln_span(self.air_low[i], self.dark_low[i]),
                    Self::ln_span(self.air_high[i], self.dark_high[i]),
                ]
            })
            .collect()
    }

    /// `(A_low, A_high)` of a whole line (CPU; the table form is the reference).
    pub fn attenuate_line(&self, line: &RawLine) -> (Vec<f32>, Vec<f32>) {
        let t = self.table();
        let lo = line.low.iter().zip(&t).map(|(&r, c)| attenuation(r, c[0], c[2], self.full_scale));
        let hi = line.high.iter().zip(&t).map(|(&r, c)| attenuation(r, c[1], c[3], self.full_scale));
        (lo.collect(), hi.collect())
    }
}

/// Finds empty-belt lines while scanning and re-takes the air level from them, because tube
/// output and detector gain drift. A line is empty when its attenuation is flat: almost every
/// channel is within `tolerance` of the line's median (a uniform drift is what we want to learn,
/// an object is not).
#[derive(Clone, Debug)]
pub struct AirTracker {
    /// Weight of one empty line in the running air level.
    pub alpha: f32,
    /// Relative transmission deviation from the line median that marks a channel as covered.
    pub tolerance: f32,
    /// Fraction of channels allowed above the tolerance (noise, dead channels).
    pub max_covered_fraction: f32,
    /// Empty lines seen / used.
    pub empty_lines: u64,
    /// Scratch: the line's transmissions and the median's sample (reused, never reallocated).
    t_low: Vec<f32>,
    t_high: Vec<f32>,
    sample: Vec<f32>,
}

impl Default for AirTracker {
    fn default() -> Self {
        AirTracker {
            alpha: 0.05,
            tolerance: 0.04,
            max_covered_fraction: 0.005,
            empty_lines: 0,
            t_low: Vec::new(),
            t_high: Vec::new(),
            sample: Vec::new(),
        }
    }
}

impl AirTracker {
    /// Is this line of the belt empty (nothing in the beam)? Works on transmissions (no
    /// logarithms: it runs on every scanned line): each channel's `T` must be within
    /// `tolerance` (relative) of the line's median, which itself must be near air. Straight loops
    /// over slices into reused buffers, so they vectorise and allocate nothing.
    ///
    /// Most scanned lines have something in the beam, and the answer for them is found early
    /// without changing it: the median comes from every 8th channel, and when more than half of
    /// those are already below air the median is too (no selection needed); the channels are
    /// then counted in blocks, each block's transmissions computed only when the blocks before
    /// it left the line possibly empty.
    pub fn is_empty(&mut self, calib: &Calibration, line: &RawLine) -> bool {
        let n = calib.channels().min(line.low.len()).min(line.high.len());
        fn transmission(raw: u16, dark: f32, air: f32) -> f32 {
            let span = air - dark;
            // divided either way, then chosen: no branch, so the loops vectorise
            let t = (f32::from(raw) - dark) / span;
            if span < DEAD_SPAN { 1.0 } else { t }
        }
        fn transmissions(raw: &[u16], dark: &[f32], air: &[f32], out: &mut Vec<f32>) {
            let n = raw.len().min(dark.len()).min(air.len());
            out.resize(n, 0.0);
            let (raw, dark, air, out) = (&raw[..n], &dark[..n], &air[..n], &mut out[..n]);
            for i in 0..n {
                out[i] = transmission(raw[i], dark[i], air[i]);
            }
        }
        let c = calib;
        // The line's level from every 8th channel (no full sort). `sorted[mid]` is below x
        // exactly when more than `mid` of the samples are.
        let sampled = |raw: &[u16], dark: &[f32], air: &[f32], s: &mut Vec<f32>| {
            s.clear();
            s.extend((0..n).step_by(8).map(|i| transmission(raw[i], dark[i], air[i])));
        };
        let mid = n.div_ceil(8) / 2;
        let air_hi = (-0.25f32).exp();
        sampled(&line.high, &c.dark_high, &c.air_high, &mut self.sample);
        if self.sample.iter().filter(|&&t| t < air_hi).count() > mid {
            return false; // the whole width covered (the median is below air_hi)
        }
        let m_hi = *self.sample.select_nth_unstable_by(mid, f32::total_cmp).1;
        sampled(&line.low, &c.dark_low, &c.air_low, &mut self.sample);
        let m_lo = *self.sample.select_nth_unstable_by(mid, f32::total_cmp).1;
        if m_hi < air_hi || m_lo <= 0.0 {
            return false; // the whole width covered, or the beam is off
        }
        let tol = self.tolerance;
        let allowed = (self.max_covered_fraction * c.channels() as f32) as usize;
        let (r_lo, r_hi) = (1.0 / m_lo, 1.0 / m_hi);
        // Count in blocks so the loop vectorises, and stop at the first block over the limit
        // (something is in the beam).
        let mut covered = 0u32;
        for b in (0..n).step_by(256) {
            let e = (b + 256).min(n);
            transmissions(&line.low[b..e], &c.dark_low[b..e], &c.air_low[b..e], &mut self.t_low);
            transmissions(&line.high[b..e], &c.dark_high[b..e], &c.air_high[b..e], &mut self.t_high);
            let m = self.t_low.len().min(self.t_high.len());
            let (lo, hi) = (&self.t_low[..m], &self.t_high[..m]);
            for i in 0..m {
                covered += u32::from(((lo[i] * r_lo - 1.0).abs() > tol) | ((hi[i] * r_hi - 1.0).abs() > tol));
            }
            if covered as usize > allowed {
                return false;
            }
        }
        true
    }

    /// Feed a scanned line; returns true when it was used to update the air level.
    pub fn observe(&mut self, calib: &mut Calibration, line: &RawLine) -> bool {
        if line.low.len() != calib.channels() || !self.is_empty(calib, line) {
            return false;
        }
        let a = self.alpha;
        let fs = calib.full_scale;
        // One branch-free pass (it vectorises): saturated channels keep their air level; a
        // channel crossing the dead threshold asks for the dead list to be rebuilt.
        let n = calib.channels();
        let c = &mut *calib;
        let (al, ah) = (&mut c.air_low[..n], &mut c.air_high[..n]);
        let (dl, dh) = (&c.dark_low[..n], &c.dark_high[..n]);
        let (rl, rh) = (&line.low[..n], &line.high[..n]);
        let mut changed = 0u32;
        for i in 0..n {
            let ok = (rl[i] < fs) & (rh[i] < fs);
            let was = (al[i] - dl[i] < DEAD_SPAN) | (ah[i] - dh[i] < DEAD_SPAN);
            let (nl, nh) = (al[i] + a * (f32::from(rl[i]) - al[i]), ah[i] + a * (f32::from(rh[i]) - ah[i]));
            al[i] = if ok { nl } else { al[i] };
            ah[i] = if ok { nh } else { ah[i] };
            let now = (al[i] - dl[i] < DEAD_SPAN) | (ah[i] - dh[i] < DEAD_SPAN);
            changed |= u32::from(was ^ now);
        }
        let dead_changed = changed != 0;
        if dead_changed {
            calib.update_dead();
        }
        self.empty_lines += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scan::LineKind;

    fn line(v_lo: u16, v_hi: u16, n: usize) -> RawLine {
        RawLine { seq: 0, kind: LineKind::Scan, low: vec![v_lo; n], high: vec![v_hi; n] }
    }

    #[test]
    fn attenuation_edge_cases_are_finite() {
        let ln_span = (40000f32).ln();
        assert_eq!(attenuation(65535, 1000.0, ln_span, 65535), 0.0, "saturated reads as air");
        assert_eq!(attenuation(0, 1000.0, ln_span, 65535), A_MAX, "below dark is starved");
        assert_eq!(attenuation(1000, 1000.0, ln_span, 65535), A_MAX);
        assert_eq!(attenuation(5000, 1000.0, -1.0, 65535), 0.0, "dead channel");
        let a = attenuation(21000, 1000.0, ln_span, 65535);
        assert!((a - 2f32.ln()).abs() < 1e-6, "{a}");
        assert_eq!(attenuation(50000, 1000.0, ln_span, 65535), 0.0, "above air clamps to 0");
        for raw in [0u16, 1, 999, 1000, 1001, 41000, 65534, 65535] {
            for dark in [0.0, 1000.0, 70000.0] {
                for span in [-1.0, 0.0, 11.0] {
                    let a = attenuation(raw, dark, span, 65535);
                    assert!(a.is_finite() && (0.0..=A_MAX).contains(&a));
                }
            }
        }
    }

    #[test]
    fn calibration_averages_and_flags_dead_channels() {
        let d1 = line(1000, 1100, 4);
        let d2 = line(1002, 1102, 4);
        let mut a = line(41001, 51101, 4);
        a.low[2] = 1010; // dead channel
        let c = Calibration::from_lines(&[&d1, &d2], &[&a], 65535).unwrap();
        assert_eq!(c.dark_low, vec![1001.0; 4]);
        assert_eq!(c.dead, vec![2]);
        let (lo, hi) = c.attenuate_line(&line(21001, 26101, 4));
        assert!((lo[0] - 2f32.ln()).abs() < 1e-5 && (hi[0] - 2f32.ln()).abs() < 1e-5);
        assert_eq!(lo[2], 0.0);
        assert_eq!(
            Calibration::from_lines(&[], &[&a], 65535),
            Err(CalibError::TooFewLines { dark: 0, air: 1 })
        );
        let narrow = line(1, 1, 3);
        assert!(matches!(Calibration::from_lines(&[&d1], &[&narrow], 65535), Err(CalibError::Width { .. })));
        let all_dead = line(1000, 1100, 4);
        assert!(matches!(
            Calibration::from_lines(&[&d1], &[&all_dead], 65535),
            Err(CalibError::TooManyDead { .. })
        ));
    }

    #[test]
    fn air_tracker_follows_drift_and_ignores_objects() {
        let n = 400;
        let d = line(1000, 1000, n);
        let a = line(41000, 41000, n);
        let mut c = Calibration::from_lines(&[&d], &[&a], 65535).unwrap();
        let mut t = AirTracker::default();
        // tube output drops 3 %: empty lines read 0.03 attenuation until re-calibrated
        let drifted = line(39800, 39800, n);
        for _ in 0..200 {
            assert!(t.observe(&mut c, &drifted));
        }
        let (lo, _) = c.attenuate_line(&drifted);
        assert!(lo.iter().all(|v| *v < 0.002), "{}", lo[0]);
        // a line with an object in 10 % of channels is not air
        let mut obj = drifted.clone();
        for v in &mut obj.low[100..140] {
            *v = 20000;
        }
        let before = c.air_low.clone();
        assert!(!t.observe(&mut c, &obj));
        assert_eq!(before, c.air_low);
    }
}
