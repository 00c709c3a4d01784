//! Kernel twins end to end: `dpdk0.kni` exists with the port's MAC; kni_host routes hand
//! an address the dataplane owns to the kernel; forward2kni copies traffic for tcpdump
//! only while on; multicast (VRRP) crosses the twin in both directions.

use std::time::Duration;

use ctl::{LinkChange, Request, RouteScope, RouteSpec};
use rvs_e2e::{serial, Spec, Topology, GW4, VIP4};

fn counter(t: &Topology, path: &[&str]) -> u64 {
    let s = t.rvsd_stats().expect("stats");
    let mut v = &s;
    for p in path {
        v = &v[*p];
    }
    v.as_u64().unwrap_or(0)
}

#[test]
fn twin_exists_and_kni_host_hands_an_owned_address_to_the_kernel() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: true }).expect("topology");
    t.start_rvsd().expect("rvsd starts");

    // The twin is there, with the port's MAC, up.
    let twin_mac = t.lb.mac("dpdk0.kni");
    let port_mac = t.lb.mac("rvsdemo-lb0");
    assert_eq!(twin_mac, port_mac, "dpdk0.kni has dpdk0's MAC");
    // Nobody on the link configures the twin's kernel: no router advertisements, no
    // redirects.
    for sysctl in [
        "ipv6/conf/dpdk0.kni/accept_ra",
        "ipv6/conf/dpdk0.kni/accept_redirects",
        "ipv4/conf/dpdk0.kni/accept_redirects",
    ] {
        let out = t.lb.exec(&["cat", &format!("/proc/sys/net/{sysctl}")]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{sysctl}");
    }
    // The kernel gets the dataplane's own address on the twin, and a service on it.
    t.lb.ip(&["addr", "add", &format!("{GW4}/24"), "dev", "dpdk0.kni"]);
    let _kernel_http = t.lb.spawn(&["python3", "-m", "http.server", "2222", "--bind", GW4]);
    std::thread::sleep(Duration::from_millis(800));

    // Without a kni_host route the dataplane owns GW4: it answers ping itself, and TCP
    // to it is dropped (local_unhandled).
    let echo0 = counter(&t, &["net", "echo_replies"]);
    assert!(t.ping(GW4, 2), "ping {GW4} answered");
    assert!(counter(&t, &["net", "echo_replies"]) >= echo0 + 2, "answered by the dataplane");
    let drops0 = counter(&t, &["drops", "local_unhandled"]);
    let (_, ok) = t.curl_many(&[format!("http://{GW4}:2222/")], 2);
    assert!(!ok, "without kni_host, TCP to the dataplane's address does not reach the kernel");
    assert!(counter(&t, &["drops", "local_unhandled"]) > drops0, "and is counted");

    // With the route, the kernel answers both.
    let mut c = t.ctl();
    c.call(Request::RouteAdd(RouteSpec {
        prefix: format!("{GW4}/32").parse().unwrap(),
        via: None,
        dev: "dpdk0".into(),
        scope: RouteScope::KniHost,
        src: None,
        metric: 0,
        connected: false,
    }))
    .expect("kni_host route");
    let echo1 = counter(&t, &["net", "echo_replies"]);
    assert!(t.ping(GW4, 2), "ping {GW4} answered through the twin");
    assert_eq!(counter(&t, &["net", "echo_replies"]), echo1, "the kernel answered, not the dataplane");
    let (body, ok) = t.curl_many(&[format!("http://{GW4}:2222/")], 5);
    assert!(ok && body.contains("Directory listing"), "TCP to the kernel service through the twin: {body}");
    assert!(counter(&t, &["net", "twin_up"]) > 0 && counter(&t, &["net", "twin_down"]) > 0, "both directions counted");

    // Service traffic is untouched by all this.
    let (bodies, ok) = t.curl_many(&(0..10).map(|_| format!("http://{VIP4}/")).collect::<Vec<_>>(), 10);
    assert!(ok && t.tally(&bodies)[0] == 10);
}

