// Shared by every kernel: prepended to each shader's source when it is compiled, after the
// workgroup-size constants WG_X, WG_Y, RUN and CLAHE_WG (see src/pipeline/gpu.rs, `kernel_source`, and
// tests/shader_validation.rs). Mirrors src/pipeline/params.rs.

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
