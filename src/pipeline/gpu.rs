//! The GPU pipeline: wgpu compute kernels (`shaders/*.wgsl`) over storage buffers, on whatever
//! device it is given (eframe's own device in the workstation, a headless one for `render`,
//! tests and benchmarks).
//!
//! Owns: [`GpuContext`] (headless device), [`Kernels`] (compiled pipelines, one set per device,
//! tuned per adapter), [`GpuImage`] (the buffers of one image: raw lines, calibration, the Zeff
//! table, CLAHE tables, output textures), [`LiveView`] (a ring of lines for the live display that
//! processes only new lines and re-renders everything after a settings change), and readback.
//!
//! The display path is two kernels: `clahe` (tile tables, only for views with local contrast)
//! and `compose`, which goes from raw samples to display pixels in one pass, features in
//! registers; its `main2` entry renders both stations' views of the same lines from one
//! computation of the features. Where the device has fixed-size subgroups (lavapipe) compose
//! runs its subgroup form (`compose_sg.wgsl`, `main_sg` / `main2_sg`, [`Tuning::sg`]): the same
//! pixels, with neighbouring columns exchanged between lanes instead of computed again, two
//! neighbouring channels' pixels a 64-bit store, into a buffer that is then copied into the
//! display texture. A display texture holds a row per line (x = channels - 1 - channel), so
//! the lines a strip adds are one contiguous block to copy.
//! `prepare` stores the features for the tests only ([`GpuImage::read_features`]).
//!
//! Must not import: egui, the UI, sources. Kernel maths lives in the WGSL; its CPU twin in
//! [`super::cpu`].

use std::num::NonZeroU64;

use ndarray::{Array3, ArrayView2};

use super::params::{CLAHE_BINS, Params};
use crate::domain::calib::Calibration;
use crate::domain::material::MaterialLut;
use crate::domain::scan::RawFrame;
use crate::domain::view::ViewSettings;

const COMMON_WGSL: &str = include_str!("../../shaders/common.wgsl");
/// The kernels: `(name, source without the common prelude)`.
pub const KERNELS: [(&str, &str); 3] = [
    ("prepare", include_str!("../../shaders/prepare.wgsl")),
    ("clahe", include_str!("../../shaders/clahe.wgsl")),
    ("compose", include_str!("../../shaders/compose.wgsl")),
];

/// compose's entry points in subgroup form (`main_sg`, `main2_sg`), appended to compose's source
/// when the tuning uses subgroups ([`Tuning::sg`]).
pub const COMPOSE_SG: &str = include_str!("../../shaders/compose_sg.wgsl");

/// The full source of compose (`compose`: compose.wgsl or a development copy of it) for tuning
/// `t` and the shading of views A and B, and its entry points for one view and for two.
pub fn compose_variant(
    compose: &str,
    t: Tuning,
    a: Shading,
    b: Shading,
) -> (String, &'static str, &'static str) {
    // A development copy may carry its own subgroup entry points.
    if t.sg > 0 && compose.contains("fn main_sg") {
        (kernel_variant(compose, t, a, b), "main_sg", "main2_sg")
    } else if t.sg > 0 {
        (kernel_variant(&format!("{compose}\n{COMPOSE_SG}"), t, a, b), "main_sg", "main2_sg")
    } else {
        (kernel_variant(compose, t, a, b), "main", "main2")
    }
}

/// Full WGSL source of a kernel for a GPU (common prelude + kernel).
pub fn kernel_source(kernel: &str) -> String {
    kernel_source_tuned(kernel, Tuning::GPU)
}

/// Full WGSL source of a kernel with the workgroup sizes of `t` as literal constants (lavapipe
/// compiles a workgroup size given by pipeline-overridable constants into a much slower program).
pub fn kernel_source_tuned(kernel: &str, t: Tuning) -> String {
    kernel_variant(kernel, t, Shading::STANDARD, Shading::STANDARD)
}

/// The source with compose's shading constants for views A and B (see [`Shading`]).
pub fn kernel_variant(kernel: &str, t: Tuning, a: Shading, b: Shading) -> String {
    format!(
        "const WG_X: u32 = {}u;\nconst WG_Y: u32 = {}u;\nconst RUN: u32 = {}u;\nconst W: u32 = {}u;\nconst SG: u32 = {}u;\nconst CLAHE_WG: u32 = {}u;\n{}{}{COMMON_WGSL}\n{kernel}",
        t.wg_x,
        t.wg_y,
        t.run,
        t.w,
        t.sg.max(1),
        t.clahe_wg,
        a.constants("A"),
        b.constants("B")
    )
}

/// What of compose's shading a view needs, fixed when its pipeline is built: on lavapipe code
/// under a branch costs the same whether the branch is taken or not (measured on 2048 x 1536:
/// the CLAHE lookups cost about 30 ms of a frame with local contrast off, the colour modes,
/// stripping and negative about 15 ms more), so each combination a station uses gets a pipeline
/// of its own, built the first time it is needed ([`Kernels`] keeps them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shading {
    /// `Params::colour_mode`: 0 material, 1 grey, 2 pseudo-colour.
    pub colour_mode: u32,
    /// One class is shown, the others stripped (`Params::only != 0`).
    pub strip: bool,
    pub negative: bool,
    pub local_contrast: bool,
    /// A gamma other than 1 (`Params::gamma`): without it the pow (a log and an exp a pixel)
    /// is left out of the pipeline (measured on 2048 x 1536 on lavapipe: about 13 % of compose).
    pub gamma: bool,
}

impl Shading {
    pub const STANDARD: Shading =
        Shading { colour_mode: 0, strip: false, negative: false, local_contrast: false, gamma: false };

    pub fn of(p: &Params) -> Self {
        Shading {
            colour_mode: p.colour_mode.min(2),
            strip: p.only != 0,
            negative: p.flags & super::params::FLAG_NEGATIVE != 0,
            local_contrast: p.local_contrast > 0.0,
            gamma: p.gamma != 1.0,
        }
    }

