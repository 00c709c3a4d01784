//! Requests and replies. Operation names (`op`) and reply kinds (`result`) are
//! snake_case and stable; fields are added, never renamed.
//!
//! A request field rvsd does not know is refused by name (`deny_unknown_fields` on every
//! request and on every configuration type it carries), never dropped: a misspelt
//! option, or one only a newer rvsd honours, must not become a request that silently
//! does less. Listing views tolerate added fields; the configuration types they carry
//! back do not, so an older client cannot save a service without a setting it does not
//! know.

use std::net::IpAddr;

use fnat::engine::listing::ConnInfo;
use fnat::service::{RealServerConfig, ServiceConfig, ServiceKey};
use fnat::stats::Counters;
use fnat::tcp_state::Timeouts;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use wire::EthernetAddress;

use crate::error::ErrorCode;
use crate::PROTOCOL_VERSION;

/// A request with its protocol version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestMsg {
    /// Protocol version ([`PROTOCOL_VERSION`]).
    pub v: u32,
    /// The request.
    #[serde(flatten)]
    pub req: Request,
}

/// A reply with its protocol version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseMsg {
    /// Protocol version ([`PROTOCOL_VERSION`]).
    pub v: u32,
    /// The reply.
    #[serde(flatten)]
    pub resp: Response,
}

impl From<Request> for RequestMsg {
    fn from(req: Request) -> Self {
        RequestMsg { v: PROTOCOL_VERSION, req }
    }
}

impl From<Response> for ResponseMsg {
    fn from(resp: Response) -> Self {
        ResponseMsg { v: PROTOCOL_VERSION, resp }
    }
}

/// A service with its local addresses, as set and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The service and its real servers.
    pub service: ServiceConfig,
    /// Its local addresses (LIPs).
    #[serde(default)]
    pub laddrs: Vec<IpAddr>,
}

/// Which fields of a real server an edit changes (`None` = keep).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerEdit {
    /// New weight.
    #[serde(default)]
    pub weight: Option<u32>,
    /// New upper threshold.
    #[serde(default)]
    pub upper: Option<u32>,
    /// New lower threshold.
    #[serde(default)]
    pub lower: Option<u32>,
    /// New forwarding method.
    #[serde(default)]
    pub fwd: Option<fnat::types::FwdMode>,
}

/// Where a connection listing continues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnCursor {
    /// The worker to continue with.
    pub worker: u16,
    /// The position in that worker's table.
    pub pos: u32,
}

/// Route scopes on the wire (`global`, `link`, `kni_host`): the network layer's one
/// definition.
pub use netstack::Scope as RouteScope;

/// A route as set and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Destination prefix.
    pub prefix: IpNet,
    /// Gateway.
    #[serde(default)]
    pub via: Option<IpAddr>,
    /// Port name; empty when adding: the port whose connected subnet holds `via`.
    #[serde(default)]
    pub dev: String,
    /// Scope.
    #[serde(default)]
    pub scope: RouteScope,
    /// Preferred source.
    #[serde(default)]
    pub src: Option<IpAddr>,
    /// Metric (lower wins).
    #[serde(default)]
    pub metric: u32,
    /// Derived from an address (listing only).
    #[serde(default)]
    pub connected: bool,
}

/// What `link set` changes (`None` = keep).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkChange {
    /// Administrative state.
    #[serde(default)]
    pub up: Option<bool>,
    /// Promiscuous reception.
    #[serde(default)]
    pub promisc: Option<bool>,
    /// Copy everything received to the kernel twin.
    #[serde(default)]
    pub forward2kni: Option<bool>,
    /// A new MAC for the port (dpip's `link set DEV addr MAC`): its kernel twin takes it
    /// too, and gratuitous ARPs announce it for the port's IPv4 addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<EthernetAddress>,
}

/// How [`Request::EdgeDeny`] changes the global deny list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeDenyOp {
    /// Replace the whole list.
    Set,
    /// Add prefixes (ones already there change nothing).
    Add,
    /// Delete prefixes (each must be there).
    Del,
}

