//! DICOS (NEMA IIC 1, DICOM for security screening) export and import of archived bags.
//!
//! A bag exports as one DX image per energy (Series Energy (6100,0030) 1 = low, 2 = high; the
//! "for processing" SOP class: calibrated transmission, not display-ready) and one OPERATOR
//! Threat Detection Report per agency: the operator whose decision is in force, the alarm
//! decision (ALARM, CLEAR, or UNKNOWN while the agency has not decided), and every mark of that
//! agency as a potential threat object (outline as bounding polygon, box as the threat ROI,
//! category and note in the assessment). All of them share the bag's study (inspection) and
//! frame of reference and each TDR references both DX images. UIDs are derived from the archive
//! (same bag, same image: same UIDs), so a re-export replaces rather than duplicates.
//! When the bag was opened, each agency that recorded findings gets a GROUND TRUTH TDR as well
//! (what the opening established: ALARM with one threat object per kind of item found, count
//! and note in its description, or CLEAR for nothing found; the treatment in Twinspect's
//! private block (0011,10xx), since no DICOS attribute holds it).
//!
//! Pixels: columns are lines along the belt, rows are detector channels from the last (top) to
//! the first (bottom), so the image stands as both screens show it; 16 bits,
//! `round(65535 * I / I0)` (dark- and air-corrected transmission). TDR outlines are in the same
//! pixel coordinates.
//! Import reads such a pair back as a frame with the identity calibration, so the attenuation
//! the workstation computes differs from the original only by that 16-bit rounding.
//!
//! Owns: the DICOS attributes and their values. Must not import: egui, wgpu, tokio.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use sha2::{Digest, Sha256};

use crate::domain::calib::{Calibration, attenuation};
use crate::domain::inspection::{AgencyConfig, Annotation, DispositionKind, Findings, InspectionConfig};
use crate::domain::profile::ScannerProfile;
use crate::domain::scan::RawFrame;
use crate::files::io::dicom::{DataSet, EXPLICIT_VR_LE, encode_file, parse_file, tag};
use crate::files::store::{BagRow, Store};

pub const DX_FOR_PROCESSING: &str = "1.2.840.10008.5.1.4.1.1.501.2.2";
pub const DX_FOR_PRESENTATION: &str = "1.2.840.10008.5.1.4.1.1.501.2.1";
pub const TDR: &str = "1.2.840.10008.5.1.4.1.1.501.3";
/// Our implementation class UID (2.25: a UUID-derived root, no registration needed).
const IMPLEMENTATION_UID: &str = "2.25.207403328817227305574135311860412617391";
const DICOS_VERSION: &str = "V03";
/// Full scale of exported transmission.
pub const FULL: u16 = 65535;
/// Largest image read: as for raw TIFF scans.
const MAX_ROWS: usize = crate::files::io::MAX_TIFF_CHANNELS as usize;
const MAX_COLUMNS: usize = crate::files::io::MAX_TIFF_SIDE as usize;

#[derive(Debug, thiserror::Error)]
pub enum DicosError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Store(#[from] crate::files::store::StoreError),
}

fn file_err(path: &Path, m: impl std::fmt::Display) -> DicosError {
    DicosError::File { path: path.display().to_string(), message: m.to_string() }
}

/// `2.25.<decimal>` from a SHA-256 of `parts` (128 bits: a UUID-sized number, never a leading 0).
pub fn uid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    let d = h.finalize();
    let n = u128::from_be_bytes(d[..16].try_into().expect("16 bytes")) | 1 << 127;
    format!("2.25.{n}")
}

/// `(YYYYMMDD, HHMMSS.ffffff)` in UTC.
fn date_time(ms: u64) -> (String, String) {
    let t = crate::files::export::timestamp(ms);
    (t.strftime("%Y%m%d").to_string(), t.strftime("%H%M%S.%6f").to_string())
}

fn dt(ms: u64) -> String {
    let (d, t) = date_time(ms);
    format!("{d}{t}+0000")
}

/// The DICOS threat category (CS) a mark category maps to; the exact category travels in the
/// assessment's description. DICOS V03 terms: SDICOS rewrites the older `PROHIBITED ITEM` to
/// `PI` as it reads.
pub fn threat_category(category: &str) -> &'static str {
    match category {
        "weapon" => "PI",
        "drugs" | "currency" | "contraband" => "CONTRABAND",
        "fruit_veg" | "meat" | "plants" | "soil" | "live_animals" | "biological" => "CONTRABAND",
        _ => "OTHER",
    }
}

