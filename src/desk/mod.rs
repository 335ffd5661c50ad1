//! The desk: the application layer of one workstation. It owns what every screen shares (the
//! agencies, the accounts, the bags with their records, the archive link) and each station's
//! working state (who is logged in, the session, the bag in focus, which bags it has shown), and
//! it applies [`Command`]s: log in and out, focus a bag, decide, mark, edit and delete marks,
//! move the belt (allowed and audited here, sent to the scanner by the front end). The
//! egui windows, `snapshot`, and later a web page and remote stations drive it through
//! [`Desk::apply`] alone; answers that take a disk (a commit) come back later through
//! [`Desk::poll`] into each station's outbox ([`Desk::take_said`]), so no front end ever waits.
//!
//! Owns: the rules that bind a decision to a bag its operator saw: a decision acts on the bag
//! in focus, and is refused while that bag is still being scanned or before it has been shown
//! whole on that station's screen; the focus follows the oldest complete bag on that screen
//! that the station's agency has not decided (so Release pressed as the next bag enters still
//! means the bag on screen, and zoomed in on a bag, that bag), or a bag the operator picked.
//!
//! Must not import: egui, wgpu, tokio.

pub mod archiver;
pub mod host;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use self::archiver::{Archiver, LoadedBag, Record, Reply};
use crate::assemble::BagSpan;
use crate::domain::inspection::{
    AgencyConfig, Annotation, BagRecord, Decision, DispositionKind, Findings, FoundItem, InspectionConfig,
    InspectionError, Operator, Photo, Role, Shape,
};
use crate::domain::operators::{LoginError, OperatorStore};
use crate::domain::session::{Session, SessionEvent, SessionPolicy};
use crate::domain::tip::{ProjectedThreat, TrainingResult};
use crate::files::store::MarkChange;
use crate::source::Belt;

/// Bags kept for recall on screen.
pub const RECENT_BAGS: usize = 50;
/// Bags of earlier runs shown after a restart (from the archive).
pub const EARLIER_BAGS: usize = 20;
/// The desk's key of a bag recalled from the archive: this bit plus its archive id (live bags
/// are keyed by the scanner's bag number, which never comes near it).
pub const ARCHIVED_KEY: u64 = 1 << 62;
/// Answers kept for a station that nobody reads (a screen not drawn).
const OUTBOX: usize = 16;

/// A bag of an earlier run: not in the live image (its span starts nowhere on screen).
pub fn is_archived(span: &BagSpan) -> bool {
    span.bag & ARCHIVED_KEY != 0
}

/// A photo's bytes, shared without copying on their way to the archive (debug output says only
/// how many there are).
#[derive(Clone, PartialEq)]
pub struct PhotoBytes(pub std::sync::Arc<[u8]>);

impl std::fmt::Debug for PhotoBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PhotoBytes({} bytes)", self.0.len())
    }
}

/// What a station asks the desk to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Login {
        id: String,
        pin: String,
    },
    Logout,
    /// Work on this bag (`None`: back to the bag the desk puts in focus).
    Focus(Option<u64>),
    /// Record the agency's decision on the bag in focus (a change needs a reason).
    Decide {
        code: String,
        reason: Option<String>,
    },
    /// A new mark on `bag` (in that bag's coordinates).
    Mark {
        bag: u64,
        shape: Shape,
        category: String,
        note: String,
    },
    /// Move or resize one of the agency's marks.
    EditMark {
        bag: u64,
        id: u64,
        shape: Shape,
    },
    DeleteMark {
        bag: u64,
        id: u64,
    },
    /// Open archived bag `id` (the archive's number) on this screen: its image from the archive,
    /// with every image function, its marks and its decisions, while the belt goes on.
    Open {
        id: i64,
    },
    /// Record the agency's findings at `bag`'s opening (no items: nothing found).
    Findings {
        bag: u64,
        items: Vec<FoundItem>,
        treatment: Option<String>,
    },
    /// Keep a photo taken at `bag`'s opening with the bag, for the operator's agency. The
    /// caller has checked that the bytes are an image of this type and size (the web does).
    AddPhoto {
        bag: u64,
        mime: String,
        width: u32,
        height: u32,
        data: PhotoBytes,
    },
    /// Back to the live image.
    CloseBag,
    /// A bag picked from the list of recent bags: worked on in the live image while it is whole
    /// there, else opened from the archive (always, on a back-office screen).
    Recall(u64),
    /// Find archived bags: a bag number, a tag or barcode, an operator id, a decision code, a
    /// mark category, or a day (YYYY-MM-DD, UTC); empty: the newest.
    Search {
        text: String,
    },
    /// Move the belt (stop, forward, reverse), as the site allows: the front end sends it to the
    /// scanner ([`Done::Belt`]); the screens show the belt as the scanner then reports it.
    Belt(Belt),
}

/// An archived bag open on a station.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The desk's key of the bag (its live key when it is a bag of this run).
    pub key: u64,
    /// The archive's number.
    pub id: i64,
    /// What the archive holds of it (the scan the screen shows).
    pub scan: Arc<LoadedBag>,
}