/// Every request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Version, generation, workers.
    Status {},
    /// Services with real servers (and counters when `stats`).
    ServiceList {
        /// Include counters.
        #[serde(default)]
        stats: bool,
    },
    /// One page of the services, in configuration order, so that any number of them can
    /// be listed and saved (a whole [`Request::ServiceList`] of a large site exceeds
    /// [`crate::MAX_MESSAGE_BYTES`]).
    ServicePage {
        /// Include counters.
        #[serde(default)]
        stats: bool,
        /// The position of the first service in the page (start: 0).
        #[serde(default)]
        from: u32,
        /// Most services in the page (at most [`MAX_SERVICE_PAGE`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u32>,
    },
    /// Adds a service (its real servers may be included).
    ServiceAdd(ServiceSpec),
    /// Changes a service's scheduler, persistence, ... (real servers and LIPs kept).
    ServiceEdit {
        /// The new settings; `real_servers` is ignored.
        service: ServiceConfig,
    },
    /// Deletes a service (its connections drain).
    ServiceDel {
        /// Which.
        key: ServiceKey,
    },
    /// Replaces every service at once (`rvsadm -R`; an empty list is `-C`), and with
    /// `snat` every SNAT rule too, in the same generation.
    ServiceReplace {
        /// The new set.
        services: Vec<ServiceSpec>,
        /// The new SNAT rules (`rvsadm -R`, `-C`); absent: the SNAT rules stay as they
        /// are (the agent's services from keepalived.conf).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snat: Option<Vec<crate::SnatSpec>>,
    },
    /// Holds a part of a service set too large for one message, under `stage` (a number
    /// the client picks), for a later [`Request::ServiceReplaceStaged`]. Nothing changes
    /// yet; a stage not committed within [`STAGE_TTL_SECS`](crate::STAGE_TTL_SECS) is forgotten.
    ServiceStage {
        /// The client's number for this set.
        stage: u64,
        /// The next services of the set, in order.
        services: Vec<ServiceSpec>,
    },
    /// Replaces every service at once with the parts staged under `stage` (in the order
    /// they arrived): one generation, validated whole, as [`Request::ServiceReplace`].
    ServiceReplaceStaged {
        /// The stage to commit.
        stage: u64,
        /// As in [`Request::ServiceReplace`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snat: Option<Vec<crate::SnatSpec>>,
    },
    /// Adds a real server.
    RealServerAdd {
        /// The service.
        key: ServiceKey,
        /// The server.
        rs: RealServerConfig,
    },
    /// Edits a real server.
    RealServerEdit {
        /// The service.
        key: ServiceKey,
        /// Its address.
        addr: IpAddr,
        /// Its port.
        port: u16,
        /// What changes.
        change: RealServerEdit,
    },
    /// Removes a real server (drains; see `expire_nodest`).
    RealServerDel {
        /// The service.
        key: ServiceKey,
        /// Its address.
        addr: IpAddr,
        /// Its port.
        port: u16,
    },
    /// Adds a local address to a service.
    LaddrAdd {
        /// The service.
        key: ServiceKey,
        /// The LIP (must be a `sapool` address).
        addr: IpAddr,
    },
    /// Removes a local address from a service.
    LaddrDel {
        /// The service.
        key: ServiceKey,
        /// The LIP.
        addr: IpAddr,
    },
    /// Adds prefixes to, or deletes them from, a service's deny list (DPVS's blacklist,
    /// `rvsadm --add-blklst`) or allow list (whitelist, `--add-whtlst`).
    ServiceAcl {
        /// The service.
        key: ServiceKey,
        /// The allow list (else the deny list).
        allow: bool,
        /// Add (else delete).
        add: bool,
        /// The prefixes.
        prefixes: Vec<IpNet>,
    },
    /// Changes the global deny list (`rvsip deny add|del|set|flush`); the set is
    /// rebuilt whole.
    EdgeDeny {
        /// Replace the list, add to it, or delete from it.
        change: EdgeDenyOp,
        /// The prefixes.
        prefixes: Vec<IpNet>,
    },
    /// The global deny list, a page at a time, in its order. Without `max` (the
    /// original, field-less form of this request), one page of up to
    /// [`MAX_DENY_PAGE`].
    EdgeDenyList {
        /// The position of the page's first prefix (start: 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<u32>,
        /// Most prefixes in the page (at most [`MAX_DENY_PAGE`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u32>,
    },
    /// The rules that mark new flows for fwmark services (`rvsip fwmark show`).
    FwmarkList {},
    /// Adds a fwmark rule at the end of the list (`rvsip fwmark add MARK MATCH`).
    /// Refused if the same rule is there already.
    FwmarkAdd {
        /// The rule.
        rule: fnat::fwmark::FwmarkRule,
    },
    /// Deletes a fwmark rule (`rvsip fwmark del MARK MATCH`); connections it opened
    /// keep their service until they end.
    FwmarkDel {
        /// The rule.
        rule: fnat::fwmark::FwmarkRule,
    },
    /// The SNAT rules (`rvsadm -L` lists them after the services).
    SnatList {},
    /// Adds a SNAT rule (`rvsadm -A -H MATCH`), with the WAN addresses given (none yet
    /// is allowed: the rule then takes nothing). Refused if a rule has the same match.
    SnatAdd {
        /// The rule.
        rule: crate::SnatSpec,
    },
    /// Deletes the SNAT rule with this match (`rvsadm -D -H MATCH`); its connections
    /// keep their WAN address and port until they end.
    SnatDel {
        /// The match (its name and WAN addresses are not looked at).
        rule: crate::SnatSpec,
    },
    /// Adds a WAN address to, or removes one from, the SNAT rule with this match
    /// (`rvsadm -a|-d -H MATCH -r WAN:0 -J`).
    SnatWan {
        /// The match.
        rule: crate::SnatSpec,
        /// The WAN address (a `sapool` address).
        wan: IpAddr,
        /// Add (else remove).
        add: bool,
    },
    /// Starts or stops a connection-sync role (`rvsadm --start-daemon master|backup`,
    /// `--stop-daemon`; keepalived's `lvs_sync_daemon` on VRRP transitions). The key,
    /// peers and group come from rvsd's `[sync]`; `syncid` and `mcast_interface`, when
    /// given, must agree with it. Answered `Done` (audited as a change).
    SyncDaemon {
        /// The role.
        role: SyncRole,
        /// Start (else stop).
        start: bool,
        /// ipvsadm's `--syncid`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        syncid: Option<u8>,
        /// ipvsadm's `--mcast-interface` (a kernel interface name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mcast_interface: Option<String>,
    },
    /// The connection-sync roles running (`rvsadm -L --daemon`).
    SyncDaemons {},
    /// Zeroes counters: every counter, or one service's and its real servers'.
    ZeroCounters {
        /// Only this service (`ipvsadm -Z -t VIP:PORT`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<ServiceKey>,
    },
    /// One page of connections, or of persistence templates.
    ConnList {
        /// Where to continue (start: default).
        #[serde(default)]
        cursor: ConnCursor,
        /// Most connections in the page.
        max: u32,
        /// List the persistence templates instead (`rvsadm -lnc --persistent-conn`, as
        /// DPVS's ipvsadm), each as a connection in state `NONE` marked `template`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        templates: bool,
    },
    /// The connection timeouts.
    TimeoutsGet {},
    /// Sets timeouts like `ipvsadm --set tcp tcpfin udp` (0 keeps a value).
    TimeoutsSet {
        /// ESTABLISHED.
        tcp: u32,
        /// FIN_WAIT.
        tcpfin: u32,
        /// UDP.
        udp: u32,
    },
    /// Ports (with counters when `stats`).
    LinkList {
        /// Include counters.
        #[serde(default)]
        stats: bool,
    },
    /// VLAN sub-interfaces (`rvsip vlan show`).
    VlanList {},
    /// Adds a VLAN sub-interface (`rvsip vlan add dpdk0.100 link dpdk0 id 100`, as dpip).
    VlanAdd {
        /// Its name.
        name: String,
        /// The port it is on.
        link: String,
        /// The VLAN id (1 to 4094).
        id: u16,
    },
    /// Removes a VLAN sub-interface (refused while addresses, routes or static
    /// neighbours use it).
    VlanDel {
        /// Its name.
        name: String,
    },
    /// Changes a port.
    LinkSet {
        /// Port name.
        dev: String,
        /// What changes.
        change: LinkChange,
    },
    /// Adds an address to a port.
    AddrAdd {
        /// Port name.
        dev: String,
        /// Address and prefix.
        addr: IpNet,
        /// A local address for FullNAT (dpip's `sapool`).
        #[serde(default)]
        sapool: bool,
        /// Held only while the control connection that added it stays open: rvsd
        /// removes it when that connection closes (a VRRP agent's VIPs leave with a
        /// crashed agent instead of lingering on a box that no longer defends them).
        /// Adding a leased address again, as it is (port, prefix, sapool), with a lease
        /// takes the lease over: it is the new connection's from then on (rvs-agent after
        /// it reconnects), and only that connection's close removes it; one the
        /// configuration file declares (a SIGHUP made it the file's) stays.
        #[serde(default)]
        lease: bool,
    },
    /// Removes an address.
    AddrDel {
        /// Port name.
        dev: String,
        /// The address.
        addr: IpAddr,
    },
    /// Addresses.
    AddrList {},
    /// Adds a route.
    RouteAdd(RouteSpec),
    /// Removes a route.
    RouteDel {
        /// Its prefix.
        prefix: IpNet,
        /// Its metric, if several share the prefix.
        #[serde(default)]
        metric: Option<u32>,
    },
    /// Routes.
    RouteList {},
    /// Adds a static neighbour.
    NeighAdd {
        /// Address.
        addr: IpAddr,
        /// MAC.
        mac: EthernetAddress,
        /// Port name.
        dev: String,
    },
    /// Removes a neighbour.
    NeighDel {
        /// Address.
        addr: IpAddr,
    },
    /// Neighbours, by address, a page at a time. Without `max` (the original,
    /// field-less form of this request), one page of up to [`MAX_NEIGH_PAGE`].
    NeighList {
        /// List the neighbours after this address (start: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<IpAddr>,
        /// Most neighbours in the page (at most [`MAX_NEIGH_PAGE`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u32>,
    },
    /// Per-worker statistics.
    WorkerStats {},
    /// Announces an address from the port that owns it: gratuitous ARP (IPv4) or
    /// unsolicited neighbour advertisements (IPv6), `count` of them now (the VRRP
    /// agent calls this on becoming master, and again per garp_master_repeat/refresh).
    SendGarp {
        /// The address to announce (usually a VIP).
        addr: IpAddr,
        /// The port to send from.
        dev: String,
        /// How many to send now (1..=100).
        #[serde(default = "one")]
        count: u32,
    },
    /// Captures frames of a port into a pcapng file that rvsd writes; the reply comes
    /// when `count` frames are written or `timeout_s` has passed.
    Capture {
        /// Port name.
        dev: String,
        /// Direction.
        #[serde(default)]
        dir: CaptureDir,
        /// Frames to capture.
        #[serde(default = "capture_count")]
        count: u32,
        /// tcpdump-style filter (a subset; empty = everything).
        #[serde(default)]
        filter: String,
        /// Absolute path of the pcapng file to write.
        path: String,
        /// Seconds to wait at most.
        #[serde(default = "capture_timeout")]
        timeout_s: u32,
    },
}

