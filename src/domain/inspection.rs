//! Inspection by two agencies of one bag: agencies and their decision codes and annotation
//! categories (configuration with defaults), annotations with per-agency ownership, disposals with
//! their history, and the joint outcome of the bag.
//!
//! Owns: the rules of "inspect together at the front, dispose separately at the back"
//! (前台共同查验、后台分别处置): only an operator of an agency decides or annotates for it; a changed
//! decision needs a reason; a bag is released only when every agency released it, waits while any
//! agency is undecided, and one joint opening serves every agency that wants it opened
//! (一次开箱、联合查验). History is append-only: every decision and who made it stays visible.
//!
//! Must not import: egui, wgpu, tokio. Time is passed in (milliseconds since the Unix epoch).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A text in both UI languages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub en: String,
    pub zh: String,
}

fn label(en: &str, zh: &str) -> Label {
    Label { en: en.into(), zh: zh.into() }
}

/// What a decision means for the bag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispositionKind {
    /// Nothing to do: the agency lets the bag go.
    Release,
    /// Open the bag for a physical inspection.
    Open,
    /// The agency keeps the bag or goods (detain, seize, treat, destroy, return).
    Hold,
    /// Hand over to another authority or a supervisor.
    Refer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionCode {
    pub code: String,
    pub label: Label,
    pub kind: DispositionKind,
    /// The key that records it on this agency's screens, pressed alone: a digit (`"1"`, as on
    /// a numeric keypad), a letter, or `"F13"` to `"F24"` (a console's extra keys). None: Ctrl
    /// and the code's position (Ctrl+1 for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Whether `key` may be a decision key: a digit, a letter other than the console's own (M, the
/// magnifier), or F13 to F24 (F1 to F12 are the image functions).
pub fn decision_key_allowed(key: &str) -> bool {
    let one = |c: char| c.is_ascii_digit() || (c.is_ascii_uppercase() && c != 'M');
    let mut chars = key.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => one(c),
        _ => {
            key.strip_prefix('F').and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| (13..=24).contains(&n))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryDef {
    pub id: String,
    pub label: Label,
}

/// Operator roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customs,
    Quarantine,
    /// Airport or port security (the third screen of 一机三屏).
    Security,
    Supervisor,
    Trainer,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "customs" => Some(Role::Customs),
            "quarantine" => Some(Role::Quarantine),
            "security" => Some(Role::Security),
            "supervisor" => Some(Role::Supervisor),
            "trainer" => Some(Role::Trainer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyConfig {
    pub id: String,
    pub name: Label,
    /// The role an operator needs to decide and annotate for this agency.
    pub role: Role,
    /// The colour of its marks and outlines, `[r, g, b]` (none: red, blue, amber by position).
    #[serde(default)]
    pub colour: Option<[u8; 3]>,
    pub decisions: Vec<DecisionCode>,
    pub categories: Vec<CategoryDef>,
}

impl AgencyConfig {
    pub fn decision(&self, code: &str) -> Option<&DecisionCode> {
        self.decisions.iter().find(|d| d.code == code)
    }

    /// The agency's first code that releases the bag.
    pub fn release_code(&self) -> Option<&DecisionCode> {
        self.decisions.iter().find(|d| d.kind == DispositionKind::Release)
    }
}

/// Screens (one agency each) a workstation drives.
pub const MAX_AGENCIES: usize = 4;

/// Who an automatic decision is recorded under: no operator account can have this id.
pub const AUTO_OPERATOR: &str = "(auto)";

/// How a site reaches a bag's disposal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionPolicy {
    /// Passenger lanes: an agency that has not intervened this many seconds after the bag was
    /// scanned releases it automatically, recorded as automatic (operator [`AUTO_OPERATOR`]),
    /// never as an operator's decision. `None`: every agency's decision is needed.
    #[serde(default)]
    pub auto_release_secs: Option<u64>,
    /// Blind mode: an agency sees the others' decisions only after recording its own.
    #[serde(default)]
    pub blind: bool,
}

/// Who may move the belt (stop, forward, reverse) from a screen: by default any operator logged
/// in at a live screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeltPolicy {
    /// The belt is moved from the screens at all (false: only from the scanner's own panel).
    #[serde(default = "yes")]
    pub from_screens: bool,
    /// Only from these agencies' screens (empty: every agency's).
    #[serde(default)]
    pub agencies: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for BeltPolicy {
    fn default() -> Self {
        BeltPolicy { from_screens: true, agencies: Vec::new() }
    }
}

impl BeltPolicy {
    fn is_default(&self) -> bool {
        *self == BeltPolicy::default()
    }

    /// Whether an operator at `agency`'s screen may move the belt.
    pub fn allows(&self, agency: &str) -> bool {
        self.from_screens && (self.agencies.is_empty() || self.agencies.iter().any(|a| a == agency))
    }
}

/// One screen of the workstation: the agency it works for, and whether it is a back-office
/// screen (后台), which works from the archive only (no live image).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenConfig {
    /// The screen's name in scripts and file names (default: the agency's id).
    #[serde(default)]
    pub id: Option<String>,
    pub agency: String,
    /// Shown after the agency's name (for example "Back office 后台").
    #[serde(default)]
    pub name: Option<Label>,
    #[serde(default)]
    pub back_office: bool,
}

/// Agencies of the workstation, its screens, and how they reach a disposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionConfig {
    #[serde(default)]
    pub policy: DecisionPolicy,
    /// Who may move the belt from a screen.
    #[serde(default, skip_serializing_if = "BeltPolicy::is_default")]
    pub belt: BeltPolicy,
    pub agencies: Vec<AgencyConfig>,
    /// The screens, 1 to 4 (none given: one live screen per agency, in the agencies' order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screens: Vec<ScreenConfig>,
    /// A hub line's sorter: lanes and deadlines (none: no sorter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorter: Option<super::sorting::SorterConfig>,
    /// Central screening's automatic level (L1): which agencies' stations clear what the alarm
    /// aids pass (none: an operator sees every bag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<super::automatic::AutomaticConfig>,
}

