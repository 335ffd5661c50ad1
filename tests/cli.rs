//! The commands as a user runs them: `render` (GPU and CPU twin, raw TIFF out and back in) and
//! `classify` on stdin.

use std::io::Write;
use std::process::{Command, Stdio};

mod common;

fn twinspect() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_twinspect"));
    c.env("WGPU_BACKEND", std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into()));
    c
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{c:?} failed: {err}");
    err
}

#[test]
fn render_writes_png_and_raw_tiff_that_renders_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("bag.png");
    let tiff = dir.path().join("bag.tiff");
    run_ok(
        twinspect()
            .args(["render", "--synthetic", "11", "--preset", "standard", "--out"])
            .arg(&png)
            .arg("--tiff-out")
            .arg(&tiff),
    );
    let img = image::open(&png).unwrap().to_rgba8();
    assert_eq!(img.height(), 1536, "one row per channel");
    assert!(img.width() > 300);
    // a bag, not a blank: orange, green or blue pixels and white air
    let coloured = img.pixels().filter(|p| p[0].abs_diff(p[2]) > 60).count();
    let white = img.pixels().filter(|p| p[0] > 245 && p[1] > 245 && p[2] > 245).count();
    assert!(coloured > 5000 && white > 50000, "coloured {coloured}, white {white}");

    // An independent reader (ImageMagick, installed by .ci/test) sees two 16-bit pages.
    let id = Command::new("identify")
        .args(["-format", "%w %h %z\n"])
        .arg(&tiff)
        .output()
        .expect("ImageMagick's identify");
    assert!(id.status.success(), "{}", String::from_utf8_lossy(&id.stderr));
    let pages: Vec<String> = String::from_utf8_lossy(&id.stdout).lines().map(str::to_owned).collect();
    assert_eq!(pages, vec![format!("1536 {} 16", img.width()); 2]);
    let frame = twinspect::files::io::read_raw_tiff(&tiff).unwrap();
    assert_eq!(frame.channels(), 1536);
    assert_eq!(frame.lines() as u32, img.width());

    let png2 = dir.path().join("again.png");
    run_ok(twinspect().args(["render", "--raw"]).arg(&tiff).arg("--out").arg(&png2));
    assert_eq!(image::open(&png2).unwrap().to_rgba8(), img, "raw TIFF renders the same as the live scan");

    let cpu_png = dir.path().join("cpu.png");
    run_ok(twinspect().args(["render", "--synthetic", "11", "--cpu", "--out"]).arg(&cpu_png));
    let cpu = image::open(&cpu_png).unwrap().to_rgba8();
    let far = img.as_raw().iter().zip(cpu.as_raw()).filter(|(a, b)| a.abs_diff(**b) > 2).count();
    assert!((far as f64) < 0.005 * img.as_raw().len() as f64, "GPU and CPU renders differ in {far} samples");
}

