//! The edge policy end to end: the global deny set (`[edge] deny`, the `edge_deny`
//! request), a service's deny and allow lists (`rvsadm --add-blklst`/`--add-whtlst`),
//! its new-connection rate limit and its per-source connection limit. Each case checks
//! what the client sees (a refused flow's SYN is dropped: the connection never opens)
//! and the drop counter by name in rvsd's stats.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ctl::{EdgeDenyOp, Request, Response};
use rvs_e2e::{serial, Spec, Topology, CLIENT4, VIP4};
use testnet::ChildGuard;

/// The IPv4 service, as rvsadm names it.
fn svc() -> String {
    format!("{VIP4}:80")
}

/// A drop counter by name (0 when absent).
fn drops(t: &Topology, name: &str) -> u64 {
    t.rvsd_stats().expect("stats")["drops"][name].as_u64().unwrap_or(0)
}

/// The new flows the service refused, as `rvsadm -L --stats --json` lists them.
fn refused(t: &Topology) -> u64 {
    let j: serde_json::Value =
        serde_json::from_str(&t.cli_ok("rvsadm", &["-L", "-n", "--stats", "--json", "-t", &svc()])).expect("json");
    j["services"][0]["stats"]["refused"].as_u64().expect("the service's refused count")
}

/// One request to the VIP with a short time limit; true if it was answered.
fn get(t: &Topology) -> bool {
    let (body, ok) = t.curl_many(&[format!("http://{VIP4}/")], 2);
    ok && body.starts_with("rs")
}

/// Retries [`get`] until it succeeds, for at most `secs` seconds.
fn get_within(t: &Topology, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if get(t) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The IPv4 service's table in the config (the demo's first service).
fn svc_config(t: &mut Topology) -> &mut toml::Table {
    t.config["service"].as_array_mut().expect("[[service]]")[0].as_table_mut().expect("service table")
}

/// Opens `n` TCP connections to `host:port` at once (non-blocking), waits up to
/// `wait` seconds (less than the kernel's first SYN retransmission, 1 s) and prints
/// how many opened. With `hold`, prints `open K` and keeps them until stdin closes.
const CONNECT: &str = r#"
import selectors, socket, sys, time
host, port, n, wait, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "hold"
sel = selectors.DefaultSelector()
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex((host, port))
    sel.register(s, selectors.EVENT_WRITE)
    socks.append(s)
opened = set()
deadline = time.time() + wait
while len(opened) < n:
    left = deadline - time.time()
    if left <= 0:
        break
    for key, _ in sel.select(left):
        s = key.fileobj
        sel.unregister(s)
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            opened.add(s)
print("open", len(opened), flush=True)
if hold:
    sys.stdin.read()
for s in socks:
    s.close()
"#;

fn connect_script(t: &Topology) -> String {
    let p = t.dir.join("connect.py");
    std::fs::write(&p, CONNECT).expect("write connect.py");
    p.display().to_string()
}

