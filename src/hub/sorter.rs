//! A line's sorter, as its scanner node drives it. Each parcel the node publishes is followed
//! until every agency of the site has decided it: then its lane (from the joint outcome, the
//! site's `[sorter]` section) goes to the sorter on the parcel's own subject
//! `twinspect.sort.<line>.<node>.<bag>` in the stream `TWINSPECT_SORT`, before the parcel
//! reaches the divert point (the line's deadline from its end at the scanner, less a margin). A
//! parcel still undecided at that moment goes to the manual lane, sent as such; one whose
//! deadline passed before a lane could go (the broker was down, the bag was published late) is
//! the sorter's own default, the manual lane. Each is counted and audited in the node's archive.
//!
//! Decisions are heard as the stations publish them (a subscription to the line's and node's
//! decision subjects); before sending a parcel to the manual lane the node reads the decision
//! stream for the agencies it has not heard from, so a decision missed while reconnecting is
//! not lost. What counts is the agency's decision in force there, the last link of its chain
//! ([`super::chain`]): a message published around the broker's check counts for nothing. The
//! lane message is published with "expected last subject sequence 0": one per parcel, however
//! often a node restarts.
//!
//! A corrected decision (a message naming the one it replaces) counts in place of the
//! agency's earlier one. Heard after the parcel's lane went, it gives the parcel a new lane
//! (naming the one it replaces; the sorter diverts by the parcel's last lane) when the joint
//! outcome's lane changed and the parcel has not reached its divert point less the margin;
//! later than that, the lane stays and the node says so and audits it.
//!
//! Owns: the bookkeeping of parcels in flight ([`Sorting`], pure), the lane message, the task
//! that hears decisions and sends lanes. Must not import: egui, wgpu, the desk.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::chain::{Latest, read_back_heard, stored_decision};
use super::{DECISION_ROOT, DecisionMsg, FORMAT};
use crate::domain::inspection::{InspectionConfig, OutcomeState};
use crate::files::store::Store;

/// The stream of lane messages.
pub const SORT_STREAM: &str = "TWINSPECT_SORT";
/// Subjects of the lane messages unless the site names another root: `twinspect.sort.<line>.
/// <node>.<bag>` (a line's sorter subscribes to `<root>.<line>.>`).
pub const SORT_ROOT: &str = crate::domain::sorting::DEFAULT_SUBJECT;

/// A parcel's lane subject under `root` (the site's `[sorter] subject`).
pub fn sort_subject(root: &str, line: &str, node: &str, bag: i64) -> String {
    format!("{root}.{line}.{node}.{bag}")
}

/// The lane stream's settings, taking the lanes under `root`.
pub fn sort_stream(root: &str, replicas: usize, keep: Duration) -> stream::Config {
    super::station::hub_stream(SORT_STREAM, root, replicas, keep)
}

/// The lane stream, taking the lanes under `cfg`'s root as well as what it took before (sites
/// whose sorters listen under different roots share it): created, or its subjects widened.
/// Refused where this client may not change streams (a hub with keys: `hub setup --site` does).
pub async fn ready_sort_stream(js: &jetstream::Context, cfg: stream::Config) -> Result<(), String> {
    let stream =
        js.get_or_create_stream(cfg.clone()).await.map_err(|e| format!("stream {SORT_STREAM}: {e}"))?;
    // As the broker answered the get or the create: no second request.
    let info = stream.cached_info();
    let mut subjects = info.config.subjects.clone();
    let missing: Vec<String> = cfg.subjects.iter().filter(|s| !subjects.contains(s)).cloned().collect();
    if missing.is_empty() {
        return Ok(());
    }
    subjects.extend(missing.iter().cloned());
    let mut wider = info.config.clone();
    wider.subjects = subjects;
    js.update_stream(wider).await.map(|_| ()).map_err(|e| {
        format!(
            "stream {SORT_STREAM} takes {:?}, not the site's {missing:?}, and could not be widened ({e}): \
             `twinspect hub setup --site SITE` does it",
            info.config.subjects
        )
    })
}

