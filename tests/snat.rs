//! SNAT end to end, with real kernel stacks: the real servers (default route via rvsd's
//! server-side address, as behind an LVS/DPVS box) reach an "outside" network, the
//! client namespace, through SNAT rules (`[[snat]]`, DPVS's `ipvsadm -A -H ... -J`),
//! leaving from a WAN address on rvsd's client side.
//!
//! - A 10 MB download from an HTTP server outside, over IPv4 and IPv6, arrives bit-exact;
//!   the outside server logs the WAN address as its peer, never an inside address.
//! - Many short connections from every covered server all succeed.
//! - UDP: a real dnsmasq outside answers queries from inside; its log names the WAN
//!   address as the source.
//! - The rule's source range is honoured: a server outside it gets nothing through,
//!   until `rvsadm -A -H MATCH` and `-a -H MATCH -r WAN:0 -J` add a rule for it at run
//!   time (DPVS's commands); `rvsadm -L` lists the rules; `-D -H` removes it; `-S`, `-C`
//!   and `-R` save, clear and restore the rules with the services.
//! - Forged "replies" aimed at the WAN address's ports from outside (a bounded flood)
//!   are dropped and counted, and a transfer running meanwhile is not disturbed.
//! - ICMP echo: no ping gets out until DPVS's `proto=icmp` rules are added at run time;
//!   then the covered servers ping the outside over IPv4 and IPv6 (listed as `icmp`
//!   mappings by the WAN address), one outside the range does not, and a bounded flood
//!   of forged echo replies at the WAN address costs a pinging server nothing.

use rvs_e2e::{rs4, serial, Spec, Topology, CLIENT4, CLIENT6};
use testnet::dnsmasq_args;

const WAN4: &str = "198.18.0.5";
const WAN6: &str = "2001:db8:18::5";
const OUTSIDE_PORT: u16 = 8000;

fn snat_config(t: &mut Topology) {
    let addrs = t.config["addr"].as_array_mut().expect("[[addr]]");
    for a in [format!("{WAN4}/24"), format!("{WAN6}/64")] {
        addrs.push(toml::Value::Table(toml::toml! { dev = "dpdk0" addr = a sapool = true }));
    }
    // rs1 and rs2 only: rs3 is outside the range.
    let v4 = toml::toml! {
        name = "servers"
        src_range = "198.19.0.11-198.19.0.12"
        oif = "dpdk0"
        wan = [WAN4]
    };
    let v6 = toml::toml! {
        name = "servers6"
        "src-range" = "2001:db8:19::/64"
        proto = "tcp"
        wan = [WAN6]
    };
    t.config.insert("snat".into(), toml::Value::Array(vec![toml::Value::Table(v4), toml::Value::Table(v6)]));
}

