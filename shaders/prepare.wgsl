// Stage 1: raw low/high samples -> features (A_low, A_high, Zeff, I) per pixel.
// CPU twin: pipeline::cpu::prepare_into; attenuation rule: domain::calib::attenuation;
// Zeff lookup: domain::material::MaterialLut::zeff (bilinear, clamped).

@group(0) @binding(0) var<uniform> p: Params;
// One u32 per pixel: low sample in bits 0-15, high sample in bits 16-31; index line * channels + c.
@group(0) @binding(1) var<storage, read> raw: array<u32>;
// Per channel: dark_low, dark_high, ln(air_low - dark_low), ln(air_high - dark_high) (< 0: dead).
@group(0) @binding(2) var<storage, read> calib: array<vec4<f32>>;
// Zeff table: width n_r (ratio), height n_a (A_high), r32float.
@group(0) @binding(3) var zeff_lut: texture_2d<f32>;
// Features (A_low, A_high, Zeff, I) as an rgba32float texture (x = channel, y = line). A texture,
// not a storage buffer: the neighbour reads of the later stages are several times cheaper as
// texel fetches on lavapipe, one store per pixel beats two, and no 128 MiB binding limit applies.
@group(0) @binding(4) var feat: texture_storage_2d<rgba32float, write>;

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

fn lut_at(ia: u32, ir: u32) -> f32 {
    return textureLoad(zeff_lut, vec2<u32>(ir, ia), 0).r;
}

fn zeff_of(a_low: f32, a_high: f32) -> f32 {
    let r = select(1.0, a_low / a_high, a_high > 1e-4);
    let na = f32(p.lut_n_a - 1u);
    let nr = f32(p.lut_n_r - 1u);
    let fa = clamp(a_high / p.lut_a_max * na, 0.0, na);
    let fr = clamp((r - p.lut_r_min) / (p.lut_r_max - p.lut_r_min) * nr, 0.0, nr);
    let ia0 = u32(floor(fa));
    let ir0 = u32(floor(fr));
    let ia1 = min(ia0 + 1u, p.lut_n_a - 1u);
    let ir1 = min(ir0 + 1u, p.lut_n_r - 1u);
    let ta = fa - f32(ia0);
    let tr = fr - f32(ir0);
    let z0 = lut_at(ia0, ir0) + (lut_at(ia0, ir1) - lut_at(ia0, ir0)) * tr;
    let z1 = lut_at(ia1, ir0) + (lut_at(ia1, ir1) - lut_at(ia1, ir0)) * tr;
    return z0 + (z1 - z0) * ta;
}

// WG_X, WG_Y, RUN: constants set per adapter when the source is assembled (gpu.rs, Tuning).
// Each invocation walks RUN consecutive lines of one channel: the channel's calibration is loaded
// once per run (on lavapipe every storage load is a per-lane gather, so loads are what cost).
@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let k0 = gid.y * RUN;
    if c >= p.channels || k0 >= p.nlines {
        return;
    }
    let k1 = min(k0 + RUN, p.nlines);
    let cal = calib[c];
    var l = ring_line(p.line0, k0, p.lines);
    for (var k = k0; k < k1; k++) {
        let i = l * p.channels + c;
        let v = raw[i];
        let a_low = attenuation(v & 0xffffu, cal.x, cal.z);
        let a_high = attenuation(v >> 16u, cal.y, cal.w);
        let f = vec4<f32>(a_low, a_high, zeff_of(a_low, a_high), exp(-(a_low + a_high) * 0.5));
        textureStore(feat, vec2<u32>(c, l), f);
        l = next_ring_line(l, p.lines);
    }
}
