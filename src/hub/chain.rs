//! An agency's decision chain on one bag, as the decision stream holds it, and the decision in
//! force there. Stations publish an agency's first decision expecting nothing before it on the
//! subject, and each correction expecting the message it corrects to be the subject's last; so
//! the chain is the subject's messages in order, each correcting the one just before it. A
//! message that does not fit (a second "first" decision, a correction of something else, a
//! correction after a message that is not a link, junk, another bag's or scan's decision) got
//! onto the stream without that check - a station's raw publish - and counts for nothing: the
//! decision in force is the last link before it.
//!
//! A chain whose first links aged out of the stream (it keeps decisions for the hub's hours)
//! starts at the first message still held that corrects one no longer held; so a fork refused
//! while its target was held could count once everything before it aged out - hours after the
//! parcel left the line.
//!
//! Every reader of decisions goes through here: the sorter and a node's copy read back through
//! [`stored_decision`]; the opening bench, walking the whole stream in order, checks each
//! message against its subject's chain; a station looks at the chain before it screens a bag
//! (decided at its desk, or decided already) and when the broker refuses its decision.
//!
//! Owns: the chain rule ([`Chain`], pure), reading a subject's chain off the stream, the
//! read-back of a decision heard and the stream order of read-backs ([`Latest`]). Must not
//! import: egui, wgpu, the desk.

use std::time::Duration;

use async_nats::jetstream::{self, stream::RawMessageErrorKind};

use super::{DECISIONS, DecisionMsg};

/// The largest decision message read (a station's is a few kB with its marks).
pub const MAX_DECISION: usize = 64 * 1024;
/// The most messages read on one subject (a decision and its corrections; more is not a desk's
/// work, and is refused rather than read for ever).
pub const MAX_CHAIN: usize = 64;

/// One subject's messages taken in stream order: the chain's last link so far, and the messages
/// that are not links.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chain {
    /// The decision in force: the last link, with its stream sequence.
    pub in_force: Option<(u64, DecisionMsg)>,
    /// Messages on the subject that are not links of the chain: sequence and why.
    pub refused: Vec<(u64, String)>,
    /// The sequences of the messages taken (links or not), in order.
    seen: Vec<u64>,
    /// A message not a link came after the last link: nothing after it can be one (a station
    /// publishing a correction expects the link it corrects to be the subject's last).
    broken: bool,
}

impl Chain {
    /// Take the subject's next message: `seq` its stream sequence, `first_kept` the stream's
    /// first sequence (a chain whose first links aged out of the stream starts at the first
    /// correction still held).
    pub fn take(&mut self, subject: &str, seq: u64, payload: &[u8], first_kept: u64) {
        self.take_decoded(subject, seq, decode(payload), first_kept);
    }

    /// [`Chain::take`] of a message already decoded ([`decode`]).
    pub fn take_decoded(&mut self, subject: &str, seq: u64, d: Result<DecisionMsg, String>, first_kept: u64) {
        let verdict = d.and_then(|d| self.link(subject, seq, d, first_kept));
        self.seen.push(seq);
        match verdict {
            Ok(d) => self.in_force = Some((seq, d)),
            Err(why) => {
                self.broken = true;
                self.refused.push((seq, why));
            }
        }
    }

    fn link(&self, subject: &str, seq: u64, d: DecisionMsg, first_kept: u64) -> Result<DecisionMsg, String> {
        if super::decision_subject(&d.agency, &d.line, &d.node, d.bag) != subject {
            return Err(format!("it names bag {}.{}.{} of {}", d.line, d.node, d.bag, d.agency));
        }
        if self.seen.len() >= MAX_CHAIN {
            return Err(format!("more than {MAX_CHAIN} messages on the subject: the rest count for nothing"));
        }
        if self.broken {
            return Err("after a message that is not a link of the chain".into());
        }
        let first = self.seen.is_empty();
        match (&self.in_force, d.corrects) {
            (None, None) if first => Ok(d),
            (_, None) => Err("a decision after the agency's first, correcting none".into()),
            (None, Some(earlier)) if first && earlier < first_kept.min(seq) => Ok(d),
            (_, Some(earlier)) if !self.seen.contains(&earlier) => {
                Err(format!("it corrects #{earlier}, which is not on its subject"))
            }
            (None, Some(earlier)) => Err(format!("it corrects #{earlier}, not a decision of the chain")),
            (Some((at, current)), Some(earlier)) => {
                if earlier != *at {
                    Err(format!("it corrects #{earlier}, not the decision in force (#{at})"))
                } else if current.scan_sha256 != d.scan_sha256 {
                    Err("it corrects a decision on another scan".into())
                } else {
                    Ok(d)
                }
            }
        }
    }
}

