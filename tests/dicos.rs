//! DICOS export and import held to readers no one here wrote: pydicom, pyDICOS (Stratovan's
//! SDICOS, which checks DICOS modules as it reads), dcmtk's dcmdump and dicom3tools' dciodvfy.
//!
//! Needs (installed by `.ci/test`): `dcmdump`, `dciodvfy`, and a Python with pydicom, pydicos
//! and numpy at `target/dicos-peers/bin/python` (or `$TWINSPECT_DICOS_PYTHON`). A missing peer
//! fails the test; it is never skipped.
//!
//! dciodvfy (Debian 12's and sid's dicom3tools) has no DICOS IOD tables: on a DICOS file it checks
//! every element's encoding, VR and value and then says "Information Object Not found". So the
//! DICOS files must show no other error, and each DX image's DICOM twin (the same elements with
//! the SOP class of DICOM's "DX image for processing", from which DICOS DX derives, and the five
//! DICOS-only elements removed) must pass dciodvfy's DX IOD checks with no error at all.

use std::path::{Path, PathBuf};
use std::process::Command;

use twinspect::domain::calib::attenuation;
use twinspect::domain::inspection::{Annotation, Decision, Findings, FoundItem, Shape};
use twinspect::files::store::{MarkChange, Store};

mod common;
use common::{run, twinspect};

fn peer_python() -> PathBuf {
    let p = std::env::var_os("TWINSPECT_DICOS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dicos-peers/bin/python"));
    assert!(
        p.exists(),
        "{}: no Python with pydicom and pydicos (bash .ci/test sets it up: python3 -m venv \
         target/dicos-peers && target/dicos-peers/bin/pip install pydicom pydicos numpy)",
        p.display()
    );
    p
}

