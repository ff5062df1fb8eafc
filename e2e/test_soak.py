"""A soak test: `details --watch` and `wait` over 300 objects that change 5,000 times.

Both run as CI runs them, as processes, for the whole burst. Their memory is
read from /proc every 500 changes: at the end it must be within 10% of what it
was after the first 500 (the informer's stores hold each object once; nothing
may grow with the number of changes). Nothing may be missed: the state
`--watch` printed (the list, then each change) equals the API's, object by
object, a deletion included, and `wait --for deleted` ends once they are all
gone. The RSS curve is kept in reports/soak-rss.txt.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from e2e.harness.k8s import VENV_BIN, Cluster

pytestmark = pytest.mark.xdist_group("soak")  # a worker of its own: the burst is the test's whole load

OBJECTS = 300
CHANGES = 5_000
SAMPLE = 500  # changes between two readings of memory
REPORT = Path(__file__).resolve().parents[1] / "reports" / "soak-rss.txt"
_SPACE = re.compile(r"\s*")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _plugin(cluster: Cluster, out: Path, *args: str) -> subprocess.Popen[bytes]:
    """The plugin itself (not through kubectl, whose process would be the one measured)."""
    cmd = [str(VENV_BIN / "kubectl-cyclops"), *cluster._context_args(), *args]
    with out.open("wb") as sink, out.with_suffix(".stderr").open("wb") as errors:
        return subprocess.Popen(cmd, env=cluster.env(), stdout=sink, stderr=errors)


def _last_state(out: Path) -> dict[str, str | None]:
    """What `--watch -o json` shows by now, object by object: the whole list it printed first, then each
    object that changed (a document of its own) and each one deleted (a document saying so)."""
    decoder, text = json.JSONDecoder(), out.read_text()
    state: dict[str, str | None] = {}
    end, i = len(text.rstrip()), _SPACE.match(text).end()
    while i < end:
        doc, i = decoder.raw_decode(text, i)
        i = _SPACE.match(text, i).end()
        for d in doc if isinstance(doc, list) else [doc]:
            if d.get("deleted"):
                state.pop(d["name"], None)
            else:
                state[d["name"]] = d["labels"].get("step")
    return state


def _shown(watched: Path, want: dict[str, str | None]) -> dict[str, str | None]:
    """What the watch shows once it equals `want` (it coalesces, then prints), or after 60 s."""
    deadline = time.monotonic() + 60
    while True:
        try:
            seen = _last_state(watched)
        except ValueError:
            seen = {}  # a document half written
        if seen == want or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def test_watch_and_wait_over_300_objects_changing_5000_times_keep_memory_flat_and_miss_nothing(
    cluster: Cluster, ns: str, tmp_path: Path
) -> None:
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"soak-{i:03d}", "labels": {"app": "soak"}}}
        for i in range(OBJECTS)
    ]
    cluster.kubectl(
        "apply", "-n", ns, "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    watched = tmp_path / "watch.json"
    watch = _plugin(cluster, watched, "details", "configmaps", "-n", ns, "-l", "app=soak", "--watch", "-o", "json")
    waiting = _plugin(
        cluster,
        tmp_path / "wait.txt",
        "wait",
        "configmaps",
        "-n",
        ns,
        "-l",
        "app=soak",
        "--for",
        "deleted",
        "--timeout",
        "15m",
    )
    curve: list[tuple[int, int, int]] = []
    try:
        for change in range(1, CHANGES + 1):
            name = f"soak-{change % OBJECTS:03d}"
            cluster.core.patch_namespaced_config_map(name, ns, {"metadata": {"labels": {"step": str(change)}}})
            if change % SAMPLE == 0:
                assert watch.poll() is None, "details --watch ended during the burst"
                assert waiting.poll() is None, "wait ended during the burst"
                curve.append((change, _rss_kib(watch.pid), _rss_kib(waiting.pid)))
        want = {
            c.metadata.name: c.metadata.labels.get("step")
            for c in cluster.core.list_namespaced_config_map(ns, label_selector="app=soak").items
        }
        seen = _shown(watched, want)
        curve.append((CHANGES, _rss_kib(watch.pid), _rss_kib(waiting.pid)))
        assert seen == want, {k: (seen.get(k), v) for k, v in want.items() if seen.get(k) != v}
        cluster.core.delete_namespaced_config_map("soak-000", ns)  # a deletion is shown too
        del want["soak-000"]
        seen = _shown(watched, want)
        assert seen == want, sorted(set(seen) ^ set(want))
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=30)
    cluster.kubectl("delete", "configmaps", "-n", ns, "-l", "app=soak", "--wait=false")
    assert waiting.wait(timeout=120) == 0, (tmp_path / "wait.stderr").read_text()

    REPORT.parent.mkdir(exist_ok=True)
    lines = ["changes  watch RSS KiB  wait RSS KiB", *(f"{c:>7}  {w:>13}  {v:>12}" for c, w, v in curve)]
    REPORT.write_text("\n".join(lines) + "\n")
    first, last = curve[0], curve[-1]
    assert last[1] <= first[1] * 1.10, lines
    assert last[2] <= first[2] * 1.10, lines
    assert os.path.getsize(watched) > 0