/// A decision message as read off the broker (at most [`MAX_DECISION`] bytes of JSON).
pub fn decode(payload: &[u8]) -> Result<DecisionMsg, String> {
    if payload.len() > MAX_DECISION {
        return Err(format!("a decision of {} bytes (limit {MAX_DECISION})", payload.len()));
    }
    serde_json::from_slice(payload).map_err(|e| format!("not a decision: {e}"))
}

/// The chain on `subject` as the decision stream holds it now.
pub async fn read_chain(js: &jetstream::Context, subject: &str) -> Result<Chain, String> {
    match js.get_stream(DECISIONS).await {
        Ok(stream) => read_chain_on(&stream, subject).await,
        // No station has decided anything yet (stations create the stream).
        Err(e) if e.to_string().to_ascii_lowercase().contains("not found") => Ok(Chain::default()),
        Err(e) => Err(format!("the decision stream: {e}")),
    }
}

/// The chain on `subject` as `stream` (the decision stream) holds it now: one read a message,
/// and one more that finds none. Past [`MAX_CHAIN`] messages the rest count for nothing (the
/// first of them refused as such). The stream's first sequence is asked only where it matters:
/// when the first message held is a correction (whose predecessor may have aged out).
pub async fn read_chain_on(stream: &jetstream::stream::Stream, subject: &str) -> Result<Chain, String> {
    let mut chain = Chain::default();
    let mut from = 1;
    loop {
        let m = match stream
            .raw_message_builder()
            .sequence(from)
            .next_by_subject(subject.to_string())
            .send()
            .await
        {
            Ok(m) => m,
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return Ok(chain),
            Err(e) => return Err(format!("{subject}: {e}")),
        };
        let d = decode(&m.payload);
        let mut first_kept = 0;
        if chain.seen.is_empty() && d.as_ref().is_ok_and(|d| d.corrects.is_some()) {
            // Asked after the message was read: aging only moves it on.
            let mut s = stream.clone();
            first_kept =
                s.info().await.map_err(|e| format!("the decision stream: {e}"))?.state.first_sequence;
        }
        chain.take_decoded(subject, m.sequence, d, first_kept);
        if chain.seen.len() > MAX_CHAIN {
            return Ok(chain);
        }
        from = m.sequence + 1;
    }
}

/// Each message that is not a link, said once by this process (bounded: then said afresh).
fn say_not_a_link(subject: &str, seq: u64, why: &str) {
    static SAID: std::sync::Mutex<Option<std::collections::HashSet<(String, u64)>>> =
        std::sync::Mutex::new(None);
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    let said = said.get_or_insert_with(Default::default);
    if said.len() >= 10_000 {
        said.clear();
    }
    if said.insert((subject.to_string(), seq)) {
        eprintln!(
            "{subject}: message #{seq} is not a link of the agency's decision chain ({why}): it counts for nothing"
        );
    }
}

/// An agency's decision in force on a parcel as the decision stream holds it, if any, with its
/// sequence there. Messages on the subject that are not links are said (once; they count for
/// nothing); a stream that does not answer within half a second is as none.
pub async fn stored_decision(
    js: &jetstream::Context,
    agency: &str,
    line: &str,
    node: &str,
    bag: i64,
) -> Option<(u64, DecisionMsg)> {
    let subject = super::decision_subject(agency, line, node, bag);
    let chain = match tokio::time::timeout(Duration::from_millis(500), read_chain(js, &subject)).await {
        Ok(Ok(c)) => c,
        Ok(Err(why)) => {
            tracing::warn!("decision read-back: {why}");
            return None;
        }
        Err(_) => return None,
    };
    for (seq, why) in &chain.refused {
        say_not_a_link(&subject, *seq, why);
    }
    chain.in_force
}

