//! The hub's commands: `node` (a scanner node: capture into its own archive, which is the
//! outbox, and publish every whole bag to the hub's NATS JetStream) and `bot` (a screening
//! station that decides by itself, for load tests and demos).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::files::store::Store;
use crate::hub::access::{self, Credentials, Identity, Users};
use crate::hub::{HubUrl, publish};

fn credentials(path: Option<&Path>) -> anyhow::Result<Option<Credentials>> {
    Ok(match path {
        Some(p) => Some(Credentials::load(p)?),
        None => None,
    })
}

/// Options of `twinspect node`.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// Source URL, as for `capture`: synthetic://?seed=7, serial:///dev/ttyUSB0, gige://...
    #[arg(long)]
    pub source: String,
    /// The hub's NATS servers: nats://HOST:PORT[,HOST:PORT...] (any of a cluster's servers).
    #[arg(long)]
    pub hub: String,
    /// The sorting line (or lane) this scanner is on: part of every subject it publishes.
    #[arg(long)]
    pub line: String,
    /// This node's name on the hub (default: the host's name).
    #[arg(long)]
    pub node: Option<String>,
    /// Stop after this many complete bags (default: until SIGTERM or Ctrl-C).
    #[arg(long)]
    pub bags: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Replicas of the bag stream and scan bucket if this node creates them (3 on a cluster).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,
    /// How long the broker keeps bags and their scans, in hours.
    #[arg(long, default_value_t = 72.0)]
    pub keep_hours: f64,
    /// On stopping, go on publishing what waits for at most this many seconds (what is left is
    /// published by the next run).
    #[arg(long, default_value_t = 10.0)]
    pub drain_seconds: f64,
    /// Also record everything the source delivers to FILE (.tsrec).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// The hub's PostgreSQL records (postgres://USER@HOST:PORT/DB): each bag recorded there
    /// too before it counts as published.
    #[arg(long)]
    pub records: Option<String>,
    /// The site (agencies, their codes, and the `[sorter]` section: lanes and the line's
    /// deadline from the scanner to the divert point). With a sorter, each published parcel's
    /// lane goes to it once every agency has decided, or the manual lane before the deadline.
    #[arg(long)]
    pub site: Option<PathBuf>,
    /// The line's barcode reader (tcp://HOST:PORT: a CR/LF-terminated code a parcel): each
    /// parcel's code joined to its bag by time on the belt becomes its id on the hub.
    #[arg(long)]
    pub barcode: Option<String>,
    /// Where the reader stands: a parcel is read this many ms after it starts through the
    /// scanner's tunnel (negative: before, upstream).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub barcode_offset_ms: i64,
    /// How far from there a read may be (under half the time between parcels).
    #[arg(long, default_value_t = 300)]
    pub barcode_tolerance_ms: u64,
    /// This node's key (an nkey seed file, mode 600, from `twinspect hub key`), when the hub
    /// uses keys.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Also serve the opening bench (`twinspect web`) on ADDR for this line's opening lane:
    /// the bags of this node's archive with every agency's decision as the hub holds it, the
    /// findings kept in the same archive (port 0: any free port, printed).
    #[arg(long)]
    pub web: Option<std::net::SocketAddr>,
    /// With --web: operator accounts (made with `twinspect operators`); without it, the
    /// demonstration accounts.
    #[arg(long, requires = "web")]
    pub operators: Option<PathBuf>,
    /// With --web: serve HTTPS with the site's certificate (PEM), with --tls-key.
    #[arg(long, requires_all = ["tls_key", "web"])]
    pub tls_cert: Option<PathBuf>,
    /// With --web: the certificate's private key (PEM).
    #[arg(long, requires_all = ["tls_cert", "web"])]
    pub tls_key: Option<PathBuf>,
}

/// The opening bench beside a node: a desk of its own over the node's archive (a writer of the
/// same process), on its own thread, and the web server in front of it.
struct Bench {
    server: crate::web::Beside,
    desk: std::thread::JoinHandle<crate::desk::Desk>,
}

