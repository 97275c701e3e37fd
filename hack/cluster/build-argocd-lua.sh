#!/usr/bin/env bash
# Builds argocd-lua, the harness that runs deploy/argocd/resource_customizations through Argo CD's
# own Lua machinery (package util/lua of github.com/argoproj/argo-cd/v3), once, into the cache.
# The wrapper module is hack/cluster/go/argocd-lua (go.mod, go.sum and main.go are committed, never
# the binary); its require line pins the Argo CD version and its replace block is copied from that
# version's own go.mod. The binary goes to $MODELYARD_CACHE/argocd/<version>/bin (default
# ~/.cache/modelyard), stamped with a hash of the wrapper's sources, so a changed pin or a changed
# harness rebuilds and anything else is a no-op. Prints the binary's path (last line of stdout).
# Usage: hack/cluster/build-argocd-lua.sh [--print-bin | --print-module-dir | --sync VERSION]
#   --print-module-dir  the pinned Argo CD module's source (its CRDs, docs), downloaded if needed
#   --sync VERSION      re-derive the wrapper's go.mod/go.sum for another Argo CD version
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
wrapper=$here/go/argocd-lua
module=github.com/argoproj/argo-cd/v3
cache=${MODELYARD_CACHE:-$HOME/.cache/modelyard}

use_go() {
  command -v go >/dev/null || export PATH=/usr/local/go/bin:$PATH
  if ! command -v go >/dev/null; then
    echo "build-argocd-lua: Go is not installed (go on PATH or /usr/local/go/bin)" >&2
    exit 1
  fi
  export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOTOOLCHAIN=local CGO_ENABLED=0
  export GOFLAGS=-mod=mod
}

if [[ ${1:-} == --sync ]]; then
  version=${2:?usage: $0 --sync VERSION}
  use_go
  cd "$wrapper"
  upstream=$(go mod download -json "$module@$version" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  rm -f go.mod go.sum
  go mod init modelyard.invalid/cluster/argocd-lua
  # Argo CD's replace block (k8s.io/* pinned to one minor, ...), never hand-kept.
  for r in $(go mod edit -json "$upstream" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    print("%s=%s@%s" % (r["Old"]["Path"], r["New"]["Path"], r["New"]["Version"]))'); do
    go mod edit -replace="$r"
  done
  go get "$module@$version"
  go mod tidy
  echo "synced $wrapper to $module $version" >&2
  exit 0
fi

version=$(awk -v m="$module" '$1 == m {print $2} $1 == "require" && $2 == m {print $3}' \
  "$wrapper/go.mod")
bin=$cache/argocd/$version/bin
if [[ ${1:-} == --print-bin ]]; then echo "$bin/argocd-lua"; exit 0; fi
if [[ ${1:-} == --print-module-dir ]]; then
  use_go
  go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
  exit 0
fi

sources() { cat "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/main.go" | sha256sum | cut -c1-16; }
if [[ -x $bin/argocd-lua && $(cat "$bin/argocd-lua.version" 2>/dev/null) == "$(sources)" ]]; then
  echo "$bin/argocd-lua"
  exit 0
fi
use_go
start=$SECONDS
mkdir -p "$bin"
cd "$wrapper"
go build -trimpath -ldflags "-s -w -X main.argocdVersion=$version" -o "$bin/argocd-lua.tmp" .
mv "$bin/argocd-lua.tmp" "$bin/argocd-lua"
sources >"$bin/argocd-lua.version"  # after the build: -mod=mod may have completed go.sum
echo "built argocd-lua ($module $version) in $((SECONDS - start)) s" >&2
echo "$bin/argocd-lua"