/// Transmission in `0..=FULL` per pixel, rows = channels, columns = lines.
pub fn transmission_image(frame: &RawFrame, calib: &Calibration) -> (Vec<u16>, Vec<u16>) {
    let (lines, channels) = (frame.lines(), frame.channels());
    let mut low = vec![0u16; lines * channels];
    let mut high = vec![0u16; lines * channels];
    let dead = |c: usize| calib.dead.binary_search(&(c as u32)).is_ok();
    for c in 0..channels {
        let span = |dark: f32, air: f32| if dead(c) { -1.0 } else { (air - dark).max(1e-6).ln() };
        let sl = span(calib.dark_low[c], calib.air_low[c]);
        let sh = span(calib.dark_high[c], calib.air_high[c]);
        for l in 0..lines {
            let al = attenuation(frame.low[(l, c)], calib.dark_low[c], sl, calib.full_scale);
            let ah = attenuation(frame.high[(l, c)], calib.dark_high[c], sh, calib.full_scale);
            // Row 0 is the top of the screen: the last channel (the screens show channel 0 at
            // the bottom, next to the belt).
            let at = (channels - 1 - c) * lines + l;
            low[at] = ((-al).exp() * FULL as f32).round() as u16;
            high[at] = ((-ah).exp() * FULL as f32).round() as u16;
        }
    }
    (low, high)
}

/// The identity calibration imported images are read with.
pub fn identity_calibration(channels: usize) -> Calibration {
    Calibration::from_tables(
        vec![0.0; channels],
        vec![0.0; channels],
        vec![FULL as f32; channels],
        vec![FULL as f32; channels],
        FULL,
    )
    .expect("equal tables")
}

fn meta(sop_class: &str, sop_instance: &str) -> DataSet {
    let mut m = DataSet::new();
    m.put_bytes(tag(2, 1), b"OB", vec![0, 1]);
    m.put_str(tag(2, 2), b"UI", sop_class);
    m.put_str(tag(2, 3), b"UI", sop_instance);
    // DICOS readers (SDICOS) require the DICOS version in the meta group.
    m.put_str(tag(2, 4), b"CS", DICOS_VERSION);
    m.put_str(tag(2, 0x10), b"UI", EXPLICIT_VR_LE);
    m.put_str(tag(2, 0x12), b"UI", IMPLEMENTATION_UID);
    m.put_str(tag(2, 0x13), b"SH", &format!("TWINSPECT_{}", env!("CARGO_PKG_VERSION").replace('.', "_")));
    m
}

/// What every DICOS object of one bag shares.
struct Common<'a> {
    row: &'a BagRow,
    study_uid: String,
    frame_uid: String,
    station: String,
    created_ms: u64,
    /// Detector channels (image rows).
    rows: f32,
    /// Lines (image columns).
    cols: f32,
}

impl Common<'_> {
    fn put(
        &self,
        ds: &mut DataSet,
        sop_class: &str,
        sop_instance: &str,
        modality: &str,
        series: (&str, u16),
    ) {
        let (sd, st) = date_time(self.row.started_ms);
        let (cd, ct) = date_time(self.created_ms);
        ds.put_str(tag(8, 5), b"CS", "ISO_IR 192");
        ds.put_str(tag(8, 0x12), b"DA", &cd);
        ds.put_str(tag(8, 0x13), b"TM", &ct);
        ds.put_str(tag(8, 0x16), b"UI", sop_class);
        ds.put_str(tag(8, 0x18), b"UI", sop_instance);
        ds.put_str(tag(8, 0x20), b"DA", &sd);
        ds.put_str(tag(8, 0x21), b"DA", &sd);
        ds.put_str(tag(8, 0x23), b"DA", &cd);
        ds.put_str(tag(8, 0x30), b"TM", &st);
        ds.put_str(tag(8, 0x31), b"TM", &st);
        ds.put_str(tag(8, 0x33), b"TM", &ct);
        ds.put_str(tag(8, 0x50), b"SH", "");
        ds.put_str(tag(8, 0x60), b"CS", modality);
        ds.put_str(tag(8, 0x70), b"LO", "Twinspect");
        ds.put_str(tag(8, 0x80), b"LO", "Twinspect inspection station");
        ds.put_str(tag(8, 0x81), b"ST", &self.station);
        ds.put_str(tag(8, 0x90), b"PN", "");
        ds.put_str(tag(8, 0x201), b"SH", "+0000");
        ds.put_str(tag(8, 0x1010), b"SH", &self.station.chars().take(16).collect::<String>());
        ds.put_str(tag(8, 0x1090), b"LO", "Twinspect workstation");
        // Object of inspection (the bag): the tag or barcode read upstream, else the archive id.
        ds.put_str(tag(0x10, 0x10), b"PN", "");
        let ooi = self.row.item_id.clone().unwrap_or_else(|| format!("ARCHIVE-{}", self.row.id));
        ds.put_str(tag(0x10, 0x20), b"LO", &ooi);
        ds.put_str(tag(0x10, 0x21), b"LO", "Twinspect");
        ds.put_str(tag(0x10, 0x22), b"CS", if self.row.item_id.is_some() { "BARCODE" } else { "TEXT" });
        ds.put_str(tag(0x10, 0x30), b"DA", "");
        ds.put_str(tag(0x10, 0x40), b"CS", "O");
        ds.put_str(tag(0x18, 0x1000), b"LO", &self.station.chars().take(64).collect::<String>());
        ds.put_str(tag(0x18, 0x1020), b"LO", env!("CARGO_PKG_VERSION"));
        ds.put_str(tag(0x18, 0x1200), b"DA", &sd);
        ds.put_str(tag(0x18, 0x1201), b"TM", &st);
        ds.put_str(tag(0x20, 0xd), b"UI", &self.study_uid);
        ds.put_str(tag(0x20, 0xe), b"UI", series.0);
        ds.put_str(tag(0x20, 0x10), b"SH", &self.row.id.to_string());
        ds.put_str(tag(0x20, 0x11), b"IS", &series.1.to_string());
        ds.put_str(tag(0x20, 0x13), b"IS", "1");
        ds.put_str(tag(0x20, 0x52), b"UI", &self.frame_uid);
        ds.put_str(tag(0x20, 0x1040), b"LO", "");
        ds.put_str(tag(0x4010, 0x103a), b"CS", DICOS_VERSION);
        ds.put_str(tag(0x4010, 0x1042), b"CS", "BAGGAGE");
        ds.put_str(tag(0x4010, 0x1044), b"CS", "SUCCESSFUL");
        ds.put_str(tag(0x4010, 0x1048), b"CS", "OPERATIONAL");
    }
}

