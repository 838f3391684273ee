//! What the shared error policy needs to know of every controller's own error type.

use std::time::Duration;

use kube::runtime::finalizer;

/// Implemented by each controller's error enum (named for the operations that fail); the error policy,
/// the metrics and the logs read failures only through it.
pub trait ReconcileError: std::error::Error + Send + Sync + 'static {
    /// A bounded label for Events and metrics.
    fn reason(&self) -> &'static str;

    /// Someone wrote the object since it was read: look again at once.
    fn is_conflict(&self) -> bool {
        false
    }

    /// An operation with a pacing of its own (deleting data, waiting for backups to go): retry after
    /// exactly this, outside the error policy's backoff.
    fn paced_retry(&self) -> Option<Duration> {
        None
    }
}

/// Whether a Kubernetes answer is a write conflict.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// What the finalizer helper's errors mean for the policy: the inner error's meaning, or for the
/// finalizer's own JSON patch a failed `test` operation (422, the cached object was older than the
/// server's), which is a conflict by another name.
pub fn finalizer_conflict<E: ReconcileError>(error: &finalizer::Error<E>) -> bool {
    match error {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.is_conflict(),
        finalizer::Error::AddFinalizer(kube::Error::Api(status))
        | finalizer::Error::RemoveFinalizer(kube::Error::Api(status)) => {
            status.code == 422 || status.code == 409
        }
        _ => false,
    }
}

pub fn finalizer_reason<E: ReconcileError>(error: &finalizer::Error<E>) -> &'static str {
    match error {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.reason(),
        _ => "FinalizerFailed",
    }
}

pub fn finalizer_paced_retry<E: ReconcileError>(error: &finalizer::Error<E>) -> Option<Duration> {
    match error {
        finalizer::Error::CleanupFailed(e) => e.paced_retry(),
        _ => None,
    }
}
