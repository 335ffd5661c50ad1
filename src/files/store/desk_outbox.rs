//! A publishing desk's decisions outbox (`run --hub URL --publish LINE`): the desk publishes its
//! own bags to the hub as a node does (the `published` table), and each agency that screens at
//! the desk sends its decision on such a bag to the hub once, the current one when it goes. A
//! decision with no `decisions_sent` row for its bag and agency has not reached the hub yet; a
//! change made after it did stays in this archive (the hub keeps an agency's first decision, as
//! it does for every station).

use rusqlite::params;
use serde_json::json;

use super::{Result, Store, StoreError, audit};
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
}

impl Store {
    /// The current decisions of `agencies` on bags published to the hub that have not been sent
    /// there, oldest first, at most `limit`.
    pub fn unsent_decisions(&self, agencies: &[String], limit: usize) -> Result<Vec<UnsentDecision>> {
        let agencies = serde_json::to_string(agencies).expect("strings serialise");
        let mut st = self
            .conn
            .prepare(
                "SELECT d.id, d.bag, d.agency, d.code, d.operator, d.at_ms, d.reason, b.scan_sha256, b.ended_ms
                 FROM decisions d JOIN bags b ON b.id = d.bag
                 WHERE d.agency IN (SELECT value FROM json_each(?1))
                 AND EXISTS (SELECT 1 FROM published p WHERE p.bag = d.bag)
                 AND d.id = (SELECT MAX(e.id) FROM decisions e WHERE e.bag = d.bag AND e.agency = d.agency)
                 AND NOT EXISTS (SELECT 1 FROM decisions_sent s WHERE s.bag = d.bag AND s.agency = d.agency)
                 ORDER BY d.id LIMIT ?2",
            )
            .map_err(|e| self.e(e))?;
        let rows = st
            .query_map(params![agencies, limit.min(i64::MAX as usize) as i64], |r| {
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
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.e(e))?;
        rows.into_iter()
            .map(|(row, bag, decision, sha, ended)| {
                let scan_sha256 =
                    sha.ok_or_else(|| StoreError::Bad(format!("bag {bag}: published without a scan")))?;
                let marks = self
                    .record(bag)?
                    .annotations
                    .into_iter()
                    .filter(|a| a.agency == decision.agency)
                    .collect();
                Ok(UnsentDecision {
                    bag,
                    row,
                    decision,
                    scan_sha256,
                    ended_ms: ended.map(|e| e as u64),
                    marks,
                })
            })
            .collect()
    }

    /// Decision `d` reached the hub as message `stream_seq` of its decision stream; `hub_code`
    /// is the code the hub holds for the agency (another than `d`'s when the hub had one
    /// first). Recorded once, with its audit entry; a second call changes nothing.
    pub fn mark_decision_sent(
        &mut self,
        d: &UnsentDecision,
        stream_seq: u64,
        hub_code: &str,
        at_ms: u64,
        actor: &str,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO decisions_sent (bag, agency, decision, stream_seq, hub_code, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![d.bag, d.decision.agency, d.row, stream_seq as i64, hub_code, at_ms as i64],
            )?;
            if n == 1 {
                let detail = json!({ "agency": d.decision.agency, "code": d.decision.code,
                                     "hub_code": hub_code, "stream_seq": stream_seq });
                audit::append(tx, at_ms, actor, "decision.published", Some(d.bag), &detail)?;
            }
            Ok(())
        })
    }

    /// The code the hub holds for `agency` on bag `bag` as this desk sent it (None: not sent).
    pub fn decision_sent(&self, bag: i64, agency: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
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
