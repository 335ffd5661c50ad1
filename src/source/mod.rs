//! Line sources: everything that delivers detector lines to the workstation arrives as
//! [`SourceEvent`]s on one bounded channel, so the rest of the program cannot tell a live scanner
//! from the emulator. Sources are named by URL ([`url::SourceUrl`], [`open`]).
//!
//! Owns: [`SourceEvent`], [`SourceStats`], [`open`], the built-in synthetic scanner thread
//! ([`spawn_synthetic`]) that paces lines at the profile's line rate (and its emulated barcode
//! reader, [`emulate_reader`], reading each parcel at its place on the belt), the serial driver
//! ([`serial`]) and the GigE Vision driver ([`gige`]), with the wire codecs the emulators
//! (`crate::emulator`) speak too. A full channel never blocks a source: like a real scanner it
//! drops the line and counts it.
//!
//! Must not import: egui, wgpu, the emulators.

pub mod dicos;
pub mod gige;
pub mod recording;
pub mod replay;
pub mod serial;
pub mod url;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::domain::profile::ScannerProfile;
use crate::domain::scan::RawLine;
use crate::domain::synth::{SyntheticScanner, generate_bag};

/// What a source delivers.
#[derive(Clone, Debug)]
pub enum SourceEvent {
    Line(RawLine),
    /// A bag starts with the next line (when the scanner says so), with the parcel barcode or
    /// baggage tag read upstream, if any.
    BagStart {
        bag: u64,
        item_id: Option<String>,
    },
    /// The bag's last line has been sent.
    BagEnd {
        bag: u64,
    },
    /// Source-level problem, shown to the operator; the source may recover.
    Fault(String),
    /// The scanner's own state report.
    Status(ScannerStatus),
    /// The link came up or went down (cable pulled, device gone, silence), with why.
    Link {
        up: bool,
        detail: String,
    },
    /// A detector's block exactly as it arrived, for installers checking a test pattern (only
    /// when asked for: `gige://...?raw=on`, `capture --raw`); its lines come as `Line`s too.
    RawBlock(Arc<RawBlock>),
    /// A threat image was projected into this bag (training replays, `replay://...?tip=`); sent
    /// before the bag's end.
    Projected(Arc<crate::domain::tip::ProjectedThreat>),
    /// The belt as a device that reports nothing else reads it back (a GigE Vision detector's
    /// `BeltControl`); scanners with a status report say it in [`SourceEvent::Status`].
    Belt(Belt),
}

/// Which way the belt moves, as commanded or as the scanner reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Belt {
    Forward,
    Stop,
    Reverse,
}

impl Belt {
    pub fn parse(s: &str) -> Option<Belt> {
        match s.to_ascii_lowercase().as_str() {
            "forward" | "start" => Some(Belt::Forward),
            "stop" => Some(Belt::Stop),
            "reverse" | "back" => Some(Belt::Reverse),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Belt::Forward => "forward",
            Belt::Stop => "stop",
            Belt::Reverse => "reverse",
        }
    }
}

/// What the workstation asks of the scanner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScannerCommand {
    Belt(Belt),
    /// A dark then air cycle.
    Calibrate,
}

/// A GigE Vision block as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawBlock {
    pub id: u64,
    pub width: u32,
    pub height: u32,
    pub pixel_format: u32,
    /// Little-endian samples as on the wire; bytes of packets that never came are zero.
    pub data: Vec<u8>,
    pub missing_packets: Vec<u32>,
}

/// What a scanner reports about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScannerStatus {
    pub tube_on: bool,
    pub belt_running: bool,
    pub belt_reversed: bool,
    pub interlock_open: bool,
    pub fault: bool,
    pub kv: f32,
    pub ma: f32,
    pub temp_c: f32,
    pub belt_mm_s: f32,
    pub line_rate_hz: f32,
}

impl ScannerStatus {
    /// The belt as reported.
    pub fn belt(&self) -> Belt {
        match (self.belt_running, self.belt_reversed) {
            (false, _) => Belt::Stop,
            (true, false) => Belt::Forward,
            (true, true) => Belt::Reverse,
        }
    }
}

/// Counters shared between a source and whoever shows its health.
#[derive(Debug, Default)]
pub struct SourceStats {
    pub lines_sent: AtomicU64,
    /// Lines dropped because the consumer did not keep up.
    pub lines_dropped: AtomicU64,
    pub bags: AtomicU64,
    /// The link is up (always for the synthetic scanner).
    pub connected: AtomicBool,
    /// Times the link came back after being lost.
    pub reconnects: AtomicU64,
    pub bytes: AtomicU64,
    /// Frames or headers refused by a checksum.
    pub crc_errors: AtomicU64,
    /// Bytes skipped while resynchronising.
    pub bytes_skipped: AtomicU64,
    /// Frames with good checksums that made no sense (or of unknown type).
    pub malformed: AtomicU64,
    /// Frames lost on the link according to their sequence numbers.
    pub frames_lost: AtomicU64,
    /// Packet resends asked for / honoured (GigE Vision).
    pub resends_requested: AtomicU64,
    pub resends_honoured: AtomicU64,
    /// A source that goes bag by bag (`replay://...?speed=step`): after each bag it waits until
    /// `steps` exceeds the bags it has sent ([`SourceStats::next_bag`]).
    pub stepping: AtomicBool,
    /// It has sent a whole bag and waits for the next step.
    pub step_waiting: AtomicBool,
    pub steps: AtomicU64,
    /// The source has delivered all it had (a recording or DICOS images played to their end):
    /// its link went down on purpose, not by a fault.
    pub finished: AtomicBool,
}