    fn constants(self, view: &str) -> String {
        format!(
            "const MODE_{view}: u32 = {}u;\nconst STRIP_{view}: bool = {};\nconst NEGATIVE_{view}: bool = {};\nconst LC_{view}: bool = {};\nconst GAMMA_{view}: bool = {};\n",
            self.colour_mode, self.strip, self.negative, self.local_contrast, self.gamma
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found ({0}); for software rendering install Mesa's Vulkan driver (Debian: mesa-vulkan-drivers) and set WGPU_BACKEND=vulkan"
    )]
    NoAdapter(String),
    #[error("GPU device request failed: {0}")]
    Device(String),
    #[error("image of {lines} lines x {channels} channels exceeds this GPU's limits ({why})")]
    TooLarge { lines: u32, channels: u32, why: String },
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
}

/// A device and queue of our own (no window).
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
}

/// Limits we ask for: the adapter's own storage and texture sizes on top of the downlevel set, so
/// big frames fit, and compute works on GL backends too.
pub fn required_limits(adapter: &wgpu::Adapter) -> wgpu::Limits {
    let a = adapter.limits();
    wgpu::Limits {
        max_storage_buffer_binding_size: a.max_storage_buffer_binding_size,
        max_buffer_size: a.max_buffer_size,
        max_texture_dimension_2d: a.max_texture_dimension_2d,
        max_storage_buffers_per_shader_stage: a.max_storage_buffers_per_shader_stage.max(4),
        max_compute_workgroup_storage_size: a.max_compute_workgroup_storage_size,
        ..wgpu::Limits::downlevel_defaults().using_resolution(a)
    }
}

/// Optional features we use when the adapter has them: subgroup operations and 64-bit integers
/// (compose's subgroup form on lavapipe, see [`Tuning::sg`]).
pub fn wanted_features(adapter: &wgpu::Adapter) -> wgpu::Features {
    adapter.features() & (wgpu::Features::SUBGROUP | wgpu::Features::SHADER_INT64)
}

impl GpuContext {
    /// A headless device honouring `WGPU_BACKEND` / `WGPU_ADAPTER_NAME`.
    pub fn headless() -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(&instance, None))
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("twinspect headless"),
            required_features: wanted_features(&adapter),
            required_limits: required_limits(&adapter),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(e.to_string()))?;
        Ok(GpuContext { device, queue, info: adapter.get_info() })
    }

    /// "name (backend, type)" for status bars and benchmark records.
    pub fn describe(&self) -> String {
        describe_adapter(&self.info)
    }
}

pub fn describe_adapter(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?}, driver {})", info.name, info.backend, info.device_type, info.driver_info)
}

/// Workgroup sizes and the work of one invocation, chosen per adapter (literal WGSL constants,
/// see [`kernel_source_tuned`]). On lavapipe a workgroup runs as a loop over 8-wide SIMD lanes
/// and large workgroups are several times slower (measured on 2048 x 1536: compose 383 ms at
/// 64x4, 15 ms at 8x1), while real GPUs want at least a warp or wavefront per workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Per-pixel kernels: invocations along channels and along lines.
    pub wg_x: u32,
    pub wg_y: u32,
    /// Lines each per-pixel invocation walks (consecutive lines).
    pub run: u32,
    /// Channels each compose invocation renders. On lavapipe 4: the features of the two
    /// neighbouring columns are computed once for four pixels instead of for one (measured on
    /// 2048 x 1536: 1 -> 4 channels took the fused kernel from about 80 to 45 ms; 8 spills
    /// registers and is slower). On GPUs 1, so neighbouring lanes read neighbouring samples.
    pub w: u32,
    /// CLAHE: invocations per tile.
    pub clahe_wg: u32,
    /// The subgroup size compose relies on, 0 for none. With a fixed subgroup size (lavapipe: 8,
    /// one SIMD vector) compose takes each lane's neighbouring columns from the next lanes with
    /// subgroup shuffles instead of computing them again: a subgroup renders SG * W - 2 columns
    /// and computes features for SG * W.
    pub sg: u32,
}

impl Tuning {
    pub const GPU: Tuning = Tuning { wg_x: 64, wg_y: 1, run: 4, w: 1, clahe_wg: 256, sg: 0 };
    pub const CPU: Tuning = Tuning { wg_x: 16, wg_y: 1, run: 32, w: 4, clahe_wg: 16, sg: 0 };

    /// Channels one compose workgroup renders.
    pub fn compose_columns(&self) -> u32 {
        match self.wg_x.checked_div(self.sg) {
            Some(subgroups) => subgroups * (self.sg * self.w - 2),
            None => self.wg_x * self.w,
        }
    }

    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        if info.device_type == wgpu::DeviceType::Cpu { Tuning::CPU } else { Tuning::GPU }
    }

    /// [`Tuning::for_adapter`], with the subgroup exchange where the device has subgroups of one
    /// fixed size that divides the workgroup (lavapipe: 8) and 64-bit integers (the subgroup form
    /// stores two pixels a word), with an even `w` (a lane's columns pair into those words).
    pub fn for_device(device: &wgpu::Device) -> Self {
        let info = device.adapter_info();
        let mut t = Self::for_adapter(&info);
        let size = info.subgroup_min_size;
        if t.w > 1
            && t.w.is_multiple_of(2)
            && device.features().contains(wgpu::Features::SUBGROUP | wgpu::Features::SHADER_INT64)
            && size == info.subgroup_max_size
            && t.wg_x.is_multiple_of(size)
        {
            t.sg = size;
        }
        t
    }
}

