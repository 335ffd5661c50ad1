//! The hub's scanner node against a real NATS server (Debian's nats-server, JetStream on, on
//! loopback): every archived bag reaches the broker once, with its scan, through a broker that
//! is down at the start and killed in the middle; a bag the broker already holds is recorded,
//! not sent again; bad options are refused before anything starts.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::twinspect;
use twinspect::files::store::{BagState, Store, hex_sha256};
use twinspect::hub::access::scans_bucket;
use twinspect::hub::sorter::{SORT_STREAM, SortMsg};
use twinspect::hub::{BagAnnouncement, DECISIONS, DecisionMsg, STREAM};

use common::servers::{Nats, PG_BIN, Postgres, as_postgres, free_port};

/// A running `twinspect node` or `bot`, its output lines on a channel.
struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Node {
    fn start(data: &Path, hub: &str, args: &[&str]) -> Node {
        let mut c = twinspect();
        c.arg("--quiet").arg("--data").arg(data);
        c.args(["node", "--hub", hub, "--line", "L1", "--node", "n1"]).args(args);
        Node::spawn(c)
    }

    /// `twinspect bot --hub HUB ARGS`.
    fn bot(hub: &str, args: &[&str]) -> Node {
        let mut c = twinspect();
        c.args(["bot", "--hub", hub]).args(args);
        Node::spawn(c)
    }

    fn spawn(mut c: Command) -> Node {
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // Bounded: a process that says more than the test reads waits on its pipe (it says little).
        let (tx, lines) = mpsc::sync_channel(4096);
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Node { child, lines, seen: Vec::new() }
    }

    /// Wait for a line containing `what`; fails the test with everything said so far.
    fn wait_for(&mut self, what: &str, limit: Duration) -> String {
        let t0 = Instant::now();
        if let Some(l) = self.seen.iter().find(|l| l.contains(what)) {
            return l.clone();
        }
        while t0.elapsed() < limit {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(l.clone());
                if l.contains(what) {
                    return l;
                }
            }
        }
        panic!("no {what:?} within {limit:?}; the node said:\n{}", self.seen.join("\n"));
    }

    fn count(&mut self, what: &str) -> usize {
        self.seen.extend(self.lines.try_iter());
        self.seen.iter().filter(|l| l.contains(what)).count()
    }

    /// SIGTERM, then the exit status and everything it said.
    fn stop(self) -> (bool, String) {
        // SAFETY: signalling a child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait()
    }

    /// Killed as a crash would.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait(mut self) -> (bool, String) {
        let ok = self.child.wait().unwrap().success();
        // The reader threads end with the process's pipes.
        std::thread::sleep(Duration::from_millis(100));
        self.seen.extend(self.lines.try_iter());
        (ok, self.seen.join("\n"))
    }
}

impl Drop for Node {
    /// A test that fails leaves no process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Processes killed when the test ends, however it ends.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn summary(out: &str, name: &str) -> u64 {
    common::stat(out, name)
}

/// What the broker holds: each bag's announcement by subject (every message of the stream, in
/// order), and the scans' bytes by object name.
struct Held {
    messages: Vec<(String, u64, BagAnnouncement)>,
    scans: HashMap<String, Vec<u8>>,
}

fn broker_contents(url: &str) -> Held {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use tokio::io::AsyncReadExt;
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(STREAM).await.unwrap();
        let info = stream.info().await.unwrap().clone();
        let mut messages = Vec::new();
        for seq in info.state.first_sequence..=info.state.last_sequence {
            let m = stream.get_raw_message(seq).await.unwrap();
            let a = BagAnnouncement::decode(&m.payload).unwrap();
            messages.push((m.subject.to_string(), m.sequence, a));
        }
        let mut scans = HashMap::new();
        for (_, _, a) in &messages {
            assert_eq!(a.scan.bucket, scans_bucket(&a.line));
            let bucket = js.get_object_store(&a.scan.bucket).await.unwrap();
            let mut obj = bucket.get(&a.scan.object).await.unwrap();
            let mut bytes = Vec::new();
            obj.read_to_end(&mut bytes).await.unwrap();
            scans.insert(a.scan.object.clone(), bytes);
        }
        Held { messages, scans }
    })
}

/// Every complete bag of the archive is on the broker exactly once, as the archive holds it
/// (scan bytes, tag, lines, calibration), and the archive knows each one's stream sequence.
fn assert_broker_holds_the_archive(data: &Path, held: &Held) {
    let store = Store::open_read(data).unwrap();
    let rows = store.bags(&Default::default()).unwrap();
    let complete: Vec<_> = rows.iter().filter(|r| r.state == BagState::Complete).collect();
    assert!(!complete.is_empty());
    let mut by_subject: BTreeMap<&str, usize> = BTreeMap::new();
    for (s, _, _) in &held.messages {
        *by_subject.entry(s).or_default() += 1;
    }
    assert!(by_subject.values().all(|&n| n == 1), "a subject twice: {by_subject:?}");
    assert_eq!(held.messages.len(), complete.len(), "one message per complete bag");
    for r in complete {
        let subject = format!("twinspect.bag.L1.n1.{}", r.id);
        let (_, seq, a) = held
            .messages
            .iter()
            .find(|(s, _, _)| *s == subject)
            .unwrap_or_else(|| panic!("bag {} not on the broker", r.id));
        assert_eq!(store.published(r.id).unwrap(), Some((subject.clone(), *seq)), "bag {}", r.id);
        // Its id on the hub: the barcode the node joined to it, else the scanner's tag.
        let id = store.barcode_of(r.id).unwrap().flatten().or(r.item_id.clone());
        assert_eq!((a.bag, a.item_id.clone(), Some(a.lines)), (r.id, id, r.lines));
        assert_eq!((a.line.as_str(), a.node.as_str(), a.channels), ("L1", "n1", r.channels));
        let file = std::fs::read(data.join(r.scan_file.as_ref().unwrap())).unwrap();
        let scan = &held.scans[&a.scan.object];
        assert_eq!(scan.len(), file.len());
        assert!(scan == &file, "bag {}: the broker's scan differs from the archive's", r.id);
        assert_eq!(hex_sha256(scan), a.scan.sha256);
        assert_eq!(a.scan.sha256, r.scan_sha256.clone().unwrap());
        let cal = store.calibration(r.id).unwrap();
        assert_eq!(a.calibration.air_high, cal.air_high);
    }
    assert!(store.verify_audit().unwrap().ok());
}

#[test]
fn a_node_keeps_scanning_while_the_broker_is_down_and_publishes_every_bag_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    // The broker is not there when the node starts: it scans and archives anyway, and joins
    // each parcel to its barcode as the line's reader sends it (the reader does not wait).
    let reader = free_port();
    let source = format!("synthetic://?seed=11&speed=4&reader={reader}&reader_ms=300");
    let barcode = format!("tcp://127.0.0.1:{reader}");
    let mut node = Node::start(
        &data,
        &url,
        &[
            "--source",
            &source,
            "--barcode",
            &barcode,
            "--barcode-offset-ms",
            "300",
            "--barcode-tolerance-ms",
            "250",
        ],
    );
    node.wait_for("archived bag 1 ", Duration::from_secs(60));
    node.wait_for("archived bag 2 ", Duration::from_secs(60));
    assert_eq!(node.count("published bag"), 0);
    // The broker comes: what waited goes out, oldest first.
    let mut nats = Nats::start(port, &tmp.path().join("js"));
    node.wait_for("published bag 1 ", Duration::from_secs(30));
    node.wait_for("published bag 2 ", Duration::from_secs(30));
    // The broker dies (SIGKILL) while bags keep coming; then it comes back on its own store.
    nats.kill();
    let archived = node.count("archived bag");
    node.wait_for(&format!("archived bag {} ", archived + 1), Duration::from_secs(60));
    let nats = Nats::start(port, &nats.dir.clone());
    node.wait_for(&format!("published bag {} ", archived + 1), Duration::from_secs(30));
    let (ok, out) = node.stop();
    assert!(ok, "{out}");
    assert_eq!(summary(&out, "waiting in the archive"), 0, "{out}");
    let held = broker_contents(&nats.url());
    assert_broker_holds_the_archive(&data, &held);
    assert!(held.messages.len() > archived, "{out}");
    // Every parcel went out with its barcode, those read while the broker was away too.
    for (_, _, a) in &held.messages {
        assert!(a.item_id.as_deref().is_some_and(|id| id.starts_with("PK")), "{a:?}\n{out}");
    }
    assert_eq!(summary(&out, "parcels without a barcode"), 0, "{out}");
}

#[test]
fn a_bag_the_broker_already_holds_is_recorded_not_sent_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let nats = Nats::start(free_port(), &tmp.path().join("js"));
    let node = Node::start(&data, &nats.url(), &["--source", "synthetic://?seed=12&speed=20", "--bags", "2"]);
    let (ok, out) = node.wait();
    assert!(ok, "{out}");
    assert_eq!((summary(&out, "published"), summary(&out, "waiting in the archive")), (2, 0), "{out}");
    // A node killed after the broker's ack but before its archive said so: the record is gone.
    {
        let s = Store::open(&data).unwrap();
        s.connection().execute("DELETE FROM published WHERE bag = 2", []).unwrap();
        assert_eq!(s.unpublished(10).unwrap().len(), 1);
    }
    let node = Node::start(&data, &nats.url(), &["--source", "synthetic://?seed=13&speed=20", "--bags", "1"]);
    let (ok, out) = node.wait();
    assert!(ok, "{out}");
    assert!(out.contains("bag 2 was already on the hub"), "{out}");
    assert_eq!(summary(&out, "published"), 1, "only the new bag: {out}");
    assert_eq!(summary(&out, "found on the hub already"), 1, "{out}");
    let held = broker_contents(&nats.url());
    assert_eq!(held.messages.len(), 3);
    assert_broker_holds_the_archive(&data, &held);
    let s = Store::open_read(&data).unwrap();
    let found: Vec<_> = twinspect::files::store::audit::entries(s.connection())
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "bag.published" && e.detail.contains("\"found_on_broker\":true"))
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].bag, Some(2));
}

#[test]
fn bad_hub_options_are_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for (args, says) in [
        (vec!["--hub", "http://127.0.0.1:4222", "--line", "L1"], "nats://HOST:PORT"),
        (vec!["--hub", "nats://127.0.0.1", "--line", "L1"], "nats://HOST:PORT"),
        (vec!["--hub", "nats://127.0.0.1:4222", "--line", "a.>"], "line \"a.>\""),
        (vec!["--hub", "nats://127.0.0.1:4222", "--line", "L1", "--node", "n 1"], "node \"n 1\""),
        (vec!["--hub", "nats://127.0.0.1:4222", "--line", "L1", "--keep-hours=-1"], "--keep-hours"),
    ] {
        let (ok, out, err) = common::run(
            twinspect()
                .arg("--data")
                .arg(&data)
                .arg("node")
                .args(["--source", "synthetic://?seed=1", "--bags", "1"])
                .args(&args),
        );
        assert!(!ok, "{args:?} accepted: {out}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!data.join("archive.sqlite").exists(), "nothing was started");
    // A bot for an agency the site does not have, or with another agency's code: refused with
    // what the site has (no broker needed to say so).
    for (args, says) in [
        (["--agency", "police", "--decide", "release"], "customs, quarantine"),
        (["--agency", "customs", "--decide", "treat"], "customs's codes are release, open"),
    ] {
        let (ok, _, err) = common::run(twinspect().args(["bot", "--hub", "nats://127.0.0.1:1"]).args(args));
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    // A workstation's screens as stations: refused before any window opens or archive is made.
    for (args, says) in [
        (vec!["--hub", "nats://127.0.0.1"], "nats://HOST:PORT"),
        (vec!["--hub", "nats://127.0.0.1:1", "--hold-seconds", "0"], "--hold-seconds"),
        (vec!["--hub", "nats://127.0.0.1:1", "--screen-seconds", "0"], "--screen-seconds"),
        (vec!["--hub", "nats://127.0.0.1:1", "--station", "ws 1"], "--station ws 1"),
        (vec!["--records", "postgres://x"], "--hub"),
        (vec!["--hub", "nats://127.0.0.1:1", "--station", "ws1", "--keys", "/nonexistent"], "ws1-customs.nk"),
        // A desk that publishes its own bags.
        (vec!["--publish", "L1"], "--hub"),
        (vec!["--hub", "nats://127.0.0.1:1", "--publish", "a.>"], "--publish: line \"a.>\""),
        (vec!["--hub", "nats://127.0.0.1:1", "--publish", "L1", "--station", "d 1"], "--station: node"),
        (vec!["--hub", "nats://127.0.0.1:1", "--publish", "L1", "--records", "http://x"], "--records"),
        (
            vec!["--hub", "nats://127.0.0.1:1", "--publish", "L1", "--station", "d1", "--keys", "/x"],
            "d1-customs.nk",
        ),
    ] {
        let (ok, _, err) = common::run(twinspect().arg("--data").arg(&data).arg("run").args(&args));
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    // The hub's opening bench.
    let no_opening = tmp.path().join("no-opening.toml");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/sites/hub-line.toml");
    let text = std::fs::read_to_string(shipped).unwrap().replace("kind = \"open\"", "kind = \"hold\"");
    std::fs::write(&no_opening, text).unwrap();
    let site = no_opening.to_str().unwrap();
    for (args, says) in [
        (vec!["--hub", "nats://127.0.0.1:1"], "--records"),
        (vec!["--records", "postgres://x@127.0.0.1:1/hub"], "--hub"),
        (vec!["--hub", "nats://127.0.0.1", "--records", "postgres://x@y/z"], "nats://HOST:PORT"),
        (vec!["--hub", "nats://127.0.0.1:1", "--records", "http://x"], "--records"),
        (
            vec!["--hub", "nats://127.0.0.1:1", "--records", "postgres://x@y/z", "--name", "b.1"],
            "bench \"b.1\"",
        ),
        (vec!["--hub", "nats://127.0.0.1:1", "--records", "postgres://x@y/z", "--credentials", "/x"], "/x"),
        (
            vec!["--hub", "nats://127.0.0.1:1", "--records", "postgres://x@y/z", "--site", site],
            "asks for an opening",
        ),
        (vec!["--name", "b1"], "--hub"),
    ] {
        let (ok, _, err) = common::run(
            twinspect().arg("--data").arg(&data).args(["web", "--listen", "127.0.0.1:0"]).args(&args),
        );
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    assert!(!data.join("archive.sqlite").exists(), "nothing was started");
}

/// Every decision on the broker, in order.
fn decisions(url: &str) -> Vec<(String, DecisionMsg)> {
    decisions_as(url, None)
}

/// Every decision on the broker, read with a key (a seed file) when the hub uses keys.
fn decisions_as(url: &str, seed: Option<&Path>) -> Vec<(String, DecisionMsg)> {
    stream_messages(url, seed, DECISIONS)
}

/// Every message of a stream, in order, by subject (none when there is no such stream).
fn stream_messages<T: serde::de::DeserializeOwned>(
    url: &str,
    seed: Option<&Path>,
    name: &str,
) -> Vec<(String, T)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut o = async_nats::ConnectOptions::new();
        if let Some(p) = seed {
            o = o.nkey(std::fs::read_to_string(p).unwrap().trim().to_string());
        }
        let client = o.connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let Ok(mut stream) = js.get_stream(name).await else { return Vec::new() };
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            if state.messages == 0 {
                break;
            }
            let m = stream.get_raw_message(seq).await.unwrap();
            out.push((m.subject.to_string(), serde_json::from_slice(&m.payload).unwrap()));
        }
        out
    })
}

