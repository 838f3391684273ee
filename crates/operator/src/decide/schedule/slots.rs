//! The slots missed since the last handled one: which still runs and which are too late.

use chrono::{DateTime, Utc};

use super::MAX_COUNTED;

/// The slots between the last handled one and now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missed {
    /// The newest of them, oldest first, at most `MAX_SKIPPED_IN_STATUS + 1`.
    pub newest: Vec<DateTime<Utc>>,
    /// How many there are, counted up to [`MAX_COUNTED`] (then it means "at least").
    pub total: usize,
}

impl Missed {
    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }

    /// The newest slot, which runs if it is within `deadline`; every other one is skipped with
    /// `MissedDeadline`.
    pub fn triage(&self, now: DateTime<Utc>, deadline: chrono::Duration) -> Triage {
        let Some(&newest) = self.newest.last() else {
            return Triage {
                counted_all: true,
                ..Triage::default()
            };
        };
        let within = now - newest <= deadline;
        let listed_late: Vec<DateTime<Utc>> = if within {
            self.newest[..self.newest.len() - 1].to_vec()
        } else {
            self.newest.clone()
        };
        let late_total = if within {
            self.total.saturating_sub(1)
        } else {
            self.total
        };
        Triage {
            run: within.then_some(newest),
            late: listed_late,
            late_total,
            counted_all: self.total < MAX_COUNTED,
        }
    }
}

/// What to do with the missed slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Triage {
    /// The slot that still runs (the newest, within `startingDeadline`).
    pub run: Option<DateTime<Utc>>,
    /// The newest of the slots that are too late, oldest first.
    pub late: Vec<DateTime<Utc>>,
    /// How many slots are too late in all.
    pub late_total: usize,
    /// False when the count stopped at [`MAX_COUNTED`].
    pub counted_all: bool,
}
