//! Times as Kubernetes' types carry them (jiff), as the decision core reads them (chrono).

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;

/// The same instant as a chrono time; a time chrono cannot hold (beyond year 262143) reads as the epoch.
pub fn to_chrono(time: &Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(time.as_second(), time.subsec_nanosecond().try_into().unwrap_or(0))
        .unwrap_or_default()
}
