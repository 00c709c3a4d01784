//! `rvsd --check-host -c FILE` on this machine, the real binary: the demo's file (virtual
//! NICs, --no-huge) inside a namespace that has its interfaces passes with warnings; the
//! production reference (PCI NICs, hugepages, 8 workers) fails on a machine without them.
//! Neither starts DPDK. Needs root (a network namespace).

use std::process::Output;

use rvsd::hostcheck::ITEMS;
use testnet::NetNs;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

fn conf(name: &str) -> String {
    format!("{}/../../dpdk-conf/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The report's lines as (status, item), and the whole text; every item of [`ITEMS`]
/// has at least one line, every line a status.
fn lines(out: &Output) -> (Vec<(String, String)>, String) {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut v = Vec::new();
    let mut body = text.lines().collect::<Vec<_>>();
    let summary = body.pop().unwrap_or_default();
    assert!(summary.ends_with(" PASS") && summary.contains(" FAIL, "), "summary line: {text}");
    for l in body {
        let (status, rest) = l.split_once("  ").unwrap_or_else(|| panic!("not a finding: {l:?}"));
        assert!(["PASS", "WARN", "FAIL"].contains(&status), "status of {l:?}");
        let item = rest.split("  ").next().unwrap_or_default().trim().to_string();
        v.push((status.to_string(), item));
    }
    for want in ITEMS {
        assert!(
            v.iter().any(|(_, item)| item == want || item.starts_with(&format!("{want} "))),
            "no line for {want}:\n{text}"
        );
    }
    (v, text)
}

fn status_of<'a>(v: &'a [(String, String)], item: &str) -> &'a str {
    v.iter().find(|(_, i)| i == item).map(|(s, _)| s.as_str()).unwrap_or_else(|| panic!("no {item}"))
}

#[test]
fn demo_config_in_its_namespace_passes_with_warnings() {
    let ns = NetNs::new("rvsch");
    for (dev, peer) in [("rvsdemo-lb0", "rvsch-p0"), ("rvsdemo-lb1", "rvsch-p1")] {
        ns.ip(&["link", "add", dev, "type", "veth", "peer", "name", peer]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    let out = ns.exec(&[RVSD, "--check-host", "-c", &conf("demo.toml")]);
    let (v, text) = lines(&out);
    println!("{text}");
    assert_eq!(out.status.code(), Some(0), "no FAIL:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(v.iter().all(|(s, _)| s != "FAIL"), "{text}");
    assert_eq!(status_of(&v, "hugepages"), "WARN", "--no-huge is not for production");
    // (`start` and `socket` may warn: a demo running now holds the demo's file prefix.)
    for item in ["config", "iommu", "vfio", "driver", "numa", "memlock", "mtu dpdk0", "mtu dpdk1"] {
        assert_eq!(status_of(&v, item), "PASS", "{item}:\n{text}");
    }

    // The same in JSON.
    let out = ns.exec(&[RVSD, "--check-host", "--json", "-c", &conf("demo.toml")]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["fail"], 0);
    let n = doc["findings"].as_array().expect("findings").len() as u64;
    assert_eq!(doc["pass"].as_u64().unwrap() + doc["warn"].as_u64().unwrap(), n);
}

#[test]
fn production_config_fails_here() {
    let out = std::process::Command::new(RVSD)
        .args(["--check-host", "-c", &conf("production.toml")])
        .output()
        .expect("run rvsd");
    let (v, text) = lines(&out);
    println!("{text}");
    assert_eq!(out.status.code(), Some(1), "FAIL lines make exit status 1:\n{text}");
    // A development machine has no NIC at 0000:3b:00.x and not CPUs 2-9 (this test
    // assumes so: on the machine production.toml describes it would pass).
    for item in ["driver dpdk0", "driver dpdk1", "start"] {
        assert_eq!(status_of(&v, item), "FAIL", "{item}:\n{text}");
    }
    // Every FAIL and WARN line carries a fix.
    for l in text.lines().filter(|l| l.starts_with("FAIL") || l.starts_with("WARN")) {
        assert!(l.contains(" -- fix: "), "{l}");
    }
    // --check-host and --check-config are different questions.
    let out = std::process::Command::new(RVSD)
        .args(["--check-host", "--check-config", &conf("production.toml")])
        .output()
        .expect("run rvsd");
    assert_eq!(out.status.code(), Some(2), "clap refuses the pair");
}
