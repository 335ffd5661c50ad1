//! The stream commands: `emulate` (serve the synthetic scanner over a serial link), `capture`
//! (record bags from any source URL, headless, and print link statistics) and `genicam` (a GigE
//! Vision device's features: list, set).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::assemble::{Assembler, BagSpan, Segmenter};
use crate::capture::{BagCollector, CapturedBag};
use crate::domain::profile::ScannerProfile;
use crate::emulator::{EmulatorOptions, Impairments, SerialTarget, link_bytes_per_second, serve_serial};
use crate::files::store::{BagStart, Store};
use crate::source::serial::SerialOptions;
use crate::source::url::SourceUrl;
use crate::source::{SourceEvent, SourceStats};

/// Options of `twinspect emulate`.
#[derive(clap::Args, Debug)]
pub struct EmulateArgs {
    /// `pty` to create a pseudo-terminal (its path is printed), or a device URL such as
    /// `serial:///dev/ttyUSB1?baud=3000000`.
    #[arg(long, required_unless_present = "gige")]
    pub serial: Option<String>,
    /// Also (or instead) be a GigE Vision device on this address (GVCP port 3956), e.g. 127.0.0.2.
    #[arg(long)]
    pub gige: Option<std::net::Ipv4Addr>,
    /// Probability that a GigE stream packet's first transmission is lost (resends recover it).
    #[arg(long, default_value_t = 0.0)]
    pub gige_loss: f64,
    /// Probability that a GigE stream packet arrives after the one that follows it.
    #[arg(long, default_value_t = 0.0)]
    pub gige_reorder: f64,
    /// With `pty`: keep a symlink here pointing at the terminal (it follows the terminal across
    /// injected disconnects, like a USB adapter's stable name).
    #[arg(long)]
    pub link: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Line rate relative to the profile's.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Empty belt between bags (mm).
    #[arg(long, default_value_t = 250.0)]
    pub gap_mm: f64,
    /// Tube output drift (relative amplitude of a one-minute sine).
    #[arg(long, default_value_t = 0.0)]
    pub drift: f64,
    /// Probability per frame of dropping it.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Probability per frame of flipping one bit in it.
    #[arg(long, default_value_t = 0.0)]
    pub corrupt: f64,
    /// Probability per frame of a burst of 1-64 noise bytes before it.
    #[arg(long, default_value_t = 0.0)]
    pub noise: f64,
    /// Drop the link every this many seconds (serial: the pty disappears; GigE: the device
    /// neither answers nor streams, like a pulled cable)...
    #[arg(long)]
    pub disconnect_every: Option<f64>,
    /// ...for this many seconds.
    #[arg(long, default_value_t = 1.0)]
    pub disconnect_for: f64,
    /// Open the tunnel's interlock after this many seconds (the tube off, the belt stopped).
    #[arg(long)]
    pub interlock_after: Option<f64>,
    /// Fault the X-ray generator after this many seconds (a FAULT frame, the tube off).
    #[arg(long)]
    pub fault_after: Option<f64>,
    /// Do not send bag start/end (the workstation must find bags in the image).
    #[arg(long)]
    pub no_bag_signals: bool,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// What to scan: `synthetic://` (the physics-based bags, the default) or
    /// `replay://FILE.tsrec` (a recording's lines, bags and tags, from the start again at its
    /// end; its own calibration lines answer calibration requests; `speed=` sets --speed).
    #[arg(long)]
    pub source: Option<String>,
}

