//! The disposal panels of the two screens driven like an operator would, by their labels
//! (egui_kittest; no GPU needed): log in, refuse the other agency's operator, decide, change a
//! decision only with a reason, and see the joint outcome on the other screen. Each harness
//! frame takes the desk's commits first, as the workstation's frame loop does.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use twinspect::assemble::BagSpan;
use twinspect::desk::Desk;
use twinspect::domain::inspection::InspectionConfig;
use twinspect::ui::disposal::StationPanel;

type Shared = Rc<RefCell<Desk>>;

fn station(desk: &Shared, agency: &str) -> Harness<'static, StationPanel> {
    let i = desk.borrow().config.agencies.iter().position(|a| a.id == agency).expect("an agency of the desk");
    let desk = desk.clone();
    Harness::builder()
        .with_size([420.0, 700.0])
        // A panel that grows a section (the opening's form) takes a few frames to settle.
        .with_max_steps(12)
        // The real CJK font, and egui's default policy of failing on a missing glyph: every
        // Chinese string of the panel must render with what the README's set-up installs.
        .with_context_setup(|ctx| {
            twinspect::ui::fonts::install_cjk(ctx).expect("a CJK font (Debian fonts-noto-cjk)");
        })
        .build_ui_state(
            move |ui, panel: &mut StationPanel| {
                let mut desk = desk.borrow_mut();
                desk.poll();
                panel.ui(ui, &mut desk, 1_000)
            },
            StationPanel::new(i, agency),
        )
}

/// The demonstration desk, archiving into `dir`.
fn archiving_desk(dir: &std::path::Path) -> Desk {
    let mut d = Desk::new(InspectionConfig::default(), Desk::demo_operators(), true);
    d.archive = Some(twinspect::desk::archiver::Archiver::open(dir, "test", "desk-140", 8).unwrap());
    d
}

/// Customs' and quarantine's screens, drawn once.
fn both_screens(desk: &Shared) -> (Harness<'static, StationPanel>, Harness<'static, StationPanel>) {
    let (mut customs, mut quarantine) = (station(desk, "customs"), station(desk, "quarantine"));
    customs.run();
    quarantine.run();
    (customs, quarantine)
}

/// Bags as the stream delivers them, drawn whole on both screens (as the windows would have).
fn bags_shown(desk: &Shared, spans: &[BagSpan]) {
    let mut d = desk.borrow_mut();
    d.update_bags(spans);
    for i in 0..d.stations() {
        d.note_drawn(i, 0, 100_000);
    }
}

/// Wait for the archive's commits, then a frame so the screen says what became of them.
fn settle(desk: &Shared, h: &mut Harness<'_, StationPanel>) {
    assert!(desk.borrow_mut().settle(std::time::Duration::from_secs(10)), "the archive answered");
    h.run();
}

fn operator(desk: &Shared, i: usize) -> Option<String> {
    desk.borrow().station(i).operator.as_ref().map(|o| o.id.clone())
}

fn type_into(h: &mut Harness<'_, StationPanel>, label: &str, text: &str) {
    let role = if h.query_by_role_and_label(Role::PasswordInput, label).is_some() {
        Role::PasswordInput
    } else {
        Role::TextInput
    };
    h.get_by_role_and_label(role, label).focus();
    h.run();
    h.get_by_role_and_label(role, label).type_text(text);
    h.run();
}

fn log_in(h: &mut Harness<'_, StationPanel>, id: &str, pin: &str) {
    type_into(h, "Operator ID 工号", id);
    type_into(h, "PIN 密码", pin);
    h.get_by_label("Log in 登录").click();
    h.run();
}

/// The library's kitchen knife projected into `bag` at lines 100..300, channels 500..580.
fn knife(bag: u64) -> twinspect::domain::tip::ProjectedThreat {
    twinspect::domain::tip::ProjectedThreat {
        bag,
        name: "kitchen knife".into(),
        category: twinspect::domain::synth::Category::Blade,
        line: 100,
        channel: 500,
        lines: 200,
        channels: 80,
    }
}