/// A `.npy` file of 2-D little-endian u16 (as numpy saves a DICOM pixel array).
fn read_npy_u16(p: &Path) -> (usize, usize, Vec<u16>) {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(header.contains("'<u2'") && header.contains("'fortran_order': False"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let dims: Vec<usize> =
        shape.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect();
    let data = b[10 + hlen..].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    (dims[0], dims[1], data)
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn dicos_export_is_read_by_pydicom_pydicos_dcmdump_and_dciodvfy_and_imports_back() {
    let python = peer_python();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::archive_bags(&data, 11, 1);
    // Customs releases, then changes to "open" with a reason, and marks two things; quarantine
    // marks one and has not decided.
    let t0 = 1_795_000_000_000;
    {
        let mut s = Store::open(&data).unwrap();
        let d = |code: &str, at: u64, reason: Option<&str>| Decision {
            agency: "customs".into(),
            code: code.into(),
            operator: "c001".into(),
            at_ms: at,
            reason: reason.map(Into::into),
        };
        s.record_decision(1, &d("release", t0, None)).unwrap();
        s.record_decision(1, &d("open", t0 + 9_000, Some("second look"))).unwrap();
        let marks = [
            Annotation::new(
                1,
                "customs",
                "c001",
                Shape::Rect { x0: 100.0, y0: 400.0, x1: 180.0, y1: 520.0 },
                "weapon",
                "刀具 knife",
                t0 + 1_000,
            ),
            Annotation::new(
                2,
                "customs",
                "c001",
                Shape::Polygon { points: vec![[300.0, 600.0], [360.0, 610.0], [340.0, 700.0]] },
                "drugs",
                "",
                t0 + 2_000,
            ),
            Annotation::new(
                3,
                "quarantine",
                "q001",
                Shape::Ellipse { cx: 500.0, cy: 800.0, rx: 30.0, ry: 20.0 },
                "fruit_veg",
                "",
                t0 + 3_000,
            ),
        ];
        for m in &marks {
            s.save_annotation(1, m, MarkChange::Added, &m.operator, m.created_ms).unwrap();
        }
        // Customs' "open" calls the one opening: customs first records nothing found, then
        // corrects it (the later record is in force); quarantine finds fruit and destroys it.
        let found =
            |agency: &str, operator: &str, at: u64, items: Vec<FoundItem>, treatment: Option<&str>| {
                Findings {
                    agency: agency.into(),
                    operator: operator.into(),
                    at_ms: at,
                    items,
                    treatment: treatment.map(Into::into),
                }
            };
        let item = |category: &str, count: u32, note: &str| FoundItem {
            category: category.into(),
            count,
            note: note.into(),
        };
        s.record_findings(1, &found("customs", "c001", t0 + 60_000, Vec::new(), None)).unwrap();
        s.record_findings(
            1,
            &found("customs", "c002", t0 + 70_000, vec![item("weapon", 1, "折叠刀 folding knife")], None),
        )
        .unwrap();
        s.record_findings(
            1,
            &found(
                "quarantine",
                "q001",
                t0 + 80_000,
                vec![item("fruit_veg", 3, "mangoes")],
                Some("销毁 destroyed"),
            ),
        )
        .unwrap();
    }
    let out = dir.path().join("dicos");
    let (ok, listed, err) = run(twinspect()
        .args(["export", "--dicos", "--bag", "1", "--out"])
        .arg(&out)
        .arg("--data")
        .arg(&data));
    assert!(ok, "{err}");
    let _ = std::process::Command::new("cp").arg("-r").arg(&out).arg("/tmp/dicos-out").status();
    let files: Vec<PathBuf> = listed.lines().map(|l| PathBuf::from(l.split("  ").next().unwrap())).collect();
    let names: Vec<String> =
        files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "bag-00000001-dx-low.dcs",
            "bag-00000001-dx-high.dcs",
            "bag-00000001-tdr-customs.dcs",
            "bag-00000001-tdr-quarantine.dcs",
            "bag-00000001-findings-customs.dcs",
            "bag-00000001-findings-quarantine.dcs"
        ],
        "{listed}"
    );

    // pydicom and pyDICOS.
    let o = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/dicos_peers.py"))
        .args(&files)
        .output()
        .unwrap();
    assert!(o.status.success(), "peers failed:\n{}", String::from_utf8_lossy(&o.stderr));
    let r = json_lines(&String::from_utf8_lossy(&o.stdout));
    let (low, high, customs, quarantine) = (&r[0], &r[1], &r[2], &r[3]);
    let (customs_found, quarantine_found) = (&r[4], &r[5]);
    let store = Store::open_read(&data).unwrap();
    let row = store.bag(1).unwrap();
    let frame = store.scan(1).unwrap();
    let calib = store.calibration(1).unwrap();
    for (f, energy) in [(low, 1), (high, 2)] {
        assert_eq!(f["sop_class"], "1.2.840.10008.5.1.4.1.1.501.2.2");
        assert_eq!(f["modality"], "DX");
        assert_eq!(f["energy"], energy);
        assert_eq!(f["meta_dicos_version"], "V03");
        assert_eq!(f["ooi_id"], row.item_id.clone().unwrap());
        assert_eq!(
            (f["rows"].as_u64().unwrap() as usize, f["cols"].as_u64().unwrap() as usize),
            (frame.channels(), frame.lines())
        );
        assert_eq!(f["pydicos_shape"], serde_json::json!([frame.channels(), frame.lines()]));
        assert_eq!(f["pydicos_equal"], true, "pyDICOS and pydicom read the same pixels");
        assert_eq!(f["image_type"], serde_json::json!(["ORIGINAL", "INTENSITY"]));
        assert_eq!(f["sdicos_valid"], true, "SDICOS validates the DX: {}", f["sdicos_errors"]);
        // Pixels: transmission (raw - dark) / (air - dark) at 16 bits, computed here from the
        // archived raw scan and calibration; rows are channels, the last one on top.
        let (h, w, px) = read_npy_u16(Path::new(f["pixels_path"].as_str().unwrap()));
        assert_eq!((h, w), (frame.channels(), frame.lines()));
        let (raw, dark, air) = if energy == 1 {
            (&frame.low, &calib.dark_low, &calib.air_low)
        } else {
            (&frame.high, &calib.dark_high, &calib.air_high)
        };
        let mut worst = 0i32;
        for c in 0..h {
            for l in 0..w {
                let t = ((raw[(l, c)] as f64 - dark[c] as f64) / (air[c] as f64 - dark[c] as f64))
                    .clamp(0.0, 1.0);
                let want = (t * 65535.0).round() as i32;
                worst = worst.max((px[(h - 1 - c) * w + l] as i32 - want).abs());
            }
        }
        assert!(worst <= 1, "energy {energy}: a pixel is {worst} counts off the transmission");
    }
    assert_eq!(low["study"], high["study"]);
    assert_ne!(low["series"], high["series"]);
    let dx_sops = {
        let mut v = vec![low["sop_instance"].as_str().unwrap(), high["sop_instance"].as_str().unwrap()];
        v.sort();
        v
    };
    // SDICOS reads every TDR and writes it again, which runs its module checks (its Python TDR
    // class has no Validate): nothing refused. What it writes of the operator's identification
    // is what we wrote - the operator's ID, then the DCS4 encoding type "Text Encoding".
    for t in [customs, quarantine, customs_found, quarantine_found] {
        assert_eq!(t["sdicos_read"], true, "SDICOS reads {}", t["file"]);
        assert_eq!(t["sdicos_rewritten"], true, "{}: {}", t["file"], t["sdicos_rewrite_errors"]);
        assert_eq!(t["sdicos_rewrite_errors"], serde_json::json!([]), "{}", t["file"]);
    }
    assert_eq!(
        customs["sdicos_operator"],
        serde_json::json!([["c001", "c001"], ["100001", "Text Encoding"]])
    );
    for t in [customs, quarantine] {
        assert_eq!(t["sop_class"], "1.2.840.10008.5.1.4.1.1.501.3");
        assert_eq!(t["tdr_type"], "OPERATOR");
        assert_eq!(t["pydicos_type"], "enumOperator");
        assert_eq!(t["study"], low["study"], "one inspection");
        assert_eq!(t["frame_of_reference"], low["frame_of_reference"]);
        assert_eq!(t["referenced"], serde_json::json!(dx_sops), "each TDR references both DX images");
        assert_eq!(t["pydicos_ooi"], row.item_id.clone().unwrap());
    }
    // Customs: decision in force "open" -> ALARM, by c001; two threat objects with outlines.
    assert_eq!(customs["alarm_decision"], "ALARM");
    assert_eq!(customs["pydicos_alarm"], "enumAlarm");
    assert_eq!(customs["operator"], "c001");
    assert!(customs["organization"].as_str().unwrap().contains("海关"));
    let ptos = customs["ptos"].as_array().unwrap();
    assert_eq!(ptos.len(), 2);
    assert_eq!(ptos[0]["category"], "PI", "DICOS V03 says PI (SDICOS rewrites PROHIBITED ITEM)");
    assert!(
        ptos[0]["description"].as_str().unwrap().contains("weapon")
            && ptos[0]["description"].as_str().unwrap().contains("刀具 knife")
    );
    assert_eq!(
        ptos[0]["polygon"],
        serde_json::json!([[100.0, 1136.0], [180.0, 1136.0], [180.0, 1016.0], [100.0, 1016.0]])
    );
    assert_eq!(ptos[0]["base"], serde_json::json!([100.0, 1016.0, 0.0]));
    assert_eq!(ptos[0]["extents"], serde_json::json!([80.0, 120.0, 1.0]));
    assert_eq!(ptos[0]["flag"], "THREAT");
    assert_eq!(ptos[1]["category"], "CONTRABAND");
    assert_eq!(ptos[1]["polygon"], serde_json::json!([[300.0, 936.0], [360.0, 926.0], [340.0, 836.0]]));
    let sd = customs["pydicos_ptos"].as_array().unwrap();
    assert_eq!(sd.len(), 2);
    assert_eq!(sd[0]["category"], "enumProhibitedItem");
    assert_eq!(sd[1]["category"], "enumContraband");
    assert_eq!(sd[0]["polygon"], ptos[0]["polygon"], "SDICOS reads the same outline");
    // Quarantine: no decision -> UNKNOWN, one ellipse mark (32-point outline), by q001.
    assert_eq!(quarantine["alarm_decision"], "UNKNOWN");
    assert_eq!(quarantine["pydicos_alarm"], "enumUnknownAlarmDecision");
    assert_eq!(quarantine["operator"], "q001");
    let q = quarantine["ptos"].as_array().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["polygon"].as_array().unwrap().len(), 32);
    assert_eq!(q[0]["base"], serde_json::json!([470.0, 716.0, 0.0]));

    // The opening's findings: one GROUND_TRUTH report per agency, in the same study, referencing
    // both images; the findings in force (customs' correction), the item's count and note in
    // the description, the whole image as the place (not recorded at the bench).
    for t in [customs_found, quarantine_found] {
        assert_eq!(t["sop_class"], "1.2.840.10008.5.1.4.1.1.501.3");
        assert_eq!(t["tdr_type"], "GROUND TRUTH");
        assert_eq!(t["pydicos_type"], "enumGroundTruth");
        assert_eq!(t["study"], low["study"]);
        assert_eq!(t["referenced"], serde_json::json!(dx_sops));
        assert_eq!(t["alarm_decision"], "ALARM");
        assert_eq!(t["pydicos_alarm"], "enumAlarm");
        assert_eq!((t["objects"].as_u64(), t["alarm_objects"].as_u64()), (Some(1), Some(1)));
        let whole = serde_json::json!([
            [0.0, 0.0],
            [frame.lines() as f64, 0.0],
            [frame.lines() as f64, frame.channels() as f64],
            [0.0, frame.channels() as f64]
        ]);
        assert_eq!(t["ptos"][0]["polygon"], whole);
        assert_eq!(t["pydicos_ptos"][0]["polygon"], whole, "SDICOS reads the same place");
        assert!(t["series_description"].as_str().unwrap().ends_with("opening findings"));
    }
    assert_ne!(
        customs_found["series"], customs["series"],
        "findings are a series apart from the image report"
    );
    assert_eq!(customs_found["operator"], "c002", "the correction is in force");
    assert_eq!(
        customs_found["ptos"][0]["category"], "PI",
        "DICOS V03 says PI (SDICOS rewrites PROHIBITED ITEM)"
    );
    let d = customs_found["pydicos_ptos"][0]["description"].as_str().unwrap();
    assert!(d.contains("weapon") && d.contains("count 1") && d.contains("折叠刀 folding knife"), "{d}");
    assert_eq!(customs_found["treatment"], serde_json::Value::Null);
    assert_eq!(quarantine_found["operator"], "q001");
    assert_eq!(quarantine_found["ptos"][0]["category"], "CONTRABAND");
    assert!(quarantine_found["ptos"][0]["description"].as_str().unwrap().contains("count 3; note: mangoes"));
    assert_eq!(quarantine_found["private_creator"], "TWINSPECT 1");
    assert_eq!(quarantine_found["treatment"], "销毁 destroyed");
    assert!(quarantine_found["alarm_decision_time"].as_str().unwrap().starts_with("2026"));

    // dcmtk reads every file; dciodvfy finds no error but the missing DICOS IOD tables, and the
    // DX images' DICOM twins pass its DX IOD checks.
    for f in &files {
        let o = Command::new("dcmdump").arg(f).output().expect("dcmdump (dcmtk) is needed");
        let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success() && !text.contains("E: "), "dcmdump {}: {text}", f.display());
        assert!(text.contains("(4010,103a) CS [V03]"), "{text}");
        let o = Command::new("dciodvfy").arg(f).output().expect("dciodvfy (dicom3tools) is needed");
        let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error")).collect();
        assert_eq!(errors, ["Error - Information Object Not found"], "dciodvfy {}:\n{text}", f.display());
    }
    let low_dump = String::from_utf8_lossy(&Command::new("dcmdump").arg(&files[0]).output().unwrap().stdout)
        .into_owned();
    assert!(
        low_dump.contains("(6100,0030) US 1")
            && low_dump.contains("DICOS_DigitalXRayImageStorageForProcessing"),
        "{low_dump}"
    );
    for f in [low, high] {
        let twin = f["dicom_twin"].as_str().unwrap();
        let o = Command::new("dciodvfy").arg(twin).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(text.contains("DXImageForProcessing"), "{text}");
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error")).collect();
        assert!(errors.is_empty(), "dciodvfy on the DICOM twin:\n{text}");
    }

    // The export is audited.
    let (ok, audit, _) = run(twinspect().args(["audit", "list", "--bag", "1", "--data"]).arg(&data));
    assert!(
        ok && audit.contains("export.dicos") && audit.contains(low["sop_instance"].as_str().unwrap()),
        "{audit}"
    );

    // Import into another archive: the same image, within 16-bit rounding of transmission.
    let data2 = dir.path().join("data2");
    let (ok, said, err) = run(twinspect().args(["import", "--dicos"]).arg(&out).arg("--data").arg(&data2));
    assert!(ok, "{err}");
    assert!(said.starts_with("imported bag 1 "), "{said}");
    assert_eq!(err.matches("skipped").count(), 6, "TDRs and twins are skipped: {err}");
    let store2 = Store::open_read(&data2).unwrap();
    let row2 = store2.bag(1).unwrap();
    assert_eq!(row2.item_id, row.item_id);
    assert_eq!(row2.profile, row.profile);
    assert_eq!(row2.started_ms / 1000, row.started_ms / 1000, "inspection date and time kept");
    let frame2 = store2.scan(1).unwrap();
    let calib2 = store2.calibration(1).unwrap();
    assert_eq!((frame2.lines(), frame2.channels()), (frame.lines(), frame.channels()));
    let mut worst: f32 = 0.0;
    for c in 0..frame.channels() {
        let span = |d: f32, a: f32| (a - d).ln();
        for l in 0..frame.lines() {
            for (f, f2, d, a, d2, a2) in [
                (
                    &frame.low,
                    &frame2.low,
                    calib.dark_low[c],
                    calib.air_low[c],
                    calib2.dark_low[c],
                    calib2.air_low[c],
                ),
                (
                    &frame.high,
                    &frame2.high,
                    calib.dark_high[c],
                    calib.air_high[c],
                    calib2.dark_high[c],
                    calib2.air_high[c],
                ),
            ] {
                let a1 = attenuation(f[(l, c)], d, span(d, a), calib.full_scale);
                if a1 < 5.3 {
                    let a2v = attenuation(f2[(l, c)], d2, span(d2, a2), calib2.full_scale);
                    worst = worst.max((a1 - a2v).abs());
                }
            }
        }
    }
    assert!(worst < 0.01, "attenuation after the round trip differs by up to {worst}");
    // What the workstation shows of both (CPU twin of the display kernels): the same picture.
    let (p1, p2) = (dir.path().join("orig.png"), dir.path().join("imported.png"));
    for (d, p) in [(&data, &p1), (&data2, &p2)] {
        let (ok, _, err) = run(twinspect()
            .args(["export", "png", "--bag", "1", "--cpu", "--out"])
            .arg(p)
            .arg("--data")
            .arg(d));
        assert!(ok, "{err}");
    }
    // The DX image stands as the screens show it: its transmission follows the rendered image's
    // brightness pixel for pixel, and much less so upside down.
    let shown = image::open(&p1).unwrap().to_luma8();
    let (h, w, px) = read_npy_u16(Path::new(low["pixels_path"].as_str().unwrap()));
    assert_eq!((shown.height() as usize, shown.width() as usize), (h, w));
    let corr = |flip: bool| {
        let pairs: Vec<(f64, f64)> = (0..h)
            .step_by(3)
            .flat_map(|r| (0..w).step_by(3).map(move |c| (r, c)))
            .map(|(r, c)| {
                let rr = if flip { h - 1 - r } else { r };
                (px[rr * w + c] as f64, shown.get_pixel(c as u32, r as u32).0[0] as f64)
            })
            .collect();
        let n = pairs.len() as f64;
        let (ma, mb) =
            (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
        let cov: f64 = pairs.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum();
        let va: f64 = pairs.iter().map(|p| (p.0 - ma).powi(2)).sum();
        let vb: f64 = pairs.iter().map(|p| (p.1 - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    };
    let (upright, flipped) = (corr(false), corr(true));
    assert!(
        upright > 0.85 && upright > flipped + 0.05,
        "orientation: {upright:.2} upright, {flipped:.2} flipped"
    );
    let (a, b) = (image::open(&p1).unwrap().to_rgb8(), image::open(&p2).unwrap().to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let differ = a
        .pixels()
        .zip(b.pixels())
        .filter(|(x, y)| x.0.iter().zip(y.0).any(|(u, v)| u.abs_diff(v) > 2))
        .count();
    // The original has the marks drawn on it, the import has none: only mark pixels may differ.
    assert!(differ < (a.width() * a.height()) as usize / 50, "{differ} pixels differ");

    // The pair as a source (what `run --source dicos://DIR` shows on both screens): the bag
    // goes through calibration, assembly and the archive like a scanned one, the same image.
    let data3 = dir.path().join("data3");
    let url = format!("dicos://{}?speed=max", out.display());
    let (ok, said, err) =
        run(twinspect().args(["capture", "--source", &url, "--bags", "1", "--data"]).arg(&data3));
    assert!(ok, "{err}");
    assert!(
        said.contains("archived bag 1 ") && err.contains(&format!("({})", row.item_id.clone().unwrap())),
        "{said}{err}"
    );
    let store3 = Store::open_read(&data3).unwrap();
    let (frame3, calib3) = (store3.scan(1).unwrap(), store3.calibration(1).unwrap());
    assert_eq!((frame3.lines(), frame3.channels()), (frame.lines(), frame.channels()));
    let mut worst: f32 = 0.0;
    for c in 0..frame.channels() {
        let span = |d: f32, a: f32| (a - d).ln();
        for l in 0..frame.lines() {
            let a1 = attenuation(
                frame.high[(l, c)],
                calib.dark_high[c],
                span(calib.dark_high[c], calib.air_high[c]),
                calib.full_scale,
            );
            let a3 = attenuation(
                frame3.high[(l, c)],
                calib3.dark_high[c],
                span(calib3.dark_high[c], calib3.air_high[c]),
                calib3.full_scale,
            );
            if a1 < 5.3 {
                worst = worst.max((a1 - a3).abs());
            }
        }
    }
    assert!(worst < 0.01, "attenuation through the dicos:// source differs by up to {worst}");
    let (ok, _, err) = run(twinspect()
        .args(["capture", "--source", "dicos:///nowhere", "--bags", "1", "--data"])
        .arg(&data3));
    assert!(!ok && err.contains("/nowhere"), "{err}");

    // Bad input: a clear error, nothing added to the archive.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let lowf = &files[0];
    let bytes = std::fs::read(lowf).unwrap();
    std::fs::write(bad.join("cut.dcs"), &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = run(twinspect()
        .args(["import", "--dicos"])
        .arg(bad.join("cut.dcs"))
        .arg(&files[1])
        .arg("--data")
        .arg(&data2));
    assert!(!ok && err.contains("cut.dcs") && err.contains("ends inside"), "{err}");
    let (ok, _, err) =
        run(twinspect().args(["import", "--dicos"]).arg(lowf).arg(lowf).arg("--data").arg(&data2));
    assert!(!ok && err.contains("2 images of Series Energy 1"), "{err}");
    std::fs::write(bad.join("note.dcs"), "not an image").unwrap();
    let (ok, _, err) =
        run(twinspect().args(["import", "--dicos"]).arg(bad.join("note.dcs")).arg("--data").arg(&data2));
    assert!(!ok && err.contains("not a DICOM file"), "{err}");
    let (ok, _, err) = run(twinspect()
        .args(["export", "--dicos", "--bag", "99", "--out"])
        .arg(&bad)
        .arg("--data")
        .arg(&data));
    assert!(!ok && err.contains("99"), "{err}");
    assert_eq!(Store::open_read(&data2).unwrap().bags(&Default::default()).unwrap().len(), 1);
}
