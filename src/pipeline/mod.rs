//! Image processing: calibrated raw lines to display pixels, on the GPU (wgpu compute, WGSL in
//! `shaders/`) and on the CPU (the reference twin the GPU is tested against).
//!
//! Owns: [`params::Params`] (the uniform block), [`cpu`] (reference), [`gpu`] (kernels, buffers,
//! live ring, readback). Must not import: egui, the UI, or any source.

pub mod cpu;
pub mod gpu;
pub mod params;