/// Publish raw bytes on a subject, as a forger or a broken node would: the stream sequence.
fn publish_raw(url: &str, subject: &str, payload: Vec<u8>) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.publish(subject.to_string(), payload.into()).await.unwrap().await.unwrap().sequence
    })
}

/// Every message of the decision stream as stored: sequence, subject, payload.
fn raw_decisions(url: &str) -> Vec<(u64, String, Vec<u8>)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        let mut stream = js.get_stream(DECISIONS).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.push((m.sequence, m.subject.to_string(), m.payload.to_vec()));
            }
        }
        out
    })
}

#[test]
fn every_bag_gets_one_decision_per_agency_when_a_station_dies_mid_bag_and_bad_bags_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let nats = Nats::start(free_port(), &tmp.path().join("js"));
    let url = nats.url();
    let pg = Postgres::start(tmp.path());
    let records = pg.url();
    let (ok, out) = Node::start(
        &data,
        &url,
        &["--source", "synthetic://?seed=21&speed=20", "--bags", "4", "--records", &records],
    )
    .wait();
    assert!(ok, "{out}");
    // Three bad messages after the four bags: a scan that does not match its announced
    // checksum (a real announcement with another SHA-256), a cut-short announcement, and one
    // far over the size limit.
    let held = broker_contents(&url);
    let mut tampered = held.messages[0].2.clone();
    tampered.scan.sha256 = "0".repeat(64);
    publish_raw(&url, &held.messages[0].0, serde_json::to_vec(&tampered).unwrap());
    publish_raw(&url, "twinspect.bag.L1.evil.7", b"{\"format\":1,\"line\":".to_vec());
    publish_raw(&url, "twinspect.bag.L1.evil.8", vec![b' '; 600 * 1024]);

    // Customs' first station takes bag 1, holds it (a long look) and dies.
    let hold = ["--hold-seconds", "2", "--records", &records];
    let mut c1 = Node::bot(
        &url,
        &[&["--agency", "customs", "--decide", "open", "--name", "c1", "--think-ms", "60000"][..], &hold]
            .concat(),
    );
    c1.wait_for("took bag L1.n1.1 ", Duration::from_secs(30));
    // Held past the hold time by progress acks: nobody else gets it meanwhile.
    let c2 = Node::bot(
        &url,
        &[&["--agency", "customs", "--decide", "release", "--name", "c2", "--think-ms", "50"][..], &hold]
            .concat(),
    );
    std::thread::sleep(Duration::from_secs(3));
    c1.kill();
    let q1 = Node::bot(
        &url,
        &[&["--agency", "quarantine", "--decide", "release", "--name", "q1"][..], &hold].concat(),
    );
    let t0 = Instant::now();
    while decisions(&url).len() < 8 {
        assert!(t0.elapsed() < Duration::from_secs(60), "decisions: {:?}", decisions(&url));
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok2, out2) = c2.stop();
    let (okq, outq) = q1.stop();
    assert!(ok2 && okq, "{out2}\n{outq}");
    let all = decisions(&url);
    assert_eq!(all.len(), 8, "{all:?}");
    let mut per: BTreeMap<(String, i64), Vec<&DecisionMsg>> = BTreeMap::new();
    for (subject, d) in &all {
        assert_eq!(subject, &format!("twinspect.decision.{}.L1.n1.{}", d.agency, d.bag));
        per.entry((d.agency.clone(), d.bag)).or_default().push(d);
    }
    for agency in ["customs", "quarantine"] {
        for bag in 1..=4 {
            let ds = &per[&(agency.to_string(), bag)];
            assert_eq!(ds.len(), 1, "{agency} bag {bag}: {ds:?}");
            assert_eq!(ds[0].level, "L2");
        }
    }
    // Bag 1 went to c2 after c1 died, as its second delivery; c1 decided nothing.
    let b1 = per[&("customs".to_string(), 1)][0];
    assert_eq!((b1.station.as_str(), b1.code.as_str()), ("c2", "release"));
    assert!(out2.contains("took bag L1.n1.1 (delivery 2"), "{out2}");
    assert!(all.iter().all(|(_, d)| d.station != "c1"));
    // The bad messages were refused by each agency, once (terminated, not delivered again).
    for out in [&out2, &outq] {
        assert_eq!(common::stat(out, "refused"), 3, "{out}");
        assert!(out.contains("SHA-256"), "{out}");
        assert!(out.contains("limit"), "{out}");
    }
    // The scans the decisions were taken on are the archive's.
    let store = Store::open_read(&data).unwrap();
    for (_, d) in &all {
        assert_eq!(Some(d.scan_sha256.clone()), store.bag(d.bag).unwrap().scan_sha256);
    }
    // PostgreSQL holds the same: four bags, each with one decision per agency (the one on the
    // broker), and a chain that verifies; the trail refuses to be rewritten.
    let (ok, listed, err) = common::run(twinspect().args(["bags", "--json", "--records", &records]));
    assert!(ok, "{err}");
    let listed: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    for b in &listed {
        let bag = b["bag"].as_i64().unwrap();
        for agency in ["customs", "quarantine"] {
            let on_broker = per[&(agency.to_string(), bag)][0];
            let d = &b["decisions"][agency];
            assert_eq!(d["code"], on_broker.code.as_str(), "{b}");
            assert_eq!(d["station"], on_broker.station.as_str(), "{b}");
        }
        assert_eq!(Some(b["scan_sha256"].as_str().unwrap().to_string()), store.bag(bag).unwrap().scan_sha256);
    }
    let (ok, said, err) = common::run(twinspect().args(["audit", "verify", "--records", &records]));
    assert!(ok, "{said}{err}");
    // 6 migrations + 4 bags + 8 decisions.
    assert!(said.contains("intact: 18 entries"), "{said}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = twinspect::hub::records::Records::connect(&records).await.unwrap();
        let e = r.client().execute("DELETE FROM audit WHERE seq = 2", &[]).await.unwrap_err();
        assert!(e.to_string().contains("append-only") || format!("{e:?}").contains("append-only"), "{e:?}");
        let e = r.client().execute("UPDATE audit SET actor = 'x'", &[]).await.unwrap_err();
        assert!(format!("{e:?}").contains("append-only"), "{e:?}");
    });
}

/// Pixels of a bag's scan the high-energy beam did not penetrate (transmission under e^-5.3,
/// the hub profile's dense threshold), counted here from the definition: (raw - dark) over
/// (air - dark) per channel, lost rows left out.
fn dense_pixels_of(a: &BagAnnouncement, scan: &[u8]) -> usize {
    let frame = twinspect::files::io::raw_tiff_from_bytes(scan, "scan").unwrap();
    let c = &a.calibration;
    let floor = (-5.3f64).exp();
    let mut n = 0;
    for (row, line) in frame.high.outer_iter().enumerate() {
        if a.missing_rows.contains(&row) {
            continue;
        }
        for (ch, &raw) in line.iter().enumerate() {
            let t = (raw as f64 - c.dark_high[ch] as f64) / (c.air_high[ch] as f64 - c.dark_high[ch] as f64);
            if raw < c.full_scale && t < floor {
                n += 1;
            }
        }
    }
    n
}

/// The shipped hub line's site with customs screening automatically first (L1), in `dir`.
fn customs_first(dir: &Path) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/sites/hub-line.toml");
    let site = dir.join("site.toml");
    let text = std::fs::read_to_string(shipped).unwrap() + "\n[automatic]\nagencies = [\"customs\"]\n";
    std::fs::write(&site, text).unwrap();
    site
}

#[test]
fn the_automatic_level_clears_what_the_aids_pass_and_an_operator_gets_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let nats = Nats::start(free_port(), &tmp.path().join("js"));
    let url = nats.url();
    let pg = Postgres::start(tmp.path());
    let records = pg.url();
    // The hub line's site with customs screening automatically first; quarantine does not.
    let site = customs_first(tmp.path());
    let site = site.to_str().unwrap();
    let bags = 10;
    let (ok, out) = Node::start(
        &data,
        &url,
        &["--source", "synthetic://?seed=4&speed=20", "--bags", &bags.to_string(), "--records", &records],
    )
    .wait();
    assert!(ok, "{out}");
    let common = ["--site", site, "--records", &records, "--bags", "10"];
    let c = Node::bot(
        &url,
        &[&["--agency", "customs", "--decide", "open", "--name", "c1"][..], &common].concat(),
    );
    let q = Node::bot(
        &url,
        &[&["--agency", "quarantine", "--decide", "release", "--name", "q1"][..], &common].concat(),
    );
    let (okc, outc) = c.wait();
    let (okq, outq) = q.wait();
    assert!(okc && okq, "{outc}\n{outq}");
    assert!(outc.contains("automatic level first: bags the alarm aids pass are given release"), "{outc}");
    assert!(!outq.contains("automatic level"), "{outq}");

    let held = broker_contents(&url);
    let all = decisions(&url);
    assert_eq!(all.len(), 2 * bags, "{all:?}");
    let (mut cleared, mut alarmed) = (0, 0);
    for (_, _, a) in &held.messages {
        let of = |agency: &str| -> Vec<&DecisionMsg> {
            all.iter().map(|(_, d)| d).filter(|d| d.agency == agency && d.bag == a.bag).collect()
        };
        let (cd, qd) = (of("customs"), of("quarantine"));
        assert!(cd.len() == 1 && qd.len() == 1, "bag {}: {cd:?} {qd:?}", a.bag);
        let (cd, qd) = (cd[0], qd[0]);
        assert_eq!((qd.level.as_str(), qd.operator.as_str()), ("L2", "bot:q1"));
        let dense = dense_pixels_of(a, &held.scans[&a.scan.object]);
        let seen_whole = a.missing_rows.is_empty() && !a.truncated;
        if cd.level == "L1" {
            // Cleared: the aids passed it, recorded as automatic with the agency's release code.
            cleared += 1;
            assert!(dense < 16 && seen_whole, "bag {} cleared with {dense} dense px: {cd:?}", a.bag);
            assert_eq!(
                (cd.code.as_str(), cd.operator.as_str(), cd.station.as_str()),
                ("release", "(auto)", "c1")
            );
            let reason = cd.reason.as_deref().unwrap();
            assert_eq!(reason, format!("L1 clear: no alarm ({dense} px not penetrated)"));
            assert!(outc.contains(&format!("cleared bag L1.n1.{} automatically", a.bag)), "{outc}");
        } else {
            // Alarmed: the operator (here the bot) was given it, told why, and decided.
            alarmed += 1;
            assert!(dense >= 16 || !seen_whole, "bag {} alarmed with {dense} dense px", a.bag);
            assert_eq!((cd.level.as_str(), cd.code.as_str(), cd.operator.as_str()), ("L2", "open", "bot:c1"));
            let took = outc.lines().find(|l| l.contains(&format!("took bag L1.n1.{} ", a.bag))).unwrap();
            assert!(took.contains(&format!("L1 alarm: dense object ({dense} px")) || !seen_whole, "{took}");
        }
    }
    // The synthetic bags give both: a level that cleared everything or nothing shows nothing.
    eprintln!("L1 cleared {cleared} of {bags} bags, alarmed {alarmed}");
    assert!(cleared > 0 && alarmed > 0, "cleared {cleared}, alarmed {alarmed}");
    assert_eq!(common::stat(&outc, "cleared automatically (L1)"), cleared);
    assert_eq!(common::stat(&outc, "decided"), alarmed);
    assert_eq!(common::stat(&outq, "cleared automatically (L1)"), 0);
    // The hub's records say the same, level included.
    let (ok, listed, err) = common::run(twinspect().args(["bags", "--json", "--records", &records]));
    assert!(ok, "{err}");
    let listed: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), bags);
    for b in &listed {
        let bag = b["bag"].as_i64().unwrap();
        let on_broker = all.iter().map(|(_, d)| d).find(|d| d.agency == "customs" && d.bag == bag).unwrap();
        assert_eq!(b["decisions"]["customs"]["level"], on_broker.level.as_str(), "{b}");
        assert_eq!(b["decisions"]["customs"]["operator"], on_broker.operator.as_str(), "{b}");
    }
}

#[test]
fn a_hub_screen_shows_its_operator_only_what_the_automatic_level_alarmed_on() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), &tmp.path().join("js"));
    let url = nats.url();
    let pg = Postgres::start(tmp.path());
    let records = pg.url();
    let (ok, out) = Node::start(
        &tmp.path().join("node"),
        &url,
        &["--source", "synthetic://?seed=4&speed=20", "--bags", "10"],
    )
    .wait();
    assert!(ok, "{out}");
    let site = customs_first(tmp.path());
    // The first bag the aids will alarm on was decided already by a customs station that then
    // died before acknowledging it: nobody screens it again.
    let held = broker_contents(&url);
    let dense: HashMap<i64, usize> = held
        .messages
        .iter()
        .map(|(_, _, a)| (a.bag, dense_pixels_of(a, &held.scans[&a.scan.object])))
        .collect();
    let (_, _, pre) =
        held.messages.iter().find(|(_, _, a)| dense[&a.bag] >= 16).expect("an alarm among 10 bags");
    let earlier = DecisionMsg {
        format: twinspect::hub::FORMAT,
        agency: "customs".into(),
        code: "refer".into(),
        station: "c9".into(),
        operator: "c009".into(),
        level: "L2".into(),
        line: "L1".into(),
        node: "n1".into(),
        bag: pre.bag,
        scan_sha256: pre.scan.sha256.clone(),
        at_ms: 1,
        held_ms: 1,
        reason: None,
        marks: Vec::new(),
        key: None,
        signature: None,
        corrects: None,
    };
    let subject = format!("twinspect.decision.customs.L1.n1.{}", pre.bag);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
        let keep = Duration::from_secs(3600);
        js.get_or_create_stream(twinspect::hub::station::decision_stream(1, keep)).await.unwrap();
    });
    publish_raw(&url, &subject, serde_json::to_vec(&earlier).unwrap());
    let script = tmp.path().join("script.txt");
    std::fs::write(&script, "login customs c001 1111\nwait 6\nsnap first\ndecide customs open\nwait 3\n")
        .unwrap();
    let (desk, shots) = (tmp.path().join("desk"), tmp.path().join("shots"));
    let (ok, said, err) = common::run(
        twinspect()
            .arg("--data")
            .arg(&desk)
            .args(["snapshot", "--hub", &url, "--records", &records, "--station", "ws1", "--site"])
            .arg(&site)
            .arg("--out")
            .arg(&shots)
            .arg("--script")
            .arg(&script),
    );
    assert!(ok, "{said}\n{err}");
    let ds = decisions(&url);
    let mine: Vec<&DecisionMsg> = ds.iter().map(|(_, d)| d).filter(|d| d.station == "ws1-customs").collect();
    // The operator decided one bag: one the aids alarmed on, shown with the reason.
    let by_operator: Vec<&&DecisionMsg> = mine.iter().filter(|d| d.level == "L2").collect();
    assert_eq!(by_operator.len(), 1, "{mine:?}\n{err}");
    let shown = by_operator[0];
    assert_eq!((shown.code.as_str(), shown.operator.as_str()), ("open", "c001"));
    assert!(dense[&shown.bag] >= 16, "bag {} shown with {} dense px", shown.bag, dense[&shown.bag]);
    let why = format!("L1 alarm: dense object ({} px not penetrated)", dense[&shown.bag]);
    let screen = std::fs::read_to_string(shots.join("first-customs.txt")).unwrap();
    assert!(screen.contains(&why), "{why}\n{screen}");
    // A screening room has no scanner: the screen says so, and shows no X-ray lamp or belt.
    assert!(screen.contains("no scanner: central screening"), "{screen}");
    assert!(!screen.contains("X-RAY ON") && !screen.contains("belt forward"), "{screen}");
    let _ = std::fs::copy(shots.join("first-customs.png"), "target/screenshots/hub-station-l1-alarm.png");
    // Every other bag it took was cleared without the operator: passed by the aids.
    let cleared: Vec<&&DecisionMsg> = mine.iter().filter(|d| d.level == "L1").collect();
    assert!(!cleared.is_empty(), "{mine:?}");
    for d in &cleared {
        assert_eq!((d.code.as_str(), d.operator.as_str()), ("release", "(auto)"));
        assert!(dense[&d.bag] < 16, "bag {} cleared with {} dense px", d.bag, dense[&d.bag]);
    }
    // Cleared bags never entered the desk's archive; the shown one did.
    let store = Store::open_read(&desk).unwrap();
    let taken =
        |bag| store.hub_taken(&twinspect::files::store::HubBag { line: "L1".into(), node: "n1".into(), bag });
    assert!(taken(shown.bag).unwrap().is_some());
    assert!(cleared.iter().all(|d| taken(d.bag).unwrap().is_none()));
    // The bag decided before was not screened again: its one decision is c9's, and the hub's
    // records have it (written by the screen that found it decided).
    assert_ne!(shown.bag, pre.bag);
    assert!(taken(pre.bag).unwrap().is_none());
    let on_pre: Vec<&DecisionMsg> =
        ds.iter().map(|(_, d)| d).filter(|d| d.bag == pre.bag && d.agency == "customs").collect();
    assert_eq!(on_pre, [&earlier]);
    // The hub's records hold each of them with its level.
    let (ok, listed, err) = common::run(twinspect().args(["bags", "--json", "--records", &records]));
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for d in mine.iter().chain([&&earlier]) {
        let row =
            rows.iter().find(|r| r["bag"] == d.bag).unwrap_or_else(|| panic!("bag {}: {listed}", d.bag));
        assert_eq!(row["decisions"]["customs"]["level"], d.level.as_str(), "{row}");
        assert_eq!(row["decisions"]["customs"]["station"], d.station.as_str(), "{row}");
    }
}

