//! The Rust port of the forward model reproduces the reference table (`assets/physics/
//! reference_detector_response.csv`, computed by the reference model) within 0.1 % relative for
//! every row, at both tube voltages.

use twinspect::domain::physics::{Detector, ForwardModel, reference_rows};

#[test]
fn forward_model_reproduces_every_reference_row() {
    let rows = reference_rows().unwrap();
    assert_eq!(rows.len(), 294, "21 materials x 7 areal densities x 2 kVp");
    let m140 = ForwardModel::new(140, &Detector::reference()).unwrap();
    let m160 = ForwardModel::new(160, &Detector::reference()).unwrap();
    let mut worst = 0.0f64;
    for r in &rows {
        let m = if r.kvp == 140 { &m140 } else { &m160 };
        let (lo, hi) = m.material(&r.material, r.areal_g_cm2).unwrap();
        let e = ((lo / r.log_att_low - 1.0).abs()).max((hi / r.log_att_high - 1.0).abs());
        assert!(
            e < 1e-3,
            "{} {} kVp {} g/cm2: ({lo}, {hi}) vs ({}, {})",
            r.material,
            r.kvp,
            r.areal_g_cm2,
            r.log_att_low,
            r.log_att_high
        );
        worst = worst.max(e);
    }
    eprintln!("worst relative error over {} rows: {worst:.2e}", rows.len());
}

#[test]
fn the_model_is_sensitive_to_the_detector() {
    // Not a tautology: a different filter changes the answer well beyond the tolerance.
    let mut d = Detector::reference();
    d.filter.thickness_mm = 1.0;
    let thick = ForwardModel::new(140, &d).unwrap().material("water", 8.0).unwrap();
    let reference = ForwardModel::new(140, &Detector::reference()).unwrap().material("water", 8.0).unwrap();
    assert!((thick.1 / reference.1 - 1.0).abs() > 0.005, "{thick:?} vs {reference:?}");
}