/// The compute pipelines and their layouts.
pub struct Kernels {
    pub tuning: Tuning,
    device: wgpu::Device,
    compose_source: String,
    prepare: wgpu::ComputePipeline,
    clahe: wgpu::ComputePipeline,
    /// compose pipelines by the shading of view A and, for `main2` (two views from one
    /// computation of the features), of view B; built when first asked for.
    compose: std::sync::Mutex<std::collections::HashMap<(Shading, Option<Shading>), wgpu::ComputePipeline>>,
    prepare_bgl: wgpu::BindGroupLayout,
    clahe_bgl: wgpu::BindGroupLayout,
    compose_bgl: wgpu::BindGroupLayout,
    compose2_bgl: wgpu::BindGroupLayout,
}

fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: NonZeroU64::new(std::mem::size_of::<Params>() as u64),
        },
        count: None,
    }
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A 2-D float texture read with `textureLoad` (not filtered).
fn texture_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: false },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

fn storage_texture_entry(binding: u32, format: wgpu::TextureFormat) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::StorageTexture {
            access: wgpu::StorageTextureAccess::WriteOnly,
            format,
            view_dimension: wgpu::TextureViewDimension::D2,
        },
        count: None,
    }
}

impl Kernels {
    pub fn new(device: &wgpu::Device) -> Self {
        let tuning = Tuning::for_device(device);
        Self::from_sources(device, [KERNELS[0].1, KERNELS[1].1, KERNELS[2].1], tuning)
    }

    /// Pipelines from other kernel sources (prepare, clahe, compose), with the same bindings:
    /// for shader development and experiments.
    pub fn from_sources(device: &wgpu::Device, sources: [&str; 3], tuning: Tuning) -> Self {
        let layout = |label: &str, entries: &[wgpu::BindGroupLayoutEntry]| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries })
        };
        // Bindings 0-4 are common.wgsl's (params, raw, calibration, Zeff quads, lost lines).
        let prepare_bgl = layout(
            "prepare bgl",
            &[
                uniform_entry(0),
                storage_entry(1, true),
                storage_entry(2, true),
                texture_entry(3),
                storage_texture_entry(5, wgpu::TextureFormat::Rgba32Float),
            ],
        );
        let clahe_bgl = layout(
            "clahe bgl",
            &[uniform_entry(0), storage_entry(1, true), storage_entry(2, true), storage_entry(5, false)],
        );
        let one_view = [
            uniform_entry(0),
            storage_entry(1, true),
            storage_entry(2, true),
            texture_entry(3),
            storage_entry(4, true),
            storage_texture_entry(5, wgpu::TextureFormat::Rgba8Unorm),
            storage_entry(6, true),
        ];
        // The subgroup form stores its pixels into a buffer (binding 10, 11 for view B), copied
        // into the display texture afterwards (see `ViewTarget::out_buf`).
        let mut one_view = one_view.to_vec();
        if tuning.sg > 0 {
            one_view.push(storage_entry(10, false));
        }
        let compose_bgl = layout("compose bgl", &one_view);
        let mut two_views = one_view.clone();
        two_views.extend([
            uniform_entry(7),
            storage_texture_entry(8, wgpu::TextureFormat::Rgba8Unorm),
            storage_entry(9, true),
        ]);
        if tuning.sg > 0 {
            two_views.push(storage_entry(11, false));
        }
        let compose2_bgl = layout("compose2 bgl", &two_views);
        let std = Shading::STANDARD;
        let kernels = Kernels {
            prepare: build_pipeline(
                device,
                "prepare",
                &kernel_source_tuned(sources[0], tuning),
                "main",
                &prepare_bgl,
            ),
            clahe: build_pipeline(
                device,
                "clahe",
                &kernel_source_tuned(sources[1], tuning),
                "main",
                &clahe_bgl,
            ),
            compose: Default::default(),
            device: device.clone(),
            compose_source: sources[2].to_string(),
            tuning,
            prepare_bgl,
            clahe_bgl,
            compose_bgl,
            compose2_bgl,
        };
        // The standard view, alone and on both stations: there from the start.
        kernels.compose_pipeline(std, None);
        kernels.compose_pipeline(std, Some(std));
        kernels
    }

    /// compose for view A alone (`b` None: `main`) or for views A and B (`main2`).
    fn compose_pipeline(&self, a: Shading, b: Option<Shading>) -> wgpu::ComputePipeline {
        let mut cache = self.compose.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry((a, b))
            .or_insert_with(|| {
                let (src, one, two) =
                    compose_variant(&self.compose_source, self.tuning, a, b.unwrap_or(Shading::STANDARD));
                match b {
                    None => build_pipeline(&self.device, "compose", &src, one, &self.compose_bgl),
                    Some(_) => build_pipeline(&self.device, "compose2", &src, two, &self.compose2_bgl),
                }
            })
            .clone()
    }
}

fn build_pipeline(
    device: &wgpu::Device,
    name: &str,
    source: &str,
    entry: &str,
    bgl: &wgpu::BindGroupLayout,
) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(bgl)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(&pl),
        module: &module,
        entry_point: Some(entry),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &[],
            // The CLAHE kernel clears its own histogram.
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    })
}

/// Uniform slots of a view (CLAHE, compose), so its kernels can run in one submission with their
/// own regions; the diagnostic prepare has its own buffer.
const SLOT: u64 = 256;
const SLOT_CLAHE: u64 = 0;
const SLOT_COMPOSE: u64 = 1;

/// What to dispatch: CLAHE tile rows `(tile_row0, ntile_rows)` and the line region
/// `(line0, nlines)` (modulo the image's lines) to compose.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work {
    pub clahe: Option<(u32, u32)>,
    pub compose: Option<(u32, u32)>,
}

impl Work {
    /// Everything, for a frame of `lines` lines.
    pub fn full(lines: u32, tile: u32) -> Self {
        Work { clahe: Some((0, lines.div_ceil(tile))), compose: Some((0, lines)) }
    }
}

/// Size of an image on the GPU and how many stations view it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    pub channels: u32,
    pub lines: u32,
    /// Largest ADC code of the raw samples.
    pub full_scale: u16,
    pub views: usize,
}

