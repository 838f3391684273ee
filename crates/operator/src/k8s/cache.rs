//! What the operator keeps of each watched kind. Every cached object is trimmed to what the operator
//! reads before it enters a store: managed fields (often the largest part of an object), the
//! `last-applied-configuration` annotation, and for Jobs the whole spec (only labels, owners and status
//! are read). Memory then grows with what the operator needs, not with how the objects were written.

use std::fmt::Debug;

use futures::{Stream, TryStreamExt, channel::mpsc::UnboundedReceiver};
use k8s_openapi::api::batch::v1::Job;
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        WatchStreamExt, reflector,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;

use super::index::Index;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Removes from an object's metadata what the operator never reads.
pub fn trim_metadata<K: ResourceExt>(object: &mut K) {
    object.managed_fields_mut().clear();
    object.annotations_mut().remove(LAST_APPLIED);
}

/// A step Job as the operator reads it: labels, owners and status.
pub fn trim_job(job: &mut Job) {
    trim_metadata(job);
    job.spec = None;
}

/// A watched, trimmed store of `K`, and the stream that fills it and `indexes` (the stream must be
/// polled, by a controller that takes it as its trigger, for the store to fill).
pub fn watched<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    indexes: Vec<Index<K>>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let events = watcher(api, config)
        .default_backoff()
        .modify(trim)
        .inspect_ok(move |event| indexes.iter().for_each(|index| index.apply(event)));
    let stream = reflector(writer, events).touched_objects();
    (reader, stream)
}

/// `stream`, which also hands a reference to every object it touches to each of `N` receivers: one
/// watch then wakes every controller that follows the kind, instead of one watch (and one full list
/// at start-up) per controller. A receiver that is gone is skipped.
pub fn fan_out<K, const N: usize>(
    stream: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
) -> (
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    [UnboundedReceiver<ObjectRef<K>>; N],
)
where
    K: Resource<DynamicType = ()> + Send + 'static,
{
    let channels: [_; N] = std::array::from_fn(|_| futures::channel::mpsc::unbounded());
    let senders: Vec<_> = channels.iter().map(|(sender, _)| sender.clone()).collect();
    let receivers = channels.map(|(_, receiver)| receiver);
    let stream = stream.inspect_ok(move |object| {
        let reference = ObjectRef::from_obj(object);
        for sender in &senders {
            // Unbounded: a controller that has not started yet (the schedules wait for the backup
            // store) gets its references later; each is a name and a namespace.
            let _ = sender.unbounded_send(reference.clone());
        }
    });
    (stream, receivers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_what_the_operator_reads() {
        let mut job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "b-zeebe", "namespace": "ns", "labels": { "c8backup.dev/step": "zeebe" },
                "annotations": { LAST_APPLIED: "{}", "kept": "yes" },
                "ownerReferences": [{ "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
                                      "name": "b", "uid": "u1" }],
                "managedFields": [{ "manager": "kubectl", "operation": "Apply" }]
            },
            "spec": { "template": { "spec": { "containers": [] } } },
            "status": { "succeeded": 1 }
        }))
        .unwrap_or_default();
        trim_job(&mut job);
        assert!(job.managed_fields().is_empty());
        assert_eq!(job.annotations().len(), 1);
        assert_eq!(job.labels().len(), 1);
        assert_eq!(job.owner_references().len(), 1);
        assert!(job.spec.is_none());
        assert_eq!(job.status.and_then(|s| s.succeeded), Some(1));
    }
}
