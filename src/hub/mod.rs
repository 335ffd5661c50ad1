//! The hub: scanner nodes, central screening stations and shared records across machines, on
//! NATS JetStream (and, later, PostgreSQL). Nothing here is a broker: the NATS server is.
//!
//! Owns: the hub's URL (`nats://HOST:PORT[,HOST:PORT...]`), the names on the broker (stream,
//! subjects, object store bucket, object names) and the bag's announcement, the message a
//! scanner node publishes for each whole bag (its scan travels beside it in the object store,
//! checked by SHA-256), and the node's publisher ([`publish`]).
//!
//! Must not import: egui, wgpu, the desk, the sources (a node's capture loop feeds the archive;
//! the publisher reads the archive as its outbox).

pub mod access;
pub mod barcode;
pub mod bench;
pub mod chain;
pub mod decisions;
pub mod publish;
pub mod records;
pub mod screening;
pub mod sorter;
pub mod station;

use serde::{Deserialize, Serialize};

/// The stream that holds every bag's announcement (limits retention: every agency reads every
/// bag through a consumer of its own).
pub const STREAM: &str = "TWINSPECT_BAGS";
/// Subjects of the bag stream: `twinspect.bag.<line>.<node>.<bag>`.
pub const SUBJECT_ROOT: &str = "twinspect.bag";
/// The object store buckets that hold the scans (two-page 16-bit TIFF, as archived), one a
/// line: `twinspect-scans-<line>` ([`access::scans_bucket`]).
pub const SCANS_BUCKET: &str = "twinspect-scans";
/// The announcement's format version.
pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HubError {
    #[error("hub URL {0:?}: expected nats://HOST:PORT[,HOST:PORT...]")]
    Url(String),
    #[error("{what} {name:?}: 1 to 64 letters, digits, '-' or '_' (it becomes part of a NATS subject)")]
    Name { what: &'static str, name: String },
}

/// Where the broker is: one or more servers of a NATS cluster (the client moves to another one
/// when its server goes away).
#[derive(Clone, Debug, PartialEq)]
pub struct HubUrl {
    pub servers: Vec<String>,
}

impl HubUrl {
    pub fn parse(s: &str) -> Result<HubUrl, HubError> {
        let bad = || HubError::Url(s.to_string());
        let rest = s.strip_prefix("nats://").ok_or_else(bad)?;
        let mut servers = Vec::new();
        for part in rest.split(',') {
            let part = part.trim().strip_prefix("nats://").unwrap_or(part.trim());
            let (host, port) = part.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            let host_ok = !host.is_empty()
                && host.len() <= 253
                && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c));
            if !host_ok || port == 0 {
                return Err(bad());
            }
            servers.push(format!("nats://{host}:{port}"));
        }
        if servers.is_empty() || servers.len() > 16 {
            return Err(bad());
        }
        Ok(HubUrl { servers })
    }
}

/// A line or node name, checked to be one subject token.
pub fn check_name(what: &'static str, name: &str) -> Result<(), HubError> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(HubError::Name { what, name: name.to_string() }) }
}

/// The subject of one bag: one subject per bag, so the broker itself can refuse a second
/// announcement of it (expected last subject sequence 0) however long after the first.
pub fn bag_subject(line: &str, node: &str, bag: i64) -> String {
    format!("{SUBJECT_ROOT}.{line}.{node}.{bag}")
}

/// The object holding a bag's scan.
pub fn scan_object(line: &str, node: &str, bag: i64) -> String {
    format!("{line}/{node}/bag-{bag:08}.tiff")
}

/// The message id the broker's duplicate window also checks.
pub fn message_id(line: &str, node: &str, bag: i64) -> String {
    format!("{line}.{node}.{bag}")
}

/// The stream of every agency's decisions on hub bags.
pub const DECISIONS: &str = "TWINSPECT_DECISIONS";
/// Subjects of the decision stream: `twinspect.decision.<agency>.<line>.<node>.<bag>`.
pub const DECISION_ROOT: &str = "twinspect.decision";