/// What a command (or, later, its commit) did.
#[derive(Clone, Debug, PartialEq)]
pub enum Done {
    LoggedIn(Operator),
    LoggedOut,
    Focused(Option<u64>),
    /// Queued for the archive: the station hears the outcome from [`Desk::take_said`].
    Recording,
    Decided {
        bag: u64,
        /// The bag's number as people know it ([`Desk::number`]).
        number: u64,
        decision: Decision,
        training: Option<(TrainingResult, Option<String>)>,
    },
    Marked {
        bag: u64,
        id: u64,
    },
    MarkChanged {
        bag: u64,
        id: u64,
    },
    /// The agency's findings are recorded; `closed`: every agency's are, the opening is closed.
    FindingsRecorded {
        bag: u64,
        closed: bool,
    },
    /// A photo is kept with the bag (or was already: the same bytes sent again).
    PhotoAdded {
        bag: u64,
        sha256: String,
    },
    MarkDeleted {
        bag: u64,
        id: u64,
    },
    /// The screen locked itself after this many minutes without input.
    Locked {
        idle_minutes: u64,
    },
    /// Time for a break after this many minutes of screening.
    BreakDue {
        minutes: u64,
    },
    /// A view saved as a picture.
    ViewSaved(std::path::PathBuf),
    /// The belt command is allowed and audited: send it to the scanner.
    Belt(Belt),
    /// Archived bag `id` is being read.
    Opening(i64),
    /// Archived bag `id` is on the screen (as desk bag `key`).
    Opened {
        key: u64,
        id: i64,
    },
    Closed,
    Searching,
    /// This many bags found (in [`StationState::found`]).
    Found(usize),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DeskError {
    #[error("no station {0}")]
    NoStation(usize),
    #[error("this site has no agency {0:?}")]
    UnknownAgency(String),
    #[error("log in first")]
    NotLoggedIn,
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error("{operator} is not a {agency} operator")]
    WrongStation { operator: String, agency: String },
    #[error("no bag to decide on yet")]
    NoBag,
    #[error("no bag #{0} on this desk")]
    NoSuchBag(u64),
    #[error("bag #{0} is still being scanned: decide once all of it is on screen")]
    StillScanning(u64),
    #[error("bag #{0} has not been shown whole on this screen: look at it first")]
    NotSeen(u64),
    #[error("the last record of this screen is still being written")]
    Busy,
    #[error(transparent)]
    Inspection(#[from] InspectionError),
    #[error("NOT recorded: {0}")]
    NotRecorded(String),
    #[error("image NOT saved: {0}")]
    ViewNotSaved(String),
    #[error("no archive on this desk")]
    NoArchive,
    #[error("cannot open that bag: {0}")]
    CannotOpen(String),
    #[error("search failed: {0}")]
    SearchFailed(String),
    #[error("the belt is run from the scanner's own panel at this site")]
    BeltFromScannerOnly,
    #[error("the belt is not moved from the {0} screen at this site")]
    BeltNotHere(String),
    #[error("a back-office screen does not move the belt")]
    BeltBackOffice,
}

/// One station's working state.
#[derive(Debug)]
pub struct StationState {
    /// The screen's id (scripts, file names).
    pub id: String,
    pub agency: String,
    /// A back-office screen (后台): works from the archive only.
    pub back_office: bool,
    pub operator: Option<Operator>,
    /// The logged-in operator's session (idle lock, break reminder).
    pub session: Option<Session>,
    /// A reminder to take a break is due.
    pub break_reminder: bool,
    /// A bag the operator picked; `None`: the desk's choice.
    selected: Option<u64>,
    /// Per bag of this run: the lines of it this screen has drawn (first, one past the last).
    drawn: HashMap<u64, (u64, u64)>,
    /// The live lines its last frame drew (`None`: not drawn yet).
    visible: Option<(u64, u64)>,
    /// Answers that came later than the command (commits, locks), oldest first.
    said: VecDeque<Result<Done, DeskError>>,
    /// The ticket of this station's record being committed.
    pending: Option<u64>,
    /// The archived bag this screen shows instead of the live image.
    pub opened: Option<Opened>,
    /// The last search's bags, newest first.
    pub found: Vec<crate::files::store::BagRow>,
}

impl StationState {
    fn new(id: &str, agency: &str, back_office: bool) -> Self {
        StationState {
            id: id.into(),
            agency: agency.into(),
            back_office,
            operator: None,
            session: None,
            break_reminder: false,
            selected: None,
            drawn: HashMap::new(),
            visible: None,
            said: VecDeque::new(),
            pending: None,
            opened: None,
            found: Vec::new(),
        }
    }

    fn say(&mut self, r: Result<Done, DeskError>) {
        if self.said.len() >= OUTBOX {
            self.said.pop_front();
        }
        self.said.push_back(r);
    }
}

/// A change to a bag's record, applied once committed.
#[derive(Clone, Debug)]
enum Change {
    /// `op`: the operator who decided (`None`: the site's automatic release).
    Decision {
        d: Decision,
        op: Option<Operator>,
    },
    AddMark(Annotation),
    EditMark(Annotation),
    DeleteMark(u64),
    Findings(Findings),
    Photo(Photo),
}

struct Pending {
    /// The station waiting for it (`None`: the desk's own, an automatic release).
    station: Option<usize>,
    bag: u64,
    change: Change,
}

/// What every screen shares: configuration, accounts, the bags with their records, the
/// archive; and each station's working state.
pub struct Desk {
    pub config: InspectionConfig,
    pub operators: OperatorStore,
    /// Oldest first.
    pub bags: Vec<(BagSpan, BagRecord)>,
    /// The accounts are the built-in demonstration ones (emulator only).
    pub demo_accounts: bool,
    pub session_policy: SessionPolicy,
    /// Where records are committed before a screen calls them recorded (`None`: not archived).
    pub archive: Option<Archiver>,
    /// Why the archive could not be opened at start (shown on every screen).
    pub archive_open_error: Option<String>,
    /// A training replay with projected threats (`replay://...&tip=`): each operator's first
    /// decision on a bag is judged and said at once.
    pub training: bool,
    /// Threats projected into bags (by desk key).
    pub projected: HashMap<u64, ProjectedThreat>,
    /// When each bag appeared (ms), for decision times.
    pub arrived_ms: HashMap<u64, u64>,
    /// When each bag of this run was scanned whole (ms), for the automatic release.
    ended_ms: HashMap<u64, u64>,
    /// (bag, operator) already judged: a change of decision is not judged again.
    judged: HashSet<(u64, String)>,
    stations: Vec<StationState>,
    /// The oldest line the live view still holds (bags ending before it have left the screens).
    live_oldest: u64,
    /// Records queued for the archive, by ticket.
    pending: HashMap<u64, Pending>,
    /// Lines of the archived bags opened (their lines count from 0).
    archived_lines: HashMap<u64, u64>,
    /// The scanner's state last written to the audit trail.
    scanner: Option<ScannerState>,
}

/// The scanner's state as this workstation last heard it: what an incident review asks of the
/// audit trail (was the belt stopped, was the link down, was the tube on, what fault).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ScannerState {
    /// The link to the scanner is up.
    pub link: bool,
    /// The belt as the scanner reports it (`None`: it has not said).
    pub belt: Option<Belt>,
    pub tube_on: bool,
    pub interlock_open: bool,
    /// The scanner's fault words ("scanner fault 301: ..."), while it reports a fault.
    pub fault: Option<String>,
}