/// The GPU buffers of one image of `lines x channels` (a frame, or the live ring).
pub struct GpuImage {
    pub channels: u32,
    pub lines: u32,
    full_scale: u16,
    lut: MaterialLut,
    raw: wgpu::Buffer,
    calib: wgpu::Buffer,
    /// The Zeff table, each cell's four corners in one rgba32float texel (common.wgsl).
    zeff_quads: wgpu::TextureView,
    /// One u32 per line: lost lines (shown hatched).
    missing: wgpu::Buffer,
    /// Uniforms of the diagnostic prepare.
    params: wgpu::Buffer,
    /// One per station: its own view settings, CLAHE tables and display texture.
    targets: Vec<ViewTarget>,
    /// Views 0 and 1 composed together (compose's `main2`), when there are two or more.
    bg_compose2: Option<wgpu::BindGroup>,
}

/// What one station's view of an image needs on the GPU.
struct ViewTarget {
    luts: wgpu::Buffer,
    params: wgpu::Buffer,
    out_tex: wgpu::Texture,
    /// The RGBA8 output (x = channels - 1 - channel, y = line), for display: a row per line, so
    /// the lines a strip adds are one contiguous block of the texture.
    out_view: wgpu::TextureView,
    bg_clahe: wgpu::BindGroup,
    bg_compose: wgpu::BindGroup,
    /// Where the subgroup form of compose stores its pixels (packed RGBA8, the texture's layout
    /// with rows of [`pitch_of`] texels), copied into `out_tex` after each dispatch. On
    /// lavapipe a texture store is a per-lane loop through the image format code; a buffer
    /// store of the packed pixel and one copy of the rows cost less than half as much.
    out_buf: Option<wgpu::Buffer>,
}

/// Samples of both energies packed as the raw buffer holds them (low in bits 0-15, high in
/// 16-31), written straight into wgpu's staging memory: no packed copy of the frame is made
/// first (one pass and one allocation of 4 bytes a pixel less).
fn write_packed(queue: &wgpu::Queue, buffer: &wgpu::Buffer, offset: u64, low: &[u16], high: &[u16]) {
    const CHUNK: usize = 4096;
    let Some(size) = NonZeroU64::new(low.len() as u64 * 4) else { return };
    // None only after wgpu has reported a validation error (out of bounds), as write_buffer would.
    let Some(mut view) = queue.write_buffer_with(buffer, offset, size) else { return };
    let mut packed = [0u32; CHUNK];
    for (i, (l, h)) in low.chunks(CHUNK).zip(high.chunks(CHUNK)).enumerate() {
        for ((p, &l), &h) in packed.iter_mut().zip(l).zip(h) {
            *p = l as u32 | (h as u32) << 16;
        }
        let at = i * CHUNK * 4;
        view.slice(at..at + l.len() * 4).copy_from_slice(bytemuck::cast_slice(&packed[..l.len()]));
    }
}

/// Smallest CLAHE tile: the luts buffer is sized for it.
const MIN_TILE: u32 = 16;

/// Texels per row (a row per line) of a staging buffer of display pixels (`ViewTarget::out_buf`):
/// the offset [`px_off`] and the channels, rounded up to the 256-byte rows a buffer-to-texture
/// copy needs. compose_sg.wgsl computes the same from `Params::channels` (`pitch`).
fn pitch_of(channels: u32) -> u32 {
    (channels + 3).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT / 4)
}

/// Texel of a staging row where the line's first display texel (channel `channels - 1`) is: 2 or
/// 3, so that every subgroup's pixels pair into aligned 64-bit words (compose_sg.wgsl, `px_off`).
fn px_off(channels: u32) -> u32 {
    2 + (channels & 1)
}

