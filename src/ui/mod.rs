//! The workstation: two synchronized screens, Customs 海关 and Quarantine 检验检疫, each in its
//! own native window, both showing the same live scan, each with its own image functions on a
//! toolbar and on F-keys, the belt's keys, banners over the image for the scanner's state, and a
//! status bar.
//!
//! Owns: drawing and input only. Once per frame it drains the source's channel on a time budget,
//! hands lines to the [`Assembler`], and records the GPU work of the
//! [`LiveView`] on eframe's own device: the new lines are composed under each station's settings
//! (both stations in one dispatch when they need the same lines); egui shows each station's output texture without a CPU
//! copy. Both windows are drawn in the same frame from the same ring head, so they always show
//! the same newest line (synchronized on data, not on repaint counters). The second window is an
//! immediate viewport: it shares this state and repaints with the first.
//! UI functions end in `_ui`. Must not do file or network I/O (fonts at start-up excepted).

pub mod disposal;
pub mod fonts;
pub mod i18n;
pub mod layout;
pub mod marks;
pub mod measure;
pub mod snapshot;
pub mod zoom;

use std::time::{Duration, Instant};

use eframe::egui;
use eframe::egui_wgpu;

use self::disposal::StationPanel;
use self::marks::{BagFrame, MarkDrag, Tool};
use self::zoom::ImageView;
use crate::assemble::Assembler;
use crate::desk::{Command, Desk};
use crate::domain::inspection::Shape;
use crate::domain::inspection::{AgencyConfig, InspectionConfig, OutcomeState};
use crate::domain::material::MaterialLut;
use crate::domain::profile::ScannerProfile;
use crate::domain::view::{Adjust, Preset, ViewSettings};
use crate::pipeline::gpu::{
    ImageSpec, Kernels, LiveView, describe_adapter, required_limits, wanted_features,
};
use crate::source::{Belt, RunningSource, ScannerCommand, SourceEvent};

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

/// Decision keys, with Ctrl: the agency's decision codes in the panel's order.
pub const DECISION_KEYS: [egui::Key; 9] = [
    egui::Key::Num1,
    egui::Key::Num2,
    egui::Key::Num3,
    egui::Key::Num4,
    egui::Key::Num5,
    egui::Key::Num6,
    egui::Key::Num7,
    egui::Key::Num8,
    egui::Key::Num9,
];

/// Keys besides the console functions: (key, English, Chinese).
pub const HELP_KEYS: &[(&str, &str, &str)] = &[
    ("Esc", "Standard image, whole and live", "标准图像（复位缩放、实时）"),
    ("Wheel, + / -", "Zoom (to 64x)", "缩放（最大64倍）"),
    ("Drag, arrows", "Pan; back in time holds the view", "平移；回看时画面暂停"),
    ("Home", "Whole live image", "整幅实时图像"),
    ("M", "Magnifier: 4x under the pointer", "放大镜：指针处放大4倍"),
    ("PgUp / PgDn", "Brighter / darker", "调亮 / 调暗"),
    ("] / [", "More / less contrast", "增加 / 降低对比度"),
    (". / ,", "Gamma up / down", "伽马增大 / 减小"),
    (
        "Ctrl+= / Ctrl+- / Ctrl+0",
        "This screen's UI larger / smaller / as laid out",
        "本屏界面放大 / 缩小 / 复原",
    ),
    ("Space", "Stop the belt", "停止传送带"),
    ("Ctrl+→ / Ctrl+←", "Belt forward / reverse", "传送带正转 / 反转"),
    (
        "Ctrl+1, 2, ...",
        "Decide the outlined bag (the panel's buttons in order)",
        "处置框选行李（按面板按钮顺序）",
    ),
    ("?", "This help", "按键说明"),
];

/// An operator's adjustment in short, after the Adjust button: what differs from neutral
/// (brightness B, contrast C, gamma γ); nothing when neutral.
fn adjust_text(a: Adjust) -> String {
    let mut s = String::new();
    if a.brightness.abs() > 1e-4 {
        s += &format!(" B{:+.2}", a.brightness);
    }
    if (a.contrast - 1.0).abs() > 1e-4 {
        s += &format!(" C×{:.2}", a.contrast);
    }
    if (a.gamma - 1.0).abs() > 1e-4 {
        s += &format!(" γ×{:.2}", a.gamma);
    }
    s
}

/// The label of a console function's toolbar button ("F1 STD" over "标准" in both languages).
pub fn preset_label(lang: i18n::Lang, key: egui::Key, p: Preset) -> String {
    let ((en, zh), k) = (i18n::preset_name(p), key.name());
    match lang {
        i18n::Lang::Both => format!("{k} {en}\n{zh}"),
        i18n::Lang::Zh => format!("{k} {zh}"),
        i18n::Lang::En => format!("{k} {en}"),
    }
}

/// A floating part of a screen (a menu, a window, the readout box) at the screen's scale.
fn scale_ui(ui: &mut egui::Ui, s: f32) {
    if s != 1.0 {
        *ui.style_mut() = scaled_style(ui.style(), s);
    }
}

/// `style` with text, buttons and spacing `s` times as large (a screen's UI scale).
fn scaled_style(style: &egui::Style, s: f32) -> egui::Style {
    let mut st = style.clone();
    for font in st.text_styles.values_mut() {
        font.size *= s;
    }
    let sp = &mut st.spacing;
    sp.item_spacing *= s;
    sp.button_padding *= s;
    sp.interact_size *= s;
    sp.indent *= s;
    sp.icon_width *= s;
    sp.icon_width_inner *= s;
    sp.icon_spacing *= s;
    sp.slider_width *= s;
    sp.combo_width *= s;
    sp.text_edit_width *= s;
    sp.menu_margin *= s;
    sp.window_margin *= s;
    st
}

/// How loud a banner over the image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Red: the image cannot be trusted to be current, or the scanner is unsafe or failing.
    Alarm,
    /// Amber: the scanner does as it was told (the belt at rest or reversing).
    Notice,
}

/// Local wall-clock time as hh:mm:ss (the system's time zone; UTC, said so, where it has none).
fn clock_text(t: std::time::SystemTime) -> String {
    let Ok(t) = jiff::Timestamp::try_from(t) else {
        return "--:--:--".into();
    };
    match jiff::tz::TimeZone::try_system() {
        Ok(tz) => t.to_zoned(tz).strftime("%H:%M:%S").to_string(),
        Err(_) => t.strftime("%H:%M:%S UTC").to_string(),
    }
}

/// How long a scanner may take to report the belt as commanded before the screens say it did not.
const BELT_GRACE: Duration = Duration::from_secs(3);

/// Ring length of the live image in lines (the visible history).
pub const LIVE_LINES: u32 = 2048;

/// Window title of a station: English and Chinese agency names.
pub fn station_title(agency: &AgencyConfig, screen: &crate::domain::inspection::ScreenConfig) -> String {
    match &screen.name {
        Some(n) => format!("Twinspect {} {} — {} {}", agency.name.en, agency.name.zh, n.en, n.zh),
        None => format!("Twinspect {} {}", agency.name.en, agency.name.zh),
    }
}

/// eframe options for the workstation: the wgpu renderer, with the device limits the compute
/// pipeline needs; the first station's window.
pub fn native_options(title: &str, place: &layout::WindowPlacement) -> eframe::NativeOptions {
    eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(title)
            .with_inner_size(place.size)
            .with_position(place.position)
            .with_fullscreen(place.fullscreen),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: egui_wgpu::WgpuConfiguration { wgpu_setup: wgpu_setup(), ..Default::default() },
        ..Default::default()
    }
}

/// The wgpu device the windows (and `snapshot`) draw with: the limits and optional features the
/// compute pipeline needs.
pub fn wgpu_setup() -> egui_wgpu::WgpuSetup {
    let mut setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    setup.device_descriptor = std::sync::Arc::new(|adapter| wgpu::DeviceDescriptor {
        label: Some("twinspect workstation"),
        required_features: wanted_features(adapter),
        required_limits: wgpu::Limits {
            max_texture_dimension_2d: 8192.min(adapter.limits().max_texture_dimension_2d),
            ..required_limits(adapter)
        },
        ..Default::default()
    });
    egui_wgpu::WgpuSetup::CreateNew(setup)
}

struct Gpu {
    kernels: Kernels,
    live: LiveView,
    textures: Vec<egui::TextureId>,
    adapter: String,
    lut: MaterialLut,
}

/// An archived bag open on a station: an image of its own on the GPU (the live ring goes on),
/// composed under the station's view settings like the live image.
struct OpenedImage {
    key: u64,
    image: crate::pipeline::gpu::GpuImage,
    texture: egui::TextureId,
    /// What the texture shows now.
    rendered: Option<ViewSettings>,
}

/// Where a bag lies in what a screen shows: its key and first line (absolute on the live image,
/// 0 on an opened bag), one past its last (infinite while it comes in).
#[derive(Clone, Copy, Debug)]
struct OnScreen {
    key: u64,
    first_line: u64,
    end: f64,
}

/// One agency's screen.
struct Station {
    agency: AgencyConfig,
    screen: crate::domain::inspection::ScreenConfig,
    view: ViewSettings,
    preset: Preset,
    image: ImageView,
    /// The key help is showing.
    help: bool,
    /// A 4x loupe follows the pointer over the image.
    magnifier: bool,
    /// The ruler or region last measured (until the next one or Esc), and a region's words
    /// for the measurement and language they were made for.
    measure: Option<measure::Measurement>,
    measure_text: Option<(measure::Measurement, i18n::Lang, String)>,
    /// The operator's brightness, contrast and gamma on top of the function (Esc resets).
    adjust: Adjust,
    /// Alert tones wanted on this screen.
    sound: bool,
    /// This screen's UI scale (text, buttons, spacing), from the layout; Ctrl+= and Ctrl+-.
    ui_scale: f32,
    /// The disposal panel's width at scale 1 (it is drawn `ui_scale` times as wide).
    panel_width: f32,
    /// This screen's alerts, newest last (at most [`ALERTS_KEPT`]).
    alerts: std::collections::VecDeque<Alert>,
}

/// What a screen's image is measured from: its raw samples, their calibration, the material
/// table and the meter of the scanner that made them.
struct Sampled<'a> {
    samples: measure::Samples<'a>,
    cal: &'a crate::domain::calib::Calibration,
    lut: &'a crate::domain::material::MaterialLut,
    meter: &'a crate::domain::measure::Meter,
}

/// An alert a screen gave (tone or not).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub at: std::time::SystemTime,
    pub tone: crate::sound::Tone,
    /// What it was about ("bag #3", the link's words).
    pub about: String,
    /// It was sounded (the screen wanted tones and the machine has sound).
    pub sounded: bool,
}

/// Alerts each screen keeps for its details.
const ALERTS_KEPT: usize = 20;

impl Station {
    /// The function `p`, under the operator's adjustment (a running VDE sweep keeps its place).
    fn set_view(&mut self, p: Preset, adjust: Adjust) {
        let phase = self.view.vde.map(|v| v.phase).filter(|_| self.preset == p);
        (self.preset, self.adjust) = (p, adjust);
        self.view = p.settings().adjusted(adjust);
        if let (Some(phase), Some(v)) = (phase, self.view.vde.as_mut()) {
            v.phase = phase;
        }
    }
}

/// The live ring texture: lines `[head - cap, head)` at `line % cap`.
struct Ring {
    texture: egui::TextureId,
    cap: u64,
    /// The oldest line the ring still holds.
    oldest: f64,
}

