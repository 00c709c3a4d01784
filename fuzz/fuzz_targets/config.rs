//! rvsd's TOML configuration through `Config::parse` (what `--check-config` runs, no
//! DPDK), then what start-up derives from an accepted one: warnings, the services as
//! the core and the protocol see them, the EAL arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvsd::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse("fuzz.toml", text) {
        Ok(cfg) => {
            for w in cfg.warnings("fuzz.toml") {
                let _ = w.to_string();
            }
            let _ = cfg.service_configs();
            let _ = cfg.service_specs();
            let _ = cfg.eal_args();
        }
        Err(errs) => {
            let _ = errs.to_string();
        }
    }
});
