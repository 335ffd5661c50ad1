//! Who may do what on the hub. Each scanner node, station and administrator connects with its
//! own NATS nkey (an Ed25519 key pair: the seed file stays on its machine, the broker's
//! configuration holds only public keys), and the broker's permissions, generated here from the
//! hub's list of who is who (a `hub-users.toml`), let a node publish only its own line's bags
//! and scans, and a station take bags only from its agency's consumer and decide only for its
//! agency. A forged decision from an unknown key never connects; one from another agency's
//! station is refused by the broker itself.
//!
//! Owns: the identities and their subjects, the users file, the nats-server `authorization`
//! block, credentials (seed files) and the connect options every hub client uses. Must not
//! import: egui, wgpu, the desk.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::sorter::SORT_ROOT;
use super::{DECISION_ROOT, HubError, SCANS_BUCKET, STREAM, SUBJECT_ROOT, check_name};

/// Who a hub client is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A scanner node on a sorting line.
    Node { line: String, node: String },
    /// A screening station (or bot) of an agency.
    Station { agency: String, station: String },
    /// The hub's administrator: sets up streams, buckets and consumers.
    Admin { name: String },
    /// The hub's opening bench (`web --hub`): reads bags, scans and decisions, publishes nothing.
    Bench { name: String },
}

/// Subjects an identity may publish to and subscribe to (NATS wildcards).
#[derive(Clone, Debug, PartialEq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The scans bucket of one line (one bucket a line, so a node's permission to write scans can
/// be limited to its own line's).
pub fn scans_bucket(line: &str) -> String {
    format!("{SCANS_BUCKET}-{line}")
}

/// The durable consumer of an agency's stations.
pub fn agency_consumer(agency: &str) -> String {
    format!("screen-{agency}")
}

impl Identity {
    /// The prefix of this client's reply subjects: its own, so no other client may listen to
    /// the broker's answers to it.
    pub fn inbox(&self) -> String {
        match self {
            Identity::Node { line, node } => format!("_INBOX.node.{line}.{node}"),
            Identity::Station { agency, station } => format!("_INBOX.station.{agency}.{station}"),
            Identity::Admin { name } => format!("_INBOX.admin.{name}"),
            Identity::Bench { name } => format!("_INBOX.bench.{name}"),
        }
    }

    /// What the broker lets this identity do (lanes under the default subject root).
    pub fn permissions(&self) -> Permissions {
        self.permissions_under(SORT_ROOT)
    }

    /// What the broker lets this identity do where the site's sorter listens under `sort_root`.
    pub fn permissions_under(&self, sort_root: &str) -> Permissions {
        // Reading is open to every identity: stream and consumer information, and messages by
        // sequence or subject (stations read scans and decisions that way; nodes look up a bag
        // the broker already holds).
        let mut publish: Vec<String> = [
            "$JS.API.INFO",
            "$JS.API.STREAM.INFO.*",
            "$JS.API.CONSUMER.INFO.*.*",
            "$JS.API.STREAM.MSG.GET.*",
            "$JS.API.DIRECT.GET.>",
        ]
        .map(String::from)
        .to_vec();
        let mut subscribe = vec![format!("{}.>", self.inbox())];
        match self {
            Identity::Admin { .. } => {
                return Permissions { publish: vec![">".into()], subscribe: vec![">".into()] };
            }
            Identity::Node { line, node } => {
                let bucket = scans_bucket(line);
                publish.extend([
                    format!("{SUBJECT_ROOT}.{line}.{node}.*"),
                    format!("$O.{bucket}.>"),
                    // Its line's bucket when it is the first node there; replacing a scan
                    // purges the old one's chunks.
                    format!("$JS.API.STREAM.CREATE.OBJ_{bucket}"),
                    format!("$JS.API.STREAM.PURGE.OBJ_{bucket}"),
                    // Its parcels' lanes to the line's sorter.
                    format!("{sort_root}.{line}.{node}.*"),
                ]);
                // It hears its parcels' decisions, to give them lanes.
                subscribe.push(format!("{DECISION_ROOT}.*.{line}.{node}.*"));
            }
            // Reading is all it does.
            Identity::Bench { .. } => {}
            Identity::Station { agency, .. } => {
                let consumer = agency_consumer(agency);
                publish.extend([
                    format!("{DECISION_ROOT}.{agency}.*.*.*"),
                    format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{consumer}"),
                    format!("$JS.API.CONSUMER.CREATE.{STREAM}.{consumer}"),
                    format!("$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{consumer}"),
                    // Acknowledgements (the v1 and the domain-qualified v2 reply subjects).
                    format!("$JS.ACK.{STREAM}.{consumer}.>"),
                    format!("$JS.ACK.*.*.{STREAM}.{consumer}.>"),
                ]);
            }
        }
        Permissions { publish, subscribe }
    }

