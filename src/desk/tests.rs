//! The desk's rules, driven by commands as any front end would.

use std::time::Duration;

use super::*;
use crate::domain::inspection::InspectionConfig;

const CUSTOMS: usize = 0;
const QUARANTINE: usize = 1;

fn span(bag: u64, first: u64, end: Option<u64>) -> BagSpan {
    BagSpan { bag, item_id: Some(format!("T{bag}")), first_line: first, end_line: end }
}

fn desk() -> Desk {
    let mut d = Desk::new(InspectionConfig::default(), Desk::demo_operators(), true);
    d.apply(CUSTOMS, Command::Login { id: "c001".into(), pin: "1111".into() }, 0).unwrap();
    d.apply(QUARANTINE, Command::Login { id: "q001".into(), pin: "2222".into() }, 0).unwrap();
    d
}

fn decide(d: &mut Desk, i: usize, code: &str) -> Result<Done, DeskError> {
    d.apply(i, Command::Decide { code: code.into(), reason: None }, 10)
}

#[test]
fn a_decision_waits_for_the_whole_bag_scanned_and_shown_on_that_screen() {
    let mut d = desk();
    d.update_bags(&[span(1, 100, None)]);
    assert_eq!(d.focus(CUSTOMS), None, "a bag still coming in is not in focus");
    assert_eq!(decide(&mut d, CUSTOMS, "release"), Err(DeskError::NoBag));
    // Release pressed while the bag enters: still refused when the bag is picked by hand.
    d.apply(CUSTOMS, Command::Focus(Some(1)), 10).unwrap();
    d.note_drawn(CUSTOMS, 0, 500);
    assert_eq!(decide(&mut d, CUSTOMS, "release"), Err(DeskError::StillScanning(1)));
    d.apply(CUSTOMS, Command::Focus(None), 10).unwrap();

    d.update_bags(&[span(1, 100, Some(900))]);
    assert_eq!(d.focus(CUSTOMS), Some(1));
    // Customs' screen has drawn only the bag's first 400 lines so far.
    assert_eq!(decide(&mut d, CUSTOMS, "release"), Err(DeskError::NotSeen(1)));
    d.note_drawn(CUSTOMS, 500, 950);
    assert!(d.shown_whole(CUSTOMS, 1), "two stretches that meet cover the bag");
    assert!(matches!(decide(&mut d, CUSTOMS, "release"), Ok(Done::Decided { bag: 1, .. })));
    // Quarantine's screen never drew it: its decision is refused.
    assert!(!d.shown_whole(QUARANTINE, 1));
    assert_eq!(decide(&mut d, QUARANTINE, "release"), Err(DeskError::NotSeen(1)));
    assert_eq!(d.bag(1).unwrap().1.decisions.len(), 1);
}

#[test]
fn the_focus_is_the_oldest_bag_this_agency_has_not_decided_and_moves_on_after_a_decision() {
    let mut d = desk();
    d.update_bags(&[span(1, 0, Some(800)), span(2, 900, Some(1700)), span(3, 1800, None)]);
    d.note_drawn(CUSTOMS, 0, 2000);
    d.note_drawn(QUARANTINE, 0, 2000);
    assert_eq!(d.focus(CUSTOMS), Some(1));
    decide(&mut d, CUSTOMS, "release").unwrap();
    assert_eq!(d.focus(CUSTOMS), Some(2), "customs goes on to the next bag");
    assert_eq!(d.focus(QUARANTINE), Some(1), "quarantine still has bag 1 to decide");
    // Bag 3 ends while customs decides: the decision still goes to bag 2, the outlined one.
    d.update_bags(&[span(3, 1800, Some(2600))]);
    match decide(&mut d, CUSTOMS, "open").unwrap() {
        Done::Decided { bag, .. } => assert_eq!(bag, 2),
        other => panic!("{other:?}"),
    }
    // Bag 3 was not drawn whole yet.
    assert_eq!(d.focus(CUSTOMS), Some(3));
    assert_eq!(decide(&mut d, CUSTOMS, "release"), Err(DeskError::NotSeen(3)));
    // A bag that has begun to leave the live view is no longer put in focus by itself.
    d.set_live_oldest(500);
    assert_eq!(d.focus(QUARANTINE), Some(2));
    // Every bag decided: the newest complete bag stays in focus.
    d.note_drawn(CUSTOMS, 1800, 2600);
    decide(&mut d, CUSTOMS, "release").unwrap();
    assert_eq!(d.focus(CUSTOMS), Some(3));
    // A picked bag stays in focus until decided.
    d.apply(CUSTOMS, Command::Focus(Some(1)), 10).unwrap();
    assert_eq!(d.focus(CUSTOMS), Some(1));
    assert_eq!(d.apply(CUSTOMS, Command::Focus(Some(99)), 10), Err(DeskError::NoSuchBag(99)));
}