fn one() -> u32 {
    1
}

fn capture_count() -> u32 {
    100
}

fn capture_timeout() -> u32 {
    30
}

/// Which direction a capture records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureDir {
    /// What the port receives.
    Rx,
    /// What the port sends.
    Tx,
    /// Both.
    #[default]
    Both,
}

/// A real server as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerView {
    /// Its configuration.
    pub config: RealServerConfig,
    /// Active connections (ESTABLISHED), all workers.
    pub active: u64,
    /// Inactive connections (other states), all workers.
    pub inactive: u64,
    /// Persistence templates pointing to it, all workers (ipvsadm's `PersistConn`).
    #[serde(default)]
    pub persist: u64,
    /// Counters, when asked for.
    #[serde(default)]
    pub stats: Option<Counters>,
    /// Taken out of scheduling by the service's passive check (`dest_check`): weight 0
    /// until its time out ends, `config.weight` kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inhibited: bool,
}

/// A service as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Its configuration (real servers in `real_servers` order matches `dests`).
    pub service: ServiceConfig,
    /// Its local addresses.
    pub laddrs: Vec<IpAddr>,
    /// Its real servers with their connection counts.
    pub dests: Vec<RealServerView>,
    /// Counters, when asked for.
    #[serde(default)]
    pub stats: Option<Counters>,
}

