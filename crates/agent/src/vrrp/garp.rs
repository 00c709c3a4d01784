//! Gratuitous ARPs (IPv4 VIPs) and unsolicited neighbour advertisements (IPv6 VIPs) for
//! a master's addresses, paced per interface as keepalived paces them: every one sent on
//! an interface, by any instance, at least `vrrp_garp_interval` (`vrrp_gna_interval`)
//! after the previous one there, and a `garp_group`'s interfaces paced together by the
//! group's own intervals (keepalived's `garp_delay`), for switches and hosts that drop a
//! burst. Without an interval a burst goes to the dataplane in one call
//! (`send_garp(addr, port, N)`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::dataplane::{port_of, Dataplane};
use crate::keepalived::config::Config;

/// The timer a paced send waits on: a group's, or a port's own, per family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Timer {
    Group(usize, bool),
    Port(String, bool),
}

/// Intervals between gratuitous ARPs and between NAs (none: not paced).
type Intervals = (Option<Duration>, Option<Duration>);

/// VIPs and the ports they are on.
type Vips = Vec<(IpAddr, String)>;

/// The agent's pacing of gratuitous ARPs and NAs: one for the agent's life, shared by
/// every instance, its intervals those of the configuration last applied ([`Self::set`]),
/// its timers kept across reloads.
#[derive(Debug, Default)]
pub struct GarpPacer {
    /// What the configuration asks for.
    rules: Mutex<Rules>,
    /// When each timer lets the next send go.
    next: Mutex<HashMap<Timer, Instant>>,
}

/// A configuration's pacing.
#[derive(Debug, Default)]
struct Rules {
    /// `vrrp_garp_interval`, `vrrp_gna_interval`: each port in no group, on its own.
    default: Intervals,
    /// `garp_group`s: their intervals and the ports their interfaces name.
    groups: Vec<(Intervals, Vec<String>)>,
}

/// The longest interval taken (what the parser takes: 2^32 − 1 microseconds); a longer
/// one (a configuration deserialized from elsewhere) is cut to it.
const MAX_INTERVAL: f64 = u32::MAX as f64 / 1e6;

impl GarpPacer {
    /// The pacing `cfg` asks for (`global_defs` and `garp_group` blocks).
    pub fn new(cfg: &Config) -> GarpPacer {
        let p = GarpPacer::default();
        p.set(cfg);
        p
    }

    /// Takes `cfg`'s intervals (a reload), keeping the timers.
    pub fn set(&self, cfg: &Config) {
        let d = |s: Option<f64>| s.filter(|s| *s > 0.0).map(|s| Duration::from_secs_f64(s.min(MAX_INTERVAL)));
        let g = &cfg.global_defs;
        let rules = Rules {
            default: (d(g.vrrp_garp_interval), d(g.vrrp_gna_interval)),
            groups: cfg
                .garp_groups
                .iter()
                .map(|x| {
                    let ports = x.interfaces.iter().map(|i| port_of(i).to_string()).collect();
                    ((d(x.garp_interval), d(x.gna_interval)), ports)
                })
                .collect(),
        };
        *self.rules.lock().unwrap_or_else(PoisonError::into_inner) = rules;
    }

    /// The interval and timer of a send for `addr` on `port`: its group's (a group that
    /// sets no interval for the family does not pace it, as keepalived), else the port's
    /// own from the defaults.
    fn pacing(&self, port: &str, addr: IpAddr) -> Option<(Duration, Timer)> {
        let rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        let v6 = addr.is_ipv6();
        let pick = |i: &Intervals| if v6 { i.1 } else { i.0 };
        match rules.groups.iter().position(|(_, ports)| ports.iter().any(|p| p == port)) {
            Some(g) => pick(&rules.groups[g].0).map(|i| (i, Timer::Group(g, v6))),
            None => pick(&rules.default).map(|i| (i, Timer::Port(port.to_string(), v6))),
        }
    }

    /// Whether a send on `timer` may go now: if so, the timer is set `interval` from now
    /// (from the send itself, as keepalived sets it); if not, when to ask again.
    fn try_send(&self, timer: &Timer, interval: Duration) -> Result<(), Instant> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match next.get(timer) {
            Some(&at) if at > now => Err(at),
            _ => {
                next.insert(timer.clone(), now + interval);
                Ok(())
            }
        }
    }
}