/// What the sorter is told about one parcel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SortMsg {
    pub format: u32,
    pub line: String,
    pub node: String,
    pub bag: i64,
    /// The parcel's barcode or tag, as the scanner gave it.
    pub item_id: Option<String>,
    pub lane: String,
    /// `released`, `opened`, `held`, `referred`, or `manual` (undecided in time).
    pub outcome: String,
    /// The agencies that had not decided (manual lane only).
    pub waiting_for: Vec<String>,
    /// When the parcel left the scanner, and when it reaches the divert point.
    pub ended_ms: u64,
    pub deadline_ms: u64,
    pub at_ms: u64,
    /// A new lane for a parcel whose lane went already (an agency corrected its decision
    /// before the parcel reached the divert point): the lane it replaces. The sorter diverts
    /// by the parcel's last lane on its subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

struct Parcel {
    item_id: Option<String>,
    ended_ms: u64,
    deadline_ms: u64,
    codes: BTreeMap<String, String>,
}

/// A parcel whose lane went, followed until it reaches the divert point.
struct Sorted {
    parcel: Parcel,
    lane: String,
}

/// A correction heard once its parcel was past the point where its lane could change.
#[derive(Clone, Debug, PartialEq)]
pub struct TooLate {
    pub bag: i64,
    pub agency: String,
    pub code: String,
}

/// Parcels in flight on one node, and the rule that gives each its lane. Pure: times are
/// passed in.
pub struct Sorting {
    site: InspectionConfig,
    line: String,
    node: String,
    pending: BTreeMap<i64, Parcel>,
    /// Decisions heard before their parcel was followed (a station may decide a bag between
    /// the broker's ack of its announcement and the node's noting it), applied when it is.
    early: BTreeMap<i64, Vec<DecisionMsg>>,
    /// Parcels whose lane went, until their divert point (a correction may still change it).
    sorted: BTreeMap<i64, Sorted>,
    /// Corrections heard too late to change a parcel's lane, for the node to say and audit.
    too_late: Vec<TooLate>,
}

/// How long after its divert point a sorted parcel is remembered (a correction heard then
/// is said to be too late, not taken for a parcel not followed yet).
const REMEMBER_SORTED_MS: u64 = 10 * 60 * 1000;

/// Parcels whose decisions are kept while they are not yet followed.
const MAX_EARLY: usize = 1024;

impl Sorting {
    /// None when the site has no sorter.
    pub fn new(site: InspectionConfig, line: &str, node: &str) -> Option<Sorting> {
        site.sorter.as_ref()?;
        Some(Sorting {
            site,
            line: line.into(),
            node: node.into(),
            pending: BTreeMap::new(),
            early: BTreeMap::new(),
            sorted: BTreeMap::new(),
            too_late: Vec::new(),
        })
    }

    fn cfg(&self) -> &crate::domain::sorting::SorterConfig {
        self.site.sorter.as_ref().expect("checked in new")
    }

    /// The subject root the site's sorter listens under.
    pub fn root(&self) -> &str {
        self.cfg().subject()
    }

