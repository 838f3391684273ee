//! Durations written in specs as strings such as `5h`, `30m` or `1h30m`.
//!
//! The CRD schema constrains them with a pattern, but Kubernetes 1.20 and GitOps tools that bypass
//! validation can still hand us anything, so every duration is parsed again here and an invalid one
//! becomes a clear condition on the object instead of a crash.

use std::{borrow::Cow, fmt, str::FromStr, time::Duration};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The schema pattern: one or more `<digits><unit>` groups, units `ms`, `s`, `m`, `h`, `d`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h|d))+$";

/// A duration as written in a spec. It keeps the user's text (so status and `kubectl get` show what was
/// written) and parses on use.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpecDuration(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{text:?} is not a duration such as 30s, 5m, 1h30m or 2d")]
pub struct InvalidDuration {
    pub text: String,
}

impl SpecDuration {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parsed duration; also checks the text against [`DURATION_PATTERN`] so that what the
    /// server would refuse is refused here too.
    pub fn to_std(&self) -> Result<Duration, InvalidDuration> {
        parse(&self.0)
    }

    /// Like [`Self::to_std`], as a `chrono` duration for arithmetic with timestamps.
    pub fn to_chrono(&self) -> Result<chrono::Duration, InvalidDuration> {
        let std = self.to_std()?;
        chrono::Duration::from_std(std).map_err(|_| InvalidDuration { text: self.0.clone() })
    }
}

impl fmt::Display for SpecDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SpecDuration {
    type Err = InvalidDuration;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)?;
        Ok(Self(s.to_string()))
    }
}

/// Parses `1h30m`-style text. `humantime` does the arithmetic; the shape check keeps its more liberal
/// syntax (spaces, `min`, `hours`) out, because the API server's pattern does not allow it.
pub fn parse(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration {
        text: text.to_string(),
    };
    if !has_duration_shape(text) {
        return Err(invalid());
    }
    humantime::parse_duration(text).map_err(|_| invalid())
}

/// The same language as [`DURATION_PATTERN`], without pulling a regex engine into the binary.
fn has_duration_shape(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(unit) => rest = &rest[unit.len()..],
            None => return false,
        }
    }
    true
}

/// Formats a duration the way a user reads it in `kubectl get`: `45s`, `3m12s`, `2h5m`.
pub fn format_short(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

impl JsonSchema for SpecDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 32,
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_durations() {
        let cases = [
            ("30s", 30),
            ("5m", 300),
            ("5h", 18_000),
            ("1h30m", 5_400),
            ("2d", 172_800),
            ("0s", 0),
        ];
        for (text, secs) in cases {
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn rejects_what_the_schema_pattern_rejects() {
        for text in ["", "5", "h", "5 h", "5hours", "-5m", "1.5h", "5m ", "5y", "PT5M"] {
            assert!(parse(text).is_err(), "{text:?} should be invalid");
        }
    }

    #[test]
    fn formats_for_printer_columns() {
        assert_eq!(format_short(Duration::from_secs(45)), "45s");
        assert_eq!(format_short(Duration::from_secs(192)), "3m12s");
        assert_eq!(format_short(Duration::from_secs(7_500)), "2h5m");
    }
}
