//! When a reconcile wants to look again although no watch event arrives (a deadline, a recheck).

use std::time::Duration;

/// The earliest of every wake-up a decision asked for: it can only move earlier, so no later rule can
/// overwrite a nearer deadline that an earlier rule found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requeue(Option<Duration>);

impl Requeue {
    /// Asks to look again after `after` at the latest.
    pub fn within(&mut self, after: Duration) {
        self.0 = Some(self.0.map_or(after, |current| current.min(after)));
    }

    /// The earliest wake-up asked for, if any.
    pub fn after(self) -> Option<Duration> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_earliest_wake_up_whatever_the_order() {
        let mut requeue = Requeue::default();
        assert_eq!(requeue.after(), None);
        requeue.within(Duration::from_secs(300));
        requeue.within(Duration::from_secs(20));
        requeue.within(Duration::from_secs(1800));
        assert_eq!(requeue.after(), Some(Duration::from_secs(20)));
    }
}
