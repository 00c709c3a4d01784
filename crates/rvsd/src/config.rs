//! rvsd's configuration file (TOML, every key documented in docs/CONFIG.md).
//!
//! Parsing is strict: unknown keys are errors. [`Config::load`] parses and then checks
//! the whole file, returning every problem found, each naming the file, the key and the
//! problem, so `rvsd --check-config` reports them all at once without touching hardware.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ctl::verbs::{self, Owned};
use ctl::ServiceSpec;
use fnat::persist::PersistConfig;
use fnat::sched::SchedKind;
use fnat::service::{RealServerConfig, ServiceConfig};
use fnat::tcp_state::Timeouts;
use fnat::types::Proto;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use wire::EthernetAddress;

/// The whole configuration of one rvsd.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// DPDK EAL settings.
    pub eal: EalConf,
    /// Packet buffer pool.
    #[serde(default)]
    pub mempool: MempoolConf,
    /// Worker lcores.
    pub workers: WorkersConf,
    /// Dataplane ports, in order: the first is `dpdk0`'s place in listings.
    #[serde(default, rename = "port")]
    pub ports: Vec<PortConf>,
    /// 802.1Q VLAN sub-interfaces of the ports (`[[vlan]]`, dpip's `vlan add`): each is
    /// a port of its own for addresses, routes, neighbours and its kernel twin.
    #[serde(default, rename = "vlan")]
    pub vlans: Vec<VlanConf>,
    /// Connection table and local-port settings.
    #[serde(default)]
    pub conn: ConnConf,
    /// Idle timeouts per TCP state and for UDP, in seconds.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Addresses owned by the dataplane (interface addresses, VIPs, LIPs).
    #[serde(default, rename = "addr")]
    pub addrs: Vec<AddrConf>,
    /// Static routes (connected routes come from the addresses).
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConf>,
    /// Static neighbours.
    #[serde(default, rename = "neigh")]
    pub neighs: Vec<NeighConf>,
    /// How learned neighbours are kept (`[neigh_defs]`, DPVS's section name).
    #[serde(default)]
    pub neigh_defs: NeighDefs,
    /// Virtual services loaded at start.
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceConf>,
    /// SNAT rules (`[[snat]]`, DPVS's SNAT service), tried in file order: connections
    /// hosts behind rvs open to the outside leave from a WAN address (keys: `name`,
    /// `proto`, `src_range`, `dst_range`, `iif`, `oif`, `wan`; see [`ctl::SnatSpec`]).
    #[serde(default, rename = "snat")]
    pub snat: Vec<ctl::SnatSpec>,
    /// Rules that mark new flows for fwmark services (`[[fwmark]]`: `mark`, `proto`,
    /// `src_range`, `dst_range`; see [`fnat::fwmark`]), tried in file order.
    #[serde(default)]
    pub fwmark: Vec<fnat::fwmark::FwmarkRule>,
    /// Control socket.
    #[serde(default)]
    pub control: ControlConf,
    /// How replies reach the worker owning their local port.
    #[serde(default)]
    pub steering: crate::steering::Steering,
    /// The SYN proxy: default mode and auto-mode thresholds (`[synproxy]`).
    #[serde(default)]
    pub synproxy: fnat::synproxy::SynProxyConfig,
    /// The global deny set (`[edge]`).
    #[serde(default)]
    pub edge: EdgeConf,
    /// Prometheus metrics over HTTP (`[metrics]`; none without the section).
    #[serde(default)]
    pub metrics: Option<MetricsConf>,
    /// Connection sync with peer balancers (`[sync]`; none without the section; see
    /// docs/HA.md).
    #[serde(default)]
    pub sync: Option<crate::sync::SyncConf>,
}

/// `[metrics]`: where rvsd serves `/metrics` to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConf {
    /// Address and port (`127.0.0.1:9469` by default: loopback only, as the control
    /// socket is local; put an address of the management network here to scrape from
    /// another host).
    pub listen: std::net::SocketAddr,
}

impl Default for MetricsConf {
    fn default() -> Self {
        MetricsConf { listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9469)) }
    }
}

/// `[neigh_defs]`: the learned neighbours' reachable time and how many a port holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighDefs {
    /// How long a learned neighbour stays reachable without confirmation, ms; before it
    /// runs out an entry in use is probed (unicast) and kept while it answers.
    #[serde(default = "default_reachable_ms")]
    pub reachable_ms: u64,
    /// The most learned neighbours per port (static ones are not counted); a full port
    /// evicts its least recently confirmed entry.
    #[serde(default = "default_max_per_port")]
    pub max_per_port: usize,
}

/// The most `[neigh_defs] max_per_port` may be.
pub const MAX_NEIGH_PER_PORT: usize = 65_536;

fn default_reachable_ms() -> u64 {
    netstack::neigh::DEFAULT_REACHABLE_MS
}

fn default_max_per_port() -> usize {
    netstack::neigh::DEFAULT_MAX_PER_PORT
}

impl Default for NeighDefs {
    fn default() -> NeighDefs {
        NeighDefs { reachable_ms: default_reachable_ms(), max_per_port: default_max_per_port() }
    }
}

/// `[edge]`: sources refused on every service (see `fnat::edge`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConf {
    /// Prefixes (`192.0.2.0/24`, `2001:db8::/32`).
    #[serde(default)]
    pub deny: Vec<IpNet>,
    /// A file of prefixes, one per line (a bare address is a host; `#` starts a
    /// comment); relative to the configuration file's directory.
    #[serde(default)]
    pub deny_file: Option<PathBuf>,
    /// `deny` and the file's prefixes, filled by [`Config::parse`].
    #[serde(skip)]
    pub loaded: Vec<IpNet>,
}

/// Keeps each prefix of a deny list once, where it first came (a list is shown in its
/// order).
pub fn keep_first(list: &mut Vec<IpNet>) {
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    list.retain(|p| seen.insert(*p));
}

/// Parses a deny file's text: one prefix or address per line, `#` comments, blank
/// lines ignored. The error names the line.
pub fn parse_prefix_lines(text: &str) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let net = l
            .parse::<IpNet>()
            .or_else(|_| l.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("line {}: {l:?} is not an address or prefix", i + 1))?;
        out.push(net);
    }
    Ok(out)
}

/// EAL settings. rvsd derives `-l`, `--vdev`, `-a` and `--no-pci` from the ports and
/// workers; `args` adds anything else (`--no-huge`, `-m`, `--log-level`, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EalConf {
    /// Extra EAL arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The lcore of the control thread.
    #[serde(default)]
    pub main_lcore: u32,
    /// `--file-prefix`, so several DPDK processes can share a machine.
    #[serde(default = "default_file_prefix")]
    pub file_prefix: String,
}

fn default_file_prefix() -> String {
    "rvs".into()
}

/// The packet buffer pool shared by all ports.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConf {
    /// Buffers (best as 2^n - 1).
    pub mbufs: u32,
    /// Per-lcore cache.
    pub cache: u32,
    /// Bytes per buffer including the 128-byte headroom.
    pub data_room: u16,
}

impl Default for MempoolConf {
    fn default() -> Self {
        MempoolConf { mbufs: 16383, cache: 256, data_room: 2176 }
    }
}

/// The worker lcores: worker `i` polls receive queue `i` of every port and sends on
/// transmit queue `i`, so every port gets as many queues as there are workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersConf {
    /// One lcore per worker.
    pub lcores: Vec<u32>,
    /// The CPU each worker lcore runs on (EAL `--lcores l@cpu`), when lcores are to
    /// share CPUs (testing on small machines); default: lcore n on CPU n.
    #[serde(default)]
    pub cpus: Option<Vec<u32>>,
    /// How an idle worker waits for packets: `busy` (spins: the lowest latency, a whole
    /// CPU per worker, for a dedicated box) or `adaptive` (after a run of empty polls it
    /// sleeps, backing off up to `max_sleep_us`; for a shared box).
    #[serde(default)]
    pub polling: crate::worker::Polling,
    /// `adaptive` only: the longest an idle worker sleeps between polls, µs (the most
    /// latency the first packet after a quiet spell can see).
    #[serde(default = "default_max_sleep_us")]
    pub max_sleep_us: u32,
    /// Frames all workers together hand up to each kernel twin a second, at most, but
    /// for the control protocols (0: no limit; see `frame::twin`).
    #[serde(default = "default_twin_up_pps")]
    pub twin_up_pps: u32,
    /// Frames of each control class (the link's protocols: VRRP, OSPF, single-hop BFD;
    /// neighbour resolution: ARP, NS/NA; routed ones: BGP, multihop BFD) each worker
    /// hands up to the twins a second, at most, all twins together (0: no limit).
    #[serde(default = "default_twin_control_pps")]
    pub twin_control_pps: u32,
}