/// One exported file.
#[derive(Clone, Debug)]
pub struct Written {
    pub path: PathBuf,
    pub sop_instance: String,
    pub what: String,
}

/// Write the bag's DX pair and a TDR per agency of `cfg` into `out` (created if needed); each
/// file is complete or absent. Returns the files in the order written.
pub fn export_bag(
    store: &Store,
    id: i64,
    cfg: &InspectionConfig,
    profile: &ScannerProfile,
    out: &Path,
    now_ms: u64,
) -> Result<Vec<Written>, DicosError> {
    let row = store.bag(id)?;
    let frame = store.scan(id)?;
    let calib = store.calibration(id)?;
    let rec = store.record(id)?;
    std::fs::create_dir_all(out).map_err(|e| file_err(out, e))?;
    let sha = row.scan_sha256.clone().unwrap_or_default();
    let key = format!("{}/{}/{}", row.id, row.started_ms, sha);
    let common = Common {
        row: &row,
        study_uid: uid(&["study", &key]),
        frame_uid: uid(&["frame", &key]),
        station: hostname(),
        created_ms: now_ms,
        rows: frame.channels() as f32,
        cols: frame.lines() as f32,
    };
    let (lines, channels) = (frame.lines(), frame.channels());
    if channels > u16::MAX as usize || lines > u16::MAX as usize {
        return Err(DicosError::Bad(format!(
            "bag {id}: {lines} lines x {channels} channels does not fit a DX image (at most 65535 each)"
        )));
    }
    let (low, high) = transmission_image(&frame, &calib);
    let model = crate::domain::physics::ForwardModel::new(profile.kvp, &profile.detector)
        .map_err(|e| DicosError::Bad(e.to_string()))?;
    let (e_low, e_high) = model.mean_energies_kev();
    let line_mm = profile.belt_speed_m_s * 1000.0 / profile.line_rate_hz;
    let mut written = Vec::new();
    let mut dx_refs = Vec::new();
    for (energy, name, pixels, e_kev) in [(1u16, "low", &low, e_low), (2, "high", &high, e_high)] {
        let series = uid(&["dx series", name, &key]);
        let sop = uid(&["dx", name, &key]);
        let mut ds = DataSet::new();
        common.put(&mut ds, DX_FOR_PROCESSING, &sop, "DX", (&series, energy));
        // DICOS's own Value 2 (what the pixels are: INTENSITY, transmitted intensity), not
        // DICOM DX's PRIMARY: SDICOS's validator refuses PRIMARY ("Image Type is invalid").
        ds.put_strs(tag(8, 8), b"CS", &["ORIGINAL", "INTENSITY"]);
        ds.put_str(tag(8, 0x22), b"DA", &date_time(row.started_ms).0);
        ds.put_str(tag(8, 0x32), b"TM", &date_time(row.started_ms).1);
        ds.put_str(tag(8, 0x68), b"CS", "FOR PROCESSING");
        // DICOS: image origin and coordinate system of the machine.
        ds.put_str(tag(8, 0x118), b"CS", "MACHINE");
        ds.put_str(tag(8, 0x103e), b"LO", &format!("{name} energy, {}", profile.name));
        ds.put_str(tag(8, 0x2108), b"CS", "RHS");
        ds.put_items(tag(8, 0x2218), Vec::new());
        ds.put_str(tag(0x18, 0x60), b"DS", &profile.kvp.to_string());
        ds.put_str(tag(0x18, 0x1030), b"LO", &profile.name);
        ds.put_strs(tag(0x18, 0x1164), b"DS", &[&ds_num(profile.pixel_pitch_mm), &ds_num(line_mm)]);
        ds.put_str(tag(0x18, 0x7004), b"CS", "SCINTILLATOR");
        // Tube current is not reported by the scanner: written as unknown (0).
        ds.put_str(tag(0x18, 0x8151), b"DS", "0");
        ds.put_str(tag(0x20, 0x12), b"IS", "1");
        ds.put_strs(tag(0x20, 0x20), b"CS", &["F", "L"]);
        ds.put_strs(tag(0x20, 0x32), b"DS", &["0", "0", "0"]);
        ds.put_strs(tag(0x20, 0x37), b"DS", &["1", "0", "0", "0", "1", "0"]);
        ds.put_str(tag(0x20, 0x62), b"CS", "U");
        ds.put_u16(tag(0x28, 2), 1);
        ds.put_str(tag(0x28, 4), b"CS", "MONOCHROME2");
        ds.put_u16(tag(0x28, 0x10), channels as u16);
        ds.put_u16(tag(0x28, 0x11), lines as u16);
        ds.put_u16(tag(0x28, 0x100), 16);
        ds.put_u16(tag(0x28, 0x101), 16);
        ds.put_u16(tag(0x28, 0x102), 15);
        ds.put_u16(tag(0x28, 0x103), 0);
        ds.put_str(tag(0x28, 0x301), b"CS", "NO");
        ds.put_str(tag(0x28, 0x1040), b"CS", "LIN");
        ds.put_i16(tag(0x28, 0x1041), 1);
        ds.put_str(tag(0x28, 0x1052), b"DS", "0");
        ds.put_str(tag(0x28, 0x1053), b"DS", "1");
        ds.put_str(tag(0x28, 0x1054), b"LO", "US");
        ds.put_str(tag(0x28, 0x2110), b"CS", "00");
        ds.put_str(tag(0x2050, 0x20), b"CS", "IDENTITY");
        ds.put_items(tag(0x40, 0x555), Vec::new());
        // DICOS: effective (mean detected) energy of this layer, keV.
        ds.put_f32s(tag(0x4300, 0x902), &[e_kev as f32]);
        ds.put_u16(tag(0x6100, 0x30), energy);
        ds.put_str(tag(0x6100, 0x31), b"LO", if energy == 1 { "LOW ENERGY" } else { "HIGH ENERGY" });
        ds.put_bytes(tag(0x7fe0, 0x10), b"OW", pixels.iter().flat_map(|v| v.to_le_bytes()).collect());
        let path = out.join(format!("bag-{id:08}-dx-{name}.dcs"));
        write_object(&path, DX_FOR_PROCESSING, &sop, &ds)?;
        dx_refs.push((series, sop.clone()));
        written.push(Written { path, sop_instance: sop, what: format!("DX {name} energy") });
    }
    for (i, agency) in cfg.agencies.iter().enumerate() {
        let marks: Vec<&Annotation> = rec.annotations.iter().filter(|a| a.agency == agency.id).collect();
        let decision = rec.current(&agency.id);
        let content = serde_json::json!({ "decision": decision, "marks": marks }).to_string();
        let sop = uid(&["tdr", &agency.id, &key, &content]);
        let series = uid(&["tdr series", &agency.id, &key]);
        let ds = tdr(&common, agency, decision, &marks, &dx_refs, &sop, &series, 3 + i as u16);
        let path = out.join(format!("bag-{id:08}-tdr-{}.dcs", agency.id));
        write_object(&path, TDR, &sop, &ds)?;
        written.push(Written {
            path,
            sop_instance: sop,
            what: format!("TDR {} ({} marks, {})", agency.id, marks.len(), alarm(decision, agency).0),
        });
    }
    // The opening's findings in force, one GROUND TRUTH report per agency that recorded them.
    let n_agencies = cfg.agencies.len() as u16;
    for (i, agency) in cfg.agencies.iter().enumerate() {
        let Some(found) = rec.findings_of(&agency.id) else { continue };
        let content = serde_json::to_string(found).unwrap_or_default();
        let sop = uid(&["findings", &agency.id, &key, &content]);
        let series = uid(&["findings series", &agency.id, &key]);
        let ds = findings_tdr(&common, agency, found, &dx_refs, (&sop, &series, 3 + n_agencies + i as u16));
        let path = out.join(format!("bag-{id:08}-findings-{}.dcs", agency.id));
        write_object(&path, TDR, &sop, &ds)?;
        let what = match found.items.len() {
            0 => "nothing found".to_owned(),
            n => format!("{n} kinds of item found"),
        };
        written.push(Written { path, sop_instance: sop, what: format!("findings {} ({what})", agency.id) });
    }
    Ok(written)
}

