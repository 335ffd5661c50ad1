//! Headless snapshot: both screens' full UI, as the windows would draw it, rendered to PNG
//! without a display, after an optional script of operator actions (`twinspect snapshot`).
//!
//! The workstation is the real one ([`Workstation`]: same source, assembler, GPU pipeline,
//! station UI and archive); it is drawn by egui's own test harness (egui_kittest) through
//! egui-wgpu on a device made like the windows' one. Both stations share one egui context, as
//! the two windows do, and are drawn in turn from the same ring head after each ingest: the
//! screens of one snapshot show the same newest line. Script actions go through the UI: text is
//! typed into the labelled fields, buttons are found by their visible labels and clicked, keys
//! are pressed, marks are dragged on the image with the pointer. Only a mark's category and
//! note are set in the screen's marking form directly, as choosing them there would.
//!
//! Script, one action per line (`#` starts a comment line; "..." quotes an argument with spaces);
//! STATION is an agency id (`customs`, `quarantine`) or the screen's number from 1:
//!
//! | action | what it does |
//! |---|---|
//! | `login STATION ID PIN` | types the operator id and PIN, presses Log in |
//! | `logout STATION` | presses Log out |
//! | `lang STATION both\|zh\|en` | presses the language switch until the screen speaks that |
//! | `preset STATION NAME` | presses the toolbar button of a console function (`hp`, `os`, ...) |
//! | `key STATION KEY` | presses a key (egui names: `F2`, `Escape`, `Plus`, `Home`, `M`, ...; `Ctrl+1` with Ctrl) |
//! | `zoom STATION FACTOR` | presses `+` until the zoom is FACTOR (1, 2, 4 ... 64) |
//! | `hover STATION LINE CHANNEL` | puts the pointer over the bag (the magnifier follows it) |
//! | `measure STATION L0 C0 L1 C1` | drags the region tool over the bag in focus: its size, and the area, Zeff, mass thickness and mass of what lies in it above the background, in the readout box |
//! | `ruler STATION L0 C0 L1 C1` | drags the ruler: the length in mm in the readout box |
//! | `belt STATION stop\|forward\|reverse` | presses the toolbar's belt key (■ ▶ ◀) and waits (5 s at most) for the scanner to report the belt so |
//! | `mark STATION TOOL COORDS CATEGORY [NOTE]` | draws a mark on the bag in focus |
//! | `open STATION ID` | opens archived bag ID (the archive's number, as `bags` lists it) on that screen; `snap` then also writes NAME-STATION-bag.png, the bag at full resolution as the screen's pipeline rendered it |
//! | `focus STATION BAG\|queue` | picks bag number BAG from the screen's recent bags (`queue`: back to the desk's choice) |
//! | `decide STATION CODE [REASON]` | presses the decision's button: it acts on the bag in focus (a reason for a change) |
//! | `type STATION LABEL TEXT` | types TEXT into the field labelled LABEL (a findings count, a note, a search) |
//! | `click STATION LABEL` | presses any button or checkbox by its visible label |
//! | `wait SECONDS` | lets the workstation run that long (0.1 to 60 s), drawing as the windows would |
//! | `snap NAME` | writes NAME-STATION.png/.txt for every screen, and NAME.png of both |
//!
//! Mark coordinates are the bag's: LINE from the bag's first line, CHANNEL from the bottom
//! detector channel. TOOL `rect`, `ellipse` and `arrow` take `LINE0 CHANNEL0 LINE1 CHANNEL1`,
//! `text` takes one point, `polygon` three or more. After the script the final screens are
//! written as STATION.png/.txt and both.png. Each .txt lists the screen's visible texts (its
//! accessibility tree), one per line, then the banners drawn over its image (`banner: ...`),
//! the X-ray lamp (`lamp: ...`) and the screen's alerts, for bug reports and tests.
//!
//! Owns: the script (parse, run) and the headless harness. Must not open windows.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eframe::egui;
use eframe::egui_wgpu;
use eframe::wgpu;
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable, by};
use egui_kittest::{Harness, wgpu::WgpuTestRenderer};

use super::i18n::Lang;
use super::marks::Tool;
use super::{PRESET_KEYS, Parts, Workstation, fonts, i18n};
use crate::domain::view::Preset;

/// Why a snapshot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("script line {line}: {why}")]
    Script { line: usize, why: String },
    #[error("script line {line} ({action}): {why}")]
    Action { line: usize, action: String, why: ActionError },
    #[error("no GPU adapter to draw the screens with: {0}")]
    Gpu(String),
    #[error("the image pipeline did not start: {0}")]
    Pipeline(String),
    #[error("{path}: {why}")]
    Write { path: PathBuf, why: String },
}

