//! Tables one source cannot exhaust, end to end on the demo topology: TIME_WAIT reuse
//! (a SYN on a tuple rvs holds in TIME_WAIT is a fresh connection, with TOA, through the
//! local port the tuple's last connection held, which the servers' TIME_WAIT accepts
//! however often the client reuses its ports), and a
//! service deleted and re-added while its old connections hold local ports (the LIP's
//! port cursor goes on where it stood). Needs root; `scripts/test.sh` builds rvsd first.

use std::time::{Duration, Instant};

use rvs_e2e::pcap::toa_options;
use rvs_e2e::{rs4, serial, Spec, Topology, CLIENT4, LIP4, VIP4};

/// Four HTTP/1.0 requests in sequence from the same client address and port. The
/// server closes first, so the client's kernel keeps no TIME_WAIT (and the socket sets
/// SO_REUSEADDR anyway); rvs holds each finished connection in TIME_WAIT (10 s here).
const SAME_PORT_CLIENT: &str = r#"
import socket, sys, time
host, port, lport, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for i in range(n):
    for attempt in range(20):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", lport))
            s.settimeout(5)
            s.connect((host, port))
            break
        except OSError as e:
            # The previous connection's last ACK may still be on its way.
            s.close()
            time.sleep(0.1)
    else:
        sys.exit("request %d: cannot connect from port %d" % (i, lport))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    print(data.split(b"\r\n\r\n", 1)[1].decode().strip(), flush=True)
    time.sleep(0.3)
"#;

#[test]
fn time_wait_reuse_four_requests_from_one_client_port() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let script = t.dir.join("same_port.py");
    std::fs::write(&script, SAME_PORT_CLIENT).expect("write the client");
    let caps: Vec<_> = (1..=3).map(|i| t.capture_on_rs(i, "tcp port 8080").expect("tcpdump")).collect();

    let out = t.client_exec(&["python3", &script.display().to_string(), VIP4, "80", "40000", "4"]);
    let bodies = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "four requests from port 40000: {}{bodies}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(t.tally(&bodies).iter().sum::<usize>(), 4, "four answers:\n{bodies}");

    let frames: Vec<Vec<u8>> = caps.into_iter().flat_map(|c| c.finish().expect("capture")).collect();
    let toas: Vec<_> = toa_options(&frames).into_iter().filter(|o| o.port == 40000).collect();
    assert_eq!(toas.len(), 4, "each connection's handshake ACK carries the TOA, once: {toas:?}");
    assert!(toas.iter().all(|o| o.addr.to_string() == CLIENT4), "the TOA names the client: {toas:?}");
    // Four connections towards the servers, all from the first one's local port.
    let lports: std::collections::BTreeSet<u16> = frames
        .iter()
        .filter_map(|f| {
            let p = etherparse::SlicedPacket::from_ethernet(f).ok()?;
            let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else { return None };
            let Some(etherparse::TransportSlice::Tcp(tcp)) = &p.transport else { return None };
            let fresh = tcp.syn() && !tcp.ack() && ip.header().source_addr().to_string() == LIP4;
            fresh.then(|| tcp.source_port())
        })
        .collect();
    assert_eq!(
        lports.len(),
        1,
        "the four SYNs to the servers leave from one local port, the one the client port's first connection held: {lports:?}"
    );

    let stats = t.rvsd_stats().expect("stats");
    assert_eq!(
        stats["events"]["conn_reused"].as_u64(),
        Some(3),
        "requests 2..4 met the previous one in TIME_WAIT: {}",
        stats["events"]
    );
    assert_eq!(stats["events"]["local_port_kept"].as_u64(), Some(3), "and kept its local port: {}", stats["events"]);
}

/// Sequential HTTP/1.0 requests (the server closes first, so it holds each finished
/// connection in TIME_WAIT, 60 s) from a client with 100 ephemeral ports, which it
/// reuses at once, through one LIP with 150 local ports: many sweeps of the range.
/// Prints the requests made (it gives up after a minute) and those that took over half
/// a second.
const SHORT_CONNECTIONS_CLIENT: &str = r#"
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
slow, done, start = 0, 0, time.monotonic()
for i in range(n):
    t0 = time.monotonic()
    if t0 - start > 60:
        break
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    while s.recv(4096):
        pass
    s.close()
    done += 1
    if time.monotonic() - t0 > 0.5:
        slow += 1
print("requests %d slow %d" % (done, slow), flush=True)
"#;

