//! Cron expressions in IANA time zones: parsing, the next slot, and the slots missed since a time.

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};

use super::{MAX_COUNTED, MAX_SKIPPED_IN_STATUS, Missed};

/// Candidates a DST filter may reject in a row: a repeated hour of a per-minute schedule rejects 60
/// (Antarctica/Troll repeats two hours), so this bound is never reached by a real time zone.
const MAX_REJECTED_CANDIDATES: usize = 512;

/// Why a schedule cannot be armed. The reconciler shows it as a `Ready=False` condition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {expression:?} is not a 5-field cron expression: {message}")]
    InvalidSchedule { expression: String, message: String },
    #[error("timeZone {name:?} is not an IANA time zone name (e.g. UTC or Europe/Berlin)")]
    InvalidTimeZone { name: String },
    #[error("startingDeadline: {0}")]
    InvalidStartingDeadline(String),
}

impl ScheduleError {
    /// A bounded label for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSchedule { .. } => "InvalidSchedule",
            Self::InvalidTimeZone { .. } => "InvalidTimeZone",
            Self::InvalidStartingDeadline(_) => "InvalidStartingDeadline",
        }
    }
}

/// A parsed cron expression in its time zone.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
}

impl CronSchedule {
    /// Parses a 5-field expression and an IANA zone name (see the module docs for what is accepted).
    pub fn new(expression: &str, time_zone: &str) -> Result<Self, ScheduleError> {
        let invalid = |message: &str| ScheduleError::InvalidSchedule {
            expression: expression.to_string(),
            message: message.to_string(),
        };
        let tz = Tz::from_str(time_zone).map_err(|_| ScheduleError::InvalidTimeZone {
            name: time_zone.to_string(),
        })?;
        if expression.contains('@') {
            return Err(invalid(
                "@-macros are not accepted; write the five fields, e.g. 0 0 * * *",
            ));
        }
        if expression.split_whitespace().count() != 5 {
            return Err(invalid(
                "it needs exactly five fields: minute hour day-of-month month day-of-week",
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| invalid(&e.to_string()))?;
        let schedule = Self { cron, tz };
        // An expression that matches no date (31 February) would make every search run to croner's
        // limit; refuse it once, here. Every matchable expression matches within 8 years (29 February
        // on a Monday, say), so a search over a fixed window answers.
        let probe = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        if schedule.next_after(probe).is_none() {
            return Err(invalid("it never fires (no date matches it)"));
        }
        Ok(schedule)
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut cursor = after.with_timezone(&self.tz);
        for _ in 0..MAX_REJECTED_CANDIDATES {
            let candidate = self.cron.find_next_occurrence(&cursor, false).ok()?;
            if self.is_slot(&candidate) {
                return Some(candidate.with_timezone(&Utc));
            }
            cursor = candidate;
        }
        None
    }

    /// The last slot at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut cursor = at.with_timezone(&self.tz);
        let mut inclusive = true;
        for _ in 0..MAX_REJECTED_CANDIDATES {
            let candidate = self.cron.find_previous_occurrence(&cursor, inclusive).ok()?;
            if self.is_slot(&candidate) {
                return Some(candidate.with_timezone(&Utc));
            }
            cursor = candidate;
            inclusive = false;
        }
        None
    }

    /// Whether an instant croner found is a slot under our DST rules: its local wall-clock time matches
    /// the expression (croner moves a fixed-time slot that falls in a gap to the end of the gap; we
    /// drop it), and it is the first occurrence of that wall-clock time (croner runs interval
    /// expressions in both passes of a repeated hour; we run each wall-clock time once).
    fn is_slot(&self, candidate: &DateTime<Tz>) -> bool {
        if !self.cron.is_time_matching(candidate).unwrap_or(false) {
            return false;
        }
        let local: NaiveDateTime = candidate.naive_local();
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(_) => true,
            LocalResult::Ambiguous(first, _) => first == *candidate,
            LocalResult::None => false,
        }
    }

    /// The slots in `(last, now]`: the newest few and how many there are.
    pub fn missed(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Missed {
        let mut newest = Vec::new();
        let mut cursor = now;
        // Walk back from `now` for the newest ones (the only ones that can run or show in status)…
        while newest.len() <= MAX_SKIPPED_IN_STATUS {
            match self.latest_at_or_before(cursor) {
                Some(slot) if slot > last => {
                    newest.push(slot);
                    cursor = slot - chrono::Duration::seconds(1);
                }
                _ => break,
            }
        }
        newest.reverse();
        // …and count the rest forward from `last`, bounded.
        let total = if newest.len() <= MAX_SKIPPED_IN_STATUS {
            newest.len()
        } else {
            let mut count = 0;
            let mut cursor = last;
            while count < MAX_COUNTED {
                match self.next_after(cursor) {
                    Some(slot) if slot <= now => {
                        count += 1;
                        cursor = slot;
                    }
                    _ => break,
                }
            }
            count
        };
        Missed { newest, total }
    }
}
