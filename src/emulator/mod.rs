//! The scanner emulators: what a real scanner would be on the other end of the cable, for
//! integrators, demos and the tests. One [`Script`] of lines and bag signals, spoken over a serial
//! link ([`serial`]) or as a GigE Vision device ([`gige`]).
//!
//! Owns: the device side of both links. Uses the wire codecs of `source` (the serial codec,
//! GVCP, GVSP), never the drivers that read them. Must not import: egui, wgpu, the desk, the UI.

pub mod gige;
pub mod script;
pub mod serial;

pub use script::Script;
pub use serial::{
    EmulatorOptions, EmulatorStats, Impairments, SerialTarget, link_bytes_per_second, serve_serial,
};
