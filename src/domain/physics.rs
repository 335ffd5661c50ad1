//! Physics of the scanner: tube spectra, mass attenuation tables and the energy-integrating
//! sandwich-detector forward model that every other part of Twinspect treats as ground truth.
//!
//! Owns: parsing of the embedded physics tables (`assets/physics/*.csv`, sources named in
//! `assets/physics/SOURCE.md`), [`ForwardModel`] (exact, on the full 0.5 keV grid) and
//! [`FastModel`] (the same model on coarser energy bins, for the synthetic scanner's hot loop).
//!
//! Model (the reference of `reference_detector_response.csv`): for each layer,
//! `signal = sum_E fluence(E) * E * T_object(E) * absorption_layer(E)`, where the high-energy layer
//! also sees only what passed the low layer and the copper filter; `A = -ln(signal / signal_air)`.
//!
//! Must not import: egui, wgpu, tokio, or any I/O beyond the embedded tables.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Errors in the physics tables or in a request to the model.
#[derive(Debug, thiserror::Error)]
pub enum PhysicsError {
    #[error("physics table {table}: {message}")]
    Table { table: &'static str, message: String },
    #[error("unknown material {0:?} (not in mass_attenuation.csv)")]
    UnknownMaterial(String),
    #[error("no tube spectrum for {0} kVp (spectra.csv has {1:?})")]
    UnknownKvp(u32, Vec<u32>),
}

/// Material class as shown on screen (display convention of dual-energy scanners).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum MaterialClass {
    /// Zeff below 10: orange.
    Organic,
    /// Zeff 10 to 18: green.
    Inorganic,
    /// Zeff above 18: blue.
    Metal,
    /// Not penetrated by the beam: the dense-object alert.
    Dense,
}

impl MaterialClass {
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialClass::Organic => "organic",
            MaterialClass::Inorganic => "inorganic",
            MaterialClass::Metal => "metal",
            MaterialClass::Dense => "dense",
        }
    }

    /// Class of an effective atomic number (not of a dense, unpenetrated pixel).
    pub fn from_zeff(zeff: f32) -> Self {
        if zeff < ZEFF_ORGANIC_MAX {
            MaterialClass::Organic
        } else if zeff <= ZEFF_INORGANIC_MAX {
            MaterialClass::Inorganic
        } else {
            MaterialClass::Metal
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "organic" => Some(MaterialClass::Organic),
            "inorganic" => Some(MaterialClass::Inorganic),
            "metal" => Some(MaterialClass::Metal),
            "dense" => Some(MaterialClass::Dense),
            _ => None,
        }
    }
}

/// Organic below this effective atomic number.
pub const ZEFF_ORGANIC_MAX: f32 = 10.0;
/// Inorganic up to and including this effective atomic number; metal above.
pub const ZEFF_INORGANIC_MAX: f32 = 18.0;

/// One row of `materials.csv`.
#[derive(Clone, Debug)]
pub struct MaterialInfo {
    pub name: String,
    pub composition: String,
    pub density_g_cm3: f64,
    /// Effective atomic number (power 2.94); `None` for detector materials.
    pub zeff: Option<f64>,
    /// `organic|inorganic|metal`, or `None` for detector materials.
    pub class: Option<MaterialClass>,
}

/// The parsed physics tables.
#[derive(Debug)]
pub struct PhysicsTables {
    /// Bin centres in keV (0.5 keV bins).
    pub energies_kev: Vec<f64>,
    spectra: BTreeMap<u32, Vec<f64>>,
    mu: BTreeMap<String, Vec<f64>>,
    materials: Vec<MaterialInfo>,
}

const SPECTRA_CSV: &str = include_str!("../../assets/physics/spectra.csv");
const MU_CSV: &str = include_str!("../../assets/physics/mass_attenuation.csv");
const MATERIALS_CSV: &str = include_str!("../../assets/physics/materials.csv");
/// The reference table, embedded for tests and for `twinspect classify` self-checks.
pub const REFERENCE_RESPONSE_CSV: &str = include_str!("../../assets/physics/reference_detector_response.csv");

fn table_err(table: &'static str, message: impl Into<String>) -> PhysicsError {
    PhysicsError::Table { table, message: message.into() }
}

