//! L1, the automatic level of central screening: the site's `[automatic]` section and the
//! verdict on one bag from the alarm aids that need no operator and no projected threat.
//!
//! A bag an agency screens automatically is cleared (the agency's release code, recorded as
//! automatic at level L1) only when every aid passes it; any alarm sends it to an operator (L2),
//! who is told why. The aids:
//! - **dense object**: pixels the high-energy beam did not penetrate (attenuation above the
//!   scanner's dense threshold, the desk's dense-object alert) hide whatever is behind them; a
//!   bag with at least `dense_pixels` of them is alarmed;
//! - **not seen whole**: rows lost before they reached the node, or a bag cut short, were never
//!   looked at by anyone, so they are not cleared by anyone either.
//!
//! Owns: the section and its checks, the dense-pixel count, the verdict. Pure: no clocks, no
//! broker, no files. Must not import: egui, wgpu, tokio, the hub.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::calib::attenuation;
use super::calib::{A_MAX, Calibration, STARVED_COUNTS};

/// Dense pixels in one bag that alarm, unless the site says otherwise (the desk's alert too).
pub const DENSE_PIXELS: usize = 16;

fn default_dense() -> usize {
    DENSE_PIXELS
}

/// The site's `[automatic]` section: which agencies' stations clear what the aids pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomaticConfig {
    /// Agencies that screen automatically first (each needs a release code).
    pub agencies: Vec<String>,
    /// Pixels the beam did not penetrate that make a bag an alarm.
    #[serde(default = "default_dense")]
    pub dense_pixels: usize,
}

impl AutomaticConfig {
    pub fn validate(&self, known: &dyn Fn(&str) -> bool) -> Result<(), String> {
        if self.agencies.is_empty() {
            return Err("[automatic] agencies: none listed (leave the section out for no L1)".into());
        }
        if let Some(a) = self.agencies.iter().find(|a| !known(a)) {
            return Err(format!("[automatic] agencies: unknown agency {a:?}"));
        }
        if !(1..=1_000_000).contains(&self.dense_pixels) {
            return Err(format!("[automatic] dense_pixels {}: 1 to 1000000", self.dense_pixels));
        }
        Ok(())
    }

    /// Whether `agency` screens automatically first.
    pub fn screens(&self, agency: &str) -> bool {
        self.agencies.iter().any(|a| a == agency)
    }
}

/// Why a bag goes to an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alarm {
    /// This many pixels the beam did not penetrate.
    Dense { pixels: usize },
    /// Rows lost before they reached the node.
    RowsLost { rows: usize },
    /// The bag was cut short (the scanner's bag end never came).
    CutShort,
    /// The scanner it came from is not one this station knows (no dense threshold to apply).
    UnknownScanner(String),
    /// Its scan or calibration could not be read here.
    Unreadable(String),
}

impl Alarm {
    pub fn en(&self) -> String {
        match self {
            Alarm::Dense { pixels } => format!("dense object ({pixels} px not penetrated)"),
            Alarm::RowsLost { rows } => format!("{rows} rows lost"),
            Alarm::CutShort => "bag cut short".into(),
            Alarm::UnknownScanner(p) => format!("unknown scanner profile {p:?}"),
            Alarm::Unreadable(why) => format!("scan not readable ({why})"),
        }
    }

    pub fn zh(&self) -> String {
        match self {
            Alarm::Dense { pixels } => format!("高密度物体（{pixels} 像素未穿透）"),
            Alarm::RowsLost { rows } => format!("丢失 {rows} 行"),
            Alarm::CutShort => "包裹图像不完整".into(),
            Alarm::UnknownScanner(p) => format!("未知扫描仪型号 {p:?}"),
            Alarm::Unreadable(why) => format!("扫描数据无法读取（{why}）"),
        }
    }
}

/// What the aids say of a bag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every aid passes it (the dense pixels found, under the limit).
    Clear { dense: usize },
    /// At least one aid alarms.
    Alarm(Vec<Alarm>),
}