/// Runs `sh -c script` in real server `i` and returns its stdout (asserting success).
fn in_rs(t: &Topology, i: usize, script: &str) -> String {
    let out = t.rs[i - 1].exec(&["sh", "-c", script]);
    assert!(
        out.status.success(),
        "rs{i}: {script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn real_servers_reach_the_outside_through_snat() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    snat_config(&mut t);
    for ns in &t.rs {
        ns.ip(&["route", "add", "default", "via", "198.19.0.1"]);
        ns.ip(&["-6", "route", "add", "default", "via", "2001:db8:19::1"]);
    }
    // The outside: an HTTP server with 10 MB of random bytes, and dnsmasq.
    let www = t.dir.join("outside");
    std::fs::create_dir_all(&www).expect("outside dir");
    testnet::sh(&["sh", "-c", &format!("head -c 10M /dev/urandom > {}/big.bin", www.display())]);
    std::fs::write(www.join("index.html"), "outside\n").expect("index");
    let want = testnet::sh(&["sha256sum", &www.join("big.bin").display().to_string()]);
    let want = want.split_whitespace().next().expect("sum").to_string();
    let log = t.dir.join("outside-http.log");
    t.start_http_in_client(OUTSIDE_PORT, &www, &log).expect("outside HTTP server");
    let dns_log = t.dir.join("outside-dns.log");
    let mut dns = dnsmasq_args(&[CLIENT4.to_string()], 53, "/out.test/192.0.2.99");
    dns.extend(["--log-queries".to_string(), format!("--log-facility={}", dns_log.display())]);
    let _dns = t.client.spawn(&dns.iter().map(String::as_str).collect::<Vec<_>>());
    t.start_rvsd().expect("rvsd starts");

    // TCP, IPv4 and IPv6: the download arrives whole.
    for (i, url) in [
        (1, format!("http://{CLIENT4}:{OUTSIDE_PORT}/big.bin")),
        (2, format!("http://[{CLIENT6}]:{OUTSIDE_PORT}/big.bin")),
    ] {
        let got = in_rs(&t, i, &format!("curl -sS -g --max-time 60 '{url}' | sha256sum | cut -d' ' -f1"));
        assert_eq!(got, want, "rs{i}: {url} arrives bit-exact through SNAT");
    }
    // Many short connections from both covered servers.
    for i in 1..=2 {
        let n = in_rs(
            &t,
            i,
            &format!(
                "ok=0; for k in $(seq 1 100); do curl -sf --max-time 5 http://{CLIENT4}:{OUTSIDE_PORT}/ >/dev/null \
                 && ok=$((ok+1)); done; echo $ok"
            ),
        );
        assert_eq!(n, "100", "rs{i}: 100 of 100 connections through SNAT");
    }
    // The outside sees the WAN addresses only.
    let peers = std::fs::read_to_string(&log).expect("outside log");
    let requests: Vec<&str> = peers.lines().filter(|l| l.contains("\"GET ")).collect();
    assert_eq!(requests.len(), 202, "every request logged:\n{peers}");
    for l in &requests {
        let peer = l.split_whitespace().next().unwrap_or("");
        assert!(peer == WAN4 || peer == format!("::ffff:{WAN4}") || peer == WAN6, "peer {peer} is a WAN address: {l}");
    }
    assert!(requests.iter().any(|l| l.starts_with(WAN6)), "the IPv6 download came from {WAN6}");
    assert!(!peers.contains("198.19.0.") && !peers.contains("2001:db8:19::"), "no inside address seen outside");

    // UDP: 30 queries from rs1, each a new flow, all answered from the outside server.
    let dig = format!(
        "python3 -c '
import socket, struct
ok = 0
for i in range(30):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    q = struct.pack(\">HHHHHH\", i, 0x0100, 1, 0, 0, 0) + b\"\\x03out\\x04test\\x00\" + struct.pack(\">HH\", 1, 1)
    try:
        s.sendto(q, (\"{CLIENT4}\", 53))
        d, a = s.recvfrom(512)
        ok += a[0] == \"{CLIENT4}\" and d[-4:] == bytes([192, 0, 2, 99])
    except socket.timeout:
        pass
print(ok)'"
    );
    assert_eq!(in_rs(&t, 1, &dig), "30", "30 DNS answers through UDP SNAT");
    let queries = std::fs::read_to_string(&dns_log).unwrap_or_default();
    let from: Vec<&str> = queries.lines().filter(|l| l.contains("query[A] out.test")).collect();
    assert_eq!(from.len(), 30, "{queries}");
    assert!(from.iter().all(|l| l.ends_with(&format!("from {WAN4}"))), "queries came from the WAN address:\n{queries}");

    // ICMP echo: no rule takes it yet, so no ping gets out; DPVS's `proto=icmp` rules,
    // added at run time, take it (both families).
    let ping = |t: &Topology, i: usize, dst: &str, n: u32| {
        let six = if dst.contains(':') { "-6" } else { "-4" };
        let c = n.to_string();
        t.rs[i - 1].exec(&["ping", six, "-c", &c, "-i", "0.2", "-W", "2", dst]).status.success()
    };
    assert!(!ping(&t, 1, CLIENT4, 1), "no ICMP rule yet, yet rs1's ping got through");
    let (m4, m6) = ("proto=icmp,src-range=198.19.0.11-198.19.0.12,oif=dpdk0", "proto=icmp,src-range=2001:db8:19::/64");
    for (m, wan) in [(m4, format!("{WAN4}:0")), (m6, format!("[{WAN6}]:0"))] {
        t.cli_ok("rvsadm", &["-A", "-s", "rr", "-H", m]);
        t.cli_ok("rvsadm", &["-a", "-H", m, "-r", &wan, "-J"]);
    }
    assert!(ping(&t, 1, CLIENT4, 3), "rs1 pings the outside through SNAT");
    assert!(ping(&t, 2, CLIENT6, 3), "rs2 pings the outside over IPv6 through SNAT");
    assert!(!ping(&t, 3, CLIENT4, 1), "rs3 is outside the ICMP rule's range");
    let conns = t.cli_ok("rvsadm", &["-L", "-n", "-c"]);
    for (wan, inside) in [(WAN4.to_string(), rs4(1)), (format!("[{WAN6}]"), "2001:db8:19::".to_string())] {
        assert!(
            conns.lines().any(|l| l.contains("icmp") && l.contains("ICMP") && l.contains(&wan) && l.contains(&inside)),
            "an echo mapping from {inside} by {wan} listed:\n{conns}"
        );
    }
    // Forged echo replies from the outside to the WAN address, random identifiers and
    // sequence numbers (a bounded flood), while rs1 pings: not one of its pings is lost.
    let forge = format!(
        "python3 -c '
import random, socket, struct
def csum(b):
    s = sum(struct.unpack(\"!%dH\" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for i in range(3000):
    h = struct.pack(\"!BBHHH\", 0, 0, 0, random.randrange(65536), random.randrange(65536)) + b\"forged!!\"
    s.sendto(h[:2] + struct.pack(\"!H\", csum(h)) + h[4:], (\"{WAN4}\", 0))'"
    );
    let mut flood = t.client.spawn(&["sh", "-c", &forge]);
    assert!(ping(&t, 1, CLIENT4, 10), "rs1's pings during the flood of forged replies");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while flood.running() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(flood);

    // rs3 is outside the IPv4 rule's range: nothing goes through for it...
    let rs3_get = |t: &Topology| {
        t.rs[2].exec(&["curl", "-sS", "--max-time", "3", &format!("http://{CLIENT4}:{OUTSIDE_PORT}/")]).status.success()
    };
    assert!(!rs3_get(&t), "rs3 is not in the rule's source range, yet reached the outside");
    // ... until a rule for it is added at run time, DPVS's way; deleted, it is cut off again.
    let m = "proto=tcp,src-range=198.19.0.13,oif=dpdk0";
    t.cli_ok("rvsadm", &["-A", "-s", "rr", "-H", m]);
    assert!(!rs3_get(&t), "a rule without a WAN address takes nothing");
    t.cli_ok("rvsadm", &["-a", "-H", m, "-r", &format!("{WAN4}:0"), "-J"]);
    assert!(rs3_get(&t), "rs3 reaches the outside through the new rule");
    let listed = t.cli_ok("rvsadm", &["-L", "-n"]);
    assert!(listed.contains(&format!("MATCH {m} rr")), "{listed}");
    assert!(
        listed.contains("MATCH proto=tcp,src-range=2001:db8:19::-2001:db8:19:0:ffff:ffff:ffff:ffff rr (servers6)"),
        "{listed}"
    );
    assert!(listed.lines().any(|l| l.contains(&format!("{WAN4}:0")) && l.contains("SNAT")), "{listed}");
    // The WAN address cannot go while a rule uses it.
    let (_, e, ok) = t.cli("rvsip", &["addr", "del", &format!("{WAN4}/24"), "dev", "dpdk0"]);
    assert!(!ok && e.contains("WAN address"), "deleting a WAN address in use: {e}");
    t.cli_ok("rvsadm", &["-D", "-H", m]);
    assert!(!rs3_get(&t), "the rule is gone");
    // The IPv6 rule is TCP only.
    let stats = t.rvsd_stats().expect("stats");
    let events = |s: &serde_json::Value, k: &str| s["events"][k].as_u64().unwrap_or(0);
    assert!(events(&stats, "snat_opened") >= 232, "SNAT connections counted: {}", stats["events"]);

    // Forged replies: the outside floods the WAN address's ports while rs1 downloads.
    let before = t.rvsd_stats().expect("stats")["drops"]["reply_no_conn"].as_u64().unwrap_or(0);
    let flood = t.client.spawn(&["hping3", "-q", "-A", "-p", "++1025", "-i", "u200", "-c", "5000", WAN4]);
    let got = in_rs(
        &t,
        1,
        &format!("curl -sS --max-time 60 http://{CLIENT4}:{OUTSIDE_PORT}/big.bin | sha256sum | cut -d' ' -f1"),
    );
    assert_eq!(got, want, "the download during the flood arrives bit-exact");
    let mut flood = flood;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while flood.running() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(flood);
    let after = t.rvsd_stats().expect("stats")["drops"]["reply_no_conn"].as_u64().unwrap_or(0);
    assert!(after - before >= 1000, "forged replies dropped and counted: {before} -> {after}");

    // Listings: the SNAT connections, inside host as the client, the WAN address and
    // port as the local end.
    let conns = t.cli_ok("rvsadm", &["-L", "-n", "-c"]);
    let snat: Vec<&str> = conns.lines().filter(|l| l.contains(&format!("{WAN4}:"))).collect();
    assert!(!snat.is_empty() && snat.iter().all(|l| (1..=3).any(|i| l.contains(&format!(" {}:", rs4(i))))), "{conns}");
    let json = t.cli_ok("rvsadm", &["-L", "-n", "-c", "--json"]);
    assert!(json.contains("\"snat\""), "{json}");

    // Save, clear, restore (an init script's ipvsadm-save/-restore): the SNAT rules go
    // with the services, and come back with them.
    let saved = t.cli_ok("rvsadm", &["-S", "-n"]);
    assert!(saved.contains(&format!("-a -H src-range=198.19.0.11-198.19.0.12,oif=dpdk0 -r {WAN4}:0 -J")), "{saved}");
    assert!(saved.contains("-A -H src-range=198.19.0.11-198.19.0.12,oif=dpdk0 -s rr --name servers\n"), "{saved}");
    let rs1_get = |t: &Topology| {
        t.rs[0].exec(&["curl", "-sS", "--max-time", "3", &format!("http://{CLIENT4}:{OUTSIDE_PORT}/")]).status.success()
    };
    t.cli_ok("rvsadm", &["-C"]);
    assert!(!t.cli_ok("rvsadm", &["-L", "-n"]).contains("MATCH"), "-C clears the SNAT rules");
    assert!(!rs1_get(&t), "no rule, no way out");
    let (_, err, ok) = t.cli_stdin("rvsadm", &["-R"], Some(&saved));
    assert!(ok, "rvsadm -R: {err}");
    assert_eq!(t.cli_ok("rvsadm", &["-S", "-n"]), saved, "restored as saved");
    let listed = t.cli_ok("rvsadm", &["-L", "-n"]);
    assert!(listed.contains(" rr (servers)\n") && listed.contains(" rr (servers6)\n"), "names kept: {listed}");
    assert!(rs1_get(&t), "rs1 reaches the outside again through the restored rule");
}
