//! The `CamundaCluster` reconciler. (Being written.)

use std::sync::Arc;

use kube::runtime::Controller;

use super::Context;
use crate::crd::CamundaCluster;

pub(super) async fn run(
    _controller: Controller<CamundaCluster>,
    _ctx: Arc<Context>,
    _namespace: Option<&str>,
) {
}
