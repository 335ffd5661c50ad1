//! A publishing desk's decisions outbox (`run --hub URL --publish LINE`): the desk publishes its
//! own bags to the hub as a node does (the `published` table), and each agency that screens at
//! the desk sends its decision on such a bag to the hub once, the current one when it goes. A
//! decision with no `decisions_sent` row for its bag and agency has not reached the hub yet; one
//! made after the row's decision (the operator changed it) goes as a correction of the message
//! the row names, and the row then names the correction.

use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::{BagRow, Result, Store, StoreError, audit};
use crate::domain::inspection::{Annotation, Decision};

/// An agency's current decision on a published bag, not yet on the hub.
#[derive(Clone, Debug, PartialEq)]
pub struct UnsentDecision {
    pub bag: i64,
    /// The decision's row (what `decisions_sent` names).
    pub row: i64,
    pub decision: Decision,
    /// The scan it was taken on (the archive's checksum of the bag's scan file).
    pub scan_sha256: String,
    pub ended_ms: Option<u64>,
    /// The agency's marks on the bag, as they stand.
    pub marks: Vec<Annotation>,
    /// A correction: the decision stream sequence of the agency's decision the hub holds now
    /// (sent by this desk, or another station's that the desk took as its own).
    pub corrects: Option<u64>,
}

/// The agency's decision the hub holds once a desk's decision went (or met one there first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OnHub<'a> {
    /// Its decision stream sequence.
    pub stream_seq: u64,
    pub code: &'a str,
    /// The message it corrects on the hub, when it is a correction.
    pub corrects: Option<u64>,
    /// The station that decided, when it is another station's, which the desk keeps as the
    /// agency's (none: the desk's own, sent now or by an earlier round).
    pub station: Option<&'a str>,
}

