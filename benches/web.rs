//! The opening bench's tiles (issue 21): a 2048-channel x 2000-line bag's image as a Deep Zoom
//! pyramid of 256 x 256 PNG tiles, made and served.
//!
//! 1. In process (criterion): the pyramid rendered (the GPU pipeline headless, and its CPU twin),
//!    one tile encoded, and the whole pyramid written as PNG tiles; the peer in the same run is
//!    libvips's `vips dzsave` making the same pyramid of PNG tiles from the same rendered image
//!    (Debian's libvips-tools; said and skipped when absent).
//! 2. Served: `twinspect web` (the release binary) over an archive holding that bag, 20 clients
//!    each on its own keep-alive connection asking for tiles at random across the pyramid's
//!    levels for a fixed time: latency median and p99, tiles a second. The first view (the
//!    descriptor and every tile of the level that fits a 1280 x 800 tablet, six connections as a
//!    browser opens) is timed on a fresh server: it includes reading the bag and rendering it.
//!    The peer in the same run: nginx serving `vips dzsave`'s tiles as static files (Debian's
//!    nginx; skipped when absent), the floor for serving bytes that already exist.
//! 3. The first view in Debian's Chromium (when `npm ci --prefix tests/e2e` has been run and /usr/bin/chromium
//!    exists): `tests/e2e/first_view.js` logs in and opens the bag, from navigation to the last
//!    tile of the first view.
//!
//! `cargo bench --bench web` (20 clients for 10 s each, or WEB_BENCH_SECONDS; set
//! WGPU_BACKEND=vulkan on a machine without a GPU).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use twinspect::desk::archiver::read_bag;
use twinspect::domain::profile::ScannerProfile;
use twinspect::domain::view::Preset;
use twinspect::files::store::Store;
use twinspect::web::tiles::{Pyramid, Renderer, TILE};

const BIN: &str = env!("CARGO_BIN_EXE_twinspect");
const CHANNELS: usize = 2048;
const LINES: usize = 2000;
const CLIENTS: usize = 20;
/// The peer's PNG settings, as ours: fastest deflate, the Sub filter.
const PEER_PNG: &str = ".png[compression=1,filter=sub]";

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn quantiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)])
}

/// One keep-alive HTTP/1.1 connection (what the benchmark needs of a client, no more).
struct Conn {
    r: BufReader<TcpStream>,
    host: String,
    reconnects: usize,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Conn {
    fn new(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        Conn { r: BufReader::new(s), host: addr.to_owned(), reconnects: 0 }
    }

    fn ask(&mut self, method: &str, path: &str, cookie: &str, form: Option<&str>) -> Answer {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if !cookie.is_empty() {
            req += &format!("Cookie: {cookie}\r\n");
        }
        if let Some(f) = form {
            req += &format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{f}",
                f.len()
            );
        } else {
            req += "\r\n";
        }
        let mut line = String::new();
        // A server may close a keep-alive connection between requests: asked again once on a
        // new connection, as browsers do (counted).
        for again in [false, true] {
            if again {
                self.reconnects += 1;
                let s = TcpStream::connect(&self.host).unwrap();
                s.set_nodelay(true).unwrap();
                self.r = BufReader::new(s);
            }
            let sent = self.r.get_mut().write_all(req.as_bytes());
            if sent.is_ok() && self.r.read_line(&mut line).is_ok_and(|n| n > 0) {
                break;
            }
        }
        let status =
            line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.r.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').unwrap();
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        let mut a = Answer { status, headers, body: Vec::new() };
        assert!(a.header("transfer-encoding").is_none(), "{path}: chunked answers are not read here");
        let len: usize = a.header("content-length").map_or(0, |v| v.parse().unwrap());
        a.body = vec![0; len];
        self.r.read_exact(&mut a.body).unwrap();
        a
    }
}

fn cookie_of(a: &Answer, name: &str) -> String {
    a.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.split(';').next().filter(|c| c.starts_with(&format!("{name}="))))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// Logged in as the demonstration customs officer: the session cookie.