/// Port counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Missed (no descriptor).
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive buffer allocation failures.
    pub rx_nombuf: u64,
    /// Packets received per queue.
    pub q_ipackets: Vec<u64>,
    /// Packets sent per queue.
    pub q_opackets: Vec<u64>,
}

/// A VLAN sub-interface as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlanView {
    /// Its name (`dpdk0.100`).
    pub name: String,
    /// The port it is on.
    pub link: String,
    /// The VLAN id.
    pub id: u16,
    /// Its kernel twin's interface, if it has one (`dpdk0.100.kni`).
    pub twin: Option<String>,
}

/// A port as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    /// Port id.
    pub id: u16,
    /// Name (`dpdk0`).
    pub name: String,
    /// DPDK device name.
    pub device: String,
    /// Driver.
    pub driver: String,
    /// MAC.
    pub mac: EthernetAddress,
    /// MTU.
    pub mtu: u16,
    /// Link up.
    pub up: bool,
    /// Speed in Mb/s.
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
    /// Promiscuous.
    pub promisc: bool,
    /// forward2kni on.
    pub forward2kni: bool,
    /// Receive queues.
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// NUMA socket.
    pub socket: i32,
    /// For a bond: its mode and slaves.
    #[serde(default)]
    pub bond: Option<BondView>,
    /// Counters, when asked for.
    #[serde(default)]
    pub stats: Option<LinkStats>,
}

