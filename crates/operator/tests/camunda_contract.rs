//! Contract tests: every client call against the in-process simulator, per Camunda version, including
//! each API's own error codes and quirks; and the `step` subcommand end to end (the real binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use camunda_backup_operator::{
    api::step::DEFINITE_FAILURE_EXIT_CODE,
    api::version::CamundaVersion,
    camunda::{
        ApiError, BackupClient, BackupState, ClientOptions, Component, ComponentTarget, DeleteOutcome,
        Exporting, HttpClient, OptimizeBackups, PauseMode, RecordsTarget, SearchCredentials, SearchFlavor,
        SearchRestore, SearchSnapshots, SnapshotState, TriggerOutcome, WebAppBackups, ZeebeBackups,
    },
};
use camunda_simulator::{
    Api, App, ClusterSettings, FailBackups, Fault, OptimizeSpelling, RequiredCredentials, Simulator,
    SimulatorConfig, SimulatorHandle, state::ExportingState,
};
use serde_json::{Value, json};
use tokio::time::Instant;

fn version(text: &str) -> CamundaVersion {
    text.parse().unwrap()
}

fn settings(v: &str) -> ClusterSettings {
    ClusterSettings::new(v.parse().unwrap())
}

/// The simulator names components with its own vocabulary; both spell them alike.
fn as_sim(component: Component) -> camunda_simulator::Component {
    serde_json::from_value(serde_json::to_value(component).unwrap()).unwrap()
}

/// The version a simulated cluster runs, as the operator's clients read it.
fn version_of(sim: &SimulatorHandle, cluster: &str) -> CamundaVersion {
    version(&sim.cluster(cluster).unwrap().settings.version.to_string())
}

async fn simulator(clusters: Vec<(&str, ClusterSettings)>) -> SimulatorHandle {
    let config = SimulatorConfig {
        clusters: clusters.into_iter().map(|(n, s)| (n.to_string(), s)).collect(),
        ..SimulatorConfig::default()
    };
    Simulator::start(config).await.unwrap()
}

/// Short timeouts and backoffs so that exhausted retry budgets show quickly.
fn fast() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(2),
        attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    }
}

fn records_target() -> RecordsTarget {
    RecordsTarget {
        repository: "camunda".into(),
        index_prefix: "zeebe-record".into(),
        flavor: SearchFlavor::Elasticsearch,
        credentials: None,
    }
}

fn client(sim: &SimulatorHandle, cluster: &str, component: Component) -> BackupClient {
    let version = version_of(sim, cluster);
    let target = ComponentTarget {
        component,
        version,
        base_url: sim.component_url(cluster, as_sim(component)).unwrap(),
        records: Some(records_target()),
    };
    BackupClient::new(&target, fast()).unwrap()
}

fn http(url: String) -> HttpClient {
    HttpClient::new(&url, fast()).unwrap()
}

fn exporting(sim: &SimulatorHandle, cluster: &str) -> Exporting {
    Exporting::new(&sim.exporting_url(cluster).unwrap(), fast()).unwrap()
}

/// Pauses exporting in the mode the operator's version rule picks for the cluster, and returns it.
async fn pause(sim: &SimulatorHandle, cluster: &str) -> Result<PauseMode, ApiError> {
    let mode = PauseMode::for_version(version_of(sim, cluster));
    exporting(sim, cluster).pause(mode).await.map(|()| mode)
}

/// Polls until the backup is terminal; fails the test after 10 s.
async fn wait_terminal(client: &BackupClient, id: u64) -> SnapshotState {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.status(id).await.unwrap() {
            SnapshotState::InProgress if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            SnapshotState::InProgress => panic!("backup {id} still in progress after 10s"),
            terminal => return terminal,
        }
    }
}

fn events(sim: &SimulatorHandle, cluster: &str) -> Vec<(Api, String, Option<u64>)> {
    sim.cluster(cluster)
        .unwrap()
        .events
        .into_iter()
        .map(|e| (e.api, e.operation, e.backup_id))
        .collect()
}

fn slow(v: &str) -> ClusterSettings {
    ClusterSettings {
        backup_duration_ms: 1500,
        ..settings(v)
    }
}

// ---------------------------------------------------------------- Zeebe

async fn zeebe_lifecycle(v: &str) {
    let sim = simulator(vec![("c1", slow(v))]).await;
    let facade = client(&sim, "c1", Component::Zeebe);
    let typed = ZeebeBackups::new(
        http(sim.component_url("c1", as_sim(Component::Zeebe)).unwrap()),
        version(v),
    );

    assert_eq!(facade.trigger(10).await.unwrap(), TriggerOutcome::Started);
    let info = typed.status(10).await.unwrap();
    assert_eq!(info.state, BackupState::InProgress);
    assert_eq!(info.details.len(), 3);
    assert_eq!(wait_terminal(&facade, 10).await, SnapshotState::Completed);
    let info = typed.status(10).await.unwrap();
    assert!(
        info.details.iter().all(|p| p.state == BackupState::Completed),
        "{info:?}"
    );

    // A repeated trigger of the same ID is "already started"; a lower ID is refused with 409.
    assert_eq!(facade.trigger(10).await.unwrap(), TriggerOutcome::AlreadyStarted);
    assert_eq!(typed.take(10).await.unwrap_err().reason(), "AlreadyExists");
    assert_eq!(facade.trigger(5).await.unwrap_err().reason(), "AlreadyExists");

    assert_eq!(facade.trigger(11).await.unwrap(), TriggerOutcome::Started);
    let ids: Vec<u64> = typed.list().await.unwrap().iter().map(|b| b.backup_id).collect();
    assert_eq!(ids, [11, 10], "newest first");

    assert_eq!(facade.delete(10).await.unwrap(), DeleteOutcome::Deleted);
    // A deleted ID is never reusable.
    assert_eq!(typed.take(10).await.unwrap_err().reason(), "AlreadyExists");
    assert_eq!(
        events(&sim, "c1"),
        [
            (Api::Zeebe, "take".into(), Some(10)),
            (Api::Zeebe, "take".into(), Some(11)),
            (Api::Zeebe, "delete".into(), Some(10)),
        ]
    );
    assert_eq!(typed.take(0).await.unwrap_err().reason(), "InvalidRequest");
    sim.shutdown().await;
}