#[test]
fn two_agencies_decide_separately_and_see_the_joint_outcome() {
    let desk: Shared =
        Rc::new(RefCell::new(Desk::new(InspectionConfig::default(), Desk::demo_operators(), true)));
    bags_shown(
        &desk,
        &[BagSpan { bag: 41, item_id: Some("EMS0041".into()), first_line: 0, end_line: Some(800) }],
    );
    let (mut customs, mut quarantine) = both_screens(&desk);
    customs.get_by_label("Bag 行李 #41 · tag 标签 EMS0041");

    // Nobody logged in: decision buttons do nothing.
    customs.get_by_label("Release 放行").click();
    customs.run();
    assert!(desk.borrow().bags[0].1.decisions.is_empty());

    // A wrong PIN is refused with a clear message.
    log_in(&mut customs, "c001", "9999");
    assert!(operator(&desk, 0).is_none());
    customs.get_by_label("wrong operator id or PIN 工号或密码错误");

    // The id stays filled in after a wrong PIN: only the PIN is typed again.
    type_into(&mut customs, "PIN 密码", "1111");
    customs.get_by_label("Log in 登录").click();
    customs.run();
    assert_eq!(operator(&desk, 0).as_deref(), Some("c001"));
    customs.get_by_label("Release 放行").click();
    customs.run();
    customs.get_by_label("Outcome 结果: Waiting 待处置: Quarantine 检验检疫");

    // A customs operator cannot log in at the quarantine screen.
    log_in(&mut quarantine, "c001", "1111");
    assert!(operator(&desk, 1).is_none());
    quarantine.get_by_label("c001 is not a Quarantine operator c001 无检验检疫岗位权限");

    log_in(&mut quarantine, "q001", "2222");
    quarantine.get_by_label("Open for inspection 开箱查验").click();
    quarantine.run();
    customs.run();
    customs.get_by_label("Outcome 结果: Open 开箱查验: Quarantine 检验检疫");

    // Customs changes its mind: refused without a reason, recorded with one.
    customs.get_by_label("Open for inspection 开箱查验").click();
    customs.run();
    customs.get_by_label_contains("更改处置需填写原因");
    type_into(&mut customs, "Reason for change 更改原因", "batteries seen on a second look");
    customs.get_by_label("Open for inspection 开箱查验").click();
    customs.run();
    quarantine.run();
    // One joint opening, shown on the other screen too, with both decisions and who made them.
    quarantine.get_by_label("Outcome 结果: Joint opening 联合开箱查验");
    quarantine
        .get_by_label("Customs 海关: Open for inspection 开箱查验 (c001) — batteries seen on a second look");
    quarantine.get_by_label("Quarantine 检验检疫: Open for inspection 开箱查验 (q001)");
    assert_eq!(desk.borrow().bags[0].1.decisions.len(), 3, "the first customs decision stays in the history");
}

#[test]
fn an_idle_screen_locks_and_a_long_shift_gets_a_break_reminder() {
    let desk: Shared =
        Rc::new(RefCell::new(Desk::new(InspectionConfig::default(), Desk::demo_operators(), true)));
    let mut customs = station(&desk, "customs");
    customs.run();
    log_in(&mut customs, "c001", "1111");
    let t0 = desk.borrow().station(0).session.expect("a session starts at login").started_ms;
    let minute = 60_000;
    // busy for 21 minutes: a reminder, no lock
    for m in 1..=21 {
        desk.borrow_mut().tick(0, t0 + m * minute, true);
    }
    assert!(operator(&desk, 0).is_some() && desk.borrow().station(0).break_reminder);
    customs.run();
    customs.get_by_label_contains("请休息");
    // then five minutes without input: locked
    desk.borrow_mut().tick(0, t0 + 26 * minute, false);
    assert!(operator(&desk, 0).is_none());
    customs.run();
    customs.get_by_label_contains("已锁定");
    customs.get_by_label("Log in 登录");
}

#[test]
fn picking_a_previous_bag_recalls_it_and_its_record() {
    let desk: Shared =
        Rc::new(RefCell::new(Desk::new(InspectionConfig::default(), Desk::demo_operators(), true)));
    let old = BagSpan { bag: 7, item_id: Some("OLD7".into()), first_line: 100, end_line: Some(900) };
    let new = BagSpan { bag: 8, item_id: None, first_line: 1200, end_line: Some(2000) };
    bags_shown(&desk, &[old, new.clone()]);
    let mut customs = station(&desk, "customs");
    customs.run();
    // The oldest bag customs has not decided is the one in focus.
    customs.get_by_label("Bag 行李 #7 · tag 标签 OLD7");
    customs.get_by_label_contains("#8 Waiting").click();
    customs.run();
    assert_eq!(customs.state().recall, Some(new), "the screen is asked to bring bag 8's image back");
    customs.get_by_label("Bag 行李 #8 · tag 标签 -");
    assert_eq!(desk.borrow().focus(0), Some(8));
}