impl Default for InspectionConfig {
    /// Customs (海关) and inspection and quarantine (检验检疫), with their usual codes.
    fn default() -> Self {
        use DispositionKind::*;
        let code = |c: &str, en: &str, zh: &str, kind| DecisionCode {
            code: c.into(),
            label: label(en, zh),
            kind,
            key: None,
        };
        let cat = |id: &str, en: &str, zh: &str| CategoryDef { id: id.into(), label: label(en, zh) };
        InspectionConfig {
            policy: DecisionPolicy::default(),
            belt: BeltPolicy::default(),
            screens: Vec::new(),
            sorter: None,
            automatic: None,
            agencies: vec![
                AgencyConfig {
                    id: "customs".into(),
                    name: label("Customs", "海关"),
                    role: Role::Customs,
                    colour: Some([230, 40, 40]),
                    decisions: vec![
                        code("release", "Release", "放行", Release),
                        code("open", "Open for inspection", "开箱查验", Open),
                        code("detain", "Detain / seize", "扣留/查扣", Hold),
                        code("refer", "Refer", "移交", Refer),
                    ],
                    categories: vec![
                        cat("weapon", "Weapon", "武器"),
                        cat("drugs", "Drugs", "毒品"),
                        cat("currency", "Currency", "货币"),
                        cat("contraband", "Contraband", "违禁品"),
                        cat("undeclared", "Undeclared goods", "未申报物品"),
                        cat("other", "Other", "其他"),
                    ],
                },
                AgencyConfig {
                    id: "quarantine".into(),
                    name: label("Quarantine", "检验检疫"),
                    role: Role::Quarantine,
                    colour: Some([0, 170, 230]),
                    decisions: vec![
                        code("release", "Release", "放行", Release),
                        code("open", "Open for inspection", "开箱查验", Open),
                        code("treat", "Treat", "检疫处理", Hold),
                        code("destroy", "Destroy", "销毁", Hold),
                        code("return", "Return", "退运", Hold),
                        code("refer", "Refer", "移交", Refer),
                    ],
                    categories: vec![
                        cat("fruit_veg", "Fruit and vegetables", "水果蔬菜"),
                        cat("meat", "Meat and animal products", "肉类及动物产品"),
                        cat("plants", "Plants and seeds", "植物及种子"),
                        cat("soil", "Soil", "土壤"),
                        cat("live_animals", "Live animals", "活体动物"),
                        cat("biological", "Biological material", "生物材料"),
                        cat("other", "Other", "其他"),
                    ],
                },
            ],
        }
    }
}

impl InspectionConfig {
    /// The joint state from each agency's current decision code (an agency missing from
    /// `codes` is undecided): pending while any agency is undecided; then hold before open
    /// before refer before release (the strongest disposition governs).
    pub fn joint_state(&self, codes: &BTreeMap<String, String>) -> OutcomeState {
        let waiting: Vec<String> =
            self.agencies.iter().filter(|a| !codes.contains_key(&a.id)).map(|a| a.id.clone()).collect();
        if !waiting.is_empty() {
            return OutcomeState::Pending { waiting_for: waiting };
        }
        let by = |kind: DispositionKind| -> Vec<String> {
            self.agencies
                .iter()
                .filter(|a| a.decision(&codes[&a.id]).map(|c| c.kind) == Some(kind))
                .map(|a| a.id.clone())
                .collect()
        };
        let (hold, open, refer) =
            (by(DispositionKind::Hold), by(DispositionKind::Open), by(DispositionKind::Refer));
        if !hold.is_empty() {
            OutcomeState::Held { by: hold }
        } else if !open.is_empty() {
            let joint = open.len() > 1;
            OutcomeState::Opened { by: open, joint }
        } else if !refer.is_empty() {
            OutcomeState::Referred { by: refer }
        } else {
            OutcomeState::Released
        }
    }

    pub fn agency(&self, id: &str) -> Option<&AgencyConfig> {
        self.agencies.iter().find(|a| a.id == id)
    }

    /// The colour of `agency`'s marks and outlines: its own, else red, blue, amber by position.
    pub fn colour(&self, agency: &str) -> [u8; 3] {
        let at = self.agencies.iter().position(|a| a.id == agency);
        match (at.and_then(|i| self.agencies[i].colour), at) {
            (Some(c), _) => c,
            (None, Some(0)) => [230, 40, 40],
            (None, Some(1)) => [0, 170, 230],
            _ => [240, 170, 0],
        }
    }

    /// The screens: as configured, or one live screen per agency.
    pub fn screens(&self) -> Vec<ScreenConfig> {
        if !self.screens.is_empty() {
            return self.screens.clone();
        }
        self.agencies
            .iter()
            .map(|a| ScreenConfig { id: None, agency: a.id.clone(), name: None, back_office: false })
            .collect()
    }

    /// Each screen's id (scripts, file names): its own, else its agency's, numbered when an
    /// agency has more than one screen without an id.
    pub fn screen_ids(&self) -> Vec<String> {
        let screens = self.screens();
        let mut ids: Vec<String> = Vec::new();
        for s in &screens {
            let base = s.id.clone().unwrap_or_else(|| s.agency.clone());
            let mut id = base.clone();
            let mut n = 2;
            while ids.contains(&id) {
                id = format!("{base}-{n}");
                n += 1;
            }
            ids.push(id);
        }
        ids
    }

    /// A site's agencies and policy from its TOML file (`hardware/sites/`), checked; an error
    /// names the line.
    pub fn from_toml(text: &str) -> Result<InspectionConfig, InspectionError> {
        let cfg: InspectionConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let at = line.map_or(String::new(), |l| format!("line {l}: "));
            InspectionError::Config(format!("{at}{}", e.message()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check a configuration read from a file.
    pub fn validate(&self) -> Result<(), InspectionError> {
        let bad = |m: String| Err(InspectionError::Config(m));
        if self.agencies.is_empty() || self.agencies.len() > MAX_AGENCIES {
            return bad(format!(
                "{} agencies: a workstation has 1 to {MAX_AGENCIES} screens",
                self.agencies.len()
            ));
        }
        let screens = self.screens();
        if screens.is_empty() || screens.len() > MAX_AGENCIES {
            return bad(format!("{} screens: a workstation has 1 to {MAX_AGENCIES}", screens.len()));
        }
        for s in &screens {
            if self.agency(&s.agency).is_none() {
                return bad(format!("screen of unknown agency {:?}", s.agency));
            }
            if let Some(id) = &s.id
                && (id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            {
                return bad(format!("screen id {id:?}: letters, digits, - and _ only"));
            }
        }
        for a in &self.agencies {
            if !screens.iter().any(|s| s.agency == a.id) {
                return bad(format!("agency {} has no screen: its decisions could never be made", a.id));
            }
        }
        let ids = self.screen_ids();
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return bad(format!("screen id {id} twice"));
            }
        }
        if let Some(Err(e)) = self.sorter.as_ref().map(|s| s.validate()) {
            return bad(e);
        }
        if let Some(Err(e)) = self.automatic.as_ref().map(|a| a.validate(&|id| self.agency(id).is_some())) {
            return bad(e);
        }
        if let Some(a) = self.belt.agencies.iter().find(|a| self.agency(a).is_none()) {
            return bad(format!("[belt] agencies: unknown agency {a:?}"));
        }
        if let Some(s) = self.policy.auto_release_secs
            && !(1..=3600).contains(&s)
        {
            return bad(format!("auto_release_secs {s}: 1 to 3600"));
        }
        for (i, a) in self.agencies.iter().enumerate() {
            if self.agencies[..i].iter().any(|b| b.id == a.id) {
                return bad(format!("agency {} twice", a.id));
            }
            if a.decisions.is_empty() || a.categories.is_empty() {
                return bad(format!("agency {} needs decision codes and categories", a.id));
            }
            for (k, d) in a.decisions.iter().enumerate() {
                let Some(key) = &d.key else { continue };
                if !decision_key_allowed(key) {
                    return bad(format!(
                        "agency {} decision {}: key {key:?} (a digit, a letter but M, or F13 to F24)",
                        a.id, d.code
                    ));
                }
                if a.decisions[..k].iter().any(|e| e.key.as_ref() == Some(key)) {
                    return bad(format!("agency {}: key {key:?} for two decisions", a.id));
                }
            }
            if !a.decisions.iter().any(|d| d.kind == DispositionKind::Release) {
                return bad(format!("agency {} has no release code", a.id));
            }
            for (j, d) in a.decisions.iter().enumerate() {
                if a.decisions[..j].iter().any(|e| e.code == d.code) {
                    return bad(format!("agency {}: code {} twice", a.id, d.code));
                }
            }
        }
        Ok(())
    }
}

/// Someone logged in at a station.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
}

impl Operator {
    pub fn may_act_for(&self, agency: &AgencyConfig) -> bool {
        self.roles.contains(&agency.role)
    }
}

/// One recorded decision (never edited; a change is a new decision with a reason).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub agency: String,
    pub code: String,
    pub operator: String,
    pub at_ms: u64,
    /// Why the previous decision of this agency was changed.
    pub reason: Option<String>,
}

