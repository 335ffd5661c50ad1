//! The archive as it is used and abused: `capture --data`, `bags`, `audit verify`; a harness that
//! kills the writing process with SIGKILL at random moments, many times, and then holds the
//! archive to everything the process had acknowledged; a full disk and a read-only directory
//! (a small tmpfs in a private mount namespace, so this needs root, as CI has).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use twinspect::domain::rng::Rng;
use twinspect::files::store::{BagState, Store};

mod common;
use common::{run, twinspect};

/// Start `c`, let it run `after`, SIGKILL it; the lines it had written to stdout by then.
fn kill_after(c: &mut Command, after: Duration) -> Vec<String> {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader =
        std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
    std::thread::sleep(after);
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no rollback runs in the victim
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn capture_archives_bags_that_bags_lists_and_audit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = common::archive_bags(&data, 5, 3);
    let acked: Vec<&str> = out.lines().filter(|l| l.starts_with("archived bag ")).collect();
    assert_eq!(acked.len(), 3, "{out}");
    let (ok, list, err) = run(twinspect().args(["bags", "--data"]).arg(&data));
    assert!(ok, "{err}");
    let rows: Vec<&str> = list.lines().collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert!(rows[0].starts_with("3\t") && rows[2].starts_with("1\t"), "newest first, id first: {list}");
    assert!(
        rows.iter().all(|r| r.contains("\tcomplete\t") && r.contains("pending(customs+quarantine)")),
        "{list}"
    );
    // Search by the tag of the middle bag.
    let tag = rows[1].split('\t').find_map(|f| f.strip_prefix("tag=")).unwrap().to_string();
    let (_, one, _) = run(twinspect().args(["bags", "--item", &tag, "--data"]).arg(&data));
    assert_eq!(one.lines().count(), 1);
    assert!(one.starts_with("2\t"), "{one}");
    let (ok, v, err) = run(twinspect().args(["audit", "verify", "--data"]).arg(&data));
    // One entry per schema migration, then each bag's begin and complete.
    let entries = twinspect::files::store::SCHEMA_VERSION + 3 * 2;
    assert!(ok && v.starts_with(&format!("audit trail intact: {entries} entries")), "{v}{err}");
    // The scans are the archive's: each file's SHA-256 as acknowledged.
    let store = Store::open_read(&data).unwrap();
    for line in acked {
        let f: Vec<&str> = line.split(' ').collect();
        let row = store.bag(f[2].parse().unwrap()).unwrap();
        assert_eq!(row.scan_sha256.as_deref(), Some(f[4]));
        assert_eq!(store.scan(row.id).unwrap().lines(), row.lines.unwrap());
    }
    // Without an archive: a clear refusal, not an empty list.
    let (ok, _, err) = run(twinspect().args(["bags", "--data"]).arg(dir.path().join("none")));
    assert!(!ok && err.contains("no archive at"), "{err}");
    let (ok, _, err) = run(twinspect().args(["bags", "--from", "2026-02-30", "--data"]).arg(&data));
    assert!(!ok && err.contains("a time is"), "{err}");
}

#[test]
fn audit_verify_fails_on_a_tampered_archive() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::archive_bags(&data, 6, 1);
    // Someone with an SQL shell drops the guard and edits what a bag's entry says.
    let c = rusqlite_free_edit(&data);
    assert!(c, "tampered");
    let (ok, out, err) = run(twinspect().args(["audit", "verify", "--data"]).arg(&data));
    assert!(!ok, "verify must fail: {out}");
    assert!(out.contains("BROKEN: entry") && out.contains("altered"), "{out}");
    assert!(err.contains("broken"), "{err}");
}

/// Edit the archive the way a person with `sqlite3` would, through the store's own connection
/// type (the sqlite3 shell is not installed in CI).
fn rusqlite_free_edit(data: &Path) -> bool {
    let store = Store::open(data).unwrap();
    let c = store.connection();
    c.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET detail = '{\"lines\":1}' WHERE action = 'bag.complete';")
        .is_ok()
}