#[test]
fn a_decision_is_refused_until_the_bag_is_scanned_and_shown_whole_on_that_screen() {
    let desk: Shared =
        Rc::new(RefCell::new(Desk::new(InspectionConfig::default(), Desk::demo_operators(), true)));
    let mut customs = station(&desk, "customs");
    customs.run();
    log_in(&mut customs, "c001", "1111");
    // The bag is still coming in: picked by hand, Release is refused.
    desk.borrow_mut().update_bags(&[BagSpan { bag: 5, item_id: None, first_line: 0, end_line: None }]);
    customs.run();
    customs.get_by_label("No bag yet 暂无行李");
    customs.get_by_label_contains("#5 Waiting").click();
    customs.run();
    customs.get_by_label("still being scanned 扫描中");
    customs.get_by_label("Release 放行").click();
    customs.run();
    customs.get_by_label_contains("行李 #5 仍在扫描");
    // Scanned, but this screen has drawn only part of it.
    desk.borrow_mut().update_bags(&[BagSpan { bag: 5, item_id: None, first_line: 0, end_line: Some(800) }]);
    desk.borrow_mut().note_drawn(0, 300, 800);
    customs.run();
    customs.get_by_label("not yet shown whole on this screen 尚未在本屏完整显示");
    customs.get_by_label("Release 放行").click();
    customs.run();
    customs.get_by_label_contains("has not been shown whole on this screen");
    assert!(desk.borrow().bags[0].1.decisions.is_empty());
    // Now all of it.
    desk.borrow_mut().note_drawn(0, 0, 300);
    customs.run();
    customs.get_by_label("Release 放行").click();
    customs.run();
    customs.get_by_label("Recorded 已记录 #5: release (c001)");
    assert_eq!(desk.borrow().bags[0].1.decisions.len(), 1);
}

#[test]
fn a_decision_shows_as_recorded_only_once_the_archive_has_committed_it() {
    let dir = tempfile::tempdir().unwrap();
    let desk: Shared = Rc::new(RefCell::new(archiving_desk(dir.path())));
    bags_shown(
        &desk,
        &[BagSpan { bag: 7, item_id: Some("EMS0007".into()), first_line: 0, end_line: Some(800) }],
    );
    let (mut customs, mut quarantine) = both_screens(&desk);
    log_in(&mut customs, "c001", "1111");
    customs.get_by_label("Release 放行").click();
    customs.run();
    settle(&desk, &mut customs);
    customs.get_by_label("Recorded 已记录 #1: release (c001)");
    {
        let desk = desk.borrow();
        let store = desk.archive.as_ref().unwrap().reader().unwrap();
        let rows = store.bags(&Default::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].item_id.as_deref(), Some("EMS0007"));
        let rec = store.record(rows[0].id).unwrap();
        assert_eq!(rec.decisions, desk.bags[0].1.decisions, "the screen shows what the archive holds");
        let actions: Vec<String> = twinspect::files::store::audit::entries(store.connection())
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(
            actions.contains(&"login".to_string()) && actions.contains(&"decision".to_string()),
            "{actions:?}"
        );
        // The archive fails (here: its decisions table is gone, as a damaged file would be).
        let side = twinspect::files::store::Store::open_shared(dir.path()).unwrap();
        side.connection().execute_batch("DROP TABLE decisions").unwrap();
    }
    log_in(&mut quarantine, "q001", "2222");
    quarantine.get_by_label("Open for inspection 开箱查验").click();
    quarantine.run();
    settle(&desk, &mut quarantine);
    quarantine.get_by_label_contains("NOT recorded");
    assert_eq!(desk.borrow().bags[0].1.decisions.len(), 1, "an uncommitted decision is not shown as made");
    quarantine.get_by_label("Outcome 结果: Waiting 待处置: Quarantine 检验检疫");
    // Both screens say the archive has a problem.
    customs.run();
    customs.get_by_label_contains("Archive problem");
    quarantine.get_by_label_contains("Archive problem");
}