impl GpuImage {
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        kernels: &Kernels,
        channels: u32,
        lines: u32,
        full_scale: u16,
        lut: &MaterialLut,
    ) -> Result<Self, GpuError> {
        Self::with_views(device, queue, kernels, ImageSpec { channels, lines, full_scale, views: 1 }, lut)
    }

    /// An image shown under `spec.views` independent view settings (one per station).
    pub fn with_views(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        kernels: &Kernels,
        spec: ImageSpec,
        lut: &MaterialLut,
    ) -> Result<Self, GpuError> {
        let ImageSpec { channels, lines, full_scale, views } = spec;
        let limits = device.limits();
        let too_large = |why: String| GpuError::TooLarge { lines, channels, why };
        if channels == 0 || lines == 0 {
            return Err(too_large("empty image".into()));
        }
        let max_tex = limits.max_texture_dimension_2d;
        if lines > max_tex || channels > max_tex {
            return Err(too_large(format!("texture side limit {max_tex}")));
        }
        let px = lines as u64 * channels as u64;
        if lines > limits.max_compute_workgroups_per_dimension {
            return Err(too_large("too many lines for one dispatch".into()));
        }
        let buf = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        let raw = buf("raw", px * 4, U::STORAGE | U::COPY_DST);
        let calib = buf("calibration", channels as u64 * 16, U::STORAGE | U::COPY_DST);
        // The raw samples, and where the subgroup form stores its pixels (rows padded).
        let staged = if kernels.tuning.sg > 0 { pitch_of(channels) as u64 * lines as u64 * 4 } else { 0 };
        for (what, bytes) in [("raw", px * 4), ("display staging", staged)] {
            if bytes > limits.max_storage_buffer_binding_size {
                return Err(too_large(format!(
                    "{} MiB {what} buffer, storage binding limit {} MiB",
                    bytes >> 20,
                    limits.max_storage_buffer_binding_size >> 20
                )));
            }
        }
        use wgpu::TextureUsages as T;
        let params = buf("prepare params", SLOT, U::UNIFORM | U::COPY_DST);
        // Zero-initialised by wgpu: no line is missing until the stream says so.
        let missing = buf("missing lines", lines as u64 * 4, U::STORAGE | U::COPY_DST);

        let quads_tex = texture_2d(
            device,
            "zeff quads",
            lut.n_r,
            lut.n_a,
            wgpu::TextureFormat::Rgba32Float,
            T::TEXTURE_BINDING | T::COPY_DST,
        );
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &quads_tex,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytemuck::cast_slice(&zeff_quads(lut)),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(lut.n_r * 16),
                rows_per_image: Some(lut.n_a),
            },
            wgpu::Extent3d { width: lut.n_r, height: lut.n_a, depth_or_array_layers: 1 },
        );
        let zeff_quads = quads_tex.create_view(&Default::default());
        let max_tiles = lines.div_ceil(MIN_TILE) as u64 * channels.div_ceil(MIN_TILE) as u64;
        let targets = (0..views.max(1))
            .map(|_| {
                let luts = buf("clahe tables", max_tiles * CLAHE_BINS as u64 * 4, U::STORAGE | U::COPY_SRC);
                let params = buf("view params", SLOT * 2, U::UNIFORM | U::COPY_DST);
                let out_tex = texture_2d(
                    device,
                    "display rgba",
                    channels,
                    lines,
                    wgpu::TextureFormat::Rgba8Unorm,
                    T::STORAGE_BINDING | T::TEXTURE_BINDING | T::COPY_SRC | T::COPY_DST,
                );
                let out_view = out_tex.create_view(&Default::default());
                let out_buf = (kernels.tuning.sg > 0)
                    .then(|| buf("display rgba staging", staged, U::STORAGE | U::COPY_SRC));
                let bg_clahe = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("clahe"),
                    layout: &kernels.clahe_bgl,
                    entries: &[
                        bge(0, slot(&params, SLOT_CLAHE)),
                        bge(1, raw.as_entire_binding()),
                        bge(2, calib.as_entire_binding()),
                        bge(5, luts.as_entire_binding()),
                    ],
                });
                let mut entries = vec![
                    bge(0, slot(&params, SLOT_COMPOSE)),
                    bge(1, raw.as_entire_binding()),
                    bge(2, calib.as_entire_binding()),
                    bge(3, wgpu::BindingResource::TextureView(&zeff_quads)),
                    bge(4, missing.as_entire_binding()),
                    bge(5, wgpu::BindingResource::TextureView(&out_view)),
                    bge(6, luts.as_entire_binding()),
                ];
                if let Some(b) = &out_buf {
                    entries.push(bge(10, b.as_entire_binding()));
                }
                let bg_compose = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("compose"),
                    layout: &kernels.compose_bgl,
                    entries: &entries,
                });
                ViewTarget { luts, params, out_tex, out_view, bg_clahe, bg_compose, out_buf }
            })
            .collect::<Vec<_>>();
        let bg_compose2 = (targets.len() >= 2).then(|| {
            let (a, b) = (&targets[0], &targets[1]);
            let mut entries = vec![
                bge(0, slot(&a.params, SLOT_COMPOSE)),
                bge(1, raw.as_entire_binding()),
                bge(2, calib.as_entire_binding()),
                bge(3, wgpu::BindingResource::TextureView(&zeff_quads)),
                bge(4, missing.as_entire_binding()),
                bge(5, wgpu::BindingResource::TextureView(&a.out_view)),
                bge(6, a.luts.as_entire_binding()),
                bge(7, slot(&b.params, SLOT_COMPOSE)),
                bge(8, wgpu::BindingResource::TextureView(&b.out_view)),
                bge(9, b.luts.as_entire_binding()),
            ];
            if let (Some(ba), Some(bb)) = (&a.out_buf, &b.out_buf) {
                entries.push(bge(10, ba.as_entire_binding()));
                entries.push(bge(11, bb.as_entire_binding()));
            }
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("compose2"),
                layout: &kernels.compose2_bgl,
                entries: &entries,
            })
        });
        Ok(GpuImage {
            channels,
            lines,
            full_scale,
            lut: lut.clone(),
            raw,
            calib,
            zeff_quads,
            missing,
            params,
            targets,
            bg_compose2,
        })
    }

    /// The display texture of view `i`: a row per line (y = ring line), x = channels - 1 -
    /// channel (channel 0 at the bottom of the screen once turned upright, as egui draws it).
    pub fn out_view(&self, i: usize) -> &wgpu::TextureView {
        &self.targets[i].out_view
    }

    pub fn views(&self) -> usize {
        self.targets.len()
    }

    /// Parameters of this image under a view.
    pub fn params(&self, view: &ViewSettings, wrap: bool) -> Params {
        Params::new(view, &self.lut, self.channels, self.lines, self.full_scale, wrap)
    }

    /// Upload the calibration table (`Calibration::table`).
    pub fn set_calibration(&self, queue: &wgpu::Queue, table: &[[f32; 4]]) {
        assert_eq!(table.len(), self.channels as usize, "calibration width");
        queue.write_buffer(&self.calib, 0, bytemuck::cast_slice(table));
    }

    /// Upload whole lines starting at line `line0` (wrapping at the end of the image).
    /// Mark lines from `line0` (wrapping) as missing (lost before they reached us) or present.
    pub fn write_missing(&self, queue: &wgpu::Queue, line0: u32, missing: &[bool]) {
        let flags: Vec<u32> = missing.iter().map(|&m| m as u32).collect();
        let line0 = line0 % self.lines;
        let first = flags.len().min((self.lines - line0) as usize);
        queue.write_buffer(&self.missing, line0 as u64 * 4, bytemuck::cast_slice(&flags[..first]));
        if first < flags.len() {
            queue.write_buffer(&self.missing, 0, bytemuck::cast_slice(&flags[first..]));
        }
    }

    pub fn write_lines(&self, queue: &wgpu::Queue, line0: u32, low: &[u16], high: &[u16]) {
        let ch = self.channels as usize;
        assert!(low.len() == high.len() && low.len().is_multiple_of(ch), "whole lines of both energies");
        let n = (low.len() / ch) as u32;
        assert!(n <= self.lines, "more lines than the image holds");
        let first = n.min(self.lines - line0 % self.lines) as usize * ch;
        let start = (line0 % self.lines) as u64 * ch as u64 * 4;
        write_packed(queue, &self.raw, start, &low[..first], &high[..first]);
        write_packed(queue, &self.raw, 0, &low[first..], &high[first..]);
    }

    /// Upload a whole frame (`[line, channel]` arrays).
    pub fn write_frame(&self, queue: &wgpu::Queue, low: ArrayView2<u16>, high: ArrayView2<u16>) {
        match (low.as_slice(), high.as_slice()) {
            (Some(l), Some(h)) => self.write_lines(queue, 0, l, h),
            _ => {
                let low: Vec<u16> = low.iter().copied().collect();
                let high: Vec<u16> = high.iter().copied().collect();
                self.write_lines(queue, 0, &low, &high);
            }
        }
    }

    /// Record the dispatches of `work` under parameters `p` into `encoder`, for view 0.
    pub fn encode(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        kernels: &Kernels,
        p: &Params,
        work: Work,
    ) {
        self.encode_views(queue, encoder, kernels, &[(p, work)]);
    }

    /// CLAHE and compose for each view `i` under its own parameters. Views 0 and 1 that compose
    /// the same region are composed together (one computation of the features for both).
    pub fn encode_views(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        kernels: &Kernels,
        views: &[(&Params, Work)],
    ) {
        let t = kernels.tuning;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("twinspect"),
            timestamp_writes: None,
        });
        let region =
            |w: &Work| w.compose.filter(|r| r.1 > 0).map(|(l0, n)| (l0 % self.lines, n.min(self.lines)));
        let mut composes = Vec::new();
        for (target, (p, work)) in self.targets.iter().zip(views) {
            let write = |slot: u64, params: Params| {
                queue.write_buffer(&target.params, slot * SLOT, bytemuck::bytes_of(&params))
            };
            if p.local_contrast > 0.0
                && let Some((t0, n)) = work.clahe.filter(|w| w.1 > 0)
            {
                write(SLOT_CLAHE, p.with_region(t0 * p.tile, n * p.tile));
                pass.set_pipeline(&kernels.clahe);
                pass.set_bind_group(0, &target.bg_clahe, &[]);
                pass.dispatch_workgroups(p.tiles_c, n.min(p.tiles_l), 1);
            }
            if let Some((l0, n)) = region(work) {
                write(SLOT_COMPOSE, p.with_region(l0, n));
                composes.push((target, n, Shading::of(p)));
            }
        }
        let groups = |n: u32| (self.channels.div_ceil(t.compose_columns()), n.div_ceil(t.run));
        let paired = match (&self.bg_compose2, views) {
            (Some(bg), [(pa, a), (pb, b), ..]) if region(a).is_some() && region(a) == region(b) => {
                Some((bg, kernels.compose_pipeline(Shading::of(pa), Some(Shading::of(pb)))))
            }
            _ => None,
        };
        let mut done = 0;
        if let Some((bg, pipeline)) = paired {
            let (x, y) = groups(composes[0].1);
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(x, y, 1);
            done = 2;
        }
        for &(target, n, shading) in &composes[done..] {
            let (x, y) = groups(n);
            pass.set_pipeline(&kernels.compose_pipeline(shading, None));
            pass.set_bind_group(0, &target.bg_compose, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
        drop(pass);
        // The subgroup form stored into buffers: copy the composed lines into the textures.
        for (target, (_, work)) in self.targets.iter().zip(views) {
            if let (Some(buf), Some((l0, n))) = (&target.out_buf, region(work)) {
                let first = n.min(self.lines - l0);
                self.copy_out(encoder, buf, &target.out_tex, l0, first);
                if first < n {
                    self.copy_out(encoder, buf, &target.out_tex, 0, n - first);
                }
            }
        }
    }

    /// Lines `l0 .. l0 + n` of a staging buffer of display pixels into the display texture: one
    /// block of whole rows (a row of the texture is a line).
    fn copy_out(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        buf: &wgpu::Buffer,
        tex: &wgpu::Texture,
        l0: u32,
        n: u32,
    ) {
        encoder.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: buf,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: (l0 as u64 * pitch_of(self.channels) as u64 + px_off(self.channels) as u64) * 4,
                    bytes_per_row: Some(pitch_of(self.channels) * 4),
                    rows_per_image: Some(n),
                },
            },
            wgpu::TexelCopyTextureInfo {
                texture: tex,
                mip_level: 0,
                origin: wgpu::Origin3d { x: 0, y: l0, z: 0 },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::Extent3d { width: self.channels, height: n, depth_or_array_layers: 1 },
        );
    }

    /// Run `work` now and wait for it.
    pub fn run(&self, device: &wgpu::Device, queue: &wgpu::Queue, kernels: &Kernels, p: &Params, work: Work) {
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("run") });
        self.encode(queue, &mut enc, kernels, p, work);
        let idx = queue.submit([enc.finish()]);
        let _ = device.poll(wgpu::PollType::Wait { submission_index: Some(idx), timeout: None });
    }

    fn read_buffer(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        src: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        queue.submit([enc.finish()]);
        map_read(device, &staging)
    }

    /// Features `[line, channel, (A_low, A_high, Zeff, I)]` of every line as the raw samples and
    /// calibration now on the GPU give them, computed by the diagnostic prepare kernel with the
    /// same functions compose uses (for tests).
    pub fn read_features(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        kernels: &Kernels,
    ) -> Result<Array3<f32>, GpuError> {
        use wgpu::TextureUsages as T;
        let feat = texture_2d(
            device,
            "features",
            self.channels,
            self.lines,
            wgpu::TextureFormat::Rgba32Float,
            T::STORAGE_BINDING | T::COPY_SRC,
        );
        let feat_view = feat.create_view(&Default::default());
        let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("prepare"),
            layout: &kernels.prepare_bgl,
            entries: &[
                bge(0, slot(&self.params, 0)),
                bge(1, self.raw.as_entire_binding()),
                bge(2, self.calib.as_entire_binding()),
                bge(3, wgpu::BindingResource::TextureView(&self.zeff_quads)),
                bge(5, wgpu::BindingResource::TextureView(&feat_view)),
            ],
        });
        let p = self.params(&ViewSettings::default(), false);
        queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
        let t = kernels.tuning;
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&kernels.prepare);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(self.channels.div_ceil(t.wg_x), self.lines.div_ceil(t.wg_y * t.run), 1);
        }
        queue.submit([enc.finish()]);
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(&read_texture(device, queue, &feat, 16)?);
        Array3::from_shape_vec((self.lines as usize, self.channels as usize, 4), v)
            .map_err(|e| GpuError::Readback(e.to_string()))
    }

    /// CLAHE tables `[tile_line, tile_channel, bin]` for parameters `p` (for tests).
    pub fn read_luts(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        p: &Params,
    ) -> Result<Array3<f32>, GpuError> {
        let n = p.tiles_l as u64 * p.tiles_c as u64 * CLAHE_BINS as u64;
        let bytes = self.read_buffer(device, queue, &self.targets[0].luts, n * 4)?;
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        Array3::from_shape_vec((p.tiles_l as usize, p.tiles_c as usize, CLAHE_BINS as usize), v)
            .map_err(|e| GpuError::Readback(e.to_string()))
    }

    /// The display image `[y, x, rgba]` (`x` = line, `y` = channels - 1 - channel) of view 0: the
    /// CPU twin's orientation (the texture, a row per line, is turned back).
    pub fn read_rgba(&self, device: &wgpu::Device, queue: &wgpu::Queue) -> Result<Array3<u8>, GpuError> {
        self.read_rgba_of(device, queue, 0)
    }

    /// The display image of view `i`.
    pub fn read_rgba_of(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        i: usize,
    ) -> Result<Array3<u8>, GpuError> {
        let bytes = read_texture(device, queue, &self.targets[i].out_tex, 4)?;
        // The texture holds a row per line: turned to the row per channel of the CPU twin.
        let rows = Array3::from_shape_vec((self.lines as usize, self.channels as usize, 4), bytes)
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        Ok(rows.permuted_axes([1, 0, 2]).as_standard_layout().into_owned())
    }
}

