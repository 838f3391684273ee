#!/usr/bin/env bash
# Static checks of the Helm chart (no cluster needed): `helm lint --strict` and `helm template` for the
# default values (cluster-wide), the namespaced mode, the Console API with the certificate it issues
# itself, and everything optional turned on (its Console API with a Secret of yours), plus checks of
# what the rendered manifests must and must not contain. Exits non-zero on the first failure.
#
#   scripts/chart-check.sh        (helm from scripts/tools.sh, or $C8B_HELM)
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=charts/camunda-backup-operator
HELM=${C8B_HELM:-$(bash scripts/tools.sh)}
out=$(mktemp -d "${TMPDIR:-/tmp}/c8b-chart-check.XXXXXX")
trap 'rm -rf "$out"' EXIT
started=$(date +%s)

fail() { printf '[chart-check] FAIL: %s\n' "$*" >&2; exit 1; }
log() { printf '[chart-check] %s\n' "$*" >&2; }

modes=(default namespaced api optional)
args_default=()
args_namespaced=(--set watchNamespace=team-a)
args_api=(--set watchNamespace=team-a --set consoleApi.enabled=true)
args_optional=(--set watchNamespace=team-a --set replicas=2 --set metrics.serviceMonitor.enabled=true
  --set metrics.prometheusRule.enabled=true --set stepJob.image.repository=example.org/step
  --set stepJob.image.tag=1.2.3 --set consoleApi.enabled=true --set consoleApi.tls.secretName=c8b-api-tls)

for mode in "${modes[@]}"; do
  declare -n extra="args_$mode"
  log "helm lint --strict ($mode)"
  "$HELM" lint --strict "$CHART" "${extra[@]}" >"$out/lint-$mode.log" 2>&1 \
    || { cat "$out/lint-$mode.log" >&2; fail "helm lint ($mode)"; }
  log "helm template ($mode)"
  "$HELM" template c8b "$CHART" --namespace c8b-system "${extra[@]}" >"$out/$mode.yaml" 2>"$out/template-$mode.log" \
    || { cat "$out/template-$mode.log" >&2; fail "helm template ($mode)"; }
  unset -n extra
done

# Settings that must be refused.
if "$HELM" template c8b "$CHART" --set replicas=2 --set leaderElection.enabled=false >/dev/null 2>&1; then
  fail "replicas=2 without leader election must be refused"
fi
if "$HELM" template c8b "$CHART" --set 'watchNamespace=Not_A_Namespace' >/dev/null 2>&1; then
  fail "an invalid watchNamespace must be refused"
fi

# What the rendered manifests must contain.
python3 - "$out" <<'PY' || fail "rendered manifests (see above)"
import sys, yaml, pathlib
out = pathlib.Path(sys.argv[1])
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

def docs(mode):
    return [d for d in yaml.safe_load_all((out / f"{mode}.yaml").read_text()) if d]

def kinds(ds):
    return sorted(f"{d['kind']}/{d['metadata'].get('namespace', '-')}/{d['metadata']['name']}" for d in ds)