impl Desk {
    /// A desk with the screens of `config` (one per agency unless it names them).
    pub fn new(config: InspectionConfig, operators: OperatorStore, demo_accounts: bool) -> Self {
        let stations = config
            .screens()
            .iter()
            .zip(config.screen_ids())
            .map(|(s, id)| StationState::new(&id, &s.agency, s.back_office))
            .collect();
        Desk {
            config,
            operators,
            bags: Vec::new(),
            demo_accounts,
            session_policy: SessionPolicy::default(),
            archive: None,
            archive_open_error: None,
            scanner: None,
            training: false,
            projected: Default::default(),
            arrived_ms: Default::default(),
            ended_ms: Default::default(),
            judged: Default::default(),
            stations,
            live_oldest: 0,
            pending: HashMap::new(),
            archived_lines: HashMap::new(),
        }
    }

    /// Demonstration accounts for the emulator: c001 / 1111 (customs), q001 / 2222 (quarantine),
    /// s001 / 3333 (security, for a site with a third screen).
    pub fn demo_operators() -> OperatorStore {
        let mut s = OperatorStore::default();
        let _ = s.add("c001", "Demo customs", &[Role::Customs], "1111", 0);
        let _ = s.add("q001", "Demo quarantine", &[Role::Quarantine], "2222", 0);
        let _ = s.add("s001", "Demo security", &[Role::Security], "3333", 0);
        s
    }

    /// Add a station working for `agency` (a remote front end's: the opening bench in a browser),
    /// working from the archive only when `back_office`; its index.
    pub fn add_station(&mut self, id: &str, agency: &str, back_office: bool) -> Result<usize, DeskError> {
        if self.config.agency(agency).is_none() {
            return Err(DeskError::UnknownAgency(agency.to_owned()));
        }
        self.stations.push(StationState::new(id, agency, back_office));
        Ok(self.stations.len() - 1)
    }

    /// Number of stations.
    pub fn stations(&self) -> usize {
        self.stations.len()
    }

    /// Station `i`'s working state.
    pub fn station(&self, i: usize) -> &StationState {
        &self.stations[i]
    }

    /// The agency station `i` works for.
    pub fn agency_of(&self, i: usize) -> Option<&AgencyConfig> {
        self.stations.get(i).and_then(|s| self.config.agency(&s.agency))
    }

    /// The bag with this key and its record.
    pub fn bag(&self, key: u64) -> Option<&(BagSpan, BagRecord)> {
        self.bags.iter().find(|(s, _)| s.bag == key)
    }

    fn bag_mut(&mut self, key: u64) -> Option<&mut BagRecord> {
        self.bags.iter_mut().find(|(s, _)| s.bag == key).map(|(_, r)| r)
    }

    /// The bag station `i` works on: the archived bag open there, or the one its operator
    /// picked, else the oldest complete bag on its screen (whole in the live ring) that its
    /// agency has not decided, else the newest complete bag on its screen, else the newest
    /// complete bag. (A bag that scrolled off undecided waits in the list of recent bags.)
    pub fn focus(&self, i: usize) -> Option<u64> {
        let st = self.stations.get(i)?;
        if let Some(o) = &st.opened {
            return Some(o.key);
        }
        if let Some(b) = st.selected
            && self.bag(b).is_some()
        {
            return Some(b);
        }
        if st.back_office {
            return None;
        }
        let complete = |s: &BagSpan| !is_archived(s) && s.end_line.is_some();
        // On this screen now: what its last frame drew (zoomed in on a bag, that bag).
        let on_screen = |s: &BagSpan| {
            st.visible.is_none_or(|(a, b)| s.first_line < b && s.end_line.is_some_and(|e| e > a))
        };
        let candidate = |s: &BagSpan| complete(s) && s.first_line >= self.live_oldest && on_screen(s);
        self.bags
            .iter()
            .filter(|(s, _)| candidate(s))
            .find(|(_, r)| r.current(&st.agency).is_none())
            .or_else(|| self.bags.iter().rev().find(|(s, _)| candidate(s)))
            .or_else(|| self.bags.iter().rev().find(|(s, _)| complete(s)))
            .map(|(s, _)| s.bag)
    }

    /// The live view now holds lines from `oldest` on.
    pub fn set_live_oldest(&mut self, oldest: u64) {
        self.live_oldest = oldest;
    }