impl Verdict {
    /// The verdict in a few words (English), for messages and the decision's reason.
    pub fn describe(&self) -> String {
        match self {
            Verdict::Clear { dense } => format!("L1 clear: no alarm ({dense} px not penetrated)"),
            Verdict::Alarm(a) => {
                format!("L1 alarm: {}", a.iter().map(Alarm::en).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

impl Verdict {
    /// [`Verdict::describe`] in Chinese.
    pub fn describe_zh(&self) -> String {
        match self {
            Verdict::Clear { dense } => format!("L1 自动放行：无报警（{dense} 像素未穿透）"),
            Verdict::Alarm(a) => {
                format!("L1 报警：{}", a.iter().map(Alarm::zh).collect::<Vec<_>>().join("，"))
            }
        }
    }
}

/// Pixels of `high` (high-energy samples, `channels` a line) the beam did not penetrate: their
/// attenuation under `cal` ([`attenuation`], the rule the GPU shares) is above `threshold`.
/// Lines listed in `skip` (placeholders for lost rows, not image) are not counted.
///
/// Counted without a logarithm per pixel: attenuation `ln(air - dark) - ln(raw - dark)` is above
/// `threshold` exactly when `raw - dark` is under `(air - dark) e^-threshold`, a limit per
/// channel; a starved sample is dense, a saturated one or a dead channel's never.
pub fn dense_pixels(
    high: &[u16],
    channels: usize,
    cal: &Calibration,
    threshold: f32,
    skip: &[usize],
) -> usize {
    if channels == 0 || threshold.is_nan() || threshold >= A_MAX {
        return 0;
    }
    // Per channel: dark, and the signal above dark under which a sample is dense (none: dead).
    let limits: Vec<(f32, f32)> = cal
        .table()
        .iter()
        .map(|c| {
            (c[1], if c[3] < 0.0 { f32::NEG_INFINITY } else { (c[3] - threshold).exp().max(STARVED_COUNTS) })
        })
        .collect();
    let full = cal.full_scale;
    high.chunks_exact(channels)
        .enumerate()
        .filter(|(i, _)| !skip.contains(i))
        .map(|(_, line)| {
            line.iter()
                .zip(&limits)
                .filter(|(raw, (dark, limit))| **raw < full && (**raw as f32 - dark) < *limit)
                .count()
        })
        .sum()
}

/// A bag as the aids see it.
pub struct BagImage<'a> {
    /// High-energy samples, a line after another.
    pub high: &'a [u16],
    pub channels: usize,
    pub missing_rows: &'a [usize],
    pub truncated: bool,
}

/// The aids' verdict on a bag; `dense_threshold` is its scanner's (none: unknown scanner).
pub fn screen(
    bag: &BagImage,
    cal: &Calibration,
    dense_threshold: Result<f32, String>,
    cfg: &AutomaticConfig,
) -> Verdict {
    let mut alarms = Vec::new();
    let mut dense = 0;
    match dense_threshold {
        Ok(thr) => {
            dense = dense_pixels(bag.high, bag.channels, cal, thr, bag.missing_rows);
            if dense >= cfg.dense_pixels {
                alarms.push(Alarm::Dense { pixels: dense });
            }
        }
        Err(profile) => alarms.push(Alarm::UnknownScanner(profile)),
    }
    if !bag.missing_rows.is_empty() {
        alarms.push(Alarm::RowsLost { rows: bag.missing_rows.len() });
    }
    if bag.truncated {
        alarms.push(Alarm::CutShort);
    }
    if alarms.is_empty() { Verdict::Clear { dense } } else { Verdict::Alarm(alarms) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CH: usize = 8;

    /// Dark 100, air 60000 on every channel, full scale 65535.
    fn cal() -> Calibration {
        let v = |x: f32| vec![x; CH];
        Calibration::from_tables(v(100.0), v(100.0), v(60_000.0), v(60_000.0), 65_535).unwrap()
    }

    fn cfg(dense: usize) -> AutomaticConfig {
        AutomaticConfig { agencies: vec!["quarantine".into()], dense_pixels: dense }
    }

    /// `lines` lines of air with `dense` samples (in line order) where nothing came through.
    fn bag(lines: usize, dense: usize) -> Vec<u16> {
        let mut high = vec![60_000u16; lines * CH];
        for s in high.iter_mut().take(dense) {
            *s = 100;
        }
        high
    }

    fn verdict(high: &[u16], missing: &[usize], truncated: bool, dense: usize) -> Verdict {
        let b = BagImage { high, channels: CH, missing_rows: missing, truncated };
        screen(&b, &cal(), Ok(5.3), &cfg(dense))
    }

    #[test]
    fn a_bag_is_cleared_only_under_the_sites_count_of_dense_pixels() {
        assert_eq!(verdict(&bag(10, 0), &[], false, 16), Verdict::Clear { dense: 0 });
        assert_eq!(verdict(&bag(10, 15), &[], false, 16), Verdict::Clear { dense: 15 });
        assert_eq!(verdict(&bag(10, 16), &[], false, 16), Verdict::Alarm(vec![Alarm::Dense { pixels: 16 }]));
        assert_eq!(verdict(&bag(10, 15), &[], false, 4), Verdict::Alarm(vec![Alarm::Dense { pixels: 15 }]));
        // Thick but penetrated (T = 1 %, A = 4.6): not dense.
        let mut thick = bag(10, 0);
        thick[..40].fill(100 + 599);
        assert_eq!(verdict(&thick, &[], false, 16), Verdict::Clear { dense: 0 });
    }

    #[test]
    fn the_count_without_logarithms_is_the_attenuation_rules_count() {
        use super::super::calib::attenuation;
        // Every code of a 12-bit ADC on channels of different dark, air and a dead one.
        let cal = Calibration::from_tables(
            vec![0.0, 100.0, 37.5, 200.0],
            vec![0.0, 100.0, 37.5, 200.0],
            vec![4000.0, 3000.0, 4095.0, 230.0],
            vec![4000.0, 3000.0, 4095.0, 230.0],
            4095,
        )
        .unwrap();
        let high: Vec<u16> = (0..4096u16).flat_map(|v| [v, v, v, v]).collect();
        let t = cal.table();
        for thr in [0.5, 2.0, 3.0, 5.3, 7.9, 11.9, 12.0] {
            let by_rule = high
                .chunks_exact(4)
                .flat_map(|l| l.iter().zip(&t))
                .filter(|(r, c)| attenuation(**r, c[1], c[3], cal.full_scale) > thr)
                .count();
            assert_eq!(dense_pixels(&high, 4, &cal, thr, &[]), by_rule, "threshold {thr}");
        }
    }

    #[test]
    fn what_nobody_saw_is_never_cleared() {
        // Lost rows are placeholders (zeros): not counted as dense, but an alarm of their own.
        let mut high = bag(10, 0);
        high[3 * CH..4 * CH].fill(0);
        assert_eq!(verdict(&high, &[3], false, 16), Verdict::Alarm(vec![Alarm::RowsLost { rows: 1 }]));
        assert_eq!(verdict(&bag(10, 0), &[], true, 16), Verdict::Alarm(vec![Alarm::CutShort]));
        let b = BagImage { high: &bag(10, 0), channels: CH, missing_rows: &[], truncated: false };
        let v = screen(&b, &cal(), Err("my-scanner".into()), &cfg(16));
        assert_eq!(v, Verdict::Alarm(vec![Alarm::UnknownScanner("my-scanner".into())]));
        assert!(v.describe().starts_with("L1 alarm: unknown scanner"), "{}", v.describe());
    }

    #[test]
    fn a_sites_automatic_level_is_checked_with_the_rest_of_the_site() {
        use super::super::inspection::InspectionConfig;
        let shipped = include_str!("../../hardware/sites/hub-line.toml");
        assert_eq!(InspectionConfig::from_toml(shipped).unwrap().automatic, None);
        let on = format!("{shipped}\n[automatic]\nagencies = [\"quarantine\"]\ndense_pixels = 40\n");
        let on = InspectionConfig::from_toml(&on).unwrap().automatic.unwrap();
        assert!(on.screens("quarantine") && !on.screens("customs") && on.dense_pixels == 40);
        let bad = format!("{shipped}\n[automatic]\nagencies = [\"police\"]\n");
        let e = InspectionConfig::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("unknown agency \"police\""), "{e}");
    }

    #[test]
    fn the_section_names_known_agencies_and_a_sane_count() {
        let known = |a: &str| a == "customs" || a == "quarantine";
        assert!(cfg(16).validate(&known).is_ok());
        assert!(cfg(0).validate(&known).unwrap_err().contains("dense_pixels 0"));
        let other = AutomaticConfig { agencies: vec!["police".into()], dense_pixels: 16 };
        assert!(other.validate(&known).unwrap_err().contains("unknown agency \"police\""));
        let none = AutomaticConfig { agencies: vec![], dense_pixels: 16 };
        assert!(none.validate(&known).is_err());
        let parsed: AutomaticConfig = toml::from_str("agencies = [\"customs\"]").unwrap();
        assert_eq!(parsed.dense_pixels, DENSE_PIXELS);
        assert!(parsed.screens("customs") && !parsed.screens("quarantine"));
    }
}
