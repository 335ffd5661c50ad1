//! GVCP acknowledgements, discovery records and XML URLs from a hostile device: parse or refuse,
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/source/gige/gvcp.rs"]
#[allow(dead_code)]
mod gvcp;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = gvcp::Ack::parse(data) {
        let _ = a.read_regs(data.len() / 4);
        let _ = a.write_regs();
        let _ = a.read_mem(0, a.payload.len().saturating_sub(4));
        let _ = a.write_mem();
        let _ = a.pending_ms();
        if let Ok(info) = a.discovery() {
            let again = gvcp::DeviceInfo::parse(&info.encode()).expect("our own record parses");
            assert_eq!(again.ip, info.ip);
        }
    }
    let _ = gvcp::XmlUrl::parse(data);
});
