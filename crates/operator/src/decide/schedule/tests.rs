use super::*;
use crate::api::{ClusterRef, ConditionStatus, duration::SpecDuration};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn cron(expression: &str, tz: &str) -> CronSchedule {
    CronSchedule::new(expression, tz).unwrap_or_else(|e| panic!("{expression} {tz}: {e}"))
}

/// The next `count` slots after `from`.
fn slots(schedule: &CronSchedule, from: &str, count: usize) -> Vec<String> {
    let mut cursor = utc(from);
    let mut out = Vec::new();
    for _ in 0..count {
        cursor = schedule.next_after(cursor).expect("a next slot");
        out.push(cursor.to_rfc3339());
    }
    out
}

#[test]
fn parses_five_fields_and_refuses_everything_else() {
    let valid = [
        "* * * * *",
        "0 2 * * *",
        "*/15 1-5 * * MON-FRI",
        "0 0 1,15 * *",
        "0 3 L * *",
        "0 4 * * 5#2",
        "30 2 * JAN,JUL SUN",
    ];
    for expression in valid {
        assert!(CronSchedule::new(expression, "UTC").is_ok(), "{expression}");
    }
    let invalid = [
        ("", "five fields"),
        ("* * * *", "five fields"),
        ("0 * * * * *", "five fields"),
        ("0 0 * * * * 2026", "five fields"),
        ("@daily", "@-macros"),
        ("@every 1h", "@-macros"),
        ("CRON_TZ=UTC 0 2 * * *", "five fields"),
        ("60 * * * *", ""),
        ("* 24 * * *", ""),
        ("0 0 31 2 *", "never fires"),
        ("a b c d e", ""),
    ];
    for (expression, contains) in invalid {
        match CronSchedule::new(expression, "UTC") {
            Err(error @ ScheduleError::InvalidSchedule { .. }) => {
                assert_eq!(error.reason(), "InvalidSchedule");
                assert!(error.to_string().contains(contains), "{expression}: {error}");
            }
            other => panic!("{expression}: {other:?}"),
        }
    }
}

#[test]
fn time_zones_are_iana_names_from_the_binary() {
    for tz in [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
    ] {
        assert!(CronSchedule::new("0 2 * * *", tz).is_ok(), "{tz}");
    }
    for tz in ["", "CEST", "Europe/Berlln", "utc ", "+02:00", "Mars/Olympus"] {
        let error = CronSchedule::new("0 2 * * *", tz).expect_err(tz);
        assert_eq!(error.reason(), "InvalidTimeZone", "{tz}");
    }
}

#[test]
fn next_slot_in_a_time_zone() {
    let cases: [(&str, &str, &str, &[&str]); 5] = [
        (
            "0 2 * * *",
            "UTC",
            "2026-01-10T01:59:59Z",
            &["2026-01-10T02:00:00+00:00"],
        ),
        // Strictly after: a slot exactly at `after` is not next.
        (
            "0 2 * * *",
            "UTC",
            "2026-01-10T02:00:00Z",
            &["2026-01-11T02:00:00+00:00"],
        ),
        // 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
        (
            "0 2 * * *",
            "Europe/Berlin",
            "2026-01-10T00:00:00Z",
            &["2026-01-10T01:00:00+00:00"],
        ),
        (
            "0 2 * * *",
            "Europe/Berlin",
            "2026-07-10T00:00:00Z",
            &["2026-07-11T00:00:00+00:00"],
        ),
        (
            "*/20 * * * *",
            "Asia/Kolkata",
            "2026-01-10T00:05:00Z",
            &["2026-01-10T00:10:00+00:00", "2026-01-10T00:30:00+00:00"],
        ),
    ];
    for (expression, tz, from, want) in cases {
        assert_eq!(
            slots(&cron(expression, tz), from, want.len()),
            want,
            "{expression} {tz} {from}"
        );
    }
}

