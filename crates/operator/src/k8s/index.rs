//! Objects of a watched store grouped by a key each object names (a backup's cluster, a backup's
//! schedule, a schedule's cluster), kept current from the same watch events that fill the store. A
//! question such as "the backups of this cluster" then costs the size of its answer, not the size of
//! the store: without it, every reconcile and every watch mapping scanned every object, and start-up
//! grew with the square of the fleet.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, RwLock},
};

use kube::{
    Resource, ResourceExt,
    runtime::{
        reflector::{ObjectRef, Store},
        watcher,
    },
};

/// The namespace and the key value.
type Group = (String, String);

#[derive(Default)]
struct Groups {
    members: HashMap<Group, BTreeSet<String>>,
    /// Each object's group (by namespace and name), so that an object whose key changed leaves its old
    /// group.
    group_of: HashMap<(String, String), Group>,
}

impl Groups {
    fn insert(&mut self, namespace: String, name: String, key: Option<String>) {
        self.remove(&namespace, &name);
        if let Some(key) = key {
            let group = (namespace.clone(), key);
            self.members
                .entry(group.clone())
                .or_default()
                .insert(name.clone());
            self.group_of.insert((namespace, name), group);
        }
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        let Some(group) = self.group_of.remove(&(namespace.to_string(), name.to_string())) else {
            return;
        };
        if let Some(members) = self.members.get_mut(&group) {
            members.remove(name);
            if members.is_empty() {
                self.members.remove(&group);
            }
        }
    }
}

struct State {
    live: Groups,
    /// Built from a re-list (`Init` … `InitDone`) and swapped in whole, as the store does.
    relisting: Option<Groups>,
}

/// An index of one kind by one key; cheap to clone (the clones share the index).
#[derive(Clone)]
pub struct Index<K> {
    key: fn(&K) -> Option<String>,
    state: Arc<RwLock<State>>,
}

impl<K> Index<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    /// An empty index of the objects by `key` (objects without a key are not indexed).
    pub fn by(key: fn(&K) -> Option<String>) -> Self {
        Index {
            key,
            state: Arc::new(RwLock::new(State {
                live: Groups::default(),
                relisting: None,
            })),
        }
    }

    /// Applies one watch event, as the reflector does to the store.
    pub fn apply(&self, event: &watcher::Event<K>) {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = |object: &K| {
            (
                object.namespace().unwrap_or_default(),
                object.name_any(),
                (self.key)(object),
            )
        };
        match event {
            watcher::Event::Apply(object) => {
                let (namespace, name, key) = entry(object);
                state.live.insert(namespace, name, key);
            }
            watcher::Event::Delete(object) => {
                state
                    .live
                    .remove(&object.namespace().unwrap_or_default(), &object.name_any());
            }
            watcher::Event::Init => state.relisting = Some(Groups::default()),
            watcher::Event::InitApply(object) => {
                let (namespace, name, key) = entry(object);
                state
                    .relisting
                    .get_or_insert_with(Groups::default)
                    .insert(namespace, name, key);
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = state.relisting.take() {
                    state.live = relisted;
                }
            }
        }
    }

    /// The objects of `store` in `namespace` whose key is `key`.
    pub fn get(&self, store: &Store<K>, namespace: &str, key: &str) -> Vec<Arc<K>> {
        let names: Vec<String> = {
            let state = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            state
                .live
                .members
                .get(&(namespace.to_string(), key.to_string()))
                .map(|names| names.iter().cloned().collect())
                .unwrap_or_default()
        };
        names
            .iter()
            .filter_map(|name| store.get(&ObjectRef::new(name).within(namespace)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ClusterBackup;
    use kube::runtime::reflector;

    fn backup(name: &str, cluster: &str) -> ClusterBackup {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
            "metadata": { "name": name, "namespace": "ns" }, "spec": { "clusterRef": { "name": cluster } }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn names(found: Vec<Arc<ClusterBackup>>) -> Vec<String> {
        let mut names: Vec<String> = found.iter().map(|b| b.name_any()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_index_follows_the_watch_as_the_store_does() {
        let (store, mut writer) = reflector::store::<ClusterBackup>();
        let index = Index::by(|b: &ClusterBackup| Some(b.spec.cluster_ref.name.clone()));
        let mut apply = |event: watcher::Event<ClusterBackup>| {
            index.apply(&event);
            writer.apply_watcher_event(&event);
        };
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(backup("a1", "a")));
        apply(watcher::Event::InitApply(backup("b1", "b")));
        apply(watcher::Event::InitDone);
        apply(watcher::Event::Apply(backup("a2", "a")));
        assert_eq!(names(index.get(&store, "ns", "a")), ["a1", "a2"]);
        assert!(index.get(&store, "other", "a").is_empty(), "by namespace");

        // A changed key moves the object; a deleted one leaves.
        apply(watcher::Event::Apply(backup("a2", "b")));
        apply(watcher::Event::Delete(backup("a1", "a")));
        assert!(index.get(&store, "ns", "a").is_empty());
        assert_eq!(names(index.get(&store, "ns", "b")), ["a2", "b1"]);

        // A re-list replaces everything: what it does not list is gone.
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(backup("b1", "b")));
        assert_eq!(
            names(index.get(&store, "ns", "b")),
            ["a2", "b1"],
            "the old view stands until the re-list is done"
        );
        apply(watcher::Event::InitDone);
        assert_eq!(names(index.get(&store, "ns", "b")), ["b1"]);
    }
}
