//! The desk's link to the archive: bags enter it when they start, their scans are written when
//! they end, and decisions, marks, training results and logins are committed, all on threads
//! of their own. The caller (the desk, run by the windows' frame loop) only queues work on
//! bounded channels and takes the answers; it never waits for a disk. A record is shown as
//! made only once its commit has come back ([`Archiver::poll`]).
//!
//! Owns: [`Archiver`] (the scanner-bag to archive-bag map of this run, the records thread and its
//! writer connection, the scan-writer thread and its own connection), the last archive problem,
//! which every screen shows, and saving a station's view of an archived bag as a picture
//! ([`Archiver::save_view`]).
//!
//! Must not import: egui, wgpu, tokio.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde_json::json;

use crate::assemble::Batch;
use crate::capture::{BagCollector, CapturedBag};
use crate::domain::calib::Calibration;
use crate::domain::inspection::{Annotation, Decision};
use crate::domain::tip::TrainingResult;
use crate::files::store::{BagQuery, BagRow, BagStart, MarkChange, Store, StoreError};

/// Scans waiting for the writer thread; beyond this the newest bag's scan is refused (and
/// flagged) rather than holding unbounded memory.
const SCAN_QUEUE: usize = 16;
/// Records, bag starts and audit entries waiting for the records thread; beyond this a record
/// is refused at once ("not recorded"), never waited for.
const JOB_QUEUE: usize = 1024;
/// Answers waiting for the caller to take them.
const REPLY_QUEUE: usize = 4096;
/// Longest bag kept whole for archiving, in lines.
const MAX_BAG_LINES: usize = 16_384;

use crate::unix_ms as now_ms;

/// Something to commit about a bag, with its audit entry.
#[derive(Clone, Debug)]
pub enum Record {
    Decision(Decision),
    Mark {
        mark: Annotation,
        change: MarkChange,
        by: String,
    },
    DeleteMark {
        id: u64,
        by: String,
    },
    Findings(crate::domain::inspection::Findings),
    /// A photo taken at the opening and its bytes.
    Photo {
        photo: crate::domain::inspection::Photo,
        data: std::sync::Arc<[u8]>,
    },
    Training {
        operator: String,
        agency: String,
        threat: Option<String>,
        result: TrainingResult,
        decision_ms: u64,
    },
}

/// Why the archive did not take or do something.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive's disk is not keeping up (records queued)")]
    Backlog,
    #[error("the archive is closed")]
    Closed,
    #[error("the archive's writer has stopped")]
    WriterStopped,
    #[error("this bag is not in the archive")]
    NotArchived,
    #[error("the archive is busy reading: try again in a moment")]
    ReadsBusy,
    #[error("no thread for the archive: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
}

/// What came back from the archive's threads.
#[derive(Debug)]
pub enum Reply {
    /// The record queued under this ticket is on disk (or why not).
    Committed { ticket: u64, result: Result<(), ArchiveError> },
    /// A station's saved view ([`Archiver::save_view`]): the file, or why not.
    View { station: usize, result: Result<PathBuf, ArchiveError> },
    /// An archived bag read for a station ([`Archiver::load`]).
    Loaded { station: usize, result: Result<Box<LoadedBag>, ArchiveError> },
    /// Bags found for a station ([`Archiver::search`]), newest first.
    Found { station: usize, result: Result<Vec<BagRow>, ArchiveError> },
}

/// An archived bag, everything a screen needs to show and decide it: its row, its record, its
/// scan (checked against its SHA-256) with the calibration it was kept with.
#[derive(Debug)]
pub struct LoadedBag {
    pub row: BagRow,
    pub record: crate::domain::inspection::BagRecord,
    pub frame: crate::domain::scan::RawFrame,
    pub calibration: Calibration,
    /// Lines lost before they reached the workstation (shown hatched).
    pub missing: Vec<bool>,
    /// The desk's key of this bag when it is a bag of this run (else `None`).
    pub key: Option<u64>,
    /// The material table of the scanner it was scanned with, when that is not this
    /// workstation's (`None`: the workstation's own).
    pub lut: Option<crate::domain::material::MaterialLut>,
    /// Its scanner's measuring (thickness in reference materials, mm a line and a channel),
    /// when that is not this workstation's.
    pub meter: Option<crate::domain::measure::Meter>,
}

