//! A workstation's screens as hub stations (`run --hub`): central screening (集中判图).
//!
//! Each screen of the workstation is a station of its agency: while an operator is logged in
//! there, it takes the agency's next bag from the hub (the agency's durable pull consumer, as a
//! bot does), keeps it in this workstation's archive (the hub's scan byte for byte, with the
//! node's line, node and bag id: the archive's hub inbox) and asks the front end to open it on
//! that screen, where the operator looks, marks and decides as on any archived bag. The bag is
//! held on the hub (progress acks) until the agency's decision on it is in the archive; that
//! decision then goes to the hub (once per agency: whichever station decides first), to the hub's
//! records when they are given, and the bag is acknowledged; the next one comes. An operator who
//! logs out, or a workstation that closes, hands its bag back undecided, and another station
//! gets it at once; a workstation that dies leaves it to the hub's hold time.
//!
//! The decision outbox is the archive: a decision recorded on a hub bag with no `hub_decided`
//! row has not reached the hub, and is sent when the hub delivers the bag again (after a crash,
//! to whichever station of the agency takes it; on this workstation it is found in the archive).
//!
//! Owns: the link's thread and tasks, the bag taken into the archive, holding, sending the
//! decision. The front end only reads [`HubLink::try_next`] and says who is logged in where
//! ([`HubLink::operator`]); neither waits. Must not import: egui, wgpu, the desk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::access::Credentials;
use super::records::StationRecords;
use super::station::{Automatic, Correction, Decided, Next, SendFailure, Station, StationConfig, Taken};
use super::{BagAnnouncement, HubMark, HubUrl, MAX_MARKS};
use crate::domain::automatic::Verdict;
use crate::domain::calib::Calibration;
use crate::files::store::{BagStart, HubBag, HubDecided, Store};

/// One screen of the workstation as a station.
#[derive(Clone, Debug)]
pub struct ScreenSpec {
    /// The screen's position among the workstation's screens.
    pub screen: usize,
    pub agency: String,
    /// Its station name on the hub (unique across the hub).
    pub station: String,
    pub credentials: Option<Credentials>,
    /// The automatic level first (the site's `[automatic]` names the agency): only the bags
    /// its alarm aids do not pass come to the screen.
    pub automatic: Option<Automatic>,
}

/// How the workstation joins the hub.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub hub: HubUrl,
    pub screens: Vec<ScreenSpec>,
    /// The hub's records (PostgreSQL), written beside each decision when given.
    pub records: Option<String>,
    /// A bag neither decided nor held this long goes to another station.
    pub hold: Duration,
    /// A bag undecided this long on a screen goes back to the hub for another station (the
    /// screen closes it and says so).
    pub limit: Duration,
    pub replicas: usize,
}

/// What the link asks of the front end.
#[derive(Clone, Debug, PartialEq)]
pub enum ToDesk {
    /// Hub bag `hub` is archive bag `bag` now: open it on `screen`; `why` it came to an
    /// operator (English, Chinese) when the automatic level alarmed on it.
    Open { screen: usize, bag: i64, hub: String, why: Option<(String, String)> },
    /// Archive bag `bag` went back to the hub undecided: close it on `screen` if it is open there.
    Close { screen: usize, bag: i64 },
    /// A line for the screen's message line (`problem`: shown as one).
    Say { screen: usize, text: String, problem: bool },
}

