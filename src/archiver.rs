//! The workstation's link to the archive: bags enter it when they start, their scans are
//! written by a background thread when they end (the screens never wait for a disk), and
//! decisions, marks and logins are committed before the screen says they are recorded.
//!
//! Owns: [`Archiver`] (the writer store, the scanner-bag to archive-id map of this run, the
//! scan-writer thread), the last archive problem, which both screens show, and saving a
//! station's view of an archived bag as a picture ([`Archiver::save_view`]).
//!
//! Must not import: egui, wgpu, tokio.

use std::collections::HashMap;
use std::path::Path;

use crossbeam_channel::{Receiver, Sender};
use serde_json::json;

use crate::assemble::Batch;
use crate::capture::{BagCollector, CapturedBag};
use crate::domain::calib::Calibration;
use crate::domain::inspection::{Annotation, Decision};
use crate::store::{BagStart, MarkChange, Store, StoreError};

/// Scans waiting for the writer thread; beyond this the newest bag's scan is refused (and
/// flagged) rather than holding unbounded memory.
const SCAN_QUEUE: usize = 16;
/// Longest bag kept whole for archiving, in lines.
const MAX_BAG_LINES: usize = 16_384;

use crate::unix_ms as now_ms;

pub struct Archiver {
    store: Store,
    /// Scanner bag number -> archive id, for the bags of this run.
    ids: HashMap<u64, i64>,
    /// Scanner bag numbers whose bag has ended: a new start under one of them (a scanner that
    /// restarted its numbering) is a new bag.
    ended: std::collections::HashSet<u64>,
    collector: BagCollector,
    scans: Option<Sender<(i64, CapturedBag)>>,
    results: Receiver<Result<i64, String>>,
    writer: Option<std::thread::JoinHandle<()>>,
    source: String,
    profile: String,
    channels: usize,
    /// Scans saved by this run.
    pub saved: u64,
    /// The newest problem (a full disk, a read-only directory), for both screens; cleared by
    /// the next success.
    pub problem: Option<String>,
    views: (Sender<SavedView>, Receiver<SavedView>),
}

/// A station's view saved as a picture ([`Archiver::save_view`]): `(station, result)`.
type SavedView = (usize, Result<(std::path::PathBuf, i64, String, serde_json::Value), String>);

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

impl Archiver {
    /// Open the archive in `dir` for the workstation (`source`, `profile`: what bags record).
    pub fn open(dir: &Path, source: &str, profile: &str, channels: usize) -> Result<Archiver, StoreError> {
        let store = Store::open(dir)?;
        let mut writer_store = store.second_writer()?;
        let (tx, rx) = crossbeam_channel::bounded::<(i64, CapturedBag)>(SCAN_QUEUE);
        let (done_tx, results) = crossbeam_channel::unbounded();
        let writer = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                for (id, bag) in rx {
                    if bag.frame.lines() == 0 {
                        // Bag signals with no line between them: flagged, not an archive fault.
                        let why = "the scanner ended the bag before any line";
                        let _ = writer_store.abandon_bag(id, why, now_ms(), "workstation");
                        if done_tx.send(Ok(id)).is_err() {
                            break;
                        }
                        continue;
                    }
                    let r = writer_store
                        .finish_bag(
                            id,
                            &bag.frame,
                            &bag.calibration,
                            &bag.missing,
                            bag.truncated,
                            now_ms(),
                            "workstation",
                        )
                        .map(|_| id)
                        .map_err(|e| {
                            let _ = writer_store.abandon_bag(
                                id,
                                &format!("not saved: {e}"),
                                now_ms(),
                                "workstation",
                            );
                            format!("bag {id}: {e}")
                        });
                    if done_tx.send(r).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| StoreError::Io { path: dir.display().to_string(), source: e })?;
        Ok(Archiver {
            store,
            ids: HashMap::new(),
            ended: Default::default(),
            collector: BagCollector::new(channels, MAX_BAG_LINES),
            scans: Some(tx),
            results,
            writer: Some(writer),
            source: source.into(),
            profile: profile.into(),
            channels,
            saved: 0,
            problem: None,
            views: crossbeam_channel::unbounded(),
        })
    }

