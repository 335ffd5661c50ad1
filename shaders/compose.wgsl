// Stage 3: features -> display RGBA8. Edge enhancement (3x3 unsharp detail), local contrast
// (bilinear between the four nearest CLAHE tile tables), density window, gamma, material colour
// / grey / pseudo-colour, class stripping, negative, dense-object alert.
// CPU twin: pipeline::cpu::compose_pixel (every formula below is written in the same order).
// Output orientation: x = line (belt direction), y = channels - 1 - channel.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> feat_a: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> feat_b: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> luts: array<f32>;
@group(0) @binding(4) var out_tex: texture_storage_2d<rgba8unorm, write>;

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

fn intensity(l: i32, c: i32) -> f32 {
    var ll: u32;
    if (p.flags & FLAG_WRAP) != 0u {
        let n = i32(p.lines);
        ll = u32(((l % n) + n) % n);
    } else {
        ll = u32(clamp(l, 0, i32(p.lines) - 1));
    }
    let cc = u32(clamp(c, 0, i32(p.channels) - 1));
    return feat_b[ll * p.channels + cc].y;
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

@compute @workgroup_size(64, 4)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let k = gid.y;
    if c >= p.channels || k >= p.nlines {
        return;
    }
    let l = (p.line0 + k) % p.lines;
    let fa = feat_a[l * p.channels + c];
    let fb = feat_b[l * p.channels + c];
    let i0 = fb.y;
    var sum = 0.0;
    for (var dl = -1; dl <= 1; dl++) {
        for (var dc = -1; dc <= 1; dc++) {
            sum += intensity(i32(l) + dl, i32(c) + dc);
        }
    }
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

    let a_high = fa.y;
    let zeff = fb.x;
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
    textureStore(out_tex, vec2<u32>(l, p.channels - 1u - c), vec4<f32>(rgb, 1.0));
}