/// Why a script's action could not be done as an operator would do it.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no {label:?} on the {screen} screen")]
    NoControl { label: String, screen: String },
    #[error("no field {label:?} on the {screen} screen")]
    NoField { label: String, screen: String },
    #[error("no bag of this run to point at there (log in first; the bag must be on screen)")]
    NoBagThere,
    #[error("no bag #{0} among the screen's recent bags")]
    NotRecent(u64),
    #[error("{what} {given:?}: one of {known}")]
    Unknown { what: &'static str, given: String, known: String },
    #[error("the language switch did not reach that language")]
    Language,
    /// Done as an operator would, and the screen shows no effect: what its message line said.
    #[error("{what}{said}")]
    NoEffect { what: String, said: String },
    /// The desk refused the command.
    #[error(transparent)]
    Desk(#[from] crate::desk::DeskError),
}

/// One action of a script.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Login {
        station: usize,
        id: String,
        pin: String,
    },
    Logout {
        station: usize,
    },
    Lang {
        station: usize,
        lang: Lang,
    },
    Preset {
        station: usize,
        preset: Preset,
    },
    Key {
        station: usize,
        key: egui::Key,
        /// Held with Ctrl (`Ctrl+1`).
        ctrl: bool,
    },
    Zoom {
        station: usize,
        doublings: u32,
    },
    Hover {
        station: usize,
        at: [f32; 2],
    },
    Belt {
        station: usize,
        belt: crate::source::Belt,
    },
    Wait {
        seconds: f32,
    },
    /// The region (or, with `region` false, the ruler) from one bag point to another.
    Measure {
        station: usize,
        region: bool,
        points: [[f32; 2]; 2],
    },
    Mark {
        station: usize,
        tool: Tool,
        points: Vec<[f32; 2]>,
        category: String,
        note: String,
    },
    Decide {
        station: usize,
        code: String,
        reason: Option<String>,
    },
    /// Pick a bag by its number (`None`: back to the desk's choice).
    Focus {
        station: usize,
        bag: Option<u64>,
    },
    /// Type into a labelled text field.
    Type {
        station: usize,
        label: String,
        text: String,
    },
    /// Open archived bag `id` on the screen.
    Open {
        station: usize,
        id: i64,
    },
    Click {
        station: usize,
        label: String,
    },
    Snap {
        name: String,
    },
}

/// A parsed script: actions with their line numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Script {
    pub actions: Vec<(usize, Action)>,
}

/// Split a line into words; "..." keeps spaces (and \" a quote) inside one word.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut w = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("a quote is not closed".into()),
                    Some('"') => break,
                    Some('\\') if chars.peek() == Some(&'"') => w.push(chars.next().expect("peeked")),
                    Some(ch) => w.push(ch),
                }
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                w.push(ch);
                chars.next();
            }
        }
        out.push(w);
    }
    Ok(out)
}

impl Script {
    /// Parse a script for screens of `agencies` (their ids, in screen order).
    pub fn parse(text: &str, agencies: &[String]) -> Result<Script, SnapshotError> {
        let mut actions = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let err = |why: String| SnapshotError::Script { line, why };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let w = words(trimmed).map_err(err)?;
            actions.push((line, parse_action(&w, agencies).map_err(err)?));
        }
        Ok(Script { actions })
    }
}

