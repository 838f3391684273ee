//! camunda-backup-operator: consistent, rate-limited, retained backups of Camunda 8 clusters on Kubernetes.
//!
//! The modules are layers; each depends only on the ones above it in this list (see ARCHITECTURE.md):
//! - [`api`]: the resource types, their schema and small pure helpers on them;
//! - [`decide`]: the decisions, pure functions of what was observed and `now` (no client, no clock,
//!   no async runtime);
//! - [`camunda`]: the clients of the Camunda backup APIs;
//! - [`k8s`]: the Kubernetes adapters (Jobs built and observed, status writes);
//! - [`ops`]: what runs beside the controllers (HTTP probes and metrics, leader election, logging);
//! - [`controller`]: the reconcilers, thin shells of observe → decide → act → record;
//! - [`console`]: the `api` subcommand, an HTTPS endpoint compatible with Camunda's Console API
//!   backup operations;
//! - [`admission`]: the validating admission webhook, which answers creations with `decide::admission`;
//! - the binary's roles: [`step`] (what a snapshot Job runs), [`empty_data`] (what a broker restore Job
//!   runs first), [`crdgen`], [`cli`].

pub mod admission;
pub mod api;
pub mod camunda;
pub mod cli;
pub mod console;
pub mod controller;
pub mod crdgen;
pub mod decide;
pub mod empty_data;
mod k8s;
pub mod ops;
pub mod step;
