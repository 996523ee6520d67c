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

    log "helm: wrong values are refused with a clear message"
    expect_refusal "jwt.secret" r "$CP_CHART" --set database.url=postgres://db/x
    expect_refusal "replicaCount" r "$CP_CHART" "${CP_VALUES[@]}" --set replicaCount=0
    expect_refusal "logFormat" r "$CP_CHART" "${CP_VALUES[@]}" --set logFormat=xml
    expect_refusal "shutdownGraceSeconds" r "$CP_CHART" "${CP_VALUES[@]}" --set shutdownGraceSeconds=0
    expect_refusal "maxSessions" r "$AGENT_CHART" "${AGENT_VALUES[@]}" --set maxSessions=0
    expect_refusal "agentId" r "$AGENT_CHART" "${AGENT_VALUES[@]}" --set agentId=qa-
    expect_refusal "controlPlaneUrl" r "$AGENT_CHART" "${AGENT_VALUES[@]}" --set controlPlaneUrl=http://cp

    log "everything rendered passes kubectl apply --dry-run=server --validate=strict"
    local ns="chart-check-$$" rendered="$ROOT/target/rendered"
    mkdir -p "$rendered"
    kubectl_ create namespace "$ns" >/dev/null
    kubectl_ label namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
    helm_ template cp "$CP_CHART" -n "$ns" "${CP_VALUES[@]}" --set ingress.enabled=true >"$rendered/control-plane.yaml"
    helm_ template cp "$CP_CHART" -n "$ns" "${CP_VALUES[@]}" --set replicaCount=3 >"$rendered/control-plane-replicas.yaml"
    helm_ template agent "$AGENT_CHART" -n "$ns" "${AGENT_VALUES[@]}" >"$rendered/agent.yaml"
    NAMESPACE="$ns" target/debug/streamspace-k8s-agent render --user alice --env TZ=UTC >"$rendered/session.yaml"
    NAMESPACE="$ns" target/debug/streamspace-k8s-agent render --ephemeral-home --vnc-port 5901 >"$rendered/session-ephemeral.yaml"
    NAMESPACE="$ns" STORAGE_CLASS=fast-ssd HOME_SIZE=20Gi target/debug/streamspace-k8s-agent render >"$rendered/session-storage-class.yaml"
    local file
    for file in "$rendered"/*.yaml; do
        kubectl_ apply --dry-run=server --validate=strict -n "$ns" -f "$file" >/dev/null \
            || die "$file does not pass server-side strict validation"
    done

    log "helm install --wait, upgrade and uninstall of both charts"
    helm_ install cp "$CP_CHART" -n "$ns" "${CP_VALUES[@]}" --set replicaCount=3 --wait --timeout 60s >/dev/null
    [ "$(kubectl_ -n "$ns" get deployment cp-streamspace-control-plane -o jsonpath='{.status.readyReplicas}')" = 3 ] \
        || die "the control-plane chart did not bring up 3 ready replicas"
    kubectl_ -n "$ns" get poddisruptionbudget cp-streamspace-control-plane >/dev/null \
        || die "the control-plane chart made no PodDisruptionBudget for 3 replicas"
    helm_ install agent "$AGENT_CHART" -n "$ns" "${AGENT_VALUES[@]}" --wait --timeout 60s >/dev/null
    helm_ upgrade cp "$CP_CHART" -n "$ns" "${CP_VALUES[@]}" --set logLevel=debug --wait --timeout 60s >/dev/null
    helm_ upgrade agent "$AGENT_CHART" -n "$ns" "${AGENT_VALUES[@]}" --set maxSessions=5 --wait --timeout 60s >/dev/null
    kubectl_ -n "$ns" get deployment agent-streamspace-k8s-agent \
        -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="MAX_SESSIONS")].value}' | grep -qx 5 \
        || die "helm upgrade did not change MAX_SESSIONS"
    # The JWT secret is the one given, not one made up at render time.
    kubectl_ -n "$ns" get secret cp-streamspace-control-plane -o jsonpath='{.data.jwt-secret}' \
        | base64 -d | grep -qx 0123456789abcdef0123456789abcdef || die "the JWT secret changed"
    helm_ uninstall agent -n "$ns" --wait >/dev/null
    helm_ uninstall cp -n "$ns" --wait >/dev/null
    [ -z "$(kubectl_ -n "$ns" get deployments,roles,rolebindings,networkpolicies,serviceaccounts -l app.kubernetes.io/managed-by=Helm -o name)" ] \
        || die "helm uninstall left objects behind"
    kubectl_ delete namespace "$ns" --wait=false >/dev/null
}
