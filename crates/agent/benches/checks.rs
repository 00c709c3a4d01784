//! Health-check scalability: 10,000 real servers on loopback (127.0.x.y, distinct
//! addresses, a few listening ports) checked every second by one current-thread tokio
//! runtime; reports the checker thread's CPU time per second of checking.
//!
//! `cargo bench -p rvs-agent --bench checks` (env: RVS_BENCH_N=10000, RVS_BENCH_SECS=10,
//! RVS_BENCH_KIND=tcp|http).

use rvs_agent::check::{spawn_checkers, CheckSpec, CheckStats, Probe, RsChecks};
use rvs_agent::keepalived::config::UrlConf;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn cpu(who: nix::sys::resource::UsageWho) -> Duration {
    let u = nix::sys::resource::getrusage(who).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

const PORTS: usize = 4;

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too: keep that short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = env("RVS_BENCH_N", if quick { 200 } else { 10_000 });
    let secs: u64 = env("RVS_BENCH_SECS", if quick { 2 } else { 10 });
    let http = env("RVS_BENCH_KIND", String::from("tcp")) == "http";
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);

    // The real servers: a separate thread and runtime, so their CPU is not counted.
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut ports = Vec::new();
            for _ in 0..PORTS {
                // Wildcard so that every 127.0.x.y reaches it; only loopback is ever dialled.
                let l = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
                ports.push(l.local_addr().unwrap().port());
                tokio::spawn(async move {
                    loop {
                        // A plain close: the checker resets its side, so nothing lingers.
                        let Ok((mut c, _)) = l.accept().await else { continue };
                        if http {
                            tokio::spawn(async move {
                                let mut b = [0u8; 512];
                                let _ = c.read(&mut b).await;
                                let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\nok\n").await;
                            });
                        }
                    }
                });
            }
            port_tx.send(ports).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let ports = port_rx.recv().unwrap();

    let servers: Vec<RsChecks> = (0..n)
        .map(|i| {
            let ip =
                IpAddr::V4(Ipv4Addr::new(127, 1 + (i / 62500) as u8, ((i / 250) % 250) as u8, (i % 250) as u8 + 1));
            let target = SocketAddr::new(ip, ports[i % PORTS]);
            let probe = if http {
                Probe::Http {
                    target,
                    bindto: None,
                    host: "bench".into(),
                    urls: vec![UrlConf {
                        path: "/".into(),
                        status_codes: vec![(200, 299)],
                        digest: None,
                        virtualhost: None,
                        regex: None,
                    }],
                    protocol: rvs_agent::keepalived::config::HttpProtocol::V1_0,
                    proxy: None,
                }
            } else {
                Probe::Tcp { target, bindto: None }
            };
            RsChecks {
                id: i,
                checks: vec![CheckSpec {
                    probe,
                    timeout: Duration::from_secs(2),
                    retry: 1,
                    delay_before_retry: Duration::from_millis(500),
                }],
                delay_loop: Duration::from_secs(1),
                // keepalived's default warmup: spread over the first delay_loop.
                warmup: Duration::from_secs(1),
                ha_suspend: None,
            }
        })
        .collect();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stats = Arc::new(CheckStats::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel(n.max(1));
    let (attempts, failures, cpu_used, wall, downs) = rt.block_on(async {
        let _tasks = spawn_checkers(servers, tx, stats.clone());
        let mut downs = 0u64;
        // One warm-up second, then measure.
        let warm = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(warm);
        loop {
            tokio::select! {
                _ = &mut warm => break,
                Some(t) = rx.recv() => {
                    if downs < 3 && !t.up {
                        eprintln!("first failures: {}", t.reason);
                    }
                    downs += u64::from(!t.up)
                }
            }
        }
        let (a0, f0) = (stats.attempts.load(Ordering::Relaxed), stats.failures.load(Ordering::Relaxed));
        let (c0, t0) = (cpu(nix::sys::resource::UsageWho::RUSAGE_THREAD), Instant::now());
        let end = tokio::time::sleep(Duration::from_secs(secs));
        tokio::pin!(end);
        loop {
            tokio::select! {
                _ = &mut end => break,
                Some(t) = rx.recv() => downs += u64::from(!t.up),
            }
        }
        let c1 = cpu(nix::sys::resource::UsageWho::RUSAGE_THREAD);
        (
            stats.attempts.load(Ordering::Relaxed) - a0,
            stats.failures.load(Ordering::Relaxed) - f0,
            c1 - c0,
            t0.elapsed(),
            downs,
        )
    });
    let per_sec = cpu_used.as_secs_f64() / wall.as_secs_f64();
    println!(
        "checks: {} x {} every 1 s for {:.1} s: {:.0} checks/s, {} failed attempts, {} servers marked down",
        n,
        if http { "HTTP_GET" } else { "TCP_CHECK" },
        wall.as_secs_f64(),
        attempts as f64 / wall.as_secs_f64(),
        failures,
        downs
    );
    println!(
        "checker CPU: {:.3} s per second of checking ({:.1}% of one core); {:.1} us per check",
        per_sec,
        per_sec * 100.0,
        cpu_used.as_secs_f64() * 1e6 / attempts.max(1) as f64
    );
    std::process::exit(0);
}