fn check_capture_acks(data: &Path, acked: &BTreeMap<i64, String>) {
    let store = Store::open(data).unwrap(); // the writer's open runs recovery
    for (id, sha) in acked {
        let row = store.bag(*id).unwrap_or_else(|e| panic!("acknowledged bag {id} lost: {e}"));
        assert_eq!(row.state, BagState::Complete, "bag {id}");
        assert_eq!(row.scan_sha256.as_deref(), Some(sha.as_str()), "bag {id}");
        store.scan(*id).unwrap_or_else(|e| panic!("bag {id}'s scan: {e}"));
    }
    let all = store.bags(&Default::default()).unwrap();
    assert!(all.iter().all(|b| b.state != BagState::Capturing), "nothing left capturing after recovery");
    for b in all.iter().filter(|b| b.state == BagState::Partial) {
        assert!(
            b.note.as_deref().is_some_and(|n| n.contains("interrupted") || n.contains("stopped")),
            "{b:?}"
        );
    }
    let r = store.verify_audit().unwrap();
    assert!(r.ok(), "{:?}", r.problems);
}

#[test]
fn capture_killed_at_random_moments_keeps_every_acknowledged_bag() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let seed = 20261128;
    let mut rng = Rng::new(seed);
    let mut acked: BTreeMap<i64, String> = BTreeMap::new();
    let mut partial_seen = 0;
    for round in 0..10 {
        let after = Duration::from_millis(rng.int(300, 2500) as u64);
        let lines = kill_after(
            twinspect()
                .args([
                    "capture",
                    "--source",
                    &format!("synthetic://?seed={round}&speed=20"),
                    "--bags",
                    "1000",
                    "--data",
                ])
                .arg(&data),
            after,
        );
        for l in &lines {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() == 5 && f[0] == "archived" {
                acked.insert(f[2].parse().unwrap(), f[4].to_string());
            }
        }
        check_capture_acks(&data, &acked);
        partial_seen = Store::open_read(&data)
            .unwrap()
            .bags(&Default::default())
            .unwrap()
            .iter()
            .filter(|b| b.state == BagState::Partial)
            .count();
        eprintln!(
            "round {round} (seed {seed}): killed after {after:?}; {} bags acknowledged so far",
            acked.len()
        );
    }
    assert!(acked.len() >= 5, "the harness must have let some bags through: {}", acked.len());
    assert!(partial_seen >= 1, "some kill must have landed mid-bag and been recovered as partial");
}

#[test]
fn records_killed_at_random_moments_keep_every_acknowledged_decision_and_mark() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let seed = 7;
    let mut rng = Rng::new(seed);
    // Acknowledged: decisions per bag in order, marks per bag, scans per bag.
    let mut decisions: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
    let mut marks: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    let mut scans: BTreeMap<i64, String> = BTreeMap::new();
    let mut recovered = 0;
    let t0 = Instant::now();
    for round in 0..25 {
        let after = Duration::from_millis(rng.int(50, 600) as u64);
        let lines = kill_after(
            twinspect()
                .args(["store-exercise", "--bags", "100000", "--seed", &round.to_string(), "--data"])
                .arg(&data),
            after,
        );
        for l in &lines {
            let f: Vec<&str> = l.split(' ').collect();
            match f.as_slice() {
                ["ack", "scan", id, sha] => {
                    scans.insert(id.parse().unwrap(), sha.to_string());
                }
                ["ack", "decision", id, agency, code] => decisions
                    .entry(id.parse().unwrap())
                    .or_default()
                    .push((agency.to_string(), code.to_string())),
                ["ack", "mark", id, m] => {
                    marks.entry(id.parse().unwrap()).or_default().push(m.parse().unwrap())
                }
                ["recovered", _] => recovered += 1,
                _ => {}
            }
        }
        let store = Store::open(&data).unwrap();
        for (id, ds) in &decisions {
            let rec = store.record(*id).unwrap();
            let got: Vec<(String, String)> =
                rec.decisions.iter().map(|d| (d.agency.clone(), d.code.clone())).collect();
            assert!(got.starts_with(ds), "bag {id}: acknowledged {ds:?}, archived {got:?}");
            assert!(got.len() <= ds.len() + 1, "at most one unacknowledged commit per bag");
        }
        for (id, ms) in &marks {
            let rec = store.record(*id).unwrap();
            for m in ms {
                assert!(rec.annotations.iter().any(|a| a.id == *m), "bag {id}: acknowledged mark {m} lost");
            }
        }
        for (id, sha) in &scans {
            assert_eq!(store.bag(*id).unwrap().scan_sha256.as_deref(), Some(sha.as_str()));
        }
        let r = store.verify_audit().unwrap();
        assert!(r.ok(), "round {round}: {:?}", r.problems);
    }
    let n: usize = decisions.values().map(Vec::len).sum();
    eprintln!(
        "25 kills in {:.1} s (seed {seed}): {n} decisions, {} marks, {} scans acknowledged; {recovered} bags recovered",
        t0.elapsed().as_secs_f64(),
        marks.values().map(Vec::len).sum::<usize>(),
        scans.len()
    );
    assert!(n >= 50, "the harness must have let records through: {n}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Run `script` (sh) in a private mount namespace with a small tmpfs at `$DATA`.
fn in_small_tmpfs(size: &str, script: &str) -> (bool, String, String) {
    assert!(is_root(), "the full-disk test mounts a tmpfs: run the tests as root (CI does)");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!("set -u; mount -t tmpfs -o size={size} twinspect-test \"$DATA\" || exit 99\n{script}"))
        .env("DATA", &data)
        .env("T", env!("CARGO_BIN_EXE_twinspect")))
}

