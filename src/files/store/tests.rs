use super::*;
use crate::domain::inspection::{InspectionConfig, Operator, Role};

fn calib(n: usize) -> Calibration {
    Calibration {
        dark_low: vec![100.0; n],
        dark_high: vec![110.0; n],
        air_low: vec![60000.0; n],
        air_high: vec![61000.0; n],
        full_scale: 65535,
        dead: Vec::new(),
    }
}

fn frame(lines: usize, channels: usize, seed: u16) -> RawFrame {
    let mut f = RawFrame::zeros(lines, channels);
    for ((i, v), w) in f.low.indexed_iter_mut().zip(f.high.iter_mut()) {
        *v = (i.0 as u16).wrapping_mul(31).wrapping_add(i.1 as u16).wrapping_add(seed);
        *w = 65535 - *v;
    }
    f
}

fn start<'a>(bag: u64, item: Option<&'a str>, at_ms: u64) -> BagStart<'a> {
    BagStart {
        scanner_bag: bag,
        item_id: item,
        source: "synthetic://?seed=1",
        profile: "test",
        channels: 8,
        at_ms,
    }
}

fn op(id: &str, role: Role) -> Operator {
    Operator { id: id.into(), name: id.into(), roles: vec![role] }
}

#[test]
fn a_new_archive_has_the_schema_and_an_intact_trail() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as u32);
    let r = s.verify_audit().unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!(r.entries, MIGRATIONS.len() as u64, "one entry per migration");
    drop(s);
    // Reopening migrates nothing again.
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.verify_audit().unwrap().entries, MIGRATIONS.len() as u64);
}

#[test]
fn a_newer_schema_is_refused_rather_than_damaged() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let e = Store::open(dir.path()).err().expect("refused");
    assert!(matches!(e, StoreError::NewerSchema { found: 99, .. }), "{e}");
    assert!(matches!(Store::open_read(dir.path()), Err(StoreError::NewerSchema { .. })));
}

#[test]
fn one_writer_per_directory_and_readers_alongside() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Store::open(dir.path()).unwrap();
    let e = Store::open(dir.path()).err().expect("second writer refused");
    assert!(matches!(e, StoreError::Busy { .. }), "{e}");
    assert!(e.to_string().contains(&std::process::id().to_string()), "names the holder: {e}");
    let id = w.begin_bag(&start(1, None, 10), "capture").unwrap();
    let r = Store::open_read(dir.path()).unwrap();
    assert_eq!(r.bag(id).unwrap().state, BagState::Capturing, "a reader does not recover a live bag");
    drop(w);
    assert!(Store::open(dir.path()).is_ok(), "the lock goes with the writer");
    assert!(matches!(Store::open_read(&dir.path().join("nothing")), Err(StoreError::Missing(_))));
}

#[test]
fn a_finished_bag_keeps_its_scan_hashed_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let id = s.begin_bag(&start(7, Some("TAG-7"), 1000), "capture").unwrap();
    let f = frame(40, 8, 3);
    let row = s.finish_bag(id, &f, &calib(8), &[3, 4], false, 2000, "capture").unwrap();
    assert_eq!(row.state, BagState::Complete);
    assert_eq!((row.lines, row.missing_rows.clone(), row.ended_ms), (Some(40), vec![3, 4], Some(2000)));
    let file = dir.path().join(row.scan_file.as_ref().unwrap());
    assert_eq!(hex_sha256(&std::fs::read(&file).unwrap()), row.scan_sha256.clone().unwrap());
    assert_eq!(s.scan(id).unwrap(), f);
    // Finishing twice is refused; a scan of another width is refused.
    assert!(matches!(
        s.finish_bag(id, &f, &calib(8), &[], false, 3000, "capture"),
        Err(StoreError::NotCapturing { .. })
    ));
    let id2 = s.begin_bag(&start(8, None, 3000), "capture").unwrap();
    assert!(s.finish_bag(id2, &frame(4, 9, 0), &calib(9), &[], false, 3100, "capture").is_err());
    // A scan file changed behind the archive's back is caught when read.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    assert!(s.scan(id).unwrap_err().to_string().contains("SHA-256"));
}

