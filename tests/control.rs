//! The control socket end to end: changes while traffic flows, generations confirmed by
//! every worker, and a socket that refuses strangers and malformed input without harm.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctl::{ErrorCode, RealServerEdit, Request, Response};
use fnat::service::{RealServerConfig, ServiceKey};
use fnat::types::Proto;
use rvs_e2e::{rs4, serial, Spec, Topology, VIP4};

fn vip_key() -> ServiceKey {
    ServiceKey::new(Proto::Tcp, VIP4.parse().unwrap(), 80)
}

fn status_gens(c: &mut ctl::Client) -> (u64, Vec<u64>) {
    match c.call(Request::Status {}).expect("status") {
        Response::Status { gen, worker_gens, .. } => (gen, worker_gens),
        r => panic!("unexpected {r:?}"),
    }
}

#[test]
fn changes_under_traffic_are_atomic_and_lossless() {
    let _g = serial();
    // Four real servers; the config lists three, the fourth comes and goes.
    let mut t = Topology::build(Spec { real_servers: 4, http: true }).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let mut c = t.ctl();

    // Traffic in the background for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let client = t.client.name().to_string();
    let flag = Arc::clone(&stop);
    let traffic = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0u32, 0u32);
        while !flag.load(Ordering::Relaxed) {
            let urls: Vec<String> = (0..20).map(|_| format!("http://{VIP4}/")).collect();
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", &client, "curl", "-sS", "--max-time", "5"])
                .args(&urls)
                .output()
                .expect("curl");
            let bodies = String::from_utf8_lossy(&out.stdout);
            let answered = bodies.lines().filter(|l| l.starts_with("rs")).count() as u32;
            ok += answered;
            failed += 20 - answered;
        }
        (ok, failed)
    });

    // 100 changes per second for 10 seconds: weights, and adding/removing rs4.
    let start = Instant::now();
    let mut changes = 0u32;
    let mut rs4_in = false;
    while start.elapsed() < Duration::from_secs(10) {
        let req = if changes % 10 == 9 {
            rs4_in = !rs4_in;
            let addr: IpAddr = rs4(4).parse().unwrap();
            if rs4_in {
                Request::RealServerAdd {
                    key: vip_key(),
                    rs: RealServerConfig { addr, port: 8080, weight: 1, upper: 0, lower: 0, fwd: Default::default() },
                }
            } else {
                Request::RealServerDel { key: vip_key(), addr, port: 8080 }
            }
        } else {
            let i = (changes % 3) as usize + 1;
            let w = 1 + (changes / 3) % 5;
            Request::RealServerEdit {
                key: vip_key(),
                addr: rs4(i).parse().unwrap(),
                port: 8080,
                change: RealServerEdit { weight: Some(w), ..Default::default() },
            }
        };
        let gen = match c.call(req).expect("change accepted") {
            Response::Done { gen } => gen,
            r => panic!("unexpected {r:?}"),
        };
        // The call returned: every worker runs this generation (or a newer one).
        let (_, gens) = status_gens(&mut c);
        assert!(gens.iter().all(|g| *g >= gen), "workers {gens:?} behind generation {gen} after the change returned");
        changes += 1;
        // Paced against the start, not the round: a late round is caught up on.
        if let Some(rest) = (start + Duration::from_millis(10) * changes).checked_duration_since(Instant::now()) {
            std::thread::sleep(rest);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = traffic.join().expect("traffic thread");
    eprintln!("{changes} changes in 10 s; {ok} requests answered, {failed} failed");
    assert!(changes >= 900, "about 100 changes per second: {changes}");
    assert!(ok > 200, "traffic ran during the changes ({ok} answered)");
    assert_eq!(failed, 0, "no request fails while servers are added, removed (drained) and reweighted");

    // An invalid change changes nothing.
    let (gen_before, _) = status_gens(&mut c);
    let bad = c.call(Request::RealServerEdit {
        key: vip_key(),
        addr: rs4(1).parse().unwrap(),
        port: 8080,
        change: RealServerEdit { weight: Some(1_000_000), ..Default::default() },
    });
    assert!(matches!(bad, Err(ctl::CtlError::Remote { code: ErrorCode::Invalid, .. })), "{bad:?}");
    let missing = c.call(Request::ServiceDel { key: ServiceKey { vport: 81, ..vip_key() } });
    assert!(matches!(missing, Err(ctl::CtlError::Remote { code: ErrorCode::NotFound, .. })), "{missing:?}");
    assert_eq!(status_gens(&mut c).0, gen_before, "refused changes publish nothing");
}

fn raw_exchange(stream: &mut UnixStream, line: &[u8]) -> (String, bool) {
    stream.write_all(line).expect("write");
    let mut r = BufReader::new(stream.try_clone().expect("clone"));
    let mut reply = String::new();
    r.read_line(&mut reply).expect("read reply");
    let mut rest = String::new();
    let closed = matches!(r.read_line(&mut rest), Ok(0));
    (reply, closed)
}

#[test]
fn socket_refuses_strangers_and_bad_messages() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let sock = t.socket();
    let mode = std::fs::metadata(&sock).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is created mode 0600");

    // Malformed JSON: an error reply, then the connection is closed.
    let mut s = UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (reply, closed) = raw_exchange(&mut s, b"{this is not json\n");
    assert!(reply.contains("\"code\":\"bad_request\""), "{reply}");
    assert!(closed, "connection closed after a malformed message");

    // Oversized: refused without reading it all into memory, connection closed.
    let mut s = UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut big = vec![b' '; ctl::MAX_MESSAGE_BYTES + 100];
    big.push(b'\n');
    let _ = s.write_all(&big);
    let mut reply = String::new();
    let _ = BufReader::new(&s).read_line(&mut reply);
    assert!(reply.contains("\"code\":\"too_large\""), "{reply}");

    // Wrong version.
    let mut s = UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (reply, _) = raw_exchange(&mut s, b"{\"v\":99,\"op\":\"status\"}\n");
    assert!(reply.contains("\"code\":\"version_mismatch\""), "{reply}");

    // A field rvsd does not know (here one an older rvsd had) is refused with its name,
    // and the request is not carried out without it: the address stays. The connection
    // stays too, with the addresses it leased (a newer agent's VIPs must not go with one
    // request the older rvsd does not know).
    let mut s = UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut line = |s: &mut UnixStream, request: &str| {
        s.write_all(format!("{request}\n").as_bytes()).expect("write");
        let mut reply = String::new();
        r.read_line(&mut reply).expect("a reply");
        reply
    };
    let add = r#"{"v":1,"op":"addr_add","dev":"dpdk0","addr":"198.18.0.202/32","lease":true}"#;
    assert!(line(&mut s, add).contains("\"result\":\"done\""));
    let del = r#"{"v":1,"op":"addr_del","dev":"dpdk0","addr":"198.18.0.202","lease":true}"#;
    let reply = line(&mut s, del);
    assert!(reply.contains("\"code\":\"bad_request\"") && reply.contains("unknown field `lease`"), "{reply}");
    let reply = line(&mut s, r#"{"v":1,"op":"status","verbose":true}"#);
    assert!(reply.contains("unknown field `verbose`"), "{reply}");
    let reply = line(&mut s, r#"{"v":1,"op":"status"}"#);
    assert!(reply.contains("\"result\":\"status\""), "the connection still serves: {reply}");
    assert!(t.ping("198.18.0.202", 1), "the address of the refused delete, leased by the same connection, answers");
    drop(s);
    // 40,000 such lines in one stream, the replies read as they come: each refused in
    // turn, and rvsd lives on (a recursion per line overran the server thread's stack).
    let flood = "import socket, sys, threading\n\
                 s = socket.socket(socket.AF_UNIX)\n\
                 s.connect(sys.argv[1])\n\
                 n = 40000\n\
                 got = [0]\n\
                 def read():\n\
                 \x20   for line in s.makefile('rb'):\n\
                 \x20       got[0] += b'bad_request' in line\n\
                 \x20       if got[0] == n: break\n\
                 t = threading.Thread(target=read)\n\
                 t.start()\n\
                 s.sendall(b'1\\n' * n)\n\
                 t.join(60)\n\
                 print(got[0])\n";
    let out = std::process::Command::new("python3")
        .args(["-c", flood, &sock.display().to_string()])
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "40000", "{}", String::from_utf8_lossy(&out.stderr));

    // A non-root peer: even with the file mode opened up, the credential check refuses it
    // (the refusal is sent as soon as the connection is accepted).
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let py = format!(
        "import socket;s=socket.socket(socket.AF_UNIX);s.connect('{}');print(s.recv(4096).decode())",
        sock.display()
    );
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &py])
        .output()
        .expect("setpriv");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("permission_denied"),
        "non-root peer refused: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The daemon is unaffected: a proper client still works, traffic still flows.
    let mut c = t.ctl();
    assert!(matches!(c.call(Request::Status {}), Ok(Response::Status { .. })));
    assert!(t.ping(VIP4, 1));
}

