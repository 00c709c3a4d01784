//! Issue 15's active-active scale-out, end to end (`rvs_e2e::ecmp`): two rvsd nodes
//! forward the same VIP, each announcing it over BGP from its kernel twin (BIRD 2) to a
//! router namespace that spreads the clients over both with a layer-4 multipath route.
//!
//! `clients_spread_over_both_nodes_and_a_dead_node_is_withdrawn`:
//! * 8 client addresses × 40 new connections: both nodes carry a share, and each client
//!   meets one real server whichever node the router chose (Maglev, the same table on
//!   both nodes).
//! * Node a's rvsd is killed (`kill -9`) while a client fetches in a loop: the router's
//!   BFD session through a's twin times out and BIRD withdraws a's next hop; the time to
//!   withdraw and the requests that failed meanwhile are printed (`-- --nocapture`);
//!   every request begun after the withdrawal succeeds, through b.
//! * a's rvsd restarts: its twin comes back, BIRD reconnects, the route has both next
//!   hops again and a carries clients again.
//!
//! `a_node_whose_health_checks_fail_withdraws_its_route`: each node's rvs-agent adds the
//! service and has BIRD announce it while its health checks hold the quorum
//! (keepalived's `quorum_up` / `quorum_down` scripts running `birdc enable|disable`).
//! Node a's management link is cut: its checks fail, its quorum is lost, BIRD withdraws
//! the route; every request begun after that succeeds through b. The link returns: the
//! checks pass, the route returns.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rvs_e2e::ecmp::{Ecmp, BFD_INTERVAL_MS, BFD_MULTIPLIER, CLIENTS};
use rvs_e2e::serial;