impl Ring {
    /// Paint lines `[from, to)` (what the ring no longer holds is left out), texture columns `v`
    /// (channels, from the top of the screen), between screen heights `y`, at the screen x that
    /// `x_of` gives each line.
    #[allow(clippy::too_many_arguments)]
    fn paint(
        &self,
        painter: &egui::Painter,
        from: f64,
        to: f64,
        v: (f32, f32),
        y: (f32, f32),
        mirror: bool,
        x_of: impl Fn(f64) -> f32,
    ) {
        let cap = self.cap as f64;
        let mut l = from.max(self.oldest);
        while l < to {
            let pos = l.rem_euclid(cap);
            let end = to.min(l + (cap - pos));
            let (u0, u1) = ((pos / cap) as f32, ((pos + end - l) / cap) as f32);
            // A mirrored belt draws the piece right to left: its texture coordinates swap too.
            let (x0, x1, ua, ub) =
                if mirror { (x_of(end), x_of(l), u1, u0) } else { (x_of(l), x_of(end), u0, u1) };
            // The texture holds a row per line: its u runs down the screen (channels), its v
            // across (lines), so the quad's corners take their coordinates turned.
            let mut mesh = egui::Mesh::with_texture(self.texture);
            let corner = |x: f32, y: f32, uv: (f32, f32)| egui::epaint::Vertex {
                pos: egui::pos2(x, y),
                uv: egui::pos2(uv.0, uv.1),
                color: egui::Color32::WHITE,
            };
            mesh.vertices.extend([
                corner(x0, y.0, (v.0, ua)),
                corner(x1, y.0, (v.0, ub)),
                corner(x1, y.1, (v.1, ub)),
                corner(x0, y.1, (v.1, ua)),
            ]);
            mesh.add_triangle(0, 1, 2);
            mesh.add_triangle(0, 2, 3);
            painter.add(egui::Shape::mesh(mesh));
            l = end;
        }
    }
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

/// The two-screen live workstation.
pub struct Workstation {
    profile: ScannerProfile,
    source: RunningSource,
    assembler: Assembler,
    stations: Vec<Station>,
    /// Login and decision forms, one per station.
    panels: Vec<StationPanel>,
    desk: Desk,
    layout: layout::Layout,
    gpu: Option<Gpu>,
    error: Option<String>,
    font: Option<&'static str>,
    last_frame: Instant,
    rate: RateMeter,
    /// The device everything is drawn with (`None`: eframe started without wgpu).
    render_state: Option<egui_wgpu::RenderState>,
    /// Where each station's image was drawn last, how (for scripted pointer actions), and
    /// with which ring head.
    drawn: Vec<Option<(egui::Rect, zoom::Mapping, u64)>>,
    /// Each station's status bar: (window width, tallest height at that width).
    status_height: Vec<(f32, f32)>,
    /// Each station's toolbar height as last drawn.
    toolbar_height: Vec<f32>,
    /// The archived bag open on each station, if any.
    opened: Vec<Option<OpenedImage>>,
    /// The belt command last sent, and when (the screens say when the scanner does not follow).
    belt_asked: Option<(Belt, Instant)>,
    /// Alert tones, and what has been alerted once already (the bag of the last dense alert,
    /// the projected threats revealed per station).
    tones: crate::sound::Tones,
    dense_alerted: Option<u64>,
    threats_alerted: Vec<std::collections::HashSet<u64>>,
    /// The live image's raw samples, and the measuring tools of this scanner (`None`: its
    /// physics could not be set up; the image still shows).
    raw: measure::RawRing,
    meter: Option<crate::domain::measure::Meter>,
    /// When the newest line came (what a frozen image shows), and since when the link is down.
    last_line_at: Option<std::time::SystemTime>,
    link_down_since: Option<std::time::SystemTime>,
    /// Remote front ends this desk serves (`run --web`).
    remote: Option<crate::desk::host::Host>,
    /// The screens as hub stations (`run --hub`): bags to open, who is logged in where.
    hub: Option<crate::hub::screening::HubLink>,
    no_scanner: bool,
    publishing: Option<Publishing>,
}

/// A live desk that publishes its bags to a hub (`run --hub URL --publish LINE`): its name
/// there and what its publisher has done, for the status bar.
pub struct Publishing {
    pub line: String,
    pub node: String,
    pub progress: std::sync::Arc<crate::hub::publish::Progress>,
}

/// Everything a workstation is made of besides its screens.
pub struct Parts {
    pub profile: ScannerProfile,
    pub source: RunningSource,
    pub lut: MaterialLut,
    pub inspection: InspectionConfig,
    pub desk: Desk,
    pub layout: layout::Layout,
    /// Remote front ends served by this desk (the opening bench's web server of `run --web`).
    pub remote: Option<crate::desk::host::Host>,
    /// The screens as hub stations (`run --hub`).
    pub hub: Option<crate::hub::screening::HubLink>,
    /// No scanner here (a central screening room: `run --hub` without `--source`): the screens
    /// say so instead of a link, a belt and an X-ray lamp.
    pub no_scanner: bool,
    /// This desk publishes its bags to a hub (`run --publish`).
    pub publishing: Option<Publishing>,
}

impl Workstation {
    /// The workstation of an eframe window (its fonts installed on the window's context).
    pub fn for_window(cc: &eframe::CreationContext<'_>, parts: Parts) -> Self {
        let font = fonts::install_cjk(&cc.egui_ctx);
        Self::new(cc.wgpu_render_state.as_ref(), font, parts)
    }