#[test]
fn findings_wait_for_the_hubs_records_until_their_bag_is_published_and_go_once() {
    use crate::domain::inspection::{Findings, FoundItem};
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let a = s.begin_bag(&start(1, Some("A"), 1000), "capture").unwrap();
    let b = s.begin_bag(&start(2, Some("B"), 1100), "capture").unwrap();
    s.finish_bag(a, &frame(10, 8, 1), &calib(8), &[], false, 2000, "capture").unwrap();
    s.finish_bag(b, &frame(10, 8, 2), &calib(8), &[], false, 2100, "capture").unwrap();
    let f = |agency: &str, n: u32| Findings {
        agency: agency.into(),
        operator: "c001".into(),
        at_ms: 5000 + n as u64,
        items: (0..n)
            .map(|_| FoundItem { category: "knife".into(), count: 1, note: String::new() })
            .collect(),
        treatment: None,
    };
    s.record_findings(a, &f("customs", 0)).unwrap();
    s.record_findings(b, &f("customs", 1)).unwrap();
    s.record_findings(a, &f("quarantine", 2)).unwrap();
    let unsent = |s: &Store| s.unsent_findings(10).unwrap();
    assert!(unsent(&s).is_empty(), "no bag is on the hub yet");
    s.mark_published(a, "twinspect.bag.L1.n1.1", 7, false, 3000, "node").unwrap();
    let w = unsent(&s);
    assert_eq!(
        w.iter().map(|(_, bag, f)| (*bag, f.agency.as_str())).collect::<Vec<_>>(),
        [(a, "customs"), (a, "quarantine")]
    );
    assert_eq!(w[1].2, f("quarantine", 2), "the record whole");
    assert_eq!(s.unsent_findings(1).unwrap().len(), 1, "at most the limit");
    s.mark_findings_sent(w[0].0, 6000).unwrap();
    s.mark_findings_sent(w[0].0, 6100).unwrap();
    assert_eq!(unsent(&s).iter().map(|(id, _, _)| *id).collect::<Vec<_>>(), [w[1].0]);
}

#[test]
fn the_outbox_holds_complete_bags_until_the_broker_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let a = s.begin_bag(&start(1, Some("A"), 1000), "capture").unwrap();
    let b = s.begin_bag(&start(2, Some("B"), 1100), "capture").unwrap();
    let c = s.begin_bag(&start(3, Some("C"), 1200), "capture").unwrap();
    s.finish_bag(a, &frame(10, 8, 1), &calib(8), &[], false, 2000, "capture").unwrap();
    s.finish_bag(c, &frame(10, 8, 2), &calib(8), &[], false, 2100, "capture").unwrap();
    // b is still being scanned: not in the outbox, nor is a bag abandoned half way.
    let ids = |s: &Store, n| s.unpublished(n).unwrap().iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&s, 10), vec![a, c], "oldest first, complete only");
    assert_eq!(ids(&s, 1), vec![a], "at most the limit");
    s.mark_published(a, "twinspect.bag.L1.n1.1", 7, false, 3000, "node").unwrap();
    // Said twice (a retry after the broker's ack): one row, one audit entry.
    s.mark_published(a, "twinspect.bag.L1.n1.1", 9, true, 3100, "node").unwrap();
    assert_eq!(s.published(a).unwrap(), Some(("twinspect.bag.L1.n1.1".to_string(), 7)));
    assert_eq!(s.published(c).unwrap(), None);
    assert_eq!(ids(&s, 10), vec![c]);
    s.abandon_bag(b, "stopped", 3200, "capture").unwrap();
    assert_eq!(ids(&s, 10), vec![c], "a partial bag never leaves");
    let published = audit::entries(s.connection())
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "bag.published")
        .collect::<Vec<_>>();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].bag, Some(a));
    assert!(s.verify_audit().unwrap().ok());
    // The outbox survives a restart.
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(ids(&s, 10), vec![c]);
}

#[test]
fn a_bag_left_capturing_by_a_crash_is_flagged_partial_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let lost = s.begin_bag(&start(1, None, 10), "capture").unwrap();
    let saved = s.begin_bag(&start(2, None, 20), "capture").unwrap();
    // The scan of `saved` reached the disk but its record was not committed; a .part file was
    // being written.
    let f = frame(12, 8, 1);
    crate::files::io::write_raw_tiff(&dir.path().join(scan_rel(saved)), &f, "t").unwrap();
    std::fs::write(dir.path().join(SCANS_DIR).join("bag-00000009.tiff.part"), b"half").unwrap();
    let done = s.begin_bag(&start(3, None, 30), "capture").unwrap();
    s.finish_bag(done, &f, &calib(8), &[], false, 40, "capture").unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.recovered, vec![lost, saved]);
    let l = s.bag(lost).unwrap();
    assert_eq!(l.state, BagState::Partial);
    assert!(l.note.unwrap().contains("no image"));
    let k = s.bag(saved).unwrap();
    assert_eq!((k.state, k.lines), (BagState::Partial, Some(12)));
    assert_eq!(s.scan(saved).unwrap(), f, "the scan that reached the disk is kept");
    assert_eq!(s.bag(done).unwrap().state, BagState::Complete);
    assert!(!dir.path().join(SCANS_DIR).join("bag-00000009.tiff.part").exists());
    let trail = audit::entries(s.connection()).unwrap();
    assert_eq!(trail.iter().filter(|e| e.action == "bag.recovered").count(), 2);
    assert!(s.verify_audit().unwrap().ok());
    drop(s);
    assert!(Store::open(dir.path()).unwrap().recovered.is_empty(), "recovered once");
}

