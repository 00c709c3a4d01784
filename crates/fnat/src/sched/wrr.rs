//! Weighted round robin (`ip_vs_wrr.c`).
//!
//! IPVS's order: a current weight `cw` starts at the maximum weight; each pass over the
//! list picks, in order, every available server whose weight is at least `cw`; at the
//! end of a pass `cw` steps down by the gcd of the weights, and wraps back to the
//! maximum below 1. Weights 4, 3, 2 give a, a, b, a, b, c, a, b, c: over a cycle each
//! server gets exactly its weight (divided by the gcd) of picks.
//!
//! Levels at which no available server qualifies would be empty passes; they are
//! skipped arithmetically (straight to the highest level the heaviest available server
//! reaches), which keeps the order and bounds a pick to two passes over the list.

use super::Candidates;
use crate::service::Dest;

/// The static part: gcd (`di`) and maximum (`mw`, as IPVS: `max - (gcd - 1)`) of the
/// positive weights, per generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrrParams {
    /// The step of the current weight: gcd of the positive weights (1 if none).
    pub gcd: u32,
    /// Where the current weight restarts: `max - (gcd - 1)`, 0 if no positive weight.
    pub max: u32,
}

impl WrrParams {
    /// The parameters of a server list.
    pub fn new(dests: &[Dest]) -> Self {
        let mut g = 0u32;
        let mut max = 0u32;
        for d in dests.iter().filter(|d| d.weight > 0) {
            g = if g == 0 { d.weight } else { gcd(g, d.weight) };
            max = max.max(d.weight);
        }
        let gcd = g.max(1);
        WrrParams { gcd, max: if max == 0 { 0 } else { max - (gcd - 1) } }
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A worker's position in the wrr sequence of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrrCursor {
    /// The last server picked; `None` = before the head of the list.
    pub last: Option<usize>,
    /// The current weight level.
    pub cw: u32,
}

impl WrrCursor {
    /// The start of the sequence.
    pub fn new(p: &WrrParams) -> Self {
        WrrCursor { last: None, cw: p.max }
    }

    /// What IPVS does when the server list or weights change
    /// (`ip_vs_wrr_dest_changed`): back to the head of the list, the level kept when
    /// still valid (realigned on the new gcd), else restarted at the maximum.
    pub fn reset(&mut self, p: &WrrParams) {
        self.last = None;
        if self.cw == 0 || self.cw > p.max {
            self.cw = p.max;
        } else if p.gcd > 1 {
            self.cw = (self.cw / p.gcd) * p.gcd + 1;
            if self.cw > p.max {
                self.cw = p.max;
            }
        }
    }
}

/// The next server in wrr order; `None` when none is available (cursor unchanged).
pub(crate) fn pick(c: &Candidates<'_>, p: &WrrParams, cur: &mut WrrCursor) -> Option<usize> {
    if p.max == 0 {
        return None;
    }
    let n = c.len();
    let mut cw = if cur.cw == 0 || cur.cw > p.max { p.max } else { cur.cw };
    let mut start = cur.last.map_or(0, |l| l + 1);
    // Pass 1 finishes the current level; pass 2 runs at a level the heaviest available
    // server reaches, so it finds one. A third only guards against the unforeseen.
    for _ in 0..3 {
        for i in start..n {
            if c.available(i) && c.weight(i) >= cw {
                *cur = WrrCursor { last: Some(i), cw };
                return Some(i);
            }
        }
        let top = (0..n).filter(|&i| c.available(i)).map(|i| c.weight(i)).max()?;
        cw = if cw > p.gcd { cw - p.gcd } else { p.max };
        if cw > top {
            // Levels above `top` are empty passes: skip them, staying on the grid.
            cw -= (cw - top).div_ceil(p.gcd) * p.gcd;
            if cw == 0 {
                cw = top;
            }
        }
        start = 0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn run(weights: &[u32], overloaded: &[bool], n: usize) -> Vec<usize> {
        let d = dests(weights);
        let c = counters(&overloaded.iter().map(|&o| (0, 0, o)).collect::<Vec<_>>());
        let s = slots(weights.len());
        let p = WrrParams::new(&d);
        let mut cur = WrrCursor::new(&p);
        let v = view(&d, &s, &c);
        (0..n).map(|_| pick(&v, &p, &mut cur).unwrap()).collect()
    }

    #[test]
    fn ipvs_order_4_3_2() {
        // a=0, b=1, c=2: cw=4: a; cw=3: a b; cw=2: a b c; cw=1: a b c.
        let seq = run(&[4, 3, 2], &[false; 3], 18);
        assert_eq!(seq[..9], [0, 0, 1, 0, 1, 2, 0, 1, 2]);
        assert_eq!(seq[9..], seq[..9], "the cycle repeats");
    }

    #[test]
    fn exact_proportions_over_a_cycle() {
        let weights = [6, 9, 3, 0, 12];
        // gcd 3: a cycle is (6+9+3+12)/3 = 10 picks.
        let seq = run(&weights, &[false; 5], 100);
        for (i, w) in weights.iter().enumerate() {
            assert_eq!(seq[..10].iter().filter(|&&x| x == i).count() as u32, w / 3);
            assert_eq!(seq.iter().filter(|&&x| x == i).count() as u32, w / 3 * 10);
        }
        let seq = run(&[7, 1, 3], &[false; 3], 11 * 7);
        assert_eq!(seq.iter().filter(|&&x| x == 0).count(), 49);
        assert_eq!(seq.iter().filter(|&&x| x == 1).count(), 7);
        assert_eq!(seq.iter().filter(|&&x| x == 2).count(), 21);
    }

    #[test]
    fn overloaded_heaviest_is_skipped_without_empty_passes() {
        // The weight-100 server is overloaded: the others share in 2:1.
        let seq = run(&[100, 2, 1], &[true, false, false], 30);
        assert_eq!(seq.iter().filter(|&&x| x == 1).count(), 20);
        assert_eq!(seq.iter().filter(|&&x| x == 2).count(), 10);
    }

    #[test]
    fn nothing_available() {
        let d = dests(&[0, 0]);
        let p = WrrParams::new(&d);
        assert_eq!(p.max, 0);
        let c = counters(&[(0, 0, false); 2]);
        let s = slots(2);
        assert_eq!(pick(&view(&d, &s, &c), &p, &mut WrrCursor::new(&p)), None);
        let d = dests(&[3, 2]);
        let p = WrrParams::new(&d);
        let c = counters(&[(0, 0, true); 2]);
        let mut cur = WrrCursor::new(&p);
        assert_eq!(pick(&view(&d, &s, &c), &p, &mut cur), None);
        assert_eq!(cur, WrrCursor::new(&p));
    }

    #[test]
    fn reset_realigns_level() {
        let p = WrrParams { gcd: 2, max: 9 };
        let mut cur = WrrCursor { last: Some(3), cw: 6 };
        cur.reset(&p);
        assert_eq!(cur, WrrCursor { last: None, cw: 7 });
        let mut cur = WrrCursor { last: Some(1), cw: 40 };
        cur.reset(&p);
        assert_eq!(cur.cw, 9);
    }
}
