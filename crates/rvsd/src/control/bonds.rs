//! The control thread's watch over active-backup bonds' slaves.

use dpdk::Port;

use super::Control;

impl Control {
    /// Active-backup bonds: when the slave carrying traffic loses its link and another
    /// slave has one, make that one primary. The bonding driver does this itself for
    /// slaves whose link it polls or is interrupted about; rvsd watches as well, since
    /// some drivers announce link interrupts that never come (tap, here).
    pub(super) fn watch_bonds(&mut self) {
        for h in &self.ports {
            if h.slaves.is_empty() || dpdk::Bond::mode(&h.port).ok() != Some(1) {
                continue;
            }
            let Ok(current) = dpdk::Bond::primary(&h.port) else { continue };
            let up = |p: &Port| p.link().map(|l| l.up).unwrap_or(false);
            if h.slaves.iter().find(|s| s.id() == current).is_some_and(up) {
                continue;
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
    }
}
