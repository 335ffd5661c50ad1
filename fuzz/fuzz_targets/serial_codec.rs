//! The serial codec on arbitrary bytes, fed in arbitrary chunks: it must never panic, never hold
//! more than one largest frame plus the last chunk, and every frame it returns must re-encode to
//! bytes that decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/source/serial/codec.rs"]
#[allow(dead_code)]
mod codec;

use codec::{Decoder, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let chunk = usize::from(split).max(1);
    let mut d = Decoder::new();
    let mut got = Vec::new();
    for part in rest.chunks(chunk) {
        d.push(part, |r| got.push(r));
        assert!(d.pending() <= codec::OVERHEAD + codec::MAX_PAYLOAD + chunk);
    }
    for r in got {
        let mut bytes = Vec::new();
        encode(r.seq, &r.frame, &mut bytes).expect("a decoded frame re-encodes");
        let mut again = Vec::new();
        Decoder::new().push(&bytes, |x| again.push(x));
        assert_eq!(again, vec![r]);
    }
});
