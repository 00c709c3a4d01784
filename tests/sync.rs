//! Issue 15's connection sync, end to end: two nodes (rvsd + rvs-agent each, see
//! `rvs_e2e::pair`) with `[sync]` on, the VIP and the shared LIP managed by VRRP.
//!
//! * `master_killed_mid_download_and_idle_connections_survive`: 1,000 idle keep-alive
//!   connections are opened through node a (master), and a 100 MB download starts; both
//!   of a's processes are killed (`kill -9`); b takes the VIP and the LIP, and the
//!   download completes bit-exact through b, and each idle connection completes one more
//!   request (at least 99.9 %). Then a comes back empty: its hello makes b announce its
//!   whole table, a's agent preempts, and the idle connections answer once more
//!   through a. Timings are printed (`-- --nocapture`).
//! * `forged_replayed_and_flooding_sync_messages_are_refused`: from a real server's
//!   namespace (the management LAN): garbage, a wrong sync id, a wrong key, a replay of a
//!   captured message, and a flood of validly signed records beyond the worker's share:
//!   each refused and counted, the table holding no more synced connections than its
//!   share.
//! * `replayed_hellos_neither_walk_the_tables_nor_hold_off_a_restarting_peer`: 3,000
//!   senders' replayed hellos, up to 2,000 a second, from the management LAN while b's
//!   rvsd restarts: b still learns a's table, a walks it once (for b), and keeps its
//!   sender id.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rvs_e2e::pair::{wait_for, Node, Pair};
use rvs_e2e::{rs4, serial, VIP4};
use testnet::NetNs;

const KEY: &str = "rvs-e2e-sync-key-0123456789";
const SYNC_ID: u8 = 7;
/// The LIP both nodes' services use; VRRP moves it with the VIP.
const LIP: &str = "198.19.0.30";
const PORT: u16 = 8848;
/// How often a backup role says hello (rvsd's `sync::HELLO_MS`).
const HELLO: Duration = Duration::from_secs(2);

/// rvsd's `[sync]` for `me`, announcing to and receiving from `peer`.
fn sync_table(me: &str, peer: &str, max_synced: u32) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("syncid".into(), i64::from(SYNC_ID).into());
    t.insert("listen".into(), format!("{me}:{PORT}").into());
    t.insert("peers".into(), toml::Value::Array(vec![format!("{peer}:{PORT}").into()]));
    t.insert("key".into(), KEY.into());
    t.insert("max_synced".into(), i64::from(max_synced).into());
    toml::Value::Table(t)
}

/// The keepalived.conf: VRRPv3 every 100 ms; the VIP on the client side and the shared
/// LIP on the server side in one instance; one FullNAT service using that LIP, with
/// `extra` lines in its block.
fn agent_conf_with(prio: u8, real_servers: usize, extra: &str) -> String {
    let mut rs = String::new();
    for i in 1..=real_servers {
        rs += &format!("    real_server {} 8080 {{\n        weight 1\n    }}\n", rs4(i));
    }
    format!(
        "global_defs {{\n    router_id rvs-e2e-sync\n}}\n\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface dpdk0.kni\n    virtual_router_id 52\n    priority {prio}\n    \
         advert_int 0.1\n    version 3\n    virtual_ipaddress {{\n        {VIP4}\n        {LIP}/24 dev dpdk1\n    }}\n}}\n\n\
         local_address_group laddr_sync {{\n    {LIP} dpdk1\n}}\n\n\
         virtual_server {VIP4} 80 {{\n    lb_algo rr\n    lb_kind FNAT\n    protocol TCP\n    laddr_group_name laddr_sync\n{extra}{rs}}}\n"
    )
}

fn stats(n: &Node) -> serde_json::Value {
    n.rvsd_stats().expect("rvsd stats")
}

fn counter(v: &serde_json::Value, group: &str, name: &str) -> u64 {
    v[group][name].as_u64().unwrap_or(0)
}

/// Both nodes with sync on, a master, b backup, both agents running.
fn two_nodes(max_synced: u32, http11: bool) -> Pair {
    two_nodes_with(max_synced, http11, "", true)
}

