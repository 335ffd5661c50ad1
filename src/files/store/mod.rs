//! The archive: every bag, decision, mark and operator action, kept so that nothing acknowledged
//! is lost when the process is killed, the disk fills or the directory turns read-only.
//!
//! Owns: the data directory's layout (`archive.sqlite` in WAL mode with `synchronous=FULL`,
//! `scans/bag-NNNNNNNN.tiff` two-page raw scans, `twinspect.lock`), the schema and its
//! migrations (`PRAGMA user_version`), the writer lock (one writing process per directory),
//! recovery of bags a crash left half captured, search, and the hash-chained audit trail
//! ([`audit`]). A call returns `Ok` only after its transaction is committed to disk, so a caller
//! shows a record as saved only then.
//!
//! Must not import: egui, wgpu, tokio, the sources (it stores what it is given).

pub mod audit;
mod desk_outbox;
mod hub_inbox;

pub use desk_outbox::{OnHub, UnsentDecision};
pub use hub_inbox::{HubBag, HubChanged, HubDecided};

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::json;

use crate::domain::calib::Calibration;
use crate::domain::inspection::{Annotation, BagRecord, Decision, Findings, Photo, Shape};
use crate::domain::scan::RawFrame;

/// The database file inside the data directory.
pub const DB_FILE: &str = "archive.sqlite";
/// Raw scans, one two-page TIFF per bag.
pub const SCANS_DIR: &str = "scans";
const LOCK_FILE: &str = "twinspect.lock";

/// The schema version this Twinspect writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Schema versions, in order; `PRAGMA user_version` counts those applied. Never edit one that
/// has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: bags, decisions, marks, the audit trail and its head.
    r#"
    CREATE TABLE bags (
        id INTEGER PRIMARY KEY,
        scanner_bag INTEGER NOT NULL,
        item_id TEXT,
        source TEXT NOT NULL,
        profile TEXT NOT NULL,
        channels INTEGER NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        lines INTEGER,
        missing_rows TEXT,
        truncated INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ('capturing', 'complete', 'partial')),
        note TEXT,
        scan_file TEXT,
        scan_sha256 TEXT,
        calibration TEXT
    );
    CREATE INDEX bags_started ON bags (started_ms);
    CREATE INDEX bags_item ON bags (item_id);
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        bag INTEGER NOT NULL REFERENCES bags (id),
        agency TEXT NOT NULL,
        code TEXT NOT NULL,
        operator TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        reason TEXT
    );
    CREATE INDEX decisions_bag ON decisions (bag);
    CREATE TABLE annotations (
        bag INTEGER NOT NULL REFERENCES bags (id),
        id INTEGER NOT NULL,
        agency TEXT NOT NULL,
        operator TEXT NOT NULL,
        shape TEXT NOT NULL,
        category TEXT NOT NULL,
        note TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        edited_ms INTEGER,
        deleted_ms INTEGER,
        PRIMARY KEY (bag, id)
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        bag INTEGER,
        detail TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE audit_head (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    "#,
    // 2: training results (threat image projection).
    r#"
    CREATE TABLE training (
        id INTEGER PRIMARY KEY,
        bag INTEGER NOT NULL REFERENCES bags (id),
        operator TEXT NOT NULL,
        agency TEXT NOT NULL,
        threat TEXT,
        result TEXT NOT NULL CHECK (result IN ('hit', 'miss', 'false_alarm', 'correct_reject')),
        decision_ms INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX training_operator ON training (operator, at_ms);
    "#,
    // 3: each agency's findings at the joint opening.
    r#"
    CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        bag INTEGER NOT NULL REFERENCES bags (id),
        agency TEXT NOT NULL,
        operator TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        items TEXT NOT NULL,
        treatment TEXT
    );
    CREATE INDEX findings_bag ON findings (bag, id);
    "#,
    // 4: photos taken at the opening, their bytes with them (one row per distinct photo of a bag).
    r#"
    CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        bag INTEGER NOT NULL REFERENCES bags (id),
        agency TEXT NOT NULL,
        operator TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        mime TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        data BLOB NOT NULL,
        UNIQUE (bag, sha256)
    );
    "#,
    // 5: the hub's outbox: a complete bag with no row here has not yet reached the broker.
    r#"
    CREATE TABLE published (
        bag INTEGER PRIMARY KEY REFERENCES bags (id),
        at_ms INTEGER NOT NULL,
        subject TEXT NOT NULL,
        stream_seq INTEGER NOT NULL
    );
    "#,
    // 6: a hub line's barcode reader: the code joined to each bag (NULL: no read matched it).
    r#"
    CREATE TABLE barcodes (
        bag INTEGER PRIMARY KEY REFERENCES bags (id),
        code TEXT,
        at_ms INTEGER NOT NULL
    );
    "#,
    // 7: a hub node's findings outbox: a findings row with no row here has not yet reached the
    // hub's records.
    r#"
    CREATE TABLE findings_sent (
        findings INTEGER PRIMARY KEY REFERENCES findings (id),
        at_ms INTEGER NOT NULL
    );
    "#,
    // 8: a central screening workstation's hub inbox (`run --hub`): the hub's bags taken into
    // this archive (the node's line, node and bag id; the scan is the hub's, byte for byte), and
    // each agency's decision on one once it is on the hub.
    r#"
    CREATE TABLE hub_taken (
        bag INTEGER PRIMARY KEY REFERENCES bags (id),
        line TEXT NOT NULL,
        node TEXT NOT NULL,
        hub_bag INTEGER NOT NULL,
        UNIQUE (line, node, hub_bag)
    );
    CREATE TABLE hub_decided (
        bag INTEGER NOT NULL REFERENCES hub_taken (bag),
        agency TEXT NOT NULL,
        code TEXT NOT NULL,
        operator TEXT NOT NULL,
        elsewhere INTEGER NOT NULL,
        stream_seq INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (bag, agency)
    );
    "#,
    // 9: a publishing desk's decisions outbox (`run --hub --publish`): each agency's decision on
    // a bag the desk published goes to the hub once; `hub_code` is the code the hub holds (the
    // desk's, or another the hub had first). `desk_publishing`: the archive's last bag when the
    // desk first published; the bags before it stay the desk's own.
    r#"
    CREATE TABLE decisions_sent (
        bag INTEGER NOT NULL REFERENCES bags (id),
        agency TEXT NOT NULL,
        decision INTEGER NOT NULL REFERENCES decisions (id),
        stream_seq INTEGER NOT NULL,
        hub_code TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (bag, agency)
    );
    CREATE INDEX decisions_bag_agency ON decisions (bag, agency, id);
    CREATE TABLE desk_publishing (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        since_bag INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    "#,
    // 10: a central screening workstation tells a decision changed after it reached the hub by
    // `hub_decided.at_ms`, now the time of the decision in force here that the hub holds. Rows
    // of earlier versions held the time it was sent: they take the decision in force now (a
    // change made before this version stays here, as the workstation said it would).
    r#"
    UPDATE hub_decided SET at_ms = COALESCE((SELECT d.at_ms FROM decisions d WHERE d.id =
        (SELECT MAX(e.id) FROM decisions e WHERE e.bag = hub_decided.bag AND e.agency = hub_decided.agency)),
        at_ms);
    "#,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the archive's disk is full ({path}): free space, then retry; nothing already saved is lost")]
    DiskFull { path: String },
    #[error("the archive at {path} cannot be written (read-only or no permission): {message}")]
    ReadOnly { path: String, message: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("archive database {path}: {source}")]
    Db { path: String, source: rusqlite::Error },
    #[error("{path} was written by a newer Twinspect (schema {found}; this one knows up to {known})")]
    NewerSchema { path: String, found: u32, known: u32 },
    #[error("another Twinspect is writing to {path}{holder}; one writer per data directory")]
    Busy { path: String, holder: String },
    #[error("no archive at {0} (capture or run the workstation with --data first)")]
    Missing(String),
    #[error("no bag {0} in the archive")]
    NoSuchBag(i64),
    #[error("bag {id} is {state}; only a bag being captured can be finished")]
    NotCapturing { id: i64, state: String },
    #[error("{0}")]
    Bad(String),
}

