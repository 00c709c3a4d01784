//! Shortest expected delay (`ip_vs_sed.c`): the available server with the smallest
//! `(active + 1) / weight`, the delay a new connection expects if every server works
//! its active connections at a speed proportional to its weight. Inactive connections
//! are ignored; compared by cross-multiplication like wlc.

use super::wlc::least_weighted;
use super::Candidates;

/// The available server with the shortest expected delay.
pub(crate) fn pick(c: &Candidates<'_>) -> Option<usize> {
    least_weighted(c, |i| u64::from(c.active(i)) + 1)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn active_plus_one_over_weight() {
        // (a+1)/w: 1/1 = 1, 3/4 = 0.75, 2/2 = 1
        let d = dests(&[1, 4, 2]);
        let c = counters(&[(0, 0, false), (2, 0, false), (1, 0, false)]);
        let s = slots(3);
        assert_eq!(pick(&view(&d, &s, &c)), Some(1));
        // Inactive connections do not count: 3/4 vs (0+1)/1 with 1000 inactive.
        let d = dests(&[4, 1]);
        let c = counters(&[(2, 0, false), (0, 1000, false)]);
        assert_eq!(pick(&view(&d, &slots(2), &c)), Some(0));
        // Unlike wlc, an idle weight-1 server loses to a busy weight-10 one: 1/1 > 2/10.
        let d = dests(&[1, 10]);
        let c = counters(&[(0, 0, false), (1, 0, false)]);
        assert_eq!(pick(&view(&d, &slots(2), &c)), Some(1));
    }
}