#[test]
fn a_full_disk_stops_capture_with_a_clear_error_and_loses_nothing_saved() {
    // Bags of the desk profile are ~5-7 MB each: 16 MB holds two or three.
    let (ok, out, err) = in_small_tmpfs(
        "16m",
        r#"
        "$T" capture --source 'synthetic://?seed=9&speed=20' --bags 20 --data "$DATA"; echo "capture-rc=$?"
        "$T" bags --data "$DATA"; echo "bags-rc=$?"
        "$T" audit verify --data "$DATA"; echo "verify-rc=$?"
        mount -o remount,ro "$DATA"
        "$T" capture --source 'synthetic://?seed=9&speed=20' --bags 1 --data "$DATA"; echo "ro-rc=$?"
        "#,
    );
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("capture-rc=") && !out.contains("capture-rc=0"),
        "capture must fail on a full disk:\n{out}\n{err}"
    );
    assert!(err.contains("disk is full"), "the error says why:\n{err}");
    assert!(err.contains("bags archived before it are safe"), "{err}");
    let archived = out.lines().filter(|l| l.starts_with("archived bag ")).count();
    assert!(archived >= 1, "some bags fit before the disk filled:\n{out}");
    let complete = out.lines().filter(|l| l.contains("\tcomplete\t")).count();
    assert_eq!(complete, archived, "every acknowledged bag listed complete:\n{out}");
    assert!(out.contains("bags-rc=0") && out.contains("verify-rc=0"), "{out}\n{err}");
    assert!(out.contains("audit trail intact"), "{out}");
    assert!(out.contains("ro-rc=") && !out.contains("ro-rc=0"), "{out}");
    // The bag the disk could not take is flagged at once, not left looking captured.
    assert!(!out.contains("\tcapturing\t"), "{out}");
    assert!(out.contains("\tpartial\t"), "{out}");
    assert!(err.contains("cannot be written (read-only"), "a read-only directory is named as such:\n{err}");
}

