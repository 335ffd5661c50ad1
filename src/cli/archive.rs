//! The archive's commands: `bags` (list and search), `audit verify|list`, the data directory's
//! default, UTC times on the command line, and a hidden `store-exercise` that the kill -9
//! harness (`tests/archive.rs`) drives.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::domain::inspection::{InspectionConfig, Operator, OutcomeState, Role, Shape};
use crate::files::store::{BagQuery, BagStart, MarkChange, Store, audit};

/// `--data`, or `$XDG_DATA_HOME/twinspect`, or `~/.local/share/twinspect`.
pub fn data_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.to_path_buf());
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("twinspect"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/twinspect")),
        None => bail!("no data directory: give --data DIR (neither XDG_DATA_HOME nor HOME is set)"),
    }
}

/// `2026-11-28 06:15:02Z` for a Unix time in milliseconds.
pub fn utc(ms: u64) -> String {
    crate::files::export::utc(ms).replacen('T', " ", 1)
}

/// A time on the command line: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` (UTC; a space works
/// instead of `T`, a trailing `Z` is allowed), or Unix milliseconds.
pub fn parse_time(s: &str) -> anyhow::Result<u64> {
    let s = s.trim().trim_end_matches('Z');
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() > 8 {
        return s.parse().with_context(|| format!("{s}: not a time"));
    }
    let bad =
        || anyhow::anyhow!("{s}: a time is YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (UTC) or Unix milliseconds");
    let formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"];
    let spaced = s.replacen('T', " ", 1);
    let when = formats
        .iter()
        .find_map(|f| match *f {
            "%Y-%m-%d" => jiff::civil::Date::strptime(f, &spaced)
                .ok()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight())),
            _ => jiff::civil::DateTime::strptime(f, &spaced).ok(),
        })
        .ok_or_else(bad)?;
    // Four-digit years from 1970 only (the archive holds nothing older).
    if when.year() < 1970 || !s.get(..5).is_some_and(|y| y.ends_with('-')) {
        return Err(bad());
    }
    let ms = when.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp().as_millisecond();
    Ok(u64::try_from(ms)?)
}

#[derive(clap::Args, Debug)]
pub struct BagsArgs {
    /// Bags that began at or after this time (YYYY-MM-DD[THH:MM[:SS]] UTC, or Unix ms).
    #[arg(long)]
    pub from: Option<String>,
    /// Bags that began before this time.
    #[arg(long)]
    pub to: Option<String>,
    /// Parcel barcode or baggage tag.
    #[arg(long)]
    pub item: Option<String>,
    /// An operator who decided on or marked the bag.
    #[arg(long)]
    pub operator: Option<String>,
    /// An agency that decided on or marked the bag (customs, quarantine).
    #[arg(long)]
    pub agency: Option<String>,
    /// A decision code recorded on the bag (release, open, hold, ...).
    #[arg(long)]
    pub decision: Option<String>,
    /// A category of one of its marks.
    #[arg(long)]
    pub category: Option<String>,
    /// At most this many, newest first (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// The hub's PostgreSQL records (postgres://...) instead of this machine's archive: every
    /// bag with every agency's decision.
    #[arg(long, conflicts_with_all = ["from", "to", "item", "operator", "agency", "decision", "category"])]
    pub records: Option<String>,
}

fn outcome_word(state: &OutcomeState) -> String {
    match state {
        OutcomeState::Pending { waiting_for } => format!("pending({})", waiting_for.join("+")),
        OutcomeState::Released => "released".into(),
        OutcomeState::Opened { by, joint } => {
            format!("{}({})", if *joint { "joint-open" } else { "open" }, by.join("+"))
        }
        OutcomeState::Held { by } => format!("held({})", by.join("+")),
        OutcomeState::Referred { by } => format!("referred({})", by.join("+")),
    }
}

