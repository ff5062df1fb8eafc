#!/usr/bin/env bash
# The kind provider's private network namespace and the container engine that runs in it.
#
#   e2e/kind/netns.sh up              create the namespace and start dockerd in it (idempotent)
#   e2e/kind/netns.sh exec CMD...     run a command in it, with DOCKER_HOST set (brings it up first)
#   e2e/kind/netns.sh run CMD...      up, exec, then down: everything it started ends with the command
#   e2e/kind/netns.sh down            stop dockerd and every container, delete the namespace
#   e2e/kind/netns.sh count           packets counted leaving for anywhere but loopback and 198.18.0.0/15
#
# The namespace (`cyclops-kind`) has only loopback and the engine's own bridges: no interface
# leads out of it, so nothing the engine, kind or the tests do can reach any address but loopback
# and the containers the run created. Every address the run uses is in the benchmarking range
# 198.18.0.0/15, never 10/8, 172.16/12 or 192.168/16: 198.18.0.1 on loopback with the default
# route through loopback, the engine's bridge 198.19.0.0/24 and its pools in 198.19.0.0/16, the
# kind network 198.19.1.0/24, and the cluster's pod and service subnets (kind-config.yaml). DNS
# is 127.0.0.1: each command runs in a mount namespace of its own where
# /etc/netns/cyclops-kind/resolv.conf is mounted over /etc/resolv.conf (nsenter, not `ip netns
# exec`, which would also remount /sys and hide the cgroup hierarchies the engine needs).
#
# dockerd is Debian's docker.io, started here with its own socket, pid file and exec root, and a
# data root in the build cache, so the offline node image outlives a run. Where this machine's
# capability bounding set lacks CAP_SYS_RESOURCE, which Docker 20.10 gives a --privileged
# container, runc is wrapped to drop it (runc-wrapper); on an ordinary host it is not.
#
#   KUBECTL_CYCLOPS_BUILD_CACHE   cache root (default ~/.cache/kubectl-cyclops)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'kind-netns: %s\n' "$*" >&2; }
NS=cyclops-kind
RUN=/run/cyclops-kind
SOCK="unix://$RUN/docker.sock"
root="${KUBECTL_CYCLOPS_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-cyclops}"

in_ns() {
    nsenter --net="/run/netns/$NS" unshare --mount --propagation slave -- \
        bash -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "/etc/netns/$NS/resolv.conf" \
        env DOCKER_HOST="$SOCK" CYCLOPS_KIND_OFFLINE=1 "$@"
}

engine_up() { [[ -f "$RUN/docker.pid" ]] && kill -0 "$(cat "$RUN/docker.pid")" 2>/dev/null && in_ns docker info >/dev/null 2>&1; }

up() {
    [[ $(id -u) == 0 ]] || { log "needs root (a network namespace and a container engine); or use CLUSTER=local"; exit 1; }
    command -v dockerd >/dev/null || { log "dockerd is missing: run e2e/kind/install.sh (Debian's docker.io); or use CLUSTER=local"; exit 1; }
    engine_up && return 0
    if ! ip netns list | grep -qw "$NS"; then
        ip netns add "$NS"
        ip -n "$NS" link set lo up
        ip -n "$NS" addr add 198.18.0.1/32 dev lo
        ip -n "$NS" route add default dev lo
        counters
    fi
    mkdir -p "/etc/netns/$NS" "$RUN" "$root/kind-engine"
    printf 'nameserver 127.0.0.1\n' >"/etc/netns/$NS/resolv.conf"
    local runtime=()
    local capbnd
    capbnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
    if (( (0x$capbnd >> 24 & 1) == 0 )); then
        log "this machine's capability bounding set lacks CAP_SYS_RESOURCE: runc is wrapped to drop it"
        install -m 0755 "$here/runc-wrapper" "$RUN/runc-wrapper"
        runtime=(--add-runtime "cyclops-runc=$RUN/runc-wrapper" --default-runtime cyclops-runc)
    fi
    in_ns setsid dockerd --host "$SOCK" --pidfile "$RUN/docker.pid" --exec-root "$RUN/exec" \
        --data-root "$root/kind-engine" --bip 198.19.0.1/24 \
        --default-address-pool base=198.19.0.0/16,size=24 --dns 127.0.0.1 \
        --ip6tables=false --userland-proxy=false "${runtime[@]}" >"$RUN/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 150); do
        engine_up && break
        sleep 0.2
    done
    engine_up || { log "dockerd did not start: $(tail -1 "$RUN/dockerd.log")"; exit 1; }
    in_ns docker network inspect kind >/dev/null 2>&1 ||
        in_ns docker network create --driver bridge --subnet 198.19.1.0/24 --gateway 198.19.1.1 kind >/dev/null
}