    /// Save a bag as a station shows it (its image function, the marks it shows) as a PNG in
    /// `DATA/exports/`, rendered on a thread of its own; the outcome comes back through
    /// [`Archiver::saved_views`], which also audits it.
    pub fn save_view(&mut self, r: ViewRequest) -> Result<(), String> {
        let id = *self.ids.get(&r.key).ok_or("this bag is not in the archive")?;
        let dir = self.store.dir().to_path_buf();
        let profile = self.profile.clone();
        let tx = self.views.0.clone();
        std::thread::Builder::new()
            .name("save view".into())
            .spawn(move || {
                let out = (|| -> Result<_, String> {
                    let store = Store::open_read(&dir).map_err(|e| e.to_string())?;
                    let row = store.bag(id).map_err(|e| e.to_string())?;
                    let name = if row.profile.is_empty() { profile } else { row.profile };
                    let prof =
                        crate::domain::profile::ScannerProfile::load(&name).map_err(|e| e.to_string())?;
                    let rgba = crate::export::view_rgba(&store, id, &prof, &r.view, &r.config, &r.agencies)
                        .map_err(|e| e.to_string())?;
                    let folder = dir.join("exports");
                    std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
                    let file = folder.join(format!("bag-{id:08}-{}-{}.png", r.station_name, now_ms()));
                    crate::io::write_png(&file, &rgba).map_err(|e| e.to_string())?;
                    let detail = json!({ "file": file.display().to_string(), "station": r.station_name,
                                         "marks_of": r.agencies, "view": r.view });
                    Ok((file, id, r.actor, detail))
                })();
                let _ = tx.send((r.station, out));
            })
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Views saved since the last call, `(station, file or why not)`; each saved one audited.
    pub fn saved_views(&mut self) -> Vec<(usize, Result<std::path::PathBuf, String>)> {
        let done: Vec<SavedView> = self.views.1.try_iter().collect();
        done.into_iter()
            .map(|(station, r)| match r {
                Ok((file, id, actor, detail)) => {
                    let logged = self.store.log(now_ms(), &actor, "export.png", Some(id), detail);
                    (station, self.note(logged).map(|_| file))
                }
                Err(e) => (station, Err(e)),
            })
            .collect()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn note<T>(&mut self, r: Result<T, StoreError>) -> Result<T, String> {
        match r {
            Ok(v) => {
                self.problem = None;
                Ok(v)
            }
            Err(e) => {
                let m = e.to_string();
                self.problem = Some(m.clone());
                Err(m)
            }
        }
    }

    /// Decisions and marks on `key` go to archived bag `archive_id` (a bag of an earlier run,
    /// recalled after a restart).
    pub fn adopt(&mut self, key: u64, archive_id: i64) {
        self.ids.insert(key, archive_id);
        self.ended.insert(key);
    }

    /// The archive id of a bag of this run, entering it when it is not there yet.
    pub fn id_of(&mut self, scanner_bag: u64, item_id: Option<&str>) -> Result<i64, String> {
        if let Some(id) = self.ids.get(&scanner_bag) {
            return Ok(*id);
        }
        let start = BagStart {
            scanner_bag,
            item_id,
            source: &self.source,
            profile: &self.profile,
            channels: self.channels,
            at_ms: now_ms(),
        };
        let r = self.store.begin_bag(&start, "workstation");
        let id = self.note(r)?;
        self.ids.insert(scanner_bag, id);
        Ok(id)
    }

    /// A batch from the assembler: new bags enter the archive, ended ones go to the writer.
    pub fn feed(&mut self, batch: &Batch, calibration: Option<&Calibration>) {
        for span in &batch.bags {
            if span.end_line.is_none() && (!self.ids.contains_key(&span.bag) || self.ended.remove(&span.bag))
            {
                self.ids.remove(&span.bag);
                let _ = self.id_of(span.bag, span.item_id.as_deref());
            }
        }
        for bag in self.collector.push(batch, calibration) {
            self.ended.insert(bag.span.bag);
            let Ok(id) = self.id_of(bag.span.bag, bag.span.item_id.as_deref()) else { continue };
            let Some(tx) = &self.scans else { continue };
            if let Err(e) = tx.try_send((id, bag)) {
                let why = "not saved: the archive's disk is too slow (scans queued)".to_string();
                let (id, _) = e.into_inner();
                let r = self.store.abandon_bag(id, &why, now_ms(), "workstation");
                let _ = self.note(r);
                self.problem = Some(format!("bag {id}: {why}"));
            }
        }
        while let Ok(r) = self.results.try_recv() {
            match r {
                Ok(_) => {
                    self.saved += 1;
                    self.problem = None;
                }
                Err(e) => self.problem = Some(e),
            }
        }
    }

    pub fn record_decision(
        &mut self,
        scanner_bag: u64,
        item_id: Option<&str>,
        d: &Decision,
    ) -> Result<(), String> {
        let id = self.id_of(scanner_bag, item_id)?;
        let r = self.store.record_decision(id, d);
        self.note(r)
    }

    pub fn save_mark(
        &mut self,
        scanner_bag: u64,
        item_id: Option<&str>,
        a: &Annotation,
        change: MarkChange,
        by: &str,
    ) -> Result<(), String> {
        let id = self.id_of(scanner_bag, item_id)?;
        let r = self.store.save_annotation(id, a, change, by, now_ms());
        self.note(r)
    }

    pub fn delete_mark(
        &mut self,
        scanner_bag: u64,
        item_id: Option<&str>,
        mark: u64,
        by: &str,
    ) -> Result<(), String> {
        let id = self.id_of(scanner_bag, item_id)?;
        let r = self.store.delete_annotation(id, mark, by, now_ms());
        self.note(r)
    }

    /// A trainee's result on a bag (training replays).
    #[allow(clippy::too_many_arguments)]
    pub fn record_training(
        &mut self,
        key: u64,
        item_id: Option<&str>,
        operator: &str,
        agency: &str,
        threat: Option<&str>,
        result: crate::domain::tip::TrainingResult,
        decision_ms: u64,
    ) -> Result<(), String> {
        let id = self.id_of(key, item_id)?;
        let r = self.store.record_training(id, operator, agency, threat, result, decision_ms, now_ms());
        self.note(r)
    }

    /// Logins, logouts, refused logins: audited; a failure shows but blocks nobody.
    pub fn log(&mut self, actor: &str, action: &str, detail: serde_json::Value) {
        let r = self.store.log(now_ms(), actor, action, None, detail);
        let _ = self.note(r);
    }

    /// Wait for the scans already queued (closing the workstation).
    pub fn close(&mut self) {
        self.scans = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        let ids: Vec<i64> = self.ids.drain().map(|(_, id)| id).collect();
        for id in ids {
            if self.store.bag(id).is_ok_and(|b| b.state == crate::store::BagState::Capturing) {
                let _ = self.store.abandon_bag(
                    id,
                    "the workstation closed before the bag ended",
                    now_ms(),
                    "workstation",
                );
            }
        }
        self.log("system", "workstation.close", json!({ "saved": self.saved }));
    }
}

impl Drop for Archiver {
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.close();
        }
    }
}
