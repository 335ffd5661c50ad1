//! The disposal side of a station: log in, see the bag on screen and its tag, record the agency's
//! decision (with a reason when changing it), and see the joint outcome and every decision on
//! both screens; a strip of recent bags with their state, click to recall.
//!
//! Owns: per-screen login and form state ([`StationPanel`]) and the state both screens share
//! ([`Desk`]). All rules come from the domain (`inspection`, `operators`); nothing here decides.
//! Drawn without the GPU, so it is tested with egui_kittest by its labels.

use eframe::egui;

use super::i18n::Lang;
use super::marks::{MarkTool, Tool};
use crate::archiver::Archiver;
use crate::assemble::BagSpan;
use crate::domain::inspection::{
    AgencyConfig, Annotation, BagRecord, Decision, InspectionConfig, InspectionError, Operator, OutcomeState,
    Role,
};
use crate::domain::operators::{LoginError, OperatorStore};
use crate::domain::session::{Session, SessionEvent, SessionPolicy};
use crate::store::MarkChange;

/// Bags kept for recall on screen.
pub const RECENT_BAGS: usize = 50;
/// Bags of earlier runs shown after a restart (from the archive).
pub const EARLIER_BAGS: usize = 20;
/// The desk's key of a bag recalled from the archive: this bit plus its archive id (live bags
/// are keyed by the scanner's bag number, which never comes near it).
pub const ARCHIVED_KEY: u64 = 1 << 62;

/// A bag of an earlier run: not in the live image (its span starts nowhere on screen).
pub fn is_archived(span: &BagSpan) -> bool {
    span.bag & ARCHIVED_KEY != 0
}

/// What both screens share: configuration, accounts, and the bags with their records.
pub struct Desk {
    pub config: InspectionConfig,
    pub operators: OperatorStore,
    /// Oldest first.
    pub bags: Vec<(BagSpan, BagRecord)>,
    /// The accounts are the built-in demonstration ones (emulator only).
    pub demo_accounts: bool,
    pub session_policy: SessionPolicy,
    /// Where records are committed before a screen calls them recorded (`None`: not archived).
    pub archive: Option<Archiver>,
    /// Why the archive could not be opened at start (shown on both screens).
    pub archive_open_error: Option<String>,
    /// A training replay with projected threats (`replay://...&tip=`): each operator's first
    /// decision on a bag is judged and said at once.
    pub training: bool,
    /// Threats projected into bags (by desk key).
    pub projected: std::collections::HashMap<u64, crate::domain::tip::ProjectedThreat>,
    /// When each bag appeared (ms), for decision times.
    pub arrived_ms: std::collections::HashMap<u64, u64>,
    /// (bag, operator) already judged: a change of decision is not judged again.
    judged: std::collections::HashSet<(u64, String)>,
}

impl Desk {
    pub fn new(config: InspectionConfig, operators: OperatorStore, demo_accounts: bool) -> Self {
        Desk {
            config,
            operators,
            bags: Vec::new(),
            demo_accounts,
            session_policy: SessionPolicy::default(),
            archive: None,
            archive_open_error: None,
            training: false,
            projected: Default::default(),
            arrived_ms: Default::default(),
            judged: Default::default(),
        }
    }

    /// This operator's decision on this bag has been judged (training).
    pub fn was_judged(&self, bag: u64, operator: &str) -> bool {
        self.judged.contains(&(bag, operator.to_string()))
    }

    /// Threats the source projected into bags.
    pub fn note_projected(&mut self, projected: &[crate::domain::tip::ProjectedThreat]) {
        for p in projected {
            self.projected.insert(p.bag, p.clone());
        }
    }

    /// Judge a trainee's first decision on a bag against what was projected into it, and
    /// archive the result; `None` outside training or for a change of decision.
    pub fn training_result(
        &mut self,
        bag: u64,
        agency: &AgencyConfig,
        op: &Operator,
        code: &str,
        now_ms: u64,
    ) -> Option<(crate::domain::tip::TrainingResult, Option<String>)> {
        use crate::domain::inspection::DispositionKind;
        if !self.training || !self.judged.insert((bag, op.id.clone())) {
            return None;
        }
        let alarm = agency.decision(code).is_some_and(|c| c.kind != DispositionKind::Release);
        let rec = self.bags.iter().find(|(s, _)| s.bag == bag).map(|(_, r)| r)?;
        let marks: Vec<&Annotation> = rec.annotations.iter().filter(|a| a.operator == op.id).collect();
        let projected = self.projected.get(&bag);
        let result = crate::domain::tip::judge(projected, alarm, &marks);
        let threat = projected.map(|p| p.name.clone());
        let decision_ms = now_ms.saturating_sub(self.arrived_ms.get(&bag).copied().unwrap_or(now_ms));
        let item = self.item_of(bag);
        if let Some(a) = self.archive.as_mut() {
            let _ = a.record_training(
                bag,
                item.as_deref(),
                &op.id,
                &agency.id,
                threat.as_deref(),
                result,
                decision_ms,
            );
        }
        Some((result, threat))
    }