# Every packet the namespace routes (from a container) or sends (from a process in it) passes the raw
# table's CYCLOPS-EGRESS chain first. Loopback, 198.18.0.0/15 and link-local control traffic return
# early; the last rule counts whatever else would have gone somewhere: it must stay at 0.
counters() {
    local v4=(127.0.0.0/8 198.18.0.0/15 224.0.0.0/24 255.255.255.255/32) v6=(::1/128 fe80::/10 ff02::/16)
    for family in 4 6; do
        local tool=iptables ranges=("${v4[@]}")
        [[ $family == 6 ]] && tool=ip6tables ranges=("${v6[@]}")
        ip netns exec "$NS" "$tool" -t raw -N CYCLOPS-EGRESS
        for r in "${ranges[@]}"; do
            ip netns exec "$NS" "$tool" -t raw -A CYCLOPS-EGRESS -d "$r" -m comment --comment inside -j RETURN
        done
        ip netns exec "$NS" "$tool" -t raw -A CYCLOPS-EGRESS -m comment --comment escaping -j RETURN
        ip netns exec "$NS" "$tool" -t raw -I PREROUTING 1 -j CYCLOPS-EGRESS
        ip netns exec "$NS" "$tool" -t raw -I OUTPUT 1 -j CYCLOPS-EGRESS
    done
}

# `escaping N inside M`: packets for anywhere else, and packets that stayed inside (IPv4 and IPv6).
count() {
    local escaping=0 inside=0 pkts comment
    for tool in iptables ip6tables; do
        while read -r pkts comment; do
            if [[ $comment == escaping ]]; then escaping=$((escaping + pkts)); else inside=$((inside + pkts)); fi
        done < <(ip netns exec "$NS" "$tool" -t raw -L CYCLOPS-EGRESS -v -x -n |
            awk 'NR > 2 { for (i = 1; i <= NF; i++) if ($i == "/*") print $1, $(i + 1) }')
    done
    echo "escaping $escaping inside $inside"
}

down() {
    if engine_up; then
        local ids
        ids=$(in_ns docker ps -aq)
        [[ -z "$ids" ]] || in_ns docker rm -f $ids >/dev/null 2>&1 || true
    fi
    if [[ -f "$RUN/docker.pid" ]]; then
        local pid
        pid=$(cat "$RUN/docker.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    # Anything still in the namespace (a containerd shim, a stray process) goes with it.
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns list | grep -qw "$NS" && ip netns del "$NS"
    rm -rf "$RUN" "/etc/netns/$NS"
}

case ${1:-} in
up) up ;;
down) down ;;
count) count ;;
exec) shift; up; in_ns "$@" ;;
run)
    shift
    up
    status=0
    in_ns "$@" || status=$?
    counted=$(count)
    down
    log "packets from the run's namespace: $counted (0 may escape)"
    if [[ $counted != "escaping 0 "* ]]; then
        log "packets left for addresses outside loopback and 198.18.0.0/15: the run is not isolated"
        status=1
    fi
    exit "$status"
    ;;
*) log "usage: netns.sh up|down|count|exec CMD...|run CMD..."; exit 2 ;;
esac
