//! Prometheus metrics: a real Prometheus server (Debian's package) scrapes rvsd under
//! HTTP traffic, and its query API reports the connections each real server received:
//! exactly what the test sent and what the servers answered. `promtool check metrics`
//! passes on rvsd's output; anything but `GET /metrics` gets an HTTP error and rvsd goes
//! on serving.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rvs_e2e::{rs4, serial, Spec, Topology, VIP4};
use testnet::ChildGuard;

/// Where rvsd serves metrics and Prometheus listens, in the lb namespace's loopback.
const METRICS: &str = "127.0.0.1:9469";
const PROMETHEUS: &str = "127.0.0.1:9490";

/// One HTTP exchange in the lb namespace (curl there), returning (status, body).
fn http_in(t: &Topology, url: &str) -> (u16, String) {
    let out = t.lb.exec(&["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", url]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Prometheus's whole answer to an instant query (`None` when it is not JSON).
fn query_reply(t: &Topology, expr: &str) -> Option<serde_json::Value> {
    let out = t.lb.exec(&[
        "curl",
        "-sS",
        "--max-time",
        "10",
        "-G",
        &format!("http://{PROMETHEUS}/api/v1/query"),
        "--data-urlencode",
        &format!("query={expr}"),
    ]);
    serde_json::from_slice(&out.stdout).ok()
}

/// The value of an instant query through Prometheus's API (`None` when empty).
fn query(t: &Topology, expr: &str) -> Option<f64> {
    let v = query_reply(t, expr)?;
    let s = v["data"]["result"].get(0)?["value"][1].as_str()?;
    s.parse().ok()
}

/// Waits until `expr` evaluates to `want` (Prometheus has scraped since the traffic).
fn wait_query(t: &Topology, expr: &str, want: f64) -> Option<f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        last = query(t, expr);
        if last == Some(want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    last
}

fn start_prometheus(t: &Topology) -> ChildGuard {
    let conf = t.dir.join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: rvsd\n    static_configs:\n      - targets: ['{METRICS}']\n"
        ),
    )
    .expect("prometheus.yml");
    let log = std::fs::File::create(t.dir.join("prometheus.log")).expect("log");
    let child = Command::new("ip")
        .args(["netns", "exec", t.lb.name(), "prometheus"])
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", t.dir.join("tsdb").display()))
        .arg(format!("--web.listen-address={PROMETHEUS}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus runs");
    ChildGuard::new(child)
}

#[test]
fn prometheus_scrapes_what_the_servers_served() {
    let _g = serial();
    let mut t = Topology::build(Spec::default()).expect("topology");
    let mut metrics = toml::Table::new();
    metrics.insert("listen".into(), toml::Value::String(METRICS.into()));
    t.config.insert("metrics".into(), toml::Value::Table(metrics));
    // The connections stay live (TIME_WAIT) through the scrapes below, however slow.
    t.config["timeouts"]["time_wait"] = toml::Value::Integer(300);
    t.config["timeouts"]["fin_wait"] = toml::Value::Integer(300);
    t.start_rvsd().expect("rvsd starts");

    // The exposition is valid by Prometheus's own linter.
    let (code, text) = http_in(&t, &format!("http://{METRICS}/metrics"));
    assert_eq!(code, 200, "{text}");
    let path = t.dir.join("metrics.txt");
    std::fs::write(&path, &text).expect("write");
    let lint = Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", path.display()))
        .output()
        .expect("promtool");
    assert!(
        lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    for family in [
        "rvs_service_connections_total",
        "rvs_real_server_active_connections",
        "rvs_drops_total",
        "rvs_worker_busy_loops_total",
        "rvs_port_rx_missed_total",
        "rvs_port_queue_rx_packets_total",
        "rvs_mempool_mbufs_in_use",
        "rvs_worker_connections",
        "rvs_config_generation",
    ] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family} in:\n{text}");
    }

    let _prom = start_prometheus(&t);
    let up = wait_query(&t, "up{job=\"rvsd\"}", 1.0);
    assert_eq!(
        up,
        Some(1.0),
        "Prometheus scrapes rvsd:\n{}",
        std::fs::read_to_string(t.dir.join("prometheus.log")).unwrap_or_default()
    );

    // 300 requests, one connection each, while Prometheus scrapes every second.
    let urls: Vec<String> = (0..300).map(|_| format!("http://{VIP4}/")).collect();
    let mut served = vec![0usize; t.rs.len()];
    for chunk in urls.chunks(50) {
        let (bodies, ok) = t.curl_many(chunk, 5);
        assert!(ok, "requests succeed: {bodies}");
        for (i, n) in t.tally(&bodies).into_iter().enumerate() {
            served[i] += n;
        }
    }
    assert_eq!(served.iter().sum::<usize>(), 300, "{served:?}");

    let service = format!("tcp:{VIP4}:80");
    let total = wait_query(&t, &format!("sum(rvs_service_connections_total{{service=\"{service}\"}})"), 300.0);
    assert_eq!(total, Some(300.0), "Prometheus's count of the service's connections");
    for (i, n) in served.iter().enumerate() {
        let rs = format!("{}:8080", rs4(i + 1));
        let got = wait_query(
            &t,
            &format!("rvs_real_server_connections_total{{service=\"{service}\",rs=\"{rs}\"}}"),
            *n as f64,
        );
        assert_eq!(got, Some(*n as f64), "{rs} served {n} requests");
    }
    // Packets both ways, and a rate Prometheus can compute from the scrapes.
    let inbound = query(&t, &format!("rvs_service_packets_total{{service=\"{service}\",direction=\"in\"}}"));
    let outbound = query(&t, &format!("rvs_service_packets_total{{service=\"{service}\",direction=\"out\"}}"));
    assert!(inbound.is_some_and(|v| v >= 300.0 * 4.0), "client packets: {inbound:?}");
    assert!(outbound.is_some_and(|v| v >= 300.0 * 3.0), "server packets: {outbound:?}");
    let rate = query(&t, &format!("sum(rate(rvs_service_connections_total{{service=\"{service}\"}}[1m]))"));
    assert!(rate.is_some_and(|r| r > 0.0), "request rate: {rate:?}");
    // Prometheus keeps scraping (every second) and rvsd keeps answering.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut scrapes = None;
    while Instant::now() < deadline && !scrapes.is_some_and(|n| n >= 5.0) {
        std::thread::sleep(Duration::from_millis(500));
        scrapes = query(&t, "sum_over_time(up{job=\"rvsd\"}[1m])");
    }
    assert!(scrapes.is_some_and(|n| n >= 5.0), "scraped successfully again and again: {scrapes:?}");

    // Every FullNAT connection holds a port of one LIP: the per-LIP gauge sums to the
    // workers' connections, in one scrape.
    let (_, now) = http_in(&t, &format!("http://{METRICS}/metrics"));
    let sum = |family: &str| -> f64 {
        now.lines()
            .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    };
    assert!(sum("rvs_worker_connections") > 0.0, "connections live after the traffic");
    assert_eq!(sum("rvs_lip_connections"), sum("rvs_worker_connections"), "{now}");

    // DPDK's telemetry socket answers rvs's commands with the same counters.
    let prefix = t.config["eal"]["file_prefix"].as_str().expect("file prefix").to_string();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '/rvs/stats\\n/rvs/drops\\n' | dpdk-telemetry.py -f {prefix}"))
        .output()
        .expect("dpdk-telemetry.py");
    let said = String::from_utf8_lossy(&out.stdout);
    let stats: serde_json::Value = said
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("/rvs/stats").is_some())
        .unwrap_or_else(|| panic!("/rvs/stats answered: {said}{}", String::from_utf8_lossy(&out.stderr)));
    assert!(stats["/rvs/stats"]["conns"].as_u64().is_some_and(|n| n >= 300), "{stats}");
    assert!(said.contains("\"/rvs/drops\""), "/rvs/drops answered: {said}");

    // The Grafana dashboard shipped in docs/: every query is valid PromQL over rvsd's
    // families, and those about traffic have data.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(rvs_e2e::repo_root().join("docs/grafana/rvs.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr =
                target["expr"].as_str().expect("expr").replace("$__rate_interval", "1m").replace("$service", ".*");
            let v = query_reply(&t, &expr).expect("query reply");
            assert_eq!(v["status"], "success", "{expr}: {v}");
            for name in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("rvs_"))
            {
                assert!(
                    text.contains(&format!("# TYPE {name} ")),
                    "{name} (panel {}) is a family rvsd serves",
                    panel["title"]
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 10);

    // Anything else gets an HTTP error (garbage a 400); the
    // endpoint still serves afterwards.
    assert_eq!(http_in(&t, &format!("http://{METRICS}/")).0, 404);
    let out = t.lb.exec(&[
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        &format!("http://{METRICS}/metrics"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "405");
    let garbage = t.lb.exec(&[
        "bash",
        "-c",
        "exec 3<>/dev/tcp/127.0.0.1/9469; printf '\\026\\003\\001garbage\\r\\n\\r\\n' >&3; timeout 5 cat <&3",
    ]);
    let answer = String::from_utf8_lossy(&garbage.stdout);
    assert!(answer.starts_with("HTTP/1.1 400 "), "garbage is refused: {answer:?}");
    let (code, again) = http_in(&t, &format!("http://{METRICS}/metrics"));
    assert_eq!(code, 200);
    assert!(again.contains("rvs_service_connections_total"), "still serving");

    let log = t.stop_rvsd().expect("stops");
    assert!(!log.contains("panicked"), "{log}");
}
