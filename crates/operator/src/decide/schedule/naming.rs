//! The name of a slot's `ClusterBackup` and the label that ties it to its schedule.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::api::names;

/// Longest schedule name kept whole in a child's name: the name is `<schedule>-<yyyymmddhhmm>` and
/// must stay a DNS subdomain of at most 253 characters.
pub(super) const MAX_CHILD_NAME: usize = 253;

/// The name of the `ClusterBackup` of a slot: `<schedule>-<yyyymmddhhmm>` (the slot in UTC), a valid
/// DNS subdomain of at most 253 characters. A long schedule name is cut; the label on the backup
/// still tells whose it is.
pub fn child_name(schedule: &str, slot: DateTime<Utc>) -> String {
    let suffix = slot.format("%Y%m%d%H%M").to_string();
    let prefix = names::cut(schedule, MAX_CHILD_NAME - suffix.len() - 1);
    if prefix.is_empty() {
        suffix
    } else {
        format!("{prefix}-{suffix}")
    }
}

/// The slot a child's name carries (the inverse of [`child_name`]).
pub fn slot_of(child: &str) -> Option<DateTime<Utc>> {
    let digits = child.get(child.len().checked_sub(12)?..)?;
    let naive = NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M").ok()?;
    Some(naive.and_utc())
}

/// The value of the `c8backup.dev/schedule` label on a schedule's backups.
pub fn label_value(schedule: &str) -> String {
    names::label_value(schedule)
}