fn parse_action(w: &[String], agencies: &[String]) -> Result<Action, String> {
    let verb = w[0].to_ascii_lowercase();
    let args = &w[1..];
    let need = |n: usize, usage: &str| {
        if args.len() < n { Err(format!("{verb} needs {usage}")) } else { Ok(()) }
    };
    let exactly = |n: usize, usage: &str| {
        if args.len() != n { Err(format!("{verb} takes {usage}")) } else { Ok(()) }
    };
    if verb == "snap" {
        exactly(1, "a name")?;
        let name = args[0].clone();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("snap name {name:?}: letters, digits, - and _ only"));
        }
        return Ok(Action::Snap { name });
    }
    if verb == "wait" {
        exactly(1, "SECONDS")?;
        let seconds = args[0]
            .parse::<f32>()
            .ok()
            .filter(|s| (0.1..=60.0).contains(s))
            .ok_or_else(|| format!("wait {:?}: 0.1 to 60 seconds", args[0]))?;
        return Ok(Action::Wait { seconds });
    }
    need(1, "a station")?;
    let station = station_index(&args[0], agencies)?;
    let num = |s: &str| -> Result<f32, String> {
        s.parse::<f32>().ok().filter(|v| v.is_finite()).ok_or_else(|| format!("{s:?} is not a number"))
    };
    Ok(match verb.as_str() {
        "login" => {
            exactly(3, "STATION ID PIN")?;
            Action::Login { station, id: args[1].clone(), pin: args[2].clone() }
        }
        "logout" => {
            exactly(1, "STATION")?;
            Action::Logout { station }
        }
        "lang" => {
            exactly(2, "STATION both|zh|en")?;
            let lang = match args[1].to_ascii_lowercase().as_str() {
                "both" => Lang::Both,
                "zh" => Lang::Zh,
                "en" => Lang::En,
                other => return Err(format!("language {other:?}: both, zh or en")),
            };
            Action::Lang { station, lang }
        }
        "preset" => {
            exactly(2, "STATION NAME")?;
            let preset = <Preset as clap::ValueEnum>::from_str(&args[1], true).map_err(|_| {
                let names: Vec<String> = <Preset as clap::ValueEnum>::value_variants()
                    .iter()
                    .filter_map(|p| clap::ValueEnum::to_possible_value(p).map(|v| v.get_name().to_owned()))
                    .collect();
                format!("preset {:?}: one of {}", args[1], names.join(", "))
            })?;
            Action::Preset { station, preset }
        }
        "key" => {
            exactly(2, "STATION KEY")?;
            let (ctrl, name) = match args[1].strip_prefix("Ctrl+") {
                Some(rest) => (true, rest),
                None => (false, args[1].as_str()),
            };
            let key = egui::Key::from_name(name).ok_or_else(|| format!("no key named {name:?}"))?;
            Action::Key { station, key, ctrl }
        }
        "zoom" => {
            exactly(2, "STATION FACTOR")?;
            let f: u32 = args[1].parse().map_err(|_| format!("zoom {:?}: 1, 2, 4 ... 64", args[1]))?;
            if !f.is_power_of_two() || f > super::zoom::MAX_ZOOM as u32 {
                return Err(format!("zoom {f}: 1, 2, 4 ... 64 (each + doubles)"));
            }
            Action::Zoom { station, doublings: f.trailing_zeros() }
        }
        "belt" => {
            exactly(2, "STATION stop|forward|reverse")?;
            let belt = crate::source::Belt::parse(&args[1])
                .ok_or_else(|| format!("belt {:?}: stop, forward or reverse", args[1]))?;
            Action::Belt { station, belt }
        }
        "measure" | "ruler" => {
            exactly(5, "STATION LINE0 CHANNEL0 LINE1 CHANNEL1")?;
            let n: Vec<f32> = args[1..].iter().map(|a| num(a)).collect::<Result<_, _>>()?;
            Action::Measure { station, region: verb == "measure", points: [[n[0], n[1]], [n[2], n[3]]] }
        }
        "hover" => {
            exactly(3, "STATION LINE CHANNEL")?;
            Action::Hover { station, at: [num(&args[1])?, num(&args[2])?] }
        }
        "mark" => {
            need(3, "STATION TOOL COORDINATES CATEGORY [NOTE]")?;
            let tool = match args[1].to_ascii_lowercase().as_str() {
                "rect" | "box" => Tool::Rect,
                "ellipse" => Tool::Ellipse,
                "arrow" => Tool::Arrow,
                "text" | "note" => Tool::Text,
                "polygon" => Tool::Polygon,
                other => return Err(format!("mark tool {other:?}: rect, ellipse, arrow, text or polygon")),
            };
            let rest = &args[2..];
            let k = rest.iter().take_while(|s| s.parse::<f32>().is_ok()).count();
            let nums: Vec<f32> = rest[..k].iter().map(|s| num(s)).collect::<Result<_, _>>()?;
            let points: Vec<[f32; 2]> = nums.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
            let ok = nums.len().is_multiple_of(2)
                && match tool {
                    Tool::Text => points.len() == 1,
                    Tool::Polygon => points.len() >= 3,
                    _ => points.len() == 2,
                };
            if !ok {
                return Err(format!(
                    "mark {}: {}",
                    args[1],
                    match tool {
                        Tool::Text => "LINE CHANNEL",
                        Tool::Polygon => "three or more LINE CHANNEL pairs",
                        _ => "LINE0 CHANNEL0 LINE1 CHANNEL1",
                    }
                ));
            }
            let tail = &rest[k..];
            if tail.is_empty() || tail.len() > 2 {
                return Err("mark: a CATEGORY after the coordinates, then at most one (quoted) NOTE".into());
            }
            Action::Mark {
                station,
                tool,
                points,
                category: tail[0].clone(),
                note: tail.get(1).cloned().unwrap_or_default(),
            }
        }
        "decide" => {
            if args.len() < 2 || args.len() > 3 {
                return Err("decide takes STATION CODE [\"REASON\"]".into());
            }
            Action::Decide { station, code: args[1].clone(), reason: args.get(2).cloned() }
        }
        "type" => {
            exactly(3, "STATION \"LABEL\" \"TEXT\"")?;
            Action::Type { station, label: args[1].clone(), text: args[2].clone() }
        }
        "open" => {
            exactly(2, "STATION ID")?;
            let id = args[1]
                .trim_start_matches('#')
                .parse::<i64>()
                .ok()
                .filter(|&id| id > 0)
                .ok_or_else(|| format!("open {:?}: the archive's bag number", args[1]))?;
            Action::Open { station, id }
        }
        "focus" => {
            exactly(2, "STATION BAG|queue")?;
            let bag = match args[1].trim_start_matches('#') {
                "queue" => None,
                n => Some(
                    n.parse::<u64>().map_err(|_| format!("focus {:?}: a bag number or queue", args[1]))?,
                ),
            };
            Action::Focus { station, bag }
        }
        "click" => {
            exactly(2, "STATION \"LABEL\"")?;
            Action::Click { station, label: args[1].clone() }
        }
        other => return Err(format!("unknown action {other:?}")),
    })
}

fn station_index(s: &str, agencies: &[String]) -> Result<usize, String> {
    if let Ok(n) = s.parse::<usize>()
        && (1..=agencies.len()).contains(&n)
    {
        return Ok(n - 1);
    }
    agencies.iter().position(|a| a.eq_ignore_ascii_case(s)).ok_or_else(|| {
        format!("no station {s:?} (screens: {}, or 1..{})", agencies.join(", "), agencies.len())
    })
}

/// How to take the snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    pub out: PathBuf,
    /// Each screen's size in points (= pixels).
    pub size: [f32; 2],
    /// Bags to wait for before the script (their ends seen).
    pub bags: u64,
    /// Longest wait for them; the snapshot is then taken of what came (and says so).
    pub timeout: Duration,
}

/// What a snapshot wrote, and what it noticed on the way.
#[derive(Debug, Default)]
pub struct SnapshotReport {
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
    /// The newest line on the screens when the final pictures were taken.
    pub head: u64,
}

/// The harness's state: the workstation and which screen the next frame draws.
struct Screens {
    ws: Workstation,
    station: usize,
}

/// A device like the windows' one, made without a display.
pub fn render_state() -> Result<egui_wgpu::RenderState, SnapshotError> {
    let setup = super::wgpu_setup();
    let instance = pollster::block_on(setup.new_instance());
    pollster::block_on(egui_wgpu::RenderState::create(
        &egui_wgpu::WgpuConfiguration { wgpu_setup: setup, ..Default::default() },
        &instance,
        None,
        // As the windows draw (eframe's options): filtering by the sampler, dithering on.
        egui_wgpu::RendererOptions { msaa_samples: 1, ..Default::default() },
    ))
    .map_err(|e| SnapshotError::Gpu(e.to_string()))
}

