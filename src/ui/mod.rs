//! The workstation window (eframe, wgpu renderer): the live image from a source, the console
//! image functions on a toolbar and on F-keys, and a status bar.
//!
//! Owns: drawing and input only. It drains the source's channel on a time budget each frame,
//! hands lines to the [`Assembler`](crate::assemble::Assembler), and records the GPU work of
//! [`LiveView`] on eframe's own device, whose output texture egui shows without a CPU copy.
//! UI functions end in `_ui`. Must not do file or network I/O.

use std::time::{Duration, Instant};

use eframe::egui;
use eframe::egui_wgpu;

use crate::assemble::Assembler;
use crate::domain::material::MaterialLut;
use crate::domain::profile::ScannerProfile;
use crate::domain::view::{Preset, ViewSettings};
use crate::pipeline::gpu::{Kernels, LiveView, describe_adapter, required_limits};
use crate::source::{RunningSource, SourceEvent};

/// Console keys: F1 is always the plain standard image.
pub const PRESET_KEYS: [(egui::Key, Preset); 12] = [
    (egui::Key::F1, Preset::Standard),
    (egui::Key::F2, Preset::Hp),
    (egui::Key::F3, Preset::Lp),
    (egui::Key::F4, Preset::Os),
    (egui::Key::F5, Preset::Is),
    (egui::Key::F6, Preset::Metal),
    (egui::Key::F7, Preset::Edge),
    (egui::Key::F8, Preset::Local),
    (egui::Key::F9, Preset::Negative),
    (egui::Key::F10, Preset::Bw),
    (egui::Key::F11, Preset::Pseudo),
    (egui::Key::F12, Preset::Vde),
];

/// Ring length of the live image in lines (the visible history).
pub const LIVE_LINES: u32 = 2048;

/// eframe options for the workstation: the wgpu renderer, with the device limits the compute
/// pipeline needs (storage buffers also on GL, big frames).
pub fn native_options(title: &str) -> eframe::NativeOptions {
    let mut setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    setup.device_descriptor = std::sync::Arc::new(|adapter| wgpu::DeviceDescriptor {
        label: Some("twinspect workstation"),
        required_limits: wgpu::Limits {
            max_texture_dimension_2d: 8192.min(adapter.limits().max_texture_dimension_2d),
            ..required_limits(adapter)
        },
        ..Default::default()
    });
    eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(title)
            .with_inner_size([1600.0, 900.0]),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: egui_wgpu::WgpuConfiguration {
            wgpu_setup: egui_wgpu::WgpuSetup::CreateNew(setup),
            ..Default::default()
        },
        ..Default::default()
    }
}

struct Gpu {
    kernels: Kernels,
    live: LiveView,
    texture: egui::TextureId,
    adapter: String,
}

/// The single-window live workstation.
pub struct Workstation {
    profile: ScannerProfile,
    source: RunningSource,
    assembler: Assembler,
    view: ViewSettings,
    preset: Preset,
    gpu: Option<Gpu>,
    error: Option<String>,
    last_frame: Instant,
    rate: RateMeter,
}

/// Lines per second over a sliding second.
#[derive(Default)]
struct RateMeter {
    window_start: Option<Instant>,
    count: u64,
    rate: f64,
}

impl RateMeter {
    fn add(&mut self, n: u64) {
        let now = Instant::now();
        let start = *self.window_start.get_or_insert(now);
        self.count += n;
        let dt = now.duration_since(start).as_secs_f64();
        if dt >= 1.0 {
            self.rate = self.count as f64 / dt;
            self.count = 0;
            self.window_start = Some(now);
        }
    }
}

