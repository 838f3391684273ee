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
    version: CamundaVersion,
}

impl Exporting {
    pub fn new(base_url: &str, version: CamundaVersion, options: ClientOptions) -> Result<Self, ApiError> {
        Ok(Exporting {
            http: HttpClient::new(base_url, options)?,
            version,
        })
    }

    /// The mode [`Exporting::pause`] uses: soft where the version supports it (8.4.7 / 8.5.1 and later).
    pub fn pause_mode(&self) -> PauseMode {
        if self.version.supports_soft_pause() {
            PauseMode::Soft
        } else {
            PauseMode::Hard
        }
    }

    /// Pauses exporting in [`Exporting::pause_mode`] and returns that mode. Pausing an already paused
    /// exporter succeeds.
    pub async fn pause(&self) -> Result<PauseMode, ApiError> {
        let mode = self.pause_mode();
        let query: &[(&str, &str)] = match mode {
            PauseMode::Soft => &[("soft", "true")],
            PauseMode::Hard => &[],
        };
        let request = Request::new(Method::POST, &["actuator", "exporting", "pause"]).query(query);
        self.http.send(request.unwrapping_status()).await?;
        Ok(mode)
    }

    /// Resumes exporting (a hard or a soft pause). Resuming a running exporter succeeds.
    pub async fn resume(&self) -> Result<(), ApiError> {
        let request = Request::new(Method::POST, &["actuator", "exporting", "resume"]);
        self.http.send(request.unwrapping_status()).await.map(drop)
    }
}