/// A tokio runtime for one command's calls to the hub's records.
fn hub_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn hub_bags(url: &str, a: &BagsArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let bags = hub_runtime()?.block_on(async {
        let r = crate::hub::records::Records::connect(url).await?;
        anyhow::Ok(r.bags().await?)
    })?;
    let mut out = std::io::stdout().lock();
    let n = if a.limit == 0 { bags.len() } else { a.limit.min(bags.len()) };
    for b in bags.iter().rev().take(n) {
        if a.json {
            writeln!(out, "{}", serde_json::to_string(b)?)?;
        } else {
            // A corrected decision shows what it replaced: customs=release(was open).
            let decided: Vec<String> = b
                .decisions
                .iter()
                .map(|(g, d)| match d.corrected.last() {
                    Some(e) => format!("{g}={}(was {})", d.code, e.code),
                    None => format!("{g}={}", d.code),
                })
                .collect();
            let found: Vec<String> = b
                .findings
                .iter()
                .map(|(g, f)| {
                    let n: u32 = f.items.iter().map(|i| i.count).sum();
                    if n == 0 { format!("{g}:nothing found") } else { format!("{g}:{n} found") }
                })
                .collect();
            writeln!(
                out,
                "{}.{}.{}\t{}\t{} lines\t{}{}",
                b.line,
                b.node,
                b.bag,
                b.item_id.as_deref().unwrap_or("-"),
                b.lines,
                if decided.is_empty() { "undecided".into() } else { decided.join(" ") },
                if found.is_empty() { String::new() } else { format!("\topened: {}", found.join(" ")) }
            )?;
        }
    }
    Ok(())
}

/// `twinspect bags`: one bag per line, archive id first (or the hub's records, by line, node and
/// bag).
pub fn bags(data: Option<&Path>, a: BagsArgs) -> anyhow::Result<()> {
    if let Some(url) = &a.records {
        return hub_bags(url, &a);
    }
    let dir = data_dir(data)?;
    let store = Store::open_read(&dir)?;
    let q = BagQuery {
        from_ms: a.from.as_deref().map(parse_time).transpose()?,
        to_ms: a.to.as_deref().map(parse_time).transpose()?,
        item_id: a.item,
        operator: a.operator,
        agency: a.agency,
        decision: a.decision,
        category: a.category,
        limit: a.limit,
    };
    let cfg = InspectionConfig::default();
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    for row in store.bags(&q)? {
        let rec = store.record(row.id)?;
        let outcome = rec.outcome(&cfg);
        if a.json {
            let v = serde_json::json!({ "bag": row, "outcome": outcome.state, "decisions": rec.decisions,
                                        "marks": rec.annotations.len() });
            writeln!(out, "{v}")?;
            continue;
        }
        let decided: Vec<String> = outcome
            .decisions
            .iter()
            .map(|(ag, d)| format!("{ag}={}", d.as_ref().map_or("-", |d| d.code.as_str())))
            .collect();
        writeln!(
            out,
            "{}\t{}\t{}\tscanner-bag={}\ttag={}\tlines={}\tmissing={}\t{}\t{}\tmarks={}",
            row.id,
            utc(row.started_ms),
            row.state.as_str(),
            row.scanner_bag,
            row.item_id.as_deref().unwrap_or("-"),
            row.lines.map_or("-".into(), |l| l.to_string()),
            row.missing_rows.len(),
            decided.join(" "),
            outcome_word(&outcome.state),
            rec.annotations.len(),
        )?;
    }
    Ok(())
}

#[derive(clap::Subcommand, Debug)]
pub enum AuditAction {
    /// Check the hash chain: exit status 0 and the head hash when intact, 1 and every break
    /// (edited, deleted, reordered or cut-off entries) when not.
    Verify {
        /// The hub's PostgreSQL records (postgres://...) instead of this machine's archive.
        #[arg(long)]
        records: Option<String>,
        /// With --records: the hub's users file; every decision must then be signed by the key
        /// it gives the station the decision names.
        #[arg(long, requires = "records")]
        users: Option<PathBuf>,
    },
    /// Print the trail, oldest first (one JSON object per line).
    List {
        /// Only entries about this archived bag.
        #[arg(long)]
        bag: Option<i64>,
    },
}

fn report_verification(r: &audit::Report, place: &str) -> anyhow::Result<()> {
    if r.ok() {
        let (seq, hash) = r.head.clone().unwrap_or((0, audit::GENESIS.into()));
        println!("audit trail intact: {} entries; head entry {seq} sha256 {hash}", r.entries);
        Ok(())
    } else {
        for p in &r.problems {
            println!("BROKEN: {p}");
        }
        bail!("the audit trail of {place} is broken ({} problems in {} entries)", r.problems.len(), r.entries)
    }
}

