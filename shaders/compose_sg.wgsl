// compose's entry points in subgroup form: `main_sg` and `main2_sg` render exactly what `main`
// and `main2` (compose.wgsl, which this file is appended to) render, for adapters with subgroups
// of one fixed size SG (lavapipe: 8, one SIMD vector) and 64-bit integers (gpu.rs, Tuning::sg).
// Built only where the device has wgpu's SUBGROUP and SHADER_INT64 features.
//
// Lane `sl` of a subgroup computes the features of the subgroup's columns sl * W .. sl * W + W - 1
// (of SG * W), and takes its outer neighbours' three-line sums from the lanes beside it
// (subgroupShuffleUp / Down: a register permute on lavapipe) instead of computing them again:
// features are computed for SG * W / (SG * W - 2) columns per pixel (1.07 at SG 8, W 4) instead
// of (W + 2) / W (1.5). The first and last column of a subgroup are neighbours only: a subgroup
// renders SG * W - 2 channels, starting one after its first column. Every lane of a subgroup
// runs the same lines, so the shuffles are in uniform control flow.
//
// The pixels go to buffers laid out as the display textures (a row per line, rows of `pitch()`
// texels, channel c at texel `px_off() + channels - 1 - c`), which gpu.rs copies into the
// textures: on lavapipe every buffer store is a loop over the lanes, whatever its width, so two
// neighbouring channels' pixels are stored as one 64-bit word (half the stores of one a pixel),
// and a texture store is a per-lane loop through the image format code, costlier still. The
// offset makes every subgroup's 30 channels exactly 15 aligned words: a lane stores its columns
// 1 and 2 as one word and its column 3 with the next lane's column 0 (taken by a shuffle) as
// another (W is even). A word whose second channel lies past the last one puts that half in the
// row's leading padding, which is never copied to the display.

const SG_OUT: u32 = SG * W - 2u;

@group(0) @binding(10) var<storage, read_write> out_px: array<u64>;
@group(0) @binding(11) var<storage, read_write> out_px_b: array<u64>;

// Texels per row of the display buffers (gpu.rs, pitch_of and px_off): room for the offset
// and a line's channels, rounded up to the 256-byte rows a buffer-to-texture copy needs.
fn pitch() -> u32 {
    return (p.channels + 3u + 63u) / 64u * 64u;
}

// Where a row's pixels start: 2 or 3, so that the texel of an even column of a subgroup is even.
fn px_off() -> u32 {
    return 2u + (p.channels & 1u);
}

// Two pixels as one word, `lo` at the lower address.
fn pair(lo: u32, hi: u32) -> u64 {
    return u64(lo) | (u64(hi) << 32u);
}

