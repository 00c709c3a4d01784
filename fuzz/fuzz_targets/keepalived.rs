//! keepalived.conf text through the agent's lexer, parser and validator (strict and
//! lenient), and the pair check against itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_agent::keepalived::{self, validate, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for lenient in [false, true] {
        let loaded = keepalived::parse_str(text, "fuzz.conf", Options { lenient, ..Options::default() });
        for d in &loaded.diagnostics {
            let _ = d.to_string();
        }
        let _ = validate::validate_pair(&loaded.config, &loaded.config);
    }
});