/// The subject of one agency's decision on one bag: the broker keeps the first and refuses any
/// other (a station that held a bag too long and a second station that got it meanwhile cannot
/// both decide it). A correction goes on the same subject, published expecting the decision it
/// corrects to be the subject's last message, so corrections make one chain, never a fork.
pub fn decision_subject(agency: &str, line: &str, node: &str, bag: i64) -> String {
    format!("{DECISION_ROOT}.{agency}.{line}.{node}.{bag}")
}

/// An agency's decision on a hub bag, as a station publishes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionMsg {
    pub format: u32,
    pub agency: String,
    pub code: String,
    /// The station that decided, and the operator logged in there (a bot: `bot:<name>`).
    pub station: String,
    pub operator: String,
    /// Screening level: `L1` automatic, `L2` an operator, `L3` the opening bench.
    pub level: String,
    pub line: String,
    pub node: String,
    pub bag: i64,
    /// The scan the decision was taken on.
    pub scan_sha256: String,
    pub at_ms: u64,
    /// How long the bag was on the station (taken to decided).
    pub held_ms: u64,
    pub reason: Option<String>,
    /// The operator's marks on the bag for the agency (where to look at the opening), at most
    /// [`MAX_MARKS`]; signed with the decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<HubMark>,
    /// The deciding station's public key (`U...`), when the hub uses keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its Ed25519 signature (hex) over [`DecisionMsg::signed_bytes`]: which station decided
    /// can be proved from the records, not only claimed in `station`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// A correction: the decision stream sequence of the agency's decision on the bag that this
    /// one replaces (the subject's last message when it was published); signed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<u64>,
}

/// Most marks a decision carries.
pub const MAX_MARKS: usize = 100;

/// A mark on a hub bag as its decision carries it: where, what (the agency's category and the
/// operator's note), who and when. Coordinates are the bag's (line, channel).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HubMark {
    pub shape: crate::domain::inspection::Shape,
    pub category: String,
    pub note: String,
    pub operator: String,
    pub created_ms: u64,
}

impl HubMark {
    pub fn of(a: &crate::domain::inspection::Annotation) -> HubMark {
        HubMark {
            shape: a.shape.clone(),
            category: a.category.clone(),
            note: a.note.clone(),
            operator: a.operator.clone(),
            created_ms: a.edited_ms.unwrap_or(a.created_ms),
        }
    }
}

impl DecisionMsg {
    /// Whether its marks can be kept (a decision from the broker is never trusted): how many,
    /// each shape sound, category and note of sane length.
    pub fn check_marks(&self) -> Result<(), String> {
        if self.marks.len() > MAX_MARKS {
            return Err(format!("{} marks (at most {MAX_MARKS})", self.marks.len()));
        }
        for (i, m) in self.marks.iter().enumerate() {
            m.shape.validate().map_err(|e| format!("mark {}: {e}", i + 1))?;
            if m.category.is_empty() || m.category.chars().count() > 64 {
                return Err(format!("mark {}: a category of 1 to 64 characters", i + 1));
            }
            if m.note.chars().count() > crate::domain::inspection::MAX_NOTE_CHARS {
                return Err(format!(
                    "mark {}: a note over {} characters",
                    i + 1,
                    crate::domain::inspection::MAX_NOTE_CHARS
                ));
            }
        }
        Ok(())
    }

    /// What the station signs: the decision as JSON, key included, signature left out.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let unsigned = DecisionMsg { signature: None, ..self.clone() };
        serde_json::to_vec(&unsigned).expect("a decision serialises")
    }

    /// The key that signed this decision; None when it is unsigned; an error when the
    /// signature does not hold.
    pub fn signer(&self) -> Result<Option<&str>, String> {
        let (Some(key), Some(sig)) = (&self.key, &self.signature) else {
            return if self.key.is_none() && self.signature.is_none() {
                Ok(None)
            } else {
                Err("a key without a signature, or a signature without a key".into())
            };
        };
        let kp = nkeys::KeyPair::from_public_key(key).map_err(|e| format!("key {key}: {e}"))?;
        let sig = (0..sig.len() / 2)
            .map(|i| sig.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .filter(|b| b.len() == 64 && sig.len() == 128)
            .ok_or("the signature is not 64 bytes of hex")?;
        kp.verify(&self.signed_bytes(), &sig)
            .map_err(|_| "the signature does not match the decision".to_string())?;
        Ok(Some(key))
    }
}