/// A decision heard on its subject is only a hint (a publish the stream refused is heard all the
/// same): when it is well-formed and on its own subject, the agency's decision in force on that
/// bag is read back and sent on `tx`, off the caller's loop. Asked twice, 300 ms apart, while
/// what the stream holds is not yet what was heard (heard as it was stored, perhaps a moment
/// before); then what the stream holds is what counts.
pub fn read_back_heard(
    js: &jetstream::Context,
    m: &async_nats::Message,
    tx: &tokio::sync::mpsc::Sender<(u64, DecisionMsg)>,
    line: &str,
    node: &str,
) {
    let Ok(d) = decode(&m.payload) else { return };
    if m.subject.as_str() != super::decision_subject(&d.agency, &d.line, &d.node, d.bag) {
        return;
    }
    let (js, tx, line, node) = (js.clone(), tx.clone(), line.to_owned(), node.to_owned());
    tokio::spawn(async move {
        let mut found = None;
        for pause in [0, 300] {
            tokio::time::sleep(Duration::from_millis(pause)).await;
            found = stored_decision(&js, &d.agency, &line, &node, d.bag).await;
            if found.as_ref().is_some_and(|(_, stored)| *stored == d) {
                break;
            }
        }
        if let Some(s) = found {
            let _ = tx.send(s).await;
        }
    });
}

/// The newest decision stream sequence applied per bag and agency: a read-back older than one
/// applied already (two read-backs racing, one of them slow) is dropped, so a correction is
/// never undone by the decision it replaced.
#[derive(Default)]
pub struct Latest {
    seen: std::collections::HashMap<(i64, String), u64>,
}

/// Bags and agencies a [`Latest`] remembers (then it starts afresh).
const MAX_LATEST: usize = 100_000;