impl StoreError {
    /// A full disk or an unwritable directory: the operator can fix it, and the screens say so.
    pub fn is_disk_problem(&self) -> bool {
        matches!(self, StoreError::DiskFull { .. } | StoreError::ReadOnly { .. })
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        use std::io::ErrorKind;
        let p = path.display().to_string();
        match source.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => StoreError::DiskFull { path: p },
            ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied => {
                StoreError::ReadOnly { path: p, message: source.to_string() }
            }
            _ => StoreError::Io { path: p, source },
        }
    }

    fn db(path: &Path, source: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let p = path.display().to_string();
        match source.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path: p },
            Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) | Some(ErrorCode::CannotOpen) => {
                StoreError::ReadOnly { path: p, message: source.to_string() }
            }
            _ => StoreError::Db { path: p, source },
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Where a bag stands in the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BagState {
    /// Lines are coming in (or the process died while they were: see [`Store::open`]).
    Capturing,
    /// The whole bag and its scan file are saved.
    Complete,
    /// The capture was interrupted; `note` says what is kept.
    Partial,
}

impl BagState {
    fn parse(s: &str) -> BagState {
        match s {
            "complete" => BagState::Complete,
            "partial" => BagState::Partial,
            _ => BagState::Capturing,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BagState::Capturing => "capturing",
            BagState::Complete => "complete",
            BagState::Partial => "partial",
        }
    }
}

/// A new bag, as the stream announced it.
#[derive(Clone, Debug)]
pub struct BagStart<'a> {
    pub scanner_bag: u64,
    pub item_id: Option<&'a str>,
    pub source: &'a str,
    pub profile: &'a str,
    pub channels: usize,
    pub at_ms: u64,
}

/// A bag as the archive lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BagRow {
    /// The archive's own id (scanner bag numbers restart with the scanner).
    pub id: i64,
    pub scanner_bag: u64,
    pub item_id: Option<String>,
    pub source: String,
    pub profile: String,
    pub channels: usize,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    pub lines: Option<usize>,
    pub missing_rows: Vec<usize>,
    pub truncated: bool,
    pub state: BagState,
    pub note: Option<String>,
    /// Relative to the data directory.
    pub scan_file: Option<String>,
    pub scan_sha256: Option<String>,
}

/// One training result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingRow {
    pub bag: i64,
    pub agency: String,
    pub threat: Option<String>,
    pub result: crate::domain::tip::TrainingResult,
    pub decision_ms: u64,
    pub at_ms: u64,
}

/// Search terms for [`Store::bags`]; every one given must match.
#[derive(Clone, Debug, Default)]
pub struct BagQuery {
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    /// Parcel barcode or baggage tag (exact).
    pub item_id: Option<String>,
    /// Someone who decided on or marked the bag.
    pub operator: Option<String>,
    /// An agency that decided on or marked the bag.
    pub agency: Option<String>,
    /// A decision code in force or ever recorded.
    pub decision: Option<String>,
    /// A category of a mark (deleted marks excluded).
    pub category: Option<String>,
    /// Newest first, at most this many (0: all).
    pub limit: usize,
}

/// A change to a mark, for [`Store::save_annotation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkChange {
    Added,
    Edited,
}

/// The archive in one data directory.
pub struct Store {
    conn: Connection,
    dir: PathBuf,
    db_path: PathBuf,
    /// Held while this process may write (flock, released by the kernel when the process
    /// dies); shared by every writing connection of this process, so it holds while any lives.
    _lock: Option<std::sync::Arc<std::fs::File>>,
    /// Bags a crash had left half captured, flagged when this store was opened.
    pub recovered: Vec<i64>,
}

use crate::unix_ms as now_ms;

/// Make a rename or a new file in `dir` survive a power cut.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|e| StoreError::io(dir, e))
}

fn take_lock(dir: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared with the kernel.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let mut holder = String::new();
        let _ = f.read_to_string(&mut holder);
        let holder = holder.trim();
        let holder = if holder.is_empty() { String::new() } else { format!(" (process {holder})") };
        return Err(StoreError::Busy { path: dir.display().to_string(), holder });
    }
    let _ = f.set_len(0);
    let _ = f.seek(std::io::SeekFrom::Start(0));
    let _ = write!(f, "{}", std::process::id());
    Ok(f)
}