#[test]
fn after_a_restart_an_earlier_bag_is_opened_from_the_archive_seen_and_decided_on() {
    let dir = tempfile::tempdir().unwrap();
    // The previous run: two bags scanned and archived, nobody decided.
    common::archive_bags(dir.path(), 8, 2);
    let mut d = archiving_desk(dir.path());
    assert_eq!(d.load_earlier(20).unwrap(), 2);
    let desk: Shared = Rc::new(RefCell::new(d));
    let mut customs = station(&desk, "customs");
    customs.run();
    log_in(&mut customs, "c001", "1111");
    // Picking it from the list opens its image from the archive.
    customs.get_by_label("#1 [earlier 较早] Waiting 待处置: Customs 海关, Quarantine 检验检疫").click();
    customs.run();
    settle(&desk, &mut customs);
    customs.get_by_label("Bag #1 opened from the archive 已从存档打开行李 #1");
    customs.get_by_label("Bag 行李 #1 · tag 标签 TS00000800");
    let lines = {
        let d = desk.borrow();
        let o = d.station(0).opened.as_ref().expect("open on customs' screen");
        assert_eq!((o.id, o.scan.frame.channels()), (1, 1536));
        o.scan.frame.lines() as u64
    };
    // Not yet drawn on this screen: refused.
    customs.get_by_label("Detain / seize 扣留/查扣").click();
    customs.run();
    customs.get_by_label_contains("has not been shown whole on this screen");
    // The screen draws it (as the image area does each frame), then the decision is taken.
    desk.borrow_mut().note_drawn_opened(0, 0, lines);
    customs.run();
    customs.get_by_label("Detain / seize 扣留/查扣").click();
    customs.run();
    settle(&desk, &mut customs);
    customs.get_by_label("Recorded 已记录 #1: detain (c001)");
    // Found by its tag and opened again from the search.
    type_into(&mut customs, "Find in the archive 存档查找", "TS00000801");
    customs.get_by_label("Find 查找").click();
    customs.run();
    settle(&desk, &mut customs);
    customs.get_by_label("1 bags found 找到 1 件行李");
    customs.get_by_label_contains("Open 打开 #2 · TS00000801").click();
    customs.run();
    settle(&desk, &mut customs);
    assert_eq!(desk.borrow().station(0).opened.as_ref().map(|o| o.id), Some(2));
    // Back to live.
    customs.get_by_label("Back to live 返回实时").click();
    customs.run();
    assert!(desk.borrow().station(0).opened.is_none());
    // Committed to the bag of the earlier run, not to a new one.
    let desk = desk.borrow();
    let store = desk.archive.as_ref().unwrap().reader().unwrap();
    let rows = store.bags(&Default::default()).unwrap();
    assert_eq!(rows.len(), 2, "no new bag");
    assert_eq!(store.record(1).unwrap().decisions[0].code, "detain");
    assert!(store.record(2).unwrap().decisions.is_empty());
}

#[test]
fn in_training_each_decision_is_judged_against_the_projected_threat_and_archived() {
    use twinspect::domain::inspection::{Annotation, Shape};
    use twinspect::domain::tip::TrainingResult;
    let dir = tempfile::tempdir().unwrap();
    let mut d = archiving_desk(dir.path());
    d.training = true;
    // Three bags of 400 lines, one after the other, each drawn whole on customs' screen.
    for bag in [1u64, 2, 3] {
        let first = (bag - 1) * 500;
        d.update_bags(&[BagSpan {
            bag,
            item_id: Some(format!("T{bag}")),
            first_line: first,
            end_line: Some(first + 400),
        }]);
    }
    d.note_drawn(0, 0, 1500);
    // Bags 1 and 2 carry a projected knife at lines 100..300, channels 500..580; bag 3 nothing.
    for bag in [1u64, 2] {
        d.note_projected(&[knife(bag)]);
    }
    // The trainee marked the knife on bag 1 (as the image's marking tool would have).
    let knife = Shape::Rect { x0: 120.0, y0: 510.0, x1: 280.0, y1: 570.0 };
    d.bags[0].1.annotations.push(Annotation::new(1, "customs", "c001", knife, "weapon", "", 0));
    let desk: Shared = Rc::new(RefCell::new(d));
    let mut customs = station(&desk, "customs");
    customs.run();
    log_in(&mut customs, "c001", "1111");
    let decide = |h: &mut Harness<'_, StationPanel>, row: &str, button: &str| {
        h.get_by_label(row).click();
        h.run();
        h.get_by_label(button).click();
        h.run();
        settle(&desk, h);
    };
    decide(&mut customs, "#1 Waiting 待处置: Customs 海关, Quarantine 检验检疫", "Detain / seize 扣留/查扣");
    customs.get_by_label_contains("projected kitchen knife found");
    decide(&mut customs, "#2 Waiting 待处置: Customs 海关, Quarantine 检验检疫", "Release 放行");
    customs.get_by_label_contains("projected kitchen knife MISSED");
    decide(
        &mut customs,
        "#3 Waiting 待处置: Customs 海关, Quarantine 检验检疫",
        "Open for inspection 开箱查验",
    );
    customs.get_by_label_contains("no projected threat here (false alarm)");
    // A change of decision is not judged twice.
    customs.get_by_label_contains("#3 Waiting").click();
    customs.run();
    type_into(&mut customs, "Reason for change 更改原因", "second look");
    customs.get_by_label("Release 放行").click();
    customs.run();
    settle(&desk, &mut customs);
    customs.get_by_label("Recorded 已记录 #3: release (c001)");
    let desk = desk.borrow();
    let rows = desk.archive.as_ref().unwrap().reader().unwrap().training("c001").unwrap();
    let got: Vec<TrainingResult> = rows.iter().map(|r| r.result).collect();
    assert_eq!(got, vec![TrainingResult::Hit, TrainingResult::Miss, TrainingResult::FalseAlarm]);
    assert_eq!(rows[0].threat.as_deref(), Some("kitchen knife"));
}