impl Bench {
    fn start(
        profile: &str,
        store: &Store,
        a: &NodeArgs,
        listen: std::net::SocketAddr,
    ) -> anyhow::Result<Bench> {
        let profile = crate::domain::profile::ScannerProfile::load(profile)?;
        let config = super::load_site(a.site.as_deref())?;
        let (operators, demo) = super::web_accounts(a.operators.as_deref())?;
        let mut desk = crate::desk::Desk::new(config.clone(), operators, demo);
        let mut archiver = crate::desk::archiver::Archiver::over(
            store.second_writer()?,
            "node-web",
            &profile.name,
            profile.channels as usize,
        )?;
        archiver.log("system", "web.start", serde_json::json!({ "listen": listen.to_string() }));
        desk.archive = Some(archiver);
        let (link, desk) = crate::desk::host::spawn(desk);
        let opts = crate::web::Options {
            listen,
            data: store.dir().to_path_buf(),
            profile,
            config,
            cpu: false,
            tls: a.tls_cert.clone().zip(a.tls_key.clone()),
        };
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let server = crate::web::beside(&opts, link, |addr| {
            println!("opening bench on {scheme}://{addr}/");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        })?;
        Ok(Bench { server, desk })
    }

    /// Stop serving, then let the desk settle what it queued for the archive.
    fn stop(self) -> anyhow::Result<()> {
        let served = self.server.stop();
        // The server held the last link: the desk's thread ends with it.
        let _ = self.desk.join();
        served
    }
}

fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String =
        name.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    if name.is_empty() { "node".into() } else { name.chars().take(64).collect() }
}

pub fn node(
    profile: &str,
    data: Option<&Path>,
    a: NodeArgs,
    mode: super::progress::Mode,
) -> anyhow::Result<()> {
    let hub = HubUrl::parse(&a.hub)?;
    let node = a.node.clone().unwrap_or_else(host_name);
    crate::hub::check_name("line", &a.line)?;
    crate::hub::check_name("node", &node)?;
    for (what, v) in [("--keep-hours", a.keep_hours), ("--drain-seconds", a.drain_seconds)] {
        anyhow::ensure!((0.0..1e6).contains(&v), "{what} {v}: a number of hours/seconds, 0 or more");
    }
    if let Some(url) = &a.records {
        anyhow::ensure!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "--records {url:?}: expected postgres://USER@HOST:PORT/DATABASE"
        );
    }
    let dir = super::archive::data_dir(data)?;
    let store = Store::open(&dir).with_context(|| format!("opening the archive at {}", dir.display()))?;
    let waiting = store.unpublished(usize::MAX >> 1)?.len();
    let cfg = publish::Config {
        hub: hub.clone(),
        line: a.line.clone(),
        node: node.clone(),
        replicas: a.replicas as usize,
        keep: Duration::from_secs_f64(a.keep_hours * 3600.0),
        records: a.records.clone(),
        credentials: credentials(a.credentials.as_deref())?,
        site: match &a.site {
            Some(p) => Some(super::load_site(Some(p))?),
            None => None,
        },
        barcode: match &a.barcode {
            Some(url) => Some(
                crate::hub::barcode::BarcodeConfig::parse(url, a.barcode_offset_ms, a.barcode_tolerance_ms)
                    .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        },
        desk: Vec::new(),
    };
    if let Some(s) = cfg.site.as_ref().and_then(|s| s.sorter.as_ref()) {
        println!(
            "sorter: lanes on {}.{}.{node}.<bag>, {} ms from the scanner to the divert point",
            s.subject(),
            a.line,
            s.deadline_ms(&a.line)
        );
    }
    println!(
        "node {node} on line {}: archive {} ({waiting} bags waiting to be published), hub {}",
        a.line,
        dir.display(),
        hub.servers.join(",")
    );
    let bench = match a.web {
        Some(listen) => Some(Bench::start(profile, &store, &a, listen)?),
        None => None,
    };
    let publisher = publish::Publisher::start(cfg, store.second_writer()?)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let wake = |_: i64| publisher.wake();
    let capture = super::stream::CaptureArgs {
        source: a.source,
        bags: a.bags,
        seconds: a.seconds,
        out: None,
        raw: false,
        record: a.record,
    };
    let hooks = super::stream::Hooks { stop: Some(&stop), archived: Some(&wake), archive: Some(store) };
    let captured = super::stream::capture_with(profile, Some(&dir), capture, mode, hooks);
    if stop.load(Ordering::Relaxed) {
        println!("stopping: publishing what waits (at most {} s)", a.drain_seconds);
    }
    let report = publisher.finish(Duration::from_secs_f64(a.drain_seconds))?;
    if let Some(b) = bench {
        b.stop()?;
    }
    println!("published: {}", report.published);
    println!("found on the hub already: {}", report.found_on_broker);
    println!("waiting in the archive: {}", report.waiting);
    if !report.refused.is_empty() {
        println!("refused (scan damaged): {:?}", report.refused);
    }
    if let Some((read, missed, unclaimed, bad)) = report.barcodes {
        println!("barcodes read: {read}");
        println!("parcels without a barcode: {missed}");
        println!("reads no parcel took: {unclaimed}");
        println!("unreadable reader lines: {bad}");
    }
    if let Some(s) = &report.sort {
        println!("sorted: {}", s.sorted);
        println!("manual lane: {}", s.manual);
        println!("no lane before the deadline: {}", s.missed);
        println!("rerouted by a correction: {}", s.rerouted);
        println!("decided after the lane could change: {}", s.too_late);
    }
    captured
}

