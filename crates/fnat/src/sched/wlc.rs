//! Weighted least connections (`ip_vs_wlc.c`), ipvsadm's default: the available server
//! with the smallest `overhead / weight`, where overhead is `active * 256 + inactive`.
//! Compared by cross-multiplication, as IPVS does (`loh * w(i) > doh * w(least)`), so no
//! division and no rounding; the first one wins a tie.

use super::Candidates;

/// The available server with the least weighted overhead.
pub(crate) fn pick(c: &Candidates<'_>) -> Option<usize> {
    least_weighted(c, |i| c.overhead(i))
}

/// The available server minimising `cost(i) / weight(i)`, first one on ties. Shared
/// with sed and nq. Costs stay below 2^41 and weights below 2^16, so the products fit.
pub(crate) fn least_weighted(c: &Candidates<'_>, cost: impl Fn(usize) -> u64) -> Option<usize> {
    let mut least: Option<(usize, u64, u64)> = None;
    for i in 0..c.len() {
        if !c.available(i) {
            continue;
        }
        let doh = cost(i);
        let w = u64::from(c.weight(i));
        match least {
            Some((_, loh, lw)) if loh * w <= doh * lw => {}
            _ => least = Some((i, doh, w)),
        }
    }
    least.map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn overhead_over_weight() {
        // overhead/weight: 512/1 = 512, 1024/3 = 341.3, 300/1 = 300 (overloaded), 700/2 = 350
        let d = dests(&[1, 3, 1, 2]);
        let c = counters(&[(2, 0, false), (4, 0, false), (1, 44, true), (2, 188, false)]);
        let s = slots(4);
        assert_eq!(pick(&view(&d, &s, &c)), Some(1));
        // Exact tie 256/1 vs 512/2: the first one stays.
        let d = dests(&[1, 2]);
        let c = counters(&[(1, 0, false), (2, 0, false)]);
        assert_eq!(pick(&view(&d, &slots(2), &c)), Some(0));
        // A drained server is never picked, even when idle.
        let d = dests(&[0, 1]);
        let c = counters(&[(0, 0, false), (50, 0, false)]);
        assert_eq!(pick(&view(&d, &slots(2), &c)), Some(1));
    }

    #[test]
    fn spreads_in_proportion_to_weight() {
        // Feeding picks back as active connections converges to the weights' ratio.
        let d = dests(&[1, 2, 5]);
        let mut c = counters(&[(0, 0, false); 3]);
        let s = slots(3);
        for _ in 0..800 {
            let i = pick(&view(&d, &s, &c)).unwrap();
            c[i].active += 1;
        }
        let got: Vec<u32> = c.iter().map(|x| x.active).collect();
        assert_eq!(got, [100, 200, 500]);
    }
}