fn login(addr: &str) -> String {
    let mut c = Conn::new(addr);
    let page = c.ask("GET", "/login", "", None);
    let pre = cookie_of(&page, "twinspect_login");
    let html = String::from_utf8(page.body.clone()).unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let a = c.ask("POST", "/login", &pre, Some(&format!("csrf={csrf}&id=c001&pin=1111&agency=customs")));
    assert_eq!(a.status, 303, "login");
    cookie_of(&a, "twinspect_session")
}

/// `twinspect web` over `data`, and its address.
fn start_web(data: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["--profile", "hub-160", "--data"])
        .arg(data)
        .args(["web", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().trim_start_matches("listening on http://").trim_end_matches('/').to_owned();
    (child, addr)
}

/// Every tile of a `w` x `h` image's pyramid: (level, col, row).
fn all_tiles(w: usize, h: usize) -> Vec<(usize, usize, usize)> {
    let max = (w.max(h) as f64).log2().ceil() as usize;
    let mut v = Vec::new();
    for level in 0..=max {
        let s = 1usize << (max - level);
        let (lw, lh) = (w.div_ceil(s), h.div_ceil(s));
        for row in 0..lh.div_ceil(TILE) {
            for col in 0..lw.div_ceil(TILE) {
                v.push((level, col, row));
            }
        }
    }
    v
}

/// The level OpenSeadragon shows a `w` x `h` image at in a 1280 x 800 viewer, and its tiles.
fn first_view(w: usize, h: usize) -> (usize, Vec<(usize, usize)>) {
    let max = (w.max(h) as f64).log2().ceil() as usize;
    let mut level = max;
    while level > 0 && (w.div_ceil(1 << (max - level)) > 1280 || h.div_ceil(1 << (max - level)) > 800) {
        level -= 1;
    }
    // The level just above the fit is what a sharp first view asks for.
    let level = (level + 1).min(max);
    let s = 1usize << (max - level);
    let (lw, lh) = (w.div_ceil(s), h.div_ceil(s));
    let tiles = (0..lh.div_ceil(TILE)).flat_map(|r| (0..lw.div_ceil(TILE)).map(move |c| (c, r))).collect();
    (level, tiles)
}

/// 20 clients asking for random tiles of `tiles` for `secs`: latencies (ms), tiles served.
fn hammer(
    addr: &str,
    cookie: &str,
    path: impl Fn(usize, usize, usize) -> String + Sync,
    secs: u64,
) -> (Vec<f64>, usize) {
    let tiles = all_tiles(CHANNELS, LINES);
    let path = &path;
    let tiles = &tiles;
    std::thread::scope(|s| {
        let hands: Vec<_> = (0..CLIENTS)
            .map(|k| {
                s.spawn(move || {
                    let mut c = Conn::new(addr);
                    let mut lat = Vec::new();
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (k as u64 + 1);
                    let end = Instant::now() + Duration::from_secs(secs);
                    while Instant::now() < end {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let (l, col, row) = tiles[(x % tiles.len() as u64) as usize];
                        let t = Instant::now();
                        let a = c.ask("GET", &path(l, col, row), cookie, None);
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        assert_eq!(a.status, 200, "tile {l}/{col}_{row}");
                        assert!(a.body.starts_with(b"\x89PNG"), "a PNG");
                    }
                    (lat, c.reconnects)
                })
            })
            .collect();
        let mut all = (Vec::new(), 0);
        for h in hands {
            let (lat, again) = h.join().unwrap();
            all.0.extend(lat);
            all.1 += again;
        }
        all
    })
}

/// The first view on a fresh server: descriptor, then the view's tiles over six connections.
fn first_view_ms(addr: &str, cookie: &str) -> (f64, usize, usize) {
    let (level, tiles) = first_view(CHANNELS, LINES);
    let t = Instant::now();
    let dzi = Conn::new(addr).ask("GET", "/bag/1/dzi/standard.dzi", cookie, None);
    assert_eq!(dzi.status, 200);
    let tiles = Arc::new(tiles);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..6 {
            let (tiles, next) = (tiles.clone(), next.clone());
            s.spawn(move || {
                let mut c = Conn::new(addr);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(col, row)) = tiles.get(i) else { break };
                    let a = c.ask(
                        "GET",
                        &format!("/bag/1/dzi/standard_files/{level}/{col}_{row}.png"),
                        cookie,
                        None,
                    );
                    assert_eq!(a.status, 200);
                }
            });
        }
    });
    (t.elapsed().as_secs_f64() * 1e3, level, tiles.len())
}

