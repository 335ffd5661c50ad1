//! A scanner node's copy of the decisions taken on its bags: every agency's decision, as the
//! hub's decision stream holds it, recorded in the node's own archive with the operator's marks
//! that came with it (and their audit entries),
//! so the archive beside the line holds each bag's whole record - what the opening bench served
//! from that node (`node --web`) shows and works from, and what `bags` and the exports list.
//!
//! A decision heard on its subject is only a hint (a publish the stream refused is heard all
//! the same): what is recorded is read back from the stream, and only when it was taken on the
//! scan this archive holds. At start every agency's latest decision on the newest published
//! bags is looked up, so decisions taken or corrected while the node was down are not lost.
//!
//! Owns: the task that hears, reads back and records. Must not import: egui, wgpu, the desk.

use std::time::Duration;

use futures_util::StreamExt;

use super::chain::{Latest, read_back_heard, stored_decision};
use super::{DECISION_ROOT, DecisionMsg};
use crate::domain::inspection::{Annotation, Decision};
use crate::files::store::Store;

/// Published bags looked up at start for decisions taken while the node was away.
pub const CATCH_UP: usize = 500;

/// What recording one decision came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Added to the archive.
    New,
    /// The archive holds it already.
    Known,
    /// Not recorded: why (a bag this archive does not hold, another scan).
    Refused(String),
}

/// Record decision `d` (as the stream holds it) in the node's archive, once.
pub fn record(store: &mut Store, d: &DecisionMsg) -> Recorded {
    record_on(store, d.bag, d)
}

/// Record decision `d` on archive bag `id` (the node's own bag, or a hub bag taken into this
/// archive), once, and only when it was taken on the scan the archive holds.
pub fn record_on(store: &mut Store, id: i64, d: &DecisionMsg) -> Recorded {
    let row = match store.bag(id) {
        Ok(r) => r,
        Err(e) => return Recorded::Refused(format!("bag {id}: {e}")),
    };
    if row.scan_sha256.as_deref() != Some(d.scan_sha256.as_str()) {
        return Recorded::Refused(format!("bag {id}: decided on another scan than the archive's"));
    }
    match store.record(id) {
        Ok(r) => {
            if r.current(&d.agency).is_some_and(|c| c.code == d.code && c.at_ms == d.at_ms) {
                return Recorded::Known;
            }
        }
        Err(e) => return Recorded::Refused(format!("bag {id}: {e}")),
    }
    let (decision, marks) = as_archived(d);
    match store.record_decision_with_marks(id, &decision, &marks) {
        Ok(()) => Recorded::New,
        Err(e) => Recorded::Refused(format!("bag {id}: {e}")),
    }
}

/// Decision `d` as an archive keeps it, with its marks (those that hold up: a decision whose
/// marks do not is kept without them, and says so).
pub fn as_archived(d: &DecisionMsg) -> (Decision, Vec<Annotation>) {
    let decision = Decision {
        agency: d.agency.clone(),
        code: d.code.clone(),
        operator: d.operator.clone(),
        at_ms: d.at_ms,
        reason: d.reason.clone(),
    };
    let marks = match d.check_marks() {
        Ok(()) => d
            .marks
            .iter()
            .map(|m| {
                Annotation::new(
                    0,
                    &d.agency,
                    &m.operator,
                    m.shape.clone(),
                    &m.category,
                    &m.note,
                    m.created_ms,
                )
            })
            .collect(),
        Err(why) => {
            eprintln!("hub: bag {}: {}'s marks not kept: {why}", d.bag, d.agency);
            Vec::new()
        }
    };
    (decision, marks)
}

/// The hub's decision `theirs` on archive bag `bag`, taken first by another station, kept as
/// the agency's current one (the archive's own before it, superseded and audited), with the
/// marks that came with it and why in its reason.
pub fn keep_hubs_first(store: &mut Store, bag: i64, theirs: &DecisionMsg) -> Result<(), String> {
    let (mut winner, marks) = as_archived(theirs);
    let first = format!("decided first at hub station {}", theirs.station);
    winner.reason = Some(match &winner.reason {
        Some(r) => format!("{first}: {r}"),
        None => first,
    });
    store.record_decision_with_marks(bag, &winner, &marks).map_err(|e| format!("bag {bag}: {e}"))
}

/// Hear the decisions on this node's bags and record each in `store`, until the task is
/// dropped. `agencies`: the site's, for the look-up at start; `skip`: agencies whose decisions
/// are not copied (a publishing desk's own, which its decisions outbox records).
pub async fn run(
    client: async_nats::Client,
    line: String,
    node: String,
    agencies: Vec<String>,
    skip: Vec<String>,
    mut store: Store,
) {
    let js = async_nats::jetstream::new(client.clone());
    let mut heard = loop {
        match client.subscribe(format!("{DECISION_ROOT}.*.{line}.{node}.*")).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!("hub: not hearing decisions yet ({e})");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let (tx, mut stored) = tokio::sync::mpsc::channel::<(u64, DecisionMsg)>(1024);
    let mut latest = Latest::default();
    // Decisions taken or corrected while this node was away: every agency's latest on the
    // newest published bags (one the archive holds already is known, not recorded again).
    {
        let (js, tx, line, node) = (js.clone(), tx.clone(), line.clone(), node.clone());
        let missing: Vec<(i64, String)> = store
            .published_ids(CATCH_UP)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|bag| {
                agencies.iter().filter(|a| !skip.contains(a)).map(|a| (bag, a.clone())).collect::<Vec<_>>()
            })
            .collect();
        tokio::spawn(async move {
            for (bag, agency) in missing {
                if let Some(found) = stored_decision(&js, &agency, &line, &node, bag).await {
                    let _ = tx.send(found).await;
                }
            }
        });
    }
    loop {
        tokio::select! {
            m = heard.next() => {
                let Some(m) = m else { return };
                read_back_heard(&js, &m, &tx, &line, &node);
            }
            Some((seq, d)) = stored.recv() => {
                if skip.contains(&d.agency) || !latest.newer(seq, &d) {
                    continue;
                }
                match record(&mut store, &d) {
                    Recorded::New => println!("bag {}: {} decided {} (recorded)", d.bag, d.agency, d.code),
                    Recorded::Known => {}
                    Recorded::Refused(why) => {
                        eprintln!("hub: a decision of {} not recorded: {why}", d.agency);
                        tracing::warn!(agency = %d.agency, "decision not recorded: {why}");
                    }
                }
            }
        }
    }
}