#[test]
fn leased_addresses_leave_with_their_connection() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let has = |c: &mut ctl::Client, a: &str| match c.call(Request::AddrList {}).expect("addr list") {
        Response::Addrs { addrs } => addrs.iter().any(|x| x.addr.addr().to_string() == a),
        r => panic!("unexpected {r:?}"),
    };
    let mut observer = t.ctl();
    let gen = {
        let mut agent = t.ctl();
        for (addr, lease) in [("198.18.0.200/32", true), ("198.18.0.201/32", false), ("198.18.0.203/32", true)] {
            agent
                .call(Request::AddrAdd { dev: "dpdk0".into(), addr: addr.parse().unwrap(), sapool: false, lease })
                .expect("add");
        }
        assert!(has(&mut observer, "198.18.0.200") && has(&mut observer, "198.18.0.201"));
        assert!(t.ping("198.18.0.200", 1), "the leased address answers while its holder is connected");
        status_gens(&mut observer).0
    }; // The holder's connection closes (as when a VRRP agent is killed).
    let deadline = Instant::now() + Duration::from_secs(5);
    while has(&mut observer, "198.18.0.200") || has(&mut observer, "198.18.0.203") {
        assert!(Instant::now() < deadline, "the leased addresses are removed when their connection closes");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status_gens(&mut observer).0, gen + 1, "both leases end in one generation");
    assert!(has(&mut observer, "198.18.0.201"), "an address added without a lease stays");
    assert!(!t.ping("198.18.0.200", 1), "and the leased one no longer answers");

    // A holder that hangs up right after asking, before its reply (a killed agent): the
    // address is added (the request was whole) and its lease ends with the connection,
    // whichever comes first of the reply and the hang-up.
    for half_close in [true, false] {
        let gen = status_gens(&mut observer).0;
        let mut s = UnixStream::connect(t.socket()).expect("connect");
        let add = Request::AddrAdd {
            dev: "dpdk0".into(),
            addr: "198.18.0.204/32".parse().unwrap(),
            sapool: false,
            lease: true,
        };
        ctl::frame::write(&mut s, &ctl::RequestMsg::from(add)).expect("send");
        if half_close {
            s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        }
        drop(s);
        let deadline = Instant::now() + Duration::from_secs(5);
        while status_gens(&mut observer).0 < gen + 2 {
            assert!(Instant::now() < deadline, "the add and the end of its lease: two generations after {gen}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!has(&mut observer, "198.18.0.204"), "no address outlives a holder that hung up mid-request");
    }
}

/// A large site: 10,000 services with 100,000 real servers restored by `rvsadm -R` (in
/// parts: the set is larger than one control message), then listed, listed with counters,
/// saved, scraped by the metrics endpoint, and the save restored again: listings page
/// through the services, so none exceeds the control socket's message limit. Prints the
/// times and rvsd's memory per service and per real server (docs/PERFORMANCE.md).
#[test]
fn ten_thousand_services_list_save_restore_and_scrape() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    let mut metrics = toml::Table::new();
    metrics.insert("listen".into(), toml::Value::String("127.0.0.1:9469".into()));
    t.config.insert("metrics".into(), toml::Value::Table(metrics));
    t.start_rvsd().expect("rvsd starts");
    let rss_before = t.rvsd_rss_kib().expect("rss");
    let (services, per) = (10_000u32, 10u32);
    let mut rules = String::new();
    for p in 0..services {
        let svc = format!("-t {VIP4}:{}", 10_000 + p);
        rules += &format!("-A {svc} -s rr\n");
        for r in 0..per {
            rules += &format!("-a {svc} -r 198.19.0.11:{} -b -w 1\n", 20_000 + r);
        }
    }
    let started = Instant::now();
    let (_, err, ok) = t.cli_stdin("rvsadm", &["-R"], Some(&rules));
    assert!(ok, "restore: {err}");
    let restored_in = started.elapsed();
    let rss_after = t.rvsd_rss_kib().expect("rss");
    let count = |text: &str, prefix: &str| {
        text.lines().filter(|l| l.starts_with(prefix) && !l.contains("RemoteAddress")).count() as u32
    };
    let started = Instant::now();
    let saved = t.cli_ok("rvsadm", &["-S", "-n"]);
    let saved_in = started.elapsed();
    assert_eq!((count(&saved, "-A "), count(&saved, "-a ")), (services, services * per));
    let started = Instant::now();
    let list = t.cli_ok("rvsadm", &["-L", "-n"]);
    let listed_in = started.elapsed();
    assert_eq!((count(&list, "TCP "), count(&list, "  -> ")), (services, services * per));
    let started = Instant::now();
    let stats = t.cli_ok("rvsadm", &["-L", "-n", "--stats"]);
    let stats_in = started.elapsed();
    assert_eq!(count(&stats, "TCP "), services);
    let started = Instant::now();
    let scrape = t.lb.exec(&["curl", "-sS", "--max-time", "60", "http://127.0.0.1:9469/metrics"]);
    let scraped_in = started.elapsed();
    let text = String::from_utf8_lossy(&scrape.stdout);
    assert_eq!(count(&text, "rvs_real_server_weight{"), services * per, "every real server in the scrape");
    let (_, err, ok) = t.cli_stdin("rvsadm", &["-R"], Some(&saved));
    assert!(ok, "the save restores: {err}");
    assert_eq!(t.cli_ok("rvsadm", &["-S", "-n"]), saved, "and saves the same again");
    let grown = rss_after.saturating_sub(rss_before) * 1024;
    eprintln!(
        "{services} services, {} real servers: restore {restored_in:?}, save {saved_in:?}, list {listed_in:?}, \
         stats {stats_in:?}, metrics scrape {scraped_in:?} ({} MB); rvsd RSS +{} MiB, {} bytes per real server \
         (services included)",
        services * per,
        text.len() >> 20,
        grown >> 20,
        grown / u64::from(services * per),
    );
}

