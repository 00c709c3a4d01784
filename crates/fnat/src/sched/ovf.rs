//! Weighted overflow (`ip_vs_ovf.c`): every new connection goes to the available server
//! with the highest weight whose active connections do not exceed its weight; when it
//! fills, the next-highest takes the overflow. The weight is a connection budget here,
//! not a share.
//!
//! Counts are per worker (see [`crate::sched`]), so each of `n` workers gives a server
//! `ceil(weight / n)` active connections, as it does for `-x`: the budget holds for
//! the whole box when the NIC spreads clients evenly.

use super::Candidates;

/// The highest-weight available server still within its budget on this worker.
pub(crate) fn pick(c: &Candidates<'_>, workers: u32) -> Option<usize> {
    super::fo::heaviest(c, |i| c.active(i) <= super::state::share(c.weight(i), workers))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn the_heaviest_until_it_passes_its_weight() {
        let s = slots(3);
        let d = dests(&[2, 8, 4]);
        let at = |active: [u32; 3]| counters(&[(active[0], 0, false), (active[1], 0, false), (active[2], 0, false)]);
        assert_eq!(pick(&view(&d, &s, &at([0, 0, 0])), 1), Some(1));
        // As the kernel: a server at exactly its weight still takes one more.
        assert_eq!(pick(&view(&d, &s, &at([0, 8, 0])), 1), Some(1));
        assert_eq!(pick(&view(&d, &s, &at([0, 9, 0])), 1), Some(2), "overflow to the next-highest");
        assert_eq!(pick(&view(&d, &s, &at([0, 9, 5])), 1), Some(0));
        assert_eq!(pick(&view(&d, &s, &at([3, 9, 5])), 1), None, "everyone full");
        // Inactive connections do not count against the budget.
        let c = counters(&[(0, 0, false), (0, 500, false), (0, 0, false)]);
        assert_eq!(pick(&view(&d, &s, &c), 1), Some(1));
    }

    #[test]
    fn each_worker_has_its_share_of_the_budget() {
        let s = slots(2);
        let d = dests(&[9, 1]);
        // 4 workers: ceil(9 / 4) = 3 active each on server 0.
        let c = counters(&[(3, 0, false), (0, 0, false)]);
        assert_eq!(pick(&view(&d, &s, &c), 4), Some(0));
        let c = counters(&[(4, 0, false), (0, 0, false)]);
        assert_eq!(pick(&view(&d, &s, &c), 4), Some(1));
    }
}
