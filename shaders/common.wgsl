// Shared by every kernel: prepended to each shader's source when it is compiled, after the
// tuning constants WG_X, WG_Y, RUN, W and CLAHE_WG (see src/pipeline/gpu.rs, `kernel_source`, and
// tests/shader_validation.rs). `Params` mirrors src/pipeline/params.rs.
//
// Also here: the bindings every kernel shares (0-4) and the per-pixel physics that turns a raw
// sample pair into attenuation, Zeff and display intensity. That maths is written once, so the
// diagnostic `prepare` kernel (whose output the tests hold to the CPU twin) and the fused
// `compose` kernel (which never stores it) compute exactly the same numbers.

struct Params {
    channels: u32,
    lines: u32,
    line0: u32,
    nlines: u32,

    full_scale: u32,
    colour_mode: u32,
    only: u32,
    flags: u32,

    window_low: f32,
    window_high: f32,
    gamma: f32,
    edge: f32,

    local_contrast: f32,
    clahe_clip: f32,
    tile: u32,
    tiles_c: u32,

    tiles_l: u32,
    dense_threshold: f32,
    lut_a_max: f32,
    lut_r_min: f32,

    lut_r_max: f32,
    lut_n_a: u32,
    lut_n_r: u32,
    a_max: f32,
}

const FLAG_NEGATIVE: u32 = 1u;
const FLAG_DENSE_ALERT: u32 = 2u;
const FLAG_WRAP: u32 = 4u;
const BINS: u32 = 256u;

fn bin_of(i: f32) -> u32 {
    return min(u32(max(i * f32(BINS), 0.0)), BINS - 1u);
}

// Ring index of line `k` of a region starting at `line0` (line0 < lines, k < lines).
fn ring_line(line0: u32, k: u32, lines: u32) -> u32 {
    let l = line0 + k;
    return select(l, l - lines, l >= lines);
}

// The next line of the ring.
fn next_ring_line(l: u32, lines: u32) -> u32 {
    return select(l + 1u, 0u, l + 1u == lines);
}

// Bindings 0-4, shared by every kernel (a kernel that uses none of a binding leaves it out of its
// layout).
@group(0) @binding(0) var<uniform> p: Params;
// One u32 per pixel: low sample in bits 0-15, high sample in bits 16-31; index line * channels + c.
@group(0) @binding(1) var<storage, read> raw: array<u32>;
// Per channel: dark_low, dark_high, ln(air_low - dark_low), ln(air_high - dark_high) (< 0: dead).
@group(0) @binding(2) var<storage, read> calib: array<vec4<f32>>;
// The Zeff table with each grid cell's four corners in one texel: at (ir, ia) the values at
// (ia, ir), (ia, ir + 1), (ia + 1, ir), (ia + 1, ir + 1), clamped at the last row and column
// (rgba32float, width n_r, height n_a). One fetch per pixel instead of four: on lavapipe a texel
// fetch costs a call and a gather whatever its width.
@group(0) @binding(3) var zeff_quads: texture_2d<f32>;
// Per line: non-zero where the scanner's sequence numbers say lines were lost. Such lines are
// shown as a grey hatch, never stitched over.
@group(0) @binding(4) var<storage, read> missing: array<u32>;

// -ln(T) of one raw sample: domain::calib::attenuation (dead channel or saturated: 0; starved:
// a_max).
fn attenuation(raw_value: u32, dark: f32, ln_span: f32) -> f32 {
    if ln_span < 0.0 || raw_value >= p.full_scale {
        return 0.0;
    }
    let s = f32(raw_value) - dark;
    if s < 1.0 {
        return p.a_max;
    }
    return clamp(ln_span - log(s), 0.0, p.a_max);
}

// Zeff by bilinear lookup, clamped: domain::material::MaterialLut::zeff.
fn zeff_of(a_low: f32, a_high: f32) -> f32 {
    let r = select(1.0, a_low / a_high, a_high > 1e-4);
    let na = f32(p.lut_n_a - 1u);
    let nr = f32(p.lut_n_r - 1u);
    let fa = clamp(a_high / p.lut_a_max * na, 0.0, na);
    let fr = clamp((r - p.lut_r_min) / (p.lut_r_max - p.lut_r_min) * nr, 0.0, nr);
    let ia0 = floor(fa);
    let ir0 = floor(fr);
    let q = textureLoad(zeff_quads, vec2<u32>(u32(ir0), u32(ia0)), 0);
    let ta = fa - ia0;
    let tr = fr - ir0;
    let z0 = q.x + (q.y - q.x) * tr;
    let z1 = q.z + (q.w - q.z) * tr;
    return z0 + (z1 - z0) * ta;
}

// (A_low, A_high) of channel c (calibration `cal`) on ring line l.
fn attenuations(cal: vec4<f32>, c: u32, l: u32) -> vec2<f32> {
    let v = raw[l * p.channels + c];
    return vec2<f32>(attenuation(v & 0xffffu, cal.x, cal.z), attenuation(v >> 16u, cal.y, cal.w));
}

// Display intensity I = exp(-(A_low + A_high) / 2).
fn intensity(a: vec2<f32>) -> f32 {
    return exp(-(a.x + a.y) * 0.5);
}

// The features (A_low, A_high, Zeff, I) of channel c on ring line l: pipeline::cpu::prepare_into.
fn features(cal: vec4<f32>, c: u32, l: u32) -> vec4<f32> {
    let a = attenuations(cal, c, l);
    return vec4<f32>(a.x, a.y, zeff_of(a.x, a.y), intensity(a));
}
