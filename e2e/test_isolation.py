"""The kind provider stays off the network: its engine, cluster and tests run in the run's own network namespace.

e2e/kind/netns.sh creates the namespace before the engine starts, with a raw-table chain that every
packet routed or sent in it passes first: loopback, 198.18.0.0/15 and link-local control traffic
return early, and the last rule counts anything else. The cluster was created, and every workload of
the suite ran, under those counters; this test reads them (and `netns.sh run` checks them again when
the suite ends).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from e2e.harness.k8s import Cluster, phase

NAMESPACE = "/run/netns/cyclops-kind"
INSIDE = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "198.18.0.0/15", "::1/128", "fe80::/10")]


@pytest.fixture(autouse=True)
def _offline_kind(provider_state: dict[str, Any]) -> None:
    if provider_state.get("provider") != "kind" or not provider_state.get("offline"):
        pytest.skip("checks the offline kind provider's network namespace (make e2e CLUSTER=kind)")


def _counters() -> dict[str, int]:
    out = {"escaping": 0, "inside": 0}
    for tool in ("iptables", "ip6tables"):
        listing = subprocess.run(
            [tool, "-t", "raw", "-L", "CYCLOPS-EGRESS", "-v", "-x", "-n"], capture_output=True, text=True, check=True
        ).stdout
        for line in listing.splitlines()[2:]:
            m = re.search(r"/\* (\w+) \*/", line)
            assert m, line
            out[m.group(1)] += int(line.split()[0])
        assert "escaping" in listing.splitlines()[-1], "the counting rule must be the chain's last"
    return out


def test_the_suite_runs_in_the_runs_own_network_namespace_with_no_way_out() -> None:
    assert os.stat("/proc/self/ns/net").st_ino == os.stat(NAMESPACE).st_ino
    routes = json.loads(subprocess.run(["ip", "-j", "route"], capture_output=True, text=True, check=True).stdout)
    default = [r for r in routes if r["dst"] == "default"]
    assert [r["dev"] for r in default] == ["lo"]
    links = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout)
    for link in links:
        assert re.fullmatch(r"lo|docker0|br-[0-9a-f]+|veth[0-9a-f]+", link["ifname"]), link["ifname"]
        for addr in link.get("addr_info", []):
            ip = ipaddress.ip_address(addr["local"])
            assert any(ip in net for net in INSIDE), (link["ifname"], addr["local"])
    assert Path("/etc/resolv.conf").read_text().split() == ["nameserver", "127.0.0.1"]


def test_no_packet_left_the_namespace_during_cluster_create_and_workloads(cluster: Cluster, ns: str) -> None:
    # A pod that talks to the API server through its Service IP, as every controller does; before kube-proxy
    # programs its rules such connections are what follow a node's default route.
    service = cluster.get("service", "kubernetes", "default")["spec"]["clusterIP"]
    assert ipaddress.ip_address(service) in ipaddress.ip_network("198.18.0.0/15")
    call = f"nc -w 3 {service} 443 </dev/null; true"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "caller", "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", call],
                }
            ],
        },
    }
    cluster.create(pod)
    cluster.wait_one("Pod", "caller", phase("Succeeded"), namespace=ns, timeout=60)
    counted = _counters()
    assert counted["inside"] > 0  # the chain sees the run's traffic
    assert counted["escaping"] == 0, counted


def test_the_api_server_is_published_on_loopback_only(provider_state: dict[str, Any]) -> None:
    """kind publishes the control plane's API port on the host side: on 127.0.0.1 only, never every address."""
    container = f"{provider_state['name']}-control-plane"
    inspect = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout
    bindings = json.loads(inspect)[0]["HostConfig"]["PortBindings"]
    published = [b for port in bindings.values() for b in port or []]
    assert published, bindings
    assert {b["HostIp"] for b in published} == {"127.0.0.1"}, bindings