    /// Follow a parcel from now on (again: nothing changes); its lane at once when the
    /// decisions heard before are all there.
    pub fn add(&mut self, bag: i64, item_id: Option<String>, ended_ms: u64, now_ms: u64) -> Option<SortMsg> {
        let deadline_ms = ended_ms + self.cfg().deadline_ms(&self.line);
        self.pending.entry(bag).or_insert(Parcel { item_id, ended_ms, deadline_ms, codes: BTreeMap::new() });
        let mut lane = None;
        for d in self.early.remove(&bag).unwrap_or_default() {
            lane = lane.or(self.decided(&d, now_ms));
        }
        lane
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Agencies that have not decided `bag` yet.
    pub fn waiting_for(&self, bag: i64) -> Vec<String> {
        let Some(p) = self.pending.get(&bag) else { return Vec::new() };
        self.site.agencies.iter().filter(|a| !p.codes.contains_key(&a.id)).map(|a| a.id.clone()).collect()
    }

    /// A decision heard: the parcel's lane once every agency has decided it (the parcel is then
    /// followed as sorted until its divert point). An agency's later decision (a correction)
    /// replaces its earlier one: before the lane went, the lane is the corrected joint outcome's;
    /// after, a new lane when the outcome's lane changed and the parcel has not reached its
    /// divert point (less the margin), else it is noted as too late. A decision on a parcel
    /// not followed, or with a code its agency does not have, changes nothing.
    pub fn decided(&mut self, d: &DecisionMsg, now_ms: u64) -> Option<SortMsg> {
        if d.line != self.line || d.node != self.node {
            return None;
        }
        let known = self.site.agency(&d.agency).is_some_and(|a| a.decision(&d.code).is_some());
        if !known {
            return None;
        }
        if self.sorted.contains_key(&d.bag) {
            return self.corrected_after_lane(d, now_ms);
        }
        let Some(p) = self.pending.get_mut(&d.bag) else {
            let early = self.early.entry(d.bag).or_default();
            early.retain(|e| e.agency != d.agency);
            if early.len() < self.site.agencies.len() {
                early.push(d.clone());
            }
            while self.early.len() > MAX_EARLY {
                self.early.pop_first();
            }
            return None;
        };
        p.codes.insert(d.agency.clone(), d.code.clone());
        let codes = p.codes.clone();
        let (lane, outcome) = self.lane_of(&codes)?;
        let p = self.pending.remove(&d.bag).expect("found above");
        let m = self.message(d.bag, &p, lane.clone(), outcome, Vec::new(), now_ms);
        self.sorted.insert(d.bag, Sorted { parcel: p, lane });
        Some(m)
    }

    /// The lane and outcome of a parcel's decisions, once they make a joint outcome.
    fn lane_of(&self, codes: &BTreeMap<String, String>) -> Option<(String, &'static str)> {
        let state = self.site.joint_state(codes);
        let lane = self.cfg().lane(&state)?.to_string();
        let outcome = match state {
            OutcomeState::Released => "released",
            OutcomeState::Opened { .. } => "opened",
            OutcomeState::Held { .. } => "held",
            OutcomeState::Referred { .. } => "referred",
            OutcomeState::Pending { .. } => unreachable!("a pending state has no lane"),
        };
        Some((lane, outcome))
    }

    fn corrected_after_lane(&mut self, d: &DecisionMsg, now_ms: u64) -> Option<SortMsg> {
        let margin = self.cfg().margin_ms;
        let s = self.sorted.get(&d.bag).expect("looked up by the caller");
        if s.parcel.codes.get(&d.agency) == Some(&d.code) {
            return None;
        }
        if now_ms + margin >= s.parcel.deadline_ms {
            self.too_late.push(TooLate { bag: d.bag, agency: d.agency.clone(), code: d.code.clone() });
            // Noted once: the same decision heard again is not late again.
            let s = self.sorted.get_mut(&d.bag).expect("looked up above");
            s.parcel.codes.insert(d.agency.clone(), d.code.clone());
            return None;
        }
        let mut codes = s.parcel.codes.clone();
        codes.insert(d.agency.clone(), d.code.clone());
        let (lane, outcome) = self.lane_of(&codes)?;
        let s = self.sorted.get_mut(&d.bag).expect("looked up above");
        s.parcel.codes = codes;
        if lane == s.lane {
            return None;
        }
        let replaces = std::mem::replace(&mut s.lane, lane.clone());
        let s = self.sorted.get(&d.bag).expect("looked up above");
        let mut m = self.message(d.bag, &s.parcel, lane, outcome, Vec::new(), now_ms);
        m.replaces = Some(replaces);
        Some(m)
    }

    /// Corrections heard too late to change their parcel's lane, since last asked.
    pub fn take_too_late(&mut self) -> Vec<TooLate> {
        std::mem::take(&mut self.too_late)
    }

    /// Parcels whose lane must go now (their deadline less the margin has come).
    pub fn due(&mut self, now_ms: u64) -> Vec<i64> {
        let margin = self.cfg().margin_ms;
        self.sorted.retain(|_, s| now_ms < s.parcel.deadline_ms + REMEMBER_SORTED_MS);
        self.pending.iter().filter(|(_, p)| now_ms + margin >= p.deadline_ms).map(|(b, _)| *b).collect()
    }

    /// The manual lane for an undecided parcel (no longer followed).
    pub fn manual(&mut self, bag: i64, now_ms: u64) -> Option<SortMsg> {
        let waiting = self.waiting_for(bag);
        let p = self.pending.remove(&bag)?;
        let lane = self.cfg().lanes.manual.clone();
        let m = self.message(bag, &p, lane.clone(), "manual", waiting, now_ms);
        self.sorted.insert(bag, Sorted { parcel: p, lane });
        Some(m)
    }

    fn message(
        &self,
        bag: i64,
        p: &Parcel,
        lane: String,
        outcome: &str,
        waiting_for: Vec<String>,
        now_ms: u64,
    ) -> SortMsg {
        SortMsg {
            format: FORMAT,
            line: self.line.clone(),
            node: self.node.clone(),
            bag,
            item_id: p.item_id.clone(),
            lane,
            outcome: outcome.into(),
            waiting_for,
            ended_ms: p.ended_ms,
            deadline_ms: p.deadline_ms,
            at_ms: now_ms,
            replaces: None,
        }
    }
}

/// What the node's sorter did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SortReport {
    /// Parcels sent to their outcome's lane before the deadline.
    pub sorted: u64,
    /// Parcels sent to the manual lane (undecided in time).
    pub manual: u64,
    /// Parcels whose lane could not go before their deadline: the sorter's default, manual.
    pub missed: u64,
    /// Parcels given a new lane before their divert point (a decision corrected after their
    /// lane went).
    pub rerouted: u64,
    /// Corrections heard after their parcel's divert point (less the margin): its lane stayed.
    pub too_late: u64,
}