/// Where on the scan a mark is: `x` along the belt (line index), `y` across (channel index).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    Rect { x0: f32, y0: f32, x1: f32, y1: f32 },
    Ellipse { cx: f32, cy: f32, rx: f32, ry: f32 },
    Polygon { points: Vec<[f32; 2]> },
    Arrow { from: [f32; 2], to: [f32; 2] },
    Text { at: [f32; 2] },
}

/// Most vertices a polygon may have.
pub const MAX_POLYGON_POINTS: usize = 256;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

impl Shape {
    fn points(&self) -> Vec<f32> {
        match self {
            Shape::Rect { x0, y0, x1, y1 } => vec![*x0, *y0, *x1, *y1],
            Shape::Ellipse { cx, cy, rx, ry } => vec![*cx, *cy, *rx, *ry],
            Shape::Polygon { points } => points.iter().flatten().copied().collect(),
            Shape::Arrow { from, to } => vec![from[0], from[1], to[0], to[1]],
            Shape::Text { at } => at.to_vec(),
        }
    }

    /// The outline as polygon points (an ellipse as 32 of them, an arrow as its two ends, a
    /// note as an 8-pixel square around its point).
    pub fn outline(&self) -> Vec<[f32; 2]> {
        match self {
            Shape::Rect { x0, y0, x1, y1 } => vec![[*x0, *y0], [*x1, *y0], [*x1, *y1], [*x0, *y1]],
            Shape::Ellipse { cx, cy, rx, ry } => (0..32)
                .map(|i| {
                    let a = i as f32 / 32.0 * std::f32::consts::TAU;
                    [cx + rx * a.cos(), cy + ry * a.sin()]
                })
                .collect(),
            Shape::Polygon { points } => points.clone(),
            Shape::Arrow { from, to } => vec![*from, *to],
            Shape::Text { at } => {
                let [x, y] = *at;
                vec![[x - 4.0, y - 4.0], [x + 4.0, y - 4.0], [x + 4.0, y + 4.0], [x - 4.0, y + 4.0]]
            }
        }
    }

    /// `(x0, y0, x1, y1)` around the outline.
    pub fn bounds(&self) -> (f32, f32, f32, f32) {
        self.outline().iter().fold((f32::MAX, f32::MAX, f32::MIN, f32::MIN), |(a, b, c, d), p| {
            (a.min(p[0]), b.min(p[1]), c.max(p[0]), d.max(p[1]))
        })
    }

    /// The same shape moved by `(dx, dy)`.
    pub fn translated(&self, dx: f32, dy: f32) -> Shape {
        let t = |p: [f32; 2]| [p[0] + dx, p[1] + dy];
        match self {
            Shape::Rect { x0, y0, x1, y1 } => {
                Shape::Rect { x0: x0 + dx, y0: y0 + dy, x1: x1 + dx, y1: y1 + dy }
            }
            Shape::Ellipse { cx, cy, rx, ry } => {
                Shape::Ellipse { cx: cx + dx, cy: cy + dy, rx: *rx, ry: *ry }
            }
            Shape::Polygon { points } => Shape::Polygon { points: points.iter().map(|p| t(*p)).collect() },
            Shape::Arrow { from, to } => Shape::Arrow { from: t(*from), to: t(*to) },
            Shape::Text { at } => Shape::Text { at: t(*at) },
        }
    }

    /// A box or ellipse with the corner (or rim point) that was at `from` dragged to `to`; the
    /// opposite corner (the centre) stays. Other shapes only move. `None` when it would vanish.
    pub fn resized(&self, from: [f32; 2], to: [f32; 2]) -> Option<Shape> {
        let s = match self {
            Shape::Rect { x0, y0, x1, y1 } => {
                // The corner nearest `from` follows the pointer.
                let (fx, fy) = (
                    (from[0] - x0).abs() < (from[0] - x1).abs(),
                    (from[1] - y0).abs() < (from[1] - y1).abs(),
                );
                let (mut a, mut b, mut c, mut d) = (*x0, *y0, *x1, *y1);
                if fx {
                    a = to[0]
                } else {
                    c = to[0]
                }
                if fy {
                    b = to[1]
                } else {
                    d = to[1]
                }
                Shape::Rect { x0: a.min(c), y0: b.min(d), x1: a.max(c), y1: b.max(d) }
            }
            Shape::Ellipse { cx, cy, .. } => {
                Shape::Ellipse { cx: *cx, cy: *cy, rx: (to[0] - cx).abs(), ry: (to[1] - cy).abs() }
            }
            other => other.translated(to[0] - from[0], to[1] - from[1]),
        };
        s.validate().ok().map(|_| s)
    }

