use super::*;
use chrono::{TimeZone, Timelike};

use super::naming::MAX_CHILD_NAME;
use proptest::prelude::*;

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
];

fn schedule() -> impl Strategy<Value = CronSchedule> {
    (0u32..60, prop::option::of(0u32..24), 0usize..ZONES.len()).prop_filter_map(
        "a valid schedule",
        |(minute, hour, zone)| {
            let hour = hour.map_or("*".to_string(), |h| h.to_string());
            CronSchedule::new(&format!("{minute} {hour} * * *"), ZONES[zone]).ok()
        },
    )
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // Two years around the DST changes of 2026, to the second.
    (0i64..2 * 366 * 86_400).prop_map(|s| {
        Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + chrono::Duration::seconds(s)
    })
}

proptest! {
    #[test]
    fn the_next_slot_is_later_and_no_slot_lies_between(schedule in schedule(), after in instant()) {
        let next = schedule.next_after(after).ok_or_else(|| TestCaseError::fail("no next slot"))?;
        prop_assert!(next > after);
        prop_assert_eq!(schedule.latest_at_or_before(next), Some(next));
        let before_next = schedule.latest_at_or_before(next - chrono::Duration::seconds(1));
        prop_assert!(before_next.is_none_or(|slot| slot <= after));
    }

    #[test]
    fn at_most_one_missed_slot_runs_and_every_other_is_counted(
        schedule in schedule(), last in instant(), minutes in 0i64..3000, deadline in 0i64..7200,
    ) {
        let now = last + chrono::Duration::minutes(minutes);
        let missed = schedule.missed(last, now);
        let triage = missed.triage(now, chrono::Duration::seconds(deadline));
        prop_assert_eq!(triage.late_total + usize::from(triage.run.is_some()), missed.total);
        if let Some(run) = triage.run {
            prop_assert_eq!(Some(&run), missed.newest.last());
            prop_assert!(now - run <= chrono::Duration::seconds(deadline) && run > last && run <= now);
        }
    }

    #[test]
    fn child_names_carry_their_slot_and_stay_within_limits(
        name in "[a-z][a-z0-9-]{0,300}", slot in instant(),
    ) {
        let child = child_name(&name, slot);
        prop_assert!(child.len() <= MAX_CHILD_NAME);
        prop_assert_eq!(slot_of(&child), slot.with_second(0).and_then(|s| s.with_nanosecond(0)));
    }
}