/// A parcel to follow: the node has published it.
#[derive(Clone, Debug)]
pub struct NewParcel {
    pub bag: i64,
    pub item_id: Option<String>,
    pub ended_ms: u64,
}

/// The sorter task: hears decisions, sends lanes, until `parcels` closes and every parcel is
/// resolved (each is, by its deadline at the latest).
pub async fn run(
    client: async_nats::Client,
    mut sorting: Sorting,
    mut parcels: tokio::sync::mpsc::Receiver<NewParcel>,
    mut store: Store,
    actor: String,
    stream_cfg: stream::Config,
    records_url: Option<String>,
) -> anyhow::Result<SortReport> {
    // The hub's records are written beside the lanes, never in their way: a database that is
    // slow or gone must not make a parcel miss its deadline.
    let (to_records, recorder) = match records_url {
        Some(url) => {
            let (tx, rx) = tokio::sync::mpsc::channel(4096);
            (Some(tx), Some(tokio::spawn(record_lanes(url, rx, actor.clone()))))
        }
        None => (None, None),
    };
    let js = jetstream::new(client.clone());
    let mut report = SortReport::default();
    let (line, node, root) = (sorting.line.clone(), sorting.node.clone(), sorting.root().to_string());
    let mut decisions = client.subscribe(format!("{DECISION_ROOT}.*.{line}.{node}.*")).await?;
    // A decision heard is only a hint: a station's publish the decision stream refused (another
    // station of its agency decided first) is heard all the same. What counts is the stream's,
    // read back off the loop.
    let (stored_tx, mut stored) = tokio::sync::mpsc::channel::<(u64, DecisionMsg)>(1024);
    let mut latest = Latest::default();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let (mut open, mut hearing) = (true, true);
    let mut stream_ready = false;
    let mut said_stream: Option<String> = None;
    loop {
        let mut send = Vec::new();
        tokio::select! {
            p = parcels.recv(), if open => match p {
                Some(p) => send.extend(sorting.add(p.bag, p.item_id, p.ended_ms, crate::unix_ms())),
                None => open = false,
            },
            m = decisions.next(), if hearing => {
                hearing = m.is_some();
                if let Some(m) = m {
                    read_back_heard(&js, &m, &stored_tx, &line, &node);
                }
            }
            Some((seq, d)) = stored.recv() => {
                if latest.newer(seq, &d)
                    && let Some(s) = sorting.decided(&d, crate::unix_ms())
                {
                    send.push(s);
                }
            }
            _ = tick.tick() => {
                for bag in sorting.due(crate::unix_ms()) {
                    // Decisions missed while reconnecting are on the decision stream (every
                    // agency asked at once: each read waits half a second at most).
                    let waiting = sorting.waiting_for(bag);
                    let asked = waiting.iter().map(|agency| stored_decision(&js, agency, &line, &node, bag));
                    for (seq, d) in futures_util::future::join_all(asked).await.into_iter().flatten() {
                        if latest.newer(seq, &d)
                            && let Some(s) = sorting.decided(&d, crate::unix_ms())
                        {
                            send.push(s);
                        }
                    }
                    if let Some(s) = sorting.manual(bag, crate::unix_ms()) {
                        send.push(s);
                    }
                }
            }
        }
        for s in send {
            if !stream_ready {
                match ready_sort_stream(&js, stream_cfg.clone()).await {
                    Ok(()) => stream_ready = true,
                    Err(why) => {
                        if said_stream.as_deref() != Some(why.as_str()) {
                            eprintln!("sorter: {why}");
                            said_stream = Some(why);
                        }
                    }
                }
            }
            let delivered = deliver(&js, &root, &s).await;
            let sent = delivered != Delivered::Missed;
            let manual = s.outcome == "manual" || !sent;
            if let Some(earlier) = &s.replaces {
                // The parcel's first lane was counted; this one changes it, or not.
                if sent {
                    report.rerouted += 1;
                }
                let said =
                    if sent { "rerouted to" } else { "could not be rerouted before its deadline: stays in" };
                let lane = if sent { &s.lane } else { earlier };
                println!("bag {} {said} {lane} ({}; was {earlier}): a decision corrected", s.bag, s.outcome);
                let detail = json!({ "lane": s.lane, "replaces": earlier, "outcome": s.outcome, "sent": sent,
                                     "deadline_ms": s.deadline_ms, "item_id": s.item_id });
                if let Err(e) = store.log(crate::unix_ms(), &actor, "bag.rerouted", Some(s.bag), detail) {
                    eprintln!("archive: bag {}: {e}", s.bag);
                }
                if sent
                    && let Some(tx) = &to_records
                    && tx.try_send((s.clone(), sent)).is_err()
                {
                    eprintln!(
                        "bag {}: its new lane is in the archive's audit; the hub's records are behind",
                        s.bag
                    );
                }
                continue;
            }
            match (sent, manual) {
                (true, false) => report.sorted += 1,
                (true, true) => report.manual += 1,
                (false, _) => report.missed += 1,
            }
            let what = match delivered {
                Delivered::InTime => "lane",
                Delivered::ReadBack => "lane (its ack was lost; found on the stream, stored in time)",
                Delivered::Missed => "no lane before the deadline: the sorter's default",
            };
            println!(
                "bag {} {what} {} ({}{})",
                s.bag,
                if sent { s.lane.as_str() } else { "manual" },
                s.outcome,
                if s.waiting_for.is_empty() {
                    String::new()
                } else {
                    format!(", waiting for {}", s.waiting_for.join(", "))
                }
            );
            let detail = json!({ "lane": if sent { s.lane.clone() } else { "(sorter default)".into() },
                                 "outcome": s.outcome, "waiting_for": s.waiting_for, "sent": sent,
                                 "read_back": delivered == Delivered::ReadBack,
                                 "deadline_ms": s.deadline_ms, "item_id": s.item_id });
            if let Err(e) = store.record_sorted(s.bag, manual, &detail, crate::unix_ms(), &actor) {
                eprintln!("archive: bag {}: {e}", s.bag);
            }
            if let Some(tx) = &to_records
                && tx.try_send((s.clone(), sent)).is_err()
            {
                eprintln!("bag {}: its lane is in the archive's audit; the hub's records are behind", s.bag);
            }
        }
        for late in sorting.take_too_late() {
            report.too_late += 1;
            println!(
                "bag {}: {} decided {} after the parcel passed the point where its lane could change: it stays in its lane",
                late.bag, late.agency, late.code
            );
            let detail = json!({ "agency": late.agency, "code": late.code });
            if let Err(e) =
                store.log(crate::unix_ms(), &actor, "bag.decided_after_lane", Some(late.bag), detail)
            {
                eprintln!("archive: bag {}: {e}", late.bag);
            }
        }
        if !open && sorting.is_empty() {
            drop(to_records);
            if let Some(r) = recorder {
                // What the database has not taken yet: a few more seconds, then the archive's
                // audit is what holds it.
                let _ = tokio::time::timeout(Duration::from_secs(10), r).await;
            }
            return Ok(report);
        }
    }
}