    /// Station `i` has drawn live lines `[from, to)` on its screen (called by the screen each
    /// frame it draws): the bags in them count as shown there, line by line.
    pub fn note_drawn(&mut self, i: usize, from: u64, to: u64) {
        let Some(st) = self.stations.get_mut(i) else { return };
        st.visible = Some((from, to));
        for (span, _) in &self.bags {
            if is_archived(span) {
                continue;
            }
            let end = span.end_line.unwrap_or(u64::MAX);
            let (lo, hi) = (from.max(span.first_line), to.min(end));
            if lo >= hi {
                continue;
            }
            // One range per bag: a screen follows the belt (or pans) continuously, so what it
            // drew of a bag is one stretch; a jump leaves the stretch between counted.
            let e = st.drawn.entry(span.bag).or_insert((lo, hi));
            *e = (e.0.min(lo), e.1.max(hi));
        }
    }

    /// Station `i` has drawn lines `[from, to)` of the archived bag open on it (counted from the
    /// bag's first line).
    pub fn note_drawn_opened(&mut self, i: usize, from: u64, to: u64) {
        let Some(key) = self.stations.get(i).and_then(|s| s.opened.as_ref()).map(|o| o.key) else { return };
        let Some((span, _)) = self.bag(key) else { return };
        // A bag of this run is counted in live lines, as the live image counts it.
        let base = if is_archived(span) { 0 } else { span.first_line };
        let (lo, hi) = (base + from, base + to);
        if lo >= hi {
            return;
        }
        let e = self.stations[i].drawn.entry(key).or_insert((lo, hi));
        *e = (e.0.min(lo), e.1.max(hi));
    }

    /// Every line of `bag` has been drawn on station `i`'s screen.
    pub fn shown_whole(&self, i: usize, bag: u64) -> bool {
        let (Some(st), Some((span, _))) = (self.stations.get(i), self.bag(bag)) else { return false };
        let (first, end) = if is_archived(span) {
            (0, self.archived_lines.get(&bag).copied())
        } else {
            (span.first_line, span.end_line)
        };
        let Some(end) = end else { return false };
        st.drawn.get(&bag).is_some_and(|&(lo, hi)| lo <= first && hi >= end)
    }

    /// Answers that came for station `i` since the last call (commits, locks), oldest first.
    pub fn take_said(&mut self, i: usize) -> Vec<Result<Done, DeskError>> {
        self.stations.get_mut(i).map_or_else(Vec::new, |s| s.said.drain(..).collect())
    }

    /// Station `i` has a record being committed.
    pub fn is_recording(&self, i: usize) -> bool {
        self.stations.get(i).is_some_and(|s| s.pending.is_some())
    }

    /// Input at station `i` (`input`: the operator did something this frame), and the
    /// session's timers: an idle screen locks, a long shift brings a reminder.
    pub fn tick(&mut self, i: usize, now_ms: u64, input: bool) {
        let policy = self.session_policy;
        let Some(st) = self.stations.get_mut(i) else { return };
        let Some(session) = st.session.as_mut() else { return };
        if input {
            session.activity(now_ms);
        }
        match session.check(now_ms, &policy) {
            Some(SessionEvent::IdleLock) => {
                let who = st.operator.take().map(|o| o.id).unwrap_or_default();
                st.session = None;
                st.break_reminder = false;
                st.selected = None;
                st.say(Ok(Done::Locked { idle_minutes: policy.idle_lock_ms / 60_000 }));
                let station = st.agency.clone();
                self.audit(&who, "logout.idle", serde_json::json!({ "station": station }));
            }
            Some(SessionEvent::BreakReminder) => {
                st.break_reminder = true;
                let minutes = session.screening_minutes(now_ms);
                st.say(Ok(Done::BreakDue { minutes }));
            }
            None => {}
        }
    }

