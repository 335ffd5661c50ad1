//! Recording and replay as a user runs them: `capture --record` from a live source, then
//! `capture --source replay://FILE` gives byte-identical bag scans; the pace follows `speed`;
//! a recording cut short by a crash replays up to its last whole record; a damaged one says
//! where; a recording of another detector width is refused with the profile to use.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use twinspect::source::SourceEvent;
use twinspect::source::replay::spawn_replay;

use common::twinspect;

fn capture(args: &[&str], out: &Path) -> String {
    let o = twinspect().arg("capture").args(args).arg("--out").arg(out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "capture {args:?}: {err}");
    err
}

/// A recording of `bags` bags from the synthetic scanner (at ten times its line rate), with the
/// loose files of the live capture in `dir/live`.
fn record(dir: &Path, bags: &str) -> std::path::PathBuf {
    let rec = dir.join("shift.tsrec");
    capture(
        &["--source", "synthetic://?seed=12&speed=10", "--bags", bags, "--record", rec.to_str().unwrap()],
        &dir.join("live"),
    );
    rec
}

#[test]
fn a_replay_gives_the_same_bags_as_the_live_capture() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), "3");
    let url = format!("replay://{}?speed=max", rec.display());
    let err = capture(&["--source", &url, "--bags", "3"], &dir.path().join("again"));
    assert!(err.contains("recorded from synthetic://?seed=12"), "{err}");
    for n in 0..3 {
        let name = format!("bag-{n:06}");
        let live = std::fs::read(dir.path().join("live").join(format!("{name}.tiff"))).unwrap();
        let again = std::fs::read(dir.path().join("again").join(format!("{name}.tiff"))).unwrap();
        assert!(live == again, "{name}.tiff differs between live and replay");
        let cal =
            |d: &str| std::fs::read(dir.path().join(d).join(format!("{name}.tiff.calib.json"))).unwrap();
        assert!(cal("live") == cal("again"), "{name}: calibration differs between live and replay");
        let meta = |d: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(dir.path().join(d).join(format!("{name}.json"))).unwrap())
                .unwrap()
        };
        let (a, b) = (meta("live"), meta("again"));
        for k in ["bag", "item_id", "lines", "missing_rows", "truncated"] {
            assert_eq!(a[k], b[k], "{name}: {k}");
        }
    }
}

#[test]
fn replay_follows_the_speed_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), "1");
    let profile = twinspect::domain::profile::ScannerProfile::load("desk-140").unwrap();
    let drain = |speed: Option<f64>| {
        let t0 = Instant::now();
        let src = spawn_replay(&rec, speed, profile.channels as usize, None).unwrap();
        let mut lines = 0;
        loop {
            match src.events.recv_timeout(Duration::from_secs(20)).expect("the replay ends with a link-down")
            {
                SourceEvent::Line(_) => lines += 1,
                SourceEvent::Link { up: false, detail } => {
                    assert!(detail.contains("end of recording"), "{detail}");
                    break;
                }
                _ => {}
            }
        }
        (t0.elapsed(), lines)
    };
    let (max, n_max) = drain(None);
    let (x4, n4) = drain(Some(4.0));
    let (x1, n1) = drain(Some(1.0));
    assert!(n_max > 500 && n_max == n4 && n4 == n1, "every line, at every speed: {n_max} {n4} {n1}");
    // The recording spans about lines / line rate seconds (recorded at speed 10).
    let span = n1 as f64 / (profile.line_rate_hz * 10.0);
    assert!(x1.as_secs_f64() > 0.8 * span, "speed 1 took {x1:?} for a {span:.2} s recording");
    // (max against x1, not x4: on a busy machine reading the file can take as long as a quarter
    // of this short recording.)
    assert!(x4 < x1 && max < x1 / 2, "max {max:?}, x4 {x4:?}, x1 {x1:?}");
}

