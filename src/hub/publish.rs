//! A scanner node's publisher: every complete bag of the node's archive, oldest first, to the
//! hub's JetStream, each exactly once, whatever the broker does meanwhile.
//!
//! The archive is the outbox. A bag is in it from the moment the capture loop commits it; the
//! publisher puts its scan into the object store (skipped when the broker already holds the same
//! bytes), then publishes its announcement on a subject of its own with "expected last subject
//! sequence 0" and a message id, and only after the broker's ack records it as published in the
//! archive (with an audit entry). A broker that is down or unreachable stops nothing but this
//! thread: capture goes on, bags wait in the archive, and the client's reconnects bring them out.
//! A run killed between the ack and the record finds the bag on the broker next time (the broker
//! refuses the second announcement) and records it as found, so nothing goes twice.
//!
//! Owns: the publisher thread (a tokio runtime of its own), its connection, the stream and bucket
//! set-up, the tasks beside it (the sorter's, the decisions' copy). Must not import: egui, wgpu, the desk, the sources.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, object_store, stream};

use super::access::{self, Credentials, Identity};
use super::barcode::{BarcodeConfig, BarcodeJoin, Reader};
use super::records::{Records, RecordsError};
use super::sorter::{self, NewParcel, SortReport, Sorting};
use super::{BagAnnouncement, CalibrationMsg, DECISIONS, DecisionMsg, FORMAT, HubUrl, STREAM, ScanRef};
use crate::files::store::{BagRow, Store, hex_sha256};

/// Bytes in each of a scan's messages in the object store.
pub const SCAN_CHUNK: usize = 512 * 1024;

/// How a node publishes.
#[derive(Clone, Debug)]
pub struct Config {
    pub hub: HubUrl,
    pub line: String,
    pub node: String,
    /// Replicas of the stream and bucket when this node creates them (3 on a 3-server cluster).
    pub replicas: usize,
    /// How long the broker keeps bags and scans.
    pub keep: Duration,
    /// The hub's PostgreSQL records (`postgres://...`): each bag is recorded there too before
    /// it counts as published.
    pub records: Option<String>,
    /// Its key, when the hub uses keys (`--credentials`).
    pub credentials: Option<Credentials>,
    /// The site, when its `[sorter]` section gives this line's parcels lanes.
    pub site: Option<crate::domain::inspection::InspectionConfig>,
    /// The line's barcode reader, whose reads become the parcels' ids.
    pub barcode: Option<BarcodeConfig>,
    /// A live desk that publishes (`run --publish`): the agencies that screen at its screens,
    /// each as a station of the hub. Their stations on the hub let the desk's bags pass and the
    /// desk sends their decisions. Empty for a node.
    pub desk: Vec<DeskScreen>,
}

/// An agency that screens a publishing desk's bags at the desk, as a station of the hub.
#[derive(Clone, Debug)]
pub struct DeskScreen {
    pub agency: String,
    /// Its station name on the hub (the desk's name and the screen's).
    pub station: String,
    /// Its key, when the hub uses keys: the agency's decisions are signed with it.
    pub credentials: Option<Credentials>,
}

/// What the publisher did, for the node's summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Bags announced by this run.
    pub published: u64,
    /// Bags the broker already held from an earlier run (recorded now, not sent again).
    pub found_on_broker: u64,
    /// Complete bags still waiting in the archive when the publisher stopped.
    pub waiting: usize,
    /// Bags refused for good (their scan no longer matches the archive's checksum).
    pub refused: Vec<i64>,
    /// What the line's sorter was told, when the site has one.
    pub sort: Option<SortReport>,
    /// Barcodes: (parcels read, parcels not read, reads no parcel took, unreadable lines).
    pub barcodes: Option<(u64, u64, u64, u64)>,
    /// A publishing desk's decisions sent to the hub by this run.
    pub decisions_sent: u64,
}

enum Wake {
    Bag,
    /// Finish what is waiting, but stop at this instant.
    Drain(Instant),
}

/// Counters the node can read while the publisher runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bags this run recorded as on the hub (sent now, or found there from a run before).
    pub published: AtomicU64,
    /// A publishing desk's decisions sent to the hub.
    pub decisions: AtomicU64,
    /// Its decisions on published bags not sent yet (as last counted).
    pub decisions_waiting: AtomicU64,
    /// The last try to send one failed (the hub, its records or a key).
    pub decisions_failing: AtomicBool,
    /// Of those, corrections: a decision changed at the desk after the hub had the agency's.
    pub corrections: AtomicU64,
    pub connected: AtomicBool,
}