/// One DICOS object as a file, complete or absent.
fn write_object(path: &Path, sop_class: &str, sop: &str, ds: &DataSet) -> Result<(), DicosError> {
    crate::files::io::write_atomically(path, &encode_file(&meta(sop_class, sop), ds))
        .map_err(|e| DicosError::Bad(e.to_string()))
}

fn ds_num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.chars().take(16).collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// `(ALARM | CLEAR | UNKNOWN, assessment flag)` of an agency's decision in force.
fn alarm(
    d: Option<&crate::domain::inspection::Decision>,
    agency: &AgencyConfig,
) -> (&'static str, &'static str) {
    match d.and_then(|d| agency.decision(&d.code)).map(|c| c.kind) {
        None => ("UNKNOWN", "UNKNOWN"),
        Some(DispositionKind::Release) => ("CLEAR", "NO_THREAT"),
        Some(_) => ("ALARM", "THREAT"),
    }
}

fn code(value: &str, scheme: &str, meaning: &str) -> DataSet {
    let mut c = DataSet::new();
    c.put_str(tag(8, 0x100), b"SH", value);
    c.put_str(tag(8, 0x102), b"SH", scheme);
    c.put_str(tag(8, 0x104), b"LO", meaning);
    c
}

/// What a TDR is about: who reports, which agency, which series.
struct TdrHead<'a> {
    agency: &'a AgencyConfig,
    sop: &'a str,
    series: &'a str,
    series_number: u16,
    description: String,
    /// The operator reporting (`None`: nobody yet).
    operator: Option<&'a str>,
}