#[test]
fn a_cut_or_damaged_recording_replays_what_is_whole_and_says_where_it_broke() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), "1");
    let bytes = std::fs::read(&rec).unwrap();
    let channels = 1536;
    // The events, and whether the source says it played to the end (the screens then say so,
    // not "link down").
    let events_and_end = |path: &Path| -> (Vec<SourceEvent>, bool) {
        let src = spawn_replay(path, None, channels, None).unwrap();
        let mut v = Vec::new();
        loop {
            let e = src.events.recv_timeout(Duration::from_secs(20)).unwrap();
            let end = matches!(e, SourceEvent::Link { up: false, .. });
            v.push(e);
            if end {
                return (v, src.stats.finished.load(std::sync::atomic::Ordering::Relaxed));
            }
        }
    };
    let events = |path: &Path| events_and_end(path).0;
    let (whole, finished) = events_and_end(&rec);
    assert!(finished, "played to its end");
    // Cut in the middle of a record, as a kill -9 leaves it.
    let cut = dir.path().join("cut.tsrec");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 5]).unwrap();
    let part = events(&cut);
    assert!(part.len() > 10 && part.len() < whole.len(), "{} of {}", part.len(), whole.len());
    assert!(!part.iter().any(|e| matches!(e, SourceEvent::Fault(_))), "a cut end is not a fault");
    // A flipped byte in the middle: the events before it, then a fault naming the offset.
    let bad = dir.path().join("bad.tsrec");
    let mut b = bytes.clone();
    let i = bytes.len() / 2;
    b[i] ^= 0x55;
    std::fs::write(&bad, &b).unwrap();
    let (got, finished) = events_and_end(&bad);
    assert!(!finished, "stopped by damage: a fault, not the end");
    let fault = got.iter().find_map(|e| if let SourceEvent::Fault(f) = e { Some(f.clone()) } else { None });
    let fault = fault.expect("a fault for the damaged record");
    assert!(fault.contains("record at byte") && fault.contains("checksum"), "{fault}");
    assert!(got.len() > 10, "what came before the damage is delivered");
    // Another detector width: refused, naming the profile to use.
    let e = spawn_replay(&rec, None, 2048, None).err().expect("refused").to_string();
    assert!(e.contains("1536 channels") && e.contains("--profile desk-140"), "{e}");
    // Not a recording at all.
    std::fs::write(&bad, b"hello").unwrap();
    assert!(
        spawn_replay(&bad, None, channels, None)
            .err()
            .unwrap()
            .to_string()
            .contains("not a Twinspect recording")
    );
    // Through the command line: a bad speed is refused by name.
    let o = twinspect()
        .args(["capture", "--bags", "1", "--source"])
        .arg(format!("replay://{}?speed=0", rec.display()))
        .arg("--out")
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("speed=0"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_training_replay_projects_threats_inside_bags_and_says_which_and_where() {
    use twinspect::domain::profile::ScannerProfile;
    use twinspect::domain::tip::{Projector, builtin_threats};
    use twinspect::source::replay::TipReplay;
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), "3");
    let profile = ScannerProfile::load("desk-140").unwrap();
    let events = |tip: Option<TipReplay>| {
        let src = spawn_replay(&rec, None, profile.channels as usize, tip).unwrap();
        let mut v = Vec::new();
        loop {
            let e = src.events.recv_timeout(Duration::from_secs(30)).unwrap();
            let end = matches!(e, SourceEvent::Link { up: false, .. });
            v.push(e);
            if end {
                return v;
            }
        }
    };
    let plain = events(None);
    let tip = TipReplay {
        rate: 1.0,
        seed: 4,
        threats: builtin_threats(&profile).unwrap(),
        projector: Projector::new(&profile).unwrap(),
    };
    let trained = events(Some(tip));
    let projected: Vec<_> = trained
        .iter()
        .filter_map(|e| if let SourceEvent::Projected(p) = e { Some(p.clone()) } else { None })
        .collect();
    assert_eq!(projected.len(), 3, "every bag got a threat at rate 1");
    // Same events otherwise, in the same order; a Projected event right before each bag's end.
    let without: Vec<&SourceEvent> =
        trained.iter().filter(|e| !matches!(e, SourceEvent::Projected(_))).collect();
    assert_eq!(without.len(), plain.len());
    for (i, e) in trained.iter().enumerate() {
        if let SourceEvent::Projected(p) = e {
            assert!(matches!(&trained[i + 1], SourceEvent::BagEnd { bag } if *bag == p.bag));
        }
    }
    // Lines change only inside each threat's box (in the bag's own lines and channels), and only
    // darker.
    let mut changed = 0;
    let mut bag_line: Option<(u64, usize)> = None;
    for (a, b) in plain.iter().zip(&without) {
        match (a, b) {
            (SourceEvent::BagStart { bag, .. }, _) => bag_line = Some((*bag, 0)),
            (SourceEvent::BagEnd { .. }, _) => bag_line = None,
            (SourceEvent::Line(x), SourceEvent::Line(y)) => {
                if x.low != y.low || x.high != y.high {
                    let (bag, l) = bag_line.expect("changes only inside bags");
                    let p = projected.iter().find(|p| p.bag == bag).unwrap();
                    assert!(l >= p.line && l < p.line + p.lines, "line {l} outside {p:?}");
                    for c in 0..x.low.len() {
                        if x.low[c] != y.low[c] {
                            assert!(c >= p.channel && c < p.channel + p.channels && y.low[c] < x.low[c]);
                            changed += 1;
                        }
                    }
                }
                if let Some((_, l)) = bag_line.as_mut() {
                    *l += 1;
                }
            }
            _ => {}
        }
    }
    assert!(changed > 3000, "{changed} samples darkened");
    // Through the command line: a training replay captures like any source.
    let o = twinspect()
        .args(["capture", "--bags", "2", "--source"])
        .arg(format!("replay://{}?speed=max&tip=0.5&tip_seed=2", rec.display()))
        .arg("--out")
        .arg(dir.path().join("trained"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = twinspect()
        .args(["capture", "--bags", "1", "--source"])
        .arg(format!("replay://{}?tip=2", rec.display()))
        .arg("--out")
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("0 to 1"));
    // A training session's bags carry projected threats: a desk never publishes them to a hub.
    let o = twinspect()
        .arg("--data")
        .arg(dir.path().join("desk"))
        .args(["snapshot", "--hub", "nats://127.0.0.1:1", "--publish", "L1", "--source"])
        .arg(format!("replay://{}?speed=max&tip=0.5", rec.display()))
        .arg("--out")
        .arg(dir.path().join("shots"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("a replay publishes nothing to the hub"), "{err}");
    assert!(!dir.path().join("desk").join("archive.sqlite").exists(), "refused before the archive opened");
}

#[test]
fn threats_cut_out_of_captured_scans_join_the_library_and_are_projected() {
    use twinspect::domain::inspection::{Annotation, Shape};
    use twinspect::domain::profile::ScannerProfile;
    use twinspect::domain::synth::Category;
    use twinspect::domain::tip::{Projector, Threat};
    use twinspect::files::store::{MarkChange, Store};
    use twinspect::source::replay::TipReplay;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rec = record(dir.path(), "2");
    let o = twinspect()
        .args(["capture", "--bags", "1", "--source"])
        .arg(format!("replay://{}?speed=max", rec.display()))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A trainer boxes an object on the archived bag (here: the middle of the bag).
    let (frame, calib) = {
        let s = Store::open_read(&data).unwrap();
        (s.scan(1).unwrap(), s.calibration(1).unwrap())
    };
    let (l0, c0) = (frame.lines() / 2 - 60, frame.channels() / 2 - 80);
    let (l1, c1) = (l0 + 120, c0 + 160);
    {
        let mut s = Store::open(&data).unwrap();
        let shape = Shape::Rect { x0: l0 as f32, y0: c0 as f32, x1: l1 as f32, y1: c1 as f32 };
        let a = Annotation::new(1, "customs", "c001", shape, "weapon", "", 1);
        s.save_annotation(1, &a, MarkChange::Added, "c001", 1).unwrap();
    }
    let add = |extra: &[&str]| {
        twinspect()
            .args(["train", "add-threat", "--bag", "1", "--name", "cut object", "--category", "blade"])
            .args(extra)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap()
    };
    let o = add(&["--mark", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let file = data.join("threats/cut_object.tiff");
    // What the library keeps is the scan's transmission in the box and a 6-pixel margin around
    // it, the background read from that margin subtracted (16-bit), as the domain cuts it.
    let kept = twinspect::files::io::read_threat(&file).unwrap();
    let region = (l0 - 6, l1 + 6, c0 - 6, c1 + 6);
    let want = Threat::from_scan("cut object", Category::Blade, &frame, &calib, region, true).unwrap();
    assert_eq!((kept.name.as_str(), kept.category), ("cut object", Category::Blade));
    assert_eq!(kept.t_low.dim(), want.t_low.dim());
    let worst = kept.t_low.iter().zip(want.t_low.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1.0 / 65535.0 + 1e-6, "{worst}");
    // Listed beside the built-in ones; a second with the same name, a missing mark, a bad category
    // are refused.
    let o = twinspect().args(["train", "threats", "--data"]).arg(&data).output().unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(list.contains("kitchen knife\tblade") && list.contains("cut object\tblade"), "{list}");
    let o = add(&["--mark", "1"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("already has"));
    let o = add(&["--mark", "9"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no mark 9"));
    let o = twinspect()
        .args([
            "train",
            "add-threat",
            "--bag",
            "1",
            "--mark",
            "1",
            "--name",
            "x",
            "--category",
            "teapot",
            "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("teapot"));
    let o = twinspect().args(["audit", "list", "--bag", "1", "--data"]).arg(&data).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("threat.add"));
    // A training replay with only the library's captured threat projects it.
    let profile = ScannerProfile::load("desk-140").unwrap();
    let tip = TipReplay {
        rate: 1.0,
        seed: 3,
        threats: twinspect::files::io::load_threats(&data.join("threats")).unwrap(),
        projector: Projector::new(&profile).unwrap(),
    };
    let src = spawn_replay(&rec, None, profile.channels as usize, Some(tip)).unwrap();
    let mut names = Vec::new();
    loop {
        match src.events.recv_timeout(Duration::from_secs(30)).unwrap() {
            SourceEvent::Projected(p) => names.push(p.name.clone()),
            SourceEvent::Link { up: false, .. } => break,
            _ => {}
        }
    }
    assert_eq!(names, ["cut object", "cut object"]);
    // The URL form, and a library folder that is not there (a typo must not train on nothing).
    let o = twinspect()
        .args(["capture", "--bags", "1", "--source"])
        .arg(format!("replay://{}?speed=max&tip=1&threats={}", rec.display(), data.join("threats").display()))
        .arg("--out")
        .arg(dir.path().join("t"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = twinspect()
        .args(["capture", "--bags", "1", "--source"])
        .arg(format!("replay://{}?tip=1&threats=/no/such/folder", rec.display()))
        .arg("--out")
        .arg(dir.path().join("t2"))
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("/no/such/folder"));
}

#[test]
fn a_stepped_replay_waits_after_each_bag_until_told() {
    use std::sync::atomic::Ordering::Relaxed;
    use twinspect::source::replay::spawn_replay_with;
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), "3");
    let src = spawn_replay_with(&rec, None, 1536, None, true).unwrap();
    let mut ends = 0;
    let mut after_end = 0;
    let t0 = Instant::now();
    loop {
        match src.events.recv_timeout(Duration::from_millis(500)) {
            Ok(SourceEvent::BagEnd { .. }) => {
                ends += 1;
                after_end = 0;
            }
            Ok(SourceEvent::Link { up: false, .. }) => break,
            Ok(_) => after_end += 1,
            Err(_) => {
                // When the source says it waits, it is right after a bag's end (a busy machine
                // may also just be slow: then wait on).
                if src.stats.step_waiting.load(Relaxed) {
                    assert_eq!(after_end, 0, "waiting in the middle of a bag");
                    assert!(ends > 0 && ends < 4, "{ends}");
                    src.stats.next_bag();
                }
                assert!(t0.elapsed() < Duration::from_secs(120), "the stepped replay never finished");
            }
        }
    }
    assert_eq!(ends, 3);
    // capture steps by itself; speed=step is named in the description.
    let err = capture(
        &["--source", &format!("replay://{}?speed=step", rec.display()), "--bags", "3"],
        &dir.path().join("s"),
    );
    assert!(err.contains("speed=step"), "{err}");
    for n in 0..3 {
        let name = format!("bag-{n:06}.tiff");
        assert_eq!(
            std::fs::read(dir.path().join("live").join(&name)).unwrap(),
            std::fs::read(dir.path().join("s").join(&name)).unwrap()
        );
    }
}

#[test]
fn the_emulator_serves_a_recording_over_serial_bag_for_bag() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), "2");
    let link = dir.path().join("scanner");
    let source = format!("replay://{}?speed=2", rec.display());
    let mut emu = common::emulator_on_pty(&["--seconds", "90", "--source", &source], &link);
    let out = dir.path().join("via-emulator");
    let o = twinspect()
        .args(["capture", "--bags", "3", "--seconds", "60", "--source"])
        .arg(format!("serial://{}", link.display()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let _ = emu.kill();
    let _ = emu.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Every whole bag that came over the serial link is a recorded bag, line for line, with its
    // tag; the recording loops (its first bag again after its last).
    let meta = |d: &Path, n: usize| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join(format!("bag-{n:06}.json"))).unwrap()).unwrap()
    };
    let live = dir.path().join("live");
    let recorded: Vec<(String, twinspect::domain::scan::RawFrame)> = (0..2)
        .map(|n| {
            let tag = meta(&live, n)["item_id"].as_str().unwrap().to_string();
            (tag, twinspect::files::io::read_raw_tiff(&live.join(format!("bag-{n:06}.tiff"))).unwrap())
        })
        .collect();
    let mut same = Vec::new();
    for n in 0..3 {
        let m = meta(&out, n);
        let frame = twinspect::files::io::read_raw_tiff(&out.join(format!("bag-{n:06}.tiff"))).unwrap();
        let Some(tag) = m["item_id"].as_str() else { continue };
        // (The recording also holds the start of a third bag, cut short when capture stopped.)
        let Some((_, want)) = recorded.iter().find(|(t, _)| t == tag) else { continue };
        if frame.lines() == want.lines() {
            assert!(frame == *want, "bag {tag} differs from the recording");
            same.push(tag.to_string());
        }
    }
    assert!(same.len() >= 2, "whole recorded bags served: {same:?}");
    // Refusals name the problem.
    let o = twinspect()
        .args(["emulate", "--serial", "pty", "--source", "replay:///no/such.tsrec"])
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("/no/such.tsrec"));
    let o =
        twinspect().args(["emulate", "--serial", "pty", "--source", "gige://127.0.0.2"]).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("replay://"));
}