#[test]
fn decisions_and_marks_round_trip_through_the_archive() {
    let cfg = InspectionConfig::default();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let id = s.begin_bag(&start(5, Some("EMS123"), 100), "capture").unwrap();
    let mut rec = BagRecord::new(5, Some("EMS123".into()));
    let c = op("c001", Role::Customs);
    let q = op("q001", Role::Quarantine);
    let customs = cfg.agencies[0].id.clone();
    let quarantine = cfg.agencies[1].id.clone();
    let code0 = cfg.agencies[0].decisions[0].code.clone();
    let code1 = cfg.agencies[0].decisions[1].code.clone();
    let qcode = cfg.agencies[1].decisions[0].code.clone();
    let d = rec.decide(&cfg, &customs, &code0, &c, 200, None).unwrap().clone();
    s.record_decision(id, &d).unwrap();
    let d = rec.decide(&cfg, &customs, &code1, &c, 300, Some("second look")).unwrap().clone();
    s.record_decision(id, &d).unwrap();
    let d = rec.decide(&cfg, &quarantine, &qcode, &q, 310, None).unwrap().clone();
    s.record_decision(id, &d).unwrap();
    let cat = cfg.agencies[0].categories[0].id.clone();
    let qcat = cfg.agencies[1].categories[0].id.clone();
    let shape = Shape::Rect { x0: 1.0, y0: 2.0, x1: 10.0, y1: 20.0 };
    let m1 = rec.annotate(&cfg, &customs, &c, shape.clone(), &cat, "knife?", 320).unwrap();
    s.save_annotation(id, rec.annotations.last().unwrap(), MarkChange::Added, "c001", 320).unwrap();
    let m2 =
        rec.annotate(&cfg, &quarantine, &q, Shape::Text { at: [3.0, 4.0] }, &qcat, "fruit", 330).unwrap();
    s.save_annotation(id, rec.annotations.last().unwrap(), MarkChange::Added, "q001", 330).unwrap();
    let shape2 = Shape::Ellipse { cx: 5.0, cy: 5.0, rx: 2.0, ry: 3.0 };
    rec.edit_annotation(&cfg, m1, &c, shape2, &cat, "knife", 340).unwrap();
    let edited = rec.annotations.iter().find(|a| a.id == m1).unwrap().clone();
    s.save_annotation(id, &edited, MarkChange::Edited, "c001", 340).unwrap();
    rec.delete_annotation(&cfg, m2, &q).unwrap();
    s.delete_annotation(id, m2, "q001", 350).unwrap();
    assert!(s.delete_annotation(id, m2, "q001", 351).is_err(), "deleted once");

    let back = s.record(id).unwrap();
    assert_eq!(back.decisions, rec.decisions);
    assert_eq!(back.annotations, rec.annotations);
    assert_eq!(back.outcome(&cfg), rec.outcome(&cfg));
    // A new mark after a restart does not reuse the deleted mark's id.
    let mut back = back;
    let m3 = back.annotate(&cfg, &customs, &c, shape, &cat, "", 360).unwrap();
    assert!(m3 > m2);
    s.save_annotation(id, back.annotations.last().unwrap(), MarkChange::Added, "c001", 360).unwrap();

    let actions: Vec<String> =
        audit::entries(s.connection()).unwrap().into_iter().map(|e| e.action).collect();
    for a in ["bag.begin", "decision", "decision.change", "mark.add", "mark.edit", "mark.delete"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
    let change =
        audit::entries(s.connection()).unwrap().into_iter().find(|e| e.action == "decision.change").unwrap();
    assert!(change.detail.contains("second look") && change.detail.contains(&code0), "{}", change.detail);
    assert!(s.verify_audit().unwrap().ok());
    assert!(matches!(s.record_decision(999, &rec.decisions[0]), Err(StoreError::NoSuchBag(999))));
}

#[test]
fn search_by_time_tag_operator_agency_decision_and_category() {
    let cfg = InspectionConfig::default();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let customs = cfg.agencies[0].id.clone();
    let quarantine = cfg.agencies[1].id.clone();
    let c = op("c001", Role::Customs);
    let q = op("q001", Role::Quarantine);
    let mut ids = Vec::new();
    for i in 0..6u64 {
        let tag = format!("T{i}");
        let id = s.begin_bag(&start(i, Some(&tag), 1000 * i), "capture").unwrap();
        let mut rec = BagRecord::new(i, Some(tag.clone()));
        let code = &cfg.agencies[0].decisions[(i % 2) as usize].code;
        let d = rec.decide(&cfg, &customs, code, &c, 1000 * i + 1, None).unwrap().clone();
        s.record_decision(id, &d).unwrap();
        if i % 3 == 0 {
            let qcat = &cfg.agencies[1].categories[0].id;
            rec.annotate(&cfg, &quarantine, &q, Shape::Text { at: [1.0, 1.0] }, qcat, "", 1000 * i + 2)
                .unwrap();
            s.save_annotation(id, rec.annotations.last().unwrap(), MarkChange::Added, "q001", 1000 * i + 2)
                .unwrap();
        }
        ids.push(id);
    }
    let find = |q: BagQuery| s.bags(&q).unwrap().into_iter().map(|b| b.id).collect::<Vec<_>>();
    assert_eq!(find(BagQuery::default()), ids.iter().rev().copied().collect::<Vec<_>>(), "newest first");
    assert_eq!(find(BagQuery { limit: 2, ..Default::default() }), vec![ids[5], ids[4]]);
    assert_eq!(
        find(BagQuery { from_ms: Some(2000), to_ms: Some(4000), ..Default::default() }),
        vec![ids[3], ids[2]]
    );
    assert_eq!(find(BagQuery { item_id: Some("T4".into()), ..Default::default() }), vec![ids[4]]);
    assert_eq!(find(BagQuery { operator: Some("q001".into()), ..Default::default() }), vec![ids[3], ids[0]]);
    assert_eq!(
        find(BagQuery { agency: Some(quarantine.clone()), ..Default::default() }),
        vec![ids[3], ids[0]]
    );
    let code1 = cfg.agencies[0].decisions[1].code.clone();
    assert_eq!(find(BagQuery { decision: Some(code1), ..Default::default() }), vec![ids[5], ids[3], ids[1]]);
    let qcat = cfg.agencies[1].categories[0].id.clone();
    assert_eq!(
        find(BagQuery { category: Some(qcat), operator: Some("c001".into()), ..Default::default() }),
        vec![ids[3], ids[0]]
    );
    assert!(find(BagQuery { operator: Some("nobody".into()), ..Default::default() }).is_empty());
}

/// A trail of `n` logged entries after the migration's.
fn trail(n: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    for i in 0..n {
        s.log(i as u64, "c001", "login", None, json!({ "station": i })).unwrap();
    }
    (dir, s)
}

/// Play someone with the database file open in an SQL shell.
fn tamper(s: &Store, sql: &str) {
    s.connection()
        .execute_batch("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;")
        .unwrap();
    s.connection().execute_batch(sql).unwrap();
}

#[test]
fn the_trail_refuses_updates_and_deletes() {
    let (_d, s) = trail(3);
    let e = s.connection().execute("UPDATE audit SET actor = 'x' WHERE seq = 2", []).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    assert!(s.connection().execute("DELETE FROM audit WHERE seq = 2", []).is_err());
    assert!(s.verify_audit().unwrap().ok());
}

#[test]
fn verify_finds_an_edited_entry() {
    let (_d, s) = trail(5);
    tamper(&s, "UPDATE audit SET actor = 'q001' WHERE seq = 3");
    let r = s.verify_audit().unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("entry 3") && r.problems[0].contains("altered"), "{:?}", r.problems);
}

