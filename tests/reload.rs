//! SIGHUP: rvsd reads its configuration file again and applies what may change at run
//! time as one new generation, under HTTP load, with no failed request; a broken file,
//! or one that changes what only a restart can, changes nothing and the log says why;
//! rvsd never exits on SIGHUP (logrotate and `systemctl reload` send it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ctl::{Request, Response};
use rvs_e2e::{serial, Spec, Topology, VIP4};

/// Waits until rvsd's log holds `needle` `n` times (or 10 s pass).
fn wait_log(t: &Topology, needle: &str, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if t.rvsd_log().matches(needle).count() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn write_and_hup(t: &Topology, text: &str) {
    std::fs::write(&t.config_path, text).expect("write config");
    t.signal_rvsd("HUP");
}

#[test]
fn sighup_applies_the_file_under_load_and_refuses_what_cannot_change() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");

    // HTTP load for the whole test: 250 requests, 20 a second.
    let script = format!(
        "for i in $(seq 1 250); do curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 5 http://{VIP4}/; sleep 0.05; done"
    );
    let load = Command::new("ip")
        .args(["netns", "exec", t.client.name(), "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl loop");
    std::thread::sleep(Duration::from_secs(2));

    // Weights changed, a real server removed, a service added.
    let mut cfg = t.config.clone();
    {
        let svc = cfg["service"].as_array_mut().expect("services")[0].as_table_mut().expect("service");
        let rs = svc["real_server"].as_array_mut().expect("real servers");
        rs.truncate(2);
        rs[0].as_table_mut().expect("rs")["weight"] = toml::Value::Integer(1);
        rs[1].as_table_mut().expect("rs")["weight"] = toml::Value::Integer(5);
        let mut extra = svc.clone();
        extra.insert("port".into(), toml::Value::Integer(8080));
        cfg["service"].as_array_mut().expect("services").push(toml::Value::Table(extra));
    }
    let good = toml::to_string(&cfg).expect("toml");
    write_and_hup(&t, &good);
    assert!(wait_log(&t, "SIGHUP:", 1) && t.rvsd_log().contains("applied"), "applied:\n{}", t.rvsd_log());
    let rules = t.cli_ok("rvsadm", &["-S", "-n"]);
    for want in [
        format!("-a -t {VIP4}:80 -r 198.19.0.11:8080 -b -w 1"),
        format!("-a -t {VIP4}:80 -r 198.19.0.12:8080 -b -w 5"),
        format!("-A -t {VIP4}:8080 -s wrr"),
    ] {
        assert!(rules.lines().any(|l| l == want), "{want} in:\n{rules}");
    }
    assert!(!rules.contains(&format!("-a -t {VIP4}:80 -r 198.19.0.13:8080")), "the removed server is gone:\n{rules}");
    let (out, ok) = t.curl_many(&[format!("http://{VIP4}:8080/")], 5);
    assert!(ok, "the new service answers: {out}");

    // A broken file, then one that changes what needs a restart: nothing changes.
    write_and_hup(&t, "[[service]]\nproto = \"sctp\"\n");
    assert!(wait_log(&t, "refused, nothing changed", 1), "{}", t.rvsd_log());
    let mut fixed = cfg.clone();
    fixed["control"].as_table_mut().expect("control").insert("max_clients".into(), toml::Value::Integer(7));
    fixed["service"].as_array_mut().expect("services").pop();
    write_and_hup(&t, &toml::to_string(&fixed).expect("toml"));
    assert!(wait_log(&t, "control cannot change while rvsd runs", 1), "{}", t.rvsd_log());
    assert_eq!(t.cli_ok("rvsadm", &["-S", "-n"]), rules, "refused files changed nothing");

    let out = load.wait_with_output().expect("curl loop");
    let codes = String::from_utf8_lossy(&out.stdout);
    let failed: Vec<&str> = codes.lines().filter(|c| *c != "200").collect();
    assert_eq!(codes.lines().count(), 250);
    assert!(failed.is_empty(), "no request failed across three SIGHUPs: {failed:?}");
    assert!(t.cli("rvsadm", &["-L", "-n"]).2, "rvsd still runs");
    let log = t.stop_rvsd().expect("stops");
    assert!(!log.contains("panicked"), "{log}");
}

/// What rvsd holds: (address/prefix, port).
fn held(t: &Topology) -> Vec<(String, String)> {
    match t.ctl().call(Request::AddrList {}) {
        Ok(Response::Addrs { addrs }) => addrs.into_iter().map(|a| (a.addr.to_string(), a.dev)).collect(),
        other => panic!("address list: {other:?}"),
    }
}

/// Waits (5 s at most) until rvsd no longer holds address `a` (`ADDR/PREFIX`).
fn wait_gone(t: &Topology, a: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while held(t).iter().any(|(x, _)| x == a) {
        assert!(Instant::now() < deadline, "{what}: {a} still held");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Addresses a live control connection leased (rvs-agent's VIPs) survive a SIGHUP that
/// replaces what else clients changed; one the new file now conflicts with (its subnet
/// on another port) gives way, said so, and the file applies all the same; when the
/// lessee goes, its address goes, but for one the new file declares (the file's now).
#[test]
fn sighup_keeps_leased_addresses_unless_the_file_conflicts() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let mut lessee = t.ctl();
    for a in ["198.18.0.150/32", "203.0.113.1/24", "198.18.0.152/32"] {
        let add = Request::AddrAdd { dev: "dpdk0".into(), addr: a.parse().unwrap(), sapool: false, lease: true };
        lessee.call(add).unwrap_or_else(|e| panic!("leased {a}: {e}"));
    }
    let (_, err, ok) = t.cli("rvsip", &["addr", "add", "198.18.0.151/32", "dev", "dpdk0"]);
    assert!(ok, "rvsip addr add: {err}");

    // The file now puts 203.0.113.0/24 on dpdk1, and declares 198.18.0.152 itself.
    let mut cfg = t.config.clone();
    for (dev, addr) in [("dpdk1", "203.0.113.9/24"), ("dpdk0", "198.18.0.152/32")] {
        let mut extra = toml::Table::new();
        extra.insert("dev".into(), dev.into());
        extra.insert("addr".into(), addr.into());
        cfg["addr"].as_array_mut().expect("addresses").push(toml::Value::Table(extra));
    }
    write_and_hup(&t, &toml::to_string(&cfg).expect("toml"));
    assert!(wait_log(&t, "SIGHUP:", 3), "{}", t.rvsd_log());
    let log = t.rvsd_log();
    assert!(log.contains("leased address 203.0.113.1/24 on dpdk0 not kept"), "{log}");
    assert!(log.contains("leased addresses kept (their control connections hold them): 198.18.0.150"), "{log}");
    assert!(log.lines().any(|l| l.contains("SIGHUP:") && l.contains("applied")), "{log}");
    let now = held(&t);
    let has = |a: &str, dev: &str| now.contains(&(a.to_string(), dev.to_string()));
    assert!(has("198.18.0.150/32", "dpdk0"), "the lease stays: {now:?}");
    assert!(has("203.0.113.9/24", "dpdk1") && !has("203.0.113.1/24", "dpdk0"), "the file wins the subnet: {now:?}");
    assert!(!has("198.18.0.151/32", "dpdk0"), "rvsip's address is replaced by the file: {now:?}");

    drop(lessee);
    wait_gone(&t, "198.18.0.150/32", "the lessee's address goes with its connection");
    // The address the file declared since is the file's: the lease's end (with .150's,
    // gone) left it.
    assert!(held(&t).contains(&("198.18.0.152/32".to_string(), "dpdk0".to_string())), "{:?}", held(&t));
}

/// A lease is its connection's: a new connection that adds the leased address again, as
/// it is, with a lease (rvs-agent reconnecting before rvsd saw its old connection close)
/// takes it over, and the old connection's close leaves the address to it (while its
/// other lease ends); an address no lease holds (rvsip's) or another form of the leased
/// one is no one's to take.
#[test]
fn a_new_connection_takes_a_lease_over() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let add =
        |a: &str, sapool: bool| Request::AddrAdd { dev: "dpdk0".into(), addr: a.parse().unwrap(), sapool, lease: true };
    let (mut old, mut new) = (t.ctl(), t.ctl());
    for a in ["198.18.0.160/32", "198.18.0.162/32"] {
        old.call(add(a, false)).unwrap_or_else(|e| panic!("the old connection's lease on {a}: {e}"));
    }
    let (_, err, ok) = t.cli("rvsip", &["addr", "add", "198.18.0.161/32", "dev", "dpdk0"]);
    assert!(ok, "rvsip addr add: {err}");
    for (what, req) in [
        ("rvsip's address", add("198.18.0.161/32", false)),
        ("the leased address with another prefix", add("198.18.0.160/24", false)),
        ("the leased address as a LIP", add("198.18.0.160/32", true)),
    ] {
        let e = new.call(req).expect_err(what);
        assert!(e.to_string().contains("exists"), "{what}: {e}");
    }
    let taken = new.call(add("198.18.0.160/32", false));
    assert!(matches!(taken, Ok(Response::Done { .. })), "the lease taken over: {taken:?}");
    assert!(wait_log(&t, "lease taken over by another control connection", 1), "{}", t.rvsd_log());
    let has = |a: &str| held(&t).contains(&(a.to_string(), "dpdk0".to_string()));
    drop(old);
    wait_gone(&t, "198.18.0.162/32", "the old connection's own lease ends with it");
    assert!(has("198.18.0.160/32"), "the old connection's close left the taken address: {:?}", held(&t));
    drop(new);
    wait_gone(&t, "198.18.0.160/32", "the new lessee's address goes with its connection");
    assert!(has("198.18.0.161/32"), "rvsip's address stays: {:?}", held(&t));
}
