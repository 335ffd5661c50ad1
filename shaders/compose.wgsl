// Stage 2: raw samples -> display RGBA8, in one pass. Attenuation, Zeff and intensity come from
// the functions of common.wgsl and live only in registers (never stored: on lavapipe a 16-byte
// store and three neighbour fetches per pixel cost more than computing them again); then
// material from the 3x3 mean Zeff, edge enhancement (3x3 unsharp detail), local contrast
// (bilinear between the four nearest CLAHE tile tables), density window, gamma, material colour
// / grey / pseudo-colour, class stripping, negative, dense-object alert, lost-line hatch.
// CPU twin: pipeline::cpu::compose_pixel (every formula below is written in the same order).
// Output orientation: a row per line (y = ring line, the belt direction), x = channels - 1 - channel.
//
// Entry points: `main` renders one view (p, out_tex, luts); `main2` renders two views of the same
// lines (the two stations: p and pb, out_tex and out_b, luts and luts_b) from one computation of
// the features, which is most of the work. Both share the geometry and region of p. What each
// view needs of shade() is fixed per pipeline (MODE_A/B, STRIP_A/B, NEGATIVE_A/B, LC_A/B: see
// shade).

@group(0) @binding(5) var out_tex: texture_storage_2d<rgba8unorm, write>;
@group(0) @binding(6) var<storage, read> luts: array<f32>;
@group(0) @binding(7) var<uniform> pb: Params;
@group(0) @binding(8) var out_b: texture_storage_2d<rgba8unorm, write>;
@group(0) @binding(9) var<storage, read> luts_b: array<f32>;

const ORGANIC_RGB = vec3<f32>(1.0, 0.58, 0.1);
const INORGANIC_RGB = vec3<f32>(0.25, 0.78, 0.2);
const METAL_RGB = vec3<f32>(0.2, 0.42, 1.0);
const ALERT_RGB = vec3<f32>(0.95, 0.05, 0.1);
const ZEFF_ORGANIC_MAX = 10.0;
const ZEFF_INORGANIC_MAX = 18.0;

// Each invocation renders W consecutive channels (W is a tuning constant: 1 on GPUs, a few on
// lavapipe, where a lane doing more columns shares their neighbours' features) and walks RUN
// consecutive lines with the 3x3 window in registers: one new line of W + 2 columns per line.
const SPAN: u32 = W + 2u;

fn mix3(a: vec3<f32>, b: vec3<f32>, t: f32) -> vec3<f32> {
    return a + (b - a) * t;
}

fn material_hue(zeff: f32) -> vec3<f32> {
    let t1 = smoothstep(ZEFF_ORGANIC_MAX - 1.0, ZEFF_ORGANIC_MAX + 1.0, zeff);
    let t2 = smoothstep(ZEFF_INORGANIC_MAX - 1.0, ZEFF_INORGANIC_MAX + 1.0, zeff);
    return mix3(mix3(ORGANIC_RGB, INORGANIC_RGB, t1), METAL_RGB, t2);
}

// Written as selects: on lavapipe every lane runs every branch under a mask.
const PSEUDO_0 = vec3<f32>(0.05, 0.0, 0.25);
const PSEUDO_1 = vec3<f32>(0.1, 0.25, 0.95);
const PSEUDO_2 = vec3<f32>(0.1, 0.8, 0.4);
const PSEUDO_3 = vec3<f32>(1.0, 0.85, 0.1);
const PSEUDO_4 = vec3<f32>(1.0, 1.0, 1.0);

fn pseudo_colour(v: f32) -> vec3<f32> {
    let x = clamp(v, 0.0, 1.0) * 4.0;
    let k = min(floor(x), 3.0);
    let a = select(select(select(PSEUDO_0, PSEUDO_1, k >= 1.0), PSEUDO_2, k >= 2.0), PSEUDO_3, k >= 3.0);
    let b = select(select(select(PSEUDO_1, PSEUDO_2, k >= 1.0), PSEUDO_3, k >= 2.0), PSEUDO_4, k >= 3.0);
    return mix3(a, b, x - k);
}