#[test]
fn verify_finds_a_deleted_entry() {
    let (_d, s) = trail(5);
    tamper(&s, "DELETE FROM audit WHERE seq = 4");
    let r = s.verify_audit().unwrap();
    assert!(!r.ok());
    assert!(r.problems.iter().any(|p| p.contains("4..4 are missing")), "{:?}", r.problems);
}

#[test]
fn verify_finds_a_deleted_entry_with_the_rest_renumbered() {
    let (_d, s) = trail(5);
    tamper(&s, "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3;");
    let r = s.verify_audit().unwrap();
    assert!(!r.ok());
    assert!(r.problems.iter().any(|p| p.contains("does not follow")), "{:?}", r.problems);
}

#[test]
fn verify_finds_reordered_entries() {
    let (_d, s) = trail(5);
    // Swap entries 2 and 4 whole (each keeps its own hash, so no single entry looks altered).
    tamper(
        &s,
        "UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 4;
         UPDATE audit SET seq = 4 WHERE seq = -2;",
    );
    let r = s.verify_audit().unwrap();
    assert!(!r.ok());
    assert!(r.problems.iter().any(|p| p.contains("does not follow")), "{:?}", r.problems);
}

#[test]
fn verify_finds_a_cut_tail() {
    let (_d, s) = trail(5);
    let before = s.verify_audit().unwrap().head.unwrap();
    tamper(&s, &format!("DELETE FROM audit WHERE seq = {}", before.0));
    let r = s.verify_audit().unwrap();
    assert!(r.problems.iter().any(|p| p.contains("removed from the end")), "{:?}", r.problems);
}

