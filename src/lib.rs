//! Twinspect: a dual-energy X-ray inspection workstation, "one machine, two screens".
//!
//! Layers (see `ARCHITECTURE.md`): [`domain`] (pure core) -> [`pipeline`] (CPU twin and wgpu
//! compute) -> [`files`] (image files, the archive, exports, DICOS) -> [`source`] (live line
//! streams, recordings) -> [`emulator`] (the scanner's side of the cable) -> [`assemble`],
//! [`capture`] -> [`desk`] (the application layer: commands, the archive link) -> [`ui`] (eframe
//! windows, snapshot) -> the `twinspect` binary's commands.

/// Now, in milliseconds since the Unix epoch (0 if the clock is before it): the one clock every
/// record, audit entry and recording header is stamped with. The domain core never reads it;
/// times are passed in.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub mod assemble;
pub mod capture;
pub mod cli;
pub mod desk;
pub mod domain;
pub mod emulator;
pub mod files;
pub mod hub;
pub mod pipeline;
pub mod sound;
pub mod source;
pub mod ui;
pub mod web;