    pub fn describe(&self) -> String {
        match self {
            Identity::Node { line, node } => format!("node {node} on line {line}"),
            Identity::Station { agency, station } => format!("station {station} of {agency}"),
            Identity::Admin { name } => format!("administrator {name}"),
            Identity::Bench { name } => format!("opening bench {name}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    Name(#[from] HubError),
    #[error("users file: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("users file: {who}: {key:?} is not a NATS user's public key (U..., from `twinspect hub key`)")]
    Key { who: String, key: String },
    #[error("users file: the key of {0} is given to someone else too")]
    SharedKey(String),
    #[error("users file: {0} is listed twice")]
    Twice(String),
    #[error("users file: nobody is listed")]
    Empty,
    #[error("credentials {path}: {why}")]
    Credentials { path: String, why: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeUser {
    line: String,
    node: String,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StationUser {
    agency: String,
    station: String,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminUser {
    name: String,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BenchUser {
    name: String,
    key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    bench: Vec<BenchUser>,
    #[serde(default)]
    node: Vec<NodeUser>,
    #[serde(default)]
    station: Vec<StationUser>,
    #[serde(default)]
    admin: Vec<AdminUser>,
}

/// The hub's users: each identity with its public key.
#[derive(Clone, Debug, PartialEq)]
pub struct Users {
    pub users: Vec<(Identity, String)>,
}

impl Users {
    /// Parse and check a users file: names usable in subjects, real public user keys, no key
    /// shared by two identities, nobody twice.
    pub fn parse(text: &str) -> Result<Users, AccessError> {
        let f: UsersFile = toml::from_str(text)?;
        let mut users = Vec::new();
        for n in f.node {
            check_name("line", &n.line)?;
            check_name("node", &n.node)?;
            users.push((Identity::Node { line: n.line, node: n.node }, n.key));
        }
        for s in f.station {
            check_name("agency", &s.agency)?;
            check_name("station", &s.station)?;
            users.push((Identity::Station { agency: s.agency, station: s.station }, s.key));
        }
        for b in f.bench {
            check_name("bench", &b.name)?;
            users.push((Identity::Bench { name: b.name }, b.key));
        }
        for a in f.admin {
            check_name("administrator", &a.name)?;
            users.push((Identity::Admin { name: a.name }, a.key));
        }
        if users.is_empty() {
            return Err(AccessError::Empty);
        }
        let (mut keys, mut who) = (HashSet::new(), HashSet::new());
        for (id, key) in &users {
            let user_key = key.starts_with('U') && nkeys::KeyPair::from_public_key(key).is_ok();
            if !user_key {
                return Err(AccessError::Key { who: id.describe(), key: key.clone() });
            }
            if !keys.insert(key.as_str()) {
                return Err(AccessError::SharedKey(id.describe()));
            }
            // A station's name is unique across agencies too: it is how a decision names it.
            let unique = match id {
                Identity::Station { station, .. } => {
                    Identity::Station { agency: String::new(), station: station.clone() }
                }
                other => other.clone(),
            };
            if !who.insert(unique) {
                return Err(AccessError::Twice(id.describe()));
            }
        }
        Ok(Users { users })
    }

    /// Whether a recorded decision was made by the station it names: signed, by the key this
    /// file gives that station of that agency, and the signature holds.
    pub fn check_decision(&self, d: &super::DecisionMsg) -> Result<(), String> {
        let Some(key) = d.signer()? else { return Err("unsigned".into()) };
        let named = Identity::Station { agency: d.agency.clone(), station: d.station.clone() };
        match self.users.iter().find(|(_, k)| k == key) {
            Some((id, _)) if *id == named => Ok(()),
            Some((id, _)) => {
                Err(format!("it names station {} of {} but {} signed it", d.station, d.agency, id.describe()))
            }
            None => Err(format!("signed by {key}, a key the users file does not list")),
        }
    }

    /// Every line a node of the file is on.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .users
            .iter()
            .filter_map(|(id, _)| match id {
                Identity::Node { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect();
        lines.sort();
        lines.dedup();
        lines
    }

    /// The nats-server `authorization` block for these users, nodes sending lanes under
    /// `sort_root` (include it from the server's configuration). A connection with any other
    /// key, or none, is refused.
    pub fn server_config(&self, sort_root: &str) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
        let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
        let mut out = String::from(
            "# Twinspect hub users: written by `twinspect hub permissions`; edit the users file, not this.\n\
             authorization {\n  users = [\n",
        );
        for (id, key) in &self.users {
            let p = id.permissions_under(sort_root);
            out.push_str(&format!(
                "    # {}\n    {{\n      nkey: {}\n      permissions: {{\n        publish: {{ allow: [{}] }}\n        \
                 subscribe: {{ allow: [{}] }}\n      }}\n    }}\n",
                id.describe(),
                q(key),
                list(&p.publish),
                list(&p.subscribe)
            ));
        }
        out.push_str("  ]\n}\n");
        out
    }
}

/// A client's secret: its nkey seed, read from a file only its owner may read.
#[derive(Clone)]
pub struct Credentials {
    seed: String,
    /// The public key the broker knows it by.
    pub public: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({})", self.public)
    }
}

impl Credentials {
    /// Read a seed file (`SU...`, as `twinspect hub key` or `nk -gen user` writes).
    pub fn load(path: &Path) -> Result<Credentials, AccessError> {
        let bad = |why: String| AccessError::Credentials { path: path.display().to_string(), why };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.len() > 4096 {
            return Err(bad(format!("{} bytes: a seed file holds one line", meta.len())));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(bad(format!("others may read it (mode {mode:03o}): chmod 600 it")));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let seed = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("SU"))
            .ok_or_else(|| bad("no user seed (a line SU...) in it".into()))?;
        let kp = nkeys::KeyPair::from_seed(seed).map_err(|e| bad(format!("its seed: {e}")))?;
        Ok(Credentials { seed: seed.to_string(), public: kp.public_key() })
    }

    /// This key's Ed25519 signature of `bytes`, in hex.
    pub fn sign(&self, bytes: &[u8]) -> String {
        let kp = nkeys::KeyPair::from_seed(&self.seed).expect("checked when loaded");
        let sig = kp.sign(bytes).expect("a seed's key pair signs");
        sig.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Decision `d` as a station with this key sends it: the key named, the decision signed.
    pub fn sign_decision(&self, mut d: super::DecisionMsg) -> super::DecisionMsg {
        d.key = Some(self.public.clone());
        d.signature = Some(self.sign(&d.signed_bytes()));
        d
    }

    /// A new key pair: its seed written to `path` (mode 600, never over an existing file).
    pub fn create(path: &Path) -> Result<Credentials, AccessError> {
        let bad = |why: String| AccessError::Credentials { path: path.display().to_string(), why };
        let kp = nkeys::KeyPair::new_user();
        let seed = kp.seed().map_err(|e| bad(e.to_string()))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| bad(e.to_string()))?;
        use std::io::Write;
        f.write_all(format!("{seed}\n").as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| bad(e.to_string()))?;
        Ok(Credentials { seed, public: kp.public_key() })
    }
}

/// How every hub client connects: its name in the broker's client list, its own reply
/// subjects, its key when the hub uses keys, reconnecting for ever, and pings every 3 s so a
/// pulled cable is noticed within seconds (the default is a minute) rather than after a dead
/// TCP connection's retransmissions.
pub fn connect_options(
    name: String,
    who: &Identity,
    creds: Option<&Credentials>,
) -> async_nats::ConnectOptions {
    let mut o = async_nats::ConnectOptions::new()
        .name(name)
        .custom_inbox_prefix(who.inbox())
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .ping_interval(Duration::from_secs(3))
        .request_timeout(Some(Duration::from_secs(5)));
    if let Some(c) = creds {
        o = o.nkey(c.seed.clone());
    }
    o
}

/// [`connect_options`] with the broker's refusals said on standard error in the operator's
/// words and the connection's other events logged.
pub fn reporting_options(
    name: String,
    who: &Identity,
    creds: Option<&Credentials>,
) -> async_nats::ConnectOptions {
    let w = who.clone();
    connect_options(name, who, creds).event_callback(move |ev| {
        let w = w.clone();
        async move {
            match ev {
                async_nats::Event::ServerError(e) => eprintln!("{}", explain(&e, &w)),
                async_nats::Event::ClientError(e) => tracing::debug!("hub: {e}"),
                other => tracing::info!("hub: {other}"),
            }
        }
    })
}

/// What a refusal by the broker means, for the operator's log.
pub fn explain(e: &async_nats::ServerError, who: &Identity) -> String {
    match e {
        async_nats::ServerError::AuthorizationViolation => format!(
            "the hub refused {}'s credentials (no key, or a key its users file does not list)",
            who.describe()
        ),
        async_nats::ServerError::Other(s) if s.to_ascii_lowercase().contains("permissions violation") => {
            format!("the hub refused {}: {s} (not allowed by its users file)", who.describe())
        }
        other => format!("the hub: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        nkeys::KeyPair::new_user().public_key()
    }

    #[test]
    fn a_node_may_publish_only_its_own_bags_and_a_station_only_its_agencys_decisions() {
        let node = Identity::Node { line: "A".into(), node: "a1".into() }.permissions();
        assert!(node.publish.contains(&"twinspect.bag.A.a1.*".to_string()));
        assert!(node.publish.contains(&"$O.twinspect-scans-A.>".to_string()));
        assert!(!node.publish.iter().any(|s| s.starts_with("twinspect.decision") || s == ">"));
        // Its replies, and its own parcels' decisions (for the sorter), nothing else.
        assert_eq!(node.subscribe, ["_INBOX.node.A.a1.>", "twinspect.decision.*.A.a1.*"]);
        assert!(node.publish.contains(&"twinspect.sort.A.a1.*".to_string()));
        let st = Identity::Station { agency: "customs".into(), station: "c1".into() }.permissions();
        assert!(st.publish.contains(&"twinspect.decision.customs.*.*.*".to_string()));
        assert!(!st.publish.iter().any(|s| s.contains("quarantine") || s.starts_with("twinspect.bag")));
        assert!(!st.publish.iter().any(|s| s.contains("STREAM.DELETE") || s.contains("STREAM.CREATE")));
        // The opening bench reads (stream information and messages) and publishes nothing.
        let bench = Identity::Bench { name: "b1".into() }.permissions();
        assert!(
            bench
                .publish
                .iter()
                .all(|s| s.starts_with("$JS.API.") && (s.contains("INFO") || s.contains("GET")))
        );
        assert_eq!(bench.subscribe, ["_INBOX.bench.b1.>"]);
    }

    #[test]
    fn a_users_file_is_checked_before_it_becomes_server_configuration() {
        let (k1, k2, k3, k4) = (key(), key(), key(), key());
        let text = format!(
            "[[node]]\nline = \"A\"\nnode = \"a1\"\nkey = \"{k1}\"\n\
             [[station]]\nagency = \"customs\"\nstation = \"c1\"\nkey = \"{k2}\"\n\
             [[admin]]\nname = \"ops\"\nkey = \"{k3}\"\n\
             [[bench]]\nname = \"b1\"\nkey = \"{k4}\"\n"
        );
        let users = Users::parse(&text).unwrap();
        assert_eq!(users.users.len(), 4);
        assert!(users.users.contains(&(Identity::Bench { name: "b1".into() }, k4.clone())));
        assert_eq!(users.lines(), vec!["A".to_string()]);
        let conf = users.server_config(SORT_ROOT);
        assert!(conf.contains(&format!("nkey: \"{k1}\"")), "{conf}");
        assert!(conf.contains("\"twinspect.decision.customs.*.*.*\""), "{conf}");
        assert!(conf.contains("\"twinspect.sort.A.a1.*\""), "{conf}");
        let hall = users.server_config("hall2.sorter");
        assert!(hall.contains("\"hall2.sorter.A.a1.*\"") && !hall.contains("twinspect.sort"), "{hall}");
        // A shared key, an account key, a name that is no subject token, an unknown field,
        // somebody twice, nobody: each refused with what is wrong.
        let shared = text.replace(&k2, &k1);
        assert!(matches!(Users::parse(&shared), Err(AccessError::SharedKey(_))));
        let account = nkeys::KeyPair::new_account().public_key();
        assert!(matches!(Users::parse(&text.replace(&k1, &account)), Err(AccessError::Key { .. })));
        assert!(matches!(Users::parse(&text.replace("\"a1\"", "\"a.1\"")), Err(AccessError::Name(_))));
        assert!(matches!(Users::parse(&text.replace("node = ", "nod = ")), Err(AccessError::Toml(_))));
        let twice =
            format!("{text}[[station]]\nagency = \"quarantine\"\nstation = \"c1\"\nkey = \"{}\"\n", key());
        assert!(matches!(Users::parse(&twice), Err(AccessError::Twice(_))));
        assert!(matches!(Users::parse(""), Err(AccessError::Empty)));
    }

    #[test]
    fn a_decision_is_proved_only_by_the_key_of_the_station_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let c1 = Credentials::create(&dir.path().join("c1.nk")).unwrap();
        let q1 = Credentials::create(&dir.path().join("q1.nk")).unwrap();
        let users = Users::parse(&format!(
            "[[station]]\nagency = \"customs\"\nstation = \"c1\"\nkey = \"{}\"\n\
             [[station]]\nagency = \"quarantine\"\nstation = \"q1\"\nkey = \"{}\"\n",
            c1.public, q1.public
        ))
        .unwrap();
        let sign = |d: super::super::DecisionMsg, by: &Credentials| by.sign_decision(d);
        let d = super::super::DecisionMsg {
            format: 1,
            agency: "customs".into(),
            code: "open".into(),
            station: "c1".into(),
            operator: "o".into(),
            level: "L2".into(),
            line: "L1".into(),
            node: "n1".into(),
            bag: 1,
            scan_sha256: "ab".repeat(32),
            at_ms: 5,
            held_ms: 1,
            reason: None,
            marks: Vec::new(),
            key: None,
            signature: None,
            corrects: None,
        };
        assert_eq!(users.check_decision(&d).unwrap_err(), "unsigned");
        let good = sign(d.clone(), &c1);
        users.check_decision(&good).unwrap();
        // Survives the wire (JSON) unchanged.
        let wire: super::super::DecisionMsg =
            serde_json::from_slice(&serde_json::to_vec(&good).unwrap()).unwrap();
        users.check_decision(&wire).unwrap();
        let other = sign(d.clone(), &q1);
        assert!(users.check_decision(&other).unwrap_err().contains("station q1 of quarantine signed it"));
        let mut changed = good.clone();
        changed.code = "release".into();
        assert!(users.check_decision(&changed).unwrap_err().contains("does not match"));
        let mut cut = good.clone();
        cut.signature = Some("00".into());
        assert!(users.check_decision(&cut).unwrap_err().contains("64 bytes"));
        let stranger = Credentials::create(&dir.path().join("x.nk")).unwrap();
        assert!(users.check_decision(&sign(d.clone(), &stranger)).unwrap_err().contains("does not list"));
        // The operator's marks are signed with the decision: one moved afterwards is caught.
        use crate::domain::inspection::Shape;
        let mark = super::super::HubMark {
            shape: Shape::Rect { x0: 1.5, y0: 2.0, x1: 40.25, y1: 9.0 },
            category: "weapon".into(),
            note: "刀".into(),
            operator: "o".into(),
            created_ms: 4,
        };
        let marked = sign(super::super::DecisionMsg { marks: vec![mark.clone()], ..d.clone() }, &c1);
        let wire: super::super::DecisionMsg =
            serde_json::from_slice(&serde_json::to_vec(&marked).unwrap()).unwrap();
        users.check_decision(&wire).unwrap();
        let mut moved = marked.clone();
        moved.marks[0].shape = Shape::Rect { x0: 1.5, y0: 2.0, x1: 40.25, y1: 10.0 };
        assert!(users.check_decision(&moved).unwrap_err().contains("does not match"));
        // And they are checked before anyone keeps them.
        assert!(marked.check_marks().is_ok());
        let many = super::super::DecisionMsg { marks: vec![mark.clone(); 101], ..d.clone() };
        assert!(many.check_marks().unwrap_err().contains("101 marks"));
        let empty = super::super::HubMark {
            shape: Shape::Rect { x0: 1.0, y0: 2.0, x1: 1.0, y1: 9.0 },
            ..mark.clone()
        };
        let bad = super::super::DecisionMsg { marks: vec![mark.clone(), empty], ..d.clone() };
        assert!(bad.check_marks().unwrap_err().contains("mark 2"));
        let long = super::super::HubMark { note: "x".repeat(2001), ..mark };
        assert!(
            super::super::DecisionMsg { marks: vec![long], ..d }.check_marks().unwrap_err().contains("note")
        );
    }

    #[test]
    fn a_seed_file_is_made_private_and_one_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c1.nk");
        let c = Credentials::create(&p).unwrap();
        assert!(c.public.starts_with('U'));
        assert_eq!(Credentials::load(&p).unwrap().public, c.public);
        assert!(Credentials::create(&p).is_err(), "never over an existing seed");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Credentials::load(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        let q = dir.path().join("junk.nk");
        std::fs::write(&q, "not a seed\n").unwrap();
        std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Credentials::load(&q).unwrap_err().to_string().contains("no user seed"));
    }
}