fn parse_numeric_table(
    table: &'static str,
    text: &str,
) -> Result<(Vec<String>, Vec<Vec<f64>>), PhysicsError> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers: Vec<String> =
        rdr.headers().map_err(|e| table_err(table, e.to_string()))?.iter().map(str::to_owned).collect();
    let mut cols = vec![Vec::new(); headers.len()];
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| table_err(table, e.to_string()))?;
        if rec.len() != headers.len() {
            return Err(table_err(table, format!("row {} has {} fields", row + 2, rec.len())));
        }
        for (c, field) in rec.iter().enumerate() {
            let v: f64 = field
                .trim()
                .parse()
                .map_err(|_| table_err(table, format!("row {} column {}: {field:?}", row + 2, headers[c])))?;
            if !v.is_finite() || v < 0.0 {
                return Err(table_err(table, format!("row {} column {}: {v}", row + 2, headers[c])));
            }
            cols[c].push(v);
        }
    }
    Ok((headers, cols))
}

impl PhysicsTables {
    /// The tables embedded in the binary, parsed once.
    pub fn builtin() -> &'static PhysicsTables {
        static TABLES: OnceLock<PhysicsTables> = OnceLock::new();
        TABLES.get_or_init(|| {
            PhysicsTables::parse(SPECTRA_CSV, MU_CSV, MATERIALS_CSV)
                .expect("embedded physics tables are valid (checked by tests)")
        })
    }

    pub fn parse(spectra: &str, mu: &str, materials: &str) -> Result<Self, PhysicsError> {
        let (sh, sc) = parse_numeric_table("spectra.csv", spectra)?;
        let (mh, mc) = parse_numeric_table("mass_attenuation.csv", mu)?;
        if sh.first().map(String::as_str) != Some("energy_kev")
            || mh.first().map(String::as_str) != Some("energy_kev")
        {
            return Err(table_err("spectra.csv", "first column must be energy_kev"));
        }
        if sc[0] != mc[0] {
            return Err(table_err("mass_attenuation.csv", "energy grid differs from spectra.csv"));
        }
        let mut spectra_map = BTreeMap::new();
        for (h, col) in sh.iter().zip(&sc).skip(1) {
            let kvp = h
                .strip_prefix("fluence_")
                .and_then(|s| s.strip_suffix("kvp"))
                .and_then(|s| s.parse::<u32>().ok())
                .ok_or_else(|| table_err("spectra.csv", format!("bad column {h:?}")))?;
            spectra_map.insert(kvp, col.clone());
        }
        let mu_map: BTreeMap<String, Vec<f64>> = mh.iter().cloned().zip(mc.iter().cloned()).skip(1).collect();

        let mut rdr = csv::ReaderBuilder::new().from_reader(materials.as_bytes());
        let mut infos = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| table_err("materials.csv", e.to_string()))?;
            let get = |i: usize| rec.get(i).unwrap_or("").trim().to_owned();
            let name = get(0);
            if !mu_map.contains_key(&name) {
                return Err(table_err("materials.csv", format!("{name} has no attenuation data")));
            }
            let density_g_cm3 =
                get(2).parse().map_err(|_| table_err("materials.csv", format!("{name}: bad density")))?;
            let zeff = get(3).parse().ok();
            let class = MaterialClass::parse(&get(4));
            infos.push(MaterialInfo { name, composition: get(1), density_g_cm3, zeff, class });
        }
        Ok(PhysicsTables { energies_kev: sc[0].clone(), spectra: spectra_map, mu: mu_map, materials: infos })
    }

    pub fn spectrum(&self, kvp: u32) -> Result<&[f64], PhysicsError> {
        self.spectra
            .get(&kvp)
            .map(Vec::as_slice)
            .ok_or_else(|| PhysicsError::UnknownKvp(kvp, self.spectra.keys().copied().collect()))
    }

    /// Mass attenuation coefficient (cm^2/g) of a material on the energy grid.
    pub fn mu(&self, material: &str) -> Result<&[f64], PhysicsError> {
        self.mu
            .get(material)
            .map(Vec::as_slice)
            .ok_or_else(|| PhysicsError::UnknownMaterial(material.to_owned()))
    }

    pub fn materials(&self) -> &[MaterialInfo] {
        &self.materials
    }

    pub fn material(&self, name: &str) -> Option<&MaterialInfo> {
        self.materials.iter().find(|m| m.name == name)
    }

    /// Materials a bag can be made of (those with a class; not the detector's own).
    pub fn object_materials(&self) -> impl Iterator<Item = &MaterialInfo> {
        self.materials.iter().filter(|m| m.class.is_some())
    }
}