/// A whole 2-D texture of `bytes_per_texel` texels, rows unpadded.
fn read_texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    bytes_per_texel: u32,
) -> Result<Vec<u8>, GpuError> {
    let (w, h) = (texture.width(), texture.height());
    let row_bytes = w * bytes_per_texel;
    let row = row_bytes.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("texture readback"),
        size: row as u64 * h as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_texture_to_buffer(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyBufferInfo {
            buffer: &staging,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: Some(h),
            },
        },
        wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
    );
    queue.submit([enc.finish()]);
    let bytes = map_read(device, &staging)?;
    let mut out = Vec::with_capacity((row_bytes * h) as usize);
    for y in 0..h as usize {
        out.extend_from_slice(&bytes[y * row as usize..y * row as usize + row_bytes as usize]);
    }
    Ok(out)
}

/// The Zeff table as quads: texel `(ir, ia)` holds the values at `(ia, ir)`, `(ia, ir + 1)`,
/// `(ia + 1, ir)` and `(ia + 1, ir + 1)`, clamped at the last row and column, so the shader's
/// bilinear lookup ([`MaterialLut::zeff`]) is one fetch.
pub fn zeff_quads(lut: &MaterialLut) -> Vec<[f32; 4]> {
    let (na, nr) = (lut.n_a as usize, lut.n_r as usize);
    let z = |a: usize, r: usize| lut.zeff[a.min(na - 1) * nr + r.min(nr - 1)];
    (0..na).flat_map(|a| (0..nr).map(move |r| [z(a, r), z(a, r + 1), z(a + 1, r), z(a + 1, r + 1)])).collect()
}

