#!/usr/bin/env bash
# Build (or find) the offline kind node image in the engine DOCKER_HOST names, and print its tag.
# Run inside e2e/kind/isolated.sh. Nothing is pulled: every image comes from the project's caches.
#
# `kind build node-image` cannot work offline (it fetches every image not in the server tarball),
# so the node is assembled as kind's own build does it:
#   - the base: Debian's root file system (rootfs.sh) and kind's base-image files (its entrypoint,
#     systemd units and containerd configuration, from the kind module);
#   - kubeadm, kubelet and kubectl, /kind/version, the default storage manifest (kind's, with
#     the local-path provisioner built here), and a static CNI configuration (bridge, host-local
#     and portmap from Debian's containernetworking-plugins: kindnetd cannot be built from the
#     module proxy; single-node clusters only);
#   - every image kubeadm expects, under its exact name, each a static binary on a scratch image
#     (kube-proxy on the Debian base, for iptables and conntrack), imported into the node's
#     containerd and pinned.
# The tag is keyed by everything that built it, so a warm engine answers at once.
#
#   KUBECTL_CYCLOPS_BUILD_CACHE   cache root (default ~/.cache/kubectl-cyclops)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'kind-node: %s\n' "$*" >&2; }
[[ -n "${DOCKER_HOST:-}" ]] || { log "run inside e2e/kind/isolated.sh (DOCKER_HOST is not set)"; exit 1; }

cp_bin=$(bash "$here/../controlplane/build.sh")
kind_bin=$(bash "$here/../controlplane/build.sh" kind)
rootfs=$(bash "$here/rootfs.sh")
kind_dir=$(dirname "$kind_bin")
kube=$(sed -n 's/^kubernetes=//p' "$kind_dir/versions")
corefile_version=$("$kind_bin/kubeadm" config images list --kubernetes-version "$kube" | sed -n 's|.*/coredns:||p')

base="cyclops.local/kind-rootfs:$(basename "$(dirname "$rootfs")")"
if ! docker image inspect "$base" >/dev/null 2>&1; then
    log "importing the Debian root file system as $base"
    docker import "$rootfs" "$base" >/dev/null
fi
# Some VMs cannot lower oom_score_adj inside a container: then containerd must not try to (KIND-FACTS).
oom_quirk=0
if ! docker run --rm --privileged --network none "$base" sh -c 'echo -999 >/proc/self/oom_score_adj' 2>/dev/null; then
    oom_quirk=1
fi

key=$( { basename "$(dirname "$cp_bin")"; basename "$kind_dir"; basename "$(dirname "$rootfs")"; cat "$0" "$here/storage_manifest.py"; echo "$oom_quirk"; } | sha256sum | cut -c1-12)
tag="cyclops.local/kind-node:$kube-$key"
if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi

# Node images of earlier inputs are 1.3 GB each: keep only the one being built.
docker images --format '{{.Repository}}:{{.Tag}}' cyclops.local/kind-node | grep -vxF "$tag" | xargs -r docker rmi >/dev/null || true
started=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"; docker rm -f cyclops-node-build >/dev/null 2>&1 || true' EXIT