    /// Apply station `i`'s command. Commands that need the archive answer [`Done::Recording`]
    /// at once and their outcome later ([`Desk::take_said`]).
    pub fn apply(&mut self, i: usize, cmd: Command, now_ms: u64) -> Result<Done, DeskError> {
        if i >= self.stations.len() {
            return Err(DeskError::NoStation(i));
        }
        match cmd {
            Command::Login { id, pin } => self.login(i, id.trim(), &pin, now_ms),
            Command::Logout => {
                let st = &mut self.stations[i];
                let Some(op) = st.operator.take() else { return Err(DeskError::NotLoggedIn) };
                st.session = None;
                st.break_reminder = false;
                st.selected = None;
                let station = st.agency.clone();
                self.audit(&op.id, "logout", serde_json::json!({ "station": station }));
                Ok(Done::LoggedOut)
            }
            Command::Focus(bag) => {
                if let Some(b) = bag
                    && self.bag(b).is_none()
                {
                    return Err(DeskError::NoSuchBag(self.number(b)));
                }
                self.stations[i].selected = bag;
                Ok(Done::Focused(bag))
            }
            Command::Decide { code, reason } => self.decide(i, &code, reason.as_deref(), now_ms),
            Command::Belt(b) => {
                let st = &self.stations[i];
                let op = st.operator.clone().ok_or(DeskError::NotLoggedIn)?;
                if st.back_office {
                    return Err(DeskError::BeltBackOffice);
                }
                let policy = &self.config.belt;
                if !policy.from_screens {
                    return Err(DeskError::BeltFromScannerOnly);
                }
                if !policy.allows(&st.agency) {
                    return Err(DeskError::BeltNotHere(st.agency.clone()));
                }
                let station = st.id.clone();
                self.audit(&op.id, "belt", serde_json::json!({ "station": station, "belt": b.name() }));
                Ok(Done::Belt(b))
            }
            Command::Mark { bag, shape, category, note } => {
                let (op, agency) = self.acting(i)?;
                let mut trial = self.record_of(bag)?.clone();
                let id = trial.annotate(&self.config, &agency, &op, shape, &category, &note, now_ms)?;
                let mark = trial.annotations.iter().find(|a| a.id == id).cloned().expect("just added");
                // The id is taken now, committed or not: two screens marking at once never share one.
                let last = trial.last_annotation_id();
                self.bag_mut(bag).expect("found above").reserve_annotation_ids(last);
                let record =
                    Record::Mark { mark: mark.clone(), change: MarkChange::Added, by: op.id.clone() };
                self.submit(Some(i), bag, Change::AddMark(mark), record)
            }
            Command::EditMark { bag, id, shape } => {
                let (op, _) = self.acting(i)?;
                let mut trial = self.record_of(bag)?.clone();
                let (category, note) = trial
                    .annotations
                    .iter()
                    .find(|a| a.id == id)
                    .map(|a| (a.category.clone(), a.note.clone()))
                    .ok_or(InspectionError::NoSuchAnnotation(id))?;
                trial.edit_annotation(&self.config, id, &op, shape, &category, &note, now_ms)?;
                let mark = trial.annotations.iter().find(|a| a.id == id).cloned().expect("just edited");
                let record =
                    Record::Mark { mark: mark.clone(), change: MarkChange::Edited, by: op.id.clone() };
                self.submit(Some(i), bag, Change::EditMark(mark), record)
            }
            Command::Open { id } => {
                let a = self.archive.as_mut().ok_or(DeskError::NoArchive)?;
                a.load(i, id).map_err(|e| DeskError::CannotOpen(e.to_string()))?;
                Ok(Done::Opening(id))
            }
            Command::Recall(key) => {
                let (span, _) = self.bag(key).ok_or(DeskError::NoSuchBag(self.number(key)))?;
                let archived = is_archived(span);
                if !archived && !self.stations[i].back_office && span.first_line >= self.live_oldest {
                    let st = &mut self.stations[i];
                    st.opened = None;
                    st.selected = Some(key);
                    return Ok(Done::Focused(Some(key)));
                }
                let a = self.archive.as_mut().ok_or(DeskError::NoArchive)?;
                let id = if archived {
                    (key & !ARCHIVED_KEY) as i64
                } else {
                    a.archive_id(key)
                        .ok_or_else(|| DeskError::CannotOpen("it is not in the archive yet".into()))?
                };
                a.load(i, id).map_err(|e| DeskError::CannotOpen(e.to_string()))?;
                Ok(Done::Opening(id))
            }
            Command::Findings { bag, items, treatment } => {
                let (op, agency) = self.acting(i)?;
                let mut trial = self.record_of(bag)?.clone();
                let f = trial
                    .record_findings(&self.config, &agency, &op, items, treatment.as_deref(), now_ms)?
                    .clone();
                self.submit(Some(i), bag, Change::Findings(f.clone()), Record::Findings(f))
            }
            Command::AddPhoto { bag, mime, width, height, data } => {
                let (op, agency) = self.acting(i)?;
                let sha256: String = <sha2::Sha256 as sha2::Digest>::digest(&data.0)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let photo = Photo {
                    agency: agency.clone(),
                    operator: op.id.clone(),
                    at_ms: now_ms,
                    mime,
                    width,
                    height,
                    size: data.0.len() as u64,
                    sha256: sha256.clone(),
                };
                let mut trial = self.record_of(bag)?.clone();
                let before = trial.photos.len();
                let p = trial.add_photo(&self.config, &agency, &op, photo)?.clone();
                if trial.photos.len() == before {
                    return Ok(Done::PhotoAdded { bag, sha256 });
                }
                self.submit(Some(i), bag, Change::Photo(p.clone()), Record::Photo { photo: p, data: data.0 })
            }
            Command::CloseBag => {
                let st = &mut self.stations[i];
                if st.opened.take().is_some() {
                    st.selected = None;
                }
                Ok(Done::Closed)
            }
            Command::Search { text } => {
                let (q, id) = self.query_of(&text);
                let a = self.archive.as_mut().ok_or(DeskError::NoArchive)?;
                a.search(i, q, id).map_err(|e| DeskError::SearchFailed(e.to_string()))?;
                Ok(Done::Searching)
            }
            Command::DeleteMark { bag, id } => {
                let (op, _) = self.acting(i)?;
                let mut trial = self.record_of(bag)?.clone();
                trial.delete_annotation(&self.config, id, &op)?;
                self.submit(
                    Some(i),
                    bag,
                    Change::DeleteMark(id),
                    Record::DeleteMark { id, by: op.id.clone() },
                )
            }
        }
    }

    fn login(&mut self, i: usize, id: &str, pin: &str, now_ms: u64) -> Result<Done, DeskError> {
        let agency = self.agency_of(i).cloned().ok_or(DeskError::NoStation(i))?;
        match self.operators.login(id, pin, now_ms) {
            Ok(op) if op.may_act_for(&agency) => {
                self.audit(&op.id, "login", serde_json::json!({ "station": agency.id }));
                let st = &mut self.stations[i];
                st.operator = Some(op.clone());
                st.session = Some(Session::new(now_ms));
                st.break_reminder = false;
                Ok(Done::LoggedIn(op))
            }
            Ok(op) => Err(DeskError::WrongStation { operator: op.id, agency: agency.id }),
            Err(e) => {
                let detail = serde_json::json!({ "station": agency.id, "why": e.to_string() });
                self.audit(id, "login.refused", detail);
                Err(e.into())
            }
        }
    }