    pub fn validate(&self) -> Result<(), InspectionError> {
        let bad = |m: &str| Err(InspectionError::BadShape(m.into()));
        if self.points().iter().any(|v| !v.is_finite()) {
            return bad("coordinates must be finite");
        }
        match self {
            Shape::Rect { x0, y0, x1, y1 } if x0 == x1 || y0 == y1 => bad("empty rectangle"),
            Shape::Ellipse { rx, ry, .. } if *rx <= 0.0 || *ry <= 0.0 => bad("empty ellipse"),
            Shape::Polygon { points } if points.len() < 3 => bad("a polygon needs three points"),
            Shape::Polygon { points } if points.len() > MAX_POLYGON_POINTS => bad("too many points"),
            Shape::Arrow { from, to } if from == to => bad("an arrow needs two distinct ends"),
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub id: u64,
    pub agency: String,
    pub operator: String,
    pub shape: Shape,
    pub category: String,
    pub note: String,
    pub created_ms: u64,
    pub edited_ms: Option<u64>,
}

impl Annotation {
    /// A mark as made (never edited yet). No rule is checked here: [`BagRecord::annotate`] does.
    pub fn new(
        id: u64,
        agency: &str,
        operator: &str,
        shape: Shape,
        category: &str,
        note: &str,
        created_ms: u64,
    ) -> Self {
        Annotation {
            id,
            agency: agency.into(),
            operator: operator.into(),
            shape,
            category: category.into(),
            note: note.into(),
            created_ms,
            edited_ms: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InspectionError {
    #[error("unknown agency {0:?}")]
    UnknownAgency(String),
    #[error("{agency} has no decision code {code:?}")]
    UnknownCode { agency: String, code: String },
    #[error("{agency} has no annotation category {category:?}")]
    UnknownCategory { agency: String, category: String },
    #[error("operator {operator} may not act for {agency}")]
    NotPermitted { operator: String, agency: String },
    #[error("{agency} already decided {code:?}; changing it needs a reason")]
    ReasonRequired { agency: String, code: String },
    #[error("{agency} has already recorded {code:?}")]
    Unchanged { agency: String, code: String },
    #[error("annotation {id} belongs to {owner}; only {owner} may change it")]
    NotOwner { id: u64, owner: String },
    #[error("no annotation {0}")]
    NoSuchAnnotation(u64),
    #[error("bad shape: {0}")]
    BadShape(String),
    #[error("note longer than {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
    #[error("inspection configuration: {0}")]
    Config(String),
    #[error("no agency has asked for this bag to be opened")]
    NoOpening,
    #[error("a finding needs a count of 1 to 9999 (not {0})")]
    BadCount(u32),
    #[error("at most {MAX_FOUND_ITEMS} kinds of item")]
    TooManyItems,
    #[error("at most {MAX_PHOTOS} photos of one bag")]
    TooManyPhotos,
}

/// The joint state of a bag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OutcomeState {
    /// Some agency has not decided yet: the bag waits.
    Pending { waiting_for: Vec<String> },
    /// Every agency released it.
    Released,
    /// Opened once for every agency that asked (joint when more than one did).
    Opened { by: Vec<String>, joint: bool },
    /// Kept by these agencies.
    Held { by: Vec<String> },
    /// Handed over by these agencies.
    Referred { by: Vec<String> },
}

/// The outcome and each agency's current decision (`None`: undecided).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub state: OutcomeState,
    pub decisions: Vec<(String, Option<Decision>)>,
}

/// One kind of thing found when the bag was opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundItem {
    /// One of the agency's mark categories.
    pub category: String,
    pub count: u32,
    #[serde(default)]
    pub note: String,
}

/// What one agency found at the opening (a later record of the same agency supersedes it; every
/// one stays in the history).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    pub agency: String,
    pub operator: String,
    pub at_ms: u64,
    /// Empty: nothing found.
    pub items: Vec<FoundItem>,
    /// What was done with what was found (quarantine treatment, seizure receipt, ...).
    #[serde(default)]
    pub treatment: Option<String>,
}

/// Items one agency may record at one opening.
pub const MAX_FOUND_ITEMS: usize = 50;

/// Photos one bag may carry, all agencies together.
pub const MAX_PHOTOS: usize = 40;

/// A photo taken at the opening (a tablet's camera), kept with the bag: the record names it by
/// its SHA-256; the archive keeps its bytes, checked to be an image before they are taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub agency: String,
    pub operator: String,
    pub at_ms: u64,
    /// `image/jpeg` or `image/png`, as the bytes decoded (never as the sender said).
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// The one opening of a bag: asked for by these agencies, attended by every agency, closed when
/// every agency has recorded its findings (一次开箱、联合查验).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    pub asked_by: Vec<String>,
    /// Every agency and its findings in force (`None`: not recorded yet).
    pub results: Vec<(String, Option<Findings>)>,
    pub closed: bool,
}

/// A bag under inspection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BagRecord {
    pub id: u64,
    /// Parcel barcode or baggage tag read upstream, when the scanner sends one.
    pub item_id: Option<String>,
    /// Every decision ever recorded, in order.
    pub decisions: Vec<Decision>,
    pub annotations: Vec<Annotation>,
    /// Every agency's findings at the opening, in order.
    #[serde(default)]
    pub findings: Vec<Findings>,
    /// Photos taken at the opening, in order.
    #[serde(default)]
    pub photos: Vec<Photo>,
    next_annotation: u64,
}

impl BagRecord {
    pub fn new(id: u64, item_id: Option<String>) -> Self {
        BagRecord { id, item_id, ..Default::default() }
    }

    /// A record as the archive kept it. `last_annotation_id`: the largest mark id ever given on
    /// this bag, deleted marks included, so a new mark never reuses a deleted one's id.
    pub fn restore(
        id: u64,
        item_id: Option<String>,
        decisions: Vec<Decision>,
        annotations: Vec<Annotation>,
        last_annotation_id: u64,
    ) -> Self {
        let next_annotation = annotations.iter().map(|a| a.id).fold(last_annotation_id, u64::max);
        BagRecord { id, item_id, decisions, annotations, next_annotation, ..Default::default() }
    }

    /// The largest mark id given so far on this bag (deleted marks included).
    pub fn last_annotation_id(&self) -> u64 {
        self.next_annotation
    }

    /// Mark ids up to `last` are taken (by marks still being committed elsewhere): the next
    /// mark gets a later one.
    pub fn reserve_annotation_ids(&mut self, last: u64) {
        self.next_annotation = self.next_annotation.max(last);
    }