/// A plain 2-D texture, one mip level.
fn texture_2d(
    device: &wgpu::Device,
    label: &str,
    width: u32,
    height: u32,
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage,
        view_formats: &[],
    })
}

/// The uniform block in slot `k` of a params buffer.
fn slot(buffer: &wgpu::Buffer, k: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: k * SLOT,
        size: NonZeroU64::new(std::mem::size_of::<Params>() as u64),
    })
}

fn bge(binding: u32, resource: wgpu::BindingResource<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource }
}

fn map_read(device: &wgpu::Device, buffer: &wgpu::Buffer) -> Result<Vec<u8>, GpuError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    buffer.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
    rx.recv()
        .map_err(|e| GpuError::Readback(e.to_string()))?
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let data = buffer.get_mapped_range(..).map_err(|e| GpuError::Readback(e.to_string()))?.to_vec();
    buffer.unmap();
    Ok(data)
}

/// A scan to render: its raw lines, their calibration, and which lines were lost (`missing[l]`,
/// shown hatched; empty: none).
pub struct Scan<'a> {
    pub frame: &'a RawFrame,
    pub calib: &'a Calibration,
    pub missing: &'a [bool],
}

/// Render one raw frame under one view on the GPU: the whole chain, read back as `[y, x, rgba]`.
pub fn render_frame(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    kernels: &Kernels,
    scan: Scan<'_>,
    lut: &MaterialLut,
    view: &ViewSettings,
) -> Result<Array3<u8>, GpuError> {
    let Scan { frame, calib, missing } = scan;
    let (lines, channels) = (frame.lines() as u32, frame.channels() as u32);
    let img = GpuImage::new(device, queue, kernels, channels, lines, calib.full_scale, lut)?;
    img.set_calibration(queue, &calib.table());
    img.write_frame(queue, frame.low.view(), frame.high.view());
    if missing.iter().any(|&m| m) {
        img.write_missing(queue, 0, &missing[..missing.len().min(lines as usize)]);
    }
    let p = img.params(view, false);
    img.run(device, queue, kernels, &p, Work::full(lines, p.tile));
    img.read_rgba(device, queue)
}