/// The shipped hub line's site (lanes 1 released, 2 opened, 3 held or referred, 9 manual),
/// `deadline_ms` from the scanner to the divert point.
fn sorter_site(dir: &Path, deadline_ms: u64) -> PathBuf {
    sorter_site_under(dir, deadline_ms, None)
}

/// The same, its sorter listening under `subject` (the site's own subject root).
fn sorter_site_under(dir: &Path, deadline_ms: u64, subject: Option<&str>) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/sites/hub-line.toml");
    let mut site = twinspect::domain::inspection::InspectionConfig::from_toml(
        &std::fs::read_to_string(shipped).unwrap(),
    )
    .unwrap();
    let sorter = site.sorter.as_mut().unwrap();
    sorter.deadline_ms = deadline_ms;
    sorter.lines.clear();
    sorter.subject = subject.map(str::to_owned);
    let path = dir.join("site.toml");
    std::fs::write(&path, toml::to_string(&site).unwrap()).unwrap();
    path
}

/// Every lane message on the broker.
fn lanes(url: &str) -> Vec<(String, SortMsg)> {
    stream_messages(url, None, SORT_STREAM)
}

#[test]
fn each_parcel_gets_its_lane_before_its_deadline_or_the_manual_lane() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let nats = Nats::start(free_port(), &tmp.path().join("js"));
    let url = nats.url();
    // The site's sorter listens under a subject of its own; the hub's lane stream was made
    // for the default one (the node widens it: this hub has no keys).
    let site = sorter_site_under(tmp.path(), 8000, Some("hall2.sorter"));
    let site = site.to_str().unwrap();
    let (ok, said, err) = common::run(twinspect().args(["hub", "setup", "--hub", &url]));
    assert!(ok && said.contains("lanes under twinspect.sort.>"), "{said}{err}");
    // Customs decides every parcel ("open"); quarantine's only station decides the first two
    // and leaves: parcels 3 and 4 are undecided at their deadline.
    let c1 = Node::bot(&url, &["--agency", "customs", "--decide", "open", "--name", "c1", "--bags", "4"]);
    let q1 =
        Node::bot(&url, &["--agency", "quarantine", "--decide", "release", "--name", "q1", "--bags", "2"]);
    // The line's barcode reader reads each parcel 300 ms after it starts through the tunnel,
    // all but every third (parcel 3 keeps the scanner's tag).
    let port = free_port();
    let source = format!("synthetic://?seed=41&speed=5&reader={port}&reader_ms=300&noread=3");
    let reader = format!("tcp://127.0.0.1:{port}");
    let node = Node::start(
        &data,
        &url,
        &[
            "--source",
            &source,
            "--bags",
            "4",
            "--site",
            site,
            "--barcode",
            &reader,
            "--barcode-offset-ms",
            "300",
            "--barcode-tolerance-ms",
            "250",
        ],
    );
    // Once parcel 1 has its lane, customs corrects its decision to release: well before the
    // divert point, so the parcel gets a new lane.
    let u = url.clone();
    let corrector = std::thread::spawn(move || {
        let t0 = Instant::now();
        // Once `bag` has its lane: customs' decision on it, as the stream holds it, published
        // again as `code`, correcting `corrects` (given the decision's sequence).
        let republish = |bag: i64, code: &str, corrects: fn(u64) -> Option<u64>| {
            while !lanes(&u).iter().any(|(_, m)| m.bag == bag) {
                assert!(t0.elapsed() < Duration::from_secs(60), "parcel {bag} got no lane");
                std::thread::sleep(Duration::from_millis(50));
            }
            let subject = format!("twinspect.decision.customs.L1.n1.{bag}");
            let (seq, _, payload) = raw_decisions(&u).into_iter().rfind(|(_, s, _)| *s == subject).unwrap();
            let d: DecisionMsg = serde_json::from_slice(&payload).unwrap();
            let again = DecisionMsg { code: code.into(), corrects: corrects(seq), ..d };
            publish_raw(&u, &subject, serde_json::to_vec(&again).unwrap())
        };
        republish(1, "release", Some);
        // Parcel 2, once its lane went: a second customs decision published raw, without the
        // check that it comes first or corrects the one in force. It must count for nothing.
        republish(2, "release", |_| None)
    });
    let (ok, out) = node.wait();
    assert!(ok, "{out}");
    let forged = corrector.join().unwrap();
    for b in [c1, q1] {
        let (ok, said) = b.wait();
        assert!(ok, "{said}");
    }
    assert!(out.contains("bag 1 rerouted to 1 (released; was 2): a decision corrected"), "{out}");
    assert!(
        out.contains(&format!(
            "twinspect.decision.customs.L1.n1.2: message #{forged} is not a link of the agency's decision chain \
             (a decision after the agency's first, correcting none): it counts for nothing"
        )),
        "{out}"
    );
    assert_eq!(summary(&out, "rerouted by a correction"), 1, "{out}");
    assert_eq!(summary(&out, "decided after the lane could change"), 0, "{out}");
    assert_eq!(summary(&out, "sorted"), 2, "{out}");
    assert_eq!(summary(&out, "manual lane"), 2, "{out}");
    assert_eq!(summary(&out, "no lane before the deadline"), 0, "{out}");
    assert_eq!(summary(&out, "barcodes read"), 3, "{out}");
    assert_eq!(summary(&out, "parcels without a barcode"), 1, "{out}");
    // Each parcel's id on the hub: its barcode, joined by time on the belt; the unread one's,
    // the scanner's tag.
    let announced: Vec<(String, BagAnnouncement)> = stream_messages(&url, None, STREAM);
    let ids: Vec<(i64, String)> =
        announced.iter().map(|(_, a)| (a.bag, a.item_id.clone().unwrap_or_default())).collect();
    let expected = [(1, "PK00004100"), (2, "PK00004101"), (3, "TS00004102"), (4, "PK00004103")];
    assert_eq!(ids, expected.map(|(b, id)| (b, id.to_string())));
    let mut all = lanes(&url);
    assert_eq!(all.len(), 5, "{all:?}");
    // Parcel 1's new lane: after its first, before its divert point, naming the lane it replaces.
    let i = all.iter().position(|(_, m)| m.replaces.is_some()).unwrap();
    let (subject, new) = all.remove(i);
    assert_eq!(subject, "hall2.sorter.L1.n1.1");
    assert_eq!(
        (new.lane.as_str(), new.outcome.as_str(), new.replaces.as_deref()),
        ("1", "released", Some("2"))
    );
    let old = &all.iter().find(|(_, m)| m.bag == 1).unwrap().1;
    assert!(old.at_ms <= new.at_ms && new.at_ms + 1000 < new.deadline_ms, "{old:?} {new:?}");
    let store = Store::open_read(&data).unwrap();
    for (subject, m) in &all {
        assert_eq!(subject, &format!("hall2.sorter.L1.n1.{}", m.bag));
        let row = store.bag(m.bag).unwrap();
        assert_eq!(
            m.item_id.as_deref(),
            Some(expected[m.bag as usize - 1].1),
            "the sorter hears the barcode"
        );
        assert_eq!(m.deadline_ms, row.ended_ms.unwrap() + 8000);
        assert!(m.at_ms <= m.deadline_ms, "{m:?}");
        if m.bag <= 2 {
            assert_eq!((m.lane.as_str(), m.outcome.as_str()), ("2", "opened"), "{m:?}");
        } else {
            assert_eq!((m.lane.as_str(), m.outcome.as_str()), ("9", "manual"), "{m:?}");
            assert_eq!(m.waiting_for, vec!["quarantine".to_string()]);
            // Sent no earlier than the margin before the deadline: the agencies had their time.
            assert!(m.at_ms + 1000 >= m.deadline_ms, "{m:?}");
        }
    }
    // Counted and audited as such in the node's archive.
    let entries = twinspect::files::store::audit::entries(store.connection()).unwrap();
    let count = |action: &str| entries.iter().filter(|e| e.action == action).count();
    assert_eq!((count("bag.sorted"), count("bag.manual_lane"), count("bag.barcode")), (2, 2, 4));
    assert_eq!(count("bag.rerouted"), 1);
    assert!(store.verify_audit().unwrap().ok());
    // The node's copy of the decisions: parcel 1's correction, parcel 2's first decision.
    let customs = |bag| store.record(bag).unwrap().current("customs").map(|d| d.code.clone());
    assert_eq!((customs(1), customs(2)), (Some("release".into()), Some("open".into())));
}

