//! Every WGSL kernel parses and validates with naga (no GPU needed): shaders compile lazily at
//! pipeline creation, so a broken one would otherwise only show up on a device.

use twinspect::pipeline::gpu::{KERNELS, Shading, Tuning, compose_variant, kernel_source};

#[test]
fn every_kernel_parses_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl") && n != "common.wgsl")
        .collect();
    on_disk.sort();
    // compose_sg.wgsl: compose's subgroup entry points, validated with compose below.
    let mut kernels: Vec<String> = KERNELS.iter().map(|(n, _)| format!("{n}.wgsl")).collect();
    kernels.push("compose_sg.wgsl".into());
    kernels.sort();
    assert_eq!(on_disk, kernels, "every shader file is a kernel the pipeline builds");
    for (name, src) in KERNELS {
        let full = kernel_source(src);
        let module = naga::front::wgsl::parse_str(&full)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&full)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(module.entry_points.iter().any(|e| e.name == "main"), "{name} has no main");
    }
}

#[test]
fn a_broken_shader_is_caught() {
    let broken = kernel_source("@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }");
    assert!(
        naga::front::wgsl::parse_str(&broken).is_err() || {
            let m = naga::front::wgsl::parse_str(&broken).unwrap();
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&m)
            .is_err()
        }
    );
}

/// compose is built per view shading (one pipeline per combination the stations use): every
/// combination, as view A and as view B, validates, for both adapter tunings.
#[test]
fn every_compose_variant_validates() {
    let compose = KERNELS.iter().find(|(n, _)| *n == "compose").unwrap().1;
    let mut all = Vec::new();
    for colour_mode in 0..3 {
        for bits in 0..16u32 {
            all.push(Shading {
                colour_mode,
                strip: bits & 1 != 0,
                negative: bits & 2 != 0,
                local_contrast: bits & 4 != 0,
                gamma: bits & 8 != 0,
            });
        }
    }
    // lavapipe's tuning with and without subgroups (8 lanes), and a GPU's
    for t in [Tuning::GPU, Tuning::CPU, Tuning { sg: 8, ..Tuning::CPU }] {
        for s in &all {
            for (a, b) in [(*s, Shading::STANDARD), (Shading::STANDARD, *s)] {
                let (full, one, two) = compose_variant(compose, t, a, b);
                let module = naga::front::wgsl::parse_str(&full)
                    .unwrap_or_else(|e| panic!("{t:?} {a:?}/{b:?}: {}", e.emit_to_string(&full)));
                let mut caps = naga::valid::Capabilities::default();
                if t.sg > 0 {
                    caps |= naga::valid::Capabilities::SUBGROUP | naga::valid::Capabilities::SHADER_INT64;
                }
                naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
                    .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
                    .subgroup_operations(naga::valid::SubgroupOperationSet::all())
                    .validate(&module)
                    .unwrap_or_else(|e| panic!("{t:?} {a:?}/{b:?}: {e:?}"));
                for entry in [one, two] {
                    assert!(module.entry_points.iter().any(|e| e.name == entry), "compose has no {entry}");
                }
            }
        }
    }
    // Without the SUBGROUP capability the subgroup form is refused: it is built only where the
    // device has the feature.
    let (full, _, _) =
        compose_variant(compose, Tuning { sg: 8, ..Tuning::CPU }, Shading::STANDARD, Shading::STANDARD);
    let module = naga::front::wgsl::parse_str(&full).unwrap();
    assert!(
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default()
        )
        .validate(&module)
        .is_err()
    );
}