pub fn emulate(profile: &ScannerProfile, a: EmulateArgs) -> anyhow::Result<()> {
    for (name, p) in [
        ("--loss", a.loss),
        ("--corrupt", a.corrupt),
        ("--noise", a.noise),
        ("--gige-loss", a.gige_loss),
        ("--gige-reorder", a.gige_reorder),
    ] {
        if !(0.0..=1.0).contains(&p) {
            bail!("{name} {p}: a probability is between 0 and 1");
        }
    }
    if !(a.speed > 0.0 && a.speed <= 100.0) {
        bail!("--speed {}: between 0 and 100 times the profile's line rate", a.speed);
    }
    let positive = |s: f64, name: &str| -> anyhow::Result<Duration> {
        if !(s.is_finite() && s > 0.0 && s < 1e6) {
            bail!("{name} {s}: a number of seconds above 0");
        }
        Ok(Duration::from_secs_f64(s))
    };
    let mut speed = a.speed;
    let replay = match a.source.as_deref().map(SourceUrl::parse).transpose()? {
        None => None,
        Some(u) if u.scheme == "synthetic" => None,
        Some(u) if u.scheme == "replay" => {
            u.only_keys(&["speed"])?;
            if let Some(s) = u.get_str("speed") {
                speed = s.parse().ok().filter(|v: &f64| *v > 0.0 && *v <= 100.0).with_context(|| {
                    format!("speed={s}: the emulator sends at the profile's line rate times 0 to 100")
                })?;
            }
            let p = PathBuf::from(&u.location);
            // Refused now, with the reason, rather than by a thread later.
            crate::emulator::Script::from_recording(profile, &p)?;
            Some(p)
        }
        Some(u) => bail!(
            "--source {}://: the emulator scans synthetic:// bags or serves a replay:// recording",
            u.scheme
        ),
    };
    let impair = Impairments {
        loss: a.loss,
        corrupt: a.corrupt,
        noise: a.noise,
        disconnect_every: a.disconnect_every.map(|s| positive(s, "--disconnect-every")).transpose()?,
        disconnect_for: positive(a.disconnect_for, "--disconnect-for")?,
        seed: a.seed,
    };
    let gige = match a.gige {
        Some(ip) => {
            let dev = crate::emulator::gige::serve(
                profile,
                crate::emulator::gige::GigeOptions {
                    ip,
                    seed: a.seed,
                    speed,
                    gap_mm: a.gap_mm,
                    loss: a.gige_loss,
                    replay: replay.clone(),
                    reorder: a.gige_reorder,
                    disconnect_every: impair.disconnect_every.map(|d| d.as_secs_f64()),
                    disconnect_for: impair.disconnect_for.as_secs_f64(),
                    ..Default::default()
                },
            )?;
            println!("gige: {} (GVCP; XML in device memory; low/high as alternating Mono16 rows)", dev.addr);
            Some(dev)
        }
        None => None,
    };
    let gige_stats = |dev: &crate::emulator::gige::GigeDevice| {
        let s = &dev.stats;
        format!(
            "gige: {} commands, {} blocks, {} packets ({} dropped, {} reordered, {} resend requests, {} resent, {} unavailable), {} heartbeat expiries, {} disconnects",
            s.commands.load(Relaxed),
            s.blocks.load(Relaxed),
            s.packets.load(Relaxed),
            s.packets_dropped.load(Relaxed),
            s.packets_reordered.load(Relaxed),
            s.resend_requests.load(Relaxed),
            s.packets_resent.load(Relaxed),
            s.packets_unavailable.load(Relaxed),
            s.heartbeat_expired.load(Relaxed),
            s.disconnects.load(Relaxed),
        )
    };
    let Some(serial) = a.serial.as_deref() else {
        let dev = gige.expect("clap requires --serial or --gige");
        return run_for(a.seconds, || gige_stats(&dev));
    };
    let target = if serial == "pty" {
        SerialTarget::Pty { link: a.link.clone() }
    } else {
        if a.link.is_some() {
            bail!("--link goes with --serial pty");
        }
        let u = SourceUrl::parse(serial)?;
        if u.scheme != "serial" {
            bail!("--serial takes `pty` or a serial:// URL, not {}://", u.scheme);
        }
        SerialTarget::Device(SerialOptions::from_url(&u)?)
    };
    let baud = match &target {
        SerialTarget::Device(o) => o.baud,
        SerialTarget::Pty { .. } => 3_000_000,
    };
    let opts = EmulatorOptions {
        seed: a.seed,
        speed,
        gap_mm: a.gap_mm,
        drift: a.drift,
        signal_bags: !a.no_bag_signals,
        impair,
        replay,
        interlock_after: a.interlock_after.map(|s| positive(s, "--interlock-after")).transpose()?,
        fault_after: a.fault_after.map(|s| positive(s, "--fault-after")).transpose()?,
    };
    let emu = serve_serial(profile, opts, target)?;
    let need = link_bytes_per_second(profile, speed);
    println!("serial: {}", emu.path());
    println!(
        "scanner: {} ({} channels, {:.0} lines/s); the link needs {:.2} MB/s = {:.1} Mbaud at 10 bits a byte{}",
        profile.name,
        profile.channels,
        profile.line_rate_hz * speed,
        need / 1e6,
        need * 10.0 / 1e6,
        if need * 10.0 > f64::from(baud) {
            format!(" (more than {baud} baud: a real line at that rate would fall behind; a pty does not)")
        } else {
            String::new()
        }
    );
    run_for(a.seconds, || {
        let s = &emu.stats;
        let serial = format!(
            "serial: {} lines, {} bags, {} frames ({} dropped, {} corrupted, {} noise bursts, {} unsent), {} disconnects, {} commands",
            s.lines.load(Relaxed),
            s.bags.load(Relaxed),
            s.frames.load(Relaxed),
            s.frames_dropped.load(Relaxed),
            s.frames_corrupted.load(Relaxed),
            s.noise_bursts.load(Relaxed),
            s.unsent.load(Relaxed),
            s.disconnects.load(Relaxed),
            s.commands.load(Relaxed),
        );
        // Both links at once: both lines of statistics.
        match &gige {
            Some(dev) => format!("{serial}; {}", gige_stats(dev)),
            None => serial,
        }
    })
}

