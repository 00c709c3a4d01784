//! The agent library end to end inside a private network namespace (entered by the test
//! thread only), against the in-memory dataplane:
//! * two agents in one VRRPv3 group over unicast on loopback: election, priority 0 on
//!   shutdown (takeover after Skew_Time), preemption when the higher one returns;
//!   virtual_routes held by the master only;
//! * a real server whose HTTP server stops gets weight 0 within delay_loop x (retry + 1)
//!   (+ timeouts), and gets its weight back when it returns;
//! * an instance whose interface is missing waits in FAULT, and follows it going and
//!   coming back (rvsd's twins do);
//! * `ha_suspend`: only the node holding the VIP checks its real servers;
//! * a fwmark virtual server's DR real server: port 0 in the service, checked on its port.

mod common;
use common::{in_netns, in_netns_ret};
use rvs_agent::dataplane::{Call, FakeDataplane, Proto, ServiceKey};
use rvs_agent::keepalived::{parse_str, Options};
use rvs_agent::vrrp::fsm::State;
use rvs_agent::vrrp::instance::InstanceStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testnet::NetNs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

fn root() -> bool {
    // CI runs as root; a skipped test would hide a regression, so it fails instead.
    assert!(nix::unistd::geteuid().is_root(), "this test needs root (network namespaces)");
    true
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.elapsed()
}

fn node_conf(src: &str, peer: &str, prio: u8) -> String {
    format!(
        "vrrp_instance VI {{\n interface lo\n version 3\n virtual_router_id 42\n priority {prio}\n advert_int 0.1\n\
         unicast_src_ip {src}\n unicast_peer {{\n  {peer}\n }}\n virtual_ipaddress {{\n  192.0.2.42/32\n }}\n}}\n"
    )
}

struct Node {
    dp: Arc<FakeDataplane>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(conf: &str) -> Node {
    start_watched(conf).0
}

/// [`start`], with the instances' statuses once the agent runs.
fn start_watched(conf: &str) -> (Node, tokio::sync::oneshot::Receiver<Vec<watch::Receiver<InstanceStatus>>>) {
    let l = parse_str(conf, "node.conf", Options::default());
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    let dp = Arc::new(FakeDataplane::new());
    let (stop, rx) = watch::channel(false);
    let (tx, running) = tokio::sync::oneshot::channel();
    let d = dp.clone();
    let task = tokio::spawn(async move {
        rvs_agent::agent::run(l.config, d, rx, move |r| {
            let _ = tx.send(r.instances.lock().unwrap().clone());
        })
        .await
        .unwrap();
    });
    (Node { dp, stop, task }, running)
}

fn has_vip(n: &Node) -> bool {
    !n.dp.vips().is_empty()
}

/// Stops the nodes and waits for each.
async fn stop_nodes(nodes: impl IntoIterator<Item = Node>) {
    for n in nodes {
        n.stop.send(true).unwrap();
        n.task.await.unwrap();
    }
}

/// Makes a FIFO at `path` and holds it open for reading (as a notify_fifo consumer does),
/// so the agent's lines wait in it.
fn open_fifo(path: &std::path::Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::OpenOptions::new().read(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits()).open(path).unwrap()
}

/// What the FIFO holds; removes it.
fn drain_fifo(mut reader: std::fs::File, path: &std::path::Path) -> String {
    let mut lines = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut lines);
    let _ = std::fs::remove_file(path);
    lines
}

#[test]
fn unicast_v3_election_priority_zero_and_preemption() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvag");
    in_netns(&ns, || async {
        let a_conf = node_conf("127.0.0.1", "127.0.0.2", 200);
        let b = start(&node_conf("127.0.0.2", "127.0.0.1", 100));
        let a = start(&a_conf);
        // Both start as backup; the higher one wins within Master_Down_Interval (~0.33 s).
        wait_for("A to become master", Duration::from_secs(3), || has_vip(&a)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(has_vip(&a) && !has_vip(&b), "exactly one master");
        // A leaves cleanly: priority 0, B takes over after Skew_Time (~0.04 s), well before
        // Master_Down_Interval.
        let Node { dp: a_dp, stop, task } = a;
        stop.send(true).unwrap();
        task.await.unwrap();
        assert!(a_dp.vips().is_empty(), "A removed its VIP on shutdown");
        let t = wait_for("B to take over", Duration::from_secs(3), || has_vip(&b)).await;
        assert!(t < Duration::from_millis(300), "took {t:?}: priority 0 should skip Master_Down_Interval");
        // A returns with the higher priority and preempts.
        let a = start(&a_conf);
        wait_for("A to preempt", Duration::from_secs(3), || has_vip(&a)).await;
        wait_for("B to step down", Duration::from_secs(1), || !has_vip(&b)).await;
        stop_nodes([a, b]).await;
    });
}

/// keepalived's `unicast_ttl` and a peer's `min_ttl`/`max_ttl`: unicast adverts may
/// arrive routed, so no 255 rule applies to them (A sends with TTL 64 and B, with no
/// range, follows A); a range the TTL misses drops them (B, wanting at least 100, hears
/// nothing and becomes master too).
#[test]
fn unicast_adverts_take_their_ttl_range_not_the_multicast_255() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvtl");
    in_netns(&ns, || async {
        let a_conf =
            node_conf("127.0.0.1", "127.0.0.2", 200).replace(" unicast_peer", " unicast_ttl 64\n unicast_peer");
        let a = start(&a_conf);
        let b = start(&node_conf("127.0.0.2", "127.0.0.1", 100));
        wait_for("A to become master", Duration::from_secs(3), || has_vip(&a)).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(has_vip(&a) && !has_vip(&b), "B follows A's TTL-64 adverts");
        stop_nodes([b]).await;
        let strict_b = node_conf("127.0.0.2", "127.0.0.1", 100).replace("  127.0.0.1\n", "  127.0.0.1 min_ttl 100\n");
        let b = start(&strict_b);
        wait_for("B, deaf to A's TTL 64, to become master too", Duration::from_secs(3), || has_vip(&b)).await;
        stop_nodes([a, b]).await;
    });
}

/// keepalived's `unicast_fault_no_peer`: an instance whose `unicast_peer` block is empty
/// stays in FAULT (no multicast fallback), holding nothing; without the block the keyword
/// changes nothing.
#[test]
fn unicast_fault_no_peer_holds_an_instance_without_peers_in_fault() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvnp");
    in_netns(&ns, || async {
        let conf = |block: &str| {
            format!(
                "vrrp_instance VI {{\n interface lo\n version 3\n virtual_router_id 42\n priority 200\n advert_int 0.1\n\
                 unicast_fault_no_peer\n{block} virtual_ipaddress {{\n  192.0.2.42/32\n }}\n}}\n"
            )
        };
        let (n, running) = start_watched(&conf(" unicast_peer {\n }\n"));
        let insts = running.await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(insts[0].borrow().state, State::Fault, "no peers: FAULT");
        assert!(!has_vip(&n));
        let m = start(&conf(""));
        wait_for("the instance without the block to become master", Duration::from_secs(3), || has_vip(&m)).await;
        stop_nodes([n, m]).await;
    });
}

/// keepalived's `vrrp_garp_interval`: a master's burst of gratuitous ARPs (here 20,
/// `garp_master_repeat`) is sent one at a time, 0.1 s apart, from a task of the instance,
/// which stops when it leaves MASTER (a higher priority preempts it) or stops; without
/// the interval the burst is one call with its count (the other node's).
#[test]
fn vrrp_garp_interval_spaces_the_burst_until_master_is_left() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvgi");
    in_netns(&ns, || async {
        let garps = |n: &Node| -> Vec<u32> {
            n.dp.calls()
                .into_iter()
                .filter_map(|c| match c {
                    Call::Garp(_, _, count) => Some(count),
                    _ => None,
                })
                .collect()
        };
        let spaced = format!(
            "global_defs {{\n vrrp_garp_interval 0.1\n vrrp_garp_master_repeat 20\n}}\n{}",
            node_conf("127.0.0.1", "127.0.0.2", 100)
        );
        let a = start(&spaced);
        wait_for("A master", Duration::from_secs(3), || has_vip(&a)).await;
        assert!(garps(&a).len() <= 2, "spaced, not at once: {:?}", garps(&a));
        wait_for("a few spaced ARPs", Duration::from_secs(2), || garps(&a).len() >= 4).await;
        assert!(garps(&a).iter().all(|&c| c == 1), "{:?}", garps(&a));
        assert!(garps(&a).len() < 10, "still spacing: {:?}", garps(&a));
        // B preempts: A leaves MASTER and its burst stops.
        let b = start(&node_conf("127.0.0.2", "127.0.0.1", 200));
        wait_for("B master", Duration::from_secs(3), || has_vip(&b)).await;
        wait_for("A out of MASTER", Duration::from_secs(1), || !has_vip(&a)).await;
        let sent = garps(&a).len();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(garps(&a).len(), sent, "the burst stopped with MASTER: {:?}", garps(&a));
        assert!(sent < 20, "{sent}");
        // B (no interval): its burst is one call with the count.
        assert_eq!(garps(&b), [5], "keepalived's default garp_master_repeat, at once");
        stop_nodes([a, b]).await;
    });
}

