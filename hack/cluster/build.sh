#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go module proxy, once, into the cache:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy
#   (k8s.io/kubernetes),
#   etcd (go.etcd.io/etcd/server/v3), kwok (sigs.k8s.io/kwok), helm (helm.sh/helm/v3),
#   prometheus and promtool (github.com/prometheus/prometheus, with Kubernetes service discovery);
#   and the Prometheus Operator's ServiceMonitor, PodMonitor and PrometheusRule CRDs (its module).
# Binaries go to $MODELYARD_CACHE/k8s/$KUBERNETES_VERSION/bin (default ~/.cache/modelyard);
# a <tool>.version stamp beside each makes a changed pin rebuild just that tool.
# Only the wrapper go.mod/go.sum files under hack/cluster/go/ are committed, never binaries.
# Usage: hack/cluster/build.sh [--print-bin | --with-prometheus]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${MODELYARD_CACHE:-$HOME/.cache/modelyard}
bin=$cache/k8s/$KUBERNETES_VERSION/bin
if [[ ${1:-} == --print-bin ]]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"
command -v go >/dev/null || export PATH=/usr/local/go/bin:$PATH
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS=-mod=mod
minor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION")
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)

fresh() {  # fresh TOOL VERSION: true when the cached binary matches the pin
  [[ -x $bin/$1 && -f $bin/$1.version && $(<"$bin/$1.version") == "$2" ]]
}

stamp() { echo "$2" >"$bin/$1.version"; echo "built $1 $2 in $3 s"; }

wrapper() {  # wrapper NAME: cd into the wrapper module, creating it on first use
  mkdir -p "$here/go/$1"
  cd "$here/go/$1"
  [[ -f go.mod ]] || go mod init "modelyard.invalid/cluster/$1" >/dev/null 2>&1
}

build_kubernetes() {
  local tools=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
  local t start=$SECONDS
  local all_fresh=1
  for t in "${tools[@]}"; do fresh "$t" "$KUBERNETES_VERSION" || all_fresh=0; done
  ((all_fresh)) && return 0
  wrapper kubernetes
  if ! grep -q "k8s.io/kubernetes $KUBERNETES_VERSION" go.mod; then
    local staging=v0.${KUBERNETES_VERSION#v1.} upstream m
    upstream=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    # The staging modules are derived from upstream's own replace block, never hand-kept.
    for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$upstream"); do
      go mod edit -replace="$m=$m@$staging"
    done
    go get "k8s.io/kubernetes@$KUBERNETES_VERSION"
    printf 'package tools\n\nimport (\n' >tools.go
    for t in "${tools[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$t" >>tools.go; done
    printf ')\n' >>tools.go
    sed -i '1i //go:build tools\n' tools.go
    go mod tidy
  fi
  local ldflags="-s -w" p
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
  done
  go build -trimpath -ldflags "$ldflags" -o "$bin/" "${tools[@]/#/k8s.io/kubernetes/cmd/}"
  for t in "${tools[@]}"; do stamp "$t" "$KUBERNETES_VERSION" $((SECONDS - start)); done
}

build_simple() {  # build_simple TOOL MODULE PACKAGE VERSION LDFLAGS [STAMP]
  local tool=$1 module=$2 package=$3 version=$4 ldflags=$5 start=$SECONDS
  local tag=${6:-$4}  # what the stamp records: a change of it rebuilds the tool
  fresh "$tool" "$tag" && return 0
  wrapper "$tool"
  if ! grep -q "$module $version" go.mod; then
    go get "$module@$version"
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >tools.go
    go mod tidy
  fi
  go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$tool" "$package"
  stamp "$tool" "$tag" $((SECONDS - start))
}

build_also() {  # build_also TOOL WRAPPER PACKAGE VERSION LDFLAGS: one more command of a wrapper's module
  local tool=$1 package=$3 version=$4 ldflags=$5 start=$SECONDS
  fresh "$tool" "$version" && return 0
  wrapper "$2"
  if ! grep -q "\"$package\"" tools.go; then
    printf '\nimport _ "%s"\n' "$package" >>tools.go
    go mod tidy
  fi
  go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$tool" "$package"
  stamp "$tool" "$version" $((SECONDS - start))
}

build_simple etcd go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 "$ETCD_VERSION" \
  "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
build_simple kwok sigs.k8s.io/kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" \
  "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
# helm's default Kubernetes version (`helm template`, `helm lint`) is stamped at build time from
# the client-go it is built with, as helm's own Makefile does; unstamped it says v1.20.
helm_k8s_minor=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
  python3 -c 'import json,re,sys; mod=open(json.load(sys.stdin)["GoMod"]).read(); print(re.search(r"k8s.io/client-go v0\.(\d+)", mod).group(1))')
helm_k8s="-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$helm_k8s_minor"
helm_k8s+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$helm_k8s_minor"
build_simple helm helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $helm_k8s" "$HELM_VERSION k8s-1.$helm_k8s_minor"
if [[ ${1:-} == --with-prometheus ]]; then
  # Debian's prometheus is built without Kubernetes service discovery: build the upstream one.
  prom_minor=${PROMETHEUS_VERSION#v0.}  # v0.313.5 is Prometheus 3.13.5
  prom_version=${prom_minor:0:1}.${prom_minor:1}
  build_simple prometheus github.com/prometheus/prometheus \
    github.com/prometheus/prometheus/cmd/prometheus "$PROMETHEUS_VERSION" \
    "-X github.com/prometheus/common/version.Version=$prom_version"
  # promtool (rule checks and rule unit tests) from the same module, version and module cache.
  build_also promtool prometheus github.com/prometheus/prometheus/cmd/promtool \
    "$PROMETHEUS_VERSION" "-X github.com/prometheus/common/version.Version=$prom_version"
fi
build_kubernetes

# kwok needs its stage definitions (node/pod lifecycles); they ship in its module, not its binary.
stages=$bin/../kwok-stages
if [[ ! -f $stages/$KWOK_VERSION ]]; then
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/kustomize/stage
  mkdir -p "$stages"
  cp "$src/node/fast/node-initialize.yaml" "$src/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
    "$src/pod/fast/pod-ready.yaml" "$src/pod/fast/pod-complete.yaml" "$src/pod/fast/pod-delete.yaml" "$stages/"
  chmod 644 "$stages"/*.yaml
  touch "$stages/$KWOK_VERSION"
fi
# The Prometheus Operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule), which the Helm
# chart's optional monitoring objects are validated against; they ship in its Go module.
monitoring=$bin/../crds/monitoring.coreos.com
if [[ ! -f $monitoring/$PROMETHEUS_OPERATOR_VERSION ]]; then
  src=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/example/prometheus-operator-crd
  rm -rf "$monitoring" && mkdir -p "$monitoring"
  cp "$src"/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml "$monitoring/"
  chmod 644 "$monitoring"/*.yaml
  touch "$monitoring/$PROMETHEUS_OPERATOR_VERSION"
fi
ls -la "$bin"
