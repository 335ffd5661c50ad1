//! `gige://` as a line source, end to end, each test in a private network namespace whose only
//! interface is `lo` (needs root, as CI runs): our driver against our GigE Vision emulator
//! (calibration through its XrayMode feature, 2 % packet loss recovered by resends and 5 %
//! reordered, a pulled
//! cable), against Aravis's fake camera (a device no one here wrote: its GenICam XML drives the
//! set-up, its ramp arrives as lines), and `twinspect capture` from `twinspect emulate --gige`.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::scan::{LineKind, RawLine};
use twinspect::emulator::gige::{GigeOptions, serve};
use twinspect::source::gige::driver::{GigeSourceOptions, spawn};
use twinspect::source::url::SourceUrl;
use twinspect::source::{RunningSource, SourceEvent, open};

mod common;

/// Events until `done` says so (or the deadline: a failure with what came).
fn collect(src: &RunningSource, secs: u64, mut done: impl FnMut(&[SourceEvent]) -> bool) -> Vec<SourceEvent> {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::new();
    while !done(&out) {
        assert!(Instant::now() < until, "timed out after {} events: {:?}", out.len(), summary(&out));
        if let Ok(ev) = src.events.recv_timeout(Duration::from_millis(100)) {
            out.push(ev);
        }
    }
    out
}

fn summary(evs: &[SourceEvent]) -> Vec<String> {
    evs.iter()
        .filter(|e| !matches!(e, SourceEvent::Line(_)))
        .map(|e| format!("{e:?}"))
        .chain(std::iter::once(format!("{} lines", lines(evs).len())))
        .collect()
}

fn lines(evs: &[SourceEvent]) -> Vec<&RawLine> {
    evs.iter().filter_map(|e| if let SourceEvent::Line(l) = e { Some(l) } else { None }).collect()
}

/// Aravis's fake GigE Vision camera on 127.0.0.1 of `ns`, with serial number `serial` (stopped
/// with the namespace).
fn fake_camera(ns: &mut common::Netns, serial: &str) {
    ns.child = Some(
        ns.cmd("arv-fake-gv-camera-0.8")
            .args(["-i", "127.0.0.1", "-s", serial])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("arv-fake-gv-camera-0.8 (Debian package aravis-tools)"),
    );
}

fn mean(l: &RawLine) -> f64 {
    l.low.iter().chain(&l.high).map(|v| f64::from(*v)).sum::<f64>() / (2 * l.low.len()) as f64
}

