//! The disposal panels of the two screens driven like an operator would, by their labels
//! (egui_kittest; no GPU needed): log in, refuse the other agency's operator, decide, change a
//! decision only with a reason, and see the joint outcome on the other screen.

use std::cell::RefCell;
use std::rc::Rc;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use twinspect::assemble::BagSpan;
use twinspect::domain::inspection::InspectionConfig;
use twinspect::ui::disposal::{Desk, StationPanel};

type Shared = Rc<RefCell<Desk>>;

fn station(desk: &Shared, agency: &str) -> Harness<'static, StationPanel> {
    let desk = desk.clone();
    Harness::builder()
        .with_size([420.0, 700.0])
        // The real CJK font, and egui's default policy of failing on a missing glyph: every
        // Chinese string of the panel must render with what the README's set-up installs.
        .with_context_setup(|ctx| {
            twinspect::ui::fonts::install_cjk(ctx).expect("a CJK font (Debian fonts-noto-cjk)");
        })
        .build_ui_state(
            move |ui, panel: &mut StationPanel| panel.ui(ui, &mut desk.borrow_mut(), 1_000),
            StationPanel::new(agency),
        )
}

/// The demonstration desk, archiving into `dir`.
fn archiving_desk(dir: &std::path::Path) -> Desk {
    let mut d = Desk::new(InspectionConfig::default(), Desk::demo_operators(), true);
    d.archive = Some(twinspect::archiver::Archiver::open(dir, "test", "desk-140", 8).unwrap());
    d
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

#[test]
fn two_agencies_decide_separately_and_see_the_joint_outcome() {
    let desk: Shared =
        Rc::new(RefCell::new(Desk::new(InspectionConfig::default(), Desk::demo_operators(), true)));
    desk.borrow_mut().update_bags(&[BagSpan {
        bag: 41,
        item_id: Some("EMS0041".into()),
        first_line: 0,
        end_line: Some(800),
    }]);
    let mut customs = station(&desk, "customs");
    let mut quarantine = station(&desk, "quarantine");
    customs.run();
    quarantine.run();
    customs.get_by_label("Bag 行李 #41 · tag 标签 EMS0041");

    // Nobody logged in: decision buttons do nothing.
    customs.get_by_label("Release 放行").click();
    customs.run();
    assert!(desk.borrow().bags[0].1.decisions.is_empty());

    // A wrong PIN is refused with a clear message.
    log_in(&mut customs, "c001", "9999");
    assert!(customs.state().operator.is_none());
    customs.get_by_label("wrong operator id or PIN 工号或密码错误");

    // The id stays filled in after a wrong PIN: only the PIN is typed again.
    type_into(&mut customs, "PIN 密码", "1111");
    customs.get_by_label("Log in 登录").click();
    customs.run();
    assert_eq!(customs.state().operator.as_ref().unwrap().id, "c001");
    customs.get_by_label("Release 放行").click();
    customs.run();
    customs.get_by_label("Outcome 结果: Waiting 待处置: Quarantine 检验检疫");

    // A customs operator cannot log in at the quarantine screen.
    log_in(&mut quarantine, "c001", "1111");
    assert!(quarantine.state().operator.is_none());
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
    let t0 = customs.state().session.expect("a session starts at login").started_ms;
    let minute = 60_000;
    // busy for 21 minutes: a reminder, no lock
    for m in 1..=21 {
        customs.state_mut().tick(&desk.borrow(), t0 + m * minute, true);
    }
    assert!(customs.state().operator.is_some() && customs.state().break_reminder);
    customs.run();
    customs.get_by_label_contains("请休息");
    // then five minutes without input: locked
    customs.state_mut().tick(&desk.borrow(), t0 + 26 * minute, false);
    assert!(customs.state().operator.is_none());
    customs.run();
    customs.get_by_label_contains("已锁定");
    customs.get_by_label("Log in 登录");
}

#[test]
fn picking_a_previous_bag_recalls_it_and_its_record() {
    let desk: Shared =
        Rc::new(RefCell::new(Desk::new(InspectionConfig::default(), Desk::demo_operators(), true)));
    let old = BagSpan { bag: 7, item_id: Some("OLD7".into()), first_line: 100, end_line: Some(900) };
    let new = BagSpan { bag: 8, item_id: None, first_line: 1200, end_line: None };
    desk.borrow_mut().update_bags(&[old.clone(), new]);
    let mut customs = station(&desk, "customs");
    customs.run();
    customs.get_by_label("Bag 行李 #8 · tag 标签 -");
    customs.get_by_label_contains("#7 Waiting").click();
    customs.run();
    assert_eq!(customs.state().recall, Some(old), "the screen is asked to bring bag 7's image back");
    customs.get_by_label("Bag 行李 #7 · tag 标签 OLD7");
}

#[test]
fn a_decision_shows_as_recorded_only_once_the_archive_has_committed_it() {
    let dir = tempfile::tempdir().unwrap();
    let desk: Shared = Rc::new(RefCell::new(archiving_desk(dir.path())));
    desk.borrow_mut().update_bags(&[BagSpan {
        bag: 7,
        item_id: Some("EMS0007".into()),
        first_line: 0,
        end_line: Some(800),
    }]);
    let mut customs = station(&desk, "customs");
    let mut quarantine = station(&desk, "quarantine");
    customs.run();
    quarantine.run();
    log_in(&mut customs, "c001", "1111");
    customs.get_by_label("Release 放行").click();
    customs.run();
    customs.get_by_label("Recorded 已记录: release (c001)");
    {
        let desk = desk.borrow();
        let store = desk.archive.as_ref().unwrap().store();
        let rows = store.bags(&Default::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].item_id.as_deref(), Some("EMS0007"));
        let rec = store.record(rows[0].id).unwrap();
        assert_eq!(rec.decisions, desk.bags[0].1.decisions, "the screen shows what the archive holds");
        let actions: Vec<String> = twinspect::store::audit::entries(store.connection())
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(
            actions.contains(&"login".to_string()) && actions.contains(&"decision".to_string()),
            "{actions:?}"
        );
        // The archive fails (here: its decisions table is gone, as a damaged file would be).
        store.connection().execute_batch("DROP TABLE decisions").unwrap();
    }
    log_in(&mut quarantine, "q001", "2222");
    quarantine.get_by_label("Open for inspection 开箱查验").click();
    quarantine.run();
    quarantine.get_by_label_contains("NOT recorded");
    assert_eq!(desk.borrow().bags[0].1.decisions.len(), 1, "an uncommitted decision is not shown as made");
    quarantine.get_by_label("Outcome 结果: Waiting 待处置: Quarantine 检验检疫");
    // Both screens say the archive has a problem.
    customs.run();
    customs.get_by_label_contains("Archive problem");
    quarantine.get_by_label_contains("Archive problem");
}