pub fn audit_command(data: Option<&Path>, action: AuditAction) -> anyhow::Result<()> {
    if let AuditAction::Verify { records: Some(url), users } = &action {
        let users = match users {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                Some(
                    crate::hub::access::Users::parse(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                )
            }
            None => None,
        };
        let (r, decisions) = hub_runtime()?.block_on(async {
            let r = crate::hub::records::Records::connect(url).await?;
            let decisions = if users.is_some() { r.decisions().await? } else { Vec::new() };
            anyhow::Ok((r.verify_audit().await?, decisions))
        })?;
        report_verification(&r, "the hub's records")?;
        let Some(users) = users else { return Ok(()) };
        let forged: Vec<String> = decisions
            .iter()
            .filter_map(|d| {
                let why = users.check_decision(d).err()?;
                Some(format!("bag {}.{}.{} {} {:?}: {why}", d.line, d.node, d.bag, d.agency, d.code))
            })
            .collect();
        for f in &forged {
            println!("NOT PROVED: {f}");
        }
        if !forged.is_empty() {
            bail!(
                "{} of {} decisions are not signed by the station they name",
                forged.len(),
                decisions.len()
            );
        }
        println!("decisions: {}, each signed by the station it names", decisions.len());
        return Ok(());
    }
    let dir = data_dir(data)?;
    let store = Store::open_read(&dir)?;
    match action {
        AuditAction::Verify { .. } => report_verification(&store.verify_audit()?, &dir.display().to_string()),
        AuditAction::List { bag } => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for e in audit::entries(store.connection())? {
                if bag.is_none_or(|b| e.bag == Some(b)) {
                    writeln!(out, "{}", serde_json::to_string(&e)?)?;
                }
            }
            Ok(())
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum ExportAction {
    /// The records of a period as CSV, one row per bag (oldest first), a group of columns per
    /// agency (decision in force, operator, time, reason, number of changes, marks); UTF-8 with
    /// a byte-order mark so spreadsheet programs show the Chinese text.
    Csv {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// An archived bag's image with every mark drawn on it (agency colours, mark numbers), and
    /// FILE.marks.json listing the marks.
    Png {
        /// Archive id (first column of `twinspect bags`).
        #[arg(long)]
        bag: i64,
        #[arg(long, value_enum, default_value = "standard")]
        preset: crate::domain::view::Preset,
        #[arg(long)]
        out: PathBuf,
        /// Use the CPU twin instead of the GPU.
        #[arg(long)]
        cpu: bool,
    },
    /// A bag as DICOS: DIR/bag-ID-dx-low.dcs and -dx-high.dcs (DX, Series Energy 1 and 2) and
    /// DIR/bag-ID-tdr-AGENCY.dcs (an operator Threat Detection Report per agency: decision in
    /// force, or UNKNOWN; each mark as a potential threat object with its outline and category).
    Dicos {
        #[arg(long)]
        bag: i64,
        #[arg(long)]
        out: PathBuf,
    },
}

/// `twinspect export csv|png`: written, then audited (who: the local user).
pub fn export(
    profile: &str,
    data: Option<&Path>,
    action: ExportAction,
    mode: super::progress::Mode,
) -> anyhow::Result<()> {
    let dir = data_dir(data)?;
    let mut store = Store::open_shared(&dir)?;
    let cfg = InspectionConfig::default();
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    match action {
        ExportAction::Csv { from, to, out } => {
            let q = BagQuery {
                from_ms: from.as_deref().map(parse_time).transpose()?,
                to_ms: to.as_deref().map(parse_time).transpose()?,
                ..Default::default()
            };
            let mut bytes = Vec::new();
            let mut bar: Option<super::progress::Progress> = None;
            let n = crate::files::export::records_csv_with(&store, &cfg, &q, &mut bytes, |done, total| {
                let b = bar
                    .get_or_insert_with(|| super::progress::Progress::new(mode, Some(total as u64), "bags"));
                b.update(done as u64, String::new);
            })?;
            if let Some(b) = bar {
                b.finish();
            }
            crate::files::io::write_atomically(&out, &bytes)?;
            store.log(
                super::now_ms(),
                &actor,
                "export.csv",
                None,
                serde_json::json!({ "file": out.display().to_string(), "bags": n, "from": from, "to": to }),
            )?;
            eprintln!("wrote {} ({n} bags)", out.display());
        }
        ExportAction::Png { bag, preset, out, cpu } => {
            let row = store.bag(bag)?;
            let profile = row_profile(&row, profile)?;
            let frame = store.scan(bag)?;
            let calib = store.calibration(bag)?;
            let rec = store.record(bag)?;
            let missing = crate::files::export::missing_flags(&row, frame.lines());
            let mut rgba = super::render_rgba(&profile, &frame, &calib, &missing, &preset.settings(), cpu)?;
            crate::files::export::draw_marks(&mut rgba, &rec.annotations, &cfg);
            crate::files::io::write_png(&out, &rgba)?;
            let mut legend = out.as_os_str().to_owned();
            legend.push(".marks.json");
            let marks = serde_json::json!({ "bag": bag, "item_id": row.item_id, "marks": rec.annotations,
                                            "decisions": rec.decisions });
            crate::files::io::write_atomically(Path::new(&legend), &serde_json::to_vec_pretty(&marks)?)?;
            store.log(
                super::now_ms(),
                &actor,
                "export.png",
                Some(bag),
                serde_json::json!({ "file": out.display().to_string(), "preset": format!("{preset:?}"),
                                    "marks": rec.annotations.len() }),
            )?;
            eprintln!("wrote {} ({} marks)", out.display(), rec.annotations.len());
        }
        ExportAction::Dicos { bag, out } => {
            let profile = row_profile(&store.bag(bag)?, profile)?;
            let files = crate::files::dicos::export_bag(&store, bag, &cfg, &profile, &out, super::now_ms())?;
            store.log(
                super::now_ms(),
                &actor,
                "export.dicos",
                Some(bag),
                serde_json::json!({ "dir": out.display().to_string(),
                    "files": files.iter().map(|w| serde_json::json!({
                        "file": w.path.display().to_string(), "sop_instance_uid": w.sop_instance,
                        "what": w.what })).collect::<Vec<_>>() }),
            )?;
            for w in &files {
                println!("{}  {}", w.path.display(), w.what);
            }
        }
    }
    Ok(())
}

/// The profile a bag was scanned with (`default` for bags that did not record one).
fn row_profile(
    row: &crate::files::store::BagRow,
    default: &str,
) -> anyhow::Result<crate::domain::profile::ScannerProfile> {
    let name = if row.profile.is_empty() { default } else { &row.profile };
    Ok(crate::domain::profile::ScannerProfile::load(name)?)
}

/// Pixels added around a mark's box when a threat is cut with its background subtracted.
const MARK_MARGIN: f32 = 6.0;

fn add_threat(
    data: Option<&Path>,
    bag: i64,
    mark: Option<u64>,
    region: Option<Vec<usize>>,
    name: &str,
    category: &str,
    keep_background: bool,
) -> anyhow::Result<()> {
    let category: crate::domain::synth::Category = serde_json::from_value(serde_json::json!(category))
        .map_err(|_| {
            anyhow::anyhow!("--category {category:?}: not a category (blade, key, coin, battery, ...)")
        })?;
    let file_name: String =
        name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if name.trim().is_empty() || file_name.len() > 120 {
        bail!("--name {name:?}: a short name the trainer will recognise");
    }
    let dir = data_dir(data)?;
    let mut store = Store::open_shared(&dir)?;
    let frame = store.scan(bag)?;
    let calib = store.calibration(bag)?;
    let (l0, l1, c0, c1) = match (mark, region) {
        (_, Some(r)) if r.len() == 4 => (r[0], r[1], r[2], r[3]),
        (_, Some(_)) => {
            bail!("--region L0,L1,C0,C1: four numbers (first line, end line, first channel, end channel)")
        }
        (Some(m), None) => {
            let rec = store.record(bag)?;
            let a = rec
                .annotations
                .iter()
                .find(|a| a.id == m)
                .with_context(|| format!("bag {bag} has no mark {m}"))?;
            let pts = a.shape.outline();
            let span =
                |i: usize| pts.iter().fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p[i]), b.max(p[i])));
            let ((x0, x1), (y0, y1)) = (span(0), span(1));
            let clamp = |v: f32, n: usize| (v.max(0.0) as usize).min(n);
            // A margin around the mark: the background is read from the region's edges, and
            // an operator's box hugs the object.
            let m = if keep_background { 0.0 } else { MARK_MARGIN };
            (
                clamp(x0.floor() - m, frame.lines()),
                clamp(x1.ceil() + m, frame.lines()),
                clamp(y0.floor() - m, frame.channels()),
                clamp(y1.ceil() + m, frame.channels()),
            )
        }
        (None, None) => bail!("give --mark N or --region L0,L1,C0,C1"),
    };
    let region = (l0, l1, c0, c1);
    let t = crate::domain::tip::Threat::from_scan(name, category, &frame, &calib, region, !keep_background)?;
    let tdir = dir.join(crate::files::io::THREATS_DIR);
    std::fs::create_dir_all(&tdir).with_context(|| format!("creating {}", tdir.display()))?;
    let path = tdir.join(format!("{file_name}.tiff"));
    if path.exists() {
        bail!("{} exists: the library already has a threat called {name:?}", path.display());
    }
    crate::files::io::write_threat(&path, &t)?;
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    store.log(
        super::now_ms(),
        &actor,
        "threat.add",
        Some(bag),
        serde_json::json!({ "name": name, "category": category, "region": [l0, l1, c0, c1],
                            "background_subtracted": !keep_background,
                            "file": path.display().to_string(), "size": [t.lines(), t.channels()] }),
    )?;
    println!(
        "threat {name:?} ({}) from bag {bag}: {} lines x {} channels -> {}",
        category.as_str(),
        t.lines(),
        t.channels(),
        path.display()
    );
    Ok(())
}