    /// The operator logged in at station `i` and its agency.
    fn acting(&self, i: usize) -> Result<(Operator, String), DeskError> {
        let st = &self.stations[i];
        let op = st.operator.clone().ok_or(DeskError::NotLoggedIn)?;
        if st.pending.is_some() {
            return Err(DeskError::Busy);
        }
        Ok((op, st.agency.clone()))
    }

    fn record_of(&self, bag: u64) -> Result<&BagRecord, DeskError> {
        self.bag(bag).map(|(_, r)| r).ok_or(DeskError::NoSuchBag(self.number(bag)))
    }

    /// The number a person knows bag `key` by, on every screen and in every message: its archive
    /// number once it has entered the archive (what search, open, the exports and the records
    /// say), else its number in this run (no archive, or the moment before it enters).
    pub fn number(&self, key: u64) -> u64 {
        if key & ARCHIVED_KEY != 0 {
            return key & !ARCHIVED_KEY;
        }
        self.archive.as_ref().and_then(|a| a.archive_id(key)).map_or(key, |id| id as u64)
    }

    fn decide(&mut self, i: usize, code: &str, reason: Option<&str>, now_ms: u64) -> Result<Done, DeskError> {
        let (op, agency) = self.acting(i)?;
        let bag = self.focus(i).ok_or(DeskError::NoBag)?;
        let (span, rec) = self.bag(bag).ok_or(DeskError::NoSuchBag(self.number(bag)))?;
        // Only once the bag has been scanned whole and shown whole on this screen (live, or
        // opened from the archive).
        if !is_archived(span) && span.end_line.is_none() {
            return Err(DeskError::StillScanning(self.number(bag)));
        }
        if !self.shown_whole(i, bag) {
            return Err(DeskError::NotSeen(self.number(bag)));
        }
        let mut trial = rec.clone();
        let d = trial.decide(&self.config, &agency, code, &op, now_ms, reason)?.clone();
        let record = Record::Decision(d.clone());
        self.submit(Some(i), bag, Change::Decision { d, op: Some(op) }, record)
    }

    /// Commit a change through the archive (applied when it comes back), or at once without
    /// one.
    fn submit(
        &mut self,
        i: Option<usize>,
        bag: u64,
        change: Change,
        record: Record,
    ) -> Result<Done, DeskError> {
        if let Some(e) = &self.archive_open_error {
            return Err(DeskError::NotRecorded(e.clone()));
        }
        let item = self.bag(bag).and_then(|(_, r)| r.item_id.clone());
        match self.archive.as_mut() {
            None => Ok(self.applied(i, bag, change)),
            Some(a) => {
                let ticket = a
                    .record(bag, item.as_deref(), record)
                    .map_err(|e| DeskError::NotRecorded(e.to_string()))?;
                if let Some(i) = i {
                    self.stations[i].pending = Some(ticket);
                }
                self.pending.insert(ticket, Pending { station: i, bag, change });
                Ok(Done::Recording)
            }
        }
    }

    /// A committed change enters the bag's record (the screens show it from now on).
    fn applied(&mut self, i: Option<usize>, bag: u64, change: Change) -> Done {
        let now_ms = crate::unix_ms();
        let number = self.number(bag);
        let Some(rec) = self.bag_mut(bag) else { return Done::Focused(None) };
        match change {
            Change::Decision { d, op } => {
                rec.decisions.push(d.clone());
                let mut training = None;
                if let (Some(i), Some(op)) = (i, op) {
                    let agency = self.agency_of(i).cloned();
                    training = agency.and_then(|a| self.training_result(bag, &a, &op, &d.code, now_ms));
                    // The decided bag leaves the focus: the next one in the queue comes.
                    if self.stations[i].selected == Some(bag) {
                        self.stations[i].selected = None;
                    }
                }
                Done::Decided { bag, number, decision: d, training }
            }
            Change::AddMark(m) => {
                let id = m.id;
                rec.annotations.push(m);
                Done::Marked { bag, id }
            }
            Change::EditMark(m) => {
                let id = m.id;
                if let Some(a) = rec.annotations.iter_mut().find(|a| a.id == id) {
                    *a = m;
                }
                Done::MarkChanged { bag, id }
            }
            Change::DeleteMark(id) => {
                rec.annotations.retain(|a| a.id != id);
                Done::MarkDeleted { bag, id }
            }
            Change::Photo(p) => {
                let sha256 = p.sha256.clone();
                if !rec.photos.iter().any(|q| q.sha256 == sha256) {
                    rec.photos.push(p);
                }
                Done::PhotoAdded { bag, sha256 }
            }
            Change::Findings(f) => {
                rec.findings.push(f);
                let closed =
                    self.bag(bag).and_then(|(_, r)| r.opening(&self.config)).is_some_and(|o| o.closed);
                Done::FindingsRecorded { bag, closed }
            }
        }
    }