/// Options of `twinspect bot`.
#[derive(clap::Args, Debug)]
pub struct BotArgs {
    /// The hub's NATS servers: nats://HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    pub hub: String,
    /// The agency it screens for (an agency of the site).
    #[arg(long)]
    pub agency: String,
    /// The decision code it gives every bag (one of the agency's codes).
    #[arg(long)]
    pub decide: String,
    /// How long it looks at each bag, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub think_ms: u64,
    /// Its station name (default: bot-<agency>-<process id>).
    #[arg(long)]
    pub name: Option<String>,
    /// The site (agencies and their codes), as for `run`.
    #[arg(long)]
    pub site: Option<PathBuf>,
    /// A bag neither decided nor held this long goes to another station (the agency's consumer
    /// keeps what its first station set).
    #[arg(long, default_value_t = 30.0)]
    pub hold_seconds: f64,
    /// A bag announced as screened for the agency at its scanner's desk waits this long for the
    /// desk's decision (from its announcement); not decided there by then, the bot screens it.
    #[arg(long, default_value_t = 300.0)]
    pub desk_wait_seconds: f64,
    /// Stop after deciding this many bags (default: until SIGTERM or Ctrl-C).
    #[arg(long)]
    pub bags: Option<u64>,
    /// Replicas of the hub's streams if this station creates them (3 on a 3-server cluster).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,
    /// The hub's PostgreSQL records (postgres://USER@HOST:PORT/DB): the bag and the agency's
    /// decision go there before the bag is acknowledged.
    #[arg(long)]
    pub records: Option<String>,
    /// This station's key (an nkey seed file, mode 600, from `twinspect hub key`), when the hub
    /// uses keys.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
}