/// Print `stats()` every 5 s (and at the end) until `seconds` have passed, or forever.
fn run_for(seconds: Option<f64>, stats: impl Fn() -> String) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut last = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let done = seconds.is_some_and(|s| t0.elapsed().as_secs_f64() >= s);
        if done || last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            eprintln!("{:.0} s: {}", t0.elapsed().as_secs_f64(), stats());
        }
        if done {
            return Ok(());
        }
    }
}

/// Options of `twinspect capture`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("until").required(true).multiple(true).args(["bags", "seconds"])))]
pub struct CaptureArgs {
    /// Source URL: synthetic://?seed=7, serial:///dev/ttyUSB0?baud=3000000, ...
    #[arg(long)]
    pub source: String,
    /// Stop after this many complete bags.
    #[arg(long)]
    pub bags: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Also write loose files: bag-NNNNNN.tiff (two pages, low and high), its .calib.json and
    /// .json. Without --data, only these (nothing is archived).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write what was received, as it arrived (all kinds, no calibration, no gaps filled):
    /// from a GigE Vision detector every block, gige-block-<id>.tiff (one 16-bit page of the
    /// block's width and height, lost packets named in its description); from other sources
    /// every line, 256 to block-NNNNNN.tiff (one 16-bit page, each row low then high samples).
    #[arg(long)]
    pub raw: bool,
    /// Also record everything the source delivers, with its timing, to FILE (.tsrec): replay it
    /// with --source replay://FILE?speed=1|4|max.
    #[arg(long)]
    pub record: Option<PathBuf>,
}

#[derive(serde::Serialize)]
struct BagMeta<'a> {
    bag: u64,
    item_id: Option<&'a str>,
    profile: &'a str,
    source: &'a str,
    lines: usize,
    channels: usize,
    /// Rows lost before they reached the workstation (placeholders, not image).
    missing_rows: &'a [usize],
    truncated: bool,
    captured_unix_ms: u64,
}

const RAW_BLOCK: usize = 256;