    /// A workstation drawing with `render_state`'s device (its textures registered with that
    /// renderer); `font` is the CJK font installed on the context that will show it.
    pub fn new(
        render_state: Option<&egui_wgpu::RenderState>,
        font: Option<&'static str>,
        parts: Parts,
    ) -> Self {
        let Parts { profile, source, lut, inspection, desk, layout, remote, hub, no_scanner, publishing } =
            parts;
        let stations: Vec<Station> = inspection
            .screens()
            .into_iter()
            .filter_map(|screen| Some((inspection.agency(&screen.agency)?.clone(), screen)))
            .enumerate()
            .map(|(k, (agency, screen))| Station {
                ui_scale: layout.placement(k).ui_scale,
                panel_width: 300.0,
                agency,
                screen,
                view: Preset::Standard.settings(),
                preset: Preset::Standard,
                image: ImageView { mirror: layout.newest_at_left, ..ImageView::default() },
                help: false,
                magnifier: false,
                measure: None,
                measure_text: None,
                adjust: Adjust::default(),
                sound: true,
                alerts: std::collections::VecDeque::new(),
            })
            .collect();
        let mut error = None;
        let gpu = match render_state {
            Some(rs) => {
                let kernels = Kernels::new(&rs.device);
                let spec = ImageSpec {
                    channels: profile.channels,
                    lines: LIVE_LINES,
                    full_scale: profile.full_scale(),
                    views: stations.len(),
                };
                match LiveView::new(&rs.device, &rs.queue, &kernels, spec, &lut) {
                    Ok(live) => {
                        let textures = (0..stations.len())
                            .map(|i| {
                                rs.renderer.write().register_native_texture(
                                    &rs.device,
                                    live.image.out_view(i),
                                    wgpu::FilterMode::Linear,
                                )
                            })
                            .collect();
                        Some(Gpu {
                            kernels,
                            live,
                            textures,
                            adapter: describe_adapter(&rs.adapter.get_info()),
                            lut: lut.clone(),
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
        let panels = stations.iter().enumerate().map(|(i, s)| StationPanel::new(i, &s.agency.id)).collect();
        let stations_len = stations.len();
        let meter = crate::domain::measure::Meter::new(&profile)
            .map_err(|e| tracing::warn!("no measuring tools: {e}"))
            .ok();
        let mut assembler = Assembler::new(channels, fs);
        // Scanners that do not signal bags: 30 mm of empty belt ends a bag.
        assembler.segmenter = crate::assemble::Segmenter::for_profile(&profile, 30.0);
        Workstation {
            remote,
            hub,
            no_scanner,
            publishing,
            profile,
            source,
            assembler,
            stations,
            panels,
            desk,
            layout,
            gpu,
            error,
            font,
            last_frame: Instant::now(),
            rate: RateMeter::default(),
            drawn: vec![None; stations_len],
            status_height: vec![(0.0, 0.0); stations_len],
            toolbar_height: vec![0.0; stations_len],
            opened: (0..stations_len).map(|_| None).collect(),
            render_state: render_state.cloned(),
            belt_asked: None,
            tones: crate::sound::Tones::open(),
            dense_alerted: None,
            threats_alerted: vec![Default::default(); stations_len],
            raw: measure::RawRing::new(channels, LIVE_LINES as usize),
            meter,
            last_line_at: None,
            link_down_since: None,
        }
    }

    /// Number of screens.
    pub fn stations(&self) -> usize {
        self.stations.len()
    }

    /// The desk: agencies, accounts, bags and their records, each station's working state.
    pub fn desk(&self) -> &Desk {
        &self.desk
    }

    pub fn desk_mut(&mut self) -> &mut Desk {
        &mut self.desk
    }

    /// Send station `i`'s command to the desk as its panel does (the answer on its message line);
    /// a belt command the desk allows goes on to the scanner.
    pub fn command(&mut self, i: usize, cmd: Command) -> Result<crate::desk::Done, crate::desk::DeskError> {
        let r = self.panels[i].send(&mut self.desk, cmd, crate::unix_ms());
        if let Ok(crate::desk::Done::Belt(b)) = &r {
            self.send_belt(i, *b);
        }
        r
    }

    /// The hub link's requests (`run --hub`): each screen's operator told, bags taken from the
    /// hub opened on their screens, its words on the screens' message lines. Never waits.
    pub fn hub_step(&mut self) {
        let Some(link) = self.hub.as_ref() else { return };
        for i in 0..self.stations.len() {
            link.operator(i, self.desk.station(i).operator.as_ref().map(|o| o.id.as_str()));
        }
        let mut asked = Vec::new();
        while let Some(m) = link.try_next() {
            asked.push(m);
        }
        for m in asked {
            match m {
                crate::hub::screening::ToDesk::Open { screen, bag, hub, why }
                    if screen < self.panels.len() =>
                {
                    tracing::info!("hub bag {hub} is bag {bag}: opened on screen {}", screen + 1);
                    self.panels[screen].hub_note = why.map(|(en, zh)| (bag, en, zh));
                    let _ = self.command(screen, Command::Open { id: bag });
                }
                crate::hub::screening::ToDesk::Close { screen, bag }
                    if screen < self.panels.len()
                        && self.desk.station(screen).opened.as_ref().is_some_and(|o| o.id == bag) =>
                {
                    let _ = self.command(screen, Command::CloseBag);
                }
                crate::hub::screening::ToDesk::Say { screen, text, problem }
                    if screen < self.panels.len() =>
                {
                    self.panels[screen].message = Some((problem, text));
                }
                _ => {}
            }
        }
    }

    /// An alert on station `only` (or every live screen): kept in each screen's list, logged, and
    /// sounded once if any of those screens wants tones.
    fn alert(&mut self, only: Option<usize>, tone: crate::sound::Tone, about: String) {
        let screens: Vec<usize> = (0..self.stations.len())
            .filter(|&i| only.is_none_or(|o| o == i) && !self.stations[i].screen.back_office)
            .collect();
        let wanted = screens.iter().any(|&i| self.stations[i].sound);
        let sounded = wanted && self.tones.sound(tone, &about);
        if !wanted {
            tracing::info!("alert: {} ({about}), tones off on those screens", tone.name());
        }
        let at = std::time::SystemTime::now();
        for i in screens {
            let list = &mut self.stations[i].alerts;
            list.push_back(Alert { at, tone, about: about.clone(), sounded });
            while list.len() > ALERTS_KEPT {
                list.pop_front();
            }
        }
    }

    /// Station `i`'s alerts in words, one a line ("alert 12:03:04 link down: ...").
    pub fn alerts_text(&self, i: usize, lang: i18n::Lang) -> String {
        let tones = match (self.stations[i].sound, self.silent_why()) {
            (false, _) => lang.tr("alert tones off", "提示音关闭"),
            (true, Some(why)) => {
                lang.tr(&format!("alert tones: silent ({why})"), &format!("提示音：无声（{why}）"))
            }
            (true, None) => lang.tr("alert tones on", "提示音开启"),
        };
        let mut s = tones;
        for a in self.alerts(i) {
            let (en, zh) = match a.tone {
                crate::sound::Tone::LinkDown => ("link down", "链路中断"),
                crate::sound::Tone::Dense => ("dense object", "高密度物体"),
                crate::sound::Tone::Threat => ("projected threat", "投影威胁"),
            };
            s += &format!("\nalert {} {}: {}", clock_text(a.at), lang.tr(en, zh), a.about);
        }
        s
    }

    /// Station `i`'s alerts, oldest first.
    pub fn alerts(&self, i: usize) -> impl Iterator<Item = &Alert> {
        self.stations[i].alerts.iter()
    }

    /// Tones on or off on station `i`.
    pub fn set_sound(&mut self, i: usize, on: bool) {
        self.stations[i].sound = on;
    }

    /// Whether alert tones could play on this machine (`None`) or why not.
    pub fn silent_why(&self) -> Option<&str> {
        self.tones.silent_why.as_deref()
    }

    /// Something the beam did not penetrate came in: one alert per bag.
    fn dense_alert(&mut self, batch: &crate::assemble::Batch) {
        let Some(cal) = self.assembler.calibration.as_ref() else { return };
        let bag = self.assembler.stats.bags;
        if batch.lines == 0 || self.dense_alerted == Some(bag) || bag == 0 {
            return;
        }
        use crate::domain::automatic::{DENSE_PIXELS, dense_pixels};
        let thr = self.gpu.as_ref().map_or(f32::INFINITY, |g| g.lut.dense_threshold);
        // The same aid as central screening's automatic level.
        if dense_pixels(&batch.high, cal.dark_high.len(), cal, thr, &[]) >= DENSE_PIXELS {
            self.dense_alerted = Some(bag);
            self.alert(None, crate::sound::Tone::Dense, format!("bag {bag} of this run"));
        }
    }

    /// A projected threat revealed to an operator (their decision recorded): a tone on that screen.
    fn threat_alerts(&mut self) {
        let mut due = Vec::new();
        for i in 0..self.stations.len() {
            let Some(op) = self.desk.station(i).operator.as_ref() else { continue };
            for (bag, p) in &self.desk.projected {
                if self.desk.was_judged(*bag, &op.id) && !self.threats_alerted[i].contains(bag) {
                    due.push((i, *bag, format!("#{}: {}", self.desk.number(*bag), p.name)));
                }
            }
        }
        for (i, bag, about) in due {
            self.threats_alerted[i].insert(bag);
            self.alert(Some(i), crate::sound::Tone::Threat, about);
        }
    }

    /// Hand a belt command to the source (never waits); the screen says why when it cannot go.
    fn send_belt(&mut self, i: usize, b: Belt) {
        use std::sync::atomic::Ordering::Relaxed;
        let lang = self.panels[i].lang;
        let (en, zh) = (b.name(), i18n::belt_verb_zh(b));
        let why = if self.no_scanner {
            Some(("no scanner here: central screening", "无扫描仪：集中判图"))
        } else if self.source.commands.is_none() {
            Some((
                "this source cannot move a belt (a recording, images, a fed source)",
                "此信号源无传送带控制",
            ))
        } else if !self.source.stats.connected.load(Relaxed) {
            Some(("the scanner's link is down", "扫描仪链路中断"))
        } else if !self.source.command(ScannerCommand::Belt(b)) {
            Some(("the scanner's command queue is full", "扫描仪命令队列已满"))
        } else {
            None
        };
        match why {
            None => self.belt_asked = Some((b, Instant::now())),
            Some((why_en, why_zh)) => {
                let text =
                    lang.tr(&format!("Belt {en} NOT sent: {why_en}"), &format!("传送带{zh}未发送：{why_zh}"));
                self.panels[i].message = Some((true, text));
            }
        }
    }

    /// The belt as the scanner last reported it (`None`: it never said).
    pub fn belt(&self) -> Option<Belt> {
        self.assembler.stats.belt
    }

    /// A belt command sent that the scanner has not followed after `BELT_GRACE`.
    fn belt_unfollowed(&self) -> Option<Belt> {
        let (asked, at) = self.belt_asked?;
        (self.belt() != Some(asked) && at.elapsed() > BELT_GRACE).then_some(asked)
    }

    /// Station `i`'s login, decision and marking forms.
    /// How tall station `i`'s status bar has been drawn (points): one line of text is about 26.
    pub fn status_bar_height(&self, i: usize) -> f32 {
        self.status_height[i].1
    }

    /// Station `i`'s UI scale.
    pub fn ui_scale(&self, i: usize) -> f32 {
        self.stations[i].ui_scale
    }

    /// How tall station `i`'s toolbar was drawn (points).
    pub fn toolbar_height(&self, i: usize) -> f32 {
        self.toolbar_height[i]
    }

    pub fn panel(&self, i: usize) -> &StationPanel {
        &self.panels[i]
    }

    pub fn panel_mut(&mut self, i: usize) -> &mut StationPanel {
        &mut self.panels[i]
    }

    /// The GPU adapter the screens are drawn with, in words.
    pub fn adapter(&self) -> &str {
        self.gpu.as_ref().map_or("none", |g| g.adapter.as_str())
    }

    /// The newest line on both screens (the live ring's head).
    pub fn head(&self) -> u64 {
        self.gpu.as_ref().map_or(0, |g| g.live.head)
    }

    /// The newest line station `i`'s image was last drawn with (`None` before it was drawn).
    pub fn drawn_head(&self, i: usize) -> Option<u64> {
        self.drawn.get(i).copied().flatten().map(|(_, _, head)| head)
    }

    /// Bags of this run that have ended (all their lines on screen).
    pub fn ended_bags(&self) -> u64 {
        let ended = |s: &crate::assemble::BagSpan| s.end_line.is_some() && !crate::desk::is_archived(s);
        self.desk.bags.iter().filter(|(s, _)| ended(s)).count() as u64
    }

    /// The source and its counters.
    pub fn source(&self) -> &RunningSource {
        &self.source
    }

    /// Why the image cannot be shown, if it cannot (no GPU, the pipeline failed).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Where bag coordinates (line from the bag's first line, channel from the bottom) of the
    /// bag station `i` works on lie on its screen, as last drawn; `None` while nobody is logged
    /// in there, before the image was drawn, or for an earlier run's bag.
    pub fn bag_point_on_screen(&self, i: usize, b: [f32; 2]) -> Option<egui::Pos2> {
        let (rect, m, _) = self.drawn.get(i).copied().flatten()?;
        let (_, f) = self.marking_frame(i, &m, rect)?;
        Some(f.to_screen(b))
    }

    /// Drain the source for at most `budget`, feed the assembler and the GPU (once for all
    /// stations).
    pub fn ingest(&mut self, budget: Duration) {
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
        if batch.lines > 0 {
            self.last_line_at = Some(std::time::SystemTime::now());
            self.raw.push(&batch.low, &batch.high, &batch.missing);
        }
        let st = &self.source.stats;
        use std::sync::atomic::Ordering::Relaxed;
        let down = !st.connected.load(Relaxed) && !st.finished.load(Relaxed);
        if down != self.link_down_since.is_some() {
            self.link_down_since = down.then(std::time::SystemTime::now);
            if down {
                let why = self.assembler.stats.link.as_ref().map_or(String::new(), |(_, d)| d.clone());
                self.alert(None, crate::sound::Tone::LinkDown, why);
            }
        }
        // A belt command the scanner has followed is done with: what it reports later is its own
        // (its panel's) doing, not a command of ours left unfollowed.
        if self.belt_asked.is_some_and(|(b, _)| self.assembler.stats.belt == Some(b)) {
            self.belt_asked = None;
        }
        // The scanner's state into the audit trail when it changes (the belt as read back).
        let s = &self.assembler.stats;
        let scanner = s.scanner.filter(|_| !down);
        let fault = scanner.filter(|x| x.fault).map(|_| {
            let said = s.faults.iter().rev().find(|f| f.starts_with("scanner fault"));
            said.cloned().unwrap_or_else(|| "scanner fault".into())
        });
        self.desk.scanner_state(crate::desk::ScannerState {
            link: !down,
            belt: s.belt,
            tube_on: scanner.is_some_and(|x| x.tube_on),
            interlock_open: scanner.is_some_and(|x| x.interlock_open),
            fault,
        });
        self.dense_alert(&batch);
        self.threat_alerts();
        self.desk.update_bags(&batch.bags);
        self.desk.note_projected(&batch.projected);
        if let Some(a) = self.desk.archive.as_mut() {
            a.feed(&batch, self.assembler.calibration.as_ref());
        }
        // Commits that came back since the last frame (a decision shows once it is on disk),
        // and the site's policy (automatic releases that are due).
        self.desk.poll();
        self.desk.apply_policy(crate::unix_ms());
        let (Some(gpu), Some(rs)) = (self.gpu.as_mut(), self.render_state.as_ref()) else {
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
            gpu.live.push_lines(&rs.queue, &batch.low, &batch.high, &batch.missing);
        }
        let views: Vec<ViewSettings> = self.stations.iter().map(|s| s.view.clone()).collect();
        let mut enc =
            rs.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("live") });
        if gpu.live.encode(&rs.queue, &mut enc, &gpu.kernels, &views) {
            rs.queue.submit([enc.finish()]);
        }
        let (head, cap) = (gpu.live.head, gpu.live.capacity() as u64);
        self.desk.set_live_oldest(head.saturating_sub(cap));
        self.update_opened();
    }

    /// Archived bags opened or closed by the desk since the last frame: each gets an image of
    /// its own on the GPU (uploaded once) and is composed again when its station's view changes.
    fn update_opened(&mut self) {
        let (Some(gpu), Some(rs)) = (self.gpu.as_mut(), self.render_state.as_ref()) else { return };
        for i in 0..self.stations.len() {
            let want = self.desk.station(i).opened.clone();
            if self.opened[i].as_ref().map(|o| o.key) != want.as_ref().map(|o| o.key) {
                if let Some(old) = self.opened[i].take() {
                    rs.renderer.write().free_texture(&old.texture);
                }
                // A bag opened or closed: its whole image, unzoomed.
                self.stations[i].image.reset();
                if let Some(o) = &want {
                    let b = &o.scan;
                    let lut = b.lut.as_ref().unwrap_or(&gpu.lut);
                    let (lines, channels) = (b.frame.lines() as u32, b.frame.channels() as u32);
                    let made = crate::pipeline::gpu::GpuImage::new(
                        &rs.device,
                        &rs.queue,
                        &gpu.kernels,
                        channels,
                        lines,
                        b.calibration.full_scale,
                        lut,
                    );
                    match made {
                        Ok(image) => {
                            image.set_calibration(&rs.queue, &b.calibration.table());
                            image.write_frame(&rs.queue, b.frame.low.view(), b.frame.high.view());
                            if b.missing.iter().any(|&m| m) {
                                image.write_missing(
                                    &rs.queue,
                                    0,
                                    &b.missing[..b.missing.len().min(lines as usize)],
                                );
                            }
                            let texture = rs.renderer.write().register_native_texture(
                                &rs.device,
                                image.out_view(0),
                                wgpu::FilterMode::Linear,
                            );
                            self.opened[i] = Some(OpenedImage { key: o.key, image, texture, rendered: None });
                        }
                        Err(e) => {
                            let _ = self.desk.apply(i, Command::CloseBag, crate::unix_ms());
                            let lang = self.panels[i].lang;
                            let en = format!("That bag cannot be shown: {e}");
                            let zh = format!("该行李无法显示：{e}");
                            self.panels[i].message = Some((true, lang.tr(&en, &zh)));
                        }
                    }
                }
            }
            if let Some(o) = self.opened[i].as_mut()
                && o.rendered.as_ref() != Some(&self.stations[i].view)
            {
                let view = self.stations[i].view.clone();
                // As `render` and `export png` compose a whole frame: no wrap at its ends.
                let p = o.image.params(&view, false);
                let mut enc = rs
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("opened") });
                o.image.encode(
                    &rs.queue,
                    &mut enc,
                    &gpu.kernels,
                    &p,
                    crate::pipeline::gpu::Work::full(o.image.lines, p.tile),
                );
                rs.queue.submit([enc.finish()]);
                o.rendered = Some(view);
            }
        }
    }

    /// The archived bag open on station `i` as its screen's pipeline rendered it (`[line-major
    /// rows, x, rgba]` as `render` writes), read back from the GPU: for `snapshot` and tests.
    pub fn opened_rgba(&self, i: usize) -> Option<Result<ndarray::Array3<u8>, String>> {
        let o = self.opened.get(i)?.as_ref()?;
        let rs = self.render_state.as_ref()?;
        Some(o.image.read_rgba(&rs.device, &rs.queue).map_err(|e| e.to_string()))
    }

    /// The bags station `i` shows: the opened bag alone, or this run's bags on the live image.
    fn on_screen(&self, i: usize) -> Vec<OnScreen> {
        if let Some(o) = self.opened.get(i).and_then(|o| o.as_ref()) {
            return vec![OnScreen { key: o.key, first_line: 0, end: o.image.lines as f64 }];
        }
        self.desk
            .bags
            .iter()
            .filter(|(s, _)| !crate::desk::is_archived(s))
            .map(|(s, _)| OnScreen {
                key: s.bag,
                first_line: s.first_line,
                end: s.end_line.map_or(f64::INFINITY, |e| e as f64),
            })
            .collect()
    }

    /// Everything one station's window shows.
    pub fn station_ui(&mut self, ui: &mut egui::Ui, i: usize) {
        // Everything egui makes on its own during this screen's pass (tooltips, menus, windows,
        // the readout box) takes the context's style, which every screen shares: for this pass
        // it is the screen's scaled style, and the shared one again after.
        let ctx = ui.ctx().clone();
        let shared = ctx.global_style();
        self.screen_ui(ui, i, &shared);
        ctx.set_global_style(shared);
    }

    fn screen_ui(&mut self, ui: &mut egui::Ui, i: usize, shared: &std::sync::Arc<egui::Style>) {
        // The screen's own UI scale: Ctrl+= and Ctrl+- by a quarter, Ctrl+0 back to the
        // layout's (egui's own Ctrl zoom would scale every screen at once: it is off).
        ui.ctx().options_mut(|o| o.zoom_with_keyboard = false);
        let step = ui.input(|inp| {
            if !inp.modifiers.ctrl {
                return None;
            }
            if inp.key_pressed(egui::Key::Equals) || inp.key_pressed(egui::Key::Plus) {
                Some(0.25)
            } else if inp.key_pressed(egui::Key::Minus) {
                Some(-0.25)
            } else {
                inp.key_pressed(egui::Key::Num0).then_some(0.0)
            }
        });
        if let Some(d) = step {
            let st = &mut self.stations[i];
            st.ui_scale = if d == 0.0 {
                self.layout.placement(i).ui_scale
            } else {
                (st.ui_scale + d).clamp(*layout::UI_SCALES.start(), *layout::UI_SCALES.end())
            };
            // A new scale: the status bar's remembered height no longer holds.
            self.status_height[i] = (0.0, 0.0);
        }
        let scale = self.stations[i].ui_scale;
        scale_ui(ui, scale);
        ui.ctx().set_global_style(scaled_style(shared, scale));
        let pressed: Vec<Preset> = ui
            .input(|inp| PRESET_KEYS.iter().filter(|(k, _)| inp.key_pressed(*k)).map(|(_, p)| *p).collect());
        let escape = ui.input(|inp| inp.key_pressed(egui::Key::Escape));
        let st = &mut self.stations[i];
        if let Some(p) = pressed.last() {
            st.set_view(*p, st.adjust);
        }
        // Brightness (PageUp/PageDown), contrast (] and [), gamma (. and ,), on any function.
        let typing = ui.ctx().egui_wants_keyboard_input();
        let adjust = ui.input(|inp| {
            let k = |key| inp.key_pressed(key);
            let mut a = st.adjust;
            for (up, down, f) in [
                (egui::Key::PageUp, egui::Key::PageDown, Adjust::brighter as fn(Adjust, bool) -> Adjust),
                (egui::Key::CloseBracket, egui::Key::OpenBracket, Adjust::more_contrast),
                (egui::Key::Period, egui::Key::Comma, Adjust::more_gamma),
            ] {
                if k(up) {
                    a = f(a, true);
                }
                if k(down) {
                    a = f(a, false);
                }
            }
            a
        });
        if !typing && adjust != st.adjust {
            st.set_view(st.preset, adjust);
        }
        if escape {
            // One key back to the plain standard image: preset, brightness and contrast, zoom
            // and pan, and live.
            st.set_view(Preset::Standard, Adjust::default());
            st.image.reset();
            st.measure = None;
            if self.desk.station(i).opened.is_some() {
                let _ = self.command(i, Command::CloseBag);
            }
        }
        let bar = egui::Panel::top(format!("toolbar{i}")).show(ui, |ui| self.toolbar_ui(ui, i));
        self.toolbar_height[i] = bar.response.rect.height();
        // The status bar keeps the tallest height it has needed at this width: a number that
        // grows, or logging in, must not make the image jump.
        let width = ui.available_width();
        let (w, h) = self.status_height[i];
        let min = if w == width { h } else { 0.0 };
        let bar =
            egui::Panel::bottom(format!("status{i}")).min_size(min).show(ui, |ui| self.status_ui(ui, i));
        self.status_height[i] = (width, bar.response.rect.height().max(min));
        let now_ms = crate::unix_ms();
        let input = ui.input(|inp| !inp.events.is_empty() || inp.pointer.is_moving());
        self.desk.tick(i, now_ms, input);
        let (panels, desk) = (&mut self.panels, &mut self.desk);
        // The panel's width at scale 1 (300, or as the operator dragged it) times the scale: one
        // panel per scale, so Ctrl+= widens it with its text.
        let width = self.stations[i].panel_width;
        let side = egui::Panel::right(format!("disposal{i}@{}", (scale * 100.0).round()))
            .default_size(width * scale)
            .show(ui, |ui| {
                // A short screen scrolls the panel rather than cutting off its last rows.
                egui::ScrollArea::vertical().show(ui, |ui| panels[i].ui(ui, desk, now_ms));
            });
        self.stations[i].panel_width = side.response.rect.width() / scale;
        self.save_view_ui(i);
        // No fill under the image: the window is cleared to the panel colour (`clear_color`).
        let frame = egui::Frame::central_panel(ui.style()).fill(egui::Color32::TRANSPARENT);
        egui::CentralPanel::default().frame(frame).show(ui, |ui| self.image_ui(ui, i));
        let typing = ui.ctx().egui_wants_keyboard_input();
        // Decision keys: Ctrl+1 ... the agency's codes in the panel's order, on the outlined bag.
        let decision_key = ui.input(|inp| {
            if !inp.modifiers.ctrl && !inp.modifiers.command {
                return None;
            }
            DECISION_KEYS.iter().position(|k| inp.key_pressed(*k))
        });
        // The site's own decision keys (a numeric keypad, a console's extra keys), pressed alone.
        let site_key = ui.input(|inp| {
            if inp.modifiers.ctrl || inp.modifiers.alt || inp.modifiers.command {
                return None;
            }
            self.stations[i].agency.decisions.iter().find_map(|d| {
                let key = egui::Key::from_name(d.key.as_deref()?)?;
                inp.key_pressed(key).then(|| d.code.clone())
            })
        });
        let by_position =
            decision_key.and_then(|k| self.stations[i].agency.decisions.get(k)).map(|c| c.code.clone());
        if !typing && let Some(code) = site_key.or(by_position) {
            self.panels[i].decide(&mut self.desk, code, crate::unix_ms());
        }
        // The belt: Space stops it (the first reflex on a suspicious image), Ctrl+arrows run it.
        let belt = ui.input(|inp| {
            if inp.key_pressed(egui::Key::Space) {
                Some(Belt::Stop)
            } else if inp.modifiers.ctrl && inp.key_pressed(egui::Key::ArrowRight) {
                Some(Belt::Forward)
            } else if inp.modifiers.ctrl && inp.key_pressed(egui::Key::ArrowLeft) {
                Some(Belt::Reverse)
            } else {
                None
            }
        });
        if !typing && let Some(b) = belt {
            let _ = self.command(i, Command::Belt(b));
        }
        if !typing && ui.input(|inp| inp.key_pressed(egui::Key::Questionmark)) {
            self.stations[i].help = !self.stations[i].help;
        }
        if !typing && ui.input(|inp| inp.key_pressed(egui::Key::M)) {
            self.stations[i].magnifier = !self.stations[i].magnifier;
        }
        if self.stations[i].help {
            let lang = self.panels[i].lang;
            let mut open = true;
            egui::Window::new(lang.tr("Keys", "按键说明")).open(&mut open).collapsible(false).show(
                ui.ctx(),
                |ui| {
                    egui::Grid::new(format!("help{i}")).striped(true).show(ui, |ui| {
                        for (key, p) in PRESET_KEYS {
                            let (en, zh) = i18n::preset_name(p);
                            ui.label(key.name());
                            ui.label(lang.tr(en, zh));
                            ui.end_row();
                        }
                        for (k, en, zh) in HELP_KEYS {
                            ui.label(*k);
                            ui.label(lang.tr(en, zh));
                            ui.end_row();
                        }
                    });
                },
            );
            self.stations[i].help = open;
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, i: usize) {
        let lang = self.panels[i].lang;
        let mut switch = false;
        let mut belt = None;
        let reported = self.assembler.stats.belt;
        let no_scanner = self.no_scanner;
        let st = &mut self.stations[i];
        ui.horizontal_wrapped(|ui| {
            // Tighter than egui's default: the whole toolbar on one row at 1280 px, both languages.
            ui.spacing_mut().item_spacing.x *= 0.5;
            // The screen's agency (and name), English over Chinese in both languages.
            let size = ui.style().text_styles.get(&egui::TextStyle::Body).map_or(14.0, |f| f.size) + 2.0;
            let heading = |en: &str, zh: &str| egui::RichText::new(lang.stacked(en, zh)).strong().size(size);
            ui.label(heading(&st.agency.name.en, &st.agency.name.zh));
            if let Some(n) = &st.screen.name {
                ui.label(heading(&n.en, &n.zh));
            }
            // The belt's keys, lit as the scanner reports it (not as last pressed).
            if !st.screen.back_office && !no_scanner {
                ui.separator();
                for (b, key) in [(Belt::Reverse, "Ctrl+←"), (Belt::Stop, "Space"), (Belt::Forward, "Ctrl+→")]
                {
                    let (en, zh) = i18n::belt_name(b);
                    let words = lang.tr(en, zh);
                    if ui
                        .selectable_label(reported == Some(b), i18n::belt_symbol(b))
                        .on_hover_text(format!("{words} ({key})"))
                        .clicked()
                    {
                        belt = Some(b);
                    }
                }
            }
            switch = ui.button(lang.switch_label()).on_hover_text("Language 语言").clicked();
            if ui.selectable_label(st.help, "?").on_hover_text(lang.tr("Keys", "按键说明")).clicked() {
                st.help = !st.help;
            }
            if ui
                .selectable_label(st.magnifier, lang.stacked("Magnifier", "放大镜"))
                .on_hover_text("M")
                .clicked()
            {
                st.magnifier = !st.magnifier;
            }
            ui.separator();
            for (key, p) in PRESET_KEYS {
                if ui.selectable_label(st.preset == p, preset_label(lang, key, p)).clicked() {
                    st.set_view(p, st.adjust);
                }
            }
            // Brightness, contrast and gamma: sliders under one button, marked when not neutral.
            ui.separator();
            ui.menu_button(format!("{}{}", lang.stacked("Adjust", "调节"), adjust_text(st.adjust)), |ui| {
                let mut a = st.adjust;
                ui.add(
                    egui::Slider::new(&mut a.brightness, -0.5..=0.5)
                        .text(lang.tr("Brightness (PgUp/PgDn)", "亮度")),
                );
                ui.add(
                    egui::Slider::new(&mut a.contrast, 0.25..=4.0)
                        .logarithmic(true)
                        .text(lang.tr("Contrast ([ ])", "对比度")),
                );
                ui.add(
                    egui::Slider::new(&mut a.gamma, 0.25..=4.0)
                        .logarithmic(true)
                        .text(lang.tr("Gamma (, .)", "伽马")),
                );
                if ui.button(lang.tr("Reset (Esc)", "复位")).clicked() {
                    a = Adjust::default();
                }
                ui.separator();
                ui.checkbox(&mut st.sound, lang.tr("Alert tones", "提示音"));
                if a != st.adjust {
                    st.set_view(st.preset, a);
                }
            });
        });
        if switch {
            self.panels[i].lang = lang.next();
        }
        if let Some(b) = belt {
            let _ = self.command(i, Command::Belt(b));
        }
    }

    /// "Save image": ask the archive to save the bag in focus as this screen shows it (the
    /// answer comes back through the desk).
    fn save_view_ui(&mut self, i: usize) {
        if !std::mem::take(&mut self.panels[i].save_view) || self.desk.archive.is_none() {
            return;
        }
        let panel = &self.panels[i];
        let lang = panel.lang;
        let Some(key) = self.desk.focus(i) else { return };
        // Images leave the archive only under someone's name.
        let Some(actor) = self.desk.station(i).operator.as_ref().map(|o| o.id.clone()) else {
            self.panels[i].message = Some((true, lang.tr("Log in to save images", "登录后方可保存图像")));
            return;
        };
        let agencies: Vec<String> = if panel.marks.show_others {
            self.desk.config.agencies.iter().map(|a| a.id.clone()).collect()
        } else {
            vec![panel.agency.clone()]
        };
        let request = crate::desk::archiver::ViewRequest {
            station: i,
            key,
            view: self.stations[i].view.clone(),
            agencies,
            config: self.desk.config.clone(),
            actor,
            station_name: panel.agency.clone(),
        };
        let r = self.desk.archive.as_mut().expect("checked above").save_view(request);
        self.panels[i].message = Some(match r {
            Ok(()) => (false, lang.tr("Saving the image…", "正在保存图像…")),
            Err(e) => (true, format!("{}: {e}", lang.tr("Image NOT saved", "图像未保存"))),
        });
    }

    /// The link's counters: CRC errors, frames lost, reconnects.
    fn link_counts(&self, lang: i18n::Lang) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &self.source.stats;
        format!(
            "{} {} · {} {} · {} {}",
            lang.tr("CRC errors", "校验错误"),
            st.crc_errors.load(Relaxed),
            lang.tr("frames lost", "丢帧"),
            st.frames_lost.load(Relaxed),
            lang.tr("reconnects", "重连"),
            st.reconnects.load(Relaxed)
        )
    }

    /// Lines missing (lost on the link) and dropped (the screens did not keep up).
    fn lost_lines(&self, lang: i18n::Lang) -> String {
        format!(
            "{} {} · {} {}",
            lang.tr("missing", "缺失"),
            self.assembler.stats.lines_missing,
            lang.tr("dropped", "丢弃"),
            self.source.stats.lines_dropped.load(std::sync::atomic::Ordering::Relaxed)
        )
    }

    /// The engineering details behind the status bar's tooltip: made only while it is shown.
    fn status_details(&self, i: usize, lang: i18n::Lang) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let (s, st) = (&self.assembler.stats, &self.source.stats);
        // GigE Vision: packets asked for again, and how many came.
        let (asked, came) = (st.resends_requested.load(Relaxed), st.resends_honoured.load(Relaxed));
        [
            format!("{}: {}", lang.tr("Source", "信号源"), self.source.description),
            format!("{} · {} {came}/{asked}", self.link_counts(lang), lang.tr("resent packets", "重传包")),
            self.lost_lines(lang),
            format!(
                "{}: {} {}, {} {}",
                lang.tr("calibration", "校准"),
                s.lines_since_calibration,
                lang.tr("lines ago", "线前"),
                s.air_updates,
                lang.tr("air updates", "次空气更新")
            ),
            format!("GPU: {}", self.gpu.as_ref().map_or("none", |g| g.adapter.as_str())),
            self.alerts_text(i, lang),
            format!(
                "{} · {} kVp · {} {}",
                self.profile.name,
                self.profile.kvp,
                self.profile.channels,
                lang.tr("ch", "通道")
            ),
        ]
        .join("\n")
    }

    fn status_ui(&self, ui: &mut egui::Ui, i: usize) {
        let lang = self.panels[i].lang;
        let s = &self.assembler.stats;
        let st = &self.source.stats;
        use std::sync::atomic::Ordering::Relaxed;
        // One line at 1280 px: what an operator reads at a glance; the engineering details (the
        // source, link counters, calibration, adapter, profile) in the "details" tooltip.
        let warn = egui::Color32::from_rgb(255, 90, 90);
        ui.horizontal_wrapped(|ui| {
            let finished = st.finished.load(Relaxed);
            let link_down = !st.connected.load(Relaxed) && !finished;
            if self.no_scanner {
                ui.label(lang.tr("no scanner: central screening", "无扫描仪：集中判图"));
                ui.separator();
                self.status_tail(ui, i, lang);
                return;
            }
            let health = if finished {
                lang.tr("played to the end", "已播放完毕")
            } else if link_down {
                lang.tr("link down", "链路中断")
            } else if self.assembler.calibration.is_none() {
                lang.tr("calibrating", "校准中")
            } else {
                lang.tr("connected", "已连接")
            };
            // A replay going bag by bag: the trainer (or trainee) lets the next bag come.
            if st.stepping.load(Relaxed) {
                let waiting = st.step_waiting.load(Relaxed);
                let b = ui.add_enabled(
                    waiting,
                    egui::Button::new(format!("▶ {}", lang.tr("Next bag", "下一个行李"))),
                );
                if b.clicked() {
                    st.next_bag();
                }
                ui.separator();
            }
            let text = format!("{health}, {:.0} {}", self.rate.rate, lang.tr("lines/s", "线/秒"));
            if link_down {
                let detail = s.link.as_ref().map_or(String::new(), |(_, d)| d.clone());
                ui.colored_label(warn, text).on_hover_text(detail);
            } else {
                ui.label(text);
            }
            // The belt as the scanner reports it; red when a command sent was not followed.
            if let Some(b) = s.belt {
                let (en, zh) = i18n::belt_name(b);
                let text = format!("{} {}", i18n::belt_symbol(b), lang.tr(en, zh));
                ui.separator();
                if self.belt_unfollowed().is_some() {
                    ui.colored_label(warn, text);
                } else if b == Belt::Forward {
                    ui.label(text);
                } else {
                    ui.colored_label(egui::Color32::from_rgb(240, 170, 20), text);
                }
            }
            ui.separator();
            ui.label(format!(
                "{} {} · {} {}",
                lang.tr("line", "线号"),
                self.gpu.as_ref().map_or(0, |g| g.live.head),
                lang.tr("bags", "行李数"),
                s.bags
            ));
            // Lines lost on the way are shown only when there are some, and in red.
            let troubles = s.lines_missing
                + st.lines_dropped.load(Relaxed)
                + st.crc_errors.load(Relaxed)
                + st.frames_lost.load(Relaxed)
                + st.reconnects.load(Relaxed);
            if troubles > 0 {
                ui.colored_label(warn, self.lost_lines(lang))
                    .on_hover_ui(|ui| _ = ui.label(self.link_counts(lang)));
            }
            ui.separator();
            self.status_tail(ui, i, lang);
        });
    }

    /// The status bar after the scanner's part: view, pending bags, operator, details, errors.
    fn status_tail(&self, ui: &mut egui::Ui, i: usize, lang: i18n::Lang) {
        let (en, zh) = i18n::preset_name(self.stations[i].preset);
        ui.label(lang.tr(en, zh));
        let pending = self
            .desk
            .bags
            .iter()
            .filter(|(_, r)| matches!(r.outcome(&self.desk.config).state, OutcomeState::Pending { .. }))
            .count();
        ui.separator();
        ui.label(format!("{}: {pending}", lang.tr("pending bags", "待处置行李")));
        let op = self
            .desk
            .station(i)
            .operator
            .as_ref()
            .map_or(lang.tr("not logged in", "未登录"), |o| o.id.clone());
        ui.separator();
        ui.label(format!("{}: {op}", lang.tr("operator", "操作员")));
        if let Some(p) = &self.publishing {
            use std::sync::atomic::Ordering::Relaxed;
            ui.separator();
            let (n, d) = (p.progress.published.load(Relaxed), p.progress.decisions.load(Relaxed));
            if p.progress.connected.load(Relaxed) {
                ui.label(lang.tr(
                    &format!("hub {}/{}: bags sent {n}, decisions sent {d}", p.line, p.node),
                    &format!("集中判图 {}/{}：已上传行李 {n}，处置 {d}", p.line, p.node),
                ));
            } else {
                ui.colored_label(
                    egui::Color32::YELLOW,
                    lang.tr("hub not reachable: bags wait here", "集中判图中心不可达：行李在本机等待"),
                );
            }
            let waiting = p.progress.decisions_waiting.load(Relaxed);
            if p.progress.decisions_failing.load(Relaxed) && waiting > 0 {
                ui.colored_label(
                    egui::Color32::YELLOW,
                    lang.tr(
                        &format!("{waiting} decisions wait for the hub"),
                        &format!("{waiting} 项处置等待上传"),
                    ),
                );
            }
            let corrected = p.progress.corrections.load(Relaxed);
            if corrected > 0 {
                ui.label(
                    lang.tr(&format!("corrections sent: {corrected}"), &format!("已上传更正：{corrected}")),
                );
            }
        }
        if self.font.is_none() {
            ui.separator();
            ui.colored_label(egui::Color32::YELLOW, "no CJK font: install fonts-noto-cjk (中文字体缺失)");
        }
        ui.separator();
        ui.weak(lang.tr("details", "详情")).on_hover_ui(|ui| _ = ui.label(self.status_details(i, lang)));
        if let Some(e) = self.error.as_ref().or(self.assembler.stats.last_error.as_ref()) {
            ui.separator();
            ui.colored_label(egui::Color32::RED, e);
        }
    }

    /// The live image of station `i`: zoom (wheel, + and -, up to 64x), pan (drag, arrows),
    /// Home or Esc back to the whole live image.
    fn image_ui(&mut self, ui: &mut egui::Ui, i: usize) {
        let rect = ui.available_rect_before_wrap();
        let response = ui.allocate_rect(rect, egui::Sense::click_and_drag());
        let Some(gpu) = &self.gpu else {
            ui.painter().rect_filled(rect, 0.0, egui::Color32::WHITE);
            return;
        };
        // A back-office screen shows bags opened from the archive, never the belt.
        if self.stations[i].screen.back_office && self.opened[i].is_none() {
            ui.painter().rect_filled(rect, 0.0, egui::Color32::from_gray(40));
            let lang = self.panels[i].lang;
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                lang.tr(
                    "Back office: open a bag from the recent bags or the archive search",
                    "后台：从最近行李或存档查找中打开行李",
                ),
                egui::FontId::proportional(20.0),
                egui::Color32::from_gray(200),
            );
            self.drawn[i] = None;
            return;
        }
        // An archived bag open here is drawn instead of the live ring: its lines 0..n.
        let (texture, cap, head, rows) = match &self.opened[i] {
            Some(o) => (o.texture, o.image.lines as u64, o.image.lines as u64, o.image.channels),
            None => (gpu.textures[i], gpu.live.capacity() as u64, gpu.live.head, self.profile.channels),
        };
        let magnifier = self.stations[i].magnifier;
        let view = &mut self.stations[i].image;

        let m = view.mapping(rect.width(), rect.height(), rows, head);
        // The primary button marks when a marking tool is chosen (and someone is logged in);
        // otherwise it pans, and the secondary button always pans.
        let tool = self.panels[i].marks.tool;
        let mut marking = tool.measures() || (tool != Tool::Pan && self.desk.station(i).operator.is_some());
        // With the pan tool, a press on one of this agency's marks takes the mark, not the view
        // (until the drag ends, however it ends).
        if !response.dragged() && !response.drag_stopped() {
            self.panels[i].marks.editing = None;
        }
        if !marking && response.drag_started_by(egui::PointerButton::Primary) {
            let grab =
                ui.input(|inp| inp.pointer.press_origin()).and_then(|p| self.own_mark_at(i, p, &m, rect));
            self.panels[i].marks.editing = grab;
        }
        marking |= self.panels[i].marks.editing.is_some();
        let view = &mut self.stations[i].image;
        if response.dragged_by(egui::PointerButton::Secondary)
            || (!marking && response.dragged_by(egui::PointerButton::Primary))
        {
            let d = response.drag_delta();
            view.pan_by(d.x, d.y, &m, head);
        }
        if let Some(pos) = response.hover_pos() {
            let scroll = ui.input(|inp| inp.smooth_scroll_delta.y);
            if scroll != 0.0 {
                let p = pos - rect.min;
                view.zoom_at((scroll / 200.0).exp(), p.x, p.y, &m, rows, head);
            }
        }
        let (zoom_in, zoom_out, home) = ui.input(|inp| {
            (
                // With Ctrl they scale the screen's UI instead.
                !inp.modifiers.ctrl
                    && (inp.key_pressed(egui::Key::Plus) || inp.key_pressed(egui::Key::Equals)),
                !inp.modifiers.ctrl && inp.key_pressed(egui::Key::Minus),
                inp.key_pressed(egui::Key::Home),
            )
        });
        let centre = (rect.width() / 2.0, rect.height() / 2.0);
        if zoom_in {
            view.zoom_at(2.0, centre.0, centre.1, &m, rows, head);
        }
        if zoom_out {
            view.zoom_at(0.5, centre.0, centre.1, &m, rows, head);
        }
        let step = rect.width() / 8.0;
        let arrows = ui.input(|inp| {
            // Ctrl+arrows run the belt.
            let k = |key| if inp.key_pressed(key) && !inp.modifiers.ctrl { 1.0 } else { 0.0 };
            (
                k(egui::Key::ArrowLeft) - k(egui::Key::ArrowRight),
                k(egui::Key::ArrowUp) - k(egui::Key::ArrowDown),
            )
        });
        if arrows != (0.0, 0.0) {
            view.pan_by(arrows.0 * step, arrows.1 * step, &m, head);
        }
        if home {
            view.reset();
        }

        // Draw the lines in view that the ring still holds (older ones are gone: white).
        let m = view.mapping(rect.width(), rect.height(), rows, head);
        let oldest = head.saturating_sub(cap) as f64;
        let v0 = m.top_row / rows as f32;
        let v1 = ((m.top_row + m.visible_rows()) / rows as f32).min(1.0);
        let bottom = rect.top() + ((rows as f32 - m.top_row) * m.scale).min(rect.height());
        let x_of = |line: f64| rect.left() + m.x_of_line(line);
        // White where no line is drawn (beside and below the scan, lines the ring no longer
        // holds): painted around the scan, not under it, since every layer of fill costs a
        // software rasterizer as much as the scan itself.
        let from = (m.right_line - m.visible_lines()).max(oldest);
        let (xa, xb) = (x_of(from), x_of(m.right_line));
        let (cx0, cx1) = (xa.min(xb).max(rect.left()), xa.max(xb).min(rect.right()));
        let white = |r: egui::Rect| {
            if r.width() > 0.0 && r.height() > 0.0 {
                ui.painter().rect_filled(r, 0.0, egui::Color32::WHITE);
            }
        };
        if from < m.right_line && cx1 > cx0 {
            white(egui::Rect::from_min_max(rect.left_top(), egui::pos2(cx0, bottom)));
            white(egui::Rect::from_min_max(egui::pos2(cx1, rect.top()), egui::pos2(rect.right(), bottom)));
            white(egui::Rect::from_min_max(egui::pos2(rect.left(), bottom), rect.right_bottom()));
        } else {
            white(rect);
        }
        let ring = Ring { texture, cap, oldest };
        ring.paint(
            &ui.painter().with_clip_rect(rect),
            m.right_line - m.visible_lines(),
            m.right_line,
            (v0, v1),
            (rect.top(), bottom),
            m.mirror,
            x_of,
        );
        // The magnifier: the scan under the pointer, four times larger, in a square beside it.
        if magnifier && let Some(pos) = response.hover_pos() {
            const K: f32 = 4.0;
            let side = (rect.width().min(rect.height()) * 0.4).clamp(120.0, 320.0);
            let (line, row) = m.to_scan(pos.x - rect.left(), pos.y - rect.top());
            let (half_l, half_r) = ((side / (2.0 * m.scale * K)) as f64, side / (2.0 * m.scale * K));
            let mut at = pos + egui::vec2(24.0, -24.0 - side);
            if at.x + side > rect.right() {
                at.x = pos.x - 24.0 - side;
            }
            at.y = at.y.clamp(rect.top(), (rect.bottom() - side).max(rect.top()));
            let dest = egui::Rect::from_min_size(at, egui::vec2(side, side));
            let painter = ui.painter().with_clip_rect(dest);
            painter.rect_filled(dest, 0.0, egui::Color32::WHITE);
            let (r0, r1) = (row - half_r, row + half_r);
            // Rows past the scan's edges stay white.
            let (c0, c1) = (r0.max(0.0), r1.min(rows as f32));
            if c1 > c0 {
                let y_of = |r: f32| dest.top() + (r - r0) / (r1 - r0) * side;
                let (l0, l1) = (line - half_l, line + half_l);
                let x_of = |l: f64| {
                    let f = ((l - l0) / (l1 - l0)) as f32;
                    if m.mirror { dest.right() - f * side } else { dest.left() + f * side }
                };
                ring.paint(
                    &painter,
                    l0.min(head as f64),
                    l1.min(head as f64),
                    (c0 / rows as f32, c1 / rows as f32),
                    (y_of(c0), y_of(c1)),
                    m.mirror,
                    x_of,
                );
            }
            ui.painter().rect_stroke(
                dest,
                0.0,
                egui::Stroke::new(2.0, egui::Color32::from_rgb(30, 90, 200)),
                egui::StrokeKind::Outside,
            );
            ui.painter().text(
                dest.left_top() + egui::vec2(4.0, 2.0),
                egui::Align2::LEFT_TOP,
                format!("{:.0}x", view.zoom * K),
                egui::FontId::proportional(13.0),
                egui::Color32::from_rgb(30, 90, 200),
            );
        }
        let view_copy = *view;
        self.drawn[i] = Some((rect, view_copy.mapping(rect.width(), rect.height(), rows, head), head));
        let drawn_map = view_copy.mapping(rect.width(), rect.height(), rows, head);
        // What this screen has shown of each bag: a decision needs the whole bag shown here.
        let shown_from =
            (drawn_map.right_line - drawn_map.visible_lines()).max(oldest).max(0.0).floor() as u64;
        let shown_to = (drawn_map.right_line.min(head as f64)).max(0.0).ceil() as u64;
        if self.opened[i].is_some() {
            self.desk.note_drawn_opened(i, shown_from, shown_to);
        } else {
            self.desk.note_drawn(i, shown_from, shown_to);
        }
        self.focus_ui(ui, i, rect, &drawn_map);
        self.measure_ui(ui, i, &response, rect, &drawn_map);
        self.marks_ui(ui, i, &response, rect, &drawn_map);
        self.banners_ui(ui, i, rect);
        let view = &self.stations[i].image;
        if view.zoom > 1.0 || !view.is_live() {
            let text =
                format!("{:.1}x{}", view.zoom, if view.is_live() { "" } else { " · held 已暂停 (Home)" });
            ui.painter().text(
                rect.left_top() + egui::vec2(8.0, 8.0),
                egui::Align2::LEFT_TOP,
                text,
                egui::FontId::proportional(16.0),
                egui::Color32::from_rgb(200, 30, 30),
            );
        }
    }

