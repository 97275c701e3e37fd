#!/usr/bin/env bash
# Installs what the real node (tier D) and the image builds need, from Debian's packages, when
# missing: containerd 1.6, runc, the CNI plugins, podman (image builds) and debootstrap (the
# local base image), plus gcc for the static pause binary. Needs root; a no-op once installed.
set -euo pipefail
packages=(containerd runc containernetworking-plugins podman debootstrap gcc libc6-dev iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
if ((EUID != 0)); then
  echo "node-deps: missing ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "node-deps: installed ${missing[*]}"
