#!/usr/bin/env bash
# Build (or find cached) the kind node's base root file system from Debian's packages, as a tarball,
# and print its path. The kind stack's binaries and images are added on top by the harness
# (e2e/harness/kind.py); this is the part that changes only with the package list below.
#
#   KUBECTL_CYCLOPS_BUILD_CACHE   cache root (default ~/.cache/kubectl-cyclops)
set -euo pipefail

log() { printf 'kind-rootfs: %s\n' "$*" >&2; }

BUILD_REVISION=1
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
# What kind's own base image installs (images/base/Dockerfile), from Debian: systemd runs the
# node, containerd and runc run its containers, the rest are what kubeadm and kubelet call.
PACKAGES=(
    systemd systemd-sysv dbus libsystemd0 containerd runc iptables nftables iproute2 ethtool
    socat util-linux mount kmod libseccomp2 pigz e2fsprogs bash ca-certificates curl jq procps
    conntrack containernetworking-plugins busybox-static
)

command -v mmdebstrap >/dev/null || { log "mmdebstrap is missing: apt-get install mmdebstrap"; exit 1; }
root="${KUBECTL_CYCLOPS_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-cyclops}"
key=$(printf '%s\n' "$BUILD_REVISION" "$SUITE" "$MIRROR" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
dest="$root/kind-rootfs-$SUITE-$key"
if [[ -f "$dest/complete" ]]; then
    echo "$dest/rootfs.tar"
    exit 0
fi
mkdir -p "$root"
exec 9>"$root/.lock-rootfs"
flock 9
if [[ -f "$dest/complete" ]]; then
    echo "$dest/rootfs.tar"
    exit 0
fi
tmp=$(mktemp -d "$root/.rootfs-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "cold cache: mmdebstrap $SUITE with ${#PACKAGES[@]} packages into $dest (about a minute)"
started=$SECONDS
include=$(IFS=,; echo "${PACKAGES[*]}")
mmdebstrap --quiet --variant=minbase --include="$include" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$SUITE" "$tmp/rootfs.tar" "$MIRROR" >&2
touch "$tmp/complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "built in $((SECONDS - started))s, $(du -sh "$dest" | cut -f1) in $dest"
echo "$dest/rootfs.tar"
