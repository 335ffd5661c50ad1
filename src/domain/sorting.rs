//! Parcels and the sorter: which lane a decided parcel takes, and by when the sorter must know.
//! A parcel leaves the scanner and reaches the divert point a fixed time later (the belt's
//! length over its speed: a deadline per line); the lane follows the joint outcome of every
//! agency's decision (released, opened, held, referred), and a parcel still undecided shortly
//! before its deadline goes to the manual lane.
//!
//! Owns: the site's `[sorter]` section (deadlines, margin, lanes, the subject the sorter's
//! gateway listens under) and the rule from outcome to lane. Pure: no clocks, no broker (the hub's sorter task applies it). Must not import: egui,
//! wgpu, tokio, the hub.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::inspection::OutcomeState;

fn default_margin() -> u64 {
    1000
}

/// Where lanes go unless the site names another subject: `twinspect.sort.<line>.<node>.<bag>`.
pub const DEFAULT_SUBJECT: &str = "twinspect.sort";

/// The hub's own subjects, which a sorter's may not reach into (nor they into it).
const HUB_SUBJECTS: [&str; 2] = ["twinspect.bag", "twinspect.decision"];

/// Whether one subject root holds the other (token by token).
fn nested(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    a.iter().zip(&b).all(|(x, y)| x == y)
}

/// The lane (the sorter's own name for it: a chute, an exit number) for each outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lanes {
    pub released: String,
    pub opened: String,
    pub held: String,
    pub referred: String,
    /// Undecided at the deadline (and what the sorter does by itself with a parcel it has no
    /// message for).
    pub manual: String,
}

/// The site's `[sorter]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SorterConfig {
    /// Milliseconds from a parcel leaving the scanner to the divert point, on lines not listed.
    pub deadline_ms: u64,
    /// The same per line, where lines differ.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lines: BTreeMap<String, u64>,
    /// The lane goes out at the latest this long before the deadline (the manual lane, when an
    /// agency has not decided by then), so the sorter has it in time.
    #[serde(default = "default_margin")]
    pub margin_ms: u64,
    /// The subject root the sorter's gateway listens under (`<subject>.<line>.<node>.<bag>`;
    /// default [`DEFAULT_SUBJECT`]): NATS tokens of letters, digits, - or _, joined by dots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub lanes: Lanes,
}

impl SorterConfig {
    /// The subject root of the lane messages.
    pub fn subject(&self) -> &str {
        self.subject.as_deref().unwrap_or(DEFAULT_SUBJECT)
    }

    /// The deadline on `line`, from the parcel's end at the scanner.
    pub fn deadline_ms(&self, line: &str) -> u64 {
        self.lines.get(line).copied().unwrap_or(self.deadline_ms)
    }

    /// The lane for an outcome; none while it is pending.
    pub fn lane(&self, state: &OutcomeState) -> Option<&str> {
        Some(match state {
            OutcomeState::Pending { .. } => return None,
            OutcomeState::Released => &self.lanes.released,
            OutcomeState::Opened { .. } => &self.lanes.opened,
            OutcomeState::Held { .. } => &self.lanes.held,
            OutcomeState::Referred { .. } => &self.lanes.referred,
        })
    }