/// `curl` with a cookie jar: the status and the body.
fn curl(jar: &Path, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-c"])
        .arg(jar)
        .arg("-b")
        .arg(jar)
        .args(args)
        .output()
        .expect("curl (Debian's curl package)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The form token on a page.
fn csrf_of(page: &str) -> String {
    let key = "name=\"csrf\" value=\"";
    let at = page.find(key).expect("a form token on the page") + key.len();
    page[at..].split('"').next().unwrap().to_string()
}

/// Log in at the bench in `base` (a new jar).
fn bench_login(base: &str, jar: &Path, id: &str, pin: &str, agency: &str) {
    let (_, login) = curl(jar, &[&format!("{base}/login")]);
    let csrf = csrf_of(&login);
    let form = [format!("csrf={csrf}"), format!("id={id}"), format!("pin={pin}"), format!("agency={agency}")];
    let mut args: Vec<&str> = Vec::new();
    for f in &form {
        args.extend(["--data-urlencode", f.as_str()]);
    }
    let url = format!("{base}/login");
    args.push(&url);
    let (code, body) = curl(jar, &args);
    assert_eq!(code, 303, "{id} logging in at the bench: {body}");
}

/// The logged-in agency's findings on bag `id` at the bench: nothing found, or a treatment.
fn bench_findings(base: &str, jar: &Path, id: i64, treatment: Option<&str>) {
    let (code, page) = curl(jar, &[&format!("{base}/bag/{id}")]);
    assert_eq!(code, 200, "{page}");
    let token = format!("csrf={}", csrf_of(&page));
    let treatment = treatment.map(|t| format!("treatment={t}"));
    let mut args = vec!["--data-urlencode", token.as_str()];
    if let Some(t) = &treatment {
        args.extend(["--data-urlencode", t.as_str()]);
    }
    let url = format!("{base}/bag/{id}/findings");
    args.push(&url);
    let (code, said) = curl(jar, &args);
    assert_eq!(code, 303, "{said}");
}

#[test]
fn the_opening_bench_beside_a_node_works_from_the_hubs_decisions_and_keeps_the_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let nats = Nats::start(free_port(), &tmp.path().join("js"));
    let url = nats.url();
    // Customs asks to open the first two parcels, quarantine releases them; both bots leave.
    let c1 = Node::bot(&url, &["--agency", "customs", "--decide", "open", "--name", "c1", "--bags", "2"]);
    let q1 =
        Node::bot(&url, &["--agency", "quarantine", "--decide", "release", "--name", "q1", "--bags", "2"]);
    let pg = Postgres::start(tmp.path());
    let records = pg.url();
    let mut node = Node::start(
        &data,
        &url,
        &["--source", "synthetic://?seed=43&speed=5", "--web", "127.0.0.1:0", "--records", &records],
    );
    let line = node.wait_for("opening bench on http://", Duration::from_secs(60));
    let base = line.split("opening bench on ").nth(1).unwrap().trim_end_matches('/').to_string();
    for b in [c1, q1] {
        let (ok, said) = b.wait();
        assert!(ok, "{said}");
    }
    // The node copies each decision into its archive as the decision stream holds it.
    for (agency, code) in [("customs", "open"), ("quarantine", "release")] {
        for bag in [1, 2] {
            node.wait_for(&format!("bag {bag}: {agency} decided {code} (recorded)"), Duration::from_secs(30));
        }
    }
    // A decision on the stream for a scan this archive does not hold is not copied.
    let mut forged = decisions(&url).into_iter().find(|(_, d)| d.agency == "customs").unwrap().1;
    forged.bag = 4;
    forged.scan_sha256 = "0".repeat(64);
    node.wait_for("published bag 4", Duration::from_secs(60));
    publish_raw(&url, "twinspect.decision.customs.L1.n1.4", serde_json::to_vec(&forged).unwrap());
    node.wait_for("decided on another scan than the archive's", Duration::from_secs(30));

    // At the bench: both parcels wait to be opened; customs records nothing found on parcel 1,
    // quarantine records its own, and the opening is closed.
    let (cj, qj) = (tmp.path().join("c.jar"), tmp.path().join("q.jar"));
    bench_login(&base, &cj, "c001", "1111", "customs");
    let (code, page) = curl(&cj, &[&format!("{base}/openings")]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("href=\"/bag/1\"") && page.contains("href=\"/bag/2\""), "{page}");
    assert!(!page.contains("href=\"/bag/3\""), "parcel 3 was not asked to be opened: {page}");
    let (code, page) = curl(&cj, &[&format!("{base}/bag/1")]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("data-bag=\"1\""), "{page}");
    let tile = format!("{base}/bag/1/dzi/standard_files/8/0_0.png");
    let (code, _) = curl(&cj, &["-o", "/dev/null", &tile]);
    assert_eq!(code, 200);
    bench_findings(&base, &cj, 1, None);
    bench_login(&base, &qj, "q001", "2222", "quarantine");
    bench_findings(&base, &qj, 1, Some("none needed"));
    let (_, page) = curl(&qj, &[&format!("{base}/openings")]);
    assert!(!page.contains("href=\"/bag/1\"") && page.contains("href=\"/bag/2\""), "{page}");
    // A decision that arrives while the bench has the bag open shows when it is read again.
    let (_, page) = curl(&cj, &[&format!("{base}/bag/3")]);
    assert!(!page.contains("bot:c1"), "{page}");
    let mut real = decisions(&url).into_iter().find(|(_, d)| d.agency == "customs").unwrap().1;
    real.bag = 3;
    real.scan_sha256 = Store::open_read(&data).unwrap().bag(3).unwrap().scan_sha256.unwrap();
    publish_raw(&url, "twinspect.decision.customs.L1.n1.3", serde_json::to_vec(&real).unwrap());
    node.wait_for("bag 3: customs decided open (recorded)", Duration::from_secs(30));
    let (_, page) = curl(&cj, &[&format!("{base}/bag/3")]);
    assert!(page.contains("bot:c1"), "{page}");
    let (_, page) = curl(&cj, &[&format!("{base}/openings")]);
    assert!(page.contains("href=\"/bag/3\""), "{page}");
    // The findings reach the hub's records, where every line's benches and `bags` read them.
    node.wait_for("bag 1: quarantine's findings in the hub's records", Duration::from_secs(30));
    node.wait_for("bag 1: customs's findings in the hub's records", Duration::from_secs(30));
    let o = twinspect().args(["bags", "--json", "--records", &records]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let one = listed.iter().find(|b| b["bag"] == 1).unwrap();
    assert_eq!(one["findings"]["customs"]["operator"], "c001", "{one}");
    assert_eq!(one["findings"]["customs"]["items"], serde_json::json!([]), "{one}");
    assert_eq!(one["findings"]["quarantine"]["treatment"], "none needed", "{one}");
    assert!(listed.iter().find(|b| b["bag"] == 2).unwrap().get("findings").is_none());
    let o = twinspect().args(["audit", "verify", "--records", &records]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    let (ok, out) = node.stop();
    assert!(ok, "{out}");
    // One archive holds it all: the scans, both agencies' decisions from the hub, the findings
    // from the bench, under one audit trail that verifies.
    let store = Store::open_read(&data).unwrap();
    let rec = store.record(1).unwrap();
    assert_eq!(rec.current("customs").map(|d| d.code.as_str()), Some("open"));
    assert_eq!(rec.current("quarantine").map(|d| d.code.as_str()), Some("release"));
    assert_eq!(rec.decisions.len(), 2, "each decision copied once: {:?}", rec.decisions);
    assert_eq!(rec.findings_of("customs").map(|f| f.operator.as_str()), Some("c001"));
    assert_eq!(rec.findings_of("quarantine").and_then(|f| f.treatment.as_deref()), Some("none needed"));
    assert_eq!(store.record(3).unwrap().decisions.len(), 1);
    assert!(store.record(4).unwrap().decisions.is_empty(), "the forged decision was not copied");
    let entries = twinspect::files::store::audit::entries(store.connection()).unwrap();
    assert!(entries.iter().any(|e| e.action == "login" && e.actor == "c001"), "{entries:?}");
    assert!(store.verify_audit().unwrap().ok());

    // A decision taken while the node was down is copied when it starts again, and so is a
    // correction.
    let mut late = decisions(&url).into_iter().find(|(_, d)| d.agency == "quarantine").unwrap().1;
    late.bag = 3;
    late.scan_sha256 = store.bag(3).unwrap().scan_sha256.unwrap();
    drop(store);
    publish_raw(&url, "twinspect.decision.quarantine.L1.n1.3", serde_json::to_vec(&late).unwrap());
    let q1 = "twinspect.decision.quarantine.L1.n1.1";
    let (seq, _, payload) = raw_decisions(&url).into_iter().find(|(_, s, _)| s == q1).unwrap();
    let earlier: DecisionMsg = serde_json::from_slice(&payload).unwrap();
    let fix = DecisionMsg {
        code: "treat".into(),
        corrects: Some(seq),
        at_ms: earlier.at_ms + 1,
        ..earlier.clone()
    };
    publish_raw(&url, q1, serde_json::to_vec(&fix).unwrap());
    let mut node = Node::start(&data, &url, &["--source", "synthetic://?seed=44&speed=5"]);
    node.wait_for("bag 3: quarantine decided release (recorded)", Duration::from_secs(30));
    node.wait_for("bag 1: quarantine decided treat (recorded)", Duration::from_secs(30));
    let (ok, out) = node.stop();
    assert!(ok, "{out}");
    assert!(!out.contains("bag 1: customs decided"), "copied twice: {out}");
    let store = Store::open_read(&data).unwrap();
    assert_eq!(store.record(3).unwrap().current("quarantine").map(|d| d.code.as_str()), Some("release"));
    let one = store.record(1).unwrap();
    assert_eq!(one.decisions.len(), 3, "{:?}", one.decisions);
    assert_eq!(one.current("quarantine").map(|d| d.code.as_str()), Some("treat"));
}

/// `twinspect web` as the hub's opening bench over archive `data`.
fn hub_bench(data: &Path, hub: &str, records: &str) -> (Node, String) {
    let mut c = twinspect();
    c.arg("--quiet").arg("--data").arg(data);
    c.args(["web", "--listen", "127.0.0.1:0", "--hub", hub, "--records", records, "--name", "bench1"]);
    let mut bench = Node::spawn(c);
    let line = bench.wait_for("listening on http://", Duration::from_secs(60));
    let base = line.split("listening on ").nth(1).unwrap().trim_end_matches('/').to_string();
    (bench, base)
}

#[test]
fn the_hubs_opening_bench_serves_every_lines_parcels_asked_open_and_sends_its_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), &tmp.path().join("js"));
    let url = nats.url();
    let pg = Postgres::start(tmp.path());
    let records = pg.url();
    // One parcel from line L1, then two from line L2.
    for (line, node, bags, seed) in [("L1", "n1", "1", "43"), ("L2", "n2", "2", "44")] {
        let mut c = twinspect();
        c.arg("--quiet").arg("--data").arg(tmp.path().join(node));
        c.args([
            "node",
            "--hub",
            &url,
            "--line",
            line,
            "--node",
            node,
            "--records",
            &records,
            "--bags",
            bags,
        ]);
        c.args(["--source", &format!("synthetic://?seed={seed}&speed=5")]);
        let (ok, said) = Node::spawn(c).wait();
        assert!(ok && said.contains(&format!("published: {bags}")), "{said}");
    }
    // Customs asks to open the first parcel of each line and releases the third.
    for (name, code, bags) in [("c1", "open", "2"), ("c2", "release", "1")] {
        let (ok, said) =
            Node::bot(&url, &["--agency", "customs", "--decide", code, "--name", name, "--bags", bags])
                .wait();
        assert!(ok, "{said}");
    }
    // The bench starts after those decisions (it reads the stream from its start) and before
    // quarantine's (heard as they come).
    let data = tmp.path().join("bench");
    let (mut bench, base) = hub_bench(&data, &url, &records);
    for hub_bag in ["L1.n1.1", "L2.n2.1"] {
        bench.wait_for(&format!("bag {hub_bag}: taken for its opening"), Duration::from_secs(30));
        bench.wait_for(&format!("bag {hub_bag}: customs decided open (recorded)"), Duration::from_secs(30));
    }
    let (ok, said) =
        Node::bot(&url, &["--agency", "quarantine", "--decide", "release", "--name", "q1", "--bags", "2"])
            .wait();
    assert!(ok, "{said}");
    for hub_bag in ["L1.n1.1", "L2.n2.1"] {
        bench.wait_for(
            &format!("bag {hub_bag}: quarantine decided release (recorded)"),
            Duration::from_secs(30),
        );
    }
    // Bad input on the decision subjects: refused, logged, nothing else lost.
    let real =
        decisions(&url).into_iter().find(|(_, d)| d.agency == "customs" && d.code == "open").unwrap().1;
    publish_raw(&url, "twinspect.decision.quarantine.L2.n2.9", b"{ not a decision".to_vec());
    let mut other_scan = real.clone();
    (other_scan.agency, other_scan.line, other_scan.node, other_scan.bag) =
        ("quarantine".into(), "L2".into(), "n2".into(), 2);
    other_scan.code = "open".into();
    other_scan.scan_sha256 = "0".repeat(64);
    publish_raw(&url, "twinspect.decision.quarantine.L2.n2.2", serde_json::to_vec(&other_scan).unwrap());
    let mut second = real.clone();
    second.code = "release".into();
    let subject = format!("twinspect.decision.customs.{}.{}.{}", real.line, real.node, real.bag);
    publish_raw(&url, &subject, serde_json::to_vec(&second).unwrap());
    bench.wait_for("not a decision", Duration::from_secs(30));
    bench.wait_for("bag L2.n2.2: decided on another scan than the one announced", Duration::from_secs(30));
    bench.wait_for("a decision after the agency's first, correcting none", Duration::from_secs(30));

    // At the bench: both lines' parcels wait to be opened, the released one does not.
    let (cj, qj) = (tmp.path().join("c.jar"), tmp.path().join("q.jar"));
    bench_login(&base, &cj, "c001", "1111", "customs");
    let (code, page) = curl(&cj, &[&format!("{base}/openings")]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("href=\"/bag/1\"") && page.contains("href=\"/bag/2\""), "{page}");
    assert!(!page.contains("href=\"/bag/3\""), "{page}");
    // Each under its name on the hub, as the line labels it.
    assert!(page.contains(">L1.n1.1<") && page.contains(">L2.n2.1<") && !page.contains("L2.n2.2"), "{page}");
    let store = Store::open_read(&data).unwrap();
    let l1 = twinspect::files::store::HubBag { line: "L1".into(), node: "n1".into(), bag: 1 };
    let id = store.hub_taken(&l1).unwrap().expect("L1.n1.1 in the bench's archive");
    drop(store);
    let (code, page) = curl(&cj, &[&format!("{base}/bag/{id}")]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("bot:c1"), "customs' decision on the page: {page}");
    let tile = format!("{base}/bag/{id}/dzi/standard_files/8/0_0.png");
    let (code, _) = curl(&cj, &["-o", "/dev/null", &tile]);
    assert_eq!(code, 200);
    bench_findings(&base, &cj, id, None);
    bench_login(&base, &qj, "q001", "2222", "quarantine");
    bench_findings(&base, &qj, id, Some("none needed"));
    let (_, page) = curl(&qj, &[&format!("{base}/openings")]);
    assert!(!page.contains(&format!("href=\"/bag/{id}\"")), "the opening is closed: {page}");
    // The findings reach the hub's records under the parcel's name on the hub.
    bench.wait_for("bag L1.n1.1: customs's findings in the hub's records", Duration::from_secs(30));
    bench.wait_for("bag L1.n1.1: quarantine's findings in the hub's records", Duration::from_secs(30));
    let o = twinspect().args(["bags", "--json", "--records", &records]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let one = listed.iter().find(|b| b["line"] == "L1" && b["bag"] == 1).unwrap();
    assert_eq!(one["findings"]["customs"]["operator"], "c001", "{one}");
    assert_eq!(one["findings"]["quarantine"]["treatment"], "none needed", "{one}");
    assert!(listed.iter().filter(|b| b.get("findings").is_some()).count() == 1, "{listed:?}");
    let o = twinspect().args(["audit", "verify", "--records", &records]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let (ok, out) = bench.stop();
    assert!(ok, "{out}");
    assert!(out.contains("bags taken from the hub for their opening: 2"), "{out}");
    assert!(out.contains("refused: 3"), "{out}");

    // Started again, it reads the stream again and takes nothing twice.
    let (bench, _) = hub_bench(&data, &url, &records);
    std::thread::sleep(Duration::from_secs(3));
    let (ok, out) = bench.stop();
    assert!(ok, "{out}");
    assert!(out.contains("bags taken from the hub for their opening: 0"), "{out}");
    assert!(out.contains("decisions recorded: 0"), "{out}");
    let store = Store::open_read(&data).unwrap();
    let rec = store.record(id).unwrap();
    assert_eq!(rec.current("customs").map(|d| d.code.as_str()), Some("open"));
    assert_eq!(rec.current("quarantine").map(|d| d.code.as_str()), Some("release"));
    assert_eq!(rec.decisions.len(), 2, "each decision once: {:?}", rec.decisions);
    assert_eq!(rec.findings_of("customs").map(|f| f.operator.as_str()), Some("c001"));
    assert_eq!(store.bag(id).unwrap().scan_sha256.as_deref(), Some(real_scan(&url, "L1", "n1", 1).as_str()));
    assert!(store.verify_audit().unwrap().ok());
    drop(store);

    // Corrections: customs releases L2.n2.1 after asking to open it (its opening leaves the
    // bench's list) and asks to open L2.n2.2, released before (taken now). A "correction" that
    // names a message on another subject is refused.
    let raw = raw_decisions(&url);
    let last_on = |subject: &str| {
        let (seq, _, payload) = raw.iter().rfind(|(_, s, _)| s == subject).unwrap();
        (*seq, serde_json::from_slice::<DecisionMsg>(payload).unwrap())
    };
    let (c21, s21, c22, s22) = (
        "twinspect.decision.customs.L2.n2.1",
        "twinspect.decision.quarantine.L2.n2.1",
        "twinspect.decision.customs.L2.n2.2",
        "twinspect.decision.quarantine.L2.n2.2",
    );
    let (seq, d) = last_on(c21);
    assert_eq!(d.code, "open");
    let fix = DecisionMsg { code: "release".into(), corrects: Some(seq), at_ms: d.at_ms + 1, ..d };
    publish_raw(&url, c21, serde_json::to_vec(&fix).unwrap());
    let (seq, d) = last_on(c22);
    assert_eq!(d.code, "release");
    let fix = DecisionMsg { code: "open".into(), corrects: Some(seq), at_ms: d.at_ms + 1, ..d };
    publish_raw(&url, c22, serde_json::to_vec(&fix).unwrap());
    let (_, q) = last_on(s21);
    let elsewhere = DecisionMsg { code: "treat".into(), corrects: Some(last_on(c21).0), ..q };
    publish_raw(&url, s21, serde_json::to_vec(&elsewhere).unwrap());
    assert!(raw.iter().any(|(_, s, _)| s == s22), "quarantine's forged decision on L2.n2.2");
    let (mut bench, base) = hub_bench(&data, &url, &records);
    bench.wait_for("bag L2.n2.1: customs decided release (recorded)", Duration::from_secs(30));
    bench.wait_for("bag L2.n2.2: taken for its opening", Duration::from_secs(30));
    bench.wait_for("bag L2.n2.2: customs decided open (recorded)", Duration::from_secs(30));
    bench.wait_for("which is not on its subject", Duration::from_secs(30));
    bench_login(&base, &cj, "c001", "1111", "customs");
    let (code, page) = curl(&cj, &[&format!("{base}/openings")]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains(">L2.n2.2<") && !page.contains(">L2.n2.1<"), "{page}");
    let (ok, out) = bench.stop();
    assert!(ok, "{out}");
    assert!(out.contains("bags taken from the hub for their opening: 1"), "{out}");
    let store = Store::open_read(&data).unwrap();
    let l21 = twinspect::files::store::HubBag { line: "L2".into(), node: "n2".into(), bag: 1 };
    let r = store.record(store.hub_taken(&l21).unwrap().unwrap()).unwrap();
    let customs: Vec<&str> =
        r.decisions.iter().filter(|d| d.agency == "customs").map(|d| d.code.as_str()).collect();
    assert_eq!(customs, ["open", "release"], "the correction after the decision it replaced");
    assert_eq!(r.current("quarantine").map(|d| d.code.as_str()), Some("release"), "not the forged one");
    assert!(store.verify_audit().unwrap().ok());
}

/// The SHA-256 the hub announced for a bag's scan.
fn real_scan(url: &str, line: &str, node: &str, bag: i64) -> String {
    let subject = format!("twinspect.bag.{line}.{node}.{bag}");
    let held = stream_messages::<BagAnnouncement>(url, None, STREAM);
    held.into_iter().find(|(s, _)| *s == subject).expect("the bag on the hub").1.scan.sha256
}

/// What the broker says to a client with `seed` (inbox `inbox`) that publishes on each of
/// `subjects`: the subjects it refused ("Permissions Violation for Publish to ...").
fn refused_subjects(url: &str, seed: &Path, inbox: &str, subjects: &[&str]) -> Vec<String> {
    let seed = std::fs::read_to_string(seed).unwrap().trim().to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
        let client = async_nats::ConnectOptions::with_nkey(seed)
            .custom_inbox_prefix(inbox)
            .event_callback(move |ev| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = ev {
                        let _ = tx.send(e.to_string()).await;
                    }
                }
            })
            .connect(url)
            .await
            .unwrap();
        for s in subjects {
            client.publish(s.to_string(), "{}".into()).await.unwrap();
        }
        client.flush().await.unwrap();
        let mut said = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            said.push(e);
        }
        subjects
            .iter()
            .filter(|s| said.iter().any(|e| e.contains(&format!("\"{s}\""))))
            .map(|s| s.to_string())
            .collect()
    })
}

