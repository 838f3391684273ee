//! The benchmark (`scripts/bench.sh`): the operator (release build) on the local control plane, with
//! the API server's audit log counting its requests (it runs as its own user, `c8b-operator`).
//!
//! Phases (`C8B_BENCH_PHASES`, default `scale,pause,load,lag`):
//! - scale: `C8B_BENCH_CLUSTERS` (1000) clusters with a schedule and 3 retained backups each; peak and
//!   steady RSS, CPU when idle, API requests per minute when idle (the goal is no writes);
//! - pause: `C8B_BENCH_PER_PROCEDURE` (3) backups of each documented procedure (8.2-8.7 hard and soft
//!   pause, 8.8+), all at once: the exporting pause beside the snapshots taken inside it;
//! - load: `C8B_BENCH_RUNNING` (100) backups at once; CPU, API requests per completed backup by verb,
//!   time from creation to completion and the operator's own share of it;
//! - lag: `C8B_BENCH_SCHEDULES` (20) per-minute schedules side by side with as many CronJobs handled by
//!   kube-controller-manager, for `C8B_BENCH_LAG_MINUTES` (3) minutes; lag from slot to object creation.
//!
//! Results are printed as a Markdown table and appended to `C8B_BENCH_OUT` (`target/bench-results.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::BufRead,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use c8b_testkit::{harness, node_agent, support};
use camunda_backup_operator::api::{BackupPhase, BackupSchedule, CamundaCluster, ClusterBackup};
use camunda_simulator::{ClusterSettings, Component, Simulator, SimulatorConfig};
use chrono::{DateTime, Timelike, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::batch::v1::Job;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

/// How long each simulated component takes to complete a backup (as in issue 16's measurement).
const COMPONENT_BACKUP_MS: u64 = 1_000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory and CPU time of a process, from /proc.
struct ProcStats {
    rss_kib: u64,
    peak_rss_kib: u64,
    cpu_seconds: f64,
}

fn proc_stats(pid: u32) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces): utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<u64> = after.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    ProcStats {
        rss_kib: field("VmRSS:"),
        peak_rss_kib: field("VmHWM:"),
        cpu_seconds: ticks as f64 / 100.0,
    }
}

/// Requests of user `c8b-operator` in the audit log between two times, by verb.
fn audited_requests(log: &Path, from: DateTime<Utc>, to: DateTime<Utc>) -> BTreeMap<String, u64> {
    let mut verbs = BTreeMap::new();
    let Ok(file) = std::fs::File::open(log) else {
        return verbs;
    };
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if event["stage"] != "RequestReceived" || event["user"]["username"] != "c8b-operator" {
            continue;
        }
        let at = event["requestReceivedTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok());
        if at.is_some_and(|at| at >= from && at < to) {
            *verbs
                .entry(event["verb"].as_str().unwrap_or("?").to_string())
                .or_insert(0) += 1;
        }
    }
    verbs
}

fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Bench {
    client: kube::Client,
    ns: String,
    sim: camunda_simulator::SimulatorHandle,
    /// Started once the objects of the first phase exist, so start-up is measured on a full cache.
    operator: Option<harness::Operator>,
    audit: PathBuf,
    rows: Vec<(String, String)>,
}

impl Bench {
    fn record(&mut self, what: &str, value: String) {
        println!("{what}: {value}");
        self.rows.push((what.to_string(), value));
    }

    fn pid(&mut self) -> u32 {
        let ns = self.ns.clone();
        self.operator
            .get_or_insert_with(|| start_operator(&ns))
            .pid()
            .expect("operator pid")
    }

    async fn create_clusters(&self, names: &[String], limits: serde_json::Value) {
        self.create_clusters_of("8.8.0", names, limits).await;
    }

