//! A device's GenICam XML (plain or zipped) from a hostile device: load it or refuse it, then read
//! and write every feature through device memory that answers anything; never panic, never hang
//! (reference cycles and deep formulas end in errors).
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;

#[path = "../../src/source/gige/genicam.rs"]
#[allow(dead_code)]
mod genicam;

/// Device memory: whatever was written, else bytes derived from the address.
struct Mem(HashMap<u64, u8>);

impl genicam::Port for Mem {
    fn read(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, genicam::PortError> {
        if len > 1 << 16 {
            return Err(genicam::PortError::Link("too long".into()));
        }
        Ok((0..len as u64).map(|k| self.0.get(&addr.wrapping_add(k)).copied().unwrap_or(addr.wrapping_add(k) as u8)).collect())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), genicam::PortError> {
        for (k, b) in data.iter().enumerate() {
            self.0.insert(addr.wrapping_add(k as u64), *b);
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut map) = genicam::NodeMap::load(data) else { return };
    // Half the inputs through the register cache (invalidators, polling, selectors' addresses).
    map.set_caching(data.len() % 2 == 0);
    let names: Vec<String> = map.names().take(64).map(str::to_string).collect();
    let mut mem = Mem(HashMap::new());
    for n in &names {
        let _ = map.int(&mut mem, n);
        let _ = map.string(&mut mem, n);
        let _ = map.enum_entry(&mut mem, n);
        let _ = map.set_int(&mut mem, n, 3);
        let _ = map.execute(&mut mem, n);
        let _ = map.float(&mut mem, n);
    }
    for (selector, _) in map.selectors().to_vec() {
        for e in map.entries(&selector).unwrap_or_default() {
            let _ = map.set_enum(&mut mem, &selector, &e);
        }
    }
});
