//! A screening station's side of the hub: the next bag for its agency, held while the operator
//! looks, and the agency's one decision on it.
//!
//! Every agency reads every bag through a durable pull consumer of its own (`screen-<agency>`);
//! within an agency the consumer hands each bag to one station at a time. A station holds its
//! bag by progress acks; a bag not decided (or held) within the consumer's ack wait, or whose
//! station died, is delivered to another station. The decision goes to the decision stream on
//! the bag's own subject with "expected last subject sequence 0", so whichever station decides
//! first is the agency's decision and a late second one is refused by the broker ("decided
//! elsewhere") rather than recorded twice; only then is the bag acknowledged (double ack: the
//! broker confirms it).
//!
//! Where the site has the agency screen automatically first (L1), a bag the alarm aids pass is
//! decided at once with the agency's release code (operator "(auto)", level L1) and never shown;
//! a bag they alarm on goes to the operator with the reasons.
//!
//! Owns: the consumer's and decision stream's set-up, taking and checking a bag (announcement
//! decoded under limits, scan fetched and its SHA-256 checked; a bag that fails is terminated,
//! never retried), the automatic level, holding, deciding, handing back. Must not import: egui, wgpu, the desk.

use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    context::PublishErrorKind,
    message::PublishMessage,
    object_store, stream,
};
use futures_util::StreamExt;

use super::access::{self, Credentials, Identity};
use super::{BagAnnouncement, DECISION_ROOT, DECISIONS, DecisionMsg, FORMAT, HubMark, HubUrl};
use crate::domain::automatic::{self, Alarm, AutomaticConfig, BagImage, Verdict};
use crate::domain::calib::Calibration;
use crate::domain::inspection::AUTO_OPERATOR;
use crate::domain::profile::ScannerProfile;
use crate::files::store::hex_sha256;

/// How a station takes bags.
#[derive(Clone, Debug)]
pub struct StationConfig {
    pub hub: HubUrl,
    pub agency: String,
    /// This station's name (for the decision and the broker's client list).
    pub station: String,
    /// A bag neither decided nor held this long goes to another station (the consumer's ack
    /// wait, set by the agency's first station).
    pub hold: Duration,
    /// Deliveries of one bag before the broker gives up on it.
    pub max_deliver: i64,
    /// For the streams when this station creates them.
    pub replicas: usize,
    pub keep: Duration,
    /// Its key, when the hub uses keys (`--credentials`).
    pub credentials: Option<Credentials>,
    /// The automatic level (L1) first, when the site has its agency screen automatically.
    pub automatic: Option<Automatic>,
    /// How long a bag announced as screened for this agency at its scanner's desk waits for
    /// the desk's decision (from its announcement reaching the broker); not decided there by
    /// then, it is screened here. A desk's claim is never taken on trust: a node that says its
    /// bags are screened at its desk only delays their screening on the hub.
    pub desk_wait: Duration,
}

/// How long a desk's bag waits for the desk's decision, unless a station is told otherwise.
pub const DESK_WAIT: Duration = Duration::from_secs(300);

/// L1 on a station: the site's aids, and the agency's code that clears a bag they pass.
#[derive(Clone, Debug)]
pub struct Automatic {
    pub aids: AutomaticConfig,
    pub release: String,
}

impl Automatic {
    /// L1 for `agency` as the site sets it: none when the site has no `[automatic]` section
    /// naming the agency.
    pub fn for_agency(site: &crate::domain::inspection::InspectionConfig, agency: &str) -> Option<Automatic> {
        let aids = site.automatic.as_ref().filter(|a| a.screens(agency))?;
        let release = site.agency(agency)?.release_code()?.code.clone();
        Some(Automatic { aids: aids.clone(), release })
    }