/// The workstation's link to the hub: a thread of its own (tokio inside), one task per screen.
pub struct HubLink {
    rx: Receiver<ToDesk>,
    operators: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HubLink {
    /// Start the link over `store` (a writer of the workstation's archive; each screen's task
    /// gets its own connection to it).
    pub fn start(cfg: LinkConfig, store: &Store) -> anyhow::Result<HubLink> {
        let n = cfg.screens.iter().map(|s| s.screen + 1).max().unwrap_or(0);
        let operators = Arc::new(Mutex::new(vec![None; n]));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = bounded(64);
        let mut stores = Vec::new();
        for s in &cfg.screens {
            super::check_name("agency", &s.agency)?;
            super::check_name("station", &s.station)?;
            stores.push(store.second_writer()?);
        }
        let (ops, halt) = (operators.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("hub link".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("hub link: {e}");
                    return;
                }
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let mut tasks = Vec::new();
                for (spec, store) in cfg.screens.clone().into_iter().zip(stores) {
                    let screen = Screen {
                        cfg: cfg.clone(),
                        spec,
                        store,
                        tx: tx.clone(),
                        operators: ops.clone(),
                        stop: halt.clone(),
                        records: cfg.records.as_deref().map(StationRecords::new),
                        next_look: Instant::now(),
                        rounds: 0,
                    };
                    tasks.push(tokio::task::spawn_local(screen.run()));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        })?;
        Ok(HubLink { rx, operators, stop, thread: Some(thread) })
    }

    /// Who is logged in on `screen` now (`None`: nobody; the screen's bag goes back).
    pub fn operator(&self, screen: usize, who: Option<&str>) {
        let mut ops = self.operators.lock().expect("not poisoned");
        if let Some(slot) = ops.get_mut(screen)
            && slot.as_deref() != who
        {
            *slot = who.map(str::to_owned);
        }
    }

    /// The link's next request, if any (never waits).
    pub fn try_next(&self) -> Option<ToDesk> {
        self.rx.try_recv().ok()
    }

    /// Hand back what the screens hold and stop (a second or so).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HubLink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How often a screen looks for its operator's decision in the archive.
const LOOK: Duration = Duration::from_millis(200);

/// How often a screen looks for decisions changed after they reached the hub.
const CORRECTIONS_EVERY: Duration = Duration::from_secs(1);

/// How many of the newest hub bags are looked at for changed decisions every time.
const RECENT_HUB_BAGS: i64 = 2000;

struct Screen {
    cfg: LinkConfig,
    spec: ScreenSpec,
    store: Store,
    tx: Sender<ToDesk>,
    operators: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
    records: Option<StationRecords>,
    /// When to look for corrections next, and how many looks so far.
    next_look: Instant,
    rounds: u64,
}

/// How a bag left a screen.
enum Left {
    Decided,
    HandedBack,
    /// Undecided within the limit: handed back.
    TimedOut,
    Stopped,
}

impl Screen {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn operator(&self) -> Option<String> {
        self.operators.lock().expect("not poisoned").get(self.spec.screen).cloned().flatten()
    }

    fn say(&self, text: String, problem: bool) {
        if problem {
            tracing::warn!(station = self.spec.station, "{text}");
        } else {
            tracing::info!(station = self.spec.station, "{text}");
        }
        // The front end takes these every frame; a full queue drops a line, never blocks.
        if let Err(TrySendError::Full(_)) =
            self.tx.try_send(ToDesk::Say { screen: self.spec.screen, text, problem })
        {
            tracing::warn!("hub link: the screens' queue is full");
        }
    }

    async fn run(mut self) {
        let cfg = StationConfig {
            hub: self.cfg.hub.clone(),
            agency: self.spec.agency.clone(),
            station: self.spec.station.clone(),
            hold: self.cfg.hold,
            max_deliver: 10,
            replicas: self.cfg.replicas,
            keep: Duration::from_secs(72 * 3600),
            credentials: self.spec.credentials.clone(),
            automatic: self.spec.automatic.clone(),
            desk_wait: super::station::DESK_WAIT,
        };
        let mut said = String::new();
        let station = loop {
            if self.stopped() {
                return;
            }
            match Station::connect(cfg.clone()).await {
                Ok(s) => break s,
                Err(e) => {
                    if e.to_string() != said {
                        said = e.to_string();
                        self.say(
                            format!(
                                "hub {}: not reachable ({e}); trying again",
                                self.cfg.hub.servers.join(",")
                            ),
                            true,
                        );
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        self.say(format!("screening for {} on the hub as {}", self.spec.agency, self.spec.station), false);
        while !self.stopped() {
            // Decisions changed here after they reached the hub: corrections, whoever is logged in.
            if Instant::now() >= self.next_look {
                self.send_corrections(&station).await;
            }
            if self.operator().is_none() {
                tokio::time::sleep(LOOK).await;
                continue;
            }
            let t = match station.next(Duration::from_millis(500)).await {
                Ok(Next::Bag(t)) => t,
                Ok(Next::Decided { t, outcome, decision }) => {
                    self.decided_without_operator(&station, *t, outcome, *decision).await;
                    continue;
                }
                Ok(Next::Nothing | Next::AtDesk { .. } | Next::DeskWaits { .. }) => continue,
                Ok(Next::Refused { subject, why }) => {
                    self.say(format!("hub: refused {subject}: {why}"), true);
                    continue;
                }
                Err(e) => {
                    self.say(format!("hub: {e}"), true);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match self.screen_bag(&station, *t).await {
                Left::Decided | Left::HandedBack => {}
                // Not at once: the bag is another station's turn.
                Left::TimedOut => tokio::time::sleep(Duration::from_secs(3)).await,
                Left::Stopped => break,
            }
        }
        // A bag handed back at the stop reaches the broker before the process ends.
        station.flush().await;
    }

    /// One bag on this screen, from taking it to its decision on the hub (or handing it back).
    async fn screen_bag(&mut self, station: &Station, t: Taken) -> Left {
        let hub = HubBag { line: t.bag.line.clone(), node: t.bag.node.clone(), bag: t.bag.bag };
        let id = match self.take(&t, &hub) {
            Ok(id) => id,
            Err(e) => {
                self.say(format!("hub bag {hub}: not kept in the archive ({e}); handed back"), true);
                let _ = station.hand_back_later(t).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Left::HandedBack;
            }
        };
        // Decided here before (the workstation stopped before the hub had it): send it now.
        let why = match &t.l1 {
            Some(v @ Verdict::Alarm(_)) => {
                tracing::info!(station = self.spec.station, "bag {id} (hub bag {hub}): {}", v.describe());
                Some((v.describe(), v.describe_zh()))
            }
            _ => None,
        };
        let open = ToDesk::Open { screen: self.spec.screen, bag: id, hub: hub.to_string(), why };
        if self.decision_of(id).is_none() && self.tx.try_send(open).is_err() {
            let _ = station.hand_back(t).await;
            return Left::HandedBack;
        }
        let hold = self.cfg.hold;
        let mut next_hold = Instant::now() + hold / 3;
        loop {
            if self.stopped() {
                let _ = station.hand_back(t).await;
                return Left::Stopped;
            }
            if let Some(d) = self.decision_of(id) {
                return self.send(station, t, id, &hub, d).await;
            }
            // Corrections go while the screen holds a bag too (a parcel's lane may still change).
            if Instant::now() >= self.next_look {
                self.send_corrections(station).await;
            }
            let back = if self.operator().is_none() {
                Some((Left::HandedBack, "the operator logged out".to_string()))
            } else if t.taken.elapsed() >= self.cfg.limit {
                Some((Left::TimedOut, format!("not decided within {} s", self.cfg.limit.as_secs())))
            } else {
                None
            };
            if let Some((left, why)) = back {
                let _ = station.hand_back(t).await;
                let _ = self.tx.try_send(ToDesk::Close { screen: self.spec.screen, bag: id });
                let late = matches!(left, Left::TimedOut);
                self.say(format!("bag {id} (hub bag {hub}) went back to the hub undecided: {why}"), late);
                return left;
            }
            if Instant::now() >= next_hold {
                if let Err(e) = station.hold(&t).await {
                    tracing::warn!("hub: holding bag {hub}: {e}");
                }
                next_hold += hold / 3;
            }
            tokio::time::sleep(LOOK).await;
        }
    }

    /// The agency's decisions changed in this archive after the hub had them, each to the hub
    /// as a correction of the message it holds, then to its records, then marked here. The
    /// newest hub bags every time; all of them every minute (a bag corrected long after).
    async fn send_corrections(&mut self, station: &Station) {
        let round = self.rounds;
        self.rounds += 1;
        self.next_look = Instant::now() + CORRECTIONS_EVERY;
        let after = if round.is_multiple_of(60) {
            0
        } else {
            self.store.last_hub_taken().unwrap_or(0).saturating_sub(RECENT_HUB_BAGS)
        };
        let changed = match self.store.hub_changed(&self.spec.agency, after, 16) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("hub link: corrections not read: {e}");
                return;
            }
        };
        for c in changed {
            let level =
                if c.decision.operator == crate::domain::inspection::AUTO_OPERATOR { "L1" } else { "L2" };
            let correction = Correction {
                hub: c.hub.clone(),
                scan_sha256: c.scan_sha256.clone(),
                code: c.decision.code.clone(),
                operator: c.decision.operator.clone(),
                level: level.into(),
                at_ms: c.decision.at_ms,
                reason: c.decision.reason.clone(),
                marks: self.marks_of(c.bag),
                corrects: c.corrects,
            };
            let (seq, held) = match station.correct(correction).await {
                Ok(x) => x,
                Err(SendFailure::Refused(why)) => {
                    // Never to go: said, audited, and out of the way of the others.
                    self.say(format!("bag {}: the correction cannot go to the hub: {why}", c.bag), true);
                    if let Err(e) =
                        self.store.hub_correction_refused(c.bag, &self.spec.agency, c.decision.at_ms, &why)
                    {
                        tracing::warn!("hub link: bag {}: {e}", c.bag);
                        return;
                    }
                    continue;
                }
                Err(SendFailure::NotNow(e)) => {
                    self.say(
                        format!("bag {}: correction not sent ({e}); it goes when the hub is back", c.bag),
                        true,
                    );
                    return;
                }
            };
            if let Some(r) = self.records.as_mut()
                && let Err(e) = r.record_decision(&held, seq).await
            {
                self.say(
                    format!("hub bag {}: the hub's records did not take the correction ({e})", c.hub),
                    true,
                );
                return;
            }
            // The hub's latest: this correction; this screen's own earlier one, sent by a round
            // that did not mark it (marked now: the decision in force follows as its
            // correction); or another station's, kept here first as the agency's current one.
            let own = held.station == self.spec.station;
            let ours = own && held.at_ms == c.decision.at_ms;
            if !own && let Err(e) = super::decisions::keep_hubs_first(&mut self.store, c.bag, &held) {
                tracing::warn!("hub link: the hub's decision not kept: {e}");
                return;
            }
            let kept = HubDecided {
                code: held.code.clone(),
                operator: held.operator.clone(),
                elsewhere: !own,
                stream_seq: seq,
                at_ms: held.at_ms,
            };
            if let Err(e) = self.store.record_hub_corrected(c.bag, &self.spec.agency, &kept) {
                tracing::warn!("hub link: bag {}: {e}", c.bag);
                return;
            }
            if ours {
                self.say(format!("bag {}: corrected to {} on the hub (#{seq})", c.bag, held.code), false);
            } else if own {
                tracing::info!("bag {}: the hub holds this screen's earlier {} (#{seq})", c.bag, held.code);
            } else {
                self.say(
                    format!(
                        "bag {}: {} holds {} from {} on the hub; this correction was not taken",
                        c.bag, self.spec.agency, held.code, held.station
                    ),
                    true,
                );
            }
        }
    }

    /// The agency's marks on archive bag `id`, as its decision carries them (the first
    /// [`MAX_MARKS`]).
    fn marks_of(&self, id: i64) -> Vec<HubMark> {
        let mut marks: Vec<HubMark> = match self.store.record(id) {
            Ok(r) => r.annotations.iter().filter(|a| a.agency == self.spec.agency).map(HubMark::of).collect(),
            Err(e) => {
                tracing::warn!("hub link: bag {id}: its marks not read ({e})");
                Vec::new()
            }
        };
        if marks.len() > MAX_MARKS {
            self.say(
                format!("bag {id}: only the first {MAX_MARKS} of {} marks go to the hub", marks.len()),
                true,
            );
            marks.truncate(MAX_MARKS);
        }
        marks
    }

    /// The bag into the archive (or found there: delivered again).
    fn take(&mut self, t: &Taken, hub: &HubBag) -> anyhow::Result<i64> {
        Ok(take_into(&mut self.store, &t.bag, &t.scan, hub, &self.spec.station)?.0)
    }

    /// The agency's decision in force on archive bag `id`, if one is recorded.
    fn decision_of(&self, id: i64) -> Option<crate::domain::inspection::Decision> {
        match self.store.current_decision(id, &self.spec.agency) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("hub link: reading bag {id}: {e}");
                None
            }
        }
    }

    /// A bag decided without this screen's operator (cleared by the automatic level, or found
    /// decided on the hub already): its decision into the hub's records, then acknowledged. It
    /// never reaches this workstation's archive or screen.
    async fn decided_without_operator(
        &mut self,
        station: &Station,
        t: Taken,
        outcome: Decided,
        d: crate::hub::DecisionMsg,
    ) {
        let hub = HubBag { line: t.bag.line.clone(), node: t.bag.node.clone(), bag: t.bag.bag };
        let (Decided::Recorded(seq) | Decided::Elsewhere(seq)) = outcome;
        if let Some(r) = self.records.as_mut()
            && let Err(e) =
                r.record_decided(&t.bag, Station::stream_seq(&t), &self.spec.station, &d, seq).await
        {
            self.say(format!("hub bag {hub}: the hub's records did not take it ({e}); trying again"), true);
            let _ = station.hand_back_later(t).await;
            return;
        }
        if let Err(e) = station.done(t).await {
            tracing::warn!("hub: acknowledging bag {hub}: {e}");
        }
        let how = if d.level == "L1" { "cleared automatically" } else { "found decided" };
        tracing::info!(
            station = self.spec.station,
            "hub bag {hub}: {how}: {} at {} ({})",
            d.code,
            d.station,
            d.level
        );
    }

    /// The decision to the hub (and its records), then the bag acknowledged.
    async fn send(
        &mut self,
        station: &Station,
        t: Taken,
        id: i64,
        hub: &HubBag,
        d: crate::domain::inspection::Decision,
    ) -> Left {
        let level = if d.operator == crate::domain::inspection::AUTO_OPERATOR { "L1" } else { "L2" };
        // The agency's marks go with its decision: where the opening bench should look.
        let marks = self.marks_of(id);
        let (outcome, theirs) =
            match station.decide(&t, &d.code, &d.operator, level, d.reason.clone(), marks).await {
                Ok(x) => x,
                Err(e) => {
                    // Kept in the archive: sent when the hub delivers the bag again.
                    self.say(
                        format!(
                            "hub bag {hub} (bag {id}): decision not sent ({e}); it goes when the hub is back"
                        ),
                        true,
                    );
                    let _ = station.hand_back_later(t).await;
                    return Left::HandedBack;
                }
            };
        let (seq, elsewhere) = match outcome {
            Decided::Recorded(s) => (s, false),
            // This station's own decision, sent before its ack was lost: not someone else's.
            Decided::Elsewhere(s) if theirs.station == self.spec.station && theirs.code == d.code => {
                (s, false)
            }
            Decided::Elsewhere(s) => (s, true),
        };
        if let Some(r) = self.records.as_mut() {
            let wrote =
                r.record_decided(&t.bag, Station::stream_seq(&t), &self.spec.station, &theirs, seq).await;
            if let Err(e) = wrote {
                self.say(
                    format!("hub bag {hub}: the hub's records did not take it ({e}); trying again"),
                    true,
                );
                let _ = station.hand_back_later(t).await;
                return Left::HandedBack;
            }
        }
        // The hub's decision is the agency's: this archive's current one too. Not kept (a disk
        // problem), the archive's stays in force and is never sent as a correction of it.
        let kept_here = elsewhere
            && match super::decisions::keep_hubs_first(&mut self.store, id, &theirs) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("hub link: the hub's decision not kept: {e}");
                    false
                }
            };
        let kept = HubDecided {
            code: theirs.code.clone(),
            operator: theirs.operator.clone(),
            elsewhere,
            stream_seq: seq,
            // As in force here: the hub's kept above, or the archive's decision.
            at_ms: if kept_here { theirs.at_ms } else { d.at_ms },
        };
        if let Err(e) = self.store.record_hub_decided(id, &self.spec.agency, &kept) {
            tracing::warn!("hub link: bag {id}: {e}");
        }
        if let Err(e) = station.done(t).await {
            tracing::warn!("hub: acknowledging bag {hub}: {e}");
        }
        if elsewhere {
            self.say(
                format!(
                    "bag {id}: {} decided it first at station {} ({}); this decision was not taken",
                    self.spec.agency, theirs.station, theirs.code
                ),
                true,
            );
        } else {
            self.say(format!("bag {id}: {} sent to the hub", d.code), false);
        }
        Left::Decided
    }
}

/// A hub bag, its scan checked against its announcement, into `store` (or found there, taken
/// before): its archive id, and whether this call took it.
pub fn take_into(
    store: &mut Store,
    b: &BagAnnouncement,
    scan: &[u8],
    hub: &HubBag,
    actor: &str,
) -> anyhow::Result<(i64, bool)> {
    let c = &b.calibration;
    let calibration = Calibration::from_tables(
        c.dark_low.clone(),
        c.dark_high.clone(),
        c.air_low.clone(),
        c.air_high.clone(),
        c.full_scale,
    )?;
    let source = format!("hub://{hub}");
    let start = BagStart {
        scanner_bag: b.scanner_bag,
        item_id: b.item_id.as_deref(),
        source: &source,
        profile: &b.profile,
        channels: b.channels,
        at_ms: b.started_ms,
    };
    Ok(store.take_hub_bag(
        hub,
        &start,
        scan,
        &calibration,
        &b.missing_rows,
        b.truncated,
        b.ended_ms,
        actor,
    )?)
}