/// Drives the workstation headless, one screen at a time, like the two windows (also the
/// two-screen latency benchmark's frame loop).
pub struct Headless {
    h: Harness<'static, Screens>,
    /// The screen the last frame drew.
    current: usize,
    /// Where the pointer is on each screen (one context: moved back when a screen is drawn).
    pointer: Vec<Option<egui::Pos2>>,
    agencies: Vec<String>,
    render_state: egui_wgpu::RenderState,
    /// What [`Headless::present`] draws into, as a window's surface would be drawn.
    target: Option<wgpu::Texture>,
}

impl Headless {
    pub fn new(parts: Parts, size: [f32; 2]) -> Result<Headless, SnapshotError> {
        let rs = render_state()?;
        let font = fonts::cjk_font().map(|(p, _)| *p);
        let ws = Workstation::new(Some(&rs), font, parts);
        if let Some(e) = ws.error() {
            return Err(SnapshotError::Pipeline(e.to_owned()));
        }
        let agencies: Vec<String> = ws.desk().config.screen_ids();
        let n = ws.stations();
        let h = Harness::builder()
            .with_size(size)
            .with_pixels_per_point(1.0)
            .with_step_dt(1.0 / 60.0)
            // The product's own labels are checked by the UI tests; a snapshot never panics.
            .with_accessibility_check(false)
            .renderer(WgpuTestRenderer::from_render_state(rs.clone()))
            .with_context_setup(|ctx| {
                fonts::install_cjk(ctx);
            })
            .build_ui_state(
                |ui, s: &mut Screens| {
                    // The whole viewport, as a window's root: not inside the harness's own
                    // framed, margined panel.
                    let whole = ui.ctx().viewport_rect();
                    let mut root = ui.new_child(egui::UiBuilder::new().max_rect(whole));
                    s.ws.station_ui(&mut root, s.station)
                },
                Screens { ws, station: 0 },
            );
        Ok(Headless { h, current: 0, pointer: vec![None; n], agencies, render_state: rs, target: None })
    }

    /// The workstation being drawn.
    pub fn ws(&self) -> &Workstation {
        &self.h.state().ws
    }

    pub fn ws_mut(&mut self) -> &mut Workstation {
        &mut self.h.state_mut().ws
    }