    /// The aids' verdict on a bag and its scan (a two-page TIFF, checked against its SHA-256).
    pub fn verdict(&self, bag: &BagAnnouncement, scan: &[u8]) -> Verdict {
        let unreadable = |why: String| Verdict::Alarm(vec![Alarm::Unreadable(why)]);
        let c = &bag.calibration;
        let cal = match Calibration::from_tables(
            c.dark_low.clone(),
            c.dark_high.clone(),
            c.air_low.clone(),
            c.air_high.clone(),
            c.full_scale,
        ) {
            Ok(cal) => cal,
            Err(e) => return unreadable(format!("calibration: {e}")),
        };
        // The aids look at the high-energy page only: the low one is not decoded.
        let page = match crate::files::io::raw_tiff_high_page(scan, &bag.scan.object) {
            Ok(p) => p,
            Err(e) => return unreadable(e.to_string()),
        };
        let high = page.as_standard_layout();
        let Some(high) = high.as_slice().filter(|_| page.ncols() == bag.channels) else {
            return unreadable(format!("{} channels in the scan, {} announced", page.ncols(), bag.channels));
        };
        let threshold = ScannerProfile::builtin(&bag.profile)
            .map(|p| p.material.dense_threshold)
            .ok_or_else(|| bag.profile.clone());
        let image = BagImage {
            high,
            channels: bag.channels,
            missing_rows: &bag.missing_rows,
            truncated: bag.truncated,
        };
        automatic::screen(&image, &cal, threshold, &self.aids)
    }
}

/// A bag on this station.
pub struct Taken {
    msg: jetstream::Message,
    pub bag: BagAnnouncement,
    pub scan: Vec<u8>,
    /// How many times the broker has delivered it (1: first station to see it).
    pub delivery: i64,
    pub taken: Instant,
    /// What the automatic level said, when the station screens automatically first (a bag
    /// given to the station's operator is an alarm).
    pub l1: Option<Verdict>,
}

/// What asking for the next bag gave.
pub enum Next {
    Bag(Box<Taken>),
    /// Decided without the operator: cleared by the automatic level here (`Recorded`), or found
    /// decided on the broker already (`Elsewhere`: a station that died between deciding and
    /// acknowledging; its scan is then not fetched). The caller records the decision where it
    /// keeps records, then calls [`Station::done`].
    Decided {
        t: Box<Taken>,
        outcome: Decided,
        decision: Box<DecisionMsg>,
    },
    /// A message on the bag subjects that is not a good bag (malformed, oversized, a scan that
    /// does not match): terminated, never delivered again.
    Refused {
        subject: String,
        why: String,
    },
    /// A bag the agency screens at its scanner's own desk (a live desk that publishes), decided
    /// there: let pass (acknowledged).
    AtDesk {
        line: String,
        node: String,
        bag: i64,
    },
    /// A bag screened at its desk, not decided there yet: handed back to the broker until the
    /// desk's time is up (`left`), then screened on the hub unless the desk has decided.
    DeskWaits {
        line: String,
        node: String,
        bag: i64,
        left: Duration,
    },
    Nothing,
}

/// A decision changed on a hub bag after the hub had the agency's: what the station sends.
#[derive(Clone, Debug)]
pub struct Correction {
    pub hub: crate::files::store::HubBag,
    pub scan_sha256: String,
    pub code: String,
    pub operator: String,
    pub level: String,
    pub at_ms: u64,
    pub reason: Option<String>,
    pub marks: Vec<HubMark>,
    /// The decision stream's message it replaces.
    pub corrects: u64,
}

/// What deciding gave.
#[derive(Debug, PartialEq)]
pub enum Decided {
    /// Recorded as the agency's decision, at this sequence of the decision stream.
    Recorded(u64),
    /// Another station of the agency decided the bag first: this decision was not recorded.
    Elsewhere(u64),
}

pub struct Station {
    cfg: StationConfig,
    js: jetstream::Context,
    consumer: PullConsumer,
    /// The decision stream, where a bag's decision is looked up before anyone screens it.
    decisions: stream::Stream,
    scans: Scans,
}