/// The publisher thread.
pub struct Publisher {
    wake: tokio::sync::mpsc::Sender<Wake>,
    thread: std::thread::JoinHandle<anyhow::Result<Report>>,
    pub progress: Arc<Progress>,
}

impl Publisher {
    /// Start publishing from `store` (a connection of its own: `Store::second_writer`).
    pub fn start(cfg: Config, store: Store) -> anyhow::Result<Publisher> {
        super::check_name("line", &cfg.line)?;
        super::check_name("node", &cfg.node)?;
        let (wake, rx) = tokio::sync::mpsc::channel(64);
        let progress = Arc::new(Progress::default());
        let p = progress.clone();
        let thread = std::thread::Builder::new().name("hub-publisher".into()).spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(run(cfg, store, rx, p))
        })?;
        Ok(Publisher { wake, thread, progress })
    }

    /// A bag has been archived: publish it now rather than at the next look (a hint; never blocks).
    pub fn wake(&self) {
        let _ = self.wake.try_send(Wake::Bag);
    }

    /// Publish what is waiting for at most `limit`, then stop; what is left stays in the archive
    /// for the next run.
    pub fn finish(self, limit: Duration) -> anyhow::Result<Report> {
        let _ = self.wake.blocking_send(Wake::Drain(Instant::now() + limit));
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => anyhow::bail!("the hub publisher panicked"),
        }
    }
}

/// Outcome of one attempt at a bag.
enum Attempt {
    Published(u64),
    Found(u64),
}

#[derive(Debug, thiserror::Error)]
enum PublishFailure {
    /// The bag cannot go (its scan changed behind the archive's back): never retried.
    #[error("{0}")]
    Refused(String),
    /// The broker or the archive failed this time: retried.
    #[error("{0}")]
    Retry(String),
}

fn retry(e: impl std::fmt::Display) -> PublishFailure {
    PublishFailure::Retry(e.to_string())
}