impl Store {
    /// Open (creating it when new) the archive in `dir` for writing: takes the directory's writer
    /// lock, brings the schema up to date, and flags bags a crash left half captured (listed in
    /// [`Store::recovered`], each with an audit entry).
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir.join(SCANS_DIR)).map_err(|e| StoreError::io(dir, e))?;
        let lock = take_lock(dir)?;
        let db_path = dir.join(DB_FILE);
        let conn = Connection::open(&db_path).map_err(|e| StoreError::db(&db_path, e))?;
        let mut store = Store {
            conn,
            dir: dir.to_path_buf(),
            db_path,
            _lock: Some(std::sync::Arc::new(lock)),
            recovered: Vec::new(),
        };
        store.configure(true)?;
        store.migrate()?;
        store.recover()?;
        Ok(store)
    }

    /// Open an existing archive to read (listing, search, audit verification) while a
    /// workstation may be writing to it: no lock, no recovery, no schema change.
    pub fn open_read(dir: &Path) -> Result<Store> {
        let db_path = dir.join(DB_FILE);
        if !db_path.exists() {
            return Err(StoreError::Missing(dir.display().to_string()));
        }
        let conn = Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| StoreError::db(&db_path, e))?;
        let store = Store { conn, dir: dir.to_path_buf(), db_path, _lock: None, recovered: Vec::new() };
        store.configure(false)?;
        let v = store.schema_version()?;
        if v as usize > MIGRATIONS.len() {
            return Err(StoreError::NewerSchema {
                path: store.db_path.display().to_string(),
                found: v,
                known: MIGRATIONS.len() as u32,
            });
        }
        Ok(store)
    }

    /// Another writing connection to the same archive for a thread of this process (which
    /// holds the directory's lock); SQLite serialises the two writers.
    pub fn second_writer(&self) -> Result<Store> {
        if self._lock.is_none() {
            return Err(StoreError::Bad("a read-only archive has no second writer".into()));
        }
        let conn = Connection::open(&self.db_path).map_err(|e| self.e(e))?;
        let s = Store {
            conn,
            dir: self.dir.clone(),
            db_path: self.db_path.clone(),
            _lock: self._lock.clone(),
            recovered: Vec::new(),
        };
        s.configure(true)?;
        Ok(s)
    }

    /// Open an existing archive to add audit entries (an export, from another process while a
    /// workstation may be writing): no lock, no recovery; the schema must be this version's.
    pub fn open_shared(dir: &Path) -> Result<Store> {
        let db_path = dir.join(DB_FILE);
        if !db_path.exists() {
            return Err(StoreError::Missing(dir.display().to_string()));
        }
        let conn = Connection::open(&db_path).map_err(|e| StoreError::db(&db_path, e))?;
        let store = Store { conn, dir: dir.to_path_buf(), db_path, _lock: None, recovered: Vec::new() };
        store.configure(true)?;
        let (found, known) = (store.schema_version()?, MIGRATIONS.len() as u32);
        if found != known {
            return Err(StoreError::Bad(format!(
                "{}: schema {found}, this Twinspect writes {known}: open it with the workstation or capture first",
                store.db_path.display()
            )));
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn e(&self, err: rusqlite::Error) -> StoreError {
        StoreError::db(&self.db_path, err)
    }

    fn configure(&self, write: bool) -> Result<()> {
        let c = &self.conn;
        c.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| self.e(e))?;
        if write {
            // WAL: readers (`twinspect bags`) never block the workstation; FULL: a commit is on
            // the disk before the call returns, so an acknowledged record survives a power cut.
            let mode: String =
                c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| self.e(e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Bad(format!(
                    "{}: journal mode {mode}, not WAL",
                    self.db_path.display()
                )));
            }
            c.pragma_update(None, "synchronous", "FULL").map_err(|e| self.e(e))?;
        }
        c.pragma_update(None, "foreign_keys", "ON").map_err(|e| self.e(e))?;
        Ok(())
    }

    pub fn schema_version(&self) -> Result<u32> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.e(e))
    }

    fn migrate(&mut self) -> Result<()> {
        let found = self.schema_version()?;
        let known = MIGRATIONS.len() as u32;
        if found > known {
            return Err(StoreError::NewerSchema { path: self.db_path.display().to_string(), found, known });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| StoreError::db(&self.db_path, e))?;
            tx.execute_batch(sql).map_err(|e| StoreError::db(&self.db_path, e))?;
            tx.pragma_update(None, "user_version", (i + 1) as u32)
                .map_err(|e| StoreError::db(&self.db_path, e))?;
            audit::append(
                &tx,
                now_ms(),
                "system",
                "schema.migrate",
                None,
                &json!({ "from": i, "to": i + 1 }),
            )
            .map_err(|e| StoreError::db(&self.db_path, e))?;
            tx.commit().map_err(|e| StoreError::db(&self.db_path, e))?;
        }
        Ok(())
    }

    /// Bags still `capturing` when the writer opens belonged to a process that died: flag them
    /// partial, keeping a scan file that reached the disk, and say so in the audit trail.
    fn recover(&mut self) -> Result<()> {
        let scans = self.dir.join(SCANS_DIR);
        // Half-written scan files (never renamed into place) are not scans.
        if let Ok(rd) = std::fs::read_dir(&scans) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(".part") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let ids: Vec<i64> = {
            let mut st = self
                .conn
                .prepare("SELECT id FROM bags WHERE state = 'capturing' ORDER BY id")
                .map_err(|e| self.e(e))?;
            let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.e(e))?;
            rows.collect::<std::result::Result<_, _>>().map_err(|e| self.e(e))?
        };
        for id in ids {
            let rel = scan_rel(id);
            let path = self.dir.join(&rel);
            let kept = match std::fs::read(&path) {
                Ok(bytes) => {
                    crate::files::io::read_raw_tiff(&path).ok().map(|f| (f.lines(), hex_sha256(&bytes)))
                }
                Err(_) => None,
            };
            let db = self.db_path.clone();
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| StoreError::db(&db, e))?;
            let note = match &kept {
                Some(_) => "capture interrupted after the scan was saved; image kept, lost-line list unknown",
                None => "capture interrupted before the bag ended; no image kept",
            };
            match &kept {
                Some((lines, sha)) => tx.execute(
                    "UPDATE bags SET state = 'partial', note = ?2, lines = ?3, scan_file = ?4, scan_sha256 = ?5 WHERE id = ?1",
                    params![id, note, *lines as i64, rel, sha],
                ),
                None => tx.execute("UPDATE bags SET state = 'partial', note = ?2 WHERE id = ?1", params![id, note]),
            }
            .map_err(|e| StoreError::db(&db, e))?;
            audit::append(&tx, now_ms(), "system", "bag.recovered", Some(id), &json!({ "note": note }))
                .map_err(|e| StoreError::db(&db, e))?;
            tx.commit().map_err(|e| StoreError::db(&db, e))?;
            self.recovered.push(id);
        }
        Ok(())
    }

    /// Run `f` in one transaction, committed (on disk) before this returns. IMMEDIATE: the write
    /// lock is taken at the start, so a second writer (the workstation's scan thread) waits its
    /// turn instead of failing with a stale snapshot after reading the audit head.
    fn write<T>(&mut self, f: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>) -> Result<T> {
        let db = self.db_path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::db(&db, e))?;
        let v = f(&tx).map_err(|e| StoreError::db(&db, e))?;
        tx.commit().map_err(|e| StoreError::db(&db, e))?;
        Ok(v)
    }

    /// An audit entry on its own (login, logout, export, configuration change).
    pub fn log(
        &mut self,
        at_ms: u64,
        actor: &str,
        action: &str,
        bag: Option<i64>,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.write(|tx| audit::append(tx, at_ms, actor, action, bag, &detail))
    }

    /// A bag has started: it is in the archive (as `capturing`) from now on.
    pub fn begin_bag(&mut self, b: &BagStart, actor: &str) -> Result<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO bags (scanner_bag, item_id, source, profile, channels, started_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'capturing')",
                params![
                    b.scanner_bag as i64,
                    b.item_id,
                    b.source,
                    b.profile,
                    b.channels as i64,
                    b.at_ms as i64
                ],
            )?;
            let id = tx.last_insert_rowid();
            audit::append(
                tx,
                b.at_ms,
                actor,
                "bag.begin",
                Some(id),
                &json!({ "scanner_bag": b.scanner_bag, "item_id": b.item_id, "source": b.source }),
            )?;
            Ok(id)
        })
    }

    /// The bag has ended: its scan goes to `scans/` (complete or absent, synced), then the record
    /// says complete with the file's SHA-256, in one transaction with its audit entry.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_bag(
        &mut self,
        id: i64,
        frame: &RawFrame,
        calibration: &Calibration,
        missing_rows: &[usize],
        truncated: bool,
        at_ms: u64,
        actor: &str,
    ) -> Result<BagRow> {
        let row = self.bag(id)?;
        if row.state != BagState::Capturing {
            return Err(StoreError::NotCapturing { id, state: row.state.as_str().into() });
        }
        if frame.channels() != row.channels {
            return Err(StoreError::Bad(format!(
                "bag {id}: {} channels in the scan, {} when it began",
                frame.channels(),
                row.channels
            )));
        }
        let rel = scan_rel(id);
        let path = self.dir.join(&rel);
        let desc =
            format!("twinspect archive bag {id}; scanner bag {}; profile={}", row.scanner_bag, row.profile);
        let bytes = crate::files::io::encode_raw_tiff(&path, frame, &desc)
            .map_err(|e| StoreError::Bad(e.to_string()))?;
        let sha = hex_sha256(&bytes);
        write_synced(&path, &bytes)?;
        let calib = calibration_json(calibration);
        let done = Complete {
            id,
            ended_ms: at_ms,
            lines: frame.lines(),
            missing_rows,
            truncated,
            rel: &rel,
            sha: &sha,
            calibration: &calib,
        };
        self.write(|tx| done.apply(tx, at_ms, actor, "bag.complete", json!({})))?;
        self.bag(id)
    }

    /// A bag that will not be finished (the capture stopped first): flagged partial with `why`.
    pub fn abandon_bag(&mut self, id: i64, why: &str, at_ms: u64, actor: &str) -> Result<()> {
        let n = self.write(|tx| {
            let n = tx.execute(
                "UPDATE bags SET state = 'partial', note = ?2, ended_ms = ?3 WHERE id = ?1 AND state = 'capturing'",
                params![id, why, at_ms as i64],
            )?;
            if n == 1 {
                audit::append(tx, at_ms, actor, "bag.abandoned", Some(id), &json!({ "note": why }))?;
            }
            Ok(n)
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::NotCapturing { id, state: self.bag(id)?.state.as_str().into() })
        }
    }

    /// A decision, committed with its audit entry (a change of decision carries its reason).
    pub fn record_decision(&mut self, bag: i64, d: &Decision) -> Result<()> {
        self.bag(bag)?;
        self.write(|tx| insert_decision(tx, bag, d))
    }

    /// `agency`'s current decision on bag `bag` (its latest), if any: one indexed read, for a
    /// caller that watches for it.
    pub fn current_decision(&self, bag: i64, agency: &str) -> Result<Option<Decision>> {
        self.conn
            .query_row(
                "SELECT agency, code, operator, at_ms, reason FROM decisions WHERE bag = ?1 AND agency = ?2
                 ORDER BY id DESC LIMIT 1",
                params![bag, agency],
                decision_row,
            )
            .optional()
            .map_err(|e| self.e(e))
    }

    /// A decision taken elsewhere (at a hub station) with the marks its operator made there,
    /// committed together with their audit entries; the marks get this archive's next ids.
    pub fn record_decision_with_marks(&mut self, bag: i64, d: &Decision, marks: &[Annotation]) -> Result<()> {
        self.bag(bag)?;
        self.write(|tx| {
            insert_decision(tx, bag, d)?;
            let mut id: i64 =
                tx.query_row("SELECT COALESCE(MAX(id), 0) FROM annotations WHERE bag = ?1", params![bag], |r| {
                    r.get(0)
                })?;
            for a in marks {
                id += 1;
                let shape = serde_json::to_string(&a.shape).expect("shapes serialise");
                tx.execute(
                    "INSERT INTO annotations (bag, id, agency, operator, shape, category, note, created_ms, edited_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)",
                    params![bag, id, a.agency, a.operator, shape, a.category, a.note, a.created_ms as i64],
                )?;
                audit::append(
                    tx,
                    a.created_ms,
                    &a.operator,
                    "mark.add",
                    Some(bag),
                    &json!({ "mark": id, "agency": a.agency, "category": a.category, "note": a.note,
                             "shape": a.shape, "from": "hub" }),
                )?;
            }
            Ok(())
        })
    }

    /// A mark added or edited, committed with its audit entry.
    pub fn save_annotation(
        &mut self,
        bag: i64,
        a: &Annotation,
        change: MarkChange,
        by: &str,
        at_ms: u64,
    ) -> Result<()> {
        self.bag(bag)?;
        let shape = serde_json::to_string(&a.shape).expect("shapes serialise");
        self.write(|tx| {
            let action = match change {
                MarkChange::Added => {
                    tx.execute(
                        "INSERT INTO annotations (bag, id, agency, operator, shape, category, note, created_ms, edited_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![bag, a.id as i64, a.agency, a.operator, shape, a.category, a.note,
                                a.created_ms as i64, a.edited_ms.map(|v| v as i64)],
                    )?;
                    "mark.add"
                }
                MarkChange::Edited => {
                    let n = tx.execute(
                        "UPDATE annotations SET shape = ?3, category = ?4, note = ?5, edited_ms = ?6
                         WHERE bag = ?1 AND id = ?2 AND deleted_ms IS NULL",
                        params![bag, a.id as i64, shape, a.category, a.note, at_ms as i64],
                    )?;
                    if n != 1 {
                        return Err(rusqlite::Error::QueryReturnedNoRows);
                    }
                    "mark.edit"
                }
            };
            audit::append(
                tx,
                at_ms,
                by,
                action,
                Some(bag),
                &json!({ "mark": a.id, "agency": a.agency, "category": a.category, "note": a.note, "shape": a.shape }),
            )
        })
    }

    /// A mark removed (kept in the archive as deleted, with who and when in the audit trail).
    pub fn delete_annotation(&mut self, bag: i64, id: u64, by: &str, at_ms: u64) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE annotations SET deleted_ms = ?3 WHERE bag = ?1 AND id = ?2 AND deleted_ms IS NULL",
                params![bag, id as i64, at_ms as i64],
            )?;
            if n != 1 {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            }
            audit::append(tx, at_ms, by, "mark.delete", Some(bag), &json!({ "mark": id }))
        })
    }

    /// An agency's findings at the bag's opening, committed with its audit entry.
    pub fn record_findings(&mut self, bag: i64, f: &Findings) -> Result<()> {
        self.bag(bag)?;
        let items = serde_json::to_string(&f.items).expect("findings serialise");
        self.write(|tx| {
            tx.execute(
                "INSERT INTO findings (bag, agency, operator, at_ms, items, treatment) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![bag, f.agency, f.operator, f.at_ms as i64, items, f.treatment],
            )?;
            audit::append(
                tx,
                f.at_ms,
                &f.operator,
                "findings",
                Some(bag),
                &json!({ "agency": f.agency, "items": f.items, "treatment": f.treatment }),
            )
        })
    }

    /// A photo taken at the opening, its bytes and its audit entry (size and SHA-256, not the
    /// bytes) in one transaction. The same photo again (a redelivered upload) changes nothing.
    pub fn record_photo(&mut self, bag: i64, p: &Photo, data: &[u8]) -> Result<()> {
        self.bag(bag)?;
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO photos (bag, agency, operator, at_ms, mime, width, height, sha256, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![bag, p.agency, p.operator, p.at_ms as i64, p.mime, p.width, p.height, p.sha256, data],
            )?;
            if n == 0 {
                return Ok(());
            }
            audit::append(
                tx,
                p.at_ms,
                &p.operator,
                "photo",
                Some(bag),
                &json!({ "agency": p.agency, "mime": p.mime, "width": p.width, "height": p.height,
                         "size": data.len(), "sha256": p.sha256 }),
            )
        })
    }

    /// A photo's type and bytes, by the bag and the photo's SHA-256.
    pub fn photo(&self, bag: i64, sha256: &str) -> Result<Option<(String, Vec<u8>)>> {
        self.conn
            .query_row(
                "SELECT mime, data FROM photos WHERE bag = ?1 AND sha256 = ?2",
                params![bag, sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.e(e))
    }

    /// A trainee's result on a bag, committed with its audit entry.
    #[allow(clippy::too_many_arguments)]
    pub fn record_training(
        &mut self,
        bag: i64,
        operator: &str,
        agency: &str,
        threat: Option<&str>,
        result: crate::domain::tip::TrainingResult,
        decision_ms: u64,
        at_ms: u64,
    ) -> Result<()> {
        self.bag(bag)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO training (bag, operator, agency, threat, result, decision_ms, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![bag, operator, agency, threat, result.as_str(), decision_ms as i64, at_ms as i64],
            )?;
            audit::append(
                tx,
                at_ms,
                operator,
                "training.result",
                Some(bag),
                &json!({ "agency": agency, "threat": threat, "result": result.as_str(), "decision_ms": decision_ms }),
            )
        })
    }

    /// An operator's training results, oldest first.
    pub fn training(&self, operator: &str) -> Result<Vec<TrainingRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT bag, agency, threat, result, decision_ms, at_ms FROM training WHERE operator = ?1 ORDER BY at_ms, id",
            )
            .map_err(|e| self.e(e))?;
        let rows = st
            .query_map([operator], |r| {
                let result: String = r.get(3)?;
                Ok(TrainingRow {
                    bag: r.get(0)?,
                    agency: r.get(1)?,
                    threat: r.get(2)?,
                    result: crate::domain::tip::TrainingResult::parse(&result)
                        .unwrap_or(crate::domain::tip::TrainingResult::Miss),
                    decision_ms: r.get::<_, i64>(4)? as u64,
                    at_ms: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(|e| self.e(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.e(e))
    }

    /// The outbox: complete bags not yet acknowledged by the hub's broker, oldest first, at most
    /// `limit` (partial bags have no scan and never leave; bags taken from the hub are the hub's
    /// already and never go back as this archive's own).
    pub fn unpublished(&self, limit: usize) -> Result<Vec<BagRow>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM bags b WHERE b.state = 'complete'
                 AND NOT EXISTS (SELECT 1 FROM published p WHERE p.bag = b.id)
                 AND NOT EXISTS (SELECT 1 FROM hub_taken h WHERE h.bag = b.id) ORDER BY b.id LIMIT ?1",
                prefixed_columns()
            ))
            .map_err(|e| self.e(e))?;
        let rows = st.query_map([limit as i64], bag_row).map_err(|e| self.e(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.e(e))
    }

    /// The broker has acknowledged bag `bag` as message `stream_seq` on `subject` (`already`: it
    /// held it from an earlier run that stopped before saying so here). Recorded once, with its
    /// audit entry; a second call for the same bag changes nothing.
    pub fn mark_published(
        &mut self,
        bag: i64,
        subject: &str,
        stream_seq: u64,
        already: bool,
        at_ms: u64,
        actor: &str,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO published (bag, at_ms, subject, stream_seq) VALUES (?1, ?2, ?3, ?4)",
                params![bag, at_ms as i64, subject, stream_seq as i64],
            )?;
            if n == 1 {
                audit::append(
                    tx,
                    at_ms,
                    actor,
                    "bag.published",
                    Some(bag),
                    &json!({ "subject": subject, "stream_seq": stream_seq, "found_on_broker": already }),
                )?;
            }
            Ok(())
        })
    }

    /// The line's barcode reader's code joined to bag `bag` (None: no read matched it), once
    /// (a second call changes nothing), with its audit entry beside the scanner's own tag.
    pub fn record_barcode(
        &mut self,
        bag: i64,
        code: Option<&str>,
        scanner_tag: Option<&str>,
        at_ms: u64,
        actor: &str,
    ) -> Result<()> {
        let detail = json!({ "code": code, "read": code.is_some(), "scanner_tag": scanner_tag });
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO barcodes (bag, code, at_ms) VALUES (?1, ?2, ?3)",
                params![bag, code, at_ms as i64],
            )?;
            if n == 1 {
                audit::append(tx, at_ms, actor, "bag.barcode", Some(bag), &detail)?;
            }
            Ok(())
        })
    }

    /// Complete bags still to go to the hub that have no barcode joined yet, oldest first, at
    /// most `limit`.
    pub fn unjoined(&self, limit: usize) -> Result<Vec<BagRow>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM bags b WHERE b.state = 'complete'
                 AND NOT EXISTS (SELECT 1 FROM published p WHERE p.bag = b.id)
                 AND NOT EXISTS (SELECT 1 FROM barcodes c WHERE c.bag = b.id) ORDER BY b.id LIMIT ?1",
                prefixed_columns()
            ))
            .map_err(|e| self.e(e))?;
        let rows = st.query_map([limit as i64], bag_row).map_err(|e| self.e(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.e(e))
    }

    /// The barcode joined to bag `bag` earlier (by this run or one before it): None when it
    /// was never joined, Some(None) when no read matched it.
    pub fn barcode_of(&self, bag: i64) -> Result<Option<Option<String>>> {
        self.conn
            .query_row("SELECT code FROM barcodes WHERE bag = ?1", [bag], |r| r.get(0))
            .optional()
            .map_err(|e| self.e(e))
    }

    /// The sorter's lane for bag `bag` (`manual`: the manual lane, sent or by default), in the
    /// audit trail.
    pub fn record_sorted(
        &mut self,
        bag: i64,
        manual: bool,
        detail: &serde_json::Value,
        at_ms: u64,
        actor: &str,
    ) -> Result<()> {
        let action = if manual { "bag.manual_lane" } else { "bag.sorted" };
        self.write(|tx| audit::append(tx, at_ms, actor, action, Some(bag), detail).map(|_| ()))
    }

    /// Findings recorded on bags already published to the hub and not yet sent to its records,
    /// oldest first: (the findings' row, the bag, the findings).
    pub fn unsent_findings(&self, limit: usize) -> Result<Vec<(i64, i64, Findings)>> {
        self.unsent_findings_on("published", limit)
    }

    /// Findings recorded on bags this archive took from the hub (the hub's opening bench) and
    /// not yet sent to its records, oldest first: (the findings' row, the bag, the findings).
    pub fn unsent_taken_findings(&self, limit: usize) -> Result<Vec<(i64, i64, Findings)>> {
        self.unsent_findings_on("hub_taken", limit)
    }

    /// Unsent findings on the bags listed in `table` (`published` or `hub_taken`).
    fn unsent_findings_on(&self, table: &'static str, limit: usize) -> Result<Vec<(i64, i64, Findings)>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT f.id, f.bag, f.agency, f.operator, f.at_ms, f.items, f.treatment FROM findings f
                 WHERE EXISTS (SELECT 1 FROM {table} p WHERE p.bag = f.bag)
                 AND NOT EXISTS (SELECT 1 FROM findings_sent s WHERE s.findings = f.id)
                 ORDER BY f.id LIMIT ?1",
            ))
            .map_err(|e| self.e(e))?;
        let rows = st
            .query_map([limit.min(i64::MAX as usize) as i64], |r| {
                let items: String = r.get(5)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    items,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.e(e))?;
        rows.into_iter()
            .map(|(id, bag, agency, operator, at_ms, items, treatment)| {
                let items = serde_json::from_str(&items)
                    .map_err(|e| StoreError::Bad(format!("bag {bag}: findings {id}: {e}")))?;
                Ok((id, bag, Findings { agency, operator, at_ms: at_ms as u64, items, treatment }))
            })
            .collect()
    }

    /// Findings row `id` reached the hub's records.
    pub fn mark_findings_sent(&mut self, id: i64, at_ms: u64) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO findings_sent (findings, at_ms) VALUES (?1, ?2)",
                params![id, at_ms as i64],
            )
            .map_err(|e| self.e(e))?;
        Ok(())
    }

    /// The newest `limit` bags published to the hub, newest first.
    pub fn published_ids(&self, limit: usize) -> Result<Vec<i64>> {
        let mut st = self
            .conn
            .prepare("SELECT bag FROM published ORDER BY bag DESC LIMIT ?1")
            .map_err(|e| self.e(e))?;
        let ids = st
            .query_map([limit.min(i64::MAX as usize) as i64], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
            .map_err(|e| self.e(e))?;
        Ok(ids)
    }

    /// Where the broker holds bag `bag`: its subject and stream sequence, once published.
    pub fn published(&self, bag: i64) -> Result<Option<(String, u64)>> {
        self.conn
            .query_row("SELECT subject, stream_seq FROM published WHERE bag = ?1", [bag], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })
            .optional()
            .map_err(|e| self.e(e))
    }

    /// One bag's row.
    pub fn bag(&self, id: i64) -> Result<BagRow> {
        self.conn
            .query_row(&format!("SELECT {BAG_COLUMNS} FROM bags WHERE id = ?1"), [id], bag_row)
            .optional()
            .map_err(|e| self.e(e))?
            .ok_or(StoreError::NoSuchBag(id))
    }

    /// Bags matching `q`, newest first.
    pub fn bags(&self, q: &BagQuery) -> Result<Vec<BagRow>> {
        let mut sql = format!("SELECT {} FROM bags b WHERE 1 = 1", prefixed_columns());
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        use rusqlite::types::Value as V;
        if let Some(v) = q.from_ms {
            arg(&mut sql, " AND b.started_ms >= ?", V::Integer(v as i64));
        }
        if let Some(v) = q.to_ms {
            arg(&mut sql, " AND b.started_ms < ?", V::Integer(v as i64));
        }
        if let Some(v) = &q.item_id {
            arg(&mut sql, " AND b.item_id = ?", V::Text(v.clone()));
        }
        if let Some(v) = &q.operator {
            arg(
                &mut sql,
                " AND (EXISTS (SELECT 1 FROM decisions d WHERE d.bag = b.id AND d.operator = ?)",
                V::Text(v.clone()),
            );
            arg(
                &mut sql,
                " OR EXISTS (SELECT 1 FROM annotations a WHERE a.bag = b.id AND a.operator = ?))",
                V::Text(v.clone()),
            );
        }
        if let Some(v) = &q.agency {
            arg(
                &mut sql,
                " AND (EXISTS (SELECT 1 FROM decisions d WHERE d.bag = b.id AND d.agency = ?)",
                V::Text(v.clone()),
            );
            arg(
                &mut sql,
                " OR EXISTS (SELECT 1 FROM annotations a WHERE a.bag = b.id AND a.agency = ? AND a.deleted_ms IS NULL))",
                V::Text(v.clone()),
            );
        }
        if let Some(v) = &q.decision {
            arg(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM decisions d WHERE d.bag = b.id AND d.code = ?)",
                V::Text(v.clone()),
            );
        }
        if let Some(v) = &q.category {
            arg(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM annotations a WHERE a.bag = b.id AND a.category = ? AND a.deleted_ms IS NULL)",
                V::Text(v.clone()),
            );
        }
        sql.push_str(" ORDER BY b.id DESC");
        if q.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", q.limit));
        }
        let mut st = self.conn.prepare(&sql).map_err(|e| self.e(e))?;
        let rows = st.query_map(rusqlite::params_from_iter(args), bag_row).map_err(|e| self.e(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.e(e))
    }

    /// The bag's decisions (all, in order) and its marks (deleted ones left out) as the domain's
    /// record; `BagRecord::id` is the scanner's bag number.
    pub fn record(&self, id: i64) -> Result<BagRecord> {
        let row = self.bag(id)?;
        let mut st = self
            .conn
            .prepare("SELECT agency, code, operator, at_ms, reason FROM decisions WHERE bag = ?1 ORDER BY id")
            .map_err(|e| self.e(e))?;
        let decisions = st
            .query_map([id], decision_row)
            .map_err(|e| self.e(e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.e(e))?;
        let mut st = self
            .conn
            .prepare(
                "SELECT id, agency, operator, shape, category, note, created_ms, edited_ms FROM annotations
                 WHERE bag = ?1 AND deleted_ms IS NULL ORDER BY id",
            )
            .map_err(|e| self.e(e))?;
        let annotations = st
            .query_map([id], |r| {
                let shape: String = r.get(3)?;
                let shape: Shape = serde_json::from_str(&shape).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
                })?;
                Ok(Annotation {
                    id: r.get::<_, i64>(0)? as u64,
                    agency: r.get(1)?,
                    operator: r.get(2)?,
                    shape,
                    category: r.get(4)?,
                    note: r.get(5)?,
                    created_ms: r.get::<_, i64>(6)? as u64,
                    edited_ms: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
                })
            })
            .map_err(|e| self.e(e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.e(e))?;
        let last: i64 = self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM annotations WHERE bag = ?1", [id], |r| r.get(0))
            .map_err(|e| self.e(e))?;
        let mut st = self
            .conn
            .prepare(
                "SELECT agency, operator, at_ms, items, treatment FROM findings WHERE bag = ?1 ORDER BY id",
            )
            .map_err(|e| self.e(e))?;
        let findings = st
            .query_map([id], |r| {
                let items: String = r.get(3)?;
                let items = serde_json::from_str(&items).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
                })?;
                Ok(Findings {
                    agency: r.get(0)?,
                    operator: r.get(1)?,
                    at_ms: r.get::<_, i64>(2)? as u64,
                    items,
                    treatment: r.get(4)?,
                })
            })
            .map_err(|e| self.e(e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.e(e))?;
        let mut st = self
            .conn
            .prepare(
                "SELECT agency, operator, at_ms, mime, width, height, length(data), sha256
                 FROM photos WHERE bag = ?1 ORDER BY id",
            )
            .map_err(|e| self.e(e))?;
        let photos = st
            .query_map([id], |r| {
                Ok(Photo {
                    agency: r.get(0)?,
                    operator: r.get(1)?,
                    at_ms: r.get::<_, i64>(2)? as u64,
                    mime: r.get(3)?,
                    width: r.get(4)?,
                    height: r.get(5)?,
                    size: r.get::<_, i64>(6)? as u64,
                    sha256: r.get(7)?,
                })
            })
            .map_err(|e| self.e(e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.e(e))?;
        let mut rec = BagRecord::restore(row.scanner_bag, row.item_id, decisions, annotations, last as u64);
        rec.findings = findings;
        rec.photos = photos;
        Ok(rec)
    }

    /// The scan of a bag, checked against the SHA-256 recorded when it was saved.
    pub fn scan(&self, id: i64) -> Result<RawFrame> {
        let row = self.bag(id)?;
        let (Some(rel), Some(sha)) = (row.scan_file, row.scan_sha256) else {
            return Err(StoreError::Bad(format!("bag {id} has no saved scan ({})", row.state.as_str())));
        };
        let path = self.dir.join(&rel);
        let bytes = std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        if hex_sha256(&bytes) != sha {
            return Err(StoreError::Bad(format!(
                "{}: the file has changed since it was archived (SHA-256 differs)",
                path.display()
            )));
        }
        crate::files::io::read_raw_tiff(&path).map_err(|e| StoreError::Bad(e.to_string()))
    }

    /// The calibration a bag's scan was kept with.
    pub fn calibration(&self, id: i64) -> Result<Calibration> {
        #[derive(serde::Deserialize)]
        struct C {
            dark_low: Vec<f32>,
            dark_high: Vec<f32>,
            air_low: Vec<f32>,
            air_high: Vec<f32>,
            full_scale: u16,
        }
        let text: Option<String> = self
            .conn
            .query_row("SELECT calibration FROM bags WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.e(e))?
            .ok_or(StoreError::NoSuchBag(id))?;
        let text =
            text.ok_or_else(|| StoreError::Bad(format!("bag {id} has no calibration (not complete)")))?;
        let c: C = serde_json::from_str(&text)
            .map_err(|e| StoreError::Bad(format!("bag {id}: calibration: {e}")))?;
        Calibration::from_tables(c.dark_low, c.dark_high, c.air_low, c.air_high, c.full_scale)
            .map_err(|e| StoreError::Bad(format!("bag {id}: calibration: {e}")))
    }

    /// Check the whole audit chain (see [`audit::verify`]).
    pub fn verify_audit(&self) -> Result<audit::Report> {
        audit::verify(&self.conn).map_err(|e| self.e(e))
    }

    /// Raw access for tests that play the part of someone tampering with the file.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

const BAG_COLUMNS: &str = "id, scanner_bag, item_id, source, profile, channels, started_ms, ended_ms, lines, \
     missing_rows, truncated, state, note, scan_file, scan_sha256";

fn prefixed_columns() -> String {
    BAG_COLUMNS.split(", ").map(|c| format!("b.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

fn bag_row(r: &rusqlite::Row) -> rusqlite::Result<BagRow> {
    let missing: Option<String> = r.get(9)?;
    let state: String = r.get(11)?;
    Ok(BagRow {
        id: r.get(0)?,
        scanner_bag: r.get::<_, i64>(1)? as u64,
        item_id: r.get(2)?,
        source: r.get(3)?,
        profile: r.get(4)?,
        channels: r.get::<_, i64>(5)? as usize,
        started_ms: r.get::<_, i64>(6)? as u64,
        ended_ms: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        lines: r.get::<_, Option<i64>>(8)?.map(|v| v as usize),
        missing_rows: missing.and_then(|m| serde_json::from_str(&m).ok()).unwrap_or_default(),
        truncated: r.get(10)?,
        state: BagState::parse(&state),
        note: r.get(12)?,
        scan_file: r.get(13)?,
        scan_sha256: r.get(14)?,
    })
}

/// What makes a bag's row complete: its scan file (already written and synced), its lines,
/// lost rows and calibration.
struct Complete<'a> {
    id: i64,
    ended_ms: u64,
    lines: usize,
    missing_rows: &'a [usize],
    truncated: bool,
    rel: &'a str,
    sha: &'a str,
    /// As [`calibration_json`] writes it.
    calibration: &'a str,
}

impl Complete<'_> {
    /// The row says complete, with its audit entry (`action`, `more` added to its detail).
    fn apply(
        &self,
        tx: &rusqlite::Transaction,
        at_ms: u64,
        actor: &str,
        action: &str,
        more: serde_json::Value,
    ) -> rusqlite::Result<()> {
        let missing = serde_json::to_string(self.missing_rows).expect("numbers serialise");
        tx.execute(
            "UPDATE bags SET state = 'complete', ended_ms = ?2, lines = ?3, missing_rows = ?4,
             truncated = ?5, scan_file = ?6, scan_sha256 = ?7, calibration = ?8 WHERE id = ?1",
            params![
                self.id,
                self.ended_ms as i64,
                self.lines as i64,
                missing,
                self.truncated,
                self.rel,
                self.sha,
                self.calibration
            ],
        )?;
        let mut detail = json!({ "lines": self.lines, "missing_lines": self.missing_rows.len(),
                                 "truncated": self.truncated, "scan_file": self.rel, "scan_sha256": self.sha });
        if let (Some(d), serde_json::Value::Object(m)) = (detail.as_object_mut(), more) {
            d.extend(m);
        }
        audit::append(tx, at_ms, actor, action, Some(self.id), &detail).map(|_| ())
    }
}

/// A calibration as the bags table keeps it.
fn calibration_json(c: &Calibration) -> String {
    json!({
        "dark_low": c.dark_low, "dark_high": c.dark_high,
        "air_low": c.air_low, "air_high": c.air_high,
        "full_scale": c.full_scale,
    })
    .to_string()
}

fn scan_rel(id: i64) -> String {
    format!("{SCANS_DIR}/bag-{id:08}.tiff")
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write a file so that it is either whole or absent, and its name survives a power cut.
/// A decision and its audit entry, inside the caller's transaction.
/// A decision from `SELECT agency, code, operator, at_ms, reason`.
fn decision_row(r: &rusqlite::Row) -> rusqlite::Result<Decision> {
    Ok(Decision {
        agency: r.get(0)?,
        code: r.get(1)?,
        operator: r.get(2)?,
        at_ms: r.get::<_, i64>(3)? as u64,
        reason: r.get(4)?,
    })
}

fn insert_decision(tx: &rusqlite::Transaction, bag: i64, d: &Decision) -> rusqlite::Result<()> {
    let previous: Option<String> = tx
        .query_row(
            "SELECT code FROM decisions WHERE bag = ?1 AND agency = ?2 ORDER BY id DESC LIMIT 1",
            params![bag, d.agency],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute(
        "INSERT INTO decisions (bag, agency, code, operator, at_ms, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![bag, d.agency, d.code, d.operator, d.at_ms as i64, d.reason],
    )?;
    let action = if d.operator == crate::domain::inspection::AUTO_OPERATOR {
        "decision.auto"
    } else if previous.is_some() {
        "decision.change"
    } else {
        "decision"
    };
    audit::append(
        tx,
        d.at_ms,
        &d.operator,
        action,
        Some(bag),
        &json!({ "agency": d.agency, "code": d.code, "previous": previous, "reason": d.reason }),
    )
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::io::write_atomically(path, bytes).map_err(|e| match e {
        crate::files::io::IoError::File { source, .. } => StoreError::io(path, source),
        other => StoreError::Bad(other.to_string()),
    })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests;