/// keepalived's virtual_routes follow the VRRP state as the VIPs do: in the master's
/// dataplane only (added on MASTER, removed on BACKUP and on stop); static_routes stay
/// on both nodes whatever the state.
#[test]
fn virtual_routes_are_held_only_while_master() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvvr");
    in_netns(&ns, || async {
        let routes = "static_routes {\n 10.77.0.0/16 via 192.0.2.254\n}\n";
        let with_routes = |conf: String| {
            format!(
                "{routes}{}",
                conf.replace(
                    " virtual_ipaddress",
                    " virtual_routes {\n  10.66.0.0/16 via 192.0.2.1 dev dpdk1 metric 5\n  default via 192.0.2.2\n }\n virtual_ipaddress"
                )
            )
        };
        let a_conf = with_routes(node_conf("127.0.0.1", "127.0.0.2", 200));
        let b = start(&with_routes(node_conf("127.0.0.2", "127.0.0.1", 100)));
        let a = start(&a_conf);
        let prefixes = |n: &Node| {
            let mut v: Vec<String> = n.dp.routes().iter().map(|r| r.prefix.to_string()).collect();
            v.sort();
            v
        };
        let master = ["0.0.0.0/0", "10.66.0.0/16", "10.77.0.0/16"];
        wait_for("A to become master", Duration::from_secs(3), || has_vip(&a)).await;
        wait_for("A's virtual routes", Duration::from_secs(1), || prefixes(&a) == master).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(prefixes(&b), ["10.77.0.0/16"], "the backup holds the static route only");
        let r = a.dp.routes().into_iter().find(|r| r.prefix.to_string() == "10.66.0.0/16").unwrap();
        assert_eq!((r.via.map(|v| v.to_string()), r.dev.as_str(), r.metric), (Some("192.0.2.1".into()), "dpdk1", 5));
        // A stops: its virtual routes leave with its VIP, B (now master) adds them.
        let Node { dp: a_dp, stop, task } = a;
        stop.send(true).unwrap();
        task.await.unwrap();
        let left: Vec<String> = a_dp.routes().iter().map(|r| r.prefix.to_string()).collect();
        assert_eq!(left, ["10.77.0.0/16"], "a stopped instance removed its virtual routes");
        wait_for("B's virtual routes", Duration::from_secs(3), || has_vip(&b) && prefixes(&b) == master).await;
        // A returns and preempts: B, back to BACKUP, removes them; A has them again.
        let a = start(&a_conf);
        wait_for("A to preempt", Duration::from_secs(3), || has_vip(&a) && prefixes(&a) == master).await;
        wait_for("B to drop them", Duration::from_secs(1), || prefixes(&b) == ["10.77.0.0/16"]).await;
        assert!(!has_vip(&b));
        stop_nodes([a, b]).await;
    });
}

async fn http_server(port: u16) -> tokio::task::JoinHandle<()> {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        loop {
            let (mut c, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut b = [0u8; 1024];
                let _ = c.read(&mut b).await;
                let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\nalive\n").await;
            });
        }
    })
}

#[test]
fn stopped_http_server_gets_weight_zero_and_returns() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvhc");
    in_netns(&ns, || async {
        let port = 18080;
        let server = http_server(port).await;
        let conf = format!(
            "virtual_server 192.0.2.1 80 {{\n lb_kind FNAT\n lb_algo wrr\n delay_loop 0.2\n\
             real_server 127.0.0.1 {port} {{\n  weight 7\n  inhibit_on_failure\n\
             HTTP_GET {{\n   url {{\n    path /health\n    status_code 200\n   }}\n\
             connect_timeout 0.2\n   retry 1\n   delay_before_retry 0.1\n  }}\n }}\n}}\n"
        );
        let n = start(&conf);
        let key = ServiceKey::new(Proto::Tcp, "192.0.2.1".parse().unwrap(), 80);
        let weight = |n: &Node| n.dp.service(&key).map(|s| s.real_servers[0].weight);
        wait_for("the service to load", Duration::from_secs(1), || weight(&n) == Some(7)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(weight(&n), Some(7), "a healthy server keeps its weight");
        server.abort();
        let _ = server.await;
        // delay_loop x (retry + 1) = 0.4 s, plus connect timeouts and delay_before_retry.
        let t = wait_for("weight 0", Duration::from_secs(2), || weight(&n) == Some(0)).await;
        eprintln!("weight 0 after {t:?}");
        let server = http_server(port).await;
        let t = wait_for("weight back", Duration::from_secs(2), || weight(&n) == Some(7)).await;
        eprintln!("weight restored after {t:?}");
        server.abort();
        n.stop.send(true).unwrap();
        n.task.await.unwrap();
    });
}

#[test]
fn sync_group_member_fault_holds_the_whole_group() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvsg");
    ns.ip(&["link", "add", "trk0", "type", "veth", "peer", "name", "trk1"]);
    ns.ip(&["link", "set", "trk1", "up"]);
    let ns_name = ns.name().to_string();
    in_netns(&ns, move || async move {
        let inst = |name: &str, vrid: u8, vip: &str, track: &str| {
            format!(
                "vrrp_instance {name} {{\n interface lo\n version 3\n virtual_router_id {vrid}\n priority 100\n\
                 advert_int 0.1\n unicast_src_ip 127.0.0.1\n unicast_peer {{\n  127.0.0.9\n }}\n{track}\
                 virtual_ipaddress {{\n  {vip}\n }}\n}}\n"
            )
        };
        let conf = format!(
            "vrrp_sync_group G {{\n group {{\n  A\n  B\n }}\n}}\n{}{}",
            inst("A", 11, "192.0.2.11", " track_interface {\n  trk0\n }\n"),
            inst("B", 12, "192.0.2.12", "")
        );
        let n = start(&conf);
        // trk0 is down: A is in fault, and so is B although nothing of its own failed.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(n.dp.vips().is_empty(), "{:?}", n.dp.vips());
        testnet::sh(&["ip", "-n", &ns_name, "link", "set", "trk0", "up"]);
        wait_for("both to become master", Duration::from_secs(3), || n.dp.vips().len() == 2).await;
        n.stop.send(true).unwrap();
        n.task.await.unwrap();
    });
}