fn default_max_sleep_us() -> u32 {
    500
}

fn default_twin_up_pps() -> u32 {
    200_000
}

fn default_twin_control_pps() -> u32 {
    50_000
}

/// A dataplane port: a PCI NIC or a virtual device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConf {
    /// The name operators use (`dpdk0`, `dpdk1`, ...).
    pub name: String,
    /// A virtual device string (`net_af_packet0,iface=eth1,qpairs=2`, `net_tap0,...`).
    #[serde(default)]
    pub vdev: Option<String>,
    /// A PCI address (`0000:01:00.0`); the EAL probes only the listed ones.
    #[serde(default)]
    pub pci: Option<String>,
    /// A bond of several devices (DPDK's bonding driver).
    #[serde(default)]
    pub bond: Option<BondConf>,
    /// Receive descriptors per queue.
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    /// Transmit descriptors per queue.
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// Spread receive traffic over the workers' queues by RSS.
    #[serde(default = "yes")]
    pub rss: bool,
    /// The MTU.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Receive frames for every destination MAC.
    #[serde(default)]
    pub promiscuous: bool,
    /// The kernel twin interface `<name>.kni` (same MAC as the port).
    #[serde(default)]
    pub twin: TwinKind,
    /// Addresses rvsd puts on the twin in the kernel when it creates it (the twin is
    /// new on every start), e.g. the source address of a VRRP agent on the twin.
    #[serde(default)]
    pub twin_addrs: Vec<IpNet>,
}

/// An 802.1Q VLAN sub-interface (DPVS: `dpip vlan add dpdk0.102 link dpdk0 id 102`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanConf {
    /// Its name (`dpdk0.102`; at most 11 characters: its kernel twin adds ".kni").
    /// Absent: `<link>.<id>`.
    #[serde(default)]
    pub name: Option<String>,
    /// The port it is on (a `[[port]]`'s name).
    pub link: String,
    /// The VLAN id, 1 to 4094.
    pub id: u16,
    /// Addresses rvsd puts on its kernel twin in the kernel (as a port's `twin_addrs`;
    /// it has a twin when its port has one).
    #[serde(default)]
    pub twin_addrs: Vec<IpNet>,
}

/// Whether `name` can name a VLAN sub-interface: 1-11 letters, digits, '.', '-' or '_'
/// (its kernel twin adds ".kni" within the kernel's 15 characters).
pub fn check_vlan_name(name: &str) -> Result<(), String> {
    match !name.is_empty()
        && name.len() <= 11
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        true => Ok(()),
        false => Err(format!("{name:?}: 1-11 letters, digits, '.', '-' or '_' (the kernel twin adds \".kni\")")),
    }
}

/// Whether `id` is a VLAN id a sub-interface can have (1 to 4094: 0 means untagged,
/// 4095 is reserved).
pub fn check_vlan_id(id: u16) -> Result<(), String> {
    match (1..=4094).contains(&id) {
        true => Ok(()),
        false => Err(format!("VLAN id {id} is outside 1..=4094")),
    }
}

impl VlanConf {
    /// Its name: the configured one, or `<link>.<id>`.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("{}.{}", self.link, self.id))
    }
}

/// A bond: its slaves (vdev strings or PCI addresses) and mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BondConf {
    /// `round-robin` (0), `active-backup` (1), `balance-xor` (2) or `lacp` (4, 802.3ad).
    pub mode: BondModeConf,
    /// The slave devices.
    pub slaves: Vec<String>,
    /// Index of the primary slave (active-backup).
    #[serde(default)]
    pub primary: usize,
    /// Link polling interval for slaves without link interrupts, in ms.
    #[serde(default = "default_monitor_ms")]
    pub monitor_ms: u32,
    /// How balance-xor and lacp bonds choose a packet's slave: `layer2` (DPDK's and
    /// Linux's default), `layer2+3` or `layer3+4` (Linux's `xmit_hash_policy`).
    #[serde(default)]
    pub xmit_policy: Option<XmitPolicyConf>,
}

/// A bond's transmit hash policy, in Linux's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum XmitPolicyConf {
    /// The MAC addresses.
    #[serde(rename = "layer2")]
    Layer2,
    /// The MAC and IP addresses.
    #[serde(rename = "layer2+3")]
    Layer23,
    /// The IP addresses and ports.
    #[serde(rename = "layer3+4")]
    Layer34,
}

fn default_monitor_ms() -> u32 {
    100
}

/// Bonding modes rvs supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BondModeConf {
    /// Mode 0: transmit in turn over the slaves.
    RoundRobin,
    /// Mode 1: one active slave, the others stand by.
    ActiveBackup,
    /// Mode 2: the transmit slave from a hash of the headers.
    BalanceXor,
    /// Mode 4: IEEE 802.3ad with LACP.
    Lacp,
}

/// How a port's kernel twin is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TwinKind {
    /// A tap interface (DPDK's tap PMD): works everywhere.
    #[default]
    Tap,
    /// virtio-user over /dev/vhost-net (faster; needs the vhost-net module).
    VirtioUser,
    /// No twin: traffic for the kernel is dropped and counted (`no_twin`).
    None,
}

fn default_desc() -> u16 {
    1024
}
fn default_mtu() -> u16 {
    1500
}
fn yes() -> bool {
    true
}

/// Connection table and local-port settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnConf {
    /// Connections each worker can hold (preallocated at start).
    pub pool_size: u32,
    /// Lowest local port taken from a LIP.
    pub lport_min: u16,
    /// Highest local port taken from a LIP.
    pub lport_max: u16,
    /// Insert the TOA option (client address) into the handshake's last ACK.
    pub toa: bool,
    /// Expire a connection at once when its real server is removed (LVS's
    /// `expire_nodest_conn`); otherwise it drains.
    pub expire_nodest: bool,
    /// Drop a persistence template whose real server has weight 0, so that its client is
    /// scheduled afresh (LVS's `expire_quiescent_template`); otherwise a drained server
    /// keeps its persistent clients until their templates expire, as in LVS and DPVS.
    pub expire_quiescent_template: bool,
    /// Half-open (SYN_RECV) connections each worker keeps at most; a new SYN beyond it
    /// evicts the oldest (DR/TUN TCP connections past SYN_RECV and UDP flows whose
    /// client has sent fewer than 8 packets are not bounded by it: they give way when the
    /// pool is full). 0 = a quarter of `pool_size`, at least 1024.
    pub syn_recv_max: u32,
    /// How many of a UDP connection's first datagrams carry the UOA option, on services
    /// with `uoa` (DPVS's `uoa_max_trail`).
    pub uoa_max_trail: u8,
}

impl Default for ConnConf {
    fn default() -> Self {
        ConnConf {
            pool_size: 1 << 20,
            lport_min: 1025,
            lport_max: 65535,
            toa: true,
            expire_nodest: false,
            expire_quiescent_template: false,
            syn_recv_max: 0,
            uoa_max_trail: 3,
        }
    }
}

/// An address owned by the dataplane on a port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddrConf {
    /// The port name.
    pub dev: String,
    /// Address and prefix length (`198.18.0.1/24`, `198.18.0.100/32`, `2001:db8::1/64`).
    pub addr: IpNet,
    /// A local address (LIP) whose ports FullNAT uses, as dpip's `sapool` flag.
    #[serde(default)]
    pub sapool: bool,
}

/// Route scopes (`global`, `link`, `kni_host`): the network layer's one definition.
pub use netstack::Scope as RouteScope;

/// A static route.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConf {
    /// Destination prefix (`0.0.0.0/0` for the default route).
    pub prefix: IpNet,
    /// Gateway.
    #[serde(default)]
    pub via: Option<IpAddr>,
    /// Outgoing port.
    pub dev: String,
    /// Scope.
    #[serde(default)]
    pub scope: RouteScope,
    /// Preferred source address.
    #[serde(default)]
    pub src: Option<IpAddr>,
}