    /// The raw samples of what station `i` shows (the live ring, or the archived bag open there),
    /// with their calibration, material table and meter (the bag's scanner's, when it came from
    /// another); `None` before the first calibration.
    fn samples(&self, i: usize) -> Option<Sampled<'_>> {
        let gpu = self.gpu.as_ref()?;
        let own = self.meter.as_ref()?;
        match self.desk.station(i).opened.as_ref().filter(|_| self.opened[i].is_some()) {
            Some(o) => Some(Sampled {
                samples: measure::Samples::Frame(&o.scan.frame),
                cal: &o.scan.calibration,
                lut: o.scan.lut.as_ref().unwrap_or(&gpu.lut),
                meter: o.scan.meter.as_ref().unwrap_or(own),
            }),
            None => Some(Sampled {
                samples: measure::Samples::Live(&self.raw),
                cal: self.assembler.calibration.as_ref()?,
                lut: &gpu.lut,
                meter: own,
            }),
        }
    }

    /// The readout under a point of station `i`'s image (line, channel from the bottom): the
    /// mean attenuations of the 5 x 5 pixels around it.
    pub fn readout_at(&self, i: usize, line: f64, channel: f64) -> Option<crate::domain::measure::Readout> {
        let s = self.samples(i)?;
        let (l, c) = (line.floor() as i64, channel.floor() as i64);
        let h = measure::READOUT_HALF;
        let (lo, hi) = s.samples.attenuations(s.cal, (l - h, l + h + 1), (c - h, c + h + 1))?;
        Some(s.meter.point(s.lut, lo.mean()?, hi.mean()?))
    }