/// Europe/Berlin: 2026-03-29 02:00 CET jumps to 03:00 CEST; 2026-10-25 03:00 CEST falls back to
/// 02:00 CET, so 02:00–02:59 happens twice.
#[test]
fn daylight_saving_a_skipped_hour_does_not_run_a_repeated_hour_runs_once() {
    let cases: [(&str, &str, &[&str]); 6] = [
        // 02:30 does not exist on 2026-03-29: no run that day (not 03:00 instead).
        (
            "30 2 * * *",
            "2026-03-28T00:00:00Z",
            &["2026-03-28T01:30:00+00:00", "2026-03-30T00:30:00+00:00"],
        ),
        // An hourly schedule has no slot in the skipped hour either.
        (
            "30 * * * *",
            "2026-03-29T00:00:00Z",
            &["2026-03-29T00:30:00+00:00", "2026-03-29T01:30:00+00:00"],
        ),
        // 02:30 happens twice on 2026-10-25: it runs at the first (CEST, 00:30 UTC) only.
        (
            "30 2 * * *",
            "2026-10-24T12:00:00Z",
            &["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"],
        ),
        // Hourly: 01:30 CEST, 02:30 CEST, (02:30 CET skipped), 03:30 CET.
        (
            "30 * * * *",
            "2026-10-24T23:00:00Z",
            &[
                "2026-10-24T23:30:00+00:00",
                "2026-10-25T00:30:00+00:00",
                "2026-10-25T02:30:00+00:00",
            ],
        ),
        // Per minute across the fall back: 02:59 CEST is followed by 03:00 CET, one hour later.
        (
            "* * * * *",
            "2026-10-25T00:58:30Z",
            &["2026-10-25T00:59:00+00:00", "2026-10-25T02:00:00+00:00"],
        ),
        // Per minute across the spring forward: 01:59 CET is followed by 03:00 CEST.
        (
            "* * * * *",
            "2026-03-29T00:58:30Z",
            &["2026-03-29T00:59:00+00:00", "2026-03-29T01:00:00+00:00"],
        ),
    ];
    let berlin = |e| cron(e, "Europe/Berlin");
    for (expression, from, want) in cases {
        assert_eq!(
            slots(&berlin(expression), from, want.len()),
            want,
            "{expression} from {from}"
        );
    }
    // A search that starts inside the second pass of the repeated hour finds no slot there.
    assert_eq!(
        slots(&berlin("30 2 * * *"), "2026-10-25T01:10:00Z", 1),
        ["2026-10-26T01:30:00+00:00"]
    );
    // And backwards the same slots are found.
    let daily = berlin("30 2 * * *");
    assert_eq!(
        daily.latest_at_or_before(utc("2026-03-29T12:00:00Z")),
        Some(utc("2026-03-28T01:30:00Z"))
    );
    assert_eq!(
        daily.latest_at_or_before(utc("2026-10-25T12:00:00Z")),
        Some(utc("2026-10-25T00:30:00Z"))
    );
    let minutely = berlin("* * * * *");
    assert_eq!(
        minutely.latest_at_or_before(utc("2026-10-25T01:30:00Z")),
        Some(utc("2026-10-25T00:59:00Z"))
    );
}

