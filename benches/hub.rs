//! Parcels an hour through the hub on this machine (issue 20): a scanner node publishes bags of
//! the hub profile (scan into the object store, announcement, PostgreSQL row) while bots of two
//! agencies take each bag, fetch and check its scan, decide and record the decision in
//! PostgreSQL; the run ends when every bag has both agencies' decisions in PostgreSQL. Everything
//! shares this machine: nats-server (one, JetStream on file), PostgreSQL 15, the node, the bots.
//!
//! The archive is filled first (`capture`, not timed), so the node's outbox drains at the
//! broker's pace rather than the emulator's line rate; what is timed is publish and screening.
//! Needs root (PostgreSQL runs as its own user), nats-server and PostgreSQL 15 installed.
//!
//! `cargo bench --bench hub [-- BAGS [BOTS_PER_AGENCY [l1-first]]]` (default 120 bags, 2 bots an
//! agency): the same bags twice, side by side: bots screen every bag; then both agencies screen
//! automatically first (the site's `[automatic]`, L1) and bots get only the alarms (`l1-first`:
//! the other way round).
//!
//! `cargo bench --bench hub -- latency [SECONDS]`: 1, 2, 4 and 8 scanner nodes at the hub
//! profile's real line rate for SECONDS each (default 60), 2 bots an agency: how long from a
//! bag's end at the scanner to its scan checked on a station (median, p99), and the CPU time the
//! broker and the database spend, as the scanners grow.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_twinspect");

#[path = "../tests/common/servers.rs"]
mod servers;

use servers::{Nats, Postgres};

/// What a run started: its processes (killed on drop), then its servers (stopped after them).
struct Reaper(Vec<Child>, Option<(Nats, Postgres)>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.1.take();
    }
}

