//! camunda-backup-operator: consistent, rate-limited, retained backups of Camunda 8 clusters on Kubernetes.

pub mod camunda;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod crdgen;
pub mod deletion;
pub mod duration;
pub mod http;
pub mod jobs;
pub mod leadership;
pub mod limits;
pub mod metrics;
pub mod plan;
pub mod schedule;
pub mod simulator;
pub mod step;
pub mod telemetry;
pub mod version;