async fn run(
    cfg: Config,
    mut store: Store,
    mut wake: tokio::sync::mpsc::Receiver<Wake>,
    progress: Arc<Progress>,
) -> anyhow::Result<Report> {
    let actor = format!("node:{}", cfg.node);
    let p = progress.clone();
    let who = Identity::Node { line: cfg.line.clone(), node: cfg.node.clone() };
    let name = format!("twinspect node {} line {}", cfg.node, cfg.line);
    let w = who.clone();
    let client = access::connect_options(name, &who, cfg.credentials.as_ref())
        .event_callback(move |ev| {
            let p = p.clone();
            let w = w.clone();
            async move {
                match ev {
                    async_nats::Event::Connected => {
                        p.connected.store(true, Ordering::Relaxed);
                        eprintln!("hub: connected");
                    }
                    async_nats::Event::Disconnected => {
                        p.connected.store(false, Ordering::Relaxed);
                        eprintln!("hub: disconnected; bags wait in the archive");
                    }
                    async_nats::Event::ServerError(e) => eprintln!("{}", access::explain(&e, &w)),
                    async_nats::Event::ClientError(e) => tracing::debug!("hub: {e}"),
                    other => tracing::warn!("hub: {other}"),
                }
            }
        })
        .connect(cfg.hub.servers.clone())
        .await?;
    let js = jetstream::new(client.clone());
    let mut report = Report::default();
    let sorting = cfg.site.clone().and_then(|site| Sorting::new(site, &cfg.line, &cfg.node));
    let (parcels, sorter) = match sorting {
        Some(sorting) => {
            let (tx, rx) = tokio::sync::mpsc::channel(1024);
            let stream_cfg = sorter::sort_stream(sorting.root(), cfg.replicas, cfg.keep);
            let task = tokio::spawn(sorter::run(
                client.clone(),
                sorting,
                rx,
                store.second_writer()?,
                actor.clone(),
                stream_cfg,
                cfg.records.clone(),
            ));
            (Some(tx), Some(task))
        }
        None => (None, None),
    };
    // Every agency's decision on this node's bags, copied into its archive as the stream holds it
    // (but those a desk takes itself: its archive has them first).
    let agencies = cfg
        .site
        .clone()
        .unwrap_or_default()
        .agencies
        .into_iter()
        .map(|a| a.id)
        .filter(|a| !cfg.desk.iter().any(|d| d.agency == *a))
        .collect();
    let copier = tokio::spawn(super::decisions::run(
        client.clone(),
        cfg.line.clone(),
        cfg.node.clone(),
        agencies,
        cfg.desk.iter().map(|d| d.agency.clone()).collect(),
        store.second_writer()?,
    ));
    // Findings recorded at the bench beside this node (`node --web`), into the hub's records.
    let findings = match &cfg.records {
        Some(url) => {
            let task = send_findings(
                url.clone(),
                Some((cfg.line.clone(), cfg.node.clone())),
                store.second_writer()?,
                actor.clone(),
            );
            Some(tokio::spawn(task))
        }
        None => None,
    };
    // A desk's decisions, to the hub after their bags.
    let (desk_drain, desk_decisions) = if cfg.desk.is_empty() {
        (None, None)
    } else {
        let (tx, rx) = tokio::sync::watch::channel(None);
        let task = send_decisions(cfg.clone(), store.second_writer()?, actor.clone(), progress.clone(), rx);
        (Some(tx), Some(tokio::spawn(task)))
    };
    // A desk publishes its bags from the moment it first did, never its earlier history.
    let desk_since =
        if cfg.desk.is_empty() { None } else { Some(store.desk_publishing_since(crate::unix_ms(), &actor)?) };
    let outbox = |store: &Store, limit: usize| match desk_since {
        Some(since) => store.unpublished_desk(since, limit),
        None => store.unpublished(limit),
    };
    let mut drain: Option<Instant> = None;
    let mut refused: HashSet<i64> = HashSet::new();
    let mut said: HashMap<i64, String> = HashMap::new();
    let mut said_setup: Option<String> = None;
    // The barcode reader: each parcel's code joined before it is published (held back until
    // every read that could be its own has come).
    let mut reader = match &cfg.barcode {
        Some(b) => Some((Reader::start(b.addr.clone())?, BarcodeJoin::new(b))),
        None => None,
    };
    let (mut read, mut not_read) = (0u64, 0u64);
    let mut backoff = Duration::from_millis(200);
    let mut ready: Option<(stream::Stream, object_store::ObjectStore)> = None;
    let mut records: Option<Records> = None;
    loop {
        let past_deadline = drain.is_some_and(|d| Instant::now() >= d);
        if past_deadline {
            break;
        }
        // What waits (refused bags skipped; there are few).
        let waiting: Vec<BagRow> = outbox(&store, 64 + refused.len())?
            .into_iter()
            .filter(|r| !refused.contains(&r.id))
            .take(64)
            .collect();
        if waiting.is_empty() {
            if drain.is_some() {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(1), wake.recv()).await {
                Ok(Some(Wake::Drain(d))) => drain = Some(d),
                Ok(Some(Wake::Bag)) | Err(_) => {}
                Ok(None) => drain = Some(Instant::now()),
            }
            continue;
        }
        // Barcodes are joined whether or not the broker is there: reads are taken as they come
        // (a reader does not send twice) and each join kept in the archive, where publishing
        // (this run's or a later one's) finds it.
        let mut read_pending: Option<u64> = None;
        if let Some((r, join)) = reader.as_mut() {
            for (at, code) in r.reads.try_iter() {
                join.read(at, code);
            }
            let now = crate::unix_ms();
            for row in store.unjoined(256)? {
                let complete = join.complete_at(row.started_ms);
                if now < complete {
                    read_pending = Some(complete - now);
                    break;
                }
                let code = join.take(row.started_ms);
                if code.is_some() {
                    read += 1
                } else {
                    not_read += 1
                }
                store.record_barcode(row.id, code.as_deref(), row.item_id.as_deref(), now, &actor)?;
            }
        }
        let mut failed = false;
        if ready.is_none() {
            match set_up(&js, &cfg).await {
                Ok(r) => ready = Some(r),
                Err(e) => {
                    if said_setup.as_deref() != Some(&e.to_string()) {
                        said_setup = Some(e.to_string());
                        eprintln!("hub: not ready ({e}); bags wait in the archive");
                    }
                    failed = true;
                }
            }
        }
        if let Some((bags, scans)) = &ready {
            for mut row in waiting {
                if drain.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if reader.is_some() {
                    match store.barcode_of(row.id)? {
                        // Its read may still come: it waits (bags go in belt order).
                        None => break,
                        Some(Some(code)) => row.item_id = Some(code),
                        Some(None) => {}
                    }
                }
                let outcome = match publish_one(&js, bags, scans, &store, &cfg, &row).await {
                    Ok((attempt, announcement)) => {
                        let seq = match attempt {
                            Attempt::Published(s) | Attempt::Found(s) => s,
                        };
                        match record(&cfg, &mut records, &announcement, seq, &actor).await {
                            Ok(()) => Ok(attempt),
                            Err(e) => {
                                records = None;
                                Err(PublishFailure::Retry(e.to_string()))
                            }
                        }
                    }
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(attempt) => {
                        let (seq, already) = match attempt {
                            Attempt::Published(s) => (s, false),
                            Attempt::Found(s) => (s, true),
                        };
                        let subject = super::bag_subject(&cfg.line, &cfg.node, row.id);
                        store.mark_published(row.id, &subject, seq, already, crate::unix_ms(), &actor)?;
                        if let (Some(tx), Some(ended_ms)) = (&parcels, row.ended_ms) {
                            let p = NewParcel { bag: row.id, item_id: row.item_id.clone(), ended_ms };
                            let _ = tx.send(p).await;
                        }
                        progress.published.fetch_add(1, Ordering::Relaxed);
                        if already {
                            report.found_on_broker += 1;
                            println!("bag {} was already on the hub as {STREAM} #{seq}; recorded", row.id);
                        } else {
                            report.published += 1;
                            println!("published bag {} as {STREAM} #{seq}", row.id);
                        }
                        said.remove(&row.id);
                        backoff = Duration::from_millis(200);
                    }
                    Err(PublishFailure::Refused(why)) => {
                        eprintln!("hub: bag {} not published: {why}", row.id);
                        tracing::error!(bag = row.id, "not published: {why}");
                        refused.insert(row.id);
                    }
                    Err(PublishFailure::Retry(why)) => {
                        if said.insert(row.id, why.clone()).as_deref() != Some(&why) {
                            eprintln!("hub: bag {} waits ({why})", row.id);
                        }
                        failed = true;
                        break;
                    }
                }
            }
        }
        if let Some(wait) = read_pending
            && !failed
        {
            // The next bag's read may still come: wait for it, hearing a drain order meanwhile.
            let wait = Duration::from_millis(wait.min(1000));
            match tokio::time::timeout(wait, wake.recv()).await {
                Ok(Some(Wake::Drain(d))) => drain = Some(d),
                Ok(None) => drain = Some(Instant::now()),
                Ok(Some(Wake::Bag)) | Err(_) => {}
            }
        }
        if failed {
            // Wait before the next try, but hear a drain order meanwhile.
            let until = Instant::now() + backoff;
            let until = drain.map_or(until, |d| until.min(d));
            if let Ok(Some(Wake::Drain(d))) =
                tokio::time::timeout(until.saturating_duration_since(Instant::now()), wake.recv()).await
            {
                drain = Some(d);
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
    report.waiting =
        outbox(&store, usize::MAX >> 1)?.into_iter().filter(|r| !refused.contains(&r.id)).count();
    report.refused = refused.into_iter().collect();
    report.refused.sort();
    if let Some((r, join)) = &reader {
        report.barcodes = Some((read, not_read, join.unclaimed, r.bad.load(Ordering::Relaxed)));
    }
    if let (Some(tx), Some(task)) = (desk_drain, desk_decisions) {
        // The decisions on what went: until they are sent or the drain's time is up.
        let until = drain.unwrap_or_else(Instant::now);
        let _ = tx.send(Some(until));
        let left = until.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        match tokio::time::timeout(left, task).await {
            Ok(Ok(n)) => report.decisions_sent = n,
            Ok(Err(e)) => eprintln!("hub: the desk's decisions: {e}"),
            Err(_) => eprintln!("hub: the desk's decisions: stopped at the drain's limit"),
        }
    }
    // Every parcel in flight is resolved by its deadline at the latest.
    drop(parcels);
    if let Some(task) = sorter {
        report.sort = Some(task.await??);
    }
    copier.abort();
    if let Some(task) = findings {
        // What the bench recorded last: a few seconds more, then the next run sends it.
        tokio::time::sleep(FINDINGS_EVERY).await;
        task.abort();
    }
    Ok(report)
}

/// The decisions outbox of a live desk that publishes: each desk agency's current decision on
/// a bag the desk published goes to the hub's decision stream as that agency's station at the
/// desk (signed with its key where the hub uses keys), then to the hub's records, and only then
/// is marked sent in the archive; a decision changed after that goes as a correction of the
/// one the hub holds. The broker keeps an agency's first decision on a bag (and a correction
/// only of its latest): one found there already (this desk's, sent by a run that stopped before
/// marking it, or another station's) is what is recorded. Returns how many went when `drain`
/// names a time and nothing is left, or the time is up.
async fn send_decisions(
    cfg: Config,
    mut store: Store,
    actor: String,
    progress: Arc<Progress>,
    mut drain: tokio::sync::watch::Receiver<Option<Instant>>,
) -> u64 {
    let agencies: Vec<String> = cfg.desk.iter().map(|d| d.agency.clone()).collect();
    // One connection an agency, made once (the client reconnects by itself), its decision
    // stream looked up until found.
    let mut links: HashMap<String, (jetstream::Context, bool)> = HashMap::new();
    let mut records: Option<Records> = None;
    let mut said: Option<String> = None;
    let mut sent = 0u64;
    let mut round = 0u64;
    loop {
        // Marked seen, so the pause below waits for the next change rather than none.
        let until = *drain.borrow_and_update();
        if until.is_some_and(|u| Instant::now() >= u) {
            return sent;
        }
        // The newest published bags twice a second; every published bag twice a minute and at
        // the drain (a bag decided long after it was scanned).
        let whole = round.is_multiple_of(60) || until.is_some();
        round += 1;
        let after = if whole { 0 } else { store.last_published().unwrap_or(0).saturating_sub(RECENT_BAGS) };
        let waiting = match store.unsent_decisions(&agencies, after, 64) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("hub: the desk's decisions: {e}");
                Vec::new()
            }
        };
        if whole {
            progress.decisions_waiting.store(waiting.len() as u64, Ordering::Relaxed);
        }
        if waiting.is_empty() && until.is_some() {
            return sent;
        }
        let mut failed = false;
        for u in waiting {
            let Some(screen) = cfg.desk.iter().find(|d| d.agency == u.decision.agency) else { continue };
            if !links.contains_key(&screen.agency) {
                match desk_link(&cfg, screen).await {
                    Ok(js) => {
                        links.insert(screen.agency.clone(), (js, false));
                    }
                    Err(why) => {
                        say_once(&mut said, why);
                        failed = true;
                        break;
                    }
                }
            }
            let link = links.get_mut(&screen.agency).expect("made above");
            if !link.1 {
                match link
                    .0
                    .get_or_create_stream(super::station::decision_stream(cfg.replicas, cfg.keep))
                    .await
                {
                    Ok(_) => link.1 = true,
                    Err(e) => {
                        let why = format!("{}: the decision stream: {e}", screen.station);
                        say_once(&mut said, why);
                        failed = true;
                        break;
                    }
                }
            }
            let js = link.0.clone();
            let d = desk_decision(&cfg, screen, &u);
            let outcome = match super::station::send_decision(&js, d).await {
                Ok((seq, held)) => match record_decision(&cfg, &mut records, &held, seq).await {
                    Ok(()) => Ok((seq, held)),
                    Err(e) => {
                        records = None;
                        Err(format!("the hub's records: {e}"))
                    }
                },
                Err(super::station::SendFailure::Refused(why)) => {
                    // Never to go (what it corrects is gone from the hub, or its subject holds
                    // a message that is not a link): said, audited, and out of the way of the
                    // decisions behind it.
                    eprintln!("hub: bag {}: {}'s decision cannot go to the hub: {why}", u.bag, screen.agency);
                    if let Err(e) = store.mark_decision_refused(&u, &why, crate::unix_ms(), &actor) {
                        eprintln!("hub: the desk's decisions: {e}");
                        failed = true;
                        break;
                    }
                    continue;
                }
                Err(super::station::SendFailure::NotNow(why)) => Err(why),
            };
            match outcome {
                Ok((seq, held)) => {
                    let from_desk = held.station == screen.station;
                    let ours = from_desk && held.at_ms == u.decision.at_ms;
                    // What the hub holds, as a row of this archive: the decision sent now, or
                    // this desk's earlier one (sent by a round or run that did not mark it: the
                    // current one goes as its correction next), or another station's, kept here
                    // first as the agency's current decision (as a screen that lost the race
                    // keeps it).
                    let row = if ours {
                        Ok(Some(u.row))
                    } else if from_desk {
                        store.decision_row_at(u.bag, &screen.agency, held.at_ms).map_err(|e| e.to_string())
                    } else {
                        super::decisions::keep_hubs_first(&mut store, u.bag, &held).and_then(|()| {
                            store
                                .decision_row_at(u.bag, &screen.agency, held.at_ms)
                                .map_err(|e| e.to_string())
                        })
                    };
                    let marked = match row {
                        Ok(Some(row)) => {
                            let held_row = crate::files::store::UnsentDecision { row, ..u.clone() };
                            let on_hub = crate::files::store::OnHub {
                                stream_seq: seq,
                                code: &held.code,
                                corrects: held.corrects,
                                station: (!from_desk).then_some(held.station.as_str()),
                            };
                            store
                                .mark_decision_sent(&held_row, &on_hub, crate::unix_ms(), &actor)
                                .map_err(|e| e.to_string())
                        }
                        Ok(None) => {
                            Err(format!("bag {}: the hub's decision #{seq} is not in the archive", u.bag))
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = marked {
                        eprintln!("hub: the desk's decisions: {e}");
                        failed = true;
                        break;
                    }
                    if ours {
                        sent += 1;
                        progress.decisions.fetch_add(1, Ordering::Relaxed);
                        match u.corrects {
                            Some(earlier) => {
                                progress.corrections.fetch_add(1, Ordering::Relaxed);
                                println!(
                                    "bag {}: {} corrected to {} at the desk; on the hub as {DECISIONS} #{seq} (replaces #{earlier})",
                                    u.bag, screen.agency, u.decision.code
                                );
                            }
                            None => println!(
                                "bag {}: {} decided {} at the desk; on the hub as {DECISIONS} #{seq}",
                                u.bag, screen.agency, u.decision.code
                            ),
                        }
                    } else if from_desk {
                        println!(
                            "bag {}: the hub holds the desk's earlier {} (#{seq}); {} follows as its correction",
                            u.bag, held.code, u.decision.code
                        );
                    } else {
                        println!(
                            "bag {}: the hub holds {}'s decision {} from {} (#{seq}); the desk's {} is superseded",
                            u.bag, screen.agency, held.code, held.station, u.decision.code
                        );
                    }
                    progress.decisions_failing.store(false, Ordering::Relaxed);
                    let left = progress.decisions_waiting.load(Ordering::Relaxed);
                    progress.decisions_waiting.store(left.saturating_sub(1), Ordering::Relaxed);
                    said = None;
                }
                Err(why) => {
                    say_once(&mut said, why);
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            progress.decisions_failing.store(true, Ordering::Relaxed);
        }
        let pause = if failed { Duration::from_secs(1) } else { Duration::from_millis(500) };
        let _ = tokio::time::timeout(pause, drain.changed()).await;
    }
}

/// Why the desk's decisions wait, said once while it stays the same.
fn say_once(said: &mut Option<String>, why: String) {
    if said.as_deref() != Some(&why) {
        eprintln!("hub: the desk's decisions wait ({why})");
        *said = Some(why);
    }
}

/// How many of the newest published bags the desk's decisions outbox looks at twice a second.
const RECENT_BAGS: i64 = 2000;

/// The connection of a desk's screen as its agency's station (it connects and reconnects in the
/// background, as every hub client does).
async fn desk_link(cfg: &Config, screen: &DeskScreen) -> Result<jetstream::Context, String> {
    let who = Identity::Station { agency: screen.agency.clone(), station: screen.station.clone() };
    let name = format!("twinspect desk station {} ({})", screen.station, screen.agency);
    let w = who.clone();
    let client = access::connect_options(name, &who, screen.credentials.as_ref())
        .event_callback(move |ev| {
            let w = w.clone();
            async move {
                if let async_nats::Event::ServerError(e) = ev {
                    eprintln!("{}", access::explain(&e, &w))
                }
            }
        })
        .connect(cfg.hub.servers.clone())
        .await
        .map_err(|e| format!("{}: {e}", screen.station))?;
    Ok(jetstream::new(client))
}

/// The hub's message for a desk's decision (held: from the bag's end to the decision).
fn desk_decision(cfg: &Config, screen: &DeskScreen, u: &crate::files::store::UnsentDecision) -> DecisionMsg {
    let auto = u.decision.operator == crate::domain::inspection::AUTO_OPERATOR;
    let d = DecisionMsg {
        format: FORMAT,
        agency: screen.agency.clone(),
        code: u.decision.code.clone(),
        station: screen.station.clone(),
        operator: u.decision.operator.clone(),
        level: if auto { "L1" } else { "L2" }.into(),
        line: cfg.line.clone(),
        node: cfg.node.clone(),
        bag: u.bag,
        scan_sha256: u.scan_sha256.clone(),
        at_ms: u.decision.at_ms,
        held_ms: u.ended_ms.map_or(0, |e| u.decision.at_ms.saturating_sub(e)),
        reason: u.decision.reason.clone(),
        marks: u.marks.iter().take(super::MAX_MARKS).map(super::HubMark::of).collect(),
        key: None,
        signature: None,
        corrects: u.corrects,
    };
    match &screen.credentials {
        Some(c) => c.sign_decision(d),
        None => d,
    }
}

/// A decision in the hub's PostgreSQL records, when the desk keeps them (idempotent).
async fn record_decision(
    cfg: &Config,
    records: &mut Option<Records>,
    d: &DecisionMsg,
    seq: u64,
) -> Result<(), RecordsError> {
    let Some(url) = &cfg.records else { return Ok(()) };
    if records.as_ref().is_none_or(|r| r.is_closed()) {
        *records = Some(Records::connect(url).await?);
    }
    records.as_mut().expect("connected above").record_decision(d, seq).await?;
    Ok(())
}

/// How often the findings outbox is looked at.
const FINDINGS_EVERY: Duration = Duration::from_secs(1);

/// The findings outbox: every findings record on a published bag, into the hub's records, each
/// once (marked sent in the archive after the database's commit; sent again, it is one row).
/// Beside the bags, never in their way: a database that is slow or gone delays only findings.
/// `own`: a node's line and name (its own published bags); none: the bags this archive took
/// from the hub (the hub's opening bench), each under its name on the hub.
pub(super) async fn send_findings(
    url: String,
    own: Option<(String, String)>,
    mut store: Store,
    actor: String,
) {
    let mut records: Option<Records> = None;
    let mut said = false;
    loop {
        tokio::time::sleep(FINDINGS_EVERY).await;
        let waiting = match &own {
            Some(_) => store.unsent_findings(64),
            None => store.unsent_taken_findings(64),
        };
        let waiting = match waiting {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("findings outbox: {e}");
                continue;
            }
        };
        for (id, bag, f) in waiting {
            let (line, node, hub_bag) = match &own {
                Some((line, node)) => (line.clone(), node.clone(), bag),
                None => match store.hub_bag(bag) {
                    Ok(Some(h)) => (h.line, h.node, h.bag),
                    other => {
                        tracing::error!("findings outbox: bag {bag} is not a hub bag: {other:?}");
                        continue;
                    }
                },
            };
            if records.as_ref().is_none_or(|r| r.is_closed()) {
                let connect = Records::connect(&url);
                records =
                    tokio::time::timeout(Duration::from_secs(5), connect).await.ok().and_then(|r| r.ok());
            }
            let Some(r) = records.as_mut() else {
                if !said {
                    eprintln!("the hub's records do not answer: findings wait (bag {bag} first)");
                    said = true;
                }
                break;
            };
            match r.record_findings(&line, &node, hub_bag, &f, &actor).await {
                Ok(_) => {
                    said = false;
                    if let Err(e) = store.mark_findings_sent(id, crate::unix_ms()) {
                        tracing::error!("findings outbox: {e}");
                    }
                    let shown =
                        if own.is_some() { bag.to_string() } else { format!("{line}.{node}.{hub_bag}") };
                    println!("bag {shown}: {}'s findings in the hub's records", f.agency);
                }
                Err(e) => {
                    records = None;
                    if !said {
                        eprintln!("the hub's records do not answer: findings wait (bag {bag} first): {e}");
                        said = true;
                    }
                    break;
                }
            }
        }
    }
}

/// The stream and the bucket, created when this is the first node or station (same settings
/// from every one, so creating twice is harmless).
async fn set_up(
    js: &jetstream::Context,
    cfg: &Config,
) -> Result<(stream::Stream, object_store::ObjectStore), async_nats::Error> {
    let bags = js.get_or_create_stream(super::station::bag_stream(cfg.replicas, cfg.keep)).await?;
    let scans = super::station::line_scans(js, &cfg.line, cfg.replicas, cfg.keep).await?;
    Ok((bags, scans))
}

async fn publish_one(
    js: &jetstream::Context,
    bags: &stream::Stream,
    scans: &object_store::ObjectStore,
    store: &Store,
    cfg: &Config,
    row: &BagRow,
) -> Result<(Attempt, BagAnnouncement), PublishFailure> {
    let (line, node) = (&cfg.line, &cfg.node);
    let (Some(file), Some(sha), Some(lines), Some(ended)) =
        (&row.scan_file, &row.scan_sha256, row.lines, row.ended_ms)
    else {
        return Err(PublishFailure::Refused("the archive holds no scan for it".into()));
    };
    let path = store.dir().join(file);
    let bytes = std::fs::read(&path).map_err(|e| retry(format!("reading {}: {e}", path.display())))?;
    if hex_sha256(&bytes) != *sha {
        return Err(PublishFailure::Refused(format!(
            "{} no longer matches the SHA-256 the archive recorded",
            path.display()
        )));
    }
    let c = store.calibration(row.id).map_err(|e| PublishFailure::Refused(e.to_string()))?;
    let object = super::scan_object(line, node, row.id);
    let announcement = BagAnnouncement {
        format: FORMAT,
        line: line.clone(),
        node: node.clone(),
        bag: row.id,
        scanner_bag: row.scanner_bag,
        item_id: row.item_id.clone(),
        profile: row.profile.clone(),
        source: row.source.clone(),
        channels: row.channels,
        lines,
        missing_rows: row.missing_rows.clone(),
        truncated: row.truncated,
        started_ms: row.started_ms,
        ended_ms: ended,
        calibration: CalibrationMsg {
            dark_low: c.dark_low,
            dark_high: c.dark_high,
            air_low: c.air_low,
            air_high: c.air_high,
            full_scale: c.full_scale,
        },
        scan: ScanRef {
            bucket: access::scans_bucket(line),
            object: object.clone(),
            bytes: bytes.len() as u64,
            sha256: sha.clone(),
            format: "tiff-u16-2page".into(),
        },
        screened_at_desk: cfg.desk.iter().map(|d| d.agency.clone()).collect(),
    };
    let body = serde_json::to_vec(&announcement).map_err(retry)?;
    if body.len() > super::MAX_ANNOUNCEMENT {
        return Err(PublishFailure::Refused(format!("its announcement is {} bytes", body.len())));
    }
    // The scan first, so a station never reads an announcement whose scan is not there yet.
    let held = match scans.info(&object).await {
        Ok(info) => !info.deleted && info.size == bytes.len() && info.metadata.get("sha256") == Some(sha),
        Err(_) => false,
    };
    if !held {
        let meta = object_store::ObjectMetadata {
            name: object.clone(),
            description: Some(format!("line {line} node {node} bag {}", row.id)),
            metadata: HashMap::from([("sha256".to_string(), sha.clone())]),
            // The library waits for each chunk's ack before the next: 512 KiB chunks (under
            // NATS's 1 MB message limit) make a 7.7 MB hub scan 15 round trips instead of 60.
            chunk_size: Some(SCAN_CHUNK),
            ..Default::default()
        };
        scans.put(meta, &mut bytes.as_slice()).await.map_err(|e| retry(format!("scan: {e}")))?;
    }
    let subject = super::bag_subject(line, node, row.id);
    let msg = PublishMessage::build()
        .payload(body.into())
        .message_id(super::message_id(line, node, row.id))
        .expected_last_subject_sequence(0);
    let ack = js.send_publish(subject.clone(), msg).await.map_err(retry)?.await;
    let attempt = match ack {
        Ok(a) if a.duplicate => Attempt::Found(a.sequence),
        Ok(a) => Attempt::Published(a.sequence),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
            // Already there from a run that stopped before recording it: take its sequence, after
            // checking it is this bag's announcement and not someone else's on our subject.
            let m = bags.get_last_raw_message_by_subject(&subject).await.map_err(retry)?;
            let theirs = BagAnnouncement::decode(&m.payload).map_err(PublishFailure::Refused)?;
            if theirs.scan.sha256 != *sha || theirs.bag != row.id {
                return Err(PublishFailure::Refused(format!(
                    "the hub already holds a different bag on {subject} (#{})",
                    m.sequence
                )));
            }
            Attempt::Found(m.sequence)
        }
        Err(e) => return Err(retry(format!("announcement: {e}"))),
    };
    Ok((attempt, announcement))
}

/// The bag in the hub's PostgreSQL records, when the node keeps them (idempotent).
async fn record(
    cfg: &Config,
    records: &mut Option<Records>,
    a: &BagAnnouncement,
    seq: u64,
    actor: &str,
) -> Result<(), RecordsError> {
    let Some(url) = &cfg.records else { return Ok(()) };
    if records.as_ref().is_none_or(|r| r.is_closed()) {
        *records = Some(Records::connect(url).await?);
    }
    records.as_mut().expect("connected above").record_bag(a, seq, actor).await?;
    Ok(())
}