/// Reads of the archive for the screens run on threads of their own, at most this many at once
/// (a station asking again while its read is under way is told to wait).
const READS: usize = 4;

/// What [`Archiver::save_view`] needs of the screen.
pub struct ViewRequest {
    pub station: usize,
    /// The desk's key of the bag.
    pub key: u64,
    pub view: crate::domain::view::ViewSettings,
    /// Whose marks are shown.
    pub agencies: Vec<String>,
    pub config: crate::domain::inspection::InspectionConfig,
    /// Who asked, and the station's name (for the file name).
    pub actor: String,
    pub station_name: String,
}

/// A bag of this run as the threads know it: a serial of the caller's (a scanner that restarts
/// its numbering reuses its bag numbers, never a serial), the tag, when it started.
#[derive(Clone, Debug)]
struct BagRef {
    serial: u64,
    scanner_bag: u64,
    item_id: Option<String>,
    at_ms: u64,
}

enum Job {
    /// A bag started: it enters the archive now.
    Begin(BagRef),
    Record {
        ticket: u64,
        bag: BagRef,
        record: Record,
    },
    Log {
        actor: String,
        action: String,
        detail: serde_json::Value,
    },
    SaveView {
        bag: BagRef,
        request: Box<ViewRequest>,
        profile: String,
    },
    /// A bag whose scan will not be saved: flagged partial with why.
    Abandon {
        bag: BagRef,
        why: String,
    },
}

/// Internal answers (the public ones, and the state both screens show).
enum Answer {
    Public(Reply),
    ScanSaved,
    /// The newest problem, or `None` after a success.
    Problem(Option<String>),
}

/// Serial -> archive id, shared by the records and scan threads: whichever needs a bag first
/// enters it (under the lock, so it is entered once).
type Ids = Arc<Mutex<HashMap<u64, i64>>>;

struct Shared {
    ids: Ids,
    source: String,
    profile: String,
    channels: usize,
}

impl Shared {
    fn id_of(&self, store: &mut Store, bag: &BagRef) -> Result<i64, StoreError> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = ids.get(&bag.serial) {
            return Ok(*id);
        }
        let start = BagStart {
            scanner_bag: bag.scanner_bag,
            item_id: bag.item_id.as_deref(),
            source: &self.source,
            profile: &self.profile,
            channels: self.channels,
            at_ms: bag.at_ms,
        };
        let id = store.begin_bag(&start, "workstation")?;
        ids.insert(bag.serial, id);
        Ok(id)
    }
}

pub struct Archiver {
    dir: PathBuf,
    /// Scanner bag number (or desk key) -> the bag as the threads know it.
    bags: HashMap<u64, BagRef>,
    /// Scanner bag numbers whose bag has ended: a new start under one of them (a scanner that
    /// restarted its numbering) is a new bag.
    ended: HashSet<u64>,
    next_serial: u64,
    next_ticket: u64,
    collector: BagCollector,
    jobs: Option<Sender<Job>>,
    scans: Option<Sender<(BagRef, CapturedBag)>>,
    answers: Receiver<Answer>,
    records_thread: Option<std::thread::JoinHandle<()>>,
    scans_thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    /// Bags a crash had left half captured, flagged partial when the archive opened.
    pub recovered: Vec<i64>,
    /// Scans saved by this run.
    pub saved: u64,
    /// The newest problem (a full disk, a read-only directory), for both screens; cleared by
    /// the next success.
    pub problem: Option<String>,
    /// Answers taken by [`Archiver::feed`] for the next [`Archiver::poll`].
    pending_replies: Vec<Reply>,
    /// Reads (loads, searches) under way.
    reads: Arc<std::sync::atomic::AtomicUsize>,
    /// Where the read threads answer.
    answer_tx: Sender<Answer>,
}

