//! Never queue (`ip_vs_nq.c`): the first available server with no active connection,
//! if there is one; otherwise shortest expected delay (`(active + 1) / weight`).

use super::Candidates;

/// An idle available server, else the sed choice.
pub(crate) fn pick(c: &Candidates<'_>) -> Option<usize> {
    let mut least: Option<(usize, u64, u64)> = None;
    for i in 0..c.len() {
        if !c.available(i) {
            continue;
        }
        if c.active(i) == 0 {
            return Some(i);
        }
        let doh = u64::from(c.active(i)) + 1;
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
    fn idle_first_else_sed() {
        // sed would choose server 0 (2/10 < 1/1); nq takes the idle one.
        let d = dests(&[10, 1, 1]);
        let c = counters(&[(1, 0, false), (0, 7, false), (0, 0, false)]);
        let s = slots(3);
        assert_eq!(pick(&view(&d, &s, &c)), Some(1), "idle = no active connection");
        // An idle but overloaded server is skipped; nobody idle -> sed: 4/10, 2/1, 3/2.
        let c = counters(&[(3, 0, false), (1, 0, false), (0, 0, true)]);
        let d = dests(&[10, 1, 2]);
        assert_eq!(pick(&view(&d, &s, &c)), Some(0));
        let c = counters(&[(30, 0, false), (1, 0, false), (2, 0, false)]);
        // 31/10 = 3.1, 2/1 = 2, 3/2 = 1.5
        assert_eq!(pick(&view(&d, &s, &c)), Some(2));
    }
}
