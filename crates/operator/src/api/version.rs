//! Camunda versions and what they mean for the backup procedure.
//!
//! The version of a `CamundaCluster` selects the API paths, the order of the steps and whether exporting
//! can be soft-paused (see `camunda-backup-api.md` §1, §2.6 and §6).

use std::{fmt, str::FromStr};

/// A Camunda 8 version as written in `CamundaCluster.spec.version`: `8.MINOR` or `8.MINOR.PATCH`.
///
/// A version without a patch number means "the newest patch of that minor", which matters only for the
/// soft pause (8.4.7 and 8.5.1 introduced it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CamundaVersion {
    pub minor: u32,
    pub patch: Option<u32>,
}

/// The two documented backup procedures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VersionFamily {
    /// 8.2 to 8.7: separate Operate and Tasklist apps, Zeebe's `/actuator/backups`, exporting paused
    /// after the web-app snapshots.
    Separate,
    /// 8.8 and later: the Orchestration Cluster with `/actuator/backupRuntime` and `/actuator/backupHistory`,
    /// exporting paused first.
    Orchestration,
}

/// The oldest minor version whose backup API this operator drives (8.2 moved the ID into the body).
pub const OLDEST_SUPPORTED_MINOR: u32 = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseVersionError {
    #[error("Camunda version {0:?} is not of the form 8.MINOR or 8.MINOR.PATCH")]
    Malformed(String),
    #[error(
        "Camunda version {0:?} is older than 8.{OLDEST_SUPPORTED_MINOR}, the first with the backup API this operator drives"
    )]
    Unsupported(String),
}

impl FromStr for CamundaVersion {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || ParseVersionError::Malformed(s.to_string());
        let mut parts = s.split('.');
        let major = parts.next().ok_or_else(malformed)?;
        let minor = parts.next().ok_or_else(malformed)?;
        let patch = parts.next();
        if major != "8" || parts.next().is_some() {
            return Err(malformed());
        }
        let number = |p: &str| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            p.parse::<u32>().map_err(|_| malformed())
        };
        let version = CamundaVersion {
            minor: number(minor)?,
            patch: patch.map(number).transpose()?,
        };
        if version.minor < OLDEST_SUPPORTED_MINOR {
            return Err(ParseVersionError::Unsupported(s.to_string()));
        }
        Ok(version)
    }
}

impl fmt::Display for CamundaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(patch) => write!(f, "8.{}.{}", self.minor, patch),
            None => write!(f, "8.{}", self.minor),
        }
    }
}

impl CamundaVersion {
    pub fn family(&self) -> VersionFamily {
        if self.minor >= 8 {
            VersionFamily::Orchestration
        } else {
            VersionFamily::Separate
        }
    }

    /// Soft pause (`?soft=true`) exists from 8.4.7 and 8.5.1 on.
    pub fn supports_soft_pause(&self) -> bool {
        match self.minor {
            0..=3 => false,
            4 => self.patch.is_none_or(|p| p >= 7),
            5 => self.patch.is_none_or(|p| p >= 1),
            _ => true,
        }
    }

    /// From 8.9 a cluster may run Zeebe's own backup scheduler or continuous backups and then rejects
    /// explicit backup IDs; from 8.9 a backup can also be reported `DELETED`.
    pub fn may_schedule_own_backups(&self) -> bool {
        self.minor >= 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_classifies_versions() {
        let cases = [
            ("8.2", VersionFamily::Separate, false),
            ("8.4.6", VersionFamily::Separate, false),
            ("8.4.7", VersionFamily::Separate, true),
            ("8.5.0", VersionFamily::Separate, false),
            ("8.5.1", VersionFamily::Separate, true),
            ("8.5", VersionFamily::Separate, true),
            ("8.7.3", VersionFamily::Separate, true),
            ("8.8", VersionFamily::Orchestration, true),
            ("8.10.2", VersionFamily::Orchestration, true),
        ];
        for (text, family, soft) in cases {
            let v: CamundaVersion = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(v.family(), family, "{text}");
            assert_eq!(v.supports_soft_pause(), soft, "{text}");
            assert_eq!(v.to_string(), text);
        }
    }

    #[test]
    fn rejects_malformed_and_unsupported_versions() {
        for text in ["", "8", "7.9", "8.x", "8.7.", "8.7.1.2", "v8.7", "8.-1", "8.+1"] {
            assert!(
                matches!(
                    text.parse::<CamundaVersion>(),
                    Err(ParseVersionError::Malformed(_))
                ),
                "{text}"
            );
        }
        assert_eq!(
            "8.1.9".parse::<CamundaVersion>(),
            Err(ParseVersionError::Unsupported("8.1.9".into()))
        );
    }
}