    /// An archived bag has been read for station `i`: it joins the desk's bags (decisions and
    /// marks on it go to that archived bag) and the station shows it.
    fn opened(&mut self, i: usize, b: Box<LoadedBag>) -> Done {
        let id = b.row.id;
        let key = b.key.filter(|k| self.bag(*k).is_some()).unwrap_or(ARCHIVED_KEY | id as u64);
        if self.bag(key).is_none() {
            if let Some(a) = self.archive.as_mut() {
                a.adopt(key, id);
            }
            let span =
                BagSpan { bag: key, item_id: b.row.item_id.clone(), first_line: u64::MAX, end_line: Some(0) };
            // After the other archived bags, before this run's.
            let at = self.bags.iter().take_while(|(s, _)| is_archived(s)).count();
            self.bags.insert(at, (span, b.record.clone()));
        } else if key & ARCHIVED_KEY != 0
            && let Some((_, r)) = self.bags.iter_mut().find(|(s, _)| s.bag == key)
            && b.record.decisions.len() >= r.decisions.len()
            && b.record.findings.len() >= r.findings.len()
        {
            // An archived bag read again: the archive's record is the newer (another writer of
            // it - a hub node's copy of the decisions - may have added to it; what this desk
            // committed is in it already, unless a commit overtook the read: then it waits for
            // the next open).
            *r = b.record.clone();
        }
        if key & ARCHIVED_KEY != 0 {
            self.archived_lines.insert(key, b.frame.lines() as u64);
        }
        if let Some(st) = self.stations.get_mut(i) {
            st.selected = Some(key);
            st.opened = Some(Opened { key, id, scan: Arc::from(b) });
        }
        Done::Opened { key, id }
    }

    /// Search terms of what an operator typed (see [`Command::Search`]): the query, and a bag
    /// number to include.
    fn query_of(&self, text: &str) -> (crate::files::store::BagQuery, Option<i64>) {
        let t = text.trim();
        let mut q = crate::files::store::BagQuery { limit: 50, ..Default::default() };
        if t.is_empty() {
            return (q, None);
        }
        if let Ok(id) = t.trim_start_matches('#').parse::<i64>() {
            q.limit = 1;
            q.item_id = Some(t.to_owned());
            return (q, Some(id));
        }
        if let Some(day) = utc_day_ms(t) {
            (q.from_ms, q.to_ms) = (Some(day), Some(day + 86_400_000 - 1));
        } else if self.operators.records().any(|r| r.id == t) {
            q.operator = Some(t.to_owned());
        } else if self.config.agencies.iter().any(|a| a.decision(t).is_some()) {
            q.decision = Some(t.to_owned());
        } else if self.config.agencies.iter().any(|a| a.categories.iter().any(|c| c.id == t)) {
            q.category = Some(t.to_owned());
        } else {
            q.item_id = Some(t.to_owned());
        }
        (q, None)
    }

    /// Take what the archive has committed (or refused) since the last call, into the stations'
    /// outboxes; never waits. Called once a frame.
    pub fn poll(&mut self) {
        let Some(a) = self.archive.as_mut() else { return };
        for reply in a.poll() {
            match reply {
                Reply::Committed { ticket, result } => {
                    let Some(p) = self.pending.remove(&ticket) else { continue };
                    let said = match result {
                        Ok(()) => Ok(self.applied(p.station, p.bag, p.change)),
                        Err(e) => Err(DeskError::NotRecorded(e.to_string())),
                    };
                    let Some(st) = p.station.and_then(|i| self.stations.get_mut(i)) else { continue };
                    if st.pending == Some(ticket) {
                        st.pending = None;
                    }
                    st.say(said);
                }
                Reply::View { station, result } => {
                    if let Some(st) = self.stations.get_mut(station) {
                        st.say(
                            result.map(Done::ViewSaved).map_err(|e| DeskError::ViewNotSaved(e.to_string())),
                        );
                    }
                }
                Reply::Loaded { station, result } => {
                    let said = match result {
                        Ok(b) => Ok(self.opened(station, b)),
                        Err(e) => Err(DeskError::CannotOpen(e.to_string())),
                    };
                    if let Some(st) = self.stations.get_mut(station) {
                        st.say(said);
                    }
                }
                Reply::Found { station, result } => {
                    if let Some(st) = self.stations.get_mut(station) {
                        match result {
                            Ok(rows) => {
                                let n = rows.len();
                                st.found = rows;
                                st.say(Ok(Done::Found(n)));
                            }
                            Err(e) => st.say(Err(DeskError::SearchFailed(e.to_string()))),
                        }
                    }
                }
            }
        }
    }

    /// The site's policy at `now_ms`: with an automatic release, every agency that has not
    /// intervened on a bag of this run scanned whole `auto_release_secs` ago releases it,
    /// recorded as automatic (never under an operator's name) and audited. Called once a frame.
    pub fn apply_policy(&mut self, now_ms: u64) {
        let Some(after) = self.config.policy.auto_release_secs else { return };
        let due: Vec<(u64, String)> = self
            .bags
            .iter()
            .filter(|(s, _)| self.ended_ms.get(&s.bag).is_some_and(|&t| now_ms >= t + after * 1000))
            .flat_map(|(s, r)| {
                self.config
                    .agencies
                    .iter()
                    .filter(|a| r.current(&a.id).is_none())
                    .map(move |a| (s.bag, a.id.clone()))
            })
            .filter(|(bag, agency)| {
                // Not while a decision of that agency on it is being written.
                !self.pending.values().any(|p| {
                    p.bag == *bag && matches!(&p.change, Change::Decision { d, .. } if &d.agency == agency)
                })
            })
            .collect();
        for (bag, agency) in due {
            let Some(mut trial) = self.record_of(bag).ok().cloned() else { continue };
            let Ok(d) = trial.auto_release(&self.config, &agency, after, now_ms).cloned() else { continue };
            let record = Record::Decision(d.clone());
            if self.submit(None, bag, Change::Decision { d, op: None }, record).is_err() {
                // Not recorded (no archive to take it): the bag stays waiting, as the screens
                // show, and is not tried again every frame.
                self.ended_ms.remove(&bag);
            }
        }
    }

