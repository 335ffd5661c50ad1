//! Shared by the integration tests: running the binary, a private network namespace whose only
//! interface is `lo` (nothing can leave the machine, and discovery may broadcast there safely;
//! needs root), and reading a command's printed statistics.
// Each test crate uses part of this.
#![allow(dead_code)]

pub mod servers;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The binary under test, on the GPU backend CI uses (lavapipe's Vulkan) unless told otherwise.
pub fn twinspect() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_twinspect"));
    c.env("WGPU_BACKEND", std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into()));
    c
}

/// `twinspect emulate --serial pty ARGS --link LINK`, once it has said where its terminal is.
pub fn emulator_on_pty(args: &[&str], link: &std::path::Path) -> Child {
    let mut emu = twinspect()
        .args(["emulate", "--serial", "pty"])
        .args(args)
        .arg("--link")
        .arg(link)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(emu.stdout.as_mut().unwrap()), &mut first)
        .unwrap();
    assert_eq!(first.trim(), format!("serial: {}", link.display()));
    emu
}

/// `capture` `bags` bags of the emulator (seed `seed`, 20x its line rate) into the archive at
/// `data`; what it printed. Fails the test if the capture fails.
pub fn archive_bags(data: &std::path::Path, seed: u64, bags: u32) -> String {
    let source = format!("synthetic://?seed={seed}&speed=20");
    let (ok, out, err) = run(twinspect()
        .args(["capture", "--source", &source, "--bags", &bags.to_string(), "--data"])
        .arg(data));
    assert!(ok, "{err}");
    out
}

/// Run to the end: (succeeded, stdout, stderr).
pub fn run(c: &mut Command) -> (bool, String, String) {
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A namespace named `twinspect-<tag>-<pid>`; deleted on drop, after the process started in it.
pub struct Netns {
    pub name: String,
    pub child: Option<Child>,
}

fn ok(c: &mut Command) {
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        assert!(unsafe { libc::geteuid() } == 0, "network namespaces need root (CI runs as root)");
        let name = format!("twinspect-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ok(Command::new("ip").args(["netns", "add", &name]));
        ok(Command::new("ip").args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"]));
        Netns { name, child: None }
    }

    /// A command run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Run inside the namespace; stdout and stderr together.
    pub fn run(&self, args: &[&str]) -> String {
        let o = self.cmd(args[0]).args(&args[1..]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    }

    /// Join the namespace with this thread (sockets made afterwards live there).
    pub fn enter(&self) {
        enter_netns(&self.name);
    }
}

/// Join the namespace `name` with this thread (another thread's [`Netns`] keeps owning it).
pub fn enter_netns(name: &str) {
    let f = File::open(format!("/var/run/netns/{name}")).unwrap();
    // SAFETY: setns on a namespace file we opened; it changes only this thread's namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // SIGINT stops Aravis's fake camera and our emulator alike; `ip netns exec` passes it on.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// A `name: number` line of a command's statistics (as `capture` prints them).
pub fn stat(stdout: &str, name: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no `{name}` in {stdout}"))
        .parse()
        .unwrap_or_else(|e| panic!("`{name}` in {stdout}: {e}"))
}

/// tshark capturing UDP on the namespace's `lo` into a pcapng file, stopped by [`Tshark::stop`].
pub struct Tshark {
    child: Child,
    pub pcap: std::path::PathBuf,
}

impl Tshark {
    /// Start capturing; returns once tshark has written its file header (it needs a moment).
    pub fn start(ns: &Netns, pcap: std::path::PathBuf) -> Tshark {
        let child = ns
            .cmd("tshark")
            .args(["-q", "-i", "lo", "-f", "udp", "-w"])
            .arg(&pcap)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tshark (Debian package tshark)");
        let until = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&pcap).map_or(true, |m| m.len() == 0) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        Tshark { child, pcap }
    }

    /// Stop and flush the capture.
    pub fn stop(&mut self) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }

    /// How many captured packets match a display filter.
    pub fn count(&self, filter: &str) -> usize {
        let o = Command::new("tshark").arg("-r").arg(&self.pcap).args(["-Y", filter]).output().unwrap();
        assert!(o.status.success(), "tshark: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().count()
    }
}

/// Decisions and marks written into an archive the way the desk writes them (the record's own
/// rules, then the store), by the demo operators c001 (customs) and q001 (quarantine).
pub struct Recorder {
    pub store: twinspect::files::store::Store,
    pub cfg: twinspect::domain::inspection::InspectionConfig,
}

impl Recorder {
    pub fn open(data: &std::path::Path) -> Recorder {
        Recorder {
            store: twinspect::files::store::Store::open(data).unwrap(),
            cfg: twinspect::domain::inspection::InspectionConfig::default(),
        }
    }

    fn operator(agency: &str) -> twinspect::domain::inspection::Operator {
        use twinspect::domain::inspection::{Operator, Role};
        match agency {
            "customs" => Operator { id: "c001".into(), name: "c".into(), roles: vec![Role::Customs] },
            _ => Operator { id: "q001".into(), name: "q".into(), roles: vec![Role::Quarantine] },
        }
    }

    pub fn decide(&mut self, bag: i64, agency: &str, code: &str, at_ms: u64, reason: Option<&str>) {
        let mut rec = self.store.record(bag).unwrap();
        let op = Self::operator(agency);
        let d = rec.decide(&self.cfg, agency, code, &op, at_ms, reason).unwrap().clone();
        self.store.record_decision(bag, &d).unwrap();
    }

    /// A rectangle `[x0, y0, x1, y1]` marked with the agency's first category.
    pub fn mark(&mut self, bag: i64, agency: &str, rect: [f32; 4], note: &str, at_ms: u64) {
        use twinspect::domain::inspection::Shape;
        let mut rec = self.store.record(bag).unwrap();
        let op = Self::operator(agency);
        let ag = self.cfg.agencies.iter().find(|a| a.id == agency).unwrap();
        let cat = ag.categories[0].id.clone();
        let shape = Shape::Rect { x0: rect[0], y0: rect[1], x1: rect[2], y1: rect[3] };
        let id = rec.annotate(&self.cfg, agency, &op, shape, &cat, note, at_ms).unwrap();
        let m = rec.annotations.iter().find(|a| a.id == id).unwrap().clone();
        self.store
            .save_annotation(bag, &m, twinspect::files::store::MarkChange::Added, &op.id, at_ms)
            .unwrap();
    }
}
