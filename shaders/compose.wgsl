// Stage 3: features -> display RGBA8. Material from the 3x3 mean Zeff, edge enhancement (3x3
// unsharp detail), local contrast
// (bilinear between the four nearest CLAHE tile tables), density window, gamma, material colour
// / grey / pseudo-colour, class stripping, negative, dense-object alert.
// CPU twin: pipeline::cpu::compose_pixel (every formula below is written in the same order).
// Output orientation: x = line (belt direction), y = channels - 1 - channel.

@group(0) @binding(0) var<uniform> p: Params;
// Features (A_low, A_high, Zeff, I), x = channel, y = line.
@group(0) @binding(1) var feat: texture_2d<f32>;
@group(0) @binding(2) var<storage, read> luts: array<f32>;
@group(0) @binding(3) var out_tex: texture_storage_2d<rgba8unorm, write>;
// Per line: non-zero where the scanner's sequence numbers say lines were lost. Such lines are
// shown as a grey hatch, never stitched over.
@group(0) @binding(4) var<storage, read> missing: array<u32>;

const ORGANIC_RGB = vec3<f32>(1.0, 0.58, 0.1);
const INORGANIC_RGB = vec3<f32>(0.25, 0.78, 0.2);
const METAL_RGB = vec3<f32>(0.2, 0.42, 1.0);
const ALERT_RGB = vec3<f32>(0.95, 0.05, 0.1);
const ZEFF_ORGANIC_MAX = 10.0;
const ZEFF_INORGANIC_MAX = 18.0;

fn mix3(a: vec3<f32>, b: vec3<f32>, t: f32) -> vec3<f32> {
    return a + (b - a) * t;
}

fn material_hue(zeff: f32) -> vec3<f32> {
    let t1 = smoothstep(ZEFF_ORGANIC_MAX - 1.0, ZEFF_ORGANIC_MAX + 1.0, zeff);
    let t2 = smoothstep(ZEFF_INORGANIC_MAX - 1.0, ZEFF_INORGANIC_MAX + 1.0, zeff);
    return mix3(mix3(ORGANIC_RGB, INORGANIC_RGB, t1), METAL_RGB, t2);
}

fn pseudo_stop(k: u32) -> vec3<f32> {
    switch k {
        case 0u: { return vec3<f32>(0.05, 0.0, 0.25); }
        case 1u: { return vec3<f32>(0.1, 0.25, 0.95); }
        case 2u: { return vec3<f32>(0.1, 0.8, 0.4); }
        case 3u: { return vec3<f32>(1.0, 0.85, 0.1); }
        default: { return vec3<f32>(1.0, 1.0, 1.0); }
    }
}

fn pseudo_colour(v: f32) -> vec3<f32> {
    let x = clamp(v, 0.0, 1.0) * 4.0;
    let k = min(u32(floor(x)), 3u);
    return mix3(pseudo_stop(k), pseudo_stop(k + 1u), x - f32(k));
}

fn class_code(a_high: f32, zeff: f32) -> u32 {
    if a_high > p.dense_threshold {
        return 4u;
    }
    if zeff < ZEFF_ORGANIC_MAX {
        return 1u;
    }
    if zeff <= ZEFF_INORGANIC_MAX {
        return 2u;
    }
    return 3u;
}

// Neighbouring line: wraps in the live ring, clamps at the edges of a frame.
fn line_step(l: u32, up: bool) -> u32 {
    let wrap = (p.flags & FLAG_WRAP) != 0u;
    if up {
        if l + 1u < p.lines {
            return l + 1u;
        }
        return select(l, 0u, wrap);
    }
    if l > 0u {
        return l - 1u;
    }
    return select(0u, p.lines - 1u, wrap);
}

// (Zeff, I) of channels c-1, c, c+1 (clamped) on line l.
struct Row {
    left: vec2<f32>,
    mid: vec2<f32>,
    right: vec2<f32>,
}

fn zi(c: u32, l: u32) -> vec2<f32> {
    return textureLoad(feat, vec2<u32>(c, l), 0).zw;
}

fn row_at(l: u32, c: u32) -> Row {
    let cm = select(c - 1u, 0u, c == 0u);
    let cp = min(c + 1u, p.channels - 1u);
    return Row(zi(cm, l), zi(c, l), zi(cp, l));
}

