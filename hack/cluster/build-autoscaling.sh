#!/usr/bin/env bash
# Builds the autoscaling parts of the local cluster, once, into the cache:
#   adapter (sigs.k8s.io/prometheus-adapter cmd/adapter at $PROMETHEUS_ADAPTER_VERSION), which
#   serves custom.metrics.k8s.io from deploy/prometheus-adapter/rules.yaml;
#   KEDA's CRDs (github.com/kedacore/keda/v2 at $KEDA_VERSION, config/crd/bases; no build), which
#   the operator's ScaledObject is validated against.
# The adapter goes to $MODELYARD_CACHE/prometheus-adapter/<version>/bin/adapter (default
# ~/.cache/modelyard), the CRDs to $MODELYARD_CACHE/keda/<version>/crds; a version stamp beside
# each makes a changed pin rebuild and anything else a no-op. The wrapper module
# hack/cluster/go/prometheus-adapter (go.mod, go.sum, tools.go) is committed, never the binary:
# `go install …@v0.12.0` fails here (the proxy refuses the @v/list its deprecation check reads),
# a wrapper with `go get` + `go mod tidy` works.
# Usage: hack/cluster/build-autoscaling.sh [--print-adapter | --print-keda-crds]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${MODELYARD_CACHE:-$HOME/.cache/modelyard}
adapter_bin=$cache/prometheus-adapter/$PROMETHEUS_ADAPTER_VERSION/bin
keda_crds=$cache/keda/$KEDA_VERSION/crds
if [[ ${1:-} == --print-adapter ]]; then echo "$adapter_bin/adapter"; exit 0; fi
if [[ ${1:-} == --print-keda-crds ]]; then echo "$keda_crds"; exit 0; fi
command -v go >/dev/null || export PATH=/usr/local/go/bin:$PATH
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS=-mod=mod

module=sigs.k8s.io/prometheus-adapter
version=$PROMETHEUS_ADAPTER_VERSION
if [[ ! -x $adapter_bin/adapter || $(cat "$adapter_bin/adapter.version" 2>/dev/null) != "$version" ]]; then
  start=$SECONDS
  mkdir -p "$adapter_bin" "$here/go/prometheus-adapter"
  cd "$here/go/prometheus-adapter"
  [[ -f go.mod ]] || go mod init modelyard.invalid/cluster/prometheus-adapter >/dev/null 2>&1
  if ! grep -q "$module $version" go.mod; then
    go get "$module@$version"
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/adapter"\n' "$module" >tools.go
    go mod tidy
  fi
  go build -trimpath -ldflags "-s -w" -o "$adapter_bin/adapter.tmp" "$module/cmd/adapter"
  mv "$adapter_bin/adapter.tmp" "$adapter_bin/adapter"
  echo "$version" >"$adapter_bin/adapter.version"
  echo "built prometheus-adapter $version in $((SECONDS - start)) s"
fi

if [[ ! -f $keda_crds/$KEDA_VERSION ]]; then
  src=$(go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/config/crd/bases
  rm -rf "$keda_crds" && mkdir -p "$keda_crds"
  cp "$src"/keda.sh_*.yaml "$keda_crds/"
  chmod 644 "$keda_crds"/*.yaml
  touch "$keda_crds/$KEDA_VERSION"
fi
echo "$adapter_bin/adapter"