impl Store {
    /// The archive's bags a desk publishes come after this one: the last bag it held when it
    /// first published (recorded then, with its audit entry; the same answer ever after).
    pub fn desk_publishing_since(&mut self, at_ms: u64, actor: &str) -> Result<i64> {
        self.write(|tx| {
            let since: Option<i64> = tx
                .query_row("SELECT since_bag FROM desk_publishing WHERE one = 1", [], |r| r.get(0))
                .optional()?;
            if let Some(since) = since {
                return Ok(since);
            }
            let since: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM bags", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO desk_publishing (one, since_bag, at_ms) VALUES (1, ?1, ?2)",
                params![since, at_ms as i64],
            )?;
            let detail = json!({ "since_bag": since, "earlier_bags_stay_here": true });
            audit::append(tx, at_ms, actor, "desk.publishing", None, &detail)?;
            Ok(since)
        })
    }

    /// A publishing desk's outbox: its complete bags after `since`, oldest first, at most `limit`,
    /// but never one taken from the hub, one replayed from a recording, or a training bag
    /// (projected threats).
    pub fn unpublished_desk(&self, since: i64, limit: usize) -> Result<Vec<BagRow>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM bags b WHERE b.id > ?1 AND b.state = 'complete'
                 AND b.source NOT LIKE 'replay:%'
                 AND NOT EXISTS (SELECT 1 FROM published p WHERE p.bag = b.id)
                 AND NOT EXISTS (SELECT 1 FROM hub_taken h WHERE h.bag = b.id)
                 AND NOT EXISTS (SELECT 1 FROM training t WHERE t.bag = b.id) ORDER BY b.id LIMIT ?2",
                super::prefixed_columns()
            ))
            .map_err(|e| self.e(e))?;
        let rows = st
            .query_map(params![since, limit.min(i64::MAX as usize) as i64], super::bag_row)
            .map_err(|e| self.e(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.e(e))
    }

    /// The current decisions of `agencies` on bags after `after` published to the hub that have
    /// not been sent there, oldest bag first, at most `limit` (the published bags are walked,
    /// each agency's current decision found by index): first decisions, and corrections of a
    /// decision sent before.
    pub fn unsent_decisions(
        &self,
        agencies: &[String],
        after: i64,
        limit: usize,
    ) -> Result<Vec<UnsentDecision>> {
        let agencies = serde_json::to_string(agencies).expect("strings serialise");
        let mut st = self
            .conn
            .prepare(
                "SELECT d.id, d.bag, d.agency, d.code, d.operator, d.at_ms, d.reason, b.scan_sha256, b.ended_ms,
                        s.stream_seq
                 FROM published p CROSS JOIN json_each(?1) a
                 JOIN decisions d ON d.id =
                   (SELECT MAX(e.id) FROM decisions e WHERE e.bag = p.bag AND e.agency = a.value)
                 JOIN bags b ON b.id = p.bag
                 LEFT JOIN decisions_sent s ON s.bag = p.bag AND s.agency = a.value
                 WHERE p.bag > ?2 AND (s.decision IS NULL OR s.decision < d.id)
                 ORDER BY p.bag, d.id LIMIT ?3",
            )
            .map_err(|e| self.e(e))?;
        let rows = st
            .query_map(params![agencies, after, limit.min(i64::MAX as usize) as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    Decision {
                        agency: r.get(2)?,
                        code: r.get(3)?,
                        operator: r.get(4)?,
                        at_ms: r.get::<_, i64>(5)? as u64,
                        reason: r.get(6)?,
                    },
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.e(e))?;
        rows.into_iter()
            .map(|(row, bag, decision, sha, ended, sent)| {
                let scan_sha256 =
                    sha.ok_or_else(|| StoreError::Bad(format!("bag {bag}: published without a scan")))?;
                // A bag whose record cannot be read goes without its marks rather than hold up
                // every decision behind it.
                let marks = match self.record(bag) {
                    Ok(r) => r.annotations.into_iter().filter(|a| a.agency == decision.agency).collect(),
                    Err(e) => {
                        tracing::warn!(bag, "its marks not read for the hub: {e}");
                        Vec::new()
                    }
                };
                Ok(UnsentDecision {
                    bag,
                    row,
                    decision,
                    scan_sha256,
                    ended_ms: ended.map(|e| e as u64),
                    marks,
                    corrects: sent.map(|s| s as u64),
                })
            })
            .collect()
    }

    /// The hub holds `on_hub` as the agency's decision on `d`'s bag: `d` itself, or what the
    /// archive's row `d.row` holds (the desk's earlier decision, or another station's kept as
    /// the agency's). Recorded once, with its audit entry (`decision.published`,
    /// `decision.correction_published`, or `decision.hub_kept` for another station's); a
    /// second call changes nothing. A later row replaces what the row said was on the hub.
    pub fn mark_decision_sent(
        &mut self,
        d: &UnsentDecision,
        on_hub: &OnHub,
        at_ms: u64,
        actor: &str,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT INTO decisions_sent (bag, agency, decision, stream_seq, hub_code, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (bag, agency) DO UPDATE SET decision = excluded.decision,
                   stream_seq = excluded.stream_seq, hub_code = excluded.hub_code, at_ms = excluded.at_ms
                 WHERE excluded.decision > decisions_sent.decision",
                params![d.bag, d.decision.agency, d.row, on_hub.stream_seq as i64, on_hub.code, at_ms as i64],
            )?;
            if n == 1 {
                let mut detail = json!({ "agency": d.decision.agency, "code": on_hub.code,
                                         "stream_seq": on_hub.stream_seq });
                if let Some(earlier) = on_hub.corrects {
                    detail["corrects"] = json!(earlier);
                }
                let action = match (on_hub.station, on_hub.corrects) {
                    (Some(station), _) => {
                        detail["station"] = json!(station);
                        "decision.hub_kept"
                    }
                    (None, Some(_)) => "decision.correction_published",
                    (None, None) => "decision.published",
                };
                audit::append(tx, at_ms, actor, action, Some(d.bag), &detail)?;
            }
            Ok(())
        })
    }

    /// The newest of `agency`'s decisions on `bag` taken at `at_ms` (the archive's row of a
    /// decision the hub holds: this desk's own, or the hub's kept here), if any.
    pub fn decision_row_at(&self, bag: i64, agency: &str, at_ms: u64) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT MAX(id) FROM decisions WHERE bag = ?1 AND agency = ?2 AND at_ms = ?3",
                params![bag, agency, at_ms as i64],
                |r| r.get(0),
            )
            .map_err(|e| self.e(e))
    }

    /// Decision `d` cannot go to the hub, ever (what it corrects is gone from the hub, or its
    /// subject there holds a message that is not a link of the agency's chain): marked so it is
    /// not tried again, with why in the audit trail (`decision.correction_refused`, or
    /// `decision.refused` for a first decision, which leaves the hub holding nothing of the
    /// desk's: `decision_sent` is then an empty code).
    pub fn mark_decision_refused(
        &mut self,
        d: &UnsentDecision,
        why: &str,
        at_ms: u64,
        actor: &str,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT INTO decisions_sent (bag, agency, decision, stream_seq, hub_code, at_ms)
                 VALUES (?1, ?2, ?3, 0, '', ?4)
                 ON CONFLICT (bag, agency) DO UPDATE SET decision = excluded.decision
                 WHERE excluded.decision > decisions_sent.decision",
                params![d.bag, d.decision.agency, d.row, at_ms as i64],
            )?;
            if n == 1 {
                let detail = json!({ "agency": d.decision.agency, "code": d.decision.code, "why": why });
                let action =
                    if d.corrects.is_some() { "decision.correction_refused" } else { "decision.refused" };
                audit::append(tx, at_ms, actor, action, Some(d.bag), &detail)?;
            }
            Ok(())
        })
    }

    /// The newest bag published to the hub (0: none).
    pub fn last_published(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT COALESCE(MAX(bag), 0) FROM published", [], |r| r.get(0))
            .map_err(|e| self.e(e))
    }

    /// The code the hub holds for `agency` on bag `bag` as this desk sent it (None: not sent).
    pub fn decision_sent(&self, bag: i64, agency: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT hub_code FROM decisions_sent WHERE bag = ?1 AND agency = ?2",
                params![bag, agency],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.e(e))
    }
}