impl Archiver {
    /// Open the archive in `dir` for the workstation (`source`, `profile`: what bags record).
    pub fn open(dir: &Path, source: &str, profile: &str, channels: usize) -> Result<Archiver, StoreError> {
        Archiver::over(Store::open(dir)?, source, profile, channels)
    }

    /// The desk's link over a writer this process already holds (a scanner node's archive, whose
    /// capture and publisher have writers of their own: `Store::second_writer`).
    pub fn over(
        mut store: Store,
        source: &str,
        profile: &str,
        channels: usize,
    ) -> Result<Archiver, StoreError> {
        let dir = store.dir().to_path_buf();
        let dir = dir.as_path();
        let recovered = std::mem::take(&mut store.recovered);
        let mut scan_store = store.second_writer()?;
        let shared = Arc::new(Shared {
            ids: Arc::default(),
            source: source.into(),
            profile: profile.into(),
            channels,
        });
        let (scan_tx, scan_rx) = crossbeam_channel::bounded::<(BagRef, CapturedBag)>(SCAN_QUEUE);
        let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(JOB_QUEUE);
        let (answer_tx, answers) = crossbeam_channel::bounded::<Answer>(REPLY_QUEUE);
        let spawn_err = |e| StoreError::Io { path: dir.display().to_string(), source: e };

        // What the archive's threads log says which archive it is about.
        let span = tracing::info_span!("archive", dir = %dir.display());
        let (sh, tx, scans_span) = (shared.clone(), answer_tx.clone(), span.clone());
        let scans_thread = std::thread::Builder::new()
            .name("archive-scans".into())
            .spawn(move || {
                let _in = scans_span.enter();
                for (bag, scan) in scan_rx {
                    let answer = save_scan(&sh, &mut scan_store, &bag, &scan);
                    match &answer {
                        Answer::Problem(Some(why)) => {
                            tracing::error!(bag = bag.scanner_bag, %why, "scan not saved")
                        }
                        _ => tracing::debug!(bag = bag.scanner_bag, "scan saved"),
                    }
                    if tx.send(answer).is_err() {
                        break;
                    }
                }
            })
            .map_err(spawn_err)?;

        let (sh, reads_tx) = (shared.clone(), answer_tx.clone());
        let records_thread = std::thread::Builder::new()
            .name("archive-records".into())
            .spawn(move || span.in_scope(|| records_loop(sh, store, job_rx, answer_tx)))
            .map_err(spawn_err)?;
        Ok(Archiver {
            dir: dir.to_path_buf(),
            bags: HashMap::new(),
            ended: Default::default(),
            next_serial: 0,
            next_ticket: 0,
            collector: BagCollector::new(channels, MAX_BAG_LINES),
            jobs: Some(job_tx),
            scans: Some(scan_tx),
            answers,
            records_thread: Some(records_thread),
            scans_thread: Some(scans_thread),
            shared,
            recovered,
            saved: 0,
            problem: None,
            pending_replies: Vec::new(),
            reads: Arc::default(),
            answer_tx: reads_tx,
        })
    }

    /// The archive id of the desk's bag `key` of this run, once it has entered the archive.
    pub fn archive_id(&self, key: u64) -> Option<i64> {
        let b = self.bags.get(&key)?;
        self.shared.ids.lock().unwrap_or_else(|e| e.into_inner()).get(&b.serial).copied()
    }

    /// The desk's key of archived bag `id` when it is a bag of this run.
    fn key_of(&self, id: i64) -> Option<u64> {
        let ids = self.shared.ids.lock().unwrap_or_else(|e| e.into_inner());
        self.bags.iter().find(|(_, b)| ids.get(&b.serial) == Some(&id)).map(|(k, _)| *k)
    }

