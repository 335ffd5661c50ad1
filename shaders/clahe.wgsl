// Stage 1 (only for views with local contrast): CLAHE tables. One workgroup per tile: a shared
// histogram of the intensity I (computed from the raw samples, as compose does), then one thread
// clips it, spreads the excess and writes the normalised cumulative table, in the same order as
// the CPU twin (pipeline::cpu::tile_lut) so the sums agree.
// Dispatch: x = tiles across channels, y = tile rows starting at tile row p.line0 / p.tile.

@group(0) @binding(5) var<storage, read_write> luts: array<f32>;

var<workgroup> hist: array<atomic<u32>, 256>;

// CLAHE_WG (invocations per tile): a constant set per adapter when the source is assembled
// (gpu.rs, Tuning).
@compute @workgroup_size(CLAHE_WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tc = wg.x;
    let tl = (p.line0 / p.tile + wg.y) % p.tiles_l;
    for (var b = li; b < BINS; b += CLAHE_WG) {
        atomicStore(&hist[b], 0u);
    }
    workgroupBarrier();

    let l_start = tl * p.tile;
    let l_end = min(l_start + p.tile, p.lines);
    let c_start = tc * p.tile;
    let c_end = min(c_start + p.tile, p.channels);
    let w = c_end - c_start;
    let n = (l_end - l_start) * w;
    for (var k = li; k < n; k += CLAHE_WG) {
        let l = l_start + k / w;
        let c = c_start + k % w;
        atomicAdd(&hist[bin_of(intensity(attenuations(calib[c], c, l)))], 1u);
    }
    workgroupBarrier();

    if li == 0u {
        let base = (tl * p.tiles_c + tc) * BINS;
        var npx = 0u;
        for (var b = 0u; b < BINS; b++) {
            npx += atomicLoad(&hist[b]);
        }
        if npx == 0u {
            for (var b = 0u; b < BINS; b++) {
                luts[base + b] = 0.0;
            }
            return;
        }
        let clip = max(p.clahe_clip * f32(npx) / f32(BINS), 1.0);
        var excess = 0.0;
        for (var b = 0u; b < BINS; b++) {
            excess += max(f32(atomicLoad(&hist[b])) - clip, 0.0);
        }
        let add = excess / f32(BINS);
        var cdf = 0.0;
        for (var b = 0u; b < BINS; b++) {
            cdf += min(f32(atomicLoad(&hist[b])), clip) + add;
            luts[base + b] = cdf / f32(npx);
        }
    }
}