#[test]
fn render_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.tiff");
    std::fs::write(&bogus, b"not a tiff").unwrap();
    let out = twinspect().args(["render", "--raw"]).arg(&bogus).args(["--out", "x.png"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus.tiff"));
    let out = twinspect()
        .args(["render", "--synthetic", "1", "--profile", "nope", "--out", "x.png"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn classify_reads_stdin() {
    let mut child = twinspect()
        .args(["classify", "--profile", "hub-160"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"log_att_low,log_att_high\n0.8,0.65\n2.4,1.2\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "log_att_low,log_att_high,zeff,class");
    assert!(rows[1].ends_with("organic"), "{text}");
    assert!(rows[2].ends_with("metal"), "{text}");
}

#[test]
fn operators_are_managed_from_the_command_line_and_pins_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("operators.toml");
    // The default data directory (no --data) is where account changes are audited.
    let data = dir.path().join("twinspect");
    drop(twinspect::files::store::Store::open(&data).unwrap());
    let twinspect = || {
        let mut c = twinspect();
        c.env("XDG_DATA_HOME", dir.path());
        c
    };
    let add = |id: &str, role: &str, pin: &str| {
        let mut child = twinspect()
            .args(["operators", "--file"])
            .arg(&file)
            .args(["add", "--id", id, "--name", "Zhang San", "--role", role])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{pin}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(add("c100", "customs", "482913").status.success());
    assert!(add("q100", "quarantine", "771204").status.success());
    let bad_role = add("x1", "navy", "123456");
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("unknown role"));
    assert!(!add("x2", "customs", "12").status.success(), "a 2-digit PIN is refused");
    assert!(!add("c100", "customs", "999999").status.success(), "ids are unique");

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("$argon2id$") && !text.contains("482913") && !text.contains("771204"));
    let list = twinspect().args(["operators", "--file"]).arg(&file).arg("list").output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert_eq!(
        list.lines().collect::<Vec<_>>(),
        vec!["c100\tZhang San\tcustoms", "q100\tZhang San\tquarantine"]
    );
    run_ok(twinspect().args(["operators", "--file"]).arg(&file).args(["disable", "--id", "q100"]));
    let list = twinspect().args(["operators", "--file"]).arg(&file).arg("list").output().unwrap();
    assert!(String::from_utf8(list.stdout).unwrap().contains("q100\tZhang San\tquarantine\tdisabled"));
    let store = twinspect::cli::load_operators(&file).unwrap();
    assert_eq!(store.records().count(), 2);
    // Each change is a configuration change in the audit trail, without the PIN.
    let audit = twinspect().args(["audit", "list"]).output().unwrap();
    let audit = String::from_utf8_lossy(&audit.stdout).into_owned();
    let changes: Vec<&str> = audit.lines().filter(|l| l.contains("config.operators")).collect();
    assert_eq!(changes.len(), 3, "{audit}");
    assert!(
        changes[0].contains("c100") && changes[0].contains("add") && changes[2].contains("disable"),
        "{audit}"
    );
    assert!(!audit.contains("482913") && !audit.contains("771204"));
    let v = twinspect().args(["audit", "verify"]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    std::fs::write(&file, "this is [not toml").unwrap();
    let out = twinspect().args(["operators", "--file"]).arg(&file).arg("list").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an operators file"));
}

/// `emulate` on a pseudo-terminal with injected faults and no bag signals, `capture` from it:
/// bags found in the image, written as two-page TIFFs with their lost lines listed, statistics
/// printed; the raw blocks read back by an independent reader (tifffile, installed by .ci/test).
#[test]
fn capture_records_bags_from_the_serial_emulator_with_its_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("scanner");
    let mut emu = common::emulator_on_pty(
        &[
            "--speed",
            "2",
            "--gap-mm",
            "80",
            "--no-bag-signals",
            "--loss",
            "0.01",
            "--noise",
            "0.01",
            "--seconds",
            "60",
        ],
        &link,
    );
    let out_dir = dir.path().join("cap");
    let out = twinspect()
        .args(["capture", "--bags", "2", "--seconds", "40", "--raw", "--source"])
        .arg(format!("serial://{}", link.display()))
        .arg("--out")
        .arg(&out_dir)
        .env("RUST_LOG", "twinspect=info")
        .output()
        .unwrap();
    let _ = emu.kill();
    let _ = emu.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The log (RUST_LOG): the link's events inside the span of the source they concern, plain
    // text into a pipe.
    let up = stderr.lines().find(|l| l.contains("link up")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        up.contains(&format!("source{{url=serial://{}", link.display())) && up.contains(" INFO "),
        "{up}"
    );
    assert!(!stderr.contains('\u{1b}'), "no colour codes in a pipe");
    let stat = |name: &str| common::stat(&stdout, name);
    assert_eq!(stat("bags"), 2);
    assert!(stat("lines") > 500);
    assert!(stat("missing lines") > 0 && stat("frames lost") > 0, "{stdout}");
    assert!(stat("bytes skipped") > 0, "noise was skipped: {stdout}");
    for n in 0..2 {
        let tiff = out_dir.join(format!("bag-{n:06}.tiff"));
        let frame = twinspect::files::io::read_raw_tiff(&tiff).unwrap();
        assert_eq!(frame.channels(), 1536);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join(format!("bag-{n:06}.json"))).unwrap())
                .unwrap();
        assert_eq!(meta["lines"].as_u64().unwrap() as usize, frame.lines());
        assert!(meta["item_id"].is_null(), "no tags without bag signals");
        // listed lost rows are placeholders (zero), and render shows them hatched
        for r in meta["missing_rows"].as_array().unwrap() {
            let r = r.as_u64().unwrap() as usize;
            assert!(frame.low.row(r).iter().all(|&v| v == 0));
        }
    }
    let png = dir.path().join("bag0.png");
    run_ok(
        twinspect()
            .args(["render", "--cpu", "--raw"])
            .arg(out_dir.join("bag-000000.tiff"))
            .arg("--out")
            .arg(&png),
    );
    // raw blocks as received: one 16-bit page, 2 x 1536 samples a row
    let py = "import sys, tifffile; a = tifffile.imread(sys.argv[1]); print(a.dtype, a.shape)";
    let o = Command::new("python3").args(["-c", py]).arg(out_dir.join("block-000000.tiff")).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "uint16 (256, 3072)");
}

#[test]
fn stream_commands_refuse_bad_options_clearly() {
    for (args, needle) in [
        (vec!["capture", "--source", "usb://x", "--bags", "1", "--out", "/tmp/x"], "unknown source"),
        (
            vec!["capture", "--source", "serial:///dev/x?parity=mark", "--bags", "1", "--out", "/tmp/x"],
            "none, odd or even",
        ),
        (vec!["capture", "--source", "synthetic://?seed=1", "--out", "/tmp/x"], "--bags"),
        (vec!["emulate", "--serial", "pty", "--loss", "2"], "probability"),
        (vec!["emulate", "--serial", "gige://1.2.3.4"], "serial:// URL"),
    ] {
        let out = twinspect().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn render_projects_a_threat_from_the_library_into_the_bag() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.png");
    let knife = dir.path().join("knife.png");
    run_ok(twinspect().args(["render", "--synthetic", "7", "--cpu", "--out"]).arg(&plain));
    let err = run_ok(
        twinspect()
            .args([
                "render",
                "--synthetic",
                "7",
                "--cpu",
                "--tip",
                "kitchen knife",
                "--tip-seed",
                "3",
                "--out",
            ])
            .arg(&knife),
    );
    assert!(err.contains("projected the kitchen knife at line"), "{err}");
    let (a, b) = (image::open(&plain).unwrap().to_rgba8(), image::open(&knife).unwrap().to_rgba8());
    let changed = a.pixels().zip(b.pixels()).filter(|(p, q)| p != q).count();
    // The knife's footprint (about 218 x 104 pixels, a thin diagonal blade) and nothing else.
    assert!((2_000..30_000).contains(&changed), "{changed} pixels changed");
    let out = twinspect()
        .args(["render", "--synthetic", "7", "--cpu", "--tip", "bazooka", "--out"])
        .arg(&knife)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kitchen knife, lead block, steel frame"));
}

/// Standard output of a command that must succeed.
fn stdout_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Man pages and shell completion are made from the options the binary parses: `man` renders a
/// subcommand's page with its options, and bash, with the completion script sourced, completes
/// a subcommand's name and its options.
#[test]
fn man_pages_and_bash_completion_follow_the_options() {
    let dir = tempfile::tempdir().unwrap();
    stdout_ok(twinspect().args(["manpage", "--out"]).arg(dir.path()));
    for page in ["twinspect.1", "twinspect-capture.1", "twinspect-genicam.1", "twinspect-export-dicos.1"] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
    let man = stdout_ok(
        Command::new("man")
            .arg("-l")
            .arg(dir.path().join("twinspect-capture.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"),
    );
    assert!(man.contains("twinspect-capture") && man.contains("--source") && man.contains("--bags"), "{man}");

    let script = stdout_ok(twinspect().args(["completions", "bash"]));
    let path = dir.path().join("twinspect.bash");
    std::fs::write(&path, script).unwrap();
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let sh = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
             _twinspect twinspect '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display(),
            words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        stdout_ok(Command::new("bash").args(["-c", &sh]))
    };
    let subs = complete("twinspect ca");
    assert_eq!(subs.trim(), "capture", "{subs}");
    let opts = complete("twinspect capture --so");
    assert_eq!(opts.trim(), "--source", "{opts}");
}

/// A long command says how far it is on standard error: a bar redrawn in place on a terminal
/// (under `script`, a pseudo-terminal), a plain line every 5 s into a pipe, nothing with
/// `--quiet`; its results on standard output are the same in every case.
#[test]
fn capture_shows_progress_as_a_bar_on_a_terminal_as_lines_in_a_log_and_nothing_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let capture = |extra: &[&str], out: &str| {
        let mut c = twinspect();
        c.args(extra).args(["capture", "--source", "synthetic://?seed=3&speed=5", "--seconds", "6", "--out"]);
        c.arg(dir.path().join(out)).output().unwrap()
    };
    let piped = capture(&[], "a");
    let (out, err) = (String::from_utf8_lossy(&piped.stdout), String::from_utf8_lossy(&piped.stderr));
    assert!(piped.status.success() && out.contains("bags: "), "{out}{err}");
    let line = err.lines().find(|l| l.starts_with("5 of 6 s: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(" bags, ") && line.contains(" lines, "), "{line}");
    assert!(err.lines().any(|l| l.starts_with("bag 0 (")), "{err}");

    let quiet = capture(&["--quiet"], "b");
    assert!(quiet.status.success() && String::from_utf8_lossy(&quiet.stdout).contains("bags: "));
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "", "quiet");

    let log = dir.path().join("tty.log");
    let cmd = format!(
        "{} capture --source 'synthetic://?seed=3&speed=5' --seconds 3 --out {}",
        env!("CARGO_BIN_EXE_twinspect"),
        dir.path().join("c").display()
    );
    let s = Command::new("script").args(["-qec", &cmd]).arg(&log).stdout(Stdio::null()).status().unwrap();
    assert!(s.success());
    let tty = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert!(
        tty.contains("[====") && tty.contains("/3 s") && tty.contains('\r'),
        "a bar redrawn in place: {tty}"
    );
}