#[test]
fn a_record_and_its_audit_entry_commit_together() {
    let (dir, mut s) = trail(1);
    // Break the trail's head table: the decision's transaction must fail as a whole.
    let id = s.begin_bag(&start(1, None, 5), "capture").unwrap();
    s.connection().execute_batch("DROP TABLE audit_head").unwrap();
    let d = Decision {
        agency: "customs".into(),
        code: "release".into(),
        operator: "c001".into(),
        at_ms: 9,
        reason: None,
    };
    assert!(s.record_decision(id, &d).is_err());
    let n: i64 = s.connection().query_row("SELECT COUNT(*) FROM decisions", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0, "no decision without its audit entry");
    drop(dir);
}

#[test]
fn an_archive_of_an_older_schema_is_migrated_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let mut s = Store::open(dir.path()).unwrap();
        let id = s.begin_bag(&start(1, Some("OLD"), 5), "capture").unwrap();
        // Back to version 1, as a workstation of the first release left it.
        s.connection()
            .execute_batch(
                "DROP TABLE desk_publishing; DROP INDEX decisions_bag_agency; DROP TABLE decisions_sent; DROP TABLE hub_decided; DROP TABLE hub_taken; DROP TABLE training; DROP TABLE findings_sent; DROP TABLE findings; DROP TABLE photos; DROP TABLE published;
                 DROP TABLE barcodes;
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        id
    };
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as u32);
    assert_eq!(s.bag(id).unwrap().item_id.as_deref(), Some("OLD"));
    assert!(s.training("c001").unwrap().is_empty(), "the new table is there");
    assert!(s.record(id).unwrap().findings.is_empty(), "and the findings' table");
    assert!(s.record(id).unwrap().photos.is_empty(), "and the photos' table");
    let migrations =
        audit::entries(s.connection()).unwrap().into_iter().filter(|e| e.action == "schema.migrate").count();
    assert_eq!(
        migrations,
        2 * MIGRATIONS.len() - 1,
        "1 to the last, then all but 1 again after the downgrade"
    );
    assert!(s.verify_audit().unwrap().ok());
}

#[test]
fn two_writers_of_one_process_take_turns_and_the_chain_stays_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Store::open(dir.path()).unwrap();
    let id = a.begin_bag(&start(1, None, 1), "t").unwrap();
    let mut b = a.second_writer().unwrap();
    let n = 150;
    let t = std::thread::spawn(move || {
        for i in 0..n {
            b.log(i, "writer-b", "login", Some(id), json!({ "i": i })).unwrap();
        }
    });
    for i in 0..n {
        let d = Decision {
            agency: "customs".into(),
            code: if i % 2 == 0 { "release".into() } else { "open".into() },
            operator: "c001".into(),
            at_ms: i,
            reason: Some("again".into()),
        };
        a.record_decision(id, &d).unwrap();
    }
    t.join().unwrap();
    let r = a.verify_audit().unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!(r.entries, u64::from(SCHEMA_VERSION) + 1 + 2 * n);
}

#[test]
fn a_hub_bag_is_taken_once_byte_for_byte_and_its_decisions_reach_the_hub_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let f = frame(40, 8, 3);
    let scan = crate::files::io::encode_raw_tiff(Path::new("hub"), &f, "node's bag 7").unwrap();
    let hub = HubBag { line: "l1".into(), node: "n1".into(), bag: 7 };
    let b = start(7, Some("EMS-1"), 1000);
    let (id, new) = s.take_hub_bag(&hub, &b, &scan, &calib(8), &[3], false, 2000, "station").unwrap();
    assert!(new);
    // Delivered again (a station died holding it): the same bag, not a second one.
    let (again, new) = s.take_hub_bag(&hub, &b, &scan, &calib(8), &[3], false, 2000, "station").unwrap();
    assert_eq!((again, new), (id, false));
    assert_eq!(s.bags(&BagQuery::default()).unwrap().len(), 1);
    let row = s.bag(id).unwrap();
    assert_eq!(row.scan_sha256.as_deref(), Some(hex_sha256(&scan).as_str()), "the hub's scan, byte for byte");
    assert_eq!((row.state, row.lines, row.missing_rows.clone()), (BagState::Complete, Some(40), vec![3]));
    assert_eq!(s.scan(id).unwrap(), f);
    assert_eq!(s.hub_bag(id).unwrap(), Some(hub.clone()));
    assert_eq!(s.hub_taken(&HubBag { bag: 8, ..hub.clone() }).unwrap(), None);
    // A scan that is not what it says is refused, and nothing is taken.
    let other = HubBag { bag: 9, ..hub.clone() };
    assert!(s.take_hub_bag(&other, &b, b"not a tiff", &calib(8), &[], false, 2000, "station").is_err());
    let wide = BagStart { channels: 16, ..start(9, None, 1000) };
    assert!(s.take_hub_bag(&other, &wide, &scan, &calib(16), &[], false, 2000, "station").is_err());
    assert_eq!(s.hub_taken(&other).unwrap(), None);
    // The agency's decision reached the hub: kept once, audited once.
    assert_eq!(s.hub_decided(id, "customs").unwrap(), None);
    let d = HubDecided {
        code: "clear".into(),
        operator: "c001".into(),
        elsewhere: false,
        stream_seq: 12,
        at_ms: 3000,
    };
    s.record_hub_decided(id, "customs", &d).unwrap();
    s.record_hub_decided(id, "customs", &HubDecided { code: "open".into(), ..d.clone() }).unwrap();
    assert_eq!(s.hub_decided(id, "customs").unwrap(), Some(d));
    assert_eq!(s.hub_decided(id, "quarantine").unwrap(), None);
    let entries = audit::entries(s.connection()).unwrap();
    assert_eq!(entries.iter().filter(|e| e.action == "bag.from_hub").count(), 1);
    assert_eq!(entries.iter().filter(|e| e.action == "hub.decided").count(), 1);
    assert!(s.verify_audit().unwrap().ok());
}