#[test]
fn commands_need_a_logged_in_operator_of_the_stations_agency() {
    let mut d = Desk::new(InspectionConfig::default(), Desk::demo_operators(), true);
    d.update_bags(&[span(1, 0, Some(800))]);
    d.note_drawn(CUSTOMS, 0, 800);
    assert_eq!(decide(&mut d, CUSTOMS, "release"), Err(DeskError::NotLoggedIn));
    let r = d.apply(QUARANTINE, Command::Login { id: "c001".into(), pin: "1111".into() }, 0);
    assert_eq!(r, Err(DeskError::WrongStation { operator: "c001".into(), agency: "quarantine".into() }));
    let r = d.apply(CUSTOMS, Command::Login { id: "c001".into(), pin: "9".into() }, 0);
    assert_eq!(r, Err(DeskError::Login(LoginError::WrongCredentials)));
    assert!(d.station(CUSTOMS).operator.is_none());
    assert_eq!(d.apply(7, Command::Logout, 0), Err(DeskError::NoStation(7)));
}

#[test]
fn marks_from_two_screens_at_once_get_their_own_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = desk();
    d.archive = Some(Archiver::open(dir.path(), "test", "desk-140", 8).unwrap());
    d.update_bags(&[span(1, 0, Some(800))]);
    let shape = Shape::Rect { x0: 10.0, y0: 10.0, x1: 50.0, y1: 60.0 };
    let mark =
        |cat: &str| Command::Mark { bag: 1, shape: shape.clone(), category: cat.into(), note: String::new() };
    assert_eq!(d.apply(CUSTOMS, mark("weapon"), 10), Ok(Done::Recording));
    assert_eq!(d.apply(QUARANTINE, mark("fruit_veg"), 10), Ok(Done::Recording));
    assert!(d.bag(1).unwrap().1.annotations.is_empty(), "nothing shown before it is committed");
    // One record at a time per screen.
    assert_eq!(d.apply(CUSTOMS, mark("weapon"), 10), Err(DeskError::Busy));
    assert!(d.settle(Duration::from_secs(10)));
    let mut ids: Vec<u64> = d.bag(1).unwrap().1.annotations.iter().map(|a| a.id).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
    assert!(matches!(d.take_said(CUSTOMS)[..], [Ok(Done::Marked { bag: 1, .. })]));
    assert!(matches!(d.take_said(QUARANTINE)[..], [Ok(Done::Marked { bag: 1, .. })]));
    // What the screens show is what the archive holds.
    let store = d.archive.as_ref().unwrap().reader().unwrap();
    let rows = store.bags(&Default::default()).unwrap();
    assert_eq!(store.record(rows[0].id).unwrap().annotations, d.bag(1).unwrap().1.annotations);
}