#[test]
fn missed_slots_are_bounded_and_triaged_by_the_deadline() {
    let hour = chrono::Duration::hours(1);
    struct Case {
        what: &'static str,
        expression: &'static str,
        last: &'static str,
        now: &'static str,
        deadline: chrono::Duration,
        run: Option<&'static str>,
        late_listed: usize,
        late_total: usize,
        counted_all: bool,
    }
    let cases = [
        Case {
            what: "nothing missed",
            expression: "0 * * * *",
            last: "2026-01-10T10:00:00Z",
            now: "2026-01-10T10:59:59Z",
            deadline: hour,
            run: None,
            late_listed: 0,
            late_total: 0,
            counted_all: true,
        },
        Case {
            what: "one slot due now",
            expression: "0 * * * *",
            last: "2026-01-10T10:00:00Z",
            now: "2026-01-10T11:00:00Z",
            deadline: hour,
            run: Some("2026-01-10T11:00:00Z"),
            late_listed: 0,
            late_total: 0,
            counted_all: true,
        },
        Case {
            what: "two missed: the newer runs, the older is skipped",
            expression: "*/10 * * * *",
            last: "2026-01-10T10:00:00Z",
            now: "2026-01-10T10:25:00Z",
            deadline: hour,
            run: Some("2026-01-10T10:20:00Z"),
            late_listed: 1,
            late_total: 1,
            counted_all: true,
        },
        Case {
            what: "the newest is past the deadline: none runs",
            expression: "0 2 * * *",
            last: "2026-01-08T02:00:00Z",
            now: "2026-01-10T04:00:00Z",
            deadline: hour,
            run: None,
            late_listed: 2,
            late_total: 2,
            counted_all: true,
        },
        Case {
            what: "exactly at the deadline still runs",
            expression: "0 2 * * *",
            last: "2026-01-09T02:00:00Z",
            now: "2026-01-10T03:00:00Z",
            deadline: hour,
            run: Some("2026-01-10T02:00:00Z"),
            late_listed: 0,
            late_total: 0,
            counted_all: true,
        },
        Case {
            what: "half a day of per-minute slots: exact count, 10 listed",
            expression: "* * * * *",
            last: "2026-01-10T00:00:00Z",
            now: "2026-01-10T12:00:30Z",
            deadline: chrono::Duration::seconds(60),
            run: Some("2026-01-10T12:00:00Z"),
            late_listed: 10,
            late_total: 719,
            counted_all: true,
        },
        Case {
            what: "five years of per-minute slots: bounded",
            expression: "* * * * *",
            last: "2021-01-01T00:00:00Z",
            now: "2026-01-10T12:00:30Z",
            deadline: hour,
            run: Some("2026-01-10T12:00:00Z"),
            late_listed: 10,
            late_total: MAX_COUNTED - 1,
            counted_all: false,
        },
    ];
    for case in cases {
        let missed = cron(case.expression, "UTC").missed(utc(case.last), utc(case.now));
        assert!(missed.newest.len() <= MAX_SKIPPED_IN_STATUS + 1, "{}", case.what);
        assert!(
            missed.newest.windows(2).all(|w| w[0] < w[1]),
            "{}: ascending",
            case.what
        );
        let triage = missed.triage(utc(case.now), case.deadline);
        assert_eq!(triage.run, case.run.map(utc), "{}", case.what);
        assert_eq!(triage.late.len(), case.late_listed, "{}", case.what);
        assert_eq!(triage.late_total, case.late_total, "{}", case.what);
        assert_eq!(triage.counted_all, case.counted_all, "{}", case.what);
    }
}

