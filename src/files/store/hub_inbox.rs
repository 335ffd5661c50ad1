//! A central screening workstation's hub inbox (`run --hub`): the hub's bags taken into this
//! archive, so the screens open them as any archived bag, and each agency's decision on one once
//! the hub holds it (the decision's outbox: a decision recorded here with no `hub_decided` row
//! has not reached the hub yet; one in force here that is not the one the row names - another
//! time - was changed after, and goes to the hub as a correction).

use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::{BagStart, Complete, Result, Store, StoreError, audit, calibration_json, scan_rel, write_synced};
use crate::domain::calib::Calibration;

/// A bag's name across the hub: the node's line, the node, and the node's archive id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HubBag {
    pub line: String,
    pub node: String,
    pub bag: i64,
}

impl std::fmt::Display for HubBag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.line, self.node, self.bag)
    }
}

/// An agency's decision on a hub bag as the hub holds it: this workstation's, or one another
/// station of the agency recorded first (`elsewhere`).
#[derive(Clone, Debug, PartialEq)]
pub struct HubDecided {
    pub code: String,
    pub operator: String,
    pub elsewhere: bool,
    /// Its position in the hub's decision stream.
    pub stream_seq: u64,
    /// The time of the decision in force here that the hub holds (this archive's own for a
    /// decision of this workstation's, the hub's for one taken from it): a decision in force
    /// of another time was changed after.
    pub at_ms: u64,
}

/// An agency's decision on a hub bag changed here after the hub had one: what to send.
#[derive(Clone, Debug, PartialEq)]
pub struct HubChanged {
    /// The archive's id of the bag.
    pub bag: i64,
    pub hub: HubBag,
    pub scan_sha256: String,
    /// The decision in force here.
    pub decision: crate::domain::inspection::Decision,
    /// The hub's message it corrects.
    pub corrects: u64,
}

impl Store {
    /// Take a bag from the hub into this archive: `scan` (the hub's two-page TIFF, its SHA-256
    /// already checked against the announcement) kept byte for byte, the bag complete with its
    /// calibration. A bag taken before (the hub delivered it again) is not taken twice: its
    /// archive id, and `false`.
    #[allow(clippy::too_many_arguments)]
    pub fn take_hub_bag(
        &mut self,
        hub: &HubBag,
        start: &BagStart,
        scan: &[u8],
        calibration: &Calibration,
        missing_rows: &[usize],
        truncated: bool,
        ended_ms: u64,
        actor: &str,
    ) -> Result<(i64, bool)> {
        if let Some(id) = self.hub_taken(hub)? {
            return Ok((id, false));
        }
        let frame = crate::files::io::raw_tiff_from_bytes(scan, &format!("hub bag {hub}"))
            .map_err(|e| StoreError::Bad(e.to_string()))?;
        if frame.channels() != start.channels || calibration.dark_low.len() != start.channels {
            return Err(StoreError::Bad(format!(
                "hub bag {hub}: {} channels in the scan, {} in the calibration, {} announced",
                frame.channels(),
                calibration.dark_low.len(),
                start.channels
            )));
        }
        let id = self.begin_bag(start, actor)?;
        let rel = scan_rel(id);
        write_synced(&self.dir.join(&rel), scan)?;
        let sha = super::hex_sha256(scan);
        let calib = calibration_json(calibration);
        let done = Complete {
            id,
            ended_ms,
            lines: frame.lines(),
            missing_rows,
            truncated,
            rel: &rel,
            sha: &sha,
            calibration: &calib,
        };
        self.write(|tx| {
            tx.execute(
                "INSERT INTO hub_taken (bag, line, node, hub_bag) VALUES (?1, ?2, ?3, ?4)",
                params![id, hub.line, hub.node, hub.bag],
            )?;
            done.apply(tx, super::now_ms(), actor, "bag.from_hub", json!({ "hub_bag": hub.to_string() }))
        })?;
        Ok((id, true))
    }

