//! The hub's shared records in PostgreSQL (`--records postgres://...`): every bag a node
//! announced, every agency's one decision on it, its lane, each agency's findings at its
//! opening, and the same hash-chained audit trail as the
//! desk's archive, written by the nodes and stations themselves (no further service).
//!
//! Writes are idempotent: a bag or a decision is keyed by what names it across the hub (line,
//! node, bag; and the agency), so a redelivered message is one row and one audit entry. Audit
//! entries are appended under a row lock on the chain's head, so writers on many machines
//! extend one chain; the trail refuses UPDATE, DELETE and TRUNCATE (triggers), and
//! `audit verify --records` walks it with the desk's verifier.
//!
//! Owns: the PostgreSQL schema and its migrations (serialised by an advisory lock), the rows'
//! writes and reads, the chain. Must not import: egui, wgpu, the desk.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use tokio_postgres::{NoTls, Transaction};

use super::{BagAnnouncement, DecisionMsg};
use crate::files::store::audit::{self, Entry, GENESIS};

/// Schema versions, in order; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE hub_bags (
        line TEXT NOT NULL,
        node TEXT NOT NULL,
        bag BIGINT NOT NULL,
        scanner_bag BIGINT NOT NULL,
        item_id TEXT,
        profile TEXT NOT NULL,
        channels INTEGER NOT NULL,
        lines INTEGER NOT NULL,
        missing_lines INTEGER NOT NULL,
        truncated BOOLEAN NOT NULL,
        started_ms BIGINT NOT NULL,
        ended_ms BIGINT NOT NULL,
        scan_sha256 TEXT NOT NULL,
        stream_seq BIGINT NOT NULL,
        PRIMARY KEY (line, node, bag)
    );
    CREATE TABLE hub_decisions (
        agency TEXT NOT NULL,
        line TEXT NOT NULL,
        node TEXT NOT NULL,
        bag BIGINT NOT NULL,
        code TEXT NOT NULL,
        station TEXT NOT NULL,
        operator TEXT NOT NULL,
        level TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        held_ms BIGINT NOT NULL,
        reason TEXT,
        scan_sha256 TEXT NOT NULL,
        stream_seq BIGINT NOT NULL,
        PRIMARY KEY (agency, line, node, bag)
    );
    CREATE TABLE audit (
        seq BIGINT PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        bag BIGINT,
        detail TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE audit_head (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE FUNCTION twinspect_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$;
    CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION twinspect_append_only();
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION twinspect_append_only();
"#,
    r#"
    ALTER TABLE hub_decisions ADD COLUMN key TEXT, ADD COLUMN signature TEXT;
"#,
    r#"
    CREATE TABLE hub_lanes (
        line TEXT NOT NULL,
        node TEXT NOT NULL,
        bag BIGINT NOT NULL,
        lane TEXT,
        outcome TEXT NOT NULL,
        sent BOOLEAN NOT NULL,
        waiting_for TEXT NOT NULL,
        deadline_ms BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        PRIMARY KEY (line, node, bag)
    );
"#,
    r#"
    CREATE TABLE hub_findings (
        line TEXT NOT NULL,
        node TEXT NOT NULL,
        bag BIGINT NOT NULL,
        agency TEXT NOT NULL,
        operator TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        items TEXT NOT NULL,
        treatment TEXT,
        PRIMARY KEY (line, node, bag, agency, at_ms)
    );
"#,
    // The operator's marks that came with a decision: the JSON array as signed (so a
    // decision read back verifies), none when it had none.
    r#"
    ALTER TABLE hub_decisions ADD COLUMN marks TEXT;
"#,
    // Corrections: an agency's decision on a bag is a chain on the decision stream, the first
    // (corrects nothing) and each correction naming the message it replaces; every link is a
    // row (the writer role still only inserts), the current one the latest on the stream. A
    // parcel's lanes likewise: its first, then any that replaced it before the divert point.
    r#"
    ALTER TABLE hub_decisions ADD COLUMN corrects BIGINT;
    ALTER TABLE hub_decisions DROP CONSTRAINT hub_decisions_pkey;
    ALTER TABLE hub_decisions ADD PRIMARY KEY (agency, line, node, bag, stream_seq);
    CREATE UNIQUE INDEX hub_decisions_first ON hub_decisions (agency, line, node, bag)
        WHERE corrects IS NULL;
    CREATE UNIQUE INDEX hub_decisions_chain ON hub_decisions (agency, line, node, bag, corrects)
        WHERE corrects IS NOT NULL;
    ALTER TABLE hub_lanes ADD COLUMN replaces TEXT;
    ALTER TABLE hub_lanes DROP CONSTRAINT hub_lanes_pkey;
    ALTER TABLE hub_lanes ADD PRIMARY KEY (line, node, bag, at_ms);
    CREATE UNIQUE INDEX hub_lanes_first ON hub_lanes (line, node, bag) WHERE replaces IS NULL;
"#,
];

/// Any number the migrations' advisory lock is known by.
const MIGRATION_LOCK: i64 = 0x7477_696e_7370_6563;

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("records URL {0:?}: expected postgres://USER@HOST:PORT/DATABASE")]
    Url(String),
    #[error("records: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("records: schema {found}, this Twinspect knows {known}: upgrade Twinspect")]
    NewerSchema { found: i32, known: usize },
    #[error(
        "records: the schema is at version {found} of {known} and this role may not change it ({why}): \
         the hub's administrator runs `twinspect hub setup --records <owner's URL> --writer <this role>`"
    )]
    NotSetUp { found: i32, known: usize, why: String },
    #[error("records: role {0:?}: a PostgreSQL role name (lower-case letters, digits, '_')")]
    Role(String),
}

