//! Test support of camunda-backup-operator, never linked into the operator: the harness that gives one
//! integration test its own world (namespace, simulator, node agent, operator process), the node agent
//! that plays the kubelet for step Pods where a test is about the operator's logic, helpers for
//! talking to the test's API server, an OpenID provider for the API server's OIDC authenticator
//! (`oidc`), and simulated Camunda Helm releases as real Pods on the real node
//! (`release`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod harness;
pub mod node_agent;
pub mod oidc;
pub mod release;
pub mod support;