#[test]
fn each_node_and_station_does_only_its_own_part_and_the_records_writer_cannot_rewrite_the_trail() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    // A key each, made as an integrator would; only public keys go into the users file.
    let key = |name: &str| {
        let (ok, public, err) =
            common::run(twinspect().args(["hub", "key", "--out"]).arg(keys.join(format!("{name}.nk"))));
        assert!(ok && public.trim().starts_with('U'), "{err}");
        public.trim().to_string()
    };
    let users = format!(
        "[[node]]\nline = \"L1\"\nnode = \"n1\"\nkey = \"{}\"\n\
         [[station]]\nagency = \"customs\"\nstation = \"c1\"\nkey = \"{}\"\n\
         [[station]]\nagency = \"quarantine\"\nstation = \"q1\"\nkey = \"{}\"\n\
         [[station]]\nagency = \"customs\"\nstation = \"ws1-customs\"\nkey = \"{}\"\n\
         [[station]]\nagency = \"quarantine\"\nstation = \"ws1-quarantine\"\nkey = \"{}\"\n\
         [[admin]]\nname = \"ops\"\nkey = \"{}\"\n\
         [[node]]\nline = \"D1\"\nnode = \"ws1\"\nkey = \"{}\"\n\
         [[bench]]\nname = \"b1\"\nkey = \"{}\"\n",
        key("n1"),
        key("c1"),
        key("q1"),
        key("ws1-customs"),
        key("ws1-quarantine"),
        key("ops"),
        key("ws1"),
        key("b1")
    );
    key("stranger");
    let seed = |name: &str| keys.join(format!("{name}.nk"));
    let seed_arg = |name: &str| seed(name).to_str().unwrap().to_string();
    std::fs::write(tmp.path().join("users.toml"), users).unwrap();
    // With a sorter listening under the site's own subject: no station yet, so each parcel's
    // manual lane (the node may send lanes there, and nowhere else).
    let site = sorter_site_under(tmp.path(), 3000, Some("hall2.sorter"));
    let auth = tmp.path().join("auth.conf");
    let (ok, _, err) = common::run(
        twinspect()
            .args(["hub", "permissions", "--users"])
            .arg(tmp.path().join("users.toml"))
            .arg("--site")
            .arg(&site)
            .arg("--out")
            .arg(&auth),
    );
    assert!(ok, "{err}");
    let conf = std::fs::read_to_string(&auth).unwrap();
    assert!(conf.contains("\"hall2.sorter.L1.n1.*\"") && !conf.contains("twinspect.sort"), "{conf}");
    let nats = Nats::start_with(free_port(), &tmp.path().join("js"), &["-c", auth.to_str().unwrap()]);
    let url = nats.url();
    let pg = Postgres::start(tmp.path());
    let owner = pg.url();
    let writer = owner.replace("postgres@", "hub_writer@");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&owner, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c.batch_execute("CREATE ROLE hub_writer LOGIN").await.unwrap();
    });
    // Before the administrator has set the records up, the writer role is told what to do.
    let (ok, _, err) = common::run(twinspect().args(["bags", "--records", &writer]));
    assert!(!ok && err.contains("twinspect hub setup"), "{err}");
    // A connection without a key, or with one the users file does not list: refused.
    rt.block_on(async {
        let e = async_nats::connect(url.as_str()).await.unwrap_err();
        assert!(e.to_string().contains("authorization"), "{e}");
        let stranger = std::fs::read_to_string(seed("stranger")).unwrap().trim().to_string();
        let e = async_nats::ConnectOptions::with_nkey(stranger).connect(url.as_str()).await.unwrap_err();
        assert!(e.to_string().contains("authorization"), "{e}");
    });

    let (ok, said, err) = common::run(twinspect().args([
        "hub",
        "setup",
        "--hub",
        &url,
        "--credentials",
        &seed_arg("ops"),
        "--users",
        tmp.path().join("users.toml").to_str().unwrap(),
        "--hold-seconds",
        "5",
        "--records",
        &owner,
        "--writer",
        "hub_writer",
        "--site",
        site.to_str().unwrap(),
    ]));
    assert!(ok, "{said}{err}");
    assert!(said.contains("lanes under hall2.sorter.>"), "{said}");
    for ready in [
        "stream TWINSPECT_BAGS",
        "stream TWINSPECT_SORT",
        "consumer screen-customs",
        "consumer screen-quarantine",
        "bucket twinspect-scans-L1",
    ] {
        assert!(said.contains(ready), "{said}");
    }

    // The node, and one station of each agency, with their own keys and the writer role.
    let data = tmp.path().join("data");
    let creds = ["--credentials", &seed_arg("n1")];
    let sorting = ["--site", site.to_str().unwrap()];
    let node_args = [
        &["--source", "synthetic://?seed=31&speed=20", "--bags", "4", "--records", &writer][..],
        &creds,
        &sorting,
    ];
    let (ok, out) = Node::start(&data, &url, &node_args.concat()).wait();
    assert!(ok, "{out}");
    assert_eq!(summary(&out, "published"), 4, "{out}");
    assert_eq!(summary(&out, "manual lane"), 4, "{out}");
    let mut bots = Vec::new();
    for (agency, code, name) in [("customs", "open", "c1"), ("quarantine", "release", "q1")] {
        let k = seed_arg(name);
        let args = [
            "--agency",
            agency,
            "--decide",
            code,
            "--name",
            name,
            "--bags",
            "3",
            "--records",
            &writer,
            "--credentials",
            &k,
        ];
        bots.push(Node::bot(&url, &args));
    }
    for b in bots {
        let (ok, out) = b.wait();
        assert!(ok, "{out}");
        assert_eq!(summary(&out, "decided"), 3, "{out}");
    }
    // The hub's opening bench with its key: it reads the decisions, the bags and their scans
    // (customs asked to open three), and may publish nothing.
    let mut c = twinspect();
    c.arg("--quiet").arg("--data").arg(tmp.path().join("bench"));
    c.args(["web", "--listen", "127.0.0.1:0", "--hub", &url, "--records", &writer, "--name", "b1"]);
    c.args(["--credentials", &seed_arg("b1")]);
    let mut bench = Node::spawn(c);
    // Serving (its signal handler in place) before it is stopped: the intake may have taken the
    // bags while the renderer was still starting.
    bench.wait_for("listening on http://", Duration::from_secs(60));
    for bag in 1..=3 {
        bench.wait_for(&format!("bag L1.n1.{bag}: taken for its opening"), Duration::from_secs(30));
        bench.wait_for(&format!("bag L1.n1.{bag}: quarantine decided release"), Duration::from_secs(30));
    }
    let (ok, out) = bench.stop();
    assert!(ok && !out.contains("Permissions Violation") && out.contains("refused: 0"), "{out}");
    let b1_forbidden = [
        "twinspect.decision.customs.L1.n1.1",
        "twinspect.bag.L1.n1.9",
        "$O.twinspect-scans-L1.C.x",
        "$JS.API.CONSUMER.CREATE.TWINSPECT_DECISIONS",
        "$JS.API.CONSUMER.MSG.NEXT.TWINSPECT_BAGS.screen-customs",
    ];
    assert_eq!(refused_subjects(&url, &seed("b1"), "_INBOX.bench.b1", &b1_forbidden), b1_forbidden);
    // A workstation's screens as stations, each with its key from --keys: customs decides the
    // fourth bag, with a mark, signed by ws1-customs's key.
    let script = tmp.path().join("script.txt");
    std::fs::write(
        &script,
        "login customs c001 1111\nwait 6\nmark customs rect 20 300 80 700 weapon x\ndecide customs detain\nwait 3\n",
    )
    .unwrap();
    let (ok, said, err) = common::run(
        twinspect()
            .arg("--data")
            .arg(tmp.path().join("desk"))
            .args(["snapshot", "--hub", &url, "--records", &writer, "--station", "ws1", "--keys"])
            .arg(&keys)
            .arg("--out")
            .arg(tmp.path().join("shots"))
            .arg("--script")
            .arg(&script),
    );
    assert!(ok, "{said}\n{err}");
    let before = decisions_as(&url, Some(&seed("ops")));
    assert_eq!(before.len(), 7, "{before:?}\n{err}");
    let ws1 = before.iter().map(|(_, d)| d).find(|d| d.station == "ws1-customs").expect("decided at ws1");
    assert_eq!((ws1.bag, ws1.code.as_str(), ws1.marks.len()), (4, "detain", 1), "{ws1:?}");
    let users = twinspect::hub::access::Users::parse(
        &std::fs::read_to_string(tmp.path().join("users.toml")).unwrap(),
    )
    .unwrap();
    users.check_decision(ws1).unwrap();

    // What each may not do, the broker refuses: a customs station deciding for quarantine,
    // announcing a bag, taking quarantine's bags, deleting the stream; a node deciding,
    // announcing another node's bag, writing another line's scans; a client listening to
    // another's replies.
    let c1_forbidden = [
        "twinspect.decision.quarantine.L1.n1.1",
        "twinspect.bag.L1.n1.9",
        "$JS.API.CONSUMER.MSG.NEXT.TWINSPECT_BAGS.screen-quarantine",
        "$JS.API.STREAM.DELETE.TWINSPECT_BAGS",
        "$JS.API.STREAM.PURGE.TWINSPECT_DECISIONS",
    ];
    assert_eq!(refused_subjects(&url, &seed("c1"), "_INBOX.station.customs.c1", &c1_forbidden), c1_forbidden);
    let n1_forbidden = [
        "twinspect.decision.customs.L1.n1.1",
        "twinspect.bag.L1.n2.1",
        "twinspect.bag.L2.n1.1",
        "$O.twinspect-scans-L2.C.x",
        "$JS.API.STREAM.DELETE.OBJ_twinspect-scans-L1",
    ];
    assert_eq!(refused_subjects(&url, &seed("n1"), "_INBOX.node.L1.n1", &n1_forbidden), n1_forbidden);
    // The control: what a station may do is not refused.
    let c1_allowed = ["$JS.API.INFO", "$JS.API.STREAM.INFO.TWINSPECT_BAGS"];
    assert!(refused_subjects(&url, &seed("c1"), "_INBOX.station.customs.c1", &c1_allowed).is_empty());
    // Nothing of that reached a stream: the same seven decisions, each by its station.
    let after = decisions_as(&url, Some(&seed("ops")));
    assert_eq!(after, before);
    for (_, d) in &after {
        let station = match (d.agency.as_str(), d.bag) {
            ("customs", 4) => "ws1-customs",
            ("customs", _) => "c1",
            _ => "q1",
        };
        assert_eq!(d.station, station);
    }
    // A node started on a line its key is not for: told by the broker, nothing published.
    let mut c = twinspect();
    c.arg("--quiet").arg("--data").arg(tmp.path().join("data2"));
    c.args(["node", "--hub", &url, "--line", "L2", "--node", "n1", "--credentials", &seed_arg("n1")]);
    c.args(["--source", "synthetic://?seed=32&speed=20", "--bags", "1", "--drain-seconds", "3"]);
    let (ok, out) = Node::spawn(c).wait();
    assert!(ok, "{out}");
    assert!(out.contains("Permissions Violation") && out.contains("node n1 on line L2"), "{out}");
    assert_eq!(summary(&out, "waiting in the archive"), 1, "{out}");

    // The records writer adds, never changes: every way of rewriting the trail or a decision
    // is refused by PostgreSQL itself (no privilege; not the owner, so no dropping triggers).
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&writer, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        for sql in [
            "UPDATE audit SET actor = 'x'",
            "DELETE FROM audit",
            "TRUNCATE audit",
            "DROP TRIGGER audit_no_change ON audit",
            "ALTER TABLE audit DISABLE TRIGGER ALL",
            "UPDATE hub_decisions SET code = 'release'",
            "DELETE FROM hub_decisions",
            "DELETE FROM hub_bags",
            "UPDATE hub_findings SET treatment = 'x'",
            "DELETE FROM hub_findings",
            "DROP TABLE audit",
        ] {
            let e = c.batch_execute(sql).await.unwrap_err();
            assert_eq!(
                e.code(),
                Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                "{sql}: {e:?}"
            );
        }
        // It adds an agency's findings (the bench beside a node): one row, however often sent.
        let mut r = twinspect::hub::records::Records::connect(&writer).await.unwrap();
        let f = twinspect::domain::inspection::Findings {
            agency: "customs".into(),
            operator: "c001".into(),
            at_ms: 1,
            items: Vec::new(),
            treatment: None,
        };
        assert!(r.record_findings("L1", "n1", 1, &f, "node:n1").await.unwrap());
        assert!(!r.record_findings("L1", "n1", 1, &f, "node:n1").await.unwrap());
    });
    let users_file = tmp.path().join("users.toml");
    let verify = || {
        common::run(twinspect().args(["audit", "verify", "--records", &writer, "--users"]).arg(&users_file))
    };
    let (ok, said, err) = verify();
    assert!(ok, "{said}{err}");
    // 6 migrations + the writer's grant + 4 bags + 4 manual lanes + 7 decisions + 1 findings;
    // each decision signed by the key the users file gives the station it names.
    assert!(said.contains("intact: 23 entries"), "{said}");
    let (ok, listed, err) = common::run(twinspect().args(["bags", "--json", "--records", &writer]));
    assert!(ok, "{err}");
    for b in listed.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()) {
        assert_eq!(b["lane"], serde_json::json!({ "lane": "9", "outcome": "manual", "sent": true }), "{b}");
    }
    assert!(said.contains("decisions: 7, each signed by the station it names"), "{said}");

    // A customs station that decides a bag in another customs station's name: the broker lets
    // it (its agency's subject), the records take it, and the check names it.
    rt.block_on(async {
        use twinspect::hub::access::Credentials;
        let (_, first) = &after[0];
        let c1 = Credentials::load(&seed("c1")).unwrap();
        let mut forged = DecisionMsg {
            agency: "customs".into(),
            code: "open".into(),
            station: "c2".into(),
            bag: 99,
            key: Some(c1.public.clone()),
            ..first.clone()
        };
        forged.signature = Some(c1.sign(&forged.signed_bytes()));
        let mut r = twinspect::hub::records::Records::connect(&writer).await.unwrap();
        assert!(r.record_decision(&forged, 999).await.unwrap());
        // And one whose signature was made for another decision (its code changed after).
        let mut altered = DecisionMsg { bag: 98, ..forged.clone() };
        altered.station = "c1".into();
        altered.signature = Some(c1.sign(&altered.signed_bytes()));
        altered.code = "release".into();
        assert!(r.record_decision(&altered, 998).await.unwrap());
    });
    let (ok, said, _) = verify();
    assert!(!ok, "{said}");
    assert!(
        said.contains("bag L1.n1.99 customs") && said.contains("station c1 of customs signed it"),
        "{said}"
    );
    assert!(said.contains("bag L1.n1.98 customs") && said.contains("does not match"), "{said}");

    // A live desk that publishes its own bags, with its keys: node ws1 of line D1 for the bags,
    // its screens' station keys for their decisions, each signed by its screen's key.
    std::fs::write(&script, "login customs c001 1111\nwait 2\ndecide customs release\nwait 1\n").unwrap();
    let (ok, said, err) = common::run(
        twinspect()
            .arg("--data")
            .arg(tmp.path().join("desk2"))
            .args(["snapshot", "--source", "synthetic://?seed=33&bags=1&speed=2", "--bags", "1"])
            .args(["--hub", &url, "--publish", "D1", "--records", &writer, "--station", "ws1", "--keys"])
            .arg(&keys)
            .arg("--out")
            .arg(tmp.path().join("shots"))
            .arg("--script")
            .arg(&script),
    );
    assert!(ok, "{said}\n{err}");
    assert_eq!(summary(&said, "bags published to the hub"), 1, "{said}\n{err}");
    assert_eq!(summary(&said, "decisions sent to the hub"), 1, "{said}\n{err}");
    assert!(!err.contains("Permissions Violation"), "{err}");
    let desk: Vec<DecisionMsg> = decisions_as(&url, Some(&seed("ops")))
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| d.line == "D1")
        .collect();
    assert_eq!(desk.len(), 1, "{desk:?}");
    assert_eq!((desk[0].station.as_str(), desk[0].code.as_str()), ("ws1-customs", "release"));
    users.check_decision(&desk[0]).unwrap();
}

