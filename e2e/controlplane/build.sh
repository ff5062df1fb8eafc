#!/usr/bin/env bash
# Build the pinned control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, kwok, kwokctl) from Go modules into a cache outside
# the repository, and print the directory holding the binaries.
#
# `build.sh kind` builds the binaries of the offline kind node image: kubeadm, kubelet, kubectl,
# kube-proxy and etcd from the go.mod here (the same Kubernetes as the local control plane), and
# kind, CoreDNS (only the plugins kubeadm's Corefile uses) and the local-path provisioner from
# ../kind/stack/go.mod, and pause from the kubernetes module's C source.
#
# `build.sh krew` builds krew (as kubectl-krew) and validate-krew-manifest from krew/go.mod, for the
# release checks, into a cache of its own.
#
# `build.sh csi` builds the CSI stack instead (csi-provisioner, csi-resizer and
# our hostpath-csi driver) from csi/go.mod, into a cache of its own: it does not
# depend on KUBE_VERSION, and changing it never rebuilds a control plane.
#
# Versions come from go.mod next to this script (the newest Kubernetes), or for
# KUBE_VERSION=1.N from v1.N/go.mod (an older minor and its etcd); kwok and
# kwokctl always come from the go.mod here, built for the chosen version.
# The cache key covers those go.mod and go.sum files, the Go toolchain and BUILD_REVISION
# (bump it when a change here alters what is built), so a warm cache returns
# at once and any change of version rebuilds. A build writes into a
# temporary directory that is renamed into place only when every binary is
# built, so an interrupted build leaves nothing a later run would trust.
#
#   KUBECTL_CYCLOPS_BUILD_CACHE   cache root (default ~/.cache/kubectl-cyclops)
#   KUBE_VERSION                  1.N: an older minor from v1.N/go.mod (default: the newest)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

log() { printf 'controlplane: %s\n' "$*" >&2; }

BUILD_REVISION=2
what=${1:-controlplane}

command -v go >/dev/null || { log "go is not on PATH; install Go $(awk '/^go /{print $2}' go.mod) or newer"; exit 1; }

modver() { go list -m -f '{{.Version}}' "$1"; }
root="${KUBECTL_CYCLOPS_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-cyclops}"
mkdir -p "$root"
declare -A pkg flags dir

case $what in
controlplane)
    binaries=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwokctl)
    kwokv=$(modver sigs.k8s.io/kwok)
    moddir=$here
    if [[ -n "${KUBE_VERSION:-}" && "v$(modver k8s.io/kubernetes | cut -d. -f1,2 | tr -d v)" != "v${KUBE_VERSION}" ]]; then
        moddir="$here/v${KUBE_VERSION}"
        [[ -f "$moddir/go.mod" ]] || { log "no go.mod for Kubernetes $KUBE_VERSION (have: $(cd "$here" && ls -d v1.* 2>/dev/null | tr '\n' ' ')and the newest)"; exit 1; }
    fi
    kube=$(cd "$moddir" && modver k8s.io/kubernetes)
    etcdv=$(cd "$moddir" && modver go.etcd.io/etcd/server/v3)
    key=$( { cat go.mod go.sum; [[ $moddir == "$here" ]] || cat "$moddir/go.mod" "$moddir/go.sum"; go version; echo "$BUILD_REVISION"; } | sha256sum | cut -c1-12)
    dest="$root/k8s-$kube-$key"
    what_built="Kubernetes $kube, etcd $etcdv, kwok $kwokv"
    ;;
