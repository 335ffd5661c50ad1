// Diagnostic: raw low/high samples -> features (A_low, A_high, Zeff, I) per pixel, stored. The
// display path never stores them (compose.wgsl computes the same numbers with the same functions
// of common.wgsl in registers); this kernel exists so that the tests can hold that maths to its
// CPU twin, pipeline::cpu::prepare_into, value by value (GpuImage::read_features).

// Features as an rgba32float texture (x = channel, y = line).
@group(0) @binding(5) var feat: texture_storage_2d<rgba32float, write>;

// Each invocation walks RUN consecutive lines of one channel.
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
        textureStore(feat, vec2<u32>(c, l), features(cal, c, l));
        l = next_ring_line(l, p.lines);
    }
}