    fn agency<'a>(
        &self,
        cfg: &'a InspectionConfig,
        agency: &str,
    ) -> Result<&'a AgencyConfig, InspectionError> {
        cfg.agency(agency).ok_or_else(|| InspectionError::UnknownAgency(agency.into()))
    }

    fn check_operator(op: &Operator, a: &AgencyConfig) -> Result<(), InspectionError> {
        if op.may_act_for(a) {
            Ok(())
        } else {
            Err(InspectionError::NotPermitted { operator: op.id.clone(), agency: a.id.clone() })
        }
    }

    /// The agency's decision in force.
    pub fn current(&self, agency: &str) -> Option<&Decision> {
        self.decisions.iter().rev().find(|d| d.agency == agency)
    }

    /// Record `code` for `agency`. A first decision needs no reason; a change does.
    pub fn decide(
        &mut self,
        cfg: &InspectionConfig,
        agency: &str,
        code: &str,
        operator: &Operator,
        at_ms: u64,
        reason: Option<&str>,
    ) -> Result<&Decision, InspectionError> {
        let a = self.agency(cfg, agency)?;
        Self::check_operator(operator, a)?;
        if a.decision(code).is_none() {
            return Err(InspectionError::UnknownCode { agency: agency.into(), code: code.into() });
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if let Some(cur) = self.current(agency) {
            if cur.code == code {
                return Err(InspectionError::Unchanged { agency: agency.into(), code: code.into() });
            }
            if reason.is_none() {
                return Err(InspectionError::ReasonRequired {
                    agency: agency.into(),
                    code: cur.code.clone(),
                });
            }
        }
        self.decisions.push(Decision {
            agency: agency.into(),
            code: code.into(),
            operator: operator.id.clone(),
            at_ms,
            reason: reason.map(str::to_owned),
        });
        Ok(self.decisions.last().expect("just pushed"))
    }

    /// The site's automatic release for `agency` (no operator intervened in time): recorded
    /// under [`AUTO_OPERATOR`] with the reason, only while the agency has no decision.
    pub fn auto_release(
        &mut self,
        cfg: &InspectionConfig,
        agency: &str,
        after_secs: u64,
        at_ms: u64,
    ) -> Result<&Decision, InspectionError> {
        let a = self.agency(cfg, agency)?;
        let code = a
            .release_code()
            .ok_or_else(|| InspectionError::Config(format!("{agency} has no release code")))?;
        if let Some(cur) = self.current(agency) {
            return Err(InspectionError::Unchanged { agency: agency.into(), code: cur.code.clone() });
        }
        self.decisions.push(Decision {
            agency: agency.into(),
            code: code.code.clone(),
            operator: AUTO_OPERATOR.into(),
            at_ms,
            reason: Some(format!("automatic release: no intervention within {after_secs} s")),
        });
        Ok(self.decisions.last().expect("just pushed"))
    }

    /// The opening, once any agency's decision in force asks for one: every agency is called
    /// to it, and it is closed when every agency has recorded its findings.
    pub fn opening(&self, cfg: &InspectionConfig) -> Option<Opening> {
        let asked_by: Vec<String> = cfg
            .agencies
            .iter()
            .filter(|a| {
                self.current(&a.id)
                    .and_then(|d| a.decision(&d.code))
                    .is_some_and(|c| c.kind == DispositionKind::Open)
            })
            .map(|a| a.id.clone())
            .collect();
        if asked_by.is_empty() {
            return None;
        }
        let results: Vec<(String, Option<Findings>)> =
            cfg.agencies.iter().map(|a| (a.id.clone(), self.findings_of(&a.id).cloned())).collect();
        let closed = results.iter().all(|(_, f)| f.is_some());
        Some(Opening { asked_by, results, closed })
    }

    /// `agency`'s findings in force: its latest record (earlier ones stay in the history).
    pub fn findings_of(&self, agency: &str) -> Option<&Findings> {
        self.findings.iter().rev().find(|f| f.agency == agency)
    }

    /// The agency, where `operator` may act for it at this bag's opening (there is one).
    fn at_opening<'a>(
        &self,
        cfg: &'a InspectionConfig,
        agency: &str,
        operator: &Operator,
    ) -> Result<&'a AgencyConfig, InspectionError> {
        let a = self.agency(cfg, agency)?;
        Self::check_operator(operator, a)?;
        if self.opening(cfg).is_none() {
            return Err(InspectionError::NoOpening);
        }
        Ok(a)
    }

    /// Adds a photo taken at the opening by `operator` for `agency`. The same photo sent twice
    /// (same bytes) is one photo: the first is kept and returned.
    pub fn add_photo(
        &mut self,
        cfg: &InspectionConfig,
        agency: &str,
        operator: &Operator,
        photo: Photo,
    ) -> Result<&Photo, InspectionError> {
        self.at_opening(cfg, agency, operator)?;
        if let Some(i) = self.photos.iter().position(|p| p.sha256 == photo.sha256) {
            return Ok(&self.photos[i]);
        }
        if self.photos.len() >= MAX_PHOTOS {
            return Err(InspectionError::TooManyPhotos);
        }
        self.photos.push(Photo { agency: agency.to_owned(), operator: operator.id.clone(), ..photo });
        Ok(self.photos.last().expect("just pushed"))
    }

    /// Record `agency`'s findings at the opening (empty `items`: nothing found).
    #[allow(clippy::too_many_arguments)]
    pub fn record_findings(
        &mut self,
        cfg: &InspectionConfig,
        agency: &str,
        operator: &Operator,
        items: Vec<FoundItem>,
        treatment: Option<&str>,
        at_ms: u64,
    ) -> Result<&Findings, InspectionError> {
        let a = self.at_opening(cfg, agency, operator)?;
        if items.len() > MAX_FOUND_ITEMS {
            return Err(InspectionError::TooManyItems);
        }
        for it in &items {
            if !a.categories.iter().any(|c| c.id == it.category) {
                return Err(InspectionError::UnknownCategory {
                    agency: a.id.clone(),
                    category: it.category.clone(),
                });
            }
            if !(1..=9999).contains(&it.count) {
                return Err(InspectionError::BadCount(it.count));
            }
            if it.note.chars().count() > MAX_NOTE_CHARS {
                return Err(InspectionError::NoteTooLong);
            }
        }
        let treatment = treatment.map(str::trim).filter(|t| !t.is_empty());
        if treatment.is_some_and(|t| t.chars().count() > MAX_NOTE_CHARS) {
            return Err(InspectionError::NoteTooLong);
        }
        self.findings.push(Findings {
            agency: agency.into(),
            operator: operator.id.clone(),
            at_ms,
            items,
            treatment: treatment.map(str::to_owned),
        });
        Ok(self.findings.last().expect("just pushed"))
    }

    /// The joint outcome: pending while any agency is undecided; then hold before open before
    /// refer before release (the strongest disposition governs; every decision stays listed).
    pub fn outcome(&self, cfg: &InspectionConfig) -> Outcome {
        let decisions: Vec<(String, Option<Decision>)> =
            cfg.agencies.iter().map(|a| (a.id.clone(), self.current(&a.id).cloned())).collect();
        let codes: BTreeMap<String, String> =
            decisions.iter().filter_map(|(a, d)| Some((a.clone(), d.as_ref()?.code.clone()))).collect();
        Outcome { state: cfg.joint_state(&codes), decisions }
    }

    /// Add a mark for `agency`; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn annotate(
        &mut self,
        cfg: &InspectionConfig,
        agency: &str,
        operator: &Operator,
        shape: Shape,
        category: &str,
        note: &str,
        at_ms: u64,
    ) -> Result<u64, InspectionError> {
        let a = self.agency(cfg, agency)?;
        Self::check_operator(operator, a)?;
        Self::check_content(a, &shape, category, note)?;
        self.next_annotation += 1;
        let id = self.next_annotation;
        self.annotations.push(Annotation::new(id, agency, &operator.id, shape, category, note, at_ms));
        Ok(id)
    }

    fn check_content(
        a: &AgencyConfig,
        shape: &Shape,
        category: &str,
        note: &str,
    ) -> Result<(), InspectionError> {
        shape.validate()?;
        if !a.categories.iter().any(|c| c.id == category) {
            return Err(InspectionError::UnknownCategory { agency: a.id.clone(), category: category.into() });
        }
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(InspectionError::NoteTooLong);
        }
        Ok(())
    }

    fn owned_mut(
        &mut self,
        cfg: &InspectionConfig,
        id: u64,
        operator: &Operator,
    ) -> Result<&mut Annotation, InspectionError> {
        let ann =
            self.annotations.iter().find(|a| a.id == id).ok_or(InspectionError::NoSuchAnnotation(id))?;
        let a = self.agency(cfg, &ann.agency)?;
        if !operator.may_act_for(a) {
            return Err(InspectionError::NotOwner { id, owner: ann.agency.clone() });
        }
        Ok(self.annotations.iter_mut().find(|a| a.id == id).expect("found above"))
    }

    /// Change a mark: only an operator of the agency that made it may.
    #[allow(clippy::too_many_arguments)]
    pub fn edit_annotation(
        &mut self,
        cfg: &InspectionConfig,
        id: u64,
        operator: &Operator,
        shape: Shape,
        category: &str,
        note: &str,
        at_ms: u64,
    ) -> Result<(), InspectionError> {
        let owner = self
            .annotations
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.agency.clone())
            .ok_or(InspectionError::NoSuchAnnotation(id))?;
        let a = self.agency(cfg, &owner)?.clone();
        let ann = self.owned_mut(cfg, id, operator)?;
        Self::check_content(&a, &shape, category, note)?;
        ann.shape = shape;
        ann.category = category.into();
        ann.note = note.into();
        ann.edited_ms = Some(at_ms);
        Ok(())
    }

    /// Remove a mark: only an operator of the agency that made it may.
    pub fn delete_annotation(
        &mut self,
        cfg: &InspectionConfig,
        id: u64,
        operator: &Operator,
    ) -> Result<Annotation, InspectionError> {
        self.owned_mut(cfg, id, operator)?;
        let pos = self.annotations.iter().position(|a| a.id == id).expect("checked");
        Ok(self.annotations.remove(pos))
    }

    pub fn annotations_of<'a>(&'a self, agency: &'a str) -> impl Iterator<Item = &'a Annotation> + 'a {
        self.annotations.iter().filter(move |a| a.agency == agency)
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    #[test]
    fn shapes_move_and_resize_and_never_vanish() {
        let r = Shape::Rect { x0: 10.0, y0: 20.0, x1: 30.0, y1: 60.0 };
        assert_eq!(r.translated(5.0, -5.0), Shape::Rect { x0: 15.0, y0: 15.0, x1: 35.0, y1: 55.0 });
        assert_eq!(r.bounds(), (10.0, 20.0, 30.0, 60.0));
        // The far corner dragged: the near one stays.
        assert_eq!(
            r.resized([29.0, 59.0], [50.0, 70.0]),
            Some(Shape::Rect { x0: 10.0, y0: 20.0, x1: 50.0, y1: 70.0 })
        );
        // Dragged past the opposite corner: still a proper box.
        assert_eq!(
            r.resized([30.0, 60.0], [0.0, 0.0]),
            Some(Shape::Rect { x0: 0.0, y0: 0.0, x1: 10.0, y1: 20.0 })
        );
        assert_eq!(r.resized([30.0, 60.0], [10.0, 70.0]), None, "a box of no width");
        let e = Shape::Ellipse { cx: 0.0, cy: 0.0, rx: 5.0, ry: 5.0 };
        assert_eq!(
            e.resized([5.0, 0.0], [8.0, -3.0]),
            Some(Shape::Ellipse { cx: 0.0, cy: 0.0, rx: 8.0, ry: 3.0 })
        );
        assert_eq!(e.outline().len(), 32);
        let a = Shape::Arrow { from: [0.0, 0.0], to: [4.0, 4.0] };
        assert_eq!(a.resized([1.0, 1.0], [2.0, 3.0]), Some(a.translated(1.0, 2.0)), "arrows only move");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: &str, roles: &[Role]) -> Operator {
        Operator { id: id.into(), name: id.into(), roles: roles.to_vec() }
    }

    fn cfg() -> InspectionConfig {
        InspectionConfig::default()
    }

    #[test]
    fn decision_keys_are_checked_when_a_site_is_loaded() {
        for ok in ["1", "0", "A", "Z", "F13", "F24"] {
            assert!(decision_key_allowed(ok), "{ok}");
        }
        for bad in ["", "M", "F1", "F12", "F25", "a", "Space", "Escape", "11", "F0"] {
            assert!(!decision_key_allowed(bad), "{bad}");
        }
        let mut c = cfg();
        c.agencies[0].decisions[0].key = Some("1".into());
        c.agencies[0].decisions[1].key = Some("2".into());
        // Another agency may use the same keys on its own screens.
        c.agencies[1].decisions[0].key = Some("1".into());
        c.validate().unwrap();
        c.agencies[0].decisions[1].key = Some("1".into());
        assert!(c.validate().unwrap_err().to_string().contains("two decisions"));
        c.agencies[0].decisions[1].key = Some("F5".into());
        assert!(c.validate().unwrap_err().to_string().contains("F13 to F24"));
        // The shipped passenger lane puts them on the numeric keypad.
        let lane =
            InspectionConfig::from_toml(include_str!("../../hardware/sites/passenger-lane.toml")).unwrap();
        assert_eq!(lane.agencies[0].decision("open").unwrap().key.as_deref(), Some("2"));
    }

    #[test]
    fn default_configuration_is_valid_and_bilingual() {
        let c = cfg();
        c.validate().unwrap();
        let q = c.agency("quarantine").unwrap();
        assert_eq!(q.decision("treat").unwrap().label.zh, "检疫处理");
        assert_eq!(c.agency("customs").unwrap().name.zh, "海关");
        let mut broken = c.clone();
        broken.agencies[0].decisions.retain(|d| d.kind != DispositionKind::Release);
        assert!(broken.validate().is_err());
        let toml_text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<InspectionConfig>(&toml_text).unwrap(), c);
    }

    #[test]
    fn a_bag_waits_until_both_decide_and_is_released_only_when_both_release() {
        let (c, cu, qa) = (cfg(), op("c1", &[Role::Customs]), op("q1", &[Role::Quarantine]));
        let mut bag = BagRecord::new(1, Some("TAG123".into()));
        assert_eq!(
            bag.outcome(&c).state,
            OutcomeState::Pending { waiting_for: vec!["customs".into(), "quarantine".into()] }
        );
        bag.decide(&c, "customs", "release", &cu, 10, None).unwrap();
        assert_eq!(bag.outcome(&c).state, OutcomeState::Pending { waiting_for: vec!["quarantine".into()] });
        bag.decide(&c, "quarantine", "release", &qa, 20, None).unwrap();
        let o = bag.outcome(&c);
        assert_eq!(o.state, OutcomeState::Released);
        assert_eq!(o.decisions[0].1.as_ref().unwrap().operator, "c1");
        assert_eq!(o.decisions[1].1.as_ref().unwrap().operator, "q1");
    }

    #[test]
    fn both_wanting_to_open_is_one_joint_opening_and_hold_governs() {
        let (c, cu, qa) = (cfg(), op("c1", &[Role::Customs]), op("q1", &[Role::Quarantine]));
        let mut bag = BagRecord::new(2, None);
        bag.decide(&c, "customs", "open", &cu, 1, None).unwrap();
        bag.decide(&c, "quarantine", "open", &qa, 2, None).unwrap();
        assert_eq!(
            bag.outcome(&c).state,
            OutcomeState::Opened { by: vec!["customs".into(), "quarantine".into()], joint: true }
        );
        // quarantine changes its mind after opening: destroy the fruit; needs a reason
        assert_eq!(
            bag.decide(&c, "quarantine", "destroy", &qa, 3, None).unwrap_err(),
            InspectionError::ReasonRequired { agency: "quarantine".into(), code: "open".into() }
        );
        bag.decide(&c, "quarantine", "destroy", &qa, 3, Some("  fresh mangoes found ")).unwrap();
        assert_eq!(bag.outcome(&c).state, OutcomeState::Held { by: vec!["quarantine".into()] });
        assert_eq!(bag.decisions.len(), 3, "history keeps every decision");
        assert_eq!(bag.current("quarantine").unwrap().reason.as_deref(), Some("fresh mangoes found"));
        let mut one = BagRecord::new(3, None);
        one.decide(&c, "customs", "release", &cu, 1, None).unwrap();
        one.decide(&c, "quarantine", "open", &qa, 2, None).unwrap();
        assert_eq!(
            one.outcome(&c).state,
            OutcomeState::Opened { by: vec!["quarantine".into()], joint: false }
        );
        let mut r = BagRecord::new(4, None);
        r.decide(&c, "customs", "refer", &cu, 1, None).unwrap();
        r.decide(&c, "quarantine", "release", &qa, 2, None).unwrap();
        assert_eq!(r.outcome(&c).state, OutcomeState::Referred { by: vec!["customs".into()] });
    }

    #[test]
    fn nobody_decides_for_the_other_agency() {
        let (c, cu) = (cfg(), op("c1", &[Role::Customs]));
        let mut bag = BagRecord::new(5, None);
        assert_eq!(
            bag.decide(&c, "quarantine", "release", &cu, 1, None).unwrap_err(),
            InspectionError::NotPermitted { operator: "c1".into(), agency: "quarantine".into() }
        );
        let sup = op("s1", &[Role::Supervisor]);
        assert!(bag.decide(&c, "customs", "release", &sup, 1, None).is_err(), "a supervisor is not customs");
        assert!(matches!(
            bag.decide(&c, "customs", "treat", &cu, 1, None),
            Err(InspectionError::UnknownCode { .. })
        ));
        assert!(matches!(
            bag.decide(&c, "navy", "release", &cu, 1, None),
            Err(InspectionError::UnknownAgency(_))
        ));
        bag.decide(&c, "customs", "release", &cu, 1, None).unwrap();
        assert!(matches!(
            bag.decide(&c, "customs", "release", &cu, 2, Some("again")),
            Err(InspectionError::Unchanged { .. })
        ));
        assert!(bag.decisions.len() == 1);
    }

    #[test]
    fn marks_belong_to_their_agency() {
        let (c, cu, qa) = (cfg(), op("c1", &[Role::Customs]), op("q1", &[Role::Quarantine]));
        let mut bag = BagRecord::new(6, None);
        let rect = Shape::Rect { x0: 10.0, y0: 20.0, x1: 110.0, y1: 90.0 };
        let id = bag.annotate(&c, "customs", &cu, rect.clone(), "weapon", "knife-like", 5).unwrap();
        assert!(matches!(
            bag.annotate(&c, "customs", &cu, rect.clone(), "fruit_veg", "", 5),
            Err(InspectionError::UnknownCategory { .. })
        ));
        assert!(matches!(
            bag.annotate(&c, "customs", &qa, rect.clone(), "weapon", "", 5),
            Err(InspectionError::NotPermitted { .. })
        ));
        let q = bag
            .annotate(
                &c,
                "quarantine",
                &qa,
                Shape::Ellipse { cx: 5.0, cy: 5.0, rx: 3.0, ry: 2.0 },
                "fruit_veg",
                "apples",
                6,
            )
            .unwrap();
        assert_ne!(id, q);
        assert_eq!(
            bag.delete_annotation(&c, id, &qa).unwrap_err(),
            InspectionError::NotOwner { id, owner: "customs".into() }
        );
        assert!(bag.edit_annotation(&c, id, &qa, rect.clone(), "weapon", "", 7).is_err());
        bag.edit_annotation(
            &c,
            id,
            &cu,
            Shape::Arrow { from: [0.0, 0.0], to: [5.0, 5.0] },
            "other",
            "moved",
            8,
        )
        .unwrap();
        assert_eq!(bag.annotations_of("customs").next().unwrap().edited_ms, Some(8));
        bag.delete_annotation(&c, id, &cu).unwrap();
        assert_eq!(bag.annotations.len(), 1);
        assert_eq!(bag.delete_annotation(&c, id, &cu).unwrap_err(), InspectionError::NoSuchAnnotation(id));
        for bad in [
            Shape::Rect { x0: 1.0, y0: 1.0, x1: 1.0, y1: 5.0 },
            Shape::Polygon { points: vec![[0.0, 0.0], [1.0, 1.0]] },
            Shape::Ellipse { cx: 0.0, cy: 0.0, rx: f32::NAN, ry: 1.0 },
            Shape::Polygon { points: vec![[0.0, 0.0]; MAX_POLYGON_POINTS + 1] },
        ] {
            assert!(bag.annotate(&c, "customs", &cu, bad, "other", "", 9).is_err());
        }
        assert_eq!(
            bag.annotate(&c, "customs", &cu, rect, "other", &"x".repeat(MAX_NOTE_CHARS + 1), 9),
            Err(InspectionError::NoteTooLong)
        );
    }
}