    /// Draw the last frame's output as a window presents it: tessellated, into a surface-sized
    /// texture of the window's format, the GPU finished (no read back).
    pub fn present(&mut self) -> Result<(), SnapshotError> {
        let ctx = self.h.ctx.clone();
        let ppp = ctx.pixels_per_point();
        let size = ctx.content_rect().size() * ppp;
        let (w, h) = (size.x.round() as u32, size.y.round() as u32);
        let rs = &self.render_state;
        if self.target.as_ref().is_none_or(|t| (t.width(), t.height()) != (w, h)) {
            self.target = Some(rs.device.create_texture(&wgpu::TextureDescriptor {
                label: Some("headless surface"),
                size: wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: rs.target_format,
                usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
                view_formats: &[],
            }));
        }
        let view = self.target.as_ref().expect("made above").create_view(&Default::default());
        let screen = egui_wgpu::ScreenDescriptor { size_in_pixels: [w, h], pixels_per_point: ppp };
        let meshes = ctx.tessellate(self.h.output().shapes.clone(), ppp);
        let [r, g, b, _] = ctx.global_style().visuals.panel_fill.to_normalized_gamma_f32();
        let mut renderer = rs.renderer.write();
        let mut enc = rs.device.create_command_encoder(&Default::default());
        let user = renderer.update_buffers(&rs.device, &rs.queue, &mut enc, &meshes, &screen);
        {
            let mut pass = enc
                .begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("headless present"),
                    color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                        view: &view,
                        resolve_target: None,
                        ops: wgpu::Operations {
                            // As eframe clears a window (`Workstation::clear_color`).
                            load: wgpu::LoadOp::Clear(wgpu::Color {
                                r: r as f64,
                                g: g as f64,
                                b: b as f64,
                                a: 1.0,
                            }),
                            store: wgpu::StoreOp::Store,
                        },
                        depth_slice: None,
                    })],
                    ..Default::default()
                })
                .forget_lifetime();
            renderer.render(&mut pass, &meshes, &screen);
        }
        rs.queue.submit(user.into_iter().chain(std::iter::once(enc.finish())));
        rs.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| SnapshotError::Gpu(e.to_string()))?;
        Ok(())
    }

    /// One frame as the windows would present it: the new lines in (on the windows' time
    /// budget), then each screen drawn and rendered to pixels (the GPU finished). Returns the
    /// ring head each screen's image was drawn with.
    pub fn frame_rendered(&mut self) -> Result<Vec<Option<u64>>, SnapshotError> {
        self.frame_with(true)?;
        Ok((0..self.agencies.len()).map(|i| self.ws().drawn_head(i)).collect())
    }

    /// Make screen `i` the one the next frames draw (its pointer back where it was).
    fn show(&mut self, i: usize) {
        if i == self.current {
            return;
        }
        self.pointer[self.current] = self.h.ctx.input(|inp| inp.pointer.latest_pos());
        self.current = i;
        self.h.state_mut().station = i;
        match self.pointer[i] {
            Some(p) => self.h.event(egui::Event::PointerMoved(p)),
            None => self.h.event(egui::Event::PointerGone),
        }
    }

    /// Draw screen `i` once (and every queued input event, a frame each).
    fn step(&mut self, i: usize) {
        self.show(i);
        self.h.step();
    }

    /// One workstation frame: new lines in, both screens drawn from the same head.
    fn frame(&mut self) {
        self.frame_with(false).expect("nothing is rendered, nothing can fail");
    }

    /// New lines in, each screen laid out (and with `present`, rendered as a window would be).
    fn frame_with(&mut self, present: bool) -> Result<(), SnapshotError> {
        self.h.state_mut().ws.ingest(Duration::from_millis(8));
        self.h.state_mut().ws.hub_step();
        for i in 0..self.agencies.len() {
            self.step(i);
            if present {
                self.present()?;
            }
        }
        self.h.state_mut().ws.follow_views();
        Ok(())
    }

    /// Wait for `bags` bag ends and then a quiet source (or `timeout`).
    fn wait_for_bags(&mut self, bags: u64, timeout: Duration) -> Option<String> {
        let start = Instant::now();
        let mut quiet_since: Option<(Instant, u64)> = None;
        let mut came: Option<Instant> = None;
        loop {
            self.frame();
            let (ended, head) = (self.ws().ended_bags(), self.ws().head());
            if ended >= bags {
                came.get_or_insert_with(Instant::now);
                let idle = self.ws().source().events.is_empty();
                match quiet_since {
                    Some((t, h)) if h == head && idle => {
                        if t.elapsed() >= Duration::from_millis(500) {
                            return None;
                        }
                    }
                    _ => quiet_since = Some((Instant::now(), head)),
                }
            }
            // A source that never stops: the bags came, take the picture 3 s later.
            if came.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
                return None;
            }
            if start.elapsed() > timeout {
                return Some(format!(
                    "{ended} of {bags} bags came from {} in {:.0} s; the snapshot shows what came",
                    self.ws().source().description,
                    timeout.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(4));
        }
    }

    fn lang(&self, i: usize) -> Lang {
        self.ws().panel(i).lang
    }

    /// Press the button (or checkbox, or selectable label) labelled `label` on screen `i`.
    fn click(&mut self, i: usize, label: &str) -> Result<(), ActionError> {
        self.step(i);
        let screen = self.agencies[i].clone();
        let node = self
            .h
            .query_by_label(label)
            .ok_or_else(|| ActionError::NoControl { label: label.into(), screen })?;
        node.click();
        self.step(i);
        self.step(i);
        self.pointer_away(i);
        Ok(())
    }

    /// The pointer leaves screen `i` (no hover highlight or cursor left behind in a picture).
    fn pointer_away(&mut self, i: usize) {
        self.pointer_event(i, egui::Event::PointerGone);
    }

    /// Type `text` into the field labelled `label` on screen `i` (what was there is replaced).
    fn type_into(&mut self, i: usize, label: &str, text: &str) -> Result<(), ActionError> {
        self.step(i);
        let screen = self.agencies[i].clone();
        let missing = || ActionError::NoField { label: label.into(), screen: screen.clone() };
        let role = [Role::PasswordInput, Role::TextInput]
            .into_iter()
            .find(|r| self.h.query_by_role_and_label(*r, label).is_some())
            .ok_or_else(missing)?;
        self.h.get_by_role_and_label(role, label).focus();
        self.step(i);
        // Replace what the field holds (a wrong PIN typed before, say).
        self.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        self.step(i);
        self.h.query_by_role_and_label(role, label).ok_or_else(missing)?.type_text(text);
        self.step(i);
        Ok(())
    }

    fn press(&mut self, i: usize, key: egui::Key) {
        self.step(i);
        self.h.key_press(key);
        self.step(i);
    }

    fn pointer_event(&mut self, i: usize, ev: egui::Event) {
        self.h.event(ev);
        self.step(i);
    }

    fn on_screen(&self, i: usize, b: [f32; 2]) -> Result<egui::Pos2, ActionError> {
        self.ws().bag_point_on_screen(i, b).ok_or(ActionError::NoBagThere)
    }

    /// The action took no effect: say so with what screen `i`'s message line says.
    /// Drag with the primary button from `a` to `b` on screen `i`, in eight moves.
    fn drag(&mut self, i: usize, a: egui::Pos2, b: egui::Pos2) {
        self.pointer_event(i, egui::Event::PointerMoved(a));
        self.pointer_event(i, primary(a, true));
        for k in 1..=8 {
            self.pointer_event(i, egui::Event::PointerMoved(a + (b - a) * (k as f32 / 8.0)));
        }
        self.pointer_event(i, primary(b, false));
    }

    fn no_effect(&self, i: usize, what: impl Into<String>) -> ActionError {
        ActionError::NoEffect { what: what.into(), said: self.said(i) }
    }

    fn act(&mut self, action: &Action) -> Result<(), ActionError> {
        match action {
            Action::Login { station, id, pin } => {
                let lang = self.lang(*station);
                self.type_into(*station, &lang.tr("Operator ID", "工号"), id)?;
                self.type_into(*station, &lang.tr("PIN", "密码"), pin)?;
                self.click(*station, &lang.tr("Log in", "登录"))?;
                if self.ws().desk().station(*station).operator.as_ref().is_none_or(|o| &o.id != id) {
                    return Err(self.no_effect(*station, format!("{id} was not logged in")));
                }
                Ok(())
            }
            Action::Logout { station } => {
                let lang = self.lang(*station);
                self.click(*station, &lang.tr("Log out", "退出"))
            }
            Action::Lang { station, lang } => {
                for _ in 0..3 {
                    if self.lang(*station) == *lang {
                        return Ok(());
                    }
                    let label = self.lang(*station).switch_label();
                    self.click(*station, label)?;
                }
                Err(ActionError::Language)
            }
            Action::Belt { station, belt } => {
                let i = *station;
                self.click(i, i18n::belt_symbol(*belt))?;
                if self.ws().panel(i).message.as_ref().is_some_and(|(error, _)| *error) {
                    return Err(self.no_effect(i, format!("the belt was not moved ({})", belt.name())));
                }
                // As the operator watches the belt key light: the scanner's own report.
                let until = Instant::now() + Duration::from_secs(5);
                while self.ws().belt() != Some(*belt) {
                    if Instant::now() > until {
                        return Err(
                            self.no_effect(i, format!("the scanner did not report the belt {}", belt.name()))
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    self.frame();
                }
                self.frame();
                Ok(())
            }
            Action::Preset { station, preset } => {
                let lang = self.lang(*station);
                let key = PRESET_KEYS
                    .iter()
                    .find(|(_, p)| p == preset)
                    .map(|(k, _)| *k)
                    .expect("every preset has a key");
                self.click(*station, &super::preset_label(lang, key, *preset))
            }
            Action::Key { station, key, ctrl } => {
                if *ctrl {
                    self.step(*station);
                    self.h.key_press_modifiers(egui::Modifiers::CTRL, *key);
                    self.step(*station);
                } else {
                    self.press(*station, *key);
                }
                // A key may decide (Ctrl+1, a site's own decision keys): what it sent is
                // committed before the script goes on, as the panel's buttons are.
                self.settle(*station);
                Ok(())
            }
            Action::Zoom { station, doublings } => {
                // Back to 1x first: the factor is absolute.
                self.press(*station, egui::Key::Home);
                for _ in 0..*doublings {
                    self.press(*station, egui::Key::Plus);
                }
                Ok(())
            }
            Action::Hover { station, at } => {
                self.step(*station);
                let p = self.on_screen(*station, *at)?;
                self.pointer_event(*station, egui::Event::PointerMoved(p));
                Ok(())
            }
            Action::Measure { station, region, points } => {
                let i = *station;
                let lang = self.lang(i);
                let tool = if *region { Tool::Region } else { Tool::Ruler };
                let (en, zh) = tool.name();
                self.click(i, &lang.tr(en, zh))?;
                self.step(i);
                let (a, b) = (self.on_screen(i, points[0])?, self.on_screen(i, points[1])?);
                self.drag(i, a, b);
                self.step(i);
                let (en, zh) = Tool::Pan.name();
                self.click(i, &lang.tr(en, zh))?;
                self.pointer_away(i);
                if self.ws().measurement(i).is_none() {
                    return Err(self.no_effect(i, "nothing was measured (is the bag still on screen?)"));
                }
                Ok(())
            }
            Action::Mark { station, tool, points, category, note } => {
                let i = *station;
                let agency = self.ws().desk().agency_of(i).expect("every screen has an agency");
                if !agency.categories.iter().any(|c| &c.id == category) {
                    let ids: Vec<&str> = agency.categories.iter().map(|c| c.id.as_str()).collect();
                    return Err(ActionError::Unknown {
                        what: "category",
                        given: category.clone(),
                        known: ids.join(", "),
                    });
                }
                let lang = self.lang(i);
                let (en, zh) = tool.name();
                self.click(i, &lang.tr(en, zh))?;
                {
                    // As choosing them in the screen's Category list and Note field would.
                    let marks = &mut self.h.state_mut().ws.panel_mut(i).marks;
                    marks.category = category.clone();
                    marks.note = note.clone();
                }
                self.step(i);
                let screen: Vec<egui::Pos2> =
                    points.iter().map(|p| self.on_screen(i, *p)).collect::<Result<_, _>>()?;
                let before = self.marks_made(i);
                match tool {
                    Tool::Text | Tool::Polygon => {
                        for p in &screen {
                            self.pointer_event(i, egui::Event::PointerMoved(*p));
                            self.pointer_event(i, primary(*p, true));
                            self.pointer_event(i, primary(*p, false));
                            // Apart from a double click.
                            for _ in 0..30 {
                                self.step(i);
                            }
                        }
                        if *tool == Tool::Polygon {
                            self.press(i, egui::Key::Enter);
                        }
                    }
                    _ => self.drag(i, screen[0], screen[1]),
                }
                self.step(i);
                let lang = self.lang(i);
                let (en, zh) = Tool::Pan.name();
                self.click(i, &lang.tr(en, zh))?;
                self.pointer_away(i);
                self.settle(i);
                if self.marks_made(i) == before {
                    return Err(self.no_effect(i, "no mark was made"));
                }
                Ok(())
            }
            Action::Decide { station, code, reason } => {
                let i = *station;
                let agency = self.ws().desk().agency_of(i).expect("every screen has an agency");
                let Some(c) = agency.decision(code) else {
                    let codes: Vec<&str> = agency.decisions.iter().map(|d| d.code.as_str()).collect();
                    return Err(ActionError::Unknown {
                        what: "decision",
                        given: code.clone(),
                        known: codes.join(", "),
                    });
                };
                let (en, zh) = (c.label.en.clone(), c.label.zh.clone());
                let lang = self.lang(i);
                if let Some(r) = reason {
                    self.type_into(i, &lang.tr("Reason for change", "更改原因"), r)?;
                }
                let before = self.decisions(i);
                self.click(i, &lang.tr(&en, &zh))?;
                self.settle(i);
                if self.decisions(i) == before {
                    return Err(self.no_effect(i, "no decision was recorded"));
                }
                Ok(())
            }
            Action::Click { station, label } => self.click(*station, label),
            Action::Focus { station, bag } => {
                let i = *station;
                self.step(i);
                // As clicking the bag's row in the screen's list of recent bags does.
                let key = match bag {
                    None => None,
                    Some(n) => Some(
                        self.ws()
                            .desk()
                            .bags
                            .iter()
                            .find(|(s, _)| {
                                self.ws().desk().number(s.bag) == *n && !crate::desk::is_archived(s)
                            })
                            .map(|(s, _)| s.bag)
                            .ok_or(ActionError::NotRecent(*n))?,
                    ),
                };
                let r = self.h.state_mut().ws.command(i, crate::desk::Command::Focus(key));
                self.step(i);
                Ok(r.map(|_| ())?)
            }
            Action::Type { station, label, text } => self.type_into(*station, label, text),
            Action::Open { station, id } => {
                let i = *station;
                self.step(i);
                self.h.state_mut().ws.command(i, crate::desk::Command::Open { id: *id })?;
                // The archive reads it on a thread of its own; the next frame puts it on the GPU.
                self.settle(i);
                self.frame();
                if self.ws().desk().station(i).opened.as_ref().map(|o| o.id) != Some(*id) {
                    return Err(self.no_effect(i, format!("bag {id} was not opened")));
                }
                Ok(())
            }
            Action::Wait { seconds } => {
                let until = Instant::now() + Duration::from_secs_f32(*seconds);
                while Instant::now() < until {
                    self.frame();
                    std::thread::sleep(Duration::from_millis(15));
                }
                Ok(())
            }
            Action::Snap { .. } => Ok(()),
        }
    }

    /// What screen `i`'s message line says, as ": MESSAGE" (or nothing).
    fn said(&self, i: usize) -> String {
        self.ws().panel(i).message.as_ref().map_or(String::new(), |(_, m)| format!(": {m}"))
    }

    /// Decisions of station `i`'s agency on any bag.
    fn decisions(&self, i: usize) -> usize {
        let desk = self.ws().desk();
        let agency = &desk.station(i).agency;
        desk.bags.iter().map(|(_, r)| r.decisions.iter().filter(|d| &d.agency == agency).count()).sum()
    }

    /// Marks of station `i`'s agency on any bag.
    fn marks_made(&self, i: usize) -> usize {
        let desk = self.ws().desk();
        let agency = &desk.station(i).agency;
        desk.bags.iter().map(|(_, r)| r.annotations_of(agency).count()).sum()
    }

    /// Wait for the archive to commit what screen `i` sent (a script's next action follows a
    /// recorded decision, as an operator reads "Recorded" before going on), then draw the
    /// screen so it says so.
    fn settle(&mut self, i: usize) {
        self.h.state_mut().ws.desk_mut().settle(Duration::from_secs(10));
        self.step(i);
        self.step(i);
    }

    /// Every screen as PNG and visible text, and both side by side.
    fn snap(&mut self, out: &Path, name: Option<&str>) -> Result<Vec<PathBuf>, SnapshotError> {
        // Settle: a frame for anything the last action started (messages, layout).
        for _ in 0..2 {
            self.frame();
        }
        let mut files = Vec::new();
        let mut images = Vec::new();
        for i in 0..self.agencies.len() {
            self.step(i);
            let mut image = self.h.render().map_err(SnapshotError::Gpu)?;
            // The harness clears to transparent; a window is cleared to the panel colour.
            let fill = self.h.ctx.global_style().visuals.panel_fill;
            for p in image.pixels_mut() {
                let a = 255 - p[3] as u32;
                for (c, f) in [fill.r(), fill.g(), fill.b()].into_iter().enumerate() {
                    p[c] = (p[c] as u32 + (f as u32 * a + 127) / 255).min(255) as u8;
                }
                p[3] = 255;
            }
            let stem = match name {
                Some(n) => format!("{n}-{}", self.agencies[i]),
                None => self.agencies[i].clone(),
            };
            let png = out.join(format!("{stem}.png"));
            write_png(&png, &image)?;
            let txt = out.join(format!("{stem}.txt"));
            let mut text = self.visible_text();
            let (banners, xray) = self.ws().banners(self.lang(i));
            for (_, b) in banners {
                text.push_str(&format!("banner: {}\n", b.replace('\n', " · ")));
            }
            if xray {
                text.push_str(&format!("lamp: {}\n", self.lang(i).tr("X-RAY ON", "射线开启")));
            }
            // The alerts, as the status bar's details list them.
            text.push_str(&self.ws().alerts_text(i, self.lang(i)));
            text.push('\n');
            write_file(&txt, text.as_bytes())?;
            files.extend([png, txt]);
            // An opened bag also at full resolution, as the screen's pipeline rendered it.
            if let Some(rgba) = self.ws().opened_rgba(i) {
                let rgba = rgba.map_err(SnapshotError::Gpu)?;
                let path = out.join(format!("{stem}-bag.png"));
                crate::files::io::write_png(&path, &rgba)
                    .map_err(|e| SnapshotError::Write { path: path.clone(), why: e.to_string() })?;
                files.push(path);
            }
            images.push(image);
        }
        let both = out.join(format!("{}.png", name.unwrap_or("both")));
        write_png(&both, &side_by_side(&images))?;
        files.push(both);
        Ok(files)
    }

    /// The texts of the last frame's accessibility tree, one per line.
    fn visible_text(&self) -> String {
        let mut s = String::new();
        let mut last = String::new();
        for n in self.h.query_all(by().include_labels()) {
            let node = n.accesskit_node();
            let (label, value) = (node.label().unwrap_or_default(), node.value().unwrap_or_default());
            let text = match (label.is_empty(), value.is_empty()) {
                (true, true) => continue,
                (false, true) => label,
                (true, false) => value,
                (false, false) => format!("{label}: {value}"),
            };
            // Wrapped text as one line; a labelled widget repeats its label: once is enough.
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            // (A wrapped label's rows come again as pieces of it.)
            if !last.contains(&text) {
                s.push_str(&text);
                s.push('\n');
            }
            last = text;
        }
        s
    }
}

/// The primary button pressed or released at `pos`.
fn primary(pos: egui::Pos2, pressed: bool) -> egui::Event {
    egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    }
}

fn side_by_side(images: &[image::RgbaImage]) -> image::RgbaImage {
    const GAP: u32 = 8;
    let w = images.iter().map(|i| i.width()).sum::<u32>() + GAP * images.len().saturating_sub(1) as u32;
    let h = images.iter().map(|i| i.height()).max().unwrap_or(0);
    let mut out = image::RgbaImage::from_pixel(w.max(1), h.max(1), image::Rgba([0, 0, 0, 255]));
    let mut x = 0;
    for im in images {
        image::imageops::replace(&mut out, im, x as i64, 0);
        x += im.width() + GAP;
    }
    out
}

fn write_png(path: &Path, image: &image::RgbaImage) -> Result<(), SnapshotError> {
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgba8(image.clone())
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| SnapshotError::Write { path: path.to_owned(), why: e.to_string() })?;
    write_file(path, &bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    std::fs::write(path, bytes)
        .map_err(|e| SnapshotError::Write { path: path.to_owned(), why: e.to_string() })
}

/// Tallest a toolbar of one row is (points): buttons of two lines of text (both languages).
const TOOLBAR_ONE_ROW: f32 = 64.0;

/// Tallest a status bar of one line of text is (points).
const STATUS_BAR_ONE_LINE: f32 = 36.0;

/// Run the workstation of `parts` headless: wait for the bags, play the script, write the
/// screens after every `snap` and at the end.
pub fn run(parts: Parts, script: &Script, opts: &SnapshotOptions) -> Result<SnapshotReport, SnapshotError> {
    let mut r = Headless::new(parts, opts.size)?;
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| SnapshotError::Write { path: opts.out.clone(), why: e.to_string() })?;
    let mut report = SnapshotReport::default();
    report.warnings.extend(r.wait_for_bags(opts.bags, opts.timeout));
    for (line, action) in &script.actions {
        if let Action::Snap { name } = action {
            report.files.extend(r.snap(&opts.out, Some(name))?);
            continue;
        }
        if let Err(why) = r.act(action) {
            // The screens as they are when it went wrong, for the bug report.
            r.snap(&opts.out, Some("error"))?;
            let name = format!("{action:?}").split([' ', '{']).next().unwrap_or("").to_lowercase();
            return Err(SnapshotError::Action { line: *line, action: name, why });
        }
        r.frame();
    }
    report.files.extend(r.snap(&opts.out, None)?);
    report.head = r.ws().head();
    let dropped = r.ws().source().stats.lines_dropped.load(std::sync::atomic::Ordering::Relaxed);
    if dropped > 0 {
        report.warnings.push(format!("{dropped} lines were dropped before the screens took them"));
    }
    // A status bar that wraps takes image rows from the operator (one line of text is ~26 pt);
    // so does a toolbar that wraps (one row of two-line buttons is ~TOOLBAR_ONE_ROW).
    for i in 0..r.agencies.len() {
        let (h, scale) = (r.ws().toolbar_height(i), r.ws().ui_scale(i));
        if h > TOOLBAR_ONE_ROW * scale {
            let screen = &r.agencies[i];
            report.warnings.push(format!("the {screen} screen's toolbar wraps ({h:.0} pt tall)"));
        }
        let h = r.ws().status_bar_height(i);
        if h > STATUS_BAR_ONE_LINE * r.ws().ui_scale(i) {
            let screen = &r.agencies[i];
            report.warnings.push(format!("the {screen} screen's status bar wraps ({h:.0} pt tall)"));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agencies() -> Vec<String> {
        vec!["customs".into(), "quarantine".into()]
    }

    #[test]
    fn a_script_parses_with_quotes_comments_and_station_numbers() {
        let text = "# log in\nlogin customs c001 1111\n\nmark 2 rect 10 20 110 220 fruit \"two apples, \\\"fresh\\\"\"\nzoom customs 8\ndecide quarantine open \"seen twice\"\nsnap after-marks\n";
        let s = Script::parse(text, &agencies()).unwrap();
        assert_eq!(s.actions.len(), 5);
        assert_eq!(s.actions[0], (2, Action::Login { station: 0, id: "c001".into(), pin: "1111".into() }));
        assert_eq!(
            s.actions[1].1,
            Action::Mark {
                station: 1,
                tool: Tool::Rect,
                points: vec![[10.0, 20.0], [110.0, 220.0]],
                category: "fruit".into(),
                note: "two apples, \"fresh\"".into()
            }
        );
        assert_eq!(s.actions[2].1, Action::Zoom { station: 0, doublings: 3 });
        assert_eq!(
            s.actions[3].1,
            Action::Decide { station: 1, code: "open".into(), reason: Some("seen twice".into()) }
        );
    }

    #[test]
    fn bad_scripts_name_their_line_and_what_is_wrong() {
        let cases = [
            ("login customs c001", "login takes STATION ID PIN"),
            ("login border c001 1111", "no station \"border\""),
            ("zoom customs 3", "1, 2, 4 ... 64"),
            ("zoom customs 128", "1, 2, 4 ... 64"),
            ("preset customs xray", "preset \"xray\": one of standard"),
            ("mark customs rect 1 2 3 weapon", "LINE0 CHANNEL0 LINE1 CHANNEL1"),
            ("mark customs polygon 1 2 3 4 weapon", "three or more"),
            ("mark customs rect 1 2 3 4", "a CATEGORY"),
            ("mark customs rect 1 2 3 4 weapon a b", "at most one"),
            ("key customs Hyper", "no key named"),
            ("snap ../etc", "letters, digits"),
            ("launch customs", "unknown action"),
            ("decide customs \"release", "quote is not closed"),
            ("hover customs NaN 3", "not a number"),
        ];
        for (line, want) in cases {
            let text = format!("# first\n{line}\n");
            let e = Script::parse(&text, &agencies()).unwrap_err().to_string();
            assert!(e.starts_with("script line 2: "), "{line}: {e}");
            assert!(e.contains(want), "{line}: {e} should say {want}");
        }
    }
}
