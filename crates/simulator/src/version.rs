//! The simulator's own table of Camunda releases: what each simulated version serves and how it
//! answers. Written from Camunda's documentation (`camunda-backup-api.md`), deliberately not shared with
//! the operator, so that a wrong version boundary in the operator shows up as a failing contract test
//! instead of being mirrored here.

use std::{fmt, str::FromStr};

/// A simulated Camunda release, `8.MINOR[.PATCH]`. Without a patch number the simulator behaves as the
/// newest patch of that minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    pub minor: u32,
    pub patch: Option<u32>,
}

/// The first patch of a minor that serves `POST /actuator/exporting/pause?soft=true` (8.4 D-BR, 8.5
/// D-BK); minors after the last entry have it from their first patch, minors before the first never.
const SOFT_PAUSE_SINCE: [(u32, u32); 2] = [(4, 7), (5, 1)];
/// From this minor on, Zeebe, Operate, Tasklist and Identity are one Orchestration Cluster app with
/// `/actuator/backupRuntime` and `/actuator/backupHistory`.
const ORCHESTRATION_CLUSTER_SINCE: u32 = 8;
/// From this minor on, a cluster may run its own backup scheduler (or continuous backups) and refuses
/// explicit IDs, and a Zeebe backup may be reported `DELETED`.
const OWN_SCHEDULER_SINCE: u32 = 9;
/// Up to this minor, the exporting endpoints answer HTTP 200 with the real status wrapped in the body.
const WRAPPED_EXPORTING_ANSWERS_UNTIL: u32 = 9;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a Camunda 8 release (8.MINOR or 8.MINOR.PATCH)")]
pub struct NotARelease(String);

impl FromStr for Release {
    type Err = NotARelease;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || NotARelease(text.to_string());
        let number = |part: &str| -> Result<u32, NotARelease> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse().map_err(|_| invalid())
        };
        match text.split('.').collect::<Vec<_>>().as_slice() {
            ["8", minor] => Ok(Release {
                minor: number(minor)?,
                patch: None,
            }),
            ["8", minor, patch] => Ok(Release {
                minor: number(minor)?,
                patch: Some(number(patch)?),
            }),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(patch) => write!(f, "8.{}.{patch}", self.minor),
            None => write!(f, "8.{}", self.minor),
        }
    }
}

impl Release {
    /// `8.MINOR.PATCH`, patch 0 when none is given: the form that index names carry.
    pub fn with_patch(&self) -> String {
        format!("8.{}.{}", self.minor, self.patch.unwrap_or(0))
    }

    pub fn is_orchestration_cluster(&self) -> bool {
        self.minor >= ORCHESTRATION_CLUSTER_SINCE
    }

    pub fn serves_soft_pause(&self) -> bool {
        let Some(&(last_minor, _)) = SOFT_PAUSE_SINCE.last() else {
            return false;
        };
        if self.minor > last_minor {
            return true;
        }
        SOFT_PAUSE_SINCE
            .iter()
            .find(|(minor, _)| *minor == self.minor)
            .is_some_and(|(_, first_patch)| self.patch.is_none_or(|patch| patch >= *first_patch))
    }

    pub fn may_run_own_scheduler(&self) -> bool {
        self.minor >= OWN_SCHEDULER_SINCE
    }

    pub fn wraps_exporting_answers(&self) -> bool {
        self.minor <= WRAPPED_EXPORTING_ANSWERS_UNTIL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_serve_what_the_documentation_says() {
        // (release, orchestration cluster, soft pause, own scheduler, wrapped exporting answers)
        let table = [
            ("8.2", false, false, false, true),
            ("8.4.6", false, false, false, true),
            ("8.4.7", false, true, false, true),
            ("8.5.0", false, false, false, true),
            ("8.5.1", false, true, false, true),
            ("8.6.0", false, true, false, true),
            ("8.7.3", false, true, false, true),
            ("8.8.0", true, true, false, true),
            ("8.9.1", true, true, true, true),
            ("8.10.0", true, true, true, false),
        ];
        for (text, orchestration, soft, own, wrapped) in table {
            let release: Release = text.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(release.to_string(), text);
            assert_eq!(release.is_orchestration_cluster(), orchestration, "{text}");
            assert_eq!(release.serves_soft_pause(), soft, "{text}");
            assert_eq!(release.may_run_own_scheduler(), own, "{text}");
            assert_eq!(release.wraps_exporting_answers(), wrapped, "{text}");
        }
    }

    #[test]
    fn only_camunda_8_releases_parse() {
        for text in ["", "8", "7.9", "8.x", "8.7.", "8.7.1.2", "v8.7"] {
            assert!(text.parse::<Release>().is_err(), "{text}");
        }
    }
}
