//! The audit trail: append-only and hash-chained.
//!
//! Entry `n` stores `prev` (entry `n-1`'s hash; 64 zeros for the first) and
//! `hash = SHA-256(prev, seq, at_ms, actor, action, bag, detail)`, each field length-prefixed so
//! no two different entries hash alike. The newest `(seq, hash)` is also kept in `audit_head`,
//! written in the same transaction, so entries cut off the end show as well. Triggers refuse
//! UPDATE and DELETE on the trail; [`verify`] catches what someone does after dropping them: an
//! edited entry (its hash no longer matches), a deleted one (a gap in `seq`, or a `prev` that
//! names something else), a reordering (`prev` out of place), a cut tail (the head disagrees).
//! Anyone able to rewrite the whole file can rebuild a consistent chain: `audit verify` prints
//! the head hash so a supervisor can note it elsewhere (a shift log) and compare later.
//!
//! Must not import: egui, wgpu, tokio.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of one entry.
pub fn entry_hash(
    prev: &str,
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    bag: Option<i64>,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    let bag = bag.map_or(String::new(), |b| b.to_string());
    for field in [prev, &seq.to_string(), &at_ms.to_string(), actor, action, &bag, detail] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Append one entry inside the caller's transaction (so the record and its entry commit
/// together or not at all).
pub fn append(
    tx: &rusqlite::Transaction,
    at_ms: u64,
    actor: &str,
    action: &str,
    bag: Option<i64>,
    detail: &serde_json::Value,
) -> rusqlite::Result<()> {
    let head: Option<(i64, String)> = tx
        .query_row("SELECT seq, hash FROM audit_head WHERE one = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match head {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let detail = detail.to_string();
    let at = at_ms as i64;
    let hash = entry_hash(&prev, seq, at, actor, action, bag, &detail);
    tx.execute(
        "INSERT INTO audit (seq, at_ms, actor, action, bag, detail, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![seq, at, actor, action, bag, detail, prev, hash],
    )?;
    tx.execute(
        "INSERT INTO audit_head (one, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        params![seq, hash],
    )?;
    Ok(())
}

/// One entry as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Entry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub bag: Option<i64>,
    pub detail: String,
    pub prev: String,
    pub hash: String,
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// The last entry's sequence number and hash (what a supervisor writes down).
    pub head: Option<(i64, String)>,
    /// Every break in the chain, in order; empty when the trail is intact.
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Every entry, in `seq` order.
pub fn entries(conn: &Connection) -> rusqlite::Result<Vec<Entry>> {
    let mut st =
        conn.prepare("SELECT seq, at_ms, actor, action, bag, detail, prev, hash FROM audit ORDER BY seq")?;
    let rows = st.query_map([], |r| {
        Ok(Entry {
            seq: r.get(0)?,
            at_ms: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            bag: r.get(4)?,
            detail: r.get(5)?,
            prev: r.get(6)?,
            hash: r.get(7)?,
        })
    })?;
    rows.collect()
}

/// Walk the chain from the first entry; report each edited, missing or misplaced entry and a
/// cut tail. A broken link is reported once: the walk goes on from the stored hash.
pub fn verify(conn: &Connection) -> rusqlite::Result<Report> {
    let head: Option<(i64, String)> = conn
        .query_row("SELECT seq, hash FROM audit_head WHERE one = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(verify_chain(entries(conn)?, head))
}

/// [`verify`] over entries and a recorded head read from any database (the hub's PostgreSQL
/// records keep the same chain). A head of entry 0 is an empty trail's.
pub fn verify_chain(entries: impl IntoIterator<Item = Entry>, head: Option<(i64, String)>) -> Report {
    let head = head.filter(|(seq, _)| *seq != 0);
    let mut report = Report::default();
    let mut prev = GENESIS.to_string();
    let mut expected = 1i64;
    for e in entries {
        report.entries += 1;
        if e.seq != expected {
            if e.seq > expected {
                report
                    .problems
                    .push(format!("entries {expected}..{} are missing (deleted from the trail)", e.seq - 1));
            } else {
                report.problems.push(format!("entry {} appears out of order", e.seq));
            }
        } else if e.prev != prev {
            report.problems.push(format!(
                "entry {} does not follow entry {} (entries reordered, or one replaced)",
                e.seq,
                e.seq - 1
            ));
        }
        let h = entry_hash(&e.prev, e.seq, e.at_ms, &e.actor, &e.action, e.bag, &e.detail);
        if h != e.hash {
            report.problems.push(format!(
                "entry {} ({} by {}) was altered after it was written",
                e.seq, e.action, e.actor
            ));
        }
        prev = e.hash.clone();
        expected = e.seq + 1;
        report.head = Some((e.seq, e.hash));
    }
    match (&head, &report.head) {
        (Some((hs, hh)), Some((ls, lh))) if hs != ls || hh != lh => report.problems.push(format!(
            "the trail ends at entry {ls} but its recorded head is entry {hs}: entries removed from the end"
        )),
        (Some((hs, _)), None) => {
            report.problems.push(format!("the trail is empty but its recorded head is entry {hs}"))
        }
        (None, Some(_)) => report.problems.push("the trail's recorded head is missing".into()),
        _ => {}
    }
    report
}