#[test]
fn in_blind_mode_an_agency_sees_the_others_decision_only_after_its_own() {
    let mut cfg = InspectionConfig::default();
    cfg.policy.blind = true;
    let desk: Shared = Rc::new(RefCell::new(Desk::new(cfg, Desk::demo_operators(), true)));
    bags_shown(&desk, &[BagSpan { bag: 9, item_id: None, first_line: 0, end_line: Some(800) }]);
    let (mut customs, mut quarantine) = both_screens(&desk);
    log_in(&mut customs, "c001", "1111");
    log_in(&mut quarantine, "q001", "2222");
    customs.get_by_label("Detain / seize 扣留/查扣").click();
    customs.run();
    quarantine.run();
    // Quarantine has not decided: customs' detention is not shown to it, anywhere.
    quarantine.get_by_label("Blind: other decisions shown after yours 盲判：记录本方处置后显示他方处置");
    quarantine.get_by_label("#9 Your decision pending 待本方处置");
    assert!(quarantine.query_by_label_contains("Detain").is_none());
    assert!(quarantine.query_by_label_contains("Held").is_none());
    quarantine.get_by_label("Release 放行").click();
    quarantine.run();
    quarantine.get_by_label("Outcome 结果: Held 扣留处置: Customs 海关");
    quarantine.get_by_label("Customs 海关: Detain / seize 扣留/查扣 (c001)");
}

#[test]
fn an_opening_asked_by_one_agency_calls_both_and_closes_when_both_have_recorded_findings() {
    let dir = tempfile::tempdir().unwrap();
    let desk: Shared = Rc::new(RefCell::new(archiving_desk(dir.path())));
    bags_shown(
        &desk,
        &[BagSpan { bag: 12, item_id: Some("EMS0012".into()), first_line: 0, end_line: Some(800) }],
    );
    let (mut customs, mut quarantine) = both_screens(&desk);
    log_in(&mut customs, "c001", "1111");
    log_in(&mut quarantine, "q001", "2222");
    customs.get_by_label("Open for inspection 开箱查验").click();
    customs.run();
    settle(&desk, &mut customs);
    // Quarantine has not decided, and is called to the same opening all the same.
    quarantine.run();
    quarantine.get_by_label("Joint opening of bag #1: record your findings 行李 #1 联合开箱：请记录查验结果");
    quarantine.get_by_label("Joint opening 联合开箱查验 (under way 进行中): Customs 海关");
    quarantine.get_by_label("Quarantine 检验检疫: findings awaited 待记录");
    // Customs found nothing.
    customs.get_by_label("Nothing found 未发现").click();
    customs.run();
    settle(&desk, &mut customs);
    customs.get_by_label("Findings recorded: waiting for the other agencies 查验结果已记录：等待其他部门");
    // Quarantine found twelve apples, destroyed them.
    quarantine.run();
    // The count field starts at 1: a 2 typed after it makes 12.
    type_into(&mut quarantine, "Count 数量", "2");
    type_into(&mut quarantine, "Item note 物品备注", "apples");
    quarantine.get_by_label("Add item 添加物品").click();
    quarantine.run();
    type_into(&mut quarantine, "Treatment 处理", "destroyed");
    quarantine.get_by_label("Record findings 记录查验结果").click();
    quarantine.run();
    settle(&desk, &mut quarantine);
    quarantine.get_by_label("Findings recorded: the opening is closed 查验结果已记录：开箱查验结束");
    customs.run();
    customs.get_by_label("Joint opening 联合开箱查验 (closed 已结束): Customs 海关");
    customs.get_by_label(
        "Quarantine 检验检疫: Fruit and vegetables 水果蔬菜 ×12 (apples) · treatment 处理: destroyed (q001)",
    );
    customs.get_by_label("Customs 海关: nothing found 未发现 (c001)");
    customs.get_by_label_contains("#1 Waiting 待处置: Quarantine 检验检疫 · opening closed 开箱结束");
    // In the archive, audited, and in the CSV export.
    let desk = desk.borrow();
    let store = desk.archive.as_ref().unwrap().reader().unwrap();
    let rec = store.record(1).unwrap();
    assert_eq!(rec.findings.len(), 2);
    assert!(rec.opening(&desk.config).unwrap().closed);
    let actions: Vec<String> = twinspect::files::store::audit::entries(store.connection())
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "findings").count(), 2, "{actions:?}");
    let mut csv = Vec::new();
    // The progress an export shows: told before each bag, of all the bags found.
    let mut told = Vec::new();
    let n = twinspect::files::export::records_csv_with(
        &store,
        &desk.config,
        &Default::default(),
        &mut csv,
        |done, total| told.push((done, total)),
    )
    .unwrap();
    assert!(n >= 1);
    assert_eq!(told, (0..n).map(|i| (i, n)).collect::<Vec<_>>());
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.contains("closed") && csv.contains("nothing found") && csv.contains("fruit_veg x12 (apples)"),
        "{csv}"
    );
    assert!(csv.contains("destroyed"), "{csv}");
}