/// keepalived's `vrrp_sync_fault` for any cause: a group of two instances on two
/// interfaces, both MASTER; one member's interface is deleted (its own FAULT, as rvsd's
/// twin going away): the other leaves MASTER too and the group's FIFO line says FAULT;
/// the interface back, both are MASTER again.
#[test]
fn sync_group_member_losing_its_interface_takes_the_group_to_fault() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvsf");
    let dir = std::env::temp_dir().join(testnet::unique("rvssf"));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("vrrp.fifo");
    let ns_name = ns.name().to_string();
    let make = move |n: u8| {
        let ip = |args: &[&str]| testnet::sh(&[&["ip", "-n", &ns_name][..], args].concat());
        // Two subnets: sf1 192.0.2.1/24, sf2 198.51.100.2/24.
        let (dev, peer) = (format!("sf{n}"), format!("sf{n}p"));
        let addr = if n == 1 { "192.0.2.1/24" } else { "198.51.100.2/24" };
        ip(&["link", "add", &dev, "type", "veth", "peer", "name", &peer]);
        ip(&["addr", "add", addr, "dev", &dev]);
        ip(&["link", "set", &peer, "up"]);
        ip(&["link", "set", &dev, "up"]);
    };
    make(1);
    make(2);
    let ns_name = ns.name().to_string();
    let fifo_c = fifo.clone();
    let reader = in_netns_ret(&ns, move || async move {
        let inst = |name: &str, dev: &str, vrid: u8, peer: &str, vip: &str| {
            format!(
                "vrrp_instance {name} {{\n interface {dev}\n version 3\n virtual_router_id {vrid}\n priority 100\n\
                 advert_int 0.1\n unicast_peer {{\n  {peer}\n }}\n virtual_ipaddress {{\n  {vip}/32\n }}\n}}\n"
            )
        };
        let conf = format!(
            "global_defs {{\n vrrp_notify_fifo {}\n}}\nvrrp_sync_group G {{\n group {{\n  A\n  B\n }}\n}}\n{}{}",
            fifo_c.display(),
            inst("A", "sf1", 31, "192.0.2.99", "192.0.2.31"),
            inst("B", "sf2", 32, "198.51.100.99", "198.51.100.32"),
        );
        let n = start(&conf);
        let reader = fifo_reader(fifo_c);
        wait_for("both MASTER", Duration::from_secs(3), || n.dp.vips().len() == 2).await;
        testnet::sh(&["ip", "-n", &ns_name, "link", "del", "sf2"]);
        wait_for("both out of MASTER", Duration::from_secs(2), || n.dp.vips().is_empty()).await;
        // And they stay out while B's interface is missing (A's timer runs out meanwhile).
        for _ in 0..16 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(n.dp.vips().is_empty(), "the group stays in FAULT: {:?}", n.dp.vips());
        }
        make(2);
        wait_for("both MASTER again", Duration::from_secs(3), || n.dp.vips().len() == 2).await;
        n.stop.send(true).unwrap();
        n.task.await.unwrap();
        reader
    });
    let lines = reader.join().unwrap();
    let of = |prefix: &str| -> Vec<String> { lines.iter().filter(|l| l.starts_with(prefix)).cloned().collect() };
    assert_eq!(
        of("GROUP \"G\""),
        [
            "GROUP \"G\" BACKUP 0",
            "GROUP \"G\" MASTER 0",
            "GROUP \"G\" FAULT 0",
            "GROUP \"G\" BACKUP 0",
            "GROUP \"G\" MASTER 0",
            "GROUP \"G\" STOP 0"
        ],
        "{lines:#?}"
    );
    for i in ["A", "B"] {
        let want: Vec<String> = ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "STOP"]
            .iter()
            .map(|s| format!("INSTANCE \"{i}\" {s} 100"))
            .collect();
        assert_eq!(of(&format!("INSTANCE \"{i}\"")), want, "{lines:#?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// keepalived's `track_src_ip`: an instance whose `unicast_src_ip` is not on its interface
/// is in FAULT (from the start), and follows the address being added, removed and added
/// back.
#[test]
fn track_src_ip_holds_the_instance_in_fault_while_its_source_is_gone() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvts");
    in_netns(&ns, || async {
        let ip = |verb: &str| {
            let ok = std::process::Command::new("ip").args(["addr", verb, "10.9.9.1/32", "dev", "lo"]).status();
            assert!(ok.unwrap().success(), "ip addr {verb}");
        };
        let conf = node_conf("10.9.9.1", "10.9.9.2", 200).replace("unicast_src_ip", "track_src_ip\n unicast_src_ip");
        assert!(conf.contains("track_src_ip"));
        let (n, running) = start_watched(&conf);
        let insts = running.await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(insts[0].borrow().state, State::Fault, "the source address is not on lo");
        assert!(!has_vip(&n));
        ip("add");
        wait_for("master once the address is there", Duration::from_secs(3), || has_vip(&n)).await;
        ip("del");
        wait_for("FAULT once it is gone", Duration::from_secs(2), || !has_vip(&n)).await;
        assert_eq!(insts[0].borrow().state, State::Fault);
        ip("add");
        wait_for("master again", Duration::from_secs(3), || has_vip(&n)).await;
        stop_nodes([n]).await;
    });
}

/// keepalived's `vrrp_track_process`: A tracks a process (a `sleep` with a parameter of
/// its own, matched on its command line, `weight -150 reverse` on the entry turned back
/// by `noreverse`); the process ends: A drops to 50 and B preempts; it runs again: A
/// preempts back.
#[test]
fn a_tracked_process_ending_lowers_priority_and_the_backup_preempts() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvtp");
    let arg = format!("{}.{}", 4000 + std::process::id() % 1000, std::process::id() % 997);
    let run = |arg: &str| {
        let c = std::process::Command::new("sleep").arg(arg).stdout(std::process::Stdio::null()).spawn();
        testnet::ChildGuard::new(c.unwrap())
    };
    let sleeper = run(&arg);
    in_netns(&ns, move || async move {
        let a_conf = format!(
            "vrrp_track_process sleeper {{\n process sleep {arg}\n weight -150 reverse\n}}\n{}",
            node_conf("127.0.0.1", "127.0.0.2", 200).replace(
                " virtual_ipaddress",
                " track_process {\n  sleeper weight -150 noreverse\n }\n virtual_ipaddress"
            )
        );
        let a = start(&a_conf);
        let b = start(&node_conf("127.0.0.2", "127.0.0.1", 100));
        wait_for("A to become master", Duration::from_secs(3), || has_vip(&a)).await;
        drop(sleeper);
        wait_for("B to preempt", Duration::from_secs(3), || has_vip(&b)).await;
        wait_for("A to step down", Duration::from_secs(1), || !has_vip(&a)).await;
        let again = run(&arg);
        wait_for("A to preempt back", Duration::from_secs(3), || has_vip(&a) && !has_vip(&b)).await;
        drop(again);
        stop_nodes([a, b]).await;
    });
}

#[test]
fn failing_tracked_script_lowers_priority_and_the_backup_preempts() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvts");
    let flag = std::env::temp_dir().join(testnet::unique("rvsflag"));
    std::fs::write(&flag, b"").unwrap();
    let flag_s = flag.display().to_string();
    // keepalived's notify_fifo: A's state changes as lines, read by a reader that holds
    // the FIFO open (as a notify_fifo consumer does).
    let fifo = std::env::temp_dir().join(testnet::unique("rvsfifo"));
    let reader = open_fifo(&fifo);
    let fifo_s = fifo.display().to_string();
    in_netns(&ns, move || async move {
        let a_conf = format!(
            "global_defs {{\n notify_fifo {fifo_s}\n vrrp_notify_priority_changes\n}}\n\
             vrrp_script chk {{\n script \"test -e {flag_s}\"\n interval 0.05\n fall 2\n rise 2\n weight -150\n}}\n{}",
            node_conf("127.0.0.1", "127.0.0.2", 200)
                .replace(" virtual_ipaddress", " track_script {\n  chk\n }\n virtual_ipaddress")
        );
        let a = start(&a_conf);
        let b = start(&node_conf("127.0.0.2", "127.0.0.1", 100));
        wait_for("A to become master", Duration::from_secs(3), || has_vip(&a)).await;
        // The script fails: A advertises 50 < 100 and B (preempt) takes over.
        std::fs::remove_file(&flag_s).unwrap();
        wait_for("B to preempt", Duration::from_secs(3), || has_vip(&b)).await;
        wait_for("A to step down", Duration::from_secs(1), || !has_vip(&a)).await;
        // It recovers: A is back at 200 and preempts B.
        std::fs::write(&flag_s, b"").unwrap();
        wait_for("A to preempt back", Duration::from_secs(3), || has_vip(&a) && !has_vip(&b)).await;
        let _ = std::fs::remove_file(&flag_s);
        stop_nodes([a, b]).await;
    });
    let lines = drain_fifo(reader, &fifo);
    let masters: Vec<&str> = lines.lines().filter(|l| l.split(' ').nth(2) == Some("MASTER")).collect();
    assert!(lines.starts_with("INSTANCE \"VI\" BACKUP 200\n"), "{lines}");
    assert_eq!(masters, ["INSTANCE \"VI\" MASTER 200", "INSTANCE \"VI\" MASTER 200"], "{lines}");
    assert!(lines.contains("INSTANCE \"VI\" BACKUP 50\n"), "stepped down at its lowered priority: {lines}");
    // keepalived's vrrp_notify_priority_changes: each change, in the state it found.
    let changes: Vec<&str> = lines.lines().filter(|l| l.contains("_PRIORITY")).collect();
    assert_eq!(changes, ["INSTANCE \"VI\" MASTER_PRIORITY 50", "INSTANCE \"VI\" BACKUP_PRIORITY 200"], "{lines}");
}

/// keepalived's `notify_master_rx_lower_pri`: a master that hears a lower priority (B
/// starts with `state MASTER`, priority 100, and advertises before it hears A) runs the
/// script (as the user named after it) and writes `INSTANCE "VI" MASTER_RX_LOWER_PRI 200`
/// to its notify FIFO; B steps down.
#[test]
fn a_master_hearing_a_lower_priority_runs_notify_master_rx_lower_pri() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvlp");
    let mark = std::env::temp_dir().join(testnet::unique("rvslower"));
    let fifo = std::env::temp_dir().join(testnet::unique("rvsfifo"));
    let reader = open_fifo(&fifo);
    let (mark_s, fifo_s) = (mark.display().to_string(), fifo.display().to_string());
    let mark_c = mark.clone();
    in_netns(&ns, move || async move {
        let a_conf = format!(
            "global_defs {{\n vrrp_notify_fifo {fifo_s}\n}}\n{}",
            node_conf("127.0.0.1", "127.0.0.2", 200).replace(
                " virtual_ipaddress",
                &format!(" notify_master_rx_lower_pri \"/bin/touch {mark_s}\" nobody\n virtual_ipaddress")
            )
        );
        let a = start(&a_conf);
        wait_for("A to become master", Duration::from_secs(3), || has_vip(&a)).await;
        let b = start(&node_conf("127.0.0.2", "127.0.0.1", 100).replace(" priority", " state MASTER\n priority"));
        wait_for("A's notify_master_rx_lower_pri", Duration::from_secs(3), || mark_c.exists()).await;
        wait_for("B to step down", Duration::from_secs(3), || !has_vip(&b)).await;
        assert!(has_vip(&a));
        stop_nodes([a, b]).await;
    });
    let lines = drain_fifo(reader, &fifo);
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&mark).unwrap());
    let _ = std::fs::remove_file(&mark);
    assert!(lines.contains("INSTANCE \"VI\" MASTER_RX_LOWER_PRI 200\n"), "{lines}");
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    assert_eq!(owner, nobody.uid.as_raw(), "the script ran as the user after it");
}

