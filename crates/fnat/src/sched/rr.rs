//! Round robin (`ip_vs_rr.c`): each available server in turn, starting after the last
//! one picked; weights only matter as 0 (drained) or not.

use super::Candidates;

/// The server after `last` (wrapping) that is available; `last` moves to it.
/// `None` (and `last` unchanged) when no server is available.
pub(crate) fn pick(c: &Candidates<'_>, last: &mut Option<usize>) -> Option<usize> {
    let n = c.len();
    let start = last.map_or(0, |l| l + 1);
    for k in 0..n {
        let i = (start + k) % n;
        if c.available(i) {
            *last = Some(i);
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn cycles_and_skips_unavailable() {
        let d = dests(&[1, 0, 5, 1]);
        let c = counters(&[(0, 0, false), (0, 0, false), (0, 0, false), (0, 0, true)]);
        let s = slots(4);
        let v = view(&d, &s, &c);
        let mut last = None;
        let seq: Vec<_> = (0..5).map(|_| pick(&v, &mut last).unwrap()).collect();
        assert_eq!(seq, [0, 2, 0, 2, 0]);
        let none = counters(&[(0, 0, true), (0, 0, false), (0, 0, true), (0, 0, true)]);
        let v = view(&d, &s, &none);
        assert_eq!(pick(&v, &mut last), None);
        assert_eq!(last, Some(0));
    }
}