/// Dark and air levels in force when the bag ended, per channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationMsg {
    pub dark_low: Vec<f32>,
    pub dark_high: Vec<f32>,
    pub air_low: Vec<f32>,
    pub air_high: Vec<f32>,
    pub full_scale: u16,
}

/// Where the scan is and how to check it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanRef {
    pub bucket: String,
    pub object: String,
    pub bytes: u64,
    /// Hex SHA-256 of the object's bytes (the archive's own checksum of the file).
    pub sha256: String,
    /// Two-page 16-bit TIFF: low energy, then high; a row per line, a column per channel.
    pub format: String,
}

/// What a scanner node says about a whole bag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BagAnnouncement {
    pub format: u32,
    pub line: String,
    pub node: String,
    /// The node's archive id: with line and node, the bag's name across the hub.
    pub bag: i64,
    pub scanner_bag: u64,
    /// Tag or barcode from the scanner, when it sent one.
    pub item_id: Option<String>,
    pub profile: String,
    pub source: String,
    pub channels: usize,
    pub lines: usize,
    /// Rows lost before they reached the node (placeholders, not image).
    pub missing_rows: Vec<usize>,
    pub truncated: bool,
    pub started_ms: u64,
    pub ended_ms: u64,
    pub calibration: CalibrationMsg,
    pub scan: ScanRef,
    /// Agencies that screen this bag at the scanner's own desk (a live desk that publishes,
    /// `run --publish`): their stations on the hub let it pass, and the desk sends their
    /// decisions. Empty from a node: every agency screens it on the hub.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screened_at_desk: Vec<String>,
}

/// Largest announcement a node sends or a station accepts (far under NATS's 1 MB default).
pub const MAX_ANNOUNCEMENT: usize = 512 * 1024;