/// A bond's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondView {
    /// `active-backup`, `lacp`, ...
    pub mode: String,
    /// balance-xor and lacp: the transmit hash policy (`layer2`, `layer2+3`, `layer3+4`).
    #[serde(default)]
    pub xmit_policy: Option<String>,
    /// Index of the current primary slave (in active-backup: the one carrying traffic).
    pub primary: Option<usize>,
    /// The slaves.
    pub slaves: Vec<SlaveView>,
}

/// One slave of a bond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaveView {
    /// DPDK device name.
    pub device: String,
    /// Its link is up.
    pub up: bool,
    /// It carries traffic now.
    pub active: bool,
}

/// An address as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrView {
    /// Port name.
    pub dev: String,
    /// Address and prefix.
    pub addr: IpNet,
    /// A LIP.
    pub sapool: bool,
    /// A service's VIP.
    pub vip: bool,
}

/// Most services in one listing page: a service with its real servers and counters is
/// a few hundred bytes plus about 200 per real server, so a page of 100 stays far below
/// [`crate::MAX_MESSAGE_BYTES`] unless its services hold thousands of servers each.
pub const MAX_SERVICE_PAGE: u32 = 100;

/// Most neighbours in one listing page (about 100 bytes each on the wire: far below
/// [`crate::MAX_MESSAGE_BYTES`]).
pub const MAX_NEIGH_PAGE: u32 = 10_000;