/// A TCP server on 127.0.0.1:`port` that accepts (a TCP_CHECK's target).
async fn accept_all(port: u16) -> tokio::task::JoinHandle<()> {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        loop {
            let _ = l.accept().await;
        }
    })
}

/// keepalived's `alpha`: the services the agent first gives the dataplane leave out a real
/// server whose TCP_CHECK has not passed yet (weight 0 with `inhibit_on_failure`) and keep
/// one without checkers; while nothing listens nothing changes, and once a real TCP server
/// answers on each port its checker brings it in at its weight.
#[test]
fn alpha_servers_join_once_their_tcp_check_passes() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rval");
    in_netns(&ns, || async {
        let conf = "virtual_server 192.0.2.1 80 {\n lb_kind FNAT\n lb_algo wrr\n alpha\n delay_loop 0.2\n\
             real_server 127.0.0.1 18101 {\n  weight 5\n  TCP_CHECK {\n   connect_timeout 0.2\n  }\n }\n\
             real_server 127.0.0.1 18102 {\n  weight 3\n  inhibit_on_failure\n\
             TCP_CHECK {\n   connect_timeout 0.2\n  }\n }\n\
             real_server 127.0.0.2 18103 {\n  weight 2\n }\n}\n";
        let n = start(conf);
        let key = ServiceKey::new(Proto::Tcp, "192.0.2.1".parse().unwrap(), 80);
        let weights = |n: &Node| -> Vec<(u16, u32)> {
            let mut v: Vec<(u16, u32)> =
                n.dp.service(&key)
                    .map(|s| s.real_servers.iter().map(|r| (r.addr.port(), r.weight)).collect())
                    .unwrap_or_default();
            v.sort();
            v
        };
        wait_for("the service to load", Duration::from_secs(1), || n.dp.service(&key).is_some()).await;
        assert_eq!(weights(&n), [(18102, 0), (18103, 2)], "the checked servers are not in yet");
        // Nothing listens: a few failing rounds (delay_loop 0.2 s) change nothing.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(weights(&n), [(18102, 0), (18103, 2)]);
        assert_eq!(n.dp.calls(), [Call::SetServices(vec![key])], "nothing but the first services");
        // The real servers start: each comes in within a round.
        let a = accept_all(18101).await;
        let b = accept_all(18102).await;
        let t = wait_for("the checked servers to come in", Duration::from_secs(2), || {
            weights(&n) == [(18101, 5), (18102, 3), (18103, 2)]
        })
        .await;
        eprintln!("in after {t:?}");
        let calls = n.dp.calls();
        assert!(calls.contains(&Call::AddRs(key, "127.0.0.1:18101".parse().unwrap(), 5)), "{calls:?}");
        assert!(calls.contains(&Call::SetWeight(key, "127.0.0.1:18102".parse().unwrap(), 3)), "{calls:?}");
        assert_eq!(calls.len(), 3, "{calls:?}");
        n.stop.send(true).unwrap();
        n.task.await.unwrap();
        a.abort();
        b.abort();
    });
}

/// keepalived's `virtual_server fwmark`: a DR real server written with a port is in the
/// fwmark service with port 0 (each flow keeps its destination port: rvsd refuses another
/// for DR) while its TCP_CHECK connects to the port written; the server stopping takes it
/// to weight 0 (`inhibit_on_failure`) by the fwmark service's key, and back.
#[test]
fn a_fwmark_dr_server_is_checked_on_its_port_and_served_on_port_zero() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvfw");
    in_netns(&ns, || async {
        let conf = "virtual_server fwmark 7 {\n lb_kind DR\n lb_algo wrr\n delay_loop 0.2\n\
             real_server 127.0.0.1 18121 {\n  weight 4\n  inhibit_on_failure\n\
             TCP_CHECK {\n   connect_timeout 0.2\n   retry 1\n   delay_before_retry 0.1\n  }\n }\n}\n";
        let server = accept_all(18121).await;
        let n = start(conf);
        let key = ServiceKey::of_fwmark(7, false);
        let rs = |n: &Node| -> Option<Vec<(String, u32)>> {
            n.dp.service(&key).map(|s| s.real_servers.iter().map(|r| (r.addr.to_string(), r.weight)).collect())
        };
        let at = |w: u32| Some(vec![("127.0.0.1:0".to_string(), w)]);
        wait_for("the service to load", Duration::from_secs(1), || rs(&n).is_some()).await;
        assert_eq!(rs(&n), at(4), "port 0 in the dataplane");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(rs(&n), at(4), "checked healthy on port 18121");
        server.abort();
        let _ = server.await;
        let t = wait_for("weight 0", Duration::from_secs(2), || rs(&n) == at(0)).await;
        eprintln!("weight 0 after {t:?}");
        let server = accept_all(18121).await;
        wait_for("weight back", Duration::from_secs(2), || rs(&n) == at(4)).await;
        let zero = Call::SetWeight(key, "127.0.0.1:0".parse().unwrap(), 0);
        assert!(n.dp.calls().contains(&zero), "{:?}", n.dp.calls());
        server.abort();
        n.stop.send(true).unwrap();
        n.task.await.unwrap();
    });
}

/// A thread reading `fifo` line by line (a blocking reader, as a notify_fifo consumer),
/// until the writer closes it.
fn fifo_reader(fifo: std::path::PathBuf) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        use std::io::BufRead;
        // The agent makes the FIFO as it starts: wait for it.
        let t = std::time::Instant::now();
        while !fifo.exists() {
            assert!(t.elapsed() < Duration::from_secs(5), "{} not made within 5 s", fifo.display());
            std::thread::sleep(Duration::from_millis(10));
        }
        let f = std::fs::File::open(&fifo).unwrap();
        std::io::BufReader::new(f).lines().map(|l| l.unwrap()).collect()
    })
}