/// Hosts on one machine: network namespaces joined by veth pairs to a bridge in a switch
/// namespace, addresses in 10.77.0.0/24 that exist only inside them.
struct Lan {
    switch: common::Netns,
    hosts: Vec<(common::Netns, String, usize)>,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

impl Lan {
    fn new() -> Lan {
        let switch = common::Netns::new("hubsw");
        ip(&["-n", &switch.name, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch.name, "link", "set", "br0", "up"]);
        Lan { switch, hosts: Vec::new() }
    }

    /// A host named `tag` at 10.77.0.`last`.
    fn host(&mut self, tag: &str, last: u8) -> usize {
        let ns = common::Netns::new(&format!("hub{tag}"));
        let i = self.hosts.len();
        let (port, host_if) = (format!("p{i}"), "eth0".to_string());
        ip(&[
            "-n",
            &self.switch.name,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            &host_if,
            "netns",
            &ns.name,
        ]);
        ip(&["-n", &self.switch.name, "link", "set", &port, "master", "br0"]);
        ip(&["-n", &self.switch.name, "link", "set", &port, "up"]);
        let addr = format!("10.77.0.{last}");
        ip(&["-n", &ns.name, "addr", "add", &format!("{addr}/24"), "dev", &host_if]);
        ip(&["-n", &ns.name, "link", "set", &host_if, "up"]);
        self.hosts.push((ns, addr, i));
        i
    }

    fn ns(&self, h: usize) -> &common::Netns {
        &self.hosts[h].0
    }

    fn addr(&self, h: usize) -> &str {
        &self.hosts[h].1
    }

    /// The host's cable: pulled (`false`) or plugged back.
    fn link(&self, h: usize, up: bool) {
        let port = format!("p{}", self.hosts[h].2);
        ip(&["-n", &self.switch.name, "link", "set", &port, if up { "up" } else { "down" }]);
    }
}

/// `twinspect ARGS` on a host, as a [`Node`].
fn on_host(ns: &common::Netns, args: &[&str]) -> Node {
    let mut c = ns.cmd(env!("CARGO_BIN_EXE_twinspect"));
    c.env("WGPU_BACKEND", "vulkan").args(args);
    Node::spawn(c)
}

/// The whole hub on one machine: a 3-server JetStream cluster (R3 streams), three scanner
/// nodes, four bots of two agencies and PostgreSQL, each on a host of its own. While it runs a
/// bot dies mid-bag, a broker is killed and a scanner's cable is pulled for 30 s. At the end
/// every bag every scanner archived has exactly one decision per agency in PostgreSQL, equal
/// to the broker's, and the audit chain verifies.
#[test]
fn a_hub_of_three_brokers_three_scanners_and_four_stations_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lan = Lan::new();
    let brokers: Vec<usize> = (1..=3).map(|i| lan.host(&format!("b{i}"), i)).collect();
    let scanners: Vec<usize> = (1..=3).map(|i| lan.host(&format!("s{i}"), 10 + i)).collect();
    let stations = lan.host("st", 21);
    let db = lan.host("db", 30);
    let hub = format!(
        "nats://{}",
        brokers.iter().map(|&b| format!("{}:4222", lan.addr(b))).collect::<Vec<_>>().join(",")
    );

    // Brokers: one cluster, JetStream on each, stores of their own.
    let mut servers = Reaper(Vec::new());
    for (i, &b) in brokers.iter().enumerate() {
        let routes: Vec<String> =
            brokers.iter().filter(|&&o| o != b).map(|&o| format!("nats://{}:6222", lan.addr(o))).collect();
        let store = tmp.path().join(format!("js{i}"));
        let child = lan
            .ns(b)
            .cmd("nats-server")
            .args(["-js", "-a", lan.addr(b), "-p", "4222", "--server_name", &format!("b{}", i + 1)])
            .args(["--cluster_name", "hub", "--cluster", &format!("nats://{}:6222", lan.addr(b))])
            .args(["--routes", &routes.join(","), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        servers.0.push(child);
    }

    // PostgreSQL on its own host, reachable from the LAN.
    let pgdir = tmp.path().join("pg");
    std::fs::create_dir_all(&pgdir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(Command::new("chown").arg("postgres:postgres").arg(&pgdir).status().unwrap().success());
    let d = pgdir.to_str().unwrap();
    as_postgres("initdb", &["-D", d, "-A", "trust", "-U", "postgres", "--no-sync"]);
    let mut hba = std::fs::OpenOptions::new().append(true).open(pgdir.join("pg_hba.conf")).unwrap();
    std::io::Write::write_all(&mut hba, b"host all all 10.77.0.0/24 trust\n").unwrap();
    let pg_opts = format!("-p 5432 -k {d} -c listen_addresses={} -c fsync=off", lan.addr(db));
    let pg = |args: &[&str]| {
        let o = lan
            .ns(db)
            .cmd("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_ctl"), "-D", d])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "pg_ctl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    pg(&["-o", &pg_opts, "-l", &format!("{d}/log"), "-w", "start"]);
    struct StopPg<'a>(&'a dyn Fn(&[&str]));
    impl Drop for StopPg<'_> {
        fn drop(&mut self) {
            (self.0)(&["-m", "immediate", "stop"]);
        }
    }
    let _stop_pg = StopPg(&pg);
    let o = lan
        .ns(db)
        .cmd("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/createdb"), "-h", lan.addr(db), "twinspect"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let records = format!("postgres://postgres@{}:5432/twinspect", lan.addr(db));

    // Three scanners, each its own archive; real-time line rate; a sorter on the line.
    let site = sorter_site(tmp.path(), 12_000);
    let mut nodes: Vec<Node> = Vec::new();
    for (i, &s) in scanners.iter().enumerate() {
        let data = tmp.path().join(format!("data{}", i + 1));
        let source = format!("synthetic://?seed={}", 31 + i);
        let name = format!("s{}", i + 1);
        nodes.push(on_host(
            lan.ns(s),
            &[
                "--quiet",
                "--data",
                data.to_str().unwrap(),
                "node",
                "--source",
                &source,
                "--hub",
                &hub,
                "--line",
                "L1",
                "--node",
                &name,
                "--replicas",
                "3",
                "--records",
                &records,
                "--site",
                site.to_str().unwrap(),
            ],
        ));
    }
    // Four stations: two per agency.
    let bot = |agency: &str, code: &str, name: &str| {
        on_host(
            lan.ns(stations),
            &[
                "bot",
                "--hub",
                &hub,
                "--agency",
                agency,
                "--decide",
                code,
                "--name",
                name,
                "--think-ms",
                "300",
                "--hold-seconds",
                "3",
                "--replicas",
                "3",
                "--records",
                &records,
            ],
        )
    };
    let mut c1 = bot("customs", "release", "c1");
    let c2 = bot("customs", "open", "c2");
    let q1 = bot("quarantine", "release", "q1");
    let q2 = bot("quarantine", "treat", "q2");

    let t_start = Instant::now();
    let phase = |what: &str| eprintln!("{:>6.1} s  {what}", t_start.elapsed().as_secs_f64());
    // A customs station dies holding a bag.
    let took = c1.wait_for("took bag", Duration::from_secs(90));
    phase(&format!("c1 {took}; killed"));
    let held_bag = took.split_whitespace().nth(2).unwrap().to_string();
    c1.kill();
    // A broker dies (its clients move to the others; R3 streams keep a quorum).
    let _ = servers.0[1].kill();
    let _ = servers.0[1].wait();
    // A scanner's cable is pulled for 30 s: it goes on scanning into its archive.
    nodes[2].wait_for("published bag 1 ", Duration::from_secs(60));
    phase("broker b2 killed; s3's cable pulled for 30 s");
    lan.link(scanners[2], false);
    std::thread::sleep(Duration::from_secs(30));
    lan.link(scanners[2], true);
    std::thread::sleep(Duration::from_secs(5));
    phase("cable back; scanners stopping");
    // Scanners stop (publishing what waits), then the stations finish what is queued.
    let mut archives = Vec::new();
    let (mut lanes_counted, mut lanes_missed) = (0, 0);
    for (i, n) in nodes.into_iter().enumerate() {
        let (ok, out) = n.stop();
        assert!(ok, "node s{}: {out}", i + 1);
        assert_eq!(summary(&out, "waiting in the archive"), 0, "node s{}: {out}", i + 1);
        // Every parcel this run published was given a lane, the manual one, or counted as
        // having missed its deadline (the sorter's default).
        let resolved = ["sorted", "manual lane", "no lane before the deadline"].map(|k| summary(&out, k));
        let published = summary(&out, "published") + summary(&out, "found on the hub already");
        assert_eq!(resolved.iter().sum::<u64>(), published, "node s{}: {out}", i + 1);
        lanes_counted += resolved[0] + resolved[1];
        lanes_missed += resolved[2];
        if i == 2 {
            assert!(out.contains(" waits ("), "s3 never had to wait for the hub: {out}");
        }
        archives.push(tmp.path().join(format!("data{}", i + 1)));
    }
    phase("scanners stopped, nothing waiting");
    let expected: usize = archives
        .iter()
        .map(|d| {
            let s = Store::open_read(d).unwrap();
            s.bags(&Default::default()).unwrap().iter().filter(|r| r.state == BagState::Complete).count()
        })
        .sum();
    let listed = |lan: &Lan| -> Vec<serde_json::Value> {
        let o = lan
            .ns(stations)
            .cmd(env!("CARGO_BIN_EXE_twinspect"))
            .args(["bags", "--json", "--records", &records])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let t0 = Instant::now();
    let (mut c2, mut q1, mut q2) = (c2, q1, q2);
    loop {
        let bags = listed(&lan);
        if t0.elapsed() > Duration::from_secs(120) {
            // What the stations said, before failing.
            for b in [&mut c2, &mut q1, &mut q2] {
                b.count("");
                eprintln!("----\n{}", b.seen.join("\n"));
            }
        }
        let done = bags.iter().filter(|b| b["decisions"].as_object().is_some_and(|d| d.len() == 2)).count();
        if bags.len() == expected && done == expected {
            break;
        }
        if t0.elapsed().as_millis() % 5000 < 500 {
            phase(&format!("{} of {expected} bags recorded, {done} decided by both", bags.len()));
        }
        assert!(
            t0.elapsed() <= Duration::from_secs(120),
            "{} of {expected} bags recorded, {done} decided by both agencies",
            bags.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    phase(&format!("{expected} bags decided by both agencies"));
    let mut outs = Vec::new();
    for b in [c2, q1, q2] {
        let (ok, out) = b.stop();
        assert!(ok, "{out}");
        outs.push(out);
    }
    assert!(expected >= 6, "only {expected} bags in all");
    // Each scanner's every bag, by its archive's checksum; one decision per agency; the bag
    // the dead station held decided by the other customs station.
    let bags = listed(&lan);
    for (i, d) in archives.iter().enumerate() {
        let s = Store::open_read(d).unwrap();
        for r in s.bags(&Default::default()).unwrap().iter().filter(|r| r.state == BagState::Complete) {
            let node = format!("s{}", i + 1);
            let b = bags
                .iter()
                .find(|b| b["node"] == node.as_str() && b["bag"] == r.id)
                .unwrap_or_else(|| panic!("{node} bag {} not in the records", r.id));
            assert_eq!(b["scan_sha256"].as_str(), r.scan_sha256.as_deref());
        }
    }
    let held = bags
        .iter()
        .find(|b| {
            format!("{}.{}.{}", b["line"].as_str().unwrap(), b["node"].as_str().unwrap(), b["bag"])
                == held_bag
        })
        .unwrap();
    assert_eq!(held["decisions"]["customs"]["station"], "c2", "{held}");
    let o = lan
        .ns(stations)
        .cmd(env!("CARGO_BIN_EXE_twinspect"))
        .args(["audit", "verify", "--records", &records])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // Every lane message reached the broker before its parcel's deadline, one per parcel; a
    // lane other than the manual one is the one both agencies' decisions give.
    let b1 = format!("nats://{}:4222", lan.addr(brokers[0]));
    let sent = {
        let ns = lan.ns(stations).name.clone();
        std::thread::spawn(move || {
            common::enter_netns(&ns);
            lanes(&b1)
        })
        .join()
        .unwrap()
    };
    // Every lane a node counted as sent is on the broker. One it counted as past its deadline
    // may be there too: stored after its deadline, or its ack lost as a broker died and the
    // stream not readable in the two seconds after (found by CI: 25 on the broker, 24 counted,
    // one missed; a lost ack is now read back from the stream when it can be).
    let on_broker = sent.len() as u64;
    assert!(
        (lanes_counted..=lanes_counted + lanes_missed).contains(&on_broker),
        "{on_broker} lanes on the broker, {lanes_counted} counted sent, {lanes_missed} missed: {sent:?}"
    );
    assert!(sent.iter().any(|(_, m)| m.outcome != "manual"), "no parcel sorted by its decisions: {sent:?}");
    let cfg =
        twinspect::domain::inspection::InspectionConfig::from_toml(&std::fs::read_to_string(&site).unwrap())
            .unwrap();
    for (subject, m) in &sent {
        assert_eq!(subject, &format!("twinspect.sort.L1.{}.{}", m.node, m.bag));
        assert!(m.at_ms <= m.deadline_ms, "{m:?}");
        // PostgreSQL holds the same lane (or, for one whose ack the node never had, what the
        // node knew: no lane before the deadline).
        let b = bags.iter().find(|b| b["node"] == m.node.as_str() && b["bag"] == m.bag).unwrap();
        if b["lane"]["sent"] == true {
            assert_eq!(b["lane"]["lane"], m.lane.as_str(), "{b}");
        } else {
            assert_eq!(b["lane"]["lane"], serde_json::Value::Null, "{b}");
        }
        if m.outcome == "manual" {
            continue;
        }
        let codes: BTreeMap<String, String> = b["decisions"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(a, d)| (a.clone(), d["code"].as_str().unwrap().to_string()))
            .collect();
        let lane = cfg.sorter.as_ref().unwrap().lane(&cfg.joint_state(&codes)).unwrap();
        assert_eq!(m.lane, lane, "{m:?} {b}");
    }
    phase(&format!("{} lane messages in time, each as the decisions say", sent.len()));
    drop(servers);
}

/// `run --hub`, driven headless through `snapshot --hub` (the same workstation, link and frame
/// step): the customs screen takes the hub's bags one after another while c001 is logged in,
/// and c001's decisions go to the hub and its records; the quarantine screen's operator logs
/// out with a bag open, which goes back to the hub undecided and is decided by another station.
#[test]
fn a_desks_screens_screen_the_hubs_bags_and_their_decisions_go_back_to_the_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), &tmp.path().join("js"));
    let url = nats.url();
    let pg = Postgres::start(tmp.path());
    let records = pg.url();
    let mut node = Node::start(&tmp.path().join("node"), &url, &["--source", "synthetic://?seed=45&speed=5"]);
    node.wait_for("published bag 2", Duration::from_secs(90));
    let script = tmp.path().join("script.txt");
    std::fs::write(
        &script,
        "login customs c001 1111\nlogin quarantine q001 2222\nwait 8\nsnap first\n\
         mark customs rect 20 300 80 700 weapon blade-shaped\n\
         decide customs open\nlogout quarantine\nwait 6\ndecide customs release\nwait 36\n",
    )
    .unwrap();
    let (desk, shots) = (tmp.path().join("desk"), tmp.path().join("shots"));
    // The screens again, as a restarted workstation (stderr: what they said).
    let screens = |script: &Path| {
        let (ok, said, err) = common::run(
            twinspect()
                .arg("--data")
                .arg(&desk)
                .args(["snapshot", "--hub", &url, "--records", &records, "--station", "ws1", "--out"])
                .arg(&shots)
                .arg("--script")
                .arg(script),
        );
        assert!(ok, "{said}\n{err}");
        err
    };
    let (ok, said, err) = common::run(
        twinspect()
            .arg("--data")
            .arg(&desk)
            .args([
                "snapshot",
                "--hub",
                &url,
                "--records",
                &records,
                "--station",
                "ws1",
                "--screen-seconds",
                "25",
            ])
            .arg("--out")
            .arg(&shots)
            .arg("--script")
            .arg(&script),
    );
    assert!(ok, "{said}\n{err}");
    let _ = std::fs::copy(shots.join("first-customs.png"), "target/screenshots/hub-station-customs.png");
    // What the customs screen showed: a bag of the hub's, opened from the desk's archive.
    let text = std::fs::read_to_string(shots.join("first-customs.txt")).unwrap();
    assert!(
        text.contains("Bag #1 opened from the archive") && text.contains("operator 操作员: c001"),
        "{text}"
    );

