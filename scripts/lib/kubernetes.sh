# Builds a real Kubernetes control plane from Go modules (kube-apiserver, etcd, kube-scheduler,
# kube-controller-manager), kwok as its node and helm, once, into a cache outside the work tree.
# Sourced by scripts/kube-cluster; needs only `go` (the machine's, or one named by GOTOOLCHAIN).

K8S_VERSION=1.36.1
ETCD_VERSION=3.6.8 # the version Kubernetes 1.36.1 pins in its go.mod
KWOK_VERSION=0.8.0
HELM_VERSION=3.22.0
K8S_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/streamspace/k8s-$K8S_VERSION"
K8S_BIN="$K8S_CACHE/bin"
K8S_BINARIES=(etcd kube-apiserver kube-scheduler kube-controller-manager kubectl kwok helm)

k8s_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

k8s_built() {
    local bin
    for bin in "${K8S_BINARIES[@]}"; do [ -x "$K8S_BIN/$bin" ] || return 1; done
    [ -d "$K8S_CACHE/kwok-module" ]
}

# The module that builds the four control-plane binaries. kube-apiserver and friends cannot be
# `go install`ed (k8s.io/kubernetes' go.mod replaces its staging modules with local paths), so
# this module requires k8s.io/kubernetes and repeats each replace with the matching version.
k8s_write_module() {
    local src="$1" gomod staging minor="${K8S_VERSION#*.}"
    minor="${minor%%.*}"
    mkdir -p "$src"
    gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" \
        | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    [ -f "$gomod" ] || { echo "error: could not download k8s.io/kubernetes v$K8S_VERSION" >&2; return 1; }
    staging="$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")"
    {
        echo "module streamspace.local/k8s"
        echo
        echo "go 1.26"
        echo
        echo "require ("
        echo "	k8s.io/kubernetes v$K8S_VERSION"
        echo "	go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
        echo ")"
        echo
        for m in $staging; do echo "replace $m => $m v0.$minor.${K8S_VERSION##*.}"; done
    } >"$src/go.mod"
    local name app
    for name in kube-apiserver kube-scheduler kube-controller-manager; do
        case "$name" in
            kube-apiserver) app="NewAPIServerCommand" ;;
            kube-scheduler) app="NewSchedulerCommand" ;;
            kube-controller-manager) app="NewControllerManagerCommand" ;;
        esac
        mkdir -p "$src/$name"
        cat >"$src/$name/main.go" <<GO
// Shaped like upstream's cmd/$name main.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/$name/app"
)

func main() {
	os.Exit(cli.Run(app.$app()))
}
GO
    done
    mkdir -p "$src/kubectl"
    cat >"$src/kubectl/main.go" <<'GO'
// kubectl at the server's version (the machine's may be outside the supported skew).
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
GO
    mkdir -p "$src/etcd"
    cat >"$src/etcd/main.go" <<'GO'
// etcd's own entry point, at the version Kubernetes pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
GO
}

k8s_build_one() { # name, then the command that builds it
    local name="$1" start=$SECONDS
    shift
    printf '    building %-24s ' "$name" >&2
    if ! "$@" >"$K8S_CACHE/build-$name.log" 2>&1; then
        echo "failed" >&2
        tail -n 30 "$K8S_CACHE/build-$name.log" >&2
        return 1
    fi
    echo "done in $((SECONDS - start)) s" >&2
}

# Builds whatever is missing; a warm cache returns at once.
k8s_ensure_built() {
    k8s_built && return 0
    if ! command -v go >/dev/null; then
        echo "error: the Kubernetes test cluster is built from Go modules and needs Go 1.26 or newer: install it (https://go.dev/doc/install, or Debian's golang-go)" >&2
        return 1
    fi
    local start=$SECONDS src="$K8S_CACHE/src" ver minor="${K8S_VERSION#*.}"
    minor="${minor%%.*}"
    k8s_log "building Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION and helm $HELM_VERSION from Go modules into $K8S_CACHE (once; about 10 minutes on 2 cores)"
    mkdir -p "$K8S_BIN"
    if [ ! -f "$src/go.sum" ] || [ ! -f "$src/kubectl/main.go" ]; then
        k8s_write_module "$src" || return 1
        k8s_build_one "module graph (go mod tidy)" sh -c "cd '$src' && go mod tidy" || return 1
    fi
    ver="-X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
    local name
    for name in etcd kube-apiserver kube-scheduler kube-controller-manager kubectl; do
        [ -x "$K8S_BIN/$name" ] && continue
        k8s_build_one "$name" sh -c "cd '$src' && go build -trimpath -ldflags '-s -w $ver' -o '$K8S_BIN/$name.tmp' ./$name && mv '$K8S_BIN/$name.tmp' '$K8S_BIN/$name'" || return 1
    done
    if [ ! -x "$K8S_BIN/kwok" ]; then
        k8s_build_one kwok env GOBIN="$K8S_BIN" go install -trimpath -ldflags "-s -w" \
            "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" || return 1
    fi
    if [ ! -x "$K8S_BIN/helm" ]; then
        # Without these, helm assumes Kubernetes 1.20 and refuses charts needing a newer one.
        k8s_build_one helm env GOBIN="$K8S_BIN" go install -trimpath -ldflags "-s -w \
            -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION \
            -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
            -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
            "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" || return 1
    fi
    # kwok ships no built-in stages and CRDs are applied from its module: keep a copy.
    if [ ! -d "$K8S_CACHE/kwok-module" ]; then
        local kwok_dir
        kwok_dir="$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" \
            | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
        [ -d "$kwok_dir/kustomize" ] || { echo "error: kwok's module has no kustomize/ folder" >&2; return 1; }
        mkdir -p "$K8S_CACHE/kwok-module.tmp"
        cp -r "$kwok_dir/kustomize" "$K8S_CACHE/kwok-module.tmp/"
        chmod -R u+w "$K8S_CACHE/kwok-module.tmp"
        mv "$K8S_CACHE/kwok-module.tmp" "$K8S_CACHE/kwok-module"
    fi
    k8s_log "Kubernetes binaries built in $((SECONDS - start)) s"
}