#[cfg(test)]
mod site_tests {
    use super::*;

    const TWO: &str = include_str!("../../hardware/sites/two-screens.toml");
    const LANE: &str = include_str!("../../hardware/sites/passenger-lane.toml");
    const THREE: &str = include_str!("../../hardware/sites/three-screens.toml");

    #[test]
    fn the_shipped_site_files_load_and_the_two_screen_one_is_the_default() {
        assert_eq!(InspectionConfig::from_toml(TWO).unwrap(), InspectionConfig::default());
        let lane = InspectionConfig::from_toml(LANE).unwrap();
        assert_eq!(lane.policy, DecisionPolicy { auto_release_secs: Some(20), blind: true });
        let three = InspectionConfig::from_toml(THREE).unwrap();
        let ids: Vec<&str> = three.agencies.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["customs", "quarantine", "security"]);
        assert_eq!(three.agencies[2].role, Role::Security);
    }

    #[test]
    fn a_bad_site_file_is_refused_naming_its_line() {
        let typo = TWO.replacen("kind = \"open\"", "kind = \"opne\"", 1);
        let line = typo.lines().position(|l| l.contains("opne")).unwrap() + 1;
        let e = InspectionConfig::from_toml(&typo).unwrap_err().to_string();
        assert!(e.contains(&format!("line {line}:")) && e.contains("opne"), "{e}");
        let unknown = format!("[policy]\nauto_release = 5\n{TWO}");
        let e = InspectionConfig::from_toml(&unknown).unwrap_err().to_string();
        // An unknown key is placed at the table that holds it.
        assert!(e.contains("line 1:") && e.contains("unknown field `auto_release`"), "{e}");
        let zero = format!("[policy]\nauto_release_secs = 0\n{TWO}");
        assert!(InspectionConfig::from_toml(&zero).unwrap_err().to_string().contains("1 to 3600"));
        let mut five = InspectionConfig::from_toml(THREE).unwrap();
        five.agencies.extend(five.agencies.clone());
        assert!(five.validate().unwrap_err().to_string().contains("1 to 4 screens"));
    }

    #[test]
    fn an_automatic_release_is_recorded_as_such_and_never_overrides_an_agency() {
        let cfg = InspectionConfig::default();
        let mut b = BagRecord::new(1, None);
        let c = Operator { id: "c1".into(), name: "c".into(), roles: vec![Role::Customs] };
        b.decide(&cfg, "customs", "open", &c, 5, None).unwrap();
        assert!(matches!(b.auto_release(&cfg, "customs", 20, 9), Err(InspectionError::Unchanged { .. })));
        let d = b.auto_release(&cfg, "quarantine", 20, 9).unwrap().clone();
        assert_eq!((d.code.as_str(), d.operator.as_str()), ("release", AUTO_OPERATOR));
        assert!(d.reason.unwrap().contains("within 20 s"));
        assert_eq!(b.outcome(&cfg).state, OutcomeState::Opened { by: vec!["customs".into()], joint: false });
    }
}