    async fn create_clusters_of(&self, version: &str, names: &[String], limits: serde_json::Value) {
        let clusters: Api<CamundaCluster> = Api::namespaced(self.client.clone(), &self.ns);
        stream::iter(names.iter().cloned())
            .for_each_concurrent(16, |name| {
                let clusters = clusters.clone();
                let limits = limits.clone();
                let sim = &self.sim;
                async move {
                    let mut settings = ClusterSettings::new(version.parse().expect("version"));
                    settings.backup_duration_ms = COMPONENT_BACKUP_MS;
                    sim.put_cluster(&name, settings).expect("sim");
                    let url = |c| json!({ "url": sim.component_url(&name, c).expect("url") });
                    let mut spec = json!({
                        "version": version,
                        "elasticsearch": { "url": url(Component::Records)["url"], "snapshotRepository": "camunda" },
                        "backup": limits
                    });
                    if version.starts_with("8.8") {
                        spec["orchestration"] = url(Component::Zeebe);
                    } else {
                        for (key, component) in [
                            ("zeebe", Component::Zeebe),
                            ("operate", Component::Operate),
                            ("tasklist", Component::Tasklist),
                        ] {
                            spec[key] = url(component);
                        }
                    }
                    let object: CamundaCluster = serde_json::from_value(json!({
                        "apiVersion": "c8backup.dev/v1alpha1", "kind": "CamundaCluster",
                        "metadata": { "name": name }, "spec": spec
                    }))
                    .expect("cluster");
                    clusters.create(&PostParams::default(), &object).await.expect("create cluster");
                }
            })
            .await;
    }
}

impl Bench {
    /// Waits until the operator has set up every named cluster (finalizer, first status).
    async fn wait_set_up(&mut self, names: &[String]) {
        let clusters: Api<CamundaCluster> = Api::namespaced(self.client.clone(), &self.ns);
        self.pid();
        harness::wait_for(
            "the new clusters to be set up",
            Duration::from_secs(600),
            || async {
                let listed = clusters.list(&Default::default()).await.ok()?.items;
                let ready = listed
                    .iter()
                    .filter(|c| names.contains(&c.name_any()))
                    .filter(|c| !c.finalizers().is_empty() && c.status.is_some())
                    .count();
                (ready == names.len()).then_some(())
            },
        )
        .await;
    }