/// Most prefixes in one page of the global deny list (at most about 46 bytes each on
/// the wire: about half of [`crate::MAX_MESSAGE_BYTES`]); the list holds up to a
/// million.
pub const MAX_DENY_PAGE: u32 = 50_000;

/// A neighbour as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighView {
    /// Address.
    pub addr: IpAddr,
    /// MAC.
    pub mac: EthernetAddress,
    /// Port name.
    pub dev: String,
    /// `static`, `reachable` or `probe` (being re-confirmed).
    pub state: String,
}

/// One worker's statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    /// Worker id.
    pub id: u16,
    /// Its lcore.
    pub lcore: u32,
    /// The configuration generation it runs.
    pub gen: u64,
    /// Live connections.
    pub conns: u64,
    /// Of them, those that give way first (half-open, unproven, synced copies).
    #[serde(default)]
    pub tables: fnat::stats::TableGauges,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Core totals.
    pub totals: Counters,
    /// Loop iterations since start.
    pub loops: u64,
    /// Iterations that received packets.
    pub busy_loops: u64,
    /// Drops by reason (core and network layer), non-zero only.
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// A connection-sync role (ipvsadm's sync daemon states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncRole {
    /// Announces this box's connections to its peers.
    Master,
    /// Installs the peers' connections.
    Backup,
}

impl SyncRole {
    /// ipvsadm's name for it (`master`, `backup`).
    pub fn name(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        }
    }
}

impl std::str::FromStr for SyncRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "master" => Ok(SyncRole::Master),
            "backup" => Ok(SyncRole::Backup),
            _ => Err(format!("sync daemon state {s:?}: master or backup")),
        }
    }
}

/// A connection-sync role that runs (`rvsadm -L --daemon`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemonView {
    /// The role.
    pub role: SyncRole,
    /// The sync id.
    pub syncid: u8,
    /// The multicast group and interface address (`224.0.0.81:8848 on 10.0.0.1`), or
    /// the unicast peers, from `[sync]`.
    pub transport: String,
    /// The largest message, in bytes.
    pub maxlen: u32,
}

/// Every reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// A change was applied: every worker runs generation `gen`.
    Done {
        /// The generation now running.
        gen: u64,
    },
    /// A part of a service set is held ([`Request::ServiceStage`]).
    Staged {
        /// The stage.
        stage: u64,
        /// Services held under it so far.
        services: u64,
    },
    /// Status.
    Status {
        /// rvsd's version.
        version: String,
        /// The newest generation.
        gen: u64,
        /// The generation each worker runs.
        worker_gens: Vec<u64>,
        /// Connection pool size per worker.
        conn_pool_size: u32,
        /// Seconds since start.
        uptime_s: u64,
        /// When this rvsd process started, in nanoseconds since the Unix epoch: another
        /// value on a later connection means rvsd restarted (its state is rvsd.toml's
        /// again), which the uptime's whole seconds cannot tell apart from a reconnection.
        /// 0 from an rvsd that does not say.
        #[serde(default)]
        started_ns: u64,
        /// When rvsd last built its state from its configuration file (at start, and at
        /// each SIGHUP applied), in nanoseconds since the Unix epoch: another value means
        /// what clients changed since was replaced by the file's (but for the addresses
        /// live connections leased). 0 from an rvsd that does not say.
        #[serde(default)]
        loaded_ns: u64,
    },
    /// Services.
    Services {
        /// The services.
        services: Vec<ServiceView>,
    },
    /// The connection-sync roles running.
    SyncDaemons {
        /// Master first.
        daemons: Vec<SyncDaemonView>,
    },
    /// A page of services.
    ServicePage {
        /// The services.
        services: Vec<ServiceView>,
        /// The position of the next page; `None` at the end.
        next: Option<u32>,
        /// The generation listed: pages of different generations do not belong together.
        gen: u64,
    },
    /// A page of connections.
    Conns {
        /// The connections.
        conns: Vec<ConnInfo>,
        /// Where the next page starts; `None` at the end.
        next: Option<ConnCursor>,
    },
    /// Timeouts.
    Timeouts {
        /// The values.
        timeouts: Timeouts,
    },
    /// A page of the global deny list.
    EdgeDeny {
        /// Its prefixes, as given.
        prefixes: Vec<IpNet>,
        /// Where the next page starts (the `from` of the next request); `None` at the end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<u32>,
    },
    /// The fwmark rules, in the order they are tried.
    Fwmark {
        /// The rules.
        rules: Vec<fnat::fwmark::FwmarkRule>,
    },
    /// The SNAT rules, in the order they are tried, each with its name.
    Snat {
        /// The rules.
        rules: Vec<crate::SnatSpec>,
    },
    /// Ports.
    Links {
        /// The ports.
        links: Vec<LinkView>,
    },
    /// VLAN sub-interfaces.
    Vlans {
        /// The sub-interfaces.
        vlans: Vec<VlanView>,
    },
    /// Addresses.
    Addrs {
        /// The addresses.
        addrs: Vec<AddrView>,
    },
    /// Routes.
    Routes {
        /// The routes.
        routes: Vec<RouteSpec>,
    },
    /// A page of neighbours, by address.
    Neighs {
        /// The neighbours.
        neighs: Vec<NeighView>,
        /// Where the next page starts (the `after` of the next request); `None` at the end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<IpAddr>,
    },
    /// Worker statistics.
    Workers {
        /// One per worker.
        workers: Vec<WorkerView>,
    },
    /// A capture finished.
    Captured {
        /// Frames written.
        packets: u64,
        /// The file.
        path: String,
    },
    /// The request failed; nothing was changed.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
    },
}