    /// After a restart: the newest bags of earlier runs come back from the archive with their
    /// decisions and marks, so a bag left pending is still decided on (its image is in the
    /// archive, not in the live view).
    pub fn load_earlier(&mut self, n: usize) -> Result<usize, String> {
        let Some(a) = self.archive.as_mut() else { return Ok(0) };
        let q = crate::store::BagQuery { limit: n, ..Default::default() };
        let rows = a.store().bags(&q).map_err(|e| e.to_string())?;
        let mut loaded = Vec::new();
        for row in rows.into_iter().rev() {
            let rec = a.store().record(row.id).map_err(|e| e.to_string())?;
            let key = ARCHIVED_KEY | row.id as u64;
            a.adopt(key, row.id);
            let span =
                BagSpan { bag: key, item_id: row.item_id.clone(), first_line: u64::MAX, end_line: Some(0) };
            loaded.push((span, rec));
        }
        let n = loaded.len();
        loaded.append(&mut self.bags);
        self.bags = loaded;
        Ok(n)
    }

    /// What is wrong with the archive now, for both screens.
    pub fn archive_problem(&self) -> Option<String> {
        self.archive_open_error.clone().or_else(|| self.archive.as_ref().and_then(|a| a.problem.clone()))
    }

    fn item_of(&self, bag: u64) -> Option<String> {
        self.bags.iter().find(|(s, _)| s.bag == bag).and_then(|(_, r)| r.item_id.clone())
    }

    /// Commit a decision to the archive (when there is one); only then may the screen show it.
    pub fn commit_decision(&mut self, bag: u64, d: &Decision) -> Result<(), String> {
        let item = self.item_of(bag);
        match self.archive.as_mut() {
            Some(a) => a.record_decision(bag, item.as_deref(), d),
            None if self.archive_open_error.is_some() => {
                Err(self.archive_open_error.clone().unwrap_or_default())
            }
            None => Ok(()),
        }
    }

    /// Commit a new or edited mark, or (`None`) the deletion of mark `id`.
    pub fn commit_mark(
        &mut self,
        bag: u64,
        change: Option<(&Annotation, MarkChange)>,
        id: u64,
        by: &str,
    ) -> Result<(), String> {
        let item = self.item_of(bag);
        match (self.archive.as_mut(), change) {
            (Some(a), Some((m, c))) => a.save_mark(bag, item.as_deref(), m, c, by),
            (Some(a), None) => a.delete_mark(bag, item.as_deref(), id, by),
            (None, _) if self.archive_open_error.is_some() => {
                Err(self.archive_open_error.clone().unwrap_or_default())
            }
            (None, _) => Ok(()),
        }
    }

    /// An audit entry (login, logout, refused login).
    pub fn audit(&mut self, actor: &str, action: &str, detail: serde_json::Value) {
        if let Some(a) = self.archive.as_mut() {
            a.log(actor, action, detail);
        }
    }

    /// Demonstration accounts for the emulator: c001 / 1111 (customs), q001 / 2222 (quarantine).
    pub fn demo_operators() -> OperatorStore {
        let mut s = OperatorStore::default();
        let _ = s.add("c001", "Demo customs", &[Role::Customs], "1111", 0);
        let _ = s.add("q001", "Demo quarantine", &[Role::Quarantine], "2222", 0);
        s
    }