/// One layer of the detector sandwich.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectorLayer {
    /// Name of a material in `mass_attenuation.csv` (`csi`, `cu_filter`, `cdwo4`).
    pub material: String,
    pub thickness_mm: f64,
    pub density_g_cm3: f64,
}

impl DetectorLayer {
    fn transmission(&self, mu: f64) -> f64 {
        (-mu * self.density_g_cm3 * self.thickness_mm / 10.0).exp()
    }
}

/// The dual-energy sandwich: low-energy scintillator, filter, high-energy scintillator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detector {
    pub low: DetectorLayer,
    pub filter: DetectorLayer,
    pub high: DetectorLayer,
}

impl Detector {
    /// The reference detector of the physics table: 0.5 mm CsI, 0.5 mm Cu, 3 mm CdWO4.
    pub fn reference() -> Self {
        Detector {
            low: DetectorLayer { material: "csi".into(), thickness_mm: 0.5, density_g_cm3: 4.51 },
            filter: DetectorLayer { material: "cu_filter".into(), thickness_mm: 0.5, density_g_cm3: 8.96 },
            high: DetectorLayer { material: "cdwo4".into(), thickness_mm: 3.0, density_g_cm3: 7.9 },
        }
    }
}

/// Exact forward model on the full energy grid: the reference the table was made with.
#[derive(Clone, Debug)]
pub struct ForwardModel {
    /// Per energy bin: fluence * E * absorption of the low layer.
    w_low: Vec<f64>,
    /// Per energy bin: fluence * E * T_low * T_filter * absorption of the high layer.
    w_high: Vec<f64>,
    air_low: f64,
    air_high: f64,
    tables: &'static PhysicsTables,
}

impl ForwardModel {
    pub fn new(kvp: u32, detector: &Detector) -> Result<Self, PhysicsError> {
        Self::with_tables(PhysicsTables::builtin(), kvp, detector)
    }

    pub fn with_tables(
        tables: &'static PhysicsTables,
        kvp: u32,
        detector: &Detector,
    ) -> Result<Self, PhysicsError> {
        let fluence = tables.spectrum(kvp)?;
        let mu_lo = tables.mu(&detector.low.material)?;
        let mu_f = tables.mu(&detector.filter.material)?;
        let mu_hi = tables.mu(&detector.high.material)?;
        let mut w_low = Vec::with_capacity(fluence.len());
        let mut w_high = Vec::with_capacity(fluence.len());
        for (i, (&f, &e)) in fluence.iter().zip(&tables.energies_kev).enumerate() {
            let t_lo = detector.low.transmission(mu_lo[i]);
            let t_f = detector.filter.transmission(mu_f[i]);
            let t_hi = detector.high.transmission(mu_hi[i]);
            w_low.push(f * e * (1.0 - t_lo));
            w_high.push(f * e * t_lo * t_f * (1.0 - t_hi));
        }
        let air_low = w_low.iter().sum();
        let air_high = w_high.iter().sum();
        Ok(ForwardModel { w_low, w_high, air_low, air_high, tables })
    }

    /// Mean energy (keV) of what each layer detects in air, weighted as the layer's signal is
    /// (the "effective energy" DICOS images carry).
    pub fn mean_energies_kev(&self) -> (f64, f64) {
        let e = &self.tables.energies_kev;
        let mean = |w: &[f64], total: f64| w.iter().zip(e).map(|(w, e)| w * e).sum::<f64>() / total;
        (mean(&self.w_low, self.air_low), mean(&self.w_high, self.air_high))
    }

    /// `(A_low, A_high)` behind an object whose linear attenuation integral at energy bin `i`
    /// is `mu_rho(i)` (sum over materials of mu/rho * areal density).
    pub fn log_att_with(&self, mu_rho: impl Fn(usize) -> f64) -> (f64, f64) {
        let (mut s_lo, mut s_hi) = (0.0, 0.0);
        for i in 0..self.w_low.len() {
            let t = (-mu_rho(i)).exp();
            s_lo += self.w_low[i] * t;
            s_hi += self.w_high[i] * t;
        }
        (-(s_lo / self.air_low).ln(), -(s_hi / self.air_high).ln())
    }

