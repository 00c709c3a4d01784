//! Listing connections for the control plane (`rvsadm -lnc`): the [`ConnInfo`] view of
//! a connection and [`Engine::list`], which pages through one worker's table; and its
//! persistence templates in the same form ([`Engine::list_templates`],
//! `rvsadm -lnc --persistent-conn`).
//!
//! This is control-path code (it allocates the page); it is kept out of the per-packet
//! path, and [`ConnInfo`] is also the control protocol's wire form of a connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::Engine;
use crate::conn::ConnFlags;
use crate::service::ServiceTable;
use crate::tcp_state::TcpState;
use crate::types::{Millis, Proto};

/// A connection as the control plane lists it (`ipvsadm -lnc`, DPVS style).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnInfo {
    /// The owning worker.
    pub worker: u16,
    /// Protocol.
    pub proto: Proto,
    /// TCP state (`None` for UDP).
    pub state: TcpState,
    /// Milliseconds until expiry.
    pub expires_ms: u64,
    /// Client.
    pub client: SocketAddr,
    /// Virtual service address.
    pub virt: SocketAddr,
    /// Local address.
    pub local: SocketAddr,
    /// Real server.
    pub real: SocketAddr,
    /// Service's stable id.
    pub svc: u32,
    /// Real server's stable id.
    pub rs: u32,
    /// The TOA option was inserted.
    pub toa: bool,
    /// How it is forwarded (under NAT and DR, `local` is the client).
    #[serde(default)]
    pub fwd: crate::types::FwdMode,
    /// Installed from a peer's sync message (see [`super::sync`]).
    #[serde(default)]
    pub synced: bool,
    /// A persistence template, not a connection: `client` is the masked client with
    /// port 0, `local` unspecified, `expires_ms` the template's time left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub template: bool,
}

impl ConnInfo {
    /// The state as ipvsadm prints it (`ESTABLISHED`, ..., `UDP`).
    pub fn state_name(&self) -> &'static str {
        if self.template {
            return "NONE";
        }
        match self.proto {
            Proto::Udp => "UDP",
            Proto::Icmp => "ICMP",
            Proto::Tcp => self.state.name(),
        }
    }
}

/// Slots of the connection pool one page of [`Engine::list`] looks at, at most: the
/// worker answers between packet bursts, so a page must not walk a pool of millions of
/// mostly empty slots (a sequential walk of 2^18 slots of 64 bytes: a few
/// milliseconds).
pub const LIST_SCAN_SLOTS: u32 = 1 << 18;

impl Engine {
    /// Up to `max` connections from slot `cursor` on, and the cursor to continue from
    /// (`None` at the end). A page looks at no more than [`LIST_SCAN_SLOTS`] slots, so
    /// in a sparse pool it may be short, or empty, with a cursor to go on from: a
    /// caller pages until the cursor is `None`. Control path (allocates the page).
    pub fn list(&self, cursor: u32, max: usize, now: Millis) -> (Vec<ConnInfo>, Option<u32>) {
        let mut out = Vec::with_capacity(max.min(4096));
        let end = cursor.saturating_add(LIST_SCAN_SLOTS);
        let mut i = cursor;
        while out.len() < max {
            let Some(r) = self.conns.next_live_in(i, end) else {
                return (out, self.conns.resume(end, 0));
            };
            let c = self.conns.get(r);
            out.push(ConnInfo {
                worker: self.worker,
                proto: c.proto(),
                state: c.state,
                expires_ms: c.expires(now).saturating_sub(now),
                client: SocketAddr::new(c.cip().ip(), c.cport()),
                virt: SocketAddr::new(c.vip().ip(), c.vport()),
                local: SocketAddr::new(c.lip().ip(), c.lport()),
                real: SocketAddr::new(c.rip().ip(), c.rport()),
                svc: self.svc_of(c.rs),
                rs: c.rs,
                toa: c.flags.has(ConnFlags::TOA_DONE),
                fwd: c.fwd(),
                synced: c.synced(),
                template: false,
            });
            i = r.index() + 1;
        }
        (out, self.conns.resume(i, end.saturating_sub(i)))
    }

    /// Up to `max` live persistence templates from position `cursor` of this worker's
    /// template table, as connections of `table`'s services (state `NONE`, the masked
    /// client with port 0, no local address), and the position to continue from
    /// (`None` at the end). A template whose server `table` no longer has is left out
    /// (it will not be used). Control path; see
    /// [`PersistTable::page`](crate::persist::PersistTable::page) for its cost.
    pub fn list_templates(
        &self,
        table: &ServiceTable,
        cursor: u32,
        max: usize,
        now: Millis,
    ) -> (Vec<ConnInfo>, Option<u32>) {
        let (page, next) = self.sched.templates().page(cursor, max, now);
        let out = page
            .into_iter()
            .filter_map(|t| {
                let (svc, d) = table.locate(t.rs)?;
                let service = table.get(svc).filter(|s| s.id == t.key.svc)?;
                let dest = service.dests.get(d)?;
                let k = service.key;
                let local = match k.vip {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                Some(ConnInfo {
                    worker: self.worker,
                    proto: k.proto,
                    state: TcpState::None,
                    expires_ms: t.expires_ms,
                    client: SocketAddr::new(t.key.client, 0),
                    virt: SocketAddr::new(k.vip, k.vport),
                    local: SocketAddr::new(local, 0),
                    real: SocketAddr::new(dest.addr, dest.port),
                    svc: service.id.0,
                    rs: t.rs.0,
                    toa: false,
                    fwd: dest.fwd,
                    synced: false,
                    template: true,
                })
            })
            .collect();
        (out, next)
    }
}