/// The kernel counter `name` in namespace `ns` (`nstat -az`; `None` when this kernel
/// has no such counter).
fn nstat(ns: &testnet::NetNs, name: &str) -> Option<u64> {
    let out = ns.exec(&["nstat", "-az", name]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find(|l| l.split_whitespace().next() == Some(name))?.split_whitespace().nth(1)?.parse().ok()
}

/// The client's SYN retransmissions, and the servers' count of SYNs their TIME_WAIT
/// sockets refused for an older timestamp (`None` on kernels that do not count those).
fn syn_trouble(t: &Topology) -> (u64, Option<u64>) {
    let retrans = nstat(&t.client, "TcpExtTCPSynRetrans").expect("the client's TcpExtTCPSynRetrans");
    let paws = t.rs.iter().map(|ns| nstat(ns, "TcpExtPAWSTimewait")).sum();
    (retrans, paws)
}

/// A client reusing its ports for short connections, through a LIP whose ports go round
/// many times: each new connection of a client port leaves from the local port its last
/// connection held (`local_port_kept`), so a server still holding that one in TIME_WAIT
/// sees the same client port and later timestamps and accepts the SYN. Handed another
/// client port's old local port instead (as before), the server's PAWS check refused the
/// SYN about half the time (Linux offsets timestamps per connection) and the client
/// waited a second for its retransmission: sustained short connections through one LIP
/// collapsed after one sweep of the range.
#[test]
fn short_connections_from_reused_client_ports_are_not_refused_by_the_servers() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let conn = t.config.entry("conn").or_insert_with(|| toml::Value::Table(Default::default()));
    let conn = conn.as_table_mut().expect("[conn]");
    conn.insert("lport_min".into(), toml::Value::Integer(20000));
    conn.insert("lport_max".into(), toml::Value::Integer(20149));
    t.start_rvsd().expect("rvsd starts");
    let out = t.client_exec(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=50000 50099"]);
    assert!(out.status.success(), "client port range: {}", String::from_utf8_lossy(&out.stderr));
    let before = syn_trouble(&t);
    let script = t.dir.join("short_connections.py");
    std::fs::write(&script, SHORT_CONNECTIONS_CLIENT).expect("write the client");

    let n = 1200;
    let out = t.client_exec(&["python3", &script.display().to_string(), VIP4, "80", &n.to_string()]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{n} requests: {report}{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("short connections: {}", report.trim());
    assert!(report.starts_with(&format!("requests {n} ")), "every request made within a minute: {report}");

    let after = syn_trouble(&t);
    let retransmitted = after.0 - before.0;
    let refused = after.1.zip(before.1).map(|(a, b)| a - b);
    eprintln!("SYNs retransmitted by the client: {retransmitted}; refused by the servers (PAWS): {refused:?}");
    assert!(retransmitted <= n / 100, "the client retransmitted {retransmitted} SYNs of {n}: {report}");
    assert!(refused.unwrap_or(0) <= n / 100, "the servers refused {refused:?} SYNs (PAWS, TIME_WAIT) of {n}");
    let stats = t.rvsd_stats().expect("stats");
    let ev = |k: &str| stats["events"][k].as_u64().unwrap_or(0);
    assert!(
        ev("conn_reused") >= n - 100,
        "every client port was reused, meeting its last connection: {}",
        stats["events"]
    );
    // A client port whose memo entry another replaced goes by the cursor (rare: 100 keys
    // in 128 sets of 8), and so may meet a refusal.
    assert!(
        ev("local_port_kept") >= ev("conn_reused") * 9 / 10,
        "client ports kept their local ports: {}",
        stats["events"]
    );
}

/// One real server; 200 connections hold local ports 20000..=20199 of a 300-port range
/// (in TIME_WAIT, 60 s); the service is deleted and added again with rvsadm; 100 new
/// connections, as many as ports are left, all succeed: the LIP's cursor goes on past
/// the held ports (it used to restart at 20000, where 32 probes all met held ports).
#[test]
fn service_readded_while_ports_are_held_refuses_nothing() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: true }).expect("topology");
    let conn = t.config["conn"].as_table_mut().expect("[conn]");
    conn.insert("lport_min".into(), toml::Value::Integer(20000));
    conn.insert("lport_max".into(), toml::Value::Integer(20299));
    t.config["timeouts"].as_table_mut().expect("[timeouts]").insert("time_wait".into(), toml::Value::Integer(60));
    t.start_rvsd().expect("rvsd starts");
    let n = 200;
    let urls: Vec<String> = (0..n).map(|_| format!("http://{VIP4}/")).collect();
    let (bodies, ok) = t.curl_many(&urls, 30);
    assert!(ok, "the first {n} requests");
    assert_eq!(t.tally(&bodies).iter().sum::<usize>(), n);

    let vip = format!("{VIP4}:80");
    t.cli_ok("rvsadm", &["-D", "-t", &vip]);
    t.cli_ok("rvsadm", &["-A", "-t", &vip, "-s", "wrr"]);
    t.cli_ok("rvsadm", &["-P", "-t", &vip, "-z", LIP4, "-F", "dpdk1"]);
    t.cli_ok("rvsadm", &["-a", "-t", &vip, "-r", &format!("{}:8080", rs4(1)), "-b", "-w", "1"]);
    let held = t.cli_ok("rvsadm", &["-L", "-n", "-c"]).lines().filter(|l| l.contains("TIME_WAIT")).count();
    assert!(held >= n * 9 / 10, "the old connections still hold their ports ({held} in TIME_WAIT)");

    let m = 100;
    let start = Instant::now();
    let (bodies, ok) = t.curl_many(&urls[..m], 30);
    assert!(start.elapsed() < Duration::from_secs(50), "done while the old ports are still held");
    let stats = t.rvsd_stats().expect("stats");
    assert!(ok, "the {m} requests after the re-add: {}", stats["drops"]);
    assert_eq!(t.tally(&bodies).iter().sum::<usize>(), m, "every request answered");
    assert!(stats["drops"].get("no_local_port").is_none(), "nothing refused: {}", stats["drops"]);
}