fn write_raw_block(dir: &Path, n: u64, block: &mut Vec<(Vec<u16>, Vec<u16>)>) -> anyhow::Result<()> {
    if block.is_empty() {
        return Ok(());
    }
    let w = block[0].0.len() * 2;
    let rows: Vec<&(Vec<u16>, Vec<u16>)> = block.iter().filter(|(lo, hi)| lo.len() + hi.len() == w).collect();
    let mut data = Vec::with_capacity(rows.len() * w);
    for (lo, hi) in &rows {
        data.extend_from_slice(lo);
        data.extend_from_slice(hi);
    }
    let path = dir.join(format!("block-{n:06}.tiff"));
    let desc = "twinspect raw lines as received; row = low samples then high samples".to_string();
    crate::files::io::write_gray16_pages(&path, &[(w, rows.len(), data, desc)])?;
    block.clear();
    Ok(())
}

/// A GigE Vision block as it arrived: one 16-bit page of the block's width and height
/// (`gige-block-<id>.tiff`), the lost packets named in the page description.
fn write_gige_block(dir: &Path, b: &crate::source::RawBlock) -> anyhow::Result<()> {
    let (w, h) = (b.width as usize, b.height as usize);
    let samples: Vec<u16> = b.data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    anyhow::ensure!(samples.len() == w * h, "block {}: {} samples for {w} x {h}", b.id, samples.len());
    let missing = if b.missing_packets.is_empty() {
        String::new()
    } else {
        format!("; packets never received (zeros): {:?}", b.missing_packets)
    };
    let desc = format!(
        "twinspect: GigE Vision block {} as received, {w} x {h}, pixel format {:#010x}{missing}",
        b.id, b.pixel_format
    );
    crate::files::io::write_gray16_pages(
        &dir.join(format!("gige-block-{:08}.tiff", b.id)),
        &[(w, h, samples, desc)],
    )?;
    Ok(())
}

pub fn capture(
    profile_name: &str,
    data: Option<&Path>,
    a: CaptureArgs,
    mode: super::progress::Mode,
) -> anyhow::Result<()> {
    capture_with(profile_name, data, a, mode, Hooks::default())
}

/// What a command built on capture (the hub's `node`) adds to its loop.
#[derive(Default)]
pub struct Hooks<'a> {
    /// Set (by a signal) to end the capture as `--seconds` would.
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
    /// Called with the archive's id of each bag once it is committed.
    pub archived: Option<&'a dyn Fn(i64)>,
    /// The archive, already opened (by a caller that needs a second connection to it).
    pub archive: Option<Store>,
}