/// Sends a burst of `repeat` gratuitous ARPs / NAs for `vips` (address, port): an
/// unpaced VIP gets its `repeat` in one call, at once; paced ones single sends, one VIP
/// after the other, `repeat` rounds, each when its timer lets it (the first at once when
/// nothing was sent there lately). What must wait is left to the returned tasks (one per
/// timer), which the caller aborts when the VIPs go.
pub fn send_garps(
    dp: &Arc<dyn Dataplane>,
    instance: &str,
    vips: &[(IpAddr, String)],
    repeat: u32,
    pacer: &Arc<GarpPacer>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let send = |dp: &dyn Dataplane, addr: IpAddr, port: &str, n: u32| {
        if let Err(e) = dp.send_garp(addr, port, n) {
            tracing::warn!(instance = %instance, %addr, "gratuitous ARP/NA: {e}");
        }
    };
    let mut tasks = Vec::new();
    if repeat == 0 {
        return tasks;
    }
    // Per timer: its interval and the VIPs that wait on it.
    let mut paced: Vec<(Timer, Duration, Vips)> = Vec::new();
    for (addr, port) in vips {
        match pacer.pacing(port, *addr) {
            None => send(dp.as_ref(), *addr, port, repeat),
            Some((i, timer)) => match paced.iter_mut().find(|(t, ..)| *t == timer) {
                Some((.., v)) => v.push((*addr, port.clone())),
                None => paced.push((timer, i, vec![(*addr, port.clone())])),
            },
        }
    }
    for (timer, interval, family) in paced {
        let mut sends = (0..repeat).flat_map(|_| family.clone()).peekable();
        while let Some((addr, port)) = sends.next_if(|_| pacer.try_send(&timer, interval).is_ok()) {
            send(dp.as_ref(), addr, &port, 1);
        }
        let rest: Vec<_> = sends.collect();
        if rest.is_empty() {
            continue;
        }
        let (dp, pacer, instance) = (dp.clone(), pacer.clone(), instance.to_string());
        tasks.push(tokio::spawn(async move {
            for (addr, port) in rest {
                while let Err(at) = pacer.try_send(&timer, interval) {
                    tokio::time::sleep_until(at).await;
                }
                if let Err(e) = dp.send_garp(addr, &port, 1) {
                    tracing::warn!(instance = %instance, %addr, "gratuitous ARP/NA: {e}");
                }
            }
        }));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{Call, FakeDataplane};
    use crate::keepalived::config::GarpGroup;

    fn garps(dp: &FakeDataplane) -> Vec<(IpAddr, u32)> {
        dp.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Garp(a, _, n) => Some((a, n)),
                _ => None,
            })
            .collect()
    }

    fn pacer(garp: Option<f64>, gna: Option<f64>, groups: Vec<GarpGroup>) -> Arc<GarpPacer> {
        let mut cfg = Config::default();
        (cfg.global_defs.vrrp_garp_interval, cfg.global_defs.vrrp_gna_interval) = (garp, gna);
        cfg.garp_groups = groups;
        Arc::new(GarpPacer::new(&cfg))
    }

    /// `vrrp_garp_interval` / `vrrp_gna_interval`: without an interval a burst is one call
    /// with its count; with one, single sends that far apart (IPv4 by the garp interval,
    /// IPv6 by the gna one), the first at once; aborting the tasks stops the rest.
    #[tokio::test]
    async fn spaced_gratuitous_arps() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v4b: IpAddr = "192.0.2.2".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let vips = vec![(v4, "p0".to_string()), (v4b, "p0".to_string()), (v6, "p0".to_string())];
        let fake = Arc::new(FakeDataplane::new());
        let dp: Arc<dyn Dataplane> = fake.clone();
        // No spacing: one call per VIP with the count, no task.
        assert!(send_garps(&dp, "VI", &vips, 5, &pacer(None, None, vec![])).is_empty());
        assert_eq!(garps(&fake), [(v4, 5), (v4b, 5), (v6, 5)]);
        // IPv4 spaced by 40 ms, IPv6 at once.
        let fake = Arc::new(FakeDataplane::new());
        let dp: Arc<dyn Dataplane> = fake.clone();
        let t0 = std::time::Instant::now();
        let tasks = send_garps(&dp, "VI", &vips, 3, &pacer(Some(0.04), None, vec![]));
        assert_eq!(tasks.len(), 1);
        assert_eq!(garps(&fake), [(v6, 3), (v4, 1)], "IPv6 unspaced, the first IPv4 at once");
        for t in tasks {
            t.await.unwrap();
        }
        assert!(t0.elapsed() >= Duration::from_millis(200), "5 intervals: {:?}", t0.elapsed());
        assert_eq!(garps(&fake), [(v6, 3), (v4, 1), (v4b, 1), (v4, 1), (v4b, 1), (v4, 1), (v4b, 1)]);
        // Both spaced; aborted early (the instance left MASTER): nothing more is sent.
        let fake = Arc::new(FakeDataplane::new());
        let dp: Arc<dyn Dataplane> = fake.clone();
        let tasks = send_garps(&dp, "VI", &vips, 5, &pacer(Some(0.03), Some(0.03), vec![]));
        assert_eq!(tasks.len(), 2);
        tokio::time::sleep(Duration::from_millis(75)).await;
        tasks.iter().for_each(|t| t.abort());
        let sent = garps(&fake).len();
        assert!((4..=8).contains(&sent), "{:?}", garps(&fake));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(garps(&fake).len(), sent, "stopped");
        assert!(garps(&fake).iter().all(|(_, n)| *n == 1));
    }

    /// The pacing is per interface, across instances: two instances' bursts on one port
    /// interleave at the port's interval, where each alone would have kept it; a
    /// `garp_group` paces its interfaces (twins or ports) together by its own interval,
    /// and leaves a family it sets no interval for unpaced; other ports keep the default.
    #[tokio::test]
    async fn pacing_is_per_interface_across_instances_and_groups_share_it() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let group =
            GarpGroup { garp_interval: Some(0.06), gna_interval: None, interfaces: vec!["g0.kni".into(), "g1".into()] };
        let p = pacer(Some(0.02), None, vec![group.clone()]);
        for (ports, min, name) in
            [(["p0", "p0"], 60, "one port, the default"), (["g0", "g1"], 180, "one group, its own")]
        {
            let fake = Arc::new(FakeDataplane::new());
            let dp: Arc<dyn Dataplane> = fake.clone();
            let t0 = std::time::Instant::now();
            let mut tasks = send_garps(&dp, "VI_1", &[(a, ports[0].to_string())], 2, &p);
            tasks.extend(send_garps(&dp, "VI_2", &[(b, ports[1].to_string())], 2, &p));
            assert_eq!(garps(&fake), [(a, 1)], "{name}: only the first goes at once");
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(garps(&fake).len(), 4, "{name}");
            assert!(t0.elapsed() >= Duration::from_millis(min), "{name}: three intervals: {:?}", t0.elapsed());
        }
        // A reload's intervals apply to what already runs (the timers kept).
        let mut cfg = Config::default();
        cfg.global_defs.vrrp_garp_interval = Some(0.5);
        p.set(&cfg);
        assert_eq!(p.pacing("p0", a).map(|(i, _)| i), Some(Duration::from_millis(500)));
        assert_eq!(p.pacing("g0", a).map(|(i, _)| i), Some(Duration::from_millis(500)), "no group any more");
        let p = pacer(Some(0.02), None, vec![group]);
        // Ports each on their own: both first sends at once.
        let fake = Arc::new(FakeDataplane::new());
        let dp: Arc<dyn Dataplane> = fake.clone();
        let mut tasks = send_garps(&dp, "VI_1", &[(a, "p1".into())], 2, &p);
        tasks.extend(send_garps(&dp, "VI_2", &[(b, "p2".into()), (v6, "g0".into())], 2, &p));
        assert_eq!(garps(&fake), [(a, 1), (v6, 2), (b, 1)], "the group sets no NA interval: unpaced");
        tasks.iter().for_each(|t| t.abort());
    }
}
