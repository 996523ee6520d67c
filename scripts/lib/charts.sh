# Checks of both Helm charts against the real test cluster (sourced by scripts/test after
# start_kube_cluster): lint, schema refusals, server-side strict validation of everything
# they and the agent render, and install --wait / upgrade / uninstall.

helm_() { "$K8S_BIN/helm" --kubeconfig "$STREAMSPACE_TEST_KUBECONFIG" "$@"; }
kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$STREAMSPACE_TEST_KUBECONFIG" "$@"; }

CP_CHART="$ROOT/charts/streamspace-control-plane"
AGENT_CHART="$ROOT/charts/streamspace-k8s-agent"
CP_VALUES=(--set database.url=postgres://streamspace:secret@postgres:5432/streamspace
    --set jwt.secret=0123456789abcdef0123456789abcdef)
AGENT_VALUES=(--set agentId=k8s-eu-1 --set controlPlaneUrl=ws://streamspace-control-plane
    --set allowInsecureControlPlane=true --set token.value=t0ken)
CP_MONITORING=(--set metrics.serviceMonitor.enabled=true --set metrics.dashboard.enabled=true
    --set metrics.serviceMonitor.labels.release=prometheus)
AGENT_MONITORING=(--set metrics.podMonitor.enabled=true)

# The Prometheus Operator's CRDs, for validating the charts' ServiceMonitor and PodMonitor on
# the server: from the operator's Go module (its example/ holds them), through the Go proxy.
PROMETHEUS_OPERATOR_VERSION=v0.85.0
prometheus_operator_crds() {
    local dir
    dir="$(cd /tmp && go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | json '["Dir"]')"
    echo "$dir/example/prometheus-operator-crd"
}

# `helm template` must fail, and its message must say what is wrong.
expect_refusal() { # message, then helm template arguments
    local want="$1" out
    shift
    if out="$(helm_ template "$@" 2>&1)"; then
        die "helm template $* was accepted; expected a refusal naming: $want"
    fi
    grep -qF -- "$want" <<<"$out" || die "helm template $* said: $out (expected: $want)"
}

