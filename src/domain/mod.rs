//! The domain core: scanner physics, profiles, synthetic bags, calibration, material
//! discrimination and the meaning of view settings.
//!
//! Pure: no egui, no wgpu, no tokio, no files except what is embedded at compile time. Everything
//! here can be tested and driven without a window or a GPU.

pub mod calib;
pub mod material;
pub mod physics;
pub mod profile;
pub mod rng;
pub mod scan;
pub mod synth;
pub mod view;