    /// Creates one backup `<cluster>-run` of each named cluster, all at once, and returns them finished.
    async fn run_backups(&self, names: &[String]) -> Vec<ClusterBackup> {
        let backups: Api<ClusterBackup> = Api::namespaced(self.client.clone(), &self.ns);
        let start = Instant::now();
        stream::iter(names.iter().cloned())
            .for_each_concurrent(16, |cluster| {
                let backups = backups.clone();
                async move {
                    let object: ClusterBackup = serde_json::from_value(json!({
                        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
                        "metadata": { "name": format!("{cluster}-run") }, "spec": { "clusterRef": { "name": cluster } }
                    }))
                    .expect("backup");
                    backups.create(&PostParams::default(), &object).await.expect("create");
                }
            })
            .await;
        loop {
            let list = backups.list(&Default::default()).await.expect("list").items;
            let runs: Vec<ClusterBackup> = list
                .into_iter()
                .filter(|b| names.iter().any(|n| b.name_any() == format!("{n}-run")))
                .collect();
            let finished = runs
                .iter()
                .filter(|b| {
                    b.status
                        .as_ref()
                        .and_then(|s| s.phase)
                        .is_some_and(|p| p.is_terminal())
                })
                .count();
            if finished == names.len() {
                return runs;
            }
            assert!(
                start.elapsed() < Duration::from_secs(1800),
                "{finished} of {} backups finished",
                names.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Mean exporting pause of finished backups, in seconds.
fn mean_pause(done: &[ClusterBackup]) -> f64 {
    let pauses: Vec<f64> = done
        .iter()
        .filter_map(|b| {
            let exporting = b.status.as_ref()?.exporting.as_ref()?;
            Some((exporting.resumed_at? - exporting.paused_at).num_milliseconds() as f64 / 1000.0)
        })
        .collect();
    mean(&pauses)
}

/// The mean of some figures (0 when there are none).
fn mean(figures: &[f64]) -> f64 {
    figures.iter().sum::<f64>() / figures.len().max(1) as f64
}

/// The exporting pause of each documented procedure, a few backups at once: the pause, the time of
/// the snapshots taken inside it (its physical limit: they run one after the other, each taking the
/// simulator's backup duration) and the difference, the overhead.
async fn pause(bench: &mut Bench, per_procedure: u64) {
    // (version, what the pause covers, the snapshots inside it)
    let procedures = [
        ("8.4.2", "8.2-8.7 hard pause", 2),
        ("8.7.3", "8.2-8.7 soft pause", 2),
        ("8.8.0", "8.8+ soft pause", 3),
    ];
    let mut all = Vec::new();
    for (version, _, _) in procedures {
        let names: Vec<String> = (0..per_procedure)
            .map(|i| format!("pause-{}-{i}", version.replace('.', "")))
            .collect();
        bench
            .create_clusters_of(version, &names, json!({ "minInterval": "1s" }))
            .await;
        all.extend(names);
    }
    bench.wait_set_up(&all).await;
    let done = bench.run_backups(&all).await;
    for (version, what, inside) in procedures {
        let prefix = format!("pause-{}-", version.replace('.', ""));
        let ours: Vec<ClusterBackup> = done
            .iter()
            .filter(|b| b.name_any().starts_with(&prefix))
            .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed))
            .cloned()
            .collect();
        let components = f64::from(inside) * COMPONENT_BACKUP_MS as f64 / 1000.0;
        let paused = mean_pause(&ours);
        bench.record(
            &format!(
                "exporting pause, {what} ({version}, {} of {per_procedure} completed, all {} at once): pause / snapshots inside it / overhead (mean)",
                ours.len(),
                done.len()
            ),
            format!("{paused:.2} s / {components:.2} s / {:.2} s", paused - components),
        );
    }
}

async fn scale(bench: &mut Bench, clusters: u64) {
    let names: Vec<String> = (0..clusters).map(|i| format!("c{i:04}")).collect();
    let started = Instant::now();
    bench
        .create_clusters(&names, json!({ "minInterval": "1s" }))
        .await;
    // Three completed backups per cluster, made directly (their data is in nobody's way), and a daily
    // schedule per cluster.
    let backups: Api<ClusterBackup> = Api::namespaced(bench.client.clone(), &bench.ns);
    let schedules: Api<BackupSchedule> = Api::namespaced(bench.client.clone(), &bench.ns);
    let now = Utc::now();
    stream::iter(names.iter().flat_map(|c| (0..3).map(move |k| (c.clone(), k))))
        .for_each_concurrent(16, |(cluster, k)| {
            let backups = backups.clone();
            async move {
                let name = format!("{cluster}-old-{k}");
                let object: ClusterBackup = serde_json::from_value(json!({
                    "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
                    "metadata": { "name": name }, "spec": { "clusterRef": { "name": cluster } }
                }))
                .expect("backup");
                backups.create(&PostParams::default(), &object).await.expect("create backup");
                let done = now - chrono::Duration::hours(3 - k);
                let status = json!({ "status": {
                    "phase": "Completed", "backupId": done.timestamp(), "startTime": done, "completionTime": done,
                    "reason": "Completed", "duration": "1m0s", "observedGeneration": 1 } });
                backups.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await.expect("status");
            }
        })
        .await;
    stream::iter(names.iter().cloned())
        .for_each_concurrent(16, |cluster| {
            let schedules = schedules.clone();
            async move {
                let object: BackupSchedule = serde_json::from_value(json!({
                    "apiVersion": "c8backup.dev/v1alpha1", "kind": "BackupSchedule",
                    "metadata": { "name": format!("{cluster}-daily") },
                    "spec": { "clusterRef": { "name": cluster }, "schedule": "30 2 * * *", "timeZone": "Europe/Berlin" }
                }))
                .expect("schedule");
                schedules.create(&PostParams::default(), &object).await.expect("create schedule");
            }
        })
        .await;
    bench.record(
        "objects",
        format!(
            "{clusters} clusters, {} backups, {clusters} schedules (made in {:?})",
            clusters * 3,
            started.elapsed()
        ),
    );

    // Start the operator and wait until it has seen everything: finalizers on every backup, every
    // cluster's status summarised.
    let start = Instant::now();
    let mut peak = 0;
    let clusters_api: Api<CamundaCluster> = Api::namespaced(bench.client.clone(), &bench.ns);
    loop {
        peak = peak.max(proc_stats(bench.pid()).peak_rss_kib);
        // Metadata only, and every few seconds: the bench's own reads must not be what slows the API
        // server down (a full list of 30,000 backups costs it about a second).
        let finalized = backups
            .list_metadata(&Default::default())
            .await
            .expect("list")
            .items
            .iter()
            .filter(|b| !b.finalizers().is_empty())
            .count() as u64;
        let summarised = clusters_api
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .iter()
            .filter(|c| c.status.as_ref().is_some_and(|s| s.retained_count == 3))
            .count() as u64;
        let scheduled = schedules
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .iter()
            .filter(|s| s.status.is_some())
            .count() as u64;
        if finalized == clusters * 3 && summarised == clusters && scheduled == clusters {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "the operator did not settle: {finalized} finalized, {summarised} summarised, {scheduled} scheduled"
        );
        tokio::time::sleep(Duration::from_secs(if clusters > 2000 { 5 } else { 2 })).await;
    }
    bench.record(
        &format!("{clusters} clusters: start-up until every object was seen"),
        format!("{:.1} s", start.elapsed().as_secs_f64()),
    );
    let idle_seconds = env_number("C8B_BENCH_IDLE_SECONDS", 60);
    // Let the start-up writes drain before measuring idle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before = proc_stats(bench.pid());
    let from = Utc::now();
    tokio::time::sleep(Duration::from_secs(idle_seconds)).await;
    let to = Utc::now();
    let after = proc_stats(bench.pid());
    let minutes = idle_seconds as f64 / 60.0;
    bench.record(
        &format!("{clusters} clusters: peak RSS"),
        format!("{:.1} MiB", after.peak_rss_kib.max(peak) as f64 / 1024.0),
    );
    bench.record(
        &format!("{clusters} clusters: steady RSS (idle)"),
        format!("{:.1} MiB", after.rss_kib as f64 / 1024.0),
    );
    bench.record(
        &format!("{clusters} clusters: CPU when idle"),
        format!("{:.2} s/min", (after.cpu_seconds - before.cpu_seconds) / minutes),
    );
    let verbs = audited_requests(&bench.audit, from, to);
    let writes: u64 = verbs.iter().filter(|(v, _)| is_write(v)).map(|(_, n)| n).sum();
    let total: u64 = verbs.values().sum();
    bench.record(
        &format!("{clusters} clusters: API requests per minute when idle"),
        format!("{:.1} ({:?})", total as f64 / minutes, verbs),
    );
    bench.record(
        &format!("{clusters} clusters: API writes per minute when idle"),
        format!("{:.1}", writes as f64 / minutes),
    );
}

async fn load(bench: &mut Bench, running: u64) {
    let names: Vec<String> = (0..running).map(|i| format!("load{i:03}")).collect();
    bench
        .create_clusters(&names, json!({ "minInterval": "1s" }))
        .await;
    // Requests are counted per backup: let the operator finish setting up the new clusters (finalizer,
    // first status) before the window opens.
    bench.wait_set_up(&names).await;
    let before = proc_stats(bench.pid());
    let from = Utc::now();
    let start = Instant::now();
    let done = bench.run_backups(&names).await;
    let elapsed = start.elapsed();
    let to = Utc::now();
    let after = proc_stats(bench.pid());
    let completed = done
        .iter()
        .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed))
        .count();
    bench.record(
        "backups run at once",
        format!(
            "{running} ({completed} completed in {:.0} s)",
            elapsed.as_secs_f64()
        ),
    );
    bench.record(
        "CPU while they ran",
        format!(
            "{:.2} s/min",
            (after.cpu_seconds - before.cpu_seconds) / (elapsed.as_secs_f64() / 60.0)
        ),
    );
    let verbs = audited_requests(&bench.audit, from, to);
    let per_backup: BTreeMap<&String, f64> = verbs
        .iter()
        .map(|(v, n)| (v, *n as f64 / completed.max(1) as f64))
        .collect();
    let total: f64 = per_backup.values().sum();
    let listed: Vec<String> = per_backup.iter().map(|(v, n)| format!("{v} {n:.1}")).collect();
    bench.record(
        "API requests per completed backup",
        format!("{total:.1} ({})", listed.join(", ")),
    );
    // The operator's share: the time between one stage's end and the next stage's start, and around
    // them (Job path time, which includes Pod start and the step's own polling, is reported apart).
    let mut gaps = Vec::new();
    let mut job_path = Vec::new();
    let mut totals = Vec::new();
    for backup in &done {
        let Some(status) = &backup.status else { continue };
        let created = backup
            .creation_timestamp()
            .map(|t| t.0.as_millisecond())
            .unwrap_or_default();
        let mut steps: Vec<_> = status
            .steps
            .iter()
            .filter_map(|s| Some((s.start_time?, s.finish_time?)))
            .collect();
        steps.sort();
        let Some(end) = status.completion_time else {
            continue;
        };
        totals.push((end.timestamp_millis() - created) as f64 / 1000.0);
        let mut previous_end = DateTime::from_timestamp_millis(created).unwrap_or_default();
        for (start, finish) in &steps {
            if *start >= previous_end {
                gaps.push((*start - previous_end).num_milliseconds() as f64 / 1000.0);
            }
            job_path.push((*finish - *start).num_milliseconds() as f64 / 1000.0);
            previous_end = previous_end.max(*finish);
        }
        gaps.push((end - previous_end).num_milliseconds().max(0) as f64 / 1000.0);
    }
    bench.record("creation to completion (mean)", format!("{:.1} s", mean(&totals)));
    // The pause's physical limit: the snapshots taken while it lasts (8.8: web apps, records, Zeebe),
    // one after the other, each taking the simulator's backup duration.
    let components = 3.0 * COMPONENT_BACKUP_MS as f64 / 1000.0;
    let paused = mean_pause(&done);
    bench.record(
        &format!("exporting pause, 8.8+ soft pause, {running} at once: pause / snapshots inside it / overhead (mean)"),
        format!("{paused:.2} s / {components:.2} s / {:.2} s", paused - components),
    );
    bench.record(
        "operator overhead per step (mean gap between stages)",
        format!("{:.2} s", mean(&gaps)),
    );
    bench.record(
        "step time (start to finish; inside the pause the operator's own reads, mean)",
        format!("{:.2} s", mean(&job_path)),
    );
}