#[tokio::test]
async fn zeebe_8_7_backups_take_status_list_delete() {
    zeebe_lifecycle("8.7.3").await;
}

#[tokio::test]
async fn zeebe_8_8_backup_runtime_take_status_list_delete() {
    zeebe_lifecycle("8.8.0").await;
}

#[tokio::test]
async fn zeebe_unknown_id_is_not_found_and_deleted_backups_disappear_until_8_9() {
    let sim = simulator(vec![("old", settings("8.8")), ("new", settings("8.9"))]).await;
    for (cluster, after_delete) in [("old", None), ("new", Some("DELETED"))] {
        let facade = client(&sim, cluster, Component::Zeebe);
        let error = facade.status(3).await.unwrap_err();
        assert!(
            matches!(&error, ApiError::NotFound { message } if message.contains("Backup with id 3 does not exist"))
        );
        facade.trigger(3).await.unwrap();
        wait_terminal(&facade, 3).await;
        facade.delete(3).await.unwrap();
        match (facade.status(3).await, after_delete) {
            (Err(ApiError::NotFound { .. }), None) => {}
            (Ok(SnapshotState::Failed { reason }), Some(state)) => {
                assert!(reason.contains(state), "{reason}")
            }
            (other, expected) => panic!("{cluster}: {other:?}, expected {expected:?}"),
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn zeebe_8_9_with_own_scheduler_rejects_explicit_ids() {
    let sim = simulator(vec![(
        "c",
        ClusterSettings {
            own_scheduler: true,
            ..settings("8.9.0")
        },
    )])
    .await;
    let error = client(&sim, "c", Component::Zeebe)
        .trigger(100)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "ExplicitIdRejected", "{error}");
    assert!(!error.is_transient());
    // Not before 8.9.
    assert!(
        sim.put_cluster(
            "c",
            ClusterSettings {
                own_scheduler: true,
                ..settings("8.8.0")
            }
        )
        .is_err()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_and_incomplete_backups_are_failures_with_the_component_message() {
    let sim = simulator(vec![("c", settings("8.8.2"))]).await;
    let fail = |state: &str| Fault {
        fail_backups: Some(FailBackups {
            state: state.into(),
            reason: "disk quota exceeded".into(),
        }),
        ..Fault::default()
    };
    sim.set_fault("c", Api::Zeebe, fail("FAILED"));
    let zeebe = client(&sim, "c", Component::Zeebe);
    zeebe.trigger(1).await.unwrap();
    match wait_terminal(&zeebe, 1).await {
        SnapshotState::Failed { reason } => {
            assert!(reason.contains("FAILED") && reason.contains("disk quota exceeded"))
        }
        other => panic!("{other:?}"),
    }
    sim.set_fault("c", Api::Zeebe, fail("INCOMPLETE"));
    zeebe.trigger(2).await.unwrap();
    assert!(
        matches!(wait_terminal(&zeebe, 2).await, SnapshotState::Failed { reason } if reason.contains("INCOMPLETE"))
    );
    sim.shutdown().await;
}

// ---------------------------------------------------------------- web apps

async fn webapps_lifecycle(v: &str, component: Component) {
    let sim = simulator(vec![("c", slow(v))]).await;
    let facade = client(&sim, "c", component);
    let typed = WebAppBackups::new(
        http(sim.component_url("c", as_sim(component)).unwrap()),
        component,
        version(v),
    )
    .unwrap();

    let receipt = typed.take(7).await.unwrap();
    assert!(!receipt.scheduled_snapshots.is_empty());
    assert!(
        receipt.scheduled_snapshots.iter().all(|s| s.contains("_7_")),
        "{receipt:?}"
    );
    assert_eq!(facade.status(7).await.unwrap(), SnapshotState::InProgress);
    // Duplicate ID: 400, recognised by its message.
    assert_eq!(typed.take(7).await.unwrap_err().reason(), "AlreadyExists");
    assert_eq!(facade.trigger(7).await.unwrap(), TriggerOutcome::AlreadyStarted);
    assert_eq!(wait_terminal(&facade, 7).await, SnapshotState::Completed);
    let info = typed.status(7).await.unwrap();
    assert!(info.details.iter().all(|d| d.state.as_deref() == Some("SUCCESS")));
    assert_eq!(typed.list().await.unwrap().len(), 1);

    assert_eq!(facade.delete(7).await.unwrap(), DeleteOutcome::Deleted);
    assert_eq!(facade.delete(7).await.unwrap(), DeleteOutcome::NotFound);
    assert_eq!(facade.status(7).await.unwrap_err().reason(), "NotFound");
    // Unlike Zeebe, the web apps let a deleted ID be taken again.
    assert_eq!(facade.trigger(7).await.unwrap(), TriggerOutcome::Started);
    sim.shutdown().await;
}

#[tokio::test]
async fn operate_8_7_backups_take_status_list_delete() {
    webapps_lifecycle("8.7.3", Component::Operate).await;
}

#[tokio::test]
async fn tasklist_8_7_backups_take_status_list_delete() {
    webapps_lifecycle("8.7.3", Component::Tasklist).await;
}

#[tokio::test]
async fn webapps_8_8_backup_history_take_status_list_delete() {
    webapps_lifecycle("8.8.1", Component::WebApps).await;
}

#[tokio::test]
async fn webapps_on_8_7_and_operate_path_on_8_8_are_refused() {
    let target = ComponentTarget {
        component: Component::WebApps,
        version: version("8.7"),
        base_url: "http://127.0.0.1:1/c/orchestration".into(),
        records: None,
    };
    assert_eq!(
        BackupClient::new(&target, fast()).unwrap_err().reason(),
        "InvalidClientConfig"
    );
    // An 8.8 simulated cluster has no standalone Operate app.
    let sim = simulator(vec![("c", settings("8.8"))]).await;
    let operate = WebAppBackups::new(
        http(sim.app_url("c", App::Operate)),
        Component::Operate,
        version("8.8"),
    )
    .unwrap();
    assert_eq!(operate.take(1).await.unwrap_err().reason(), "NotFound");
    sim.shutdown().await;
}

#[tokio::test]
async fn webapps_incomplete_reads_in_progress_until_the_check_timeout() {
    let incomplete = Fault {
        fail_backups: Some(FailBackups {
            state: "INCOMPLETE".into(),
            reason: "missing part".into(),
        }),
        ..Fault::default()
    };
    let sim = simulator(vec![
        (
            "patient",
            ClusterSettings {
                backup_duration_ms: 50,
                ..settings("8.8")
            },
        ),
        (
            "strict",
            ClusterSettings {
                backup_duration_ms: 50,
                incomplete_check_timeout_ms: 0,
                ..settings("8.8")
            },
        ),
    ])
    .await;
    for cluster in ["patient", "strict"] {
        sim.set_fault(cluster, Api::WebApps, incomplete.clone());
        client(&sim, cluster, Component::WebApps)
            .trigger(1)
            .await
            .unwrap();
    }
    let strict = client(&sim, "strict", Component::WebApps);
    assert!(
        matches!(wait_terminal(&strict, 1).await, SnapshotState::Failed { reason } if reason.contains("INCOMPLETE"))
    );
    // The patient cluster's backup ended at the same time, but is still reported in progress.
    let completes_at = sim.cluster("patient").unwrap().backups[&as_sim(Component::WebApps)][&1].completes_at;
    assert!(chrono::Utc::now() > completes_at);
    assert_eq!(
        client(&sim, "patient", Component::WebApps)
            .status(1)
            .await
            .unwrap(),
        SnapshotState::InProgress
    );
    sim.shutdown().await;
}

// ---------------------------------------------------------------- Optimize

#[tokio::test]
async fn optimize_duplicate_is_409_and_both_completed_spellings_are_accepted() {
    let sim = simulator(vec![
        (
            "complete",
            ClusterSettings {
                optimize_spelling: OptimizeSpelling::Complete,
                ..settings("8.7.3")
            },
        ),
        (
            "alternate",
            ClusterSettings {
                optimize_spelling: OptimizeSpelling::Alternate,
                ..settings("8.8.0")
            },
        ),
    ])
    .await;
    for cluster in ["complete", "alternate"] {
        let facade = client(&sim, cluster, Component::Optimize);
        let typed = OptimizeBackups::new(http(
            sim.component_url(cluster, as_sim(Component::Optimize)).unwrap(),
        ));
        assert!(typed.take(4).await.unwrap().message.unwrap().contains("ID 4"));
        let duplicate = typed.take(4).await.unwrap_err();
        assert!(
            matches!(&duplicate, ApiError::AlreadyExists { message } if message.starts_with("HTTP 409")),
            "{duplicate}"
        );
        assert_eq!(facade.trigger(4).await.unwrap(), TriggerOutcome::AlreadyStarted);
        assert_eq!(wait_terminal(&facade, 4).await, SnapshotState::Completed);
        // Read twice more: the alternating cluster answers both spellings.
        assert_eq!(facade.status(4).await.unwrap(), SnapshotState::Completed);
        assert_eq!(facade.status(4).await.unwrap(), SnapshotState::Completed);
        assert_eq!(typed.list().await.unwrap()[0].state, BackupState::Completed);
        assert_eq!(facade.delete(4).await.unwrap(), DeleteOutcome::Deleted);
        assert_eq!(facade.status(4).await.unwrap_err().reason(), "NotFound");
    }
    // The raw answers really differ.
    let raw: Value = reqwest::get(format!(
        "{}/actuator/backups",
        sim.component_url("complete", as_sim(Component::Optimize))
            .unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(raw, json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn optimize_raw_state_is_spelled_complete_when_configured() {
    let sim = simulator(vec![(
        "c",
        ClusterSettings {
            optimize_spelling: OptimizeSpelling::Complete,
            backup_duration_ms: 0,
            ..settings("8.7")
        },
    )])
    .await;
    client(&sim, "c", Component::Optimize).trigger(1).await.unwrap();
    let url = format!(
        "{}/actuator/backups/1",
        sim.component_url("c", as_sim(Component::Optimize)).unwrap()
    );
    let raw: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(raw["state"], "COMPLETE");
    sim.shutdown().await;
}

// ---------------------------------------------------------------- records (Elasticsearch / OpenSearch)

fn search(sim: &SimulatorHandle, cluster: &str, target: RecordsTarget) -> SearchSnapshots {
    SearchSnapshots::new(
        http(sim.component_url(cluster, as_sim(Component::Records)).unwrap()),
        &target,
    )
    .unwrap()
}

#[tokio::test]
async fn records_snapshot_take_status_delete_and_duplicate_400() {
    let sim = simulator(vec![("c", slow("8.7.3"))]).await;
    let facade = client(&sim, "c", Component::Records);
    let typed = search(&sim, "c", records_target());
    assert_eq!(facade.trigger(9).await.unwrap(), TriggerOutcome::Started);
    let info = typed.status(9).await.unwrap();
    assert_eq!(info.snapshot, "camunda_zeebe_records_backup_9");
    assert_eq!(info.snapshot_state(), SnapshotState::InProgress);
    assert_eq!(info.indices.len(), 2, "the zeebe-record* indices: {info:?}");
    let duplicate = typed.take(9).await.unwrap_err();
    assert!(
        matches!(&duplicate, ApiError::AlreadyExists { message } if message.contains("invalid_snapshot_name_exception"))
    );
    assert_eq!(facade.trigger(9).await.unwrap(), TriggerOutcome::AlreadyStarted);
    assert_eq!(wait_terminal(&facade, 9).await, SnapshotState::Completed);
    assert_eq!(facade.delete(9).await.unwrap(), DeleteOutcome::Deleted);
    assert_eq!(facade.delete(9).await.unwrap(), DeleteOutcome::NotFound);
    assert_eq!(facade.status(9).await.unwrap_err().reason(), "NotFound");
    let wrong_repo = search(
        &sim,
        "c",
        RecordsTarget {
            repository: "nope".into(),
            ..records_target()
        },
    );
    assert_eq!(wrong_repo.take(1).await.unwrap_err().reason(), "NotFound");
    sim.shutdown().await;
}

#[tokio::test]
async fn records_partial_and_failed_snapshots_are_failures() {
    let sim = simulator(vec![("c", settings("8.8"))]).await;
    let facade = client(&sim, "c", Component::Records);
    for (id, state) in [(1, "PARTIAL"), (2, "FAILED")] {
        let fault = Fault {
            fail_backups: Some(FailBackups {
                state: state.into(),
                reason: "shard lost".into(),
            }),
            ..Fault::default()
        };
        sim.set_fault("c", Api::Records, fault);
        facade.trigger(id).await.unwrap();
        match wait_terminal(&facade, id).await {
            SnapshotState::Failed { reason } => assert!(
                reason.contains(state) && reason.contains("shard lost"),
                "{reason}"
            ),
            other => panic!("{state}: {other:?}"),
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn records_index_existence_and_opensearch_body() {
    let sim = simulator(vec![
        ("with", settings("8.8")),
        (
            "without",
            ClusterSettings {
                records_indices: vec!["operate-list-view".into()],
                ..settings("8.8")
            },
        ),
        (
            "os",
            ClusterSettings {
                search_flavor: camunda_simulator::SearchFlavor::Opensearch,
                ..settings("8.7")
            },
        ),
    ])
    .await;
    assert!(
        search(&sim, "with", records_target())
            .records_indices_exist()
            .await
            .unwrap()
    );
    assert!(
        !search(&sim, "without", records_target())
            .records_indices_exist()
            .await
            .unwrap()
    );
    // OpenSearch refuses Elasticsearch's feature_states; the OpenSearch flavor leaves it out.
    assert_eq!(
        search(&sim, "os", records_target())
            .take(1)
            .await
            .unwrap_err()
            .reason(),
        "InvalidRequest"
    );
    let os = search(
        &sim,
        "os",
        RecordsTarget {
            flavor: SearchFlavor::Opensearch,
            ..records_target()
        },
    );
    os.take(1).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn records_credentials_are_sent_basic_and_api_key() {
    let basic = RequiredCredentials::Basic {
        username: "elastic".into(),
        password: "s3cret".into(),
    };
    let key = RequiredCredentials::ApiKey {
        api_key: "a2V5OnZhbHVl".into(),
    };
    let sim = simulator(vec![
        (
            "basic",
            ClusterSettings {
                search_credentials: Some(basic),
                ..settings("8.7")
            },
        ),
        (
            "key",
            ClusterSettings {
                search_credentials: Some(key),
                ..settings("8.7")
            },
        ),
    ])
    .await;
    let with = |credentials| RecordsTarget {
        credentials: Some(credentials),
        ..records_target()
    };
    let good_basic = with(SearchCredentials::Basic {
        username: "elastic".into(),
        password: "s3cret".into(),
    });
    let bad_basic = with(SearchCredentials::Basic {
        username: "elastic".into(),
        password: "wrong".into(),
    });
    assert!(
        search(&sim, "basic", good_basic)
            .records_indices_exist()
            .await
            .unwrap()
    );
    let refused = search(&sim, "basic", bad_basic).take(1).await.unwrap_err();
    assert_eq!(refused.reason(), "Unauthorized");
    assert!(!refused.to_string().contains("wrong"));
    assert_eq!(
        search(&sim, "basic", records_target())
            .take(1)
            .await
            .unwrap_err()
            .reason(),
        "Unauthorized"
    );
    let good_key = with(SearchCredentials::ApiKey("a2V5OnZhbHVl".into()));
    search(&sim, "key", good_key).take(1).await.unwrap();

    let seen = |c| sim.cluster(c).unwrap().auth_seen;
    assert_eq!(seen("basic").get("basic"), Some(&2));
    assert_eq!(seen("basic").get("none"), Some(&1));
    assert_eq!(seen("key").get("api-key"), Some(&1));
    // The simulator's state never holds the secrets.
    let state = reqwest::get(format!("{}/_sim/clusters/basic", sim.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!state.contains("s3cret"));
    sim.shutdown().await;
}

// ---------------------------------------------------------------- exporting

#[tokio::test]
async fn exporting_pause_and_resume_in_both_answer_shapes() {
    let sim = simulator(vec![
        ("wrapped", settings("8.7.3")),
        ("real", settings("8.10.0")),
        ("old", settings("8.4.6")),
    ])
    .await;
    for (cluster, mode) in [
        ("wrapped", PauseMode::Soft),
        ("real", PauseMode::Soft),
        ("old", PauseMode::Hard),
    ] {
        let exporting = exporting(&sim, cluster);
        assert_eq!(pause(&sim, cluster).await.unwrap(), mode, "{cluster}");
        let expected = if mode == PauseMode::Soft {
            ExportingState::SoftPaused
        } else {
            ExportingState::Paused
        };
        assert_eq!(sim.cluster(cluster).unwrap().exporting, expected);
        exporting.resume().await.unwrap();
        let state = sim.cluster(cluster).unwrap();
        assert_eq!(state.exporting, ExportingState::Running);
        assert_eq!(state.pause_intervals.len(), 1);
        assert!(state.pause_intervals[0].resumed_at.is_some());
    }
    // The answer shapes really differ.
    let pause = |c: &str| format!("{}/actuator/exporting/pause", sim.exporting_url(c).unwrap());
    let http = reqwest::Client::new();
    let wrapped = http.post(pause("wrapped")).send().await.unwrap();
    assert_eq!(wrapped.status(), 200);
    assert_eq!(wrapped.json::<Value>().await.unwrap()["status"], 204);
    assert_eq!(http.post(pause("real")).send().await.unwrap().status(), 204);
    // A version without soft pause refuses ?soft=true (see the simulator's documentation).
    assert_eq!(
        http.post(format!("{}?soft=true", pause("old")))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn exporting_failure_is_an_error_in_both_answer_shapes() {
    let sim = simulator(vec![("wrapped", settings("8.8.0")), ("real", settings("8.10.1"))]).await;
    for cluster in ["wrapped", "real"] {
        let fault = Fault {
            error_rate: 1.0,
            error_status: Some(500),
            ..Fault::default()
        };
        sim.set_fault(cluster, Api::Exporting, fault);
        let error = pause(&sim, cluster).await.unwrap_err();
        assert!(
            matches!(&error, ApiError::Transient { attempts: 3, message } if message.contains("500")),
            "{cluster}: {error}"
        );
        assert_eq!(sim.cluster(cluster).unwrap().exporting, ExportingState::Running);
        sim.clear_faults(cluster);
        pause(&sim, cluster).await.unwrap();
    }
    sim.shutdown().await;
}

// ---------------------------------------------------------------- transient faults

#[tokio::test]
async fn transient_5xx_recover_within_the_retry_budget_and_surface_beyond_it() {
    let sim = simulator(vec![("c", settings("8.7"))]).await;
    let zeebe = client(&sim, "c", Component::Zeebe);
    for status in [502, 503, 504] {
        sim.set_fault(
            "c",
            Api::Zeebe,
            Fault {
                fail_next: 2,
                error_status: Some(status),
                ..Fault::default()
            },
        );
        // Two injected errors, then the real answer: 404 for an unknown backup.
        assert_eq!(
            zeebe.status(1).await.unwrap_err().reason(),
            "NotFound",
            "{status}"
        );
    }
    sim.set_fault(
        "c",
        Api::Zeebe,
        Fault {
            fail_next: 2,
            ..Fault::default()
        },
    );
    assert_eq!(zeebe.trigger(1).await.unwrap(), TriggerOutcome::Started);
    sim.set_fault(
        "c",
        Api::Zeebe,
        Fault {
            fail_next: 3,
            error_status: Some(502),
            ..Fault::default()
        },
    );
    let error = zeebe.trigger(2).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(matches!(&error, ApiError::Transient { attempts: 3, message } if message.contains("502")));
    // A fractional rate hits deterministically: every second request fails, so each call recovers.
    sim.set_fault(
        "c",
        Api::Zeebe,
        Fault {
            error_rate: 0.5,
            ..Fault::default()
        },
    );
    for _ in 0..4 {
        zeebe.status(1).await.unwrap();
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_connections_and_slow_answers_are_transient() {
    let sim = simulator(vec![("c", settings("8.8"))]).await;
    let webapps = client(&sim, "c", Component::WebApps);
    sim.set_fault(
        "c",
        Api::WebApps,
        Fault {
            drop_next: 1,
            ..Fault::default()
        },
    );
    assert_eq!(webapps.trigger(1).await.unwrap(), TriggerOutcome::Started);
    sim.set_fault(
        "c",
        Api::WebApps,
        Fault {
            drop_rate: 1.0,
            ..Fault::default()
        },
    );
    let dropped = webapps.status(1).await.unwrap_err();
    assert!(
        matches!(&dropped, ApiError::Transient { attempts: 3, message } if message.contains("connection")),
        "{dropped}"
    );

    sim.set_fault(
        "c",
        Api::WebApps,
        Fault {
            delay_ms: 600,
            ..Fault::default()
        },
    );
    let impatient = ClientOptions {
        request_timeout: Duration::from_millis(150),
        ..fast()
    };
    let target = ComponentTarget {
        component: Component::WebApps,
        version: version("8.8"),
        base_url: sim.component_url("c", as_sim(Component::WebApps)).unwrap(),
        records: None,
    };
    let slow_error = BackupClient::new(&target, impatient)
        .unwrap()
        .status(1)
        .await
        .unwrap_err();
    assert!(
        matches!(&slow_error, ApiError::Transient { message, .. } if message.contains("timed out")),
        "{slow_error}"
    );
    sim.shutdown().await;
}

// ---------------------------------------------------------------- simulator admin and persistence

fn temp_path(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("c8b-contract-{}-{n}-{name}", std::process::id()))
}

#[tokio::test]
async fn admin_api_creates_clusters_reads_state_and_injects_faults() {
    let sim = simulator(vec![]).await;
    let http = reqwest::Client::new();
    let admin = |path: &str| format!("{}/_sim/{path}", sim.url());
    let created = http
        .put(admin("clusters/a"))
        .json(&json!({"version": "8.7.3", "backupDurationMs": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let zeebe = client(&sim, "a", Component::Zeebe);
    zeebe.trigger(3).await.unwrap();
    let view: Value = http
        .get(admin("clusters/a"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["settings"]["version"], "8.7.3");
    assert_eq!(view["events"][0]["operation"], "take");
    assert_eq!(view["backups"]["zeebe"]["3"]["id"], 3);

    let fault = http
        .put(admin("clusters/a/faults/zeebe"))
        .json(&json!({"errorRate": 1.0, "errorStatus": 504}))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status(), 200);
    assert!(zeebe.status(3).await.unwrap_err().to_string().contains("504"));
    assert_eq!(
        http.delete(admin("clusters/a/faults/zeebe"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(zeebe.status(3).await.unwrap(), SnapshotState::Completed);

    assert_eq!(
        http.get(admin("clusters/nope")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        reqwest::get(format!("{}/nope/zeebe/actuator/backups", sim.url()))
            .await
            .unwrap()
            .status(),
        404
    );
    let bad = http
        .put(admin("clusters/b"))
        .json(&json!({"version": "8.8", "ownScheduler": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_restarted_simulator_keeps_its_state() {
    let path = temp_path("state.json");
    let config = SimulatorConfig {
        clusters: vec![("c".into(), settings("8.7.3"))],
        state_file: Some(path.clone()),
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config.clone()).await.unwrap();
    client(&sim, "c", Component::Zeebe).trigger(20).await.unwrap();
    pause(&sim, "c").await.unwrap();
    sim.shutdown().await;

    let sim = Simulator::start(config).await.unwrap();
    let state = sim.cluster("c").unwrap();
    assert_eq!(state.exporting, ExportingState::SoftPaused);
    assert_eq!(state.events.len(), 2);
    // Zeebe still refuses a lower ID after the restart.
    assert_eq!(
        client(&sim, "c", Component::Zeebe)
            .trigger(19)
            .await
            .unwrap_err()
            .reason(),
        "AlreadyExists"
    );
    sim.shutdown().await;
    std::fs::remove_file(path).unwrap();
}

// ---------------------------------------------------------------- the step subcommand, end to end

struct StepRun {
    success: bool,
    code: Option<i32>,
    termination_message: Option<String>,
    stderr: String,
}

async fn run_step(
    sim: &SimulatorHandle,
    cluster: &str,
    component: Component,
    id: u64,
    extra: &[&str],
    env: &[(&str, &str)],
) -> StepRun {
    let termination_log = temp_path("termination-log");
    let v = sim.cluster(cluster).unwrap().settings.version.to_string();
    let url = sim.component_url(cluster, as_sim(component)).unwrap();
    let deadline = if extra.contains(&"--deadline") {
        &[][..]
    } else {
        &["--deadline", "20s"][..]
    };
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_camunda-backup-operator"))
        .args([
            "step",
            "--component",
            component.as_str(),
            "--camunda-version",
            &v,
            "--backup-id",
            &id.to_string(),
        ])
        .args(["--url", &url, "--poll-interval", "50ms"])
        .args(deadline)
        .arg("--termination-log")
        .arg(&termination_log)
        .args(extra)
        .env_remove("C8B_SEARCH_USERNAME")
        .env_remove("C8B_SEARCH_PASSWORD")
        .env_remove("C8B_SEARCH_API_KEY")
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let termination_message = std::fs::read_to_string(&termination_log).ok();
    let _ = std::fs::remove_file(&termination_log);
    StepRun {
        success: output.status.success(),
        code: output.status.code(),
        termination_message,
        stderr: String::from_utf8_lossy(&output.stderr).into(),
    }
}

#[tokio::test]
async fn step_succeeds_for_each_component_and_a_repeated_run_is_idempotent() {
    let sim = simulator(vec![("old", settings("8.7.3")), ("new", settings("8.8.0"))]).await;
    let runs = [
        ("old", Component::Zeebe),
        ("old", Component::Operate),
        ("old", Component::Tasklist),
        ("new", Component::WebApps),
        ("new", Component::Optimize),
        ("new", Component::Zeebe),
    ];
    for (cluster, component) in runs {
        let run = run_step(&sim, cluster, component, 42, &[], &[]).await;
        assert!(run.success, "{cluster} {component}: {}", run.stderr);
        assert_eq!(run.termination_message, None);
        assert!(
            run.stderr.contains("waiting for the backup to complete"),
            "{}",
            run.stderr
        );
    }
    // A retried Job re-triggers the same ID: already started counts as success.
    let again = run_step(&sim, "old", Component::Zeebe, 42, &[], &[]).await;
    assert!(again.success, "{}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    sim.shutdown().await;
}

#[tokio::test]
async fn step_records_sends_credentials_from_the_environment_and_never_logs_them() {
    let basic = RequiredCredentials::Basic {
        username: "elastic".into(),
        password: "pw-from-env".into(),
    };
    let sim = simulator(vec![(
        "c",
        ClusterSettings {
            search_credentials: Some(basic),
            ..settings("8.7.3")
        },
    )])
    .await;
    let extra = [
        "--repository",
        "camunda",
        "--index-prefix",
        "zeebe-record",
        "--log-level",
        "debug",
    ];
    let env = [
        ("C8B_SEARCH_USERNAME", "elastic"),
        ("C8B_SEARCH_PASSWORD", "pw-from-env"),
    ];
    let run = run_step(&sim, "c", Component::Records, 5, &extra, &env).await;
    assert!(run.success, "{}", run.stderr);
    assert!(!run.stderr.contains("pw-from-env"));
    let wrong = run_step(
        &sim,
        "c",
        Component::Records,
        6,
        &extra,
        &[
            ("C8B_SEARCH_USERNAME", "elastic"),
            ("C8B_SEARCH_PASSWORD", "nope-pw"),
        ],
    )
    .await;
    assert!(!wrong.success);
    let message = wrong.termination_message.unwrap();
    assert!(
        message.starts_with("records backup 6:") && message.contains("unauthorized"),
        "{message}"
    );
    assert!(!message.contains("nope-pw") && !wrong.stderr.contains("nope-pw"));
    sim.shutdown().await;
}

#[tokio::test]
async fn step_reports_a_component_failure_in_the_termination_message() {
    let sim = simulator(vec![("c", settings("8.8.0"))]).await;
    let fault = Fault {
        fail_backups: Some(FailBackups {
            state: "FAILED".into(),
            reason: "bucket does not exist".into(),
        }),
        ..Fault::default()
    };
    sim.set_fault("c", Api::Zeebe, fault);
    let run = run_step(&sim, "c", Component::Zeebe, 8, &[], &[]).await;
    assert!(!run.success);
    assert_eq!(
        run.code,
        Some(i32::from(DEFINITE_FAILURE_EXIT_CODE)),
        "a component's definite answer: the controller must not wait for the Job to retry"
    );
    let message = run.termination_message.unwrap();
    assert_eq!(message.lines().count(), 1);
    assert!(
        message.starts_with("zeebe backup 8: backup failed") && message.contains("bucket does not exist"),
        "{message}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn step_fails_when_the_deadline_passes() {
    let sim = simulator(vec![(
        "c",
        ClusterSettings {
            backup_duration_ms: 60_000,
            ..settings("8.7")
        },
    )])
    .await;
    let started = Instant::now();
    let run = run_step(&sim, "c", Component::Optimize, 3, &["--deadline", "1s"], &[]).await;
    assert!(!run.success);
    assert_eq!(run.code, Some(i32::from(DEFINITE_FAILURE_EXIT_CODE)));
    assert!(started.elapsed() < Duration::from_secs(15));
    let message = run.termination_message.unwrap();
    assert!(
        message.contains("deadline of 1s exceeded") && message.contains("in progress"),
        "{message}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn step_rides_out_transient_faults_beyond_the_client_retries() {
    let sim = simulator(vec![("c", settings("8.7"))]).await;
    // More failures than one call's retry budget (4 attempts): the step itself keeps trying.
    sim.set_fault(
        "c",
        Api::Operate,
        Fault {
            fail_next: 6,
            error_status: Some(503),
            ..Fault::default()
        },
    );
    let run = run_step(&sim, "c", Component::Operate, 12, &[], &[]).await;
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot trigger the backup yet"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.cluster("c").unwrap().faults[&Api::Operate].fail_next, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn step_reports_explicit_id_rejection() {
    let sim = simulator(vec![(
        "c",
        ClusterSettings {
            own_scheduler: true,
            ..settings("8.9")
        },
    )])
    .await;
    let run = run_step(&sim, "c", Component::Zeebe, 1, &[], &[]).await;
    assert!(!run.success);
    let message = run.termination_message.unwrap();
    assert!(message.contains("rejects explicit backup IDs"), "{message}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_event_log_shows_the_documented_order_and_the_pause_window() {
    let sim = simulator(vec![(
        "c",
        ClusterSettings {
            backup_duration_ms: 50,
            ..settings("8.7.3")
        },
    )])
    .await;
    let (id, components) = (77, [Component::Operate, Component::Tasklist, Component::Optimize]);
    for component in components {
        client(&sim, "c", component).trigger(id).await.unwrap();
    }
    for component in components {
        assert_eq!(
            wait_terminal(&client(&sim, "c", component), id).await,
            SnapshotState::Completed
        );
    }
    let exporting = exporting(&sim, "c");
    pause(&sim, "c").await.unwrap();
    for component in [Component::Records, Component::Zeebe] {
        let client = client(&sim, "c", component);
        client.trigger(id).await.unwrap();
        assert_eq!(wait_terminal(&client, id).await, SnapshotState::Completed);
    }
    exporting.resume().await.unwrap();

    let state = sim.cluster("c").unwrap();
    let operations: Vec<(Api, &str)> = state
        .events
        .iter()
        .map(|e| (e.api, e.operation.as_str()))
        .collect();
    assert_eq!(
        operations,
        [
            (Api::Operate, "take"),
            (Api::Tasklist, "take"),
            (Api::Optimize, "take"),
            (Api::Exporting, "soft-pause"),
            (Api::Records, "take"),
            (Api::Zeebe, "take"),
            (Api::Exporting, "resume"),
        ]
    );
    let [pause] = state.pause_intervals.as_slice() else {
        panic!("{:?}", state.pause_intervals)
    };
    let resumed = pause.resumed_at.unwrap();
    let zeebe = &state.backups[&as_sim(Component::Zeebe)][&id];
    let records = &state.snapshots["camunda_zeebe_records_backup_77"];
    assert!(pause.soft && pause.paused_at <= records.started_at && zeebe.completes_at <= resumed);
    let web_apps_done = components
        .iter()
        .map(|c| state.backups[&as_sim(*c)][&id].completes_at)
        .max()
        .unwrap();
    assert!(web_apps_done <= pause.paused_at);
    sim.shutdown().await;
}

/// The restore side of the search engine, as a restore uses it: find the backup's snapshots, delete
/// exactly the cluster's indices by name, restore each snapshot and follow its recovery until the data
/// is back at the backup point.
#[tokio::test]
async fn a_restore_finds_the_backup_s_snapshots_deletes_by_name_and_brings_the_data_back() {
    let sim = simulator(vec![("c1", settings("8.8.0"))]).await;
    let id = 42;
    for component in [Component::WebApps, Component::Records] {
        let client = client(&sim, "c1", component);
        client.trigger(id).await.unwrap();
        assert_eq!(wait_terminal(&client, id).await, SnapshotState::Completed);
    }
    let at_backup = sim.cluster("c1").unwrap().indices;
    sim.advance_data("c1", 5).await.unwrap();
    let url = sim.component_url("c1", as_sim(Component::Records)).unwrap();
    let restore = SearchRestore::new(http(url), "camunda", None).unwrap();

    let snapshots = restore.snapshots_of(id as i64).await.unwrap();
    let names: Vec<&str> = snapshots.iter().map(|s| s.snapshot.as_str()).collect();
    assert!(
        names.contains(&"camunda_zeebe_records_backup_42")
            && names
                .iter()
                .any(|n| n.starts_with("camunda_webapps_42_8.8.0_part_")),
        "{names:?}"
    );
    assert!(
        snapshots
            .iter()
            .all(|s| s.state == "SUCCESS" && !s.indices.is_empty())
    );
    assert!(
        restore.snapshots_of(7).await.unwrap().is_empty(),
        "an unknown ID has none"
    );

    // The cluster's own indices by prefix; the ones of another release share the engine and stay.
    let prefixes: Vec<String> = ["operate", "tasklist", "camunda", "zeebe-record"]
        .map(String::from)
        .into();
    let own = restore.indices(&prefixes).await.unwrap();
    assert!(
        !own.is_empty()
            && own
                .iter()
                .all(|i| prefixes.iter().any(|p| i.starts_with(p.as_str())))
    );
    let refused = restore
        .delete_indices(&["operate-*".to_string()])
        .await
        .unwrap_err();
    assert!(matches!(refused, ApiError::Config { .. }), "{refused}");
    restore.delete_indices(&own).await.unwrap();
    assert!(restore.indices(&prefixes).await.unwrap().is_empty());
    let left = sim.cluster("c1").unwrap().indices;
    assert!(
        left.contains_key("prod2-operate-list-view-8.3.0_") && left.contains_key("other-app-logs-2026.12.01")
    );

    for snapshot in &snapshots {
        restore.restore(&snapshot.snapshot).await.unwrap();
    }
    let restored: Vec<&String> = snapshots.iter().flat_map(|s| &s.indices).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let recovery = restore.recovery().await.unwrap();
        let done = restored
            .iter()
            .all(|index| recovery.iter().any(|(i, stage)| i == *index && stage == "done"));
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "not restored: {recovery:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = sim.cluster("c1").unwrap().indices;
    for index in restored {
        assert_eq!(
            now.get(index).map(|i| i.docs),
            at_backup.get(index).map(|i| i.docs),
            "{index} is back at the backup point"
        );
    }
    // Restoring again over the restored indices is refused, as Elasticsearch refuses it.
    let again = restore.restore(&snapshots[0].snapshot).await.unwrap_err();
    assert!(
        matches!(&again, ApiError::InvalidRequest { message } if message.contains("already exists")),
        "{again}"
    );
    sim.shutdown().await;
}