#[test]
fn our_emulator_calibrated_streamed_with_resends_and_reconnected_after_a_pulled_cable() {
    let ns = common::Netns::new("gsrc");
    ns.enter();
    let p = ScannerProfile::load("desk-140").unwrap();
    let ip = Ipv4Addr::new(127, 0, 0, 2);
    let dev_opts = GigeOptions { ip, speed: 4.0, loss: 0.02, reorder: 0.05, ..Default::default() };
    let dev = serve(&p, dev_opts.clone()).unwrap();
    let src = open(&SourceUrl::parse("gige://127.0.0.2?lines=32&packet=1500").unwrap(), &p).unwrap();

    let scan_lines = |evs: &[SourceEvent]| lines(evs).iter().filter(|l| l.kind == LineKind::Scan).count();
    let evs = collect(&src, 30, |evs| scan_lines(evs) >= 1500);
    match &evs[0] {
        SourceEvent::Link { up: true, detail } => {
            assert!(detail.contains("LineScanEmulator") && detail.contains("TS-GIGE-0001"), "{detail}");
            assert!(detail.contains("1536 x 64 Mono16"), "Width and Height set through GenICam: {detail}");
        }
        other => panic!("first event {other:?}"),
    }
    let ls = lines(&evs);
    // The calibration cycle: dark (beam off), then air, then scan; never mixed.
    let kinds: Vec<LineKind> = ls.iter().map(|l| l.kind).collect();
    let dark = kinds.iter().take_while(|k| **k == LineKind::Dark).count();
    let air = kinds[dark..].iter().take_while(|k| **k == LineKind::Air).count();
    assert!(dark >= 64 && air >= 64, "dark {dark}, air {air}");
    assert!(kinds[dark + air..].iter().all(|k| *k == LineKind::Scan));
    let dark_level = ls[..dark].iter().map(|l| mean(l)).sum::<f64>() / dark as f64;
    let air_level = ls[dark..dark + air].iter().map(|l| mean(l)).sum::<f64>() / air as f64;
    assert!((dark_level - p.dark_level).abs() < 0.1 * p.dark_level + 50.0, "{dark_level}");
    assert!(air_level > 10.0 * dark_level, "air {air_level} vs dark {dark_level}");
    // Every lost packet came back: line numbers run on without a gap, nothing was lost.
    assert!(ls.windows(2).all(|w| w[1].seq == w[0].seq + 1), "a gap without a pulled cable");
    let st = &src.stats;
    let requested = st.resends_requested.load(Ordering::Relaxed);
    assert!(requested > 0, "2 % loss must have asked for resends");
    honoured_all(st.resends_honoured.load(Ordering::Relaxed), requested);
    assert_eq!(st.frames_lost.load(Ordering::Relaxed), 0);
    assert!(dev.stats.packets_dropped.load(Ordering::Relaxed) > 0);
    assert!(dev.stats.packets_reordered.load(Ordering::Relaxed) > 0, "out-of-order packets placed right");
    let last_seq = ls.last().unwrap().seq;

    // The cable is pulled: the device is gone. Then it is back.
    drop(dev);
    let evs = collect(&src, 20, |evs| evs.iter().any(|e| matches!(e, SourceEvent::Link { up: false, .. })));
    let down = evs.iter().find_map(|e| match e {
        SourceEvent::Link { up: false, detail } => Some(detail.clone()),
        _ => None,
    });
    assert!(down.unwrap().contains("127.0.0.2"));
    std::thread::sleep(Duration::from_millis(1500));
    let dev = serve(&p, dev_opts).unwrap();
    let evs = collect(&src, 30, |evs| scan_lines(evs) >= 200);
    assert!(evs.iter().any(|e| matches!(e, SourceEvent::Link { up: true, .. })), "{:?}", summary(&evs));
    assert_eq!(src.stats.reconnects.load(Ordering::Relaxed), 1);
    let ls = lines(&evs);
    let first_after = ls.iter().find(|l| l.seq > last_seq).unwrap();
    // 1.5 s away at 1,200 lines/s is a gap of hundreds of lines, shown as missing, never stitched.
    assert!(first_after.seq > last_seq + 300, "{} after {last_seq}", first_after.seq);
    assert!(ls.iter().filter(|l| l.kind == LineKind::Dark).count() >= 64, "calibrated again");
    drop(src);
    drop(dev);
}