for mode in ("default", "namespaced", "api", "optional"):
    ds = docs(mode)
    by_kind = {}
    for d in ds:
        by_kind.setdefault(d["kind"], []).append(d)
    check(not any(d["kind"] == "CustomResourceDefinition" for d in ds), f"{mode}: CRDs belong in crds/, not templates")
    all_deps = by_kind.get("Deployment", [])
    api_deps = [d for d in all_deps if d["metadata"]["name"].endswith("-api")]
    deps = [d for d in all_deps if d not in api_deps]
    check(len(deps) == 1, f"{mode}: one operator Deployment, got {kinds(ds)}")
    # The Console API endpoint: only when enabled, its own Deployment, Service and ServiceAccount, never
    # selected by the operator's selector (nor the operator's Pods by its own).
    check(len(api_deps) == (1 if mode in ("api", "optional") else 0), f"{mode}: Console API Deployment: {kinds(ds)}")
    for api in api_deps:
        apod = api["spec"]["template"]["spec"]
        ac = apod["containers"][0]
        check(ac["args"][:1] == ["api"], f"{mode}: the api subcommand: {ac['args']}")
        # Its certificate: by default the chart's empty Secret <fullname>-api-tls, which the endpoint
        # fills and renews (get/update on that name only); with consoleApi.tls.secretName, the user's
        # Secret, only read. Read through the API, never mounted; issued for the Service's DNS names.
        issued = mode == "api"
        tls_secret = api["metadata"]["name"] + "-tls" if issued else "c8b-api-tls"
        source = "operator" if issued else "external"
        for flag in (f"--tls-secret={tls_secret}", "--tls-secret-namespace=c8b-system", f"--tls-cert-source={source}"):
            check(flag in ac["args"], f"{mode}: api TLS flag {flag} in {ac['args']}")
        hosts = [a.split("=", 1)[1].split(",") for a in ac["args"] if a.startswith("--tls-hosts=")]
        check(hosts and f"{api['metadata']['name']}.c8b-system.svc" in hosts[0], f"{mode}: api TLS hosts {hosts}")
        check(issued == any(a.startswith("--tls-cert-lifetime=") for a in ac["args"]), f"{mode}: lifetimes only when issued")
        check(not apod.get("volumes") and not ac.get("volumeMounts"), f"{mode}: no TLS volume: {apod.get('volumes')}")
        tls_roles = [d for d in by_kind.get("Role", []) if d["metadata"]["name"] == api["metadata"]["name"] + "-tls"]
        check(len(tls_roles) == 1 and tls_roles[0]["metadata"]["namespace"] == "c8b-system", f"{mode}: the api's TLS Role: {kinds(ds)}")
        for role in tls_roles:
            check(role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [tls_secret],
                                     "verbs": ["get", "update"] if issued else ["get"]}], f"{mode}: the api's TLS rule: {role['rules']}")
        tls_bindings = [d for d in by_kind.get("RoleBinding", []) if d["metadata"]["name"] == api["metadata"]["name"] + "-tls"]
        check(len(tls_bindings) == 1 and tls_bindings[0]["subjects"][0]["name"] == apod["serviceAccountName"],
              f"{mode}: the api's TLS RoleBinding: {tls_bindings}")
        api_secrets = [d for d in by_kind.get("Secret", []) if d["metadata"]["name"] == tls_secret]
        check(len(api_secrets) == (1 if issued else 0) and all("data" not in d for d in api_secrets),
              f"{mode}: the api's Secret rendered empty only when issued: {api_secrets}")
        check(apod.get("securityContext", {}).get("runAsNonRoot") is True, f"{mode}: api pod runAsNonRoot")
        check(apod.get("securityContext", {}).get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{mode}: api seccomp")
        asc = ac.get("securityContext", {})
        check(asc.get("allowPrivilegeEscalation") is False and asc.get("readOnlyRootFilesystem") is True
              and asc.get("capabilities", {}).get("drop") == ["ALL"], f"{mode}: api container restricted")
        check(ac.get("readinessProbe", {}).get("httpGet", {}).get("scheme") == "HTTPS", f"{mode}: api readiness over HTTPS")
        check(apod["serviceAccountName"].endswith("-api"), f"{mode}: api has its own ServiceAccount")
        op_sel = deps[0]["spec"]["selector"]["matchLabels"] if deps else {}
        api_labels = api["spec"]["template"]["metadata"]["labels"]
        check(not all(api_labels.get(k) == v for k, v in op_sel.items()), f"{mode}: the operator's selector must not match api Pods")
        check(any(d["kind"] == "Service" and d["metadata"]["name"] == api["metadata"]["name"] for d in ds), f"{mode}: api Service")
    if not deps:
        continue
    dep = deps[0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = c.get("args", [])
    psc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    # Restricted Pod Security Standard.
    check(psc.get("runAsNonRoot") is True, f"{mode}: pod runAsNonRoot")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{mode}: seccompProfile RuntimeDefault")
    check(sc.get("allowPrivilegeEscalation") is False, f"{mode}: allowPrivilegeEscalation false")
    check(sc.get("readOnlyRootFilesystem") is True, f"{mode}: readOnlyRootFilesystem")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{mode}: capabilities drop ALL")
    # Probes on the HTTP port.
    check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/livez", f"{mode}: liveness /livez")
    check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{mode}: readiness /readyz")
    check(any(p.get("name") == "http" for p in c.get("ports", [])), f"{mode}: http port")
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace",
          f"{mode}: POD_NAMESPACE from the downward API")
    check(args[:1] == ["run"], f"{mode}: args start with run: {args}")
    check("--leader-elect" in args, f"{mode}: leader election on by default")
    check(any(a.startswith("--lease-name=") for a in args), f"{mode}: --lease-name")
    # The Console API's review rights are cluster-scoped by nature (TokenReview, SubjectAccessReview
    # have no namespace) and read no data: the one cluster-wide grant allowed in namespaced mode.
    reviews = [d for d in by_kind.get("ClusterRole", []) + by_kind.get("ClusterRoleBinding", [])
               if d["metadata"]["name"].endswith("-api-auth")]
    for review in reviews:
        for rule in review.get("rules", []):
            check(set(rule["resources"]) <= {"tokenreviews", "subjectaccessreviews"} and rule["verbs"] == ["create"],
                  f"{mode}: the api's cluster-wide role only creates reviews: {rule}")
    cluster_roles = [d for d in by_kind.get("ClusterRole", []) + by_kind.get("ClusterRoleBinding", []) if d not in reviews]
    roles = by_kind.get("Role", [])
    if mode == "default":
        # The operator's ClusterRole and the webhook's (caBundle of its one configuration), each bound.
        check(len([d for d in cluster_roles if d["kind"] == "ClusterRole"]) == 2
              and len([d for d in cluster_roles if d["kind"] == "ClusterRoleBinding"]) == 2,
              f"default: the operator's and the webhook's ClusterRole and bindings: {kinds(ds)}")
        check(not any(a.startswith("--namespace") for a in args), f"default: no --namespace: {args}")
        check(dep["spec"]["replicas"] == 1, "default: one replica")
    else:
        # Nothing cluster-wide in namespaced mode but the Console API's reviews (above) and the webhook's
        # ClusterRole, which names its one ValidatingWebhookConfiguration and grants nothing else.
        for role in [d for d in cluster_roles if d["kind"] == "ClusterRole"]:
            for rule in role["rules"]:
                check(rule["resources"] == ["validatingwebhookconfigurations"] and len(rule.get("resourceNames", [])) == 1
                      and set(rule["verbs"]) <= {"get", "patch"},
                      f"{mode}: cluster-wide rule in namespaced mode: {rule}")
        check("--namespace=team-a" in args, f"{mode}: --namespace=team-a in {args}")
        check(any(r["metadata"]["namespace"] == "team-a" for r in roles), f"{mode}: a Role in team-a")
        for b in by_kind.get("RoleBinding", []):
            check(b["subjects"][0]["namespace"] == "c8b-system", f"{mode}: binding subject in the release namespace")
    # The Lease Role is namespaced to the release and limited to the one Lease for get/update.
    lease = [r for r in roles if r["metadata"]["name"].endswith("-leader-election")]
    check(len(lease) == 1 and lease[0]["metadata"]["namespace"] == "c8b-system", f"{mode}: lease Role in c8b-system")
    # No rule grants wildcards, or writes on secrets, pods or CamundaCluster/BackupSchedule specs.
    for role in by_kind.get("ClusterRole", []) + roles:
        for rule in role["rules"]:
            verbs, res = set(rule["verbs"]), set(rule["resources"])
            check("*" not in verbs and "*" not in res and "*" not in rule["apiGroups"], f"{mode}: wildcard in {rule}")
            if res & {"secrets", "pods"} and not rule.get("resourceNames"):
                check(verbs <= {"get", "list"}, f"{mode}: writes on {res}")
            if res & {"secrets"}:
                # The webhook's and the Console API's own Secrets may be updated (their certificates), by name only.
                if rule.get("resourceNames"):
                    check(verbs <= {"get", "update"}, f"{mode}: a certificate Secret: get/update only: {rule}")
                else:
                    check(verbs == {"get"}, f"{mode}: secrets must be get only")
            # The finalizer on a cluster needs patch; a cluster's deletion deletes its schedules.
            if res & {"camundaclusters"}:
                check(verbs <= {"get", "list", "watch", "patch"}, f"{mode}: writes on CamundaCluster: {rule}")
            # The Console API's role maps PUT/DELETE …/backups/schedule onto one BackupSchedule (a PUT
            # patches its two fields).
            is_api = role["metadata"]["name"].endswith("-api")
            if res & {"backupschedules"}:
                allowed = {"get", "create", "patch", "delete"} if is_api else {"get", "list", "watch", "delete"}
                check(verbs <= allowed, f"{mode}: writes on BackupSchedule: {rule}")
            if is_api:
                patches_only_schedules = "patch" not in verbs or res == {"backupschedules"}
                check(not res & {"secrets", "pods", "jobs"} and patches_only_schedules, f"{mode}: api role too broad: {rule}")
    # The admission webhook (on by default): only CREATE of the two kinds, never blocking when down.
    vwcs = by_kind.get("ValidatingWebhookConfiguration", [])
    check(len(vwcs) == 1, f"{mode}: one ValidatingWebhookConfiguration: {kinds(ds)}")
    for vwc in vwcs:
        names = sorted(w["name"] for w in vwc["webhooks"])
        check(names == ["clusterbackups.webhook.c8backup.dev", "clusterrestores.webhook.c8backup.dev"], f"{mode}: webhooks {names}")
        for w in vwc["webhooks"]:
            check(w["failurePolicy"] == "Ignore", f"{mode}: failurePolicy Ignore: {w}")
            check(w["sideEffects"] == "None", f"{mode}: sideEffects None")
            check(w["admissionReviewVersions"] == ["v1"], f"{mode}: admissionReviewVersions [v1]")
            check(1 <= w["timeoutSeconds"] <= 30, f"{mode}: timeoutSeconds")
            check(all(r["operations"] == ["CREATE"] and r["apiGroups"] == ["c8backup.dev"] for r in w["rules"]),
                  f"{mode}: only CREATE of our kinds: {w['rules']}")
            check(w["clientConfig"]["service"]["namespace"] == "c8b-system", f"{mode}: the webhook Service")
            check("caBundle" not in w["clientConfig"], f"{mode}: the caBundle is injected, not rendered")
            if mode != "default":
                check(w.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "team-a",
                      f"{mode}: namespaced mode only sends the watched namespace: {w}")
    check(any(a.startswith("--webhook-addr=") for a in args), f"{mode}: --webhook-addr")
    check(any(p.get("name") == "webhook" for p in c.get("ports", [])), f"{mode}: webhook port")
    services = [sv for sv in by_kind.get("Service", []) if any(p["name"] == "webhook" for p in sv["spec"]["ports"])]
    check(len(services) == 1 and services[0]["spec"]["ports"][0]["port"] == 443, f"{mode}: the webhook Service on 443")
    secrets = [d for d in by_kind.get("Secret", []) if d["metadata"]["name"].endswith("-webhook-tls")]
    check(len(secrets) == 1 and "data" not in secrets[0], f"{mode}: the webhook Secret, rendered empty: {secrets}")
    if mode == "optional":
        check(dep["spec"]["replicas"] == 2, "optional: replicas 2")
        check("--step-image=example.org/step:1.2.3" in args, f"optional: step image override: {args}")
        check(len(by_kind.get("ServiceMonitor", [])) == 1, "optional: ServiceMonitor")
        rules = [r for g in by_kind.get("PrometheusRule", [{}])[0].get("spec", {}).get("groups", []) for r in g["rules"]]
        text = " ".join(r["expr"] for r in rules)
        for metric in ("c8backup_last_successful_backup_timestamp_seconds", "c8backup_backups", "c8backup_exporting_paused"):
            check(metric in text, f"optional: PrometheusRule uses {metric}")
    else:
        check("ServiceMonitor" not in by_kind and "PrometheusRule" not in by_kind, f"{mode}: monitoring off by default")
        check(dep["spec"]["strategy"]["type"] == "RollingUpdate", f"{mode}: RollingUpdate with leader election")

for e in errors:
    print(f"[chart-check] {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY

# The webhook off: none of its objects or flags. With cert-manager: a Certificate and the CA
# injector's annotation; the operator only reads the Secret (no update, no caBundle rights).
"$HELM" template c8b "$CHART" --set webhook.enabled=false >"$out/no-webhook.yaml"
grep -qE 'ValidatingWebhookConfiguration|--webhook|webhook-tls' "$out/no-webhook.yaml" && fail "webhook objects with webhook.enabled=false"
"$HELM" template c8b "$CHART" --namespace c8b-system --set webhook.certificates.source=cert-manager >"$out/cert-manager.yaml"
python3 - "$out/cert-manager.yaml" <<'PY' || fail "cert-manager mode (see above)"
import sys, yaml
ds = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {}
for d in ds:
    by.setdefault(d["kind"], []).append(d)
errors = []
vwc = by["ValidatingWebhookConfiguration"][0]
if vwc["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from") != "c8b-system/c8b-camunda-backup-operator-webhook":
    errors.append(f"inject-ca-from annotation: {vwc['metadata']}")
cert = by.get("Certificate", [{}])[0]
if cert.get("spec", {}).get("secretName") != "c8b-camunda-backup-operator-webhook-tls" or \
   "c8b-camunda-backup-operator-webhook.c8b-system.svc" not in cert.get("spec", {}).get("dnsNames", []):
    errors.append(f"Certificate: {cert}")
if "Issuer" not in by:
    errors.append("a self-signed Issuer without issuerRef")
if "Secret" in by:
    errors.append("no operator-managed Secret with cert-manager")
args = by["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["args"]
if "--webhook-cert-source=external" not in args or any(a.startswith("--webhook-configuration") for a in args):
    errors.append(f"args: {args}")
for role in by.get("Role", []) + by.get("ClusterRole", []):
    for rule in role["rules"]:
        if "secrets" in rule["resources"] and rule.get("resourceNames") and rule["verbs"] != ["get"]:
            errors.append(f"cert-manager mode: the Secret is read only: {rule}")
        if "validatingwebhookconfigurations" in rule["resources"]:
            errors.append(f"cert-manager mode: no caBundle rights: {rule}")
for e in errors:
    print(f"[chart-check] {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
if "$HELM" template c8b "$CHART" --set webhook.certificates.source=vault >/dev/null 2>&1; then
  fail "an unknown webhook.certificates.source must be refused"
fi

# Without leader election the rollout must not overlap two operators.
"$HELM" template c8b "$CHART" --set leaderElection.enabled=false >"$out/no-le.yaml"
grep -q 'type: Recreate' "$out/no-le.yaml" || fail "strategy Recreate without leader election"
grep -q -- '--leader-elect' "$out/no-le.yaml" && fail "--leader-elect without leader election"
grep -q 'name: c8b-camunda-backup-operator-leader-election' "$out/no-le.yaml" && fail "a lease Role without leader election"

# hostNetwork and extraEnv (for test clusters whose API server is only on the node's loopback): off and
# empty by default, rendered when set.
grep -q 'hostNetwork' "$out/default.yaml" && fail "hostNetwork must be off by default"
"$HELM" template c8b "$CHART" --set hostNetwork=true --set 'extraEnv[0].name=KUBERNETES_SERVICE_HOST' \
  --set-string 'extraEnv[0].value=127.0.0.1' >"$out/hostnet.yaml"
grep -q 'hostNetwork: true' "$out/hostnet.yaml" || fail "hostNetwork=true not rendered"
grep -q 'dnsPolicy: ClusterFirstWithHostNet' "$out/hostnet.yaml" || fail "hostNetwork without dnsPolicy ClusterFirstWithHostNet"
grep -A1 -- '- name: KUBERNETES_SERVICE_HOST' "$out/hostnet.yaml" | grep -q 'value: 127.0.0.1' \
  || fail "extraEnv not rendered into the container's env"
grep -A3 -- '- name: C8B_LEASE_IDENTITY' "$out/hostnet.yaml" | grep -q 'fieldPath: metadata.name' \
  || fail "hostNetwork: the Lease identity must be the Pod name (HOSTNAME is the node's)"
grep -q 'C8B_LEASE_IDENTITY' "$out/default.yaml" && fail "C8B_LEASE_IDENTITY only with hostNetwork"
grep -q 'maxSurge: 0' "$out/hostnet.yaml" || fail "hostNetwork: a rolling update must not surge (the port is taken)"

log "chart OK in $(( $(date +%s) - started ))s"