impl Response {
    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error { code, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnat::types::Proto;

    #[test]
    fn wire_form_is_tagged_and_versioned() {
        let key = ServiceKey::new(Proto::Tcp, "198.18.0.100".parse().unwrap(), 80);
        let msg = RequestMsg::from(Request::ServiceDel { key });
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["op"], "service_del");
        assert_eq!(json["key"]["vip"], "198.18.0.100");
        let back: RequestMsg = serde_json::from_value(json).unwrap();
        assert_eq!(back, msg);

        let r = ResponseMsg::from(Response::error(ErrorCode::NotFound, "no service tcp 198.18.0.100:81"));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"v":1,"result":"error","code":"not_found","message":"no service tcp 198.18.0.100:81"}"#);
    }

    #[test]
    fn deny_listing_pages_and_keeps_the_old_form() {
        let old: RequestMsg = serde_json::from_str(r#"{"v":1,"op":"edge_deny_list"}"#).unwrap();
        assert_eq!(old.req, Request::EdgeDenyList { from: None, max: None });
        assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"v":1,"op":"edge_deny_list"}"#);
        let paged = RequestMsg::from(Request::EdgeDenyList { from: Some(50_000), max: Some(1000) });
        let json = serde_json::to_value(&paged).unwrap();
        assert_eq!((json["from"].as_u64(), json["max"].as_u64()), (Some(50_000), Some(1000)));
        let last =
            serde_json::to_string(&ResponseMsg::from(Response::EdgeDeny { prefixes: vec![], next: None })).unwrap();
        assert_eq!(last, r#"{"v":1,"result":"edge_deny","prefixes":[]}"#, "the last page looks like the old reply");
        // A page of the longest prefixes fits a message, with room to spare.
        let longest: IpNet = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128".parse().unwrap();
        let page = Response::EdgeDeny { prefixes: vec![longest; MAX_DENY_PAGE as usize], next: Some(1) };
        let len = serde_json::to_string(&ResponseMsg::from(page)).unwrap().len();
        assert!(len < crate::MAX_MESSAGE_BYTES * 2 / 3, "{len} bytes");
    }

    #[test]
    fn neighbour_listing_pages_and_keeps_the_old_form() {
        // The original request had no fields; it still parses, and is written the same.
        let old: RequestMsg = serde_json::from_str(r#"{"v":1,"op":"neigh_list"}"#).unwrap();
        assert_eq!(old.req, Request::NeighList { after: None, max: None });
        assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"v":1,"op":"neigh_list"}"#);
        let paged = RequestMsg::from(Request::NeighList { after: Some("198.18.0.7".parse().unwrap()), max: Some(500) });
        let json = serde_json::to_value(&paged).unwrap();
        assert_eq!((json["after"].as_str(), json["max"].as_u64()), (Some("198.18.0.7"), Some(500)));
        assert_eq!(serde_json::from_value::<RequestMsg>(json).unwrap(), paged);
        // The last page looks like the old reply.
        let last = serde_json::to_string(&ResponseMsg::from(Response::Neighs { neighs: vec![], next: None })).unwrap();
        assert_eq!(last, r#"{"v":1,"result":"neighs","neighs":[]}"#);
        let old_reply: ResponseMsg = serde_json::from_str(r#"{"v":1,"result":"neighs","neighs":[]}"#).unwrap();
        assert_eq!(old_reply.resp, Response::Neighs { neighs: vec![], next: None });
    }

    #[test]
    fn unknown_operation_is_an_error() {
        assert!(serde_json::from_str::<RequestMsg>(r#"{"v":1,"op":"launch_missiles"}"#).is_err());
    }

    /// A field rvsd does not know is refused with its name, at any depth and in every
    /// shape of request (one without fields, with fields, and one whose body is a whole
    /// service), never dropped: a misspelt option or one only a newer rvsd honours must not
    /// turn into a request that silently does less (`addr_del` once had `lease`).
    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let service = r#""service":{"proto":"tcp","vip":"198.18.0.100","vport":80"#;
        for (line, field) in [
            (r#"{"v":1,"op":"status","verbose":true}"#.to_string(), "verbose"),
            (r#"{"v":1,"op":"addr_del","dev":"dpdk0","addr":"198.18.0.100","lease":true}"#.into(), "lease"),
            (format!(r#"{{"v":1,"op":"service_add",{service},"schedular":"wrr"}}}}"#), "schedular"),
            (format!(r#"{{"v":1,"op":"service_add",{service}}},"lips":[]}}"#), "lips"),
            (
                format!(r#"{{"v":1,"op":"service_edit",{service},"persistence":{{"timeout_s":60,"mask":24}}}}}}"#),
                "mask",
            ),
            (
                r#"{"v":1,"op":"real_server_add","key":{"proto":"tcp","vip":"198.18.0.100","vport":80},
                   "rs":{"addr":"10.0.0.1","port":80,"wieght":5}}"#
                    .into(),
                "wieght",
            ),
            (r#"{"v":1,"op":"route_add","prefix":"10.0.0.0/8","gw":"10.0.0.1"}"#.into(), "gw"),
            (r#"{"v":1,"op":"link_set","dev":"dpdk0","change":{"mtu":9000}}"#.into(), "mtu"),
            (r#"{"v":1,"op":"conn_list","max":10,"cursor":{"worker":0,"pos":0,"page":1}}"#.into(), "page"),
        ] {
            let e = serde_json::from_str::<RequestMsg>(&line).expect_err(&line).to_string();
            assert!(e.contains(&format!("unknown field `{field}`")), "{line}: {e}");
        }
        // What every client sends is still taken, with `v` beside the operation.
        let ok = format!(r#"{{"v":1,"op":"service_add",{service},"sched":"wrr"}},"laddrs":[]}}"#);
        assert!(matches!(serde_json::from_str::<RequestMsg>(&ok).unwrap().req, Request::ServiceAdd(_)));
        let status = serde_json::to_string(&RequestMsg::from(Request::Status {})).unwrap();
        assert_eq!(status, r#"{"v":1,"op":"status"}"#);
    }
}
