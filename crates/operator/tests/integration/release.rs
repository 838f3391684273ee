//! Simulated Camunda releases (`c8b_testkit::release`) as real Pods on the real node, the way the
//! restore controller will find them: the chart's StatefulSet and Deployments from the simulator image
//! (`C8B_SIMULATOR_IMAGE`), brokers that take their node ID from their Pod's name and keep their data in
//! their claims across a restart, and the restore program refusing a volume that is not empty when it
//! runs in a Pod shaped like a restore Job. The tests sit in `real_node`, so `scripts/test.sh` runs them
//! on the cluster with the node and never on the fake node's.

mod real_node {
    use std::{collections::BTreeMap, os::unix::fs::MetadataExt, time::Duration};

    use c8b_testkit::{
        harness::wait_for,
        release::{CAMUNDA_UID, DATA_VOLUME, Family, Release, ReleaseSpec, deploy, simulator_image},
        support::{TestNamespace, client},
    };
    use camunda_simulator::{ClusterSettings, SimulatorHandle, node::distribution};
    use chrono::Utc;
    use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Pod};
    use kube::{Api, Client, api::PostParams};
    use serde_json::json;

    use crate::real_node::{require_real_node, simulator};

    /// Pods start in about 2 s on the node; this leaves room for a busy machine.
    const READY: Duration = Duration::from_secs(90);
    const CLUSTER: &str = "c1";
    const BROKERS: u32 = 3;
    const PARTITIONS: u32 = 3;
    const REPLICATION_FACTOR: u32 = 2;

    /// kubelet keeps the log's colours in a termination message.
    fn strip_ansi(text: &str) -> String {
        let mut plain = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        plain
    }

    /// A Pod shaped like the restore Job the operator builds for broker `ordinal`: the broker container's
    /// image, env, envFrom, volumes and security context, the node ID set explicitly, the restore
    /// program as the command, and the broker's claim mounted where the broker mounts its data. Its
    /// name is not a broker's and does not end in an ordinal.
    async fn restore_pod(release: &Release, ordinal: u32, backup_id: u64) -> Pod {
        let family = release.spec.family;
        let template = release.broker_template().await;
        let spec = template.spec.expect("the template's Pod spec");
        let broker = spec
            .containers
            .iter()
            .find(|c| c.name == family.broker_container())
            .expect("the broker container");
        let mut env = serde_json::to_value(broker.env.clone().unwrap_or_default()).expect("env");
        env.as_array_mut()
            .expect("a list")
            .push(json!({ "name": family.node_id_env(), "value": ordinal.to_string() }));
        let mut volumes = serde_json::to_value(spec.volumes.clone().unwrap_or_default()).expect("volumes");
        volumes.as_array_mut().expect("a list").push(json!({
            "name": DATA_VOLUME,
            "persistentVolumeClaim": { "claimName": release.claim_name(ordinal) },
        }));
        serde_json::from_value(json!({
            "metadata": { "name": format!("{}-restore-{ordinal}-check", release.spec.name) },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": false,
                "securityContext": spec.security_context,
                "volumes": volumes,
                "containers": [{
                    "name": "restore",
                    "image": broker.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": [family.restore_program(), format!("--backupId={backup_id}")],
                    "env": env,
                    "envFrom": broker.env_from,
                    "volumeMounts": broker.volume_mounts,
                    "securityContext": broker.security_context,
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }],
            },
        }))
        .expect("restore Pod")
    }

    /// Asserts the chart's shape and restricted security on the broker StatefulSet.
    async fn assert_chart_shape(client: &Client, release: &Release) {
        let family = release.spec.family;
        let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &release.namespace);
        let sts = statefulsets
            .get(&release.statefulset_name())
            .await
            .expect("the broker StatefulSet");
        let labels = sts.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("app.kubernetes.io/instance").map(String::as_str),
            Some(release.spec.name.as_str())
        );
        assert_eq!(
            labels.get("app.kubernetes.io/part-of").map(String::as_str),
            Some("camunda-platform")
        );
        assert_eq!(
            labels.get("app.kubernetes.io/component").map(String::as_str),
            Some(family.broker_component())
        );
        let template = release.broker_template().await;
        let spec = template.spec.expect("spec");
        let pod_security = spec.security_context.expect("pod security context");
        assert_eq!(pod_security.fs_group, Some(i64::from(CAMUNDA_UID)));
        assert_eq!(pod_security.run_as_non_root, Some(true));
        let container = &spec.containers[0];
        assert_eq!(container.name, family.broker_container());
        let security = container
            .security_context
            .clone()
            .expect("container security context");
        assert_eq!(security.run_as_user, Some(i64::from(CAMUNDA_UID)));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(
            security.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()])
        );
        assert_eq!(
            security.seccomp_profile.map(|p| p.type_),
            Some("RuntimeDefault".to_string())
        );
        let mounts: BTreeMap<String, String> = container
            .volume_mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.mount_path, m.name))
            .collect();
        assert_eq!(
            mounts.get(&family.data_dir()).map(String::as_str),
            Some(DATA_VOLUME)
        );
        assert!(mounts.contains_key(&family.config_path()), "{mounts:?}");
    }

    /// Each registered broker is the Pod whose ordinal is its node ID: the simulator reaches node `n`
    /// at the address of Pod `<release>-zeebe-<n>`.
    async fn assert_node_ids_follow_ordinals(client: &Client, release: &Release, sim: &SimulatorHandle) {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &release.namespace);
        for (node, broker) in release.registered_brokers(sim) {
            let pod = pods
                .get(&release.broker_pod_name(node))
                .await
                .expect("the broker Pod");
            let ip = pod.status.and_then(|s| s.pod_ip).expect("a Pod IP");
            assert!(
                broker.url.contains(&format!("//{ip}:")),
                "node {node} registered from {} but Pod {} has {ip}",
                broker.url,
                release.broker_pod_name(node)
            );
        }
    }

    async fn a_release_runs_keeps_its_data_and_refuses_a_restore_over_it(family: Family, prefix: &str) {
        let client = client().await;
        require_real_node(&client).await;
        let ns = TestNamespace::new(&client, prefix).await;
        let sim = simulator().await;
        let version = family.version().parse().expect("version");
        sim.put_cluster(CLUSTER, ClusterSettings::new(version))
            .expect("the simulated cluster");
        let deployed = Utc::now();
        let release = deploy(
            &client,
            &ns.name,
            ReleaseSpec {
                name: "orders".into(),
                family,
                brokers: BROKERS,
                partitions: PARTITIONS,
                replication_factor: REPLICATION_FACTOR,
                simulator_url: sim.url(),
                simulator_cluster: CLUSTER.into(),
                image: simulator_image(),
            },
        )
        .await;
        assert_chart_shape(&client, &release).await;
        release.wait_ready(READY).await;
        println!(
            "real node: {family:?} release ready {:.1}s after deploy",
            (Utc::now() - deployed).as_seconds_f64()
        );

        // Every broker registered under its own node ID, holding its share of the partitions.
        let states = release.wait_registered(&sim, deployed, READY).await;
        let members = distribution(BROKERS, PARTITIONS, REPLICATION_FACTOR);
        for (node, view) in &states {
            assert_eq!(
                (view.cluster_size, view.partition_count, view.replication_factor),
                (BROKERS, PARTITIONS, REPLICATION_FACTOR),
                "the ConfigMap's settings"
            );
            let expected: Vec<u32> = members
                .iter()
                .filter(|(_, nodes)| nodes.contains(node))
                .map(|(partition, _)| *partition)
                .collect();
            assert_eq!(
                view.partitions.keys().copied().collect::<Vec<_>>(),
                expected,
                "node {node}"
            );
        }
        assert_node_ids_follow_ordinals(&client, &release, &sim).await;

        // The brokers' data advances and lands in the claims, written by the chart's user.
        let report = sim.advance_data(CLUSTER, 7).await.expect("advance");
        assert_eq!(report.brokers, [0, 1, 2]);
        let before = release.broker_states(&sim).await;
        assert!(
            before
                .values()
                .all(|v| v.partitions.values().all(|p| p.position == 7)),
            "{before:?}"
        );
        for ordinal in 0..BROKERS {
            let dir = release.volume_dir(ordinal).expect("a volume");
            let topology = std::fs::metadata(dir.join(".topology.meta")).expect("the broker's files");
            assert_eq!(topology.uid(), CAMUNDA_UID, "{}", dir.display());
        }

        // Stopped: the Pods go, the claims stay.
        release.scale_brokers(0).await;
        release.wait_brokers_gone(READY).await;

        // The restore program, in a Pod shaped like the operator's restore Job, refuses broker 1's
        // volume, which is not empty, and deletes nothing.
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
        let pod = restore_pod(&release, 1, 42).await;
        let name = pod.metadata.name.clone().expect("name");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create the restore Pod");
        let terminated = wait_for("the restore Pod to fail", READY, || async {
            pods.get_opt(&name)
                .await
                .ok()
                .flatten()
                .and_then(|p| p.status)
                .and_then(|s| s.container_statuses)
                .and_then(|c| c.into_iter().next())
                .and_then(|c| c.state)
                .and_then(|s| s.terminated)
        })
        .await;
        assert_eq!(terminated.exit_code, 1, "{terminated:?}");
        let message = strip_ansi(&terminated.message.unwrap_or_default());
        assert!(
            message.contains(&format!("data directory {} is not empty", family.data_dir())),
            "{message}"
        );
        assert!(
            message.contains("node=1"),
            "the explicit node ID, not the Pod's name: {message}"
        );
        let kept = release.volume_dir(1).expect("a volume").join(".topology.meta");
        assert!(kept.exists(), "the refusal deleted nothing");

        // Started again: every broker serves the state it had, read back from its claim.
        let restarted = Utc::now();
        release.scale_brokers(BROKERS).await;
        release.wait_ready(READY).await;
        let after = release.wait_registered(&sim, restarted, READY).await;
        assert_eq!(after, before, "the brokers' data survived the restart");
        assert_node_ids_follow_ordinals(&client, &release, &sim).await;
        println!(
            "real node: {family:?} brokers ready and registered again {:.1}s after scaling up",
            (Utc::now() - restarted).as_seconds_f64()
        );

        release.teardown(READY).await;
        ns.cleanup().await;
        sim.shutdown().await;
    }

    #[tokio::test]
    #[ignore = "needs a real node and the simulator image (scripts/test.sh)"]
    async fn an_8_7_release_runs_keeps_its_data_and_refuses_a_restore_over_it() {
        a_release_runs_keeps_its_data_and_refuses_a_restore_over_it(Family::V87, "rel87").await;
    }

    #[tokio::test]
    #[ignore = "needs a real node and the simulator image (scripts/test.sh)"]
    async fn an_8_8_release_runs_keeps_its_data_and_refuses_a_restore_over_it() {
        a_release_runs_keeps_its_data_and_refuses_a_restore_over_it(Family::V88, "rel88").await;
    }
}