    /// Bags the stream has started or ended.
    pub fn update_bags(&mut self, spans: &[BagSpan]) {
        let now = crate::unix_ms();
        for span in spans {
            match self.bags.iter_mut().find(|(s, _)| s.bag == span.bag) {
                Some((s, _)) => *s = span.clone(),
                None => {
                    self.arrived_ms.insert(span.bag, now);
                    self.bags.push((span.clone(), BagRecord::new(span.bag, span.item_id.clone())))
                }
            }
        }
        let excess = self.bags.len().saturating_sub(RECENT_BAGS + EARLIER_BAGS);
        if excess > 0 {
            self.bags.drain(..excess);
            let keep: std::collections::HashSet<u64> = self.bags.iter().map(|(s, _)| s.bag).collect();
            self.projected.retain(|k, _| keep.contains(k));
            self.arrived_ms.retain(|k, _| keep.contains(k));
            self.judged.retain(|(k, _)| keep.contains(k));
        }
    }

    fn bag_mut(&mut self, id: u64) -> Option<&mut BagRecord> {
        self.bags.iter_mut().find(|(s, _)| s.bag == id).map(|(_, r)| r)
    }
}

/// Agency names in the screen's language.
fn names(lang: Lang, cfg: &InspectionConfig, ids: &[String]) -> String {
    ids.iter()
        .map(|id| cfg.agency(id).map_or(id.clone(), |a| lang.tr(&a.name.en, &a.name.zh)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Short text of an outcome.
pub fn outcome_text(lang: Lang, cfg: &InspectionConfig, state: &OutcomeState) -> String {
    match state {
        OutcomeState::Pending { waiting_for } => {
            format!("{}: {}", lang.tr("Waiting", "待处置"), names(lang, cfg, waiting_for))
        }
        OutcomeState::Released => lang.tr("Released", "放行"),
        OutcomeState::Opened { joint: true, .. } => lang.tr("Joint opening", "联合开箱查验"),
        OutcomeState::Opened { by, .. } => {
            format!("{}: {}", lang.tr("Open", "开箱查验"), names(lang, cfg, by))
        }
        OutcomeState::Held { by } => {
            format!("{}: {}", lang.tr("Held", "扣留处置"), names(lang, cfg, by))
        }
        OutcomeState::Referred { by } => {
            format!("{}: {}", lang.tr("Referred", "移交"), names(lang, cfg, by))
        }
    }
}

fn login_error_text(lang: Lang, e: &LoginError) -> String {
    let zh = match e {
        LoginError::WrongCredentials => "工号或密码错误".to_owned(),
        LoginError::LockedOut { remaining_secs } => {
            format!("密码错误次数过多，请 {remaining_secs} 秒后再试")
        }
        LoginError::Disabled => "账号已停用".to_owned(),
    };
    lang.tr(&e.to_string(), &zh)
}

/// One screen's login and forms.
pub struct StationPanel {
    pub agency: String,
    pub operator: Option<Operator>,
    login_id: String,
    login_pin: String,
    reason: String,
    /// Last message: (is an error, text).
    pub message: Option<(bool, String)>,
    /// Bag chosen from the strip; `None`: the newest.
    selected: Option<u64>,
    /// This screen's language.
    pub lang: Lang,
    /// The logged-in operator's session (idle lock, break reminder).
    pub session: Option<Session>,
    /// A reminder to take a break is showing.
    pub break_reminder: bool,
    /// Marking tool, category and note of this screen.
    pub marks: MarkTool,
    /// A bag picked from the strip whose image the screen should bring back (taken by the UI).
    pub recall: Option<BagSpan>,
    /// Zoom and pan follow the other screen.
    pub link_view: bool,
    /// "Save image" was pressed (taken by the UI, which knows the screen's image function).
    pub save_view: bool,
}

impl StationPanel {
    pub fn new(agency: &str) -> Self {
        StationPanel {
            agency: agency.into(),
            operator: None,
            login_id: String::new(),
            login_pin: String::new(),
            reason: String::new(),
            message: None,
            selected: None,
            lang: Lang::default(),
            session: None,
            break_reminder: false,
            marks: MarkTool::new("other"),
            recall: None,
            link_view: false,
            save_view: false,
        }
    }

    /// Input at this screen, and the session's timers: an idle screen locks, a long shift
    /// brings a reminder.
    pub fn tick(&mut self, desk: &Desk, now_ms: u64, input: bool) {
        let Some(session) = self.session.as_mut() else { return };
        if input {
            session.activity(now_ms);
        }
        match session.check(now_ms, &desk.session_policy) {
            Some(SessionEvent::IdleLock) => {
                let mins = desk.session_policy.idle_lock_ms / 60_000;
                self.operator = None;
                self.session = None;
                self.break_reminder = false;
                let en = format!("Locked after {mins} minutes without input: log in again");
                let zh = format!("{mins} 分钟无操作，已锁定，请重新登录");
                self.message = Some((true, self.lang.tr(&en, &zh)));
            }
            Some(SessionEvent::BreakReminder) => self.break_reminder = true,
            None => {}
        }
    }

    /// The bag this screen is working on.
    pub fn bag_id(&self, desk: &Desk) -> Option<u64> {
        self.selected.or_else(|| desk.bags.last().map(|(s, _)| s.bag))
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, now_ms: u64) {
        let lang = self.lang;
        let Some(agency) = desk.config.agency(&self.agency).cloned() else {
            ui.colored_label(egui::Color32::RED, format!("unknown agency {}", self.agency));
            return;
        };
        ui.heading(lang.tr("Disposal", "处置"));
        if let Some(p) = desk.archive_problem() {
            let en = format!("Archive problem: {p}");
            let zh = format!("存档故障：{p}");
            ui.colored_label(egui::Color32::RED, lang.tr(&en, &zh));
        }
        self.login_ui(ui, desk, &agency, now_ms);
        ui.separator();
        self.decision_ui(ui, desk, &agency, now_ms);
        if let Some((err, text)) = &self.message {
            let colour = if *err { egui::Color32::RED } else { egui::Color32::LIGHT_GREEN };
            ui.colored_label(colour, text);
        }
        ui.separator();
        self.marks_ui(ui, desk, &agency, now_ms);
        ui.separator();
        self.recent_ui(ui, desk);
    }

    /// Tool, category and note for new marks; this screen's marks on the bag, with delete.
    fn marks_ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, agency: &AgencyConfig, _now_ms: u64) {
        let lang = self.lang;
        ui.label(lang.tr("Marks", "标记"));
        ui.horizontal_wrapped(|ui| {
            for t in Tool::ALL {
                let (en, zh) = t.name();
                if ui.selectable_label(self.marks.tool == t, lang.tr(en, zh)).clicked() {
                    self.marks.tool = t;
                    self.marks.polygon.clear();
                }
            }
        });
        let current = agency.categories.iter().find(|c| c.id == self.marks.category);
        let shown = current.map_or(self.marks.category.clone(), |c| lang.tr(&c.label.en, &c.label.zh));
        egui::ComboBox::from_label(lang.tr("Category", "类别")).selected_text(shown).show_ui(ui, |ui| {
            for c in &agency.categories {
                ui.selectable_value(
                    &mut self.marks.category,
                    c.id.clone(),
                    lang.tr(&c.label.en, &c.label.zh),
                );
            }
        });
        let l = ui.label(lang.tr("Note", "备注"));
        ui.add(egui::TextEdit::singleline(&mut self.marks.note).desired_width(220.0)).labelled_by(l.id);
        ui.checkbox(&mut self.marks.show_others, lang.tr("Show the other agency's marks", "显示对方标记"));
        if desk.archive.is_some()
            && ui
                .button(lang.tr("Save image", "保存图像"))
                .on_hover_text(lang.tr(
                    "This bag as this screen shows it, with the marks shown, as a PNG in the archive's exports folder",
                    "按本屏显示效果（含所显示标记）保存为 PNG，存入归档的 exports 文件夹",
                ))
                .clicked()
        {
            self.save_view = true;
        }
        let Some(bag_id) = self.bag_id(desk) else { return };
        let config = desk.config.clone();
        let Some(bag) = desk.bag_mut(bag_id).map(|b| b.clone()) else { return };
        let mut delete = None;
        for a in &bag.annotations {
            let mine = a.agency == agency.id;
            if !mine && !self.marks.show_others {
                continue;
            }
            let who = config.agency(&a.agency).map_or(a.agency.clone(), |g| lang.tr(&g.name.en, &g.name.zh));
            let cat = super::marks::category_label(lang, &config, &a.agency, &a.category);
            ui.horizontal_wrapped(|ui| {
                ui.label(format!("#{} {who}: {cat} {}", a.id, a.note));
                if mine && self.operator.is_some() && ui.small_button(lang.tr("Delete", "删除")).clicked() {
                    delete = Some(a.id);
                }
            });
        }
        if let (Some(id), Some(op)) = (delete, &self.operator) {
            let mut trial = bag;
            let r = trial
                .delete_annotation(&config, id, op)
                .map_err(|e| e.to_string())
                .and_then(|_| desk.commit_mark(bag_id, None, id, &op.id));
            match r {
                Ok(()) => {
                    if let Some(b) = desk.bag_mut(bag_id) {
                        *b = trial;
                    }
                }
                Err(e) => self.message = Some((true, e)),
            }
        }
    }

    fn login_ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, agency: &AgencyConfig, now_ms: u64) {
        let lang = self.lang;
        if let Some(op) = &self.operator {
            let who = format!("{}: {} ({})", lang.tr("Operator", "操作员"), op.id, op.name);
            let out = ui.horizontal_wrapped(|ui| {
                ui.label(who);
                ui.button(lang.tr("Log out", "退出")).clicked()
            });
            if out.inner {
                let id = op.id.clone();
                desk.audit(&id, "logout", serde_json::json!({ "station": self.agency }));
                self.operator = None;
                self.session = None;
                self.break_reminder = false;
                self.message = None;
            }
            if self.break_reminder {
                let mins = self.session.map_or(0, |s| s.screening_minutes(now_ms));
                let en = format!("You have screened for {mins} minutes: time for a break");
                let zh = format!("已连续判图 {mins} 分钟，请休息");
                ui.colored_label(egui::Color32::YELLOW, lang.tr(&en, &zh));
            }
            return;
        }
        let l = ui.label(lang.tr("Operator ID", "工号"));
        ui.add(egui::TextEdit::singleline(&mut self.login_id).desired_width(160.0)).labelled_by(l.id);
        let l = ui.label(lang.tr("PIN", "密码"));
        let pin = ui
            .add(egui::TextEdit::singleline(&mut self.login_pin).password(true).desired_width(160.0))
            .labelled_by(l.id);
        let enter = pin.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button(lang.tr("Log in", "登录")).clicked() || enter {
            let pin = std::mem::take(&mut self.login_pin);
            match desk.operators.login(self.login_id.trim(), &pin, now_ms) {
                Ok(op) if op.may_act_for(agency) => {
                    desk.audit(&op.id, "login", serde_json::json!({ "station": self.agency }));
                    self.message = Some((false, format!("{}: {}", lang.tr("Logged in", "已登录"), op.id)));
                    self.operator = Some(op);
                    self.session = Some(Session::new(now_ms));
                }
                Ok(op) => {
                    // The wrong station for this person: the next login is someone else's.
                    self.login_id.clear();
                    let en = format!("{} is not a {} operator", op.id, agency.name.en);
                    let zh = format!("{} 无{}岗位权限", op.id, agency.name.zh);
                    self.message = Some((true, lang.tr(&en, &zh)));
                }
                Err(e) => {
                    let id = self.login_id.trim().to_string();
                    desk.audit(
                        &id,
                        "login.refused",
                        serde_json::json!({ "station": self.agency, "why": e.to_string() }),
                    );
                    self.message = Some((true, login_error_text(lang, &e)))
                }
            }
        }
        if desk.demo_accounts {
            ui.small(format!(
                "{}: c001/1111 {}, q001/2222 {}",
                lang.tr("Demo accounts", "演示账号"),
                lang.tr("customs", "海关"),
                lang.tr("quarantine", "检验检疫")
            ));
        }
    }

    fn decision_ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, agency: &AgencyConfig, now_ms: u64) {
        let lang = self.lang;
        let Some(bag_id) = self.bag_id(desk) else {
            ui.label(lang.tr("No bag yet", "暂无行李"));
            return;
        };
        let config = desk.config.clone();
        // Work on a copy: the desk's record changes only once the archive has committed.
        let Some(mut bag) = desk.bag_mut(bag_id).map(|b| b.clone()) else {
            return;
        };
        ui.label(format!(
            "{} #{} · {} {}",
            lang.tr("Bag", "行李"),
            bag.id,
            lang.tr("tag", "标签"),
            bag.item_id.as_deref().unwrap_or("-")
        ));
        let current = bag.current(&agency.id).cloned();
        if current.is_some() {
            let l = ui.label(lang.tr("Reason for change", "更改原因"));
            ui.add(egui::TextEdit::singleline(&mut self.reason).desired_width(220.0)).labelled_by(l.id);
        }
        ui.horizontal_wrapped(|ui| {
            for code in &agency.decisions {
                let selected = current.as_ref().is_some_and(|d| d.code == code.code);
                let button = egui::Button::new(lang.tr(&code.label.en, &code.label.zh)).selected(selected);
                if ui.add_enabled(self.operator.is_some(), button).clicked()
                    && let Some(op) = &self.operator
                {
                    let reason = Some(self.reason.as_str()).filter(|r| !r.trim().is_empty());
                    let mut trial = bag.clone();
                    match trial.decide(&config, &agency.id, &code.code, op, now_ms, reason).cloned() {
                        Ok(d) => match desk.commit_decision(bag_id, &d) {
                            Ok(()) => {
                                let mut text =
                                    format!("{}: {} ({})", lang.tr("Recorded", "已记录"), d.code, d.operator);
                                if let Some(b) = desk.bag_mut(bag_id) {
                                    *b = trial.clone();
                                }
                                if let Some((r, threat)) =
                                    desk.training_result(bag_id, agency, op, &d.code, now_ms)
                                {
                                    use crate::domain::tip::TrainingResult as R;
                                    let name = threat.unwrap_or_default();
                                    let (en, zh) = match r {
                                        R::Hit => (
                                            format!("training: projected {name} found"),
                                            format!("训练：投影威胁（{name}）命中"),
                                        ),
                                        R::Miss => (
                                            format!("training: projected {name} MISSED"),
                                            format!("训练：投影威胁（{name}）漏判"),
                                        ),
                                        R::FalseAlarm => (
                                            "training: no projected threat here (false alarm)".into(),
                                            "训练：无投影威胁（误报）".into(),
                                        ),
                                        R::CorrectReject => (
                                            "training: no projected threat, correctly released".into(),
                                            "训练：无投影威胁，放行正确".into(),
                                        ),
                                    };
                                    text = format!("{text} · {}", lang.tr(&en, &zh));
                                }
                                self.message = Some((false, text));
                                self.reason.clear();
                                if let Some(b) = desk.bag_mut(bag_id) {
                                    *b = trial.clone();
                                }
                                bag = trial;
                            }
                            Err(e) => {
                                let en = format!("NOT recorded: {e}");
                                let zh = format!("未记录：{e}");
                                self.message = Some((true, lang.tr(&en, &zh)));
                            }
                        },
                        Err(e @ InspectionError::ReasonRequired { .. }) => {
                            self.message = Some((true, lang.tr(&e.to_string(), "更改处置需填写原因")))
                        }
                        Err(e) => self.message = Some((true, e.to_string())),
                    }
                }
            }
        });
        if self.operator.is_none() {
            ui.small(lang.tr("Log in to decide", "登录后方可处置"));
        }
        let outcome = bag.outcome(&config);
        ui.strong(format!("{}: {}", lang.tr("Outcome", "结果"), outcome_text(lang, &config, &outcome.state)));
        for (ag, d) in &outcome.decisions {
            let Some(a) = config.agency(ag) else { continue };
            let name = lang.tr(&a.name.en, &a.name.zh);
            match d {
                Some(d) => {
                    let code =
                        a.decision(&d.code).map_or(d.code.clone(), |c| lang.tr(&c.label.en, &c.label.zh));
                    let reason = d.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default();
                    ui.label(format!("{name}: {code} ({}){reason}", d.operator))
                }
                None => ui.label(format!("{name}: {}", lang.tr("undecided", "未处置"))),
            };
        }
    }

    fn recent_ui(&mut self, ui: &mut egui::Ui, desk: &Desk) {
        let lang = self.lang;
        ui.checkbox(
            &mut self.link_view,
            lang.tr("Follow the other screen's zoom and pan", "缩放平移与对方联动"),
        );
        ui.label(lang.tr("Recent bags", "最近行李"));
        let current = self.bag_id(desk);
        egui::ScrollArea::vertical().max_height(220.0).show(ui, |ui| {
            for (span, rec) in desk.bags.iter().rev().take(12 + EARLIER_BAGS) {
                let state = rec.outcome(&desk.config).state;
                let earlier = if is_archived(span) {
                    format!(" [{}]", lang.tr("earlier", "较早"))
                } else {
                    String::new()
                };
                let text = format!("#{}{earlier} {}", rec.id, outcome_text(lang, &desk.config, &state));
                if ui.selectable_label(current == Some(span.bag), text).clicked() {
                    let newest = desk.bags.last().map(|(s, _)| s.bag);
                    self.selected = if Some(span.bag) == newest { None } else { Some(span.bag) };
                    self.recall = Some(span.clone());
                }
            }
        });
    }
}