#[test]
fn exports_for_people_a_csv_of_records_and_a_png_with_the_marks_both_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::archive_bags(&data, 8, 2);
    // Customs holds bag 1 (after a change of mind, with a reason in Chinese) and marks it.
    let mut r = common::Recorder::open(&data);
    r.decide(1, "customs", "release", 1000, None);
    r.decide(1, "customs", "detain", 2000, Some("刀具 knife"));
    r.mark(1, "customs", [100.0, 300.0, 300.0, 700.0], "blade", 3000);
    drop(r);
    let csv = dir.path().join("records.csv");
    let (ok, _, err) = run(twinspect().args(["export", "csv", "--out"]).arg(&csv).arg("--data").arg(&data));
    assert!(ok, "{err}");
    // Python's csv module, an independent reader, with the byte-order mark Excel needs.
    let py = Command::new("python3")
        .arg("-c")
        .arg(
            "import csv,sys,json; r=list(csv.DictReader(open(sys.argv[1], encoding='utf-8-sig'))); \
             print(json.dumps(r, ensure_ascii=False))",
        )
        .arg(&csv)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["archive_id"], "1", "oldest first");
    assert_eq!(rows[0]["customs_decision"], "detain");
    assert_eq!(rows[0]["customs_reason"], "刀具 knife");
    assert_eq!(rows[0]["customs_changes"], "1");
    assert_eq!(rows[0]["customs_marks"], "1");
    assert_eq!(rows[0]["outcome"], "pending (quarantine)");
    assert_eq!(rows[1]["customs_decision"], "");
    assert_eq!(rows[0]["state"], "complete");

    let png = dir.path().join("bag1.png");
    let (ok, _, err) =
        run(twinspect().args(["export", "png", "--bag", "1", "--out"]).arg(&png).arg("--data").arg(&data));
    assert!(ok, "{err}");
    let img = image::open(&png).unwrap().to_rgba8();
    assert_eq!(img.height(), 1536, "one row per channel");
    // Kept for people to look at.
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::copy(&png, shots.join("export-bag-with-marks.png")).unwrap();
    // The rectangle's top edge (channel 700 from the bottom) is in customs red along x 100..300.
    let y = 1536 - 700;
    let red = (100..300).filter(|&x| img.get_pixel(x, y).0[..3] == [230, 40, 40]).count();
    assert!(red > 180, "the mark's outline is drawn: {red}");
    let legend: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("bag1.png.marks.json")).unwrap()).unwrap();
    assert_eq!(legend["marks"][0]["note"], "blade");
    let (ok, _, _) =
        run(twinspect().args(["export", "png", "--bag", "99", "--out"]).arg(&png).arg("--data").arg(&data));
    assert!(!ok, "no bag 99");

    let store = Store::open_read(&data).unwrap();
    let actions: Vec<String> = twinspect::files::store::audit::entries(store.connection())
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"export.csv".into()) && actions.contains(&"export.png".into()), "{actions:?}");
    assert!(store.verify_audit().unwrap().ok());
}

#[test]
fn a_training_report_shows_the_operators_sensitivity_and_plots() {
    use twinspect::domain::tip::{TrainingResult, sensitivity};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let results = {
        use TrainingResult::*;
        [
            Hit,
            Hit,
            Miss,
            CorrectReject,
            FalseAlarm,
            Hit,
            CorrectReject,
            CorrectReject,
            Hit,
            Miss,
            Hit,
            CorrectReject,
        ]
    };
    {
        let mut s = Store::open(&data).unwrap();
        for (i, r) in results.iter().enumerate() {
            let start = twinspect::files::store::BagStart {
                scanner_bag: i as u64,
                item_id: None,
                source: "replay",
                profile: "desk-140",
                channels: 8,
                at_ms: 1000 * i as u64,
            };
            let id = s.begin_bag(&start, "t").unwrap();
            let threat = matches!(r, TrainingResult::Hit | TrainingResult::Miss).then_some("kitchen knife");
            s.record_training(
                id,
                "c001",
                "customs",
                threat,
                *r,
                1500 + 700 * i as u64,
                1000 * i as u64 + 900,
            )
            .unwrap();
        }
    }
    let out = dir.path().join("report");
    let (ok, _, err) = run(twinspect()
        .args(["train", "report", "--operator", "c001", "--out"])
        .arg(&out)
        .arg("--data")
        .arg(&data));
    assert!(ok, "{err}");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let s = sensitivity(&results);
    for (id, v) in [("d-prime", s.d_prime), ("hit-rate", s.hit_rate), ("fa-rate", s.false_alarm_rate)] {
        assert!(html.contains(&format!("id=\"{id}\">{v:.2}<")), "{id} = {v:.2} in the report");
    }
    assert_eq!(html.matches("<svg").count(), 2, "two plots");
    assert_eq!(html.matches("<tr><td>").count(), results.len());
    // Kept for people to look at (ImageMagick turns the page's plots into PNG in CI).
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::copy(out.join("index.html"), shots.join("training-report.html")).unwrap();
    let (ok, _, err) = run(twinspect()
        .args(["train", "report", "--operator", "nobody", "--out"])
        .arg(&out)
        .arg("--data")
        .arg(&data));
    assert!(!ok && err.contains("no training results"), "{err}");
}