    /// `(A_low, A_high)` behind `areal_g_cm2` of one material.
    pub fn material(&self, name: &str, areal_g_cm2: f64) -> Result<(f64, f64), PhysicsError> {
        let mu = self.tables.mu(name)?;
        Ok(self.log_att_with(|i| mu[i] * areal_g_cm2))
    }

    /// `(A_low, A_high)` behind a stack of materials `(name, g/cm^2)`.
    pub fn stack(&self, layers: &[(&str, f64)]) -> Result<(f64, f64), PhysicsError> {
        let mus: Vec<(&[f64], f64)> =
            layers.iter().map(|(n, a)| Ok((self.tables.mu(n)?, *a))).collect::<Result<_, _>>()?;
        Ok(self.log_att_with(|i| mus.iter().map(|(mu, a)| mu[i] * a).sum()))
    }

    /// The same model on bins `bin_kev` wide (fluence-weighted mean attenuation per bin), for
    /// per-pixel use. Accurate to about 1 % in A below A_high = 8 with 2 keV bins (tested).
    pub fn fast(&self, bin_kev: f64, materials: &[&str]) -> Result<FastModel, PhysicsError> {
        let e = &self.tables.energies_kev;
        let mus: Vec<&[f64]> = materials.iter().map(|m| self.tables.mu(m)).collect::<Result<_, _>>()?;
        // Bins `bin_kev` wide, and a new bin at every absorption edge (a jump of mu between
        // neighbouring grid points), so no bin averages across a K-edge.
        let mut bins: Vec<(f64, f64, Vec<f64>, f64)> = Vec::new(); // w_lo, w_hi, mu*w, weight
        let mut bin_start = f64::NEG_INFINITY;
        for i in 0..e.len() {
            let w = self.w_low[i] + self.w_high[i];
            if w <= 0.0 {
                continue;
            }
            let edge = i > 0 && mus.iter().any(|mu| mu[i] > mu[i - 1] * 1.05);
            if bins.is_empty() || edge || e[i] - bin_start >= bin_kev {
                bins.push((0.0, 0.0, vec![0.0; mus.len()], 0.0));
                bin_start = e[i];
            }
            let bin = bins.last_mut().expect("pushed above");
            bin.0 += self.w_low[i];
            bin.1 += self.w_high[i];
            for (m, mu) in mus.iter().enumerate() {
                bin.2[m] += mu[i] * w;
            }
            bin.3 += w;
        }
        bins.retain(|b| b.3 > 0.0);
        let n = bins.len();
        let mut mu_t = vec![0f32; materials.len() * n];
        for (j, b) in bins.iter().enumerate() {
            for m in 0..materials.len() {
                mu_t[m * n + j] = (b.2[m] / b.3) as f32;
            }
        }
        Ok(FastModel {
            materials: materials.iter().map(|s| s.to_string()).collect(),
            w_low: bins.iter().map(|b| (b.0 / self.air_low) as f32).collect(),
            w_high: bins.iter().map(|b| (b.1 / self.air_high) as f32).collect(),
            mu: mu_t,
            bins: n,
        })
    }
}

/// The forward model on coarse energy bins and a fixed list of materials, in `f32`, for the
/// synthetic scanner (millions of pixels per second). Weights are normalised to air = 1.
#[derive(Clone, Debug)]
pub struct FastModel {
    pub materials: Vec<String>,
    w_low: Vec<f32>,
    w_high: Vec<f32>,
    /// `mu[m * bins + j]`: mass attenuation of material `m` in bin `j`.
    mu: Vec<f32>,
    bins: usize,
}

impl FastModel {
    pub fn bins(&self) -> usize {
        self.bins
    }

    pub fn material_index(&self, name: &str) -> Option<usize> {
        self.materials.iter().position(|m| m == name)
    }

    /// Mass attenuation (cm^2/g) of material `m` in each bin.
    pub fn mu_bins(&self, m: usize) -> &[f32] {
        &self.mu[m * self.bins..(m + 1) * self.bins]
    }