/// The elements every TDR of a bag has: the common modules, both DX images referenced, the
/// reporting operator with the agency's name as the organisation.
fn tdr_head(common: &Common, head: &TdrHead, dx: &[(String, String)]) -> DataSet {
    let mut ds = DataSet::new();
    common.put(&mut ds, TDR, head.sop, "TDR", (head.series, head.series_number));
    ds.put_str(tag(8, 0x103e), b"LO", &head.description.chars().take(64).collect::<String>());
    // Referenced scans (SDICOS reads (0008,1110) so) and series: both DX images.
    ds.put_items(tag(8, 0x1110), dx.iter().map(|(_, s)| image_ref(s)).collect());
    ds.put_items(
        tag(8, 0x1115),
        dx.iter()
            .map(|(series, s)| {
                let mut r = DataSet::new();
                r.put_str(tag(0x20, 0xe), b"UI", series);
                r.put_items(tag(8, 0x114a), vec![image_ref(s)]);
                r
            })
            .collect(),
    );
    let mut op = DataSet::new();
    // The second item is the ID's encoding type from DICOS context group DCS4: "Text Encoding"
    // is code 100001 (SDICOS's IdentificationEncodingType reads the type from this code and
    // meaning; a word such as "TEXT" leaves the operator unread).
    let mut id_type = code("100001", "DCS", "Text Encoding");
    id_type.put_str(tag(8, 0x105), b"CS", "DCS");
    id_type.put_str(tag(8, 0x106), b"DT", "20090101");
    id_type.put_str(tag(0x8, 0x10f), b"CS", "DCS4");
    let who = head.operator.unwrap_or("NONE");
    op.put_str(tag(8, 0x80), b"LO", &format!("{} {}", head.agency.name.en, head.agency.name.zh));
    op.put_items(
        tag(0x40, 0x1101),
        vec![code(who, "DCS", if head.operator.is_some() { who } else { "No decision yet" }), id_type],
    );
    ds.put_items(tag(8, 0x1072), vec![op]);
    ds
}

fn image_ref(sop: &str) -> DataSet {
    let mut r = DataSet::new();
    r.put_str(tag(8, 0x1150), b"UI", DX_FOR_PROCESSING);
    r.put_str(tag(8, 0x1155), b"UI", sop);
    r
}

#[allow(clippy::too_many_arguments)]
fn tdr(
    common: &Common,
    agency: &AgencyConfig,
    decision: Option<&crate::domain::inspection::Decision>,
    marks: &[&Annotation],
    dx: &[(String, String)],
    sop: &str,
    series: &str,
    series_number: u16,
) -> DataSet {
    let (alarm_decision, flag) = alarm(decision, agency);
    // The operator whose decision is in force, else the last who marked, else nobody yet.
    let operator = decision.map(|d| d.operator.clone()).or_else(|| marks.last().map(|m| m.operator.clone()));
    let head = TdrHead {
        agency,
        sop,
        series,
        series_number,
        description: format!("{} operator report", agency.name.en),
        operator: operator.as_deref(),
    };
    let mut ds = tdr_head(common, &head, dx);
    let mut threats = Vec::new();
    for (n, m) in marks.iter().enumerate() {
        // Marks count channels up from the bottom; the image's rows count down from the top.
        let pts: Vec<[f32; 2]> = m.shape.outline().into_iter().map(|[x, y]| [x, common.rows - y]).collect();
        let mut text = category_text(agency, &m.category);
        if !m.note.is_empty() {
            text.push_str(&format!("; note: {}", m.note));
        }
        text.push_str(&format!("; mark {} by {}", m.id, m.operator));
        let end = m.edited_ms.unwrap_or(m.created_ms);
        let object = Pto { category: &m.category, text, flag, times: (m.created_ms, end) };
        threats.push(pto(n + 1, &pts, dx, &object));
    }
    let n = marks.len() as u16;
    // Required even while undecided: then the time the report says UNKNOWN (the export).
    let at = decision.map_or(common.created_ms, |d| d.at_ms);
    let decided_after = decision.map_or(0, |d| d.at_ms.saturating_sub(common.row.started_ms));
    let alarms = if alarm_decision == "ALARM" { n } else { 0 };
    tdr_tail(&mut ds, threats, "OPERATOR", alarm_decision, at, (n, alarms), decided_after);
    ds
}

