//! Our GigE Vision client against a peer no one here wrote: Aravis's fake camera
//! (`arv-fake-gv-camera-0.8`, Debian `aravis-tools`), each test in its own network namespace whose
//! only interface is `lo` (nothing can leave the machine; discovery may broadcast there safely).
//! Needs root (network namespaces); `.ci/test` installs the camera.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use twinspect::source::gige::Gvcp;
use twinspect::source::gige::gvcp::{XmlUrl, reg};
use twinspect::source::gige::gvsp::{self, Blocks};

mod common;

/// A fake camera in a private network namespace; the calling thread joins the namespace
/// (sockets it creates live there). Both go away on drop.
struct FakeCamera {
    ns: common::Netns,
}

impl FakeCamera {
    fn start(tag: &str, extra: &[&str]) -> FakeCamera {
        let mut ns = common::Netns::new(tag);
        let camera = ns
            .cmd("arv-fake-gv-camera-0.8")
            .args(["-i", "127.0.0.1", "-s", "XRAY0001"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("arv-fake-gv-camera-0.8 (Debian package aravis-tools)");
        ns.child = Some(camera);
        ns.enter();
        FakeCamera { ns }
    }

    /// A client once the camera answers.
    fn client(&self) -> Gvcp {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let mut c = Gvcp::new(Ipv4Addr::LOCALHOST).unwrap();
            c.timeout = Duration::from_millis(200);
            c.tries = 1;
            if c.discover().is_ok() {
                c.tries = 5;
                return c;
            }
            assert!(Instant::now() < until, "the fake camera did not answer in 10 s");
        }
    }
}

/// Where the fake camera's XML puts a register (a minimal look-up for the test; the product's
/// GenICam layer comes with streaming).
fn xml_address(xml: &str, name: &str) -> u32 {
    let at = xml.find(&format!("Name=\"{name}\"")).unwrap_or_else(|| panic!("{name} not in the XML"));
    let rest = &xml[at..];
    let a = rest.find("<Address>").unwrap() + "<Address>".len();
    let b = rest[a..].find("</Address>").unwrap();
    u32::from_str_radix(rest[a..a + b].trim().trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn discovery_xml_and_registers_of_the_aravis_fake_camera() {
    let cam = FakeCamera::start("ctl", &[]);
    let mut c = cam.client();
    let info = c.discover().unwrap();
    assert_eq!((info.manufacturer.as_str(), info.model.as_str()), ("Aravis", "Fake"));
    assert_eq!(info.serial, "XRAY0001");
    assert_eq!(info.ip, Ipv4Addr::LOCALHOST);
    let (url, xml) = c.xml().unwrap();
    assert_eq!(url, XmlUrl::Local { name: "arv-fake-camera.xml".into(), addr: 0x10000, len: 0x3e67 });
    assert_eq!(xml.len(), 0x3e67);
    let xml = String::from_utf8(xml).unwrap();
    assert!(xml.starts_with("<?xml"), "{}", &xml[..40]);
    assert!(xml.trim_end().ends_with("</RegisterDescription>"), "the whole file, not a prefix");
    // The same file as Aravis's own client reads.
    let peer = cam.ns.run(&["arv-tool-0.8", "-a", "127.0.0.1", "genicam"]);
    assert!(peer.contains(xml.lines().nth(3).unwrap().trim()));

    assert_eq!(c.read_reg(reg::STREAM_CHANNELS).unwrap(), 1);
    assert_eq!(c.read_reg(reg::HEARTBEAT_TIMEOUT).unwrap(), 3000);
    c.take_control().unwrap();
    assert_eq!(c.heartbeat().unwrap(), reg::CCP_CONTROL);
    // Feature registers found through the XML, written and read back.
    let width = xml_address(&xml, "WidthRegister");
    c.write_reg(width, 640).unwrap();
    assert_eq!(c.read_reg(width).unwrap(), 640);
    c.write_mem(reg::SCPD0, &1234u32.to_be_bytes()).unwrap();
    assert_eq!(c.read_mem(reg::SCPD0, 4).unwrap(), 1234u32.to_be_bytes());
    // A second host is refused while we hold control (the fake camera ignores it: a timeout).
    let mut other = Gvcp::new(Ipv4Addr::LOCALHOST).unwrap();
    other.timeout = Duration::from_millis(150);
    other.tries = 1;
    assert!(other.write_reg(width, 320).is_err());
    assert_eq!(c.read_reg(width).unwrap(), 640);
    c.release().unwrap();
}

/// Stream Mono16 blocks: every complete block equals the camera's ramp, ids run on across the
/// 65535 -> 1 wrap, and with the camera dropping 1 % of packets (`-r 10`) the losses are counted
/// and those blocks reported incomplete, never passed as whole.
fn stream(extra: &[&str], secs: f64) -> (Vec<gvsp::Block>, gvsp::BlockStats) {
    let cam = FakeCamera::start(if extra.is_empty() { "gvsp" } else { "loss" }, extra);
    let mut c = cam.client();
    let (_, xml) = c.xml().unwrap();
    let xml = String::from_utf8(xml).unwrap();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let port = rx.local_addr().unwrap().port();
    c.take_control().unwrap();
    c.write_reg(xml_address(&xml, "WidthRegister"), 256).unwrap();
    c.write_reg(xml_address(&xml, "HeightRegister"), 16).unwrap();
    c.write_reg(xml_address(&xml, "PixelFormatRegister"), gvsp::MONO16).unwrap();
    c.write_reg(xml_address(&xml, "AcquisitionFramePeriodRegister"), 5000).unwrap(); // 200 Hz
    let scps = c.read_reg(reg::SCPS0).unwrap() & 0xFFFF;
    c.write_reg(reg::SCDA0, u32::from(Ipv4Addr::LOCALHOST)).unwrap();
    c.write_reg(reg::SCP0, u32::from(port)).unwrap();
    c.write_reg(xml_address(&xml, "AcquisitionModeRegister"), 1).unwrap();
    c.write_reg(xml_address(&xml, "AcquisitionCommandRegister"), 1).unwrap(); // AcquisitionStart
    let mut blocks = Blocks::new(scps as usize - gvsp::STANDARD_OVERHEAD);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    let t0 = Instant::now();
    let mut beat = Instant::now();
    while t0.elapsed().as_secs_f64() < secs {
        if let Ok(n) = rx.recv(&mut buf) {
            out.extend(blocks.push(&buf[..n]));
        }
        if beat.elapsed() > Duration::from_millis(500) {
            c.heartbeat().unwrap();
            beat = Instant::now();
        }
    }
    c.write_reg(xml_address(&xml, "AcquisitionCommandRegister"), 0).unwrap(); // AcquisitionStop
    c.write_reg(reg::SCP0, 0).unwrap();
    c.release().unwrap();
    out.extend(blocks.flush());
    (out, blocks.stats)
}

fn ramp_ok(b: &gvsp::Block) -> bool {
    // v = (256 (x + y + frame)) mod 65535, little-endian; the frame is the wire block id.
    let frame = (b.id - 1) % 65535 + 1;
    let w = b.leader.width as usize;
    b.data.chunks_exact(2).enumerate().all(|(i, px)| {
        let (x, y) = ((i % w) as u64, (i / w) as u64);
        u16::from_le_bytes([px[0], px[1]]) as u64 == (256 * (x + y + frame)) % 65535
    })
}

#[test]
fn mono16_blocks_equal_the_fake_cameras_ramp_across_the_block_id_wrap() {
    let (blocks, stats) = stream(&[], 3.0);
    let complete: Vec<&gvsp::Block> = blocks.iter().filter(|b| b.complete()).collect();
    assert!(complete.len() > 200, "{} blocks, {stats:?}", complete.len());
    for b in &complete {
        assert_eq!((b.leader.width, b.leader.height, b.leader.pixel_format), (256, 16, gvsp::MONO16));
        assert!(ramp_ok(b), "block {} is not the camera's ramp", b.id);
    }
    // The camera starts at 65400: it wraps to 1 after 135 blocks; our ids run on.
    assert!(complete.iter().any(|b| b.id <= 65535) && complete.iter().any(|b| b.id > 65535), "no wrap seen");
    assert!(complete.windows(2).all(|w| w[1].id > w[0].id), "ids increase across the wrap");
    // Without loss nothing is incomplete but the block in flight when acquisition stopped.
    let last = blocks.iter().map(|b| b.id).max().unwrap();
    assert!(blocks.iter().all(|b| b.complete() || b.id == last), "{stats:?}");
}

#[test]
fn loss_at_the_camera_is_counted_and_incomplete_blocks_are_never_whole() {
    let (blocks, stats) = stream(&["-r", "10"], 3.0);
    let incomplete: Vec<&gvsp::Block> = blocks.iter().filter(|b| !b.complete()).collect();
    assert!(!incomplete.is_empty() && stats.blocks_incomplete > 0, "{stats:?}");
    for b in &incomplete {
        assert!(!b.missing_packets.is_empty() || b.trailer_height.is_none());
    }
    for b in blocks.iter().filter(|b| b.complete()) {
        assert!(ramp_ok(b), "a complete block is exact");
    }
}