/// Alerts on the workstation: a lost link alerts every live screen once (not every frame), and a
/// projected threat revealed by a trainee's decision alerts that trainee's screen only. This
/// machine has no sound card: the alerts are kept and say they were silent.
#[test]
fn a_lost_link_alerts_every_screen_once_and_a_revealed_threat_only_its_trainee() {
    use std::sync::atomic::Ordering::Relaxed;
    use twinspect::desk::Command;
    use twinspect::domain::material::MaterialLut;
    use twinspect::domain::profile::ScannerProfile;
    use twinspect::sound::Tone;
    use twinspect::source::RunningSource;
    use twinspect::ui::{Parts, Workstation};
    let profile = ScannerProfile::load("desk-140").unwrap();
    let (_tx, source) = RunningSource::fed("test", 64);
    let lut = MaterialLut::for_profile(&profile).unwrap();
    let inspection = InspectionConfig::default();
    let mut desk = Desk::new(inspection.clone(), Desk::demo_operators(), true);
    desk.training = true;
    let layout = twinspect::ui::layout::Layout::default();
    let mut ws = Workstation::new(
        None,
        None,
        Parts {
            profile,
            source,
            lut,
            inspection,
            desk,
            layout,
            remote: None,
            hub: None,
            no_scanner: false,
            publishing: None,
        },
    );
    ws.source().stats.connected.store(false, Relaxed);
    for _ in 0..3 {
        ws.ingest(std::time::Duration::from_millis(1));
    }
    for i in 0..2 {
        let tones: Vec<Tone> = ws.alerts(i).map(|a| a.tone).collect();
        assert_eq!(tones, vec![Tone::LinkDown], "screen {i}");
        // Sounded only where the machine can (CI's cannot).
        assert!(ws.alerts(i).all(|a| !a.sounded) || ws.silent_why().is_none());
    }
    // A trainee on customs decides a bag with a projected knife: revealed, customs alerted.
    let d = ws.desk_mut();
    d.apply(0, Command::Login { id: "c001".into(), pin: "1111".into() }, 0).unwrap();
    d.update_bags(&[BagSpan { bag: 1, item_id: None, first_line: 0, end_line: Some(400) }]);
    d.note_drawn(0, 0, 500);
    d.note_projected(&[knife(1)]);
    d.apply(0, Command::Decide { code: "detain".into(), reason: None }, 10).unwrap();
    ws.desk_mut().settle(std::time::Duration::from_secs(5));
    ws.ingest(std::time::Duration::from_millis(1));
    ws.ingest(std::time::Duration::from_millis(1));
    let customs: Vec<(Tone, String)> = ws.alerts(0).map(|a| (a.tone, a.about.clone())).collect();
    assert_eq!(customs.last(), Some(&(Tone::Threat, "#1: kitchen knife".to_string())), "{customs:?}");
    assert_eq!(customs.iter().filter(|(t, _)| *t == Tone::Threat).count(), 1);
    assert!(ws.alerts(1).all(|a| a.tone != Tone::Threat), "quarantine did not decide");
}