/// One potential threat object: what it is and when it was reported.
struct Pto<'a> {
    category: &'a str,
    text: String,
    flag: &'a str,
    /// Reported from, to (ms since the epoch).
    times: (u64, u64),
}

fn category_text(agency: &AgencyConfig, category: &str) -> String {
    match agency.categories.iter().find(|c| c.id == category).map(|c| &c.label) {
        Some(l) => format!("{category}: {} / {}", l.en, l.zh),
        None => category.to_owned(),
    }
}

/// A Threat Sequence item: `pts` outline the object in image pixels (rows from the top).
fn pto(id: usize, pts: &[[f32; 2]], dx: &[(String, String)], object: &Pto) -> DataSet {
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for [x, y] in pts {
        x0 = x0.min(*x);
        y0 = y0.min(*y);
        x1 = x1.max(*x);
        y1 = y1.max(*y);
    }
    let mut roi = DataSet::new();
    roi.put_f32s(tag(0x4010, 0x1004), &[x0, y0, 0.0]);
    roi.put_f32s(tag(0x4010, 0x1005), &[(x1 - x0).max(1.0), (y1 - y0).max(1.0), 1.0]);
    roi.put_bytes(tag(0x4010, 0x1006), b"OB", Vec::new());
    let mut rep = DataSet::new();
    rep.put_items(tag(8, 0x114a), dx.iter().map(|(_, s)| image_ref(s)).collect());
    rep.put_items(tag(0x4010, 0x1001), vec![roi]);
    let poly: Vec<f32> = pts.iter().flat_map(|[x, y]| [*x, *y, 0.0]).collect();
    rep.put_f32s(tag(0x4010, 0x101d), &poly);
    let mut assess = DataSet::new();
    assess.put_str(tag(0x4010, 0x1012), b"CS", threat_category(object.category));
    assess.put_str(tag(0x4010, 0x1013), b"LT", &object.text);
    assess.put_str(tag(0x4010, 0x1014), b"CS", "NO_INTERFERENCE");
    assess.put_str(tag(0x4010, 0x1015), b"CS", object.flag);
    let mut pto = DataSet::new();
    pto.put_u16(tag(0x4010, 0x1010), id as u16);
    pto.put_items(tag(0x4010, 0x1037), vec![rep]);
    pto.put_items(tag(0x4010, 0x1038), vec![assess]);
    let (start, end) = object.times;
    pto.put_str(tag(0x4010, 0x1080), b"DT", &dt(start));
    pto.put_str(tag(0x4010, 0x1081), b"DT", &dt(end));
    pto.put_f32s(tag(0x4010, 0x1082), &[end.saturating_sub(start) as f32]);
    pto
}

/// The Threat Detection Report module after the head: the objects, the report's type, the
/// alarm decision and when it was made, `(objects, alarm objects)`, the time it took.
fn tdr_tail(
    ds: &mut DataSet,
    threats: Vec<DataSet>,
    tdr_type: &str,
    alarm_decision: &str,
    at_ms: u64,
    (objects, alarms): (u16, u16),
    took_ms: u64,
) {
    ds.put_items(tag(0x4010, 0x1011), threats);
    ds.put_str(tag(0x4010, 0x1024), b"CS", "SUCCESS");
    ds.put_str(tag(0x4010, 0x1027), b"CS", tdr_type);
    ds.put_str(tag(0x4010, 0x102b), b"DT", &dt(at_ms));
    ds.put_str(tag(0x4010, 0x1031), b"CS", alarm_decision);
    ds.put_u16(tag(0x4010, 0x1033), objects);
    ds.put_u16(tag(0x4010, 0x1034), alarms);
    ds.put_f32s(tag(0x4010, 0x1069), &[took_ms as f32]);
    ds.put_str(tag(0x4010, 0x106d), b"CS", "NO");
    // DICOS defines Image Scale Representation as FD (DICOM's dictionary says DS): 1 pixel.
    ds.put_f64(tag(0x4010, 0x1075), 1.0);
}

/// Private creator of Twinspect's own elements (group 0011, block 10).
pub const PRIVATE_CREATOR: &str = "TWINSPECT 1";
/// (0011,1001) LT: the treatment an agency recorded at the opening (no DICOS attribute holds it).
pub const TAG_TREATMENT: u32 = 0x0011_1001;