    /// The archive id of hub bag `hub`, when this archive took it.
    pub fn hub_taken(&self, hub: &HubBag) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT bag FROM hub_taken WHERE line = ?1 AND node = ?2 AND hub_bag = ?3",
                params![hub.line, hub.node, hub.bag],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.e(e))
    }

    /// Which hub bag archive bag `bag` is, when it came from the hub.
    pub fn hub_bag(&self, bag: i64) -> Result<Option<HubBag>> {
        self.conn
            .query_row("SELECT line, node, hub_bag FROM hub_taken WHERE bag = ?1", [bag], |r| {
                Ok(HubBag { line: r.get(0)?, node: r.get(1)?, bag: r.get(2)? })
            })
            .optional()
            .map_err(|e| self.e(e))
    }

    /// The agency's decision on hub bag `bag` (the archive's id) reached the hub, as `d`.
    pub fn record_hub_decided(&mut self, bag: i64, agency: &str, d: &HubDecided) -> Result<()> {
        let sql =
            "INSERT OR IGNORE INTO hub_decided (bag, agency, code, operator, elsewhere, stream_seq, at_ms)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
        self.put_hub_decided(sql, bag, agency, d, ["hub.decided", "hub.decided_elsewhere"])
    }

    /// What the hub holds for `agency` on `bag` into `hub_decided` by `sql` (parameters: bag,
    /// agency, code, operator, elsewhere, stream sequence, time), audited as `actions` (this
    /// workstation's, another station's) when it changed a row.
    fn put_hub_decided(
        &mut self,
        sql: &str,
        bag: i64,
        agency: &str,
        d: &HubDecided,
        actions: [&str; 2],
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                sql,
                params![bag, agency, d.code, d.operator, d.elsewhere, d.stream_seq as i64, d.at_ms as i64],
            )?;
            if n == 1 {
                audit::append(
                    tx,
                    super::now_ms(),
                    &d.operator,
                    actions[usize::from(d.elsewhere)],
                    Some(bag),
                    &json!({ "agency": agency, "code": d.code, "stream_seq": d.stream_seq }),
                )?;
            }
            Ok(())
        })
    }

    /// Hub bags after `after` on which `agency`'s decision in force here is not the one the hub
    /// holds (an operator changed it after it went), oldest first, at most `limit`.
    pub fn hub_changed(&self, agency: &str, after: i64, limit: usize) -> Result<Vec<HubChanged>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT h.bag, t.line, t.node, t.hub_bag, b.scan_sha256, d.code, d.operator, d.at_ms, d.reason,
                        h.stream_seq
                 FROM hub_decided h JOIN hub_taken t ON t.bag = h.bag JOIN bags b ON b.id = h.bag
                 JOIN decisions d ON d.id =
                   (SELECT MAX(e.id) FROM decisions e WHERE e.bag = h.bag AND e.agency = h.agency)
                 WHERE h.agency = ?1 AND h.bag > ?2 AND d.at_ms != h.at_ms
                 ORDER BY h.bag LIMIT ?3",
            )
            .map_err(|e| self.e(e))?;
        let rows = st
            .query_map(params![agency, after, limit.min(i64::MAX as usize) as i64], |r| {
                Ok(HubChanged {
                    bag: r.get(0)?,
                    hub: HubBag { line: r.get(1)?, node: r.get(2)?, bag: r.get(3)? },
                    scan_sha256: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    decision: crate::domain::inspection::Decision {
                        agency: agency.to_string(),
                        code: r.get(5)?,
                        operator: r.get(6)?,
                        at_ms: r.get::<_, i64>(7)? as u64,
                        reason: r.get(8)?,
                    },
                    corrects: r.get::<_, i64>(9)? as u64,
                })
            })
            .map_err(|e| self.e(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.e(e))
    }

    /// The agency's decision on hub bag `bag` as the hub holds it after a correction: `d`
    /// (this workstation's correction, or `elsewhere` one the agency sent first). Recorded once
    /// per message, with its audit entry.
    pub fn record_hub_corrected(&mut self, bag: i64, agency: &str, d: &HubDecided) -> Result<()> {
        let sql =
            "UPDATE hub_decided SET code = ?3, operator = ?4, elsewhere = ?5, stream_seq = ?6, at_ms = ?7
                   WHERE bag = ?1 AND agency = ?2 AND stream_seq < ?6";
        self.put_hub_decided(sql, bag, agency, d, ["hub.corrected", "hub.corrected_elsewhere"])
    }

    /// A changed decision on hub bag `bag` that can never go to the hub (what it corrects is
    /// gone from the hub): not tried again, with why in the audit trail.
    pub fn hub_correction_refused(&mut self, bag: i64, agency: &str, at_ms: u64, why: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE hub_decided SET at_ms = ?3 WHERE bag = ?1 AND agency = ?2 AND at_ms != ?3",
                params![bag, agency, at_ms as i64],
            )?;
            if n == 1 {
                audit::append(
                    tx,
                    super::now_ms(),
                    "(hub link)",
                    "hub.correction_refused",
                    Some(bag),
                    &json!({ "agency": agency, "why": why }),
                )?;
            }
            Ok(())
        })
    }

    /// The newest hub bag this archive took (0: none).
    pub fn last_hub_taken(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT COALESCE(MAX(bag), 0) FROM hub_taken", [], |r| r.get(0))
            .map_err(|e| self.e(e))
    }

    /// The agency's decision on bag `bag` as the hub holds it, once it does.
    pub fn hub_decided(&self, bag: i64, agency: &str) -> Result<Option<HubDecided>> {
        self.conn
            .query_row(
                "SELECT code, operator, elsewhere, stream_seq, at_ms FROM hub_decided
                 WHERE bag = ?1 AND agency = ?2",
                params![bag, agency],
                |r| {
                    Ok(HubDecided {
                        code: r.get(0)?,
                        operator: r.get(1)?,
                        elsewhere: r.get(2)?,
                        stream_seq: r.get::<_, i64>(3)? as u64,
                        at_ms: r.get::<_, i64>(4)? as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| self.e(e))
    }
}
