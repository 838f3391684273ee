//! The test node agent as a program, for the demo (`scripts/demo.sh`): plays the kubelet for the
//! operator's step Pods in one namespace of a control plane without nodes. Development only.
//!
//!   cargo run -p c8b-testkit --bin node-agent -- NAMESPACE PATH/TO/camunda-backup-operator
//!
//! Uses `KUBECONFIG`; runs until interrupted.

use std::{path::PathBuf, process::ExitCode};

use c8b_testkit::node_agent;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(namespace), Some(binary)) = (args.next(), args.next()) else {
        eprintln!("usage: node-agent NAMESPACE PATH/TO/camunda-backup-operator");
        return ExitCode::from(2);
    };
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("node-agent: cannot connect to Kubernetes (KUBECONFIG): {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("node-agent: running step Pods in namespace {namespace} with {binary}");
    let agent = node_agent::spawn(client, &namespace, PathBuf::from(binary));
    tokio::select! {
        result = agent => {
            eprintln!("node-agent: the Pod watch ended: {result:?}");
            ExitCode::FAILURE
        }
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
    }
}
