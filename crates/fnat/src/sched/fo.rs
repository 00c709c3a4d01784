//! Weighted failover (`ip_vs_fo.c`, DPVS's `dp_vs_fo.c`): every new connection goes to
//! the available server with the highest weight; the first one wins a tie. The others
//! stand by: drain the primary (weight 0), let it fail its checks, or let it pass its
//! upper threshold, and the next-highest takes over. Connections are not counted.

use super::Candidates;

/// The available server with the highest weight.
pub(crate) fn pick(c: &Candidates<'_>) -> Option<usize> {
    heaviest(c, |_| true)
}

/// The available server with the highest weight among those `ok` keeps; the first of a
/// tie (fo's and ovf's walk).
pub(crate) fn heaviest(c: &Candidates<'_>, ok: impl Fn(usize) -> bool) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for i in 0..c.len() {
        if !c.available(i) || !ok(i) {
            continue;
        }
        let w = c.weight(i);
        match best {
            Some((_, bw)) if bw >= w => {}
            _ => best = Some((i, w)),
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn highest_weight_first_then_the_next() {
        let s = slots(4);
        let idle = counters(&[(0, 0, false); 4]);
        let d = dests(&[5, 10, 10, 1]);
        assert_eq!(pick(&view(&d, &s, &idle)), Some(1), "highest weight; the first of a tie");
        // Load does not move it: only availability does.
        let busy = counters(&[(0, 0, false), (900, 9000, false), (0, 0, false), (0, 0, false)]);
        assert_eq!(pick(&view(&d, &s, &busy)), Some(1));
        let over = counters(&[(0, 0, false), (0, 0, true), (0, 0, false), (0, 0, false)]);
        assert_eq!(pick(&view(&d, &s, &over)), Some(2), "overloaded primary: the next");
        let d = dests(&[5, 0, 0, 1]);
        assert_eq!(pick(&view(&d, &s, &idle)), Some(0), "drained: the next-highest");
        let d = dests(&[0, 0, 0, 0]);
        assert_eq!(pick(&view(&d, &s, &idle)), None);
    }
}