/// A static neighbour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighConf {
    /// The neighbour's address.
    pub addr: IpAddr,
    /// Its MAC.
    pub mac: EthernetAddress,
    /// The port it is on.
    pub dev: String,
}

/// A virtual service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConf {
    /// `tcp` or `udp` (a fwmark service takes both and gives none).
    #[serde(default)]
    pub proto: Option<Proto>,
    /// The virtual IP. A fwmark service has none: absent is an IPv4 one, `"::"` an
    /// IPv6 one.
    #[serde(default)]
    pub vip: Option<IpAddr>,
    /// The virtual port; 0 serves every port of the VIP (a fwmark service gives none).
    #[serde(default)]
    pub port: Option<u16>,
    /// A firewall-mark service (ipvsadm `-f`): the flows the `[[fwmark]]` rules give
    /// this mark, instead of a VIP and port.
    #[serde(default)]
    pub fwmark: u32,
    /// Scheduler (ipvsadm's names).
    #[serde(default)]
    pub scheduler: SchedKind,
    /// Persistence timeout in seconds (ipvsadm `-p`); absent = none.
    #[serde(default)]
    pub persistence: Option<u32>,
    /// Persistence granularity for IPv4 clients as a prefix length (ipvsadm `-M`).
    #[serde(default)]
    pub persistence_netmask: Option<u8>,
    /// Local addresses (LIPs) the service's FullNAT connections leave from (and TUN's
    /// outer headers); each must be an `[[addr]]` with `sapool = true`. Not needed when
    /// every real server is NAT or DR.
    #[serde(default)]
    pub laddrs: Vec<IpAddr>,
    /// Real servers.
    #[serde(default, rename = "real_server")]
    pub real_servers: Vec<RealServerConf>,
    /// The SYN proxy for this service: `on`, `off` or `auto`; absent = `[synproxy] mode`.
    #[serde(default)]
    pub synproxy: Option<fnat::synproxy::SynProxyMode>,
    /// Sources refused (DPVS's blacklist).
    #[serde(default)]
    pub deny: Vec<IpNet>,
    /// When not empty, the only sources admitted (DPVS's whitelist).
    #[serde(default)]
    pub allow: Vec<IpNet>,
    /// New connections per second (over all workers); absent = no limit.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// How many new connections may come at once; absent = `rate_limit`.
    #[serde(default)]
    pub rate_burst: Option<u32>,
    /// Live connections per source address (per worker); 0 = no limit.
    #[serde(default)]
    pub source_limit: u32,
    /// The PROXY protocol header (`v1` or `v2`) sent to the real servers before each
    /// connection's first data (TCP only); absent = none.
    #[serde(default)]
    pub proxy_protocol: Option<fnat::service::ProxyProtocol>,
    /// DPVS's UOA (`ipo` or `opp`): the client's address in the first datagrams of each
    /// connection, for real servers with DPVS's `uoa` module (UDP, FullNAT); absent = none.
    #[serde(default)]
    pub uoa: Option<fnat::uoa::UoaMode>,
    /// Idle timeout in seconds of the service's established TCP connections and of its
    /// UDP ones, instead of `[timeouts]` (DPVS's `--conn-timeout`); 0 = `[timeouts]`.
    #[serde(default)]
    pub conn_timeout: u32,
    /// DPVS's passive health check, in its notation (`default`, `1,1,3s,5-3600s`,
    /// `1,3s`): real servers that refuse or ignore SYNs are taken out for a while
    /// (TCP; replies through rvs); absent = off.
    #[serde(default)]
    pub dest_check: Option<fnat::destcheck::DestCheck>,
    /// DPVS's `--expire-quiescent`: a connection whose real server has weight 0 ends at
    /// its next packet (an RST to a TCP sender) instead of running on.
    #[serde(default)]
    pub expire_quiescent: bool,
    /// ipvsadm's one-packet scheduling (UDP): each datagram scheduled on its own, no
    /// connection kept.
    #[serde(default)]
    pub ops: bool,
}

/// A real server of a service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerConf {
    /// Its address.
    pub addr: IpAddr,
    /// Its port (0 = the client's destination port, for port-0 services).
    pub port: u16,
    /// Weight (0 = drain).
    #[serde(default = "one")]
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    #[serde(default)]
    pub upper: u32,
    /// Lower connection threshold (0 = none).
    #[serde(default)]
    pub lower: u32,
    /// Forwarding method: `fnat` (the default), `nat`, `dr` or `tunnel` (ipvsadm's -b,
    /// -m, -g, -i).
    #[serde(default)]
    pub fwd: fnat::types::FwdMode,
}

fn one() -> u32 {
    1
}

/// The control socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConf {
    /// Path of the Unix socket.
    pub socket: PathBuf,
    /// A group whose members may also use the socket (besides root).
    pub group: Option<String>,
    /// Clients served at once; past it, the client idle longest makes room (or, if every
    /// client is busy, the newcomer gets an error).
    pub max_clients: usize,
    /// Seconds a client may send nothing before it is closed.
    pub idle_timeout: u64,
    /// Seconds a request may take to arrive whole, and a reply to be read whole.
    pub io_timeout: u64,
}

impl Default for ControlConf {
    fn default() -> Self {
        ControlConf {
            socket: PathBuf::from("/run/rvs/rvsd.sock"),
            group: None,
            max_clients: 1024,
            idle_timeout: 60,
            io_timeout: 10,
        }
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// The key (`service[0].real_server[1].weight`) or position (`line 12`).
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.problem)
    }
}