    /// Run `read` on a thread of its own with a read-only connection; its answer comes back
    /// through [`Archiver::poll`].
    fn read<F>(&self, what: &str, read: F) -> Result<(), ArchiveError>
    where
        F: FnOnce(Result<Store, StoreError>) -> Reply + Send + 'static,
    {
        use std::sync::atomic::Ordering;
        if self.reads.fetch_add(1, Ordering::SeqCst) >= READS {
            self.reads.fetch_sub(1, Ordering::SeqCst);
            return Err(ArchiveError::ReadsBusy);
        }
        let (dir, tx, reads) = (self.dir.clone(), self.answer_tx.clone(), self.reads.clone());
        let spawned = std::thread::Builder::new().name(format!("archive {what}")).spawn(move || {
            let reply = read(Store::open_read(&dir));
            // The answer is in the channel before the read stops counting (`Desk::settle`).
            let _ = tx.send(Answer::Public(reply));
            reads.fetch_sub(1, Ordering::SeqCst);
        });
        spawned.map(|_| ()).map_err(|e| {
            self.reads.fetch_sub(1, Ordering::SeqCst);
            ArchiveError::Thread(e)
        })
    }

    /// Read archived bag `id` (row, record, scan, calibration) for `station`, off this thread:
    /// [`Reply::Loaded`] brings it.
    pub fn load(&mut self, station: usize, id: i64) -> Result<(), ArchiveError> {
        let key = self.key_of(id);
        let own_profile = self.shared.profile.clone();
        self.read("load", move |store| {
            let result = store.and_then(|s| read_bag(&s, id, &own_profile)).map(|mut b| {
                b.key = key;
                Box::new(b)
            });
            Reply::Loaded { station, result: result.map_err(ArchiveError::from) }
        })
    }

    /// Search the archive for `station`, off this thread: [`Reply::Found`] brings the rows.
    pub fn search(&mut self, station: usize, q: BagQuery, id: Option<i64>) -> Result<(), ArchiveError> {
        self.read("search", move |store| {
            let result = (|| -> Result<Vec<BagRow>, StoreError> {
                let store = store?;
                let mut rows = store.bags(&q)?;
                if let Some(id) = id
                    && let Ok(row) = store.bag(id)
                    && !rows.iter().any(|r| r.id == id)
                {
                    rows.insert(0, row);
                }
                Ok(rows)
            })();
            Reply::Found { station, result: result.map_err(ArchiveError::from) }
        })
    }