/// The hub's scans, read by whoever takes bags (stations, the hub's opening bench): each line's
/// bucket and the stream under it, opened when a bag of the line first comes (nodes create them).
pub struct Scans {
    js: jetstream::Context,
    opened: std::sync::Mutex<std::collections::HashMap<String, (object_store::ObjectStore, stream::Stream)>>,
}

impl Scans {
    pub fn new(js: jetstream::Context) -> Scans {
        Scans { js, opened: Default::default() }
    }

    /// The bag's scan, chunk by chunk from the bucket's stream through its leader. Not the
    /// object store's own reader: that makes an ephemeral consumer for every read, and a 2.9
    /// cluster may place it on a member that is down, so a third of reads hung until the
    /// request timed out while one broker of three was dead.
    pub async fn fetch(&self, bag: &BagAnnouncement) -> Result<Vec<u8>, ScanProblem> {
        let bucket = access::scans_bucket(&bag.line);
        if bag.scan.bucket != bucket || bag.scan.object != super::scan_object(&bag.line, &bag.node, bag.bag) {
            return Err(ScanProblem::Bad(format!("its scan is at {}/{}", bag.scan.bucket, bag.scan.object)));
        }
        let not_now =
            |e: &dyn std::fmt::Display| ScanProblem::NotNow(format!("scan {}: {e}", bag.scan.object).into());
        let opened = self.opened.lock().expect("not poisoned").get(&bucket).cloned();
        let (scans, scan_stream) = match opened {
            Some(x) => x,
            None => {
                let store = self.js.get_object_store(&bucket).await.map_err(|e| not_now(&e))?;
                let stream = self.js.get_stream(format!("OBJ_{bucket}")).await.map_err(|e| not_now(&e))?;
                self.opened
                    .lock()
                    .expect("not poisoned")
                    .insert(bucket.clone(), (store.clone(), stream.clone()));
                (store, stream)
            }
        };
        let info = scans.info(&bag.scan.object).await.map_err(|e| not_now(&e))?;
        if info.deleted || info.size as u64 != bag.scan.bytes {
            return Err(ScanProblem::Bad(format!(
                "its scan holds {} bytes, the announcement says {}",
                info.size, bag.scan.bytes
            )));
        }
        let subject = format!("$O.{bucket}.C.{}", info.nuid);
        let mut bytes = Vec::with_capacity(bag.scan.bytes as usize);
        let mut seq = 1;
        for _ in 0..info.chunks {
            let m = scan_stream
                .raw_message_builder()
                .sequence(seq)
                .next_by_subject(subject.clone())
                .send()
                .await
                .map_err(|e| not_now(&e))?;
            if m.subject.as_str() != subject || bytes.len() + m.payload.len() > info.size {
                return Err(ScanProblem::Bad("its scan's chunks do not add up to its size".into()));
            }
            bytes.extend_from_slice(&m.payload);
            seq = m.sequence + 1;
        }
        if hex_sha256(&bytes) != bag.scan.sha256 {
            return Err(ScanProblem::Bad("its scan does not match the SHA-256 announced".into()));
        }
        Ok(bytes)
    }
}

/// The bag stream's settings (nodes and stations create it alike, so whichever comes first
/// does, with the same settings).
pub fn bag_stream(replicas: usize, keep: Duration) -> stream::Config {
    hub_stream(super::STREAM, super::SUBJECT_ROOT, replicas, keep)
}