/// Every problem found in a file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads, parses and checks a file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: file.clone(),
                key: "-".into(),
                problem: format!("cannot read: {e}"),
            }])
        })?;
        Config::parse(&file, &text)
    }

    /// Parses and checks text that came from `file`.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigErrors(vec![toml_error(file, text, &e)]))?;
        let mut errors = cfg.check(file);
        cfg.edge.loaded = cfg.edge.deny.clone();
        if let Some(f) = &cfg.edge.deny_file {
            let path = Path::new(file).parent().map_or_else(|| f.clone(), |d| d.join(f));
            let got = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|t| parse_prefix_lines(&t).map_err(|e| format!("{}: {e}", path.display())));
            match got {
                Ok(l) => cfg.edge.loaded.extend(l),
                Err(problem) => errors.push(ConfigError { file: file.into(), key: "edge.deny_file".into(), problem }),
            }
        }
        keep_first(&mut cfg.edge.loaded);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The index of the port named `name`: a `[[port]]`, or a `[[vlan]]` (numbered after
    /// the ports).
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .or_else(|| self.vlans.iter().position(|v| v.name() == name).map(|j| self.ports.len() + j))
    }

    /// Every port's name by index: the ports, then the VLAN sub-interfaces.
    pub fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|p| p.name.clone()).chain(self.vlans.iter().map(VlanConf::name)).collect()
    }

    /// The services as the core's configuration types.
    pub fn service_configs(&self) -> Vec<ServiceConfig> {
        self.services.iter().map(ServiceConf::to_core).collect()
    }

    /// The services as the control protocol sets them (with their LIPs), put in place
    /// by the replace verb (so a real server's port 0 is the virtual port, as everywhere).
    pub fn service_specs(&self) -> Vec<ServiceSpec> {
        let mut set = Vec::new();
        verbs::service_replace(
            &mut set,
            self.services.iter().map(|s| ServiceSpec { service: s.to_core(), laddrs: s.laddrs.clone() }).collect(),
        );
        set
    }

    /// How the file's addresses are owned, for [`verbs::validate`].
    fn owner(&self, ip: IpAddr) -> Option<Owned> {
        self.addrs.iter().find(|a| a.addr.addr() == ip).map(|a| if a.sapool { Owned::Sapool } else { Owned::Plain })
    }

    /// What is valid but worth a word: services whose VIP is not (yet) an address of
    /// any port (they are loaded: a VRRP backup keeps its services; the agent adds the
    /// VIP when it becomes master; they get no traffic until the address is added), and
    /// a fwmark service no rule marks flows for, and a sync key in a file every user can
    /// read.
    pub fn warnings(&self, file: &str) -> Vec<ConfigError> {
        let specs = self.service_specs();
        let owner = |ip| self.owner(ip);
        let mut out: Vec<ConfigError> = verbs::unowned_vips(&specs, &owner)
            .into_iter()
            .map(|(i, key)| ConfigError {
                file: file.into(),
                key: format!("service[{i}].vip"),
                problem: format!(
                    "service {key}: {} is not (yet) an address of any port; the service is loaded but gets no \
                     traffic until the address is added (as on a VRRP backup)",
                    key.vip
                ),
            })
            .collect();
        out.extend(verbs::standby_laddrs(&specs, &owner).into_iter().map(|(i, key, l)| ConfigError {
            file: file.into(),
            key: format!("service[{i}].laddrs"),
            problem: format!(
                "service {key}: local address {l} is not (yet) an address of any port; it takes no connections \
                 until it is added with sapool (as a VRRP backup's LIPs that move with the VIP)"
            ),
        }));
        for (i, s) in specs.iter().enumerate().filter(|(_, s)| s.service.fwmark != 0) {
            let (mark, v4) = (s.service.fwmark, s.service.vip.is_ipv4());
            if !self.fwmark.iter().any(|r| r.mark == mark && r.dst_range.is_ipv4() == v4) {
                out.push(ConfigError {
                    file: file.into(),
                    key: format!("service[{i}].fwmark"),
                    problem: format!(
                        "service {}: no [[fwmark]] rule gives mark {mark} to IPv{} flows; the service gets no \
                         traffic until one does (`rvsip fwmark add {mark} MATCH`)",
                        s.service.key(),
                        if v4 { 4 } else { 6 }
                    ),
                });
            }
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).map(|m| m.permissions().mode()).unwrap_or(0);
        if self.sync.is_some() && mode & 0o004 != 0 {
            out.push(ConfigError {
                file: file.into(),
                key: "sync.key".into(),
                problem: format!(
                    "the file holds the sync key and every user can read it (mode {:o}): whoever reads the key \
                     can install connections on the peers; chmod o-r it",
                    mode & 0o777
                ),
            });
        }
        out
    }

    /// The EAL arguments: `args` plus what rvsd derives (lcores, devices, PCI allowlist,
    /// file prefix).
    pub fn eal_args(&self) -> Vec<String> {
        let mut a = vec!["rvsd".to_string()];
        let mut lcores = vec![self.eal.main_lcore];
        lcores.extend(&self.workers.lcores);
        match &self.workers.cpus {
            Some(cpus) => {
                let main = format!("{0}@{0}", self.eal.main_lcore);
                let workers = self.workers.lcores.iter().zip(cpus).map(|(l, c)| format!("{l}@{c}"));
                a.push(format!("--lcores={}", std::iter::once(main).chain(workers).collect::<Vec<_>>().join(",")));
            }
            None => {
                a.push("-l".into());
                a.push(lcores.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
            }
        }
        a.push("--main-lcore".into());
        a.push(self.eal.main_lcore.to_string());
        a.push("--file-prefix".into());
        a.push(self.eal.file_prefix.clone());
        let mut any_pci = false;
        let devices = self.ports.iter().flat_map(|p| {
            let mut d: Vec<(Option<&String>, Option<&String>)> = vec![(p.vdev.as_ref(), p.pci.as_ref())];
            if let Some(b) = &p.bond {
                d = b.slaves.iter().map(|s| if is_pci_addr(s) { (None, Some(s)) } else { (Some(s), None) }).collect();
            }
            d
        });
        for (vdev, pci) in devices {
            if let Some(v) = vdev {
                // af_packet opens one socket per queue pair and fans received traffic
                // out over all of them: exactly one pair per worker.
                if v.starts_with("net_af_packet") && !v.contains("qpairs=") {
                    a.push(format!("--vdev={v},qpairs={}", self.workers.lcores.len()));
                } else {
                    a.push(format!("--vdev={v}"));
                }
            }
            if let Some(pci) = pci {
                a.push("-a".into());
                a.push(pci.clone());
                any_pci = true;
            }
        }
        if !any_pci {
            a.push("--no-pci".into());
        }
        a.extend(self.eal.args.iter().cloned());
        a
    }

    fn check(&self, file: &str) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let mut err = |key: String, problem: String| errs.push(ConfigError { file: file.into(), key, problem });

        if let Err(e) = self.synproxy.validate() {
            err("synproxy".into(), e);
        }
        if let Some(Err((k, problem))) = self.sync.as_ref().map(crate::sync::SyncConf::validate) {
            err(format!("sync.{k}"), problem);
        }
        if !(500..=3_600_000).contains(&self.neigh_defs.reachable_ms) {
            err("neigh_defs.reachable_ms".into(), format!("{} is outside 500..=3600000", self.neigh_defs.reachable_ms));
        }
        if !(16..=MAX_NEIGH_PER_PORT).contains(&self.neigh_defs.max_per_port) {
            err(
                "neigh_defs.max_per_port".into(),
                format!("{} is outside 16..={MAX_NEIGH_PER_PORT}", self.neigh_defs.max_per_port),
            );
        }
        // EAL: arguments rvsd derives must not be given by hand.
        for (i, arg) in self.eal.args.iter().enumerate() {
            let derived =
                ["-l", "--lcores", "--vdev", "-a", "--allow", "-b", "--block", "--file-prefix", "--main-lcore"];
            if derived.iter().any(|d| arg == d || arg.starts_with(&format!("{d}="))) {
                err(
                    format!("eal.args[{i}]"),
                    format!("{arg:?} is derived from the config (workers.lcores, port.vdev/pci, eal.file_prefix); remove it"),
                );
            }
        }
        if self.eal.file_prefix.is_empty() || self.eal.file_prefix.contains('/') {
            err("eal.file_prefix".into(), "must be a non-empty name without '/'".into());
        }
        // Workers.
        if self.workers.lcores.is_empty() {
            err("workers.lcores".into(), "at least one worker lcore is needed".into());
        }
        if let Some(cpus) = &self.workers.cpus {
            if cpus.len() != self.workers.lcores.len() {
                err(
                    "workers.cpus".into(),
                    format!("{} CPUs for {} worker lcores", cpus.len(), self.workers.lcores.len()),
                );
            }
        }
        let max_lcore = dpdk::sys::RTE_MAX_LCORE;
        if self.eal.main_lcore >= max_lcore {
            err("eal.main_lcore".into(), format!("lcore {} is beyond DPDK's {max_lcore} lcores", self.eal.main_lcore));
        }
        let mut seen = HashSet::new();
        for (i, l) in self.workers.lcores.iter().enumerate() {
            if *l >= max_lcore {
                err(format!("workers.lcores[{i}]"), format!("lcore {l} is beyond DPDK's {max_lcore} lcores"));
            }
            if *l == self.eal.main_lcore {
                err(format!("workers.lcores[{i}]"), format!("lcore {l} is the main (control) lcore"));
            }
            if !seen.insert(*l) {
                err(format!("workers.lcores[{i}]"), format!("lcore {l} is listed twice"));
            }
        }
        // Control socket.
        if !(1..=65536).contains(&self.control.max_clients) {
            err("control.max_clients".into(), format!("{} is outside 1..=65536", self.control.max_clients));
        }
        if self.control.idle_timeout == 0 {
            err("control.idle_timeout".into(), "must be at least 1 second".into());
        }
        if self.control.io_timeout == 0 {
            err("control.io_timeout".into(), "must be at least 1 second".into());
        }
        // Mempool.
        if self.mempool.mbufs < 1023 {
            err("mempool.mbufs".into(), format!("{} is too few; at least 1023", self.mempool.mbufs));
        }
        if self.mempool.data_room < 1024 + 128 {
            err(
                "mempool.data_room".into(),
                format!("{} bytes cannot hold a frame after the 128-byte headroom", self.mempool.data_room),
            );
        }
        // Ports.
        if self.ports.is_empty() {
            err("port".into(), "at least one [[port]] is needed".into());
        }
        let mut names: HashSet<String> = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let k = format!("port[{i}]");
            if p.name.is_empty()
                || p.name.len() > 11
                || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                err(
                    format!("{k}.name"),
                    format!("{:?}: 1-11 letters, digits, '-' or '_' (the kernel twin adds \".kni\")", p.name),
                );
            }
            if !names.insert(p.name.clone()) {
                err(format!("{k}.name"), format!("port name {:?} is used twice", p.name));
            }
            if let Some(b) = &p.bond {
                if p.vdev.is_some() || p.pci.is_some() {
                    err(k.clone(), "a bond has slaves, not a vdev or pci of its own".into());
                }
                if b.slaves.is_empty() {
                    err(format!("{k}.bond.slaves"), "a bond needs at least one slave".into());
                }
                if b.xmit_policy.is_some() && !matches!(b.mode, BondModeConf::BalanceXor | BondModeConf::Lacp) {
                    err(format!("{k}.bond.xmit_policy"), "a transmit policy is for balance-xor and lacp bonds".into());
                }
                if b.primary >= b.slaves.len().max(1) {
                    err(format!("{k}.bond.primary"), format!("slave {} does not exist", b.primary));
                }
                for (j, sl) in b.slaves.iter().enumerate() {
                    if !sl.starts_with("net_") && !is_pci_addr(sl) {
                        err(
                            format!("{k}.bond.slaves[{j}]"),
                            format!("{sl:?} is neither a network vdev nor a PCI address"),
                        );
                    }
                }
                continue;
            }
            match (&p.vdev, &p.pci) {
                (Some(_), Some(_)) => err(k.clone(), "give either vdev or pci, not both".into()),
                (None, None) => err(k.clone(), "give a vdev string, a pci address or a bond".into()),
                (Some(v), None) if !v.starts_with("net_") => err(
                    format!("{k}.vdev"),
                    format!("{v:?} is not a network vdev (net_af_packet0,iface=..., net_tap0, ...)"),
                ),
                (None, Some(pci)) if !is_pci_addr(pci) => {
                    err(format!("{k}.pci"), format!("{pci:?} is not a PCI address like 0000:01:00.0"))
                }
                _ => {}
            }
            if !(68..=9600).contains(&p.mtu) {
                err(format!("{k}.mtu"), format!("{} is outside 68..=9600", p.mtu));
            }
            if !p.rx_desc.is_power_of_two() || !p.tx_desc.is_power_of_two() {
                err(k.clone(), "rx_desc and tx_desc must be powers of two".into());
            }
        }
        if !(1..=100_000).contains(&self.workers.max_sleep_us) {
            err("workers.max_sleep_us".into(), format!("{} is outside 1..=100000", self.workers.max_sleep_us));
        }
        // VLAN sub-interfaces.
        let mut tags = HashSet::new();
        for (i, v) in self.vlans.iter().enumerate() {
            let k = format!("vlan[{i}]");
            let name = v.name();
            if let Err(p) = check_vlan_name(&name) {
                err(format!("{k}.name"), p);
            }
            if !names.insert(name.clone()) {
                err(format!("{k}.name"), format!("port name {name:?} is used twice"));
            }
            if !self.ports.iter().any(|p| p.name == v.link) {
                err(format!("{k}.link"), format!("no port named {:?}", v.link));
            }
            if let Err(p) = check_vlan_id(v.id) {
                err(format!("{k}.id"), p);
            } else if !tags.insert((v.link.as_str(), v.id)) {
                err(format!("{k}.id"), format!("VLAN {} on {} is defined twice", v.id, v.link));
            }
        }
        // Connections.
        if self.conn.pool_size == 0 {
            err("conn.pool_size".into(), "must be at least 1".into());
        }
        if self.conn.lport_min == 0 || self.conn.lport_min > self.conn.lport_max {
            err(
                "conn.lport_min".into(),
                format!("range {}..={} is empty or starts at 0", self.conn.lport_min, self.conn.lport_max),
            );
        }
        // Addresses.
        let mut owned: HashSet<IpAddr> = HashSet::new();
        for (i, a) in self.addrs.iter().enumerate() {
            let k = format!("addr[{i}]");
            if self.port_index(&a.dev).is_none() {
                err(format!("{k}.dev"), format!("no port named {:?}", a.dev));
            }
            if !owned.insert(a.addr.addr()) {
                err(format!("{k}.addr"), format!("{} is configured twice", a.addr.addr()));
            }
        }
        // A subnet belongs to one port: on two, neighbours and replies would go astray.
        for (j, b) in self.addrs.iter().enumerate() {
            let clash = self.addrs[..j]
                .iter()
                .enumerate()
                .find(|(_, a)| a.dev != b.dev && crate::state::subnets_overlap(&a.addr, &b.addr));
            if let Some((i, a)) = clash {
                err(
                    format!("addr[{j}].addr"),
                    format!(
                        "subnet {} on {} overlaps addr[{i}] {} on {}",
                        b.addr.trunc(),
                        b.dev,
                        a.addr.trunc(),
                        a.dev
                    ),
                );
            }
        }
        // Routes.
        for (i, r) in self.routes.iter().enumerate() {
            let k = format!("route[{i}]");
            if self.port_index(&r.dev).is_none() {
                err(format!("{k}.dev"), format!("no port named {:?}", r.dev));
            }
            if r.prefix != r.prefix.trunc() {
                err(
                    format!("{k}.prefix"),
                    format!("{} has host bits set; did you mean {}?", r.prefix, r.prefix.trunc()),
                );
            }
            if let Some(via) = r.via {
                if via.is_ipv4() != r.prefix.addr().is_ipv4() {
                    err(format!("{k}.via"), format!("gateway {via} is not of the prefix's address family"));
                } else if !self.addrs.iter().any(|a| a.dev == r.dev && a.addr.contains(&via)) {
                    err(format!("{k}.via"), format!("gateway {via} is not in a connected subnet of {}", r.dev));
                }
            }
        }
        // SNAT rules.
        let mut snat_names = HashSet::new();
        for (i, r) in self.snat.iter().enumerate() {
            let k = format!("snat[{i}]");
            for (what, dev) in [("iif", &r.iif), ("oif", &r.oif)] {
                if let Some(dev) = dev.as_deref().filter(|d| self.port_index(d).is_none()) {
                    err(format!("{k}.{what}"), format!("no port named {dev:?}"));
                }
            }
            if let Some(name) = &r.name {
                if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    err(format!("{k}.name"), format!("SNAT rule name {name:?}: one word (rvsadm -S writes it back)"));
                }
                if !snat_names.insert(name.clone()) {
                    err(format!("{k}.name"), format!("SNAT rule name {name:?} is used twice"));
                }
            }
            if self.snat[..i].iter().any(|o| o.same_match(r)) {
                err(k.clone(), format!("another rule has the same match ({})", r.match_text()));
            }
            if r.wan.is_empty() {
                err(format!("{k}.wan"), "give at least one WAN address".into());
            }
            for (j, w) in r.wan.iter().enumerate() {
                if self.owner(*w) != Some(Owned::Sapool) {
                    err(
                        format!("{k}.wan[{j}]"),
                        format!("{w} is not an address with sapool = true (its ports are the flows' source ports)"),
                    );
                }
            }
            if let Err(e) = crate::state::snat_rule(r, 0, |_| Some(0)).validate() {
                err(k.clone(), e.to_string());
            }
        }
        // Fwmark rules.
        for (i, r) in self.fwmark.iter().enumerate() {
            match fnat::fwmark::check_next(&self.fwmark[..i], r) {
                Ok(()) => {}
                Err(fnat::fwmark::FwmarkError::Duplicate(_)) => {
                    err(format!("fwmark[{i}]"), format!("{r} is given twice"))
                }
                Err(e) => err(format!("fwmark[{i}]"), e.to_string()),
            }
        }
        if self.fwmark.len() > fnat::fwmark::MAX_FWMARK_RULES {
            err("fwmark".into(), format!("{} rules: at most {}", self.fwmark.len(), fnat::fwmark::MAX_FWMARK_RULES));
        }
        for (i, n) in self.neighs.iter().enumerate() {
            if self.port_index(&n.dev).is_none() {
                err(format!("neigh[{i}].dev"), format!("no port named {:?}", n.dev));
            }
            if let Some(why) = crate::state::static_neigh_problem(n.addr, n.mac) {
                err(format!("neigh[{i}]"), why);
            }
        }
        // Services: what only a file can get wrong here; the rest is the one validation
        // every change of the service set passes (rvsd's control socket, `rvsadm -R`).
        // A VIP need not be owned (see `warnings`).
        for (i, s) in self.services.iter().enumerate() {
            let k = format!("service[{i}]");
            let missing = [("proto", s.proto.is_none()), ("vip", s.vip.is_none()), ("port", s.port.is_none())];
            for (key, _) in missing.iter().filter(|(_, m)| *m && s.fwmark == 0) {
                err(format!("{k}.{key}"), "required (or fwmark, for a firewall-mark service)".into());
            }
            if s.laddrs.is_empty() && s.real_servers.iter().any(|r| r.fwd.needs_local_addrs()) {
                err(format!("{k}.laddrs"), "FullNAT and TUN need at least one local address (LIP)".into());
            }
            if s.persistence_netmask.is_some() && s.persistence.is_none() {
                err(format!("{k}.persistence_netmask"), "needs persistence".into());
            }
            if s.rate_burst.is_some() && s.rate_limit.is_none() {
                err(format!("{k}.rate_burst"), "needs rate_limit".into());
            }
        }
        if let Err(problems) = verbs::check(&self.service_specs(), &|ip| self.owner(ip)) {
            for p in problems {
                let key = match (p.service, p.laddr) {
                    (Some(i), Some(j)) => format!("service[{i}].laddrs[{j}]"),
                    (Some(i), None) => format!("service[{i}]"),
                    _ => "service".into(),
                };
                err(key, p.refused.message);
            }
        }
        errs
    }
}