#[test]
fn a_hub_decision_changed_here_after_it_went_is_a_correction_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let scan = crate::files::io::encode_raw_tiff(Path::new("hub"), &frame(40, 8, 3), "bag").unwrap();
    let hub = HubBag { line: "l1".into(), node: "n1".into(), bag: 7 };
    let (id, _) =
        s.take_hub_bag(&hub, &start(7, None, 1000), &scan, &calib(8), &[], false, 2000, "st").unwrap();
    let dec = |code: &str, at_ms: u64| Decision {
        agency: "customs".into(),
        code: code.into(),
        operator: "c001".into(),
        at_ms,
        reason: None,
    };
    s.record_decision(id, &dec("release", 3000)).unwrap();
    let sent = HubDecided {
        code: "release".into(),
        operator: "c001".into(),
        elsewhere: false,
        stream_seq: 12,
        at_ms: 3000,
    };
    s.record_hub_decided(id, "customs", &sent).unwrap();
    assert!(s.hub_changed("customs", 0, 10).unwrap().is_empty(), "the hub holds the one in force");
    s.record_decision(id, &dec("open", 4000)).unwrap();
    let c = s.hub_changed("customs", 0, 10).unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].bag, &c[0].hub, c[0].decision.code.as_str(), c[0].corrects), (id, &hub, "open", 12));
    assert_eq!(Some(c[0].scan_sha256.clone()), s.bag(id).unwrap().scan_sha256);
    assert!(s.hub_changed("customs", id, 10).unwrap().is_empty(), "only bags after the one given");
    assert!(s.hub_changed("quarantine", 0, 10).unwrap().is_empty());
    let fixed = HubDecided { code: "open".into(), stream_seq: 15, at_ms: 4000, ..sent.clone() };
    s.record_hub_corrected(id, "customs", &fixed).unwrap();
    s.record_hub_corrected(id, "customs", &fixed).unwrap();
    // A correction read back late (an older message) changes nothing back.
    s.record_hub_corrected(id, "customs", &HubDecided { stream_seq: 13, ..sent.clone() }).unwrap();
    assert_eq!(s.hub_decided(id, "customs").unwrap(), Some(fixed));
    assert!(s.hub_changed("customs", 0, 10).unwrap().is_empty(), "sent once");
    assert_eq!(s.last_hub_taken().unwrap(), id);
    let entries = audit::entries(s.connection()).unwrap();
    assert_eq!(entries.iter().filter(|e| e.action == "hub.corrected").count(), 1);
    assert!(s.verify_audit().unwrap().ok());
    // An archive of version 9 kept the time a decision was sent: upgraded, it takes the
    // decision in force as the one the hub holds (no flood of corrections at the upgrade).
    s.connection().execute_batch("UPDATE hub_decided SET at_ms = 99; PRAGMA user_version = 9;").unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.hub_decided(id, "customs").unwrap().map(|d| d.at_ms), Some(4000));
    assert!(s.hub_changed("customs", 0, 10).unwrap().is_empty());
}

