//! Twinspect: a dual-energy X-ray inspection workstation, "one machine, two screens".
//!
//! Layers (see `ARCHITECTURE.md`): [`domain`] (pure core) -> [`pipeline`] (CPU twin and wgpu
//! compute) -> [`io`] and [`store`] (files, the archive) -> [`source`] (live line streams,
//! recordings) -> [`assemble`], [`capture`], [`archiver`] -> [`ui`] (eframe window) -> the
//! `twinspect` binary's commands.

pub mod archiver;
pub mod assemble;
pub mod capture;
pub mod cli;
pub mod dicos;
pub mod domain;
pub mod export;
pub mod io;
pub mod pipeline;
pub mod source;
pub mod store;
pub mod ui;