fn decided_by_both(records: &str) -> (usize, usize) {
    let o = Command::new(BIN).args(["bags", "--json", "--records", records]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let bags: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let both = bags.iter().filter(|b| b["decisions"].as_object().is_some_and(|d| d.len() == 2)).count();
    (bags.len(), both)
}

/// Agency decisions taken at level L1 and at L2, from the records.
fn levels(records: &str) -> (usize, usize) {
    let o = Command::new(BIN).args(["bags", "--json", "--records", records]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let mut n = (0, 0);
    for b in text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()) {
        for d in b["decisions"].as_object().into_iter().flat_map(|m| m.values()) {
            if d["level"] == "L1" { n.0 += 1 } else { n.1 += 1 }
        }
    }
    n
}

fn dir_bytes(d: &Path) -> u64 {
    std::fs::read_dir(d)
        .map(|it| {
            it.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A nats-server (JetStream on file) and a PostgreSQL 15 cluster under `dir`, on loopback;
/// their URLs. Both stop with the reaper.
fn start_servers(dir: &Path, reaper: &mut Reaper) -> (String, String) {
    let nats = Nats::start(servers::free_port(), &dir.join("js"));
    // fsync stays on: the records' durability is part of what is measured.
    let pg = Postgres::start_with(dir, true);
    let urls = (nats.url(), pg.url());
    reaper.1 = Some((nats, pg));
    urls
}

/// CPU seconds (user + system) used so far by every process whose command name is `name`.
fn cpu_seconds(name: &str) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        if &stat[open + 1..close] != name {
            continue;
        }
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let t: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
        total += t / tick;
    }
    total
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// 1, 2, 4, 8 scanners at the line rate: end-to-screen latency and the servers' load.
fn latency(seconds: f64) {
    println!("hub latency, hub-160 at its real line rate, 2 bots an agency, one nats-server, PostgreSQL 15:");
    println!(
        "  bag end to its scan checked on a station (ms); the servers' CPU over the run (s, % of one core)"
    );
    println!("  scanners  bags  median   p99   max   nats-server      PostgreSQL");
    for scanners in [1usize, 2, 4, 8] {
        let tmp = tempfile::tempdir().unwrap();
        let mut reaper = Reaper(Vec::new(), None);
        let (hub, records) = start_servers(tmp.path(), &mut reaper);
        let mut bots = Vec::new();
        for agency in ["customs", "quarantine"] {
            for i in 0..2 {
                let log = tmp.path().join(format!("{agency}{i}.log"));
                let child = Command::new(BIN)
                    .args(["bot", "--hub", &hub, "--agency", agency, "--decide", "release"])
                    .args(["--name", &format!("{agency}{i}"), "--records", &records])
                    .stdout(std::fs::File::create(&log).unwrap())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                bots.push(log);
                reaper.0.push(child);
            }
        }
        std::thread::sleep(Duration::from_secs(2));
        let (nats0, pg0) = (cpu_seconds("nats-server"), cpu_seconds("postgres"));
        let t0 = Instant::now();
        let nodes: Vec<Child> = (0..scanners)
            .map(|i| {
                Command::new(BIN)
                    .args(["--quiet", "--profile", "hub-160", "--data"])
                    .arg(tmp.path().join(format!("data{i}")))
                    .args(["node", "--source", &format!("synthetic://?seed={}", 100 + i)])
                    .args(["--seconds", &seconds.to_string(), "--hub", &hub, "--line", "L1"])
                    .args(["--node", &format!("n{i}"), "--records", &records])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut n in nodes {
            assert!(n.wait().unwrap().success());
        }
        // The stations finish what is queued.
        let mut last = (0, 0);
        while last.0 == 0 || last.1 < last.0 {
            std::thread::sleep(Duration::from_millis(250));
            last = decided_by_both(&records);
            assert!(t0.elapsed() < Duration::from_secs(1800), "{last:?}");
        }
        let wall = t0.elapsed().as_secs_f64();
        let (nats, pg) = (cpu_seconds("nats-server") - nats0, cpu_seconds("postgres") - pg0);
        drop(reaper);
        let mut ms: Vec<u64> = bots
            .iter()
            .flat_map(|log| {
                let text = std::fs::read_to_string(log).unwrap();
                text.lines()
                    .filter_map(|l| l.split("on screen ").nth(1)?.split(' ').next()?.parse().ok())
                    .collect::<Vec<u64>>()
            })
            .collect();
        ms.sort();
        println!(
            "  {scanners:>8}  {:>4}  {:>6} {:>5} {:>5}   {:>5.1} ({:>3.0} %)   {:>5.1} ({:>3.0} %)",
            last.0,
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            ms.last().copied().unwrap_or(0),
            nats,
            100.0 * nats / wall,
            pg,
            100.0 * pg / wall
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.first().map(String::as_str) == Some("latency") {
        latency(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60.0));
        return;
    }
    let bags: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(120);
    let per_agency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    eprintln!("filling an archive with {bags} bags of the hub profile (not timed)...");
    let t = Instant::now();
    let o = Command::new(BIN)
        .args(["--quiet", "--profile", "hub-160", "--data"])
        .arg(&data)
        .args(["capture", "--source", "synthetic://?seed=5&speed=50", "--bags", &bags.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let scans = dir_bytes(&data.join("scans"));
    eprintln!(
        "  {:.0} s; scans {:.1} MB in all, {:.2} MB a bag",
        t.elapsed().as_secs_f64(),
        scans as f64 / 1e6,
        scans as f64 / 1e6 / bags as f64
    );

    // The same bags twice, side by side: operators (here bots) see every bag; then both agencies
    // screen automatically first (L1), and bots see only what the aids alarm on.
    let site = tmp.path().join("l1-site.toml");
    let l1 = twinspect::domain::inspection::InspectionConfig {
        automatic: Some(twinspect::domain::automatic::AutomaticConfig {
            agencies: vec!["customs".into(), "quarantine".into()],
            dense_pixels: twinspect::domain::automatic::DENSE_PIXELS,
        }),
        ..Default::default()
    };
    std::fs::write(&site, toml::to_string(&l1).unwrap()).unwrap();
    println!(
        "hub, {bags} bags of hub-160 ({:.2} MB scans), {per_agency} bots an agency, one nats-server, PostgreSQL 15:",
        scans as f64 / 1e6 / bags as f64
    );
    // The order alternates between repetitions (`l1-first`): the second run of a pair shares the
    // disk with what the first left to write back.
    let order =
        if args.get(2).map(String::as_str) == Some("l1-first") { [true, false] } else { [false, true] };
    for automatic in order {
        let run = tmp.path().join(if automatic { "l1" } else { "operators" });
        std::fs::create_dir(&run).unwrap();
        let copied = Command::new("cp").arg("-a").arg(&data).arg(run.join("data")).status().unwrap();
        assert!(copied.success());
        // The copy (half a gigabyte) on disk before the clock starts, not written back during it.
        assert!(Command::new("sync").status().unwrap().success());
        let site_args: Vec<&str> = if automatic { vec!["--site", site.to_str().unwrap()] } else { vec![] };
        let mut reaper = Reaper(Vec::new(), None);
        let (hub, records) = start_servers(&run, &mut reaper);
        let t0 = Instant::now();
        for agency in ["customs", "quarantine"] {
            for i in 0..per_agency {
                reaper.0.push(
                    Command::new(BIN)
                        .args(["bot", "--hub", &hub, "--agency", agency, "--decide", "release"])
                        .args(["--name", &format!("{agency}{i}"), "--records", &records])
                        .args(&site_args)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                );
            }
        }
        let node = Command::new(BIN)
            .args(["--quiet", "--profile", "hub-160", "--data"])
            .arg(run.join("data"))
            .args([
                "node",
                "--source",
                "synthetic://?seed=6",
                "--seconds",
                "0.001",
                "--drain-seconds",
                "3600",
            ])
            .args(["--hub", &hub, "--line", "L1", "--node", "n1", "--records", &records])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = node.wait_with_output().unwrap();
        let published = t0.elapsed();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&format!("published: {bags}")), "{said}");
        let mut last = (0, 0);
        while last.1 < bags {
            std::thread::sleep(Duration::from_millis(250));
            last = decided_by_both(&records);
            assert!(t0.elapsed() < Duration::from_secs(1800), "{last:?} of {bags}");
        }
        let all = t0.elapsed();
        let per_hour = |d: Duration| bags as f64 * 3600.0 / d.as_secs_f64();
        let to_operators = if automatic {
            let (l1, l2) = levels(&records);
            format!("L1 cleared {l1} agency decisions, {l2} went to the bots")
        } else {
            "every bag to the bots".into()
        };
        println!("  {}:", if automatic { "L1 first (both agencies)" } else { "operators only" });
        println!(
            "    published (scan + announcement + PostgreSQL row): {:.1} s, {:.0} bags an hour",
            published.as_secs_f64(),
            per_hour(published)
        );
        println!(
            "    decided by both agencies and recorded:            {:.1} s, {:.0} bags an hour ({to_operators})",
            all.as_secs_f64(),
            per_hour(all)
        );
    }
}