#[test]
fn a_refused_commit_is_said_and_leaves_the_record_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = desk();
    d.archive = Some(Archiver::open(dir.path(), "test", "desk-140", 8).unwrap());
    d.update_bags(&[span(1, 0, Some(800))]);
    d.note_drawn(CUSTOMS, 0, 800);
    // The archive fails (its decisions table gone, as in a damaged file).
    let mut side = crate::files::store::Store::open_shared(dir.path()).unwrap();
    let _ = &mut side;
    side.connection().execute_batch("DROP TABLE decisions").unwrap();
    assert_eq!(decide(&mut d, CUSTOMS, "release"), Ok(Done::Recording));
    assert!(d.is_recording(CUSTOMS));
    assert!(d.settle(Duration::from_secs(10)));
    let said = d.take_said(CUSTOMS);
    assert!(matches!(&said[..], [Err(DeskError::NotRecorded(_))]), "{said:?}");
    assert!(d.bag(1).unwrap().1.decisions.is_empty());
    assert!(!d.is_recording(CUSTOMS));
    assert!(d.archive_problem().is_some());
}

#[test]
fn a_passenger_lane_releases_a_bag_nobody_intervened_on_as_automatic() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = InspectionConfig::default();
    cfg.policy.auto_release_secs = Some(20);
    let mut d = Desk::new(cfg, Desk::demo_operators(), true);
    d.apply(CUSTOMS, Command::Login { id: "c001".into(), pin: "1111".into() }, 0).unwrap();
    d.archive = Some(Archiver::open(dir.path(), "test", "desk-140", 8).unwrap());
    d.update_bags(&[span(1, 0, Some(800)), span(2, 900, None)]);
    d.note_drawn(CUSTOMS, 0, 900);
    let ended = crate::unix_ms();
    decide(&mut d, CUSTOMS, "open").unwrap();
    d.apply_policy(ended + 19_000);
    assert!(d.settle(Duration::from_secs(10)));
    assert_eq!(d.bag(1).unwrap().1.decisions.len(), 1, "not yet: 19 s");
    d.apply_policy(ended + 21_000);
    assert!(d.settle(Duration::from_secs(10)));
    let rec = &d.bag(1).unwrap().1;
    assert_eq!(rec.decisions.len(), 2, "{:?}", rec.decisions);
    let auto = rec.current("quarantine").unwrap();
    assert_eq!(
        (auto.code.as_str(), auto.operator.as_str()),
        ("release", crate::domain::inspection::AUTO_OPERATOR)
    );
    assert_eq!(rec.current("customs").unwrap().operator, "c001", "customs' own decision stands");
    assert!(d.bag(2).unwrap().1.decisions.is_empty(), "a bag still coming in is never released");
    // Once is enough, and it is in the archive, audited as automatic.
    d.apply_policy(ended + 60_000);
    assert!(d.settle(Duration::from_secs(10)));
    assert_eq!(d.bag(1).unwrap().1.decisions.len(), 2);
    let store = d.archive.as_ref().unwrap().reader().unwrap();
    let actions: Vec<String> = crate::files::store::audit::entries(store.connection())
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "decision.auto").count(), 1, "{actions:?}");
}

#[test]
fn the_focus_follows_what_the_screen_shows() {
    let mut d = desk();
    d.update_bags(&[span(1, 0, Some(800)), span(2, 900, Some(1700)), span(3, 1800, Some(2600))]);
    // The whole ring on screen: the oldest undecided bag.
    d.note_drawn(CUSTOMS, 0, 2600);
    assert_eq!(d.focus(CUSTOMS), Some(1));
    // Zoomed in on bag 3: bag 3, though 1 and 2 wait.
    d.note_drawn(CUSTOMS, 2000, 2300);
    assert_eq!(d.focus(CUSTOMS), Some(3));
    // Bag 1 scrolled off the screen undecided: the next on screen.
    d.note_drawn(CUSTOMS, 1000, 2600);
    assert_eq!(d.focus(CUSTOMS), Some(2));
    // Nothing complete on screen (only belt after the last bag): the newest complete bag.
    d.note_drawn(CUSTOMS, 2650, 3000);
    assert_eq!(d.focus(CUSTOMS), Some(3));
}