#[test]
fn aravis_fake_camera_as_a_line_source_through_its_genicam_xml() {
    let mut ns = common::Netns::new("gfake");
    fake_camera(&mut ns, "XRAY0002");
    ns.enter();
    std::thread::sleep(Duration::from_millis(500));
    let mut o = GigeSourceOptions::new(Ipv4Addr::LOCALHOST, 128);
    o.lines_per_block = 16;
    let src = spawn(o);
    let evs = collect(&src, 30, |evs| lines(evs).len() >= 400);
    let detail = evs
        .iter()
        .find_map(|e| match e {
            SourceEvent::Link { up: true, detail } => Some(detail.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{:?}", summary(&evs)));
    assert!(detail.contains("Aravis") && detail.contains("XRAY0002"), "{detail}");
    assert!(detail.contains("128 x 32 Mono16"), "Width, Height, PixelFormat set by its XML: {detail}");
    let ls = lines(&evs);
    assert!(ls.iter().all(|l| l.kind == LineKind::Scan), "no XrayMode feature: no calibration cycle");
    assert!(ls.windows(2).all(|w| w[1].seq == w[0].seq + 1), "no loss, no gap");
    // The camera's ramp: pixel (x, y) of frame f is 256 (x + y + f) mod 65535. Line k of a block
    // is rows 2k (low) and 2k+1 (high); the frame is the block's wire id.
    let v = |x: u64, y: u64, f: u64| ((256 * (x + y + f)) % 65535) as u16;
    let f0 = (1..=65535u64).find(|f| v(0, 0, *f) == ls[0].low[0]).unwrap();
    let s0 = ls[0].seq;
    assert_eq!(s0 % 16, 0, "the first line opens a block");
    for l in &ls {
        let (block, k) = ((l.seq - s0) / 16, (l.seq - s0) % 16);
        let f = (f0 - 1 + block) % 65535 + 1;
        for x in [0usize, 1, 77, 127] {
            assert_eq!(l.low[x], v(x as u64, 2 * k, f), "line {} low[{x}]", l.seq);
            assert_eq!(l.high[x], v(x as u64, 2 * k + 1, f), "line {} high[{x}]", l.seq);
        }
    }
    drop(src);

    // More channels than its sensor has: refused with the device's own limit, said on the link.
    let o = GigeSourceOptions::new(Ipv4Addr::LOCALHOST, 4096);
    let src = spawn(o);
    let evs = collect(&src, 10, |evs| evs.iter().any(|e| matches!(e, SourceEvent::Link { up: false, .. })));
    let why = evs
        .iter()
        .find_map(|e| match e {
            SourceEvent::Link { up: false, detail } => Some(detail.clone()),
            _ => None,
        })
        .unwrap();
    assert!(why.contains("Width = 4096 is out of range"), "{why}");
    drop(src);
    // The failed set-up gave control back: the next host gets it at once, not after the
    // camera's 3 s heartbeat timeout.
    let mut o = GigeSourceOptions::new(Ipv4Addr::LOCALHOST, 128);
    o.lines_per_block = 16;
    let src = spawn(o);
    let evs = collect(&src, 10, |evs| !evs.is_empty());
    assert!(matches!(&evs[0], SourceEvent::Link { up: true, .. }), "{:?}", summary(&evs));
}

#[test]
fn capture_from_the_gige_emulator_writes_bags() {
    let mut ns = common::Netns::new("gcap");
    let links = ns.run(&["ip", "-brief", "link"]);
    assert_eq!(links.lines().count(), 1, "only lo: nothing can leave the machine: {links}");
    let exe = env!("CARGO_BIN_EXE_twinspect");
    ns.child = Some(
        ns.cmd(exe)
            .args([
                "emulate",
                "--gige",
                "127.0.0.2",
                "--gige-loss",
                "0.01",
                "--speed",
                "8",
                "--seconds",
                "90",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = ns
        .cmd(exe)
        .args(["capture", "--source", "gige://127.0.0.2?lines=64"])
        .args(["--bags", "2", "--seconds", "60", "--raw", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let stat = |name: &str| common::stat(&stdout, name);
    assert_eq!(stat("bags"), 2, "{stdout}");
    assert_eq!(stat("missing lines"), 0, "every lost packet resent: {stdout}");
    assert!(stat("resends requested") > 0, "{stdout}");
    honoured_all(stat("resends honoured"), stat("resends requested"));
    for n in 0..2 {
        assert!(dir.path().join(format!("bag-{n:06}.tiff")).exists());
    }
    // --raw: every block exactly as it arrived, read back by an independent reader (tifffile):
    // 64 lines as alternating low/high rows of 1536 channels.
    let blocks: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("gige-block-"))
        .collect();
    assert!(blocks.len() > 10 && blocks.len() as u64 == stat("raw blocks"), "{stdout}");
    let py = "import sys, tifffile; a = tifffile.imread(sys.argv[1]); print(a.dtype, a.shape)";
    let o = std::process::Command::new("python3")
        .args(["-c", py])
        .arg(&blocks[blocks.len() / 2])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.trim(), "uint16 (128, 1536)");
}

#[test]
fn devices_found_by_broadcast_discovery_and_opened_by_serial_number() {
    let ns = common::Netns::new("gdisc");
    ns.enter();
    let p = ScannerProfile::load("desk-140").unwrap();
    let serve_at = |last: u8, serial: &str| {
        let ip = Ipv4Addr::new(127, 0, 0, last);
        serve(&p, GigeOptions { ip, speed: 4.0, serial_number: serial.into(), ..Default::default() }).unwrap()
    };
    let _a = serve_at(2, "TS-A");
    let _b = serve_at(3, "TS-B");
    let mut found = twinspect::source::gige::discover_all(Duration::from_millis(500)).unwrap();
    found.sort_by_key(|(ip, _)| *ip);
    let seen: Vec<(Ipv4Addr, &str)> = found.iter().map(|(ip, i)| (*ip, i.serial.as_str())).collect();
    assert_eq!(seen, [(Ipv4Addr::new(127, 0, 0, 2), "TS-A"), (Ipv4Addr::new(127, 0, 0, 3), "TS-B")]);

    let src = open(&SourceUrl::parse("gige://TS-B?lines=32").unwrap(), &p).unwrap();
    let evs = collect(&src, 30, |evs| lines(evs).iter().filter(|l| l.kind == LineKind::Scan).count() >= 100);
    match &evs[0] {
        SourceEvent::Link { up: true, detail } => assert!(detail.contains("TS-B) at 127.0.0.3"), "{detail}"),
        other => panic!("first event {other:?}"),
    }
    drop(src);

    let src = open(&SourceUrl::parse("gige://TS-C").unwrap(), &p).unwrap();
    let evs = collect(&src, 10, |evs| !evs.is_empty());
    match &evs[0] {
        SourceEvent::Link { up: false, detail } => {
            assert!(detail.contains("no device with serial number TS-C"), "{detail}");
            assert!(detail.contains("TS-A at 127.0.0.2") && detail.contains("TS-B at 127.0.0.3"), "{detail}");
        }
        other => panic!("first event {other:?}"),
    }
}

#[test]
fn extended_block_ids_with_loss_recovered_by_64_bit_resends() {
    let ns = common::Netns::new("gext");
    ns.enter();
    let p = ScannerProfile::load("desk-140").unwrap();
    let ip = Ipv4Addr::new(127, 0, 0, 2);
    let dev = serve(&p, GigeOptions { ip, speed: 4.0, loss: 0.02, ..Default::default() }).unwrap();
    // 64 lines a block: the emulator keeps its last 64 blocks for resends, about 3 s here, so a
    // request delayed by a busy machine still finds its packets.
    let src = open(&SourceUrl::parse("gige://127.0.0.2?lines=64&ids=extended").unwrap(), &p).unwrap();
    let evs = collect(&src, 30, |evs| lines(evs).iter().filter(|l| l.kind == LineKind::Scan).count() >= 800);
    let ls = lines(&evs);
    assert!(ls.windows(2).all(|w| w[1].seq == w[0].seq + 1), "no gap");
    let requested = src.stats.resends_requested.load(Ordering::Relaxed);
    assert!(requested > 0);
    honoured_all(src.stats.resends_honoured.load(Ordering::Relaxed), requested);
    assert!(
        dev.stats.packets_resent.load(Ordering::Relaxed) > 0,
        "the device found the 64-bit ids asked for"
    );
}

/// The belt through the device's `BeltControl` feature (in the emulator's GenICam XML): stopped,
/// the detector sends no lines and the driver reads the belt back and reports it; the silence
/// of a belt at rest is not a lost link; forward, lines come again.
#[test]
fn the_belt_stops_and_runs_through_the_genicam_belt_control_feature() {
    use twinspect::source::{Belt, ScannerCommand};
    let ns = common::Netns::new("gbelt");
    ns.enter();
    let p = ScannerProfile::load("desk-140").unwrap();
    let dev =
        serve(&p, GigeOptions { ip: Ipv4Addr::new(127, 0, 0, 2), speed: 4.0, ..Default::default() }).unwrap();
    let src = open(&SourceUrl::parse("gige://127.0.0.2?lines=16&silence_ms=500").unwrap(), &p).unwrap();
    let evs = collect(&src, 30, |evs| lines(evs).iter().filter(|l| l.kind == LineKind::Scan).count() > 64);
    assert!(evs.iter().any(|e| matches!(e, SourceEvent::Belt(Belt::Forward))), "read back at connection");
    assert!(src.command(ScannerCommand::Belt(Belt::Stop)));
    collect(&src, 10, |evs| evs.iter().any(|e| matches!(e, SourceEvent::Belt(Belt::Stop))));
    // At rest for four silence limits: no lines after those in flight, and no link down.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(dev.stats.belt.load(Ordering::Relaxed), 0, "the device's belt stopped");
    while src.events.try_recv().is_ok() {}
    let quiet = Instant::now() + Duration::from_secs(2);
    let mut during = Vec::new();
    while Instant::now() < quiet {
        if let Ok(e) = src.events.recv_timeout(Duration::from_millis(100)) {
            during.push(e);
        }
    }
    assert!(lines(&during).is_empty(), "{:?}", summary(&during));
    assert!(
        !during.iter().any(|e| matches!(e, SourceEvent::Link { up: false, .. })),
        "{:?}",
        summary(&during)
    );
    assert!(src.command(ScannerCommand::Belt(Belt::Forward)));
    let evs = collect(&src, 10, |evs| lines(evs).len() > 32);
    assert!(evs.iter().any(|e| matches!(e, SourceEvent::Belt(Belt::Forward))));
    assert_eq!(dev.stats.belt_changes.load(Ordering::Relaxed), 2);
}

#[test]
fn an_injected_outage_is_reported_and_the_driver_comes_back() {
    let ns = common::Netns::new("gout");
    ns.enter();
    let p = ScannerProfile::load("desk-140").unwrap();
    let ip = Ipv4Addr::new(127, 0, 0, 2);
    let opts = GigeOptions {
        ip,
        speed: 4.0,
        disconnect_every: Some(4.0),
        disconnect_for: 3.0,
        ..Default::default()
    };
    let dev = serve(&p, opts).unwrap();
    let src = open(&SourceUrl::parse("gige://127.0.0.2?lines=16&reconnect_ms=200").unwrap(), &p).unwrap();
    // up, down (the outage), up again, and lines after it
    let evs = collect(&src, 30, |evs| {
        let links: Vec<bool> = evs
            .iter()
            .filter_map(|e| if let SourceEvent::Link { up, .. } = e { Some(*up) } else { None })
            .collect();
        links.windows(3).any(|w| w == [true, false, true])
            && evs.iter().rev().take_while(|e| !matches!(e, SourceEvent::Link { .. })).count() > 100
    });
    assert!(dev.stats.disconnects.load(Ordering::Relaxed) >= 1);
    assert!(src.stats.reconnects.load(Ordering::Relaxed) >= 1);
    let ls = lines(&evs);
    let jump = ls.windows(2).map(|w| w[1].seq - w[0].seq).max().unwrap();
    assert!(jump > 16, "the outage is a gap of missing lines, not a splice ({jump})");
}

/// tshark's dissectors (Wireshark, an independent reading of GigE Vision 2.0) over our driver and
/// emulator with 64-bit block ids and 2 % loss: the stream decodes with 64-bit block ids and
/// 32-bit packet ids, the resend requests with the extended block id the emulator honoured, and
/// nothing is malformed or warned about.
#[test]
fn tshark_reads_extended_ids_and_their_resends_as_gige_vision_2() {
    let ns = common::Netns::new("gextsh");
    ns.enter();
    let dir = tempfile::tempdir().unwrap();
    let mut cap = common::Tshark::start(&ns, dir.path().join("ext.pcapng"));
    let p = ScannerProfile::load("desk-140").unwrap();
    let ip = Ipv4Addr::new(127, 0, 0, 2);
    let dev = serve(&p, GigeOptions { ip, speed: 2.0, loss: 0.02, ..Default::default() }).unwrap();
    let src = open(&SourceUrl::parse("gige://127.0.0.2?lines=64&ids=extended").unwrap(), &p).unwrap();
    collect(&src, 30, |evs| lines(evs).iter().filter(|l| l.kind == LineKind::Scan).count() >= 300);
    drop(src);
    std::thread::sleep(Duration::from_millis(300));
    cap.stop();
    assert!(dev.stats.packets_resent.load(Ordering::Relaxed) > 0);
    let count = |filter: &str| cap.count(filter);
    assert!(count("gvcp.bootstrap.gvcspconfig.64bitblockidenable == 1") > 0, "the switch to 64-bit ids");
    assert!(count("gvsp.blockid64 && gvsp.packetid32") > 500, "extended GVSP decoded");
    assert_eq!(count("gvsp.blockid16"), 0, "no standard-id packet once switched");
    assert!(count("gvcp.cmd.resend.extendedblockid") > 0, "64-bit resend requests decoded");
    assert!(count("gvsp.flag.packetresend == 1") > 0, "resent packets flagged as such");
    assert_eq!(count("_ws.malformed || _ws.expert.severity >= warning"), 0, "malformed or warned packets");
}

/// Resends came for what was asked. Not "honoured == requested": a request is repeated every
/// 5 ms until its packets arrive, so on a busy machine a packet can be asked for twice and come
/// once (CI: 85 asked, 83 came, no line missing). The tests' real property is that no line is
/// missing, checked beside each call.
fn honoured_all(honoured: u64, requested: u64) {
    assert!(honoured > 0 && honoured <= requested, "{honoured} resent packets came for {requested} asked");
    assert!(honoured * 10 >= requested * 8, "most requests answered: {honoured} of {requested}");
}

/// GenICam floats on a device no one here wrote: Aravis's fake camera's `ExposureTimeAbs` (a
/// Float through a Converter onto an integer register) and `AcquisitionFrameRate` (a Float
/// through `1000000 / FROM` onto the frame period), set by `twinspect genicam --set` and read
/// back by Aravis's own `arv-tool-0.8`; a value below the feature's minimum is refused.
#[test]
fn float_features_set_by_genicam_are_read_back_by_aravis() {
    let mut ns = common::Netns::new("gfloat");
    fake_camera(&mut ns, "XRAY0003");
    std::thread::sleep(Duration::from_millis(500));
    let exe = env!("CARGO_BIN_EXE_twinspect");
    let features = ["ExposureTimeAbs", "AcquisitionFrameRate", "AcquisitionFramePeriod"];
    let out = ns
        .cmd(exe)
        .args(["genicam", "--source", "gige://127.0.0.1"])
        .args(["--set", "ExposureTimeAbs=25000.4", "--set", "AcquisitionFrameRate=12.5"])
        .args(features)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<&str> = listed.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        rows,
        [
            "ExposureTimeAbs\tFloat\t25000\t10 .. 10000000",
            "AcquisitionFrameRate\tFloat\t12.5\t0.1 .. 1000",
            "AcquisitionFramePeriod\tInteger\t80000\t1000 .. 10000000",
        ],
        "{listed}"
    );
    let arv =
        ns.run(&["arv-tool-0.8", "-a", "127.0.0.1", "control", "ExposureTimeAbs", "AcquisitionFrameRate"]);
    assert!(arv.contains("ExposureTimeAbs = 25000"), "{arv}");
    assert!(arv.contains("AcquisitionFrameRate = 12.5"), "{arv}");
    let out = ns
        .cmd(exe)
        .args(["genicam", "--source", "gige://127.0.0.1", "--set", "ExposureTimeAbs=5"])
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && why.contains("min 10"), "{why}");
}

/// Our emulator's line rate is SFNC's float `AcquisitionLineRate` (an IEEE register): set
/// through `twinspect genicam`, read back, and the stream runs at it.
#[test]
fn the_line_rate_is_a_float_feature_and_the_stream_follows_it() {
    let ns = common::Netns::new("grate");
    ns.enter();
    let p = ScannerProfile::load("desk-140").unwrap();
    let _dev =
        serve(&p, GigeOptions { ip: Ipv4Addr::new(127, 0, 0, 2), speed: 1.0, ..Default::default() }).unwrap();
    let exe = env!("CARGO_BIN_EXE_twinspect");
    let out = ns
        .cmd(exe)
        .args(["genicam", "--source", "gige://127.0.0.2", "--set", "AcquisitionLineRate=150.5"])
        .arg("AcquisitionLineRate")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(listed.contains("AcquisitionLineRate\tFloat\t150.5 Hz\t1 .. 100000"), "{listed}");
    // Half the profile's 300 lines/s: slower, so what is measured is the device's pacing, not how
    // fast a busy machine can make lines.
    let src = open(&SourceUrl::parse("gige://127.0.0.2?lines=16&calibrate=off").unwrap(), &p).unwrap();
    collect(&src, 20, |evs| lines(evs).len() >= 64);
    let t0 = Instant::now();
    let evs = collect(&src, 20, |_| t0.elapsed() >= Duration::from_secs(2));
    let rate = lines(&evs).len() as f64 / t0.elapsed().as_secs_f64();
    assert!((rate / 150.5 - 1.0).abs() < 0.15, "{rate:.0} lines/s");
}