impl ServiceConf {
    /// The core's view of this service.
    pub fn to_core(&self) -> ServiceConfig {
        let unspecified = IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED);
        let proto = self.proto.unwrap_or(Proto::Tcp);
        let mut c = ServiceConfig::new(proto, self.vip.unwrap_or(unspecified), self.port.unwrap_or(0));
        c.fwmark = self.fwmark;
        c.sched = self.scheduler;
        c.persistence = self.persistence.map(|t| {
            let mut p = PersistConfig { timeout_s: t, ..PersistConfig::default() };
            if let Some(m) = self.persistence_netmask {
                if c.vip.is_ipv4() {
                    p.netmask_v4 = m;
                } else {
                    p.netmask_v6 = m;
                }
            }
            p
        });
        c.real_servers = self
            .real_servers
            .iter()
            .map(|r| RealServerConfig {
                addr: r.addr,
                port: r.port,
                weight: r.weight,
                upper: r.upper,
                lower: r.lower,
                fwd: r.fwd,
            })
            .collect();
        c.synproxy = self.synproxy;
        c.deny = self.deny.clone();
        c.allow = self.allow.clone();
        c.rate_limit = self.rate_limit.map(|rate| fnat::edge::RateLimit { rate, burst: self.rate_burst.unwrap_or(0) });
        c.source_limit = self.source_limit;
        c.proxy_protocol = self.proxy_protocol;
        c.uoa = self.uoa;
        c.conn_timeout = self.conn_timeout;
        c.dest_check = self.dest_check;
        c.expire_quiescent = self.expire_quiescent;
        c.ops = self.ops;
        c
    }
}