/// Opens `n` connections to VIP:80 at once and returns how many opened within 0.8 s.
fn connect_burst(t: &Topology, n: usize) -> usize {
    let script = connect_script(t);
    let out = t.client_exec(&["timeout", "10", "python3", &script, VIP4, "80", &n.to_string(), "0.8", "no"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "connect.py: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.trim().strip_prefix("open ").and_then(|k| k.parse().ok()).unwrap_or_else(|| panic!("connect.py said {text:?}"))
}

/// Global deny: a client in `[edge] deny` is refused (`denied`); deleted with
/// `edge_deny del` it is admitted; added again with `edge_deny add`, refused again; the
/// same with `rvsip deny add|del|set|flush`.
#[test]
fn global_deny_refuses_and_releases_the_client() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let mut edge = toml::Table::new();
    edge.insert("deny".into(), toml::Value::Array(vec![toml::Value::String(format!("{CLIENT4}/32"))]));
    t.config.insert("edge".into(), toml::Value::Table(edge));
    t.start_rvsd().expect("rvsd starts");

    let before = drops(&t, "denied");
    assert!(!get(&t), "a client in [edge] deny is refused");
    let after = drops(&t, "denied");
    assert!(after > before, "the refused SYN is counted as denied ({before} -> {after})");

    let mut c = t.ctl();
    let client: ipnet::IpNet = format!("{CLIENT4}/32").parse().unwrap();
    c.call(Request::EdgeDeny { change: EdgeDenyOp::Del, prefixes: vec![client] }).expect("edge_deny del");
    assert!(get_within(&t, 5), "deleted from the deny set: the client is admitted");

    c.call(Request::EdgeDeny { change: EdgeDenyOp::Add, prefixes: vec![client] }).expect("edge_deny add");
    let before = drops(&t, "denied");
    assert!(!get(&t), "added again at run time: refused again");
    assert!(drops(&t, "denied") > before, "and counted as denied");
    c.call(Request::EdgeDeny { change: EdgeDenyOp::Set, prefixes: vec![] }).expect("edge_deny set []");
    assert!(get_within(&t, 5), "an empty deny set admits the client");

    // The same with rvsip.
    t.cli_ok("rvsip", &["deny", "add", &format!("{CLIENT4}/32"), "2001:db8:bad::/48"]);
    assert_eq!(t.cli_ok("rvsip", &["deny", "show"]), format!("{CLIENT4}/32\n2001:db8:bad::/48\n"));
    assert_eq!(t.cli_ok("rvsip", &["-6", "deny"]), "2001:db8:bad::/48\n");
    assert!(!get(&t), "denied with rvsip deny add");
    let (_, err, ok) = t.cli("rvsip", &["deny", "del", "203.0.113.0/24"]);
    assert!(!ok && err.contains("203.0.113.0/24 is not in the global deny list"), "{err}");
    t.cli_ok("rvsip", &["deny", "del", CLIENT4]);
    assert!(get_within(&t, 5), "admitted again after rvsip deny del");
    t.cli_ok("rvsip", &["deny", "set", "198.51.100.0/24", CLIENT4]);
    assert_eq!(t.cli_ok("rvsip", &["deny", "show"]), format!("198.51.100.0/24\n{CLIENT4}/32\n"), "replaced whole");
    let before = drops(&t, "denied");
    assert!(!get(&t), "denied with rvsip deny set");
    assert!(drops(&t, "denied") > before, "and counted as denied");
    t.cli_ok("rvsip", &["deny", "flush"]);
    assert_eq!(t.cli_ok("rvsip", &["deny", "show"]), "");
    assert!(get_within(&t, 5), "admitted again after rvsip deny flush");
}

/// A deny set of 300,000 prefixes (`[edge] deny_file`), more than one control message
/// holds, is listed whole in pages (`edge_deny_list` with `from`), in the file's order;
/// the field-less request gets the first page and where the next starts.
#[test]
fn a_large_deny_set_is_listed_in_pages() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let want: Vec<ipnet::IpNet> = (0..300_000u32)
        .map(|i| {
            if i % 2 == 0 {
                format!("2001:db8:{:x}:{:x}::/64", i >> 16, i & 0xffff)
            } else {
                format!("{}/32", std::net::Ipv4Addr::from(0x0a00_0000 + i))
            }
        })
        .map(|p| p.parse().unwrap())
        .collect();
    let file = t.dir.join("deny.txt");
    std::fs::write(&file, want.iter().map(|p| format!("{p}\n")).collect::<String>()).expect("deny file");
    let mut edge = toml::Table::new();
    edge.insert("deny_file".into(), toml::Value::String(file.display().to_string()));
    t.config.insert("edge".into(), toml::Value::Table(edge));
    t.start_rvsd().expect("rvsd starts");

    let mut c = t.ctl();
    let (mut got, mut from, mut pages) = (Vec::new(), None, 0);
    loop {
        let max = if pages == 0 { None } else { Some(ctl::MAX_DENY_PAGE) };
        match c.call(Request::EdgeDenyList { from, max }).expect("edge_deny_list") {
            Response::EdgeDeny { prefixes, next } => {
                assert!(!prefixes.is_empty() && prefixes.len() <= ctl::MAX_DENY_PAGE as usize, "{}", prefixes.len());
                got.extend(prefixes);
                pages += 1;
                match next {
                    Some(n) => from = Some(n),
                    None => break,
                }
            }
            r => panic!("unexpected {r:?}"),
        }
    }
    assert_eq!(pages, 6, "300,000 prefixes in pages of {}", ctl::MAX_DENY_PAGE);
    assert!(got == want, "every prefix, in the file's order");
    assert!(get(&t), "the client, in none of them, is served");
}