type Result<T> = std::result::Result<T, RecordsError>;

/// A connection to the hub's records.
pub struct Records {
    client: tokio_postgres::Client,
}

/// A bag with every agency's decision, as `bags --records --json` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HubBag {
    pub line: String,
    pub node: String,
    pub bag: i64,
    pub item_id: Option<String>,
    pub lines: i32,
    pub ended_ms: i64,
    pub scan_sha256: String,
    pub decisions: BTreeMap<String, HubDecision>,
    /// What the line's sorter was told, when the line has one.
    pub lane: Option<HubLane>,
    /// Each agency's findings at the opening, the latest record (none: not opened, or not yet).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub findings: BTreeMap<String, crate::domain::inspection::Findings>,
}

/// A parcel's lane (none when its deadline passed before the lane could go: the sorter's
/// default, manual).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HubLane {
    pub lane: Option<String>,
    pub outcome: String,
    pub sent: bool,
    /// The lane it replaced (a decision corrected before the divert point).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HubDecision {
    pub code: String,
    pub station: String,
    pub operator: String,
    pub level: String,
    pub at_ms: i64,
    /// Why the agency's decision was changed (a correction), or the operator's note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The operator's marks that came with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<super::HubMark>,
    /// The agency's earlier decisions on the bag, each replaced by a correction, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub corrected: Vec<HubEarlier>,
}

/// An agency's decision on a bag that a correction replaced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HubEarlier {
    pub code: String,
    pub station: String,
    pub operator: String,
    pub at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The hub's records as a station writes them: connected when first needed, and again once the
/// connection has closed (a restarted database).
pub struct StationRecords {
    url: String,
    conn: Option<Records>,
}

impl StationRecords {
    /// Connect later, at the first write.
    pub fn new(url: &str) -> StationRecords {
        StationRecords { url: url.into(), conn: None }
    }

    /// Connect now (a wrong URL or role is said at the start).
    pub async fn connect(url: &str) -> Result<StationRecords> {
        Ok(StationRecords { url: url.into(), conn: Some(Records::connect(url).await?) })
    }

    /// A bag a station `by` finished (at `bag_seq` of the bag stream) and the agency's decision
    /// on it (at `seq` of the decision stream), each once however often this is called.
    pub async fn record_decided(
        &mut self,
        bag: &BagAnnouncement,
        bag_seq: u64,
        by: &str,
        d: &DecisionMsg,
        seq: u64,
    ) -> Result<()> {
        if self.conn.as_ref().is_none_or(|r| r.is_closed()) {
            self.conn = None;
            self.conn = Some(Records::connect(&self.url).await?);
        }
        let r = self.conn.as_mut().expect("connected");
        r.record_bag(bag, bag_seq, by).await?;
        r.record_decision(d, seq).await?;
        Ok(())
    }