impl SourceStats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Let a stepping source send its next bag.
    pub fn next_bag(&self) {
        self.steps.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running source: its events, its counters, and a stop switch (also on drop).
pub struct RunningSource {
    pub events: Receiver<SourceEvent>,
    pub stats: Arc<SourceStats>,
    pub description: String,
    /// Commands to the scanner, where the source can carry them (serial, GigE Vision with a
    /// `BeltControl` feature, the synthetic scanner).
    pub commands: Option<Sender<ScannerCommand>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RunningSource {
    /// A source its caller feeds through the returned sender (benchmarks, tests): connected,
    /// with no thread of its own.
    pub fn fed(description: &str, capacity: usize) -> (Sender<SourceEvent>, RunningSource) {
        let (tx, rx) = bounded(capacity.max(16));
        let stats = Arc::new(SourceStats::default());
        stats.connected.store(true, Ordering::Relaxed);
        let source = RunningSource {
            events: rx,
            stats,
            description: description.into(),
            commands: None,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        (tx, source)
    }

    /// Ask the scanner to do something; false when this source cannot carry commands.
    pub fn command(&self, c: ScannerCommand) -> bool {
        self.commands.as_ref().is_some_and(|tx| tx.try_send(c).is_ok())
    }
}

/// Where the profile comes from when a URL names one.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Url(#[from] url::UrlError),
    #[error(transparent)]
    Physics(#[from] crate::domain::physics::PhysicsError),
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
    #[error(transparent)]
    Dicos(#[from] crate::files::dicos::DicosError),
    #[error(transparent)]
    Io(#[from] crate::files::io::IoError),
    #[error("the emulated barcode reader on 127.0.0.1:{port}: {why}")]
    Reader { port: u16, why: String },
}

/// Start the source a URL names, delivering lines of `profile`'s width.
pub fn open(u: &url::SourceUrl, profile: &ScannerProfile) -> Result<RunningSource, OpenError> {
    match u.scheme.as_str() {
        "synthetic" => {
            u.only_keys(&[
                "seed",
                "profile",
                "speed",
                "drift",
                "gap_mm",
                "bags",
                "reader",
                "reader_ms",
                "noread",
            ])?;
            let d = SyntheticOptions::default();
            let reader = match u.get_str("reader") {
                Some(_) => {
                    let port: u16 = u.get("reader", 0)?;
                    let offset_ms: i64 = u.get("reader_ms", 0)?;
                    if offset_ms.unsigned_abs() > 600_000 {
                        return Err(OpenError::Reader {
                            port,
                            why: format!("reader_ms={offset_ms}: at most ten minutes of belt either way"),
                        });
                    }
                    let codes =
                        emulate_reader(port).map_err(|e| OpenError::Reader { port, why: e.to_string() })?;
                    Some(ReaderEmulation { codes, offset_ms, noread_every: u.get("noread", 0)? })
                }
                None => None,
            };
            let opts = SyntheticOptions {
                seed: u.get("seed", d.seed)?,
                speed: u.get("speed", d.speed)?,
                drift: u.get("drift", d.drift)?,
                gap_mm: u.get("gap_mm", d.gap_mm)?,
                bags: u.get_str("bags").map(|_| u.get("bags", 0u64)).transpose()?,
                reader,
                ..d
            };
            Ok(spawn_synthetic(profile, opts)?)
        }
        "serial" => Ok(serial::spawn(serial::SerialOptions::from_url(u)?)),
        "dicos" => {
            u.only_keys(&["speed", "profile"])?;
            let speed = replay::parse_speed(u.get_str("speed").unwrap_or("1"))?;
            Ok(dicos::spawn(&u.location, speed, profile)?)
        }
        "replay" => {
            u.only_keys(&["speed", "profile", "tip", "tip_seed", "threats"])?;
            let speed_text = u.get_str("speed").unwrap_or("1");
            let step = speed_text.eq_ignore_ascii_case("step");
            let speed = if step { None } else { replay::parse_speed(speed_text)? };
            let rate: f64 = u.get("tip", 0.0)?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(url::UrlError::Value {
                    key: "tip".into(),
                    value: rate.to_string(),
                    why: "the share of bags given a projected threat, 0 to 1".into(),
                }
                .into());
            }
            let tip = (rate > 0.0)
                .then(|| -> Result<replay::TipReplay, OpenError> {
                    Ok(replay::TipReplay {
                        rate,
                        seed: u.get("tip_seed", 1u64)?,
                        threats: {
                            // The built-in threats, and those a trainer cut out of scans.
                            let mut v = crate::domain::tip::builtin_threats(profile)?;
                            if let Some(dir) = u.get_str("threats") {
                                if !std::path::Path::new(dir).is_dir() {
                                    return Err(url::UrlError::Value {
                                        key: "threats".into(),
                                        value: dir.into(),
                                        why: "a folder of threats (DATA/threats, made by `train add-threat`)"
                                            .into(),
                                    }
                                    .into());
                                }
                                v.extend(crate::files::io::load_threats(std::path::Path::new(dir))?);
                            }
                            v
                        },
                        projector: crate::domain::tip::Projector::new(profile)?,
                    })
                })
                .transpose()?;
            Ok(replay::spawn_replay_with(
                std::path::Path::new(&u.location),
                speed,
                profile.channels as usize,
                tip,
                step,
            )?)
        }
        _ => {
            let o = gige::driver::GigeSourceOptions::from_url(
                u,
                profile.channels as usize,
                profile.line_rate_hz,
            )?;
            Ok(gige::driver::spawn(o))
        }
    }
}

impl Drop for RunningSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Send `ev` and wait while the channel is full (a file can wait, a scanner cannot: for
/// replays), still hearing the stop switch; false when stopped or nobody listens any more.
pub(crate) fn deliver_blocking(
    tx: &crossbeam_channel::Sender<SourceEvent>,
    stop: &AtomicBool,
    ev: SourceEvent,
) -> bool {
    let mut ev = ev;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        match tx.send_timeout(ev, Duration::from_millis(50)) {
            Ok(()) => return true,
            Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => ev = back,
            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return false,
        }
    }
}

/// Options of the synthetic scanner.
#[derive(Clone, Debug)]
pub struct SyntheticOptions {
    pub seed: u64,
    /// 1.0 = the profile's line rate; larger runs faster (tests, benchmarks).
    pub speed: f64,
    /// Empty belt between bags (mm).
    pub gap_mm: f64,
    /// Peak relative tube-output drift (slow sine), to exercise air re-calibration.
    pub drift: f64,
    /// Channel capacity in lines.
    pub capacity: usize,
    /// Stop after this many bags (and the empty belt after the last), then stay connected and
    /// silent: a fixed scene for snapshots and benchmarks. `None`: bags forever.
    pub bags: Option<u64>,
    /// A barcode reader on the line beside the scanner (`reader=PORT&reader_ms=OFFSET&noread=N`).
    pub reader: Option<ReaderEmulation>,
}

/// The emulated line's barcode reader: it reads each parcel `offset_ms` after the parcel starts
/// through the tunnel (negative: before, the reader upstream; as far as the line needs, several
/// parcels ahead), every `noread_every`-th parcel not at all (0: every one read), and serves the
/// codes as a reader does, a CR/LF-terminated line each to whoever is connected to its TCP
/// port. A parcel's code is its tag's with `PK` for `TS`. Where it reads is a place on the belt,
/// each read queued half a second before it: a belt stopped or run backwards holds back the
/// reads beyond that, and a parcel reversed and scanned again is not read twice.
#[derive(Clone, Debug)]
pub struct ReaderEmulation {
    pub codes: Sender<(Instant, String)>,
    pub offset_ms: i64,
    pub noread_every: u64,
}

/// The reader's TCP server on 127.0.0.1:`port`: codes sent at their times to the client
/// connected then (a reader's reads are lost while nobody listens); it ends with the sender.
pub fn emulate_reader(port: u16) -> std::io::Result<Sender<(Instant, String)>> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let (tx, rx) = bounded::<(Instant, String)>(1024);
    std::thread::Builder::new().name("emulated barcode reader".into()).spawn(move || {
        let mut client: Option<std::net::TcpStream> = None;
        loop {
            if let Ok((c, _)) = listener.accept() {
                let _ = c.set_nonblocking(false);
                client = Some(c);
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok((due, code)) => {
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    // Whoever connected while it waited hears this read.
                    if let Ok((c, _)) = listener.accept() {
                        let _ = c.set_nonblocking(false);
                        client = Some(c);
                    }
                    if let Some(c) = client.as_mut() {
                        use std::io::Write;
                        if c.write_all(format!("{code}\r\n").as_bytes()).is_err() {
                            client = None;
                        }
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        }
    })?;
    Ok(tx)
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        SyntheticOptions {
            seed: 1,
            speed: 1.0,
            gap_mm: 250.0,
            drift: 0.02,
            capacity: 8192,
            bags: None,
            reader: None,
        }
    }
}

/// Dark and air lines the synthetic scanner sends first (its calibration cycle).
pub const CALIBRATION_LINES: usize = 64;

/// Silence on a link that gives no error when its cable is pulled (RS-422, a UDP stream):
/// reported once as link down after `limit` without data, and as up again at the next data.
pub(crate) struct Silence {
    limit: Duration,
    last: Instant,
    silent: bool,
}

impl Silence {
    pub(crate) fn new(limit: Duration) -> Self {
        Silence { limit, last: Instant::now(), silent: false }
    }

    /// Data arrived: the link-up event to send, if the link had gone silent.
    pub(crate) fn heard(
        &mut self,
        stats: &SourceStats,
        detail: impl FnOnce() -> String,
    ) -> Option<SourceEvent> {
        self.last = Instant::now();
        if !self.silent {
            return None;
        }
        self.silent = false;
        stats.connected.store(true, Ordering::Relaxed);
        Some(SourceEvent::Link { up: true, detail: detail() })
    }

    /// Nothing is expected (the belt is at rest): the silence so far does not count.
    pub(crate) fn hush(&mut self) {
        if !self.silent {
            self.last = Instant::now();
        }
    }

    /// Nothing arrived: the link-down event to send, if the silence just reached the limit
    /// (`detail` gets the limit in seconds).
    pub(crate) fn quiet(
        &mut self,
        stats: &SourceStats,
        detail: impl FnOnce(f32) -> String,
    ) -> Option<SourceEvent> {
        if self.silent || self.last.elapsed() < self.limit {
            return None;
        }
        self.silent = true;
        stats.connected.store(false, Ordering::Relaxed);
        Some(SourceEvent::Link { up: false, detail: detail(self.limit.as_secs_f32()) })
    }
}

/// Hand an event to the consumer. A line finding the channel full is dropped and counted (a
/// scanner cannot wait); bag, status and link events wait up to a second, since losing one would
/// merge two bags or hide a fault. False when the consumer is gone.
/// A source's thread, named, inside a `source` span naming its URL: everything it logs says
/// which source it is about.
pub(crate) fn spawn_thread(
    name: &str,
    url: &str,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let span = tracing::info_span!("source", url = %url);
    std::thread::Builder::new().name(name.into()).spawn(move || span.in_scope(f))
}

pub(crate) fn send(tx: &Sender<SourceEvent>, stats: &SourceStats, ev: SourceEvent) -> bool {
    match &ev {
        SourceEvent::Link { up: true, detail } => tracing::info!(%detail, "link up"),
        SourceEvent::Link { up: false, detail } => tracing::warn!(%detail, "link down"),
        SourceEvent::Fault(fault) => tracing::warn!(%fault, "source fault"),
        SourceEvent::Belt(b) => tracing::info!(belt = b.name(), "belt read back"),
        SourceEvent::BagStart { bag, item_id } => {
            tracing::debug!(bag, item = item_id.as_deref().unwrap_or("-"), "bag starts")
        }
        _ => {}
    }
    if !matches!(ev, SourceEvent::Line(_)) {
        return match tx.send_timeout(ev, Duration::from_secs(1)) {
            Ok(()) => true,
            Err(crossbeam_channel::SendTimeoutError::Timeout(ev)) => {
                tracing::warn!(event = ?std::mem::discriminant(&ev), "the workstation took no event for 1 s: dropped");
                true
            }
            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => false,
        };
    }
    match tx.try_send(ev) {
        Ok(()) => {
            stats.lines_sent.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(TrySendError::Full(_)) => {
            stats.lines_dropped.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

/// Start the physics-based synthetic scanner: a calibration cycle (dark, then air), then bags
/// separated by empty belt, forever, at the profile's line rate times `speed`. It obeys belt
/// commands as a scanner does: stopped, it sends nothing; reversed, the tube is off and the bag
/// under the beam goes back out of the tunnel (its scan ends there, cut short), and when the
/// belt runs forward again that bag is scanned again, whole, as a new bag with the same tag.
/// It reports its state once a second and at every change.
pub fn spawn_synthetic(
    profile: &ScannerProfile,
    opts: SyntheticOptions,
) -> Result<RunningSource, crate::domain::physics::PhysicsError> {
    let (tx, rx) = bounded(opts.capacity.max(16));
    let (ctx, crx) = bounded(16);
    let stats = Arc::new(SourceStats::default());
    stats.connected.store(true, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = SyntheticScanner::new(profile, opts.seed)?;
    let description = format!("synthetic://?seed={}&profile={}", opts.seed, profile.name);
    let synth = Synthetic {
        scanner,
        rate: profile.line_rate_hz * opts.speed.max(1e-3),
        profile: profile.clone(),
        opts,
        tx,
        stats: stats.clone(),
        stop: stop.clone(),
        commands: crx,
        belt: Belt::Forward,
        t0: Instant::now(),
        paced: 0,
        sent: 0,
        last_status: None,
    };
    let thread = spawn_thread("synthetic scanner", &description, move || synth.run())
        .expect("spawn synthetic scanner thread");
    Ok(RunningSource { events: rx, stats, description, commands: Some(ctx), stop, thread: Some(thread) })
}

/// Where the emulated reader reads which parcel. Positions are belt lines (one a line sent
/// with the belt running forward) from the start of the first parcel's empty belt; a parcel
/// starts through the tunnel after its empty belt, `gap` lines, and takes its bag's lines.
struct ReadPlan {
    /// Where the reader reads relative to a parcel's start through the tunnel (lines).
    off: i64,
    gap: i64,
    /// Parcels planned and not read yet: content number and start.
    planned: std::collections::VecDeque<(u64, i64)>,
    /// The next parcel to plan and where it starts.
    next: (u64, i64),
    /// Parcels generated to plan their length, kept for their scan.
    bags: std::collections::HashMap<u64, crate::domain::synth::Bag>,
}

impl ReadPlan {
    fn new(offset_ms: i64, rate: f64, gap: usize) -> ReadPlan {
        let off = (offset_ms as f64 / 1000.0 * rate).round() as i64;
        let gap = gap as i64;
        ReadPlan { off, gap, planned: Default::default(), next: (0, gap), bags: Default::default() }
    }

    /// The reads at or before belt position `upto` (content and where), each once, with every
    /// parcel through `current` (the one on the belt now) planned; `bag` makes a parcel (its
    /// length plans the next), `last` is the number of parcels the scene has.
    fn due(
        &mut self,
        upto: i64,
        current: u64,
        last: Option<u64>,
        mut bag: impl FnMut(u64) -> (crate::domain::synth::Bag, usize),
    ) -> Vec<(u64, i64)> {
        while (self.next.1 + self.off <= upto || self.next.0 <= current)
            && last.is_none_or(|n| self.next.0 < n)
        {
            let (content, start) = self.next;
            let (b, lines) = bag(content);
            self.bags.insert(content, b);
            self.next = (content + 1, start + lines as i64 + self.gap);
            self.planned.push_back((content, start));
        }
        let mut out = Vec::new();
        while let Some(&(content, start)) = self.planned.front() {
            if start + self.off > upto {
                break;
            }
            self.planned.pop_front();
            out.push((content, start + self.off));
        }
        out
    }

    /// Parcel `content` came back (the belt ran backwards) and starts again `by` lines later:
    /// so does every parcel on the belt not read yet, before or after it (a read done is not
    /// done again).
    fn again(&mut self, content: u64, by: i64) {
        for (_, s) in self.planned.iter_mut() {
            *s += by;
        }
        if self.next.0 > content {
            self.next.1 += by;
        }
    }
}

/// The seed of the synthetic scanner's `content`-th parcel.
fn parcel_seed(seed: u64, content: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(content)
}

/// What the belt did while a line waited to be sent.
enum Went {
    On,
    /// The belt ran backwards: the bag under the beam left the tunnel.
    Back,
    Quit,
}

/// The synthetic scanner's thread.
struct Synthetic {
    scanner: SyntheticScanner,
    profile: ScannerProfile,
    opts: SyntheticOptions,
    rate: f64,
    tx: Sender<SourceEvent>,
    stats: Arc<SourceStats>,
    stop: Arc<AtomicBool>,
    commands: Receiver<ScannerCommand>,
    belt: Belt,
    /// Pacing: lines sent since `t0` (restarted when the belt starts again).
    t0: Instant,
    paced: u64,
    /// Lines sent in all (the drift's clock).
    sent: u64,
    last_status: Option<Instant>,
}

impl Synthetic {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn status(&mut self) -> bool {
        self.last_status = Some(Instant::now());
        let p = &self.profile;
        let s = ScannerStatus {
            tube_on: self.belt == Belt::Forward,
            belt_running: self.belt != Belt::Stop,
            belt_reversed: self.belt == Belt::Reverse,
            interlock_open: false,
            fault: false,
            kv: p.kvp as f32,
            ma: 1.0,
            temp_c: 31.5,
            belt_mm_s: if self.belt == Belt::Stop { 0.0 } else { (p.belt_speed_m_s * 1000.0) as f32 },
            line_rate_hz: if self.belt == Belt::Forward { self.rate as f32 } else { 0.0 },
        };
        send(&self.tx, &self.stats, SourceEvent::Status(s))
    }

    /// Commands and the status report; then, while the belt is not running forward, wait.
    fn obey(&mut self) -> Went {
        let mut back = false;
        loop {
            if self.stopped() {
                return Went::Quit;
            }
            let mut changed = false;
            while let Ok(c) = self.commands.try_recv() {
                match c {
                    ScannerCommand::Belt(b) if b != self.belt => {
                        back |= b == Belt::Reverse;
                        if self.belt != Belt::Forward && b == Belt::Forward {
                            // Paced afresh: no burst of the lines "due" while it stood.
                            (self.t0, self.paced) = (Instant::now(), 0);
                        }
                        self.belt = b;
                        changed = true;
                    }
                    ScannerCommand::Belt(_) => {}
                    ScannerCommand::Calibrate => {
                        let (dark, air) = self.scanner.calibration_lines(CALIBRATION_LINES);
                        for l in dark.into_iter().chain(air) {
                            if !self.line(l) {
                                return Went::Quit;
                            }
                        }
                    }
                }
            }
            let due = self.last_status.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if (changed || due) && !self.status() {
                return Went::Quit;
            }
            if self.belt == Belt::Forward {
                return if back { Went::Back } else { Went::On };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send one line at its time; false when stopped or nobody listens.
    fn line(&mut self, l: RawLine) -> bool {
        if self.stopped() || !send(&self.tx, &self.stats, SourceEvent::Line(l)) {
            return false;
        }
        self.sent += 1;
        self.paced += 1;
        // Paced send: sleep until the line's due time (batches of about 5 ms).
        let due = Duration::from_secs_f64(self.paced as f64 / self.rate);
        let now = self.t0.elapsed();
        if due > now + Duration::from_millis(5) {
            std::thread::sleep(due - now);
        }
        true
    }

    /// The reader's reads due by belt position `pos` and half a second ahead (parcel `current`
    /// on the belt), each queued to the reader for the time its place passes the reader at the
    /// line rate (at once where that is past).
    fn read(&mut self, plan: &mut Option<ReadPlan>, pos: i64, current: u64) {
        let (Some(plan), Some(r)) = (plan.as_mut(), self.opts.reader.as_ref()) else { return };
        let (seed, profile) = (self.opts.seed, &self.profile);
        let ahead = (self.rate * 0.5).ceil() as i64;
        let reads = plan.due(pos + ahead, current, self.opts.bags, |c| {
            let b = generate_bag(parcel_seed(seed, c), profile);
            let lines = b.lines(profile);
            (b, lines)
        });
        for (content, at) in reads {
            if r.noread_every != 0 && content % r.noread_every == r.noread_every - 1 {
                continue;
            }
            // From this line's time by the pace, or now where the emulator runs late.
            let here = (self.t0 + Duration::from_secs_f64(self.paced as f64 / self.rate)).max(Instant::now());
            let due = here + Duration::from_secs_f64((at - pos).max(0) as f64 / self.rate);
            let code = format!("PK{:06}{:02}", seed % 1_000_000, content % 100);
            let _ = r.codes.try_send((due, code));
        }
    }

    fn run(mut self) {
        if !self.status() {
            return;
        }
        let (dark, air) = self.scanner.calibration_lines(CALIBRATION_LINES);
        for l in dark.into_iter().chain(air) {
            if !self.line(l) {
                return;
            }
        }
        let gap_lines = (self.opts.gap_mm / self.profile.line_pitch_mm()).ceil() as usize;
        // The scanner's bag numbers, and which bag goes through (a reversed bag comes again).
        let (mut bag_no, mut content) = (0u64, 0u64);
        // The belt's travel in lines since the first parcel's empty belt, and the reader's plan.
        let mut pos = 0i64;
        let mut plan = self.opts.reader.as_ref().map(|r| ReadPlan::new(r.offset_ms, self.rate, gap_lines));
        loop {
            for _ in 0..gap_lines {
                if matches!(self.obey(), Went::Quit) {
                    return;
                }
                let (drift, t) = (self.opts.drift, self.sent as f64 / self.rate);
                self.scanner.tube_output = 1.0 + drift * (t / 60.0 * std::f64::consts::TAU).sin();
                let l = self.scanner.air_line();
                if !self.line(l) {
                    return;
                }
                pos += 1;
                self.read(&mut plan, pos, content);
            }
            if self.opts.bags.is_some_and(|n| content >= n) {
                // The scene is complete: connected, silent but for its status, until stopped.
                while !matches!(self.obey(), Went::Quit) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            let seed = self.opts.seed;
            // Planned through this parcel first (its bag made once, for the plan and the scan).
            self.read(&mut plan, pos, content);
            let bag = plan.as_mut().and_then(|p| p.bags.remove(&content));
            let bag = bag.unwrap_or_else(|| generate_bag(parcel_seed(seed, content), &self.profile));
            let start = pos;
            self.stats.bags.fetch_add(1, Ordering::Relaxed);
            // A baggage tag as an upstream reader would deliver it (every bag has one here).
            let item_id = Some(format!("TS{:06}{:02}", seed % 1_000_000, content % 100));
            if !send(&self.tx, &self.stats, SourceEvent::BagStart { bag: bag_no, item_id }) {
                return;
            }
            let lines: Vec<RawLine> = self.scanner.scan_lines(&bag);
            let mut whole = true;
            for l in lines {
                match self.obey() {
                    Went::Quit => return,
                    Went::Back => {
                        whole = false;
                        break;
                    }
                    Went::On => {}
                }
                if !self.line(l) {
                    return;
                }
                pos += 1;
                self.read(&mut plan, pos, content);
            }
            if !whole && let Some(p) = plan.as_mut() {
                // It comes again after another empty belt.
                p.again(content, pos + gap_lines as i64 - start);
            }
            if !send(&self.tx, &self.stats, SourceEvent::BagEnd { bag: bag_no }) {
                return;
            }
            bag_no += 1;
            content += u64::from(whole);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scan::LineKind;

    /// Parcels of 100, 200, 300, ... lines.
    fn parcel(c: u64) -> (crate::domain::synth::Bag, usize) {
        let p = ScannerProfile::load("desk-140").unwrap();
        (generate_bag(c, &p), 100 * (c as usize + 1))
    }

    #[test]
    fn an_upstream_reader_reads_parcels_several_ahead_and_a_reversed_one_once() {
        // Gap 50 lines: parcels start at 50, 200, 450, 800; the reader 400 lines upstream
        // (10 lines a ms: 40 ms) reads them at -350, -200, 50, 400.
        let mut plan = ReadPlan::new(-40, 10_000.0, 50);
        assert_eq!(plan.due(0, 0, None, parcel), vec![(0, -350), (1, -200)], "two parcels ahead");
        assert_eq!(plan.due(49, 0, None, parcel), vec![]);
        assert_eq!(plan.due(50, 0, None, parcel), vec![(2, 50)]);
        // Parcel 1 is reversed 120 lines in (at 320) and starts again after another gap (at
        // 370): 170 lines later than planned; parcel 2 was read already, parcel 3 moves.
        plan.again(1, 170);
        assert_eq!(plan.due(400, 1, None, parcel), vec![], "at 400 + 170 now");
        assert_eq!(plan.due(570, 1, None, parcel), vec![(3, 570)]);
        assert!(plan.due(10_000, 9, Some(4), parcel).is_empty(), "a scene of four parcels");
        assert_eq!(plan.bags.len(), 4, "each made once, kept for its scan");
        // Downstream (300 lines after the start): the parcel on the belt is planned anyway.
        let mut plan = ReadPlan::new(30, 10_000.0, 50);
        assert_eq!(plan.due(10, 0, None, parcel), vec![]);
        assert_eq!(plan.next, (1, 200), "parcel 0 planned while on the belt");
        assert_eq!(plan.due(349, 0, None, parcel), vec![]);
        assert_eq!(plan.due(350, 0, None, parcel), vec![(0, 350)]);
        assert_eq!(plan.due(500, 1, None, parcel), vec![(1, 500)]);
        // Downstream 600 lines: parcel 2 is reversed 100 lines in (at 550) while parcels 0 and
        // 1 are still before the reader: all three move on the belt, by the 100 lines and
        // another gap.
        let mut plan = ReadPlan::new(60, 10_000.0, 50);
        assert_eq!(plan.due(550, 2, None, parcel), vec![]);
        plan.again(2, 600 - 450);
        assert_eq!(plan.due(799, 2, None, parcel), vec![]);
        assert_eq!(plan.due(800, 2, None, parcel), vec![(0, 800)]);
        assert_eq!(plan.due(1200, 2, None, parcel), vec![(1, 950), (2, 1200)]);
    }

    #[test]
    fn an_emulated_reader_further_than_ten_minutes_of_belt_is_refused() {
        let p = ScannerProfile::load("desk-140").unwrap();
        let u = url::SourceUrl::parse("synthetic://?reader=0&reader_ms=-600001").unwrap();
        let e = open(&u, &p).err().expect("refused");
        assert!(e.to_string().contains("at most ten minutes of belt"), "{e}");
    }

    #[test]
    fn the_emulated_reader_reads_each_parcel_at_its_place_on_the_belt() {
        let p = ScannerProfile::load("desk-140").unwrap();
        // The reader 1.5 s of belt upstream: beyond the empty belt before a parcel (0.5 s at
        // this speed), about a parcel ahead (0.8 to 1.8 s each).
        let (codes, reads) = bounded(64);
        let reader = ReaderEmulation { codes, offset_ms: -1500, noread_every: 3 };
        let opts = SyntheticOptions { speed: 2.0, bags: Some(5), reader: Some(reader), ..Default::default() };
        let src = spawn_synthetic(&p, opts).unwrap();
        // When each parcel started through the tunnel, by its tag.
        let mut starts = Vec::new();
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < end, "five parcels within a minute");
            match src.events.recv_timeout(Duration::from_millis(50)) {
                Ok(SourceEvent::BagStart { item_id, .. }) => starts.push((Instant::now(), item_id.unwrap())),
                Ok(SourceEvent::BagEnd { bag: 4 }) => break,
                _ => {}
            }
        }
        let reads: Vec<(Instant, String)> = reads.try_iter().collect();
        // Every parcel but the third read (no-read every third), in order.
        let codes: Vec<&str> = reads.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(codes, ["PK00000100", "PK00000101", "PK00000103", "PK00000104"]);
        assert_eq!(starts.len(), 5);
        let (first, mut ahead) = (starts[0].0, 0);
        for (due, code) in &reads {
            let (started, _) = starts.iter().find(|(_, tag)| tag[2..] == code[2..]).unwrap();
            let lead = started.duration_since(*due).as_secs_f64();
            if started.duration_since(first).as_secs_f64() > 1.6 {
                // Far enough from the scanner's start to be read 1.5 s ahead (a machine that
                // runs late only starts the parcel later: the bound above is loose).
                assert!((1.3..=2.5).contains(&lead), "{code} read {lead:.3} s before its start");
                ahead += 1;
            } else {
                assert!((0.0..=2.5).contains(&lead), "{code} read {lead:.3} s before its start");
            }
        }
        assert!(ahead >= 2, "{ahead} parcels read a whole 1.5 s ahead");
    }

    #[test]
    fn synthetic_source_calibrates_first_then_scans_and_stops_on_drop() {
        let p = ScannerProfile::load("desk-140").unwrap();
        let src = spawn_synthetic(&p, SyntheticOptions { speed: 50.0, ..Default::default() }).unwrap();
        let mut kinds = Vec::new();
        let mut last_seq = None;
        while kinds.len() < 2 * CALIBRATION_LINES + 50 {
            if let SourceEvent::Line(l) = src.events.recv_timeout(Duration::from_secs(20)).unwrap() {
                if let Some(s) = last_seq {
                    assert_eq!(l.seq, s + 1, "sequence numbers are contiguous");
                }
                last_seq = Some(l.seq);
                assert_eq!(l.low.len(), 1536);
                kinds.push(l.kind);
            }
        }
        assert!(kinds[..CALIBRATION_LINES].iter().all(|k| *k == LineKind::Dark));
        assert!(kinds[CALIBRATION_LINES..2 * CALIBRATION_LINES].iter().all(|k| *k == LineKind::Air));
        assert!(kinds[2 * CALIBRATION_LINES..].iter().all(|k| *k == LineKind::Scan));
        drop(src); // joins the thread: must not hang
    }

    /// Events until `done`, or a failure after `secs`.
    fn until(src: &RunningSource, secs: u64, mut done: impl FnMut(&SourceEvent) -> bool) -> Vec<SourceEvent> {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut out = Vec::new();
        loop {
            assert!(Instant::now() < end, "timed out after {} events", out.len());
            if let Ok(e) = src.events.recv_timeout(Duration::from_millis(50)) {
                let stop = done(&e);
                out.push(e);
                if stop {
                    return out;
                }
            }
        }
    }

    fn scan_lines(evs: &[SourceEvent]) -> usize {
        evs.iter().filter(|e| matches!(e, SourceEvent::Line(l) if l.kind == LineKind::Scan)).count()
    }

    #[test]
    fn the_synthetic_belt_stops_and_a_reversed_bag_comes_again_whole() {
        let p = ScannerProfile::load("desk-140").unwrap();
        let opts = SyntheticOptions { speed: 2.0, gap_mm: 30.0, drift: 0.0, ..Default::default() };
        // The first bag's length when nothing interrupts it.
        let plain = spawn_synthetic(&p, opts.clone()).unwrap();
        let evs = until(&plain, 60, |e| matches!(e, SourceEvent::BagEnd { .. }));
        let from = evs.iter().position(|e| matches!(e, SourceEvent::BagStart { .. })).unwrap();
        let whole = scan_lines(&evs[from..]);
        drop(plain);

        let src = spawn_synthetic(&p, opts).unwrap();
        let evs = until(&src, 60, |e| matches!(e, SourceEvent::BagStart { .. }));
        let Some(SourceEvent::BagStart { bag: 0, item_id: tag }) = evs.last().cloned() else { panic!() };
        assert!(
            evs.iter().any(|e| matches!(e, SourceEvent::Status(s) if s.belt() == Belt::Forward && s.tube_on))
        );
        let mut n = 0;
        until(&src, 60, |e| {
            n += usize::from(matches!(e, SourceEvent::Line(_)));
            n >= 50
        });
        // Stopped: reported, then nothing but status.
        assert!(src.command(ScannerCommand::Belt(Belt::Stop)));
        until(&src, 10, |e| matches!(e, SourceEvent::Status(s) if s.belt() == Belt::Stop && !s.tube_on));
        let t = Instant::now();
        let mut lines = 0;
        while t.elapsed() < Duration::from_millis(300) {
            if let Ok(SourceEvent::Line(_)) = src.events.recv_timeout(Duration::from_millis(20)) {
                lines += 1;
            }
        }
        assert_eq!(lines, 0, "lines while the belt stands");
        // Reversed: the bag ends there, cut short.
        assert!(src.command(ScannerCommand::Belt(Belt::Reverse)));
        let evs = until(&src, 10, |e| matches!(e, SourceEvent::Status(s) if s.belt() == Belt::Reverse));
        assert_eq!(scan_lines(&evs), 0);
        assert!(src.command(ScannerCommand::Belt(Belt::Forward)));
        let evs = until(&src, 60, |e| matches!(e, SourceEvent::BagEnd { bag: 1 }));
        let marks: Vec<String> =
            evs.iter().filter(|e| !matches!(e, SourceEvent::Line(_))).map(|e| format!("{e:?}")).collect();
        let first_end = evs.iter().find(|e| matches!(e, SourceEvent::BagEnd { .. }));
        assert!(matches!(first_end, Some(SourceEvent::BagEnd { bag: 0 })), "{marks:?}");
        let from = evs.iter().position(|e| matches!(e, SourceEvent::BagStart { .. })).unwrap();
        let SourceEvent::BagStart { bag: 1, item_id } = &evs[from] else { panic!("{:?}", evs[from]) };
        assert_eq!(item_id, &tag, "the same bag again");
        assert_eq!(scan_lines(&evs[from..]), whole, "scanned again whole");
    }
}
