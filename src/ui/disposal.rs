//! The disposal side of a station: log in, see the bag on screen and its tag, record the agency's
//! decision (with a reason when changing it), and see the joint outcome and every decision on
//! both screens; a strip of recent bags with their state, click to recall.
//!
//! Owns: per-screen form state ([`StationPanel`]: what is typed, the message line, the marking
//! tool) and the words for what the desk answered. Every action is a [`Command`] to the
//! [`Desk`]; nothing here decides or writes. Drawn without the GPU, so it is tested with
//! egui_kittest by its labels.

use eframe::egui;

use super::i18n::Lang;
use super::marks::{MarkTool, Tool};
use crate::assemble::BagSpan;
use crate::desk::{Command, Desk, DeskError, Done, is_archived};
use crate::domain::inspection::{AgencyConfig, FoundItem, InspectionConfig, InspectionError, OutcomeState};
use crate::domain::operators::LoginError;

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

/// " · opening under way" / " · opening closed" (nothing without an opening).
pub fn opening_text(lang: Lang, opening: Option<&crate::domain::inspection::Opening>) -> String {
    match opening {
        None => String::new(),
        Some(o) if o.closed => format!(" · {}", lang.tr("opening closed", "开箱结束")),
        Some(_) => format!(" · {}", lang.tr("opening under way", "开箱中")),
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

/// Words for the agency `id` in `lang`.
fn agency_name(lang: Lang, cfg: &InspectionConfig, id: &str) -> String {
    cfg.agency(id).map_or(id.to_owned(), |a| lang.tr(&a.name.en, &a.name.zh))
}

/// What a screen says about the desk's answer: `(is an error, text)`; `None`: nothing to say.
pub fn said_text(lang: Lang, cfg: &InspectionConfig, r: &Result<Done, DeskError>) -> Option<(bool, String)> {
    let ok = |en: String, zh: String| Some((false, lang.tr(&en, &zh)));
    let err = |en: String, zh: String| Some((true, lang.tr(&en, &zh)));
    match r {
        Ok(Done::LoggedIn(op)) => ok(format!("Logged in: {}", op.id), format!("已登录: {}", op.id)),
        Ok(Done::LoggedOut | Done::Focused(_) | Done::BreakDue { .. }) => None,
        Ok(Done::Recording) => ok("Recording…".into(), "正在记录…".into()),
        Ok(Done::Decided { number, decision: d, training, .. }) => {
            let mut text =
                format!("{} #{number}: {} ({})", lang.tr("Recorded", "已记录"), d.code, d.operator);
            if let Some((r, threat)) = training {
                use crate::domain::tip::TrainingResult as R;
                let name = threat.clone().unwrap_or_default();
                let (en, zh) = match r {
                    R::Hit => {
                        (format!("training: projected {name} found"), format!("训练：投影威胁（{name}）命中"))
                    }
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
            Some((false, text))
        }
        Ok(Done::Marked { id, .. }) => Some((false, format!("{} #{id}", lang.tr("Marked", "已标记")))),
        Ok(Done::MarkChanged { id, .. }) => {
            Some((false, format!("{} #{id}", lang.tr("Mark changed", "标记已修改"))))
        }
        Ok(Done::MarkDeleted { id, .. }) => {
            Some((false, format!("{} #{id}", lang.tr("Mark deleted", "标记已删除"))))
        }
        Ok(Done::Locked { idle_minutes: m }) => err(
            format!("Locked after {m} minutes without input: log in again"),
            format!("{m} 分钟无操作，已锁定，请重新登录"),
        ),
        Ok(Done::FindingsRecorded { closed: false, .. }) => ok(
            "Findings recorded: waiting for the other agencies".into(),
            "查验结果已记录：等待其他部门".into(),
        ),
        Ok(Done::FindingsRecorded { closed: true, .. }) => {
            ok("Findings recorded: the opening is closed".into(), "查验结果已记录：开箱查验结束".into())
        }
        Ok(Done::PhotoAdded { .. }) => ok("Photo kept with the bag".into(), "照片已随行李保存".into()),
        Ok(Done::Opening(id)) => ok(format!("Opening bag #{id}…"), format!("正在打开行李 #{id}…")),
        Ok(Done::Opened { id, .. }) => {
            ok(format!("Bag #{id} opened from the archive"), format!("已从存档打开行李 #{id}"))
        }
        Ok(Done::Closed) => None,
        Ok(Done::Searching) => ok("Searching…".into(), "正在查找…".into()),
        Ok(Done::Found(n)) => ok(format!("{n} bags found"), format!("找到 {n} 件行李")),
        Ok(Done::ViewSaved(file)) => {
            Some((false, format!("{}: {}", lang.tr("Image saved", "图像已保存"), file.display())))
        }
        Ok(Done::Belt(b)) => {
            let zh = super::i18n::belt_verb_zh(*b);
            ok(format!("Belt {} sent to the scanner", b.name()), format!("已向扫描仪发送：传送带{zh}"))
        }
        Err(e @ DeskError::BeltFromScannerOnly) => err(e.to_string(), "本现场传送带由扫描仪面板控制".into()),
        Err(e @ DeskError::BeltNotHere(a)) => {
            let name = agency_name(Lang::Zh, cfg, a);
            err(e.to_string(), format!("本现场{name}屏不控制传送带"))
        }
        Err(e @ DeskError::BeltBackOffice) => err(e.to_string(), "后台屏不控制传送带".into()),
        Err(DeskError::Login(e)) => Some((true, login_error_text(lang, e))),
        Err(DeskError::WrongStation { operator, agency }) => {
            let a = cfg.agency(agency);
            let (en, zh) =
                a.map_or((agency.clone(), agency.clone()), |a| (a.name.en.clone(), a.name.zh.clone()));
            err(format!("{operator} is not a {en} operator"), format!("{operator} 无{zh}岗位权限"))
        }
        Err(e @ DeskError::Inspection(InspectionError::ReasonRequired { .. })) => {
            err(e.to_string(), "更改处置需填写原因".into())
        }
        Err(e @ DeskError::StillScanning(b)) => {
            err(e.to_string(), format!("行李 #{b} 仍在扫描，扫描完整后方可处置"))
        }
        Err(e @ DeskError::NotSeen(b)) => {
            err(e.to_string(), format!("行李 #{b} 尚未在本屏完整显示，请先查看"))
        }
        Err(e @ DeskError::NotLoggedIn) => err(e.to_string(), "请先登录".into()),
        Err(e @ DeskError::NoBag) => err(e.to_string(), "暂无可处置的行李".into()),
        Err(e @ DeskError::Busy) => err(e.to_string(), "上一条记录仍在写入".into()),
        Err(DeskError::NotRecorded(m)) => err(format!("NOT recorded: {m}"), format!("未记录：{m}")),
        Err(e @ DeskError::Inspection(InspectionError::NoOpening)) => {
            err(e.to_string(), "该行李未要求开箱查验".into())
        }
        Err(e @ DeskError::NoArchive) => err(e.to_string(), "本机无存档".into()),
        Err(DeskError::CannotOpen(m)) => {
            err(format!("Cannot open that bag: {m}"), format!("无法打开该行李：{m}"))
        }
        Err(DeskError::SearchFailed(m)) => err(format!("Search failed: {m}"), format!("查找失败：{m}")),
        Err(DeskError::ViewNotSaved(m)) => err(format!("Image NOT saved: {m}"), format!("图像未保存：{m}")),
        Err(e) => Some((true, e.to_string())),
    }
}

/// The opening's findings form of a screen.
#[derive(Default)]
struct FindingsForm {
    /// The bag they are for (the form empties when the bag in focus changes).
    bag: Option<u64>,
    items: Vec<FoundItem>,
    category: String,
    count: String,
    note: String,
    treatment: String,
}

/// One screen's forms: what is typed there, its message line, its marking tool and language.
pub struct StationPanel {
    /// The desk's station this panel is.
    pub station: usize,
    pub agency: String,
    login_id: String,
    login_pin: String,
    reason: String,
    /// Last message: (is an error, text).
    pub message: Option<(bool, String)>,
    /// Why the hub gave this screen archive bag `.0` (central screening's automatic level
    /// alarmed on it): English and Chinese, shown while that bag is open.
    pub hub_note: Option<(i64, String, String)>,
    /// This screen's language.
    pub lang: Lang,
    /// Marking tool, category and note of this screen.
    pub marks: MarkTool,
    /// A bag picked from the strip whose image the screen should bring back (taken by the UI).
    pub recall: Option<BagSpan>,
    /// Zoom and pan follow the other screen.
    pub link_view: bool,
    /// What is typed in the archive search field.
    search: String,
    /// The findings form: items so far, and what is being typed.
    findings: FindingsForm,
    /// "Save image" was pressed (taken by the UI, which knows the screen's image function).
    pub save_view: bool,
}

impl StationPanel {
    pub fn new(station: usize, agency: &str) -> Self {
        StationPanel {
            station,
            agency: agency.into(),
            login_id: String::new(),
            login_pin: String::new(),
            reason: String::new(),
            message: None,
            hub_note: None,
            lang: Lang::default(),
            marks: MarkTool::new("other"),
            recall: None,
            link_view: false,
            save_view: false,
            search: String::new(),
            findings: FindingsForm::default(),
        }
    }

    /// Send a command to the desk and show its answer.
    pub fn send(&mut self, desk: &mut Desk, cmd: Command, now_ms: u64) -> Result<Done, DeskError> {
        let r = desk.apply(self.station, cmd, now_ms);
        self.show(desk, &r);
        r
    }

    /// Decide the bag in focus (a button or a decision key), with the reason typed, if any.
    pub fn decide(&mut self, desk: &mut Desk, code: String, now_ms: u64) {
        let reason = Some(self.reason.trim().to_owned()).filter(|r| !r.is_empty());
        let _ = self.send(desk, Command::Decide { code, reason }, now_ms);
    }

    /// Put the desk's answer on the message line.
    pub fn show(&mut self, desk: &Desk, r: &Result<Done, DeskError>) {
        match r {
            Ok(Done::LoggedOut) => self.message = None,
            // The wrong station for this person: the next login is someone else's.
            Err(DeskError::WrongStation { .. }) => self.login_id.clear(),
            Ok(Done::Decided { .. }) => self.reason.clear(),
            _ => {}
        }
        if let Some(m) = said_text(self.lang, &desk.config, r) {
            self.message = Some(m);
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, now_ms: u64) {
        for r in desk.take_said(self.station) {
            self.show(desk, &r);
        }
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
        self.login_ui(ui, desk, now_ms);
        self.openings_ui(ui, desk, &agency, now_ms);
        ui.separator();
        self.decision_ui(ui, desk, &agency, now_ms);
        if let Some((err, text)) = &self.message {
            let colour = if *err { egui::Color32::RED } else { egui::Color32::LIGHT_GREEN };
            ui.colored_label(colour, text);
        }
        ui.separator();
        self.marks_ui(ui, desk, &agency, now_ms);
        ui.separator();
        self.recent_ui(ui, desk, now_ms);
    }

    /// Tool, category and note for new marks; this screen's marks on the bag, with delete.
    fn marks_ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, agency: &AgencyConfig, now_ms: u64) {
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
        let Some(bag_id) = desk.focus(self.station) else { return };
        let Some((_, bag)) = desk.bag(bag_id) else { return };
        let logged_in = desk.station(self.station).operator.is_some();
        let mut delete = None;
        for a in &bag.annotations {
            let mine = a.agency == agency.id;
            if !mine && !self.marks.show_others {
                continue;
            }
            let who = agency_name(lang, &desk.config, &a.agency);
            let cat = super::marks::category_label(lang, &desk.config, &a.agency, &a.category);
            ui.horizontal_wrapped(|ui| {
                ui.label(format!("#{} {who}: {cat} {}", a.id, a.note));
                if mine && logged_in && ui.small_button(lang.tr("Delete", "删除")).clicked() {
                    delete = Some(a.id);
                }
            });
        }
        if let Some(id) = delete {
            let _ = self.send(desk, Command::DeleteMark { bag: bag_id, id }, now_ms);
        }
    }

    fn login_ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, now_ms: u64) {
        let lang = self.lang;
        let st = desk.station(self.station);
        if let Some(op) = &st.operator {
            let who = format!("{}: {} ({})", lang.tr("Operator", "操作员"), op.id, op.name);
            let (reminder, session) = (st.break_reminder, st.session);
            let out = ui.horizontal_wrapped(|ui| {
                ui.label(who);
                ui.button(lang.tr("Log out", "退出")).clicked()
            });
            if reminder {
                let mins = session.map_or(0, |s| s.screening_minutes(now_ms));
                let en = format!("You have screened for {mins} minutes: time for a break");
                let zh = format!("已连续判图 {mins} 分钟，请休息");
                ui.colored_label(egui::Color32::YELLOW, lang.tr(&en, &zh));
            }
            if out.inner {
                let _ = self.send(desk, Command::Logout, now_ms);
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
            let id = self.login_id.trim().to_owned();
            let _ = self.send(desk, Command::Login { id, pin }, now_ms);
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
        let Some(bag_id) = desk.focus(self.station) else {
            ui.label(lang.tr("No bag yet", "暂无行李"));
            return;
        };
        let Some((span, bag)) = desk.bag(bag_id).cloned() else { return };
        if let Some(o) = &desk.station(self.station).opened {
            let id = o.id;
            let back = ui.horizontal_wrapped(|ui| {
                ui.colored_label(
                    egui::Color32::from_rgb(240, 170, 0),
                    lang.tr(&format!("From the archive: no. {id}"), &format!("存档调阅：编号 {id}")),
                );
                ui.button(lang.tr("Back to live", "返回实时")).clicked()
            });
            if back.inner {
                let _ = self.send(desk, Command::CloseBag, now_ms);
                return;
            }
            if let Some((_, en, zh)) = self.hub_note.as_ref().filter(|n| n.0 == id) {
                ui.colored_label(egui::Color32::from_rgb(220, 60, 40), lang.tr(en, zh));
            }
        }
        ui.label(format!(
            "{} #{} · {} {}",
            lang.tr("Bag", "行李"),
            desk.number(bag_id),
            lang.tr("tag", "标签"),
            bag.item_id.as_deref().unwrap_or("-")
        ));
        if !is_archived(&span) && span.end_line.is_none() {
            ui.small(lang.tr("still being scanned", "扫描中"));
        } else if !is_archived(&span) && !desk.shown_whole(self.station, bag_id) {
            ui.small(lang.tr("not yet shown whole on this screen", "尚未在本屏完整显示"));
        }
        let current = bag.current(&agency.id).cloned();
        if current.is_some() {
            let l = ui.label(lang.tr("Reason for change", "更改原因"));
            ui.add(egui::TextEdit::singleline(&mut self.reason).desired_width(220.0)).labelled_by(l.id);
        }
        let st = desk.station(self.station);
        let can = st.operator.is_some() && !desk.is_recording(self.station);
        let mut pressed = None;
        ui.horizontal_wrapped(|ui| {
            for (k, code) in agency.decisions.iter().enumerate() {
                let selected = current.as_ref().is_some_and(|d| d.code == code.code);
                let button = egui::Button::new(lang.tr(&code.label.en, &code.label.zh)).selected(selected);
                let key = code.key.clone().unwrap_or_else(|| format!("Ctrl+{}", k + 1));
                if ui.add_enabled(can, button).on_hover_text(key).clicked() {
                    pressed = Some(code.code.clone());
                }
            }
        });
        if let Some(code) = pressed {
            self.decide(desk, code, now_ms);
        }
        if desk.station(self.station).operator.is_none() {
            ui.small(lang.tr("Log in to decide", "登录后方可处置"));
        }
        self.opening_ui(ui, desk, agency, bag_id, now_ms);
        let config = &desk.config;
        let Some((_, bag)) = desk.bag(bag_id) else { return };
        if config.policy.blind && bag.current(&agency.id).is_none() {
            // Blind mode: the others' decisions stay hidden until this agency has recorded its own.
            ui.small(lang.tr("Blind: other decisions shown after yours", "盲判：记录本方处置后显示他方处置"));
            return;
        }
        let outcome = bag.outcome(config);
        ui.strong(format!("{}: {}", lang.tr("Outcome", "结果"), outcome_text(lang, config, &outcome.state)));
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

    /// Every opening that waits for this agency's findings, on every screen of the agency.
    fn openings_ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, agency: &AgencyConfig, now_ms: u64) {
        let lang = self.lang;
        let focus = desk.focus(self.station);
        let waiting: Vec<(u64, u64)> = desk
            .bags
            .iter()
            .filter(|(_, r)| {
                r.opening(&desk.config)
                    .is_some_and(|o| o.results.iter().any(|(a, f)| a == &agency.id && f.is_none()))
            })
            .map(|(s, _)| (s.bag, desk.number(s.bag)))
            .collect();
        let mut go = None;
        for (key, number) in waiting {
            ui.horizontal_wrapped(|ui| {
                let en = format!("Joint opening of bag #{number}: record your findings");
                let zh = format!("行李 #{number} 联合开箱：请记录查验结果");
                ui.colored_label(egui::Color32::from_rgb(240, 170, 0), lang.tr(&en, &zh));
                if focus != Some(key) && ui.small_button(lang.tr("Go", "前往")).clicked() {
                    go = Some(key);
                }
            });
        }
        if let Some(key) = go {
            let _ = self.send(desk, Command::Recall(key), now_ms);
        }
    }

    /// The bag's opening: who asked, every agency's findings, and this agency's form.
    fn opening_ui(
        &mut self,
        ui: &mut egui::Ui,
        desk: &mut Desk,
        agency: &AgencyConfig,
        bag_id: u64,
        now_ms: u64,
    ) {
        let lang = self.lang;
        let config = desk.config.clone();
        let Some(opening) = desk.bag(bag_id).and_then(|(_, r)| r.opening(&config)) else { return };
        if self.findings.bag != Some(bag_id) {
            self.findings = FindingsForm { bag: Some(bag_id), count: "1".into(), ..Default::default() };
        }
        ui.separator();
        let state =
            if opening.closed { lang.tr("closed", "已结束") } else { lang.tr("under way", "进行中") };
        ui.strong(format!(
            "{} ({}): {}",
            lang.tr("Joint opening", "联合开箱查验"),
            state,
            names(lang, &config, &opening.asked_by)
        ));
        let cat_name = |a: &AgencyConfig, id: &str| {
            a.categories
                .iter()
                .find(|c| c.id == id)
                .map_or(id.to_owned(), |c| lang.tr(&c.label.en, &c.label.zh))
        };
        let mine = opening.results.iter().find(|(a, _)| a == &agency.id).and_then(|(_, f)| f.clone());
        for (ag, f) in &opening.results {
            let Some(a) = config.agency(ag) else { continue };
            let name = lang.tr(&a.name.en, &a.name.zh);
            let text = match f {
                None => format!("{name}: {}", lang.tr("findings awaited", "待记录")),
                Some(f) => {
                    let what = if f.items.is_empty() {
                        lang.tr("nothing found", "未发现")
                    } else {
                        f.items
                            .iter()
                            .map(|it| {
                                let note = if it.note.is_empty() {
                                    String::new()
                                } else {
                                    format!(" ({})", it.note)
                                };
                                format!("{} ×{}{note}", cat_name(a, &it.category), it.count)
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let t = f
                        .treatment
                        .as_ref()
                        .map_or(String::new(), |t| format!(" · {}: {t}", lang.tr("treatment", "处理")));
                    format!("{name}: {what}{t} ({})", f.operator)
                }
            };
            ui.label(text);
        }
        if mine.is_some() || desk.station(self.station).operator.is_none() {
            return;
        }
        // This agency's findings.
        let form = &mut self.findings;
        if !agency.categories.iter().any(|c| c.id == form.category) {
            form.category = agency.categories.first().map(|c| c.id.clone()).unwrap_or_default();
        }
        let mut remove = None;
        for (k, it) in form.items.iter().enumerate() {
            ui.horizontal_wrapped(|ui| {
                ui.label(format!("{} ×{} {}", cat_name(agency, &it.category), it.count, it.note));
                if ui.small_button(lang.tr("Remove", "移除")).clicked() {
                    remove = Some(k);
                }
            });
        }
        if let Some(k) = remove {
            form.items.remove(k);
        }
        egui::ComboBox::from_label(lang.tr("Item category", "物品类别"))
            .selected_text(cat_name(agency, &form.category))
            .show_ui(ui, |ui| {
                for c in &agency.categories {
                    ui.selectable_value(&mut form.category, c.id.clone(), lang.tr(&c.label.en, &c.label.zh));
                }
            });
        let l = ui.label(lang.tr("Count", "数量"));
        ui.add(egui::TextEdit::singleline(&mut form.count).desired_width(60.0)).labelled_by(l.id);
        let l = ui.label(lang.tr("Item note", "物品备注"));
        ui.add(egui::TextEdit::singleline(&mut form.note).desired_width(200.0)).labelled_by(l.id);
        if ui.button(lang.tr("Add item", "添加物品")).clicked() {
            match form.count.trim().parse::<u32>() {
                Ok(count) if (1..=9999).contains(&count) => {
                    let note = std::mem::take(&mut form.note).trim().to_owned();
                    form.items.push(FoundItem { category: form.category.clone(), count, note });
                    form.count = "1".into();
                }
                _ => {
                    let en = format!("Count {:?}: 1 to 9999", form.count.trim());
                    let zh = format!("数量 {:?}：1 至 9999", form.count.trim());
                    self.message = Some((true, lang.tr(&en, &zh)));
                }
            }
        }
        let form = &mut self.findings;
        let l = ui.label(lang.tr("Treatment", "处理"));
        ui.add(egui::TextEdit::singleline(&mut form.treatment).desired_width(200.0)).labelled_by(l.id);
        let (nothing, record) = ui
            .horizontal_wrapped(|ui| {
                let nothing = ui
                    .add_enabled(form.items.is_empty(), egui::Button::new(lang.tr("Nothing found", "未发现")))
                    .clicked();
                let record = ui
                    .add_enabled(
                        !form.items.is_empty(),
                        egui::Button::new(lang.tr("Record findings", "记录查验结果")),
                    )
                    .clicked();
                (nothing, record)
            })
            .inner;
        if nothing || record {
            let items = if record { form.items.clone() } else { Vec::new() };
            let treatment = Some(form.treatment.trim().to_owned()).filter(|t| !t.is_empty());
            if self.send(desk, Command::Findings { bag: bag_id, items, treatment }, now_ms).is_ok() {
                self.findings = FindingsForm { bag: Some(bag_id), count: "1".into(), ..Default::default() };
            }
        }
    }

    fn recent_ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, now_ms: u64) {
        let lang = self.lang;
        ui.checkbox(
            &mut self.link_view,
            lang.tr("Follow the other screen's zoom and pan", "缩放平移与对方联动"),
        );
        ui.label(lang.tr("Recent bags", "最近行李"));
        let current = desk.focus(self.station);
        let mut picked = None;
        egui::ScrollArea::vertical().max_height(220.0).show(ui, |ui| {
            for (span, rec) in desk.bags.iter().rev().take(12 + crate::desk::EARLIER_BAGS) {
                let state = rec.outcome(&desk.config).state;
                let hidden = desk.config.policy.blind && rec.current(&self.agency).is_none();
                let earlier = if is_archived(span) {
                    format!(" [{}]", lang.tr("earlier", "较早"))
                } else {
                    String::new()
                };
                let text = if hidden {
                    format!(
                        "#{}{earlier} {}",
                        desk.number(span.bag),
                        lang.tr("Your decision pending", "待本方处置")
                    )
                } else {
                    let opening = opening_text(lang, rec.opening(&desk.config).as_ref());
                    format!(
                        "#{}{earlier} {}{opening}",
                        desk.number(span.bag),
                        outcome_text(lang, &desk.config, &state)
                    )
                };
                if ui.selectable_label(current == Some(span.bag), text).clicked() {
                    picked = Some(span.clone());
                }
            }
        });
        if let Some(span) = picked {
            // On the live image while it is whole there, else from the archive.
            if let Ok(Done::Focused(Some(_))) = self.send(desk, Command::Recall(span.bag), now_ms) {
                self.recall = Some(span);
            }
        }
        if desk.archive.is_some() {
            self.search_ui(ui, desk, now_ms);
        }
    }

    /// Find archived bags (earlier runs and days included) and open one on this screen.
    fn search_ui(&mut self, ui: &mut egui::Ui, desk: &mut Desk, now_ms: u64) {
        let lang = self.lang;
        let l = ui.label(lang.tr("Find in the archive", "存档查找"));
        let field = ui
            .add(egui::TextEdit::singleline(&mut self.search).desired_width(160.0))
            .labelled_by(l.id)
            .on_hover_text(lang.tr(
                "Bag number, tag or barcode, operator, decision code, mark category, or a day (YYYY-MM-DD)",
                "行李编号、标签或条码、操作员、处置代码、标记类别或日期（YYYY-MM-DD）",
            ));
        let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button(lang.tr("Find", "查找")).clicked() || enter {
            let text = self.search.clone();
            let _ = self.send(desk, Command::Search { text }, now_ms);
        }
        let mut open = None;
        egui::ScrollArea::vertical().id_salt("found").max_height(160.0).show(ui, |ui| {
            for row in &desk.station(self.station).found {
                let tag = row.item_id.as_deref().unwrap_or("-");
                let when = crate::files::export::utc(row.started_ms);
                let text = format!(
                    "{} #{} · {tag} · {when} · {}",
                    lang.tr("Open", "打开"),
                    row.id,
                    row.state.as_str()
                );
                if ui.button(text).clicked() {
                    open = Some(row.id);
                }
            }
        });
        if let Some(id) = open {
            let _ = self.send(desk, Command::Open { id }, now_ms);
        }
    }
}