#[test]
fn after_a_restart_an_earlier_pending_bag_comes_back_and_is_decided_on() {
    let dir = tempfile::tempdir().unwrap();
    // The previous run: two bags; customs released the first, the second was left pending.
    {
        let mut d = archiving_desk(dir.path());
        for (bag, tag) in [(3u64, "EMS0003"), (4, "EMS0004")] {
            // As the workstation's ingest does: the desk and the archive see each bag start.
            let span = BagSpan { bag, item_id: Some(tag.into()), first_line: 0, end_line: None };
            d.update_bags(std::slice::from_ref(&span));
            let batch = twinspect::assemble::Batch { bags: vec![span], ..Default::default() };
            d.archive.as_mut().unwrap().feed(&batch, None);
        }
        let desk: Shared = Rc::new(RefCell::new(d));
        let mut customs = station(&desk, "customs");
        customs.run();
        log_in(&mut customs, "c001", "1111");
        customs.get_by_label("#3 Waiting 待处置: Customs 海关, Quarantine 检验检疫").click();
        customs.run();
        customs.get_by_label("Release 放行").click();
        customs.run();
        customs.get_by_label("Recorded 已记录: release (c001)");
    }
    // The restart: both bags are back from the archive, with what was decided.
    let mut d = archiving_desk(dir.path());
    assert_eq!(d.load_earlier(20).unwrap(), 2);
    assert_eq!(d.bags[0].1.decisions.len(), 1, "bag 3's release came back");
    let desk: Shared = Rc::new(RefCell::new(d));
    let mut customs = station(&desk, "customs");
    customs.run();
    log_in(&mut customs, "c001", "1111");
    customs.get_by_label("#4 [earlier 较早] Waiting 待处置: Customs 海关, Quarantine 检验检疫").click();
    customs.run();
    customs.get_by_label("Bag 行李 #4 · tag 标签 EMS0004");
    customs.get_by_label("Detain / seize 扣留/查扣").click();
    customs.run();
    customs.get_by_label("Recorded 已记录: detain (c001)");
    // Committed to the bag of the earlier run, not to a new one.
    let desk = desk.borrow();
    let store = desk.archive.as_ref().unwrap().store();
    let rows = store.bags(&Default::default()).unwrap();
    assert_eq!(rows.len(), 2, "no new bag");
    let bag4 = rows.iter().find(|r| r.item_id.as_deref() == Some("EMS0004")).unwrap();
    assert_eq!(store.record(bag4.id).unwrap().decisions[0].code, "detain");
}

#[test]
fn in_training_each_decision_is_judged_against_the_projected_threat_and_archived() {
    use twinspect::domain::inspection::{Annotation, Shape};
    use twinspect::domain::synth::Category;
    use twinspect::domain::tip::{ProjectedThreat, TrainingResult};
    let dir = tempfile::tempdir().unwrap();
    let mut d = archiving_desk(dir.path());
    d.training = true;
    for bag in [1u64, 2, 3] {
        d.update_bags(&[BagSpan {
            bag,
            item_id: Some(format!("T{bag}")),
            first_line: 0,
            end_line: Some(400),
        }]);
    }
    // Bags 1 and 2 carry a projected knife at lines 100..300, channels 500..580; bag 3 nothing.
    for bag in [1u64, 2] {
        d.note_projected(&[ProjectedThreat {
            bag,
            name: "kitchen knife".into(),
            category: Category::Blade,
            line: 100,
            channel: 500,
            lines: 200,
            channels: 80,
        }]);
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
    type_into(&mut customs, "Reason for change 更改原因", "second look");
    customs.get_by_label("Release 放行").click();
    customs.run();
    let desk = desk.borrow();
    let rows = desk.archive.as_ref().unwrap().store().training("c001").unwrap();
    let got: Vec<TrainingResult> = rows.iter().map(|r| r.result).collect();
    assert_eq!(got, vec![TrainingResult::Hit, TrainingResult::Miss, TrainingResult::FalseAlarm]);
    assert_eq!(rows[0].threat.as_deref(), Some("kitchen knife"));
}
