//! The domain core: scanner physics, profiles, synthetic bags, calibration, material
//! discrimination, the meaning of view settings, and inspection by two agencies (bags,
//! annotations, disposals, outcomes, operators), the sorter's lanes, central screening's automatic level, threat image projection for
//! training.
//!
//! Pure: no egui, no wgpu, no tokio, no files except what is embedded at compile time. Everything
//! here can be tested and driven without a window or a GPU.

pub mod automatic;
pub mod calib;
pub mod inspection;
pub mod material;
pub mod measure;
pub mod operators;
pub mod physics;
pub mod profile;
pub mod rng;
pub mod scan;
pub mod session;
pub mod sorting;
pub mod synth;
pub mod tip;
pub mod view;