# An image holding static binaries: `image NAME ENTRYPOINT-JSON FILE=PATH...`.
image() {
    local name=$1 entrypoint=$2 dir
    shift 2
    dir=$(mktemp -d -p "$work")
    for spec in "$@"; do
        mkdir -p "$dir/$(dirname "${spec#*=}")"
        cp -L "${spec%%=*}" "$dir/${spec#*=}"
    done
    tar -C "$dir" -c . | docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
        ${entrypoint:+--change "ENTRYPOINT $entrypoint"} - "$name" >/dev/null
    echo "$name"
}

# busybox for the storage helper and the tests' pods: /bin/busybox and a link per applet.
busybox_dir=$(mktemp -d -p "$work")
mkdir -p "$busybox_dir/bin" "$busybox_dir/tmp"
cp /bin/busybox "$busybox_dir/bin/busybox"
for applet in $(/bin/busybox --list); do
    [[ -e "$busybox_dir/bin/$applet" ]] || ln -s busybox "$busybox_dir/bin/$applet"
done
busybox() {
    tar -C "$busybox_dir" -c . | docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$1" >/dev/null
    echo "$1"
}

log "building the component images"
images=(
    "$(image "registry.k8s.io/kube-apiserver:$kube" "" "$cp_bin/kube-apiserver=usr/local/bin/kube-apiserver")"
    "$(image "registry.k8s.io/kube-controller-manager:$kube" "" "$cp_bin/kube-controller-manager=usr/local/bin/kube-controller-manager")"
    "$(image "registry.k8s.io/kube-scheduler:$kube" "" "$cp_bin/kube-scheduler=usr/local/bin/kube-scheduler")"
    "$(image "$("$kind_bin/kubeadm" config images list --kubernetes-version "$kube" | grep /etcd:)" "" "$kind_bin/etcd=usr/local/bin/etcd")"
    "$(image "registry.k8s.io/coredns/coredns:$corefile_version" '["/coredns"]' "$kind_bin/coredns=coredns")"
    "$(image "$("$kind_bin/kubeadm" config images list --kubernetes-version "$kube" | grep /pause:)" '["/pause"]' "$kind_bin/pause=pause")"
    "$(image docker.io/kindest/local-path-provisioner:cyclops "" "$kind_bin/local-path-provisioner=usr/local/bin/local-path-provisioner")"
    "$(busybox docker.io/kindest/local-path-helper:cyclops)"
    "$(busybox docker.io/library/busybox:1.36)"
    "$(busybox docker.io/library/busybox:1.37)"
)
docker rm -f cyclops-kube-proxy >/dev/null 2>&1 || true
docker create --name cyclops-kube-proxy "$base" true >/dev/null
docker cp "$kind_bin/kube-proxy" cyclops-kube-proxy:/usr/local/bin/kube-proxy
docker commit --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' cyclops-kube-proxy \
    "registry.k8s.io/kube-proxy:$kube" >/dev/null
docker rm cyclops-kube-proxy >/dev/null
images+=("registry.k8s.io/kube-proxy:$kube")
pause=$("$kind_bin/kubeadm" config images list --kubernetes-version "$kube" | grep /pause:)

log "assembling the node"
node="$work/node"
mkdir -p "$node/usr/bin" "$node/kind/manifests" "$node/etc/cni/net.d" "$node/opt/cni" "$node/usr/local/bin"
cp -r "$kind_dir/base-files/." "$node/"
chmod 0755 "$node/usr/local/bin/"* "$node/kind/bin/"*  # the module cache keeps no executable bits
cp "$kind_bin/kubeadm" "$kind_bin/kubelet" "$kind_bin/kubectl" "$node/usr/bin/"
echo "$kube" >"$node/kind/version"
ln -s /usr/lib/cni "$node/opt/cni/bin"
ln -s /usr/bin/containerd "$node/usr/local/bin/containerd"
cat >"$node/etc/cni/net.d/10-cyclops.conflist" <<'CNI'
{
  "cniVersion": "0.4.0",
  "name": "cyclops",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.18.64.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CNI
sed -i -e "s|sandbox_image = .*|sandbox_image = \"$pause\"|" "$node/etc/containerd/config.toml"
if [[ $oom_quirk == 1 ]]; then
    log "this machine cannot lower oom_score_adj in a container: containerd will not try (restrict_oom_score_adj)"
    sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$node/etc/containerd/config.toml"
fi
python3 "$here/storage_manifest.py" "$(cd "$here/stack" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)" \
    docker.io/kindest/local-path-provisioner:cyclops docker.io/kindest/local-path-helper:cyclops \
    >"$node/kind/manifests/default-storage.yaml"

docker run -d --name cyclops-node-build --privileged --network none --entrypoint sleep "$base" infinity >/dev/null
tar -C "$node" -c . | docker cp - cyclops-node-build:/
# What kind's base image Dockerfile does after installing its packages: only the services a node needs,
# journald without kmsg, containerd's base runtime spec with kind's product-files hook.
docker exec cyclops-node-build bash -euc '
    find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
        /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
        /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo ReadKMsg=no >>/etc/systemd/journald.conf
    ln -sf /usr/lib/systemd/systemd /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
    systemctl mask systemd-binfmt.service >/dev/null 2>&1
    mkdir -p /etc/kubernetes/manifests /var/lib/containerd
    ctr oci spec \
        | jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" \
        | jq "del(.process.rlimits)" >/etc/containerd/cri-base.json'
docker exec -d cyclops-node-build sh -c 'containerd >/var/log/containerd-build.log 2>&1'
for _ in $(seq 100); do
    docker exec cyclops-node-build ctr version >/dev/null 2>&1 && break
    sleep 0.2
done
log "importing ${#images[@]} images into the node's containerd"
docker save "${images[@]}" | docker exec -i cyclops-node-build ctr -n k8s.io images import --no-unpack - >/dev/null
# Pinned, so that the kubelet's image garbage collection never removes what cannot be pulled again.
for name in "${images[@]}"; do
    docker exec cyclops-node-build ctr -n k8s.io images label "$name" io.cri-containerd.pinned=pinned >/dev/null
done
docker exec cyclops-node-build sh -c 'pkill containerd; sleep 1; rm -f /var/log/containerd-build.log'
docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    --change 'ENV container=docker' \
    cyclops-node-build "$tag" >/dev/null
docker image prune -f >/dev/null  # the images an earlier, interrupted build left untagged
log "built $tag in $((SECONDS - started))s"
echo "$tag"