/// A million live connections (a spoofed-source SYN flood with the SYN proxy off, each
/// SYN a half-open connection to a listening server, kept 300 s), listed whole by `rvsadm -L -n -c`, page by page. Prints
/// how long the listing took.
#[test]
fn a_million_connections_are_listed() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 3, http: true }).expect("topology");
    let conn = t.config["conn"].as_table_mut().expect("conn");
    conn.insert("pool_size".into(), toml::Value::Integer(1_300_000));
    conn.insert("syn_recv_max".into(), toml::Value::Integer(1_300_000));
    t.config["timeouts"].as_table_mut().expect("timeouts").insert("syn_recv".into(), toml::Value::Integer(300));
    // FullNAT's capacity is LIPs x local ports x real servers: 8 LIPs x 64,511 ports x 3
    // servers, scheduled evenly, hold 1.5 million.
    let lips: Vec<String> = (20..28).map(|i| format!("198.19.0.{i}")).collect();
    for lip in &lips {
        let mut a = toml::Table::new();
        a.insert("dev".into(), "dpdk1".into());
        a.insert("addr".into(), format!("{lip}/24").into());
        a.insert("sapool".into(), true.into());
        t.config["addr"].as_array_mut().expect("addrs").push(toml::Value::Table(a));
    }
    for s in t.config["service"].as_array_mut().expect("services") {
        let s = s.as_table_mut().expect("service");
        s.insert("synproxy".into(), toml::Value::String("off".into()));
        s.insert("scheduler".into(), toml::Value::String("rr".into()));
        if s["vip"].as_str() == Some(VIP4) {
            s.insert("laddrs".into(), toml::Value::Array(lips.iter().map(|l| l.as_str().into()).collect()));
        }
    }
    t.start_rvsd().expect("rvsd starts");
    let fl = t.second_client().expect("flooder");
    let live = |t: &Topology| t.rvsd_stats().ok().and_then(|s| s["conns"].as_u64()).unwrap_or(0);
    let flood = testnet::ChildGuard::new(
        std::process::Command::new("ip")
            .args(["netns", "exec", fl.name(), "timeout", "-s", "INT", "60", "hping3", "-q", "-S", "--flood"])
            .args(["--rand-source", "-p", "80", VIP4])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("hping3"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        n = live(&t);
        if n >= 1_000_000 {
            break;
        }
    }
    // timeout(1) passes SIGINT on to hping3 (a SIGKILL would leave hping3 running).
    let _ = std::process::Command::new("kill").args(["-INT", &flood.pid().to_string()]).status();
    drop(flood);
    if n < 1_000_000 {
        let stats = t.rvsd_stats().unwrap_or_default();
        panic!("a million live connections: {n}; drops {} events {}", stats["drops"], stats["events"]);
    }
    let started = Instant::now();
    let (out, err, ok) = t.cli("rvsadm", &["-L", "-n", "-c"]);
    let listed_in = started.elapsed();
    assert!(ok, "rvsadm -L -n -c: {err}");
    let listed = out.lines().filter(|l| l.starts_with("[")).count() as u64;
    let after = live(&t);
    assert!(listed >= 1_000_000 && listed >= after, "every connection listed: {listed}, {after} live");
    eprintln!("{n} live connections: rvsadm -L -n -c listed {listed} in {listed_in:?}");
    let log = t.stop_rvsd().expect("stops");
    assert!(!log.contains("panicked"), "{log}");
}