    /// Wait (at most `timeout`) until every queued record has come back, then take the answers:
    /// for scripts, tests and closing, never for a frame.
    pub fn settle(&mut self, timeout: std::time::Duration) -> bool {
        let t0 = std::time::Instant::now();
        loop {
            self.poll();
            if self.pending.is_empty() && !self.archive.as_ref().is_some_and(|a| a.reading()) {
                self.poll();
                return true;
            }
            if t0.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// This operator's decision on this bag has been judged (training).
    pub fn was_judged(&self, bag: u64, operator: &str) -> bool {
        self.judged.contains(&(bag, operator.to_string()))
    }

    /// Threats the source projected into bags.
    pub fn note_projected(&mut self, projected: &[ProjectedThreat]) {
        for p in projected {
            self.projected.insert(p.bag, p.clone());
        }
    }

    /// Judge a trainee's first decision on a bag against what was projected into it, and
    /// archive the result; `None` outside training or for a change of decision.
    fn training_result(
        &mut self,
        bag: u64,
        agency: &AgencyConfig,
        op: &Operator,
        code: &str,
        now_ms: u64,
    ) -> Option<(TrainingResult, Option<String>)> {
        if !self.training || !self.judged.insert((bag, op.id.clone())) {
            return None;
        }
        let alarm = agency.decision(code).is_some_and(|c| c.kind != DispositionKind::Release);
        let rec = self.bag(bag).map(|(_, r)| r)?;
        let marks: Vec<&Annotation> = rec.annotations.iter().filter(|a| a.operator == op.id).collect();
        let projected = self.projected.get(&bag);
        let result = crate::domain::tip::judge(projected, alarm, &marks);
        let threat = projected.map(|p| p.name.clone());
        let decision_ms = now_ms.saturating_sub(self.arrived_ms.get(&bag).copied().unwrap_or(now_ms));
        let item = rec.item_id.clone();
        if let Some(a) = self.archive.as_mut() {
            let record = Record::Training {
                operator: op.id.clone(),
                agency: agency.id.clone(),
                threat: threat.clone(),
                result,
                decision_ms,
            };
            // Its commit has no station waiting on it; a failure shows as the archive problem.
            let _ = a.record(bag, item.as_deref(), record);
        }
        Some((result, threat))
    }

    /// After a restart: the newest bags of earlier runs come back from the archive with their
    /// decisions and marks, so a bag left pending is still decided on (its image is in the
    /// archive, not in the live view).
    pub fn load_earlier(&mut self, n: usize) -> Result<usize, crate::files::store::StoreError> {
        let Some(a) = self.archive.as_mut() else { return Ok(0) };
        let store = a.reader()?;
        let q = crate::files::store::BagQuery { limit: n, ..Default::default() };
        let rows = store.bags(&q)?;
        let mut loaded = Vec::new();
        for row in rows.into_iter().rev() {
            let rec = store.record(row.id)?;
            let key = ARCHIVED_KEY | row.id as u64;
            a.adopt(key, row.id);
            let span =
                BagSpan { bag: key, item_id: row.item_id.clone(), first_line: u64::MAX, end_line: Some(0) };
            loaded.push((span, rec));
        }
        let n = loaded.len();
        loaded.append(&mut self.bags);
        self.bags = loaded;
        Ok(n)
    }

    /// What is wrong with the archive now, for every screen.
    pub fn archive_problem(&self) -> Option<String> {
        self.archive_open_error.clone().or_else(|| self.archive.as_ref().and_then(|a| a.problem.clone()))
    }

    /// An audit entry (login, logout, refused login); queued, never waited for.
    pub fn audit(&mut self, actor: &str, action: &str, detail: serde_json::Value) {
        if let Some(a) = self.archive.as_mut() {
            a.log(actor, action, detail);
        }
    }

    /// The scanner's state as heard now: a change (the belt as read back, the link, the tube,
    /// the interlock, a fault) is an audit entry by the scanner. Returns whether it changed.
    pub fn scanner_state(&mut self, state: ScannerState) -> bool {
        if self.scanner.as_ref() == Some(&state) {
            return false;
        }
        let detail = serde_json::to_value(&state).unwrap_or_default();
        self.audit("scanner", "scanner", detail);
        self.scanner = Some(state);
        true
    }

    /// Bags the stream has started or ended.
    pub fn update_bags(&mut self, spans: &[BagSpan]) {
        let now = crate::unix_ms();
        for span in spans {
            match self.bags.iter_mut().find(|(s, _)| s.bag == span.bag) {
                Some((s, _)) => *s = span.clone(),
                None => {
                    self.arrived_ms.insert(span.bag, now);
                    self.bags.push((span.clone(), BagRecord::new(span.bag, span.item_id.clone())))
                }
            }
            if span.end_line.is_some() && !is_archived(span) {
                self.ended_ms.entry(span.bag).or_insert(now);
            }
        }
        let excess = self.bags.len().saturating_sub(RECENT_BAGS + EARLIER_BAGS);
        if excess > 0 {
            self.bags.drain(..excess);
            let keep: HashSet<u64> = self.bags.iter().map(|(s, _)| s.bag).collect();
            self.projected.retain(|k, _| keep.contains(k));
            self.arrived_ms.retain(|k, _| keep.contains(k));
            self.ended_ms.retain(|k, _| keep.contains(k));
            self.judged.retain(|(k, _)| keep.contains(k));
            for st in &mut self.stations {
                st.drawn.retain(|k, _| keep.contains(k));
            }
        }
    }
}

/// Milliseconds since the Unix epoch at the start of day `YYYY-MM-DD` (UTC).
fn utc_day_ms(s: &str) -> Option<u64> {
    let day =
        jiff::civil::Date::strptime("%Y-%m-%d", s).ok().filter(|d| s.len() == 10 && d.year() >= 1970)?;
    let ms = day.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_millisecond();
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests;
