//! The recording reader on arbitrary bytes: it must never panic or allocate beyond its limits,
//! and every record it returns must encode back to exactly the bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/source/recording.rs"]
#[allow(dead_code)]
mod recording;

use recording::{Reader, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = Reader::new(data) else { return };
    loop {
        let at = r.offset() as usize;
        match r.next_record() {
            Ok(Some((t, rec))) => {
                let mut again = Vec::new();
                encode(t, &rec, &mut again);
                assert_eq!(&data[at..r.offset() as usize], &again[..], "a record re-encodes to its bytes");
            }
            Ok(None) | Err(_) => break,
        }
    }
});
