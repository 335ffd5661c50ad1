//! The opening bench end to end in a real browser: `twinspect web` as a user starts it, Debian's
//! Chromium driven by playwright-core (tests/e2e/opening.js) through two officers' tablets:
//! log in, open a bag from the openings, zoom until deeper tiles are fetched, hide and show the
//! marks, another image function, findings of one agency, a photo from the second, and the
//! opening closed when the second records. Screenshots at tablet sizes land in target/browser-shots/.
//!
//! Needs `chromium` (apt) and `npm ci --prefix tests/e2e` (both done by .ci/test); without them
//! this test fails, it never skips.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use twinspect::domain::inspection::InspectionConfig;
use twinspect::files::store::Store;

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

#[test]
fn two_officers_open_a_bag_on_tablets_and_close_the_opening() {
    let e2e = e2e_dir();
    assert!(
        e2e.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci --prefix tests/e2e` (.ci/test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: `apt install chromium` (.ci/test does)"
    );

    // Bag 1: customs asked to open it and marked a knife; quarantine released it. Bag 2: released.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::archive_bags(&data, 8, 2);
    {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let mut r = common::Recorder::open(&data);
        r.decide(1, "customs", "open", now - 60_000, Some("刀具 knife shape"));
        r.mark(1, "customs", [150.0, 250.0, 420.0, 520.0], "blade 刀", now - 59_000);
        r.decide(1, "quarantine", "release", now - 50_000, None);
        r.decide(2, "customs", "release", now - 40_000, None);
        r.decide(2, "quarantine", "release", now - 40_000, None);
    }

    // The server as a user starts it, on a port the system picks.
    let mut server = common::twinspect()
        .args(["web", "--cpu", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let base = first.trim().strip_prefix("listening on ").map(|u| u.trim_end_matches('/').to_owned());
    let Some(base) = base else {
        let _ = server.kill();
        panic!("the server did not start (its errors are above): {first:?}");
    };

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let photo = dir.path().join("IMG_0001.jpg");
    image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x / 3) as u8, (y / 2) as u8, 140]))
        .save_with_format(&photo, image::ImageFormat::Jpeg)
        .unwrap();
    let run = Command::new("node")
        .current_dir(&e2e)
        .arg("opening.js")
        .arg(&base)
        .arg(&shots)
        .arg(&photo)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node (Node.js) to run the browser script");
    // SIGTERM: the server stops as a service manager stops it, and must exit cleanly.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let status = server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(status.success(), "the server did not stop cleanly on SIGTERM: {status}");
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let tiles = |k: &str| seen[k].as_array().unwrap().clone();

    assert_eq!(seen["openings"], serde_json::json!(["/bag/1"]), "only bag 1 waits: {seen}");
    assert!(seen["errors"].as_array().unwrap().is_empty(), "the pages' scripts failed: {}", seen["errors"]);
    // The first view: only tiles, all served as PNG, and not the whole pyramid.
    let first = tiles("first_view");
    assert!(!first.is_empty(), "the viewer fetched no tiles");
    for t in &first {
        assert_eq!((t["status"].as_u64(), t["type"].as_str()), (Some(200), Some("image/png")), "{t}");
    }
    let lines = Store::open_read(&data).unwrap().bag(1).unwrap().lines.unwrap();
    let channels = twinspect::domain::profile::ScannerProfile::load("desk-140").unwrap().channels as usize;
    let top = (lines.max(channels) as f64).log2().ceil() as u64;
    let whole: usize = (0..=top)
        .map(|l| {
            let s = 1usize << (top - l);
            lines.div_ceil(s).div_ceil(256) * channels.div_ceil(s).div_ceil(256)
        })
        .sum();
    assert!(first.len() < whole, "{} tiles for the first view of a {whole}-tile pyramid", first.len());
    let first_max = first.iter().map(|t| t["level"].as_u64().unwrap()).max().unwrap();
    // Zooming in fetched a deeper level, and only tiles that exist.
    let zoom = tiles("after_zoom");
    assert!(
        zoom.iter().any(|t| t["level"].as_u64().unwrap() > first_max && t["status"] == 200),
        "no deeper tile after zooming in (first view up to level {first_max}): {zoom:?}"
    );
    assert!(zoom.iter().all(|t| t["status"] == 200), "{zoom:?}");
    assert!(seen["negative_tiles"].as_u64().unwrap() > 0, "the negative image's tiles: {seen}");
    // Customs' mark: drawn, hidden by its box, shown again.
    assert_eq!(seen["mark_rects"], 1);
    assert_eq!(
        (&seen["marks_shown"], &seen["marks_after_uncheck"], &seen["marks_after_check"]),
        (&serde_json::json!(true), &serde_json::json!(false), &serde_json::json!(true))
    );
    // Findings: customs' knife in the panel, in place (htmx), then quarantine closes the opening.
    assert!(seen["customs_panel"].as_str().unwrap().contains("菜刀 cleaver"), "{seen}");
    let form = &seen["customs_form"];
    let knives = &InspectionConfig::default().agencies[0].categories[0].id;
    assert_eq!(
        (form["cat0"].as_str(), form["note0"].as_str()),
        (Some(knives.as_str()), Some("菜刀 cleaver"))
    );
    assert_eq!(
        (form["cat1"].as_str(), form["button"].as_str()),
        (Some(""), Some("更正结果 Correct findings")),
        "{form}"
    );
    assert!(seen["customs_url"].as_str().unwrap().contains("/bag/1"), "still the bag's page: {seen}");
    assert!(seen["closed_text"].as_str().unwrap().contains("Closed"), "{seen}");
    let q = seen["quarantine_panel"].as_str().unwrap();
    assert!(q.contains("Quarantine: nothing found") && q.contains("Treatment: none needed"), "{q}");
    assert_eq!(seen["openings_after"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["photo_size"], serde_json::json!([640, 480]), "the photo's thumbnail loaded: {seen}");

    // The archive: both agencies' findings under their operators, the opening closed, the audit
    // chain whole.
    let store = Store::open_read(&data).unwrap();
    let rec = store.record(1).unwrap();
    assert!(rec.opening(&InspectionConfig::default()).unwrap().closed);
    assert_eq!(rec.findings_of("customs").unwrap().operator, "c001");
    assert_eq!(rec.findings_of("customs").unwrap().items[0].note, "菜刀 cleaver");
    assert_eq!(rec.findings_of("quarantine").unwrap().operator, "q001");
    assert!(rec.findings_of("quarantine").unwrap().items.is_empty());
    assert_eq!(rec.photos.len(), 1);
    assert_eq!(
        (rec.photos[0].operator.as_str(), rec.photos[0].size),
        ("q001", std::fs::metadata(&photo).unwrap().len())
    );
    assert!(store.verify_audit().unwrap().ok());
    for f in ["openings-1280x800.png", "bag-1280x800.png", "bag-800x1280.png"] {
        let img = image::open(shots.join(f)).unwrap();
        assert!(img.width() >= 800 && img.height() >= 800, "{f}");
    }
}
