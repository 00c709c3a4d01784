//! Least connections (`ip_vs_lc.c`): the available server with the smallest overhead
//! `active * 256 + inactive` (an established connection weighs 256 half-open or
//! closing ones); the first one wins a tie. Weights only matter as 0 or not.

use super::Candidates;

/// The least-loaded available server.
pub(crate) fn pick(c: &Candidates<'_>) -> Option<usize> {
    let mut least: Option<(usize, u64)> = None;
    for i in 0..c.len() {
        if !c.available(i) {
            continue;
        }
        let doh = c.overhead(i);
        match least {
            Some((_, loh)) if loh <= doh => {}
            _ => least = Some((i, doh)),
        }
    }
    least.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn fewest_overhead_wins() {
        let d = dests(&[1, 100, 1, 1]);
        // overheads: 1*256+0 = 256, 0*256+300 = 300, 0*256+255 = 255 (overloaded), 1*256 = 256
        let c = counters(&[(1, 0, false), (0, 300, false), (0, 255, true), (1, 0, false)]);
        let s = slots(4);
        assert_eq!(pick(&view(&d, &s, &c)), Some(0), "weights ignored; ties go to the first");
        let c = counters(&[(1, 0, false), (0, 255, false), (0, 0, true), (0, 0, true)]);
        assert_eq!(pick(&view(&d, &s, &c)), Some(1));
        let d0 = dests(&[0, 0]);
        assert_eq!(pick(&view(&d0, &slots(2), &counters(&[(0, 0, false); 2]))), None);
    }
}
