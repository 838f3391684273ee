//! The `BackupSchedule` reconciler. (Being written.)

use std::sync::Arc;

use super::Context;

pub(super) async fn run(_ctx: Arc<Context>, _namespace: Option<&str>) {}