/// keepalived's notify FIFOs: the agent makes the missing ones and holds them open, so
/// that VRRP and health-check lines written before a reader attaches wait for it;
/// `vrrp_notify_fifo` gets the INSTANCE lines, `lvs_notify_fifo` the RS/VS lines,
/// `notify_fifo` both, read here by its `notify_fifo_script` (started with the FIFO's
/// path, stopped at exit). The FIFOs the agent made are gone after it stops.
#[test]
fn notify_fifos_keep_lines_for_a_late_reader_through_a_checker_failure() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvff");
    let dir = std::env::temp_dir().join(testnet::unique("rvsfifos"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| dir.join(n);
    let (all, vrrp, lvs) = (p("all.fifo"), p("vrrp.fifo"), p("lvs.fifo"));
    std::fs::write(
        p("reader.sh"),
        format!("echo $$ \"$@\" > {}\nexec cat \"$1\" > {}\n", p("started").display(), p("all.log").display()),
    )
    .unwrap();
    let conf = format!(
        "global_defs {{\n notify_fifo {}\n notify_fifo_script \"/bin/sh {}\"\n vrrp_notify_fifo {}\n lvs_notify_fifo {}\n}}\n{}\
         virtual_server 192.0.2.42 80 {{\n lb_kind FNAT\n delay_loop 0.2\n\
         real_server 127.0.0.1 18095 {{\n  weight 7\n  inhibit_on_failure\n\
         TCP_CHECK {{\n   connect_timeout 0.2\n   retry 0\n  }}\n }}\n}}\n",
        all.display(),
        p("reader.sh").display(),
        vrrp.display(),
        lvs.display(),
        node_conf("127.0.0.1", "127.0.0.2", 200)
    );
    let (vrrp_c, lvs_c, all_log) = (vrrp.clone(), lvs.clone(), p("all.log"));
    let readers = in_netns_ret(&ns, move || async move {
        let server = accept_all(18095).await;
        let n = start(&conf);
        let key = ServiceKey::new(Proto::Tcp, "192.0.2.42".parse().unwrap(), 80);
        let weight = |n: &Node| n.dp.service(&key).map(|s| s.real_servers[0].weight);
        wait_for("master", Duration::from_secs(3), || has_vip(&n)).await;
        wait_for("the service", Duration::from_secs(1), || weight(&n) == Some(7)).await;
        // The server fails while nobody reads the FIFOs.
        server.abort();
        let _ = server.await;
        wait_for("weight 0", Duration::from_secs(3), || weight(&n) == Some(0)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The readers attach now (the agent holds the FIFOs open: no wait), then it recovers.
        let readers = (fifo_reader(vrrp_c), fifo_reader(lvs_c));
        let server = accept_all(18095).await;
        wait_for("weight back", Duration::from_secs(3), || weight(&n) == Some(7)).await;
        // The script's reader copies the FIFO to its log on its own time: the last
        // line (the second quorum UP, after the start's) must be there before the agent
        // stops it (on a loaded machine it lags).
        let logged =
            || std::fs::read_to_string(&all_log).is_ok_and(|l| l.matches("VS [192.0.2.42]:tcp:80 UP\n").count() == 2);
        wait_for("the script's log", Duration::from_secs(5), logged).await;
        n.stop.send(true).unwrap();
        n.task.await.unwrap();
        server.abort();
        readers
    });
    let vrrp_lines = readers.0.join().unwrap();
    let lvs_lines = readers.1.join().unwrap();
    // BACKUP at start, MASTER, and STOP when the agent stops (keepalived's notify_shutdown).
    let want_vrrp = ["INSTANCE \"VI\" BACKUP 200", "INSTANCE \"VI\" MASTER 200", "INSTANCE \"VI\" STOP 200"];
    assert_eq!(vrrp_lines, want_vrrp, "written before the reader attached");
    let rs = "RS [127.0.0.1]:tcp:18095 [192.0.2.42]:tcp:80";
    // The quorum is met at start: keepalived's "Starting with quorum up" line first.
    let want = [
        "VS [192.0.2.42]:tcp:80 UP".into(),
        format!("{rs} DOWN"),
        "VS [192.0.2.42]:tcp:80 DOWN".into(),
        format!("{rs} UP"),
        "VS [192.0.2.42]:tcp:80 UP".into(),
    ];
    assert_eq!(lvs_lines, want, "the DOWN lines were written before the reader attached");
    for f in [&all, &vrrp, &lvs] {
        assert!(std::fs::symlink_metadata(f).is_err(), "{} made by the agent, removed at exit", f.display());
    }
    // notify_fifo's script: started with the FIFO as argument, got both kinds, stopped.
    let started = std::fs::read_to_string(p("started")).unwrap();
    let (pid, arg) = started.trim().split_once(' ').unwrap();
    assert_eq!(arg, all.display().to_string());
    let pid = nix::unistd::Pid::from_raw(pid.parse().unwrap());
    assert_eq!(nix::sys::signal::kill(pid, None), Err(nix::errno::Errno::ESRCH), "the script was stopped");
    let log = std::fs::read_to_string(p("all.log")).unwrap();
    // (The checker's and the instance's lines interleave as they come, as keepalived's two
    // processes'.)
    let inst: Vec<&str> = log.lines().filter(|l| l.starts_with("INSTANCE")).collect();
    assert!(inst.starts_with(&["INSTANCE \"VI\" BACKUP 200", "INSTANCE \"VI\" MASTER 200"]), "{log}");
    for l in &want {
        assert!(log.contains(&format!("{l}\n")), "{l} in {log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// keepalived 2.2's track_file in a vrrp_instance: the file's number times the weight
/// moves the priority (at -254 or below: FAULT); with weight 0 any non-zero number is
/// FAULT (VIPs released), zero again and the instance comes back.
#[test]
fn track_file_moves_the_priority_and_weight_zero_faults() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvtf");
    let dir = std::env::temp_dir().join(testnet::unique("rvstf"));
    std::fs::create_dir_all(&dir).unwrap();
    let (prio, down) = (dir.join("prio"), dir.join("down"));
    std::fs::write(&prio, "2\n").unwrap();
    let conf = format!(
        "track_file prio {{\n file {}\n}}\nvrrp_track_file down {{\n file {}\n weight 0\n}}\n{}",
        prio.display(),
        down.display(),
        node_conf("127.0.0.1", "127.0.0.2", 100)
            .replace(" virtual_ipaddress", " track_file {\n  prio weight 10\n  down\n }\n virtual_ipaddress")
    );
    let (prio_c, down_c) = (prio.clone(), down.clone());
    in_netns(&ns, move || async move {
        let l = parse_str(&conf, "node.conf", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let dp = Arc::new(FakeDataplane::new());
        let (stop, rx) = watch::channel(false);
        let (st_tx, st_rx) = std::sync::mpsc::channel();
        let d = dp.clone();
        let task = tokio::spawn(async move {
            rvs_agent::agent::run(l.config, d, rx, move |r| st_tx.send(r.instances()[0].clone()).unwrap())
                .await
                .unwrap();
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let st = st_rx.try_recv().expect("started");
        let now = || {
            let s = st.borrow();
            (s.state, s.priority)
        };
        // 100 + 2 x 10 from the start (the file is read before the instance runs).
        assert_eq!(now().1, 120);
        wait_for("master at 120", Duration::from_secs(3), || now() == (State::Master, 120) && !dp.vips().is_empty())
            .await;
        std::fs::write(&prio_c, "-3").unwrap();
        wait_for("priority 70", Duration::from_secs(3), || now() == (State::Master, 70)).await;
        // weight 0: a non-zero number is FAULT.
        std::fs::write(&down_c, "1\n").unwrap();
        wait_for("FAULT", Duration::from_secs(3), || now().0 == State::Fault && dp.vips().is_empty()).await;
        std::fs::write(&down_c, "0\n").unwrap();
        wait_for("master again", Duration::from_secs(3), || now() == (State::Master, 70) && !dp.vips().is_empty())
            .await;
        // -30 x 10 is below -254: FAULT too; a missing file reads 0.
        std::fs::write(&prio_c, "-30").unwrap();
        wait_for("FAULT at -300", Duration::from_secs(3), || now().0 == State::Fault && dp.vips().is_empty()).await;
        std::fs::remove_file(&prio_c).unwrap();
        wait_for("master at 100", Duration::from_secs(3), || now() == (State::Master, 100)).await;
        stop.send(true).unwrap();
        task.await.unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn own_interface_missing_or_gone_means_fault_and_its_return_backup() {
    // rvsd's twins exist only while rvsd runs: the instance must wait for its interface,
    // leave when it disappears, and come back on the new one.
    if !root() {
        return;
    }
    let ns = NetNs::new("rvif");
    let ns_name = ns.name().to_string();
    let make = move || {
        let ip = |args: &[&str]| testnet::sh(&[&["ip", "-n", &ns_name][..], args].concat());
        ip(&["link", "add", "twin0", "type", "veth", "peer", "name", "twin0p"]);
        ip(&["addr", "add", "192.0.2.1/24", "dev", "twin0"]);
        ip(&["link", "set", "twin0p", "up"]);
        ip(&["link", "set", "twin0", "up"]);
    };
    let ns_name = ns.name().to_string();
    in_netns(&ns, move || async move {
        let conf = "vrrp_instance VI {\n interface twin0\n version 3\n virtual_router_id 9\n priority 100\n\
                    advert_int 0.1\n unicast_peer {\n  192.0.2.99\n }\n virtual_ipaddress {\n  192.0.2.100/32\n }\n}\n";
        let l = parse_str(conf, "node.conf", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let dp = Arc::new(FakeDataplane::new());
        let (stop, rx) = watch::channel(false);
        let (st_tx, st_rx) = std::sync::mpsc::channel();
        let d = dp.clone();
        let task = tokio::spawn(async move {
            rvs_agent::agent::run(l.config, d, rx, move |r| st_tx.send(r.instances()[0].clone()).unwrap())
                .await
                .unwrap();
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let st = st_rx.try_recv().expect("the agent started without its interface");
        let state = || st.borrow().state;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(state(), State::Fault, "no interface: FAULT");
        assert!(dp.vips().is_empty());
        make();
        wait_for("master once the interface exists", Duration::from_secs(3), || !dp.vips().is_empty()).await;
        assert_eq!(st.borrow().address.to_string(), "192.0.2.1");
        testnet::sh(&["ip", "-n", &ns_name, "link", "del", "twin0"]);
        wait_for("FAULT when it is gone", Duration::from_secs(2), || dp.vips().is_empty()).await;
        assert_eq!(state(), State::Fault);
        make();
        wait_for("master again on the new interface", Duration::from_secs(3), || !dp.vips().is_empty()).await;
        assert_eq!(state(), State::Master);
        stop.send(true).unwrap();
        task.await.unwrap();
    });
}

/// A reload that changes a `vrrp_sync_group`'s member hands the whole group over, as
/// keepalived's: both members stay master, no VIP is released, and neither the members nor
/// the group notify anything (no FIFO line after the reload but the final STOPs).
#[test]
fn a_reload_hands_a_sync_group_over_in_its_state() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvsgr");
    let dir = std::env::temp_dir().join(testnet::unique("rvsgr"));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("vrrp.fifo");
    let reader = open_fifo(&fifo);
    let fifo_s = fifo.display().to_string();
    in_netns(&ns, move || async move {
        let member = |name: &str, vrid: u8, prio: u8| {
            node_conf("127.0.0.1", "127.0.0.2", prio)
                .replace("VI {", &format!("{name} {{"))
                .replace("router_id 42", &format!("router_id {vrid}"))
                .replace("192.0.2.42/32", &format!("192.0.2.{vrid}/32"))
        };
        let conf = |prio: u8| {
            format!(
                "global_defs {{\n vrrp_notify_fifo {fifo_s}\n}}\nvrrp_sync_group G {{\n group {{\n  A\n  B\n }}\n}}\n{}{}",
                member("A", 51, prio),
                member("B", 52, 100)
            )
        };
        let load = |text: &str| parse_str(text, "g.conf", Options::default());
        let l = load(&conf(150));
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let dp = Arc::new(FakeDataplane::new());
        let (stop, rx) = watch::channel(false);
        let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
        let (st_tx, st_rx) = tokio::sync::oneshot::channel();
        let d = dp.clone();
        let task = tokio::spawn(async move {
            let mut st_tx = Some(st_tx);
            rvs_agent::agent::run_with_reload(l.config, d, rx, reload_rx, move |r| {
                if let Some(tx) = st_tx.take() {
                    let _ = tx.send(r);
                }
            })
            .await
            .unwrap();
        });
        let running = st_rx.await.unwrap();
        let masters = || running.instances().iter().filter(|i| i.borrow().state == State::Master).count();
        wait_for("both members master", Duration::from_secs(3), || masters() == 2 && dp.vips().len() == 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = dp.calls().len();
        reload_tx.send(load(&conf(160))).unwrap();
        wait_for("the successor", Duration::from_secs(3), || running.instances()[0].borrow().priority == 160).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after: Vec<Call> = dp.calls()[before..].iter().filter(|c| !matches!(c, Call::Garp(..))).cloned().collect();
        assert!(after.iter().all(|c| matches!(c, Call::AddVip(..))), "nothing released: {after:?}");
        assert_eq!(masters(), 2, "both still master");
        stop.send(true).unwrap();
        task.await.unwrap();
    });
    let lines = drain_fifo(reader, &fifo);
    let masters: Vec<&str> = lines.lines().filter(|l| l.contains(" MASTER ")).collect();
    assert_eq!(masters.len(), 3, "A, B and G entered MASTER once each, not again at the reload: {lines}");
    assert!(lines.ends_with("STOP 0\n"), "{lines}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGHUP's path (the file re-read with `keepalived::load`, handed to the running agent):
/// one real server's weight changed in the file changes only that weight (one
/// `RealServerEdit`), the master stays master (no election, its VIP never removed), its
/// checkers keep running; an invalid file changes nothing. An instance whose block changes
/// (priority, an address added, then taken away) stays master as keepalived's does: its
/// VIP is never released, the new address is added and the dropped one removed, and no
/// notify runs; removed, it says `DELETED` with `notify_deleted`, else `FAULT`
/// (keepalived's older word), and releases its VIPs.
#[test]
fn reload_applies_only_the_differences_and_refuses_an_invalid_file() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvrl");
    in_netns(&ns, || async {
        let l = tokio::net::TcpListener::bind(("0.0.0.0", 18090)).await.unwrap();
        let server = tokio::spawn(async move {
            loop {
                let _ = l.accept().await;
            }
        });
        let dir = std::env::temp_dir().join(format!("rvs-agent-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("vrrp.fifo");
        let reader = open_fifo(&fifo);
        let second = node_conf("127.0.0.1", "127.0.0.2", 100)
            .replace("VI {", "VI2 {")
            .replace("router_id 42", "router_id 43")
            .replace("192.0.2.42/32", "192.0.2.43/32");
        let with = |w: u32, vrrp: &str| {
            format!(
                "global_defs {{\n vrrp_notify_fifo {}\n}}\n{vrrp}\
                 virtual_server 192.0.2.42 80 {{\n lb_kind FNAT\n lb_algo wrr\n delay_loop 0.2\n\
                 real_server 127.0.0.1 18090 {{\n  weight 5\n  TCP_CHECK {{\n   connect_timeout 0.2\n  }}\n }}\n\
                 real_server 127.0.0.2 18090 {{\n  weight {w}\n  TCP_CHECK {{\n   connect_timeout 0.2\n  }}\n }}\n}}\n",
                fifo.display()
            )
        };
        let conf = |w: u32| with(w, &format!("{}{second}", node_conf("127.0.0.1", "127.0.0.2", 200)));
        let file = dir.join("keepalived.conf");
        std::fs::write(&file, conf(7)).unwrap();
        let load = || rvs_agent::keepalived::load(&file, Options::default());
        let l = load();
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let dp = Arc::new(FakeDataplane::new());
        let (stop, rx) = watch::channel(false);
        let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
        let (st_tx, st_rx) = std::sync::mpsc::channel();
        let d = dp.clone();
        let task = tokio::spawn(async move {
            rvs_agent::agent::run_with_reload(l.config, d, rx, reload_rx, move |r| st_tx.send(r).unwrap())
                .await
                .unwrap();
        });
        wait_for("master", Duration::from_secs(3), || has_vip_dp(&dp)).await;
        let running = st_rx.recv_timeout(Duration::from_secs(1)).unwrap();
        let st = running.instances()[0].clone();
        // Let the checkers run a round or two (both servers answer: no transition).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(st.borrow().state, State::Master);
        let key = ServiceKey::new(Proto::Tcp, "192.0.2.42".parse().unwrap(), 80);
        let not_garp = |c: &Call| !matches!(c, Call::Garp(..));
        let before = dp.calls().len();
        // Watch for any state change of the instance from here on.
        let mut watch_st = st.clone();
        watch_st.borrow_and_update();
        // One weight changes.
        std::fs::write(&file, conf(9)).unwrap();
        reload_tx.send(load()).unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let after: Vec<Call> = dp.calls()[before..].iter().filter(|c| not_garp(c)).cloned().collect();
        assert_eq!(after, [Call::SetWeight(key, "127.0.0.2:18090".parse().unwrap(), 9)]);
        assert_eq!(st.borrow().state, State::Master, "still master");
        assert!(!watch_st.has_changed().unwrap(), "the instance went through no state change");
        assert!(has_vip_dp(&dp));
        let svc = dp.service(&key).unwrap();
        let weights: Vec<u32> = svc.real_servers.iter().map(|r| r.weight).collect();
        assert_eq!(weights, [5, 9]);
        assert!(running.virtual_servers()[0].rs.iter().all(|r| r.up && r.reason.is_none()), "no health change");
        assert_eq!(running.instances().len(), 2);
        // An invalid file: nothing changes.
        std::fs::write(&file, conf(11).replace("lb_algo wrr", "lb_algo wrr\n no_such_keyword 1")).unwrap();
        let bad = load();
        assert!(bad.has_errors());
        let before = dp.calls().len();
        reload_tx.send(bad).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let after: Vec<Call> = dp.calls()[before..].iter().filter(|c| not_garp(c)).cloned().collect();
        assert!(after.is_empty(), "{after:?}");
        assert_eq!(dp.service(&key).unwrap().real_servers[1].weight, 9);
        assert_eq!(st.borrow().state, State::Master);
        assert!(!watch_st.has_changed().unwrap());
        // A valid file again, with the instance's priority changed and an address added:
        // it hands over to its successor, which stays master (keepalived's
        // restore_vrrp_state): nothing released, the new address added, nothing notified.
        let vip = |a: &str| (format!("{a}/32").parse().unwrap(), "lo".to_string());
        let (v42, v44) = (vip("192.0.2.42"), vip("192.0.2.44"));
        let changed = |vips: &str| {
            conf(9)
                .replace("priority 200", "priority 201\n notify_deleted")
                .replace("  192.0.2.42/32\n", &format!("  192.0.2.42/32\n{vips}"))
        };
        std::fs::write(&file, changed("  192.0.2.44/32\n")).unwrap();
        let sent = running.instances()[0].borrow().counters.adverts_sent;
        assert!(sent > 0);
        let before = dp.calls().len();
        reload_tx.send(load()).unwrap();
        wait_for("the successor", Duration::from_secs(3), || running.instances()[0].borrow().priority == 201).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after: Vec<Call> = dp.calls()[before..].iter().filter(|c| not_garp(c)).cloned().collect();
        assert!(after.iter().all(|c| matches!(c, Call::AddVip(..))), "nothing released: {after:?}");
        assert!(after.contains(&Call::AddVip(v44.0, v44.1.clone())), "{after:?}");
        assert_eq!(running.instances()[0].borrow().state, State::Master);
        assert!(running.instances()[0].borrow().counters.adverts_sent > sent, "the counters carry on");
        // The address taken away again: only it goes.
        std::fs::write(&file, changed("")).unwrap();
        let before = dp.calls().len();
        reload_tx.send(load()).unwrap();
        wait_for("192.0.2.44 released", Duration::from_secs(3), || !dp.vips().contains(&v44)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after: Vec<Call> = dp.calls()[before..].iter().filter(|c| not_garp(c)).cloned().collect();
        assert!(!after.contains(&Call::DelVip(v42.0, v42.1.clone())), "{after:?}");
        assert_eq!(running.instances()[0].borrow().state, State::Master);
        // Both instances removed: VI (notify_deleted) says DELETED, VI2 FAULT; both release.
        std::fs::write(&file, with(9, "")).unwrap();
        reload_tx.send(load()).unwrap();
        wait_for("the VIPs released", Duration::from_secs(3), || dp.vips().is_empty()).await;
        stop.send(true).unwrap();
        task.await.unwrap();
        server.abort();
        let lines = drain_fifo(reader, &fifo);
        let vi: Vec<&str> = lines.lines().filter(|l| l.starts_with("INSTANCE \"VI\"")).collect();
        assert_eq!(vi, ["INSTANCE \"VI\" BACKUP 200", "INSTANCE \"VI\" MASTER 200", "INSTANCE \"VI\" DELETED 201"]);
        assert!(lines.contains("INSTANCE \"VI2\" FAULT 100\n"), "{lines}");
        let _ = std::fs::remove_dir_all(&dir);
    });
}

fn has_vip_dp(dp: &FakeDataplane) -> bool {
    !dp.vips().is_empty()
}

/// keepalived's `lvs_sync_daemon`: the instance it names switches the dataplane's
/// connection-sync roles as keepalived switches IPVS's sync daemons: backup at start,
/// master on MASTER, backup on leaving MASTER (for FAULT or BACKUP), nothing between
/// BACKUP and FAULT, both stopped on stop; the sync id is `id`, else the VRID.
#[test]
fn lvs_sync_daemon_roles_follow_the_vrrp_state() {
    use rvs_agent::dataplane::SyncRoles;
    if !root() {
        return;
    }
    let ns = NetNs::new("rvsy");
    let dir = std::env::temp_dir().join(testnet::unique("rvssy"));
    std::fs::create_dir_all(&dir).unwrap();
    let down = dir.join("down");
    let a_conf = format!(
        "global_defs {{\n lvs_sync_daemon eth9 VI\n}}\nvrrp_track_file down {{\n file {}\n weight 0\n}}\n{}",
        down.display(),
        node_conf("127.0.0.1", "127.0.0.2", 100)
            .replace(" virtual_ipaddress", " track_file {\n  down\n }\n virtual_ipaddress")
    );
    let b_conf =
        format!("global_defs {{\n lvs_sync_daemon eth9 inst VI id 7\n}}\n{}", node_conf("127.0.0.2", "127.0.0.1", 250));
    let down_c = down.clone();
    in_netns(&ns, move || async move {
        let roles_of = |dp: &FakeDataplane| -> Vec<SyncRoles> {
            dp.calls()
                .into_iter()
                .filter_map(|c| match c {
                    Call::SyncRoles(r) => Some(r),
                    _ => None,
                })
                .collect()
        };
        let roles = |n: &Node| roles_of(&n.dp);
        let (backup, master, stopped) =
            (SyncRoles::for_master(false, 42), SyncRoles::for_master(true, 42), SyncRoles::stopped(42));
        let a = start(&a_conf);
        wait_for("A to become master", Duration::from_secs(3), || has_vip(&a)).await;
        assert_eq!(roles(&a), [backup, master], "backup at start, master on MASTER (syncid: the VRID)");
        // MASTER -> FAULT: the backup role (keepalived's vrrp_state_leave_master).
        std::fs::write(&down_c, "1\n").unwrap();
        wait_for("A in FAULT", Duration::from_secs(3), || !has_vip(&a)).await;
        assert_eq!(roles(&a), [backup, master, backup]);
        // FAULT -> BACKUP changes nothing; -> MASTER: the master role.
        std::fs::write(&down_c, "0\n").unwrap();
        wait_for("A master again", Duration::from_secs(3), || has_vip(&a)).await;
        assert_eq!(roles(&a), [backup, master, backup, master]);
        // B, of a higher priority, takes over: A goes BACKUP (backup role), B MASTER.
        let b = start(&b_conf);
        wait_for("B to take over", Duration::from_secs(3), || has_vip(&b) && !has_vip(&a)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(roles(&a), [backup, master, backup, master, backup]);
        let b_id = |master| SyncRoles::for_master(master, 7);
        assert_eq!(roles(&b), [b_id(false), b_id(true)], "B's id 7");
        // Stopping: the role running stops.
        let (a_dp, b_dp) = (a.dp.clone(), b.dp.clone());
        stop_nodes([a, b]).await;
        assert_eq!(roles_of(&a_dp), [backup, master, backup, master, backup, stopped]);
        assert_eq!(roles_of(&b_dp), [b_id(false), b_id(true), SyncRoles::stopped(7)]);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// keepalived's `ha_suspend` with real VRRP: two agents in one group, each with the same
/// virtual server on the group's VIP and a real server (weight 7, `inhibit_on_failure`)
/// on a port nothing listens on. The master holds the VIP, so its checker runs and takes
/// the server to weight 0; the backup's is suspended and its server keeps weight 7.
/// When the master leaves, the backup takes the VIP over and its checker resumes: weight
/// 0 there too.
#[test]
fn ha_suspend_checks_only_on_the_node_holding_the_vip() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvhs");
    in_netns(&ns, || async {
        let vs = "virtual_server 192.0.2.42 80 {\n lb_kind FNAT\n lb_algo wrr\n delay_loop 0.1\n ha_suspend\n\
                  real_server 127.0.0.1 18097 {\n  weight 7\n  inhibit_on_failure\n\
                  TCP_CHECK {\n   connect_timeout 0.2\n   retry 0\n  }\n }\n}\n";
        let a = start(&format!("{}{vs}", node_conf("127.0.0.1", "127.0.0.2", 200)));
        let b = start(&format!("{}{vs}", node_conf("127.0.0.2", "127.0.0.1", 100)));
        let key = ServiceKey::new(Proto::Tcp, "192.0.2.42".parse().unwrap(), 80);
        let weight = |n: &Node| n.dp.service(&key).map(|s| s.real_servers[0].weight);
        wait_for("A to become master", Duration::from_secs(3), || has_vip(&a)).await;
        wait_for("A's checker to fail the server", Duration::from_secs(2), || weight(&a) == Some(0)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!has_vip(&b));
        assert_eq!(weight(&b), Some(7), "the backup's checker is suspended");
        let Node { stop, task, .. } = a;
        stop.send(true).unwrap();
        task.await.unwrap();
        wait_for("B to take over", Duration::from_secs(3), || has_vip(&b)).await;
        wait_for("B's checker to resume", Duration::from_secs(2), || weight(&b) == Some(0)).await;
        b.stop.send(true).unwrap();
        b.task.await.unwrap();
    });
}

/// keepalived's `vrrp_startup_delay` (`vrrp_delayed_start_time`): no instance becomes
/// MASTER before the delay from the agent's start, an address owner (priority 255, master
/// at once without it) included; meanwhile they are BACKUP, listening and holding nothing.
/// An instance a reload restarts during the delay waits for the same end. Once it has
/// passed, the owner takes over at once and a backup one Master_Down_Interval later.
#[test]
fn vrrp_startup_delay_holds_every_instance_back_from_the_agents_start() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvsd");
    in_netns(&ns, || async {
        const DELAY: Duration = Duration::from_millis(1000);
        let conf = |backup_prio: u8| {
            let owner = node_conf("127.0.0.1", "127.0.0.2", 255);
            let backup = node_conf("127.0.0.1", "127.0.0.2", backup_prio)
                .replace("VI {", "VB {")
                .replace("virtual_router_id 42", "virtual_router_id 43")
                .replace("192.0.2.42/32", "192.0.2.43/32");
            format!("global_defs {{\n vrrp_startup_delay {}\n}}\n{owner}{backup}", DELAY.as_secs_f64())
        };
        let load = |text: String| {
            let l = parse_str(&text, "node.conf", Options::default());
            assert!(!l.has_errors(), "{:?}", l.diagnostics);
            l
        };
        let dp = Arc::new(FakeDataplane::new());
        let (stop, rx) = watch::channel(false);
        let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
        let (st_tx, st_rx) = std::sync::mpsc::channel();
        let (d, l) = (dp.clone(), load(conf(100)));
        let t0 = Instant::now();
        let task = tokio::spawn(async move {
            rvs_agent::agent::run_with_reload(l.config, d, rx, reload_rx, move |r| st_tx.send(r).unwrap())
                .await
                .unwrap();
        });
        let holds = |vip: &str| dp.vips().iter().any(|(a, _)| a.addr().to_string() == vip);
        // A reload during the delay restarts VB (its priority changed).
        tokio::time::sleep(Duration::from_millis(300)).await;
        reload_tx.send(load(conf(101))).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let running = st_rx.recv_timeout(Duration::from_secs(1)).unwrap();
        let states =
            || running.instances().iter().map(|s| (s.borrow().name.clone(), s.borrow().state)).collect::<Vec<_>>();
        assert!(t0.elapsed() < DELAY, "the checks below are within the delay");
        assert_eq!(states(), [("VI".to_string(), State::Backup), ("VB".to_string(), State::Backup)]);
        assert_eq!(running.instances()[1].borrow().priority, 101, "VB restarted by the reload");
        assert!(dp.vips().is_empty(), "nothing held during the delay: {:?}", dp.vips());
        assert!(
            dp.calls().contains(&Call::DelVip("192.0.2.42/32".parse().unwrap(), "lo".into())),
            "the owner held back starts as a backup does, removing its VIP"
        );
        // The owner: MASTER as soon as the delay ends.
        wait_for("the owner to become master", Duration::from_secs(3), || holds("192.0.2.42")).await;
        let owner_at = t0.elapsed();
        assert!(owner_at >= DELAY && owner_at < DELAY + Duration::from_millis(300), "{owner_at:?}");
        assert!(!holds("192.0.2.43"), "VB waits its Master_Down_Interval from the delay's end");
        // VB (nobody else advertises): one Master_Down_Interval (~0.34 s) after the delay.
        wait_for("VB to become master", Duration::from_secs(3), || holds("192.0.2.43")).await;
        let backup_at = t0.elapsed();
        assert!(backup_at >= DELAY + Duration::from_millis(300), "{backup_at:?}");
        assert_eq!(states(), [("VI".to_string(), State::Master), ("VB".to_string(), State::Master)]);
        stop.send(true).unwrap();
        task.await.unwrap();
    });
}

/// keepalived's `vrrp_sync_group` beyond shared faults (`vrrp_sync.c`), two groups in one
/// agent (X: G1 = {A, B}, G2 = {C, D}, priority 100 each) against other rvs-agents on
/// the same VRIDs (real VRRP speakers over unicast on `lo`):
/// (a) while Y advertises B's VRID at a higher priority, A's Master_Down_Timer runs out
///     again and again but A stays BACKUP (B does not want MASTER); G2, whose members
///     both time out, goes MASTER together. Y stops (priority 0): B's timer runs out and
///     A and B become MASTER together;
/// (b) Y2 advertises A's VRID at a higher priority: A leaves MASTER, and B, which hears
///     nobody on its VRID, leaves with it and stays BACKUP (A does not want MASTER);
///     G2 is not touched;
/// (c) the group's notify scripts run (`notify_master`/`_backup`/`_stop`, and `notify`
///     with `GROUP NAME STATE 0`) and the FIFO gets `GROUP "NAME" STATE 0` lines: BACKUP
///     once the members started, MASTER, BACKUP, STOP when the agent stops.
#[test]
fn sync_group_members_go_master_and_backup_together() {
    if !root() {
        return;
    }
    let ns = NetNs::new("rvsm");
    let dir = std::env::temp_dir().join(testnet::unique("rvssg"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| dir.join(n);
    std::fs::write(p("gen.sh"), format!("echo \"$@\" >> {}\n", p("gen.log").display())).unwrap();
    let inst = |name: &str, vrid: u8, prio: u8, src: &str, peer: &str| {
        format!(
            "vrrp_instance {name} {{\n interface lo\n version 3\n virtual_router_id {vrid}\n priority {prio}\n\
             advert_int 0.1\n unicast_src_ip {src}\n unicast_peer {{\n  {peer}\n }}\n\
             virtual_ipaddress {{\n  192.0.2.{vrid}/32\n }}\n}}\n"
        )
    };
    let log = |what: &str| format!("\"echo {what} >> {}\"", p("g1.log").display());
    let fifo = p("vrrp.fifo");
    let x_conf = format!(
        "global_defs {{\n vrrp_notify_fifo {}\n}}\n\
         vrrp_sync_group G1 {{\n group {{\n  A\n  B\n }}\n notify_master {}\n notify_backup {}\n notify_stop {}\n\
         notify \"/bin/sh {}\"\n}}\n\
         vrrp_sync_group G2 {{\n group {{\n  C\n  D\n }}\n}}\n{}{}{}{}",
        fifo.display(),
        log("master"),
        log("backup"),
        log("stop"),
        p("gen.sh").display(),
        inst("A", 21, 100, "127.0.0.1", "127.0.0.2"),
        inst("B", 22, 100, "127.0.0.1", "127.0.0.2"),
        inst("C", 23, 100, "127.0.0.1", "127.0.0.2"),
        inst("D", 24, 100, "127.0.0.1", "127.0.0.2"),
    );
    let y_conf = inst("B", 22, 200, "127.0.0.2", "127.0.0.1");
    let y2_conf = inst("A", 21, 200, "127.0.0.2", "127.0.0.1");
    let fifo_c = fifo.clone();
    let reader = in_netns_ret(&ns, move || async move {
        let held = |n: &Node, last: u8| {
            let want: std::net::IpAddr = format!("192.0.2.{last}").parse().unwrap();
            n.dp.vips().iter().any(|(v, _)| v.addr() == want)
        };
        let y = start(&y_conf);
        wait_for("Y to be master of B's VRID", Duration::from_secs(3), || held(&y, 22)).await;
        let x = start(&x_conf);
        let reader = fifo_reader(fifo_c);
        // G2: both members time out, MASTER together.
        wait_for("G2 MASTER", Duration::from_secs(3), || held(&x, 23) && held(&x, 24)).await;
        // (a) G1: A times out (several times over), B hears Y: nobody MASTER.
        for _ in 0..24 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!held(&x, 21) && !held(&x, 22), "G1 stays BACKUP while B hears a master: {:?}", x.dp.vips());
        }
        // Y leaves (priority 0): B times out after Skew_Time and the group goes MASTER.
        y.stop.send(true).unwrap();
        y.task.await.unwrap();
        wait_for("a G1 member MASTER", Duration::from_secs(3), || held(&x, 21) || held(&x, 22)).await;
        wait_for("both G1 members MASTER", Duration::from_millis(100), || held(&x, 21) && held(&x, 22)).await;
        // (b) Y2 preempts A's VRID: A leaves MASTER and B with it.
        let y2 = start(&y2_conf);
        wait_for("Y2 master of A's VRID", Duration::from_secs(3), || held(&y2, 21)).await;
        wait_for("G1 out of MASTER", Duration::from_secs(1), || !held(&x, 21) && !held(&x, 22)).await;
        // B hears nobody, its timer runs out, but A does not want MASTER: G1 stays BACKUP.
        for _ in 0..24 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!held(&x, 21) && !held(&x, 22), "G1 stays BACKUP while A hears a master: {:?}", x.dp.vips());
            assert!(held(&x, 23) && held(&x, 24), "G2 untouched");
        }
        x.stop.send(true).unwrap();
        x.task.await.unwrap();
        y2.stop.send(true).unwrap();
        y2.task.await.unwrap();
        reader
    });
    let lines = reader.join().unwrap();
    let of = |prefix: &str| -> Vec<String> { lines.iter().filter(|l| l.starts_with(prefix)).cloned().collect() };
    assert_eq!(
        of("GROUP \"G1\""),
        ["GROUP \"G1\" BACKUP 0", "GROUP \"G1\" MASTER 0", "GROUP \"G1\" BACKUP 0", "GROUP \"G1\" STOP 0"],
        "{lines:#?}"
    );
    assert_eq!(of("GROUP \"G2\""), ["GROUP \"G2\" BACKUP 0", "GROUP \"G2\" MASTER 0", "GROUP \"G2\" STOP 0"]);
    for i in ["A", "B"] {
        let want: Vec<String> =
            ["BACKUP", "MASTER", "BACKUP", "STOP"].iter().map(|s| format!("INSTANCE \"{i}\" {s} 100")).collect();
        assert_eq!(of(&format!("INSTANCE \"{i}\"")), want, "{lines:#?}");
    }
    // The scripts (started in the background: give the last ones a moment).
    let read = |n: &str| std::fs::read_to_string(p(n)).unwrap_or_default();
    let t = Instant::now();
    while read("gen.log").lines().count() < 4 && t.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(read("g1.log"), "backup\nmaster\nbackup\nstop\n");
    assert_eq!(read("gen.log"), "GROUP G1 BACKUP 0\nGROUP G1 MASTER 0\nGROUP G1 BACKUP 0\nGROUP G1 STOP 0\n");
    let _ = std::fs::remove_dir_all(&dir);
}
