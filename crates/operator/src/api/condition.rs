//! Kubernetes-style conditions (the shape of `metav1.Condition`), shared by the three kinds.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One aspect of an object's state, as `kubectl describe` and `kubectl wait --for=condition=` read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Type of the condition, e.g. `Ready`, `Progressing`, `RateLimited`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether the condition holds.
    pub status: ConditionStatus,
    /// Machine-readable reason in CamelCase, e.g. `StepFailed`.
    pub reason: String,
    /// Human-readable details.
    #[serde(default)]
    pub message: String,
    /// When the status last changed.
    pub last_transition_time: DateTime<Utc>,
    /// The `metadata.generation` the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition observed at `now` for `observed_generation`.
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: &str,
        now: DateTime<Utc>,
        observed_generation: Option<i64>,
    ) -> Self {
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
            last_transition_time: now,
            observed_generation,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// Sets a condition in a list, keeping `lastTransitionTime` when the status did not change, as the
/// Kubernetes API conventions ask. Returns whether anything changed, so callers emit Events only on
/// transitions.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status == new.status {
                new.last_transition_time = existing.last_transition_time;
            }
            let changed = *existing != new;
            *existing = new;
            changed
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// Where an object that runs to an end stands, as its `Ready` and `Progressing` conditions say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Running,
    Succeeded,
    /// Failed, refused, or waiting before it runs.
    Stopped,
}

/// Sets `Ready` (true once it succeeded) and `Progressing` (true while it runs) together, with one
/// reason and message, as `ClusterBackup` and `ClusterRestore` report their phase.
pub fn set_progress(
    conditions: &mut Vec<Condition>,
    progress: Progress,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
    observed_generation: Option<i64>,
) {
    let holds = |yes: bool| {
        if yes {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    };
    for (type_, status) in [
        ("Ready", holds(progress == Progress::Succeeded)),
        ("Progressing", holds(progress == Progress::Running)),
    ] {
        set_condition(
            conditions,
            Condition::new(type_, status, reason, message, now, observed_generation),
        );
    }
}

/// The schema of a conditions list: a map keyed by `type`, so server-side apply merges by type.
pub fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = <Vec<Condition>>::json_schema(generator);
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn condition(status: ConditionStatus, reason: &str, at: i64) -> Condition {
        Condition {
            type_: "Ready".into(),
            status,
            reason: reason.into(),
            message: String::new(),
            last_transition_time: Utc.timestamp_opt(at, 0).single().unwrap_or_default(),
            observed_generation: Some(1),
        }
    }

    #[test]
    fn keeps_transition_time_when_status_is_unchanged() {
        let mut list = vec![condition(ConditionStatus::True, "A", 100)];
        assert!(set_condition(
            &mut list,
            condition(ConditionStatus::True, "B", 200)
        ));
        assert_eq!(list[0].last_transition_time.timestamp(), 100);
        assert_eq!(list[0].reason, "B");
        assert!(!set_condition(
            &mut list,
            condition(ConditionStatus::True, "B", 300)
        ));
        assert!(set_condition(
            &mut list,
            condition(ConditionStatus::False, "C", 400)
        ));
        assert_eq!(list[0].last_transition_time.timestamp(), 400);
        assert_eq!(list.len(), 1);
    }
}
