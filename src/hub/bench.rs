//! The hub's opening bench (`twinspect web --hub URL --records URL`): the bench at a hub's
//! opening lane serves the parcels any line's stations asked to open, from an archive of its
//! own that this intake fills, and sends its findings to the hub's records.
//!
//! It reads the decision stream from its first message on, one by one by sequence: reads every
//! hub identity may make, so the bench publishes nothing and keeps no consumer on the broker (an
//! archive started afresh simply reads the stream again; what it holds already is not taken
//! twice). A decision whose code asks for an opening brings its bag into the archive: the
//! announcement read back from the bag stream and checked, the scan from its line's bucket,
//! checked by SHA-256, kept byte for byte, and every agency's decision on the bag as the
//! decision stream holds it (with the operator's marks). A decision on a bag the archive holds
//! already is recorded when it comes, and so is a correction (a message naming the agency's
//! decision just before it on the subject): a decision corrected since is passed over. A decision taken on another scan than the one announced,
//! or a bag whose announcement or scan does not hold up, is refused and logged; the rest goes on.
//! Findings recorded at the bench go to the hub's PostgreSQL records under the bag's name on the
//! hub, each once, whatever the database does meanwhile.
//!
//! Owns: the intake thread (a tokio runtime of its own) and its connection. Must not import:
//! egui, wgpu, the desk, the web server (which serves the same archive through the desk).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, stream::RawMessageErrorKind};

use super::access::{self, Credentials, Identity};
use super::decisions::{Recorded, record_on};
use super::station::{ScanProblem, Scans};
use super::{BagAnnouncement, DECISIONS, DecisionMsg, HubUrl, STREAM};
use crate::domain::inspection::{DispositionKind, InspectionConfig};
use crate::files::store::{HubBag, Store};

/// How the bench reads the hub.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub hub: HubUrl,
    /// The bench's name (the broker's client list, the records' actor `bench:<name>`).
    pub name: String,
    /// Its key, when the hub uses keys (a `[[bench]]` of the users file).
    pub credentials: Option<Credentials>,
    /// The hub's PostgreSQL records, where the findings go.
    pub records: String,
    /// The site: which decision codes ask for an opening.
    pub site: InspectionConfig,
}

/// What the intake has done, for the bench's summary.
#[derive(Debug, Default)]
pub struct BenchProgress {
    /// Decisions read from the stream.
    pub read: AtomicU64,
    /// Bags taken into the archive for their opening.
    pub taken: AtomicU64,
    /// Decisions recorded in the archive.
    pub recorded: AtomicU64,
    /// Decisions or bags refused (malformed, another scan, a scan that does not match).
    pub refused: AtomicU64,
}

/// The intake thread.
pub struct HubBench {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub progress: Arc<BenchProgress>,
}

impl HubBench {
    /// Start reading the hub into `store` (a writer of the bench's archive).
    pub fn start(cfg: BenchConfig, store: Store) -> anyhow::Result<HubBench> {
        super::check_name("bench", &cfg.name)?;
        let progress = Arc::new(BenchProgress::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let p = progress.clone();
        let findings = store.second_writer()?;
        let thread = std::thread::Builder::new().name("hub-bench".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("hub bench: no runtime: {e}");
                    return;
                }
            };
            rt.block_on(run(cfg, store, findings, p, stopped));
        })?;
        Ok(HubBench { stop: Some(stop), thread: Some(thread), progress })
    }

    /// Stop reading (what was taken stays in the archive).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HubBench {
    fn drop(&mut self) {
        self.halt();
    }
}

/// What handling one message of the decision stream came to.
enum Handled {
    /// Done with it (recorded, known, not for the bench, or refused): the next one.
    Next,
    /// The broker could not be asked for the bag or its scan: the same message again later.
    Again(String),
}

