//! The simulator's side of the simulated brokers (`camunda-simulator broker`): they register under their
//! node id, a Zeebe backup stores what they hold, and the apps' data advancing advances their
//! partitions too.

use std::collections::BTreeMap;

use serde_json::json;

use crate::state::{BrokerView, ClusterState, StoredPartitions};

/// The registered brokers of a cluster as `(node id, url)`.
pub fn registered(cluster: &ClusterState) -> Vec<(u32, String)> {
    cluster
        .brokers
        .iter()
        .map(|(node, broker)| (*node, broker.url.clone()))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerCallError {
    #[error("cannot reach broker {node} at {url}: {source}")]
    Unreachable {
        node: u32,
        url: String,
        source: reqwest::Error,
    },
    #[error("the brokers disagree on the partition count ({first} and {second})")]
    PartitionCounts { first: u32, second: u32 },
}

/// Reads every broker's partitions, as Zeebe's backup asks every partition's leader; `None` when no
/// broker is registered. Replicas of one partition hold the same state, so the lowest node id's copy
/// is taken.
pub async fn capture(
    http: &reqwest::Client,
    brokers: &[(u32, String)],
) -> Result<Option<StoredPartitions>, BrokerCallError> {
    let mut stored: Option<StoredPartitions> = None;
    for (node, url) in brokers {
        let unreachable = |source| BrokerCallError::Unreachable {
            node: *node,
            url: url.clone(),
            source,
        };
        let view: BrokerView = http
            .get(format!("{url}/state"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)?;
        let into = stored.get_or_insert_with(|| StoredPartitions {
            partition_count: view.partition_count,
            partitions: BTreeMap::new(),
        });
        if into.partition_count != view.partition_count {
            return Err(BrokerCallError::PartitionCounts {
                first: into.partition_count,
                second: view.partition_count,
            });
        }
        for (partition, state) in view.partitions {
            into.partitions.entry(partition).or_insert(state);
        }
    }
    Ok(stored)
}

/// Tells every broker that `records` more were written to each of its partitions.
pub async fn advance(
    http: &reqwest::Client,
    brokers: &[(u32, String)],
    records: u64,
) -> Result<(), BrokerCallError> {
    for (node, url) in brokers {
        http.post(format!("{url}/advance"))
            .json(&json!({ "records": records }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|source| BrokerCallError::Unreachable {
                node: *node,
                url: url.clone(),
                source,
            })?;
    }
    Ok(())
}