/// A service's blacklist (`rvsadm --add-blklst -k CLIENT/32`): refused and counted as
/// `denied`; `--del-blklst` admits the client again.
#[test]
fn service_blacklist_with_rvsadm() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    assert!(get(&t), "admitted before any list");

    let client = format!("{CLIENT4}/32");
    t.cli_ok("rvsadm", &["--add-blklst", "-t", &svc(), "-k", &client]);
    let listed = t.cli_ok("rvsadm", &["--get-blklst"]);
    assert!(listed.lines().any(|l| l.split_whitespace().eq(["TCP", svc().as_str(), client.as_str()])), "{listed}");
    let saved = t.cli_ok("rvsadm", &["-S", "-n"]);
    let rule = format!("--add-blklst -t {} -k {client}", svc());
    assert!(saved.lines().any(|l| l == rule), "-S keeps the list for -R: {saved}");
    let (before, refused_before) = (drops(&t, "denied"), refused(&t));
    assert!(!get(&t), "a blacklisted client is refused");
    let after = drops(&t, "denied");
    assert!(after > before, "counted as denied ({before} -> {after})");
    assert_eq!(refused(&t) - refused_before, after - before, "and as refused by the service");

    t.cli_ok("rvsadm", &["--del-blklst", "-t", &svc(), "-k", &client]);
    assert!(get_within(&t, 5), "off the blacklist: admitted again");
}

/// A service's whitelist (`rvsadm --add-whtlst --whtlst-address`): with only another
/// prefix in it the client is refused (`not_allowed`); with the client's prefix added,
/// admitted.
#[test]
fn service_whitelist_with_rvsadm() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");

    t.cli_ok("rvsadm", &["--add-whtlst", "-t", &svc(), "--whtlst-address", "203.0.113.0/24"]);
    let before = drops(&t, "not_allowed");
    assert!(!get(&t), "a client outside the whitelist is refused");
    let after = drops(&t, "not_allowed");
    assert!(after > before, "counted as not_allowed ({before} -> {after})");

    t.cli_ok("rvsadm", &["--add-whtlst", "-t", &svc(), "--whtlst-address", "198.18.0.0/24"]);
    assert!(get_within(&t, 5), "the client's prefix in the whitelist: admitted");

    t.cli_ok("rvsadm", &["--del-whtlst", "-t", &svc(), "--whtlst-address", "198.18.0.0/24"]);
    assert!(!get(&t), "the client's prefix deleted again: refused");
}

/// A service's rate limit (5 per second, burst 5): of 30 connections opened at once
/// some open and the rest are refused (`rate_limited`); 2 s later a request succeeds.
#[test]
fn rate_limit_refuses_a_burst_beyond_it() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let s = svc_config(&mut t);
    s.insert("rate_limit".into(), toml::Value::Integer(5));
    s.insert("rate_burst".into(), toml::Value::Integer(5));
    t.start_rvsd().expect("rvsd starts");

    let before = drops(&t, "rate_limited");
    let opened = connect_burst(&t, 30);
    eprintln!("rate limit 5/s burst 5: {opened} of 30 opened at once");
    assert!(opened > 0, "the burst's first connections open");
    assert!(opened < 30, "not all 30 connections of an instant burst open with a limit of 5/s burst 5");
    assert!(opened <= 10, "at most about the burst opens within 0.8 s: {opened}");
    let after = drops(&t, "rate_limited");
    assert!(after > before, "the refused SYNs are counted as rate_limited ({before} -> {after})");

    std::thread::sleep(Duration::from_secs(2));
    assert!(get(&t), "2 s later the bucket has tokens again");
}