#[test]
fn the_belt_moves_for_a_logged_in_operator_as_the_site_allows() {
    use crate::source::Belt;
    let mut d = Desk::new(InspectionConfig::default(), Desk::demo_operators(), true);
    assert_eq!(d.apply(CUSTOMS, Command::Belt(Belt::Stop), 0), Err(DeskError::NotLoggedIn));
    let mut d = desk();
    assert_eq!(d.apply(CUSTOMS, Command::Belt(Belt::Stop), 0), Ok(Done::Belt(Belt::Stop)));
    assert_eq!(d.apply(QUARANTINE, Command::Belt(Belt::Reverse), 0), Ok(Done::Belt(Belt::Reverse)));

    // Only customs moves the belt at this site.
    let mut cfg = InspectionConfig::default();
    cfg.belt.agencies = vec!["customs".into()];
    cfg.validate().unwrap();
    let mut d = Desk::new(cfg.clone(), Desk::demo_operators(), true);
    d.apply(CUSTOMS, Command::Login { id: "c001".into(), pin: "1111".into() }, 0).unwrap();
    d.apply(QUARANTINE, Command::Login { id: "q001".into(), pin: "2222".into() }, 0).unwrap();
    assert_eq!(d.apply(CUSTOMS, Command::Belt(Belt::Forward), 0), Ok(Done::Belt(Belt::Forward)));
    assert_eq!(
        d.apply(QUARANTINE, Command::Belt(Belt::Stop), 0),
        Err(DeskError::BeltNotHere("quarantine".into()))
    );
    // Nobody at this site: the scanner's own panel runs it.
    cfg.belt.from_screens = false;
    let mut d = Desk::new(cfg.clone(), Desk::demo_operators(), true);
    d.apply(CUSTOMS, Command::Login { id: "c001".into(), pin: "1111".into() }, 0).unwrap();
    assert_eq!(d.apply(CUSTOMS, Command::Belt(Belt::Stop), 0), Err(DeskError::BeltFromScannerOnly));
    // A site naming an agency it does not have is refused when loaded.
    cfg.belt = crate::domain::inspection::BeltPolicy { from_screens: true, agencies: vec!["police".into()] };
    assert!(cfg.validate().is_err());
    // And in a site file.
    let text = format!(
        "[belt]\nagencies = [\"customs\"]\n{}",
        toml::to_string(&InspectionConfig::default()).unwrap()
    );
    let parsed = InspectionConfig::from_toml(&text).unwrap();
    assert!(parsed.belt.allows("customs") && !parsed.belt.allows("quarantine"));
}

#[test]
fn the_scanners_state_is_audited_when_it_changes_and_only_then() {
    use crate::source::Belt;
    let dir = tempfile::tempdir().unwrap();
    let mut d = desk();
    d.archive = Some(Archiver::open(dir.path(), "test", "desk-140", 8).unwrap());
    let running = ScannerState { link: true, belt: Some(Belt::Forward), tube_on: true, ..Default::default() };
    assert!(d.scanner_state(running.clone()));
    // The same state heard again (a status every second) is not a new entry.
    assert!(!d.scanner_state(running.clone()));
    let stopped = ScannerState { belt: Some(Belt::Stop), tube_on: false, ..running.clone() };
    assert!(d.scanner_state(stopped.clone()));
    let fault = Some("scanner fault 301: X-ray generator: tube over-temperature".to_owned());
    assert!(d.scanner_state(ScannerState { fault: fault.clone(), ..stopped.clone() }));
    assert!(d.scanner_state(ScannerState { link: false, ..Default::default() }));
    d.archive.as_mut().unwrap().close();
    let store = d.archive.as_ref().unwrap().reader().unwrap();
    let said: Vec<serde_json::Value> = crate::files::store::audit::entries(store.connection())
        .unwrap()
        .into_iter()
        .filter(|e| (e.actor.as_str(), e.action.as_str()) == ("scanner", "scanner"))
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    assert_eq!(said.len(), 4, "{said:?}");
    assert_eq!(said[0]["belt"], "forward");
    assert_eq!((said[1]["belt"].as_str(), said[1]["tube_on"].as_bool()), (Some("stop"), Some(false)));
    assert_eq!(said[2]["fault"].as_str(), fault.as_deref());
    assert_eq!((said[3]["link"].as_bool(), said[3]["belt"].is_null()), (Some(false), true));
}