/// [`two_nodes`] with `extra` lines in the virtual_server block, and b's backup role
/// (installing a's connections) running from the start or not.
fn two_nodes_with(max_synced: u32, http11: bool, extra: &str, b_backup: bool) -> Pair {
    two_nodes_tuned(max_synced, http11, extra, b_backup, |_| {})
}

/// [`two_nodes_with`], with `tune` run on each node once its `[sync]` is in place.
fn two_nodes_tuned(max_synced: u32, http11: bool, extra: &str, b_backup: bool, tune: impl Fn(&mut Node)) -> Pair {
    let mgmt = |n: &str| if n == "a" { "198.19.0.101" } else { "198.19.0.103" };
    let mut p = Pair::start_with(3, http11, |n| {
        let peer = if n.name == "a" { mgmt("b") } else { mgmt("a") };
        let mut sync = sync_table(mgmt(n.name), peer, max_synced);
        if n.name == "b" {
            sync.as_table_mut().expect("a table").insert("backup".into(), b_backup.into());
        }
        n.config.insert("sync".into(), sync);
        tune(n);
    })
    .expect("two-node topology with sync");
    p.a.start_agent(&agent_conf_with(150, 3, extra)).expect("agent a");
    wait_for(Duration::from_secs(10), || p.a.holds(VIP4) && p.a.holds(LIP)).expect("a becomes master with VIP and LIP");
    p.b.start_agent(&agent_conf_with(100, 3, extra)).expect("agent b");
    wait_for(Duration::from_secs(10), || p.b.vrrp_state().as_deref() == Some("Backup")).expect("b is backup");
    assert!(!p.b.holds(VIP4) && !p.b.holds(LIP), "the backup holds neither the VIP nor the LIP");
    wait_for(Duration::from_secs(10), || p.b.services().is_ok_and(|s| !s.is_empty()))
        .expect("the backup has the service loaded (so it can install synced connections)");
    p
}

/// A client in the client namespace holding `n` keep-alive connections to the VIP: each
/// makes one request, and one more for every line on stdin; after each round the
/// script prints `round OK` (how many were answered).
const IDLE_CLIENT: &str = r#"
import socket, sys
vip, n = sys.argv[1], int(sys.argv[2])
def request(s):
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                return False
            body += chunk
        return head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    except OSError:
        return False
socks = []
for i in range(n):
    s = socket.create_connection((vip, 80), timeout=10)
    socks.append(s)
print("round", sum(request(s) for s in socks), flush=True)
for line in sys.stdin:
    print("round", sum(request(s) for s in socks), flush=True)
"#;

