"""KIND resolution as kubectl does it, over discovery answers recorded from a real cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubectl_cyclops import errors
from kubectl_cyclops.discovery import Discovery, match, read_server
from tests.replay import DISCOVERY, RECORDINGS, ReplayApi


class LegacyServer(ReplayApi):
    """A server that ignores the aggregated-discovery Accept header, as servers before 1.26 do."""

    def get(self, path: str, params: dict | None = None, accept: str | None = None) -> dict:
        return super().get(path, params, None)


def recorded_api(answers_file: Path, server: type[ReplayApi] = ReplayApi) -> ReplayApi:
    api = server({"host": "https://recorded", "namespace": "default", "phases": [{}]})
    api.replay.answers = json.loads(answers_file.read_text())
    return api


AGGREGATED = read_server(recorded_api(DISCOVERY))


@pytest.mark.parametrize(
    ("arg", "group", "version", "kind"),
    [
        ("pv", "", "v1", "PersistentVolume"),
        ("persistentvolumes", "", "v1", "PersistentVolume"),
        ("PersistentVolume", "", "v1", "PersistentVolume"),
        ("job", "batch", "v1", "Job"),
        ("jobs.batch", "batch", "v1", "Job"),
        ("cj", "batch", "v1", "CronJob"),
        ("deploy", "apps", "v1", "Deployment"),
        ("deployments.v1.apps", "apps", "v1", "Deployment"),
        ("deployments.apps", "apps", "v1", "Deployment"),
        ("ingresses.networking.k8s.io", "networking.k8s.io", "v1", "Ingress"),
        ("ct", "stable.example.com", "v1", "CronTab"),
        ("crontabs.stable.example.com", "stable.example.com", "v1", "CronTab"),
        ("events", "", "v1", "Event"),  # the core group comes first, as in kubectl
        ("events.events.k8s.io", "events.k8s.io", "v1", "Event"),
    ],
)
def test_kind_arguments_resolve_like_kubectl(arg: str, group: str, version: str, kind: str) -> None:
    found = match(AGGREGATED, arg)
    assert found is not None
    assert (found.group, found.version, found.kind) == (group, version, kind)


@pytest.mark.parametrize("arg", ["frobnicators", "jobs.nosuchgroup", "", "deployments.v9.apps"])
def test_unknown_kinds_do_not_resolve(arg: str) -> None:
    assert match(AGGREGATED, arg) is None


def test_servers_without_aggregated_discovery_give_the_same_answer() -> None:
    legacy = read_server(recorded_api(RECORDINGS / "_discovery_legacy.json", LegacyServer))

    def preferred(resources: list) -> dict:
        found: dict = {}
        for r in resources:  # preferred version first, in both forms of discovery
            found.setdefault((r.group, r.kind), (r.version, r.plural, r.namespaced, r.short_names))
        return found

    assert preferred(legacy) == preferred(AGGREGATED)
    assert len(preferred(legacy)) > 50


def test_discovery_is_cached_on_disk_and_refreshed_once_on_a_miss(tmp_path: Path) -> None:
    api = recorded_api(DISCOVERY)
    Discovery(api, str(tmp_path)).resolve("pv")
    assert len(api.requests) == 2  # /api and /apis, aggregated
    cached = Discovery(api, str(tmp_path))
    assert cached.resolve("jobs").kind == "Job"
    assert len(api.requests) == 2  # answered from the cache file
    with pytest.raises(errors.UnknownKindError, match='resource type "frobnicators"'):
        cached.resolve("frobnicators")
    assert len(api.requests) == 4  # one refresh, in case the kind was created since