/// A hub stream: every subject under `root`, kept `keep` on file, a 2-minute window in which
/// the broker also refuses a message id it has seen.
pub fn hub_stream(name: &str, root: &str, replicas: usize, keep: Duration) -> stream::Config {
    stream::Config {
        name: name.into(),
        subjects: vec![format!("{root}.>")],
        max_age: keep,
        num_replicas: replicas,
        duplicate_window: Duration::from_secs(120),
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// A line's scans bucket settings.
pub fn scan_bucket(bucket: &str, replicas: usize, keep: Duration) -> object_store::Config {
    object_store::Config {
        bucket: bucket.into(),
        description: Some("Twinspect scans (two-page 16-bit TIFF), named line/node/bag".into()),
        max_age: keep,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// A line's scans bucket, created when this is its first node (or the hub's set-up).
pub async fn line_scans(
    js: &jetstream::Context,
    line: &str,
    replicas: usize,
    keep: Duration,
) -> Result<object_store::ObjectStore, async_nats::Error> {
    let bucket = access::scans_bucket(line);
    Ok(match js.get_object_store(&bucket).await {
        Ok(s) => s,
        Err(_) => js.create_object_store(scan_bucket(&bucket, replicas, keep)).await?,
    })
}

/// The decision stream's settings.
pub fn decision_stream(replicas: usize, keep: Duration) -> stream::Config {
    hub_stream(DECISIONS, DECISION_ROOT, replicas, keep)
}

/// An agency's consumer: every bag, each to one of the agency's stations at a time.
pub fn agency_consumer(agency: &str, hold: Duration, max_deliver: i64) -> pull::Config {
    let name = access::agency_consumer(agency);
    pull::Config {
        durable_name: Some(name),
        description: Some(format!("every bag, once per {agency} station")),
        ack_policy: AckPolicy::Explicit,
        ack_wait: hold,
        max_deliver,
        deliver_policy: DeliverPolicy::All,
        ..Default::default()
    }
}

impl Station {
    pub async fn connect(cfg: StationConfig) -> Result<Station, async_nats::Error> {
        super::check_name("agency", &cfg.agency)?;
        super::check_name("station", &cfg.station)?;
        let who = Identity::Station { agency: cfg.agency.clone(), station: cfg.station.clone() };
        let name = format!("twinspect station {} ({})", cfg.station, cfg.agency);
        let client = access::reporting_options(name, &who, cfg.credentials.as_ref())
            .connect(cfg.hub.servers.clone())
            .await?;
        let js = jetstream::new(client);
        let bags = js.get_or_create_stream(bag_stream(cfg.replicas, cfg.keep)).await?;
        let decisions = js.get_or_create_stream(decision_stream(cfg.replicas, cfg.keep)).await?;
        let consumer: PullConsumer = bags
            .get_or_create_consumer(
                &access::agency_consumer(&cfg.agency),
                agency_consumer(&cfg.agency, cfg.hold, cfg.max_deliver),
            )
            .await?;
        Ok(Station { cfg, scans: Scans::new(js.clone()), js, consumer, decisions })
    }

    /// The next bag for this agency, waiting at most `wait` for one (a pull request the broker
    /// holds open: `fetch` would answer "nothing" at once and make an idle station spin).
    pub async fn next(&self, wait: Duration) -> Result<Next, async_nats::Error> {
        let mut batch = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| format!("asking for a bag: {e}"))?;
        let Some(msg) = batch.next().await else { return Ok(Next::Nothing) };
        let msg = msg.map_err(|e| format!("receiving a bag: {e}"))?;
        let subject = msg.subject.to_string();
        let delivery = msg.info().map(|i| i.delivered).unwrap_or(1);
        let bag = match BagAnnouncement::decode(&msg.payload) {
            Ok(b) => b,
            Err(why) => return self.refuse(msg, subject, why).await,
        };
        if subject != super::bag_subject(&bag.line, &bag.node, bag.bag) {
            let why = format!("it names bag {}.{}.{} on another subject", bag.line, bag.node, bag.bag);
            return self.refuse(msg, subject, why).await;
        }
        let subject_d = super::decision_subject(&self.cfg.agency, &bag.line, &bag.node, bag.bag);
        // Screened at its scanner's desk, which sends the agency's decision: not this station's
        // once the desk has decided; until the desk's time is up, back to the broker; then here.
        // What the agency's subject holds: its chain ([`super::chain`]); a message published
        // around the broker's check counts for nothing.
        let chain = match super::chain::read_chain_on(&self.decisions, &subject_d).await {
            Ok(c) => c,
            Err(why) => {
                msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await?;
                return Err(format!("looking up {subject_d}: {why}").into());
            }
        };
        if bag.screened_at_desk.contains(&self.cfg.agency) {
            match &chain.in_force {
                Some(_) => {
                    msg.double_ack().await?;
                    return Ok(Next::AtDesk { line: bag.line, node: bag.node, bag: bag.bag });
                }
                None => {
                    // The broker's time of the announcement (the hub's hosts keep time by NTP).
                    let now = crate::unix_ms();
                    let announced = msg
                        .info()
                        .map(|i| (i.published.unix_timestamp_nanos() / 1_000_000) as u64)
                        .unwrap_or(now);
                    let age = Duration::from_millis(now.saturating_sub(announced));
                    if let Some(left) = self.cfg.desk_wait.checked_sub(age).filter(|l| !l.is_zero()) {
                        // At least a second: a nak is a delivery, and deliveries are counted.
                        let left = left.max(Duration::from_secs(1));
                        msg.ack_with(AckKind::Nak(Some(left))).await?;
                        return Ok(Next::DeskWaits { line: bag.line, node: bag.node, bag: bag.bag, left });
                    }
                    println!(
                        "bag {}.{}.{}: not decided at its desk within {} s: screened here",
                        bag.line,
                        bag.node,
                        bag.bag,
                        self.cfg.desk_wait.as_secs()
                    );
                }
            }
        }
        // Decided already (its station died before acknowledging): nobody needs to look again.
        // On this very scan (an announcement whose scan differs is checked below).
        if let Some((seq, decision)) = chain.in_force
            && decision.scan_sha256 == bag.scan.sha256
        {
            let t = Taken { msg, bag, scan: Vec::new(), delivery, taken: Instant::now(), l1: None };
            let outcome = Decided::Elsewhere(seq);
            return Ok(Next::Decided { t: Box::new(t), outcome, decision: Box::new(decision) });
        }
        let scan = match self.scans.fetch(&bag).await {
            Ok(s) => s,
            Err(ScanProblem::Bad(why)) => return self.refuse(msg, subject, why).await,
            Err(ScanProblem::NotNow(e)) => {
                // The scan store is unreachable this moment: another try soon, maybe elsewhere.
                msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await?;
                return Err(e);
            }
        };
        let l1 = self.cfg.automatic.as_ref().map(|a| a.verdict(&bag, &scan));
        let t = Taken { msg, bag, scan, delivery, taken: Instant::now(), l1 };
        let (Some(a), Some(v @ Verdict::Clear { .. })) = (&self.cfg.automatic, &t.l1) else {
            return Ok(Next::Bag(Box::new(t)));
        };
        match self.decide(&t, &a.release, AUTO_OPERATOR, "L1", Some(v.describe()), Vec::new()).await {
            Ok((outcome, decision)) => {
                Ok(Next::Decided { t: Box::new(t), outcome, decision: Box::new(decision) })
            }
            Err(e) => {
                let _ = self.hand_back_later(t).await;
                Err(e)
            }
        }
    }

    async fn refuse(
        &self,
        msg: jetstream::Message,
        subject: String,
        why: String,
    ) -> Result<Next, async_nats::Error> {
        tracing::warn!(subject, "refused: {why}");
        msg.ack_with(AckKind::Term).await?;
        Ok(Next::Refused { subject, why })
    }

    /// Keep the bag while the operator looks (call well within the hold time).
    pub async fn hold(&self, t: &Taken) -> Result<(), async_nats::Error> {
        t.msg.ack_with(AckKind::Progress).await
    }

    /// Give the bag back undecided (the station is closing): another station gets it now.
    pub async fn hand_back(&self, t: Taken) -> Result<(), async_nats::Error> {
        t.msg.ack_with(AckKind::Nak(None)).await
    }

    /// Everything said to the broker so far is sent (acks and naks are buffered: a station
    /// that stops right after handing a bag back would otherwise leave it to the hold time).
    pub async fn flush(&self) {
        if let Err(e) = self.js.client().flush().await {
            tracing::warn!("hub: flushing: {e}");
        }
    }

    /// Give the bag back after a failure here (the broker or the records did not answer): it
    /// comes again after a pause, not at once, so a passing outage does not use up its
    /// deliveries.
    pub async fn hand_back_later(&self, t: Taken) -> Result<(), async_nats::Error> {
        t.msg.ack_with(AckKind::Nak(Some(Duration::from_secs(2)))).await
    }

    /// The agency's decision on the bag: this one, or the one another station recorded first
    /// (read back from the broker, so the caller can record it wherever it keeps records). The
    /// bag stays on this station until [`Station::done`] (or goes back with
    /// [`Station::hand_back`]).
    pub async fn decide(
        &self,
        t: &Taken,
        code: &str,
        operator: &str,
        level: &str,
        reason: Option<String>,
        marks: Vec<HubMark>,
    ) -> Result<(Decided, DecisionMsg), async_nats::Error> {
        let b = &t.bag;
        let d = DecisionMsg {
            format: FORMAT,
            agency: self.cfg.agency.clone(),
            code: code.into(),
            station: self.cfg.station.clone(),
            operator: operator.into(),
            level: level.into(),
            line: b.line.clone(),
            node: b.node.clone(),
            bag: b.bag,
            scan_sha256: b.scan.sha256.clone(),
            at_ms: crate::unix_ms(),
            held_ms: t.taken.elapsed().as_millis() as u64,
            reason,
            marks,
            key: None,
            signature: None,
            corrects: None,
        };
        let d = match &self.cfg.credentials {
            Some(c) => c.sign_decision(d),
            None => d,
        };
        let subject = super::decision_subject(&self.cfg.agency, &b.line, &b.node, b.bag);
        let payload: Vec<u8> = serde_json::to_vec(&d)?;
        // The operator has decided: keep the bag and try again for a while rather than hand it
        // back (a stream electing a new leader after a broker died answers "no responders" or
        // nothing for a few seconds; handing back at once burned through the deliveries).
        let mut pause = Duration::from_millis(250);
        let give_up = Instant::now() + self.cfg.hold.max(Duration::from_secs(10));
        loop {
            let msg =
                PublishMessage::build().payload(payload.clone().into()).expected_last_subject_sequence(0);
            let ack = match self.js.send_publish(subject.clone(), msg).await {
                Ok(f) => f.await,
                Err(e) => Err(e),
            };
            match ack {
                Ok(ack) => return Ok((Decided::Recorded(ack.sequence), d)),
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    // The agency's decision in force there (a raw message that is not a link of
                    // its chain counts for nothing).
                    let chain = super::chain::read_chain_on(&self.decisions, &subject).await?;
                    return match (chain.in_force, chain.refused.first()) {
                        (Some((seq, theirs)), _) => Ok((Decided::Elsewhere(seq), theirs)),
                        (None, Some((seq, why))) => Err(format!(
                            "{subject}: holds no decision of the agency's, and message #{seq} there is not one ({why})"
                        )
                        .into()),
                        (None, None) => Err(format!("{subject}: the decision refused, and nothing there").into()),
                    };
                }
                Err(e) if Instant::now() + pause < give_up => {
                    tracing::warn!(subject, "decision not taken yet ({e}); trying again");
                    let _ = self.hold(t).await;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The bag is finished on this station (its decision is on the broker and recorded):
    /// acknowledged, the broker confirming.
    pub async fn done(&self, t: Taken) -> Result<(), async_nats::Error> {
        t.msg.double_ack().await
    }

    /// A correction of the agency's decision on a hub bag decided before (the hub holds it as
    /// message `corrects`): signed where the station has a key, sent only while that message
    /// is still the subject's last. Its sequence and the decision the hub then holds (this
    /// correction, or a later one of the agency's that came first).
    pub async fn correct(&self, c: Correction) -> Result<(u64, DecisionMsg), SendFailure> {
        let d = DecisionMsg {
            format: FORMAT,
            agency: self.cfg.agency.clone(),
            code: c.code,
            station: self.cfg.station.clone(),
            operator: c.operator,
            level: c.level,
            line: c.hub.line,
            node: c.hub.node,
            bag: c.hub.bag,
            scan_sha256: c.scan_sha256,
            at_ms: c.at_ms,
            held_ms: 0,
            reason: c.reason,
            marks: c.marks,
            key: None,
            signature: None,
            corrects: Some(c.corrects),
        };
        let d = match &self.cfg.credentials {
            Some(c) => c.sign_decision(d),
            None => d,
        };
        send_decision(&self.js, d).await
    }

    /// The bag's position in the bag stream.
    pub fn stream_seq(t: &Taken) -> u64 {
        t.msg.info().map(|i| i.stream_sequence).unwrap_or(0)
    }
}

/// Decision `d` on the decision stream: its sequence and the decision the stream holds (`d`;
/// else the agency's decision in force there, the last link of its chain, which came before
/// it). A correction goes only where the decision it corrects is still the subject's last
/// message; one that cannot ever go (what it corrects is gone, or a message that is not a link
/// follows it) is refused.
pub(super) async fn send_decision(
    js: &jetstream::Context,
    d: DecisionMsg,
) -> Result<(u64, DecisionMsg), SendFailure> {
    let subject = super::decision_subject(&d.agency, &d.line, &d.node, d.bag);
    let payload = serde_json::to_vec(&d).map_err(|e| SendFailure::NotNow(e.to_string()))?;
    let msg = PublishMessage::build()
        .payload(payload.into())
        .expected_last_subject_sequence(d.corrects.unwrap_or(0));
    let ack = match js.send_publish(subject.clone(), msg).await {
        Ok(f) => f.await,
        Err(e) => Err(e),
    };
    match ack {
        Ok(ack) => Ok((ack.sequence, d)),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
            // What the hub holds is the chain's last link; a message that is not one at the
            // subject's end (a raw publish) leaves the agency's decision as it was, and no
            // correction can follow it.
            let chain = super::chain::read_chain(js, &subject).await.map_err(SendFailure::NotNow)?;
            let not_a_link = chain.refused.last().map(|(seq, why)| {
                format!("{subject}: its last message (#{seq}) is not a link of the agency's decision chain ({why})")
            });
            match (chain.in_force, d.corrects) {
                // What it corrects is still in force, and the broker refused it: something
                // that is not a link follows (never to go), or a moment's race.
                (Some(held), Some(earlier)) if held.0 == earlier && held.1 != d => Err(match not_a_link {
                    Some(why) => SendFailure::Refused(why),
                    None => {
                        SendFailure::NotNow(format!("{subject}: refused, its last message is #{earlier}"))
                    }
                }),
                // This very decision (an earlier try was stored, its ack lost), another
                // station's first, or another station's newer correction: what the hub holds.
                (Some(held), _) => Ok(held),
                (None, corrects) => Err(match (not_a_link, corrects) {
                    (Some(why), _) => SendFailure::Refused(why),
                    // A correction of a decision the hub no longer holds (removed with its age).
                    (None, Some(_)) => SendFailure::Refused(format!(
                        "{subject}: the hub no longer holds the decision it corrects"
                    )),
                    (None, None) => SendFailure::NotNow(format!("{subject}: refused, and holds nothing")),
                }),
            }
        }
        Err(e) => Err(SendFailure::NotNow(format!("{subject}: {e}"))),
    }
}

/// Why a decision did not reach the decision stream.
#[derive(Debug)]
pub enum SendFailure {
    /// The broker could not take it this moment: another try later.
    NotNow(String),
    /// Never: the subject no longer holds what it corrects, or ends with a message that is not
    /// a link of the agency's chain ([`super::chain`]).
    Refused(String),
}

impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendFailure::NotNow(why) | SendFailure::Refused(why) => f.write_str(why),
        }
    }
}

/// Why a scan could not be had: the broker's copy is bad (never worth another try), or the broker
/// could not be asked this moment.
pub enum ScanProblem {
    Bad(String),
    NotNow(async_nats::Error),
}