    /// Reads under way.
    pub fn reading(&self) -> bool {
        self.reads.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// A read-only connection (lists, records, searches) beside the writers.
    pub fn reader(&self) -> Result<Store, StoreError> {
        Store::open_read(&self.dir)
    }

    fn bag_ref(&mut self, key: u64, item_id: Option<&str>, fresh: bool) -> BagRef {
        if !fresh && let Some(b) = self.bags.get(&key) {
            return b.clone();
        }
        self.next_serial += 1;
        let b = BagRef {
            serial: self.next_serial,
            scanner_bag: key,
            item_id: item_id.map(str::to_owned),
            at_ms: now_ms(),
        };
        self.bags.insert(key, b.clone());
        b
    }

    fn send(&mut self, job: Job) -> Result<(), ArchiveError> {
        let Some(tx) = &self.jobs else { return Err(ArchiveError::Closed) };
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.problem = Some(ArchiveError::Backlog.to_string());
                Err(ArchiveError::Backlog)
            }
            Err(TrySendError::Disconnected(_)) => Err(ArchiveError::WriterStopped),
        }
    }

    /// Save a bag as a station shows it (its image function, the marks it shows) as a PNG in
    /// `DATA/exports/`, rendered on a thread of its own; the outcome comes back through
    /// [`Archiver::poll`] as [`Reply::View`], audited first.
    pub fn save_view(&mut self, r: ViewRequest) -> Result<(), ArchiveError> {
        let bag = self.bags.get(&r.key).cloned().ok_or(ArchiveError::NotArchived)?;
        let profile = self.shared.profile.clone();
        self.send(Job::SaveView { bag, request: Box::new(r), profile })
    }

    /// Decisions and marks on `key` go to archived bag `archive_id` (a bag of an earlier run,
    /// recalled after a restart).
    pub fn adopt(&mut self, key: u64, archive_id: i64) {
        let b = self.bag_ref(key, None, true);
        self.shared.ids.lock().unwrap_or_else(|e| e.into_inner()).insert(b.serial, archive_id);
        self.ended.insert(key);
    }

    /// Queue a record about bag `key` (entering the bag first when it is not in the archive
    /// yet); its commit comes back from [`Archiver::poll`] under the returned ticket.
    pub fn record(&mut self, key: u64, item_id: Option<&str>, record: Record) -> Result<u64, ArchiveError> {
        let bag = self.bag_ref(key, item_id, false);
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.send(Job::Record { ticket, bag, record })?;
        Ok(ticket)
    }

    /// A batch from the assembler: new bags enter the archive, ended ones go to the scan writer.
    pub fn feed(&mut self, batch: &Batch, calibration: Option<&Calibration>) {
        for span in &batch.bags {
            if span.end_line.is_none() && (!self.bags.contains_key(&span.bag) || self.ended.remove(&span.bag))
            {
                let b = self.bag_ref(span.bag, span.item_id.as_deref(), true);
                let _ = self.send(Job::Begin(b));
            }
        }
        for bag in self.collector.push(batch, calibration) {
            self.ended.insert(bag.span.bag);
            let b = self.bag_ref(bag.span.bag, bag.span.item_id.as_deref(), false);
            let Some(tx) = &self.scans else { continue };
            if let Err(e) = tx.try_send((b, bag)) {
                let (b, _) = e.into_inner();
                let why = "not saved: the archive's disk is too slow (scans queued)".to_string();
                self.problem = Some(format!("bag {}: {why}", b.scanner_bag));
                let _ = self.send(Job::Abandon { bag: b, why });
            }
        }
        self.take_answers();
    }

    fn take_answers(&mut self) {
        while let Ok(a) = self.answers.try_recv() {
            match a {
                Answer::ScanSaved => {
                    self.saved += 1;
                    self.problem = None;
                }
                Answer::Problem(p) => self.problem = p,
                Answer::Public(r) => {
                    if let Reply::Committed { result, .. } = &r {
                        match result {
                            Ok(()) => self.problem = None,
                            Err(e) => self.problem = Some(e.to_string()),
                        }
                    }
                    self.pending_replies.push(r)
                }
            }
        }
    }

    /// Commits and saved views that came back since the last call (never waits).
    pub fn poll(&mut self) -> Vec<Reply> {
        self.take_answers();
        std::mem::take(&mut self.pending_replies)
    }

    /// Logins, logouts, refused logins: audited; a failure shows but blocks nobody.
    pub fn log(&mut self, actor: &str, action: &str, detail: serde_json::Value) {
        let _ = self.send(Job::Log { actor: actor.into(), action: action.into(), detail });
    }

    /// Wait for everything queued so far to be on disk (closing the workstation).
    pub fn close(&mut self) {
        self.log("system", "workstation.close", json!({ "saved": self.saved }));
        // Scans first: a bag still capturing is flagged by the records thread once no scan can
        // come for it.
        self.scans = None;
        if let Some(w) = self.scans_thread.take() {
            let _ = w.join();
        }
        self.jobs = None;
        if let Some(w) = self.records_thread.take() {
            let _ = w.join();
        }
        self.take_answers();
    }
}

impl Drop for Archiver {
    fn drop(&mut self) {
        if self.records_thread.is_some() {
            self.close();
        }
    }
}

/// Everything a screen needs of archived bag `id`: its row, record, scan (checked against its
/// SHA-256) and calibration, and the material table of its scanner when that is not
/// `own_profile`. What opening a bag costs (benches/open_bag.rs).
pub fn read_bag(store: &Store, id: i64, own_profile: &str) -> Result<LoadedBag, StoreError> {
    let row = store.bag(id)?;
    let frame = store.scan(id)?;
    let calibration = store.calibration(id)?;
    let record = store.record(id)?;
    let missing = crate::files::export::missing_flags(&row, frame.lines());
    let (lut, meter) = if row.profile.is_empty() || row.profile == own_profile {
        (None, None)
    } else {
        let bad = |e: String| StoreError::Bad(format!("bag {id}: scanner {}: {e}", row.profile));
        let p = crate::domain::profile::ScannerProfile::load(&row.profile).map_err(|e| bad(e.to_string()))?;
        let lut = crate::domain::material::MaterialLut::for_profile(&p).map_err(|e| bad(e.to_string()))?;
        let meter = crate::domain::measure::Meter::new(&p).map_err(|e| bad(e.to_string()))?;
        (Some(lut), Some(meter))
    };
    Ok(LoadedBag { row, record, frame, calibration, missing, key: None, lut, meter })
}

