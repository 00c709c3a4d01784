//! The memory a worker keeps per connection slot (issue 17: at most 128 bytes per
//! connection at a million): the table, its timer links, the half-open and unproven
//! lists (one pair of links), and the per-slot state of the features the bound
//! services use (the SYN proxy, the PROXY protocol, UOA), none of the others.

mod common;

use common::*;
use fnat::service::{ProxyProtocol, ServiceConfig};
use fnat::synproxy::SynProxyMode;
use fnat::types::Proto;
use fnat::uoa::UoaMode;

/// rvsd's default `pool_size`.
const POOL: u32 = 1 << 20;

/// A worker's bytes per slot with `svcs` bound.
fn bytes(svcs: &[ServiceConfig]) -> f64 {
    let mut w = World::with_services(&config(POOL), svcs);
    w.engine.bind(&w.table);
    w.engine.bytes_per_slot()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

#[test]
fn a_slot_costs_at_most_128_bytes_and_only_what_the_services_use() {
    let tcp = svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 8080)]);
    // The SYN proxy's mode is `auto` unless configured: its state is kept.
    let plain = bytes(std::slice::from_ref(&tcp));
    assert!(plain <= 128.0, "{plain} bytes per slot");
    let mut off = tcp.clone();
    off.synproxy = Some(SynProxyMode::Off);
    let bare = bytes(std::slice::from_ref(&off));
    assert!(close(plain - bare, 24.0), "the SYN proxy's state: {plain} - {bare}");
    // Table (64 + 16 of buckets + the shared addresses), timer links and both lists.
    assert!(bare < 64.0 + 16.0 + 8.0 + 8.0 + 2.0, "{bare}");
    let mut pp = off.clone();
    pp.proxy_protocol = Some(ProxyProtocol::V2);
    assert!(close(bytes(&[pp]) - bare, 8.0), "the PROXY protocol's state");
    let mut udp = svc(Proto::Udp, VIP4.into(), 53, &[rs(RIP4.into(), 53)]);
    assert!(close(bytes(std::slice::from_ref(&udp)), bare), "a UDP service keeps no SYN proxy state");
    udp.uoa = Some(UoaMode::Opp);
    assert!(close(bytes(&[udp]) - bare, 2.0), "UOA's state");
}

#[test]
fn a_generation_that_adds_a_feature_allocates_its_state_and_keeps_it() {
    let mut off = svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 8080)]);
    off.synproxy = Some(SynProxyMode::Off);
    let mut w = World::with_services(&config(4096), std::slice::from_ref(&off));
    w.engine.bind(&w.table);
    let before = w.engine.bytes_per_slot();
    let mut pp = off.clone();
    pp.proxy_protocol = Some(ProxyProtocol::V1);
    w.table = fnat::service::ServiceTable::build(&[pp], Some(&w.table)).expect("services");
    w.engine.bind(&w.table);
    assert!(close(w.engine.bytes_per_slot() - before, 8.0));
    w.table = fnat::service::ServiceTable::build(&[off], Some(&w.table)).expect("services");
    w.engine.bind(&w.table);
    assert!(close(w.engine.bytes_per_slot() - before, 8.0), "kept: connections of the old generation use it");
}

#[test]
fn a_generation_s_new_arrays_built_off_the_worker_are_adopted_and_built_once() {
    let mut off = svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 8080)]);
    off.synproxy = Some(SynProxyMode::Off);
    let mut w = World::with_services(&config(4096), std::slice::from_ref(&off));
    w.engine.bind(&w.table);
    let before = w.engine.bytes_per_slot();
    // The publishing thread's side: the engine bound `off` itself.
    let mut slots = fnat::engine::SlotProvisioner::new(4096, SynProxyMode::Auto, &w.table);
    assert!(slots.take_new(&w.table).is_empty());
    let mut on = off.clone();
    on.synproxy = None;
    let mut pp = svc(Proto::Tcp, VIP4.into(), 81, &[rs(RIP4.into(), 8080)]);
    pp.proxy_protocol = Some(ProxyProtocol::V2);
    let next = fnat::service::ServiceTable::build(&[on, pp], Some(&w.table)).expect("services");
    let new = slots.take_new(&next);
    assert_eq!((new.synproxy, new.proxy_protocol, new.uoa), (true, true, false));
    assert!(slots.take_new(&next).is_empty(), "built once");
    // The worker's side: adopted whole, nothing handed back, nothing left to allocate.
    let left = w.engine.adopt_slot_state(slots.build(new));
    assert!(left.features().is_empty(), "{left:?}");
    assert!(close(w.engine.bytes_per_slot() - before, 24.0 + 8.0));
    w.table = next;
    w.engine.bind(&w.table);
    assert!(close(w.engine.bytes_per_slot() - before, 24.0 + 8.0));
    // Arrays an engine already has (a peer's record brought them) are handed back.
    let left = w.engine.adopt_slot_state(slots.build(new));
    assert_eq!(left.features(), new);
    assert!(close(w.engine.bytes_per_slot() - before, 24.0 + 8.0));
}