/// Lanes into the hub's records, in order, each retried until the database takes it.
async fn record_lanes(url: String, mut lanes: tokio::sync::mpsc::Receiver<(SortMsg, bool)>, actor: String) {
    let mut records: Option<super::records::Records> = None;
    let mut said = false;
    while let Some((s, sent)) = lanes.recv().await {
        let mut pause = Duration::from_millis(200);
        loop {
            if records.as_ref().is_none_or(|r| r.is_closed()) {
                let connect = super::records::Records::connect(&url);
                records =
                    tokio::time::timeout(Duration::from_secs(5), connect).await.ok().and_then(|r| r.ok());
            }
            let done = match records.as_mut() {
                Some(r) => r.record_lane(&s, sent, &actor).await.is_ok(),
                None => false,
            };
            if done {
                said = false;
                break;
            }
            records = None;
            if !said {
                eprintln!("the hub's records do not answer: lanes wait (bag {} first)", s.bag);
                said = true;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}

/// How a lane went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivered {
    /// Acknowledged by the broker before the deadline (or held from an earlier run).
    InTime,
    /// No acknowledgement in time, but the stream, read back after the deadline, holds it
    /// stored before the deadline (the ack was lost while a broker failed or a cable came back).
    ReadBack,
    /// Not on the broker before the deadline, or the broker could not be asked.
    Missed,
}

/// Send a lane, retrying until the parcel's deadline; when no ack came in time, the stream
/// read back to learn whether the broker took it all the same.
async fn deliver(js: &jetstream::Context, root: &str, s: &SortMsg) -> Delivered {
    let (sent, tried) = publish_lane(js, root, s).await;
    if sent {
        Delivered::InTime
    } else if tried && stored_in_time(js, root, s).await {
        Delivered::ReadBack
    } else {
        Delivered::Missed
    }
}

/// Whether the sort stream holds this parcel's lane stored by the deadline (the broker's clock
/// against the node's: the hub's hosts keep time by NTP).
async fn stored_in_time(js: &jetstream::Context, root: &str, s: &SortMsg) -> bool {
    let subject = sort_subject(root, &s.line, &s.node, s.bag);
    let ask = async {
        let stream = js.get_stream(SORT_STREAM).await.ok()?;
        let m = stream.get_last_raw_message_by_subject(&subject).await.ok()?;
        // This very lane (a new lane's read-back would otherwise find the parcel's first).
        let held: SortMsg = serde_json::from_slice(&m.payload).ok()?;
        if (&held.lane, held.at_ms, &held.replaces) != (&s.lane, s.at_ms, &s.replaces) {
            return Some(false);
        }
        let stored_ms = (m.time.unix_timestamp_nanos() / 1_000_000) as u64;
        Some(stored_ms <= s.deadline_ms)
    };
    tokio::time::timeout(Duration::from_secs(2), ask).await.ok().flatten().unwrap_or(false)
}

/// Publish until acknowledged or the deadline: (acknowledged in time, at least one try sent).
async fn publish_lane(js: &jetstream::Context, root: &str, s: &SortMsg) -> (bool, bool) {
    let subject = sort_subject(root, &s.line, &s.node, s.bag);
    let Ok(body) = serde_json::to_vec(s) else { return (false, false) };
    let mut tried = false;
    loop {
        let left = Duration::from_millis(s.deadline_ms.saturating_sub(crate::unix_ms()));
        if left.is_zero() {
            return (false, tried);
        }
        tried = true;
        // A parcel's first lane: once (a lane there already is this node's, from a run before).
        // A new lane: once per change (the broker's duplicate window), after the first.
        let msg = match &s.replaces {
            None => PublishMessage::build()
                .payload(body.clone().into())
                .message_id(format!("sort.{}.{}.{}", s.line, s.node, s.bag))
                .expected_last_subject_sequence(0),
            Some(_) => PublishMessage::build()
                .payload(body.clone().into())
                .message_id(format!("sort.{}.{}.{}.{}", s.line, s.node, s.bag, s.at_ms)),
        };
        let ack = tokio::time::timeout(left, async {
            match js.send_publish(subject.clone(), msg).await {
                Ok(f) => f.await,
                Err(e) => Err(e),
            }
        })
        .await;
        match ack {
            Ok(Ok(_)) => return (crate::unix_ms() <= s.deadline_ms, true),
            Ok(Err(e)) if e.kind() == PublishErrorKind::WrongLastSequence => return (true, true),
            Ok(Err(e)) => {
                tracing::warn!(subject, "lane not taken yet ({e})");
                tokio::time::sleep(Duration::from_millis(200).min(left)).await;
            }
            Err(_) => return (false, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped hub line's site, 10 s from the scanner to the divert point.
    fn site() -> InspectionConfig {
        let mut site =
            InspectionConfig::from_toml(include_str!("../../hardware/sites/hub-line.toml")).unwrap();
        site.sorter.as_mut().unwrap().deadline_ms = 10_000;
        site
    }

    fn decision(agency: &str, code: &str, bag: i64) -> DecisionMsg {
        DecisionMsg {
            format: FORMAT,
            agency: agency.into(),
            code: code.into(),
            station: "s".into(),
            operator: "o".into(),
            level: "L2".into(),
            line: "L1".into(),
            node: "n1".into(),
            bag,
            scan_sha256: String::new(),
            at_ms: 0,
            held_ms: 0,
            reason: None,
            marks: Vec::new(),
            key: None,
            signature: None,
            corrects: None,
        }
    }

    #[test]
    fn a_parcel_gets_its_lane_when_every_agency_has_decided_and_the_manual_lane_at_its_deadline() {
        assert!(Sorting::new(InspectionConfig::default(), "L1", "n1").is_none(), "no [sorter]: no sorting");
        let mut s = Sorting::new(site(), "L1", "n1").unwrap();
        assert_eq!(s.add(1, Some("EMS123".into()), 1_000, 1_000), None);
        assert_eq!(s.add(2, None, 2_000, 2_000), None);
        assert_eq!(s.decided(&decision("customs", "release", 1), 1_500), None);
        assert_eq!(s.waiting_for(1), vec!["quarantine".to_string()]);
        // A code the agency does not have, another node's bag, a bag not followed: nothing.
        assert_eq!(s.decided(&decision("quarantine", "shred", 1), 1_600), None);
        let mut other = decision("quarantine", "release", 1);
        other.node = "n2".into();
        assert_eq!(s.decided(&other, 1_600), None);
        assert_eq!(s.decided(&decision("quarantine", "release", 7), 1_600), None);
        let m = s.decided(&decision("quarantine", "treat", 1), 1_700).unwrap();
        assert_eq!(
            (m.lane.as_str(), m.outcome.as_str(), m.item_id.as_deref()),
            ("3", "held", Some("EMS123"))
        );
        assert_eq!((m.ended_ms, m.deadline_ms, m.at_ms), (1_000, 11_000, 1_700));
        // Bag 2: nothing due until its deadline less the margin; then the manual lane.
        assert!(s.due(10_999).is_empty());
        assert_eq!(s.due(11_000), vec![2]);
        let m = s.manual(2, 11_000).unwrap();
        assert_eq!((m.lane.as_str(), m.outcome.as_str()), ("9", "manual"));
        assert_eq!(m.waiting_for, vec!["customs".to_string(), "quarantine".to_string()]);
        assert!(s.is_empty());
        // Decisions heard before their parcel is followed count once it is.
        assert_eq!(s.decided(&decision("customs", "open", 5), 12_000), None);
        assert_eq!(s.decided(&decision("quarantine", "release", 5), 12_000), None);
        let m = s.add(5, None, 11_500, 12_100).unwrap();
        assert_eq!((m.lane.as_str(), m.outcome.as_str()), ("2", "opened"));
        assert!(s.is_empty());
    }

    #[test]
    fn a_corrected_decision_changes_the_lane_until_the_divert_point_and_is_noted_after() {
        let mut s = Sorting::new(site(), "L1", "n1").unwrap();
        // Corrected before the lane went: the corrected code counts.
        s.add(1, None, 1_000, 1_000);
        assert_eq!(s.decided(&decision("customs", "open", 1), 1_100), None);
        assert_eq!(s.decided(&decision("customs", "release", 1), 1_200), None);
        let m = s.decided(&decision("quarantine", "release", 1), 1_300).unwrap();
        assert_eq!((m.lane.as_str(), m.outcome.as_str(), m.replaces.as_deref()), ("1", "released", None));
        // Corrected after: a new lane, naming the one it replaces, while the parcel has not
        // reached its divert point less the margin (11 000 - 1 000).
        let m = s.decided(&decision("customs", "open", 1), 5_000).unwrap();
        assert_eq!((m.lane.as_str(), m.outcome.as_str(), m.replaces.as_deref()), ("2", "opened", Some("1")));
        assert_eq!((m.deadline_ms, m.at_ms), (11_000, 5_000));
        // The same code again, or a correction that keeps the lane: nothing to send.
        assert_eq!(s.decided(&decision("customs", "open", 1), 5_100), None);
        let m = s.decided(&decision("quarantine", "treat", 1), 5_200).unwrap();
        assert_eq!((m.lane.as_str(), m.outcome.as_str(), m.replaces.as_deref()), ("3", "held", Some("2")));
        assert_eq!(s.decided(&decision("quarantine", "destroy", 1), 5_300), None, "held still: lane 3");
        // Too late: the lane stays, the correction is noted once.
        assert_eq!(s.decided(&decision("customs", "release", 1), 10_000), None);
        assert_eq!(
            s.take_too_late(),
            vec![TooLate { bag: 1, agency: "customs".into(), code: "release".into() }]
        );
        assert!(s.take_too_late().is_empty());
        // A parcel sent to the manual lane: a decision after it is too late too.
        s.add(2, None, 2_000, 2_000);
        assert_eq!(s.due(11_000), vec![2]);
        s.manual(2, 11_000).unwrap();
        assert_eq!(s.decided(&decision("customs", "release", 2), 11_100), None);
        assert_eq!(s.take_too_late().len(), 1);
        // Remembered ten minutes past the divert point, then forgotten (heard after that, a
        // decision waits as for a parcel not followed yet, bounded).
        s.due(11_000 + REMEMBER_SORTED_MS);
        assert_eq!(s.decided(&decision("customs", "open", 1), 11_000 + REMEMBER_SORTED_MS), None);
        assert!(s.take_too_late().is_empty());
        // A correction heard before its parcel is followed replaces the agency's earlier one.
        s.decided(&decision("customs", "open", 9), 20_000);
        s.decided(&decision("customs", "release", 9), 20_100);
        s.decided(&decision("quarantine", "release", 9), 20_200);
        let m = s.add(9, None, 20_000, 20_300).unwrap();
        assert_eq!(m.outcome, "released");
    }
}
