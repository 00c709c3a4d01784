//! The control thread's watch over bonds' slaves: active-backup failover, and the LACP
//! (802.3ad) aggregation's membership logged as it changes.

use std::collections::HashMap;

use dpdk::Port;

use super::{Control, PortHandle};

/// IEEE 802.1AX port state bits: collecting and distributing.
const COLLECTING_DISTRIBUTING: u8 = 0x30;

impl Control {
    /// Active-backup bonds: when the slave carrying traffic loses its link and another
    /// slave has one, make that one primary. The bonding driver does this itself for
    /// slaves whose link it polls or is interrupted about; rvsd watches as well, since
    /// some drivers announce link interrupts that never come (tap, here).
    ///
    /// LACP bonds need no such help (DPDK's 802.3ad machine polls its slaves' links
    /// every 100 ms and stops distributing on one without link): a line is logged when
    /// a slave joins or leaves the aggregation.
    pub(super) fn watch_bonds(&mut self) {
        for h in &self.ports {
            if h.slaves.is_empty() {
                continue;
            }
            match dpdk::Bond::mode(&h.port).ok() {
                Some(1) => fail_over(h),
                Some(4) => lacp_membership(h, &mut self.lacp_aggregated),
                _ => {}
            }
        }
    }
}

fn fail_over(h: &PortHandle) {
    let Ok(current) = dpdk::Bond::primary(&h.port) else { return };
    let up = |p: &Port| p.link().map(|l| l.up).unwrap_or(false);
    if h.slaves.iter().find(|s| s.id() == current).is_some_and(up) {
        return;
    }
    if let Some(next) = h.slaves.iter().find(|s| s.id() != current && up(s)) {
        match dpdk::Bond::set_primary(&h.port, next) {
            Ok(()) => {
                tracing::warn!(bond = %h.name, from = current, to = next.id(), "bond: active slave lost its link; failed over")
            }
            Err(e) => tracing::warn!(bond = %h.name, "bond: failover to slave {} refused: {e}", next.id()),
        }
    }
}

/// Logs each slave of LACP bond `h` entering the aggregation (both ends collecting and
/// distributing) or leaving it; `seen` holds, by slave port id, whether it was in.
fn lacp_membership(h: &PortHandle, seen: &mut HashMap<u16, bool>) {
    for s in &h.slaves {
        let Ok((actor, partner)) = dpdk::Bond::lacp_state(&h.port, s) else { continue };
        let now = actor & partner & COLLECTING_DISTRIBUTING == COLLECTING_DISTRIBUTING;
        if seen.insert(s.id(), now).unwrap_or(false) == now {
            continue;
        }
        let slave = s.info().map(|i| i.name).unwrap_or_default();
        let (actor, partner) = (format!("{actor:#04x}"), format!("{partner:#04x}"));
        if now {
            tracing::info!(bond = %h.name, %slave, %actor, %partner, "bond: LACP slave aggregated with its partner");
        } else {
            tracing::warn!(bond = %h.name, %slave, %actor, %partner, "bond: LACP slave left the aggregation");
        }
    }
}