#[cfg(test)]
mod screen_tests {
    use super::*;

    #[test]
    fn customs_alone_on_a_front_and_a_back_office_screen() {
        let cfg = InspectionConfig::from_toml(include_str!("../../hardware/sites/customs-front-back.toml"))
            .unwrap();
        let screens = cfg.screens();
        assert_eq!(screens.len(), 2);
        assert!(screens.iter().all(|s| s.agency == "customs"));
        assert_eq!(screens.iter().map(|s| s.back_office).collect::<Vec<_>>(), [false, true]);
        assert_eq!(cfg.screen_ids(), ["customs", "customs-back"]);
        // Default screens: one per agency, named after it.
        assert_eq!(InspectionConfig::default().screen_ids(), ["customs", "quarantine"]);
    }

    #[test]
    fn screens_must_name_known_agencies_and_leave_none_without_a_screen() {
        let mut cfg = InspectionConfig {
            screens: vec![ScreenConfig {
                id: None,
                agency: "customs".into(),
                name: None,
                back_office: false,
            }],
            ..Default::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("quarantine has no screen"));
        cfg.screens.push(ScreenConfig { id: None, agency: "police".into(), name: None, back_office: false });
        assert!(cfg.validate().unwrap_err().to_string().contains("unknown agency \"police\""));
        cfg.screens[1].agency = "quarantine".into();
        cfg.validate().unwrap();
        cfg.screens.extend(cfg.screens.clone());
        cfg.screens.push(cfg.screens[0].clone());
        assert!(cfg.validate().unwrap_err().to_string().contains("5 screens"));
    }
}