    /// A decision (a correction) on a bag the records hold already.
    pub async fn record_decision(&mut self, d: &DecisionMsg, seq: u64) -> Result<()> {
        if self.conn.as_ref().is_none_or(|r| r.is_closed()) {
            self.conn = None;
            self.conn = Some(Records::connect(&self.url).await?);
        }
        self.conn.as_mut().expect("connected").record_decision(d, seq).await?;
        Ok(())
    }
}

impl Records {
    /// Connect (on the current tokio runtime) and bring the schema up to date.
    pub async fn connect(url: &str) -> Result<Records> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(RecordsError::Url(url.into()));
        }
        let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!("records: connection lost: {e}");
            }
        });
        let mut r = Records { client };
        r.migrate().await?;
        Ok(r)
    }

    /// True once the connection has gone (reconnect with [`Records::connect`]).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The schema's version, None before the first migration.
    async fn schema_version(&self) -> Result<Option<i32>> {
        let exists: Option<String> =
            self.client.query_one("SELECT to_regclass('twinspect_schema')::text", &[]).await?.get(0);
        if exists.is_none() {
            return Ok(None);
        }
        Ok(self.client.query_opt("SELECT version FROM twinspect_schema", &[]).await?.map(|r| r.get(0)))
    }

    async fn migrate(&mut self) -> Result<()> {
        // Up to date: nothing to create or lock, so a writer role that may not create tables
        // connects as well as the owner.
        let known = MIGRATIONS.len();
        let before = self.schema_version().await?;
        match before {
            Some(v) if v as usize == known => return Ok(()),
            Some(found) if found as usize > known => return Err(RecordsError::NewerSchema { found, known }),
            _ => {}
        }
        self.migrate_locked().await.map_err(|e| match e {
            RecordsError::Db(db)
                if db.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
            {
                let why = db.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| db.to_string());
                RecordsError::NotSetUp { found: before.unwrap_or(0), known, why }
            }
            other => other,
        })
    }

    /// Let `role` write records and nothing more: read every table, add bags, decisions and
    /// audit entries, move the chain's head; no UPDATE, DELETE or TRUNCATE of the trail (and,
    /// not owning the tables, no dropping their triggers). Run as the tables' owner.
    pub async fn grant_writer(&mut self, role: &str, actor: &str) -> Result<()> {
        let ok = (1..=63).contains(&role.len())
            && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(RecordsError::Role(role.into()));
        }
        let tx = self.client.transaction().await?;
        let schema: String = tx.query_one("SELECT current_schema()", &[]).await?.get(0);
        let schema = format!("\"{}\"", schema.replace('"', "\"\""));
        tx.batch_execute(&format!(
            "GRANT USAGE ON SCHEMA {schema} TO \"{role}\";
             GRANT SELECT ON twinspect_schema TO \"{role}\";
             GRANT SELECT, INSERT ON hub_bags, hub_decisions, hub_lanes, hub_findings, audit TO \"{role}\";
             GRANT SELECT, UPDATE ON audit_head TO \"{role}\";"
        ))
        .await?;
        append(&tx, crate::unix_ms(), actor, "records.writer", &json!({ "role": role })).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn migrate_locked(&mut self) -> Result<()> {
        let tx = self.client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS twinspect_schema (version INTEGER NOT NULL)").await?;
        let found: i32 = match tx.query_opt("SELECT version FROM twinspect_schema", &[]).await? {
            Some(r) => r.get(0),
            None => {
                tx.execute("INSERT INTO twinspect_schema (version) VALUES (0)", &[]).await?;
                0
            }
        };
        if found as usize > MIGRATIONS.len() {
            return Err(RecordsError::NewerSchema { found, known: MIGRATIONS.len() });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.batch_execute(sql).await?;
            if i == 0 {
                tx.execute("INSERT INTO audit_head (one, seq, hash) VALUES (1, 0, $1)", &[&GENESIS]).await?;
            }
            let v = (i + 1) as i32;
            tx.execute("UPDATE twinspect_schema SET version = $1", &[&v]).await?;
            append(&tx, crate::unix_ms(), "(system)", "schema.migrate", &json!({ "to": v })).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A bag as announced on the hub (stream sequence `seq`); true when this call recorded it.
    pub async fn record_bag(&mut self, a: &BagAnnouncement, seq: u64, actor: &str) -> Result<bool> {
        let tx = self.client.transaction().await?;
        let n = tx
            .execute(
                "INSERT INTO hub_bags (line, node, bag, scanner_bag, item_id, profile, channels, lines,
                   missing_lines, truncated, started_ms, ended_ms, scan_sha256, stream_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (line, node, bag) DO NOTHING",
                &[
                    &a.line,
                    &a.node,
                    &a.bag,
                    &(a.scanner_bag as i64),
                    &a.item_id,
                    &a.profile,
                    &(a.channels as i32),
                    &(a.lines as i32),
                    &(a.missing_rows.len() as i32),
                    &a.truncated,
                    &(a.started_ms as i64),
                    &(a.ended_ms as i64),
                    &a.scan.sha256,
                    &(seq as i64),
                ],
            )
            .await?;
        if n == 1 {
            let detail = json!({ "bag": format!("{}.{}.{}", a.line, a.node, a.bag), "item_id": a.item_id,
                                 "lines": a.lines, "scan_sha256": a.scan.sha256, "stream_seq": seq });
            append(&tx, crate::unix_ms(), actor, "bag.announced", &detail).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// An agency's decision (decision stream sequence `seq`), or its correction; true when
    /// this call recorded it, false when it was already there (sent again: one row). The
    /// agency's current decision is its latest on the stream.
    pub async fn record_decision(&mut self, d: &DecisionMsg, seq: u64) -> Result<bool> {
        let marks = (!d.marks.is_empty()).then(|| serde_json::to_string(&d.marks).expect("marks serialise"));
        let tx = self.client.transaction().await?;
        let n = tx
            .execute(
                "INSERT INTO hub_decisions (agency, line, node, bag, code, station, operator, level, at_ms,
                   held_ms, reason, scan_sha256, stream_seq, key, signature, marks, corrects)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
                 ON CONFLICT DO NOTHING",
                &[
                    &d.agency,
                    &d.line,
                    &d.node,
                    &d.bag,
                    &d.code,
                    &d.station,
                    &d.operator,
                    &d.level,
                    &(d.at_ms as i64),
                    &(d.held_ms as i64),
                    &d.reason,
                    &d.scan_sha256,
                    &(seq as i64),
                    &d.key,
                    &d.signature,
                    &marks,
                    &d.corrects.map(|c| c as i64),
                ],
            )
            .await?;
        if n == 1 {
            let mut detail = json!({ "bag": format!("{}.{}.{}", d.line, d.node, d.bag), "agency": d.agency,
                                 "code": d.code, "station": d.station, "level": d.level, "stream_seq": seq,
                                 "marks": d.marks.len() });
            let action = match d.corrects {
                Some(earlier) => {
                    detail["corrects"] = json!(earlier);
                    "decision.corrected"
                }
                None => "decision",
            };
            append(&tx, d.at_ms, &d.operator, action, &detail).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// A parcel's lane as its node sent it to the sorter (`sent` false: its deadline passed
    /// first, the sorter's default); true when this call recorded it.
    pub async fn record_lane(&mut self, m: &super::sorter::SortMsg, sent: bool, actor: &str) -> Result<bool> {
        let tx = self.client.transaction().await?;
        let lane = sent.then(|| m.lane.clone());
        let n = tx
            .execute(
                "INSERT INTO hub_lanes (line, node, bag, lane, outcome, sent, waiting_for, deadline_ms, at_ms,
                   replaces)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                &[
                    &m.line,
                    &m.node,
                    &m.bag,
                    &lane,
                    &m.outcome,
                    &sent,
                    &m.waiting_for.join(","),
                    &(m.deadline_ms as i64),
                    &(m.at_ms as i64),
                    &m.replaces,
                ],
            )
            .await?;
        if n == 1 {
            let manual = m.outcome == "manual" || !sent;
            let mut detail = json!({ "bag": format!("{}.{}.{}", m.line, m.node, m.bag), "lane": lane,
                                 "outcome": m.outcome, "sent": sent, "waiting_for": m.waiting_for });
            let action = match &m.replaces {
                Some(earlier) => {
                    detail["replaces"] = json!(earlier);
                    "bag.rerouted"
                }
                None if manual => "bag.manual_lane",
                None => "bag.sorted",
            };
            append(&tx, m.at_ms, actor, action, &detail).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// An agency's findings at a bag's opening, as the bench beside the bag's node recorded
    /// them; true when this call recorded them (a record sent again is one row).
    pub async fn record_findings(
        &mut self,
        line: &str,
        node: &str,
        bag: i64,
        f: &crate::domain::inspection::Findings,
        actor: &str,
    ) -> Result<bool> {
        let tx = self.client.transaction().await?;
        let items = serde_json::to_string(&f.items).expect("findings serialise");
        let n = tx
            .execute(
                "INSERT INTO hub_findings (line, node, bag, agency, operator, at_ms, items, treatment)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (line, node, bag, agency, at_ms) DO NOTHING",
                &[&line, &node, &bag, &f.agency, &f.operator, &(f.at_ms as i64), &items, &f.treatment],
            )
            .await?;
        if n == 1 {
            let detail = json!({ "bag": format!("{line}.{node}.{bag}"), "agency": f.agency,
                                 "operator": f.operator, "items": f.items, "treatment": f.treatment });
            append(&tx, f.at_ms, actor, "findings", &detail).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Every bag with every agency's decision, by line, node and bag.
    pub async fn bags(&self) -> Result<Vec<HubBag>> {
        let rows = self
            .client
            .query(
                "SELECT b.line, b.node, b.bag, b.item_id, b.lines, b.ended_ms, b.scan_sha256,
                        d.agency, d.code, d.station, d.operator, d.level, d.at_ms,
                        l.lane, l.outcome, l.sent, d.marks, l.replaces, d.reason
                 FROM hub_bags b
                      LEFT JOIN (SELECT DISTINCT ON (agency, line, node, bag) * FROM hub_decisions
                                 ORDER BY agency, line, node, bag, stream_seq DESC) d USING (line, node, bag)
                      LEFT JOIN (SELECT DISTINCT ON (line, node, bag) * FROM hub_lanes
                                 ORDER BY line, node, bag, at_ms DESC) l USING (line, node, bag)
                 ORDER BY b.line, b.node, b.bag, d.agency",
                &[],
            )
            .await?;
        let mut out: Vec<HubBag> = Vec::new();
        for r in rows {
            let key: (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            if out.last().is_none_or(|b| (&b.line, &b.node, b.bag) != (&key.0, &key.1, key.2)) {
                out.push(HubBag {
                    line: key.0,
                    node: key.1,
                    bag: key.2,
                    item_id: r.get(3),
                    lines: r.get(4),
                    ended_ms: r.get(5),
                    scan_sha256: r.get(6),
                    decisions: BTreeMap::new(),
                    lane: r.get::<_, Option<String>>(14).map(|outcome| HubLane {
                        lane: r.get(13),
                        outcome,
                        sent: r.get(15),
                        replaces: r.get(17),
                    }),
                    findings: BTreeMap::new(),
                });
            }
            if let Some(agency) = r.get::<_, Option<String>>(7) {
                let d = HubDecision {
                    code: r.get(8),
                    station: r.get(9),
                    operator: r.get(10),
                    level: r.get(11),
                    at_ms: r.get(12),
                    reason: r.get(18),
                    marks: marks_of(r.get(16)),
                    corrected: Vec::new(),
                };
                out.last_mut().expect("pushed above").decisions.insert(agency, d);
            }
        }
        // (The database's collation orders names its own way: found by name, not by search.)
        let at: std::collections::HashMap<(String, String, i64), usize> =
            out.iter().enumerate().map(|(i, b)| ((b.line.clone(), b.node.clone(), b.bag), i)).collect();
        // Decisions that corrections replaced: every row of an agency's chain but its latest.
        let rows = self
            .client
            .query(
                "SELECT d.line, d.node, d.bag, d.agency, d.code, d.station, d.operator, d.at_ms, d.reason
                 FROM hub_decisions d
                 WHERE EXISTS (SELECT 1 FROM hub_decisions c WHERE (c.agency, c.line, c.node, c.bag)
                               = (d.agency, d.line, d.node, d.bag) AND c.stream_seq > d.stream_seq)
                 ORDER BY d.stream_seq",
                &[],
            )
            .await?;
        for r in rows {
            let key: (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            let Some(&i) = at.get(&key) else { continue };
            let agency: String = r.get(3);
            if let Some(d) = out[i].decisions.get_mut(&agency) {
                d.corrected.push(HubEarlier {
                    code: r.get(4),
                    station: r.get(5),
                    operator: r.get(6),
                    at_ms: r.get(7),
                    reason: r.get(8),
                });
            }
        }
        // Each agency's latest findings.
        let rows = self
            .client
            .query(
                "SELECT DISTINCT ON (line, node, bag, agency) line, node, bag, agency, operator, at_ms, items,
                        treatment
                 FROM hub_findings ORDER BY line, node, bag, agency, at_ms DESC",
                &[],
            )
            .await?;
        for r in rows {
            let key: (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            let Some(&i) = at.get(&key) else { continue };
            let items: String = r.get(6);
            let f = crate::domain::inspection::Findings {
                agency: r.get(3),
                operator: r.get(4),
                at_ms: r.get::<_, i64>(5) as u64,
                items: serde_json::from_str(&items).unwrap_or_default(),
                treatment: r.get(7),
            };
            out[i].findings.insert(f.agency.clone(), f);
        }
        Ok(out)
    }

    /// The trail, checked as the desk's archive is.
    pub async fn verify_audit(&self) -> Result<audit::Report> {
        let rows = self
            .client
            .query("SELECT seq, at_ms, actor, action, bag, detail, prev, hash FROM audit ORDER BY seq", &[])
            .await?;
        let entries = rows.into_iter().map(|r| Entry {
            seq: r.get(0),
            at_ms: r.get(1),
            actor: r.get(2),
            action: r.get(3),
            bag: r.get(4),
            detail: r.get(5),
            prev: r.get(6),
            hash: r.get(7),
        });
        let head = self
            .client
            .query_opt("SELECT seq, hash FROM audit_head WHERE one = 1", &[])
            .await?
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
        Ok(audit::verify_chain(entries.collect::<Vec<_>>(), head))
    }

    /// Every agency's decision on every bag, as the stations published them (signature and all),
    /// corrections included (each after the decision it replaced).
    pub async fn decisions(&self) -> Result<Vec<DecisionMsg>> {
        let rows = self
            .client
            .query(
                "SELECT agency, code, station, operator, level, line, node, bag, scan_sha256, at_ms, held_ms,
                        reason, key, signature, marks, corrects
                 FROM hub_decisions ORDER BY line, node, bag, agency, stream_seq",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| DecisionMsg {
                format: super::FORMAT,
                agency: r.get(0),
                code: r.get(1),
                station: r.get(2),
                operator: r.get(3),
                level: r.get(4),
                line: r.get(5),
                node: r.get(6),
                bag: r.get(7),
                scan_sha256: r.get(8),
                at_ms: r.get::<_, i64>(9) as u64,
                held_ms: r.get::<_, i64>(10) as u64,
                reason: r.get(11),
                key: r.get(12),
                signature: r.get(13),
                marks: marks_of(r.get(14)),
                corrects: r.get::<_, Option<i64>>(15).map(|c| c as u64),
            })
            .collect())
    }

    /// The raw client, for tests and `psql`-like checks.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }
}

/// A decision's marks as stored (JSON); none when absent or unreadable (written by us, as sent).
fn marks_of(text: Option<String>) -> Vec<super::HubMark> {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// One audit entry inside the caller's transaction, after the head's row lock (writers on other
/// machines wait their turn, so the chain stays one chain).
async fn append(
    tx: &Transaction<'_>,
    at_ms: u64,
    actor: &str,
    action: &str,
    detail: &serde_json::Value,
) -> std::result::Result<(), tokio_postgres::Error> {
    let head = tx.query_one("SELECT seq, hash FROM audit_head WHERE one = 1 FOR UPDATE", &[]).await?;
    let (seq, prev): (i64, String) = (head.get::<_, i64>(0) + 1, head.get(1));
    let detail = detail.to_string();
    let at = at_ms as i64;
    let hash = audit::entry_hash(&prev, seq, at, actor, action, None, &detail);
    tx.execute(
        "INSERT INTO audit (seq, at_ms, actor, action, bag, detail, prev, hash)
         VALUES ($1, $2, $3, $4, NULL, $5, $6, $7)",
        &[&seq, &at, &actor, &action, &detail, &prev, &hash],
    )
    .await?;
    tx.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE one = 1", &[&seq, &hash]).await?;
    Ok(())
}