/// "Save image" on a station: the bag as that screen shows it (its image function, the marks
/// it shows) saved as a PNG beside the archive and audited; the same picture `export png` makes
/// with that preset.
#[test]
fn a_station_saves_its_view_of_an_archived_bag_as_the_export_would() {
    use twinspect::desk::archiver::{Archiver, Reply, ViewRequest};
    use twinspect::domain::inspection::InspectionConfig;
    use twinspect::domain::view::Preset;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::archive_bags(&data, 8, 1);
    let mut a = Archiver::open(&data, "test", "desk-140", 1536).unwrap();
    a.adopt(77, 1);
    let ask = |a: &mut Archiver, key: u64| {
        a.save_view(ViewRequest {
            station: 1,
            key,
            view: Preset::Hp.settings(),
            agencies: vec!["quarantine".into()],
            config: InspectionConfig::default(),
            actor: "q001".into(),
            station_name: "quarantine".into(),
        })
    };
    assert!(matches!(ask(&mut a, 5), Err(twinspect::desk::archiver::ArchiveError::NotArchived)));
    ask(&mut a, 77).unwrap();
    let t0 = Instant::now();
    let saved = loop {
        if let Some(Reply::View { station, result }) = a.poll().into_iter().next() {
            assert_eq!(station, 1);
            break result.unwrap();
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "the view was never saved");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(saved.starts_with(data.join("exports")), "{}", saved.display());
    a.close();
    drop(a);
    let png = dir.path().join("hp.png");
    let (ok, _, err) = run(twinspect()
        .args(["export", "png", "--bag", "1", "--preset", "hp", "--cpu", "--out"])
        .arg(&png)
        .arg("--data")
        .arg(&data));
    assert!(ok, "{err}");
    let (x, y) = (image::open(&saved).unwrap().to_rgba8(), image::open(&png).unwrap().to_rgba8());
    assert!(x == y, "the saved view differs from `export png --preset hp`");
    let (_, audit, _) = run(twinspect().args(["audit", "list", "--bag", "1", "--data"]).arg(&data));
    assert!(audit.contains("export.png") && audit.contains("q001"), "{audit}");
}

/// `kill -9` in the middle of a DICOS export: every file it leaves under its own name is whole
/// (written aside, then renamed), the archive's records and audit chain are untouched.
#[test]
fn a_dicos_export_killed_at_random_leaves_whole_files_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::archive_bags(&data, 9, 1);
    let before = Store::open_read(&data).unwrap().record(1).unwrap();
    let mut rng = Rng::new(5);
    let mut whole = 0;
    for round in 0..12 {
        let out = dir.path().join(format!("x{round}"));
        let after = Duration::from_millis(20 + rng.next_u64() % 400);
        kill_after(
            twinspect().args(["export", "--dicos", "--bag", "1", "--out"]).arg(&out).arg("--data").arg(&data),
            after,
        );
        for f in std::fs::read_dir(&out).into_iter().flatten().flatten() {
            let p = f.path();
            if p.extension().is_some_and(|x| x == "dcs") {
                let bytes = std::fs::read(&p).unwrap();
                twinspect::files::io::dicom::parse_file(&bytes)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                whole += 1;
            }
        }
        let (ok, v, err) = run(twinspect().args(["audit", "verify", "--data"]).arg(&data));
        assert!(ok && v.starts_with("audit trail intact"), "round {round}: {v}{err}");
    }
    assert_eq!(Store::open_read(&data).unwrap().record(1).unwrap(), before);
    assert!(whole > 0, "no export got as far as a file in 12 tries");
}