    // On the hub: c001's two decisions, from station ws1-customs, on the node's bags 1 and 2.
    let ds = decisions(&url);
    let mine: Vec<&DecisionMsg> = ds.iter().map(|(_, d)| d).filter(|d| d.station == "ws1-customs").collect();
    assert_eq!(mine.len(), 2, "{ds:?}\n{err}");
    let by_bag: BTreeMap<i64, &str> = mine.iter().map(|d| (d.bag, d.code.as_str())).collect();
    assert_eq!(by_bag, BTreeMap::from([(1, "open"), (2, "release")]), "{err}");
    assert!(mine.iter().all(|d| d.operator == "c001" && d.level == "L2" && d.node == "n1"));
    // The mark c001 made on bag 1 went with its decision (signed with it); bag 2 had none.
    let marked = mine.iter().find(|d| d.bag == 1).unwrap();
    assert_eq!(marked.marks.len(), 1, "{marked:?}");
    let mark = &marked.marks[0];
    assert_eq!(
        (mark.category.as_str(), mark.note.as_str(), mark.operator.as_str()),
        ("weapon", "blade-shaped", "c001")
    );
    assert!(matches!(mark.shape, twinspect::domain::inspection::Shape::Rect { .. }), "{mark:?}");
    assert!(mine.iter().find(|d| d.bag == 2).unwrap().marks.is_empty());
    // The quarantine screen decided nothing: its bag went back when q001 logged out.
    assert!(ds.iter().all(|(_, d)| d.agency != "quarantine"), "{ds:?}");
    let q1 =
        Node::bot(&url, &["--agency", "quarantine", "--decide", "release", "--name", "q1", "--bags", "1"]);
    let (ok, out) = q1.wait();
    assert!(ok, "{out}");
    assert!(out.contains("took bag L1.n1.1 (delivery 2"), "handed back, delivered again: {out}");
    // The third bag sat undecided on the customs screen past --screen-seconds: it went back to
    // the hub, and another customs station decides it.
    assert!(err.contains("went back to the hub undecided: not decided within 25 s"), "{err}");
    let c1 = Node::bot(&url, &["--agency", "customs", "--decide", "refer", "--name", "c1", "--bags", "3"]);
    let (ok, out) = c1.wait();
    assert!(ok, "{out}");
    let again = out
        .lines()
        .find(|l| l.contains("took bag L1.n1.3 (delivery "))
        .unwrap_or_else(|| panic!("{out}\n{err}\n{:?}", decisions(&url)));
    assert!(!again.contains("(delivery 1,"), "{again}");
    assert!(
        decisions(&url).iter().any(|(_, d)| d.bag == 3 && d.agency == "customs" && d.station == "c1"),
        "{out}"
    );

    // The desk's archive holds the hub's scans byte for byte and what reached the hub.
    let store = Store::open_read(&desk).unwrap();
    let node_store = Store::open_read(&tmp.path().join("node")).unwrap();
    for (hub_bag, code) in [(1, "open"), (2, "release")] {
        let id = store
            .hub_taken(&twinspect::files::store::HubBag {
                line: "L1".into(),
                node: "n1".into(),
                bag: hub_bag,
            })
            .unwrap()
            .expect("taken into the desk's archive");
        assert_eq!(store.bag(id).unwrap().scan_sha256, node_store.bag(hub_bag).unwrap().scan_sha256);
        let sent = store.hub_decided(id, "customs").unwrap().expect("sent");
        assert_eq!((sent.code.as_str(), sent.elsewhere), (code, false));
    }
    assert!(store.verify_audit().unwrap().ok());
    // And the hub's records, as `bags --records` lists them.
    let (ok, listed, err) = common::run(twinspect().args(["bags", "--json", "--records", &records]));
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (bag, code) in [(1, "open"), (2, "release")] {
        let row = rows.iter().find(|r| r["bag"] == bag).unwrap_or_else(|| panic!("bag {bag}: {listed}"));
        assert_eq!(row["decisions"]["customs"]["code"], code, "{row}");
    }
    let row1 = rows.iter().find(|r| r["bag"] == 1).unwrap();
    assert_eq!(row1["decisions"]["customs"]["marks"], serde_json::to_value(&marked.marks).unwrap(), "{row1}");
    // The node's archive holds the mark on its bag 1 too, where its opening bench shows it.
    let t0 = Instant::now();
    let on_node = loop {
        let r = Store::open_read(&tmp.path().join("node")).unwrap().record(1).unwrap();
        if !r.annotations.is_empty() || t0.elapsed() > Duration::from_secs(20) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(on_node.annotations.len(), 1, "{:?}", on_node.annotations);
    let a = &on_node.annotations[0];
    assert_eq!((a.agency.as_str(), a.operator.as_str(), &a.shape), ("customs", "c001", &mark.shape));
    assert_eq!((a.category.as_str(), a.note.as_str()), ("weapon", "blade-shaped"));
    assert!(node_store.verify_audit().unwrap().ok());
    let (ok, out) = node.stop();
    assert!(ok, "{out}");

    // c001 changes customs' decision on bag 2 at the desk after it reached the hub: it goes as
    // a correction from ws1-customs, into the records beside the decision it replaces. (Every
    // other bag decided first, so the screen has none of the hub's to take meanwhile.)
    let published = summary(&out, "published");
    let decided = decisions(&url).iter().filter(|(_, d)| d.agency == "customs").count() as u64;
    if published > decided {
        let n = (published - decided).to_string();
        let (ok, said) =
            Node::bot(&url, &["--agency", "customs", "--decide", "release", "--name", "c9", "--bags", &n])
                .wait();
        assert!(ok, "{said}");
    }
    let two = store
        .hub_taken(&twinspect::files::store::HubBag { line: "L1".into(), node: "n1".into(), bag: 2 })
        .unwrap()
        .unwrap();
    let first = store.hub_decided(two, "customs").unwrap().unwrap().stream_seq;
    drop(store);
    std::fs::write(
        &script,
        format!(
            "login customs c001 1111\nopen customs {two}\ndecide customs detain \"second look\"\nwait 4\n"
        ),
    )
    .unwrap();
    let err = screens(&script);
    let raw = raw_decisions(&url);
    let on_two: Vec<DecisionMsg> = raw
        .iter()
        .filter(|(_, s, _)| s == "twinspect.decision.customs.L1.n1.2")
        .map(|(_, _, p)| serde_json::from_slice(p).unwrap())
        .collect();
    assert_eq!(on_two.len(), 2, "{on_two:?}\n{err}");
    let c = &on_two[1];
    assert_eq!(
        (c.code.as_str(), c.station.as_str(), c.operator.as_str(), c.corrects),
        ("detain", "ws1-customs", "c001", Some(first))
    );
    assert_eq!(c.reason.as_deref(), Some("second look"));
    let store = Store::open_read(&desk).unwrap();
    let now = store.hub_decided(two, "customs").unwrap().unwrap();
    assert_eq!((now.code.as_str(), now.elsewhere), ("detain", false));
    assert!(now.stream_seq > first);
    assert!(store.hub_changed("customs", 0, 10).unwrap().is_empty(), "sent once");
    assert!(store.verify_audit().unwrap().ok());
    let (ok, listed, err) = common::run(twinspect().args(["bags", "--json", "--records", &records]));
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let row = rows.iter().find(|r| r["bag"] == 2).unwrap();
    assert_eq!(row["decisions"]["customs"]["code"], "detain", "{row}");
    assert_eq!(row["decisions"]["customs"]["corrected"][0]["code"], "release", "{row}");
    let (ok, said, err) = common::run(twinspect().args(["audit", "verify", "--records", &records]));
    assert!(ok, "{said}\n{err}");

    // A crash between sending a correction and marking it: the screen had recorded c001's
    // change in its archive and put the correction on the broker, then died before its records
    // and its mark. Restarted, it must find its own correction there and take it as what the
    // hub holds: not sent again (the subject keeps three messages), into the records now.
    let detain_seq = raw
        .iter()
        .filter(|(_, s, _)| s == "twinspect.decision.customs.L1.n1.2")
        .map(|(seq, _, _)| *seq)
        .max()
        .unwrap();
    let at_ms = twinspect::unix_ms();
    let mut store = Store::open(&desk).unwrap();
    let change = twinspect::domain::inspection::Decision {
        agency: "customs".into(),
        code: "release".into(),
        operator: "c001".into(),
        at_ms,
        reason: Some("third look".into()),
    };
    store.record_decision(two, &change).unwrap();
    assert_eq!(store.hub_changed("customs", 0, 10).unwrap().len(), 1, "the change waits to be sent");
    drop(store);
    let sent_before_crash = DecisionMsg {
        code: "release".into(),
        at_ms,
        reason: Some("third look".into()),
        corrects: Some(detain_seq),
        ..c.clone()
    };
    let crash_seq = publish_raw(
        &url,
        "twinspect.decision.customs.L1.n1.2",
        serde_json::to_vec(&sent_before_crash).unwrap(),
    );
    std::fs::write(&script, "login customs c001 1111\nwait 4\n").unwrap();
    let err = screens(&script);
    let on_two =
        raw_decisions(&url).into_iter().filter(|(_, s, _)| s == "twinspect.decision.customs.L1.n1.2").count();
    assert_eq!(on_two, 3, "the correction on the broker was not sent again\n{err}");
    let store = Store::open_read(&desk).unwrap();
    let now = store.hub_decided(two, "customs").unwrap().unwrap();
    assert_eq!((now.code.as_str(), now.elsewhere, now.stream_seq), ("release", false, crash_seq));
    assert!(store.hub_changed("customs", 0, 10).unwrap().is_empty(), "marked, not pending");
    assert!(store.verify_audit().unwrap().ok());
    let (ok, listed, err) = common::run(twinspect().args(["bags", "--json", "--records", &records]));
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let row = rows.iter().find(|r| r["bag"] == 2).unwrap();
    assert_eq!(row["decisions"]["customs"]["code"], "release", "{row}");
    assert_eq!(row["decisions"]["customs"]["at_ms"], at_ms, "the decision sent before the crash: {row}");
    assert_eq!(row["decisions"]["customs"]["reason"], "third look", "why it changed: {row}");
    let corrected = row["decisions"]["customs"]["corrected"].as_array().unwrap();
    assert_eq!(corrected.len(), 2, "{row}");
    assert_eq!(corrected[1]["reason"], "second look", "why the one it replaced changed: {row}");
}

#[test]
fn a_live_desk_publishes_its_bags_and_its_screens_decisions_and_the_hub_screens_only_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let pg = Postgres::start(tmp.path());
    let records = pg.url();
    let (desk, shots) = (tmp.path().join("desk"), tmp.path().join("shots"));
    let snapshot = |source: &str, bags: &str, script: &str, name: &str| {
        let file = tmp.path().join(format!("{name}.txt"));
        std::fs::write(&file, script).unwrap();
        common::run(
            twinspect()
                .arg("--data")
                .arg(&desk)
                .args(["snapshot", "--source", source, "--bags", bags, "--hub", &url, "--publish", "L9"])
                .args(["--station", "desk1", "--records", &records, "--out"])
                .arg(&shots)
                .arg("--script")
                .arg(&file),
        )
    };
    // The hub is down: the desk scans and its operators decide all the same; the bags and the
    // decisions wait in its archive, and its screens say so.
    let (ok, said, err) = snapshot(
        "synthetic://?seed=7&bags=2&speed=2",
        "2",
        "login customs c001 1111\nlogin quarantine q001 2222\nwait 2\n\
         mark customs rect 20 300 80 700 weapon knife-shaped\n\
         decide customs open\ndecide quarantine release\nwait 1\nsnap down\n",
        "down",
    );
    assert!(ok, "{said}\n{err}");
    let down = std::fs::read_to_string(shots.join("down-customs.txt")).unwrap();
    assert!(down.contains("hub not reachable: bags wait here"), "{down}");
    let _ = std::fs::copy(shots.join("down-customs.png"), "target/screenshots/desk-publishing-hub-down.png");
    assert_eq!(summary(&said, "waiting in the archive for the next run"), 2, "{said}");
    assert_eq!(summary(&said, "decisions sent to the hub"), 0, "{said}");
    let store = Store::open_read(&desk).unwrap();
    let decided: Vec<i64> =
        (1..=2).filter(|&b| store.record(b).unwrap().current("customs").is_some()).collect();
    assert_eq!(decided.len(), 1, "the screens decided the bag they showed");
    let (bag, other) = (decided[0], 3 - decided[0]);
    drop(store);