    pub fn validate(&self) -> Result<(), String> {
        let every = std::iter::once(("(every line)", self.deadline_ms));
        for (line, d) in every.chain(self.lines.iter().map(|(l, d)| (l.as_str(), *d))) {
            if !(500..=3_600_000).contains(&d) {
                return Err(format!("[sorter] deadline of {line}: {d} ms, from 500 ms to an hour"));
            }
            if self.margin_ms >= d {
                return Err(format!(
                    "[sorter] margin_ms {} is not under {line}'s deadline {d} ms",
                    self.margin_ms
                ));
            }
        }
        if let Some(subject) = &self.subject {
            let tokens: Vec<&str> = subject.split('.').collect();
            let ok = subject.len() <= 128
                && tokens.len() <= 8
                && tokens.iter().all(|t| {
                    !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
                && tokens[0] != "_INBOX";
            if !ok {
                return Err(format!(
                    "[sorter] subject = {subject:?}: NATS tokens of letters, digits, - or _ joined by dots \
                     (no wildcards, at most 8 tokens)"
                ));
            }
            if let Some(hub) = HUB_SUBJECTS.iter().find(|h| nested(subject, h)) {
                return Err(format!("[sorter] subject = {subject:?} overlaps the hub's own {hub}.>"));
            }
        }
        let l = &self.lanes;
        for (what, lane) in [
            ("released", &l.released),
            ("opened", &l.opened),
            ("held", &l.held),
            ("referred", &l.referred),
            ("manual", &l.manual),
        ] {
            let ok = (1..=32).contains(&lane.len())
                && lane.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(format!("[sorter.lanes] {what} = {lane:?}: 1 to 32 letters, digits, - or _"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SorterConfig {
        SorterConfig {
            deadline_ms: 20_000,
            lines: BTreeMap::from([("L2".to_string(), 8_000)]),
            margin_ms: 1_000,
            subject: None,
            lanes: Lanes {
                released: "1".into(),
                opened: "2".into(),
                held: "3".into(),
                referred: "4".into(),
                manual: "9".into(),
            },
        }
    }

    #[test]
    fn each_outcome_has_its_lane_and_a_pending_one_none() {
        let c = cfg();
        assert_eq!(c.lane(&OutcomeState::Released), Some("1"));
        assert_eq!(c.lane(&OutcomeState::Opened { by: vec!["customs".into()], joint: false }), Some("2"));
        assert_eq!(c.lane(&OutcomeState::Held { by: vec![] }), Some("3"));
        assert_eq!(c.lane(&OutcomeState::Referred { by: vec![] }), Some("4"));
        assert_eq!(c.lane(&OutcomeState::Pending { waiting_for: vec!["customs".into()] }), None);
        assert_eq!((c.deadline_ms("L1"), c.deadline_ms("L2")), (20_000, 8_000));
    }

    #[test]
    fn the_shipped_hub_line_site_has_a_sorter() {
        let site = crate::domain::inspection::InspectionConfig::from_toml(include_str!(
            "../../hardware/sites/hub-line.toml"
        ))
        .unwrap();
        let s = site.sorter.unwrap();
        assert_eq!((s.deadline_ms("L1"), s.deadline_ms("L2"), s.lanes.manual.as_str()), (12_000, 8_000, "9"));
    }

    #[test]
    fn absurd_deadlines_margins_and_lane_names_are_refused() {
        cfg().validate().unwrap();
        let mut c = cfg();
        c.margin_ms = 8_000;
        assert!(c.validate().unwrap_err().contains("L2"));
        let mut c = cfg();
        c.deadline_ms = 10;
        assert!(c.validate().unwrap_err().contains("500 ms"));
        let mut c = cfg();
        c.lanes.manual = "a b".into();
        assert!(c.validate().unwrap_err().contains("manual"));
        // The site's own subject: a plain root, clear of the hub's subjects.
        let mut c = cfg();
        assert_eq!(c.subject(), "twinspect.sort");
        c.subject = Some("hall2.sorter-A".into());
        c.validate().unwrap();
        assert_eq!(c.subject(), "hall2.sorter-A");
        for bad in ["hall2.*", "hall2.>", "hall2..x", "", "_INBOX.x", "a b", "a.b.c.d.e.f.g.h.i"] {
            c.subject = Some(bad.into());
            assert!(c.validate().unwrap_err().contains("NATS tokens"), "{bad:?}");
        }
        for bad in ["twinspect", "twinspect.bag", "twinspect.decision.customs"] {
            c.subject = Some(bad.into());
            assert!(c.validate().unwrap_err().contains("overlaps"), "{bad:?}");
        }
    }
}