/// Save one scan on the scan thread (an empty bag is flagged, not saved).
fn save_scan(sh: &Shared, store: &mut Store, bag: &BagRef, scan: &CapturedBag) -> Answer {
    let id = match sh.id_of(store, bag) {
        Ok(id) => id,
        Err(e) => return Answer::Problem(Some(format!("bag {}: {e}", bag.scanner_bag))),
    };
    if scan.frame.lines() == 0 {
        // Bag signals with no line between them: flagged, not an archive fault.
        let _ = store.abandon_bag(id, "the scanner ended the bag before any line", now_ms(), "workstation");
        return Answer::ScanSaved;
    }
    let r = store.finish_bag(
        id,
        &scan.frame,
        &scan.calibration,
        &scan.missing,
        scan.truncated,
        now_ms(),
        "workstation",
    );
    match r {
        Ok(_) => Answer::ScanSaved,
        Err(e) => {
            let _ = store.abandon_bag(id, &format!("not saved: {e}"), now_ms(), "workstation");
            Answer::Problem(Some(format!("bag {id}: {e}")))
        }
    }
}

/// The records thread: bag starts, records and audit entries, in the order they were queued;
/// it ends when the caller closes (drops its sender).
fn records_loop(sh: Arc<Shared>, mut store: Store, jobs: Receiver<Job>, answers: Sender<Answer>) {
    let problem = |r: Result<(), StoreError>| {
        let why = r.err().map(|e| e.to_string());
        if let Some(why) = &why {
            tracing::error!(%why, "archive write failed");
        }
        Answer::Problem(why)
    };
    for job in jobs {
        let answer = match job {
            Job::Begin(bag) => problem(sh.id_of(&mut store, &bag).map(|_| ())),
            Job::Log { actor, action, detail } => problem(store.log(now_ms(), &actor, &action, None, detail)),
            Job::Abandon { bag, why } => {
                let r = sh
                    .id_of(&mut store, &bag)
                    .and_then(|id| store.abandon_bag(id, &why, now_ms(), "workstation"));
                problem(r)
            }
            Job::Record { ticket, bag, record } => {
                let result = sh.id_of(&mut store, &bag).and_then(|id| commit(&mut store, id, &record));
                Answer::Public(Reply::Committed { ticket, result: result.map_err(ArchiveError::from) })
            }
            Job::SaveView { bag, request, profile } => {
                let station = request.station;
                let spawned = sh.id_of(&mut store, &bag).map_err(ArchiveError::from).and_then(|id| {
                    let (dir, tx) = (store.dir().to_path_buf(), answers.clone());
                    std::thread::Builder::new()
                        .name("save view".into())
                        .spawn(move || {
                            let result = render_view(&dir, id, profile, *request);
                            let _ = tx.send(Answer::Public(Reply::View { station, result }));
                        })
                        .map_err(ArchiveError::Thread)
                });
                match spawned {
                    Ok(_) => continue,
                    Err(e) => Answer::Public(Reply::View { station, result: Err(e) }),
                }
            }
        };
        if answers.send(answer).is_err() {
            break;
        }
    }
    // The caller has closed and the scan thread has finished: a bag still capturing will get
    // no scan from this run.
    let ids: Vec<i64> = sh.ids.lock().unwrap_or_else(|e| e.into_inner()).values().copied().collect();
    for id in ids {
        if store.bag(id).is_ok_and(|b| b.state == crate::files::store::BagState::Capturing) {
            let _ =
                store.abandon_bag(id, "the workstation closed before the bag ended", now_ms(), "workstation");
        }
    }
}

