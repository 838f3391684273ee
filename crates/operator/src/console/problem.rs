//! RFC 7807 problem bodies, and the pure decision whether a create is refused.
//!
//! Every refusal is answered with 409 Conflict: the request conflicts with the cluster's state (a
//! backup or a restore runs, the rate limit's window is open). Not 429 or 503: Camunda's JS SDK
//! retries both, POST included, and sleeps for any `Retry-After` without a bound, so a refusal would
//! turn into a hidden retry loop (and a replayed POST could start a backup the user no longer
//! expects). For the same reason no `Retry-After` header is sent; the time is in the body.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::dto::timestamp;
use crate::decide::limits::Turn;

/// The base of every problem `type` URI; the last segment names the rule.
pub const TYPE_BASE: &str = "https://c8backup.dev/problems/";

/// An `application/problem+json` body. `rule` and `nextAllowedAt` are extension members (RFC 7807
/// §3.2), so that a client can act on the refusal without parsing `detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: u16,
    pub title: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_allowed_at: Option<String>,
}

impl Problem {
    pub fn new(status: u16, slug: &'static str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            type_: format!("{TYPE_BASE}{slug}"),
            status,
            title: title.into(),
            detail: detail.into(),
            rule: None,
            next_allowed_at: None,
        }
    }

    fn refusal(rule: &'static str, title: &str, detail: String, next: Option<DateTime<Utc>>) -> Problem {
        Problem {
            rule: Some(rule),
            next_allowed_at: next.map(timestamp),
            ..Problem::new(409, rule, title, detail)
        }
    }
}

/// Why a create is refused at once, or `None` when the backup may start now.
///
/// `Wait` is a refusal too: SaaS has no queue of backups, and a queued backup would start at a time
/// nobody chose, usually to be rejected by the rate limit once the running one has started it anew.
/// `next_allowed`: when the rate limit allows the next backup (`None`: now, or no backup ran yet).
pub fn create_refusal(turn: &Turn, next_allowed: Option<DateTime<Utc>>) -> Option<Problem> {
    let when = |next: Option<DateTime<Utc>>| {
        next.map_or_else(
            || "once it has finished".to_string(),
            |t| format!("once it has finished, and not before {}", timestamp(t)),
        )
    };
    match turn {
        Turn::Start { .. } => None,
        Turn::Wait { reason, message } if *reason == "RestoreInProgress" => Some(Problem::refusal(
            "restore-in-progress",
            "A restore of this cluster is in progress",
            format!("{message}; a new backup is allowed {}", when(next_allowed)),
            next_allowed,
        )),
        Turn::Wait { message, .. } => Some(Problem::refusal(
            "one-at-a-time",
            "Another backup of this cluster is in progress",
            format!("{message}; a new backup is allowed {}", when(next_allowed)),
            next_allowed,
        )),
        Turn::Reject { next_allowed } => Some(Problem::refusal(
            "rate-limited",
            "The cluster's backup rate limit refuses a new backup now",
            format!(
                "one backup per minInterval of the cluster (or one more after a user deleted a finished backup); \
                 the next backup is allowed at {}",
                timestamp(*next_allowed)
            ),
            Some(*next_allowed),
        )),
    }
}

/// A create the controller refused after all (another create won the race, or the rate limit
/// rejected it): the same rules, read from the backup's status.
pub fn refused_after_create(reason: &str, message: &str, next: Option<DateTime<Utc>>) -> Problem {
    let turn = match reason {
        "RateLimited" => Turn::Reject {
            next_allowed: next.unwrap_or_default(),
        },
        "RestoreInProgress" => Turn::Wait {
            reason: "RestoreInProgress",
            message: message.to_string(),
        },
        _ => Turn::Wait {
            reason: "WaitingForRunningBackup",
            message: message.to_string(),
        },
    };
    create_refusal(&turn, next).unwrap_or_else(|| Problem::new(409, "conflict", "Refused", message))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, hour, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn refusals_name_the_rule_and_the_next_allowed_time() {
        let wait = |reason: &'static str| Turn::Wait {
            reason,
            message: "backup b1 of this cluster is running; one backup runs at a time".into(),
        };
        // (turn, next allowed, rule, nextAllowedAt, words in detail)
        let table = [
            (Turn::Start { uses_refund: false }, None, None, None, ""),
            (Turn::Start { uses_refund: true }, Some(at(15)), None, None, ""),
            (
                Turn::Reject { next_allowed: at(15) },
                Some(at(15)),
                Some("rate-limited"),
                Some("2026-01-15T15:00:00.000Z"),
                "allowed at 2026-01-15T15:00:00.000Z",
            ),
            (
                wait("WaitingForRunningBackup"),
                Some(at(15)),
                Some("one-at-a-time"),
                Some("2026-01-15T15:00:00.000Z"),
                "b1",
            ),
            (
                wait("WaitingForOlderBackup"),
                None,
                Some("one-at-a-time"),
                None,
                "once it has finished",
            ),
            (
                wait("RestoreInProgress"),
                None,
                Some("restore-in-progress"),
                None,
                "once it has finished",
            ),
        ];
        for (turn, next, rule, next_text, detail) in table {
            let problem = create_refusal(&turn, next);
            assert_eq!(problem.as_ref().and_then(|p| p.rule), rule, "{turn:?}");
            assert_eq!(
                problem.as_ref().and_then(|p| p.next_allowed_at.as_deref()),
                next_text,
                "{turn:?}"
            );
            if let Some(problem) = problem {
                assert_eq!(problem.status, 409, "never 429/503, which clients retry");
                assert!(problem.detail.contains(detail), "{}", problem.detail);
                assert_eq!(
                    problem.type_,
                    format!("{TYPE_BASE}{}", problem.rule.unwrap_or_default())
                );
            }
        }
    }

    #[test]
    fn a_problem_has_the_rfc_7807_members() {
        let problem = create_refusal(&Turn::Reject { next_allowed: at(15) }, Some(at(15))).expect("refusal");
        let value = serde_json::to_value(problem).expect("json");
        assert_eq!(value["type"], json!("https://c8backup.dev/problems/rate-limited"));
        assert_eq!(value["status"], json!(409));
        assert_eq!(value["nextAllowedAt"], json!("2026-01-15T15:00:00.000Z"));
        assert!(value["title"].is_string() && value["detail"].is_string());
        let plain = serde_json::to_value(Problem::new(404, "not-found", "Not found", "x")).expect("json");
        assert_eq!(
            plain.as_object().map(|o| o.len()),
            Some(4),
            "no empty extension members"
        );
    }

    #[test]
    fn a_refusal_after_the_create_reads_the_backups_reason() {
        assert_eq!(
            refused_after_create("RateLimited", "", Some(at(15))).rule,
            Some("rate-limited")
        );
        assert_eq!(
            refused_after_create("WaitingForRunningBackup", "m", None).rule,
            Some("one-at-a-time")
        );
        assert_eq!(
            refused_after_create("RestoreInProgress", "m", None).rule,
            Some("restore-in-progress")
        );
    }
}