impl Workstation {
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        profile: ScannerProfile,
        source: RunningSource,
        lut: MaterialLut,
    ) -> Self {
        let mut error = None;
        let gpu = match cc.wgpu_render_state.as_ref() {
            Some(rs) => {
                let kernels = Kernels::new(&rs.device);
                match LiveView::new(
                    &rs.device,
                    &rs.queue,
                    &kernels,
                    profile.channels,
                    LIVE_LINES,
                    profile.full_scale(),
                    &lut,
                ) {
                    Ok(live) => {
                        let texture = rs.renderer.write().register_native_texture(
                            &rs.device,
                            &live.image.out_view,
                            wgpu::FilterMode::Linear,
                        );
                        Some(Gpu {
                            kernels,
                            live,
                            texture,
                            adapter: describe_adapter(&rs.adapter.get_info()),
                        })
                    }
                    Err(e) => {
                        error = Some(e.to_string());
                        None
                    }
                }
            }
            None => {
                error = Some("eframe started without the wgpu renderer".into());
                None
            }
        };
        let channels = profile.channels as usize;
        let fs = profile.full_scale();
        Workstation {
            profile,
            source,
            assembler: Assembler::new(channels, fs),
            view: Preset::Standard.settings(),
            preset: Preset::Standard,
            gpu,
            error,
            last_frame: Instant::now(),
            rate: RateMeter::default(),
        }
    }

    fn set_preset(&mut self, p: Preset) {
        self.preset = p;
        self.view = p.settings();
    }

    /// Drain the source for at most `budget`, feed the assembler and the GPU.
    fn ingest(&mut self, frame: &eframe::Frame, budget: Duration) {
        let start = Instant::now();
        let mut events: Vec<SourceEvent> = Vec::new();
        while start.elapsed() < budget && events.len() < 4096 {
            match self.source.events.try_recv() {
                Ok(ev) => events.push(ev),
                Err(_) => break,
            }
        }
        let batch = self.assembler.feed(events);
        self.rate.add(batch.lines as u64);
        let (Some(gpu), Some(rs)) = (self.gpu.as_mut(), frame.wgpu_render_state()) else {
            return;
        };
        if batch.calibration_changed
            && let Some(cal) = &self.assembler.calibration
        {
            if batch.recalibrate_visible {
                gpu.live.set_calibration(&rs.queue, &cal.table());
            } else {
                gpu.live.image.set_calibration(&rs.queue, &cal.table());
            }
        }
        if batch.lines > 0 {
            gpu.live.push_lines(&rs.queue, &batch.low, &batch.high);
        }
        let mut enc = rs
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("live"),
            });
        if gpu
            .live
            .encode(&rs.queue, &mut enc, &gpu.kernels, &self.view)
        {
            rs.queue.submit([enc.finish()]);
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            for (key, p) in PRESET_KEYS {
                let label = format!("{} {}", key.name(), p.name().to_uppercase());
                if ui.selectable_label(self.preset == p, label).clicked() {
                    self.set_preset(p);
                }
            }
        });
    }

    fn status_ui(&self, ui: &mut egui::Ui) {
        let s = &self.assembler.stats;
        let st = &self.source.stats;
        use std::sync::atomic::Ordering::Relaxed;
        ui.horizontal_wrapped(|ui| {
            ui.label(format!("Source: {}", self.source.description));
            ui.separator();
            let health = if self.assembler.calibration.is_none() {
                "calibrating"
            } else {
                "connected"
            };
            ui.label(format!("{health}, {:.0} lines/s", self.rate.rate));
            ui.separator();
            ui.label(format!(
                "missing {} · dropped {} · bags {}",
                s.lines_missing,
                st.lines_dropped.load(Relaxed),
                st.bags.load(Relaxed)
            ));
            ui.separator();
            ui.label(format!(
                "calibration: {} lines ago, {} air updates",
                s.lines_since_calibration, s.air_updates
            ));
            ui.separator();
            ui.label(format!(
                "GPU: {}",
                self.gpu.as_ref().map_or("none", |g| g.adapter.as_str())
            ));
            ui.separator();
            ui.label(format!(
                "{} · {} kVp · {} ch",
                self.profile.name, self.profile.kvp, self.profile.channels
            ));
            if let Some(e) = self.error.as_ref().or(s.last_error.as_ref()) {
                ui.separator();
                ui.colored_label(egui::Color32::RED, e);
            }
        });
    }

    fn image_ui(&self, ui: &mut egui::Ui) {
        let rect = ui.available_rect_before_wrap();
        ui.painter().rect_filled(rect, 0.0, egui::Color32::WHITE);
        let Some(gpu) = &self.gpu else { return };
        let cap = gpu.live.capacity() as f32;
        let channels = self.profile.channels as f32;
        // Channels fill the height; lines are as wide as a channel is tall (square pixels).
        let scale = rect.height() / channels;
        let visible = (rect.width() / scale).min(cap).floor();
        let newest = (gpu.live.head % cap as u64) as f32; // ring index one past the newest line
        // Draw the `visible` newest lines, newest at the right edge: up to two pieces of the ring.
        let mut x_right = rect.right();
        let mut remaining = visible;
        let mut end = newest;
        while remaining > 0.0 {
            let start = if end == 0.0 { cap } else { end };
            let take = remaining.min(start);
            let u0 = (start - take) / cap;
            let u1 = start / cap;
            let w = take * scale;
            let r = egui::Rect::from_min_max(
                egui::pos2(x_right - w, rect.top()),
                egui::pos2(x_right, rect.top() + channels * scale),
            );
            ui.painter().image(
                gpu.texture,
                r,
                egui::Rect::from_min_max(egui::pos2(u0, 0.0), egui::pos2(u1, 1.0)),
                egui::Color32::WHITE,
            );
            x_right -= w;
            remaining -= take;
            end = start - take;
        }
    }
}

impl eframe::App for Workstation {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let now = Instant::now();
        let dt = now.duration_since(self.last_frame).as_secs_f32();
        self.last_frame = now;
        self.view.advance_vde(dt);
        let pressed: Vec<Preset> = ui.input(|i| {
            PRESET_KEYS
                .iter()
                .filter(|(k, _)| i.key_pressed(*k))
                .map(|(_, p)| *p)
                .collect()
        });
        if let Some(p) = pressed.last() {
            self.set_preset(*p);
        }
        if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            self.set_preset(Preset::Standard);
        }
        self.ingest(frame, Duration::from_millis(8));

        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        egui::CentralPanel::default().show(ui, |ui| self.image_ui(ui));
        ui.ctx().request_repaint();
    }
}