check_charts() {
    log "helm lint --strict"
    helm_ lint --strict "$CP_CHART" "${CP_VALUES[@]}" >/dev/null
    helm_ lint --strict "$AGENT_CHART" "${AGENT_VALUES[@]}" >/dev/null
    helm_ lint --strict "$CP_CHART" "${CP_VALUES[@]}" "${CP_MONITORING[@]}" >/dev/null
    helm_ lint --strict "$AGENT_CHART" "${AGENT_VALUES[@]}" "${AGENT_MONITORING[@]}" >/dev/null

    log "helm: wrong values are refused with a clear message"
    expect_refusal "jwt.secret" r "$CP_CHART" --set database.url=postgres://db/x
    expect_refusal "replicaCount" r "$CP_CHART" "${CP_VALUES[@]}" --set replicaCount=0
    expect_refusal "logFormat" r "$CP_CHART" "${CP_VALUES[@]}" --set logFormat=xml
    expect_refusal "shutdownGraceSeconds" r "$CP_CHART" "${CP_VALUES[@]}" --set shutdownGraceSeconds=0
    expect_refusal "userCacheTtl" r "$CP_CHART" "${CP_VALUES[@]}" --set userCacheTtl=soon
    expect_refusal "maxSessions" r "$AGENT_CHART" "${AGENT_VALUES[@]}" --set maxSessions=0
    expect_refusal "agentId" r "$AGENT_CHART" "${AGENT_VALUES[@]}" --set agentId=qa-
    expect_refusal "controlPlaneUrl" r "$AGENT_CHART" "${AGENT_VALUES[@]}" --set controlPlaneUrl=http://cp
    expect_refusal "interval" r "$CP_CHART" "${CP_VALUES[@]}" --set metrics.serviceMonitor.interval=soon
    expect_refusal "interval" r "$AGENT_CHART" "${AGENT_VALUES[@]}" --set metrics.podMonitor.interval=soon

    log "the Prometheus Operator's CRDs ($PROMETHEUS_OPERATOR_VERSION) for the charts' monitors"
    local crds
    crds="$(prometheus_operator_crds)"
    kubectl_ apply --server-side -f "$crds/monitoring.coreos.com_servicemonitors.yaml" \
        -f "$crds/monitoring.coreos.com_podmonitors.yaml" >/dev/null
    on_exit "$K8S_BIN/kubectl --kubeconfig $STREAMSPACE_TEST_KUBECONFIG delete crd servicemonitors.monitoring.coreos.com podmonitors.monitoring.coreos.com --wait=false >/dev/null 2>&1"
    kubectl_ wait --for condition=established --timeout 30s \
        crd/servicemonitors.monitoring.coreos.com crd/podmonitors.monitoring.coreos.com >/dev/null

    log "everything rendered passes kubectl apply --dry-run=server --validate=strict"
    local ns="chart-check-$$" rendered="$ROOT/target/rendered"
    mkdir -p "$rendered"
    kubectl_ create namespace "$ns" >/dev/null
    kubectl_ label namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
    helm_ template cp "$CP_CHART" -n "$ns" "${CP_VALUES[@]}" --set ingress.enabled=true >"$rendered/control-plane.yaml"
    helm_ template cp "$CP_CHART" -n "$ns" "${CP_VALUES[@]}" --set replicaCount=3 >"$rendered/control-plane-replicas.yaml"
    helm_ template agent "$AGENT_CHART" -n "$ns" "${AGENT_VALUES[@]}" >"$rendered/agent.yaml"
    helm_ template cp "$CP_CHART" -n "$ns" "${CP_VALUES[@]}" "${CP_MONITORING[@]}" >"$rendered/control-plane-monitoring.yaml"
    helm_ template agent "$AGENT_CHART" -n "$ns" "${AGENT_VALUES[@]}" "${AGENT_MONITORING[@]}" >"$rendered/agent-monitoring.yaml"
    grep -q '^kind: ServiceMonitor' "$rendered/control-plane-monitoring.yaml" || die "no ServiceMonitor rendered"
    grep -q '^kind: PodMonitor' "$rendered/agent-monitoring.yaml" || die "no PodMonitor rendered"
    NAMESPACE="$ns" target/debug/streamspace-k8s-agent render --user alice --env TZ=UTC >"$rendered/session.yaml"
    NAMESPACE="$ns" target/debug/streamspace-k8s-agent render --ephemeral-home --vnc-port 5901 >"$rendered/session-ephemeral.yaml"
    NAMESPACE="$ns" STORAGE_CLASS=fast-ssd HOME_SIZE=20Gi target/debug/streamspace-k8s-agent render >"$rendered/session-storage-class.yaml"
    local file
    for file in "$rendered"/*.yaml; do
        kubectl_ apply --dry-run=server --validate=strict -n "$ns" -f "$file" >/dev/null \
            || die "$file does not pass server-side strict validation"
    done

    log "helm install --wait, upgrade and uninstall of both charts"
    helm_ install cp "$CP_CHART" -n "$ns" "${CP_VALUES[@]}" "${CP_MONITORING[@]}" --set replicaCount=3 --wait --timeout 60s >/dev/null
    [ "$(kubectl_ -n "$ns" get deployment cp-streamspace-control-plane -o jsonpath='{.status.readyReplicas}')" = 3 ] \
        || die "the control-plane chart did not bring up 3 ready replicas"
    kubectl_ -n "$ns" get poddisruptionbudget cp-streamspace-control-plane >/dev/null \
        || die "the control-plane chart made no PodDisruptionBudget for 3 replicas"
    helm_ install agent "$AGENT_CHART" -n "$ns" "${AGENT_VALUES[@]}" "${AGENT_MONITORING[@]}" --wait --timeout 60s >/dev/null
    # The ServiceMonitor selects the control plane's Service; the PodMonitor the agent's pod.
    local selector
    selector="$(kubectl_ -n "$ns" get servicemonitor cp-streamspace-control-plane -o jsonpath='{.spec.selector.matchLabels}' \
        | python3 -c 'import json,sys; print(",".join(f"{k}={v}" for k, v in json.load(sys.stdin).items()))')"
    [ "$(kubectl_ -n "$ns" get service -l "$selector" -o name)" = service/cp-streamspace-control-plane ] \
        || die "the ServiceMonitor ($selector) does not select the control plane's Service"
    selector="$(kubectl_ -n "$ns" get podmonitor agent-streamspace-k8s-agent -o jsonpath='{.spec.selector.matchLabels}' \
        | python3 -c 'import json,sys; print(",".join(f"{k}={v}" for k, v in json.load(sys.stdin).items()))')"
    [ "$(kubectl_ -n "$ns" get pods -l "$selector" -o name | wc -l)" = 1 ] \
        || die "the PodMonitor ($selector) does not select the agent's pod"
    # The dashboard ConfigMap carries the chart's file as it is, with the sidecar's label.
    kubectl_ -n "$ns" get configmap -l grafana_dashboard=1 -o jsonpath='{.items[0].data.streamspace\.json}' \
        | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin) != json.load(open(sys.argv[1])))' \
            "$CP_CHART/dashboards/streamspace.json" || die "the dashboard ConfigMap differs from dashboards/streamspace.json"
    helm_ upgrade cp "$CP_CHART" -n "$ns" "${CP_VALUES[@]}" --set logLevel=debug --set userCacheTtl=5s \
        --wait --timeout 60s >/dev/null
    kubectl_ -n "$ns" get deployment cp-streamspace-control-plane \
        -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="USER_CACHE_TTL")].value}' | grep -qx 5s \
        || die "helm upgrade did not change USER_CACHE_TTL"
    helm_ upgrade agent "$AGENT_CHART" -n "$ns" "${AGENT_VALUES[@]}" --set maxSessions=5 --wait --timeout 60s >/dev/null
    kubectl_ -n "$ns" get deployment agent-streamspace-k8s-agent \
        -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="MAX_SESSIONS")].value}' | grep -qx 5 \
        || die "helm upgrade did not change MAX_SESSIONS"
    # The JWT secret is the one given, not one made up at render time.
    kubectl_ -n "$ns" get secret cp-streamspace-control-plane -o jsonpath='{.data.jwt-secret}' \
        | base64 -d | grep -qx 0123456789abcdef0123456789abcdef || die "the JWT secret changed"
    helm_ uninstall agent -n "$ns" --wait >/dev/null
    helm_ uninstall cp -n "$ns" --wait >/dev/null
    [ -z "$(kubectl_ -n "$ns" get deployments,roles,rolebindings,networkpolicies,serviceaccounts,configmaps,servicemonitors,podmonitors -l app.kubernetes.io/managed-by=Helm -o name)" ] \
        || die "helm uninstall left objects behind"
    kubectl_ delete namespace "$ns" --wait=false >/dev/null
}
