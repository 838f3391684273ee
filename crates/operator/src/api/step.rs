//! The contract between the step program (what a snapshot Job runs) and the controller that reads its
//! Pods back.

/// The exit code of a step whose component gave a definite answer: the backup is FAILED (or
/// INCOMPLETE, INCOMPATIBLE, PARTIAL), the request was refused, or the step's deadline passed. The
/// step retries transient errors (connection failures, 5xx, timeouts) itself until its deadline, so a
/// new Pod could only repeat the answer: the controller fails the step at once instead of waiting for
/// the Job's retries. Any other failure of a Pod (a crash, a lost node) is the Job's to retry.
pub const DEFINITE_FAILURE_EXIT_CODE: u8 = 3;