#[cfg(test)]
mod opening_tests {
    use super::*;

    fn op(id: &str, role: Role) -> Operator {
        Operator { id: id.into(), name: id.into(), roles: vec![role] }
    }

    #[test]
    fn one_agency_asking_calls_every_agency_and_the_opening_closes_when_all_have_found() {
        let cfg = InspectionConfig::default();
        let (c, q) = (op("c1", Role::Customs), op("q1", Role::Quarantine));
        let mut b = BagRecord::new(1, None);
        let fruit = || vec![FoundItem { category: "fruit_veg".into(), count: 3, note: "apples".into() }];
        assert_eq!(
            b.record_findings(&cfg, "quarantine", &q, fruit(), None, 1),
            Err(InspectionError::NoOpening)
        );
        // Only customs wants it opened; quarantine has not even decided: both are called.
        b.decide(&cfg, "customs", "open", &c, 2, None).unwrap();
        let o = b.opening(&cfg).unwrap();
        assert_eq!(o.asked_by, ["customs"]);
        assert_eq!(o.results.len(), 2);
        assert!(!o.closed);
        // Findings are the agency's own: categories of that agency, sane counts, its operator.
        let weapon = vec![FoundItem { category: "weapon".into(), count: 1, note: String::new() }];
        assert!(matches!(
            b.record_findings(&cfg, "quarantine", &q, weapon, None, 3),
            Err(InspectionError::UnknownCategory { .. })
        ));
        let zero = vec![FoundItem { category: "fruit_veg".into(), count: 0, note: String::new() }];
        assert_eq!(
            b.record_findings(&cfg, "quarantine", &q, zero, None, 3),
            Err(InspectionError::BadCount(0))
        );
        assert!(matches!(
            b.record_findings(&cfg, "quarantine", &c, fruit(), None, 3),
            Err(InspectionError::NotPermitted { .. })
        ));
        b.record_findings(&cfg, "customs", &c, Vec::new(), None, 4).unwrap();
        assert!(!b.opening(&cfg).unwrap().closed, "quarantine's findings are still awaited");
        b.record_findings(&cfg, "quarantine", &q, fruit(), Some(" destroyed "), 5).unwrap();
        let o = b.opening(&cfg).unwrap();
        assert!(o.closed);
        let qf = o.results[1].1.as_ref().unwrap();
        assert_eq!((qf.items[0].count, qf.treatment.as_deref()), (3, Some("destroyed")));
    }

    #[test]
    fn photos_need_an_opening_and_the_agencys_operator_and_one_photo_sent_twice_is_one() {
        let cfg = InspectionConfig::default();
        let (c, q) = (op("c1", Role::Customs), op("q1", Role::Quarantine));
        let mut b = BagRecord::new(1, None);
        let photo = |n: u8| Photo {
            agency: "whatever the sender says".into(),
            operator: "anyone".into(),
            at_ms: 7,
            mime: "image/jpeg".into(),
            width: 4,
            height: 3,
            size: 100,
            sha256: format!("{n:064x}"),
        };
        assert_eq!(b.add_photo(&cfg, "customs", &c, photo(1)), Err(InspectionError::NoOpening));
        b.decide(&cfg, "customs", "open", &c, 2, None).unwrap();
        assert!(matches!(
            b.add_photo(&cfg, "quarantine", &c, photo(1)),
            Err(InspectionError::NotPermitted { .. })
        ));
        let p = b.add_photo(&cfg, "quarantine", &q, photo(1)).unwrap().clone();
        assert_eq!(
            (p.agency.as_str(), p.operator.as_str()),
            ("quarantine", "q1"),
            "who took it is the record's"
        );
        // The same bytes again (a retried upload): still one photo, the first kept.
        let again = b.add_photo(&cfg, "customs", &c, photo(1)).unwrap();
        assert_eq!(again.operator, "q1");
        assert_eq!(b.photos.len(), 1);
        for n in 2..=MAX_PHOTOS as u8 {
            b.add_photo(&cfg, "customs", &c, photo(n)).unwrap();
        }
        assert_eq!(b.add_photo(&cfg, "customs", &c, photo(200)), Err(InspectionError::TooManyPhotos));
        assert_eq!(b.photos.len(), MAX_PHOTOS);
    }
}