impl Latest {
    /// Whether message `seq`, decision `d`, is not older than one applied for its bag and agency
    /// (noted as applied when it is).
    pub fn newer(&mut self, seq: u64, d: &DecisionMsg) -> bool {
        if self.seen.len() >= MAX_LATEST {
            self.seen.clear();
        }
        let last = self.seen.entry((d.bag, d.agency.clone())).or_insert(0);
        if seq < *last {
            return false;
        }
        *last = seq;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBJECT: &str = "twinspect.decision.customs.L1.n1.7";

    fn decision(code: &str, corrects: Option<u64>) -> DecisionMsg {
        DecisionMsg {
            format: 1,
            agency: "customs".into(),
            code: code.into(),
            station: "s1".into(),
            operator: "c001".into(),
            level: "L2".into(),
            line: "L1".into(),
            node: "n1".into(),
            bag: 7,
            scan_sha256: "ab".repeat(32),
            at_ms: 1_000,
            held_ms: 10,
            reason: None,
            marks: Vec::new(),
            corrects,
            key: None,
            signature: None,
        }
    }

    fn walk(messages: &[(u64, DecisionMsg)], first_kept: u64) -> Chain {
        let mut c = Chain::default();
        for (seq, d) in messages {
            c.take(SUBJECT, *seq, &serde_json::to_vec(d).unwrap(), first_kept);
        }
        c
    }

    fn in_force(c: &Chain) -> Option<(u64, &str)> {
        c.in_force.as_ref().map(|(s, d)| (*s, d.code.as_str()))
    }

    #[test]
    fn the_last_correction_of_an_unbroken_chain_is_in_force() {
        let c = walk(&[(3, decision("open", None))], 1);
        assert_eq!((in_force(&c), c.refused.len()), (Some((3, "open")), 0));
        let c = walk(
            &[
                (3, decision("open", None)),
                (9, decision("release", Some(3))),
                (12, decision("open", Some(9))),
            ],
            1,
        );
        assert_eq!((in_force(&c), c.refused.len()), (Some((12, "open")), 0));
    }

    #[test]
    fn a_second_first_decision_or_a_correction_of_anything_else_counts_for_nothing() {
        // A raw publish without the expected-sequence check: a second decision correcting none.
        let c = walk(&[(3, decision("open", None)), (5, decision("release", None))], 1);
        assert_eq!(in_force(&c), Some((3, "open")));
        assert_eq!(c.refused, vec![(5, "a decision after the agency's first, correcting none".to_string())]);
        // A correction of a message that is not the one in force (a fork of the chain).
        let c = walk(
            &[(3, decision("open", None)), (5, decision("release", Some(3))), (6, decision("open", Some(3)))],
            1,
        );
        assert_eq!(in_force(&c), Some((5, "release")));
        assert_eq!(c.refused[0].0, 6);
        assert!(c.refused[0].1.contains("corrects #3, not the decision in force (#5)"), "{:?}", c.refused);
        // A correction of a message on another subject.
        let c = walk(&[(3, decision("open", None)), (6, decision("release", Some(4)))], 1);
        assert_eq!(in_force(&c), Some((3, "open")));
        assert_eq!(c.refused, vec![(6, "it corrects #4, which is not on its subject".to_string())]);
        // After a message that is not a link, nothing is: not even a correction of the one in
        // force (the broker would have refused it, had it been published with the check).
        let c = walk(
            &[(3, decision("open", None)), (5, decision("release", None)), (8, decision("release", Some(3)))],
            1,
        );
        assert_eq!((in_force(&c), c.refused.len()), (Some((3, "open")), 2));
        // A correction as the subject's first message whose predecessor is still on the stream
        // (or never was): not a link; one whose predecessor aged out is the chain's start.
        let c = walk(&[(9, decision("release", Some(3)))], 1);
        assert_eq!((in_force(&c), c.refused.len()), (None, 1));
        let c = walk(&[(9, decision("release", Some(3)))], 5);
        assert_eq!(in_force(&c), Some((9, "release")));
        // A correction naming another scan of the bag.
        let other = DecisionMsg { scan_sha256: "cd".repeat(32), ..decision("release", Some(3)) };
        let c = walk(&[(3, decision("open", None)), (4, other)], 1);
        assert_eq!((in_force(&c), c.refused.len()), (Some((3, "open")), 1));
    }

    #[test]
    fn a_chain_is_read_to_its_limit_and_no_further() {
        let mut links = vec![(1, decision("open", None))];
        for seq in 2..=MAX_CHAIN as u64 + 1 {
            links.push((seq, decision(if seq % 2 == 0 { "release" } else { "open" }, Some(seq - 1))));
        }
        let c = walk(&links[..MAX_CHAIN], 1);
        assert_eq!((in_force(&c).map(|(s, _)| s), c.refused.len()), (Some(MAX_CHAIN as u64), 0));
        let c = walk(&links, 1);
        assert_eq!(in_force(&c).map(|(s, _)| s), Some(MAX_CHAIN as u64), "the last link within the limit");
        assert_eq!(c.refused.len(), 1);
        assert_eq!(c.refused[0].0, MAX_CHAIN as u64 + 1);
        assert!(c.refused[0].1.starts_with("more than 64 messages"), "{:?}", c.refused);
    }

    #[test]
    fn junk_and_another_bags_decision_on_the_subject_are_not_links() {
        let mut c = Chain::default();
        c.take(SUBJECT, 2, b"{not json", 1);
        assert_eq!(in_force(&c), None);
        assert!(c.refused[0].1.starts_with("not a decision"), "{:?}", c.refused);
        // A decision published before anything else on the subject, but naming another bag.
        let mut c = Chain::default();
        let other = DecisionMsg { bag: 8, ..decision("open", None) };
        c.take(SUBJECT, 2, &serde_json::to_vec(&other).unwrap(), 1);
        c.take(SUBJECT, 3, &serde_json::to_vec(&decision("open", None)).unwrap(), 1);
        assert_eq!(in_force(&c), None, "junk first: the subject holds no decision of the agency's");
        assert_eq!(c.refused.len(), 2);
        let mut c = Chain::default();
        c.take(SUBJECT, 2, &vec![b' '; MAX_DECISION + 1], 1);
        assert!(
            c.refused[0].1.starts_with("a decision of") && c.refused[0].1.contains("limit"),
            "{:?}",
            c.refused
        );
    }

    #[test]
    fn a_read_back_older_than_one_applied_is_dropped() {
        let mut l = Latest::default();
        let d = decision("open", None);
        assert!(l.newer(3, &d));
        assert!(l.newer(9, &d));
        assert!(!l.newer(3, &d), "the earlier decision, read back late, is dropped");
        assert!(l.newer(9, &d), "the same one again is applied (idempotent downstream)");
        let q = DecisionMsg { agency: "quarantine".into(), ..d };
        assert!(l.newer(4, &q), "another agency's has its own order");
    }
}
