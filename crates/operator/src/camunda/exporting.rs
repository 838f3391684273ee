//! Pausing and resuming Zeebe's exporting (`/actuator/exporting/pause|resume`, `camunda-backup-api.md` §2.6).
//!
//! Through 8.9 the endpoint answers HTTP 200 with `{"body":null,"status":204,"contentType":null}` and the
//! real outcome in `status`; newer versions answer with real status codes. Both shapes are mapped to the
//! same meaning before classification, so an inner 500 (some partitions did not pause: a partial failure)
//! is the same `Transient` error as a real 500: retried a bounded number of times, then reported. The
//! documented remedy for a partial failure is exactly that: retry, or resume to revert.

use std::fmt;

use reqwest::Method;

use super::{ApiError, ClientOptions, HttpClient, Request};
use crate::api::version::CamundaVersion;

/// How exporting was paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseMode {
    /// `?soft=true`: records are still exported, but the exported position is not acknowledged, so log
    /// compaction stops and the Zeebe backup keeps everything after the frozen position.
    Soft,
    /// No records are exported until resumed.
    Hard,
}

impl PauseMode {
    /// Soft where the version supports it (8.4.7 / 8.5.1 and later), hard before.
    pub fn for_version(version: CamundaVersion) -> PauseMode {
        PauseMode::from_soft(version.supports_soft_pause())
    }

    /// The mode a plan decided on.
    pub fn from_soft(soft: bool) -> PauseMode {
        if soft { PauseMode::Soft } else { PauseMode::Hard }
    }
}

impl fmt::Display for PauseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PauseMode::Soft => "soft",
            PauseMode::Hard => "hard",
        })
    }
}

/// Client of the exporting control of one cluster (the Zeebe gateway up to 8.7, the Orchestration
/// Cluster from 8.8).
#[derive(Clone, Debug)]
pub struct Exporting {
    http: HttpClient,
}

impl Exporting {
    pub fn new(base_url: &str, options: ClientOptions) -> Result<Self, ApiError> {
        Ok(Exporting {
            http: HttpClient::new(base_url, options)?,
        })
    }

    /// Pauses exporting in `mode` (the caller's decision; a version without soft pause refuses
    /// `?soft=true`). Pausing an already paused exporter succeeds.
    pub async fn pause(&self, mode: PauseMode) -> Result<(), ApiError> {
        let query: &[(&str, &str)] = match mode {
            PauseMode::Soft => &[("soft", "true")],
            PauseMode::Hard => &[],
        };
        let request = Request::new(Method::POST, &["actuator", "exporting", "pause"]).query(query);
        self.http.send(request.unwrapping_status()).await.map(drop)
    }

    /// Resumes exporting (a hard or a soft pause). Resuming a running exporter succeeds.
    pub async fn resume(&self) -> Result<(), ApiError> {
        let request = Request::new(Method::POST, &["actuator", "exporting", "resume"]);
        self.http.send(request.unwrapping_status()).await.map(drop)
    }
}