/// The live display: a ring of `lines` detector lines on the GPU. New lines are processed as they
/// arrive (attenuation and material for the new lines only, CLAHE for the tile rows they touch,
/// compose for the lines whose neighbourhood changed); a change of view re-renders the ring.
pub struct LiveView {
    pub image: GpuImage,
    /// Lines received since start; the newest is at ring index `(head - 1) % lines`.
    pub head: u64,
    pending: Option<(u64, u64)>,
    /// What each view's texture currently shows.
    rendered: Vec<Option<ViewSettings>>,
}

impl LiveView {
    /// `lines` is rounded up to a multiple of 256 (the largest CLAHE tile) so tiles never
    /// straddle the ring's seam. `spec.views`: how many stations look at it, each with its own
    /// settings.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        kernels: &Kernels,
        spec: ImageSpec,
        lut: &MaterialLut,
    ) -> Result<Self, GpuError> {
        let lines = spec.lines.max(256).div_ceil(256) * 256;
        let ImageSpec { channels, full_scale, views, .. } = spec;
        let image = GpuImage::with_views(device, queue, kernels, ImageSpec { lines, ..spec }, lut)?;
        // Lines not received yet hold full-scale samples, which read as air under any
        // calibration: an empty ring is white, never black or flagged dense.
        let fs = vec![full_scale; (lines * channels) as usize];
        image.write_lines(queue, 0, &fs, &fs);
        image.set_calibration(queue, &vec![[0.0, 0.0, -1.0, -1.0]; channels as usize]);
        let mut live = LiveView { image, head: 0, pending: None, rendered: vec![None; views.max(1)] };
        live.mark(0, lines as u64);
        Ok(live)
    }

    /// Add absolute lines `a..b` to the lines to (re)process, keeping only the last ring's worth.
    fn mark(&mut self, a: u64, b: u64) {
        let (a, b) = match self.pending {
            Some((pa, pb)) => (pa.min(a), pb.max(b)),
            None => (a, b),
        };
        self.pending = Some((a.max(b.saturating_sub(self.capacity() as u64)), b));
    }

    pub fn capacity(&self) -> u32 {
        self.image.lines
    }

    /// New calibration: everything on screen is re-derived from raw.
    pub fn set_calibration(&mut self, queue: &wgpu::Queue, table: &[[f32; 4]]) {
        self.image.set_calibration(queue, table);
        self.mark(self.head.saturating_sub(self.capacity() as u64), self.head);
    }

    /// Append whole lines (`n * channels` samples of each energy).
    /// `missing[k]` marks line `k` as lost (shown hatched); empty means none is.
    pub fn push_lines(&mut self, queue: &wgpu::Queue, low: &[u16], high: &[u16], missing: &[bool]) {
        let ch = self.image.channels as usize;
        let n = (low.len() / ch) as u64;
        if n == 0 {
            return;
        }
        let cap = self.capacity() as u64;
        let (low, high, skip) = if n > cap {
            let s = ((n - cap) as usize) * ch;
            (&low[s..], &high[s..], n - cap)
        } else {
            (low, high, 0)
        };
        let start = self.head + skip;
        self.image.write_lines(queue, (start % cap) as u32, low, high);
        let flags: Vec<bool> = if missing.len() as u64 == n {
            missing[skip as usize..].to_vec()
        } else {
            vec![false; (n - skip) as usize]
        };
        self.image.write_missing(queue, (start % cap) as u32, &flags);
        self.head += n;
        self.mark(start, self.head);
    }

    /// Record this frame's GPU work for one view per station (`views[i]` for texture `i`):
    /// each view composes what changed for it (the new lines and their neighbours, the tile rows
    /// they touch with local contrast), or everything when its settings changed; two stations
    /// with the same region are composed together. Returns true when anything was dispatched.
    pub fn encode(
        &mut self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        kernels: &Kernels,
        views: &[ViewSettings],
    ) -> bool {
        let cap = self.capacity() as u64;
        let pending = self.pending.take().filter(|(a, b)| b > a);
        let params: Vec<Params> = views.iter().map(|v| self.image.params(v, true)).collect();
        let mut works = Vec::with_capacity(views.len());
        for (i, (view, p)) in views.iter().zip(&params).enumerate().take(self.image.views()) {
            let mut work = Work::default();
            if let Some((a, b)) = pending {
                let t = p.tile as u64;
                let (t0, t1) = (a / t, b.div_ceil(t));
                let ntiles = (t1 - t0).min(p.tiles_l as u64);
                work.clahe = Some(((t0 % p.tiles_l as u64) as u32, ntiles as u32));
                // Lines whose 3x3 neighbourhood or tile interpolation changed.
                let (c0, c1) = if p.local_contrast > 0.0 {
                    ((t0 * t).saturating_sub(t), (t1 + 1) * t)
                } else {
                    (a.saturating_sub(1), b + 1)
                };
                let n = (c1 - c0).min(cap);
                work.compose = Some(((c0 % cap) as u32, n as u32));
            }
            if self.rendered[i].as_ref() != Some(view) {
                if p.local_contrast > 0.0 {
                    work.clahe = Some((0, p.tiles_l));
                }
                work.compose = Some((0, self.capacity()));
                self.rendered[i] = Some(view.clone());
            }
            works.push(work);
        }
        let any = works.iter().any(|w| *w != Work::default());
        if any {
            let pairs: Vec<(&Params, Work)> = params.iter().zip(works).collect();
            self.image.encode_views(queue, encoder, kernels, &pairs);
        }
        any
    }
}