/// `twinspect import --dicos FILES|DIR`: a DX pair archived as a new, complete bag (with the
/// identity calibration: the images are transmission already), audited.
pub fn import_dicos(
    profile: &str,
    data: Option<&Path>,
    paths: &[PathBuf],
    mode: super::progress::Mode,
) -> anyhow::Result<()> {
    // One pair of images read, checked and decoded: a spinner on a terminal while it lasts.
    let spin = super::progress::Progress::new(mode, None, "DICOS files");
    spin.say(&format!("reading {} DICOS path(s)", paths.len()));
    let imported = crate::files::dicos::import_pair(paths);
    spin.finish();
    let imported = imported?;
    for f in &imported.skipped {
        eprintln!("skipped {} (not a DICOS DX image)", f.display());
    }
    let channels = imported.frame.channels();
    // The profile the files name, else the one given (or the default) when it fits.
    let name = imported
        .profile
        .clone()
        .filter(|p| crate::domain::profile::ScannerProfile::load(p).is_ok())
        .unwrap_or_else(|| profile.to_string());
    let prof = crate::domain::profile::ScannerProfile::load(&name)?;
    if prof.channels as usize != channels {
        anyhow::bail!(
            "the images have {channels} channels; profile {name} has {} (choose one with --profile)",
            prof.channels
        );
    }
    let dir = data_dir(data)?;
    let mut store = Store::open(&dir)?;
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let now = super::now_ms();
    let source =
        format!("dicos:{}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(","));
    let item = (!imported.ooi_id.is_empty()).then_some(imported.ooi_id.as_str());
    let id = store.begin_bag(
        &crate::files::store::BagStart {
            scanner_bag: 0,
            item_id: item,
            source: &source,
            profile: &prof.name,
            channels,
            at_ms: imported.started_ms.unwrap_or(now),
        },
        &actor,
    )?;
    let row = store.finish_bag(id, &imported.frame, &imported.calibration, &[], false, now, &actor)?;
    store.log(
        now,
        &actor,
        "import.dicos",
        Some(id),
        serde_json::json!({ "files": source, "study_instance_uid": imported.study_uid,
                            "lines": imported.frame.lines(), "channels": channels }),
    )?;
    println!(
        "imported bag {id} ({} lines x {channels} channels, profile {}) sha256 {}",
        imported.frame.lines(),
        prof.name,
        row.scan_sha256.unwrap_or_default()
    );
    Ok(())
}

#[derive(clap::Subcommand, Debug)]
pub enum TrainAction {
    /// An operator's training report (HTML with plots: hit rate over the session, decision
    /// times; hits, misses, false alarms, d') into DIR/index.html.
    Report {
        #[arg(long)]
        operator: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a threat to the library, cut out of an archived bag's scan: the box of one of its marks
    /// (`--mark N`) or a region (`--region L0,L1,C0,C1`: lines and channels, end exclusive). It is
    /// kept as what it does to the beam (DATA/threats/NAME.tiff) and projected into replayed bags
    /// with `replay://...&tip=RATE&threats=DATA/threats`.
    AddThreat {
        #[arg(long)]
        bag: i64,
        #[arg(long, conflicts_with = "region", required_unless_present = "region")]
        mark: Option<u64>,
        #[arg(long, value_delimiter = ',')]
        region: Option<Vec<usize>>,
        #[arg(long)]
        name: String,
        /// What it is (blade, key, coin, battery, dense_block, ...).
        #[arg(long, default_value = "blade")]
        category: String,
        /// Keep what lies around the object in the bag. By default the background, read from
        /// the region's edges (a mark gets a 6-pixel margin), is subtracted so only the object
        /// is projected into other bags.
        #[arg(long)]
        keep_background: bool,
    },
    /// The threat library: built-in threats and those added from scans.
    Threats,
}

pub fn train(
    profile: &str,
    data: Option<&Path>,
    action: TrainAction,
    mode: super::progress::Mode,
) -> anyhow::Result<()> {
    let (operator, out) = match action {
        TrainAction::Report { operator, out } => (operator, out),
        TrainAction::AddThreat { bag, mark, region, name, category, keep_background } => {
            return add_threat(data, bag, mark, region, &name, &category, keep_background);
        }
        TrainAction::Threats => {
            let prof = crate::domain::profile::ScannerProfile::load(profile)?;
            for t in crate::domain::tip::builtin_threats(&prof)? {
                println!(
                    "{}\t{}\t{} x {}\tbuilt-in ({})",
                    t.name,
                    t.category.as_str(),
                    t.lines(),
                    t.channels(),
                    prof.name
                );
            }
            let dir = data_dir(data)?.join(crate::files::io::THREATS_DIR);
            for t in crate::files::io::load_threats(&dir)? {
                println!(
                    "{}\t{}\t{} x {}\t{}",
                    t.name,
                    t.category.as_str(),
                    t.lines(),
                    t.channels(),
                    dir.display()
                );
            }
            return Ok(());
        }
    };
    let dir = data_dir(data)?;
    let mut store = Store::open_shared(&dir)?;
    let spin = super::progress::Progress::new(mode, None, "results");
    spin.say(&format!("reading {operator}'s training results"));
    let rows = store.training(&operator)?;
    if rows.is_empty() {
        spin.finish();
        bail!("no training results for operator {operator:?} in {}", dir.display());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let page = out.join("index.html");
    let html = crate::files::export::training_report_html(&operator, &rows);
    spin.finish();
    crate::files::io::write_atomically(&page, html.as_bytes())?;
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    store.log(
        super::now_ms(),
        &actor,
        "export.training_report",
        None,
        serde_json::json!({ "operator": operator, "file": page.display().to_string(), "results": rows.len() }),
    )?;
    eprintln!("wrote {} ({} results)", page.display(), rows.len());
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ExerciseArgs {
    /// How many bags to begin (each with decisions and marks).
    #[arg(long, default_value_t = 1000)]
    pub bags: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Hidden: write bags, scans, decisions, changes of decision and marks as fast as the disk
/// allows, printing `ack KIND ID ...` on standard output after each commit. The kill -9 harness
/// kills it at random moments and checks that every acknowledged record is in the archive.
pub fn exercise(data: Option<&Path>, a: ExerciseArgs, mode: super::progress::Mode) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = data_dir(data)?;
    let mut store = Store::open(&dir)?;
    let cfg = InspectionConfig::default();
    let customs = cfg.agencies[0].clone();
    let quarantine = cfg.agencies[1].clone();
    let c = Operator { id: "c001".into(), name: "c".into(), roles: vec![Role::Customs] };
    let q = Operator { id: "q001".into(), name: "q".into(), roles: vec![Role::Quarantine] };
    let mut rng = crate::domain::rng::Rng::new(a.seed);
    let mut out = std::io::stdout().lock();
    for id in &store.recovered {
        writeln!(out, "recovered {id}")?;
    }
    let channels = 64;
    let mut progress = super::progress::Progress::new(mode, Some(a.bags), "bags");
    for n in 0..a.bags {
        progress.update(n, String::new);
        let t = super::now_ms();
        let tag = format!("EX{}-{n}", a.seed);
        let id = store.begin_bag(
            &BagStart {
                scanner_bag: n,
                item_id: Some(&tag),
                source: "exercise",
                profile: "exercise",
                channels,
                at_ms: t,
            },
            "exercise",
        )?;
        writeln!(out, "ack begin {id}")?;
        let lines = 16 + (rng.next_u64() % 48) as usize;
        let mut f = crate::domain::scan::RawFrame::zeros(lines, channels);
        for v in f.low.iter_mut().chain(f.high.iter_mut()) {
            *v = (rng.next_u64() & 0xffff) as u16;
        }
        let calib = crate::domain::calib::Calibration {
            dark_low: vec![0.0; channels],
            dark_high: vec![0.0; channels],
            air_low: vec![65535.0; channels],
            air_high: vec![65535.0; channels],
            full_scale: 65535,
            dead: Vec::new(),
        };
        let row = store.finish_bag(id, &f, &calib, &[], false, t + 1, "exercise")?;
        writeln!(out, "ack scan {id} {}", row.scan_sha256.unwrap_or_default())?;
        let mut rec = store.record(id)?;
        for (agency, op) in [(&customs, &c), (&quarantine, &q)] {
            let code = &agency.decisions[(rng.next_u64() as usize) % agency.decisions.len()].code;
            let d = rec.decide(&cfg, &agency.id, code, op, t + 2, None)?.clone();
            store.record_decision(id, &d)?;
            writeln!(out, "ack decision {id} {} {}", d.agency, d.code)?;
            let cat = &agency.categories[(rng.next_u64() as usize) % agency.categories.len()].id;
            let shape = Shape::Rect { x0: 1.0, y0: 1.0, x1: 5.0 + n as f32, y1: 9.0 };
            let mark = rec.annotate(&cfg, &agency.id, op, shape, cat, "exercise", t + 3)?;
            let saved = rec.annotations.iter().find(|m| m.id == mark).expect("just added").clone();
            store.save_annotation(id, &saved, MarkChange::Added, &op.id, t + 3)?;
            writeln!(out, "ack mark {id} {mark}")?;
        }
        // A change of decision, with its reason.
        let next =
            customs.decisions.iter().find(|d| Some(&d.code) != rec.current(&customs.id).map(|d| &d.code));
        if let Some(code) = next {
            let d = rec.decide(&cfg, &customs.id, &code.code, &c, t + 4, Some("second look"))?.clone();
            store.record_decision(id, &d)?;
            writeln!(out, "ack decision {id} {} {}", d.agency, d.code)?;
        }
    }
    progress.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_on_the_command_line() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_time("2026-11-28T05:53:08").unwrap(), 1_795_845_188_000);
        assert_eq!(parse_time("2026-11-28 05:53").unwrap(), 1_795_845_180_000);
        assert_eq!(parse_time("1795845188668").unwrap(), 1_795_845_188_668);
        assert_eq!(utc(parse_time("2024-02-29T23:59:59Z").unwrap()), "2024-02-29 23:59:59Z");
        for bad in ["2026-02-30", "2026-13-01", "26-11-28", "2026-11-28T24:00", "yesterday", ""] {
            assert!(parse_time(bad).is_err(), "{bad:?} accepted");
        }
    }
}