/// Lag of every object a watch sees, from the minute it belongs to.
async fn watch_lags<K>(api: Api<K>, labels: Option<String>, minutes: u64) -> Vec<f64>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let mut config = watcher::Config::default();
    if let Some(labels) = labels {
        config = config.labels(&labels);
    }
    let mut seen = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(minutes * 60 + 5);
    let mut events = watcher(api, config).applied_objects().boxed();
    while let Ok(Ok(Some(object))) = tokio::time::timeout_at(deadline, events.try_next()).await {
        let now = Utc::now();
        seen.entry(object.name_any()).or_insert_with(|| {
            let slot = now
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(now);
            (now - slot).num_milliseconds() as f64 / 1000.0
        });
    }
    let mut lags: Vec<f64> = seen.into_values().collect();
    lags.sort_by(|a, b| a.total_cmp(b));
    lags
}

async fn lag(bench: &mut Bench, schedules: u64, minutes: u64) {
    let names: Vec<String> = (0..schedules).map(|i| format!("lag{i:03}")).collect();
    bench
        .create_clusters(&names, json!({ "minInterval": "1s", "maxRetained": 1 }))
        .await;
    let schedules_api: Api<BackupSchedule> = Api::namespaced(bench.client.clone(), &bench.ns);
    bench.pid();
    // Kubernetes 1.20 serves CronJobs as batch/v1beta1 only.
    let cronjob_resource =
        kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("batch", "v1beta1", "CronJob"));
    let cronjobs: Api<kube::api::DynamicObject> =
        Api::namespaced_with(bench.client.clone(), &bench.ns, &cronjob_resource);
    for name in &names {
        let schedule: BackupSchedule = serde_json::from_value(json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "BackupSchedule", "metadata": { "name": name },
            "spec": { "clusterRef": { "name": name }, "schedule": "* * * * *" }
        }))
        .expect("schedule");
        schedules_api
            .create(&PostParams::default(), &schedule)
            .await
            .expect("create schedule");
        let cronjob: kube::api::DynamicObject = serde_json::from_value(json!({
            "apiVersion": "batch/v1beta1", "kind": "CronJob",
            "metadata": { "name": format!("{name}-cron") },
            "spec": { "schedule": "* * * * *", "jobTemplate": { "spec": { "template": { "spec": {
                "restartPolicy": "Never", "containers": [{ "name": "c", "image": "none" }] } } } } }
        }))
        .expect("cronjob");
        cronjobs
            .create(&PostParams::default(), &cronjob)
            .await
            .expect("create cronjob");
    }
    let backups: Api<ClusterBackup> = Api::namespaced(bench.client.clone(), &bench.ns);
    let jobs: Api<Job> = Api::namespaced(bench.client.clone(), &bench.ns);
    let (ours, cron) = tokio::join!(
        watch_lags(backups, Some("c8backup.dev/schedule".into()), minutes),
        // The scheduled backups' step Jobs carry the operator's label; the CronJobs' Jobs do not.
        watch_lags(jobs, Some("!app.kubernetes.io/managed-by".into()), minutes),
    );
    let gate = std::env::var("C8B_KCM_FLAGS").unwrap_or_default();
    let gate = if gate.contains("CronJobControllerV2=true") {
        "CronJobControllerV2 on"
    } else {
        "CronJobControllerV2 off (1.20 default)"
    };
    for (who, lags) in [("BackupSchedule", &ours), (&*format!("CronJob, {gate}"), &cron)] {
        bench.record(
            &format!("schedule lag, {who}"),
            format!(
                "p50 {:.2} s, p99 {:.2} s, max {:.2} s over {} slots",
                percentile(lags, 0.5),
                percentile(lags, 0.99),
                lags.last().copied().unwrap_or(f64::NAN),
                lags.len()
            ),
        );
    }
}