/// The GROUND_TRUTH TDR of one agency's findings at the bag's opening: what was established by
/// opening the bag rather than by looking at its image. ALARM when anything was found, CLEAR
/// when nothing; each found item is a threat object whose count and note are in its
/// description. Where an item lay is not recorded at the bench, so its ROI and outline are the
/// whole image. The treatment goes to a private element (no DICOS attribute holds it).
fn findings_tdr(
    common: &Common,
    agency: &AgencyConfig,
    found: &Findings,
    dx: &[(String, String)],
    (sop, series, series_number): (&str, &str, u16),
) -> DataSet {
    let head = TdrHead {
        agency,
        sop,
        series,
        series_number,
        description: format!("{} opening findings", agency.name.en),
        operator: Some(&found.operator),
    };
    let mut ds = tdr_head(common, &head, dx);
    if let Some(t) = &found.treatment {
        ds.put_str(0x0011_0010, b"LO", PRIVATE_CREATOR);
        ds.put_str(TAG_TREATMENT, b"LT", t);
    }
    let whole = [[0.0, 0.0], [common.cols, 0.0], [common.cols, common.rows], [0.0, common.rows]];
    let threats: Vec<DataSet> = found
        .items
        .iter()
        .enumerate()
        .map(|(n, it)| {
            let mut text = format!("{}; count {}", category_text(agency, &it.category), it.count);
            if !it.note.is_empty() {
                text.push_str(&format!("; note: {}", it.note));
            }
            text.push_str(&format!(
                "; found at the opening by {}; place in the bag not recorded",
                found.operator
            ));
            let object =
                Pto { category: &it.category, text, flag: "THREAT", times: (found.at_ms, found.at_ms) };
            pto(n + 1, &whole, dx, &object)
        })
        .collect();
    let n = threats.len() as u16;
    let alarm = if n > 0 { "ALARM" } else { "CLEAR" };
    let took = found.at_ms.saturating_sub(common.row.started_ms);
    tdr_tail(&mut ds, threats, "GROUND TRUTH", alarm, found.at_ms, (n, n), took);
    ds
}

/// A DX pair read back: the frame (lines x channels) with the identity calibration.
#[derive(Debug)]
pub struct Imported {
    pub frame: RawFrame,
    pub calibration: Calibration,
    pub ooi_id: String,
    pub study_uid: String,
    /// The profile named in the files (Protocol Name), if any.
    pub profile: Option<String>,
    pub kvp: Option<u32>,
    pub started_ms: Option<u64>,
    /// Files in the folders given that are not DICOS DX images (TDRs included).
    pub skipped: Vec<PathBuf>,
}

struct Dx {
    energy: u16,
    rows: usize,
    cols: usize,
    pixels: Vec<u16>,
    study: String,
    ooi: String,
    profile: Option<String>,
    kvp: Option<u32>,
    date: Option<u64>,
}

/// `Ok(None)`: a TDR, or (when `lenient`, for files found in a folder) not a DICOS DX image.
fn read_dx(path: &Path, bytes: &[u8], lenient: bool) -> Result<Option<Dx>, DicosError> {
    let (_meta, ds) = parse_file(bytes).map_err(|e| file_err(path, e))?;
    let class = ds.str(tag(8, 0x16)).unwrap_or_default();
    let dx = class == DX_FOR_PROCESSING || class == DX_FOR_PRESENTATION;
    if class == TDR || (lenient && !dx) {
        return Ok(None);
    }
    if !dx {
        return Err(file_err(path, format!("SOP class {class:?} is not a DICOS DX image")));
    }
    let e = |m: String| file_err(path, m);
    let n = |t: u32, name: &str| ds.u16(t).ok_or_else(|| e(format!("{name} is missing")));
    let energy = ds.u16(tag(0x6100, 0x30)).ok_or_else(|| e("Series Energy (6100,0030) is missing".into()))?;
    if energy != 1 && energy != 2 {
        return Err(e(format!("Series Energy {energy}: only 1 (low) and 2 (high) are read")));
    }
    let rows = n(tag(0x28, 0x10), "Rows")? as usize;
    let cols = n(tag(0x28, 0x11), "Columns")? as usize;
    if rows == 0 || cols == 0 || rows > MAX_ROWS || cols > MAX_COLUMNS {
        return Err(e(format!("{rows} x {cols} pixels is outside 1..={MAX_ROWS} x 1..={MAX_COLUMNS}")));
    }
    if n(tag(0x28, 0x100), "Bits Allocated")? != 16
        || n(tag(0x28, 2), "Samples per Pixel")? != 1
        || ds.u16(tag(0x28, 0x103)).unwrap_or(0) != 0
    {
        return Err(e("only unsigned 16-bit single-sample images are read".into()));
    }
    let data = ds.bytes(tag(0x7fe0, 0x10)).ok_or_else(|| e("Pixel Data is missing".into()))?;
    if data.len() < rows * cols * 2 {
        return Err(e(format!(
            "Pixel Data holds {} bytes, {rows} x {cols} pixels need {}",
            data.len(),
            rows * cols * 2
        )));
    }
    let pixels = data[..rows * cols * 2].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let date = ds.str(tag(8, 0x20)).and_then(|d| parse_da_tm(&d, &ds.str(tag(8, 0x30)).unwrap_or_default()));
    Ok(Some(Dx {
        energy,
        rows,
        cols,
        pixels,
        study: ds.str(tag(0x20, 0xd)).unwrap_or_default(),
        ooi: ds.str(tag(0x10, 0x20)).unwrap_or_default(),
        profile: ds.str(tag(0x18, 0x1030)).filter(|s| !s.is_empty()),
        kvp: ds.str(tag(0x18, 0x60)).and_then(|s| s.parse::<f64>().ok()).map(|v| v.round() as u32),
        date,
    }))
}