#[test]
fn a_desks_decisions_go_to_the_hub_after_their_bag_once_per_agency_and_hub_bags_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let a = s.begin_bag(&start(1, Some("A"), 1000), "workstation").unwrap();
    let b = s.begin_bag(&start(2, Some("B"), 1100), "workstation").unwrap();
    s.finish_bag(a, &frame(10, 8, 1), &calib(8), &[], false, 2000, "workstation").unwrap();
    s.finish_bag(b, &frame(10, 8, 2), &calib(8), &[], false, 2100, "workstation").unwrap();
    // A bag taken from the hub (an earlier central screening run on this archive) is the hub's.
    let scan = crate::files::io::encode_raw_tiff(Path::new("hub"), &frame(10, 8, 3), "hub").unwrap();
    let hub = HubBag { line: "L1".into(), node: "n1".into(), bag: 5 };
    let (taken, _) =
        s.take_hub_bag(&hub, &start(5, None, 900), &scan, &calib(8), &[], false, 950, "x").unwrap();
    assert_eq!(s.unpublished(10).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [a, b]);
    // A desk publishes what it scans from its first publishing on, never a replay's bag or a
    // training bag.
    let ids = |v: Vec<BagRow>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(s.unpublished_desk(0, 10).unwrap()), [a, b]);
    let replayed = BagStart { source: "replay:///r.rec?speed=max (recorded from x)", ..start(6, None, 960) };
    let r = s.begin_bag(&replayed, "workstation").unwrap();
    s.finish_bag(r, &frame(10, 8, 4), &calib(8), &[], false, 970, "workstation").unwrap();
    s.connection()
        .execute(
            "INSERT INTO training (bag, operator, agency, threat, result, decision_ms, at_ms)
             VALUES (?1, 't001', 'customs', NULL, 'miss', 1, 1)",
            [b],
        )
        .unwrap();
    assert_eq!(ids(s.unpublished_desk(0, 10).unwrap()), [a]);
    let since = s.desk_publishing_since(990, "node:d1").unwrap();
    assert_eq!(since, r, "the last bag when it first published");
    assert_eq!(s.desk_publishing_since(5000, "node:d1").unwrap(), since, "ever after");
    assert!(s.unpublished_desk(since, 10).unwrap().is_empty());
    assert_eq!(ids(s.unpublished_desk(0, 10).unwrap()), [a]);
    let dec = |agency: &str, code: &str, at_ms: u64| Decision {
        agency: agency.into(),
        code: code.into(),
        operator: "c001".into(),
        at_ms,
        reason: None,
    };
    let desk = ["customs".to_string()];
    s.record_decision(a, &dec("customs", "release", 3000)).unwrap();
    s.record_decision(a, &dec("customs", "open", 3100)).unwrap();
    s.record_decision(a, &dec("quarantine", "release", 3200)).unwrap();
    s.record_decision(b, &dec("customs", "release", 3300)).unwrap();
    s.record_decision(taken, &dec("customs", "release", 3400)).unwrap();
    let mark = Annotation::new(0, "customs", "c001", Shape::Text { at: [1.0, 2.0] }, "other", "here", 3050);
    s.record_decision_with_marks(b, &dec("quarantine", "open", 3350), &[]).unwrap();
    s.save_annotation(a, &Annotation { id: 1, ..mark.clone() }, MarkChange::Added, "c001", 3050).unwrap();
    assert!(s.unsent_decisions(&desk, 0, 10).unwrap().is_empty(), "no bag is on the hub yet");
    s.mark_published(a, "twinspect.bag.L9.d1.1", 4, false, 3500, "node:d1").unwrap();
    let w = s.unsent_decisions(&desk, 0, 10).unwrap();
    // The agency's current decision only, with its marks and the scan it was taken on.
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0].bag, w[0].decision.code.as_str(), w[0].ended_ms), (a, "open", Some(2000)));
    assert_eq!(w[0].marks.iter().map(|m| m.note.as_str()).collect::<Vec<_>>(), ["here"]);
    assert_eq!(Some(w[0].scan_sha256.clone()), s.bag(a).unwrap().scan_sha256);
    let both = ["customs".to_string(), "quarantine".to_string()];
    assert_eq!(s.unsent_decisions(&both, 0, 10).unwrap().len(), 2);
    assert_eq!(s.unsent_decisions(&both, 0, 1).unwrap().len(), 1, "at most the limit");
    assert_eq!(s.decision_sent(a, "customs").unwrap(), None);
    assert_eq!(w[0].corrects, None, "a first decision");
    let ours = |stream_seq, code, corrects| OnHub { stream_seq, code, corrects, station: None };
    s.mark_decision_sent(&w[0], &ours(11, "open", None), 3600, "node:d1").unwrap();
    s.mark_decision_sent(&w[0], &ours(12, "release", None), 3700, "node:d1").unwrap();
    assert_eq!(s.decision_sent(a, "customs").unwrap().as_deref(), Some("open"), "once");
    assert!(s.unsent_decisions(&desk, 0, 10).unwrap().is_empty());
    // A change after it reached the hub goes as a correction of the message the hub holds.
    s.record_decision(a, &dec("customs", "detain", 3800)).unwrap();
    let c = s.unsent_decisions(&desk, 0, 10).unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].decision.code.as_str(), c[0].corrects), ("detain", Some(11)));
    assert!(s.unsent_decisions(&both, a, 10).unwrap().is_empty(), "only bags after the one given");
    s.mark_decision_sent(&c[0], &ours(15, "detain", Some(11)), 3900, "node:d1").unwrap();
    s.mark_decision_sent(&c[0], &ours(16, "detain", Some(11)), 3950, "node:d1").unwrap();
    assert_eq!(s.decision_sent(a, "customs").unwrap().as_deref(), Some("detain"));
    assert!(s.unsent_decisions(&desk, 0, 10).unwrap().is_empty(), "sent once");
    // The earlier marking, repeated (a run that stopped before it), changes nothing back.
    s.mark_decision_sent(&w[0], &ours(11, "open", None), 4000, "node:d1").unwrap();
    assert_eq!(s.decision_sent(a, "customs").unwrap().as_deref(), Some("detain"));
    // Another station's decision that the desk takes as its own is what the hub holds: marked
    // by its own row, it is not sent back to the hub.
    s.record_decision(a, &dec("customs", "release", 4100)).unwrap();
    let c = s.unsent_decisions(&desk, 0, 10).unwrap();
    assert_eq!(c.len(), 1);
    let kept = s.decision_row_at(a, "customs", 4100).unwrap().unwrap();
    assert_eq!(kept, c[0].row);
    assert_eq!(s.decision_row_at(a, "customs", 4099).unwrap(), None);
    let theirs = OnHub { station: Some("hub-c2"), ..ours(17, "release", Some(15)) };
    s.mark_decision_sent(&UnsentDecision { row: kept, ..c[0].clone() }, &theirs, 4200, "node:d1").unwrap();
    assert!(s.unsent_decisions(&desk, 0, 10).unwrap().is_empty(), "not sent back to the hub");
    // A correction that can never go (what it corrects is gone from the hub): out of the way.
    s.record_decision(a, &dec("customs", "detain", 3800)).unwrap();
    let c = s.unsent_decisions(&desk, 0, 10).unwrap();
    assert_eq!(c[0].corrects, Some(17));
    s.mark_decision_refused(&c[0], "gone", 4300, "node:d1").unwrap();
    assert!(s.unsent_decisions(&desk, 0, 10).unwrap().is_empty());
    assert_eq!(
        s.decision_sent(a, "customs").unwrap().as_deref(),
        Some("release"),
        "the hub's, as it holds it"
    );
    // A first decision that can never go (its subject on the hub holds a message that is not
    // a link): out of the way too, the hub holding nothing of the desk's.
    let q = s.unsent_decisions(&both, 0, 10).unwrap();
    let q = q.iter().find(|u| u.decision.agency == "quarantine").unwrap();
    assert_eq!(q.corrects, None);
    s.mark_decision_refused(q, "not a link", 4400, "node:d1").unwrap();
    s.mark_decision_refused(q, "not a link", 4401, "node:d1").unwrap();
    assert!(s.unsent_decisions(&both, 0, 10).unwrap().is_empty());
    assert_eq!(s.decision_sent(a, "quarantine").unwrap().as_deref(), Some(""));
    let refused =
        audit::entries(s.connection()).unwrap().into_iter().filter(|e| e.action == "decision.refused");
    assert_eq!(refused.count(), 1, "audited once");
    assert_eq!(s.last_published().unwrap(), a);
    assert_eq!(s.current_decision(a, "customs").unwrap(), Some(dec("customs", "detain", 3800)));
    assert_eq!(s.current_decision(a, "security").unwrap(), None);
    let r = s.record(a).unwrap();
    assert_eq!(s.current_decision(a, "quarantine").unwrap().as_ref(), r.current("quarantine"));
    // The audit entries' details of one action.
    let details = |s: &Store, action: &str| -> Vec<String> {
        let entries = audit::entries(s.connection()).unwrap().into_iter();
        entries.filter(|e| e.action == action).map(|e| e.detail).collect()
    };
    let sent = details(&s, "decision.published");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("\"stream_seq\":11"), "{sent:?}");
    let corrections = details(&s, "decision.correction_published");
    // The desk's correction; the hub's later one it took as the agency's is audited as kept,
    // naming the station that decided it.
    assert_eq!(corrections.len(), 1, "{corrections:?}");
    assert!(corrections[0].contains("\"corrects\":11") && corrections[0].contains("\"stream_seq\":15"));
    assert!(corrections[0].contains("\"code\":\"detain\""), "{corrections:?}");
    let kept = details(&s, "decision.hub_kept");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].contains("\"station\":\"hub-c2\"") && kept[0].contains("\"code\":\"release\""),
        "{kept:?}"
    );
    assert!(s.verify_audit().unwrap().ok());
}
