//! The files layer: everything the workstation reads from or writes to a disk for later, apart
//! from recordings (a source's format, in `source`). Image files ([`io`]: PNG, 16-bit TIFF,
//! DICOM Part 10), the archive ([`store`]: SQLite, scans, the audit trail), exports for people
//! ([`export`]: CSV, PNG with marks, the training report) and for other systems ([`dicos`]).
//!
//! Owns: file formats and the archive's layout. Must not import: egui, wgpu, tokio, sources, the
//! desk or the UI.

pub mod dicos;
pub mod export;
pub mod io;
pub mod store;
