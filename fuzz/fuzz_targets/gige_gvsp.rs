//! GVSP packets from a hostile or broken device, fed to the block assembler: never panic, never
//! allocate past the block limit, and every block delivered as complete has all its packets.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/source/gige/gvsp.rs"]
#[allow(dead_code)]
mod gvsp;

fuzz_target!(|data: &[u8]| {
    // First byte: data bytes per packet (1..=255 x 8); then packets, each prefixed by a length byte.
    let Some((&c, mut rest)) = data.split_first() else { return };
    let mut blocks = gvsp::Blocks::new(usize::from(c).max(1) * 8);
    blocks.patience = 64;
    blocks.max_bytes = 1 << 20;
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        for b in blocks.push(&tail[..n]) {
            if b.complete() {
                assert!(b.missing_packets.is_empty());
            }
            assert!(b.data.len() <= 1 << 20);
        }
        rest = &tail[n..];
    }
    let _ = blocks.resend_requests();
    let _ = blocks.flush();
});