fn is_pci_addr(s: &str) -> bool {
    // dddd:bb:dd.f (domain optional)
    let parts: Vec<&str> = s.split([':', '.']).collect();
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    match parts.as_slice() {
        [d, b, dev, f] => hex(d, 4) && hex(b, 2) && hex(dev, 2) && hex(f, 1),
        [b, dev, f] => hex(b, 2) && hex(dev, 2) && hex(f, 1),
        _ => false,
    }
}

fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let (key, problem) = match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let src = text.lines().nth(line - 1).unwrap_or("").trim();
            (format!("line {line} ({src})"), e.message().to_string())
        }
        None => ("-".into(), e.message().to_string()),
    };
    ConfigError { file: file.into(), key, problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../dpdk-conf/demo.toml");
    const PRODUCTION: &str = include_str!("../../../dpdk-conf/production.toml");

    fn problems(text: &str) -> Vec<String> {
        match Config::parse("t.toml", text) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    const MINIMAL: &str = r#"
[eal]
[workers]
lcores = [1]
[[port]]
name = "dpdk0"
vdev = "net_null0"
[[addr]]
dev = "dpdk0"
addr = "192.0.2.1/24"
[[addr]]
dev = "dpdk0"
addr = "192.0.2.10/24"
sapool = true
[[service]]
proto = "tcp"
vip = "192.0.2.1"
port = 80
laddrs = ["192.0.2.10"]
[[service.real_server]]
addr = "192.0.2.20"
port = 80
"#;

    #[test]
    fn a_deny_prefix_given_twice_is_kept_once() {
        let n = |v: &str| v.parse::<IpNet>().unwrap();
        let dir = std::env::temp_dir().join(format!("rvs-deny-twice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("deny.txt"), "192.0.2.0/24\n198.51.100.7\n203.0.113.0/24\n").unwrap();
        let text = format!(
            "{MINIMAL}[edge]\ndeny = [\"198.51.100.7/32\", \"192.0.2.0/24\", \"198.51.100.7/32\"]\n\
             deny_file = \"deny.txt\"\n"
        );
        let cfg = Config::parse(&dir.join("rvsd.toml").display().to_string(), &text);
        std::fs::remove_dir_all(&dir).unwrap();
        let cfg = cfg.map_err(|e| e.to_string()).unwrap();
        assert_eq!(cfg.edge.loaded, vec![n("198.51.100.7/32"), n("192.0.2.0/24"), n("203.0.113.0/24")]);
    }

    #[test]
    fn shipped_configs_pass() {
        let demo = Config::parse("demo.toml", DEMO).expect("demo.toml");
        assert_eq!(demo.ports.len(), 2);
        assert_eq!(demo.services.len(), 2);
        assert_eq!(demo.services[0].real_servers.iter().map(|r| r.weight).collect::<Vec<_>>(), vec![3, 2, 1]);
        let prod = Config::parse("production.toml", PRODUCTION).expect("production.toml");
        assert_eq!(prod.workers.lcores.len(), 8);
        assert!(prod.eal_args().contains(&"0000:3b:00.0".to_string()));
        assert!(!prod.eal_args().contains(&"--no-pci".to_string()));
    }

    #[test]
    fn minimal_config_and_derived_eal_args() {
        let c = Config::parse("t.toml", MINIMAL).expect("minimal");
        let a = c.eal_args();
        assert!(a.contains(&"--no-pci".to_string()), "no PCI port: the EAL must not probe PCI");
        assert!(a.contains(&"--vdev=net_null0".to_string()));
        assert_eq!(a[1..3], ["-l".to_string(), "0,1".to_string()]);
        assert_eq!(c.timeouts.established, 900, "LVS default");
        assert_eq!(c.services[0].scheduler, SchedKind::Wlc, "ipvsadm's default scheduler");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let p = problems(&MINIMAL.replace("[workers]", "[workers]\nthreads = 4"));
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("t.toml: line "), "{p:?}");
        assert!(p[0].contains("threads"), "{p:?}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("weight of the wrong type", "", "line 23 (weight = \"x\"): invalid type"),
            ("laddr without sapool", "sapool = true", "service[0].laddrs[0]"),
            (
                "unknown port",
                r#"dev = "dpdk0"
addr = "192.0.2.1/24""#,
                "addr[0].dev",
            ),
        ];
        let edits = [
            format!("{MINIMAL}weight = \"x\"\n"),
            MINIMAL.replace("sapool = true", "sapool = false"),
            MINIMAL.replacen(
                r#"dev = "dpdk0"
addr = "192.0.2.1/24""#,
                r#"dev = "dpdk7"
addr = "192.0.2.1/24""#,
                1,
            ),
        ];
        for ((what, _, key), text) in cases.iter().zip(edits.iter()) {
            let p = problems(text);
            assert!(p.iter().any(|e| e.contains(key)), "{what}: expected a problem at {key}, got {p:?}");
        }
    }

    #[test]
    fn bond_transmit_policies_are_read_and_checked() {
        let bond = |extra: &str| {
            MINIMAL.replace(
                "vdev = \"net_null0\"",
                &format!("bond = {{ mode = \"balance-xor\", slaves = [\"net_null1\", \"net_null2\"]{extra} }}"),
            )
        };
        let c = Config::parse("t.toml", &bond(", xmit_policy = \"layer3+4\"")).expect("layer3+4");
        assert_eq!(c.ports[0].bond.as_ref().unwrap().xmit_policy, Some(XmitPolicyConf::Layer34));
        let c = Config::parse("t.toml", &bond(", xmit_policy = \"layer2+3\"")).expect("layer2+3");
        assert_eq!(c.ports[0].bond.as_ref().unwrap().xmit_policy, Some(XmitPolicyConf::Layer23));
        assert!(problems(&bond(", xmit_policy = \"layer4\"")).iter().any(|p| p.contains("unknown variant `layer4`")));
        let rr = bond(", xmit_policy = \"layer2\"").replace("balance-xor", "round-robin");
        assert!(
            problems(&rr).iter().any(|p| p.contains("port[0].bond.xmit_policy")
                && p.contains("a transmit policy is for balance-xor and lacp bonds")),
            "{:?}",
            problems(&rr)
        );
    }

    #[test]
    fn vlans_are_ports_after_the_ports_and_checked() {
        let vlan = |body: &str| format!("{MINIMAL}\n[[vlan]]\n{body}\n");
        let c = Config::parse("t.toml", &vlan("link = \"dpdk0\"\nid = 100")).expect("a VLAN");
        let n = c.ports.len();
        assert_eq!(c.port_index("dpdk0.100"), Some(n), "numbered after the ports");
        assert_eq!(c.port_names()[n], "dpdk0.100");
        let named = Config::parse("t.toml", &vlan("name = \"v100\"\nlink = \"dpdk0\"\nid = 100")).expect("named");
        assert_eq!(named.port_index("v100"), Some(n));
        let text = format!(
            "{}\n[[addr]]\ndev = \"dpdk0.100\"\naddr = \"10.100.0.1/24\"\n",
            vlan("link = \"dpdk0\"\nid = 100")
        );
        assert!(Config::parse("t.toml", &text).is_ok(), "addresses on a VLAN");
        for (body, want) in [
            ("link = \"dpdk9\"\nid = 5", "vlan[0].link: no port named \"dpdk9\""),
            ("link = \"dpdk0\"\nid = 4095", "vlan[0].id: VLAN id 4095 is outside 1..=4094"),
            ("link = \"dpdk0\"\nid = 0", "vlan[0].id: VLAN id 0 is outside 1..=4094"),
            ("name = \"dpdk0\"\nlink = \"dpdk0\"\nid = 5", "vlan[0].name: port name \"dpdk0\" is used twice"),
            ("name = \"a/b\"\nlink = \"dpdk0\"\nid = 5", "vlan[0].name: \"a/b\": 1-11 letters"),
            ("link = \"dpdk0\"\nid = 5\nqos = 1", "unknown field `qos`"),
        ] {
            let p = problems(&vlan(body));
            assert!(p.iter().any(|e| e.contains(want)), "{body}: expected {want:?}, got {p:?}");
        }
        let twice =
            format!("{}[[vlan]]\nname = \"other\"\nlink = \"dpdk0\"\nid = 100\n", vlan("link = \"dpdk0\"\nid = 100"));
        assert!(problems(&twice).iter().any(|e| e.contains("vlan[1].id: VLAN 100 on dpdk0 is defined twice")));
    }

    /// Fwmark rules and services: a service with `fwmark` needs no VIP; rules are
    /// checked with the file, each problem named.
    #[test]
    fn fwmark_rules_and_services_in_the_file() {
        let file = |rules: &str, service: &str| format!("{MINIMAL}{rules}\n[[service]]\n{service}\n");
        let rule = "\n[[fwmark]]\nmark = 1\nproto = \"tcp\"\ndst_range = \"192.0.2.1:80-443\"\n";
        let svc = "fwmark = 1\nscheduler = \"rr\"\nreal_server = [{ addr = \"192.0.2.50\", port = 0, fwd = \"nat\" }]";
        let ok = Config::parse("t.toml", &file(rule, svc)).expect("a fwmark service and its rule");
        let marked = |c: &Config| c.service_specs().iter().map(|s| s.service.key()).find(|k| k.is_fwmark());
        assert_eq!(marked(&ok), Some(fnat::service::ServiceKey::of_fwmark(1, false)));
        assert_eq!(ok.fwmark[0].match_text(), "proto=tcp,dst-range=192.0.2.1:80-443");
        let warned = ok.warnings("t.toml");
        assert!(warned.iter().all(|w| !w.to_string().contains("0.0.0.0")), "no VIP to warn about: {warned:?}");
        let v6 = file("", &format!("{svc}\nvip = \"::\"").replace("192.0.2.50", "2001:db8::50"));
        let ok6 = Config::parse("t.toml", &v6).expect("an IPv6 fwmark service");
        assert_eq!(marked(&ok6), Some(fnat::service::ServiceKey::of_fwmark(1, true)));
        let w6: Vec<String> = ok6.warnings("t.toml").iter().map(ToString::to_string).collect();
        assert!(
            w6.iter().any(|w| w.contains("service fwmark 1 IPv6: no [[fwmark]] rule gives mark 1 to IPv6 flows")),
            "{w6:?}"
        );
        for (rules, service, want) in [
            ("", "scheduler = \"rr\"", "service[1].vip: required (or fwmark"),
            ("", "proto = \"tcp\"\nvip = \"192.0.2.1\"", "service[1].port: required (or fwmark"),
            ("", "fwmark = 1\nport = 80", "fwmark 1: a fwmark service has no address or port of its own"),
            ("", "fwmark = 1\nops = true", "fwmark 1: one-packet scheduling (ops) is for one protocol"),
            (&rule.replace("mark = 1", "mark = 0"), svc, "fwmark[0]: fwmark rule mark 0"),
            (&rule.replace("192.0.2.1:80-443", "0.0.0.0:80"), svc, "fwmark[0]: fwmark rule mark 1 proto=tcp,dst-range=0.0.0.0-255.255.255.255:80: dst-range must name the virtual addresses"),
            (&format!("{rule}{rule}"), svc, "fwmark[1]: mark 1 proto=tcp,dst-range=192.0.2.1:80-443 is given twice"),
            (&format!("{rule}{}", rule.replace("mark = 1", "mark = 2")), svc, "fwmark[1]: fwmark rule mark 2 proto=tcp,dst-range=192.0.2.1:80-443 would never match: the earlier rule mark 1"),
            (&rule.replace("proto = \"tcp\"", "proto = \"icmp\""), svc, "fwmark[0]: fwmark rule mark 1 proto=icmp"),
            (&rule.replace("dst_range", "dst"), svc, "unknown field `dst`"),
        ] {
            let p = problems(&file(rules, service));
            assert!(p.iter().any(|e| e.contains(want)), "expected {want:?}, got {p:?}");
        }
    }

    /// A SNAT rule's name is one word and unique (`rvsadm -S` writes it as `--name`).
    #[test]
    fn snat_rule_names_are_one_word_and_unique() {
        let rule = |name: &str| {
            format!("\n[[snat]]\nname = \"{name}\"\nsrc_range = \"192.0.2.20-192.0.2.30\"\nwan = [\"192.0.2.10\"]\n")
        };
        assert!(problems(&format!("{MINIMAL}{}", rule("lan"))).is_empty());
        let p = problems(&format!("{MINIMAL}{}", rule("two words")));
        assert!(p.iter().any(|e| e.contains("snat[0].name: SNAT rule name \"two words\": one word")), "{p:?}");
        let p = problems(&format!("{MINIMAL}{}{}", rule("lan"), rule("lan").replace("192.0.2.20", "192.0.2.21")));
        assert!(p.iter().any(|e| e.contains("snat[1].name: SNAT rule name \"lan\" is used twice")), "{p:?}");
    }

    #[test]
    fn one_subnet_on_two_ports_is_refused() {
        let text = format!("{MINIMAL}\n[[addr]]\ndev = \"dpdk1\"\naddr = \"192.0.2.9/24\"\n");
        let p = problems(&text);
        assert!(p.iter().any(|e| e.contains(".addr") && e.contains("subnet 192.0.2.0/24 on dpdk1 overlaps")), "{p:?}");
    }

    #[test]
    fn sync_is_read_and_checked() {
        let sync =
            "[sync]\nlisten = \"198.19.0.101:8848\"\npeers = [\"198.19.0.103:8848\"]\nkey = \"0123456789abcdef\"\n";
        let c = Config::parse("t.toml", &format!("{MINIMAL}\n{sync}syncid = 7\n")).expect("sync");
        let s = c.sync.expect("[sync]");
        assert_eq!((s.syncid, s.master, s.backup, s.grace_s, s.max_synced), (7, true, true, 10, 0));
        assert_eq!(s.engine_settings(1000).max_synced, 500, "half the table by default");
        assert!(Config::parse("t.toml", MINIMAL).expect("minimal").sync.is_none(), "off without the section");
        let stopped = Config::parse("t.toml", &format!("{MINIMAL}\n{sync}master = false\nbackup = false\n"));
        assert!(stopped.is_ok(), "both roles stopped until rvsadm --start-daemon: {:?}", stopped.err());
        // A backup says hello to its peers: their answers are what proves them live.
        let quiet = "[sync]\nlisten = \"198.19.0.101:8848\"\nkey = \"0123456789abcdef\"\nmaster = false\n";
        let p = problems(&format!("{MINIMAL}\n{quiet}"));
        assert!(p.iter().any(|e| e.contains("sync.peers") && e.contains("a backup says hello")), "{p:?}");
        // The key in a file every user can read: a warning naming it.
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("rvsd-sync-key-{}.toml", std::process::id()));
        std::fs::write(&path, format!("{MINIMAL}\n{sync}")).unwrap();
        let file = path.display().to_string();
        let warned = |mode: u32| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let c = Config::load(&path).expect("loads");
            c.warnings(&file).iter().any(|w| w.key == "sync.key" && w.problem.contains("every user can read it"))
        };
        assert!(warned(0o644), "world-readable key warned about");
        assert!(!warned(0o640), "no warning once others cannot read it");
        let _ = std::fs::remove_file(&path);
        for (extra, key, what) in [
            ("[sync]\nlisten = \"0.0.0.0:8848\"\npeers = [\"198.19.0.3:8848\"]\nkey = \"short\"\n", "sync.key", "16"),
            ("[sync]\nlisten = \"0.0.0.0:8848\"\nkey = \"0123456789abcdef\"\n", "sync.peers", "at least one peer"),
            (&format!("{sync}grace_s = 0\n"), "sync.grace_s", "1..=3600"),
            (
                "[sync]\nlisten = \"0.0.0.0:8848\"\npeers = [\"224.0.0.81:8848\"]\nkey = \"0123456789abcdef\"\n",
                "sync.mcast_interface",
                "interface",
            ),
            (&format!("{sync}refresh = 3\n"), "refresh", "unknown"),
        ] {
            let p = problems(&format!("{MINIMAL}\n{extra}"));
            assert!(p.iter().any(|e| e.contains(key) && e.contains(what)), "{key}: {p:?}");
        }
    }

    #[test]
    fn neigh_defs_are_read_and_bounded() {
        let c = Config::parse("t.toml", MINIMAL).expect("minimal");
        assert_eq!(c.neigh_defs.reachable_ms, netstack::neigh::DEFAULT_REACHABLE_MS);
        assert_eq!(c.neigh_defs.max_per_port, netstack::neigh::DEFAULT_MAX_PER_PORT);
        let c = Config::parse("t.toml", &format!("{MINIMAL}\n[neigh_defs]\nreachable_ms = 5000\nmax_per_port = 64\n"))
            .expect("neigh_defs");
        assert_eq!((c.neigh_defs.reachable_ms, c.neigh_defs.max_per_port), (5000, 64));
        let p = problems(&format!("{MINIMAL}\n[neigh_defs]\nreachable_ms = 10\nmax_per_port = 1000000\n"));
        assert!(p.iter().any(|e| e.contains("neigh_defs.reachable_ms") && e.contains("500..=3600000")), "{p:?}");
        assert!(p.iter().any(|e| e.contains("neigh_defs.max_per_port") && e.contains("16..=65536")), "{p:?}");
        let p = problems(&format!("{MINIMAL}\n[neigh_defs]\ntimeout = 60\n"));
        assert!(p.iter().any(|e| e.contains("timeout")), "unknown keys are named: {p:?}");
    }

    #[test]
    fn a_vip_before_its_address_is_valid_with_a_warning() {
        // A VRRP backup: the service is loaded, the agent adds the VIP on becoming master.
        let text = MINIMAL.replace(r#"vip = "192.0.2.1""#, r#"vip = "192.0.2.99""#);
        let c = Config::parse("t.toml", &text).expect("a VIP need not be owned");
        let w: Vec<String> = c.warnings("t.toml").iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("t.toml: service[0].vip: service tcp 192.0.2.99:80: 192.0.2.99 is not (yet)"),
            "{w:?}"
        );
        assert!(Config::parse("t.toml", MINIMAL).unwrap().warnings("t.toml").is_empty());
    }

    #[test]
    fn persistence_netmask_is_checked_once() {
        let text = MINIMAL.replace("laddrs = [", "persistence = 60\npersistence_netmask = 33\nladdrs = [");
        let p = problems(&text);
        assert_eq!(
            p,
            vec!["t.toml: service: tcp 192.0.2.1:80: persistence netmask /33 is longer than an IPv4 address"]
        );
        let p = problems(&MINIMAL.replace("laddrs = [", "persistence_netmask = 24\nladdrs = ["));
        assert_eq!(p, vec!["t.toml: service[0].persistence_netmask: needs persistence"]);
    }

    #[test]
    fn derived_eal_args_are_refused_by_hand() {
        let p = problems(&MINIMAL.replace("[eal]", "[eal]\nargs = [\"--vdev=net_tap0\"]"));
        assert!(p.iter().any(|e| e.contains("eal.args[0]")), "{p:?}");
    }

    #[test]
    fn proxy_protocol_is_read_and_checked() {
        assert_eq!(Config::parse("t.toml", MINIMAL).unwrap().services[0].to_core().proxy_protocol, None);
        for v in [fnat::service::ProxyProtocol::V1, fnat::service::ProxyProtocol::V2] {
            let text = MINIMAL.replace("laddrs = [", &format!("proxy_protocol = \"{v}\"\nladdrs = ["));
            let c = Config::parse("t.toml", &text).expect("proxy_protocol");
            assert_eq!(c.services[0].to_core().proxy_protocol, Some(v));
        }
        let p = problems(&MINIMAL.replace("laddrs = [", "proxy_protocol = \"v3\"\nladdrs = ["));
        assert!(p.iter().any(|e| e.contains("proxy_protocol") && e.contains("v3")), "{p:?}");
        let p = problems(&MINIMAL.replace("laddrs = [", "proxy_protocol = \"v2\"\nsynproxy = \"on\"\nladdrs = ["));
        assert!(
            p.iter().any(|e| e.contains("tcp 192.0.2.1:80: PROXY protocol v2 cannot be combined with the SYN proxy")),
            "{p:?}"
        );
    }

    #[test]
    fn dest_check_is_read_and_checked() {
        assert_eq!(Config::parse("t.toml", MINIMAL).unwrap().services[0].to_core().dest_check, None);
        let text = MINIMAL.replace("laddrs = [", "dest_check = \"2,1,3s,10-60s\"\nladdrs = [");
        let c = Config::parse("t.toml", &text).expect("dest_check");
        assert_eq!(c.services[0].to_core().dest_check.map(|d| d.to_string()).as_deref(), Some("2,1,3s,10-60s"));
        let text = MINIMAL.replace("laddrs = [", "expire_quiescent = true\nladdrs = [");
        assert!(Config::parse("t.toml", &text).expect("expire_quiescent").services[0].to_core().expire_quiescent);
        for (v, says) in [("tcp", "external checkers"), ("1,1,3s,9-5s", "inhibit_min is above inhibit_max")] {
            let p = problems(&MINIMAL.replace("laddrs = [", &format!("dest_check = \"{v}\"\nladdrs = [")));
            assert!(p.iter().any(|e| e.contains("dest_check") && e.contains(says)), "{v}: {p:?}");
        }
    }

    #[test]
    fn core_validation_is_reported() {
        // Two real servers with the same address and port: the core refuses it.
        let text = format!("{MINIMAL}[[service.real_server]]\naddr = \"192.0.2.20\"\nport = 80\n");
        let p = problems(&text);
        assert!(p.iter().any(|e| e.starts_with("t.toml: service: ")), "{p:?}");
    }
}