/// `get_many`'s bodies as a set of real servers.
fn servers(bodies: &str) -> BTreeSet<String> {
    bodies.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

#[test]
fn clients_spread_over_both_nodes_and_a_dead_node_is_withdrawn() {
    let _g = serial();
    let mut e = Ecmp::start(3, false).expect("the ECMP topology starts");
    let (a, b) = (e.pair.a.addr0.clone(), e.pair.b.addr0.clone());
    println!("router's route to the VIP: via {:?}", e.nexthops());

    // Spread, and one real server per client through both nodes.
    const PER_CLIENT: usize = 40;
    let mut chosen = BTreeSet::new();
    for i in 0..CLIENTS {
        let (bodies, ok) = e.get_many(i, PER_CLIENT);
        assert!(ok, "client {i}: every request answered:\n{bodies}\n{}", e.logs());
        let s = servers(&bodies);
        assert_eq!(s.len(), 1, "client {i} meets one real server whichever node forwards: {s:?}");
        assert_eq!(bodies.lines().filter(|l| !l.trim().is_empty()).count(), PER_CLIENT);
        chosen.extend(s);
    }
    let (by_a, by_b) = e.pair.served_by();
    let total = CLIENTS * PER_CLIENT;
    println!("{total} connections: {by_a} through a, {by_b} through b; real servers chosen: {chosen:?}");
    assert_eq!(by_a + by_b, total, "every request reached a real server from a node's LIP");
    assert!(by_a >= total / 5 && by_b >= total / 5, "the router spreads connections over both nodes: {by_a} / {by_b}");
    assert!(chosen.len() >= 2, "different clients meet different real servers: {chosen:?}");

    // Node a's dataplane dies; the router withdraws it.
    let t0 = Instant::now();
    e.pair.a.kill_rvsd();
    let (withdrawn, results) = std::thread::scope(|s| {
        let watch = s.spawn(|| e.wait_nexthops(1, Duration::from_secs(20)).map(|_| t0.elapsed()));
        let mut results = Vec::new();
        let mut i = 0;
        while t0.elapsed() < Duration::from_secs(4) || !watch.is_finished() {
            let start = t0.elapsed();
            results.push((start, e.get(i, 1000).is_some()));
            i += 1;
        }
        (watch.join().expect("the route watch"), results)
    });
    assert_eq!(e.nexthops(), std::slice::from_ref(&b), "only b remains");
    let withdrawn = withdrawn.unwrap_or_else(|| panic!("a's route withdrawn within 20 s: {:?}", e.nexthops()));
    let failed: Vec<_> = results.iter().filter(|(_, ok)| !ok).map(|(t, _)| t.as_millis()).collect();
    let detect = Duration::from_millis(u64::from(BFD_INTERVAL_MS * BFD_MULTIPLIER));
    println!(
        "a killed: route through a withdrawn after {:.0} ms (BFD detection {} ms); {} requests in 4 s, \
         {} failed (begun at {failed:?} ms)",
        withdrawn.as_secs_f64() * 1000.0,
        detect.as_millis(),
        results.len(),
        failed.len()
    );
    assert!(withdrawn < detect + Duration::from_millis(1500), "withdrawn within the detection time (+1.5 s)");
    let late_failures: Vec<_> = results.iter().filter(|(t, ok)| !ok && *t >= withdrawn).collect();
    assert!(late_failures.is_empty(), "no request fails once a is withdrawn: {late_failures:?}");
    assert!(results.len() >= 20, "the client kept fetching: {} requests", results.len());

    // a comes back.
    let t1 = Instant::now();
    e.pair.a.start_rvsd().expect("a's rvsd restarts");
    let back = e.wait_nexthops(2, Duration::from_secs(30));
    let hops = e.nexthops();
    assert!(back.is_some(), "a's route returns: {hops:?}\n{}", e.logs());
    assert!(hops.contains(&a) && hops.contains(&b), "{hops:?}");
    println!("a restarted: both next hops again {:.1} s after rvsd started", t1.elapsed().as_secs_f64());
    let (before_a, _) = e.pair.served_by();
    for i in 0..CLIENTS {
        let (bodies, ok) = e.get_many(i, 10);
        assert!(ok, "client {i} after a's return:\n{bodies}");
        assert_eq!(servers(&bodies).len(), 1, "still one real server per client");
    }
    let (after_a, _) = e.pair.served_by();
    assert!(after_a > before_a, "a carries clients again ({} of {})", after_a - before_a, CLIENTS * 10);
}

/// Requests from rotating client addresses until `done` holds (checked after each) and at
/// least `min` have passed; (when each began, whether it succeeded).
fn fetch_until(e: &Ecmp, t0: Instant, min: Duration, done: impl Fn() -> bool) -> Vec<(Duration, bool)> {
    let mut results = Vec::new();
    let mut i = 0;
    while t0.elapsed() < min || !done() {
        assert!(t0.elapsed() < Duration::from_secs(30), "still waiting after 30 s: {:?}", e.nexthops());
        results.push((t0.elapsed(), e.get(i, 1000).is_some()));
        i += 1;
    }
    results
}

#[test]
fn a_node_whose_health_checks_fail_withdraws_its_route() {
    let _g = serial();
    let e = Ecmp::start(3, true).expect("the ECMP topology starts with agents");
    let b = e.pair.b.addr0.clone();
    for i in 0..CLIENTS {
        let (bodies, ok) = e.get_many(i, 10);
        assert!(ok, "client {i}:\n{bodies}\n{}", e.logs());
    }
    let (by_a, by_b) = e.pair.served_by();
    assert!(by_a > 0 && by_b > 0, "both nodes carry clients: {by_a} / {by_b}");

    // a's health checks lose every real server.
    let t0 = Instant::now();
    e.pair.sw.ip(&["link", "set", "am", "down"]);
    let (withdrawn, results) = std::thread::scope(|s| {
        let watch = s.spawn(|| e.wait_nexthops(1, Duration::from_secs(20)).map(|_| t0.elapsed()));
        let results = fetch_until(&e, t0, Duration::from_secs(1), || watch.is_finished());
        (watch.join().expect("the route watch"), results)
    });
    let withdrawn = withdrawn.unwrap_or_else(|| panic!("a's route withdrawn: {:?}\n{}", e.nexthops(), e.logs()));
    assert_eq!(e.nexthops(), std::slice::from_ref(&b), "only b remains");
    let failed: Vec<_> = results.iter().filter(|(_, ok)| !ok).map(|(t, _)| t.as_millis()).collect();
    println!(
        "a's management link cut: route withdrawn after {:.1} s (checks: 1 s timeout, 1 s delay loop); \
         {} requests meanwhile, {} failed (begun at {failed:?} ms)",
        withdrawn.as_secs_f64(),
        results.len(),
        failed.len()
    );
    assert!(e.pair.a.agent_log().contains("lost its quorum"), "a's agent says why:\n{}", e.pair.a.agent_log());
    let after = fetch_until(&e, Instant::now(), Duration::from_secs(2), || true);
    assert!(after.iter().all(|(_, ok)| *ok), "every request after the withdrawal succeeds: {after:?}");

    // The link returns: a's checks pass, its route returns.
    let t1 = Instant::now();
    e.pair.sw.ip(&["link", "set", "am", "up"]);
    let back = e.wait_nexthops(2, Duration::from_secs(30));
    assert!(back.is_some(), "a's route returns: {:?}\n{}", e.nexthops(), e.logs());
    println!("a's management link back: both next hops after {:.1} s", t1.elapsed().as_secs_f64());
    assert!(e.pair.a.agent_log().contains("regained its quorum"), "{}", e.pair.a.agent_log());
    let (before_a, _) = e.pair.served_by();
    for i in 0..CLIENTS {
        assert!(e.get_many(i, 10).1, "client {i} after a's return");
    }
    assert!(e.pair.served_by().0 > before_a, "a carries clients again");
}
