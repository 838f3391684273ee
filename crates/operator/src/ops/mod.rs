//! What runs around the controllers: probes and metrics over HTTP, leader election, logging.

pub mod http;
pub mod leadership;
pub mod metrics;
pub mod telemetry;
pub mod tls;