/// A service's per-source limit (3): while one source holds 3 connections a 4th is
/// refused (`source_limit`); once they are closed (and their entries freed), admitted.
#[test]
fn source_limit_refuses_a_fourth_connection() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    svc_config(&mut t).insert("source_limit".into(), toml::Value::Integer(3));
    // Closed connections free their entries (and their source count) quickly.
    for (k, v) in [("fin_wait", 1), ("time_wait", 1), ("close", 1), ("close_wait", 1), ("last_ack", 1)] {
        t.config["timeouts"].as_table_mut().expect("[timeouts]").insert(k.into(), toml::Value::Integer(v));
    }
    t.start_rvsd().expect("rvsd starts");

    let script = connect_script(&t);
    let mut child = Command::new("ip")
        .args(["netns", "exec", t.client.name(), "timeout", "60", "python3", &script, VIP4, "80", "3", "3", "hold"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start connect.py");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let holder = ChildGuard::new(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(10)).expect("connect.py reports");
    assert_eq!(line.trim(), "open 3", "the first 3 connections open");

    let before = drops(&t, "source_limit");
    assert!(!get(&t), "a 4th connection from the same source is refused");
    let after = drops(&t, "source_limit");
    assert!(after > before, "counted as source_limit ({before} -> {after})");

    // Close the 3 (stdin's end makes the holder close them and exit).
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut holder = holder;
    while holder.running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(holder);
    assert!(get_within(&t, 10), "the held connections closed and freed: admitted again");
}

/// A blind attacker who knows a live connection's addresses and ports but not its
/// sequence numbers floods it with forged RSTs while it idles: rvsd forwards them (the
/// server, Linux, drops or challenges each: RFC 5961) and keeps the connection, which
/// answers its next request well after CLOSE's 10 s would have ended it here.
#[test]
fn forged_rsts_do_not_end_an_idle_connection() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let (port_file, outcome) = (t.dir.join("port"), t.dir.join("outcome"));
    let script = format!(
        "import socket,time,sys\ns=socket.create_connection(('{VIP4}',80))\n\
         open(sys.argv[1],'w').write(str(s.getsockname()[1]))\ntime.sleep(14)\ns.settimeout(5)\ntry:\n    \
         s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n    r='ok' if s.recv(100).startswith(b'HTTP') else 'closed'\n\
         except ConnectionResetError:\n    r='reset'\nexcept socket.timeout:\n    r='timeout'\n\
         open(sys.argv[2],'w').write(r)\n"
    );
    let _client =
        t.client.spawn(&["python3", "-c", &script, &port_file.display().to_string(), &outcome.display().to_string()]);
    let start = Instant::now();
    let port = loop {
        if let Some(p) = std::fs::read_to_string(&port_file).ok().filter(|p| !p.is_empty()) {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "the client connected");
        std::thread::sleep(Duration::from_millis(50));
    };
    let flooder = t.second_client().expect("flooder");
    let out = flooder.exec(&[
        "timeout", "10", "hping3", "-q", "-R", "-a", CLIENT4, "-s", &port, "-k", "-p", "80", "-c", "300", "-i",
        "u2000", VIP4,
    ]);
    assert!(out.status.code().is_some(), "hping3 ran");
    let unmatched = t.rvsd_stats().expect("stats")["events"]["rst_unmatched"].as_u64().unwrap_or(0);
    assert!(unmatched >= 250, "the forged RSTs reached rvsd and were not taken: {unmatched}");
    while !outcome.exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "the client finished");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(std::fs::read_to_string(&outcome).expect("outcome"), "ok", "the connection outlived the flood");
}
