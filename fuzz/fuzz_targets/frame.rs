//! Ethernet frames through `frame::Node::receive`, `fnat::engine::Engine::process` and
//! `Node::after_core`, with the clock, neighbour learning and an empty mbuf pool
//! (input format: `rvs_fuzz`'s crate documentation). A fresh world per input, so a
//! crash reproduces from its input alone.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rvs_fuzz::World::new().run(data);
});
