//! Times as Kubernetes' types carry them (jiff), as the decision core reads them (chrono).

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;

/// The same instant as a chrono time; a time chrono cannot hold (beyond year 262143) reads as the epoch.
pub fn to_chrono(time: &Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(time.as_second(), time.subsec_nanosecond().try_into().unwrap_or(0))
        .unwrap_or_default()
}

/// A time as people read it in a condition or an Event: to the second, in UTC, with how far it is from
/// `now` — `2026-12-01T19:07:32Z (in 4h58m)`, `2026-12-01T02:30:00Z (3m0s ago)`.
pub fn describe(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let stamp = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let relative = match (time - now).to_std() {
        Ok(ahead) if ahead.as_secs() > 0 => format!("in {}", super::duration::format_short(ahead)),
        Ok(_) => "now".to_string(),
        Err(_) => {
            let behind = (now - time).to_std().unwrap_or_default();
            format!("{} ago", super::duration::format_short(behind))
        }
    };
    format!("{stamp} ({relative})")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_read_to_the_second_with_their_distance_from_now() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 1, 14, 9, 0)
            .single()
            .unwrap_or_default();
        let later = now + chrono::Duration::milliseconds(4 * 3600 * 1000 + 58 * 60 * 1000 + 268);
        assert_eq!(describe(later, now), "2026-12-01T19:07:00Z (in 4h58m)");
        let earlier = now - chrono::Duration::seconds(180);
        assert_eq!(describe(earlier, now), "2026-12-01T14:06:00Z (3m0s ago)");
        assert_eq!(describe(now, now), "2026-12-01T14:09:00Z (now)");
    }
}