#[test]
fn child_names_are_the_slot_in_utc_and_valid_dns_subdomains() {
    let slot = utc("2026-03-29T01:30:00Z");
    assert_eq!(child_name("nightly", slot), "nightly-202603290130");
    assert_eq!(slot_of("nightly-202603290130"), Some(slot));
    assert_eq!(slot_of("nightly"), None);
    assert_eq!(slot_of("manual-backup-1"), None);
    for name in [
        "a".repeat(253),
        format!("{}.-x", "b".repeat(238)),
        "c".repeat(240) + ".",
    ] {
        let child = child_name(&name, slot);
        assert!(child.len() <= 253, "{}", child.len());
        assert!(is_dns_subdomain(&child), "{child}");
        assert_eq!(slot_of(&child), Some(slot));
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[test]
fn label_values_fit_63_characters_and_stay_distinct() {
    assert_eq!(label_value("nightly"), "nightly");
    let long_a = format!("{}-a", "x".repeat(100));
    let long_b = format!("{}-b", "x".repeat(100));
    let (a, b) = (label_value(&long_a), label_value(&long_b));
    assert!(a.len() <= 63 && b.len() <= 63);
    assert_ne!(a, b);
    assert_eq!(a, label_value(&long_a), "stable");
    assert!(a.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()));
}

// --- the reconciler's decision ---

fn spec(expression: &str) -> BackupScheduleSpec {
    BackupScheduleSpec {
        cluster_ref: ClusterRef { name: "c1".into() },
        schedule: expression.into(),
        time_zone: "UTC".into(),
        suspend: false,
        starting_deadline: SpecDuration::new("1h"),
        successful_backups_history_limit: 3,
        failed_backups_history_limit: 1,
    }
}

fn status_at(last: &str) -> BackupScheduleStatus {
    BackupScheduleStatus {
        last_schedule_time: Some(utc(last)),
        ..Default::default()
    }
}

fn child(slot: &str, phase: Option<BackupPhase>) -> Child {
    let slot = utc(slot);
    Child {
        name: child_name("nightly", slot),
        phase,
        reason: (phase == Some(BackupPhase::Rejected)).then(|| reasons::RATE_LIMITED.to_string()),
        created: slot,
        completed: phase
            .filter(|p| p.is_terminal())
            .map(|_| slot + chrono::Duration::minutes(5)),
        deleting: false,
    }
}

fn run(spec: &BackupScheduleSpec, status: &BackupScheduleStatus, children: &[Child], now: &str) -> Decision {
    decide(&Input {
        name: "nightly",
        generation: Some(2),
        spec,
        status,
        children,
        cluster: ClusterState::Found,
        taken: &[],
        now: utc(now),
    })
}

fn reasons_of(decision: &Decision) -> Vec<(String, String)> {
    decision
        .skipped
        .iter()
        .map(|s| (s.time.to_rfc3339(), s.reason.clone()))
        .collect()
}

#[test]
fn first_sight_arms_for_the_next_slot_without_firing_a_past_one() {
    let decision = run(
        &spec("0 2 * * *"),
        &BackupScheduleStatus::default(),
        &[],
        "2026-01-10T02:00:30.5Z",
    );
    assert_eq!(decision.create, None);
    assert!(decision.skipped.is_empty());
    assert_eq!(decision.status.last_check_time, Some(utc("2026-01-10T02:00:30Z")));
    assert_eq!(
        decision.status.last_schedule_time, None,
        "no Last Run before a slot came"
    );
    assert_eq!(
        decision.status.next_schedule_time,
        Some(utc("2026-01-11T02:00:00Z"))
    );
    assert_eq!(decision.requeue, Some(Duration::from_millis(86_400_000 - 30_500)));
    assert_eq!(decision.status.observed_generation, Some(2));
    assert_eq!(decision.status.conditions[0].reason, "Scheduled");
}

#[test]
fn a_due_slot_fires_once_and_arms_for_the_next() {
    let spec = spec("0 2 * * *");
    let decision = run(
        &spec,
        &status_at("2026-01-09T02:00:00Z"),
        &[],
        "2026-01-10T02:00:00.010Z",
    );
    let fire = decision.create.clone().expect("fires");
    assert_eq!(fire.name, "nightly-202601100200");
    assert_eq!(decision.status.last_schedule_time, Some(fire.slot));
    assert_eq!(
        decision.status.active_backup.as_deref(),
        Some("nightly-202601100200")
    );
    assert_eq!(
        decision.status.next_schedule_time,
        Some(utc("2026-01-11T02:00:00Z"))
    );
    assert_eq!(decision.notes[0].reason, "BackupCreated");
    // The same slot seen again (a stale read, a restart before the child shows): it is ours, adopted.
    let children = [child("2026-01-10T02:00:00Z", None)];
    let again = run(
        &spec,
        &status_at("2026-01-09T02:00:00Z"),
        &children,
        "2026-01-10T02:00:05Z",
    );
    assert_eq!(again.create, None);
    assert!(again.skipped.is_empty());
    assert_eq!(again.status.last_schedule_time, Some(utc("2026-01-10T02:00:00Z")));
    assert_eq!(
        again.status.active_backup.as_deref(),
        Some("nightly-202601100200")
    );
    // Once recorded, nothing happens until the next slot: same status, no write.
    let idle = run(&spec, &decision.status, &children, "2026-01-10T02:00:07Z");
    assert_eq!(idle.create, None);
    assert_eq!(idle.status, decision.status);
    assert!(idle.notes.is_empty());
}

#[test]
fn slot_skips_by_reason() {
    struct Case {
        what: &'static str,
        suspend: bool,
        children: Vec<Child>,
        cluster: ClusterState,
        taken: Vec<String>,
        now: &'static str,
        fires: bool,
        skipped: Vec<(&'static str, &'static str)>,
    }
    let last = "2026-01-10T10:00:00Z";
    let cases = [
        Case {
            what: "downtime over two slots: the newer runs, the older is recorded",
            suspend: false,
            children: vec![],
            cluster: ClusterState::Found,
            taken: vec![],
            now: "2026-01-10T10:20:30Z",
            fires: true,
            skipped: vec![("2026-01-10T10:10:00+00:00", reasons::MISSED_DEADLINE)],
        },
        Case {
            what: "suspended: every passing slot is recorded as Suspended",
            suspend: true,
            children: vec![],
            cluster: ClusterState::Found,
            taken: vec![],
            now: "2026-01-10T10:20:30Z",
            fires: false,
            skipped: vec![
                ("2026-01-10T10:10:00+00:00", reasons::SUSPENDED),
                ("2026-01-10T10:20:00+00:00", reasons::SUSPENDED),
            ],
        },
        Case {
            what: "a previous run is still active",
            suspend: false,
            children: vec![child("2026-01-10T10:00:00Z", Some(BackupPhase::Running))],
            cluster: ClusterState::Found,
            taken: vec![],
            now: "2026-01-10T10:10:00Z",
            fires: false,
            skipped: vec![("2026-01-10T10:10:00+00:00", reasons::PREVIOUS_RUN_ACTIVE)],
        },
        Case {
            what: "a finished previous run does not block; a failed one neither",
            suspend: false,
            children: vec![
                child("2026-01-10T09:50:00Z", Some(BackupPhase::Completed)),
                child("2026-01-10T10:00:00Z", Some(BackupPhase::Failed)),
            ],
            cluster: ClusterState::Found,
            taken: vec![],
            now: "2026-01-10T10:10:00Z",
            fires: true,
            skipped: vec![],
        },
        Case {
            what: "a refused backup is recorded as RateLimited and the next slot still fires",
            suspend: false,
            children: vec![child("2026-01-10T10:00:00Z", Some(BackupPhase::Rejected))],
            cluster: ClusterState::Found,
            taken: vec![],
            now: "2026-01-10T10:10:00Z",
            fires: true,
            skipped: vec![("2026-01-10T10:00:00+00:00", reasons::RATE_LIMITED)],
        },
        Case {
            what: "the cluster does not exist",
            suspend: false,
            children: vec![],
            cluster: ClusterState::Missing,
            taken: vec![],
            now: "2026-01-10T10:10:00Z",
            fires: false,
            skipped: vec![("2026-01-10T10:10:00+00:00", reasons::CLUSTER_NOT_FOUND)],
        },
        Case {
            what: "a restore replaces the cluster's data",
            suspend: false,
            children: vec![],
            cluster: ClusterState::Restoring("back-to-monday".into()),
            taken: vec![],
            now: "2026-01-10T10:10:00Z",
            fires: false,
            skipped: vec![("2026-01-10T10:10:00+00:00", reasons::RESTORE_IN_PROGRESS)],
        },
        Case {
            what: "a foreign object holds the slot's name",
            suspend: false,
            children: vec![],
            cluster: ClusterState::Found,
            taken: vec!["nightly-202601101010".into()],
            now: "2026-01-10T10:10:00Z",
            fires: false,
            skipped: vec![("2026-01-10T10:10:00+00:00", reasons::NAME_CONFLICT)],
        },
    ];
    for case in cases {
        let mut spec = spec("*/10 * * * *");
        spec.suspend = case.suspend;
        let status = status_at(last);
        let decision = decide(&Input {
            name: "nightly",
            generation: Some(1),
            spec: &spec,
            status: &status,
            children: &case.children,
            cluster: case.cluster.clone(),
            taken: &case.taken,
            now: utc(case.now),
        });
        assert_eq!(decision.create.is_some(), case.fires, "{}", case.what);
        let want: Vec<(String, String)> = case
            .skipped
            .iter()
            .map(|(t, r)| (t.to_string(), r.to_string()))
            .collect();
        assert_eq!(reasons_of(&decision), want, "{}", case.what);
        assert_eq!(
            decision
                .notes
                .iter()
                .filter(|n| n.reason == "SlotSkipped")
                .count(),
            usize::from(!case.skipped.is_empty()) + usize::from(case.skipped.len() > 1 && !case.suspend),
            "{}: one Event per reason",
            case.what
        );
        // lastScheduleTime is the newest handled slot, run or skipped.
        let newest = utc(case.now).timestamp() / 600 * 600;
        assert_eq!(
            decision.status.last_schedule_time.map(|t| t.timestamp()),
            Some(newest),
            "{}",
            case.what
        );
        assert_eq!(
            decision.status.next_schedule_time.map(|t| t.timestamp()),
            Some(newest + 600)
        );
    }
}

#[test]
fn a_rate_limited_slot_is_recorded_once() {
    let spec = spec("*/10 * * * *");
    let children = [child("2026-01-10T10:00:00Z", Some(BackupPhase::Rejected))];
    let first = run(
        &spec,
        &status_at("2026-01-10T10:00:00Z"),
        &children,
        "2026-01-10T10:00:02Z",
    );
    assert_eq!(reasons_of(&first).len(), 1);
    let second = run(&spec, &first.status, &children, "2026-01-10T10:00:03Z");
    assert!(second.skipped.is_empty(), "{:?}", second.skipped);
    assert!(second.notes.is_empty());
    // Pushed out of a full list by newer skips: still not recorded again.
    let mut full = first.status.clone();
    full.skipped_slots = (1..=10)
        .map(|i| SkippedSlot {
            time: utc("2026-01-10T10:00:00Z") + chrono::Duration::minutes(10 * i),
            reason: reasons::PREVIOUS_RUN_ACTIVE.into(),
        })
        .collect();
    full.last_schedule_time = Some(utc("2026-01-10T11:40:00Z"));
    let third = run(&spec, &full, &children, "2026-01-10T11:40:03Z");
    assert!(third.skipped.is_empty(), "{:?}", third.skipped);
}

#[test]
fn skipped_slots_keep_the_newest_ten_in_order() {
    let mut spec = spec("* * * * *");
    spec.suspend = true;
    let decision = run(
        &spec,
        &status_at("2026-01-10T10:00:00Z"),
        &[],
        "2026-01-10T10:30:00Z",
    );
    let times: Vec<DateTime<Utc>> = decision.status.skipped_slots.iter().map(|s| s.time).collect();
    assert_eq!(times.len(), MAX_SKIPPED_IN_STATUS);
    assert_eq!(times.last(), Some(&utc("2026-01-10T10:30:00Z")));
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(decision.skipped_counts, [(reasons::SUSPENDED, 30)]);
    assert_eq!(decision.status.conditions[0].reason, "Suspended");
}

#[test]
fn history_limits_trim_only_terminal_backups_oldest_first() {
    let mut spec = spec("*/10 * * * *");
    spec.successful_backups_history_limit = 2;
    spec.failed_backups_history_limit = 1;
    let mut deleting = child("2026-01-10T08:50:00Z", Some(BackupPhase::Completed));
    deleting.deleting = true;
    let children = [
        deleting,
        child("2026-01-10T09:00:00Z", Some(BackupPhase::Completed)),
        child("2026-01-10T09:10:00Z", Some(BackupPhase::Failed)),
        child("2026-01-10T09:20:00Z", Some(BackupPhase::Completed)),
        child("2026-01-10T09:30:00Z", Some(BackupPhase::Rejected)),
        child("2026-01-10T09:40:00Z", Some(BackupPhase::Completed)),
        child("2026-01-10T09:50:00Z", Some(BackupPhase::Completed)),
        child("2026-01-10T10:00:00Z", Some(BackupPhase::Running)),
    ];
    let decision = run(
        &spec,
        &status_at("2026-01-10T10:00:00Z"),
        &children,
        "2026-01-10T10:05:00Z",
    );
    assert_eq!(
        decision.trim,
        [
            "nightly-202601100910",
            "nightly-202601100900",
            "nightly-202601100920"
        ],
        "failed beyond 1, completed beyond 2; never the running or the deleting one"
    );
    assert_eq!(
        decision.status.last_successful_backup.as_deref(),
        Some("nightly-202601100950")
    );
    assert_eq!(
        decision.status.active_backup.as_deref(),
        Some("nightly-202601101000")
    );
    // Zero limits trim every terminal backup, still never an active one.
    spec.successful_backups_history_limit = 0;
    spec.failed_backups_history_limit = 0;
    let all = run(
        &spec,
        &status_at("2026-01-10T10:00:00Z"),
        &children,
        "2026-01-10T10:05:00Z",
    );
    assert_eq!(all.trim.len(), 6);
    assert!(!all.trim.contains(&"nightly-202601101000".to_string()));
}

#[test]
fn an_invalid_spec_is_a_condition_not_a_crash() {
    let cases = [
        ("0 2 * *", "UTC", "1h", "InvalidSchedule"),
        ("0 2 * * *", "Europe/Nowhere", "1h", "InvalidTimeZone"),
        ("0 2 * * *", "UTC", "soon", "InvalidStartingDeadline"),
    ];
    for (expression, tz, deadline, reason) in cases {
        let mut spec = spec(expression);
        spec.time_zone = tz.into();
        spec.starting_deadline = SpecDuration::new(deadline);
        let status = status_at("2026-01-09T02:00:00Z");
        let decision = run(&spec, &status, &[], "2026-01-10T02:00:00Z");
        assert_eq!(decision.create, None);
        assert_eq!(decision.requeue, None, "wait for a spec change");
        let ready = &decision.status.conditions[0];
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::False, reason)
        );
        assert_eq!(decision.status.next_schedule_time, None);
        assert_eq!(
            decision.status.last_schedule_time, status.last_schedule_time,
            "history kept"
        );
        assert_eq!(decision.notes.len(), 1);
        assert_eq!(decision.notes[0].reason, "InvalidSchedule");
        // Seen again: no second Event.
        let again = run(&spec, &decision.status, &[], "2026-01-10T02:05:00Z");
        assert!(again.notes.is_empty());
        assert_eq!(again.status, decision.status);
    }
}

#[test]
fn last_success_survives_trimming() {
    let spec = spec("*/10 * * * *");
    let mut status = status_at("2026-01-10T10:00:00Z");
    status.last_successful_backup = Some("nightly-202601100950".into());
    status.last_successful_time = Some(utc("2026-01-10T09:55:00Z"));
    let older = [child("2026-01-10T09:00:00Z", Some(BackupPhase::Completed))];
    let decision = run(&spec, &status, &older, "2026-01-10T10:05:00Z");
    assert_eq!(
        decision.status.last_successful_backup.as_deref(),
        Some("nightly-202601100950")
    );
}
