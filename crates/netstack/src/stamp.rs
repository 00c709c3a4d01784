//! [`Stamp`]: which state of a table's contents a reader saw, so that a worker can keep
//! what it derived from a table (a connection's next hop) until the table changes.

use std::sync::atomic::{AtomicU64, Ordering};

/// The last stamp handed out, process-wide.
static LAST: AtomicU64 = AtomicU64::new(0);

/// Names one state of a table's contents: every change gives the table a stamp no other
/// state had, and a clone keeps it (the same contents). Two tables with equal stamps
/// hold the same entries; the empty default table's stamp is the default one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Stamp(u64);

impl Stamp {
    /// A stamp no table has had.
    pub(crate) fn fresh() -> Stamp {
        Stamp(LAST.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_stamps_differ_from_each_other_and_the_default() {
        let (a, b) = (Stamp::fresh(), Stamp::fresh());
        assert_ne!(a, b);
        assert_ne!(a, Stamp::default());
    }
}
