//! A central screening workstation's hub inbox (`run --hub`): the hub's bags taken into this
//! archive, so the screens open them as any archived bag, and each agency's decision on one once
//! the hub holds it (the decision's outbox: a decision recorded here with no `hub_decided` row
//! has not reached the hub yet).

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
    pub at_ms: u64,
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
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO hub_decided (bag, agency, code, operator, elsewhere, stream_seq, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![bag, agency, d.code, d.operator, d.elsewhere, d.stream_seq as i64, d.at_ms as i64],
            )?;
            if n == 1 {
                audit::append(
                    tx,
                    super::now_ms(),
                    &d.operator,
                    if d.elsewhere { "hub.decided_elsewhere" } else { "hub.decided" },
                    Some(bag),
                    &json!({ "agency": agency, "code": d.code, "stream_seq": d.stream_seq }),
                )?;
            }
            Ok(())
        })
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