csi)
    binaries=(hostpath-csi csi-provisioner csi-resizer)
    moddir=$here/csi
    provv=$(cd "$moddir" && modver github.com/kubernetes-csi/external-provisioner/v6)
    resizev=$(cd "$moddir" && modver github.com/kubernetes-csi/external-resizer/v2)
    key=$( { cd "$moddir" && cat go.mod go.sum hostpath/*.go; go version; echo "$BUILD_REVISION"; } | sha256sum | cut -c1-12)
    dest="$root/csi-$provv-$key"
    what_built="external-provisioner $provv, external-resizer $resizev, hostpath-csi"
    ;;
krew)
    binaries=(kubectl-krew validate-krew-manifest)
    moddir=$here/krew
    krewv=$(cd "$moddir" && modver sigs.k8s.io/krew)
    key=$( { cd "$moddir" && cat go.mod go.sum; go version; echo "$BUILD_REVISION"; } | sha256sum | cut -c1-12)
    dest="$root/krew-$krewv-$key"
    what_built="krew $krewv"
    ;;
kind)
    binaries=(kubeadm kubelet kubectl kube-proxy etcd kind coredns local-path-provisioner pause)
    moddir=$here
    stack=$here/../kind/stack
    kube=$(modver k8s.io/kubernetes)
    kindv=$(cd "$stack" && modver sigs.k8s.io/kind)
    corednsv=$(cd "$stack" && modver github.com/coredns/coredns)
    lppv=$(cd "$stack" && modver github.com/rancher/local-path-provisioner)
    key=$( { cat go.mod go.sum "$stack"/go.mod "$stack"/go.sum "$stack"/kube.sum "$stack"/coredns/*.go; go version; gcc --version | head -1; echo "$BUILD_REVISION"; } | sha256sum | cut -c1-12)
    dest="$root/kind-bin-$kube-$key"
    what_built="the kind stack: Kubernetes $kube node binaries, kind $kindv, CoreDNS $corednsv, local-path-provisioner $lppv"
    ;;
*)
    log "usage: build.sh [controlplane|csi|kind|krew]"
    exit 2
    ;;
esac

if [[ -f "$dest/complete" ]]; then
    echo "$dest/bin"
    exit 0
fi

# One build at a time per cache root; a second caller waits, then finds it warm.
exec 9>"$root/.lock"
if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
fi
if [[ -f "$dest/complete" ]]; then
    echo "$dest/bin"
    exit 0
fi

tmp=$(mktemp -d "$root/.build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'log "interrupted; nothing was cached"; exit 130' INT TERM

log "cold cache: building $what_built into $dest (this takes minutes)"

kube_ldflags() {
    local build_date major minor p out=""
    build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    major=${kube#v}; major=${major%%.*}
    minor=${kube#v*.}; minor=${minor%%.*}
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        out+=" -X $p.gitVersion=$kube -X $p.gitMajor=$major -X $p.gitMinor=$minor"
        out+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
    done
    echo "$out"
}

case $what in
controlplane)
    kube_ldflags=$(kube_ldflags)
    kwok_ldflags="-X sigs.k8s.io/kwok/pkg/consts.Version=${kwokv#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${kube#v}"
    pkg=(
        [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
        [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
        [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
        [etcd]=go.etcd.io/etcd/server/v3
        [kwok]=sigs.k8s.io/kwok/cmd/kwok
        [kwokctl]=sigs.k8s.io/kwok/cmd/kwokctl
    )
    flags=(
        [kube-apiserver]=$kube_ldflags [kube-controller-manager]=$kube_ldflags
        [kube-scheduler]=$kube_ldflags [etcd]="" [kwok]=$kwok_ldflags [kwokctl]=$kwok_ldflags
    )
    # kwok and kwokctl always come from the go.mod here, built for the chosen version.
    dir=([kube-apiserver]=$moddir [kube-controller-manager]=$moddir [kube-scheduler]=$moddir
        [etcd]=$moddir [kwok]=$here [kwokctl]=$here)
    ;;
csi)
    pkg=(
        [hostpath-csi]=./hostpath
        [csi-provisioner]=github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner
        [csi-resizer]=github.com/kubernetes-csi/external-resizer/v2/cmd/csi-resizer
    )
    flags=([hostpath-csi]="" [csi-provisioner]="-X main.version=$provv" [csi-resizer]="-X main.version=$resizev")
    dir=([hostpath-csi]=$moddir [csi-provisioner]=$moddir [csi-resizer]=$moddir)
    ;;
krew)
    pkg=([kubectl-krew]=sigs.k8s.io/krew/cmd/krew [validate-krew-manifest]=sigs.k8s.io/krew/cmd/validate-krew-manifest)
    flags=([kubectl-krew]="" [validate-krew-manifest]="")
    dir=([kubectl-krew]=$moddir [validate-krew-manifest]=$moddir)
    ;;
esac

mkdir -p "$tmp/bin"
started=$SECONDS
if [[ $what == kind ]]; then
    # The Kubernetes binaries in one `go build`, which compiles their shared packages once.
    # The node binaries need a few checksums the control plane's go.sum lacks (kube-proxy's ipvs and
    # nftables, kubectl's helpers): they come from ../kind/stack/kube.sum, beside a copy of the control
    # plane's go.mod, so the versions stay in one place and the control plane's cache key does not move.
    mkdir -p "$tmp/mod"
    cp go.mod "$tmp/mod/go.mod"
    cat go.sum "$stack/kube.sum" >"$tmp/mod/go.sum"
    log "[1/4] building kubeadm, kubelet, kubectl, kube-proxy, etcd"
    (cd "$tmp/mod" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $(kube_ldflags)" -o "$tmp/bin/" \
        k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl \
        k8s.io/kubernetes/cmd/kube-proxy go.etcd.io/etcd/server/v3)
    mv "$tmp/bin/server" "$tmp/bin/etcd"  # go build names a /v3 module path by the element before it
    log "[2/4] building kind, CoreDNS, local-path-provisioner"
    (cd "$stack" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/bin/" \
        sigs.k8s.io/kind ./coredns github.com/rancher/local-path-provisioner)
    log "[3/4] building pause"
    gcc -Os -static -o "$tmp/bin/pause" "$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
    # kind's base image files (its entrypoint, systemd units and containerd configuration) come with its module.
    log "[4/4] copying kind's base image files"
    cp -r "$(cd "$stack" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)/images/base/files" "$tmp/base-files"
    chmod -R u+w "$tmp/base-files"
    binaries=()
    rm -rf "$tmp/mod"
fi
i=0
for b in "${binaries[@]}"; do
    i=$((i + 1))
    t0=$SECONDS
    log "[$i/${#binaries[@]}] building $b (${pkg[$b]})"
    (cd "${dir[$b]}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w ${flags[$b]}" -o "$tmp/bin/$b" "${pkg[$b]}")
    log "[$i/${#binaries[@]}] $b done in $((SECONDS - t0))s"
done

case $what in
controlplane)
    # kwok's own stage definitions from the pinned module: kwokctl's defaults (fast
    # pod lifecycle, node heartbeat with lease) plus the chaos stage that fails
    # pods labelled pod-container-running-failed.stage.kwok.x-k8s.io=true. kwokctl
    # drops its defaults as soon as a config names any stage, so all are listed.
    kwokdir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
    for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
        pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete pod/chaos/pod-container-running-failed; do
        printf -- '---\n'
        cat "$kwokdir/kustomize/stage/$f.yaml"
    done >"$tmp/stages.yaml"
    printf 'kubernetes=%s\netcd=%s\nkwok=%s\ngo=%s\n' "$kube" "$etcdv" "$kwokv" "$(go version)" >"$tmp/versions"
    ;;
kind)
    printf 'kubernetes=%s\nkind=%s\ncoredns=%s\nlocal-path-provisioner=%s\ngo=%s\n' "$kube" "$kindv" "$corednsv" "$lppv" "$(go version)" >"$tmp/versions"
    ;;
csi)
    printf 'external-provisioner=%s\nexternal-resizer=%s\ngo=%s\n' "$provv" "$resizev" "$(go version)" >"$tmp/versions"
    ;;
krew)
    printf 'krew=%s\ngo=%s\n' "$krewv" "$(go version)" >"$tmp/versions"
    ;;
esac

touch "$tmp/complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "built in $((SECONDS - started))s, $(du -sh "$dest" | cut -f1) in $dest"
echo "$dest/bin"