/// The target of a measure and its value before issue 16 (empty where there was none).
fn reference(what: &str) -> (&'static str, &'static str) {
    let table: &[(&str, &str, &str)] = &[
        ("1000 clusters: start-up", "", "17.9 s"),
        ("1000 clusters: peak RSS", "< 40 MiB", "63.5 MiB"),
        ("1000 clusters: steady RSS", "< 40 MiB", "63.5 MiB"),
        ("10000 clusters: peak RSS", "< 256 MiB", ""),
        ("10000 clusters: steady RSS", "< 256 MiB", ""),
        ("CPU when idle", "0", "0.00 s/min"),
        ("API requests per minute when idle", "0", "0"),
        ("API writes per minute when idle", "0", "0"),
        ("API requests per completed backup", "<= 20", "50.7"),
        (
            "exporting pause",
            "overhead < 1 s",
            "5.2 s pause for 2.0 s of components (8.7)",
        ),
        (
            "operator overhead per step",
            "< 1 s",
            "0.61 s (5 at once), 2.1 s (100)",
        ),
        (
            "schedule lag",
            "p99 < 1 s, ahead of CronJob",
            "0.09 / 0.26 / 0.31 s",
        ),
    ];
    table
        .iter()
        .find(|(prefix, _, _)| what.contains(prefix) || what.starts_with(prefix))
        .map_or(("", ""), |(_, target, before)| (*target, *before))
}