    /// Station `i`'s ruler or region, if it has one.
    pub fn measurement(&self, i: usize) -> Option<measure::Measurement> {
        self.stations[i].measure
    }

    /// The words of station `i`'s measurement, if it has one and its image is still there. A
    /// region is weighed once (it may hold millions of pixels), then its words are kept for as
    /// long as the region and the language stay the same; while it is dragged, only its size.
    fn measurement_text(&mut self, i: usize, dragging: bool) -> Option<String> {
        let m = self.stations[i].measure?;
        let meter = self.samples(i)?.meter;
        let lang = self.panels[i].lang;
        if !m.region {
            return Some(measure::ruler_text(lang, meter, &m));
        }
        if dragging {
            let ((l0, l1), (c0, c1)) = m.bounds();
            let (along, across) = ((l1 - l0) as f64 * meter.line_mm, (c1 - c0) as f64 * meter.channel_mm);
            return Some(format!("{} {along:.0} × {across:.0} mm", lang.tr("Region", "区域")));
        }
        if let Some((km, kl, text)) = &self.stations[i].measure_text
            && *km == m
            && *kl == lang
        {
            return Some(text.clone());
        }
        let text = self.region_text(i, &m, lang)?;
        self.stations[i].measure_text = Some((m, lang, text.clone()));
        Some(text)
    }