/// nginx, and the folder of its settings (removed after it).
struct Nginx(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Nginx {
    fn drop(&mut self) {
        // The master stops its workers on SIGTERM (a SIGKILL would leave them running).
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

/// nginx serving `root` on a free loopback port (one worker per core, as shipped).
fn nginx(root: &Path) -> (Nginx, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = dir.path().join("nginx.conf");
    let d = dir.path().display();
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes auto; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{ access_log off; sendfile on; keepalive_requests 100000;\n\
               client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
               types {{ image/png png; }}\n\
               server {{ listen 127.0.0.1:{port}; root {}; }} }}\n",
            root.display()
        ),
    )
    .unwrap();
    let child = Command::new("nginx")
        .args(["-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if TcpStream::connect(&addr).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (Nginx(child, dir), addr)
}

fn report(what: &str, (lat, again): (Vec<f64>, usize), secs: u64) {
    let n = lat.len();
    let (med, p99) = quantiles(lat);
    println!(
        "{what}: {CLIENTS} clients, {n} tiles in {secs} s ({:.0} a second): median {med:.2} ms, p99 {p99:.2} ms; {again} connections closed by the server",
        n as f64 / secs as f64
    );
}

fn main() {
    // Not an argument: criterion takes those as its filter.
    let secs: u64 = std::env::var("WEB_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut profile = ScannerProfile::load("hub-160").unwrap();
    profile.channels = CHANNELS as u32;
    let (data, id) = common::archived_bag(&profile, LINES);
    assert_eq!(id, 1, "the pages ask for bag 1");
    let bag = read_bag(&Store::open_read(data.path()).unwrap(), 1, &profile.name).unwrap();

    // 1. In process.
    let gpu = Renderer::new(profile.clone(), false);
    let cpu = Renderer::new(profile.clone(), true);
    println!(
        "tiles of a {CHANNELS}x{LINES} bag; GPU renderer: {}",
        if gpu.on_gpu() { "yes" } else { "none" }
    );
    let pyramid = gpu.pyramid(&bag, Preset::Standard).unwrap();
    let (w, h) = (pyramid.width(), pyramid.height());
    let all = all_tiles(w, h);
    let write_all = |p: &Pyramid, out: &Path| {
        for &(l, c, r) in &all {
            let dir = out.join(l.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{c}_{r}.png")), p.tile_png(l, c, r).unwrap()).unwrap();
        }
    };
    // The peer's input: the same rendered image, in libvips's own format (no decoding timed).
    let vips = has("vips");
    let scratch = tempfile::tempdir().unwrap();
    let png = scratch.path().join("bag.png");
    let full = &pyramid.levels[pyramid.max_level()];
    image::save_buffer(&png, &full.rgba, w as u32, h as u32, image::ExtendedColorType::Rgba8).unwrap();
    let v = scratch.path().join("bag.v");
    if vips {
        let ok = Command::new("vips").arg("copy").arg(&png).arg(&v).status().unwrap();
        assert!(ok.success());
    } else {
        println!("peer: vips is not installed (apt install libvips-tools): skipped");
    }
    let mut c =
        Criterion::default().configure_from_args().sample_size(10).measurement_time(Duration::from_secs(8));
    {
        let mut g = c.benchmark_group("web tiles");
        if gpu.on_gpu() {
            g.bench_function("pyramid rendered, GPU", |b| {
                b.iter(|| gpu.pyramid(&bag, Preset::Standard).unwrap())
            });
        }
        g.bench_function("pyramid rendered, CPU twin", |b| {
            b.iter(|| cpu.pyramid(&bag, Preset::Standard).unwrap())
        });
        let m = pyramid.max_level();
        g.bench_function("one 256x256 tile encoded as PNG", |b| {
            b.iter(|| pyramid.tile_png(m, 3, 3).unwrap())
        });
        g.bench_function("all tiles written as PNG (ours)", |b| {
            b.iter(|| {
                let out = scratch.path().join("ours");
                let _ = std::fs::remove_dir_all(&out);
                write_all(&pyramid, &out);
            })
        });
        if vips {
            g.bench_function("all tiles written as PNG (vips dzsave, peer)", |b| {
                b.iter(|| {
                    let out = scratch.path().join("peer");
                    let _ = std::fs::remove_dir_all(scratch.path().join("peer_files"));
                    let ok = Command::new("vips")
                        .arg("dzsave")
                        .arg(&v)
                        .arg(&out)
                        .args([
                            "--tile-size",
                            "256",
                            "--overlap",
                            "0",
                            "--suffix",
                            PEER_PNG,
                            "--depth",
                            "onepixel",
                        ])
                        .status()
                        .unwrap();
                    assert!(ok.success());
                })
            });
        }
        g.finish();
    }
    c.final_summary();
    let size = |d: &Path| -> u64 {
        let mut n = 0;
        for l in std::fs::read_dir(d).into_iter().flatten().flatten() {
            for t in std::fs::read_dir(l.path()).into_iter().flatten().flatten() {
                n += t.metadata().map_or(0, |m| m.len());
            }
        }
        n
    };
    println!(
        "all tiles' bytes: ours {} kB, vips dzsave {} kB",
        size(&scratch.path().join("ours")) / 1000,
        size(&scratch.path().join("peer_files")) / 1000
    );

    // 2. Served.
    let (mut web, addr) = start_web(data.path());
    let cookie = login(&addr);
    let (ms, level, n) = first_view_ms(&addr, &cookie);
    println!("first view on a fresh server (bag read and rendered): level {level}, {n} tiles, {ms:.0} ms");
    let (ms2, _, _) = first_view_ms(&addr, &cookie);
    println!("the same view again (pyramid cached): {ms2:.1} ms");
    let lat = hammer(&addr, &cookie, |l, c, r| format!("/bag/1/dzi/standard_files/{l}/{c}_{r}.png"), secs);
    report("twinspect web, random tiles", lat, secs);
    let _ = web.kill();
    let _ = web.wait();
    if vips && has("nginx") {
        let root = scratch.path().join("static");
        std::fs::create_dir_all(&root).unwrap();
        let ok = Command::new("vips")
            .arg("dzsave")
            .arg(&v)
            .arg(root.join("bag"))
            .args(["--tile-size", "256", "--overlap", "0", "--suffix", PEER_PNG, "--depth", "onepixel"])
            .status()
            .unwrap();
        assert!(ok.success());
        let (_nginx, addr) = nginx(&root);
        let lat = hammer(&addr, "", |l, c, r| format!("/bag_files/{l}/{c}_{r}.png"), secs);
        report("nginx, vips dzsave's tiles as files (peer)", lat, secs);
    } else {
        println!("peer: nginx or vips is not installed (apt install nginx libvips-tools): skipped");
    }

    // 3. In the browser.
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/first_view.js");
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/node_modules/playwright-core");
    if modules.exists() && Path::new("/usr/bin/chromium").exists() {
        let (mut web, addr) = start_web(data.path());
        let out = Command::new("node").arg(&js).arg(format!("http://{addr}")).output().unwrap();
        let _ = web.kill();
        let _ = web.wait();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        print!("Chromium, fresh server: {}", String::from_utf8_lossy(&out.stdout));
    } else {
        println!(
            "browser: run `npm ci --prefix tests/e2e` and install chromium for the first view in Chromium: skipped"
        );
    }
}