#[test]
fn master_killed_mid_download_and_idle_connections_survive() {
    let _g = serial();
    let mut p = two_nodes(0, true);
    let want = p.serve_big_file().expect("100 MB on every real server");

    // 1,000 idle keep-alive connections through a.
    let mut idle = Command::new("ip")
        .args(["netns", "exec", p.client.name(), "python3", "-c", IDLE_CLIENT, VIP4, "1000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("idle client");
    let mut lines = BufReader::new(idle.stdout.take().expect("stdout")).lines();
    let mut round = move |idle: &mut std::process::Child, go: bool| -> usize {
        if go {
            idle.stdin.as_mut().expect("stdin").write_all(b"go\n").expect("go");
        }
        let line = lines.next().expect("a round's line").expect("read");
        line.strip_prefix("round ").and_then(|n| n.parse().ok()).expect("round OK")
    };
    assert_eq!(round(&mut idle, false), 1000, "1,000 keep-alive connections answered through a");

    // The download, slowed so the failover falls in its middle.
    let dl = Command::new("ip")
        .args(["netns", "exec", p.client.name(), "sh", "-c"])
        .arg(format!("curl -sS --max-time 120 --limit-rate 12M http://{VIP4}/big.bin | sha256sum"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("download");
    std::thread::sleep(Duration::from_secs(3));
    let installed = || counter(&stats(&p.b), "events", "sync_installed");
    let synced = wait_for(Duration::from_secs(10), || installed() >= 1001);
    assert!(
        synced.is_some(),
        "b installed the 1,000 idle connections and the download's before the failure: {}",
        installed()
    );

    // Node a dies: both processes, no goodbye.
    let t0 = Instant::now();
    p.a.kill_agent();
    p.a.kill_rvsd();
    let moved = wait_for(Duration::from_secs(5), || p.b.holds(VIP4) && p.b.holds(LIP)).expect("b takes VIP and LIP");
    eprintln!("b holds the VIP and the LIP {moved:?} after a was killed");

    let out = dl.wait_with_output().expect("download ends");
    let got = String::from_utf8_lossy(&out.stdout);
    eprintln!("download finished {:?} after the failure", t0.elapsed());
    assert_eq!(got.split_whitespace().next(), Some(want.as_str()), "100 MB bit-exact across the failover");

    let n = round(&mut idle, true);
    eprintln!("idle keep-alive connections answered after the failover: {n} of 1000");
    assert!(n >= 999, "at least 99.9 % of the idle connections survive: {n}");
    let s = stats(&p.b);
    assert_eq!(counter(&s, "sync", "sync_rejected_tag"), 0, "{}", s["sync"]);
    assert!(counter(&s, "sync", "sync_msgs_received") > 0, "{}", s["sync"]);

    // Failback: a comes back empty; once its agent has loaded the services, its hello
    // makes b announce its whole table; then a's agent (the higher priority) takes the
    // addresses back, after a preempt_delay as an operator would set.
    p.a.start_rvsd().expect("a's rvsd again");
    let t1 = Instant::now();
    let conf = agent_conf_with(150, 3, "").replace("    priority 150\n", "    priority 150\n    preempt_delay 3\n");
    p.a.start_agent(&conf).expect("agent a again");
    let learned = wait_for(Duration::from_secs(10), || counter(&stats(&p.a), "events", "sync_installed") >= 1000)
        .unwrap_or_else(|| panic!("a learns b's table: {}", stats(&p.a)["events"]));
    eprintln!("a's new rvsd installed b's connections {learned:?} after the agent started");
    assert!(!p.a.holds(VIP4), "a learned b's table before taking the VIP back");
    // (The sync thread publishes its counters every 100 ms: a may have learned first.)
    wait_for(Duration::from_secs(2), || counter(&stats(&p.b), "sync", "sync_resyncs") >= 2)
        .expect("b walked its table for a's new rvsd");
    wait_for(Duration::from_secs(10), || p.a.holds(VIP4) && p.a.holds(LIP) && !p.b.holds(VIP4))
        .expect("a preempts: VIP and LIP back on a");
    eprintln!("a holds the VIP again {:?} after its rvsd restarted", t1.elapsed());
    let n = round(&mut idle, true);
    eprintln!("idle keep-alive connections answered after the failback: {n} of 1000");
    assert!(n >= 999, "at least 99.9 % of the idle connections survive the failback too: {n}");
    drop(idle.stdin.take());
    let _ = idle.wait();
}

/// Sends UDP datagrams from real server 1's namespace (the management LAN) to `to`, one
/// a millisecond (a bounded flood: the receiving socket's buffer is not the test).
fn send_datagrams(p: &Pair, to: &str, datagrams: &[Vec<u8>]) {
    let mut c = sender(p, to, datagrams, 1.0, 0);
    assert!(c.wait().expect("sender ends").success());
}

/// Starts sending `datagrams` from real server 1's namespace to `to`'s sync port, one
/// every `gap_ms`: once each, or (`for_s` > 0) over and over for `for_s` seconds.
fn sender(p: &Pair, to: &str, datagrams: &[Vec<u8>], gap_ms: f64, for_s: u32) -> std::process::Child {
    let hex: Vec<String> = datagrams.iter().map(|d| d.iter().map(|b| format!("{b:02x}")).collect()).collect();
    let script = format!(
        "import socket, sys, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         msgs = [bytes.fromhex(l.strip()) for l in sys.stdin if l.strip()]\n\
         end = time.time() + {for_s}\n\
         while True:\n\
         \x20   for m in msgs:\n\
         \x20       s.sendto(m, ('{to}', {PORT}))\n\
         \x20       time.sleep({gap_ms} / 1000)\n\
         \x20   if time.time() >= end: break\n"
    );
    let mut c = Command::new("ip")
        .args(["netns", "exec", p.rs[0].name(), "python3", "-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sender");
    c.stdin.take().expect("stdin").write_all((hex.join("\n") + "\n").as_bytes()).expect("write");
    c
}

/// A sync message as a peer holding `key` would make it, echoing the sender id `echo`.
fn message(key: &[u8], sync_id: u8, sender: u32, seq: u32, echo: u32, recs: &[wire::sync::RecordRepr]) -> Vec<u8> {
    let h = wire::sync::HeaderRepr { sync_id, sender, sequence: seq, workers: 1, hello: false, walk: false, echo };
    sealed(key, &h, recs)
}

/// A hello of `sender` echoing `echo`, as a peer's backup role says it: what a capture
/// of an earlier rvsd process's hello replays.
fn hello(sender: u32, echo: u32) -> Vec<u8> {
    let h =
        wire::sync::HeaderRepr { sync_id: SYNC_ID, sender, sequence: 1, workers: 1, hello: true, walk: false, echo };
    sealed(KEY.as_bytes(), &h, &[])
}

/// The message of header `h` and records `recs`, signed with `key`.
fn sealed(key: &[u8], h: &wire::sync::HeaderRepr, recs: &[wire::sync::RecordRepr]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    use wire::sync::{HEADER_LEN, RECORD_LEN, TAG_LEN};
    let mut m = vec![0u8; HEADER_LEN + recs.len() * RECORD_LEN + TAG_LEN];
    h.emit(recs.len(), &mut m).unwrap();
    for (i, r) in recs.iter().enumerate() {
        r.emit(&mut m[HEADER_LEN + i * RECORD_LEN..]).unwrap();
    }
    let body = m.len() - TAG_LEN;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(&m[..body]);
    let tag = mac.finalize().into_bytes();
    m[body..].copy_from_slice(&tag[..TAG_LEN]);
    m
}

/// The sender id of `from`'s next hello, read off the wire in `ns` (where its peer is).
fn hello_sender(ns: &NetNs, from: &str) -> u32 {
    let script = format!(
        "import socket, struct, sys, time\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))\n\
         s.settimeout(1)\n\
         end = time.time() + 8\n\
         while time.time() < end:\n\
         \x20   try:\n\
         \x20       f = s.recv(65535)\n\
         \x20   except socket.timeout:\n\
         \x20       continue\n\
         \x20   if f[12:14] != b'\\x08\\x00': continue\n\
         \x20   ip = f[14:]\n\
         \x20   u = ip[(ip[0] & 15) * 4:]\n\
         \x20   if ip[9] != 17 or socket.inet_ntoa(ip[12:16]) != '{from}' or struct.unpack('!H', u[2:4])[0] != {PORT}: continue\n\
         \x20   m = u[8:]\n\
         \x20   if len(m) >= 20 and m[3] & 1:\n\
         \x20       print(m[4:8].hex())\n\
         \x20       sys.exit(0)\n\
         sys.exit(1)\n"
    );
    let out = ns.exec(&["python3", "-c", &script]);
    assert!(out.status.success(), "a hello of {from} within 8 s: {}", String::from_utf8_lossy(&out.stderr));
    u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).expect("a sender id")
}

fn record(cport: u16, lport: u16) -> wire::sync::RecordRepr {
    wire::sync::RecordRepr {
        proto: 6,
        fwd: 0,
        state: 1,
        toa_done: true,
        synack_seen: true,
        proven: true,
        timeout_ms: 600_000,
        client: ("198.18.0.2".parse().unwrap(), cport),
        virt: (VIP4.parse().unwrap(), 80),
        local: (LIP.parse().unwrap(), lport),
        real: (rs4(1).parse().unwrap(), 8080),
        synproxy: None,
        proxy: None,
    }
}

#[test]
fn forged_replayed_and_flooding_sync_messages_are_refused() {
    let _g = serial();
    const SHARE: u32 = 2000;
    let p = two_nodes(SHARE, false);
    let b = "198.19.0.103";
    let sync = |what: &str| counter(&stats(&p.b), "sync", what);
    let rec = [record(40000, 2000)];

    // (a says hello every 2 s: messages without records; a has no connections yet.)
    let records0 = sync("sync_records_received");
    send_datagrams(&p, b, &[vec![0u8; 7], vec![1u8; 300]]);
    send_datagrams(&p, b, &[message(KEY.as_bytes(), SYNC_ID + 1, 1, 1, 0, &rec)]);
    send_datagrams(&p, b, &[message(b"not-the-cluster-key-at-all", SYNC_ID, 1, 1, 0, &rec)]);
    // Well signed, by a sender b never heard, echoing no id of b's or one b never had: a
    // capture of an earlier rvsd process's messages looks like this. Nothing installed.
    let captured =
        [message(KEY.as_bytes(), SYNC_ID, 0x5151, 1, 0, &rec), message(KEY.as_bytes(), SYNC_ID, 0x5151, 2, 0x77, &rec)];
    send_datagrams(&p, b, &captured);
    // The same sender, live: it echoes the id of b's last hello (read off the wire at
    // a's end), as an answer to it would. Taken once; its replay is refused.
    let id = hello_sender(&p.a.ns, b);
    let good = message(KEY.as_bytes(), SYNC_ID, 0x5151, 3, id, &rec);
    send_datagrams(&p, b, &[good.clone(), good]);
    let counted = wait_for(Duration::from_secs(3), || {
        sync("sync_rejected_malformed") >= 2
            && sync("sync_rejected_syncid") >= 1
            && sync("sync_rejected_tag") >= 1
            && sync("sync_rejected_unproven") >= 2
            && sync("sync_rejected_replay") >= 1
    });
    assert!(counted.is_some(), "every forgery refused and counted: {}", stats(&p.b)["sync"]);
    assert_eq!(sync("sync_records_received"), records0 + 1, "only the live sender's message was taken, once");

    // A key holder floods: 5,000 distinct connections, more than the worker's share.
    let flood: Vec<Vec<u8>> = (0..5000u32)
        .collect::<Vec<_>>()
        .chunks(wire::sync::MAX_RECORDS)
        .enumerate()
        .map(|(i, c)| {
            let recs: Vec<_> =
                c.iter().map(|&j| record(1024 + (j % 60000) as u16, 3000 + (j % 50000) as u16)).collect();
            message(KEY.as_bytes(), SYNC_ID, 0x5151, 4 + i as u32, 0, &recs)
        })
        .collect();
    send_datagrams(&p, b, &flood);
    let full = wait_for(Duration::from_secs(5), || counter(&stats(&p.b), "events", "sync_refused_full") > 0);
    let s = stats(&p.b);
    assert!(full.is_some(), "records beyond the share are refused and counted: {}", s["events"]);
    let live = s["conns"].as_u64().unwrap_or(0);
    assert!(live <= u64::from(SHARE), "the backup's table holds at most its share of synced connections: {live}");
    // And the box still serves: a is master, HTTP through the VIP works.
    let (bodies, ok) = p.curl(30, 10);
    assert!(ok && p.tally(&bodies).iter().sum::<usize>() == 30, "service unaffected: {bodies}");
}

/// Captured hellos replayed from the management LAN, 3,000 senders a never heard, one
/// every half millisecond, while b's rvsd restarts empty: b's new process still proves a
/// and learns its table (the answer to its hello has a slot of its own), a walks its
/// table for b only, not for each replayed hello (a walk is owed to a sender proven or
/// heard from a peer's own address), and a keeps its sender id (forgetting thousands of
/// unproven senders forgets no live peer).
#[test]
fn replayed_hellos_neither_walk_the_tables_nor_hold_off_a_restarting_peer() {
    let _g = serial();
    let mut p = two_nodes(0, false);
    let a = "198.19.0.101";
    let (bodies, ok) = p.curl(20, 10);
    assert!(ok && p.tally(&bodies).iter().sum::<usize>() == 20, "20 connections through a: {bodies}");
    wait_for(Duration::from_secs(6), || counter(&stats(&p.b), "events", "sync_installed") >= 20)
        .unwrap_or_else(|| panic!("b learns a's 20 connections: {}", stats(&p.b)["events"]));
    let a_id = hello_sender(&p.b.ns, a);
    let sync = |n: &Node, what: &str| counter(&stats(n), "sync", what);
    let (walks0, heard0) = (sync(&p.a, "sync_resyncs"), sync(&p.a, "sync_msgs_received"));

    let captures: Vec<Vec<u8>> = (0..3000u32).map(|i| hello(0x5e00_0000 + i, 0x77)).collect();
    let flood = testnet::ChildGuard::new(sender(&p, a, &captures, 0.5, 25));
    std::thread::sleep(Duration::from_secs(1));
    p.b.kill_agent();
    p.b.kill_rvsd();
    p.b.start_rvsd().expect("b's rvsd again");
    let t0 = Instant::now();
    p.b.start_agent(&agent_conf_with(100, 3, "")).expect("agent b again");
    let learned = wait_for(Duration::from_secs(10), || counter(&stats(&p.b), "events", "sync_installed") >= 20)
        .unwrap_or_else(|| {
            panic!("b's new rvsd learns a's table under the flood: b {} a {}", stats(&p.b)["sync"], stats(&p.a)["sync"])
        });
    eprintln!(
        "b's new rvsd installed a's 20 connections {:.2} s after its agent started ({:.2} s after it was ready), a flooded",
        t0.elapsed().as_secs_f64(),
        learned.as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(4));
    let heard = sync(&p.a, "sync_msgs_received") - heard0;
    assert!(heard >= 3000, "a read and took the replayed hellos (each a sender it never heard): {heard}");
    let walks = sync(&p.a, "sync_resyncs") - walks0;
    assert!(walks <= 2, "a walked its table for b's new rvsd only, not for {heard} replayed hellos: {walks}");
    assert_eq!(hello_sender(&p.b.ns, a), a_id, "a kept its sender id");
    drop(flood);
    let (bodies, ok) = p.curl(20, 10);
    assert!(ok && p.tally(&bodies).iter().sum::<usize>() == 20, "a still serves: {bodies}");
}

/// b's messages come from an address a's `peers` does not name (a lists b's second
/// address, b listens on all of them and sends from its first), as a multicast group's
/// do: a walks its table for a hello of b's only once b has proved itself to a. b's
/// backup role restarts (a new id) right after a third key holder proved itself to b,
/// so b's first hello echoes that one, not a: a answers it (echoing b's new id), and b
/// says hello again at once, echoing a, which a trusts and walks its table for. So b
/// learns a's table within a round trip, not a hello interval (2 s) later; and again
/// when that hello is lost once (b says it again 250 ms later).
#[test]
fn a_peer_heard_from_another_address_is_walked_for_once_proven() {
    let _g = serial();
    let p = two_nodes_tuned(0, false, "", true, |n| {
        let sync = n.config["sync"].as_table_mut().expect("[sync]");
        if n.name == "a" {
            sync.insert("peers".into(), toml::Value::Array(vec![format!("198.19.0.104:{PORT}").into()]));
        } else {
            n.ns.ip(&["addr", "add", "198.19.0.104/24", "dev", "mgmt"]);
            sync.insert("listen".into(), format!("0.0.0.0:{PORT}").into());
        }
    });
    let b = "198.19.0.103";
    let received = || counter(&stats(&p.b), "sync", "sync_records_received");
    let (bodies, ok) = p.curl(20, 10);
    assert!(ok && p.tally(&bodies).iter().sum::<usize>() == 20, "20 connections through a: {bodies}");
    wait_for(Duration::from_secs(6), || received() >= 20).expect("b learns a's 20 connections");

    // A third key holder proves itself to b (it echoes b's id, read off b's hello; b
    // says hello to it, and a's answer to that hello is the last b heard), then speaks
    // again: the last proven sender b heard. Then b's backup role restarts: its first
    // hello echoes that third sender, so a owes b its walk until b's hello echoing a
    // (said at once when a's answer proves a) arrives. `drop_echo`: a's namespace drops
    // that hello, once (an nft quota of one message), and b says it again.
    let restart = |seq: u32, drop_echo: bool| -> Duration {
        let id = hello_sender(&p.a.ns, b);
        send_datagrams(&p, b, &[message(KEY.as_bytes(), SYNC_ID, 0x5252, seq, id, &[])]);
        let before = received();
        let (_, err, ok) = p.b.rvsadm(&["--stop-daemon", "backup"]);
        assert!(ok, "{err}");
        // (Sent with b's backup role stopped: no hello of b's, so no answer of a's,
        // comes between it and the restart.)
        send_datagrams(&p, b, &[message(KEY.as_bytes(), SYNC_ID, 0x5252, seq + 1, 0, &[])]);
        if drop_echo {
            // A hello (flags bit 0, byte 3) echoing (bytes 16..20) neither nobody nor
            // the third sender: b's hello to a. One message of 64 bytes.
            let rule = format!(
                "add table inet rvs_echo; add chain inet rvs_echo c {{ type filter hook input priority 0; }}; \
                 add rule inet rvs_echo c udp dport {PORT} @th,88,8 & 0x01 == 0x01 @th,192,32 != 0 \
                 @th,192,32 != 0x5252 quota until 100 bytes counter drop"
            );
            let out = p.a.ns.exec(&["nft", &rule]);
            assert!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
        }
        let (_, err, ok) = p.b.rvsadm(&["--start-daemon", "backup"]);
        assert!(ok, "{err}");
        // (Records of connections b holds already update them: counted as received.)
        let learned = wait_for(Duration::from_secs(6), || received() >= before + 20)
            .unwrap_or_else(|| panic!("b learns a's table again: a {} b {}", stats(&p.a)["sync"], stats(&p.b)["sync"]));
        println!(
            "b's restarted backup role learned a's table {:.2} s after it started (its hello to a dropped: {drop_echo})",
            learned.as_secs_f64()
        );
        learned
    };
    let learned = restart(1, false);
    assert!(learned < HELLO, "within a round trip of b's first hello, not at its next: {learned:?}");

    // b's hello to a lost: said again 250 ms later, not left to b's next regular hello
    // (which, echoing a, would make a walk only then: 2 s). a's own backup role stops
    // first: its hellos (from an address b's `peers` names) would make a the last
    // sender b heard, and b's first hello would echo a (the one dropped, then).
    let (_, err, ok) = p.a.rvsadm(&["--stop-daemon", "backup"]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(100));
    let learned = restart(3, true);
    let dropped =
        String::from_utf8_lossy(&p.a.ns.exec(&["nft", "list", "table", "inet", "rvs_echo"]).stdout).to_string();
    assert!(dropped.contains("counter packets 1 "), "b's hello to a was dropped: {dropped}");
    assert!(learned < HELLO, "within a retry of the lost hello, not at b's next hello: {learned:?}");
}

#[test]
fn persistent_clients_keep_their_server_across_the_failover() {
    let _g = serial();
    let mut p = two_nodes_with(0, false, "    persistence_timeout 300\n", true);
    let (bodies, ok) = p.curl(50, 10);
    let before = p.tally(&bodies);
    assert!(ok && before.iter().sum::<usize>() == 50, "50 connections through a: {before:?}");
    let server =
        before.iter().position(|&n| n == 50).unwrap_or_else(|| panic!("one server for the client: {before:?}"));
    wait_for(Duration::from_secs(3), || counter(&stats(&p.b), "events", "sync_installed") >= 50)
        .expect("b installed a's connections (and so the client's template)");
    p.a.kill_agent();
    p.a.kill_rvsd();
    wait_for(Duration::from_secs(5), || p.b.holds(VIP4) && p.b.holds(LIP)).expect("b takes VIP and LIP");
    let (bodies, ok) = p.curl(50, 10);
    let after = p.tally(&bodies);
    eprintln!("persistent client: {before:?} through a, {after:?} through b");
    assert!(ok && after[server] == 50, "the client's next 50 connections meet rs{} through b: {after:?}", server + 1);
}

/// ipvsadm's sync daemon commands drive the roles at run time: b starts with its backup
/// role stopped (a's announcements are not read, and counted); `--start-daemon backup`
/// makes it a new sender whose hello has a walk its table, so b learns the connections
/// a already had, and again when a runs its master role alone (it still hears hellos);
/// `--stop-daemon master` on a stops its announcements; what disagrees with `[sync]` is
/// refused by name.
#[test]
fn sync_roles_follow_rvsadm_start_and_stop_daemon() {
    let _g = serial();
    let p = two_nodes_with(0, false, "", false);
    let (out, err, ok) = p.b.rvsadm(&["-L", "--daemon"]);
    assert!(ok, "{err}");
    assert_eq!(out, "master sync daemon (peers=198.19.0.101:8848, syncid=7, maxlen=1436)\n", "b: only its master role");

    let (bodies, ok) = p.curl(20, 10);
    assert!(ok && p.tally(&bodies).iter().sum::<usize>() == 20, "20 connections through a: {bodies}");
    let ignored = wait_for(Duration::from_secs(3), || counter(&stats(&p.b), "sync", "sync_not_backup") > 0);
    assert!(
        ignored.is_some(),
        "b does not read a's messages while its backup role is stopped: {}",
        stats(&p.b)["sync"]
    );
    assert_eq!(counter(&stats(&p.b), "events", "sync_installed"), 0, "nothing installed");

    let (_, err, ok) = p.b.rvsadm(&["--start-daemon", "backup", "--syncid", "9"]);
    assert!(!ok && err.contains("--syncid 9") && err.contains("syncid is 7"), "refused by name: {err}");
    let (out, err, ok) = p.b.rvsadm(&["--start-daemon", "backup", "--syncid", "7"]);
    assert!(ok && out.is_empty(), "{out}{err}");
    let learned = wait_for(Duration::from_secs(6), || counter(&stats(&p.b), "events", "sync_installed") >= 20);
    assert!(learned.is_some(), "b learns a's 20 connections once its backup role starts: {}", stats(&p.b)["events"]);
    println!("b's backup role started: a's table installed after {:.2} s", learned.unwrap().as_secs_f64());
    let (out, _, _) = p.b.rvsadm(&["-L", "--daemon"]);
    assert_eq!(out.lines().count(), 2, "both roles now: {out}");

    // a runs its master role alone, as rvs-agent runs a VRRP master's: it still hears a
    // hello, so b's backup role starting again (a new sender, as a box that restarts)
    // still walks its table for b.
    let (_, err, ok) = p.a.rvsadm(&["--stop-daemon", "backup"]);
    assert!(ok, "{err}");
    let walks = || counter(&stats(&p.a), "sync", "sync_resyncs");
    let before = walks();
    let (_, err, ok) = p.b.rvsadm(&["--stop-daemon", "backup"]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(100));
    let (_, err, ok) = p.b.rvsadm(&["--start-daemon", "backup"]);
    assert!(ok, "{err}");
    let walked = wait_for(Duration::from_secs(6), || walks() > before);
    assert!(walked.is_some(), "a, master alone, walks its table for b's new backup role: {}", stats(&p.a)["sync"]);

    let (_, err, ok) = p.a.rvsadm(&["--stop-daemon", "master"]);
    assert!(ok, "{err}");
    let queued = counter(&stats(&p.a), "events", "sync_queued");
    let (_, ok) = p.curl(10, 10);
    assert!(ok);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        counter(&stats(&p.a), "events", "sync_queued"),
        queued,
        "a announces nothing once its master role stops"
    );
}