    // The hub is back: the next run sends both bags, then the two agencies' decisions on the
    // decided one, each once.
    let nats = Nats::start(port, &tmp.path().join("js"));
    // Meanwhile a quarantine station on the hub (an older one, that knows nothing of desks)
    // decided the bag first.
    let sha = Store::open_read(&desk).unwrap().bag(bag).unwrap().scan_sha256.unwrap();
    let q9 = DecisionMsg {
        format: twinspect::hub::FORMAT,
        agency: "quarantine".into(),
        code: "open".into(),
        station: "q9".into(),
        operator: "q009".into(),
        level: "L2".into(),
        line: "L9".into(),
        node: "desk1".into(),
        bag,
        scan_sha256: sha,
        at_ms: 10,
        held_ms: 1,
        reason: None,
        marks: Vec::new(),
        key: None,
        signature: None,
        corrects: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
        let keep = Duration::from_secs(3600);
        js.get_or_create_stream(twinspect::hub::station::decision_stream(1, keep)).await.unwrap();
    });
    publish_raw(
        &url,
        &format!("twinspect.decision.quarantine.L9.desk1.{bag}"),
        serde_json::to_vec(&q9).unwrap(),
    );
    // The broker is back but the hub's records are down: the bags reach the broker, yet none
    // counts as published (nor any decision sent) before PostgreSQL has it.
    pg.stop();
    let (ok, said, err) = snapshot("synthetic://?bags=0", "0", "wait 3\n", "no-records");
    assert!(ok, "{said}\n{err}");
    assert_eq!(summary(&said, "bags published to the hub"), 0, "{said}\n{err}");
    assert_eq!(summary(&said, "waiting in the archive for the next run"), 2, "{said}\n{err}");
    assert_eq!(summary(&said, "decisions sent to the hub"), 0, "{said}\n{err}");
    pg.restart();
    // Everything up: a bag found on the broker (it got there while the records were down) is
    // recorded, not sent again; the other is sent; then the decisions.
    let (ok, said, err) = snapshot("synthetic://?bags=0", "0", "wait 4\nsnap up\n", "up");
    assert!(ok, "{said}\n{err}");
    let found = summary(&said, "bags found on the hub already");
    assert!(found >= 1, "{said}\n{err}");
    assert_eq!(found + summary(&said, "bags published to the hub"), 2, "{said}\n{err}");
    assert_eq!(summary(&said, "decisions sent to the hub"), 1, "{said}\n{err}");
    assert!(said.contains("the hub holds quarantine's decision open from q9"), "{said}");
    let up = std::fs::read_to_string(shots.join("up-customs.txt")).unwrap();
    assert!(up.contains("hub L9/desk1: bags sent 2, decisions sent 1"), "{up}");
    let _ = std::fs::copy(shots.join("up-customs.png"), "target/screenshots/desk-publishing.png");
    let held = broker_contents(nats.url().as_str());
    assert_eq!(held.messages.len(), 2, "each bag once");
    let store = Store::open_read(&desk).unwrap();
    for (subject, _, a) in &held.messages {
        assert_eq!(subject, &format!("twinspect.bag.L9.desk1.{}", a.bag));
        assert_eq!(a.screened_at_desk, ["customs", "quarantine"]);
        assert_eq!(Some(&a.scan.sha256), store.bag(a.bag).unwrap().scan_sha256.as_ref());
        assert_eq!(hex_sha256(&held.scans[&a.scan.object]), a.scan.sha256);
    }
    let ds = decisions(&url);
    assert_eq!(ds.len(), 2, "{ds:?}");
    let of = |agency: &str| ds.iter().map(|(_, d)| d).find(|d| d.agency == agency).unwrap();
    let (c, q) = (of("customs"), of("quarantine"));
    assert_eq!(
        (c.bag, c.code.as_str(), c.station.as_str(), c.operator.as_str()),
        (bag, "open", "desk1-customs", "c001")
    );
    assert_eq!(q, &q9, "the hub keeps the first");
    assert!(ds.iter().all(|(_, d)| d.level == "L2" && d.line == "L9" && d.node == "desk1"));
    assert_eq!(Some(&c.scan_sha256), store.bag(bag).unwrap().scan_sha256.as_ref());
    assert_eq!(c.marks.len(), 1, "{c:?}");
    assert_eq!((c.marks[0].category.as_str(), c.marks[0].note.as_str()), ("weapon", "knife-shaped"));
    assert_eq!(store.decision_sent(bag, "customs").unwrap().as_deref(), Some("open"));
    assert_eq!(store.decision_sent(other, "customs").unwrap(), None);
    // The desk's archive takes the hub's quarantine decision as the current one, q001's before it.
    let r = store.record(bag).unwrap();
    let qs: Vec<(&str, &str)> = r
        .decisions
        .iter()
        .filter(|d| d.agency == "quarantine")
        .map(|d| (d.code.as_str(), d.operator.as_str()))
        .collect();
    assert_eq!(qs, [("release", "q001"), ("open", "q009")]);
    assert_eq!(store.decision_sent(bag, "quarantine").unwrap().as_deref(), Some("open"));
    assert!(store.verify_audit().unwrap().ok());
    drop(store);

    // On the hub, customs' and quarantine's stations let the desk's bags pass; an agency with no
    // screen at the desk (airport security) screens both centrally.
    let three = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/sites/three-screens.toml");
    let three = three.to_str().unwrap();
    // A desk's word is not taken on trust: a bag it has not decided within the desk's time is
    // screened on the hub (here 3 s, long past for both bags).
    let mut c1 = Node::bot(
        &url,
        &[
            "--agency",
            "customs",
            "--decide",
            "refer",
            "--name",
            "c1",
            "--site",
            three,
            "--desk-wait-seconds",
            "3",
        ],
    );
    let s1 = Node::bot(
        &url,
        &[
            "--agency",
            "security",
            "--decide",
            "release",
            "--name",
            "s1",
            "--bags",
            "2",
            "--site",
            three,
            "--records",
            &records,
        ],
    );
    let (ok, out) = s1.wait();
    assert!(ok, "{out}");
    c1.wait_for(&format!("bag L9.desk1.{bag} is screened at its desk; let pass"), Duration::from_secs(30));
    c1.wait_for(
        &format!("bag L9.desk1.{other}: not decided at its desk within 3 s: screened here"),
        Duration::from_secs(30),
    );
    let t0 = Instant::now();
    while decisions(&url).len() < 5 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, out) = c1.stop();
    assert!(ok, "{out}");
    assert_eq!(summary(&out, "decided"), 1, "{out}");
    assert_eq!(summary(&out, "screened at their desk"), 1, "{out}");
    let ds = decisions(&url);
    assert_eq!(ds.len(), 5, "{ds:?}");
    let by_c1: Vec<i64> = ds.iter().filter(|(_, d)| d.station == "c1").map(|(_, d)| d.bag).collect();
    assert_eq!(by_c1, [other], "{ds:?}");
    // The hub's records: both bags, the desk's two decisions and security's.
    let (ok, listed, err) = common::run(twinspect().args(["bags", "--json", "--records", &records]));
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let row = |b: i64| {
        rows.iter().find(|r| r["bag"] == b && r["node"] == "desk1").unwrap_or_else(|| panic!("{listed}"))
    };
    let r = row(bag);
    assert_eq!(r["decisions"]["customs"]["station"], "desk1-customs", "{r}");
    assert_eq!(r["decisions"]["customs"]["code"], "open", "{r}");
    assert_eq!(r["decisions"]["quarantine"]["station"], "q9", "{r}");
    assert_eq!(r["decisions"]["security"]["station"], "s1", "{r}");
    let r = row(other);
    assert!(r["decisions"]["customs"].is_null(), "c1 keeps no records: {r}");
    assert_eq!(r["decisions"]["security"]["code"], "release", "{r}");
    let (ok, said, err) = common::run(twinspect().args(["audit", "verify", "--records", &records]));
    assert!(ok, "{said}\n{err}");

    // Customs changes its decision at the desk: it goes to the hub as a correction of the one
    // there, into the records beside it; quarantine's (the hub's q9, taken by the desk) is not
    // sent back.
    let before = raw_decisions(&url);
    let first = before
        .iter()
        .find(|(_, s, _)| s == &format!("twinspect.decision.customs.L9.desk1.{bag}"))
        .map(|(seq, _, _)| *seq)
        .unwrap();
    let (ok, said, err) = snapshot(
        "synthetic://?bags=0",
        "0",
        &format!(
            "login customs c001 1111\nopen customs {bag}\ndecide customs release \"seen again\"\nwait 3\nsnap fixed\n"
        ),
        "fixed",
    );
    assert!(ok, "{said}\n{err}");
    assert!(
        said.contains(&format!(
            "bag {bag}: customs corrected to release at the desk; on the hub as {DECISIONS} #"
        )) && said.contains(&format!("(replaces #{first})")),
        "{said}"
    );
    assert_eq!(summary(&said, "decisions sent to the hub"), 1, "{said}\n{err}");
    let fixed = std::fs::read_to_string(shots.join("fixed-customs.txt")).unwrap();
    assert!(fixed.contains("corrections sent: 1"), "{fixed}");
    let _ = std::fs::copy(shots.join("fixed-customs.png"), "target/screenshots/desk-correction.png");
    let after = raw_decisions(&url);
    assert_eq!(after.len(), before.len() + 1, "one correction, nothing else");
    let (_, subject, payload) = after.last().unwrap();
    assert_eq!(subject, &format!("twinspect.decision.customs.L9.desk1.{bag}"));
    let c: DecisionMsg = serde_json::from_slice(payload).unwrap();
    assert_eq!((c.code.as_str(), c.corrects, c.station.as_str()), ("release", Some(first), "desk1-customs"));
    assert_eq!(c.reason.as_deref(), Some("seen again"));
    // A correction that does not name the subject's latest is refused by the broker.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let refused = rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
        let stale = DecisionMsg { code: "detain".into(), corrects: Some(first), ..c.clone() };
        let m = async_nats::jetstream::message::PublishMessage::build()
            .payload(serde_json::to_vec(&stale).unwrap().into())
            .expected_last_subject_sequence(first);
        let e = js.send_publish(subject.clone(), m).await.unwrap().await.unwrap_err();
        e.kind() == async_nats::jetstream::context::PublishErrorKind::WrongLastSequence
    });
    assert!(refused, "a fork of the chain");
    let (ok, listed, err) = common::run(twinspect().args(["bags", "--json", "--records", &records]));
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let r = rows.iter().find(|r| r["bag"] == bag && r["node"] == "desk1").unwrap();
    assert_eq!(r["decisions"]["customs"]["code"], "release", "{r}");
    assert_eq!(r["decisions"]["customs"]["corrected"][0]["code"], "open", "{r}");
    assert_eq!(r["decisions"]["quarantine"]["code"], "open", "{r}");
    assert!(r["decisions"]["quarantine"].get("corrected").is_none(), "{r}");
    let (ok, said, err) = common::run(twinspect().args(["audit", "verify", "--records", &records]));
    assert!(ok, "{said}\n{err}");
    let store = Store::open_read(&desk).unwrap();
    assert_eq!(store.decision_sent(bag, "customs").unwrap().as_deref(), Some("release"));
    let entries = twinspect::files::store::audit::entries(store.connection()).unwrap();
    assert_eq!(entries.iter().filter(|e| e.action == "decision.correction_published").count(), 1);
    assert!(store.verify_audit().unwrap().ok());
}

#[test]
fn a_screen_that_loses_the_race_for_a_bag_keeps_the_hubs_decision_as_the_agencys() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), &tmp.path().join("js"));
    let url = nats.url();
    let (ok, out) = Node::start(
        &tmp.path().join("node"),
        &url,
        &["--source", "synthetic://?seed=46&speed=20", "--bags", "1"],
    )
    .wait();
    assert!(ok, "{out}");
    let held = broker_contents(&url);
    let a = held.messages[0].2.clone();
    let script = tmp.path().join("script.txt");
    std::fs::write(&script, "login customs c001 1111\nwait 12\ndecide customs open\nwait 2\nsnap after\n")
        .unwrap();
    let (desk, shots) = (tmp.path().join("desk"), tmp.path().join("shots"));
    let mut c = twinspect();
    c.arg("--data").arg(&desk).args(["snapshot", "--hub", &url, "--station", "ws1", "--out"]);
    c.arg(&shots).arg("--script").arg(&script);
    let screen = Node::spawn(c);
    // The bag is on ws1's customs screen...
    let hub = twinspect::files::store::HubBag { line: "L1".into(), node: "n1".into(), bag: a.bag };
    let t0 = Instant::now();
    let id = loop {
        let taken = Store::open_read(&desk).ok().and_then(|s| s.hub_taken(&hub).ok().flatten());
        if let Some(id) = taken {
            break id;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "the screen never took the bag");
        std::thread::sleep(Duration::from_millis(100));
    };
    // ...when another customs station (which held it before and came back) decides it first.
    let mark = twinspect::hub::HubMark {
        shape: twinspect::domain::inspection::Shape::Rect { x0: 10.0, y0: 100.0, x1: 40.0, y1: 300.0 },
        category: "drugs".into(),
        note: "powder".into(),
        operator: "c009".into(),
        created_ms: 5,
    };
    let first = DecisionMsg {
        format: twinspect::hub::FORMAT,
        agency: "customs".into(),
        code: "refer".into(),
        station: "c9".into(),
        operator: "c009".into(),
        level: "L2".into(),
        line: "L1".into(),
        node: "n1".into(),
        bag: a.bag,
        scan_sha256: a.scan.sha256.clone(),
        at_ms: 10,
        held_ms: 1,
        reason: None,
        marks: vec![mark],
        key: None,
        signature: None,
        corrects: None,
    };
    publish_raw(
        &url,
        &format!("twinspect.decision.customs.L1.n1.{}", a.bag),
        serde_json::to_vec(&first).unwrap(),
    );
    let (ok, out) = screen.wait();
    assert!(ok, "{out}");
    // The hub kept the first; the screen said so, and the desk's archive holds the hub's
    // decision as customs' current one, c001's before it, and c009's mark.
    assert_eq!(decisions(&url).into_iter().map(|(_, d)| d).collect::<Vec<_>>(), [first]);
    let text = std::fs::read_to_string(shots.join("after-customs.txt")).unwrap();
    assert!(text.contains("customs decided it first at station c9 (refer)"), "{text}");
    let store = Store::open_read(&desk).unwrap();
    let r = store.record(id).unwrap();
    let ours: Vec<(&str, &str)> =
        r.decisions.iter().map(|d| (d.code.as_str(), d.operator.as_str())).collect();
    assert_eq!(ours, [("open", "c001"), ("refer", "c009")]);
    let current = r.current("customs").unwrap();
    assert_eq!(current.reason.as_deref(), Some("decided first at hub station c9"));
    assert!(r.annotations.iter().any(|m| m.operator == "c009" && m.note == "powder"), "{:?}", r.annotations);
    let sent = store.hub_decided(id, "customs").unwrap().unwrap();
    assert_eq!((sent.code.as_str(), sent.elsewhere), ("refer", true));
    assert!(store.verify_audit().unwrap().ok());
}
