//! The kernel-twin side of the control thread: frames between the workers and the
//! twins, each twin's link following its port's, and the watch over active-backup
//! bonds' slaves.

use dpdk::{Burst, Port, RxQueue, TxBuffer};

use super::{Control, KNI_BURSTS_PER_ROUND};

/// A port's kernel twin, driven by the control thread only (the tap PMD makes a
/// syscall per poll, which the workers must not pay).
pub struct Twin {
    /// The twin's DPDK port (tap PMD).
    pub port: Port,
    /// The kernel interface name (`dpdk0.kni`).
    pub ifname: String,
    /// Its receive queue: what the kernel sends.
    pub rx: RxQueue,
    /// Its transmit buffer: what goes up to the kernel.
    pub tx: TxBuffer,
    /// The link state last mirrored from the port.
    pub link_up: bool,
}

impl Control {
    /// Moves frames between the workers and the kernel twins: up (workers' ring → twin
    /// transmit) and down (twin receive → worker 0, which sends them out of the port).
    /// True if anything moved.
    pub(super) fn pump_twins(&mut self) -> bool {
        let mut moved = false;
        let mut b = Burst::new();
        for _ in 0..KNI_BURSTS_PER_ROUND {
            if self.kni_up.dequeue_burst(&mut b) == 0 {
                break;
            }
            moved = true;
            for m in b.drain() {
                match self.ports.get_mut(m.port() as usize).and_then(|p| p.twin.as_mut()) {
                    Some(t) => t.tx.push(m),
                    None => drop(m),
                }
            }
        }
        for (i, p) in self.ports.iter_mut().enumerate() {
            let Some(t) = &mut p.twin else { continue };
            t.tx.flush();
            for _ in 0..KNI_BURSTS_PER_ROUND {
                if t.rx.rx_burst(&mut b) == 0 {
                    break;
                }
                moved = true;
                for m in b.as_mut_slice().iter_mut().flatten() {
                    m.set_port(i as u16);
                }
                // A full ring drops what does not fit (the burst frees it).
                self.kni_down.enqueue_burst(&mut b);
                b.clear();
            }
        }
        moved
    }

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

    /// Makes each twin's link follow its port's.
    pub(super) fn mirror_links(&mut self) {
        for p in &mut self.ports {
            let up = p.port.link().map(|l| l.up).unwrap_or(false);
            if let Some(t) = &mut p.twin {
                if t.link_up != up && t.port.set_link(up).is_ok() {
                    tracing::info!(port = %p.name, twin = %t.ifname, up, "twin link follows the port");
                    t.link_up = up;
                }
            }
        }
    }
}
