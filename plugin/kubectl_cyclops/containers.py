"""A pod's containers as kubectl describe pod shows them, for the `containers`, `containerDetails` and `env` formats.

The value is `[spec.initContainers, spec.containers, status.initContainerStatuses,
status.containerStatuses]`: spec and status are joined by name, init containers
first. Each container has its image, its state with reason, message and exit
code, its last termination, and its environment by source. A variable set from
a Secret shows the Secret's name and key, never a value (the API layer has
already replaced Secret values by sizes; a pod spec holds none).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .durations import human_duration, parse_time

JSON = dict[str, Any]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _parts(value: Any) -> list[list[Any]]:
    """The four lists, whatever the map passed (a single status list reads as the main containers')."""
    if isinstance(value, list) and len(value) == 4 and all(v is None or isinstance(v, list) for v in value):
        return [_list(v) for v in value]
    return [[], [], [], _list(value)]


def value_from(env: JSON) -> str | None:
    """kubectl describe's words for where a variable's value comes from."""
    source = env.get("valueFrom")
    if not isinstance(source, dict):
        return None
    if ref := source.get("secretKeyRef"):
        return f"<set to the key '{ref.get('key')}' in secret '{ref.get('name')}'>"
    if ref := source.get("configMapKeyRef"):
        return f"<set to the key '{ref.get('key')}' of config map '{ref.get('name')}'>"
    if ref := source.get("fieldRef"):
        return f"({ref.get('apiVersion') or 'v1'}:{ref.get('fieldPath')})"
    if ref := source.get("resourceFieldRef"):
        owner = f"{ref['containerName']}: " if ref.get("containerName") else ""
        return f"({owner}{ref.get('resource')})"
    return "<set from an unknown source>"


def _env(spec: JSON) -> tuple[list[JSON], list[JSON]]:
    env = [
        {"name": e.get("name"), "value": None if "valueFrom" in e else e.get("value", ""), "valueFrom": value_from(e)}
        for e in _list(spec.get("env"))
        if isinstance(e, dict)
    ]
    env_from = []
    for source in _list(spec.get("envFrom")):
        if not isinstance(source, dict):
            continue
        kind = "Secret" if source.get("secretRef") else "ConfigMap"
        ref = source.get("secretRef") or source.get("configMapRef")
        ref = ref if isinstance(ref, dict) else {}
        optional = bool(ref.get("optional"))
        env_from.append({"kind": kind, "name": ref.get("name"), "prefix": source.get("prefix"), "optional": optional})
    return env, env_from


def _entry(spec: JSON, status: JSON, init: bool) -> JSON:
    state = status.get("state") or {}
    name = next(iter(state), None)
    detail = state.get(name) or {}
    last = (status.get("lastState") or {}).get("terminated")
    env, env_from = _env(spec)
    return {
        "name": spec.get("name") or status.get("name"),
        "state": name,
        "reason": detail.get("reason"),
        "exitCode": detail.get("exitCode"),
        "ready": status.get("ready"),
        "restartCount": status.get("restartCount", 0),
        "init": init,
        "image": spec.get("image") or status.get("image"),
        "message": detail.get("message"),
        "startedAt": detail.get("startedAt"),
        "finishedAt": detail.get("finishedAt"),
        "lastTermination": {k: last.get(k) for k in ("reason", "exitCode", "message", "finishedAt")}
        if isinstance(last, dict)
        else None,
        "env": env,
        "envFrom": env_from,
    }


def containers(value: Any) -> list[JSON]:
    """Every container, init containers first, spec and status joined by name."""
    spec_init, spec_main, status_init, status_main = _parts(value)
    out = []
    for init, specs, statuses in ((True, spec_init, status_init), (False, spec_main, status_main)):
        by_name = {s.get("name"): s for s in statuses if isinstance(s, dict)}
        named = [s for s in specs if isinstance(s, dict)]
        names = [s.get("name") for s in named]
        named += [{"name": n} for n in by_name if n not in names]  # a status without its spec: show it anyway
        out += [_entry(s, by_name.get(s.get("name")) or {}, init) for s in named]
    return out


def _label(c: JSON) -> str:
    return ("init " if c["init"] else "") + str(c["name"])


def state_lines(value: Any) -> list[str]:
    """`name: state (reason, exit N)`, one line per container: what a pod's row needs."""
    out = []
    for c in containers(value):
        extra = [x for x in (c["reason"], None if c["exitCode"] is None else f"exit {c['exitCode']}") if x]
        out.append(f"{_label(c)}: {c['state'] or 'not created'}" + (f" ({', '.join(extra)})" if extra else ""))
    return out


def detail_lines(value: Any, now: datetime) -> list[str]:
    """`name: image | message | last: reason, exit N, 5m ago`: the long parts, for -o wide."""
    out = []
    for c in containers(value):
        parts = [str(c["image"])]
        if c["message"]:
            parts.append(str(c["message"]))
        last = c["lastTermination"]
        if last:
            when = parse_time(last["finishedAt"])
            ago = f", {human_duration((now - when).total_seconds())} ago" if when else ""
            parts.append(f"last: {last['reason']}, exit {last['exitCode']}{ago}")
        out.append(f"{_label(c)}: {' | '.join(parts)}")
    return out


def env_lines(value: Any) -> list[str]:
    """`name: VAR=value` or `name: VAR <set to the key 'k' in secret 's'>`, then envFrom sources."""
    out = []
    for c in containers(value):
        for e in c["env"]:
            said = f"={e['value']}" if e["valueFrom"] is None else f" {e['valueFrom']}"
            out.append(f"{_label(c)}: {e['name']}{said}")
        for s in c["envFrom"]:
            prefix = f" (prefix {s['prefix']})" if s["prefix"] else ""
            out.append(f"{_label(c)}: all of {s['kind']} {s['name']}{prefix}")
    return out