pub fn capture_with(
    profile_name: &str,
    data: Option<&Path>,
    a: CaptureArgs,
    mode: super::progress::Mode,
    hooks: Hooks,
) -> anyhow::Result<()> {
    let mut url = SourceUrl::parse(&a.source)?;
    let profile = ScannerProfile::load(url.get_str("profile").unwrap_or(profile_name))?;
    // A GigE Vision detector's blocks are kept exactly as they arrived; other sources' lines are
    // kept as received, 256 to a file.
    let gige_blocks = a.raw && url.scheme == "gige";
    if gige_blocks {
        url.query.insert("raw".into(), "on".into());
    }
    if let Some(s) = a.seconds
        && !(s.is_finite() && s > 0.0)
    {
        bail!("--seconds {s}: a number of seconds above 0");
    }
    if a.bags == Some(0) {
        bail!("--bags 0: nothing to capture");
    }
    if a.raw && a.out.is_none() {
        bail!("--raw writes loose files: give --out DIR");
    }
    // The archive: --data, or the default data directory when there is no --out either.
    let archive_dir = match (&a.out, data) {
        (_, Some(d)) => Some(d.to_path_buf()),
        (None, None) => Some(super::archive::data_dir(None)?),
        (Some(_), None) => None,
    };
    let mut store = match hooks.archive {
        Some(s) => Some(s),
        None => archive_dir.as_deref().map(Store::open).transpose()?,
    };
    if let Some(s) = &store {
        for id in &s.recovered {
            eprintln!(
                "archive: bag {id} was left half captured when the last run stopped (crash or kill); kept, flagged partial"
            );
        }
    }
    let mut archive_ids: HashMap<u64, i64> = HashMap::new();
    let mut src = crate::source::open(&url, &profile)?;
    if let Some(r) = &a.record {
        src = crate::source::replay::record(src, r, &profile.name, profile.channels as usize)?;
    }
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let out = a.out.clone().unwrap_or_default();
    let channels = profile.channels as usize;
    let mut asm = Assembler::new(channels, profile.full_scale());
    asm.segmenter = Segmenter::for_profile(&profile, 30.0);
    let mut collector = BagCollector::new(channels, 16_384);
    let t0 = Instant::now();
    let deadline = a.seconds.map(|s| t0 + Duration::from_secs_f64(s));
    let mut written = 0u64;
    let (mut raw_block, mut raw_blocks) = (Vec::new(), 0u64);
    let mut faults_shown = 0;
    let into: Vec<String> = a
        .out
        .iter()
        .map(|o| o.display().to_string())
        .chain(archive_dir.iter().map(|d| format!("the archive at {}", d.display())))
        .collect();
    let (total, unit) = match (a.bags, a.seconds) {
        (Some(n), _) => (Some(n), "bags"),
        (None, Some(s)) => (Some(s.ceil() as u64), "s"),
        (None, None) => (None, "bags"),
    };
    let mut progress = super::progress::Progress::new(mode, total, unit);
    progress.say(&format!(
        "capturing from {} ({} channels) into {}",
        src.description,
        channels,
        into.join(" and ")
    ));
    let begin = |store: &mut Store, span: &BagSpan| {
        let start = BagStart {
            scanner_bag: span.bag,
            item_id: span.item_id.as_deref(),
            source: &src.description,
            profile: &profile.name,
            channels,
            at_ms: super::now_ms(),
        };
        store.begin_bag(&start, "capture")
    };
    let stopped = || hooks.stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    while a.bags.is_none_or(|n| written < n) && deadline.is_none_or(|d| Instant::now() < d) && !stopped() {
        let mut events = Vec::new();
        if let Ok(e) = src.events.recv_timeout(Duration::from_millis(100)) {
            events.push(e);
            events.extend(src.events.try_iter().take(8192));
        }
        // A replay going bag by bag (speed=step): nobody presses "Next bag" here, so each bag's
        // end is the step.
        if src.stats.stepping.load(std::sync::atomic::Ordering::Relaxed) {
            for e in &events {
                if matches!(e, SourceEvent::BagEnd { .. }) {
                    src.stats.next_bag();
                }
            }
        }
        if a.raw {
            for e in &events {
                if let SourceEvent::RawBlock(b) = e {
                    write_gige_block(&out, b)?;
                    raw_blocks += 1;
                }
                if let SourceEvent::Line(l) = e
                    && !gige_blocks
                {
                    raw_block.push((l.low.clone(), l.high.clone()));
                    if raw_block.len() == RAW_BLOCK {
                        write_raw_block(&out, raw_blocks, &mut raw_block)?;
                        raw_blocks += 1;
                    }
                }
            }
        }
        let batch = asm.feed(events);
        for f in asm.stats.faults.iter().skip(faults_shown) {
            progress.warn(&format!("source: {f}"));
        }
        faults_shown = asm.stats.faults.len();
        // A bag is in the archive from its first line on, so a crash leaves it flagged, not lost.
        if let Some(store) = store.as_mut() {
            for span in bags_to_begin(&batch.bags, &archive_ids, written, a.bags) {
                archive_ids.insert(span.bag, begin(store, span)?);
            }
        }
        for bag in collector.push(&batch, asm.calibration.as_ref()) {
            if a.bags.is_some_and(|n| written >= n) {
                break;
            }
            if bag.frame.lines() == 0 {
                // A scanner's bag signals with no line between them (a false trigger, or a
                // recording cut right after a bag began): nothing to keep, said so.
                let why = "the scanner ended the bag before any line";
                progress.warn(&format!(
                    "bag {} ({}): {why}; not kept",
                    bag.span.bag,
                    bag.span.item_id.as_deref().unwrap_or("-")
                ));
                if let (Some(store), Some(id)) = (store.as_mut(), archive_ids.remove(&bag.span.bag)) {
                    store.abandon_bag(id, why, super::now_ms(), "capture")?;
                }
                continue;
            }
            if let Some(dir) = &a.out {
                write_bag(dir, written, &bag, &profile, &src.description)?;
            }
            if let Some(store) = store.as_mut() {
                let id = match archive_ids.remove(&bag.span.bag) {
                    Some(id) => id,
                    None => begin(store, &bag.span)?,
                };
                let row = match store.finish_bag(
                    id,
                    &bag.frame,
                    &bag.calibration,
                    &bag.missing,
                    bag.truncated,
                    super::now_ms(),
                    "capture",
                ) {
                    Ok(row) => row,
                    Err(e) => {
                        // Flag the bags that will not be finished now, while the reason is
                        // known (a full disk usually still takes these few bytes; if not, the
                        // next start flags them).
                        let why = format!("not saved: {e}");
                        for id in std::iter::once(id).chain(archive_ids.values().copied()) {
                            let _ = store.abandon_bag(id, &why, super::now_ms(), "capture");
                        }
                        return Err(anyhow::Error::new(e).context(format!(
                            "archiving bag {id} ({written} bags archived before it are safe)"
                        )));
                    }
                };
                // Printed only once the bag is committed: the kill -9 harness counts on it.
                println!("archived bag {} sha256 {}", row.id, row.scan_sha256.as_deref().unwrap_or("-"));
                if let Some(f) = hooks.archived {
                    f(row.id);
                }
            }
            progress.say(&format!(
                "bag {} ({}): {} lines, {} missing{}",
                written,
                bag.span.item_id.as_deref().unwrap_or("no tag"),
                bag.frame.lines(),
                bag.missing.len(),
                if bag.truncated { ", truncated (longer than the limit)" } else { "" }
            ));
            written += 1;
        }
        let done = if a.bags.is_some() { written } else { t0.elapsed().as_secs() };
        let (lines, missing) = (asm.stats.lines_in, asm.stats.lines_missing);
        progress.update(done, || format!("{written} bags, {lines} lines, {missing} missing"));
    }
    progress.finish();
    if let Some(store) = store.as_mut() {
        for (_, id) in archive_ids.drain() {
            store.abandon_bag(id, "capture stopped before the bag ended", super::now_ms(), "capture")?;
        }
    }
    if a.raw && !raw_block.is_empty() {
        write_raw_block(&out, raw_blocks, &mut raw_block)?;
        raw_blocks += 1;
    }
    let st = &src.stats;
    let s = &asm.stats;
    println!("seconds: {:.1}", t0.elapsed().as_secs_f64());
    println!("lines: {}", s.lines_in);
    println!("bags: {written}");
    println!("missing lines: {}", s.lines_missing);
    println!("crc errors: {}", SourceStats::get(&st.crc_errors));
    println!("frames lost: {}", SourceStats::get(&st.frames_lost));
    println!("bytes skipped: {}", SourceStats::get(&st.bytes_skipped));
    println!("malformed frames: {}", SourceStats::get(&st.malformed));
    println!("reconnects: {}", SourceStats::get(&st.reconnects));
    println!("lines dropped (workstation too slow): {}", SourceStats::get(&st.lines_dropped));
    println!("resends requested: {}", SourceStats::get(&st.resends_requested));
    println!("resends honoured: {}", SourceStats::get(&st.resends_honoured));
    if a.raw {
        println!("raw blocks: {raw_blocks}");
    }
    if let Some(n) = a.bags
        && written < n
    {
        bail!("only {written} of {n} bags in {:.1} s", t0.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The bags of a batch (`spans`, in the order the scanner sent them) that enter the archive
/// now: each one not in it yet (`archived`), still coming in or already ended within this
/// batch, while fewer than `limit` are saved (`written`) or on their way. Ended ones count too:
/// taking only those still coming in let the next bag of the same batch take the first
/// archive id, and with `--bags N` that id was then left unsaved (partial) while the earlier
/// bag was saved under the next one.
fn bags_to_begin<'a>(
    spans: &'a [BagSpan],
    archived: &HashMap<u64, i64>,
    written: u64,
    limit: Option<u64>,
) -> Vec<&'a BagSpan> {
    let mut taken = written + archived.len() as u64;
    let mut out = Vec::new();
    for span in spans {
        if archived.contains_key(&span.bag) || limit.is_some_and(|n| taken >= n) {
            continue;
        }
        taken += 1;
        out.push(span);
    }
    out
}

fn write_bag(
    dir: &Path,
    n: u64,
    bag: &CapturedBag,
    profile: &ScannerProfile,
    source: &str,
) -> anyhow::Result<()> {
    let tiff = dir.join(format!("bag-{n:06}.tiff"));
    super::save_raw(&tiff, &bag.frame, &bag.calibration, profile)?;
    let meta = BagMeta {
        bag: bag.span.bag,
        item_id: bag.span.item_id.as_deref(),
        profile: &profile.name,
        source,
        lines: bag.frame.lines(),
        channels: bag.frame.channels(),
        missing_rows: &bag.missing,
        truncated: bag.truncated,
        captured_unix_ms: super::now_ms(),
    };
    let path = dir.join(format!("bag-{n:06}.json"));
    crate::files::io::write_atomically(&path, &serde_json::to_vec_pretty(&meta)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(bag: u64, first_line: u64, end_line: Option<u64>) -> BagSpan {
        BagSpan { bag, item_id: None, first_line, end_line }
    }

    #[test]
    fn a_bag_ended_within_the_batch_enters_the_archive_before_the_next_one() {
        // A replay at full speed hands over a whole bag and the start of the next in one batch.
        let spans = [span(7, 10, Some(300)), span(8, 340, None)];
        let none = HashMap::new();
        let bags = |limit| bags_to_begin(&spans, &none, 0, limit).iter().map(|s| s.bag).collect::<Vec<_>>();
        assert_eq!(bags(Some(1)), [7]);
        assert_eq!(bags(Some(2)), [7, 8]);
        assert_eq!(bags(None), [7, 8]);
        // Already archived, or the limit reached by what was saved: nothing new.
        let known = HashMap::from([(7, 1)]);
        let ids: Vec<u64> = bags_to_begin(&spans, &known, 0, Some(2)).iter().map(|s| s.bag).collect();
        assert_eq!(ids, [8]);
        assert!(bags_to_begin(&spans, &known, 1, Some(2)).is_empty());
        assert!(bags_to_begin(&spans, &none, 3, Some(3)).is_empty());
    }
}

/// Options of `twinspect genicam`.
#[derive(clap::Args, Debug)]
pub struct GenicamArgs {
    /// The device: `gige://IP`, or `gige://SERIAL` (found by broadcast discovery).
    #[arg(long)]
    pub source: String,
    /// Set features first, in order (repeat): `ExposureTimeAbs=2000.5`, `PixelFormat=Mono16`,
    /// `ReverseX=true`; a command feature's name alone executes it.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// The features to list (default: every feature, registers left out).
    pub features: Vec<String>,
}

/// `twinspect genicam`: read the device's GenICam XML, set what was asked (taking control for
/// it, released after), then list features as `NAME  KIND  VALUE  RANGE`, tab-separated.
pub fn genicam(a: GenicamArgs) -> anyhow::Result<()> {
    use crate::source::gige::{Gvcp, discover_all, driver::GigeSourceOptions, genicam::NodeMap};
    let u = SourceUrl::parse(&a.source)?;
    let o = GigeSourceOptions::from_url(&u, 1, 1.0)?;
    let ip = match &o.serial {
        None => o.ip,
        Some(sn) => {
            match discover_all(Duration::from_millis(500))?.into_iter().find(|(_, i)| &i.serial == sn) {
                Some((ip, _)) => ip,
                None => bail!("{}: no device with serial number {sn} answered discovery", a.source),
            }
        }
    };
    let mut ctl = Gvcp::new(ip)?;
    let info = ctl.discover().with_context(|| format!("gige://{ip}"))?;
    let (_, xml) = ctl.xml().with_context(|| format!("gige://{ip}: its GenICam XML"))?;
    let mut map = NodeMap::load(&xml).with_context(|| format!("gige://{ip}"))?;
    // One listing reads each register once (as each register's Cachable allows).
    map.set_caching(true);
    println!("# {} {} (serial {}) at {ip}", info.manufacturer, info.model, info.serial);
    if !a.set.is_empty() {
        ctl.take_control().with_context(|| format!("gige://{ip}: control"))?;
        let result = set_features(&mut map, &mut ctl, &a.set);
        let _ = ctl.release();
        result?;
    }
    let names: Vec<String> = if a.features.is_empty() {
        let mut all: Vec<String> = map.names().map(str::to_owned).collect();
        all.sort();
        all
    } else {
        a.features.clone()
    };
    let explicit = !a.features.is_empty();
    for name in names {
        let f = map.describe(&mut ctl, &name)?;
        if !explicit && matches!(f.kind, "IntReg" | "MaskedIntReg" | "FloatReg" | "Other") {
            continue;
        }
        let value = f.value.unwrap_or_else(|e| format!("(unreadable: {e})"));
        println!("{}\t{}\t{value}\t{}", f.name, f.kind, f.range);
    }
    list_selected(&mut map, &mut ctl, &a.features)
}

/// Each selector's features under each of its entries, as `Feature[Selector=Entry]` rows (the
/// selector set to each entry in turn under control, then put back), for the features listed.
fn list_selected(
    map: &mut crate::source::gige::genicam::NodeMap,
    ctl: &mut crate::source::gige::Gvcp,
    only: &[String],
) -> anyhow::Result<()> {
    let wanted = |f: &String| only.is_empty() || only.contains(f);
    let selectors: Vec<(String, Vec<String>)> = map
        .selectors()
        .iter()
        .map(|(s, fs)| (s.clone(), fs.iter().filter(|f| wanted(f)).cloned().collect::<Vec<_>>()))
        .filter(|(_, fs)| !fs.is_empty())
        .collect();
    if selectors.is_empty() {
        return Ok(());
    }
    if let Err(e) = ctl.take_control() {
        println!("# selected features under their current entries only: no control of the device ({e})");
        return Ok(());
    }
    let mut result = Ok(());
    for (selector, features) in selectors {
        let (Ok(entries), Ok(was)) = (map.entries(&selector), map.enum_entry(ctl, &selector)) else {
            continue;
        };
        for entry in &entries {
            if let Err(e) = map.set_enum(ctl, &selector, entry) {
                println!("# {selector}={entry}: {e}");
                continue;
            }
            for f in &features {
                let d = map.describe(ctl, f)?;
                let value = d.value.unwrap_or_else(|e| format!("(unreadable: {e})"));
                println!("{f}[{selector}={entry}]\t{}\t{value}\t{}", d.kind, d.range);
            }
        }
        if let Err(e) = map.set_enum(ctl, &selector, &was) {
            result = Err(anyhow::anyhow!("{selector}: could not put it back to {was}: {e}"));
        }
    }
    let _ = ctl.release();
    result
}

fn set_features(
    map: &mut crate::source::gige::genicam::NodeMap,
    ctl: &mut crate::source::gige::Gvcp,
    set: &[String],
) -> anyhow::Result<()> {
    for s in set {
        let Some((name, value)) = s.split_once('=') else {
            map.execute(ctl, s).with_context(|| format!("--set {s}"))?;
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        let done = if map.entries(name).is_ok() {
            map.set_enum(ctl, name, value)
        } else if let Ok(b) = value.parse::<bool>() {
            map.set_int(ctl, name, i64::from(b))
        } else if let Ok(v) = value.parse::<i64>() {
            map.set_int(ctl, name, v)
        } else if let Ok(v) = value.parse::<f64>() {
            map.set_float(ctl, name, v)
        } else {
            bail!("--set {s}: {value} is no number, true/false or entry");
        };
        done.with_context(|| format!("--set {s}"))?;
    }
    Ok(())
}
