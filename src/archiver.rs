//! The workstation's link to the archive: bags enter it when they start, their scans are
//! written by a background thread when they end (the screens never wait for a disk), and
//! decisions, marks and logins are committed before the screen says they are recorded.
//!
//! Owns: [`Archiver`] (the writer store, the scanner-bag to archive-id map of this run, the
//! scan-writer thread) and the last archive problem, which both screens show.
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
        })
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
