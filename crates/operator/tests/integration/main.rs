//! Tests against a real Kubernetes API server. `scripts/test.sh` starts a local control plane
//! (etcd + kube-apiserver + kube-controller-manager 1.20) and runs them with `--include-ignored`;
//! with `KUBECONFIG` set they run against that cluster instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backups;
mod chart;
mod console_api;
mod crds;
mod faults;
mod hostile;
mod leader;
mod limits;
mod real_node;
mod release;
mod restores;
mod schedules;
mod shards;
mod webhook;
mod write_budget;
