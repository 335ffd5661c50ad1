//! Source URLs from configuration files and command lines: any string must parse or be refused
//! with an error, never panic; what parses prints back to a URL that parses the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/source/url.rs"]
#[allow(dead_code)]
mod url;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(u) = url::SourceUrl::parse(s) {
        let _ = u.get("baud", 0u32);
        let _ = u.only_keys(&["baud"]);
        // What is printed (delimiters escaped) parses back to the same URL.
        let printed = u.to_string();
        assert_eq!(url::SourceUrl::parse(&printed).as_ref(), Ok(&u), "{printed}");
    }
});
