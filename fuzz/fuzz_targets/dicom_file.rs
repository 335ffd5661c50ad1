//! The DICOM Part 10 reader (used by DICOS import) on arbitrary bytes: it must never panic or
//! allocate beyond its limits, and a data set it accepts must encode and read back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/files/io/dicom.rs"]
#[allow(dead_code)]
mod dicom;

fuzz_target!(|data: &[u8]| {
    let Ok((_meta, ds)) = dicom::parse_file(data) else { return };
    let mut meta = dicom::DataSet::new();
    meta.put_str(dicom::tag(2, 0x10), b"UI", dicom::EXPLICIT_VR_LE);
    let again = dicom::encode_file(&meta, &ds);
    let (_, ds2) = dicom::parse_file(&again).expect("what was read encodes to a readable file");
    assert_eq!(ds, ds2, "a data set reads back to itself");
});