fn class_code(q: Params, a_high: f32, zeff: f32) -> u32 {
    let material = select(select(3u, 2u, zeff <= ZEFF_INORGANIC_MAX), 1u, zeff < ZEFF_ORGANIC_MAX);
    return select(material, 4u, a_high > q.dense_threshold);
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

// (i0, i1, t) of the bilinear tile interpolation along one axis.
fn tile_axis(tile: u32, x: u32, tiles: u32, wrap: bool) -> vec3<f32> {
    let f = (f32(x) + 0.5) / f32(tile) - 0.5;
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

// The equalised intensity of bin b between the four CLAHE tables around a pixel: `tl` the
// (first, second, weight) tile rows of its line, `tc` the tile columns of its channel (from
// tile_axis, rows and columns already multiplied out to table offsets).
fn clahe_a(tl: vec3<f32>, tc: vec3<f32>, b: u32) -> f32 {
    let r0 = u32(tl.x) + b;
    let r1 = u32(tl.y) + b;
    let c0 = u32(tc.x);
    let c1 = u32(tc.y);
    let top = luts[r0 + c0] + (luts[r0 + c1] - luts[r0 + c0]) * tc.z;
    let bot = luts[r1 + c0] + (luts[r1 + c1] - luts[r1 + c0]) * tc.z;
    return top + (bot - top) * tl.z;
}

fn clahe_b(tl: vec3<f32>, tc: vec3<f32>, b: u32) -> f32 {
    let r0 = u32(tl.x) + b;
    let r1 = u32(tl.y) + b;
    let c0 = u32(tc.x);
    let c1 = u32(tc.y);
    let top = luts_b[r0 + c0] + (luts_b[r0 + c1] - luts_b[r0 + c0]) * tc.z;
    let bot = luts_b[r1 + c0] + (luts_b[r1 + c1] - luts_b[r1 + c0]) * tc.z;
    return top + (bot - top) * tl.z;
}

// Tile rows of line l under view q as table offsets: (row0 * tiles_c * BINS, row1 * ..., weight).
fn tile_rows(q: Params, l: u32) -> vec3<f32> {
    let t = tile_axis(q.tile, l, q.tiles_l, (q.flags & FLAG_WRAP) != 0u);
    let stride = f32(q.tiles_c * BINS);
    return vec3<f32>(t.x * stride, t.y * stride, t.z);
}

// Tile columns of channel c under view q as table offsets.
fn tile_columns(q: Params, c: u32) -> vec3<f32> {
    let t = tile_axis(q.tile, c, q.tiles_c, false);
    return vec3<f32>(t.x * f32(BINS), t.y * f32(BINS), t.z);
}

// One pixel under view q: `zsum`, `isum` the 3x3 sums of Zeff and intensity, `i0` and `a_high`
// the pixel's own, `eq` its CLAHE-equalised intensity (used only with local contrast).
// `mode`, `strip`, `negative`, `lc` and `gamma` are always constants of the pipeline (MODE_A, ...:
// gpu.rs builds one pipeline per combination a station uses, `Shading`), so only the code a view
// needs is compiled into it: on lavapipe code under a branch costs the same whether the branch is
// taken or not (the CLAHE lookups alone cost a third of a frame with local contrast off, the
// colour modes and stripping another quarter). They must agree with q (Shading::of).
fn shade(q: Params, mode: u32, strip: bool, negative: bool, lc: bool, gamma: bool, l: u32, c: u32, a_high: f32, zsum: f32, isum: f32, i0: f32, eq: f32) -> vec4<f32> {
    let detail = i0 - isum / 9.0;
    var i = i0;
    if lc {
        i += (eq - i) * q.local_contrast;
    }
    i += q.edge * detail;
    var v = clamp((i - q.window_low) / (q.window_high - q.window_low), 0.0, 1.0);
    // pow(v, 1) is v (as in the CPU twin's powf): `gamma` (a constant, GAMMA_A or GAMMA_B) is
    // false when q.gamma is 1, and the pipeline has no pow.
    if gamma && v > 0.0 {
        v = pow(v, q.gamma);
    }

    let zeff = zsum / 9.0;
    let sat = smoothstep(0.02, 0.2, a_high);
    var rgb: vec3<f32>;
    if mode == 1u {
        rgb = vec3<f32>(v);
    } else if mode == 2u {
        rgb = pseudo_colour(v);
    } else {
        rgb = mix3(vec3<f32>(1.0), material_hue(zeff), sat) * v;
    }
    // Stripped classes lose their colour, not their density: plain grey.
    if strip && class_code(q, a_high, zeff) != q.only {
        rgb = vec3<f32>(v);
    }
    if negative {
        rgb = vec3<f32>(1.0) - rgb;
    }
    let alert = (q.flags & FLAG_DENSE_ALERT) != 0u && a_high > q.dense_threshold && ((l + c) / 4u) % 2u == 0u;
    return vec4<f32>(select(rgb, ALERT_RGB, alert), 1.0);
}

fn hatch(l: u32, c: u32) -> vec4<f32> {
    return vec4<f32>(vec3<f32>(select(0.55, 0.8, ((l + c) / 3u) % 2u == 0u)), 1.0);
}

// Each invocation renders channels c0 .. c0 + W - 1 and keeps, for the SPAN columns c0 - 1 ..
// c0 + W (clamped), the Zeff and intensity of three lines (above, here, below) and A_high of the
// line being rendered. The bodies of `main` and `main2` differ only in what they shade and store.
// (Written out with plain local arrays: lavapipe keeps those in registers, while arrays passed to
// or returned from functions cost it several times more.)

@compute @workgroup_size(WG_X, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // Lines are taken from the workgroup id (WG_Y = 1), so a line index is the same in every
    // lane: its loads (the lost-line flag) and its arithmetic are scalar on lavapipe.
    let c0 = (wid.x * WG_X + lid.x) * W;
    let k0 = wid.y * RUN;
    if c0 >= p.channels || k0 >= p.nlines {
        return;
    }
    let k1 = min(k0 + RUN, p.nlines);
    var cc: array<u32, SPAN>;
    var cal: array<vec4<f32>, SPAN>;
    var za: array<f32, SPAN>;
    var ia: array<f32, SPAN>;
    var zh: array<f32, SPAN>;
    var ih: array<f32, SPAN>;
    var ah: array<f32, SPAN>;
    var tc: array<vec3<f32>, W>;
    var l = ring_line(p.line0, k0, p.lines);
    let la = line_step(l, false);
    for (var j = 0u; j < W; j++) {
        if LC_A {
            tc[j] = tile_columns(p, c0 + j);
        }
    }
    for (var j = 0u; j < SPAN; j++) {
        cc[j] = u32(clamp(i32(c0 + j) - 1, 0, i32(p.channels) - 1));
        cal[j] = calib[cc[j]];
        let fa = features(cal[j], cc[j], la);
        za[j] = fa.z;
        ia[j] = fa.w;
        let fh = features(cal[j], cc[j], l);
        zh[j] = fh.z;
        ih[j] = fh.w;
        ah[j] = fh.y;
    }
    for (var k = k0; k < k1; k++) {
        let lb = line_step(l, true);
        var zb: array<f32, SPAN>;
        var ib: array<f32, SPAN>;
        var ab: array<f32, SPAN>;
        var zc: array<f32, SPAN>;
        var ic: array<f32, SPAN>;
        for (var j = 0u; j < SPAN; j++) {
            let f = features(cal[j], cc[j], lb);
            zb[j] = f.z;
            ib[j] = f.w;
            ab[j] = f.y;
            zc[j] = za[j] + zh[j] + zb[j];
            ic[j] = ia[j] + ih[j] + ib[j];
        }
        let lost = missing[l] != 0u;
        var tl = vec3<f32>(0.0);
        if LC_A {
            tl = tile_rows(p, l);
        }
        for (var j = 0u; j < W; j++) {
            let c = c0 + j;
            if c < p.channels {
                let zsum = zc[j] + zc[j + 1u] + zc[j + 2u];
                let isum = ic[j] + ic[j + 1u] + ic[j + 2u];
                let i0 = ih[j + 1u];
                var eq = 0.0;
                if LC_A {
                    eq = clahe_a(tl, tc[j], bin_of(i0));
                }
                var px = shade(p, MODE_A, STRIP_A, NEGATIVE_A, LC_A, GAMMA_A, l, c, ah[j + 1u], zsum, isum, i0, eq);
                if lost {
                    px = hatch(l, c);
                }
                textureStore(out_tex, vec2<u32>(p.channels - 1u - c, l), px);
            }
        }
        za = zh;
        ia = ih;
        zh = zb;
        ih = ib;
        ah = ab;
        l = next_ring_line(l, p.lines);
    }
}

@compute @workgroup_size(WG_X, 1)
fn main2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c0 = (wid.x * WG_X + lid.x) * W;
    let k0 = wid.y * RUN;
    if c0 >= p.channels || k0 >= p.nlines {
        return;
    }
    let k1 = min(k0 + RUN, p.nlines);
    var cc: array<u32, SPAN>;
    var cal: array<vec4<f32>, SPAN>;
    var za: array<f32, SPAN>;
    var ia: array<f32, SPAN>;
    var zh: array<f32, SPAN>;
    var ih: array<f32, SPAN>;
    var ah: array<f32, SPAN>;
    var tc: array<vec3<f32>, W>;
    var tc_b: array<vec3<f32>, W>;
    var l = ring_line(p.line0, k0, p.lines);
    let la = line_step(l, false);
    for (var j = 0u; j < W; j++) {
        if LC_A {
            tc[j] = tile_columns(p, c0 + j);
        }
        if LC_B {
            tc_b[j] = tile_columns(pb, c0 + j);
        }
    }
    for (var j = 0u; j < SPAN; j++) {
        cc[j] = u32(clamp(i32(c0 + j) - 1, 0, i32(p.channels) - 1));
        cal[j] = calib[cc[j]];
        let fa = features(cal[j], cc[j], la);
        za[j] = fa.z;
        ia[j] = fa.w;
        let fh = features(cal[j], cc[j], l);
        zh[j] = fh.z;
        ih[j] = fh.w;
        ah[j] = fh.y;
    }
    for (var k = k0; k < k1; k++) {
        let lb = line_step(l, true);
        var zb: array<f32, SPAN>;
        var ib: array<f32, SPAN>;
        var ab: array<f32, SPAN>;
        var zc: array<f32, SPAN>;
        var ic: array<f32, SPAN>;
        for (var j = 0u; j < SPAN; j++) {
            let f = features(cal[j], cc[j], lb);
            zb[j] = f.z;
            ib[j] = f.w;
            ab[j] = f.y;
            zc[j] = za[j] + zh[j] + zb[j];
            ic[j] = ia[j] + ih[j] + ib[j];
        }
        let lost = missing[l] != 0u;
        var tl = vec3<f32>(0.0);
        var tl_b = vec3<f32>(0.0);
        if LC_A {
            tl = tile_rows(p, l);
        }
        if LC_B {
            tl_b = tile_rows(pb, l);
        }
        for (var j = 0u; j < W; j++) {
            let c = c0 + j;
            if c < p.channels {
                let zsum = zc[j] + zc[j + 1u] + zc[j + 2u];
                let isum = ic[j] + ic[j + 1u] + ic[j + 2u];
                let i0 = ih[j + 1u];
                let x = p.channels - 1u - c;
                var eq = 0.0;
                var eq_b = 0.0;
                if LC_A {
                    eq = clahe_a(tl, tc[j], bin_of(i0));
                }
                if LC_B {
                    eq_b = clahe_b(tl_b, tc_b[j], bin_of(i0));
                }
                var px = shade(p, MODE_A, STRIP_A, NEGATIVE_A, LC_A, GAMMA_A, l, c, ah[j + 1u], zsum, isum, i0, eq);
                var px_b = shade(pb, MODE_B, STRIP_B, NEGATIVE_B, LC_B, GAMMA_B, l, c, ah[j + 1u], zsum, isum, i0, eq_b);
                if lost {
                    px = hatch(l, c);
                    px_b = px;
                }
                textureStore(out_tex, vec2<u32>(x, l), px);
                textureStore(out_b, vec2<u32>(x, l), px_b);
            }
        }
        za = zh;
        ia = ih;
        zh = zb;
        ih = ib;
        ah = ab;
        l = next_ring_line(l, p.lines);
    }
}
