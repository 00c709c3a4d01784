//! DNS on the real servers and a DNS client: a real UDP service (dnsmasq) for the
//! forwarding modes' and the client-address tests.

use std::collections::BTreeMap;

use testnet::{dnsmasq_args, ChildGuard};

use crate::{rs4, Topology};

/// dnsmasq on every real server, answering `rs.test` with the server's own address, on
/// the server's address and on `also` (the VIP, under DR).
pub fn start_dnsmasq(t: &Topology, also: Option<&str>) -> Vec<ChildGuard> {
    (1..=t.rs.len())
        .map(|i| {
            let listen: Vec<String> = std::iter::once(rs4(i)).chain(also.map(String::from)).collect();
            let args = dnsmasq_args(&listen, 53, &format!("/rs.test/{}", rs4(i)));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            t.rs[i - 1].spawn(&args)
        })
        .collect()
}

/// `n` DNS queries to `vip:53`, each from a new socket (a new flow): the answers by
/// address, and how many failed (no answer, or an answer from another address than
/// the VIP).
pub fn dns_spread(t: &Topology, vip: &str, n: usize) -> (BTreeMap<String, usize>, usize) {
    const CLIENT: &str = r#"
import collections, socket, struct, sys
vip, n = sys.argv[1], int(sys.argv[2])
counts, fails = collections.Counter(), 0
for i in range(n):
    q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x02rs\x04test\x00" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    for attempt in range(3):
        try:
            s.sendto(q, (vip, 53))
            d, a = s.recvfrom(512)
            break
        except socket.timeout:
            d, a = None, None
    s.close()
    if d is None or a[0] != vip:
        fails += 1
        continue
    counts[socket.inet_ntoa(d[-4:])] += 1
for k, v in counts.items():
    print(k, v)
print("fails", fails)
"#;
    let script = t.dir.join("dns_client.py");
    std::fs::write(&script, CLIENT).expect("write the DNS client");
    let out = t.client_exec(&["python3", &script.display().to_string(), vip, &n.to_string()]);
    assert!(out.status.success(), "DNS client: {}", String::from_utf8_lossy(&out.stderr));
    let mut counts = BTreeMap::new();
    let mut fails = usize::MAX;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next().and_then(|n| n.parse().ok())) {
            (Some("fails"), Some(n)) => fails = n,
            (Some(a), Some(n)) => {
                counts.insert(a.to_string(), n);
            }
            _ => {}
        }
    }
    (counts, fails)
}
