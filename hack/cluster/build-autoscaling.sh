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
# --with-keda also builds KEDA's operator and metrics adapter (cmd/operator, cmd/adapter; about
# 15 min cold) into $MODELYARD_CACHE/keda/<version>/bin, for `make test-keda`; its wrapper
# (hack/cluster/go/keda) carries KEDA's own replace and exclude lines.
# Usage: hack/cluster/build-autoscaling.sh [--print-adapter | --print-keda-crds | --print-keda-bin | --with-keda]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${MODELYARD_CACHE:-$HOME/.cache/modelyard}
adapter_bin=$cache/prometheus-adapter/$PROMETHEUS_ADAPTER_VERSION/bin
keda_crds=$cache/keda/$KEDA_VERSION/crds
if [[ ${1:-} == --print-adapter ]]; then echo "$adapter_bin/adapter"; exit 0; fi
if [[ ${1:-} == --print-keda-crds ]]; then echo "$keda_crds"; exit 0; fi
keda_bin=$cache/keda/$KEDA_VERSION/bin
if [[ ${1:-} == --print-keda-bin ]]; then echo "$keda_bin"; exit 0; fi
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
if [[ ${1:-} == --with-keda && $(cat "$keda_bin/keda.version" 2>/dev/null) != "$KEDA_VERSION" ]]; then
  start=$SECONDS
  keda=github.com/kedacore/keda/v2
  mkdir -p "$keda_bin" "$here/go/keda"
  cd "$here/go/keda"
  if [[ ! -f go.mod ]] || ! grep -q "$keda $KEDA_VERSION" go.mod; then
    rm -f go.mod go.sum
    go mod init modelyard.invalid/cluster/keda >/dev/null 2>&1
    # KEDA's own go.mod lines (a dependency zip the proxy refuses, a retracted chi).
    go mod edit -replace=github.com/nexus-rpc/nexus-proto-annotations@v0.1.0=github.com/nexus-rpc/nexus-proto-annotations@v0.1.1-0.20260629224316-835bd8d49cb4
    go mod edit -exclude=github.com/go-chi/chi/v5@v5.2.3
    go get "$keda@$KEDA_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "%s/cmd/operator"\n\t_ "%s/cmd/adapter"\n)\n' "$keda" "$keda" >tools.go
    go mod tidy
  fi
  go build -trimpath -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION" \
    -o "$keda_bin/keda-operator" "$keda/cmd/operator"
  go build -trimpath -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION" \
    -o "$keda_bin/keda-adapter" "$keda/cmd/adapter"
  echo "$KEDA_VERSION" >"$keda_bin/keda.version"
  echo "built KEDA $KEDA_VERSION in $((SECONDS - start)) s"
fi
echo "$adapter_bin/adapter"