#[test]
fn forward2kni_copies_traffic_only_while_on() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: true }).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let mut c = t.ctl();
    let urls: Vec<String> = (0..10).map(|_| format!("http://{VIP4}/")).collect();
    let seen = |t: &Topology| {
        let cap = t.capture_in(&t.lb, "dpdk0.kni", "tcp port 80").expect("tcpdump on the twin");
        let (_, ok) = t.curl_many(&urls, 10);
        assert!(ok, "traffic flows whatever forward2kni says");
        cap.finish().expect("frames").len()
    };
    assert_eq!(seen(&t), 0, "forward2kni off (default): the twin sees no client traffic");
    let on = LinkChange { forward2kni: Some(true), ..Default::default() };
    c.call(Request::LinkSet { dev: "dpdk0".into(), change: on }).expect("forward2kni on");
    let n = seen(&t);
    assert!(n >= 10 * 3, "forward2kni on: the twin sees the client's packets ({n})");
    let off = LinkChange { forward2kni: Some(false), ..Default::default() };
    c.call(Request::LinkSet { dev: "dpdk0".into(), change: off }).expect("forward2kni off");
    assert_eq!(seen(&t), 0, "off again: nothing");
}

/// `n` VRRPv2 advertisements (VRID 51, priority 100, one address), `gap` seconds apart,
/// from a Python raw-socket sender in `ns` on `dev`.
fn send_vrrp(ns: &testnet::NetNs, dev: &str, n: u32, gap: f64) {
    let py = format!(
        "import socket,struct\n\
         def cs(b):\n s=sum(struct.unpack('!%dH'%(len(b)//2),b));s=(s>>16)+(s&0xffff);s+=s>>16;return ~s&0xffff\n\
         body=bytes([0x21,51,100,1,0,1,0,0])+socket.inet_aton('198.18.0.200')+bytes(8)\n\
         body=body[:6]+struct.pack('!H',cs(body))+body[8:]\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_RAW,112)\n\
         s.setsockopt(socket.SOL_SOCKET,socket.SO_BINDTODEVICE,b'{dev}')\n\
         s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_TTL,255)\n\
         import time\n\
         for i in range({n}):\n s.sendto(body,('224.0.0.18',0));time.sleep({gap})\n"
    );
    let out = ns.exec(&["/usr/bin/python3", "-c", &py]);
    assert!(out.status.success(), "vrrp sender: {}", String::from_utf8_lossy(&out.stderr));
}

fn vrrp_frames(frames: &[Vec<u8>]) -> usize {
    frames
        .iter()
        .filter(|f| f.len() > 34 && f[12..14] == [8, 0] && f[23] == 112 && f[30..34] == [224, 0, 0, 18])
        .count()
}

/// The kernel's address on dpdk0's twin, from rvsd's config (`twin_addrs`): 198.18.0.5.
fn give_the_twin_an_address(t: &mut Topology) {
    t.config["port"].as_array_mut().expect("ports")[0]
        .as_table_mut()
        .expect("port")
        .insert("twin_addrs".into(), toml::Value::Array(vec![toml::Value::String("198.18.0.5/24".into())]));
}

#[test]
fn vrrp_adverts_cross_the_twin_both_ways() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    give_the_twin_an_address(&mut t);
    t.start_rvsd().expect("rvsd starts");
    let addrs =
        String::from_utf8_lossy(&t.lb.exec(&["ip", "-4", "addr", "show", "dev", "dpdk0.kni"]).stdout).to_string();
    assert!(addrs.contains("198.18.0.5/24"), "twin_addrs put on the twin: {addrs}");

    // Out: a process on the twin sends adverts; they leave dpdk0 towards the client.
    let cap = t.capture_in(&t.client, "eth0", "ip proto 112").expect("tcpdump in the client ns");
    send_vrrp(&t.lb, "dpdk0.kni", 5, 0.0);
    let out = cap.finish().expect("frames");
    assert!(vrrp_frames(&out) >= 5, "adverts from the twin left the port ({} VRRP frames)", vrrp_frames(&out));
    let port_mac = t.lb.mac("rvsdemo-lb0");
    assert!(out.iter().all(|f| f[6..12] == port_mac), "sent with the port's MAC");

    // In: adverts arriving at dpdk0 reach the twin.
    let cap = t.capture_in(&t.lb, "dpdk0.kni", "ip proto 112").expect("tcpdump on the twin");
    send_vrrp(&t.client, "eth0", 5, 0.0);
    let inb = cap.finish().expect("frames");
    assert!(vrrp_frames(&inb) >= 5, "adverts arriving at the port reached the twin ({})", vrrp_frames(&inb));
}