/// A DICOM DA (`YYYYMMDD`) and TM (`HHMMSS`, minutes and seconds optional) in UTC as Unix
/// milliseconds; `None` for an impossible date or one before 1970.
fn parse_da_tm(da: &str, tm: &str) -> Option<u64> {
    let num = |s: Option<&str>| -> Option<i8> { s.map_or(Some(0), |s| s.parse().ok()) };
    let date = jiff::civil::Date::new(
        da.get(0..4)?.parse().ok()?,
        da.get(4..6)?.parse().ok()?,
        da.get(6..8)?.parse().ok()?,
    )
    .ok()?;
    let time = jiff::civil::Time::new(num(tm.get(0..2))?, num(tm.get(2..4))?, num(tm.get(4..6))?, 0).ok()?;
    let ms = date.to_datetime(time).to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_millisecond();
    u64::try_from(ms).ok()
}

/// Read a DICOS DX pair from `paths` (files, or folders whose `*.dcs`/`*.dcm` files are read;
/// TDRs among them are skipped): exactly one low- and one high-energy image of one study, of
/// equal size.
pub fn import_pair(paths: &[PathBuf]) -> Result<Imported, DicosError> {
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| file_err(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "dcs" || x == "dcm"))
                .collect();
            v.sort();
            files.extend(v.into_iter().map(|f| (f, true)));
        } else {
            files.push((p.clone(), false));
        }
    }
    let mut found: Vec<Dx> = Vec::new();
    let mut skipped = Vec::new();
    for (f, in_folder) in &files {
        let meta = std::fs::metadata(f).map_err(|e| file_err(f, e))?;
        let limit = (MAX_ROWS * MAX_COLUMNS * 2 + (1 << 20)) as u64;
        if meta.len() > limit {
            return Err(file_err(f, format!("{} bytes is more than any DX image read here", meta.len())));
        }
        let bytes = std::fs::read(f).map_err(|e| file_err(f, e))?;
        match read_dx(f, &bytes, *in_folder) {
            Ok(Some(dx)) => found.push(dx),
            Ok(None) => skipped.push(f.clone()),
            // A damaged file in a folder is still an error: it may be the image wanted.
            Err(e) => return Err(e),
        }
    }
    let pick = |energy: u16| -> Result<&Dx, DicosError> {
        let v: Vec<&Dx> = found.iter().filter(|d| d.energy == energy).collect();
        match v.as_slice() {
            [one] => Ok(one),
            [] => Err(DicosError::Bad(format!(
                "no {} energy DX image (Series Energy {energy}) among {} file(s)",
                if energy == 1 { "low" } else { "high" },
                files.len()
            ))),
            _ => Err(DicosError::Bad(format!(
                "{} images of Series Energy {energy}: give the files of one bag",
                v.len()
            ))),
        }
    };
    let (lo, hi) = (pick(1)?, pick(2)?);
    if lo.study != hi.study {
        return Err(DicosError::Bad(format!(
            "the low and high energy images belong to different inspections ({} and {})",
            lo.study, hi.study
        )));
    }
    if (lo.rows, lo.cols) != (hi.rows, hi.cols) {
        return Err(DicosError::Bad(format!(
            "the low energy image is {} x {}, the high {} x {}",
            lo.rows, lo.cols, hi.rows, hi.cols
        )));
    }
    let (channels, lines) = (lo.rows, lo.cols);
    let transpose =
        |p: &[u16]| Array2::from_shape_fn((lines, channels), |(l, c)| p[(channels - 1 - c) * lines + l]);
    Ok(Imported {
        frame: RawFrame { low: transpose(&lo.pixels), high: transpose(&hi.pixels) },
        calibration: identity_calibration(channels),
        ooi_id: lo.ooi.clone(),
        study_uid: lo.study.clone(),
        profile: lo.profile.clone(),
        kvp: lo.kvp,
        started_ms: lo.date,
        skipped,
    })
}