// (i0, i1, t) of the bilinear tile interpolation along one axis.
fn tile_axis(x: u32, tiles: u32, wrap: bool) -> vec3<f32> {
    let f = (f32(x) + 0.5) / f32(p.tile) - 0.5;
    if wrap {
        let i0 = floor(f);
        let n = i32(tiles);
        let a = ((i32(i0) % n) + n) % n;
        let b = ((i32(i0) + 1) % n + n) % n;
        return vec3<f32>(f32(a), f32(b), f - i0);
    }
    let g = clamp(f, 0.0, f32(tiles - 1u));
    let i0 = floor(g);
    return vec3<f32>(i0, f32(min(u32(i0) + 1u, tiles - 1u)), g - i0);
}

fn lut_at(tl: u32, tc: u32, b: u32) -> f32 {
    return luts[(tl * p.tiles_c + tc) * BINS + b];
}

// WG_X, WG_Y, RUN: constants set per adapter when the source is assembled (gpu.rs, Tuning).
// Each invocation walks RUN consecutive lines of one channel with a 3x3 window held in
// registers: three loads per new line instead of nine per pixel.
@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let k0 = gid.y * RUN;
    if c >= p.channels || k0 >= p.nlines {
        return;
    }
    let k1 = min(k0 + RUN, p.nlines);
    var l = ring_line(p.line0, k0, p.lines);
    var above = row_at(line_step(l, false), c);
    var here = row_at(l, c);
    for (var k = k0; k < k1; k++) {
        let below = row_at(line_step(l, true), c);
        compose_pixel(l, c, above, here, below);
        above = here;
        here = below;
        l = next_ring_line(l, p.lines);
    }
}

fn compose_pixel(l: u32, c: u32, above: Row, here: Row, below: Row) {
    let a_high = textureLoad(feat, vec2<u32>(c, l), 0).y;
    let i0 = here.mid.y;
    // 3x3 sums of Zeff (material shown from the local mean) and intensity (unsharp detail), in the
    // CPU twin's order (line -1, 0, +1; channel -1, 0, +1).
    var zsum = 0.0;
    var sum = 0.0;
    zsum += above.left.x;
    sum += above.left.y;
    zsum += above.mid.x;
    sum += above.mid.y;
    zsum += above.right.x;
    sum += above.right.y;
    zsum += here.left.x;
    sum += here.left.y;
    zsum += here.mid.x;
    sum += here.mid.y;
    zsum += here.right.x;
    sum += here.right.y;
    zsum += below.left.x;
    sum += below.left.y;
    zsum += below.mid.x;
    sum += below.mid.y;
    zsum += below.right.x;
    sum += below.right.y;
    let detail = i0 - sum / 9.0;
    var i = i0;
    if p.local_contrast > 0.0 {
        let b = bin_of(i0);
        let ta = tile_axis(l, p.tiles_l, (p.flags & FLAG_WRAP) != 0u);
        let tb = tile_axis(c, p.tiles_c, false);
        let l0 = u32(ta.x);
        let l1 = u32(ta.y);
        let c0 = u32(tb.x);
        let c1 = u32(tb.y);
        let top = lut_at(l0, c0, b) + (lut_at(l0, c1, b) - lut_at(l0, c0, b)) * tb.z;
        let bot = lut_at(l1, c0, b) + (lut_at(l1, c1, b) - lut_at(l1, c0, b)) * tb.z;
        let eq = top + (bot - top) * ta.z;
        i += (eq - i) * p.local_contrast;
    }
    i += p.edge * detail;
    var v = clamp((i - p.window_low) / (p.window_high - p.window_low), 0.0, 1.0);
    if v > 0.0 {
        v = pow(v, p.gamma);
    } else {
        v = 0.0;
    }

    let zeff = zsum / 9.0;
    let sat = smoothstep(0.02, 0.2, a_high);
    var rgb: vec3<f32>;
    if p.colour_mode == 1u {
        rgb = vec3<f32>(v);
    } else if p.colour_mode == 2u {
        rgb = pseudo_colour(v);
    } else {
        rgb = mix3(vec3<f32>(1.0), material_hue(zeff), sat) * v;
    }
    if p.only != 0u && class_code(a_high, zeff) != p.only {
        rgb = mix3(vec3<f32>(v), vec3<f32>(1.0), 0.75);
    }
    if (p.flags & FLAG_NEGATIVE) != 0u {
        rgb = vec3<f32>(1.0) - rgb;
    }
    if (p.flags & FLAG_DENSE_ALERT) != 0u && a_high > p.dense_threshold && ((l + c) / 4u) % 2u == 0u {
        rgb = ALERT_RGB;
    }
    if missing[l] != 0u {
        rgb = vec3<f32>(select(0.55, 0.8, ((l + c) / 3u) % 2u == 0u));
    }
    textureStore(out_tex, vec2<u32>(l, p.channels - 1u - c), vec4<f32>(rgb, 1.0));
}