fn start_operator(ns: &str) -> harness::Operator {
    let kubeconfig = PathBuf::from(std::env::var("KUBECONFIG").expect("KUBECONFIG"));
    let operator_kubeconfig = kubeconfig.with_file_name("operator.kubeconfig");
    let args = [
        "run",
        "--namespace",
        ns,
        "--step-image",
        "c8b-bench",
        "--http-addr",
        "127.0.0.1:0",
    ];
    harness::Operator::start_with_kubeconfig(
        args.iter().map(|a| a.to_string()).collect(),
        &[("C8B_LOG_LEVEL".into(), "warn".into())],
        &operator_kubeconfig,
        std::env::temp_dir().join(format!("c8b-bench-operator-{ns}.log")),
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let phases = std::env::var("C8B_BENCH_PHASES").unwrap_or_else(|_| "scale,pause,load,lag".into());
        let audit =
            PathBuf::from(std::env::var("C8B_AUDIT_LOG").expect("C8B_AUDIT_LOG: run scripts/bench.sh"));
        let client = support::client().await;
        support::install_crds(&client).await;
        let ns = support::TestNamespace::new(&client, "bench").await;
        let sim = Simulator::start(SimulatorConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            clusters: Vec::new(),
            state_file: None,
        })
        .await
        .expect("simulator");
        let agent = node_agent::spawn(client.clone(), &ns.name, harness::binary());
        let mut bench = Bench {
            client,
            ns: ns.name.clone(),
            sim,
            operator: None,
            audit,
            rows: Vec::new(),
        };
        if phases.contains("scale") {
            scale(&mut bench, env_number("C8B_BENCH_CLUSTERS", 1000)).await;
        }
        if phases.contains("pause") {
            pause(&mut bench, env_number("C8B_BENCH_PER_PROCEDURE", 3)).await;
        }
        if phases.contains("load") {
            load(&mut bench, env_number("C8B_BENCH_RUNNING", 100)).await;
        }
        if phases.contains("lag") {
            lag(
                &mut bench,
                env_number("C8B_BENCH_SCHEDULES", 20),
                env_number("C8B_BENCH_LAG_MINUTES", 3),
            )
            .await;
        }
        let mut table = format!(
            "\n### Benchmark {} ({phases})\n\n| measure | value | target | before issue 16 |\n|---|---|---|---|\n",
            Utc::now().format("%Y-%m-%d %H:%M UTC")
        );
        for (what, value) in &bench.rows {
            let (target, before) = reference(what);
            let _ = writeln!(table, "| {what} | {value} | {target} | {before} |");
        }
        println!("{table}");
        // scripts/bench.sh runs several phases on fresh control planes and prints their rows as one
        // table: each run appends its rows to C8B_BENCH_ROWS.
        let (out, text) = match std::env::var("C8B_BENCH_ROWS") {
            Ok(rows) => (rows, table.lines().skip(5).map(|l| format!("{l}\n")).collect::<String>()),
            Err(_) => (
                std::env::var("C8B_BENCH_OUT").unwrap_or_else(|_| "target/bench-results.md".into()),
                table,
            ),
        };
        let previous = std::fs::read_to_string(&out).unwrap_or_default();
        std::fs::write(&out, previous + &text).expect("write the results");
        println!("results appended to {out}");
        agent.abort();
        drop(bench.operator.take());
        bench.sim.shutdown().await;
    });
}