/// A flood to the kernel's address on the twin (anyone on the wire can send one), ten
/// times the bulk budget (`twin_up_pps`, 1,000 a second here), is dropped before the
/// twin (`twin_limited`), while the VRRP adverts arriving meanwhile reach it: adverts
/// have their own queue and budget. With one budget they shared the flood's fate (10 of
/// 100 went up, in a run with every frame classed bulk).
#[test]
fn a_flood_to_the_kernels_address_leaves_vrrp_adverts_alone() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    give_the_twin_an_address(&mut t);
    t.config["workers"].as_table_mut().expect("workers").insert("twin_up_pps".into(), toml::Value::Integer(1000));
    t.start_rvsd().expect("rvsd starts");
    let cap = t.capture_in(&t.lb, "dpdk0.kni", "ip proto 112").expect("tcpdump on the twin");
    let flooder = t.second_client().expect("flooder");
    // At most 20,000 datagrams (about 10,000 a second) and 4 s, to the kernel's own
    // address only.
    let mut flood = flooder.spawn(&[
        "timeout",
        "-s",
        "INT",
        "4",
        "hping3",
        "-q",
        "--udp",
        "-p",
        "9",
        "-i",
        "u100",
        "-c",
        "20000",
        "198.18.0.5",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    send_vrrp(&t.client, "eth0", 100, 0.01);
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while flood.running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // timeout(1) passes SIGINT on to hping3 (a SIGKILL would leave hping3 running).
    let _ = std::process::Command::new("kill").args(["-INT", &flood.pid().to_string()]).status();
    drop(flood);
    let inb = cap.finish().expect("frames");
    let stats = t.rvsd_stats().expect("stats");
    let drops = |name: &str| stats["drops"][name].as_u64().unwrap_or(0);
    // (98: a frame the port's receive ring lost before rvsd saw it is not rvsd's doing;
    // none of them was dropped by rvsd, below.)
    assert!(vrrp_frames(&inb) >= 98, "the adverts reached the twin during the flood: {}", vrrp_frames(&inb));
    assert_eq!((drops("twin_limited_control"), drops("twin_full_control")), (0, 0), "{}", stats["drops"]);
    assert!(drops("twin_limited") >= 3_000, "the flood met the bulk budget: {}", stats["drops"]);
    let control = stats["net"]["twin_up_control"].as_u64().unwrap_or(0);
    assert!(control >= vrrp_frames(&inb) as u64, "the adverts went up as control: {control}");
}

#[test]
fn gratuitous_arp_and_unsolicited_na_leave_the_port() {
    let _g = serial();
    let mut t = Topology::build(Spec { real_servers: 1, http: false }).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let mut c = t.ctl();
    let port_mac = t.lb.mac("rvsdemo-lb0");
    let cap = t.capture_in(&t.client, "eth0", "arp or icmp6").expect("tcpdump in the client ns");
    for addr in [VIP4, rvs_e2e::VIP6] {
        c.call(Request::SendGarp { addr: addr.parse().unwrap(), dev: "dpdk0".into(), count: 3 }).expect("garp");
    }
    let frames = cap.finish().expect("frames");
    let garps = frames
        .iter()
        .filter(|f| f.len() >= 42 && f[12..14] == [8, 6] && f[6..12] == port_mac && f[28..32] == [198, 18, 0, 100])
        .filter(|f| f[0..6] == [0xff; 6] && f[38..42] == [198, 18, 0, 100])
        .count();
    assert_eq!(garps, 3, "three gratuitous ARPs for {VIP4} from dpdk0's MAC, broadcast");
    let vip6: std::net::Ipv6Addr = rvs_e2e::VIP6.parse().unwrap();
    let nas = frames
        .iter()
        .filter(|f| f.len() >= 78 && f[12..14] == [0x86, 0xdd] && f[54] == 136 && f[62..78] == vip6.octets())
        .filter(|f| f[0..6] == [0x33, 0x33, 0, 0, 0, 1] && f[6..12] == port_mac)
        .count();
    assert_eq!(nas, 3, "three unsolicited neighbour advertisements for {vip6} to all-nodes");
    let bad = c.call(Request::SendGarp { addr: VIP4.parse().unwrap(), dev: "dpdk9".into(), count: 1 });
    assert!(bad.is_err(), "an unknown port is refused");
    // Another host's address (the client's), or ours on another port: refused, nothing sent.
    let cap = t.capture_in(&t.client, "eth0", "arp").expect("tcpdump in the client ns");
    for (addr, dev) in [(rvs_e2e::CLIENT4, "dpdk0"), (VIP4, "dpdk1")] {
        let e = c.call(Request::SendGarp { addr: addr.parse().unwrap(), dev: dev.into(), count: 1 });
        assert!(e.is_err_and(|e| e.to_string().contains("rvsd announces only its own")), "{addr} on {dev}");
    }
    let frames = cap.finish().expect("frames");
    assert!(frames.iter().all(|f| f[6..12] != port_mac), "nothing announced: {} frames from rvsd", frames.len());
}

#[test]
fn capture_from_a_running_rvsd_opens_in_tshark() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let client = t.client.name().to_string();
    let traffic = std::thread::spawn(move || {
        let urls: Vec<String> = (0..300).map(|_| format!("http://{VIP4}/")).collect();
        std::process::Command::new("ip")
            .args(["netns", "exec", &client, "curl", "-sS", "--max-time", "20"])
            .args(&urls)
            .output()
    });
    let front = t.dir.join("front.pcapng");
    let back = t.dir.join("back.pcapng");
    let out = t.cli_ok(
        "rvsip",
        &["capture", "dpdk0", "both", "-c", "40", "-w", &front.display().to_string(), "tcp", "port", "80"],
    );
    assert!(out.contains("40 packets captured"), "{out}");
    let out = t.cli_ok(
        "rvsip",
        &["capture", "dpdk1", "rx", "-c", "10", "-w", &back.display().to_string(), "src", "host", &rvs_e2e::rs4(1)],
    );
    assert!(out.contains("10 packets captured"), "{out}");
    assert!(traffic.join().expect("traffic").expect("curl").status.success(), "traffic unaffected by the captures");
    let log = t.rvsd_log();
    let audited: Vec<&str> = log.lines().filter(|l| l.contains("control capture uid=0 pid=")).collect();
    assert!(
        audited.len() == 2 && audited[0].contains("front.pcapng") && audited[1].contains("back.pcapng"),
        "each capture in the audit log, with who asked and the file: {audited:?}"
    );
    // One the control thread refuses (no such port) is logged, and its refusal too.
    let nowhere = t.dir.join("nowhere.pcapng");
    let (_, err, ok) = t.cli("rvsip", &["capture", "dpdk9", "rx", "-c", "1", "-w", &nowhere.display().to_string()]);
    assert!(!ok && err.contains("dpdk9"), "{err}");
    let log = t.rvsd_log();
    assert!(log.contains("nowhere.pcapng") && log.contains("control capture error: "), "{log}");
    assert!(!nowhere.exists(), "a refused capture leaves no file behind");
    let before = std::fs::metadata(&front).expect("front.pcapng").len();
    let (_, err, ok) = t.cli("rvsip", &["capture", "dpdk9", "rx", "-c", "1", "-w", &front.display().to_string()]);
    assert!(!ok && err.contains("dpdk9"), "{err}");
    assert_eq!(std::fs::metadata(&front).expect("front.pcapng").len(), before, "nor truncates the file it names");

    let fields = |file: &std::path::Path| {
        let out = std::process::Command::new("tshark")
            .args([
                "-r",
                &file.display().to_string(),
                "-T",
                "fields",
                "-e",
                "ip.src",
                "-e",
                "ip.dst",
                "-e",
                "tcp.srcport",
                "-e",
                "tcp.dstport",
                "-e",
                "frame.packet_flags_direction",
            ])
            .output()
            .expect("tshark");
        assert!(out.status.success(), "tshark reads {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    let f = fields(&front);
    assert_eq!(f.len(), 40, "40 frames in the file");
    assert!(
        f.iter().any(|x| x[0] == rvs_e2e::CLIENT4 && x[1] == VIP4 && x[3] == "80"),
        "client -> VIP:80 packets: {f:?}"
    );
    assert!(
        f.iter().any(|x| x[0] == VIP4 && x[1] == rvs_e2e::CLIENT4 && x[2] == "80"),
        "VIP:80 -> client packets: {f:?}"
    );
    assert!(f.iter().all(|x| x[2] == "80" || x[3] == "80"), "the filter held");
    // DPDK's pcapng writer records each frame's direction (1 in, 2 out).
    let dir = |x: &[String]| u32::from_str_radix(x[4].trim_start_matches("0x"), 16).ok();
    assert!(f.iter().any(|x| dir(x) == Some(1)) && f.iter().any(|x| dir(x) == Some(2)), "both directions: {f:?}");
    let b = fields(&back);
    assert_eq!(b.len(), 10);
    assert!(b.iter().all(|x| dir(x) == Some(1)), "received frames only: {b:?}");
    assert!(
        b.iter().all(|x| x[0] == rvs_e2e::rs4(1) && x[1] == rvs_e2e::LIP4 && x[2] == "8080"),
        "server -> LIP packets only: {b:?}"
    );
}

/// An `rvsip capture` interrupted (SIGINT, as Ctrl-C) ends its capture at once: the file
/// holds what was captured and reads in tshark, and the next capture need not wait for
/// the first one's deadline (before, it was refused with `a capture is running already`
/// until then).
#[test]
fn an_interrupted_capture_ends_and_frees_the_slot() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    let first = t.dir.join("first.pcapng");
    let child = std::process::Command::new(rvs_e2e::workspace_bin("rvsip"))
        .arg("--socket")
        .arg(t.socket())
        .args([
            "capture",
            "dpdk0",
            "-c",
            "100000",
            "-t",
            "600",
            "-w",
            &first.display().to_string(),
            "tcp",
            "port",
            "80",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rvsip capture");
    let rvsip = testnet::ChildGuard::new(child);
    let started = |t: &Topology| t.rvsd_log().contains("capture started");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !started(&t) {
        assert!(std::time::Instant::now() < deadline, "no capture started: {}", t.rvsd_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = t.client.name().to_string();
    let curl = std::process::Command::new("ip")
        .args(["netns", "exec", &client, "curl", "-sS", "--max-time", "5", &format!("http://{VIP4}/")])
        .output()
        .expect("curl");
    assert!(curl.status.success(), "curl: {}", String::from_utf8_lossy(&curl.stderr));
    let refused = t.dir.join("refused.pcapng");
    let (_, err, ok) =
        t.cli("rvsip", &["capture", "dpdk0", "-c", "1", "-t", "1", "-w", &refused.display().to_string()]);
    assert!(!ok && err.contains("a capture is running already"), "one capture at a time: {err}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(rvsip.pid() as i32), nix::sys::signal::Signal::SIGINT)
        .expect("SIGINT");
    drop(rvsip);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !t.rvsd_log().contains("capture ended") {
        assert!(std::time::Instant::now() < deadline, "the capture runs on without its rvsip: {}", t.rvsd_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(t.rvsd_log().contains("capture: its rvsip went away"), "{}", t.rvsd_log());
    let frames = pcapng_frames(&first);
    assert!(!frames.is_empty(), "the request's frames are in the file");
    let second = t.dir.join("second.pcapng");
    let (out, err, ok) =
        t.cli("rvsip", &["capture", "dpdk0", "-c", "1", "-t", "2", "-w", &second.display().to_string()]);
    assert!(ok, "the next capture runs at once: {out} {err}");
}

/// The frames of a pcapng file rvsd wrote, read through tshark (converted to classic
/// pcap: tshark must be able to read the file).
fn pcapng_frames(file: &std::path::Path) -> Vec<Vec<u8>> {
    let classic = file.with_extension("pcap");
    let out = std::process::Command::new("tshark")
        .args(["-r", &file.display().to_string(), "-F", "pcap", "-w", &classic.display().to_string()])
        .output()
        .expect("tshark");
    assert!(out.status.success(), "tshark reads {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    rvs_e2e::pcap::read_frames(&classic).expect("frames")
}

/// Filters only libpcap understands, on real traffic: rvsd's capture of dpdk0 (both
/// directions) holds exactly the frames tcpdump, with the same filter, sees on the
/// client's end of the same wire; a bad expression is refused with libpcap's message.
#[test]
fn capture_filters_are_tcpdumps_whole_language() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    t.start_rvsd().expect("rvsd starts");
    assert!(
        t.rvsd_log().contains("pdump: dpdk-dumpcap cannot attach: --no-huge shares no memory"),
        "rvsd says why dpdk-dumpcap cannot attach: {}",
        t.rvsd_log()
    );

    let bad = t.dir.join("bad.pcapng");
    let (out, err, ok) =
        t.cli("rvsip", &["capture", "dpdk0", "-c", "1", "-w", &bad.display().to_string(), "tcp", "port", "eighty"]);
    assert!(!ok, "a bad filter is refused: {out}");
    assert!(err.contains("libpcap") && err.contains("eighty"), "libpcap's message reaches rvsip: {err}");

    let vip6 = format!("http://[{}]/", rvs_e2e::VIP6);
    let vip4 = format!("http://{VIP4}/");
    // (filter, what every captured frame must be, at least how many)
    type Check = fn(&[u8]) -> bool;
    let cases: [(&str, Check, usize); 3] = [
        (
            "tcp[tcpflags] & tcp-syn != 0 and dst port 80",
            // IPv4, TCP, SYN without ACK, to port 80 (IPv6 SYNs may match too).
            |f| {
                (f[12..14] == [0x08, 0x00] && f[23] == 6 && f[14 + 20 + 13] & 0x12 == 0x02 && f[36..38] == [0, 80])
                    || (f[12..14] == [0x86, 0xdd] && f[20] == 6 && f[54 + 13] & 0x12 == 0x02 && f[56..58] == [0, 80])
            },
            3,
        ),
        // `vlan` last: libpcap moves every offset after it by 4 bytes.
        ("(ip and not icmp) or vlan", |f| f[12..14] == [0x08, 0x00] && f[23] != 1, 3 * 5),
        ("ip6 and tcp", |f| f[12..14] == [0x86, 0xdd] && f[20] == 6, 3 * 5),
    ];
    for (i, (filter, each, at_least)) in cases.iter().enumerate() {
        let words: Vec<&str> = filter.split_whitespace().collect();
        let wire = t.capture_in(&t.client, "eth0", filter).expect("tcpdump in the client ns");
        let file = t.dir.join(format!("libpcap{i}.pcapng"));
        let mut args = vec!["capture", "dpdk0", "both", "-c", "100000", "-t", "8", "-w"];
        let file_s = file.display().to_string();
        args.push(&file_s);
        args.extend(&words);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let cli = rvs_e2e::workspace_bin("rvsip");
        let sock = t.socket();
        let capture = std::thread::spawn(move || {
            std::process::Command::new(cli).arg("--socket").arg(sock).args(&args).output().expect("rvsip capture")
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while t.rvsd_log().matches("capture started").count() <= i {
            assert!(std::time::Instant::now() < deadline, "capture {i} did not start: {}", t.rvsd_log());
            std::thread::sleep(Duration::from_millis(50));
        }
        // Traffic of every kind: HTTP over IPv4 and IPv6, pings of both families.
        let (_, ok) =
            t.curl_many(&[vip4.clone(), vip4.clone(), vip4.clone(), vip6.clone(), vip6.clone(), vip6.clone()], 5);
        assert!(ok, "curl through the VIPs");
        assert!(t.ping(VIP4, 2), "ping {VIP4}");
        assert!(t.ping(rvs_e2e::VIP6, 2), "ping {}", rvs_e2e::VIP6);
        let out = capture.join().expect("capture thread");
        assert!(out.status.success(), "rvsip capture {filter}: {}", String::from_utf8_lossy(&out.stderr));
        let mut theirs = wire.finish().expect("tcpdump's frames");
        let mut ours = pcapng_frames(&file);
        assert!(ours.len() >= *at_least, "{filter}: {} frames, expected at least {at_least}", ours.len());
        for f in &ours {
            assert!(each(f), "{filter}: a frame that does not match it: {f:02x?}");
        }
        ours.sort();
        theirs.sort();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{filter}: rvsd captured {} frames, tcpdump on the wire {}",
            ours.len(),
            theirs.len()
        );
        assert!(ours == theirs, "{filter}: the same frames as tcpdump's");
    }
}

/// Removes a DPDK file prefix's hugepage files from /dev/hugepages on drop.
struct HugepageFiles(String);

impl Drop for HugepageFiles {
    fn drop(&mut self) {
        let map = format!("{}map_", self.0);
        for e in std::fs::read_dir("/dev/hugepages").into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&map) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Free 2 MiB hugepages on this machine (`/proc/meminfo`).
fn free_hugepages() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines().find_map(|l| l.strip_prefix("HugePages_Free:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// rvsd on hugepages registers librte_pdump's server: `dpdk-dumpcap --file-prefix` of
/// rvsd attaches as a secondary process and writes the port's traffic to a file
/// tshark reads. Needs free hugepages (scripts/setup.sh reserves them); without, it
/// says so and passes.
#[test]
fn dpdk_dumpcap_attaches_to_rvsd_on_hugepages() {
    let _g = serial();
    if free_hugepages() < 256 {
        eprintln!("SKIPPED: fewer than 256 free 2 MiB hugepages (run scripts/setup.sh)");
        return;
    }
    let t = Topology::build(Spec::default()).expect("topology");
    let prefix = t.config["eal"]["file_prefix"].as_str().expect("file prefix").to_string();
    // After rvsd (dropped with the topology, before this): its hugepage files, which a
    // killed DPDK process leaves behind (they must stay linked while it runs, for
    // secondaries to map them).
    let _pages = HugepageFiles(prefix.clone());
    let mut t = t;
    t.config["eal"]["args"] = toml::Value::Array(vec!["--log-level=lib.eal:warning".into()]);
    t.start_rvsd().expect("rvsd starts on hugepages");
    assert!(t.rvsd_log().contains("pdump: dpdk-dumpcap can attach"), "{}", t.rvsd_log());

    let client = t.client.name().to_string();
    let traffic = std::thread::spawn(move || {
        let urls: Vec<String> = (0..400).map(|_| format!("http://{VIP4}/")).collect();
        std::thread::sleep(Duration::from_secs(2));
        std::process::Command::new("ip")
            .args(["netns", "exec", &client, "curl", "-sS", "--max-time", "30"])
            .args(&urls)
            .output()
    });
    let file = t.dir.join("dumpcap.pcapng");
    let out = std::process::Command::new("timeout")
        .args(["60", "ip", "netns", "exec", t.lb.name(), "dpdk-dumpcap", "-q"])
        .arg(format!("--file-prefix={prefix}"))
        .args(["-i", "0", "-c", "30", "-a", "duration:40", "-f", "tcp port 80", "-w"])
        .arg(&file)
        .output()
        .expect("dpdk-dumpcap");
    assert!(traffic.join().expect("traffic").expect("curl").status.success(), "traffic unaffected by dumpcap");
    assert!(
        out.status.success(),
        "dpdk-dumpcap: {}{}\nrvsd:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        t.rvsd_log()
    );
    let tshark = std::process::Command::new("tshark")
        .args(["-r", &file.display().to_string(), "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport"])
        .output()
        .expect("tshark");
    assert!(tshark.status.success(), "tshark reads dumpcap's file: {}", String::from_utf8_lossy(&tshark.stderr));
    let lines: Vec<String> = String::from_utf8_lossy(&tshark.stdout).lines().map(String::from).collect();
    // dumpcap stops after the burst that reaches its count.
    assert!((30..=30 + 32).contains(&lines.len()), "30 packets or a burst more: {lines:?}");
    assert!(lines.iter().all(|l| l.split('\t').any(|p| p == "80")), "dumpcap's filter held: {lines:?}");
    t.stop_rvsd().expect("rvsd stops");
}