    /// Each bin's weight in the low and the high signal (air = 1).
    pub fn weights(&self) -> (&[f32], &[f32]) {
        (&self.w_low, &self.w_high)
    }

    /// Transmissions `(T_low, T_high)` behind areal densities `areal[m]` (g/cm^2 per material,
    /// indexed like [`FastModel::materials`]). `scratch` must hold `bins()` values.
    pub fn transmission(&self, areal: &[f32], scratch: &mut [f32]) -> (f32, f32) {
        let n = self.bins;
        let scratch = &mut scratch[..n];
        scratch.fill(0.0);
        for (m, &a) in areal.iter().enumerate() {
            if a > 0.0 {
                let mu = &self.mu[m * n..(m + 1) * n];
                for (s, &u) in scratch.iter_mut().zip(mu) {
                    *s += u * a;
                }
            }
        }
        let (mut lo, mut hi) = (0.0f32, 0.0f32);
        for ((s, wl), wh) in scratch.iter().zip(&self.w_low).zip(&self.w_high) {
            let t = (-s).exp();
            lo += wl * t;
            hi += wh * t;
        }
        (lo, hi)
    }
}

/// One row of the reference detector response table.
#[derive(Clone, Debug)]
pub struct ReferenceRow {
    pub material: String,
    pub kvp: u32,
    pub areal_g_cm2: f64,
    pub log_att_low: f64,
    pub log_att_high: f64,
    pub class: Option<MaterialClass>,
}

/// The embedded `reference_detector_response.csv`.
pub fn reference_rows() -> Result<Vec<ReferenceRow>, PhysicsError> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(REFERENCE_RESPONSE_CSV.as_bytes());
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| table_err("reference_detector_response.csv", e.to_string()))?;
        let num = |i: usize| -> Result<f64, PhysicsError> {
            rec.get(i)
                .unwrap_or("")
                .parse()
                .map_err(|_| table_err("reference_detector_response.csv", format!("bad number in {rec:?}")))
        };
        rows.push(ReferenceRow {
            material: rec.get(0).unwrap_or("").to_owned(),
            kvp: num(1)? as u32,
            areal_g_cm2: num(2)?,
            log_att_low: num(3)?,
            log_att_high: num(4)?,
            class: MaterialClass::parse(rec.get(7).unwrap_or("")),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse_and_cover_the_grid() {
        let t = PhysicsTables::builtin();
        assert_eq!(t.energies_kev.len(), 318);
        assert!(t.spectrum(140).is_ok() && t.spectrum(160).is_ok());
        assert!(matches!(t.spectrum(120), Err(PhysicsError::UnknownKvp(120, _))));
        assert_eq!(t.object_materials().count(), 21);
        assert!(t.mu("unobtainium").is_err());
    }

    #[test]
    fn corrupt_table_is_an_error_not_a_panic() {
        let bad = "energy_kev,fluence_140kvp\n1.0,abc\n";
        assert!(PhysicsTables::parse(bad, MU_CSV, MATERIALS_CSV).is_err());
        let neg = "energy_kev,fluence_140kvp\n1.0,-1\n";
        assert!(PhysicsTables::parse(neg, MU_CSV, MATERIALS_CSV).is_err());
    }

    #[test]
    fn fast_model_tracks_exact_model() {
        let m = ForwardModel::new(140, &Detector::reference()).unwrap();
        let names = ["water", "iron", "lead", "glass"];
        let fast = m.fast(2.0, &names).unwrap();
        let mut scratch = vec![0.0; fast.bins()];
        for (k, name) in names.iter().enumerate() {
            for areal in [0.5, 2.0, 8.0] {
                let (a_lo, a_hi) = m.material(name, areal).unwrap();
                if a_hi > 8.0 {
                    continue;
                }
                let mut v = vec![0.0f32; names.len()];
                v[k] = areal as f32;
                let (t_lo, t_hi) = fast.transmission(&v, &mut scratch);
                let (f_lo, f_hi) = (-(t_lo as f64).ln(), -(t_hi as f64).ln());
                assert!((f_lo - a_lo).abs() / a_lo < 0.01, "{name} {areal}: {f_lo} vs {a_lo}");
                assert!((f_hi - a_hi).abs() / a_hi < 0.01, "{name} {areal}: {f_hi} vs {a_hi}");
            }
        }
    }
}