    fn region_text(&self, i: usize, m: &measure::Measurement, lang: i18n::Lang) -> Option<String> {
        let s = self.samples(i)?;
        let (lines, channels) = m.bounds();
        let (lo, hi) = s.samples.attenuations(s.cal, lines, channels)?;
        Some(measure::region_text(lang, &s.meter.region(s.lut, lo.view(), hi.view())?))
    }

    /// The ruler and the region: dragged with the primary button when chosen, drawn, and the
    /// readout box (under the pointer, the measurement) at the image's lower left.
    fn measure_ui(
        &mut self,
        ui: &mut egui::Ui,
        i: usize,
        response: &egui::Response,
        rect: egui::Rect,
        m: &zoom::Mapping,
    ) {
        let rows = self.rows(i) as f64;
        let to_image = |p: egui::Pos2| {
            let (line, row) = m.to_scan(p.x - rect.left(), p.y - rect.top());
            (line, rows - f64::from(row))
        };
        let to_screen = |(line, channel): (f64, f64)| {
            egui::pos2(
                rect.left() + m.x_of_line(line),
                rect.top() + ((rows - channel) as f32 - m.top_row) * m.scale,
            )
        };
        let tool = self.panels[i].marks.tool;
        let st = &mut self.stations[i];
        if tool.measures() {
            if response.drag_started_by(egui::PointerButton::Primary)
                && let Some(p) = ui.input(|inp| inp.pointer.press_origin())
            {
                let a = to_image(p);
                st.measure = Some(measure::Measurement { region: tool == Tool::Region, a, b: a });
            }
            if (response.dragged_by(egui::PointerButton::Primary)
                || response.drag_stopped_by(egui::PointerButton::Primary))
                && let (Some(mm), Some(p)) = (st.measure.as_mut(), ui.input(|inp| inp.pointer.latest_pos()))
            {
                mm.b = to_image(p);
            }
        }
        let painter = ui.painter().with_clip_rect(rect);
        let ink = egui::Color32::from_rgb(0, 200, 255);
        if let Some(mm) = st.measure {
            let (a, b) = (to_screen(mm.a), to_screen(mm.b));
            if mm.region {
                painter.rect_stroke(
                    egui::Rect::from_two_pos(a, b),
                    0.0,
                    egui::Stroke::new(2.0, ink),
                    egui::StrokeKind::Middle,
                );
            } else {
                painter.line_segment([a, b], egui::Stroke::new(2.0, ink));
                for end in [a, b] {
                    painter.circle_filled(end, 3.0, ink);
                }
            }
        }
        let lang = self.panels[i].lang;
        let mut lines = Vec::new();
        if let Some(p) = response.hover_pos() {
            let (line, channel) = to_image(p);
            if let Some(r) = self.readout_at(i, line, channel) {
                lines.push(measure::readout_text(lang, &r));
            }
        }
        lines.extend(self.measurement_text(i, response.dragged_by(egui::PointerButton::Primary)));
        if lines.is_empty() {
            return;
        }
        // (A floating box: the context's style is this screen's scaled one during its pass.)
        let k = self.stations[i].ui_scale;
        egui::Area::new(egui::Id::unique(("readout", i)))
            .order(egui::Order::Foreground)
            .fixed_pos(rect.left_bottom() + egui::vec2(8.0, -8.0 - 22.0 * k * lines.len() as f32))
            .interactable(false)
            .show(ui.ctx(), |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.set_max_width(rect.width() - 32.0);
                    for l in &lines {
                        ui.label(l);
                    }
                });
            });
    }

    /// What the scanner's state means for the image, large and over it on every live screen:
    /// a lost link (the image frozen since when), an open interlock, a scanner fault, a belt at
    /// rest or reversing, a belt command not followed; and the X-ray lamp while the tube is on.
    pub fn banners(&self, lang: i18n::Lang) -> (Vec<(Severity, String)>, bool) {
        let s = &self.assembler.stats;
        let mut out = Vec::new();
        if let Some(since) = self.link_down_since {
            let frozen = clock_text(self.last_line_at.unwrap_or(since));
            let detail =
                s.link.as_ref().filter(|(up, _)| !up).map_or(String::new(), |(_, d)| format!("\n{d}"));
            out.push((
                Severity::Alarm,
                lang.tr(
                    &format!("LINK DOWN · image frozen since {frozen}"),
                    &format!("链路中断 · 图像自 {frozen} 起冻结"),
                ) + &detail,
            ));
        }
        let live = self.link_down_since.is_none();
        let scanner = s.scanner.filter(|_| live);
        if scanner.is_some_and(|st| st.interlock_open) {
            out.push((Severity::Alarm, lang.tr("INTERLOCK OPEN · X-ray off", "联锁打开 · 射线已关闭")));
        }
        if scanner.is_some_and(|st| st.fault) {
            let what = s.faults.iter().rev().find(|f| f.starts_with("scanner fault")).cloned();
            let what = what.map_or(String::new(), |f| format!("\n{f}"));
            out.push((Severity::Alarm, lang.tr("SCANNER FAULT", "扫描仪故障") + &what));
        }
        if let Some(asked) = self.belt_unfollowed() {
            let (en, zh) = i18n::belt_name(asked);
            let (ren, rzh) = self.belt().map_or(("no report", "无报告"), i18n::belt_name);
            out.push((
                Severity::Alarm,
                lang.tr(
                    &format!("Belt command not followed: sent {en}, scanner reports {ren}"),
                    &format!("传送带命令未执行：已发送{zh}，扫描仪报告{rzh}"),
                ),
            ));
        } else if live && let Some(b @ (Belt::Stop | Belt::Reverse)) = self.belt() {
            let (en, zh) = i18n::belt_name(b);
            out.push((
                Severity::Notice,
                format!("{} {}", i18n::belt_symbol(b), lang.tr(&en.to_uppercase(), zh)),
            ));
        }
        (out, !self.no_scanner && scanner.is_some_and(|st| st.tube_on))
    }

    fn banners_ui(&self, ui: &egui::Ui, i: usize, rect: egui::Rect) {
        let lang = self.panels[i].lang;
        let (banners, xray) = self.banners(lang);
        let k = self.stations[i].ui_scale;
        let painter = ui.painter().with_clip_rect(rect);
        let mut y = rect.top() + 12.0;
        for (severity, text) in banners {
            let (fill, ink) = match severity {
                Severity::Alarm => (egui::Color32::from_rgb(190, 20, 20), egui::Color32::WHITE),
                Severity::Notice => (egui::Color32::from_rgb(240, 170, 20), egui::Color32::BLACK),
            };
            let mut lines = text.lines();
            let head = lines.next().unwrap_or_default().to_owned();
            let rest: Vec<&str> = lines.collect();
            let big = painter.layout_no_wrap(head, egui::FontId::proportional(26.0 * k), ink);
            let small = (!rest.is_empty()).then(|| {
                painter.layout(
                    rest.join("\n"),
                    egui::FontId::proportional(15.0 * k),
                    ink,
                    rect.width() - 48.0,
                )
            });
            let w = big.size().x.max(small.as_ref().map_or(0.0, |g| g.size().x)) + 32.0;
            let h = big.size().y + small.as_ref().map_or(0.0, |g| g.size().y + 4.0) + 16.0;
            let r = egui::Rect::from_min_size(egui::pos2(rect.center().x - w / 2.0, y), egui::vec2(w, h));
            painter.rect_filled(r, 6.0, fill.gamma_multiply(0.92));
            let top = r.left_top() + egui::vec2(16.0, 8.0);
            let big_h = big.size().y;
            painter.galley(top, big, ink);
            if let Some(g) = small {
                painter.galley(top + egui::vec2(0.0, big_h + 4.0), g, ink);
            }
            y = r.bottom() + 8.0;
        }
        if xray {
            // The console's X-ray lamp: yellow and black, top right.
            let g = painter.layout_no_wrap(
                lang.tr("X-RAY ON", "射线开启"),
                egui::FontId::proportional(16.0 * k),
                egui::Color32::BLACK,
            );
            let r = egui::Rect::from_min_size(
                egui::pos2(rect.right() - g.size().x - 28.0, rect.top() + 12.0),
                g.size() + egui::vec2(16.0, 8.0),
            );
            painter.rect_filled(r, 4.0, egui::Color32::from_rgb(255, 210, 0));
            painter.galley(r.left_top() + egui::vec2(8.0, 4.0), g, egui::Color32::BLACK);
        }
    }

    /// Recalled bags and linked views: a bag picked from the list brings the live image back to
    /// it (held where the bag ends); a screen that follows the other takes its zoom and pan.
    pub fn follow_views(&mut self) {
        let (head, cap) = self.gpu.as_ref().map_or((0, 0), |g| (g.live.head, g.live.capacity() as u64));
        for i in 0..self.stations.len() {
            // (Only bags whole on the live image are recalled here; the desk opens the others from
            // the archive.)
            if let Some(span) = self.panels[i].recall.take() {
                let end = span.end_line.unwrap_or(head).min(head);
                if end > head.saturating_sub(cap) {
                    let margin = 40.0;
                    self.stations[i].image.right_line =
                        if end >= head { None } else { Some(end as f64 + margin) };
                } else {
                    self.panels[i].message = Some((
                        true,
                        self.panels[i]
                            .lang
                            .tr("That bag's image has left the live view", "该行李图像已移出实时画面"),
                    ));
                }
            }
        }
        for i in 0..self.stations.len() {
            if self.panels[i].link_view
                && let Some(other) = (0..self.stations.len()).find(|&j| j != i && !self.panels[j].link_view)
            {
                self.stations[i].image = self.stations[other].image;
            }
        }
    }

    /// Where the bag station `i` works on lies on its screen, when its operator may mark it
    /// there (someone logged in, a bag of this run).
    fn marking_frame(&self, i: usize, m: &zoom::Mapping, rect: egui::Rect) -> Option<(u64, BagFrame)> {
        self.desk.station(i).operator.as_ref()?;
        let bag_id = self.desk.focus(i)?;
        let at = self.on_screen(i).into_iter().find(|b| b.key == bag_id)?;
        Some((bag_id, BagFrame { m: *m, origin: rect.min, first_line: at.first_line, rows: self.rows(i) }))
    }

    /// Detector channels of what station `i` shows (an opened bag may come from another scanner).
    fn rows(&self, i: usize) -> u32 {
        self.opened.get(i).and_then(|o| o.as_ref()).map_or(self.profile.channels, |o| o.image.channels)
    }

    /// The topmost of this agency's marks under screen point `p`, on any bag of this run on
    /// screen (a corner of a box or ellipse: to resize it).
    fn own_mark_at(&self, i: usize, p: egui::Pos2, m: &zoom::Mapping, rect: egui::Rect) -> Option<MarkDrag> {
        self.desk.station(i).operator.as_ref()?;
        let agency = &self.panels[i].agency;
        let grip = 8.0 / m.scale;
        self.on_screen(i).into_iter().rev().find_map(|on| {
            let rec = &self.desk.bag(on.key)?.1;
            let f = BagFrame { m: *m, origin: rect.min, first_line: on.first_line, rows: self.rows(i) };
            let b = f.to_bag(p);
            rec.annotations.iter().rev().filter(|a| &a.agency == agency).find_map(|a| {
                let (x0, y0, x1, y1) = a.shape.bounds();
                if b[0] < x0 - grip || b[0] > x1 + grip || b[1] < y0 - grip || b[1] > y1 + grip {
                    return None;
                }
                let corner = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)]
                    .iter()
                    .any(|(cx, cy)| (b[0] - cx).abs() <= grip && (b[1] - cy).abs() <= grip);
                let resize = corner && matches!(a.shape, Shape::Rect { .. } | Shape::Ellipse { .. });
                Some(MarkDrag { bag: on.key, id: a.id, from: b, resize })
            })
        })
    }

    /// Each station's bag in focus outlined on this screen, with its number: this station's
    /// boldly, the others' thinly with their agency's name.
    fn focus_ui(&self, ui: &egui::Ui, i: usize, rect: egui::Rect, m: &zoom::Mapping) {
        let painter = ui.painter().with_clip_rect(rect);
        let head = self.head() as f64;
        let bottom = rect.top() + ((self.rows(i) as f32 - m.top_row) * m.scale).min(rect.height());
        let on_screen = self.on_screen(i);
        let lang = self.panels[i].lang;
        // The other stations' labels stack up from the bottom, one row each.
        let mut row = 0.0;
        for j in (0..self.stations.len()).rev() {
            let Some(key) = self.desk.focus(j) else { continue };
            let Some(on) = on_screen.iter().find(|b| b.key == key) else { continue };
            if self.desk.bag(key).is_none() {
                continue;
            }
            let number = self.desk.number(key);
            let end = on.end.min(head.max(on.first_line as f64));
            let end = if self.opened[i].is_some() { on.end } else { end };
            let (xa, xb) = (rect.left() + m.x_of_line(on.first_line as f64), rect.left() + m.x_of_line(end));
            let inset = if j == i { 2.0 } else { 6.0 };
            let r = egui::Rect::from_x_y_ranges(xa.min(xb)..=xa.max(xb), rect.top() + inset..=bottom - inset);
            let colour = marks::agency_colour(&self.desk.config, &self.stations[j].agency.id);
            let width = if j == i { 3.0 } else { 1.5 };
            painter.rect_stroke(r, 2.0, egui::Stroke::new(width, colour), egui::StrokeKind::Inside);
            let text = if j == i {
                format!("#{number}")
            } else {
                let a = &self.stations[j].agency;
                format!("#{number} {}", lang.tr(&a.name.en, &a.name.zh))
            };
            let size = if j == i { 22.0 } else { 14.0 };
            // The number stays on screen while the bag's start has scrolled off it.
            let left = r.left().max(rect.left()).min(rect.right() - 80.0);
            let at = if j == i {
                egui::pos2(left + 6.0, r.top() + 4.0)
            } else {
                row += 1.0;
                egui::pos2(left + 6.0, r.bottom() - 4.0 - (row - 1.0) * 20.0)
            };
            let align = if j == i { egui::Align2::LEFT_TOP } else { egui::Align2::LEFT_BOTTOM };
            let galley = painter.layout_no_wrap(text, egui::FontId::proportional(size), colour);
            let bg = align.anchor_size(at, galley.size()).expand(2.0);
            painter.rect_filled(bg, 2.0, egui::Color32::from_white_alpha(200));
            painter.galley(bg.min + egui::vec2(2.0, 2.0), galley, colour);
        }
    }

    /// Draw the marks of the bags in view, and make new ones with the screen's tool.
    fn marks_ui(
        &mut self,
        ui: &mut egui::Ui,
        i: usize,
        response: &egui::Response,
        rect: egui::Rect,
        m: &zoom::Mapping,
    ) {
        let rows = self.rows(i);
        let lang = self.panels[i].lang;
        let agency = self.panels[i].agency.clone();
        let frame_of = |first_line: u64| BagFrame { m: *m, origin: rect.min, first_line, rows };
        let painter = ui.painter().with_clip_rect(rect);
        let left_line = m.right_line - m.visible_lines();
        let op = self.desk.station(i).operator.clone();
        let on_screen = self.on_screen(i);
        for on in &on_screen {
            if on.end < left_line || on.first_line as f64 > m.right_line {
                continue;
            }
            let Some((span, rec)) = self.desk.bag(on.key) else { continue };
            let f = frame_of(on.first_line);
            for a in &rec.annotations {
                if a.agency != agency && !self.panels[i].marks.show_others {
                    continue;
                }
                let colour = marks::agency_colour(&self.desk.config, &a.agency);
                let mut label = marks::category_label(lang, &self.desk.config, &a.agency, &a.category);
                if !a.note.is_empty() {
                    label = format!("{label}: {}", a.note);
                }
                marks::paint_shape(&painter, &f, &a.shape, colour, &label);
            }
            // Training: once this screen's operator has decided, the projected threat is shown.
            if let (Some(p), Some(op)) = (self.desk.projected.get(&span.bag), op.as_ref())
                && self.desk.was_judged(span.bag, &op.id)
            {
                let shape = Shape::Rect {
                    x0: p.line as f32,
                    y0: p.channel as f32,
                    x1: (p.line + p.lines) as f32,
                    y1: (p.channel + p.channels) as f32,
                };
                let label = format!("TIP: {}", p.name);
                marks::paint_shape(&painter, &f, &shape, egui::Color32::YELLOW, &label);
            }
        }
        // Making a mark: it goes to the bag under its first point.
        if op.is_none() {
            return;
        }
        let colour = marks::agency_colour(&self.desk.config, &agency);
        let first_line_of = |bag: u64| on_screen.iter().find(|b| b.key == bag).map(|b| b.first_line);
        let bag_under = |p: egui::Pos2| {
            let (line, _) = m.to_scan(p.x - rect.left(), p.y - rect.top());
            on_screen
                .iter()
                .find(|b| line >= b.first_line as f64 && line < b.end)
                .map(|b| (b.key, b.first_line))
        };
        let now_ms = crate::unix_ms();
        let tool = self.panels[i].marks.tool;
        let mut cmd: Option<Command> = None;
        let marks = &mut self.panels[i].marks;
        match tool {
            Tool::Ruler | Tool::Region => {}
            Tool::Pan => {
                if let Some(d) = marks.editing {
                    let a =
                        self.desk.bag(d.bag).and_then(|(_, r)| r.annotations.iter().find(|a| a.id == d.id));
                    let f = first_line_of(d.bag).map(frame_of);
                    let now = ui.input(|i| i.pointer.latest_pos()).zip(f).map(|(p, f)| f.to_bag(p));
                    let shape = match (a, now) {
                        (Some(a), Some(now)) if d.resize => a.shape.resized(d.from, now),
                        (Some(a), Some(now)) => {
                            Some(a.shape.translated(now[0] - d.from[0], now[1] - d.from[1]))
                        }
                        _ => None,
                    };
                    if let (Some(s), Some(f)) = (&shape, f) {
                        marks::paint_shape(&painter, &f, s, egui::Color32::WHITE, "");
                    }
                    if response.drag_stopped_by(egui::PointerButton::Primary) || a.is_none() {
                        cmd = shape.map(|shape| Command::EditMark { bag: d.bag, id: d.id, shape });
                        marks.editing = None;
                    }
                }
            }
            Tool::Rect | Tool::Ellipse | Tool::Arrow => {
                // The press position is kept here: egui forgets it on release.
                if response.drag_started_by(egui::PointerButton::Primary)
                    && let Some(p) = ui.input(|i| i.pointer.press_origin())
                {
                    let under = bag_under(p);
                    marks.bag = under.map(|(b, _)| b);
                    marks.drag_origin = under.map(|(_, first)| frame_of(first).to_bag(p));
                }
                let f = marks.bag.and_then(&first_line_of).map(frame_of);
                let now = ui.input(|i| i.pointer.latest_pos()).zip(f).map(|(p, f)| f.to_bag(p));
                if let (Some(origin), Some(now), Some(f), Some(bag)) = (marks.drag_origin, now, f, marks.bag)
                {
                    if let Some(shape) = marks::dragged_shape(tool, origin, now) {
                        marks::paint_shape(&painter, &f, &shape, colour, "");
                    }
                    if response.drag_stopped_by(egui::PointerButton::Primary) {
                        cmd = marks::dragged_shape(tool, origin, now).map(|shape| Command::Mark {
                            bag,
                            shape,
                            category: marks.category.clone(),
                            note: marks.note.clone(),
                        });
                        marks.drag_origin = None;
                    }
                }
            }
            Tool::Text => {
                if response.clicked_by(egui::PointerButton::Primary)
                    && let Some(p) = response.interact_pointer_pos()
                    && let Some((bag, first)) = bag_under(p)
                {
                    cmd = Some(Command::Mark {
                        bag,
                        shape: Shape::Text { at: frame_of(first).to_bag(p) },
                        category: marks.category.clone(),
                        note: marks.note.clone(),
                    });
                }
            }
            Tool::Polygon => {
                if response.clicked_by(egui::PointerButton::Primary)
                    && let Some(p) = response.interact_pointer_pos()
                {
                    if marks.polygon.is_empty() {
                        marks.bag = bag_under(p).map(|(b, _)| b);
                    }
                    if let Some(f) = marks.bag.and_then(&first_line_of).map(frame_of) {
                        marks.polygon.push(f.to_bag(p));
                    }
                }
                if let Some(f) = marks.bag.and_then(&first_line_of).map(frame_of) {
                    let pts: Vec<egui::Pos2> = marks.polygon.iter().map(|p| f.to_screen(*p)).collect();
                    painter.add(egui::Shape::line(pts, egui::Stroke::new(2.0, colour)));
                }
                let finish = response.double_clicked() || ui.input(|i| i.key_pressed(egui::Key::Enter));
                if finish && marks.polygon.len() >= 3 {
                    let points = std::mem::take(&mut marks.polygon);
                    cmd = marks.bag.map(|bag| Command::Mark {
                        bag,
                        shape: Shape::Polygon { points },
                        category: marks.category.clone(),
                        note: marks.note.clone(),
                    });
                }
            }
        }
        if let Some(c) = cmd {
            let _ = self.panels[i].send(&mut self.desk, c, now_ms);
        }
    }
}