/// Render a saved view (on its own thread) and audit it under the one who asked, through a
/// connection of its own.
fn render_view(dir: &Path, id: i64, profile: String, r: ViewRequest) -> Result<PathBuf, ArchiveError> {
    let store = Store::open_read(dir)?;
    let row = store.bag(id)?;
    let name = if row.profile.is_empty() { profile } else { row.profile };
    let prof = crate::domain::profile::ScannerProfile::load(&name)
        .map_err(|e| StoreError::Bad(format!("scanner {name}: {e}")))?;
    let rgba = crate::files::export::view_rgba(&store, id, &prof, &r.view, &r.config, &r.agencies)?;
    let folder = dir.join("exports");
    let file_err = |path: &Path, why: String| ArchiveError::File { path: path.to_path_buf(), why };
    std::fs::create_dir_all(&folder).map_err(|e| file_err(&folder, e.to_string()))?;
    let file = folder.join(format!("bag-{id:08}-{}-{}.png", r.station_name, now_ms()));
    crate::files::io::write_png(&file, &rgba).map_err(|e| file_err(&file, e.to_string()))?;
    let detail = json!({ "file": file.display().to_string(), "station": r.station_name,
                         "marks_of": r.agencies, "view": r.view });
    let mut audit = Store::open_shared(dir)?;
    audit.log(now_ms(), &r.actor, "export.png", Some(id), detail)?;
    Ok(file)
}

fn commit(store: &mut Store, id: i64, record: &Record) -> Result<(), StoreError> {
    match record {
        Record::Decision(d) => store.record_decision(id, d),
        Record::Mark { mark, change, by } => store.save_annotation(id, mark, *change, by, now_ms()),
        Record::DeleteMark { id: mark, by } => store.delete_annotation(id, *mark, by, now_ms()),
        Record::Findings(f) => store.record_findings(id, f),
        Record::Photo { photo, data } => store.record_photo(id, photo, data),
        Record::Training { operator, agency, threat, result, decision_ms } => {
            store.record_training(id, operator, agency, threat.as_deref(), *result, *decision_ms, now_ms())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::profile::ScannerProfile;
    use crate::files::store::BagStart;

    /// A bag scanned on the hub's 160 kV scanner, opened on a 140 kV desk: its colours and its
    /// thickness readout come from the hub scanner's tables, not the desk's.
    #[test]
    fn a_bag_from_another_scanner_is_measured_with_that_scanners_physics() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let n = 8;
        let start = BagStart {
            scanner_bag: 1,
            item_id: None,
            source: "test",
            profile: "hub-160",
            channels: n,
            at_ms: 10,
        };
        let id = store.begin_bag(&start, "test").unwrap();
        let frame = crate::domain::scan::RawFrame::zeros(4, n);
        let calib =
            Calibration::from_tables(vec![100.0; n], vec![110.0; n], vec![6e4; n], vec![6.1e4; n], 65535)
                .unwrap();
        store.finish_bag(id, &frame, &calib, &[], false, 20, "test").unwrap();
        let (hub, desk) =
            (ScannerProfile::load("hub-160").unwrap(), ScannerProfile::load("desk-140").unwrap());
        let on_desk = read_bag(&store, id, &desk.name).unwrap();
        let (lut, meter) = (on_desk.lut.expect("the hub's table"), on_desk.meter.expect("the hub's meter"));
        assert!(read_bag(&store, id, &hub.name).unwrap().meter.is_none(), "its own scanner: the station's");
        // The same attenuations (about 10 mm of steel) read as the scanner that made them says.
        let desk_meter = crate::domain::measure::Meter::new(&desk).unwrap();
        let (a_low, a_high) = (2.4, 1.5);
        let (theirs, ours) = (meter.point(&lut, a_low, a_high), desk_meter.point(&lut, a_low, a_high));
        let (t, o) = (theirs.equivalent.unwrap(), ours.equivalent.unwrap());
        assert_eq!(t.material, o.material);
        assert!(t.mm > o.mm * 1.05, "160 kV gets through more: {} mm vs {} mm at 140 kV", t.mm, o.mm);
    }
}
