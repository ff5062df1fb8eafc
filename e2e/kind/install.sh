#!/usr/bin/env bash
# Install, from Debian's packages, what the offline kind stack needs and this machine lacks: the
# container engine (docker.io, containerd, runc), mmdebstrap for the node's root file system,
# busybox-static for the test image, the CNI plugins, iptables and conntrack. Idempotent.
set -euo pipefail
packages=(docker.io containerd runc mmdebstrap busybox-static containernetworking-plugins iptables conntrack iproute2)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
command -v apt-get >/dev/null || { echo "kind-install: needs Debian's apt-get for: ${missing[*]}" >&2; exit 1; }
echo "kind-install: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