impl eframe::App for Workstation {
    /// The panels' colour: the image area's panel has no fill of its own.
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    /// Every frame, whether or not a window is visible: the source drained, the desk's commits
    /// taken, the new lines composed; both screens then draw from the same ring head.
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let now = Instant::now();
        let dt = now.duration_since(self.last_frame).as_secs_f32();
        self.last_frame = now;
        for st in &mut self.stations {
            st.view.advance_vde(dt);
        }
        self.ingest(Duration::from_millis(8));
        // The web's requests: never waited for, the frame goes on.
        if let Some(h) = self.remote.as_mut() {
            h.step(&mut self.desk, Duration::ZERO);
        }
        self.hub_step();
        ctx.request_repaint();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        for i in 1..self.stations.len() {
            let id = egui::ViewportId::from_hash_of(("station", i));
            let builder = egui::ViewportBuilder::default()
                .with_title(station_title(&self.stations[i].agency, &self.stations[i].screen))
                .with_inner_size(self.layout.placement(i).size)
                .with_position(self.layout.placement(i).position)
                .with_fullscreen(self.layout.placement(i).fullscreen);
            ctx.show_viewport_immediate(id, builder, |ui, _class| {
                if ui.input(|inp| inp.viewport().close_requested()) {
                    // A station's screen stays open while the workstation runs.
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::CancelClose);
                }
                self.station_ui(ui, i);
            });
        }
        self.station_ui(ui, 0);
        self.follow_views();
        ctx.request_repaint();
    }
}