async fn run(
    cfg: BenchConfig,
    mut store: Store,
    findings: Store,
    progress: Arc<BenchProgress>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let who = Identity::Bench { name: cfg.name.clone() };
    let client =
        access::reporting_options(format!("twinspect bench {}", cfg.name), &who, cfg.credentials.as_ref())
            .connect(cfg.hub.servers.clone());
    let client = tokio::select! {
        c = client => match c {
            Ok(c) => c,
            Err(e) => {
                eprintln!("hub bench: cannot connect to {}: {e}", cfg.hub.servers.join(","));
                return;
            }
        },
        _ = stopped.changed() => return,
    };
    let actor = format!("bench:{}", cfg.name);
    let outbox =
        tokio::spawn(super::publish::send_findings(cfg.records.clone(), None, findings, actor.clone()));
    let js = jetstream::new(client);
    let scans = Scans::new(js.clone());
    let mut decisions = Decisions::default();
    let mut seq = 1u64;
    let mut said: Option<String> = None;
    loop {
        if *stopped.borrow() {
            break;
        }
        let step = decisions.next(&js, seq).await;
        let pause = match step {
            Ok(Some((at, payload, subject))) => {
                progress.read.fetch_add(1, Ordering::Relaxed);
                match handle(&cfg, &js, &scans, &mut store, &progress, (at, &payload, &subject), &actor).await
                {
                    Handled::Next => {
                        seq = at + 1;
                        said = None;
                        continue;
                    }
                    Handled::Again(why) => {
                        say_once(&mut said, why);
                        Duration::from_secs(1)
                    }
                }
            }
            Ok(None) => Duration::from_millis(300),
            Err(why) => {
                say_once(&mut said, why);
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => break,
        }
    }
    outbox.abort();
}

fn say_once(said: &mut Option<String>, why: String) {
    if said.as_deref() != Some(why.as_str()) {
        eprintln!("hub bench: {why}");
        *said = Some(why);
    }
}

/// The decision stream as the bench walks it: its handle and the last sequence it was known to
/// hold, asked of the broker again only once the walk has reached it (not for every message).
#[derive(Default)]
struct Decisions {
    stream: Option<jetstream::stream::Stream>,
    first: u64,
    last: u64,
}

impl Decisions {
    /// The stream's first message at or after `seq` (its sequence, payload and subject); none
    /// when the stream holds nothing beyond.
    async fn next(
        &mut self,
        js: &jetstream::Context,
        seq: u64,
    ) -> Result<Option<(u64, Vec<u8>, String)>, String> {
        if self.stream.is_none() || seq > self.last {
            let mut stream = match js.get_stream(DECISIONS).await {
                Ok(s) => s,
                // No station has decided anything yet (stations create the stream).
                Err(e) if e.to_string().to_ascii_lowercase().contains("not found") => return Ok(None),
                Err(e) => return Err(format!("the decision stream: {e}")),
            };
            let state = stream.info().await.map_err(|e| format!("the decision stream: {e}"))?.state.clone();
            (self.first, self.last) =
                if state.messages == 0 { (0, 0) } else { (state.first_sequence, state.last_sequence) };
            self.stream = Some(stream);
            if seq > self.last {
                return Ok(None);
            }
        }
        let stream = self.stream.as_ref().expect("opened above");
        // Messages before the first were removed (the hub keeps decisions for its hours).
        let mut at = seq.max(self.first);
        while at <= self.last {
            match stream.raw_message_builder().sequence(at).send().await {
                Ok(m) => return Ok(Some((m.sequence, m.payload.to_vec(), m.subject.to_string()))),
                // A gap (a message removed on its own): the one after it.
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => at += 1,
                Err(e) => {
                    self.stream = None;
                    return Err(format!("the decision stream at {at}: {e}"));
                }
            }
        }
        Ok(None)
    }
}

/// Whether `d`'s code asks for an opening, as the site has it.
fn asks_opening(site: &InspectionConfig, d: &DecisionMsg) -> bool {
    site.agency(&d.agency).and_then(|a| a.decision(&d.code)).is_some_and(|c| c.kind == DispositionKind::Open)
}

async fn handle(
    cfg: &BenchConfig,
    js: &jetstream::Context,
    scans: &Scans,
    store: &mut Store,
    progress: &BenchProgress,
    (at, payload, subject): (u64, &[u8], &str),
    actor: &str,
) -> Handled {
    let refuse = |why: String| {
        progress.refused.fetch_add(1, Ordering::Relaxed);
        eprintln!("hub bench: {subject}: refused: {why}");
        tracing::warn!(subject, "refused: {why}");
        Handled::Next
    };
    let d = match super::chain::decode(payload) {
        Ok(d) => d,
        Err(why) => return refuse(why),
    };
    if subject != super::decision_subject(&d.agency, &d.line, &d.node, d.bag) {
        return refuse(format!("it names bag {}.{}.{} on another subject", d.line, d.node, d.bag));
    }
    let hub = HubBag { line: d.line.clone(), node: d.node.clone(), bag: d.bag };
    let held = match store.hub_taken(&hub) {
        Ok(h) => h,
        Err(e) => return Handled::Again(format!("the archive: {e}")),
    };
    if held.is_none() && !asks_opening(&cfg.site, &d) {
        return Handled::Next;
    }
    // The agency's decisions on a bag are one chain on its subject; any other message there is
    // not one, whoever put it there. Corrected since: what counts is the correction, when the
    // walk reaches it (a bag asked open and released before the walk came to it is never
    // taken; one released and then asked open is).
    let chain = match super::chain::read_chain(js, subject).await {
        Ok(c) => c,
        Err(why) => return Handled::Again(why),
    };
    // Refused itself, or after the chain broke where the walk stopped (past its length).
    let not_a_link = chain.refused.iter().find(|(seq, _)| *seq == at);
    if let Some((_, why)) = not_a_link.or_else(|| chain.refused.last().filter(|(seq, _)| *seq < at)) {
        return refuse(why.clone());
    }
    if chain.in_force.as_ref().is_none_or(|(seq, _)| *seq != at) {
        return Handled::Next;
    }
    let id = match held {
        Some(id) => id,
        None => {
            let bags = match js.get_stream(STREAM).await {
                Ok(s) => s,
                Err(e) => return Handled::Again(format!("the bag stream: {e}")),
            };
            let subject_b = super::bag_subject(&d.line, &d.node, d.bag);
            let ann = match bags.get_last_raw_message_by_subject(&subject_b).await {
                Ok(m) => m,
                Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                    return refuse(format!("bag {hub} is not on the hub (removed, or never announced)"));
                }
                Err(e) => return Handled::Again(format!("bag {hub}: {e}")),
            };
            let bag = match BagAnnouncement::decode(&ann.payload) {
                Ok(b) => b,
                Err(why) => return refuse(format!("bag {hub}: {why}")),
            };
            if (bag.line.as_str(), bag.node.as_str(), bag.bag) != (d.line.as_str(), d.node.as_str(), d.bag) {
                return refuse(format!("bag {hub}: its announcement names another bag"));
            }
            if bag.scan.sha256 != d.scan_sha256 {
                return refuse(format!("bag {hub}: decided on another scan than the one announced"));
            }
            let scan = match scans.fetch(&bag).await {
                Ok(s) => s,
                Err(ScanProblem::Bad(why)) => return refuse(format!("bag {hub}: {why}")),
                Err(ScanProblem::NotNow(e)) => return Handled::Again(format!("bag {hub}: {e}")),
            };
            let id = match super::screening::take_into(store, &bag, &scan, &hub, actor) {
                Ok((id, _)) => id,
                Err(e) => return Handled::Again(format!("bag {hub} into the archive: {e}")),
            };
            progress.taken.fetch_add(1, Ordering::Relaxed);
            println!("bag {hub}: taken for its opening (archive bag {id})");
            // Every agency's decision on it as the stream holds it (this one among them).
            for a in &cfg.site.agencies {
                if a.id == d.agency {
                    continue;
                }
                if let Some((_, other)) =
                    super::chain::stored_decision(js, &a.id, &d.line, &d.node, d.bag).await
                {
                    note(store, progress, id, &hub, &other);
                }
            }
            id
        }
    };
    note(store, progress, id, &hub, &d);
    Handled::Next
}

/// Record decision `d` on archive bag `id` and say so.
fn note(store: &mut Store, progress: &BenchProgress, id: i64, hub: &HubBag, d: &DecisionMsg) {
    match record_on(store, id, d) {
        Recorded::New => {
            progress.recorded.fetch_add(1, Ordering::Relaxed);
            println!("bag {hub}: {} decided {} (recorded)", d.agency, d.code);
        }
        Recorded::Known => {}
        Recorded::Refused(why) => {
            progress.refused.fetch_add(1, Ordering::Relaxed);
            eprintln!("hub bench: bag {hub}: a decision of {} not recorded: {why}", d.agency);
        }
    }
}