pub fn bot(a: BotArgs) -> anyhow::Result<()> {
    use crate::hub::records::StationRecords;
    use crate::hub::station::{Automatic, Decided, Next, Station, StationConfig};
    let hub = HubUrl::parse(&a.hub)?;
    let site = super::load_site(a.site.as_deref())?;
    let Some(agency) = site.agency(&a.agency) else {
        let known: Vec<&str> = site.agencies.iter().map(|g| g.id.as_str()).collect();
        anyhow::bail!("--agency {}: the site's agencies are {}", a.agency, known.join(", "));
    };
    if agency.decision(&a.decide).is_none() {
        let known: Vec<&str> = agency.decisions.iter().map(|d| d.code.as_str()).collect();
        anyhow::bail!("--decide {}: {}'s codes are {}", a.decide, a.agency, known.join(", "));
    }
    anyhow::ensure!(
        (0.5..=3600.0).contains(&a.hold_seconds),
        "--hold-seconds {}: from 0.5 to 3600",
        a.hold_seconds
    );
    anyhow::ensure!(
        (0.0..=86_400.0).contains(&a.desk_wait_seconds),
        "--desk-wait-seconds {}: from 0 to 86400",
        a.desk_wait_seconds
    );
    let name = a.name.clone().unwrap_or_else(|| format!("bot-{}-{}", a.agency, std::process::id()));
    crate::hub::check_name("agency", &a.agency)?;
    crate::hub::check_name("station", &name)?;
    let hold = Duration::from_secs_f64(a.hold_seconds);
    let cfg = StationConfig {
        hub,
        agency: a.agency.clone(),
        station: name.clone(),
        hold,
        max_deliver: 10,
        replicas: a.replicas as usize,
        keep: Duration::from_secs(72 * 3600),
        credentials: credentials(a.credentials.as_deref())?,
        automatic: Automatic::for_agency(&site, &a.agency),
        desk_wait: Duration::from_secs_f64(a.desk_wait_seconds),
    };
    if let Some(l1) = &cfg.automatic {
        println!(
            "automatic level first: bags the alarm aids pass are given {} (a dense object of {} px alarms)",
            l1.release, l1.aids.dense_pixels
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let stopped = || stop.load(Ordering::Relaxed);
    let operator = format!("bot:{name}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut records = match &a.records {
            Some(url) => Some(StationRecords::connect(url).await?),
            None => None,
        };
        // Brokers may still be starting (or electing a JetStream leader): wait for them.
        let mut said = String::new();
        let station = loop {
            match Station::connect(cfg.clone()).await {
                Ok(s) => break s,
                Err(e) if !stopped() => {
                    if e.to_string() != said {
                        said = e.to_string();
                        eprintln!("hub: not ready ({e}); trying again");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => anyhow::bail!("hub: {e}"),
            }
        };
        println!("station {name} screening for {} on {}", a.agency, a.hub);
        let (mut decided, mut cleared, mut elsewhere, mut refused) = (0u64, 0u64, 0u64, 0u64);
        let mut at_desk = 0u64;
        while !stopped() && a.bags.is_none_or(|n| decided + cleared < n) {
            let asked = std::time::Instant::now();
            // A stop is heard at once, even while the brokers do not answer (a bag pulled at that
            // moment goes to another station after the hold time).
            let next = tokio::select! {
                r = station.next(Duration::from_millis(500)) => r,
                _ = async {
                    while !stopped() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                } => break,
            };
            let (t, outcome, decision) = match next {
                Ok(Next::Bag(t)) => {
                    let Some((outcome, decision)) =
                        look_and_decide(&station, &t, asked, &a, &operator, &stopped).await
                    else {
                        if stopped() {
                            let id = format!("{}.{}.{}", t.bag.line, t.bag.node, t.bag.bag);
                            let _ = station.hand_back(*t).await;
                            println!("handed bag {id} back");
                            break;
                        }
                        let _ = station.hand_back_later(*t).await;
                        continue;
                    };
                    (t, outcome, decision)
                }
                Ok(Next::Decided { t, outcome, decision }) => (t, outcome, *decision),
                Ok(Next::Nothing) => continue,
                Ok(Next::AtDesk { line, node, bag }) => {
                    at_desk += 1;
                    println!("bag {line}.{node}.{bag} is screened at its desk; let pass");
                    continue;
                }
                Ok(Next::DeskWaits { line, node, bag, left }) => {
                    println!(
                        "bag {line}.{node}.{bag} is screened at its desk, not decided there yet: back in {} s",
                        left.as_secs_f64().ceil()
                    );
                    continue;
                }
                Ok(Next::Refused { subject, why }) => {
                    refused += 1;
                    eprintln!("refused {subject}: {why}");
                    continue;
                }
                Err(e) => {
                    eprintln!("hub: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let id = format!("{}.{}.{}", t.bag.line, t.bag.node, t.bag.bag);
            let seq = match outcome {
                Decided::Recorded(s) | Decided::Elsewhere(s) => s,
            };
            // The records before the ack: a station that dies here leaves the bag to another,
            // which finds the decision on the broker and records it.
            if let Some(r) = records.as_mut()
                && let Err(e) =
                    r.record_decided(&t.bag, Station::stream_seq(&t), &operator, &decision, seq).await
            {
                eprintln!("{e}; bag {id} handed back");
                let _ = station.hand_back_later(*t).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            if let Err(e) = station.done(*t).await {
                eprintln!("hub: acknowledging bag {id}: {e}");
            }
            match outcome {
                Decided::Recorded(seq) if decision.level == "L1" => {
                    cleared += 1;
                    println!(
                        "cleared bag {id} automatically as {} #{seq}: {}",
                        crate::hub::DECISIONS,
                        decision.reason.as_deref().unwrap_or("")
                    );
                }
                Decided::Recorded(seq) => {
                    decided += 1;
                    println!(
                        "decided bag {id} {} as {} #{seq} ({} ms after taking it)",
                        a.decide,
                        crate::hub::DECISIONS,
                        decision.held_ms
                    );
                }
                Decided::Elsewhere(seq) => {
                    elsewhere += 1;
                    println!("bag {id} was decided elsewhere (#{seq})");
                }
            }
        }
        // A bag handed back at a stop reaches the broker before the process ends.
        station.flush().await;
        println!("decided: {decided}");
        println!("cleared automatically (L1): {cleared}");
        println!("decided elsewhere first: {elsewhere}");
        println!("screened at their desk: {at_desk}");
        println!("refused: {refused}");
        Ok(())
    })
}

/// A bot's look at a bag taken for its operator: held by progress acks at a third of the hold
/// time for `--think-ms`, then decided. None when it stopped meanwhile or the decision did not
/// go (said; the caller hands the bag back).
async fn look_and_decide(
    station: &crate::hub::station::Station,
    t: &crate::hub::station::Taken,
    asked: std::time::Instant,
    a: &BotArgs,
    operator: &str,
    stopped: &impl Fn() -> bool,
) -> Option<(crate::hub::station::Decided, crate::hub::DecisionMsg)> {
    let id = format!("{}.{}.{}", t.bag.line, t.bag.node, t.bag.bag);
    // On screen (scan fetched and checked) this long after the bag left the scanner (the
    // node's clock against this machine's: one clock on one machine, NTP across).
    let since_end = crate::unix_ms().saturating_sub(t.bag.ended_ms);
    let l1 = t.l1.as_ref().map(|v| format!(", {}", v.describe())).unwrap_or_default();
    println!(
        "took bag {id} (delivery {}, {} lines, scan fetched in {} ms, on screen {since_end} ms after the bag ended{l1})",
        t.delivery,
        t.bag.lines,
        (t.taken - asked).as_millis()
    );
    let hold = Duration::from_secs_f64(a.hold_seconds);
    let until = t.taken + Duration::from_millis(a.think_ms);
    let mut next_hold = t.taken + hold / 3;
    while std::time::Instant::now() < until && !stopped() {
        if std::time::Instant::now() >= next_hold {
            if let Err(e) = station.hold(t).await {
                eprintln!("hub: holding bag {id}: {e}");
            }
            next_hold += hold / 3;
        }
        tokio::time::sleep(Duration::from_millis(50).min(until - std::time::Instant::now())).await;
    }
    if stopped() && std::time::Instant::now() < until {
        return None;
    }
    match station.decide(t, &a.decide, operator, "L2", None, Vec::new()).await {
        Ok(x) => Some(x),
        Err(e) => {
            eprintln!("hub: deciding bag {id}: {e}");
            None
        }
    }
}

/// `twinspect hub ...`.
#[derive(clap::Subcommand, Debug)]
pub enum HubCommand {
    /// A new key for a node, station or administrator: its seed written to FILE (mode 600,
    /// never over an existing file; it stays on that machine), its public key printed (it goes
    /// in the hub's users file).
    Key {
        #[arg(long)]
        out: PathBuf,
    },
    /// The broker's permissions from the hub's users file: a nats-server `authorization` block
    /// (include it from the server's configuration). Nodes publish only their own bags and
    /// scans, stations take bags only from their agency's consumer and decide only for it.
    Permissions {
        /// The users file (TOML: [[node]] line, node, key; [[station]] agency, station, key;
        /// [[admin]] name, key).
        #[arg(long)]
        users: PathBuf,
        /// Where to write the block (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The site, where its `[sorter]` names the subject its sorter listens under (nodes
        /// may send lanes there).
        #[arg(long)]
        site: Option<PathBuf>,
    },
    /// Set the hub up: on the broker, the bag and decision streams, each agency's consumer and
    /// each line's scans bucket (with an administrator's key when the hub uses keys); in
    /// PostgreSQL, the schema and a writer role that cannot rewrite the audit trail.
    Setup(SetupArgs),
}

#[derive(clap::Args, Debug)]
pub struct SetupArgs {
    /// The hub's NATS servers: nats://HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    pub hub: Option<String>,
    /// The administrator's key (an nkey seed file).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// The site (its agencies get a consumer each).
    #[arg(long)]
    pub site: Option<PathBuf>,
    /// The users file: every line a node is on gets its scans bucket.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Lines to make scans buckets for (besides the users file's).
    #[arg(long)]
    pub line: Vec<String>,
    /// Replicas of every stream (3 on a 3-server cluster).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,
    /// How long the broker keeps bags, scans and decisions, in hours.
    #[arg(long, default_value_t = 72.0)]
    pub keep_hours: f64,
    /// A bag neither decided nor held this long by a station goes to another.
    #[arg(long, default_value_t = 30.0)]
    pub hold_seconds: f64,
    /// The hub's PostgreSQL as the tables' owner (postgres://OWNER@HOST:PORT/DB).
    #[arg(long)]
    pub records: Option<String>,
    /// The role nodes and stations write records as (it must exist; it gets INSERT and SELECT).
    #[arg(long, requires = "records")]
    pub writer: Option<String>,
}

pub fn hub(c: HubCommand) -> anyhow::Result<()> {
    match c {
        HubCommand::Key { out } => {
            let c = Credentials::create(&out)?;
            println!("{}", c.public);
            eprintln!("seed written to {} (mode 600): keep it on the machine that uses it", out.display());
            Ok(())
        }
        HubCommand::Permissions { users, out, site } => {
            let text =
                std::fs::read_to_string(&users).with_context(|| format!("reading {}", users.display()))?;
            let users = Users::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", users.display()))?;
            let site = super::load_site(site.as_deref())?;
            let conf = users.server_config(sort_root(&site));
            match out {
                Some(p) => {
                    std::fs::write(&p, conf).with_context(|| format!("writing {}", p.display()))?;
                    eprintln!("{} users written to {}", users.users.len(), p.display());
                }
                None => print!("{conf}"),
            }
            Ok(())
        }
        HubCommand::Setup(a) => setup(a),
    }
}

fn setup(a: SetupArgs) -> anyhow::Result<()> {
    use crate::hub::station;
    anyhow::ensure!(
        a.hub.is_some() || a.records.is_some(),
        "nothing to set up: give --hub, --records or both"
    );
    anyhow::ensure!((0.0..1e6).contains(&a.keep_hours), "--keep-hours {}: 0 or more", a.keep_hours);
    anyhow::ensure!(
        (0.5..=3600.0).contains(&a.hold_seconds),
        "--hold-seconds {}: from 0.5 to 3600",
        a.hold_seconds
    );
    let site = super::load_site(a.site.as_deref())?;
    let mut lines = a.line.clone();
    if let Some(p) = &a.users {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        lines.extend(Users::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?.lines());
    }
    lines.sort();
    lines.dedup();
    for l in &lines {
        crate::hub::check_name("line", l)?;
    }
    let creds = credentials(a.credentials.as_deref())?;
    let keep = Duration::from_secs_f64(a.keep_hours * 3600.0);
    let replicas = a.replicas as usize;
    let hold = Duration::from_secs_f64(a.hold_seconds);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        if let Some(url) = &a.hub {
            let hub = HubUrl::parse(url)?;
            let who = Identity::Admin { name: "setup".into() };
            let client = access::connect_options("twinspect hub setup".into(), &who, creds.as_ref())
                .max_reconnects(Some(3))
                .connect(hub.servers.clone())
                .await
                .with_context(|| format!("connecting to {url}"))?;
            let js = async_nats::jetstream::new(client);
            use crate::hub::{DECISIONS, STREAM, sorter};
            for (name, cfg) in [
                (STREAM, station::bag_stream(replicas, keep)),
                (DECISIONS, station::decision_stream(replicas, keep)),
            ] {
                js.get_or_create_stream(cfg).await.with_context(|| format!("stream {name}"))?;
                println!("stream {name}: ready");
            }
            let lanes = sorter::sort_stream(sort_root(&site), replicas, keep);
            sorter::ready_sort_stream(&js, lanes).await.map_err(anyhow::Error::msg)?;
            println!("stream {} (lanes under {}.>): ready", sorter::SORT_STREAM, sort_root(&site));
            let bags = js.get_stream(STREAM).await.with_context(|| format!("stream {STREAM}"))?;
            for g in &site.agencies {
                crate::hub::check_name("agency", &g.id)?;
                let name = access::agency_consumer(&g.id);
                bags.get_or_create_consumer(&name, station::agency_consumer(&g.id, hold, 10))
                    .await
                    .with_context(|| format!("consumer {name}"))?;
                println!("consumer {name}: ready");
            }
            for l in &lines {
                station::line_scans(&js, l, replicas, keep)
                    .await
                    .map_err(|e| anyhow::anyhow!("bucket {}: {e}", access::scans_bucket(l)))?;
                println!("bucket {}: ready", access::scans_bucket(l));
            }
        }
        if let Some(url) = &a.records {
            let mut r = crate::hub::records::Records::connect(url).await?;
            println!("records: schema up to date");
            if let Some(role) = &a.writer {
                r.grant_writer(role, "(setup)").await?;
                println!("records: role {role} may add records, not change or remove them");
            }
        }
        Ok(())
    })
}

/// The hub's opening bench (`web --hub --records`), its options checked.
pub(super) fn bench_config(
    hub: &str,
    records: &str,
    name: &str,
    creds: Option<&Path>,
    site: &crate::domain::inspection::InspectionConfig,
) -> anyhow::Result<crate::hub::bench::BenchConfig> {
    let hub = HubUrl::parse(hub)?;
    crate::hub::check_name("bench", name)?;
    anyhow::ensure!(
        records.starts_with("postgres://") || records.starts_with("postgresql://"),
        "--records {records:?}: expected postgres://USER@HOST:PORT/DATABASE"
    );
    anyhow::ensure!(
        site.agencies
            .iter()
            .any(|a| a.decisions.iter().any(|d| d.kind == crate::domain::inspection::DispositionKind::Open)),
        "the site has no decision code that asks for an opening: the bench would have nothing to serve"
    );
    Ok(crate::hub::bench::BenchConfig {
        hub,
        name: name.to_string(),
        credentials: credentials(creds)?,
        records: records.to_string(),
        site: site.clone(),
    })
}

/// The subject root the site's sorter listens under (the default without a sorter).
fn sort_root(site: &crate::domain::inspection::InspectionConfig) -> &str {
    site.sorter.as_ref().map_or(crate::hub::sorter::SORT_ROOT, |s| s.subject())
}