@compute @workgroup_size(WG_X, 1)
fn main_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
    let k0 = wid.y * RUN;
    if k0 >= p.nlines {
        return;
    }
    // Column q of the subgroup is channel base + q (clamped into the image for the features).
    let base = i32((wid.x * (WG_X / SG) + lid.x / SG) * SG_OUT) - 1;
    let q0 = sl * W;
    let k1 = min(k0 + RUN, p.nlines);
    var cc: array<u32, W>;
    var cal: array<vec4<f32>, W>;
    var za: array<f32, W>;
    var ia: array<f32, W>;
    var zh: array<f32, W>;
    var ih: array<f32, W>;
    var ah: array<f32, W>;
    var tc: array<vec3<f32>, W>;
    var l = ring_line(p.line0, k0, p.lines);
    let la = line_step(l, false);
    for (var j = 0u; j < W; j++) {
        cc[j] = u32(clamp(base + i32(q0 + j), 0, i32(p.channels) - 1));
        if LC_A {
            tc[j] = tile_columns(p, cc[j]);
        }
        cal[j] = calib[cc[j]];
        let fa = features(cal[j], cc[j], la);
        za[j] = fa.z;
        ia[j] = fa.w;
        let fh = features(cal[j], cc[j], l);
        zh[j] = fh.z;
        ih[j] = fh.w;
        ah[j] = fh.y;
    }
    // This lane's last column as a channel (its column 0 is stored by the lane before it).
    let c_last = u32(base + i32(q0 + W - 1u));
    for (var k = k0; k < k1; k++) {
        let lb = line_step(l, true);
        var zb: array<f32, W>;
        var ib: array<f32, W>;
        var ab: array<f32, W>;
        var zc: array<f32, W>;
        var ic: array<f32, W>;
        for (var j = 0u; j < W; j++) {
            let f = features(cal[j], cc[j], lb);
            zb[j] = f.z;
            ib[j] = f.w;
            ab[j] = f.y;
            zc[j] = za[j] + zh[j] + zb[j];
            ic[j] = ia[j] + ih[j] + ib[j];
        }
        let zl = subgroupShuffleUp(zc[W - 1u], 1u);
        let il = subgroupShuffleUp(ic[W - 1u], 1u);
        let zr = subgroupShuffleDown(zc[0], 1u);
        let ir = subgroupShuffleDown(ic[0], 1u);
        let lost = missing[l] != 0u;
        var tl = vec3<f32>(0.0);
        if LC_A {
            tl = tile_rows(p, l);
        }
        var px: array<u32, W>;
        for (var j = 0u; j < W; j++) {
            let c = u32(base + i32(q0 + j));
            // (left + centre) + right, the order of the plain form: the same bits.
            let zsum = select(zc[max(j, 1u) - 1u], zl, j == 0u) + zc[j] + select(zc[min(j + 1u, W - 1u)], zr, j == W - 1u);
            let isum = select(ic[max(j, 1u) - 1u], il, j == 0u) + ic[j] + select(ic[min(j + 1u, W - 1u)], ir, j == W - 1u);
            let i0 = ih[j];
            var eq = 0.0;
            if LC_A {
                eq = clahe_a(tl, tc[j], bin_of(i0));
            }
            var v = shade(p, MODE_A, STRIP_A, NEGATIVE_A, LC_A, GAMMA_A, l, c, ah[j], zsum, isum, i0, eq);
            if lost {
                v = hatch(l, c);
            }
            px[j] = pack4x8unorm(v);
        }
        // Texel of channel c on this line: row - c.
        let row = l * pitch() + px_off() + p.channels - 1u;
        let next0 = subgroupShuffleDown(px[0], 1u);
        for (var j = 2u; j < W; j += 2u) {
            let c = u32(base + i32(q0 + j));
            if c - 1u < p.channels {
                out_px[(row - c) / 2u] = pair(px[j], px[j - 1u]);
            }
        }
        if q0 + W <= SG_OUT && c_last < p.channels {
            out_px[(row - c_last - 1u) / 2u] = pair(next0, px[W - 1u]);
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
fn main2_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
    let k0 = wid.y * RUN;
    if k0 >= p.nlines {
        return;
    }
    // Column q of the subgroup is channel base + q (clamped into the image for the features).
    let base = i32((wid.x * (WG_X / SG) + lid.x / SG) * SG_OUT) - 1;
    let q0 = sl * W;
    let k1 = min(k0 + RUN, p.nlines);
    var cc: array<u32, W>;
    var cal: array<vec4<f32>, W>;
    var za: array<f32, W>;
    var ia: array<f32, W>;
    var zh: array<f32, W>;
    var ih: array<f32, W>;
    var ah: array<f32, W>;
    var tc: array<vec3<f32>, W>;
    var tc_b: array<vec3<f32>, W>;
    var l = ring_line(p.line0, k0, p.lines);
    let la = line_step(l, false);
    for (var j = 0u; j < W; j++) {
        cc[j] = u32(clamp(base + i32(q0 + j), 0, i32(p.channels) - 1));
        if LC_A {
            tc[j] = tile_columns(p, cc[j]);
        }
        if LC_B {
            tc_b[j] = tile_columns(pb, cc[j]);
        }
        cal[j] = calib[cc[j]];
        let fa = features(cal[j], cc[j], la);
        za[j] = fa.z;
        ia[j] = fa.w;
        let fh = features(cal[j], cc[j], l);
        zh[j] = fh.z;
        ih[j] = fh.w;
        ah[j] = fh.y;
    }
    let c_last = u32(base + i32(q0 + W - 1u));
    for (var k = k0; k < k1; k++) {
        let lb = line_step(l, true);
        var zb: array<f32, W>;
        var ib: array<f32, W>;
        var ab: array<f32, W>;
        var zc: array<f32, W>;
        var ic: array<f32, W>;
        for (var j = 0u; j < W; j++) {
            let f = features(cal[j], cc[j], lb);
            zb[j] = f.z;
            ib[j] = f.w;
            ab[j] = f.y;
            zc[j] = za[j] + zh[j] + zb[j];
            ic[j] = ia[j] + ih[j] + ib[j];
        }
        let zl = subgroupShuffleUp(zc[W - 1u], 1u);
        let il = subgroupShuffleUp(ic[W - 1u], 1u);
        let zr = subgroupShuffleDown(zc[0], 1u);
        let ir = subgroupShuffleDown(ic[0], 1u);
        let lost = missing[l] != 0u;
        var tl = vec3<f32>(0.0);
        var tl_b = vec3<f32>(0.0);
        if LC_A {
            tl = tile_rows(p, l);
        }
        if LC_B {
            tl_b = tile_rows(pb, l);
        }
        let row = l * pitch() + px_off() + p.channels - 1u;
        // View A's pixels and stores, then view B's, each in a loop of its own: shading both
        // views in one loop keeps the intermediate values of both live at once and lavapipe
        // spills them (measured, 2048 x 1024: 656 -> 425 M instructions a frame of both views).
        {
            var px: array<u32, W>;
            for (var j = 0u; j < W; j++) {
                let c = u32(base + i32(q0 + j));
                // (left + centre) + right, the order of the plain form: the same bits.
                let zsum = select(zc[max(j, 1u) - 1u], zl, j == 0u) + zc[j] + select(zc[min(j + 1u, W - 1u)], zr, j == W - 1u);
                let isum = select(ic[max(j, 1u) - 1u], il, j == 0u) + ic[j] + select(ic[min(j + 1u, W - 1u)], ir, j == W - 1u);
                let i0 = ih[j];
                var eq = 0.0;
                if LC_A {
                    eq = clahe_a(tl, tc[j], bin_of(i0));
                }
                var v = shade(p, MODE_A, STRIP_A, NEGATIVE_A, LC_A, GAMMA_A, l, c, ah[j], zsum, isum, i0, eq);
                if lost {
                    v = hatch(l, c);
                }
                px[j] = pack4x8unorm(v);
            }
            let next0 = subgroupShuffleDown(px[0], 1u);
            for (var j = 2u; j < W; j += 2u) {
                let c = u32(base + i32(q0 + j));
                if c - 1u < p.channels {
                    out_px[(row - c) / 2u] = pair(px[j], px[j - 1u]);
                }
            }
            if q0 + W <= SG_OUT && c_last < p.channels {
                out_px[(row - c_last - 1u) / 2u] = pair(next0, px[W - 1u]);
            }
        }
        {
            var px: array<u32, W>;
            for (var j = 0u; j < W; j++) {
                let c = u32(base + i32(q0 + j));
                let zsum = select(zc[max(j, 1u) - 1u], zl, j == 0u) + zc[j] + select(zc[min(j + 1u, W - 1u)], zr, j == W - 1u);
                let isum = select(ic[max(j, 1u) - 1u], il, j == 0u) + ic[j] + select(ic[min(j + 1u, W - 1u)], ir, j == W - 1u);
                let i0 = ih[j];
                var eq = 0.0;
                if LC_B {
                    eq = clahe_b(tl_b, tc_b[j], bin_of(i0));
                }
                var v = shade(pb, MODE_B, STRIP_B, NEGATIVE_B, LC_B, GAMMA_B, l, c, ah[j], zsum, isum, i0, eq);
                if lost {
                    v = hatch(l, c);
                }
                px[j] = pack4x8unorm(v);
            }
            let next0 = subgroupShuffleDown(px[0], 1u);
            for (var j = 2u; j < W; j += 2u) {
                let c = u32(base + i32(q0 + j));
                if c - 1u < p.channels {
                    out_px_b[(row - c) / 2u] = pair(px[j], px[j - 1u]);
                }
            }
            if q0 + W <= SG_OUT && c_last < p.channels {
                out_px_b[(row - c_last - 1u) / 2u] = pair(next0, px[W - 1u]);
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