impl BagAnnouncement {
    /// Decode and check an announcement from the broker (never trusted: sizes, names, counts).
    pub fn decode(bytes: &[u8]) -> Result<BagAnnouncement, String> {
        if bytes.len() > MAX_ANNOUNCEMENT {
            return Err(format!("announcement of {} bytes (limit {MAX_ANNOUNCEMENT})", bytes.len()));
        }
        let a: BagAnnouncement = serde_json::from_slice(bytes).map_err(|e| format!("announcement: {e}"))?;
        if a.format != FORMAT {
            return Err(format!("announcement format {} (this Twinspect reads {FORMAT})", a.format));
        }
        check_name("line", &a.line).map_err(|e| e.to_string())?;
        check_name("node", &a.node).map_err(|e| e.to_string())?;
        let c = &a.calibration;
        let per_channel = [c.dark_low.len(), c.dark_high.len(), c.air_low.len(), c.air_high.len()];
        if a.channels == 0 || a.channels > 16_384 || per_channel.iter().any(|&n| n != a.channels) {
            return Err(format!("announcement: {} channels, calibration of {per_channel:?}", a.channels));
        }
        let expected = 2 * 2 * a.channels as u64 * a.lines as u64;
        if a.lines == 0 || a.lines > 1 << 20 || a.scan.bytes < expected || a.scan.bytes > expected + (1 << 20)
        {
            return Err(format!(
                "announcement: {} lines of {} channels in a scan of {} bytes",
                a.lines, a.channels, a.scan.bytes
            ));
        }
        if a.scan.sha256.len() != 64 || !a.scan.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("announcement: the scan's SHA-256 is not 64 hex digits".into());
        }
        if a.missing_rows.iter().any(|&r| r >= a.lines) {
            return Err("announcement: a missing row beyond the bag".into());
        }
        if a.screened_at_desk.len() > 16 {
            return Err("announcement: more than 16 agencies screen it at its desk".into());
        }
        for agency in &a.screened_at_desk {
            check_name("agency", agency).map_err(|e| format!("announcement: screened at its desk by {e}"))?;
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_urls_name_one_or_more_servers() {
        assert_eq!(HubUrl::parse("nats://127.0.0.1:4222").unwrap().servers, vec!["nats://127.0.0.1:4222"]);
        assert_eq!(
            HubUrl::parse("nats://10.0.0.1:4222,10.0.0.2:4223,nats://b3:4222").unwrap().servers,
            vec!["nats://10.0.0.1:4222", "nats://10.0.0.2:4223", "nats://b3:4222"]
        );
        for bad in [
            "",
            "nats://",
            "http://h:1",
            "nats://h",
            "nats://h:0",
            "nats://h:99999",
            "nats://h:1,",
            "nats://a b:1",
        ] {
            assert!(HubUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_are_single_subject_tokens() {
        for good in ["L1", "hub-line_2", "node7"] {
            check_name("line", good).unwrap();
        }
        for bad in ["", "a.b", "a*", ">", "a b", "线", &"x".repeat(65)] {
            assert!(check_name("line", bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(bag_subject("L1", "n1", 42), "twinspect.bag.L1.n1.42");
    }

    fn announcement() -> BagAnnouncement {
        BagAnnouncement {
            format: FORMAT,
            line: "L1".into(),
            node: "n1".into(),
            bag: 3,
            scanner_bag: 17,
            item_id: Some("EMS123".into()),
            profile: "desk-140".into(),
            source: "synthetic".into(),
            channels: 4,
            lines: 10,
            missing_rows: vec![2],
            truncated: false,
            started_ms: 1,
            ended_ms: 2,
            calibration: CalibrationMsg {
                dark_low: vec![0.0; 4],
                dark_high: vec![0.0; 4],
                air_low: vec![1.0; 4],
                air_high: vec![1.0; 4],
                full_scale: 65535,
            },
            scan: ScanRef {
                bucket: SCANS_BUCKET.into(),
                object: scan_object("L1", "n1", 3),
                bytes: 2 * 2 * 4 * 10 + 300,
                sha256: "ab".repeat(32),
                format: "tiff-u16-2page".into(),
            },
            screened_at_desk: Vec::new(),
        }
    }

    #[test]
    fn an_announcement_round_trips_and_hostile_ones_are_refused() {
        let a = announcement();
        let bytes = serde_json::to_vec(&a).unwrap();
        assert_eq!(BagAnnouncement::decode(&bytes).unwrap(), a);
        let refused = |f: &dyn Fn(&mut BagAnnouncement)| {
            let mut b = announcement();
            f(&mut b);
            BagAnnouncement::decode(&serde_json::to_vec(&b).unwrap()).unwrap_err()
        };
        assert!(refused(&|b| b.format = 2).contains("format"));
        assert!(refused(&|b| b.node = "a.>".into()).contains("node"));
        assert!(refused(&|b| b.calibration.air_low.pop().map(|_| ()).unwrap()).contains("calibration"));
        assert!(refused(&|b| b.lines = 1 << 21).contains("lines"));
        assert!(refused(&|b| b.scan.bytes = 10).contains("bytes"));
        assert!(refused(&|b| b.scan.sha256 = "x".into()).contains("SHA-256"));
        assert!(refused(&|b| b.missing_rows = vec![10]).contains("missing"));
        assert!(refused(&|b| b.screened_at_desk = vec!["customs.>".into()]).contains("desk"));
        assert!(refused(&|b| b.screened_at_desk = vec!["a".into(); 17]).contains("16 agencies"));
        // A node's announcement says nothing of a desk (older stations read it as before).
        assert!(!String::from_utf8(bytes).unwrap().contains("screened_at_desk"));
        let desk = BagAnnouncement { screened_at_desk: vec!["customs".into()], ..announcement() };
        assert_eq!(BagAnnouncement::decode(&serde_json::to_vec(&desk).unwrap()).unwrap(), desk);
        assert!(BagAnnouncement::decode(b"{\"format\":1").is_err());
        assert!(BagAnnouncement::decode(&vec![b' '; MAX_ANNOUNCEMENT + 1]).unwrap_err().contains("limit"));
    }
}
