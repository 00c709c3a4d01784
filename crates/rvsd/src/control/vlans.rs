//! VLAN sub-interfaces while rvsd runs: `rvsip vlan show|add|del`, as dpip's `vlan`.
//! A sub-interface is a port numbered after the physical ones (those of `[[vlan]]` at
//! start first); one that is deleted keeps its number, empty, so the numbers the
//! addresses, routes and neighbours of the others use never change.

use ctl::verbs::Refused;
use ctl::{ErrorCode, Response, VlanView};

use super::Control;
use crate::config::{check_vlan_id, check_vlan_name, TwinKind};
use crate::shared::PortView;
use crate::twin::{Twin, VlanHandle};

impl Control {
    /// The sub-interfaces, in port order.
    pub(super) fn vlan_views(&self) -> Vec<VlanView> {
        self.vlans
            .iter()
            .filter(|v| !v.name.is_empty())
            .map(|v| VlanView {
                name: v.name.clone(),
                link: self.ports[v.parent].name.clone(),
                id: v.id,
                twin: v.twin.as_ref().map(|t| t.ifname.clone()),
            })
            .collect()
    }

    /// Adds sub-interface `name`, VLAN `id` on port `link`, with a kernel twin when the
    /// port has one.
    pub(super) fn vlan_add(&mut self, name: &str, link: &str, id: u16) -> Result<Response, Refused> {
        check_vlan_name(name).map_err(|p| Refused::new(ErrorCode::Invalid, p))?;
        check_vlan_id(id).map_err(|p| Refused::new(ErrorCode::Invalid, p))?;
        if self.state.port(name).is_ok() {
            return Err(Refused::new(ErrorCode::Exists, format!("a port named {name} exists")));
        }
        let parent = self.state.port(link)?;
        if parent >= self.ports.len() {
            return Err(Refused::new(ErrorCode::Invalid, format!("{link} is a VLAN: VLANs go on ports (no QinQ)")));
        }
        if let Some(v) = self.vlans.iter().find(|v| !v.name.is_empty() && v.parent == parent && v.id == id) {
            return Err(Refused::new(ErrorCode::Exists, format!("VLAN {id} on {link} exists: {}", v.name)));
        }
        let index = self.ports.len() + self.vlans.len();
        if index > usize::from(u16::MAX) {
            return Err(Refused::new(ErrorCode::Invalid, "no more port numbers"));
        }
        let snap = self.shared.current();
        let up = &snap.ports[parent];
        let kind = self.ports[parent].twin.as_ref().map_or(TwinKind::None, |t| t.kind);
        let twin = Twin::create(index, name, kind, up.mtu, &[], up.mac, &self.pool)
            .map_err(|e| Refused::new(ErrorCode::Internal, format!("{name}: kernel twin: {e:#}")))?;
        let mut ports = (*snap.ports).clone();
        ports.push(PortView {
            name: name.into(),
            mac: up.mac,
            mtu: up.mtu,
            forward2kni: false,
            twin: twin.is_some(),
            vlan: Some(frame::Vlan { parent, id }),
            capture: None,
        });
        self.vlans.push(VlanHandle { name: name.into(), parent, id, twin });
        self.state.port_names.push(name.into());
        tracing::info!(vlan = name, port = link, id, "VLAN sub-interface added");
        let gen = self.publish_ports(ports);
        Ok(self.confirm(gen))
    }

    /// Removes sub-interface `name`, once nothing configured uses it.
    pub(super) fn vlan_del(&mut self, name: &str) -> Result<Response, Refused> {
        let index = self.state.port(name)?;
        let Some(j) = index.checked_sub(self.ports.len()) else {
            return Err(Refused::new(ErrorCode::Invalid, format!("{name} is a port, not a VLAN")));
        };
        let users = self.state.port_users(index, &self.neighs);
        if !users.is_empty() {
            return Err(Refused::new(ErrorCode::Invalid, format!("{name} is in use: {}", users.join(", "))));
        }
        let mut ports = (*self.shared.current().ports).clone();
        ports[index] = PortView {
            name: String::new(),
            twin: false,
            vlan: None,
            forward2kni: false,
            capture: None,
            ..ports[index].clone()
        };
        self.state.port_names[index] = String::new();
        self.publish_ports(ports);
        // Neighbours learned on it go with it.
        self.neighs.retain_learned(|_, e| e.port.0 as usize != index);
        let gen = self.publish_neighs();
        let done = self.confirm(gen);
        // The workers no longer send to its twin; frames still on the way are dropped.
        let v = &mut self.vlans[j];
        v.name.clear();
        v.twin = None;
        tracing::info!(vlan = name, "VLAN sub-interface removed");
        Ok(done)
    }
}
